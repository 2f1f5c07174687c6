//! The built-in baseline strategies: target schedules computed in memory from a day's bars.
//!
//! Every baseline is a pure function from the bars of one day *up to and including* bar
//! `t` to the target decided at bar `t`'s close, so a baseline can never look ahead: the
//! signal functions take prefixes ([`sma_cross_targets`], [`vwap_revert_targets`]) and a
//! prefix of their input gives a prefix of their output (the tests prove it by
//! truncation). Their schedules then run through exactly the runner a positions file
//! runs through ([`super::engine`]).
//!
//! Each day starts from a clean signal state (flat, empty moving-average windows): the
//! environment flattens every position at the close, so nothing a signal remembered
//! overnight could be acted on without reopening the position first.
//!
//! - `flat`: 0 always.
//! - `buy-and-hold`: 1 at every decision of every day (long the maximum position from the
//!   day's first decision to the close, where the environment flattens it).
//! - `sma-cross`: 1 while the mean of the last `backtest.sma_fast` session closes is above
//!   the mean of the last `backtest.sma_slow`, else 0; 0 until the slow window is full.
//!   Windows count the day's session bars (from the first session bar, pre-market
//!   excluded in the regular session). The comparison is exact: closes are whole
//!   nanodollars, and `Σfast/fast > Σslow/slow` is decided as `Σfast·slow > Σslow·fast`
//!   in integers, so a constant price never reads as a crossing through float rounding.
//! - `vwap-revert`: from the cached causal `vwap_dev` feature (`close / session VWAP −
//!   1`): 1 when `vwap_dev < −vwap_entry`; −1 when `vwap_dev > vwap_entry` (0 when
//!   `env.allow_short = false`); otherwise 0 when `|vwap_dev| < vwap_exit`; otherwise the
//!   previous target is held.

use crate::config::BacktestConfig;
use crate::env::DayData;
use serde::{Deserialize, Serialize};

/// A baseline strategy, as named on the command line (`--baseline`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Baseline {
    /// Never holds a position.
    Flat,
    /// Long the maximum position from each day's first decision to the close.
    BuyAndHold,
    /// Long while the fast SMA of closes is above the slow one.
    SmaCross,
    /// Against deviations from the session VWAP.
    VwapRevert,
}

impl Baseline {
    pub fn name(self) -> &'static str {
        match self {
            Baseline::Flat => "flat",
            Baseline::BuyAndHold => "buy-and-hold",
            Baseline::SmaCross => "sma-cross",
            Baseline::VwapRevert => "vwap-revert",
        }
    }

    /// The target decided at every row of `day` (rows before the session are 0).
    /// `vwap_dev` is the day's `vwap_dev` feature column (one value per row).
    pub fn day_targets(
        self,
        day: &DayData,
        vwap_dev: &[f32],
        cfg: &BacktestConfig,
        allow_short: bool,
    ) -> Vec<f64> {
        let rows = day.rows();
        let first = (day.first_row as usize).min(rows);
        let mut targets = vec![0.0; rows];
        let session = &mut targets[first..];
        match self {
            Baseline::Flat => {}
            Baseline::BuyAndHold => session.fill(1.0),
            Baseline::SmaCross => {
                let closes: Vec<f64> = day.bars[first..].iter().map(|b| b.close).collect();
                session.copy_from_slice(&sma_cross_targets(
                    &closes,
                    cfg.sma_fast as usize,
                    cfg.sma_slow as usize,
                ));
            }
            Baseline::VwapRevert => {
                session.copy_from_slice(&vwap_revert_targets(
                    &vwap_dev[first..rows],
                    cfg.vwap_entry,
                    cfg.vwap_exit,
                    allow_short,
                ));
            }
        }
        targets
    }
}

/// `sma-cross` on a series of closes (dollars): `out[t]` is 1 when the mean of
/// `closes[t+1-fast..=t]` exceeds the mean of `closes[t+1-slow..=t]`, else 0 (and 0 while
/// `t + 1 < slow`). Closes are compared as whole nanodollars, exactly.
pub fn sma_cross_targets(closes: &[f64], fast: usize, slow: usize) -> Vec<f64> {
    let nano: Vec<i128> = closes.iter().map(|&c| (c * 1e9).round() as i128).collect();
    let (mut sum_fast, mut sum_slow) = (0i128, 0i128);
    let mut out = Vec::with_capacity(closes.len());
    for t in 0..nano.len() {
        sum_fast += nano[t];
        sum_slow += nano[t];
        if t >= fast {
            sum_fast -= nano[t - fast];
        }
        if t >= slow {
            sum_slow -= nano[t - slow];
        }
        let full = fast > 0 && slow > 0 && t + 1 >= slow;
        let long = full && sum_fast * slow as i128 > sum_slow * fast as i128;
        out.push(if long { 1.0 } else { 0.0 });
    }
    out
}

/// `vwap-revert` on a series of `vwap_dev` values (see the module docs); starts flat.
pub fn vwap_revert_targets(vwap_dev: &[f32], entry: f64, exit: f64, allow_short: bool) -> Vec<f64> {
    let mut held = 0.0;
    vwap_dev
        .iter()
        .map(|&v| {
            let v = v as f64;
            held = if v < -entry {
                1.0
            } else if v > entry {
                if allow_short { -1.0 } else { 0.0 }
            } else if v.abs() < exit {
                0.0
            } else {
                held
            };
            held
        })
        .collect()
}
