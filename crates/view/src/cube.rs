//! The data side of the viewer: which variables of a cube can be shown as a 3-D box, their
//! axes with labels, and the faces, exact values and profiles the page asks for.
//!
//! A 2-D variable (a map of a polar cube, say) is shown as a box one cell deep: it is read
//! as a 3-D array whose first dimension, [`FLAT`], has length 1, so faces, pyramid levels,
//! values and profiles take one path for both.
//!
//! A face is the 2-D slice of a variable at one index of one axis, thinned to the size the
//! screen can show, and sent quantised to 16 bits (the colour needs no more; hover values and
//! profiles are read exactly). Faces are kept in a cache bounded in bytes, so the server's
//! memory follows `--cache-mb`, not the cube.

use std::ops::Range;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use cryocube_cube::cf::{decode_time, format_utc_us};
use cryocube_cube::pyramid::{as_3d, stored};
use cryocube_cube::{ArraySpec, CubeReader, Location};

use crate::ViewError;

/// One axis of the box: its length, coordinate values and how to label them.
#[derive(Clone, Debug, Serialize)]
pub struct Axis {
    /// The dimension's name.
    pub name: String,
    /// Its length.
    pub size: u64,
    /// Coordinate values (indices when the cube has no coordinate variable).
    pub values: Vec<f64>,
    /// UTC ISO 8601 labels for a time axis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    /// The coordinate's units (empty when it has none).
    pub units: String,
    /// A time axis as UTC seconds since 1970 (microseconds kept): the page places ticks at
    /// round times with them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<Vec<f64>>,
}

/// A variable the viewer can show: three dimensions, or two shown as a box one cell deep.
#[derive(Clone, Debug, Serialize)]
pub struct Variable {
    /// The array's name in the cube.
    pub name: String,
    /// Three names; a 2-D variable's first is [`FLAT`].
    pub dims: Vec<String>,
    /// Three lengths; a 2-D variable's first is 1.
    pub shape: Vec<u64>,
    /// Its `units` attribute (empty when it has none).
    pub units: String,
    /// Its `long_name` attribute (empty when it has none).
    pub long_name: String,
    /// The unit a reader of the figure needs: `dB` for spectra on the db scale, `ln power`
    /// on the cryocube scale (both are stored as the dimensionless `1`), else `units`, and
    /// empty for a dimensionless `1`.
    pub display_units: String,
    /// The array's type is an integer (classes, masks, counts): the page may draw it with a
    /// legend of its values instead of a continuous bar.
    pub integer: bool,
    /// CF `flag_values` with their `flag_meanings` (a mask or classification).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<(f64, String)>,
    /// The share of cells with a value, when the cube states it (`valid_fraction`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_fraction: Option<f64>,
    /// A 2-D variable.
    pub flat: bool,
    /// Its last two dimensions are the projected y and x of a grid mapping: overlays (in
    /// the cube's CRS) are drawn over its y/x faces.
    pub map: bool,
    /// The map projection of its last two dimensions (y, x), when the page can draw
    /// latitude/longitude lines over them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub projection: Option<PolarStereographic>,
    /// The colour bar the cube's author chose (DeepESDL's per-variable `color_bar_name`,
    /// `color_value_min`, `color_value_max`, carried into the variable's attributes by
    /// `build`): the page opens the variable with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub colour_bar: Option<ColourBar>,
}

/// A colour bar: a matplotlib colormap name (`_r` = reversed) and its value range.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ColourBar {
    /// A matplotlib colormap name, `_r` for reversed.
    pub name: String,
    /// The value at the colormap's low end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// The value at its high end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

impl ColourBar {
    /// The colour bar stated in a variable's attributes, if any.
    pub fn of(attrs: &cryocube_cube::Attrs) -> Option<ColourBar> {
        let name = attrs.get("color_bar_name")?.as_str()?;
        let number = |k: &str| attrs.get(k).and_then(serde_json::Value::as_f64);
        Some(ColourBar {
            name: name.to_string(),
            min: number("color_value_min"),
            max: number("color_value_max"),
        })
    }
}

/// A CF `polar_stereographic` grid mapping (EPSG:3031, EPSG:3413 and their kin: the grids of
/// polar cubes), sent to the page so that it can draw a graticule over the x/y faces. Other
/// projections get none rather than a wrong one.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PolarStereographic {
    /// Latitude of the projection's pole: -90 or 90.
    pub pole: f64,
    /// Latitude of true scale (variant B), in degrees.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub standard_parallel: Option<f64>,
    /// Scale at the pole (variant A), when no standard parallel is given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    /// Longitude pointing straight down (north pole) or up (south pole) from the pole.
    pub lon0: f64,
    /// Added to x, metres.
    pub false_easting: f64,
    /// Added to y, metres.
    pub false_northing: f64,
    /// The ellipsoid's equatorial radius, metres.
    pub semi_major_axis: f64,
    /// 0 for a sphere.
    pub inverse_flattening: f64,
}

