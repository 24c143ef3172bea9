//! Neubrex NEUBRESCOPE DAS HDF5: `/Acoustic` (time x channel) like Silixa's, but with
//! Neubrex's own attribute names on that dataset.
//!
//! | fact | field |
//! |---|---|
//! | sampling rate | `InterrogationRate(Hz)` (checked against `TimeSamplingInterval(seconds)`) |
//! | channel spacing | `SpatialSamplingInterval` (unit `SpatialSamplingIntervalUnit`, m) |
//! | first channel | `StartPosition` (unit `StartStopPositionUnit`, m) |
//! | start (UTC) | `ISO8601TimeStamp` (with its offset), else `GPSTimeStamp(UTC)`; never `CPUTimeStamp(UTC)` |
//! | units | `DataPhysicalUnit` (`DataType`) |

use std::path::Path;

use hdf5::File;

use super::h5::{parse_iso_utc, Fields, Matrix};
use super::{Format, Header};
use crate::DasError;

pub(super) fn open(path: &Path, file: File) -> Result<Matrix, DasError> {
    let f = Fields {
        path,
        format: Format::Neubrex,
    };
    let ds = f.dataset(&file, "Acoustic")?;
    let fs = f.attr_num(&ds, "InterrogationRate(Hz)")?;
    let mut warnings = Vec::new();
    if let Ok(dt) = f.attr_num(&ds, "TimeSamplingInterval(seconds)") {
        if dt > 0.0 && ((1.0 / dt) - fs).abs() > 1e-6 * fs {
            warnings.push(format!(
                "InterrogationRate(Hz) {fs} and TimeSamplingInterval(seconds) {dt} disagree; the rate is used"
            ));
        }
    }
    for unit in ["SpatialSamplingIntervalUnit", "StartStopPositionUnit"] {
        if let Ok(u) = f.attr_str(&ds, unit) {
            if u != "m" {
                return Err(f.err(format!("`{unit}` is {u:?}; only metres are understood")));
            }
        }
    }
    let spacing = f.attr_num(&ds, "SpatialSamplingInterval")?;
    let first = f.attr_num(&ds, "StartPosition")?;
    let (start_us, time_source) = match f
        .attr_str(&ds, "ISO8601TimeStamp")
        .ok()
        .and_then(|s| parse_iso_utc(&s))
    {
        Some(t) => (t, "ISO8601TimeStamp"),
        None => {
            let s = f.attr_str(&ds, "GPSTimeStamp(UTC)")?;
            (
                parse_iso_utc(&s)
                    .ok_or_else(|| f.err(format!("unparsable GPSTimeStamp(UTC) {s:?}")))?,
                "GPSTimeStamp(UTC)",
            )
        }
    };
    let unit = f.attr_str(&ds, "DataPhysicalUnit").unwrap_or_default();
    let kind = f.attr_str(&ds, "DataType").unwrap_or_default();
    let (n_samples, n_channels) = Matrix::dims(&ds, false);
    let header = Header {
        path: path.into(),
        format: Format::Neubrex,
        sampling_rate: fs,
        n_samples,
        n_channels,
        channel_spacing: spacing,
        first_distance: first,
        start_us,
        units: format!("{unit} ({kind})"),
        layout: "/Acoustic (time x channel)".into(),
        time_source: time_source.into(),
        warnings,
        part: 0,
        distance_stated: true,
        facts: vec![],
        distances: None,
        sample_type: None,
    };
    Matrix::new(&f, ds, false, 1.0, header)
}
