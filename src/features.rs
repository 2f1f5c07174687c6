//! Features v2: the causal, scale-free per-bar inputs of the networks.
//!
//! One piece of code computes them everywhere: the cache builder ([`crate::build`]) runs
//! [`FeatureState::update`] over each symbol's days in date order, and the live stream
//! feeds the same `update` one bar at a time, so backtest and live cannot drift apart. The
//! state is serializable so live can checkpoint it and resume bit for bit.
//!
//! Causality is structural: `update` sees one bar and the state built from earlier bars, so
//! the value at bar `t` depends only on bars `<= t` of this day and on earlier days (rolling
//! windows, EMAs, RSI and ATR keep warming up across [`FeatureState::begin_day`] calls;
//! only the session-anchored pieces — VWAP, the day's high/low, the order-flow reference
//! quote — restart each day). The benchmark close a bar carries ([`BarInput::bench_close`])
//! is the benchmark's close as of the bar's start, on the common bar clock: the close of
//! its last bar that started no later than this one, the same day (an as-of join, built by
//! [`BenchmarkDay`]), so it too is known when the bar closes.
//!
//! Definitions (`c` close, `o` open, `h` high, `l` low, `v` volume, `r` = `ln(c[t]/c[t-1])`;
//! windows count bars, not minutes; EMAs are pandas `ewm(adjust=False)` started at the
//! first value). The first 19 columns are feature set v1, unchanged:
//!
//! | feature | definition | undefined → neutral |
//! |---|---|---|
//! | `ret_k` (k = 1, 5, 15, 60) | `ln(c[t] / c[t-k])` | fewer than k+1 closes → 0 |
//! | `sma_ratio_20` | `c / SMA(c,20) - 1` | fewer than 20 bars → 0 |
//! | `ema_ratio_12`, `ema_ratio_26` | `c / EMA(c,n) - 1`, `alpha = 2/(n+1)` | never (0 on bar 1 by construction) |
//! | `rsi_14` | Wilder RSI / 100 = `avg_gain / (avg_gain + avg_loss)`, averages by `ewm(alpha=1/14)` started at the first price change | first bar, or no movement at all yet → 0.5 |
//! | `macd_hist` | `(EMA12 - EMA26 - signal) / c`, signal = EMA9 of MACD started at the first MACD | zero close → 0 |
//! | `atr_ratio_14` | Wilder ATR(14) / c, ATR = `ewm(alpha=1/14)` of true range started at the first TR (= h - l) | zero close → 0 |
//! | `bb_pos_20` | `(c - SMA(c,20)) / (2 std(c,20))`, population std | fewer than 20 bars, or 20 equal closes → 0 |
//! | `vwap_dev` | `c / VWAP - 1`, VWAP of `(h+l+c)/3` weighted by volume since the day's first bar | no volume yet today → 0 |
//! | `vol_ratio_20` | `v / SMA(v,20)` | fewer than 20 bars, or zero average → 1 |
//! | `range_pos` | `(c - low) / (high - low)` over today's bars so far, this one included | zero range → 0.5 |
//! | `gap_prev_close` | `c / prev_close - 1`, prev_close = close of the previous day's last bar starting before its regular close | no previous day → 0 |
//! | `tod_sin`, `tod_cos` | `sin`/`cos` of `2π · sec_of_day / 86400` (bar start) | always defined |
//! | `mins_to_close` | `(regular_close_sec - sec_of_day) / 60 / 390`, negative after the close | always defined |
//! | `halted` | 1 when the bar is a halt bar, else 0 | always defined |
//! | `spread_bps` | `(ask - bid) / mid · 10⁴`, the quote at the bar's close, `mid = (bid+ask)/2` | no usable quote (bid ≤ 0 or crossed) → 0 |
//! | `microprice_dev_bps` | `(micro / mid - 1) · 10⁴`, `micro = (bid·ask_size + ask·bid_size) / (bid_size + ask_size)` | no usable quote, or no size on either side → 0 |
//! | `ofi` | Cont–Kukanov–Stoikov order-flow imbalance from today's previous usable closing quote to this bar's, over the four sizes: `e / (qb + qb' + qa + qa')`, `e = 1{b ≥ b'}·qb − 1{b ≤ b'}·qb' − 1{a ≤ a'}·qa + 1{a ≥ a'}·qa'` (primes: the earlier quote); in [-1, 1] | no usable quote now or earlier today, or all four sizes zero → 0 |
//! | `trade_imbalance` | `(buy - sell) / (buy + sell)`, volume initiated by buyers and by sellers | no trade flow, or none traded → 0 |
//! | `rv_k` (k = 15, 60) | realized volatility `sqrt(Σ r²)` over the last k returns | fewer than k+1 closes → 0 |
//! | `parkinson_20` | `sqrt(mean(ln(h/l)²) / (4 ln 2))` over 20 bars | fewer than 20 bars → 0 |
//! | `garman_klass_20` | `sqrt(mean(½ ln(h/l)² − (2 ln 2 − 1) ln(c/o)²))` over 20 bars (each term ≥ 0 when `o`, `c` lie in `[l, h]`; a negative mean is taken as 0) | fewer than 20 bars → 0 |
//! | `vol_z_60` | `(x - mean(x,60)) / std(x,60)`, `x = ln(1 + v)`, population std (the log tames volume's heavy tail) | fewer than 60 bars, or 60 equal volumes → 0 |
//! | `mins_since_open` | `(sec_of_day - regular_open_sec) / 60 / 390`, negative before the open | always defined |
//! | `dow_sin`, `dow_cos` | `sin`/`cos` of `2π · weekday / 5`, Monday = 0 (a trading week: Friday is one step from Monday) | always defined |
//! | `dist_day_high`, `dist_day_low` | `c / high - 1`, `c / low - 1`, today's high and low so far, this bar included | zero high or low → 0 |
//! | `dist_prev_high`, `dist_prev_low` | `c / H - 1`, `c / L - 1`, H and L over the previous day's regular-session bars (start in `[open, close)`) | no previous regular session → 0 |
//! | `rel_ret_k` (k = 5, 15, 60) | `ln(c[t]/c[t-k]) − ln(B[t]/B[t-k])`, `B` the benchmark close as of each bar | fewer than k+1 closes, or no benchmark close at t or t−k → 0 |
//! | `bench_corr_60` | Pearson correlation of the last 60 `r` with the benchmark's `ln(B[t]/B[t-1])` | fewer than 61 closes, a benchmark close missing in the window, or either side constant → 0 |
//!
//! The previous day's close is `gap_prev_close` (v1). The benchmark itself gets
//! `rel_ret_k = 0` and `bench_corr_60 = 1`; without a benchmark (`features.benchmark`
//! unset, or the cache lacks it on a day) the cross-sectional columns are neutral. Where a
//! source has no quotes or trade flow (synthetic data, OHLCV files), the microstructure
//! columns are neutral.
//!
//! RSI with `avg_loss == 0`: the ratio form `avg_gain / (avg_gain + avg_loss)` equals
//! `1 - 1/(1 + RS)` and gives 1.0 (RSI 100) when only gains were seen, as TA libraries
//! report; only when both averages are zero (no price change since the first bar) is RSI
//! undefined, and then it is neutral 0.5.
//!
//! Values are computed in f64 and emitted as f32; any value that is not finite after the
//! cast (a zero denominator, or input the validator should have rejected: non-finite or
//! non-positive prices, negative volume) is replaced by the feature's neutral value, so the
//! output never holds NaN or infinity. `update` is O(window) and allocation-free: per-bar
//! quantities live in fixed rings, and every windowed mean and deviation is recomputed
//! exactly from its ring each bar (a running sum would drift over millions of bars), in
//! eight interleaved partial sums whose fixed order gives the same bits on every machine.
//! Every log return is a difference of per-bar logarithms (`ln c[t] - ln c[t-k]`, equal
//! to `ln(c[t]/c[t-k])` to rounding), so a bar takes five logarithms whatever its windows.
//!
//! The state also runs the causal bad-print check ([`crate::validate::PrintCheck`]) on
//! every bar, so the builder and the live stream flag the same bars; its verdict is
//! [`FeatureState::suspect`], stored in the cache's `flags` column, not a feature.
//!
//! Changing any definition, window or neutral value must bump [`FEATURE_VERSION`]; caches
//! and state checkpoints record it and are rejected when it differs.

