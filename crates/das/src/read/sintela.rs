//! Sintela protobuf recordings: a sequence of records, each `PBUF`, a 4-byte tag and a
//! little-endian u32 size, then a protobuf message. `META` records describe the recorder;
//! `TS05` records are packets of samples. The file carries no schema: fields are read by
//! number from the wire format, as below (learned from the sample file and DASCore's
//! description; nothing else is assumed).
//!
//! | fact | field of a `TS05` packet |
//! |---|---|
//! | start (UTC) | 1.1.1 (Timestamp: 1 seconds, 2 nanos) of the first packet |
//! | channels | 1.1.2 |
//! | sampling rate | 1.1.3 (float) |
//! | channel spacing | 1.1.4 (float); gauge length 1.1.5 |
//! | first channel | no field in the sample files: 0 m (a warning), or `--first-distance` |
//! | data type | 1.1.11 (a code; 1 is phase in radians for DASCore) |
//! | packet position | 1.2 (sample count of its first sample), 1.3 (samples in the packet) |
//! | samples | 3: packed float32, samples x channels (time-major) |
//!
//! Packets whose sample counts jump leave a gap (NaN); a record cut short at the end of the
//! file is dropped with a warning.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::{Format, Header};
use crate::DasError;

const ENVELOPE: u64 = 12;
/// Largest record accepted (a packet of many thousands of channels is a few MB).
const MAX_RECORD: u64 = 1 << 30;

/// A protobuf wire value.
#[derive(Clone, Copy, Debug)]
enum Value<'a> {
    Varint(u64),
    /// Skipped: no field read here is a double.
    Fixed64,
    Fixed32(u32),
    Bytes(&'a [u8], usize),
}

/// Iterates the (field number, value) pairs of one protobuf message; a malformed message
/// ends with an error item.
struct Wire<'a> {
    bytes: &'a [u8],
    at: usize,
}

fn varint(b: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at).ok_or("a varint runs past the message")?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Ok(v);
        }
    }
    Err("a varint longer than 10 bytes".into())
}

impl<'a> Iterator for Wire<'a> {
    type Item = Result<(u64, Value<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.bytes.len() {
            return None;
        }
        let b = self.bytes;
        let item = (|| {
            let key = varint(b, &mut self.at)?;
            let field = key >> 3;
            let take = |at: &mut usize, n: usize| -> Result<&'a [u8], String> {
                let end = at.checked_add(n).filter(|e| *e <= b.len());
                let end = end.ok_or("a field runs past the message")?;
                let s = &b[*at..end];
                *at = end;
                Ok(s)
            };
            let value = match key & 7 {
                0 => Value::Varint(varint(b, &mut self.at)?),
                1 => {
                    take(&mut self.at, 8)?;
                    Value::Fixed64
                }
                2 => {
                    let n = varint(b, &mut self.at)?;
                    let start = self.at;
                    let n = usize::try_from(n).map_err(|_| "a length beyond memory")?;
                    Value::Bytes(take(&mut self.at, n)?, start)
                }
                5 => Value::Fixed32(u32::from_le_bytes(
                    take(&mut self.at, 4)?.try_into().expect("4"),
                )),
                w => return Err(format!("wire type {w} of field {field} is not protobuf 3")),
            };
            Ok((field, value))
        })();
        if item.is_err() {
            self.at = b.len();
        }
        Some(item)
    }
}

fn wire(bytes: &[u8]) -> Wire<'_> {
    Wire { bytes, at: 0 }
}

/// The facts of one `TS05` packet.
#[derive(Clone, Debug, Default)]
struct Packet {
    seconds: i64,
    nanos: i64,
    channels: u64,
    rate: f32,
    spacing: f32,
    gauge: f32,
    data_type: Option<u64>,
    sample_count: u64,
    samples: u64,
    /// Offset of the packed floats within the message, and their byte length.
    data: Option<(usize, usize)>,
}

