//! The broker interface of the live loop, and the paper broker.
//!
//! The loop ([`super::engine`]) talks to a broker in broker terms only: a bar closed
//! (report the fills since the last bar, mark the account), place or replace a
//! symbol's working order toward a target, flatten now, and the account as the broker
//! sees it (position, average price, entry time, working order, equity). A real broker
//! adapter (e.g. Alpaca's REST orders and WebSocket fill stream) implements [`Broker`]
//! by sending orders on [`Broker::submit`] and draining the fills its stream reported on
//! [`Broker::bar`]; the loop does not change.
//!
//! [`PaperBroker`] is the simulator's execution model: each symbol's day grows as its
//! bars arrive and a [`ReferenceEnv`] fills the working order at the next bar's open
//! (latency, spread or quote, impact, participation cap and partial fills, halts), books
//! costs and borrow, and flattens at the session's last bar, exactly as in `eval`.

use super::engine::DayHeader;
use crate::env::{BarRec, DayData, EnvParams, Episode, ReferenceEnv};
use crate::error::Result;
use std::sync::Arc;

/// A fill reported by a broker.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BrokerFill {
    /// When it filled, UTC ns.
    pub ts_ns: i64,
    /// The order it filled (0: the broker's own, e.g. a flatten at the close).
    pub order: u64,
    /// Signed shares (+ buy, − sell) at a reference price, with every cost of the fill.
    pub shares: i64,
    pub price: f64,
    pub cost: f64,
    /// P&L the fill realized at reference prices, and the position after it.
    pub realized: f64,
    pub position_after: i64,
}

/// What a broker reports when a bar has closed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BarReport {
    pub fills: Vec<BrokerFill>,
    /// The broker ended the symbol's session (flattened at the close, or by the
    /// environment's loss limit): no more decisions today.
    pub ended: bool,
}

/// A working order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Working {
    pub target: i64,
    /// Signed shares still to fill.
    pub remaining: i64,
}

/// One symbol's account as the broker sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AccountView {
    pub position: i64,
    pub avg_price: f64,
    /// When the position was opened, ms since New York midnight (0 when flat).
    pub entry_ms: u32,
    pub working: Option<Working>,
    /// Equity marked at the last bar's close, and at the start of the session (the scale
    /// of the observation's unrealized P&L).
    pub equity: f64,
    pub session_equity: f64,
}

/// An order the broker would not take.
#[derive(Clone, Debug, PartialEq)]
pub struct BrokerReject {
    pub reason: String,
}

/// What the live loop needs of a broker (see the module docs).
pub trait Broker {
    /// A new trading day of `symbol` begins (its first bar follows).
    fn begin_day(&mut self, symbol: usize, day: &DayHeader) -> Result<()>;
    /// A bar of `symbol` has closed: the fills of its working order since the last bar,
    /// and the account marked at this bar's close.
    fn bar(
        &mut self,
        symbol: usize,
        day: &DayHeader,
        bar: &BarRec,
        last: bool,
    ) -> Result<BarReport>;
    /// The loop starts trading `symbol` at the bar just reported (the paper broker
    /// starts its episode there).
    fn start(&mut self, symbol: usize) -> Result<()>;
    /// Replaces `symbol`'s working order by order `id` toward `target` shares (a target
    /// equal to the position cancels the working order).
    fn submit(
        &mut self,
        symbol: usize,
        id: u64,
        target: i64,
    ) -> std::result::Result<(), BrokerReject>;
    /// Flattens `symbol` now, at its last bar (the session ended without its final bar).
    fn close_out(&mut self, symbol: usize) -> Result<Vec<BrokerFill>>;
    fn account(&self, symbol: usize) -> AccountView;
}

/// One symbol's paper account during a day.
enum PaperDay {
    /// No day, or the day's session is over.
    Idle,
    /// Bars before trading starts.
    Building { day: DayData, open_ms: u32 },
    Running {
        env: Box<ReferenceEnv>,
        open_ms: u32,
        /// The working order: id and target.
        order: Option<(u64, i64)>,
    },
}

struct PaperAccount {
    /// Carried from day to day.
    equity: f64,
    day: PaperDay,
}

/// The simulator's execution model as a broker (see the module docs).
pub struct PaperBroker {
    params: Arc<EnvParams>,
    accounts: Vec<PaperAccount>,
}

impl PaperBroker {
    /// Accounts of `params.initial_equity` for `n` symbols.
    pub fn new(params: Arc<EnvParams>, n: usize) -> PaperBroker {
        PaperBroker {
            accounts: (0..n)
                .map(|_| PaperAccount {
                    equity: params.initial_equity,
                    day: PaperDay::Idle,
                })
                .collect(),
            params,
        }
    }

