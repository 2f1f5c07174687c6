//! The scalar reference environment: one account on one day, one step at a time.
//!
//! Written for clarity, not speed: named structs, `Option`s, a fill log. It is the
//! definition of the environment's semantics (see the module docs of [`super`]); the batch
//! engine and the GPU backends must produce exactly its trajectories. Backtests run on it,
//! because it records every fill.

use super::day::BarRec;
use super::day::DayData;
use super::exec::{self, Costs, Ledger};
use super::params::EnvParams;
use super::{EndReason, Episode, EpisodeStats};
use crate::error::{Error, Result};
use std::sync::Arc;

/// A working order: the target it was sent for and the shares still to fill.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PendingOrder {
    pub target: i64,
    /// Signed shares still to fill.
    pub remaining: i64,
    /// When the order reaches the market, ms since midnight.
    pub arrival_ms: u32,
}

/// One fill, as reported in `trades.csv`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fill {
    /// Start of the bar that filled it, ms since midnight.
    pub ts_ms: u32,
    /// Signed shares (+ buy, − sell).
    pub shares: i64,
    /// Reference price (bar open, quote mid, or close for forced exits).
    pub price: f64,
    pub costs: Costs,
    /// P&L realized by this fill at reference prices.
    pub realized: f64,
    pub position_after: i64,
    /// A forced exit (session close or loss limit), not an agent's order.
    pub forced: bool,
}

impl Fill {
    /// Average price paid per share including spread and impact (not commission).
    pub fn exec_price(&self) -> f64 {
        let q = self.shares.abs() as f64;
        self.price + self.shares.signum() as f64 * (self.costs.spread + self.costs.impact) / q
    }
}

/// The account and the reward state of one episode.
#[derive(Clone, Debug, PartialEq)]
struct Account {
    equity0: f64,
    /// `1 / equity0`.
    inv_equity0: f64,
    ledger: Ledger,
    prev_equity: f64,
    peak_equity: f64,
    dsr_a: f64,
    dsr_b: f64,
    sharpe_ring: Vec<f64>,
    sharpe_sum: f64,
    sharpe_sumsq: f64,
}

/// What one step returned.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepResult {
    pub reward: f64,
    pub terminated: bool,
    pub truncated: bool,
}

pub struct ReferenceEnv {
    params: Arc<EnvParams>,
    episode: Episode,
    row: usize,
    steps: u32,
    acct: Account,
    pending: Option<PendingOrder>,
    reward_sum: f64,
    rejected: u32,
    turnover: f64,
    /// Fills of the last step (cleared at each step).
    pub last_fills: Vec<Fill>,
    /// Set when the last step ended the episode.
    pub finished: Option<EpisodeStats>,
}

impl ReferenceEnv {
    /// A fresh account of `params.initial_equity` at the episode's start row.
    pub fn new(params: Arc<EnvParams>, episode: Episode) -> Result<ReferenceEnv> {
        let equity0 = params.initial_equity;
        ReferenceEnv::with_equity(params, episode, equity0)
    }

    /// As [`ReferenceEnv::new`] with a given starting equity (a backtest carries equity
    /// from day to day).
    pub fn with_equity(
        params: Arc<EnvParams>,
        episode: Episode,
        equity0: f64,
    ) -> Result<ReferenceEnv> {
        episode.check()?;
        let ring = if params.uses_sharpe() {
            params.sharpe_window as usize
        } else {
            0
        };
        Ok(ReferenceEnv {
            row: episode.start_row as usize,
            episode,
            steps: 0,
            acct: Account {
                equity0,
                inv_equity0: 1.0 / equity0,
                ledger: Ledger {
                    cash: equity0,
                    ..Ledger::default()
                },
                prev_equity: equity0,
                peak_equity: equity0,
                dsr_a: 0.0,
                dsr_b: 0.0,
                sharpe_ring: vec![0.0; ring],
                sharpe_sum: 0.0,
                sharpe_sumsq: 0.0,
            },
            pending: None,
            reward_sum: 0.0,
            rejected: 0,
            turnover: 0.0,
            last_fills: Vec::new(),
            finished: None,
            params,
        })
    }

