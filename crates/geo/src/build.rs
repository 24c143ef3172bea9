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
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use gdal::spatial_ref::{CoordTransform, SpatialRef};
use rayon::prelude::*;
use serde_json::json;

use cryocube_cube::cf::{attrs, format_utc_us, now_iso, parse_date_or_time_us, time_attrs};
use cryocube_cube::{ArraySpec, Attrs, CubeWriter, DType, Location, WriteOptions, ZarrFormat};

use crate::fetch::{fetch_source, FetchOptions, Fetched};
use crate::grid::TargetGrid;
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
    /// Cells per chunk side.
    pub chunk: usize,
    /// Another cell size than the recipe's (same extent).
    pub res: Option<f64>,
    pub overwrite: bool,
}

/// What a build did.
#[derive(Clone, Debug)]
pub struct BuildSummary {
    pub variables: Vec<String>,
    pub skipped: Vec<String>,
    pub nx: usize,
    pub ny: usize,
    /// Time stamps of the time axis (UTC µs); empty when the cube has none.
    pub times: Vec<i64>,
    pub warnings: Vec<String>,
}

/// One source file of a variable, ready to resample.
struct Piece {
    /// UTC µs, for time-stacked variables.
    time: Option<i64>,
    prepared: Prepared,
    /// File name, size and hash, for the provenance.
    origin: String,
}

/// One output variable.
struct Layer {
    name: String,
    timed: bool,
    pieces: Vec<Piece>,
    attrs: Attrs,
}

impl Layer {
    /// The pieces to mosaic at time `t` (all of them for a static variable).
    fn pieces_at(&self, t: Option<i64>) -> Vec<&Piece> {
        self.pieces
            .iter()
            .filter(|p| !self.timed || p.time == t)
            .collect()
    }
}

