//! `cryocube._native`: the Rust side of `import cryocube`.
//!
//! The commands (`das`, `build`, `pyramid`) run through the command line's own parser and
//! dispatcher (`cryocube::run`), so every option, default, check and message is the
//! command's; the Python layer (`cryocube/__init__.py`) only turns keywords into arguments.
//! What a command line cannot return (a cube's description as data, spectra as an array, a
//! server that keeps running) has a function here. All work runs with the interpreter
//! released; progress and log records reach Python by re-attaching briefly.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use numpy::{IntoPyArray, PyArray2, PyArray3, PyReadonlyArray2};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

use cryocube::{Failure, FailureKind, Feedback};

create_exception!(
    _native,
    CryocubeError,
    PyException,
    "A cryocube command failed; the message is the command line's."
);
create_exception!(
    _native,
    InputError,
    CryocubeError,
    "The inputs or options are wrong: a file, a recipe, an argument."
);
create_exception!(
    _native,
    StoreError,
    CryocubeError,
    "The cube (a folder or s3:// store) could not be read or written."
);

fn to_py(f: Failure) -> PyErr {
    match f.kind {
        FailureKind::Usage | FailureKind::Input => InputError::new_err(f.message),
        FailureKind::Store => StoreError::new_err(f.message),
        FailureKind::Other => CryocubeError::new_err(f.message),
    }
}

/// Runs `cryocube ARGS...` in this process; `progress(done, total)` is called while it works
/// (at most five times a second, and at the end).
#[pyfunction]
#[pyo3(signature = (args, progress=None))]
fn run(py: Python<'_>, args: Vec<String>, progress: Option<Py<PyAny>>) -> PyResult<()> {
    let last = Mutex::new(None::<Instant>);
    let report = |done: u64, total: u64| {
        let Some(cb) = &progress else { return };
        let mut at = last.lock().unwrap_or_else(|e| e.into_inner());
        let due = at.is_none_or(|t| t.elapsed() >= Duration::from_millis(200)) || done >= total;
        if due {
            *at = Some(Instant::now());
            Python::attach(|py| {
                if let Err(e) = cb.call1(py, (done, total)) {
                    // A failing callback must not stop the work: say so once in the log.
                    log::warn!("the progress callback failed: {e}");
                }
            });
        }
    };
    let feedback = Feedback {
        quiet: true,
        progress: Some(&report),
    };
    py.detach(|| cryocube::run(args, &feedback)).map_err(to_py)
}

/// A cube's description as JSON: its attributes, dimensions and variables (with their
/// attributes, shapes, chunks and types), whether it is complete, and `cryocube info`'s text.
#[pyfunction]
fn info_json(py: Python<'_>, store: String) -> PyResult<String> {
    py.detach(|| cryocube::info_json(&store)).map_err(to_py)
}

/// Applies a patch (the YAML/JSON text of a patch file) to a cube; returns the changes (as
/// `cryocube patch --dry-run` prints them) and the warnings.
#[pyfunction]
#[pyo3(signature = (store, patch, name, dry_run=false, force=false))]
fn patch(
    py: Python<'_>,
    store: String,
    patch: String,
    name: String,
    dry_run: bool,
    force: bool,
) -> PyResult<(Vec<String>, Vec<String>)> {
    py.detach(|| cryocube::patch_text(&store, &patch, &name, dry_run, force))
        .map_err(to_py)
}

/// Spectra of an in-memory record `samples[time, channel]` sampled at `fs` Hz: an array
/// (window, channel, frequency) of float32, the numbers `cryocube das` writes. Channels that
/// are contiguous in memory (a Fortran-ordered array, or the transpose of a C-ordered
/// [channel, time] one) are read in place.
#[pyfunction]
#[pyo3(signature = (samples, fs, df, dt, fmin, fmax, scale, window))]
#[allow(clippy::too_many_arguments)]
fn stft<'py>(
    py: Python<'py>,
    samples: PyReadonlyArray2<'py, f32>,
    fs: f64,
    df: f64,
    dt: f64,
    fmin: f64,
    fmax: Option<f64>,
    scale: &str,
    window: &str,
) -> PyResult<Bound<'py, PyArray3<f32>>> {
    let view = samples.as_array();
    let (n_samples, n_channels) = view.dim();
    use cryocube_das::transform::{Scale, SpectrumParams, Window};
    let scale = Scale::parse(scale)
        .ok_or_else(|| InputError::new_err(format!("scale {scale:?}: db or cryocube")))?;
    let window = Window::parse(window).map_err(InputError::new_err)?;
    let params = SpectrumParams::checked(fs, df, dt, fmin, fmax, scale, window)
        .map_err(InputError::new_err)?;
    let (spectra, n_windows, n_bins) = py.detach(|| {
        cryocube_das::transform::spectrogram(&params, n_channels, n_samples, |c| {
            let column = view.column(c);
            match column.to_slice() {
                Some(s) => std::borrow::Cow::Borrowed(s),
                None => std::borrow::Cow::Owned(column.to_vec()),
            }
        })
    });
    let array = numpy::ndarray::Array3::from_shape_vec((n_windows, n_channels, n_bins), spectra)
        .map_err(|e| CryocubeError::new_err(e.to_string()))?;
    Ok(array.into_pyarray(py))
}

