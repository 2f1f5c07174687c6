//! The live layer's risk manager (each rule triggered on a hand-worked case) and journal
//! (exact read-back, a crash at every byte, altered files refused, the book rebuilt).

use sim_train::live::control::Command;
use sim_train::live::journal::{Book, Event, Journal, Record};
use sim_train::live::risk::{Proposal, RiskConfig, RiskManager, TradingState};

const S: i64 = 1_000_000_000;

fn open_cfg() -> RiskConfig {
    // Everything loose, so each test tightens only the rule it exercises.
    RiskConfig {
        max_position_usd: 1e12,
        max_position_frac: 1e6,
        max_open_positions: 1_000,
        max_gross_usd: 1e12,
        max_gross_frac: 1e6,
        max_short_share: 1.0,
        max_net_usd: 1e12,
        stop_frac: 0.02,
        max_trade_risk_frac: 0.99,
        max_daily_drawdown: 0.5,
        max_consecutive_losses: 1000,
        loss_pause_secs: 900,
        max_trades_per_day: 1_000_000,
        max_orders_per_minute: 1_000_000,
        flatten_before_close_secs: 0,
    }
}

fn ask<'a>(symbol: &'a str, ts_s: i64, current: i64, target: i64, price: f64) -> Proposal<'a> {
    Proposal {
        symbol,
        ts_ns: ts_s * S,
        current,
        target,
        price,
        secs_to_close: 3600.0,
    }
}

fn allowed(rm: &mut RiskManager, p: &Proposal) -> (i64, String) {
    let v = rm.check(p);
    (v.target, v.reasons.join("; "))
}

#[test]
fn position_and_exposure_limits_cut_only_new_risk() {
    let mut cfg = open_cfg();
    cfg.max_position_usd = 100_000.0;
    let mut rm = RiskManager::new(cfg, 1e9);
    let (t, why) = allowed(&mut rm, &ask("A", 0, 0, 2_000, 100.0));
    assert_eq!(t, 1_000);
    assert!(why.contains("max position"), "{why}");
    // Shorts are capped the same way; a position above the cap may still be reduced.
    assert_eq!(allowed(&mut rm, &ask("A", 1, 0, -1_500, 100.0)).0, -1_000);
    assert_eq!(
        allowed(&mut rm, &ask("A", 2, 5_000, 4_000, 100.0)),
        (4_000, String::new())
    );

    // Gross: 900 k $ held in B leaves room for 1,000 shares of A at 100 $.
    let mut cfg = open_cfg();
    cfg.max_gross_usd = 1_000_000.0;
    let mut rm = RiskManager::new(cfg, 1e9);
    rm.on_fill("B", 9_000, 100.0);
    let (t, why) = allowed(&mut rm, &ask("A", 0, 0, 5_000, 100.0));
    assert_eq!(t, 1_000);
    assert!(why.contains("max gross exposure"), "{why}");

    // Net: 450 k $ long in B leaves 50 k $ of long room, but shorts offset it.
    let mut cfg = open_cfg();
    cfg.max_net_usd = 500_000.0;
    let mut rm = RiskManager::new(cfg, 1e9);
    rm.on_fill("B", 4_500, 100.0);
    let (t, why) = allowed(&mut rm, &ask("A", 0, 0, 1_000, 100.0));
    assert_eq!(t, 500);
    assert!(why.contains("max net exposure"), "{why}");
    assert_eq!(allowed(&mut rm, &ask("A", 1, 0, -1_000, 100.0)).0, -1_000);
}

