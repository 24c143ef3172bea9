//! A run killed midway and started again with the same arguments resumes from its journal and
//! ends with the same chunk bytes and metadata as an uninterrupted run (only `date_created`
//! and `history`, which name the time of the run, may differ).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{cryocube, das, p, text};

fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
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
                if key.ends_with(".zmetadata") || key == ".zattrs" {
                    let text = String::from_utf8(bytes).unwrap();
                    bytes = text
                        .lines()
                        .filter(|l| !l.contains("\"date_created\"") && !l.contains("\"history\""))
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

#[test]
fn killed_run_resumes_to_the_same_cube() {
    let tmp = tempfile::tempdir().unwrap();
    let input = das("synthetic");
    let whole = tmp.path().join("whole.zarr");
    let resumed = tmp.path().join("resumed.zarr");
    let args = |out: &Path| -> Vec<String> {
        ["das", p(&input), "-o", p(out), "--chunks", "8,4", "-q"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let o = cryocube(&args(&whole).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", text(&o));

    let mut child = Command::new(env!("CARGO_BIN_EXE_cryocube"))
        .args(args(&resumed))
        .spawn()
        .unwrap();
    let journal = resumed.join(".cryocube-journal.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = std::fs::read(&journal)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|j| j["blocks_done"].as_u64())
            .unwrap_or(0);
        if done >= 3 {
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
    assert!(
        !resumed.join(".zmetadata").exists(),
        "a killed run leaves no complete-looking cube"
    );
    let info = cryocube(&["info", p(&resumed)]);
    assert!(text(&info).contains("INCOMPLETE"), "{}", text(&info));

    let o = cryocube(
        &args(&resumed)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let (a, b) = (files(&whole), files(&resumed));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "same files"
    );
    for (k, v) in &a {
        assert!(v == &b[k], "{k} differs after resume");
    }
}
