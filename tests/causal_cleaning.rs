//! Causal cleaning: the data a cache holds is the data the live stream sees.
//!
//! The same raw vendor bars go two ways: the cache builder (validation, the bad-print check,
//! features, written to a day cache and read back as the environments read it) and the live
//! stream (each bar as a feed line, checked and turned into a bar record and features one at
//! a time). With the default (causal) cleaning both must give identical bars, flags and
//! features, bit for bit, on real LEAN days with their after-hours prints and on
//! heavy-tailed synthetic one-second days. With the opt-in look-ahead filter they must not:
//! that is what the filter's warning says, and it shows the comparison can fail.

mod common;

use chrono::NaiveDate;
use sim_train::bars::BarSize;
use sim_train::build::{BuildRequest, build_cache, open_source};
use sim_train::cache::{Catalog, DayCache};
use sim_train::calendar::Calendar;
use sim_train::env::day::{DayData, FLAG_SUSPECT};
use sim_train::env::{BarRec, EnvParams};
use sim_train::ingest::{Selection, SourceKind};
use sim_train::live::engine::DayHeader;
use sim_train::live::stream::{BarSink, Stream, vendor_lines};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What the stream made of each bar: by (symbol, date), the bar records and feature rows.
#[derive(Default)]
struct Recorder {
    date: Option<NaiveDate>,
    days: BTreeMap<(String, NaiveDate), (Vec<BarRec>, Vec<f32>)>,
    refused: Vec<String>,
}

impl BarSink for Recorder {
    fn date(&self) -> Option<NaiveDate> {
        self.date
    }
    fn input(&mut self, _: &str, _: i64) -> sim_train::error::Result<()> {
        Ok(())
    }
    fn duplicate(&mut self) {}
    fn bad_bar(&mut self, _: i64, symbol: &str, reason: String) -> sim_train::error::Result<()> {
        self.refused.push(format!("{symbol}: {reason}"));
        Ok(())
    }
    fn feature_time(&mut self, _: f64) {}
    fn feed_lag(&mut self, _: f64) {}
    fn on_bar(
        &mut self,
        h: &DayHeader,
        bar: BarRec,
        features: &[f32],
        _: bool,
        _: Instant,
    ) -> sim_train::error::Result<()> {
        self.date = Some(h.date);
        let day = self
            .days
            .entry((h.symbol_name.to_string(), h.date))
            .or_default();
        day.0.push(bar);
        day.1.extend_from_slice(features);
        Ok(())
    }
}

/// Every feature, the extended session: nothing the comparison could leave out.
fn resolved(extra: &[&str]) -> sim_train::config::Resolved {
    let mut sets = vec!["env.session=\"extended\"".to_string()];
    sets.extend(extra.iter().map(|s| s.to_string()));
    sim_train::config::load(None, &sets).unwrap()
}

fn params(r: &sim_train::config::Resolved) -> EnvParams {
    let p = EnvParams::from_config(&r.config.env).unwrap();
    assert_eq!(p.feature_cols.len(), sim_train::features::N_FEATURES);
    p
}

/// Builds `req` into its cache folder with `r`, and streams the same source's raw bars.
fn both_ways(req: &BuildRequest, r: &sim_train::config::Resolved) -> Recorder {
    build_cache(req, r, false).unwrap_or_else(|e| panic!("{e}"));
    let calendar = Calendar::us_equity();
    // The builder reads the benchmark with the symbols asked for; so does the feed.
    let selection = Selection {
        symbols: req.symbols.as_ref().map(|s| {
            s.iter()
                .cloned()
                .chain(r.config.features.benchmark())
                .collect()
        }),
        from: req.from,
        to: req.to,
        bar: req.bar,
    };
    let source = open_source(req, selection, r, &calendar).unwrap();
    let symbols = Catalog::load_existing(&req.cache_dir).unwrap().symbols();
    let benchmark = r.config.features.benchmark();
    let mut stream = Stream::new(
        &symbols,
        calendar.clone(),
        req.bar,
        &params(r),
        benchmark.clone(),
    );
    let mut rec = Recorder::default();
    // Received long after each bar closed (the stream refuses bars from the future).
    let received_ns = 7_000_000_000 * 1_000_000_000;
    for date in source.dates().unwrap() {
        let lines = vendor_lines(
            source.as_ref(),
            date,
            &calendar,
            req.bar,
            &r.config.ingest.validation,
            benchmark.as_deref(),
        )
        .unwrap();
        for (_, _, line) in lines {
            stream.on_line(&mut rec, &line, received_ns).unwrap();
        }
    }
    assert!(
        rec.refused.is_empty(),
        "refused: {:?}",
        &rec.refused[..rec.refused.len().min(5)]
    );
    assert_eq!(stream.late_benchmark_bars(), 0);
    rec
}

