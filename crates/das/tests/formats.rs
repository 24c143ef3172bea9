//! One recording in two formats gives one cube: `extra/iDAS005_*` holds the same iDAS record
//! as PRODML 2.1 HDF5 and as TDMS.

mod common;

use cryocube_cube::CubeReader;
use cryocube_das::job::{run, DasOptions};
use cryocube_das::read::{open, Format};

fn pair() -> (std::path::PathBuf, std::path::PathBuf) {
    let d = common::das_data().join("extra");
    (
        d.join("iDAS005_hdf5_example.626.h5"),
        d.join("iDAS005_tdms_example.626.tdms"),
    )
}

#[test]
fn idas005_tdms_and_prodml_hold_the_same_samples() {
    let (h5, tdms) = pair();
    let mut a = open(&h5, None).unwrap();
    let mut b = open(&tdms, None).unwrap();
    assert_eq!(a.header().format, Format::Prodml);
    assert_eq!(b.header().format, Format::SilixaTdms);
    let (n, c) = (a.header().n_samples, a.header().n_channels);
    assert_eq!((n, c), (b.header().n_samples, b.header().n_channels));
    assert!((a.header().first_distance - b.header().first_distance).abs() < 1e-3);
    assert!((a.header().start_us - b.header().start_us).abs() < 1000);
    // An odd block (rows and channels not at chunk or file edges) read both ways.
    let (s0, rows, c0, c1) = (123u64, 456usize, 7u64, 1100u64);
    let mut x = vec![0f32; rows * (c1 - c0) as usize];
    let mut y = x.clone();
    a.read_block(s0, rows, c0, c1, &mut x).unwrap();
    b.read_block(s0, rows, c0, c1, &mut y).unwrap();
    assert!(x.iter().any(|v| *v != 0.0), "real samples, not zeros");
    assert_eq!(x, y);
}

#[test]
fn idas005_tdms_and_prodml_give_the_same_cube() {
    let (h5, tdms) = pair();
    let tmp = tempfile::tempdir().unwrap();
    let mut cubes = Vec::new();
    for (i, input) in [h5, tdms].into_iter().enumerate() {
        let out = tmp.path().join(format!("{i}.zarr"));
        let mut opts = DasOptions::new(vec![input], out.clone());
        opts.df = 10.0;
        opts.dt = 0.05;
        opts.fmax = Some(200.0);
        run(&opts, &|_, _| {}).unwrap();
        cubes.push(CubeReader::open(&out).unwrap());
    }
    for var in ["spectrogram", "distance", "frequency"] {
        let a = cubes[0].read_all_f64(var).unwrap();
        let b = cubes[1].read_all_f64(var).unwrap();
        assert_eq!(a.len(), b.len(), "{var}");
        assert!(!a.is_empty());
        // NaN against NaN and -inf against -inf agree; anything else not finite on one side
        // only is an infinite difference (a NaN must not pass as equal to a number).
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| match (x.is_finite(), y.is_finite()) {
                (true, true) => (x - y).abs(),
                _ if x == y || (x.is_nan() && y.is_nan()) => 0.0,
                _ => f64::INFINITY,
            })
            .fold(0f64, f64::max);
        assert!(worst < 1e-3, "{var}: worst difference {worst}");
    }
    let ta = cubes[0].read_all_i64("time").unwrap();
    let tb = cubes[1].read_all_i64("time").unwrap();
    assert_eq!(ta.len(), tb.len());
    assert!(
        ta.iter().zip(&tb).all(|(a, b)| (a - b).abs() < 1000),
        "times within 1 ms"
    );
}
