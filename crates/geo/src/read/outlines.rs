//! Outlines stored in HDF5 groups: one group per feature, its outline as coordinate arrays.
//!
//! Some outline collections come as HDF5 (e.g. Siegfried & Fricker 2018's active subglacial
//! lakes: a group per lake with `x`, `y`, `lon`, `lat`), which GDAL reads only as rasters. Here
//! each group becomes a polygon named after the group, written once as GeoJSON in GDAL's
//! in-memory file system, so that the rest is the vector path every shapefile takes
//! (reprojection once, `where`, rasterisation).

use std::path::Path;

use serde_json::json;

use crate::{netcdf_err, read_err as err, GeoError};

/// One outline: the group's name and its ring (closed).
#[derive(Clone, Debug)]
pub struct Outline {
    /// The group's name.
    pub name: String,
    /// Its ring of (x, y) points, first and last the same.
    pub ring: Vec<[f64; 2]>,
}

/// The outlines of every group of `file` that holds the datasets `coords` (x then y, e.g.
/// `["lon", "lat"]`); groups without them are skipped, and there must be at least one.
pub fn read(file: &Path, coords: &[String; 2]) -> Result<Vec<Outline>, GeoError> {
    // netCDF-4 is HDF5: the netCDF library reads such groups and their datasets.
    let h5 = netcdf::open(file).map_err(|e| netcdf_err(file, "cannot open it as HDF5", e))?;
    let groups = h5
        .groups()
        .map_err(|e| netcdf_err(file, "listing its groups", e))?;
    let mut out = Vec::new();
    for group in groups {
        let name = group.name();
        let read = |d: &str| -> Option<Result<Vec<f64>, GeoError>> {
            let v = group.variable(d)?;
            Some(
                v.get_values::<f64, _>(..)
                    .map_err(|e| netcdf_err(file, format!("{name}/{d}"), e)),
            )
        };
        let (Some(xs), Some(ys)) = (read(&coords[0]), read(&coords[1])) else {
            continue;
        };
        let (xs, ys) = (xs?, ys?);
        if xs.len() != ys.len() {
            return Err(err(
                file,
                format!(
                    "{name}: {} has {} values but {} has {}",
                    coords[0],
                    xs.len(),
                    coords[1],
                    ys.len()
                ),
            ));
        }
        let mut ring: Vec<[f64; 2]> = xs
            .iter()
            .zip(&ys)
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|(x, y)| [*x, *y])
            .collect();
        if ring.len() < 3 {
            return Err(err(
                file,
                format!(
                    "{name}: an outline of {} point(s) is no polygon",
                    ring.len()
                ),
            ));
        }
        if ring.first() != ring.last() {
            ring.push(ring[0]);
        }
        out.push(Outline { name, ring });
    }
    if out.is_empty() {
        return Err(err(
            file,
            format!(
                "no group holds both {:?} and {:?} (processing.coordinates names the datasets)",
                coords[0], coords[1]
            ),
        ));
    }
    Ok(out)
}

/// The outlines as a GeoJSON FeatureCollection (property `name`), with a `crs` member naming
/// `epsg` so that GDAL reads the coordinates in it (longitude first for EPSG:4326).
pub fn geojson(outlines: &[Outline], epsg: u32) -> String {
    let crs = if epsg == 4326 {
        "urn:ogc:def:crs:OGC:1.3:CRS84".to_string()
    } else {
        format!("urn:ogc:def:crs:EPSG::{epsg}")
    };
    let features: Vec<_> = outlines
        .iter()
        .map(|o| {
            json!({
                "type": "Feature",
                "properties": {"name": o.name},
                "geometry": {"type": "Polygon", "coordinates": [o.ring]}
            })
        })
        .collect();
    json!({
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": crs}},
        "features": features
    })
    .to_string()
}
