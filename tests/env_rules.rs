//! Each execution rule on hand-built bar sequences, with the expected numbers worked out
//! by hand in the comments: next-bar fills after latency, no fill from missing bars, halt
//! rejection, every cost term, the participation cap, the flatten at the close, loss-limit
//! termination against truncation, borrow, and the DSR against a plain loop of its formula.

use sim_train::bars::BarSize;
use sim_train::env::day::{FLAG_HALTED, FLAG_QUOTE};
use sim_train::env::params::{CommissionKind, Remainder, RewardKind};
use sim_train::env::reference::Fill;
use sim_train::env::{BarRec, DayData, EndReason, EnvConfig, EnvParams, Episode, ReferenceEnv};
use std::sync::Arc;

const OPEN_MS: u32 = 34_200_000; // 09:30:00

/// Base config: $10,000 max position, $0.01/share commission with a $1 minimum, 10 bps
/// half-spread, no impact, no participation cap, no latency, no loss limit, no borrow,
/// reward = P&L / equity0 (scale 1). One feature column (`ret_1`).
fn params(edit: impl FnOnce(&mut EnvConfig)) -> Arc<EnvParams> {
    let mut c = EnvConfig {
        initial_equity: 100_000.0,
        max_position_usd: 10_000.0,
        features: vec!["ret_1".into()],
        daily_loss_limit: 0.0,
        ..EnvConfig::default()
    };
    c.costs.commission = CommissionKind::PerShare;
    c.costs.commission_per_share = 0.01;
    c.costs.commission_min = 1.0;
    c.costs.half_spread_bps = 10.0;
    c.costs.impact_k = 0.0;
    c.costs.borrow_rate_annual = 0.0;
    c.execution.participation = 1.0;
    c.execution.latency_ms = 0;
    c.reward.kind = RewardKind::Pnl;
    c.reward.scale = 1.0;
    edit(&mut c);
    Arc::new(EnvParams::from_config(&c).unwrap())
}

/// A bar `sec` seconds after 09:30:00.
fn bar(sec: u32, open: f64, close: f64, volume: f32) -> BarRec {
    BarRec {
        ts_ms: OPEN_MS + sec * 1000,
        flags: 0,
        open,
        close,
        bid: 0.0,
        ask: 0.0,
        volume,
        sigma: 0.0,
    }
}

/// A 1-second day of `bars` in the regular session; feature = the row number.
fn day_of(bars: Vec<BarRec>, halts: Vec<(u32, u32)>) -> Arc<DayData> {
    let features = (0..bars.len()).map(|i| i as f32).collect();
    Arc::new(DayData::assemble(
        "TEST".into(),
        chrono::NaiveDate::from_ymd_opt(2024, 3, 5).unwrap(),
        BarSize::S1,
        0,
        bars,
        features,
        1,
        (OPEN_MS, 57_600_000),
        halts,
    ))
}

fn env(p: &Arc<EnvParams>, day: &Arc<DayData>) -> ReferenceEnv {
    ReferenceEnv::new(
        p.clone(),
        Episode {
            day: day.clone(),
            start_row: 0,
        },
    )
    .unwrap()
}

/// Ten flat bars at $100 one second apart.
fn flat_day() -> Arc<DayData> {
    day_of(
        (0..10)
            .map(|s| bar(s, 100.0 + s as f64, 100.5 + s as f64, 1e6))
            .collect(),
        vec![],
    )
}

fn obs(e: &ReferenceEnv) -> Vec<f32> {
    let mut o = vec![0.0; 6];
    e.observe(&mut o);
    o
}

#[test]
fn order_fills_at_the_next_bars_open_never_the_decision_close() {
    let p = params(|_| {});
    let d = flat_day();
    let mut e = env(&p, &d);
    // Decision at bar 0's close (100.5): target 1 → floor(10,000 / 100.5) = 99 shares.
    e.step_target(1.0).unwrap();
    let f: Fill = e.last_fills[0];
    assert_eq!(f.shares, 99);
    assert_eq!(f.ts_ms, d.bars[1].ts_ms);
    assert_eq!(f.price, 101.0, "bar 1's open, not bar 0's close");
    // Costs: commission max(99 · 0.01, 1) = 1; spread 99 · 101 · 0.001 = 9.999.
    assert_eq!(f.costs.commission, 1.0);
    assert!((f.costs.spread - 9.999).abs() < 1e-9);
    assert_eq!(f.costs.impact, 0.0);
    // Equity at bar 1's close: 100,000 − 99·101 − 10.999 + 99·101.5 = 100,038.501.
    assert!((e.equity() - 100_038.501).abs() < 1e-6);
    // The observation of bar 1: feature 1, position 99·101.5/10,000.
    let o = obs(&e);
    assert_eq!(o[0], 1.0);
    assert_eq!(o[1], (99.0 * 101.5 / 10_000.0) as f32);
}