impl PolarStereographic {
    /// The grid mapping of `var` when it is polar stereographic and the variable's last two
    /// dimensions are its projection y and x coordinates.
    pub fn of(reader: &CubeReader, var: &ArraySpec) -> Option<PolarStereographic> {
        // CF allows "crs" or, extended, "crs: x y"; the first name is the mapping.
        let name = var.attrs.get("grid_mapping")?.as_str()?;
        let name = name.split([':', ' ']).next()?;
        let a = &reader.array(name)?.attrs;
        if a.get("grid_mapping_name")?.as_str()? != "polar_stereographic" || !is_map(reader, var) {
            return None;
        }
        // Numbers may be stored as one-element lists (netCDF attributes read by xarray).
        let num = |k: &str| match a.get(k)? {
            Value::Array(v) => v.first()?.as_f64(),
            v => v.as_f64(),
        };
        let standard_parallel = num("standard_parallel");
        let scale = num("scale_factor_at_projection_origin");
        // pyproj (so rioxarray) leaves the pole out of variant B: the parallel's sign tells.
        let pole = match (num("latitude_of_projection_origin"), standard_parallel) {
            (Some(p), _) => p,
            (None, Some(sp)) if sp != 0.0 => 90f64.copysign(sp),
            _ => return None,
        };
        if (pole.abs() - 90.0).abs() > 1e-9 || (standard_parallel.is_none() && scale.is_none()) {
            return None;
        }
        let semi_major_axis = num("semi_major_axis").unwrap_or(6_378_137.0);
        let inverse_flattening = match (num("inverse_flattening"), num("semi_minor_axis")) {
            (Some(f), _) => f,
            (None, Some(b)) if b < semi_major_axis => semi_major_axis / (semi_major_axis - b),
            (None, Some(_)) => 0.0,
            // No figure stated: WGS 84, the ellipsoid of the polar grids in use.
            (None, None) if num("semi_major_axis").is_none() => 298.257_223_563,
            (None, None) => 0.0,
        };
        Some(PolarStereographic {
            pole,
            standard_parallel,
            scale: standard_parallel.is_none().then_some(scale).flatten(),
            lon0: num("straight_vertical_longitude_from_pole").unwrap_or(0.0),
            false_easting: num("false_easting").unwrap_or(0.0),
            false_northing: num("false_northing").unwrap_or(0.0),
            semi_major_axis,
            inverse_flattening,
        })
    }
}

/// The unit to print beside a variable's values: see [`Variable::display_units`].
fn display_units(attrs: &cryocube_cube::Attrs) -> String {
    let text = |k: &str| attrs.get(k).and_then(Value::as_str).unwrap_or("");
    match (text("scale"), text("units")) {
        ("db", "1") => "dB".into(),
        ("cryocube", "1") => "ln power".into(),
        (_, "1") => String::new(),
        (_, units) => units.into(),
    }
}

/// CF `flag_values` paired with the words of `flag_meanings` (numbered when they are fewer).
fn flags(attrs: &cryocube_cube::Attrs) -> Vec<(f64, String)> {
    let values: Vec<f64> = match attrs.get("flag_values") {
        Some(Value::Array(v)) => v.iter().filter_map(Value::as_f64).collect(),
        Some(v) => v.as_f64().into_iter().collect(),
        None => return Vec::new(),
    };
    let meanings: Vec<&str> = attrs
        .get("flag_meanings")
        .and_then(Value::as_str)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let m = meanings
                .get(i)
                .map_or_else(|| format!("{v}"), |m| m.replace('_', " "));
            (v, m)
        })
        .collect()
}

/// Whether `var` has a grid mapping and its last two dimensions are the projected y and x
/// (by name or CF standard name): a map that overlays in its CRS can be drawn on.
fn is_map(reader: &CubeReader, var: &ArraySpec) -> bool {
    let has_mapping = var
        .attrs
        .get("grid_mapping")
        .and_then(Value::as_str)
        .and_then(|n| n.split([':', ' ']).next())
        .is_some_and(|n| reader.array(n).is_some());
    let [.., ydim, xdim] = var.dims.as_slice() else {
        return false;
    };
    let is = |dim: &str, short: &str, standard: &str| {
        dim == short
            || reader
                .array(dim)
                .and_then(|c| c.attrs.get("standard_name"))
                .and_then(Value::as_str)
                == Some(standard)
    };
    has_mapping
        && is(ydim, "y", "projection_y_coordinate")
        && is(xdim, "x", "projection_x_coordinate")
}

