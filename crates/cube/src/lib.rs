//! The cube model shared by every cryocube command, and its Zarr/CF storage.
//!
//! Every command ends by writing a cube, and every cube must open unchanged in xarray,
//! rioxarray, GDAL and Lexcube (see `shared/docs/CONVENTIONS.md`). Keeping one writer here is
//! what makes that a property of the tool rather than of each command:
//!
//! - [`meta`] describes arrays (dims, shape, chunks, dtype, attributes) and renders them as
//!   Zarr v2 `.zarray`/`.zattrs` or Zarr v3 `zarr.json` (optionally sharded);
//! - [`write`] creates a store, writes coordinates and chunks (through zarrs' codecs) and
//!   publishes it: the root group and consolidated metadata are written *last*, so a killed
//!   run never leaves a cube that opens as if it were complete;
//! - [`read`] opens any cube we write (and plain xarray Zarr stores) for `info`, `--append` and
//!   resume;
//! - [`budget`] checks sizes that come from input before anything of that size exists;
//! - [`pack`] stores floats as CF-packed int16 codes and reads them back;
//! - [`cf`] holds the CF/ACDD encodings (time units, attribute helpers);
//! - [`info`] renders the human summary printed by `cryocube info`;
//! - [`store`] is where the bytes go: a local folder or an S3 prefix (`s3://bucket/cube.zarr`),
//!   through one small key/value interface (and our own SigV4 client);
//! - [`job`] is the one job model of every writer: a plan stored in the unfinished cube,
//!   tasks that each do a share of its units (on many machines), a commit that publishes;
//! - [`lock`] keeps a second writer off a store being written (file locks; tickets on S3);
//! - [`pyramid`] builds the coarser copies `cryocube view` reads, as a job like any other;
//! - [`patch`] changes attributes of a published cube (`cryocube patch`, xcube semantics).
//!
//! # Example
//!
//! A cube with one coordinate, written and published, then read back:
//!
//! ```
//! use cryocube_cube::{ArraySpec, Attrs, CubeReader, CubeWriter, DType, WriteOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("c.zarr");
//! let mut w = CubeWriter::create(&path, WriteOptions::default())?;
//! w.add_array(ArraySpec::coordinate("x", "x", 3, DType::F64, Attrs::new()))?;
//! w.write_all("x", &[0.5, 1.5, 2.5])?;
//! w.finish(Attrs::new())?; // published last: until here, no reader takes it for complete
//!
//! let cube = CubeReader::open(&path)?;
//! assert!(cube.is_complete());
//! assert_eq!(cube.read_all_f64("x")?, [0.5, 1.5, 2.5]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

pub mod budget;
pub mod cf;
pub mod error;
pub mod info;
pub mod job;
pub mod lock;
pub mod meta;
pub mod pack;
pub mod patch;
pub mod pyramid;
pub mod read;
pub mod store;
pub mod write;

pub use error::CubeError;
pub use meta::{ArraySpec, DType, ZarrFormat};
pub use read::CubeReader;
pub use store::{Location, Store};
pub use write::{CubeWriter, WriteOptions};

/// Attribute maps as stored in `.zattrs` (insertion order kept, so output is deterministic).
pub type Attrs = serde_json::Map<String, serde_json::Value>;
