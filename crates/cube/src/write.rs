//! Creating, filling and publishing a cube store.
//!
//! Order of writes is the safety property: array metadata and chunks first, then the root group
//! and the consolidated metadata (`.zgroup`, `.zattrs`, `.zmetadata` in v2; root `zarr.json`
//! in v3) last. Until [`CubeWriter::finish`] runs, the store has no root group, so xarray,
//! GDAL and `cryocube info` all see an unfinished cube instead of a truncated one that looks
//! complete. The job's plan inside the store ([`crate::job`]) lets a killed run resume. All bytes go
//! through a [`Store`], so the same holds for a folder and for an S3 prefix.
//!
//! Callers always write read chunks. For a sharded Zarr v3 array the writer encodes each
//! inner chunk as it arrives and writes the shard file once its last inner chunk is in: a
//! shard is written whole, never read back and patched, so concurrent workers can fill
//! different inner chunks of the same shard and memory holds only encoded bytes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use zarrs::array::codec::api::{ArrayToBytesCodecTraits, CodecOptions};
use zarrs::array::{Array, ArrayMetadata, ArrayMetadataV2, ArrayMetadataV3, Element};
use zarrs::storage::store::MemoryStore;

use crate::meta::{ArraySpec, ZarrFormat};
use crate::read::load_specs;
use crate::store::{json_bytes as to_bytes, LocalStore, Location, Store};
use crate::{Attrs, CubeError};

/// Hidden folder for data a job must keep until it finishes (e.g. the values an append is
/// about to rewrite), removed by [`CubeWriter::finish`].
pub const ASIDE: &str = ".cryocube-aside";

/// How a store is created.
#[derive(Clone, Copy, Debug, Default)]
pub struct WriteOptions {
    /// Zarr v2 or v3 (sharded or not).
    pub format: ZarrFormat,
    /// Replace an existing store (never a directory that is not a Zarr store).
    pub overwrite: bool,
}

/// A cube being written. Chunk writes take `&self`, so rayon workers can store chunks of
/// different arrays or of the same array concurrently.
pub struct CubeWriter {
    /// The store as messages name it.
    root: PathBuf,
    store: Arc<dyn Store>,
    /// zarrs handles only encode chunks and name keys; they never touch this empty store.
    codec_store: Arc<MemoryStore>,
    format: ZarrFormat,
    arrays: Vec<Stored>,
    /// Encoded inner chunks of shards not yet complete, by (array index, shard indices).
    pending: Mutex<HashMap<(usize, Vec<u64>), PendingShard>>,
}

/// A shard's inner chunks in C order: `None` not yet written, an empty Vec all fill value.
type PendingShard = Vec<Option<Vec<u8>>>;

/// One declared array: its description, its zarrs handle and, when sharded, a handle whose
/// chunk grid and codecs are those of the inner chunks (used only to encode them).
struct Stored {
    spec: ArraySpec,
    array: Array<MemoryStore>,
    inner: Option<Array<MemoryStore>>,
}

impl CubeWriter {
    /// Creates an empty store at `location`, refusing to clobber anything unless told to.
    pub fn create(location: impl Into<Location>, opts: WriteOptions) -> Result<Self, CubeError> {
        let location = location.into();
        let store = location.open()?;
        if location.exists()? {
            if !opts.overwrite {
                return Err(CubeError::OutputExists { path: store.path() });
            }
            remove_store(&location, store.as_ref())?;
        }
        if let Location::Local(root) = &location {
            std::fs::create_dir_all(root).map_err(|e| CubeError::io(root, e))?;
        }
        Ok(Self::with_store(store, opts.format))
    }

    /// Reopens an unfinished (or finished, for appending) store written by us, with its arrays.
    /// A finished store stays published until [`CubeWriter::unpublish`]: a job first stores
    /// its plan, so that a kill at any point leaves something it can resume.
    pub fn reopen(location: impl Into<Location>) -> Result<Self, CubeError> {
        let store = location.into().open()?;
        let found = load_specs(store.as_ref())?;
        let mut w = Self::with_store(store, found.format);
        for spec in found.arrays {
            let stored = w.stored(spec)?;
            w.arrays.push(stored);
        }
        Ok(w)
    }

