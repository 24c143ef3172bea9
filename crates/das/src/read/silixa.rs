//! Silixa iDAS HDF5, the Rhonegletscher / CryoCube layout: `/Acoustic` (samples x channels),
//! every header value a string attribute of that dataset.
//!
//! | fact | field |
//! |---|---|
//! | sampling rate | `SamplingFrequency[Hz]` |
//! | channel spacing | `SpatialResolution[m]` x `Fibre Length Multiplier` |
//! | first channel | `Start Distance (m)` |
//! | start (UTC) | `ISO8601 Timestamp` (with its offset), else `GPSTimeStamp` (`dd/mm/yyyy hh:mm:ss.fff (UTC)`); never `CPUTimeStamp`, which drifts |

use std::path::Path;

use hdf5::File;

use super::h5::{parse_iso_utc, Fields, Matrix};
use super::{Format, Header};
use crate::DasError;

pub(super) fn open(path: &Path, file: File) -> Result<Matrix, DasError> {
    let f = Fields {
        path,
        format: Format::Silixa,
    };
    let ds = f.dataset(&file, "Acoustic")?;
    let loc = &ds;
    let fs = f.attr_num(loc, "SamplingFrequency[Hz]")?;
    let resolution = f.attr_num(loc, "SpatialResolution[m]")?;
    let multiplier = f.attr_num(loc, "Fibre Length Multiplier").unwrap_or(1.0);
    let first = f.attr_num(loc, "Start Distance (m)")?;
    let (start_us, time_source) = match f
        .attr_str(loc, "ISO8601 Timestamp")
        .ok()
        .and_then(|s| parse_iso_utc(&s))
    {
        Some(t) => (t, "ISO8601 Timestamp"),
        None => {
            let s = f.attr_str(loc, "GPSTimeStamp")?;
            (
                parse_gps_stamp(&s)
                    .ok_or_else(|| f.err(format!("unparsable GPSTimeStamp {s:?}")))?,
                "GPSTimeStamp",
            )
        }
    };
    let output = f.attr_str(loc, "Acoustic Output").unwrap_or_default();
    let (n_samples, n_channels) = Matrix::dims(&ds, false);
    let header = Header {
        path: path.into(),
        format: Format::Silixa,
        sampling_rate: fs,
        n_samples,
        n_channels,
        channel_spacing: resolution * multiplier,
        first_distance: first,
        start_us,
        units: format!("iDAS counts ({output} output)"),
        layout: "/Acoustic (time x channel)".into(),
        time_source: time_source.into(),
        warnings: vec![],
        part: 0,
        distance_stated: true,
        facts: f.facts(loc, &[("gauge_length", "GaugeLength", "m")]),
        distances: None,
        sample_type: None,
    };
    Matrix::new(&f, ds, false, 1.0, header)
}

/// `22/09/2023 18:29:26.158 (UTC)` -> µs.
fn parse_gps_stamp(s: &str) -> Option<i64> {
    let core = s.trim().trim_end_matches("(UTC)").trim();
    chrono::NaiveDateTime::parse_from_str(core, "%d/%m/%Y %H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc().timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gps_stamp_is_utc() {
        assert_eq!(
            parse_gps_stamp("22/09/2023 18:29:26.158 (UTC)"),
            parse_iso_utc("2023-09-22T19:29:26.158+01:00")
        );
    }
}
