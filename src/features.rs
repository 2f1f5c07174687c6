//! Features v1: the causal, scale-free per-bar inputs of the networks.
//!
//! One piece of code computes them everywhere: the cache builder ([`crate::build`]) runs
//! [`compute_day`] over each symbol's days in date order, and the live loop feeds the same
//! [`FeatureState::update`] one bar at a time, so backtest and live cannot drift apart. The
//! state is serializable so live can checkpoint it and resume bit for bit.
//!
//! Causality is structural: `update` sees one bar and the state built from earlier bars, so
//! the value at bar `t` depends only on bars `<= t` of this day and on earlier days (rolling
//! windows, EMAs, RSI and ATR keep warming up across [`FeatureState::begin_day`] calls;
//! only the session-anchored pieces — VWAP, the day's high/low — restart each day).
//!
//! Definitions (`c` close, `h` high, `l` low, `v` volume; windows count bars, not minutes;
//! EMAs are pandas `ewm(adjust=False)` started at the first value):
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
//!
//! RSI with `avg_loss == 0`: the ratio form `avg_gain / (avg_gain + avg_loss)` equals
//! `1 - 1/(1 + RS)` and gives 1.0 (RSI 100) when only gains were seen, as TA libraries
//! report; only when both averages are zero (no price change since the first bar) is RSI
//! undefined, and then it is neutral 0.5.
//!
//! Values are computed in f64 and emitted as f32; any value that is not finite after the
//! cast (a zero denominator, or input the validator should have rejected: non-finite or
//! non-positive prices, negative volume) is replaced by the feature's neutral value, so the
//! output never holds NaN or infinity. `update` is O(1) and allocation-free: closes and
//! volumes live in fixed rings, and the 20-bar mean and deviation are recomputed exactly
//! from the ring every bar (a running sum would drift over millions of bars).
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
pub const FEATURE_SET: &str = "v1";
/// Bumped whenever a definition, window, seeding rule or neutral value changes.
pub const FEATURE_VERSION: u32 = 1;
/// Number of features per bar.
pub const N_FEATURES: usize = 19;

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
];

/// Value written while a feature is undefined (window not full, zero denominator,
/// non-finite result). Each is the value that carries "no information" for its feature:
///
/// - 0 for returns, the SMA/EMA ratios, `macd_hist`, `atr_ratio_14`, `bb_pos_20`,
///   `vwap_dev` and `gap_prev_close`: "no move / at the average";
/// - 0.5 for `rsi_14` (RSI 50, neither overbought nor oversold) and `range_pos` (middle of
///   a zero-width range);
/// - 1 for `vol_ratio_20` (volume equal to its average);
/// - 0 for `tod_sin`, `tod_cos`, `mins_to_close` and `halted`, which are always defined;
///   their entries are only a guard and are never written in practice.
pub const FEATURE_NEUTRAL: [f32; N_FEATURES] = [
    0.0, // ret_1
    0.0, // ret_5
    0.0, // ret_15
    0.0, // ret_60
    0.0, // sma_ratio_20
    0.0, // ema_ratio_12
    0.0, // ema_ratio_26
    0.5, // rsi_14
    0.0, // macd_hist
    0.0, // atr_ratio_14
    0.0, // bb_pos_20
    0.0, // vwap_dev
    1.0, // vol_ratio_20
    0.5, // range_pos
    0.0, // gap_prev_close
    0.0, // tod_sin
    0.0, // tod_cos
    0.0, // mins_to_close
    0.0, // halted
];

/// Bars of history after which every history-dependent feature is defined (`ret_60` needs
/// 61 closes); the cache builder can use it to size the warm-up it reads before a range.
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

/// Return horizons in bars, with their columns.
const RETURNS: [(usize, usize); 4] = [(RET_1, 1), (RET_5, 5), (RET_15, 15), (RET_60, 60)];
/// Ring capacity: a power of two holding at least the longest look-back (60) plus the
/// current bar, so positions are `index & RING_MASK`.
const RING: usize = 64;
const RING_MASK: usize = RING - 1;
/// Window of the SMA, Bollinger and volume averages.
const WINDOW: usize = 20;
const ALPHA_EMA12: f64 = 2.0 / 13.0;
const ALPHA_EMA26: f64 = 2.0 / 27.0;
const ALPHA_SIGNAL9: f64 = 2.0 / 10.0;
/// Wilder's smoothing for RSI and ATR (period 14).
const ALPHA_WILDER: f64 = 1.0 / 14.0;
/// Minutes of a full regular session, the scale of `mins_to_close`.
const SESSION_MINUTES: f64 = 390.0;
const SECS_PER_DAY: f64 = 86_400.0;
/// 16:00 New York in seconds since midnight.
const REGULAR_CLOSE_SEC: u32 = 16 * 3600;

/// One bar as the features see it: prices in dollars, time of the bar's start.
///
/// Expected validated (finite, positive prices, `low <= close <= high`, non-negative
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
}

