//! Array descriptions and their Zarr v2 / v3 metadata documents.
//!
//! The JSON is composed here rather than by zarrs' builders so that every key the conventions
//! require (`_ARRAY_DIMENSIONS`, `"fill_value": "NaN"`, `null` for integer coordinates, no
//! `_zarrs` attribute) is explicit, deterministic and identical for every command; zarrs then
//! parses the same document to encode chunks, so there is one source of truth.

use serde_json::{json, Value};

use crate::Attrs;

/// Element types cubes are written with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    /// IEEE half precision.
    F16,
    /// IEEE single precision.
    F32,
    /// IEEE double precision.
    F64,
    /// 32-bit signed integer.
    I32,
    /// 64-bit signed integer (times in µs).
    I64,
    /// 8-bit unsigned integer (masks).
    U8,
    // Read only (cubes written by others: int8 masks, int16 and uint16 grids).
    /// 8-bit signed integer.
    I8,
    /// 16-bit signed integer.
    I16,
    /// 16-bit unsigned integer.
    U16,
    /// 32-bit unsigned integer.
    U32,
}

impl DType {
    /// NumPy type string used by Zarr v2.
    pub fn v2_name(self) -> &'static str {
        match self {
            DType::F16 => "<f2",
            DType::F32 => "<f4",
            DType::F64 => "<f8",
            DType::I32 => "<i4",
            DType::I64 => "<i8",
            DType::U8 => "|u1",
            DType::I8 => "|i1",
            DType::I16 => "<i2",
            DType::U16 => "<u2",
            DType::U32 => "<u4",
        }
    }

    /// Data type name used by Zarr v3.
    pub fn v3_name(self) -> &'static str {
        match self {
            DType::F16 => "float16",
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::U8 => "uint8",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::U16 => "uint16",
            DType::U32 => "uint32",
        }
    }

    /// Whether it is a floating-point type (NaN is its fill value).
    pub fn is_float(self) -> bool {
        matches!(self, DType::F16 | DType::F32 | DType::F64)
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::U8 | DType::I8 => 1,
            DType::F16 | DType::I16 | DType::U16 => 2,
            DType::I32 | DType::U32 | DType::F32 => 4,
            DType::I64 | DType::F64 => 8,
        }
    }

    /// Parses either naming (v2 `<f4` or v3 `float32`).
    pub fn parse(name: &str) -> Option<DType> {
        [
            DType::F16,
            DType::F32,
            DType::F64,
            DType::I32,
            DType::I64,
            DType::U8,
            DType::I8,
            DType::I16,
            DType::U16,
            DType::U32,
        ]
        .into_iter()
        .find(|d| d.v2_name() == name || d.v3_name() == name)
    }
}

/// Which Zarr format a store is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum ZarrFormat {
    /// Zarr v2 with consolidated `.zmetadata`: opened by every reader in CONVENTIONS.md.
    #[default]
    V2,
    /// Zarr v3; `sharded` stores each shard ([`ArraySpec::shard`]) as one file of
    /// several read chunks, which keeps file counts low on object stores.
    V3 {
        /// Whether chunks are stored in shards.
        sharded: bool,
    },
}

/// Blosc with LZ4 (level 1) after a byte shuffle. Measured on spectrogram chunks (f32 dB
/// values, numcodecs on one 256 x 64 x 101 chunk): 76 % of the raw size in 3.4 ms, against
/// 85 % in 12 ms for plain zstd level 1 (zstd gains almost nothing at higher levels on float
/// noise, and blosc-zstd is 6x slower for 1 % less). A separate `shuffle` filter + zstd would
/// give 72 %, but GDAL 3.6 cannot read that filter, while its Debian build reads blosc.
/// Level 1 rather than 5 (numcodecs, one thread, 2026-12-06): on a spectrogram chunk the
/// same time and 76.8 % against 76.6 %; on 1061 x 1061 chunks of polar layers (gravity,
/// EMAG2, BEDMAP1) 20-25 % less time (1.96 against 2.54 ms for gravity) for 1.3-2 points
/// more of the raw size, which took 7 % off a 1 km polar build.
const BLOSC_CNAME: &str = "lz4";
const BLOSC_LEVEL: i64 = 1;
/// Packed int16 codes (`--quantize`): zstd level 1 after a bit shuffle. Measured with
/// numcodecs on 0.05 dB spectrogram chunks: 64 % of the raw codes in 4 ms, against 71 % in
/// 2.4 ms for lz4 after a byte shuffle; zstd's higher levels gain 3 % at 3-10x the time. A code's
/// high bits barely change between neighbours, which a bit shuffle lays out as long runs.
/// Debian's blosc (GDAL's) has zstd.
const PACKED_CNAME: &str = "zstd";
const PACKED_LEVEL: i64 = 1;

