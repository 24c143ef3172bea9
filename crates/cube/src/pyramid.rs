//! The multi-resolution pyramid `cryocube view` reads, stored inside the cube under `.pyramid/`.
//!
//! Level k halves each dimension of the level before that is still longer than [`SMALLEST`]
//! cells (a cell is the mean of its block of level-0 cells, NaN ignored; all-NaN stays NaN),
//! until the longest side is at most [`SMALLEST`]. Short dimensions are never averaged: a face
//! across two epochs or a hundred frequencies stays the exact slice, and only long axes, where
//! a screen pixel covers several cells anyway, are blended. Each level is a cube of its own
//! (`.pyramid/K`, Zarr v2, float32, chunks of about 1 MiB: 64³ for volumes, 512² for maps),
//! written with the same writer as every cube (so it works on S3 as on disk and is
//! published last), and `.pyramid/pyramid.json` is written after all levels: it names the
//! levels and a fingerprint of the cube's metadata, so a pyramid that no longer matches its cube
//! (after an `--append`, say) is ignored rather than shown. Readers of the cube (xarray, GDAL)
//! never see it: it is outside the consolidated metadata, in a hidden folder.
//!
//! A pyramid is a job like a cube ([`crate::job`]; its plan lives in `.pyramid/`, so the cube
//! stays published meanwhile): the units are the work of level 1, which reads the whole cube
//! and is most of the work (7/8 of the cells of all levels of a volume), so tasks on many
//! machines share it; the commit makes the coarser levels from level 1 (at most 1/8 of its
//! size per level) and writes the manifest. Each unit is a group of output chunks that reads
//! one chunk of the level before once: memory is one input region (at most 16 Mi cells) per
//! worker, whatever the size of the cube.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::cf::now_iso;
use crate::job::{Job, Plan};
use crate::lock::{LockMode, StoreLock};
use crate::{
    ArraySpec, Attrs, CubeError, CubeReader, CubeWriter, DType, Location, WriteOptions, ZarrFormat,
};

/// Folder of the pyramid inside the cube.
pub const PYRAMID: &str = ".pyramid";
/// Manifest written last.
pub const MANIFEST: &str = ".pyramid/pyramid.json";
/// The coarsest level's longest side is at most this many cells.
pub const SMALLEST: u64 = 256;
/// Job kind of a pyramid's plan (stored in `STORE/.pyramid`).
pub const KIND: &str = "pyramid";
/// Chunk side of the levels' volumes (64³ cells: 1 MiB).
const CHUNK: u64 = 64;
/// Chunk side of the levels' maps (512² cells: 1 MiB; 64² would make a full-size polar cube's
/// pyramid half a million 16 KiB files).
const MAP_CHUNK: u64 = 512;

/// The chunk side of a level's array of `rank` dimensions.
fn chunk_side(rank: usize) -> u64 {
    if rank == 2 {
        MAP_CHUNK
    } else {
        CHUNK
    }
}

/// A 2-D or 3-D shape (or index) as three entries, a map's first being `fill`.
pub fn as_3d(x: &[u64], fill: u64) -> [u64; 3] {
    match *x {
        [a, b, c] => [a, b, c],
        [b, c] => [fill, b, c],
        [c] => [fill, fill, c],
        _ => [fill, fill, fill],
    }
}

/// The stored array's part (its last `rank` entries) of a three-entry shape or index.
pub fn stored(rank: usize, x: &[u64]) -> &[u64] {
    &x[3 - rank..]
}

/// A fingerprint of the cube's published metadata: changes whenever the cube does.
pub fn fingerprint(reader: &CubeReader) -> Result<String, CubeError> {
    let store = reader.store();
    let key = if store.exists(".zmetadata")? {
        ".zmetadata"
    } else {
        "zarr.json"
    };
    let bytes = store.get(key)?.unwrap_or_default();
    Ok(format!("{:x}", Sha256::digest(&bytes)))
}

