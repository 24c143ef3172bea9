//! Many files as one regular sample stream.
//!
//! A DAS record is hundreds of 30 s files. [`Record::scan`] reads every header, orders the
//! files by their UTC start, checks they belong together (same sampling rate, channels,
//! spacing and origin), and lays them on one sample axis starting at the first file's first
//! sample: files that start within 1.5 samples of where the previous one ended are
//! contiguous; a later start is a gap (filled with NaN, so windows that touch it are NaN and
//! the time axis stays regular); an earlier start is an overlap (the repeated samples are
//! skipped). [`BlockReader`] then fills [`Block`]s with consecutive, overlapping sample ranges,
//! reading each file once and holding two blocks in memory (one read while the other is
//! transformed).

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::read::{self, DasReader, Format, Header};
use crate::DasError;

/// Gaps and overlaps smaller than this (in samples) are clock jitter, not discontinuities.
pub const TOLERANCE_SAMPLES: f64 = 1.5;

/// A contiguous run of one file's samples on the record's sample axis.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Segment {
    /// Which file of [`Record::files`].
    pub file: usize,
    /// First sample of the run on the record axis.
    pub start: u64,
    /// First sample of the run within the file.
    pub file_offset: u64,
    /// Samples in the run.
    pub len: u64,
}

/// A discontinuity between two consecutive files.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Discontinuity {
    /// The file before the discontinuity.
    pub before: PathBuf,
    /// The file after it.
    pub after: PathBuf,
    /// Record sample where the discontinuity is.
    pub at_sample: u64,
    /// Positive: missing samples (NaN-filled). Negative: repeated samples (skipped).
    pub samples: i64,
    /// Its length in seconds (positive: missing; negative: repeated).
    pub seconds: f64,
}

/// The ordered, checked set of files of one record.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// The files in time order.
    pub files: Vec<Header>,
    /// The layout given by the user, if any (else detected per file).
    pub format: Option<Format>,
    /// Samples per second.
    pub sampling_rate: f64,
    /// Channels per sample.
    pub n_channels: u64,
    /// Metres between channels.
    pub channel_spacing: f64,
    /// Distance of the first channel, metres.
    pub first_distance: f64,
    /// UTC µs of record sample 0.
    pub start_us: i64,
    /// Samples on the record axis, gaps included.
    pub n_samples: u64,
    /// Where each file's samples lie on it.
    pub segments: Vec<Segment>,
    /// Gaps (NaN-filled).
    pub gaps: Vec<Discontinuity>,
    /// Overlaps (repeated samples skipped).
    pub overlaps: Vec<Discontinuity>,
    /// Things the user should know, each naming its file.
    pub warnings: Vec<String>,
    /// Units of the distance coordinate: `m`, or `1` when the files state no distances and
    /// the user gave none (the coordinate is then the channel index).
    #[serde(default = "metres")]
    pub distance_units: String,
    /// Each channel's distance when the files state them unevenly spaced (Sentek).
    #[serde(default)]
    pub distances: Option<Vec<f64>>,
}

impl Record {
    /// The distance of channel `c`, metres (or its index, see [`Record::distance_units`]).
    pub fn distance_of(&self, c: u64) -> f64 {
        match &self.distances {
            Some(d) => d[c as usize],
            None => self.first_distance + c as f64 * self.channel_spacing,
        }
    }
}

fn metres() -> String {
    "m".into()
}

/// Distances the user states (`--spacing`, `--first-distance`, metres): for files that state
/// none (miniSEED, SEG-Y, simple HDF5), or to correct a header. They replace the files'.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Distances {
    /// Metres between channels.
    pub spacing: Option<f64>,
    /// Distance of the first channel, metres.
    pub first: Option<f64>,
}