use crate::validate::{PrintBits, PrintCheck};
use serde::{Deserialize, Serialize};

/// Name of this feature set, recorded in cache manifests and policy bundles.
pub const FEATURE_SET: &str = "v2";
/// Bumped whenever a definition, window, seeding rule or neutral value changes.
pub const FEATURE_VERSION: u32 = 2;
/// Number of features per bar.
pub const N_FEATURES: usize = 39;

/// Feature names in column order.
pub const FEATURE_NAMES: [&str; N_FEATURES] = [
    "ret_1",
    "ret_5",
    "ret_15",
    "ret_60",
    "sma_ratio_20",
    "ema_ratio_12",
    "ema_ratio_26",
    "rsi_14",
    "macd_hist",
    "atr_ratio_14",
    "bb_pos_20",
    "vwap_dev",
    "vol_ratio_20",
    "range_pos",
    "gap_prev_close",
    "tod_sin",
    "tod_cos",
    "mins_to_close",
    "halted",
    "spread_bps",
    "microprice_dev_bps",
    "ofi",
    "trade_imbalance",
    "rv_15",
    "rv_60",
    "parkinson_20",
    "garman_klass_20",
    "vol_z_60",
    "mins_since_open",
    "dow_sin",
    "dow_cos",
    "dist_day_high",
    "dist_day_low",
    "dist_prev_high",
    "dist_prev_low",
    "rel_ret_5",
    "rel_ret_15",
    "rel_ret_60",
    "bench_corr_60",
];

/// The features computed against the benchmark symbol (`features.benchmark`).
pub const CROSS_SECTIONAL: [&str; 4] = ["rel_ret_5", "rel_ret_15", "rel_ret_60", "bench_corr_60"];

/// Value written while a feature is undefined (window not full, zero denominator,
/// non-finite result, no quote, no benchmark). Each is the value that carries "no
/// information" for its feature:
///
/// - 0.5 for `rsi_14` (RSI 50, neither overbought nor oversold) and `range_pos` (middle of
///   a zero-width range);
/// - 1 for `vol_ratio_20` (volume equal to its average);
/// - 0 for every other feature: "no move / at the average / no imbalance / no spread
///   known"; the calendar and `halted` columns are always defined, their entries are only
///   a guard and are never written in practice.
pub const FEATURE_NEUTRAL: [f32; N_FEATURES] = {
    let mut n = [0.0f32; N_FEATURES];
    n[RSI_14] = 0.5;
    n[RANGE_POS] = 0.5;
    n[VOL_RATIO_20] = 1.0;
    n
};

/// Bars of history after which every history-dependent feature is defined (`ret_60`,
/// `rel_ret_60` and `bench_corr_60` need 61 closes); the cache builder can use it to size
/// the warm-up it reads before a range.
pub const WARMUP_BARS: u64 = 61;

/// Index of a feature by name.
pub fn feature_index(name: &str) -> Option<usize> {
    FEATURE_NAMES.iter().position(|&n| n == name)
}

// Column indices, checked against FEATURE_NAMES by a unit test below.
const RET_1: usize = 0;
const RET_5: usize = 1;
const RET_15: usize = 2;
const RET_60: usize = 3;
const SMA_RATIO_20: usize = 4;
const EMA_RATIO_12: usize = 5;
const EMA_RATIO_26: usize = 6;
const RSI_14: usize = 7;
const MACD_HIST: usize = 8;
const ATR_RATIO_14: usize = 9;
const BB_POS_20: usize = 10;
const VWAP_DEV: usize = 11;
const VOL_RATIO_20: usize = 12;
const RANGE_POS: usize = 13;
const GAP_PREV_CLOSE: usize = 14;
const TOD_SIN: usize = 15;
const TOD_COS: usize = 16;
const MINS_TO_CLOSE: usize = 17;
const HALTED: usize = 18;
const SPREAD_BPS: usize = 19;
const MICROPRICE_DEV_BPS: usize = 20;
const OFI: usize = 21;
const TRADE_IMBALANCE: usize = 22;
const RV_15: usize = 23;
const RV_60: usize = 24;
const PARKINSON_20: usize = 25;
const GARMAN_KLASS_20: usize = 26;
const VOL_Z_60: usize = 27;
const MINS_SINCE_OPEN: usize = 28;
const DOW_SIN: usize = 29;
const DOW_COS: usize = 30;
const DIST_DAY_HIGH: usize = 31;
const DIST_DAY_LOW: usize = 32;
const DIST_PREV_HIGH: usize = 33;
const DIST_PREV_LOW: usize = 34;
const REL_RET_5: usize = 35;
const REL_RET_15: usize = 36;
const REL_RET_60: usize = 37;
const BENCH_CORR_60: usize = 38;

