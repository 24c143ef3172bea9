#!/usr/bin/env bash
# `import cryocube` benchmark (issue #16), not a test: a folder of MANY small Silixa files
# (3 channels, 30 s at 1 kHz, a gap and an overlap; bench/make_many_files.py) opened as one
# lazy xarray Dataset, then one channel read for 10 minutes, with cryocube.open_das and with
# DASCore's spool (the Python way) side by side, each in a fresh process, in the same run.
# DASCore indexes a folder file by file (and writes its index into it), so it gets a subset
# of DAS_FILES files (a copy of the first ones) and its figure is also given per file.
#
#   bash bench/python.sh                  # 10 000 files; DASCore on 1 000
#   MANY=2000 DAS_FILES=500 bash bench/python.sh
#
# Everything goes to target/bench/ (files, venv, the package's release build in target/);
# nothing else is touched.
set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"
cd "$(dirname "$0")/.."
MANY=${MANY:-10000}
DAS_FILES=${DAS_FILES:-1000}
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

exec "$VENV/bin/python" bench/python_bench.py --many "$MANYDIR/raw" --subset "$SUB/raw"