impl Distances {
    /// Puts the user's distances into a header, saying what they replace.
    fn apply(&self, h: &mut Header) {
        if self.spacing.is_none() && self.first.is_none() {
            return;
        }
        if h.distances.take().is_some() {
            h.warnings.push(
                "--spacing / --first-distance replace the file's table of uneven channel distances"
                    .into(),
            );
        }
        if let Some(s) = self.spacing {
            if h.distance_stated && !close(s, h.channel_spacing, 1e-9) {
                h.warnings.push(format!(
                    "--spacing {} m replaces the file's {} m",
                    cryocube_cube::cf::format_number(s),
                    cryocube_cube::cf::format_number(h.channel_spacing)
                ));
            }
            h.channel_spacing = s;
        } else if !h.distance_stated {
            // A first distance alone places channels one metre apart; say so.
            h.warnings
                .push("--first-distance without --spacing: channels are taken 1 m apart".into());
        }
        if let Some(d) = self.first {
            if h.distance_stated && (d - h.first_distance).abs() > 1e-9 * d.abs().max(1.0) {
                h.warnings.push(format!(
                    "--first-distance {} m replaces the file's {} m",
                    cryocube_cube::cf::format_number(d),
                    cryocube_cube::cf::format_number(h.first_distance)
                ));
            }
            h.first_distance = d;
        } else if !h.distance_stated {
            h.first_distance = 0.0;
        }
        h.distance_stated = true;
    }
}

/// Expands files, folders (their files, sorted, hidden ones skipped) and glob patterns.
pub fn expand_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, DasError> {
    let mut out = Vec::new();
    for input in inputs {
        let text = input.to_string_lossy();
        if read::is_mseed_folder(input) {
            // Per-station miniSEED files: one record of all their channels.
            out.push(input.clone());
        } else if input.is_dir() {
            let files = read::folder_members(input).map_err(|source| DasError::File {
                path: input.clone(),
                source,
            })?;
            if files.is_empty() {
                return Err(DasError::Input(format!(
                    "{}: folder has no files",
                    input.display()
                )));
            }
            out.extend(files);
        } else if input.exists() {
            // A FIFO or device would block the header scan forever, or read endlessly.
            if !input.is_file() {
                return Err(DasError::Unreadable {
                    path: input.clone(),
                    message: "not a regular file (a FIFO, socket or device); give files".into(),
                });
            }
            out.push(input.clone());
        } else if text.contains(['*', '?', '[']) {
            let mut files: Vec<PathBuf> = glob::glob(&text)
                .map_err(|e| DasError::Input(format!("{text}: bad pattern: {e}")))?
                .filter_map(Result::ok)
                .filter(|p| p.is_file())
                .collect();
            if files.is_empty() {
                return Err(DasError::Input(format!("{text}: pattern matches no file")));
            }
            files.sort();
            out.extend(files);
        } else {
            return Err(DasError::Input(format!(
                "{}: no such file or folder",
                input.display()
            )));
        }
    }
    out.dedup();
    if out.is_empty() {
        return Err(DasError::Input("no input files".into()));
    }
    Ok(out)
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs())
}

/// The sampling and channel geometry files must share to form one record (or to extend a
/// cube).
#[derive(Clone, Copy, Debug)]
pub struct Geometry {
    /// Samples per second.
    pub sampling_rate: f64,
    /// Channels.
    pub n_channels: u64,
    /// Metres between channels.
    pub channel_spacing: f64,
    /// Distance of the first channel, metres.
    pub first_distance: f64,
}

impl Geometry {
    /// The geometry a header states.
    pub fn of_header(h: &Header) -> Geometry {
        Geometry {
            sampling_rate: h.sampling_rate,
            n_channels: h.n_channels,
            channel_spacing: h.channel_spacing,
            first_distance: h.first_distance,
        }
    }

    /// The first fact that differs, with both values, or `None` when they match. Terra15
    /// rates come from GPS time spans and vary by parts per million, hence the tolerances.
    pub fn differs_from(&self, other: &Geometry) -> Option<(&'static str, String, String)> {
        if !close(other.sampling_rate, self.sampling_rate, 1e-4) {
            return Some((
                "sampling rate",
                format!("{} Hz", self.sampling_rate),
                format!("{} Hz", other.sampling_rate),
            ));
        }
        if other.n_channels != self.n_channels {
            return Some((
                "channel count",
                self.n_channels.to_string(),
                other.n_channels.to_string(),
            ));
        }
        if !close(other.channel_spacing, self.channel_spacing, 1e-6) {
            return Some((
                "channel spacing",
                format!("{} m", self.channel_spacing),
                format!("{} m", other.channel_spacing),
            ));
        }
        if (other.first_distance - self.first_distance).abs() > 1e-3 * self.channel_spacing {
            return Some((
                "distance of the first channel",
                format!("{} m", self.first_distance),
                format!("{} m", other.first_distance),
            ));
        }
        None
    }
}