/// The name of the dimension a 2-D variable is given to be shown as a box.
pub const FLAT: &str = "";

/// An array's shape and chunk shape as three dimensions, and its stored rank.
struct Grid {
    rank: usize,
    shape: [u64; 3],
    chunks: [u64; 3],
}

impl Grid {
    fn of(spec: &ArraySpec) -> Grid {
        Grid {
            rank: spec.dims.len(),
            shape: as_3d(&spec.shape, 1),
            chunks: as_3d(&spec.chunks, 1),
        }
    }
}

/// A slice at `index` of `axis`, rows along the first remaining dimension, columns along the
/// second, every `step`-th cell.
#[derive(Debug)]
pub struct Face {
    /// Cells along the first remaining dimension.
    pub rows: usize,
    /// Cells along the second.
    pub cols: usize,
    /// Level-0 cells per face cell along the rows' and the columns' dimension.
    pub step: [u64; 2],
    /// The level-0 cell (row, column) where the face's first cell starts: a face may cover
    /// only a window of the slice.
    pub origin: [u64; 2],
    /// The pyramid level it was read from (0: the cube itself).
    pub level: usize,
    /// Smallest and largest finite value (both NaN when there is none).
    pub min: f64,
    /// See `min`.
    pub max: f64,
    /// 0..=65534 from `min` to `max`; 65535 is NaN.
    pub quantised: Vec<u16>,
}

/// The code of a NaN cell in [`Face::quantised`].
pub const NAN_CODE: u16 = u16::MAX;

/// Most cells of one face (a 4K screen has 8.3 M pixels, and a face is one of three sides):
/// with the f32 values and the 16-bit codes, at most 24 MiB while it is made.
pub const MAX_FACE_CELLS: u64 = 1 << 22;
/// Longest face side a request may ask for.
pub const MAX_FACE_SIDE: u64 = 4096;
/// Bytes the largest face takes while it is made (f32 values and 16-bit codes).
pub const FACE_WORK_BYTES: usize = (MAX_FACE_CELLS as usize) * 6;

