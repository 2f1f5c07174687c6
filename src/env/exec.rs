//! The execution model's and the rewards' formulas, as small pure functions.
//!
//! Both CPU engines (the scalar reference and the batch) call these, so a cost or a reward
//! term is written once and the two engines agree bit for bit whenever their control flow
//! (timing, pending orders, episode ends: written separately on purpose) agrees. The GPU
//! backends port exactly these lines.
//!
//! Accounting convention: a fill trades at a *reference* price (the bar's open, or the
//! quote's mid where the bar has a quote; the bar's close for forced exits) and pays
//! spread, impact and commission on top, as separate cash costs. Realized P&L is measured
//! at reference prices against the average entry price, so for every trajectory
//! `equity − initial = realized + unrealized − costs` exactly in real arithmetic.

use super::day::BarRec;
use super::params::{Commission, EnvParams, RewardWeights};

/// The dollar costs of one fill.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Costs {
    pub commission: f64,
    pub spread: f64,
    pub impact: f64,
}

impl Costs {
    #[inline]
    pub fn total(&self) -> f64 {
        self.commission + self.spread + self.impact
    }
}

/// Reference price and half-spread (dollars per share) of a fill in `bar`: the quote's
/// mid and half-width where the bar has a quote, else `trade_price` (the open for orders,
/// the close for forced exits) and the configured half-spread.
#[inline]
pub fn fill_basis(p: &EnvParams, bar: &BarRec, trade_price: f64) -> (f64, f64) {
    if bar.has_quote() {
        ((bar.bid + bar.ask) * 0.5, (bar.ask - bar.bid) * 0.5)
    } else {
        (trade_price, trade_price * p.half_spread_frac)
    }
}

/// Costs of trading `q > 0` shares at reference `price` with `half_spread` in `bar`.
/// Impact per share is `k · σ · sqrt(q / volume) · price` (square-root law, σ from the
/// bar record; a bar volume below one share counts as one).
#[inline]
pub fn fill_costs(p: &EnvParams, q: f64, price: f64, half_spread: f64, bar: &BarRec) -> Costs {
    let raw = match p.commission {
        Commission::PerShare(per) => q * per,
        Commission::Notional(frac) => q * price * frac,
    };
    let volume = (bar.volume as f64).max(1.0);
    Costs {
        commission: raw.max(p.commission_min),
        spread: q * half_spread,
        impact: q * price * p.impact_k * bar.sigma as f64 * (q / volume).sqrt(),
    }
}

/// Most shares one order may take from `bar` under the participation cap.
#[inline]
pub fn participation_cap(p: &EnvParams, bar: &BarRec) -> i64 {
    (p.participation * bar.volume as f64).floor() as i64
}

/// The position the decision at a bar's close aims for: `round(frac · floor(max_usd /
/// price))` whole shares, except that a non-zero target within `min_order_frac` of the
/// maximum position of `current` (the pending order's target, else the position) stays
/// `current`: a held target neither trades a few shares of drift each time the price
/// moves nor keeps replacing (and so delaying) its working order. 0 always flattens.
#[inline]
pub fn decide_target(p: &EnvParams, frac: f64, price: f64, current: i64) -> i64 {
    let max_shares = (p.max_position_usd / price).floor();
    let target = (frac * max_shares).round() as i64;
    let diff = (target - current).unsigned_abs() as f64;
    if target != 0 && diff < p.min_order_frac * max_shares {
        current
    } else {
        target
    }
}

/// Position after a signed fill of `q` shares at `price`: `(shares, avg_price, realized)`.
/// Adding to a position averages the entry price; reducing realizes P&L against it; a
/// flip realizes the old side and opens the rest at `price`.
#[inline]
pub fn apply_fill(pos: i64, avg: f64, q: i64, price: f64) -> (i64, f64, f64) {
    let new_pos = pos + q;
    if pos == 0 || (pos > 0) == (q > 0) {
        let (a, b) = (pos.unsigned_abs() as f64, q.unsigned_abs() as f64);
        return (new_pos, (a * avg + b * price) / (a + b), 0.0);
    }
    let closed = q.unsigned_abs().min(pos.unsigned_abs()) as f64;
    let side = if pos > 0 { 1.0 } else { -1.0 };
    let realized = closed * (price - avg) * side;
    let new_avg = if new_pos == 0 {
        0.0
    } else if (new_pos > 0) == (pos > 0) {
        avg
    } else {
        price
    };
    (new_pos, new_avg, realized)
}

/// The trading account of one episode: what fills change.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Ledger {
    pub cash: f64,
    pub position: i64,
    pub avg_price: f64,
    pub realized: f64,
    /// Commission, spread, impact and borrow paid.
    pub costs: f64,
    /// When the current position was opened (ms since midnight); 0 when flat.
    pub entry_ms: u32,
    pub fills: u32,
}

impl Ledger {
    /// Books a fill of `shares` (signed) in `bar` at reference `price` with `half_spread`:
    /// returns its costs and the P&L it realized.
    #[inline]
    pub fn book(&mut self, p: &EnvParams, shares: i64, price: f64, half_spread: f64, bar: &BarRec) -> (Costs, f64) {
        let q = shares.unsigned_abs() as f64;
        let costs = fill_costs(p, q, price, half_spread, bar);
        let (pos, avg, realized) = apply_fill(self.position, self.avg_price, shares, price);
        self.cash = self.cash - shares as f64 * price - costs.total();
        self.costs += costs.total();
        self.realized += realized;
        if pos == 0 {
            self.entry_ms = 0;
        } else if self.position == 0 || (pos > 0) != (self.position > 0) {
            self.entry_ms = bar.ts_ms;
        }
        self.position = pos;
        self.avg_price = avg;
        self.fills += 1;
        (costs, realized)
    }

