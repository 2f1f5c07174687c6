//! `[walkforward]`: the sweep's data, universe, folds, trials, evaluation and promotion
//! gates.

use super::folds::{FoldSpec, Window};
use crate::backtest::Baseline;
use crate::learn::eval::ActMode;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Keys (prefixes) a config of the sweep may override: how the agent learns and what it
/// observes and does, not how it is evaluated.
pub const SWEEPABLE: &[&str] = &[
    "train.",
    "env.reward.",
    "env.features",
    "env.actions",
    "env.start_times",
    "env.max_episode_steps",
    "sampler.",
    "preload.",
];

/// One configuration of the sweep: a name and `--set` overrides (of [`SWEEPABLE`] keys)
/// layered over the resolved config for its units.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// Letters, digits, `-` and `_` (it names the units' folders).
    pub name: String,
    /// `section.key=value` overrides, as on the command line.
    #[serde(default)]
    pub set: Vec<String>,
}

/// Promotion gates, applied to each trial's stitched out-of-sample portfolio; unset gates
/// are not applied.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Gates {
    /// Annualized Sharpe ratio at least this.
    pub min_sharpe: Option<f64>,
    /// Maximum drawdown no deeper than this fraction (0.1 = a 10 % fall).
    pub max_drawdown: Option<f64>,
    /// At least this many round trips.
    pub min_trades: Option<u64>,
    /// At least this share of winning round trips.
    pub min_win_rate: Option<f64>,
}

/// `[walkforward]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WalkForwardConfig {
    /// Day cache the sweep trains and tests on (`--cache` overrides it).
    pub cache: Option<PathBuf>,
    /// Scanner index of that cache: needed by `query`, and by `use_index`.
    pub index: Option<PathBuf>,
    /// First and last day of the sweep (inclusive); unset = the cache's range.
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// Universe: these symbols; empty = every symbol in the cache.
    pub symbols: Vec<String>,
    /// Universe filter: an index query on the days table. A fold trades the symbols with
    /// a matching day on or before its last training day (no look-ahead in the choice).
    pub query: Option<String>,
    pub window: Window,
    pub train_days: usize,
    pub test_days: usize,
    /// Days between test windows; 0 = test_days + embargo_days.
    pub step_days: usize,
    pub purge_days: usize,
    pub embargo_days: usize,
    /// Fold k starts from fold k−1's final weights (same config and seed) instead of a
    /// fresh initialization; such units run in order within one shard.
    pub warm_start: bool,
    /// Training episodes come from the index's curriculum sampler (else from
    /// `env.start_times` over the training days).
    pub use_index: bool,
    /// One trial per seed (`train.seed`) and config.
    pub seeds: Vec<u64>,
    /// The configs swept; empty = one config, `base`, with no overrides.
    pub configs: Vec<Variant>,
    /// How the policy acts out of sample.
    pub eval_mode: ActMode,
    /// Seed of sampled actions.
    pub eval_seed: u64,
    /// Baselines run on every test window beside the policy.
    pub baselines: Vec<Baseline>,
    /// Blocks of the CSCV split for the probability of backtest overfitting (even).
    pub pbo_partitions: usize,
    pub gates: Gates,
}

impl Default for WalkForwardConfig {
    fn default() -> Self {
        WalkForwardConfig {
            cache: None,
            index: None,
            from: None,
            to: None,
            symbols: Vec::new(),
            query: None,
            window: Window::Rolling,
            train_days: 60,
            test_days: 20,
            step_days: 0,
            purge_days: 1,
            embargo_days: 1,
            warm_start: false,
            use_index: false,
            seeds: vec![1],
            configs: Vec::new(),
            eval_mode: ActMode::Greedy,
            eval_seed: 0,
            baselines: vec![Baseline::Flat, Baseline::BuyAndHold, Baseline::SmaCross],
            pbo_partitions: 8,
            gates: Gates {
                min_sharpe: Some(0.5),
                max_drawdown: Some(0.2),
                min_trades: Some(20),
                min_win_rate: Some(0.4),
            },
        }
    }
}