#[test]
fn limits_in_percent_of_equity_follow_the_marked_equity() {
    // Half of 100 k $ of equity per position: 500 shares at 100 $.
    let mut cfg = open_cfg();
    cfg.max_position_frac = 0.5;
    let mut rm = RiskManager::new(cfg, 100_000.0);
    let (t, why) = allowed(&mut rm, &ask("A", 0, 0, 2_000, 100.0));
    assert_eq!(t, 500);
    assert!(why.contains("max position 0.5 of equity"), "{why}");
    // After equity is marked down to 80 k $, 400 shares; a larger position is only kept.
    rm.mark(80_000.0);
    assert_eq!(allowed(&mut rm, &ask("A", 1, 0, 2_000, 100.0)).0, 400);
    assert_eq!(allowed(&mut rm, &ask("A", 2, 450, 900, 100.0)).0, 450);

    // Gross at 2 × 100 k $: 150 k $ held in B leaves 50 k $, 500 shares of A.
    let mut cfg = open_cfg();
    cfg.max_gross_frac = 2.0;
    let mut rm = RiskManager::new(cfg, 100_000.0);
    rm.on_fill("B", -1_500, 100.0);
    let (t, why) = allowed(&mut rm, &ask("A", 0, 0, 5_000, 100.0));
    assert_eq!(t, 500);
    assert!(why.contains("max gross exposure 2 of equity"), "{why}");
}

#[test]
fn open_positions_are_capped_and_counted_when_decided() {
    let mut cfg = open_cfg();
    cfg.max_open_positions = 2;
    let mut rm = RiskManager::new(cfg, 1e9);
    rm.on_fill("A", 100, 10.0);
    // B decided, not yet filled: it counts.
    assert_eq!(allowed(&mut rm, &ask("B", 0, 0, -100, 10.0)).0, -100);
    let (t, why) = allowed(&mut rm, &ask("C", 0, 0, 100, 10.0));
    assert_eq!(t, 0);
    assert!(why.contains("max_open_positions = 2"), "{why}");
    // A held position may grow or flip: it stays one position.
    assert_eq!(allowed(&mut rm, &ask("A", 1, 100, 300, 10.0)).0, 300);
    assert_eq!(allowed(&mut rm, &ask("A", 2, 300, -300, 10.0)).0, -300);
    // B flattened: room for C.
    rm.on_fill("B", -100, 10.0);
    assert_eq!(allowed(&mut rm, &ask("B", 3, -100, 0, 10.0)).0, 0);
    rm.on_fill("B", 0, 10.0);
    assert_eq!(allowed(&mut rm, &ask("C", 4, 0, 100, 10.0)).0, 100);
}

#[test]
fn the_short_share_of_gross_exposure_is_capped() {
    // 300 k $ long in B; shorts at most a quarter of gross: (x) / (300 k + x) ≤ 0.25
    // gives x ≤ 100 k $, 1,000 shares of A at 100 $.
    let mut cfg = open_cfg();
    cfg.max_short_share = 0.25;
    let mut rm = RiskManager::new(cfg, 1e9);
    rm.on_fill("B", 3_000, 100.0);
    let (t, why) = allowed(&mut rm, &ask("A", 0, 0, -5_000, 100.0));
    assert_eq!(t, -1_000);
    assert!(why.contains("max short share 0.25"), "{why}");
    // Longs are not limited by it, and a short may always be reduced.
    assert_eq!(allowed(&mut rm, &ask("C", 0, 0, 5_000, 100.0)).0, 5_000);
    assert_eq!(
        allowed(&mut rm, &ask("A", 1, -3_000, -2_000, 100.0)).0,
        -2_000
    );

    // 0: no shorts at all, and a long may still flip only to flat.
    let mut cfg = open_cfg();
    cfg.max_short_share = 0.0;
    let mut rm = RiskManager::new(cfg, 1e9);
    assert_eq!(allowed(&mut rm, &ask("A", 0, 0, -10, 100.0)).0, 0);
    assert_eq!(allowed(&mut rm, &ask("A", 1, 50, -10, 100.0)).0, 0);
}

#[test]
fn per_trade_risk_limits_the_added_shares() {
    // 2 % of 100 k $ = 2,000 $ at risk; with a 2 % stop that is 100 k $ of new position:
    // 1,000 shares at 100 $ on top of the 500 held.
    let mut cfg = open_cfg();
    cfg.max_trade_risk_frac = 0.02;
    let mut rm = RiskManager::new(cfg, 100_000.0);
    let (t, why) = allowed(&mut rm, &ask("A", 0, 500, 3_000, 100.0));
    assert_eq!(t, 1_500);
    assert!(why.contains("per-trade risk"), "{why}");
    // Across a sign change the whole new side is new risk.
    assert_eq!(allowed(&mut rm, &ask("A", 1, 500, -3_000, 100.0)).0, -1_000);
}