/// One array of a cube: its dimensions, geometry, element type and attributes.
#[derive(Clone, Debug)]
pub struct ArraySpec {
    /// The array's name (its folder in the store).
    pub name: String,
    /// Its dimension names (`_ARRAY_DIMENSIONS`), one per axis.
    pub dims: Vec<String>,
    /// Its length along each axis.
    pub shape: Vec<u64>,
    /// Read chunks: what a reader fetches at once.
    pub chunks: Vec<u64>,
    /// Shard shape for sharded Zarr v3 (a multiple of `chunks`); ignored otherwise.
    pub shard: Option<Vec<u64>>,
    /// The element type.
    pub dtype: DType,
    /// Its attributes (without `_ARRAY_DIMENSIONS`).
    pub attrs: Attrs,
}

impl ArraySpec {
    /// A single-chunk array, as coordinates must be.
    pub fn coordinate(name: &str, dim: &str, len: u64, dtype: DType, attrs: Attrs) -> Self {
        ArraySpec {
            name: name.to_string(),
            dims: vec![dim.to_string()],
            shape: vec![len],
            chunks: vec![len.max(1)],
            shard: None,
            dtype,
            attrs,
        }
    }

    /// A 0-d array (e.g. the CF grid-mapping variable `crs`).
    pub fn scalar(name: &str, dtype: DType, attrs: Attrs) -> Self {
        ArraySpec {
            name: name.to_string(),
            dims: vec![],
            shape: vec![],
            chunks: vec![],
            shard: None,
            dtype,
            attrs,
        }
    }

    /// The code of an integer array that means "no value" (CF `_FillValue`, for packed data).
    fn integer_fill(&self) -> Option<i64> {
        (!self.dtype.is_float())
            .then(|| self.attrs.get("_FillValue").and_then(Value::as_i64))
            .flatten()
    }

    fn fill_value(&self, format: ZarrFormat) -> Value {
        if let Some(code) = self.integer_fill() {
            // Packed data (CF scale_factor/add_offset): the store's fill value is the code
            // xarray masks, and chunks never written read as it.
            return json!(code);
        }
        match (self.dtype.is_float(), format) {
            (true, _) => json!("NaN"),
            // Integer coordinates: null in v2, so xarray does not mask a real 0 (CONVENTIONS.md);
            // v3 requires a value and xarray only masks on an explicit `_FillValue` there.
            (false, ZarrFormat::V2) => Value::Null,
            (false, ZarrFormat::V3 { .. }) => json!(0),
        }
    }

    /// Blosc's compressor, level and shuffle (v2 code: 1 byte, 2 bit) for this array.
    fn blosc(&self) -> (&'static str, i64, u8) {
        match self.integer_fill() {
            Some(_) if self.dtype.size() > 1 => (PACKED_CNAME, PACKED_LEVEL, 2),
            _ => (BLOSC_CNAME, BLOSC_LEVEL, 1),
        }
    }

    /// The `.zarray` document (Zarr v2).
    pub fn zarray_v2(&self) -> Value {
        let (cname, clevel, shuffle) = self.blosc();
        // A 0-d array has an empty shape; v2 readers expect `chunks: []` then too.
        json!({
            "chunks": self.chunks,
            "compressor": {
                "id": "blosc",
                "cname": cname,
                "clevel": clevel,
                "shuffle": shuffle,
                "blocksize": 0
            },
            "dtype": self.dtype.v2_name(),
            "fill_value": self.fill_value(ZarrFormat::V2),
            "filters": null,
            "order": "C",
            "shape": self.shape,
            "zarr_format": 2
        })
    }