    pub fn day(&self) -> &Arc<DayData> {
        &self.episode.day
    }
    /// The day, to grow it as a live feed delivers its bars ([`DayData::push`]); a day
    /// shared with others is copied first.
    pub fn day_mut(&mut self) -> &mut DayData {
        Arc::make_mut(&mut self.episode.day)
    }
    pub fn row(&self) -> usize {
        self.row
    }
    /// The account: cash, position, realized P&L, costs.
    pub fn ledger(&self) -> &Ledger {
        &self.acct.ledger
    }
    pub fn pending(&self) -> Option<PendingOrder> {
        self.pending
    }
    /// Equity at the episode's start.
    pub fn equity0(&self) -> f64 {
        self.acct.equity0
    }
    /// Equity marked at the current bar's close.
    pub fn equity(&self) -> f64 {
        self.acct
            .ledger
            .equity(self.episode.day.bars[self.row].close)
    }
    /// Unrealized P&L at the current bar's close, at reference prices.
    pub fn unrealized(&self) -> f64 {
        let l = &self.acct.ledger;
        l.position as f64 * (self.episode.day.bars[self.row].close - l.avg_price)
    }

    /// The observation at the current bar: its features, then the account fields.
    pub fn observe(&self, obs: &mut [f32]) {
        let day = &self.episode.day;
        let k = day.k;
        obs[..k].copy_from_slice(day.feature_row(self.row));
        let l = &self.acct.ledger;
        let pending = self.pending.map_or(0, |o| o.remaining);
        obs[k..k + 5].copy_from_slice(&exec::account_obs(
            &self.params,
            &day.bars[self.row],
            day.bar_ms,
            day.close_ms,
            l.position,
            l.avg_price,
            l.entry_ms,
            pending,
            self.acct.inv_equity0,
        ));
    }

    /// Steps with action index `action` (an index into `env.actions`).
    pub fn step(&mut self, action: usize) -> Result<StepResult> {
        let frac = *self.params.actions.get(action).ok_or_else(|| {
            Error::Usage(format!(
                "action {action} is out of range: env.actions has {} entries",
                self.params.actions.len()
            ))
        })?;
        self.step_target(frac)
    }

    /// Steps with a target position fraction in [-1, 1] decided at the current bar's close.
    pub fn step_target(&mut self, frac: f64) -> Result<StepResult> {
        if !(frac.is_finite() && (-1.0..=1.0).contains(&frac)) {
            return Err(Error::Usage(format!(
                "target {frac} is outside [-1, 1] (a fraction of env.max_position_usd)"
            )));
        }
        if frac < 0.0 && !self.params.allow_short {
            return Err(Error::Usage(format!(
                "target {frac} is short but env.allow_short = false"
            )));
        }
        let target = self.decided_shares(frac);
        self.step_shares(target)
    }

    /// The share target a fraction `frac` decided at the current bar's close becomes
    /// (what [`ReferenceEnv::step_target`] sends: sized at the close, small changes kept).
    pub fn decided_shares(&self, frac: f64) -> i64 {
        let current = self.pending.map_or(self.acct.ledger.position, |o| o.target);
        exec::decide_target(
            &self.params,
            frac,
            self.episode.day.bars[self.row].close,
            current,
        )
    }

