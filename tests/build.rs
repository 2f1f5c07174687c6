//! The builder on synthetic data with known ground truth: halts reach the cache header and
//! the `halted` feature, the previous close chains day to day, and the clock index agrees
//! with the bars.

use sim_train::build::{BuildRequest, build_cache};
use sim_train::cache::{Catalog, DayCache};
use sim_train::features::feature_index;
use sim_train::ingest::SourceKind;

#[test]
fn synthetic_halts_and_previous_closes_reach_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let r = sim_train::config::load(
        None,
        &[
            "synth.symbols=4".into(),
            "synth.days=4".into(),
            "synth.momentum_share=1.0".into(),
            "synth.halt_prob=1.0".into(),
        ],
    )
    .unwrap();
    let spec = sim_train::synth::SynthSpec::from_params(
        &r.config.synth,
        &sim_train::calendar::Calendar::us_equity(),
    )
    .unwrap();
    let synth_dir = dir.path().join("synth");
    sim_train::synth::write_universe(&synth_dir, &spec).unwrap();
    let truth = sim_train::synth::read_truth(&synth_dir).unwrap();
    let cache = dir.path().join("cache");
    let req = BuildRequest {
        source: SourceKind::Synth,
        input: Some(synth_dir),
        cache_dir: cache.clone(),
        symbols: None,
        from: None,
        to: None,
        bar: spec.bar(),
        adjust: sim_train::adjust::AdjustMode::None,
    };
    let s = build_cache(&req, &r, false).unwrap();
    assert_eq!(s.days_written, 16);
    let cat = Catalog::load(&cache).unwrap();
    let halted = feature_index("halted").unwrap();
    let mut halts_seen = 0;
    for t in &truth {
        let e = cat.get(&t.symbol, t.date).unwrap();
        let c = DayCache::open(cache.join(&e.file)).unwrap();
        // Halts: header spans equal the truth's, and exactly the bars inside them are flagged.
        let spans =
            sim_train::cache::writer::halt_secs(&c.meta().halts, t.date, c.meta().utc_offset_sec);
        let want: Vec<[i64; 2]> = t.halts.iter().map(|h| [h[0] as i64, h[1] as i64]).collect();
        assert_eq!(spans, want, "{} {}", t.symbol, t.date);
        for i in 0..c.rows() {
            let s = c.sec_of_day(i);
            let inside = want.iter().any(|h| s >= h[0] && s < h[1]);
            assert_eq!(
                c.feature(halted)[i] == 1.0,
                inside,
                "{} {} row {i}",
                t.symbol,
                t.date
            );
            if inside {
                assert_eq!(c.volumes()[i], 0);
            }
        }
        halts_seen += want.len();
        // The previous close in the header is the previous trading day's last close before
        // its regular close (after-hours bars excluded); the first day has none.
        let prev_day = spec.trading_days.iter().rev().find(|d| **d < t.date);
        match (c.meta().prev_close, prev_day) {
            (Some(p), Some(&pd)) => {
                let prev =
                    DayCache::open(cache.join(&cat.get(&t.symbol, pd).unwrap().file)).unwrap();
                let close_sec = prev.meta().session.close_sec as i64;
                let last = (0..prev.rows())
                    .rev()
                    .find(|&i| prev.sec_of_day(i) < close_sec)
                    .unwrap();
                assert_eq!(p, prev.closes()[last], "{} {}", t.symbol, t.date);
            }
            (None, None) => {}
            (p, d) => panic!(
                "{} {}: prev close {p:?} with previous day {d:?}",
                t.symbol, t.date
            ),
        }
        // Every bar is found by the clock index at its own start time.
        let ck = c.clock();
        for i in 0..c.rows() {
            assert_eq!(ck.exact(c.sec_of_day(i)), Some(i as u32));
        }
    }
    assert!(halts_seen > 0, "the params force halts");
}

/// Writes a one-symbol CSV of 1-minute bars (Unix seconds) from 09:30 on 2024-03-05 with the
/// given closes; a close <= 0 makes a bad bar.
fn csv_day(dir: &std::path::Path, symbol: &str, closes: &[f64]) {
    let t0 = sim_train::clock::utc_ns(chrono::NaiveDate::from_ymd_opt(2024, 3, 5).unwrap(), 34_200)
        / 1_000_000_000;
    let mut s = String::from("timestamp,open,high,low,close,volume\n");
    for (i, c) in closes.iter().enumerate() {
        let hi = if *c > 0.0 { c + 0.1 } else { 1.0 };
        s.push_str(&format!("{},{c},{hi},{c},{c},100\n", t0 + 60 * i as i64));
    }
    std::fs::write(dir.join(format!("{symbol}.csv")), s).unwrap();
}

