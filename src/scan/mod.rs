//! The momentum scanner, its index, the curriculum sampler and the day preloader.
//!
//! - [`metrics`]: a day's bars ([`DayBars`]) and its end-of-day metrics.
//! - [`resets`]: one causal pass that finds reset points and squeezes.
//! - [`index`]: the two Parquet tables and their manifest ([`Index`]).
//! - [`query`]: `--where` predicates over the tables.
//! - [`sampler`]: draws (day, reset point) per environment reset from the index, by
//!   curriculum stage, balancing usage ([`Sampler`], an [`crate::env::EpisodeSource`]).
//! - [`preload`]: the sampler's day loader (a day and its lookback) for the background
//!   [`crate::env::preload::Preloader`].
//! - [`bench`]: `sim-train bench scan`.
//!
//! [`scan_cache`] is `sim-train scan`: it scans every cached symbol-day not yet in the
//! index (in parallel), recomputes the cross-day fields of all days, and writes the index.

pub mod bench;
pub mod config;
pub mod index;
pub mod metrics;
pub mod preload;
pub mod query;
pub mod resets;
pub mod sampler;

pub use config::{SamplerConfig, ScanConfig};
pub use index::{DayRow, Index, ResetRow};
pub use metrics::{DayBars, DayMetrics, day_metrics};
pub use resets::{Pattern, Phase, ResetPoint, day_events};
pub use sampler::Sampler;

use crate::cache::{Catalog, DayCache};
use crate::error::{Error, IoContext, Result};
use index::{FileStamp, Manifest};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A day's category, from best to train on to worst (see README: Scanning).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// A momentum day with a clean setup (no halt, no deep flush, quality ≥ prime_quality).
    Prime,
    /// A weaker momentum day, or a day that moved with volume without being momentum.
    Secondary,
    /// A momentum day with a halt or a deep flush.
    Risk,
    /// An ordinary day.
    Mixed,
    /// A day without range or volume.
    Dead,
}

impl Category {
    pub const ALL: [Category; 5] = [
        Category::Prime,
        Category::Secondary,
        Category::Risk,
        Category::Mixed,
        Category::Dead,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Category::Prime => "prime",
            Category::Secondary => "secondary",
            Category::Risk => "risk",
            Category::Mixed => "mixed",
            Category::Dead => "dead",
        }
    }
    pub fn parse(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.name() == s)
    }
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Everything the scanner extracts from one cached day.
#[derive(Clone, Debug)]
pub struct ScannedDay {
    pub day: DayRow,
    pub resets: Vec<ResetRow>,
}

/// Scans one cached day (raw fields; the cross-day ones come from [`index::finish_days`]).
pub fn scan_day(bars: &DayBars, cfg: &ScanConfig, file: &FileStamp) -> Option<ScannedDay> {
    let m = day_metrics(bars)?;
    let ev = day_events(bars, cfg);
    let resets: Vec<ResetRow> = ev
        .resets
        .iter()
        .map(|p| ResetRow::new(&bars.symbol, bars.date, p))
        .collect();
    let day = DayRow::new(
        &m,
        bars.symbol.clone(),
        bars.date,
        ev.squeezes.len() as u32,
        resets.len() as u32,
        file,
    );
    Some(ScannedDay { day, resets })
}

/// What `sim-train scan` did.
#[derive(Clone, Debug, Serialize)]
pub struct ScanSummary {
    pub cache: PathBuf,
    pub index: PathBuf,
    /// Days in the index after the scan.
    pub days: usize,
    pub resets: usize,
    /// Days opened and scanned now (new or changed); the rest came from the old index.
    pub scanned: usize,
    pub kept: usize,
    /// Indexed days whose cache file is gone (dropped from the index).
    pub dropped: usize,
    /// Cached days without bars (not indexed).
    pub empty: usize,
    /// Why everything was rescanned, if it was.
    pub full_rescan: Option<String>,
    pub bars_scanned: u64,
    pub elapsed_s: f64,
    pub symbol_days_per_s: f64,
    pub bars_per_s: f64,
    /// Days per category.
    pub categories: Vec<(Category, usize)>,
    pub momentum_days: usize,
}

