//! The curriculum sampler and the preloader: category shares against the configured
//! curriculum (binomial tolerance of 5 standard deviations), usage balancing, forced
//! diversity and symbol rotation against the same sampler without them, strict date
//! ranges, determinism and exact resumption, bad selections; the preloader's wait
//! accounting with a loader the test holds back (no timing thresholds).

mod common;

use chrono::NaiveDate;
use sim_train::env::preload::{DayLoader, PreloadConfig, Preloader};
use sim_train::env::{EnvParams, EpisodeSource};
use sim_train::error::Result;
use sim_train::scan::config::{SamplerConfig, StageConfig};
use sim_train::scan::sampler::{Draw, Selection};
use sim_train::scan::{Category, Index, Sampler, scan_cache};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

/// One synthetic index shared by the tests (16 symbols × 30 days of 1 m bars).
fn index() -> Arc<Index> {
    static IDX: OnceLock<(tempfile::TempDir, Arc<Index>)> = OnceLock::new();
    IDX.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let cache = common::synth_cache(
            dir.path(),
            &[
                "synth.symbols=16",
                "synth.days=30",
                "synth.bar=1m",
                "synth.seed=3",
            ],
        );
        let r = sim_train::config::load(None, &[]).unwrap();
        let idx_dir = dir.path().join("index");
        scan_cache(&cache, &idx_dir, &r.config.scan, false).unwrap();
        let idx = Arc::new(Index::load(&idx_dir).unwrap());
        (dir, idx)
    })
    .1
    .clone()
}

fn stage(from: u64, s: [f64; 5]) -> StageConfig {
    StageConfig::with_shares(from, s)
}

fn cfg(stages: Vec<StageConfig>) -> SamplerConfig {
    SamplerConfig {
        stages,
        ..SamplerConfig::default()
    }
}

fn draws(s: &mut Sampler, n: usize) -> Vec<Draw> {
    (0..n).map(|_| s.draw()).collect()
}

/// |observed share - p| within 5 binomial standard deviations, for every category.
fn assert_shares(ds: &[Draw], want: [f64; 5]) {
    let n = ds.len() as f64;
    let total: f64 = want.iter().sum();
    for c in Category::ALL {
        let p = want[c.index()] / total;
        let got = ds.iter().filter(|d| d.category == c).count() as f64 / n;
        let tol = 5.0 * (p * (1.0 - p) / n).sqrt() + 1e-12;
        assert!(
            (got - p).abs() <= tol,
            "{}: share {got:.4}, configured {p:.4} (tolerance {tol:.4})",
            c.name()
        );
    }
}

#[test]
fn category_shares_follow_the_curriculum_stages() {
    let idx = index();
    let defaults = SamplerConfig::default();
    let mut s = Sampler::new(idx.clone(), &defaults, Selection::default()).unwrap();
    let have = s.category_days();
    assert!(
        have.iter().take(4).all(|&n| n > 0),
        "the synthetic index has prime, secondary, risk and mixed days: {have:?}"
    );
    // The default curriculum: early (0..10 k), intermediate (10 k..50 k), advanced.
    let early = draws(&mut s, 10_000);
    let mid = draws(&mut s, 40_000);
    let late = draws(&mut s, 50_000);
    assert!(
        early.iter().all(|d| d.stage == 0)
            && mid.iter().all(|d| d.stage == 1)
            && late.iter().all(|d| d.stage == 2)
    );
    assert_shares(&early, [0.7, 0.2, 0.1, 0.0, 0.0]);
    assert_shares(&mid, [0.4, 0.3, 0.2, 0.1, 0.0]);
    // Uniform: equal shares over the categories the index holds.
    let present: [f64; 5] = std::array::from_fn(|c| if have[c] > 0 { 1.0 } else { 0.0 });
    assert_shares(&late, present);
    // Every draw's day has the category the draw says, and its reset point is that day's.
    for d in early.iter().chain(&late) {
        assert_eq!(idx.days[d.day as usize].category, d.category);
        assert_eq!(idx.resets[d.reset as usize].day, d.day);
    }
    // A long run of a custom stage, tighter tolerance.
    let mut s = Sampler::new(
        idx.clone(),
        &cfg(vec![stage(0, [0.5, 0.0, 0.3, 0.2, 0.0])]),
        Selection::default(),
    )
    .unwrap();
    assert_shares(&draws(&mut s, 200_000), [0.5, 0.0, 0.3, 0.2, 0.0]);
}

