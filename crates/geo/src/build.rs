//! `cryocube build`: recipe -> fetch -> read -> warp/rasterise -> one CF cube, chunk by chunk.
//!
//! Each recipe variable is made from one or more pieces: a source file (fetched if missing
//! into `--sources`) made ready once ([`crate::read::prepare`]: decoded, masked before any
//! resampling, vectors reprojected), then warped or rasterised onto each output chunk of the
//! target grid. Several pieces of a static variable are mosaicked (later pieces win where they
//! have data); the pieces of a time-stacked variable (`dims` with `time`) carry a time stamp
//! each, pieces with the same stamp are mosaicked, and the cube's `time` axis is the union
//! of all stamps. Chunks are computed in parallel and written as they are done; a chunk with
//! no data is not stored. Memory: one chunk per worker, plus the prepared in-memory copies.
//! The cube follows CONVENTIONS.md: x/y cell centres (y descending), a `crs` variable with the
//! CF grid mapping and the WKT, `grid_mapping` + `coordinates` on every variable, provenance.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use gdal::spatial_ref::SpatialRef;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

use cryocube_cube::cf::{attrs, format_utc_us, now_iso, parse_date_or_time_us, time_attrs};
use cryocube_cube::job::Job as StoredJob;
use cryocube_cube::lock::{LockMode, StoreLock};
use cryocube_cube::{ArraySpec, Attrs, CubeWriter, DType, Location, WriteOptions, ZarrFormat};

use crate::fetch::{fetch_source, FetchOptions, Fetched};
use crate::grid::TargetGrid;
use crate::read::dims::{slices, SliceRequest, SourceDim};
use crate::read::prepare::{prepare, Prepared, ReadSpec};
use crate::recipe::{InputFile, Processing, Recipe, SourceSpec};
use crate::{read_err as err, GeoError};

/// What `build` is asked to do.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// A folder or an S3 prefix.
    pub output: Location,
    /// Where sources are (and are fetched to when missing).
    pub sources: PathBuf,
    /// Cells per chunk side; `None`: [`auto_chunk`].
    pub chunk: Option<usize>,
    /// Another cell size than the recipe's (same extent).
    pub res: Option<f64>,
    /// Replace an existing output.
    pub overwrite: bool,
}

/// The default chunk side: at most [`MAX_AUTO_CHUNK`] cells, evened out over the grid's
/// longer side so that the last chunk is not mostly padding (2121 rows: two chunks of 1061,
/// not 2048 + 73; 21 210 rows: eleven of 1929).
pub fn auto_chunk(grid: &TargetGrid) -> usize {
    let n = grid.nx.max(grid.ny).max(1);
    n.div_ceil(n.div_ceil(MAX_AUTO_CHUNK))
}

/// Cells of all sources a build holds in memory at most (1 GiB of float32).
pub const SOURCE_MEMORY_CELLS: usize = 256 << 20;

/// Largest default chunk side.
pub const MAX_AUTO_CHUNK: usize = 2048;

impl BuildOptions {
    /// The chunk side on `grid`: the one asked for, else [`auto_chunk`].
    pub fn chunk_for(&self, grid: &TargetGrid) -> usize {
        // A chunk larger than the grid would only allocate cells that are not there.
        self.chunk
            .unwrap_or_else(|| auto_chunk(grid))
            .min(grid.nx.max(grid.ny))
            .max(1)
    }
}

/// What a build did.
#[derive(Clone, Debug)]
pub struct BuildSummary {
    /// The cube's data variables.
    pub variables: Vec<String>,
    /// Variables of the recipe no source gives (not in the cube).
    pub skipped: Vec<String>,
    /// Grid columns.
    pub nx: usize,
    /// Grid rows.
    pub ny: usize,
    /// Time stamps of the time axis (UTC µs); empty when the cube has none.
    pub times: Vec<i64>,
    /// Things the user should know, each naming its source.
    pub warnings: Vec<String>,
}

/// One source file (or 2-D slice of one) of a variable, ready to resample.
struct Piece {
    /// UTC µs, for time-stacked variables.
    time: Option<i64>,
    /// Coordinate values along the variable's extra dimensions.
    coords: Vec<f64>,
    /// Index on each of the variable's leading dimensions (time and extra), set once the
    /// cube's axes are known.
    at: Vec<usize>,
    prepared: Prepared,
    /// File name, size and hash, for the provenance.
    origin: String,
}

/// One output variable.
struct Layer {
    name: String,
    /// Its dimensions before y and x (`time`, extra ones such as `level`), in order.
    lead: Vec<String>,
    pieces: Vec<Piece>,
    attrs: Attrs,
}

impl Layer {
    fn timed(&self) -> bool {
        self.lead.iter().any(|d| d == "time")
    }

    /// The pieces to mosaic at index `at` of the leading dimensions (all of them for a
    /// static variable).
    fn pieces_at(&self, at: &[usize]) -> Vec<&Piece> {
        self.pieces.iter().filter(|p| p.at == at).collect()
    }

    /// The indexes of the leading dimensions at which some piece has data.
    fn slices(&self) -> Vec<Vec<usize>> {
        let set: BTreeSet<Vec<usize>> = self.pieces.iter().map(|p| p.at.clone()).collect();
        set.into_iter().collect()
    }
}

/// An extra (non-spatial, non-time) axis of the cube, e.g. pressure level.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Axis {
    name: String,
    values: Vec<f64>,
    /// From the source's coordinate variable (units, long_name, positive, ...).
    attrs: Attrs,
}

