//! Walk-forward sweeps end to end through the binary: sharded runs merge to the same
//! report as one process, units are idempotent and resume exactly, the merged numbers
//! agree with the units' own backtest reports, bad sweeps fail before training, warm
//! starts carry the policy, and the report's charts are valid SVG.

mod common;

use common::sweep::{SWEEP, assert_same_reports, universe, write_config};
use common::{lean_cache, sim_train};
use predicates::prelude::*;
use sim_train::metrics::ReturnMetrics;
use sim_train::overfit::{DeflatedSharpe, sharpe_ratio};
use sim_train::walkforward::merge::{Stats, check_gates};
use sim_train::walkforward::{Gates, Plan, UnitResult};
use std::collections::BTreeMap;
use std::path::Path;

fn read_json<T: serde::de::DeserializeOwned>(p: &Path) -> T {
    serde_json::from_slice(&std::fs::read(p).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `sim-train --config CFG walk-forward --cache CACHE --out OUT` (plan, run, merge).
fn sweep(cfg: &Path, cache: &Path, out: &Path) {
    sim_train()
        .args(["-q", "--config"])
        .arg(cfg)
        .args(["walk-forward", "--cache"])
        .arg(cache)
        .arg("--out")
        .arg(out)
        .assert()
        .success();
}

fn run_shard(plan: &Path, shard: &str) -> std::process::Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("sim-train"))
        .args(["-q", "walk-forward", "run", "--plan"])
        .arg(plan)
        .args(["--shard", shard])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn three_shards_merge_to_the_single_process_report_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = universe(tmp.path());
    let cfg = write_config(tmp.path(), "sweep.toml", SWEEP);
    let (sharded, single) = (tmp.path().join("sharded"), tmp.path().join("single"));

    sim_train()
        .args(["-q", "--config"])
        .arg(&cfg)
        .args(["walk-forward", "plan", "--cache"])
        .arg(&cache)
        .arg("--out")
        .arg(&sharded)
        .assert()
        .success();
    let plan: Plan = read_json(&sharded.join("plan.json"));
    assert_eq!(plan.folds.len(), 3);
    assert_eq!(plan.units.len(), 12);
    // Shards 0 and 1 as separate processes at the same time; shard 2 through the
    // Kubernetes Indexed Job variables.
    let children = [run_shard(&sharded, "0/3"), run_shard(&sharded, "1/3")];
    sim_train()
        .args(["-q", "walk-forward", "run", "--plan"])
        .arg(&sharded)
        .args(["--shards", "3"])
        .env("JOB_COMPLETION_INDEX", "2")
        .assert()
        .success();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    sim_train()
        .args(["-q", "walk-forward", "merge", "--plan"])
        .arg(&sharded)
        .assert()
        .success();

    sweep(&cfg, &cache, &single);
    assert_same_reports(&sharded, &single);

    // A shard run again skips its finished units.
    let out = sim_train()
        .args(["walk-forward", "run", "--plan"])
        .arg(&sharded)
        .args(["--shard", "1/3"])
        .assert()
        .success();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        err.contains("already complete") && !err.contains("done in"),
        "{err}"
    );

    // A unit interrupted after its first update (result and evaluation gone, latest
    // checkpoint rewound) continues from that checkpoint and gives the same report.
    let unit = sharded.join("units").join(&plan.units[5].id);
    std::fs::remove_file(unit.join("result.json")).unwrap();
    std::fs::remove_dir_all(unit.join("eval")).unwrap();
    let ckpts = unit.join("run").join("checkpoints");
    assert!(ckpts.join("update-00000001").is_dir());
    std::fs::remove_dir_all(ckpts.join("update-00000002")).unwrap();
    std::fs::write(ckpts.join("latest"), "update-00000001\n").unwrap();
    sim_train()
        .args(["-q", "walk-forward", "merge", "--plan"])
        .arg(&sharded)
        .assert()
        .failure()
        .code(2)
        .stderr(predicates::str::contains("1 of 12 units are not complete"));
    for s in ["0/3", "1/3", "2/3"] {
        sim_train()
            .args(["-q", "walk-forward", "run", "--plan"])
            .arg(&sharded)
            .args(["--shard", s])
            .assert()
            .success();
    }
    let timing: serde_json::Value = read_json(&unit.join("timing.json"));
    assert_eq!(timing["resumed"], true);
    sim_train()
        .args(["-q", "walk-forward", "merge", "--plan"])
        .arg(&sharded)
        .assert()
        .success();
    assert_same_reports(&sharded, &single);

    check_report_against_units(&single, &plan);
    check_charts_and_page(&single.join("report"));
    check_page_renders(&single.join("report/report.html"), tmp.path());
}

