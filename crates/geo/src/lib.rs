//! Polar recipe cubes: recipe -> fetch -> read -> regrid -> merge -> write.
//!
//! - [`recipe`]: the `cube.geojson` recipe (the seed's, accepted as it is) and the per-source
//!   `processing` block that states as data what the seed did in code;
//! - [`grid`]: the target grid (cell centres, north-up) the recipe defines;
//! - [`fetch`]: sources onto disk (resume, retries, checksums, cache, safe extraction).
//!
//! Reading (GDAL, old GMT grids, lat/lon grids, vectors) and regridding follow.

pub mod fetch;
pub mod grid;
pub mod recipe;

use std::path::PathBuf;

/// Errors of the geo library; each names the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{url}: {message}")]
    Fetch { url: String, message: String },
    #[error("{path}: archive refused: {message}")]
    Archive { path: PathBuf, message: String },
    #[error("{path}: {json_path}: {message}")]
    Recipe {
        path: PathBuf,
        json_path: String,
        message: String,
    },
}