/// A raw DAS record: the files `cryocube das` would read, laid out on one sample axis by
/// their headers alone (read in parallel), with gaps as NaN and overlaps skipped; samples are
/// read only when asked for, through the same readers.
#[pyclass(module = "cryocube._native", frozen)]
struct Record {
    record: cryocube_das::stream::Record,
    samples_read: AtomicU64,
}

#[pymethods]
impl Record {
    #[new]
    #[pyo3(signature = (inputs, format=None, spacing=None, first_distance=None))]
    fn new(
        py: Python<'_>,
        inputs: Vec<PathBuf>,
        format: Option<String>,
        spacing: Option<f64>,
        first_distance: Option<f64>,
    ) -> PyResult<Self> {
        use cryocube_das::read::Format;
        let format = match format {
            Some(f) => Some(Format::parse(&f).ok_or_else(|| {
                let names: Vec<_> = Format::ALL.iter().map(|f| f.name()).collect();
                InputError::new_err(format!(
                    "unknown format {f:?} (one of {})",
                    names.join(", ")
                ))
            })?),
            None => None,
        };
        let distances = cryocube_das::stream::Distances {
            spacing,
            first: first_distance,
        };
        let record = py
            .detach(|| cryocube_das::stream::Record::scan(&inputs, format, distances))
            .map_err(|e| InputError::new_err(e.to_string()))?;
        Ok(Record {
            record,
            samples_read: AtomicU64::new(0),
        })
    }

    /// Samples per channel on the record's axis (gaps included).
    #[getter]
    fn n_samples(&self) -> u64 {
        self.record.n_samples
    }

    /// Channels.
    #[getter]
    fn n_channels(&self) -> u64 {
        self.record.n_channels
    }

    /// Samples per second.
    #[getter]
    fn sampling_rate(&self) -> f64 {
        self.record.sampling_rate
    }

    /// UTC microseconds of sample 0.
    #[getter]
    fn start_us(&self) -> i64 {
        self.record.start_us
    }

    /// The samples' units as the (first) file states them.
    #[getter]
    fn units(&self) -> String {
        self.record.files[0].units.clone()
    }

    /// The type every file stores its samples as (numpy's name), or None when the files
    /// differ or one does not say (see `Header::sample_type`).
    #[getter]
    fn sample_type(&self) -> Option<String> {
        let first = self.record.files[0].sample_type.clone()?;
        self.record
            .files
            .iter()
            .all(|h| h.sample_type.as_deref() == Some(first.as_str()))
            .then_some(first)
    }

    /// The distance coordinate's units: `m`, or `1` (channel index) when no file states them.
    #[getter]
    fn distance_units(&self) -> String {
        self.record.distance_units.clone()
    }

    /// Each channel's distance.
    fn distances(&self) -> Vec<f64> {
        (0..self.record.n_channels)
            .map(|c| self.record.distance_of(c))
            .collect()
    }

    /// The files in time order, and each one's format name.
    fn files(&self) -> Vec<(String, String)> {
        self.record
            .files
            .iter()
            .map(|h| (h.path.display().to_string(), h.format.name().to_string()))
            .collect()
    }

    /// Header facts of the first file (gauge length, instrument, ...) as (name, value).
    fn facts(&self) -> Vec<(String, String)> {
        self.record.files[0].facts.clone()
    }

    /// Gaps and overlaps as the cube's `gaps` / `overlaps` attributes say them (JSON), and the
    /// warnings.
    fn discontinuities(&self) -> (String, String, Vec<String>) {
        use cryocube_das::stream::Record as R;
        let r = &self.record;
        (
            R::discontinuities_json(&r.gaps, r.start_us, r.sampling_rate).to_string(),
            R::discontinuities_json(&r.overlaps, r.start_us, r.sampling_rate).to_string(),
            r.warnings.clone(),
        )
    }

