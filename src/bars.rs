//! Core market-data types shared by every source, the cache and the features.
//!
//! Prices are fixed-point integers in nanodollars ([`Price`]): exact for every vendor we
//! ingest (LEAN's 1/10000 dollars, Databento's 1e-9) and for accounting, and convertible to
//! `f64` / `f32` where arithmetic or a network needs it. Times are UTC nanoseconds since the
//! Unix epoch at the *start* of a bar, as in Databento's `ts_event`.

use bytemuck::{Pod, Zeroable};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Nanodollars per dollar.
pub const PRICE_SCALE: i64 = 1_000_000_000;

/// A price in nanodollars (1e-9 USD), exact.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    Pod,
    Zeroable,
)]
#[repr(transparent)]
pub struct Price(pub i64);

impl Price {
    /// From dollars, rounded to the nearest nanodollar.
    pub fn from_dollars(dollars: f64) -> Price {
        Price((dollars * PRICE_SCALE as f64).round() as i64)
    }
    /// From an integer in units of `1 / units_per_dollar` dollars (LEAN: 10_000).
    pub fn from_fixed(value: i64, units_per_dollar: i64) -> Price {
        debug_assert!(PRICE_SCALE % units_per_dollar == 0);
        Price(value * (PRICE_SCALE / units_per_dollar))
    }
    pub fn dollars(self) -> f64 {
        self.0 as f64 / PRICE_SCALE as f64
    }
    /// Multiplies by an adjustment factor, rounding to the nearest nanodollar.
    pub fn scaled(self, factor: f64) -> Price {
        Price((self.0 as f64 * factor).round() as i64)
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.4}", self.dollars())
    }
}

/// Bar resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum BarSize {
    #[serde(rename = "1s")]
    S1,
    #[serde(rename = "1m")]
    M1,
    #[serde(rename = "1h")]
    H1,
    #[serde(rename = "1d")]
    D1,
}

impl BarSize {
    pub const ALL: [BarSize; 4] = [BarSize::S1, BarSize::M1, BarSize::H1, BarSize::D1];

    /// Length of one bar in seconds.
    pub fn secs(self) -> u32 {
        match self {
            BarSize::S1 => 1,
            BarSize::M1 => 60,
            BarSize::H1 => 3600,
            BarSize::D1 => 86_400,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            BarSize::S1 => "1s",
            BarSize::M1 => "1m",
            BarSize::H1 => "1h",
            BarSize::D1 => "1d",
        }
    }
    /// Intraday bars are indexed on the session clock; daily bars are one per day.
    pub fn is_intraday(self) -> bool {
        self != BarSize::D1
    }
}

impl fmt::Display for BarSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BarSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BarSize::ALL
            .into_iter()
            .find(|b| b.as_str() == s)
            .ok_or_else(|| format!("unknown bar size '{s}': use one of 1s, 1m, 1h, 1d"))
    }
}

/// A trading halt, `[start_ns, end_ns)` in UTC nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Halt {
    pub start_ns: i64,
    pub end_ns: i64,
}

impl Halt {
    pub fn contains(&self, ts_ns: i64) -> bool {
        ts_ns >= self.start_ns && ts_ns < self.end_ns
    }
}

/// Top of book at each bar's close (LEAN quote bars, Databento BBO).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Quotes {
    pub bid: Vec<Price>,
    pub ask: Vec<Price>,
    pub bid_size: Vec<u64>,
    pub ask_size: Vec<u64>,
}

impl Quotes {
    pub fn with_capacity(n: usize) -> Quotes {
        Quotes {
            bid: Vec::with_capacity(n),
            ask: Vec::with_capacity(n),
            bid_size: Vec::with_capacity(n),
            ask_size: Vec::with_capacity(n),
        }
    }
    pub fn len(&self) -> usize {
        self.bid.len()
    }
    pub fn is_empty(&self) -> bool {
        self.bid.is_empty()
    }
}

