//! The multi-resolution pyramid the viewer reads, stored inside the cube under `.pyramid/`.
//!
//! Level k halves each dimension of the level before that is still longer than [`SMALLEST`]
//! cells (a cell is the mean of its block of level-0 cells, NaN ignored; all-NaN stays NaN),
//! until the longest side is at most [`SMALLEST`]. Short dimensions are never averaged: a face
//! across two epochs or a hundred frequencies stays the exact slice, and only long axes, where
//! a screen pixel covers several cells anyway, are blended. Each level is a cube of its own (`.pyramid/K`, Zarr v2, 64-cell chunks,
//! float32), written with the same writer as every cube (so it works on S3 as on disk and is
//! published last), and `.pyramid/pyramid.json` is written after all levels: it names the
//! levels and a fingerprint of the cube's metadata, so a pyramid that no longer matches its cube
//! (after an `--append`, say) is ignored rather than shown. Readers of the cube (xarray, GDAL)
//! never see it: it is outside the consolidated metadata, in a hidden folder.
//!
//! Built level from level, output chunk by output chunk, in parallel: memory is a few input
//! regions of 128^3 cells per worker, whatever the size of the cube.

use rayon::prelude::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use cryocube_cube::{
    ArraySpec, Attrs, CubeReader, CubeWriter, DType, Location, WriteOptions, ZarrFormat,
};

use crate::cube::{as_3d, stored};
use crate::ViewError;

/// Folder of the pyramid inside the cube.
pub const PYRAMID: &str = ".pyramid";
/// Manifest written last.
pub const MANIFEST: &str = ".pyramid/pyramid.json";
/// The coarsest level's longest side is at most this many cells.
pub const SMALLEST: u64 = 256;
/// Chunk side of the levels.
const CHUNK: u64 = 64;

