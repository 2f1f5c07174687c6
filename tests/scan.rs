//! The momentum scanner, its index and queries, checked against independent truth: the
//! synthetic generator's ground truth (planted momentum days, squeezes, halts), values
//! computed here directly from the cached bars (real LEAN days), and a causality property
//! (a reset point does not change when the rest of its day is rewritten).

mod common;

use chrono::NaiveDate;
use sim_train::cache::{Catalog, DayCache, day_path};
use sim_train::config::Resolved;
use sim_train::scan::index::{FileStamp, Index};
use sim_train::scan::query::{self, Table};
use sim_train::scan::{Category, DayBars, day_events, scan_cache};
use sim_train::synth::{DayTruth, read_truth};
use std::path::{Path, PathBuf};

fn config(sets: &[&str]) -> Resolved {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    sim_train::config::load(None, &sets).unwrap()
}

/// A synthetic cache (with `synth.*` overrides) and its ground truth.
fn synth(dir: &Path, sets: &[&str]) -> (PathBuf, Vec<DayTruth>) {
    let cache = common::synth_cache(dir, sets);
    let truth = read_truth(&dir.join("synth")).unwrap();
    (cache, truth)
}

struct Counts {
    tp: usize,
    fp: usize,
    fn_: usize,
}

impl Counts {
    fn precision(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fp).max(1) as f64
    }
    fn recall(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fn_).max(1) as f64
    }
}

/// Planted momentum days against the scanner's `momentum` label, and planted halts.
fn check_momentum_and_halts(idx: &Index, truth: &[DayTruth]) -> Counts {
    assert_eq!(
        idx.days.len(),
        truth.len(),
        "every synthetic day is indexed"
    );
    let mut c = Counts {
        tp: 0,
        fp: 0,
        fn_: 0,
    };
    for t in truth {
        let d = &idx.days[idx.find(&t.symbol, t.date).expect("indexed")];
        match (t.momentum, d.momentum) {
            (true, true) => c.tp += 1,
            (false, true) => c.fp += 1,
            (true, false) => {
                eprintln!(
                    "missed {} {}: range {:.3} (planted {:.3}) rel_volume {:?}",
                    t.symbol, t.date, d.range, t.range, d.rel_volume
                );
                c.fn_ += 1
            }
            _ => {}
        }
        assert_eq!(
            d.halts as usize,
            t.halts.len(),
            "{} {}: planted halts",
            t.symbol,
            t.date
        );
        if t.halts.is_empty() && d.category == Category::Risk {
            // Risk without a halt needs the deep drop the config names.
            assert!(d.max_drawdown >= 0.15, "{} {}", t.symbol, t.date);
        }
    }
    c
}

/// Planted squeezes against the squeezes the scanner's pass detects. A planted squeeze
/// `[a, b)` is found when a detected squeeze starts in `[a, b + window]` (plus the halt that
/// may follow it); a detection is right when it starts in such a span of a planted one.
fn check_squeezes(cache: &Path, truth: &[DayTruth], r: &Resolved) -> Counts {
    let w = r.config.scan.squeeze_window_secs;
    let halt = r.config.synth.halt_secs;
    let mut c = Counts {
        tp: 0,
        fp: 0,
        fn_: 0,
    };
    for t in truth {
        let day = DayCache::open(day_path(cache, &t.symbol, t.date)).unwrap();
        let found = day_events(&DayBars::from_cache(&day), &r.config.scan).squeezes;
        let span = |&[a, b]: &[u32; 2]| (a, b + halt + w);
        for s in &t.squeezes {
            let (lo, hi) = span(s);
            if found.iter().any(|&f| f >= lo && f <= hi) {
                c.tp += 1;
            } else {
                c.fn_ += 1;
            }
        }
        c.fp += found
            .iter()
            .filter(|&&f| {
                !t.squeezes.iter().any(|s| {
                    let (lo, hi) = span(s);
                    f >= lo && f <= hi
                })
            })
            .count();
    }
    c
}