#[test]
fn latency_pushes_the_fill_to_the_first_bar_starting_after_arrival() {
    // Decision at bar 0's close = 09:30:01.000; 1,500 ms latency → arrival 09:30:02.500.
    // Bars 1 (09:30:01) and 2 (09:30:02) started before arrival: bar 3 fills.
    let p = params(|c| c.execution.latency_ms = 1_500);
    let d = flat_day();
    let mut e = env(&p, &d);
    e.step_target(1.0).unwrap();
    assert!(e.last_fills.is_empty());
    let pending = e.pending().expect("order pending");
    assert_eq!(pending.arrival_ms, OPEN_MS + 2_500);
    assert_eq!(pending.remaining, 99);
    assert_ne!(obs(&e)[4], 0.0, "pending order is observed");
    e.step_target(1.0).unwrap();
    assert!(e.last_fills.is_empty());
    e.step_target(1.0).unwrap();
    assert_eq!(e.last_fills[0].ts_ms, d.bars[3].ts_ms);
    assert_eq!(e.last_fills[0].price, 103.0);
    assert_eq!(
        e.last_fills[0].shares, 99,
        "a kept target keeps its order and size"
    );
}

#[test]
fn missing_bars_cannot_fill_the_next_existing_bar_does() {
    // Bars at +0, +1, +5 s: seconds 2–4 had no trades. With 2 s latency the order
    // arrives at +3 s, when no bar exists; the bar at +5 s fills it at its open.
    let p = params(|c| c.execution.latency_ms = 2_000);
    let d = day_of(
        vec![
            bar(0, 10.0, 10.0, 1e6),
            bar(1, 10.1, 10.1, 1e6),
            bar(5, 10.5, 10.6, 1e6),
            bar(6, 11.0, 11.0, 1e6),
        ],
        vec![],
    );
    let mut e = env(&p, &d);
    e.step_target(0.5).unwrap();
    assert!(e.last_fills.is_empty(), "bar +1 s started before arrival");
    e.step_target(0.5).unwrap();
    let f = e.last_fills[0];
    assert_eq!(f.ts_ms, OPEN_MS + 5_000);
    assert_eq!(f.price, 10.5);
    // round(0.5 · floor(10,000 / 10)) = 500 shares, sized at the decision bar's close.
    assert_eq!(f.shares, 500);
}

#[test]
fn orders_arriving_in_a_halt_or_on_a_halted_bar_are_rejected() {
    // Halt from +1 s to +4 s. Latency 500 ms: the decision at +1 s arrives at +1.5 s,
    // inside the halt → rejected at the next bar (+4 s). Reissued at +5 s's close... the
    // decision at +4 s's close arrives at +5.5 s → fills at +6 s's open.
    let p = params(|c| c.execution.latency_ms = 500);
    let mut bars = vec![
        bar(0, 10.0, 10.0, 1e6),
        bar(4, 10.4, 10.4, 1e6),
        bar(6, 10.6, 10.6, 1e6),
        bar(7, 10.7, 10.7, 1e6),
    ];
    bars[1].flags = 0;
    let d = day_of(bars, vec![(OPEN_MS + 1_000, OPEN_MS + 4_000)]);
    let mut e = env(&p, &d);
    e.step_target(1.0).unwrap();
    assert!(e.last_fills.is_empty());
    assert!(e.pending().is_none(), "rejected orders are dropped");
    e.step_target(1.0).unwrap();
    assert_eq!(e.last_fills[0].ts_ms, OPEN_MS + 6_000);

    // A bar flagged halted rejects too.
    let mut bars = vec![
        bar(0, 10.0, 10.0, 1e6),
        bar(1, 10.1, 10.1, 1e6),
        bar(2, 10.2, 10.2, 1e6),
        bar(3, 1.0, 1.0, 1.0),
    ];
    bars[1].flags = FLAG_HALTED;
    let d = day_of(bars, vec![]);
    let p = params(|_| {});
    let mut e = env(&p, &d);
    e.step_target(1.0).unwrap();
    assert!(e.last_fills.is_empty());
    let f = e.finished.clone();
    assert!(f.is_none());
    e.step_target(0.0).unwrap();
    assert!(
        e.last_fills.is_empty(),
        "target 0 with no position sends nothing"
    );
}

