//! Running units: train on the fold's training days, evaluate out of sample on its test
//! days beside the baselines, and record what the merge needs in `result.json`.
//!
//! A unit is complete when its `result.json` exists; it is written atomically, last. A
//! shard that finds a complete unit skips it. One that finds an incomplete unit (a crash,
//! a preempted job) continues its training run exactly from the latest checkpoint when
//! there is one (resume is bit-identical), else starts it again; the evaluation is
//! always redone. A unit is run by one process at a time (a lock file beside it); a
//! shard that finds a unit locked leaves it to the process that holds it.

use super::plan::{Plan, Unit, unit_dir};
use crate::backtest::report::AccountReport;
use crate::config::Resolved;
use crate::env::DaySelection;
use crate::error::{Error, IoContext, Result};
use crate::learn::eval::{EvalRequest, compare};
use crate::learn::run::{RunOptions, latest_checkpoint, train};
use crate::util::fs::write_atomic;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

pub const RESULT_FILE: &str = "result.json";
pub const TIMING_FILE: &str = "timing.json";

/// A daily return series of one account out of sample, with its round trips.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Track {
    /// A symbol, a baseline's name, or "policy".
    pub name: String,
    pub dates: Vec<NaiveDate>,
    pub returns: Vec<f64>,
    /// Round trips closed, and those with a positive net P&L.
    pub trades: u64,
    pub wins: u64,
}

impl Track {
    fn of(name: &str, account: &AccountReport) -> Track {
        let trades = account.trades.trades as u64;
        let wins = if trades == 0 {
            0
        } else {
            (account.trades.win_rate * trades as f64).round() as u64
        };
        Track {
            name: name.to_string(),
            dates: account.daily_dates(),
            returns: account.daily_returns(),
            trades,
            wins,
        }
    }
}

/// What the unit trained on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainPart {
    pub first: NaiveDate,
    pub last: NaiveDate,
    pub days: usize,
    pub symbols: Vec<String>,
    pub seed: u64,
    pub warm_start_from: Option<String>,
    pub global_step: u64,
    pub episodes: u64,
}

/// `units/<id>/result.json`: the unit and its out-of-sample tracks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnitResult {
    pub config_hash: String,
    pub unit: Unit,
    pub train: TrainPart,
    pub test_first: NaiveDate,
    pub test_last: NaiveDate,
    /// The policy's portfolio (all symbols of the fold).
    pub policy: Track,
    /// The policy's account of each symbol.
    pub symbols: Vec<Track>,
    /// Each baseline's portfolio on the same days.
    pub baselines: Vec<Track>,
}

/// Seconds a unit took (kept apart from the result: results are reproducible, times are
/// not).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct UnitTiming {
    pub train_s: f64,
    pub eval_s: f64,
    pub resumed: bool,
}

/// The config a unit trains with: the plan's, its variant's overrides, then the unit's
/// seed, days and symbols.
pub fn unit_config(plan: &Plan, resolved: &Resolved, unit: &Unit) -> Result<Resolved> {
    let fold = &plan.folds[unit.fold];
    let variant = plan.variant(&unit.config).ok_or_else(|| {
        Error::Data(format!(
            "unit {} names an unknown config {}",
            unit.id, unit.config
        ))
    })?;
    let symbols = toml::Value::Array(
        fold.symbols
            .iter()
            .map(|s| toml::Value::String(s.clone()))
            .collect(),
    );
    let mut sets = variant.set.clone();
    sets.extend([
        "train.env=\"market\"".to_string(),
        format!("train.seed={}", unit.seed),
        format!("train.from={}", fold.fold.train[0]),
        format!("train.to={}", fold.fold.train.last().expect("non-empty")),
        format!("train.symbols={symbols}"),
    ]);
    resolved.with_sets(&sets)
}

/// Reads a complete unit's result, checking it belongs to `plan`.
pub fn read_result(plan_dir: &Path, plan: &Plan, unit: &Unit) -> Result<Option<UnitResult>> {
    let path = unit_dir(plan_dir, &unit.id).join(RESULT_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let bytes = std::fs::read(&path).at(&path)?;
    let r: UnitResult = serde_json::from_slice(&bytes)
        .map_err(|e| Error::input(&path, format!("unreadable unit result: {e}")))?;
    if r.config_hash != plan.config_hash || r.unit != *unit {
        return Err(Error::input(
            &path,
            "belongs to another plan: delete the unit folder and run its shard again",
        ));
    }
    Ok(Some(r))
}

/// What became of a unit in this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Complete before: skipped.
    Skipped,
    /// Ran here (from scratch or continued from a checkpoint).
    Ran,
    /// Being run by another process right now (its lock is held): left to it.
    Busy,
}

