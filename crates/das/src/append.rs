//! `cryocube das --append`: continuing a finished cube with later files.
//!
//! Monitoring runs append every few minutes, often with the same folder as input, so an
//! append must (1) skip the inputs the cube already holds, (2) continue the cube's sample axis
//! exactly, so that appending file C to the cube of A+B gives the cube of A+B+C: the windows
//! that straddle the old end need the last samples of the cube's last file, which is re-read
//! (from the inputs, or from the path the cube recorded); (3) keep the time axis regular:
//! a gap between the cube and the new files becomes NaN windows and is recorded; and (4) be
//! resumable like any run. The cube's own parameters (window, hop, bins, channels, dtype,
//! format, chunks) are used; options the user states must agree with them.
//!
//! Order of writes: the existing values of the time chunk the append starts in are put aside,
//! then the plan is stored, then the cube is unpublished and resized. A kill at any point
//! leaves either the untouched cube or a plan that the same command resumes from.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use cryocube_cube::cf::{format_utc_us, now_iso, parse_utc_us};
use cryocube_cube::job::Job as StoredJob;
use cryocube_cube::{Attrs, CubeReader, CubeWriter, DType, Location};

use crate::job::{
    self, aside_key, channel_range, coverage, file_size, fingerprint, input_files_json,
    summary_text, time_values, DasOptions, DasPayload, DasSummary, Job, Layout, OutputType, Param,
    Plan,
};
use crate::stream::{expand_inputs, file_name, Discontinuity, Geometry, Record, TOLERANCE_SAMPLES};
use crate::transform::{Scale, SpectrumParams, Window};
use crate::DasError;

/// One input file the cube already holds, as its `input_files` attribute describes it.
#[derive(Clone, Debug)]
pub(crate) struct HeldFile {
    pub name: String,
    pub size: u64,
    pub path: Option<PathBuf>,
    pub start_us: i64,
    pub samples: u64,
    /// Where the file's sample 0 lies on the cube's sample axis.
    pub first_sample: Option<u64>,
}

/// The cube being extended, as it was before the append began.
pub(crate) struct Base {
    pub root: PathBuf,
    /// Root attributes before the append.
    pub attrs: Attrs,
    /// Windows the cube held.
    pub windows: u64,
    /// UTC µs of sample 0 of the cube's sample axis.
    pub start_us: i64,
    pub params: SpectrumParams,
    pub c0: u64,
    pub c1: u64,
    pub n_channels: u64,
    pub channel_spacing: f64,
    pub first_distance: f64,
    pub layout: Layout,
    /// The cube's `--average` intervals, if its spectra are averaged.
    pub average: Option<job::Averaging>,
    pub files: Vec<HeldFile>,
    /// Inputs recognised as held files (canonical path -> index in `files`).
    held_inputs: Vec<(PathBuf, usize)>,
}

/// What [`prepare`] found.
pub(crate) enum Prepared {
    /// The job, and whether its plan was found (an append that was interrupted).
    Job(Box<Job>, bool),
    /// Every input is already in the cube (or too short to add a window): nothing was touched.
    NothingNew(DasSummary),
}

fn not_ours(root: &dyn std::fmt::Display, what: &str) -> DasError {
    DasError::Input(format!(
        "{root}: cannot append: {what} (is it a cube written by `cryocube das`?)"
    ))
}

