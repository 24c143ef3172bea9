//! A raster held in memory onto a window of the target grid, in Rust: nearest and bilinear.
//!
//! Most sources are small (under 100 MB) and most cubes large, so each source is read once
//! into memory and every output cell is computed from it directly, instead of asking GDAL's
//! warper to read and transform per window. The value of a cell depends only on the cell's
//! centre, never on the window: the cube is the same for any chunking.
//!
//! Where a target cell centre falls in the source:
//! - same CRS: source coordinates are the target's (an affine step to pixels);
//! - target polar stereographic, source longitude/latitude on the same ellipsoid (the lon/lat
//!   grids of polar cubes): the inverse projection in closed form (Snyder 1987, eqs. 21-33,
//!   3-5 with the conformal-latitude series), checked against PROJ when the resampler is made,
//!   its latitude tabulated against the distance from the pole ([`LatitudeTable`], 1e-11°);
//! - anything else: PROJ, exactly, per cell.
//!
//! The kernels follow GDAL's warper at kernel scale 1 (what `build` used before), so that the
//! values stay what `gdalwarp` gives: nearest takes the pixel the centre falls in; bilinear
//! weighs the four pixel centres around it, leaves out those outside the raster or without
//! data and renormalises the rest (no value when their weight is below 1e-5); a centre outside
//! the raster, or in a pixel without data, gets no value.

use std::ops::Range;
use std::sync::Arc;

use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use rayon::prelude::*;

use crate::grid::TargetGrid;
use crate::read::Raster;
use crate::recipe::Resampling;

/// Where the target grid's cell centres fall in the source CRS.
#[derive(Clone, Debug)]
enum CoordMap {
    Same,
    PolarToLonLat(Box<LatitudeTable>),
    /// PROJ from the target CRS to the source's (WKT of each).
    Proj {
        target: String,
        source: String,
    },
}

/// A source raster in memory with what it takes to resample it onto the target grid.
#[derive(Clone, Debug)]
pub struct Resampler {
    raster: Arc<Raster>,
    map: CoordMap,
    resampling: Resampling,
    /// Columns and rows of the target grid that can get data (all when unknown).
    footprint: Option<(Range<usize>, Range<usize>)>,
}

/// What a resampler could not be made for.
#[derive(Debug)]
pub struct Unsupported(pub String);

impl Resampler {
    /// A resampler of `raster` (in `source_wkt`) onto `grid`; only nearest and bilinear are
    /// computed here (average and mode stay with GDAL's warper).
    pub fn new(
        raster: Raster,
        source_wkt: &str,
        grid: &TargetGrid,
        resampling: Resampling,
    ) -> Result<Resampler, Unsupported> {
        if !matches!(resampling, Resampling::Nearest | Resampling::Bilinear) {
            return Err(Unsupported(format!("{} is GDAL's", resampling.gdal_name())));
        }
        let src = SpatialRef::from_wkt(source_wkt)
            .map_err(|e| Unsupported(format!("source CRS: {e}")))?;
        let dst = SpatialRef::from_definition(&grid.crs)
            .map_err(|e| Unsupported(format!("target CRS: {e}")))?;
        let target_wkt = dst.to_wkt().map_err(|e| Unsupported(e.to_string()))?;
        let map = if src == dst {
            CoordMap::Same
        } else if let Some(p) = PolarStereographic::of(&dst).filter(|p| {
            src.is_geographic() && same_ellipsoid(&src, &dst) && p.agrees_with_proj(&dst, &src)
        }) {
            CoordMap::PolarToLonLat(Box::new(LatitudeTable::new(p)))
        } else {
            CoordMap::Proj {
                target: target_wkt,
                source: source_wkt.to_string(),
            }
        };
        let footprint = match &map {
            CoordMap::Same => Some(same_crs_footprint(&raster, grid)),
            _ => None,
        };
        Ok(Resampler {
            raster: Arc::new(raster),
            map,
            resampling,
            footprint,
        })
    }

    /// Cells of the source held.
    pub fn cells(&self) -> usize {
        self.raster.values.len()
    }