/// The recipe read and its sources made ready: everything a plan or a task computes from.
struct Made {
    grid: TargetGrid,
    layers: Vec<Layer>,
    times: Vec<i64>,
    axes: Vec<Axis>,
    warnings: Vec<String>,
    skipped: Vec<String>,
}

/// Reads the recipe, fetches what is missing and prepares every source once.
fn make(recipe: &Recipe, opts: &BuildOptions) -> Result<Made, GeoError> {
    let mut grid = recipe.grid();
    if let Some(r) = opts.res {
        grid = grid
            .with_resolution(r)
            .map_err(|(at, m)| GeoError::Recipe {
                path: recipe.path.clone(),
                json_path: at,
                message: format!("--res {r}: {m}"),
            })?;
    }
    // A target CRS GDAL cannot use must stop the build before anything is read or written.
    SpatialRef::from_definition(&grid.crs).map_err(|e| GeoError::Recipe {
        path: recipe.path.clone(),
        json_path: "$.properties.spatial_ref".into(),
        message: format!("{:?} is not a CRS GDAL knows: {e}", grid.crs),
    })?;
    let mut warnings = recipe.warnings.clone();
    let mut skipped = Vec::new();
    let mut layers = Vec::new();
    let outputs = recipe.outputs();
    let props = recipe.properties();
    let base = recipe.path.parent().unwrap_or(Path::new("."));
    let mut fetched: Vec<Option<Fetched>> = vec![None; props.sources.len()];
    let mut axes: Vec<Axis> = Vec::new();
    // Sources are held in memory up to this many cells in all (4 bytes each); the rest are
    // warped by GDAL per window.
    let mut memory_left = SOURCE_MEMORY_CELLS;
    let key_base = sanitise(&opts.output.to_string());
    for (vi, v) in props.variables.iter().enumerate() {
        let lead = leading_dims(&v.dims).map_err(|message| GeoError::Recipe {
            path: recipe.path.clone(),
            json_path: format!("$.properties.variables[{vi}].dims"),
            message: format!("{}: {message}", v.name),
        })?;
        let timed = lead.iter().any(|d| d == "time");
        let extra: Vec<String> = lead.iter().filter(|d| *d != "time").cloned().collect();
        let from: Vec<&(usize, String, String)> =
            outputs.iter().filter(|(_, _, n)| *n == v.name).collect();
        if from.is_empty() {
            skipped.push(v.name.clone());
            warnings.push(format!("{}: no source gives it; skipped", v.name));
            continue;
        }
        let mut pieces = Vec::new();
        let mut urls = Vec::new();
        for (si, _, _) in from {
            let source = &props.sources[*si];
            if fetched[*si].is_none() {
                fetched[*si] = Some(
                    fetch_source(
                        source,
                        base,
                        &FetchOptions::new(opts.sources.clone()),
                        &|_, _, _| {},
                    )
                    .map_err(|e| e.in_source(&source.name))?,
                );
            }
            let got = fetched[*si].as_ref().expect("fetched above");
            let at = format!("$.properties.sources[{si}].processing");
            let (files, spec, mut request) = read_spec(source, &v.name);
            request.extra = extra.clone();
            request.timed = timed;
            for (file, time) in pick_files(got, &files)? {
                let time = match time {
                    Some(t) => Some(parse_date_or_time_us(&t).ok_or_else(|| GeoError::Recipe {
                        path: recipe.path.clone(),
                        json_path: format!("{at}.files"),
                        message: format!(
                            "time {t:?} is not a date (2013-01-01) or an RFC 3339 time"
                        ),
                    })?),
                    None => None,
                };
                let named = |e: GeoError| match e {
                    GeoError::Read { path, message } => GeoError::Read {
                        path,
                        message: format!(
                            "{message} (source {:?}, {})",
                            source.name, source.download_url
                        ),
                    },
                    other => other,
                };
                let (slices, dims) = slices(&file, &spec, &request).map_err(named)?;
                if time.is_some() && request.time_dimension.is_some() {
                    return Err(GeoError::Recipe {
                        path: recipe.path.clone(),
                        json_path: format!("{at}.time_dimension"),
                        message: "the time axis comes from the files' `time` or from a dimension of the source, not both".into(),
                    });
                }
                for d in dims {
                    add_axis(&mut axes, d, &file)?;
                }
                for slice in slices {
                    let mut spec = spec.clone();
                    if slice.band.is_some() {
                        spec.band = slice.band;
                    }
                    let key = format!("{key_base}/{}-{}", v.name, pieces.len());
                    spec.memory_cells = memory_left;
                    let mut prepared = prepare(&file, &spec, &grid, &key).map_err(named)?;
                    memory_left -= prepared.cells_in_memory();
                    if !slice.label.is_empty() {
                        // After "read FILE" and "variable V".
                        let at = prepared
                            .steps
                            .iter()
                            .position(|s| s.starts_with("variable "))
                            .map_or(1, |i| i + 1);
                        prepared.steps.insert(at, format!("slice {}", slice.label));
                    }
                    let time = slice.time.or(time);
                    warnings.extend(prepared.warnings.iter().cloned());
                    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
                    let origin = if file == got.file {
                        format!("{} ({size} bytes, sha256 {})", file_name(&file), got.sha256)
                    } else {
                        format!(
                            "{} ({size} bytes) in {} (sha256 {})",
                            file_name(&file),
                            file_name(&got.file),
                            got.sha256
                        )
                    };
                    pieces.push(Piece {
                        time,
                        coords: slice.coords,
                        at: Vec::new(),
                        prepared,
                        origin,
                    });
                }
            }
            urls.push(source.download_url.clone());
        }
        if timed && pieces.iter().any(|p| p.time.is_none()) {
            skipped.push(v.name.clone());
            warnings.push(format!(
                "{}: time-stacked, but its files have no time stamp (set processing.files[].time or processing.time_dimension); skipped",
                v.name
            ));
            continue;
        }
        if !timed && pieces.iter().any(|p| p.time.is_some()) {
            warnings.push(format!(
                "{}: has no time dimension; the time stamps of its files are ignored and the files mosaicked",
                v.name
            ));
        }
        let mut a = attrs([
            (
                "long_name",
                json!(v.long_name.clone().unwrap_or_else(|| v.name.clone())),
            ),
            ("grid_mapping", json!("crs")),
            ("coordinates", json!("crs")),
            ("source", json!(urls.join(", "))),
            (
                "input_files",
                json!(pieces.iter().map(|p| p.origin.clone()).collect::<Vec<_>>()),
            ),
            ("processing", json!(provenance(&pieces))),
        ]);
        let out = props
            .sources
            .iter()
            .filter_map(|s| s.processing.as_ref())
            .flat_map(|p| &p.outputs)
            .find(|o| o.name == v.name);
        if let Some(u) = out
            .and_then(|o| o.units.clone())
            .or_else(|| v.units.clone())
        {
            a.insert("units".into(), json!(u));
        }
        // DeepESDL's colour bar of the variable: the viewer opens it with these.
        if let Some(serde_json::Value::Object(m)) = v.extra.get("metadata") {
            for k in ["color_bar_name", "color_value_min", "color_value_max"] {
                if let Some(val) = m.get(k) {
                    a.insert(k.into(), val.clone());
                }
            }
        }
        if let Some(o) = out {
            for (k, val) in &o.attrs {
                a.insert(k.clone(), val.clone());
            }
        }
        layers.push(Layer {
            name: v.name.clone(),
            lead,
            pieces,
            attrs: a,
        });
    }
    if layers.is_empty() {
        return Err(GeoError::Recipe {
            path: recipe.path.clone(),
            json_path: "$.properties.variables".into(),
            message: format!(
                "no variable can be built ({}): nothing to write",
                if skipped.is_empty() {
                    "the recipe declares none".to_string()
                } else {
                    format!("skipped: {}", skipped.join(", "))
                }
            ),
        });
    }
    let times: Vec<i64> = layers
        .iter()
        .filter(|l| l.timed())
        .flat_map(|l| l.pieces.iter().filter_map(|p| p.time))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    for l in &mut layers {
        let lead = l.lead.clone();
        for p in &mut l.pieces {
            let mut extra = p.coords.iter();
            p.at = lead
                .iter()
                .map(|d| match d.as_str() {
                    "time" => times
                        .binary_search(&p.time.expect("timed pieces have a time"))
                        .expect("every time is on the axis"),
                    name => {
                        let v = *extra.next().expect("a coordinate per extra dimension");
                        axes.iter()
                            .find(|a| a.name == name)
                            .and_then(|a| a.values.iter().position(|x| *x == v))
                            .expect("every coordinate is on its axis")
                    }
                })
                .collect();
        }
    }
    if let Some(range) = props.time_range.as_ref().filter(|r| r.len() == 2) {
        let bounds: Vec<Option<i64>> = range.iter().map(|t| parse_date_or_time_us(t)).collect();
        if let (Some(t0), Some(t1)) = (bounds[0], bounds[1]) {
            for t in times.iter().filter(|t| **t < t0 || **t > t1) {
                warnings.push(format!(
                    "$.properties.time_range: time stamp {} lies outside {} .. {}",
                    format_utc_us(*t),
                    range[0],
                    range[1]
                ));
            }
        }
    }
    Ok(Made {
        grid,
        layers,
        times,
        axes,
        warnings,
        skipped,
    })
}

