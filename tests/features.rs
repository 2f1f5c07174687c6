//! Features v1 against independent truth: hand-computed values for every feature, a
//! pandas reference on an 80-bar series, the truncation (causality) property for all
//! features, checkpoint resume, degenerate input, warm-up across days and long-run accuracy.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, Normal};
use sim_train::features::*;

/// 09:30, 15:59, 16:00 and 13:00 in seconds since New York midnight.
const OPEN: u32 = 34_200;
const CLOSE_1559: u32 = 57_540;
const CLOSE: u32 = 57_600;
const EARLY_CLOSE: u32 = 46_800;

fn idx(name: &str) -> usize {
    feature_index(name).unwrap_or_else(|| panic!("no feature named {name}"))
}

fn day(close_sec: u32) -> DayContext {
    DayContext {
        regular_close_sec: close_sec,
    }
}

fn bar(sec_of_day: u32, high: f64, low: f64, close: f64, volume: f64) -> BarInput {
    BarInput {
        sec_of_day,
        open: close,
        high,
        low,
        close,
        volume,
        halted: false,
    }
}

/// A bar with high = low = close.
fn flat(sec_of_day: u32, close: f64, volume: f64) -> BarInput {
    bar(sec_of_day, close, close, close, volume)
}

/// One-minute bars from 09:30 with the given closes (high = low = close) and volumes.
fn minute_bars(closes: &[f64], volumes: &[f64]) -> Vec<BarInput> {
    closes
        .iter()
        .zip(volumes)
        .enumerate()
        .map(|(i, (&c, &v))| flat(OPEN + 60 * i as u32, c, v))
        .collect()
}

/// Runs `bars` through `state` and returns the rows.
fn rows(state: &mut FeatureState, bars: &[BarInput]) -> Vec<[f32; N_FEATURES]> {
    bars.iter()
        .map(|b| {
            let mut out = [f32::NAN; N_FEATURES];
            state.update(b, &mut out);
            out
        })
        .collect()
}

/// One fresh day of `bars` closing at 16:00.
fn one_day(bars: &[BarInput]) -> Vec<[f32; N_FEATURES]> {
    let mut state = FeatureState::new();
    state.begin_day(day(CLOSE));
    rows(&mut state, bars)
}

/// `got` is `want` rounded to f32 (half an f32 ulp is 6e-8 relative), allowing a little
/// f64 rounding around zero.
#[track_caller]
fn assert_f32(got: f32, want: f64, what: &str) {
    let err = (f64::from(got) - want).abs();
    assert!(
        err <= 1.2e-7 * want.abs() + 1e-12,
        "{what}: got {got}, want {want} (error {err:e})"
    );
}

#[track_caller]
fn assert_neutral(row: &[f32; N_FEATURES], name: &str, what: &str) {
    let i = idx(name);
    assert_eq!(
        row[i], FEATURE_NEUTRAL[i],
        "{what}: {name} should be neutral"
    );
}

#[test]
fn names_are_unique_and_indexed() {
    assert_eq!(FEATURE_NAMES.len(), N_FEATURES);
    for (i, name) in FEATURE_NAMES.iter().enumerate() {
        assert_eq!(feature_index(name), Some(i), "{name}");
        assert!(
            FEATURE_NAMES[i + 1..].iter().all(|other| other != name),
            "{name} appears twice"
        );
    }
    assert_eq!(feature_index("no_such_feature"), None);
    assert_eq!(feature_index(""), None);
    assert_eq!(FEATURE_SET, "v1");
    assert_eq!(FEATURE_VERSION, 1);
    // The neutral values the contract names.
    assert_eq!(FEATURE_NEUTRAL[idx("rsi_14")], 0.5);
    assert_eq!(FEATURE_NEUTRAL[idx("range_pos")], 0.5);
    assert_eq!(FEATURE_NEUTRAL[idx("vol_ratio_20")], 1.0);
    assert_eq!(FEATURE_NEUTRAL[idx("ret_1")], 0.0);
}

// ---------------------------------------------------------------- hand-computed cases

#[test]
fn returns_by_hand() {
    // c[t] = 100 · 1.01^t, so ln(c[t] / c[t-k]) = k · ln 1.01 = k · 0.009950330853168092.
    let closes: Vec<f64> = (0..62).map(|t| 100.0 * 1.01f64.powi(t)).collect();
    let r = one_day(&minute_bars(&closes, &vec![1000.0; 62]));
    let ln_1_01 = 0.009950330853168092;
    for (name, k) in [("ret_1", 1), ("ret_5", 5), ("ret_15", 15), ("ret_60", 60)] {
        // Fewer than k + 1 closes: neutral; from bar k on: defined.
        assert_neutral(&r[k - 1], name, "last bar before the window fills");
        for (t, row) in r.iter().enumerate().skip(k) {
            assert_f32(
                row[idx(name)],
                k as f64 * ln_1_01,
                &format!("{name} at bar {t}"),
            );
        }
    }
    // [100, 110]: ret_1 = ln 1.1 = 0.09531017980432493.
    let r = one_day(&minute_bars(&[100.0, 110.0], &[1.0, 1.0]));
    assert_neutral(&r[0], "ret_1", "first bar");
    assert_f32(
        r[1][idx("ret_1")],
        0.09531017980432493,
        "ret_1 of 100 -> 110",
    );
}

