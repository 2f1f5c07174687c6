//! Multi-ticker alignment: several symbols of one day on a common clock, for
//! cross-sectional features and portfolio views.
//!
//! The clock is the union (outer, ffill) or the intersection (inner) of the symbols' bar
//! start times. Columns are named `<SYMBOL>_<column>`; a missing value is NaN (outer) or the
//! symbol's last value that day (ffill; NaN before its first bar). Each symbol gets a
//! report: its bars, clock times it misses, values carried forward, its longest gap, and
//! isolated price spikes (the validation rule, [`crate::validate`]).

use crate::cache::DayCache;
use crate::config::JoinKind;
use crate::error::{Error, Result};
use crate::features;
use serde::Serialize;

/// Symbols of one day on a common clock.
#[derive(Clone, Debug)]
pub struct Aligned {
    /// Clock: bar start times, UTC ns, ascending.
    pub ts_ns: Vec<i64>,
    /// `(<SYMBOL>_<column>, values)` in symbol-major order.
    pub columns: Vec<(String, Vec<f64>)>,
    pub report: Vec<SymbolReport>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SymbolReport {
    pub symbol: String,
    /// Bars the symbol has that day.
    pub bars: usize,
    /// Clock times without a bar of this symbol.
    pub missing: usize,
    /// Of those, values carried forward (ffill).
    pub filled: usize,
    /// Longest stretch between two of its bars (or from the clock's start), seconds.
    pub longest_gap_s: f64,
    /// Isolated close-price spikes (see `ingest.validation.outlier_z`).
    pub outliers: usize,
}

/// Values of a named column of a day as f64 (bar fields in dollars, or a feature).
pub fn column_values(day: &DayCache, name: &str) -> Result<Vec<f64>> {
    let dollars = |p: &[crate::bars::Price]| p.iter().map(|x| x.dollars()).collect();
    Ok(match name {
        "open" => dollars(day.opens()),
        "high" => dollars(day.highs()),
        "low" => dollars(day.lows()),
        "close" => dollars(day.closes()),
        "volume" => day.volumes().iter().map(|&v| v as f64).collect(),
        _ => match day.feature_by_name(name) {
            Some(f) => f.iter().map(|&x| x as f64).collect(),
            None => {
                return Err(Error::Usage(format!(
                    "unknown column '{name}': use open, high, low, close, volume or a feature ({})",
                    features::FEATURE_NAMES.join(", ")
                )));
            }
        },
    })
}

/// Aligns `days` (one per symbol, same date) on a common clock.
pub fn align(
    days: &[DayCache],
    how: JoinKind,
    columns: &[String],
    outlier_z: f64,
) -> Result<Aligned> {
    if let Some(w) = days
        .windows(2)
        .find(|w| w[0].meta().date != w[1].meta().date)
    {
        return Err(Error::Usage(format!(
            "cannot align different dates: {} {} and {} {}",
            w[0].meta().symbol,
            w[0].meta().date,
            w[1].meta().symbol,
            w[1].meta().date
        )));
    }
    // The clock.
    let mut ts: Vec<i64> = match how {
        JoinKind::Outer | JoinKind::Ffill => {
            let mut all: Vec<i64> = days
                .iter()
                .flat_map(|d| d.ts_ns().iter().copied())
                .collect();
            all.sort_unstable();
            all.dedup();
            all
        }
        JoinKind::Inner => {
            let mut common: Vec<i64> = days.first().map(|d| d.ts_ns().to_vec()).unwrap_or_default();
            for d in days.iter().skip(1) {
                let theirs = d.ts_ns();
                common.retain(|t| theirs.binary_search(t).is_ok());
            }
            common
        }
    };
    ts.shrink_to_fit();

    let mut out_cols = Vec::with_capacity(days.len() * columns.len());
    let mut report = Vec::with_capacity(days.len());
    for day in days {
        let own = day.ts_ns();
        // pos[i]: the symbol's row at clock time i, or its latest earlier row (ffill).
        let mut exact: Vec<Option<usize>> = Vec::with_capacity(ts.len());
        let mut latest: Vec<Option<usize>> = Vec::with_capacity(ts.len());
        let mut r = 0usize;
        for &t in &ts {
            while r < own.len() && own[r] < t {
                r += 1;
            }
            let hit = r < own.len() && own[r] == t;
            exact.push(hit.then_some(r));
            let last = if hit { Some(r) } else { r.checked_sub(1) };
            latest.push(last);
        }
        let missing = exact.iter().filter(|e| e.is_none()).count();
        let filled = if how == JoinKind::Ffill {
            exact
                .iter()
                .zip(&latest)
                .filter(|(e, l)| e.is_none() && l.is_some())
                .count()
        } else {
            0
        };
        let start = ts.first().copied().unwrap_or(0);
        let mut longest = 0i64;
        let mut prev = start;
        for &t in own {
            longest = longest.max(t - prev);
            prev = t;
        }
        if let Some(&end) = ts.last() {
            longest = longest.max(end - prev);
        }
        let closes: Vec<f64> = day.closes().iter().map(|p| p.dollars()).collect();
        report.push(SymbolReport {
            symbol: day.meta().symbol.clone(),
            bars: own.len(),
            missing,
            filled,
            longest_gap_s: longest as f64 / 1e9,
            outliers: crate::validate::spike_rows(&closes, outlier_z).len(),
        });
        let pick = if how == JoinKind::Ffill {
            &latest
        } else {
            &exact
        };
        for name in columns {
            let vals = column_values(day, name)?;
            let col: Vec<f64> = pick
                .iter()
                .map(|p| p.map_or(f64::NAN, |r| vals[r]))
                .collect();
            out_cols.push((format!("{}_{}", day.meta().symbol, name), col));
        }
    }
    Ok(Aligned {
        ts_ns: ts,
        columns: out_cols,
        report,
    })
}
