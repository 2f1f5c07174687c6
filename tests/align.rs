//! Multi-ticker alignment against hand-computed joins of two tiny days.

use chrono::NaiveDate;
use sim_train::align::align;
use sim_train::bars::{BarSize, Price, RawDay};
use sim_train::build::{clock_spec, session_or_default};
use sim_train::cache::format::SessionTimes;
use sim_train::cache::{DayCache, DayInfo, day_path, write_day};
use sim_train::calendar::Calendar;
use sim_train::clock;
use sim_train::config::JoinKind;
use sim_train::features::{FEATURE_NAMES, FEATURE_SET, FEATURE_VERSION, N_FEATURES};

fn date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 3, 5).unwrap()
}

/// A 1-minute day with bars at `mins` after 09:30 and closes `closes`.
fn day(dir: &std::path::Path, sym: &str, mins: &[i64], closes: &[f64]) -> DayCache {
    let mut d = RawDay::new(sym, date(), BarSize::M1, "test");
    for (&m, &c) in mins.iter().zip(closes) {
        let p = Price::from_dollars(c);
        d.push(
            clock::utc_ns(date(), 34_200 + 60 * m),
            p,
            p,
            p,
            p,
            10 * (m as u64 + 1),
        );
    }
    let s = session_or_default(&Calendar::us_equity(), date());
    let info = DayInfo {
        session: SessionTimes {
            pre_open_sec: s.pre_open_sec,
            open_sec: s.open_sec,
            close_sec: s.close_sec,
            post_close_sec: s.post_close_sec,
            early_close: s.early_close,
        },
        utc_offset_sec: clock::ny_offset_secs(date()),
        source: "test".into(),
        adjust: "none".into(),
        feature_set: FEATURE_SET.into(),
        feature_version: FEATURE_VERSION,
        prev_close: None,
        clock: clock_spec(&s, BarSize::M1),
        cleaning: "causal".into(),
    };
    let feats = vec![vec![0f32; mins.len()]; N_FEATURES];
    let path = day_path(dir, sym, date());
    write_day(&path, &d, None, &FEATURE_NAMES, &feats, &info).unwrap();
    DayCache::open(path).unwrap()
}

#[test]
fn inner_outer_and_ffill_joins() {
    let dir = tempfile::tempdir().unwrap();
    let a = day(dir.path(), "AAA", &[0, 1, 3], &[10.0, 11.0, 13.0]);
    let b = day(dir.path(), "BBB", &[1, 2, 3], &[21.0, 22.0, 23.0]);
    let days = [a, b];
    let cols = vec!["close".to_string()];
    let t = |m: i64| clock::utc_ns(date(), 34_200 + 60 * m);
    let nan = f64::NAN;
    let same = |x: &[f64], y: &[f64]| {
        x.len() == y.len()
            && x.iter()
                .zip(y)
                .all(|(p, q)| p == q || (p.is_nan() && q.is_nan()))
    };

    let inner = align(&days, JoinKind::Inner, &cols, 12.0).unwrap();
    assert_eq!(inner.ts_ns, vec![t(1), t(3)]);
    assert_eq!(
        inner.columns[0],
        ("AAA_close".to_string(), vec![11.0, 13.0])
    );
    assert_eq!(
        inner.columns[1],
        ("BBB_close".to_string(), vec![21.0, 23.0])
    );

    let outer = align(&days, JoinKind::Outer, &cols, 12.0).unwrap();
    assert_eq!(outer.ts_ns, vec![t(0), t(1), t(2), t(3)]);
    assert!(same(&outer.columns[0].1, &[10.0, 11.0, nan, 13.0]));
    assert!(same(&outer.columns[1].1, &[nan, 21.0, 22.0, 23.0]));
    assert_eq!((outer.report[0].missing, outer.report[0].filled), (1, 0));

    let ffill = align(
        &days,
        JoinKind::Ffill,
        &["close".into(), "volume".into()],
        12.0,
    )
    .unwrap();
    assert!(same(&ffill.columns[0].1, &[10.0, 11.0, 11.0, 13.0]));
    assert!(
        same(&ffill.columns[1].1, &[10.0, 20.0, 20.0, 40.0]),
        "AAA_volume carried"
    );
    assert!(
        same(&ffill.columns[2].1, &[nan, 21.0, 22.0, 23.0]),
        "nothing before BBB's first bar"
    );
    assert_eq!(ffill.columns[3].0, "BBB_volume");
    let r = &ffill.report;
    assert_eq!((r[0].bars, r[0].missing, r[0].filled), (3, 1, 1));
    assert_eq!((r[1].bars, r[1].missing, r[1].filled), (3, 1, 0));
    // AAA's longest stretch without a bar: 09:31 → 09:33; BBB's: clock start 09:30 → 09:31.
    assert_eq!(r[0].longest_gap_s, 120.0);
    assert_eq!(r[1].longest_gap_s, 60.0);

    let e = align(&days, JoinKind::Inner, &["nope".into()], 12.0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope") && e.contains("rsi_14"), "{e}");
}
