//! Febus A1: `/<device>/Source1/Zone1/<dataset>` shaped blocks x time x channel, one time stamp
//! per block in `/<device>/Source1/time`, header values as numeric attributes of `Zone1`.
//!
//! | fact | field |
//! |---|---|
//! | sampling rate | `Spacing[1]` (ms) or `1 / SamplingRate`, whichever makes a block last one block period (`1000 / BlockRate` s, else the mean step of `time`); files disagree on which is right |
//! | channel spacing | `Spacing[0]` (m) |
//! | first channel | `Origin[0] + Extent[0] x Spacing[0]` |
//! | start (UTC) | `time[0] + Origin[1]` (ms) + the rows trimmed from the start of a block |
//! | block overlap | `BlockOverlap` (% of the block period) when present, else rows beyond one block period; trimmed half at each end of every block, so the blocks join into one regular stream |
//!
//! A zone whose dataset is a spectral product (its name says `PSD` / `dB`, e.g. `febus_2.h5`:
//! `PSD [dB re 1 nStrain/sqrt(Hz)]`, 1 block x 3001 frequency bins of 0.95 Hz x 101 positions)
//! holds no time series and is refused with that explanation. Block time stamps that wander
//! more than 1.5 samples from the regular axis are reported as a warning.

use std::path::{Path, PathBuf};

use hdf5::{Dataset, File, Group};
use ndarray::s;

use super::h5::Fields;
use super::{DasReader, Format, Header};
use crate::DasError;

/// `(source group, data dataset)` paths of the first Febus zone in `f`.
pub(super) fn zone_path(f: &File) -> Option<(String, String)> {
    for dev in f.member_names().ok()? {
        let source = format!("{dev}/Source1");
        let zone = format!("{source}/Zone1");
        if !(f.link_exists(&zone) && f.link_exists(&format!("{source}/time"))) {
            continue;
        }
        let names = f.group(&zone).ok()?.member_names().ok()?;
        if let [name] = names.as_slice() {
            return Some((source, format!("{zone}/{name}")));
        }
    }
    None
}

fn attr_vec(g: &Group, name: &str) -> Option<Vec<f64>> {
    g.attr(name).ok()?.read_raw::<f64>().ok()
}

pub(super) struct Febus {
    path: PathBuf,
    dataset: Dataset,
    header: Header,
    /// Rows skipped at the start of every block (half the overlap).
    trim: usize,
    /// Rows kept per block.
    keep: usize,
}