/// What to read for cube variable `name` from `source`: its files and how (the output's
/// overrides applied to the source's `processing`).
fn read_spec(source: &SourceSpec, name: &str) -> (Vec<InputFile>, ReadSpec, SliceRequest) {
    let p: Processing = source.processing.clone().unwrap_or_default();
    let out = p.outputs.iter().find(|o| o.name == name);
    let files = match out {
        Some(o) if !o.files.is_empty() => o.files.clone(),
        _ => p.files.clone(),
    };
    let spec = ReadSpec {
        format: p.format,
        variable: out.and_then(|o| o.variable.clone()).or(p.variable),
        band: out.and_then(|o| o.band).or(p.band),
        crs: p.crs.or_else(|| source.source_crs.clone()),
        nodata: p.nodata,
        valid: p.valid,
        latitude: p.latitude,
        resampling: p.resampling,
        overviews: p.overviews,
        where_: p.where_.clone(),
        coordinates: p.coordinates.clone(),
        memory_cells: 0,
        rasterize: p.rasterize.or_else(|| {
            // The seed lists shapefiles with no instructions: burn 1 where a polygon is.
            matches!(
                source
                    .source_format
                    .as_deref()
                    .map(str::to_ascii_lowercase)
                    .as_deref(),
                Some("shp" | "shapefile" | "gpkg" | "geojson")
            )
            .then(Default::default)
        }),
    };
    let mut select = p.select.clone();
    if let Some(o) = out {
        select.extend(o.select.clone());
    }
    let request = SliceRequest {
        select,
        time_dimension: p.time_dimension.clone(),
        coordinate_units: p.coordinate_units.clone(),
        ..SliceRequest::default()
    };
    (files, spec, request)
}

