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
