#!/usr/bin/env bash
# Runs every test (unit, integration, CLI smoke, real-data tests against ../shared/data),
# after installing what is needed (scripts/setup.sh, idempotent) and compiling the
# benchmarks so they cannot rot, and checks the lean build (no libtorch; see README, Lean
# live build). Prints cargo's per-binary results and one total line.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh all
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sim-train/target}"

# The lean binary first, copied aside: both builds write target/release/sim-train, and the
# default build below puts the default binary back there (even when it compiles nothing).
cargo build --release --no-default-features --bin sim-train
lean="$CARGO_TARGET_DIR/lean/sim-train"
mkdir -p "$(dirname "$lean")"
cp "$CARGO_TARGET_DIR/release/sim-train" "$lean"

cargo build --release --all-targets

# The lean binary must not need libtorch, must run, and must refuse the torch commands
# with one clear line (exit 2).
check_lean() {
    local needed bytes stripped out code
    command -v readelf >/dev/null && command -v strip >/dev/null ||
        { echo "lean build: FAILED, readelf and strip not found (install binutils)"; return 1; }
    needed=$(readelf -d "$lean" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
    needed=${needed% }
    if grep -qE 'torch|c10' <<<"$needed"; then
        echo "lean build: FAILED, it links libtorch: NEEDED: $needed"
        return 1
    fi
    "$lean" --help >/dev/null || { echo "lean build: FAILED, sim-train --help"; return 1; }
    "$lean" policy inspect --help >/dev/null || { echo "lean build: FAILED, sim-train policy inspect --help"; return 1; }
    # A fresh bundle written, verified and run by the live loop over a synthetic day.
    "$lean" -q bench live --symbols 1 --days 1 --json >/dev/null ||
        { echo "lean build: FAILED, sim-train bench live"; return 1; }
    code=0
    out=$("$lean" train --run-dir "$CARGO_TARGET_DIR/lean/no-run" 2>&1) || code=$?
    if [[ $code -ne 2 || $out != *"needs libtorch"* ]]; then
        echo "lean build: FAILED, sim-train train exited $code with: $out"
        return 1
    fi
    bytes=$(stat -c %s "$lean")
    strip -o "$lean.stripped" "$lean"
    stripped=$(stat -c %s "$lean.stripped")
    echo "lean build: OK, $(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }') MiB" \
        "($(awk -v b="$stripped" 'BEGIN { printf "%.1f", b / 1048576 }') MiB stripped), NEEDED: $needed"
}
check_lean

# setup.sh installed lavapipe: the wgpu conformance suite must run, not skip.
export SIM_TRAIN_REQUIRE_WGPU=1
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