impl Base {
    /// Reads the cube's description; while an append is unfinished, the root attributes and
    /// the old window count come from its plan.
    fn load(reader: &CubeReader, planned: Option<&Value>) -> Result<Base, DasError> {
        let root = reader.path().to_path_buf();
        let attrs = match planned {
            Some(j) => j["base_attrs"]
                .as_object()
                .cloned()
                .ok_or_else(|| not_ours(&root.display(), "its plan has no base_attrs"))?,
            None => reader.attrs().clone(),
        };
        let num = |key: &str| {
            attrs
                .get(key)
                .and_then(Value::as_f64)
                .ok_or_else(|| not_ours(&root.display(), &format!("no `{key}` attribute")))
        };
        let fs = num("das_sampling_rate")?;
        let spec = reader
            .array("spectrogram")
            .ok_or_else(|| not_ours(&root.display(), "no `spectrogram` array"))?
            .clone();
        let sattr = |key: &str| {
            spec.attrs.get(key).cloned().ok_or_else(|| {
                not_ours(
                    &root.display(),
                    &format!("spectrogram has no `{key}` attribute"),
                )
            })
        };
        let window_len = sattr("window_samples")?.as_u64().unwrap_or(0) as usize;
        let hop = sattr("hop_samples")?.as_u64().unwrap_or(0) as usize;
        let scale = Scale::parse(sattr("scale")?.as_str().unwrap_or_default())
            .ok_or_else(|| not_ours(&root.display(), "unknown `scale`"))?;
        let window = Window::parse(sattr("window")?.as_str().unwrap_or_default())
            .map_err(|e| not_ours(&root.display(), &format!("window: {e}")))?;
        let frequency = reader.read_all_f64("frequency")?;
        let channel = reader.read_all_i64("channel")?;
        let time = reader.read_all_i64("time")?;
        if window_len < 2 || hop < 1 || frequency.is_empty() || channel.is_empty() {
            return Err(not_ours(
                &root.display(),
                "empty or inconsistent coordinates",
            ));
        }
        let first_bin = (frequency[0] * window_len as f64 / fs).round() as usize;
        let params = SpectrumParams {
            sampling_rate: fs,
            window_len,
            hop,
            first_bin,
            last_bin: first_bin + frequency.len() - 1,
            scale,
            window,
        };
        let windows = match planned {
            Some(j) => j["base_windows"]
                .as_u64()
                .ok_or_else(|| not_ours(&root.display(), "its plan has no base_windows"))?,
            None => spec.shape[0],
        };
        let first_time = *time
            .first()
            .ok_or_else(|| not_ours(&root.display(), "no time coordinate values"))?;
        let average = match (
            spec.attrs
                .get("average_interval_samples")
                .and_then(Value::as_u64),
            spec.attrs.get("average_windows").and_then(Value::as_u64),
        ) {
            (Some(interval), Some(windows)) => Some(job::Averaging { interval, windows }),
            _ => None,
        };
        // Intervals are labelled by their start; windows as the scale says.
        let (offset, step) = match average {
            Some(a) => (0.0, a.interval as f64),
            None => (job::label_offset(&params), hop as f64),
        };
        let start_us = first_time - (offset * 1e6 / fs).round() as i64;
        check_time_axis(&time, windows, step * 1e6 / fs)
            .map_err(|m| not_ours(&root.display(), &m))?;
        let files = attrs
            .get("input_files")
            .and_then(Value::as_array)
            .ok_or_else(|| not_ours(&root.display(), "no `input_files` attribute"))?
            .iter()
            .map(|f| HeldFile {
                name: f["name"].as_str().unwrap_or_default().to_string(),
                size: f["size"].as_u64().unwrap_or(0),
                path: f["path"].as_str().map(PathBuf::from),
                start_us: f["start"].as_str().and_then(parse_utc_us).unwrap_or(0),
                samples: f["samples"].as_u64().unwrap_or(0),
                first_sample: f["first_sample"].as_u64(),
            })
            .collect();
        let (n_channels, channel_spacing, first_distance) = (
            num("das_channel_count")? as u64,
            num("das_channel_spacing")?,
            num("das_first_channel_distance")?,
        );
        let packing = cryocube_cube::pack::Packing::of(&spec);
        let layout = Layout {
            dtype: match (spec.dtype, packing) {
                (DType::F16, _) => OutputType::F16,
                (DType::I16, Some(p)) => OutputType::Quantized { step: p.step },
                (DType::F32, _) => OutputType::F32,
                (other, _) => {
                    return Err(not_ours(
                        &root.display(),
                        &format!("its spectrogram is {} without CF packing", other.v3_name()),
                    ))
                }
            },
            zarr: reader.format(),
            time_chunk: spec.chunks[0] as usize,
            distance_chunk: spec.chunks[1] as usize,
            add_offset: packing.map_or(0.0, |p| p.offset),
        };
        Ok(Base {
            root,
            windows,
            start_us,
            params,
            c0: channel[0] as u64,
            c1: channel[channel.len() - 1] as u64 + 1,
            n_channels,
            channel_spacing,
            first_distance,
            layout,
            average,
            files,
            attrs,
            held_inputs: Vec::new(),
        })
    }