    /// The `.zattrs` document (Zarr v2): attributes plus `_ARRAY_DIMENSIONS`.
    pub fn zattrs_v2(&self) -> Value {
        let mut attrs = Attrs::new();
        attrs.insert("_ARRAY_DIMENSIONS".into(), json!(self.dims));
        for (k, v) in &self.attrs {
            // v2 keeps an integer fill in `.zarray` only; xarray takes `_FillValue` from there.
            if k == "_FillValue" && self.integer_fill().is_some() {
                continue;
            }
            attrs.insert(k.clone(), v.clone());
        }
        Value::Object(attrs)
    }

    /// The array `zarr.json` document (Zarr v3).
    pub fn zarr_json_v3(&self, sharded: bool) -> Value {
        let bytes = if self.dtype.size() > 1 {
            json!({"name": "bytes", "configuration": {"endian": "little"}})
        } else {
            json!({"name": "bytes"})
        };
        let (cname, clevel, shuffle) = self.blosc();
        let blosc = json!({"name": "blosc", "configuration": {
            "cname": cname,
            "clevel": clevel,
            "shuffle": match (self.dtype.size(), shuffle) {
                (1, _) => "noshuffle",
                (_, 2) => "bitshuffle",
                _ => "shuffle",
            },
            "typesize": self.dtype.size(),
            "blocksize": 0
        }});
        let inner = json!([bytes, blosc]);
        let format = ZarrFormat::V3 { sharded };
        let (grid_chunks, codecs) = match (&self.shard, sharded) {
            (Some(shard), true) => (
                shard.clone(),
                json!([{
                    "name": "sharding_indexed",
                    "configuration": {
                        "chunk_shape": self.chunks,
                        "codecs": inner,
                        "index_codecs": [
                            {"name": "bytes", "configuration": {"endian": "little"}},
                            {"name": "crc32c"}
                        ],
                        "index_location": "end"
                    }
                }]),
            ),
            _ => (self.chunks.clone(), inner),
        };
        json!({
            "zarr_format": 3,
            "node_type": "array",
            "shape": self.shape,
            "data_type": self.dtype.v3_name(),
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": grid_chunks}},
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "fill_value": self.fill_value(format),
            "codecs": codecs,
            "attributes": self.attrs,
            "dimension_names": self.dims,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_fill_is_nan_and_integer_fill_is_null_in_v2() {
        let f = ArraySpec::coordinate("distance", "distance", 3, DType::F64, Attrs::new());
        let i = ArraySpec::coordinate("channel", "distance", 3, DType::I64, Attrs::new());
        assert_eq!(f.zarray_v2()["fill_value"], json!("NaN"));
        assert_eq!(i.zarray_v2()["fill_value"], Value::Null);
        assert_eq!(i.zattrs_v2()["_ARRAY_DIMENSIONS"], json!(["distance"]));
    }

    #[test]
    fn sharded_v3_uses_shard_as_grid_and_chunks_inside() {
        let mut s = ArraySpec::coordinate("v", "t", 100, DType::F32, Attrs::new());
        s.chunks = vec![10];
        s.shard = Some(vec![50]);
        let m = s.zarr_json_v3(true);
        assert_eq!(m["chunk_grid"]["configuration"]["chunk_shape"], json!([50]));
        assert_eq!(m["codecs"][0]["configuration"]["chunk_shape"], json!([10]));
    }

    #[test]
    fn dtype_names_round_trip() {
        for d in [
            DType::F16,
            DType::F32,
            DType::F64,
            DType::I32,
            DType::I64,
            DType::U8,
            DType::I8,
            DType::I16,
            DType::U16,
            DType::U32,
        ] {
            assert_eq!(DType::parse(d.v2_name()), Some(d));
            assert_eq!(DType::parse(d.v3_name()), Some(d));
        }
    }
}
