//! Silixa iDAS TDMS (NI TDMS file format, versions 4712 and 4713): group `Measurement`, one
//! channel per locus, the header as properties of the root object `/`.
//!
//! | fact | field |
//! |---|---|
//! | sampling rate | `SamplingFrequency[Hz]` |
//! | channel spacing | `SpatialResolution[m]` x `Fibre Length Multiplier` |
//! | first channel | `Start Distance (m)` on the locus grid: `round(Start Distance / spacing) x spacing`, the integer `StartLocusIndex` Silixa's own PRODML export writes, so one recording gives one cube from either format (`extra/iDAS005_*`: -120.021 m -> locus -118 -> -120.472 m) |
//! | start (UTC) | `GPSTimeStamp` (a TDMS timestamp: seconds since 1904-01-01 UTC + 2^-64 fractions), else `ISO8601 Timestamp`; never `CPUTimeStamp` |
//! | samples | raw data of every channel with data, in object order; interleaved (sample-major, as iDAS writes) or chunked channel by channel |
//!
//! The file is a chain of segments, each a 28-byte lead-in (`TDSm`, table-of-contents flags,
//! version, length of the segment, offset of its raw data), optional metadata (objects with
//! their properties and raw-data index), then raw data. An interrogator that stops mid-write
//! leaves a last segment whose declared length runs past the end of the file: it is read up
//! to its last complete sample (interleaved) or chunk (non-interleaved), with a warning that
//! says how much was lost. Reads are positioned (`pread`) and touch only the rows asked for.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::{DasReader, Format, Header};
use crate::DasError;

const LEAD_IN: u64 = 28;
const TOC_META_DATA: u32 = 1 << 1;
const TOC_NEW_OBJ_LIST: u32 = 1 << 2;
const TOC_RAW_DATA: u32 = 1 << 3;
const TOC_INTERLEAVED: u32 = 1 << 5;
const TOC_BIG_ENDIAN: u32 = 1 << 6;
const TOC_DAQMX: u32 = 1 << 7;
/// Seconds from 1904-01-01 (the TDMS epoch) to 1970-01-01.
const EPOCH_1904_S: i64 = 2_082_844_800;

/// A property value, as far as a DAS header needs it.
#[derive(Clone, Debug)]
enum Value {
    Num(f64),
    Str(String),
    /// µs since 1970; `None` for the all-zero "not set" timestamp.
    Time(Option<i64>),
    Other,
}

/// Sample types a DAS channel can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SampleType {
    I16,
    I32,
    F32,
    F64,
}

impl SampleType {
    fn from_code(code: u32) -> Option<SampleType> {
        match code {
            2 => Some(SampleType::I16),
            3 => Some(SampleType::I32),
            9 => Some(SampleType::F32),
            10 => Some(SampleType::F64),
            _ => None,
        }
    }

    fn size(self) -> usize {
        match self {
            SampleType::I16 => 2,
            SampleType::I32 | SampleType::F32 => 4,
            SampleType::F64 => 8,
        }
    }

    /// numpy's name of the type.
    fn name(self) -> &'static str {
        match self {
            SampleType::I16 => "int16",
            SampleType::I32 => "int32",
            SampleType::F32 => "float32",
            SampleType::F64 => "float64",
        }
    }

    fn decode(self, b: &[u8]) -> f32 {
        match self {
            SampleType::I16 => i16::from_le_bytes([b[0], b[1]]) as f32,
            SampleType::I32 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32,
            SampleType::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            SampleType::F64 => {
                f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
            }
        }
    }
}

/// Raw data of one segment: `rows` samples of every channel from byte `offset`.
#[derive(Clone, Debug)]
struct Run {
    /// First row on the file's sample axis.
    first_row: u64,
    rows: u64,
    offset: u64,
    interleaved: bool,
    /// Values per channel per chunk (non-interleaved layout).
    chunk_rows: u64,
}

/// An open TDMS file.
pub(super) struct Tdms {
    file: File,
    header: Header,
    runs: Vec<Run>,
    sample: SampleType,
    n_channels: usize,
    buf: Vec<u8>,
}

