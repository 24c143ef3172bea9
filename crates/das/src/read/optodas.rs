//! ASN OptoDAS (file version 7-8): `/data` (time x channel) with `header/`, `demodSpec/`.
//!
//! | fact | field |
//! |---|---|
//! | sampling rate | 1 / `header/dt` |
//! | channel spacing | `header/dx` x `demodSpec/roiDec[0]` (the spatial decimation; `dx` alone is the undecimated 1.02 m) |
//! | first channel | `header/channels[0]` x `header/dx` |
//! | start (UTC) | `header/time` (POSIX seconds) |
//! | scale | `header/dataScale` |

use std::path::Path;

use hdf5::File;

use super::h5::{Fields, Matrix};
use super::{Format, Header};
use crate::DasError;

pub(super) fn open(path: &Path, file: File) -> Result<Matrix, DasError> {
    let f = Fields {
        path,
        format: Format::OptoDas,
    };
    let dt = f.ds_num(&file, "header/dt")?;
    let dx = f.ds_num(&file, "header/dx")?;
    let dec = f.ds_num(&file, "demodSpec/roiDec").unwrap_or(1.0);
    let first_channel = f.ds_num(&file, "header/channels")?;
    let t0 = f.ds_num(&file, "header/time")?;
    let scale = f.ds_num(&file, "header/dataScale").unwrap_or(1.0);
    let ds = f.dataset(&file, "data")?;
    let (n_samples, n_channels) = Matrix::dims(&ds, false);
    let header = Header {
        path: path.into(),
        format: Format::OptoDas,
        sampling_rate: 1.0 / dt,
        n_samples,
        n_channels,
        channel_spacing: dx * dec,
        first_distance: first_channel * dx,
        start_us: (t0 * 1e6).round() as i64,
        units: f
            .ds_str(&file, "header/unit")
            .unwrap_or_else(|_| "unknown".into()),
        layout: "/data (time x channel)".into(),
        time_source: "header/time".into(),
        warnings: vec![],
        part: 0,
        distance_stated: true,
        facts: file
            .group("header")
            .map(|h| {
                f.facts(
                    &h,
                    &[
                        ("gauge_length", "gaugeLength", "m"),
                        ("instrument", "instrument", ""),
                    ],
                )
            })
            .unwrap_or_default(),
        distances: None,
        sample_type: None,
    };
    Matrix::new(&f, ds, false, scale as f32, header)
}
