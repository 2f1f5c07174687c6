//! Opening a day cache: map it, check it, hand out typed zero-copy column slices.
//!
//! `DayCache::open` refuses anything it cannot vouch for (foreign file, wrong version,
//! truncation, a flipped bit in any column, features from another feature-set version)
//! with a [`CacheError`] naming the file, so no caller ever computes on wrong numbers.

use super::CacheError;
use super::format::{
    COLUMN_ALIGN, ColumnMeta, DType, HEADER_LEN, Header, HeaderError, Meta, checksum, col,
};
use super::index::{ClockGroup, ClockIndex};
use crate::bars::Price;
use crate::features;
use memmap2::Mmap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// How much of a file `open` checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verify {
    /// Header, metadata and layout, and the checksum of every column (reads the whole file
    /// once; xxh3 runs at memory speed). The default.
    Full,
    /// Header, metadata and layout only: for hot loops that reopen files already verified.
    Structure,
}

/// A memory-mapped, verified day cache.
pub struct DayCache {
    path: PathBuf,
    mmap: Mmap,
    meta: Meta,
    data_start: usize,
    fixed: [Option<usize>; 15],
    features: Vec<usize>,
    clock: usize,
}

const FIXED: [(&str, DType); 15] = [
    (col::TS_NS, DType::I64),
    (col::OPEN, DType::I64),
    (col::HIGH, DType::I64),
    (col::LOW, DType::I64),
    (col::CLOSE, DType::I64),
    (col::VOLUME, DType::U64),
    (col::VWAP, DType::I64),
    (col::TRANSACTIONS, DType::U32),
    (col::BID, DType::I64),
    (col::ASK, DType::I64),
    (col::BID_SIZE, DType::U64),
    (col::ASK_SIZE, DType::U64),
    (col::FLAGS, DType::U32),
    (col::BUY_VOLUME, DType::U64),
    (col::SELL_VOLUME, DType::U64),
];
const REQUIRED: usize = 6;

