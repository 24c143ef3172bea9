//! PRODML 2.0 / 2.1 (any vendor): `/Acquisition/Raw[0]/RawData` with `RawDataTime`.
//!
//! | fact | field |
//! |---|---|
//! | sampling rate | `Raw[0]@OutputDataRate`, else from `RawDataTime` spacing |
//! | channel spacing | `Acquisition@SpatialSamplingInterval` |
//! | first channel | `StartLocusIndex` (of `Raw[0]`, else `Acquisition`) x spacing |
//! | start (UTC) | `RawData@PartStartTime`, else `RawDataTime@StartTime`, else `Acquisition@MeasurementStartTime` |
//! | axis order | `RawData@Dimensions` (`time, locus` or `locus, time`) |

use std::path::Path;

use hdf5::File;

use super::h5::{parse_iso_utc, Fields, Matrix};
use super::{Format, Header};
use crate::DasError;

pub(super) fn open(path: &Path, file: File) -> Result<Matrix, DasError> {
    let f = Fields {
        path,
        format: Format::Prodml,
    };
    let acq = file
        .group("Acquisition")
        .map_err(|e| f.hdf5("Acquisition", e))?;
    let raw = file
        .group("Acquisition/Raw[0]")
        .map_err(|e| f.hdf5("Acquisition/Raw[0]", e))?;
    let ds = f.dataset(&file, "Acquisition/Raw[0]/RawData")?;
    let channel_major = dimensions(&ds)
        .map(|d| d.first().is_some_and(|x| x.contains("locus")))
        .unwrap_or(false);
    let (n_samples, n_channels) = Matrix::dims(&ds, channel_major);
    let times = file.dataset("Acquisition/Raw[0]/RawDataTime").ok();
    let fs = match f.attr_num(&raw, "OutputDataRate") {
        Ok(v) => v,
        Err(e) => {
            let t = times
                .as_ref()
                .and_then(|t| t.read_raw::<i64>().ok())
                .unwrap_or_default();
            if t.len() < 2 || t[t.len() - 1] <= t[0] {
                return Err(e);
            }
            (t.len() - 1) as f64 * 1e6 / (t[t.len() - 1] - t[0]) as f64
        }
    };
    let spacing = f.attr_num(&acq, "SpatialSamplingInterval")?;
    let start_locus = f
        .attr_num(&raw, "StartLocusIndex")
        .or_else(|_| f.attr_num(&acq, "StartLocusIndex"))?;
    let mut start = None;
    let sources: [(Option<&hdf5::Location>, &str, &str); 3] = [
        (Some(&ds), "PartStartTime", "RawData@PartStartTime"),
        (
            times.as_ref().map(|t| &**t as &hdf5::Location),
            "StartTime",
            "RawDataTime@StartTime",
        ),
        (
            Some(&acq),
            "MeasurementStartTime",
            "Acquisition@MeasurementStartTime",
        ),
    ];
    for (loc, name, label) in sources {
        if let Some(t) = loc
            .and_then(|l| f.attr_str(l, name).ok())
            .and_then(|s| parse_iso_utc(&s))
        {
            start = Some((t, label));
            break;
        }
    }
    let (start_us, time_source) = start
        .ok_or_else(|| f.err("no start time (PartStartTime, StartTime or MeasurementStartTime)"))?;
    let header = Header {
        path: path.into(),
        format: Format::Prodml,
        sampling_rate: fs,
        n_samples,
        n_channels,
        channel_spacing: spacing,
        first_distance: start_locus * spacing,
        start_us,
        units: f
            .attr_str(&raw, "RawDataUnit")
            .unwrap_or_else(|_| "unknown".into()),
        layout: format!(
            "/Acquisition/Raw[0]/RawData ({})",
            if channel_major {
                "locus x time"
            } else {
                "time x locus"
            }
        ),
        time_source: time_source.into(),
        warnings: vec![],
        part: 0,
        distance_stated: true,
        facts: f.facts(
            &acq,
            &[
                ("gauge_length", "GaugeLength", "m"),
                ("instrument", "VendorCode", ""),
            ],
        ),
        distances: None,
        sample_type: None,
    };
    Matrix::new(&f, ds, channel_major, 1.0, header)
}

/// `Dimensions` is an array of strings in 2.0 files and a single comma-separated string in some
/// 2.1 writers.
fn dimensions(ds: &hdf5::Dataset) -> Option<Vec<String>> {
    let attr = ds.attr("Dimensions").ok()?;
    let list = super::h5::strings_of(&attr)?;
    Some(
        list.iter()
            .flat_map(|s| s.split(','))
            .map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty())
            .collect(),
    )
}