/// Little-endian reads over a metadata block, with errors naming what was being read.
struct Cursor<'a> {
    b: &'a [u8],
    p: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .p
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or_else(|| {
                format!(
                    "metadata ends early (at byte {} of {})",
                    self.p,
                    self.b.len()
                )
            })?;
        let s = &self.b[self.p..end];
        self.p = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn string(&mut self) -> Result<String, String> {
        let n = self.u32()? as usize;
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }
    fn value(&mut self, code: u32) -> Result<Value, String> {
        let num = |b: &[u8]| -> f64 {
            match code {
                1 => b[0] as i8 as f64,
                2 => i16::from_le_bytes([b[0], b[1]]) as f64,
                3 => i32::from_le_bytes(b.try_into().expect("4")) as f64,
                4 => i64::from_le_bytes(b.try_into().expect("8")) as f64,
                5 => b[0] as f64,
                6 => u16::from_le_bytes([b[0], b[1]]) as f64,
                7 => u32::from_le_bytes(b.try_into().expect("4")) as f64,
                8 => u64::from_le_bytes(b.try_into().expect("8")) as f64,
                9 | 0x19 => f32::from_le_bytes(b.try_into().expect("4")) as f64,
                _ => f64::from_le_bytes(b.try_into().expect("8")),
            }
        };
        Ok(match code {
            1 | 5 => Value::Num(num(self.take(1)?)),
            2 | 6 => Value::Num(num(self.take(2)?)),
            3 | 7 | 9 | 0x19 => Value::Num(num(self.take(4)?)),
            4 | 8 | 10 | 0x1A => Value::Num(num(self.take(8)?)),
            0x0B | 0x1B => {
                self.take(16)?;
                Value::Other
            }
            0x20 => Value::Str(self.string()?),
            0x21 => Value::Num(self.take(1)?[0] as f64),
            0x44 => {
                let fraction = self.u64()?;
                let seconds = self.u64()? as i64;
                if fraction == 0 && seconds == 0 {
                    return Ok(Value::Time(None));
                }
                let us = seconds
                    .checked_sub(EPOCH_1904_S)
                    .and_then(|s| s.checked_mul(1_000_000))
                    .and_then(|u| {
                        u.checked_add(
                            (fraction as f64 / 18_446_744_073_709_551_616.0 * 1e6).round() as i64,
                        )
                    })
                    .ok_or_else(|| {
                        format!("a time stamp of {seconds} s since 1904 is out of range")
                    })?;
                Value::Time(Some(us))
            }
            c => return Err(format!("property of unsupported type code {c:#x}")),
        })
    }
}

/// A channel object's raw-data index in the current segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Index {
    sample: SampleType,
    values: u64,
}

impl Tdms {
    fn header_err(path: &Path, message: impl Into<String>) -> DasError {
        DasError::Header {
            path: path.into(),
            format: Format::SilixaTdms.name(),
            message: message.into(),
        }
    }

