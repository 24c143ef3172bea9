//! The `cryocube das` job: a record -> spectra -> one cube, block by block.
//!
//! The cube is `spectrogram(time, distance, frequency)` with coordinates `time` (UTC, CF),
//! `distance` (m), `channel` (int, on `distance`) and `frequency` (Hz). Work proceeds in time
//! blocks of one chunk height: the block's samples (all selected channels) are loaded once,
//! spectra of each distance chunk are computed in parallel and stored as soon as they are
//! done, so memory is one block whatever the record length.
//!
//! The job follows the cube library's model ([`cryocube_cube::job`]): the plan (headers
//! scanned once, arrays laid out, attributes fixed) is stored in the unfinished cube, a unit
//! is one time block, and each finished block is recorded. So a killed run started again
//! continues where it stopped, and `cryocube task` can run shares of the blocks on many
//! machines; all give the same chunk bytes. `--append` (see [`crate::append`]) plans the
//! continuation of a finished cube and runs through the same block loop.

use std::path::PathBuf;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use cryocube_cube::budget::{human_count, Budget};
use cryocube_cube::cf::{attrs, format_number, format_utc_us, now_iso, time_attrs};
use cryocube_cube::job::Job as StoredJob;
use cryocube_cube::lock::{LockMode, StoreLock};
use cryocube_cube::{ArraySpec, Attrs, CubeWriter, DType, Location, WriteOptions, ZarrFormat};

use crate::quantize::Buffer;
use crate::read::Format;
use crate::stream::{file_name, Block, BlockReader, Distances, Record, SampleStats};
use crate::transform::{Scale, SpectrumParams, Stft, Window};
use crate::DasError;

/// Which channels go into the cube.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ChannelSelection {
    /// Every channel of the files.
    All,
    /// Channel indices `a .. b` (end exclusive), 0 = first channel of the files.
    Indices(u64, u64),
    /// Channels whose distance lies in `a ..= b` metres.
    Distance(f64, f64),
}

/// Element type of the spectrogram variable.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum OutputType {
    /// 32-bit floats.
    F32,
    /// 16-bit floats (half the size; about 3 significant digits).
    F16,
    /// int16 codes `step` apart (in the scale's units, e.g. dB), CF-packed: the value is
    /// `add_offset + code * step`, at most `step / 2` from the float. See [`crate::quantize`].
    Quantized {
        /// The spacing of representable values.
        step: f64,
    },
}

impl OutputType {
    /// The stored element type.
    pub(crate) fn dtype(self) -> DType {
        match self {
            OutputType::F32 => DType::F32,
            OutputType::F16 => DType::F16,
            OutputType::Quantized { .. } => DType::I16,
        }
    }

    /// As a user would say it: `float32`, `float16`, `int16 codes 0.05 apart`.
    pub fn describe(self) -> String {
        match self {
            OutputType::Quantized { step } => format!("int16 codes {} apart", format_number(step)),
            other => other.dtype().v3_name().to_string(),
        }
    }
}

/// Options whose value a user can state explicitly. With `--append` the cube's own values
/// are used; a stated one must agree with them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    /// `--df`.
    Df,
    /// `--dt`.
    Dt,
    /// `--fmin`.
    Fmin,
    /// `--fmax`.
    Fmax,
    /// `--channels` or `--distance`.
    Channels,
    /// `--window`.
    Window,
    /// `--scale`.
    Scale,
    /// `--dtype`.
    Dtype,
    /// `--zarr-format` or `--shard`.
    ZarrFormat,
    /// `--chunks`.
    Chunks,
}

/// Everything `cryocube das` is asked to do.
#[derive(Clone, Debug)]
pub struct DasOptions {
    /// Files, folders or glob patterns.
    pub inputs: Vec<PathBuf>,
    /// Where the cube goes.
    pub output: Location,
    /// The input layout; detected from the content when `None`.
    pub format: Option<Format>,
    /// Frequency resolution, Hz (window length 1/df s).
    pub df: f64,
    /// Hop between windows, s.
    pub dt: f64,
    /// Lowest frequency kept, Hz.
    pub fmin: f64,
    /// Highest frequency kept, Hz; `None` for Nyquist.
    pub fmax: Option<f64>,
    /// Which channels go into the cube.
    pub channels: ChannelSelection,
    /// The taper.
    pub window: Window,
    /// The spectral scale and time labels.
    pub scale: Scale,
    /// The spectrogram's element type.
    pub dtype: OutputType,
    /// Zarr v2 or v3 (sharded or not).
    pub zarr: ZarrFormat,
    /// Replace an existing cube.
    pub overwrite: bool,
    /// Windows per time chunk (and per processing block).
    pub time_chunk: usize,
    /// Channels per distance chunk.
    pub distance_chunk: usize,
    /// Extend the existing cube at `output` with later files (create it if absent).
    pub append: bool,
    /// The options the user stated (the others are defaults); used by `append`.
    pub given: Vec<Param>,
    /// Wait for another writer of the output to finish instead of stopping.
    pub wait: bool,
    /// The longest gap between files that is filled with NaN windows, seconds; a longer one
    /// (usually a wrong clock) is an error. `None`: any gap.
    pub max_gap: Option<f64>,
    /// Record each input's absolute path in the cube (`input_files`), so that `--append`
    /// finds the last file even when it is not among the inputs. Off by default: a path
    /// names home folders and machines, and a published cube travels.
    pub record_paths: bool,
    /// Channel spacing and first distance given by the user (for formats without distances).
    pub distances: Distances,
    /// Keep a record whose every sample is zero (its spectra are `-inf`) instead of refusing
    /// it as a dead fibre.
    pub allow_zero: bool,
    /// `--average SECONDS`: one Welch-averaged spectrum per interval of this length instead
    /// of one per window (see [`crate::average`]).
    pub average: Option<f64>,
}

/// The default of [`DasOptions::max_gap`]: a day. A month-long campaign has gaps of hours at
/// most; a file with a clock years off would otherwise make a cube of empty windows.
pub const DEFAULT_MAX_GAP_S: f64 = 86_400.0;

impl DasOptions {
    /// The seed workflow's parameters (df 1 Hz, dt 0.1 s, 0-100 Hz) with our defaults.
    pub fn new(inputs: Vec<PathBuf>, output: impl Into<Location>) -> Self {
        DasOptions {
            inputs,
            output: output.into(),
            format: None,
            df: 1.0,
            dt: 0.1,
            fmin: 0.0,
            fmax: Some(100.0),
            channels: ChannelSelection::All,
            window: Window::Tukey(0.25),
            scale: Scale::Db,
            dtype: OutputType::F32,
            zarr: ZarrFormat::V2,
            overwrite: false,
            time_chunk: 256,
            distance_chunk: 64,
            append: false,
            given: Vec::new(),
            wait: false,
            max_gap: Some(DEFAULT_MAX_GAP_S),
            record_paths: false,
            distances: Distances::default(),
            allow_zero: false,
            average: None,
        }
    }
}

/// What a finished job reports.
#[derive(Clone, Debug)]
pub struct DasSummary {
    /// Where the cube is.
    pub output: Location,
    /// Files read by this run.
    pub files: usize,
    /// Windows in the cube.
    pub windows: u64,
    /// Windows this run added (all of them unless appending).
    pub new_windows: u64,
    /// Inputs skipped because the cube already holds them (appending).
    pub already_in_cube: usize,
    /// Channels in the cube.
    pub channels: u64,
    /// Frequencies in the cube.
    pub bins: usize,
    /// Gaps between files (filled with NaN windows).
    pub gaps: usize,
    /// Overlaps between files (repeated samples skipped).
    pub overlaps: usize,
    /// The block this run resumed after (0: it started from the beginning).
    pub resumed_from_block: u64,
    /// Things the user should know, each naming its file.
    pub warnings: Vec<String>,
    /// The time steps are `--average` intervals, not windows.
    pub averaged: bool,
}

