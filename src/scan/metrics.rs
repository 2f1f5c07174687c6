//! Day-level metrics of one cached symbol-day, from its bars alone.
//!
//! [`DayBars`] is a day's bars as plain f64 columns (prices in dollars, times in seconds
//! after New York midnight): what the scanner reads, and what tests build or rewrite by
//! hand. [`day_metrics`] computes the *raw* day fields (those that need no other day);
//! the cross-day fields (`rel_volume`, `quality`, `category`) are filled in by
//! [`super::index::finish_days`] once every day of the symbol is known.
//!
//! Every field here is an **end-of-day label**: it summarizes the whole day (all cached
//! bars, pre-market and after-hours included) and is known only after the close. Use it
//! to *select* days, never as an observation.

use crate::cache::DayCache;
use chrono::NaiveDate;

/// A day's bars as f64 columns.
#[derive(Clone, Debug, PartialEq)]
pub struct DayBars {
    pub symbol: String,
    pub date: NaiveDate,
    /// Bar length, seconds.
    pub bar_secs: u32,
    /// Bar start, seconds after New York midnight.
    pub secs: Vec<u32>,
    pub open: Vec<f64>,
    pub high: Vec<f64>,
    pub low: Vec<f64>,
    pub close: Vec<f64>,
    pub volume: Vec<f64>,
    /// Halts `[start, end)`, seconds after midnight.
    pub halts: Vec<(u32, u32)>,
    /// Regular session `[open, close)` and extended session `[pre_open, post_close)`,
    /// seconds after midnight.
    pub regular: (u32, u32),
    pub extended: (u32, u32),
    /// Previous trading day's regular close, dollars (from the cache header).
    pub prev_close: Option<f64>,
}

impl DayBars {
    /// Reads a cached day.
    pub fn from_cache(day: &DayCache) -> DayBars {
        let meta = day.meta();
        let to_sec = |ns: i64| {
            crate::clock::sec_of_day(ns, meta.date, meta.utc_offset_sec).clamp(0, 86_400) as u32
        };
        let dollars =
            |p: &[crate::bars::Price]| p.iter().map(|x| x.dollars()).collect::<Vec<f64>>();
        let s = meta.session;
        DayBars {
            symbol: meta.symbol.clone(),
            date: meta.date,
            bar_secs: meta.bar.secs(),
            secs: day.ts_ns().iter().map(|&t| to_sec(t)).collect(),
            open: dollars(day.opens()),
            high: dollars(day.highs()),
            low: dollars(day.lows()),
            close: dollars(day.closes()),
            volume: day.volumes().iter().map(|&v| v as f64).collect(),
            halts: meta
                .halts
                .iter()
                .map(|h| (to_sec(h.start_ns), to_sec(h.end_ns)))
                .collect(),
            regular: (s.open_sec, s.close_sec),
            extended: (s.pre_open_sec, s.post_close_sec),
            prev_close: meta.prev_close.map(|p| p.dollars()),
        }
    }

    pub fn rows(&self) -> usize {
        self.secs.len()
    }
}

/// The raw (single-day) metrics of a day. All end-of-day.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DayMetrics {
    /// First bar's open, highest high, lowest low, last bar's close (dollars).
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    /// Shares traded.
    pub volume: u64,
    /// Sum of close × volume over the bars, dollars.
    pub dollar_volume: f64,
    pub bars: u32,
    /// `(high - low) / open`.
    pub range: f64,
    /// `close / open - 1`.
    pub change: f64,
    /// `open / prev_close - 1` (None without a previous close).
    pub gap: Option<f64>,
    /// Largest rise from an earlier low: `max_j high_j / min_{i<=j} low_i - 1`.
    pub max_runup: f64,
    /// Largest drop from an earlier high: `max_j 1 - low_j / max_{i<=j} high_i`.
    pub max_drawdown: f64,
    /// `max(max_runup, max_drawdown)`: the largest intraday move.
    pub max_move: f64,
    /// `|close - open| / (high - low)` (0 for a zero range): 1 for a day that went from
    /// one extreme to the other.
    pub trend: f64,
    /// Halts in the cache header.
    pub halts: u32,
}

/// Raw day metrics over every bar of `d` (None for a day without bars).
pub fn day_metrics(d: &DayBars) -> Option<DayMetrics> {
    let n = d.rows();
    if n == 0 {
        return None;
    }
    let open = d.open[0];
    let close = d.close[n - 1];
    let (mut high, mut low) = (f64::MIN, f64::MAX);
    let (mut runup, mut drawdown) = (0f64, 0f64);
    let (mut volume, mut dollar_volume) = (0u64, 0f64);
    for i in 0..n {
        // Extremes so far include this bar: a bar whose own low precedes its own high is
        // the common case, and the bar's range is a move within the day.
        low = low.min(d.low[i]);
        high = high.max(d.high[i]);
        runup = runup.max(d.high[i] / low - 1.0);
        drawdown = drawdown.max(1.0 - d.low[i] / high);
        volume += d.volume[i] as u64;
        dollar_volume += d.close[i] * d.volume[i];
    }
    let range = if open > 0.0 { (high - low) / open } else { 0.0 };
    Some(DayMetrics {
        open,
        high,
        low,
        close,
        volume,
        dollar_volume,
        bars: n as u32,
        range,
        change: close / open - 1.0,
        gap: d.prev_close.filter(|&p| p > 0.0).map(|p| open / p - 1.0),
        max_runup: runup,
        max_drawdown: drawdown,
        max_move: runup.max(drawdown),
        trend: if high > low {
            (close - open).abs() / (high - low)
        } else {
            0.0
        },
        halts: d.halts.len() as u32,
    })
}
