"""Times `import cryocube` against DASCore on the same files (see bench/python.sh).

Each measurement runs in a fresh Python process (imports not counted: the time is taken
inside it around the call), and the harness takes the process tree's peak memory. What is
timed:
- open: cryocube.open_das(folder) (headers only, in parallel) vs dascore.spool(folder).update()
  (DASCore's index of the folder), on the subset for DASCore, on the subset and the whole
  folder for cryocube;
- channel: one channel for 10 minutes from the opened record (600 000 samples), values
  compared between the two.
"""

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from measure import run  # noqa: E402

OPEN = {
    "cryocube": "import cryocube\nds = cryocube.open_das(FOLDER)\nn = ds.sizes['time']",
    "dascore": "import dascore as dc\nsp = dc.spool(FOLDER).update()\nn = len(sp)",
}
CHANNEL = {
    "cryocube": (
        "import cryocube, numpy as np\nds = cryocube.open_das(FOLDER)\nT0 = time.perf_counter()\n"
        "x = ds.data.sel(distance=4.0).isel(time=slice(0, 600000)).values\nn = int(np.isfinite(x).sum())\nCHECK = float(np.nansum(x, dtype=np.float64))"
    ),
    "dascore": (
        "import dascore as dc, numpy as np\nsp = dc.spool(FOLDER).update()\nt0 = sp.get_contents()['time_min'].min()\nT0 = time.perf_counter()\n"
        "p = sp.select(time=(t0, t0 + np.timedelta64(600, 's') - np.timedelta64(1, 'ms'))).chunk(time=None)[0]\n"
        "d = p.coords.get_array('distance')[1]\nx = np.asarray(p.select(distance=(d, d)).data).ravel()\n"
        "n = int(np.isfinite(x).sum())\nCHECK = float(np.nansum(x, dtype=np.float64))"
    ),
}

HARNESS = """
import time, json, sys
FOLDER = sys.argv[1]
T0 = time.perf_counter()
{body}
print(json.dumps({{"seconds": time.perf_counter() - T0, "n": n, "check": globals().get("CHECK")}}))
"""


def measure(body, folder):
    script = HARNESS.format(body=body)
    out = subprocess.run([sys.executable, "-c", script, folder], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"failed:\n{script}\n{out.stderr}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    _, peak = run([sys.executable, "-c", script, folder], quiet=True)
    result["peak_mib"] = peak / 2**20
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--many", required=True)
    ap.add_argument("--subset", required=True)
    a = ap.parse_args()
    n_many = len([f for f in os.listdir(a.many) if f.endswith(".h5")])
    n_sub = len([f for f in os.listdir(a.subset) if f.endswith(".h5")])
    rows = []
    c_sub = measure(OPEN["cryocube"], a.subset)
    d_sub = measure(OPEN["dascore"], a.subset)
    c_all = measure(OPEN["cryocube"], a.many)
    c_ch = measure(CHANNEL["cryocube"], a.subset)
    print(f"open {n_many} files with cryocube: {c_all['seconds']:.3f} s (target <= 10 s), "
          f"{1e3 * c_all['seconds'] / n_many:.2f} ms per file, peak {c_all['peak_mib']:.0f} MiB; "
          f"{n_sub} files: {c_sub['seconds']:.3f} s; one channel for 10 min: {c_ch['seconds']:.3f} s "
          f"({c_ch['n']} samples)")
    if d_sub["n"] == 0:
        # DASCore's Silixa reader does not take this layout (the files of a Silixa iDAS
        # export as bench/make_many_files.py writes them): nothing to compare with.
        print(f"DASCore indexed the {n_sub} files in {d_sub['seconds']:.3f} s and found no patch in them: no comparison")
        return
    rows.append((f"open {n_sub} files", c_sub, d_sub))
    d_ch = measure(CHANNEL["dascore"], a.subset)
    rows.append(("one channel, 10 min", c_ch, d_ch))
    print(f"\n{'':28} {'cryocube':>12} {'DASCore':>12} {'ratio':>8}   peak MiB (cryocube / DASCore)")
    for name, c, d in rows:
        print(f"{name:28} {c['seconds']:>10.3f} s {d['seconds']:>10.3f} s {d['seconds'] / c['seconds']:>7.1f}x   {c['peak_mib']:.0f} / {d['peak_mib']:.0f}")
    print(f"per file: cryocube {1e3 * c_all['seconds'] / n_many:.2f} ms, DASCore {1e3 * d_sub['seconds'] / n_sub:.2f} ms")
    same = c_ch["n"] == d_ch["n"] and abs(c_ch["check"] - d_ch["check"]) <= 1e-6 * max(1.0, abs(d_ch["check"]))
    print(f"channel values: {c_ch['n']} and {d_ch['n']} samples, sums {c_ch['check']:.6f} / {d_ch['check']:.6f}: {'equal' if same else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
