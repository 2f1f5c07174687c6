//! The live engine: one loop for every feed and broker. Bars arrive one at a time, in
//! time order across symbols; each goes feed → broker (fills of the working order,
//! marks) → policy (pure-Rust forward, greedy, at the bar's close) → risk manager →
//! order → broker, and every step is a journal record.
//!
//! **One account per symbol**, as in `eval`: it starts at `env.initial_equity` and carries
//! its equity from day to day; the risk manager sees the portfolio (their sum). A symbol
//! trades each day from its first session bar at or after `backtest.start_time`, with the
//! policy's LSTM state zeroed there, until the broker ends its session. The observation
//! is the bar's features and the account fields of the broker's view, sized as the
//! simulator sizes them; with the paper broker ([`super::broker::PaperBroker`]) and
//! limits that cut nothing every decision and fill is the one `eval --policy` makes
//! (tested). A feed that never delivers the session's final-slot bar ends the session at
//! the first bar after the close (or the next day): the broker flattens at the last
//! session bar ([`Broker::close_out`]). An order the broker rejects is journaled with its
//! reason ([`Event::OrderRejected`]) and its target no longer counts in the risk
//! manager's exposure.
//!
//! **Inputs and restarts.** The journal is the log of everything the engine was given
//! that it cannot regenerate (a stream's lines as [`Event::Input`], operator commands as
//! [`Event::Command`]) and of everything it derived (decisions, rejections, orders,
//! fills, state changes). A restart feeds the same inputs again (a replay's cache, or the
//! journal's own input lines), checks every derived record against the journal (a
//! difference is an error: another bundle, feed or config), applies the journaled
//! commands where they were applied, and appends from where the journal ends: after a
//! crash at any moment the state is the uninterrupted run's.
//!
//! **Commands** (kill switch, reduce-only, resume: from a signal, the kill file or the
//! monitoring endpoint, see [`super::control`]) are taken at control points: before the
//! first symbol of each new bar time, and while a stream is idle.
//!
//! **Durability.** Records are written to the OS as they are made and fsynced in groups
//! ([`Engine::commit`]): once per bar time, and whenever a stream has no input waiting;
//! a crash loses at most what the restart regenerates.

use super::broker::{Broker, BrokerFill};
use super::control::{Command, Controls};
use super::journal::{Book, Event, Journal, Record};
use super::metrics::{LiveMetrics, Stage};
use super::risk::{Proposal, RiskConfig, RiskManager, StateChange};
use crate::backtest::trips::TripBuilder;
use crate::bars::BarSize;
use crate::bundle::native::{NativePolicy, NativeState, greedy};
use crate::env::{ACCOUNT_FIELDS, BarRec, EnvParams, exec};
use crate::error::{Error, Result};
use crate::util::stats::Percentiles;
use chrono::NaiveDate;
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// What a live run did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LiveSummary {
    /// Records checked against an existing journal (a restart), and records appended.
    pub verified: usize,
    pub appended: usize,
    pub days: usize,
    /// Stream lines taken (journaled), lines skipped as resent duplicates, and lines
    /// refused as bad bars.
    pub inputs: usize,
    pub duplicates: usize,
    pub bad_bars: usize,
    pub commands: usize,
    pub decisions: usize,
    pub rejections: usize,
    pub orders: usize,
    /// Orders the broker would not take.
    pub broker_rejects: usize,
    pub fills: usize,
    pub state_changes: usize,
    /// The trading state at the end.
    pub state: String,
    /// Equity of each symbol's account at the end, and their sum.
    pub equity: Vec<(String, f64)>,
    pub total_equity: f64,
    /// Folded from the journal's fills (average-price accounting, [`Book`]).
    pub realized: f64,
    pub costs: f64,
    pub open_positions: usize,
    /// The journal's last damaged tail, if reopening cut one off.
    pub damaged_tail: Option<String>,
    /// Time from a bar's arrival to its order, for bars that end in a decision (a
    /// stream's parsing and features, the broker's fills and marks, policy, risk, order,
    /// journal records written to the OS), µs.
    pub decision_us: Percentiles,
    /// Time to handle one bar time with decisions, every symbol's bar one after another
    /// on one core, then the group commit, µs.
    pub bar_us: Percentiles,
}