#[test]
fn sma_bollinger_and_volume_ratio_by_hand() {
    // Closes and volumes 1, 2, ..., 20, then close 21 with volume 0.
    let closes: Vec<f64> = (1..=21).map(f64::from).collect();
    let mut volumes: Vec<f64> = (1..=20).map(f64::from).collect();
    volumes.push(0.0);
    let r = one_day(&minute_bars(&closes, &volumes));
    for name in ["sma_ratio_20", "bb_pos_20", "vol_ratio_20"] {
        assert_neutral(&r[18], name, "19 bars");
    }
    // Bar 19 (c = 20): SMA = 210 / 20 = 10.5, so 20 / 10.5 - 1 = 0.9047619047619047.
    assert_f32(
        r[19][idx("sma_ratio_20")],
        0.9047619047619047,
        "sma_ratio_20 of 1..20",
    );
    // Population variance of 1..20 is (20² - 1) / 12 = 33.25, std 5.766281297335398;
    // (20 - 10.5) / (2 · 5.766281297335398) = 0.823754471047914.
    assert_f32(
        r[19][idx("bb_pos_20")],
        0.823754471047914,
        "bb_pos_20 of 1..20",
    );
    // Volume 20 over mean volume 10.5 = 1.9047619047619047.
    assert_f32(
        r[19][idx("vol_ratio_20")],
        20.0 / 10.5,
        "vol_ratio_20 of 1..20",
    );
    // Bar 20 (c = 21): the window slides to 2..21, mean 11.5: 21 / 11.5 - 1 =
    // 0.826086956521739; same spread, so bb = 9.5 / (2 · 5.766281297335398) again. Volume 0
    // over mean (210 - 1 + 0) / 20 = 10.45 is 0.
    assert_f32(
        r[20][idx("sma_ratio_20")],
        0.826086956521739,
        "sma_ratio_20 of 2..21",
    );
    assert_f32(
        r[20][idx("bb_pos_20")],
        0.823754471047914,
        "bb_pos_20 of 2..21",
    );
    assert_eq!(
        r[20][idx("vol_ratio_20")],
        0.0,
        "vol_ratio_20 of a zero-volume bar"
    );

    // Closes alternating 9, 11: mean 10 and population std exactly 1 (a sample std,
    // ddof = 1, would be sqrt(20/19) and give 0.4873). Bar 19 closes at 11:
    // bb = (11 - 10) / (2 · 1) = 0.5, sma_ratio = 11 / 10 - 1 = 0.1; bar 20 closes at 9:
    // -0.5 and -0.1.
    let closes: Vec<f64> = (0..21)
        .map(|t| if t % 2 == 0 { 9.0 } else { 11.0 })
        .collect();
    let r = one_day(&minute_bars(&closes, &[5.0; 21]));
    assert_f32(r[19][idx("bb_pos_20")], 0.5, "bb_pos_20 with std 1");
    assert_f32(r[19][idx("sma_ratio_20")], 0.1, "sma_ratio_20 with mean 10");
    assert_f32(
        r[20][idx("bb_pos_20")],
        -0.5,
        "bb_pos_20 with std 1, low close",
    );
    assert_f32(
        r[20][idx("sma_ratio_20")],
        -0.1,
        "sma_ratio_20 with mean 10, low close",
    );
    // Constant volume: ratio 1.
    assert_f32(
        r[20][idx("vol_ratio_20")],
        1.0,
        "vol_ratio_20 of constant volume",
    );
}

#[test]
fn ema_and_macd_by_hand() {
    // Closes [1, 2, 3]. EMA12 (alpha 2/13), seeded with 1: 1, 1 + 2/13 = 15/13,
    // 15/13 + 2/13 · (3 - 15/13) = 243/169. EMA26 (alpha 2/27): 1, 29/27,
    // 29/27 + 2/27 · (3 - 29/27) = 887/729.
    let r = one_day(&minute_bars(&[1.0, 2.0, 3.0], &[1.0; 3]));
    let (e12, e26, hist) = (idx("ema_ratio_12"), idx("ema_ratio_26"), idx("macd_hist"));
    assert_eq!(r[0][e12], 0.0, "EMA seeded with the first close");
    assert_eq!(r[0][e26], 0.0, "EMA seeded with the first close");
    // 2 / (15/13) - 1 = 11/15; 3 / (243/169) - 1 = 88/81.
    assert_f32(r[1][e12], 11.0 / 15.0, "ema_ratio_12 at bar 1");
    assert_f32(r[2][e12], 88.0 / 81.0, "ema_ratio_12 at bar 2");
    // 2 / (29/27) - 1 = 25/29; 3 / (887/729) - 1 = 1300/887.
    assert_f32(r[1][e26], 25.0 / 29.0, "ema_ratio_26 at bar 1");
    assert_f32(r[2][e26], 1300.0 / 887.0, "ema_ratio_26 at bar 2");
    // MACD: 0, 15/13 - 29/27 = 28/351, 243/169 - 887/729 = 27244/123201. Signal (alpha
    // 0.2) seeded with the first MACD (0): 0, 0.2 · 28/351 = 28/1755,
    // 0.8 · 28/1755 + 0.2 · 27244/123201 = 175532/3080025.
    // hist / c: 0; (28/351 - 28/1755) / 2 = 56/1755; (27244/123201 - 175532/3080025) / 3
    // = 505568/9240075.
    assert_eq!(r[0][hist], 0.0, "macd_hist at bar 0");
    assert_f32(r[1][hist], 56.0 / 1755.0, "macd_hist at bar 1");
    assert_f32(r[2][hist], 505_568.0 / 9_240_075.0, "macd_hist at bar 2");
}

