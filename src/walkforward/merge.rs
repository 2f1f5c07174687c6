//! The merge: every unit's out-of-sample result, aggregated per trial (config × seed),
//! per config, per fold and per symbol, judged by the promotion gates and the
//! overfitting diagnostics, and written as `report/` (JSON, CSV, Parquet tables, SVG
//! charts and a self-contained `report.html`).
//!
//! Definitions:
//! - a **trial**'s out-of-sample series is its units' daily portfolio returns, stitched
//!   in fold order (test windows never overlap);
//! - a **config**'s series is the mean over its seeds of their trials' returns, day by
//!   day (the capital split equally between the seeds' agents); its trades are pooled;
//! - a config is **promoted** when every one of its trials passes every gate;
//! - the **selected** config is the one whose series has the highest Sharpe ratio: the
//!   charts show it as the agent;
//! - the **deflated Sharpe ratio** judges the trial with the highest per-period Sharpe
//!   ratio against all trials of the sweep; the **PBO** (CSCV) ranks the configs' series
//!   (at least two configs).
//!
//! The report depends only on the units' results, so N shards merged equal one process
//! running every unit, byte for byte; run times go to `timing.json` beside it.

use super::config::Gates;
use super::plan::{AUDIT_FILE, Plan, unit_dir};
use super::tables::{Kind, Table, Val};
use super::unit::{TIMING_FILE, Track, UnitResult, UnitTiming, read_result};
use super::{charts, html};
use crate::config::Resolved;
use crate::error::{Error, IoContext, Result};
use crate::metrics::{ReturnMetrics, paired_t_stat};
use crate::overfit::{DeflatedSharpe, Pbo, Performance, sharpe_ratio};
use crate::util::fs::write_atomic;
use chrono::NaiveDate;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const REPORT_DIR: &str = "report";

/// Out-of-sample statistics of a stitched series.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stats {
    pub days: usize,
    pub returns: ReturnMetrics,
    pub mean_daily_return: f64,
    pub trades: u64,
    pub wins: u64,
    /// `wins / trades`; NaN (null) without trades.
    #[serde(serialize_with = "crate::metrics::finite_or_null")]
    pub win_rate: f64,
}

impl Stats {
    /// Statistics of `returns` (daily) with `trades` round trips of which `wins` won.
    pub fn of(returns: &[f64], trades: u64, wins: u64, ppy: f64, rf: f64) -> Stats {
        Stats {
            days: returns.len(),
            returns: ReturnMetrics::from_returns(returns, ppy, rf),
            mean_daily_return: if returns.is_empty() {
                f64::NAN
            } else {
                returns.iter().sum::<f64>() / returns.len() as f64
            },
            trades,
            wins,
            win_rate: if trades == 0 {
                f64::NAN
            } else {
                wins as f64 / trades as f64
            },
        }
    }
}

/// One gate applied to one trial.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GateCheck {
    pub gate: String,
    pub threshold: f64,
    /// The trial's value (null when undefined, which fails).
    #[serde(serialize_with = "crate::metrics::finite_or_null")]
    pub value: f64,
    pub pass: bool,
}

/// Applies `gates` to `s`: Sharpe ≥ min, drawdown depth ≤ max, trades ≥ min, win rate ≥
/// min. An undefined value (no trades for the win rate, fewer than 2 days for Sharpe)
/// fails its gate; a gate set to its no-op value is not applied.
pub fn check_gates(gates: &Gates, s: &Stats) -> Vec<GateCheck> {
    let mut out = Vec::new();
    let mut add = |gate: &str, threshold: f64, value: f64, pass: bool| {
        out.push(GateCheck {
            gate: gate.into(),
            threshold,
            value,
            pass: value.is_finite() && pass,
        });
    };
    // A gate at its no-op value (-inf, inf, 0, 0) is not applied at all.
    if let Some(m) = gates.min_sharpe.filter(|m| *m > f64::NEG_INFINITY) {
        add("min_sharpe", m, s.returns.sharpe, s.returns.sharpe >= m);
    }
    if let Some(m) = gates.max_drawdown.filter(|m| *m < f64::INFINITY) {
        let depth = -s.returns.max_drawdown;
        add("max_drawdown", m, depth, depth <= m);
    }
    if let Some(m) = gates.min_trades.filter(|m| *m > 0) {
        add("min_trades", m as f64, s.trades as f64, s.trades >= m);
    }
    if let Some(m) = gates.min_win_rate.filter(|m| *m > 0.0) {
        add("min_win_rate", m, s.win_rate, s.win_rate >= m);
    }
    out
}