/// Volume initiated by buyers and by sellers in each bar (trades classified by the quote
/// rule, the tick rule as fallback: [`crate::ingest::ticks`]); volume neither rule could
/// classify is in neither.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TradeFlow {
    pub buy_volume: Vec<u64>,
    pub sell_volume: Vec<u64>,
}

/// One symbol-day of bars as a source yields them, struct-of-arrays, before validation,
/// adjustment and features. Only bars that exist are present (sparse).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RawDay {
    pub symbol: String,
    pub date: NaiveDate,
    pub bar: Option<BarSize>,
    /// Bar start, UTC nanoseconds.
    pub ts_ns: Vec<i64>,
    pub open: Vec<Price>,
    pub high: Vec<Price>,
    pub low: Vec<Price>,
    pub close: Vec<Price>,
    pub volume: Vec<u64>,
    pub vwap: Option<Vec<Price>>,
    pub transactions: Option<Vec<u32>>,
    pub quotes: Option<Quotes>,
    pub flow: Option<TradeFlow>,
    pub halts: Vec<Halt>,
    /// Where the bars came from (file path or generator), for error messages and the cache.
    pub origin: String,
}

impl RawDay {
    pub fn new(
        symbol: impl Into<String>,
        date: NaiveDate,
        bar: BarSize,
        origin: impl Into<String>,
    ) -> RawDay {
        RawDay {
            symbol: symbol.into(),
            date,
            bar: Some(bar),
            origin: origin.into(),
            ..RawDay::default()
        }
    }

    /// Reserves room for `n` more bars in the OHLCV columns (sources know their row count).
    pub fn reserve(&mut self, n: usize) {
        self.ts_ns.reserve(n);
        self.open.reserve(n);
        self.high.reserve(n);
        self.low.reserve(n);
        self.close.reserve(n);
        self.volume.reserve(n);
    }

    pub fn len(&self) -> usize {
        self.ts_ns.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ts_ns.is_empty()
    }

    /// Appends one bar (OHLCV only).
    pub fn push(
        &mut self,
        ts_ns: i64,
        open: Price,
        high: Price,
        low: Price,
        close: Price,
        volume: u64,
    ) {
        self.ts_ns.push(ts_ns);
        self.open.push(open);
        self.high.push(high);
        self.low.push(low);
        self.close.push(close);
        self.volume.push(volume);
    }

    /// Keeps only the rows for which `keep[i]` is true, in every column.
    pub fn retain_rows(&mut self, keep: &[bool]) {
        fn filt<T: Copy>(v: &mut Vec<T>, keep: &[bool]) {
            let mut i = 0;
            v.retain(|_| {
                let k = keep[i];
                i += 1;
                k
            });
        }
        assert_eq!(keep.len(), self.len(), "retain_rows mask length");
        filt(&mut self.ts_ns, keep);
        filt(&mut self.open, keep);
        filt(&mut self.high, keep);
        filt(&mut self.low, keep);
        filt(&mut self.close, keep);
        filt(&mut self.volume, keep);
        if let Some(v) = &mut self.vwap {
            filt(v, keep);
        }
        if let Some(v) = &mut self.transactions {
            filt(v, keep);
        }
        if let Some(q) = &mut self.quotes {
            filt(&mut q.bid, keep);
            filt(&mut q.ask, keep);
            filt(&mut q.bid_size, keep);
            filt(&mut q.ask_size, keep);
        }
        if let Some(f) = &mut self.flow {
            filt(&mut f.buy_volume, keep);
            filt(&mut f.sell_volume, keep);
        }
    }