#[test]
fn rsi_by_hand() {
    // Closes 10, 11, 10.5, 12: changes +1, -0.5, +1.5; Wilder alpha 1/14, seeded with the
    // first change.
    let r = one_day(&minute_bars(&[10.0, 11.0, 10.5, 12.0], &[1.0; 4]));
    let rsi = idx("rsi_14");
    assert_neutral(&r[0], "rsi_14", "first bar");
    // Bar 1: gain 1, loss 0: avg_loss == 0 with gains gives RSI 100 -> 1.0.
    assert_eq!(r[1][rsi], 1.0, "only gains so far");
    // Bar 2: gain 1 + (0 - 1)/14 = 13/14, loss 0 + 0.5/14 = 1/28;
    // RSI/100 = (13/14) / (13/14 + 1/28) = 26/27.
    assert_f32(r[2][rsi], 26.0 / 27.0, "rsi_14 at bar 2");
    // Bar 3: gain 13/14 · 13/14 + 1.5/14 = 190/196, loss 1/28 · 13/14 = 13/392;
    // RSI/100 = 380 / (380 + 13) = 380/393.
    assert_f32(r[3][rsi], 380.0 / 393.0, "rsi_14 at bar 3");

    // Only losses: RSI 0. No change at all: undefined, neutral 0.5.
    let r = one_day(&minute_bars(&[10.0, 9.0, 8.0], &[1.0; 3]));
    assert_eq!(r[2][rsi], 0.0, "only losses");
    let r = one_day(&minute_bars(&[10.0, 10.0, 10.0], &[1.0; 3]));
    assert_eq!(r[2][rsi], 0.5, "no price change");
}

#[test]
fn atr_by_hand() {
    let bars = [
        bar(OPEN, 11.0, 9.0, 10.0, 1.0),
        bar(OPEN + 60, 13.0, 12.0, 12.5, 1.0),
        bar(OPEN + 120, 9.0, 8.0, 8.5, 1.0),
    ];
    let r = one_day(&bars);
    let atr = idx("atr_ratio_14");
    // Bar 0: TR = h - l = 2 (no previous close), ATR = 2, / 10 = 0.2.
    assert_f32(r[0][atr], 0.2, "atr_ratio_14 at bar 0");
    // Bar 1: TR = max(13 - 12, |13 - 10|, |12 - 10|) = 3; ATR = 2 + (3 - 2)/14 = 29/14;
    // / 12.5 = 0.1657142857142857.
    assert_f32(r[1][atr], 29.0 / 14.0 / 12.5, "atr_ratio_14 at bar 1");
    // Bar 2 gaps down: TR = max(1, |9 - 12.5|, |8 - 12.5|) = 4.5;
    // ATR = 29/14 · 13/14 + 4.5/14 = 440/196; / 8.5 = 0.26410564225690275.
    assert_f32(r[2][atr], 440.0 / 196.0 / 8.5, "atr_ratio_14 at bar 2");
}

#[test]
fn vwap_by_hand_and_reset_each_day() {
    let mut state = FeatureState::new();
    state.begin_day(day(CLOSE));
    let r = rows(
        &mut state,
        &[
            bar(OPEN, 12.0, 9.0, 10.0, 100.0),
            bar(OPEN + 60, 12.0, 10.0, 11.0, 300.0),
            bar(OPEN + 120, 10.0, 8.0, 9.0, 0.0),
        ],
    );
    let vwap = idx("vwap_dev");
    // Bar 0: typical price (12 + 9 + 10)/3 = 31/3 is the VWAP; 10 / (31/3) - 1 = -1/31.
    assert_f32(r[0][vwap], -1.0 / 31.0, "vwap_dev at bar 0");
    // Bar 1: typical 11; VWAP = (31/3 · 100 + 11 · 300) / 400 = 65/6; 11 / (65/6) - 1 = 1/65.
    assert_f32(r[1][vwap], 1.0 / 65.0, "vwap_dev at bar 1");
    // Bar 2 has no volume: VWAP stays 65/6; 9 / (65/6) - 1 = -11/65.
    assert_f32(r[2][vwap], -11.0 / 65.0, "vwap_dev after a zero-volume bar");

    // Next day: a zero-volume first bar has no VWAP (yesterday's volume does not count).
    state.begin_day(day(CLOSE));
    let r = rows(
        &mut state,
        &[
            bar(OPEN, 21.0, 19.0, 20.0, 0.0),
            bar(OPEN + 60, 23.0, 20.0, 21.0, 50.0),
        ],
    );
    assert_neutral(&r[0], "vwap_dev", "no volume yet today");
    // Typical (23 + 20 + 21)/3 = 64/3: 21 / (64/3) - 1 = -1/64.
    assert_f32(r[1][vwap], -1.0 / 64.0, "vwap_dev on day 2");
}

#[test]
fn range_position_by_hand() {
    let mut state = FeatureState::new();
    state.begin_day(day(CLOSE));
    let r = rows(
        &mut state,
        &[
            bar(OPEN, 11.0, 9.0, 10.0, 1.0),
            bar(OPEN + 60, 12.0, 10.0, 11.5, 1.0),
            bar(OPEN + 120, 10.0, 8.0, 8.5, 1.0),
        ],
    );
    let pos = idx("range_pos");
    // (10 - 9) / (11 - 9) = 0.5; (11.5 - 9) / (12 - 9) = 5/6; (8.5 - 8) / (12 - 8) = 0.125.
    assert_f32(r[0][pos], 0.5, "range_pos at bar 0");
    assert_f32(r[1][pos], 2.5 / 3.0, "range_pos at bar 1");
    assert_f32(r[2][pos], 0.125, "range_pos at bar 2");
    // A new day only knows today's range: (19.75 - 19) / (20 - 19) = 0.75.
    state.begin_day(day(CLOSE));
    let r = rows(&mut state, &[bar(OPEN, 20.0, 19.0, 19.75, 1.0)]);
    assert_f32(r[0][pos], 0.75, "range_pos on day 2");
    // Zero range: 0.5.
    state.begin_day(day(CLOSE));
    let r = rows(&mut state, &[flat(OPEN, 5.0, 1.0)]);
    assert_eq!(r[0][pos], 0.5, "zero range");
}

