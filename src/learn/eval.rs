//! Deterministic evaluation of a trained policy on chosen days, through the backtest
//! engine ([`crate::backtest`]): the same execution model, accounting and report as the
//! baselines and positions files, so the comparison is like for like.
//!
//! The policy comes from a training run's checkpoint (run through libtorch,
//! [`super::checkpoint`], built with the `torch` feature) or from an exported bundle (run
//! by the pure-Rust forward, [`crate::bundle::native`], which is what live trading runs).
//!
//! The policy acts at every bar, greedily (its most probable action) or by seeded draws
//! from its distribution, as asked and stated in the report, from a zero LSTM state at
//! each day's start, on observations normalized by the statistics it was trained
//! with. Each symbol is one account whose equity carries from day to day, as in
//! `sim-train backtest`.

use crate::backtest::engine::{Decider, run_symbol_with};
use crate::backtest::report::Source;
use crate::backtest::{Backtest, Baseline, finish, run_baseline, selected_symbols, start_sec};
use crate::bundle::Bundle;
use crate::bundle::native::{NativePolicy, NativeState};
use crate::config::{RESOLVED_FILE, Resolved};
use crate::env::{DaySelection, EnvParams, ReferenceEnv, load_days};
use crate::error::{Error, Result};
use crate::metrics::paired_t_stat;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How the evaluated policy picks its action from its distribution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ActMode {
    /// The most probable action (deterministic).
    Greedy,
    /// A draw from the distribution, seeded per account (reproducible).
    Sampled,
}

/// How the evaluated policy acts. The policy itself is an exported bundle
/// ([`evaluate_bundle`]) or, with the `torch` feature, a training run's checkpoint
/// ([`super::checkpoint::evaluate`]).
#[derive(Clone, Debug)]
pub struct EvalRequest {
    pub mode: ActMode,
    /// Seed of the sampled actions (ignored when greedy).
    pub seed: u64,
}

impl EvalRequest {
    /// The mode as the reports name it ("greedy", "sampled").
    pub(super) fn mode_name(&self) -> String {
        format!("{:?}", self.mode).to_lowercase()
    }
}

/// The run dir of a checkpoint folder (`RUN/checkpoints/update-NNNNNNNN`).
pub fn run_dir_of(checkpoint: &Path) -> Result<PathBuf> {
    checkpoint
        .parent()
        .and_then(Path::parent)
        .filter(|d| d.join(RESOLVED_FILE).is_file())
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            Error::Usage(format!(
                "{} is not inside a run dir (expected RUN_DIR/checkpoints/update-NNNNNNNN with RUN_DIR/{RESOLVED_FILE})",
                checkpoint.display()
            ))
        })
}

/// How an account's decider picks an action from log-probabilities: the most probable
/// one, or a draw from a stream seeded per symbol (so results do not depend on
/// scheduling).
pub(super) fn pick(log_probs: &[f32], rng: &mut Option<ChaCha8Rng>) -> usize {
    match rng {
        None => crate::bundle::native::greedy(log_probs),
        Some(rng) => super::network::sample(log_probs, rng.random()),
    }
}

pub(super) fn account_rng(req: &EvalRequest, symbol: &str) -> Option<ChaCha8Rng> {
    (req.mode == ActMode::Sampled).then(|| {
        let salt = xxhash_rust::xxh3::xxh3_64(symbol.as_bytes());
        ChaCha8Rng::seed_from_u64(req.seed ^ salt)
    })
}

/// A bundle's policy (pure Rust) as a [`Decider`] for one account.
struct NativeDecider<'a> {
    policy: &'a NativePolicy,
    actions: &'a [f64],
    state: NativeState,
    first: bool,
    raw: Vec<f32>,
    rng: Option<ChaCha8Rng>,
    log_probs: Vec<f32>,
}

impl Decider for NativeDecider<'_> {
    fn begin_day(&mut self, _: usize) -> Result<()> {
        self.first = true;
        Ok(())
    }

    fn target(&mut self, env: &ReferenceEnv, _: usize) -> Result<f64> {
        env.observe(&mut self.raw);
        self.policy
            .step(&self.raw, self.first, &mut self.state, &mut self.log_probs);
        self.first = false;
        Ok(self.actions[pick(&self.log_probs, &mut self.rng)])
    }
}

/// An evaluation's backtest, the policy's path and the configuration it was trained with.
pub struct Evaluated {
    pub backtest: Backtest,
    /// The checkpoint folder or bundle evaluated.
    pub policy: PathBuf,
    pub kind: &'static str,
    pub resolved: Resolved,
}

/// Runs one account per selected symbol of `cache`, in parallel, each with the decider
/// `make` builds for it.
pub(super) fn run_accounts<D: Decider>(
    params: &Arc<EnvParams>,
    start: u32,
    cache: &Path,
    sel: &DaySelection,
    make: impl Fn(&str) -> Result<D> + Sync,
) -> Result<Vec<crate::backtest::SymbolRun>> {
    let symbols = selected_symbols(cache, sel)?;
    symbols
        .par_iter()
        .map(|symbol| {
            let one = DaySelection {
                symbols: Some(vec![symbol.clone()]),
                from: sel.from,
                to: sel.to,
            };
            let days = load_days(cache, &one, params)?;
            let mut decider = make(symbol)?;
            run_symbol_with(params, start, symbol, &days, &mut decider)
        })
        .collect()
}

