"""Raw DAS records as lazy xarray Datasets: ``cryocube.open_das`` and the ``cryocube`` engine
of ``xarray.open_dataset``.

Any record ``cryocube das`` reads (a file, a folder, a glob pattern, or a list of them, in any
of its formats) is one Dataset: ``data(time, distance)`` of float32 samples with the UTC
``time`` coordinate, ``distance`` and ``channel``, the header facts as attributes. The files
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

from . import _native

PathLike = Union[str, "os.PathLike[str]"]


class _Samples(BackendArray):
    """The record's samples (time, channel), read on indexing."""

    def __init__(self, record: Any) -> None:
        self.record = record
        self.shape = (record.n_samples, record.n_channels)
        self.dtype = np.dtype("float32")

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
        return self.record.read(t0, t1, c0, c1)[tuple(picks)]


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
    # Sample i is at start + i / fs: in nanoseconds, rounded, as the cube's times are in µs.
    time = np.datetime64(rec.start_us, "us").astype("datetime64[ns]") + np.round(
        np.arange(n, dtype=np.float64) * (1e9 / fs)
    ).astype("timedelta64[ns]")
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
    data = xr.Variable(
        ("time", "distance"),
        indexing.LazilyIndexedArray(_Samples(rec)),
        attrs={"units": rec.units, "long_name": "DAS samples"},
        # The reader, for counting what indexing reads (``.bytes_read``).
        encoding={"cryocube_record": rec},
    )
    distance_units = rec.distance_units
    coords = {
        "time": ("time", time),
        "distance": ("distance", np.asarray(rec.distances()), {"units": distance_units, "long_name": "distance along the fibre"}),
        "channel": ("distance", np.arange(rec.n_channels, dtype=np.int64), {"long_name": "channel index in the files"}),
    }
    return xr.Dataset({"data": data}, coords=coords, attrs=attrs)


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