impl DasSummary {
    /// What a time step of the cube is: `windows` or `intervals`.
    pub fn steps(&self) -> &'static str {
        if self.averaged {
            "intervals"
        } else {
            "windows"
        }
    }
}

/// The resolved geometry of a job: what parameters mean for this record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    /// The ordered files and their layout on one sample axis.
    pub record: Record,
    /// Window, hop and bins.
    pub params: SpectrumParams,
    /// First channel kept (index in the files).
    pub c0: u64,
    /// One past the last channel kept.
    pub c1: u64,
    /// Time steps in the cube: windows, or intervals when averaging.
    pub n_windows: u64,
    /// `--average`: the intervals the windows are averaged over.
    #[serde(default)]
    pub average: Option<Averaging>,
}

/// Welch averaging over consecutive intervals of the record (`--average`).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Averaging {
    /// Samples per interval; interval `k` is samples `k * interval .. (k + 1) * interval`.
    pub interval: u64,
    /// Windows wholly inside an interval (window `j` starts at `j * hop` within it): those
    /// averaged, as `scipy.signal.welch` over the interval's samples takes them.
    pub windows: u64,
}

impl Plan {
    /// The record samples time step `k` of the cube reads (`a .. b`) and the windows in it.
    pub(crate) fn step_samples(&self, k: u64) -> (u64, u64, u64) {
        let p = &self.params;
        match self.average {
            Some(avg) => {
                let a = k * avg.interval;
                (
                    a,
                    a + (avg.windows - 1) * p.hop as u64 + p.window_len as u64,
                    avg.windows,
                )
            }
            None => {
                let a = k * p.hop as u64;
                (a, a + p.window_len as u64, 1)
            }
        }
    }
}

fn param_err(opts: &DasOptions, record: &Record, message: String) -> DasError {
    DasError::Parameters {
        path: record
            .files
            .first()
            .map(|h| h.path.clone())
            .unwrap_or_else(|| opts.inputs[0].clone()),
        message,
    }
}

/// Reads headers and turns the user's parameters into window/hop/bins/channels.
pub fn plan(opts: &DasOptions) -> Result<Plan, DasError> {
    let record = Record::scan(&opts.inputs, opts.format, opts.distances)?;
    let params =
        spectrum_params(opts, record.sampling_rate).map_err(|m| param_err(opts, &record, m))?;
    let (c0, c1) =
        channel_range(opts.channels, &record).map_err(|m| param_err(opts, &record, m))?;
    let mut n_windows = params.n_windows(record.n_samples);
    let average = match opts.average {
        Some(seconds) => {
            let avg =
                averaging(seconds, &params, &record).map_err(|m| param_err(opts, &record, m))?;
            n_windows = record.n_samples / avg.interval;
            Some(avg)
        }
        None => None,
    };
    if n_windows == 0 {
        let fs = record.sampling_rate;
        return Err(param_err(
            opts,
            &record,
            format!(
                "the window ({} samples = {} s) is longer than the data ({} samples = {} s)",
                params.window_len,
                params.window_len as f64 / fs,
                record.n_samples,
                record.n_samples as f64 / fs
            ),
        ));
    }
    if params.hop as u64 > record.n_samples {
        return Err(param_err(
            opts,
            &record,
            format!(
                "--dt {} s is longer than the record ({} s)",
                format_number(opts.dt),
                record.n_samples as f64 / record.sampling_rate
            ),
        ));
    }
    let plan = Plan {
        record,
        params,
        c0,
        c1,
        n_windows,
        average,
    };
    if let Some(avg) = average {
        // Said, not recorded: an --append with later files averages them.
        let rest = plan.record.n_samples - n_windows * avg.interval;
        if rest > 0 {
            let fs = plan.record.sampling_rate;
            log::warn!(
                "the last {} s of the record do not fill an --average interval of {} s and are not in the cube (an --append with later files completes it)",
                format_number(rest as f64 / fs),
                format_number(avg.interval as f64 / fs)
            );
        }
    }
    check_resources(opts, &plan, &layout_of(opts))?;
    Ok(plan)
}

/// The intervals of `--average SECONDS` on `record`.
fn averaging(seconds: f64, p: &SpectrumParams, record: &Record) -> Result<Averaging, String> {
    let fs = record.sampling_rate;
    let interval = (seconds * fs).round();
    if !(seconds > 0.0 && interval.is_finite()) {
        return Err(format!(
            "--average {} must be a positive number of seconds",
            format_number(seconds)
        ));
    }
    let interval = interval as u64;
    if interval < p.window_len as u64 {
        return Err(format!(
            "--average {} s is shorter than one window ({} samples = {} s at {fs} Hz)",
            format_number(seconds),
            p.window_len,
            format_number(p.window_len as f64 / fs)
        ));
    }
    if record.n_samples < interval {
        return Err(format!(
            "the record ({} s) is shorter than one --average interval of {} s",
            format_number(record.n_samples as f64 / fs),
            format_number(seconds)
        ));
    }
    Ok(Averaging {
        interval,
        windows: (interval - p.window_len as u64) / p.hop as u64 + 1,
    })
}

/// Refuses, before anything is created, a job whose sizes come out of proportion: a gap
/// between files longer than `--max-gap` (a wrong clock, usually), a time axis, chunk or
/// processing block beyond the memory budget, a cube of countless chunks.
pub(crate) fn check_resources(
    opts: &DasOptions,
    plan: &Plan,
    layout: &Layout,
) -> Result<(), DasError> {
    let record = &plan.record;
    if let Some(max) = opts.max_gap {
        if let Some(g) = record.gaps.iter().find(|g| g.seconds > max) {
            let end_before = record
                .files
                .iter()
                .find(|h| h.path == g.before)
                .map(|h| format_utc_us(h.end_us()))
                .unwrap_or_default();
            let start_after = record
                .files
                .iter()
                .find(|h| h.path == g.after)
                .map(|h| format_utc_us(h.start_us))
                .unwrap_or_default();
            return Err(DasError::Mismatch {
                a: g.before.clone(),
                b: g.after.clone(),
                message: format!(
                    "a gap of {} (the first ends {end_before}, the second starts {start_after}) is longer than --max-gap {max} s; is a clock wrong? Remove the file, or give --allow-gap to fill the gap with NaN windows",
                    human_duration(g.seconds)
                ),
            });
        }
    }
    let budget = Budget::from_env();
    let out = opts.output.display_path();
    let p = &plan.params;
    let width = (plan.c1 - plan.c0) as u128;
    let nb = p.n_bins() as u128;
    let windows = human_count(plan.n_windows as u128);
    let cause = if record.gaps.is_empty() {
        "the record's length and --dt".to_string()
    } else {
        format!(
            "the record's length incl. {} gap(s) and --dt",
            record.gaps.len()
        )
    };
    budget.check_memory(
        &out,
        &format!("the time coordinate of {windows} windows"),
        &cause,
        plan.n_windows as u128 * 8,
    )?;
    let t = layout.time_chunk as u128;
    let block_samples = (t - 1) * p.hop as u128 + p.window_len as u128;
    let elem = layout.dtype.dtype().size() as u128;
    budget.check_memory(
        &out,
        &format!("a processing block of {t} windows x {width} channels"),
        "--chunks TIME,DISTANCE, --df and --dt",
        block_samples * width * 4 + t * width * nb * (4 + elem),
    )?;
    let d = layout.distance_chunk as u64;
    let chunk = match layout.zarr {
        ZarrFormat::V3 { sharded: true } => {
            vec![t as u64, (width as u64).div_ceil(d) * d, nb as u64]
        }
        _ => vec![t as u64, d, nb as u64],
    };
    cryocube_cube::budget::check_layout(
        &budget,
        &out,
        "spectrogram",
        &[plan.n_windows, width as u64, nb as u64],
        &chunk,
        elem as u64,
    )?;
    Ok(())
}

