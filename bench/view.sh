#!/usr/bin/env bash
# Viewer benchmark: a SIZE^3 float32 cube (default 1024^3, 4 GiB, made here once with
# xarray/dask), `cryocube pyramid` on it, then `cryocube view` in headless Chromium over
# WebDriver: page load -> first complete frame, 100 slider steps per axis (repaint times),
# server peak RSS; in the same run Lexcube's tile server (from a venv made here) makes the same
# faces at the same resolution, for the ratios.
#
#   bash bench/view.sh              # 1024^3
#   SIZE=256 bash bench/view.sh     # a quick run
#
# Everything goes to target/bench/view/ and target/bench/venv-view; nothing else is touched.
# Needs Debian's chromium and chromium-driver (make test installs them).
set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"
cd "$(dirname "$0")/.."
SIZE=${SIZE:-1024}
STEPS=${STEPS:-100}
CACHE_MB=${CACHE_MB:-512}
WORK=target/bench/view
mkdir -p "$WORK"

cargo build --release --locked
BIN=$PWD/target/release/cryocube

VENV=target/bench/venv-view
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import xarray, zarr, dask, lexcube, psutil; assert int(zarr.__version__[0]) >= 3" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet numpy xarray "zarr>=3" dask lexcube psutil
fi

exec "$VENV/bin/python" bench/view_bench.py --bin "$BIN" --work "$WORK" --size "$SIZE" \
  --steps "$STEPS" --cache-mb "$CACHE_MB"
