//! The job model on `cryocube das`: plan (`--plan-only`) -> tasks (`cryocube task`, any split,
//! any order) -> commit gives the bytes of one process; a commit with missing units, a task
//! index out of range, a plan of other options, a vanished input and a killed task are handled;
//! a second writer waits or is refused with the holder's name, a stale lock is taken over.
//! (Slurm itself: `slurm.rs`; S3: `s3.rs`.)

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{assert_same_store, cryocube, cryocube_with, kill_after_blocks_in, p, text};
use cryocube_cube::store::LocalStore;

use common::synthetic_files as synthetic;

/// `das INPUTS -o OUT --chunks 64,8 EXTRA...` as arguments.
fn das_args(inputs: &[PathBuf], out: &Path, extra: &[&str]) -> Vec<String> {
    let mut a = vec!["das".to_string()];
    a.extend(inputs.iter().map(|i| p(i).to_string()));
    a.extend(["-o", p(out)].map(String::from));
    if !extra.contains(&"--chunks") {
        a.extend(["--chunks", "64,8"].map(String::from));
    }
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// The synthetic files and their cube made by one process (`whole.zarr` in `dir`), the
/// reference of every split.
fn one_process(dir: &Path, extra: &[&str]) -> (Vec<PathBuf>, PathBuf) {
    let files = synthetic();
    let whole = dir.join("whole.zarr");
    ok(&das_args(&files, &whole, extra));
    (files, whole)
}

fn run(args: &[String]) -> std::process::Output {
    cryocube(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn ok(args: &[String]) -> String {
    let o = run(args);
    assert!(o.status.success(), "{args:?}: {}", text(&o));
    text(&o)
}

fn task(store: &Path, index: u64, count: u64) -> std::process::Output {
    cryocube(&[
        "task",
        p(store),
        "--index",
        &index.to_string(),
        "--count",
        &count.to_string(),
    ])
}

/// For N = 1, 2, 3 and 7 tasks (uneven shares: 14 time blocks of 64 windows), run in a shuffled order, the
/// committed cube equals the one-process cube byte for byte: Zarr v2, sharded v3 and
/// quantised.
#[test]
fn any_split_of_das_tasks_gives_the_bytes_of_one_process() {
    let tmp = tempfile::tempdir().unwrap();
    let files = synthetic();
    for (name, extra, splits) in [
        ("v2", vec![], vec![1u64, 2, 3, 7]),
        (
            "v3",
            vec!["--zarr-format", "3", "--shard"],
            vec![1, 2, 3, 7],
        ),
        // Quantised: the codes' offset is fixed in the plan, so every task uses it.
        ("q", vec!["--quantize", "0.05"], vec![3]),
    ] {
        let whole = tmp.path().join(format!("{name}-whole.zarr"));
        ok(&das_args(&files, &whole, &extra));
        for n in splits {
            let split = tmp.path().join(format!("{name}-{n}.zarr"));
            let mut args = das_args(&files, &split, &extra);
            args.push("--plan-only".into());
            let out = ok(&args);
            assert!(out.contains("planned with 14 time block(s)"), "{out}");
            assert!(
                !split.join(".zmetadata").exists() && !split.join("zarr.json").exists(),
                "a plan is not a published cube"
            );
            // Odd indices first, backwards, then even ones: not the natural order.
            let mut order: Vec<u64> = (0..n).filter(|i| i % 2 == 1).rev().collect();
            order.extend((0..n).filter(|i| i % 2 == 0));
            for i in order {
                let o = task(&split, i, n);
                assert!(o.status.success(), "task {i} of {n}: {}", text(&o));
            }
            let info = cryocube(&["info", p(&split)]);
            assert!(text(&info).contains("INCOMPLETE"), "{}", text(&info));
            let o = cryocube(&["commit", p(&split)]);
            assert!(o.status.success(), "commit: {}", text(&o));
            assert_same_store(&whole, &split);
            assert!(!split.join(".cryocube").exists(), "the plan is removed");
        }
    }
}

/// A commit while units are missing names them and their tasks, exits 1 and publishes
/// nothing; after the missing tasks, it succeeds. A task run twice changes nothing.
#[test]
fn commit_with_missing_units_names_them_and_publishes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (files, whole) = one_process(tmp.path(), &[]);
    let split = tmp.path().join("split.zarr");
    let mut args = das_args(&files, &split, &[]);
    args.push("--plan-only".into());
    ok(&args);
    let o = cryocube(&["commit", p(&split)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("14 of 14 time blocks are not finished (0-13: no task has run yet)"),
        "{}",
        text(&o)
    );
    assert!(task(&split, 1, 3).status.success());
    let o = cryocube(&["commit", p(&split)]);
    assert_eq!(o.status.code(), Some(1));
    // Task 1 of 3 owns blocks 4-8.
    assert!(
        text(&o).contains(
            "9 of 14 time blocks are not finished (0-3, 9-13: owned by task(s) 0, 2 of 3"
        ),
        "{}",
        text(&o)
    );
    assert!(!split.join(".zmetadata").exists());
    for i in [0, 2, 2] {
        let o = task(&split, i, 3);
        assert!(o.status.success(), "{}", text(&o));
    }
    assert!(cryocube(&["commit", p(&split)]).status.success());
    assert_same_store(&whole, &split);
    // Nothing left to commit.
    let o = cryocube(&["commit", p(&split)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("no planned job there"), "{}", text(&o));
}

/// Bad task indices, plans of other options and tasks without an index get clear errors.
#[test]
fn bad_tasks_and_mismatched_plans_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let files = synthetic();
    let split = tmp.path().join("split.zarr");
    let mut args = das_args(&files, &split, &[]);
    args.push("--plan-only".into());
    ok(&args);
    let o = task(&split, 4, 4);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("task index 4 is out of range for 4 task(s) (indices 0..3)"),
        "{}",
        text(&o)
    );
    // No index anywhere: a usage error.
    let o = cryocube(&["task", p(&split)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--index and --count"), "{}", text(&o));
    // The same store planned with other options.
    let mut other = das_args(&files, &split, &["--df", "2"]);
    other.push("--plan-only".into());
    let o = run(&other);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o)
            .contains("holds the unfinished plan of a `das` job with other inputs or parameters"),
        "{}",
        text(&o)
    );
    // Planning the same job again is harmless and says so.
    let again = ok(&args);
    assert!(again.contains("already planned"), "{again}");
    // A store without a plan.
    let o = task(&tmp.path().join("nothing.zarr"), 0, 1);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("no planned job there"), "{}", text(&o));
}

/// A task whose input vanished (or changed) since planning stops naming the file and records
/// nothing; once the file is back, the same task finishes the job.
#[test]
fn a_task_whose_input_vanished_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("raw");
    std::fs::create_dir(&raw).unwrap();
    let files: Vec<PathBuf> = synthetic()
        .iter()
        .map(|f| {
            let to = raw.join(f.file_name().unwrap());
            std::fs::copy(f, &to).unwrap();
            to
        })
        .collect();
    let whole = tmp.path().join("whole.zarr");
    ok(&das_args(&files, &whole, &[]));
    let split = tmp.path().join("split.zarr");
    let mut args = das_args(&files, &split, &[]);
    args.push("--plan-only".into());
    ok(&args);
    let moved = tmp.path().join("moved.h5");
    std::fs::rename(&files[2], &moved).unwrap();
    // Task 2 of 3 (blocks 9-13) reads the third file.
    let o = task(&split, 2, 3);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains(p(&files[2])) && text(&o).contains("was there when the job was planned"),
        "{}",
        text(&o)
    );
    assert!(!split.join(".cryocube/done/0000000009").exists());
    // Task 0 (blocks 0-3) needs only the first file and works.
    assert!(task(&split, 0, 3).status.success());
    // A changed file is refused too.
    std::fs::write(&files[2], b"not the planned file").unwrap();
    let o = task(&split, 2, 3);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("changed since the job was planned"),
        "{}",
        text(&o)
    );
    std::fs::rename(&moved, &files[2]).unwrap();
    for i in [2, 1] {
        assert!(task(&split, i, 3).status.success());
    }
    assert!(cryocube(&["commit", p(&split)]).status.success());
    assert_same_store(&whole, &split);
}