/// Scans a synthetic universe and checks the labels against its ground truth: momentum
/// days with precision and recall >= 0.9, every halt, squeezes with precision >= 0.9 and
/// recall >= 0.8. Returns the number of planted momentum days and halted days.
fn check_planted(what: &str, sets: &[&str]) -> (usize, usize) {
    let dir = tempfile::tempdir().unwrap();
    let (cache, truth) = synth(dir.path(), sets);
    let r = config(sets);
    let idx_dir = dir.path().join("index");
    scan_cache(&cache, &idx_dir, &r.config.scan, false).unwrap();
    let idx = Index::load(&idx_dir).unwrap();
    let planted = truth.iter().filter(|t| t.momentum).count();
    let m = check_momentum_and_halts(&idx, &truth);
    let s = check_squeezes(&cache, &truth, &r);
    eprintln!(
        "{what}: momentum days precision {:.3} recall {:.3} ({planted} planted); squeezes precision {:.3} recall {:.3} ({} planted)",
        m.precision(),
        m.recall(),
        s.precision(),
        s.recall(),
        s.tp + s.fn_
    );
    assert!(
        m.precision() >= 0.9 && m.recall() >= 0.9,
        "{what}: momentum precision {} recall {}",
        m.precision(),
        m.recall()
    );
    assert!(
        s.precision() >= 0.9 && s.recall() >= 0.8,
        "{what}: squeeze precision {} recall {}",
        s.precision(),
        s.recall()
    );
    (
        planted,
        truth.iter().filter(|t| !t.halts.is_empty()).count(),
    )
}

#[test]
fn planted_momentum_days_halts_and_squeezes_are_found_1m() {
    let sets = [
        "synth.symbols=16",
        "synth.days=30",
        "synth.bar=1m",
        "synth.seed=3",
    ];
    let (planted, halted) = check_planted("1m", &sets);
    assert!(
        planted >= 60 && halted >= 5,
        "{planted} momentum days, {halted} halted days"
    );
}

