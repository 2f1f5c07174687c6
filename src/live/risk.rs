//! The risk manager between the policy and the execution layer (`[live.risk]`).
//!
//! The policy proposes a target position per symbol; [`RiskManager::check`] returns the
//! target the rules allow, with the reason of every change. The rules, in order:
//!
//! 1. **Trading state**: `Halted` allows only flat (every target becomes 0); `Reducing`
//!    allows only moves toward flat (a larger or opposite position is cut back to the
//!    current one, or to 0 across a sign change).
//! 2. **Flatten before the close**: within `flatten_before_close_secs` of the session's
//!    close every target is 0.
//! 3. **Order rate**: with `max_orders_per_minute` orders in the last 60 s, an order
//!    that adds risk is refused (cut back toward flat); flattening and reducing always
//!    pass, so a halt or the close can clear the book.
//! 4. **Consecutive losses**: after `max_consecutive_losses` losing round trips in a row,
//!    new risk is refused for `loss_pause_secs` (positions may still be reduced).
//! 5. **Max trades per day**: once `max_trades_per_day` orders that add risk were
//!    allowed today, only reducing orders pass.
//! 6. **Open positions**: a position may not be opened from flat while
//!    `max_open_positions` other symbols hold one or are about to (a target allowed and
//!    not yet filled).
//! 7. **Max position per symbol**: `|target| · price ≤ max_position_usd` and
//!    `≤ max_position_frac · equity`.
//! 8. **Gross and net exposure** across symbols (each other symbol at its intended
//!    position: the target allowed and not yet filled, else its position, at its last
//!    price): `Σ|value| ≤ max_gross_usd` and `≤ max_gross_frac · equity`,
//!    `|Σ value| ≤ max_net_usd`.
//! 9. **Short share**: after an order that adds to a short position, the short positions'
//!    value is at most `max_short_share` of the gross exposure (0: no shorts at all).
//! 10. **Per-trade risk**: the added shares times price times `stop_frac` (the adverse move
//!     a trade is sized for) at most `max_trade_risk_frac` of equity.
//!
//! Rules 6–10 only cut the part of an order that adds risk (shares are rounded toward
//! flat); reducing a position is never blocked. Equity is the last marked
//! ([`RiskManager::mark`]). A price that is not a positive number
//! allows no new risk. Besides orders, the day's
//! **drawdown** from its high-water mark of equity ([`RiskManager::mark`]) beyond
//! `max_daily_drawdown` halts trading for the rest of the day, and the **kill switch**
//! ([`RiskManager::kill`]) halts until [`RiskManager::resume`]; both make every target 0
//! (the loop flattens). Each state change is returned so the loop journals it.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// `[live.risk]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RiskConfig {
    pub max_position_usd: f64,
    pub max_position_frac: f64,
    pub max_open_positions: u32,
    pub max_gross_usd: f64,
    pub max_gross_frac: f64,
    pub max_short_share: f64,
    pub max_net_usd: f64,
    pub stop_frac: f64,
    pub max_trade_risk_frac: f64,
    pub max_daily_drawdown: f64,
    pub max_consecutive_losses: u32,
    pub loss_pause_secs: u32,
    pub max_trades_per_day: u32,
    pub max_orders_per_minute: u32,
    pub flatten_before_close_secs: u32,
}

impl Default for RiskConfig {
    fn default() -> Self {
        RiskConfig {
            max_position_usd: 100_000.0,
            max_position_frac: 1.0,
            max_open_positions: 20,
            max_gross_usd: 1_000_000.0,
            max_gross_frac: 4.0,
            max_short_share: 1.0,
            max_net_usd: 500_000.0,
            stop_frac: 0.02,
            max_trade_risk_frac: 0.02,
            max_daily_drawdown: 0.03,
            max_consecutive_losses: 5,
            loss_pause_secs: 900,
            max_trades_per_day: 200,
            max_orders_per_minute: 60,
            flatten_before_close_secs: 60,
        }
    }
}

impl RiskConfig {
    /// Checks values that types alone cannot; errors name the key.
    pub fn validate(&self) -> Result<(), String> {
        for (key, v) in [
            ("max_position_usd", self.max_position_usd),
            ("max_position_frac", self.max_position_frac),
            ("max_gross_usd", self.max_gross_usd),
            ("max_gross_frac", self.max_gross_frac),
            ("max_net_usd", self.max_net_usd),
            ("stop_frac", self.stop_frac),
            ("max_trade_risk_frac", self.max_trade_risk_frac),
            ("max_daily_drawdown", self.max_daily_drawdown),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("live.risk.{key} = {v}: must be a positive number"));
            }
        }
        if self.max_daily_drawdown >= 1.0 || self.stop_frac >= 1.0 {
            return Err(format!(
                "live.risk.max_daily_drawdown = {} and live.risk.stop_frac = {} must be below 1",
                self.max_daily_drawdown, self.stop_frac
            ));
        }
        if !(0.0..=1.0).contains(&self.max_short_share) {
            return Err(format!(
                "live.risk.max_short_share = {}: a share of gross exposure, from 0 (no shorts) to 1 (no limit)",
                self.max_short_share
            ));
        }
        if self.max_consecutive_losses == 0
            || self.max_trades_per_day == 0
            || self.max_orders_per_minute == 0
            || self.max_open_positions == 0
        {
            return Err("live.risk.max_consecutive_losses, max_trades_per_day, max_orders_per_minute and max_open_positions must be at least 1".into());
        }
        Ok(())
    }
}