impl DayCache {
    /// Opens and fully verifies `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<DayCache, CacheError> {
        DayCache::open_with(path, Verify::Full)
    }

    pub fn open_with(path: impl AsRef<Path>, verify: Verify) -> Result<DayCache, CacheError> {
        let path = path.as_ref().to_path_buf();
        let io = |e| CacheError::Io {
            path: path.clone(),
            source: e,
        };
        let file = File::open(&path).map_err(io)?;
        let actual = file.metadata().map_err(io)?.len();
        // SAFETY: the map is read-only and day caches are never modified in place: writers
        // create a new file and rename it over the old one, which leaves existing maps of
        // the old inode intact. Truncating a cache file from outside while it is mapped is
        // not supported (as for every mmap reader) and is documented in the README.
        let mmap = unsafe { Mmap::map(&file) }.map_err(io)?;
        let corrupt = |detail: String| CacheError::Corrupt {
            path: path.clone(),
            detail,
        };
        let header = match Header::decode(&mmap) {
            Ok(h) => h,
            Err(HeaderError::Short(n)) => {
                return Err(if n >= 8 && mmap[0..8] != super::format::MAGIC {
                    CacheError::BadMagic { path }
                } else {
                    CacheError::Truncated {
                        path,
                        expected: HEADER_LEN as u64,
                        actual: n as u64,
                    }
                });
            }
            Err(HeaderError::Magic) => return Err(CacheError::BadMagic { path }),
            Err(HeaderError::Version(v)) => {
                return Err(CacheError::Version {
                    path,
                    found: v,
                    supported: super::format::FORMAT_VERSION,
                });
            }
            Err(HeaderError::Checksum) => {
                return Err(CacheError::Checksum {
                    path,
                    part: "header".into(),
                });
            }
        };
        if header.file_len != actual {
            return Err(CacheError::Truncated {
                path,
                expected: header.file_len,
                actual,
            });
        }
        let meta_end = (HEADER_LEN as u64)
            .checked_add(header.meta_len)
            .filter(|&e| e <= header.data_start);
        let Some(meta_end) = meta_end.filter(|_| header.data_start <= actual) else {
            return Err(corrupt("metadata extends past the data".into()));
        };
        let meta_bytes = &mmap[HEADER_LEN..meta_end as usize];
        if checksum(meta_bytes) != header.meta_checksum {
            return Err(CacheError::Checksum {
                path,
                part: "metadata".into(),
            });
        }
        let meta: Meta =
            serde_json::from_slice(meta_bytes).map_err(|e| corrupt(format!("metadata: {e}")))?;
        if meta.feature_version != features::FEATURE_VERSION
            || meta.feature_set != features::FEATURE_SET
        {
            return Err(CacheError::Stale {
                path,
                found: format!("{} (version {})", meta.feature_set, meta.feature_version),
                current: format!(
                    "{} (version {})",
                    features::FEATURE_SET,
                    features::FEATURE_VERSION
                ),
            });
        }

        if !header.data_start.is_multiple_of(COLUMN_ALIGN as u64) {
            return Err(corrupt("data section is misaligned".into()));
        }
        let data_start = header.data_start as usize;
        let data_len = actual - header.data_start;
        let mut fixed = [None; 15];
        let mut feature_cols = vec![usize::MAX; features::N_FEATURES];
        let mut clock = None;
        for (i, c) in meta.columns.iter().enumerate() {
            check_layout(c, data_len).map_err(&corrupt)?;
            if let Some(k) = FIXED.iter().position(|(n, _)| *n == c.name) {
                if c.dtype != FIXED[k].1 || c.len != meta.rows {
                    return Err(corrupt(format!(
                        "column {} has type {:?} and {} rows",
                        c.name, c.dtype, c.len
                    )));
                }
                fixed[k] = Some(i);
            } else if let Some(k) = features::feature_index(&c.name) {
                if c.dtype != DType::F32 || c.len != meta.rows {
                    return Err(corrupt(format!(
                        "feature {} has type {:?} and {} rows",
                        c.name, c.dtype, c.len
                    )));
                }
                feature_cols[k] = i;
            } else if c.name == col::CLOCK {
                if c.dtype != DType::U32 || c.len != meta.clock.n_groups() as u64 * 4 {
                    return Err(corrupt(format!("clock index has {} entries", c.len)));
                }
                clock = Some(i);
            } else {
                return Err(corrupt(format!("unknown column '{}'", c.name)));
            }
        }
        if let Some(k) = (0..REQUIRED).find(|&k| fixed[k].is_none()) {
            return Err(corrupt(format!("missing column '{}'", FIXED[k].0)));
        }
        if let Some(k) = feature_cols.iter().position(|&i| i == usize::MAX) {
            return Err(corrupt(format!(
                "missing feature column '{}'",
                features::FEATURE_NAMES[k]
            )));
        }
        let clock = clock.ok_or_else(|| corrupt("missing clock index".into()))?;
        if meta.clock.slot_secs == 0 || meta.clock.n_slots == 0 {
            return Err(corrupt(format!(
                "clock has {} slots of {} s",
                meta.clock.n_slots, meta.clock.slot_secs
            )));
        }
        let cache = DayCache {
            path,
            mmap,
            meta,
            data_start,
            fixed,
            features: feature_cols,
            clock,
        };
        if verify == Verify::Full {
            for c in &cache.meta.columns {
                if checksum(cache.bytes(c)) != c.checksum {
                    return Err(CacheError::Checksum {
                        path: cache.path.clone(),
                        part: format!("column '{}'", c.name),
                    });
                }
            }
        }
        // The index must count exactly the rows (and never more), or lookups would index past
        // the columns. Cheap (one pass over 16-byte groups), so checked at every level.
        let mut base = 0u32;
        for g in cache.clock().groups {
            if g.base != base {
                return Err(CacheError::Corrupt {
                    path: cache.path.clone(),
                    detail: "clock index does not count the bars".into(),
                });
            }
            base = base.saturating_add(g.mask_lo.count_ones() + g.mask_hi.count_ones());
        }
        if base as u64 != cache.meta.rows {
            return Err(CacheError::Corrupt {
                path: cache.path.clone(),
                detail: format!(
                    "clock index counts {base} bars, the file has {}",
                    cache.meta.rows
                ),
            });
        }
        Ok(cache)
    }

    fn bytes(&self, c: &ColumnMeta) -> &[u8] {
        let start = self.data_start + c.offset as usize;
        &self.mmap[start..start + c.byte_len() as usize]
    }

    fn typed<T: bytemuck::Pod>(&self, i: usize) -> &[T] {
        // Layout was checked at open: in bounds, 256-byte aligned on a page-aligned map,
        // length a multiple of the element size.
        bytemuck::cast_slice(self.bytes(&self.meta.columns[i]))
    }

    fn required<T: bytemuck::Pod>(&self, k: usize) -> &[T] {
        self.typed(self.fixed[k].expect("required columns are checked at open"))
    }

    fn fixed<T: bytemuck::Pod>(&self, k: usize) -> Option<&[T]> {
        self.fixed[k].map(|i| self.typed(i))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn meta(&self) -> &Meta {
        &self.meta
    }
    pub fn rows(&self) -> usize {
        self.meta.rows as usize
    }
    /// Bar start times, UTC nanoseconds.
    pub fn ts_ns(&self) -> &[i64] {
        self.required(0)
    }
    pub fn opens(&self) -> &[Price] {
        self.required(1)
    }
    pub fn highs(&self) -> &[Price] {
        self.required(2)
    }
    pub fn lows(&self) -> &[Price] {
        self.required(3)
    }
    pub fn closes(&self) -> &[Price] {
        self.required(4)
    }
    pub fn volumes(&self) -> &[u64] {
        self.required(5)
    }
    pub fn vwap(&self) -> Option<&[Price]> {
        self.fixed(6)
    }
    pub fn transactions(&self) -> Option<&[u32]> {
        self.fixed(7)
    }
    pub fn bid(&self) -> Option<&[Price]> {
        self.fixed(8)
    }
    pub fn ask(&self) -> Option<&[Price]> {
        self.fixed(9)
    }
    pub fn bid_size(&self) -> Option<&[u64]> {
        self.fixed(10)
    }
    pub fn ask_size(&self) -> Option<&[u64]> {
        self.fixed(11)
    }
    /// Per-bar flags ([`super::format::FLAG_SUSPECT`]); `None` in caches written before
    /// the column existed.
    pub fn flags(&self) -> Option<&[u32]> {
        self.fixed(12)
    }
    /// Volume initiated by buyers, per bar (sources with trade records).
    pub fn buy_volume(&self) -> Option<&[u64]> {
        self.fixed(13)
    }
    /// Volume initiated by sellers, per bar.
    pub fn sell_volume(&self) -> Option<&[u64]> {
        self.fixed(14)
    }
    /// Feature column `k` in [`features::FEATURE_NAMES`] order.
    pub fn feature(&self, k: usize) -> &[f32] {
        self.typed(self.features[k])
    }
    pub fn feature_by_name(&self, name: &str) -> Option<&[f32]> {
        features::feature_index(name).map(|k| self.feature(k))
    }
    /// Raw bytes of any column (for GPU upload).
    pub fn column_bytes(&self, name: &str) -> Option<&[u8]> {
        self.meta
            .columns
            .iter()
            .find(|c| c.name == name)
            .map(|c| self.bytes(c))
    }
    /// The O(1) clock-time → row index.
    pub fn clock(&self) -> ClockIndex<'_> {
        let groups: &[ClockGroup] = self.typed(self.clock);
        ClockIndex::new(self.meta.clock, groups)
    }
    /// Seconds since New York midnight of bar `row`'s start.
    pub fn sec_of_day(&self, row: usize) -> i64 {
        crate::clock::sec_of_day(self.ts_ns()[row], self.meta.date, self.meta.utc_offset_sec)
    }
    /// Total bytes of the file.
    pub fn file_len(&self) -> usize {
        self.mmap.len()
    }
}

fn check_layout(c: &ColumnMeta, data_len: u64) -> Result<(), String> {
    let end = c
        .len
        .checked_mul(c.dtype.size() as u64)
        .and_then(|b| b.checked_add(c.offset));
    if !c.offset.is_multiple_of(COLUMN_ALIGN as u64) {
        return Err(format!("column '{}' is misaligned", c.name));
    }
    match end {
        Some(end) if end <= data_len => Ok(()),
        _ => Err(format!(
            "column '{}' extends past the end of the file",
            c.name
        )),
    }
}