/// A trial: one config and seed over every fold.
#[derive(Clone, Debug, Serialize)]
pub struct Trial {
    pub config: String,
    pub seed: u64,
    pub stats: Stats,
    /// Per-period (daily, not annualized) Sharpe ratio, the input of the DSR.
    #[serde(serialize_with = "crate::metrics::finite_or_null")]
    pub daily_sharpe: f64,
    pub gates: Vec<GateCheck>,
    pub passed: bool,
}

/// A config: its seeds' trials averaged day by day.
#[derive(Clone, Debug, Serialize)]
pub struct ConfigSummary {
    pub config: String,
    pub overrides: Vec<String>,
    pub seeds: usize,
    pub stats: Stats,
    /// Every trial of the config passed every gate.
    pub promoted: bool,
}

/// A diagnostic that may not apply to a sweep (with the reason when it does not).
#[derive(Clone, Debug, Serialize)]
pub struct Diagnostic<T> {
    pub result: Option<T>,
    /// What the result was computed from, or why there is none.
    pub note: String,
}

/// `report/report.json`.
#[derive(Clone, Debug, Serialize)]
pub struct WalkForwardReport {
    pub version: String,
    pub config_hash: String,
    pub data_hash: String,
    pub cache: PathBuf,
    pub universe: Vec<String>,
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    pub trading_days: usize,
    pub folds: usize,
    pub units: usize,
    pub eval_mode: crate::learn::eval::ActMode,
    pub periods_per_year: f64,
    pub risk_free: f64,
    pub gates: Gates,
    pub selected_config: String,
    pub configs: Vec<ConfigSummary>,
    pub trials: Vec<Trial>,
    pub baselines: BTreeMap<String, Stats>,
    pub deflated_sharpe: Diagnostic<DeflatedSharpe>,
    pub pbo: Diagnostic<Pbo>,
}

/// Stitches tracks (in fold order) into one.
fn stitch<'a>(name: &str, tracks: impl IntoIterator<Item = &'a Track>) -> Track {
    let mut out = Track {
        name: name.to_string(),
        dates: Vec::new(),
        returns: Vec::new(),
        trades: 0,
        wins: 0,
    };
    for t in tracks {
        out.dates.extend(&t.dates);
        out.returns.extend(&t.returns);
        out.trades += t.trades;
        out.wins += t.wins;
    }
    out
}

/// The day-by-day mean of tracks on the same dates (trades pooled).
fn mean_track(name: &str, tracks: &[&Track]) -> Result<Track> {
    let first = tracks[0];
    if let Some(t) = tracks.iter().find(|t| t.dates != first.dates) {
        return Err(Error::Data(format!(
            "the out-of-sample days of {} and {} differ: their units did not test on the same days",
            first.name, t.name
        )));
    }
    let n = tracks.len() as f64;
    Ok(Track {
        name: name.to_string(),
        dates: first.dates.clone(),
        returns: (0..first.returns.len())
            .map(|i| tracks.iter().map(|t| t.returns[i]).sum::<f64>() / n)
            .collect(),
        trades: tracks.iter().map(|t| t.trades).sum(),
        wins: tracks.iter().map(|t| t.wins).sum(),
    })
}

/// Every unit's result, in plan order; errors list the units that are not complete.
pub fn collect(plan_dir: &Path, plan: &Plan) -> Result<Vec<UnitResult>> {
    let mut results = Vec::with_capacity(plan.units.len());
    let mut missing = Vec::new();
    for u in &plan.units {
        match read_result(plan_dir, plan, u)? {
            Some(r) => results.push(r),
            None => missing.push(u.id.clone()),
        }
    }
    if !missing.is_empty() {
        let shown: Vec<&str> = missing.iter().take(5).map(String::as_str).collect();
        return Err(Error::Usage(format!(
            "{} of {} units are not complete ({}{}): run their shards (`sim-train walk-forward run --plan {} --shard I/N`) before merging",
            missing.len(),
            plan.units.len(),
            shown.join(", "),
            if missing.len() > shown.len() {
                ", …"
            } else {
                ""
            },
            plan_dir.display()
        )));
    }
    Ok(results)
}

/// Wall-clock figures of the units, from their `timing.json`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Timing {
    pub units: usize,
    pub train_s: f64,
    pub eval_s: f64,
    /// Units per hour of compute (train + eval seconds summed over units).
    pub units_per_hour: f64,
}

