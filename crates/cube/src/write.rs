//! Creating, filling and publishing a cube store.
//!
//! Order of writes is the safety property: array metadata and chunks first, then the root group
//! and the consolidated metadata (`.zgroup`, `.zattrs`, `.zmetadata` in v2; root `zarr.json`
//! in v3) last. Until [`CubeWriter::finish`] runs, the store has no root group, so xarray,
//! GDAL and `cryocube info` all see an unfinished cube instead of a truncated one that looks
//! complete. A small journal file inside the store lets a killed run resume.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};
use zarrs::array::{Array, ArrayMetadata, ArrayMetadataV2, ArrayMetadataV3, Element};
use zarrs::filesystem::FilesystemStore;

use crate::meta::{ArraySpec, ZarrFormat};
use crate::read::load_specs;
use crate::{Attrs, CubeError};

/// Hidden file inside an unfinished store; readers ignore dot-files that are not Zarr keys.
pub const JOURNAL: &str = ".cryocube-journal.json";

/// How a store is created.
#[derive(Clone, Copy, Debug, Default)]
pub struct WriteOptions {
    pub format: ZarrFormat,
    /// Replace an existing store (never a directory that is not a Zarr store).
    pub overwrite: bool,
}

/// A cube being written. Chunk writes take `&self`, so rayon workers can store chunks of
/// different arrays or of the same array concurrently.
pub struct CubeWriter {
    root: PathBuf,
    store: Arc<FilesystemStore>,
    format: ZarrFormat,
    arrays: Vec<(ArraySpec, Array<FilesystemStore>)>,
}

impl CubeWriter {
    /// Creates an empty store at `root`, refusing to clobber anything unless told to.
    pub fn create(root: &Path, opts: WriteOptions) -> Result<Self, CubeError> {
        if root.exists() {
            if !opts.overwrite {
                return Err(CubeError::OutputExists { path: root.into() });
            }
            remove_store(root)?;
        }
        std::fs::create_dir_all(root).map_err(|e| CubeError::io(root, e))?;
        Self::open_store(root, opts.format)
    }

    /// Reopens an unfinished (or finished, for appending) store written by us, with its arrays.
    /// Publishing metadata is removed first so that, while we modify it, it is unfinished.
    pub fn reopen(root: &Path) -> Result<Self, CubeError> {
        let (format, specs, _) = load_specs(root)?;
        for key in [".zmetadata", ".zgroup", ".zattrs", "zarr.json"] {
            let p = root.join(key);
            if p.exists() {
                std::fs::remove_file(&p).map_err(|e| CubeError::io(&p, e))?;
            }
        }
        let mut w = Self::open_store(root, format)?;
        for spec in specs {
            let array = w.zarrs_array(&spec)?;
            w.arrays.push((spec, array));
        }
        Ok(w)
    }

