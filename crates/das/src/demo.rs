//! A synthetic Rhonegletscher-like record for `cryocube demo` and the benchmark.
//!
//! Files are written in the Silixa iDAS `/Acoustic` layout with the same string attributes as
//! the real instrument (start time in `ISO8601 Timestamp` at +02:00, as at the glacier), so the
//! demo exercises the real reader, the multi-file stream and the spectra. The signal is a
//! function of absolute time, hence continuous across file boundaries: a 25 Hz tone on every
//! channel, a 60 Hz tone on the middle third of the fibre, icequake-like 15-40 Hz wavelets
//! that start at a point and travel along the fibre at 1800 m/s, and white noise.

use std::path::{Path, PathBuf};

use hdf5::types::VarLenUnicode;
use ndarray::Array2;
use rayon::prelude::*;

use crate::DasError;

/// Shape of a synthetic record.
#[derive(Clone, Debug)]
pub struct SyntheticRecord {
    /// Files to write.
    pub files: usize,
    /// Seconds per file.
    pub seconds_per_file: u32,
    /// Channels along the fibre.
    pub channels: usize,
    /// Samples per second.
    pub sampling_rate: u32,
    /// Metres between channels.
    pub spacing_m: f64,
    /// UTC start, µs since 1970.
    pub start_us: i64,
}

impl Default for SyntheticRecord {
    /// 4 files of 30 s, 192 channels at 4 m, 1 kHz, from 2020-07-22T00:00:00Z.
    fn default() -> Self {
        SyntheticRecord {
            files: 4,
            seconds_per_file: 30,
            channels: 192,
            sampling_rate: 1000,
            spacing_m: 4.0,
            start_us: 1_595_376_000_000_000,
        }
    }
}

/// Icequake sources: (time s, position m, dominant frequency Hz, amplitude).
fn events(total_s: f64, length_m: f64) -> Vec<(f64, f64, f64, f64)> {
    let mut out = Vec::new();
    let mut t = 3.7;
    let mut i = 0u32;
    while t < total_s {
        let pos = length_m * (0.15 + 0.7 * ((i as f64 * 0.618_034) % 1.0));
        out.push((
            t,
            pos,
            15.0 + (i % 6) as f64 * 5.0,
            6.0 + (i % 3) as f64 * 4.0,
        ));
        t += 6.3 + (i % 4) as f64 * 2.1;
        i += 1;
    }
    out
}

/// Deterministic noise in [-1, 1): a hash of (sample, channel), so files can be made in any
/// order and in parallel and still be the same record.
fn noise(s: u64, c: u64) -> f32 {
    let mut x = s.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ c.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    x ^= x >> 33;
    x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    x ^= x >> 33;
    (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0
}

impl SyntheticRecord {
    /// Writes the files into `dir` (created if missing) and returns their paths.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, DasError> {
        std::fs::create_dir_all(dir).map_err(|e| DasError::Unreadable {
            path: dir.into(),
            message: e.to_string(),
        })?;
        let n = self.seconds_per_file as usize * self.sampling_rate as usize;
        let fs = self.sampling_rate as f64;
        let total_s = (self.files as u32 * self.seconds_per_file) as f64;
        let length = self.spacing_m * self.channels as f64;
        let quakes = events(total_s, length);
        let mut paths = Vec::new();
        for f in 0..self.files {
            let s0 = (f * n) as u64;
            let mut values = vec![0f32; n * self.channels];
            values
                .par_chunks_mut(self.channels)
                .enumerate()
                .for_each(|(i, row)| {
                    let s = s0 + i as u64;
                    let t = s as f64 / fs;
                    let tone25 = (2.0 * std::f64::consts::PI * 25.0 * t).sin();
                    let tone60 = (2.0 * std::f64::consts::PI * 60.0 * t).sin();
                    for (c, v) in row.iter_mut().enumerate() {
                        let x = c as f64 * self.spacing_m;
                        let mut y = 0.8 * tone25 + 0.3 * noise(s, c as u64) as f64;
                        if (self.channels / 3..2 * self.channels / 3).contains(&c) {
                            y += 0.5 * tone60;
                        }
                        for &(te, xe, f0, amp) in &quakes {
                            let tau = t - te - (x - xe).abs() / 1800.0;
                            if tau.abs() < 0.15 {
                                // Ricker wavelet, decaying with distance from the source.
                                let a = (std::f64::consts::PI * f0 * tau).powi(2);
                                y += amp * (1.0 - 2.0 * a) * (-a).exp()
                                    / (1.0 + (x - xe).abs() / 150.0);
                            }
                        }
                        *v = y as f32;
                    }
                });
            let data =
                Array2::from_shape_vec((n, self.channels), values).expect("n x channels values");
            let start_us = self.start_us + (s0 as f64 * 1e6 / fs) as i64;
            let path = dir.join(format!(
                "SYNTHETIC_demo_UTC_{}.h5",
                stamp(start_us, "%Y%m%d_%H%M%S%.3f")
            ));
            self.write_file(&path, &data, start_us)
                .map_err(|e| DasError::Unreadable {
                    path: path.clone(),
                    message: format!("cannot write: {e}"),
                })?;
            paths.push(path);
        }
        Ok(paths)
    }

    fn write_file(&self, path: &Path, data: &Array2<f32>, start_us: i64) -> hdf5::Result<()> {
        let file = hdf5::File::create(path)?;
        let ds = file
            .new_dataset_builder()
            .with_data(data)
            .create("Acoustic")?;
        let local = stamp(start_us + 2 * 3_600_000_000, "%Y-%m-%dT%H:%M:%S%.3f+02:00");
        let attrs = [
            ("SamplingFrequency[Hz]", self.sampling_rate.to_string()),
            ("SpatialResolution[m]", format!("{}", self.spacing_m)),
            ("Fibre Length Multiplier", "1.000000".into()),
            ("Start Distance (m)", "0".into()),
            (
                "Stop Distance (m)",
                format!("{}", self.spacing_m * (self.channels - 1) as f64),
            ),
            ("ISO8601 Timestamp", local),
            (
                "GPSTimeStamp",
                stamp(start_us, "%d/%m/%Y %H:%M:%S%.3f (UTC)"),
            ),
            ("Acoustic Output", "Differential".into()),
            (
                "Comment",
                "SYNTHETIC record made by cryocube demo; not a measurement".into(),
            ),
        ];
        for (k, v) in attrs {
            let value: VarLenUnicode = v.parse().expect("attribute text has no NUL");
            ds.new_attr::<VarLenUnicode>()
                .create(k)?
                .write_scalar(&value)?;
        }
        Ok(())
    }
}

fn stamp(us: i64, fmt: &str) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.format(fmt).to_string())
        .unwrap_or_default()
}
