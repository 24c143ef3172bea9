//! Old GMT netCDF grids: `x_range`, `y_range`, `z_range`, `spacing`, `dimension` and a 1-D `z`.
//!
//! Facts of the format (checked with GMT 6.4, see `shared/data/polar/MANIFEST.md`): `z` is
//! stored row by row starting with the northernmost row; `z:node_offset = 1` (pixel
//! registration) means the ranges are cell edges and the centres are `x_range[0] + (i + 0.5)
//! dx`; `node_offset = 0` (gridline) means the ranges are the outer nodes, `x_range[0] + i dx`,
//! and `dimension = range / spacing + 1`. `scale_factor`, `add_offset` and `_FillValue` apply.

use std::path::Path;

use netcdf::AttributeValue;

use super::Raster;
use crate::{netcdf_err, GeoError};

/// Whether a file has the old GMT layout (the variables that define it, `z` one-dimensional).
pub fn is_gmt_grid(path: &Path) -> bool {
    let Ok(file) = netcdf::open(path) else {
        return false;
    };
    ["x_range", "y_range", "spacing", "dimension"]
        .iter()
        .all(|v| file.variable(v).is_some())
        && file
            .variable("z")
            .is_some_and(|z| z.dimensions().len() == 1)
}

fn attr_f64(var: &netcdf::Variable, name: &str) -> Option<f64> {
    match var.attribute_value(name)?.ok()? {
        AttributeValue::Double(v) => Some(v),
        AttributeValue::Float(v) => Some(v as f64),
        AttributeValue::Int(v) => Some(v as f64),
        AttributeValue::Short(v) => Some(v as f64),
        AttributeValue::Doubles(v) => v.first().copied(),
        AttributeValue::Floats(v) => v.first().map(|x| *x as f64),
        AttributeValue::Ints(v) => v.first().map(|x| *x as f64),
        _ => None,
    }
}

/// Decodes an old GMT grid into a north-up raster.
pub fn read(path: &Path) -> Result<Raster, GeoError> {
    let err = |message: String| GeoError::Read {
        path: path.to_path_buf(),
        message,
    };
    let file = netcdf::open(path).map_err(|e| netcdf_err(path, "not a readable netCDF file", e))?;
    let pair = |name: &str| -> Result<[f64; 2], GeoError> {
        let v = file
            .variable(name)
            .ok_or_else(|| err(format!("no `{name}` variable: not an old GMT grid")))?;
        let values: Vec<f64> = v
            .get_values::<f64, _>(..)
            .map_err(|e| netcdf_err(path, format!("`{name}`"), e))?;
        match values.as_slice() {
            [a, b] => Ok([*a, *b]),
            _ => Err(err(format!("`{name}` has {} values, not 2", values.len()))),
        }
    };
    let (xr, yr, spacing, dimension) = (
        pair("x_range")?,
        pair("y_range")?,
        pair("spacing")?,
        pair("dimension")?,
    );
    let z = file
        .variable("z")
        .ok_or_else(|| err("no `z` variable".into()))?;
    let pixel = attr_f64(&z, "node_offset").unwrap_or(0.0) == 1.0;
    let whole = |v: f64| v >= 1.0 && v.fract() == 0.0 && v < 1e15;
    let (dx, dy) = (spacing[0], spacing[1]);
    let grid = whole(dimension[0])
        && whole(dimension[1])
        && dx > 0.0
        && dy > 0.0
        && dx.is_finite()
        && dy.is_finite();
    if !grid || xr.iter().chain(&yr).any(|v| !v.is_finite()) {
        return Err(err(format!(
            "dimension {dimension:?}, spacing {spacing:?} and ranges {xr:?}, {yr:?} describe no grid"
        )));
    }
    let (nx, ny) = (dimension[0] as usize, dimension[1] as usize);
    // The cells `z` must hold, checked against its stored length before anything is read
    // (a header can claim any size), and against the memory budget.
    let cells = nx
        .checked_mul(ny)
        .ok_or_else(|| err(format!("dimension {dimension:?} overflows")))?;
    let stored: usize = z.dimensions().iter().map(|d| d.len()).product();
    if stored != cells {
        return Err(err(format!(
            "`z` has {stored} values for a {nx} x {ny} grid"
        )));
    }
    cryocube_cube::budget::Budget::from_env().check_memory(
        path,
        &format!("the {nx} x {ny} grid"),
        "its dimension variable",
        cells as u128 * 8,
    )?;
    // The ranges, spacing and dimension must agree (a mismatch means a misread registration).
    let expected = |range: [f64; 2], d: f64| {
        let cells = (range[1] - range[0]) / d;
        if pixel {
            cells
        } else {
            cells + 1.0
        }
    };
    for (axis, n, range, d) in [("x", nx, xr, dx), ("y", ny, yr, dy)] {
        let e = expected(range, d);
        if (e - n as f64).abs() > 1e-3 {
            return Err(err(format!(
                "{axis}: range {range:?} with spacing {d} gives {e:.3} {}, but dimension says {n}",
                if pixel { "cells" } else { "nodes" }
            )));
        }
    }
    let raw: Vec<f32> = z
        .get_values::<f32, _>(..)
        .map_err(|e| netcdf_err(path, "`z`", e))?;
    if raw.len() != nx * ny {
        return Err(err(format!(
            "`z` has {} values for a {nx} x {ny} grid",
            raw.len()
        )));
    }
    let scale = attr_f64(&z, "scale_factor").unwrap_or(1.0);
    let offset = attr_f64(&z, "add_offset").unwrap_or(0.0);
    let fill = attr_f64(&z, "_FillValue");
    let values = raw
        .into_iter()
        .map(|v| {
            if v.is_nan() || fill.is_some_and(|f| v as f64 == f) {
                f32::NAN
            } else {
                (v as f64 * scale + offset) as f32
            }
        })
        .collect();
    let half = if pixel { 0.5 } else { 0.0 };
    Ok(Raster {
        nx,
        ny,
        x0: xr[0] + half * dx,
        y0: yr[1] - half * dy,
        dx,
        dy,
        values,
    })
}
