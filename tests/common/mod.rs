//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod envs;
pub mod sweep;

use std::io::Write;
use std::path::PathBuf;

/// `../shared/data`, or None after printing a visible SKIP line. The line goes straight to
/// the process's stderr (not through the test harness's capture) so a skip is never silent.
pub fn shared_data(test: &str) -> Option<PathBuf> {
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data"));
    if p.is_dir() {
        Some(p)
    } else {
        let _ = writeln!(std::io::stderr(), "SKIP {test}: {} not found", p.display());
        None
    }
}

/// `../shared/data/databento` (None, after a visible SKIP line, when it is absent).
pub fn databento_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/databento"
    ));
    if dir.is_dir() {
        Some(dir)
    } else {
        skip(&dir);
        None
    }
}

/// Prints a visible SKIP line for a missing data path (straight to stderr, see above).
pub fn skip(path: &std::path::Path) {
    let _ = writeln!(std::io::stderr(), "SKIP: {} not found", path.display());
}

/// The `sim-train` binary under test.
pub fn sim_train() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("sim-train").expect("binary built")
}

/// Builds LEAN `symbols` at `bar` from `../shared/data` into `dir` (None, after a visible
/// SKIP line, when the data is absent).
pub fn lean_cache(
    test: &str,
    bar: sim_train::bars::BarSize,
    symbols: &[&str],
    dir: &std::path::Path,
) -> Option<PathBuf> {
    let data = shared_data(test)?;
    let req = sim_train::build::BuildRequest {
        source: sim_train::ingest::SourceKind::Lean,
        input: Some(data.join("lean")),
        cache_dir: dir.to_path_buf(),
        symbols: Some(symbols.iter().map(|s| s.to_string()).collect()),
        from: None,
        to: None,
        bar,
        adjust: sim_train::adjust::AdjustMode::None,
    };
    let cfg = sim_train::config::load(None, &[]).unwrap();
    sim_train::build::build_cache(&req, &cfg, false).unwrap_or_else(|e| panic!("{e}"));
    Some(dir.to_path_buf())
}

/// Builds a synthetic universe (`synth.*` overrides in `sets`) into `dir`/cache.
pub fn synth_cache(dir: &std::path::Path, sets: &[&str]) -> PathBuf {
    synth_cache_between(dir, sets, None, None)
}

/// As [`synth_cache`], only the days in `from..=to`; the universe in `dir`/synth is
/// written on the first call, so later calls extend the same cache.
pub fn synth_cache_between(
    dir: &std::path::Path,
    sets: &[&str],
    from: Option<chrono::NaiveDate>,
    to: Option<chrono::NaiveDate>,
) -> PathBuf {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let r = sim_train::config::load(None, &sets).unwrap();
    let spec = sim_train::synth::SynthSpec::from_params(
        &r.config.synth,
        &sim_train::calendar::Calendar::us_equity(),
    )
    .unwrap();
    let synth_dir = dir.join("synth");
    if !synth_dir.join(sim_train::synth::SPEC_FILE).is_file() {
        sim_train::synth::write_universe(&synth_dir, &spec).unwrap();
    }
    let cache = dir.join("cache");
    let req = sim_train::build::BuildRequest {
        source: sim_train::ingest::SourceKind::Synth,
        input: Some(synth_dir),
        cache_dir: cache.clone(),
        symbols: None,
        from,
        to,
        bar: spec.bar(),
        adjust: sim_train::adjust::AdjustMode::None,
    };
    sim_train::build::build_cache(&req, &r, false).unwrap_or_else(|e| panic!("{e}"));
    cache
}

/// A small market run trained for a few updates (so its weights and observation
/// statistics are not the initial ones), on 2 symbols × 4 days of 1 m bars.
pub fn trained_run(dir: &std::path::Path) -> (PathBuf, PathBuf) {
    let cache = synth_cache(
        dir,
        &["synth.symbols=2", "synth.days=4", "synth.bar=\"1m\""],
    );
    let run = dir.join("run");
    sim_train()
        .args(["-q", "train", "--device", "cpu", "--run-dir"])
        .arg(&run)
        .arg("--cache")
        .arg(&cache)
        .args([
            "--set",
            "train.num_envs=16",
            "--set",
            "train.rollout_steps=16",
        ])
        .args([
            "--set",
            "train.total_steps=1024",
            "--set",
            "train.to=2024-01-04",
        ])
        .args([
            "--set",
            "train.learning_rate=3e-3",
            "--set",
            "train.threads=2",
        ])
        .assert()
        .success();
    (run, cache)
}