/// Runs the bundle in `dir` (the pure-Rust forward, its network shared by every account)
/// over the selected days of `cache`, one account per symbol.
pub fn evaluate_bundle(
    req: &EvalRequest,
    dir: &Path,
    cache: &Path,
    sel: &DaySelection,
) -> Result<Evaluated> {
    let bundle = Bundle::open(dir)?;
    let policy = NativePolicy::from_bundle(&bundle)?;
    let (resolved, params) = bundle.environment(cache)?;
    let config = resolved.config.clone();
    let start = start_sec(&config)?;
    let runs = run_accounts(&params, start, cache, sel, |symbol| {
        Ok(NativeDecider {
            policy: &policy,
            actions: &params.actions,
            state: policy.state(),
            first: true,
            raw: vec![0.0; policy.obs_dim],
            rng: account_rng(req, symbol),
            log_probs: vec![0.0; policy.n_actions],
        })
    })?;
    let source = Source::Bundle {
        bundle: dir.display().to_string(),
        content_hash: bundle.manifest.content_hash.clone(),
        mode: req.mode_name(),
    };
    Ok(Evaluated {
        backtest: finish(source, runs, &config),
        policy: dir.to_path_buf(),
        kind: "bundle",
        resolved,
    })
}

/// How the policy's daily returns compare with a baseline's on the same days.
#[derive(Clone, Debug, Serialize)]
pub struct Versus {
    pub baseline: String,
    pub baseline_mean_daily_return: f64,
    pub baseline_total_return: f64,
    /// Mean of (policy − baseline) daily portfolio returns.
    pub mean_daily_excess: f64,
    /// Paired t-statistic of those differences (null when undefined).
    pub t_stat: Option<f64>,
}

/// `comparison.json`: the policy against each baseline, out of sample.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// The checkpoint folder or bundle evaluated.
    pub policy: PathBuf,
    /// "checkpoint" (libtorch) or "bundle" (the pure-Rust forward).
    pub policy_kind: String,
    /// How the policy acted (greedy or sampled, with the seed).
    pub mode: ActMode,
    pub seed: Option<u64>,
    pub cache: PathBuf,
    pub days: usize,
    pub first_date: Option<chrono::NaiveDate>,
    pub last_date: Option<chrono::NaiveDate>,
    pub policy_mean_daily_return: f64,
    pub policy_total_return: f64,
    pub policy_sharpe: Option<f64>,
    pub policy_trades: u64,
    pub versus: Vec<Versus>,
}

/// Arithmetic mean; 0 when empty (no days compared).
fn mean(x: &[f64]) -> f64 {
    crate::util::stats::mean(x.iter().copied()).unwrap_or(0.0)
}

/// An evaluation beside its baselines: the comparison and every backtest behind it.
pub struct Compared {
    pub comparison: Comparison,
    pub policy: Backtest,
    /// In the order the baselines were asked for.
    pub baselines: Vec<Backtest>,
}

/// Runs `baselines` on the selection `evaluated` ran on and compares them with it; writes
/// each report under `out/<name>/` and `out/comparison.json`.
pub fn compare(
    req: &EvalRequest,
    evaluated: Evaluated,
    cache: &Path,
    sel: &DaySelection,
    baselines: &[Baseline],
    out: &Path,
) -> Result<Compared> {
    let Evaluated {
        backtest: policy,
        policy: policy_path,
        kind,
        resolved,
    } = evaluated;
    let resolved = &resolved;
    policy.write(&out.join("policy"), resolved)?;
    let p = &policy.report.portfolio;
    let p_daily = p.daily_returns();
    let mut versus = Vec::new();
    let mut runs = Vec::new();
    for &b in baselines {
        let bt = run_baseline(cache, b, sel, &resolved.config)?;
        bt.write(&out.join(b.name()), resolved)?;
        let daily = bt.report.portfolio.daily_returns();
        if bt.report.portfolio.daily_dates() != p.daily_dates() {
            return Err(Error::Data(format!(
                "the policy and the {} baseline ran on different days",
                b.name()
            )));
        }
        let excess: Vec<f64> = p_daily.iter().zip(&daily).map(|(a, b)| a - b).collect();
        versus.push(Versus {
            baseline: b.name().into(),
            baseline_mean_daily_return: mean(&daily),
            baseline_total_return: bt.report.portfolio.returns.total_return,
            mean_daily_excess: mean(&excess),
            t_stat: paired_t_stat(&p_daily, &daily),
        });
        runs.push(bt);
    }
    let cmp = Comparison {
        policy: policy_path,
        policy_kind: kind.to_string(),
        mode: req.mode,
        seed: (req.mode == ActMode::Sampled).then_some(req.seed),
        cache: cache.to_path_buf(),
        days: p_daily.len(),
        first_date: p.first_date,
        last_date: p.last_date,
        policy_mean_daily_return: mean(&p_daily),
        policy_total_return: p.returns.total_return,
        policy_sharpe: Some(p.returns.sharpe).filter(|s| s.is_finite()),
        policy_trades: p.trades.trades as u64,
        versus,
    };
    let json = serde_json::to_vec_pretty(&cmp).expect("serializes");
    crate::util::fs::write_atomic(&out.join("comparison.json"), &json)?;
    Ok(Compared {
        comparison: cmp,
        policy,
        baselines: runs,
    })
}
