//! Reading sources into north-up rasters in their own CRS.
//!
//! Every reader yields a [`Raster`]: values row by row starting with the northernmost row, on a
//! regular grid described by the centre of the first cell and the cell size, missing values
//! NaN. Regridding then works on one representation whatever the file layout.
//!
//! - [`gmt`]: old GMT netCDF grids (1-D `z`, `x_range`/`y_range`/`spacing`/`dimension`), which
//!   GDAL 3.6 reads as a 1-row raster and the seed read upside down and half a cell off;
//! - [`dims`]: the 2-D slices of a netCDF variable a cube variable takes (by coordinate
//!   value, as a time axis, as extra axes such as pressure level);
//! - [`outlines`]: outlines stored in HDF5 groups (one polygon per group), made a vector layer;
//! - [`prepare`]: a source file made ready to resample (decoded, masked, lon/lat wrapped,
//!   vectors reprojected), once per build.

pub mod dims;
pub mod gmt;
pub mod outlines;
pub mod prepare;

/// A regular, north-up grid of values.
#[derive(Clone, Debug)]
pub struct Raster {
    /// Columns.
    pub nx: usize,
    /// Rows.
    pub ny: usize,
    /// Centre of the first (westernmost) column.
    pub x0: f64,
    /// Centre of the first (northernmost) row.
    pub y0: f64,
    /// Column spacing (> 0, eastwards).
    pub dx: f64,
    /// Row spacing (> 0, southwards).
    pub dy: f64,
    /// `ny * nx` values, row-major, north first; NaN = no data.
    pub values: Vec<f32>,
}

impl Raster {
    /// Centre of column `i`.
    pub fn x(&self, i: usize) -> f64 {
        self.x0 + i as f64 * self.dx
    }

    /// Centre of row `j` (row 0 is the northernmost).
    pub fn y(&self, j: usize) -> f64 {
        self.y0 - j as f64 * self.dy
    }

    /// The value at row `j`, column `i`.
    pub fn value(&self, j: usize, i: usize) -> f32 {
        self.values[j * self.nx + i]
    }

    /// GDAL geotransform (cell edges).
    pub fn geotransform(&self) -> [f64; 6] {
        [
            self.x0 - self.dx / 2.0,
            self.dx,
            0.0,
            self.y0 + self.dy / 2.0,
            0.0,
            -self.dy,
        ]
    }
}
