#!/usr/bin/env bash
# The main job on the embedded default: a synthetic universe → day caches → verification →
# scan → a short training run → evaluation on held-out days → plots → summary
# (data/pipeline/summary.json). Installs what it needs and builds first (scripts/build.sh;
# incremental). Extra arguments go to `sim-train pipeline`.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(scripts/build.sh)
exec "$bin/sim-train" pipeline "$@"
