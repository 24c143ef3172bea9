//! `cryocube das DIR -o CUBE --follow`: files written into a folder while it runs (each in two
//! pieces, as an interrogator writes) end up in the cube exactly as one run over them would
//! put them; Ctrl-C (a real SIGINT) stops it cleanly; a file added while it was stopped is
//! appended on the next start (the cube is the journal); bad starts are refused.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{assert_same_store, cryocube, p, synthetic_files, text};
use cryocube_cube::CubeReader;

fn start(dir: &Path, out: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_cryocube"))
        .args([
            "das",
            p(dir),
            "-o",
            p(out),
            "--follow",
            "--settle",
            "1",
            "--poll",
            "0.2",
            "--chunks",
            "64,8",
        ])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Writes `from` into `dir` in two pieces 300 ms apart, as a file being recorded.
fn write_slowly(from: &Path, dir: &Path) {
    let bytes = std::fs::read(from).unwrap();
    let mut f = std::fs::File::create(dir.join(from.file_name().unwrap())).unwrap();
    let half = bytes.len() / 2;
    f.write_all(&bytes[..half]).unwrap();
    f.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    f.write_all(&bytes[half..]).unwrap();
}

/// Waits until the published cube holds `windows` windows (at most 90 s).
fn wait_for(out: &Path, windows: u64, follower: &mut Child) {
    let t0 = Instant::now();
    loop {
        if let Ok(c) = CubeReader::open(out) {
            if c.is_complete()
                && c.array("spectrogram")
                    .is_some_and(|s| s.shape[0] == windows)
            {
                return;
            }
        }
        if let Some(status) = follower.try_wait().unwrap() {
            panic!("--follow exited ({status}) before the cube held {windows} windows");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "the cube never held {windows} windows"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Ctrl-C: SIGINT, then a clean exit with status 0 and the closing line.
fn interrupt(follower: Child) -> String {
    let s = Command::new("kill")
        .args(["-INT", &follower.id().to_string()])
        .status()
        .unwrap();
    assert!(s.success());
    let out = follower.wait_with_output().unwrap();
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("stopped following"), "{said}");
    said
}

#[test]
fn files_written_while_following_give_the_cube_of_one_run() {
    let tmp = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = synthetic_files();
    let dir = tmp.path().join("live");
    std::fs::create_dir(&dir).unwrap();
    let out = tmp.path().join("live.zarr");

    let mut follower = start(&dir, &out);
    write_slowly(&files[0], &dir);
    // A is complete once B appears (or after 1 s of the same size); B once its size holds.
    std::thread::sleep(Duration::from_millis(1500));
    write_slowly(&files[1], &dir);
    wait_for(&out, 591, &mut follower);
    let said = interrupt(follower);
    assert!(said.contains("no cube yet; creating it"), "{said}");

    // Stopped: C arrives. The next start appends it (and nothing twice).
    std::fs::copy(&files[2], dir.join(files[2].file_name().unwrap())).unwrap();
    let mut follower = start(&dir, &out);
    wait_for(&out, 891, &mut follower);
    let said = interrupt(follower);
    assert!(said.contains("1 file(s) added"), "{said}");

    let one = tmp.path().join("one.zarr");
    let o = cryocube(&[
        "das",
        p(&files[0]),
        p(&files[1]),
        p(&files[2]),
        "-o",
        p(&one),
        "--chunks",
        "64,8",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_same_store(&one, &out);
}

#[test]
fn follow_refuses_what_it_cannot_watch() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("c.zarr");
    let missing = tmp.path().join("nowhere");
    let o = cryocube(&["das", p(&missing), "-o", p(&out), "--follow"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("nowhere") && text(&o).contains("no such folder"),
        "{}",
        text(&o)
    );
    assert!(!out.exists());
    for extra in ["--overwrite", "--plan-only", "--append"] {
        let o = cryocube(&["das", p(tmp.path()), "-o", p(&out), "--follow", extra]);
        assert_eq!(o.status.code(), Some(2), "{extra}: {}", text(&o));
    }
    let o = cryocube(&[
        "das",
        p(tmp.path()),
        "-o",
        p(&out),
        "--follow",
        "--poll",
        "1e300",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("--poll 1e300"), "{}", text(&o));
    assert!(!text(&o).contains("panicked"), "{}", text(&o));
    let o = cryocube(&["das", p(tmp.path()), "-o", p(&out), "--settle", "3"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "--settle without --follow: {}",
        text(&o)
    );
}