#[test]
fn planted_momentum_days_halts_and_squeezes_are_found_1s() {
    let sets = [
        "synth.symbols=6",
        "synth.days=15",
        "synth.bar=1s",
        "synth.seed=5",
        "synth.halt_prob=0.6",
    ];
    let (planted, halted) = check_planted("1s", &sets);
    assert!(
        planted >= 10 && halted >= 3,
        "{planted} momentum days, {halted} halted days"
    );
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

#[test]
fn real_lean_day_metrics_match_the_bars() {
    let dir = tempfile::tempdir().unwrap();
    let Some(cache) = common::lean_cache(
        "real_lean_day_metrics_match_the_bars",
        sim_train::bars::BarSize::M1,
        &["SPY", "IBM", "BAC", "AIG"],
        &dir.path().join("cache"),
    ) else {
        return;
    };
    let r = config(&[]);
    let idx_dir = dir.path().join("index");
    let s = scan_cache(&cache, &idx_dir, &r.config.scan, false).unwrap();
    let idx = Index::load(&idx_dir).unwrap();
    let catalog = Catalog::load_existing(&cache).unwrap();
    assert_eq!(idx.days.len(), catalog.entries.len());
    assert_eq!(s.scanned, idx.days.len());
    let mut with_history = 0;
    for (k, row) in idx.days.iter().enumerate() {
        let day = DayCache::open(day_path(&cache, &row.symbol, row.date)).unwrap();
        let n = day.rows();
        let px = |p: &[sim_train::bars::Price], i: usize| p[i].dollars();
        let (h, l) = (day.highs(), day.lows());
        let open = px(day.opens(), 0);
        let close = px(day.closes(), n - 1);
        let high = (0..n).map(|i| px(h, i)).fold(f64::MIN, f64::max);
        let low = (0..n).map(|i| px(l, i)).fold(f64::MAX, f64::min);
        let volume: u64 = day.volumes().iter().sum();
        // Largest move, by brute force over every pair of bars (i <= j).
        let (mut up, mut down) = (0f64, 0f64);
        for j in 0..n {
            for i in 0..=j {
                up = up.max(px(h, j) / px(l, i) - 1.0);
                down = down.max(1.0 - px(l, j) / px(h, i));
            }
        }
        let close_enough = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
        let what = format!("{} {}", row.symbol, row.date);
        assert!(
            close_enough(row.open, open) && close_enough(row.close, close),
            "{what}"
        );
        assert!(
            close_enough(row.high, high) && close_enough(row.low, low),
            "{what}"
        );
        assert_eq!(row.volume, volume, "{what}");
        assert_eq!(row.bars as usize, n, "{what}");
        assert!(close_enough(row.range, (high - low) / open), "{what}");
        assert!(
            close_enough(row.max_runup, up) && close_enough(row.max_drawdown, down),
            "{what}: {} {} vs {up} {down}",
            row.max_runup,
            row.max_drawdown
        );
        assert!(close_enough(row.max_move, up.max(down)), "{what}");
        assert!(
            close_enough(row.trend, (close - open).abs() / (high - low)),
            "{what}"
        );
        assert_eq!(row.halts as usize, day.meta().halts.len());
        assert!((0.0..=1.0).contains(&row.quality), "{what}");
        // rel_volume: the median of the symbol's earlier cached days (at most 20 of them),
        // computed here from the files.
        let earlier: Vec<&sim_train::scan::DayRow> = idx.days[..k]
            .iter()
            .filter(|e| e.symbol == row.symbol)
            .collect();
        let mut vols: Vec<f64> = earlier
            .iter()
            .rev()
            .take(20)
            .map(|e| {
                DayCache::open(day_path(&cache, &e.symbol, e.date))
                    .unwrap()
                    .volumes()
                    .iter()
                    .sum::<u64>() as f64
            })
            .collect();
        assert_eq!(row.volume_history as usize, vols.len(), "{what}");
        if vols.len() >= 3 {
            with_history += 1;
            vols.sort_by(f64::total_cmp);
            let m = vols.len() / 2;
            let med = if vols.len() % 2 == 1 {
                vols[m]
            } else {
                (vols[m - 1] + vols[m]) / 2.0
            };
            assert!(
                close_enough(row.rel_volume.unwrap(), volume as f64 / med),
                "{what}"
            );
        } else {
            assert_eq!(row.rel_volume, None, "{what}");
        }
        // Reset points are bars of the regular session, before its last 5 minutes.
        let secs: Vec<i64> = (0..n).map(|i| day.sec_of_day(i)).collect();
        for p in idx.resets_of(k) {
            assert!(
                secs.contains(&(p.sec as i64)),
                "{what}: reset at {} is not a bar",
                p.sec
            );
            assert!(
                (34_200..57_600 - 300).contains(&p.sec),
                "{what}: reset at {}",
                p.sec
            );
        }
        assert!(
            idx.resets_of(k)
                .iter()
                .any(|p| p.pattern == sim_train::scan::Pattern::Open),
            "{what}"
        );
    }
    assert!(
        with_history >= 4,
        "some days have a volume history ({with_history})"
    );
}

/// A reset point depends on nothing after it: rewriting every bar after time t (prices,
/// volumes, a new halt) leaves every point at or before t unchanged, field for field.
#[test]
fn reset_points_do_not_see_the_rest_of_their_day() {
    let dir = tempfile::tempdir().unwrap();
    let sets = [
        "synth.symbols=3",
        "synth.days=4",
        "synth.bar=1s",
        "synth.seed=9",
        "synth.momentum_share=0.6",
    ];
    let (cache, truth) = synth(dir.path(), &sets);
    let r = config(&sets);
    let cfg = &r.config.scan;
    let mut checked = 0;
    let mut later_changed = 0;
    for t in truth.iter().filter(|t| t.momentum) {
        let day = DayCache::open(day_path(&cache, &t.symbol, t.date)).unwrap();
        let bars = DayBars::from_cache(&day);
        let full = day_events(&bars, cfg);
        assert!(
            full.resets.len() >= 3,
            "{} {}: a momentum day has reset points",
            t.symbol,
            t.date
        );
        for (c, cut) in full.resets.iter().map(|p| p.sec).enumerate().step_by(3) {
            let mut rewritten = bars.clone();
            let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ c as u64;
            for i in 0..rewritten.rows() {
                if rewritten.secs[i] <= cut {
                    continue;
                }
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let f = 0.7 + (x % 1000) as f64 / 1000.0 * 0.6;
                rewritten.open[i] *= f;
                rewritten.close[i] *= f;
                rewritten.high[i] = rewritten.high[i] * f * 1.01;
                rewritten.low[i] = rewritten.low[i] * f * 0.99;
                rewritten.volume[i] = (x >> 40) as f64 % 50_000.0;
            }
            rewritten.halts.push((cut + 60, cut + 360));
            let again = day_events(&rewritten, cfg);
            let before =
                |ev: &sim_train::scan::resets::DayEvents| -> Vec<sim_train::scan::ResetPoint> {
                    ev.resets.iter().filter(|p| p.sec <= cut).cloned().collect()
                };
            assert_eq!(
                before(&full),
                before(&again),
                "{} {}: points up to {cut} changed",
                t.symbol,
                t.date
            );
            let sq = |ev: &sim_train::scan::resets::DayEvents| -> Vec<u32> {
                ev.squeezes.iter().copied().filter(|&s| s <= cut).collect()
            };
            assert_eq!(sq(&full), sq(&again));
            if full
                .resets
                .iter()
                .filter(|p| p.sec > cut)
                .ne(again.resets.iter().filter(|p| p.sec > cut))
            {
                later_changed += 1;
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "checked {checked} cuts");
    // The rewrite is visible to the pass: the points after the cut do change.
    assert!(
        later_changed * 2 >= checked,
        "{later_changed} of {checked} rewrites changed later points"
    );
}

/// `rel_volume` looks only at earlier days: changing a later day's volume leaves every
/// earlier day's cross-day fields as they were.
#[test]
fn rel_volume_uses_only_earlier_days() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, _) = synth(
        dir.path(),
        &["synth.symbols=2", "synth.days=12", "synth.bar=1m"],
    );
    let r = config(&[]);
    let idx_dir = dir.path().join("index");
    scan_cache(&cache, &idx_dir, &r.config.scan, false).unwrap();
    let idx = Index::load(&idx_dir).unwrap();
    let mut days = idx.days.clone();
    let k = 8; // a day of the first symbol with history
    assert_eq!(days[k].symbol, days[0].symbol);
    days[k].volume *= 10;
    sim_train::scan::index::finish_days(&mut days, &r.config.scan);
    for j in 0..days.len() {
        let same_symbol_later = days[j].symbol == days[k].symbol && j > k;
        if j < k || days[j].symbol != days[k].symbol {
            assert_eq!(days[j].rel_volume, idx.days[j].rel_volume, "day {j}");
            assert_eq!(days[j].category, idx.days[j].category, "day {j}");
        } else if j == k {
            let (a, b) = (days[j].rel_volume.unwrap(), idx.days[j].rel_volume.unwrap());
            assert!((a - 10.0 * b).abs() < 1e-9 * a);
        } else {
            assert!(same_symbol_later);
        }
    }
}

#[test]
fn rescanning_scans_only_new_days_and_equals_a_full_scan() {
    let dir = tempfile::tempdir().unwrap();
    let sets = ["synth.symbols=3", "synth.days=10", "synth.bar=1m"];
    let r = config(&sets);
    let first = common::synth_cache_between(dir.path(), &sets, None, Some(d(2024, 1, 9)));
    let idx_dir = dir.path().join("index");
    let s1 = scan_cache(&first, &idx_dir, &r.config.scan, false).unwrap();
    assert_eq!(s1.scanned, s1.days);
    let old = Index::load(&idx_dir).unwrap();
    let fresh = old.freshness().unwrap();
    assert!(fresh.is_fresh());
    // Extend the cache: the index is now stale ...
    let cache = common::synth_cache_between(dir.path(), &sets, Some(d(2024, 1, 10)), None);
    let stale = old.freshness().unwrap();
    assert!(!stale.not_indexed.is_empty() && stale.gone.is_empty());
    // ... and a rescan opens only the new days.
    let s2 = scan_cache(&cache, &idx_dir, &r.config.scan, false).unwrap();
    assert_eq!(s2.scanned, stale.not_indexed.len());
    assert_eq!(s2.kept, old.days.len());
    assert_eq!(s2.days, old.days.len() + stale.not_indexed.len());
    let inc = Index::load(&idx_dir).unwrap();
    assert!(inc.freshness().unwrap().is_fresh());
    // The same as scanning everything from scratch.
    let full_dir = dir.path().join("full");
    let s3 = scan_cache(&cache, &full_dir, &r.config.scan, false).unwrap();
    assert_eq!(s3.scanned, s3.days);
    let full = Index::load(&full_dir).unwrap();
    assert_eq!(inc.days, full.days);
    assert_eq!(inc.resets, full.resets);
    // Changing a [scan] threshold rescans everything.
    let r2 = config(&["scan.squeeze_move=0.03"]);
    let s4 = scan_cache(&cache, &idx_dir, &r2.config.scan, false).unwrap();
    assert_eq!(s4.scanned, s4.days);
    assert!(s4.full_rescan.is_some());
}

#[test]
fn missing_half_written_and_foreign_indexes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = Index::load(&dir.path().join("nothing")).unwrap_err();
    assert_eq!(e.exit_code(), 5);
    assert!(e.to_string().contains("sim-train scan --cache"), "{e}");

    let (cache, _) = synth(
        dir.path(),
        &["synth.symbols=2", "synth.days=3", "synth.bar=1m"],
    );
    let r = config(&[]);
    let idx_dir = dir.path().join("index");
    scan_cache(&cache, &idx_dir, &r.config.scan, false).unwrap();
    // A manifest that does not match its tables (an interrupted write).
    let m = idx_dir.join("index.json");
    let text = std::fs::read_to_string(&m).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["days"] = serde_json::json!(99);
    std::fs::write(&m, v.to_string()).unwrap();
    let e = Index::load(&idx_dir).unwrap_err().to_string();
    assert!(
        e.contains("interrupted") && e.contains("sim-train scan"),
        "{e}"
    );
    std::fs::write(&m, text).unwrap();
    // The index folder of one cache is not reused for another.
    let other = dir.path().join("other");
    let (other_cache, _) = synth(&other, &["synth.symbols=1", "synth.days=2", "synth.bar=1m"]);
    let e = scan_cache(&other_cache, &idx_dir, &r.config.scan, false).unwrap_err();
    assert!(e.to_string().contains("another cache"), "{e}");
    // A cached day that disappeared is dropped on the next scan, with a count.
    let victim = &Index::load(&idx_dir).unwrap().days[0];
    std::fs::remove_file(&victim.path).unwrap();
    let mut catalog = Catalog::load_existing(&cache).unwrap();
    catalog
        .entries
        .remove(&(victim.symbol.clone(), victim.date));
    catalog.save(&cache).unwrap();
    let s = scan_cache(&cache, &idx_dir, &r.config.scan, false).unwrap();
    assert_eq!((s.dropped, s.scanned), (1, 0));
    let _ = FileStamp::of(&cache.join("catalog.json")).unwrap();
}

