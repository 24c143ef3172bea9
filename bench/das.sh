#!/usr/bin/env bash
# DAS benchmark: a Rhonegletscher-size record (5 files x 30 s x 2299 channels x 1 kHz, the
# seed's sample set) -> spectrogram cube with the seed's parameters (df 1 Hz, dt 0.1 s,
# 0-100 Hz), timed end to end for cryocube and, in the same run on the same files, for the
# seed's per-channel Python loop and a vectorised scipy version (from a venv made here).
#
#   bash bench/das.sh            # all three
#   FILES=10 bash bench/das.sh   # a longer record (peak memory must not grow with it)
#   ONLY=cryocube bash bench/das.sh
#
# Everything goes to target/bench/ (record, cubes, venv); nothing else is touched.
set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"  # where make deps installs Rust on a fresh machine
cd "$(dirname "$0")/.."
FILES=${FILES:-5}
CHANNELS=${CHANNELS:-2299}
ONLY=${ONLY:-}
WORK=target/bench
mkdir -p "$WORK"

cargo build --release --locked
BIN=$PWD/target/release/cryocube

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

exec "$VENV/bin/python" bench/das_competitors.py --bin "$BIN" --raw "$REC/raw" --work "$WORK" --only "$ONLY"
