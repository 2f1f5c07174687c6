#!/usr/bin/env bash
# A single-node Slurm cluster on loopback, for tests and for trying the sweep scripts
# (scripts/setup.sh slurm installs Slurm and MUNGE). munged, slurmctld and slurmd keep
# everything under DIR: config, state, spool, logs, munge key and socket, pid files. The
# system's /etc/slurm, /etc/munge and any running munged are never touched.
#
#   scripts/slurm/local_cluster.sh start DIR    # waits until the node is idle
#   export SLURM_CONF=DIR/slurm.conf             # (start prints it; also in DIR/env)
#   sbatch --wrap hostname
#   scripts/slurm/local_cluster.sh stop DIR     # cancels the jobs, stops the daemons by pid
#   scripts/slurm/local_cluster.sh status DIR   # exit 0 when all three daemons run
#
# start is idempotent: with a healthy cluster in DIR it only prints its environment;
# after a crash it stops what is left (by the pids recorded in DIR) and starts afresh,
# forgetting the old jobs. The node gets LOCAL_SLURM_CPUS CPUs (default: this machine's)
# and LOCAL_SLURM_MEM_MB of memory (default: this machine's), accepted even where they
# differ from the hardware (SlurmdParameters=config_overrides). Runs as root (SlurmUser).
set -euo pipefail

