//! `sim-train bench scan`: the scanner, the index, the sampler and the preloader, timed
//! on a synthetic cache (`bench.symbols` × `bench.days` of `bench.bar` bars unless the
//! command says otherwise):
//! - `scan_symbol_days_per_s`, `scan_bars_per_s`: a full `sim-train scan` of the cache
//!   (open and verify every file, metrics, reset points, both tables written), all cores;
//!   `rescan_noop_s`: the incremental rescan that finds nothing new;
//! - `index_load_ms`: [`Index::load`], best of 5;
//! - `draws_per_s`: [`Sampler::draw`] on one thread (day loading excluded);
//! - `preload`: consumers taking days through the preloader, once with a queue too
//!   shallow for them (depth 1, one worker, no work per day: every get waits for a load)
//!   and once deep enough (adaptive depth, `preload.workers` workers, the consumer busy
//!   for about one load time per day); each reports the waits.

use super::index::Index;
use super::sampler::{Sampler, Selection};
use super::{Category, scan_cache};
use crate::bars::BarSize;
use crate::bench::{Machine, build_synthetic};
use crate::config::Resolved;
use crate::env::preload::{PreloadConfig, PreloadStats};
use crate::error::{Error, Result};
use serde::Serialize;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What `bench scan` runs.
#[derive(Clone, Debug)]
pub struct ScanBenchRequest {
    pub symbols: usize,
    pub days: usize,
    pub bar: BarSize,
    /// Sampler draws timed.
    pub draws: usize,
    /// Days taken through the preloader per preload run.
    pub preload_gets: usize,
    /// Work folder (a temporary one when None).
    pub dir: Option<PathBuf>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PreloadRun {
    pub name: &'static str,
    pub workers: usize,
    pub min_depth: usize,
    pub max_depth: usize,
    /// Busy time of the consumer per day, ms.
    pub work_ms: f64,
    pub gets: u64,
    pub waits: u64,
    /// Mean wait per get and longest wait, ms.
    pub wait_ms_per_get: f64,
    pub wait_max_ms: f64,
    /// Waits and total wait in the second half of the gets (after the queue filled).
    pub waits_second_half: u64,
    pub wait_ms_second_half: f64,
    pub load_ms_mean: f64,
    pub final_depth: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct ScanBench {
    pub bench: &'static str,
    pub machine: Machine,
    pub threads: usize,
    pub symbols: usize,
    pub days: usize,
    pub bar: String,
    pub symbol_days: usize,
    pub bars: u64,
    pub scan_s: f64,
    pub scan_symbol_days_per_s: f64,
    pub scan_bars_per_s: f64,
    pub rescan_noop_s: f64,
    pub index_days: usize,
    pub index_resets: usize,
    pub index_load_ms: f64,
    pub categories: Vec<(Category, usize)>,
    pub draws: usize,
    pub draws_per_s: f64,
    pub ns_per_draw: f64,
    pub preload: Vec<PreloadRun>,
    pub date: String,
}

/// Runs `bench scan`.
pub fn bench_scan(resolved: &Resolved, req: &ScanBenchRequest) -> Result<ScanBench> {
    if req.draws == 0 || req.preload_gets < 2 {
        return Err(Error::Usage(
            "--draws must be at least 1 and --preload-gets at least 2".into(),
        ));
    }
    let tmp;
    let root = match &req.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
            tmp.path().to_path_buf()
        }
    };
    let (cache, _) = build_synthetic(resolved, req.symbols, req.days, req.bar, &root)?;
    let index_dir = root.join("bench-index");
    if index_dir.exists() {
        std::fs::remove_dir_all(&index_dir).map_err(|e| Error::io(&index_dir, e))?;
    }
    let cfg = &resolved.config;
    let summary = scan_cache(&cache, &index_dir, &cfg.scan, false)?;
    let t = Instant::now();
    scan_cache(&cache, &index_dir, &cfg.scan, false)?;
    let rescan_noop_s = t.elapsed().as_secs_f64();

    let mut index_load = f64::INFINITY;
    let mut idx = None;
    for _ in 0..5 {
        let t = Instant::now();
        let i = Index::load(&index_dir)?;
        index_load = index_load.min(t.elapsed().as_secs_f64());
        idx = Some(i);
    }
    let idx = Arc::new(idx.expect("loaded five times"));