#[test]
fn gap_uses_previous_regular_close() {
    let gap = idx("gap_prev_close");
    let mut state = FeatureState::new();
    state.begin_day(day(CLOSE));
    assert_eq!(state.prev_close(), None);
    // Day 1: the 15:59 bar (c = 102) is the last one starting before 16:00; the 16:00 and
    // 19:59 after-hours bars do not count.
    let r = rows(
        &mut state,
        &[
            flat(57_480, 100.0, 1.0),
            flat(CLOSE_1559, 102.0, 1.0),
            flat(CLOSE, 105.0, 1.0),
            flat(71_940, 99.0, 1.0),
        ],
    );
    for row in &r {
        assert_neutral(row, "gap_prev_close", "first day has no previous close");
    }
    // Day 2 closes early at 13:00.
    state.begin_day(day(EARLY_CLOSE));
    assert_eq!(state.prev_close(), Some(102.0));
    let r = rows(
        &mut state,
        &[
            flat(14_400, 96.9, 1.0),       // 04:00 pre-market: 96.9 / 102 - 1 = -0.05
            flat(OPEN, 104.04, 1.0),       // 104.04 / 102 - 1 = 0.02
            flat(46_740, 110.0, 1.0),      // 12:59, the last regular bar
            flat(EARLY_CLOSE, 120.0, 1.0), // 13:00, after the early close
        ],
    );
    assert_f32(r[0][gap], 96.9 / 102.0 - 1.0, "pre-market gap");
    assert_f32(r[1][gap], 104.04 / 102.0 - 1.0, "open gap");
    assert_f32(r[3][gap], 120.0 / 102.0 - 1.0, "after-hours gap");
    // Day 3: the reference is day 2's 12:59 close. Day 3 only trades after hours, so day 4
    // keeps the same reference (the most recent regular close).
    state.begin_day(day(CLOSE));
    assert_eq!(state.prev_close(), Some(110.0));
    let r = rows(&mut state, &[flat(61_200, 130.0, 1.0)]);
    assert_f32(r[0][gap], 130.0 / 110.0 - 1.0, "gap on day 3");
    state.begin_day(day(CLOSE));
    assert_eq!(state.prev_close(), Some(110.0));
    assert_eq!(state.bars_seen(), 9);
}

#[test]
fn time_features_by_hand() {
    let (sin, cos, mins) = (idx("tod_sin"), idx("tod_cos"), idx("mins_to_close"));
    let mut state = FeatureState::new();
    let mut out = [0.0f32; N_FEATURES];
    let mut at = |state: &mut FeatureState, sec: u32| {
        state.update(&flat(sec, 10.0, 1.0), &mut out);
        out
    };
    state.begin_day(day(CLOSE));
    // 15:59 with the close at 16:00: 60 s / 60 / 390 = 1/390.
    assert_f32(at(&mut state, CLOSE_1559)[mins], 1.0 / 390.0, "15:59");
    // 09:30: 390 minutes to go, 1.0.
    assert_f32(at(&mut state, OPEN)[mins], 1.0, "09:30");
    // 06:00 = a quarter day: sin(π/2) = 1, cos(π/2) = 0.
    let r = at(&mut state, 21_600);
    assert_f32(r[sin], 1.0, "tod_sin at 06:00");
    assert_f32(r[cos], 0.0, "tod_cos at 06:00");
    // Midnight (0, 1), noon (0, -1), 18:00 (-1, 0).
    for (sec, s, c) in [(0, 0.0, 1.0), (43_200, 0.0, -1.0), (64_800, -1.0, 0.0)] {
        let r = at(&mut state, sec);
        assert_f32(r[sin], s, &format!("tod_sin at {sec}"));
        assert_f32(r[cos], c, &format!("tod_cos at {sec}"));
    }
    // Early close at 13:00: 09:30 is 210 minutes before, 210/390; 13:00 is 0; 14:00 is
    // 60 minutes after, -60/390.
    state.begin_day(day(EARLY_CLOSE));
    assert_f32(
        at(&mut state, OPEN)[mins],
        210.0 / 390.0,
        "09:30 on an early-close day",
    );
    assert_eq!(
        at(&mut state, EARLY_CLOSE)[mins],
        0.0,
        "13:00 on an early-close day"
    );
    assert_f32(
        at(&mut state, 50_400)[mins],
        -60.0 / 390.0,
        "14:00 on an early-close day",
    );
}

#[test]
fn halted_flag() {
    let mut halted = flat(OPEN + 60, 10.0, 0.0);
    halted.halted = true;
    let r = one_day(&[flat(OPEN, 10.0, 5.0), halted, flat(OPEN + 120, 10.0, 5.0)]);
    let h = idx("halted");
    assert_eq!([r[0][h], r[1][h], r[2][h]], [0.0, 1.0, 0.0]);
}

// ---------------------------------------------------------------- pandas reference