log() { printf '[local_cluster] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

cmd="${1:-}"
[[ $# -eq 2 && $cmd =~ ^(start|stop|status)$ ]] ||
  { echo "usage: local_cluster.sh start|stop|status DIR" >&2; exit 2; }
mkdir -p "$2"
dir="$(cd "$2" && pwd)"
conf="$dir/slurm.conf"
node=simtrain1
daemons=(munged slurmctld slurmd)

# The pid recorded for daemon $1 (its own pid file first, then DIR/pids), if that process
# is alive (not a zombie) and is that daemon of this DIR (so a reused pid is never hit).
pid_of() {
  local name=$1 pid="" f
  for f in "$dir/run/$name.pid" "$dir/pids"; do
    [[ -f $f ]] || continue
    if [[ $f == */pids ]]; then
      pid=$(awk -v n="$name" '$1 == n { print $2 }' "$f")
    else
      pid=$(tr -dc 0-9 <"$f")
    fi
    [[ -n $pid ]] && ours "$pid" "$name" && { echo "$pid"; return 0; }
  done
  return 1
}

# ours PID NAME: PID is a live NAME process started with a path under DIR.
ours() {
  local pid=$1 name=$2 state
  [[ -r /proc/$pid/cmdline ]] || return 1
  state=$(awk '/^State:/ { print $2 }' "/proc/$pid/status" 2>/dev/null) || return 1
  [[ $state != Z && $state != X ]] || return 1
  [[ $(tr '\0' ' ' <"/proc/$pid/cmdline") == *"$name"*"$dir/"* ]]
}

alive() {
  local state
  [[ -d /proc/$1 ]] || return 1
  state=$(awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null) || return 1
  [[ $state != Z && $state != X ]]
}

# kill_wait PID...: SIGTERM, up to $grace seconds (default 20) for them to exit, then
# SIGKILL.
kill_wait() {
  local p i
  [[ $# -gt 0 ]] || return 0
  kill -TERM "$@" 2>/dev/null || true
  for ((i = 0; i < ${grace:-20} * 10; i++)); do
    local left=()
    for p in "$@"; do alive "$p" && left+=("$p"); done
    [[ ${#left[@]} -eq 0 ]] && return 0
    sleep 0.1
  done
  log "still running after SIGTERM, killing: ${left[*]}"
  kill -KILL "${left[@]}" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    local rest=()
    for p in "${left[@]}"; do alive "$p" && rest+=("$p"); done
    [[ ${#rest[@]} -eq 0 ]] && return 0
    sleep 0.1
  done
  die "could not stop: ${rest[*]}"
}

running() {
  local d
  for d in "${daemons[@]}"; do pid_of "$d" >/dev/null || return 1; done
}

# Processes of this cluster's jobs left behind by a crashed slurmd: step daemons and job
# processes whose environment names this cluster's slurm.conf (never this script or its
# callers).
job_leftovers() {
  local e pid skip=" $$ " p=$$
  while [[ $p -gt 1 ]]; do
    p=$(awk '/^PPid:/ { print $2 }' "/proc/$p/status" 2>/dev/null) || break
    skip+="$p "
  done
  for e in /proc/[0-9]*/environ; do
    pid=${e#/proc/}; pid=${pid%/environ}
    [[ $skip == *" $pid "* ]] && continue
    local env
    env=$(tr '\0' '\n' 2>/dev/null <"$e") || continue
    grep -qxF "SLURM_CONF=$conf" <<<"$env" || continue
    if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == slurmstepd ]] ||
      grep -q '^SLURM_JOB_ID=' <<<"$env"; then
      alive "$pid" && echo "$pid"
    fi
  done
}

stop() {
  local d pid
  if pid_of slurmctld >/dev/null && pid_of munged >/dev/null; then
    # Cancel every job first, so slurmd ends their processes.
    local jobs
    jobs=$(SLURM_CONF=$conf timeout 10 squeue -h -o %A 2>/dev/null | sort -u) || jobs=""
    if [[ -n $jobs ]]; then
      log "cancelling jobs: $(echo $jobs)"
      # shellcheck disable=SC2086
      SLURM_CONF=$conf timeout 10 scancel $jobs 2>/dev/null || true
      for ((i = 0; i < 300; i++)); do
        [[ -z $(SLURM_CONF=$conf timeout 10 squeue -h -o %A 2>/dev/null) ]] && break
        sleep 0.1
      done
    fi
  fi
  for d in slurmd slurmctld; do
    if pid=$(pid_of "$d"); then log "stopping $d ($pid)"; kill_wait "$pid"; fi
  done
  mapfile -t left < <(job_leftovers)
  if [[ ${#left[@]} -gt 0 ]]; then log "stopping leftover job processes: ${left[*]}"; grace=3 kill_wait "${left[@]}"; fi
  if pid=$(pid_of munged); then log "stopping munged ($pid)"; kill_wait "$pid"; fi
  rm -f "$dir/pids"
}

free_port() {
  local p i
  for ((i = 0; i < 100; i++)); do
    p=$((20000 + RANDOM % 40000))
    [[ " $* " == *" $p "* ]] && continue
    # Nothing listens when a connection is refused.
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  die "no free port found"
}

write_conf() {
  local ctld_port=$1 slurmd_port=$2
  local cpus="${LOCAL_SLURM_CPUS:-$(nproc)}"
  local mem="${LOCAL_SLURM_MEM_MB:-$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)}"
  : >"$dir/plugstack.conf"
  cat >"$conf" <<EOF
# Written by scripts/slurm/local_cluster.sh: one node on loopback, all state under $dir.
ClusterName=simtrain-local
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/run/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$dir/plugstack.conf
TmpFS=$dir/tmp
MailProg=/bin/true
# No cgroups (none in a container): processes tracked by parentage, no task binding,
# no accounting.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=512
# The declared node is accepted whatever the hardware says.
SlurmdParameters=config_overrides
ReturnToService=2
DependencyParameters=kill_invalid_depend
MinJobAge=3600
KillWait=5
SlurmdTimeout=60
InactiveLimit=0
NodeName=$node NodeAddr=127.0.0.1 NodeHostname=$(hostname -s) CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
}

# wait_for SECONDS WHAT COMMAND...: until COMMAND succeeds.
wait_for() {
  local secs=$1 what=$2 i; shift 2
  for ((i = 0; i < secs * 5; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  log "timed out after ${secs}s waiting for $what"
  local f
  for f in "$dir"/log/*.log; do [[ -f $f ]] && { log "--- $f"; tail -n 30 "$f" >&2; }; done
  return 1
}

node_idle() { [[ $(SLURM_CONF=$conf sinfo -h -n "$node" -o %T 2>/dev/null) == idle ]]; }

print_env() {
  printf 'export SLURM_CONF=%q\n' "$conf" >"$dir/env"
  echo "SLURM_CONF=$conf"
}

start() {
  local b
  [[ $(id -u) == 0 ]] || die "needs root (SlurmUser=root; slurmd starts the jobs)"
  for b in munged munge unmunge slurmctld slurmd sinfo squeue scancel; do
    command -v "$b" >/dev/null || PATH=$PATH:/usr/sbin:/sbin command -v "$b" >/dev/null ||
      die "$b not found: run scripts/setup.sh slurm"
  done
  export PATH=$PATH:/usr/sbin:/sbin
  if running && node_idle; then
    log "already running in $dir"
    print_env
    return 0
  fi
  stop
  mkdir -p "$dir"/{munge,state,spool/$node,run,log,tmp}
  # munged wants its socket's folder open to all, its key's closed.
  chmod 755 "$dir/run"
  chmod 700 "$dir/munge"

  local key="$dir/munge/munge.key"
  if [[ ! -s $key ]]; then
    if command -v mungekey >/dev/null; then
      mungekey --create --keyfile="$key" >/dev/null
    else
      dd if=/dev/urandom of="$key" bs=1024 count=1 status=none
    fi
  fi
  chmod 600 "$key"
  local sock="$dir/run/munge.socket"
  # --force: the socket's parent folders (a test's private temporary folder) need not be
  # open to all; only root uses this cluster.
  munged --force --socket="$sock" --key-file="$key" --pid-file="$dir/run/munged.pid" \
    --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed" \
    </dev/null >>"$dir/log/munged.out" 2>&1 ||
    { cat "$dir/log/munged.out" "$dir/log/munged.log" >&2 2>/dev/null; die "munged failed to start"; }
  wait_for 10 munged bash -c 'munge -n -S "$1" | unmunge -S "$1"' _ "$sock"

  local ctld_port slurmd_port
  ctld_port=$(free_port)
  slurmd_port=$(free_port "$ctld_port")
  write_conf "$ctld_port" "$slurmd_port"
  export SLURM_CONF=$conf
  # -c: no state from an earlier run (its jobs died with it).
  slurmctld -c -f "$conf" </dev/null >>"$dir/log/slurmctld.out" 2>&1 ||
    { cat "$dir/log/slurmctld.out" >&2; die "slurmctld failed to start"; }
  wait_for 30 slurmctld bash -c 'scontrol ping | grep -q UP'
  wait_for 5 slurmctld scontrol show config
  slurmd -N "$node" -f "$conf" </dev/null >>"$dir/log/slurmd.out" 2>&1 ||
    { cat "$dir/log/slurmd.out" >&2; die "slurmd failed to start"; }
  wait_for 60 "node $node to be idle" node_idle || { stop; exit 1; }

  local d pid
  : >"$dir/pids.new"
  for d in "${daemons[@]}"; do
    pid=$(pid_of "$d") || { stop; die "$d is not running"; }
    echo "$d $pid" >>"$dir/pids.new"
  done
  mv "$dir/pids.new" "$dir/pids"
  log "running in $dir (slurmctld :$ctld_port, slurmd :$slurmd_port): $(tr '\n' ' ' <"$dir/pids")"
  print_env
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  status)
    if running; then
      for d in "${daemons[@]}"; do echo "$d $(pid_of "$d")"; done
    else
      exit 1
    fi
    ;;
esac
