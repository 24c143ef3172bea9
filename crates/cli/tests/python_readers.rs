//! The cube opens unchanged in the users' own tools: xarray (dims, decoded UTC times,
//! `channel` as a coordinate, values equal to ours) and lexcube's Cube3DWidget, for Zarr v2,
//! sharded Zarr v3 and f16 output. The test makes its own venv (cached in the target dir).
//! GDAL 3.6 (Debian's `gdal-bin`, named by CONVENTIONS.md) reads the Zarr v2 spectrogram with
//! its blosc compression.

mod common;

use std::path::Path;
use std::process::Command;

use common::{cryocube, das, p, text, venv};
use cryocube_cube::CubeReader;

const CHECK: &str = r#"
import sys, numpy as np, xarray as xr, lexcube
path, first_time, w, c, f, value = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
ds = xr.open_zarr(path)
da = ds.spectrogram
assert da.dims == ("time", "distance", "frequency"), da.dims
assert np.issubdtype(ds.time.dtype, np.datetime64), ds.time.dtype
assert str(ds.time.values[0])[:23] == first_time[:23], (str(ds.time.values[0]), first_time)
assert "channel" in ds.coords and ds.channel.dims == ("distance",), list(ds.coords)
assert ds.channel.dtype.kind == "i" and int(ds.channel[0]) == 0, ds.channel.values[:3]
assert ds.distance.attrs["units"] == "m" and ds.frequency.attrs["units"] == "Hz"
got = float(da.isel(time=w, distance=c, frequency=f))
assert abs(got - value) <= 1e-3 * max(1.0, abs(value)), (got, value)
widget = lexcube.Cube3DWidget(da)
print("python-ok", da.shape)
"#;

fn check(cube: &Path, python: &Path) {
    let reader = CubeReader::open(cube).unwrap();
    let times = reader.read_all_i64("time").unwrap();
    let first = cryocube_cube::cf::format_utc_us(times[0])
        .trim_end_matches('Z')
        .to_string();
    let (w, c, f) = (7u64, 5u64, 25u64);
    let v = reader
        .read_f64("spectrogram", &[w, c, f], &[1, 1, 1])
        .unwrap()[0];
    let out = Command::new(python)
        .args([
            "-c",
            CHECK,
            p(cube),
            &first,
            &w.to_string(),
            &c.to_string(),
            &f.to_string(),
            &v.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success() && text(&out).contains("python-ok"),
        "{}: {}",
        cube.display(),
        text(&out)
    );
}

#[test]
fn xarray_and_lexcube_open_v2_v3_and_f16_cubes() {
    let python = venv();
    let tmp = tempfile::tempdir().unwrap();
    let input = das("synthetic");
    for (name, extra) in [
        ("v2.zarr", vec![]),
        // 8-channel chunks: each shard holds four inner chunks of the 32 channels.
        (
            "v3.zarr",
            vec!["--zarr-format", "3", "--shard", "--chunks", "256,8"],
        ),
        ("f16.zarr", vec!["--dtype", "f16"]),
    ] {
        let out = tmp.path().join(name);
        let mut args = vec!["das", p(&input), "-o", p(&out)];
        args.extend(extra);
        let o = cryocube(&args);
        assert!(o.status.success(), "{}", text(&o));
        check(&out, &python);
    }
}

#[test]
fn gdal_reads_the_spectrogram() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("g.zarr");
    let o = cryocube(&["das", p(&das("synthetic")), "-o", p(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    let reader = CubeReader::open(&out).unwrap();
    for (w, c, f) in [(7u64, 5u64, 25u64), (300, 31, 60), (890, 0, 0)] {
        let ours = reader
            .read_f64("spectrogram", &[w, c, f], &[1, 1, 1])
            .unwrap()[0];
        // GDAL's multidimensional Zarr arrays as 2-D rasters: one time index, x = frequency,
        // y = distance.
        let gdal = Command::new("gdallocationinfo")
            .args([
                "-valonly",
                &format!("ZARR:\"{}\":/spectrogram:{w}", p(&out)),
                &f.to_string(),
                &c.to_string(),
            ])
            .output()
            .expect("gdallocationinfo not found: install gdal-bin (make test does)");
        let t = text(&gdal);
        assert!(gdal.status.success(), "{t}");
        let value: f64 = t
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("GDAL said {t:?}"));
        assert!(
            (value - ours).abs() <= 1e-4 * ours.abs().max(1.0),
            "({w},{c},{f}): GDAL {value}, cryocube {ours}"
        );
    }
}