/// A task killed midway and run again gives the same bytes.
#[test]
fn a_killed_task_run_again_gives_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let (files, whole) = one_process(tmp.path(), &["--chunks", "8,4"]);
    let split = tmp.path().join("split.zarr");
    let mut args = das_args(&files, &split, &["--chunks", "8,4"]);
    args.push("--plan-only".into());
    ok(&args);
    let t = ["task", p(&split), "--index", "0", "--count", "1"];
    kill_after_blocks_in(&t, &[], &LocalStore::new(&split), 3);
    assert!(!split.join(".zmetadata").exists());
    let o = cryocube(&t);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("already done"), "{}", text(&o));
    assert!(cryocube(&["commit", p(&split)]).status.success());
    assert_same_store(&whole, &split);
}

/// A second writer is refused with the holder's name (host, pid, start), or waits for it
/// with --wait; a lock left by a process that died is taken over.
#[test]
fn a_second_writer_waits_or_is_refused_and_stale_locks_are_taken_over() {
    use cryocube_cube::lock::{LockMode, StoreLock};
    use cryocube_cube::Location;
    let tmp = tempfile::tempdir().unwrap();
    let (files, whole) = one_process(tmp.path(), &[]);
    let out = tmp.path().join("out.zarr");
    let held = StoreLock::acquire(
        &Location::Local(out.clone()),
        LockMode::Exclusive,
        false,
        "a test holding the lock",
    )
    .unwrap();
    let o = run(&das_args(&files, &out, &[]));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let me = format!("pid {}", std::process::id());
    assert!(
        text(&o).contains("another cryocube is writing this store")
            && text(&o).contains(&me)
            && text(&o).contains("a test holding the lock"),
        "{}",
        text(&o)
    );
    // A task (shared) is refused by an exclusive holder too, and so is a commit.
    let o = cryocube(&["commit", p(&out)]);
    assert!(text(&o).contains(&me), "{}", text(&o));
    // --wait: the run starts once the lock is released.
    let mut args = das_args(&files, &out, &["--wait"]);
    args.insert(0, "-q".into());
    let waiting = Command::new(env!("CARGO_BIN_EXE_cryocube"))
        .args(&args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(!out.join(".zmetadata").exists(), "it waited");
    drop(held);
    let o = waiting.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_same_store(&whole, &out);

    // A holder that died: its name is in the lock file, but no process holds the lock.
    let stale = tmp.path().join("stale.zarr");
    std::fs::create_dir(&stale).unwrap();
    std::fs::write(
        stale.join(".cryocube-lock"),
        r#"{"holder": "node17 pid 4242", "command": "das", "since": "2026-01-01T00:00:00Z"}"#,
    )
    .unwrap();
    let o = run(&das_args(&files, &stale, &[]));
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("taking over the lock of node17 pid 4242"),
        "{}",
        text(&o)
    );
    assert_same_store(&whole, &stale);
}