/// What the features need to know about the trading day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayContext {
    /// End of the regular session in seconds since New York midnight: 16:00 = 57600, or
    /// the early close (13:00 = 46800).
    pub regular_close_sec: u32,
}

impl Default for DayContext {
    /// A normal day closing at 16:00.
    fn default() -> Self {
        DayContext {
            regular_close_sec: REGULAR_CLOSE_SEC,
        }
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
    /// Last closes; the close of bar number `i` (counting from 0) is at `i & RING_MASK`.
    closes: [f64; RING],
    /// Last volumes, same positions as `closes`.
    volumes: [f64; RING],
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
    regular_close_sec: u32,
    bars_today: u64,
    /// Σ typical price × volume and Σ volume since the day's first bar.
    cum_pv: f64,
    cum_v: f64,
    day_high: f64,
    day_low: f64,
    /// Close of today's last bar that started before the regular close.
    last_regular_close_today: Option<f64>,
    /// Gap reference: the previous trading day's regular close.
    gap_ref: Option<f64>,
    /// The causal bad-print check, and its verdict on the last bar.
    print: PrintCheck,
    suspect: bool,
}

impl Default for FeatureState {
    fn default() -> Self {
        Self::new()
    }
}

impl FeatureState {
    pub fn new() -> Self {
        FeatureState {
            closes: [0.0; RING],
            volumes: [0.0; RING],
            bars_seen: 0,
            ema12: 0.0,
            ema26: 0.0,
            signal: 0.0,
            avg_gain: 0.0,
            avg_loss: 0.0,
            atr: 0.0,
            regular_close_sec: REGULAR_CLOSE_SEC,
            bars_today: 0,
            cum_pv: 0.0,
            cum_v: 0.0,
            day_high: 0.0,
            day_low: 0.0,
            last_regular_close_today: None,
            gap_ref: None,
            print: PrintCheck::default(),
            suspect: false,
        }
    }

