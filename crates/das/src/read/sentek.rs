//! Sentek `.das`: little-endian float32 throughout, no magic number. Six header values
//! (channels, samples, sampling interval in ns, strain-rate flag, trigger position, decimation
//! factor), then each channel's distance, each sample's time offset, and the samples
//! (time-major).
//!
//! | fact | field |
//! |---|---|
//! | sampling rate | 1e9 / header sampling interval (ns), checked against the time offsets' slope |
//! | channel spacing, first channel | the distance table: kept as it is when uneven (the distance coordinate) |
//! | start (UTC) | the file name only (`..._YYYYMMDDhhmmssmmm.das`); no time zone stated, taken as UTC |
//! | data type | strain rate when the header flag is 1 |
//!
//! The table offsets are relative to the header: each table follows the previous one (DASCore's
//! reader seeks to absolute positions and misreads the file).
//!
//! Detection: the `.das` name is only a hint; the header must give whole positive counts and a
//! file size of exactly 24 + 4 x (channels + samples + channels x samples) bytes.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::{Format, Header};
use crate::DasError;

const HEADER_BYTES: u64 = 24;

/// (channels, samples) of a plausible Sentek header for a file of `size` bytes.
fn counts(head: &[f32; 6], size: u64) -> Option<(u64, u64)> {
    let whole = |v: f32| v.is_finite() && v >= 1.0 && v.fract() == 0.0 && v < 1e9;
    if !(whole(head[0]) && whole(head[1]) && head[2].is_finite() && head[2] > 0.0) {
        return None;
    }
    let (nc, ns) = (head[0] as u64, head[1] as u64);
    (size == HEADER_BYTES + 4 * (nc + ns + nc * ns)).then_some((nc, ns))
}

fn read_floats(file: &File, at: u64, n: usize) -> std::io::Result<Vec<f32>> {
    let mut bytes = vec![0u8; n * 4];
    file.read_exact_at(&mut bytes, at)?;
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

fn head_of(file: &File) -> Option<[f32; 6]> {
    let v = read_floats(file, 0, 6).ok()?;
    v.try_into().ok()
}

/// True for a `.das` file whose header and size agree.
pub(super) fn looks_like_sentek(path: &Path) -> bool {
    if path.extension().and_then(|e| e.to_str()) != Some("das") {
        return false;
    }
    let Ok(file) = File::open(path) else {
        return false;
    };
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    head_of(&file).is_some_and(|h| counts(&h, size).is_some())
}

/// `..._YYYYMMDDhhmmssmmm.das` -> UTC µs.
fn time_from_name(path: &Path) -> Option<i64> {
    let stem = path.file_stem()?.to_str()?;
    let digits = stem.rsplit('_').next()?;
    if digits.len() != 17 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = chrono::NaiveDateTime::parse_from_str(&digits[..14], "%Y%m%d%H%M%S").ok()?;
    let ms: i64 = digits[14..].parse().ok()?;
    Some(t.and_utc().timestamp_micros() + ms * 1000)
}

/// An open Sentek file.
pub(super) struct Sentek {
    file: File,
    data_start: u64,
    n_channels: u64,
    header: Header,
    buf: Vec<u8>,
}

impl Sentek {
    pub(super) fn open(path: &Path) -> Result<Sentek, DasError> {
        let bad = |m: String| DasError::Header {
            path: path.into(),
            format: Format::Sentek.name(),
            message: m,
        };
        let io = |source| DasError::File {
            path: path.into(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        let head = head_of(&file).ok_or_else(|| bad(format!("{size} bytes: no 24-byte header")))?;
        let (nc, ns) = counts(&head, size).ok_or_else(|| {
            bad(format!(
                "header ({} channels, {} samples, interval {} ns) does not match the file's {size} bytes (24 + 4 x (channels + samples + channels x samples)): truncated, or not a Sentek file",
                head[0], head[1], head[2]
            ))
        })?;
        let distances: Vec<f64> = read_floats(&file, HEADER_BYTES, nc as usize)
            .map_err(io)?
            .into_iter()
            .map(f64::from)
            .collect();
        let offsets = read_floats(&file, HEADER_BYTES + 4 * nc, ns as usize).map_err(io)?;
        let mut warnings = Vec::new();
        let mut fs = 1e9 / head[2] as f64;
        // The per-sample time offsets (ms) are a second measure of the rate.
        if ns >= 2 {
            let span_ms = (offsets[ns as usize - 1] - offsets[0]) as f64;
            let from_offsets = (ns - 1) as f64 * 1e3 / span_ms;
            if !(from_offsets.is_finite() && (from_offsets / fs - 1.0).abs() < 1e-3) {
                warnings.push(format!(
                    "the header's sampling interval ({} ns, {fs:.3} Hz) disagrees with the time offsets ({from_offsets:.3} Hz); the header is used",
                    head[2]
                ));
            }
        }
        if head[5] != 1.0 {
            warnings.push(format!(
                "decimation factor {} in the header; the sampling interval is taken as stated",
                head[5]
            ));
        }
        if !(fs.is_finite() && fs > 0.0) {
            fs = f64::NAN; // refused by Header::check with the value
        }
        let start_us = time_from_name(path).ok_or_else(|| {
            bad("no start time: Sentek files carry it only in their name (..._YYYYMMDDhhmmssmmm.das)".into())
        })?;
        warnings.push("start time from the file name; no time zone is stated, taken as UTC".into());
        if distances
            .windows(2)
            .any(|w| w[1].partial_cmp(&w[0]) != Some(std::cmp::Ordering::Greater))
        {
            return Err(bad(
                "the channel distance table is not increasing".to_string()
            ));
        }
        let (uniform, first, spacing) = match super::spacing_of(&distances) {
            Ok((first, step)) => (true, first, step),
            Err(_) => (
                false,
                distances[0],
                (distances[nc as usize - 1] - distances[0]) / (nc.max(2) - 1) as f64,
            ),
        };
        let mut facts = vec![];
        if head[3] == 1.0 {
            facts.push(("data_type".to_string(), "strain rate".to_string()));
        }
        let header = Header {
            path: path.into(),
            format: Format::Sentek,
            sampling_rate: fs,
            n_samples: ns,
            n_channels: nc,
            channel_spacing: if nc == 1 { 1.0 } else { spacing },
            first_distance: first,
            start_us,
            units: "unknown".into(),
            layout: format!("float32 {ns} samples x {nc} channels (time-major)"),
            time_source: "file name".into(),
            warnings,
            part: 0,
            distance_stated: true,
            facts,
            distances: (!uniform).then_some(distances),
            sample_type: None,
        }
        .check()?;
        Ok(Sentek {
            file,
            data_start: HEADER_BYTES + 4 * (nc + ns),
            n_channels: nc,
            header,
            buf: Vec::new(),
        })
    }
}

impl super::DasReader for Sentek {
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
        self.header.check_block(s0, n, c0, c1)?;
        let err = |m: String| self.header.read_error(s0, n, m);
        // Rows are contiguous: one read, then the channels wanted.
        let row = self.n_channels as usize * 4;
        let width = (c1 - c0) as usize;
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(n * row, 0);
        self.file
            .read_exact_at(&mut buf, self.data_start + s0 * row as u64)
            .map_err(|e| err(e.to_string()))?;
        for (t, r) in buf.chunks_exact(row).enumerate() {
            for (k, c) in (c0 as usize..c1 as usize).enumerate() {
                let b = &r[c * 4..c * 4 + 4];
                out[t * width + k] = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        self.buf = buf;
        Ok(())
    }
}
