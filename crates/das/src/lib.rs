//! DAS records to spectrogram cubes: read -> stream -> transform -> write.
//!
//! - [`read`]: vendor layouts (detected from content), header facts, block reads;
//! - [`stream`]: many files as one regular sample stream (ordering, gap/overlap handling);
//! - [`transform`]: short-time Fourier spectra with the two documented scales;
//! - [`job`]: the `cryocube das` job: stream -> spectra -> cube, chunk by chunk, resumable;
//! - [`quantize`]: `--quantize`, spectra as int16 codes, and the storing of chunks;
//! - [`average`]: `--average`, Welch long-term spectra, one per interval;
//! - [`follow`]: `--follow`, appending each file of a watched folder once it is complete;
//! - [`append`]: `--append`, continuing a finished cube with later files;
//! - [`demo`]: a synthetic Rhonegletscher-like record for `cryocube demo`.
//!
//! # Example
//!
//! The whole job, as `cryocube das raw/ -o cube.zarr --df 2` runs it: inputs in any order,
//! a cube of spectra written chunk by chunk, resumable when started again.
//!
//! ```no_run
//! use cryocube_das::job::{run, DasOptions};
//!
//! let mut opts = DasOptions::new(vec!["raw/".into()], std::path::Path::new("cube.zarr"));
//! opts.df = 2.0; // Hz: windows of half a second
//! let summary = run(&opts, &|done, total| eprintln!("{done}/{total} windows"))?;
//! println!("{} windows x {} channels", summary.windows, summary.channels);
//! # Ok::<(), cryocube_das::DasError>(())
//! ```

// `deny`, not `forbid`: ndarray's `s!` macro carries its own `allow(unsafe_code)`.
#![deny(unsafe_code)]

pub mod append;
pub mod average;
pub mod demo;
pub mod error;
pub mod follow;
pub mod job;
pub mod quantize;
pub mod read;
pub mod stream;
pub mod transform;

pub use error::DasError;