fn timing(plan_dir: &Path, plan: &Plan) -> Timing {
    let mut t = Timing::default();
    for u in &plan.units {
        let path = unit_dir(plan_dir, &u.id).join(TIMING_FILE);
        let Some(ut) = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<UnitTiming>(&b).ok())
        else {
            continue;
        };
        t.units += 1;
        t.train_s += ut.train_s;
        t.eval_s += ut.eval_s;
    }
    let secs = t.train_s + t.eval_s;
    t.units_per_hour = if secs > 0.0 {
        t.units as f64 * 3600.0 / secs
    } else {
        f64::NAN
    };
    t
}

/// What [`merge`] produced.
pub struct Merged {
    pub report: WalkForwardReport,
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
    pub timing: Timing,
}

/// Merges the plan's complete units into `plan_dir/report/` (replacing an earlier
/// merge) and `plan_dir/timing.json`.
pub fn merge(plan_dir: &Path, plan: &Plan, resolved: &Resolved) -> Result<Merged> {
    let results = collect(plan_dir, plan)?;
    let wf = &resolved.config.walkforward;
    let (ppy, rf) = (
        resolved.config.backtest.periods_per_year,
        resolved.config.backtest.risk_free,
    );
    let by_id: BTreeMap<&str, &UnitResult> =
        results.iter().map(|r| (r.unit.id.as_str(), r)).collect();
    let unit_of = |fold: usize, config: &str, seed: u64| -> &UnitResult {
        let u = plan
            .units
            .iter()
            .find(|u| u.fold == fold && u.config == config && u.seed == seed)
            .expect("the plan has every fold × config × seed");
        by_id[u.id.as_str()]
    };
    let folds = plan.folds.len();

    // Trials and configs.
    let mut trials = Vec::new();
    let mut trial_tracks: BTreeMap<(String, u64), Track> = BTreeMap::new();
    let mut configs = Vec::new();
    let mut config_tracks: Vec<Track> = Vec::new();
    for v in &plan.configs {
        let mut seeds_tracks = Vec::new();
        for &seed in &plan.seeds {
            let t = stitch(
                &format!("{} seed {seed}", v.name),
                (0..folds).map(|f| &unit_of(f, &v.name, seed).policy),
            );
            let stats = Stats::of(&t.returns, t.trades, t.wins, ppy, rf);
            let gates = check_gates(&wf.gates, &stats);
            trials.push(Trial {
                config: v.name.clone(),
                seed,
                daily_sharpe: sharpe_ratio(&t.returns),
                passed: gates.iter().all(|g| g.pass),
                gates,
                stats,
            });
            seeds_tracks.push(t.clone());
            trial_tracks.insert((v.name.clone(), seed), t);
        }
        let refs: Vec<&Track> = seeds_tracks.iter().collect();
        let mean = mean_track(&v.name, &refs)?;
        configs.push(ConfigSummary {
            config: v.name.clone(),
            overrides: v.set.clone(),
            seeds: plan.seeds.len(),
            stats: Stats::of(&mean.returns, mean.trades, mean.wins, ppy, rf),
            promoted: trials
                .iter()
                .filter(|t| t.config == v.name)
                .all(|t| t.passed),
        });
        config_tracks.push(mean);
    }
    let selected = (0..configs.len())
        .max_by(|&a, &b| {
            let s = |k: usize| configs[k].stats.returns.sharpe;
            let (sa, sb) = (s(a), s(b));
            // NaN ranks lowest; ties keep the earlier config.
            match (sa.is_nan(), sb.is_nan()) {
                (true, true) => b.cmp(&a),
                (true, false) => std::cmp::Ordering::Less,
                (false, true) => std::cmp::Ordering::Greater,
                (false, false) => sa.total_cmp(&sb).then(b.cmp(&a)),
            }
        })
        .expect("at least one config");

    // Baselines: the same on every unit of a fold; taken from the first config and seed.
    let (c0, s0) = (&plan.configs[0].name, plan.seeds[0]);
    if let Some(r) = results
        .iter()
        .find(|r| r.baselines != unit_of(r.unit.fold, c0, s0).baselines)
    {
        return Err(Error::Data(format!(
            "unit {} saw other baseline results than {} on the same days: its config changed how units are evaluated",
            r.unit.id,
            unit_of(r.unit.fold, c0, s0).unit.id
        )));
    }
    let mut baseline_tracks: Vec<Track> = Vec::new();
    for (k, b) in wf.baselines.iter().enumerate() {
        baseline_tracks.push(stitch(
            b.name(),
            (0..folds).map(|f| &unit_of(f, c0, s0).baselines[k]),
        ));
    }
    let baselines: BTreeMap<String, Stats> = baseline_tracks
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                Stats::of(&t.returns, t.trades, t.wins, ppy, rf),
            )
        })
        .collect();

    // Diagnostics.
    // A trial without a Sharpe ratio (it never traded, or had a single day) counts as a
    // no-skill trial, 0, in the sweep's spread.
    let sharpes: Vec<f64> = trials
        .iter()
        .map(|t| {
            if t.daily_sharpe.is_finite() {
                t.daily_sharpe
            } else {
                0.0
            }
        })
        .collect();
    let undefined = trials
        .iter()
        .filter(|t| !t.daily_sharpe.is_finite())
        .count();
    let best_trial = (0..trials.len())
        .filter(|&k| trials[k].daily_sharpe.is_finite())
        .max_by(|&a, &b| sharpes[a].total_cmp(&sharpes[b]).then(b.cmp(&a)));
    let deflated_sharpe = match best_trial {
        None => Diagnostic {
            result: None,
            note: "no trial has a defined Sharpe ratio (fewer than 2 out-of-sample days, or no variation)".into(),
        },
        Some(k) => {
            let key = (trials[k].config.clone(), trials[k].seed);
            let what = format!(
                "the best of {} trials ({} seed {}) by daily Sharpe ratio, over its {} stitched out-of-sample daily returns{}",
                trials.len(),
                key.0,
                key.1,
                trial_tracks[&key].returns.len(),
                if undefined > 0 {
                    format!("; {undefined} trial(s) without a Sharpe ratio counted as 0")
                } else {
                    String::new()
                }
            );
            match DeflatedSharpe::from_returns(&trial_tracks[&key].returns, &sharpes) {
                Ok(d) => Diagnostic {
                    result: Some(d),
                    note: what,
                },
                Err(e) => Diagnostic {
                    result: None,
                    note: format!("{what}: not computed: {e}"),
                },
            }
        }
    };
    let pbo = if configs.len() < 2 {
        Diagnostic {
            result: None,
            note: "one config swept: the probability of backtest overfitting ranks several configs"
                .into(),
        }
    } else {
        let series: Vec<&[f64]> = config_tracks.iter().map(|t| t.returns.as_slice()).collect();
        let what = format!(
            "CSCV over {} configs' seed-averaged out-of-sample daily returns ({} days, {} blocks, Sharpe ratio)",
            configs.len(),
            config_tracks[0].returns.len(),
            wf.pbo_partitions
        );
        match Pbo::from_returns(&series, wf.pbo_partitions, Performance::Sharpe) {
            Ok(p) => Diagnostic {
                result: Some(p),
                note: what,
            },
            Err(e) => Diagnostic {
                result: None,
                note: format!("{what}: not computed: {e}"),
            },
        }
    };

    let report = WalkForwardReport {
        version: plan.version.clone(),
        config_hash: plan.config_hash.clone(),
        data_hash: plan.data_hash.clone(),
        cache: plan.cache.clone(),
        universe: plan.candidates.clone(),
        first_day: plan.days[0],
        last_day: *plan.days.last().expect("non-empty"),
        trading_days: plan.days.len(),
        folds,
        units: plan.units.len(),
        eval_mode: wf.eval_mode,
        periods_per_year: ppy,
        risk_free: rf,
        gates: wf.gates.clone(),
        selected_config: configs[selected].config.clone(),
        configs,
        trials,
        baselines,
        deflated_sharpe,
        pbo,
    };

    let tables = build_tables(
        plan,
        &results,
        &report,
        &config_tracks,
        &baseline_tracks,
        ppy,
        rf,
    );
    let dir = plan_dir.join(REPORT_DIR);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    }
    std::fs::create_dir_all(dir.join("charts")).at(&dir)?;
    let mut files = Vec::new();
    for t in &tables.all() {
        files.extend(t.write(&dir)?);
    }
    let audit = std::fs::read(plan_dir.join(AUDIT_FILE)).at(plan_dir.join(AUDIT_FILE))?;
    write_atomic(&dir.join(AUDIT_FILE), &audit)?;
    files.push(dir.join(AUDIT_FILE));
    let mut json = serde_json::to_string_pretty(&report).expect("serializes");
    json.push('\n');
    write_atomic(&dir.join("report.json"), json.as_bytes())?;
    files.push(dir.join("report.json"));
    let charts = draw_charts(
        plan,
        &report,
        &tables,
        &config_tracks,
        &baseline_tracks,
        selected,
    );
    for (name, svg) in &charts {
        let p = dir.join("charts").join(format!("{name}.svg"));
        write_atomic(&p, svg.as_bytes())?;
        files.push(p);
    }
    let page = render_page(plan, &report, &tables, &charts);
    write_atomic(&dir.join("report.html"), page.as_bytes())?;
    files.push(dir.join("report.html"));

    let timing = timing(plan_dir, plan);
    write_atomic(
        &plan_dir.join("timing.json"),
        &serde_json::to_vec_pretty(&timing).expect("serializes"),
    )?;
    Ok(Merged {
        report,
        dir,
        files,
        timing,
    })
}