    /// How cell centres are carried into the source, for the provenance.
    pub fn describe(&self) -> &'static str {
        match self.map {
            CoordMap::Same => "same CRS",
            CoordMap::PolarToLonLat(_) => match self.resampling {
                Resampling::Bilinear => "polar stereographic inverse, latitude tabulated, cubic on a 16-cell lattice within 1e-5 source pixel",
                _ => "polar stereographic inverse, latitude tabulated",
            },
            CoordMap::Proj { .. } => "PROJ per cell",
        }
    }

    /// Values of columns `cols` and rows `rows` of `grid`, row-major, NaN = no data.
    pub fn render(
        &self,
        grid: &TargetGrid,
        cols: Range<usize>,
        rows: Range<usize>,
    ) -> Result<Vec<f32>, String> {
        let (w, h) = (cols.len(), rows.len());
        let mut out = vec![f32::NAN; w * h];
        if let Some((fc, fr)) = &self.footprint {
            if fc.end <= cols.start
                || cols.end <= fc.start
                || fr.end <= rows.start
                || rows.end <= fr.start
            {
                return Ok(out);
            }
        }
        // Blocks of rows in parallel: a window is often one chunk, and a chunk may be the
        // whole grid.
        const ROWS: usize = 32;
        out.par_chunks_mut(ROWS * w)
            .enumerate()
            .try_for_each(|(b, block)| {
                let first = rows.start + b * ROWS;
                self.render_rows(grid, &cols, first, block)
            })?;
        Ok(out)
    }

    /// Rows from `first` on of the window over `cols`, into `block` (whole rows).
    fn render_rows(
        &self,
        grid: &TargetGrid,
        cols: &Range<usize>,
        first: usize,
        block: &mut [f32],
    ) -> Result<(), String> {
        let w = cols.len();
        let r = &*self.raster;
        // Source pixel coordinates: u from the west edge, v from the north edge.
        let (west, north) = (r.x0 - r.dx / 2.0, r.y0 + r.dy / 2.0);
        let transform = match &self.map {
            CoordMap::Proj { target, source } => Some(proj(target, source)?),
            _ => None,
        };
        if matches!(self.map, CoordMap::Same) {
            // Source columns depend on the target column only, rows on the row: the kernel's
            // positions are worked out once per window, then each cell is a few loads.
            let us: Vec<Axis> = cols
                .clone()
                .map(|c| Axis::new((grid.x(c) - west) / r.dx, r.nx))
                .collect();
            for (k, row) in block.chunks_mut(w).enumerate() {
                let v = Axis::new((north - grid.y(first + k)) / r.dy, r.ny);
                match self.resampling {
                    Resampling::Nearest => {
                        for (out, u) in row.iter_mut().zip(&us) {
                            *out = match (u.near, v.near) {
                                (Some(i), Some(j)) => r.values[j * r.nx + i],
                                _ => f32::NAN,
                            };
                        }
                    }
                    _ => bilinear_row(r, &us, &v, row),
                }
            }
            return Ok(());
        }
        if let (CoordMap::PolarToLonLat(table), Resampling::Bilinear) = (&self.map, self.resampling)
        {
            // Cell centres off the grid too: the lattice's nodes extend beyond its edges.
            let pixel = |c: i64, j: i64| {
                let (x, y) = grid.centre(c, j);
                let (lon, lat) = table.inverse(x, y);
                ((lon - west) / r.dx, (north - lat) / r.dy)
            };
            let bound = |c: i64, j: i64| {
                let (x, y) = grid.centre(c, j);
                polar_error_bound(table, grid, r, x, y)
            };
            let lattice = Lattice::new(cols, first, block.len() / w, &pixel, &bound);
            let l = Lattice::STEP;
            let mut columns = lattice.column_buffer();
            for (k, row) in block.chunks_mut(w).enumerate() {
                let j = first + k;
                lattice.columns_at(j as i64, &mut columns);
                // Lattice cell by lattice cell along the row.
                let mut c = cols.start;
                while c < cols.end {
                    let end = ((c / l + 1) * l).min(cols.end);
                    let out = &mut row[c - cols.start..end - cols.start];
                    if lattice.good(c, j) {
                        // As Lattice::along, with the lattice cell's four node columns and the
                        // weights' offset found once.
                        let p = lattice.node_columns(&columns, c);
                        for (o, w) in out.iter_mut().zip(&lattice.weights[c % l..]) {
                            let (u, v) = cubic(w, p);
                            *o = bilinear_point(r, u, v);
                        }
                    } else {
                        for (o, c) in out.iter_mut().zip(c..end) {
                            let (u, v) = pixel(c as i64, j as i64);
                            *o = bilinear_at(r, &Axis::new(u, r.nx), &Axis::new(v, r.ny));
                        }
                    }
                    c = end;
                }
            }
            return Ok(());
        }
        let mut xs = vec![0.0; w];
        let mut ys = vec![0.0; w];
        for (k, row) in block.chunks_mut(w).enumerate() {
            let y = grid.y(first + k);
            for (i, c) in cols.clone().enumerate() {
                xs[i] = grid.x(c);
                ys[i] = y;
            }
            match &self.map {
                CoordMap::Same => {}
                CoordMap::PolarToLonLat(table) => {
                    for i in 0..w {
                        (xs[i], ys[i]) = table.inverse(xs[i], ys[i]);
                    }
                }
                CoordMap::Proj { .. } => {
                    let t = transform.as_ref().expect("made above");
                    // Points PROJ cannot carry (beyond a pole) come back as errors: no value.
                    if t.transform_coords(&mut xs, &mut ys, &mut []).is_err() {
                        for i in 0..w {
                            let (mut x1, mut y1) = ([xs[i]], [ys[i]]);
                            if t.transform_coords(&mut x1, &mut y1, &mut []).is_ok() {
                                (xs[i], ys[i]) = (x1[0], y1[0]);
                            } else {
                                (xs[i], ys[i]) = (f64::NAN, f64::NAN);
                            }
                        }
                    }
                }
            }
            for i in 0..w {
                let u = Axis::new((xs[i] - west) / r.dx, r.nx);
                let v = Axis::new((north - ys[i]) / r.dy, r.ny);
                row[i] = match self.resampling {
                    Resampling::Nearest => match (u.near, v.near) {
                        (Some(i), Some(j)) => r.values[j * r.nx + i],
                        _ => f32::NAN,
                    },
                    _ => bilinear_at(r, &u, &v),
                };
            }
        }
        Ok(())
    }
}

/// Source pixel positions of target cells interpolated from a lattice of exact ones.
///
/// The lattice's nodes are the cells whose column and row are multiples of [`Self::STEP`]
/// on the whole grid (extended beyond its edges), so a cell's position never depends on the
/// window. Within each lattice cell the position is interpolated from the 4 x 4 nodes around
/// it by cubic Lagrange polynomials, first down the node columns, then along the row: the
/// error falls with the fourth power of the lattice spacing over the distance from the pole,
/// so that about one exact inverse per 128 cells meets a tolerance that a bilinear lattice of
/// the same spacing missed by 400 times at 1 km. A lattice cell is computed exactly, cell
/// by cell, where the interpolated position at its centre (where a cubic's error peaks)
/// differs from the exact one by more than [`Self::TOLERANCE`] source pixel, or where its
/// nodes come near the pole (across the ±180° seam the centre check fails). Used for
/// bilinear resampling from lon/lat sources, where the error moves a value by at most the
/// tolerance times the difference of neighbouring source values (nearest stays exact: a cell
/// near a pixel edge must not change pixel).
///
/// A check at one place cannot see everything: where the error changes sign within a
/// lattice cell, it can be small at the centre and not elsewhere (near the pole). So a
/// lattice cell is interpolated only where, besides, an upper bound of the error from the
/// fourth derivatives of the mapping is within the tolerance ([`polar_error_bound`]).
struct Lattice {
    /// Lattice column and row of the first node.
    a0: i64,
    b0: i64,
    /// Nodes across.
    na: usize,
    /// (u, v) per node, row-major.
    nodes: Vec<(f64, f64)>,
    /// Lattice column of the first lattice cell, and lattice cells across.
    ca0: i64,
    cb0: i64,
    nca: usize,
    /// Per lattice cell: interpolation is good enough.
    good: Vec<bool>,
    /// The four Lagrange weights at each of the STEP offsets within a lattice cell.
    weights: [[f64; 4]; Self::STEP],
}