impl Face {
    fn from_values(
        rows: usize,
        cols: usize,
        step: [u64; 2],
        origin: [u64; 2],
        level: usize,
        values: &[f32],
    ) -> Face {
        let finite = values
            .iter()
            .map(|&v| f64::from(v))
            .filter(|v| v.is_finite());
        let (min, max) = finite.fold((f64::NAN, f64::NAN), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let span = max - min;
        let quantised = values
            .iter()
            .map(|&v| {
                let v = f64::from(v);
                if v.is_nan() {
                    NAN_CODE
                } else if span > 0.0 {
                    (((v - min) / span).clamp(0.0, 1.0) * 65534.0).round() as u16
                } else {
                    0
                }
            })
            .collect();
        Face {
            rows,
            cols,
            step,
            origin,
            level,
            min,
            max,
            quantised,
        }
    }
}

/// (variable, axis, index at the level, step at the level, level, window at the level).
type FaceKey = (String, usize, u64, u64, usize, [u64; 4]);

/// Where a face comes from: its cache key, pyramid level and halvings, the two dimensions
/// it spans, the slice at the level, the thinning step, the window at the level, its size.
struct FacePlan {
    key: FaceKey,
    level: usize,
    shift: [u32; 3],
    b: usize,
    c: usize,
    at: u64,
    step: u64,
    lb: Range<u64>,
    lc: Range<u64>,
    rows: usize,
    cols: usize,
}
/// (variable, level, chunk indices).
type ChunkKey = (String, usize, [u64; 3]);

/// What a cached value weighs: its bytes, so that the caches hold a byte budget.
#[derive(Clone)]
struct Bytes;

impl quick_cache::Weighter<FaceKey, Arc<Face>> for Bytes {
    fn weight(&self, _: &FaceKey, face: &Arc<Face>) -> u64 {
        (face.quantised.len() * 2 + 64) as u64
    }
}

impl quick_cache::Weighter<ChunkKey, Arc<Vec<f32>>> for Bytes {
    fn weight(&self, _: &ChunkKey, chunk: &Arc<Vec<f32>>) -> u64 {
        (chunk.len() * 4 + 64) as u64
    }
}

type Cache<K, V> = quick_cache::sync::Cache<K, V, Bytes>;

/// A cache of `budget` bytes (quick_cache: concurrent, scan resistant; a value heavier than
/// the whole budget is served but not kept).
fn cache<K: Eq + std::hash::Hash + Clone, V: Clone>(budget: usize) -> Cache<K, V>
where
    Bytes: quick_cache::Weighter<K, V>,
{
    // The item estimate only sizes the table: chunks and faces are about 1 MiB.
    Cache::with_weighter((budget >> 20).max(16), budget as u64, Bytes)
}

/// An opened cube, ready to serve.
pub struct ViewCube {
    reader: CubeReader,
    /// Pyramid levels 1.. (empty without a matching pyramid).
    levels: Vec<CubeReader>,
    variables: Vec<Variable>,
    axes: Vec<Axis>,
    title: String,
    /// Finished faces and decoded chunks (slider steps through a chunk reuse them).
    faces: Cache<FaceKey, Arc<Face>>,
    chunks: Cache<ChunkKey, Arc<Vec<f32>>>,
    /// Memory for the faces being made and sent at once, bytes.
    work_bytes: usize,
    /// Where it is and the cache budget it was opened with (to open it again once it grew).
    location: Location,
    cache_bytes: usize,
}

impl ViewCube {
    /// Opens the cube at `location` and finds its 3-D variables; `cache_bytes` bounds the
    /// faces kept in memory.
    pub fn open(location: &Location, cache_bytes: usize) -> Result<Self, ViewError> {
        let reader = CubeReader::open(location)?;
        if !reader.is_complete() {
            return Err(ViewError::Cube(format!(
                "{location}: the cube is unfinished (a run was interrupted); finish it first"
            )));
        }
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
        // The page opens on the first variable: a volume with data, else a map with data;
        // variables the cube says are nearly empty (`valid_fraction` below 1 %: a lake mask
        // over a continent) last.
        let mut variables: Vec<Variable> = cryocube_cube::pyramid::viewable(&reader)
            .into_iter()
            .map(|a| {
                let flat = a.dims.len() == 2;
                let mut dims = a.dims.clone();
                if flat {
                    dims.insert(0, FLAT.into());
                }
                Variable {
                    name: a.name.clone(),
                    dims,
                    shape: as_3d(&a.shape, 1).to_vec(),
                    units: text(a.attrs.get("units")),
                    long_name: text(a.attrs.get("long_name")),
                    display_units: display_units(&a.attrs),
                    integer: !a.dtype.is_float() && !a.attrs.contains_key("scale_factor"),
                    flags: flags(&a.attrs),
                    valid_fraction: a.attrs.get("valid_fraction").and_then(Value::as_f64),
                    flat,
                    map: is_map(&reader, &a),
                    projection: PolarStereographic::of(&reader, &a),
                    colour_bar: ColourBar::of(&a.attrs),
                }
            })
            .collect();
        let nearly_empty = |name: &str| {
            reader
                .array(name)
                .and_then(|a| a.attrs.get("valid_fraction"))
                .and_then(Value::as_f64)
                .is_some_and(|f| f < 0.01)
        };
        variables.sort_by_key(|v| (nearly_empty(&v.name), v.flat));
        if variables.is_empty() {
            return Err(ViewError::Cube(format!(
                "{location}: no variable with two or three dimensions to show"
            )));
        }
        let mut axes: Vec<Axis> = Vec::new();
        for v in &variables {
            for (dim, &size) in v.dims.iter().zip(&v.shape) {
                if axes.iter().any(|a| &a.name == dim) {
                    continue;
                }
                axes.push(if dim == FLAT {
                    Axis {
                        name: FLAT.into(),
                        size: 1,
                        values: vec![0.0],
                        labels: None,
                        units: "index".into(),
                        seconds: None,
                    }
                } else {
                    axis(&reader, dim, size)?
                });
            }
        }
        let title = text(reader.attrs().get("title"));
        let levels = cryocube_cube::pyramid::open_levels(location, &reader)?;
        if levels.is_empty() {
            log::info!("{location}: no pyramid; faces are read at full resolution (`cryocube pyramid` makes views of large cubes fast)");
        }
        Ok(ViewCube {
            reader,
            levels,
            variables,
            axes,
            title: if title.is_empty() {
                location.to_string()
            } else {
                title
            },
            // Faces are small beside the chunks they come from. A quarter of the budget is
            // for the faces being made and sent (see `work_bytes`), at least the largest one.
            work_bytes: (cache_bytes / 4).max(FACE_WORK_BYTES),
            faces: cache(cache_bytes / 8),
            chunks: cache(cache_bytes / 8 * 5),
            location: location.clone(),
            cache_bytes,
        })
    }

