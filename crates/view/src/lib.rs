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
//!
//! # Example
//!
//! `cryocube view cube.zarr`: open the cube with 256 MiB of cache and serve it until the
//! process ends.
//!
//! ```no_run
//! use cryocube_view::{serve_blocking, ViewCube, ViewOptions};
//!
//! let cube = ViewCube::open(&std::path::Path::new("cube.zarr").into(), 256 << 20)?;
//! let opts = ViewOptions {
//!     host: "127.0.0.1".into(),
//!     port: 8765,
//!     allow_hosts: Vec::new(),
//!     overlays: Vec::new(),
//! };
//! serve_blocking(cube, &opts, |addr| println!("http://{addr}/"))?;
//! # Ok::<(), cryocube_view::ViewError>(())
//! ```

#![forbid(unsafe_code)]

pub mod cube;
pub mod server;

pub use cube::ViewCube;
pub use server::{serve_blocking, serve_in_background, Background, Overlay, ViewOptions};

/// Why the viewer cannot open a cube or answer a request.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] cryocube_cube::CubeError),
    /// The cube holds nothing the viewer can show, or not as its metadata says.
    #[error("{0}")]
    Cube(String),
    /// A request the page (or a user typing URLs) got wrong.
    #[error("{0}")]
    Request(String),
    /// The server could not listen or run.
    #[error("server: {0}")]
    Server(String),
}