    /// The env's last fills as broker fills.
    fn fills(env: &ReferenceEnv, order: u64) -> Vec<BrokerFill> {
        let day = env.day();
        env.last_fills
            .iter()
            .map(|f| BrokerFill {
                ts_ns: day.utc_ns(f.ts_ms),
                order: if f.forced { 0 } else { order },
                shares: f.shares,
                price: f.price,
                cost: f.costs.total(),
                realized: f.realized,
                position_after: f.position_after,
            })
            .collect()
    }
}

impl Broker for PaperBroker {
    fn begin_day(&mut self, symbol: usize, h: &DayHeader) -> Result<()> {
        let a = &mut self.accounts[symbol];
        a.day = PaperDay::Building {
            day: DayData::growing(
                h.symbol_name.to_string(),
                h.date,
                h.bar,
                h.midnight_ns,
                0,
                h.close_ms,
                h.halts.to_vec(),
            ),
            open_ms: h.open_ms,
        };
        Ok(())
    }

    fn bar(&mut self, symbol: usize, h: &DayHeader, bar: &BarRec, last: bool) -> Result<BarReport> {
        let a = &mut self.accounts[symbol];
        match &mut a.day {
            PaperDay::Idle => Ok(BarReport::default()),
            PaperDay::Building { day, open_ms } => {
                sync_halts(day, h.halts);
                day.push(*bar, &[], *open_ms, last);
                if last {
                    a.day = PaperDay::Idle;
                }
                Ok(BarReport::default())
            }
            PaperDay::Running {
                env,
                open_ms,
                order,
            } => {
                let day = env.day_mut();
                sync_halts(day, h.halts);
                day.push(*bar, &[], *open_ms, last);
                let position = env.ledger().position;
                let id = order.map_or(0, |o| o.0);
                env.step_shares(order.map_or(position, |o| o.1))?;
                let fills = PaperBroker::fills(env, id);
                if env.pending().is_none() {
                    *order = None;
                }
                a.equity = env.equity();
                let ended = env.finished.is_some();
                if ended {
                    a.day = PaperDay::Idle;
                }
                Ok(BarReport { fills, ended })
            }
        }
    }

    fn start(&mut self, symbol: usize) -> Result<()> {
        let a = &mut self.accounts[symbol];
        let PaperDay::Building { day, open_ms } = std::mem::replace(&mut a.day, PaperDay::Idle)
        else {
            return Err(crate::error::Error::Usage(
                "the paper broker can only start trading a symbol during its day".into(),
            ));
        };
        let start_row = day.rows() as u32 - 1;
        let env = ReferenceEnv::with_equity(
            self.params.clone(),
            Episode {
                day: Arc::new(day),
                start_row,
            },
            a.equity,
        )?;
        a.day = PaperDay::Running {
            env: Box::new(env),
            open_ms,
            order: None,
        };
        Ok(())
    }

    fn submit(
        &mut self,
        symbol: usize,
        id: u64,
        target: i64,
    ) -> std::result::Result<(), BrokerReject> {
        if target < 0 && !self.params.allow_short {
            return Err(BrokerReject {
                reason: format!("target {target} shares is short and env.allow_short = false"),
            });
        }
        match &mut self.accounts[symbol].day {
            PaperDay::Running { order, .. } => {
                *order = Some((id, target));
                Ok(())
            }
            _ => Err(BrokerReject {
                reason: "the symbol is not trading now".into(),
            }),
        }
    }

    fn close_out(&mut self, symbol: usize) -> Result<Vec<BrokerFill>> {
        let a = &mut self.accounts[symbol];
        let PaperDay::Running { env, .. } = &mut a.day else {
            return Ok(Vec::new());
        };
        env.close_out()?;
        let fills = PaperBroker::fills(env, 0);
        a.equity = env.equity();
        a.day = PaperDay::Idle;
        Ok(fills)
    }

    fn account(&self, symbol: usize) -> AccountView {
        let a = &self.accounts[symbol];
        match &a.day {
            PaperDay::Running { env, .. } => {
                let l = env.ledger();
                AccountView {
                    position: l.position,
                    avg_price: l.avg_price,
                    entry_ms: l.entry_ms,
                    working: env.pending().map(|p| Working {
                        target: p.target,
                        remaining: p.remaining,
                    }),
                    equity: env.equity(),
                    session_equity: env.equity0(),
                }
            }
            _ => AccountView {
                position: 0,
                avg_price: 0.0,
                entry_ms: 0,
                working: None,
                equity: a.equity,
                session_equity: a.equity,
            },
        }
    }
}

/// Halts learned since the day began (a stream learns them bar by bar).
fn sync_halts(day: &mut DayData, halts: &[(u32, u32)]) {
    if day.halts != halts {
        day.halts = halts.to_vec();
    }
}