    /// Starts a trading day: the day that just ended hands over its regular-session close
    /// as the gap reference, and VWAP and the day's high/low restart. Rolling windows, EMAs,
    /// RSI and ATR carry on. A day without any bar before its close (no trading, or only
    /// extended-hours bars) leaves the older reference in place: it is still the most
    /// recent regular-session close.
    pub fn begin_day(&mut self, ctx: DayContext) {
        if let Some(close) = self.last_regular_close_today.take() {
            self.gap_ref = Some(close);
        }
        self.regular_close_sec = ctx.regular_close_sec;
        self.bars_today = 0;
        self.cum_pv = 0.0;
        self.cum_v = 0.0;
        self.day_high = 0.0;
        self.day_low = 0.0;
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

    /// Folds in one bar and writes its features to `out`. O(1), no allocation.
    pub fn update(&mut self, bar: &BarInput, out: &mut [f32; N_FEATURES]) {
        let (c, h, l, v) = (bar.close, bar.high, bar.low, bar.volume);
        // Position of this bar in the rings; masking the u64 keeps every index < RING.
        let slot = (self.bars_seen & RING_MASK as u64) as usize;
        let back = |k: usize| (slot + RING - k) & RING_MASK;
        let prev_close = (self.bars_seen > 0).then(|| self.closes[back(1)]);
        self.suspect = self.print.check(bar.sec_of_day, c, bar.halted);
        self.closes[slot] = c;
        self.volumes[slot] = v;
        self.bars_seen += 1;
        self.bars_today += 1;
        let n = self.bars_seen; // closes available, this one included

        for (col, k) in RETURNS {
            if n > k as u64 {
                put(out, col, (c / self.closes[back(k)]).ln());
            } else {
                out[col] = FEATURE_NEUTRAL[col];
            }
        }

        // 20-bar windows, recomputed from the ring: exact, no drift. Two passes for the
        // deviation (mean first) avoid the cancellation of Σx² - n·mean².
        if n >= WINDOW as u64 {
            let oldest = self.closes[back(WINDOW - 1)];
            let mut sum_c = 0.0;
            let mut sum_v = 0.0;
            let mut all_equal = true;
            for k in (0..WINDOW).rev() {
                let i = back(k);
                sum_c += self.closes[i];
                sum_v += self.volumes[i];
                all_equal &= self.closes[i] == oldest;
            }
            // With 20 equal closes the mean is that close exactly (the summed one may be
            // off by an ulp) and the deviation is zero, so Bollinger is undefined.
            let mean_c = if all_equal {
                oldest
            } else {
                sum_c / WINDOW as f64
            };
            put(out, SMA_RATIO_20, c / mean_c - 1.0);
            if all_equal {
                out[BB_POS_20] = FEATURE_NEUTRAL[BB_POS_20];
            } else {
                let mut sq = 0.0;
                for k in 0..WINDOW {
                    let d = self.closes[back(k)] - mean_c;
                    sq += d * d;
                }
                let std = (sq / WINDOW as f64).sqrt();
                put(out, BB_POS_20, (c - mean_c) / (2.0 * std));
            }
            let mean_v = sum_v / WINDOW as f64;
            if mean_v > 0.0 {
                put(out, VOL_RATIO_20, v / mean_v);
            } else {
                out[VOL_RATIO_20] = FEATURE_NEUTRAL[VOL_RATIO_20];
            }
        } else {
            for col in [SMA_RATIO_20, BB_POS_20, VOL_RATIO_20] {
                out[col] = FEATURE_NEUTRAL[col];
            }
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

        if bar.sec_of_day < self.regular_close_sec {
            self.last_regular_close_today = Some(c);
        }
        match self.gap_ref {
            Some(reference) => put(out, GAP_PREV_CLOSE, c / reference - 1.0),
            None => out[GAP_PREV_CLOSE] = FEATURE_NEUTRAL[GAP_PREV_CLOSE],
        }

        let angle = std::f64::consts::TAU * f64::from(bar.sec_of_day) / SECS_PER_DAY;
        put(out, TOD_SIN, angle.sin());
        put(out, TOD_COS, angle.cos());
        let secs_to_close = f64::from(self.regular_close_sec) - f64::from(bar.sec_of_day);
        put(out, MINS_TO_CLOSE, secs_to_close / 60.0 / SESSION_MINUTES);
        out[HALTED] = if bar.halted { 1.0 } else { 0.0 };
    }
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
    closes: Vec<u64>,
    volumes: Vec<u64>,
    bars_seen: u64,
    ema12: u64,
    ema26: u64,
    signal: u64,
    avg_gain: u64,
    avg_loss: u64,
    atr: u64,
    regular_close_sec: u32,
    bars_today: u64,
    cum_pv: u64,
    cum_v: u64,
    day_high: u64,
    day_low: u64,
    last_regular_close_today: Option<u64>,
    gap_ref: Option<u64>,
    print: PrintBits,
    suspect: bool,
}

impl From<FeatureState> for StateCheckpoint {
    fn from(s: FeatureState) -> Self {
        StateCheckpoint {
            feature_version: FEATURE_VERSION,
            closes: s.closes.iter().map(|x| x.to_bits()).collect(),
            volumes: s.volumes.iter().map(|x| x.to_bits()).collect(),
            bars_seen: s.bars_seen,
            ema12: s.ema12.to_bits(),
            ema26: s.ema26.to_bits(),
            signal: s.signal.to_bits(),
            avg_gain: s.avg_gain.to_bits(),
            avg_loss: s.avg_loss.to_bits(),
            atr: s.atr.to_bits(),
            regular_close_sec: s.regular_close_sec,
            bars_today: s.bars_today,
            cum_pv: s.cum_pv.to_bits(),
            cum_v: s.cum_v.to_bits(),
            day_high: s.day_high.to_bits(),
            day_low: s.day_low.to_bits(),
            last_regular_close_today: s.last_regular_close_today.map(f64::to_bits),
            gap_ref: s.gap_ref.map(f64::to_bits),
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
        let ring = |name: &str, bits: &[u64]| -> Result<[f64; RING], String> {
            if bits.len() != RING {
                return Err(format!(
                    "feature state checkpoint field `{name}` holds {} values, expected {RING}; the checkpoint is corrupt",
                    bits.len()
                ));
            }
            let mut out = [0.0; RING];
            for (o, &b) in out.iter_mut().zip(bits) {
                *o = f64::from_bits(b);
            }
            Ok(out)
        };
        Ok(FeatureState {
            closes: ring("closes", &c.closes)?,
            volumes: ring("volumes", &c.volumes)?,
            bars_seen: c.bars_seen,
            ema12: f64::from_bits(c.ema12),
            ema26: f64::from_bits(c.ema26),
            signal: f64::from_bits(c.signal),
            avg_gain: f64::from_bits(c.avg_gain),
            avg_loss: f64::from_bits(c.avg_loss),
            atr: f64::from_bits(c.atr),
            regular_close_sec: c.regular_close_sec,
            bars_today: c.bars_today,
            cum_pv: f64::from_bits(c.cum_pv),
            cum_v: f64::from_bits(c.cum_v),
            day_high: f64::from_bits(c.day_high),
            day_low: f64::from_bits(c.day_low),
            last_regular_close_today: c.last_regular_close_today.map(f64::from_bits),
            gap_ref: c.gap_ref.map(f64::from_bits),
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
        ];
        assert_eq!(columns.len(), N_FEATURES);
        for (col, name) in columns {
            assert_eq!(FEATURE_NAMES[col], name);
        }
    }

    #[test]
    fn warmup_covers_the_longest_lookback() {
        let longest = RETURNS.iter().map(|&(_, k)| k).max().unwrap_or(0);
        assert_eq!(WARMUP_BARS, longest as u64 + 1);
        assert!(RING > longest && RING >= WINDOW && RING.is_power_of_two());
    }
}
