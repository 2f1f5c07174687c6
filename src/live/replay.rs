//! The live loop over a replay feed: cached days, bar by bar in time order across
//! symbols, through the exported policy (pure-Rust forward, greedy), the risk manager and
//! the paper broker (the simulator's execution model, [`ReferenceEnv`]), with every day
//! start, decision, rejection, order, fill and state change in the journal (fsynced once
//! per bar, after every symbol's records of the bar).
//!
//! Accounts are as in `eval`: one per symbol, starting at `env.initial_equity` and
//! carrying its equity from day to day; the risk manager sees the portfolio (their sum).
//! Each day of a symbol is one episode from the first session bar at or after
//! `backtest.start_time`, with the policy's LSTM state zeroed at its start. With limits
//! that cut nothing, every decision and fill is the one `eval --policy` makes on the same
//! days (tested).
//!
//! **Restart.** A replay is deterministic, so a restarted run replays from the start and
//! checks every record it would write against the journal's (a difference is an error:
//! another bundle, feed or config), then appends from where the journal ends. A crash
//! at any point therefore ends, after restarts, with the journal and positions of an
//! uninterrupted run (tested by killing the process).
//!
//! The kill switch is a file, looked at before each bar: when `kill_file` exists, the
//! risk manager halts (every target becomes flat) and stays halted.

use super::journal::{Book, Event, Journal, Record};
use super::risk::{Proposal, RiskConfig, RiskManager, StateChange};
use crate::backtest::trips::TripBuilder;
use crate::bundle::Bundle;
use crate::bundle::native::{NativePolicy, greedy};
use crate::env::{DayData, DaySelection, Episode, ReferenceEnv, load_days};
use crate::error::{Error, Result};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;

/// What to replay.
#[derive(Clone, Debug)]
pub struct ReplayRequest {
    pub bundle: PathBuf,
    pub cache: PathBuf,
    pub selection: DaySelection,
    pub journal: PathBuf,
    /// fsync the journal once per bar, after every symbol's records of that bar (else
    /// flush to the OS only).
    pub fsync: bool,
    pub risk: RiskConfig,
    pub kill_file: Option<PathBuf>,
}

/// What a replay did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ReplaySummary {
    /// Records checked against an existing journal (a restart), and records appended.
    pub verified: usize,
    pub appended: usize,
    pub days: usize,
    pub decisions: usize,
    pub rejections: usize,
    pub orders: usize,
    pub fills: usize,
    pub state_changes: usize,
    /// Equity of each symbol's account at the end, and their sum.
    pub equity: Vec<(String, f64)>,
    pub total_equity: f64,
    /// Folded from the journal's fills (average-price accounting, [`Book`]).
    pub realized: f64,
    pub costs: f64,
    pub open_positions: usize,
    /// The journal's last damaged tail, if reopening cut one off.
    pub damaged_tail: Option<String>,
    /// Time to handle one decision (policy, risk, order, fills, journal records written
    /// to the OS), µs.
    pub decision_us: Percentiles,
    /// Time to handle one bar of every symbol (their decisions one after another on one
    /// core, then the bar's fsync when asked for), µs.
    pub bar_us: Percentiles,
}

/// Summary of a sample of durations.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Percentiles {
    pub n: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    fn of(mut v: Vec<f64>) -> Percentiles {
        if v.is_empty() {
            return Percentiles::default();
        }
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        Percentiles {
            n: v.len(),
            p50: at(0.5),
            p99: at(0.99),
            max: v[v.len() - 1],
        }
    }
}

/// Writes records, or, while an existing journal still has records, checks them.
struct Recorder {
    journal: Journal,
    existing: Vec<Record>,
    next: usize,
    /// Records appended and fsynced.
    synced: usize,
    summary: ReplaySummary,
    /// Positions, realized P&L and costs of the journal's fills so far.
    book: Book,
}

impl Recorder {
    fn emit(&mut self, ts_ns: i64, event: Event) -> Result<()> {
        match &event {
            Event::Decision { .. } => self.summary.decisions += 1,
            Event::Rejection { .. } => self.summary.rejections += 1,
            Event::Order { .. } => self.summary.orders += 1,
            Event::Fill {
                symbol,
                shares,
                price,
                cost,
                ..
            } => {
                self.summary.fills += 1;
                self.book.fill(symbol, *shares, *price, *cost);
            }
            Event::State { .. } => self.summary.state_changes += 1,
            Event::Day { .. } => self.summary.days += 1,
        }
        if let Some(old) = self.existing.get(self.next) {
            if old.ts_ns != ts_ns || old.event != event {
                return Err(Error::input(
                    self.journal.path(),
                    format!(
                        "record {} is {:?} at {}, this replay gives {:?} at {ts_ns}: the journal belongs to another bundle, feed or config; use a new journal",
                        old.seq, old.event, old.ts_ns, event
                    ),
                ));
            }
            self.next += 1;
            self.summary.verified += 1;
        } else {
            self.journal.append(ts_ns, event)?;
            self.summary.appended += 1;
        }
        Ok(())
    }