/// A variable's dimensions before y and x. `dims` must end with y, x (or be empty: y, x);
/// before them `time` and extra dimensions named as in the sources, each once.
fn leading_dims(dims: &[String]) -> Result<Vec<String>, String> {
    if dims.is_empty() {
        return Ok(Vec::new());
    }
    let n = dims.len();
    if n < 2 || dims[n - 2] != "y" || dims[n - 1] != "x" {
        return Err(format!(
            "dims {dims:?} must end with \"y\", \"x\" (north-up rows, then columns)"
        ));
    }
    let lead = &dims[..n - 2];
    for (i, d) in lead.iter().enumerate() {
        if d == "y" || d == "x" || lead[..i].contains(d) {
            return Err(format!("dimension {d:?} is listed twice"));
        }
    }
    Ok(lead.to_vec())
}

/// Adds a source dimension to the cube's extra axes (values merged, sorted); the same
/// dimension from two sources must have the same units.
fn add_axis(axes: &mut Vec<Axis>, d: SourceDim, file: &Path) -> Result<(), GeoError> {
    match axes.iter_mut().find(|a| a.name == d.name) {
        Some(a) => {
            if a.attrs.get("units") != d.attrs.get("units") {
                return Err(err(
                    file,
                    format!(
                        "dimension {} is in {} here but in {} in another source",
                        d.name,
                        d.attrs
                            .get("units")
                            .map(|u| u.to_string())
                            .unwrap_or("no units".into()),
                        a.attrs
                            .get("units")
                            .map(|u| u.to_string())
                            .unwrap_or("no units".into()),
                    ),
                ));
            }
            for v in d.values {
                if !a.values.contains(&v) {
                    a.values.push(v);
                }
            }
            a.values.sort_by(f64::total_cmp);
        }
        None => {
            let mut values = d.values;
            values.sort_by(f64::total_cmp);
            axes.push(Axis {
                name: d.name,
                values,
                attrs: d.attrs,
            });
        }
    }
    Ok(())
}

/// The files of a fetched source to read, each with its time stamp text. `wanted` paths are
/// glob patterns matched against the archive's paths (or, for a plain file, its name).
fn pick_files(
    got: &Fetched,
    wanted: &[InputFile],
) -> Result<Vec<(PathBuf, Option<String>)>, GeoError> {
    let file = &got.file;
    if wanted.is_empty() {
        if !got.extracted.is_empty() {
            let shapes: Vec<&PathBuf> = got
                .extracted
                .iter()
                .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("shp")))
                .collect();
            // A zipped shapefile needs no instructions; anything else does.
            if shapes.len() == 1 {
                return Ok(vec![(shapes[0].clone(), None)]);
            }
            return Err(err(
                file,
                "is an archive: say which file to read with processing.files".into(),
            ));
        }
        return Ok(vec![(file.clone(), None)]);
    }
    let root = file.parent().unwrap_or(Path::new(".")).join("extracted");
    let mut out = Vec::new();
    for w in wanted {
        let pattern = glob::Pattern::new(&w.path)
            .map_err(|e| err(file, format!("processing.files: {:?}: {e}", w.path)))?;
        let matched: Vec<&PathBuf> = if got.extracted.is_empty() {
            [file]
                .into_iter()
                .filter(|f| pattern.matches(&file_name(f)))
                .collect()
        } else {
            got.extracted
                .iter()
                .filter(|p| {
                    let rel = p.strip_prefix(&root).unwrap_or(p);
                    pattern.matches_path(rel) || pattern.matches(&file_name(p))
                })
                .collect()
        };
        if matched.is_empty() {
            return Err(err(
                file,
                if got.extracted.is_empty() {
                    format!("processing.files: {:?} does not match this file", w.path)
                } else {
                    format!("processing.files: the archive has no {:?}", w.path)
                },
            ));
        }
        out.extend(matched.into_iter().map(|p| (p.clone(), w.time.clone())));
    }
    Ok(out)
}

/// The processing steps of a variable: the steps of its one file, or one line per file.
fn provenance(pieces: &[Piece]) -> Vec<String> {
    match pieces {
        [one] => one.prepared.steps.clone(),
        many => many
            .iter()
            .map(|p| {
                let when = p
                    .time
                    .map(|t| format!("{}: ", format_utc_us(t)))
                    .unwrap_or_default();
                format!("{when}{}", p.prepared.steps.join("; "))
            })
            .collect(),
    }
}

