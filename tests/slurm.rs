//! The walk-forward Slurm scripts against a real cluster: `scripts/slurm/local_cluster.sh`
//! starts a single-node Slurm (munged, slurmctld, slurmd on loopback, everything in a
//! temporary folder), `scripts/slurm/submit_walk_forward.sh` submits a sweep's shards as
//! an array job and the merge as a dependent job, and the merged report must equal one
//! process's byte for byte. The daemons are stopped by pid whatever happens. Without
//! Slurm installed (`scripts/setup.sh slurm`) the test prints a SKIP line and passes,
//! unless `SIM_TRAIN_REQUIRE_SLURM=1`. Also: the submit script's resources reach sbatch.

mod common;

use common::sim_train;
use common::sweep::{SWEEP, assert_same_reports, universe};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long the sharded sweep may take on the cluster before the test gives up.
const SWEEP_TIMEOUT: Duration = Duration::from_secs(30 * 60);

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts/slurm")
        .join(name)
}

/// What the cluster needs and is missing: root, or the first Slurm or MUNGE program not
/// installed.
fn missing_slurm() -> Option<&'static str> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().nth(1));
    if uid != Some("0") {
        return Some("root (the local cluster runs slurmd as root)");
    }
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .collect();
    [
        "munged",
        "munge",
        "slurmctld",
        "slurmd",
        "sbatch",
        "squeue",
        "scontrol",
        "sinfo",
    ]
    .into_iter()
    .find(|b| !dirs.iter().any(|d| d.join(b).is_file()))
}

/// A live process (a zombie is not: nobody may reap the daemons' exits).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("State:").map(|v| v.trim().to_string()))
        })
        .is_some_and(|s| !s.starts_with('Z') && !s.starts_with('X'))
}

/// Live processes (other than this one) whose environment names `conf`: the daemons'
/// step daemons and the jobs' processes.
fn processes_of(conf: &Path) -> Vec<u32> {
    let needle = format!("SLURM_CONF={}", conf.display()).into_bytes();
    let me = std::process::id();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if env.split(|b| *b == 0).any(|v| v == needle.as_slice()) && alive(pid) {
            out.push(pid);
        }
    }
    out
}

/// A single-node cluster in `dir`, stopped (by the pids it recorded) when dropped.
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
    pids: Vec<(String, u32)>,
    stopped: bool,
}

impl Cluster {
    fn start(dir: &Path) -> Cluster {
        let mut cluster = Cluster {
            dir: dir.to_path_buf(),
            conf: dir.join("slurm.conf"),
            pids: Vec::new(),
            stopped: false,
        };
        // The guard exists before the daemons do: a start that fails half way is stopped.
        let out = Command::new("bash")
            .arg(script("local_cluster.sh"))
            .arg("start")
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "local_cluster.sh start failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            cluster.daemon_logs()
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let conf = stdout
            .lines()
            .find_map(|l| l.strip_prefix("SLURM_CONF="))
            .unwrap_or_else(|| panic!("no SLURM_CONF in {stdout}"));
        assert_eq!(Path::new(conf), cluster.conf);
        let pids = std::fs::read_to_string(dir.join("pids")).unwrap();
        cluster.pids = pids
            .lines()
            .map(|l| {
                let (name, pid) = l.split_once(' ').unwrap();
                (name.to_string(), pid.parse().unwrap())
            })
            .collect();
        let names: Vec<&str> = cluster.pids.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["munged", "slurmctld", "slurmd"]);
        for (name, pid) in &cluster.pids {
            assert!(alive(*pid), "{name} ({pid}) is not running");
        }
        cluster
    }

    /// A Slurm client command against this cluster.
    fn client(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf);
        c
    }

    fn daemon_logs(&self) -> String {
        let mut s = String::new();
        for name in ["munged.log", "slurmctld.log", "slurmd.log"] {
            let text = std::fs::read_to_string(self.dir.join("log").join(name)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            s += &format!("--- {name} (last lines)\n");
            for l in tail.into_iter().rev() {
                s += l;
                s.push('\n');
            }
        }
        s
    }

    /// Stops the daemons by their pids; true when none of them, and no process of a job,
    /// is left running.
    fn stop(&mut self) -> Result<(), String> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let out = Command::new("bash")
            .arg(script("local_cluster.sh"))
            .arg("stop")
            .arg(&self.dir)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "local_cluster.sh stop failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let left: Vec<String> = self
            .pids
            .iter()
            .filter(|(_, pid)| alive(*pid))
            .map(|(n, pid)| format!("{n} ({pid})"))
            .chain(
                processes_of(&self.conf)
                    .into_iter()
                    .map(|p| format!("job process {p}")),
            )
            .collect();
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("still running after stop: {}", left.join(", ")))
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            let _ = writeln!(std::io::stderr(), "{e}");
        }
    }
}