    /// Makes every record appended so far durable (when `fsync`).
    fn commit(&mut self, fsync: bool) -> Result<()> {
        if fsync && self.summary.appended > self.synced {
            self.journal.sync()?;
            self.synced = self.summary.appended;
        }
        Ok(())
    }

    fn state(&mut self, ts_ns: i64, change: Option<StateChange>) -> Result<()> {
        match change {
            Some(c) => self.emit(
                ts_ns,
                Event::State {
                    from: c.from,
                    to: c.to,
                    reason: c.reason,
                },
            ),
            None => Ok(()),
        }
    }
}

/// One symbol's account during a day.
struct Account {
    symbol: String,
    env: ReferenceEnv,
    state: crate::bundle::native::NativeState,
    first: bool,
    trips: TripBuilder,
    order_id: u64,
    order_target: Option<i64>,
}

/// Replays the selected days of `req.cache` through the live layer.
pub fn replay(req: &ReplayRequest) -> Result<ReplaySummary> {
    let bundle = Bundle::open(&req.bundle)?;
    let policy = NativePolicy::from_bundle(&bundle)?;
    let (resolved, params) = bundle.environment(&req.cache)?;
    let start = crate::backtest::start_sec(&resolved.config)?;
    let symbols = crate::backtest::selected_symbols(&req.cache, &req.selection)?;
    let mut days: Vec<Vec<Arc<DayData>>> = Vec::with_capacity(symbols.len());
    for s in &symbols {
        let one = DaySelection {
            symbols: Some(vec![s.clone()]),
            from: req.selection.from,
            to: req.selection.to,
        };
        days.push(load_days(&req.cache, &one, &params)?);
    }
    let mut dates: Vec<chrono::NaiveDate> = days.iter().flatten().map(|d| d.date).collect();
    dates.sort();
    dates.dedup();

    // Records are flushed to the OS as they are written and fsynced once per bar (a
    // group commit, `fsync`): a crash loses at most the bar being handled, which the
    // restart regenerates.
    let opened = Journal::open(&req.journal, false)?;
    let mut rec = Recorder {
        journal: opened.journal,
        existing: opened.records,
        next: 0,
        synced: 0,
        book: Book::default(),
        summary: ReplaySummary {
            damaged_tail: opened.damaged_tail.map(|d| d.why),
            ..ReplaySummary::default()
        },
    };
    let mut equity: Vec<f64> = vec![params.initial_equity; symbols.len()];
    let mut risk = RiskManager::new(req.risk.clone(), equity.iter().sum());
    let mut trips: Vec<TripBuilder> = symbols.iter().map(|s| TripBuilder::new(s)).collect();
    let mut next_order = 1u64;
    let (mut raw, mut log_probs) = (vec![0f32; policy.obs_dim], vec![0f32; policy.n_actions]);
    let (mut decision_us, mut bar_us) = (Vec::new(), Vec::new());
    for date in dates {
        let total: f64 = equity.iter().sum();
        let day_ns = days
            .iter()
            .flatten()
            .find(|d| d.date == date)
            .map_or(0, |d| d.midnight_ns);
        rec.emit(
            day_ns,
            Event::Day {
                date,
                equity: total,
            },
        )?;
        let change = risk.begin_day(total);
        rec.state(day_ns, change)?;
        let mut accounts: Vec<(usize, Account)> = Vec::new();
        for (k, list) in days.iter().enumerate() {
            let Some(day) = list.iter().find(|d| d.date == date) else {
                continue;
            };
            let Some(start_row) = day.start_row_at(start) else {
                continue;
            };
            let episode = Episode {
                day: day.clone(),
                start_row,
            };
            accounts.push((
                k,
                Account {
                    symbol: symbols[k].clone(),
                    env: ReferenceEnv::with_equity(params.clone(), episode, equity[k])?,
                    state: policy.state(),
                    first: true,
                    trips: std::mem::replace(&mut trips[k], TripBuilder::new(&symbols[k])),
                    order_id: 0,
                    order_target: None,
                },
            ));
        }
        // Bar by bar in time order; symbols in order within a bar.
        let mut bar: Option<(u32, f64)> = None;
        while let Some(i) = (0..accounts.len())
            .filter(|&i| accounts[i].1.env.finished.is_none())
            .min_by_key(|&i| {
                (
                    accounts[i].1.env.day().bars[accounts[i].1.env.row()].ts_ms,
                    i,
                )
            })
        {
            let bar_ms = accounts[i].1.env.day().bars[accounts[i].1.env.row()].ts_ms;
            if let Some((ms, total)) = bar
                && ms != bar_ms
            {
                // The previous bar is done: its records become durable before the next
                // bar's first decision.
                let clock = std::time::Instant::now();
                rec.commit(req.fsync)?;
                bar_us.push(total + clock.elapsed().as_secs_f64() * 1e6);
                bar = None;
            }
            // The kill switch is looked at once per bar, before its first decision.
            if bar.is_none()
                && let Some(kill) = &req.kill_file
                && kill.exists()
            {
                let change = risk.kill(&format!("kill file {}", kill.display()));
                rec.state(decision_ns(&accounts[i].1.env), change)?;
            }
            let (k, acct) = &mut accounts[i];
            let clock = std::time::Instant::now();
            step_account(
                acct,
                &policy,
                &params,
                &mut risk,
                &mut rec,
                &mut next_order,
                &mut raw,
                &mut log_probs,
            )?;
            let us = clock.elapsed().as_secs_f64() * 1e6;
            decision_us.push(us);
            bar = Some(bar.map_or((bar_ms, us), |(ms, total)| (ms, total + us)));
            equity[*k] = acct.env.equity();
            let ts = decision_ns(&accounts[i].1.env);
            let change = risk.mark(equity.iter().sum());
            rec.state(ts, change)?;
        }
        if let Some((_, total)) = bar {
            let clock = std::time::Instant::now();
            rec.commit(req.fsync)?;
            bar_us.push(total + clock.elapsed().as_secs_f64() * 1e6);
        }
        rec.commit(req.fsync)?;
        for (k, acct) in accounts {
            equity[k] = acct.env.equity();
            trips[k] = acct.trips;
        }
    }
    if rec.next < rec.existing.len() {
        return Err(Error::input(
            rec.journal.path(),
            format!(
                "holds {} records but this replay gives {}: the journal belongs to another bundle, feed or config",
                rec.existing.len(),
                rec.next
            ),
        ));
    }
    let book = rec.book;
    let mut s = rec.summary;
    s.equity = symbols
        .iter()
        .cloned()
        .zip(equity.iter().copied())
        .collect();
    s.total_equity = equity.iter().sum();
    s.realized = book.realized;
    s.costs = book.costs;
    s.open_positions = book.positions.len();
    s.decision_us = Percentiles::of(decision_us);
    s.bar_us = Percentiles::of(bar_us);
    Ok(s)
}