/// An output path as a component of in-memory file names.
fn sanitise(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Mosaic of `pieces` on a window: later pieces win where they have data.
fn render(
    pieces: &[&Piece],
    grid: &TargetGrid,
    cols: std::ops::Range<usize>,
    rows: std::ops::Range<usize>,
) -> Result<Vec<f32>, GeoError> {
    if let [one] = pieces {
        return one.prepared.render(grid, cols, rows);
    }
    let mut out = vec![f32::NAN; cols.len() * rows.len()];
    for p in pieces {
        let part = p.prepared.render(grid, cols.clone(), rows.clone())?;
        for (o, v) in out.iter_mut().zip(part) {
            if !v.is_nan() {
                *o = v;
            }
        }
    }
    Ok(out)
}

/// The coordinates, the grid mapping and the (empty) variables of a new cube.
fn create_arrays(
    w: &mut CubeWriter,
    recipe: &Recipe,
    made: &Made,
    chunk: usize,
) -> Result<(), GeoError> {
    let (grid, layers, times, axes) = (&made.grid, &made.layers, &made.times, &made.axes);
    let x: Vec<f64> = (0..grid.nx).map(|i| grid.x(i)).collect();
    let y: Vec<f64> = (0..grid.ny).map(|j| grid.y(j)).collect();
    for (name, values) in [("x", &x), ("y", &y)] {
        let axis = name.to_ascii_uppercase();
        w.add_array(ArraySpec::coordinate(
            name,
            name,
            values.len() as u64,
            DType::F64,
            attrs([
                (
                    "standard_name",
                    json!(format!("projection_{name}_coordinate")),
                ),
                (
                    "long_name",
                    json!(format!("{name} coordinate of projection (cell centre)")),
                ),
                ("units", json!("m")),
                ("axis", json!(axis)),
            ]),
        ))?;
        w.write_all(name, values)?;
    }
    let crs = crs_attrs(&grid.crs, grid).map_err(|m| GeoError::Recipe {
        path: recipe.path.clone(),
        json_path: "$.properties.spatial_ref".into(),
        message: m,
    })?;
    let crs_wkt = crs["crs_wkt"].clone();
    w.add_array(ArraySpec::scalar("crs", DType::I32, crs))?;
    w.write_all("crs", &[0i32])?;
    if !times.is_empty() {
        let mut a = time_attrs("epoch");
        a.insert(
            "long_name".into(),
            json!("time (UTC) of the epoch of the time-stacked variables"),
        );
        w.add_array(ArraySpec::coordinate(
            "time",
            "time",
            times.len() as u64,
            DType::I64,
            a,
        ))?;
        w.write_all("time", times)?;
    }
    // GDAL before 3.9 does not read CF grid mappings from Zarr, only its own `_CRS`.
    let gdal_crs = json!({"wkt": crs_wkt});
    for a in axes {
        let mut attrs = a.attrs.clone();
        attrs
            .entry("long_name".to_string())
            .or_insert_with(|| json!(a.name));
        w.add_array(ArraySpec::coordinate(
            &a.name,
            &a.name,
            a.values.len() as u64,
            DType::F64,
            attrs,
        ))?;
        w.write_all(&a.name, &a.values)?;
    }
    for l in layers {
        let mut attrs = l.attrs.clone();
        attrs.insert("_CRS".into(), gdal_crs.clone());
        let (ny, nx, c) = (grid.ny as u64, grid.nx as u64, chunk as u64);
        let mut dims = l.lead.clone();
        dims.extend(["y".to_string(), "x".to_string()]);
        let mut shape = lead_sizes(&l.lead, times, axes);
        let mut chunks = vec![1; shape.len()];
        shape.extend([ny, nx]);
        chunks.extend([c, c]);
        w.add_array(ArraySpec {
            name: l.name.clone(),
            dims,
            shape,
            chunks,
            shard: None,
            dtype: DType::F32,
            attrs,
        })?;
    }
    Ok(())
}

/// The sizes of a variable's leading dimensions.
fn lead_sizes(lead: &[String], times: &[i64], axes: &[Axis]) -> Vec<u64> {
    lead.iter()
        .map(|d| match d.as_str() {
            "time" => times.len() as u64,
            name => axes
                .iter()
                .find(|a| a.name == name)
                .map_or(0, |a| a.values.len() as u64),
        })
        .collect()
}

/// Job kind of `cryocube build` in a store's plan.
pub const KIND: &str = "build";

/// What a build's stored plan holds: where the recipe and sources are (a task prepares the
/// sources again from them and must reach the same fingerprint), the grid's chunking, and
/// the attributes the commit publishes.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct BuildPayload {
    recipe: PathBuf,
    sources: PathBuf,
    chunk: usize,
    res: Option<f64>,
    /// Chunks of the grid along y and x; unit `u` is chunk `(u / cx, u % cx)`.
    cy: usize,
    cx: usize,
    nx: usize,
    ny: usize,

    /// Per variable: name, number of 2-D slices (the product of its leading dimensions),
    /// attributes without `valid_fraction`.
    layers: Vec<(String, u64, Attrs)>,
    root_attrs: Attrs,
    warnings: Vec<String>,
    skipped: Vec<String>,
    times: Vec<i64>,
}

/// What `build --plan-only` reports.
#[derive(Clone, Debug)]
pub struct Planned {
    /// Units planned (chunks of the grid).
    pub units: u64,
    /// What a unit is.
    pub unit_name: String,
    /// The same plan was already in the store.
    pub existing: bool,
}

/// What a build task did.
#[derive(Clone, Debug)]
pub struct TaskSummary {
    /// The units this task owns.
    pub units: std::ops::Range<u64>,
    /// Of them, those already done before it started.
    pub already_done: u64,
}

/// What must be equal for a killed build to be resumed: the recipe, the options, the
/// sources (their hashes) and the software.
fn fingerprint(
    recipe: &Recipe,
    opts: &BuildOptions,
    grid: &TargetGrid,
    layers: &[Layer],
    times: &[i64],
) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(std::fs::read(&recipe.path).unwrap_or_default());
    h.update(format!(
        "{} {} {} {} {} {:?}",
        env!("CARGO_PKG_VERSION"),
        opts.chunk_for(grid),
        grid.nx,
        grid.ny,
        grid.res_x,
        times
    ));
    for l in layers {
        h.update(&l.name);
        for p in &l.pieces {
            h.update(&p.origin);
            h.update(p.prepared.steps.join(";"));
        }
    }
    format!("{:x}", h.finalize())
}