fn std_dev(v: &[f64]) -> f64 {
    let m = v.iter().sum::<f64>() / v.len() as f64;
    (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
}

#[test]
fn usage_balancing_flattens_the_usage_histogram() {
    let idx = index();
    let one = |choices: u32| {
        let c = SamplerConfig {
            choices,
            day_cooldown: 0,
            symbol_rotation: 0,
            ..cfg(vec![stage(0, [0.0, 0.0, 0.0, 1.0, 0.0])])
        };
        let mut s = Sampler::new(idx.clone(), &c, Selection::default()).unwrap();
        let n = s.category_days()[Category::Mixed.index()];
        draws(&mut s, 20 * n);
        let usage: Vec<f64> = s
            .usage()
            .filter(|&(k, _)| idx.days[k as usize].category == Category::Mixed)
            .map(|(_, u)| u as f64)
            .collect();
        assert_eq!(usage.len(), n);
        let max = usage.iter().cloned().fold(0.0, f64::max);
        let min = usage.iter().cloned().fold(f64::MAX, f64::min);
        (std_dev(&usage), max - min)
    };
    let (sd1, spread1) = one(1);
    let (sd4, spread4) = one(4);
    eprintln!(
        "usage std dev: {sd1:.2} uniform, {sd4:.2} with 4 choices; spread {spread1} vs {spread4}"
    );
    // Uniform draws: Poisson-like, std ≈ √20 ≈ 4.5; four choices keep every day within a
    // couple of uses of the mean.
    assert!(sd1 > 3.0, "{sd1}");
    assert!(sd4 < 0.25 * sd1, "{sd4} vs {sd1}");
    assert!(spread4 <= 4.0 && spread1 >= 15.0, "{spread4} vs {spread1}");
}

#[test]
fn cooldown_and_symbol_rotation_force_diversity() {
    let idx = index();
    let run = |cooldown: u32, rotation: u32| {
        let c = SamplerConfig {
            choices: 4,
            day_cooldown: cooldown,
            symbol_rotation: rotation,
            ..cfg(vec![stage(0, [1.0, 0.0, 0.0, 0.0, 0.0])])
        };
        let mut s = Sampler::new(idx.clone(), &c, Selection::default()).unwrap();
        let ds = draws(&mut s, 20_000);
        let repeats = (0..ds.len())
            .filter(|&i| {
                ds[i.saturating_sub(8)..i]
                    .iter()
                    .any(|d| d.day == ds[i].day)
            })
            .count();
        let sym = |d: &Draw| idx.days[d.day as usize].symbol.clone();
        let same_symbol = ds.windows(2).filter(|w| sym(&w[0]) == sym(&w[1])).count();
        (repeats, same_symbol)
    };
    let (rep_off, sym_off) = run(0, 0);
    let (rep_on, sym_on) = run(16, 1);
    eprintln!(
        "day repeats within 8 draws: {rep_off} without cooldown, {rep_on} with; consecutive same symbol: {sym_off} vs {sym_on}"
    );
    // About 30 prime days: four candidates all cooling (16 of ~30) happens a few percent
    // of the time, so the cooldown cuts repeats by ~8×, not to zero; likewise symbols.
    assert!(rep_on * 5 < rep_off, "{rep_on} vs {rep_off}");
    assert!(sym_on * 5 < sym_off, "{sym_on} vs {sym_off}");
}

#[test]
fn date_ranges_are_never_crossed() {
    let idx = index();
    let (from, to) = (
        NaiveDate::from_ymd_opt(2024, 1, 10).unwrap(),
        NaiveDate::from_ymd_opt(2024, 1, 31).unwrap(),
    );
    let c = cfg(vec![StageConfig {
        uniform: true,
        ..StageConfig::default()
    }]);
    let sel = Selection {
        from: Some(from),
        to: Some(to),
        symbols: None,
    };
    let mut s = Sampler::new(idx.clone(), &c, sel.clone()).unwrap();
    for d in draws(&mut s, 50_000) {
        let date = idx.days[d.day as usize].date;
        assert!(date >= from && date <= to, "{date}");
    }
    // Loaded days and their lookback days stay inside the range too.
    let r = sim_train::config::load(None, &[]).unwrap();
    let params = Arc::new(EnvParams::from_config(&r.config.env).unwrap());
    let mut s = Sampler::new(idx.clone(), &c, sel)
        .unwrap()
        .with_preloader(params, &r.config.preload)
        .unwrap();
    let mut lookbacks = 0;
    for _ in 0..60 {
        let (ep, loaded, _) = s.next_loaded().unwrap();
        assert!(ep.day.date >= from && ep.day.date <= to);
        if let Some(lb) = &loaded.lookback {
            lookbacks += 1;
            assert!(lb.date >= from && lb.date < ep.day.date && lb.symbol == ep.day.symbol);
        } else {
            assert_eq!(
                ep.day.date, from,
                "only the range's first day lacks a lookback here"
            );
        }
    }
    assert!(lookbacks > 0);
    // A range with no indexed day is an error, not an empty sampler.
    let none = Selection {
        from: Some(NaiveDate::from_ymd_opt(2030, 1, 1).unwrap()),
        to: None,
        symbols: None,
    };
    let e = Sampler::new(idx.clone(), &c, none)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("no day of the index") && e.contains("2030-01-01"),
        "{e}"
    );
}

