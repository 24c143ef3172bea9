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

/// miniSEED as data centres deliver it, one file per station: a folder of them is one record
/// of all their channels, the same cube as the file that holds the three stations together.
#[test]
fn a_folder_of_per_station_mseed_files_is_one_record() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = das("more/etna_9n_3chan_10s.mseed");
    let bytes = std::fs::read(&whole).unwrap();
    // Its 4096-byte records, split by the station code of their fixed header (bytes 8..13).
    let folder = tmp.path().join("stations");
    std::fs::create_dir(&folder).unwrap();
    let mut by_station: std::collections::BTreeMap<String, Vec<u8>> = Default::default();
    for record in bytes.chunks(4096) {
        let station = String::from_utf8_lossy(&record[8..13]).to_string();
        by_station
            .entry(station)
            .or_default()
            .extend_from_slice(record);
    }
    assert_eq!(by_station.len(), 3);
    for (station, data) in &by_station {
        std::fs::write(folder.join(format!("9N.{station}..HSF.mseed")), data).unwrap();
    }
    let cube = |input: &std::path::Path, name: &str| {
        let out = tmp.path().join(name);
        let o = cryocube(&[
            "das",
            p(input),
            "-o",
            p(&out),
            "--df",
            "1",
            "--dt",
            "0.25",
            "--fmax",
            "nyquist",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        CubeReader::open(&out).unwrap()
    };
    let (a, b) = (cube(&whole, "file.zarr"), cube(&folder, "folder.zarr"));
    for var in ["spectrogram", "distance", "frequency"] {
        let (x, y) = (a.read_all_f64(var).unwrap(), b.read_all_f64(var).unwrap());
        assert_eq!(x.len(), y.len(), "{var}");
        assert!(
            x.iter()
                .zip(&y)
                .all(|(u, v)| u == v || (u.is_nan() && v.is_nan())),
            "{var} differs"
        );
    }
    assert_eq!(
        a.read_all_i64("time").unwrap(),
        b.read_all_i64("time").unwrap()
    );
    assert_eq!(a.array("spectrogram").unwrap().shape[1], 3);
}

/// `cryocube das --help` lists every format the readers know, by the name `--format` takes.
#[test]
fn help_lists_every_format() {
    let o = cryocube(&["das", "--help"]);
    assert!(o.status.success());
    let help = String::from_utf8_lossy(&o.stdout).replace('\n', " ");
    for f in cryocube_das::read::Format::ALL {
        assert!(help.contains(f.name()), "--help lacks {}", f.name());
    }
}