/// `3 h 20 min`, `122 years`.
fn human_duration(seconds: f64) -> String {
    let s = seconds.abs();
    if s >= 2.0 * 365.25 * 86400.0 {
        format!("{:.0} years", s / (365.25 * 86400.0))
    } else if s >= 2.0 * 86400.0 {
        format!("{:.1} days", s / 86400.0)
    } else if s >= 3600.0 {
        format!("{:.1} h", s / 3600.0)
    } else {
        format!("{s:.1} s")
    }
}

/// Window, hop and bins of `opts` at sampling rate `fs`.
pub(crate) fn spectrum_params(opts: &DasOptions, fs: f64) -> Result<SpectrumParams, String> {
    SpectrumParams::checked(
        fs,
        opts.df,
        opts.dt,
        opts.fmin,
        opts.fmax,
        opts.scale,
        opts.window,
    )
}

/// The channels `c0 .. c1` a selection means for `record`.
pub(crate) fn channel_range(sel: ChannelSelection, record: &Record) -> Result<(u64, u64), String> {
    let n = record.n_channels;
    match sel {
        ChannelSelection::All => Ok((0, n)),
        ChannelSelection::Indices(a, b) => {
            if a >= b || b > n {
                return Err(format!(
                    "--channels {a}:{b} is outside the {n} channels (0:{n})"
                ));
            }
            Ok((a, b))
        }
        ChannelSelection::Distance(a, b) => {
            if !(a.is_finite() && b.is_finite() && a <= b) {
                return Err(format!(
                    "--distance {a}:{b} is not a range of finite distances"
                ));
            }
            let (d0, sp) = (record.first_distance, record.channel_spacing);
            let (lo, hi) = match &record.distances {
                // Uneven distances: the channels whose own distance lies in the range.
                Some(table) => {
                    let tol = 1e-9 * sp;
                    (
                        table.partition_point(|d| *d < a - tol) as u64,
                        table.partition_point(|d| *d <= b + tol) as u64,
                    )
                }
                None => (
                    ((a - d0) / sp - 1e-9).ceil().max(0.0) as u64,
                    (((b - d0) / sp + 1e-9).floor() as i64 + 1).clamp(0, n as i64) as u64,
                ),
            };
            if lo >= hi {
                return Err(format!(
                    "--distance {a}:{b} m contains no channel (channels span {d0:.3} .. {:.3} m)",
                    record.distance_of(n - 1)
                ));
            }
            Ok((lo, hi))
        }
    }
}

/// What identifies a job for resuming: same inputs (names, sizes, starts) and parameters.
pub(crate) fn fingerprint(plan: &Plan, layout: &Layout) -> Value {
    json!({
        "files": plan.record.files.iter().map(|h| json!([h.path.display().to_string(), file_size(&h.path), h.start_us])).collect::<Vec<_>>(),
        "window_len": plan.params.window_len,
        "hop": plan.params.hop,
        "bins": [plan.params.first_bin, plan.params.last_bin],
        "channels": [plan.c0, plan.c1],
        "scale": plan.params.scale.name(),
        "window": plan.params.window.name(),
        "dtype": format!("{:?}", layout.dtype),
        "zarr": format!("{:?}", layout.zarr),
        "chunks": [layout.time_chunk, layout.distance_chunk],
        "average": plan.average.map(|a| a.interval),
        "version": env!("CARGO_PKG_VERSION"),
    })
}

/// The sizes of a record's files, as planned (a task refuses a file that changed since).
pub(crate) fn file_sizes(record: &Record) -> Vec<u64> {
    record.files.iter().map(|h| file_size(&h.path)).collect()
}

pub(crate) fn file_size(p: &std::path::Path) -> u64 {
    if p.is_dir() {
        // A folder of miniSEED files read as one: a file added, removed or grown changes this
        // (each file counts one more than its size, so an empty one added shows too).
        return crate::read::folder_members(p)
            .unwrap_or_default()
            .iter()
            .map(|f| std::fs::metadata(f).map(|m| m.len() + 1).unwrap_or(0))
            .sum();
    }
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// How `opts` say the spectrogram is stored (a quantised cube's offset comes from the data,
/// once planned: [`crate::quantize::probe`]).
fn layout_of(opts: &DasOptions) -> Layout {
    Layout {
        dtype: opts.dtype,
        zarr: opts.zarr,
        time_chunk: opts.time_chunk.max(1),
        distance_chunk: opts.distance_chunk.max(1),
        add_offset: 0.0,
    }
}

/// How the spectrogram is stored.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) struct Layout {
    pub dtype: OutputType,
    pub zarr: ZarrFormat,
    pub time_chunk: usize,
    pub distance_chunk: usize,
    /// The value of code 0 of a quantised spectrogram (CF `add_offset`).
    #[serde(default)]
    pub add_offset: f64,
}

impl Layout {
    /// How chunks of float spectra become stored elements.
    pub(crate) fn encoder(&self) -> crate::quantize::Encoder {
        crate::quantize::Encoder::new(self.dtype, self.add_offset)
    }
}

/// What a DAS job's stored plan holds: everything a task on any machine needs to compute its
/// time blocks without scanning the inputs again, and the attributes the commit publishes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct DasPayload {
    pub plan: Plan,
    pub layout: Layout,
    /// Input sizes when planned: a task refuses a file that changed since.
    pub sizes: Vec<u64>,
    /// The block (of `time_chunk` windows) of unit 0.
    pub first_block: u64,
    /// Windows the cube held before this job (0 unless appending); they are kept as they are.
    pub base_windows: u64,
    pub spectrogram_attrs: Attrs,
    pub root_attrs: Attrs,
    /// Appending: the cube's root attributes before the append, to put it back on failure.
    pub base_attrs: Option<Attrs>,
    /// Files this job adds, and inputs skipped because the cube already holds them.
    pub new_files: usize,
    pub already_in_cube: usize,
    /// An all-zero record makes a cube of `-inf` instead of an error (`--allow-zero`).
    #[serde(default)]
    pub allow_zero: bool,
}

impl DasPayload {
    fn units(&self) -> u64 {
        self.plan
            .n_windows
            .div_ceil(self.layout.time_chunk as u64)
            .saturating_sub(self.first_block)
    }

    fn summary(&self, output: &Location, resumed_units: u64) -> DasSummary {
        DasSummary {
            output: output.clone(),
            files: self.new_files,
            windows: self.plan.n_windows,
            new_windows: self.plan.n_windows - self.base_windows,
            already_in_cube: self.already_in_cube,
            channels: self.plan.c1 - self.plan.c0,
            bins: self.plan.params.n_bins(),
            gaps: self.plan.record.gaps.len(),
            overlaps: self.plan.record.overlaps.len(),
            resumed_from_block: resumed_units,
            warnings: self.plan.record.warnings.clone(),
            averaged: self.plan.average.is_some(),
        }
    }
}