/// The variables the viewer shows and a pyramid covers: those with three dimensions, and the
/// 2-D maps (shown one cell deep); not the auxiliary arrays other variables name as their CF
/// `coordinates` (2-D lat/lon) or `bounds` (`time_bnds`).
pub fn viewable(reader: &CubeReader) -> Vec<ArraySpec> {
    let arrays = reader.arrays();
    let auxiliary: std::collections::HashSet<&str> = arrays
        .iter()
        .flat_map(|a| {
            ["coordinates", "bounds"]
                .into_iter()
                .filter_map(|k| a.attrs.get(k).and_then(Value::as_str))
                .flat_map(str::split_whitespace)
        })
        .collect();
    arrays
        .iter()
        .filter(|a| matches!(a.dims.len(), 2 | 3) && a.shape.iter().all(|&n| n > 0))
        .filter(|a| !auxiliary.contains(a.name.as_str()))
        .cloned()
        .collect()
}

/// The shape of the next level: dimensions longer than [`SMALLEST`] halved, the others kept.
fn halve(shape: &[u64]) -> Vec<u64> {
    shape
        .iter()
        .map(|&n| if n > SMALLEST { n.div_ceil(2) } else { n })
        .collect()
}

/// Shapes of levels 1.. for a level-0 shape.
pub fn level_shapes(shape: &[u64]) -> Vec<Vec<u64>> {
    let mut out = Vec::new();
    let mut s = shape.to_vec();
    while s.iter().copied().max().unwrap_or(0) > SMALLEST {
        s = halve(&s);
        out.push(s.clone());
    }
    out
}

/// What a pyramid job did.
#[derive(Debug)]
pub struct PyramidSummary {
    /// Levels stored (level 0, the cube itself, not counted).
    pub levels: usize,
    /// Variables the levels hold.
    pub variables: usize,
}

/// What a pyramid's stored plan holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct PyramidPayload {
    /// The cube's metadata fingerprint when planned (a task refuses a cube that changed).
    fingerprint: String,
    depth: usize,
    /// Per variable: name and its units of level 1 (the first unit's number is the sum of
    /// those before).
    variables: Vec<(String, u64)>,
}

fn invalid(location: &Location, message: String) -> CubeError {
    CubeError::Invalid {
        path: location.display_path(),
        message,
    }
}

/// Where the pyramid's plan lives: `STORE/.pyramid`.
pub fn job_location(location: &Location) -> Location {
    location.join(PYRAMID)
}

/// How level `k` of variable `v` is cut into units: output chunk shape, chunk grid, chunks
/// per unit, units per dimension; from the shapes of the level before (`from`, `source_chunks`).
struct Cutting {
    rank: usize,
    shape: [u64; 3],
    from: [u64; 3],
    halved: [u64; 3],
    cshape: [u64; 3],
    grid: [u64; 3],
    group: [u64; 3],
    units: [u64; 3],
}

impl Cutting {
    fn of(v: &ArraySpec, k: usize, source: &ArraySpec) -> Cutting {
        let rank = v.dims.len();
        let shape = as_3d(&shape_at(&v.shape, k), 1);
        let from = as_3d(&source.shape, 1);
        let halved = [0, 1, 2].map(|d| if shape[d] < from[d] { 2 } else { 1 });
        let cshape = shape.map(|n| n.min(chunk_side(rank)));
        let grid = [0, 1, 2].map(|d| shape[d].div_ceil(cshape[d]));
        let group = group_of(&cshape, &halved, &as_3d(&source.chunks, 1));
        let units = [0, 1, 2].map(|d| grid[d].div_ceil(group[d]));
        Cutting {
            rank,
            shape,
            from,
            halved,
            cshape,
            grid,
            group,
            units,
        }
    }

    fn count(&self) -> u64 {
        self.units.iter().product()
    }

    /// Output chunks of the level.
    fn chunks(&self) -> usize {
        self.grid.iter().product::<u64>() as usize
    }

