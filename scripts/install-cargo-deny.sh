#!/usr/bin/env bash
# Builds cargo-deny (licenses, bans and sources of the dependency tree, checked by `make test`)
# once into ~/.cache/cryocube-tools/cargo-deny, like Garage: clean clones and CI runs reuse it.
# A few minutes the first time.
set -euo pipefail
ROOT="${CRYOCUBE_TOOLS:-$HOME/.cache/cryocube-tools}/cargo-deny"
BIN="$ROOT/bin/cargo-deny"
CARGO="${CARGO:-$(command -v cargo || echo "$HOME/.cargo/bin/cargo")}"
if [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1; then
  exit 0
fi
echo "building cargo-deny into $ROOT (once)"
"$CARGO" install cargo-deny@0.20.2 --locked --root "$ROOT"
"$BIN" --version
