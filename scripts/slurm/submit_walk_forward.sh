#!/usr/bin/env bash
# Plans a walk-forward sweep, submits its shards as a Slurm array and the merge as a job
# that starts when every shard succeeded.
#
#   scripts/slurm/submit_walk_forward.sh [OPTIONS] CONFIG PLAN_DIR SHARDS [CACHE]
#
#   --cpus N        CPUs per shard            WF_CPUS       default 2 (the presets' train.threads)
#   --mem SIZE      memory per shard          WF_MEM        default 4G (Slurm's units: 500M, 4G; 4Gi too)
#   --time T        time limit per shard      WF_TIME       default 12:00:00 (Slurm's formats)
#   --partition P   partition                 WF_PARTITION  default: the cluster's default
#   --account A     account                   WF_ACCOUNT    default: the user's default
#   --logs DIR      the jobs' output files    WF_LOGS       default: the current folder
#   --parsable      print only "ARRAY_JOB_ID MERGE_JOB_ID" on stdout
#
# Options win over the variables. They go on sbatch's command line, so they override the
# #SBATCH defaults in walk_forward.sbatch. The merge job gets 1 CPU and the same memory,
# time, partition and account. Other sbatch options: SBATCH_* variables (sbatch reads
# them for both jobs). The plan must be written where every node can read it; sim-train
# (or $SIM_TRAIN) must run on the nodes. Prints the job ids: the last line of stdout is
#   shards: job A (array 0-N-1); merge: job M; report: PLAN_DIR/report/report.html
set -euo pipefail
usage="usage: submit_walk_forward.sh [--cpus N] [--mem SIZE] [--time T] [--partition P] [--account A] [--logs DIR] [--parsable] CONFIG PLAN_DIR SHARDS [CACHE]"
die() { echo "submit_walk_forward.sh: $*" >&2; exit 2; }

cpus="${WF_CPUS:-2}"
mem="${WF_MEM:-4G}"
time_limit="${WF_TIME:-12:00:00}"
partition="${WF_PARTITION:-}"
account="${WF_ACCOUNT:-}"
logs="${WF_LOGS:-}"
parsable=0
pos=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --cpus | --mem | --time | --partition | --account | --logs)
      [[ $# -ge 2 ]] || die "$1 needs a value"
      case "$1" in
        --cpus) cpus="$2" ;;
        --mem) mem="$2" ;;
        --time) time_limit="$2" ;;
        --partition) partition="$2" ;;
        --account) account="$2" ;;
        --logs) logs="$2" ;;
      esac
      shift 2 ;;
    --cpus=* | --mem=* | --time=* | --partition=* | --account=* | --logs=*)
      v="${1#*=}"
      case "$1" in
        --cpus=*) cpus="$v" ;;
        --mem=*) mem="$v" ;;
        --time=*) time_limit="$v" ;;
        --partition=*) partition="$v" ;;
        --account=*) account="$v" ;;
        --logs=*) logs="$v" ;;
      esac
      shift ;;
    --parsable) parsable=1; shift ;;
    -h | --help) echo "$usage"; exit 0 ;;
    --) shift; pos+=("$@"); break ;;
    -*) die "unknown option $1 ($usage)" ;;
    *) pos+=("$1"); shift ;;
  esac
done
[[ ${#pos[@]} -ge 3 && ${#pos[@]} -le 4 ]] || die "$usage"
config="${pos[0]}"
plan="${pos[1]}"
shards="${pos[2]}"
[[ $shards =~ ^[1-9][0-9]*$ ]] || die "SHARDS must be a positive number, not '$shards'"
[[ $cpus =~ ^[1-9][0-9]*$ ]] || die "--cpus must be a positive number, not '$cpus'"
[[ $mem =~ ^[1-9][0-9]*([KMGT]i?)?$ ]] || die "--mem must be a size like 500M or 4G, not '$mem'"
mem="${mem%i}" # Slurm's K/M/G/T are already binary (4G = 4096M)
[[ $time_limit =~ ^[0-9:-]+$ ]] || die "--time must be a Slurm time like 90, 1:30:00 or 1-12, not '$time_limit'"
[[ -z $partition || $partition =~ ^[A-Za-z0-9_.,-]+$ ]] || die "bad --partition '$partition'"
[[ -z $account || $account =~ ^[A-Za-z0-9_.-]+$ ]] || die "bad --account '$account'"

bin="${SIM_TRAIN:-sim-train}"
here="$(cd "$(dirname "$0")" && pwd)"
cache_args=()
if [[ ${#pos[@]} -ge 4 ]]; then cache_args=(--cache "${pos[3]}"); fi

common=(--parsable "--mem=$mem" "--time=$time_limit")
[[ -n $partition ]] && common+=("--partition=$partition")
[[ -n $account ]] && common+=("--account=$account")
shard_out=() merge_out=()
if [[ -n $logs ]]; then
  mkdir -p "$logs"
  logs="$(cd "$logs" && pwd)"
  shard_out=("--output=$logs/%x-%A_%a.out")
  merge_out=("--output=$logs/%x-%j.out")
fi

# The plan's summary goes to stderr: stdout only says what was submitted.
"$bin" --config "$config" walk-forward plan --out "$plan" "${cache_args[@]}" >&2
# sbatch --parsable prints "id" or "id;cluster".
array=$(sbatch "${common[@]}" "--cpus-per-task=$cpus" "${shard_out[@]}" \
  --array="0-$((shards - 1))" "$here/walk_forward.sbatch" "$plan")
array="${array%%;*}"
merge=$(sbatch "${common[@]}" --cpus-per-task=1 "${merge_out[@]}" \
  --job-name=sim-train-wf-merge --dependency="afterok:$array" \
  --wrap "$(printf '%q ' "$bin" walk-forward merge --plan "$plan")")
merge="${merge%%;*}"
if [[ $parsable == 1 ]]; then
  echo "$array $merge"
else
  echo "shards: job $array (array 0-$((shards - 1))); merge: job $merge; report: $plan/report/report.html"
fi