#[test]
fn trading_states_kill_switch_and_reduce_only() {
    let mut rm = RiskManager::new(open_cfg(), 100_000.0);
    let change = rm.kill("operator").unwrap();
    assert_eq!(
        (change.from, change.to),
        (TradingState::Active, TradingState::Halted)
    );
    let (t, why) = allowed(&mut rm, &ask("A", 0, 300, 1_000, 10.0));
    assert_eq!(t, 0, "a kill flattens");
    assert!(why.contains("halted"), "{why}");
    // A new day does not lift a kill; resume does.
    assert!(rm.begin_day(100_000.0).is_none());
    assert_eq!(rm.state(), TradingState::Halted);
    rm.resume("operator");
    assert_eq!(rm.state(), TradingState::Active);

    rm.reduce_only("end of strategy");
    assert_eq!(allowed(&mut rm, &ask("A", 1, 1_000, 2_000, 10.0)).0, 1_000);
    assert_eq!(allowed(&mut rm, &ask("A", 2, 1_000, -500, 10.0)).0, 0);
    assert_eq!(allowed(&mut rm, &ask("A", 3, 1_000, 400, 10.0)).0, 400);
    // Reduce-only outlives a drawdown halt: the next day is reducing, not active.
    rm.mark(1.0);
    assert_eq!(rm.state(), TradingState::Halted);
    rm.begin_day(100_000.0);
    assert_eq!(rm.state(), TradingState::Reducing);
}

#[test]
fn flatten_before_the_close() {
    let mut cfg = open_cfg();
    cfg.flatten_before_close_secs = 60;
    let mut rm = RiskManager::new(cfg, 100_000.0);
    let mut p = ask("A", 0, 200, 500, 10.0);
    p.secs_to_close = 30.0;
    let (t, why) = allowed(&mut rm, &p);
    assert_eq!(t, 0);
    assert!(why.contains("to the close"), "{why}");
}

#[test]
fn order_rate_is_limited_over_a_sliding_minute() {
    let mut cfg = open_cfg();
    cfg.max_orders_per_minute = 3;
    let mut rm = RiskManager::new(cfg, 100_000.0);
    for (k, ts) in [0, 5, 10].into_iter().enumerate() {
        assert_eq!(
            allowed(&mut rm, &ask("A", ts, k as i64, k as i64 + 1, 10.0)).0,
            k as i64 + 1
        );
    }
    let (t, why) = allowed(&mut rm, &ask("A", 20, 3, 4, 10.0));
    assert_eq!(t, 3, "the fourth order in a minute is refused");
    assert!(why.contains("order rate"), "{why}");
    // Holding (no order) is always fine, and so is reducing: a halt or the close can
    // always clear the book, however many orders went out.
    assert_eq!(
        allowed(&mut rm, &ask("A", 30, 3, 3, 10.0)),
        (3, String::new())
    );
    assert_eq!(allowed(&mut rm, &ask("A", 31, 3, 1, 10.0)).0, 1);
    // Reducing orders count too: at 61 s the orders of 5, 10 and 31 s still fill the
    // minute; at 92 s they have all left it.
    assert_eq!(allowed(&mut rm, &ask("A", 61, 1, 4, 10.0)).0, 1);
    assert_eq!(allowed(&mut rm, &ask("A", 92, 1, 4, 10.0)).0, 4);
    rm.kill("test");
    for ts in 93..100 {
        assert_eq!(
            allowed(&mut rm, &ask("B", ts, 50, 50, 10.0)).0,
            0,
            "a kill flattens at any rate"
        );
    }
}

