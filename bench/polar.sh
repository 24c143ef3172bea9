#!/usr/bin/env bash
# Polar benchmark: cryocube builds examples/polar-standin at the seed's full size (19530 x 21210
# cells at 100 m, 16 layers; targets 90 s and 1 GiB), then, in the same run on the same files,
# cryocube and the seed's way (xarray + rioxarray in memory, from a venv made here) build the
# same seven layers over the seed's bbox at each resolution in RES.
#
#   bash bench/polar.sh                 # full size + 1 km and 250 m side by side
#   RES="1000" bash bench/polar.sh      # side by side at 1 km only (REPEAT=3 runs of each, medians)
#   ONLY=full bash bench/polar.sh       # full size only (ONLY=side: side by side only)
#
# Everything goes to target/bench/polar/ (cubes, source copies) and target/bench/venv-polar;
# nothing else is touched. CRYOCUBE_SHARED is the shared/ folder (default: beside the checkout).
set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"
cd "$(dirname "$0")/.."
export CRYOCUBE_SHARED=${CRYOCUBE_SHARED:-$(cd .. && pwd)/shared}
RES=${RES:-"1000 250"}
ONLY=${ONLY:-}
REPEAT=${REPEAT:-3}
WORK=target/bench/polar
mkdir -p "$WORK"

cargo build --release --locked
BIN=$PWD/target/release/cryocube

VENV=target/bench/venv-polar
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import xarray, rioxarray, scipy, psutil, netCDF4, zarr; assert int(zarr.__version__[0]) >= 3" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet numpy scipy xarray rioxarray netCDF4 "zarr>=3" dask psutil
fi

exec "$VENV/bin/python" bench/polar_competitors.py --bin "$BIN" --data "$CRYOCUBE_SHARED/data/polar" \
  --example examples/polar-standin/cube.geojson --work "$WORK" --res "$RES" --only "$ONLY" --repeat "$REPEAT"
