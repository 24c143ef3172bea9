"""Raw records as lazy xarray Datasets (`open_das`, engine="cryocube") against h5py reading
the same files by hand: values, times and distances equal; gaps as NaN; reads counted."""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr

import cryocube

SHARED = Path(os.environ["CRYOCUBE_SHARED"])
DAS = SHARED / "data" / "das"
SYNTHETIC = DAS / "synthetic"
FILES = sorted(SYNTHETIC.glob("*.h5"))


def acoustic(path: Path) -> np.ndarray:
    with h5py.File(path) as f:
        return f["Acoustic"][...]


def bytes_read(ds: xr.Dataset) -> int:
    return ds.data.encoding["cryocube_record"].bytes_read


def test_a_folder_is_one_record_equal_to_its_files() -> None:
    ds = cryocube.open_das(SYNTHETIC)
    assert bytes_read(ds) == 0, "opening reads headers only"
    by_hand = np.concatenate([acoustic(p) for p in FILES], axis=0)
    assert ds.data.shape == by_hand.shape == (90000, 32)
    # The files' own type (h5py's reading of them is float32 too).
    assert ds.data.dtype == by_hand.dtype == np.float32
    assert ds.data.attrs["stored_dtype"] == "float32"
    # Across the first file boundary, and a strided pick.
    np.testing.assert_array_equal(ds.data[29_990:30_010].values, by_hand[29_990:30_010])
    np.testing.assert_array_equal(ds.data[::997, 3::7].values, by_hand[::997, 3::7])
    np.testing.assert_array_equal(ds.data[-5:, -1].values, by_hand[-5:, -1])
    # Times: 1 kHz from 2020-07-22T00:00:00 UTC (the manifest's t0); 4 m channels from 0 m.
    assert ds.time.values[0] == np.datetime64("2020-07-22T00:00:00", "ns")
    assert ds.time.values[30_000] == np.datetime64("2020-07-22T00:00:30", "ns")
    assert ds.time.values[-1] == np.datetime64("2020-07-22T00:01:29.999", "ns")
    # The time index is computed for what is looked at (a month at 1 kHz would not fit), and
    # selects by UTC time like a pandas one.
    full = ds.time.values
    np.testing.assert_array_equal(
        full, np.datetime64("2020-07-22T00:00:00", "ns") + np.arange(90000) * np.timedelta64(1, "ms")
    )
    part = ds.sel(time=slice("2020-07-22T00:00:10", "2020-07-22T00:00:20"))
    assert part.sizes["time"] == 10_001
    np.testing.assert_array_equal(part.data.values, by_hand[10_000:20_001])
    np.testing.assert_array_equal(ds.isel(time=slice(100, 50_000, 7)).time.values, full[100:50_000:7])
    near = ds.sel(time=np.datetime64("2020-07-22T00:00:10.0004"), method="nearest")
    assert near.time.values == np.datetime64("2020-07-22T00:00:10", "ns")
    with pytest.raises(KeyError):
        ds.sel(time="2020-07-22T00:00:10.0004")
    np.testing.assert_array_equal(ds.distance.values, 4.0 * np.arange(32))
    np.testing.assert_array_equal(ds.channel.values, np.arange(32))
    assert ds.distance.attrs["units"] == "m"
    assert ds.attrs["sampling_rate"] == 1000.0
    assert json.loads(ds.attrs["gaps"]) == []
    assert ds.attrs["input_files"] == [p.name for p in FILES]
    # The engine gives the same Dataset.
    ds2 = xr.open_dataset(SYNTHETIC, engine="cryocube")
    xr.testing.assert_identical(ds.isel(time=slice(0, 2000)).load(), ds2.isel(time=slice(0, 2000)).load())


def test_one_channel_reads_only_its_hyperslab() -> None:
    ds = cryocube.open_das(FILES)
    trace = ds.data.isel(distance=5, time=slice(0, 10_000)).values
    np.testing.assert_array_equal(trace, acoustic(FILES[0])[:10_000, 5])
    assert bytes_read(ds) == 10_000 * 4
    ds.data.sel(distance=20.0).isel(time=slice(40_000, 41_000)).values
    assert bytes_read(ds) == 11_000 * 4