/// `sim-train scan`: (re)builds the index of `cache_dir` in `out_dir`, scanning only the
/// days that are new or changed since the index there was written.
pub fn scan_cache(
    cache_dir: &Path,
    out_dir: &Path,
    cfg: &ScanConfig,
    progress: bool,
) -> Result<ScanSummary> {
    let t0 = Instant::now();
    let catalog = Catalog::load_existing(cache_dir)?;
    let cache_abs = std::fs::canonicalize(cache_dir).at(cache_dir)?;
    if catalog.entries.is_empty() {
        return Err(Error::NotFound(format!(
            "{}: the cache holds no days; build some with `sim-train cache build`",
            cache_dir.display()
        )));
    }

    // The old index, if any, and whether its rows can be reused.
    let mut old: HashMap<(String, chrono::NaiveDate), (DayRow, Vec<ResetRow>)> = HashMap::new();
    let mut full_rescan = None;
    if out_dir.join(index::MANIFEST_FILE).is_file() {
        match Index::load(out_dir) {
            Ok(prev) if prev.manifest.cache != cache_abs => {
                return Err(Error::Usage(format!(
                    "{} holds the index of another cache ({}); give --out a new folder or --cache {}",
                    out_dir.display(),
                    prev.manifest.cache.display(),
                    prev.manifest.cache.display()
                )));
            }
            Ok(prev) if prev.manifest.scan != *cfg => {
                full_rescan = Some("the [scan] settings changed".to_string());
            }
            Ok(prev) => {
                for (k, d) in prev.days.iter().enumerate() {
                    old.insert(
                        (d.symbol.clone(), d.date),
                        (d.clone(), prev.resets_of(k).to_vec()),
                    );
                }
            }
            Err(e) => {
                full_rescan = Some(format!("the old index is unreadable ({e})"));
            }
        }
        if let Some(why) = &full_rescan {
            tracing::info!("rescanning every day: {why}");
        }
    }

    // Which days to scan: new ones, and ones whose file changed.
    let mut kept: Vec<(DayRow, Vec<ResetRow>)> = Vec::new();
    let mut todo: Vec<FileStamp> = Vec::new();
    for (key, e) in &catalog.entries {
        let stamp = FileStamp::of(&cache_abs.join(&e.file))?;
        match old.remove(key) {
            Some((row, resets))
                if row.file_len == stamp.len && row.file_mtime_ns == stamp.mtime_ns =>
            {
                kept.push((row, resets))
            }
            _ => todo.push(stamp),
        }
    }
    let dropped = old.len();
    if dropped > 0 {
        tracing::warn!(
            "{dropped} indexed day(s) are no longer in the cache; dropped from the index"
        );
    }

    let pb = crate::logging::progress(todo.len() as u64, "scan", progress);
    let scanned: Vec<Option<ScannedDay>> = todo
        .par_iter()
        .map(|stamp| {
            let cache = DayCache::open(&stamp.path)?;
            let bars = DayBars::from_cache(&cache);
            let out = scan_day(&bars, cfg, stamp);
            pb.inc(1);
            Ok(out)
        })
        .collect::<Result<_>>()?;
    pb.finish_and_clear();
    let empty = scanned.iter().filter(|s| s.is_none()).count();
    let n_scanned = todo.len();
    let bars_scanned: u64 = scanned.iter().flatten().map(|s| s.day.bars as u64).sum();

    let mut days = Vec::with_capacity(kept.len() + scanned.len());
    let mut resets = Vec::new();
    let n_kept = kept.len();
    for (d, r) in kept {
        days.push(d);
        resets.extend(r);
    }
    for s in scanned.into_iter().flatten() {
        days.push(s.day);
        resets.extend(s.resets);
    }
    days.sort_by(|a, b| (&a.symbol, a.date).cmp(&(&b.symbol, b.date)));
    index::finish_days(&mut days, cfg);
    let manifest = Manifest {
        version: index::INDEX_VERSION,
        cache: cache_abs.clone(),
        scan: cfg.clone(),
        days: days.len(),
        resets: resets.len(),
        created: chrono::Local::now().to_rfc3339(),
        created_by: format!("sim-train {}", env!("CARGO_PKG_VERSION")),
    };
    let idx = Index::from_rows(out_dir.to_path_buf(), manifest, days, resets)?;
    idx.save()?;
    let elapsed = t0.elapsed().as_secs_f64();
    let mut categories: Vec<(Category, usize)> = Category::ALL.iter().map(|&c| (c, 0)).collect();
    for d in &idx.days {
        categories[d.category.index()].1 += 1;
    }
    Ok(ScanSummary {
        cache: cache_abs,
        index: out_dir.to_path_buf(),
        days: idx.days.len(),
        resets: idx.resets.len(),
        scanned: n_scanned,
        kept: n_kept,
        dropped,
        empty,
        full_rescan,
        bars_scanned,
        elapsed_s: elapsed,
        symbol_days_per_s: n_scanned as f64 / elapsed,
        bars_per_s: bars_scanned as f64 / elapsed,
        categories,
        momentum_days: idx.days.iter().filter(|d| d.momentum).count(),
    })
}
