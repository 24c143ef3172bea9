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

/// CF-packed int16 (the base of `--quantize`): xarray, reading the store on its own, unpacks
/// the values we unpack, masks the fill code and the chunk never written, and shows the -inf
/// code as the lowest representable value (xarray knows no -inf code; ours reads -inf).
#[test]
fn xarray_unpacks_packed_integers_as_we_do() {
    use cryocube_cube::meta::{ArraySpec, DType, ZarrFormat};
    use cryocube_cube::write::{CubeWriter, WriteOptions};
    let python = venv();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("packed.zarr");
    let mut w = CubeWriter::create(
        &root,
        WriteOptions {
            format: ZarrFormat::V2,
            overwrite: false,
        },
    )
    .unwrap();
    let mut attrs = cryocube_cube::Attrs::new();
    for (k, v) in [
        ("scale_factor", serde_json::json!(0.05)),
        ("add_offset", serde_json::json!(-100.0)),
        ("_FillValue", serde_json::json!(-32768)),
        ("cryocube_neg_inf_code", serde_json::json!(-32767)),
    ] {
        attrs.insert(k.into(), v);
    }
    w.add_array(ArraySpec {
        name: "v".into(),
        dims: vec!["x".into()],
        shape: vec![8],
        chunks: vec![4],
        shard: None,
        dtype: DType::I16,
        attrs,
    })
    .unwrap();
    w.write_chunk("v", &[0], &[0i16, 20, -32768, -32767])
        .unwrap();
    w.finish(cryocube_cube::Attrs::new()).unwrap();
    let ours = CubeReader::open(&root).unwrap().read_all_f64("v").unwrap();
    assert_eq!(
        (ours[0], ours[1], ours[3]),
        (-100.0, -99.0, f64::NEG_INFINITY)
    );
    let script = r#"
import sys, math, xarray as xr
v = xr.open_zarr(sys.argv[1]).v.values
assert v.dtype.kind == "f", v.dtype
assert (float(v[0]), float(v[1])) == (-100.0, -99.0), v
assert math.isnan(v[2]) and all(math.isnan(x) for x in v[4:]), v
assert abs(float(v[3]) - (-32767 * 0.05 - 100.0)) < 1e-9, v
print("python-ok")
"#;
    let out = Command::new(&python)
        .args(["-c", script, p(&root)])
        .output()
        .unwrap();
    assert!(
        out.status.success() && text(&out).contains("python-ok"),
        "{}",
        text(&out)
    );
}

/// A quantised DAS cube (`--quantize 0.01`, Zarr v2 and v3) as xarray sees it, without being
/// asked: floats within 0.005 of the float cube xarray reads beside it; and, by hand from
/// the raw int16 codes (`mask_and_scale=False`), `add_offset + code * scale_factor` is what
/// xarray shows, NaN only for the fill code, the -inf code exactly where the float cube is
/// -inf (DASVader's dead channels). Lexcube's widget takes it.
#[test]
fn xarray_decodes_a_quantised_cube_within_half_a_step() {
    let python = venv();
    let tmp = tempfile::tempdir().unwrap();
    let input = das("more/das_vader_1.jld2");
    let base = ["--df", "100", "--dt", "0.01", "--fmax", "nyquist"];
    let float = tmp.path().join("f.zarr");
    let mut args = vec!["das", p(&input), "-o", p(&float)];
    args.extend(base);
    let o = cryocube(&args);
    assert!(o.status.success(), "{}", text(&o));
    let script = r#"
import sys, numpy as np, xarray as xr, lexcube
f = xr.open_zarr(sys.argv[1]).spectrogram.values
ds = xr.open_zarr(sys.argv[2])
q = ds.spectrogram.values
assert q.dtype.kind == "f", q.dtype
raw = xr.open_zarr(sys.argv[2], mask_and_scale=False).spectrogram
codes = raw.values
assert codes.dtype == np.int16, codes.dtype
scale, offset = raw.attrs["scale_factor"], raw.attrs["add_offset"]
assert scale == 0.01 and raw.attrs["cryocube_max_abs_error"] == 0.005, raw.attrs
fill, neg_inf = -32768, raw.attrs["cryocube_neg_inf_code"]
assert (codes == fill).sum() == np.isnan(f).sum() == np.isnan(q).sum()
assert ((codes == neg_inf) == np.isneginf(f)).all() and np.isneginf(f).sum() > 0
ok = codes != fill
assert np.allclose(q[ok], offset + codes[ok].astype(np.float64) * scale, rtol=0, atol=1e-9)
finite = np.isfinite(f)
worst = np.abs(q[finite] - f[finite]).max()
assert 0.0025 < worst <= 0.005 + 1e-5, worst
lexcube.Cube3DWidget(ds.spectrogram)
print("python-ok", worst)
"#;
    for (name, extra) in [("v2", vec![]), ("v3", vec!["--zarr-format", "3"])] {
        let out = tmp.path().join(format!("{name}.zarr"));
        let mut args = vec!["das", p(&input), "-o", p(&out), "--quantize", "0.01"];
        args.extend(base);
        args.extend(extra);
        let o = cryocube(&args);
        assert!(o.status.success(), "{}", text(&o));
        let out = Command::new(&python)
            .args(["-c", script, p(&float), p(&out)])
            .output()
            .unwrap();
        assert!(
            out.status.success() && text(&out).contains("python-ok"),
            "{name}: {}",
            text(&out)
        );
    }
}

/// GDAL 3.6 reads a quantised cube (int16 after blosc's zstd and bit shuffle) and applies the
/// CF packing it reports itself (`Offset`, `Scale`, `NoData`): its values equal ours.
#[test]
fn gdal_reads_a_quantised_spectrogram() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("q.zarr");
    let o = cryocube(&[
        "das",
        p(&das("synthetic")),
        "-o",
        p(&out),
        "--quantize",
        "0.01",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let reader = CubeReader::open(&out).unwrap();
    for (w, c, f) in [(7u64, 5u64, 25u64), (300, 31, 60), (890, 0, 1)] {
        let ours = reader
            .read_f64("spectrogram", &[w, c, f], &[1, 1, 1])
            .unwrap()[0];
        let name = format!("ZARR:\"{}\":/spectrogram:{w}", p(&out));
        let info = Command::new("gdalinfo").arg(&name).output().unwrap();
        let info = text(&info);
        let field = |key: &str| -> f64 {
            let at = info
                .find(key)
                .unwrap_or_else(|| panic!("no {key} in {info}"))
                + key.len();
            info[at..]
                .trim_start()
                .split(|ch: char| ch == ',' || ch.is_whitespace())
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        let (offset, scale) = (field("Offset:"), field("Scale:"));
        assert_eq!(field("NoData Value="), -32768.0);
        let code = Command::new("gdallocationinfo")
            .args(["-valonly", &name, &f.to_string(), &c.to_string()])
            .output()
            .unwrap();
        let code: f64 = text(&code).trim().parse().unwrap();
        assert!(
            (offset + code * scale - ours).abs() < 1e-9,
            "({w},{c},{f}): GDAL {offset} + {code} x {scale}, cryocube {ours}"
        );
    }
}