#[test]
fn each_cost_term() {
    // Quote on the fill bar: bid 99.90, ask 100.10 → mid 100, half-spread 0.10.
    // Impact: k = 0.5, σ = 0.01, volume 10,000, 100 shares:
    //   100 · 0.5 · 0.01 · sqrt(100/10,000) = 0.05 per share → 5.00.
    // Commission 2 bps of notional 100 · 100 = 2.00 (above the $1 minimum).
    let p = params(|c| {
        c.costs.impact_k = 0.5;
        c.costs.commission = CommissionKind::Bps;
        c.costs.commission_bps = 2.0;
    });
    let mut b1 = bar(1, 100.02, 100.0, 10_000.0);
    b1.flags = FLAG_QUOTE;
    b1.bid = 99.9;
    b1.ask = 100.1;
    b1.sigma = 0.01;
    let d = day_of(
        vec![
            bar(0, 100.0, 100.0, 1e6),
            b1,
            bar(2, 100.0, 100.0, 1e6),
            bar(3, 100.0, 100.0, 1e6),
        ],
        vec![],
    );
    let mut e = env(&p, &d);
    e.step_target(1.0).unwrap();
    let f = e.last_fills[0];
    assert_eq!(f.shares, 100);
    assert!((f.price - 100.0).abs() < 1e-12, "quote mid, not the open");
    assert!((f.costs.spread - 10.0).abs() < 1e-9);
    // σ is stored as f32 (0.01 → 0.0099999998), so impact agrees to ~1e-7.
    assert!((f.costs.impact - 5.0).abs() < 1e-6);
    assert!((f.costs.commission - 2.0).abs() < 1e-9);
    // The buyer pays the ask plus impact per share.
    assert!((f.exec_price() - 100.15).abs() < 1e-8);
    // Cash: 100,000 − 10,000 − 17 = 89,983.
    assert!((e.ledger().cash - 89_983.0).abs() < 1e-6);

    // The minimum commission binds on a small order: 10 shares · $0.01 = $0.10 → $1.
    let p = params(|c| c.max_position_usd = 1_000.0);
    let mut e = env(&p, &flat_day());
    e.step_target(1.0).unwrap();
    assert_eq!(e.last_fills[0].shares, 9); // floor(1,000 / 100.5)
    assert_eq!(e.last_fills[0].costs.commission, 1.0);
}

#[test]
fn participation_cap_carries_or_cancels_the_rest() {
    // Volume 500 with a 10 % cap: at most 50 shares per bar; the target is 99 shares.
    let bars = (0..6).map(|s| bar(s, 100.0, 100.0, 500.0)).collect();
    let d = day_of(bars, vec![]);
    let carry = params(|c| c.execution.participation = 0.1);
    let mut e = env(&carry, &d);
    e.step_target(1.0).unwrap();
    assert_eq!(e.last_fills[0].shares, 50);
    assert_eq!(e.pending().unwrap().remaining, 50);
    e.step_target(1.0).unwrap();
    assert_eq!(e.last_fills[0].shares, 50);
    assert_eq!(e.ledger().position, 100);
    assert!(e.pending().is_none());

    // Cancel: the rest is dropped; the next decision (same target) sends a new order.
    let cancel = params(|c| {
        c.execution.participation = 0.1;
        c.execution.remainder = Remainder::Cancel;
        c.execution.latency_ms = 1_500;
    });
    let mut e = env(&cancel, &d);
    e.step_target(1.0).unwrap(); // arrives at +2.5 s
    e.step_target(1.0).unwrap();
    assert!(e.last_fills.is_empty());
    e.step_target(1.0).unwrap(); // bar +3 s fills 50, rest cancelled
    assert_eq!(e.last_fills[0].shares, 50);
    assert!(e.pending().is_none());
    // A decision at +3 s's close: new order for 50, arriving at +5.5 s: nothing at +4 s.
    e.step_target(1.0).unwrap();
    assert!(e.last_fills.is_empty());
    assert_eq!(e.pending().unwrap().remaining, 50);
}

