//! Opening a cube: its arrays, attributes and values.
//!
//! Used by `cryocube info`, by `--append`/resume (which must continue exactly what is there)
//! and by tests. It reads what we write and what xarray writes (Zarr v2 with or without
//! `.zmetadata`, Zarr v3 with or without consolidated metadata).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use std::collections::HashMap;

use zarrs::array::{Array, ArrayMetadata, ArrayMetadataV2, ArrayMetadataV3, ArraySubset};

use crate::budget::{check_layout, elements, Budget};
use crate::meta::{ArraySpec, DType, ZarrFormat};
use crate::store::{read_json, Location, Store, ZarrsView};
use crate::{Attrs, CubeError};

/// A cube opened for reading.
pub struct CubeReader {
    location: Location,
    /// The store as messages name it.
    root: PathBuf,
    format: ZarrFormat,
    arrays: Vec<ArraySpec>,
    root_attrs: Attrs,
    complete: bool,
    store: Arc<dyn Store>,
    view: Arc<ZarrsView>,
    /// Each array's metadata document as read (so values are read without asking again).
    docs: HashMap<String, ArrayMetadata>,
    budget: Budget,
}

impl CubeReader {
    /// Opens a store; an unfinished one (no root group yet) opens too, with
    /// [`CubeReader::is_complete`] false, so tools can say so instead of failing obscurely.
    pub fn open(location: impl Into<Location>) -> Result<Self, CubeError> {
        let location = location.into();
        let store = location.open()?;
        let Specs {
            format,
            arrays,
            attrs: root_attrs,
            published,
            docs,
        } = load_specs(store.as_ref())?;
        // A published root with a plan beside it: a commit that has not removed it yet.
        let complete = published && !store.exists(crate::job::PLAN_KEY)?;
        Ok(CubeReader {
            location,
            root: store.path(),
            format,
            arrays,
            root_attrs,
            complete,
            view: Arc::new(ZarrsView(store.clone())),
            store,
            docs,
            budget: Budget::from_env(),
        })
    }

    /// Where the cube is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Its store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The store as messages name it.
    pub fn path(&self) -> &Path {
        &self.root
    }
    /// Its Zarr format.
    pub fn format(&self) -> ZarrFormat {
        self.format
    }
    /// Whether it is published (its root metadata written and no plan left beside it).
    pub fn is_complete(&self) -> bool {
        self.complete
    }
    /// Its arrays, coordinates included.
    pub fn arrays(&self) -> &[ArraySpec] {
        &self.arrays
    }
    /// Its root attributes.
    pub fn attrs(&self) -> &Attrs {
        &self.root_attrs
    }
    /// The array `name`, if there is one.
    pub fn array(&self, name: &str) -> Option<&ArraySpec> {
        self.arrays.iter().find(|a| a.name == name)
    }

    fn zarrs_array(&self, name: &str) -> Result<Array<ZarrsView>, CubeError> {
        let path = format!("/{name}");
        match self.docs.get(name) {
            Some(meta) => Array::new_with_metadata(self.view.clone(), &path, meta.clone()),
            None => Array::open(self.view.clone(), &path),
        }
        .map_err(|e| CubeError::Array {
            path: self.root.clone(),
            array: name.into(),
            message: e.to_string(),
        })
    }

    /// Reads a hyperslab (`start`, `shape` per dimension) converted to f64; missing chunks give
    /// the fill value. Packed integers (CF `scale_factor` / `add_offset`) are unpacked: the
    /// `_FillValue` code is NaN and the code `cryocube_neg_inf_code` names is `-inf`.
    pub fn read_f64(
        &self,
        name: &str,
        start: &[u64],
        shape: &[u64],
    ) -> Result<Vec<f64>, CubeError> {
        let mut values = self.read_codes_f64(name, start, shape)?;
        if let Some(spec) = self.array(name) {
            if let Some(unpacking) = crate::pack::Unpacking::of(spec) {
                values.iter_mut().for_each(|v| *v = unpacking.value(*v));
            }
        }
        Ok(values)
    }

