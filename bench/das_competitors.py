"""Times `cryocube das` against the Python ways of making the same cube (see bench/das.sh).

Run by bench/das.sh inside the venv it makes. Each contender runs as its own process tree;
the harness samples the tree's total resident memory every 20 ms (peak RSS) and measures wall
time. The contenders:

- cryocube (default `--scale db`) and cryocube `--scale cryocube` (the seed's numerics);
- seed-loop: the CryoCube seed's way: one process per file (multiprocessing, 2 workers), every
  file read whole together with the next one, a Python loop per channel and per window
  (symmetric Tukey(0.25), rfft, 10 ln|X|^2, DC bin 0), float64 Zarr with one file's windows per
  chunk;
- scipy-vectorised: scipy.signal.spectrogram over all channels of a file at once (PSD in dB,
  periodic Tukey), float32 Zarr, one process per file (2 workers).

Before the table, the cubes are compared (cryocube --scale cryocube vs seed-loop, cryocube db vs
scipy) on bins within 60 dB of their window's peak, so a fast wrong answer cannot pass unseen.

A second table (`--only size`, or part of a full run) gives the cube's size as a fraction of
the raw float32 record for float32, float16 and `--quantize` 0.01, 0.05 and 0.1 dB, with the
time each takes; each quantised cube is checked to be within half a step of the float32 one.
"""

import argparse
import glob
import os
import sys
from multiprocessing import Pool

import numpy as np

from measure import run

FS, WIN, HOP, NB = 1000, 1000, 100, 101  # the seed's parameters: df 1 Hz, dt 0.1 s, 0-100 Hz