impl Record {
    /// Reads every header and lays the files out on one sample axis.
    pub fn scan(
        inputs: &[PathBuf],
        format: Option<Format>,
        distances: Distances,
    ) -> Result<Record, DasError> {
        Self::scan_files(&expand_inputs(inputs)?, format, distances)
    }

    /// [`Record::scan`] of files already expanded.
    pub fn scan_files(
        paths: &[PathBuf],
        format: Option<Format>,
        distances: Distances,
    ) -> Result<Record, DasError> {
        // In parallel: a campaign has tens of thousands of files, and most of a header read
        // is waiting for the file system.
        use rayon::prelude::*;
        let mut files: Vec<Header> = paths
            .par_iter()
            .map(|p| read::read_headers(p, format))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect();
        files.iter_mut().for_each(|h| distances.apply(h));
        // Stable: files with equal (e.g. zeroed) clocks keep their name order.
        files.sort_by_key(|h| h.start_us);
        Self::from_headers(files, format)
    }

    /// Lays out already-read headers (sorted by start time).
    pub fn from_headers(files: Vec<Header>, format: Option<Format>) -> Result<Record, DasError> {
        let first = files
            .first()
            .ok_or_else(|| DasError::Input("no input files".into()))?
            .clone();
        let fs = first.sampling_rate;
        let mut warnings: Vec<String> = Vec::new();
        let distance_units = if first.distance_stated {
            metres()
        } else {
            warnings.push(format!(
                "{}: the {} format states no distances: the distance coordinate is the channel index (units \"1\"); give --spacing and --first-distance in metres",
                first.path.display(),
                first.format
            ));
            "1".into()
        };
        for h in &files {
            for w in &h.warnings {
                warnings.push(format!("{}: {w}", h.path.display()));
            }
            let tables_agree = match (&h.distances, &first.distances) {
                (None, None) => true,
                (Some(a), Some(b)) => {
                    a.len() == b.len()
                        && a.iter()
                            .zip(b)
                            .all(|(x, y)| (x - y).abs() <= 1e-6 * x.abs().max(1.0))
                }
                _ => false,
            };
            if !tables_agree {
                return Err(DasError::Mismatch {
                    a: first.path.clone(),
                    b: h.path.clone(),
                    message: "their tables of channel distances differ".into(),
                });
            }
            if h.distance_stated != first.distance_stated {
                return Err(DasError::Mismatch {
                    a: first.path.clone(),
                    b: h.path.clone(),
                    message: "one states its distances, the other does not; give --spacing and --first-distance".into(),
                });
            }
            Geometry::of_header(&first)
                .differs_from(&Geometry::of_header(h))
                .map_or(Ok(()), |(what, a, b)| {
                    Err(DasError::Mismatch {
                        a: first.path.clone(),
                        b: h.path.clone(),
                        message: format!("{what} differs ({a} vs {b})"),
                    })
                })?;
        }
        let mut segments = Vec::new();
        let mut gaps = Vec::new();
        let mut overlaps = Vec::new();
        let mut end = 0u64; // next free record sample
        let mut prev: Option<&Header> = None;
        for (i, h) in files.iter().enumerate() {
            let mut offset = 0u64;
            if let Some(p) = prev {
                // Offset from where the previous file ended, in samples, from the two headers.
                let diff = (h.start_us - p.start_us) as f64 * fs / 1e6 - p.n_samples as f64;
                let rounded = diff.round() as i64;
                if diff > TOLERANCE_SAMPLES {
                    gaps.push(Discontinuity {
                        before: p.path.clone(),
                        after: h.path.clone(),
                        at_sample: end,
                        samples: rounded,
                        seconds: rounded as f64 / fs,
                    });
                    end += rounded as u64;
                } else if diff < -TOLERANCE_SAMPLES {
                    overlaps.push(Discontinuity {
                        before: p.path.clone(),
                        after: h.path.clone(),
                        at_sample: end,
                        samples: rounded,
                        seconds: rounded as f64 / fs,
                    });
                    offset = (-rounded) as u64;
                    if offset >= h.n_samples {
                        warnings.push(format!(
                            "{}: lies entirely within {} (overlap of {} samples); skipped",
                            h.path.display(),
                            p.path.display(),
                            -rounded
                        ));
                        continue;
                    }
                }
            }
            segments.push(Segment {
                file: i,
                start: end,
                file_offset: offset,
                len: h.n_samples - offset,
            });
            end += h.n_samples - offset;
            prev = Some(h);
        }
        Ok(Record {
            sampling_rate: fs,
            n_channels: first.n_channels,
            channel_spacing: first.channel_spacing,
            first_distance: first.first_distance,
            start_us: first.start_us,
            n_samples: end,
            files,
            format,
            segments,
            gaps,
            overlaps,
            warnings,
            distance_units,
            distances: first.distances.clone(),
        })
    }