    /// [`CubeReader::read_f64`] without unpacking: the stored numbers.
    fn read_codes_f64(
        &self,
        name: &str,
        start: &[u64],
        shape: &[u64],
    ) -> Result<Vec<f64>, CubeError> {
        let spec = self
            .array(name)
            .ok_or_else(|| invalid(&self.root, format!("no array `{name}`")))?;
        self.check_read(name, shape, 8)?;
        let array = self.zarrs_array(name)?;
        let subset = ArraySubset::new_with_start_shape(start.to_vec(), shape.to_vec())
            .map_err(|e| invalid(&self.root, e.to_string()))?;
        let err = |source: zarrs::array::ArrayError| CubeError::Codec {
            path: self.root.clone(),
            array: name.into(),
            source: Box::new(source),
        };
        Ok(match spec.dtype {
            DType::F16 => array
                .retrieve_array_subset::<Vec<half::f16>>(&subset)
                .map_err(err)?
                .into_iter()
                .map(f64::from)
                .collect(),
            DType::F32 => array
                .retrieve_array_subset::<Vec<f32>>(&subset)
                .map_err(err)?
                .into_iter()
                .map(f64::from)
                .collect(),
            DType::F64 => array
                .retrieve_array_subset::<Vec<f64>>(&subset)
                .map_err(err)?,
            DType::I32 => array
                .retrieve_array_subset::<Vec<i32>>(&subset)
                .map_err(err)?
                .into_iter()
                .map(f64::from)
                .collect(),
            DType::I64 => array
                .retrieve_array_subset::<Vec<i64>>(&subset)
                .map_err(err)?
                .into_iter()
                .map(|v| v as f64)
                .collect(),
            DType::U8 => array
                .retrieve_array_subset::<Vec<u8>>(&subset)
                .map_err(err)?
                .into_iter()
                .map(f64::from)
                .collect(),
            DType::I8 => array
                .retrieve_array_subset::<Vec<i8>>(&subset)
                .map_err(err)?
                .into_iter()
                .map(f64::from)
                .collect(),
            DType::I16 => array
                .retrieve_array_subset::<Vec<i16>>(&subset)
                .map_err(err)?
                .into_iter()
                .map(f64::from)
                .collect(),
            DType::U16 => array
                .retrieve_array_subset::<Vec<u16>>(&subset)
                .map_err(err)?
                .into_iter()
                .map(f64::from)
                .collect(),
            DType::U32 => array
                .retrieve_array_subset::<Vec<u32>>(&subset)
                .map_err(err)?
                .into_iter()
                .map(f64::from)
                .collect(),
        })
    }

    /// Reads a hyperslab as f32: float32 arrays without the f64 detour (half the memory),
    /// others converted.
    pub fn read_f32(
        &self,
        name: &str,
        start: &[u64],
        shape: &[u64],
    ) -> Result<Vec<f32>, CubeError> {
        let spec = self
            .array(name)
            .ok_or_else(|| invalid(&self.root, format!("no array `{name}`")))?;
        self.check_read(name, shape, 4)?;
        if spec.dtype != DType::F32 {
            let v = self.read_f64(name, start, shape)?;
            return Ok(v.into_iter().map(|x| x as f32).collect());
        }
        let subset = ArraySubset::new_with_start_shape(start.to_vec(), shape.to_vec())
            .map_err(|e| invalid(&self.root, e.to_string()))?;
        self.zarrs_array(name)?
            .retrieve_array_subset::<Vec<f32>>(&subset)
            .map_err(|source| CubeError::Codec {
                path: self.root.clone(),
                array: name.into(),
                source: Box::new(source),
            })
    }

    /// Reads a whole array as f64 (coordinates).
    pub fn read_all_f64(&self, name: &str) -> Result<Vec<f64>, CubeError> {
        let spec = self
            .array(name)
            .ok_or_else(|| invalid(&self.root, format!("no array `{name}`")))?;
        let start = vec![0; spec.shape.len()];
        let shape = spec.shape.clone();
        self.read_f64(name, &start, &shape)
    }

    /// Reads a whole int64 array exactly (time coordinates do not survive f64 at µs).
    pub fn read_all_i64(&self, name: &str) -> Result<Vec<i64>, CubeError> {
        let spec = self
            .array(name)
            .ok_or_else(|| invalid(&self.root, format!("no array `{name}`")))?;
        self.check_read(name, &spec.shape, 8)?;
        let array = self.zarrs_array(name)?;
        let subset = ArraySubset::new_with_shape(spec.shape.clone());
        array
            .retrieve_array_subset::<Vec<i64>>(&subset)
            .map_err(|source| CubeError::Codec {
                path: self.root.clone(),
                array: name.into(),
                source: Box::new(source),
            })
    }