/// Renders the report page in headless Chromium (installed by `scripts/setup.sh`) and
/// checks the screenshot shows the page: mostly light background, text, and the charts'
/// agent color (#1f77b4) over tens of thousands of pixels.
fn check_page_renders(page: &Path, tmp: &Path) {
    let Some(chromium) = ["chromium", "chromium-browser"].into_iter().find(|c| {
        std::process::Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    }) else {
        common::skip(Path::new(
            "chromium (scripts/setup.sh chromium installs it)",
        ));
        return;
    };
    let shot = tmp.join("page.png");
    let out = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!("--screenshot={}", shot.display()))
        .args(["--window-size=1280,2400"])
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        shot.is_file(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1280, 2400));
    let channels = info.color_type.samples();
    let (mut light, mut dark, mut agent) = (0usize, 0usize, 0usize);
    let pixels = buf[..info.buffer_size()].chunks_exact(channels);
    let total = pixels.len();
    for p in pixels {
        let (r, g, b) = (p[0] as i32, p[1] as i32, p[2] as i32);
        if r > 230 && g > 230 && b > 230 {
            light += 1;
        }
        if r < 80 && g < 80 && b < 80 {
            dark += 1;
        }
        if (r - 0x1f).abs() < 12 && (g - 0x77).abs() < 12 && (b - 0xb4).abs() < 12 {
            agent += 1;
        }
    }
    eprintln!("screenshot: {light} light, {dark} dark, {agent} agent-colored pixels of {total}");
    assert!(
        light > total / 2,
        "not a page: {light} light pixels of {total}"
    );
    assert!(dark > 5_000, "no text: {dark} dark pixels");
    // The title's underline alone has ~2,200 such pixels; the charts add tens of thousands.
    assert!(
        agent > 20_000,
        "no chart: {agent} pixels in the agent's color"
    );
}