    /// Whether `path` is one of the files the cube held before the append.
    pub(crate) fn holds(&self, path: &Path) -> bool {
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        self.held_inputs.iter().any(|(p, _)| *p == canonical)
    }

    /// The held file an input is, by name and size.
    fn held(&self, path: &Path) -> Option<usize> {
        let (name, size) = (file_name(path), file_size(path));
        self.files
            .iter()
            .position(|f| f.name == name && f.size == size)
    }

    /// Options the user stated must agree with the cube.
    fn check_given(&self, opts: &DasOptions, record: &Record) -> Result<(), DasError> {
        let p = &self.params;
        let fs = p.sampling_rate;
        let mut differences = Vec::new();
        let mut differ = |what: String| differences.push(what);
        for param in &opts.given {
            match param {
                Param::Df => {
                    let n = SpectrumParams::window_for(fs, opts.df);
                    if n != p.window_len {
                        differ(format!(
                            "--df {} (a {n}-sample window; the cube's is {} samples, df {} Hz)",
                            opts.df,
                            p.window_len,
                            fs / p.window_len as f64
                        ));
                    }
                }
                Param::Dt => {
                    let n = SpectrumParams::hop_for(fs, opts.dt);
                    if n != p.hop {
                        differ(format!(
                            "--dt {} (a {n}-sample hop; the cube's is {} samples, dt {} s)",
                            opts.dt,
                            p.hop,
                            p.hop as f64 / fs
                        ));
                    }
                }
                Param::Fmin | Param::Fmax => {
                    let fmax = opts.fmax.unwrap_or(fs / 2.0);
                    let (a, b) = SpectrumParams::bins_for(fs, p.window_len, opts.fmin, fmax);
                    let (ok, flag, value) = match param {
                        Param::Fmin => (a == p.first_bin, "--fmin", opts.fmin),
                        _ => (b == p.last_bin, "--fmax", fmax),
                    };
                    if !ok {
                        let f = p.frequencies();
                        differ(format!(
                            "{flag} {value} (the cube holds {} .. {} Hz)",
                            f[0],
                            f[f.len() - 1]
                        ));
                    }
                }
                Param::Channels => match channel_range(opts.channels, record) {
                    Ok((a, b)) if (a, b) == (self.c0, self.c1) => {}
                    _ => differ(format!(
                        "the channel selection (the cube holds channels {}:{})",
                        self.c0, self.c1
                    )),
                },
                Param::Window if opts.window.name() != p.window.name() => differ(format!(
                    "--window {} (the cube's is {})",
                    opts.window.name(),
                    p.window.name()
                )),
                Param::Scale if opts.scale != p.scale => differ(format!(
                    "--scale {} (the cube's is {})",
                    opts.scale.name(),
                    p.scale.name()
                )),
                Param::Dtype if opts.dtype != self.layout.dtype => differ(format!(
                    "--dtype/--quantize (the cube's spectra are {})",
                    self.layout.dtype.describe()
                )),
                Param::ZarrFormat if opts.zarr != self.layout.zarr => differ(format!(
                    "--zarr-format/--shard (the cube is {:?})",
                    self.layout.zarr
                )),
                Param::Chunks
                    if (opts.time_chunk, opts.distance_chunk)
                        != (self.layout.time_chunk, self.layout.distance_chunk) =>
                {
                    differ(format!(
                        "--chunks {},{} (the cube's are {},{})",
                        opts.time_chunk,
                        opts.distance_chunk,
                        self.layout.time_chunk,
                        self.layout.distance_chunk
                    ))
                }
                _ => {}
            }
        }
        if differences.is_empty() {
            Ok(())
        } else {
            Err(DasError::Parameters {
                path: self.root.clone(),
                message: format!(
                    "--append continues the cube with its own parameters, and these differ: {}; leave them out",
                    differences.join("; ")
                ),
            })
        }
    }

