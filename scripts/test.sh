#!/usr/bin/env bash
# Runs every test (unit, integration, CLI smoke, real-data tests against ../shared/data, a
# real single-node Slurm cluster), after installing what is needed (scripts/setup.sh,
# idempotent) and compiling the benchmarks so they cannot rot; then checks the two
# binaries scripts/build.sh makes, the `sim-train` without libtorch first (see README, Two
# binaries). Prints cargo's per-binary results, "binaries: OK, …" and one total line.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh all
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sim-train/target}"

# Tests, benchmarks, and the binaries with the default features (this `sim-train` links
# libtorch and runs every command itself; scripts/build.sh below puts back the one that
# does not).
cargo build --release --all-targets
# The feature gates without any GPU backend or libtorch still compile.
cargo check --release --no-default-features --lib --bins

# setup.sh installed lavapipe, TensorBoard and Slurm: their tests must run, not skip.
export SIM_TRAIN_REQUIRE_WGPU=1 SIM_TRAIN_REQUIRE_TENSORBOARD=1 SIM_TRAIN_REQUIRE_SLURM=1
# No display here: Mesa's device-selection layer would only print that it found none.
export NODEVICE_SELECT=1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --release --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# The binaries as scripts/run.sh builds them: `sim-train` must not link libtorch, must
# start and run the lean commands, and must hand the torch commands to sim-train-torch
# (or say in one line, exit 2, that it is missing).
check_binaries() {
    local bin front needed bytes stripped out code run
    bin=$(scripts/build.sh) || { echo "binaries: FAILED, scripts/build.sh"; return 1; }
    front="$bin/sim-train"
    command -v readelf >/dev/null && command -v strip >/dev/null ||
        { echo "binaries: FAILED, readelf and strip not found (install binutils)"; return 1; }
    needed=$(readelf -d "$front" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
    needed=${needed% }
    if grep -qE 'torch|c10|stdc\+\+' <<<"$needed"; then
        echo "binaries: FAILED, sim-train links libtorch or the C++ runtime: NEEDED: $needed"
        return 1
    fi
    "$front" --help >/dev/null || { echo "binaries: FAILED, sim-train --help"; return 1; }
    "$front" policy inspect --help >/dev/null ||
        { echo "binaries: FAILED, sim-train policy inspect --help"; return 1; }
    # A fresh bundle written, verified and run by the live loop over a synthetic day.
    "$front" -q bench live --symbols 1 --days 1 --json >/dev/null ||
        { echo "binaries: FAILED, sim-train bench live"; return 1; }
    # A training command goes to sim-train-torch: a two-update sanity run.
    run=$(mktemp -d)
    out=$("$front" -q train --env sanity-bandit --device cpu --run-dir "$run/run" \
        --set train.num_envs=16 --set train.rollout_steps=8 --set train.total_steps=256 2>&1) ||
        { echo "binaries: FAILED, sim-train train through sim-train-torch: $out"; rm -rf "$run"; return 1; }
    rm -rf "$run"
    if [[ $out != *"trained 2 updates"* ]]; then
        echo "binaries: FAILED, sim-train train printed: $out"
        return 1
    fi
    code=0
    out=$(SIM_TRAIN_TORCH=/nonexistent/sim-train-torch "$front" train --run-dir /nonexistent/run 2>&1) || code=$?
    if [[ $code -ne 2 || $out != *"is not at /nonexistent/sim-train-torch"* ]]; then
        echo "binaries: FAILED, sim-train train without sim-train-torch exited $code with: $out"
        return 1
    fi
    # Named as its own companion, sim-train refuses instead of handing over in a loop.
    code=0
    out=$(SIM_TRAIN_TORCH="$front" timeout 10 "$front" train --run-dir /nonexistent/run 2>&1) || code=$?
    if [[ $code -ne 2 || $out != *"built without the torch feature too"* ]]; then
        echo "binaries: FAILED, sim-train named as its own companion exited $code with: $out"
        return 1
    fi
    bytes=$(stat -c %s "$front")
    strip -o "$front.stripped" "$front"
    stripped=$(stat -c %s "$front.stripped")
    rm -f "$front.stripped"
    # What travels to a GPU host for `sim-train doctor` (README, On an NVIDIA host): the
    # stripped sim-train-torch, within the 64 MiB a carry allows.
    strip -o "$bin/sim-train-torch.stripped" "$bin/sim-train-torch"
    carry=$(stat -c %s "$bin/sim-train-torch.stripped")
    rm -f "$bin/sim-train-torch.stripped"
    if (( carry > 64 * 1048576 )); then
        echo "binaries: FAILED, the stripped sim-train-torch is $carry bytes, over the 64 MiB a GPU host can be sent"
        return 1
    fi
    mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
    echo "binaries: OK, sim-train $(mib "$bytes") MiB ($(mib "$stripped") MiB stripped), NEEDED: $needed;" \
        "torch commands run by $bin/sim-train-torch ($(mib "$carry") MiB stripped)"
}
check_binaries || status=1

read -r passed failed < <(awk '/^test result:/ { for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } } END { print p + 0, f + 0 }' "$log")
skipped=$(grep -c '^SKIP' "$log" || true)
echo "tests: ${passed} passed, ${failed} failed, ${skipped} skipped"
exit "$status"