    /// Computes unit `u` (C order over `units`) from `source` and writes its chunks.
    fn run(
        &self,
        u: u64,
        name: &str,
        source: &CubeReader,
        w: &CubeWriter,
        written: &(dyn Fn() + Sync),
    ) -> Result<(), CubeError> {
        let unit = [
            u / (self.units[1] * self.units[2]),
            (u / self.units[2]) % self.units[1],
            u % self.units[2],
        ];
        // The output chunks of this unit, and the region of the level they cover.
        let first = [0, 1, 2].map(|d| unit[d] * self.group[d]);
        let n = [0, 1, 2].map(|d| self.group[d].min(self.grid[d] - first[d]));
        let start = [0, 1, 2].map(|d| first[d] * self.cshape[d]);
        let count = [0, 1, 2].map(|d| (n[d] * self.cshape[d]).min(self.shape[d] - start[d]));
        let region = downsample(
            source,
            name,
            self.rank,
            &self.from,
            &self.halved,
            &start,
            &count,
        )?;
        for a in 0..n[0] {
            for b in 0..n[1] {
                for c in 0..n[2] {
                    let idx = [first[0] + a, first[1] + b, first[2] + c];
                    let data = cut(&region, &count, &[a, b, c], &self.cshape);
                    w.write_chunk(name, stored(self.rank, &idx), &data)?;
                    written();
                }
            }
        }
        Ok(())
    }
}

/// The cube at `location`, published, with something to show.
fn open_cube(location: &Location) -> Result<(CubeReader, Vec<ArraySpec>), CubeError> {
    let cube = CubeReader::open(location)?;
    if !cube.is_complete() {
        return Err(invalid(
            location,
            "the cube is unfinished; finish it before building its pyramid".into(),
        ));
    }
    let vars = viewable(&cube);
    if vars.is_empty() {
        return Err(invalid(
            location,
            "no variable with two or three dimensions: nothing to show, no pyramid".into(),
        ));
    }
    Ok((cube, vars))
}

/// The cube as its pyramid was planned for; a cube that changed since is refused.
fn open_planned_cube(
    location: &Location,
    payload: &PyramidPayload,
) -> Result<(CubeReader, Vec<ArraySpec>), CubeError> {
    let (cube, vars) = open_cube(location)?;
    if fingerprint(&cube)? != payload.fingerprint {
        return Err(invalid(
            location,
            "the cube changed since its pyramid was planned; plan it again (`cryocube pyramid`)"
                .into(),
        ));
    }
    Ok((cube, vars))
}

/// Declares level `k`'s arrays in a new store.
fn create_level(
    location: &Location,
    k: usize,
    vars: &[ArraySpec],
) -> Result<CubeWriter, CubeError> {
    let mut w = CubeWriter::create(
        level_location(location, k),
        WriteOptions {
            format: ZarrFormat::V2,
            overwrite: true,
        },
    )?;
    for v in vars {
        let shape = shape_at(&v.shape, k);
        let mut attrs = Attrs::new();
        attrs.insert("pyramid_level".into(), json!(k));
        attrs.insert(
            "long_name".into(),
            json!(format!(
                "{}, pyramid level {k}: means of {:?} cells of {:?} (NaN ignored)",
                v.name, shape, v.shape
            )),
        );
        w.add_array(ArraySpec {
            name: v.name.clone(),
            dims: v.dims.clone(),
            shape: shape.clone(),
            chunks: shape
                .iter()
                .map(|&n| n.min(chunk_side(v.dims.len())))
                .collect(),
            shard: None,
            dtype: DType::F32,
            attrs,
        })?;
    }
    Ok(w)
}

fn depth_of(vars: &[ArraySpec]) -> usize {
    vars.iter()
        .map(|v| level_shapes(&v.shape).len())
        .max()
        .unwrap_or(0)
}

/// Plans the pyramid of the cube at `location`: any earlier pyramid removed, level 1 laid out,
/// the plan stored in `STORE/.pyramid`. Returns the plan.
fn plan_at(location: &Location) -> Result<Job, CubeError> {
    let (cube, vars) = open_cube(location)?;
    cube.store().delete_folder(PYRAMID)?;
    let depth = depth_of(&vars);
    let mut variables = Vec::new();
    if depth > 0 {
        create_level(location, 1, &vars)?;
        for v in &vars {
            variables.push((v.name.clone(), Cutting::of(v, 1, v).count()));
        }
    }
    let payload = PyramidPayload {
        fingerprint: fingerprint(&cube)?,
        depth,
        variables,
    };
    let units = payload.variables.iter().map(|v| v.1).sum();
    Job::create(
        job_location(location).open()?,
        Plan {
            kind: KIND.into(),
            fingerprint: payload.fingerprint.clone(),
            units,
            unit_name: "level-1 chunk group".into(),
            created: now_iso(),
            planned_on: crate::job::this_process(),
            payload: serde_json::to_value(&payload)
                .map_err(|e| invalid(location, e.to_string()))?,
        },
    )
}

