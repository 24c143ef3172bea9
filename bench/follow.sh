#!/usr/bin/env bash
# Live-follow latency: the Rhonegletscher-size record (FILES x 30 s x 2299 channels x 1 kHz,
# made once by `cryocube demo`) written file by file into a watched folder while
# `cryocube das WATCH -o live.zarr --follow` runs (release build), each growing over PACE seconds
# (default 10; 30 is real time) as an interrogator writes it. For each file, the time from
# the moment it is complete (the next file appears; for the last one, its size has held for
# --settle) to the moment the published cube holds every window that ends within it. Target:
# one window + one hop + 2 s (3.1 s at the seed's parameters). The Python ways have no live
# mode, so there is no competitor here; the cube is then compared with a one-shot run.
#
#   bash bench/follow.sh
#   PACE=30 bash bench/follow.sh   # each file written over 30 s, as an interrogator records
#   FILES=10 bash bench/follow.sh
#
# Everything goes to target/bench/ (record, watched folder, cubes, venv); nothing else is touched.
set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"
cd "$(dirname "$0")/.."
FILES=${FILES:-5}
CHANNELS=${CHANNELS:-2299}
PACE=${PACE:-10}
WORK=target/bench
mkdir -p "$WORK"

source bench/rhone_record.sh

exec "$VENV/bin/python" bench/follow_latency.py --bin "$BIN" --raw "$REC/raw" --work "$WORK" --pace "$PACE"