    /// Folds bar `later` into bar `into`, an earlier bar of the same clock slot: the start
    /// time and open stay, high / low widen, the close and the quote come from the later bar,
    /// volumes and trade counts add up, and the VWAP is volume-weighted.
    pub fn fold_into(&mut self, into: usize, later: usize) {
        let (va, vb) = (self.volume[into], self.volume[later]);
        self.high[into] = self.high[into].max(self.high[later]);
        self.low[into] = self.low[into].min(self.low[later]);
        self.close[into] = self.close[later];
        self.volume[into] = va + vb;
        if let Some(v) = &mut self.vwap {
            let total = (va + vb).max(1) as f64;
            v[into] = Price(
                ((v[into].0 as f64 * va as f64 + v[later].0 as f64 * vb as f64) / total).round()
                    as i64,
            );
        }
        if let Some(t) = &mut self.transactions {
            t[into] = t[into].saturating_add(t[later]);
        }
        if let Some(q) = &mut self.quotes {
            q.bid[into] = q.bid[later];
            q.ask[into] = q.ask[later];
            q.bid_size[into] = q.bid_size[later];
            q.ask_size[into] = q.ask_size[later];
        }
        if let Some(f) = &mut self.flow {
            f.buy_volume[into] += f.buy_volume[later];
            f.sell_volume[into] += f.sell_volume[later];
        }
    }

    /// Reorders every column by `order` (a permutation of row indices).
    pub fn permute_rows(&mut self, order: &[usize]) {
        fn perm<T: Copy>(v: &mut Vec<T>, order: &[usize]) {
            *v = order.iter().map(|&i| v[i]).collect();
        }
        perm(&mut self.ts_ns, order);
        perm(&mut self.open, order);
        perm(&mut self.high, order);
        perm(&mut self.low, order);
        perm(&mut self.close, order);
        perm(&mut self.volume, order);
        if let Some(v) = &mut self.vwap {
            perm(v, order);
        }
        if let Some(v) = &mut self.transactions {
            perm(v, order);
        }
        if let Some(q) = &mut self.quotes {
            perm(&mut q.bid, order);
            perm(&mut q.ask, order);
            perm(&mut q.bid_size, order);
            perm(&mut q.ask_size, order);
        }
        if let Some(f) = &mut self.flow {
            perm(&mut f.buy_volume, order);
            perm(&mut f.sell_volume, order);
        }
    }

    /// Whether the bar starting at `ts_ns` lies inside a recorded halt.
    pub fn is_halted(&self, ts_ns: i64) -> bool {
        self.halts.iter().any(|h| h.contains(ts_ns))
    }
}

/// Parses `YYYY-MM-DD` (or `YYYYMMDD`) into a date, with an error that names the value.
pub fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(s, "%Y%m%d"))
        .map_err(|_| format!("invalid date '{s}': use YYYY-MM-DD"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_fixed_point_round_trips_lean_units() {
        // LEAN stores $167.41 as 1674100 (1/10000 dollars).
        let p = Price::from_fixed(1_674_100, 10_000);
        assert_eq!(p.0, 167_410_000_000);
        assert_eq!(p.dollars(), 167.41);
        assert_eq!(Price::from_dollars(167.41), p);
        assert_eq!(p.scaled(0.25), Price(41_852_500_000));
    }

    #[test]
    fn bar_size_parses_and_prints() {
        for b in BarSize::ALL {
            assert_eq!(b.as_str().parse::<BarSize>().unwrap(), b);
        }
        assert!("5m".parse::<BarSize>().unwrap_err().contains("5m"));
    }

    #[test]
    fn retain_and_permute_touch_every_column() {
        let d = NaiveDate::from_ymd_opt(2024, 1, 2).unwrap();
        let mut r = RawDay::new("X", d, BarSize::M1, "t");
        for i in 0..4 {
            r.push(i, Price(i), Price(i), Price(i), Price(i), i as u64);
        }
        r.transactions = Some(vec![0, 1, 2, 3]);
        r.permute_rows(&[3, 2, 1, 0]);
        assert_eq!(r.ts_ns, vec![3, 2, 1, 0]);
        assert_eq!(r.transactions.as_deref(), Some(&[3, 2, 1, 0][..]));
        r.retain_rows(&[true, false, true, false]);
        assert_eq!(r.ts_ns, vec![3, 1]);
        assert_eq!(r.volume, vec![3, 1]);
        assert_eq!(r.transactions.as_deref(), Some(&[3, 1][..]));
    }
}
