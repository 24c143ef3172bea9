//! `cryocube view`: any cube we write (and any Zarr with 3-D or 2-D variables written by
//! xarray), local or on S3, as an interactive 3-D box (a 2-D map as a box one cell deep) in
//! the browser, served by our own small server.
//!
//! Pipeline: the cube library's [`cryocube_cube::pyramid`] stores coarser copies of the cube's
//! variables inside it (once, `cryocube pyramid` or `--pyramid`; the viewer only reads them);
//! [`cube`] opens the store and answers for faces
//! (quantised slices from the level that fits the screen), exact values and profiles, with a
//! bounded cache; [`server`] serves the page (plain WebGL2 and our own
//! script, compiled into the binary) and that API on loopback.

#![forbid(unsafe_code)]

pub mod cube;
pub mod server;

pub use cube::ViewCube;
pub use server::{serve_blocking, ViewOptions};

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error(transparent)]
    Store(#[from] cryocube_cube::CubeError),
    #[error("{0}")]
    Cube(String),
    /// A request the page (or a user typing URLs) got wrong.
    #[error("{0}")]
    Request(String),
    #[error("server: {0}")]
    Server(String),
}
