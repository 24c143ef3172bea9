//! `cryocube das` on formats that state no distances: the distance coordinate is the channel
//! index (units "1") with a warning, or the user's `--spacing` / `--first-distance`.

mod common;

use common::{cryocube, das, p, text};
use cryocube_cube::CubeReader;

fn run(out: &std::path::Path, extra: &[&str]) -> String {
    let file = das("more/h5_simple_1.h5");
    let mut args = vec![
        "das",
        p(&file),
        "-o",
        p(out),
        "--df",
        "6.25",
        "--dt",
        "0.04",
        "--fmax",
        "nyquist",
    ];
    args.extend_from_slice(extra);
    let o = cryocube(&args);
    assert!(o.status.success(), "{}", text(&o));
    text(&o)
}

#[test]
fn distances_are_the_channel_index_unless_the_user_gives_them() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain.zarr");
    let said = run(&plain, &[]);
    assert!(said.contains("states no distances"), "{said}");
    let cube = CubeReader::open(&plain).unwrap();
    let d = cube.read_all_f64("distance").unwrap();
    assert_eq!(d.len(), 100);
    assert_eq!((d[0], d[1], d[99]), (0.0, 1.0, 99.0));
    assert_eq!(cube.array("distance").unwrap().attrs["units"], "1");
    assert!(cube.attrs()["warnings"]
        .to_string()
        .contains("states no distances"));

    let placed = tmp.path().join("placed.zarr");
    let said = run(&placed, &["--spacing", "2.5", "--first-distance", "-100"]);
    assert!(!said.contains("states no distances"), "{said}");
    let cube = CubeReader::open(&placed).unwrap();
    let d = cube.read_all_f64("distance").unwrap();
    assert_eq!((d[0], d[1], d[99]), (-100.0, -97.5, 147.5));
    assert_eq!(cube.array("distance").unwrap().attrs["units"], "m");
    assert_eq!(cube.attrs()["das_channel_spacing"], 2.5);
    // The spectra do not depend on where the channels are.
    assert_eq!(
        CubeReader::open(&plain)
            .unwrap()
            .read_all_f64("spectrogram")
            .unwrap(),
        cube.read_all_f64("spectrogram").unwrap()
    );
}

/// Sentek's uneven distances become the distance coordinate as they are, and `--distance`
/// picks the channels whose own distance lies in the range.
#[test]
fn uneven_distances_are_the_coordinate_and_select_channels() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sentek.zarr");
    let file = das("more/DASDMSShot00_20230328155653619.das");
    let o = cryocube(&[
        "das",
        p(&file),
        "-o",
        p(&out),
        "--df",
        "10",
        "--dt",
        "0.025",
        "--fmax",
        "nyquist",
        "--distance",
        "4:20",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let cube = CubeReader::open(&out).unwrap();
    let d = cube.read_all_f64("distance").unwrap();
    // The file's table (MANIFEST / reference JSON): 4.8916, 6.9298, ... 18.8531 lie in 4..20.
    let expect = [
        4.89162015914917,
        6.929795265197754,
        8.866061210632324,
        10.802327156066895,
        12.840502738952637,
        14.878677368164062,
        16.916852951049805,
        18.853118896484375,
    ];
    assert_eq!(d, expect);
    assert_eq!(cube.attrs()["das_uneven_distances"], true);
    assert_eq!(cube.attrs()["das_data_type"], "strain rate");
}
