//! The target grid of a polar cube: cell centres on a regular, north-up grid.
//!
//! The recipe gives the cell edges (`spatial_bbox`) and the cell size (`spatial_res`); the
//! seed workflow put values at `x = xmin + (i + 0.5) * res` and so do we, but with y descending
//! (first row = north), as GDAL and map tools expect. A bbox that is not a whole number of
//! cells is refused rather than silently trimmed.

use crate::recipe::Properties;

/// A regular grid in a projected CRS.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetGrid {
    pub crs: String,
    /// West edge of the first column.
    pub x_min: f64,
    /// North edge of the first row.
    pub y_max: f64,
    pub res_x: f64,
    pub res_y: f64,
    pub nx: usize,
    pub ny: usize,
}

impl TargetGrid {
    /// The grid of a recipe, or the JSON path and reason why there is none.
    pub(crate) fn from_properties(p: &Properties) -> Result<TargetGrid, (String, String)> {
        let (rx, ry) = match p.spatial_res.as_slice() {
            [r] => (*r, *r),
            [x, y] => (*x, *y),
            _ => {
                return Err((
                    "$.properties.spatial_res".into(),
                    format!("one or two cell sizes, not {}", p.spatial_res.len()),
                ))
            }
        };
        Self::new(&p.spatial_ref, p.spatial_bbox, rx, ry)
    }

    /// A grid over `bbox` (`[xmin, ymin, xmax, ymax]`, cell edges) with cells `rx` x `ry`.
    pub fn new(
        crs: &str,
        bbox: [f64; 4],
        rx: f64,
        ry: f64,
    ) -> Result<TargetGrid, (String, String)> {
        if !(rx > 0.0 && ry > 0.0 && rx.is_finite() && ry.is_finite()) {
            return Err((
                "$.properties.spatial_res".into(),
                format!("cell sizes must be positive, not [{rx}, {ry}]"),
            ));
        }
        let [x0, y0, x1, y1] = bbox;
        if !(x1 > x0 && y1 > y0) || bbox.iter().any(|v| !v.is_finite()) {
            return Err((
                "$.properties.spatial_bbox".into(),
                format!("[xmin, ymin, xmax, ymax] with xmin < xmax and ymin < ymax, not {bbox:?}"),
            ));
        }
        let count = |extent: f64, res: f64, axis: &str| {
            let n = extent / res;
            if (n - n.round()).abs() > 1e-6 * n.max(1.0) {
                Err((
                    "$.properties.spatial_bbox".into(),
                    format!(
                        "the {axis} extent {extent} is not a whole number of {res} cells ({n:.4})"
                    ),
                ))
            } else {
                Ok(n.round() as usize)
            }
        };
        Ok(TargetGrid {
            crs: crs.to_string(),
            x_min: x0,
            y_max: y1,
            res_x: rx,
            res_y: ry,
            nx: count(x1 - x0, rx, "x")?,
            ny: count(y1 - y0, ry, "y")?,
        })
    }

    /// The same extent at another cell size (e.g. a 1 km build of a 100 m recipe).
    pub fn with_resolution(&self, res: f64) -> Result<TargetGrid, (String, String)> {
        let bbox = [
            self.x_min,
            self.y_max - self.ny as f64 * self.res_y,
            self.x_min + self.nx as f64 * self.res_x,
            self.y_max,
        ];
        Self::new(&self.crs, bbox, res, res).map_err(|(at, m)| {
            // Say which cell sizes would do: whole-metre sizes that divide both extents.
            let (wx, wy) = (bbox[2] - bbox[0], bbox[3] - bbox[1]);
            let fits = |r: f64| {
                let (nx, ny) = (wx / r, wy / r);
                (nx - nx.round()).abs() < 1e-6 && (ny - ny.round()).abs() < 1e-6
            };
            let up_to = (res.max(1.0) * 2.0).min(wx.max(wy)).min(1e7) as u64;
            let mut near: Vec<f64> = (1..=up_to).map(|r| r as f64).filter(|r| fits(*r)).collect();
            near.sort_by(|a, b| (a - res).abs().total_cmp(&(b - res).abs()));
            near.truncate(4);
            near.sort_by(f64::total_cmp);
            let hint = if near.is_empty() {
                String::new()
            } else {
                let list: Vec<String> = near.iter().map(|r| r.to_string()).collect();
                format!("; sizes that fit this extent: {}", list.join(", "))
            };
            (at, format!("{m}{hint}"))
        })
    }

    /// Centre of column `i`.
    pub fn x(&self, i: usize) -> f64 {
        self.x_min + (i as f64 + 0.5) * self.res_x
    }

    /// Centre of row `j` (row 0 is the northernmost).
    pub fn y(&self, j: usize) -> f64 {
        self.y_max - (j as f64 + 0.5) * self.res_y
    }

    /// GDAL geotransform of the grid (north-up).
    /// Upper-left corner (cell edges) of the window starting at column `col`, row `row`.
    pub fn window_origin(&self, col: usize, row: usize) -> (f64, f64) {
        (
            self.x_min + col as f64 * self.res_x,
            self.y_max - row as f64 * self.res_y,
        )
    }

    pub fn geotransform(&self) -> [f64; 6] {
        [self.x_min, self.res_x, 0.0, self.y_max, 0.0, -self.res_y]
    }
}
