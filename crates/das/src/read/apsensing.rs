//! AP Sensing (file version 10): `/DAS` (time x channel) with `DAQ/`, `Metadata/`,
//! `ProcessingServer/` header datasets.
//!
//! | fact | field |
//! |---|---|
//! | sampling rate | `ProcessingServer/DataRate` |
//! | channel spacing | (`DAQ/PositionEnd` - `DAQ/PositionStart`) / channels (`ProcessingServer/SpatialSampling` is 0.08 % off the stored extent) |
//! | first channel | `DAQ/PositionStart` |
//! | start (UTC) | `Metadata/Timestamp`; `Metadata/Timezone` must be UTC |

use std::path::Path;

use hdf5::File;

use super::h5::{parse_iso_utc, Fields, Matrix};
use super::{Format, Header};
use crate::DasError;

pub(super) fn open(path: &Path, file: File) -> Result<Matrix, DasError> {
    let f = Fields {
        path,
        format: Format::ApSensing,
    };
    let fs = f.ds_num(&file, "ProcessingServer/DataRate")?;
    let start = f.ds_num(&file, "DAQ/PositionStart")?;
    let end = f.ds_num(&file, "DAQ/PositionEnd")?;
    let zone = f
        .ds_str(&file, "Metadata/Timezone")
        .unwrap_or_else(|_| "UTC".into());
    if !matches!(zone.as_str(), "UTC" | "UTC+0" | "UTC+00:00") {
        return Err(f.err(format!(
            "Metadata/Timezone is {zone:?}; only UTC files are understood"
        )));
    }
    let stamp = f.ds_str(&file, "Metadata/Timestamp")?;
    let start_us = parse_iso_utc(&stamp)
        .ok_or_else(|| f.err(format!("unparsable Metadata/Timestamp {stamp:?}")))?;
    let ds = f.dataset(&file, "DAS")?;
    let (n_samples, n_channels) = Matrix::dims(&ds, false);
    let kind = f
        .ds_str(&file, "ProcessingServer/DataType")
        .unwrap_or_else(|_| "unknown".into());
    let header = Header {
        path: path.into(),
        format: Format::ApSensing,
        sampling_rate: fs,
        n_samples,
        n_channels,
        channel_spacing: (end - start) / n_channels.max(1) as f64,
        first_distance: start,
        start_us,
        units: kind,
        layout: "/DAS (time x channel)".into(),
        time_source: "Metadata/Timestamp".into(),
        warnings: vec![],
        part: 0,
        distance_stated: true,
        facts: file
            .group("ProcessingServer")
            .map(|g| {
                f.facts(
                    &g,
                    &[
                        ("gauge_length", "GaugeLength", "m"),
                        ("instrument", "SerialNumber", ""),
                    ],
                )
            })
            .unwrap_or_default(),
        distances: None,
        sample_type: None,
    };
    Matrix::new(&f, ds, false, 1.0, header)
}