fn parse_packet(msg: &[u8]) -> Result<Packet, String> {
    let mut p = Packet::default();
    for item in wire(msg) {
        match item? {
            (1, Value::Bytes(header, _)) => {
                for item in wire(header) {
                    match item? {
                        (1, Value::Bytes(common, _)) => {
                            for item in wire(common) {
                                match item? {
                                    (1, Value::Bytes(ts, _)) => {
                                        for item in wire(ts) {
                                            match item? {
                                                (1, Value::Varint(s)) => p.seconds = s as i64,
                                                (2, Value::Varint(n)) => p.nanos = n as i64,
                                                _ => {}
                                            }
                                        }
                                    }
                                    (2, Value::Varint(n)) => p.channels = n,
                                    (3, Value::Fixed32(v)) => p.rate = f32::from_bits(v),
                                    (4, Value::Fixed32(v)) => p.spacing = f32::from_bits(v),
                                    (5, Value::Fixed32(v)) => p.gauge = f32::from_bits(v),
                                    (11, Value::Varint(v)) => p.data_type = Some(v),
                                    _ => {}
                                }
                            }
                        }
                        (2, Value::Varint(n)) => p.sample_count = n,
                        (3, Value::Varint(n)) => p.samples = n,
                        _ => {}
                    }
                }
            }
            (3, Value::Bytes(data, start)) => p.data = Some((start, data.len())),
            (_, Value::Varint(_) | Value::Fixed64 | Value::Fixed32(_) | Value::Bytes(..)) => {}
        }
    }
    Ok(p)
}

/// Where one packet's samples are in the file.
#[derive(Clone, Debug)]
struct Entry {
    offset: u64,
    first: u64,
    rows: u64,
}

/// True when the file starts with a `PBUF` record.
pub(super) fn looks_like_sintela(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    File::open(path).is_ok_and(|f| f.read_exact_at(&mut magic, 0).is_ok()) && &magic == b"PBUF"
}

/// An open Sintela recording.
pub(super) struct Sintela {
    file: File,
    packets: Vec<Entry>,
    header: Header,
    buf: Vec<u8>,
}