    /// Charges borrow on a short position held for `dt_ms`, valued at `price`.
    #[inline]
    pub fn borrow(&mut self, p: &EnvParams, price: f64, dt_ms: u32) {
        if self.position < 0 {
            let cost = (-self.position) as f64 * price * p.borrow_per_ms * dt_ms as f64;
            self.cash -= cost;
            self.costs += cost;
        }
    }

    /// Equity marked at `price`.
    #[inline]
    pub fn equity(&self, price: f64) -> f64 {
        self.cash + self.position as f64 * price
    }
}

/// Differential Sharpe ratio of return `r` (Moody & Saffell 2001): with `ΔA = r − A`,
/// `ΔB = r² − B`, `D = (B·ΔA − ½·A·ΔB) / (B − A²)^{3/2}` from the previous moments, then
/// `A += η·ΔA`, `B += η·ΔB`. `D` is 0 while `warm` is false or `B − A² <= eps`; the
/// moments update either way.
#[inline]
pub fn dsr_step(a: &mut f64, b: &mut f64, r: f64, eta: f64, eps: f64, warm: bool) -> f64 {
    let (da, db) = (r - *a, r * r - *b);
    let var = *b - *a * *a;
    let d = if warm && var > eps {
        (*b * da - 0.5 * *a * db) / (var * var.sqrt())
    } else {
        0.0
    };
    *a += eta * da;
    *b += eta * db;
    d
}

/// Rolling Sharpe over the last `ring.len()` returns: pushes `r` (ring slot `count %
/// len`), keeps running sums, and returns `mean / std (ddof 1)` once the window is full
/// and its variance is positive, else 0. `count` is the number of returns pushed before.
#[inline]
pub fn rolling_sharpe(ring: &mut [f64], count: u32, sum: &mut f64, sumsq: &mut f64, r: f64) -> f64 {
    let w = ring.len();
    let slot = count as usize % w;
    if count as usize >= w {
        let old = ring[slot];
        *sum -= old;
        *sumsq -= old * old;
    }
    ring[slot] = r;
    *sum += r;
    *sumsq += r * r;
    if (count as usize) + 1 < w {
        return 0.0;
    }
    let n = w as f64;
    let var = (*sumsq - *sum * *sum / n) / (n - 1.0);
    if var > 0.0 { (*sum / n) / var.sqrt() } else { 0.0 }
}

/// The reward: one weighted sum of terms for every preset.
#[inline]
pub fn reward(
    w: &RewardWeights,
    scale: f64,
    pnl: f64,
    dsr: f64,
    sharpe: f64,
    drawdown_increase: f64,
    turnover: f64,
) -> f64 {
    scale
        * (w.pnl * pnl + w.dsr * dsr + w.sharpe * sharpe
            - w.drawdown * drawdown_increase
            - w.turnover * turnover)
}

/// Milliseconds in a full regular session, the scale of the time fields.
pub const SESSION_MS: f64 = 390.0 * 60_000.0;

/// The account part of an observation (see [`super::params::ACCOUNT_FIELDS`]), at the
/// close of `bar`.
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn account_obs(
    p: &EnvParams,
    bar: &BarRec,
    bar_ms: u32,
    close_ms: u32,
    pos: i64,
    avg: f64,
    entry_ms: u32,
    pending: i64,
    equity0: f64,
) -> [f32; 5] {
    let now = bar.ts_ms + bar_ms;
    let held = if pos != 0 { now.saturating_sub(entry_ms) } else { 0 };
    [
        (pos as f64 * bar.close / p.max_position_usd) as f32,
        (pos as f64 * (bar.close - avg) / equity0) as f32,
        (held as f64 / SESSION_MS) as f32,
        (pending as f64 * bar.close / p.max_position_usd) as f32,
        ((close_ms as f64 - now as f64) / SESSION_MS) as f32,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_fill_cases() {
        // Open long 100 @ 10, add 100 @ 12 → avg 11.
        assert_eq!(apply_fill(0, 0.0, 100, 10.0), (100, 10.0, 0.0));
        assert_eq!(apply_fill(100, 10.0, 100, 12.0), (200, 11.0, 0.0));
        // Sell 50 @ 13 from 200 @ 11: realize 50·2 = 100, avg unchanged.
        assert_eq!(apply_fill(200, 11.0, -50, 13.0), (150, 11.0, 100.0));
        // Flip: sell 250 @ 9 from 150 @ 11: realize 150·(−2) = −300, short 100 @ 9.
        assert_eq!(apply_fill(150, 11.0, -250, 9.0), (-100, 9.0, -300.0));
        // Cover the short at 8: realize 100·1 = 100, flat.
        assert_eq!(apply_fill(-100, 9.0, 100, 8.0), (0, 0.0, 100.0));
    }

    #[test]
    fn rolling_sharpe_matches_direct_window() {
        let rs = [0.01, -0.02, 0.03, 0.005, -0.01, 0.02, 0.0];
        let w = 3;
        let mut ring = vec![0.0; w];
        let (mut s, mut ss) = (0.0, 0.0);
        for (i, &r) in rs.iter().enumerate() {
            let got = rolling_sharpe(&mut ring, i as u32, &mut s, &mut ss, r);
            if i + 1 < w {
                assert_eq!(got, 0.0);
                continue;
            }
            let win = &rs[i + 1 - w..=i];
            let mean = win.iter().sum::<f64>() / w as f64;
            let var = win.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (w as f64 - 1.0);
            assert!((got - mean / var.sqrt()).abs() < 1e-9, "{i}: {got}");
        }
    }
}