    /// The new files must fit the cube: same sampling rate, channels, spacing and origin.
    fn check_record(&self, record: &Record) -> Result<(), DasError> {
        let cube = Geometry {
            sampling_rate: self.params.sampling_rate,
            n_channels: self.n_channels,
            channel_spacing: self.channel_spacing,
            first_distance: self.first_distance,
        };
        let files = Geometry {
            sampling_rate: record.sampling_rate,
            n_channels: record.n_channels,
            channel_spacing: record.channel_spacing,
            first_distance: record.first_distance,
        };
        cube.differs_from(&files).map_or(Ok(()), |(what, a, b)| {
            Err(DasError::Mismatch {
                a: self.root.clone(),
                b: record.files[0].path.clone(),
                message: format!("{what} differs (cube {a}, file {b})"),
            })
        })
    }

    /// Time of sample `s` of the cube's axis.
    fn time_of(&self, s: u64) -> i64 {
        self.start_us + (s as f64 * 1e6 / self.params.sampling_rate).round() as i64
    }
}

/// Reads the cube and the inputs and readies the append (or finds nothing to add).
pub(crate) fn prepare(opts: &DasOptions) -> Result<Prepared, DasError> {
    let out = &opts.output;
    let reader = CubeReader::open(out)?;
    let stored = StoredJob::open(reader.store().clone())?;
    let earlier: Option<(StoredJob, DasPayload)> = match stored {
        Some(j) if j.plan.kind == job::KIND_APPEND => {
            let payload: DasPayload = j.payload()?;
            Some((j, payload))
        }
        Some(_) => {
            return Err(DasError::Input(format!(
                "{}: an unfinished cube (a run was interrupted); run its command again to finish it before appending",
                out.display()
            )))
        }
        None if !reader.is_complete() => {
            return Err(not_ours(out, "it is not a finished cube"));
        }
        None => None,
    };
    let planned = earlier
        .as_ref()
        .map(|(_, p)| json!({"base_attrs": p.base_attrs, "base_windows": p.base_windows}));
    let mut base = Base::load(&reader, planned.as_ref())?;
    let p = base.params.clone();
    let fs = p.sampling_rate;

    // Inputs the cube holds are skipped, except for the last samples an append needs.
    let inputs = expand_inputs(&opts.inputs)?;
    let mut new_paths = Vec::new();
    for path in inputs {
        match base.held(&path) {
            Some(i) => {
                let canonical = std::fs::canonicalize(&path).unwrap_or(path);
                base.held_inputs.push((canonical, i));
            }
            None => new_paths.push(path),
        }
    }
    let already_in_cube = base.held_inputs.len();
    let nothing = |why: String| {
        log::info!("{}: nothing to append: {why}", out.display());
        Ok(Prepared::NothingNew(DasSummary {
            output: out.clone(),
            files: 0,
            windows: base.windows,
            new_windows: 0,
            already_in_cube,
            channels: base.c1 - base.c0,
            bins: p.n_bins(),
            gaps: 0,
            overlaps: 0,
            resumed_from_block: 0,
            warnings: Vec::new(),
            averaged: base.average.is_some(),
        }))
    };
    if new_paths.is_empty() {
        return nothing(format!(
            "all {already_in_cube} input file(s) are already in the cube"
        ));
    }

    // The held files whose samples the next windows need: usually the last one.
    let needed_from = base.windows * base.average.map_or(p.hop as u64, |a| a.interval);
    let mut tails: Vec<(PathBuf, usize)> = Vec::new();
    let mut missing = Vec::new();
    for (i, f) in base.files.iter().enumerate().rev() {
        let Some(first) = f.first_sample else {
            continue;
        };
        if first + f.samples <= needed_from {
            break;
        }
        let given = base
            .held_inputs
            .iter()
            .find(|(_, j)| *j == i)
            .map(|(p, _)| p.clone());
        let recorded = f
            .path
            .clone()
            .filter(|p| p.is_file() && file_size(p) == f.size);
        match given.or(recorded) {
            Some(path) => tails.push((path, i)),
            None => missing.push(i),
        }
    }
    for (path, i) in &tails {
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
        if !base.held_inputs.iter().any(|(p, _)| *p == canonical) {
            base.held_inputs.push((canonical, *i));
        }
    }
    let mut paths = new_paths.clone();
    paths.extend(tails.iter().map(|(p, _)| p.clone()));
    let mut record = Record::scan_files(&paths, opts.format, opts.distances)?;
    base.check_record(&record)?;
    base.check_given(opts, &record)?;
    // Where the cube's samples end: the end of its last file on the sample axis.
    let end_of_cube = base.time_of(
        base.files
            .iter()
            .filter_map(|f| f.first_sample.map(|s| s + f.samples))
            .max()
            .unwrap_or(needed_from),
    );
    let tolerance_us = (TOLERANCE_SAMPLES * 1e6 / fs).ceil() as i64;
    for h in record.files.iter().filter(|h| !base.holds(&h.path)) {
        // Wholly inside (nothing new) is refused; one that starts inside and goes on past
        // the end overlaps, and its repeated samples are skipped as in one run.
        if h.end_us() <= end_of_cube + tolerance_us {
            return Err(DasError::Input(format!(
                "{}: its samples ({} .. {}) lie within the cube's time span (which ends at {}): --append only adds later data; rebuild the cube to insert it",
                h.path.display(),
                format_utc_us(h.start_us),
                format_utc_us(h.end_us()),
                format_utc_us(end_of_cube)
            )));
        }
    }
    for &i in &missing {
        let f = &base.files[i];
        record.warnings.push(format!(
            "{}: the cube's last input is neither among the inputs nor at {}: the windows that need its last samples are NaN (give it among the inputs to fill them)",
            f.name,
            f.path.as_deref().map(|p| p.display().to_string()).unwrap_or_else(|| "its recorded path".into())
        ));
    }

    // Where the record's first sample lies on the cube's axis.
    let first_file = &record.files[0];
    let joint;
    let lead = match tails.iter().find(|(p, _)| *p == first_file.path) {
        Some((_, i)) => {
            joint = None;
            base.files[*i].first_sample.expect("tails have a position")
        }
        None => {
            let last = base
                .files
                .iter()
                .filter(|f| f.first_sample.is_some())
                .max_by_key(|f| f.first_sample.unwrap_or(0) + f.samples)
                .ok_or_else(|| not_ours(out, "no input file with a sample position"))?;
            let expected = last.first_sample.unwrap_or(0) + last.samples;
            let diff =
                (first_file.start_us - last.start_us) as f64 * fs / 1e6 - last.samples as f64;
            let rounded = diff.round() as i64;
            let lead = expected as i64
                + if diff.abs() > TOLERANCE_SAMPLES {
                    rounded
                } else {
                    0
                };
            if lead < 0 {
                return Err(DasError::Input(format!(
                    "{}: starts before the cube does ({})",
                    first_file.path.display(),
                    format_utc_us(base.start_us)
                )));
            }
            joint = (diff.abs() > TOLERANCE_SAMPLES).then(|| Discontinuity {
                before: last
                    .path
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(&last.name)),
                after: first_file.path.clone(),
                at_sample: expected,
                samples: rounded,
                seconds: rounded as f64 / fs,
            });
            lead as u64
        }
    };
    record.place_at(base.start_us, lead);
    if let Some(d) = joint {
        if d.samples > 0 {
            record.gaps.insert(0, d);
        } else {
            record.overlaps.insert(0, d);
        }
    }
    let n_windows = match base.average {
        Some(a) => record.n_samples / a.interval,
        None => p.n_windows(record.n_samples),
    };
    if n_windows <= base.windows {
        return nothing(format!(
            "the new file(s) end at {}, too soon after the cube's last window to complete another",
            format_utc_us(record.start_us + (record.n_samples as f64 * 1e6 / fs).round() as i64)
        ));
    }
    let plan = Plan {
        record,
        params: p.clone(),
        c0: base.c0,
        c1: base.c1,
        n_windows,
        average: base.average,
    };
    let layout = base.layout;
    job::check_resources(opts, &plan, &layout)?;
    let mut fp = fingerprint(&plan, &layout);
    fp["base_windows"] = json!(base.windows);
    let fp = fp.to_string();
    let t_chunk = layout.time_chunk as u64;
    let (mut writer, stored, payload, resumed) = match earlier {
        Some((stored, payload)) => {
            if stored.plan.fingerprint != fp {
                return Err(DasError::Input(format!(
                    "{}: an unfinished append of other files is in progress; run that command again to finish it (or rebuild with --overwrite)",
                    out.display()
                )));
            }
            log::info!("{}: resuming an unfinished append", out.display());
            let writer = CubeWriter::reopen(out)?;
            writer.unpublish()?;
            (writer, stored, payload, true)
        }
        None => {
            let writer = CubeWriter::reopen(out)?;
            put_aside_partial_chunks(&reader, &writer, &base)?;
            let new_files = plan
                .record
                .files
                .iter()
                .filter(|h| !base.holds(&h.path))
                .count();
            let payload = DasPayload {
                sizes: job::file_sizes(&plan.record),
                spectrogram_attrs: reader
                    .array("spectrogram")
                    .map(|s| s.attrs.clone())
                    .unwrap_or_default(),
                root_attrs: root_attrs(opts, &plan, &base),
                first_block: base.windows / t_chunk,
                base_windows: base.windows,
                base_attrs: Some(base.attrs.clone()),
                new_files,
                already_in_cube,
                plan,
                layout,
                allow_zero: opts.allow_zero,
            };
            // The plan before the cube changes: a kill from here on leaves a plan that the
            // same command resumes.
            let stored = job::store_plan(&writer, job::KIND_APPEND, fp, &payload)?;
            writer.unpublish()?;
            (writer, stored, payload, false)
        }
    };
    let n_windows = payload.plan.n_windows;
    let spec = writer
        .spec("spectrogram")
        .ok_or_else(|| not_ours(out, "no `spectrogram` array"))?;
    let (width, nb) = (spec.shape[1], spec.shape[2]);
    writer.resize("spectrogram", vec![n_windows, width, nb])?;
    writer.resize("time", vec![n_windows])?;
    if base.average.is_some() {
        writer.resize("count", vec![n_windows, width])?;
    }
    writer.write_all("time", &time_values(&payload.plan))?;
    log::info!(
        "{}: appending {} {} to its {} from {} new file(s){}",
        out.display(),
        n_windows - payload.base_windows,
        if base.average.is_some() {
            "interval(s)"
        } else {
            "window(s)"
        },
        payload.base_windows,
        new_paths.len(),
        if already_in_cube > 0 {
            format!(" ({already_in_cube} input(s) already in the cube skipped)")
        } else {
            String::new()
        }
    );
    Ok(Prepared::Job(
        Box::new(Job {
            stored,
            payload,
            writer,
        }),
        resumed,
    ))
}

