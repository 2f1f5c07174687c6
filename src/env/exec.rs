//! The execution model's and the rewards' formulas, as small pure functions.
//!
//! Both CPU engines (the scalar reference and the batch) call these, so a cost or a reward
//! term is written once and the two engines agree bit for bit whenever their control flow
//! (timing, pending orders, episode ends: written separately on purpose) agrees. The GPU
//! backends port exactly these lines.
//!
//! Accounting convention: a fill trades at a *reference* price (the bar's open, or the mid
//! of the quote in force at the open; the bar's close for forced exits) and pays
//! spread, impact and commission on top, as separate cash costs. Realized P&L is measured
//! at reference prices against the average entry price, so for every trajectory
//! `equity − initial = realized + unrealized − costs` exactly in real arithmetic.
//!
//! Branch-free by design: with random (or simply undecided) actions, whether an order
//! goes out, which side a fill is on or whether it adds to the position are coin flips
//! that no branch predictor learns. The functions below compute every case and *select*
//! the result, so the batch engine steps a block of environments as straight-line loops
//! that the compiler vectorizes (a select becomes a blend of lanes; see
//! [`super::cpu`]); the selected values are the ones the branching formulas compute, bit
//! for bit. (In scalar code, x86-64 has no conditional move for `f64`, and LLVM lowers
//! an `f64` select to a branch: the scalar reference engine pays for that, the batch
//! engine does not.)

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

/// Reference price and half-spread (dollars per share) of an order filling at `bar`'s
/// open: the mid and half-width of the quote in force at the open where there is one,
/// else the open and the configured half-spread.
#[inline]
pub fn open_basis(p: &EnvParams, bar: &BarRec) -> (f64, f64) {
    let quoted = bar.has_quote();
    let mid = (bar.bid + bar.ask) * 0.5;
    let half = (bar.ask - bar.bid) * 0.5;
    (
        select(quoted, mid, bar.open),
        select(quoted, half, bar.open * p.half_spread_frac),
    )
}

/// `if c { a } else { b }` for computed values, both already evaluated: in the batch
/// engine's vectorized loops a blend of lanes, elsewhere a conditional move where the
/// target has one for the type (see the module docs).
#[inline(always)]
pub fn select<T>(c: bool, a: T, b: T) -> T {
    std::hint::select_unpredictable(c, a, b)
}