/// The merged numbers recomputed from independent sources: the units' backtest reports
/// (report.json of each evaluation) and their result files.
fn check_report_against_units(dir: &Path, plan: &Plan) {
    let report: serde_json::Value = read_json(&dir.join("report/report.json"));
    let results: Vec<UnitResult> = plan
        .units
        .iter()
        .map(|u| read_json(&dir.join("units").join(&u.id).join("result.json")))
        .collect();

    // The audit: no fold trains on a day it tests on, or later; purge and embargo days
    // are in neither.
    for f in &plan.folds {
        let f = &f.fold;
        assert!(f.train.last().unwrap() < &f.test[0]);
        assert!(
            f.purged
                .iter()
                .all(|d| !f.train.contains(d) && !f.test.contains(d))
        );
        assert_eq!((f.train.len(), f.purged.len(), f.test.len()), (3, 1, 2));
    }
    let audit = std::fs::read_to_string(dir.join("report/audit.csv")).unwrap();
    assert_eq!(audit.lines().count(), 1 + 4 * plan.folds.len());

    let trials = report["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 4);
    let mut trial_sharpes = Vec::new();
    let mut best: Option<(f64, Vec<f64>)> = None;
    for t in trials {
        let (config, seed) = (t["config"].as_str().unwrap(), t["seed"].as_u64().unwrap());
        let mut growth = 1.0;
        let mut returns = Vec::new();
        let mut trades = 0;
        for u in plan
            .units
            .iter()
            .filter(|u| u.config == config && u.seed == seed)
        {
            let bt: serde_json::Value = read_json(
                &dir.join("units")
                    .join(&u.id)
                    .join("eval/policy/report.json"),
            );
            let p = &bt["portfolio"];
            growth *= 1.0 + p["returns"]["total_return"].as_f64().unwrap();
            trades += p["trades"]["trades"].as_u64().unwrap();
            let r = results.iter().find(|r| r.unit.id == u.id).unwrap();
            assert_eq!(r.test_first, plan.folds[u.fold].fold.test[0]);
            returns.extend(&r.policy.returns);
        }
        let total = t["stats"]["returns"]["total_return"].as_f64().unwrap();
        assert!(
            (total - (growth - 1.0)).abs() < 1e-12,
            "{total} vs {}",
            growth - 1.0
        );
        assert_eq!(t["stats"]["trades"].as_u64().unwrap(), trades);
        assert_eq!(t["stats"]["days"].as_u64().unwrap(), 6);
        let sr = sharpe_ratio(&returns);
        assert_eq!(t["daily_sharpe"].as_f64().unwrap(), sr);
        trial_sharpes.push(sr);
        if best.as_ref().is_none_or(|(b, _)| sr > *b) {
            best = Some((sr, returns));
        }
        // The gates as configured, judged by hand from the trial's numbers.
        let sharpe = t["stats"]["returns"]["sharpe"].as_f64().unwrap_or(f64::NAN);
        let dd = -t["stats"]["returns"]["max_drawdown"].as_f64().unwrap();
        let wr = t["stats"]["win_rate"].as_f64().unwrap_or(f64::NAN);
        let expected = sharpe >= 0.5 && dd <= 0.2 && trades >= 20 && wr >= 0.4;
        assert_eq!(t["passed"].as_bool().unwrap(), expected, "{t}");
    }
    let dsr = DeflatedSharpe::from_returns(&best.unwrap().1, &trial_sharpes).unwrap();
    assert_eq!(
        report["deflated_sharpe"]["result"]["dsr"].as_f64().unwrap(),
        dsr.dsr
    );
    assert_eq!(report["deflated_sharpe"]["result"]["trials"], 4);
    assert_eq!(report["pbo"]["result"]["configs"], 2);

    // A config is the seed-average of its trials, day by day.
    let cfg_a = &report["configs"][0];
    assert_eq!(cfg_a["config"], "a");
    let seeds: Vec<Vec<f64>> = [1u64, 2]
        .iter()
        .map(|&s| {
            results
                .iter()
                .filter(|r| r.unit.config == "a" && r.unit.seed == s)
                .flat_map(|r| r.policy.returns.clone())
                .collect()
        })
        .collect();
    let mean: Vec<f64> = (0..6).map(|i| (seeds[0][i] + seeds[1][i]) / 2.0).collect();
    let m = ReturnMetrics::from_returns(&mean, 252.0, 0.0);
    assert_eq!(
        cfg_a["stats"]["returns"]["total_return"].as_f64().unwrap(),
        m.total_return
    );

    // Per fold rows: one per unit; per symbol rows: each trial's two symbols.
    let folds = std::fs::read_to_string(dir.join("report/folds.csv")).unwrap();
    assert_eq!(folds.lines().count(), 1 + 12);
    let header = folds.lines().next().unwrap();
    for b in ["flat", "buy-and-hold", "sma-cross"] {
        assert!(header.contains(&format!("t_vs_{b}")), "{header}");
    }
    let symbols = std::fs::read_to_string(dir.join("report/symbols.csv")).unwrap();
    assert_eq!(symbols.lines().count(), 1 + 4 * 2);
    // The flat baseline never trades: zero return on every fold.
    let flat = &report["baselines"]["flat"];
    assert_eq!(flat["returns"]["total_return"].as_f64().unwrap(), 0.0);
    assert_eq!(flat["trades"].as_u64().unwrap(), 0);
}

fn check_charts_and_page(report: &Path) {
    let mut charts = 0;
    for e in std::fs::read_dir(report.join("charts")).unwrap() {
        let p = e.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        let doc = roxmltree::Document::parse(&text)
            .unwrap_or_else(|e| panic!("{} is not valid XML: {e}", p.display()));
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        let class = |c: &str| {
            doc.descendants()
                .filter(|n| n.attribute("class") == Some(c))
                .count()
        };
        match p.file_stem().unwrap().to_str().unwrap() {
            // 2 configs + 3 baselines, all on the same days.
            "equity" => assert_eq!(class("series"), 5),
            // Histogram of the agent's 6 daily returns: at least one non-empty bin.
            "returns" => assert!(class("bar") >= 1),
            // 3 folds × (2 configs + 3 baselines).
            "folds" => assert_eq!(class("bar"), 15),
            // 2 symbols × 2 configs.
            "symbols" => assert_eq!(class("bar"), 4),
            other => panic!("unexpected chart {other}"),
        }
        charts += 1;
    }
    assert_eq!(charts, 4);
    let page = std::fs::read_to_string(report.join("report.html")).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert_eq!(page.matches("<svg").count(), 4);
    let external = page
        .replace("http://www.w3.org/2000/svg", "")
        .contains("http");
    assert!(!external, "the page must open offline");
    for heading in ["Verdict", "Overfitting diagnostics", "Fold audit"] {
        assert!(page.contains(heading), "{heading}");
    }
}

#[test]
fn bad_sweeps_fail_before_any_training() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = universe(tmp.path());
    let cfg = write_config(tmp.path(), "sweep.toml", SWEEP);
    let fails = |sets: &[&str], out: &Path, code: i32, msg: &str| {
        let mut cmd = sim_train();
        cmd.arg("--config").arg(&cfg);
        for s in sets {
            cmd.args(["--set", s]);
        }
        cmd.args(["walk-forward", "--cache"])
            .arg(&cache)
            .arg("--out")
            .arg(out)
            .assert()
            .failure()
            .code(code)
            .stderr(predicates::str::contains(msg));
        assert!(!out.exists(), "{} was written", out.display());
    };
    let out = tmp.path().join("out");
    fails(
        &["walkforward.from=2031-01-01"],
        &out,
        5,
        "the universe has no cached days",
    );
    fails(&["walkforward.train_days=20"], &out, 2, "hold no fold");
    fails(&["walkforward.purge_days=8"], &out, 2, "hold no fold");
    fails(
        &["walkforward.step_days=2"],
        &out,
        2,
        "shorter than test_days + embargo_days",
    );
    fails(
        &["walkforward.symbols=[\"NOPE\"]"],
        &out,
        2,
        "NOPE is not in the cache",
    );
    fails(
        &["walkforward.seeds=[]"],
        &out,
        2,
        "walkforward.seeds is empty",
    );
    fails(
        &["walkforward.query=\"category = 'prime'\""],
        &out,
        2,
        "walkforward.index is unset",
    );
    fails(
        &["walkforward.configs=[{name=\"x y\"}]"],
        &out,
        2,
        "use 1 to 40 letters",
    );
    fails(
        &["walkforward.configs=[{name=\"flat\"}]"],
        &out,
        2,
        "is taken by a baseline",
    );
    fails(
        &["walkforward.configs=[{name=\"cheap\", set=[\"env.costs.commission_per_share=0\"]}]"],
        &out,
        2,
        "changes how units are evaluated",
    );
    fails(
        &["walkforward.configs=[{name=\"x\", set=[\"train.nope=1\"]}]"],
        &out,
        2,
        "train.nope",
    );
    sim_train()
        .args(["walk-forward"])
        .assert()
        .failure()
        .code(2)
        .stderr(
            predicates::str::contains("walk-forward needs a day cache")
                .or(predicates::str::contains("pass --out DIR")),
        );

    // A plan dir belongs to its config: planning or running another one there fails.
    let plan = tmp.path().join("plan");
    sim_train()
        .args(["-q", "--config"])
        .arg(&cfg)
        .args(["walk-forward", "plan", "--cache"])
        .arg(&cache)
        .arg("--out")
        .arg(&plan)
        .assert()
        .success();
    sim_train()
        .args(["-q", "--config"])
        .arg(&cfg)
        .args([
            "--set",
            "walkforward.test_days=1",
            "walk-forward",
            "plan",
            "--cache",
        ])
        .arg(&cache)
        .arg("--out")
        .arg(&plan)
        .assert()
        .failure()
        .code(2)
        .stderr(predicates::str::contains(
            "holds the plan of another config",
        ));
    sim_train()
        .args([
            "-q",
            "--set",
            "train.seed=9",
            "walk-forward",
            "run",
            "--shard",
            "0/2",
            "--plan",
        ])
        .arg(&plan)
        .assert()
        .failure()
        .code(2)
        .stderr(predicates::str::contains("is the plan of another config"));
    sim_train()
        .args(["-q", "walk-forward", "run", "--plan"])
        .arg(&plan)
        .assert()
        .failure()
        .code(2)
        .stderr(predicates::str::contains("needs its shard"));
    // An edited plan is refused before anything runs.
    let plan_file = plan.join("plan.json");
    let original = std::fs::read_to_string(&plan_file).unwrap();
    let mut edited: serde_json::Value = serde_json::from_str(&original).unwrap();
    edited["folds"][0]["symbols"] = serde_json::json!(["SYN000"]);
    std::fs::write(&plan_file, serde_json::to_string_pretty(&edited).unwrap()).unwrap();
    sim_train()
        .args(["-q", "walk-forward", "run", "--shard", "0/2", "--plan"])
        .arg(&plan)
        .assert()
        .failure()
        .code(3)
        .stderr(predicates::str::contains(
            "no longer matches its config and data",
        ));
    std::fs::write(&plan_file, original).unwrap();
    // Planning the same config again keeps the plan (and any finished units).
    sim_train()
        .args(["--config"])
        .arg(&cfg)
        .args(["walk-forward", "plan", "--cache"])
        .arg(&cache)
        .arg("--out")
        .arg(&plan)
        .assert()
        .success()
        .stderr(predicates::str::contains("plan unchanged"));
    assert!(
        !plan.join("units").read_dir().unwrap().any(|_| true),
        "nothing trained"
    );
}

