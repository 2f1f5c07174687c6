//! Smoke tests of the real binary on tiny synthetic sizes: the main job, the cache
//! commands end to end, and the error contract (one line naming the thing, exit codes).

mod common;

use common::sim_train;
use predicates::prelude::*;
use sim_train::cache::DayCache;
use std::path::Path;

#[cfg(feature = "torch")]
const TINY: [&str; 6] = [
    "--set",
    "synth.symbols=3",
    "--set",
    "synth.days=3",
    "--set",
    "synth.bar=1m",
];

fn synth_cache(dir: &Path) -> std::path::PathBuf {
    let synth = dir.join("synth");
    let cache = dir.join("cache");
    sim_train()
        .args([
            "synth",
            "--symbols",
            "3",
            "--days",
            "3",
            "--bar",
            "1m",
            "--seed",
            "11",
            "--out",
        ])
        .arg(&synth)
        .assert()
        .success();
    sim_train()
        .args(["-q", "cache", "build", "--source", "synth", "--input"])
        .arg(&synth)
        .arg("--cache")
        .arg(&cache)
        .assert()
        .success()
        .stdout(predicate::str::contains("built 9 symbol-days"));
    cache
}

/// The pipeline's learning stages on TINY: one held-out day, a few updates of a few
/// environments, every day drawable by the curriculum.
#[cfg(feature = "torch")]
const TINY_LEARN: [&str; 10] = [
    "--set",
    "pipeline.holdout_days=1",
    "--set",
    "pipeline.train_steps=512",
    "--set",
    "train.num_envs=16",
    "--set",
    "train.rollout_steps=16",
    "--set",
    "sampler.stages=[{from_episodes=0, uniform=true}]",
];

#[test]
#[cfg(feature = "torch")] // the pipeline trains
fn pipeline_runs_the_main_job() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p");
    sim_train()
        .args(["pipeline", "--out"])
        .arg(&out)
        .args(TINY)
        .args(TINY_LEARN)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("3 symbols × 3 days")
                .and(predicate::str::contains("0 bad"))
                .and(predicate::str::contains("train     2 updates"))
                .and(predicate::str::contains("buy-and-hold"))
                .and(predicate::str::contains("plots")),
        );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["build"]["days_written"], 9);
    assert!(out.join("config.resolved.toml").is_file());
    assert!(out.join("cache/config.resolved.toml").is_file());
    assert!(out.join("synth/truth.json").is_file());
    for f in [
        "index/days.parquet",
        "run/metrics.jsonl",
        "run/plots/training.svg",
        "eval/comparison.json",
        "eval/policy/report.json",
        "eval/flat/report.json",
        "eval/buy-and-hold/report.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    // Trained on the first two days, evaluated on the third only.
    let learn = &summary["learn"];
    assert_eq!(learn["eval"]["days"], 1);
    assert!(learn["holdout_from"].as_str().unwrap() > learn["train_to"].as_str().unwrap());
    assert_eq!(learn["eval"]["first_date"], learn["holdout_from"]);
}

