"""Measures `cryocube das --follow` latency (see bench/follow.sh)."""

import argparse
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

FS, WIN, HOP = 1000, 1000, 100  # the seed's parameters: df 1 Hz, dt 0.1 s
SETTLE, POLL = 5.0, 0.2  # --settle as the default; pieces come at most 3 s apart


def windows_in_cube(cube):
    """Windows of the published cube (0 while it has none or is being appended to)."""
    try:
        with open(os.path.join(cube, ".zmetadata")) as f:
            meta = json.load(f)["metadata"]
        return meta["spectrogram/.zarray"]["shape"][0]
    except (OSError, ValueError, KeyError):
        return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin")
    ap.add_argument("--raw")
    ap.add_argument("--work")
    ap.add_argument("--pace", type=float, default=10.0)
    a = ap.parse_args()
    files = sorted(glob.glob(os.path.join(a.raw, "*.h5")))
    watch = os.path.join(a.work, "follow-watch")
    live = os.path.join(a.work, "follow-live.zarr")
    one = os.path.join(a.work, "follow-one.zarr")
    shutil.rmtree(watch, ignore_errors=True)
    shutil.rmtree(live, ignore_errors=True)
    os.makedirs(watch)
    samples = 30 * FS
    proc = subprocess.Popen([a.bin, "das", watch, "-o", live, "--follow", "--settle", str(SETTLE),
                             "--poll", str(POLL), "-q"])
    target = WIN / FS + HOP / FS + 2.0
    # Windows that end within file i, and when the published cube first held them (a watcher
    # thread polls the cube every 10 ms while files are written).
    need = [((i + 1) * samples - WIN) // HOP + 1 for i in range(len(files))]
    have = [None] * len(files)
    stop = threading.Event()

    def watcher():
        while not stop.is_set():
            n = windows_in_cube(live)
            now = time.perf_counter()
            for i, m in enumerate(need):
                if have[i] is None and n >= m:
                    have[i] = now
            time.sleep(0.01)

    thread = threading.Thread(target=watcher)
    thread.start()
    appear, written = [], []
    try:
        for f in files:
            # As an interrogator records: the file appears (so the one before is complete)
            # and grows in ten pieces over the pace; the next one starts when it ends.
            appear.append(time.perf_counter())
            with open(f, "rb") as src, open(os.path.join(watch, os.path.basename(f)), "wb") as dst:
                data = src.read()
                piece = len(data) // 10 + 1
                for k in range(10):
                    dst.write(data[k * piece:(k + 1) * piece])
                    dst.flush()
                    time.sleep(max(0.0, appear[-1] + (k + 1) * a.pace / 10 - time.perf_counter()))
            written.append(time.perf_counter())
        t0 = time.perf_counter()
        while have[-1] is None:
            if proc.poll() is not None or time.perf_counter() - t0 > 120:
                sys.exit("the cube never held the last file's windows")
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    # File i is complete when file i + 1 appears; the last once its size has held --settle.
    rows = [(i, have[i] - appear[i + 1]) for i in range(len(files) - 1)]
    rows.append((len(files) - 1, have[-1] - (written[-1] + SETTLE)))
    subprocess.run([a.bin, "das", *files, "-o", one, "--overwrite", "-q"], check=True)
    same = all(
        open(os.path.join(one, k), "rb").read() == open(os.path.join(live, k), "rb").read()
        for k in ["spectrogram/0.0.0", "spectrogram/2.10.0", "time/0"]
    )
    lines = [
        f"Record: {len(files)} files x 30 s x 2299 channels x {FS} Hz, each written into the watched folder in ten "
        f"pieces over {a.pace:g} s, the next one right after; --poll {POLL} s, --settle {SETTLE} s; {os.cpu_count()} cores. "
        f"Target: {target:.1f} s.",
        "",
        "| file | latency [s] (complete -> its windows published) |",
        "|---|---|",
    ]
    lines += [f"| {i + 1}{' (last: complete after --settle)' if i == len(files) - 1 else ''} | {lat:.2f} |"
              for i, lat in rows]
    worst = max(lat for _, lat in rows)
    lines += ["", f"worst: {worst:.2f} s, target {target:.1f} s: "
              f"{'met' if worst <= target else 'MISSED'}; cube equals a one-shot run: {'yes' if same else 'NO'}"]
    table = "\n".join(lines)
    print(table)
    with open(os.path.join(a.work, "follow-results.md"), "w") as f:
        f.write(table + "\n")
    if not same:
        sys.exit("the followed cube differs from a one-shot run")


if __name__ == "__main__":
    main()
