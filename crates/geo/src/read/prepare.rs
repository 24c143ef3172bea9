//! A source file made ready to be resampled: decoded, masked, and in a CRS GDAL knows.
//!
//! Resampling reads sources with GDAL, window by window, in parallel. Most files go there as
//! they are. Some need one pass first, done here once per build, so that no window has to
//! repeat it and no sentinel is ever interpolated as data:
//! - old GMT grids (which GDAL reads as one row) are decoded;
//! - values that must change before resampling (no-data sentinels with a valid range, a
//!   latitude cut, scale/offset, a band other than 1) are applied to a copy;
//! - regular lon/lat grids get EPSG:4326 when they declare nothing and longitudes in
//!   -180..180, so one warp takes them straight to the target grid (the seed reprojected,
//!   then interpolated again);
//! - vector files are reprojected once onto the target CRS, so that each window only burns.
//!
//! Copies live in GDAL's in-memory file system (`/vsimem/`), which every worker thread can
//! open; they are removed when the [`Prepared`] input is dropped.

use std::ffi::CString;
use std::ops::Range;
use std::path::Path;

use gdal::cpl::CslStringList;
use gdal::raster::Buffer;
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::vector::LayerAccess;
use gdal::{Dataset, DriverManager};

use super::{gmt, Raster};
use crate::grid::TargetGrid;
use crate::rasterize::{rasterize_window, RasterizeSpec};
use crate::recipe::{FormatHint, Rasterize, Resampling, ValidRange};
use crate::warp::{last_gdal_error, warp_window, WarpSpec};
use crate::{read_err as err, GeoError};

/// How to read one file of a source (the recipe's `processing`, output overrides applied).
#[derive(Clone, Debug, Default)]
pub struct ReadSpec {
    pub format: Option<FormatHint>,
    /// netCDF variable (GDAL subdataset) or, for vector files, the layer.
    pub variable: Option<String>,
    /// 1-based raster band.
    pub band: Option<u32>,
    /// CRS of a file that declares none.
    pub crs: Option<String>,
    pub nodata: Option<f64>,
    pub valid: Option<ValidRange>,
    pub latitude: Option<ValidRange>,
    pub resampling: Option<Resampling>,
    pub rasterize: Option<Rasterize>,
}

/// What the resampling step reads.
#[derive(Debug)]
pub enum Input {
    /// A raster GDAL warps (a file, a netCDF subdataset or an in-memory copy).
    Raster { path: String, spec: WarpSpec },
    /// Polygons (already in the target CRS) burnt into cells.
    Vector {
        path: String,
        layer: String,
        spec: RasterizeSpec,
    },
}

/// A source file ready to be resampled, with the steps applied for the provenance.
#[derive(Debug)]
pub struct Prepared {
    pub input: Input,
    pub steps: Vec<String>,
    _copy: Option<MemFile>,
}

impl Prepared {
    /// Values of columns `cols` and rows `rows` of `grid`, row-major, NaN = no data.
    pub fn render(
        &self,
        grid: &TargetGrid,
        cols: Range<usize>,
        rows: Range<usize>,
    ) -> Result<Vec<f32>, GeoError> {
        match &self.input {
            Input::Raster { path, spec } => warp_window(Path::new(path), spec, grid, cols, rows),
            Input::Vector { path, layer, spec } => {
                rasterize_window(Path::new(path), layer, spec, grid, cols, rows)
            }
        }
    }
}

/// An in-memory GDAL file, unlinked when dropped.
#[derive(Debug)]
struct MemFile(String);

impl Drop for MemFile {
    fn drop(&mut self) {
        if let Ok(c) = CString::new(self.0.as_str()) {
            // SAFETY: unlinks an in-memory file this process created; the path is a C string.
            unsafe {
                gdal_sys::VSIUnlink(c.as_ptr());
            }
        }
    }
}