def file_windows(i, lens):
    """Global window indices whose start lies in file i (windows span file boundaries)."""
    total = sum(lens)
    n_all = (total - WIN) // HOP + 1
    s0 = sum(lens[:i])
    first = -(-s0 // HOP)
    last = min((s0 + lens[i] - 1) // HOP, n_all - 1)
    return first, last + 1, s0


def read_with_next(files, i, lens, keep_next):
    import h5py

    with h5py.File(files[i], "r") as f:
        a = f["Acoustic"][:]
    if i + 1 < len(files):
        with h5py.File(files[i + 1], "r") as f:
            b = f["Acoustic"][:] if keep_next is None else f["Acoustic"][:keep_next]
        a = np.concatenate([a, b[:WIN]])
    return a


def seed_file(job):
    """The seed's per-file worker: a Python loop over channels and windows."""
    import scipy.signal
    import zarr

    files, lens, i, out = job
    w0, w1, s0 = file_windows(i, lens)
    data = read_with_next(files, i, lens, None)  # the seed reads the next file whole
    taper = scipy.signal.windows.tukey(WIN, 0.25, sym=True)
    res = np.zeros((w1 - w0, data.shape[1], NB))
    for ch in range(data.shape[1]):
        x = data[:, ch].astype(np.float64)
        for w in range(w0, w1):
            a = w * HOP - s0
            spec = np.fft.rfft(x[a : a + WIN] * taper)
            v = 10 * np.log(np.abs(spec[:NB]) ** 2)
            v[0] = 0
            res[w - w0, ch] = v
    zarr.open(out, mode="r+")[w0:w1] = res


def scipy_file(job):
    """Vectorised: scipy.signal.spectrogram over every channel of one file at once."""
    import scipy.signal
    import zarr

    files, lens, i, out = job
    w0, w1, s0 = file_windows(i, lens)
    data = read_with_next(files, i, lens, WIN)
    a = w0 * HOP - s0
    seg = data[a : (w1 - 1) * HOP - s0 + WIN].T
    _, _, sxx = scipy.signal.spectrogram(
        seg, fs=FS, window=("tukey", 0.25), nperseg=WIN, noverlap=WIN - HOP,
        detrend="constant", scaling="density", mode="psd", axis=-1,
    )  # (channel, frequency, window)
    with np.errstate(divide="ignore"):
        res = (10 * np.log10(sxx[:, :NB, :])).transpose(2, 0, 1).astype(np.float32)
    zarr.open(out, mode="r+")[w0:w1] = res


def python_contender(kind, raw, out):
    import h5py
    import zarr

    files = sorted(glob.glob(os.path.join(raw, "*.h5")))
    lens, nch = [], None
    for f in files:
        with h5py.File(f, "r") as h:
            lens.append(h["Acoustic"].shape[0])
            nch = h["Acoustic"].shape[1]
    n_all = (sum(lens) - WIN) // HOP + 1
    dtype, worker = (np.float64, seed_file) if kind == "seed-loop" else (np.float32, scipy_file)
    zarr.open(out, mode="w", shape=(n_all, nch, NB), chunks=(lens[0] // HOP, nch, NB), dtype=dtype)
    with Pool(2) as pool:
        pool.map(worker, [(files, lens, i, out) for i in range(len(files))], chunksize=1)


def open_cube(path, name):
    import zarr

    g = zarr.open(path, mode="r")
    return g[name] if name else g


def compare(a, b, label, tol, span):
    """Worst |a - b| over bins within `span` (60 dB in the cube's scale) of their window's peak,
    on every 7th channel."""
    worst = 0.0
    for w0 in range(0, a.shape[0], 256):
        x = np.asarray(a[w0 : w0 + 256, ::7, :], dtype=np.float64)
        y = np.asarray(b[w0 : w0 + 256, ::7, :], dtype=np.float64)
        x, y = x[..., 1:], y[..., 1:]  # DC: set to 0 by the seed, tiny after mean removal
        peak = np.nanmax(x, axis=-1, keepdims=True)
        mask = x >= peak - span
        worst = max(worst, float(np.nanmax(np.abs(x - y)[mask])))
    ok = worst <= tol
    print(f"check {label}: worst difference {worst:.2e} (tolerance {tol}) {'ok' if ok else 'FAILED'}")
    return ok


def store_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def within_half_step(float_cube, quantised, step):
    """Worst |quantised - float| over every 7th channel (finite cells), -inf and NaN where
    the float cube has them; must be at most step / 2."""
    worst = 0.0
    scale, offset = float(quantised.attrs["scale_factor"]), float(quantised.attrs["add_offset"])
    neg_inf, fill = int(quantised.attrs["cryocube_neg_inf_code"]), quantised.fill_value
    for w0 in range(0, float_cube.shape[0], 256):
        x = np.asarray(float_cube[w0 : w0 + 256, ::7, :], dtype=np.float64)
        codes = np.asarray(quantised[w0 : w0 + 256, ::7, :])
        y = codes * scale + offset
        y[codes == neg_inf] = -np.inf
        y[codes == fill] = np.nan
        assert (np.isnan(x) == np.isnan(y)).all() and (np.isneginf(x) == np.isneginf(y)).all()
        fin = np.isfinite(x)
        worst = max(worst, float(np.abs(x - y)[fin].max()))
    ok = worst <= step / 2 + 1e-5
    print(f"check --quantize {step}: worst difference {worst:.4f} (bound {step / 2}) {'ok' if ok else 'FAILED'}")
    return ok


def sizes(a, files, n, nch, out):
    """The size table: each variant run afresh, timed, its store measured."""
    raw = len(files) * n * nch * 4
    variants = [
        ("float32 (default)", "f32", []),
        ("float16 (`--dtype f16`)", "f16", ["--dtype", "f16"]),
        ("`--quantize 0.01`", "q0.01", ["--quantize", "0.01"]),
        ("`--quantize 0.05`", "q0.05", ["--quantize", "0.05"]),
        ("`--quantize 0.1`", "q0.1", ["--quantize", "0.1"]),
    ]
    rows, ok = [], True
    for label, name, extra in variants:
        wall, peak = run([a.bin, "das", a.raw, "-o", out(f"size-{name}"), "--overwrite", "-q"] + extra)
        size = store_bytes(out(f"size-{name}"))
        rows.append((label, wall, size))
        print(f"  {label}: {wall:.1f} s, {size / 2**20:.0f} MiB = {size / raw:.3f} of the raw record", flush=True)
    import zarr

    f32 = zarr.open(out("size-f32"), mode="r")["spectrogram"]
    for _, name, extra in variants[2:]:
        ok &= within_half_step(f32, zarr.open(out(f"size-{name}"), mode="r")["spectrogram"], float(extra[1]))
    base = rows[0][1]
    lines = [
        f"Cube size against the raw float32 record ({raw / 2**30:.2f} GiB), same record and parameters:",
        "",
        "| spectrogram stored as | total [s] | time vs float32 | cube [MiB] | fraction of raw |",
        "|---|---|---|---|---|",
    ]
    for label, wall, size in rows:
        lines.append(f"| {label} | {wall:.1f} | {wall / base:.2f}x | {size / 2**20:.0f} | {size / raw:.3f} |")
    return "\n".join(lines), ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin")
    ap.add_argument("--raw")
    ap.add_argument("--work")
    ap.add_argument("--only", default="")
    ap.add_argument("--contender", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.contender:
        python_contender(a.contender, a.raw, a.out)
        return

    files = sorted(glob.glob(os.path.join(a.raw, "*.h5")))
    import h5py

    with h5py.File(files[0], "r") as h:
        n, nch = h["Acoustic"].shape
    seconds = len(files) * n / FS
    me = [sys.executable, os.path.abspath(__file__), "--raw", a.raw]
    out = lambda name: os.path.join(a.work, f"{name}.zarr")
    contenders = [
        ("cryocube", [a.bin, "das", a.raw, "-o", out("cryocube"), "--overwrite", "-q"]),
        ("cryocube --scale cryocube",
         [a.bin, "das", a.raw, "-o", out("cryocube-seed"), "--overwrite", "-q", "--scale", "cryocube"]),
        ("seed-loop (Python)", me + ["--contender", "seed-loop", "--out", out("seed-loop")]),
        ("scipy-vectorised (Python)", me + ["--contender", "scipy", "--out", out("scipy")]),
    ]
    if a.only == "size":
        table, ok = sizes(a, files, n, nch, out)
        print()
        print(table)
        with open(os.path.join(a.work, "das-sizes.md"), "w") as f:
            f.write(table + "\n")
        if not ok:
            sys.exit("a quantised cube is off by more than half a step")
        return
    if a.only:
        contenders = [c for c in contenders if c[0].startswith(a.only)]
    print(f"record: {len(files)} files x {n / FS:.0f} s x {nch} channels at {FS} Hz ({seconds:.0f} s)")
    results = []
    for name, cmd in contenders:
        wall, peak = run(cmd)
        results.append((name, wall, peak))
        print(f"  {name}: {wall:.1f} s, peak RSS {peak / 2**20:.0f} MiB", flush=True)

    ok = True
    names = [r[0] for r in results]
    if "cryocube --scale cryocube" in names and "seed-loop (Python)" in names:
        ok &= compare(open_cube(out("cryocube-seed"), "spectrogram"), open_cube(out("seed-loop"), None),
                      "cryocube scale vs seed loop", 0.01, 10 * np.log(1e6))
    if "cryocube" in names and "scipy-vectorised (Python)" in names:
        ok &= compare(open_cube(out("cryocube"), "spectrogram"), open_cube(out("scipy"), None),
                      "db scale vs scipy", 0.01, 60.0)

    base = results[0][1]
    lines = [
        f"Record: {len(files)} files x {n / FS:.0f} s x {nch} channels x {FS} Hz; df 1 Hz, dt 0.1 s, 0-100 Hz; "
        f"{os.cpu_count()} cores.",
        "",
        "| tool | total [s] | s per 30 s file | x real time | peak RSS [MiB] | time vs cryocube |",
        "|---|---|---|---|---|---|",
    ]
    for name, wall, peak in results:
        lines.append(
            f"| {name} | {wall:.1f} | {wall / len(files) * 30 / (n / FS):.2f} | {seconds / wall:.1f} | "
            f"{peak / 2**20:.0f} | {wall / base:.1f}x |"
        )
    table = "\n".join(lines)
    if not a.only:
        size_table, size_ok = sizes(a, files, n, nch, out)
        ok &= size_ok
        table += "\n\n" + size_table
    print()
    print(table)
    with open(os.path.join(a.work, "das-results.md"), "w") as f:
        f.write(table + "\n")
    if not ok:
        sys.exit("a contender's cube disagrees with cryocube: the timings above compare different work")


if __name__ == "__main__":
    main()