    fn with_store(store: Arc<dyn Store>, format: ZarrFormat) -> Self {
        CubeWriter {
            root: store.path(),
            store,
            codec_store: Arc::new(MemoryStore::new()),
            format,
            arrays: Vec::new(),
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// The store it writes to.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The store as messages name it.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Removes the root group and consolidated metadata, so that while the arrays change the
    /// store reads as unfinished rather than as a cube whose metadata disagrees with its data.
    pub fn unpublish(&self) -> Result<(), CubeError> {
        for key in [".zmetadata", ".zgroup", ".zattrs", "zarr.json"] {
            self.store.delete(key)?;
        }
        Ok(())
    }

    /// Keeps `values` under `key` until the cube is finished (little-endian f32).
    pub fn put_aside(&self, key: &str, values: &[f32]) -> Result<(), CubeError> {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.store.put(&format!("{ASIDE}/{key}"), &bytes)
    }

    /// Values kept by [`CubeWriter::put_aside`], if any.
    pub fn get_aside(&self, key: &str) -> Result<Option<Vec<f32>>, CubeError> {
        Ok(self.store.get(&format!("{ASIDE}/{key}"))?.map(|bytes| {
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        }))
    }

    /// Its Zarr format.
    pub fn format(&self) -> ZarrFormat {
        self.format
    }

    /// The array `name` as declared, if there is one.
    pub fn spec(&self, name: &str) -> Option<&ArraySpec> {
        self.arrays
            .iter()
            .find(|s| s.spec.name == name)
            .map(|s| &s.spec)
    }

    /// Declares an array and writes its metadata (not yet published).
    pub fn add_array(&mut self, spec: ArraySpec) -> Result<(), CubeError> {
        if self.spec(&spec.name).is_some() {
            return Err(self.array_err(&spec.name, "declared twice".into()));
        }
        self.check_budget(&spec)?;
        self.write_array_metadata(&spec)?;
        let stored = self.stored(spec)?;
        self.arrays.push(stored);
        Ok(())
    }

    /// Refuses a layout whose chunk (or shard, which is assembled in memory) would not fit
    /// the memory budget, or whose chunk objects would be countless.
    fn check_budget(&self, spec: &ArraySpec) -> Result<(), CubeError> {
        crate::budget::check_layout(
            &crate::budget::Budget::from_env(),
            &self.root,
            &spec.name,
            &spec.shape,
            spec.shard.as_ref().unwrap_or(&spec.chunks),
            spec.dtype.size() as u64,
        )
    }

    /// Replaces an array's attributes (e.g. provenance known only at the end).
    pub fn set_attrs(&mut self, name: &str, attrs: Attrs) -> Result<(), CubeError> {
        let idx = self.index(name)?;
        self.arrays[idx].spec.attrs = attrs;
        let spec = self.arrays[idx].spec.clone();
        self.write_array_metadata(&spec)
    }

    /// Changes an array's shape (appending along a dimension). Existing chunks stay valid
    /// because the chunk grid is unchanged.
    pub fn resize(&mut self, name: &str, shape: Vec<u64>) -> Result<(), CubeError> {
        let idx = self.index(name)?;
        let mut spec = self.arrays[idx].spec.clone();
        if spec.dims.len() == 1 && spec.chunks == spec.shape {
            // Coordinates stay single-chunk.
            spec.chunks = vec![shape[0].max(1)];
        }
        spec.shape = shape;
        self.check_budget(&spec)?;
        self.write_array_metadata(&spec)?;
        self.arrays[idx] = self.stored(spec)?;
        Ok(())
    }

    /// Stores one read chunk (indices on the `chunks` grid, data in C order and of the full
    /// chunk shape). A chunk that is all fill value is not stored (and a stale one is erased),
    /// as Zarr readers return the fill. For a sharded array the chunk joins its shard, which
    /// is written when its last chunk arrives; every chunk of a shard that overlaps the array
    /// must be written for the shard to be stored.
    pub fn write_chunk<T: Element>(
        &self,
        name: &str,
        indices: &[u64],
        data: &[T],
    ) -> Result<(), CubeError> {
        let idx = self.index(name)?;
        let stored = &self.arrays[idx];
        let err = |e: String| self.array_err(name, format!("chunk {indices:?}: {e}"));
        match &stored.inner {
            None => {
                let encoded = encode_chunk(&stored.array, indices, data).map_err(err)?;
                self.store_encoded(&stored.array, indices, encoded)
                    .map_err(|e| err(e.to_string()))
            }
            Some(inner) => {
                let encoded = encode_chunk(inner, indices, data).map_err(err)?;
                self.add_to_shard(idx, indices, encoded)
            }
        }
    }

    /// Removes a stored chunk (indices on the `chunks` grid), so that it reads as fill value;
    /// for a sharded array, the whole shard holding it.
    pub fn erase_chunk(&self, name: &str, indices: &[u64]) -> Result<(), CubeError> {
        let idx = self.index(name)?;
        let stored = &self.arrays[idx];
        let target: Vec<u64> = match (&stored.inner, &stored.spec.shard) {
            (Some(_), Some(shard)) => indices
                .iter()
                .zip(shard.iter().zip(&stored.spec.chunks))
                .map(|(i, (s, c))| i / (s / c))
                .collect(),
            _ => indices.to_vec(),
        };
        self.store_encoded(&stored.array, &target, None)
    }

    /// Files an encoded inner chunk; writes the shard when it is complete.
    fn add_to_shard(
        &self,
        idx: usize,
        indices: &[u64],
        encoded: Option<Vec<u8>>,
    ) -> Result<(), CubeError> {
        let spec = &self.arrays[idx].spec;
        let shard = spec
            .shard
            .as_ref()
            .expect("sharded arrays have a shard shape");
        let per: Vec<u64> = shard.iter().zip(&spec.chunks).map(|(s, c)| s / c).collect();
        let shard_idx: Vec<u64> = indices.iter().zip(&per).map(|(i, p)| i / p).collect();
        let position = indices
            .iter()
            .zip(&per)
            .fold(0u64, |acc, (i, p)| acc * p + i % p) as usize;
        // Inner chunks past the array's end are never written; they stay "missing".
        let expected: u64 = (0..spec.shape.len())
            .map(|d| {
                let first = shard_idx[d] * per[d];
                let end = spec.shape[d].div_ceil(spec.chunks[d]);
                end.saturating_sub(first).min(per[d])
            })
            .product();
        let total: u64 = per.iter().product();
        let complete = {
            let mut pending = self
                .pending
                .lock()
                .expect("no writer panics holding the lock");
            let key = (idx, shard_idx.clone());
            let slots = pending
                .entry(key.clone())
                .or_insert_with(|| vec![None; total as usize]);
            slots[position] = encoded.or(Some(Vec::new()));
            let filled = slots.iter().filter(|s| s.is_some()).count() as u64;
            if filled == expected {
                pending.remove(&key)
            } else {
                None
            }
        };
        match complete {
            Some(chunks) => self.write_shard(idx, &shard_idx, chunks),
            None => Ok(()),
        }
    }

    /// Writes a shard: the inner chunks in order, then the index (offset, length per inner
    /// chunk, little-endian u64, `u64::MAX` twice for a chunk that is all fill) and its CRC32C.
    fn write_shard(
        &self,
        idx: usize,
        shard_idx: &[u64],
        chunks: Vec<Option<Vec<u8>>>,
    ) -> Result<(), CubeError> {
        let stored = &self.arrays[idx];
        let err =
            |e: String| self.array_err(&stored.spec.name, format!("shard {shard_idx:?}: {e}"));
        // An empty Vec marks a written chunk that was all fill.
        if chunks
            .iter()
            .all(|c| c.as_ref().is_none_or(|b| b.is_empty()))
        {
            return self
                .store_encoded(&stored.array, shard_idx, None)
                .map_err(|e| err(e.to_string()));
        }
        let body: usize = chunks.iter().flatten().map(Vec::len).sum();
        let mut bytes = Vec::with_capacity(body + chunks.len() * 16 + 4);
        let mut index = Vec::with_capacity(chunks.len() * 16);
        for chunk in &chunks {
            match chunk {
                Some(b) if !b.is_empty() => {
                    index.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
                    index.extend_from_slice(&(b.len() as u64).to_le_bytes());
                    bytes.extend_from_slice(b);
                }
                _ => {
                    index.extend_from_slice(&u64::MAX.to_le_bytes());
                    index.extend_from_slice(&u64::MAX.to_le_bytes());
                }
            }
        }
        let crc = crc32c::crc32c(&index);
        bytes.extend_from_slice(&index);
        bytes.extend_from_slice(&crc.to_le_bytes());
        // The bytes are a sharding_indexed shard as the array's metadata declares it: inner
        // chunks encoded by the inner codec chain, index at the end (bytes little + crc32c).
        self.store_encoded(&stored.array, shard_idx, Some(bytes))
            .map_err(|e| err(e.to_string()))
    }

    /// Stores an encoded chunk (or shard), or removes it when `None` (all fill value).
    fn store_encoded(
        &self,
        array: &Array<MemoryStore>,
        indices: &[u64],
        bytes: Option<Vec<u8>>,
    ) -> Result<(), CubeError> {
        let key = array.chunk_key(indices);
        let key = key.as_str().trim_start_matches('/');
        match bytes {
            Some(bytes) => self.store.put(key, &bytes),
            None => self.store.delete(key),
        }
    }

    /// Stores a whole single-chunk array (coordinates, scalars).
    pub fn write_all<T: Element>(&self, name: &str, data: &[T]) -> Result<(), CubeError> {
        let idx = self.index(name)?;
        let spec = &self.arrays[idx].spec;
        let n: u64 = spec.shape.iter().product();
        if data.len() as u64 != n {
            return Err(self.array_err(
                name,
                format!("{} values for shape {:?}", data.len(), spec.shape),
            ));
        }
        if n == 0 {
            return Ok(());
        }
        let zero = vec![0u64; spec.shape.len()];
        self.write_chunk(name, &zero, data)
    }

    /// Publishes the cube: root group with `root_attrs`, consolidated metadata. The caller
    /// removes the job's plan afterwards ([`crate::job::Job::remove`]).
    pub fn finish(mut self, root_attrs: Attrs) -> Result<PathBuf, CubeError> {
        let incomplete = self.pending.lock().map(|p| p.len()).unwrap_or(1);
        if incomplete > 0 {
            return Err(CubeError::Invalid {
                path: self.root.clone(),
                message: format!("{incomplete} shard(s) were never completed"),
            });
        }
        // Sorted, so the metadata is the same bytes whether the writer was created or reopened.
        self.arrays.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        self.store.delete_folder(ASIDE)?;
        match self.format {
            ZarrFormat::V2 => {
                let mut meta = Attrs::new();
                meta.insert(".zgroup".into(), json!({"zarr_format": 2}));
                meta.insert(".zattrs".into(), Value::Object(root_attrs.clone()));
                for Stored { spec, .. } in &self.arrays {
                    meta.insert(format!("{}/.zarray", spec.name), spec.zarray_v2());
                    meta.insert(format!("{}/.zattrs", spec.name), spec.zattrs_v2());
                }
                self.store
                    .put(".zgroup", &to_bytes(&json!({"zarr_format": 2})))?;
                self.store
                    .put(".zattrs", &to_bytes(&Value::Object(root_attrs)))?;
                // Written last: its presence is what makes the cube complete.
                self.store.put(
                    ".zmetadata",
                    &to_bytes(&json!({"metadata": meta, "zarr_consolidated_format": 1})),
                )?;
            }
            ZarrFormat::V3 { sharded } => {
                let mut meta = Attrs::new();
                for Stored { spec, .. } in &self.arrays {
                    meta.insert(spec.name.clone(), spec.zarr_json_v3(sharded));
                }
                let group = json!({
                    "zarr_format": 3,
                    "node_type": "group",
                    "attributes": root_attrs,
                    "consolidated_metadata": {"kind": "inline", "must_understand": false, "metadata": meta},
                });
                self.store.put("zarr.json", &to_bytes(&group))?;
            }
        }
        Ok(self.root)
    }

    fn index(&self, name: &str) -> Result<usize, CubeError> {
        self.arrays
            .iter()
            .position(|s| s.spec.name == name)
            .ok_or_else(|| self.array_err(name, "not declared".into()))
    }

    fn array_err(&self, name: &str, message: String) -> CubeError {
        CubeError::Array {
            path: self.root.clone(),
            array: name.to_string(),
            message,
        }
    }

    fn write_array_metadata(&self, spec: &ArraySpec) -> Result<(), CubeError> {
        let name = &spec.name;
        match self.format {
            ZarrFormat::V2 => {
                self.store
                    .put(&format!("{name}/.zarray"), &to_bytes(&spec.zarray_v2()))?;
                self.store
                    .put(&format!("{name}/.zattrs"), &to_bytes(&spec.zattrs_v2()))
            }
            ZarrFormat::V3 { sharded } => self.store.put(
                &format!("{name}/zarr.json"),
                &to_bytes(&spec.zarr_json_v3(sharded)),
            ),
        }
    }

    fn stored(&self, spec: ArraySpec) -> Result<Stored, CubeError> {
        let array = self.zarrs_array(&spec, self.format)?;
        let inner = match (self.format, &spec.shard) {
            (ZarrFormat::V3 { sharded: true }, Some(_)) => {
                Some(self.zarrs_array(&spec, ZarrFormat::V3 { sharded: false })?)
            }
            _ => None,
        };
        Ok(Stored { spec, array, inner })
    }

    fn zarrs_array(
        &self,
        spec: &ArraySpec,
        format: ZarrFormat,
    ) -> Result<Array<MemoryStore>, CubeError> {
        let err = |m: String| self.array_err(&spec.name, m);
        let metadata = match format {
            ZarrFormat::V2 => ArrayMetadata::V2(
                serde_json::from_value::<ArrayMetadataV2>(spec.zarray_v2())
                    .map_err(|e| err(e.to_string()))?,
            ),
            ZarrFormat::V3 { sharded } => ArrayMetadata::V3(
                serde_json::from_value::<ArrayMetadataV3>(spec.zarr_json_v3(sharded))
                    .map_err(|e| err(e.to_string()))?,
            ),
        };
        Array::new_with_metadata(
            self.codec_store.clone(),
            &format!("/{}", spec.name),
            metadata,
        )
        .map_err(|e| err(e.to_string()))
    }
}

/// Encodes one inner chunk with the inner codec chain; `None` when it is all fill value.
fn encode_chunk<T: Element>(
    inner: &Array<MemoryStore>,
    indices: &[u64],
    data: &[T],
) -> Result<Option<Vec<u8>>, String> {
    let shape = inner.chunk_shape(indices).map_err(|e| e.to_string())?;
    let bytes = T::to_array_bytes(inner.data_type(), data).map_err(|e| e.to_string())?;
    let n: u64 = shape.iter().map(|s| s.get()).product();
    if data.len() as u64 != n {
        return Err(format!("{} values for a chunk of {n}", data.len()));
    }
    if bytes.is_fill_value(inner.fill_value()) {
        return Ok(None);
    }
    let encoded = inner
        .codecs()
        .encode(
            bytes,
            &shape,
            inner.data_type(),
            inner.fill_value(),
            &CodecOptions::default(),
        )
        .map_err(|e| e.to_string())?;
    Ok(Some(encoded.into_owned()))
}

/// Removes an existing store for `--overwrite`, but never something that is not one (see
/// [`foreign_key`]). The metadata that makes the store readable goes first, so a kill during
/// the deletion leaves an unfinished store, never an old `.zmetadata` over half the chunks.
fn remove_store(location: &Location, store: &dyn Store) -> Result<(), CubeError> {
    if let Location::Local(root) = location {
        if !root.is_dir() {
            return Err(CubeError::NotAStore { path: root.into() });
        }
    }
    if let Some(stranger) = foreign_key(location, store)? {
        log::debug!(
            "{}: not a store because of {stranger}",
            store.path().display()
        );
        return Err(CubeError::NotAStore { path: store.path() });
    }
    for key in [".zmetadata", ".zgroup", "zarr.json"] {
        store.delete(key)?;
    }
    store.clear()
}

/// Top-level names that a store of ours holds besides its arrays.
fn ours_at_top(name: &str) -> bool {
    [
        ".zgroup",
        ".zattrs",
        ".zmetadata",
        "zarr.json",
        ASIDE,
        crate::job::JOB_DIR,
        crate::lock::LOCK_KEY,
        // The viewer's pyramid lives inside the cube it belongs to.
        ".pyramid",
    ]
    .contains(&name)
        || name.ends_with(".cryocube-tmp")
}

/// The first entry of `location` that is not part of a store of ours (`None`: every entry
/// is root metadata, ours, or an array folder with array metadata). A local folder is judged
/// by its top level only, so `-o / --overwrite` looks at one directory, not the disk.
///
/// A folder holding our lock file was a cube when its writer took the lock (the lock is only
/// ever created after this check passed), so its sub-folders count as array folders even
/// before their metadata lands: a second writer started at the same moment must see "held"
/// or "already exists", not a foreign folder.
pub fn foreign_key(location: &Location, store: &dyn Store) -> Result<Option<String>, CubeError> {
    if let Location::Local(root) = location {
        let entries = match std::fs::read_dir(root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(CubeError::io(root, e)),
        };
        let locked = root.join(crate::lock::LOCK_KEY).is_file();
        for e in entries {
            let e = e.map_err(|e| CubeError::io(root, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            let dir = e.file_type().is_ok_and(|t| t.is_dir());
            let array = dir
                && (locked || path.join(".zarray").is_file() || path.join("zarr.json").is_file());
            if !(ours_at_top(&name) || array) {
                return Ok(Some(name));
            }
        }
        return Ok(None);
    }
    let keys = store.list("")?;
    let arrays: std::collections::HashSet<&str> = keys
        .iter()
        .filter_map(|(k, _)| {
            k.strip_suffix("/.zarray")
                .or_else(|| k.strip_suffix("/zarr.json"))
                .filter(|a| !a.contains('/'))
        })
        .collect();
    Ok(keys
        .iter()
        .map(|(k, _)| k)
        .find(|k| {
            let first = k.split_once('/').map_or(k.as_str(), |(first, _)| first);
            !(ours_at_top(first) || k.contains('/') && arrays.contains(first))
        })
        .cloned())
}

/// Refuses an output place that cannot be meant as a cube: an empty path (an unset `$OUT`),
/// the file system's root, the current folder or one of its parents, the home folder, and an
/// existing folder holding anything that is not part of a store of ours. Checked before
/// anything (even a lock file) is written there.
pub fn check_output(location: &Location) -> Result<(), CubeError> {
    let Location::Local(path) = location else {
        return Ok(());
    };
    let refuse = |message: &str| {
        Err(CubeError::Invalid {
            path: path.clone(),
            message: message.into(),
        })
    };
    if path.as_os_str().is_empty() {
        return refuse("an empty output path (is a variable unset?); name the cube's folder");
    }
    let absolute = std::path::absolute(path).map_err(|e| CubeError::io(path, e))?;
    // `a/..` and `.` resolved by name, so that a folder that does not exist yet is judged too.
    let mut resolved = PathBuf::new();
    for c in absolute.components() {
        match c {
            std::path::Component::ParentDir => {
                resolved.pop();
            }
            std::path::Component::CurDir => {}
            c => resolved.push(c),
        }
    }
    let resolved = std::fs::canonicalize(&resolved).unwrap_or(resolved);
    if resolved.parent().is_none() {
        return refuse("the file system's root is not a cube; name a folder for it");
    }
    if let Ok(cwd) = std::env::current_dir().and_then(std::fs::canonicalize) {
        if cwd.starts_with(&resolved) {
            return refuse(
                "the current folder (or one above it) is not a cube; name a folder for it, e.g. -o cube.zarr",
            );
        }
    }
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
        if std::fs::canonicalize(&home).unwrap_or(home) == resolved {
            return refuse("the home folder is not a cube; name a folder for it");
        }
    }
    if path.exists() && !path.is_dir() {
        return refuse("exists and is not a folder");
    }
    if let Some(name) = foreign_key(location, &LocalStore::new(path.clone()))? {
        return Err(CubeError::Invalid {
            path: path.clone(),
            message: format!(
                "holds {name:?}, which is not part of a cube: refusing to write into a folder that is not a Zarr store"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::DType;
    use crate::CubeReader;

    fn sharded_writer(root: &Path) -> CubeWriter {
        let format = ZarrFormat::V3 { sharded: true };
        CubeWriter::create(
            root,
            WriteOptions {
                format,
                overwrite: false,
            },
        )
        .unwrap()
    }

    /// A 2-d array of 5 x 6 in chunks of 2 x 2 and shards of 2 x 6 (three inner chunks per
    /// shard, the last shard row half outside the array), one inner chunk all NaN: every value
    /// read back through zarrs must be what was written.
    #[test]
    fn sharded_arrays_are_assembled_from_inner_chunks() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("s.zarr");
        let mut w = sharded_writer(&root);
        let spec = ArraySpec {
            name: "v".into(),
            dims: vec!["y".into(), "x".into()],
            shape: vec![5, 6],
            chunks: vec![2, 2],
            shard: Some(vec![2, 6]),
            dtype: DType::F32,
            attrs: Attrs::new(),
        };
        w.add_array(spec).unwrap();
        let value = |y: u64, x: u64| (y * 10 + x) as f32;
        // Written in an order that interleaves shards, as parallel workers do.
        for cx in [2u64, 0, 1] {
            for cy in [2u64, 1, 0] {
                let mut chunk = vec![f32::NAN; 4];
                if (cy, cx) != (1, 1) {
                    for i in 0..2 {
                        for j in 0..2 {
                            chunk[(i * 2 + j) as usize] = value(cy * 2 + i, cx * 2 + j);
                        }
                    }
                }
                w.write_chunk("v", &[cy, cx], &chunk).unwrap();
            }
        }
        w.finish(Attrs::new()).unwrap();
        let r = CubeReader::open(&root).unwrap();
        let got = r.read_f64("v", &[0, 0], &[5, 6]).unwrap();
        for y in 0..5u64 {
            for x in 0..6u64 {
                let g = got[(y * 6 + x) as usize];
                if y / 2 == 1 && x / 2 == 1 {
                    assert!(g.is_nan(), "({y},{x}) = {g}");
                } else {
                    assert_eq!(g, value(y, x) as f64, "({y},{x})");
                }
            }
        }
        // Three shard files (one per row of shards), none left pending.
        let n = std::fs::read_dir(root.join("v/c"))
            .unwrap()
            .map(|d| std::fs::read_dir(d.unwrap().path()).unwrap().count())
            .sum::<usize>();
        assert_eq!(n, 3);
    }

    #[test]
    fn finishing_with_an_incomplete_shard_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("s.zarr");
        let mut w = sharded_writer(&root);
        w.add_array(ArraySpec {
            name: "v".into(),
            dims: vec!["x".into()],
            shape: vec![4],
            chunks: vec![2],
            shard: Some(vec![4]),
            dtype: DType::F32,
            attrs: Attrs::new(),
        })
        .unwrap();
        w.write_chunk("v", &[0], &[1f32, 2.0]).unwrap();
        assert!(w.finish(Attrs::new()).is_err());
        assert!(!CubeReader::open(&root).unwrap().is_complete());
    }

    /// A store whose `clear` dies midway (as `kill -9` during `--overwrite` would): after
    /// it, no metadata is left that would make a reader take the rest for a finished cube.
    #[derive(Debug)]
    struct DiesWhileClearing(LocalStore);

    impl Store for DiesWhileClearing {
        fn path(&self) -> PathBuf {
            self.0.path()
        }
        fn get_range(&self, k: &str, a: u64, b: Option<u64>) -> Result<Option<Vec<u8>>, CubeError> {
            self.0.get_range(k, a, b)
        }
        fn size(&self, k: &str) -> Result<Option<u64>, CubeError> {
            self.0.size(k)
        }
        fn put(&self, k: &str, b: &[u8]) -> Result<(), CubeError> {
            self.0.put(k, b)
        }
        fn delete(&self, k: &str) -> Result<(), CubeError> {
            self.0.delete(k)
        }
        fn list(&self, p: &str) -> Result<Vec<(String, u64)>, CubeError> {
            self.0.list(p)
        }
        fn children(&self) -> Result<Vec<String>, CubeError> {
            self.0.children()
        }
        fn is_empty(&self) -> Result<bool, CubeError> {
            self.0.is_empty()
        }
        fn delete_folder(&self, f: &str) -> Result<(), CubeError> {
            self.0.delete_folder(f)
        }
        fn clear(&self) -> Result<(), CubeError> {
            Err(CubeError::Invalid {
                path: self.path(),
                message: "killed".into(),
            })
        }
    }

    #[test]
    fn overwrite_unpublishes_before_it_deletes() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("c.zarr");
        let mut w = CubeWriter::create(&root, WriteOptions::default()).unwrap();
        w.add_array(ArraySpec::coordinate("x", "x", 4, DType::F64, Attrs::new()))
            .unwrap();
        w.write_all("x", &[1.0, 2.0, 3.0, 4.0]).unwrap();
        w.finish(Attrs::new()).unwrap();
        assert!(root.join(".zmetadata").exists() && root.join(".zgroup").exists());
        let store = DiesWhileClearing(LocalStore::new(root.clone()));
        let location = Location::from(&root);
        assert!(remove_store(&location, &store).is_err());
        assert!(!root.join(".zmetadata").exists() && !root.join(".zgroup").exists());
        assert!(
            root.join("x/.zarray").exists(),
            "the kill came before the arrays went"
        );
        let e = CubeReader::open(&root).map(|r| r.is_complete());
        assert!(!matches!(e, Ok(true)), "a reader sees no finished cube");
        // Something else in the folder: refused, and nothing deleted.
        std::fs::write(root.join("notes.txt"), "mine").unwrap();
        let e = remove_store(&location, &LocalStore::new(root.clone())).unwrap_err();
        assert!(matches!(e, CubeError::NotAStore { .. }), "{e}");
        assert!(root.join("x/.zarray").exists());
    }

    /// A writer that holds the lock may have made an array's folder before its metadata: a
    /// second writer starting then must not call the store foreign. Without our lock file the
    /// same bare folder is foreign.
    #[test]
    fn an_array_folder_being_written_under_our_lock_is_ours() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("c.zarr");
        std::fs::create_dir_all(root.join("distance")).unwrap();
        let location = Location::from(&root);
        let store = LocalStore::new(root.clone());
        assert_eq!(
            foreign_key(&location, &store).unwrap().as_deref(),
            Some("distance")
        );
        assert!(check_output(&location).is_err());
        std::fs::write(root.join(crate::lock::LOCK_KEY), "").unwrap();
        assert_eq!(foreign_key(&location, &store).unwrap(), None);
        check_output(&location).unwrap();
        std::fs::write(root.join("notes.txt"), "mine").unwrap();
        assert_eq!(
            foreign_key(&location, &store).unwrap().as_deref(),
            Some("notes.txt")
        );
    }

    /// CF-packed int16 (scale_factor, add_offset, _FillValue, the -inf code): the fill code
    /// is the store's fill value (in `.zarray` only, for v2, as xarray reads it), and reads
    /// unpack: values, NaN for the fill and for chunks never written, -inf for its code.
    #[test]
    fn packed_integers_unpack_on_read() {
        for format in [ZarrFormat::V2, ZarrFormat::V3 { sharded: false }] {
            let tmp = tempfile::tempdir().unwrap();
            let root = tmp.path().join("p.zarr");
            let mut w = CubeWriter::create(
                &root,
                WriteOptions {
                    format,
                    overwrite: false,
                },
            )
            .unwrap();
            let mut attrs = Attrs::new();
            attrs.insert("scale_factor".into(), json!(0.05));
            attrs.insert("add_offset".into(), json!(-100.0));
            attrs.insert("_FillValue".into(), json!(-32768));
            attrs.insert("cryocube_neg_inf_code".into(), json!(-32767));
            w.add_array(ArraySpec {
                name: "v".into(),
                dims: vec!["x".into()],
                shape: vec![8],
                chunks: vec![4],
                shard: None,
                dtype: DType::I16,
                attrs,
            })
            .unwrap();
            w.write_chunk("v", &[0], &[0i16, 20, -32768, -32767])
                .unwrap();
            let finished = w.finish(Attrs::new()).unwrap();
            if format == ZarrFormat::V2 {
                let zarray: Value =
                    serde_json::from_slice(&std::fs::read(finished.join("v/.zarray")).unwrap())
                        .unwrap();
                let zattrs: Value =
                    serde_json::from_slice(&std::fs::read(finished.join("v/.zattrs")).unwrap())
                        .unwrap();
                assert_eq!(zarray["fill_value"], json!(-32768));
                assert!(zattrs.get("_FillValue").is_none(), "{zattrs}");
            }
            let r = CubeReader::open(&root).unwrap();
            let v = r.read_all_f64("v").unwrap();
            // 0 -> -100, 20 -> -99, fill -> NaN, code -> -inf; chunk 1 never written -> NaN.
            assert_eq!((v[0], v[1]), (-100.0, -99.0), "{format:?}");
            assert!(v[2].is_nan() && v[3] == f64::NEG_INFINITY, "{v:?}");
            assert!(v[4..].iter().all(|x| x.is_nan()), "{v:?}");
            assert_eq!(r.array("v").unwrap().attrs["_FillValue"], json!(-32768));
        }
    }
}