fn wkt_of(definition: &str, path: &Path) -> Result<String, GeoError> {
    if definition.trim_start().starts_with(['P', 'G', 'C', 'B']) && definition.contains('[') {
        return Ok(definition.to_string());
    }
    SpatialRef::from_definition(definition)
        .and_then(|s| s.to_wkt())
        .map_err(|e| err(path, format!("CRS {definition:?} is not usable: {e}")))
}

/// Makes `file` ready to be resampled onto a grid in `target_crs`. `key` names the in-memory
/// copies (unique within the build).
pub fn prepare(
    file: &Path,
    spec: &ReadSpec,
    target_crs: &str,
    key: &str,
) -> Result<Prepared, GeoError> {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !file.is_file() {
        return Err(err(file, "no such file".into()));
    }
    let format = match spec.format {
        Some(f) => f,
        None if gmt::is_gmt_grid(file) => FormatHint::GmtGrid,
        None => FormatHint::Gdal,
    };
    let mut steps = vec![format!("read {name} ({})", format_name(format))];
    let resampling = spec.resampling.unwrap_or(Resampling::Bilinear);
    let mem = format!("/vsimem/cryocube/{key}");
    if format == FormatHint::Gdal && !gmt::is_gmt_grid(file) {
        let ds = Dataset::open(file)
            .map_err(|e| err(file, format!("GDAL cannot read it: {}", clean(e))))?;
        if ds.raster_count() == 0 && ds.layer_count() > 0 || spec.rasterize.is_some() {
            return prepare_vector(&ds, file, spec, target_crs, &mem, steps);
        }
    }
    // Raster: read as it is when nothing has to change before resampling.
    let gdal_path = match &spec.variable {
        Some(v) => format!("NETCDF:\"{}\":{v}", file.display()),
        None => file.display().to_string(),
    };
    let geographic_default = format == FormatHint::LatlonGrid;
    let crs = spec
        .crs
        .clone()
        .or_else(|| geographic_default.then(|| "EPSG:4326".to_string()));
    if let Some(v) = &spec.variable {
        steps.push(format!("variable {v}"));
    }
    if format == FormatHint::Gdal {
        let ds = Dataset::open(&gdal_path)
            .map_err(|e| err(file, format!("GDAL cannot read {gdal_path}: {}", clean(e))))?;
        if ds.raster_count() == 0 {
            return Err(err(file, "has no raster band".into()));
        }
        let band = ds.rasterband(1).map_err(|e| err(file, e.to_string()))?;
        let scaled =
            band.scale().is_some_and(|s| s != 1.0) || band.offset().is_some_and(|o| o != 0.0);
        let has_crs = !ds.projection().trim().is_empty();
        if !has_crs && crs.is_none() {
            return Err(err(
                file,
                "declares no CRS and the recipe gives none (set processing.crs or source_crs)"
                    .into(),
            ));
        }
        let direct = !scaled
            && spec.valid.is_none()
            && spec.latitude.is_none()
            && spec.band.unwrap_or(1) == 1;
        if direct {
            if let Some(n) = spec.nodata {
                steps.push(format!("no data {n}"));
            }
            if !has_crs {
                steps.push(format!(
                    "CRS {} (from the recipe)",
                    crs.clone().unwrap_or_default()
                ));
            }
            let src_crs = if has_crs {
                None
            } else {
                Some(wkt_of(crs.as_deref().unwrap_or_default(), file)?)
            };
            steps.push(resampled(resampling));
            return Ok(Prepared {
                input: Input::Raster {
                    path: gdal_path,
                    spec: WarpSpec {
                        resampling,
                        src_nodata: spec.nodata,
                        src_crs,
                    },
                },
                steps,
                _copy: None,
            });
        }
    }
    // Decode into memory, change, and warp the copy.
    let (mut raster, wkt) = match format {
        FormatHint::GmtGrid => {
            let r = gmt::read(file)?;
            let c = crs.clone().ok_or_else(|| {
                err(
                    file,
                    "an old GMT grid carries no CRS: set processing.crs or source_crs".into(),
                )
            })?;
            steps.push(format!("CRS {c} (from the recipe)"));
            (r, wkt_of(&c, file)?)
        }
        FormatHint::LatlonGrid if gmt::is_gmt_grid(file) => {
            let c = crs.clone().unwrap_or_else(|| "EPSG:4326".into());
            steps.push(format!("CRS {c}{}", origin_of_crs(spec)));
            (gmt::read(file)?, wkt_of(&c, file)?)
        }
        _ => {
            let (r, wkt, mut notes) =
                read_gdal(&gdal_path, file, spec.band.unwrap_or(1), crs.as_deref())?;
            if spec.crs.is_none() {
                for n in notes.iter_mut().filter(|n| n.starts_with("CRS ")) {
                    *n = format!("CRS EPSG:4326{}", origin_of_crs(spec));
                }
            }
            steps.extend(notes);
            (r, wkt)
        }
    };
    mask(
        &mut raster.values,
        spec.nodata,
        spec.valid.as_ref(),
        &mut steps,
    );
    let srs = SpatialRef::from_wkt(&wkt).map_err(|e| err(file, format!("CRS: {e}")))?;
    if srs.is_geographic() && wrap_longitudes(&mut raster) {
        steps.push("longitudes wrapped to -180..180".into());
    }
    if let Some(lat) = &spec.latitude {
        cut_latitude(&mut raster, &srs, lat, file)?;
        steps.push(format!(
            "latitude range {}",
            serde_json::to_string(lat).unwrap_or_default()
        ));
    }
    let path = format!("{mem}.tif");
    write_geotiff(&path, &raster, &wkt, file)?;
    steps.push(resampled(resampling));
    Ok(Prepared {
        input: Input::Raster {
            path: path.clone(),
            spec: WarpSpec {
                resampling,
                src_nodata: None,
                src_crs: None,
            },
        },
        steps,
        _copy: Some(MemFile(path)),
    })
}