    /// Moves the record onto a longer sample axis (an existing cube's) that starts at
    /// `start_us` and on which the record's first sample is sample `lead`; what precedes it
    /// reads as missing (NaN).
    pub fn place_at(&mut self, start_us: i64, lead: u64) {
        for s in &mut self.segments {
            s.start += lead;
        }
        for d in self.gaps.iter_mut().chain(self.overlaps.iter_mut()) {
            d.at_sample += lead;
        }
        self.n_samples += lead;
        self.start_us = start_us;
    }

    /// Where sample 0 of file `i` lies on the record axis (`None`: the file was skipped).
    pub fn first_sample(&self, i: usize) -> Option<u64> {
        self.segments
            .iter()
            .find(|s| s.file == i)
            .map(|s| s.start.saturating_sub(s.file_offset))
    }

    /// The discontinuities as cube attributes.
    pub fn discontinuities_json(list: &[Discontinuity], t0_us: i64, fs: f64) -> serde_json::Value {
        json!(list
            .iter()
            .map(|d| json!({
                "after_file": file_name(&d.before),
                "before_file": file_name(&d.after),
                "time": cryocube_cube::cf::format_utc_us(t0_us + (d.at_sample as f64 * 1e6 / fs).round() as i64),
                "samples": d.samples,
                "seconds": d.seconds,
            }))
            .collect::<Vec<_>>())
    }
}

/// The last component of a path, for messages and attributes.
pub fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

/// Samples of the selected channels over one range of the record, channel-major (each
/// channel's samples contiguous, as the STFT wants them).
pub struct Block {
    width: usize,
    /// Row stride (capacity in samples per channel).
    cap: usize,
    data: Vec<f32>,
    start: u64,
    len: usize,
}

impl Block {
    /// A block for `width` channels and up to `cap` samples each.
    pub fn new(width: usize, cap: usize) -> Self {
        Block {
            width,
            cap,
            data: vec![f32::NAN; width * cap],
            start: 0,
            len: 0,
        }
    }

    /// Samples of channel `c` (0-based within the selection).
    pub fn channel(&self, c: usize) -> &[f32] {
        &self.data[c * self.cap..c * self.cap + self.len]
    }

    /// Samples per channel it can hold.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// First record sample held.
    pub fn start(&self) -> u64 {
        self.start
    }
}

/// Fills [`Block`]s with consecutive, overlapping sample ranges, reading each file once: the
/// part of a new range that the previous block already holds is copied, not re-read. Two
/// blocks let the next one be read while the current one is transformed.
pub struct BlockReader<'r> {
    record: &'r Record,
    c0: u64,
    width: usize,
    open: Option<(usize, Box<dyn DasReader>)>,
    scratch: Vec<f32>,
    stats: SampleStats,
    /// Samples read from files so far (what was copied from a previous block not counted).
    samples_read: u64,
}

/// What the samples read so far were like: enough to tell a dead fibre (all zero), a record
/// of NaN and samples too large for float32 spectra apart, and to say so.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SampleStats {
    /// Largest magnitude of a sample that is not NaN.
    pub max_abs: f32,
    /// Whether any sample was NaN.
    pub nan: bool,
}

impl SampleStats {
    /// Takes in a slice of samples.
    pub fn add(&mut self, samples: &[f32]) {
        let m = samples.iter().fold(0f32, |m, v| m.max(v.abs()));
        self.max_abs = self.max_abs.max(m);
        if !self.nan {
            self.nan = samples.iter().any(|v| v.is_nan());
        }
    }