/// Two writers started at once on one store: never a corrupt cube. Two `das` runs: one
/// writes, the other is refused (held, or already there); two `--append --wait` runs of the
/// same folder (cron jobs overlapping): both succeed, and the cube is the one of one run.
#[test]
fn two_writers_at_once_never_corrupt_a_store() {
    let tmp = tempfile::tempdir().unwrap();
    let (files, whole) = one_process(tmp.path(), &[]);
    let start = |args: Vec<String>| {
        Command::new(env!("CARGO_BIN_EXE_cryocube"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let out = tmp.path().join("race.zarr");
    let a = start(das_args(&files, &out, &[]));
    let b = start(das_args(&files, &out, &[]));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let won = [&a, &b].iter().filter(|o| o.status.success()).count();
    assert_eq!(won, 1, "{}\n---\n{}", text(&a), text(&b));
    let lost = if a.status.success() { &b } else { &a };
    assert!(
        text(lost).contains("another cryocube is writing this store")
            || text(lost).contains("output already exists"),
        "{}",
        text(lost)
    );
    assert_same_store(&whole, &out);

    let grown = tmp.path().join("grown.zarr");
    ok(&das_args(&files[..1], &grown, &[]));
    let mut args = das_args(&files, &grown, &["--append", "--wait"]);
    args.retain(|a| a != "--chunks" && a != "64,8");
    let (a, b) = (start(args.clone()), start(args));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", text(&a));
    assert!(b.status.success(), "{}", text(&b));
    let reader = cryocube_cube::CubeReader::open(&grown).unwrap();
    assert!(reader.is_complete());
    assert_same_store(&whole, &grown);
}

/// `cryocube slurm --dry-run` plans and prints the two scripts; tasks given their index by
/// Slurm's variables (as the array job runs them) then commit to the cube of one process.
#[test]
fn slurm_dry_run_plans_and_tasks_take_their_index_from_slurm_variables() {
    let tmp = tempfile::tempdir().unwrap();
    let (files, whole) = one_process(tmp.path(), &[]);
    let split = tmp.path().join("split.zarr");
    let mut args: Vec<String> = [
        "slurm",
        "--tasks",
        "3",
        "--partition",
        "debug",
        "--dry-run",
        "--",
    ]
    .map(String::from)
    .to_vec();
    args.extend(das_args(&files, &split, &[]));
    let out = ok(&args);
    assert!(out.contains("#SBATCH --array=0-2\n"), "{out}");
    assert!(out.contains("#SBATCH --partition=debug\n"), "{out}");
    assert!(
        out.contains(&format!(
            " task {} --index \"$SLURM_ARRAY_TASK_ID\" --count 3\n",
            p(&split)
        )),
        "{out}"
    );
    assert!(out.contains(&format!(" commit {}\n", p(&split))), "{out}");
    assert!(out.contains("--dependency=afterok"), "{out}");
    assert!(split.join(".cryocube/plan.json.gz").exists());
    // Slurm numbers array tasks from SLURM_ARRAY_TASK_MIN (here 5..7).
    for id in [7, 5, 6] {
        let env = [
            ("SLURM_ARRAY_TASK_ID".to_string(), id.to_string()),
            ("SLURM_ARRAY_TASK_MIN".to_string(), "5".to_string()),
            ("SLURM_ARRAY_TASK_COUNT".to_string(), "3".to_string()),
        ];
        let o = cryocube_with(&["task", p(&split)], &env);
        assert!(o.status.success(), "{}", text(&o));
        assert!(
            text(&o).contains(&format!("task {} of 3", id - 5)),
            "{}",
            text(&o)
        );
    }
    assert!(cryocube(&["commit", p(&split)]).status.success());
    assert_same_store(&whole, &split);
    // Kubernetes Indexed Jobs: JOB_COMPLETION_INDEX with --count.
    let k8s = tmp.path().join("k8s.zarr");
    let mut args = das_args(&files, &k8s, &[]);
    args.push("--plan-only".into());
    ok(&args);
    for i in 0..2 {
        let env = [("JOB_COMPLETION_INDEX".to_string(), i.to_string())];
        let o = cryocube_with(&["task", p(&k8s), "--count", "2"], &env);
        assert!(o.status.success(), "{}", text(&o));
    }
    assert!(cryocube(&["commit", p(&k8s)]).status.success());
    assert_same_store(&whole, &k8s);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A pyramid is a job too: planned in STORE/.pyramid (the cube stays published), its level-1
/// units shared by tasks in any order, the commit making the coarser levels: the same bytes
/// as `cryocube pyramid` in one process.
#[test]
fn pyramid_tasks_give_the_bytes_of_one_process() {
    let tmp = tempfile::tempdir().unwrap();
    let files = synthetic();
    let one = tmp.path().join("one.zarr");
    // 891 windows in 16-window chunks: level 1 has 446 windows, level 2 223.
    ok(&das_args(&files, &one, &["--chunks", "16,8"]));
    let copies: Vec<(u64, PathBuf)> = [1u64, 2, 3, 7]
        .iter()
        .map(|&n| {
            let split = tmp.path().join(format!("split-{n}.zarr"));
            copy_dir(&one, &split);
            (n, split)
        })
        .collect();
    let o = cryocube(&["pyramid", p(&one)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("pyramid of 2 level(s)"), "{}", text(&o));
    for (n, split) in &copies {
        let o = cryocube(&["pyramid", p(split), "--plan-only"]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("level-1 chunk group(s)"), "{}", text(&o));
        assert!(split.join(".pyramid/.cryocube/plan.json.gz").exists());
        // The cube itself stays published and complete while its pyramid is a job.
        let info = cryocube(&["info", p(split)]);
        assert!(!text(&info).contains("INCOMPLETE"), "{}", text(&info));
        for i in (0..*n).rev() {
            let o = task(split, i, *n);
            assert!(o.status.success(), "{}", text(&o));
        }
        let o = cryocube(&["commit", p(split)]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("pyramid of 2 level(s)"), "{}", text(&o));
        assert_same_store(&one, split);
        assert!(!split.join(".pyramid/.cryocube").exists());
    }
}

/// `cryocube build` as tasks: the polar stand-in example at 3.5 km in 128-cell chunks (25 chunks
/// of the grid), split into N = 1, 2, 3 and 7 tasks run in a shuffled order, commits to the
/// bytes of one process; a task refuses a recipe changed since planning.
#[test]
fn any_split_of_build_tasks_gives_the_bytes_of_one_process() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/polar-standin/cube.geojson");
    let sources = tmp.path().join("sources");
    let args = |out: &Path| -> Vec<String> {
        [
            "build",
            p(&recipe),
            "-o",
            p(out),
            "--sources",
            p(&sources),
            "--res",
            "3500",
            "--chunk",
            "128",
        ]
        .map(String::from)
        .to_vec()
    };
    let one = tmp.path().join("one.zarr");
    ok(&args(&one));
    for n in [1u64, 2, 3, 7] {
        let split = tmp.path().join(format!("split-{n}.zarr"));
        let mut a = args(&split);
        a.push("--plan-only".into());
        let out = ok(&a);
        assert!(out.contains("grid chunk(s)"), "{out}");
        let mut order: Vec<u64> = (0..n).filter(|i| i % 2 == 1).rev().collect();
        order.extend((0..n).filter(|i| i % 2 == 0));
        for i in order {
            let o = task(&split, i, n);
            assert!(o.status.success(), "task {i} of {n}: {}", text(&o));
        }
        let o = cryocube(&["commit", p(&split)]);
        assert!(o.status.success(), "{}", text(&o));
        assert_same_store(&one, &split);
    }
    // The recipe changed after planning: tasks refuse to mix two recipes in one cube.
    let copy = tmp.path().join("cube.geojson");
    std::fs::copy(&recipe, &copy).unwrap();
    let changed = tmp.path().join("changed.zarr");
    let mut a = args(&changed);
    a[1] = p(&copy).to_string();
    a.push("--plan-only".into());
    ok(&a);
    let text_of = std::fs::read_to_string(&copy).unwrap();
    std::fs::write(&copy, text_of.replacen("\"title\"", "\"title_changed\"", 1)).unwrap();
    let o = task(&changed, 0, 1);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("changed since the build was planned"),
        "{}",
        text(&o)
    );
}