/// Writes records, or, while an existing journal still has records, checks them.
struct Recorder {
    journal: Journal,
    existing: Vec<Record>,
    next: usize,
    /// Records appended and fsynced.
    synced: usize,
    fsync: bool,
    summary: LiveSummary,
    /// Positions, realized P&L and costs of the journal's fills so far.
    book: Book,
}

impl Recorder {
    fn emit(&mut self, ts_ns: i64, event: Event) -> Result<()> {
        let s = &mut self.summary;
        match &event {
            Event::Decision { .. } => s.decisions += 1,
            Event::Rejection { .. } => s.rejections += 1,
            Event::Order { .. } => s.orders += 1,
            Event::Fill {
                symbol,
                shares,
                price,
                cost,
                ..
            } => {
                s.fills += 1;
                self.book.fill(symbol, *shares, *price, *cost);
            }
            Event::State { .. } => s.state_changes += 1,
            Event::Day { .. } => s.days += 1,
            Event::Input { .. } => s.inputs += 1,
            Event::BadBar { .. } => s.bad_bars += 1,
            Event::Command { .. } => s.commands += 1,
            Event::OrderRejected { .. } => s.broker_rejects += 1,
        }
        if let Some(old) = self.existing.get(self.next) {
            if old.ts_ns != ts_ns || old.event != event {
                return Err(Error::input(
                    self.journal.path(),
                    format!(
                        "record {} is {:?} at {}, this run gives {:?} at {ts_ns}: the journal belongs to another bundle, feed or config; use a new journal",
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

    /// Still checking an existing journal's records.
    fn verifying(&self) -> bool {
        self.next < self.existing.len()
    }

    /// Makes every record appended so far durable (when `fsync`).
    fn commit(&mut self) -> Result<()> {
        if self.fsync && self.summary.appended > self.synced {
            self.journal.sync()?;
            self.synced = self.summary.appended;
        }
        Ok(())
    }
}

/// A symbol the loop is trading today.
struct Trading {
    state: NativeState,
    first: bool,
    /// The target of the working order the loop sent, while the broker works it.
    order_target: Option<i64>,
}

/// One symbol's account, as the loop keeps it.
struct Account {
    symbol: String,
    /// Equity as the broker last marked it.
    equity: f64,
    trips: TripBuilder,
    date: Option<NaiveDate>,
    trading: Option<Box<Trading>>,
    /// Today's session is over for the loop (ended by the broker or closed out).
    over: bool,
    /// Close of the symbol's last bar, UTC ns.
    last_close_ns: i64,
}

/// What a feed knows of a symbol's day when it delivers one of its bars.
pub struct DayHeader<'a> {
    /// Index into the engine's symbols, and its name.
    pub symbol: usize,
    pub symbol_name: &'a str,
    pub date: NaiveDate,
    pub bar: BarSize,
    /// UTC ns of New York midnight.
    pub midnight_ns: i64,
    /// The traded session (`env.session`), ms since midnight.
    pub open_ms: u32,
    pub close_ms: u32,
    /// Halts known so far, `[start, end)` ms since midnight.
    pub halts: &'a [(u32, u32)],
}

/// How to run the engine.
pub struct EngineOptions {
    pub fsync: bool,
    pub risk: RiskConfig,
    /// Automatic kill triggers.
    pub watchdog: super::watchdog::WatchdogConfig,
    /// Where commands come from (signals, kill file, endpoint); `None` = none.
    pub controls: Option<Arc<Controls>>,
}

pub struct Engine {
    policy: NativePolicy,
    broker: Box<dyn Broker>,
    params: Arc<EnvParams>,
    start_ms: u32,
    risk: RiskManager,
    rec: Recorder,
    accounts: Vec<Account>,
    next_order: u64,
    date: Option<NaiveDate>,
    /// Start (UTC ns) of the bar time being handled, the work spent on it (µs), and
    /// whether any symbol decided on it.
    bar: Option<(i64, f64, bool)>,
    decision_us: Vec<f64>,
    bar_us: Vec<f64>,
    raw: Vec<f32>,
    log_probs: Vec<f32>,
    controls: Option<Arc<Controls>>,
    watchdog: super::watchdog::Watchdog,
    metrics: LiveMetrics,
}

impl Engine {
    /// An engine for `symbols` through `broker`, continuing `journal` (opened by the
    /// caller).
    pub fn new(
        policy: NativePolicy,
        params: Arc<EnvParams>,
        start_sec: u32,
        symbols: &[String],
        opened: super::journal::Opened,
        opts: EngineOptions,
        broker: Box<dyn Broker>,
    ) -> Engine {
        let accounts: Vec<Account> = symbols
            .iter()
            .map(|s| Account {
                symbol: s.clone(),
                equity: params.initial_equity,
                trips: TripBuilder::new(s),
                date: None,
                trading: None,
                over: true,
                last_close_ns: 0,
            })
            .collect();
        let total = params.initial_equity * symbols.len() as f64;
        let journal_dir = opened
            .journal
            .path()
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let (obs_dim, n_actions) = (policy.obs_dim, policy.n_actions);
        Engine {
            risk: RiskManager::new(opts.risk, total),
            rec: Recorder {
                journal: opened.journal,
                existing: opened.records,
                next: 0,
                synced: 0,
                fsync: opts.fsync,
                book: Book::default(),
                summary: LiveSummary {
                    damaged_tail: opened.damaged_tail.map(|d| d.why),
                    ..LiveSummary::default()
                },
            },
            metrics: LiveMetrics::new(symbols),
            policy,
            broker,
            params,
            start_ms: start_sec.saturating_mul(1000),
            accounts,
            next_order: 1,
            date: None,
            bar: None,
            decision_us: Vec::new(),
            bar_us: Vec::new(),
            raw: vec![0f32; obs_dim],
            log_probs: vec![0f32; n_actions],
            controls: opts.controls,
            watchdog: super::watchdog::Watchdog::new(opts.watchdog, journal_dir),
        }
    }

    /// [`Engine::new`] with the paper broker ([`super::broker::PaperBroker`]).
    pub fn paper(
        policy: NativePolicy,
        params: Arc<EnvParams>,
        start_sec: u32,
        symbols: &[String],
        opened: super::journal::Opened,
        opts: EngineOptions,
    ) -> Engine {
        let broker = Box::new(super::broker::PaperBroker::new(
            params.clone(),
            symbols.len(),
        ));
        Engine::new(policy, params, start_sec, symbols, opened, opts, broker)
    }

    pub fn params(&self) -> &Arc<EnvParams> {
        &self.params
    }

    /// The trading date under way, if any.
    pub fn date(&self) -> Option<NaiveDate> {
        self.date
    }

    /// The input lines of the journal being continued, with their times: what a
    /// restarted stream feeds again before new input.
    pub fn journaled_inputs(&self) -> Vec<(String, i64)> {
        self.rec
            .existing
            .iter()
            .filter_map(|r| match &r.event {
                Event::Input { line } => Some((line.clone(), r.ts_ns)),
                _ => None,
            })
            .collect()
    }

    /// A stream's line, journaled before it is looked at.
    pub fn input(&mut self, line: &str, received_ns: i64) -> Result<()> {
        // Commands taken while the stream was idle sit between two lines.
        self.journaled_commands()?;
        self.metrics.inputs += 1;
        self.rec.emit(
            received_ns,
            Event::Input {
                line: line.to_string(),
            },
        )
    }

    /// A resent line the engine already has (not journaled again).
    pub fn duplicate(&mut self) {
        self.rec.summary.duplicates += 1;
        self.metrics.duplicates += 1;
    }

    /// A line refused: nothing is traded on it.
    pub fn bad_bar(&mut self, ts_ns: i64, symbol: &str, reason: String) -> Result<()> {
        tracing::warn!(symbol, reason = %reason, "live: bad bar refused");
        self.metrics.bad_bars += 1;
        self.rec.emit(
            ts_ns,
            Event::BadBar {
                symbol: symbol.to_string(),
                reason,
            },
        )
    }

    /// Observes how late a stream's bar arrived (its close to its receipt), s.
    pub fn feed_lag(&mut self, secs: f64) {
        self.metrics.feed_lag_s = secs;
    }

    /// Time spent turning a stream's line into a bar and its features, µs.
    pub fn feature_time(&mut self, us: f64) {
        self.metrics.stage(Stage::Features, us);
    }

    /// One bar of one symbol, in time order across symbols. `features` is the bar's
    /// observation feature row (the bundle's columns); `last`: the session's last bar;
    /// `arrived`: when the feed took the bar in (the start of its feed → order latency).
    pub fn on_bar(
        &mut self,
        h: &DayHeader,
        bar: BarRec,
        features: &[f32],
        last: bool,
        arrived: Instant,
    ) -> Result<()> {
        // The previous bar time's tail (its group commit, a new day's records, commands)
        // is not this bar's latency.
        let tail = Instant::now();
        self.begin_date(h.date, h.midnight_ns)?;
        let ts_ns = h.midnight_ns + bar.ts_ms as i64 * 1_000_000;
        if self.bar.is_none_or(|(at, _, _)| at != ts_ns) {
            self.finish_bar()?;
            self.bar = Some((ts_ns, 0.0, false));
            self.control_point()?;
        }
        let tail = tail.elapsed();
        let decisions = self.rec.summary.decisions;
        let k = h.symbol;
        if self.accounts[k].date != Some(h.date) {
            // The previous day's session was closed out by `begin_date`.
            let a = &mut self.accounts[k];
            a.date = Some(h.date);
            a.trading = None;
            a.over = false;
            self.broker.begin_day(k, h)?;
        }
        let close_ns = h.midnight_ns + (bar.ts_ms + h.bar.secs() * 1000) as i64 * 1_000_000;
        if bar.ts_ms >= h.close_ms {
            // After the session: one still open missed its last bar.
            self.close_out(k)?;
            self.accounts[k].over = true;
        } else if !self.accounts[k].over {
            let clock = Instant::now();
            let report = self.broker.bar(k, h, &bar, last)?;
            self.metrics
                .stage(Stage::Broker, clock.elapsed().as_secs_f64() * 1e6);
            let mut trading = self.accounts[k].trading.take();
            self.accounts[k].last_close_ns = close_ns;
            if trading.is_some() || !report.fills.is_empty() {
                self.after_fills(k, &report.fills, trading.as_deref_mut(), close_ns)?;
            }
            if report.ended || last {
                self.accounts[k].over = true;
            } else {
                if trading.is_none() && bar.ts_ms >= h.open_ms && bar.ts_ms >= self.start_ms {
                    self.broker.start(k)?;
                    trading = Some(Box::new(Trading {
                        state: self.policy.state(),
                        first: true,
                        order_target: None,
                    }));
                }
                if let Some(t) = &mut trading {
                    self.decide(k, t, h, &bar, features, close_ns)?;
                }
                self.accounts[k].trading = trading;
            }
        }
        let us = arrived.elapsed().saturating_sub(tail).as_secs_f64() * 1e6;
        if !self.rec.verifying() {
            let open = self.accounts.iter().any(|a| !a.over);
            self.watchdog.bar(now_ns(), open);
        }
        let decided = self.rec.summary.decisions > decisions;
        if decided {
            self.decision_us.push(us);
        }
        self.metrics.stage(Stage::Bar, us);
        if let Some((_, work, any)) = &mut self.bar {
            *work += us;
            *any |= decided;
        }
        Ok(())
    }

    /// A new trading date: episodes still open are closed out, the day's record
    /// written, and the risk manager's day begun.
    fn begin_date(&mut self, date: NaiveDate, midnight_ns: i64) -> Result<()> {
        match self.date {
            Some(d) if d == date => return Ok(()),
            Some(d) if d > date => {
                return Err(Error::Data(format!(
                    "a bar of {date} after bars of {d}: the feed must deliver days in order"
                )));
            }
            _ => {}
        }
        for k in 0..self.accounts.len() {
            self.close_out(k)?;
        }
        self.finish_bar()?;
        self.date = Some(date);
        let total = self.total_equity();
        self.rec.emit(
            midnight_ns,
            Event::Day {
                date,
                equity: total,
            },
        )?;
        let change = self.risk.begin_day(total);
        self.state(midnight_ns, change)
    }

    /// Ends symbol `k`'s open session at its last bar (see the module docs).
    fn close_out(&mut self, k: usize) -> Result<()> {
        let Some(mut t) = self.accounts[k].trading.take() else {
            return Ok(());
        };
        tracing::info!(
            symbol = %self.accounts[k].symbol,
            "live: the session ended without its final bar; flattening at the last bar's close"
        );
        let fills = self.broker.close_out(k)?;
        let ts = self.accounts[k].last_close_ns;
        self.after_fills(k, &fills, Some(&mut t), ts)
    }

    /// Journals a broker's fills, then marks the account and the portfolio at `ts`.
    fn after_fills(
        &mut self,
        k: usize,
        fills: &[BrokerFill],
        trading: Option<&mut Trading>,
        ts: i64,
    ) -> Result<()> {
        let symbol = self.accounts[k].symbol.clone();
        for f in fills {
            self.rec.emit(
                f.ts_ns,
                Event::Fill {
                    symbol: symbol.clone(),
                    order: f.order,
                    shares: f.shares,
                    price: f.price,
                    cost: f.cost,
                },
            )?;
            self.metrics.fills += 1;
            self.risk.on_fill(&symbol, f.position_after, f.price);
            // Closed round trips feed the consecutive-loss pause (P&L after commission,
            // spread and impact; borrow is not attributed to trips here).
            let trips = &mut self.accounts[k].trips;
            let before = trips.trips.len();
            trips.fill(f.ts_ns, f.shares, f.position_after, f.realized, f.cost);
            if let Some(tr) = trips.trips.get(before) {
                self.risk.on_round_trip(tr.net_pnl(), f.ts_ns);
            }
        }
        let view = self.broker.account(k);
        if let Some(t) = trading
            && view.working.is_none()
        {
            t.order_target = None;
        }
        self.accounts[k].equity = view.equity;
        self.metrics.positions[k] = view.position;
        let change = self.risk.mark(self.total_equity());
        self.state(ts, change)
    }

    /// The decision at `bar`'s close: policy, risk, order.
    #[allow(clippy::too_many_arguments)]
    fn decide(
        &mut self,
        k: usize,
        t: &mut Trading,
        h: &DayHeader,
        bar: &BarRec,
        features: &[f32],
        ts: i64,
    ) -> Result<()> {
        let clock = Instant::now();
        let view = self.broker.account(k);
        let p = &self.params;
        let nf = features.len();
        self.raw[..nf].copy_from_slice(features);
        self.raw[nf..nf + ACCOUNT_FIELDS.len()].copy_from_slice(&exec::account_obs(
            p,
            bar,
            h.bar.secs() * 1000,
            h.close_ms,
            view.position,
            view.avg_price,
            view.entry_ms,
            view.working.map_or(0, |w| w.remaining),
            1.0 / view.session_equity,
        ));
        self.policy
            .step(&self.raw, t.first, &mut t.state, &mut self.log_probs);
        t.first = false;
        let action = greedy(&self.log_probs);
        // Sized at the close from the working order's target (or the position), small
        // changes kept, as the simulator sizes it.
        let current = view.working.map_or(view.position, |w| w.target);
        let wanted = exec::decide_target(p, p.actions[action], bar.close, current);
        self.metrics
            .stage(Stage::Policy, clock.elapsed().as_secs_f64() * 1e6);
        let symbol = self.accounts[k].symbol.clone();
        self.rec.emit(
            ts,
            Event::Decision {
                symbol: symbol.clone(),
                action,
                target: wanted,
            },
        )?;
        self.metrics.decisions += 1;
        let clock = Instant::now();
        let position = view.position;
        let verdict = self.risk.check(&Proposal {
            symbol: &symbol,
            ts_ns: ts,
            current: position,
            target: wanted,
            price: bar.close,
            secs_to_close: (h.close_ms as f64 - (bar.ts_ms + h.bar.secs() * 1000) as f64) / 1000.0,
        });
        self.metrics
            .stage(Stage::Risk, clock.elapsed().as_secs_f64() * 1e6);
        if verdict.target != wanted {
            tracing::info!(
                symbol = %symbol,
                requested = wanted,
                allowed = verdict.target,
                reasons = %verdict.reasons.join("; "),
                "live: risk cut a decision"
            );
            self.metrics.reject(&verdict.reasons);
            self.rec.emit(
                ts,
                Event::Rejection {
                    symbol: symbol.clone(),
                    requested: wanted,
                    allowed: verdict.target,
                    reasons: verdict.reasons,
                },
            )?;
        }
        // A new order when the target differs from the working order (or, without one,
        // from the position): journaled, then sent.
        let working = t.order_target.unwrap_or(position);
        if verdict.target != working {
            let id = self.next_order;
            self.next_order += 1;
            self.rec.emit(
                ts,
                Event::Order {
                    symbol: symbol.clone(),
                    id,
                    shares: verdict.target - position,
                },
            )?;
            self.metrics.orders += 1;
            match self.broker.submit(k, id, verdict.target) {
                Ok(()) => t.order_target = (verdict.target != position).then_some(verdict.target),
                Err(reject) => {
                    tracing::warn!(symbol = %symbol, id, reason = %reject.reason, "live: the broker rejected an order");
                    self.metrics.broker_rejects += 1;
                    if !self.rec.verifying() {
                        self.watchdog.broker_error(now_ns());
                    }
                    self.risk.order_failed(&symbol);
                    self.rec.emit(
                        ts,
                        Event::OrderRejected {
                            symbol,
                            id,
                            reason: reject.reason,
                        },
                    )?;
                }
            }
        }
        Ok(())
    }

    fn state(&mut self, ts_ns: i64, change: Option<StateChange>) -> Result<()> {
        let Some(c) = change else {
            return Ok(());
        };
        tracing::warn!(from = ?c.from, to = ?c.to, reason = %c.reason, "live: trading state changed");
        self.rec.emit(
            ts_ns,
            Event::State {
                from: c.from,
                to: c.to,
                reason: c.reason,
            },
        )
    }

    fn total_equity(&self) -> f64 {
        self.accounts.iter().map(|a| a.equity).sum()
    }

    /// The bar time under way is done: its records become durable.
    fn finish_bar(&mut self) -> Result<()> {
        if let Some((_, work, decided)) = self.bar.take() {
            let clock = Instant::now();
            self.commit()?;
            if decided {
                let us = work + clock.elapsed().as_secs_f64() * 1e6;
                self.bar_us.push(us);
                if !self.rec.verifying() {
                    self.watchdog.latency(us / 1e3);
                }
            }
        }
        Ok(())
    }

    /// Makes the records so far durable (a group commit) and publishes the metrics.
    pub fn commit(&mut self) -> Result<()> {
        let clock = Instant::now();
        self.rec.commit()?;
        self.metrics
            .stage(Stage::Journal, clock.elapsed().as_secs_f64() * 1e6);
        self.publish();
        Ok(())
    }

    /// A stream has no input waiting: commit, take commands.
    pub fn idle(&mut self) -> Result<()> {
        self.commit()?;
        self.control_point()
    }

    /// Applies the journal's commands due here (a restart): those recorded next.
    fn journaled_commands(&mut self) -> Result<()> {
        while let Some(r) = self.rec.existing.get(self.rec.next) {
            let Event::Command { command, source } = &r.event else {
                break;
            };
            let (command, source, ts) = (*command, source.clone(), r.ts_ns);
            self.apply(command, source, ts)?;
        }
        Ok(())
    }

    /// Applies the journal's commands due here, then, once the journal is caught up, new
    /// ones from the controls.
    fn control_point(&mut self) -> Result<()> {
        self.journaled_commands()?;
        if self.rec.verifying() {
            return Ok(());
        }
        for (command, source) in self.watchdog.check(now_ns()) {
            self.apply(command, source, now_ns())?;
        }
        let Some(controls) = self.controls.clone() else {
            return Ok(());
        };
        for (command, source) in controls.take() {
            self.apply(command, source, now_ns())?;
        }
        Ok(())
    }

    fn apply(&mut self, command: Command, source: String, ts: i64) -> Result<()> {
        if let Some(c) = &self.controls {
            c.applied(command, &source);
        }
        self.rec.emit(
            ts,
            Event::Command {
                command,
                source: source.clone(),
            },
        )?;
        let change = match command {
            Command::Kill => self.risk.kill(&source),
            Command::Reduce => self.risk.reduce_only(&format!("reduce-only: {source}")),
            Command::Resume => self.risk.resume(&format!("resume: {source}")),
        };
        self.state(ts, change)
    }

    /// Checks that the journal being continued was wholly regenerated (a restart that
    /// falls short was given another feed).
    pub fn check_caught_up(&mut self) -> Result<()> {
        self.control_point()?;
        if self.rec.verifying() {
            return Err(Error::input(
                self.rec.journal.path(),
                format!(
                    "holds {} records but this run gives {}: the journal belongs to another bundle, feed or config",
                    self.rec.existing.len(),
                    self.rec.next
                ),
            ));
        }
        // Checked: no longer needed in memory.
        self.rec.existing = Vec::new();
        self.rec.next = 0;
        Ok(())
    }

    fn publish(&mut self) {
        if let Some(c) = &self.controls {
            self.metrics.state = self.risk.state();
            self.metrics.equity = self.total_equity();
            self.metrics.realized = self.rec.book.realized;
            self.metrics.costs = self.rec.book.costs;
            self.metrics.rejections = self.rec.summary.rejections as u64;
            c.publish(&self.metrics);
        }
    }

    /// Ends the run: the last bar committed; the summary.
    pub fn finish(mut self) -> Result<LiveSummary> {
        self.finish_bar()?;
        self.commit()?;
        let book = self.rec.book;
        let mut s = self.rec.summary;
        s.state = format!("{:?}", self.risk.state()).to_uppercase();
        s.equity = self
            .accounts
            .iter()
            .map(|a| (a.symbol.clone(), a.equity))
            .collect();
        s.total_equity = self.accounts.iter().map(|a| a.equity).sum();
        s.realized = book.realized;
        s.costs = book.costs;
        s.open_positions = book.positions.len();
        s.decision_us = Percentiles::of(self.decision_us);
        s.bar_us = Percentiles::of(self.bar_us);
        Ok(s)
    }
}

/// Wall-clock UTC ns.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}
