"""Times `import cryocube` against DASCore on the same files (see bench/python.sh).

Each measurement runs in a fresh Python process; the time is taken inside it, after the
tool's imports (`IMPORTS`: cryocube with xarray, dask.array and its backend module; dascore),
and the harness takes the process tree's peak memory in a second run. Opens run once before
they are timed, so that both tools find the headers in the page cache (the files were just
written, which evicts others). DASCore keeps an index of a folder in the folder
(`.dascore_index.h5`); it is removed before every measurement, so each open indexes the
folder as a first open does, and DASCore is timed once more with its index in place (its fast
path on a folder seen before).

Narrow files (`--many`, `--subset`):
- open: cryocube.open_das(folder) (headers only, in parallel) vs dascore.spool(folder).update()
  on the subset, cryocube on the whole folder too (the 10 s target);
- channel: one channel for 10 minutes (600 000 samples), values compared.

Rhonegletscher-size files (`--rhone`: 2299 int16 channels, 30 s at 1 kHz, 138 MB each):
- open the folder;
- channel: channel 1000 for 10 minutes (20 files), after the files were read once, so both
  read from the page cache;
- spectrogram of one file (read included): cryocube.open_das + cryocube.stft(scale="db")
  vs DASCore's Patch.spectrogram (scipy.signal.spectrogram) + 10 log10, with the same
  parameters (1 s Tukey(0.25) windows every 0.1 s, all frequencies up to Nyquist); the dB
  values of one channel are compared.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from measure import run  # noqa: E402

OPEN = {
    "cryocube": "import cryocube\nds = cryocube.open_das(FOLDER)\nn = ds.sizes['time']",
    "dascore": "import dascore as dc\nsp = dc.spool(FOLDER).update()\nn = len(sp)",
}


def channel(index):
    """One channel (by index) for 10 minutes from the start of the record."""
    return {
        "cryocube": (
            "import cryocube, numpy as np\nds = cryocube.open_das(FOLDER)\nT0 = time.perf_counter()\n"
            f"x = ds.data.isel(distance={index}, time=slice(0, 600000)).values\n"
            "n = int(np.isfinite(x).sum())\nCHECK = float(np.nansum(x, dtype=np.float64))"
        ),
        "dascore": (
            "import dascore as dc, numpy as np\nsp = dc.spool(FOLDER).update()\nt0 = sp.get_contents()['time_min'].min()\nT0 = time.perf_counter()\n"
            "p = sp.select(time=(t0, t0 + np.timedelta64(600, 's') - np.timedelta64(1, 'ms'))).chunk(time=None)[0]\n"
            f"d = p.coords.get_array('distance')[{index}]\nx = np.asarray(p.select(distance=(d, d)).data).ravel()\n"
            "n = int(np.isfinite(x).sum())\nCHECK = float(np.nansum(x, dtype=np.float64))"
        ),
    }


# FOLDER is the file here; OUT gets channel CH's dB values as (window, frequency).
SPECTROGRAM = {
    "cryocube": (
        "import cryocube, numpy as np\nds = cryocube.open_das(FOLDER)\n"
        "x = ds.data.values\nfs = ds.attrs['sampling_rate']\n"
        "s = cryocube.stft(x, fs, df=1.0, dt=0.1, fmax=None, scale='db')\n"
        "n = s.size\nnp.save(OUT, s[:, CH, :])"
    ),
    "dascore": (
        "import dascore as dc, numpy as np\np = dc.spool(FOLDER)[0]\n"
        "fs = 1 / (p.coords.step('time') / np.timedelta64(1, 's'))\nw = int(round(fs))\n"
        "s = p.spectrogram('time', nperseg=w, noverlap=w - w // 10, window=('tukey', 0.25))\n"
        "db = 10 * np.log10(s.data)\n"
        "n = db.size\n"
        "order = [s.dims.index('time'), s.dims.index('distance'), s.dims.index('ft_time')]\n"
        "np.save(OUT, db.transpose(order)[:, CH, :])"
    ),
}

# What each tool imports before the clock starts, so that its first call pays only for
# itself: for cryocube, xarray and dask.array too (xarray imports dask.array, 0.8 s here, when
# it makes its first Dataset in a process where dask is installed).
IMPORTS = {
    "cryocube": "import numpy as np, xarray as xr, dask.array, cryocube, cryocube.backend",
    "dascore": "import numpy as np, dascore as dc",
}

HARNESS = """
import time, json, sys
FOLDER = sys.argv[1]
OUT = sys.argv[2]
CH = 1000
{imports}
T0 = time.perf_counter()
{body}
print(json.dumps({{"seconds": time.perf_counter() - T0, "n": n, "check": globals().get("CHECK")}}))
"""


def forget_index(folder):
    """Removes DASCore's index of a folder (if any)."""
    if os.path.isdir(folder):
        index = os.path.join(folder, ".dascore_index.h5")
        if os.path.exists(index):
            os.remove(index)