/// Return horizons in bars, with their columns.
const RETURNS: [(usize, usize); 4] = [(RET_1, 1), (RET_5, 5), (RET_15, 15), (RET_60, 60)];
/// Relative-return horizons in bars, with their columns.
const REL_RETURNS: [(usize, usize); 3] = [(REL_RET_5, 5), (REL_RET_15, 15), (REL_RET_60, 60)];
/// Ring capacity: a power of two holding at least the longest look-back (60) plus the
/// current bar, so positions are `index & RING_MASK`.
const RING: usize = 64;
const RING_MASK: usize = RING - 1;
/// Window of the SMA, Bollinger, volume-ratio and range-estimator averages.
const WINDOW: usize = 20;
/// Window of the long realized volatility, volume z-score and benchmark correlation.
const LONG: usize = 60;
/// Window of the short realized volatility.
const SHORT_RV: usize = 15;
const ALPHA_EMA12: f64 = 2.0 / 13.0;
const ALPHA_EMA26: f64 = 2.0 / 27.0;
const ALPHA_SIGNAL9: f64 = 2.0 / 10.0;
/// Wilder's smoothing for RSI and ATR (period 14).
const ALPHA_WILDER: f64 = 1.0 / 14.0;
/// Minutes of a full regular session, the scale of `mins_to_close` and `mins_since_open`.
const SESSION_MINUTES: f64 = 390.0;
const SECS_PER_DAY: f64 = 86_400.0;
/// Trading days in a week, the period of `dow_sin`/`dow_cos`.
const TRADING_WEEK: f64 = 5.0;
const BPS: f64 = 1e4;
/// 09:30 and 16:00 New York in seconds since midnight.
const REGULAR_OPEN_SEC: u32 = 9 * 3600 + 1800;
const REGULAR_CLOSE_SEC: u32 = 16 * 3600;

/// The quote standing at a bar's close: prices in dollars, sizes in shares.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QuoteInput {
    pub bid: f64,
    pub ask: f64,
    pub bid_size: f64,
    pub ask_size: f64,
}

impl QuoteInput {
    /// A book to compute with: positive, finite, not crossed (as the environments'
    /// quote rule), sizes finite and non-negative.
    fn usable(&self) -> bool {
        self.bid > 0.0
            && self.ask >= self.bid
            && self.ask.is_finite()
            && self.bid_size >= 0.0
            && self.ask_size >= 0.0
            && self.bid_size.is_finite()
            && self.ask_size.is_finite()
    }
}

/// One bar as the features see it: prices in dollars, time of the bar's start.
///
/// Expected validated (finite, positive prices, `low <= open, close <= high`, non-negative
/// volume); the output stays finite even when it is not.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BarInput {
    /// Bar START, seconds since New York midnight.
    pub sec_of_day: u32,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
    /// The bar lies inside a trading halt.
    pub halted: bool,
    /// The quote at the bar's close, where the source has quotes.
    pub quote: Option<QuoteInput>,
    /// Volume initiated by buyers and by sellers, where the source has trades.
    pub flow: Option<(f64, f64)>,
    /// The benchmark's close as of this bar's start ([`BenchmarkDay::close_at`]), where a
    /// benchmark is configured and has traded today.
    pub bench_close: Option<f64>,
}

impl BarInput {
    /// An OHLCV bar with no quote, trade flow or benchmark, not halted.
    pub fn ohlcv(sec_of_day: u32, open: f64, high: f64, low: f64, close: f64, volume: f64) -> Self {
        BarInput {
            sec_of_day,
            open,
            high,
            low,
            close,
            volume,
            halted: false,
            quote: None,
            flow: None,
            bench_close: None,
        }
    }
}

/// What the features need to know about the trading day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayContext {
    /// Start of the regular session in seconds since New York midnight: 09:30 = 34200.
    pub regular_open_sec: u32,
    /// End of the regular session in seconds since New York midnight: 16:00 = 57600, or
    /// the early close (13:00 = 46800).
    pub regular_close_sec: u32,
    /// Day of the week, Monday = 0.
    pub weekday: u8,
}

impl DayContext {
    /// The context of trading day `date` whose regular session runs from
    /// `regular_open_sec` to `regular_close_sec` (seconds since New York midnight).
    pub fn new(date: chrono::NaiveDate, regular_open_sec: u32, regular_close_sec: u32) -> Self {
        use chrono::Datelike;
        DayContext {
            regular_open_sec,
            regular_close_sec,
            weekday: date.weekday().num_days_from_monday() as u8,
        }
    }

    /// The context of a calendar session.
    pub fn of(session: &crate::calendar::Session) -> DayContext {
        DayContext::new(session.date, session.open_sec, session.close_sec)
    }
}

impl Default for DayContext {
    /// A normal Monday, 09:30 to 16:00.
    fn default() -> Self {
        DayContext {
            regular_open_sec: REGULAR_OPEN_SEC,
            regular_close_sec: REGULAR_CLOSE_SEC,
            weekday: 0,
        }
    }
}

/// One day of the benchmark's bars on the bar clock, for the as-of join that gives every
/// other symbol's bar its [`BarInput::bench_close`]. The cache builder and the live stream
/// both look benchmark closes up through it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BenchmarkDay {
    /// Bar starts (seconds since New York midnight), increasing, with their closes.
    secs: Vec<u32>,
    closes: Vec<f64>,
}

