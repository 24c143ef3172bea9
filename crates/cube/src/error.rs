//! Errors of the cube library: each names the store (and array) it concerns.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CubeError {
    #[error(
        "{path}: output already exists (use --overwrite to replace it, or --append to extend it)"
    )]
    OutputExists { path: PathBuf },
    #[error("{path}: refusing to overwrite a directory that is not a Zarr store")]
    NotAStore { path: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: array `{array}`: {message}")]
    Array {
        path: PathBuf,
        array: String,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    /// A size derived from input exceeds the resource budget (see [`crate::budget`]).
    #[error("{path}: {message}")]
    Budget { path: PathBuf, message: String },
}

impl CubeError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CubeError::Io {
            path: path.into(),
            source,
        }
    }
}
