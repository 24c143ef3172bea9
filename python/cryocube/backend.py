"""Raw DAS records as lazy xarray Datasets: ``cryocube.open_das`` and the ``cryocube`` engine
of ``xarray.open_dataset``.

Any record ``cryocube das`` reads (a file, a folder, a glob pattern, or a list of them, in any
of its formats) is one Dataset: ``data(time, distance)`` of samples in the files' own type
(see :func:`_dtype`) with the UTC ``time`` coordinate, ``distance`` and ``channel``, the
header facts as attributes. The files
follow the command's stream rules: ordered by their start times, gaps filled with NaN,
overlaps trimmed, the gaps and overlaps listed in the attributes. Opening reads the headers
only (in parallel, in Rust); indexing reads only the hyperslab it needs, through cryocube's
readers. With ``chunks=`` the data is a dask array of such reads.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, Union

import numpy as np
import xarray as xr
from xarray.backends import BackendArray, BackendEntrypoint
from xarray.core import indexing
from xarray.indexes import CoordinateTransform, CoordinateTransformIndex

from . import _native

PathLike = Union[str, "os.PathLike[str]"]


# The stored types float32 holds exactly: cryocube's readers give float32, and values of
# these types come back unchanged when cast to them.
_EXACT_IN_FLOAT32 = ("int8", "uint8", "int16", "uint16", "float32")


def _dtype(stored: str | None, has_gaps: bool) -> np.dtype:
    """The type ``data`` has: the files' own when float32 holds it exactly, and when a gap
    (NaN) does not need a float; float32 otherwise (float64 and 32-bit integer samples are
    rounded to float32, as ``cryocube das`` reads them; ``stored_dtype`` says so)."""
    if stored in _EXACT_IN_FLOAT32 and not (has_gaps and np.dtype(stored).kind in "iu"):
        return np.dtype(stored)
    return np.dtype("float32")


class _Samples(BackendArray):
    """The record's samples (time, channel), read on indexing."""

    def __init__(self, record: Any, dtype: np.dtype) -> None:
        self.record = record
        self.shape = (record.n_samples, record.n_channels)
        self.dtype = dtype

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.BASIC, self._read)

    def _read(self, key: tuple[Any, ...]) -> np.ndarray:
        # Each axis: an integer or a slice. Read the smallest range that covers it, then pick.
        ranges, picks = [], []
        for k, n in zip(key, self.shape):
            if isinstance(k, (int, np.integer)):
                i = int(k) + n if int(k) < 0 else int(k)
                ranges.append((i, i + 1))
                picks.append(0)
                continue
            idx = range(*k.indices(n))
            if len(idx) == 0:
                ranges.append((0, 0))
                picks.append(slice(0, 0))
                continue
            lo, hi = min(idx[0], idx[-1]), max(idx[0], idx[-1]) + 1
            ranges.append((lo, hi))
            stop = idx[-1] - lo + (1 if idx.step > 0 else -1)
            picks.append(slice(idx[0] - lo, None if stop < 0 else stop, idx.step))
        (t0, t1), (c0, c1) = ranges
        return self.record.read(t0, t1, c0, c1)[tuple(picks)].astype(self.dtype, copy=False)


class _SampleTimes(CoordinateTransform):
    """The time of record sample ``offset + i * step``: start + that / fs (ns, rounded), made
    only for the samples looked at: a month at 1 kHz is billions of samples, whose times would
    not fit in memory."""

    def __init__(self, start_ns: int, fs: float, n: int, offset: int = 0, step: int = 1) -> None:
        super().__init__(["time"], {"time": n}, dtype=np.dtype("datetime64[ns]"))
        self.start_ns, self.fs, self.offset, self.step = int(start_ns), float(fs), int(offset), int(step)

    def forward(self, dim_positions: dict[str, Any]) -> dict[str, Any]:
        i = self.offset + np.asarray(dim_positions["time"], dtype=np.float64) * self.step
        ns = np.int64(self.start_ns) + np.round(i * (1e9 / self.fs)).astype(np.int64)
        return {"time": ns.astype("datetime64[ns]")}

    def reverse(self, coord_labels: dict[str, Any]) -> dict[str, Any]:
        ns = np.asarray(coord_labels["time"]).astype("datetime64[ns]").astype(np.int64)
        return {"time": ((ns - self.start_ns) * (self.fs / 1e9) - self.offset) / self.step}

    def equals(self, other: Any, exclude: Any = None) -> bool:
        key = (self.start_ns, self.fs, self.offset, self.step, self.dim_size)
        return isinstance(other, _SampleTimes) and key == (
            other.start_ns, other.fs, other.offset, other.step, other.dim_size,
        )


