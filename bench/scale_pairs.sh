#!/usr/bin/env bash
# Pair by pair (a benchmark, not a test): one process against plan + N tasks + commit on the
# Rhone-size record of bench/das.sh, alternating, and the median of the pairs' ratios. On a
# host whose speed drifts for minutes at a time, a pair run back to back shares its spell.
#
#   bash bench/scale_pairs.sh            # N = 4 tasks, 10 pairs
#   TASKS=1 PAIRS=6 bash bench/scale_pairs.sh
#
# Everything goes to target/bench/; nothing else is touched.
set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"
cd "$(dirname "$0")/.."
FILES=${FILES:-5}
CHANNELS=${CHANNELS:-2299}
TASKS=${TASKS:-4}
PAIRS=${PAIRS:-10}
WORK=target/bench
mkdir -p "$WORK"
source bench/rhone_record.sh

one=$WORK/pairs-one.zarr
split=$WORK/pairs-split.zarr
now() { date +%s.%N; }
"$BIN" das "$REC/raw" -o "$one" --overwrite -q # warms the page cache; not counted
"$BIN" das "$REC/raw" -o "$split" --overwrite -q
ratios=()
for p in $(seq "$PAIRS"); do
  # Each run starts right after its previous cube (1 GB) is deleted: on this virtual machine
  # memory freed long ago has been handed back to the host and costs more to write into than
  # memory freed just now, and that must not favour one side.
  rm -rf "$one"
  t0=$(now)
  "$BIN" das "$REC/raw" -o "$one" -q
  t1=$(now)
  rm -rf "$split"
  t1=$(now)
  "$BIN" das "$REC/raw" -o "$split" --plan-only -q >/dev/null
  for i in $(seq 0 $((TASKS - 1))); do
    "$BIN" task "$split" --index "$i" --count "$TASKS" -q
  done
  "$BIN" commit "$split" -q
  t2=$(now)
  read -r r line < <(awk -v a="$t0" -v b="$t1" -v c="$t2" -v p="$p" -v n="$TASKS" 'BEGIN {
    r = (c - b) / (b - a)
    printf "%.6f pair %2d: one process %.2f s, plan + %d tasks + commit %.2f s, %+.1f %%\n", r, p, b - a, n, c - b, (r - 1) * 100
  }')
  ratios+=("$r")
  echo "$line"
done
printf '%s\n' "${ratios[@]}" | sort -g | awk '{v[NR] = $1} END {
  m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
  printf "median of %d pairs: %+.1f %% (%+.1f .. %+.1f %%)\n", NR, (m - 1) * 100, (v[1] - 1) * 100, (v[NR] - 1) * 100
}'