/// Keeps the existing windows of the time chunk the append starts in, per distance chunk,
/// because that chunk is rewritten whole and a kill midway must not lose them.
fn put_aside_partial_chunks(
    reader: &CubeReader,
    writer: &CubeWriter,
    base: &Base,
) -> Result<(), DasError> {
    let t_chunk = base.layout.time_chunk as u64;
    let d_chunk = base.layout.distance_chunk as u64;
    let first = base.windows / t_chunk * t_chunk;
    let kept = base.windows - first;
    if kept == 0 {
        return Ok(());
    }
    let width = base.c1 - base.c0;
    let nb = base.params.n_bins() as u64;
    for dc in 0..width.div_ceil(d_chunk) {
        let lo = dc * d_chunk;
        let hi = (lo + d_chunk).min(width);
        let values = reader.read_f64("spectrogram", &[first, lo, 0], &[kept, hi - lo, nb])?;
        // Chunk layout: [kept][d_chunk][nb], channels past the array's edge NaN.
        let mut rows = vec![f32::NAN; (kept * d_chunk * nb) as usize];
        for t in 0..kept {
            for c in 0..hi - lo {
                let src = ((t * (hi - lo) + c) * nb) as usize;
                let dst = ((t * d_chunk + c) * nb) as usize;
                for k in 0..nb as usize {
                    rows[dst + k] = values[src + k] as f32;
                }
            }
        }
        writer.put_aside(&aside_key(dc as usize), &rows)?;
        if base.average.is_some() {
            let counts = reader.read_f64("count", &[first, lo], &[kept, hi - lo])?;
            let mut rows = vec![0f32; (kept * d_chunk) as usize];
            for t in 0..kept {
                for c in 0..hi - lo {
                    rows[(t * d_chunk + c) as usize] = counts[(t * (hi - lo) + c) as usize] as f32;
                }
            }
            writer.put_aside(&count_aside_key(dc as usize), &rows)?;
        }
    }
    Ok(())
}

