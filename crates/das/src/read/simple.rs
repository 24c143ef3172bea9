//! Simple HDF5: a bare sample matrix and a time vector, as home-made recorders and notebooks
//! write them: `/raw` + `/timestamp`, or `/data` + `/time` (+ `/distance`). No attributes are
//! needed; what the file does not say stays unsaid.
//!
//! | fact | field |
//! |---|---|
//! | axis order | the axis whose length is the time vector's (time x channel when both are) |
//! | sampling rate | from the time vector: (n - 1) / (t_last - t_first) |
//! | start (UTC) | first time; seconds since 1970 (ms, µs or ns when the magnitude says so) |
//! | channel spacing, first channel | `/distance` (evenly spaced), else none: the channel index, or `--spacing` / `--first-distance` |
//! | units | not stated |

use std::path::Path;

use hdf5::File;

use super::h5::{Fields, Matrix};
use super::{spacing_of, Format, Header};
use crate::DasError;

/// The (samples, times) dataset names of a simple file, if it is one.
pub(super) fn names(f: &File) -> Option<(&'static str, &'static str)> {
    [("raw", "timestamp"), ("data", "time")]
        .into_iter()
        .find(|(d, t)| {
            f.dataset(d).is_ok_and(|d| d.ndim() == 2) && f.dataset(t).is_ok_and(|t| t.ndim() == 1)
        })
}

/// Seconds per unit of a time vector's values, judged by the magnitude of its first value
/// (a DAS record lies between 1980 and 2200 in any of these units).
fn seconds_per_unit(t0: f64) -> f64 {
    match t0.abs() {
        v if v < 1e11 => 1.0,
        v if v < 1e14 => 1e-3,
        v if v < 1e17 => 1e-6,
        _ => 1e-9,
    }
}

pub(super) fn open(path: &Path, file: File) -> Result<Matrix, DasError> {
    let f = Fields {
        path,
        format: Format::SimpleH5,
    };
    let (data_name, time_name) = names(&file)
        .ok_or_else(|| f.err("neither /raw + /timestamp nor /data + /time (2-D data, 1-D time)"))?;
    let ds = f.dataset(&file, data_name)?;
    let t: Vec<f64> = f
        .dataset(&file, time_name)?
        .read_raw::<f64>()
        .map_err(|e| f.hdf5(time_name, e))?;
    let shape = ds.shape();
    let channel_major = if shape[0] == t.len() {
        false
    } else if shape[1] == t.len() {
        true
    } else {
        return Err(f.err(format!(
            "/{time_name} has {} times, but /{data_name} is {} x {}",
            t.len(),
            shape[0],
            shape[1]
        )));
    };
    let (n_samples, n_channels) = Matrix::dims(&ds, channel_major);
    let span = match t.as_slice() {
        [a, .., b] => b - a,
        _ => f64::NAN,
    };
    if span.is_nan() || span <= 0.0 {
        return Err(f.err(format!("/{time_name} has fewer than two increasing times")));
    }
    let unit = seconds_per_unit(t[0]);
    let fs = (t.len() - 1) as f64 / ((t[t.len() - 1] - t[0]) * unit);
    let mut warnings = Vec::new();
    if shape[0] == shape[1] {
        warnings.push(format!("/{data_name} is square: read as time x channel"));
    }
    let distances = match file.dataset("distance") {
        Ok(d) => Some(d.read_raw::<f64>().map_err(|e| f.hdf5("distance", e))?),
        Err(_) => None,
    };
    let (first_distance, channel_spacing, distance_stated) = match distances {
        Some(d) if d.len() as u64 == n_channels => {
            let (first, step) = spacing_of(&d).map_err(|m| f.err(format!("/distance: {m}")))?;
            (first, step, true)
        }
        Some(d) => {
            return Err(f.err(format!(
                "/distance has {} values for {n_channels} channels",
                d.len()
            )))
        }
        None => (0.0, 1.0, false),
    };
    let header = Header {
        path: path.into(),
        format: Format::SimpleH5,
        sampling_rate: fs,
        n_samples,
        n_channels,
        channel_spacing,
        first_distance,
        start_us: (t[0] * unit * 1e6).round() as i64,
        units: "unknown".into(),
        layout: format!(
            "/{data_name} ({})",
            if channel_major {
                "channel x time"
            } else {
                "time x channel"
            }
        ),
        time_source: format!("/{time_name}[0]"),
        warnings,
        part: 0,
        distance_stated,
        facts: vec![],
        distances: None,
        sample_type: None,
    };
    Matrix::new(&f, ds, channel_major, 1.0, header)
}
