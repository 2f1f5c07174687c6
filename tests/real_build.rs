//! The whole builder on the real samples in `../shared/data`: every LEAN symbol at every
//! resolution and every Databento OHLCV file becomes a verified cache whose bars are
//! exactly the source's; AAPL's 7-for-1 split is continuous under `--adjust split` all
//! the way into the features; warm-up makes a partial build equal to a full one.

mod common;

use chrono::NaiveDate;
use dbn::decode::DecodeRecord;
use sim_train::adjust::AdjustMode;
use sim_train::bars::{BarSize, Price};
use sim_train::build::{BuildRequest, BuildSummary, build_cache};
use sim_train::cache::verify::verify_dir;
use sim_train::cache::{Catalog, DayCache, day_path};
use sim_train::features::feature_index;
use sim_train::ingest::SourceKind;
use std::path::{Path, PathBuf};

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn req(source: SourceKind, input: PathBuf, cache: &Path, bar: BarSize) -> BuildRequest {
    BuildRequest {
        source,
        input: Some(input),
        cache_dir: cache.to_path_buf(),
        symbols: None,
        from: None,
        to: None,
        bar,
        adjust: AdjustMode::None,
    }
}

fn build(r: &BuildRequest) -> BuildSummary {
    let cfg = sim_train::config::load(None, &[]).unwrap();
    let s = build_cache(r, &cfg, false).unwrap_or_else(|e| panic!("{e}"));
    let v = verify_dir(&r.cache_dir).unwrap();
    assert!(v.ok(), "{:?}", v.bad);
    assert_eq!(v.files, s.days_written);
    s
}

fn day(cache: &Path, sym: &str, date: NaiveDate) -> DayCache {
    DayCache::open(day_path(cache, sym, date)).unwrap()
}

#[test]
fn every_lean_symbol_and_resolution_builds() {
    let Some(data) = common::shared_data("every_lean_symbol_and_resolution_builds") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    for (bar, folder, from, to) in [
        (BarSize::S1, "second", None, None),
        (BarSize::M1, "minute", None, None),
        // Hour and daily files span decades; a month keeps the test quick.
        (
            BarSize::H1,
            "hour",
            Some(d(2013, 10, 1)),
            Some(d(2013, 10, 31)),
        ),
        (
            BarSize::D1,
            "daily",
            Some(d(2013, 10, 1)),
            Some(d(2013, 10, 31)),
        ),
    ] {
        for sym in ["SPY", "AAPL", "IBM", "BAC", "AIG"] {
            // Expected days: one per trade zip for intraday data; October 2013 had 23
            // trading days (hour and daily files cover it for every symbol).
            let expected = match from {
                Some(_) => 23,
                None => {
                    let dir = data
                        .join("lean/equity/usa")
                        .join(folder)
                        .join(sym.to_lowercase());
                    let Ok(rd) = std::fs::read_dir(&dir) else {
                        continue; // no AAPL at second resolution in the samples
                    };
                    rd.filter(|e| {
                        e.as_ref()
                            .unwrap()
                            .file_name()
                            .to_string_lossy()
                            .ends_with("_trade.zip")
                    })
                    .count()
                }
            };
            let cache = tmp.path().join(format!("{bar}-{sym}"));
            let mut r = req(SourceKind::Lean, data.join("lean"), &cache, bar);
            r.symbols = Some(vec![sym.into()]);
            r.from = from;
            r.to = to;
            let s = build(&r);
            assert_eq!(s.days_dropped, 0, "{bar} {sym}");
            // The benchmark (features.benchmark, SPY by default) is built with the symbol.
            let cat = Catalog::load(&cache).unwrap();
            let days_of = |x: &str| cat.entries.values().filter(|e| e.symbol == x).count();
            assert_eq!(days_of(sym), expected, "{bar} {sym}: {s:?}");
            assert_eq!(s.benchmark.as_deref(), Some("SPY"));
            assert_eq!(s.benchmark_days, days_of("SPY"), "{bar} {sym}");
            assert!(s.benchmark_days > 0, "{bar} {sym}: the samples have SPY");
            assert_eq!(
                s.days_written,
                expected + if sym == "SPY" { 0 } else { days_of("SPY") }
            );
            let mut want = vec![sym.to_string(), "SPY".to_string()];
            want.sort();
            want.dedup();
            assert_eq!(cat.symbols(), want);
        }
    }
}

#[test]
fn lean_spy_minute_bar_matches_the_raw_file_through_the_cache() {
    let Some(data) =
        common::shared_data("lean_spy_minute_bar_matches_the_raw_file_through_the_cache")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut r = req(SourceKind::Lean, data.join("lean"), tmp.path(), BarSize::M1);
    r.symbols = Some(vec!["SPY".into()]);
    build(&r);
    let c = day(tmp.path(), "SPY", d(2013, 10, 7));
    // Raw first line: 14400000,1674100,1674100,1672500,1672700,3197 (04:00 EDT = 08:00 UTC).
    assert_eq!(c.ts_ns()[0], 1_381_132_800 * 1_000_000_000);
    assert_eq!(c.opens()[0], Price::from_dollars(167.41));
    assert_eq!(c.highs()[0], Price::from_dollars(167.41));
    assert_eq!(c.lows()[0], Price::from_dollars(167.25));
    assert_eq!(c.closes()[0], Price::from_dollars(167.27));
    assert_eq!(c.volumes()[0], 3197);
    // Quote at the first bar's close: the quote file's first line closes at 167.27 / 167.27.
    assert_eq!(c.bid().unwrap()[0], Price::from_dollars(167.25));
    assert_eq!(c.ask().unwrap()[0], Price::from_dollars(167.27));
    // The clock index finds the 09:30 bar from 09:30:59.
    let row = c.clock().latest_at_or_before(9 * 3600 + 1800 + 59).unwrap() as usize;
    assert_eq!(c.sec_of_day(row), 9 * 3600 + 1800);
    assert_eq!(c.meta().session.close_sec, 16 * 3600);
    // 2013-10-07's previous trading day is Friday 2013-10-04: its last regular close.
    let fri = day(tmp.path(), "SPY", d(2013, 10, 4));
    let last_regular = (0..fri.rows())
        .rev()
        .find(|&i| fri.sec_of_day(i) < 16 * 3600)
        .unwrap();
    assert_eq!(c.meta().prev_close, Some(fri.closes()[last_regular]));
}

