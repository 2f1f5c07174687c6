//! The runner: per-bar target schedules through the reference environment, one account
//! per symbol, with every step and fill recorded.
//!
//! A [`SymbolPlan`] is a symbol's days in date order, each with the target decided at
//! every bar (`targets[row]`, whoever computed it: a positions file or a baseline). Each
//! day is one episode of [`ReferenceEnv`], from the first session bar at or after
//! `backtest.start_time` ([`DayData::start_row_at`]) until the environment terminates it
//! (session close or loss limit, both flatten; `max_episode_steps` is forced to 0). The
//! decision at bar `t` is `targets[t]`. Equity carries from one day to the next
//! ([`ReferenceEnv::with_equity`]); a day on which no episode can start (no session bar
//! after the start time) is recorded as skipped and leaves the equity unchanged.
//!
//! Per step the runner records the account at the close of the bar stepped to (an
//! [`EquityRow`]), the step's fills ([`TradeRow`]), its borrow (the ledger's cost increase
//! minus the fills' costs, exactly 0 when no short position was held through the bar) and
//! whether it was *exposed*: a non-zero position held through the bar stepped to (after
//! that bar's order fill, before any forced exit at its close).

use super::trips::TripBuilder;
use crate::env::reference::Fill;
use crate::env::{DayData, EndReason, EnvParams, Episode, ReferenceEnv};
use crate::error::{Error, Result};
use crate::metrics::RoundTrip;
use chrono::NaiveDate;
use serde::Serialize;
use std::sync::Arc;

/// One day of a symbol and the target decided at each of its bars.
#[derive(Clone, Debug)]
pub struct DayPlan {
    pub day: Arc<DayData>,
    /// `targets[row]`: the target (fraction of the maximum position) decided at the close
    /// of bar `row`; one per bar of the day.
    pub targets: Vec<f64>,
}

/// A symbol's days, in date order.
#[derive(Clone, Debug)]
pub struct SymbolPlan {
    pub symbol: String,
    pub days: Vec<DayPlan>,
}

/// The account at the close of a bar stepped to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EquityRow {
    /// The bar's start, UTC nanoseconds (the convention of `cache export` and positions
    /// files); the values are at its close.
    pub ts_ns: i64,
    pub equity: f64,
    pub cash: f64,
    pub position: i64,
    /// The bar's close.
    pub price: f64,
}

/// A fill and the start of the bar that filled it (UTC nanoseconds).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TradeRow {
    pub ts_ns: i64,
    pub fill: Fill,
}

/// How a day ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DayEnd {
    SessionClose,
    LossLimit,
    /// No episode could start (no session bar after `backtest.start_time`).
    Skipped,
}

/// One day of one account.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DayRecord {
    pub date: NaiveDate,
    pub ended: DayEnd,
    pub start_equity: f64,
    pub end_equity: f64,
    pub steps: u32,
    /// Steps with a non-zero position held through the bar stepped to.
    pub exposed_steps: u32,
    pub fills: u32,
    /// Traded notional at reference prices (buys and sells), dollars.
    pub notional: f64,
    pub commission: f64,
    pub spread: f64,
    pub impact: f64,
    pub borrow: f64,
    pub realized: f64,
}

impl DayRecord {
    fn new(date: NaiveDate, equity: f64) -> DayRecord {
        DayRecord {
            date,
            ended: DayEnd::Skipped,
            start_equity: equity,
            end_equity: equity,
            steps: 0,
            exposed_steps: 0,
            fills: 0,
            notional: 0.0,
            commission: 0.0,
            spread: 0.0,
            impact: 0.0,
            borrow: 0.0,
            realized: 0.0,
        }
    }

    pub fn ran(&self) -> bool {
        self.ended != DayEnd::Skipped
    }

    pub fn costs(&self) -> f64 {
        self.commission + self.spread + self.impact + self.borrow
    }
}

/// Everything one symbol's account did.
#[derive(Clone, Debug)]
pub struct SymbolRun {
    pub symbol: String,
    /// The bar size of the days (`None` without days).
    pub bar: Option<&'static str>,
    pub initial_equity: f64,
    /// Every day of the plan, skipped ones included.
    pub days: Vec<DayRecord>,
    pub equity: Vec<EquityRow>,
    pub trades: Vec<TradeRow>,
    pub trips: Vec<RoundTrip>,
    pub final_equity: f64,
    /// Unrealized P&L at the end (0: every day ends flat).
    pub unrealized: f64,
}

/// Decides the target at each bar of a run, from the environment's state (for a trained
/// policy, its observation).
pub trait Decider {
    /// A new day (episode) starts; `day_index` indexes the run's days.
    fn begin_day(&mut self, day_index: usize) -> Result<()>;
    /// The target (fraction of the maximum position) decided at the close of the bar
    /// `env` is at.
    fn target(&mut self, env: &ReferenceEnv, day_index: usize) -> Result<f64>;
}

/// A plan's precomputed targets as a [`Decider`].
struct PlanTargets<'a>(&'a SymbolPlan);

impl Decider for PlanTargets<'_> {
    fn begin_day(&mut self, _: usize) -> Result<()> {
        Ok(())
    }
    fn target(&mut self, env: &ReferenceEnv, day_index: usize) -> Result<f64> {
        Ok(self.0.days[day_index].targets[env.row()])
    }
}

