//! Vector features onto a window of the target grid, with GDAL's rasteriser.
//!
//! The seed listed a shapefile among its sources and never used it. Here polygons (already
//! reprojected onto the target CRS by [`crate::read::prepare`]) are burnt window by window,
//! like rasters are warped: a burnt value or a feature attribute, into cells whose centre is
//! inside a feature (the default, what gdal_rasterize does) or every cell a feature touches.
//! Cells no feature covers get the background (no data unless the recipe says e.g. 0).

use std::ops::Range;
use std::path::Path;

use gdal::cpl::CslStringList;
use gdal::spatial_ref::SpatialRef;
use gdal::{Dataset, DriverManager};

use crate::grid::TargetGrid;
use crate::recipe::Rasterize;
use crate::warp::last_gdal_error;
use crate::GeoError;

/// How features become cell values.
#[derive(Clone, Debug)]
pub struct RasterizeSpec {
    /// Value burnt (when no attribute is).
    pub burn: f64,
    pub attribute: Option<String>,
    pub all_touched: bool,
    /// Value of uncovered cells (NaN = no data).
    pub background: f64,
}

impl From<&Rasterize> for RasterizeSpec {
    fn from(r: &Rasterize) -> Self {
        RasterizeSpec {
            burn: r.burn.unwrap_or(1.0),
            attribute: r.attribute.clone(),
            all_touched: r.all_touched,
            background: r.background.unwrap_or(f64::NAN),
        }
    }
}

fn read_err(path: &Path, message: String) -> GeoError {
    GeoError::Read {
        path: path.to_path_buf(),
        message,
    }
}

/// Burns layer `layer` of `src` (in the grid's CRS) into columns `cols` and rows `rows` of
/// `grid`: `rows.len() * cols.len()` values, row-major, north first.
pub fn rasterize_window(
    src: &Path,
    layer: &str,
    spec: &RasterizeSpec,
    grid: &TargetGrid,
    cols: Range<usize>,
    rows: Range<usize>,
) -> Result<Vec<f32>, GeoError> {
    let ds = Dataset::open(src).map_err(|e| read_err(src, format!("GDAL cannot open it: {e}")))?;
    let wkt = SpatialRef::from_definition(&grid.crs)
        .and_then(|s| s.to_wkt())
        .map_err(|e| read_err(src, format!("target CRS {:?}: {e}", grid.crs)))?;
    let (w, h) = (cols.len(), rows.len());
    let mut mem = DriverManager::get_driver_by_name("MEM")
        .and_then(|d| d.create_with_band_type::<f32, _>("", w, h, 1))
        .map_err(|e| read_err(src, format!("GDAL MEM dataset: {e}")))?;
    let (x0, y0) = grid.window_origin(cols.start, rows.start);
    let gt = [x0, grid.res_x, 0.0, y0, 0.0, -grid.res_y];
    let setup = |mem: &mut Dataset| -> gdal::errors::Result<()> {
        mem.set_geo_transform(&gt)?;
        mem.set_projection(&wkt)?;
        mem.rasterband(1)?.fill(spec.background, None)
    };
    setup(&mut mem).map_err(|e| read_err(src, format!("GDAL MEM dataset: {e}")))?;

    let mut args = CslStringList::new();
    let mut push = |a: &str| args.add_string(a).map_err(|e| read_err(src, e.to_string()));
    push("-l")?;
    push(layer)?;
    match &spec.attribute {
        Some(a) => {
            push("-a")?;
            push(a)?;
        }
        None => {
            push("-burn")?;
            push(&spec.burn.to_string())?;
        }
    }
    if spec.all_touched {
        push("-at")?;
    }
    // SAFETY: the options list and both datasets outlive the calls; GDALRasterize writes into
    // `mem` (an existing dataset, so it returns that handle, not a new one to free).
    unsafe {
        let opts = gdal_sys::GDALRasterizeOptionsNew(args.as_ptr(), std::ptr::null_mut());
        if opts.is_null() {
            return Err(read_err(
                src,
                format!("rasterize options: {}", last_gdal_error()),
            ));
        }
        let mut usage_error = 0;
        let out = gdal_sys::GDALRasterize(
            std::ptr::null(),
            mem.c_dataset(),
            ds.c_dataset(),
            opts,
            &mut usage_error,
        );
        gdal_sys::GDALRasterizeOptionsFree(opts);
        if out.is_null() || usage_error != 0 {
            return Err(read_err(
                src,
                format!("GDAL rasterize failed: {}", last_gdal_error()),
            ));
        }
    }
    let band = mem
        .rasterband(1)
        .map_err(|e| read_err(src, e.to_string()))?;
    let buf = band
        .read_as::<f32>((0, 0), (w, h), (w, h), None)
        .map_err(|e| read_err(src, e.to_string()))?;
    Ok(buf.into_shape_and_vec().1)
}
