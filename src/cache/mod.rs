//! Memory-mapped columnar day caches: one file per symbol and trading day.
//!
//! [`format`] defines the bytes, [`writer`] writes a day atomically, [`reader`] maps and
//! verifies one ([`DayCache`]), [`index`] answers "latest bar at or before this clock
//! time" in O(1), and [`catalog`] lists what a cache folder holds without opening every
//! file. A cache folder is laid out as `<cache>/<SYMBOL>/<YYYY-MM-DD>.simday` plus
//! `catalog.json`.

pub mod catalog;
pub mod export;
pub mod format;
pub mod index;
pub mod reader;
pub mod verify;
pub mod writer;

pub use catalog::{Catalog, CatalogEntry};
pub use format::{DType, FLAG_SUSPECT, Meta, SessionTimes};
pub use index::{ClockGroup, ClockIndex, ClockSpec};
pub use reader::{DayCache, Verify};
pub use writer::{DayInfo, write_day};

use chrono::NaiveDate;
use std::path::{Path, PathBuf};

/// Why a day cache cannot be trusted. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a sim-train day cache (wrong magic number); point --cache at a folder built by `sim-train cache build`", path.display())]
    BadMagic { path: PathBuf },
    #[error("{}: truncated: {actual} bytes, header says {expected}; rebuild it with `sim-train cache build`", path.display())]
    Truncated {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
    #[error("{}: cache format version {found}, this build reads {supported}; rebuild the cache with this version", path.display())]
    Version {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("{}: checksum mismatch in {part}: the file is corrupt; rebuild it with `sim-train cache build`", path.display())]
    Checksum { path: PathBuf, part: String },
    #[error("{}: features are {found}, this build computes {current}; rebuild the cache so features match", path.display())]
    Stale {
        path: PathBuf,
        found: String,
        current: String,
    },
    #[error("{}: corrupt: {detail}; rebuild it with `sim-train cache build`", path.display())]
    Corrupt { path: PathBuf, detail: String },
}

impl CacheError {
    pub fn path(&self) -> &Path {
        match self {
            CacheError::Io { path, .. }
            | CacheError::BadMagic { path }
            | CacheError::Truncated { path, .. }
            | CacheError::Version { path, .. }
            | CacheError::Checksum { path, .. }
            | CacheError::Stale { path, .. }
            | CacheError::Corrupt { path, .. } => path,
        }
    }
}

/// Path of the cache file for `symbol` on `date` under `cache_dir`.
pub fn day_path(cache_dir: &Path, symbol: &str, date: NaiveDate) -> PathBuf {
    cache_dir
        .join(symbol)
        .join(format!("{}.{}", date.format("%Y-%m-%d"), format::EXTENSION))
}

/// Every `*.simday` file under `cache_dir`, sorted.
pub fn list_day_files(cache_dir: &Path) -> crate::Result<Vec<PathBuf>> {
    use crate::error::IoContext;
    let mut out = Vec::new();
    let rd = std::fs::read_dir(cache_dir).at(cache_dir)?;
    for sym in rd {
        let sym = sym.at(cache_dir)?;
        if !sym.file_type().at(sym.path())?.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(sym.path()).at(sym.path())? {
            let p = f.at(sym.path())?.path();
            if p.extension().is_some_and(|e| e == format::EXTENSION) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}