/// Differences between the cache (read as the environments read it) and the stream, one
/// line each; also returns the bars compared and the suspect flags among them.
fn differences(
    cache: &Path,
    r: &sim_train::config::Resolved,
    rec: &Recorder,
) -> (Vec<String>, usize, usize) {
    let p = params(r);
    let catalog = Catalog::load_existing(cache).unwrap();
    let mut diffs = Vec::new();
    let (mut bars, mut suspects) = (0, 0);
    for e in catalog.entries.values() {
        let day = DayData::from_cache(&DayCache::open(cache.join(&e.file)).unwrap(), &p);
        let Some((got, feats)) = rec.days.get(&(e.symbol.clone(), e.date)) else {
            diffs.push(format!(
                "{} {}: in the cache, not streamed",
                e.symbol, e.date
            ));
            continue;
        };
        if got.len() != day.bars.len() {
            diffs.push(format!(
                "{} {}: {} bars cached, {} streamed",
                e.symbol,
                e.date,
                day.bars.len(),
                got.len()
            ));
            continue;
        }
        for (i, (a, b)) in day.bars.iter().zip(got).enumerate() {
            if a != b {
                diffs.push(format!(
                    "{} {} bar {i}: cached {a:?}, streamed {b:?}",
                    e.symbol, e.date
                ));
            }
        }
        let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        if bits(&day.features) != bits(feats) {
            diffs.push(format!("{} {}: features differ", e.symbol, e.date));
        }
        bars += got.len();
        suspects += got.iter().filter(|b| b.flags & FLAG_SUSPECT != 0).count();
    }
    if rec.days.len() != catalog.entries.len() {
        diffs.push(format!(
            "{} days streamed, {} cached",
            rec.days.len(),
            catalog.entries.len()
        ));
    }
    (diffs, bars, suspects)
}

/// The share of the streamed (= cached) bars on which feature `name` is not neutral.
fn defined_share(rec: &Recorder, name: &str) -> f64 {
    let k = sim_train::features::feature_index(name).unwrap();
    let n = sim_train::features::N_FEATURES;
    let neutral = sim_train::features::FEATURE_NEUTRAL[k];
    let (mut defined, mut all) = (0usize, 0usize);
    for (_, feats) in rec.days.values() {
        for row in feats.chunks_exact(n) {
            assert!(row.iter().all(|x| x.is_finite()));
            defined += (row[k] != neutral) as usize;
            all += 1;
        }
    }
    defined as f64 / all.max(1) as f64
}

/// Real Databento trades and quotes (every quote schema merged, trades classified into
/// buyer and seller volume): the cache and the stream, whose lines carry the quote sizes
/// and the trade flow, agree bit for bit.
#[test]
fn on_real_databento_ticks_the_cache_is_what_the_live_stream_sees() {
    let Some(dir) = common::databento_dir() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let r = resolved(&[]);
    for (folder, bar) in [("EQUS.MINI", BarSize::S1), ("XNAS.ITCH", BarSize::S1)] {
        let cache = tmp.path().join(folder);
        let req = BuildRequest {
            source: SourceKind::Dbn,
            input: Some(dir.join(folder)),
            cache_dir: cache.clone(),
            symbols: None,
            from: None,
            to: None,
            bar,
            adjust: sim_train::adjust::AdjustMode::None,
        };
        let rec = both_ways(&req, &r);
        let (diffs, bars, _) = differences(&cache, &r, &rec);
        assert!(diffs.is_empty(), "{folder}: {diffs:?}");
        assert!(bars > 0, "{folder}: nothing compared");
        for name in ["spread_bps", "trade_imbalance"] {
            assert!(
                defined_share(&rec, name) > 0.0,
                "{folder}: {name} never defined"
            );
        }
    }
}

fn lean_request(lean: &Path, bar: BarSize, symbols: &[&str], cache: PathBuf) -> BuildRequest {
    BuildRequest {
        source: SourceKind::Lean,
        input: Some(lean.to_path_buf()),
        cache_dir: cache,
        symbols: Some(symbols.iter().map(|s| s.to_string()).collect()),
        from: None,
        to: None,
        bar,
        adjust: sim_train::adjust::AdjustMode::None,
    }
}

