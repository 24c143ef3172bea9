//! Vector files as outlines over a cube's maps (`cryocube view --overlay`): the coastline,
//! the grounding line, lake outlines.
//!
//! Any file OGR reads (shapefile, a shapefile zipped, GeoJSON, GeoPackage) in any CRS is
//! reprojected onto the cube's CRS here, on the server, so the page only draws lines in the
//! cube's own x/y. Polygons become their rings, lines stay lines, points are left out.
//! Vertices closer than a quarter of a cell to the last one kept are dropped: the page
//! cannot show them, and a continent's coastline shrinks to what the grid resolves, while
//! every ring and line keeps its first and last vertex (nothing small disappears).

use std::path::Path;

use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::vector::{Geometry, LayerAccess};
use gdal::Dataset;

use crate::{gdal_err, read_err, GeoError};

/// One file's outlines in the target CRS.
#[derive(Clone, Debug)]
pub struct Outlines {
    /// The file's name without its folder and extension.
    pub name: String,
    /// Lines (rings and line strings), each as its vertices' x and y.
    pub paths: Vec<Vec<[f64; 2]>>,
    /// Vertices read before thinning.
    pub vertices_read: usize,
}

/// Reads every layer of `file` and reprojects it onto the CRS `target_wkt` (WKT or any
/// definition GDAL accepts), dropping vertices closer than `tolerance` (target units) to the
/// previous one kept.
pub fn read_outlines(file: &Path, target_wkt: &str, tolerance: f64) -> Result<Outlines, GeoError> {
    if !file.exists() {
        return Err(read_err(file, "no such file".into()));
    }
    // A zipped shapefile is read through GDAL's zip file system.
    let open_path = if file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
    {
        Path::new("/vsizip").join(file.canonicalize().map_err(|e| GeoError::File {
            path: file.to_path_buf(),
            source: e,
        })?)
    } else {
        file.to_path_buf()
    };
    let ds = Dataset::open(&open_path)
        .map_err(|e| gdal_err(file, "OGR cannot open it as a vector file", e))?;
    if ds.layer_count() == 0 {
        return Err(read_err(file, "no vector layer in it".into()));
    }
    let mut target =
        SpatialRef::from_definition(target_wkt).map_err(|e| gdal_err(file, "the cube's CRS", e))?;
    target.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let mut paths = Vec::new();
    let mut vertices_read = 0;
    for mut layer in ds.layers() {
        let Some(mut srs) = layer.spatial_ref() else {
            return Err(read_err(
                file,
                format!(
                    "layer `{}` has no CRS (a shapefile without its .prj?): reproject it or add the .prj, e.g. ogr2ogr -a_srs EPSG:3031",
                    layer.name()
                ),
            ));
        };
        srs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
        let to_cube = CoordTransform::new(&srs, &target)
            .map_err(|e| gdal_err(file, "no transformation to the cube's CRS", e))?;
        for feature in layer.features() {
            let Some(g) = feature.geometry() else {
                continue;
            };
            let g = g
                .transform(&to_cube)
                .map_err(|e| gdal_err(file, "reprojecting a feature", e))?;
            collect(&g, tolerance, &mut paths, &mut vertices_read);
        }
    }
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let name = name
        .trim_end_matches(".zip")
        .rsplit_once('.')
        .map_or(name.as_str(), |(stem, _)| stem)
        .to_string();
    Ok(Outlines {
        name,
        paths,
        vertices_read,
    })
}

/// The lines of `g` (rings of polygons, parts of collections), thinned, into `out`.
fn collect(g: &Geometry, tolerance: f64, out: &mut Vec<Vec<[f64; 2]>>, read: &mut usize) {
    let parts = g.geometry_count();
    if parts > 0 {
        for i in 0..parts {
            collect(&g.get_geometry(i), tolerance, out, read);
        }
        return;
    }
    let n = g.point_count();
    if n < 2 {
        return; // a point: nothing to outline
    }
    let mut pts = Vec::with_capacity(n);
    g.get_points(&mut pts);
    *read += pts.len();
    out.push(thin(&pts, tolerance));
}

/// The vertices at least `tolerance` from the previous one kept, and always the last.
fn thin(pts: &[(f64, f64, f64)], tolerance: f64) -> Vec<[f64; 2]> {
    let mut kept: Vec<[f64; 2]> = Vec::new();
    for (i, &(x, y, _)) in pts.iter().enumerate() {
        let far = kept
            .last()
            .is_none_or(|p| (p[0] - x).hypot(p[1] - y) >= tolerance);
        if far || i + 1 == pts.len() {
            kept.push([x, y]);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_the_ends_and_spaces_the_rest() {
        let pts: Vec<(f64, f64, f64)> = (0..=100).map(|i| (i as f64 * 0.1, 0.0, 0.0)).collect();
        let t = thin(&pts, 1.0);
        assert_eq!(t.first(), Some(&[0.0, 0.0]));
        assert_eq!(t.last(), Some(&[10.0, 0.0]));
        for w in t.windows(2).take(t.len() - 2) {
            assert!((w[1][0] - w[0][0]) >= 1.0 - 1e-9, "{w:?}");
        }
        assert!(t.len() <= 12, "{}", t.len());
    }
}
