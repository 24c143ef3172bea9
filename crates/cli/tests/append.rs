//! `cryocube das --append` on the real synthetic record (three contiguous 30 s files A, B, C):
//! appending gives the same chunk bytes as one run over all the files (Zarr v2, sharded v3,
//! f16), a gap becomes NaN windows on a regular axis, inputs already in the cube are skipped,
//! other parameters or records are refused with the cube untouched, a file that fails midway
//! puts the cube back as it was, and a killed append resumes to the same cube.

mod common;

use std::path::{Path, PathBuf};

use common::{assert_same_store, cryocube, das, kill_after_blocks, p, store_files, text};
use cryocube_cube::CubeReader;

fn abc() -> Vec<PathBuf> {
    let dir = das("synthetic");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "h5"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 3, "MANIFEST: three synthetic files");
    files
}

/// `cryocube das INPUTS -o OUT --record-paths EXTRA...` (chunks 64,8 unless EXTRA says);
/// must succeed. The paths let an append re-read the last file without it among its inputs.
fn build(inputs: &[&Path], out: &Path, extra: &[&str]) -> String {
    let mut args = vec!["das"];
    args.extend(inputs.iter().map(|i| p(i)));
    args.extend(["-o", p(out), "--record-paths"]);
    if !extra.contains(&"--chunks") {
        args.extend(["--chunks", "64,8"]);
    }
    args.extend(extra);
    let o = cryocube(&args);
    assert!(o.status.success(), "{args:?}: {}", text(&o));
    text(&o)
}

fn append(inputs: &[&Path], out: &Path) -> std::process::Output {
    let mut args = vec!["das"];
    args.extend(inputs.iter().map(|i| p(i)));
    args.extend(["-o", p(out), "--append", "--record-paths"]);
    cryocube(&args)
}

#[test]
fn appending_gives_the_cube_of_one_run() {
    let tmp = tempfile::tempdir().unwrap();
    let f = abc();
    for (name, extra) in [
        ("v2", vec![]),
        ("v3", vec!["--zarr-format", "3", "--shard"]),
        ("f16", vec!["--dtype", "f16", "--scale", "cryocube"]),
    ] {
        let whole = tmp.path().join(format!("{name}-abc.zarr"));
        let grown = tmp.path().join(format!("{name}-ab+c.zarr"));
        build(&[&f[0], &f[1], &f[2]], &whole, &extra);
        // 591 windows: the append starts inside a time chunk (591 = 9 * 64 + 15).
        build(&[&f[0], &f[1]], &grown, &extra);
        let o = append(&[&f[2]], &grown);
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("appended 300 windows"), "{}", text(&o));
        assert_same_store(&whole, &grown);
        let cube = CubeReader::open(&grown).unwrap();
        assert!(cube.is_complete());
        let history = cube.attrs()["history"].as_str().unwrap();
        assert!(
            history.lines().count() == 2 && history.contains("--append"),
            "{history}"
        );
        assert!(cube.attrs().contains_key("date_modified"));
    }
}

#[test]
fn a_gap_becomes_nan_windows_on_a_regular_axis() {
    let tmp = tempfile::tempdir().unwrap();
    let f = abc();
    let whole = tmp.path().join("ac.zarr");
    let grown = tmp.path().join("a+c.zarr");
    build(&[&f[0], &f[2]], &whole, &[]);
    build(&[&f[0]], &grown, &[]);
    let o = append(&[&f[2]], &grown);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("gap of 30.000000 s"), "{}", text(&o));
    assert_same_store(&whole, &grown);

    let cube = CubeReader::open(&grown).unwrap();
    let gaps = cube.attrs()["gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(gaps[0]["samples"], 30000);
    let time = cube.read_all_i64("time").unwrap();
    assert_eq!(time.len(), 891, "90 s of 0.1 s windows of 1 s");
    assert!(time.windows(2).all(|w| w[1] - w[0] == 100_000), "regular");
    // Windows 291..600 touch the missing 30..60 s; those before and after hold spectra.
    let w = |i: u64| {
        cube.read_f64("spectrogram", &[i, 0, 25], &[1, 1, 1])
            .unwrap()[0]
    };
    assert!(w(290).is_finite() && w(600).is_finite());
    assert!((291..600).all(|i| w(i).is_nan()));
}

