//! Errors of the DAS library. Every variant names the file it concerns, because a user with a
//! folder of 3000 files needs to know which one to look at.

use std::path::PathBuf;

/// Why a DAS job cannot go on, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum DasError {
    /// The file cannot be opened or read at all.
    #[error("{path}: cannot read: {message}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The file is of no layout cryocube knows.
    #[error("{path}: not a DAS file of any known layout ({message})")]
    UnknownFormat {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        message: String,
    },
    /// The file system refused a file or folder.
    #[error("{path}: {source}")]
    File {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The HDF5 library refused part of a file.
    #[error("{path}: {context}: {source}")]
    Hdf5 {
        /// The file.
        path: PathBuf,
        /// What was being read (a header field, a dataset, samples a..b).
        context: String,
        /// What the library said.
        #[source]
        source: hdf5::Error,
    },
    /// The file's header lacks a fact, or states an impossible one.
    #[error("{path}: {format} header: {message}")]
    Header {
        /// The file.
        path: PathBuf,
        /// Its layout's name.
        format: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Reading samples failed midway.
    #[error("{path}: reading samples {start}..{end}: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// First sample asked for.
        start: u64,
        /// One past the last.
        end: u64,
        /// Why it failed.
        message: String,
    },
    /// Two files that cannot be one record (another sampling rate, geometry, a wrong clock).
    #[error("{a} and {b} cannot form one record: {message}")]
    Mismatch {
        /// The earlier file.
        a: PathBuf,
        /// The later one.
        b: PathBuf,
        /// How they differ.
        message: String,
    },
    /// The inputs as a whole (no files, an append that would add nothing usable, ...).
    #[error("{0}")]
    Input(String),
    /// Options that do not fit the record (a window longer than the data, no channel).
    #[error("{path}: {message}")]
    Parameters {
        /// The first input file.
        path: PathBuf,
        /// What does not fit.
        message: String,
    },
    /// `--quantize` cannot hold the spectra (or its step is no step).
    #[error("{path}: --quantize {step}: {message}")]
    Quantize {
        /// The cube.
        path: PathBuf,
        /// The step asked for.
        step: f64,
        /// What does not fit, and the step that would.
        message: String,
    },
    /// The cube could not be written or read.
    #[error(transparent)]
    Cube(#[from] cryocube_cube::CubeError),
}