/// Job states (`JobState=` of every job or array task) of `id`, by `scontrol show job`.
fn job_states(cluster: &Cluster, id: &str) -> Vec<String> {
    let out = cluster
        .client("scontrol")
        .args(["show", "job", "-o", id])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|f| f.strip_prefix("JobState="))
                .map(str::to_string)
        })
        .collect()
}

/// The jobs' output files and the daemons' logs, for a failure message.
fn all_logs(cluster: &Cluster, logs: &Path) -> String {
    let mut s = String::new();
    if let Ok(rd) = std::fs::read_dir(logs) {
        let mut paths: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            s += &format!(
                "--- {}\n{}\n",
                p.display(),
                std::fs::read_to_string(&p).unwrap_or_default()
            );
        }
    }
    let q = cluster
        .client("scontrol")
        .args(["show", "job"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    s + "--- scontrol show job\n" + &q + &cluster.daemon_logs()
}

#[test]
fn a_sweep_on_a_real_slurm_cluster_merges_to_the_single_process_report_byte_for_byte() {
    if let Some(b) = missing_slurm() {
        if std::env::var("SIM_TRAIN_REQUIRE_SLURM").as_deref() == Ok("1") {
            panic!("SIM_TRAIN_REQUIRE_SLURM=1 but this needs {b}: run scripts/setup.sh slurm");
        }
        let _ = writeln!(
            std::io::stderr(),
            "SKIP a_sweep_on_a_real_slurm_cluster: needs {b} (scripts/setup.sh slurm)"
        );
        return;
    }
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let cache = universe(tmp.path());
    let cfg = tmp.path().join("sweep.toml");
    std::fs::write(&cfg, SWEEP).unwrap();
    let (plan, single, logs) = (
        tmp.path().join("sharded"),
        tmp.path().join("single"),
        tmp.path().join("logs"),
    );

    let mut cluster = Cluster::start(&tmp.path().join("cluster"));
    let out = cluster
        .client("bash")
        .arg(script("submit_walk_forward.sh"))
        .args([
            "--parsable",
            "--cpus",
            "1",
            "--mem",
            "1G",
            "--time",
            "0:30:00",
        ])
        .args(["--partition", "local", "--logs"])
        .arg(&logs)
        .arg(&cfg)
        .arg(&plan)
        .arg("3")
        .arg(&cache)
        .env("SIM_TRAIN", assert_cmd::cargo::cargo_bin("sim-train"))
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "submit_walk_forward.sh failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        all_logs(&cluster, &logs)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let ids: Vec<&str> = stdout.split_whitespace().collect();
    let [array, merge] = ids[..] else {
        panic!("submit_walk_forward.sh --parsable printed {stdout:?}")
    };
    assert!(
        array.parse::<u64>().is_ok() && merge.parse::<u64>().is_ok(),
        "{stdout:?}"
    );

    // Until neither the shards nor the merge is pending or running.
    loop {
        let q = cluster
            .client("squeue")
            .args(["-h", "-o", "%i %T", "-j", &format!("{array},{merge}")])
            .output()
            .unwrap();
        let queued = String::from_utf8_lossy(&q.stdout).trim().to_string();
        if q.status.success() && queued.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < SWEEP_TIMEOUT,
            "the sweep did not finish in {SWEEP_TIMEOUT:?}: {queued}\n{}",
            all_logs(&cluster, &logs)
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let (shard_states, merge_states) = (job_states(&cluster, array), job_states(&cluster, merge));
    assert!(
        shard_states.len() == 3
            && shard_states.iter().all(|s| s == "COMPLETED")
            && merge_states == ["COMPLETED"],
        "shards {shard_states:?}, merge {merge_states:?}\n{}",
        all_logs(&cluster, &logs)
    );
    for k in 0..3 {
        let log = std::fs::read_to_string(logs.join(format!("sim-train-wf-{array}_{k}.out")))
            .unwrap_or_default();
        assert!(
            log.contains(&format!("shard {k}/3")),
            "task {k}: {log}\n{}",
            all_logs(&cluster, &logs)
        );
    }
    assert!(
        logs.join(format!("sim-train-wf-merge-{merge}.out"))
            .is_file(),
        "{}",
        all_logs(&cluster, &logs)
    );
    cluster.stop().unwrap();

    sim_train()
        .args(["-q", "--config"])
        .arg(&cfg)
        .args(["walk-forward", "--cache"])
        .arg(&cache)
        .arg("--out")
        .arg(&single)
        .assert()
        .success();
    assert_same_reports(&plan, &single);
    let _ = writeln!(
        std::io::stderr(),
        "slurm sweep: 3 shards and the merge on a local cluster, {:.0} s in all",
        started.elapsed().as_secs_f64()
    );
}

/// `submit_walk_forward.sh` gives sbatch the resources from its options, or from the
/// WF_* variables, on the command line (where they override walk_forward.sbatch's #SBATCH
/// defaults), and refuses bad values. A stand-in sbatch records its arguments; a
/// stand-in sim-train plans nothing.
#[test]
fn the_submit_script_passes_its_resources_to_sbatch() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let calls = tmp.path().join("calls");
    for (name, text) in [
        (
            "sbatch",
            "#!/usr/bin/env bash\nprintf '%s\\n' \"$*\" >> \"$CALLS\"\nn=$(wc -l < \"$CALLS\")\necho \"$((100 + n));cluster\"\n",
        ),
        (
            "fake-sim-train",
            "#!/usr/bin/env bash\necho \"planned: $*\"\n",
        ),
    ] {
        let p = bin.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let submit = |args: &[&str], env: &[(&str, &str)]| {
        let _ = std::fs::remove_file(&calls);
        let mut c = Command::new("bash");
        c.arg(script("submit_walk_forward.sh"))
            .args(args)
            .env(
                "PATH",
                format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
            )
            .env("SIM_TRAIN", bin.join("fake-sim-train"))
            .env("CALLS", &calls)
            .current_dir(tmp.path());
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        let calls = std::fs::read_to_string(&calls).unwrap_or_default();
        (out, calls.lines().map(str::to_string).collect::<Vec<_>>())
    };
    let has = |call: &str, opts: &[&str]| {
        let words: Vec<&str> = call.split_whitespace().collect();
        for o in opts {
            assert!(words.contains(o), "{o} not in: {call}");
        }
    };

    // Options.
    let (out, calls) = submit(
        &[
            "--cpus",
            "3",
            "--mem",
            "6G",
            "--time",
            "2:00:00",
            "--partition",
            "p1",
            "--account",
            "a1",
            "--logs",
            "logs",
            "cfg.toml",
            "/shared/wf",
            "5",
            "/shared/cache",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "shards: job 101 (array 0-4); merge: job 102; report: /shared/wf/report/report.html"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains(
        "planned: --config cfg.toml walk-forward plan --out /shared/wf --cache /shared/cache"
    ));
    assert_eq!(calls.len(), 2, "{calls:?}");
    let logs = tmp.path().join("logs").canonicalize().unwrap();
    has(
        &calls[0],
        &[
            "--cpus-per-task=3",
            "--mem=6G",
            "--time=2:00:00",
            "--partition=p1",
            "--account=a1",
            "--array=0-4",
            &format!("--output={}/%x-%A_%a.out", logs.display()),
            script("walk_forward.sbatch").to_str().unwrap(),
            "/shared/wf",
        ],
    );
    has(
        &calls[1],
        &[
            "--cpus-per-task=1",
            "--mem=6G",
            "--time=2:00:00",
            "--partition=p1",
            "--account=a1",
            "--dependency=afterok:101",
            "--job-name=sim-train-wf-merge",
            "--wrap",
        ],
    );

    // Variables (4Gi as Slurm's 4G), options over variables, --parsable.
    let (out, calls) = submit(
        &["--parsable", "--cpus", "4", "cfg.toml", "/shared/wf", "2"],
        &[
            ("WF_CPUS", "7"),
            ("WF_MEM", "4Gi"),
            ("WF_TIME", "1-00:00:00"),
            ("WF_PARTITION", "gpu"),
            ("WF_ACCOUNT", "team"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "101 102\n");
    has(
        &calls[0],
        &[
            "--cpus-per-task=4",
            "--mem=4G",
            "--time=1-00:00:00",
            "--partition=gpu",
            "--account=team",
            "--array=0-1",
        ],
    );
    has(&calls[1], &["--dependency=afterok:101", "--mem=4G"]);

    // Defaults: modest, no partition or account.
    let (out, calls) = submit(&["cfg.toml", "/shared/wf", "1"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    has(
        &calls[0],
        &[
            "--cpus-per-task=2",
            "--mem=4G",
            "--time=12:00:00",
            "--array=0-0",
        ],
    );
    assert!(!calls[0].contains("--partition") && !calls[0].contains("--account"));

    // Bad values: exit 2 before anything is submitted.
    for bad in [
        &["--cpus", "0", "cfg.toml", "/w", "2"][..],
        &["--mem", "lots", "cfg.toml", "/w", "2"],
        &["--time", "soon", "cfg.toml", "/w", "2"],
        &["cfg.toml", "/w", "zero"],
        &["--bogus", "cfg.toml", "/w", "2"],
        &["cfg.toml", "/w"],
    ] {
        let (out, calls) = submit(bad, &[]);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(calls.is_empty(), "{bad:?}: {calls:?}");
    }

    // The batch script's own defaults are modest (a 2-core node can run it as it is).
    let sbatch = std::fs::read_to_string(script("walk_forward.sbatch")).unwrap();
    assert!(
        sbatch.contains("#SBATCH --cpus-per-task=2\n") && sbatch.contains("#SBATCH --mem=4G\n")
    );
}