#[test]
fn queries_select_what_a_direct_filter_selects() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, _) = synth(
        dir.path(),
        &[
            "synth.symbols=8",
            "synth.days=20",
            "synth.bar=1m",
            "synth.momentum_share=0.3",
        ],
    );
    let r = config(&[]);
    let idx_dir = dir.path().join("index");
    scan_cache(&cache, &idx_dir, &r.config.scan, false).unwrap();
    let idx = Index::load(&idx_dir).unwrap();
    let direct = |f: &dyn Fn(&sim_train::scan::DayRow) -> bool| -> Vec<usize> {
        (0..idx.days.len()).filter(|&k| f(&idx.days[k])).collect()
    };
    let q = |w: &str| query::select(&idx, Table::Days, Some(w)).unwrap();
    let prime_big = q("category = 'prime' and range > 0.2");
    assert_eq!(
        prime_big,
        direct(&|d| d.category == Category::Prime && d.range > 0.2)
    );
    assert!(!prime_big.is_empty());
    // AND binds tighter than OR; NOT; IN; IS NULL; dates as text.
    assert_eq!(
        q("halts >= 1 or momentum = true and quality > 0.6"),
        direct(&|d| d.halts >= 1 || (d.momentum && d.quality > 0.6))
    );
    assert_eq!(
        q("NOT (category in ('mixed', 'dead'))"),
        direct(&|d| !matches!(d.category, Category::Mixed | Category::Dead))
    );
    assert_eq!(q("rel_volume is null"), direct(&|d| d.rel_volume.is_none()));
    assert_eq!(
        q("rel_volume >= 2 and date >= '2024-01-10'"),
        direct(&|d| d.rel_volume.is_some_and(|v| v >= 2.0)
            && d.date >= NaiveDate::from_ymd_opt(2024, 1, 10).unwrap())
    );
    assert_eq!(
        q("symbol != 'SYN001' and squeezes > 0"),
        direct(&|d| d.symbol != "SYN001" && d.squeezes > 0)
    );
    // Reset points, with their day's category.
    let rs = query::select(
        &idx,
        Table::Resets,
        Some("pattern = 'squeeze' and category = 'prime'"),
    )
    .unwrap();
    let want: Vec<usize> = (0..idx.resets.len())
        .filter(|&k| {
            let x = &idx.resets[k];
            x.pattern == sim_train::scan::Pattern::Squeeze
                && idx.days[x.day as usize].category == Category::Prime
        })
        .collect();
    assert_eq!(rs, want);
    // Mistakes name what is wrong.
    for (bad, says) in [
        ("catgory = 'prime'", "unknown column 'catgory'"),
        ("category = 3", "holds text"),
        ("range > 'big'", "holds a number"),
        ("range >", "expected a value"),
        ("(range > 0.1", "missing ')'"),
        ("range > 0.1 range < 0.2", "AND / OR"),
        ("category = 'prime", "unterminated"),
    ] {
        let e = query::select(&idx, Table::Days, Some(bad)).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains(says), "{bad}: {e}");
    }
}

