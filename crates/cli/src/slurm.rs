//! `cryocube slurm`: plan a job here, then hand its tasks and its commit to Slurm.
//!
//! The plan is made by this binary (`JOB --plan-only`, headers read once, on the submitting
//! machine); Slurm then runs an array of `cryocube task STORE` (each task finds its index in
//! `SLURM_ARRAY_TASK_ID`) and one `cryocube commit STORE` with `--dependency=afterok` on the
//! array, so the cube is published only if every task succeeded. The scripts go to `sbatch`
//! on its standard input: nothing is written outside the output store.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use clap::Parser;

use cryocube_cube::Location;

use crate::{usage, Cli};

/// What `sbatch` is asked for, and the job.
#[derive(clap::Args)]
pub(crate) struct SlurmArgs {
    /// Array tasks to share the units among.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100000))]
    pub tasks: u64,
    /// Slurm partition (sbatch --partition).
    #[arg(long)]
    pub partition: Option<String>,
    /// Time limit per task (sbatch --time), e.g. 01:30:00.
    #[arg(long)]
    pub time: Option<String>,
    /// Memory per task (sbatch --mem), e.g. 8G.
    #[arg(long)]
    pub mem: Option<String>,
    /// Cores per task (sbatch --cpus-per-task; also the task's worker threads).
    #[arg(long)]
    pub cpus: Option<u32>,
    /// Folder for the tasks' logs (sbatch --output); Slurm's default otherwise.
    #[arg(long)]
    pub log_dir: Option<PathBuf>,
    /// Plan, then print the two scripts instead of submitting them.
    #[arg(long)]
    pub dry_run: bool,
    /// The job: das|build|pyramid and its arguments, after `--`.
    #[arg(last = true, required = true, num_args = 1..)]
    pub job: Vec<String>,
}

/// Quotes a word for a POSIX shell.
fn quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:=+,@%".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The store a job writes, as the tasks on other machines must name it (a local path made
/// absolute: the tasks may start in another folder).
fn job_store(job: &[String]) -> Result<Location> {
    let argv = std::iter::once("cryocube".to_string()).chain(job.iter().cloned());
    let cli = Cli::try_parse_from(argv).map_err(|e| usage(&format!("the job after `--`: {e}")))?;
    let store = match cli.command {
        #[cfg(feature = "das")]
        crate::Command::Das(a) => a.output,
        #[cfg(feature = "geo")]
        crate::Command::Build {
            output: Some(output),
            check: false,
            ..
        } => output,
        crate::Command::Pyramid { store, .. } => store,
        _ => {
            return Err(usage(
                "the job after `--` must be `das ...`, `build ... -o STORE` or `pyramid ...`",
            ))
        }
    };
    Ok(match store {
        Location::Local(p) if p.is_relative() => Location::Local(
            std::env::current_dir()
                .context("the current folder")?
                .join(p),
        ),
        other => other,
    })
}

/// The `#SBATCH` lines both scripts share.
fn header(o: &SlurmArgs, name: &str) -> String {
    let mut h = format!("#!/bin/bash\n#SBATCH --job-name={}\n", quote(name));
    if let Some(p) = &o.partition {
        h += &format!("#SBATCH --partition={}\n", quote(p));
    }
    if let Some(t) = &o.time {
        h += &format!("#SBATCH --time={}\n", quote(t));
    }
    if let Some(m) = &o.mem {
        h += &format!("#SBATCH --mem={}\n", quote(m));
    }
    if let Some(c) = o.cpus {
        h += &format!("#SBATCH --cpus-per-task={c}\n");
    }
    h
}