    /// The cube opened again if it grew since (`cryocube das --append` or `--follow` wrote
    /// to it): a variable's shape differs in its published metadata. `None` while it is the
    /// same, or being written (unpublished): the view keeps what it shows.
    pub fn grown(&self) -> Result<Option<ViewCube>, ViewError> {
        let reader = CubeReader::open(&self.location)?;
        if !reader.is_complete() {
            return Ok(None);
        }
        let same = self.variables.iter().all(|v| {
            reader
                .array(&v.name)
                .is_some_and(|a| as_3d(&a.shape, 1).to_vec() == v.shape)
        });
        if same {
            return Ok(None);
        }
        log::info!("{}: the cube grew; showing it anew", self.location);
        ViewCube::open(&self.location, self.cache_bytes).map(Some)
    }

    /// The CRS of the cube's maps (the WKT of the first grid mapping that states one) and
    /// the cell size along x, for reprojecting overlays onto them; `None` without a map.
    pub fn map_crs(&self) -> Option<(String, f64)> {
        self.variables.iter().find_map(|v| {
            let spec = self.reader.array(&v.name)?;
            let name = spec.attrs.get("grid_mapping")?.as_str()?;
            let name = name.split([':', ' ']).next()?;
            let gm = &self.reader.array(name)?.attrs;
            let wkt = ["crs_wkt", "spatial_ref"]
                .iter()
                .find_map(|k| gm.get(*k).and_then(Value::as_str))?;
            let x = &self
                .axes
                .iter()
                .find(|a| Some(&a.name) == v.dims.last())?
                .values;
            let cell = match x.as_slice() {
                [a, b, ..] => (b - a).abs(),
                _ => 0.0,
            };
            Some((wkt.to_string(), cell))
        })
    }

    /// The `input_files` entries of its variables (what a recipe cube was built from).
    pub fn input_files(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for v in &self.variables {
            let list = self
                .reader
                .array(&v.name)
                .and_then(|a| a.attrs.get("input_files").cloned());
            if let Some(Value::Array(items)) = list {
                for s in items.iter().filter_map(Value::as_str) {
                    if !out.iter().any(|o| o == s) {
                        out.push(s.to_string());
                    }
                }
            }
        }
        out
    }

    /// The variables it can show, in the cube's order.
    pub fn variables(&self) -> &[Variable] {
        &self.variables
    }

    /// What the page needs to draw the box and label it.
    pub fn meta(&self) -> Value {
        serde_json::json!({
            "title": self.title,
            "store": self.reader.location().to_string(),
            "variables": self.variables,
            "axes": self.axes,
            "levels": self.levels.len() + 1,
        })
    }

    fn variable(&self, name: &str) -> Result<&Variable, ViewError> {
        self.variables
            .iter()
            .find(|v| v.name == name)
            .ok_or_else(|| ViewError::Request(format!("no variable `{name}` to show")))
    }

    /// The face at `index` of `axis`, thinned so that no side exceeds `max_side` cells; with
    /// `window`, only the level-0 rows and columns it names (a zoomed view: the window gets
    /// the `max_side` cells, so zooming in reaches the stored resolution).
    pub fn face(
        &self,
        name: &str,
        axis: usize,
        index: u64,
        max_side: u64,
        window: Option<[Range<u64>; 2]>,
    ) -> Result<Arc<Face>, ViewError> {
        let FacePlan {
            key,
            level,
            shift,
            b,
            c,
            at,
            step,
            lb,
            lc,
            rows,
            cols,
        } = self.face_plan(name, axis, index, max_side, window)?;
        if let Some(face) = self.faces.get(&key) {
            return Ok(face);
        }
        let reader = if level == 0 {
            &self.reader
        } else {
            &self.levels[level - 1]
        };
        let spec = reader
            .array(name)
            .ok_or_else(|| ViewError::Cube(format!("{name}: missing at pyramid level {level}")))?;
        let mut values = vec![f32::NAN; rows * cols];

        // The face cuts through one layer of chunks: decode those (or take them from the
        // cache), then pick the face's cells.
        let grid = Grid::of(spec);
        let cs = grid.chunks;
        let layer = at / cs[axis];
        let (chunks_b, chunks_c) = (
            lb.start / cs[b]..(lb.end - 1) / cs[b] + 1,
            lc.start / cs[c]..(lc.end - 1) / cs[c] + 1,
        );
        let wanted: Vec<[u64; 3]> = chunks_b
            .flat_map(|i| chunks_c.clone().map(move |j| (i, j)))
            .map(|(i, j)| {
                let mut idx = [0u64; 3];
                idx[axis] = layer;
                idx[b] = i;
                idx[c] = j;
                idx
            })
            .collect();
        // A few chunks at a time (as many as decode in parallel): a face through a whole
        // layer of a large cube must not hold every decoded chunk of that layer at once.
        let batch = rayon::current_num_threads().max(1);
        for group in wanted.chunks(batch) {
            let chunks: Vec<Arc<Vec<f32>>> = {
                use rayon::prelude::*;
                group
                    .par_iter()
                    .map(|idx| self.chunk(reader, name, level, &grid, idx))
                    .collect::<Result<_, _>>()?
            };
            self.fill_face(
                &mut values,
                group,
                &chunks,
                &grid,
                axis,
                at,
                [&lb, &lc],
                step,
                cols,
            );
        }
        let face = Arc::new(Face::from_values(
            rows,
            cols,
            [step << shift[b], step << shift[c]],
            [lb.start << shift[b], lc.start << shift[c]],
            level,
            &values,
        ));
        self.faces.insert(key, face.clone());
        Ok(face)
    }