#[test]
fn cache_commands_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let cache = synth_cache(dir.path());
    let ls = sim_train()
        .args(["cache", "ls", "--json", "--cache"])
        .arg(&cache)
        .output()
        .unwrap();
    assert!(ls.status.success());
    let cat: serde_json::Value = serde_json::from_slice(&ls.stdout).unwrap();
    let entries = cat["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 9);
    let sym = entries[0]["symbol"].as_str().unwrap().to_string();
    let date = entries[0]["date"].as_str().unwrap().to_string();

    sim_train()
        .args(["cache", "inspect", "--cache"])
        .arg(&cache)
        .args(["--symbol", &sym, "--date", &date])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("clock_index")
                .and(predicate::str::contains("rsi_14"))
                .and(predicate::str::contains("cleaning causal   suspect prints")),
        );

    // Export: header, one row per bar, values equal to the cache's.
    let csv = dir.path().join("day.csv");
    sim_train()
        .args(["cache", "export", "--format", "csv", "--cache"])
        .arg(&cache)
        .args(["--symbol", &sym, "--date", &date, "--out"])
        .arg(&csv)
        .assert()
        .success();
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(
        &header[..6],
        &["ts", "open", "high", "low", "close", "volume"]
    );
    // Then the optional columns the day has (synthetic days: the suspect-print flag),
    // then the features.
    let features_at = header.len() - sim_train::features::N_FEATURES;
    assert_eq!(&header[6..features_at], &["suspect_print"]);
    assert_eq!(
        &header[features_at..],
        &sim_train::features::FEATURE_NAMES[..]
    );
    let day = DayCache::open(cache.join(entries[0]["file"].as_str().unwrap())).unwrap();
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), day.rows());
    let first: Vec<&str> = rows[0].split(',').collect();
    assert_eq!(first[0], sim_train::clock::iso_ny(day.ts_ns()[0]));
    assert!(
        first[0].ends_with("-05:00") || first[0].ends_with("-04:00"),
        "{}",
        first[0]
    );
    assert_eq!(first[4].parse::<f64>().unwrap(), day.closes()[0].dollars());
    assert_eq!(first[5].parse::<u64>().unwrap(), day.volumes()[0]);
    let ret1: f32 = rows[5]
        .split(',')
        .nth(features_at)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(ret1, day.feature(0)[5]);

    let pq = dir.path().join("day.parquet");
    sim_train()
        .args(["cache", "export", "--format", "parquet", "--cache"])
        .arg(&cache)
        .args(["--symbol", &sym, "--date", &date, "--out"])
        .arg(&pq)
        .assert()
        .success();
    assert_eq!(&std::fs::read(&pq).unwrap()[..4], b"PAR1");

    sim_train()
        .args(["cache", "verify", "--cache"])
        .arg(&cache)
        .assert()
        .success();

    // Alignment of two symbols.
    let sym2 = entries
        .iter()
        .map(|e| e["symbol"].as_str().unwrap())
        .find(|s| *s != sym)
        .unwrap()
        .to_string();
    let aligned = dir.path().join("aligned.csv");
    sim_train()
        .args(["align", "--cache"])
        .arg(&cache)
        .args([
            "--symbols",
            &format!("{sym},{sym2}"),
            "--date",
            &date,
            "--out",
        ])
        .arg(&aligned)
        .assert()
        .success();
    let head = std::fs::read_to_string(&aligned).unwrap();
    assert!(
        head.starts_with(&format!(
            "ts,{sym}_close,{sym}_volume,{sym2}_close,{sym2}_volume"
        )),
        "{head:.80}"
    );
}

#[test]
fn interrupted_build_leftovers_are_removed_and_rebuild_is_clean() {
    let dir = tempfile::tempdir().unwrap();
    let cache = synth_cache(dir.path());
    let cat: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cache.join("catalog.json")).unwrap()).unwrap();
    let sym = cat["entries"][0]["symbol"].as_str().unwrap();
    let leftover = cache.join(sym).join(".half-written.tmp");
    std::fs::write(&leftover, b"partial").unwrap();
    sim_train()
        .args(["-q", "cache", "build", "--source", "synth", "--input"])
        .arg(dir.path().join("synth"))
        .arg("--cache")
        .arg(&cache)
        .assert()
        .success();
    assert!(!leftover.exists());
    sim_train()
        .args(["cache", "verify", "--cache"])
        .arg(&cache)
        .assert()
        .success();
}