#[test]
fn a_category_the_range_lacks_is_refused() {
    let idx = index();
    let have = Sampler::new(idx.clone(), &SamplerConfig::default(), Selection::default())
        .unwrap()
        .category_days();
    let one_symbol = Selection {
        from: None,
        to: None,
        symbols: Some(vec!["SYN000".into()]),
    };
    // Ask for dead days in a selection that has none (or for a category of a symbol that
    // lacks it): refused with the category, the counts and the fixes.
    let missing = Category::ALL
        .into_iter()
        .find(|c| {
            Sampler::new(idx.clone(), &SamplerConfig::default(), one_symbol.clone())
                .unwrap()
                .category_days()[c.index()]
                == 0
        })
        .expect("one symbol lacks some category");
    let mut shares = [0.0; 5];
    shares[missing.index()] = 1.0;
    let e = Sampler::new(idx.clone(), &cfg(vec![stage(0, shares)]), one_symbol)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains(missing.name()) && e.contains("set that share to 0"),
        "{e}"
    );
    assert!(have.iter().sum::<usize>() > 0);
}

#[test]
fn the_same_seed_gives_the_same_sequence_and_a_resume_continues_it() {
    let idx = index();
    let c = SamplerConfig::default();
    let a = draws(
        &mut Sampler::new(idx.clone(), &c, Selection::default()).unwrap(),
        5_000,
    );
    let b = draws(
        &mut Sampler::new(idx.clone(), &c, Selection::default()).unwrap(),
        5_000,
    );
    assert_eq!(a, b);
    let other = SamplerConfig {
        seed: 12,
        ..c.clone()
    };
    let o = draws(
        &mut Sampler::new(idx.clone(), &other, Selection::default()).unwrap(),
        5_000,
    );
    assert!(a.iter().zip(&o).filter(|(x, y)| x == y).count() < 500);

    // Through the EpisodeSource seam, with draws planned ahead: stop after 40 episodes,
    // save, resume in a new sampler: the next 40 are those of the uninterrupted run.
    let r = sim_train::config::load(None, &[]).unwrap();
    let params = Arc::new(EnvParams::from_config(&r.config.env).unwrap());
    let small = SamplerConfig {
        lookahead: 16,
        ..c.clone()
    };
    let make = || {
        Sampler::new(idx.clone(), &small, Selection::default())
            .unwrap()
            .with_preloader(params.clone(), &r.config.preload)
            .unwrap()
    };
    let key = |s: &mut Sampler| -> (String, NaiveDate, u32) {
        let e = s.next_episode(0).unwrap();
        (e.day.symbol.clone(), e.day.date, e.start_row)
    };
    let mut whole = make();
    let full: Vec<_> = (0..80).map(|_| key(&mut whole)).collect();
    let mut first = make();
    let head: Vec<_> = (0..40).map(|_| key(&mut first)).collect();
    let state = first.save_state();
    drop(first);
    let mut resumed = make();
    resumed.load_state(&state).unwrap();
    let tail: Vec<_> = (0..40).map(|_| key(&mut resumed)).collect();
    assert_eq!(head, full[..40]);
    assert_eq!(tail, full[40..]);
    // A state from another seed is refused.
    let mut wrong = Sampler::new(idx.clone(), &other, Selection::default()).unwrap();
    assert!(
        wrong
            .load_state(&state)
            .unwrap_err()
            .to_string()
            .contains("seed")
    );
}

#[test]
fn performance_adjustment_draws_bad_categories_more_when_enabled() {
    let idx = index();
    let mut c = cfg(vec![stage(0, [0.5, 0.0, 0.5, 0.0, 0.0])]);
    c.adapt.enabled = true;
    c.adapt.alpha = 1.0;
    let mut s = Sampler::new(idx.clone(), &c, Selection::default()).unwrap();
    let risk_day = idx
        .days
        .iter()
        .find(|d| d.category == Category::Risk)
        .unwrap();
    let stats = sim_train::env::EpisodeStats {
        env: 0,
        symbol: risk_day.symbol.clone(),
        date: risk_day.date,
        start_row: 0,
        steps: 10,
        reason: sim_train::env::EndReason::SessionClose,
        reward: -5.0,
        pnl: 0.0,
        realized: 0.0,
        costs: 0.0,
        fills: 0,
        rejected: 0,
        turnover: 0.0,
    };
    s.observe(&stats);
    // Risk share 0.5 × (1 + 1) against prime 0.5: 2/3 of the draws.
    assert_shares(&draws(&mut s, 30_000), [0.5, 0.0, 1.0, 0.0, 0.0]);
    // Off by default: the same observation changes nothing.
    c.adapt.enabled = false;
    let mut off = Sampler::new(idx.clone(), &c, Selection::default()).unwrap();
    off.observe(&stats);
    assert_shares(&draws(&mut off, 30_000), [0.5, 0.0, 0.5, 0.0, 0.0]);
}

