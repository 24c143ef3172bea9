//! The target grid of a polar cube: cell centres on a regular, north-up grid.
//!
//! The recipe gives the cell edges (`spatial_bbox`) and the cell size (`spatial_res`); the
//! seed workflow put values at `x = xmin + (i + 0.5) * res` and so do we, but with y descending
//! (first row = north), as GDAL and map tools expect. A bbox that is not a whole number of
//! cells is refused rather than silently trimmed.

use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};

use crate::recipe::Properties;

/// A regular grid in a projected CRS.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetGrid {
    /// The CRS, as the recipe names it (e.g. `EPSG:3031`).
    pub crs: String,
    /// West edge of the first column.
    pub x_min: f64,
    /// North edge of the first row.
    pub y_max: f64,
    /// Cell width, CRS units.
    pub res_x: f64,
    /// Cell height, CRS units.
    pub res_y: f64,
    /// Columns.
    pub nx: usize,
    /// Rows.
    pub ny: usize,
}

/// Most cells a grid may have: beyond a 10 m grid of all Antarctica, far below what a cell
/// size in the wrong units (`--res 0.001`) or a bbox in the wrong CRS produces.
pub const MAX_GRID_CELLS: u128 = 1 << 40;

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
        let (nx, ny) = (count(x1 - x0, rx, "x")?, count(y1 - y0, ry, "y")?);
        if nx == 0 || ny == 0 {
            return Err((
                "$.properties.spatial_res".into(),
                format!(
                    "cells of {rx} x {ry} are larger than the extent ({} x {}): the grid would be empty",
                    x1 - x0,
                    y1 - y0
                ),
            ));
        }
        if nx as u128 * ny as u128 > MAX_GRID_CELLS {
            return Err((
                "$.properties.spatial_res".into(),
                format!(
                    "cells of {rx} x {ry} over {} x {} make a grid of {nx} x {ny} = {:.1e} cells, more than {MAX_GRID_CELLS:.0e} (a 10 m grid of all Antarctica has 3.6e11)",
                    x1 - x0,
                    y1 - y0,
                    nx as f64 * ny as f64,
                ),
            ));
        }
        Ok(TargetGrid {
            crs: crs.to_string(),
            x_min: x0,
            y_max: y1,
            res_x: rx,
            res_y: ry,
            nx,
            ny,
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

    /// Centre (x, y) of column `c`, row `j`, which may lie off the grid (as [`Self::x`] and
    /// [`Self::y`] on it).
    pub fn centre(&self, c: i64, j: i64) -> (f64, f64) {
        (
            self.x_min + (c as f64 + 0.5) * self.res_x,
            self.y_max - (j as f64 + 0.5) * self.res_y,
        )
    }

    /// Upper-left corner (cell edges) of the window starting at column `col`, row `row`.
    pub fn window_origin(&self, col: usize, row: usize) -> (f64, f64) {
        (
            self.x_min + col as f64 * self.res_x,
            self.y_max - row as f64 * self.res_y,
        )
    }

    /// GDAL geotransform of the grid (north-up).
    pub fn geotransform(&self) -> [f64; 6] {
        [self.x_min, self.res_x, 0.0, self.y_max, 0.0, -self.res_y]
    }

    /// The grid's outer edges, `k` points a side, anticlockwise from the south-west corner,
    /// in longitude/latitude; and which pole (-90 or 90) lies inside the grid, if one does.
    fn outline(&self, k: usize) -> Option<Outline> {
        let src = SpatialRef::from_definition(&self.crs).ok()?;
        let mut dst = SpatialRef::from_epsg(4326).ok()?;
        dst.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
        let t = CoordTransform::new(&src, &dst).ok()?;
        let (w, n) = (self.x_min, self.y_max);
        let (e, s) = (
            w + self.nx as f64 * self.res_x,
            n - self.ny as f64 * self.res_y,
        );
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        let f = |i: usize| i as f64 / k as f64;
        for i in 0..k {
            xs.push(w + f(i) * (e - w));
            ys.push(s);
        }
        for i in 0..k {
            xs.push(e);
            ys.push(s + f(i) * (n - s));
        }
        for i in 0..k {
            xs.push(e - f(i) * (e - w));
            ys.push(n);
        }
        for i in 0..k {
            xs.push(w);
            ys.push(n - f(i) * (n - s));
        }
        t.transform_coords(&mut xs, &mut ys, &mut []).ok()?;
        let back = CoordTransform::new(&dst, &src).ok()?;
        let mut pole = None;
        for p in [-90.0, 90.0] {
            let (mut px, mut py) = ([0.0], [p]);
            if back.transform_coords(&mut px, &mut py, &mut []).is_ok()
                && (w..=e).contains(&px[0])
                && (s..=n).contains(&py[0])
            {
                pole = Some(p);
            }
        }
        Some((xs.into_iter().zip(ys).collect(), pole))
    }

    /// `[lat_min, lat_max, lon_min, lon_max]` of the grid, for ACDD `geospatial_*`: its edges
    /// sampled, and all longitudes with the pole's latitude when a pole lies inside.
    pub fn lon_lat_bounds(&self) -> Option<[f64; 4]> {
        let (pts, pole) = self.outline(64)?;
        let lats = pts.iter().map(|p| p.1);
        let lons = pts.iter().map(|p| p.0);
        let mut b = [
            lats.clone().fold(f64::INFINITY, f64::min),
            lats.fold(f64::NEG_INFINITY, f64::max),
            lons.clone().fold(f64::INFINITY, f64::min),
            lons.fold(f64::NEG_INFINITY, f64::max),
        ];
        if let Some(p) = pole {
            if p < 0.0 {
                b[0] = -90.0;
            } else {
                b[1] = 90.0;
            }
            b[2] = -180.0;
            b[3] = 180.0;
        }
        Some(b)
    }

    /// The grid's coverage as a GeoJSON Polygon or MultiPolygon in CRS-84 longitude/latitude
    /// (what the DeepESDL specification wants as a recipe's `geometry`), its edges sampled
    /// every 1/64 of a side. Around a pole the ring runs along the edge from -180° to 180°
    /// and closes through the pole; a grid across the antimeridian is cut in two there.
    pub fn coverage_polygon(&self) -> Option<serde_json::Value> {
        let (pts, pole) = self.outline(64)?;
        let round = |v: f64| (v * 1e6).round() / 1e6;
        let ring_json = |ring: &[(f64, f64)]| -> serde_json::Value {
            let mut r: Vec<[f64; 2]> = ring.iter().map(|p| [round(p.0), round(p.1)]).collect();
            if r.first() != r.last() {
                r.push(r[0]);
            }
            serde_json::json!([r])
        };
        if let Some(p) = pole {
            let mut by_lon = pts.clone();
            by_lon.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (first, last) = (by_lon[0].1, by_lon[by_lon.len() - 1].1);
            let mut ring = vec![(-180.0, first)];
            ring.extend(by_lon);
            ring.extend([(180.0, last), (180.0, p), (-180.0, p)]);
            return Some(
                serde_json::json!({"type": "Polygon", "coordinates": ring_json(&anticlockwise(ring))}),
            );
        }
        // Longitudes made continuous along the ring; a ring reaching past 180° is cut there.
        let mut ring: Vec<(f64, f64)> = Vec::with_capacity(pts.len());
        for (lon, lat) in pts {
            let lon = match ring.last() {
                Some(&(prev, _)) => lon + 360.0 * ((prev - lon) / 360.0).round(),
                None => lon,
            };
            ring.push((lon, lat));
        }
        let ring = anticlockwise(ring);
        let max = ring.iter().fold(f64::NEG_INFINITY, |m, p| m.max(p.0));
        let min = ring.iter().fold(f64::INFINITY, |m, p| m.min(p.0));
        if max <= 180.0 && min >= -180.0 {
            return Some(serde_json::json!({"type": "Polygon", "coordinates": ring_json(&ring)}));
        }
        let cut = if max > 180.0 { 180.0 } else { -180.0 };
        let shift = if max > 180.0 { -360.0 } else { 360.0 };
        let inside = clip(&ring, cut, cut < 0.0);
        let outside: Vec<(f64, f64)> = clip(&ring, cut, cut > 0.0)
            .into_iter()
            .map(|(x, y)| (x + shift, y))
            .collect();
        Some(serde_json::json!({
            "type": "MultiPolygon",
            "coordinates": [ring_json(&inside), ring_json(&outside)]
        }))
    }
}

/// Points (longitude, latitude) along a grid's edges, and the pole inside it if any.
type Outline = (Vec<(f64, f64)>, Option<f64>);

/// A ring turned anticlockwise (positive area in lon/lat), as RFC 7946 wants outer rings.
fn anticlockwise(mut ring: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    let area: f64 = ring
        .iter()
        .zip(ring.iter().cycle().skip(1))
        .map(|(a, b)| a.0 * b.1 - b.0 * a.1)
        .sum();
    if area < 0.0 {
        ring.reverse();
    }
    ring
}

/// The part of a ring east (`keep_east`) or west of the meridian `lon` (Sutherland-Hodgman
/// against one line).
fn clip(ring: &[(f64, f64)], lon: f64, keep_east: bool) -> Vec<(f64, f64)> {
    let inside = |p: &(f64, f64)| if keep_east { p.0 >= lon } else { p.0 <= lon };
    let mut out = Vec::new();
    for (i, b) in ring.iter().enumerate() {
        let a = &ring[(i + ring.len() - 1) % ring.len()];
        let cross = || {
            let t = (lon - a.0) / (b.0 - a.0);
            (lon, a.1 + t * (b.1 - a.1))
        };
        match (inside(a), inside(b)) {
            (true, true) => out.push(*b),
            (true, false) => out.push(cross()),
            (false, true) => {
                out.push(cross());
                out.push(*b);
            }
            (false, false) => {}
        }
    }
    out
}