impl Lattice {
    const STEP: usize = 16;
    /// A tenth of what the bilinear lattice allowed: a value moves by at most this times the
    /// difference of two neighbouring source values, which keeps lon/lat layers within 1e-4
    /// (relative) of GDAL's exact transformer even on 1° grids with steep anomalies.
    const TOLERANCE: f64 = 1e-5;

    /// The lattice over target columns `cols` and `n` rows from `first`; `pixel` gives the
    /// exact source position of a cell (column, row; either may lie off the grid), `bound` an
    /// upper bound of the interpolation error (source pixels) in the lattice cell centred on
    /// a cell.
    fn new(
        cols: &Range<usize>,
        first: usize,
        n: usize,
        pixel: &dyn Fn(i64, i64) -> (f64, f64),
        bound: &dyn Fn(i64, i64) -> f64,
    ) -> Lattice {
        let l = Self::STEP as i64;
        let (ca0, cb0) = (
            (cols.start / Self::STEP) as i64,
            (first / Self::STEP) as i64,
        );
        let (ca1, cb1) = (
            ((cols.end - 1) / Self::STEP) as i64,
            ((first + n - 1) / Self::STEP) as i64,
        );
        let (a0, b0) = (ca0 - 1, cb0 - 1);
        let (na, nb) = ((ca1 + 2 - a0 + 1) as usize, (cb1 + 2 - b0 + 1) as usize);
        let mut nodes = Vec::with_capacity(na * nb);
        for b in b0..b0 + nb as i64 {
            for a in a0..a0 + na as i64 {
                nodes.push(pixel(a * l, b * l));
            }
        }
        let weights = std::array::from_fn(|m| {
            let t = m as f64 / Self::STEP as f64;
            [
                -t * (t - 1.0) * (t - 2.0) / 6.0,
                (t + 1.0) * (t - 1.0) * (t - 2.0) / 2.0,
                -(t + 1.0) * t * (t - 2.0) / 2.0,
                (t + 1.0) * t * (t - 1.0) / 6.0,
            ]
        });
        let nca = (ca1 - ca0 + 1) as usize;
        let mut lattice = Lattice {
            a0,
            b0,
            na,
            nodes,
            ca0,
            cb0,
            nca,
            good: Vec::new(),
            weights,
        };
        let mut columns = vec![(0.0, 0.0); na];
        let mut good = Vec::with_capacity(nca * (cb1 - cb0 + 1) as usize);
        for cb in cb0..=cb1 {
            let j = cb * l + l / 2;
            lattice.columns_at(j, &mut columns);
            for ca in ca0..=ca1 {
                let c = ca * l + l / 2;
                let ok = bound(c, j) <= Self::TOLERANCE && {
                    let (u, v) = lattice.along(&columns, c);
                    let (eu, ev) = pixel(c, j);
                    (u - eu).abs().max((v - ev).abs()) <= Self::TOLERANCE
                };
                good.push(ok);
            }
        }
        lattice.good = good;
        lattice
    }

    /// The node columns' positions interpolated down to row `j` (into `columns`, one per
    /// node column).
    fn columns_at(&self, j: i64, columns: &mut [(f64, f64)]) {
        let l = Self::STEP as i64;
        let w = &self.weights[j.rem_euclid(l) as usize];
        let top = (j.div_euclid(l) - 1 - self.b0) as usize;
        for (a, out) in columns.iter_mut().enumerate() {
            let n = |k: usize| self.nodes[(top + k) * self.na + a];
            *out = cubic(w, &[n(0), n(1), n(2), n(3)]);
        }
    }

    /// The four node columns (of `columns`, interpolated down to a row) around the lattice
    /// cell holding column `c`.
    #[inline]
    fn node_columns<'a>(&self, columns: &'a [(f64, f64)], c: usize) -> &'a [(f64, f64); 4] {
        let left = ((c / Self::STEP) as i64 - 1 - self.a0) as usize;
        columns[left..left + 4]
            .try_into()
            .expect("four node columns")
    }

    /// The position of column `c` on the row whose node columns are `columns`.
    #[inline]
    fn along(&self, columns: &[(f64, f64)], c: i64) -> (f64, f64) {
        let l = Self::STEP as i64;
        let w = &self.weights[c.rem_euclid(l) as usize];
        let left = (c.div_euclid(l) - 1 - self.a0) as usize;
        let p = columns[left..left + 4]
            .try_into()
            .expect("four node columns");
        cubic(w, p)
    }

    /// Whether the cells of row `j` in the lattice cell holding column `c` are interpolated.
    #[inline]
    fn good(&self, c: usize, j: usize) -> bool {
        let (a, b) = (
            (c / Self::STEP) as i64 - self.ca0,
            (j / Self::STEP) as i64 - self.cb0,
        );
        self.good[b as usize * self.nca + a as usize]
    }

    /// A buffer for [`Self::columns_at`].
    fn column_buffer(&self) -> Vec<(f64, f64)> {
        vec![(0.0, 0.0); self.na]
    }

    /// The interpolated position of cell (column `c`, row `j`), or `None` where it must be
    /// computed exactly.
    #[cfg(test)]
    fn at(&self, c: usize, j: usize) -> Option<(f64, f64)> {
        if !self.good(c, j) {
            return None;
        }
        let mut columns = self.column_buffer();
        self.columns_at(j as i64, &mut columns);
        Some(self.along(&columns, c as i64))
    }
}

/// The cubic Lagrange interpolation of four positions with weights `w`: the one sum, in one
/// order, that every lattice path uses (the row kernel is tested bit for bit against the
/// cell-by-cell one).
#[inline]
fn cubic(w: &[f64; 4], p: &[(f64, f64); 4]) -> (f64, f64) {
    (
        w[0] * p[0].0 + w[1] * p[1].0 + w[2] * p[2].0 + w[3] * p[3].0,
        w[0] * p[0].1 + w[1] * p[1].1 + w[2] * p[2].1 + w[3] * p[3].1,
    )
}

