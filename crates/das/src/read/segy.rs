//! SEG-Y rev 1 / 2 (exploration DAS): a 3200-byte text header, a 400-byte binary header,
//! optional extended text headers, then one trace per channel (240-byte trace header +
//! samples). Big-endian unless a rev 2 file's byte-order constant says little-endian.
//!
//! | fact | field (bytes, 1-based) |
//! |---|---|
//! | sampling rate | 1e6 / binary header interval (3217-3218, µs); rev 2 extended interval (3269-3276, f64) when set |
//! | samples | binary header 3221-3222 (rev 2 extended 3261-3264 when set) |
//! | sample type | binary header format code 3225-3226: 1 IBM float, 2 int32, 3 int16, 5 IEEE float, 6 IEEE double, 8 int8 |
//! | channels | traces: (file size - headers) / trace size, which must divide exactly |
//! | channel spacing, first channel | not in SEG-Y: channel index, or `--spacing` / `--first-distance` |
//! | start (UTC) | first trace header: year (157-158), day of year (159-160), hour, minute, second (161-166) |
//!
//! SEG-Y has no magic number: a file is taken as SEG-Y only when its binary header is
//! plausible and the traces it implies fill the file exactly.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::{Format, Header};
use crate::DasError;

const TEXT: u64 = 3200;
const BINARY: u64 = 400;
const TRACE_HEADER: u64 = 240;

/// Sample encodings by SEG-Y format code.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Sample {
    Ibm,
    I32,
    I16,
    F32,
    F64,
    I8,
}

