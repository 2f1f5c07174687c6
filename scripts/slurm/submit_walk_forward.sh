#!/usr/bin/env bash
# Plans a walk-forward sweep, submits its shards as a Slurm array and the merge as a job
# that starts when every shard succeeded.
#
#   scripts/slurm/submit_walk_forward.sh CONFIG PLAN_DIR SHARDS [CACHE]
#
# The plan must be written where every node can read it; sim-train (or $SIM_TRAIN) must
# run on the nodes. Extra sbatch options: SBATCH_* environment variables.
set -euo pipefail
config="${1:?usage: submit_walk_forward.sh CONFIG PLAN_DIR SHARDS [CACHE]}"
plan="${2:?plan dir}"
shards="${3:?number of shards}"
bin="${SIM_TRAIN:-sim-train}"
here="$(cd "$(dirname "$0")" && pwd)"
cache_args=()
if [[ $# -ge 4 ]]; then cache_args=(--cache "$4"); fi
"$bin" --config "$config" walk-forward plan --out "$plan" "${cache_args[@]}"
array=$(sbatch --parsable --array="0-$((shards - 1))" "$here/walk_forward.sbatch" "$plan")
merge=$(sbatch --parsable --job-name=sim-train-wf-merge --dependency="afterok:$array" \
  --wrap "\"$bin\" walk-forward merge --plan \"$plan\"")
echo "shards: job $array (array 0-$((shards - 1))); merge: job $merge; report: $plan/report/report.html"