/// An upper bound, in source pixels, of the error of [`Lattice`]'s interpolation of a lon/lat
/// source's pixel positions in the lattice cell centred at (x, y) of a polar stereographic
/// `grid`.
///
/// Per axis, cubic Lagrange interpolation between the middle two of four nodes h apart misses
/// by at most (9/16) h^4 / 4! times the largest fourth derivative; down the node columns and
/// then along the row (Lebesgue constant 1.25) that is at most 0.053 h^4 M4. The longitude,
/// atan2(x, y), has fourth derivatives of at most 6 / r^4 at a distance r from the pole;
/// the latitude's are smaller by about r / 2R (R the Earth's radius), which the factor
/// max(1, r / R) covers out to the equator and beyond. r is taken at the nearest point the
/// 4 x 4 nodes reach (1.5 spacings diagonally from the centre). 1e-9 pixel is added for the
/// tables' own piecewise cubics (within 1e-11°) and rounding.
fn polar_error_bound(table: &LatitudeTable, grid: &TargetGrid, r: &Raster, x: f64, y: f64) -> f64 {
    const EARTH_RADIUS: f64 = 6.371e6;
    let h = Lattice::STEP as f64 * grid.res_x.max(grid.res_y);
    let reach = 1.5 * std::f64::consts::SQRT_2 * h;
    let near = table.distance_from_pole(x, y) - reach;
    if near <= 0.0 {
        return f64::INFINITY;
    }
    let m4 = 6.0 / near.powi(4) * (near / EARTH_RADIUS).max(1.0);
    let radians = 0.053 * h.powi(4) * m4;
    radians.to_degrees() / r.dx.abs().min(r.dy.abs()) + 1e-9
}

fn proj(target: &str, source: &str) -> Result<CoordTransform, String> {
    let mut t = SpatialRef::from_wkt(target).map_err(|e| e.to_string())?;
    let mut s = SpatialRef::from_wkt(source).map_err(|e| e.to_string())?;
    t.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    s.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    CoordTransform::new(&t, &s).map_err(|e| e.to_string())
}

/// Where a pixel coordinate falls along one axis of the source: the pixel it is in, and the
/// two pixel centres around it with the weight of the second (the kernels' positions).
#[derive(Clone, Copy, Debug)]
struct Axis {
    /// The pixel the coordinate is in; `None` outside the raster.
    near: Option<usize>,
    /// The first of the two centres around it (may be -1 or n - 1 at the edges).
    lo: isize,
    /// The weight of `lo + 1`.
    frac: f64,
    n: usize,
}

impl Axis {
    #[inline]
    fn new(p: f64, n: usize) -> Axis {
        let near = (p >= 0.0 && p < n as f64).then_some(p as usize);
        let f = p - 0.5;
        // floor without a libm call (the build targets baseline x86-64, without roundsd);
        // NaN and huge values land outside the raster either way.
        let t = f as i64 as f64;
        let lo = if t > f { t - 1.0 } else { t };
        Axis {
            near,
            lo: lo as isize,
            frac: f - lo,
            n,
        }
    }

    /// Both centres inside the raster.
    fn inner(&self) -> bool {
        self.lo >= 0 && ((self.lo + 1) as usize) < self.n
    }
}

/// Bilinear at the point whose positions along each axis are `u` and `v`: no value where the
/// pixel it falls in has none (as GDAL's warper), else the four pixel centres around it
/// weighed by distance, those outside the raster or without data left out.
#[inline]
fn bilinear_at(r: &Raster, u: &Axis, v: &Axis) -> f32 {
    let (Some(i), Some(j)) = (u.near, v.near) else {
        return f32::NAN;
    };
    if r.values[j * r.nx + i].is_nan() {
        return f32::NAN;
    }
    if u.inner() && v.inner() {
        if let Some(value) = four_inside(r, u.lo as usize, v.lo as usize, u.frac, v.frac) {
            return value;
        }
    }
    weighted(r, u.lo, v.lo, u.frac, v.frac)
}

/// The four pixel centres from (`i`, `j`) to (`i + 1`, `j + 1`), all inside the raster,
/// weighed by `ax`, `ay`: the same sum as [`weighted`], in the same order, when all four have
/// data (then the pixel the point is in, one of them, has too); `None` when one has none.
#[inline(always)]
fn four_inside(r: &Raster, i: usize, j: usize, ax: f64, ay: f64) -> Option<f32> {
    let at = j * r.nx + i;
    let (a, b) = (r.values[at] as f64, r.values[at + 1] as f64);
    let (c, d) = (r.values[at + r.nx] as f64, r.values[at + r.nx + 1] as f64);
    let value =
        (1.0 - ax) * (1.0 - ay) * a + ax * (1.0 - ay) * b + (1.0 - ax) * ay * c + ax * ay * d;
    if value.is_nan() {
        return None;
    }
    let weight = (1.0 - ax) * (1.0 - ay) + ax * (1.0 - ay) + (1.0 - ax) * ay + ax * ay;
    Some(if weight == 1.0 {
        value as f32
    } else {
        (value / weight) as f32
    })
}

/// [`bilinear_at`] at pixel coordinates (u, v): for a point whose four pixel centres are
/// inside the raster and have data, the same sum in the same order without building the
/// axes (the lattice's points, which land anywhere); the rest through [`bilinear_at`].
#[inline]
fn bilinear_point(r: &Raster, u: f64, v: f64) -> f32 {
    let (fu, fv) = (u - 0.5, v - 0.5);
    // Non-negative, so truncation is the floor; NaN fails every comparison.
    if fu >= 0.0 && fv >= 0.0 && fu < (r.nx - 1) as f64 && fv < (r.ny - 1) as f64 {
        let (iu, iv) = (fu as usize, fv as usize);
        if let Some(value) = four_inside(r, iu, iv, fu - iu as f64, fv - iv as f64) {
            return value;
        }
    }
    bilinear_at(r, &Axis::new(u, r.nx), &Axis::new(v, r.ny))
}