#[test]
fn targets_decided_on_the_same_bar_share_the_exposure_limits() {
    let mut cfg = open_cfg();
    cfg.max_gross_usd = 150_000.0;
    let mut rm = RiskManager::new(cfg, 1e9);
    // Both decided before either fills: the second sees the first's pending target.
    assert_eq!(allowed(&mut rm, &ask("A", 0, 0, 1_000, 100.0)).0, 1_000);
    let (t, why) = allowed(&mut rm, &ask("B", 0, 0, 1_000, 100.0));
    assert_eq!(t, 500);
    assert!(why.contains("max gross exposure"), "{why}");
    // Once filled at their targets they count as positions, the same way.
    rm.on_fill("A", 1_000, 100.0);
    rm.on_fill("B", 500, 100.0);
    assert_eq!(allowed(&mut rm, &ask("C", 1, 0, 1_000, 100.0)).0, 0);
}

#[test]
fn a_target_whose_order_the_broker_rejected_no_longer_counts() {
    let mut cfg = open_cfg();
    cfg.max_gross_usd = 150_000.0;
    let mut rm = RiskManager::new(cfg, 1e9);
    assert_eq!(allowed(&mut rm, &ask("A", 0, 0, 1_000, 100.0)).0, 1_000);
    // A's order was rejected: B gets the whole room.
    rm.order_failed("A");
    assert_eq!(allowed(&mut rm, &ask("B", 0, 0, 1_000, 100.0)).0, 1_000);
}

#[test]
fn a_bad_price_allows_no_new_risk() {
    let mut rm = RiskManager::new(open_cfg(), 100_000.0);
    for price in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let (t, why) = allowed(&mut rm, &ask("A", 0, 100, 500, price));
        assert_eq!(t, 100, "price {price}");
        assert!(why.contains("bad price"), "{why}");
        assert_eq!(allowed(&mut rm, &ask("A", 0, 100, 0, price)).0, 0);
    }
}

#[test]
fn consecutive_losses_pause_new_risk() {
    let mut cfg = open_cfg();
    cfg.max_consecutive_losses = 3;
    cfg.loss_pause_secs = 600;
    let mut rm = RiskManager::new(cfg, 100_000.0);
    rm.on_round_trip(-5.0, 0);
    rm.on_round_trip(-5.0, S);
    rm.on_round_trip(2.0, 2 * S); // a win resets the streak
    rm.on_round_trip(-5.0, 3 * S);
    rm.on_round_trip(-5.0, 4 * S);
    assert_eq!(allowed(&mut rm, &ask("A", 5, 0, 100, 10.0)).0, 100);
    rm.on_round_trip(-5.0, 6 * S); // the third loss in a row: paused until 606 s
    let (t, why) = allowed(&mut rm, &ask("A", 7, 0, 100, 10.0));
    assert_eq!(t, 0);
    assert!(why.contains("losing trades in a row"), "{why}");
    assert_eq!(
        allowed(&mut rm, &ask("A", 8, 100, 0, 10.0)).0,
        0,
        "reducing is allowed"
    );
    assert_eq!(allowed(&mut rm, &ask("A", 607, 0, 100, 10.0)).0, 100);
}

#[test]
fn max_trades_per_day_then_reduce_only_until_the_next_day() {
    let mut cfg = open_cfg();
    cfg.max_trades_per_day = 2;
    let mut rm = RiskManager::new(cfg, 100_000.0);
    assert_eq!(allowed(&mut rm, &ask("A", 0, 0, 100, 10.0)).0, 100);
    assert_eq!(allowed(&mut rm, &ask("B", 1, 0, 100, 10.0)).0, 100);
    let (t, why) = allowed(&mut rm, &ask("C", 2, 0, 100, 10.0));
    assert_eq!(t, 0);
    assert!(why.contains("max trades per day"), "{why}");
    assert_eq!(
        allowed(&mut rm, &ask("A", 3, 100, 0, 10.0)).0,
        0,
        "reducing still passes"
    );
    rm.begin_day(100_000.0);
    assert_eq!(allowed(&mut rm, &ask("C", 4, 0, 100, 10.0)).0, 100);
}

