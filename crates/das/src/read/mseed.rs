//! miniSEED 2, as seismic data centres (GEOFON, EIDA) archive DAS: one SEED station per fibre
//! channel, records of 512 to 4096 bytes (any power of two 128..65536), Steim1, Steim2, int16,
//! int32, float32 or float64 samples. One file, or a folder of files (often one per station)
//! read together as one record.
//!
//! | fact | field |
//! |---|---|
//! | channels | one per SEED id (network.station.location.channel), ordered by station code |
//! | sampling rate | fixed header rate factor and multiplier (all channels must agree) |
//! | start (UTC) | earliest record start: BTIME + time correction (unless flagged applied) + blockette 1001 µs |
//! | samples | from the earliest start to the latest end over all channels; where a channel has no record (a shorter trace, a gap) its samples are NaN |
//! | channel spacing, first channel | not in miniSEED (the station code is the channel number): channel index, or `--spacing` / `--first-distance` |
//! | units | counts (SEED channel `HSF` carries no response) |
//!
//! Opening a file reads every record header to build an index (file offset, channel, first
//! sample) and decodes every record once to check Steim's reverse integration constant: a
//! record that fails it (or cannot be decoded) is reported, and its channel's trace is cut
//! there. Blocks are then decoded from the index on demand, one record per channel cached.
//!
//! We decode miniSEED ourselves: `miniseed-rs` 0.2 (pure Rust) panics on Steim differences
//! that overflow, on data offsets beyond the record, loops forever on a cyclic blockette
//! chain, and silently shifts a trace whose forward integration constant is wrong; the
//! `miniseed` crate (2017) binds the C libmseed. Here every field is bounded before it is used.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::{Format, Header};
use crate::DasError;

const FIXED: usize = 48;
/// Bytes read to parse a record's fixed header and blockettes.
const HEAD: usize = 256;

/// Sample encodings (blockette 1000 code).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Encoding {
    I16,
    I32,
    F32,
    F64,
    Steim1,
    Steim2,
}

impl Encoding {
    fn of(code: u8) -> Option<Encoding> {
        Some(match code {
            1 => Encoding::I16,
            3 => Encoding::I32,
            4 => Encoding::F32,
            5 => Encoding::F64,
            10 => Encoding::Steim1,
            11 => Encoding::Steim2,
            _ => return None,
        })
    }
}