/// Where a CRS came from, for the provenance.
fn origin_of_crs(spec: &ReadSpec) -> &'static str {
    if spec.crs.is_some() {
        " (from the recipe)"
    } else {
        " (the lon/lat default)"
    }
}

fn format_name(f: FormatHint) -> &'static str {
    match f {
        FormatHint::Gdal => "GDAL",
        FormatHint::GmtGrid => "old GMT grid",
        FormatHint::LatlonGrid => "lon/lat grid",
    }
}

fn resampled(r: Resampling) -> String {
    format!("resampled once ({}) onto the target grid", r.gdal_name())
}

/// GDAL's error text without its "CPLError … msg:" wrapping, when it has one.
fn clean(e: gdal::errors::GdalError) -> String {
    match e {
        gdal::errors::GdalError::NullPointer { method_name, msg } if !msg.is_empty() => {
            let _ = method_name;
            msg
        }
        other => other.to_string(),
    }
}

/// Vector layer -> in-memory FlatGeobuf in the target CRS (reprojected once).
fn prepare_vector(
    ds: &Dataset,
    file: &Path,
    spec: &ReadSpec,
    target_crs: &str,
    mem: &str,
    mut steps: Vec<String>,
) -> Result<Prepared, GeoError> {
    let layer = match &spec.variable {
        Some(name) => ds
            .layer_by_name(name)
            .map_err(|_| err(file, format!("has no layer {name:?}")))?,
        None if ds.layer_count() == 1 => ds.layer(0).map_err(|e| err(file, e.to_string()))?,
        None if ds.layer_count() == 0 => return Err(err(file, "has no vector layer".into())),
        None => {
            return Err(err(
                file,
                format!(
                    "has {} layers: say which with processing.variable",
                    ds.layer_count()
                ),
            ))
        }
    };
    let layer_name = layer.name();
    let has_srs = layer.spatial_ref().is_some();
    let features = layer.feature_count();
    let rasterize = spec.rasterize.clone().unwrap_or_default();
    let mut args = vec![
        "-f".to_string(),
        "FlatGeobuf".into(),
        "-t_srs".into(),
        wkt_of(target_crs, file)?,
        "-nlt".into(),
        "PROMOTE_TO_MULTI".into(),
        "-nln".into(),
        "features".into(),
    ];
    match (&spec.crs, has_srs) {
        (_, true) => {}
        (Some(c), false) => {
            args.push("-s_srs".into());
            args.push(wkt_of(c, file)?);
            steps.push(format!("CRS {c} (from the recipe)"));
        }
        (None, false) => {
            return Err(err(
                file,
                "declares no CRS (no .prj?) and the recipe gives none (set processing.crs or source_crs)"
                    .into(),
            ))
        }
    }
    args.push(layer_name.clone());
    let path = format!("{mem}.fgb");
    let mut list = CslStringList::new();
    for a in &args {
        list.add_string(a).map_err(|e| err(file, e.to_string()))?;
    }
    let dest = CString::new(path.as_str()).map_err(|e| err(file, e.to_string()))?;
    // SAFETY: the option list, source dataset and destination name outlive the calls; the
    // returned dataset is a new handle we close.
    unsafe {
        let opts = gdal_sys::GDALVectorTranslateOptionsNew(list.as_ptr(), std::ptr::null_mut());
        if opts.is_null() {
            return Err(err(file, format!("reprojection: {}", last_gdal_error())));
        }
        let mut src = ds.c_dataset();
        let mut usage = 0;
        let out = gdal_sys::GDALVectorTranslate(
            dest.as_ptr(),
            std::ptr::null_mut(),
            1,
            &mut src,
            opts,
            &mut usage,
        );
        gdal_sys::GDALVectorTranslateOptionsFree(opts);
        if out.is_null() || usage != 0 {
            return Err(err(
                file,
                format!("reprojecting its features failed: {}", last_gdal_error()),
            ));
        }
        gdal_sys::GDALClose(out);
    }
    let copy = MemFile(path.clone());
    steps.push(format!(
        "{features} features of layer {layer_name} reprojected once to {target_crs}"
    ));
    steps.push(match &rasterize.attribute {
        Some(a) => format!("rasterised: attribute {a}"),
        None => format!("rasterised: burn {}", rasterize.burn.unwrap_or(1.0)),
    });
    steps.push(
        if rasterize.all_touched {
            "every cell a feature touches"
        } else {
            "cells whose centre is inside a feature"
        }
        .into(),
    );
    if let Some(b) = rasterize.background {
        steps.push(format!("background {b}"));
    }
    Ok(Prepared {
        input: Input::Vector {
            path,
            layer: "features".into(),
            spec: RasterizeSpec::from(&rasterize),
        },
        steps,
        _copy: Some(copy),
    })
}