impl Sintela {
    pub(super) fn open(path: &Path) -> Result<Sintela, DasError> {
        let bad = |m: String| DasError::Header {
            path: path.into(),
            format: Format::Sintela.name(),
            message: m,
        };
        let io = |source| DasError::File {
            path: path.into(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        let mut warnings = Vec::new();
        let mut first: Option<Packet> = None;
        let mut packets: Vec<Entry> = Vec::new();
        let mut msg = Vec::new();
        let mut at = 0u64;
        let mut index = 0usize;
        while at < size {
            let mut env = [0u8; ENVELOPE as usize];
            if size - at < ENVELOPE || file.read_exact_at(&mut env, at).is_err() {
                warnings.push(format!(
                    "record {index} at byte {at} is cut short ({} bytes): dropped",
                    size - at
                ));
                break;
            }
            if &env[..4] != b"PBUF" {
                return Err(bad(format!(
                    "record {index} at byte {at} does not start with PBUF"
                )));
            }
            let len = u64::from(u32::from_le_bytes(env[8..12].try_into().expect("4")));
            if len > MAX_RECORD {
                return Err(bad(format!(
                    "record {index} at byte {at} claims {len} bytes"
                )));
            }
            if at + ENVELOPE + len > size {
                warnings.push(format!(
                    "record {index} at byte {at} is cut short ({} of {len} bytes): dropped",
                    size - at - ENVELOPE
                ));
                break;
            }
            if &env[4..8] == b"TS05" {
                msg.resize(len as usize, 0);
                file.read_exact_at(&mut msg, at + ENVELOPE).map_err(io)?;
                let p = parse_packet(&msg)
                    .map_err(|m| bad(format!("packet {index} at byte {at}: {m}")))?;
                let (data_at, data_len) = p
                    .data
                    .ok_or_else(|| bad(format!("packet {index} at byte {at}: no samples")))?;
                let f = first.get_or_insert_with(|| p.clone());
                if p.channels != f.channels || p.rate != f.rate {
                    return Err(bad(format!(
                        "packet {index} at byte {at}: {} channels at {} Hz, the first has {} at {} Hz",
                        p.channels, p.rate, f.channels, f.rate
                    )));
                }
                if p.samples
                    .checked_mul(p.channels)
                    .and_then(|v| v.checked_mul(4))
                    != Some(data_len as u64)
                {
                    return Err(bad(format!(
                        "packet {index} at byte {at}: {data_len} bytes of samples for {} samples x {} channels",
                        p.samples, p.channels
                    )));
                }
                let rel = p.sample_count.checked_sub(f.sample_count).ok_or_else(|| {
                    bad(format!(
                        "packet {index} at byte {at}: sample count {} before the first packet's {}",
                        p.sample_count, f.sample_count
                    ))
                })?;
                if let Some(last) = packets.last() {
                    let next = last.first + last.rows;
                    if rel < next {
                        warnings.push(format!(
                            "packet {index} at byte {at} repeats {} samples: skipped",
                            next - rel
                        ));
                        at += ENVELOPE + len;
                        index += 1;
                        continue;
                    }
                    if rel > next {
                        warnings.push(format!(
                            "a gap of {} samples before packet {index} (NaN there)",
                            rel - next
                        ));
                    }
                }
                if p.samples > 0 {
                    packets.push(Entry {
                        offset: at + ENVELOPE + data_at as u64,
                        first: rel,
                        rows: p.samples,
                    });
                }
            }
            at += ENVELOPE + len;
            index += 1;
        }
        let f = first.ok_or_else(|| bad("no TS05 packet of samples".into()))?;
        let n_samples = packets.last().map_or(0, |e| e.first + e.rows);
        warnings.push(
            "no first-channel distance in Sintela packets: channel 0 is placed at 0 m; give --first-distance to place it".into(),
        );
        let mut facts = vec![("gauge_length".to_string(), format!("{} m", f.gauge))];
        if let Some(code) = f.data_type {
            facts.push(("data_type_code".to_string(), code.to_string()));
        }
        let header = Header {
            path: path.into(),
            format: Format::Sintela,
            sampling_rate: f64::from(f.rate),
            n_samples,
            n_channels: f.channels,
            channel_spacing: f64::from(f.spacing),
            first_distance: 0.0,
            start_us: f.seconds.saturating_mul(1_000_000) + (f.nanos as f64 / 1e3).round() as i64,
            units: "unknown".into(),
            layout: format!(
                "{} TS05 packets of float32 samples x {} channels (time-major)",
                packets.len(),
                f.channels
            ),
            time_source: "first TS05 packet's timestamp (1.1.1)".into(),
            warnings,
            part: 0,
            distance_stated: true,
            facts,
            distances: None,
            sample_type: None,
        }
        .check()?;
        Ok(Sintela {
            file,
            packets,
            header,
            buf: Vec::new(),
        })
    }
}

impl super::DasReader for Sintela {
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
        let nc = self.header.n_channels;
        let width = (c1 - c0) as usize;
        out[..n * width].fill(f32::NAN);
        let end = s0 + n as u64;
        let row = nc as usize * 4;
        let mut i = self.packets.partition_point(|p| p.first + p.rows <= s0);
        let mut buf = std::mem::take(&mut self.buf);
        while i < self.packets.len() && self.packets[i].first < end {
            let p = &self.packets[i];
            let lo = s0.max(p.first);
            let hi = end.min(p.first + p.rows);
            buf.resize((hi - lo) as usize * row, 0);
            self.file
                .read_exact_at(&mut buf, p.offset + (lo - p.first) * row as u64)
                .map_err(|e| err(e.to_string()))?;
            for (r, bytes) in buf.chunks_exact(row).enumerate() {
                let t = (lo - s0) as usize + r;
                for (k, c) in (c0 as usize..c1 as usize).enumerate() {
                    let b = &bytes[c * 4..c * 4 + 4];
                    out[t * width + k] = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                }
            }
            i += 1;
        }
        self.buf = buf;
        Ok(())
    }
}