/// The report's tables.
struct Tables {
    configs: Table,
    trials: Table,
    baselines: Table,
    folds: Table,
    symbols: Table,
    returns: Table,
    /// Total out-of-sample return of each (config, symbol), one per seed.
    symbol_totals: BTreeMap<(String, String), Vec<f64>>,
}

impl Tables {
    fn all(&self) -> [&Table; 6] {
        [
            &self.configs,
            &self.trials,
            &self.baselines,
            &self.folds,
            &self.symbols,
            &self.returns,
        ]
    }
}

fn col(name: &str, kind: Kind) -> (String, Kind) {
    (name.to_string(), kind)
}

/// The columns shared by every row of stitched statistics.
fn stats_columns() -> Vec<(String, Kind)> {
    vec![
        col("days", Kind::Int),
        col("total_return", Kind::Pct(2)),
        col("cagr", Kind::Pct(2)),
        col("sharpe", Kind::Num(2)),
        col("sortino", Kind::Num(2)),
        col("max_drawdown", Kind::Pct(2)),
        col("volatility", Kind::Pct(2)),
        col("trades", Kind::Int),
        col("win_rate", Kind::Pct(1)),
    ]
}

fn stats_values(s: &Stats) -> Vec<Val> {
    let r = &s.returns;
    vec![
        Val::I(s.days as i64),
        Val::F(r.total_return),
        Val::F(r.cagr),
        Val::F(r.sharpe),
        Val::F(r.sortino),
        Val::F(r.max_drawdown),
        Val::F(r.annual_volatility),
        Val::I(s.trades as i64),
        Val::F(s.win_rate),
    ]
}