/// What the risk manager lets through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TradingState {
    /// Every rule applies; new risk may be taken.
    Active,
    /// Only orders that bring positions toward flat.
    Reducing,
    /// Nothing but flattening.
    Halted,
}

/// A state change, to be journaled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StateChange {
    pub from: TradingState,
    pub to: TradingState,
    pub reason: String,
}

/// A proposed target for one symbol.
#[derive(Clone, Debug, PartialEq)]
pub struct Proposal<'a> {
    pub symbol: &'a str,
    /// Time of the decision, ns since the epoch.
    pub ts_ns: i64,
    /// Position now (shares, signed) and the target the policy wants.
    pub current: i64,
    pub target: i64,
    /// Reference price of the order, dollars.
    pub price: f64,
    /// Seconds until the session's close.
    pub secs_to_close: f64,
}

/// The rules' answer: the target allowed and why it differs from the proposal (empty when
/// it does not).
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub target: i64,
    pub reasons: Vec<String>,
}

/// The risk manager of one account.
#[derive(Clone, Debug)]
pub struct RiskManager {
    cfg: RiskConfig,
    state: TradingState,
    /// Halted by the kill switch (sticky until [`RiskManager::resume`]), not by the day's
    /// drawdown (cleared at the next day).
    killed: bool,
    equity: f64,
    high_water: f64,
    /// Shares and last price of every symbol held or traded.
    positions: BTreeMap<String, (i64, f64)>,
    /// Targets allowed but not yet reached by fills (shares, price at the decision):
    /// exposure counts them, so symbols decided on the same bar share the limits.
    pending: BTreeMap<String, (i64, f64)>,
    /// An operator asked for reduce-only (kept across a drawdown halt and new days).
    reduce_only_requested: bool,
    risk_orders_today: u32,
    losses_in_a_row: u32,
    paused_until_ns: i64,
    recent_orders_ns: VecDeque<i64>,
}

const NS: i64 = 1_000_000_000;

impl RiskManager {
    pub fn new(cfg: RiskConfig, equity: f64) -> RiskManager {
        RiskManager {
            cfg,
            state: TradingState::Active,
            killed: false,
            equity,
            high_water: equity,
            positions: BTreeMap::new(),
            pending: BTreeMap::new(),
            reduce_only_requested: false,
            risk_orders_today: 0,
            losses_in_a_row: 0,
            paused_until_ns: i64::MIN,
            recent_orders_ns: VecDeque::new(),
        }
    }

    pub fn state(&self) -> TradingState {
        self.state
    }

    fn set_state(&mut self, to: TradingState, reason: String) -> Option<StateChange> {
        (self.state != to).then(|| {
            let change = StateChange {
                from: self.state,
                to,
                reason,
            };
            self.state = to;
            change
        })
    }

    /// A new trading day at `equity`: daily counters and the high-water mark reset; a
    /// drawdown halt is lifted, a kill is not.
    pub fn begin_day(&mut self, equity: f64) -> Option<StateChange> {
        self.equity = equity;
        self.high_water = equity;
        self.risk_orders_today = 0;
        self.recent_orders_ns.clear();
        if self.state == TradingState::Halted && !self.killed {
            let to = if self.reduce_only_requested {
                TradingState::Reducing
            } else {
                TradingState::Active
            };
            return self.set_state(to, "new trading day".into());
        }
        None
    }

    /// Marks the account at `equity`; halts when the day's drawdown from its high-water
    /// mark reaches `max_daily_drawdown`.
    pub fn mark(&mut self, equity: f64) -> Option<StateChange> {
        self.equity = equity;
        self.high_water = self.high_water.max(equity);
        let drawdown = 1.0 - equity / self.high_water;
        if drawdown >= self.cfg.max_daily_drawdown && self.state != TradingState::Halted {
            return self.set_state(
                TradingState::Halted,
                format!(
                    "daily drawdown {:.2} % from the high-water mark {:.2} reached the limit of {:.2} %",
                    100.0 * drawdown,
                    self.high_water,
                    100.0 * self.cfg.max_daily_drawdown
                ),
            );
        }
        None
    }

