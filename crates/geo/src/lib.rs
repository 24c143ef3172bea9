//! Polar recipe cubes: recipe -> fetch -> read -> regrid -> merge -> write.
//!
//! - [`recipe`]: the `cube.geojson` recipe (the seed's, accepted as it is) and the per-source
//!   `processing` block that states as data what the seed did in code;
//! - [`grid`]: the target grid (cell centres, north-up) the recipe defines;
//! - [`spec`]: the DeepESDL dataset specification of the recipe, checked rule by rule
//!   (`build --check`);
//! - [`fetch`]: sources onto disk (resume, retries, checksums, cache, safe extraction);
//! - [`read`]: source files made ready to resample (old GMT grids decoded, sentinels and
//!   latitude cuts applied, lon/lat wrapped, vectors reprojected);
//! - [`resample`]: a raster in memory onto a window of the target grid (nearest, bilinear), in
//!   Rust: the usual way;
//! - [`warp`]: a raster source onto a window of the target grid with GDAL's warper (average,
//!   mode, overviews, sources too large for memory);
//! - [`rasterize`]: vector features onto a window of the target grid (GDAL);
//! - [`build`]: recipe -> one CF cube (static and time-stacked variables), chunk by chunk;
//! - [`overlay`]: vector files as outlines in a cube's CRS, for the viewer.
//!
//! # Example
//!
//! `cryocube build cube.geojson -o polar.zarr`: the sources are fetched into `sources/` when
//! missing, resampled once onto the recipe's grid, and written as one CF cube.
//!
//! ```no_run
//! use cryocube_geo::build::{build, BuildOptions};
//! use cryocube_geo::recipe::Recipe;
//!
//! let recipe = Recipe::load(std::path::Path::new("cube.geojson"))?;
//! let opts = BuildOptions {
//!     output: std::path::Path::new("polar.zarr").into(),
//!     sources: "sources".into(),
//!     chunk: None,
//!     res: None,
//!     overwrite: false,
//! };
//! let summary = build(&recipe, &opts, false, &|done, total| eprintln!("{done}/{total}"))?;
//! println!("{} variables on {} x {} cells", summary.variables.len(), summary.nx, summary.ny);
//! # Ok::<(), cryocube_geo::GeoError>(())
//! ```

pub mod build;
pub mod fetch;
pub mod grid;
pub mod overlay;
pub mod rasterize;
pub mod read;
pub mod recipe;
pub mod resample;
pub mod spec;
pub mod warp;

use std::path::PathBuf;

/// Errors of the geo library; each names the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    /// A file or folder could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
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
    /// A download failed.
    #[error("{url}: {message}")]
    Fetch {
        /// The URL as the recipe states it (never a signed one).
        url: String,
        /// Why.
        message: String,
    },
    /// A source file cannot be read as the recipe says.
    #[error("{path}: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// GDAL refused a file: what we were doing, and GDAL's own message (without the Rust
    /// binding's wrapping). GDAL's error stays reachable as the source.
    #[error("{path}: {}", joined(.context, &gdal_message(.source)))]
    Gdal {
        /// The file.
        path: PathBuf,
        /// What was being done, e.g. "GDAL cannot read it".
        context: String,
        /// GDAL's error.
        #[source]
        source: gdal::errors::GdalError,
    },
    /// The netCDF library (which also reads HDF5) refused a file.
    #[error("{path}: {context}: {source}")]
    NetCdf {
        /// The file.
        path: PathBuf,
        /// What was being done, e.g. "not a readable netCDF file".
        context: String,
        /// The library's error.
        #[source]
        source: netcdf::Error,
    },
    /// The cube could not be written or read.
    #[error(transparent)]
    Cube(#[from] cryocube_cube::CubeError),
    /// An archive that would write outside its folder, or expand beyond reason.
    #[error("{path}: archive refused: {message}")]
    Archive {
        /// The archive.
        path: PathBuf,
        /// Which entry, and why.
        message: String,
    },
    /// The recipe is wrong at a place.
    #[error("{path}: {json_path}: {message}")]
    Recipe {
        /// The recipe file.
        path: PathBuf,
        /// The place, e.g. `$.properties.sources[3].processing`.
        json_path: String,
        /// What is wrong.
        message: String,
    },
    /// A failure while fetching or reading one of a recipe's sources, named as the recipe
    /// names it.
    #[error("source `{name}`: {error}")]
    Source {
        /// The source's name in the recipe.
        name: String,
        /// What failed.
        #[source]
        error: Box<GeoError>,
    },
}

impl GeoError {
    /// This error as one of the recipe source `name`'s.
    pub fn in_source(self, name: &str) -> GeoError {
        match self {
            e @ GeoError::Source { .. } => e,
            e => GeoError::Source {
                name: name.to_string(),
                error: Box::new(e),
            },
        }
    }
}

/// A [`GeoError::Read`] about `path`.
pub(crate) fn read_err(path: &std::path::Path, message: String) -> GeoError {
    GeoError::Read {
        path: path.to_path_buf(),
        message,
    }
}

/// A [`GeoError::Gdal`]: GDAL failed on `path` while doing `context`.
pub(crate) fn gdal_err(
    path: &std::path::Path,
    context: impl Into<String>,
    source: gdal::errors::GdalError,
) -> GeoError {
    GeoError::Gdal {
        path: path.to_path_buf(),
        context: context.into(),
        source,
    }
}

/// A [`GeoError::NetCdf`]: the netCDF library failed on `path` while doing `context`.
pub(crate) fn netcdf_err(
    path: &std::path::Path,
    context: impl Into<String>,
    source: netcdf::Error,
) -> GeoError {
    GeoError::NetCdf {
        path: path.to_path_buf(),
        context: context.into(),
        source,
    }
}

/// GDAL's own message without the Rust binding's wrapping ("CPL error class: '3' …"), so
/// that a user reads what is wrong with the file.
pub(crate) fn gdal_message(e: &gdal::errors::GdalError) -> String {
    use gdal::errors::GdalError;
    match e {
        GdalError::NullPointer { msg, .. } | GdalError::CplError { msg, .. } if !msg.is_empty() => {
            msg.clone()
        }
        other => other.to_string(),
    }
}

fn joined(context: &str, message: &str) -> String {
    if context.is_empty() {
        message.to_string()
    } else {
        format!("{context}: {message}")
    }
}

/// Sends GDAL's own messages to the `log` crate at debug level. The failures that matter come
/// back as [`GeoError`]s carrying GDAL's message; the rest (PROJ refusing points beyond a
/// pole, which the warper skips, once per window) would only be noise on the terminal.
pub fn log_gdal_messages() {
    gdal::config::set_error_handler(|class, code, message| {
        log::debug!("GDAL {class:?} {code}: {message}");
    });
}