    pub(super) fn open(path: &Path) -> Result<Tdms, DasError> {
        let unreadable = |source: std::io::Error| DasError::File {
            path: path.into(),
            source,
        };
        let file = File::open(path).map_err(unreadable)?;
        let size = file.metadata().map_err(unreadable)?.len();
        let err = |m: String| Self::header_err(path, m);
        let mut props: HashMap<String, Value> = HashMap::new();
        // Objects of the current object list, in order, with their raw-data index.
        let mut objects: Vec<(String, Option<Index>)> = Vec::new();
        let mut runs = Vec::new();
        let mut warnings = Vec::new();
        let mut layout: Option<(SampleType, usize)> = None;
        let mut rows_total = 0u64;
        let mut pos = 0u64;
        let mut seg = 0usize;
        while pos < size {
            let mut lead = [0u8; LEAD_IN as usize];
            if size - pos < LEAD_IN {
                warnings.push(format!(
                    "{} stray bytes after the last segment are ignored",
                    size - pos
                ));
                break;
            }
            file.read_exact_at(&mut lead, pos).map_err(unreadable)?;
            if &lead[..4] != b"TDSm" {
                return Err(err(format!(
                    "segment {seg} at byte {pos} does not start with `TDSm`"
                )));
            }
            let toc = u32::from_le_bytes(lead[4..8].try_into().expect("4"));
            let version = u32::from_le_bytes(lead[8..12].try_into().expect("4"));
            let next = u64::from_le_bytes(lead[12..20].try_into().expect("8"));
            let raw = u64::from_le_bytes(lead[20..28].try_into().expect("8"));
            if version != 4712 && version != 4713 {
                return Err(err(format!(
                    "TDMS version {version} (4712 and 4713 are read)"
                )));
            }
            if toc & TOC_BIG_ENDIAN != 0 || toc & TOC_DAQMX != 0 {
                return Err(err(
                    "big-endian or DAQmx raw data (not written by DAS interrogators)".into(),
                ));
            }
            // Every offset from the file is checked: a crafted `raw` or `next` must not wrap
            // around (and then size an allocation) instead of failing.
            let data_start = (pos + LEAD_IN).saturating_add(raw);
            let declared_end = (pos + LEAD_IN).saturating_add(next);
            let truncated = next == u64::MAX || declared_end > size;
            let seg_end = if truncated { size } else { declared_end };
            if data_start > seg_end {
                return Err(err(format!(
                    "segment {seg} at byte {pos}: metadata runs past the end of the file"
                )));
            }
            if toc & TOC_NEW_OBJ_LIST != 0 {
                objects.clear();
            }
            if toc & TOC_META_DATA != 0 {
                let mut meta = vec![0u8; raw as usize];
                file.read_exact_at(&mut meta, pos + LEAD_IN)
                    .map_err(unreadable)?;
                let mut c = Cursor { b: &meta, p: 0 };
                let mut parse = |c: &mut Cursor| -> Result<(), String> {
                    let n = c.u32()?;
                    for _ in 0..n {
                        let obj = c.string()?;
                        let idx_len = c.u32()?;
                        let prev = objects.iter().position(|(p, _)| *p == obj);
                        let index = match idx_len {
                            0xFFFF_FFFF => None,
                            // "Same index as in the previous segment".
                            0 => prev.and_then(|i| objects[i].1),
                            0x6912_0000 | 0x6913_0000 => return Err("DAQmx raw data index".into()),
                            _ => {
                                let code = c.u32()?;
                                let _dim = c.u32()?;
                                let values = c.u64()?;
                                if code == 0x20 {
                                    c.u64()?;
                                }
                                let sample = SampleType::from_code(code).ok_or_else(|| {
                                    format!("channel {obj} has samples of type code {code:#x}")
                                })?;
                                Some(Index { sample, values })
                            }
                        };
                        match prev {
                            Some(i) => objects[i].1 = index,
                            None => objects.push((obj.clone(), index)),
                        }
                        let n_props = c.u32()?;
                        for _ in 0..n_props {
                            let name = c.string()?;
                            let code = c.u32()?;
                            let v = c.value(code)?;
                            // The header lives on the root object; later segments may update it.
                            if obj == "/" {
                                props.insert(name, v);
                            }
                        }
                    }
                    Ok(())
                };
                parse(&mut c).map_err(|m| err(format!("segment {seg} at byte {pos}: {m}")))?;
            }
            if toc & TOC_RAW_DATA != 0 {
                let channels: Vec<Index> = objects.iter().filter_map(|(_, i)| *i).collect();
                let first = *channels
                    .first()
                    .ok_or_else(|| err(format!("segment {seg} has raw data but no channel")))?;
                if channels.iter().any(|i| *i != first) {
                    return Err(err(format!(
                        "segment {seg}: channels differ in sample type or count; not a DAS layout"
                    )));
                }
                let this = (first.sample, channels.len());
                if *layout.get_or_insert(this) != this {
                    return Err(err(format!(
                        "segment {seg} has {} channels of {:?}, earlier ones {:?}",
                        this.1,
                        this.0,
                        layout.expect("set")
                    )));
                }
                let row_bytes = (first.sample.size() * channels.len()) as u64;
                let interleaved = toc & TOC_INTERLEAVED != 0;
                let avail = seg_end - data_start;
                // Interleaved data is whole rows; chunked data is whole chunks of
                // `values` rows, channel after channel.
                let unit = if interleaved {
                    Some(row_bytes)
                } else {
                    row_bytes.checked_mul(first.values.max(1))
                }
                .filter(|u| *u > 0)
                .ok_or_else(|| {
                    err(format!(
                        "segment {seg}: {} values per channel of {} bytes cannot be laid out",
                        first.values, row_bytes
                    ))
                })?;
                let units = avail / unit;
                let rows = if interleaved {
                    units
                } else {
                    units * first.values
                };
                if truncated || !avail.is_multiple_of(unit) {
                    let expected_rows = if next == u64::MAX {
                        " (the segment was never closed)".to_string()
                    } else if truncated {
                        format!(
                            " of the {} the segment declares",
                            (declared_end - data_start) / row_bytes
                        )
                    } else {
                        String::new()
                    };
                    let left = avail - units * unit;
                    warnings.push(format!(
                        "segment {seg} is truncated: read its {rows} complete samples{expected_rows}{}",
                        if left > 0 {
                            format!("; {left} trailing bytes of an incomplete sample ignored")
                        } else {
                            String::new()
                        }
                    ));
                }
                if rows > 0 {
                    runs.push(Run {
                        first_row: rows_total,
                        rows,
                        offset: data_start,
                        interleaved,
                        chunk_rows: first.values,
                    });
                }
                rows_total = rows_total.checked_add(rows).ok_or_else(|| {
                    err(format!("segment {seg}: more samples than can be counted"))
                })?;
            }
            if truncated {
                break;
            }
            pos = declared_end;
            seg += 1;
        }
        let (sample, n_channels) =
            layout.ok_or_else(|| err("no raw data in any segment".into()))?;
        let num = |name: &str| match props.get(name) {
            Some(Value::Num(v)) => Ok(*v),
            Some(Value::Str(s)) => s
                .trim()
                .parse::<f64>()
                .map_err(|_| err(format!("property `{name}` = {s:?} is not a number"))),
            _ => Err(err(format!("missing or non-numeric property `{name}`"))),
        };
        let fs = num("SamplingFrequency[Hz]")?;
        let resolution = num("SpatialResolution[m]")?;
        let multiplier = num("Fibre Length Multiplier").unwrap_or(1.0);
        let spacing = resolution * multiplier;
        // See the module table: the PRODML export's integer locus index, for one cube per
        // recording whatever the format.
        let first = (num("Start Distance (m)")? / spacing).round() * spacing;
        let (start_us, time_source) = match props.get("GPSTimeStamp") {
            Some(Value::Time(Some(t))) => (*t, "GPSTimeStamp"),
            _ => match props.get("ISO8601 Timestamp") {
                Some(Value::Str(s)) => (
                    super::h5::parse_iso_utc(s)
                        .ok_or_else(|| err(format!("unparsable `ISO8601 Timestamp` {s:?}")))?,
                    "ISO8601 Timestamp",
                ),
                _ => {
                    return Err(err(
                        "neither `GPSTimeStamp` nor `ISO8601 Timestamp` gives the start time"
                            .into(),
                    ))
                }
            },
        };
        let output = match props.get("Acoustic Output") {
            Some(Value::Str(s)) => s.clone(),
            _ => String::new(),
        };
        let interleaved = runs.first().is_none_or(|r| r.interleaved);
        let header = Header {
            path: PathBuf::from(path),
            format: Format::SilixaTdms,
            sampling_rate: fs,
            n_samples: rows_total,
            n_channels: n_channels as u64,
            channel_spacing: spacing,
            first_distance: first,
            start_us,
            units: format!("iDAS counts ({output} output)"),
            layout: format!(
                "TDMS group Measurement, {} channels of {:?}, {}",
                n_channels,
                sample,
                if interleaved {
                    "interleaved"
                } else {
                    "chunked"
                }
            ),
            time_source: time_source.into(),
            warnings,
            part: 0,
            distance_stated: true,
            facts: vec![],
            distances: None,
            sample_type: Some(sample.name().to_string()),
        };
        Ok(Tdms {
            file,
            header: header.check()?,
            runs,
            sample,
            n_channels,
            buf: Vec::new(),
        })
    }
}