/// [`bilinear_at`] along a row whose cells share `v` (a source in the target's CRS): the
/// row's two source lines and weights are found once, and a cell whose four pixel centres
/// are inside the raster and have data is the same sum in the same order, without the
/// checks; the others go through [`bilinear_at`].
fn bilinear_row(r: &Raster, us: &[Axis], v: &Axis, row: &mut [f32]) {
    if v.near.is_none() {
        row.fill(f32::NAN);
        return;
    }
    if !v.inner() {
        for (out, u) in row.iter_mut().zip(us) {
            *out = bilinear_at(r, u, v);
        }
        return;
    }
    let nx = r.nx;
    let top = &r.values[v.lo as usize * nx..(v.lo as usize + 1) * nx];
    let bottom = &r.values[(v.lo as usize + 1) * nx..(v.lo as usize + 2) * nx];
    let ay = v.frac;
    let (wy0, wy1) = (1.0 - ay, ay);
    for (out, u) in row.iter_mut().zip(us) {
        if u.inner() {
            let i = u.lo as usize;
            let (a, b) = (top[i] as f64, top[i + 1] as f64);
            let (c, d) = (bottom[i] as f64, bottom[i + 1] as f64);
            let ax = u.frac;
            let (w00, w10) = ((1.0 - ax) * wy0, ax * wy0);
            let (w01, w11) = ((1.0 - ax) * wy1, ax * wy1);
            let value = w00 * a + w10 * b + w01 * c + w11 * d;
            // All four have data, so the pixel the cell falls in (one of them) has too.
            if !value.is_nan() {
                let weight = w00 + w10 + w01 + w11;
                *out = if weight == 1.0 {
                    value as f32
                } else {
                    (value / weight) as f32
                };
                continue;
            }
        }
        *out = bilinear_at(r, u, v);
    }
}

/// The pixel the point (u, v) falls in.
#[cfg(test)]
fn nearest(r: &Raster, u: f64, v: f64) -> f32 {
    match (Axis::new(u, r.nx).near, Axis::new(v, r.ny).near) {
        (Some(i), Some(j)) => r.values[j * r.nx + i],
        _ => f32::NAN,
    }
}

/// The four pixel centres around (u, v) weighed by distance; those outside the raster or
/// without data left out and the rest renormalised.
#[cfg(test)]
fn bilinear(r: &Raster, u: f64, v: f64) -> f32 {
    bilinear_at(r, &Axis::new(u, r.nx), &Axis::new(v, r.ny))
}

/// The weighted mean of the pixels (i0 .. i0 + 1, j0 .. j0 + 1) with weights `1 - ax, ax`
/// across and `1 - ay, ay` down, those outside the raster or without data left out.
fn weighted(r: &Raster, i0: isize, j0: isize, ax: f64, ay: f64) -> f32 {
    let mut sum = 0.0f64;
    let mut weight = 0.0f64;
    for (dj, wy) in [(0, 1.0 - ay), (1, ay)] {
        let j = j0 + dj;
        if j < 0 || j >= r.ny as isize || wy == 0.0 {
            continue;
        }
        for (di, wx) in [(0, 1.0 - ax), (1, ax)] {
            let i = i0 + di;
            if i < 0 || i >= r.nx as isize || wx == 0.0 {
                continue;
            }
            let value = r.values[j as usize * r.nx + i as usize];
            if value.is_nan() {
                continue;
            }
            sum += wx * wy * value as f64;
            weight += wx * wy;
        }
    }
    if weight < 1e-5 {
        f32::NAN
    } else if weight == 1.0 {
        sum as f32
    } else {
        (sum / weight) as f32
    }
}

/// The target cells a source in the same CRS can reach: its extent, widened by a cell.
fn same_crs_footprint(r: &Raster, grid: &TargetGrid) -> (Range<usize>, Range<usize>) {
    let (west, east) = (r.x0 - r.dx / 2.0, r.x(r.nx - 1) + r.dx / 2.0);
    let (north, south) = (r.y0 + r.dy / 2.0, r.y(r.ny - 1) - r.dy / 2.0);
    let col = |x: f64| ((x - grid.x_min) / grid.res_x).floor();
    let row = |y: f64| ((grid.y_max - y) / grid.res_y).floor();
    let clamp = |v: f64, n: usize| v.clamp(0.0, n as f64) as usize;
    let c0 = clamp(col(west) - 1.0, grid.nx);
    let c1 = clamp(col(east) + 2.0, grid.nx);
    let r0 = clamp(row(north) - 1.0, grid.ny);
    let r1 = clamp(row(south) + 2.0, grid.ny);
    (c0..c1, r0..r1)
}

/// Whether two CRSs sit on the same ellipsoid (so that geographic coordinates of one are
/// those of the other without a datum shift worth a cell).
fn same_ellipsoid(a: &SpatialRef, b: &SpatialRef) -> bool {
    match (
        a.semi_major(),
        a.semi_minor(),
        b.semi_major(),
        b.semi_minor(),
    ) {
        (Ok(a1), Ok(a2), Ok(b1), Ok(b2)) => (a1 - b1).abs() < 1e-6 && (a2 - b2).abs() < 1e-6,
        _ => false,
    }
}

/// A polar stereographic projection (EPSG variants A and B), inverted in closed form.
#[derive(Clone, Copy, Debug)]
pub struct PolarStereographic {
    /// true: south pole.
    south: bool,
    /// Radius per unit of `t` (Snyder's rho = K t).
    k: f64,
    lon0: f64,
    false_easting: f64,
    false_northing: f64,
    /// Coefficients of the conformal-latitude series.
    c: [f64; 4],
}

impl PolarStereographic {
    /// The projection of `srs` when it is polar stereographic.
    pub fn of(srs: &SpatialRef) -> Option<PolarStereographic> {
        let name = srs.get_attr_value("PROJECTION", 0).ok().flatten()?;
        if !name.eq_ignore_ascii_case("polar_stereographic") {
            return None;
        }
        let p = |n: &str, default: f64| srs.get_proj_param(n).ok().flatten().unwrap_or(default);
        let lat_origin = p("latitude_of_origin", 90.0);
        let k0 = p("scale_factor", 1.0);
        let (a, b) = (srs.semi_major().ok()?, srs.semi_minor().ok()?);
        let e2 = 1.0 - (b * b) / (a * a);
        let e = e2.sqrt();
        let south = lat_origin < 0.0;
        let phi_c = lat_origin.abs().to_radians();
        let k = if (lat_origin.abs() - 90.0).abs() < 1e-12 {
            // Variant A: scale k0 at the pole.
            2.0 * a * k0 / ((1.0 + e).powf(1.0 + e) * (1.0 - e).powf(1.0 - e)).sqrt()
        } else {
            // Variant B: true scale on the standard parallel.
            let m_c = phi_c.cos() / (1.0 - e2 * phi_c.sin().powi(2)).sqrt();
            let t_c = t_of(phi_c, e);
            a * m_c / t_c
        };
        let (e4, e6, e8) = (e2 * e2, e2 * e2 * e2, e2 * e2 * e2 * e2);
        Some(PolarStereographic {
            south,
            k,
            lon0: p("central_meridian", 0.0),
            false_easting: p("false_easting", 0.0),
            false_northing: p("false_northing", 0.0),
            c: [
                e2 / 2.0 + 5.0 * e4 / 24.0 + e6 / 12.0 + 13.0 * e8 / 360.0,
                7.0 * e4 / 48.0 + 29.0 * e6 / 240.0 + 811.0 * e8 / 11520.0,
                7.0 * e6 / 120.0 + 81.0 * e8 / 1120.0,
                4279.0 * e8 / 161280.0,
            ],
        })
    }