/// One record's header facts.
#[derive(Clone, Debug)]
struct RecordHead {
    id: String,
    station: String,
    start_ns: i64,
    samples: usize,
    rate: f64,
    encoding: Option<Encoding>,
    big_endian_data: bool,
    length: usize,
    data_offset: usize,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// SEED's rate factor and multiplier, samples per second (0 for records without samples).
fn rate_of(factor: i16, multiplier: i16) -> f64 {
    let (f, m) = (factor as f64, multiplier as f64);
    match (factor, multiplier) {
        (0, _) | (_, 0) => 0.0,
        (a, b) if a > 0 && b > 0 => f * m,
        (a, _) if a > 0 => -f / m,
        (_, b) if b > 0 => -m / f,
        _ => 1.0 / (f * m),
    }
}

/// Parses a record header from its first bytes (`head`, at most [`HEAD`]).
fn parse_head(head: &[u8]) -> Result<RecordHead, String> {
    if head.len() < FIXED + 8 {
        return Err(format!(
            "{} bytes: shorter than a record header",
            head.len()
        ));
    }
    let seq_ok = head[..6].iter().all(|b| b.is_ascii_digit() || *b == b' ');
    if !seq_ok || !matches!(head[6], b'D' | b'R' | b'Q' | b'M') {
        return Err("not a miniSEED 2 record (sequence number and quality code)".into());
    }
    let text = |r: std::ops::Range<usize>| String::from_utf8_lossy(&head[r]).trim().to_string();
    let (station, location, channel, network) =
        (text(8..13), text(13..15), text(15..18), text(18..20));
    // The fixed header is big-endian in every archive we know; a little-endian one shows
    // as an impossible year.
    let little = !(1900..=2100).contains(&be16(head, 20));
    let u16_at = |at: usize| {
        let a = [head[at], head[at + 1]];
        if little {
            u16::from_le_bytes(a)
        } else {
            u16::from_be_bytes(a)
        }
    };
    let (year, day) = (u16_at(20) as i32, u16_at(22) as u32);
    let (hour, minute, second, fract) = (
        head[24] as u32,
        head[25] as u32,
        head[26] as u32,
        u16_at(28),
    );
    let samples = u16_at(30) as usize;
    let rate = rate_of(u16_at(32) as i16, u16_at(34) as i16);
    let activity = head[36];
    let correction = {
        let a = [head[40], head[41], head[42], head[43]];
        if little {
            i32::from_le_bytes(a)
        } else {
            i32::from_be_bytes(a)
        }
    };
    let data_offset = u16_at(44) as usize;
    let date = chrono::NaiveDate::from_yo_opt(year, day)
        .and_then(|d| d.and_hms_opt(hour, minute, second.min(59)))
        .filter(|_| hour < 24 && minute < 60 && second <= 60 && fract < 10_000)
        .ok_or_else(|| {
            format!("start time {year}-{day:03} {hour}:{minute}:{second}.{fract:04} is not a time")
        })?;
    let mut start_ns = date
        .and_utc()
        .timestamp_nanos_opt()
        .ok_or("start time out of range")?
        + (second as i64 - second.min(59) as i64) * 1_000_000_000
        + fract as i64 * 100_000;
    // Bit 1 of the activity flags: the correction is already in the start time.
    if activity & 0x02 == 0 {
        start_ns += correction as i64 * 100_000;
    }
    // The blockette chain: offsets must increase (a cycle would never end) and stay inside
    // the bytes read.
    let mut at = u16_at(46) as usize;
    let mut b1000 = None;
    let mut last = 0;
    while at != 0 {
        if at <= last || at + 4 > head.len() {
            return Err(format!("blockette chain broken at byte {at}"));
        }
        let kind = u16_at(at);
        let next = u16_at(at + 2) as usize;
        if kind == 1000 && at + 8 <= head.len() {
            b1000 = Some((head[at + 4], head[at + 5], head[at + 6]));
        } else if kind == 1001 && at + 6 <= head.len() {
            start_ns += head[at + 5] as i8 as i64 * 1000;
        }
        last = at;
        at = next;
    }
    let (code, word_order, power) = b1000.ok_or("no blockette 1000 (miniSEED 2 needs one)")?;
    if !(7..=16).contains(&power) {
        return Err(format!("record length 2^{power} is not 128..65536 bytes"));
    }
    let length = 1usize << power;
    if samples > 0 && !(FIXED..length).contains(&data_offset) {
        return Err(format!(
            "data begins at byte {data_offset}, outside the {length}-byte record"
        ));
    }
    Ok(RecordHead {
        id: format!("{network}.{station}.{location}.{channel}"),
        station,
        start_ns,
        samples,
        rate,
        encoding: Encoding::of(code),
        big_endian_data: word_order == 1,
        length,
        data_offset,
    })
}

/// The files of a folder of miniSEED files (sorted; hidden ones skipped), or the one file.
pub(crate) fn members(path: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(path)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// True for a folder of several files that are all miniSEED: one record of the stations
/// they hold together (data centres deliver one file per station).
pub(crate) fn is_mseed_folder(path: &Path) -> bool {
    path.is_dir()
        && members(path).is_ok_and(|m| m.len() > 1 && m.iter().all(|f| looks_like_mseed(f)))
}

/// True when the file starts with a miniSEED 2 record.
pub(super) fn looks_like_mseed(path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    let mut head = vec![0u8; HEAD];
    let n = read_some(&file, 0, &mut head);
    n >= FIXED + 8 && parse_head(&head[..n]).is_ok()
}

fn read_some(file: &File, at: u64, buf: &mut [u8]) -> usize {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], at + got as u64) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    got
}