#[test]
fn gates_are_judged_from_the_stitched_numbers() {
    let gates = Gates {
        min_sharpe: Some(0.5),
        max_drawdown: Some(0.004),
        min_trades: Some(10),
        min_win_rate: Some(0.6),
    };
    // Wealth 1.01, then 1.01·0.995 = 1.00495: a 0.5 % drawdown.
    let s = Stats::of(&[0.01, -0.005, 0.02], 10, 6, 252.0, 0.0);
    let checks = check_gates(&gates, &s);
    let by: BTreeMap<&str, (f64, bool)> = checks
        .iter()
        .map(|c| (c.gate.as_str(), (c.value, c.pass)))
        .collect();
    assert!((by["max_drawdown"].0 - 0.005).abs() < 1e-15);
    assert!(!by["max_drawdown"].1);
    assert_eq!(by["min_trades"], (10.0, true));
    assert_eq!(by["min_win_rate"], (0.6, true));
    // mean 0.008333, sd 0.012583 (ddof 1): 0.6623 · √252 = 10.51.
    assert!(
        (by["min_sharpe"].0 - 10.513).abs() < 1e-3,
        "{}",
        by["min_sharpe"].0
    );
    assert!(by["min_sharpe"].1);
    // No trades: the win rate is undefined and fails its gate; no gates, no checks.
    let none = Stats::of(&[0.0, 0.0], 0, 0, 252.0, 0.0);
    let c = check_gates(&gates, &none);
    assert!(c.iter().any(|c| c.gate == "min_win_rate" && !c.pass));
    assert!(c.iter().any(|c| c.gate == "min_sharpe" && !c.pass));
    assert!(check_gates(&Gates::default(), &none).is_empty());
    // Gates at their no-op values are not applied (an undefined value cannot fail them).
    let off = Gates {
        min_sharpe: Some(f64::NEG_INFINITY),
        max_drawdown: Some(f64::INFINITY),
        min_trades: Some(0),
        min_win_rate: Some(0.0),
    };
    assert!(check_gates(&off, &none).is_empty());
}