fn csv_request(input: &std::path::Path, cache: &std::path::Path) -> BuildRequest {
    BuildRequest {
        source: SourceKind::Csv,
        input: Some(input.to_path_buf()),
        cache_dir: cache.to_path_buf(),
        symbols: None,
        from: None,
        to: None,
        bar: sim_train::bars::BarSize::M1,
        adjust: sim_train::adjust::AdjustMode::None,
    }
}

#[test]
fn a_failing_symbol_day_leaves_the_others_listed() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    csv_day(&input, "AAA", &[10.0, 10.1, 10.2]);
    csv_day(&input, "BBB", &[20.0, -1.0, 20.2]);
    let cache = dir.path().join("cache");
    let r = sim_train::config::load(None, &["ingest.validation.policy.non_positive=fail".into()])
        .unwrap();
    let e = build_cache(&csv_request(&input, &cache), &r, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("BBB 2024-03-05") && e.contains("BBB.csv"), "{e}");
    // AAA was written in parallel with the failing BBB: it is listed, and the folder verifies.
    let cat = Catalog::load(&cache).unwrap();
    assert_eq!(cat.symbols(), vec!["AAA".to_string()]);
    assert!(sim_train::cache::verify::verify_dir(&cache).unwrap().ok());
}

#[test]
fn a_day_dropped_on_rebuild_loses_its_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    csv_day(&input, "BBB", &[20.0, -1.0, 20.2, 20.3]);
    let cache = dir.path().join("cache");
    let fix = sim_train::config::load(None, &[]).unwrap();
    let s = build_cache(&csv_request(&input, &cache), &fix, false).unwrap();
    assert_eq!(
        (
            s.days_written,
            s.problems[&sim_train::validate::Problem::NonPositive]
        ),
        (1, 1)
    );
    let file = cache.join("BBB/2024-03-05.simday");
    assert_eq!(
        DayCache::open(&file).unwrap().rows(),
        3,
        "the bad bar was dropped"
    );
    let drop = sim_train::config::load(
        None,
        &["ingest.validation.policy.non_positive=drop-day".into()],
    )
    .unwrap();
    let s = build_cache(&csv_request(&input, &cache), &drop, false).unwrap();
    assert_eq!((s.days_written, s.days_dropped), (0, 1));
    assert!(!file.exists());
    assert!(Catalog::load(&cache).unwrap().entries.is_empty());
    assert!(sim_train::cache::verify::verify_dir(&cache).unwrap().ok());
}

#[test]
fn a_changed_factor_file_cannot_mix_scales_in_one_cache() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let factors = dir.path().join("factors");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::create_dir_all(&factors).unwrap();
    csv_day(&input, "XYZ", &[40.0, 40.5, 41.0]);
    // A 2-for-1 split after the data: adjusted prices are halved.
    std::fs::write(
        factors.join("xyz.csv"),
        "20240306,1,0.5,41\n20501231,1,1,0\n",
    )
    .unwrap();
    let cache = dir.path().join("cache");
    let mut req = csv_request(&input, &cache);
    req.adjust = sim_train::adjust::AdjustMode::Split;
    let set = format!("ingest.factor_files=\"{}\"", factors.display());
    let r = sim_train::config::load(None, &[set]).unwrap();
    build_cache(&req, &r, false).unwrap();
    let day = DayCache::open(cache.join("XYZ/2024-03-05.simday")).unwrap();
    assert_eq!(day.closes()[0], sim_train::bars::Price::from_dollars(20.0));
    assert_eq!(day.volumes()[0], 200);
    // Same file again: fine. Then another split is added: a new scale, refused.
    build_cache(&req, &r, false).unwrap();
    std::fs::write(
        factors.join("xyz.csv"),
        "20240306,1,0.25,41\n20250101,1,0.5,20\n20501231,1,1,0\n",
    )
    .unwrap();
    let e = build_cache(&req, &r, false).unwrap_err().to_string();
    assert!(e.contains("XYZ") && e.contains("new --cache folder"), "{e}");
}

#[test]
fn synthetic_universes_skip_holidays_and_early_closes() {
    let mut p = sim_train::config::load(None, &[]).unwrap().config.synth;
    p.start = chrono::NaiveDate::from_ymd_opt(2024, 11, 25).unwrap();
    p.days = 5;
    let spec =
        sim_train::synth::SynthSpec::from_params(&p, &sim_train::calendar::Calendar::us_equity())
            .unwrap();
    let days: Vec<String> = spec.trading_days.iter().map(|d| d.to_string()).collect();
    // Thanksgiving (28th) is closed and the 29th closes at 13:00.
    assert_eq!(
        days,
        [
            "2024-11-25",
            "2024-11-26",
            "2024-11-27",
            "2024-12-02",
            "2024-12-03"
        ]
    );
}
