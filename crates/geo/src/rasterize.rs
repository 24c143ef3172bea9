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
use gdal::Dataset;

use crate::grid::TargetGrid;
use crate::recipe::Rasterize;
use crate::warp::{last_gdal_error, window_dataset, window_values};
use crate::{gdal_err, read_err, GeoError};

/// How features become cell values.
#[derive(Clone, Debug)]
pub struct RasterizeSpec {
    /// Value burnt (when no attribute is).
    pub burn: f64,
    /// A numeric attribute whose value each feature burns, instead of `burn`.
    pub attribute: Option<String>,
    /// Burn every cell a polygon touches, not only those whose centre it covers.
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
    let ds = Dataset::open(src).map_err(|e| gdal_err(src, "GDAL cannot open it", e))?;
    let mem = window_dataset(src, grid, &cols, &rows, spec.background)?;

    let mut args = CslStringList::new();
    let mut push = |a: &str| {
        args.add_string(a)
            .map_err(|e| gdal_err(src, "gdal_rasterize options", e))
    };
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
    window_values(src, &mem)
}