#[test]
fn a_missing_last_file_leaves_only_the_windows_it_would_fill_nan() {
    let tmp = tempfile::tempdir().unwrap();
    let f = abc();
    let raw = tmp.path().join("raw");
    std::fs::create_dir(&raw).unwrap();
    for file in &f[..2] {
        std::fs::copy(file, raw.join(file.file_name().unwrap())).unwrap();
    }
    let whole = tmp.path().join("abc.zarr");
    let grown = tmp.path().join("ab+c.zarr");
    build(&[&f[0], &f[1], &f[2]], &whole, &[]);
    build(&[&raw], &grown, &[]);
    // The cube's last input is gone: its last second can no longer be read.
    let b = raw.join(f[1].file_name().unwrap());
    std::fs::remove_file(&b).unwrap();
    let o = append(&[&f[2]], &grown);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("neither among the inputs nor at"),
        "{}",
        text(&o)
    );
    let (a, g) = (
        CubeReader::open(&whole).unwrap(),
        CubeReader::open(&grown).unwrap(),
    );
    let (va, vg) = (
        a.read_f64("spectrogram", &[0, 0, 0], &[891, 32, 101])
            .unwrap(),
        g.read_f64("spectrogram", &[0, 0, 0], &[891, 32, 101])
            .unwrap(),
    );
    let row = 32 * 101;
    for i in 0..891 {
        let (ra, rg) = (&va[i * row..(i + 1) * row], &vg[i * row..(i + 1) * row]);
        if (591..600).contains(&i) {
            // Windows starting at 59.1 .. 59.9 s need B's last samples.
            assert!(rg.iter().all(|v| v.is_nan()), "window {i} should be NaN");
        } else {
            assert!(ra == rg, "window {i} differs from the one-run cube");
        }
    }
}

#[test]
fn inputs_already_in_the_cube_are_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let f = abc();
    let whole = tmp.path().join("abc.zarr");
    let grown = tmp.path().join("ab+c.zarr");
    build(&[&f[0], &f[1], &f[2]], &whole, &[]);
    build(&[&f[0], &f[1]], &grown, &[]);
    // A monitoring job appends the whole folder each time.
    let folder = das("synthetic");
    let o = append(&[&folder], &grown);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("2 input(s) already in the cube skipped"),
        "{}",
        text(&o)
    );
    assert_same_store(&whole, &grown);
    let before = store_files(&grown);
    let o = append(&[&folder], &grown);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("nothing to append: all 3 input file(s) are already in the cube"),
        "{}",
        text(&o)
    );
    assert!(before == store_files(&grown), "nothing new: cube untouched");
}