#[test]
fn daily_drawdown_from_the_high_water_mark_halts_the_day() {
    let mut cfg = open_cfg();
    cfg.max_daily_drawdown = 0.03;
    let mut rm = RiskManager::new(cfg, 100_000.0);
    assert!(rm.mark(103_000.0).is_none());
    // 100,000 / 103,000 − 1 = −2.9 %: not yet.
    assert!(rm.mark(100_000.0).is_none());
    let change = rm.mark(99_900.0).expect("−3.01 % from 103,000 halts");
    assert_eq!(change.to, TradingState::Halted);
    assert!(
        change.reason.contains("daily drawdown"),
        "{}",
        change.reason
    );
    assert_eq!(allowed(&mut rm, &ask("A", 0, 50, 100, 10.0)).0, 0);
    assert_eq!(rm.begin_day(99_900.0).unwrap().to, TradingState::Active);
}

#[test]
fn bad_risk_settings_name_their_key() {
    let err = sim_train::config::load(None, &["live.risk.max_daily_drawdown=1.5".into()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("live.risk.max_daily_drawdown"), "{err}");
    let err = sim_train::config::load(None, &["live.risk.max_gross_usd=-1".into()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("live.risk.max_gross_usd"), "{err}");
    for (set, key) in [
        ("live.risk.max_short_share=1.5", "live.risk.max_short_share"),
        (
            "live.risk.max_position_frac=0",
            "live.risk.max_position_frac",
        ),
        ("live.risk.max_gross_frac=-2", "live.risk.max_gross_frac"),
        ("live.risk.max_open_positions=0", "max_open_positions"),
    ] {
        let err = sim_train::config::load(None, &[set.into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains(key), "{set}: {err}");
    }
}

fn events() -> Vec<Event> {
    let fill = |symbol: &str, order, shares, price, cost| Event::Fill {
        symbol: symbol.into(),
        order,
        shares,
        price,
        cost,
    };
    vec![
        Event::Day {
            date: chrono::NaiveDate::from_ymd_opt(2024, 3, 1).unwrap(),
            equity: 100_000.0,
        },
        Event::Decision {
            symbol: "A".into(),
            action: 4,
            target: 200,
        },
        Event::Order {
            symbol: "A".into(),
            id: 1,
            shares: 200,
        },
        fill("A", 1, 100, 10.0, 1.0),
        fill("A", 1, 100, 12.0, 1.0),
        Event::Rejection {
            symbol: "B".into(),
            requested: 500,
            allowed: 100,
            reasons: vec!["max position 1000 $ at 10.00".into()],
        },
        fill("B", 2, 100, 10.0, 0.5),
        fill("A", 3, -150, 13.0, 1.0),
        fill("A", 4, -100, 9.0, 1.0),
        Event::State {
            from: TradingState::Active,
            to: TradingState::Halted,
            reason: "kill switch: test".into(),
        },
        fill("A", 5, 50, 8.0, 0.25),
        fill("B", 6, -100, 11.0, 0.5),
    ]
}

#[test]
fn the_book_folds_fills_by_average_price() {
    let records: Vec<Record> = events()
        .into_iter()
        .enumerate()
        .map(|(k, event)| Record {
            seq: k as u64 + 1,
            ts_ns: k as i64,
            event,
        })
        .collect();
    // A: +100 @10, +100 @12 (avg 11); −150 @13 realizes 300; −100 @9 realizes
    // 50 · (9 − 11) = −100 and opens −50 @9; +50 @8 realizes 50 · (9 − 8) = 50.
    // B: +100 @10, −100 @11 realizes 100.
    let book = Book::from_records(&records);
    assert!(book.positions.is_empty(), "{:?}", book.positions);
    assert!((book.realized - (300.0 - 100.0 + 50.0 + 100.0)).abs() < 1e-9);
    assert!((book.costs - 5.25).abs() < 1e-12);
    let mid = Book::from_records(&records[..9]);
    assert_eq!(mid.positions["A"].shares, -50);
    assert_eq!(mid.positions["A"].avg_price, 9.0);
    assert_eq!(mid.positions["B"].shares, 100);
}

#[test]
fn the_journal_reads_back_exactly_and_continues_its_numbering() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("live/journal.jsonl");
    let mut opened = Journal::open(&path, true).unwrap();
    assert!(opened.records.is_empty());
    let mut written = Vec::new();
    for (k, e) in events().into_iter().enumerate().take(6) {
        written.push(opened.journal.append(k as i64 * S, e).unwrap());
    }
    drop(opened);
    let mut again = Journal::open(&path, true).unwrap();
    assert_eq!(again.records, written);
    assert!(again.damaged_tail.is_none());
    let next = again.journal.append(99, events()[6].clone()).unwrap();
    assert_eq!(next.seq, 7);
}

/// A crash can stop a write at any byte: reopening at every cut keeps exactly the
/// complete records before it, reports the rest, and appends after them; the book
/// rebuilt equals the book of those records.
#[test]
fn a_crash_at_any_byte_loses_at_most_the_record_being_written() {
    let tmp = tempfile::tempdir().unwrap();
    let full = tmp.path().join("full.jsonl");
    let mut j = Journal::open(&full, false).unwrap().journal;
    let records: Vec<Record> = events()
        .into_iter()
        .enumerate()
        .map(|(k, e)| j.append(k as i64, e).unwrap())
        .collect();
    drop(j);
    let bytes = std::fs::read(&full).unwrap();
    let ends: Vec<usize> = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i + 1)
        .collect();
    let cut_path = tmp.path().join("cut.jsonl");
    for cut in 0..=bytes.len() {
        std::fs::write(&cut_path, &bytes[..cut]).unwrap();
        let mut o = Journal::open(&cut_path, false).unwrap();
        let complete = ends.iter().filter(|&&e| e <= cut).count();
        assert_eq!(o.records, records[..complete], "cut at {cut}");
        let on_boundary = cut == 0 || ends.contains(&cut);
        assert_eq!(o.damaged_tail.is_some(), !on_boundary, "cut at {cut}");
        assert_eq!(
            Book::from_records(&o.records),
            Book::from_records(&records[..complete])
        );
        let r = o.journal.append(1, events()[0].clone()).unwrap();
        assert_eq!(r.seq, complete as u64 + 1);
        let reread = Journal::open(&cut_path, false).unwrap();
        assert!(
            reread.damaged_tail.is_none(),
            "cut at {cut}: the tail was not cut off"
        );
        assert_eq!(reread.records.len(), complete + 1);
    }
}

#[test]
fn an_altered_journal_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("j.jsonl");
    let mut j = Journal::open(&path, false).unwrap().journal;
    for (k, e) in events().into_iter().enumerate() {
        j.append(k as i64, e).unwrap();
    }
    drop(j);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // A changed digit in record 4 (a fill's price), with good records after it.
    let edited = text.replacen("\"price\":10.0", "\"price\":11.0", 1);
    assert_ne!(edited, text);
    std::fs::write(&path, &edited).unwrap();
    let err = Journal::open(&path, false)
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("was altered"), "{err}");
    // A record removed from the middle: a gap in the numbering.
    let mut gap = lines.clone();
    gap.remove(3);
    std::fs::write(&path, gap.join("\n") + "\n").unwrap();
    let err = Journal::open(&path, false)
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("was due"), "{err}");
}