impl BenchmarkDay {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a benchmark bar; bars must come in time order (a bar not after the last is
    /// ignored: the stream has already refused it).
    pub fn push(&mut self, sec_of_day: u32, close: f64) {
        if self.secs.last().is_none_or(|&s| sec_of_day > s) {
            self.secs.push(sec_of_day);
            self.closes.push(close);
        }
    }

    /// The close of the benchmark's last bar that started at or before `sec_of_day`.
    pub fn close_at(&self, sec_of_day: u32) -> Option<f64> {
        let n = self.secs.partition_point(|&s| s <= sec_of_day);
        n.checked_sub(1).map(|i| self.closes[i])
    }

    /// Start of the last bar taken, if any.
    pub fn last_sec(&self) -> Option<u32> {
        self.secs.last().copied()
    }

    pub fn clear(&mut self) {
        self.secs.clear();
        self.closes.clear();
    }
}

/// Everything the features remember about one symbol's history.
///
/// Call [`begin_day`](Self::begin_day) before each day's first bar, then
/// [`update`](Self::update) for every bar of the day in time order (pre-market and
/// after-hours included). A fresh state behaves as if `begin_day(DayContext::default())`
/// had been called.
///
/// Serialized through a checkpoint form: floats travel as their IEEE-754 bit patterns, so
/// a checkpoint restores the state bit for bit through any serde format (JSON's decimal
/// floats do not round-trip exactly by default), and a checkpoint from another
/// [`FEATURE_VERSION`] is refused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(into = "StateCheckpoint", try_from = "StateCheckpoint")]
pub struct FeatureState {
    /// Per-bar history; the values of bar number `i` (counting from 0) are at
    /// `i & RING_MASK`.
    rings: Rings,
    /// Bars updated so far, all days together.
    bars_seen: u64,
    ema12: f64,
    ema26: f64,
    /// EMA9 of MACD.
    signal: f64,
    avg_gain: f64,
    avg_loss: f64,
    atr: f64,
    // Session-anchored, reset by begin_day.
    day: DayContext,
    /// `dow_sin`, `dow_cos` of `day` (derived from it, not checkpointed).
    dow: [f32; 2],
    bars_today: u64,
    /// Σ typical price × volume and Σ volume since the day's first bar.
    cum_pv: f64,
    cum_v: f64,
    day_high: f64,
    day_low: f64,
    /// Today's last usable closing quote, the reference of the next bar's order flow.
    last_quote: Option<QuoteInput>,
    /// Close of today's last bar that started before the regular close.
    last_regular_close_today: Option<f64>,
    /// High and low of today's regular-session bars so far.
    regular_range_today: Option<(f64, f64)>,
    /// Gap reference: the previous trading day's regular close.
    gap_ref: Option<f64>,
    /// The previous trading day's regular-session high and low.
    prev_range: Option<(f64, f64)>,
    /// The causal bad-print check, and its verdict on the last bar.
    print: PrintCheck,
    suspect: bool,
}

/// One per-bar history ring, mirrored: the value of bar slot `i` sits at `i` and at
/// `i + RING`, so the last `n ≤ RING` values always form one contiguous slice
/// ([`Ring::window`]) that the windowed sums read straight through.
#[derive(Clone, Debug)]
struct Ring([f64; 2 * RING]);

impl Ring {
    fn filled(v: f64) -> Ring {
        Ring([v; 2 * RING])
    }

    #[inline(always)]
    fn set(&mut self, slot: usize, v: f64) {
        self.0[slot] = v;
        self.0[slot + RING] = v;
    }

    /// The value `k` bars before slot `slot` (`k < RING`).
    #[inline(always)]
    fn back(&self, slot: usize, k: usize) -> f64 {
        self.0[slot + RING - k]
    }

    /// The last `n` values up to slot `slot`, oldest first (`1 ≤ n ≤ RING`).
    #[inline(always)]
    fn window(&self, slot: usize, n: usize) -> &[f64] {
        &self.0[slot + RING + 1 - n..=slot + RING]
    }

    /// The ring's own values (the mirror is derived from them).
    fn values(&self) -> &[f64] {
        &self.0[..RING]
    }
}

/// The per-bar history rings of [`FeatureState`]. Equal when bit for bit equal (their
/// NaN sentinels included).
#[derive(Clone, Debug)]
struct Rings {
    closes: Ring,
    /// `ln c`.
    log_closes: Ring,
    volumes: Ring,
    /// `r = ln(c[t]/c[t-1])`; NaN for the first bar ever.
    rets: Ring,
    /// `ln(1 + v)`.
    log_volumes: Ring,
    /// `ln(h/l)²` and `ln(c/o)²`.
    hl2: Ring,
    co2: Ring,
    /// `ln B`, the benchmark close as of the bar; NaN where there was none.
    log_bench: Ring,
    /// `ln(B[t]/B[t-1])`, NaN where either close is missing.
    bench_rets: Ring,
}

/// The rings by name, in checkpoint order.
const RING_NAMES: [&str; 9] = [
    "closes",
    "log_closes",
    "volumes",
    "rets",
    "log_volumes",
    "hl2",
    "co2",
    "log_bench",
    "bench_rets",
];

impl PartialEq for Rings {
    fn eq(&self, other: &Rings) -> bool {
        self.all().iter().zip(other.all()).all(|(a, b)| {
            a.0.iter()
                .zip(b.0.iter())
                .all(|(x, y)| x.to_bits() == y.to_bits())
        })
    }
}

impl Rings {
    fn new() -> Rings {
        Rings {
            closes: Ring::filled(0.0),
            log_closes: Ring::filled(0.0),
            volumes: Ring::filled(0.0),
            rets: Ring::filled(f64::NAN),
            log_volumes: Ring::filled(0.0),
            hl2: Ring::filled(0.0),
            co2: Ring::filled(0.0),
            log_bench: Ring::filled(f64::NAN),
            bench_rets: Ring::filled(f64::NAN),
        }
    }

    fn all(&self) -> [&Ring; 9] {
        [
            &self.closes,
            &self.log_closes,
            &self.volumes,
            &self.rets,
            &self.log_volumes,
            &self.hl2,
            &self.co2,
            &self.log_bench,
            &self.bench_rets,
        ]
    }