/// Builds the cube in this process: plan (or the plan of the same build found in the store),
/// every chunk of the grid, commit.
pub fn build(
    recipe: &Recipe,
    opts: &BuildOptions,
    wait: bool,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<BuildSummary, GeoError> {
    cryocube_cube::write::check_output(&opts.output)?;
    let made = make(recipe, opts)?;
    let _lock = StoreLock::acquire(&opts.output, LockMode::Exclusive, wait, "build")?;
    let (stored, payload, _) = obtain(recipe, opts, &made)?;
    let done = stored.done_units()?;
    if !done.is_empty() {
        log::info!(
            "{}: resuming an interrupted build ({} of {} chunk(s) of the grid already done)",
            opts.output,
            done.len(),
            stored.plan.units
        );
    }
    let writer = CubeWriter::reopen(&opts.output)?;
    let all: Vec<u64> = (0..stored.plan.units).collect();
    run_units(&stored, &writer, &made, &payload, &all, &done, progress)?;
    finish(stored, writer, &payload)
}

/// `build --plan-only`: prepares the sources, lays out the cube and stores the plan.
pub fn plan_only(recipe: &Recipe, opts: &BuildOptions, wait: bool) -> Result<Planned, GeoError> {
    cryocube_cube::write::check_output(&opts.output)?;
    let made = make(recipe, opts)?;
    let _lock = StoreLock::acquire(&opts.output, LockMode::Exclusive, wait, "build")?;
    let (stored, _, existing) = obtain(recipe, opts, &made)?;
    Ok(Planned {
        units: stored.plan.units,
        unit_name: stored.plan.unit_name.clone(),
        existing,
    })
}

/// Task `index` of `count` of the build planned in `stored`: prepares the sources as the plan
/// says, checks they are the ones planned, and computes its share of the grid's chunks.
pub fn run_task(
    stored: StoredJob,
    location: &Location,
    index: u64,
    count: u64,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<TaskSummary, GeoError> {
    // An index out of range is refused before the sources are prepared.
    stored.share_of(index, count)?;
    let payload: BuildPayload = stored.payload()?;
    let recipe = Recipe::load(&payload.recipe)?;
    let opts = BuildOptions {
        output: location.clone(),
        sources: payload.sources.clone(),
        chunk: Some(payload.chunk),
        res: payload.res,
        overwrite: false,
    };
    let made = make(&recipe, &opts)?;
    let fp = fingerprint(&recipe, &opts, &made.grid, &made.layers, &made.times);
    if fp != stored.plan.fingerprint {
        return Err(GeoError::Io {
            path: location.display_path(),
            message: format!(
                "the recipe {} or its sources changed since the build was planned; plan again with --overwrite",
                payload.recipe.display()
            ),
        });
    }
    let task = stored.start_task(index, count)?;
    let units: Vec<u64> = task.share.clone().collect();
    let writer = CubeWriter::reopen(location)?;
    run_units(
        &stored, &writer, &made, &payload, &units, &task.done, progress,
    )?;
    Ok(TaskSummary {
        units: task.share,
        already_done: task.already,
    })
}

/// Publishes the cube of a build whose chunks are all done.
pub fn commit(stored: StoredJob, location: &Location) -> Result<BuildSummary, GeoError> {
    let payload: BuildPayload = stored.payload()?;
    let writer = CubeWriter::reopen(location)?;
    finish(stored, writer, &payload)
}

/// The plan of this build: found in the store (same fingerprint), or made (store created,
/// arrays laid out). The bool: found.
fn obtain(
    recipe: &Recipe,
    opts: &BuildOptions,
    made: &Made,
) -> Result<(StoredJob, BuildPayload, bool), GeoError> {
    let out = &opts.output;
    let fp = fingerprint(recipe, opts, &made.grid, &made.layers, &made.times);
    let mut overwrite = opts.overwrite;
    if !opts.overwrite && out.exists()? {
        if let Some(stored) = StoredJob::open(out.open()?)? {
            let refuse = |why: &str| GeoError::Io {
                path: out.display_path(),
                message: format!("{why}; run with --overwrite to start again"),
            };
            if stored.plan.kind != KIND {
                return Err(refuse(&format!(
                    "holds the unfinished plan of a `{}` job",
                    stored.plan.kind
                )));
            }
            if stored.plan.fingerprint != fp {
                return Err(refuse(
                    "an unfinished build of another recipe, other options or other sources is there",
                ));
            }
            if !stored.done_units()?.is_empty() {
                let payload = stored.payload()?;
                return Ok((stored, payload, true));
            }
            // Killed while laying out the arrays: nothing worth keeping.
            overwrite = true;
        }
    }
    let chunk = opts.chunk_for(&made.grid);
    let grid = &made.grid;
    let mut w = CubeWriter::create(
        out,
        WriteOptions {
            format: ZarrFormat::V2,
            overwrite,
        },
    )?;
    let payload = BuildPayload {
        recipe: std::fs::canonicalize(&recipe.path).unwrap_or_else(|_| recipe.path.clone()),
        sources: std::fs::canonicalize(&opts.sources).unwrap_or_else(|_| opts.sources.clone()),
        chunk,
        res: opts.res,
        cy: grid.ny.div_ceil(chunk),
        cx: grid.nx.div_ceil(chunk),
        nx: grid.nx,
        ny: grid.ny,
        layers: made
            .layers
            .iter()
            .map(|l| {
                let slices = lead_sizes(&l.lead, &made.times, &made.axes)
                    .iter()
                    .product();
                (l.name.clone(), slices, l.attrs.clone())
            })
            .collect(),
        root_attrs: root_attrs(recipe, out, grid, &made.layers, &made.times),
        warnings: made.warnings.clone(),
        skipped: made.skipped.clone(),
        times: made.times.clone(),
    };
    // The plan first: a build killed while laying out the arrays leaves a store its next run
    // recognises.
    let stored = StoredJob::create(
        w.store().clone(),
        cryocube_cube::job::Plan {
            kind: KIND.into(),
            fingerprint: fp,
            units: (payload.cy * payload.cx) as u64,
            unit_name: "grid chunk".into(),
            created: now_iso(),
            planned_on: cryocube_cube::job::this_process(),
            payload: serde_json::to_value(&payload).map_err(|e| GeoError::Io {
                path: out.display_path(),
                message: format!("the plan cannot be stored: {e}"),
            })?,
        },
    )?;
    create_arrays(&mut w, recipe, made, chunk)?;
    Ok((stored, payload, false))
}

/// Computes the chunks of the grid among `units` not in `done`, in parallel, recording each
/// with its count of cells with data per variable once all its variables are stored.
fn run_units(
    stored: &StoredJob,
    w: &CubeWriter,
    made: &Made,
    payload: &BuildPayload,
    units: &[u64],
    done: &[u64],
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<(), GeoError> {
    let (grid, layers) = (&made.grid, &made.layers);
    let chunk = payload.chunk;
    // Tasks per chunk of the grid: each 2-D slice (index on the leading dimensions) at which
    // a variable has a piece; other slices have no data and nothing is stored.
    let steps: Vec<(usize, Vec<usize>)> = layers
        .iter()
        .enumerate()
        .flat_map(|(k, l)| l.slices().into_iter().map(move |at| (k, at)))
        .collect();
    let todo: Vec<u64> = units
        .iter()
        .copied()
        .filter(|u| done.binary_search(u).is_err())
        .collect();
    let total = units.len() * steps.len();
    let progressed = AtomicUsize::new((units.len() - todo.len()) * steps.len());
    progress(progressed.load(Ordering::Relaxed), total);
    todo.par_iter().try_for_each(|&u| -> Result<(), GeoError> {
        let (j, i) = (u as usize / payload.cx, u as usize % payload.cx);
        let mut counts = vec![0u64; layers.len()];
        let rows = j * chunk..((j + 1) * chunk).min(grid.ny);
        let cols = i * chunk..((i + 1) * chunk).min(grid.nx);
        let (h, wdt) = (rows.len(), cols.len());
        // The variables (and time steps) of a chunk in parallel too: a small grid is one
        // chunk, and its layers are the work there is.
        let done: Vec<(usize, u64)> = steps
            .par_iter()
            .map(|(k, at)| -> Result<(usize, u64), GeoError> {
                let l = &layers[*k];
                let part = render(&l.pieces_at(at), grid, cols.clone(), rows.clone())?;
                let n = part.iter().filter(|v| !v.is_nan()).count() as u64;
                if n > 0 {
                    // Edge chunks are padded to the full chunk shape.
                    let full = if h == chunk && wdt == chunk {
                        part
                    } else {
                        let mut full = vec![f32::NAN; chunk * chunk];
                        for r in 0..h {
                            full[r * chunk..r * chunk + wdt]
                                .copy_from_slice(&part[r * wdt..(r + 1) * wdt]);
                        }
                        full
                    };
                    let index: Vec<u64> = at
                        .iter()
                        .map(|a| *a as u64)
                        .chain([j as u64, i as u64])
                        .collect();
                    w.write_chunk(&l.name, &index, &full)?;
                }
                progress(progressed.fetch_add(1, Ordering::Relaxed) + 1, total);
                Ok((*k, n))
            })
            .collect::<Result<_, _>>()?;
        for (k, n) in done {
            counts[k] += n;
        }
        // Recorded once all its chunks are stored: a resumed build redoes the rest.
        stored.mark_done(u, &json!({ "cells": counts }))?;
        Ok(())
    })
}

/// The data-derived attributes (`valid_fraction`, warnings about empty variables) from the
/// units' records, then the cube published and the plan removed.
fn finish(
    stored: StoredJob,
    mut w: CubeWriter,
    payload: &BuildPayload,
) -> Result<BuildSummary, GeoError> {
    let records = stored.records()?;
    let mut warnings = payload.warnings.clone();
    let cells = (payload.nx * payload.ny) as f64;
    let gdal_crs = payload.root_attrs.get("_crs_wkt").cloned();
    for (k, (name, slices, attrs)) in payload.layers.iter().enumerate() {
        let n: u64 = records
            .values()
            .filter_map(|r| r["cells"].get(k).and_then(|c| c.as_u64()))
            .sum();
        let mut a = attrs.clone();
        if let Some(wkt) = &gdal_crs {
            a.insert("_CRS".into(), json!({ "wkt": wkt }));
        }
        let of = cells * *slices as f64;
        a.insert("valid_fraction".into(), json!(n as f64 / of));
        w.set_attrs(name, a)?;
        if n == 0 {
            // Reported by the caller with the other warnings.
            warnings.push(format!(
                "{name}: no cell of the grid has data (does the bbox lie outside its source?)"
            ));
        }
    }
    let mut root = payload.root_attrs.clone();
    root.remove("_crs_wkt");
    root.insert("warnings".into(), json!(warnings));
    w.finish(root)?;
    stored.remove()?;
    Ok(BuildSummary {
        variables: payload.layers.iter().map(|l| l.0.clone()).collect(),
        skipped: payload.skipped.clone(),
        nx: payload.nx,
        ny: payload.ny,
        times: payload.times.clone(),
        warnings,
    })
}

/// The cube's root attributes, fixed when the build is planned. `_crs_wkt` carries the WKT
/// for the variables' `_CRS` to the commit and is not published.
fn root_attrs(
    recipe: &Recipe,
    out: &Location,
    grid: &TargetGrid,
    layers: &[Layer],
    times: &[i64],
) -> Attrs {
    let p = recipe.properties();
    let mut root = attrs([
        ("Conventions", json!("CF-1.10, ACDD-1.3")),
        (
            "title",
            json!(p.title.clone().unwrap_or_else(|| "Polar data cube".into())),
        ),
        (
            "summary",
            json!(p.description.clone().unwrap_or_else(|| format!(
                "{} variables on a {} x {} grid of {} m cells ({})",
                layers.len(),
                grid.nx,
                grid.ny,
                grid.res_x,
                grid.crs
            ))),
        ),
        (
            "history",
            json!(format!(
                "{} cryocube {} build {} -o {}",
                now_iso(),
                env!("CARGO_PKG_VERSION"),
                recipe.path.display(),
                out
            )),
        ),
        ("date_created", json!(now_iso())),
        (
            "processing_software",
            json!(format!("cryocube {}", env!("CARGO_PKG_VERSION"))),
        ),
        ("geospatial_x_min", json!(grid.x_min)),
        (
            "geospatial_x_max",
            json!(grid.x_min + grid.nx as f64 * grid.res_x),
        ),
        (
            "geospatial_y_min",
            json!(grid.y_max - grid.ny as f64 * grid.res_y),
        ),
        ("geospatial_y_max", json!(grid.y_max)),
        (
            "geospatial_x_resolution",
            json!(format!("{} m", grid.res_x)),
        ),
        (
            "geospatial_y_resolution",
            json!(format!("{} m", grid.res_y)),
        ),
        ("warnings", json!([])),
    ]);
    if let (Some(t0), Some(t1)) = (times.first(), times.last()) {
        root.insert("time_coverage_start".into(), json!(format_utc_us(*t0)));
        root.insert("time_coverage_end".into(), json!(format_utc_us(*t1)));
    }
    if let Some(polygon) = grid.coverage_polygon() {
        root.insert("geospatial_bounds".into(), json!(wkt_polygon(&polygon)));
        root.insert("geospatial_bounds_crs".into(), json!("EPSG:4326"));
    }
    if let Some([lat0, lat1, lon0, lon1]) = grid.lon_lat_bounds() {
        root.insert("geospatial_lat_min".into(), json!(lat0));
        root.insert("geospatial_lat_max".into(), json!(lat1));
        root.insert("geospatial_lon_min".into(), json!(lon0));
        root.insert("geospatial_lon_max".into(), json!(lon1));
    }
    if let Some(id) = &p.data_id {
        root.insert("id".into(), json!(id));
    }
    if let Some(l) = &p.license {
        root.insert("license".into(), json!(l));
    }
    // The recipe's own global metadata, except what we compute from the data.
    for (k, v) in &p.metadata {
        if !k.starts_with("geospatial_")
            && !k.starts_with("temporal_")
            && !k.starts_with("time_coverage")
            && k != "date_modified"
            && k != "Conventions"
        {
            root.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    root.insert(
        "_crs_wkt".into(),
        crs_attrs(&grid.crs, grid)
            .map(|a| a["crs_wkt"].clone())
            .unwrap_or_default(),
    );
    root
}

/// CF grid-mapping attributes of `crs` (with `crs_wkt` and `spatial_ref` for GDAL/rioxarray).
pub fn crs_attrs(crs: &str, grid: &TargetGrid) -> Result<Attrs, String> {
    let srs = SpatialRef::from_definition(crs).map_err(|e| format!("CRS {crs:?}: {e}"))?;
    let wkt = srs.to_wkt().map_err(|e| e.to_string())?;
    let mut a = Attrs::new();
    let projection = srs
        .get_attr_value("PROJECTION", 0)
        .ok()
        .flatten()
        .unwrap_or_default();
    if projection
        .to_ascii_lowercase()
        .contains("polar_stereographic")
    {
        let p = |n: &str| srs.get_proj_param(n).ok().flatten().unwrap_or(0.0);
        let sp = p("latitude_of_origin");
        a.insert("grid_mapping_name".into(), json!("polar_stereographic"));
        a.insert("standard_parallel".into(), json!(sp));
        a.insert(
            "straight_vertical_longitude_from_pole".into(),
            json!(p("central_meridian")),
        );
        a.insert(
            "latitude_of_projection_origin".into(),
            json!(if sp < 0.0 { -90.0 } else { 90.0 }),
        );
        a.insert("false_easting".into(), json!(p("false_easting")));
        a.insert("false_northing".into(), json!(p("false_northing")));
    }
    if let (Ok(major), Ok(minor)) = (srs.semi_major(), srs.semi_minor()) {
        a.insert("semi_major_axis".into(), json!(major));
        if major > minor {
            a.insert("inverse_flattening".into(), json!(major / (major - minor)));
        }
    }
    a.insert("crs_wkt".into(), json!(wkt));
    a.insert("spatial_ref".into(), json!(wkt));
    let gt = grid.geotransform();
    a.insert(
        "GeoTransform".into(),
        json!(gt
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(" ")),
    );
    Ok(a)
}

/// A GeoJSON Polygon or MultiPolygon as WKT (ACDD's `geospatial_bounds`).
fn wkt_polygon(g: &serde_json::Value) -> String {
    let ring = |r: &serde_json::Value| {
        let pts: Vec<String> = r
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| format!("{} {}", p[0], p[1]))
            .collect();
        format!("({})", pts.join(", "))
    };
    let polygon = |p: &serde_json::Value| {
        let rings: Vec<String> = p.as_array().into_iter().flatten().map(ring).collect();
        format!("({})", rings.join(", "))
    };
    let c = &g["coordinates"];
    if g["type"] == "MultiPolygon" {
        let ps: Vec<String> = c.as_array().into_iter().flatten().map(polygon).collect();
        format!("MULTIPOLYGON ({})", ps.join(", "))
    } else {
        format!("POLYGON {}", polygon(c))
    }
}
