#!/usr/bin/env bash
# One place for everything sim-train needs beyond the Rust toolchain, installed
# idempotently (a second run only checks and returns in seconds).
#
#   scripts/setup.sh [core] [torch] [nvrtc] [vulkan] [chromium] [slurm] [all]   (default: all)
#
#   core    the Rust toolchain is present (rustc >= 1.95), a C++ compiler (build.rs compiles
#           kernels/env_step.cu for the host; g++ from apt when none is found), the shared
#           target folder exists
#   torch   .venv with PyTorch 2.11.0 and its CUDA libraries (the libtorch that tch 0.24 links),
#           and TensorBoard (to view training runs; a test reads their event files with it)
#   nvrtc   NVRTC 13.0 in .venv, so CUDA kernels compile to PTX without a GPU
#   vulkan  Mesa's lavapipe (software Vulkan), so wgpu compute shaders run on the CPU
#   chromium  headless Chromium, so a test renders the walk-forward report page
#   slurm   Slurm and MUNGE (installed only; scripts/slurm/local_cluster.sh starts a
#           single-node cluster for a test and stops it)
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_VERSION=2.11.0
TENSORBOARD_VERSION=2.21.0
NVRTC_SPEC='nvidia-cuda-nvrtc==13.0.*'
VENV=.venv

log() { printf '[setup] %s\n' "$*" >&2; }

core() {
  command -v cargo >/dev/null || { log "cargo not found: install Rust (rustup) first"; exit 1; }
  local v; v=$(rustc --version | awk '{print $2}')
  if [ "$(printf '%s\n1.95.0\n' "$v" | sort -V | head -1)" != "1.95.0" ]; then
    log "rustc $v is older than 1.95.0: run 'rustup update stable'"; exit 1
  fi
  if ! command -v "${CXX:-c++}" >/dev/null && ! command -v g++ >/dev/null; then
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    log "apt-get install g++ (build.rs compiles the CUDA kernels' source for the host)"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends g++ >/dev/null
  fi
  mkdir -p "${CARGO_TARGET_DIR:-$HOME/.cache/sim-train/target}"
}

venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
  fi
}

# pip_once MARKER ARGS...: runs pip install ARGS unless MARKER says it already did.
pip_once() {
  local marker="$VENV/.installed-$1"; shift
  if [ -f "$marker" ] && [ "$(cat "$marker")" = "$*" ]; then return 0; fi
  log "pip install $*"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@"
  printf '%s' "$*" > "$marker"
}

torch() {
  venv
  # With its CUDA dependencies: the binaries link libtorch.so (so CUDA works where a GPU
  # exists), which needs cuBLAS, cuDNN & co. at load time even on a CPU-only machine.
  pip_once torch "torch==$TORCH_VERSION"
  # .cargo/config.toml points LIBTORCH at .venv/torch, whatever the Python version.
  local pkg; pkg=$(ls -d "$VENV"/lib/python3*/site-packages/torch | head -1)
  [ -f "$pkg/lib/libtorch.so" ] || { log "no libtorch.so under $pkg/lib"; exit 1; }
  ln -sfn "${pkg#"$VENV"/}" "$VENV/torch"
  pip_once tensorboard "tensorboard==$TENSORBOARD_VERSION"
}

nvrtc() {
  venv
  pip_once nvrtc "$NVRTC_SPEC"
}

vulkan() {
  if dpkg -s mesa-vulkan-drivers libvulkan1 >/dev/null 2>&1; then return 0; fi
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  log "apt-get install mesa-vulkan-drivers libvulkan1"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
}

chromium() {
  if dpkg -s chromium >/dev/null 2>&1; then return 0; fi
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  log "apt-get install chromium"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
}

slurm() {
  if dpkg -s slurm-wlm munge >/dev/null 2>&1; then return 0; fi
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  log "apt-get install slurm-wlm munge"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
}

parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(all)
for p in "${parts[@]}"; do
  case "$p" in
    core) core ;;
    torch) torch ;;
    nvrtc) nvrtc ;;
    vulkan) vulkan ;;
    chromium) chromium ;;
    slurm) slurm ;;
    all) core; torch; nvrtc; vulkan; chromium; slurm ;;
    *) log "unknown part '$p' (core, torch, nvrtc, vulkan, chromium, slurm, all)"; exit 2 ;;
  esac
done
log "ready: ${parts[*]}"
