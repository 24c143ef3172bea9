#!/usr/bin/env bash
# `import cryocube` benchmark (issue #16), not a test: cryocube.open_das against DASCore's
# spool (the Python way), side by side, each in a fresh process, in the same run
# (bench/python.py says what is timed):
# - a folder of MANY narrow Silixa files (3 channels, 30 s at 1 kHz, a gap and an overlap;
#   bench/make_many_files.py) opened as one lazy xarray Dataset, then one channel read for 10
#   minutes. DASCore indexes a folder file by file (and writes its index into it), so it gets
#   a subset of DAS_FILES files (a copy of the first ones);
# - a folder of RHONE Rhonegletscher-size files (2299 int16 channels, 30 s at 1 kHz, 138 MB
#   each: 27.6 GB for 200), opened, one channel read for 10 minutes, and the spectrogram of
#   one file. RHONE=0 leaves it out.
#
#   bash bench/python.sh                  # 10 000 files, DASCore on 1 000; 200 Rhone-size
#   MANY=2000 DAS_FILES=500 RHONE=40 bash bench/python.sh
#
# Everything goes to target/bench/ (files, venv, the package's release build in target/);
# nothing else is touched.
set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"
cd "$(dirname "$0")/.."
MANY=${MANY:-10000}
DAS_FILES=${DAS_FILES:-1000}
RHONE=${RHONE:-200}
WORK=target/bench
VENV=$WORK/venv-python
mkdir -p "$WORK"

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import cryocube, dascore, h5py, psutil" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet numpy xarray zarr dask h5py psutil "dascore==0.1.24"
fi
# The package as a user installs it (release build, reusing target/).
CARGO_TARGET_DIR="$PWD/target" "$VENV/bin/pip" install --quiet --force-reinstall --no-deps ./python

MANYDIR=$WORK/many-$MANY
if [ ! -f "$MANYDIR/.complete" ]; then
  rm -rf "$MANYDIR"
  "$VENV/bin/python" bench/make_many_files.py --out "$MANYDIR/raw" --files "$MANY"
  touch "$MANYDIR/.complete"
fi
SUB=$WORK/many-$MANY-first-$DAS_FILES
if [ ! -f "$SUB/.complete" ]; then
  rm -rf "$SUB"
  mkdir -p "$SUB/raw"
  # (sed reads all of its input: head would end the pipe early, which pipefail takes as a failure)
  ls "$MANYDIR/raw" | sort | sed -n "1,${DAS_FILES}p" | while read -r f; do cp "$MANYDIR/raw/$f" "$SUB/raw/"; done
  touch "$SUB/.complete"
fi

ARGS=(--many "$MANYDIR/raw" --subset "$SUB/raw")
if [ "$RHONE" -gt 0 ]; then
  RHONEDIR=$WORK/rhone-$RHONE
  if [ ! -f "$RHONEDIR/.complete" ]; then
    rm -rf "$RHONEDIR"
    "$VENV/bin/python" bench/make_many_files.py --out "$RHONEDIR/raw" --files "$RHONE" \
      --channels 2299 --dtype int16 --prefix RHONE
    touch "$RHONEDIR/.complete"
  fi
  ARGS+=(--rhone "$RHONEDIR/raw")
fi
exec "$VENV/bin/python" bench/python.py "${ARGS[@]}"
