#!/usr/bin/env bash
# Scale-out benchmark (`cryocube task` / `commit`), not a test:
#   1. the 5-file Rhone-size record (5 x 30 s x 2299 channels x 1 kHz, as bench/das.sh) in
#      one process, then planned and run as N = 1, 2 and 4 tasks one after another plus the
#      commit: the overhead of planning + commit + task start-up against one process;
#   2. planning 20 000 small Silixa files (3 channels, 30 s at 1 kHz, one gap, one overlap):
#      time, peak memory, size of the stored plan;
#   3. a projection for a Rhonegletscher month on K nodes of C cores from these figures.
#
#   bash bench/scale.sh
#   MANY=2000 bash bench/scale.sh       # fewer files for step 2
#   REPEAT=9 bash bench/scale.sh        # more rounds of step 1 (5 by default)
#
# Everything goes to target/bench/; nothing else is touched.
set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"
cd "$(dirname "$0")/.."
FILES=${FILES:-5}
CHANNELS=${CHANNELS:-2299}
MANY=${MANY:-20000}
WORK=target/bench
mkdir -p "$WORK"

source bench/rhone_record.sh

MANYDIR=$WORK/many-${MANY}
if [ ! -f "$MANYDIR/.complete" ]; then
  rm -rf "$MANYDIR"
  "$VENV/bin/python" bench/make_many_files.py --out "$MANYDIR/raw" --files "$MANY"
  touch "$MANYDIR/.complete"
fi

exec "$VENV/bin/python" bench/scale.py --bin "$BIN" --raw "$REC/raw" --many "$MANYDIR/raw" --work "$WORK" --repeat "${REPEAT:-5}"