    /// Whether any sample was neither zero nor NaN.
    pub fn signal(&self) -> bool {
        self.max_abs > 0.0
    }

    /// The two put together.
    pub fn merge(self, o: SampleStats) -> SampleStats {
        SampleStats {
            max_abs: self.max_abs.max(o.max_abs),
            nan: self.nan || o.nan,
        }
    }
}

/// Lays time-major `rows` of `width` channels into channel-major `data` (each channel `cap`
/// samples long) from sample `base` on, a tile of channels at a time.
fn lay_in(rows: &[f32], width: usize, base: usize, cap: usize, data: &mut [f32]) {
    for c0 in (0..width).step_by(TILE) {
        let c1 = (c0 + TILE).min(width);
        for (r, row) in rows.chunks_exact(width).enumerate() {
            for (c, v) in row[c0..c1].iter().enumerate() {
                data[(c0 + c) * cap + base + r] = *v;
            }
        }
    }
}

/// Bytes read from a file per call. Bounds the scratch buffer whatever the block size, and
/// stays well under glibc's largest mmap threshold (32 MiB): the HDF5 binding allocates a fresh
/// array per read, and larger ones would be mapped and page-faulted anew every time.
const PIECE_BYTES: usize = 8 << 20;
/// Channels transposed together: keeps the writes of the transpose within a few pages.
const TILE: usize = 32;

impl<'r> BlockReader<'r> {
    /// Reads channels `c0 .. c1` of `record`.
    pub fn new(record: &'r Record, c0: u64, c1: u64) -> Self {
        BlockReader {
            record,
            c0,
            width: (c1 - c0) as usize,
            open: None,
            scratch: Vec::new(),
            stats: SampleStats::default(),
            samples_read: 0,
        }
    }

    /// Samples read from the files so far (channels x times), for showing that a read takes
    /// only the hyperslab it needs.
    pub fn samples_read(&self) -> u64 {
        self.samples_read
    }

    /// What the samples read so far were like (a record of zeros, e.g. a dead fibre or an
    /// unarmed interrogator, has no spectrum worth writing).
    pub fn stats(&self) -> SampleStats {
        self.stats
    }

    /// Makes `dst` hold record samples `a .. b`, taking what `prev` holds of them from `prev`
    /// (ranges move forward: `a` is not before `prev`'s start).
    pub fn load(&mut self, dst: &mut Block, prev: &Block, a: u64, b: u64) -> Result<(), DasError> {
        self.load_with(dst, prev, a, b, false)
    }

    /// [`Self::load`] for a block read while nothing else runs (a task's first, before any
    /// transform can start): a second thread lays each piece into the block while the next is
    /// read. Laying in takes as long as reading (about 0.16 s each for a Rhone-size block),
    /// so this halves the wait; behind the transforms of the block before, the plain load is
    /// hidden anyway and a third thread would only compete with them.
    pub fn load_alone(
        &mut self,
        dst: &mut Block,
        prev: &Block,
        a: u64,
        b: u64,
    ) -> Result<(), DasError> {
        self.load_with(dst, prev, a, b, true)
    }

    fn load_with(
        &mut self,
        dst: &mut Block,
        prev: &Block,
        a: u64,
        b: u64,
        overlapped: bool,
    ) -> Result<(), DasError> {
        let n = (b - a) as usize;
        assert!(
            n <= dst.cap && dst.width == self.width && (prev.len == 0 || a >= prev.start),
            "blocks must fit and move forward"
        );
        let prev_end = prev.start + prev.len as u64;
        let keep = if prev.len > 0 && a < prev_end {
            (prev_end - a).min(n as u64) as usize
        } else {
            0
        };
        let shift = (a.saturating_sub(prev.start)) as usize;
        for c in 0..self.width {
            let row = &mut dst.data[c * dst.cap..(c + 1) * dst.cap];
            if keep > 0 {
                let src = &prev.data[c * prev.cap + shift..c * prev.cap + shift + keep];
                row[..keep].copy_from_slice(src);
            }
            row[keep..n].fill(f32::NAN);
        }
        dst.start = a;
        dst.len = n;
        let fresh = a + keep as u64;
        if fresh < b {
            if overlapped {
                self.read_fresh_overlapped(dst, fresh, b)?;
            } else {
                self.read_fresh(dst, fresh, b)?;
            }
        }
        Ok(())
    }