    /// (x, y) in the projection -> (longitude, latitude) in degrees, longitude in -180..180.
    pub fn inverse(&self, x: f64, y: f64) -> (f64, f64) {
        let (x, y) = (x - self.false_easting, y - self.false_northing);
        (
            self.longitude_at(x, y),
            self.latitude_at((x * x + y * y).sqrt()),
        )
    }

    /// Latitude in degrees at distance `rho` from the pole.
    fn latitude_at(&self, rho: f64) -> f64 {
        let t = rho / self.k;
        let chi = std::f64::consts::FRAC_PI_2 - 2.0 * t.atan();
        // sin and cos of 2 chi = pi - 4 atan(t), from t without more trigonometry:
        // with q = 1 + t^2, sin 2atan(t) = 2t/q and cos 2atan(t) = (1 - t^2)/q.
        let q = 1.0 + t * t;
        let (sin2a, cos2a) = (2.0 * t / q, (1.0 - t * t) / q);
        let s2 = 2.0 * sin2a * cos2a;
        let c2 = sin2a * sin2a - cos2a * cos2a;
        // sin 4chi, sin 6chi, sin 8chi from sin/cos 2chi.
        let s4 = 2.0 * s2 * c2;
        let c4 = c2 * c2 - s2 * s2;
        let s6 = s4 * c2 + c4 * s2;
        let s8 = 2.0 * s4 * c4;
        let phi = chi + self.c[0] * s2 + self.c[1] * s4 + self.c[2] * s6 + self.c[3] * s8;
        if self.south {
            -phi.to_degrees()
        } else {
            phi.to_degrees()
        }
    }

    /// Longitude in degrees (-180..180) of a point `(x, y)` from the pole.
    fn longitude_at(&self, x: f64, y: f64) -> f64 {
        let dlon = if self.south { x.atan2(y) } else { x.atan2(-y) };
        self.wrap_longitude(dlon)
    }

    /// `lon0` plus an angle from the central meridian (radians), in -180..180 degrees.
    fn wrap_longitude(&self, dlon: f64) -> f64 {
        let mut lon = self.lon0 + dlon.to_degrees();
        if lon >= 180.0 {
            lon -= 360.0;
        } else if lon < -180.0 {
            lon += 360.0;
        }
        lon
    }

    /// Whether the closed form gives PROJ's longitudes and latitudes to 1e-9° over the
    /// projection's usable disc (a check that the parameters were read right).
    fn agrees_with_proj(&self, projected: &SpatialRef, geographic: &SpatialRef) -> bool {
        let Some(t) = proj_between(projected, geographic) else {
            return false;
        };
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for r in [1.0e3, 3.0e5, 1.5e6, 3.3e6, 6.0e6] {
            for a in 0..12 {
                let a = (a as f64 * 30.0 + 7.0).to_radians();
                xs.push(self.false_easting + r * a.sin());
                ys.push(self.false_northing + r * a.cos());
            }
        }
        let ours: Vec<(f64, f64)> = xs
            .iter()
            .zip(&ys)
            .map(|(x, y)| self.inverse(*x, *y))
            .collect();
        if t.transform_coords(&mut xs, &mut ys, &mut []).is_err() {
            return false;
        }
        ours.iter()
            .zip(xs.iter().zip(&ys))
            .all(|((lon, lat), (plon, plat))| {
                let dlon = ((lon - plon + 540.0) % 360.0 - 180.0).abs();
                dlon < 1e-9 && (lat - plat).abs() < 1e-9
            })
    }
}

/// Latitude as a function of the distance from the pole, tabulated every [`Self::STEP`]
/// metres with its derivative and interpolated by cubic Hermite polynomials: the inverse
/// projection without its arctangent and series per cell. The interpolation error is far
/// below 1e-12 degrees (the function is smooth on a scale of the Earth's radius); the table
/// depends on the projection only, so a cell's value never depends on the window.
#[derive(Clone, Debug)]
pub struct LatitudeTable {
    projection: PolarStereographic,
    /// (latitude in degrees, its derivative in degrees per step) at k * STEP.
    knots: Vec<(f64, f64)>,
    /// The longitude's arctangent, tabulated the same way.
    atan: ArctanTable,
}

impl LatitudeTable {
    const STEP: f64 = 2000.0;
    /// Distances beyond this (the equator of most polar grids lies at 10 000-13 000 km) are
    /// computed directly.
    const REACH: f64 = 2.0e7;

    /// The table for `projection`.
    pub fn new(projection: PolarStereographic) -> LatitudeTable {
        let n = (Self::REACH / Self::STEP) as usize + 2;
        let knots = (0..n)
            .map(|k| {
                let rho = k as f64 * Self::STEP;
                let lat = projection.latitude_at(rho);
                // Central difference over 1/1000 of a step (one-sided at the pole, where the
                // latitude has a corner): the derivative to ~1e-12.
                let h = Self::STEP * 1e-3;
                let d = if k == 0 {
                    (projection.latitude_at(h) - lat) / h
                } else {
                    (projection.latitude_at(rho + h) - projection.latitude_at(rho - h)) / (2.0 * h)
                };
                (lat, d * Self::STEP)
            })
            .collect();
        LatitudeTable {
            projection,
            knots,
            atan: ArctanTable::new(),
        }
    }

    /// The distance of (x, y) from the pole, CRS units.
    pub fn distance_from_pole(&self, x: f64, y: f64) -> f64 {
        let p = &self.projection;
        (x - p.false_easting).hypot(y - p.false_northing)
    }

