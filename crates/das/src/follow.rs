//! `cryocube das DIR -o CUBE --follow`: spectra that keep up with an interrogator writing files.
//!
//! The folder is looked at every `poll` seconds. A file counts as complete once a later file
//! (by name: interrogators name files by their start time) has appeared, or once its size has
//! stayed the same for `settle` seconds (the last file, when the interrogator stops). Complete
//! files the cube does not hold yet are added with `--append` ([`crate::append`]), so the
//! windows that straddle two files are computed once both are there, and the cube is exactly
//! the one a single run over the same files gives.
//!
//! The journal is the cube itself: its `input_files` (name and size of every file it holds)
//! are published with each append, and an append cut short leaves its plan in the store, which
//! the next append resumes. A restarted `--follow` therefore re-lists the folder and appends
//! whatever the cube lacks: nothing is lost and nothing is added twice. Stopping (the `stop`
//! flag, set by Ctrl-C in the binary) takes effect between two appends.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::job::{self, DasOptions, DasSummary};
use crate::read;
use crate::stream::file_name;
use crate::DasError;

/// How `--follow` watches.
#[derive(Clone, Copy, Debug)]
pub struct FollowOptions {
    /// Seconds a file's size must stay the same before it counts as complete, when no later
    /// file shows that it is.
    pub settle: f64,
    /// Seconds between two looks at the folder.
    pub poll: f64,
}

impl Default for FollowOptions {
    fn default() -> Self {
        FollowOptions {
            settle: 5.0,
            poll: 0.5,
        }
    }
}

/// What a `--follow` session did.
#[derive(Clone, Debug, Default)]
pub struct FollowSummary {
    /// Appends made.
    pub appends: usize,
    /// Files added to the cube.
    pub files: usize,
    /// Time steps (windows or intervals) added.
    pub windows: u64,
}

/// Follows `opts.inputs` (folders or glob patterns) into `opts.output` until `stop` is set.
/// `appended` is called after each append with its summary.
pub fn follow(
    opts: &DasOptions,
    watch: FollowOptions,
    stop: &AtomicBool,
    appended: &mut dyn FnMut(&DasSummary),
) -> Result<FollowSummary, DasError> {
    for input in &opts.inputs {
        if read::is_mseed_folder(input) {
            return Err(DasError::Input(format!(
                "{}: a folder of per-station miniSEED files is one record, not files that follow each other in time; --follow watches a folder of files of consecutive time spans",
                input.display()
            )));
        }
        let pattern = input.to_string_lossy().contains(['*', '?', '[']);
        if !pattern && !input.exists() {
            return Err(DasError::Input(format!(
                "{}: no such folder to follow",
                input.display()
            )));
        }
    }
    // A settle or poll time beyond what a clock can add (1e300 s) is an error, not a panic.
    let seconds = |what: &str, v: f64| {
        Duration::try_from_secs_f64(v)
            .ok()
            .filter(|d| Instant::now().checked_add(*d).is_some())
            .ok_or_else(|| {
                DasError::Input(format!(
                    "{what} {} s is not a usable time",
                    cryocube_cube::cf::format_number(v)
                ))
            })
    };
    let (settle, poll) = (
        seconds("--settle", watch.settle)?,
        seconds("--poll", watch.poll)?,
    );
    let mut sizes: HashMap<PathBuf, (u64, Instant)> = HashMap::new();
    // Files the cube held or was given, by name and size: an append is started only when a
    // complete file is not among them.
    let mut handled: Vec<(String, u64)> = Vec::new();
    let mut summary = FollowSummary::default();
    let mut first = true;
    while !stop.load(Ordering::SeqCst) {
        let files = listing(&opts.inputs)?;
        let now = Instant::now();
        sizes.retain(|p, _| files.contains(p));
        for f in &files {
            let size = std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
            let entry = sizes.entry(f.clone()).or_insert((size, now));
            if entry.0 != size {
                *entry = (size, now);
            }
        }
        let complete: Vec<PathBuf> = files
            .iter()
            .enumerate()
            .filter(|(i, f)| {
                let (size, since) = sizes[*f];
                size > 0 && (i + 1 < files.len() || now.duration_since(since) >= settle)
            })
            .map(|(_, f)| f.clone())
            .collect();
        let key = |f: &Path| (file_name(f), sizes[f].0);
        // At the start, one append catches up with whatever the folder holds.
        if !complete.is_empty() && (first || complete.iter().any(|f| !handled.contains(&key(f)))) {
            let mut o = opts.clone();
            o.inputs = complete.clone();
            o.append = true;
            let s = job::run(&o, &|_, _| {})?;
            if s.new_windows > 0 {
                summary.appends += 1;
                summary.files += s.files;
                summary.windows += s.new_windows;
                appended(&s);
            }
            handled = complete.iter().map(|f| key(f)).collect();
            first = false;
        }
        let until = Instant::now() + poll;
        while Instant::now() < until && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20).min(until - Instant::now()));
        }
    }
    Ok(summary)
}

/// The files the inputs name now, sorted by name (hidden ones skipped; none is no error).
fn listing(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, DasError> {
    let mut out = Vec::new();
    for input in inputs {
        if input.is_dir() {
            out.extend(
                read::folder_members(input).map_err(|source| DasError::File {
                    path: input.clone(),
                    source,
                })?,
            );
        } else if input.is_file() {
            out.push(input.clone());
        } else {
            let text = input.to_string_lossy();
            let matches = glob::glob(&text)
                .map_err(|e| DasError::Input(format!("{text}: bad pattern: {e}")))?;
            out.extend(matches.filter_map(Result::ok).filter(|p| p.is_file()));
        }
    }
    out.sort_by_key(|p| file_name(p));
    out.dedup();
    Ok(out)
}
