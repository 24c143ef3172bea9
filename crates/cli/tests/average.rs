//! `cryocube das --average SECONDS`: long-term (Welch) spectra. Each interval's spectrum equals
//! `scipy.signal.welch` over the same samples (read with h5py from the real files, not by
//! us): on the synthetic Rhone-like record, on a vendor file (PRODML), and on a record with a
//! 30 s gap, where intervals that touch the gap average the windows on either side (the
//! Welch PSDs of the gap-free runs, weighted by their segment counts) and `count` says how
//! many. The seed's scale (`--scale cryocube`) averages the same windows as the window cube.
//! Tasks give the bytes of one process; bad intervals are refused.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{assert_same_store, cryocube, das, das_ok, das_run, p, synthetic_files, text, venv};
use cryocube_cube::CubeReader;

/// The reference: reads the files with h5py (`dataset`, time x channel), NaN for the files
/// listed as missing (a gap of their length), and compares each interval of the cube with
/// scipy's Welch PSD of its gap-free runs of whole windows.
const WELCH: &str = r#"
import json, sys, numpy as np, h5py, zarr
from scipy.signal import welch
a = json.loads(sys.argv[1])
parts = []
for f in a["files"]:
    with h5py.File(f["path"], "r") as h:
        x = np.asarray(h[a["dataset"]], dtype=np.float64)
    if f["missing"]:
        x[:] = np.nan
    parts.append(x)
x = np.concatenate(parts)
z = zarr.open_group(a["cube"], mode="r")
s = z["spectrogram"]
fs, L, hop = s.attrs["sampling_rate"], s.attrs["window_samples"], s.attrs["hop_samples"]
S = s.attrs["average_interval_samples"]
assert S == round(a["seconds"] * fs), (S, a["seconds"], fs)
ours, count = s[:], z["count"][:]
if "scale_factor" in s.attrs:  # a quantised cube: our codes, unpacked by hand
    codes = ours
    ours = codes * s.attrs["scale_factor"] + s.attrs["add_offset"]
    ours[codes == -32768] = np.nan
bins = np.rint(z["frequency"][:] * L / fs).astype(int)
t = z["time"][:]
assert (np.diff(t) == round(S / fs * 1e6)).all(), np.diff(t)
assert ours.shape[0] == x.shape[0] // S, (ours.shape, x.shape, S)
worst, checked, partial = 0.0, 0, 0
for k in range(ours.shape[0]):
    seg = x[k * S:(k + 1) * S]
    ok = ~np.isnan(seg).any(axis=1)
    total, n, j = 0.0, 0, 0
    while j + L <= S:
        if not ok[j:j + L].all():
            j += hop
            continue
        m = 1
        while j + m * hop + L <= S and ok[j + m * hop:j + m * hop + L].all():
            m += 1
        f, pxx = welch(seg[j:j + (m - 1) * hop + L].T, fs=fs, window=("tukey", 0.25), nperseg=L,
                       noverlap=L - hop, detrend="constant", scaling="density")
        total = total + pxx * m
        n += m
        j += m * hop
    assert (count[k] == n).all(), (k, count[k][:4], n)
    if n == 0:
        assert np.isnan(ours[k]).all(), k
        continue
    if n < (S - L) // hop + 1:
        partial += 1
    ref = 10 * np.log10(total / n)[:, bins]
    d = np.abs(ours[k] - ref)
    worst = max(worst, float(d.max()))
    checked += d.size
assert worst <= a["tolerance"], worst
print(json.dumps({"checked": checked, "worst": worst, "partial": partial,
                  "empty": int((count == 0).all(axis=1).sum())}))
"#;

struct Case<'a> {
    files: Vec<(&'a Path, bool)>,
    dataset: &'a str,
    seconds: f64,
    tolerance: f64,
}