/// Reference rows for the 80-bar series of [`reference_bars`], produced with pandas 3.1.1 /
/// numpy 2.4.6 by this code (NaN, i.e. undefined, replaced by the neutral values):
///
/// ```python
/// import numpy as np, pandas as pd
/// t = np.arange(80)
/// c = pd.Series(100 + 10*np.sin(t/7) + t*0.1)
/// h = c + 0.5; l = c - 0.7; v = pd.Series(1000.0 + 37*(t % 11))
/// day = pd.Series(np.where(t < 50, 0, 1))
/// sec = pd.Series(np.where(t < 50, 34200 + 60*t, 34200 + 60*(t-50)))
/// f = pd.DataFrame(index=t)
/// for k in (1, 5, 15, 60):
///     f[f"ret_{k}"] = np.log(c / c.shift(k))
/// sma = c.rolling(20).mean(); std = c.rolling(20).std(ddof=0)
/// f["sma_ratio_20"] = c / sma - 1
/// e12 = c.ewm(span=12, adjust=False).mean(); e26 = c.ewm(span=26, adjust=False).mean()
/// f["ema_ratio_12"] = c / e12 - 1
/// f["ema_ratio_26"] = c / e26 - 1
/// d = c.diff()
/// ag = d.clip(lower=0).ewm(alpha=1/14, adjust=False).mean()
/// al = (-d).clip(lower=0).ewm(alpha=1/14, adjust=False).mean()
/// f["rsi_14"] = (100 - 100 / (1 + ag / al)) / 100
/// macd = e12 - e26; sig = macd.ewm(span=9, adjust=False).mean()
/// f["macd_hist"] = (macd - sig) / c
/// pc = c.shift(1)
/// tr = pd.concat([h - l, (h - pc).abs(), (l - pc).abs()], axis=1).max(axis=1)
/// f["atr_ratio_14"] = tr.ewm(alpha=1/14, adjust=False).mean() / c
/// f["bb_pos_20"] = (c - sma) / (2 * std)
/// tp = (h + l + c) / 3
/// vwap = (tp * v).groupby(day).cumsum() / v.groupby(day).cumsum()
/// f["vwap_dev"] = c / vwap - 1
/// f["vol_ratio_20"] = v / v.rolling(20).mean()
/// hi = h.groupby(day).cummax(); lo = l.groupby(day).cummin()
/// f["range_pos"] = (c - lo) / (hi - lo)
/// f["gap_prev_close"] = np.where(day == 1, c / c[49] - 1, np.nan)
/// f["tod_sin"] = np.sin(2*np.pi*sec/86400)
/// f["tod_cos"] = np.cos(2*np.pi*sec/86400)
/// f["mins_to_close"] = (57600 - sec) / 60 / 390
/// f["halted"] = 0.0
/// neutral = {"rsi_14": 0.5, "vol_ratio_20": 1.0, "range_pos": 0.5}
/// f = f.fillna({col: neutral.get(col, 0.0) for col in f.columns})
/// for r in [0, 1, 2, 5, 14, 15, 19, 20, 33, 49, 50, 51, 60, 61, 79]:
///     print(f"({r}, [" + ", ".join(f"{x:.12e}" for x in f.loc[r]) + "]),")
/// ```
#[rustfmt::skip]
const PANDAS_ROWS: [(usize, [f64; N_FEATURES]); 15] = [
    (0, [0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 5.000000000000e-01, 0.000000000000e+00, 1.200000000000e-02, 0.000000000000e+00, 6.671114076051e-04, 1.000000000000e+00, 5.833333333333e-01, 0.000000000000e+00, 6.087614290087e-01, -7.933533402912e-01, 1.000000000000e+00, 0.000000000000e+00]),
    (1, [1.512225315747e-02, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 1.286283970341e-02, 1.409258748497e-02, 1.000000000000e+00, 9.578065191075e-04, 1.239943713012e-02, 0.000000000000e+00, 8.089512307586e-03, 1.000000000000e+00, 8.164273508189e-01, 0.000000000000e+00, 6.052939880429e-01, -7.960020025346e-01, 9.974358974359e-01, 0.000000000000e+00]),
    (2, [1.461545076198e-02, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 2.340192078541e-02, 2.681535888122e-02, 1.000000000000e+00, 2.409842025388e-03, 1.272975541153e-02, 0.000000000000e+00, 1.512709823395e-02, 1.000000000000e+00, 8.814724494004e-01, 0.000000000000e+00, 6.018150231520e-01, -7.986355100473e-01, 9.948717948718e-01, 0.000000000000e+00]),
    (5, [1.167392725962e-02, 6.813310573094e-02, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 4.202764627620e-02, 5.506088741130e-02, 1.000000000000e+00, 6.947032083023e-03, 1.323328285381e-02, 0.000000000000e+00, 3.215304518149e-02, 1.000000000000e+00, 9.393996613278e-01, 0.000000000000e+00, 5.913096483636e-01, -8.064446042675e-01, 9.871794871795e-01, 0.000000000000e+00]),
    (14, [-3.612229245263e-03, -3.087534539021e-05, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 1.573568927691e-02, 4.318032188468e-02, 9.571659474217e-01, 4.146358632775e-03, 1.214557698825e-02, 0.000000000000e+00, 2.597238759875e-02, 1.000000000000e+00, 9.099980558569e-01, 0.000000000000e+00, 5.591929034707e-01, -8.290375725550e-01, 9.641025641026e-01, 0.000000000000e+00]),
    (15, [-5.309458627164e-03, -8.977675559606e-03, 9.447229303843e-02, 0.000000000000e+00, 0.000000000000e+00, 8.749652134308e-03, 3.476993743940e-02, 9.154328710436e-01, 2.445880325458e-03, 1.217325738578e-02, 0.000000000000e+00, 1.927299371307e-02, 1.000000000000e+00, 8.624286814357e-01, 0.000000000000e+00, 5.555702330196e-01, -8.314696123025e-01, 9.615384615385e-01, 0.000000000000e+00]),
    (19, [-1.081869043425e-02, -4.109581788994e-02, 2.226755304348e-03, 0.000000000000e+00, -1.562567968734e-02, -2.008608407724e-02, -4.942537789770e-03, 6.770433431969e-01, -5.383188339721e-03, 1.343976295921e-02, -2.595396015499e-01, -1.602265548269e-02, 1.109256643985e+00, 5.483101653252e-01, 0.000000000000e+00, 5.409744713680e-01, -8.410390129644e-01, 9.512820512821e-01, 0.000000000000e+00]),
    (20, [-1.174229247460e-02, -4.752865173738e-02, -2.118946442988e-02, 0.000000000000e+00, -2.928233429937e-02, -2.680519870028e-02, -1.535073708645e-02, 6.161521360650e-01, -7.365982353771e-03, 1.394793428841e-02, -5.624317392310e-01, -2.603075658902e-02, 1.124894514768e+00, 4.476662512097e-01, 0.000000000000e+00, 5.372996083468e-01, -8.433914458129e-01, 9.487179487179e-01, 0.000000000000e+00]),
    (33, [8.930359165820e-06, -2.049545709581e-02, -1.388545095474e-01, 0.000000000000e+00, -7.501629788804e-02, -3.467987483600e-02, -6.622649683953e-02, 2.723831414839e-01, -1.062699685714e-02, 1.635893953802e-02, -6.294444041536e-01, -9.834277662726e-02, 8.347593806085e-01, 3.688437916421e-02, 0.000000000000e+00, 4.886212414970e-01, -8.724960070728e-01, 9.153846153846e-01, 0.000000000000e+00]),
    (49, [1.118886006986e-02, 6.528240899029e-02, 1.757438151031e-01, 0.000000000000e+00, 1.168598443178e-01, 6.212353537881e-02, 8.839398291951e-02, 8.313458272386e-01, 1.605429285816e-02, 1.520481921684e-02, 9.468461766645e-01, 8.447161583430e-02, 1.004705583111e+00, 9.741877946942e-01, 0.000000000000e+00, 4.265687399015e-01, -9.044551454544e-01, 8.743589743590e-01, 0.000000000000e+00]),
    (50, [9.876779050709e-03, 6.067563488698e-02, 1.812861328280e-01, 0.000000000000e+00, 1.174880409534e-01, 6.080672593125e-02, 9.117916238491e-02, 8.432675515557e-01, 1.570698398602e-02, 1.499925611102e-02, 8.975925791976e-01, 5.925419369079e-04, 1.039336593664e+00, 5.833333333333e-01, 9.925715411432e-03, 6.087614290087e-01, -7.933533402912e-01, 1.000000000000e+00, 0.000000000000e+00]),
    (51, [8.421486296285e-03, 5.509502590623e-02, 1.833226262628e-01, 0.000000000000e+00, 1.158465800200e-01, 5.841583963240e-02, 9.228337179660e-02, 8.529031019205e-01, 1.508095776066e-02, 1.472467339143e-02, 8.504261633701e-01, 4.740117448139e-03, 1.074186254853e+00, 7.676647833847e-01, 1.846670441676e-02, 6.052939880429e-01, -7.960020025346e-01, 9.974358974359e-01, 0.000000000000e+00]),
    (60, [-6.665425616765e-03, -1.716010694987e-02, 6.915455206804e-02, 1.269398044124e-01, 2.640624685570e-02, 4.442320976295e-03, 3.824800695119e-02, 7.266194263814e-01, 2.021019384066e-04, 1.294435527497e-02, 2.898322852707e-01, -7.674674479033e-03, 1.004705583111e+00, 4.022108407795e-01, 1.852519754035e-02, 5.735764363510e-01, -8.191520442890e-01, 9.743589743590e-01, 0.000000000000e+00]),
    (61, [-8.072290970090e-03, -2.517726592487e-02, 4.708016582091e-02, 1.037452602848e-01, 1.236318632773e-02, -3.075958619460e-03, 2.762465136973e-02, 6.667644404544e-01, -2.006251490400e-03, 1.314006654070e-02, 1.556308044475e-01, -1.428106459367e-02, 1.039336593664e+00, 1.808550444892e-01, 1.033646118278e-02, 5.699967625963e-01, -8.216469379422e-01, 9.717948717949e-01, 0.000000000000e+00]),
    (79, [4.175761753514e-03, 3.241851901006e-04, -1.048095864810e-01, -7.564938634616e-02, -5.100339091038e-02, -1.877520680589e-02, -4.620517434156e-02, 2.481917833486e-01, -7.252342399229e-03, 1.536900422236e-02, -4.844422113584e-01, -8.320068874080e-02, 9.021040695477e-01, 6.957894825392e-02, -1.179861858100e-01, 5.037739770455e-01, -8.638355052044e-01, 9.256410256410e-01, 0.000000000000e+00]),
];

