"""`import cryocube` on the real files of shared/data (run by crates/cli/tests/python_package.rs,
which builds the package into the test venv and sets CRYOCUBE_SHARED and CRYOCUBE_BIN).

Independent checks: `stft` against the reference spectra (numpy/scipy, shared/data/das/reference)
on samples read with h5py; `view`'s values against xarray's. The comparisons of `das` and
`build` with the command are same-engine regression checks (both run the same library)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr

import cryocube

SHARED = Path(os.environ["CRYOCUBE_SHARED"])
BIN = os.environ["CRYOCUBE_BIN"]
DAS = SHARED / "data" / "das"
SYNTHETIC = DAS / "synthetic"


def command(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([BIN, *args, "-q"], capture_output=True, text=True)


def arrays_equal(a: Path, b: Path, name: str) -> None:
    x = xr.open_zarr(a)[name].values
    y = xr.open_zarr(b)[name].values
    assert x.shape == y.shape
    assert np.array_equal(x, y, equal_nan=True)


def test_das_writes_the_commands_cube_and_reports_progress(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    out = cryocube.das(SYNTHETIC, tmp_path / "py.zarr", df=2, fmax=50, progress=lambda d, t: calls.append((d, t)))
    assert out == str(tmp_path / "py.zarr")
    r = command("das", str(SYNTHETIC), "-o", str(tmp_path / "cli.zarr"), "--df", "2", "--fmax", "50")
    assert r.returncode == 0, r.stderr
    for name in ["spectrogram", "time", "distance", "frequency"]:
        arrays_equal(tmp_path / "py.zarr", tmp_path / "cli.zarr", name)
    assert calls, "no progress"
    done, total = calls[-1]
    assert done == total > 0


def test_options_reach_the_cube(tmp_path: Path) -> None:
    cube = cryocube.das(
        [SYNTHETIC / "SYNTHETIC_rhonelike_UTC_20200722_000000.000.h5"],
        tmp_path / "c.zarr",
        df=2,
        dt=0.5,
        fmax=50,
        scale="cryocube",
        chunks=(16, 8),
        distance=(20, 60),
        progress=False,
    )
    d = cryocube.info(cube)
    assert d["complete"] is True
    s = d["variables"]["spectrogram"]
    assert s["attrs"]["scale"] == "cryocube"
    assert s["dims"] == ["time", "distance", "frequency"]
    # 0..50 Hz by 2 Hz; 4 m channels from 20 to 60 m inclusive; 30 s in 0.5 s hops of 0.5 s windows.
    assert s["shape"][1:] == [11, 26]
    assert s["chunks"][:2] == [16, 8]
    assert d["dims"]["frequency"] == 26
    assert "spectrogram" in d["text"]


def test_errors_carry_the_commands_messages(tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere.h5")
    with pytest.raises(cryocube.InputError) as e:
        cryocube.das(missing, tmp_path / "x.zarr")
    r = command("das", missing, "-o", str(tmp_path / "y.zarr"))
    assert r.returncode == 1
    assert str(e.value) == r.stderr.strip().removeprefix("error: ")
    assert "nowhere.h5" in str(e.value)
    # An option value the command's parser refuses (its exit code 2).
    with pytest.raises(cryocube.InputError) as e:
        cryocube.das(SYNTHETIC, tmp_path / "z.zarr", dt=-0.1)
    r = command("das", str(SYNTHETIC), "-o", str(tmp_path / "z.zarr"), "--dt=-0.1")
    assert r.returncode == 2
    assert "--dt" in str(e.value) and str(e.value).splitlines()[0] in r.stderr
    assert isinstance(e.value, cryocube.CryocubeError)
    with pytest.raises(cryocube.StoreError):
        cryocube.info(tmp_path / "no-cube.zarr")


def check_against_reference(case: str, samples: np.ndarray, scale: str) -> None:
    ref = np.load(DAS / "reference" / f"{case}.npz")
    meta = json.loads((DAS / "reference" / f"{case}.json").read_text())
    ours = cryocube.stft(samples, meta["fs"], df=meta["df"], dt=meta["dt"], fmax=meta["fmax"], scale=scale)
    want = ref[scale]
    channels = ref["channel"]
    assert ours.shape == (want.shape[0], samples.shape[1], want.shape[2])
    got = ours[:, channels, :]
    span = 10 * np.log(1e6) if scale == "cryocube" else 60.0
    first = 1 if scale == "cryocube" else 0
    if scale == "cryocube":
        assert np.all(got[:, :, 0] == 0), "the seed's numerics zero the DC bin"
    g, w = got[:, :, first:].astype(np.float64), want[:, :, first:].astype(np.float64)
    strongest = w.max(axis=2, keepdims=True)
    near = w >= strongest - span
    assert near.sum() > 1000
    assert np.max(np.abs(g - w)[near]) <= 0.01


@pytest.mark.parametrize("scale", ["db", "cryocube"])
def test_stft_equals_the_reference_spectra(scale: str) -> None:
    with h5py.File(DAS / "prodml_2.0.h5") as f:
        raw = f["Acquisition/Raw[0]/RawData"][...]
    samples = raw.astype(np.float32)
    check_against_reference("prodml_2.0", samples, scale)
    # Channel-major memory (Fortran order) is read in place; same numbers.
    a = cryocube.stft(samples, 200.0, scale=scale)
    b = cryocube.stft(np.asfortranarray(samples), 200.0, scale=scale)
    assert np.array_equal(a, b, equal_nan=True)


def test_stft_refuses_what_makes_no_spectrum() -> None:
    with pytest.raises(cryocube.InputError, match="Nyquist"):
        cryocube.stft(np.zeros((1000, 2), np.float32), 100.0, fmax=80)
    with pytest.raises(cryocube.InputError, match="2-D"):
        cryocube.stft(np.zeros(10, np.float32), 100.0)


def recipe(tmp_path: Path) -> Path:
    path = tmp_path / "cube.geojson"
    path.write_text(
        json.dumps(
            {
                "type": "Feature",
                "geometry": None,
                "properties": {
                    "spatial_ref": "EPSG:3031",
                    "spatial_bbox": [-3.0e6, -3.0e6, 3.0e6, 3.0e6],
                    "spatial_res": [50000, 50000],
                    "variables": [{"name": "gravity", "dims": ["y", "x"], "units": "mGal"}],
                    "sources": [
                        {
                            "name": "Gravity",
                            "variable_names": ["gravity"],
                            "download_url": (SHARED / "data/polar/geotiff/ant4d_fa.tif").as_uri(),
                            "processing": {"nodata": -32767, "resampling": "bilinear"},
                        }
                    ],
                },
            }
        )
    )
    return path


def test_build_patch_and_pyramid(tmp_path: Path) -> None:
    r = recipe(tmp_path)
    cube = cryocube.build(r, tmp_path / "py.zarr", sources=tmp_path / "sources", progress=False)
    res = command("build", str(r), "-o", str(tmp_path / "cli.zarr"), "--sources", str(tmp_path / "sources"))
    assert res.returncode == 0, res.stderr
    arrays_equal(Path(cube), tmp_path / "cli.zarr", "gravity")
    ds = cryocube.open_cube(cube)
    assert ds.gravity.dims == ("y", "x")
    assert int(ds.gravity.notnull().sum()) > 0

    p = {"metadata": {".zattrs": {"title": "patched from Python"}, "gravity/.zattrs": {"long_name": "free-air anomaly"}}}
    changes = cryocube.patch(cube, p, dry_run=True)
    assert any("title" in c for c in changes), changes
    assert cryocube.info(cube)["attrs"].get("title") != "patched from Python"
    cryocube.patch(cube, p)
    d = cryocube.info(cube)
    assert d["attrs"]["title"] == "patched from Python"
    g = d["variables"]["gravity"]["attrs"]
    assert g["long_name"] == "free-air anomaly" and g["grid_mapping"] == "crs"
    # A patch file works the same; a patch without `metadata` is refused with the command's words.
    bad = tmp_path / "bad.yaml"
    bad.write_text("title: x\n")
    with pytest.raises(cryocube.CryocubeError, match="no `metadata` mapping"):
        cryocube.patch(cube, bad)

    assert cryocube.pyramid(cube) == cube
    assert (Path(cube) / ".pyramid" / "pyramid.json").is_file()


def test_view_serves_the_cube_and_stops(tmp_path: Path) -> None:
    cube = cryocube.das(SYNTHETIC, tmp_path / "v.zarr", progress=False)
    ds = cryocube.open_cube(cube)
    with cryocube.view(cube) as v:
        assert v.url.startswith("http://127.0.0.1:")
        assert "<iframe" in v._repr_html_()
        meta = json.load(urllib.request.urlopen(v.url + "api/meta"))
        assert [x["name"] for x in meta["variables"]] == ["spectrogram"]
        for i, j, k in [(0, 0, 0), (3, 7, 25), (500, 31, 60)]:
            got = json.load(urllib.request.urlopen(f"{v.url}api/value?var=spectrogram&i={i}&j={j}&k={k}"))
            assert np.float32(got["value"]) == ds.spectrogram.values[i, j, k]
        url = v.url
    assert not v.running
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "api/meta", timeout=5)


def test_log_records_reach_python_logging(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="cryocube"):
        cryocube.das([SYNTHETIC / "SYNTHETIC_rhonelike_UTC_20200722_000000.000.h5"], tmp_path / "l.zarr", progress=False)
    assert any("wrote" in r.getMessage() and r.name == "cryocube" for r in caplog.records), caplog.text


def test_lexcube_widget_constructs(tmp_path: Path) -> None:
    import lexcube

    cube = cryocube.das(SYNTHETIC, tmp_path / "lx.zarr", progress=False)
    w = lexcube.Cube3DWidget(cryocube.open_cube(cube).spectrogram)
    assert w is not None


def test_open_cube_keeps_minus_inf_of_quantised_cubes(tmp_path: Path) -> None:
    # DASVader: its last 4 channels are all zero, -inf on the db scale.
    vader = DAS / "more" / "das_vader_1.jld2"
    opts = dict(df=100, dt=0.01, fmax="nyquist", progress=False)
    f = cryocube.open_cube(cryocube.das(vader, tmp_path / "f.zarr", **opts)).spectrogram.values
    q = cryocube.open_cube(cryocube.das(vader, tmp_path / "q.zarr", quantize=0.01, **opts)).spectrogram.values
    assert np.isneginf(f).sum() > 0
    np.testing.assert_array_equal(np.isneginf(q), np.isneginf(f))
    np.testing.assert_array_equal(np.isnan(q), np.isnan(f))
    finite = np.isfinite(f)
    assert np.max(np.abs(q[finite] - f[finite])) <= 0.005 + 1e-4
