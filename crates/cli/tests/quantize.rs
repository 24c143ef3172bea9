//! `cryocube das --quantize STEP`: spectra stored as CF-packed int16 codes. Every value of a
//! quantised cube is within STEP/2 of the float cube of the same run (NaN windows of a gap
//! and -inf of dead channels kept as such), on real files; the attributes state the bound;
//! `info` shows the packing; a step too small for the spectra fails with the step that holds
//! them (before anything exists when the planning sample shows it, with an unpublished cube
//! when a later window does), and that step then works; `--append` keeps the cube's codes.

mod common;

use std::path::{Path, PathBuf};

use common::{cryocube, das, das_ok, das_run, p, synthetic_files, text};
use cryocube_cube::CubeReader;

/// Every cell of `quantised` is within `step / 2` of `float` (NaN and -inf exactly where the
/// float cube has them); returns how many cells were finite, NaN and -inf.
fn assert_within_half_a_step(float: &Path, quantised: &Path, step: f64) -> (usize, usize, usize) {
    let f = CubeReader::open(float)
        .unwrap()
        .read_all_f64("spectrogram")
        .unwrap();
    let q = CubeReader::open(quantised).unwrap();
    let spec = q.array("spectrogram").unwrap();
    assert_eq!(spec.dtype.v3_name(), "int16");
    assert_eq!(spec.attrs["scale_factor"], step);
    assert_eq!(spec.attrs["cryocube_max_abs_error"], step / 2.0);
    let q = q.read_all_f64("spectrogram").unwrap();
    assert_eq!(f.len(), q.len());
    let (mut finite, mut nan, mut neg_inf, mut worst) = (0, 0, 0, 0f64);
    for (i, (a, b)) in f.iter().zip(&q).enumerate() {
        if a.is_nan() {
            assert!(b.is_nan(), "cell {i}: float NaN, quantised {b}");
            nan += 1;
        } else if *a == f64::NEG_INFINITY {
            assert_eq!(*b, f64::NEG_INFINITY, "cell {i}");
            neg_inf += 1;
        } else {
            let d = (a - b).abs();
            worst = worst.max(d);
            // f32 values around 100 are 8e-6 apart: the bound plus their rounding.
            assert!(d <= step / 2.0 + 1e-5, "cell {i}: float {a}, quantised {b}");
            finite += 1;
        }
    }
    // Not a vacuous bound: codes really are STEP apart, so some cell is off by close to it.
    assert!(
        worst > step / 4.0,
        "worst difference {worst} at step {step}"
    );
    (finite, nan, neg_inf)
}

#[test]
fn quantised_values_are_within_half_a_step_of_the_float_cube() {
    let tmp = tempfile::tempdir().unwrap();
    // DASVader: the last 4 channels are all zero (-inf). Synthetic A and C: a 30 s gap of NaN
    // windows. Both scales.
    let vader = das("more/das_vader_1.jld2");
    let s = synthetic_files();
    let cases: Vec<(&str, Vec<&Path>, Vec<&str>, f64)> = vec![
        (
            "vader",
            vec![&vader],
            vec!["--df", "100", "--dt", "0.01", "--fmax", "nyquist"],
            0.01,
        ),
        (
            "gap",
            vec![&s[0], &s[2]],
            vec!["--scale", "cryocube", "--chunks", "64,8"],
            0.05,
        ),
    ];
    for (name, inputs, args, step) in cases {
        let float = tmp.path().join(format!("{name}-f32.zarr"));
        let quantised = tmp.path().join(format!("{name}-q.zarr"));
        das_ok(&inputs, &float, &args);
        let step_text = step.to_string();
        let mut qargs = args.clone();
        qargs.extend(["--quantize", &step_text]);
        das_ok(&inputs, &quantised, &qargs);
        let (finite, nan, neg_inf) = assert_within_half_a_step(&float, &quantised, step);
        assert!(finite > 10_000, "{name}: {finite} finite cells");
        match name {
            "vader" => assert!(neg_inf > 0 && nan == 0, "{name}: {nan} NaN, {neg_inf} -inf"),
            _ => assert!(nan > 0, "{name}: the gap's windows are NaN"),
        }
        let info = text(&cryocube(&["info", p(&quantised)]));
        assert!(
            info.contains("int16") && info.contains(&format!("code x {step_text}")),
            "{info}"
        );
        // The stored codes are smaller than the floats (compressed chunks, same layout).
        let size = |d: &Path| -> u64 {
            walk(d)
                .iter()
                .map(|f| std::fs::metadata(f).unwrap().len())
                .sum()
        };
        assert!(
            size(&quantised) < size(&float),
            "{name}: {} >= {}",
            size(&quantised),
            size(&float)
        );
    }
}