/// Steim 1 or 2 differences of one record's frames, integrated from X0 and checked against
/// Xn. Arithmetic wraps, as the encoders' 32-bit integers do.
fn steim(data: &[u8], n: usize, level: u8, big: bool) -> Result<Vec<i32>, String> {
    let word = |i: usize| {
        let a = [
            data[4 * i],
            data[4 * i + 1],
            data[4 * i + 2],
            data[4 * i + 3],
        ];
        if big {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    };
    let frames = data.len() / 64;
    if frames == 0 {
        return Err("no Steim frame".into());
    }
    let (x0, xn) = (word(1) as i32, word(2) as i32);
    let mut diffs: Vec<i32> = Vec::with_capacity(n);
    let sign = |v: u32, bits: u32| ((v << (32 - bits)) as i32) >> (32 - bits);
    'frames: for f in 0..frames {
        let control = word(16 * f);
        for w in 1..16 {
            if diffs.len() >= n {
                break 'frames;
            }
            if f == 0 && (w == 1 || w == 2) {
                continue;
            }
            let v = word(16 * f + w);
            let nibble = (control >> (30 - 2 * w)) & 3;
            let (count, bits) = match (level, nibble) {
                (_, 0) => continue,
                (_, 1) => (4, 8),
                (1, 2) => (2, 16),
                (1, _) => (1, 32),
                (_, 2) => match v >> 30 {
                    1 => (1, 30),
                    2 => (2, 15),
                    3 => (3, 10),
                    _ => return Err(format!("frame {f} word {w}: invalid Steim2 sub-code 0")),
                },
                _ => match v >> 30 {
                    0 => (5, 6),
                    1 => (6, 5),
                    2 => (7, 4),
                    _ => return Err(format!("frame {f} word {w}: invalid Steim2 sub-code 3")),
                },
            };
            for k in (0..count).rev() {
                let d = if bits == 32 {
                    v as i32
                } else {
                    sign((v >> (k * bits)) & ((1u32 << bits) - 1), bits)
                };
                diffs.push(d);
            }
        }
    }
    if diffs.len() < n {
        return Err(format!("{} differences for {n} samples", diffs.len()));
    }
    // The first difference belongs to the previous record: sample 0 is X0.
    let mut out = Vec::with_capacity(n);
    let mut x = x0;
    for (i, d) in diffs[..n].iter().enumerate() {
        if i > 0 {
            x = x.wrapping_add(*d);
        }
        out.push(x);
    }
    if n > 0 && out[n - 1] != xn {
        return Err(format!(
            "the last sample is {} but the reverse integration constant says {xn} (a wrong integration constant or a corrupt frame)",
            out[n - 1]
        ));
    }
    Ok(out)
}

/// The samples of one record as f32.
fn decode(record: &[u8], h: &RecordHead) -> Result<Vec<f32>, String> {
    let enc = h
        .encoding
        .ok_or("sample encoding not supported (cryocube reads int16, int32, float32, float64, Steim1, Steim2)")?;
    let data = &record[h.data_offset..h.length];
    let n = h.samples;
    let big = h.big_endian_data;
    let fixed = |size: usize| -> Result<Vec<&[u8]>, String> {
        if n * size > data.len() {
            return Err(format!("{n} samples of {size} bytes do not fit the record"));
        }
        Ok(data.chunks_exact(size).take(n).collect())
    };
    let pick = |b: &[u8]| -> [u8; 8] {
        let mut a = [0u8; 8];
        a[..b.len()].copy_from_slice(b);
        if !big {
            a[..b.len()].reverse();
        }
        a
    };
    Ok(match enc {
        Encoding::I16 => fixed(2)?
            .into_iter()
            .map(|b| i16::from_be_bytes(pick(b)[..2].try_into().expect("2")) as f32)
            .collect(),
        Encoding::I32 => fixed(4)?
            .into_iter()
            .map(|b| i32::from_be_bytes(pick(b)[..4].try_into().expect("4")) as f32)
            .collect(),
        Encoding::F32 => fixed(4)?
            .into_iter()
            .map(|b| f32::from_be_bytes(pick(b)[..4].try_into().expect("4")))
            .collect(),
        Encoding::F64 => fixed(8)?
            .into_iter()
            .map(|b| f64::from_be_bytes(pick(b)) as f32)
            .collect(),
        Encoding::Steim1 | Encoding::Steim2 => {
            let level = if enc == Encoding::Steim1 { 1 } else { 2 };
            let frames = &data[..data.len() / 64 * 64];
            steim(frames, n, level, big)?
                .into_iter()
                .map(|v| v as f32)
                .collect()
        }
    })
}

/// A record's file (index into the files read) and byte offset.
type Place = (usize, u64);

/// Where one record's samples are.
#[derive(Clone, Debug)]
struct Entry {
    /// Which of the files (one, or a folder's).
    file: usize,
    offset: u64,
    head: RecordHead,
    /// The record's first sample on the file's sample axis.
    first: u64,
}