impl Sample {
    fn of_code(code: u16) -> Option<Sample> {
        Some(match code {
            1 => Sample::Ibm,
            2 => Sample::I32,
            3 => Sample::I16,
            5 => Sample::F32,
            6 => Sample::F64,
            8 => Sample::I8,
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            Sample::Ibm | Sample::I32 | Sample::F32 => 4,
            Sample::I16 => 2,
            Sample::F64 => 8,
            Sample::I8 => 1,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Sample::Ibm => "4-byte IBM float",
            Sample::I32 => "int32",
            Sample::I16 => "int16",
            Sample::F32 => "IEEE float32",
            Sample::F64 => "IEEE float64",
            Sample::I8 => "int8",
        }
    }
}

/// IBM System/360 single precision: sign, 7-bit base-16 exponent (excess 64), 24-bit fraction.
pub(crate) fn ibm_to_f32(bits: u32) -> f32 {
    let sign = if bits >> 31 == 1 { -1.0 } else { 1.0 };
    let exponent = ((bits >> 24) & 0x7f) as i32 - 64;
    let fraction = (bits & 0x00ff_ffff) as f64 / (1u64 << 24) as f64;
    (sign * fraction * 16f64.powi(exponent)) as f32
}

/// The binary header's facts, in the file's byte order.
struct Layout {
    little: bool,
    sample: Sample,
    n_samples: u64,
    interval_s: f64,
    data_start: u64,
    n_traces: u64,
    revision: u8,
}

fn u16_at(b: &[u8], pos: usize, little: bool) -> u16 {
    let a = [b[pos], b[pos + 1]];
    if little {
        u16::from_le_bytes(a)
    } else {
        u16::from_be_bytes(a)
    }
}

fn u32_at(b: &[u8], pos: usize, little: bool) -> u32 {
    let a = [b[pos], b[pos + 1], b[pos + 2], b[pos + 3]];
    if little {
        u32::from_le_bytes(a)
    } else {
        u32::from_be_bytes(a)
    }
}

/// Reads the binary header (`bin` = bytes 3201..3600) of a file of `size` bytes.
fn layout(bin: &[u8], size: u64) -> Result<Layout, String> {
    // Rev 2: bytes 3297-3300 hold 0x01020304 in the file's byte order.
    let little = u32_at(bin, 96, true) == 0x0102_0304;
    let revision = bin[300];
    let code = u16_at(bin, 24, little);
    let sample = Sample::of_code(code).ok_or_else(|| {
        format!(
            "unknown SEG-Y sample format code {code} (binary header bytes 3225-3226; cryocube reads 1 IBM float, 2 int32, 3 int16, 5 IEEE float, 6 IEEE double, 8 int8)"
        )
    })?;
    let mut n_samples = u16_at(bin, 20, little) as u64;
    let extended_samples = u32_at(bin, 60, little) as u64;
    if revision >= 2 && extended_samples > 0 {
        n_samples = extended_samples;
    }
    let mut interval_s = u16_at(bin, 16, little) as f64 * 1e-6;
    if revision >= 2 {
        let raw = u64::from_be_bytes(bin[68..76].try_into().expect("8 bytes"));
        let ext = if little {
            f64::from_bits(raw.swap_bytes())
        } else {
            f64::from_bits(raw)
        };
        if ext.is_finite() && ext > 0.0 {
            interval_s = ext * 1e-6;
        }
    }
    if n_samples == 0 || interval_s <= 0.0 {
        return Err(format!(
            "binary header: {n_samples} samples per trace at an interval of {} µs",
            interval_s * 1e6
        ));
    }
    let extended_text = if revision >= 1 {
        u16_at(bin, 304, little) as u64
    } else {
        0
    };
    let data_start = TEXT + BINARY + extended_text * TEXT;
    let trace = TRACE_HEADER + n_samples * sample.size() as u64;
    let body = size.saturating_sub(data_start);
    if body == 0 || !body.is_multiple_of(trace) {
        return Err(format!(
            "{} bytes after the headers are not whole traces of {trace} bytes ({n_samples} samples of {}): truncated, or not SEG-Y",
            body,
            sample.name()
        ));
    }
    Ok(Layout {
        little,
        sample,
        n_samples,
        interval_s,
        data_start,
        n_traces: body / trace,
        revision,
    })
}

/// True when the file's binary header is plausible SEG-Y and its traces fill it exactly.
pub(super) fn looks_like_segy(path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut bin = [0u8; BINARY as usize];
    size > TEXT + BINARY && file.read_exact_at(&mut bin, TEXT).is_ok() && layout(&bin, size).is_ok()
}

/// An open SEG-Y file.
pub(super) struct Segy {
    file: File,
    layout: Layout,
    header: Header,
    buf: Vec<u8>,
}

impl Segy {
    pub(super) fn open(path: &Path) -> Result<Segy, DasError> {
        let bad = |m: String| DasError::Header {
            path: path.into(),
            format: Format::Segy.name(),
            message: m,
        };
        let io = |source| DasError::File {
            path: path.into(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        if size < TEXT + BINARY + TRACE_HEADER {
            return Err(bad(format!("{size} bytes: shorter than the SEG-Y headers")));
        }
        let mut bin = [0u8; BINARY as usize];
        file.read_exact_at(&mut bin, TEXT).map_err(io)?;
        let layout = layout(&bin, size).map_err(bad)?;
        let mut th = [0u8; TRACE_HEADER as usize];
        file.read_exact_at(&mut th, layout.data_start).map_err(io)?;
        let le = layout.little;
        let (year, day, hour, minute, second) = (
            u16_at(&th, 156, le) as i32,
            u16_at(&th, 158, le) as u32,
            u16_at(&th, 160, le) as u32,
            u16_at(&th, 162, le) as u32,
            u16_at(&th, 164, le) as u32,
        );
        let mut warnings = Vec::new();
        let start_us = if year == 0 {
            warnings.push("the first trace header gives no year: start time 1970-01-01".into());
            0
        } else {
            chrono::NaiveDate::from_yo_opt(year, day.max(1))
                .and_then(|d| d.and_hms_opt(hour, minute, second))
                .map(|t| t.and_utc().timestamp_micros())
                .ok_or_else(|| {
                    bad(format!(
                        "first trace header: year {year}, day {day}, {hour}:{minute}:{second} is not a time"
                    ))
                })?
        };
        let header = Header {
            path: path.into(),
            format: Format::Segy,
            sampling_rate: 1.0 / layout.interval_s,
            n_samples: layout.n_samples,
            n_channels: layout.n_traces,
            channel_spacing: 1.0,
            first_distance: 0.0,
            start_us,
            units: "unknown".into(),
            layout: format!(
                "SEG-Y rev {}, {} traces of {} {} samples ({})",
                layout.revision,
                layout.n_traces,
                layout.n_samples,
                layout.sample.name(),
                if le { "little-endian" } else { "big-endian" }
            ),
            time_source: "first trace header (year, day of year, hour, minute, second)".into(),
            warnings,
            part: 0,
            distance_stated: false,
            facts: vec![],
            distances: None,
            sample_type: None,
        }
        .check()?;
        Ok(Segy {
            file,
            layout,
            header,
            buf: Vec::new(),
        })
    }

    fn decode(&self, bytes: &[u8], out: impl Iterator<Item = usize>, dst: &mut [f32]) {
        let le = self.layout.little;
        let size = self.layout.sample.size();
        for (chunk, i) in bytes.chunks_exact(size).zip(out) {
            dst[i] = match self.layout.sample {
                Sample::Ibm => ibm_to_f32(u32_at(chunk, 0, le)),
                Sample::F32 => f32::from_bits(u32_at(chunk, 0, le)),
                Sample::I32 => u32_at(chunk, 0, le) as i32 as f32,
                Sample::I16 => u16_at(chunk, 0, le) as i16 as f32,
                Sample::I8 => chunk[0] as i8 as f32,
                Sample::F64 => {
                    let raw = u64::from_be_bytes(chunk.try_into().expect("8 bytes"));
                    (if le {
                        f64::from_bits(raw.swap_bytes())
                    } else {
                        f64::from_bits(raw)
                    }) as f32
                }
            };
        }
    }
}

impl super::DasReader for Segy {
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
        let size = self.layout.sample.size() as u64;
        let trace = TRACE_HEADER + self.layout.n_samples * size;
        let width = (c1 - c0) as usize;
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(n * size as usize, 0);
        for c in c0..c1 {
            let at = self.layout.data_start + c * trace + TRACE_HEADER + s0 * size;
            self.file
                .read_exact_at(&mut buf, at)
                .map_err(|e| err(e.to_string()))?;
            let col = (c - c0) as usize;
            self.decode(&buf, (0..n).map(|t| t * width + col), out);
        }
        self.buf = buf;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values from the IBM floating-point definition: 0x42640000 = +0.390625 x 16^2 = 100,
    /// 0xC276A000 = -(0x76A000 / 2^24) x 16^2 = -118.625, 0x3F800000 = 0.5 x 16^-1.
    #[test]
    fn ibm_floats_by_hand() {
        assert_eq!(ibm_to_f32(0x4264_0000), 100.0);
        assert_eq!(ibm_to_f32(0xC276_A000), -118.625);
        assert_eq!(ibm_to_f32(0x3F80_0000), 0.03125);
        assert_eq!(ibm_to_f32(0), 0.0);
    }
}