/// The reference series: two days (bars 0..50 and 50..80) of one-minute bars from 09:30.
fn reference_bars() -> (Vec<BarInput>, Vec<BarInput>) {
    let bar_at = |t: usize| {
        let tf = t as f64;
        let c = 100.0 + 10.0 * (tf / 7.0).sin() + tf * 0.1;
        let minute = if t < 50 { t } else { t - 50 } as u32;
        BarInput {
            sec_of_day: OPEN + 60 * minute,
            open: c,
            high: c + 0.5,
            low: c - 0.7,
            close: c,
            volume: 1000.0 + 37.0 * (t % 11) as f64,
            halted: false,
        }
    };
    (
        (0..50).map(bar_at).collect(),
        (50..80).map(bar_at).collect(),
    )
}

#[test]
fn matches_pandas_reference() {
    let (day1, day2) = reference_bars();
    let mut state = FeatureState::new();
    let mut columns = compute_day(&mut state, day(CLOSE), &day1);
    for (column, more) in columns
        .iter_mut()
        .zip(compute_day(&mut state, day(CLOSE), &day2))
    {
        column.extend(more);
    }
    for (t, want) in PANDAS_ROWS {
        for (i, name) in FEATURE_NAMES.iter().enumerate() {
            let got = f64::from(columns[i][t]);
            // f32 rounding (6e-8 relative) plus the 13 printed digits of the reference.
            let tol = 2e-7 * want[i].abs() + 1e-10;
            assert!(
                (got - want[i]).abs() <= tol,
                "{name} at bar {t}: got {got}, pandas {}",
                want[i]
            );
        }
    }
}

// ---------------------------------------------------------------- properties

