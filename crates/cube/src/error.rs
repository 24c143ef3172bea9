//! Errors of the cube library: each names the store (and array) it concerns.

use std::path::PathBuf;

/// What went wrong with a store, named by its path (a folder or an `s3://` URL).
#[derive(Debug, thiserror::Error)]
pub enum CubeError {
    /// Something is at the output already, and neither `--overwrite` nor `--append` was given.
    #[error(
        "{path}: output already exists (use --overwrite to replace it, or --append to extend it)"
    )]
    OutputExists {
        /// The output.
        path: PathBuf,
    },
    /// `--overwrite` of a folder that holds files of someone else's.
    #[error("{path}: refusing to overwrite a directory that is not a Zarr store")]
    NotAStore {
        /// The folder.
        path: PathBuf,
    },
    /// The file system said no.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// One array of a store cannot be read or written as asked.
    #[error("{path}: array `{array}`: {message}")]
    Array {
        /// The store.
        path: PathBuf,
        /// The array's name.
        array: String,
        /// What is wrong.
        message: String,
    },
    /// Zarr could not encode, decode or address an array's chunks.
    #[error("{path}: array `{array}`: {source}")]
    Codec {
        /// The store.
        path: PathBuf,
        /// The array's name.
        array: String,
        /// What zarrs reported.
        #[source]
        source: Box<zarrs::array::ArrayError>,
    },
    /// A store, its metadata or a request is not what it must be.
    #[error("{path}: {message}")]
    Invalid {
        /// The store (or key).
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A size derived from input exceeds the resource budget (see [`crate::budget`]).
    #[error("{path}: {message}")]
    Budget {
        /// The store the size is for.
        path: PathBuf,
        /// The size, its cause and the budget.
        message: String,
    },
}

impl CubeError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CubeError::Io {
            path: path.into(),
            source,
        }
    }
}