#[test]
fn warm_started_folds_carry_the_policy_forward() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = universe(tmp.path());
    let cfg = write_config(
        tmp.path(),
        "warm.toml",
        &format!(
            "{}\n",
            SWEEP
                .replace("seeds = [1, 2]", "seeds = [3]\nwarm_start = true")
                .replace(
                    "[[walkforward.configs]]\nname = \"b\"\nset = [\"train.learning_rate=1e-3\", \"train.ent_coef=0.05\"]\n",
                    ""
                )
        ),
    );
    let out = tmp.path().join("warm");
    sweep(&cfg, &cache, &out);
    let plan: Plan = read_json(&out.join("plan.json"));
    assert_eq!(plan.units.len(), 3);
    assert!(plan.units.iter().all(|u| u.chain == 0));
    assert_eq!(
        plan.units[1].after.as_deref(),
        Some(plan.units[0].id.as_str())
    );
    // The observation statistics of fold k+1 continue fold k's: its count is fold k's
    // plus the observations fold k+1 saw.
    let count = |id: &str| {
        let ckpt = out.join("units").join(id).join("run/checkpoints");
        let latest = std::fs::read_to_string(ckpt.join("latest")).unwrap();
        let t = tch::Tensor::load_multi(ckpt.join(latest.trim()).join("tensors.ot")).unwrap();
        let (_, c) = t.into_iter().find(|(k, _)| k == "obs_norm/count").unwrap();
        c.double_value(&[0])
    };
    let steps = |id: &str| {
        let r: UnitResult = read_json(&out.join("units").join(id).join("result.json"));
        r.train.global_step as f64
    };
    let (u0, u1, u2) = (&plan.units[0].id, &plan.units[1].id, &plan.units[2].id);
    assert!(
        (count(u0) - (1e-4 + steps(u0))).abs() < 1e-6,
        "{}",
        count(u0)
    );
    assert!((count(u1) - (count(u0) + steps(u1))).abs() < 1e-6);
    assert!((count(u2) - (count(u1) + steps(u2))).abs() < 1e-6);
}

