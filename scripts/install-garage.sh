#!/usr/bin/env bash
# Builds the Garage S3 server the tests start on 127.0.0.1, once: it is cached outside the
# checkout (~/.cache/cryocube-tools/garage), so clean clones and CI runs reuse it. About 12-30
# minutes the first time (it is a large Rust program); nothing afterwards.
set -euo pipefail
ROOT="${CRYOCUBE_TOOLS:-$HOME/.cache/cryocube-tools}/garage"
BIN="$ROOT/bin/garage"
CARGO="${CARGO:-$(command -v cargo || echo "$HOME/.cargo/bin/cargo")}"
if [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1; then
  exit 0
fi
echo "building the Garage S3 server for the tests into $ROOT (once; takes a while)"
"$CARGO" install garage@2.5.0 --locked --root "$ROOT"
"$BIN" --version
