//! Hostile input (issue #18): sizes from a file's clock, an option or a store's metadata that
//! would exhaust memory; option values that are not numbers; output paths that would clobber
//! something; files that are not what they claim. Each case gets a clear refusal naming the
//! cause, the documented exit code (2 for usage errors, 1 otherwise), no panic, and nothing
//! written where it should not be.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{cryocube, cryocube_with, das, p, text};

/// Exit `code`, no panic or abort, and every `expect` in the message.
fn assert_refused(o: &Output, code: i32, expect: &[&str]) {
    let t = text(o);
    assert_eq!(o.status.code(), Some(code), "exit code: {t}");
    assert!(
        !t.contains("panicked") && !t.contains("memory allocation"),
        "{t}"
    );
    for e in expect {
        assert!(t.contains(e), "message lacks {e:?}: {t}");
    }
}

/// `cryocube` run in folder `cwd`.
fn cryocube_in(cwd: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_cryocube"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

/// Synthetic Silixa files (8 channels, 30 s at 1 kHz each) in `dir`, made by `cryocube demo`.
fn synthetic(dir: &Path, files: u64) -> Vec<PathBuf> {
    let o = cryocube(&[
        "demo",
        "-o",
        p(dir),
        "--record-only",
        "--files",
        &files.to_string(),
        "--channels",
        "8",
        "-q",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let mut files: Vec<PathBuf> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(PathBuf::from)
        .collect();
    files.sort();
    files
}

/// Replaces a string attribute of the `Acoustic` dataset of a Silixa file.
fn set_attr(file: &Path, name: &str, value: &str) {
    use hdf5::types::VarLenUnicode;
    let f = hdf5::File::open_rw(file).unwrap();
    let ds = f.dataset("Acoustic").unwrap();
    ds.delete_attr(name).unwrap();
    let v: VarLenUnicode = value.parse().unwrap();
    ds.new_attr::<VarLenUnicode>()
        .create(name)
        .unwrap()
        .write_scalar(&v)
        .unwrap();
}

/// Sets every sample of a Silixa file to `v`.
fn fill_samples(file: &Path, v: f32) {
    let f = hdf5::File::open_rw(file).unwrap();
    let ds = f.dataset("Acoustic").unwrap();
    let shape = ds.shape();
    let data = ndarray::Array2::<f32>::from_elem((shape[0], shape[1]), v);
    ds.write(&data).unwrap();
}

/// A one-variable recipe over a 600 km square at 10 km, with one source `name` at `url`.
fn one_source_recipe(dir: &Path, name: &str, url: &str) -> PathBuf {
    let recipe = dir.join("cube.geojson");
    std::fs::write(
        &recipe,
        serde_json::json!({
            "type": "Feature", "geometry": null,
            "properties": {
                "spatial_ref": "EPSG:3031",
                "spatial_bbox": [-1800000.0, -700000.0, -1200000.0, -100000.0],
                "spatial_res": [10000, 10000],
                "variables": [{"name": "v", "dims": ["y", "x"]}],
                "sources": [{"name": name, "variable_names": ["v"], "download_url": url}]
            }
        })
        .to_string(),
    )
    .unwrap();
    recipe
}

#[test]
fn option_values_are_usage_errors_with_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let input = das("decimated_optodas.hdf5");
    let out = tmp.path().join("c.zarr");
    let cases: &[(&[&str], &str)] = &[
        (&["--dt", "-0.1"], "-0.1 is not positive"),
        (&["--df", "0"], "0 is not positive"),
        (&["--fmax", "abc"], "\"abc\" is not a number"),
        (&["--fmax", "nan"], "not a finite number"),
        (&["--fmin", "nan"], "not a finite number"),
        (&["--fmin", "-1"], "-1 is negative"),
        (&["--distance", "nan:nan"], "not a number"),
        (&["--distance", "0:nan"], "not a number"),
        (&["--distance", "5:1"], "5 is after 1"),
        (&["--chunks", "18446744073709551615,1"], "a chunk side is 1"),
        (&["--chunks", "0,4"], "a chunk side is 1"),
        (&["--shard"], "--zarr-format"),
        (&["--max-gap", "inf"], "not a finite number"),
    ];
    for (extra, expect) in cases {
        let mut args = vec!["das", p(&input), "-o", p(&out)];
        args.extend_from_slice(extra);
        let o = cryocube(&args);
        assert_refused(&o, 2, &[expect]);
        assert!(!out.exists(), "{extra:?} created the output");
    }
    // A long number is not echoed digit by digit.
    let long = format!("1{}", "0".repeat(300));
    let o = cryocube(&["das", p(&input), "-o", p(&out), "--dt", &long]);
    assert_refused(&o, 1, &["longer than the record", "1e300"]);
    assert!(!text(&o).contains(&"0".repeat(40)), "{}", text(&o));
    // --shard with format 2 given explicitly: usage too.
    let o = cryocube(&[
        "das",
        p(&input),
        "-o",
        p(&out),
        "--zarr-format",
        "2",
        "--shard",
    ]);
    assert_refused(&o, 2, &["--shard needs --zarr-format 3"]);
    // Negative distances are values, not flags (PRODML channels sit at negative distances):
    // the parser takes them and the library says there is no channel there.
    let o = cryocube(&["das", p(&input), "-o", p(&out), "--distance", "-200:-100"]);
    assert_refused(&o, 1, &["--distance -200:-100 m contains no channel"]);
    let o = cryocube(&["build", "r.geojson", "-o", p(&out), "--res", "-5"]);
    assert_refused(&o, 2, &["-5 is not positive"]);
}

#[test]
fn output_paths_that_are_not_a_cube_folder_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path().join("work");
    std::fs::create_dir(&cwd).unwrap();
    std::fs::write(cwd.join("notes.txt"), "mine").unwrap();
    let input = das("decimated_optodas.hdf5");
    // An unset $OUT: a usage error.
    let o = cryocube_in(&cwd, &["das", p(&input), "-o", ""]);
    assert_refused(&o, 2, &["an empty path"]);
    let o = cryocube_in(&cwd, &["das", p(&input), "-o", "", "--overwrite"]);
    assert_refused(&o, 2, &["an empty path"]);
    for out in [".", "./", "..", "sub/..", p(&cwd)] {
        let o = cryocube_in(&cwd, &["das", p(&input), "-o", out, "--overwrite"]);
        assert_refused(&o, 1, &["the current folder"]);
    }
    let o = cryocube_in(&cwd, &["das", p(&input), "-o", "/"]);
    assert_refused(&o, 1, &["the file system's root"]);
    let o = cryocube_in(&cwd, &["build", "cube.geojson", "-o", "."]);
    assert_refused(&o, 1, &["the current folder"]);
    // A folder with files of someone else's: refused with and without --overwrite, and with
    // --append; nothing (not even a lock file) is written into it.
    let theirs = tmp.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::fs::write(theirs.join("thesis.tex"), "do not touch").unwrap();
    for extra in [&[][..], &["--overwrite"][..], &["--append"][..]] {
        let mut args = vec!["das", p(&input), "-o", p(&theirs)];
        args.extend_from_slice(extra);
        let o = cryocube(&args);
        assert_refused(&o, 1, &["thesis.tex", "not a Zarr store"]);
    }
    let names: Vec<_> = std::fs::read_dir(&theirs).unwrap().collect();
    assert_eq!(names.len(), 1, "only thesis.tex is there");
    let names: Vec<_> = std::fs::read_dir(&cwd).unwrap().collect();
    assert_eq!(names.len(), 1, "only notes.txt is in the current folder");
}

#[test]
fn a_file_with_a_wrong_clock_is_named_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let files = synthetic(&tmp.path().join("rec"), 2);
    // The second file's clock says 2100: a gap of 80 years.
    set_attr(
        &files[1],
        "ISO8601 Timestamp",
        "2100-01-01T00:00:00.000+00:00",
    );
    let out = tmp.path().join("c.zarr");
    let o = cryocube(&["das", p(&files[0]), p(&files[1]), "-o", p(&out)]);
    assert_refused(
        &o,
        1,
        &[
            p(&files[0]),
            p(&files[1]),
            "79 years",
            "--max-gap",
            "--allow-gap",
        ],
    );
    assert!(!out.exists(), "nothing created");
    // One day later: still a gap beyond the default of a day; --max-gap allows it...
    set_attr(
        &files[1],
        "ISO8601 Timestamp",
        "2020-07-23T00:01:00.000+00:00",
    );
    let o = cryocube(&["das", p(&files[0]), p(&files[1]), "-o", p(&out)]);
    assert_refused(&o, 1, &["24.0 h", "--max-gap 86400"]);
    let o = cryocube(&[
        "das",
        p(&files[0]),
        p(&files[1]),
        "-o",
        p(&out),
        "--max-gap",
        "100000",
        "--dt",
        "10",
        "--df",
        "1",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // ...and a year's gap with --allow-gap is refused by the memory budget, with the size.
    set_attr(
        &files[1],
        "ISO8601 Timestamp",
        "2021-07-22T00:00:00.000+00:00",
    );
    let out2 = tmp.path().join("d.zarr");
    let o = cryocube_with(
        &[
            "das",
            p(&files[0]),
            p(&files[1]),
            "-o",
            p(&out2),
            "--allow-gap",
        ],
        &[("CRYOCUBE_MEMORY_MB".into(), "64".into())],
    );
    assert_refused(
        &o,
        1,
        &["the time coordinate of 3.2e8 windows", "GiB", "1 gap(s)"],
    );
    assert!(!out2.exists(), "nothing created");
}

#[test]
fn chunks_beyond_the_memory_budget_are_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let input = das("decimated_optodas.hdf5");
    let out = tmp.path().join("c.zarr");
    let o = cryocube_with(
        &[
            "das",
            p(&input),
            "-o",
            p(&out),
            "--chunks",
            "1000000,1000000",
        ],
        &[("CRYOCUBE_MEMORY_MB".into(), "512".into())],
    );
    assert_refused(
        &o,
        1,
        &["--chunks TIME,DISTANCE", "GiB", "budget of 512.0 MiB"],
    );
    assert!(!out.exists());
    // Within the budget the same options are fine on this short record.
    let o = cryocube(&["das", p(&input), "-o", p(&out), "--chunks", "1000,1000"]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn store_metadata_is_validated_before_its_sizes_are_used() {
    let tmp = tempfile::tempdir().unwrap();
    let input = das("decimated_optodas.hdf5");
    let out = tmp.path().join("c.zarr");
    let o = cryocube(&["das", p(&input), "-o", p(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    let zmeta = std::fs::read_to_string(out.join(".zmetadata")).unwrap();
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v: serde_json::Value = serde_json::from_str(&zmeta).unwrap();
        f(&mut v);
        std::fs::write(out.join(".zmetadata"), v.to_string()).unwrap();
    };
    // 10^12 windows: the time coordinate (one chunk) would be 8 TB.
    edit(&|v| {
        v["metadata"]["time/.zarray"]["shape"] = serde_json::json!([1_000_000_000_000u64]);
        v["metadata"]["time/.zarray"]["chunks"] = serde_json::json!([1_000_000_000_000u64]);
        v["metadata"]["spectrogram/.zarray"]["shape"][0] = serde_json::json!(1_000_000_000_000u64);
    });
    for cmd in [&["info"][..], &["view", "--port", "0"][..]] {
        let mut args = cmd.to_vec();
        args.insert(1, p(&out));
        let o = cryocube(&args);
        assert_refused(&o, 1, &["time", "budget"]);
    }
    let o = cryocube(&["das", p(&input), "-o", p(&out), "--append"]);
    assert_refused(&o, 1, &["time", "budget"]);
    // Chunks of 0: refused as invalid metadata, not divided by.
    edit(&|v| {
        v["metadata"]["spectrogram/.zarray"]["chunks"] = serde_json::json!([0, 0, 0]);
    });
    for cmd in [&["info"][..], &["view", "--port", "0"][..]] {
        let mut args = cmd.to_vec();
        args.insert(1, p(&out));
        let o = cryocube(&args);
        assert_refused(
            &o,
            1,
            &["spectrogram", "invalid metadata", "a chunk side of 0"],
        );
    }
}

#[test]
fn samples_that_are_all_nan_or_too_large_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let files = synthetic(&tmp.path().join("rec"), 1);
    fill_samples(&files[0], f32::NAN);
    let out = tmp.path().join("c.zarr");
    let o = cryocube(&["das", p(&files[0]), "-o", p(&out)]);
    assert_refused(&o, 1, &["every sample of the selected channels is NaN"]);
    assert!(!out.join(".zmetadata").exists());
    fill_samples(&files[0], 3e38);
    let out = tmp.path().join("d.zarr");
    let o = cryocube(&["das", p(&files[0]), "-o", p(&out)]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("samples as large as 3e38") && t.contains("overflow float32"),
        "{t}"
    );
}

#[test]
fn header_values_out_of_any_instrument_range_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("c.zarr");
    for (attr, value, expect) in [
        ("Start Distance (m)", "inf", "invalid distances"),
        (
            "SpatialResolution[m]",
            "1e308",
            "invalid channel spacing 1e308 m",
        ),
        (
            "SamplingFrequency[Hz]",
            &format!("1{}", "0".repeat(300)),
            "invalid sampling rate 1e300 Hz",
        ),
    ] {
        let files = synthetic(
            &tmp.path().join(attr.replace(['[', ']', ' ', '(', ')'], "")),
            1,
        );
        set_attr(&files[0], attr, value);
        let o = cryocube(&["das", p(&files[0]), "-o", p(&out)]);
        assert_refused(&o, 1, &[p(&files[0]), expect]);
        assert!(!out.exists());
    }
}

#[test]
fn a_fifo_is_refused_instead_of_blocking() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("pipe.h5");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let out = tmp.path().join("c.zarr");
    // If the FIFO were opened, the run would block; the test would then hang, not pass.
    let o = cryocube(&["das", p(&fifo), "-o", p(&out)]);
    assert_refused(&o, 1, &["pipe.h5", "not a regular file"]);
}

#[test]
fn grids_of_no_cell_or_countless_cells_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let source = common::shared().join("data/polar/geotiff/ant4d_fa.tif");
    let recipe = one_source_recipe(
        tmp.path(),
        "Antarctica 4D",
        &format!("file://{}", source.display()),
    );
    let out = tmp.path().join("c.zarr");
    let sources = tmp.path().join("sources");
    let build = |extra: &[&str]| {
        let mut args = vec!["build", p(&recipe), "-o", p(&out), "--sources", p(&sources)];
        args.extend_from_slice(extra);
        cryocube(&args)
    };
    let o = build(&["--res", "1e12"]);
    assert_refused(
        &o,
        1,
        &["larger than the extent", "the grid would be empty"],
    );
    let o = build(&["--res", "0.001"]);
    assert_refused(&o, 1, &["600000000 x 600000000", "3.6e17 cells"]);
    assert!(!out.exists());
    // A chunk larger than the 60 x 60 grid is clamped to it: one chunk, nothing more.
    let o = build(&["--chunk", "65536"]);
    assert!(o.status.success(), "{}", text(&o));
    let zarray: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("v/.zarray")).unwrap()).unwrap();
    assert_eq!(zarray["chunks"], serde_json::json!([60, 60]));
}

