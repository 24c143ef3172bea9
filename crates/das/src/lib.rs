//! DAS records to spectrogram cubes: read -> stream -> transform -> write.
//!
//! - [`read`]: vendor layouts (detected from content), header facts, block reads;
//! - [`stream`]: many files as one regular sample stream (ordering, gap/overlap handling);
//! - [`transform`]: short-time Fourier spectra with the two documented scales;
//! - [`job`]: the `cryocube das` job: stream -> spectra -> cube, chunk by chunk, resumable;
//! - [`append`]: `--append`, continuing a finished cube with later files;
//! - [`demo`]: a synthetic Rhonegletscher-like record for `cryocube demo`.

// `deny`, not `forbid`: ndarray's `s!` macro carries its own `allow(unsafe_code)`.
#![deny(unsafe_code)]

pub mod append;
pub mod demo;
pub mod error;
pub mod job;
pub mod read;
pub mod stream;
pub mod transform;

pub use error::DasError;
