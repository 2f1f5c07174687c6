//! `sim-train bench cache`: the data layer's throughput, end to end, on synthetic data.
//!
//! - `build_bars_per_s`: bars per second through `cache build --source synth` (generation,
//!   validation, features, atomic writes with fsync), all cores;
//! - `scan_gb_per_s` vs `memcpy_gb_per_s`: summing every feature column of every cached
//!   day straight from the mmap, against a plain `memcpy` of the same number of bytes, in
//!   the same run (best of `bench.scan_repeats` passes each, single thread);
//! - `lookup_ns`: one clock-time → row lookup at a random time of a random day.

use crate::bars::BarSize;
use crate::build::{BuildRequest, build_cache};
use crate::cache::{DayCache, list_day_files};
use crate::config::Resolved;
use crate::error::{Error, Result};
use crate::features::N_FEATURES;
use crate::ingest::SourceKind;
use serde::Serialize;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub os: String,
}

impl Machine {
    pub fn detect() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|s| s.trim().to_string())
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            os: std::env::consts::OS.to_string(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct CacheBench {
    pub bench: &'static str,
    pub backend: &'static str,
    pub machine: Machine,
    pub symbols: usize,
    pub days: usize,
    pub bar: String,
    pub symbol_days: usize,
    pub bars: u64,
    pub cache_bytes: u64,
    pub build_s: f64,
    pub build_bars_per_s: f64,
    pub build_mb_per_s: f64,
    pub scan_bytes: u64,
    pub scan_gb_per_s: f64,
    pub memcpy_gb_per_s: f64,
    pub scan_over_memcpy: f64,
    pub lookups: usize,
    pub lookup_ns: f64,
    pub date: String,
}

/// Runs the cache benchmark with `symbols` × `days` synthetic `bar` bars in `dir`
/// (a temporary folder when None).
pub fn bench_cache(
    resolved: &Resolved,
    symbols: usize,
    days: usize,
    bar: BarSize,
    dir: Option<PathBuf>,
) -> Result<CacheBench> {
    let cfg = &resolved.config.bench;
    let tmp;
    let root = match dir {
        Some(d) => d,
        None => {
            tmp = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
            tmp.path().to_path_buf()
        }
    };
    let cache_dir = root.join("bench-cache");
    if cache_dir.exists() {
        std::fs::remove_dir_all(&cache_dir).map_err(|e| Error::io(&cache_dir, e))?;
    }
    let mut r = resolved.clone();
    r.config.synth.symbols = symbols;
    r.config.synth.days = days;
    r.config.synth.bar = bar;
    let req = BuildRequest {
        source: SourceKind::Synth,
        input: None,
        cache_dir: cache_dir.clone(),
        symbols: None,
        from: None,
        to: None,
        bar,
        adjust: crate::adjust::AdjustMode::None,
    };
    let built = build_cache(&req, &r, false)?;

    // Open (and verify) every day once; the passes below then read warm mappings.
    let files = list_day_files(&cache_dir)?;
    let caches: Vec<DayCache> = files
        .iter()
        .map(DayCache::open)
        .collect::<std::result::Result<_, _>>()?;
    let scan_bytes: u64 = caches
        .iter()
        .map(|c| (c.rows() * N_FEATURES * 4) as u64)
        .sum();

    let mut best_scan = f64::INFINITY;
    for _ in 0..cfg.scan_repeats {
        let t = Instant::now();
        let mut acc = 0f32;
        for c in &caches {
            for k in 0..N_FEATURES {
                acc += sum_f32(black_box(c.feature(k)));
            }
        }
        black_box(acc);
        best_scan = best_scan.min(t.elapsed().as_secs_f64());
    }

    let src = vec![1u8; scan_bytes as usize];
    let mut dst = vec![0u8; scan_bytes as usize];
    let mut best_copy = f64::INFINITY;
    for _ in 0..cfg.scan_repeats {
        let t = Instant::now();
        dst.copy_from_slice(black_box(&src));
        black_box(&mut dst);
        best_copy = best_copy.min(t.elapsed().as_secs_f64());
    }

    // Random lookups: a small xorshift so the generator costs little next to the lookup.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let clocks: Vec<_> = caches.iter().map(|c| c.clock()).collect();
    let t = Instant::now();
    let mut hits = 0u64;
    for _ in 0..cfg.lookups {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let c = &clocks[(x % clocks.len() as u64) as usize];
        let span = (c.spec.n_slots * c.spec.slot_secs) as u64;
        let sec = c.spec.first_slot_sec as i64 + ((x >> 32) % span) as i64;
        hits += black_box(c.latest_at_or_before(sec)).map_or(0, |r| r as u64 & 1);
    }
    let lookup_ns = t.elapsed().as_secs_f64() * 1e9 / cfg.lookups as f64;
    black_box(hits);

    let gb = |bytes: u64, s: f64| bytes as f64 / s / 1e9;
    Ok(CacheBench {
        bench: "cache",
        backend: "cpu",
        machine: Machine::detect(),
        symbols,
        days,
        bar: bar.to_string(),
        symbol_days: built.days_written,
        bars: built.bars_written,
        cache_bytes: built.bytes_written,
        build_s: built.elapsed_s,
        build_bars_per_s: built.bars_per_s,
        build_mb_per_s: built.bytes_written as f64 / built.elapsed_s / 1e6,
        scan_bytes,
        scan_gb_per_s: gb(scan_bytes, best_scan),
        memcpy_gb_per_s: gb(scan_bytes, best_copy),
        scan_over_memcpy: best_copy / best_scan,
        lookups: cfg.lookups,
        lookup_ns,
        date: chrono::Local::now().format("%Y-%m-%d").to_string(),
    })
}

/// Sums a column with 16 independent lanes so the compiler vectorizes the loop (a single
/// accumulator would serialize on floating-point addition latency).
pub fn sum_f32(xs: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let chunks = xs.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        for (l, v) in lanes.iter_mut().zip(c) {
            *l += v;
        }
    }
    lanes.iter().sum::<f32>() + rest.iter().sum::<f32>()
}