/// A band of a GDAL raster as a north-up [`Raster`] (scale/offset applied, declared no-data
/// NaN), its CRS as WKT, and what was done.
pub fn read_gdal(
    gdal_path: &str,
    file: &Path,
    band_index: u32,
    crs: Option<&str>,
) -> Result<(Raster, String, Vec<String>), GeoError> {
    let ds = Dataset::open(gdal_path)
        .map_err(|e| err(file, format!("GDAL cannot read {gdal_path}: {}", clean(e))))?;
    let gt = ds
        .geo_transform()
        .map_err(|e| err(file, format!("no geotransform: {e}")))?;
    if gt[2] != 0.0 || gt[4] != 0.0 || gt[5] >= 0.0 {
        return Err(err(file, "is not a north-up grid".into()));
    }
    let mut notes = Vec::new();
    let wkt = match (ds.projection(), crs) {
        (p, _) if !p.trim().is_empty() => p,
        (_, Some(c)) => {
            notes.push(format!("CRS {c} (from the recipe)"));
            wkt_of(c, file)?
        }
        _ => {
            return Err(err(
                file,
                "declares no CRS and the recipe gives none (set processing.crs or source_crs)"
                    .into(),
            ))
        }
    };
    let (nx, ny) = ds.raster_size();
    if band_index as usize > ds.raster_count() || band_index == 0 {
        return Err(err(
            file,
            format!("has no band {band_index} ({} bands)", ds.raster_count()),
        ));
    }
    if band_index != 1 {
        notes.push(format!("band {band_index}"));
    }
    let band = ds
        .rasterband(band_index as usize)
        .map_err(|e| err(file, e.to_string()))?;
    let nodata = band.no_data_value();
    let mut values = band
        .read_as::<f32>((0, 0), (nx, ny), (nx, ny), None)
        .map_err(|e| err(file, format!("reading band {band_index}: {e}")))?
        .into_shape_and_vec()
        .1;
    let (scale, offset) = (band.scale().unwrap_or(1.0), band.offset().unwrap_or(0.0));
    for v in values.iter_mut() {
        if nodata.is_some_and(|n| *v as f64 == n || (n.is_nan() && v.is_nan())) {
            *v = f32::NAN;
        } else if scale != 1.0 || offset != 0.0 {
            *v = (*v as f64 * scale + offset) as f32;
        }
    }
    if let Some(n) = nodata {
        notes.push(format!("declared no data {n}"));
    }
    if scale != 1.0 || offset != 0.0 {
        notes.push(format!("scaled: value * {scale} + {offset}"));
    }
    Ok((
        Raster {
            nx,
            ny,
            x0: gt[0] + gt[1] / 2.0,
            y0: gt[3] + gt[5] / 2.0,
            dx: gt[1],
            dy: -gt[5],
            values,
        },
        wkt,
        notes,
    ))
}

