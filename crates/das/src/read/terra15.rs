//! Terra15 Treble (file versions 4-6): `data_product/data` (time x channel) with per-sample
//! `gps_time` (else `posix_time`).
//!
//! | fact | field |
//! |---|---|
//! | sampling rate | from the time vector: (n - 1) / (t_last - t_first); the `dt_computer` attribute is off by 0.06 % |
//! | channel spacing | `@dx` |
//! | first channel | `@sensing_range_start` |
//! | start (UTC) | `gps_time[0]` (else `posix_time[0]`) |
//! | samples | the written part: an unfilled last block has zero times and is left out |

use std::path::Path;

use hdf5::File;

use super::h5::{Fields, Matrix};
use super::{Format, Header};
use crate::DasError;

pub(super) fn open(path: &Path, file: File) -> Result<Matrix, DasError> {
    let f = Fields {
        path,
        format: Format::Terra15,
    };
    let version = f.attr_num(&file, "file_version")? as i64;
    let node = match version {
        4 => f.attr_str(&file, "data_product")?,
        5 | 6 => "data_product".to_string(),
        v => return Err(f.err(format!("unsupported Terra15 file_version {v}"))),
    };
    let (time_name, time_source) = if file.link_exists(&format!("{node}/gps_time")) {
        (format!("{node}/gps_time"), "gps_time")
    } else {
        (format!("{node}/posix_time"), "posix_time")
    };
    let t: Vec<f64> = f
        .dataset(&file, &time_name)?
        .read_raw::<f64>()
        .map_err(|e| f.hdf5(&time_name, e))?;
    let written: Vec<f64> = t.iter().copied().take_while(|v| *v > 0.0).collect();
    if written.len() < 2 || written[written.len() - 1] <= written[0] {
        return Err(f.err(format!("{time_name} has fewer than two increasing times")));
    }
    let fs = (written.len() - 1) as f64 / (written[written.len() - 1] - written[0]);
    let ds = f.dataset(&file, &format!("{node}/data"))?;
    let (_, n_channels) = Matrix::dims(&ds, false);
    let header = Header {
        path: path.into(),
        format: Format::Terra15,
        sampling_rate: fs,
        n_samples: written.len() as u64,
        n_channels,
        channel_spacing: f.attr_num(&file, "dx")?,
        first_distance: f.attr_num(&file, "sensing_range_start")?,
        start_us: (written[0] * 1e6).round() as i64,
        units: f
            .attr_str(&file, "data_product_units")
            .unwrap_or_else(|_| "unknown".into()),
        layout: format!("/{node}/data (time x channel)"),
        time_source: time_source.into(),
        warnings: vec![],
        part: 0,
        distance_stated: true,
        facts: f.facts(
            &file,
            &[
                ("gauge_length", "gauge_length", "m"),
                ("instrument", "serial_number", ""),
            ],
        ),
        distances: None,
        sample_type: None,
    };
    Matrix::new(&f, ds, false, 1.0, header)
}