/// The array script and the commit script.
pub(crate) fn scripts(o: &SlurmArgs, exe: &str, store: &Location) -> (String, String) {
    let name = format!(
        "cryocube-{}",
        store
            .to_string()
            .rsplit('/')
            .find(|s| !s.is_empty())
            .unwrap_or("job")
    );
    let log = |suffix: &str| match &o.log_dir {
        Some(d) => format!(
            "#SBATCH --output={}\n",
            quote(&d.join(format!("{name}-{suffix}")).display().to_string())
        ),
        None => String::new(),
    };
    let threads = match o.cpus {
        Some(_) => "export RAYON_NUM_THREADS=\"${SLURM_CPUS_PER_TASK}\"\n",
        None => "",
    };
    let store = quote(&store.to_string());
    let exe = quote(exe);
    // The count is written out, so `sbatch --array=I` of this script runs task I again.
    let array = format!(
        "{}#SBATCH --array=0-{}\n{}set -euo pipefail\n{threads}# Task SLURM_ARRAY_TASK_ID of {n}: its share of the planned units.\nexec {exe} task {store} --index \"$SLURM_ARRAY_TASK_ID\" --count {n}\n",
        header(o, &name),
        o.tasks - 1,
        log("%A_%a.out"),
        n = o.tasks,
    );
    let commit = format!(
        "{}{}set -euo pipefail\n# Runs after every array task succeeded (--dependency=afterok).\nexec {exe} commit {store}\n",
        header(o, &format!("{name}-commit")),
        log("commit-%j.out"),
    );
    (array, commit)
}

/// Sends a script to `sbatch` on its standard input; returns the job id.
fn sbatch(script: &str, extra: &[String]) -> Result<String> {
    let mut child = Command::new("sbatch")
        .arg("--parsable")
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run sbatch (is Slurm's client installed and on PATH?)")?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(script.as_bytes())
        .context("sbatch")?;
    let out = child.wait_with_output().context("sbatch")?;
    if !out.status.success() {
        bail!(
            "sbatch refused the job: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    // `--parsable` prints "jobid" or "jobid;cluster".
    let id = text
        .trim()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        bail!("sbatch answered {:?}, not a job id", text.trim());
    }
    Ok(id)
}

pub(crate) fn submit(o: &SlurmArgs, quiet: bool) -> Result<()> {
    let job = &o.job;
    if job.iter().any(|a| a == "--plan-only") {
        return Err(usage(
            "leave out --plan-only: `cryocube slurm` plans the job itself",
        ));
    }
    let store = job_store(job)?;
    let exe = std::env::current_exe().context("the path of this cryocube")?;
    let exe = exe.display().to_string();
    // The plan, made by this binary as `JOB --plan-only` (its report goes to our output).
    let mut plan = Command::new(&exe);
    plan.args(job).arg("--plan-only");
    if quiet {
        plan.arg("-q");
    }
    let status = plan.status().context("cannot plan the job")?;
    if !status.success() {
        bail!("planning failed (see above); nothing was submitted");
    }
    let (array, commit) = scripts(o, &exe, &store);
    if o.dry_run {
        println!("# --- array job: sbatch --parsable <<'EOF'\n{array}# --- then the commit: sbatch --parsable --dependency=afterok:ARRAY_JOB_ID <<'EOF'\n{commit}");
        return Ok(());
    }
    let array_id = sbatch(&array, &[])?;
    let commit_id = sbatch(&commit, &[format!("--dependency=afterok:{array_id}")])?;
    println!("{array_id} {commit_id}");
    log::info!(
        "{store}: submitted array job {array_id} ({} tasks) and commit job {commit_id} (after all tasks succeed); watch with `squeue -j {array_id},{commit_id}`",
        o.tasks
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_for_the_shell() {
        assert_eq!(quote("s3://b/c.zarr"), "s3://b/c.zarr");
        assert_eq!(quote("/a b/c"), "'/a b/c'");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn scripts_name_the_array_and_the_commit() {
        let o = SlurmArgs {
            tasks: 4,
            partition: Some("debug".into()),
            time: None,
            mem: Some("2G".into()),
            cpus: Some(2),
            log_dir: None,
            dry_run: true,
            job: Vec::new(),
        };
        let (a, c) = scripts(&o, "/bin/cryocube", &Location::Local("/x/y.zarr".into()));
        assert!(a.contains("#SBATCH --array=0-3\n"), "{a}");
        assert!(
            a.contains("#SBATCH --partition=debug\n#SBATCH --mem=2G\n#SBATCH --cpus-per-task=2\n")
        );
        assert!(
            a.ends_with(
                "exec /bin/cryocube task /x/y.zarr --index \"$SLURM_ARRAY_TASK_ID\" --count 4\n"
            ),
            "{a}"
        );
        assert!(c.ends_with("exec /bin/cryocube commit /x/y.zarr\n"), "{c}");
        assert!(!c.contains("--array"));
    }
}
