//! Performance metrics of a trading account, for evaluation and walk-forward reports.
//!
//! Two families: [`ReturnMetrics`] summarises a series of periodic (normally daily) returns,
//! which [`daily_returns`] derives from closing equity; [`TradeStats`] summarises closed
//! [`RoundTrip`]s. Return metrics follow empyrical's definitions (the reference Python library
//! behind pyfolio) down to its edge cases, so a number here can be checked against it:
//!
//! - NaN returns are *missing* days, as in empyrical's nan-aware reductions: length checks
//!   (`< 2` days → NaN Sharpe, …) and the CAGR horizon count every day, while means, standard
//!   deviations and products use only the present ones, and the drawdown curve treats a
//!   missing day as a zero return.
//! - A zero standard deviation is exact: empyrical forces the deviation of a constant series
//!   to 0 for Sharpe, so a constant positive series has an infinite Sharpe, not a ~1e15 one.
//!   We apply the same rule to the annual volatility too (empyrical reports float residue
//!   there, ~1e-18, which is 0 in every sense that matters).
//! - Ratios divide as IEEE floats do: Sharpe / Sortino with zero risk are ±inf (positive or
//!   negative mean) or NaN (zero mean), exactly like empyrical's numpy division.
//!
//! Undefined values stay NaN / inf in memory and become JSON `null` through
//! [`finite_or_null`], which other report structs reuse.

use serde::{Serialize, Serializer};

/// Serializes a non-finite float (NaN, ±inf) as `null`: JSON has no such numbers, and "not
/// defined" is what they mean in a report. Use with `#[serde(serialize_with = "finite_or_null")]`.
pub fn finite_or_null<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if value.is_finite() {
        serializer.serialize_f64(*value)
    } else {
        serializer.serialize_none()
    }
}

/// Daily returns from daily closing equity: `r_i = eq_i / eq_{i-1} - 1` with
/// `eq_{-1} = initial_equity`, so the first day's move off the starting capital counts.
/// A day after equity reached 0 yields inf / NaN rather than an error: the account is blown
/// and the metrics say so.
pub fn daily_returns(initial_equity: f64, daily_close_equity: &[f64]) -> Vec<f64> {
    let mut previous = initial_equity;
    daily_close_equity
        .iter()
        .map(|&equity| {
            let r = equity / previous - 1.0;
            previous = equity;
            r
        })
        .collect()
}

/// One-sample t-statistic of `values` against 0: `mean / (std(ddof = 1) / √n)`, the
/// statistic of a test that their mean is 0 (daily returns: that a strategy earns nothing).
/// `None` with fewer than 2 values, any NaN or infinite value, or all values 0; ±inf when
/// all values are equal and non-zero (no spread: the deviation is exactly 0, see
/// [`ReturnMetrics`]).
pub fn t_stat(values: &[f64]) -> Option<f64> {
    if values.len() < 2 || values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let t = mean(values) / (sample_std(values) / (values.len() as f64).sqrt());
    (!t.is_nan()).then_some(t)
}

/// Paired t-statistic of `a` against `b` (e.g. a strategy's daily returns against a
/// baseline's on the same days): [`t_stat`] of the differences `a_i − b_i`. Pairing
/// removes what both share (the market's move of the day), so a strategy that beats
/// buy-and-hold on most days scores high even when both swing with the market. `None`
/// when the lengths differ, and as [`t_stat`] otherwise.
pub fn paired_t_stat(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() {
        return None;
    }
    let diff: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    t_stat(&diff)
}

/// Risk and return of a return series, with empyrical's definitions (see the module docs).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReturnMetrics {
    /// Number of periods, missing (NaN) ones included.
    pub days: usize,
    /// `prod(1 + r) - 1` (empyrical `cum_returns_final`); NaN when empty.
    #[serde(serialize_with = "finite_or_null")]
    pub total_return: f64,
    /// `prod(1 + r)^(periods / days) - 1` (empyrical `annual_return`); NaN when empty.
    #[serde(serialize_with = "finite_or_null")]
    pub cagr: f64,
    /// `std(r, ddof=1) * sqrt(periods)`; NaN with fewer than 2 days.
    #[serde(serialize_with = "finite_or_null")]
    pub annual_volatility: f64,
    /// `mean(r - rf) / std(r - rf, ddof=1) * sqrt(periods)`; NaN with fewer than 2 days.
    #[serde(serialize_with = "finite_or_null")]
    pub sharpe: f64,
    /// `mean(r - rf) * periods / downside_risk`, with
    /// `downside_risk = sqrt(mean(min(r - rf, 0)^2)) * sqrt(periods)` over all present days;
    /// NaN with fewer than 2 days, +inf when nothing fell below `rf` but the mean is above it.
    #[serde(serialize_with = "finite_or_null")]
    pub sortino: f64,
    /// Worst fall from a running peak of wealth, the starting wealth included as the first
    /// peak (so a first-day loss counts); `<= 0`, NaN when empty.
    #[serde(serialize_with = "finite_or_null")]
    pub max_drawdown: f64,
    /// `cagr / |max_drawdown|` when `max_drawdown < 0`, else NaN (also NaN if infinite).
    #[serde(serialize_with = "finite_or_null")]
    pub calmar: f64,
}

