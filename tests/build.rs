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