    /// Memory making the face of these arguments takes at most, bytes: its values and codes,
    /// and the chunks decoded at once. The server holds that much of its budget meanwhile.
    pub fn face_bytes(
        &self,
        name: &str,
        axis: usize,
        index: u64,
        max_side: u64,
        window: Option<[Range<u64>; 2]>,
    ) -> Result<usize, ViewError> {
        let plan = self.face_plan(name, axis, index, max_side, window)?;
        let reader = if plan.level == 0 {
            &self.reader
        } else {
            &self.levels[plan.level - 1]
        };
        let chunk = reader
            .array(name)
            .map(|a| a.chunks.iter().product::<u64>() as usize * 4)
            .unwrap_or(0);
        Ok(plan.rows * plan.cols * 6 + rayon::current_num_threads().max(1) * chunk)
    }

    /// Which level, cells and window the face of these arguments takes (no data read).
    fn face_plan(
        &self,
        name: &str,
        axis: usize,
        index: u64,
        max_side: u64,
        window: Option<[Range<u64>; 2]>,
    ) -> Result<FacePlan, ViewError> {
        let v = self.variable(name)?;
        if axis > 2 || index >= v.shape.get(axis).copied().unwrap_or(0) {
            return Err(ViewError::Request(format!(
                "{name}: no index {index} on axis {axis} (shape {:?})",
                v.shape
            )));
        }
        let others: Vec<usize> = (0..3).filter(|&d| d != axis).collect();
        let (b, c) = (others[0], others[1]);
        let [wb, wc] = window.unwrap_or([0..v.shape[b], 0..v.shape[c]]);
        for (w, d) in [(&wb, b), (&wc, c)] {
            if w.start >= w.end || w.end > v.shape[d] {
                return Err(ViewError::Request(format!(
                    "{name}: window {w:?} outside 0..{} of axis {d}",
                    v.shape[d]
                )));
            }
        }
        // The window at a level halved `s` times along its dimension.
        let at_level = |w: &Range<u64>, s: u32| (w.start >> s)..((w.end - 1) >> s) + 1;
        let want = max_side.max(1);
        // The coarsest level that still has at least `want` cells along the window's longer
        // side (the cost of a face follows the screen, not the cube), but no coarser than it
        // must be: a level that only halves the axis across the face would blend neighbouring
        // slices and save nothing. `shift[d]`: how often dimension d was halved.
        let (mut level, mut shape, mut shift) = (0, v.shape.clone(), [0u32; 3]);
        let (mut walk, mut walk_shift) = (v.shape.clone(), [0u32; 3]);
        for (k, r) in self.levels.iter().enumerate() {
            let Some(s) = r.array(name).map(|a| as_3d(&a.shape, 1).to_vec()) else {
                break;
            };
            for d in 0..3 {
                walk_shift[d] += u32::from(s[d] < walk[d]);
            }
            walk = s;
            let (lb, lc) = (at_level(&wb, walk_shift[b]), at_level(&wc, walk_shift[c]));
            if (lb.end - lb.start).max(lc.end - lc.start) < want {
                break;
            }
            if (walk[b], walk[c]) != (shape[b], shape[c]) {
                (level, shape, shift) = (k + 1, walk.clone(), walk_shift);
            }
        }
        let (lb, lc) = (at_level(&wb, shift[b]), at_level(&wc, shift[c]));
        let (nr, nc) = (lb.end - lb.start, lc.end - lc.start);
        let mut step = nr.max(nc).div_ceil(want).max(1);
        // However large the screen a request claims, a face holds at most MAX_FACE_CELLS.
        while nr.div_ceil(step) * nc.div_ceil(step) > MAX_FACE_CELLS {
            step += 1;
        }
        let at = (index >> shift[axis]).min(shape[axis] - 1);
        let key = (
            name.to_string(),
            axis,
            at,
            step,
            level,
            [lb.start, lb.end, lc.start, lc.end],
        );
        let (rows, cols) = (nr.div_ceil(step) as usize, nc.div_ceil(step) as usize);
        Ok(FacePlan {
            key,
            level,
            shift,
            b,
            c,
            at,
            step,
            lb,
            lc,
            rows,
            cols,
        })
    }