impl WalkForwardConfig {
    /// The fold layout.
    pub fn folds(&self) -> FoldSpec {
        FoldSpec {
            window: self.window,
            train_days: self.train_days,
            test_days: self.test_days,
            step_days: self.step_days,
            purge_days: self.purge_days,
            embargo_days: self.embargo_days,
        }
    }

    /// The configs swept (`base` when none is listed).
    pub fn variants(&self) -> Vec<Variant> {
        if self.configs.is_empty() {
            vec![Variant {
                name: "base".into(),
                set: Vec::new(),
            }]
        } else {
            self.configs.clone()
        }
    }

    /// Checks what types cannot; errors name the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.train_days == 0 || self.test_days == 0 {
            return Err(format!(
                "walkforward.train_days = {} and walkforward.test_days = {}: both must be at least 1",
                self.train_days, self.test_days
            ));
        }
        let step = self.folds().step();
        if step < self.test_days + self.embargo_days {
            return Err(format!(
                "walkforward.step_days = {} is shorter than test_days + embargo_days = {}: test windows would overlap or fall in an embargo",
                self.step_days,
                self.test_days + self.embargo_days
            ));
        }
        if let (Some(f), Some(t)) = (self.from, self.to)
            && f > t
        {
            return Err(format!(
                "walkforward.from = {f} is after walkforward.to = {t}"
            ));
        }
        if self.seeds.is_empty() {
            return Err("walkforward.seeds is empty: list at least one seed, e.g. [1]".into());
        }
        let mut seeds = self.seeds.clone();
        seeds.sort_unstable();
        if seeds.windows(2).any(|w| w[0] == w[1]) {
            return Err(format!(
                "walkforward.seeds = {:?} repeats a seed: each trial needs its own",
                self.seeds
            ));
        }
        let mut names = Vec::new();
        for v in &self.configs {
            let ok = !v.name.is_empty()
                && v.name.len() <= 40
                && v.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ok {
                return Err(format!(
                    "walkforward.configs name {:?}: use 1 to 40 letters, digits, '-' or '_'",
                    v.name
                ));
            }
            if v.name == "date" || self.baselines.iter().any(|b| b.name() == v.name) {
                return Err(format!(
                    "walkforward.configs name {:?} is taken by a baseline or the date column of the report's tables: pick another",
                    v.name
                ));
            }
            if let Some(key) = v
                .set
                .iter()
                .filter_map(|s| s.split_once('=').map(|(k, _)| k.trim()))
                .find(|k| !SWEEPABLE.iter().any(|p| k.starts_with(p)))
            {
                return Err(format!(
                    "walkforward.configs {:?} sets {key}: a config may change {} only; anything else changes how units are evaluated (costs, execution, baselines), so configs would not be judged on the same terms: run a sweep per setting",
                    v.name,
                    SWEEPABLE.join(", ")
                ));
            }
            if names.contains(&&v.name) {
                return Err(format!(
                    "walkforward.configs name {:?} is used twice: names must be unique",
                    v.name
                ));
            }
            names.push(&v.name);
        }
        if self.pbo_partitions < 2 || !self.pbo_partitions.is_multiple_of(2) {
            return Err(format!(
                "walkforward.pbo_partitions = {}: must be even and at least 2",
                self.pbo_partitions
            ));
        }
        if self.query.as_deref().is_some_and(|q| !q.trim().is_empty()) && self.index.is_none()
            || self.use_index && self.index.is_none()
        {
            return Err(
                "walkforward.index is unset: walkforward.query and walkforward.use_index read a scanner index (`sim-train scan`)".into(),
            );
        }
        let g = &self.gates;
        if g.max_drawdown.is_some_and(|d| d.is_nan() || d < 0.0) {
            return Err("walkforward.gates.max_drawdown must be a non-negative fraction, e.g. 0.2 (inf = no gate)".into());
        }
        if g.min_win_rate.is_some_and(|w| !(0.0..=1.0).contains(&w)) {
            return Err("walkforward.gates.min_win_rate must be in [0, 1]".into());
        }
        if g.min_sharpe.is_some_and(f64::is_nan) {
            return Err("walkforward.gates.min_sharpe must be a number (-inf = no gate)".into());
        }
        Ok(())
    }
}