mod common;

use common::{LOOSE_RISK as LOOSE, exported, sim_train};
use std::path::Path;

fn live_cmd(
    bundle: &Path,
    cache: &Path,
    journal: &Path,
    from: &str,
    extra: &[&str],
) -> assert_cmd::Command {
    let mut cmd = sim_train();
    cmd.arg("-q");
    for s in LOOSE {
        cmd.args(["--set", s]);
    }
    cmd.args(["live", "--policy"])
        .arg(bundle)
        .arg(format!("--feed=replay:{}", cache.display()))
        .args(["--from", from, "--no-fsync", "--journal"])
        .arg(journal)
        .args(extra);
    cmd
}

fn journal_records(path: &Path) -> Vec<Record> {
    Journal::open(path, false).unwrap().records
}

#[test]
fn a_live_replay_makes_exactly_the_fills_of_eval() {
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, cache) = exported(tmp.path());
    let eval = tmp.path().join("eval");
    sim_train()
        .args(["-q", "eval", "--from", "2024-01-05", "--policy"])
        .arg(&bundle)
        .arg("--cache")
        .arg(&cache)
        .arg("--out")
        .arg(&eval)
        .assert()
        .success();
    let journal = tmp.path().join("live.jsonl");
    live_cmd(&bundle, &cache, &journal, "2024-01-05", &[])
        .assert()
        .success();

    let want = common::eval_fills(&eval);
    let got = common::journal_fills(&journal_records(&journal));
    assert!(want.len() > 10, "{} fills: too few to compare", want.len());
    // Each symbol's fills, at the same times, shares and prices.
    assert_eq!(got, want);
    // Every decision was allowed unchanged, and the book is flat at the end.
    let records = journal_records(&journal);
    assert!(
        !records
            .iter()
            .any(|r| matches!(r.event, Event::Rejection { .. }))
    );
    assert!(Book::from_records(&records).positions.is_empty());
}

