#!/usr/bin/env bash
# Builds sim-train's two binaries (release) into $CARGO_TARGET_DIR/release (default
# ~/.cache/sim-train/target/release), after installing what the build needs
# (scripts/setup.sh core torch, idempotent):
#
#   sim-train-torch  the front end with libtorch: runs every command
#   sim-train        the same front end without libtorch (--no-default-features --features
#                    cuda,wgpu): starts in milliseconds, and hands the commands that train or
#                    run a checkpoint to sim-train-torch beside it
#
# Incremental: with nothing changed, a second run compiles nothing. Prints the folder.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh core torch >&2
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sim-train/target}"
cargo build --release --bin sim-train-torch >&2
cargo build --release --no-default-features --features cuda,wgpu --bin sim-train >&2
echo "$CARGO_TARGET_DIR/release"
