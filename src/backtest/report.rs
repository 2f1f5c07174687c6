//! The backtest report (`report.json`), the `equity.csv` and `trades.csv` tables and the
//! human summary, computed from the runner's records.
//!
//! Definitions (per symbol account, and for the portfolio = the sum of the accounts):
//! - **returns**: [`ReturnMetrics`] of the daily returns of closing equity
//!   ([`daily_returns`] from the initial equity), with `backtest.periods_per_year` and
//!   `backtest.risk_free`. A symbol's series has one value per day it traded (skipped days
//!   are left out); the portfolio's has one per date on which any symbol traded, each
//!   account counted at its latest equity (its initial equity before its first day).
//! - **trades**: [`TradeStats`] of the round trips (see [`super::trips`]): count, win
//!   rate, profit factor, average holding time and P&L, after costs.
//! - **fills**: every fill, forced exits at the close included.
//! - **turnover**: per day, traded notional (buys and sells, at reference prices) divided
//!   by the equity at the start of the day; then averaged over the days. A day that opens
//!   and closes the full `max_position_usd = equity` position scores 2. The portfolio
//!   divides all symbols' notional of a date by the portfolio's equity at its start.
//! - **exposure**: the share of steps with a non-zero position held through the bar
//!   stepped to (after its order fill, before a forced exit at its close), pooled over
//!   the accounts' steps for the portfolio.
//! - **costs**: commission, spread and impact summed over fills; borrow as the ledger's
//!   costs minus the fills' costs.
//! - **data**: symbols, first and last date, days traded and skipped, bars stepped.
//!
//! Every account ends each day flat, so `final − initial = realized − costs` (unrealized
//! is reported and is 0).

use super::engine::{DayEnd, SymbolRun};
use crate::clock::iso_ny;
use crate::metrics::{ReturnMetrics, TradeStats, daily_returns, finite_or_null};
use chrono::NaiveDate;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Where the target schedule came from.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    Positions {
        file: String,
    },
    Baseline {
        name: String,
    },
    /// A trained policy acting on its observations (`mode`: greedy or sampled).
    Policy {
        checkpoint: String,
        mode: String,
    },
    /// An exported policy bundle run by the pure-Rust forward.
    Bundle {
        bundle: String,
        content_hash: String,
        mode: String,
    },
}

impl Source {
    pub fn label(&self) -> String {
        match self {
            Source::Positions { file } => format!("positions {file}"),
            Source::Baseline { name } => format!("baseline {name}"),
            Source::Policy { checkpoint, mode } => format!("policy {checkpoint} ({mode})"),
            Source::Bundle { bundle, mode, .. } => format!("policy bundle {bundle} ({mode})"),
        }
    }
}

/// Costs paid, dollars.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct CostsPaid {
    pub commission: f64,
    pub spread: f64,
    pub impact: f64,
    pub borrow: f64,
    pub total: f64,
}

/// One date of an account.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DailyRow {
    pub date: NaiveDate,
    pub start_equity: f64,
    pub end_equity: f64,
    #[serde(serialize_with = "finite_or_null")]
    pub turnover: f64,
    pub fills: u32,
    pub steps: u32,
    /// How a symbol's day ended: "session_close", "loss_limit" or "skipped" (absent for
    /// the portfolio).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended: Option<DayEnd>,
}

/// Metrics of one account (a symbol, or the portfolio).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AccountReport {
    /// The symbol, or "portfolio".
    pub name: String,
    pub initial_equity: f64,
    pub final_equity: f64,
    /// `final_equity − initial_equity`.
    pub pnl: f64,
    pub realized: f64,
    pub unrealized: f64,
    pub returns: ReturnMetrics,
    pub trades: TradeStats,
    pub fills: u64,
    /// Mean over days of traded notional / start-of-day equity.
    #[serde(serialize_with = "finite_or_null")]
    pub turnover: f64,
    /// Share of steps holding a position.
    #[serde(serialize_with = "finite_or_null")]
    pub exposure: f64,
    /// Mean round-trip holding time, seconds (also in `trades`).
    #[serde(serialize_with = "finite_or_null")]
    pub avg_holding_secs: f64,
    pub costs: CostsPaid,
    pub first_date: Option<NaiveDate>,
    pub last_date: Option<NaiveDate>,
    pub days: usize,
    pub days_skipped: usize,
    pub loss_limit_days: usize,
    pub bars_stepped: u64,
    pub daily: Vec<DailyRow>,
}