    /// The kill switch: flatten everything and halt until [`RiskManager::resume`].
    pub fn kill(&mut self, reason: &str) -> Option<StateChange> {
        self.killed = true;
        self.set_state(TradingState::Halted, format!("kill switch: {reason}"))
    }

    /// Only position-reducing orders from now on (an operator's command).
    pub fn reduce_only(&mut self, reason: &str) -> Option<StateChange> {
        self.reduce_only_requested = true;
        if self.state == TradingState::Halted {
            return None;
        }
        self.set_state(TradingState::Reducing, reason.to_string())
    }

    /// Back to active trading (after a kill or reduce-only).
    pub fn resume(&mut self, reason: &str) -> Option<StateChange> {
        self.killed = false;
        self.reduce_only_requested = false;
        self.set_state(TradingState::Active, reason.to_string())
    }

    /// A fill: the symbol's position and last price.
    pub fn on_fill(&mut self, symbol: &str, position_after: i64, price: f64) {
        self.positions
            .insert(symbol.to_string(), (position_after, price));
        if self
            .pending
            .get(symbol)
            .is_some_and(|&(t, _)| t == position_after)
        {
            self.pending.remove(symbol);
        }
    }

    /// The broker would not take the order for `symbol`'s last allowed target: it no
    /// longer counts in the exposure.
    pub fn order_failed(&mut self, symbol: &str) {
        self.pending.remove(symbol);
    }

    /// A closed round trip's net P&L (consecutive-loss pause).
    pub fn on_round_trip(&mut self, net_pnl: f64, ts_ns: i64) {
        if net_pnl < 0.0 {
            self.losses_in_a_row += 1;
            if self.losses_in_a_row >= self.cfg.max_consecutive_losses {
                self.paused_until_ns = ts_ns + self.cfg.loss_pause_secs as i64 * NS;
                self.losses_in_a_row = 0;
            }
        } else {
            self.losses_in_a_row = 0;
        }
    }

    /// The target the rules allow for `p` (see the module docs). An allowed order that
    /// changes the position counts toward the order rate (and, when it adds risk, toward
    /// the day's trades).
    pub fn check(&mut self, p: &Proposal) -> Verdict {
        let mut reasons = Vec::new();
        let mut target = p.target;
        let toward_flat = |cur: i64, t: i64| {
            if t.signum() * cur.signum() < 0 {
                0
            } else if t.abs() > cur.abs() {
                cur
            } else {
                t
            }
        };
        let mut cut = |t: &mut i64, to: i64, why: String| {
            if *t != to {
                *t = to;
                reasons.push(why);
            }
        };
        match self.state {
            TradingState::Halted => cut(&mut target, 0, "halted: flatten only".into()),
            TradingState::Reducing => {
                let t = toward_flat(p.current, target);
                cut(&mut target, t, "reduce-only: no new risk".into());
            }
            TradingState::Active => {}
        }
        if p.secs_to_close <= self.cfg.flatten_before_close_secs as f64 {
            cut(
                &mut target,
                0,
                format!(
                    "{:.0} s to the close: flatten (flatten_before_close_secs = {})",
                    p.secs_to_close, self.cfg.flatten_before_close_secs
                ),
            );
        }
        let window_start = p.ts_ns - 60 * NS;
        while self
            .recent_orders_ns
            .front()
            .is_some_and(|&t| t <= window_start)
        {
            self.recent_orders_ns.pop_front();
        }
        let adds_risk = |t: i64| t.abs() > p.current.abs() || t.signum() * p.current.signum() < 0;
        if adds_risk(target) && !(p.price.is_finite() && p.price > 0.0) {
            let t = toward_flat(p.current, target);
            cut(
                &mut target,
                t,
                format!("price {}: no new risk on a bad price", p.price),
            );
        }
        if adds_risk(target)
            && self.recent_orders_ns.len() >= self.cfg.max_orders_per_minute as usize
        {
            let t = toward_flat(p.current, target);
            cut(
                &mut target,
                t,
                format!(
                    "order rate: {} orders in the last minute (max_orders_per_minute = {})",
                    self.recent_orders_ns.len(),
                    self.cfg.max_orders_per_minute
                ),
            );
        }
        if adds_risk(target) && p.ts_ns < self.paused_until_ns {
            let t = toward_flat(p.current, target);
            cut(
                &mut target,
                t,
                format!(
                    "paused after {} losing trades in a row for {} s",
                    self.cfg.max_consecutive_losses, self.cfg.loss_pause_secs
                ),
            );
        }
        if adds_risk(target) && self.risk_orders_today >= self.cfg.max_trades_per_day {
            let t = toward_flat(p.current, target);
            cut(
                &mut target,
                t,
                format!(
                    "max trades per day ({}) reached: reduce only",
                    self.cfg.max_trades_per_day
                ),
            );
        }
        if p.current == 0 && target != 0 {
            let open = self
                .intended()
                .filter(|(s, shares, _)| *s != p.symbol && *shares != 0)
                .count();
            if open >= self.cfg.max_open_positions as usize {
                cut(
                    &mut target,
                    0,
                    format!(
                        "{open} positions open or about to open (max_open_positions = {}): no new position",
                        self.cfg.max_open_positions
                    ),
                );
            }
        }
        if adds_risk(target) {
            target = self.cap_new_risk(p, target, &mut reasons);
        }
        if target != p.current {
            self.recent_orders_ns.push_back(p.ts_ns);
            if adds_risk(target) {
                self.risk_orders_today += 1;
            }
            self.pending.insert(p.symbol.to_string(), (target, p.price));
        } else {
            self.pending.remove(p.symbol);
        }
        Verdict { target, reasons }
    }

