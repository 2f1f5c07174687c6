//! Features v2 against independent truth: hand-computed values for every feature, pandas
//! references on an 80-bar series (v1's columns, and v2's with quotes, trade flow and a
//! benchmark), the truncation (causality) property for all features, checkpoint resume,
//! degenerate input, warm-up across days and long-run accuracy.

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
        regular_open_sec: OPEN,
        regular_close_sec: close_sec,
        weekday: 0,
    }
}

fn bar(sec_of_day: u32, high: f64, low: f64, close: f64, volume: f64) -> BarInput {
    BarInput::ohlcv(sec_of_day, close, high, low, close, volume)
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
    assert_eq!(FEATURE_SET, "v2");
    assert_eq!(FEATURE_VERSION, 2);
    assert_eq!(N_FEATURES, 39);
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

// ---------------------------------------------------------------- v2 by hand

fn quoted(sec: u32, close: f64, quote: Option<(f64, f64, f64, f64)>) -> BarInput {
    BarInput {
        quote: quote.map(|(bid, ask, bid_size, ask_size)| QuoteInput {
            bid,
            ask,
            bid_size,
            ask_size,
        }),
        ..flat(sec, close, 100.0)
    }
}

#[test]
fn microstructure_by_hand() {
    let mut state = FeatureState::new();
    state.begin_day(day(CLOSE));
    let r = rows(
        &mut state,
        &[
            quoted(OPEN, 10.01, Some((10.00, 10.02, 300.0, 100.0))),
            quoted(OPEN + 60, 10.01, Some((10.01, 10.02, 200.0, 150.0))),
            quoted(OPEN + 120, 10.01, None),
            quoted(OPEN + 180, 10.01, Some((10.00, 10.01, 100.0, 50.0))),
            // Crossed: no book, and not the next bar's order-flow reference.
            quoted(OPEN + 240, 10.01, Some((10.03, 10.02, 100.0, 50.0))),
            // No size on either side, as the previous usable quote's are not: order flow
            // from (10.00/10.01, 100/50): bid equal: +0 − 100; ask equal: −0 + 50 → −50/150.
            quoted(OPEN + 300, 10.01, Some((10.00, 10.01, 0.0, 0.0))),
            // Bid equal: +250 − 0; ask up: + 0 (the earlier ask size); over 330.
            quoted(OPEN + 360, 10.01, Some((10.00, 10.02, 250.0, 80.0))),
        ],
    );
    let (spread, micro, ofi) = (idx("spread_bps"), idx("microprice_dev_bps"), idx("ofi"));
    // Bar 0: mid 10.01, spread 0.02 / 10.01 · 1e4; microprice (10.00·100 + 10.02·300) /
    // 400 = 10.015, (10.015 / 10.01 − 1) · 1e4. No earlier quote today: no order flow.
    assert_f32(r[0][spread], 0.02 / 10.01 * 1e4, "spread_bps");
    assert_f32(
        r[0][micro],
        (10.015 / 10.01 - 1.0) * 1e4,
        "microprice_dev_bps",
    );
    assert_neutral(&r[0], "ofi", "the day's first quote");
    // Bar 1: bid up → +200; ask equal → −150 + 100; over 200 + 300 + 150 + 100 = 750.
    assert_f32(r[1][ofi], 150.0 / 750.0, "ofi, bid up and ask equal");
    // Bar 2 has no quote: nothing about the book.
    for name in ["spread_bps", "microprice_dev_bps", "ofi"] {
        assert_neutral(&r[2], name, "a bar without a quote");
    }
    // Bar 3 against bar 1's quote: bid down → −200; ask down → −50; over 500.
    assert_f32(r[3][ofi], -250.0 / 500.0, "ofi, both sides down");
    for name in ["spread_bps", "microprice_dev_bps", "ofi"] {
        assert_neutral(&r[4], name, "a crossed quote");
    }
    assert_f32(r[5][ofi], -50.0 / 150.0, "ofi after a crossed quote");
    assert_f32(
        r[5][spread],
        0.01 / 10.005 * 1e4,
        "spread_bps without sizes",
    );
    assert_neutral(&r[5], "microprice_dev_bps", "a quote without sizes");
    assert_f32(r[6][ofi], 250.0 / 330.0, "ofi, bid equal and ask up");

    // The order-flow reference does not carry over to the next day.
    state.begin_day(day(CLOSE));
    let next = rows(
        &mut state,
        &[quoted(OPEN, 10.0, Some((10.0, 10.01, 1.0, 1.0)))],
    );
    assert_neutral(&next[0], "ofi", "the next day's first quote");

    // Trade imbalance: (300 − 100) / 400; nothing traded, or no flow: neutral.
    let flows = [Some((300.0, 100.0)), Some((0.0, 0.0)), None];
    let bars: Vec<BarInput> = flows
        .iter()
        .enumerate()
        .map(|(i, &flow)| BarInput {
            flow,
            ..flat(OPEN + 60 * i as u32, 10.0, 400.0)
        })
        .collect();
    let r = one_day(&bars);
    assert_f32(r[0][idx("trade_imbalance")], 0.5, "trade_imbalance");
    assert_neutral(&r[1], "trade_imbalance", "no volume traded");
    assert_neutral(&r[2], "trade_imbalance", "no trade flow");
}

#[test]
fn volatility_by_hand() {
    // Closes alternate 100 and 101: every |r| = ln 1.01, so rv_k = sqrt(k) · ln 1.01.
    let closes: Vec<f64> = (0..62)
        .map(|t| if t % 2 == 0 { 100.0 } else { 101.0 })
        .collect();
    let r = one_day(&minute_bars(&closes, &[1.0; 62]));
    let ln = 1.01f64.ln();
    assert_neutral(&r[14], "rv_15", "15 closes");
    assert_f32(r[15][idx("rv_15")], 15f64.sqrt() * ln, "rv_15");
    assert_neutral(&r[59], "rv_60", "60 closes");
    assert_f32(r[60][idx("rv_60")], 60f64.sqrt() * ln, "rv_60");
    // Range estimators on 20 bars with h/l = e^0.01 and c/o = e^0.005:
    // Parkinson sqrt(1e-4 / (4 ln 2)); Garman–Klass sqrt(0.5e-4 − (2 ln 2 − 1) · 0.25e-4).
    let bars: Vec<BarInput> = (0..20)
        .map(|i| {
            let o = 50.0;
            BarInput::ohlcv(
                OPEN + 60 * i,
                o,
                o * 0.01f64.exp(),
                o,
                o * 0.005f64.exp(),
                1.0,
            )
        })
        .collect();
    let r = one_day(&bars);
    assert_neutral(&r[18], "parkinson_20", "19 bars");
    assert_f32(
        r[19][idx("parkinson_20")],
        (1e-4 / (4.0 * std::f64::consts::LN_2)).sqrt(),
        "parkinson_20",
    );
    assert_f32(
        r[19][idx("garman_klass_20")],
        (0.5e-4 - (2.0 * std::f64::consts::LN_2 - 1.0) * 0.25e-4).sqrt(),
        "garman_klass_20",
    );
    // Volume z-score: 59 bars of volume e − 1 (x = 1) then one of e³ − 1 (x = 3): mean
    // 62/60, population std sqrt(59 · (2/60)² + (118/60)²) / sqrt(60) ... by hand:
    // deviations −1/30 (59 times) and 59/30: variance (59/900 + 3481/900) / 60 = 3540/54000.
    let e = std::f64::consts::E;
    let mut volumes = vec![e - 1.0; 59];
    volumes.push(e.powi(3) - 1.0);
    let r = one_day(&minute_bars(&[10.0; 60], &volumes));
    assert_neutral(&r[58], "vol_z_60", "59 bars");
    assert_f32(
        r[59][idx("vol_z_60")],
        (59.0 / 30.0) / (3540.0f64 / 54000.0).sqrt(),
        "vol_z_60",
    );
}

#[test]
fn levels_and_calendar_by_hand() {
    // Day 1 (a Friday): a pre-market spike and an after-hours low stay out of the previous
    // day's regular range, and in the day's own high and low.
    let friday = DayContext::new(
        chrono::NaiveDate::from_ymd_opt(2024, 1, 5).unwrap(),
        OPEN,
        CLOSE,
    );
    assert_eq!(friday.weekday, 4);
    let mut state = FeatureState::new();
    state.begin_day(friday);
    let r = rows(
        &mut state,
        &[
            bar(OPEN - 1800, 50.0, 10.0, 10.0, 1.0), // 09:00
            bar(OPEN, 12.0, 9.0, 11.0, 1.0),
            bar(OPEN + 60, 11.5, 10.0, 10.5, 1.0),
            bar(CLOSE + 1800, 10.5, 5.0, 6.0, 1.0), // 16:30
        ],
    );
    assert_f32(
        r[0][idx("mins_since_open")],
        -30.0 / 390.0,
        "mins_since_open at 09:00",
    );
    assert_f32(
        r[2][idx("mins_since_open")],
        1.0 / 390.0,
        "mins_since_open at 09:31",
    );
    let angle = std::f64::consts::TAU * 4.0 / 5.0;
    assert_f32(r[0][idx("dow_sin")], angle.sin(), "dow_sin on a Friday");
    assert_f32(r[0][idx("dow_cos")], angle.cos(), "dow_cos on a Friday");
    // Day's range so far, pre-market included: high 50, low 9 at bar 1.
    assert_f32(
        r[1][idx("dist_day_high")],
        11.0 / 50.0 - 1.0,
        "dist_day_high",
    );
    assert_f32(r[1][idx("dist_day_low")], 11.0 / 9.0 - 1.0, "dist_day_low");
    assert_f32(
        r[3][idx("dist_day_low")],
        6.0 / 5.0 - 1.0,
        "dist_day_low after hours",
    );
    for name in ["dist_prev_high", "dist_prev_low"] {
        assert_neutral(&r[1], name, "no previous day");
    }
    // Day 2: only extended-hours bars; day 3 still measures against day 1's regular range
    // [9, 12].
    state.begin_day(day(CLOSE));
    rows(&mut state, &[bar(CLOSE + 60, 30.0, 1.0, 2.0, 1.0)]);
    state.begin_day(day(CLOSE));
    let r = rows(&mut state, &[bar(OPEN, 10.5, 10.5, 10.5, 1.0)]);
    assert_f32(
        r[0][idx("dist_prev_high")],
        10.5 / 12.0 - 1.0,
        "dist_prev_high",
    );
    assert_f32(
        r[0][idx("dist_prev_low")],
        10.5 / 9.0 - 1.0,
        "dist_prev_low",
    );
}

#[test]
fn benchmark_as_of_and_cross_sectional_by_hand() {
    // The as-of join: the close of the benchmark's last bar starting at or before t.
    let mut b = BenchmarkDay::new();
    b.push(OPEN, 400.0);
    b.push(OPEN + 60, 401.0);
    b.push(OPEN + 60, 999.0); // not after the last: ignored
    b.push(OPEN + 180, 402.0);
    assert_eq!(b.close_at(OPEN - 1), None);
    assert_eq!(b.close_at(OPEN), Some(400.0));
    assert_eq!(b.close_at(OPEN + 120), Some(401.0));
    assert_eq!(b.close_at(OPEN + 180), Some(402.0));
    assert_eq!(b.close_at(CLOSE), Some(402.0));
    assert_eq!(b.last_sec(), Some(OPEN + 180));

    // Own closes 100 · 1.01^t against a benchmark 400 · 1.005^t:
    // rel_ret_k = k (ln 1.01 − ln 1.005).
    let with_bench = |f: &dyn Fn(usize, f64) -> Option<f64>| -> Vec<[f32; N_FEATURES]> {
        let bars: Vec<BarInput> = (0..70)
            .map(|t| {
                let c = 100.0 * 1.01f64.powi(t as i32);
                BarInput {
                    bench_close: f(t, c),
                    ..flat(OPEN + 60 * t as u32, c, 1.0)
                }
            })
            .collect();
        one_day(&bars)
    };
    let r = with_bench(&|t, _| Some(400.0 * 1.005f64.powi(t as i32)));
    for (name, k) in [("rel_ret_5", 5), ("rel_ret_15", 15), ("rel_ret_60", 60)] {
        assert_neutral(&r[k - 1], name, "k closes");
        assert_f32(
            r[k][idx(name)],
            k as f64 * (1.01f64.ln() - 1.005f64.ln()),
            name,
        );
    }
    // A symbol that does not move has no correlation with anything.
    let bars: Vec<BarInput> = (0..62)
        .map(|t| BarInput {
            bench_close: Some(400.0 + (t % 3) as f64),
            ..flat(OPEN + 60 * t as u32, 100.0, 1.0)
        })
        .collect();
    assert_neutral(&one_day(&bars)[61], "bench_corr_60", "a constant price");

    // The benchmark itself: relative returns 0, correlation 1 once 61 closes are in.
    let wobble = |t: usize| 100.0 * (1.0 + 0.01 * ((t * 7 % 5) as f64));
    let bars: Vec<BarInput> = (0..62)
        .map(|t| BarInput {
            bench_close: Some(wobble(t)),
            ..flat(OPEN + 60 * t as u32, wobble(t), 1.0)
        })
        .collect();
    let r = one_day(&bars);
    assert_neutral(&r[59], "bench_corr_60", "60 closes");
    assert_f32(
        r[60][idx("bench_corr_60")],
        1.0,
        "bench_corr_60 of the benchmark",
    );
    assert_eq!(r[61][idx("rel_ret_5")], 0.0);
    // A benchmark moving as the inverse: correlation −1.
    let bars: Vec<BarInput> = (0..62)
        .map(|t| BarInput {
            bench_close: Some(1e4 / wobble(t)),
            ..flat(OPEN + 60 * t as u32, wobble(t), 1.0)
        })
        .collect();
    assert_f32(
        one_day(&bars)[61][idx("bench_corr_60")],
        -1.0,
        "inverse benchmark",
    );

    // A missing benchmark close at t − 5 or at t: neutral; correlation waits 60 returns
    // past the gap (bar 10 missing spoils the benchmark returns of bars 10 and 11).
    let r = with_bench(&|t, _| (t != 10).then(|| 400.0 * 1.01f64.powi(t as i32)));
    assert_neutral(&r[10], "rel_ret_5", "no benchmark close now");
    assert_neutral(&r[15], "rel_ret_5", "no benchmark close 5 bars ago");
    assert_eq!(r[16][idx("rel_ret_5")], 0.0);
}

#[test]
fn random_days_exercise_every_feature() {
    // The property tests below are only as strong as their data: every feature takes a
    // value other than its neutral one somewhere in it.
    let rows = all_rows(&random_days(7));
    for (i, name) in FEATURE_NAMES.iter().enumerate() {
        assert!(
            rows.iter().any(|r| r[i] != FEATURE_NEUTRAL[i]),
            "{name} is never defined in the random days"
        );
    }
}

// ---------------------------------------------------------------- pandas reference

/// Feature set v1's columns, the first 19 of v2.
const V1: usize = 19;

/// Reference rows of v1's columns for the 80-bar series of [`reference_bars`], produced
/// with pandas 3.1.1 /
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
const PANDAS_ROWS: [(usize, [f64; V1]); 15] = [
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
        BarInput::ohlcv(
            OPEN + 60 * minute,
            c,
            c + 0.5,
            c - 0.7,
            c,
            1000.0 + 37.0 * (t % 11) as f64,
        )
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
        for (i, name) in FEATURE_NAMES.iter().enumerate().take(V1) {
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

// ---------------------------------------------------------------- pandas reference, v2

/// Columns of [`PANDAS_V2_ROWS`], in order: every feature v2 adds, after v1's.
fn v2_names() -> &'static [&'static str] {
    assert_eq!(FEATURE_NAMES.len() - V1, 20);
    &FEATURE_NAMES[V1..]
}

/// Reference rows of v2's new columns for the series of [`reference_bars_v2`] (two days,
/// a Thursday of 50 bars and a Friday of 30, with opens, quotes, sizes, trade flow and a
/// benchmark missing at bar 10), produced with pandas 3.1.2 / numpy 2.4.6 by this code
/// (NaN, i.e. undefined, replaced by the neutral value 0):
///
/// ```python
/// import numpy as np, pandas as pd
/// t = np.arange(80)
/// c = pd.Series(100 + 10*np.sin(t/7) + t*0.1)
/// o = c.shift(1).fillna(c[0])
/// h = np.maximum(o, c) + 0.5; l = np.minimum(o, c) - 0.7
/// v = pd.Series(1000.0 + 37*(t % 11))
/// bid = c - 0.01 - 0.005*(t % 3); ask = c + 0.01 + 0.004*(t % 4)
/// bs = pd.Series(100.0 + 10*(t % 5)); az = pd.Series(200.0 - 15*(t % 7))
/// buy = v*(0.3 + 0.05*(t % 9)); sell = v - buy
/// B = pd.Series(400 + 5*np.sin(t/5) + 0.05*t + 0.3*np.cos(t/3)); B[10] = np.nan
/// day = pd.Series(np.where(t < 50, 0, 1))
/// sec = pd.Series(np.where(t < 50, 34200 + 60*t, 34200 + 60*(t-50)))
/// wd = np.where(day == 0, 3, 4)
/// f = pd.DataFrame(index=t)
/// mid = (bid + ask)/2
/// f["spread_bps"] = (ask - bid)/mid*1e4
/// micro = (bid*az + ask*bs)/(bs + az)
/// f["microprice_dev_bps"] = (micro/mid - 1)*1e4
/// pb, pa, pbs, pas = bid.shift(1), ask.shift(1), bs.shift(1), az.shift(1)
/// e = (np.where(bid >= pb, bs, 0) - np.where(bid <= pb, pbs, 0)
///      - np.where(ask <= pa, az, 0) + np.where(ask >= pa, pas, 0))
/// ofi = pd.Series(e/(bs + pbs + az + pas))
/// ofi[day != day.shift(1)] = np.nan
/// f["ofi"] = ofi
/// f["trade_imbalance"] = (buy - sell)/(buy + sell)
/// r = np.log(c).diff()
/// f["rv_15"] = np.sqrt((r**2).rolling(15).sum())
/// f["rv_60"] = np.sqrt((r**2).rolling(60).sum())
/// hl = np.log(h/l)**2; co = np.log(c/o)**2
/// f["parkinson_20"] = np.sqrt(hl.rolling(20).mean()/(4*np.log(2)))
/// f["garman_klass_20"] = np.sqrt((0.5*hl - (2*np.log(2) - 1)*co).rolling(20).mean())
/// lv = np.log1p(v)
/// f["vol_z_60"] = (lv - lv.rolling(60).mean())/lv.rolling(60).std(ddof=0)
/// f["mins_since_open"] = (sec - 34200)/60/390
/// f["dow_sin"] = np.sin(2*np.pi*wd/5); f["dow_cos"] = np.cos(2*np.pi*wd/5)
/// hi = h.groupby(day).cummax(); lo = l.groupby(day).cummin()
/// f["dist_day_high"] = c/hi - 1; f["dist_day_low"] = c/lo - 1
/// ph = h[day == 0].max(); pl = l[day == 0].min()
/// f["dist_prev_high"] = np.where(day == 1, c/ph - 1, np.nan)
/// f["dist_prev_low"] = np.where(day == 1, c/pl - 1, np.nan)
/// for k in (5, 15, 60):
///     f[f"rel_ret_{k}"] = np.log(c/c.shift(k)) - np.log(B/B.shift(k))
/// rb = np.log(B/B.shift(1))
/// f["bench_corr_60"] = r.rolling(60).corr(rb)
/// f = f.fillna(0.0)
/// f = f.fillna(0.0)
/// for row in [0, 1, 2, 5, 10, 11, 15, 19, 20, 25, 49, 50, 51, 60, 61, 70, 71, 75, 79]:
///     print(f"({row}, [" + ", ".join(f"{x:.12e}" for x in f.loc[row]) + "]),")
/// ```
#[rustfmt::skip]
const PANDAS_V2_ROWS: [(usize, [f64; 20]); 19] = [
    (0, [2.000000000001e+00, -3.333333333333e-01, 0.000000000000e+00, -4.000000000000e-01, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, -5.877852522925e-01, -8.090169943749e-01, -4.975124378109e-03, 7.049345417925e-03, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00]),
    (1, [2.856489458457e+00, -3.631130667514e-01, 5.210084033613e-01, -3.000000000000e-01, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 2.564102564103e-03, -5.877852522925e-01, -8.090169943749e-01, -4.900821232968e-03, 2.239393049268e-02, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00]),
    (2, [3.688696227957e+00, -3.179910541351e-01, 5.213675213675e-01, -2.000000000000e-01, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 5.128205128205e-03, -5.877852522925e-01, -8.090169943749e-01, -4.830057866436e-03, 3.744641008280e-02, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00]),
    (5, [3.176151838609e+00, -1.764528799220e-01, 4.752475247525e-01, 1.000000000000e-01, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 1.282051282051e-02, -5.877852522925e-01, -8.090169943749e-01, -4.648966792990e-03, 7.805416890015e-02, 0.000000000000e+00, 0.000000000000e+00, 5.787207141381e-02, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00]),
    (10, [2.975639500798e+00, -3.209022991058e-01, 4.778761061947e-01, -3.000000000000e-01, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 2.564102564103e-02, -5.877852522925e-01, -8.090169943749e-01, -4.488369392194e-03, 1.168079633809e-01, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00]),
    (11, [3.780344079313e+00, -2.268206447575e-01, 5.247524752475e-01, -2.000000000000e-01, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 2.820512820513e-02, -5.877852522925e-01, -8.090169943749e-01, -4.480286818590e-03, 1.188318026318e-01, 0.000000000000e+00, 0.000000000000e+00, 2.806325005999e-02, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00]),
    (15, [2.911370484180e+00, -4.341517388684e-01, -5.200000000000e-01, 2.000000000000e-01, 3.551570075748e-02, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 3.846153846154e-02, -5.877852522925e-01, -8.090169943749e-01, -1.516242807962e-02, 1.068264960519e-01, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00, 9.137766417235e-02, 0.000000000000e+00, 0.000000000000e+00]),
    (19, [3.488995530990e+00, 9.874515653596e-02, -4.766355140187e-01, -3.000000000000e-01, 2.811182148683e-02, 0.000000000000e+00, 1.165221101053e-02, 1.255033403518e-02, 0.000000000000e+00, 4.871794871795e-02, -5.877852522925e-01, -8.090169943749e-01, -4.978301221525e-02, 6.791756231230e-02, 0.000000000000e+00, 0.000000000000e+00, -3.067566915532e-02, 1.635836553246e-02, 0.000000000000e+00, 0.000000000000e+00]),
    (20, [2.862560075013e+00, -6.815619226330e-02, -5.263157894737e-01, -2.000000000000e-01, 2.814028006619e-02, 0.000000000000e+00, 1.195134206225e-02, 1.283104640668e-02, 0.000000000000e+00, 5.128205128205e-02, -5.877852522925e-01, -8.090169943749e-01, -6.087548501667e-02, 5.545109763488e-02, 0.000000000000e+00, 0.000000000000e+00, -3.740009421754e-02, -3.894501459004e-03, 0.000000000000e+00, 0.000000000000e+00]),
    (25, [2.949184029188e+00, -2.457653357646e-01, -5.233644859813e-01, 3.000000000000e-01, 3.643849644618e-02, 0.000000000000e+00, 1.182393580660e-02, 1.275965245657e-02, 0.000000000000e+00, 6.410256410256e-02, -5.877852522925e-01, -8.090169943749e-01, -1.188818526566e-01, 7.169722863896e-03, 0.000000000000e+00, 0.000000000000e+00, -6.079045400568e-02, 0.000000000000e+00, 0.000000000000e+00, 0.000000000000e+00]),
    (49, [2.601611639501e+00, -2.295539681918e-01, 4.310344827586e-01, 0.000000000000e+00, 4.691943465077e-02, 0.000000000000e+00, 1.325790236379e-02, 1.413812267792e-02, 0.000000000000e+00, 1.256410256410e-01, -5.877852522925e-01, -8.090169943749e-01, -4.465487170068e-03, 2.037888480459e-01, 0.000000000000e+00, 0.000000000000e+00, 7.670288382925e-02, 1.854266739512e-01, 0.000000000000e+00, 0.000000000000e+00]),
    (50, [3.375518905913e+00, -5.033668543897e-01, 0.000000000000e+00, 1.000000000000e-01, 4.775140372157e-02, 0.000000000000e+00, 1.330269631864e-02, 1.415588255622e-02, 0.000000000000e+00, 0.000000000000e+00, -9.510565162952e-01, 3.090169943749e-01, -4.421793692118e-03, 1.630784826397e-02, 5.415905086541e-03, 2.157373135670e-01, 7.181229507432e-02, 1.952370630682e-01, 0.000000000000e+00, 0.000000000000e+00]),
    (51, [2.818530324120e+00, -3.019853918695e-01, 5.221238938053e-01, 2.000000000000e-01, 4.806609881171e-02, 0.000000000000e+00, 1.335147270806e-02, 1.418334605261e-02, 0.000000000000e+00, 2.564102564103e-03, -9.510565162952e-01, 3.090169943749e-01, -4.384874576532e-03, 2.490281126530e-02, 1.391875441505e-02, 2.260188608829e-01, 6.548574838407e-02, 2.008473214857e-01, 0.000000000000e+00, 0.000000000000e+00]),
    (60, [1.761573380949e+00, -1.467977817471e-01, -5.233644859813e-01, 2.000000000000e-01, 3.151454467319e-02, 7.456351658118e-02, 1.226743668816e-02, 1.302068714381e-02, 1.021494055971e-01, 2.564102564103e-02, -9.510565162952e-01, 3.090169943749e-01, -2.125072259321e-02, 2.496167403081e-02, 1.397698633834e-02, 2.260892742528e-01, -2.324341839085e-02, 7.821123370325e-02, 1.265912265803e-01, 0.000000000000e+00]),
    (61, [2.574995182364e+00, -8.218069730948e-02, -4.736842105263e-01, 3.000000000000e-01, 2.936442976318e-02, 7.345881394291e-02, 1.203480237886e-02, 1.280765508950e-02, 3.940117390999e-01, 2.820512820513e-02, -9.510565162952e-01, 3.090169943749e-01, -2.911966860671e-02, 1.672118970552e-02, 5.824816677920e-03, 2.162317647460e-01, -3.289682871483e-02, 5.168058140709e-02, 1.038496878819e-01, 0.000000000000e+00]),
    (70, [3.249269516005e+00, -5.415449193336e-01, -6.181818181818e-01, 3.000000000000e-01, 3.671612377331e-02, 7.488674981276e-02, 1.143655032932e-02, 1.233682264607e-02, -1.897831017623e-01, 5.128205128205e-02, -9.510565162952e-01, 3.090169943749e-01, -1.244842013994e-01, 6.940327832292e-03, -9.297213142394e-02, 9.676763486070e-02, -6.858815859325e-02, -1.543533640538e-01, 0.000000000000e+00, 0.000000000000e+00]),
    (71, [4.178206215052e+00, -5.311279086928e-01, -4.789915966387e-01, 4.000000000000e-01, 3.812939259407e-02, 7.556803010735e-02, 1.153789037815e-02, 1.243991661688e-02, 1.021494055971e-01, 5.384615384615e-02, -9.510565162952e-01, 3.090169943749e-01, -1.334426762622e-01, 7.012580130141e-03, -1.022530448849e-01, 8.554526137193e-02, -6.477618940768e-02, -1.645669808242e-01, -1.104963072259e-01, -3.828800282324e-01]),
    (75, [3.268674369989e+00, -1.815930205551e-01, -5.247524752475e-01, -1.000000000000e-01, 3.946010704007e-02, 7.652093211841e-02, 1.194684111038e-02, 1.288874115887e-02, 1.201271239596e+00, 6.410256410256e-02, -9.510565162952e-01, 3.090169943749e-01, -1.560943378720e-01, 7.202163680124e-03, -1.257199981740e-01, 5.716929217843e-02, -3.410907443829e-02, -1.652190201013e-01, -1.300054576933e-01, -3.846448662504e-01]),
    (79, [3.763166186999e+00, -1.820886864679e-01, 5.200000000000e-01, 3.000000000000e-01, 3.457284743016e-02, 7.451700023940e-02, 1.205019201542e-02, 1.303317978661e-02, -8.909715330975e-01, 7.435897435897e-02, -9.510565162952e-01, 3.090169943749e-01, -1.524309998555e-01, 1.363255047474e-02, -1.219248071811e-01, 6.175839334427e-02, 1.094710868234e-02, -1.035191806785e-01, -8.914110010039e-02, -4.842228874041e-01]),
];

/// The v2 reference series (see [`PANDAS_V2_ROWS`]).
fn reference_bars_v2() -> Vec<(DayContext, Vec<BarInput>)> {
    let close = |t: usize| {
        let tf = t as f64;
        100.0 + 10.0 * (tf / 7.0).sin() + tf * 0.1
    };
    let bar_at = |t: usize| {
        let tf = t as f64;
        let c = close(t);
        let o = close(t.saturating_sub(1));
        let v = 1000.0 + 37.0 * (t % 11) as f64;
        let buy = v * (0.3 + 0.05 * (t % 9) as f64);
        let minute = if t < 50 { t } else { t - 50 } as u32;
        BarInput {
            sec_of_day: OPEN + 60 * minute,
            open: o,
            high: o.max(c) + 0.5,
            low: o.min(c) - 0.7,
            close: c,
            volume: v,
            halted: false,
            quote: Some(QuoteInput {
                bid: c - 0.01 - 0.005 * (t % 3) as f64,
                ask: c + 0.01 + 0.004 * (t % 4) as f64,
                bid_size: 100.0 + 10.0 * (t % 5) as f64,
                ask_size: 200.0 - 15.0 * (t % 7) as f64,
            }),
            flow: Some((buy, v - buy)),
            bench_close: (t != 10)
                .then(|| 400.0 + 5.0 * (tf / 5.0).sin() + 0.05 * tf + 0.3 * (tf / 3.0).cos()),
        }
    };
    let ctx = |weekday| DayContext {
        weekday,
        ..day(CLOSE)
    };
    vec![
        (ctx(3), (0..50).map(bar_at).collect()),
        (ctx(4), (50..80).map(bar_at).collect()),
    ]
}

#[test]
fn matches_pandas_reference_v2() {
    let rows = all_rows(&reference_bars_v2());
    for (t, want) in PANDAS_V2_ROWS {
        for (name, want) in v2_names().iter().zip(want) {
            let got = f64::from(rows[t][idx(name)]);
            // f32 rounding (6e-8 relative) plus the 13 printed digits of the reference.
            let tol = 2e-7 * want.abs() + 1e-10;
            assert!(
                (got - want).abs() <= tol,
                "{name} at bar {t}: got {got}, pandas {want}"
            );
        }
    }
    // The reference has every column defined somewhere.
    for (i, name) in v2_names().iter().enumerate() {
        assert!(
            PANDAS_V2_ROWS.iter().any(|(_, r)| r[i] != 0.0),
            "{name} is never defined in the reference"
        );
    }
}

// ---------------------------------------------------------------- properties

/// A multi-day random walk with pre-market, regular and after-hours bars, an early close,
/// halts with zero volume and a one-bar day; closing quotes with sizes (missing on some
/// bars and on the fourth day, crossed on a few), trade flow and a correlated benchmark
/// (both missing on the third day, the benchmark on a few more bars). Returns
/// (context, bars) per day.
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
    let mut bench = 400.0f64;
    plan.iter()
        .enumerate()
        .map(|(d, &(start, count, regular_close))| {
            let bars = (0..count)
                .map(|i| {
                    let halted = rng.random_bool(0.05);
                    let open = close;
                    let common = step.sample(&mut rng);
                    if !halted {
                        close *= f64::exp(common + step.sample(&mut rng));
                    }
                    bench *= f64::exp(common);
                    let wick = close * 0.001 * rng.random::<f64>();
                    let volume = if halted {
                        0.0
                    } else {
                        volume.sample(&mut rng).round()
                    };
                    let half = close * 0.0005 * rng.random::<f64>();
                    let crossed = if rng.random_bool(0.03) { -3.0 } else { 1.0 };
                    let quote = (d != 3 && rng.random_bool(0.9)).then(|| QuoteInput {
                        bid: close - half * crossed,
                        ask: close + half * crossed + 0.01 * rng.random_range(0..3) as f64,
                        bid_size: 100.0 * rng.random_range(0..6) as f64,
                        ask_size: 100.0 * rng.random_range(0..6) as f64,
                    });
                    let buy = (volume * rng.random::<f64>()).round();
                    BarInput {
                        sec_of_day: start + 60 * i,
                        open,
                        high: open.max(close) + wick,
                        low: open.min(close) - wick,
                        close,
                        volume,
                        halted,
                        quote,
                        flow: (d != 2).then_some((buy, volume - buy)),
                        bench_close: (d != 2 && rng.random_bool(0.99)).then_some(bench),
                    }
                })
                .collect();
            let ctx = DayContext {
                weekday: (d % 5) as u8,
                ..day(regular_close)
            };
            (ctx, bars)
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
    let named = format!("feature_version {}", FEATURE_VERSION + 1);
    assert!(err.to_string().contains(&named), "{err}");

    let mut short = value.clone();
    assert_eq!(short["rings"][0][0], "closes");
    short["rings"][0][1] = serde_json::json!([1, 2, 3]);
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
        // Every feature but the clock and calendar, which are always defined.
        let clock = [
            "tod_sin",
            "tod_cos",
            "mins_to_close",
            "mins_since_open",
            "dow_sin",
            "dow_cos",
        ];
        for name in FEATURE_NAMES.iter().filter(|n| !clock.contains(n)) {
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