impl AccountReport {
    /// The account's daily returns, `end_equity / start_equity − 1` of each day it traded
    /// (skipped days left out), in date order: the series its `returns` metrics summarise,
    /// and what [`crate::metrics::paired_t_stat`] compares between two backtests.
    pub fn daily_returns(&self) -> Vec<f64> {
        self.daily
            .iter()
            .filter(|d| d.ended != Some(DayEnd::Skipped))
            .map(|d| d.end_equity / d.start_equity - 1.0)
            .collect()
    }

    /// The dates of [`AccountReport::daily_returns`].
    pub fn daily_dates(&self) -> Vec<NaiveDate> {
        self.daily
            .iter()
            .filter(|d| d.ended != Some(DayEnd::Skipped))
            .map(|d| d.date)
            .collect()
    }
}

/// The data a backtest covered.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DataRanges {
    pub symbols: Vec<String>,
    pub bar: String,
    pub first_date: Option<NaiveDate>,
    pub last_date: Option<NaiveDate>,
    /// Distinct dates on which some symbol traded.
    pub days: usize,
    /// Symbol-days traded, and skipped (no episode could start).
    pub symbol_days: usize,
    pub symbol_days_skipped: usize,
    pub bars_stepped: u64,
}

/// `report.json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub source: Source,
    /// The starting equity of every symbol's account (`env.initial_equity`).
    pub initial_equity_per_symbol: f64,
    pub portfolio: AccountReport,
    pub symbols: Vec<AccountReport>,
    pub data: DataRanges,
    /// The configuration the run used (the resolved config, `env.max_episode_steps`
    /// forced to 0).
    pub config: serde_json::Value,
}

/// Builds the report of `runs` (one per symbol, in symbol order).
pub fn build_report(
    source: Source,
    runs: &[SymbolRun],
    bar: &str,
    initial_equity: f64,
    periods_per_year: f64,
    risk_free: f64,
    config: serde_json::Value,
) -> Report {
    let symbols: Vec<AccountReport> = runs
        .iter()
        .map(|r| symbol_report(r, periods_per_year, risk_free))
        .collect();
    let portfolio = portfolio_report(runs, &symbols, initial_equity, periods_per_year, risk_free);
    let data = DataRanges {
        symbols: runs.iter().map(|r| r.symbol.clone()).collect(),
        bar: bar.to_string(),
        first_date: portfolio.first_date,
        last_date: portfolio.last_date,
        days: portfolio.days,
        symbol_days: symbols.iter().map(|s| s.days).sum(),
        symbol_days_skipped: symbols.iter().map(|s| s.days_skipped).sum(),
        bars_stepped: portfolio.bars_stepped,
    };
    Report {
        source,
        initial_equity_per_symbol: initial_equity,
        portfolio,
        symbols,
        data,
        config,
    }
}

fn ratio(num: f64, den: f64) -> f64 {
    if den != 0.0 { num / den } else { f64::NAN }
}

/// Arithmetic mean; NaN when empty.
fn mean(values: &[f64]) -> f64 {
    crate::util::stats::mean(values.iter().copied()).unwrap_or(f64::NAN)
}

fn symbol_report(r: &SymbolRun, ppy: f64, rf: f64) -> AccountReport {
    let ran: Vec<_> = r.days.iter().filter(|d| d.ran()).collect();
    let closes: Vec<f64> = ran.iter().map(|d| d.end_equity).collect();
    let turnovers: Vec<f64> = ran
        .iter()
        .map(|d| ratio(d.notional, d.start_equity))
        .collect();
    let steps: u64 = ran.iter().map(|d| d.steps as u64).sum();
    let exposed: u64 = ran.iter().map(|d| d.exposed_steps as u64).sum();
    let sum =
        |f: fn(&super::engine::DayRecord) -> f64| ran.iter().map(|d| f(d)).fold(0.0, |a, v| a + v);
    let mut costs = CostsPaid {
        commission: sum(|d| d.commission),
        spread: sum(|d| d.spread),
        impact: sum(|d| d.impact),
        borrow: sum(|d| d.borrow),
        total: 0.0,
    };
    costs.total = costs.commission + costs.spread + costs.impact + costs.borrow;
    let trades = TradeStats::from_round_trips(&r.trips);
    AccountReport {
        name: r.symbol.clone(),
        initial_equity: r.initial_equity,
        final_equity: r.final_equity,
        pnl: r.final_equity - r.initial_equity,
        realized: sum(|d| d.realized),
        unrealized: r.unrealized,
        returns: ReturnMetrics::from_returns(&daily_returns(r.initial_equity, &closes), ppy, rf),
        avg_holding_secs: trades.avg_holding_secs,
        trades,
        fills: ran.iter().map(|d| d.fills as u64).sum(),
        turnover: mean(&turnovers),
        exposure: ratio(exposed as f64, steps as f64),
        costs,
        first_date: ran.first().map(|d| d.date),
        last_date: ran.last().map(|d| d.date),
        days: ran.len(),
        days_skipped: r.days.len() - ran.len(),
        loss_limit_days: ran.iter().filter(|d| d.ended == DayEnd::LossLimit).count(),
        bars_stepped: steps,
        daily: r
            .days
            .iter()
            .map(|d| DailyRow {
                date: d.date,
                start_equity: d.start_equity,
                end_equity: d.end_equity,
                turnover: if d.ran() {
                    ratio(d.notional, d.start_equity)
                } else {
                    0.0
                },
                fills: d.fills,
                steps: d.steps,
                ended: Some(d.ended),
            })
            .collect(),
    }
}