#[test]
fn a_missing_source_and_a_patch_without_metadata_name_what_the_user_wrote() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = one_source_recipe(tmp.path(), "Bed of Gone", "file:///nonexistent/gone.tif");
    let out = tmp.path().join("c.zarr");
    let o = cryocube(&[
        "build",
        p(&recipe),
        "-o",
        p(&out),
        "--sources",
        p(&tmp.path().join("s")),
    ]);
    assert_refused(&o, 1, &["source `Bed of Gone`", "gone.tif"]);
    // The OS error is said once.
    assert_eq!(text(&o).matches("No such file").count(), 1, "{}", text(&o));

    let cube = tmp.path().join("cube.zarr");
    let o = cryocube(&["das", p(&das("decimated_optodas.hdf5")), "-o", p(&cube)]);
    assert!(o.status.success(), "{}", text(&o));
    let patch = tmp.path().join("patch.yaml");
    std::fs::write(&patch, "title: not under metadata\n").unwrap();
    let o = cryocube(&["patch", p(&cube), "--metadata", p(&patch)]);
    assert_refused(&o, 1, &["patch.yaml", "no `metadata` mapping"]);
}

/// A run killed before it stored its plan leaves a folder with the lock and a half-written
/// plan: the same command started again builds the cube instead of calling it "existing".
#[test]
fn a_run_killed_before_its_plan_is_started_again() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("c.zarr");
    std::fs::create_dir_all(out.join(".cryocube")).unwrap();
    std::fs::write(out.join(".cryocube-lock"), b"").unwrap();
    std::fs::write(
        out.join(".cryocube/.plan.json.gz.cryocube-tmp"),
        b"\x1f\x8b half",
    )
    .unwrap();
    let input = das("decimated_optodas.hdf5");
    let o = cryocube(&["das", p(&input), "-o", p(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    let o = cryocube(&["info", p(&out)]);
    assert!(
        o.status.success() && !text(&o).contains("INCOMPLETE"),
        "{}",
        text(&o)
    );
}

/// One complex sample as some interrogators store it: a compound of two floats.
#[derive(hdf5::H5Type, Clone, Copy)]
#[repr(C)]
struct Complex32 {
    r: f32,
    i: f32,
}

/// A file whose samples are complex numbers is named as such when it is opened, before any
/// output exists (not as a "compound" after the cube was created).
#[test]
fn complex_samples_are_refused_before_anything_is_written() {
    use hdf5::types::VarLenUnicode;
    let tmp = tempfile::tempdir().unwrap();
    let real = synthetic(&tmp.path().join("rec"), 1);
    let complex = tmp.path().join("complex.h5");
    {
        let src = hdf5::File::open(&real[0]).unwrap();
        let src = src.dataset("Acoustic").unwrap();
        let dst = hdf5::File::create(&complex).unwrap();
        let data = ndarray::Array2::from_elem((1000, 8), Complex32 { r: 1.0, i: -1.0 });
        let ds = dst
            .new_dataset_builder()
            .with_data(&data)
            .create("Acoustic")
            .unwrap();
        for name in src.attr_names().unwrap() {
            let v: VarLenUnicode = src.attr(&name).unwrap().read_scalar().unwrap();
            ds.new_attr::<VarLenUnicode>()
                .create(name.as_str())
                .unwrap()
                .write_scalar(&v)
                .unwrap();
        }
    }
    let out = tmp.path().join("c.zarr");
    let o = cryocube(&["das", p(&complex), "-o", p(&out)]);
    assert_refused(&o, 1, &["complex.h5", "complex numbers", "r, i"]);
    assert!(!out.exists(), "nothing created");
}

/// A published cube names its inputs by file name, size and time; their absolute paths
/// (home folders, machine names) only with `--record-paths`.
#[test]
fn absolute_input_paths_are_recorded_only_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    // Two files with a gap between them: the gap and its warning name files too.
    let files = synthetic(&tmp.path().join("private-home"), 3);
    std::fs::remove_file(&files[1]).unwrap();
    for (flag, recorded) in [(None, false), (Some("--record-paths"), true)] {
        let out = tmp.path().join(format!("c{recorded}.zarr"));
        let mut args = vec!["das", p(&files[0]), p(&files[2]), "-o", p(&out)];
        args.extend(flag);
        let o = cryocube(&args);
        assert!(o.status.success(), "{}", text(&o));
        let meta = std::fs::read_to_string(out.join(".zmetadata")).unwrap();
        let name = files[0].file_name().unwrap().to_str().unwrap();
        assert!(
            meta.contains(name) && meta.contains("gap"),
            "the file is named"
        );
        assert_eq!(meta.contains("private-home"), recorded, "{flag:?}");
    }
}