/// A trained policy exported as a bundle, with its cache (2 symbols, 2024-01-02 to
/// 2024-01-05, 1-minute bars; trained to 2024-01-04).
pub fn exported(dir: &std::path::Path) -> (PathBuf, PathBuf) {
    let (run, cache) = trained_run(dir);
    let bundle = dir.join("bundle");
    sim_train()
        .args(["-q", "export", "--checkpoint"])
        .arg(&run)
        .arg("--out")
        .arg(&bundle)
        .assert()
        .success();
    (bundle, cache)
}

/// `--set`s for risk limits that cut nothing (the live layer then decides as `eval`).
pub const LOOSE_RISK: &[&str] = &[
    "live.risk.max_position_usd=1e12",
    "live.risk.max_gross_usd=1e12",
    "live.risk.max_net_usd=1e12",
    "live.risk.max_trade_risk_frac=0.99",
    "live.risk.max_daily_drawdown=0.99",
    "live.risk.max_consecutive_losses=1000000",
    "live.risk.max_trades_per_day=1000000",
    "live.risk.max_orders_per_minute=1000000",
    "live.risk.flatten_before_close_secs=0",
];

/// A fill as (symbol, time in New York ISO-8601, signed shares, reference price).
pub type FillRow = (String, String, i64, f64);

/// The fills of an `eval` report's policy (`DIR/policy/trades.csv`), each symbol's in
/// time order, symbols in name order.
pub fn eval_fills(out: &std::path::Path) -> Vec<FillRow> {
    let trades = std::fs::read_to_string(out.join("policy/trades.csv")).unwrap();
    // ts, symbol, side, shares, price, ...
    let mut fills: Vec<FillRow> = trades
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let shares: i64 = f[3].parse().unwrap();
            let signed = if f[2] == "buy" { shares } else { -shares };
            (
                f[1].to_string(),
                f[0].to_string(),
                signed,
                f[4].parse().unwrap(),
            )
        })
        .collect();
    fills.sort_by(|a, b| a.0.cmp(&b.0));
    fills
}

/// The fills of a live journal in the same form (the live loop interleaves symbols in
/// time; sorted by symbol, each symbol's stay in time order).
pub fn journal_fills(records: &[sim_train::live::journal::Record]) -> Vec<FillRow> {
    let mut fills: Vec<FillRow> = records
        .iter()
        .filter_map(|r| match &r.event {
            sim_train::live::journal::Event::Fill {
                symbol,
                shares,
                price,
                ..
            } => Some((
                symbol.clone(),
                sim_train::clock::iso_ny(r.ts_ns),
                *shares,
                *price,
            )),
            _ => None,
        })
        .collect();
    fills.sort_by(|a, b| a.0.cmp(&b.0));
    fills
}

/// Whether a backend the machine lacks must fail the tests instead of skipping them:
/// `SIM_TRAIN_REQUIRE_WGPU=1` (set by scripts/test.sh, which installs lavapipe) for wgpu,
/// `SIM_TRAIN_REQUIRE_CUDA=1` (to set on a GPU host) for CUDA, NVRTC included. The
/// host-compiled CUDA kernels (`cuda-host`) are in every build and always required.
#[allow(dead_code)] // not every test binary runs a GPU backend
pub fn required(api: sim_train::env::gpu::GpuApi) -> bool {
    use sim_train::env::gpu::GpuApi;
    let var = match api {
        GpuApi::Wgpu => "SIM_TRAIN_REQUIRE_WGPU",
        GpuApi::Cuda => "SIM_TRAIN_REQUIRE_CUDA",
        GpuApi::CudaHost => return true,
    };
    std::env::var_os(var).is_some_and(|v| !v.is_empty() && v != "0")
}

/// A visible SKIP line for `test`, or a failure when `api` is [`required`].
#[allow(dead_code)]
pub fn skip_or_fail(api: sim_train::env::gpu::GpuApi, test: &str, why: &dyn std::fmt::Display) {
    assert!(
        !required(api),
        "{test}: the {} backend is required here (SIM_TRAIN_REQUIRE_{}) but cannot run: {why}",
        api.name(),
        api.name().to_uppercase()
    );
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIP {test} ({}): {why}", api.name());
}

/// Whether the GPU backend `api` can run here; `None` after a visible SKIP line when it
/// cannot, or a failure when it is [`required`].
#[allow(dead_code)] // not every test binary runs a GPU backend
pub fn gpu_available(api: sim_train::env::gpu::GpuApi, test: &str) -> Option<()> {
    match sim_train::env::gpu::open_device(api) {
        Ok(_) => Some(()),
        Err(why) => {
            skip_or_fail(api, test, &why);
            None
        }
    }
}