#[test]
fn walk_forward_over_real_lean_hourly_bars() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(cache) = lean_cache(
        "walk_forward_over_real_lean_hourly_bars",
        sim_train::bars::BarSize::H1,
        &["AAPL", "AIG", "BAC", "IBM", "SPY"],
        &tmp.path().join("lean"),
    ) else {
        return;
    };
    let cfg = write_config(
        tmp.path(),
        "lean.toml",
        r#"
[train]
total_steps = 1024
num_envs = 32
rollout_steps = 16
threads = 1

[backtest]
sma_fast = 2
sma_slow = 4

[walkforward]
from = 2018-01-01
to = 2020-12-31
train_days = 250
test_days = 120
"#,
    );
    let out = tmp.path().join("wf");
    sweep(&cfg, &cache, &out);
    let report: serde_json::Value = read_json(&out.join("report/report.json"));
    assert_eq!(report["universe"].as_array().unwrap().len(), 5);
    assert_eq!(report["folds"], 4);
    // NYSE sessions: 251 in 2018 (closed for President Bush's funeral), 252 in 2019,
    // 253 in 2020; 4 test windows of 120 days fit after 250 training days.
    assert_eq!(report["trading_days"], 251 + 252 + 253);
    assert_eq!(report["trials"][0]["stats"]["days"], 480);
    // Buy-and-hold trades every symbol every day: 5 round trips a day.
    assert_eq!(report["baselines"]["buy-and-hold"]["trades"], 5 * 480);
    assert!(out.join("report/report.html").is_file());
}

/// `scripts/slurm/submit_walk_forward.sh` under a stand-in `sbatch` that runs each array
/// task with the variables Slurm sets (ids 1..3, so the shard is the id minus the
/// minimum), then the merge once they all succeeded.
#[test]
fn the_slurm_scripts_plan_run_every_shard_and_merge() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = universe(tmp.path());
    let cfg = write_config(tmp.path(), "sweep.toml", SWEEP);
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let sbatch = bin.join("sbatch");
    std::fs::write(
        &sbatch,
        r#"#!/usr/bin/env bash
set -euo pipefail
array=""; wrap=""; args=()
for a in "$@"; do
  case "$a" in
    --array=*) array="${a#--array=}" ;;
    --wrap) wrap="next" ;;
    --*) ;;
    *) if [[ "$wrap" == next ]]; then wrap="$a"; else args+=("$a"); fi ;;
  esac