/// Real LEAN days, after-hours included (BAC 2013-10-07 17:07 and IBM 2013-10-08 16:15 are
/// prints the look-ahead filter used to delete): the cache and the stream agree on every
/// bar, flag and feature, at one minute and at one second.
#[test]
fn on_real_lean_days_the_cache_is_what_the_live_stream_sees() {
    let test = "on_real_lean_days_the_cache_is_what_the_live_stream_sees";
    let Some(data) = common::shared_data(test) else {
        return;
    };
    let lean = data.join("lean");
    let tmp = tempfile::tempdir().unwrap();
    let r = resolved(&[]);
    for (bar, symbols) in [
        (BarSize::M1, &["AIG", "BAC", "IBM", "SPY"][..]),
        (BarSize::S1, &["BAC", "IBM"][..]),
    ] {
        let cache = tmp.path().join(format!("causal-{}", bar.as_str()));
        let req = lean_request(&lean, bar, symbols, cache.clone());
        let rec = both_ways(&req, &r);
        let (diffs, bars, suspects) = differences(&cache, &r, &rec);
        assert!(
            diffs.is_empty(),
            "{bar:?}: {} differences, first: {:?}",
            diffs.len(),
            &diffs[..diffs.len().min(5)]
        );
        assert!(bars > 10_000, "{bar:?}: {bars} bars compared");
        // The check flags some real prints, the same ones both ways (compared above).
        assert!(
            suspects > 0,
            "{bar:?}: no suspect print flagged in {bars} bars"
        );

        // After-hours prints are kept, and in both.
        let bac = &rec.days[&(
            "BAC".to_string(),
            NaiveDate::from_ymd_opt(2013, 10, 7).unwrap(),
        )]
            .0;
        let late = bac
            .iter()
            .filter(|b| b.ts_ms >= 17 * 3_600_000 + 7 * 60_000)
            .count();
        assert!(late > 0, "{bar:?}: BAC 2013-10-07 has no bar from 17:07 on");
        // Features v2 took part: the quotes' microstructure and the cross-sectional
        // columns against SPY are defined on many of the bars compared (at 1 s, 42 % for
        // rel_ret_15: SPY's own bars, where it is 0, are many of them, and a bar whose
        // window starts before SPY's first bar of the day has no benchmark close).
        for name in [
            "spread_bps",
            "microprice_dev_bps",
            "ofi",
            "rel_ret_15",
            "bench_corr_60",
        ] {
            let defined = defined_share(&rec, name);
            assert!(
                defined > 0.3,
                "{bar:?}: {name} defined on {defined:.3} of the bars"
            );
        }
        if bar == BarSize::M1 {
            // The two prints the issue names: BAC 2013-10-07 17:07 and IBM 2013-10-08 16:15.
            for (sym, day, at) in [("BAC", 7, 17 * 60 + 7), ("IBM", 8, 16 * 60 + 15)] {
                let date = NaiveDate::from_ymd_opt(2013, 10, day).unwrap();
                let bars = &rec.days[&(sym.to_string(), date)].0;
                assert!(
                    bars.iter().any(|b| b.ts_ms == at * 60_000),
                    "{sym} {date}: no bar at minute {at}"
                );
            }
        }
    }

    // The opt-in look-ahead filter deletes prints the stream keeps: the comparison sees it.
    let r = resolved(&["ingest.validation.lookahead_outliers=true"]);
    let cache = tmp.path().join("lookahead-1m");
    let req = lean_request(
        &lean,
        BarSize::M1,
        &["AIG", "BAC", "IBM", "SPY"],
        cache.clone(),
    );
    let rec = both_ways(&req, &r);
    let (diffs, _, _) = differences(&cache, &r, &rec);
    for day in ["BAC 2013-10-07", "IBM 2013-10-08"] {
        assert!(
            diffs
                .iter()
                .any(|d| d.starts_with(day) && d.contains("bars cached")),
            "the look-ahead filter should have removed a print of {day}: {diffs:?}"
        );
    }
    let meta = Catalog::load_existing(&cache).unwrap();
    let e = meta.entries.values().next().unwrap();
    let day = DayCache::open(cache.join(&e.file)).unwrap();
    assert_eq!(day.meta().cleaning.as_deref(), Some("lookahead-outliers"));
}