#[test]
fn aapl_split_is_continuous_into_the_features() {
    let Some(data) = common::shared_data("aapl_split_is_continuous_into_the_features") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let gap = feature_index("gap_prev_close").unwrap();
    let mut gaps = Vec::new();
    for adjust in [AdjustMode::None, AdjustMode::Split] {
        let cache = tmp.path().join(adjust.as_str());
        let mut r = req(SourceKind::Lean, data.join("lean"), &cache, BarSize::M1);
        r.symbols = Some(vec!["AAPL".into()]);
        r.adjust = adjust;
        build(&r);
        let fri = day(&cache, "AAPL", d(2014, 6, 6));
        let mon = day(&cache, "AAPL", d(2014, 6, 9));
        let open_row = mon.clock().exact(9 * 3600 + 1800).unwrap() as usize;
        let last_fri = (0..fri.rows())
            .rev()
            .find(|&i| fri.sec_of_day(i) < 16 * 3600)
            .unwrap();
        let ratio = mon.closes()[open_row].dollars() / fri.closes()[last_fri].dollars();
        match adjust {
            // Raw: ~$645 Friday, ~$92 Monday.
            AdjustMode::None => assert!((ratio * 7.0 - 1.0).abs() < 0.05, "raw ratio {ratio}"),
            // Adjusted: one scale; Monday opened within a few percent of Friday's close.
            _ => assert!((ratio - 1.0).abs() < 0.05, "adjusted ratio {ratio}"),
        }
        gaps.push(mon.feature(gap)[open_row]);
        assert_eq!(mon.meta().adjust, adjust.as_str());
    }
    assert!(
        gaps[0] < -0.8,
        "raw gap feature sees the split as a crash: {}",
        gaps[0]
    );
    assert!(gaps[1].abs() < 0.05, "adjusted gap feature: {}", gaps[1]);
}

#[test]
fn every_databento_ohlcv_sample_builds_with_the_sources_bars() {
    let Some(data) =
        common::shared_data("every_databento_ohlcv_sample_builds_with_the_sources_bars")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    for dataset in ["XNAS.ITCH", "EQUS.MINI"] {
        for (bar, schema) in [
            (BarSize::S1, "1s"),
            (BarSize::M1, "1m"),
            (BarSize::H1, "1h"),
            (BarSize::D1, "1d"),
        ] {
            let file = data
                .join("databento")
                .join(dataset)
                .join(format!("test_data.ohlcv-{schema}.dbn.zst"));
            let cache = tmp.path().join(format!("{dataset}-{schema}"));
            let s = build(&req(SourceKind::Dbn, file.clone(), &cache, bar));
            assert!(s.days_written >= 1, "{}", file.display());
            // The cached bars are the decoder's bars (independent decode with the dbn crate).
            let mut dec = dbn::decode::dbn::Decoder::from_zstd_file(&file).unwrap();
            let mut raw = Vec::new();
            while let Some(rec) = dec.decode_record::<dbn::OhlcvMsg>().unwrap() {
                raw.push((rec.hd.ts_event as i64, rec.close, rec.volume));
            }
            let cat = Catalog::load(&cache).unwrap();
            let mut cached = Vec::new();
            for e in cat.entries.values() {
                let c = DayCache::open(cache.join(&e.file)).unwrap();
                for i in 0..c.rows() {
                    cached.push((c.ts_ns()[i], c.closes()[i].0, c.volumes()[i]));
                }
            }
            if bar == BarSize::D1 {
                // Daily bars are re-stamped at New York midnight of their session date.
                let strip =
                    |v: &Vec<(i64, i64, u64)>| v.iter().map(|x| (x.1, x.2)).collect::<Vec<_>>();
                assert_eq!(strip(&cached), strip(&raw), "{}", file.display());
            } else {
                assert_eq!(cached, raw, "{}", file.display());
            }
        }
    }
}

#[test]
fn warm_up_makes_a_partial_build_equal_a_full_one() {
    let Some(data) = common::shared_data("warm_up_makes_a_partial_build_equal_a_full_one") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let full = tmp.path().join("full");
    let part = tmp.path().join("part");
    let mut r = req(SourceKind::Lean, data.join("lean"), &full, BarSize::M1);
    r.symbols = Some(vec!["IBM".into()]);
    build(&r);
    r.cache_dir = part.clone();
    r.from = Some(d(2013, 10, 9));
    let s = build(&r);
    assert_eq!(
        s.warmup_days_read, 6,
        "04, 07 and 08 October of IBM and of its benchmark SPY warm the features up"
    );
    let a = day(&full, "IBM", d(2013, 10, 9));
    let b = day(&part, "IBM", d(2013, 10, 9));
    for k in 0..sim_train::features::N_FEATURES {
        assert_eq!(a.feature(k), b.feature(k), "feature {k}");
    }
    // And the first bar's 20-bar features are warm, not neutral.
    assert_ne!(b.feature(feature_index("sma_ratio_20").unwrap())[0], 0.0);
    assert!(!part.join("IBM").join("2013-10-08.simday").exists());
}