/// The decision time of the account's current bar: its close, UTC ns.
fn decision_ns(env: &ReferenceEnv) -> i64 {
    let day = env.day();
    let bar = day.bars[env.row()];
    day.utc_ns(bar.ts_ms + day.bar_ms)
}

/// One bar of one account: decide, check, order, fill.
#[allow(clippy::too_many_arguments)]
fn step_account(
    acct: &mut Account,
    policy: &NativePolicy,
    params: &crate::env::EnvParams,
    risk: &mut RiskManager,
    rec: &mut Recorder,
    next_order: &mut u64,
    raw: &mut [f32],
    log_probs: &mut [f32],
) -> Result<()> {
    let ts = decision_ns(&acct.env);
    acct.env.observe(raw);
    policy.step(raw, acct.first, &mut acct.state, log_probs);
    acct.first = false;
    let action = greedy(log_probs);
    let wanted = acct.env.decided_shares(params.actions[action]);
    rec.emit(
        ts,
        Event::Decision {
            symbol: acct.symbol.clone(),
            action,
            target: wanted,
        },
    )?;
    let day = acct.env.day().clone();
    let bar = day.bars[acct.env.row()];
    let position = acct.env.ledger().position;
    let verdict = risk.check(&Proposal {
        symbol: &acct.symbol,
        ts_ns: ts,
        current: position,
        target: wanted,
        price: bar.close,
        secs_to_close: (day.close_ms as f64 - (bar.ts_ms + day.bar_ms) as f64) / 1000.0,
    });
    if verdict.target != wanted {
        rec.emit(
            ts,
            Event::Rejection {
                symbol: acct.symbol.clone(),
                requested: wanted,
                allowed: verdict.target,
                reasons: verdict.reasons.clone(),
            },
        )?;
    }
    // A new order when the target differs from the working order (or, without one, from
    // the position).
    let working = acct.order_target.unwrap_or(position);
    if verdict.target != working {
        acct.order_id = *next_order;
        *next_order += 1;
        acct.order_target = (verdict.target != position).then_some(verdict.target);
        rec.emit(
            ts,
            Event::Order {
                symbol: acct.symbol.clone(),
                id: acct.order_id,
                shares: verdict.target - position,
            },
        )?;
    }
    acct.env.step_shares(verdict.target)?;
    let fills = acct.env.last_fills.clone();
    for f in &fills {
        let at = day.utc_ns(f.ts_ms);
        rec.emit(
            at,
            Event::Fill {
                symbol: acct.symbol.clone(),
                order: if f.forced { 0 } else { acct.order_id },
                shares: f.shares,
                price: f.price,
                cost: f.costs.total(),
            },
        )?;
        risk.on_fill(&acct.symbol, f.position_after, f.price);
        // Closed round trips feed the consecutive-loss pause (P&L after commission,
        // spread and impact; borrow is not attributed to trips here).
        let before = acct.trips.trips.len();
        acct.trips
            .fill(at, f.shares, f.position_after, f.realized, f.costs.total());
        if let Some(t) = acct.trips.trips.get(before) {
            risk.on_round_trip(t.net_pnl(), at);
        }
    }
    if acct.env.pending().is_none() {
        acct.order_target = None;
    }
    Ok(())
}