#[test]
fn the_session_close_flattens_with_costs_and_terminates() {
    // Four session bars and one after 16:00 (not traded).
    let mut bars: Vec<BarRec> = (0..4)
        .map(|s| bar(s, 100.0, 100.0 + s as f64, 1e6))
        .collect();
    bars.push(BarRec {
        ts_ms: 57_600_000,
        ..bar(0, 1.0, 1.0, 1e6)
    });
    let d = day_of(bars, vec![]);
    assert_eq!(d.last_row, 3);
    let p = params(|_| {});
    let mut e = env(&p, &d);
    e.step_target(1.0).unwrap(); // buys 100 at bar 1's open (100)
    let r = e.step_target(1.0).unwrap();
    assert!(!r.terminated && !r.truncated);
    let r = e.step_target(1.0).unwrap(); // into bar 3, the last session bar
    assert!(r.terminated && !r.truncated);
    let f = e.last_fills[0];
    assert!(f.forced);
    assert_eq!(f.shares, -100);
    assert_eq!(f.price, 103.0, "closed at the last bar's close");
    // Spread 100 · 103 · 0.001 = 10.3, commission $1.
    assert!((f.costs.spread - 10.3).abs() < 1e-9);
    assert_eq!(e.ledger().position, 0);
    let stats = e.finished.clone().unwrap();
    assert_eq!(stats.reason, EndReason::SessionClose);
    assert_eq!(stats.steps, 3);
    // P&L: bought 100 @ 100 (+ 10.0 spread + 1), sold @ 103 (+ 10.3 + 1): 300 − 22.3.
    assert!((stats.pnl - 277.7).abs() < 1e-9);
    assert!(e.step_target(0.0).is_err(), "no step after the end");
}

#[test]
fn loss_limit_terminates_max_steps_truncates() {
    // Price falls 10 % a bar; a 1 % loss limit on $100,000 trips on a $10,000 position
    // after the fall to 90 (−1,000 − costs).
    let bars: Vec<BarRec> = [100.0, 100.0, 90.0, 81.0, 72.9, 70.0]
        .iter()
        .enumerate()
        .map(|(s, &px)| bar(s as u32, px, px, 1e6))
        .collect();
    let d = day_of(bars, vec![]);
    let p = params(|c| c.daily_loss_limit = 0.01);
    let mut e = env(&p, &d);
    let r = e.step_target(1.0).unwrap(); // 100 shares at 100; marked at 100: −costs only
    assert!(!r.terminated);
    let r = e.step_target(1.0).unwrap(); // marked at 90: −1,000 − 11 → limit
    assert!(r.terminated && !r.truncated);
    assert_eq!(e.finished.as_ref().unwrap().reason, EndReason::LossLimit);
    assert_eq!(e.ledger().position, 0, "flattened");

    let p = params(|c| c.max_episode_steps = 2);
    let mut e = env(&p, &d);
    e.step_target(1.0).unwrap();
    let r = e.step_target(1.0).unwrap();
    assert!(r.truncated && !r.terminated);
    assert_eq!(e.finished.as_ref().unwrap().reason, EndReason::MaxSteps);
    assert_eq!(e.ledger().position, 100, "truncation does not flatten");
}