/// Heavy-tailed synthetic one-second days (the generator's Student-t moves and momentum
/// days, where the look-ahead filter removed 0.2 % of the bars): nothing is removed, the
/// check flags the largest moves, and the cache and the stream agree bit for bit.
#[test]
fn on_heavy_tailed_synthetic_seconds_the_cache_is_what_the_live_stream_sees() {
    let tmp = tempfile::tempdir().unwrap();
    let r = resolved(&["synth.symbols=3", "synth.days=2", "synth.bar=\"1s\""]);
    let spec =
        sim_train::synth::SynthSpec::from_params(&r.config.synth, &Calendar::us_equity()).unwrap();
    let synth_dir = tmp.path().join("synth");
    sim_train::synth::write_universe(&synth_dir, &spec).unwrap();
    let req = BuildRequest {
        source: SourceKind::Synth,
        input: Some(synth_dir),
        cache_dir: tmp.path().join("cache"),
        symbols: None,
        from: None,
        to: None,
        bar: BarSize::S1,
        adjust: sim_train::adjust::AdjustMode::None,
    };
    let rec = both_ways(&req, &r);
    let (diffs, bars, suspects) = differences(&req.cache_dir, &r, &rec);
    assert!(
        diffs.is_empty(),
        "{} differences, first: {:?}",
        diffs.len(),
        &diffs[..diffs.len().min(5)]
    );
    assert!(bars > 50_000, "{bars} bars compared");
    assert!(
        suspects > 0,
        "no suspect print flagged in {bars} heavy-tailed bars"
    );

    // No rule fired, so nothing was removed or changed; the flags are in the summary.
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(req.cache_dir.join("build.json")).unwrap()).unwrap();
    assert_eq!(summary["cleaning"], "causal");
    assert_eq!(summary["problems"], serde_json::json!({}), "{summary}");
    assert_eq!(
        summary["suspect_prints"].as_u64().unwrap() as usize,
        suspects
    );
}

/// A cache folder never mixes cleanings: extending a causal cache with look-ahead cleaning
/// is refused, naming both; a catalog from before the setting was recorded reads as
/// look-ahead cleaned (the old default), so extending it causally is refused too.
#[test]
fn one_cache_folder_never_mixes_cleanings() {
    let tmp = tempfile::tempdir().unwrap();
    let sets = ["synth.symbols=1", "synth.days=2", "synth.bar=\"1m\""];
    let r = resolved(&sets);
    let req = BuildRequest {
        source: SourceKind::Synth,
        input: None,
        cache_dir: tmp.path().join("cache"),
        symbols: None,
        from: None,
        to: None,
        bar: BarSize::M1,
        adjust: sim_train::adjust::AdjustMode::None,
    };
    build_cache(&req, &r, false).unwrap();
    let catalog = Catalog::load_existing(&req.cache_dir).unwrap();
    assert_eq!(catalog.settings.as_ref().unwrap().cleaning, "causal");

    let mut sets_lookahead = sets.to_vec();
    sets_lookahead.push("ingest.validation.lookahead_outliers=true");
    let e = build_cache(&req, &resolved(&sets_lookahead), false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cleaning causal") && e.contains("cleaning lookahead-outliers"),
        "{e}"
    );

    // An old catalog: no `cleaning` in its settings.
    let path = req.cache_dir.join("catalog.json");
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    json["settings"].as_object_mut().unwrap().remove("cleaning");
    std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
    let old = Catalog::load_existing(&req.cache_dir).unwrap();
    assert_eq!(old.settings.unwrap().cleaning, "lookahead-outliers");
    let e = build_cache(&req, &r, false).unwrap_err().to_string();
    assert!(e.contains("cleaning lookahead-outliers"), "{e}");
}

/// The ordering the stream asks of producers: a benchmark bar that comes after another
/// symbol's bar of its time is counted (that bar used an older benchmark close), one
/// that comes first is not, and an untraded benchmark is taken for the features only.
#[test]
fn a_late_benchmark_bar_is_counted() {
    let r = resolved(&[]);
    let line = |sym: &str, ts: &str, close: f64| {
        format!(
            r#"{{"symbol":"{sym}","ts":"{ts}","open":{close},"high":{close},"low":{close},"close":{close},"volume":100}}"#
        )
    };
    let received_ns = 7_000_000_000 * 1_000_000_000;
    let mut stream = Stream::new(
        &["AIG".to_string()],
        Calendar::us_equity(),
        BarSize::M1,
        &params(&r),
        Some("SPY".to_string()),
    );
    let mut rec = Recorder::default();
    for l in [
        line("SPY", "2024-01-05T09:30:00-05:00", 470.0),
        line("AIG", "2024-01-05T09:30:00-05:00", 45.0),
        line("AIG", "2024-01-05T09:31:00-05:00", 45.1),
        line("SPY", "2024-01-05T09:31:00-05:00", 470.5),
    ] {
        stream.on_line(&mut rec, &l, received_ns).unwrap();
    }
    assert!(rec.refused.is_empty(), "{:?}", rec.refused);
    assert_eq!(stream.late_benchmark_bars(), 1);
    // Only the traded symbol reaches the engine.
    assert_eq!(rec.days.len(), 1);
    assert_eq!(rec.days.values().next().unwrap().0.len(), 2);
}
