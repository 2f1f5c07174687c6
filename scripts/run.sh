#!/usr/bin/env bash
# The main job on the embedded default: a synthetic universe → day caches → verification →
# summary (data/pipeline/summary.json). Extra arguments go to `sim-train pipeline`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh core
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sim-train/target}"
cargo build --release --bin sim-train
exec "$CARGO_TARGET_DIR/release/sim-train" pipeline "$@"
