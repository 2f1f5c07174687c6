#!/usr/bin/env bash
# Renders the walk-forward Kubernetes manifests (templates beside this script) to stdout,
# with checked values: the same resources as scripts/slurm/submit_walk_forward.sh.
#
#   scripts/k8s/render.sh job|merge [OPTIONS] | kubectl apply -f -
#
#   --shards N     completions = parallelism = --shards     WF_SHARDS  default 8
#   --cpus N       CPUs requested per shard pod             WF_CPUS    default 2 (the presets' train.threads)
#   --mem SIZE     memory per pod (request and limit)      WF_MEM     default 4G (4G = 4Gi; 500M, 4Gi too)
#   --time T       time limit per pod (Slurm's formats:     WF_TIME    default 12:00:00
#                  90, 1:30:00, 1-12) → activeDeadlineSeconds
#   --image IMG    image holding sim-train                  WF_IMAGE   default sim-train:latest
#   --plan DIR     the plan dir, on the volume              WF_PLAN    default /data/wf
#   --mount DIR    where the volume is mounted              WF_MOUNT   default /data
#   --claim NAME   the PersistentVolumeClaim of the volume  WF_CLAIM   default sim-train-data
#   --name NAME    the Job's name (merge: NAME-merge)       WF_NAME    default sim-train-walk-forward
#
# Options win over the variables. Render the merge with the same values as the job.
# Exit 2 on a bad value, naming it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
usage="usage: render.sh job|merge [--shards N] [--cpus N] [--mem SIZE] [--time T] [--image IMG] [--plan DIR] [--mount DIR] [--claim NAME] [--name NAME]"
die() { echo "render.sh: $*" >&2; exit 2; }

what="${1:-}"
case "$what" in
  job) template="$here/walk-forward-job.yaml" ;;
  merge) template="$here/walk-forward-merge.yaml" ;;
  -h | --help) echo "$usage"; exit 0 ;;
  *) die "$usage" ;;
esac
shift

shards="${WF_SHARDS:-8}"
cpus="${WF_CPUS:-2}"
mem="${WF_MEM:-4G}"
time_limit="${WF_TIME:-12:00:00}"
image="${WF_IMAGE:-sim-train:latest}"
plan="${WF_PLAN:-/data/wf}"
mount="${WF_MOUNT:-/data}"
claim="${WF_CLAIM:-sim-train-data}"
name="${WF_NAME:-sim-train-walk-forward}"
while [[ $# -gt 0 ]]; do
  opt="$1"
  if [[ $opt == --*=* ]]; then
    val="${opt#*=}"; opt="${opt%%=*}"; shift
  else
    [[ $opt == -h || $opt == --help ]] && { echo "$usage"; exit 0; }
    [[ $# -ge 2 ]] || die "$opt needs a value ($usage)"
    val="$2"; shift 2
  fi
  case "$opt" in
    --shards) shards="$val" ;;
    --cpus) cpus="$val" ;;
    --mem) mem="$val" ;;
    --time) time_limit="$val" ;;
    --image) image="$val" ;;
    --plan) plan="$val" ;;
    --mount) mount="$val" ;;
    --claim) claim="$val" ;;
    --name) name="$val" ;;
    *) die "unknown option $opt ($usage)" ;;
  esac
done

[[ $shards =~ ^[1-9][0-9]{0,5}$ ]] || die "--shards must be a positive number, not '$shards'"
[[ $cpus =~ ^[1-9][0-9]{0,4}$ ]] || die "--cpus must be a positive number, not '$cpus'"
# Slurm's sizes are binary (4G = 4096M; a bare number is megabytes): Kubernetes' Ki/Mi/Gi/Ti.
[[ $mem =~ ^([1-9][0-9]*)([KMGT]?)i?$ ]] || die "--mem must be a size like 500M or 4G, not '$mem'"
memory="${BASH_REMATCH[1]}${BASH_REMATCH[2]:-M}i"

# Slurm's time formats → seconds: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S.
seconds() {
  local t=$1 d=0 a b c
  if [[ $t =~ ^([0-9]+)-([0-9]+)(:([0-9]+))?(:([0-9]+))?$ ]]; then
    d=${BASH_REMATCH[1]} a=${BASH_REMATCH[2]} b=${BASH_REMATCH[4]:-0} c=${BASH_REMATCH[6]:-0}
    echo $((10#$d * 86400 + 10#$a * 3600 + 10#$b * 60 + 10#$c))
  elif [[ $t =~ ^([0-9]+)$ ]]; then
    echo $((10#$t * 60))
  elif [[ $t =~ ^([0-9]+):([0-9]+)$ ]]; then
    echo $((10#${BASH_REMATCH[1]} * 60 + 10#${BASH_REMATCH[2]}))
  elif [[ $t =~ ^([0-9]+):([0-9]+):([0-9]+)$ ]]; then
    echo $((10#${BASH_REMATCH[1]} * 3600 + 10#${BASH_REMATCH[2]} * 60 + 10#${BASH_REMATCH[3]}))
  else
    return 1
  fi
}
deadline=$(seconds "$time_limit") && [[ $deadline -gt 0 ]] ||
  die "--time must be a Slurm time like 90, 1:30:00 or 1-12, not '$time_limit'"

[[ $image =~ ^[A-Za-z0-9][A-Za-z0-9._/:@-]*$ ]] || die "bad --image '$image'"
[[ $mount =~ ^/[A-Za-z0-9._/-]*$ ]] || die "--mount must be an absolute path, not '$mount'"
[[ $plan =~ ^/[A-Za-z0-9._/-]*$ ]] || die "--plan must be an absolute path, not '$plan'"
mount="${mount%/}"
[[ $plan == "$mount"/?* ]] || die "--plan '$plan' is not on the volume mounted at '${mount:-/}'"
[[ -n $mount ]] || mount=/
[[ $claim =~ ^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$ ]] || die "bad --claim '$claim' (a DNS name)"
[[ $name =~ ^[a-z0-9]([-a-z0-9]{0,45}[a-z0-9])?$ ]] || die "bad --name '$name' (a DNS label of at most 47 characters)"

text="$(<"$template")"
for kv in "NAME=$name" "SHARDS=$shards" "CPUS=$cpus" "MEMORY=$memory" \
  "DEADLINE_SECONDS=$deadline" "IMAGE=$image" "PLAN=$plan" "MOUNT=$mount" "CLAIM=$claim"; do
  key="${kv%%=*}" val="${kv#*=}"
  text="${text//"\${$key}"/"$val"}"
done
[[ $text != *'${'* ]] || die "$template: a value was left unfilled"
printf '%s\n' "$text"