#[test]
fn errors_are_one_line_with_meaningful_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let one_line = |s: &[u8]| {
        let s = String::from_utf8_lossy(s).to_string();
        assert_eq!(s.trim_end().lines().count(), 1, "not one line: {s}");
        s
    };
    // Unknown config key.
    let o = sim_train()
        .args(["config", "--set", "synth.bogus=1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(one_line(&o.stderr).contains("synth.bogus"));
    // Bad value.
    let o = sim_train()
        .args(["config", "--set", "features.warmup_days=many"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(one_line(&o.stderr).contains("features.warmup_days"));
    // Unknown instruction set for the CPU step (refused before any data is built).
    let o = sim_train()
        .args(["bench", "env", "--simd", "avx3"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(one_line(&o.stderr).contains("--simd avx3"));
    // Impossible date range.
    let o = sim_train()
        .args([
            "cache",
            "build",
            "--source",
            "synth",
            "--from",
            "2024-02-01",
            "--to",
            "2024-01-01",
            "--cache",
        ])
        .arg(dir.path().join("c"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(one_line(&o.stderr).contains("2024-02-01"));
    // Missing input folder.
    let missing = dir.path().join("no-such-lean");
    let o = sim_train()
        .args(["cache", "build", "--source", "lean", "--input"])
        .arg(&missing)
        .arg("--cache")
        .arg(dir.path().join("c"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(one_line(&o.stderr).contains(&missing.display().to_string()));
    // Not a cache folder.
    let o = sim_train()
        .args(["cache", "ls", "--cache"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(5));
    one_line(&o.stderr);
    // Unknown symbol / date.
    let cache = synth_cache(dir.path());
    let o = sim_train()
        .args([
            "cache",
            "inspect",
            "--symbol",
            "NOPE",
            "--date",
            "2024-01-02",
            "--cache",
        ])
        .arg(&cache)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(5));
    assert!(one_line(&o.stderr).contains("NOPE"));
    // Mixing bar sizes in one cache folder is refused, and nothing is written.
    let before = std::fs::read(cache.join("catalog.json")).unwrap();
    let o = sim_train()
        .args([
            "cache",
            "build",
            "--source",
            "synth",
            "--bar",
            "1s",
            "--set",
            "synth.bar=1s",
            "--cache",
        ])
        .arg(&cache)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(one_line(&o.stderr).contains("never mixes"));
    assert_eq!(std::fs::read(cache.join("catalog.json")).unwrap(), before);
}

#[test]
#[cfg(feature = "torch")] // the pipeline trains
fn json_logs_are_json() {
    let dir = tempfile::tempdir().unwrap();
    let o = sim_train()
        .args(["--log-format", "json", "pipeline", "--out"])
        .arg(dir.path())
        .args(TINY)
        .args(TINY_LEARN)
        .output()
        .unwrap();
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for l in lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert!(v.get("level").is_some());
    }
}

/// Sizes from the command line or the config that would not fit in memory (or on disk)
/// are one line and exit 2, before anything is allocated or written; overflowing products
/// are not wrapped into small ones.
#[test]
fn sizes_too_large_are_refused_before_they_are_allocated() {
    let dir = tempfile::tempdir().unwrap();
    let refused = |args: &[&str], says: &[&str]| {
        let o = sim_train().args(args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{args:?}: not one line: {err}"
        );
        for s in says {
            assert!(err.contains(s), "{args:?}: no {s:?} in {err}");
        }
    };
    refused(
        &["bench", "env", "--envs", "99999999999"],
        &[
            "--envs 99999999999 would take",
            "TB of memory",
            "lower --envs",
        ],
    );
    refused(
        &["bench", "env", "--envs", &usize::MAX.to_string()],
        &["would take", "EB of memory"],
    );
    let out = dir.path().join("synth");
    refused(
        &[
            "synth",
            "--symbols",
            "1000000",
            "--days",
            "100000",
            "--out",
            out.to_str().unwrap(),
        ],
        &["1000000 symbols × 100000 days", "--symbols, --days"],
    );
    assert!(!out.exists(), "nothing written");
    let cache = dir.path().join("cache");
    refused(
        &[
            "--set",
            "synth.symbols=1000000",
            "--set",
            "synth.days=100000",
            "cache",
            "build",
            "--source",
            "synth",
            "--cache",
            cache.to_str().unwrap(),
        ],
        &["synthetic cache of 1000000 symbols", "free"],
    );
    assert!(!cache.join("catalog.json").exists(), "nothing written");
    #[cfg(feature = "torch")]
    {
        refused(
            &["bench", "train", "--steps", "99999999999"],
            &[
                "a rollout of 99999999999 steps × 1024 environments",
                "--steps",
            ],
        );
        refused(
            &["bench", "train", "--envs", "99999999996"],
            &["99999999996 environments", "would take"],
        );
        refused(
            &["--set", "train.hidden=10000000", "bench", "train"],
            &["hidden size 10000000", "train.hidden"],
        );
    }
}

/// Logs carry no colour codes when stderr is not a terminal (a file, a pipe), and no
/// stray line from the Vulkan stack when wgpu lists its adapters without a display.
#[test]
fn piped_logs_have_no_escape_codes_and_no_stray_lines() {
    let o = sim_train()
        .args([
            "-v",
            "calendar",
            "--from",
            "2024-01-02",
            "--to",
            "2024-01-03",
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("config resolved"), "{err}");
    assert!(!err.contains('\u{1b}'), "escape codes in {err:?}");
    // The environment CI runs in: no display, no XDG_RUNTIME_DIR.
    let o = sim_train()
        .args([
            "-q",
            "bench",
            "env",
            "--backend",
            "wgpu",
            "--envs",
            "64",
            "--steps",
            "4",
        ])
        .env_remove("NODEVICE_SELECT")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("DISPLAY")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("XDG_RUNTIME_DIR"), "{err}");
    if o.status.success() {
        assert!(err.trim().is_empty(), "stderr of a quiet run: {err}");
    } else {
        // No wgpu adapter here (no lavapipe): one line saying so, exit 6.
        assert_eq!(o.status.code(), Some(6), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
}
