//! Bad input: each case gets a message naming the file and the problem, exit code 1, no
//! panic, and no cube that looks complete.

mod common;

use std::path::Path;

use common::{cryocube, das, p, text};

fn assert_fails(args: &[&str], out: &Path, expect: &[&str]) {
    let o = cryocube(args);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "exit code for {args:?}: {t}");
    assert!(!t.contains("panicked"), "panic for {args:?}: {t}");
    for e in expect {
        assert!(t.contains(e), "message for {args:?} lacks {e:?}: {t}");
    }
    // No output that looks complete: no consolidated metadata / root group.
    assert!(
        !out.join(".zmetadata").exists() && !out.join(".zgroup").exists(),
        "{t}"
    );
}

#[test]
fn truncated_hdf5_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("truncated.h5");
    let bytes = std::fs::read(das("silixa_h5_1.hdf5")).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() / 3]).unwrap();
    let out = tmp.path().join("c.zarr");
    assert_fails(
        &["das", p(&bad), "-o", p(&out), "--df", "10", "--dt", "0.02"],
        &out,
        &["truncated.h5", "HDF5"],
    );
}

#[test]
fn corrupt_file_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("noise.h5");
    std::fs::write(&bad, b"this is not a DAS file at all").unwrap();
    let out = tmp.path().join("c.zarr");
    assert_fails(
        &["das", p(&bad), "-o", p(&out)],
        &out,
        &["noise.h5", "not a DAS file"],
    );
}

#[test]
fn hdf5_of_unknown_layout_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let odd = tmp.path().join("odd.h5");
    let f = hdf5::File::create(&odd).unwrap();
    f.new_dataset_builder()
        .with_data(&[1.0f32, 2.0, 3.0])
        .create("something")
        .unwrap();
    drop(f);
    let out = tmp.path().join("c.zarr");
    assert_fails(
        &["das", p(&odd), "-o", p(&out)],
        &out,
        &["odd.h5", "known layout"],
    );
}

#[test]
fn mixed_sampling_rates_name_both_files() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("c.zarr");
    let a = das("silixa_h5_1.hdf5");
    let b = das("synthetic/SYNTHETIC_rhonelike_UTC_20200722_000000.000.h5");
    assert_fails(
        &["das", p(&a), p(&b), "-o", p(&out)],
        &out,
        &[
            "silixa_h5_1.hdf5",
            "SYNTHETIC_rhonelike_UTC_20200722_000000.000.h5",
            "sampling rate",
        ],
    );
}

#[test]
fn window_longer_than_data() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("c.zarr");
    // 100 samples at 500 Hz; df 1 Hz asks for 500-sample windows.
    assert_fails(
        &["das", p(&das("silixa_h5_1.hdf5")), "-o", p(&out)],
        &out,
        &["silixa_h5_1.hdf5", "longer than the data"],
    );
}

#[test]
fn fmax_above_nyquist() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("c.zarr");
    assert_fails(
        &[
            "das",
            p(&das("silixa_h5_1.hdf5")),
            "-o",
            p(&out),
            "--df",
            "10",
            "--dt",
            "0.02",
            "--fmax",
            "300",
        ],
        &out,
        &["silixa_h5_1.hdf5", "Nyquist"],
    );
}

#[test]
fn empty_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = tmp.path().join("c.zarr");
    assert_fails(
        &["das", p(&empty), "-o", p(&out)],
        &out,
        &["empty", "no files"],
    );
}

#[test]
fn existing_output_is_refused_without_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("c.zarr");
    let input = das("decimated_optodas.hdf5");
    let o = cryocube(&["das", p(&input), "-o", p(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    let before = std::fs::read(out.join(".zmetadata")).unwrap();
    let o = cryocube(&["das", p(&input), "-o", p(&out)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("already exists") && text(&o).contains("c.zarr"),
        "{}",
        text(&o)
    );
    assert_eq!(
        std::fs::read(out.join(".zmetadata")).unwrap(),
        before,
        "existing cube untouched"
    );
    let o = cryocube(&["das", p(&input), "-o", p(&out), "--overwrite"]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn overwrite_never_deletes_a_folder_that_is_not_a_cube() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("precious");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("thesis.tex"), "do not delete").unwrap();
    let o = cryocube(&[
        "das",
        p(&das("decimated_optodas.hdf5")),
        "-o",
        p(&out),
        "--overwrite",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(out.join("thesis.tex").exists());
}

#[test]
fn zeroed_clock_warns_and_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("c.zarr");
    let o = cryocube(&["das", p(&das("prodml_2.0.h5")), "-o", p(&out)]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("zeroed clock") && t.contains("prodml_2.0.h5"),
        "{t}"
    );
    let meta = std::fs::read_to_string(out.join(".zmetadata")).unwrap();
    assert!(
        meta.contains("zeroed clock"),
        "warning recorded in the cube's attributes"
    );
}

#[test]
fn all_zero_data_is_named_and_left_unfinished() {
    // Neubrex test file: a real header over samples that are all zero.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("c.zarr");
    assert_fails(
        &[
            "das",
            p(&das("extra/neubrex_das_1.h5")),
            "-o",
            p(&out),
            "--df",
            "100",
            "--dt",
            "0.01",
            "--channels",
            "0:500",
        ],
        &out,
        &["neubrex_das_1.h5", "every sample", "zero"],
    );
}