#[test]
fn append_refuses_other_parameters_other_records_and_the_past() {
    let tmp = tempfile::tempdir().unwrap();
    let f = abc();
    let cube = tmp.path().join("ac.zarr");
    build(&[&f[0], &f[2]], &cube, &[]);
    let before = store_files(&cube);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["das", p(&f[1]), "-o", p(&cube), "--append"],
            "lie within the cube's time span",
        ),
        (
            vec!["das", p(&f[1]), "-o", p(&cube), "--append", "--df", "2"],
            "--df 2",
        ),
        (
            vec![
                "das",
                p(&f[1]),
                "-o",
                p(&cube),
                "--append",
                "--chunks",
                "32,8",
            ],
            "--chunks 32,8",
        ),
    ];
    let silixa = das("silixa_h5_1.hdf5");
    let mut cases = cases;
    cases.push((
        vec!["das", p(&silixa), "-o", p(&cube), "--append"],
        "sampling rate differs",
    ));
    for (args, expected) in cases {
        let o = cryocube(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o));
        let t = text(&o);
        assert!(
            t.contains(expected) && !t.contains("panicked"),
            "{args:?}: {t}"
        );
        assert!(before == store_files(&cube), "{args:?} changed the cube");
    }
    // --append and --overwrite contradict each other.
    let o = cryocube(&["das", p(&f[1]), "-o", p(&cube), "--append", "--overwrite"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn a_killed_append_resumes_to_the_same_cube() {
    let tmp = tempfile::tempdir().unwrap();
    let f = abc();
    let whole = tmp.path().join("abc.zarr");
    let grown = tmp.path().join("a+bc.zarr");
    let small = ["--chunks", "8,4"];
    build(&[&f[0], &f[1], &f[2]], &whole, &small);
    build(&[&f[0]], &grown, &small);
    let (b, c) = (p(&f[1]), p(&f[2]));
    let args = [
        "das",
        b,
        c,
        "-o",
        p(&grown),
        "--append",
        "--record-paths",
        "-q",
    ];
    // The append starts at block 291 / 8 = 36; kill it a few blocks later.
    kill_after_blocks(&args, &grown, 40);
    let info = cryocube(&["info", p(&grown)]);
    assert!(text(&info).contains("INCOMPLETE"), "{}", text(&info));
    let o = cryocube(&args);
    assert!(o.status.success(), "{}", text(&o));
    assert_same_store(&whole, &grown);
}

/// A Silixa-layout file that continues the synthetic record (start 00:01:30, 30 s x 32
/// channels) with a chunked, deflated dataset whose middle is then overwritten: the header
/// reads, the samples of its later chunks do not.
fn corrupt_continuation(path: &Path) {
    use hdf5::types::VarLenUnicode;
    let (n, channels) = (30_000usize, 32usize);
    let data = ndarray::Array2::from_shape_fn((n, channels), |(i, c)| {
        ((i as f32) * 0.157 + c as f32).sin() * 100.0
    });
    let file = hdf5::File::create(path).unwrap();
    let ds = file
        .new_dataset_builder()
        .chunk((1000, channels))
        .deflate(4)
        .with_data(&data)
        .create("Acoustic")
        .unwrap();
    for (k, v) in [
        ("SamplingFrequency[Hz]", "1000"),
        ("SpatialResolution[m]", "4"),
        ("Fibre Length Multiplier", "1.000000"),
        ("Start Distance (m)", "0"),
        ("Stop Distance (m)", "124"),
        ("ISO8601 Timestamp", "2020-07-22T02:01:30.000+02:00"),
        ("GPSTimeStamp", "22/07/2020 00:01:30.000 (UTC)"),
    ] {
        let value: VarLenUnicode = v.parse().unwrap();
        ds.new_attr::<VarLenUnicode>()
            .create(k)
            .unwrap()
            .write_scalar(&value)
            .unwrap();
    }
    // Chunks 20..: samples 20 s on, read well after the append has changed the cube.
    let spans: Vec<(usize, usize)> = (20..30)
        .map(|i| {
            let c = ds.chunk_info(i).expect("chunk info");
            (c.addr as usize, c.size as usize)
        })
        .collect();
    drop(ds);
    drop(file);
    let mut bytes = std::fs::read(path).unwrap();
    for (addr, size) in spans {
        bytes[addr..addr + size].fill(0xAB);
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_file_failing_midway_puts_the_cube_back() {
    let tmp = tempfile::tempdir().unwrap();
    let f = abc();
    for (name, extra) in [
        ("v2", vec![]),
        ("v3", vec!["--zarr-format", "3", "--shard"]),
    ] {
        let cube = tmp.path().join(format!("{name}.zarr"));
        build(&[&f[0], &f[1]], &cube, &extra);
        let before = store_files(&cube);
        let d = tmp.path().join("SYNTHETIC_corrupt_000130.h5");
        corrupt_continuation(&d);
        let o = append(&[&f[2], &d], &cube);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(1), "{t}");
        assert!(
            t.contains("SYNTHETIC_corrupt_000130.h5") && t.contains("the cube is back as it was"),
            "{t}"
        );
        assert!(before == store_files(&cube), "{name}: the cube changed");
        assert!(CubeReader::open(&cube).unwrap().is_complete());
        std::fs::remove_file(&d).unwrap();
        // And the append goes through once the bad file is gone.
        let o = append(&[&f[2]], &cube);
        assert!(o.status.success(), "{}", text(&o));
    }
}

/// A renamed copy of the cube's last file lies wholly within its span: refused, not
/// "appended" as nothing; a cube whose `time/0` chunk is gone is refused, not extended with
/// 1970 times.
#[test]
fn append_refuses_copies_inside_the_span_and_a_damaged_time_axis() {
    let tmp = tempfile::tempdir().unwrap();
    let f = abc();
    let cube = tmp.path().join("ab.zarr");
    build(&[&f[0], &f[1]], &cube, &[]);
    let before = store_files(&cube);
    let copy = tmp.path().join("renamed_copy_of_b.h5");
    std::fs::copy(&f[1], &copy).unwrap();
    let o = append(&[&copy], &cube);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("renamed_copy_of_b.h5")
            && text(&o).contains("lie within the cube's time span"),
        "{}",
        text(&o)
    );
    assert!(before == store_files(&cube), "cube unchanged");

    std::fs::remove_file(cube.join("time/0")).unwrap();
    let o = append(&[&f[2]], &cube);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("time coordinate") && text(&o).contains("time/0"),
        "{}",
        text(&o)
    );
    let mut expected = before.clone();
    expected.remove("time/0");
    assert!(expected == store_files(&cube), "cube unchanged");
}