def test_a_gap_is_nan_and_listed() -> None:
    ds = cryocube.open_das([FILES[0], FILES[2]])
    assert ds.data.shape == (90000, 32)
    gaps = json.loads(ds.attrs["gaps"])
    assert len(gaps) == 1, gaps
    middle = ds.data[30_000:60_000, :4].values
    assert np.isnan(middle).all()
    np.testing.assert_array_equal(ds.data[60_000:60_100].values, acoustic(FILES[2])[:100])
    assert ds.time.values[60_000] == np.datetime64("2020-07-22T00:01:00", "ns")


def shifted_copy(src: Path, dst: Path, seconds: float) -> None:
    """A copy of a Silixa file whose clock starts `seconds` later."""
    import datetime as dt

    dst.write_bytes(src.read_bytes())
    with h5py.File(dst, "r+") as f:
        a = f["Acoustic"].attrs
        gps = dt.datetime.strptime(a["GPSTimeStamp"].split(" (")[0], "%d/%m/%Y %H:%M:%S.%f")
        gps += dt.timedelta(seconds=seconds)
        a["GPSTimeStamp"] = gps.strftime("%d/%m/%Y %H:%M:%S.%f")[:-3] + " (UTC)"
        iso = dt.datetime.fromisoformat(a["ISO8601 Timestamp"]) + dt.timedelta(seconds=seconds)
        a["ISO8601 Timestamp"] = iso.isoformat(timespec="milliseconds")


def test_int16_samples_keep_their_type_unless_a_gap_needs_nan(tmp_path: Path) -> None:
    src = DAS / "silixa_h5_1.hdf5"  # 100 x 3840 int16 at 500 Hz: 0.2 s
    raw = acoustic(src)
    assert raw.dtype == np.int16
    one = cryocube.open_das(src)
    assert one.data.dtype == np.int16
    np.testing.assert_array_equal(one.data[:, ::97].values, raw[:, ::97])
    # Two files 0.2 s apart: one record, still int16.
    a, b = tmp_path / "a.hdf5", tmp_path / "b.hdf5"
    shifted_copy(src, a, 0.0)
    shifted_copy(src, b, 0.2)
    ds = cryocube.open_das([a, b])
    assert json.loads(ds.attrs["gaps"]) == []
    assert ds.data.dtype == np.int16
    np.testing.assert_array_equal(ds.data[95:105, 7].values, np.concatenate([raw[95:, 7], raw[:5, 7]]))
    # 1 s apart: 0.8 s of NaN between them, so float32 (which holds every int16 exactly).
    b.unlink()
    shifted_copy(src, b, 1.0)
    ds = cryocube.open_das([a, b])
    assert len(json.loads(ds.attrs["gaps"])) == 1
    assert ds.data.dtype == np.float32
    assert ds.data.attrs["stored_dtype"] == "int16"
    assert ds.data.shape == (600, 3840)
    assert np.isnan(ds.data[100:500, 7].values).all()
    np.testing.assert_array_equal(ds.data[500:, 7].values, raw[:, 7].astype(np.float32))


def test_prodml_with_dask_chunks() -> None:
    with h5py.File(DAS / "prodml_2.0.h5") as f:
        raw = f["Acquisition/Raw[0]/RawData"][...]
    ds = cryocube.open_das(DAS / "prodml_2.0.h5", chunks={"time": 500})
    assert ds.data.chunks is not None
    assert ds.data.shape == raw.shape
    # int16 counts come back as int16, unchanged (the manifest says int16 too).
    assert raw.dtype == np.int16
    assert ds.data.dtype == np.int16
    assert ds.data.attrs["stored_dtype"] == "int16"
    np.testing.assert_array_equal(ds.data.values, raw)
    assert float(ds.data.astype(np.float64).sum().compute()) == float(raw.astype(np.float64).sum())
    # 200 Hz; distances from the header (StartLocusIndex -260 at 1.0209519863 m).
    assert ds.attrs["sampling_rate"] == 200.0
    assert ds.distance.values[0] == pytest.approx(-260 * 1.0209519863, abs=1e-6)


def test_bad_input_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(cryocube.InputError, match="nowhere"):
        cryocube.open_das(tmp_path / "nowhere.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not a DAS file at all")
    with pytest.raises(cryocube.InputError, match="junk.h5"):
        cryocube.open_das(junk)