impl ReturnMetrics {
    /// Computes every metric of `returns` (simple, non-cumulative, one per period).
    ///
    /// `periods_per_year` annualises (252 for trading days) and must be positive, otherwise
    /// the annualised numbers are NaN or meaningless. `risk_free` is the per-period risk-free
    /// return for Sharpe and also the required return of Sortino (empyrical's
    /// `required_return`), so both measure excess over the same hurdle; with 0 they are
    /// empyrical's defaults.
    pub fn from_returns(returns: &[f64], periods_per_year: f64, risk_free: f64) -> ReturnMetrics {
        let days = returns.len();
        let present: Vec<f64> = returns.iter().copied().filter(|r| !r.is_nan()).collect();
        let excess: Vec<f64> = present.iter().map(|r| r - risk_free).collect();
        let growth: f64 = present.iter().map(|r| 1.0 + r).product();
        let nan_below =
            |min_days: usize, value: f64| if days < min_days { f64::NAN } else { value };

        // empyrical divides by the horizon in years rather than multiplying by its inverse;
        // keeping its operation order keeps results bit-close to the reference.
        let years = days as f64 / periods_per_year;
        let cagr = nan_below(1, growth.powf(1.0 / years) - 1.0);
        let max_drawdown = nan_below(1, max_drawdown(returns));
        let calmar = if max_drawdown < 0.0 {
            let ratio = cagr / max_drawdown.abs();
            if ratio.is_infinite() { f64::NAN } else { ratio }
        } else {
            f64::NAN
        };
        ReturnMetrics {
            days,
            total_return: nan_below(1, growth - 1.0),
            cagr,
            annual_volatility: nan_below(2, sample_std(&present) * periods_per_year.sqrt()),
            sharpe: nan_below(
                2,
                mean(&excess) / sample_std(&excess) * periods_per_year.sqrt(),
            ),
            sortino: nan_below(
                2,
                mean(&excess) * periods_per_year / downside_risk(&excess, periods_per_year),
            ),
            max_drawdown,
            calmar,
        }
    }
}

/// Left-to-right sum starting at +0.0 (`Iterator::sum` for floats starts at -0.0, which
/// would print as `-0` for an empty set).
fn sum(values: impl IntoIterator<Item = f64>) -> f64 {
    values.into_iter().fold(0.0, |acc, v| acc + v)
}

/// Arithmetic mean; NaN when empty.
fn mean(values: &[f64]) -> f64 {
    crate::util::stats::mean(values.iter().copied()).unwrap_or(f64::NAN)
}

/// Sample standard deviation (ddof = 1), two-pass; NaN below 2 values, exactly 0 when all
/// values are equal (the mean of equal floats can miss them by an ulp, leaving a residue
/// that would turn an infinite Sharpe into ~1e15).
fn sample_std(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return f64::NAN;
    }
    let m = mean(values);
    let std = (sum(values.iter().map(|v| (v - m) * (v - m))) / (values.len() - 1) as f64).sqrt();
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    if lo == hi && std.is_finite() {
        0.0
    } else {
        std
    }
}

/// Annualised root-mean-square of the below-hurdle part of `excess`; the mean runs over
/// every observation, not only the losing ones (empyrical `downside_risk`).
fn downside_risk(excess: &[f64], periods_per_year: f64) -> f64 {
    let below: Vec<f64> = excess
        .iter()
        .map(|&e| if e > 0.0 { 0.0 } else { e * e })
        .collect();
    mean(&below).sqrt() * periods_per_year.sqrt()
}