    /// Reads samples `a .. b` into `dst`, channel-major (the files give them time-major).
    fn read_fresh(&mut self, dst: &mut Block, a: u64, b: u64) -> Result<(), DasError> {
        let (width, start, cap) = (self.width, dst.start, dst.cap);
        let data = &mut dst.data;
        self.read_pieces(a, b, |g, rows| {
            lay_in(rows, width, (g - start) as usize, cap, data)
        })
    }

    /// [`Self::read_fresh`], laying each piece in on a second thread while the next is read.
    fn read_fresh_overlapped(&mut self, dst: &mut Block, a: u64, b: u64) -> Result<(), DasError> {
        let width = self.width;
        let (start, cap) = (dst.start, dst.cap);
        let data = &mut dst.data;
        // One piece queued and one being laid in at most: memory stays a few pieces.
        let (to_place, placing) = std::sync::mpsc::sync_channel::<(u64, Vec<f32>)>(1);
        let (to_reuse, reusing) = std::sync::mpsc::channel::<Vec<f32>>();
        std::thread::scope(|s| {
            let placer = s.spawn(move || {
                for (g, rows) in placing {
                    lay_in(&rows, width, (g - start) as usize, cap, data);
                    // The reader may have finished: then the buffer is simply dropped.
                    let _ = to_reuse.send(rows);
                }
            });
            let read = self.read_pieces(a, b, |g, rows| {
                let spare = reusing.try_recv().unwrap_or_default();
                let piece = std::mem::replace(rows, spare);
                // Fails only if the placer panicked; its join below reports that.
                let _ = to_place.send((g, piece));
            });
            drop(to_place);
            if let Err(panic) = placer.join() {
                std::panic::resume_unwind(panic);
            }
            read
        })
    }

    /// Samples `a .. b` of the reader's channels in the files' own layout: row-major (time,
    /// channel), `(b - a) x width` values into `out`, NaN where no file covers a sample. For
    /// callers that hand the samples on as they are (Python's lazy arrays): no channel-major
    /// block in between.
    pub fn read_rows(&mut self, a: u64, b: u64, out: &mut [f32]) -> Result<(), DasError> {
        let width = self.width;
        out[..(b - a) as usize * width].fill(f32::NAN);
        self.read_pieces(a, b, |g, rows| {
            let at = (g - a) as usize * width;
            out[at..at + rows.len()].copy_from_slice(rows);
        })
    }

    /// Reads samples `a .. b` file by file, in pieces of bounded size, and hands each piece
    /// (row-major, its first row's record index) to `place`, which may take the buffer (and
    /// leave another in its place).
    fn read_pieces(
        &mut self,
        a: u64,
        b: u64,
        mut place: impl FnMut(u64, &mut Vec<f32>),
    ) -> Result<(), DasError> {
        let record = self.record;
        for seg in record
            .segments
            .iter()
            .filter(|s| s.start < b && s.start + s.len > a)
        {
            if self.open.as_ref().map(|(i, _)| *i) != Some(seg.file) {
                // Dropping the previous reader closes its file: one file open at a time.
                self.open = None;
                let h = &record.files[seg.file];
                let reader = read::open_part(&h.path, Some(h.format), h.part)?;
                self.open = Some((seg.file, reader));
            }
            let (_, reader) = self.open.as_mut().expect("opened above");
            let lo = a.max(seg.start);
            let hi = b.min(seg.start + seg.len);
            let mut g = lo;
            while g < hi {
                let piece_rows = (PIECE_BYTES / (4 * self.width)).max(16);
                let rows = ((hi - g) as usize).min(piece_rows);
                self.scratch.resize(rows * self.width, 0.0);
                let file_s0 = seg.file_offset + (g - seg.start);
                reader.read_block(
                    file_s0,
                    rows,
                    self.c0,
                    self.c0 + self.width as u64,
                    &mut self.scratch,
                )?;
                self.stats.add(&self.scratch);
                self.samples_read += self.scratch.len() as u64;
                place(g, &mut self.scratch);
                g += rows as u64;
            }
        }
        Ok(())
    }
}