/// Runs one symbol's plan. `params.max_episode_steps` must be 0; targets must be in
/// [−1, 1] (and ≥ 0 without `allow_short`), one per bar.
pub fn run_symbol(params: &Arc<EnvParams>, start_sec: u32, plan: &SymbolPlan) -> Result<SymbolRun> {
    for dp in &plan.days {
        check_targets(params, &plan.symbol, dp)?;
    }
    let days: Vec<Arc<DayData>> = plan.days.iter().map(|d| d.day.clone()).collect();
    run_symbol_with(
        params,
        start_sec,
        &plan.symbol,
        &days,
        &mut PlanTargets(plan),
    )
}

/// Runs one symbol's days (in date order) with targets from `decider`.
/// `params.max_episode_steps` must be 0.
pub fn run_symbol_with(
    params: &Arc<EnvParams>,
    start_sec: u32,
    symbol: &str,
    day_list: &[Arc<DayData>],
    decider: &mut dyn Decider,
) -> Result<SymbolRun> {
    if params.max_episode_steps != 0 {
        return Err(Error::Usage(
            "a backtest runs whole days: env.max_episode_steps must be 0".into(),
        ));
    }
    let mut equity = params.initial_equity;
    let mut unrealized = 0.0;
    let mut days = Vec::with_capacity(day_list.len());
    let mut rows = Vec::new();
    let mut trades = Vec::new();
    let mut trips = TripBuilder::new(symbol);
    for (di, day) in day_list.iter().enumerate() {
        let mut rec = DayRecord::new(day.date, equity);
        let Some(start_row) = day.start_row_at(start_sec) else {
            tracing::warn!(symbol = %symbol, date = %day.date, "no session bar after backtest.start_time: day skipped");
            days.push(rec);
            continue;
        };
        let episode = Episode {
            day: day.clone(),
            start_row,
        };
        let mut env = ReferenceEnv::with_equity(params.clone(), episode, equity)?;
        decider.begin_day(di)?;
        let end_ns = |f: &Fill| {
            let extra = if f.forced { day.bar_ms } else { 0 };
            day.utc_ns(f.ts_ms + extra)
        };
        loop {
            let costs_before = env.ledger().costs;
            let position_before = env.ledger().position;
            let target = decider.target(&env, di)?;
            env.step_target(target)?;
            let bar = day.bars[env.row()];
            // Orders fill first, borrow is charged on what is then held, a forced exit
            // comes last: the same order for the trips.
            let mut held = position_before;
            let mut fill_costs = 0.0;
            for f in env.last_fills.iter().filter(|f| !f.forced) {
                held = f.position_after;
                trips.fill(
                    end_ns(f),
                    f.shares,
                    f.position_after,
                    f.realized,
                    f.costs.total(),
                );
            }
            for f in &env.last_fills {
                fill_costs += f.costs.total();
                rec.fills += 1;
                rec.notional += f.shares.unsigned_abs() as f64 * f.price;
                rec.commission += f.costs.commission;
                rec.spread += f.costs.spread;
                rec.impact += f.costs.impact;
                rec.realized += f.realized;
                trades.push(TradeRow {
                    ts_ns: day.utc_ns(f.ts_ms),
                    fill: *f,
                });
            }
            if held < 0 {
                let borrow = env.ledger().costs - costs_before - fill_costs;
                rec.borrow += borrow;
                trips.borrow(borrow);
            }
            for f in env.last_fills.iter().filter(|f| f.forced) {
                trips.fill(
                    end_ns(f),
                    f.shares,
                    f.position_after,
                    f.realized,
                    f.costs.total(),
                );
            }
            rec.steps += 1;
            if held != 0 {
                rec.exposed_steps += 1;
            }
            let ledger = env.ledger();
            rows.push(EquityRow {
                ts_ns: day.utc_ns(bar.ts_ms),
                equity: env.equity(),
                cash: ledger.cash,
                position: ledger.position,
                price: bar.close,
            });
            if let Some(stats) = &env.finished {
                rec.ended = match stats.reason {
                    EndReason::LossLimit => DayEnd::LossLimit,
                    _ => DayEnd::SessionClose,
                };
                break;
            }
        }
        equity = env.equity();
        unrealized = env.unrealized();
        rec.end_equity = equity;
        days.push(rec);
    }
    Ok(SymbolRun {
        symbol: symbol.to_string(),
        bar: day_list.first().map(|d| d.bar.as_str()),
        initial_equity: params.initial_equity,
        days,
        equity: rows,
        trades,
        trips: trips.trips,
        final_equity: equity,
        unrealized,
    })
}

fn check_targets(params: &EnvParams, symbol: &str, dp: &DayPlan) -> Result<()> {
    let day = &dp.day;
    if dp.targets.len() != day.rows() {
        return Err(Error::Usage(format!(
            "{symbol} {}: {} targets for {} bars (one target per bar is needed)",
            day.date,
            dp.targets.len(),
            day.rows()
        )));
    }
    let lo = if params.allow_short { -1.0 } else { 0.0 };
    if let Some((row, t)) = dp
        .targets
        .iter()
        .enumerate()
        .find(|(_, t)| !(t.is_finite() && (lo..=1.0).contains(*t)))
    {
        return Err(Error::Usage(format!(
            "{symbol} {} row {row}: target {t} is outside [{lo}, 1] (env.allow_short = {})",
            day.date, params.allow_short
        )));
    }
    Ok(())
}