/// A crash at any moment: the journal cut anywhere (as a crash leaves it) and the
/// process killed while it runs; each restart replays, checks the journal and continues,
/// and the journal ends exactly as an uninterrupted run's.
#[test]
fn a_restarted_live_run_ends_exactly_as_an_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, cache) = exported(tmp.path());
    let whole = tmp.path().join("whole.jsonl");
    live_cmd(&bundle, &cache, &whole, "2024-01-05", &[])
        .assert()
        .success();
    let full = std::fs::read(&whole).unwrap();
    assert!(full.len() > 10_000);

    let cut = tmp.path().join("cut.jsonl");
    for k in 1..8 {
        let at = full.len() * k / 8 + k * 37;
        std::fs::write(&cut, &full[..at]).unwrap();
        live_cmd(&bundle, &cache, &cut, "2024-01-05", &[])
            .assert()
            .success();
        assert!(std::fs::read(&cut).unwrap() == full, "cut at byte {at}");
    }

    // Killed (SIGKILL) later and later after its start, until a run gets to finish; the
    // kills that land while it writes leave a partial journal the next run continues.
    // Every day of the cache, for a run long enough to be caught writing.
    let all_days = tmp.path().join("all.jsonl");
    live_cmd(&bundle, &cache, &all_days, "2024-01-02", &[])
        .assert()
        .success();
    let full = std::fs::read(&all_days).unwrap();
    let killed = tmp.path().join("killed.jsonl");
    let bin = assert_cmd::cargo::cargo_bin("sim-train");
    let (mut kills, mut partial) = (0, 0);
    for attempt in 0..400u64 {
        let mut cmd = std::process::Command::new(&bin);
        cmd.arg("-q");
        for s in LOOSE {
            cmd.args(["--set", s]);
        }
        let mut child = cmd
            .args(["live", "--policy"])
            .arg(&bundle)
            .arg(format!("--feed=replay:{}", cache.display()))
            .args(["--from", "2024-01-02", "--no-fsync", "--journal"])
            .arg(&killed)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200 + 4 * attempt));
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success());
            break;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        let len = std::fs::metadata(&killed).map_or(0, |m| m.len() as usize);
        if len > 0 && len < full.len() {
            partial += 1;
        }
    }
    eprintln!("killed {kills} times, {partial} of them while the journal was being written");
    assert!(partial > 0, "no kill landed while the run was writing");
    assert!(
        std::fs::read(&killed).unwrap() == full,
        "after {kills} kills"
    );

    // A journal of another replay is refused, not continued.
    sim_train()
        .args(["-q", "live", "--policy"])
        .arg(&bundle)
        .arg(format!("--feed=replay:{}", cache.display()))
        .args([
            "--from",
            "2024-01-05",
            "--symbols",
            "SYN000",
            "--no-fsync",
            "--journal",
        ])
        .arg(&whole)
        .assert()
        .failure()
        .code(3)
        .stderr(predicates::str::contains(
            "belongs to another bundle, feed or config",
        ));
}