/// Job kinds of `cryocube das` in a store's plan.
pub const KIND: &str = "das";
/// The plan kind of `das --append`.
pub const KIND_APPEND: &str = "das-append";

/// A planned job, opened for work.
pub(crate) struct Job {
    pub stored: StoredJob,
    pub payload: DasPayload,
    pub writer: CubeWriter,
}

impl Job {
    /// Records unit `u` as done, with what its samples were like: the commit tells a dead
    /// fibre (all zero) and a record of NaN from them.
    pub(crate) fn mark_done(&self, u: u64, stats: SampleStats) -> Result<(), DasError> {
        let record = json!({"signal": stats.signal(), "stats": stats});
        Ok(self.stored.mark_done(u, &record)?)
    }
}

/// What [`plan_only`] reports.
#[derive(Clone, Debug)]
pub struct Planned {
    /// Where the cube is.
    pub output: Location,
    /// Units (time blocks) in the plan; 0 when there is nothing to do (appending).
    pub units: u64,
    /// What a unit is ("time block").
    pub unit_name: String,
    /// The plan was already there (same inputs and parameters).
    pub existing: bool,
    /// Windows in the cube.
    pub windows: u64,
    /// Input files.
    pub files: usize,
}

fn lock(opts: &DasOptions) -> Result<StoreLock, DasError> {
    let what = if opts.append { "das --append" } else { "das" };
    cryocube_cube::write::check_output(&opts.output)?;
    Ok(StoreLock::acquire(
        &opts.output,
        LockMode::Exclusive,
        opts.wait,
        what,
    )?)
}

/// Plans the job, or finds the plan of the same job in the store. `None`: appending and
/// nothing is new.
fn obtain(opts: &DasOptions) -> Result<Result<(Job, bool), DasSummary>, DasError> {
    if opts.append && opts.output.exists()? {
        return match crate::append::prepare(opts)? {
            crate::append::Prepared::Job(job, resumed) => Ok(Ok((*job, resumed))),
            crate::append::Prepared::NothingNew(summary) => Ok(Err(summary)),
        };
    }
    if opts.append {
        log::info!("{}: no cube yet; creating it", opts.output.display());
    }
    prepare(opts).map(Ok)
}