    /// Refuses a read whose result would not fit the memory budget (a coordinate whose
    /// metadata claims 10^12 values is refused, not allocated).
    fn check_read(&self, name: &str, shape: &[u64], element_bytes: u128) -> Result<(), CubeError> {
        let bytes = elements(shape)
            .and_then(|n| n.checked_mul(element_bytes))
            .unwrap_or(u128::MAX);
        self.budget.check_memory(
            &self.root,
            &format!("reading {shape:?} values of array `{name}`"),
            "the size its metadata gives",
            bytes,
        )
    }

    /// Bytes the store occupies (the sum of its keys' sizes).
    pub fn size_on_disk(&self) -> Result<u64, CubeError> {
        Ok(self.store.list("")?.iter().map(|(_, n)| n).sum())
    }
}

fn invalid(root: &Path, message: String) -> CubeError {
    CubeError::Invalid {
        path: root.into(),
        message,
    }
}

fn u64s(v: &Value) -> Vec<u64> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

fn spec_from_v2(
    name: &str,
    zarray: &Value,
    zattrs: Option<&Value>,
    root: &Path,
) -> Result<ArraySpec, CubeError> {
    let dtype_name = zarray["dtype"].as_str().unwrap_or("?");
    let dtype = DType::parse(dtype_name).ok_or_else(|| {
        invalid(
            root,
            format!("array `{name}`: unsupported dtype {dtype_name}"),
        )
    })?;
    let mut attrs = zattrs
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    // An integer fill value is the packed data's `_FillValue`, as xarray reads it.
    if let Some(code) = zarray["fill_value"].as_i64().filter(|_| !dtype.is_float()) {
        attrs.entry("_FillValue").or_insert(Value::from(code));
    }
    let dims = attrs
        .shift_remove("_ARRAY_DIMENSIONS")
        .and_then(|d| d.as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|d| d.as_str().map(String::from))
        .collect();
    Ok(ArraySpec {
        name: name.into(),
        dims,
        shape: u64s(&zarray["shape"]),
        chunks: u64s(&zarray["chunks"]),
        shard: None,
        dtype,
        attrs,
    })
}

fn spec_from_v3(name: &str, meta: &Value, root: &Path) -> Result<ArraySpec, CubeError> {
    let dtype_name = meta["data_type"].as_str().unwrap_or("?");
    let dtype = DType::parse(dtype_name).ok_or_else(|| {
        invalid(
            root,
            format!("array `{name}`: unsupported data type {dtype_name}"),
        )
    })?;
    let grid = u64s(&meta["chunk_grid"]["configuration"]["chunk_shape"]);
    let sharding = meta["codecs"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "sharding_indexed"));
    let (chunks, shard) = match sharding {
        Some(s) => (u64s(&s["configuration"]["chunk_shape"]), Some(grid)),
        None => (grid, None),
    };
    Ok(ArraySpec {
        name: name.into(),
        dims: meta["dimension_names"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| d.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
        shape: u64s(&meta["shape"]),
        chunks,
        shard,
        dtype,
        attrs: meta["attributes"].as_object().cloned().unwrap_or_default(),
    })
}

/// What a store holds: its format, arrays and root attributes, and whether its root group is
/// published (then the metadata came from the consolidated document).
pub(crate) struct Specs {
    pub format: ZarrFormat,
    pub arrays: Vec<ArraySpec>,
    pub attrs: Attrs,
    pub published: bool,
    pub docs: HashMap<String, ArrayMetadata>,
}

/// Keeps an array's metadata document for reading its values later.
fn keep_v2(docs: &mut HashMap<String, ArrayMetadata>, name: &str, zarray: &Value) {
    if let Ok(m) = serde_json::from_value::<ArrayMetadataV2>(zarray.clone()) {
        docs.insert(name.to_string(), ArrayMetadata::V2(m));
    }
}

fn keep_v3(docs: &mut HashMap<String, ArrayMetadata>, name: &str, meta: &Value) {
    if let Ok(m) = serde_json::from_value::<ArrayMetadataV3>(meta.clone()) {
        docs.insert(name.to_string(), ArrayMetadata::V3(m));
    }
}