done
if [[ -n "$array" ]]; then
  lo=$(( ${array%-*} + 1 )); hi=$(( ${array#*-} + 1 ))
  pids=()
  for i in $(seq "$lo" "$hi"); do
    SLURM_ARRAY_TASK_ID=$i SLURM_ARRAY_TASK_MIN=$lo SLURM_ARRAY_TASK_COUNT=$(( hi - lo + 1 )) \
      bash "${args[@]}" > "$(dirname "$0")/task-$i.log" 2>&1 & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  echo 101
else
  bash -c "$wrap" > "$(dirname "$0")/merge.log" 2>&1
  echo 102
fi
"#,
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&sbatch, std::fs::Permissions::from_mode(0o755)).unwrap();
    let plan = tmp.path().join("wf");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/slurm/submit_walk_forward.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg(&cfg)
        .arg(&plan)
        .arg("3")
        .arg(&cache)
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .env("SIM_TRAIN", assert_cmd::cargo::cargo_bin("sim-train"))
        .output()
        .unwrap();
    let log = |name: &str| std::fs::read_to_string(bin.join(name)).unwrap_or_default();
    assert!(
        out.status.success(),
        "{}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        log("task-1.log"),
        log("merge.log")
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("shards: job 101"));
    for i in 1..=3 {
        assert!(log(&format!("task-{i}.log")).contains(&format!("shard {}/3", i - 1)));
    }
    assert!(
        plan.join("report/report.html").is_file(),
        "{}",
        log("merge.log")
    );
}

/// A query universe is chosen causally: a fold trades the symbols the query matches on or
/// before its last training day.
#[test]
fn a_query_universe_never_looks_ahead() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = universe(tmp.path());
    let index = tmp.path().join("index");
    sim_train()
        .args(["-q", "scan", "--cache"])
        .arg(&cache)
        .arg("--out")
        .arg(&index)
        .assert()
        .success();
    let cfg = write_config(tmp.path(), "sweep.toml", SWEEP);
    let plan_with = |name: &str, query: Option<&str>| {
        let out = tmp.path().join(name);
        let mut cmd = sim_train();
        cmd.args(["-q", "--config"]).arg(&cfg);
        if let Some(q) = query {
            cmd.args(["--set", &format!("walkforward.query=\"{q}\"")])
                .args([
                    "--set",
                    &format!("walkforward.index=\"{}\"", index.display()),
                ]);
        }
        let a = cmd
            .args(["walk-forward", "plan", "--cache"])
            .arg(&cache)
            .arg("--out")
            .arg(&out)
            .assert();
        (a, out)
    };
    let (a, all) = plan_with("all", None);
    a.success();
    let plan: Plan = read_json(&all.join("plan.json"));
    let d = &plan.days;
    assert!(plan.folds.iter().all(|f| f.symbols == ["SYN000", "SYN001"]));
    // SYN001 matches only from day 7 on: the first two folds (training to days 2 and 5)
    // cannot know it; the third (training to day 8) trades it.
    let (a, q) = plan_with(
        "query",
        Some(&format!("symbol = 'SYN000' or date >= '{}'", d[7])),
    );
    a.success();
    let plan: Plan = read_json(&q.join("plan.json"));
    let symbols: Vec<Vec<String>> = plan.folds.iter().map(|f| f.symbols.clone()).collect();
    assert_eq!(
        symbols,
        [vec!["SYN000"], vec!["SYN000"], vec!["SYN000", "SYN001"]]
            .map(|v| v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    );
    // Nothing matches by the end of the first fold's training: refused before training.
    let (a, late) = plan_with("late", Some(&format!("date >= '{}'", d[9])));
    a.failure().code(2).stderr(predicates::str::contains(
        "matches walkforward.query by its last training day",
    ));
    assert!(!late.exists());
}

/// A config whose agent never trades has no Sharpe ratio; the sweep is still judged: it
/// counts as a no-skill trial (0) in the deflated Sharpe ratio, and the PBO, which
/// cannot rank an all-flat series, says why it is absent.
#[test]
fn a_trial_that_never_trades_still_lets_the_dsr_judge_the_sweep() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = universe(tmp.path());
    let cfg = write_config(
        tmp.path(),
        "idle.toml",
        &SWEEP.replace("seeds = [1, 2]", "seeds = [1]").replace(
            "name = \"b\"\nset = [\"train.learning_rate=1e-3\", \"train.ent_coef=0.05\"]",
            "name = \"idle\"\nset = [\"env.actions=[0.0]\"]",
        ),
    );
    let out = tmp.path().join("idle");
    sweep(&cfg, &cache, &out);
    let report: serde_json::Value = read_json(&out.join("report/report.json"));
    let trials = report["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 2);
    let idle = trials.iter().find(|t| t["config"] == "idle").unwrap();
    assert_eq!(idle["stats"]["trades"], 0);
    assert!(idle["daily_sharpe"].is_null(), "{idle}");
    let active = trials.iter().find(|t| t["config"] == "a").unwrap();
    let sr = active["daily_sharpe"]
        .as_f64()
        .expect("the active trial has a Sharpe ratio");
    let dsr = &report["deflated_sharpe"];
    assert_eq!(dsr["result"]["trials"], 2);
    assert_eq!(dsr["result"]["sr_hat"].as_f64().unwrap(), sr);
    assert!(
        dsr["note"]
            .as_str()
            .unwrap()
            .contains("1 trial(s) without a Sharpe ratio counted as 0")
    );
    // Two trials with Sharpe ratios sr and 0: their sample variance is sr² / 2.
    let var = dsr["result"]["sr_variance"].as_f64().unwrap();
    assert!(
        (var - sr * sr / 2.0).abs() < 1e-15,
        "{var} vs {}",
        sr * sr / 2.0
    );
    assert!(report["pbo"]["result"].is_null());
    assert!(
        report["pbo"]["note"]
            .as_str()
            .unwrap()
            .contains("not computed")
    );
}