    // The sampler over every category the synthetic index holds (uniform stage), so the
    // bench runs whatever the data's categories are.
    let mut scfg = cfg.sampler.clone();
    scfg.stages = vec![super::config::StageConfig {
        uniform: true,
        ..Default::default()
    }];
    let mut sampler = Sampler::new(idx.clone(), &scfg, Selection::default())?;
    for _ in 0..req.draws.min(100_000) {
        black_box(sampler.draw()); // warm-up
    }
    let t = Instant::now();
    for _ in 0..req.draws {
        black_box(sampler.draw());
    }
    let draw_s = t.elapsed().as_secs_f64();

    let params = Arc::new(crate::env::EnvParams::from_config(&cfg.env).map_err(Error::Config)?);
    let mut runs = Vec::new();
    // Shallow: one worker, depth 1, a consumer that does nothing with its days.
    let shallow = PreloadConfig {
        workers: 1,
        min_depth: 1,
        max_depth: 1,
        slots: 2,
        ..cfg.preload.clone()
    };
    let r = preload_run(
        "shallow",
        &idx,
        &scfg,
        &params,
        &shallow,
        Duration::ZERO,
        req.preload_gets,
    )?;
    // Deep: the configured preloader, a consumer busy about one mean load time per day.
    let work = Duration::from_secs_f64(r.load_ms_mean / 1e3);
    runs.push(r);
    runs.push(preload_run(
        "deep",
        &idx,
        &scfg,
        &params,
        &cfg.preload,
        work,
        req.preload_gets,
    )?);

    Ok(ScanBench {
        bench: "scan",
        machine: Machine::detect(),
        threads: rayon::current_num_threads(),
        symbols: req.symbols,
        days: req.days,
        bar: req.bar.to_string(),
        symbol_days: summary.scanned,
        bars: summary.bars_scanned,
        scan_s: summary.elapsed_s,
        scan_symbol_days_per_s: summary.symbol_days_per_s,
        scan_bars_per_s: summary.bars_per_s,
        rescan_noop_s,
        index_days: idx.days.len(),
        index_resets: idx.resets.len(),
        index_load_ms: index_load * 1e3,
        categories: summary.categories,
        draws: req.draws,
        draws_per_s: req.draws as f64 / draw_s,
        ns_per_draw: draw_s * 1e9 / req.draws as f64,
        preload: runs,
        date: chrono::Local::now().format("%Y-%m-%d").to_string(),
    })
}

/// Spins for `d` (a consumer's work on a day; sleeping would hand the core to the loaders
/// and flatter the result on a small machine).
fn busy(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

fn preload_run(
    name: &'static str,
    idx: &Arc<Index>,
    scfg: &super::SamplerConfig,
    params: &Arc<crate::env::EnvParams>,
    pcfg: &PreloadConfig,
    work: Duration,
    gets: usize,
) -> Result<PreloadRun> {
    let mut s = Sampler::new(idx.clone(), scfg, Selection::default())?
        .with_preloader(params.clone(), pcfg)?;
    let half = gets / 2;
    let mut at_half = PreloadStats::default();
    for g in 0..gets {
        if g == half {
            at_half = s.preload_stats().unwrap_or_default();
        }
        let (ep, _, _) = s.next_loaded()?;
        black_box(&ep);
        busy(work);
    }
    let st = s.preload_stats().unwrap_or_default();
    Ok(PreloadRun {
        name,
        workers: pcfg.workers,
        min_depth: pcfg.min_depth,
        max_depth: pcfg.max_depth,
        work_ms: work.as_secs_f64() * 1e3,
        gets: st.gets,
        waits: st.waits,
        wait_ms_per_get: st.wait_s * 1e3 / st.gets.max(1) as f64,
        wait_max_ms: st.wait_max_s * 1e3,
        waits_second_half: st.waits - at_half.waits,
        wait_ms_second_half: (st.wait_s - at_half.wait_s) * 1e3,
        load_ms_mean: st.load_s * 1e3 / st.loads.max(1) as f64,
        final_depth: st.depth,
    })
}
