# Sourced by bench/das.sh and bench/scale.sh: the release build (BIN), the benchmark venv with
# numpy, scipy, h5py, zarr 2 and psutil (VENV), and the Rhone-size synthetic record made once
# by `cryocube demo` (REC; FILES x 30 s x CHANNELS at 1 kHz). WORK must be set.
cargo build --release --locked
BIN=$PWD/target/release/cryocube
# `cryocube` hands what needs GDAL to `cryocube-geo` and must not load GDAL itself: that was
# most of a task's start (src/main.rs in crates/cli). Link-time optimisation removes the
# unused GDAL code only if no path to it is left; a regression shows here, not as a slow run.
if readelf -d "$BIN" | grep -q 'libgdal'; then
  echo "error: $BIN loads libgdal (a path of cryocube's to GDAL code is not handed over)" >&2
  exit 1
fi

VENV=$WORK/venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import numpy, scipy, h5py, zarr, psutil" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet numpy scipy h5py "zarr>=2.18,<3" psutil
fi

REC=$WORK/record-${FILES}x${CHANNELS}
if [ ! -f "$REC/.complete" ]; then
  rm -rf "$REC"
  "$BIN" demo -o "$REC" --files "$FILES" --channels "$CHANNELS" --record-only >/dev/null
  touch "$REC/.complete"
fi