    fn all_mut(&mut self) -> [&mut Ring; 9] {
        [
            &mut self.closes,
            &mut self.log_closes,
            &mut self.volumes,
            &mut self.rets,
            &mut self.log_volumes,
            &mut self.hl2,
            &mut self.co2,
            &mut self.log_bench,
            &mut self.bench_rets,
        ]
    }
}

impl Default for FeatureState {
    fn default() -> Self {
        Self::new()
    }
}

/// Independent partial sums of a windowed sum. Summed in one chain, a 60-bar window is 60
/// dependent additions (~4 cycles each); eight chains overlap and vectorize. The order is
/// fixed in the source (Rust never reassociates floats), so results are the same bits on
/// every machine, in the builder and in the live stream.
const LANES: usize = 8;

/// `Σ f(x)` over `x` in [`LANES`] interleaved partial sums, combined pairwise.
#[inline(always)]
fn lane_sum(x: &[f64], f: impl Fn(f64) -> f64) -> f64 {
    let mut acc = [0.0f64; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for j in 0..LANES {
            acc[j] += f(c[j]);
        }
    }
    for (a, &v) in acc.iter_mut().zip(rest) {
        *a += f(v);
    }
    combine(&acc)
}

/// The partial sums of the lanes, added pairwise.
#[inline(always)]
fn combine(acc: &[f64; LANES]) -> f64 {
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// `Σ f(x, y)` over the pairs of `x` and `y` (equal lengths), as [`lane_sum`].
#[inline(always)]
fn lane_sum2(x: &[f64], y: &[f64], f: impl Fn(f64, f64) -> f64) -> f64 {
    let mut acc = [0.0f64; LANES];
    let (cx, cy) = (x.chunks_exact(LANES), y.chunks_exact(LANES));
    let (rx, ry) = (cx.remainder(), cy.remainder());
    for (a, b) in cx.zip(cy) {
        for j in 0..LANES {
            acc[j] += f(a[j], b[j]);
        }
    }
    for ((acc, &a), &b) in acc.iter_mut().zip(rx).zip(ry) {
        *acc += f(a, b);
    }
    combine(&acc)
}

/// Mean and population standard deviation of a window, by two passes (mean first: no
/// cancellation); `None` when all its values are equal (the deviation is zero, and the
/// summed mean may be an ulp off the common value).
#[inline]
fn window_stats(w: &[f64]) -> Option<(f64, f64)> {
    let last = w[w.len() - 1];
    if w.iter().all(|&x| x == last) {
        return None;
    }
    let n = w.len() as f64;
    let mean = lane_sum(w, |x| x) / n;
    let sq = lane_sum(w, |x| (x - mean) * (x - mean));
    Some((mean, (sq / n).sqrt()))
}

impl FeatureState {
    pub fn new() -> Self {
        FeatureState {
            rings: Rings::new(),
            bars_seen: 0,
            ema12: 0.0,
            ema26: 0.0,
            signal: 0.0,
            avg_gain: 0.0,
            avg_loss: 0.0,
            atr: 0.0,
            day: DayContext::default(),
            dow: day_of_week(&DayContext::default()),
            bars_today: 0,
            cum_pv: 0.0,
            cum_v: 0.0,
            day_high: 0.0,
            day_low: 0.0,
            last_quote: None,
            last_regular_close_today: None,
            regular_range_today: None,
            gap_ref: None,
            prev_range: None,
            print: PrintCheck::default(),
            suspect: false,
        }
    }

    /// Starts a trading day: the day that just ended hands over its regular-session close
    /// as the gap reference and its regular-session high and low, and VWAP, the day's
    /// high/low and the order-flow reference quote restart. Rolling windows, EMAs, RSI and
    /// ATR carry on. A day without any bar before its close (no trading, or only
    /// extended-hours bars) leaves the older references in place: they are still the most
    /// recent regular session's.
    pub fn begin_day(&mut self, ctx: DayContext) {
        if let Some(close) = self.last_regular_close_today.take() {
            self.gap_ref = Some(close);
        }
        if let Some(range) = self.regular_range_today.take() {
            self.prev_range = Some(range);
        }
        self.day = ctx;
        self.dow = day_of_week(&ctx);
        self.bars_today = 0;
        self.cum_pv = 0.0;
        self.cum_v = 0.0;
        self.day_high = 0.0;
        self.day_low = 0.0;
        self.last_quote = None;
        self.print.begin_day();
    }

    /// The gap reference of the current day (previous trading day's regular close).
    pub fn prev_close(&self) -> Option<f64> {
        self.gap_ref
    }

    /// Bars updated so far, all days together.
    pub fn bars_seen(&self) -> u64 {
        self.bars_seen
    }

    /// Whether the last bar [`update`](Self::update) took is a suspect print
    /// ([`PrintCheck`]): the flag the cache builder stores and the live stream sets.
    pub fn suspect(&self) -> bool {
        self.suspect
    }

    /// Folds in one bar and writes its features to `out`. O(window), no allocation.
    pub fn update(&mut self, bar: &BarInput, out: &mut [f32; N_FEATURES]) {
        let (o, c, h, l, v) = (bar.open, bar.close, bar.high, bar.low, bar.volume);
        // Position of this bar in the rings; masking the u64 keeps every index < RING.
        let slot = (self.bars_seen & RING_MASK as u64) as usize;
        let prev_close = (self.bars_seen > 0).then(|| self.rings.closes.back(slot, 1));
        self.suspect = self.print.check(bar.sec_of_day, c, bar.halted);
        // Logarithms once per bar: every return is a difference of them.
        let ln_c = c.ln();
        let ln_b = bar.bench_close.map_or(f64::NAN, f64::ln);
        {
            let first = self.bars_seen == 0;
            let r = &mut self.rings;
            let prev = |ring: &Ring| if first { f64::NAN } else { ring.back(slot, 1) };
            let (ln_prev_c, ln_prev_b) = (prev(&r.log_closes), prev(&r.log_bench));
            r.closes.set(slot, c);
            r.log_closes.set(slot, ln_c);
            r.volumes.set(slot, v);
            r.rets.set(slot, ln_c - ln_prev_c);
            r.log_volumes.set(slot, v.ln_1p());
            r.hl2.set(slot, (h / l).ln().powi(2));
            r.co2.set(slot, (c / o).ln().powi(2));
            r.log_bench.set(slot, ln_b);
            r.bench_rets.set(slot, ln_b - ln_prev_b);
        }
        self.bars_seen += 1;
        self.bars_today += 1;
        let n = self.bars_seen; // closes available, this one included
        let rings = &self.rings;

        for (col, k) in RETURNS {
            if n > k as u64 {
                put(out, col, ln_c - rings.log_closes.back(slot, k));
            } else {
                out[col] = FEATURE_NEUTRAL[col];
            }
        }

        // 20-bar windows, recomputed from the rings: exact, no drift.
        if n >= WINDOW as u64 {
            let closes = rings.closes.window(slot, WINDOW);
            match window_stats(closes) {
                // 20 equal closes: the mean is that close exactly, Bollinger undefined.
                None => {
                    put(out, SMA_RATIO_20, c / closes[0] - 1.0);
                    out[BB_POS_20] = FEATURE_NEUTRAL[BB_POS_20];
                }
                Some((mean, std)) => {
                    put(out, SMA_RATIO_20, c / mean - 1.0);
                    put(out, BB_POS_20, (c - mean) / (2.0 * std));
                }
            }
            let w = WINDOW as f64;
            let mean_v = lane_sum(rings.volumes.window(slot, WINDOW), |x| x) / w;
            if mean_v > 0.0 {
                put(out, VOL_RATIO_20, v / mean_v);
            } else {
                out[VOL_RATIO_20] = FEATURE_NEUTRAL[VOL_RATIO_20];
            }
            let (hl2, co2) = (
                rings.hl2.window(slot, WINDOW),
                rings.co2.window(slot, WINDOW),
            );
            let sum_hl2 = lane_sum(hl2, |x| x);
            let sum_gk = lane_sum2(hl2, co2, |a, b| {
                0.5 * a - (2.0 * std::f64::consts::LN_2 - 1.0) * b
            });
            put(
                out,
                PARKINSON_20,
                (sum_hl2 / w / (4.0 * std::f64::consts::LN_2)).sqrt(),
            );
            put(out, GARMAN_KLASS_20, (sum_gk / w).max(0.0).sqrt());
        } else {
            for col in [
                SMA_RATIO_20,
                BB_POS_20,
                VOL_RATIO_20,
                PARKINSON_20,
                GARMAN_KLASS_20,
            ] {
                out[col] = FEATURE_NEUTRAL[col];
            }
        }

        // Realized volatility over the last 15 and 60 returns (the first bar ever has
        // none: NaN in the ring, outside every window that is used).
        for (col, k) in [(RV_15, SHORT_RV), (RV_60, LONG)] {
            if n > k as u64 {
                put(
                    out,
                    col,
                    lane_sum(rings.rets.window(slot, k), |x| x * x).sqrt(),
                );
            } else {
                out[col] = FEATURE_NEUTRAL[col];
            }
        }

        match (n >= LONG as u64)
            .then(|| window_stats(rings.log_volumes.window(slot, LONG)))
            .flatten()
        {
            Some((mean, std)) => put(
                out,
                VOL_Z_60,
                (rings.log_volumes.back(slot, 0) - mean) / std,
            ),
            None => out[VOL_Z_60] = FEATURE_NEUTRAL[VOL_Z_60],
        }

        // Against the benchmark: NaN (no benchmark close) at either end leaves it neutral.
        for (col, k) in REL_RETURNS {
            if n > k as u64 {
                let own = ln_c - rings.log_closes.back(slot, k);
                put(out, col, own - (ln_b - rings.log_bench.back(slot, k)));
            } else {
                out[col] = FEATURE_NEUTRAL[col];
            }
        }
        out[BENCH_CORR_60] = FEATURE_NEUTRAL[BENCH_CORR_60];
        if n > LONG as u64 {
            put_corr(out, rings, slot);
        }

        // EMAs, MACD and signal, all seeded with their first value (pandas adjust=False).
        if n == 1 {
            self.ema12 = c;
            self.ema26 = c;
        } else {
            self.ema12 += ALPHA_EMA12 * (c - self.ema12);
            self.ema26 += ALPHA_EMA26 * (c - self.ema26);
        }
        let macd = self.ema12 - self.ema26;
        if n == 1 {
            self.signal = macd;
        } else {
            self.signal += ALPHA_SIGNAL9 * (macd - self.signal);
        }
        put(out, EMA_RATIO_12, c / self.ema12 - 1.0);
        put(out, EMA_RATIO_26, c / self.ema26 - 1.0);
        put(out, MACD_HIST, (macd - self.signal) / c);

        // Wilder RSI, seeded with the first price change (bar 2).
        out[RSI_14] = FEATURE_NEUTRAL[RSI_14];
        if let Some(p) = prev_close {
            let change = c - p;
            let (gain, loss) = (change.max(0.0), (-change).max(0.0));
            if n == 2 {
                self.avg_gain = gain;
                self.avg_loss = loss;
            } else {
                self.avg_gain += ALPHA_WILDER * (gain - self.avg_gain);
                self.avg_loss += ALPHA_WILDER * (loss - self.avg_loss);
            }
            let total = self.avg_gain + self.avg_loss;
            if total > 0.0 {
                put(out, RSI_14, self.avg_gain / total);
            }
        }

        // Wilder ATR: the first true range has no previous close and is h - l.
        let true_range = match prev_close {
            None => h - l,
            Some(p) => (h - l).max((h - p).abs()).max((l - p).abs()),
        };
        if n == 1 {
            self.atr = true_range;
        } else {
            self.atr += ALPHA_WILDER * (true_range - self.atr);
        }
        put(out, ATR_RATIO_14, self.atr / c);

        // Session VWAP; zero-volume (halt) bars add nothing and leave it as it was.
        self.cum_pv += (h + l + c) / 3.0 * v;
        self.cum_v += v;
        if self.cum_v > 0.0 {
            put(out, VWAP_DEV, c / (self.cum_pv / self.cum_v) - 1.0);
        } else {
            out[VWAP_DEV] = FEATURE_NEUTRAL[VWAP_DEV];
        }

        if self.bars_today == 1 {
            self.day_high = h;
            self.day_low = l;
        } else {
            self.day_high = self.day_high.max(h);
            self.day_low = self.day_low.min(l);
        }
        let range = self.day_high - self.day_low;
        if range > 0.0 {
            put(out, RANGE_POS, (c - self.day_low) / range);
        } else {
            out[RANGE_POS] = FEATURE_NEUTRAL[RANGE_POS];
        }
        put(out, DIST_DAY_HIGH, c / self.day_high - 1.0);
        put(out, DIST_DAY_LOW, c / self.day_low - 1.0);

        let day = self.day;
        if bar.sec_of_day < day.regular_close_sec {
            self.last_regular_close_today = Some(c);
            if bar.sec_of_day >= day.regular_open_sec {
                self.regular_range_today = Some(match self.regular_range_today {
                    None => (h, l),
                    Some((hi, lo)) => (hi.max(h), lo.min(l)),
                });
            }
        }
        match self.gap_ref {
            Some(reference) => put(out, GAP_PREV_CLOSE, c / reference - 1.0),
            None => out[GAP_PREV_CLOSE] = FEATURE_NEUTRAL[GAP_PREV_CLOSE],
        }
        match self.prev_range {
            Some((hi, lo)) => {
                put(out, DIST_PREV_HIGH, c / hi - 1.0);
                put(out, DIST_PREV_LOW, c / lo - 1.0);
            }
            None => {
                out[DIST_PREV_HIGH] = FEATURE_NEUTRAL[DIST_PREV_HIGH];
                out[DIST_PREV_LOW] = FEATURE_NEUTRAL[DIST_PREV_LOW];
            }
        }

        // Microstructure.
        for col in [SPREAD_BPS, MICROPRICE_DEV_BPS, OFI, TRADE_IMBALANCE] {
            out[col] = FEATURE_NEUTRAL[col];
        }
        if let Some(q) = bar.quote.filter(QuoteInput::usable) {
            let mid = 0.5 * (q.bid + q.ask);
            put(out, SPREAD_BPS, (q.ask - q.bid) / mid * BPS);
            let depth = q.bid_size + q.ask_size;
            if depth > 0.0 {
                let micro = (q.bid * q.ask_size + q.ask * q.bid_size) / depth;
                put(out, MICROPRICE_DEV_BPS, (micro / mid - 1.0) * BPS);
            }
            if let Some(p) = self.last_quote {
                put(out, OFI, order_flow_imbalance(&p, &q));
            }
            self.last_quote = Some(q);
        }
        if let Some((buy, sell)) = bar.flow {
            put(out, TRADE_IMBALANCE, (buy - sell) / (buy + sell));
        }

        // Calendar.
        let angle = std::f64::consts::TAU * f64::from(bar.sec_of_day) / SECS_PER_DAY;
        put(out, TOD_SIN, angle.sin());
        put(out, TOD_COS, angle.cos());
        let secs_to_close = f64::from(day.regular_close_sec) - f64::from(bar.sec_of_day);
        put(out, MINS_TO_CLOSE, secs_to_close / 60.0 / SESSION_MINUTES);
        let secs_since_open = f64::from(bar.sec_of_day) - f64::from(day.regular_open_sec);
        put(
            out,
            MINS_SINCE_OPEN,
            secs_since_open / 60.0 / SESSION_MINUTES,
        );
        [out[DOW_SIN], out[DOW_COS]] = self.dow;
        out[HALTED] = if bar.halted { 1.0 } else { 0.0 };
    }
}

/// Cont–Kukanov–Stoikov order-flow imbalance from quote `p` to quote `q`, over the sum of
/// the four sizes (so in [-1, 1]); NaN (neutral) when all four are zero.
fn order_flow_imbalance(p: &QuoteInput, q: &QuoteInput) -> f64 {
    let mut e = 0.0;
    if q.bid >= p.bid {
        e += q.bid_size;
    }
    if q.bid <= p.bid {
        e -= p.bid_size;
    }
    if q.ask <= p.ask {
        e -= q.ask_size;
    }
    if q.ask >= p.ask {
        e += p.ask_size;
    }
    e / (q.bid_size + p.bid_size + q.ask_size + p.ask_size)
}

/// Writes `bench_corr_60`: the Pearson correlation of the last 60 returns with the
/// benchmark's, when the benchmark has them all and neither side is constant.
#[inline]
fn put_corr(out: &mut [f32; N_FEATURES], rings: &Rings, slot: usize) {
    let x = rings.rets.window(slot, LONG);
    let y = rings.bench_rets.window(slot, LONG);
    if !y.iter().all(|v| v.is_finite()) {
        return;
    }
    let m = LONG as f64;
    let (mx, my) = (lane_sum(x, |v| v) / m, lane_sum(y, |v| v) / m);
    let (mut cxy, mut cxx, mut cyy) = ([0.0f64; LANES], [0.0f64; LANES], [0.0f64; LANES]);
    for (a, b) in x.chunks(LANES).zip(y.chunks(LANES)) {
        for j in 0..a.len() {
            let (dx, dy) = (a[j] - mx, b[j] - my);
            cxy[j] += dx * dy;
            cxx[j] += dx * dx;
            cyy[j] += dy * dy;
        }
    }
    let (sxy, sxx, syy) = (combine(&cxy), combine(&cxx), combine(&cyy));
    if sxx > 0.0 && syy > 0.0 {
        // Clamped: rounding can carry |ρ| an ulp past 1.
        put(
            out,
            BENCH_CORR_60,
            (sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0),
        );
    }
}

/// `dow_sin` and `dow_cos` of a day: `2π · weekday / 5`.
fn day_of_week(day: &DayContext) -> [f32; 2] {
    let angle = std::f64::consts::TAU * f64::from(day.weekday) / TRADING_WEEK;
    [angle.sin() as f32, angle.cos() as f32]
}

/// Writes `value` as f32, or the neutral value when it is not finite after the cast (a
/// zero denominator, or a finite f64 beyond the f32 range).
#[inline]
fn put(out: &mut [f32; N_FEATURES], col: usize, value: f64) {
    let v = value as f32;
    out[col] = if v.is_finite() {
        v
    } else {
        FEATURE_NEUTRAL[col]
    };
}

/// Features of a whole day: calls `begin_day(ctx)`, then `update` for every bar, and
/// returns column-major features `[N_FEATURES][bars.len()]`.
pub fn compute_day(state: &mut FeatureState, ctx: DayContext, bars: &[BarInput]) -> Vec<Vec<f32>> {
    state.begin_day(ctx);
    let mut columns: Vec<Vec<f32>> = (0..N_FEATURES)
        .map(|_| Vec::with_capacity(bars.len()))
        .collect();
    let mut row = [0.0f32; N_FEATURES];
    for bar in bars {
        state.update(bar, &mut row);
        for (column, &value) in columns.iter_mut().zip(row.iter()) {
            column.push(value);
        }
    }
    columns
}

/// The serialized form of [`FeatureState`]: every float as its IEEE-754 bits, so restoring
/// is exact whatever the format, plus the feature version it was computed under.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateCheckpoint {
    feature_version: u32,
    /// The rings in [`RING_NAMES`] order, by name.
    rings: Vec<(String, Vec<u64>)>,
    bars_seen: u64,
    ema12: u64,
    ema26: u64,
    signal: u64,
    avg_gain: u64,
    avg_loss: u64,
    atr: u64,
    day: DayContext,
    bars_today: u64,
    cum_pv: u64,
    cum_v: u64,
    day_high: u64,
    day_low: u64,
    last_quote: Option<[u64; 4]>,
    last_regular_close_today: Option<u64>,
    regular_range_today: Option<(u64, u64)>,
    gap_ref: Option<u64>,
    prev_range: Option<(u64, u64)>,
    print: PrintBits,
    suspect: bool,
}

fn pair_bits((a, b): (f64, f64)) -> (u64, u64) {
    (a.to_bits(), b.to_bits())
}

fn pair_from_bits((a, b): (u64, u64)) -> (f64, f64) {
    (f64::from_bits(a), f64::from_bits(b))
}

impl From<FeatureState> for StateCheckpoint {
    fn from(s: FeatureState) -> Self {
        StateCheckpoint {
            feature_version: FEATURE_VERSION,
            rings: RING_NAMES
                .iter()
                .zip(s.rings.all())
                .map(|(name, ring)| {
                    (
                        name.to_string(),
                        ring.values().iter().map(|x| x.to_bits()).collect(),
                    )
                })
                .collect(),
            bars_seen: s.bars_seen,
            ema12: s.ema12.to_bits(),
            ema26: s.ema26.to_bits(),
            signal: s.signal.to_bits(),
            avg_gain: s.avg_gain.to_bits(),
            avg_loss: s.avg_loss.to_bits(),
            atr: s.atr.to_bits(),
            day: s.day,
            bars_today: s.bars_today,
            cum_pv: s.cum_pv.to_bits(),
            cum_v: s.cum_v.to_bits(),
            day_high: s.day_high.to_bits(),
            day_low: s.day_low.to_bits(),
            last_quote: s
                .last_quote
                .map(|q| [q.bid, q.ask, q.bid_size, q.ask_size].map(f64::to_bits)),
            last_regular_close_today: s.last_regular_close_today.map(f64::to_bits),
            regular_range_today: s.regular_range_today.map(pair_bits),
            gap_ref: s.gap_ref.map(f64::to_bits),
            prev_range: s.prev_range.map(pair_bits),
            print: s.print.to_bits(),
            suspect: s.suspect,
        }
    }
}

impl TryFrom<StateCheckpoint> for FeatureState {
    type Error = String;