#[test]
fn a_day_file_gone_since_the_scan_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let cache = common::synth_cache(
        dir.path(),
        &["synth.symbols=2", "synth.days=4", "synth.bar=1m"],
    );
    let r = sim_train::config::load(None, &[]).unwrap();
    let idx_dir = dir.path().join("index");
    scan_cache(&cache, &idx_dir, &r.config.scan, false).unwrap();
    let idx = Arc::new(Index::load(&idx_dir).unwrap());
    let c = cfg(vec![StageConfig {
        uniform: true,
        ..StageConfig::default()
    }]);
    let victim = PathBuf::from(&idx.days[1].path);
    std::fs::remove_file(&victim).unwrap();
    let params = Arc::new(EnvParams::from_config(&r.config.env).unwrap());
    let e = Sampler::new(idx.clone(), &c, Selection::default())
        .unwrap()
        .with_preloader(params, &r.config.preload)
        .err()
        .unwrap();
    assert_eq!(e.exit_code(), 5);
    assert!(
        e.to_string().contains(&victim.display().to_string())
            && e.to_string().contains("sim-train scan"),
        "{e}"
    );
}

/// A loader the test releases one load at a time.
struct Gated {
    permits: crossbeam_channel::Receiver<()>,
    asked: Mutex<Vec<u32>>,
}

impl DayLoader for Gated {
    type Day = u32;
    fn load(&self, id: u32, _resident: &dyn Fn(u32) -> Option<Arc<u32>>) -> Result<u32> {
        self.asked.lock().unwrap().push(id);
        self.permits.recv().unwrap();
        if id == 99 {
            return Err(sim_train::Error::Data("day 99 is broken".into()));
        }
        Ok(id * 10)
    }
}

fn wait_until(what: &str, f: impl Fn() -> bool) {
    // A watchdog, not a timing assertion: the condition happens as soon as a worker runs.
    for _ in 0..20_000 {
        if f() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    panic!("{what} never happened");
}

#[test]
fn preloaded_days_are_handed_out_without_waiting_and_waits_are_reported() {
    let (tx, rx) = crossbeam_channel::unbounded();
    let cfg = PreloadConfig {
        workers: 1,
        min_depth: 2,
        max_depth: 8,
        slots: 8,
        lookback: false,
        ..Default::default()
    };
    let mut p = Preloader::new(
        Gated {
            permits: rx,
            asked: Mutex::new(vec![]),
        },
        &cfg,
    );
    // Deep enough: days asked ahead are ready before the consumer comes.
    p.prefetch([1, 2, 3]);
    tx.send(()).unwrap();
    tx.send(()).unwrap();
    wait_until("days 1 and 2 loaded", || p.is_ready(1) && p.is_ready(2));
    assert!(
        !p.is_ready(3),
        "depth 2: the third upcoming day is not loaded ahead yet"
    );
    assert_eq!(*p.get(1).unwrap(), 10);
    assert_eq!(*p.get(2).unwrap(), 20);
    let s = p.stats();
    assert_eq!((s.gets, s.hits, s.waits, s.wait_s), (2, 2, 0, 0.0));
    // Not deep enough: the consumer asks for a day nobody loaded; it waits, the wait is
    // counted and timed, and the queue gets deeper.
    let releaser = {
        let tx = tx.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            tx.send(()).unwrap();
        })
    };
    assert_eq!(*p.get(7).unwrap(), 70);
    releaser.join().unwrap();
    let s = p.stats();
    assert_eq!((s.gets, s.hits, s.waits), (3, 2, 1));
    assert!(s.wait_s > 0.0 && s.wait_max_s == s.wait_s);
    assert_eq!(s.depth, 4, "the depth doubled after the wait");
    // A failed load comes back as an error naming the problem.
    tx.send(()).unwrap();
    assert!(
        p.get(99)
            .unwrap_err()
            .to_string()
            .contains("day 99 is broken")
    );
    // Only the days above the slots that are not about to be used are dropped.
    for _ in 0..16 {
        tx.send(()).unwrap();
    }
    p.prefetch(10..14);
    wait_until("four more days", || (10..14).all(|k| p.is_ready(k)));
    for k in 10..14 {
        p.get(k).unwrap();
    }
    p.prefetch(20..24);
    wait_until("the next four", || (20..24).all(|k| p.is_ready(k)));
    p.prefetch(20..24);
    assert!(p.stats().resident <= 8);
    assert!(
        (20..24).all(|k| p.is_ready(k)),
        "upcoming days are never evicted"
    );
}