#[test]
fn the_kill_file_flattens_and_halts() {
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, cache) = exported(tmp.path());
    let kill = tmp.path().join("KILL");
    std::fs::write(&kill, "").unwrap();
    let journal = tmp.path().join("j.jsonl");
    live_cmd(
        &bundle,
        &cache,
        &journal,
        "2024-01-05",
        &["--kill-file", kill.to_str().unwrap()],
    )
    .assert()
    .success();
    let records = journal_records(&journal);
    let halts = records
        .iter()
        .filter(|r| matches!(&r.event, Event::State { to: TradingState::Halted, reason, .. } if reason.contains("kill file")))
        .count();
    assert_eq!(halts, 1, "one halt, and it sticks across days");
    assert!(
        records
            .iter()
            .any(|r| matches!(r.event, Event::Decision { .. }))
    );
    assert!(
        !records
            .iter()
            .any(|r| matches!(r.event, Event::Order { .. } | Event::Fill { .. })),
        "nothing is traded while halted"
    );
    // The policy did want positions: they were cut to flat, each with its reason.
    assert!(records.iter().any(|r| matches!(&r.event, Event::Rejection { allowed: 0, reasons, .. } if reasons[0].contains("halted"))));
    // The kill is journaled as a command, with where it came from.
    assert!(records.iter().any(|r| matches!(&r.event, Event::Command { command: Command::Kill, source } if source.contains("kill file"))));
    // Feeds that do not exist or would listen beyond loopback are refused up front.
    for (feed, why) in [
        (
            "udp:127.0.0.1:9",
            "the feeds are replay:CACHE_DIR, stdin and tcp:127.0.0.1:PORT",
        ),
        ("tcp:0.0.0.0:9100", "loopback only"),
        ("stdin", "needs the symbols it trades"),
    ] {
        sim_train()
            .args(["live", "--policy"])
            .arg(&bundle)
            .args(["--feed", feed, "--journal"])
            .arg(tmp.path().join("x.jsonl"))
            .assert()
            .failure()
            .code(2)
            .stderr(predicates::str::contains(why));
    }
}

/// (With the journal fsynced once per bar, as `live` runs by default.)
#[test]
fn bench_live_times_every_decision_and_every_bar() {
    let mut counts = Vec::new();
    for feed in [None, Some("--stream")] {
        let out = sim_train()
            .args(["-q", "bench", "live", "--symbols", "2", "--days", "1"])
            .args(["--fsync", "--json"])
            .args(feed)
            .assert()
            .success();
        let r: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
        assert_eq!(r["feed"], if feed.is_some() { "stream" } else { "replay" });
        let decisions = r["decisions"].as_u64().unwrap();
        let (d, b) = (&r["decision_us"], &r["bar_us"]);
        assert_eq!(d["n"].as_u64().unwrap(), decisions);
        // Both symbols decide on every bar of the session.
        assert_eq!(b["n"].as_u64().unwrap() * 2, decisions);
        assert!(decisions >= 2 * 300, "{decisions}");
        for p in [d, b] {
            let (p50, p99, max) = (
                p["p50"].as_f64().unwrap(),
                p["p99"].as_f64().unwrap(),
                p["max"].as_f64().unwrap(),
            );
            assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{p}");
        }
        counts.push(decisions);
    }
    // The stream of the same bars makes the same decisions.
    assert_eq!(counts[0], counts[1]);
}

/// `--pace K` replays a day at K × real time (a lower bound the clock cannot beat) and
/// trades exactly as at full speed.
#[test]
fn a_paced_replay_takes_the_days_time_over_k_and_trades_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, cache) = exported(tmp.path());
    let fast = tmp.path().join("fast.jsonl");
    live_cmd(
        &bundle,
        &cache,
        &fast,
        "2024-01-05",
        &["--to", "2024-01-05"],
    )
    .assert()
    .success();
    let paced = tmp.path().join("paced.jsonl");
    let t0 = std::time::Instant::now();
    live_cmd(
        &bundle,
        &cache,
        &paced,
        "2024-01-05",
        &["--to", "2024-01-05", "--pace", "36000"],
    )
    .assert()
    .success();
    let took = t0.elapsed().as_secs_f64();
    // The bars replayed run from the day's first bar to its session's last (at least
    // 09:30 to 15:59 = 23,340 s of bar time): 0.65 s at 36,000 ×.
    assert!(took >= 23_340.0 / 36_000.0, "{took} s");
    assert_eq!(
        std::fs::read(&paced).unwrap(),
        std::fs::read(&fast).unwrap()
    );
}