#[test]
fn short_positions_pay_borrow_per_millisecond_held() {
    // 36.5 % a year = 0.1 % a day = 1e-3 / 86,400,000 per ms. Short 100 at $100 for the
    // 2 s from bar 1 to bar 3 marked at 100: 100 · 100 · 1e-3 / 86,400,000 · 1,000 per step.
    let p = params(|c| c.costs.borrow_rate_annual = 0.365);
    let bars = vec![
        bar(0, 100.0, 100.0, 1e6),
        bar(1, 100.0, 100.0, 1e6),
        bar(2, 100.0, 100.0, 1e6),
        bar(4, 100.0, 100.0, 1e6),
        bar(5, 100.0, 100.0, 1e6),
    ];
    let d = day_of(bars, vec![]);
    let mut e = env(&p, &d);
    e.step_target(-1.0).unwrap(); // sells 100 at bar 1; charged for bar 0 → 1 (1 s)
    let c1 = e.ledger().costs - e.last_fills[0].costs.total();
    let per_sec = 100.0 * 100.0 * 1e-3 / 86_400.0;
    assert!((c1 - per_sec).abs() < 1e-12, "{c1}");
    let before = e.ledger().costs;
    e.step_target(-1.0).unwrap(); // bar 1 → 2
    e.step_target(-1.0).unwrap(); // bar 2 → 4 (2 s)
    assert!((e.ledger().costs - before - 3.0 * per_sec).abs() < 1e-12);
}

#[test]
fn dsr_reward_equals_a_plain_loop_of_the_formula() {
    let eta = 0.1;
    let warmup = 3;
    let p = params(|c| {
        c.reward.kind = RewardKind::Dsr;
        c.reward.dsr_eta = eta;
        c.reward.dsr_warmup = warmup;
        c.reward.dsr_eps = 0.0;
    });
    let closes = [
        100.0, 101.0, 99.5, 102.0, 101.0, 103.5, 100.0, 104.0, 104.5, 103.0, 105.0, 106.0,
    ];
    let bars = closes
        .iter()
        .enumerate()
        .map(|(s, &c)| bar(s as u32, c, c, 1e6))
        .collect();
    let d = day_of(bars, vec![]);
    let mut e = env(&p, &d);
    let targets = [1.0, 1.0, -1.0, 0.5, 1.0, 0.0, -0.5, 1.0, 1.0, 1.0];
    let (mut a, mut b) = (0.0f64, 0.0f64);
    let mut prev_equity = 100_000.0;
    for (step, &t) in targets.iter().enumerate() {
        let r = e.step_target(t).unwrap();
        // Independent truth: R from the account, then Moody & Saffell's D.
        let equity = if r.terminated {
            e.ledger().cash
        } else {
            e.equity()
        };
        let ret = (equity - prev_equity) / 100_000.0;
        prev_equity = equity;
        let (da, db) = (ret - a, ret * ret - b);
        let expected = if step + 1 > warmup as usize && b - a * a > 0.0 {
            (b * da - 0.5 * a * db) / (b - a * a).powf(1.5)
        } else {
            0.0
        };
        a += eta * da;
        b += eta * db;
        assert!(
            (r.reward - expected).abs() <= 1e-9 * expected.abs().max(1.0),
            "step {step}: {} vs {expected}",
            r.reward
        );
        if step + 1 > warmup as usize {
            assert_ne!(expected, 0.0);
        }
    }
}

#[test]
fn observation_fields_are_named_and_sized() {
    let p = params(|_| {});
    assert_eq!(
        p.obs_names(),
        [
            "ret_1",
            "position_frac",
            "unrealized_pnl",
            "time_in_trade",
            "pending_order",
            "time_to_close"
        ]
    );
    let d = flat_day();
    let e = env(&p, &d);
    let o = obs(&e);
    // At bar 0's close (09:30:01) the close is 23,399 s away; a full session is 23,400 s.
    assert_eq!(o[5], ((57_600_000.0 - 34_201_000.0) / 23_400_000.0) as f32);
    assert_eq!(&o[1..5], &[0.0; 4]);
}

#[test]
fn targets_outside_the_range_or_short_when_not_allowed_are_refused() {
    let d = flat_day();
    let mut e = env(&params(|_| {}), &d);
    assert!(
        e.step_target(1.5)
            .unwrap_err()
            .to_string()
            .contains("outside [-1, 1]")
    );
    assert!(e.step_target(f64::NAN).is_err());
    assert!(e.step(7).unwrap_err().to_string().contains("out of range"));
    let long_only = params(|c| {
        c.allow_short = false;
        c.actions = vec![0.0, 1.0];
    });
    let mut e = env(&long_only, &d);
    assert!(
        e.step_target(-0.5)
            .unwrap_err()
            .to_string()
            .contains("allow_short")
    );
    assert_eq!(e.row(), 0, "a refused step changes nothing");
}
