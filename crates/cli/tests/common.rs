//! Helpers for the command-line tests: the real data folder and running the binary.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `shared/` beside the checkout (or `CRYOCUBE_SHARED`); missing data fails loudly.
pub fn shared() -> PathBuf {
    let base = std::env::var_os("CRYOCUBE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")));
    assert!(
        base.join("data/das/MANIFEST.md").is_file(),
        "real data not found at {} (set CRYOCUBE_SHARED to the shared/ folder)",
        base.display()
    );
    base
}

pub fn das(name: &str) -> PathBuf {
    shared().join("data/das").join(name)
}

pub fn cryocube(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cryocube"))
        .args(args)
        .env("RUST_LOG", "info")
        // The example recipe's URLs name the data folder through this variable.
        .env("CRYOCUBE_SHARED", shared())
        .output()
        .expect("run cryocube")
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Every file of a store and its bytes; in the root metadata, the lines that name when or by
/// which command it was made (`date_created`, `date_modified`, `history`) are left out.
pub fn store_files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let key = path.strip_prefix(root).unwrap().display().to_string();
                let mut bytes = std::fs::read(&path).unwrap();
                if key == ".zmetadata" || key == ".zattrs" || key == "zarr.json" {
                    let text = String::from_utf8(bytes).unwrap();
                    bytes = text
                        .lines()
                        .filter(|l| {
                            !["\"date_created\"", "\"date_modified\"", "\"history\""]
                                .iter()
                                .any(|k| l.contains(k))
                        })
                        // The last attribute has no trailing comma; which one is last varies.
                        .map(|l| l.trim_end_matches(','))
                        .collect::<Vec<_>>()
                        .join("\n")
                        .into_bytes();
                }
                out.insert(key, bytes);
            }
        }
    }
    out
}

/// Asserts two stores hold the same files with the same bytes (see [`store_files`]).
pub fn assert_same_store(a: &Path, b: &Path) {
    let (fa, fb) = (store_files(a), store_files(b));
    assert_eq!(
        fa.keys().collect::<Vec<_>>(),
        fb.keys().collect::<Vec<_>>(),
        "{} and {} hold different files",
        a.display(),
        b.display()
    );
    for (k, v) in &fa {
        assert!(
            v == &fb[k],
            "{k} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

/// Starts `cryocube args`, kills it once the journal in `store` says `blocks` blocks are done.
pub fn kill_after_blocks(args: &[&str], store: &Path, blocks: u64) {
    use std::time::{Duration, Instant};
    let mut child = Command::new(env!("CARGO_BIN_EXE_cryocube"))
        .args(args)
        .env("CRYOCUBE_SHARED", shared())
        .spawn()
        .unwrap();
    let journal = store.join(".cryocube-journal.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = std::fs::read(&journal)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|j| j["blocks_done"].as_u64())
            .unwrap_or(0);
        if done >= blocks {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it could be killed"
        );
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A Python venv (cached in the target dir) with xarray, zarr, lexcube, dask and rioxarray.
pub fn venv() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("py-venv");
    let python = dir.join("bin/python");
    let ready = python.exists()
        && Command::new(&python)
            .args(["-c", "import xarray, zarr, lexcube, rioxarray"])
            .status()
            .is_ok_and(|s| s.success());
    if !ready {
        let s = Command::new("python3")
            .args(["-m", "venv", p(&dir)])
            .status()
            .expect("python3 -m venv");
        assert!(
            s.success(),
            "python3 -m venv failed (is python3-venv installed?)"
        );
        let s = Command::new(dir.join("bin/pip"))
            .args([
                "install",
                "-q",
                "xarray",
                "zarr",
                "lexcube",
                "dask",
                "rioxarray",
            ])
            .status()
            .expect("pip install");
        assert!(
            s.success(),
            "pip install xarray zarr lexcube dask rioxarray failed"
        );
    }
    python
}