fn portfolio_report(
    runs: &[SymbolRun],
    symbols: &[AccountReport],
    initial: f64,
    ppy: f64,
    rf: f64,
) -> AccountReport {
    // Each account's equity, advanced date by date.
    let mut current: Vec<f64> = runs.iter().map(|r| r.initial_equity).collect();
    let mut by_date: BTreeMap<NaiveDate, Vec<(usize, &super::engine::DayRecord)>> = BTreeMap::new();
    for (i, r) in runs.iter().enumerate() {
        for d in r.days.iter().filter(|d| d.ran()) {
            by_date.entry(d.date).or_default().push((i, d));
        }
    }
    let total_initial = initial * runs.len() as f64;
    let mut daily = Vec::with_capacity(by_date.len());
    for (&date, recs) in &by_date {
        let start: f64 = current.iter().sum();
        let mut notional = 0.0;
        let (mut fills, mut steps) = (0, 0);
        for &(i, d) in recs {
            notional += d.notional;
            fills += d.fills;
            steps += d.steps;
            current[i] = d.end_equity;
        }
        daily.push(DailyRow {
            date,
            start_equity: start,
            end_equity: current.iter().sum(),
            turnover: ratio(notional, start),
            fills,
            steps,
            ended: None,
        });
    }
    let closes: Vec<f64> = daily.iter().map(|d| d.end_equity).collect();
    let turnovers: Vec<f64> = daily.iter().map(|d| d.turnover).collect();
    let trips: Vec<_> = runs.iter().flat_map(|r| r.trips.iter().cloned()).collect();
    let trades = TradeStats::from_round_trips(&trips);
    let exposed: u64 = runs
        .iter()
        .flat_map(|r| &r.days)
        .map(|d| d.exposed_steps as u64)
        .sum();
    let steps: u64 = symbols.iter().map(|s| s.bars_stepped).sum();
    let add =
        |f: fn(&CostsPaid) -> f64| symbols.iter().map(|s| f(&s.costs)).fold(0.0, |a, v| a + v);
    let costs = CostsPaid {
        commission: add(|c| c.commission),
        spread: add(|c| c.spread),
        impact: add(|c| c.impact),
        borrow: add(|c| c.borrow),
        total: add(|c| c.total),
    };
    let final_equity: f64 = current.iter().sum();
    AccountReport {
        name: "portfolio".into(),
        initial_equity: total_initial,
        final_equity,
        pnl: final_equity - total_initial,
        realized: symbols.iter().map(|s| s.realized).fold(0.0, |a, v| a + v),
        unrealized: symbols.iter().map(|s| s.unrealized).fold(0.0, |a, v| a + v),
        returns: ReturnMetrics::from_returns(&daily_returns(total_initial, &closes), ppy, rf),
        avg_holding_secs: trades.avg_holding_secs,
        trades,
        fills: symbols.iter().map(|s| s.fills).sum(),
        turnover: mean(&turnovers),
        exposure: ratio(exposed as f64, steps as f64),
        costs,
        first_date: daily.first().map(|d| d.date),
        last_date: daily.last().map(|d| d.date),
        days: daily.len(),
        days_skipped: symbols.iter().map(|s| s.days_skipped).sum(),
        loss_limit_days: symbols.iter().map(|s| s.loss_limit_days).sum(),
        bars_stepped: steps,
        daily,
    }
}

/// Header of `equity.csv`.
pub const EQUITY_HEADER: &str = "symbol,ts,equity,cash,position,price";
/// Header of `trades.csv`.
pub const TRADES_HEADER: &str = "ts,symbol,side,shares,price,exec_price,commission,spread,impact,realized_pnl,position_after,forced";