fn build_tables(
    plan: &Plan,
    results: &[UnitResult],
    report: &WalkForwardReport,
    config_tracks: &[Track],
    baseline_tracks: &[Track],
    ppy: f64,
    rf: f64,
) -> Tables {
    let gate_names: Vec<String> = report
        .trials
        .first()
        .map(|t| t.gates.iter().map(|g| g.gate.clone()).collect())
        .unwrap_or_default();

    let mut cols = vec![col("config", Kind::Text), col("seeds", Kind::Int)];
    cols.extend(stats_columns());
    cols.push(col("promoted", Kind::Pass));
    cols.push(col("overrides", Kind::Text));
    let mut configs = Table::new("configs", cols);
    for c in &report.configs {
        let mut row = vec![Val::S(c.config.clone()), Val::I(c.seeds as i64)];
        row.extend(stats_values(&c.stats));
        row.push(Val::B(c.promoted));
        row.push(Val::S(c.overrides.join(" ")));
        configs.push(row);
    }

    let mut cols = vec![col("config", Kind::Text), col("seed", Kind::Int)];
    cols.extend(stats_columns());
    cols.push(col("daily_sharpe", Kind::Num(4)));
    for g in &gate_names {
        cols.push(col(&format!("gate_{g}"), Kind::Pass));
    }
    cols.push(col("passed", Kind::Pass));
    let mut trials = Table::new("trials", cols);
    for t in &report.trials {
        let mut row = vec![Val::S(t.config.clone()), Val::I(t.seed as i64)];
        row.extend(stats_values(&t.stats));
        row.push(Val::F(t.daily_sharpe));
        row.extend(t.gates.iter().map(|g| Val::B(g.pass)));
        row.push(Val::B(t.passed));
        trials.push(row);
    }

    let mut cols = vec![col("baseline", Kind::Text)];
    cols.extend(stats_columns());
    let mut baselines = Table::new("baselines", cols);
    for (name, s) in &report.baselines {
        let mut row = vec![Val::S(name.clone())];
        row.extend(stats_values(s));
        baselines.push(row);
    }

    // Per fold and unit, with each baseline on the same days.
    let mut cols = vec![
        col("fold", Kind::Int),
        col("config", Kind::Text),
        col("seed", Kind::Int),
        col("train_first", Kind::Text),
        col("train_last", Kind::Text),
        col("test_first", Kind::Text),
        col("test_last", Kind::Text),
        col("symbols", Kind::Int),
    ];
    cols.extend(stats_columns());
    let baseline_names: Vec<String> = baseline_tracks.iter().map(|t| t.name.clone()).collect();
    for b in &baseline_names {
        cols.push(col(&format!("{b}_total_return"), Kind::Pct(2)));
        cols.push(col(&format!("t_vs_{b}"), Kind::Num(2)));
    }
    let mut folds = Table::new("folds", cols);
    for r in results {
        let p = &r.policy;
        let s = Stats::of(&p.returns, p.trades, p.wins, ppy, rf);
        let mut row = vec![
            Val::I(r.unit.fold as i64),
            Val::S(r.unit.config.clone()),
            Val::I(r.unit.seed as i64),
            Val::S(r.train.first.to_string()),
            Val::S(r.train.last.to_string()),
            Val::S(r.test_first.to_string()),
            Val::S(r.test_last.to_string()),
            Val::I(r.train.symbols.len() as i64),
        ];
        row.extend(stats_values(&s));
        for b in &r.baselines {
            let bs = ReturnMetrics::from_returns(&b.returns, ppy, rf);
            row.push(Val::F(bs.total_return));
            let t = if b.dates == p.dates {
                paired_t_stat(&p.returns, &b.returns)
            } else {
                None
            };
            row.push(Val::F(t.unwrap_or(f64::NAN)));
        }
        folds.push(row);
    }

    // Per symbol: each trial's account of the symbol stitched over the folds it traded.
    let mut cols = vec![
        col("config", Kind::Text),
        col("seed", Kind::Int),
        col("symbol", Kind::Text),
        col("folds", Kind::Int),
    ];
    cols.extend(stats_columns());
    let mut symbols = Table::new("symbols", cols);
    let mut symbol_totals: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for v in &plan.configs {
        for &seed in &plan.seeds {
            let mut per: BTreeMap<&str, Vec<&Track>> = BTreeMap::new();
            for r in results
                .iter()
                .filter(|r| r.unit.config == v.name && r.unit.seed == seed)
            {
                for t in &r.symbols {
                    per.entry(t.name.as_str()).or_default().push(t);
                }
            }
            for (sym, tracks) in per {
                let t = stitch(sym, tracks.iter().copied());
                let s = Stats::of(&t.returns, t.trades, t.wins, ppy, rf);
                symbol_totals
                    .entry((v.name.clone(), sym.to_string()))
                    .or_default()
                    .push(s.returns.total_return);
                let mut row = vec![
                    Val::S(v.name.clone()),
                    Val::I(seed as i64),
                    Val::S(sym.to_string()),
                    Val::I(tracks.len() as i64),
                ];
                row.extend(stats_values(&s));
                symbols.push(row);
            }
        }
    }

    // The daily out-of-sample returns behind the charts.
    let mut cols = vec![col("date", Kind::Text)];
    for t in config_tracks.iter().chain(baseline_tracks) {
        cols.push(col(&t.name, Kind::Num(6)));
    }
    let mut returns = Table::new("returns", cols);
    let dates = &config_tracks[0].dates;
    for (i, d) in dates.iter().enumerate() {
        let mut row = vec![Val::S(d.to_string())];
        for t in config_tracks.iter().chain(baseline_tracks) {
            let v = if t.dates.get(i) == Some(d) {
                t.returns[i]
            } else {
                t.dates
                    .iter()
                    .position(|x| x == d)
                    .map_or(f64::NAN, |k| t.returns[k])
            };
            row.push(Val::F(v));
        }
        returns.push(row);
    }
    Tables {
        configs,
        trials,
        baselines,
        folds,
        symbols,
        returns,
        symbol_totals,
    }
}