/// Sets the sentinel and out-of-range values to NaN (before any resampling).
fn mask(
    values: &mut [f32],
    nodata: Option<f64>,
    valid: Option<&ValidRange>,
    steps: &mut Vec<String>,
) {
    for v in values.iter_mut() {
        if nodata.is_some_and(|n| *v as f64 == n) || valid.is_some_and(|r| !r.contains(*v as f64)) {
            *v = f32::NAN;
        }
    }
    if let Some(n) = nodata {
        steps.push(format!("no data {n}"));
    }
    if let Some(r) = valid {
        steps.push(format!(
            "valid range {}",
            serde_json::to_string(r).unwrap_or_default()
        ));
    }
}

/// A global lon/lat grid stored 0..360 becomes -180..180: whole columns moved, and the seam
/// column repeated when needed so that the cells cover -180..180 edge to edge (the target
/// grid's longitudes come back from PROJ in that range and must all find data).
fn wrap_longitudes(r: &mut Raster) -> bool {
    let west = r.x0 - r.dx / 2.0;
    let east = r.x(r.nx - 1) + r.dx / 2.0;
    if west < -r.dx / 2.0 || east <= 180.0 + r.dx {
        return false;
    }
    // Columns per 360°: the grid must close on itself exactly.
    let per_turn = 360.0 / r.dx;
    let n = per_turn.round() as usize;
    if (per_turn - n as f64).abs() > 1e-6 || r.nx < n || r.nx > n + 1 {
        return false;
    }
    let Some(start) = (0..n).find(|&i| r.x(i) > 180.0 - r.dx / 2.0 + 1e-9) else {
        return false;
    };
    let x0 = r.x(start) - 360.0;
    let m = ((180.0 - (x0 - r.dx / 2.0)) / r.dx - 1e-9).ceil() as usize;
    let mut values = Vec::with_capacity(m * r.ny);
    for row in r.values.chunks(r.nx) {
        values.extend((0..m).map(|k| row[(start + k) % n]));
    }
    r.x0 = x0;
    r.nx = m;
    r.values = values;
    true
}