/// `equity.csv`: one row per step of every symbol (symbol order, then time), the account
/// at the close of the bar whose start is `ts`.
pub fn equity_csv(runs: &[SymbolRun]) -> String {
    let rows: usize = runs.iter().map(|r| r.equity.len()).sum();
    let mut s = String::with_capacity(64 * (rows + 1));
    s.push_str(EQUITY_HEADER);
    s.push('\n');
    for r in runs {
        for e in &r.equity {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{}",
                r.symbol,
                iso_ny(e.ts_ns),
                e.equity,
                e.cash,
                e.position,
                e.price
            );
        }
    }
    s
}

/// `trades.csv`: every fill; `ts` is the start of the bar that filled it (a forced exit
/// fills at that bar's close), `price` the reference price, `exec_price` the price paid
/// with spread and impact, `shares` unsigned with `side` buy / sell.
pub fn trades_csv(runs: &[SymbolRun]) -> String {
    let rows: usize = runs.iter().map(|r| r.trades.len()).sum();
    let mut s = String::with_capacity(128 * (rows + 1));
    s.push_str(TRADES_HEADER);
    s.push('\n');
    for r in runs {
        for t in &r.trades {
            let f = &t.fill;
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{},{},{},{}",
                iso_ny(t.ts_ns),
                r.symbol,
                if f.shares > 0 { "buy" } else { "sell" },
                f.shares.unsigned_abs(),
                f.price,
                f.exec_price(),
                f.costs.commission,
                f.costs.spread,
                f.costs.impact,
                f.realized,
                f.position_after,
                f.forced
            );
        }
    }
    s
}

fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:+.3} %", 100.0 * x)
    } else {
        "n/a".into()
    }
}

fn num(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.2}")
    } else {
        "n/a".into()
    }
}

fn account_line(s: &mut String, a: &AccountReport) {
    let r = &a.returns;
    let _ = writeln!(
        s,
        "  {:<10} equity {} -> {} (return {}), Sharpe {}, max drawdown {}",
        a.name,
        num(a.initial_equity),
        num(a.final_equity),
        pct(r.total_return),
        num(r.sharpe),
        pct(r.max_drawdown)
    );
}

/// The short human summary printed by the CLI.
pub fn summary(report: &Report, out: Option<&std::path::Path>) -> String {
    let mut s = String::new();
    let d = &report.data;
    let p = &report.portfolio;
    let dates = match (d.first_date, d.last_date) {
        (Some(a), Some(b)) => format!("{a}..{b}"),
        _ => "no dates".into(),
    };
    let _ = writeln!(
        s,
        "backtest ({}) on {} symbol(s) [{} bars]: {} day(s) {dates}, {} symbol-day(s), {} skipped, {} bars stepped",
        report.source.label(),
        d.symbols.len(),
        d.bar,
        d.days,
        d.symbol_days,
        d.symbol_days_skipped,
        d.bars_stepped
    );
    account_line(&mut s, p);
    if report.symbols.len() > 1 {
        for a in report.symbols.iter().take(20) {
            account_line(&mut s, a);
        }
        if report.symbols.len() > 20 {
            let _ = writeln!(
                s,
                "  … and {} more symbols in report.json",
                report.symbols.len() - 20
            );
        }
    }
    let t = &p.trades;
    let _ = writeln!(
        s,
        "  {} round trips (win rate {}, profit factor {}, avg hold {} s), {} fills, turnover {}/day, exposure {}",
        t.trades,
        if t.win_rate.is_finite() {
            format!("{:.1} %", 100.0 * t.win_rate)
        } else {
            "n/a".into()
        },
        num(t.profit_factor),
        num(t.avg_holding_secs),
        p.fills,
        num(p.turnover),
        if p.exposure.is_finite() {
            format!("{:.1} %", 100.0 * p.exposure)
        } else {
            "n/a".into()
        },
    );
    let c = &p.costs;
    let _ = writeln!(
        s,
        "  costs {} (commission {}, spread {}, impact {}, borrow {}); {} loss-limit day(s)",
        num(c.total),
        num(c.commission),
        num(c.spread),
        num(c.impact),
        num(c.borrow),
        p.loss_limit_days
    );
    if let Some(out) = out {
        let _ = writeln!(
            s,
            "  wrote report.json, equity.csv, trades.csv, config.resolved.toml in {}",
            out.display()
        );
    }
    s
}
