"""Raw cryosphere observations to analysis-ready data cubes, from Python.

The functions here are the ``cryocube`` commands: the same options (as keywords), the same
defaults and checks, the same error messages, the same cubes. The work runs in Rust with the
interpreter released; progress goes to a callback, a ``tqdm`` bar when tqdm is installed, or
``logging`` (logger ``"cryocube"``, where the commands' messages go too).

Examples
--------
>>> import cryocube
>>> cryocube.das("raw/", "cube.zarr", df=2, fmax=250)          # doctest: +SKIP
'cube.zarr'
>>> ds = cryocube.open_cube("cube.zarr")                       # doctest: +SKIP
>>> v = cryocube.view("cube.zarr")                             # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Union

# As the command does: read HDF5 without file locks unless told otherwise (locks fail on many
# network file systems). Set before the extension, and so HDF5, is loaded.
os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")

from . import _native  # noqa: E402
from ._native import CryocubeError, InputError, StoreError, __version__  # noqa: E402

__all__ = [
    "CryocubeError",
    "InputError",
    "StoreError",
    "Viewer",
    "__version__",
    "build",
    "das",
    "info",
    "open_cube",
    "open_das",
    "patch",
    "pyramid",
    "stft",
    "view",
]

PathLike = Union[str, "os.PathLike[str]"]
Progress = Union[None, bool, Callable[[int, int], Any]]

_log = logging.getLogger("cryocube")


def _progress(progress: Progress, what: str) -> tuple[Callable[[int, int], Any] | None, Callable[[], None]]:
    """The callback the Rust side calls, and what closes it when the work ends."""
    if progress is False:
        return None, lambda: None
    if callable(progress):
        return progress, lambda: None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        # Without tqdm: a log line at every tenth of the work.
        state = {"tenth": -1}

        def to_log(done: int, total: int) -> None:
            if total <= 0:
                return
            tenth = 10 * done // total
            if tenth > state["tenth"]:
                state["tenth"] = tenth
                _log.info("%s: %d/%d (%d %%)", what, done, total, 100 * done // total)

        return to_log, lambda: None
    bar = tqdm(desc=what, unit=what.split()[-1], leave=False)

    def to_bar(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    return to_bar, bar.close


def _run(args: list[str], progress: Progress, what: str) -> None:
    callback, close = _progress(progress, what)
    try:
        _native.run(["cryocube", *args], callback)
    finally:
        close()


def _paths(inputs: PathLike | Iterable[PathLike]) -> list[str]:
    if isinstance(inputs, (str, os.PathLike)):
        return [os.fspath(inputs)]
    return [os.fspath(p) for p in inputs]


def _flag(name: str, value: Any) -> list[str]:
    """A keyword as the command line's option: True -> ``--name``, a value -> ``--name=v``
    (so that negative numbers are values), pairs as the command writes them."""
    option = "--" + name.replace("_", "-")
    if value is None or value is False:
        return []
    if value is True:
        return [option]
    return [f"{option}={value}"]


def das(
    inputs: PathLike | Iterable[PathLike],
    output: PathLike,
    *,
    df: float | None = None,
    dt: float | None = None,
    fmin: float | None = None,
    fmax: float | str | None = None,
    scale: str | None = None,
    window: str | None = None,
    distance: tuple[float, float] | None = None,
    channels: tuple[int, int] | None = None,
    dtype: str | None = None,
    quantize: float | None = None,
    average: float | None = None,
    zarr_format: int | None = None,
    shard: bool = False,
    chunks: tuple[int, int] | None = None,
    format: str | None = None,
    spacing: float | None = None,
    first_distance: float | None = None,
    overwrite: bool = False,
    append: bool = False,
    wait: bool = False,
    max_gap: float | None = None,
    allow_gap: bool = False,
    allow_zero: bool = False,
    record_paths: bool = False,
    pyramid: bool = False,
    progress: Progress = None,
) -> str:
    """DAS records to a spectrogram cube: ``cryocube das``.

    Parameters
    ----------
    inputs : path or list of paths
        Files, folders or glob patterns, in any order (ordered by their start times).
    output : path
        The cube: a folder, or ``s3://bucket/prefix.zarr``.
    df, dt : float, optional
        Frequency resolution (Hz; the window is 1/df s) and hop (s). Default 1 and 0.1.
    fmin, fmax : float, optional
        Frequencies kept, Hz; ``fmax="nyquist"`` for all. Default 0 and 100.
    scale : {"db", "cryocube"}, optional
        ``db`` (scipy.signal.spectrogram conventions, the default) or the seed's numerics.
    window : str, optional
        ``tukey:0.25`` (default), ``hann``, ``hamming``, ``blackman``, ``boxcar``.
    distance, channels : (a, b), optional
        Metres ``a..b`` (inclusive) or channel indices ``a..b`` (end exclusive).
    dtype : {"f32", "f16"}, optional
    quantize : float, optional
        Store CF-packed int16 codes, each within ``quantize / 2`` of the value.
    average : float, optional
        One Welch spectrum per interval of this many seconds.
    zarr_format : {2, 3}, optional
    shard : bool
        Sharded Zarr v3.
    chunks : (int, int), optional
        Windows and channels per chunk.
    format : str, optional
        The input format, instead of detecting it.
    spacing, first_distance : float, optional
        Channel spacing and first distance (m) for formats without them.
    overwrite, append, wait : bool
        Replace a cube; add new inputs to it; wait for another writer.
    max_gap : float, optional
        The longest gap between files filled with NaN (s; default a day).
    allow_gap, allow_zero, record_paths : bool
        Any gap; a record of zeros; the inputs' absolute paths in the cube.
    pyramid : bool
        Build the viewer's pyramid afterwards.
    progress : callable, bool or None
        ``progress(done, total)``, or ``False`` for none; by default a tqdm bar when tqdm is
        installed, else log lines.

    Returns
    -------
    str
        The cube's path.

    Raises
    ------
    InputError
        A file or option is wrong (the message names it, as the command's does).
    StoreError
        The output could not be written.
    """
    args = ["das", *_paths(inputs), "-o", os.fspath(output)]
    for name, value in [
        ("df", df), ("dt", dt), ("fmin", fmin), ("fmax", fmax), ("scale", scale), ("window", window),
        ("dtype", dtype), ("quantize", quantize), ("average", average), ("zarr_format", zarr_format),
        ("format", format), ("spacing", spacing), ("first_distance", first_distance), ("max_gap", max_gap),
        ("shard", shard), ("overwrite", overwrite), ("append", append), ("wait", wait),
        ("allow_gap", allow_gap), ("allow_zero", allow_zero), ("record_paths", record_paths), ("pyramid", pyramid),
    ]:
        args += _flag(name, value)
    if distance is not None:
        args += _flag("distance", f"{distance[0]}:{distance[1]}")
    if channels is not None:
        args += _flag("channels", f"{channels[0]}:{channels[1]}")
    if chunks is not None:
        args += _flag("chunks", f"{chunks[0]},{chunks[1]}")
    _run(args, progress, "das windows")
    return os.fspath(output)


def build(
    recipe: PathLike,
    output: PathLike,
    *,
    sources: PathLike | None = None,
    res: float | None = None,
    chunk: int | None = None,
    overwrite: bool = False,
    wait: bool = False,
    pyramid: bool = False,
    progress: Progress = None,
) -> str:
    """A polar cube from a ``cube.geojson`` recipe: ``cryocube build``.

    Parameters
    ----------
    recipe : path
        The recipe.
    output : path
        The cube: a folder, or ``s3://bucket/prefix.zarr``.
    sources : path, optional
        Where the sources are, or are fetched to (default ``cryocube-sources``).
    res : float, optional
        Cell size in metres instead of the recipe's.
    chunk : int, optional
        Cells per chunk side.
    overwrite, wait, pyramid : bool
        Replace a cube; wait for another writer; build the viewer's pyramid afterwards.
    progress : callable, bool or None
        As for :func:`das`.

    Returns
    -------
    str
        The cube's path.
    """
    args = ["build", os.fspath(recipe), "-o", os.fspath(output)]
    for name, value in [
        ("sources", None if sources is None else os.fspath(sources)), ("res", res), ("chunk", chunk),
        ("overwrite", overwrite), ("wait", wait), ("pyramid", pyramid),
    ]:
        args += _flag(name, value)
    _run(args, progress, "build chunks")
    return os.fspath(output)


def pyramid(store: PathLike, *, wait: bool = False, progress: Progress = None) -> str:
    """The viewer's multi-resolution levels inside a cube: ``cryocube pyramid``.

    Returns
    -------
    str
        The cube's path.
    """
    _run(["pyramid", os.fspath(store), *_flag("wait", wait)], progress, "pyramid chunks")
    return os.fspath(store)


def patch(
    store: PathLike,
    patch: Mapping[str, Any] | PathLike,
    *,
    dry_run: bool = False,
    force: bool = False,
) -> list[str]:
    """Changes a cube's attributes as xcube's ``patch`` does: ``cryocube patch``.

    Parameters
    ----------
    store : path
        The cube.
    patch : dict or path
        ``{"metadata": {".zattrs": {...}, "VAR/.zattrs": {...}}}``, or a YAML/JSON file of it.
    dry_run : bool
        Only list the changes.
    force : bool
        Allow deleting ``grid_mapping``, ``coordinates`` and ``_ARRAY_DIMENSIONS``.

    Returns
    -------
    list of str
        The changes, one line each, as ``cryocube patch --dry-run`` prints them.
    """
    if isinstance(patch, Mapping):
        text, name = json.dumps(patch), "<patch>"
    else:
        with open(patch, encoding="utf-8") as f:
            text, name = f.read(), os.fspath(patch)
    changes, warnings = _native.patch(os.fspath(store), text, name, dry_run, force)
    for w in warnings:
        _log.warning("%s: %s", name, w)
    return changes


def info(store: PathLike) -> dict[str, Any]:
    """A cube's description: ``cryocube info`` as data.

    Returns
    -------
    dict
        ``store``, ``complete``, ``attrs``, ``dims`` (name -> length), ``variables`` (name ->
        ``dims``, ``shape``, ``chunks``, ``dtype``, ``attrs``) and ``text`` (what
        ``cryocube info`` prints).
    """
    return json.loads(_native.info_json(os.fspath(store)))


def _storage_options(store: str) -> dict[str, Any] | None:
    """s3fs options from the AWS environment the commands use (endpoint, region, style)."""
    if not store.startswith("s3://"):
        return None
    client: dict[str, Any] = {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        client["endpoint_url"] = endpoint
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        client["region_name"] = region
    options: dict[str, Any] = {"client_kwargs": client} if client else {}
    if os.environ.get("AWS_PROFILE"):
        options["profile"] = os.environ["AWS_PROFILE"]
    return options


def open_cube(store: PathLike, **kwargs: Any) -> "xarray.Dataset":  # noqa: F821
    """A cube as a lazy xarray Dataset (``xarray.open_zarr`` with the right options).

    Parameters
    ----------
    store : path
        A folder or ``s3://bucket/prefix.zarr`` (read with s3fs, configured from the AWS
        environment as the commands are).
    **kwargs
        Passed to ``xarray.open_zarr`` (e.g. ``chunks={}``).

    Returns
    -------
    xarray.Dataset
        Lazy (dask) arrays; CF-packed variables unpacked, with the ``-inf`` of zero power
        kept as ``-inf`` in quantised cubes.
    """
    import xarray as xr

    path = os.fspath(store)
    description = info(path)
    if not description["complete"]:
        raise StoreError(f"{path}: the cube is unfinished (a run was interrupted); finish it first")
    kwargs.setdefault("consolidated", None)
    options = _storage_options(path)
    if options is not None:
        kwargs.setdefault("storage_options", options)
    ds = xr.open_zarr(path, **kwargs)
    # Quantised cubes (`das --quantize`): xarray unpacks the int16 codes, but the code that
    # stands for -inf (zero power) would come out as a finite number: make it -inf again,
    # lazily, from the raw codes.
    packed = [v for v in ds.data_vars if "cryocube_neg_inf_code" in ds[v].attrs]
    if packed:
        import numpy as np

        raw = xr.open_zarr(path, **{**kwargs, "mask_and_scale": False})
        for v in packed:
            code = ds[v].attrs["cryocube_neg_inf_code"]
            ds[v] = ds[v].where(raw[v] != code, -np.inf)
    return ds


def open_das(
    paths: PathLike | Iterable[PathLike],
    *,
    chunks: Any = None,
    format: str | None = None,
    spacing: float | None = None,
    first_distance: float | None = None,
) -> "xarray.Dataset":  # noqa: F821
    """A raw DAS record as one lazy Dataset, read through cryocube's readers.

    The same as ``xarray.open_dataset(paths, engine="cryocube", chunks=chunks)``.

    Parameters
    ----------
    paths : path or list of paths
        Files, folders or glob patterns in any format ``cryocube das`` reads.
    chunks : optional
        As for ``xarray.open_dataset`` (e.g. ``{"time": 60000}``): a dask array of reads.
    format : str, optional
        The input format, instead of detecting it.
    spacing, first_distance : float, optional
        Channel spacing and first distance (m) for formats without them.

    Returns
    -------
    xarray.Dataset
        ``data(time, distance)`` samples with the file's ``units`` and its own dtype
        (``stored_dtype``: int16, uint16, int8, uint8 or float32 as stored; float32 for
        other types and for integers when the record has a gap, which is NaN); the UTC
        ``time``; ``distance`` and ``channel``; ``sampling_rate``, ``format``,
        ``input_files``, ``gaps``/``overlaps`` (JSON) and the header facts (``das_*``) as
        attributes. Opening reads the headers only; indexing reads only what it selects.
    """
    import xarray as xr

    if chunks is None:
        from .backend import open_record

        return open_record(paths, format=format, spacing=spacing, first_distance=first_distance)
    return xr.open_dataset(
        paths, engine="cryocube", chunks=chunks, format=format, spacing=spacing, first_distance=first_distance
    )


def stft(
    array: Any,
    fs: float,
    *,
    df: float = 1.0,
    dt: float = 0.1,
    fmin: float = 0.0,
    fmax: float | str | None = 100.0,
    scale: str = "db",
    window: str = "tukey:0.25",
) -> "numpy.ndarray":  # noqa: F821
    """Spectra of an in-memory record, the numbers ``cryocube das`` writes.

    Parameters
    ----------
    array : array_like, shape (time, channel)
        Samples; float32 arrays are used as they are, others converted. A channel whose
        samples are contiguous (Fortran order) is read in place.
    fs : float
        Sampling rate, Hz.
    df, dt, fmin, fmax, scale, window
        As for :func:`das`; ``fmax=None`` or ``"nyquist"`` for all frequencies.

    Returns
    -------
    numpy.ndarray, shape (window, channel, frequency), float32
        Window ``w`` starts at sample ``w * round(dt * fs)``; frequency ``k`` is
        ``(first + k) * fs / round(fs / df)`` Hz. NaN windows where the samples have NaN.
    """
    import numpy as np

    samples = np.asarray(array)
    if samples.ndim != 2:
        raise InputError(f"stft: samples must be 2-D (time, channel), not {samples.ndim}-D")
    if samples.dtype != np.float32:
        samples = samples.astype(np.float32)
    top = None if fmax is None or fmax == "nyquist" else float(fmax)
    return _native.stft(samples, float(fs), float(df), float(dt), float(fmin), top, scale, window)


class Viewer:
    """``cryocube view`` serving a cube from this process (see :func:`view`).

    Attributes
    ----------
    url : str
        The page's address.
    """

    def __init__(self, server: Any) -> None:
        self._server = server
        self.url: str = server.url

    def stop(self) -> None:
        """Stops serving and closes the port."""
        self._server.stop()

    @property
    def running(self) -> bool:
        """Whether it still serves."""
        return bool(self._server.running)

    def __enter__(self) -> "Viewer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<cryocube.Viewer {self.url}{'' if self.running else ' (stopped)'}>"

    def _repr_html_(self) -> str:
        # In Jupyter: the page inline.
        return f'<iframe src="{self.url}" width="100%" height="620" style="border:0"></iframe>'


def view(
    store: PathLike,
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    cache_mb: int = 256,
    overlays: Sequence[PathLike] = (),
    sources: PathLike | None = None,
) -> Viewer:
    """Serves a cube to the browser from a background thread: ``cryocube view``.

    Parameters
    ----------
    store : path
        A folder or ``s3://bucket/prefix.zarr``.
    port : int, optional
        Any free port by default.
    host : str
        The address to listen on (loopback unless you mean to share the cube).
    cache_mb : int
        Memory for cached faces and chunks.
    overlays : list of paths
        Vector files drawn over the maps (shapefile, zipped shapefile, GeoJSON, GeoPackage).
    sources : path, optional
        Where a recipe cube's sources are: its vector sources become overlays.

    Returns
    -------
    Viewer
        Shown inline in Jupyter; ``.url``, ``.stop()``; a context manager.
    """
    server = _native.Server(
        os.fspath(store),
        host,
        port or 0,
        cache_mb,
        [os.fspath(p) for p in overlays],
        None if sources is None else os.fspath(sources),
    )
    return Viewer(server)