    /// Copies the face's cells that lie in `chunks` (decoded chunks at `idxs`) into `values`.
    #[allow(clippy::too_many_arguments)]
    fn fill_face(
        &self,
        values: &mut [f32],
        idxs: &[[u64; 3]],
        chunks: &[Arc<Vec<f32>>],
        grid: &Grid,
        axis: usize,
        at: u64,
        [lb, lc]: [&Range<u64>; 2],
        step: u64,
        cols: usize,
    ) {
        let (shape_at, cs) = (grid.shape, grid.chunks);
        let others: Vec<usize> = (0..3).filter(|&d| d != axis).collect();
        let (b, c) = (others[0], others[1]);
        let layer = at / cs[axis];
        let rows = values.len() / cols.max(1);
        for (idx, chunk) in idxs.iter().zip(chunks) {
            // The chunk's extent (clipped at the array's end) and the face cells inside it.
            let ext: Vec<u64> = (0..3)
                .map(|d| cs[d].min(shape_at[d] - idx[d] * cs[d]))
                .collect();
            let off = at - layer * cs[axis];
            let (b0, c0) = (idx[b] * cs[b], idx[c] * cs[c]);
            // Face cells whose level cell (window start + k step) is at `from` or after.
            let first = |from: u64, start: u64| from.saturating_sub(start).div_ceil(step);
            for r in first(b0, lb.start)..first(b0 + ext[b], lb.start).min(rows as u64) {
                for q in first(c0, lc.start)..first(c0 + ext[c], lc.start).min(cols as u64) {
                    let mut local = [0u64; 3];
                    local[axis] = off;
                    local[b] = lb.start + r * step - b0;
                    local[c] = lc.start + q * step - c0;
                    let i = (local[0] * ext[1] + local[1]) * ext[2] + local[2];
                    values[r as usize * cols + q as usize] = chunk[i as usize];
                }
            }
        }
    }

    /// One decoded chunk (clipped at the array's end, C order) of `name` at `level`.
    fn chunk(
        &self,
        reader: &CubeReader,
        name: &str,
        level: usize,
        grid: &Grid,
        idx: &[u64; 3],
    ) -> Result<Arc<Vec<f32>>, ViewError> {
        let (rank, shape, chunks) = (grid.rank, grid.shape, grid.chunks);
        let key = (name.to_string(), level, *idx);
        if let Some(c) = self.chunks.get(&key) {
            return Ok(c);
        }
        let start: Vec<u64> = (0..3).map(|d| idx[d] * chunks[d]).collect();
        let count: Vec<u64> = (0..3).map(|d| chunks[d].min(shape[d] - start[d])).collect();
        let c = Arc::new(reader.read_f32(name, stored(rank, &start), stored(rank, &count))?);
        self.chunks.insert(key, c.clone());
        Ok(c)
    }

    /// Memory the server may spend on faces being made and sent at once (a quarter of the
    /// cache budget, at least what the largest face takes), bytes.
    pub fn work_bytes(&self) -> usize {
        self.work_bytes
    }

    /// Bytes the caches hold now.
    pub fn cached_bytes(&self) -> usize {
        (self.faces.weight() + self.chunks.weight()) as usize
    }

    /// The stored value at `index` (one index per dimension), exactly.
    pub fn value(&self, name: &str, index: [u64; 3]) -> Result<f64, ViewError> {
        let v = self.variable(name)?;
        check_index(v, &index)?;
        let rank = 3 - usize::from(v.flat);
        Ok(self
            .reader
            .read_f64(name, stored(rank, &index), stored(rank, &[1, 1, 1]))?[0])
    }