/// Runs `unit` unless complete.
pub fn run_unit(
    plan_dir: &Path,
    plan: &Plan,
    resolved: &Resolved,
    unit: &Unit,
    progress: bool,
) -> Result<Outcome> {
    if read_result(plan_dir, plan, unit)?.is_some() {
        return Ok(Outcome::Skipped);
    }
    // One process per unit: a requeued task, a pod believed dead, or shards run with
    // another N must not train the same unit at once. The lock goes with the process.
    let lock_path = plan_dir
        .join(super::plan::UNITS_DIR)
        .join(format!(".{}.lock", unit.id));
    let lock = std::fs::File::create(&lock_path).at(&lock_path)?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(Outcome::Busy),
        Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&lock_path, e)),
    }
    // Another process may have finished it while we waited for nothing.
    if read_result(plan_dir, plan, unit)?.is_some() {
        return Ok(Outcome::Skipped);
    }
    let wf = &resolved.config.walkforward;
    let dir = unit_dir(plan_dir, &unit.id);
    let run_dir = dir.join("run");
    let resume = latest_checkpoint(&run_dir).is_ok();
    if !resume && dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    }
    let eval_dir = dir.join("eval");
    if eval_dir.exists() {
        std::fs::remove_dir_all(&eval_dir).map_err(|e| Error::io(&eval_dir, e))?;
    }
    std::fs::create_dir_all(&dir).at(&dir)?;
    let init_from = match &unit.after {
        None => None,
        Some(prev) => {
            let prev_unit = plan.unit(prev).ok_or_else(|| {
                Error::Data(format!("unit {} follows unknown unit {prev}", unit.id))
            })?;
            if read_result(plan_dir, plan, prev_unit)?.is_none() {
                return Err(Error::Usage(format!(
                    "unit {} warm-starts from {prev}, which is not complete: units of a chain run in order in one shard",
                    unit.id
                )));
            }
            Some(latest_checkpoint(&unit_dir(plan_dir, prev).join("run"))?)
        }
    };
    let fold = &plan.folds[unit.fold];
    let r = unit_config(plan, resolved, unit)?;
    let clock = Instant::now();
    let summary = train(
        &r,
        &RunOptions {
            run_dir: run_dir.clone(),
            resume,
            cache: Some(plan.cache.clone()),
            index: wf.use_index.then(|| plan.index.clone()).flatten(),
            stop_after: None,
            progress,
            init_from,
        },
    )?;
    if !summary.finished {
        return Err(Error::Usage(format!(
            "unit {} stopped before the end of its training (Ctrl-C); run the shard again to continue it",
            unit.id
        )));
    }
    let train_s = clock.elapsed().as_secs_f64();
    let clock = Instant::now();
    let test = &fold.fold.test;
    let (test_first, test_last) = (test[0], *test.last().expect("test_days ≥ 1"));
    let sel = DaySelection {
        symbols: Some(fold.symbols.clone()),
        from: Some(test_first),
        to: Some(test_last),
    };
    let req = EvalRequest {
        mode: wf.eval_mode,
        seed: wf.eval_seed,
    };
    let evaluated = crate::learn::checkpoint::evaluate(&req, &run_dir, None, &plan.cache, &sel)?;
    let out = compare(&req, evaluated, &plan.cache, &sel, &wf.baselines, &eval_dir)?;
    let policy = &out.policy.report;
    let baselines = wf
        .baselines
        .iter()
        .zip(&out.baselines)
        .map(|(b, bt)| Track::of(b.name(), &bt.report.portfolio))
        .collect();
    let result = UnitResult {
        config_hash: plan.config_hash.clone(),
        unit: unit.clone(),
        train: TrainPart {
            first: fold.fold.train[0],
            last: *fold.fold.train.last().expect("non-empty"),
            days: fold.fold.train.len(),
            symbols: fold.symbols.clone(),
            seed: unit.seed,
            warm_start_from: unit.after.clone(),
            global_step: summary.global_step,
            episodes: summary.episodes,
        },
        test_first,
        test_last,
        policy: Track::of("policy", &policy.portfolio),
        symbols: policy
            .symbols
            .iter()
            .map(|a| Track::of(&a.name, a))
            .collect(),
        baselines,
    };
    let timing = UnitTiming {
        train_s,
        eval_s: clock.elapsed().as_secs_f64(),
        resumed: resume,
    };
    write_atomic(
        &dir.join(TIMING_FILE),
        &serde_json::to_vec_pretty(&timing).expect("serializes"),
    )?;
    write_atomic(
        &dir.join(RESULT_FILE),
        &serde_json::to_vec_pretty(&result).expect("serializes"),
    )?;
    Ok(Outcome::Ran)
}