/// Most negative `(wealth - peak) / peak`, with wealth starting at 1 as the first peak and a
/// missing (NaN) day counted as a zero return; NaN for an empty series.
fn max_drawdown(returns: &[f64]) -> f64 {
    let (mut wealth, mut peak) = (1.0_f64, 1.0_f64);
    returns.iter().fold(f64::NAN, |worst, &r| {
        wealth *= 1.0 + if r.is_nan() { 0.0 } else { r };
        // f64::max / min skip NaN like numpy's fmax / nanmin, which empyrical uses.
        peak = peak.max(wealth);
        worst.min((wealth - peak) / peak)
    })
}

/// One closed round trip: from flat (or a flip) to flat (or the next flip).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RoundTrip {
    pub symbol: String,
    /// First fill that opened the position, Unix nanoseconds.
    pub entry_ns: i64,
    /// Fill that closed (or flipped) it, Unix nanoseconds.
    pub exit_ns: i64,
    /// +1 long, -1 short.
    pub side: i8,
    /// Largest absolute position held during the trip.
    pub max_shares: i64,
    /// Profit at reference prices, before costs.
    #[serde(serialize_with = "finite_or_null")]
    pub gross_pnl: f64,
    /// Commission, spread, impact and borrow attributed to the trip.
    #[serde(serialize_with = "finite_or_null")]
    pub costs: f64,
}

impl RoundTrip {
    pub fn net_pnl(&self) -> f64 {
        self.gross_pnl - self.costs
    }

    /// Seconds from entry to exit. The difference is taken in i128 so that no pair of
    /// timestamps can overflow, and converted once so that nanoseconds are not lost.
    pub fn holding_secs(&self) -> f64 {
        (i128::from(self.exit_ns) - i128::from(self.entry_ns)) as f64 / 1e9
    }
}

/// Summary of closed round trips, on net (after-cost) pnl.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TradeStats {
    /// Number of round trips.
    pub trades: usize,
    /// Share of trips with net pnl > 0 (break-even trips are not wins); NaN with no trips.
    #[serde(serialize_with = "finite_or_null")]
    pub win_rate: f64,
    /// Sum of winning net pnl / |sum of losing net pnl|: +inf with winners but no losers,
    /// 0 with losers but no winners, NaN with no trips or only break-even ones.
    #[serde(serialize_with = "finite_or_null")]
    pub profit_factor: f64,
    /// Mean holding time in seconds; NaN with no trips.
    #[serde(serialize_with = "finite_or_null")]
    pub avg_holding_secs: f64,
    /// Mean net pnl per trip; NaN with no trips.
    #[serde(serialize_with = "finite_or_null")]
    pub avg_trade_pnl: f64,
}

impl TradeStats {
    pub fn from_round_trips(trips: &[RoundTrip]) -> TradeStats {
        let net: Vec<f64> = trips.iter().map(RoundTrip::net_pnl).collect();
        let holding: Vec<f64> = trips.iter().map(RoundTrip::holding_secs).collect();
        let wins = net.iter().filter(|&&p| p > 0.0).count();
        let gains = sum(net.iter().copied().filter(|&p| p > 0.0));
        let losses = sum(net.iter().copied().filter(|&p| p < 0.0));
        let profit_factor = if trips.is_empty() {
            f64::NAN
        } else {
            gains / losses.abs()
        };
        TradeStats {
            trades: trips.len(),
            win_rate: wins as f64 / trips.len() as f64,
            profit_factor,
            avg_holding_secs: mean(&holding),
            avg_trade_pnl: mean(&net),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_of_equal_values_is_exactly_zero() {
        // 0.0013 * 7 does not average back to 0.0013 in floats; without the equal-values
        // rule the deviation is ~2e-19 and Sharpe a meaningless ~1e17.
        assert_eq!(sample_std(&[0.0013; 7]), 0.0);
        assert!(sample_std(&[0.5]).is_nan());
        assert!(sample_std(&[]).is_nan());
    }

    #[test]
    fn empty_sums_are_positive_zero() {
        assert!(sum(std::iter::empty()).is_sign_positive());
        assert!(mean(&[]).is_nan());
    }

    #[test]
    fn drawdown_anchors_on_starting_wealth() {
        // Wealth 1 → 0.9 → 0.99: without the anchor the first point would be the peak and
        // the 10% loss would vanish.
        assert!((max_drawdown(&[-0.1, 0.1]) + 0.1).abs() < 1e-15);
        assert!(max_drawdown(&[]).is_nan());
    }
}