/// Runs the reference script on `cube`; its report (values checked, worst difference,
/// intervals with fewer windows, intervals with none).
fn welch_check(cube: &Path, case: &Case) -> serde_json::Value {
    let arg = serde_json::json!({
        "files": case.files.iter().map(|(f, missing)| serde_json::json!({"path": p(f), "missing": missing})).collect::<Vec<_>>(),
        "dataset": case.dataset,
        "cube": p(cube),
        "seconds": case.seconds,
        "tolerance": case.tolerance,
    });
    let o = Command::new(venv())
        .args(["-c", WELCH, &arg.to_string()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}: {}", cube.display(), text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    serde_json::from_str(out.lines().last().unwrap()).unwrap()
}

#[test]
fn averaged_spectra_equal_scipy_welch_over_each_interval() {
    let tmp = tempfile::tempdir().unwrap();
    let s = synthetic_files();
    let prodml = das("prodml_2.0.h5");

    // The synthetic record, three contiguous files: 12 intervals of 7 s, 61 windows each.
    let cube = tmp.path().join("abc.zarr");
    let said = das_ok(&[&s[0], &s[1], &s[2]], &cube, &["--average", "7"]);
    assert!(said.contains("the last 6 s of the record"), "{said}");
    let r = welch_check(
        &cube,
        &Case {
            files: s.iter().map(|f| (f.as_path(), false)).collect(),
            dataset: "Acoustic",
            seconds: 7.0,
            tolerance: 1e-3,
        },
    );
    assert!(r["checked"].as_u64().unwrap() > 30_000, "{r}");
    let counts = CubeReader::open(&cube)
        .unwrap()
        .read_all_f64("count")
        .unwrap();
    assert!(counts.iter().all(|c| *c == 61.0), "{counts:?}");

    // A vendor file (PRODML, int16 samples at 200 Hz, every bin to Nyquist), 2 s intervals.
    let cube = tmp.path().join("prodml.zarr");
    das_ok(&[&prodml], &cube, &["--average", "2", "--fmax", "nyquist"]);
    let r = welch_check(
        &cube,
        &Case {
            files: vec![(&prodml, false)],
            dataset: "Acquisition/Raw[0]/RawData",
            seconds: 2.0,
            tolerance: 1e-3,
        },
    );
    assert!(r["checked"].as_u64().unwrap() > 100_000, "{r}");

    // A and C: a 30 s gap. Intervals of 7 s: two touch the gap in part, three lie inside it.
    // Quantised too: within 0.005 more.
    let cube = tmp.path().join("a_c.zarr");
    das_ok(
        &[&s[0], &s[2]],
        &cube,
        &["--average", "7", "--quantize", "0.01"],
    );
    let r = welch_check(
        &cube,
        &Case {
            files: vec![(&s[0], false), (&s[1], true), (&s[2], false)],
            dataset: "Acoustic",
            seconds: 7.0,
            tolerance: 1e-3 + 0.005,
        },
    );
    assert_eq!(
        (r["partial"].as_u64(), r["empty"].as_u64()),
        (Some(2), Some(3)),
        "{r}"
    );
}

/// The seed's scale averages `|X|^2` of the same windows the window cube holds:
/// `10 ln(mean(exp(v / 10)))` over each interval's windows of the window cube.
#[test]
fn the_seed_scale_averages_the_window_cube_power() {
    let tmp = tempfile::tempdir().unwrap();
    let s = synthetic_files();
    let inputs: Vec<&Path> = s.iter().map(PathBuf::as_path).collect();
    let windows = tmp.path().join("w.zarr");
    let averaged = tmp.path().join("a.zarr");
    das_ok(&inputs, &windows, &["--scale", "cryocube", "--fmin", "1"]);
    das_ok(
        &inputs,
        &averaged,
        &["--scale", "cryocube", "--fmin", "1", "--average", "10"],
    );
    let w = CubeReader::open(&windows).unwrap();
    let a = CubeReader::open(&averaged).unwrap();
    let shape = a.array("spectrogram").unwrap().shape.clone();
    let (nc, nf) = (shape[1] as usize, shape[2] as usize);
    assert_eq!(shape[0], 9, "90 s in 10 s intervals");
    let wv = w.read_all_f64("spectrogram").unwrap();
    let av = a.read_all_f64("spectrogram").unwrap();
    // Windows start every 100 samples, 1000 long: 91 of them lie wholly in 10000 samples.
    let per = 91usize;
    let mut worst = 0f64;
    for k in 0..9usize {
        for c in 0..nc {
            for f in 0..nf {
                let mean = (0..per)
                    .map(|j| (wv[((k * 100 + j) * nc + c) * nf + f] / 10.0).exp())
                    .sum::<f64>()
                    / per as f64;
                let d = (10.0 * mean.ln() - av[(k * nc + c) * nf + f]).abs();
                worst = worst.max(d);
            }
        }
    }
    assert!(worst < 1e-3, "worst {worst}");
    let t_w = w.read_all_i64("time").unwrap();
    let t_a = a.read_all_i64("time").unwrap();
    assert_eq!(t_a[1] - t_a[0], 10_000_000);
    // Intervals are labelled by their start: the first window's start (the seed's label).
    assert_eq!(t_a[0], t_w[0]);
}

#[test]
fn averaged_tasks_give_the_bytes_of_one_process() {
    let tmp = tempfile::tempdir().unwrap();
    let s = synthetic_files();
    let inputs: Vec<&Path> = s.iter().map(PathBuf::as_path).collect();
    let args = ["--average", "5", "--chunks", "4,8"];
    let whole = tmp.path().join("whole.zarr");
    das_ok(&inputs, &whole, &args);
    let split = tmp.path().join("split.zarr");
    let mut plan = args.to_vec();
    plan.push("--plan-only");
    let said = das_ok(&inputs, &split, &plan);
    // 90 s: 18 intervals in chunks of 4.
    assert!(said.contains("planned with 5 time block(s)"), "{said}");
    for i in [2u64, 0, 1] {
        let o = cryocube(&["task", p(&split), "--index", &i.to_string(), "--count", "3"]);
        assert!(o.status.success(), "task {i}: {}", text(&o));
    }
    let o = cryocube(&["commit", p(&split)]);
    assert!(o.status.success(), "{}", text(&o));
    assert_same_store(&whole, &split);
}

#[test]
fn intervals_that_cannot_be_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let s = synthetic_files();
    let out = tmp.path().join("x.zarr");
    for (args, expect) in [
        (vec!["--average", "0.5"], "shorter than one window"),
        (
            vec!["--average", "100"],
            "shorter than one --average interval",
        ),
    ] {
        let o = das_run(&[&s[0], &s[1], &s[2]], &out, &args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(expect), "{args:?}: {}", text(&o));
        assert!(!out.exists(), "{args:?}: nothing is created");
    }
    // An append takes the cube's own intervals: stating them is a usage error.
    let o = das_run(&[&s[0]], &out, &["--average", "5", "--append"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

/// Appending C to the averaged cube of A+B (8 intervals of 7 s; 4 s of B left over, which
/// the append re-reads; chunks of 3 intervals, so the append starts inside one) gives the
/// bytes of one run over A+B+C, counts included.
#[test]
fn appending_averaged_spectra_gives_the_cube_of_one_run() {
    let tmp = tempfile::tempdir().unwrap();
    let s = synthetic_files();
    let args = ["--average", "7", "--chunks", "3,8", "--record-paths"];
    let whole = tmp.path().join("abc.zarr");
    das_ok(&[&s[0], &s[1], &s[2]], &whole, &args);
    let grown = tmp.path().join("ab+c.zarr");
    das_ok(&[&s[0], &s[1]], &grown, &args);
    assert_eq!(
        CubeReader::open(&grown)
            .unwrap()
            .array("count")
            .unwrap()
            .shape,
        [8, 32]
    );
    let said = das_ok(&[&s[2]], &grown, &["--append", "--record-paths"]);
    assert!(said.contains("appended 4 intervals"), "{said}");
    assert_same_store(&whole, &grown);
}
