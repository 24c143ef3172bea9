"""cryocube view vs Lexcube's tile server on the same SIZE^3 float32 cube (see bench/view.sh).

cryocube: the real page in headless Chromium over WebDriver, timed inside the page
(performance.now): page load -> first complete frame (all three visible faces at their final
level), and per slider step the time from the input event to the finished frame. Lexcube: its
TileServer (the code behind Cube3DWidget) makes the tiles of the same faces at the same level
of detail, timed in Python; its browser drawing is not counted, which favours it.
"""
import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import numpy as np
import psutil

CHUNK = 64


def make_cube(path, n):
    """A smooth field plus noise and a NaN hole, Zarr v2 with 64^3 chunks (xarray-written)."""
    import dask.array as da
    import xarray as xr

    def block(block_info=None):
        loc = block_info[None]["array-location"]
        t, y, x = np.meshgrid(*[np.arange(a, b, dtype=np.float32) for a, b in loc], indexing="ij")
        rng = np.random.default_rng(loc[0][0] * 1_000_003 + loc[1][0] * 1009 + loc[2][0])
        v = np.sin(x / 53.0) + np.cos(y / 71.0) + t / n + 0.2 * rng.standard_normal(t.shape, dtype=np.float32)
        v[(t > n * 0.4) & (t < n * 0.45) & (y < n * 0.2)] = np.nan
        return v.astype(np.float32)

    data = da.map_blocks(block, dtype=np.float32, chunks=((CHUNK,) * (n // CHUNK),) * 3)
    ds = xr.Dataset(
        {"v": (("time", "y", "x"), data, {"units": "1", "long_name": "benchmark field"})},
        coords={
            "time": np.datetime64("2024-01-01T00:00") + np.arange(n) * np.timedelta64(1, "h"),
            "y": np.arange(n, dtype=np.float64) * 100.0,
            "x": np.arange(n, dtype=np.float64) * 100.0,
        },
    )
    tmp = path + ".part"
    shutil.rmtree(tmp, ignore_errors=True)
    ds.to_zarr(tmp, zarr_format=2, consolidated=True, mode="w")
    os.rename(tmp, path)


class Peak(threading.Thread):
    """Peak RSS of a process, sampled every 20 ms."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.p = psutil.Process(pid)
        self.peak = 0
        self.stop = False

    def run(self):
        while not self.stop:
            try:
                self.peak = max(self.peak, self.p.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.02)


class Browser:
    def __init__(self, width, height):
        port = free_port()
        self.driver = subprocess.Popen(["chromedriver", f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                urllib.request.urlopen(self.base + "/status")
                break
            except OSError:
                time.sleep(0.05)
        self.profile = tempfile.mkdtemp()
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--no-sandbox",
                     "--disable-dev-shm-usage", "--disable-background-networking", "--disable-component-update",
                     "--no-first-run", "--disable-sync", f"--window-size={width},{height}",
                     "--force-device-scale-factor=1", f"--user-data-dir={self.profile}"]}}}}
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def call(self, method, path, body=None):
        url = self.base + (path if path == "/session" else f"/session/{self.session}{path}")
        data = json.dumps(body).encode() if body is not None else (b"{}" if method == "POST" else None)
        req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=300) as r:
            return json.loads(r.read())["value"]

    def js(self, script, *args):
        return self.call("POST", "/execute/sync", {"script": script, "args": list(args)})

    def js_async(self, script, *args):
        return self.call("POST", "/execute/async", {"script": script, "args": list(args)})

    def close(self):
        try:
            self.call("DELETE", "")
        except OSError:
            pass
        self.driver.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


def free_port():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


STEP_JS = """
const [id, value, done] = arguments;
const before = window.cryocube.frames, t0 = performance.now();
const e = document.getElementById(id);
e.value = value; e.dispatchEvent(new Event('input'));
(function poll() {
  if (window.cryocube.frames > before) requestAnimationFrame(() => done(performance.now() - t0));
  else setTimeout(poll, 0);
})();
"""


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(math.ceil(p / 100 * len(xs))) - 1)]


def bench_cryocube(args, cube, width, height):
    server = subprocess.Popen([args.bin, "view", cube, "--port", "0", "--cache-mb", str(args.cache_mb)],
                              stdout=subprocess.PIPE, text=True)
    url = next(w for w in server.stdout.readline().split() if w.startswith("http://"))
    peak = Peak(server.pid)
    peak.start()
    b = Browser(width, height)
    try:
        b.call("POST", "/url", {"url": url})
        t_end = time.time() + 120
        while not b.js("return window.cryocube && window.cryocube.frames >= 1"):
            if time.time() > t_end:
                sys.exit("no first frame: " + str(b.js("return document.getElementById('status').textContent")))
            time.sleep(0.01)
        first = b.js("return window.cryocube.at")
        levels = b.js("return window.cryocube.levels")
        visible = b.js("return window.cryocubeDebug.visible()")
        steps = {}
        for axis in range(3):
            side = next(s for a, s in visible if a == axis)
            slider = f"lo{axis}" if side == 0 else f"hi{axis}"
            start = 0 if side == 0 else args.size
            times = []
            for k in range(1, args.steps + 1):
                value = start + k if side == 0 else start - k
                times.append(b.js_async(STEP_JS, slider, value))
            steps[axis] = times
        shot = b.call("GET", "/screenshot")
    finally:
        b.close()
        peak.stop = True
        server.kill()
    import base64

    with open(os.path.join(args.work, "view-bench.png"), "wb") as f:
        f.write(base64.b64decode(shot))
    return {"first_ms": first, "levels": levels, "steps": steps, "rss": peak.peak, "visible": visible}


def bench_lexcube(args, cube, lod, visible):
    import xarray as xr
    from lexcube.lexcube_server.src.tile_server import TileServer

    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    t0 = time.perf_counter()
    da = xr.open_zarr(cube, chunks={})["v"]
    ts = TileServer(widget_mode=True)
    ts.startup_widget(da, True)
    ts.widget_update_progress = lambda *a, **k: None  # what Cube3DWidget sets
    n = args.size
    tiles_per_side = math.ceil(n / 2**lod / ts.TILE_SIZE_2D)
    xys = [[x, y] for y in range(tiles_per_side) for x in range(tiles_per_side)]
    dims = {0: "by_z", 1: "by_y", 2: "by_x"}
    rid = [0]

    def face(axis, index):
        rid[0] += 1
        req = {"request_id": rid[0], "request_group_id": rid[0], "lod": lod, "tileType": "2d", "xys": xys,
               "indexDimension": dims[axis], "indexValue": int(index)}
        ts.pre_register_requests([req])
        ts.handle_tile_request_widget(req)

    start_index = {a: (0 if s == 0 else n - 1) for a, s in visible}
    for a in range(3):
        face(a, start_index[a])
    first = (time.perf_counter() - t0) * 1000
    steps = {}
    for axis in range(3):
        times = []
        for k in range(1, args.steps + 1):
            index = start_index[axis] + k if start_index[axis] == 0 else start_index[axis] - k
            t = time.perf_counter()
            face(axis, index)
            times.append((time.perf_counter() - t) * 1000)
        steps[axis] = times
    return {"first_ms": first, "lod": lod, "tiles": len(xys), "steps": steps, "rss": proc.memory_info().rss - rss0}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--cache-mb", type=int, default=512)
    args = ap.parse_args()
    if args.size % CHUNK:
        sys.exit(f"--size must be a multiple of {CHUNK}")
    cube = os.path.join(args.work, f"cube{args.size}.zarr")
    if not os.path.exists(cube):
        t = time.perf_counter()
        print(f"making {cube} ({args.size**3 * 4 / 2**30:.1f} GiB of float32) ...", flush=True)
        make_cube(cube, args.size)
        print(f"  {time.perf_counter() - t:.0f} s", flush=True)
    t = time.perf_counter()
    subprocess.run([args.bin, "pyramid", cube, "-q"], check=True)
    pyramid_s = time.perf_counter() - t

    width, height = 1280, 800
    ours = bench_cryocube(args, cube, width, height)
    # Lexcube makes the same faces at the same resolution: its level of detail = our level.
    theirs = bench_lexcube(args, cube, max(ours["levels"]), ours["visible"])

    all_ours = [x for v in ours["steps"].values() for x in v]
    all_theirs = [x for v in theirs["steps"].values() for x in v]
    print()
    print(f"cube {args.size}^3 float32, 64^3 chunks; pyramid built in {pyramid_s:.1f} s; window {width}x{height}")
    print(f"{'':34}{'cryocube view':>16}{'Lexcube tiles':>16}{'ratio':>8}")
    row = lambda name, a, b, unit="ms": print(f"{name:34}{a:>13.0f} {unit}{b:>13.0f} {unit}{b / a:>7.1f}x")
    row("first complete frame", ours["first_ms"], theirs["first_ms"])
    for axis in range(3):
        o, t = ours["steps"][axis], theirs["steps"][axis]
        row(f"slider axis {axis}: p50", statistics.median(o), statistics.median(t))
        row(f"slider axis {axis}: p95", pct(o, 95), pct(t, 95))
    row("all slider steps: p50", statistics.median(all_ours), statistics.median(all_theirs))
    row("all slider steps: p95", pct(all_ours, 95), pct(all_theirs, 95))
    print(f"{'server peak RSS':34}{ours['rss'] / 2**20:>13.0f} MB{theirs['rss'] / 2**20:>13.0f} MB (Lexcube: growth of its process)")
    print(f"levels drawn by cryocube: {ours['levels']}; Lexcube LOD {theirs['lod']}, {theirs['tiles']} tiles of 256^2 per face")
    print(f"targets: first frame <= 1000 ms; p50 <= 50 ms, p95 <= 150 ms; RSS <= {args.cache_mb} + 100 MB")
    print(f"screenshot: {os.path.join(args.work, 'view-bench.png')}")


if __name__ == "__main__":
    main()