class _TimeIndex(CoordinateTransformIndex):
    """The record's time index: selection by UTC times (exact, nearest, or a slice of them)
    and slicing by position stay lazy."""

    def _positions(self, label: Any) -> np.ndarray:
        t = np.asarray(label)
        if t.dtype.kind in "OUS":
            t = t.astype("datetime64[ns]")
        return np.asarray(self.transform.reverse({"time": t})["time"], dtype=np.float64)

    def sel(self, labels: dict[Any, Any], method: Any = None, tolerance: Any = None) -> indexing.IndexSelResult:
        label = labels["time"]
        n = self.transform.dim_size["time"]
        if isinstance(label, slice):
            a = 0 if label.start is None else int(np.ceil(self._positions(label.start) - 1e-6))
            b = n if label.stop is None else int(np.floor(self._positions(label.stop) + 1e-6)) + 1
            a, b = min(max(a, 0), n), min(max(b, 0), n)
            return indexing.IndexSelResult({"time": slice(a, max(a, b))})
        p = self._positions(label)
        i = np.round(p).astype(np.int64)
        if method != "nearest" and np.any(np.abs(p - i) > 1e-6):
            raise KeyError(f"{label!r} is no sample time (method='nearest' takes the closest)")
        i = np.clip(i, 0, n - 1) if method == "nearest" else i
        if np.any((i < 0) | (i >= n)):
            raise KeyError(f"{label!r} is outside the record")
        if isinstance(label, (xr.DataArray, xr.Variable)):
            return indexing.IndexSelResult({"time": xr.Variable(label.dims, i)})
        return indexing.IndexSelResult({"time": int(i) if np.ndim(i) == 0 else i})

    def isel(self, indexers: dict[Any, Any]) -> Any:
        k = indexers["time"]
        t = self.transform
        if isinstance(k, slice):
            a, b, step = k.indices(t.dim_size["time"])
            if step > 0:
                n = len(range(a, b, step))
                return _TimeIndex(_SampleTimes(t.start_ns, t.fs, n, t.offset + a * t.step, t.step * step))
        return None


def _inputs(paths: PathLike | Iterable[PathLike]) -> list[str]:
    if isinstance(paths, (str, os.PathLike)):
        return [os.fspath(paths)]
    return [os.fspath(p) for p in paths]


def open_record(
    paths: PathLike | Iterable[PathLike],
    *,
    format: str | None = None,
    spacing: float | None = None,
    first_distance: float | None = None,
) -> xr.Dataset:
    """The record at ``paths`` as a lazy Dataset (see :func:`cryocube.open_das`)."""
    rec = _native.Record(_inputs(paths), format, spacing, first_distance)
    n, fs = rec.n_samples, rec.sampling_rate
    times = xr.Coordinates.from_xindex(_TimeIndex(_SampleTimes(rec.start_us * 1000, fs, n)))
    gaps, overlaps, warnings = rec.discontinuities()
    files = rec.files()
    attrs: dict[str, Any] = {
        "sampling_rate": fs,
        "format": files[0][1],
        "input_files": [os.path.basename(p) for p, _ in files],
        "gaps": gaps,
        "overlaps": overlaps,
    }
    if warnings:
        attrs["warnings"] = list(warnings)
    for name, value in rec.facts():
        attrs[f"das_{name}"] = value
    stored = rec.sample_type
    data_attrs = {"units": rec.units, "long_name": "DAS samples"}
    if stored is not None:
        data_attrs["stored_dtype"] = stored
    data = xr.Variable(
        ("time", "distance"),
        indexing.LazilyIndexedArray(_Samples(rec, _dtype(stored, gaps != "[]"))),
        attrs=data_attrs,
        # The reader, for counting what indexing reads (``.bytes_read``).
        encoding={"cryocube_record": rec},
    )
    distance_units = rec.distance_units
    coords = {
        "distance": ("distance", np.asarray(rec.distances()), {"units": distance_units, "long_name": "distance along the fibre"}),
        "channel": ("distance", np.arange(rec.n_channels, dtype=np.int64), {"long_name": "channel index in the files"}),
    }
    return xr.Dataset({"data": data}, coords=times, attrs=attrs).assign_coords(coords)


class CryocubeBackendEntrypoint(BackendEntrypoint):
    """``xarray.open_dataset(path, engine="cryocube")``: a raw DAS record (any format
    ``cryocube das`` reads; a file, folder, glob pattern or list of them)."""

    description = "Raw DAS records (vendor HDF5, TDMS, PRODML, miniSEED, SEG-Y, ...) through cryocube's readers"
    url = "https://example.invalid/cryocube"
    open_dataset_parameters = ("filename_or_obj", "drop_variables", "format", "spacing", "first_distance")

    def open_dataset(  # type: ignore[override]
        self,
        filename_or_obj: Any,
        *,
        drop_variables: Iterable[str] | None = None,
        format: str | None = None,
        spacing: float | None = None,
        first_distance: float | None = None,
    ) -> xr.Dataset:
        ds = open_record(filename_or_obj, format=format, spacing=spacing, first_distance=first_distance)
        if drop_variables:
            ds = ds.drop_vars(list(drop_variables))
        return ds

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        # Never claimed without engine="cryocube": HDF5 files are many things.
        return False