    /// Every symbol held or decided with its intended position (shares) and price: the
    /// target allowed and not yet filled, else the position.
    fn intended(&self) -> impl Iterator<Item = (&str, i64, f64)> {
        let symbols: std::collections::BTreeSet<&String> =
            self.positions.keys().chain(self.pending.keys()).collect();
        symbols.into_iter().map(|s| {
            let (shares, last) = self
                .pending
                .get(s)
                .or_else(|| self.positions.get(s))
                .copied()
                .expect("listed");
            (s.as_str(), shares, last)
        })
    }

    /// Rules 7–10 on a target that adds risk: the largest position in the target's
    /// direction (shares rounded toward flat) that every limit allows, never below the
    /// part of the current position kept.
    fn cap_new_risk(&self, p: &Proposal, target: i64, reasons: &mut Vec<String>) -> i64 {
        let sign = target.signum();
        let price = p.price;
        // Shares held in the target's direction before the order (0 across a sign flip).
        let kept = if p.current.signum() == sign {
            p.current.abs()
        } else {
            0
        };
        let mut allowed = target.abs();
        let mut limit = |shares: f64, why: String| {
            let s = shares.floor().max(kept as f64) as i64;
            if s < allowed {
                allowed = s;
                reasons.push(why);
            }
        };
        limit(
            self.cfg.max_position_usd / price,
            format!(
                "max position {:.0} $ at {price:.2}",
                self.cfg.max_position_usd
            ),
        );
        let equity = self.equity.max(0.0);
        limit(
            self.cfg.max_position_frac * equity / price,
            format!(
                "max position {} of equity ({:.0} $) at {price:.2}",
                self.cfg.max_position_frac,
                self.cfg.max_position_frac * equity
            ),
        );
        // Other symbols at their intended positions.
        let (mut gross, mut net, mut short) = (0.0, 0.0, 0.0);
        for (_, shares, last) in self.intended().filter(|(s, _, _)| *s != p.symbol) {
            let value = shares as f64 * last;
            gross += value.abs();
            net += value;
            short += (-value).max(0.0);
        }
        limit(
            (self.cfg.max_gross_usd - gross) / price,
            format!(
                "max gross exposure {:.0} $ ({gross:.0} $ in other symbols)",
                self.cfg.max_gross_usd
            ),
        );
        limit(
            (self.cfg.max_gross_frac * equity - gross) / price,
            format!(
                "max gross exposure {} of equity ({:.0} $; {gross:.0} $ in other symbols)",
                self.cfg.max_gross_frac,
                self.cfg.max_gross_frac * equity
            ),
        );
        // (short + x·p) / (gross + x·p) ≤ s  ⇔  x·p·(1 − s) ≤ s·gross − short.
        let s = self.cfg.max_short_share;
        if sign < 0 && s < 1.0 {
            limit(
                (s * gross - short).max(0.0) / (price * (1.0 - s)),
                format!(
                    "max short share {s} of gross exposure ({short:.0} $ short of {gross:.0} $ in other symbols)"
                ),
            );
        }
        // |net + sign · shares · price| ≤ max_net.
        let room = self.cfg.max_net_usd - sign as f64 * net;
        limit(
            room / price,
            format!(
                "max net exposure {:.0} $ ({net:.0} $ in other symbols)",
                self.cfg.max_net_usd
            ),
        );
        let risk_budget = self.cfg.max_trade_risk_frac * self.equity;
        limit(
            kept as f64 + risk_budget / (price * self.cfg.stop_frac),
            format!(
                "per-trade risk: {:.0} $ ({} of equity) at a {} stop",
                risk_budget, self.cfg.max_trade_risk_frac, self.cfg.stop_frac
            ),
        );
        sign * allowed
    }
}
