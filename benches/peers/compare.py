#!/usr/bin/env python3
"""Runs our benchmark and its peer in turn (A B A B ..., the same thread count) and prints
ONE JSON object: each side's runs, their medians, the ratio ours / peer, the exact
commands, the date, the machine (CPU model, cores) and the memcpy bandwidth of the sitting.

    .venv/bin/python benches/peers/compare.py train|env|all [--rounds N] [--threads T] [--quick]
                                                          [--bin PATH] [--lstm cleanrl|packed]
                                                          [--numpy-threads K] [--work DIR]

- `train`: ours `sim-train bench train --device cpu --envs 1024 --steps 64 --json`
  (`--set train.threads=T`; metric `train_steps_per_s`) against `ppo_lstm.py --envs 1024
  --steps 64 --updates 3 --threads T` (metric `steps_per_s`), both one warm-up update then
  3 timed ones.
- `env`: ours `sim-train bench env --backend cpu --envs 4096 --json` (RAYON_NUM_THREADS=T,
  the default 2,000 timed steps over `bench.symbols x bench.days` synthetic days: 20 x 10
  of 1 s bars) against `numpy_env.py --envs 4096 --steps 2000` over the same days (metric
  `env_steps_per_s` on both sides). NumPy's element-wise loops are single-threaded and
  sharding the environments over a thread pool ran slower here (GIL hand-offs every
  operation), so the NumPy peer runs `--threads 1` unless `--numpy-threads` says otherwise;
  the JSON records both thread counts.
- First, `sim-train bench cache --json --dir WORK` runs once: it reports
  `memcpy_gb_per_s` (the machine's copy bandwidth in this sitting) and leaves in
  WORK/bench-cache the synthetic universe that `bench env` builds (same function, config
  and seed), which the NumPy peer then reads.
- `--quick`: tiny sizes (2 symbols x 1 day; train 64 envs x T 16, 1 update; env 256 envs
  x 200 steps) for a smoke test of the whole path; its figures mean nothing.

The ratio is ours / peer of the medians: above 1 ours is faster. Issue 21's targets:
train >= 1.5, env (4,096 envs, the default 200 days) >= 5.

The binary: `--bin PATH`, else `$CARGO_TARGET_DIR/release/sim-train`, else
`~/.cache/sim-train/target/release/sim-train` (where scripts/build.sh puts it), else
`target/release/sim-train`. `bench train` needs libtorch: `sim-train` hands it to the
`sim-train-torch` beside it.
"""

import argparse
import datetime
import json
import os
import platform

import shutil
import statistics
import subprocess
import sys
import tempfile

from machine import cpu_model

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def log(msg):
    print(f"compare: {msg}", file=sys.stderr, flush=True)


def find_bin(explicit):
    cands = []
    if explicit:
        cands.append(explicit)
    else:
        if os.environ.get("CARGO_TARGET_DIR"):
            cands.append(os.path.join(os.environ["CARGO_TARGET_DIR"], "release", "sim-train"))
        cands.append(os.path.expanduser("~/.cache/sim-train/target/release/sim-train"))
        cands.append(os.path.join(REPO, "target", "release", "sim-train"))
    for c in cands:
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return os.path.abspath(c)
    raise SystemExit(
        "compare: no sim-train binary found (tried " + ", ".join(cands) + "): build it with scripts/build.sh or pass --bin PATH"
    )


def run_json(cmd, env_extra, timeout):
    """Runs `cmd` with `env_extra` added to the environment; returns its stdout as JSON."""
    env = dict(os.environ)
    env.update(env_extra)
    shown = " ".join(f"{k}={v}" for k, v in env_extra.items()) + (" " if env_extra else "") + " ".join(cmd)
    log(f"run: {shown}")
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    if p.returncode != 0:
        sys.stderr.write(p.stderr[-4000:])
        raise SystemExit(f"compare: `{shown}` exited {p.returncode}")
    out = p.stdout.strip()
    try:
        return json.loads(out)
    except json.JSONDecodeError:
        # one JSON line at the end (the peers) or one pretty document (ours)
        return json.loads(out.splitlines()[-1])


def shown(cmd, env_extra):
    return " ".join(f"{k}={v}" for k, v in env_extra.items()) + (" " if env_extra else "") + " ".join(cmd)


def side(name, cmd, env_extra, metric, keep):
    return {"name": name, "cmd": cmd, "env": env_extra, "metric": metric, "keep": keep, "runs": []}


def ab(sides, rounds, timeout):
    for r in range(rounds):
        for s in sides:
            d = run_json(s["cmd"], s["env"], timeout)
            s["runs"].append({k: d.get(k) for k in [s["metric"]] + s["keep"]})
            log(f"round {r + 1}/{rounds} {s['name']}: {s['metric']} = {d.get(s['metric']):,.0f}")


def summary(ours, peer):
    out = {}
    for s in (ours, peer):
        vals = [x[s["metric"]] for x in s["runs"]]
        out[s["name"]] = {
            "command": shown(s["cmd"], s["env"]),
            "metric": s["metric"],
            "runs": vals,
            "median": statistics.median(vals),
            "min": min(vals),
            "max": max(vals),
            "details": s["runs"],
        }
    out["ratio"] = out["ours"]["median"] / out["peer"]["median"]
    out["ratio_definition"] = "median(ours) / median(peer); > 1: ours is faster"
    return out