/// Wealth index of daily returns, starting at 1 before the first day.
fn wealth(returns: &[f64]) -> Vec<f64> {
    let mut w = 1.0;
    returns
        .iter()
        .map(|r| {
            w *= 1.0 + r;
            w
        })
        .collect()
}

/// The charts, by file stem: equity with drawdown, return distribution, per fold and per
/// symbol returns.
fn draw_charts(
    plan: &Plan,
    report: &WalkForwardReport,
    tables: &Tables,
    config_tracks: &[Track],
    baseline_tracks: &[Track],
    selected: usize,
) -> Vec<(String, String)> {
    let agent = &config_tracks[selected];
    let mut lines = vec![charts::Series {
        label: format!("{} (agent)", agent.name),
        values: wealth(&agent.returns),
    }];
    for (k, t) in config_tracks.iter().enumerate() {
        if k != selected && t.dates == agent.dates {
            lines.push(charts::Series {
                label: t.name.clone(),
                values: wealth(&t.returns),
            });
        }
    }
    for t in baseline_tracks {
        if t.dates == agent.dates {
            lines.push(charts::Series {
                label: t.name.clone(),
                values: wealth(&t.returns),
            });
        }
    }
    let equity = charts::equity_drawdown(
        "Out-of-sample equity (stitched test windows) and drawdown",
        &agent.dates,
        &lines,
    );
    let histogram = charts::histogram(
        &format!("Daily out-of-sample returns of {}", agent.name),
        &agent.returns,
        30,
        true,
    );

    // Per fold: compounded return of each config and baseline over the fold's test days.
    let fold_of = |d: &NaiveDate| {
        plan.folds
            .iter()
            .position(|f| f.fold.test.first() <= Some(d) && f.fold.test.last() >= Some(d))
    };
    let categories: Vec<String> = plan
        .folds
        .iter()
        .map(|f| format!("fold {}", f.fold.index))
        .collect();
    let per_fold = |t: &Track| {
        let mut g = vec![1.0; plan.folds.len()];
        for (d, r) in t.dates.iter().zip(&t.returns) {
            if let Some(k) = fold_of(d) {
                g[k] *= 1.0 + r;
            }
        }
        g.into_iter().map(|x| x - 1.0).collect::<Vec<f64>>()
    };
    let series: Vec<charts::Series> = config_tracks
        .iter()
        .chain(baseline_tracks)
        .map(|t| charts::Series {
            label: t.name.clone(),
            values: per_fold(t),
        })
        .collect();
    let folds = charts::grouped_bars("Out-of-sample return per fold", &categories, &series, true);

    // Per symbol: each config's total return, averaged over its seeds.
    let symbols: Vec<String> = {
        let mut s: Vec<String> = plan.folds.iter().flat_map(|f| f.symbols.clone()).collect();
        s.sort();
        s.dedup();
        s
    };
    let series: Vec<charts::Series> = report
        .configs
        .iter()
        .map(|c| charts::Series {
            label: c.config.clone(),
            values: symbols
                .iter()
                .map(|sym| {
                    let v = tables
                        .symbol_totals
                        .get(&(c.config.clone(), sym.clone()))
                        .map_or(&[][..], Vec::as_slice);
                    if v.is_empty() {
                        f64::NAN
                    } else {
                        v.iter().sum::<f64>() / v.len() as f64
                    }
                })
                .collect(),
        })
        .collect();
    let per_symbol = charts::grouped_bars(
        "Out-of-sample total return per symbol (mean over seeds)",
        &symbols,
        &series,
        true,
    );
    vec![
        ("equity".into(), equity),
        ("returns".into(), histogram),
        ("folds".into(), folds),
        ("symbols".into(), per_symbol),
    ]
}