    /// As [`PolarStereographic::inverse`].
    pub fn inverse(&self, x: f64, y: f64) -> (f64, f64) {
        let p = &self.projection;
        let (x, y) = (x - p.false_easting, y - p.false_northing);
        let rho = (x * x + y * y).sqrt();
        let s = rho / Self::STEP;
        let k = s as usize;
        let lat = if k + 1 < self.knots.len() {
            let f = s - k as f64;
            let ((y0, d0), (y1, d1)) = (self.knots[k], self.knots[k + 1]);
            let (f2, f3) = (f * f, f * f * f);
            (2.0 * f3 - 3.0 * f2 + 1.0) * y0
                + (f3 - 2.0 * f2 + f) * d0
                + (-2.0 * f3 + 3.0 * f2) * y1
                + (f3 - f2) * d1
        } else {
            p.latitude_at(rho)
        };
        let dlon = if p.south {
            self.atan.atan2(x, y)
        } else {
            self.atan.atan2(x, -y)
        };
        (p.wrap_longitude(dlon), lat)
    }
}

/// atan2 from a table of the arctangent on 0..1 (every 1/1024, with its derivative, cubic
/// Hermite between knots) and the octant's symmetries: within 1e-13 rad of libm's, at a
/// third of its cost. A lon/lat source far from the pole is resampled with a longitude per
/// target cell, and libm's atan2 was the largest part of that.
#[derive(Clone, Debug)]
struct ArctanTable {
    /// (atan(t), its derivative times the step) at t = k / N.
    knots: Vec<(f64, f64)>,
}

impl ArctanTable {
    const N: usize = 1024;

    fn new() -> ArctanTable {
        let h = 1.0 / Self::N as f64;
        let knots = (0..=Self::N + 1)
            .map(|k| {
                let t = k as f64 * h;
                (t.atan(), h / (1.0 + t * t))
            })
            .collect();
        ArctanTable { knots }
    }

    /// The angle of the point (b, a), as `a.atan2(b)`.
    #[inline]
    fn atan2(&self, a: f64, b: f64) -> f64 {
        let (aa, ab) = (a.abs(), b.abs());
        let (lo, hi) = if aa <= ab { (aa, ab) } else { (ab, aa) };
        if !(hi > 0.0 && hi.is_finite()) {
            // Zeros, infinities and NaN: libm's conventions.
            return a.atan2(b);
        }
        let s = lo / hi * Self::N as f64;
        let k = (s as usize).min(Self::N);
        let f = s - k as f64;
        let ((y0, d0), (y1, d1)) = (self.knots[k], self.knots[k + 1]);
        let (f2, f3) = (f * f, f * f * f);
        let mut theta = (2.0 * f3 - 3.0 * f2 + 1.0) * y0
            + (f3 - 2.0 * f2 + f) * d0
            + (-2.0 * f3 + 3.0 * f2) * y1
            + (f3 - f2) * d1;
        if aa > ab {
            theta = std::f64::consts::FRAC_PI_2 - theta;
        }
        if b < 0.0 {
            theta = std::f64::consts::PI - theta;
        }
        if a < 0.0 {
            -theta
        } else {
            theta
        }
    }
}

fn proj_between(from: &SpatialRef, to: &SpatialRef) -> Option<CoordTransform> {
    let mut f = from.clone();
    let mut t = to.clone();
    f.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    t.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    CoordTransform::new(&f, &t).ok()
}