/// Key under which an append of averaged spectra keeps a distance chunk's existing counts.
pub(crate) fn count_aside_key(dc: usize) -> String {
    format!("count.{dc}")
}

/// Puts the cube back as it was before a failed append: the rows of the time chunk the
/// append started in from what was put aside, later chunks removed, arrays shrunk, the old
/// attributes published, the plan removed. Best effort: if this fails too, the plan stays,
/// the cube reads as unfinished, and the same command resumes the append.
pub(crate) fn roll_back(
    mut writer: CubeWriter,
    payload: &DasPayload,
    base_attrs: &Attrs,
    location: &Location,
) {
    let (plan, layout) = (&payload.plan, &payload.layout);
    let windows = payload.base_windows;
    let result = (|| -> Result<(), DasError> {
        let t = layout.time_chunk as u64;
        let d = layout.distance_chunk as u64;
        let width = plan.c1 - plan.c0;
        let nb = plan.params.n_bins() as u64;
        let first = windows / t;
        let kept = (windows % t) as usize;
        for b in first..plan.n_windows.div_ceil(t) {
            for dc in 0..width.div_ceil(d) {
                let idx = [b, dc, 0];
                if b == first && kept > 0 {
                    let rows = writer
                        .get_aside(&aside_key(dc as usize))?
                        .ok_or_else(|| DasError::Input("the rows put aside are missing".into()))?;
                    let mut chunk = vec![f32::NAN; (t * d * nb) as usize];
                    chunk[..rows.len()].copy_from_slice(&rows);
                    layout
                        .encoder()
                        .store(&writer, idx, &chunk, &mut Default::default())?;
                    if plan.average.is_some() {
                        let rows = writer
                            .get_aside(&count_aside_key(dc as usize))?
                            .ok_or_else(|| {
                                DasError::Input("the counts put aside are missing".into())
                            })?;
                        let mut counts = vec![0i32; (t * d) as usize];
                        for (c, r) in counts.iter_mut().zip(&rows) {
                            *c = *r as i32;
                        }
                        writer.write_chunk("count", &[b, dc], &counts)?;
                    }
                } else {
                    writer.erase_chunk("spectrogram", &idx)?;
                    if plan.average.is_some() {
                        writer.erase_chunk("count", &[b, dc])?;
                    }
                }
            }
        }
        let time = CubeReader::open(location)?.read_all_i64("time")?;
        if plan.average.is_some() {
            writer.resize("count", vec![windows, width])?;
        }
        writer.resize("spectrogram", vec![windows, width, nb])?;
        writer.resize("time", vec![windows])?;
        writer.write_all("time", &time[..windows as usize])?;
        let store = writer.store().clone();
        writer.finish(base_attrs.clone())?;
        if let Some(stored) = StoredJob::open(store)? {
            stored.remove()?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => log::warn!(
            "{location}: the append failed; the cube is back as it was ({windows} windows)"
        ),
        Err(e) => log::error!(
            "{location}: the append failed and putting the cube back failed too ({e}); it is left unfinished, and the same command resumes the append"
        ),
    }
}

/// The cube's root attributes after the append: the new files, gaps, overlaps and warnings
/// added to the old lists, coverage and summary updated, history extended.
pub(crate) fn root_attrs(opts: &DasOptions, plan: &Plan, base: &Base) -> Attrs {
    let r = &plan.record;
    let mut attrs = base.attrs.clone();
    let mut extend = |key: &str, more: Vec<Value>| {
        let mut list = attrs
            .get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        list.extend(more);
        attrs.insert(key.into(), Value::Array(list));
    };
    extend(
        "input_files",
        input_files_json(r, |i| !base.holds(&r.files[i].path), opts.record_paths),
    );
    let list = |v: Value| v.as_array().cloned().unwrap_or_default();
    extend(
        "gaps",
        list(Record::discontinuities_json(
            &r.gaps,
            r.start_us,
            r.sampling_rate,
        )),
    );
    extend(
        "overlaps",
        list(Record::discontinuities_json(
            &r.overlaps,
            r.start_us,
            r.sampling_rate,
        )),
    );
    extend(
        "warnings",
        job::recorded_warnings(r, opts.record_paths)
            .into_iter()
            .map(|w| json!(w))
            .collect(),
    );
    let n_files = attrs
        .get("input_files")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let (_, last) = coverage(plan);
    let now = now_iso();
    let history = format!(
        "{}\n{now} cryocube {} das --append ({} file(s)) -o {}",
        attrs
            .get("history")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        env!("CARGO_PKG_VERSION"),
        r.files.iter().filter(|h| !base.holds(&h.path)).count(),
        opts.output.display()
    );
    attrs.insert("summary".into(), json!(summary_text(plan, n_files)));
    attrs.insert("time_coverage_end".into(), json!(last));
    attrs.insert("history".into(), json!(history));
    attrs.insert("date_modified".into(), json!(now));
    attrs
}

/// Checks the time coordinate an append continues: as many labels as windows, one hop
/// apart (to the microsecond the labels are rounded to). A missing or damaged `time` chunk
/// reads as the fill value (1970-01-01 everywhere) and must not be extended as if it were
/// the cube's time.
fn check_time_axis(time: &[i64], windows: u64, step_us: f64) -> Result<(), String> {
    if (time.len() as u64) < windows {
        return Err(format!(
            "the time coordinate has {} values for {windows} windows",
            time.len()
        ));
    }
    let time = &time[..windows as usize];
    if time.first() == Some(&0) {
        return Err("the time coordinate starts at 1970-01-01T00:00:00Z (its fill value): is the chunk `time/0` missing? Rebuild the cube".into());
    }
    if let Some(i) = time
        .windows(2)
        .position(|w| ((w[1] - w[0]) as f64 - step_us).abs() > 2.0)
    {
        return Err(format!(
            "the time coordinate is damaged: windows {i} and {} are {} µs apart, not one hop ({step_us} µs); is a chunk of `time` missing? Rebuild the cube",
            i + 1,
            time[i + 1] - time[i]
        ));
    }
    Ok(())
}