/// `cryocube pyramid STORE --plan-only`: stores the plan; returns its units.
pub fn plan_only(location: &Location, wait: bool) -> Result<Job, CubeError> {
    let _lock = StoreLock::acquire(location, LockMode::Exclusive, wait, "pyramid")?;
    plan_at(location)
}

/// The pyramid job planned for the cube at `location`, if any.
pub fn planned(location: &Location) -> Result<Option<Job>, CubeError> {
    Job::open(job_location(location).open()?)
}

/// Runs `units` of the plan (skipping those in `done`), recording each.
fn run_units(
    job: &Job,
    location: &Location,
    units: &[u64],
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<(), CubeError> {
    let payload: PyramidPayload = job.payload()?;
    let (cube, vars) = open_planned_cube(location, &payload)?;
    let done = job.done_units()?;
    let todo: Vec<u64> = units
        .iter()
        .copied()
        .filter(|u| done.binary_search(u).is_err())
        .collect();
    if todo.is_empty() {
        return Ok(());
    }
    let w = CubeWriter::reopen(level_location(location, 1))?;
    // Unit number -> (variable, its unit).
    let mut starts = Vec::new();
    let mut at = 0u64;
    for (name, n) in &payload.variables {
        starts.push((at, name.clone()));
        at += n;
    }
    let cuts: Vec<Cutting> = payload
        .variables
        .iter()
        .map(|(name, _)| {
            let v = vars.iter().find(|v| &v.name == name).ok_or_else(|| {
                invalid(location, format!("{name}: in the plan but not in the cube"))
            })?;
            Ok(Cutting::of(v, 1, v))
        })
        .collect::<Result<_, CubeError>>()?;
    let total: usize = cuts.iter().map(Cutting::chunks).sum();
    let written = std::sync::atomic::AtomicUsize::new(0);
    let tick = || {
        let n = written.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        progress(n + 1, total);
    };
    todo.par_iter().try_for_each(|&u| -> Result<(), CubeError> {
        let k = starts.iter().rposition(|(s, _)| *s <= u).unwrap_or(0);
        let (first, name) = &starts[k];
        cuts[k].run(u - first, name, &cube, &w, &tick)?;
        job.mark_done(u, &json!({}))
    })
}

/// Task `index` of `count` of the pyramid planned for the cube at `location`.
pub fn run_task(
    job: &Job,
    location: &Location,
    index: u64,
    count: u64,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<std::ops::Range<u64>, CubeError> {
    let task = job.start_task(index, count)?;
    let units: Vec<u64> = task.share.clone().collect();
    run_units(job, location, &units, progress)?;
    Ok(task.share)
}

/// Publishes level 1 once all its units are done, makes the coarser levels from it and
/// writes the manifest.
pub fn commit(
    job: Job,
    location: &Location,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<PyramidSummary, CubeError> {
    let payload: PyramidPayload = job.payload()?;
    job.records()?;
    let (cube, vars) = open_planned_cube(location, &payload)?;
    let mut levels = Vec::new();
    let shapes = |k: usize| -> serde_json::Map<String, Value> {
        vars.iter()
            .map(|v| (v.name.clone(), json!(shape_at(&v.shape, k))))
            .collect()
    };
    if payload.depth > 0 {
        let w = CubeWriter::reopen(level_location(location, 1))?;
        w.finish(level_root(1))?;
        levels.push(json!({"level": 1, "shapes": shapes(1)}));
    }
    let total: usize = (2..=payload.depth)
        .map(|k| {
            vars.iter()
                .map(|v| {
                    as_3d(&shape_at(&v.shape, k), 1)
                        .iter()
                        .map(|n| n.div_ceil(chunk_side(v.dims.len())) as usize)
                        .product::<usize>()
                })
                .sum::<usize>()
        })
        .sum();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let tick = || {
        progress(
            done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1,
            total,
        )
    };
    for k in 2..=payload.depth {
        let source = CubeReader::open(level_location(location, k - 1))?;
        let w = create_level(location, k, &vars)?;
        for v in &vars {
            let spec = source.array(&v.name).ok_or_else(|| {
                invalid(
                    location,
                    format!("{}: missing in pyramid level {}", v.name, k - 1),
                )
            })?;
            let cutting = Cutting::of(v, k, spec);
            (0..cutting.count())
                .into_par_iter()
                .try_for_each(|u| cutting.run(u, &v.name, &source, &w, &tick))?;
        }
        w.finish(level_root(k))?;
        levels.push(json!({"level": k, "shapes": shapes(k)}));
    }
    let manifest = json!({"fingerprint": payload.fingerprint, "levels": levels});
    cube.store().put(
        MANIFEST,
        &serde_json::to_vec_pretty(&manifest).expect("JSON serialises"),
    )?;
    job.remove()?;
    Ok(PyramidSummary {
        levels: payload.depth,
        variables: vars.len(),
    })
}

fn level_root(k: usize) -> Attrs {
    let mut root = Attrs::new();
    root.insert("cryocube_pyramid_level".into(), json!(k));
    root
}

/// Builds (or rebuilds) the pyramid of the cube at `location` in this process: plan, every
/// unit, commit. `progress(done, total)` counts output chunks of each phase.
pub fn build(
    location: &Location,
    wait: bool,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<PyramidSummary, CubeError> {
    let _lock = StoreLock::acquire(location, LockMode::Exclusive, wait, "pyramid")?;
    let job = plan_at(location)?;
    let all: Vec<u64> = (0..job.plan.units).collect();
    run_units(&job, location, &all, progress)?;
    commit(job, location, progress)
}

/// Where level `k` of the cube at `location` lives.
pub fn level_location(location: &Location, k: usize) -> Location {
    location.join(&format!("{PYRAMID}/{k}"))
}

/// The shape at level `k` (a variable with fewer levels than the deepest keeps its last).
fn shape_at(shape: &[u64], k: usize) -> Vec<u64> {
    (0..k).fold(shape.to_vec(), |s, _| halve(&s))
}

/// Output chunks per unit of work along each dimension: as many as one chunk of the level
/// before covers, so that each of its chunks is decoded once (a polar cube's 2048-cell chunks
/// would otherwise be decoded for every 64-cell output chunk), within [`UNIT_CELLS`] input
/// cells.
fn group_of(cshape: &[u64; 3], halved: &[u64; 3], source_chunks: &[u64; 3]) -> [u64; 3] {
    let mut g = [0, 1, 2].map(|d| (source_chunks[d] / (cshape[d] * halved[d])).max(1));
    let cells = |g: &[u64; 3]| {
        (0..3)
            .map(|d| g[d] * cshape[d] * halved[d])
            .product::<u64>()
    };
    while cells(&g) > UNIT_CELLS {
        let widest = (0..3).max_by_key(|&d| g[d]).expect("three dimensions");
        if g[widest] == 1 {
            break;
        }
        g[widest] = g[widest].div_ceil(2);
    }
    g
}

/// Input cells one unit of work reads at most (64 MiB as float32).
const UNIT_CELLS: u64 = 1 << 24;

/// The region `start`/`count` (three dimensions) of the next level: the NaN-ignoring mean of
/// each block of `source`, two cells long along the dimensions it halves (`halved[d] == 2`),
/// one along the others. `rank`: the stored array's.
fn downsample(
    source: &CubeReader,
    name: &str,
    rank: usize,
    from: &[u64; 3],
    halved: &[u64; 3],
    start: &[u64; 3],
    count: &[u64; 3],
) -> Result<Vec<f32>, CubeError> {
    let first = [0, 1, 2].map(|d| start[d] * halved[d]);
    let len = [0, 1, 2].map(|d| (count[d] * halved[d]).min(from[d] - first[d]));
    let input = source.read_f32(name, stored(rank, &first), stored(rank, &len))?;
    let f = halved.map(|h| h as usize);
    let [n0, n1, n2] = len.map(|n| n as usize);
    let [c0, c1, c2] = count.map(|n| n as usize);
    let mut out = vec![f32::NAN; c0 * c1 * c2];
    for a in 0..c0 {
        for b in 0..c1 {
            for c in 0..c2 {
                let (mut sum, mut n) = (0.0f64, 0u32);
                for i in f[0] * a..(f[0] * (a + 1)).min(n0) {
                    for j in f[1] * b..(f[1] * (b + 1)).min(n1) {
                        for l in f[2] * c..(f[2] * (c + 1)).min(n2) {
                            let v = input[(i * n1 + j) * n2 + l];
                            if v.is_finite() {
                                sum += f64::from(v);
                                n += 1;
                            }
                        }
                    }
                }
                if n > 0 {
                    out[(a * c1 + b) * c2 + c] = (sum / f64::from(n)) as f32;
                }
            }
        }
    }
    Ok(out)
}

/// Chunk `at` (in chunks of `cshape` from the region's origin) of a region of `count` cells,
/// NaN beyond the region's end, as the writer wants whole chunks.
fn cut(region: &[f32], count: &[u64; 3], at: &[u64; 3], cshape: &[u64; 3]) -> Vec<f32> {
    let [r1, r2] = [count[1] as usize, count[2] as usize];
    let [s0, s1, s2] = cshape.map(|n| n as usize);
    let o = [0, 1, 2].map(|d| (at[d] * cshape[d]) as usize);
    let mut out = vec![f32::NAN; s0 * s1 * s2];
    for a in 0..s0.min(count[0] as usize - o[0]) {
        for b in 0..s1.min(r1 - o[1]) {
            let row = ((o[0] + a) * r1 + o[1] + b) * r2 + o[2];
            let n = s2.min(r2 - o[2]);
            out[(a * s1 + b) * s2..(a * s1 + b) * s2 + n].copy_from_slice(&region[row..row + n]);
        }
    }
    out
}

/// The levels of a pyramid that matches the cube, coarsest last; empty when there is none or
/// it is stale (then with a warning).
pub fn open_levels(location: &Location, cube: &CubeReader) -> Result<Vec<CubeReader>, CubeError> {
    let Some(bytes) = cube.store().get(MANIFEST)? else {
        return Ok(Vec::new());
    };
    let manifest: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    if manifest["fingerprint"] != fingerprint(cube)? {
        log::warn!(
            "{location}: its pyramid was made for an earlier state of the cube and is ignored; run `cryocube pyramid {location}` again"
        );
        return Ok(Vec::new());
    }
    let n = manifest["levels"].as_array().map_or(0, Vec::len);
    (1..=n)
        .map(|k| CubeReader::open(level_location(location, k)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unit_of_work_reads_each_source_chunk_once_within_its_budget() {
        // A polar map in 2048-cell chunks: one unit reads one source chunk (16 x 16 outputs).
        assert_eq!(
            group_of(&[1, 64, 64], &[1, 2, 2], &[1, 2048, 2048]),
            [1, 16, 16]
        );
        // Source chunks no larger than the input of one output chunk: one output chunk.
        assert_eq!(
            group_of(&[64, 64, 64], &[2, 2, 2], &[64, 64, 64]),
            [1, 1, 1]
        );
        // Huge source chunks: the unit shrinks to the budget.
        let g = group_of(&[64, 64, 64], &[2, 2, 2], &[2048, 2048, 2048]);
        let cells: u64 = (0..3).map(|d| g[d] * 128).product();
        assert!(cells <= UNIT_CELLS && g.iter().all(|&n| n >= 1), "{g:?}");
    }

    #[test]
    fn cut_takes_a_chunk_of_a_region_padding_with_nan() {
        // A 1 x 3 x 5 region, chunks of 1 x 2 x 2: chunk (0, 1, 2) holds the last cell.
        let region: Vec<f32> = (0..15).map(|i| i as f32).collect();
        let c = cut(&region, &[1, 3, 5], &[0, 1, 2], &[1, 2, 2]);
        assert_eq!(c[0], 14.0);
        assert!(c[1..].iter().all(|v| v.is_nan()), "{c:?}");
        assert_eq!(
            cut(&region, &[1, 3, 5], &[0, 0, 1], &[1, 2, 2]),
            [2.0, 3.0, 7.0, 8.0]
        );
    }
}