    /// `v`, a value of `name`, as its stored precision says: the shortest text that reads
    /// back as the same float32 for float32 (and float16) arrays, not float64's 17 digits.
    pub fn value_text(&self, name: &str, v: f64) -> String {
        match self.reader.array(name).map(|a| a.dtype) {
            Some(cryocube_cube::DType::F32 | cryocube_cube::DType::F16) => format!("{}", v as f32),
            _ => format!("{v}"),
        }
    }

    /// The stored values along `axis` through `index`.
    pub fn profile(&self, name: &str, axis: usize, index: [u64; 3]) -> Result<Vec<f64>, ViewError> {
        let v = self.variable(name)?;
        check_index(v, &index)?;
        if axis > 2 {
            return Err(ViewError::Request(format!("no axis {axis}")));
        }
        let mut start = index.to_vec();
        let mut shape = vec![1u64; 3];
        start[axis] = 0;
        shape[axis] = v.shape[axis];
        let rank = 3 - usize::from(v.flat);
        Ok(self
            .reader
            .read_f64(name, stored(rank, &start), stored(rank, &shape))?)
    }
}

fn check_index(v: &Variable, index: &[u64; 3]) -> Result<(), ViewError> {
    if index.iter().zip(&v.shape).any(|(i, n)| i >= n) {
        return Err(ViewError::Request(format!(
            "{}: index {index:?} outside the shape {:?}",
            v.name, v.shape
        )));
    }
    Ok(())
}

/// The axis `dim`: its coordinate variable when there is one (time decoded to UTC labels).
fn axis(reader: &CubeReader, dim: &str, size: u64) -> Result<Axis, ViewError> {
    let coord = reader
        .array(dim)
        .filter(|a| a.dims.len() == 1 && a.shape[0] == size);
    let Some(coord) = coord else {
        return Ok(Axis {
            name: dim.into(),
            size,
            values: (0..size).map(|i| i as f64).collect(),
            labels: None,
            units: "index".into(),
            seconds: None,
        });
    };
    let units = coord
        .attrs
        .get("units")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let values = reader.read_all_f64(dim)?;
    let mut seconds = None;
    let labels = if units.contains(" since ") {
        // int64 microseconds do not survive f64 beyond 2^53 µs (year 2255): read them exactly.
        let us = match coord.dtype {
            cryocube_cube::DType::I64 if units.starts_with("microseconds") => {
                let epoch = decode_time(&[0.0], &units).map(|e| e[0]);
                let raw = reader.read_all_i64(dim)?;
                epoch.map(|e| raw.iter().map(|v| e + v).collect::<Vec<_>>())
            }
            _ => decode_time(&values, &units),
        };
        seconds = us
            .as_ref()
            .map(|us| us.iter().map(|&u| u as f64 / 1e6).collect());
        us.map(|us| us.into_iter().map(format_utc_us).collect())
    } else {
        None
    };
    Ok(Axis {
        name: dim.into(),
        size,
        values,
        labels,
        units,
        seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: [u64; 4] = [0, 1, 0, 1];

    fn face(n: usize) -> Arc<Face> {
        Arc::new(Face::from_values(1, n, [1, 1], [0, 0], 0, &vec![1.0; n]))
    }

    #[test]
    fn the_cache_stays_within_its_budget_and_keeps_the_recent_faces() {
        let c: Cache<FaceKey, Arc<Face>> = cache(10_000);
        for i in 0..50u64 {
            c.insert(("v".into(), 0, i, 1, 0, W), face(1000));
            assert!(c.weight() <= 10_000, "{} bytes", c.weight());
            // A face asked for again and again stays while others come and go.
            assert!(c.get(&("v".into(), 0, 0, 1, 0, W)).is_some(), "after {i}");
        }
        assert!(c.get(&("v".into(), 0, 49, 1, 0, W)).is_some());
        assert!(c.len() < 50, "old faces went");
        // A face larger than the whole budget is served but not kept.
        c.insert(("v".into(), 1, 0, 1, 0, W), face(100_000));
        assert!(c.weight() <= 10_000);
        assert!(c.get(&("v".into(), 1, 0, 1, 0, W)).is_none());
    }

    #[test]
    fn quantisation_keeps_nan_and_the_range() {
        let f = Face::from_values(1, 4, [1, 1], [0, 0], 0, &[f32::NAN, -2.0, 0.0, 2.0]);
        assert_eq!(f.quantised, [NAN_CODE, 0, 32767, 65534]);
        assert_eq!((f.min, f.max), (-2.0, 2.0));
        let all_nan = Face::from_values(1, 2, [1, 1], [0, 0], 0, &[f32::NAN, f32::NAN]);
        assert_eq!(all_nan.quantised, [NAN_CODE, NAN_CODE]);
    }
}