    /// Steps with a target position in shares decided at the current bar's close (a
    /// target of [`ReferenceEnv::decided_shares`] steps exactly as `step_target`; the live
    /// layer sends the risk manager's cut of it).
    pub fn step_shares(&mut self, target: i64) -> Result<StepResult> {
        if target < 0 && !self.params.allow_short {
            return Err(Error::Usage(format!(
                "target {target} shares is short but env.allow_short = false"
            )));
        }
        if self.finished.is_some() {
            return Err(Error::Usage(
                "step after the episode ended: reset first".into(),
            ));
        }
        self.last_fills.clear();
        let p = Arc::clone(&self.params);
        let day = Arc::clone(&self.episode.day);
        let t = self.row;
        let bar_t = day.bars[t];

        // 1. The decision at bar t's close becomes (or keeps, or cancels) an order.
        let keeps_pending = matches!(self.pending, Some(o) if o.target == target);
        if !keeps_pending {
            let position = self.acct.ledger.position;
            self.pending = (target != position).then(|| PendingOrder {
                target,
                remaining: target - position,
                arrival_ms: bar_t.ts_ms + day.bar_ms + p.latency_ms,
            });
        }

        // 2. The next existing bar: the order fills at its open if it has arrived by then.
        let f = t + 1;
        let bar_f = day.bars[f];
        let mut traded = 0.0;
        if let Some(mut order) = self.pending
            && bar_f.ts_ms >= order.arrival_ms
        {
            if bar_f.halted() || day.in_halt(order.arrival_ms) {
                self.pending = None;
                self.rejected += 1;
            } else {
                let cap = exec::participation_cap(&p, &bar_f);
                let q = order.remaining.abs().min(cap);
                if q > 0 {
                    let shares = q * order.remaining.signum();
                    let (price, half) = exec::open_basis(&p, &bar_f);
                    traded += self.fill(shares, price, half, &bar_f, false);
                    order.remaining -= shares;
                }
                let keep = order.remaining != 0 && p.carry_remainder;
                self.pending = keep.then_some(order);
            }
        }

        // 3. Borrow on a short position for the time from t to t+1, then mark at t+1.
        self.acct
            .ledger
            .borrow(&p, bar_f.close, bar_f.ts_ms - bar_t.ts_ms);
        self.row = f;
        self.steps += 1;
        let mut equity = self.acct.ledger.equity(bar_f.close);

        // 4. Episode ends: the session's last bar or the loss limit flatten at the close.
        let a = &self.acct;
        let end = if f as u32 == day.last_row {
            Some(EndReason::SessionClose)
        } else if p.loss_limit > 0.0 && equity - a.equity0 <= -p.loss_limit * a.equity0 {
            Some(EndReason::LossLimit)
        } else if p.max_episode_steps > 0 && self.steps >= p.max_episode_steps {
            Some(EndReason::MaxSteps)
        } else {
            None
        };
        if let Some(reason) = end
            && reason.terminated()
        {
            self.pending = None;
            let position = self.acct.ledger.position;
            if position != 0 {
                let (price, half) = exec::close_basis(&p, &bar_f);
                traded += self.fill(-position, price, half, &bar_f, true);
            }
            equity = self.acct.ledger.cash;
        }

        // 5. The reward terms.
        let a = &mut self.acct;
        let (pnl, dd_increase, turnover, peak) =
            exec::step_fractions(equity, a.prev_equity, a.peak_equity, a.inv_equity0, traded);
        let w = &p.weights;
        let dsr = if w.dsr != 0.0 {
            let warm = self.steps > p.dsr_warmup;
            exec::dsr_step(&mut a.dsr_a, &mut a.dsr_b, pnl, p.dsr_eta, p.dsr_eps, warm)
        } else {
            0.0
        };
        let sharpe = if w.sharpe != 0.0 {
            exec::rolling_sharpe(
                &mut a.sharpe_ring,
                self.steps - 1,
                &mut a.sharpe_sum,
                &mut a.sharpe_sumsq,
                pnl,
            )
        } else {
            0.0
        };
        a.peak_equity = peak;
        let reward = exec::reward(w, p.reward_scale, pnl, dsr, sharpe, dd_increase, turnover);
        a.prev_equity = equity;
        self.reward_sum += reward;
        self.turnover += traded;

        if let Some(reason) = end {
            self.finished = Some(self.stats(reason, equity));
        }
        Ok(StepResult {
            reward,
            terminated: end.is_some_and(EndReason::terminated),
            truncated: end == Some(EndReason::MaxSteps),
        })
    }

    /// Ends the episode at the current bar as at the session's close: the working order
    /// is cancelled and the position flattened at the bar's close (a forced exit). The
    /// live layer calls it when it learns only afterwards that the current bar was the
    /// session's last (a feed with no bar in the session's final slot); a day known whole
    /// ends in [`ReferenceEnv::step_shares`] instead.
    pub fn close_out(&mut self) -> Result<()> {
        if self.finished.is_some() {
            return Err(Error::Usage(
                "close-out after the episode ended: reset first".into(),
            ));
        }
        self.last_fills.clear();
        self.pending = None;
        let p = Arc::clone(&self.params);
        let bar = self.episode.day.bars[self.row];
        let position = self.acct.ledger.position;
        if position != 0 {
            let (price, half) = exec::close_basis(&p, &bar);
            self.turnover += self.fill(-position, price, half, &bar, true);
        }
        let equity = self.acct.ledger.cash;
        self.acct.prev_equity = equity;
        self.finished = Some(self.stats(EndReason::SessionClose, equity));
        Ok(())
    }

    fn stats(&self, reason: EndReason, equity: f64) -> EpisodeStats {
        let a = &self.acct;
        let day = &self.episode.day;
        EpisodeStats {
            env: 0,
            symbol: day.symbol.clone(),
            date: day.date,
            start_row: self.episode.start_row,
            steps: self.steps,
            reason,
            reward: self.reward_sum,
            pnl: equity - a.equity0,
            realized: a.ledger.realized,
            costs: a.ledger.costs,
            fills: a.ledger.fills,
            rejected: self.rejected,
            turnover: self.turnover,
        }
    }

    /// Books a fill of `shares` at reference `price`; returns the traded notional.
    fn fill(&mut self, shares: i64, price: f64, half: f64, bar: &BarRec, forced: bool) -> f64 {
        let (costs, realized) = self
            .acct
            .ledger
            .book(&self.params, shares, price, half, bar);
        self.last_fills.push(Fill {
            ts_ms: bar.ts_ms,
            shares,
            price,
            costs,
            realized,
            position_after: self.acct.ledger.position,
            forced,
        });
        shares.abs() as f64 * price
    }
}