/// Snyder's t of latitude `phi` (radians, the pole's hemisphere) on an ellipsoid of
/// eccentricity `e`.
fn t_of(phi: f64, e: f64) -> f64 {
    let s = e * phi.sin();
    (std::f64::consts::FRAC_PI_4 - phi / 2.0).tan() / ((1.0 - s) / (1.0 + s)).powf(e / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closed_form_is_projs_inverse_for_both_poles() {
        for code in [3031, 3413, 3976, 32761] {
            let srs = SpatialRef::from_epsg(code).unwrap();
            let p = PolarStereographic::of(&srs).unwrap_or_else(|| panic!("EPSG:{code}"));
            let geo = SpatialRef::from_epsg(4326).unwrap();
            assert!(p.agrees_with_proj(&srs, &geo), "EPSG:{code}");
        }
    }

    fn raster(values: Vec<f32>, nx: usize) -> Raster {
        Raster {
            nx,
            ny: values.len() / nx,
            x0: 0.5,
            y0: -0.5,
            dx: 1.0,
            dy: 1.0,
            values,
        }
    }

    #[test]
    fn the_latitude_table_is_the_closed_form() {
        for code in [3031, 3413] {
            let p = PolarStereographic::of(&SpatialRef::from_epsg(code).unwrap()).unwrap();
            let table = LatitudeTable::new(p);
            let mut worst = 0f64;
            // A dense irregular walk out to 9 000 km, through the pole.
            for k in 0..200_000 {
                let r = (k as f64 * 45.123_7) - 1.0e5;
                let a = k as f64 * 0.618;
                let (x, y) = (r * a.sin(), r * a.cos());
                let (lon, lat) = table.inverse(x, y);
                let (elon, elat) = p.inverse(x, y);
                let dlon = ((lon - elon + 540.0) % 360.0 - 180.0).abs();
                worst = worst.max((lat - elat).abs()).max(dlon);
            }
            assert!(worst < 1e-11, "EPSG:{code}: {worst}");
        }
    }

    #[test]
    fn the_arctangent_table_is_libms() {
        let t = ArctanTable::new();
        let mut worst = 0f64;
        // Every octant, its edges (axes, diagonals), far and near the origin.
        for k in 0..100_000 {
            let angle = k as f64 * 0.000_062_831_9 * 1.000_37 - 3.2;
            let r = 10f64.powf((k % 13) as f64 - 3.0);
            let (a, b) = (r * angle.sin(), r * angle.cos());
            worst = worst.max((t.atan2(a, b) - a.atan2(b)).abs());
        }
        for (a, b) in [
            (1.0, 0.0),
            (-1.0, 0.0),
            (0.0, 1.0),
            (0.0, -1.0),
            (2.0, 2.0),
            (-3.0, -3.0),
            (5.0, -5.0),
        ] {
            worst = worst.max((t.atan2(a, b) - f64::atan2(a, b)).abs());
        }
        assert!(worst < 1e-13, "{worst}");
        for (a, b) in [
            (0.0, 0.0),
            (-0.0, -0.0),
            (f64::NAN, 1.0),
            (f64::INFINITY, 1.0),
        ] {
            let (got, want) = (t.atan2(a, b), f64::atan2(a, b));
            assert!(got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()));
        }
    }

    #[test]
    fn lattice_positions_stay_within_their_tolerance() {
        // 1° lon/lat pixels onto 100 m, 250 m and 1 km cells of the seed's bbox (EPSG:3031),
        // and 1 km cells around the pole: every interpolated position within the tolerance
        // of the exact one, and on the bbox nearly all of them interpolated.
        let p = PolarStereographic::of(&SpatialRef::from_epsg(3031).unwrap()).unwrap();
        let table = LatitudeTable::new(p);
        for (bbox, res) in [
            ([-2602500.0, -1626000.0, -649500.0, 495000.0], 100.0),
            ([-2602500.0, -1626000.0, -649500.0, 495000.0], 250.0),
            ([-2602500.0, -1626000.0, -649500.0, 495000.0], 1000.0),
            ([-1000000.0, -1000000.0, 1000000.0, 1000000.0], 1000.5),
        ] {
            let grid = TargetGrid::new("EPSG:3031", bbox, res, res).unwrap();
            let pixel = |c: i64, j: i64| {
                let (x, y) = grid.centre(c, j);
                let (lon, lat) = table.inverse(x, y);
                (lon + 181.5, 90.5 - lat)
            };
            // 1° pixels.
            let source = raster(vec![0.0; 4], 2);
            let bound = |c: i64, j: i64| {
                let (x, y) = grid.centre(c, j);
                polar_error_bound(&table, &grid, &source, x, y)
            };
            let (mut good, mut exact, mut worst) = (0, 0, 0f64);
            for first in [0, grid.ny / 2, grid.ny - 64] {
                let cols = 0..grid.nx.min(2000);
                let lattice = Lattice::new(&cols, first, 64, &pixel, &bound);
                for j in first..first + 64 {
                    for c in cols.clone() {
                        match lattice.at(c, j) {
                            Some((u, v)) => {
                                let (eu, ev) = pixel(c as i64, j as i64);
                                let error = (u - eu).abs().max((v - ev).abs());
                                // The bound is an upper bound where it was used.
                                let l = Lattice::STEP;
                                let centre = |i: usize| (i / l * l + l / 2) as i64;
                                let b = bound(centre(c), centre(j));
                                assert!(error <= b, "{res} m: {error} > bound {b}");
                                worst = worst.max(error);
                                good += 1;
                            }
                            None => exact += 1,
                        }
                    }
                }
            }
            assert!(worst <= Lattice::TOLERANCE, "{res} m: {worst}");
            eprintln!("{res} m: {good} interpolated, {exact} exact, worst {worst:.1e} px");
            if res != 1000.5 {
                assert!(good > 50 * exact, "{good} interpolated, {exact} exact");
            } else {
                assert!(exact > 0, "around the pole the lattice must give way");
                assert!(good > exact, "{good} interpolated, {exact} exact");
            }
        }
    }

    #[test]
    fn kernels_by_hand() {
        // 2 x 2 pixels: 1 2 / 3 4, centres at u, v = 0.5 and 1.5.
        let r = raster(vec![1.0, 2.0, 3.0, 4.0], 2);
        assert_eq!(nearest(&r, 0.2, 1.7), 3.0);
        assert!(nearest(&r, 2.0, 0.5).is_nan());
        assert_eq!(bilinear(&r, 1.0, 1.0), 2.5);
        assert_eq!(bilinear(&r, 0.5, 0.5), 1.0);
        // 3/4 of the way from 1 to 2 along the top row.
        assert_eq!(bilinear(&r, 1.25, 0.5), 1.75);
        // The outer half pixel: the neighbours outside are left out.
        assert_eq!(bilinear(&r, 0.1, 0.5), 1.0);
        assert!(bilinear(&r, -0.1, 0.5).is_nan());
        // A neighbour without data is left out and the rest renormalised; none where the
        // pixel the point falls in has no data.
        let r = raster(vec![1.0, f32::NAN, 3.0, 5.0], 2);
        assert_eq!(bilinear(&r, 1.0, 1.0), 3.0);
        assert!(bilinear(&r, 1.1, 0.9).is_nan());
    }

    #[test]
    fn the_row_and_point_kernels_are_the_cell_kernel_bit_for_bit() {
        // 7 x 5 pixels of uneven values with two holes; rows and columns from outside the
        // raster on one side to outside on the other, at steps that hit centres and edges.
        let mut values: Vec<f32> = (0..35)
            .map(|k| ((k * 37 % 11) as f32).sqrt() * 3.1)
            .collect();
        values[9] = f32::NAN;
        values[23] = f32::NAN;
        let r = raster(values, 7);
        let us: Vec<Axis> = (-4..32)
            .map(|c| Axis::new(c as f64 * 0.25 - 0.6, r.nx))
            .collect();
        let mut compared = 0;
        for k in -4..24 {
            let v = Axis::new(k as f64 * 0.25 - 0.4, r.ny);
            let mut row = vec![0f32; us.len()];
            bilinear_row(&r, &us, &v, &mut row);
            for (got, u) in row.iter().zip(&us) {
                let want = bilinear_at(&r, u, &v);
                assert!(
                    got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                    "{got} != {want} at {u:?} {v:?}"
                );
                compared += usize::from(!want.is_nan());
            }
        }
        assert!(compared > 300, "{compared} cells with a value");
        // And at points anywhere (the lattice's), on and off centres and edges.
        let mut compared = 0;
        for k in -40..300 {
            let (u, v) = (k as f64 * 0.0271 - 0.6, (k * 7 % 61) as f64 * 0.1 - 0.4);
            for (u, v) in [
                (u, v),
                (u.round() + 0.5, v),
                (u, v.round() + 0.5),
                (u.round(), v),
            ] {
                let got = bilinear_point(&r, u, v);
                let want = bilinear_at(&r, &Axis::new(u, r.nx), &Axis::new(v, r.ny));
                assert!(
                    got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                    "{got} != {want} at {u} {v}"
                );
                compared += usize::from(!want.is_nan());
            }
        }
        assert!(compared > 500, "{compared} points with a value");
    }
}