/// Runs the whole job in this process: plan (or the plan found), every unit, commit.
/// `progress(done_windows, total_windows)` is called after each block.
pub fn run(
    opts: &DasOptions,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<DasSummary, DasError> {
    let _lock = lock(opts)?;
    let (job, _) = match obtain(opts)? {
        Ok(j) => j,
        Err(nothing_new) => return Ok(nothing_new),
    };
    log_record(&job.payload.plan.record);
    let done = job.stored.done_units()?;
    if !done.is_empty() {
        log::info!(
            "{}: resuming an unfinished run ({} of {} time blocks done)",
            opts.output.display(),
            done.len(),
            job.stored.plan.units
        );
    }
    let all: Vec<u64> = (0..job.stored.plan.units).collect();
    if let Err(e) = run_units(&job, &all, &done, progress) {
        if let Some(base_attrs) = &job.payload.base_attrs {
            crate::append::roll_back(job.writer, &job.payload, base_attrs, &opts.output);
        }
        return Err(e);
    }
    let summary = job.payload.summary(&opts.output, done.len() as u64);
    finish(job)?;
    Ok(summary)
}

/// `--plan-only`: plans the job into the store (unpublished) and stops.
pub fn plan_only(opts: &DasOptions) -> Result<Planned, DasError> {
    let _lock = lock(opts)?;
    match obtain(opts)? {
        Ok((job, existing)) => {
            log_record(&job.payload.plan.record);
            Ok(Planned {
                output: opts.output.clone(),
                units: job.stored.plan.units,
                unit_name: job.stored.plan.unit_name.clone(),
                existing,
                windows: job.payload.plan.n_windows - job.payload.base_windows,
                files: job.payload.new_files,
            })
        }
        Err(s) => Ok(Planned {
            output: opts.output.clone(),
            units: 0,
            unit_name: "time block".into(),
            existing: false,
            windows: 0,
            files: s.files,
        }),
    }
}

/// What a task did.
#[derive(Clone, Debug)]
pub struct TaskSummary {
    /// The units this task owns.
    pub units: std::ops::Range<u64>,
    /// Of them, those already done before it started.
    pub already_done: u64,
    /// Windows it computed.
    pub windows: u64,
}

/// Task `index` of `count` of the DAS job planned in `stored`: computes its share of the
/// time blocks, skipping those already recorded. Holds the store's lock shared, with the other
/// tasks.
pub fn run_task(
    stored: StoredJob,
    location: &Location,
    index: u64,
    count: u64,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<TaskSummary, DasError> {
    let task = stored.start_task(index, count)?;
    let job = open_job_at(stored, location)?;
    let units: Vec<u64> = task.share.clone().collect();
    let windows = run_units(&job, &units, &task.done, progress)?;
    Ok(TaskSummary {
        units: task.share,
        already_done: task.already,
        windows,
    })
}

/// Opens the DAS job planned in the store at `location` (to resume it, run a task, commit).
fn open_job_at(stored: StoredJob, location: &Location) -> Result<Job, DasError> {
    let payload: DasPayload = stored.payload()?;
    let writer = CubeWriter::reopen(location)?;
    Ok(Job {
        stored,
        payload,
        writer,
    })
}

/// Publishes the cube of a DAS job whose units are all done.
pub fn commit(stored: StoredJob, location: &Location) -> Result<DasSummary, DasError> {
    let job = open_job_at(stored, location)?;
    let summary = job.payload.summary(location, 0);
    finish(job)?;
    Ok(summary)
}

/// Checks every unit is done, writes the data-derived facts, publishes, removes the plan.
fn finish(job: Job) -> Result<(), DasError> {
    let Job {
        stored,
        payload,
        mut writer,
    } = job;
    let records = stored.records()?;
    let signal = records.values().any(|r| r["signal"] == true);
    let stats = records
        .values()
        .filter_map(|r| serde_json::from_value::<SampleStats>(r["stats"].clone()).ok())
        .fold(SampleStats::default(), SampleStats::merge);
    let names = || -> String {
        payload
            .plan
            .record
            .files
            .iter()
            .map(|f| file_name(&f.path))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !signal {
        let (what, spectra) = if stats.nan {
            ("NaN or zero", "NaN")
        } else {
            ("zero", "-inf")
        };
        let keep_zeros = payload.allow_zero && !stats.nan;
        if payload.base_attrs.is_none() && !keep_zeros {
            return Err(DasError::Input(format!(
                "{}: every sample of the selected channels is {what} (a dead fibre or an interrogator that recorded nothing?); the spectra would all be {spectra}, so the cube is left unfinished (--allow-zero keeps an all-zero record as -inf)",
                names()
            )));
        }
        log::warn!(
            "{}: every sample of the selected channels is {what}: the appended windows are {spectra}",
            names()
        );
    }
    // |X|^2 of a window overflows float32 once window_len * |x| passes sqrt(f32::MAX).
    let limit = (f32::MAX as f64).sqrt() / payload.plan.params.window_len as f64;
    if stats.max_abs as f64 > limit {
        log::warn!(
            "{}: samples as large as {:e} (more than {limit:.2e} at a window of {} samples) overflow float32 power: the windows over them are inf or NaN (corrupt data, or values in the wrong units?)",
            names(),
            stats.max_abs,
            payload.plan.params.window_len
        );
    }
    writer.set_attrs("spectrogram", payload.spectrogram_attrs.clone())?;
    writer.finish(payload.root_attrs.clone())?;
    stored.remove()?;
    Ok(())
}

/// Input files the blocks `units` read must be there and unchanged since planning.
pub(crate) fn check_inputs(p: &DasPayload, units: &[u64]) -> Result<(), DasError> {
    let (Some(&first), Some(&last)) = (units.first(), units.last()) else {
        return Ok(());
    };
    let t = p.layout.time_chunk as u64;
    let a = p
        .plan
        .step_samples(((first + p.first_block) * t).max(p.base_windows))
        .0;
    let w1 = ((last + p.first_block + 1) * t).min(p.plan.n_windows);
    let b = p.plan.step_samples(w1 - 1).1;
    for seg in p
        .plan
        .record
        .segments
        .iter()
        .filter(|s| s.start < b && s.start + s.len > a)
    {
        let path = &p.plan.record.files[seg.file].path;
        let planned = p.sizes.get(seg.file).copied().unwrap_or(0);
        match std::fs::metadata(path) {
            Err(e) => {
                return Err(DasError::Unreadable {
                    path: path.clone(),
                    message: format!("{e} (the file was there when the job was planned; restore it, or plan again with --overwrite)"),
                })
            }
            Ok(_) if file_size(path) != planned => {
                return Err(DasError::Unreadable {
                    path: path.clone(),
                    message: format!(
                        "changed since the job was planned ({} bytes, planned {planned}); plan again with --overwrite",
                        file_size(path)
                    ),
                })
            }
            Ok(_) => {}
        }
    }
    Ok(())
}

fn log_record(record: &Record) {
    for w in &record.warnings {
        log::warn!("{w}");
    }
    for g in &record.gaps {
        log::warn!(
            "gap of {:.6} s ({} samples) between {} and {}: windows touching it are NaN",
            g.seconds,
            g.samples,
            g.before.display(),
            g.after.display()
        );
    }
    for o in &record.overlaps {
        log::warn!(
            "{} overlaps {} by {:.6} s ({} samples): the repeated samples are skipped",
            o.after.display(),
            o.before.display(),
            -o.seconds,
            -o.samples
        );
    }
}

/// Computes the units among `units` not in `done` (ascending), recording each when its
/// chunks are stored; returns the windows computed.
fn run_units(
    job: &Job,
    units: &[u64],
    done: &[u64],
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<u64, DasError> {
    if job.payload.plan.average.is_some() {
        return crate::average::run_units(job, units, done, progress);
    }
    let pl = &job.payload;
    let plan = &pl.plan;
    let layout = &pl.layout;
    let writer = &job.writer;
    let todo = to_do(units, done);
    check_inputs(pl, &todo)?;
    let p = &plan.params;
    let t_chunk = layout.time_chunk.max(1);
    let d_chunk = layout.distance_chunk.max(1);
    let width = (plan.c1 - plan.c0) as usize;
    let nb = p.n_bins();
    let base_windows = pl.base_windows;
    let stft = Stft::new(p.clone());
    let encoder = layout.encoder();
    let mut reader = BlockReader::new(&plan.record, plan.c0, plan.c1);
    let n_dchunks = width.div_ceil(d_chunk);
    // Block b computes windows w0..w1 (those before `base_windows` are already in the cube),
    // i.e. samples w0*hop .. (w1-1)*hop + window_len.
    let range = |b: u64| {
        let w0 = (b * t_chunk as u64).max(base_windows);
        let w1 = ((b + 1) * t_chunk as u64).min(plan.n_windows);
        (
            w0,
            w1,
            w0 * p.hop as u64,
            (w1 - 1) * p.hop as u64 + p.window_len as u64,
        )
    };
    let block_of = |u: u64| u + pl.first_block;
    let total: u64 = units
        .iter()
        .map(|&u| {
            let (w0, w1, _, _) = range(block_of(u));
            w1 - w0
        })
        .sum();
    let mut progressed = total
        - todo
            .iter()
            .map(|&u| {
                let (w0, w1, _, _) = range(block_of(u));
                w1 - w0
            })
            .sum::<u64>();
    progress(progressed, total);
    let empty = Block::new(width, 0);
    // A block is read and transformed in steps of a few windows, and two step buffers
    // alternate: while the pool transforms `cur`, one task reads the next step into `next`
    // (HDF5 reads are serial), so reading hides behind the FFTs. Steps make the one read
    // nothing can hide, a task's first, a small fraction of a block (`step_bounds`): a task of
    // one block otherwise waited for a whole block's read before its first FFT. A step that
    // follows the one before takes the samples they share from it. A block's chunks fill step
    // by step and are stored with its last step.
    let step = t_chunk.div_ceil(STEPS_PER_BLOCK).max(t_chunk.min(MIN_STEP));
    let steps: Vec<Step> = todo
        .iter()
        .enumerate()
        .flat_map(|(i, &u)| {
            let b = block_of(u);
            let (w0, w1, _, _) = range(b);
            step_bounds(w0, w1, step, i == 0)
                .into_iter()
                .map(move |(wa, wb)| Step {
                    u,
                    b,
                    wa,
                    wb,
                    first: wa == w0,
                    last: wb == w1,
                })
        })
        .collect();
    let span = |s: &Step| {
        (
            s.wa * p.hop as u64,
            (s.wb - 1) * p.hop as u64 + p.window_len as u64,
        )
    };
    let cap = (step - 1) * p.hop + p.window_len;
    let mut cur = Block::new(width, cap);
    // Made by the first read into it, behind the first transforms: a task starts sooner.
    let mut next = Block::new(width, 0);
    if let Some(s) = steps.first() {
        let (a, e) = span(s);
        reader.load_alone(&mut cur, &empty, a, e)?;
    }
    let chunk_len = t_chunk * d_chunk * nb;
    let row_len = d_chunk * nb;
    // One block of spectra (what `check_resources` allows for), each chunk made by the step
    // that begins it, in parallel.
    let mut chunks: Vec<Vec<f32>> = vec![Vec::new(); n_dchunks];
    let mut computed = 0u64;
    for (k, s) in steps.iter().enumerate() {
        let b = s.b;
        // The chunk row of the step's first window; rows before a block's first step that
        // the cube already holds (the block an append starts in) were put aside before the
        // append began and are restored into each chunk.
        let row0 = (s.wa - b * t_chunk as u64) as usize;
        let nw = (s.wb - s.wa) as usize;
        let block = &cur;
        let (done_chunks, loaded) = rayon::join(
            || {
                chunks.par_iter_mut().enumerate().try_for_each_init(
                    || (stft.workspace(), Buffer::default()),
                    |(ws, buffer), (dc, chunk)| -> Result<(), DasError> {
                        let lo = dc * d_chunk;
                        let hi = (lo + d_chunk).min(width);
                        if s.first {
                            // Full chunk shape even at the edges: zarrs ignores the part past
                            // the array; what no channel or window fills stays NaN.
                            chunk.clear();
                            chunk.resize(chunk_len, f32::NAN);
                            if row0 > 0 {
                                let old = writer
                                    .get_aside(&aside_key(dc))?
                                    .filter(|v| v.len() == row0 * row_len)
                                    .ok_or_else(|| {
                                        DasError::Input(format!(
                                            "{}: the values of the last {row0} windows, kept aside when the append began, are missing; rebuild the cube with --overwrite",
                                            writer.path().display()
                                        ))
                                    })?;
                                chunk[..row0 * row_len].copy_from_slice(&old);
                            }
                        }
                        for c in lo..hi {
                            stft.channel(
                                block.channel(c),
                                nw,
                                &mut chunk[row0 * row_len + (c - lo) * nb..],
                                row_len,
                                ws,
                            );
                        }
                        if s.last {
                            encoder.store(writer, [b, dc as u64, 0], chunk, buffer)?;
                        }
                        Ok(())
                    },
                )
            },
            || -> Result<(), DasError> {
                if let Some(n) = steps.get(k + 1) {
                    let (a, e) = span(n);
                    let prev = if n.b <= b + 1 { block } else { &empty };
                    if next.capacity() < cap {
                        next = Block::new(width, cap);
                    }
                    reader.load(&mut next, prev, a, e)?;
                }
                Ok(())
            },
        );
        done_chunks?;
        loaded?;
        std::mem::swap(&mut cur, &mut next);
        if s.last {
            job.mark_done(s.u, reader.stats())?;
        }
        computed += nw as u64;
        progressed += nw as u64;
        progress(progressed, total);
    }
    Ok(computed)
}

/// Steps a block is read and transformed in (see `run_units`).
const STEPS_PER_BLOCK: usize = 4;
/// Windows a step has at least (unless the block has fewer): smaller steps would spend more
/// on handing work to the pool than they hide.
const MIN_STEP: usize = 16;

/// Windows a task's first step has (unless its steps are smaller): the one read that
/// nothing hides, while one core waits. Each step after it is half as large again, up to the
/// usual step, so that each read stays shorter than the transforms it hides behind (on this
/// record a window is read in about 2/3 of the time its transforms take).
const FIRST_STEP: usize = 8;

/// The steps (`wa .. wb`) windows `w0 .. w1` of a block are read and transformed in: `step`
/// windows each, or, for a task's first block (`ramp`), from [`FIRST_STEP`] growing to `step`.
fn step_bounds(w0: u64, w1: u64, step: usize, ramp: bool) -> Vec<(u64, u64)> {
    let mut size = if ramp { FIRST_STEP.min(step) } else { step };
    let mut bounds = Vec::new();
    let mut wa = w0;
    while wa < w1 {
        let wb = (wa + size as u64).min(w1);
        bounds.push((wa, wb));
        wa = wb;
        size = (size + size / 2).min(step);
    }
    bounds
}

/// Windows `wa .. wb` of block `b` (unit `u`); its first and last step are where the block's
/// chunks are begun and stored.
struct Step {
    u: u64,
    b: u64,
    wa: u64,
    wb: u64,
    first: bool,
    last: bool,
}

/// The units among `units` not in `done` (sorted), in their order.
pub(crate) fn to_do(units: &[u64], done: &[u64]) -> Vec<u64> {
    units
        .iter()
        .copied()
        .filter(|u| done.binary_search(u).is_err())
        .collect()
}

/// Key under which an append keeps a distance chunk's existing windows.
pub(crate) fn aside_key(dc: usize) -> String {
    format!("spectrogram.{dc}")
}

/// Plans a new cube: creates it and stores its plan, or finds the plan of the same job in an
/// unfinished one (the bool: found).
fn prepare(opts: &DasOptions) -> Result<(Job, bool), DasError> {
    let plan = plan(opts)?;
    let layout = layout_of(opts);
    let fp = fingerprint(&plan, &layout).to_string();
    if opts.output.exists()? && !opts.overwrite {
        let store = opts.output.open()?;
        if let Some(stored) = StoredJob::open(store)? {
            if stored.plan.kind == KIND && stored.plan.fingerprint == fp {
                if !stored.done_units()?.is_empty() {
                    let job = open_job_at(stored, &opts.output)?;
                    job.writer.unpublish()?;
                    return Ok((job, true));
                }
                // Killed before its first block: the arrays may be half declared; lay
                // them out again (nothing computed is lost).
                return create(opts, plan, layout, fp, true).map(|j| (j, true));
            }
            return Err(DasError::Input(format!(
                "{}: holds the unfinished plan of a `{}` job with other inputs or parameters; run that job to its end (`cryocube task`, `cryocube commit`) or use --overwrite to start again",
                opts.output.display(),
                stored.plan.kind
            )));
        }
        // Killed before even its plan was stored: nothing published, nothing but our own
        // files there. Start again rather than call it an existing cube.
        let store = opts.output.open()?;
        let published = [".zgroup", ".zmetadata", "zarr.json"]
            .iter()
            .map(|k| store.exists(k))
            .collect::<Result<Vec<_>, _>>()?
            .contains(&true);
        if !published && cryocube_cube::write::foreign_key(&opts.output, store.as_ref())?.is_none()
        {
            log::info!(
                "{}: an unfinished start of a job without a plan; starting again",
                opts.output.display()
            );
            return create(opts, plan, layout, fp, true).map(|j| (j, false));
        }
    }
    create(opts, plan, layout, fp, opts.overwrite).map(|j| (j, false))
}

/// Creates the store, stores the plan, declares the arrays.
fn create(
    opts: &DasOptions,
    plan: Plan,
    layout: Layout,
    fingerprint: String,
    overwrite: bool,
) -> Result<Job, DasError> {
    // Before the store exists: a step too small for the spectra creates nothing.
    let mut layout = layout;
    let mut spectrogram_attrs = spectrogram_attrs(opts, &plan);
    if let OutputType::Quantized { step } = layout.dtype {
        let packing = crate::quantize::plan_packing(&plan, step, &opts.output.display_path())?;
        layout.add_offset = packing.offset;
        spectrogram_attrs.extend(packing.attrs());
    }
    let mut writer = CubeWriter::create(
        &opts.output,
        WriteOptions {
            format: opts.zarr,
            overwrite,
        },
    )?;
    let created = now_iso();
    let payload = DasPayload {
        sizes: file_sizes(&plan.record),
        spectrogram_attrs,
        root_attrs: root_attrs(opts, &plan, &created),
        new_files: plan.record.files.len(),
        plan,
        layout,
        first_block: 0,
        base_windows: 0,
        base_attrs: None,
        already_in_cube: 0,
        allow_zero: opts.allow_zero,
    };
    // The plan first: a run killed while laying out the arrays leaves a store that the
    // same command recognises.
    let stored = store_plan(&writer, KIND, fingerprint, &payload)?;
    declare_arrays(&mut writer, &payload)?;
    Ok(Job {
        stored,
        payload,
        writer,
    })
}

/// Stores the plan of `payload` in the writer's store.
pub(crate) fn store_plan(
    writer: &CubeWriter,
    kind: &str,
    fingerprint: String,
    payload: &DasPayload,
) -> Result<StoredJob, DasError> {
    let units = payload.units();
    Ok(StoredJob::create(
        writer.store().clone(),
        cryocube_cube::job::Plan {
            kind: kind.into(),
            fingerprint,
            units,
            unit_name: "time block".into(),
            created: now_iso(),
            planned_on: cryocube_cube::job::this_process(),
            payload: serde_json::to_value(payload)
                .map_err(|e| DasError::Input(format!("the plan cannot be stored: {e}")))?,
        },
    )?)
}

/// The time coordinate of `plan`: UTC µs of each window's start or centre.
pub(crate) fn time_values(plan: &Plan) -> Vec<i64> {
    let p = &plan.params;
    let r = &plan.record;
    let offset = if plan.average.is_some() {
        0.0 // an interval is labelled by its start
    } else {
        label_offset(p)
    };
    (0..plan.n_windows)
        .map(|i| {
            let a = plan.step_samples(i).0 as f64;
            r.start_us + ((a + offset) * 1e6 / r.sampling_rate).round() as i64
        })
        .collect()
}

/// Samples from a window's start to the instant its time names.
pub(crate) fn label_offset(p: &SpectrumParams) -> f64 {
    match p.scale {
        Scale::Cryocube => 0.0,
        Scale::Db => p.window_len as f64 / 2.0,
    }
}

/// Declares the spectrogram and its coordinates in a new cube and writes the coordinates.
fn declare_arrays(w: &mut CubeWriter, payload: &DasPayload) -> Result<(), DasError> {
    let (plan, layout) = (&payload.plan, &payload.layout);
    let p = &plan.params;
    let r = &plan.record;
    let width = plan.c1 - plan.c0;
    let nb = p.n_bins() as u64;
    let t_chunk = layout.time_chunk as u64;
    let d_chunk = layout.distance_chunk as u64;
    let mut spec = ArraySpec {
        name: "spectrogram".into(),
        dims: vec!["time".into(), "distance".into(), "frequency".into()],
        shape: vec![plan.n_windows, width, nb],
        chunks: vec![t_chunk, d_chunk, nb],
        shard: None,
        dtype: layout.dtype.dtype(),
        attrs: payload.spectrogram_attrs.clone(),
    };
    if let ZarrFormat::V3 { sharded: true } = layout.zarr {
        // A shard is one block of every distance chunk: written once, never rewritten.
        spec.shard = Some(vec![t_chunk, width.div_ceil(d_chunk) * d_chunk, nb]);
    }
    w.add_array(spec)?;
    if plan.average.is_some() {
        w.add_array(ArraySpec {
            name: "count".into(),
            dims: vec!["time".into(), "distance".into()],
            shape: vec![plan.n_windows, width],
            chunks: vec![t_chunk, d_chunk],
            shard: None,
            dtype: DType::I32,
            attrs: attrs([
                (
                    "long_name",
                    json!("number of windows averaged (windows touching a gap are left out)"),
                ),
                ("units", json!("1")),
                ("coordinates", json!("channel")),
            ]),
        })?;
    }
    w.add_array(ArraySpec::coordinate(
        "time",
        "time",
        plan.n_windows,
        DType::I64,
        match plan.average {
            Some(_) => {
                let mut a = time_attrs("start");
                a.insert(
                    "long_name".into(),
                    json!("time (UTC) of the start of each averaging interval"),
                );
                a.insert("time_label".into(), json!("interval start"));
                a
            }
            None => time_attrs(p.scale.label()),
        },
    ))?;
    w.write_all("time", &time_values(plan))?;
    let distance: Vec<f64> = (plan.c0..plan.c1).map(|c| r.distance_of(c)).collect();
    w.add_array(ArraySpec::coordinate(
        "distance",
        "distance",
        width,
        DType::F64,
        attrs([
            (
                "long_name",
                json!(if r.distance_units == "m" {
                    "distance along the fibre"
                } else {
                    "channel index (the files state no distances)"
                }),
            ),
            ("units", json!(r.distance_units)),
            ("axis", json!("X")),
        ]),
    ))?;
    w.write_all("distance", &distance)?;
    let channel: Vec<i64> = (plan.c0..plan.c1).map(|c| c as i64).collect();
    w.add_array(ArraySpec::coordinate(
        "channel",
        "distance",
        width,
        DType::I64,
        attrs([
            (
                "long_name",
                json!("channel index in the input files (0 = first stored channel)"),
            ),
            ("units", json!("1")),
        ]),
    ))?;
    w.write_all("channel", &channel)?;
    w.add_array(ArraySpec::coordinate(
        "frequency",
        "frequency",
        nb,
        DType::F64,
        attrs([
            ("long_name", json!("frequency")),
            ("units", json!("Hz")),
            ("axis", json!("Z")),
        ]),
    ))?;
    w.write_all("frequency", &p.frequencies())?;
    Ok(())
}

fn spectrogram_attrs(opts: &DasOptions, plan: &Plan) -> Attrs {
    let p = &plan.params;
    let input_units = plan.record.files[0].units.clone();
    let (long_name, definition) = match p.scale {
        Scale::Cryocube => (
            "10 ln |X|^2 of the tapered window (CryoCube seed scale)",
            "10 * ln(|rfft(w * x)|^2); symmetric window; no mean removal; bin 0 set to 0",
        ),
        Scale::Db => (
            "power spectral density in decibels",
            "10 * log10(one-sided PSD), PSD = |rfft(w * (x - mean(x)))|^2 / (fs * sum(w^2)), doubled except DC and Nyquist; periodic window",
        ),
    };
    let mut a = attrs([
        ("long_name", json!(long_name)),
        // A logarithm of a power: dimensionless. The power's own unit is `reference_units`.
        ("units", json!("1")),
        (
            "reference_units",
            json!(match p.scale {
                Scale::Db => format!("({input_units})^2/Hz"),
                Scale::Cryocube => format!("({input_units})^2"),
            }),
        ),
        ("scale", json!(p.scale.name())),
        ("definition", json!(definition)),
        ("window", json!(p.window.name())),
        ("window_symmetric", json!(p.scale == Scale::Cryocube)),
        ("window_samples", json!(p.window_len)),
        ("hop_samples", json!(p.hop)),
        ("df", json!(p.sampling_rate / p.window_len as f64)),
        ("dt", json!(p.hop as f64 / p.sampling_rate)),
        ("df_requested", json!(opts.df)),
        ("dt_requested", json!(opts.dt)),
        ("sampling_rate", json!(p.sampling_rate)),
        ("time_label", json!(p.scale.label())),
        ("coordinates", json!("channel")),
    ]);
    if let Some(avg) = plan.average {
        let seconds = avg.interval as f64 / p.sampling_rate;
        a.insert(
            "cell_methods".into(),
            json!(format!(
                "time: mean (interval: {} s comment: Welch: linear power averaged over the windows wholly inside each interval, windows touching a gap left out, logarithm taken after averaging; see count)",
                format_number(seconds)
            )),
        );
        a.insert("average_interval".into(), json!(seconds));
        a.insert("average_interval_samples".into(), json!(avg.interval));
        a.insert("average_windows".into(), json!(avg.windows));
        a.insert("time_label".into(), json!("interval start"));
        a.insert("coordinates".into(), json!("channel"));
        a.insert("ancillary_variables".into(), json!("count"));
    }
    a
}

fn root_attrs(opts: &DasOptions, plan: &Plan, created: &str) -> Attrs {
    let r = &plan.record;
    let p = &plan.params;
    let (first, last) = coverage(plan);
    let formats: Vec<&str> = {
        let mut f: Vec<&str> = r.files.iter().map(|h| h.format.name()).collect();
        f.dedup();
        f
    };
    let mut a = attrs([
        ("Conventions", json!("CF-1.10, ACDD-1.3")),
        (
            "title",
            json!(format!("DAS spectrogram cube ({} scale)", p.scale.name())),
        ),
        ("summary", json!(summary_text(plan, r.files.len()))),
        (
            "source",
            json!(format!(
                "Distributed Acoustic Sensing records ({})",
                formats.join(", ")
            )),
        ),
        ("history", json!(history_line(opts, created))),
        ("date_created", json!(created)),
        ("time_coverage_start", json!(first)),
        ("time_coverage_end", json!(last)),
        (
            "time_coverage_resolution",
            json!(format!("PT{}S", p.hop as f64 / r.sampling_rate)),
        ),
        (
            "processing_software",
            json!(format!("cryocube {}", env!("CARGO_PKG_VERSION"))),
        ),
        ("das_sampling_rate", json!(r.sampling_rate)),
        ("das_channel_count", json!(r.n_channels)),
        ("das_channel_spacing", json!(r.channel_spacing)),
        ("das_first_channel_distance", json!(r.first_distance)),
        ("das_input_units", json!(r.files[0].units)),
        (
            "input_files",
            json!(input_files_json(r, |_| true, opts.record_paths)),
        ),
        (
            "gaps",
            Record::discontinuities_json(&r.gaps, r.start_us, r.sampling_rate),
        ),
        (
            "overlaps",
            Record::discontinuities_json(&r.overlaps, r.start_us, r.sampling_rate),
        ),
        ("warnings", json!(recorded_warnings(r, opts.record_paths))),
    ]);
    if r.distances.is_some() {
        // The spacing above is then the mean step; the distance coordinate has each channel's.
        a.insert("das_uneven_distances".into(), json!(true));
    }
    // Header facts of the first file (gauge length, instrument, data type) as stated.
    for (key, value) in &r.files[0].facts {
        a.insert(format!("das_{key}"), json!(value));
    }
    a
}

/// `time_coverage_start` and `_end`: the labels of the first and last windows.
pub(crate) fn coverage(plan: &Plan) -> (String, String) {
    let r = &plan.record;
    let p = &plan.params;
    let to_us = |samples: f64| (samples * 1e6 / r.sampling_rate).round() as i64;
    if plan.average.is_some() {
        // What the intervals cover: from the first one's start to the last one's end.
        let end = plan.step_samples(plan.n_windows).0;
        return (
            format_utc_us(r.start_us),
            format_utc_us(r.start_us + to_us(end as f64)),
        );
    }
    let offset = label_offset(p);
    (
        format_utc_us(r.start_us + to_us(offset)),
        format_utc_us(r.start_us + to_us((plan.n_windows - 1) as f64 * p.hop as f64 + offset)),
    )
}

pub(crate) fn summary_text(plan: &Plan, n_files: usize) -> String {
    let r = &plan.record;
    let p = &plan.params;
    let f = p.frequencies();
    if let Some(avg) = plan.average {
        return format!(
            "Long-term (Welch) spectra of {} channels from {} DAS file(s): {} intervals of {} s, each the mean power of up to {} windows of {} s every {} s, {} .. {} Hz.",
            plan.c1 - plan.c0,
            n_files,
            plan.n_windows,
            avg.interval as f64 / r.sampling_rate,
            avg.windows,
            p.window_len as f64 / r.sampling_rate,
            p.hop as f64 / r.sampling_rate,
            f[0],
            f[f.len() - 1]
        );
    }
    format!(
        "Short-time spectra of {} channels from {} DAS file(s), {} windows of {} s every {} s, {} .. {} Hz.",
        plan.c1 - plan.c0,
        n_files,
        plan.n_windows,
        p.window_len as f64 / r.sampling_rate,
        p.hop as f64 / r.sampling_rate,
        f[0],
        f[f.len() - 1]
    )
}

pub(crate) fn history_line(opts: &DasOptions, when: &str) -> String {
    format!(
        "{when} cryocube {} das {}",
        env!("CARGO_PKG_VERSION"),
        command_line(opts)
    )
}

/// The `input_files` attribute entries of the record's files `i` with `keep(i)`: what each
/// file is, and where its first sample lies on the cube's sample axis (which `--append`
/// needs to continue the stream exactly).
/// Absolute paths are recorded only when asked (`record_paths`): a published cube travels,
/// and a path names people's home folders and machines.
pub(crate) fn input_files_json(
    r: &Record,
    keep: impl Fn(usize) -> bool,
    record_paths: bool,
) -> Vec<Value> {
    r.files
        .iter()
        .enumerate()
        .filter(|(i, _)| keep(*i))
        .map(|(i, h)| {
            let mut entry = json!({
                "name": file_name(&h.path),
                "size": file_size(&h.path),
                "format": h.format.name(),
                "layout": h.layout,
                "start": format_utc_us(h.start_us),
                "end": format_utc_us(h.end_us()),
                "samples": h.n_samples,
                "first_sample": r.first_sample(i),
                "time_source": h.time_source,
            });
            if record_paths {
                let path = std::fs::canonicalize(&h.path).unwrap_or_else(|_| h.path.clone());
                entry["path"] = json!(path.display().to_string());
            }
            entry
        })
        .collect()
}

/// The record's warnings as the cube keeps them: the files named by file name, unless
/// `record_paths` (see [`input_files_json`]).
pub(crate) fn recorded_warnings(r: &Record, record_paths: bool) -> Vec<String> {
    r.warnings
        .iter()
        .map(|w| {
            if record_paths {
                return w.clone();
            }
            r.files.iter().fold(w.clone(), |w, h| {
                w.replace(&h.path.display().to_string(), &file_name(&h.path))
            })
        })
        .collect()
}

fn command_line(opts: &DasOptions) -> String {
    let sel = match opts.channels {
        ChannelSelection::All => String::new(),
        ChannelSelection::Indices(a, b) => format!(" --channels {a}:{b}"),
        ChannelSelection::Distance(a, b) => format!(" --distance {a}:{b}"),
    };
    let dtype = match opts.dtype {
        OutputType::F32 => String::new(),
        OutputType::F16 => " --dtype f16".into(),
        OutputType::Quantized { step } => format!(" --quantize {}", format_number(step)),
    };
    let average = opts
        .average
        .map(|a| format!(" --average {}", format_number(a)))
        .unwrap_or_default();
    format!(
        "--df {} --dt {} --fmin {}{} --window {} --scale {}{}{}{}{} -o {}",
        opts.df,
        opts.dt,
        opts.fmin,
        opts.fmax
            .map(|f| format!(" --fmax {f}"))
            .unwrap_or_default(),
        opts.window.name(),
        opts.scale.name(),
        sel,
        dtype,
        average,
        if opts.append { " --append" } else { "" },
        opts.output.display()
    )
}

#[cfg(test)]
mod tests {
    use super::step_bounds;

    #[test]
    fn steps_cover_a_block_once_and_a_first_block_starts_small() {
        for (w0, w1, step) in [
            (0u64, 256u64, 64usize),
            (256, 512, 64),
            (10, 11, 64),
            (3, 200, 16),
        ] {
            for ramp in [false, true] {
                let b = step_bounds(w0, w1, step, ramp);
                assert_eq!(b.first().unwrap().0, w0);
                assert_eq!(b.last().unwrap().1, w1);
                assert!(b.windows(2).all(|p| p[0].1 == p[1].0));
                assert!(b.iter().all(|&(a, e)| a < e && e - a <= step as u64));
            }
        }
        let sizes: Vec<u64> = step_bounds(0, 256, 64, true)
            .iter()
            .map(|(a, e)| e - a)
            .collect();
        assert_eq!(sizes, [8, 12, 18, 27, 40, 60, 64, 27]);
        assert_eq!(step_bounds(0, 256, 64, false).len(), 4);
    }
}