/// Finds the format, the arrays and the root attributes of a store, preferring consolidated
/// metadata (one request, whatever the size of the cube: a store is never listed to open it)
/// and falling back to the per-array documents (unfinished stores have only those).
/// Reads a store's metadata and validates every array's layout before any size from it is
/// used: a store is input like any other (see [`crate::budget`]).
pub(crate) fn load_specs(store: &dyn Store) -> Result<Specs, CubeError> {
    let specs = load_specs_unchecked(store)?;
    let budget = Budget::from_env();
    let root = store.path();
    for a in &specs.arrays {
        if !a.dims.is_empty() && a.dims.len() != a.shape.len() {
            return Err(CubeError::Array {
                path: root.clone(),
                array: a.name.clone(),
                message: format!(
                    "metadata gives {} dimension name(s) for a shape of rank {}",
                    a.dims.len(),
                    a.shape.len()
                ),
            });
        }
        let chunk = a.shard.as_ref().unwrap_or(&a.chunks);
        check_layout(
            &budget,
            &root,
            &a.name,
            &a.shape,
            chunk,
            a.dtype.size() as u64,
        )
        .map_err(|e| match e {
            CubeError::Array {
                path,
                array,
                message,
            } => CubeError::Array {
                path,
                array,
                message: format!("invalid metadata: {message}"),
            },
            CubeError::Budget { path, message } => CubeError::Budget {
                path,
                message: format!("metadata: {message}"),
            },
            e => e,
        })?;
    }
    Ok(specs)
}

fn load_specs_unchecked(store: &dyn Store) -> Result<Specs, CubeError> {
    let root = &store.path();
    if let Some(zmeta) = read_json(store, ".zmetadata")? {
        let meta = zmeta["metadata"].as_object().cloned().unwrap_or_default();
        let mut arrays = Vec::new();
        let mut docs = HashMap::new();
        for (key, zarray) in &meta {
            if let Some(name) = key.strip_suffix("/.zarray") {
                keep_v2(&mut docs, name, zarray);
                arrays.push(spec_from_v2(
                    name,
                    zarray,
                    meta.get(&format!("{name}/.zattrs")),
                    root,
                )?);
            }
        }
        let attrs = meta
            .get(".zattrs")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        return Ok(Specs {
            format: ZarrFormat::V2,
            arrays,
            attrs,
            published: true,
            docs,
        });
    }
    let group_v3 = read_json(store, "zarr.json")?;
    let attrs_v3 = || {
        group_v3
            .as_ref()
            .and_then(|g| g["attributes"].as_object().cloned())
            .unwrap_or_default()
    };
    if let Some(consolidated) = group_v3
        .as_ref()
        .and_then(|g| g["consolidated_metadata"]["metadata"].as_object())
    {
        let mut arrays = Vec::new();
        let mut docs = HashMap::new();
        let mut sharded = false;
        for (name, meta) in consolidated {
            if meta["node_type"] == "array" && !name.contains('/') {
                keep_v3(&mut docs, name, meta);
                let spec = spec_from_v3(name, meta, root)?;
                sharded |= spec.shard.is_some();
                arrays.push(spec);
            }
        }
        return Ok(Specs {
            format: ZarrFormat::V3 { sharded },
            arrays,
            attrs: attrs_v3(),
            published: true,
            docs,
        });
    }
    let zgroup = store.exists(".zgroup")?;
    if group_v3.is_none() && !zgroup && store.is_empty()? {
        return Err(invalid(root, "not a Zarr store (nothing there)".into()));
    }
    let mut specs = Vec::new();
    let mut docs = HashMap::new();
    let mut v3 = group_v3.is_some();
    let mut sharded = false;
    for name in &store.children()? {
        let name = name.as_str();
        if let Some(zarray) = read_json(store, &format!("{name}/.zarray"))? {
            let zattrs = read_json(store, &format!("{name}/.zattrs"))?;
            keep_v2(&mut docs, name, &zarray);
            specs.push(spec_from_v2(name, &zarray, zattrs.as_ref(), root)?);
        } else if let Some(meta) = read_json(store, &format!("{name}/zarr.json"))? {
            if meta["node_type"] == "array" {
                v3 = true;
                keep_v3(&mut docs, name, &meta);
                let spec = spec_from_v3(name, &meta, root)?;
                sharded |= spec.shard.is_some();
                specs.push(spec);
            }
        }
    }
    if specs.is_empty() && group_v3.is_none() && !zgroup {
        return Err(invalid(
            root,
            "not a Zarr store (no .zgroup, .zmetadata, zarr.json or arrays)".into(),
        ));
    }
    let attrs = if v3 {
        attrs_v3()
    } else {
        read_json(store, ".zattrs")?
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default()
    };
    let format = if v3 {
        ZarrFormat::V3 { sharded }
    } else {
        ZarrFormat::V2
    };
    Ok(Specs {
        format,
        arrays: specs,
        attrs,
        published: group_v3.is_some() || zgroup,
        docs,
    })
}