/// A multi-day random walk with pre-market, regular and after-hours bars, an early close,
/// halts with zero volume and a one-bar day. Returns (context, bars) per day.
fn random_days(seed: u64) -> Vec<(DayContext, Vec<BarInput>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let step = Normal::<f64>::new(0.0, 0.002).unwrap();
    let volume = LogNormal::<f64>::new(8.0, 1.0).unwrap();
    // (first bar start, bar count, regular close)
    let plan = [
        (57_000, 40, CLOSE),       // 15:50 .. 16:29, across the close
        (OPEN - 600, 75, CLOSE),   // 09:20 .. 10:34, across the open
        (46_500, 12, EARLY_CLOSE), // 12:55 .. 13:06, across an early close
        (OPEN, 1, CLOSE),          // a single bar
        (14_400, 90, CLOSE),       // pre-market
        (OPEN, 33, CLOSE),
    ];
    let mut close = 50.0f64;
    plan.iter()
        .map(|&(start, count, regular_close)| {
            let bars = (0..count)
                .map(|i| {
                    let halted = rng.random_bool(0.05);
                    let open = close;
                    if !halted {
                        close *= f64::exp(step.sample(&mut rng));
                    }
                    let wick = close * 0.001 * rng.random::<f64>();
                    BarInput {
                        sec_of_day: start + 60 * i,
                        open,
                        high: open.max(close) + wick,
                        low: open.min(close) - wick,
                        close,
                        volume: if halted {
                            0.0
                        } else {
                            volume.sample(&mut rng).round()
                        },
                        halted,
                    }
                })
                .collect();
            (day(regular_close), bars)
        })
        .collect()
}

/// Row-major features of `days`, bar by bar through `update`.
fn all_rows(days: &[(DayContext, Vec<BarInput>)]) -> Vec<[f32; N_FEATURES]> {
    let mut state = FeatureState::new();
    let mut out = Vec::new();
    for (ctx, bars) in days {
        state.begin_day(*ctx);
        out.extend(rows(&mut state, bars));
    }
    out
}

#[test]
fn prefix_features_equal_full_features_bit_for_bit() {
    let days = random_days(7);
    let full = all_rows(&days);
    let total = full.len();
    assert_eq!(total, days.iter().map(|(_, b)| b.len()).sum::<usize>());
    // Every prefix length, so every cut point (mid-day, at a day boundary, after the
    // one-bar day) is covered. Prefixes go through compute_day, the full run through
    // update, so the two entry points are also shown to agree.
    for cut in 1..=total {
        let mut state = FeatureState::new();
        let mut seen = 0;
        for (ctx, bars) in &days {
            if seen == cut {
                break;
            }
            let take = bars.len().min(cut - seen);
            let columns = compute_day(&mut state, *ctx, &bars[..take]);
            for (j, want) in full[seen..seen + take].iter().enumerate() {
                for i in 0..N_FEATURES {
                    assert_eq!(
                        columns[i][j].to_bits(),
                        want[i].to_bits(),
                        "{} at bar {} differs on the {cut}-bar prefix: {} vs {}",
                        FEATURE_NAMES[i],
                        seen + j,
                        columns[i][j],
                        want[i]
                    );
                }
            }
            seen += take;
        }
        assert_eq!(state.bars_seen(), cut as u64);
    }
}

#[test]
fn checkpoint_resumes_bit_for_bit() {
    let days = random_days(11);
    let full = all_rows(&days);
    let flat_days: Vec<(usize, DayContext, &BarInput)> = days
        .iter()
        .enumerate()
        .flat_map(|(d, (ctx, bars))| bars.iter().map(move |b| (d, *ctx, b)))
        .collect();
    for cut in (0..=flat_days.len())
        .step_by(7)
        .chain([1, 40, 41, flat_days.len()])
    {
        // Run to the cut, checkpoint through JSON, resume on the restored state.
        let mut state = FeatureState::new();
        let mut day_index = None;
        let mut out = [0.0f32; N_FEATURES];
        let mut got = Vec::new();
        let mut feed = |state: &mut FeatureState, day_index: &mut Option<usize>, k: usize| {
            let (d, ctx, b) = flat_days[k];
            if *day_index != Some(d) {
                state.begin_day(ctx);
                *day_index = Some(d);
            }
            state.update(b, &mut out);
            out
        };
        for k in 0..cut {
            got.push(feed(&mut state, &mut day_index, k));
        }
        let json = serde_json::to_string(&state).unwrap();
        let mut restored: FeatureState = serde_json::from_str(&json).unwrap();
        assert_eq!(restored, state, "restored state at cut {cut}");
        for k in cut..flat_days.len() {
            got.push(feed(&mut restored, &mut day_index, k));
        }
        for (t, (g, w)) in got.iter().zip(&full).enumerate() {
            for i in 0..N_FEATURES {
                assert_eq!(
                    g[i].to_bits(),
                    w[i].to_bits(),
                    "{} at bar {t} after a checkpoint at {cut}",
                    FEATURE_NAMES[i]
                );
            }
        }
    }
}

#[test]
fn checkpoint_from_another_version_or_corrupt_is_refused() {
    let mut state = FeatureState::new();
    compute_day(&mut state, day(CLOSE), &reference_bars().0);
    let value = serde_json::to_value(&state).unwrap();

    let mut other = value.clone();
    other["feature_version"] = serde_json::json!(FEATURE_VERSION + 1);
    let err = serde_json::from_value::<FeatureState>(other)
        .err()
        .unwrap_or_else(|| panic!("a checkpoint of another version was accepted"));
    assert!(err.to_string().contains("feature_version 2"), "{err}");

    let mut short = value.clone();
    short["closes"] = serde_json::json!([1, 2, 3]);
    let err = serde_json::from_value::<FeatureState>(short)
        .err()
        .unwrap_or_else(|| panic!("a checkpoint with a short ring was accepted"));
    assert!(err.to_string().contains("closes"), "{err}");
}