    fn open_store(root: &Path, format: ZarrFormat) -> Result<Self, CubeError> {
        let store = FilesystemStore::new(root).map_err(|e| CubeError::Invalid {
            path: root.into(),
            message: e.to_string(),
        })?;
        Ok(CubeWriter {
            root: root.to_path_buf(),
            store: Arc::new(store),
            format,
            arrays: Vec::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    pub fn format(&self) -> ZarrFormat {
        self.format
    }

    pub fn spec(&self, name: &str) -> Option<&ArraySpec> {
        self.arrays
            .iter()
            .find(|(s, _)| s.name == name)
            .map(|(s, _)| s)
    }

    /// Declares an array and writes its metadata (not yet published).
    pub fn add_array(&mut self, spec: ArraySpec) -> Result<(), CubeError> {
        if self.spec(&spec.name).is_some() {
            return Err(self.array_err(&spec.name, "declared twice".into()));
        }
        self.write_array_metadata(&spec)?;
        let array = self.zarrs_array(&spec)?;
        self.arrays.push((spec, array));
        Ok(())
    }

    /// Replaces an array's attributes (e.g. provenance known only at the end).
    pub fn set_attrs(&mut self, name: &str, attrs: Attrs) -> Result<(), CubeError> {
        let idx = self.index(name)?;
        self.arrays[idx].0.attrs = attrs;
        let spec = self.arrays[idx].0.clone();
        self.write_array_metadata(&spec)
    }

    /// Changes an array's shape (appending along a dimension). Existing chunks stay valid
    /// because the chunk grid is unchanged.
    pub fn resize(&mut self, name: &str, shape: Vec<u64>) -> Result<(), CubeError> {
        let idx = self.index(name)?;
        let mut spec = self.arrays[idx].0.clone();
        if spec.dims.len() == 1 && spec.chunks == spec.shape {
            // Coordinates stay single-chunk.
            spec.chunks = vec![shape[0].max(1)];
        }
        spec.shape = shape;
        self.write_array_metadata(&spec)?;
        let array = self.zarrs_array(&spec)?;
        self.arrays[idx] = (spec, array);
        Ok(())
    }

    /// Stores one write unit (see [`ArraySpec::write_unit`]) in C order. A unit that is all
    /// fill value is not stored (and a stale one is erased), as Zarr readers return the fill.
    pub fn write_chunk<T: Element>(
        &self,
        name: &str,
        indices: &[u64],
        data: &[T],
    ) -> Result<(), CubeError> {
        let idx = self.index(name)?;
        self.arrays[idx]
            .1
            .store_chunk(indices, data)
            .map_err(|e| self.array_err(name, format!("chunk {indices:?}: {e}")))
    }

    /// Stores a whole single-chunk array (coordinates, scalars).
    pub fn write_all<T: Element>(&self, name: &str, data: &[T]) -> Result<(), CubeError> {
        let idx = self.index(name)?;
        let spec = &self.arrays[idx].0;
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

    /// Writes the resume journal (any JSON the caller needs to continue later).
    pub fn write_journal(&self, state: &Value) -> Result<(), CubeError> {
        put_atomic(&self.root.join(JOURNAL), &to_bytes(state))
    }

    /// Publishes the cube: root group with `root_attrs`, consolidated metadata, journal removed.
    pub fn finish(mut self, root_attrs: Attrs) -> Result<PathBuf, CubeError> {
        // Sorted, so the metadata is the same bytes whether the writer was created or reopened.
        self.arrays.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        let journal = self.root.join(JOURNAL);
        if journal.exists() {
            std::fs::remove_file(&journal).map_err(|e| CubeError::io(&journal, e))?;
        }
        match self.format {
            ZarrFormat::V2 => {
                let mut meta = Attrs::new();
                meta.insert(".zgroup".into(), json!({"zarr_format": 2}));
                meta.insert(".zattrs".into(), Value::Object(root_attrs.clone()));
                for (spec, _) in &self.arrays {
                    meta.insert(format!("{}/.zarray", spec.name), spec.zarray_v2());
                    meta.insert(format!("{}/.zattrs", spec.name), spec.zattrs_v2());
                }
                put_atomic(
                    &self.root.join(".zgroup"),
                    &to_bytes(&json!({"zarr_format": 2})),
                )?;
                put_atomic(
                    &self.root.join(".zattrs"),
                    &to_bytes(&Value::Object(root_attrs)),
                )?;
                // Written last: its presence is what makes the cube complete.
                put_atomic(
                    &self.root.join(".zmetadata"),
                    &to_bytes(&json!({"metadata": meta, "zarr_consolidated_format": 1})),
                )?;
            }
            ZarrFormat::V3 { sharded } => {
                let mut meta = Attrs::new();
                for (spec, _) in &self.arrays {
                    meta.insert(spec.name.clone(), spec.zarr_json_v3(sharded));
                }
                let group = json!({
                    "zarr_format": 3,
                    "node_type": "group",
                    "attributes": root_attrs,
                    "consolidated_metadata": {"kind": "inline", "must_understand": false, "metadata": meta},
                });
                put_atomic(&self.root.join("zarr.json"), &to_bytes(&group))?;
            }
        }
        Ok(self.root)
    }

    fn index(&self, name: &str) -> Result<usize, CubeError> {
        self.arrays
            .iter()
            .position(|(s, _)| s.name == name)
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
        let dir = self.root.join(&spec.name);
        std::fs::create_dir_all(&dir).map_err(|e| CubeError::io(&dir, e))?;
        match self.format {
            ZarrFormat::V2 => {
                put_atomic(&dir.join(".zarray"), &to_bytes(&spec.zarray_v2()))?;
                put_atomic(&dir.join(".zattrs"), &to_bytes(&spec.zattrs_v2()))
            }
            ZarrFormat::V3 { sharded } => put_atomic(
                &dir.join("zarr.json"),
                &to_bytes(&spec.zarr_json_v3(sharded)),
            ),
        }
    }

    fn zarrs_array(&self, spec: &ArraySpec) -> Result<Array<FilesystemStore>, CubeError> {
        let err = |m: String| self.array_err(&spec.name, m);
        let metadata = match self.format {
            ZarrFormat::V2 => ArrayMetadata::V2(
                serde_json::from_value::<ArrayMetadataV2>(spec.zarray_v2())
                    .map_err(|e| err(e.to_string()))?,
            ),
            ZarrFormat::V3 { sharded } => ArrayMetadata::V3(
                serde_json::from_value::<ArrayMetadataV3>(spec.zarr_json_v3(sharded))
                    .map_err(|e| err(e.to_string()))?,
            ),
        };
        Array::new_with_metadata(self.store.clone(), &format!("/{}", spec.name), metadata)
            .map_err(|e| err(e.to_string()))
    }
}

/// Removes an existing store for `--overwrite`, but never something that is not one.
fn remove_store(root: &Path) -> Result<(), CubeError> {
    if root.is_dir() {
        let looks_like_store = [".zgroup", ".zmetadata", "zarr.json", JOURNAL]
            .iter()
            .any(|k| root.join(k).exists())
            || std::fs::read_dir(root)
                .map_err(|e| CubeError::io(root, e))?
                .filter_map(|e| e.ok())
                .all(|e| e.path().join(".zarray").exists() || e.path().join("zarr.json").exists());
        if !looks_like_store {
            return Err(CubeError::NotAStore { path: root.into() });
        }
        std::fs::remove_dir_all(root).map_err(|e| CubeError::io(root, e))
    } else {
        Err(CubeError::NotAStore { path: root.into() })
    }
}

fn to_bytes(v: &Value) -> Vec<u8> {
    let mut b = serde_json::to_vec_pretty(v).expect("JSON values always serialise");
    b.push(b'\n');
    b
}

/// Writes a small file so that readers see either the old or the new content, never half.
pub(crate) fn put_atomic(path: &Path, bytes: &[u8]) -> Result<(), CubeError> {
    let tmp = path.with_extension("cryocube-tmp");
    std::fs::write(&tmp, bytes).map_err(|e| CubeError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| CubeError::io(path, e))
}