def measure(tool, body, folder, out="", keep_index=False, warm=False):
    """Runs `body` on `folder` in a fresh process (time, result) and again (peak memory);
    `warm`: once before, untimed, so that what it reads is in the page cache as it is for
    the other tool (the files were just written, or the other tool just read them)."""
    script = HARNESS.format(imports=IMPORTS[tool], body=body)
    if warm:
        if not keep_index:
            forget_index(folder)
        subprocess.run([sys.executable, "-c", script, folder, out], capture_output=True, check=True)
    if not keep_index:
        forget_index(folder)
    done = subprocess.run([sys.executable, "-c", script, folder, out], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"failed:\n{script}\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not keep_index:
        forget_index(folder)
    _, peak = run([sys.executable, "-c", script, folder, out], quiet=True)
    result["peak_mib"] = peak / 2**20
    return result


def table(rows):
    print(f"\n{'':34} {'cryocube':>12} {'DASCore':>12} {'ratio':>8}   peak MiB (cryocube / DASCore)")
    for name, c, d in rows:
        print(f"{name:34} {c['seconds']:>10.3f} s {d['seconds']:>10.3f} s {d['seconds'] / c['seconds']:>7.1f}x   {c['peak_mib']:.0f} / {d['peak_mib']:.0f}")


def same_channel(c, d):
    same = c["n"] == d["n"] and abs(c["check"] - d["check"]) <= 1e-6 * max(1.0, abs(d["check"]))
    return f"channel values: {c['n']} and {d['n']} samples, sums {c['check']:.6f} / {d['check']:.6f}: {'equal' if same else 'DIFFERENT'}"


def h5_files(folder):
    return sorted(f for f in os.listdir(folder) if f.endswith(".h5") and not f.startswith("."))


def narrow(many, subset):
    n_many, n_sub = len(h5_files(many)), len(h5_files(subset))
    c_sub = measure("cryocube", OPEN["cryocube"], subset, warm=True)
    d_sub = measure("dascore", OPEN["dascore"], subset, warm=True)
    d_again = measure("dascore", OPEN["dascore"], subset, keep_index=True)
    forget_index(subset)
    c_all = measure("cryocube", OPEN["cryocube"], many, warm=True)
    ch = channel(1)
    c_ch = measure("cryocube", ch["cryocube"], subset)
    print(f"open {n_many} files with cryocube: {c_all['seconds']:.3f} s (target <= 10 s), "
          f"{1e3 * c_all['seconds'] / n_many:.2f} ms per file, peak {c_all['peak_mib']:.0f} MiB; "
          f"{n_sub} files: {c_sub['seconds']:.3f} s; one channel for 10 min: {c_ch['seconds']:.3f} s "
          f"({c_ch['n']} samples)")
    if d_sub["n"] == 0:
        sys.exit(f"DASCore indexed the {n_sub} files in {d_sub['seconds']:.3f} s and found no patch in them")
    d_ch = measure("dascore", ch["dascore"], subset)
    table([
        (f"open {n_sub} files", c_sub, d_sub),
        (f"open {n_sub} files, DASCore indexed", c_sub, d_again),
        ("one channel, 10 min", c_ch, d_ch),
    ])
    print(f"per file: cryocube {1e3 * c_all['seconds'] / n_many:.2f} ms, DASCore {1e3 * d_sub['seconds'] / n_sub:.2f} ms")
    print(same_channel(c_ch, d_ch))


def rhone(folder):
    files = h5_files(folder)
    c_open = measure("cryocube", OPEN["cryocube"], folder, warm=True)
    d_open = measure("dascore", OPEN["dascore"], folder, warm=True)
    d_again = measure("dascore", OPEN["dascore"], folder, keep_index=True)
    forget_index(folder)
    # Both read the channel from the page cache: the 20 files are read once first.
    for f in files[:21]:
        with open(os.path.join(folder, f), "rb") as fh:
            while fh.read(1 << 24):
                pass
    ch = channel(1000)
    c_ch = measure("cryocube", ch["cryocube"], folder)
    d_ch = measure("dascore", ch["dascore"], folder)
    forget_index(folder)
    one = os.path.join(folder, files[0])
    with tempfile.TemporaryDirectory(dir=os.path.dirname(folder)) as tmp:
        c_out, d_out = os.path.join(tmp, "c.npy"), os.path.join(tmp, "d.npy")
        c_sp = measure("cryocube", SPECTROGRAM["cryocube"], one, c_out)
        d_sp = measure("dascore", SPECTROGRAM["dascore"], one, d_out)
        a, b = np.load(c_out), np.load(d_out)
    size = os.path.getsize(one) / 1e6
    print(f"\n{len(files)} Rhonegletscher-size files ({size:.0f} MB each: 2299 int16 channels, 30 s at 1 kHz)")
    table([
        (f"open {len(files)} files", c_open, d_open),
        (f"open {len(files)} files, DASCore indexed", c_open, d_again),
        ("channel 1000, 10 min (cached)", c_ch, d_ch),
        ("spectrogram of one file", c_sp, d_sp),
    ])
    print(same_channel(c_ch, d_ch))
    if a.shape != b.shape:
        sys.exit(f"spectrogram shapes differ: cryocube {a.shape}, DASCore {b.shape}")
    # The DC bin holds what is left after the mean is removed (about 0): its dB is noise.
    diff = np.abs(a[:, 1:].astype(np.float64) - b[:, 1:])
    print(f"spectrogram of channel 1000: {a.shape[0]} windows x {a.shape[1]} frequencies, "
          f"largest difference above DC {diff.max():.2e} dB (median level {np.median(b[:, 1:]):.1f} dB)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--many", required=True)
    ap.add_argument("--subset", required=True)
    ap.add_argument("--rhone")
    a = ap.parse_args()
    narrow(a.many, a.subset)
    if a.rhone:
        rhone(a.rhone)


if __name__ == "__main__":
    main()