pub(super) fn open(path: &Path, file: File) -> Result<Febus, DasError> {
    let f = Fields {
        path,
        format: Format::Febus,
    };
    let (source_path, data_path) = zone_path(&file)
        .ok_or_else(|| f.err("no <device>/Source1/Zone1 with one dataset and a time vector"))?;
    let zone = file
        .group(&format!("{source_path}/Zone1"))
        .map_err(|e| f.hdf5(format_args!("{source_path}/Zone1"), e))?;
    let dataset = f.dataset(&file, &data_path)?;
    let stored = super::h5::check_sample_type(&f, &dataset)?;
    let name = data_path.rsplit('/').next().unwrap_or_default().to_string();
    let shape = dataset.shape();
    if shape.len() != 3 {
        return Err(f.err(format!(
            "`{data_path}` has {} dimensions, expected blocks x time x channel",
            shape.len()
        )));
    }
    let (blocks, rows, channels) = (shape[0], shape[1], shape[2]);
    if rows == 0 || channels == 0 {
        return Err(f.err(format!(
            "`{data_path}` has blocks of {rows} rows x {channels} channels: no samples"
        )));
    }
    if name.contains("PSD") || name.contains("dB") {
        return Err(f.err(format!(
            "`{name}` is a power spectral density product ({blocks} block(s) x {rows} frequency bins x {channels} positions, in dB), not a time series: `cryocube das` needs the strain or strain-rate samples a Febus A1 records"
        )));
    }
    let need =
        |n: &str| attr_vec(&zone, n).ok_or_else(|| f.err(format!("missing attribute `Zone1/{n}`")));
    let spacing = need("Spacing")?;
    let origin = need("Origin")?;
    let extent = need("Extent")?;
    if spacing.len() < 2 || origin.len() < 2 || extent.is_empty() {
        return Err(f.err("Spacing, Origin or Extent has too few values"));
    }
    let times: Vec<f64> = file
        .dataset(&format!("{source_path}/time"))
        .and_then(|d| d.read_raw::<f64>())
        .map_err(|e| f.hdf5(format_args!("{source_path}/time"), e))?;
    if times.len() < blocks || blocks == 0 {
        return Err(f.err(format!(
            "{} block time stamps for {blocks} blocks",
            times.len()
        )));
    }
    let one = |n: &str| attr_vec(&zone, n).and_then(|v| v.first().copied());
    let rate = one("SamplingRate").unwrap_or(0.0);
    // Block period: BlockRate (mHz) when written, else the mean step between block stamps.
    let period = match one("BlockRate") {
        Some(br) if br > 0.0 => Some(1000.0 / br),
        _ if blocks > 1 => Some((times[blocks - 1] - times[0]) / (blocks - 1) as f64),
        _ => None,
    };
    let mut candidates = vec![spacing[1] / 1000.0];
    if rate > 0.0 {
        candidates.push(1.0 / rate);
    }
    let dt = match period {
        Some(p) => candidates
            .iter()
            .copied()
            .filter(|c| c.is_finite() && *c > 0.0)
            .min_by(|a, b| {
                ((a * rows as f64) - p)
                    .abs()
                    .total_cmp(&((b * rows as f64) - p).abs())
            })
            .ok_or_else(|| f.err("no usable time step in Spacing or SamplingRate"))?,
        None => candidates[0],
    };
    let keep = match (one("BlockOverlap"), period) {
        (Some(ov), _) if ov > 0.0 => (rows as f64 / (1.0 + ov / 100.0)).round() as usize,
        (_, Some(p)) => ((p / dt).round() as usize).min(rows),
        _ => rows,
    }
    .clamp(1, rows);
    let trim = (rows - keep) / 2;
    let start_s = times[0] + origin[1] / 1000.0 + trim as f64 * dt;
    let mut warnings = Vec::new();
    let drift = (0..blocks)
        .map(|k| (times[k] - (times[0] + (k * keep) as f64 * dt)).abs())
        .fold(0f64, f64::max);
    if drift > 1.5 * dt {
        warnings.push(format!(
            "block time stamps wander up to {:.1} ms ({:.1} samples) from the regular {:.3} Hz axis; times follow the first block",
            drift * 1e3,
            drift / dt,
            1.0 / dt
        ));
    }
    if trim > 0 {
        warnings.push(format!(
            "blocks overlap: {} of {rows} rows per block are kept (rows {trim}..{})",
            keep,
            trim + keep
        ));
    }
    let header = Header {
        path: path.into(),
        format: Format::Febus,
        sampling_rate: 1.0 / dt,
        n_samples: (blocks * keep) as u64,
        n_channels: channels as u64,
        channel_spacing: spacing[0],
        first_distance: origin[0] + extent[0] * spacing[0],
        start_us: (start_s * 1e6).round() as i64,
        units: name.clone(),
        layout: format!("{data_path} (block x time x channel)"),
        time_source: format!("{source_path}/time"),
        warnings,
        part: 0,
        distance_stated: true,
        facts: vec![],
        distances: None,
        sample_type: Some(stored),
    };
    Ok(Febus {
        path: path.into(),
        dataset,
        header: header.check()?,
        trim,
        keep,
    })
}

impl DasReader for Febus {
    fn header(&self) -> &Header {
        &self.header
    }

    fn read_block(
        &mut self,
        s0: u64,
        n: usize,
        c0: u64,
        c1: u64,
        out: &mut [f32],
    ) -> Result<(), DasError> {
        let width = (c1 - c0) as usize;
        let (c0u, c1u) = (c0 as usize, c1 as usize);
        let mut s = s0 as usize;
        let end = s0 as usize + n;
        while s < end {
            let (b, r) = (s / self.keep, s % self.keep);
            let take = (self.keep - r).min(end - s);
            let row0 = self.trim + r;
            let a = self
                .dataset
                .read_slice_2d::<f32, _>(s![b, row0..row0 + take, c0u..c1u])
                .map_err(|e| DasError::Hdf5 {
                    path: self.path.clone(),
                    context: format!("reading samples {s0}..{}", s0 + n as u64),
                    source: e,
                })?;
            let at = (s - s0 as usize) * width;
            for (o, v) in out[at..at + take * width].iter_mut().zip(a.iter()) {
                *o = *v;
            }
            s += take;
        }
        Ok(())
    }
}