fn walk(d: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The number after `what` in an error message.
fn number_after(message: &str, what: &str) -> String {
    let at = message
        .find(what)
        .unwrap_or_else(|| panic!("no {what:?} in: {message}"))
        + what.len();
    message[at..]
        .trim_start()
        .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e' || c == '-'))
        .next()
        .unwrap()
        .trim_end_matches('.')
        .to_string()
}

#[test]
fn a_step_too_small_fails_naming_the_step_that_holds_the_spectra() {
    let tmp = tempfile::tempdir().unwrap();
    let file = das("prodml_2.0.h5");
    let out = tmp.path().join("q.zarr");
    fn args(step: &str) -> Vec<&str> {
        vec!["--fmax", "nyquist", "--quantize", step]
    }

    // 0.0001 dB x 65533 codes = 6.6 dB: the spectra sampled at planning span far more.
    let o = das_run(&[&file], &out, &args("0.0001"));
    let said = text(&o);
    assert_eq!(o.status.code(), Some(1), "{said}");
    assert!(
        said.contains(p(&out)) && said.contains("--quantize 0.0001"),
        "{said}"
    );
    assert!(!said.contains("panicked"), "{said}");
    assert!(
        !out.exists(),
        "nothing is created before the step is known to fit"
    );
    let smallest = number_after(&said, "The smallest step that holds them is");
    let suggested = number_after(&said, "run again with --quantize");
    let (s1, s2): (f64, f64) = (smallest.parse().unwrap(), suggested.parse().unwrap());
    assert!(s1 > 0.0001 && s2 >= s1, "{said}");

    // The smallest step for the planning sample; a window met later (this file's spectra
    // reach 28 dB lower than the sample) stops the job with the cube unpublished.
    let o = das_run(&[&file], &out, &args(&smallest));
    let said = text(&o);
    assert_eq!(o.status.code(), Some(1), "{said}");
    assert!(
        said.contains("windows computed so far") && said.contains("--overwrite"),
        "{said}"
    );
    assert!(!CubeReader::open(&out).is_ok_and(|c| c.is_complete()));
    let suggested = number_after(&said, "run again with --quantize");

    // The round step offered, with room for the rest of the record, holds every window.
    let mut a = args(&suggested);
    a.push("--overwrite");
    das_ok(&[&file], &out, &a);
    let float = tmp.path().join("f.zarr");
    das_ok(&[&file], &float, &["--fmax", "nyquist"]);
    assert_within_half_a_step(&float, &out, suggested.parse().unwrap());
}

#[test]
fn append_keeps_the_codes_of_the_cube() {
    let tmp = tempfile::tempdir().unwrap();
    let s = synthetic_files();
    let q = ["--quantize", "0.02", "--chunks", "64,8", "--record-paths"];
    let float = tmp.path().join("abc-f32.zarr");
    das_ok(
        &[&s[0], &s[1], &s[2]],
        &float,
        &["--chunks", "64,8", "--record-paths"],
    );
    let grown = tmp.path().join("ab+c.zarr");
    das_ok(&[&s[0], &s[1]], &grown, &q);
    let before = CubeReader::open(&grown)
        .unwrap()
        .array("spectrogram")
        .unwrap()
        .attrs
        .clone();

    // Another step is refused, naming the cube's.
    let o = das_run(&[&s[2]], &grown, &["--append", "--quantize", "0.05"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("int16 codes 0.02 apart"), "{}", text(&o));

    das_ok(&[&s[2]], &grown, &["--append", "--record-paths"]);
    let after = CubeReader::open(&grown).unwrap();
    let attrs = &after.array("spectrogram").unwrap().attrs;
    for k in [
        "scale_factor",
        "add_offset",
        "_FillValue",
        "cryocube_neg_inf_code",
    ] {
        assert_eq!(attrs[k], before[k], "{k}");
    }
    // Appended windows (from 591 on, inside a time chunk) within half a step of the float
    // cube of one run over all three files.
    assert_within_half_a_step(&float, &grown, 0.02);
}