/// Builds the cube.
pub fn build(
    recipe: &Recipe,
    opts: &BuildOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<BuildSummary, GeoError> {
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
    let key_base = sanitise(&opts.output.to_string());
    for v in &props.variables {
        let timed = v.dims.iter().any(|d| d == "time");
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
                fetched[*si] = Some(fetch_source(
                    source,
                    base,
                    &FetchOptions::new(opts.sources.clone()),
                    &|_, _, _| {},
                )?);
            }
            let got = fetched[*si].as_ref().expect("fetched above");
            let at = format!("$.properties.sources[{si}].processing");
            let (files, spec) = read_spec(source, &v.name);
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
                let key = format!("{key_base}/{}-{}", v.name, pieces.len());
                let prepared = prepare(&file, &spec, &grid.crs, &key).map_err(|e| match e {
                    GeoError::Read { path, message } => GeoError::Read {
                        path,
                        message: format!(
                            "{message} (source {:?}, {})",
                            source.name, source.download_url
                        ),
                    },
                    other => other,
                })?;
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
                    prepared,
                    origin,
                });
            }
            urls.push(source.download_url.clone());
        }
        if timed && pieces.iter().any(|p| p.time.is_none()) {
            skipped.push(v.name.clone());
            warnings.push(format!(
                "{}: time-stacked, but its files have no time stamp (set processing.files[].time); skipped",
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
        if let Some(o) = out {
            for (k, val) in &o.attrs {
                a.insert(k.clone(), val.clone());
            }
        }
        layers.push(Layer {
            name: v.name.clone(),
            timed,
            pieces,
            attrs: a,
        });
    }
    let times: Vec<i64> = layers
        .iter()
        .filter(|l| l.timed)
        .flat_map(|l| l.pieces.iter().filter_map(|p| p.time))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
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
    write_cube(recipe, opts, &grid, &layers, &times, &warnings, progress)?;
    Ok(BuildSummary {
        variables: layers.iter().map(|l| l.name.clone()).collect(),
        skipped,
        nx: grid.nx,
        ny: grid.ny,
        times,
        warnings,
    })
}

/// What to read for cube variable `name` from `source`: its files and how (the output's
/// overrides applied to the source's `processing`).
fn read_spec(source: &SourceSpec, name: &str) -> (Vec<InputFile>, ReadSpec) {
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
    (files, spec)
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
    grid: &TargetGrid,
    layers: &[Layer],
    times: &[i64],
    chunk: usize,
) -> Result<(), GeoError> {
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
    let nt = times.len() as u64;
    for l in layers {
        let mut attrs = l.attrs.clone();
        attrs.insert("_CRS".into(), gdal_crs.clone());
        let (ny, nx, c) = (grid.ny as u64, grid.nx as u64, chunk as u64);
        let (dims, shape, chunks) = if l.timed {
            (vec!["time", "y", "x"], vec![nt, ny, nx], vec![1, c, c])
        } else {
            (vec!["y", "x"], vec![ny, nx], vec![c, c])
        };
        w.add_array(ArraySpec {
            name: l.name.clone(),
            dims: dims.into_iter().map(String::from).collect(),
            shape,
            chunks,
            shard: None,
            dtype: DType::F32,
            attrs,
        })?;
    }
    Ok(())
}

/// Per chunk of the grid done: the cells with data per variable (for `valid_fraction`).
type CellCounts = std::collections::BTreeMap<String, Vec<u64>>;

/// How a build starts: afresh, or where a killed run of the same build stopped.
enum Start {
    Fresh { overwrite: bool },
    Resume(CellCounts),
}

fn journal(fingerprint: &str, ready: bool, cells: &CellCounts) -> serde_json::Value {
    json!({
        "kind": "build",
        "fingerprint": fingerprint,
        "ready": ready,
        "blocks_done": cells.len(),
        "cells": cells,
    })
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
        opts.chunk,
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

fn resume_state(out: &Location, overwrite: bool, fingerprint: &str) -> Result<Start, GeoError> {
    if overwrite {
        return Ok(Start::Fresh { overwrite });
    }
    let text = match out.open()?.get(cryocube_cube::write::JOURNAL)? {
        Some(t) => t,
        None => return Ok(Start::Fresh { overwrite }),
    };
    let j: serde_json::Value = serde_json::from_slice(&text).unwrap_or_default();
    let refuse = |why: &str| GeoError::Io {
        path: out.display_path(),
        message: format!("{why}; run with --overwrite to start again"),
    };
    if j["kind"] != "build" {
        return Err(refuse(
            "an unfinished run of another cryocube command is there",
        ));
    }
    if j["fingerprint"] != fingerprint {
        return Err(refuse(
            "an unfinished build of another recipe, other options or other sources is there",
        ));
    }
    if j["ready"] != true {
        // Killed while laying out the arrays: nothing worth keeping.
        return Ok(Start::Fresh { overwrite: true });
    }
    let cells: CellCounts =
        serde_json::from_value(j["cells"].clone()).map_err(|e| GeoError::Io {
            path: out.display_path().join(cryocube_cube::write::JOURNAL),
            message: format!("unreadable journal: {e}"),
        })?;
    Ok(Start::Resume(cells))
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

/// Latitude/longitude bounds of the grid (its edges sampled), for ACDD `geospatial_*`.
fn lat_lon_bounds(grid: &TargetGrid) -> Option<[f64; 4]> {
    let src = SpatialRef::from_definition(&grid.crs).ok()?;
    let mut dst = SpatialRef::from_epsg(4326).ok()?;
    dst.set_axis_mapping_strategy(gdal::spatial_ref::AxisMappingStrategy::TraditionalGisOrder);
    let t = CoordTransform::new(&src, &dst).ok()?;
    let (w, n) = (grid.x_min, grid.y_max);
    let (e, s) = (
        w + grid.nx as f64 * grid.res_x,
        n - grid.ny as f64 * grid.res_y,
    );
    let k = 64;
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for i in 0..=k {
        let f = i as f64 / k as f64;
        for (x, y) in [
            (w + f * (e - w), n),
            (w + f * (e - w), s),
            (w, s + f * (n - s)),
            (e, s + f * (n - s)),
        ] {
            xs.push(x);
            ys.push(y);
        }
    }
    t.transform_coords(&mut xs, &mut ys, &mut []).ok()?;
    let fold = |v: &[f64], f: fn(f64, f64) -> f64, init: f64| v.iter().copied().fold(init, f);
    let mut b = [
        fold(&ys, f64::min, f64::INFINITY),
        fold(&ys, f64::max, f64::NEG_INFINITY),
        fold(&xs, f64::min, f64::INFINITY),
        fold(&xs, f64::max, f64::NEG_INFINITY),
    ];
    // The edges miss a pole inside the grid: then the grid spans it and every longitude.
    let back = CoordTransform::new(&dst, &src).ok()?;
    for pole in [-90.0, 90.0] {
        let (mut px, mut py) = ([0.0], [pole]);
        if back.transform_coords(&mut px, &mut py, &mut []).is_ok()
            && (w..=e).contains(&px[0])
            && (s..=n).contains(&py[0])
        {
            if pole < 0.0 {
                b[0] = -90.0;
            } else {
                b[1] = 90.0;
            }
            b[2] = -180.0;
            b[3] = 180.0;
        }
    }
    Some(b)
}

fn write_cube(
    recipe: &Recipe,
    opts: &BuildOptions,
    grid: &TargetGrid,
    layers: &[Layer],
    times: &[i64],
    warnings: &[String],
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<(), GeoError> {
    let out = &opts.output;
    let chunk = opts.chunk.max(1);
    let fingerprint = fingerprint(recipe, opts, grid, layers, times);
    let (mut w, resumed) = match resume_state(out, opts.overwrite, &fingerprint)? {
        Start::Resume(cells) => (CubeWriter::reopen(out)?, Some(cells)),
        Start::Fresh { overwrite } => {
            let mut w = CubeWriter::create(
                out,
                WriteOptions {
                    format: ZarrFormat::V2,
                    overwrite,
                },
            )?;
            // From here a killed build leaves a store its next run recognises.
            w.write_journal(&journal(&fingerprint, false, &Default::default()))?;
            create_arrays(&mut w, recipe, grid, layers, times, chunk)?;
            w.write_journal(&journal(&fingerprint, true, &Default::default()))?;
            (w, None)
        }
    };
    let gdal_crs = json!({"wkt": crs_attrs(&grid.crs, grid).map(|a| a["crs_wkt"].clone()).unwrap_or_default()});
    let nt = times.len() as u64;
    let finished_before: CellCounts = resumed.unwrap_or_default();
    if !finished_before.is_empty() {
        log::info!(
            "{}: resuming an interrupted build ({} chunk(s) of the grid already done)",
            out,
            finished_before.len()
        );
    }
    // Tasks per chunk of the grid: each static variable, and each time stamp at which a
    // time-stacked variable has a file (other time steps have no data: nothing is stored).
    let steps: Vec<(usize, Option<usize>)> = layers
        .iter()
        .enumerate()
        .flat_map(|(k, l)| {
            let ts: Vec<Option<usize>> = if l.timed {
                (0..times.len())
                    .filter(|&t| l.pieces.iter().any(|p| p.time == Some(times[t])))
                    .map(Some)
                    .collect()
            } else {
                vec![None]
            };
            ts.into_iter().map(move |t| (k, t))
        })
        .collect();
    let (cy, cx) = (grid.ny.div_ceil(chunk), grid.nx.div_ceil(chunk));
    let cells: Vec<(usize, usize)> = (0..cy).flat_map(|j| (0..cx).map(move |i| (j, i))).collect();
    let key = |j: usize, i: usize| format!("{j},{i}");
    let done = AtomicUsize::new(finished_before.len() * steps.len());
    let with_data: Vec<AtomicU64> = (0..layers.len())
        .map(|k| {
            AtomicU64::new(
                finished_before
                    .values()
                    .map(|c| c.get(k).copied().unwrap_or(0))
                    .sum(),
            )
        })
        .collect();
    let total = cells.len() * steps.len();
    progress(done.load(Ordering::Relaxed), total);
    let finished = std::sync::Mutex::new(finished_before.clone());
    cells
        .par_iter()
        .filter(|(j, i)| !finished_before.contains_key(&key(*j, *i)))
        .try_for_each(|&(j, i)| -> Result<(), GeoError> {
            let mut counts = vec![0u64; layers.len()];
            let rows = j * chunk..((j + 1) * chunk).min(grid.ny);
            let cols = i * chunk..((i + 1) * chunk).min(grid.nx);
            let (h, wdt) = (rows.len(), cols.len());
            let mut full = vec![f32::NAN; chunk * chunk];
            for &(k, t) in &steps {
                let l = &layers[k];
                let part = render(
                    &l.pieces_at(t.map(|t| times[t])),
                    grid,
                    cols.clone(),
                    rows.clone(),
                )?;
                let finite = part.iter().filter(|v| !v.is_nan()).count() as u64;
                counts[k] += finite;
                full.fill(f32::NAN);
                for r in 0..h {
                    full[r * chunk..r * chunk + wdt].copy_from_slice(&part[r * wdt..(r + 1) * wdt]);
                }
                let index: Vec<u64> = match t {
                    Some(t) => vec![t as u64, j as u64, i as u64],
                    None => vec![j as u64, i as u64],
                };
                w.write_chunk(&l.name, &index, &full)?;
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                progress(n, total);
            }
            for (k, c) in counts.iter().enumerate() {
                with_data[k].fetch_add(*c, Ordering::Relaxed);
            }
            // Recorded once all its chunks are stored: a resumed build redoes the rest.
            let mut f = finished.lock().unwrap_or_else(|e| e.into_inner());
            f.insert(key(j, i), counts);
            w.write_journal(&journal(&fingerprint, true, &f))?;
            Ok(())
        })?;
    // What share of the cube each variable covers, from the data written.
    let mut warnings = warnings.to_vec();
    let cells = (grid.nx * grid.ny) as f64;
    for (l, n) in layers.iter().zip(&with_data) {
        let n = n.load(Ordering::Relaxed);
        let mut a = l.attrs.clone();
        a.insert("_CRS".into(), gdal_crs.clone());
        let of = if l.timed { cells * nt as f64 } else { cells };
        a.insert("valid_fraction".into(), json!(n as f64 / of));
        w.set_attrs(&l.name, a)?;
        if n == 0 {
            let msg = format!(
                "{}: no cell of the grid has data (does the bbox lie outside its source?)",
                l.name
            );
            log::warn!("{msg}");
            warnings.push(msg);
        }
    }
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
        ("geospatial_bounds_crs", json!(grid.crs)),
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
        ("warnings", json!(warnings)),
    ]);
    if let (Some(t0), Some(t1)) = (times.first(), times.last()) {
        root.insert("time_coverage_start".into(), json!(format_utc_us(*t0)));
        root.insert("time_coverage_end".into(), json!(format_utc_us(*t1)));
    }
    if let Some([lat0, lat1, lon0, lon1]) = lat_lon_bounds(grid) {
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
    w.finish(root)?;
    Ok(())
}
