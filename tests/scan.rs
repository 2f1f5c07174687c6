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
    assert_eq!(idx.days.len(), truth.len(), "every synthetic day is indexed");
    let mut c = Counts { tp: 0, fp: 0, fn_: 0 };
    for t in truth {
        let d = &idx.days[idx.find(&t.symbol, t.date).expect("indexed")];
        match (t.momentum, d.momentum) {
            (true, true) => c.tp += 1,
            (false, true) => c.fp += 1,
            (true, false) => {
                eprintln!("missed {} {}: range {:.3} (planted {:.3}) rel_volume {:?}", t.symbol, t.date, d.range, t.range, d.rel_volume);
                c.fn_ += 1
            }
            _ => {}
        }
        assert_eq!(d.halts as usize, t.halts.len(), "{} {}: planted halts", t.symbol, t.date);
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
    let mut c = Counts { tp: 0, fp: 0, fn_: 0 };
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
            .filter(|&&f| !t.squeezes.iter().any(|s| {
                let (lo, hi) = span(s);
                f >= lo && f <= hi
            }))
            .count();
    }
    c
}

#[test]
fn planted_momentum_days_halts_and_squeezes_are_found_1m() {
    let dir = tempfile::tempdir().unwrap();
    let sets = ["synth.symbols=16", "synth.days=30", "synth.bar=1m", "synth.seed=3"];
    let (cache, truth) = synth(dir.path(), &sets);
    let r = config(&sets);
    let idx_dir = dir.path().join("index");
    scan_cache(&cache, &idx_dir, &r.config.scan, false).unwrap();
    let idx = Index::load(&idx_dir).unwrap();
    let planted = truth.iter().filter(|t| t.momentum).count();
    assert!(planted >= 60, "the universe plants enough momentum days ({planted})");
    let m = check_momentum_and_halts(&idx, &truth);
    eprintln!("momentum days: precision {:.3} recall {:.3} ({} planted)", m.precision(), m.recall(), planted);
    assert!(m.precision() >= 0.9 && m.recall() >= 0.9, "momentum precision {} recall {}", m.precision(), m.recall());
    let s = check_squeezes(&cache, &truth, &r);
    eprintln!("squeezes: precision {:.3} recall {:.3} ({} planted)", s.precision(), s.recall(), s.tp + s.fn_);
    assert!(s.precision() >= 0.9 && s.recall() >= 0.8, "squeeze precision {} recall {}", s.precision(), s.recall());
    assert!(truth.iter().any(|t| !t.halts.is_empty()), "the universe plants halts");
}

#[test]
fn planted_momentum_days_halts_and_squeezes_are_found_1s() {
    let dir = tempfile::tempdir().unwrap();
    let sets = ["synth.symbols=6", "synth.days=15", "synth.bar=1s", "synth.seed=5", "synth.halt_prob=0.6"];
    let (cache, truth) = synth(dir.path(), &sets);
    let r = config(&sets);
    let idx_dir = dir.path().join("index");
    scan_cache(&cache, &idx_dir, &r.config.scan, false).unwrap();
    let idx = Index::load(&idx_dir).unwrap();
    let m = check_momentum_and_halts(&idx, &truth);
    eprintln!("1s momentum days: precision {:.3} recall {:.3}", m.precision(), m.recall());
    assert!(m.precision() >= 0.9 && m.recall() >= 0.9, "momentum precision {} recall {}", m.precision(), m.recall());
    let s = check_squeezes(&cache, &truth, &r);
    eprintln!("1s squeezes: precision {:.3} recall {:.3} ({} planted)", s.precision(), s.recall(), s.tp + s.fn_);
    assert!(s.precision() >= 0.9 && s.recall() >= 0.8, "squeeze precision {} recall {}", s.precision(), s.recall());
    assert!(truth.iter().filter(|t| !t.halts.is_empty()).count() >= 3);
}