/// A fingerprint of the cube's published metadata: changes whenever the cube does.
pub fn fingerprint(reader: &CubeReader) -> Result<String, ViewError> {
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
/// 2-D maps (shown one cell deep).
pub fn viewable(reader: &CubeReader) -> Vec<ArraySpec> {
    reader
        .arrays()
        .iter()
        .filter(|a| matches!(a.dims.len(), 2 | 3) && a.shape.iter().all(|&n| n > 0))
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

/// What [`build`] made.
#[derive(Debug)]
pub struct PyramidSummary {
    pub levels: usize,
    pub variables: usize,
}

/// Builds (or rebuilds) the pyramid of the cube at `location`. `progress(done, total)` counts
/// output chunks.
pub fn build(
    location: &Location,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<PyramidSummary, ViewError> {
    let cube = CubeReader::open(location)?;
    if !cube.is_complete() {
        return Err(ViewError::Cube(format!(
            "{location}: the cube is unfinished; finish it before building its pyramid"
        )));
    }
    let vars = viewable(&cube);
    if vars.is_empty() {
        return Err(ViewError::Cube(format!(
            "{location}: no variable with two or three dimensions: nothing to show, no pyramid"
        )));
    }
    let print = fingerprint(&cube)?;
    cube.store().delete_folder(PYRAMID)?;
    let depth = vars
        .iter()
        .map(|v| level_shapes(&v.shape).len())
        .max()
        .unwrap_or(0);
    let total: usize = (1..=depth)
        .map(|k| {
            vars.iter()
                .map(|v| {
                    let s = shape_at(&v.shape, k);
                    s.iter()
                        .map(|n| n.div_ceil(CHUNK) as usize)
                        .product::<usize>()
                })
                .sum::<usize>()
        })
        .sum();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let mut levels = Vec::new();
    for k in 1..=depth {
        let source = if k == 1 {
            CubeReader::open(location)?
        } else {
            CubeReader::open(level_location(location, k - 1))?
        };
        let target = level_location(location, k);
        let mut w = CubeWriter::create(
            &target,
            WriteOptions {
                format: ZarrFormat::V2,
                overwrite: true,
            },
        )?;
        let mut shapes = serde_json::Map::new();
        for v in &vars {
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
                chunks: shape.iter().map(|&n| n.min(CHUNK)).collect(),
                shard: None,
                dtype: DType::F32,
                attrs,
            })?;
            shapes.insert(v.name.clone(), json!(shape));
        }
        // Maps (2-D) take the same path as volumes, one cell deep.
        for v in &vars {
            let rank = v.dims.len();
            let shape = as_3d(&shape_at(&v.shape, k), 1);
            let from = source
                .array(&v.name)
                .map(|a| as_3d(&a.shape, 1))
                .ok_or_else(|| {
                    ViewError::Cube(format!("{}: missing in level {}", v.name, k - 1))
                })?;
            let g: Vec<u64> = shape.iter().map(|n| n.div_ceil(CHUNK)).collect();
            let (g1, g2) = (g[1], g[2]);
            let chunks: Vec<[u64; 3]> = (0..g[0])
                .flat_map(|a| (0..g1).flat_map(move |b| (0..g2).map(move |c| [a, b, c])))
                .collect();
            chunks
                .par_iter()
                .try_for_each(|idx| -> Result<(), ViewError> {
                    let cshape: Vec<u64> = shape.iter().map(|&n| n.min(CHUNK)).collect();
                    let data = downsample(&source, &v.name, rank, &from, &shape, idx, &cshape)?;
                    w.write_chunk(&v.name, stored(rank, idx), &data)?;
                    let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    progress(n, total);
                    Ok(())
                })?;
        }
        let mut root = Attrs::new();
        root.insert("cryocube_pyramid_level".into(), json!(k));
        w.finish(root)?;
        levels.push(json!({"level": k, "shapes": shapes}));
    }
    let manifest = json!({"fingerprint": print, "levels": levels});
    cube.store().put(
        MANIFEST,
        &serde_json::to_vec_pretty(&manifest).expect("JSON serialises"),
    )?;
    Ok(PyramidSummary {
        levels: depth,
        variables: vars.len(),
    })
}

/// Where level `k` of the cube at `location` lives.
pub fn level_location(location: &Location, k: usize) -> Location {
    location.join(&format!("{PYRAMID}/{k}"))
}

/// The shape at level `k` (a variable with fewer levels than the deepest keeps its last).
fn shape_at(shape: &[u64], k: usize) -> Vec<u64> {
    (0..k).fold(shape.to_vec(), |s, _| halve(&s))
}

/// One output chunk of the next level: the NaN-ignoring mean of each block of `source`, two
/// cells long along the dimensions this level halves (`to[d] < from[d]`), one along the others.
/// Shapes and `idx` as three dimensions; `rank` the stored array's.
fn downsample(
    source: &CubeReader,
    name: &str,
    rank: usize,
    from: &[u64],
    to: &[u64],
    idx: &[u64; 3],
    cshape: &[u64],
) -> Result<Vec<f32>, ViewError> {
    let f: Vec<usize> = (0..3)
        .map(|d| if to[d] < from[d] { 2 } else { 1 })
        .collect();
    let start: Vec<u64> = (0..3).map(|d| idx[d] * cshape[d] * f[d] as u64).collect();
    let count: Vec<u64> = (0..3)
        .map(|d| (cshape[d] * f[d] as u64).min(from[d].saturating_sub(start[d])))
        .collect();
    let mut out = vec![f32::NAN; cshape.iter().product::<u64>() as usize];
    if count.contains(&0) {
        return Ok(out);
    }
    let input = source.read_f64(name, stored(rank, &start), stored(rank, &count))?;
    let (n0, n1, n2) = (count[0] as usize, count[1] as usize, count[2] as usize);
    let (c1, c2) = (cshape[1] as usize, cshape[2] as usize);
    for a in 0..n0.div_ceil(f[0]) {
        for b in 0..n1.div_ceil(f[1]) {
            for c in 0..n2.div_ceil(f[2]) {
                let (mut sum, mut n) = (0.0f64, 0u32);
                for i in f[0] * a..(f[0] * (a + 1)).min(n0) {
                    for j in f[1] * b..(f[1] * (b + 1)).min(n1) {
                        for l in f[2] * c..(f[2] * (c + 1)).min(n2) {
                            let v = input[(i * n1 + j) * n2 + l];
                            if v.is_finite() {
                                sum += v;
                                n += 1;
                            }
                        }
                    }
                }
                if n > 0 {
                    out[(a * c1 + b) * c2 + c] = (sum / n as f64) as f32;
                }
            }
        }
    }
    Ok(out)
}

/// The levels of a pyramid that matches the cube, coarsest last; empty when there is none or
/// it is stale (then with a warning).
pub fn open_levels(location: &Location, cube: &CubeReader) -> Result<Vec<CubeReader>, ViewError> {
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
        .map(|k| CubeReader::open(level_location(location, k)).map_err(ViewError::from))
        .collect()
}