#[test]
fn cli_scan_and_query() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, _) = synth(
        dir.path(),
        &[
            "synth.symbols=4",
            "synth.days=8",
            "synth.bar=1m",
            "synth.momentum_share=0.4",
        ],
    );
    let idx_dir = dir.path().join("index");
    let out = common::sim_train()
        .args(["-q", "scan", "--json", "--cache"])
        .arg(&cache)
        .arg("--out")
        .arg(&idx_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["days"], 32);
    assert!(idx_dir.join("days.parquet").is_file() && idx_dir.join("resets.parquet").is_file());
    assert!(idx_dir.join("config.resolved.toml").is_file());
    let out = common::sim_train()
        .args([
            "index",
            "query",
            "--json",
            "--where",
            "momentum = true and range > 0.1",
            "--index",
        ])
        .arg(&idx_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!rows.is_empty());
    assert!(
        rows.iter()
            .all(|r| r["momentum"] == true && r["range"].as_f64().unwrap() > 0.1)
    );
    common::sim_train()
        .args(["index", "query", "--where", "nope > 1", "--index"])
        .arg(&idx_dir)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("unknown column 'nope'"));
    common::sim_train()
        .args(["index", "query", "--index"])
        .arg(dir.path().join("missing"))
        .assert()
        .code(5)
        .stderr(predicates::str::contains("sim-train scan"));
    common::sim_train()
        .args(["--set", "sampler.choices=0", "config"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("sampler.choices"));
}