#[test]
fn degenerate_input_gives_finite_neutral_features() {
    // 80 bars at a constant 0.1 (not exact in binary: a summed mean would be off by an
    // ulp) with zero volume.
    let bars = minute_bars(&[0.1; 80], &[0.0; 80]);
    let r = one_day(&bars);
    for (t, row) in r.iter().enumerate() {
        for (i, name) in FEATURE_NAMES.iter().enumerate() {
            assert!(row[i].is_finite(), "{name} at bar {t}");
        }
        for name in [
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
            "halted",
        ] {
            assert_neutral(row, name, &format!("constant price, zero volume, bar {t}"));
        }
    }

    // A single bar.
    let mut state = FeatureState::new();
    let columns = compute_day(&mut state, day(CLOSE), &[bar(OPEN, 10.5, 9.5, 10.0, 0.0)]);
    for (i, name) in FEATURE_NAMES.iter().enumerate() {
        assert_eq!(columns[i].len(), 1);
        assert!(columns[i][0].is_finite(), "{name} of a single bar");
    }
    // An empty day changes nothing.
    assert!(
        compute_day(&mut state, day(CLOSE), &[])
            .iter()
            .all(Vec::is_empty)
    );
    assert_eq!(state.bars_seen(), 1);

    // Input the validator should have rejected still gives finite output, and so do the
    // normal bars after it.
    let bad = [
        flat(OPEN, 0.0, 1.0),
        flat(OPEN + 60, f64::NAN, f64::NAN),
        flat(OPEN + 120, f64::INFINITY, -5.0),
        bar(OPEN + 180, 1e300, -1e300, 1e-300, 1e300),
        flat(OPEN + 240, 10.0, 100.0),
        flat(OPEN + 300, 11.0, 100.0),
    ];
    for (t, row) in one_day(&bad).iter().enumerate() {
        for (i, name) in FEATURE_NAMES.iter().enumerate() {
            assert!(row[i].is_finite(), "{name} at bad bar {t}: {}", row[i]);
        }
    }
}

#[test]
fn warm_up_continues_across_days() {
    // Day 1: 25 bars closing 100, 101, ..., 124. Day 2 opens at 130.
    let closes: Vec<f64> = (0..25).map(|t| 100.0 + f64::from(t)).collect();
    let mut state = FeatureState::new();
    compute_day(&mut state, day(CLOSE), &minute_bars(&closes, &[10.0; 25]));
    let columns = compute_day(&mut state, day(CLOSE), &[flat(OPEN, 130.0, 10.0)]);
    // The window holds day 1's last 19 closes 106..124 and 130: mean (2185 + 130) / 20 =
    // 115.75, so 130 / 115.75 - 1 = 0.12311015118790497.
    let sma = columns[idx("sma_ratio_20")][0];
    assert_ne!(sma, FEATURE_NEUTRAL[idx("sma_ratio_20")]);
    assert_f32(
        sma,
        130.0 / 115.75 - 1.0,
        "sma_ratio_20 on day 2's first bar",
    );
    // ret_5 reaches back into day 1: ln(130 / 120).
    assert_f32(
        columns[idx("ret_5")][0],
        (130.0f64 / 120.0).ln(),
        "ret_5 across days",
    );
    assert_f32(
        columns[idx("vol_ratio_20")][0],
        1.0,
        "vol_ratio_20 across days",
    );
    // The gap reference is day 1's last close (all its bars were regular).
    assert_eq!(state.prev_close(), Some(124.0));
    assert_eq!(state.bars_seen(), 26);
}

#[test]
fn no_drift_over_millions_of_bars() {
    // Two million bars of a random walk between 1 and 1000 with volumes up to ~1e9, then
    // 20 bars alternating 1.0 and 1.000001 with volume 1. A running sum would by now carry
    // an absolute error around 1e-8 in the price sum and 1e-3 in the volume sum, enough to
    // move bb_pos (whose std is 5e-7) and vol_ratio visibly.
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let step = Normal::<f64>::new(0.0, 0.01).unwrap();
    let volume = LogNormal::<f64>::new(14.0, 2.5).unwrap();
    let mut state = FeatureState::new();
    let mut out = [0.0f32; N_FEATURES];
    let mut log_price = 3.0f64;
    let mut bars = 0u64;
    while bars < 2_000_000 {
        state.begin_day(day(CLOSE));
        for i in 0..960 {
            log_price = (log_price + step.sample(&mut rng)).clamp(0.0, 1000f64.ln());
            let c = log_price.exp();
            let b = bar(
                14_400 + 60 * i,
                c * 1.001,
                c * 0.999,
                c,
                volume.sample(&mut rng),
            );
            state.update(&b, &mut out);
            bars += 1;
        }
    }
    state.begin_day(day(CLOSE));
    for i in 0..20 {
        let c = if i % 2 == 0 { 1.0 } else { 1.000_001 };
        state.update(&flat(OPEN + 60 * i, c, 1.0), &mut out);
    }
    // Last close 1.000001, mean 1.0000005, population std 5e-7: bb = 5e-7 / 1e-6 = 0.5;
    // sma_ratio = 1.000001 / 1.0000005 - 1.
    assert!(
        (f64::from(out[idx("bb_pos_20")]) - 0.5).abs() < 1e-5,
        "bb_pos_20 drifted: {}",
        out[idx("bb_pos_20")]
    );
    assert_f32(
        out[idx("sma_ratio_20")],
        1.000_001 / 1.000_000_5 - 1.0,
        "sma_ratio_20",
    );
    assert_eq!(out[idx("vol_ratio_20")], 1.0, "vol_ratio_20 drifted");
}