/// An open miniSEED file: its index and a cache of one decoded record per channel.
pub(super) struct Mseed {
    files: Vec<File>,
    /// Per channel (in channel order), its records by first sample.
    channels: Vec<Vec<Entry>>,
    cache: Vec<Option<(usize, Vec<f32>)>>,
    header: Header,
}

impl Mseed {
    pub(super) fn open(path: &Path) -> Result<Mseed, DasError> {
        let bad = |m: String| DasError::Header {
            path: path.into(),
            format: Format::Mseed.name(),
            message: m,
        };
        let io = |source| DasError::File {
            path: path.into(),
            source,
        };
        let paths = members(path).map_err(io)?;
        let mut files = Vec::with_capacity(paths.len());
        let mut warnings = Vec::new();
        let mut by_id: BTreeMap<(String, String), Vec<(Place, RecordHead)>> = BTreeMap::new();
        let mut head = vec![0u8; HEAD];
        let mut record = Vec::new();
        for (fi, member) in paths.iter().enumerate() {
            let file = File::open(member).map_err(|source| DasError::File {
                path: member.clone(),
                source,
            })?;
            let size = file.metadata().map_err(io)?.len();
            // In a folder, say which file.
            let name = if paths.len() > 1 {
                format!("{}: ", super::super::stream::file_name(member))
            } else {
                String::new()
            };
            let mut at = 0u64;
            let mut index = 0usize;
            while at < size {
                let n = read_some(&file, at, &mut head);
                let h = parse_head(&head[..n])
                    .map_err(|m| bad(format!("{name}record {index} at byte {at}: {m}")))?;
                if at + h.length as u64 > size {
                    warnings.push(format!(
                        "{name}record {index} at byte {at} is cut short ({} of {} bytes): dropped",
                        size - at,
                        h.length
                    ));
                    break;
                }
                if h.samples > 0 && h.rate > 0.0 {
                    by_id
                        .entry((h.station.clone(), h.id.clone()))
                        .or_default()
                        .push(((fi, at), h.clone()));
                }
                at += h.length as u64;
                index += 1;
            }
            files.push(file);
        }
        if by_id.is_empty() {
            return Err(bad("no record with samples".into()));
        }
        let rate = by_id.values().next().expect("not empty")[0].1.rate;
        if let Some((_, r)) = by_id
            .values()
            .flatten()
            .find(|(_, r)| (r.rate / rate - 1.0).abs() > 1e-6)
        {
            return Err(bad(format!(
                "channels at different sampling rates ({} Hz and {} Hz for {}): one record needs one rate",
                rate, r.rate, r.id
            )));
        }
        let t0 = by_id
            .values()
            .flatten()
            .map(|(_, r)| r.start_ns)
            .min()
            .expect("not empty");
        let sample_of = |ns: i64| ((ns - t0) as f64 * rate / 1e9).round() as i64;
        let mut channels = Vec::new();
        let mut ids = Vec::new();
        let mut end = 0u64;
        for ((_, id), mut recs) in by_id {
            recs.sort_by_key(|(_, r)| r.start_ns);
            let mut entries: Vec<Entry> = Vec::new();
            let mut next = None;
            for ((fi, offset), r) in recs {
                let first = sample_of(r.start_ns).max(0) as u64;
                if let Some(n) = next {
                    if first < n {
                        warnings.push(format!(
                            "{id}: record at byte {offset} overlaps the previous one by {} samples: skipped",
                            n - first
                        ));
                        continue;
                    }
                    if first > n {
                        warnings.push(format!(
                            "{id}: a gap of {} samples at sample {n} (NaN there)",
                            first - n
                        ));
                    }
                }
                // Decoded once here, so that a corrupt record cuts the trace before any
                // block is planned from it.
                record.resize(r.length, 0);
                files[fi].read_exact_at(&mut record, offset).map_err(io)?;
                if let Err(m) = decode(&record, &r) {
                    warnings.push(format!(
                        "{id}: record at byte {offset} cannot be decoded ({m}): the trace is cut there"
                    ));
                    break;
                }
                next = Some(first + r.samples as u64);
                entries.push(Entry {
                    file: fi,
                    offset,
                    head: r,
                    first,
                });
            }
            if let Some(n) = next {
                end = end.max(n);
            }
            if entries.is_empty() {
                warnings.push(format!("{id}: no readable record: its channel is all NaN"));
            }
            ids.push(id);
            channels.push(entries);
        }
        let lengths: Vec<u64> = channels
            .iter()
            .map(|c| c.last().map_or(0, |e| e.first + e.head.samples as u64))
            .collect();
        if lengths.iter().any(|l| *l != end) {
            warnings.push(format!(
                "traces of unequal length ({}): shorter ones are NaN to the end",
                lengths
                    .iter()
                    .zip(&ids)
                    .map(|(l, id)| format!("{id} {l}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let n_channels = channels.len() as u64;
        let header = Header {
            path: path.into(),
            format: Format::Mseed,
            sampling_rate: rate,
            n_samples: end,
            n_channels,
            channel_spacing: 1.0,
            first_distance: 0.0,
            start_us: (t0 as f64 / 1e3).round() as i64,
            units: "counts".into(),
            layout: format!(
                "miniSEED 2, {n_channels} SEED ids ({} .. {})",
                ids.first().map(String::as_str).unwrap_or(""),
                ids.last().map(String::as_str).unwrap_or("")
            ),
            time_source: "earliest record start (BTIME + corrections)".into(),
            warnings,
            part: 0,
            distance_stated: false,
            facts: vec![("seed_ids".into(), ids.join(","))],
            distances: None,
            sample_type: None,
        }
        .check()?;
        Ok(Mseed {
            files,
            cache: vec![None; channels.len()],
            channels,
            header,
        })
    }
}

impl super::DasReader for Mseed {
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
        let width = (c1 - c0) as usize;
        let end = s0 + n as u64;
        for c in c0 as usize..c1 as usize {
            let col = c - c0 as usize;
            for t in 0..n {
                out[t * width + col] = f32::NAN;
            }
            let entries = &self.channels[c];
            // The first record that ends after s0.
            let mut i = entries.partition_point(|e| e.first + e.head.samples as u64 <= s0);
            while i < entries.len() && entries[i].first < end {
                let e = &entries[i];
                if self.cache[c].as_ref().map(|(k, _)| *k) != Some(i) {
                    let mut bytes = vec![0u8; e.head.length];
                    self.files[e.file]
                        .read_exact_at(&mut bytes, e.offset)
                        .map_err(|x| err(x.to_string()))?;
                    let values = decode(&bytes, &e.head)
                        .map_err(|m| err(format!("record at byte {}: {m}", e.offset)))?;
                    self.cache[c] = Some((i, values));
                }
                let (_, values) = self.cache[c].as_ref().expect("just filled");
                let lo = s0.max(e.first);
                let hi = end.min(e.first + values.len() as u64);
                for g in lo..hi {
                    out[(g - s0) as usize * width + col] = values[(g - e.first) as usize];
                }
                i += 1;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SEED manual rate rules, by hand.
    #[test]
    fn rates() {
        assert_eq!(rate_of(1000, 1), 1000.0);
        assert_eq!(rate_of(125, 1), 125.0);
        assert_eq!(rate_of(1, -10), 0.1);
        assert_eq!(rate_of(-10, 1), 0.1);
        assert_eq!(rate_of(-2, -5), 0.1);
        assert_eq!(rate_of(0, 0), 0.0);
    }

    /// A Steim2 frame built by hand: X0 = 100, Xn = 101, four 8-bit differences (nibble 1)
    /// 5 (belongs to the previous record), -2, +3, 0: samples 100, 98, 101, 101. With a wrong
    /// X0 the last sample misses Xn, and that is reported.
    #[test]
    fn steim2_by_hand() {
        let mut frame = [0u8; 64];
        let control: u32 = 1 << (30 - 2 * 3); // word 3: four 8-bit differences
        frame[0..4].copy_from_slice(&control.to_be_bytes());
        frame[4..8].copy_from_slice(&100i32.to_be_bytes());
        frame[8..12].copy_from_slice(&101i32.to_be_bytes());
        frame[12..16].copy_from_slice(&[5u8, 0xfe, 3, 0]);
        assert_eq!(steim(&frame, 4, 2, true).unwrap(), vec![100, 98, 101, 101]);
        frame[4..8].copy_from_slice(&99i32.to_be_bytes());
        let wrong = steim(&frame, 4, 2, true).unwrap_err();
        assert!(wrong.contains("reverse integration constant"), "{wrong}");
    }
}
