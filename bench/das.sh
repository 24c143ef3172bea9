#!/usr/bin/env bash
# DAS benchmark: a Rhonegletscher-size record (5 files x 30 s x 2299 channels x 1 kHz, the
# seed's sample set) -> spectrogram cube with the seed's parameters (df 1 Hz, dt 0.1 s,
# 0-100 Hz), timed end to end for cryocube and, in the same run on the same files, for the
# seed's per-channel Python loop and a vectorised scipy version (from a venv made here).
#
#   bash bench/das.sh            # all three
#   FILES=10 bash bench/das.sh   # a longer record (peak memory must not grow with it)
#   ONLY=cryocube bash bench/das.sh
#   ONLY=size bash bench/das.sh  # only the cube sizes (f32, f16, --quantize 0.01/0.05/0.1)
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

source bench/rhone_record.sh

exec "$VENV/bin/python" bench/das_competitors.py --bin "$BIN" --raw "$REC/raw" --work "$WORK" --only "$ONLY"