    fn try_from(c: StateCheckpoint) -> Result<Self, String> {
        if c.feature_version != FEATURE_VERSION {
            return Err(format!(
                "feature state checkpoint has feature_version {}, this build computes feature set {FEATURE_SET} \
                 version {FEATURE_VERSION}; rebuild the state by replaying the symbol's history",
                c.feature_version
            ));
        }
        let mut rings = Rings::new();
        if c.rings.len() != RING_NAMES.len() {
            return Err(format!(
                "feature state checkpoint holds {} rings, expected {} ({}); the checkpoint is corrupt",
                c.rings.len(),
                RING_NAMES.len(),
                RING_NAMES.join(", ")
            ));
        }
        for ((expected, ring), (name, bits)) in RING_NAMES.iter().zip(rings.all_mut()).zip(&c.rings)
        {
            if name != expected || bits.len() != RING {
                return Err(format!(
                    "feature state checkpoint ring `{name}` holds {} values where ring `{expected}` of {RING} \
                     is expected; the checkpoint is corrupt",
                    bits.len()
                ));
            }
            for (slot, &b) in bits.iter().enumerate() {
                ring.set(slot, f64::from_bits(b));
            }
        }
        Ok(FeatureState {
            rings,
            bars_seen: c.bars_seen,
            ema12: f64::from_bits(c.ema12),
            ema26: f64::from_bits(c.ema26),
            signal: f64::from_bits(c.signal),
            avg_gain: f64::from_bits(c.avg_gain),
            avg_loss: f64::from_bits(c.avg_loss),
            atr: f64::from_bits(c.atr),
            day: c.day,
            dow: day_of_week(&c.day),
            bars_today: c.bars_today,
            cum_pv: f64::from_bits(c.cum_pv),
            cum_v: f64::from_bits(c.cum_v),
            day_high: f64::from_bits(c.day_high),
            day_low: f64::from_bits(c.day_low),
            last_quote: c.last_quote.map(|b| {
                let [bid, ask, bid_size, ask_size] = b.map(f64::from_bits);
                QuoteInput {
                    bid,
                    ask,
                    bid_size,
                    ask_size,
                }
            }),
            last_regular_close_today: c.last_regular_close_today.map(f64::from_bits),
            regular_range_today: c.regular_range_today.map(pair_from_bits),
            gap_ref: c.gap_ref.map(f64::from_bits),
            prev_range: c.prev_range.map(pair_from_bits),
            print: PrintCheck::from_bits(&c.print),
            suspect: c.suspect,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_constants_match_names() {
        let columns = [
            (RET_1, "ret_1"),
            (RET_5, "ret_5"),
            (RET_15, "ret_15"),
            (RET_60, "ret_60"),
            (SMA_RATIO_20, "sma_ratio_20"),
            (EMA_RATIO_12, "ema_ratio_12"),
            (EMA_RATIO_26, "ema_ratio_26"),
            (RSI_14, "rsi_14"),
            (MACD_HIST, "macd_hist"),
            (ATR_RATIO_14, "atr_ratio_14"),
            (BB_POS_20, "bb_pos_20"),
            (VWAP_DEV, "vwap_dev"),
            (VOL_RATIO_20, "vol_ratio_20"),
            (RANGE_POS, "range_pos"),
            (GAP_PREV_CLOSE, "gap_prev_close"),
            (TOD_SIN, "tod_sin"),
            (TOD_COS, "tod_cos"),
            (MINS_TO_CLOSE, "mins_to_close"),
            (HALTED, "halted"),
            (SPREAD_BPS, "spread_bps"),
            (MICROPRICE_DEV_BPS, "microprice_dev_bps"),
            (OFI, "ofi"),
            (TRADE_IMBALANCE, "trade_imbalance"),
            (RV_15, "rv_15"),
            (RV_60, "rv_60"),
            (PARKINSON_20, "parkinson_20"),
            (GARMAN_KLASS_20, "garman_klass_20"),
            (VOL_Z_60, "vol_z_60"),
            (MINS_SINCE_OPEN, "mins_since_open"),
            (DOW_SIN, "dow_sin"),
            (DOW_COS, "dow_cos"),
            (DIST_DAY_HIGH, "dist_day_high"),
            (DIST_DAY_LOW, "dist_day_low"),
            (DIST_PREV_HIGH, "dist_prev_high"),
            (DIST_PREV_LOW, "dist_prev_low"),
            (REL_RET_5, "rel_ret_5"),
            (REL_RET_15, "rel_ret_15"),
            (REL_RET_60, "rel_ret_60"),
            (BENCH_CORR_60, "bench_corr_60"),
        ];
        assert_eq!(columns.len(), N_FEATURES);
        for (col, name) in columns {
            assert_eq!(FEATURE_NAMES[col], name);
        }
    }

    #[test]
    fn warmup_covers_the_longest_lookback() {
        let longest = RETURNS
            .iter()
            .chain(&REL_RETURNS)
            .map(|&(_, k)| k)
            .chain([LONG, SHORT_RV])
            .max()
            .unwrap_or(0);
        assert_eq!(WARMUP_BARS, longest as u64 + 1);
        assert!(RING > longest && RING >= WINDOW && RING.is_power_of_two());
        for name in CROSS_SECTIONAL {
            assert!(feature_index(name).is_some(), "{name}");
        }
    }
}