impl DasReader for Tdms {
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
        let size = self.sample.size();
        let err = |m: String| DasError::Read {
            path: self.header.path.clone(),
            start: s0,
            end: s0 + n as u64,
            message: m,
        };
        if s0 + n as u64 > self.header.n_samples || c1 as usize > self.n_channels {
            return Err(err(format!(
                "outside the file's {} samples x {} channels",
                self.header.n_samples, self.n_channels
            )));
        }
        let end = s0 + n as u64;
        for run in &self.runs {
            let lo = s0.max(run.first_row);
            let hi = end.min(run.first_row + run.rows);
            if lo >= hi {
                continue;
            }
            let r0 = lo - run.first_row;
            let rows = (hi - lo) as usize;
            let out_base = (lo - s0) as usize;
            if run.interleaved {
                // Whole rows are contiguous: one read, then pick the channels.
                let row_bytes = self.n_channels * size;
                self.buf.resize(rows * row_bytes, 0);
                self.file
                    .read_exact_at(&mut self.buf, run.offset + r0 * row_bytes as u64)
                    .map_err(|e| err(e.to_string()))?;
                for (r, row) in self.buf.chunks_exact(row_bytes).enumerate() {
                    let dst = &mut out[(out_base + r) * width..(out_base + r + 1) * width];
                    let src = &row[c0 as usize * size..c1 as usize * size];
                    for (d, b) in dst.iter_mut().zip(src.chunks_exact(size)) {
                        *d = self.sample.decode(b);
                    }
                }
            } else {
                // Chunks of `chunk_rows` values per channel, channel after channel.
                let per_chunk = run.chunk_rows;
                let chunk_bytes = per_chunk * (self.n_channels * size) as u64;
                let mut r = r0;
                while r < r0 + rows as u64 {
                    let k = r / per_chunk;
                    let within = r % per_chunk;
                    let take = (per_chunk - within).min(r0 + rows as u64 - r) as usize;
                    self.buf.resize(take * size, 0);
                    for c in c0..c1 {
                        let at =
                            run.offset + k * chunk_bytes + (c * per_chunk + within) * size as u64;
                        self.file
                            .read_exact_at(&mut self.buf, at)
                            .map_err(|e| err(e.to_string()))?;
                        let col = (c - c0) as usize;
                        let row0 = out_base + (r - r0) as usize;
                        for (i, b) in self.buf.chunks_exact(size).enumerate() {
                            out[(row0 + i) * width + col] = self.sample.decode(b);
                        }
                    }
                    r += take as u64;
                }
            }
        }
        Ok(())
    }
}
