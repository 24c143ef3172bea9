//! Sources onto the target grid, one output window at a time, with GDAL's warper.
//!
//! The seed resampled twice (reproject, then `interp` onto cell centres) and interpolated a
//! no-data sentinel as data. Here each source is resampled once, straight from its own grid and
//! CRS onto a window of the target grid (a chunk), with its no-data value known to GDAL, so a
//! build needs one chunk of output in memory per worker whatever the grid size. GDAL decides
//! which source pixels a destination pixel needs from the destination geotransform alone, so
//! warping a grid chunk by chunk gives the values of warping it whole.

use std::ops::Range;
use std::path::Path;

use gdal::cpl::CslStringList;
use gdal::spatial_ref::SpatialRef;
use gdal::{Dataset, DriverManager};

use crate::grid::TargetGrid;
use crate::recipe::Resampling;
use crate::{gdal_err, read_err, GeoError};

/// How one raster source is warped.
#[derive(Clone, Debug)]
pub struct WarpSpec {
    /// How cells are resampled.
    pub resampling: Resampling,
    /// A no-data value the file does not declare (e.g. -32767).
    pub src_nodata: Option<f64>,
    /// The recipe's CRS of the file: used whatever the file declares (a file may declare a
    /// wrong one); `None` = the file's own.
    pub src_crs: Option<String>,
    /// Let GDAL read the file's overviews when the target is coarser. Off by default: an
    /// overview is a second resampling, and some files' overviews hold other values than
    /// their data.
    pub overviews: bool,
}

impl Resampling {
    /// gdalwarp's name of the method.
    pub fn gdal_name(self) -> &'static str {
        match self {
            Resampling::Nearest => "near",
            Resampling::Bilinear => "bilinear",
            Resampling::Average => "average",
            Resampling::Mode => "mode",
        }
    }
}

/// The last GDAL error message, for errors GDAL reports through its error state.
pub fn last_gdal_error() -> String {
    // SAFETY: CPLGetLastErrorMsg returns a pointer to a thread-local, NUL-terminated string.
    unsafe {
        let p = gdal_sys::CPLGetLastErrorMsg();
        if p.is_null() {
            String::new()
        } else {
            std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}

/// Warps band 1 of `src` onto columns `cols` and rows `rows` of `grid` (row 0 = north):
/// `rows.len() * cols.len()` values, row-major, NaN where the source has no data.
pub fn warp_window(
    src: &Path,
    spec: &WarpSpec,
    grid: &TargetGrid,
    cols: Range<usize>,
    rows: Range<usize>,
) -> Result<Vec<f32>, GeoError> {
    let ds = Dataset::open(src).map_err(|e| gdal_err(src, "GDAL cannot open it", e))?;
    if ds.raster_count() < 1 {
        return Err(read_err(src, "has no raster band".into()));
    }
    let src_crs = match &spec.src_crs {
        Some(c) => Some(
            SpatialRef::from_definition(c)
                .and_then(|s| s.to_wkt())
                .map_err(|e| gdal_err(src, format!("the recipe's CRS {c:?} is not usable"), e))?,
        ),
        None if ds.projection().trim().is_empty() => {
            return Err(read_err(
                src,
                "declares no CRS and the recipe gives none (set processing.crs or source_crs)"
                    .into(),
            ))
        }
        None => None,
    };
    let mem = window_dataset(src, grid, &cols, &rows, f64::NAN)?;
    let mut args = CslStringList::new();
    let mut push = |a: &str| {
        args.add_string(a)
            .map_err(|e| gdal_err(src, "gdalwarp options", e))
    };
    push("-r")?;
    push(spec.resampling.gdal_name())?;
    // The exact transformer: GDAL's default approximates the transformation per window to
    // 1/8 pixel, so a reprojected source would depend on how the grid is chunked.
    push("-et")?;
    push("0")?;
    // GDAL widens its kernels by a source/destination scale it estimates per window, which
    // for a reprojected source depends on the window; fixed at 1, bilinear is interpolation
    // at the cell centre whatever the chunking (a finer source wants `average`).
    for o in ["XSCALE=1", "YSCALE=1"] {
        push("-wo")?;
        push(o)?;
    }
    if !spec.overviews {
        push("-ovr")?;
        push("NONE")?;
    }
    push("-dstnodata")?;
    push("nan")?;
    if let Some(v) = spec.src_nodata {
        push("-srcnodata")?;
        push(&v.to_string())?;
    }
    if let Some(wkt) = &src_crs {
        push("-s_srs")?;
        push(wkt)?;
    }
    // SAFETY: the options list and datasets outlive the calls; GDALWarp writes into `mem`
    // (an existing dataset, so it returns that handle, not a new one to free).
    unsafe {
        let opts = gdal_sys::GDALWarpAppOptionsNew(args.as_ptr(), std::ptr::null_mut());
        if opts.is_null() {
            return Err(read_err(
                src,
                format!("warp options: {}", last_gdal_error()),
            ));
        }
        let mut src_handle = ds.c_dataset();
        let mut usage_error = 0;
        let out = gdal_sys::GDALWarp(
            std::ptr::null(),
            mem.c_dataset(),
            1,
            &mut src_handle,
            opts,
            &mut usage_error,
        );
        gdal_sys::GDALWarpAppOptionsFree(opts);
        if out.is_null() || usage_error != 0 {
            return Err(read_err(
                src,
                format!("GDAL warp failed: {}", last_gdal_error()),
            ));
        }
    }
    window_values(src, &mem)
}

/// An in-memory float32 dataset over columns `cols` and rows `rows` of `grid` (its CRS and
/// geotransform), every cell `fill`, no-data NaN: what the warper and the rasteriser write
/// one output chunk into. `src` names the source in errors.
pub(crate) fn window_dataset(
    src: &Path,
    grid: &TargetGrid,
    cols: &Range<usize>,
    rows: &Range<usize>,
    fill: f64,
) -> Result<Dataset, GeoError> {
    let wkt = SpatialRef::from_definition(&grid.crs)
        .and_then(|s| s.to_wkt())
        .map_err(|e| gdal_err(src, format!("target CRS {:?}", grid.crs), e))?;
    let mut mem = DriverManager::get_driver_by_name("MEM")
        .and_then(|d| d.create_with_band_type::<f32, _>("", cols.len(), rows.len(), 1))
        .map_err(|e| gdal_err(src, "GDAL MEM dataset", e))?;
    let (x0, y0) = grid.window_origin(cols.start, rows.start);
    let gt = [x0, grid.res_x, 0.0, y0, 0.0, -grid.res_y];
    let setup = |mem: &mut Dataset| -> gdal::errors::Result<()> {
        mem.set_geo_transform(&gt)?;
        mem.set_projection(&wkt)?;
        let mut band = mem.rasterband(1)?;
        band.set_no_data_value(Some(f64::NAN))?;
        band.fill(fill, None)
    };
    setup(&mut mem).map_err(|e| gdal_err(src, "GDAL MEM dataset", e))?;
    Ok(mem)
}

/// The values of a [`window_dataset`], row-major, north first.
pub(crate) fn window_values(src: &Path, mem: &Dataset) -> Result<Vec<f32>, GeoError> {
    let (w, h) = mem.raster_size();
    let band = mem
        .rasterband(1)
        .map_err(|e| gdal_err(src, "the warped window", e))?;
    let buf = band
        .read_as::<f32>((0, 0), (w, h), (w, h), None)
        .map_err(|e| gdal_err(src, "the warped window", e))?;
    Ok(buf.into_shape_and_vec().1)
}
