#!/usr/bin/env bash
# Runs every test (unit, integration, CLI smoke, real-data tests against ../shared/data),
# after installing what is needed (scripts/setup.sh, idempotent) and compiling the
# benchmarks so they cannot rot. Prints cargo's per-binary results and one total line.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh all
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sim-train/target}"

cargo build --release --all-targets
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --release "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
read -r passed failed < <(awk '/^test result:/ { for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } } END { print p + 0, f + 0 }' "$log")
skipped=$(grep -c '^SKIP' "$log" || true)
echo "tests: ${passed} passed, ${failed} failed, ${skipped} skipped"
exit "$status"
