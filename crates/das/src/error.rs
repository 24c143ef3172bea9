//! Errors of the DAS library. Every variant names the file it concerns, because a user with a
//! folder of 3000 files needs to know which one to look at.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DasError {
    #[error("{path}: cannot read: {message}")]
    Unreadable { path: PathBuf, message: String },
    #[error("{path}: not a DAS file of any known layout ({message})")]
    UnknownFormat { path: PathBuf, message: String },
    #[error("{path}: {format} header: {message}")]
    Header {
        path: PathBuf,
        format: &'static str,
        message: String,
    },
    #[error("{path}: reading samples {start}..{end}: {message}")]
    Read {
        path: PathBuf,
        start: u64,
        end: u64,
        message: String,
    },
    #[error("{a} and {b} cannot form one record: {message}")]
    Mismatch {
        a: PathBuf,
        b: PathBuf,
        message: String,
    },
    #[error("{0}")]
    Input(String),
    #[error("{path}: {message}")]
    Parameters { path: PathBuf, message: String },
    #[error(transparent)]
    Cube(#[from] cryocube_cube::CubeError),
}
