//! Criterion benchmarks of the scanner, the index and the sampler, over synthetic 1-second
//! days (`[synth]` generator, 8 symbols × 5 days, seed 42), default `[scan]` and
//! `[sampler]` config (a uniform stage, so every category present is drawn):
//!
//! - `scan/day`: metrics and reset points of one cached day (already mapped), bars/s;
//! - `scan/index_load`: loading the index of the 40 days (both Parquet tables);
//! - `scan/sampler_draw`: one curriculum draw (day loading excluded), draws/s;
//! - `scan/preload_get_ready`: handing out a day that is already in a preloader slot.
//!
//! Run: `cargo bench --bench scan` (figures and dates: benches/NOTES.md). The end-to-end
//! figures (full scan on all cores, preloader waits) are `sim-train bench scan --json`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sim_train::cache::{DayCache, list_day_files};
use sim_train::scan::config::StageConfig;
use sim_train::scan::index::FileStamp;
use sim_train::scan::sampler::Selection;
use sim_train::scan::{DayBars, Index, Sampler, scan_cache, scan_day};
use std::hint::black_box;
use std::sync::Arc;

fn bench_scan(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = sim_train::config::load(None, &[]).expect("default config");
    let (cache, _) =
        sim_train::bench::build_synthetic(&r, 8, 5, sim_train::bars::BarSize::S1, dir.path())
            .expect("synthetic cache");
    let index_dir = dir.path().join("index");
    scan_cache(&cache, &index_dir, &r.config.scan, false).expect("scan");
    let mut g = c.benchmark_group("scan");

    let file = list_day_files(&cache).expect("files")[0].clone();
    let day = DayCache::open(&file).expect("day");
    let stamp = FileStamp::of(&file).expect("stamp");
    g.throughput(Throughput::Elements(day.rows() as u64));
    g.bench_function("day", |b| {
        b.iter(|| {
            let bars = DayBars::from_cache(black_box(&day));
            black_box(scan_day(&bars, &r.config.scan, &stamp))
        })
    });

    g.throughput(Throughput::Elements(1));
    g.bench_function("index_load", |b| {
        b.iter(|| black_box(Index::load(&index_dir).expect("load")))
    });

    let idx = Arc::new(Index::load(&index_dir).expect("load"));
    let mut cfg = r.config.sampler.clone();
    cfg.stages = vec![StageConfig {
        uniform: true,
        ..Default::default()
    }];
    let mut sampler = Sampler::new(idx.clone(), &cfg, Selection::default()).expect("sampler");
    g.bench_function("sampler_draw", |b| b.iter(|| black_box(sampler.draw())));

    let params =
        Arc::new(sim_train::env::EnvParams::from_config(&r.config.env).expect("env params"));
    let mut one = cfg.clone();
    one.stages = vec![StageConfig {
        uniform: true,
        ..Default::default()
    }];
    let loader = sim_train::scan::preload::CpuLoader::new(&idx, params, vec![None; idx.days.len()]);
    let mut pre = sim_train::env::preload::Preloader::new(loader, &r.config.preload);
    pre.get(0).expect("first load");
    g.bench_function("preload_get_ready", |b| {
        b.iter(|| black_box(pre.get(0).expect("get")))
    });
    g.finish();
}

criterion_group!(benches, bench_scan);
criterion_main!(benches);