fn render_page(
    plan: &Plan,
    report: &WalkForwardReport,
    tables: &Tables,
    charts: &[(String, String)],
) -> String {
    use html::{Block, Cell};
    let mut blocks = Vec::new();
    blocks.push(Block::Paragraph(format!(
        "{} symbols ({}), {} trading days {} .. {}, {} folds × {} configs × {} seeds = {} units; policy acts {} out of sample; {} periods per year.",
        report.universe.len(),
        report.universe.join(", "),
        report.trading_days,
        report.first_day,
        report.last_day,
        report.folds,
        plan.configs.len(),
        plan.seeds.len(),
        report.units,
        format!("{:?}", report.eval_mode).to_lowercase(),
        report.periods_per_year
    )));
    blocks.push(Block::Heading("Verdict".into()));
    let promoted: Vec<&str> = report
        .configs
        .iter()
        .filter(|c| c.promoted)
        .map(|c| c.config.as_str())
        .collect();
    blocks.push(Block::Paragraph(if promoted.is_empty() {
        "No config passes every promotion gate on every seed: nothing is promoted.".into()
    } else {
        format!(
            "Promoted (every gate passed on every seed): {}.",
            promoted.join(", ")
        )
    }));
    let (columns, rows) = tables.configs.cells();
    blocks.push(Block::Table {
        caption: "Configs: seed-averaged stitched out-of-sample portfolio".into(),
        columns,
        rows,
    });
    let g = &report.gates;
    let gate_rows: Vec<Vec<Cell>> = report
        .trials
        .iter()
        .flat_map(|t| {
            t.gates.iter().map(move |c| {
                vec![
                    Cell::Text(t.config.clone()),
                    Cell::Text(t.seed.to_string()),
                    Cell::Text(c.gate.clone()),
                    Cell::Num(c.threshold, if c.gate == "min_trades" { 0 } else { 3 }),
                    Cell::Num(c.value, if c.gate == "min_trades" { 0 } else { 3 }),
                    Cell::Pass(c.pass),
                ]
            })
        })
        .collect();
    blocks.push(Block::Table {
        caption: format!(
            "Promotion gates per trial (min Sharpe {}, max drawdown {}, min trades {}, min win rate {})",
            opt(g.min_sharpe),
            opt(g.max_drawdown),
            g.min_trades.map_or("-".into(), |x| x.to_string()),
            opt(g.min_win_rate)
        ),
        columns: ["config", "seed", "gate", "threshold", "value", "result"]
            .map(String::from)
            .to_vec(),
        rows: gate_rows,
    });
    blocks.push(Block::Heading("Charts".into()));
    for (_, svg) in charts {
        blocks.push(Block::Svg(svg.clone()));
    }
    blocks.push(Block::Heading("Overfitting diagnostics".into()));
    let d = &report.deflated_sharpe;
    blocks.push(Block::Paragraph(match &d.result {
        Some(x) => format!(
            "Deflated Sharpe ratio {:.4} ({}): daily SR {:.4} over {} returns (skew {:.3}, kurtosis {:.3}) against SR0 {:.4}, the expected best of {} no-skill trials with Sharpe variance {:.3e}. At the 95 % level the edge is {}.",
            x.dsr,
            d.note,
            x.sr_hat,
            x.n_obs,
            x.skew,
            x.kurtosis,
            x.sr0,
            x.trials,
            x.sr_variance,
            if x.dsr >= 0.95 { "significant" } else { "not significant" }
        ),
        None => format!("Deflated Sharpe ratio: none. {}", d.note),
    }));
    let p = &report.pbo;
    blocks.push(Block::Paragraph(match &p.result {
        Some(x) => format!(
            "Probability of backtest overfitting {:.3} ({}; {} combinations); probability that the in-sample winner loses out of sample {:.3}.",
            x.pbo, p.note, x.combinations, x.oos_loss_probability
        ),
        None => format!("Probability of backtest overfitting: none. {}", p.note),
    }));
    for (t, caption) in [
        (
            &tables.trials,
            "Trials (config × seed), stitched out of sample",
        ),
        (&tables.baselines, "Baselines on the same days"),
        (
            &tables.folds,
            "Per fold and unit, with the baselines' returns and paired t-statistics of daily returns",
        ),
        (
            &tables.symbols,
            "Per symbol, stitched over the folds that traded it",
        ),
    ] {
        let (columns, rows) = t.cells();
        blocks.push(Block::Table {
            caption: caption.into(),
            columns,
            rows,
        });
    }
    let mut audit = Vec::new();
    for f in &plan.folds {
        for (role, days) in [
            ("train", &f.fold.train),
            ("purged", &f.fold.purged),
            ("test", &f.fold.test),
            ("embargoed", &f.fold.embargoed),
        ] {
            audit.push(vec![
                Cell::Text(f.fold.index.to_string()),
                Cell::Text(role.into()),
                Cell::Text(days.first().map_or(String::new(), |d| d.to_string())),
                Cell::Text(days.last().map_or(String::new(), |d| d.to_string())),
                Cell::Text(days.len().to_string()),
            ]);
        }
    }
    blocks.push(Block::Table {
        caption: "Fold audit: the days of each role (no fold trains on a day it tests on or after)"
            .into(),
        columns: ["fold", "role", "first", "last", "days"]
            .map(String::from)
            .to_vec(),
        rows: audit,
    });
    html::page("sim-train walk-forward report", &blocks)
}

fn opt(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{v}"))
}