def main():
    ap = argparse.ArgumentParser(description="ours vs the peers, A B A B, one JSON object")
    ap.add_argument("what", choices=["train", "env", "all"])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="threads of ours and of the PyTorch peer")
    ap.add_argument("--numpy-threads", type=int, default=1, help="shards / threads of the NumPy peer (see the docstring)")
    ap.add_argument("--lstm", choices=["cleanrl", "packed"], default="cleanrl", help="the PyTorch peer's sequence replay")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test, not a measurement")
    ap.add_argument("--bin", help="the sim-train binary")
    ap.add_argument("--work", help="folder for the synthetic cache (default: a temporary folder, removed)")
    ap.add_argument("--timeout", type=int, default=900, help="seconds allowed to each run")
    ap.add_argument("--set", dest="ours_set", action="append", default=[], metavar="KEY=VALUE",
                    help="a config override for ours' bench train (repeatable), e.g. train.precision='\"bf16\"'")
    a = ap.parse_args()
    if a.rounds < 1 or a.threads < 1 or a.numpy_threads < 1:
        raise SystemExit("compare: --rounds, --threads and --numpy-threads must be at least 1")
    bin_ = find_bin(a.bin)
    py = sys.executable
    T = str(a.threads)
    quick_data = ["--set", "bench.symbols=2", "--set", "bench.days=1"] if a.quick else []
    try:
        version = subprocess.run([bin_, "--version"], capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        version = None
    try:
        commit = subprocess.run(["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=30).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=30).stdout.strip())
    except OSError:
        commit, dirty = None, None

    work = a.work or tempfile.mkdtemp(prefix="sim-train-peers-")
    os.makedirs(work, exist_ok=True)
    try:
        # The sitting's memcpy bandwidth, and the synthetic universe bench env builds.
        cache_cmd = [bin_, "-q"] + quick_data + ["bench", "cache", "--json", "--dir", work]
        if a.quick:
            cache_cmd[2:2] = ["--set", "bench.lookups=1000", "--set", "bench.scan_repeats=3"]
        c = run_json(cache_cmd, {}, a.timeout)
        result = {
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "machine": {
                "cpu": cpu_model(),
                "cores": os.cpu_count(),
                "os": f"{platform.system()} {platform.release()}",
                "memcpy_gb_per_s": c["memcpy_gb_per_s"],
                "memcpy_command": shown(cache_cmd, {}),
            },
            "binary": bin_,
            "binary_version": version,
            "commit": commit,
            "worktree_dirty": dirty,
            "python": platform.python_version(),
            "quick": a.quick,
            "rounds": a.rounds,
            "order": "A B A B: ours then the peer, each round",
            "threads": a.threads,
        }
        cache = os.path.join(work, "bench-cache")

        if a.what in ("train", "all"):
            envs, steps, updates = ("64", "16", "1") if a.quick else ("1024", "64", "3")
            ours = side(
                "ours",
                [bin_, "-q"] + quick_data + [x for kv in a.ours_set for x in ("--set", kv)]
                + ["--set", f"train.threads={T}", "bench", "train", "--device", "cpu",
                 "--envs", envs, "--steps", steps] + (["--updates", updates] if a.quick else []) + ["--json"],
                {"RAYON_NUM_THREADS": T},
                "train_steps_per_s",
                ["env_s", "inference_s", "learn_s", "update_s", "threads", "envs", "rollout_steps", "updates", "precision", "syncs_per_update"],
            )
            peer = side(
                "peer",
                [py, os.path.join(HERE, "ppo_lstm.py"), "--envs", envs, "--steps", steps, "--updates", updates,
                 "--threads", T, "--lstm", a.lstm],
                {"OMP_NUM_THREADS": T, "MKL_NUM_THREADS": T},
                "steps_per_s",
                ["env_s", "inference_s", "learn_s", "update_s", "threads", "interop_threads", "envs", "steps", "updates",
                 "lstm", "episode_ends_per_update", "torch"],
            )
            ab([ours, peer], a.rounds, a.timeout)
            result["train"] = summary(ours, peer)
            result["train"]["peer_is"] = "benches/peers/ppo_lstm.py: CleanRL ppo_atari_lstm.py-style PyTorch PPO-LSTM, same shapes and hyperparameters, trivial market"

        if a.what in ("env", "all"):
            envs, steps = ("256", "200") if a.quick else ("4096", "2000")
            ours = side(
                "ours",
                [bin_, "-q"] + quick_data + ["bench", "env", "--backend", "cpu", "--envs", envs]
                + (["--steps", steps] if a.quick else []) + ["--json"],
                {"RAYON_NUM_THREADS": T},
                "env_steps_per_s",
                ["threads", "envs", "steps", "days", "bars", "episodes", "simd", "elapsed_s"],
            )
            nt = str(a.numpy_threads)
            peer = side(
                "peer",
                [py, os.path.join(HERE, "numpy_env.py"), "--cache", cache, "--envs", envs, "--steps", steps,
                 "--threads", nt],
                {"OMP_NUM_THREADS": nt, "OPENBLAS_NUM_THREADS": nt, "MKL_NUM_THREADS": nt},
                "env_steps_per_s",
                ["threads", "envs", "steps", "days", "bars", "episodes", "elapsed_s", "numpy"],
            )
            ab([ours, peer], a.rounds, a.timeout)
            result["env"] = summary(ours, peer)
            result["env"]["peer_is"] = "benches/peers/numpy_env.py: NumPy struct-of-arrays step of the same market environment over the same days"
            result["env"]["peer_threads"] = a.numpy_threads
        print(json.dumps(result, indent=2))
    finally:
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