    /// Samples `t0 .. t1` of channels `c0 .. c1` as float32 (time, channel); NaN in gaps.
    fn read<'py>(
        &self,
        py: Python<'py>,
        t0: u64,
        t1: u64,
        c0: u64,
        c1: u64,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let r = &self.record;
        if t0 > t1 || t1 > r.n_samples || c0 > c1 || c1 > r.n_channels {
            return Err(InputError::new_err(format!(
                "samples {t0}..{t1} of channels {c0}..{c1}: the record has {} samples of {} channels",
                r.n_samples, r.n_channels
            )));
        }
        let (nt, nc) = ((t1 - t0) as usize, (c1 - c0) as usize);
        let values = py
            .detach(|| -> Result<Vec<f32>, cryocube_das::DasError> {
                let mut out = vec![0f32; nt * nc];
                if nt == 0 || nc == 0 {
                    return Ok(out);
                }
                let mut reader = cryocube_das::stream::BlockReader::new(r, c0, c1);
                reader.read_rows(t0, t1, &mut out)?;
                self.samples_read
                    .fetch_add(reader.samples_read(), Ordering::Relaxed);
                Ok(out)
            })
            .map_err(|e| InputError::new_err(e.to_string()))?;
        let array = numpy::ndarray::Array2::from_shape_vec((nt, nc), values)
            .map_err(|e| CryocubeError::new_err(e.to_string()))?;
        Ok(array.into_pyarray(py))
    }

    /// Bytes of samples read from the files so far (4 per sample, as float32).
    #[getter]
    fn bytes_read(&self) -> u64 {
        4 * self.samples_read.load(Ordering::Relaxed)
    }
}

/// `cryocube view STORE` serving from a thread of this process until `stop()`.
#[pyclass(module = "cryocube._native")]
struct Server {
    inner: Option<cryocube_view::Background>,
    url: String,
}

#[pymethods]
impl Server {
    #[new]
    #[pyo3(signature = (store, host="127.0.0.1".to_string(), port=0, cache_mb=256, overlays=Vec::new(), sources=None))]
    fn new(
        py: Python<'_>,
        store: String,
        host: String,
        port: u16,
        cache_mb: usize,
        overlays: Vec<PathBuf>,
        sources: Option<PathBuf>,
    ) -> PyResult<Self> {
        let started = py
            .detach(|| {
                cryocube::start_view(
                    &store,
                    cryocube_view::ViewOptions {
                        host,
                        port,
                        allow_hosts: Vec::new(),
                        overlays: Vec::new(),
                    },
                    cache_mb,
                    &overlays,
                    sources.as_deref(),
                )
            })
            .map_err(to_py)?;
        let url = format!("http://{}/", started.addr());
        Ok(Server {
            inner: Some(started),
            url,
        })
    }

    /// The page's address.
    #[getter]
    fn url(&self) -> String {
        self.url.clone()
    }

    /// Whether it still serves.
    #[getter]
    fn running(&self) -> bool {
        self.inner.is_some()
    }

    /// Stops serving and closes the port (requests in flight finish first).
    fn stop(&mut self, py: Python<'_>) -> PyResult<()> {
        match self.inner.take() {
            Some(mut s) => py
                .detach(move || s.stop())
                .map_err(|e| CryocubeError::new_err(e.to_string())),
            None => Ok(()),
        }
    }
}

/// Log records of the Rust side, passed to Python's `logging` (logger `cryocube`).
struct ToPythonLogging;

impl log::Log for ToPythonLogging {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Info
            && (m.target().starts_with("cryocube") || m.level() <= log::Level::Warn)
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            log::Level::Error => 40,
            log::Level::Warn => 30,
            log::Level::Info => 20,
            _ => 10,
        };
        let message = record.args().to_string();
        Python::attach(|py| {
            let sent = py
                .import("logging")
                .and_then(|l| l.call_method1("getLogger", ("cryocube",)))
                .and_then(|l| l.call_method1("log", (level, message)));
            if sent.is_err() {
                // Interpreter shutting down: nowhere to log to.
            }
        });
    }

    fn flush(&self) {}
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Another extension may have set a logger first: then ours stays out.
    if log::set_boxed_logger(Box::new(ToPythonLogging)).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
    cryocube::prepare_threads();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("CryocubeError", m.py().get_type::<CryocubeError>())?;
    m.add("InputError", m.py().get_type::<InputError>())?;
    m.add("StoreError", m.py().get_type::<StoreError>())?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(info_json, m)?)?;
    m.add_function(wrap_pyfunction!(patch, m)?)?;
    m.add_function(wrap_pyfunction!(stft, m)?)?;
    m.add_class::<Server>()?;
    m.add_class::<Record>()?;
    Ok(())
}