/// Cells whose centre lies outside the latitude range become NaN.
fn cut_latitude(
    r: &mut Raster,
    srs: &SpatialRef,
    lat: &ValidRange,
    file: &Path,
) -> Result<(), GeoError> {
    if srs.is_geographic() {
        for j in 0..r.ny {
            if !lat.contains(r.y(j)) {
                r.values[j * r.nx..(j + 1) * r.nx].fill(f32::NAN);
            }
        }
        return Ok(());
    }
    let mut wgs84 = SpatialRef::from_epsg(4326).map_err(|e| err(file, e.to_string()))?;
    wgs84.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let t =
        CoordTransform::new(srs, &wgs84).map_err(|e| err(file, format!("latitude cut: {e}")))?;
    for j in 0..r.ny {
        let mut xs: Vec<f64> = (0..r.nx).map(|i| r.x(i)).collect();
        let mut ys = vec![r.y(j); r.nx];
        t.transform_coords(&mut xs, &mut ys, &mut [])
            .map_err(|e| err(file, format!("latitude cut: {e}")))?;
        for (i, lat_v) in ys.iter().enumerate() {
            if !lat.contains(*lat_v) {
                r.values[j * r.nx + i] = f32::NAN;
            }
        }
    }
    Ok(())
}

/// Writes a raster as an in-memory GeoTIFF that every worker can open.
fn write_geotiff(path: &str, r: &Raster, wkt: &str, origin: &Path) -> Result<(), GeoError> {
    let e = |m: String| err(origin, format!("in-memory copy: {m}"));
    let mut ds = DriverManager::get_driver_by_name("GTiff")
        .and_then(|d| d.create_with_band_type::<f32, _>(path, r.nx, r.ny, 1))
        .map_err(|x| e(x.to_string()))?;
    ds.set_geo_transform(&r.geotransform())
        .and_then(|_| ds.set_projection(wkt))
        .map_err(|x| e(x.to_string()))?;
    let mut band = ds.rasterband(1).map_err(|x| e(x.to_string()))?;
    band.set_no_data_value(Some(f64::NAN))
        .map_err(|x| e(x.to_string()))?;
    let mut buf = Buffer::new((r.nx, r.ny), r.values.clone());
    band.write((0, 0), (r.nx, r.ny), &mut buf)
        .map_err(|x| e(x.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raster(nx: usize, x0: f64, dx: f64) -> Raster {
        Raster {
            nx,
            ny: 1,
            x0,
            y0: 0.0,
            dx,
            dy: 1.0,
            values: (0..nx).map(|i| i as f32).collect(),
        }
    }

    #[test]
    fn longitudes_0_360_wrap_to_minus_180_180() {
        // Gridline 0..360 at 90°: nodes 0, 90, 180, 270, 360 (360 repeats 0) -> nodes
        // -180..180, the 180° column on both sides so that cells reach -180 and 180.
        let mut r = raster(5, 0.0, 90.0);
        assert!(wrap_longitudes(&mut r));
        assert_eq!(r.nx, 5);
        assert_eq!(r.x0, -180.0);
        assert_eq!(r.values, vec![2.0, 3.0, 0.0, 1.0, 2.0]);
        // Pixel 0..360: centres 45, 135, 225, 315.
        let mut r = raster(4, 45.0, 90.0);
        assert!(wrap_longitudes(&mut r));
        assert_eq!(r.x0, -135.0);
        assert_eq!(r.values, vec![2.0, 3.0, 0.0, 1.0]);
        // Already -180..180: untouched.
        let mut r = raster(4, -135.0, 90.0);
        assert!(!wrap_longitudes(&mut r));
        assert_eq!(r.values, vec![0.0, 1.0, 2.0, 3.0]);
    }
}