/// Reference price and half-spread of a forced exit at `bar`'s close: the close, with the
/// half-width of the quote in force at the bar's open where there is one, else the
/// configured half-spread.
#[inline]
pub fn close_basis(p: &EnvParams, bar: &BarRec) -> (f64, f64) {
    if bar.has_quote() {
        (bar.close, (bar.ask - bar.bid) * 0.5)
    } else {
        (bar.close, bar.close * p.half_spread_frac)
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
    // Non-negative: truncation is floor (and inlines without SSE4.1's roundsd).
    (p.participation * bar.volume as f64) as i64
}

/// The position the decision at a bar's close aims for: `round(frac · floor(max_usd /
/// price))` whole shares, except that a non-zero target within `min_order_frac` of the
/// maximum position of `current` (the pending order's target, else the position) stays
/// `current`: a held target neither trades a few shares of drift each time the price
/// moves nor keeps replacing (and so delaying) its working order. 0 always flattens.
#[inline]
pub fn decide_target(p: &EnvParams, frac: f64, price: f64, current: i64) -> i64 {
    // Truncation is floor for the non-negative share count.
    let max_shares = ((p.max_position_usd / price) as i64) as f64;
    let target = round_half_away(frac * max_shares);
    let diff = (target - current).abs() as f64;
    let hold = (target != 0) & (diff < p.min_order_frac * max_shares);
    select(hold, current, target)
}

/// Rounds half away from zero through truncation (`f64::round` calls libm on baseline
/// x86-64; this is a few instructions on every backend). Equal to `f64::round` for every
/// `|x| < 2^52` except the one double below 0.5 (0.49999999999999994 → 1).
#[inline]
pub fn round_half_away(x: f64) -> i64 {
    let r = (x.abs() + 0.5) as i64;
    // Negated when x < 0, branch-free: (r ^ -1) + 1 = -r.
    let neg = -((x < 0.0) as i64);
    (r ^ neg) - neg
}

/// Position after a signed fill of `q` shares at `price`: `(shares, avg_price, realized)`.
/// Adding to a position averages the entry price; reducing realizes P&L against it; a
/// flip realizes the old side and opens the rest at `price`. `q` must not be 0 (the average of an empty fill is not defined).
#[inline]
pub fn apply_fill(pos: i64, avg: f64, q: i64, price: f64) -> (i64, f64, f64) {
    let new_pos = pos + q;
    // Share counts convert from i64 (one instruction; from u64, baseline x86-64 takes six).
    let (a, b) = (pos.abs() as f64, q.abs() as f64);
    // Both cases are computed and one is selected (see the module docs).
    let adding = (pos == 0) | ((pos > 0) == (q > 0));
    let added_avg = (a * avg + b * price) / (a + b);
    let closed = a.min(b);
    let side = select(pos > 0, 1.0, -1.0);
    let realized = closed * (price - avg) * side;
    let reduced_avg = select(
        new_pos == 0,
        0.0,
        select((new_pos > 0) == (pos > 0), avg, price),
    );
    (
        new_pos,
        select(adding, added_avg, reduced_avg),
        select(adding, 0.0, realized),
    )
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
    pub fn book(
        &mut self,
        p: &EnvParams,
        shares: i64,
        price: f64,
        half_spread: f64,
        bar: &BarRec,
    ) -> (Costs, f64) {
        let q = shares.abs() as f64;
        let costs = fill_costs(p, q, price, half_spread, bar);
        let realized = self.book_costed(shares, price, costs, bar.ts_ms);
        (costs, realized)
    }

    /// [`Ledger::book`] with the costs already computed (by [`fill_costs`]): returns the
    /// realized P&L.
    #[inline]
    pub fn book_costed(&mut self, shares: i64, price: f64, costs: Costs, ts_ms: u32) -> f64 {
        self.book_total_if(true, shares, price, costs.total(), ts_ms)
    }

    /// [`Ledger::book_costed`] when `filled` (with the fill's `total` cost), else nothing
    /// (and 0 realized), without a branch on `filled`: every field is computed and the
    /// old or the new value selected.
    #[inline]
    pub fn book_total_if(
        &mut self,
        filled: bool,
        shares: i64,
        price: f64,
        total: f64,
        ts_ms: u32,
    ) -> f64 {
        // apply_fill of 0 shares is not defined; its result is dropped then.
        let q = select(filled, shares, 1);
        let (pos, avg, realized) = apply_fill(self.position, self.avg_price, q, price);
        let entry = select(
            pos == 0,
            0,
            select(
                (self.position == 0) | ((pos > 0) != (self.position > 0)),
                ts_ms,
                self.entry_ms,
            ),
        );
        self.cash = select(filled, self.cash - shares as f64 * price - total, self.cash);
        self.costs = select(filled, self.costs + total, self.costs);
        self.realized = select(filled, self.realized + realized, self.realized);
        self.entry_ms = select(filled, entry, self.entry_ms);
        self.position = select(filled, pos, self.position);
        self.avg_price = select(filled, avg, self.avg_price);
        self.fills += filled as u32;
        select(filled, realized, 0.0)
    }

    /// Charges borrow on a short position held for `dt_ms`, valued at `price`.
    #[inline]
    pub fn borrow(&mut self, p: &EnvParams, price: f64, dt_ms: u32) {
        // Branch-free: a long or flat account pays 0.0, which leaves both sums' bits as
        // they are (neither is ever -0.0).
        let cost = (-self.position) as f64 * price * p.borrow_per_ms * dt_ms as f64;
        let cost = select(self.position < 0, cost, 0.0);
        self.cash -= cost;
        self.costs += cost;
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
    if var > 0.0 {
        (*sum / n) / var.sqrt()
    } else {
        0.0
    }
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
const INV_SESSION_MS: f64 = 1.0 / SESSION_MS;

/// The step's equity change, new drawdown (both against the previous step) and traded
/// notional as fractions of the starting equity (`inv_e0` = 1 / starting equity), and the
/// new equity peak: `(pnl, drawdown_increase, turnover, peak)`.
#[inline]
pub fn step_fractions(
    equity: f64,
    prev: f64,
    peak: f64,
    inv_e0: f64,
    traded: f64,
) -> (f64, f64, f64, f64) {
    let pnl = (equity - prev) * inv_e0;
    let dd_before = (peak - prev) * inv_e0;
    let peak = peak.max(equity);
    let dd_increase = ((peak - equity) * inv_e0 - dd_before).max(0.0);
    (pnl, dd_increase, traded * inv_e0, peak)
}

/// The account part of an observation (see [`super::params::ACCOUNT_FIELDS`]), at the
/// close of `bar` (`inv_e0` = 1 / starting equity). Fractions are products with
/// reciprocals: divisions would dominate the step's arithmetic.
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
    inv_e0: f64,
) -> [f32; 5] {
    let now = bar.ts_ms + bar_ms;
    let held = if pos != 0 {
        now.saturating_sub(entry_ms)
    } else {
        0
    };
    [
        (pos as f64 * bar.close * p.inv_max_position_usd) as f32,
        (pos as f64 * (bar.close - avg) * inv_e0) as f32,
        (held as f64 * INV_SESSION_MS) as f32,
        (pending as f64 * bar.close * p.inv_max_position_usd) as f32,
        ((close_ms as f64 - now as f64) * INV_SESSION_MS) as f32,
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
    fn select_returns_the_exact_bits_of_the_chosen_value() {
        let pairs = [
            (1.5, -2.25),
            (-0.0, 0.0),
            (f64::NAN, f64::INFINITY),
            (5e-324, -1e308),
        ];
        for (a, b) in pairs {
            assert_eq!(select(true, a, b).to_bits(), a.to_bits());
            assert_eq!(select(false, a, b).to_bits(), b.to_bits());
            assert_eq!(select(false, b, a).to_bits(), a.to_bits());
        }
        assert_eq!(select(true, -3i64, 4), -3);
        assert_eq!(select(false, -3i64, 4), 4);
        assert_eq!(select(true, 7u32, 9), 7);
        assert_eq!(select(false, 1u8, 2), 2);
    }

    #[test]
    fn round_half_away_equals_f64_round() {
        let xs = [
            -2.5,
            -1.5,
            -0.5,
            -0.49,
            -0.0,
            0.0,
            0.49,
            0.5,
            1.5,
            2.5,
            7.3,
            -7.7,
            1e15 + 0.5,
            -(1e15 + 0.5),
            123_456.5,
            -123_456.5,
        ];
        for x in xs {
            assert_eq!(round_half_away(x), x.round() as i64, "{x}");
        }
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
