//! A symbol-day laid out for stepping: the one market-data layout every engine reads.
//!
//! A day cache is columnar (one column per field, as written by the builder); an
//! environment step needs, for one bar, a handful of market fields and the observation's
//! feature row. [`DayData`] regroups a cached day once into
//! - `bars`: one [`BarRec`] (48 bytes, `#[repr(C)]`) per bar: everything execution needs;
//! - `features`: the observation's feature columns row-major (`rows × K` f32), so writing
//!   an observation is one contiguous copy.
//!
//! Times are milliseconds since New York midnight (u32), prices f64 dollars: both exact
//! for the cache's nanosecond timestamps at bar resolution and its nanodollar prices, and
//! both representable on every GPU backend (as u32 and as a pair of u32 words).

use super::params::{EnvParams, SessionKind};
use super::store::{SharedSlice, pack2};
use crate::bars::BarSize;
use crate::cache::DayCache;
use crate::features::feature_index;
use chrono::NaiveDate;

/// `first_row` / `last_row` of a growing day before its first / last session bar has
/// arrived ([`DayData::growing`]).
pub const GROWING: u32 = u32::MAX;

/// Bar flag: trading is halted during this bar (orders are rejected).
pub const FLAG_HALTED: u32 = 1;
/// Bar flag: a usable quote (`bid > 0`, `ask >= bid`) was in force when the bar opened.
pub const FLAG_QUOTE: u32 = 2;
/// Bar flag: the causal bad-print check flagged the bar ([`crate::validate::PrintCheck`];
/// the cache's `flags` column, the live stream's own check). Information only: the
/// execution model trades the bar as any other.
pub const FLAG_SUSPECT: u32 = 4;

/// One bar as the execution model reads it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BarRec {
    /// Bar start, milliseconds since New York midnight.
    pub ts_ms: u32,
    /// [`FLAG_HALTED`] | [`FLAG_QUOTE`] (a quote was in force at the open) |
    /// [`FLAG_SUSPECT`].
    pub flags: u32,
    pub open: f64,
    pub close: f64,
    /// Top of book in force when the bar opens, i.e. the previous bar's closing quote
    /// (valid when [`FLAG_QUOTE`] is set).
    pub bid: f64,
    pub ask: f64,
    /// Shares traded in the bar.
    pub volume: f32,
    /// Volatility used by the impact model: ATR(14)/close of the *previous* bar, so it is
    /// known before this bar opens (0 for the first bar of the day).
    pub sigma: f32,
}

const _: () = assert!(std::mem::size_of::<BarRec>() == 48);

impl BarRec {
    pub fn halted(&self) -> bool {
        self.flags & FLAG_HALTED != 0
    }
    pub fn has_quote(&self) -> bool {
        self.flags & FLAG_QUOTE != 0
    }
}

/// A day ready for the environments.
#[derive(Clone, Debug, PartialEq)]
pub struct DayData {
    pub symbol: String,
    pub date: NaiveDate,
    pub bar: BarSize,
    /// Bar length, ms.
    pub bar_ms: u32,
    /// UTC nanoseconds of New York midnight (to turn `ts_ms` back into timestamps).
    pub midnight_ns: i64,
    /// The bar records; they and `features` share one buffer on huge pages where the
    /// system provides them ([`super::store`]).
    pub bars: SharedSlice<BarRec>,
    /// Row-major observation features, `bars.len() × k`.
    pub features: SharedSlice<f32>,
    /// Feature columns per row.
    pub k: usize,
    /// First and last row of the traded session (inclusive); `first_row > last_row` when
    /// the session has no bars.
    pub first_row: u32,
    pub last_row: u32,
    /// Close of the traded session, ms since midnight (the `time_to_close` reference).
    pub close_ms: u32,
    /// Halts as `[start, end)` ms since midnight.
    pub halts: Vec<(u32, u32)>,
}

impl DayData {
    /// Bytes a day takes in memory per bar: its record and its observation features.
    pub fn bytes_per_row(params: &EnvParams) -> usize {
        std::mem::size_of::<BarRec>() + params.feature_cols.len() * std::mem::size_of::<f32>()
    }

    /// Maps and verifies the cache file `path` and regroups its day for `params`.
    pub fn open(path: &std::path::Path, params: &EnvParams) -> crate::Result<DayData> {
        Ok(DayData::from_cache(&DayCache::open(path)?, params))
    }

    /// Regroups a cached day for `params` (its feature columns and session choice).
    pub fn from_cache(day: &DayCache, params: &EnvParams) -> DayData {
        let meta = day.meta();
        let midnight_ns = crate::clock::utc_ns_with_offset(meta.date, 0, meta.utc_offset_sec);
        let to_ms = |ns: i64| ((ns - midnight_ns).clamp(0, 86_400_000_000_000) / 1_000_000) as u32;
        let n = day.rows();
        let (ts, open, close, vol) = (day.ts_ns(), day.opens(), day.closes(), day.volumes());
        let quotes = day.bid().zip(day.ask());
        let suspect = day.flags();
        let atr_col = feature_index("atr_ratio_14").expect("feature set v2 has atr_ratio_14");
        let halted_col = feature_index("halted").expect("feature set v2 has halted");
        let (atr, halted) = (day.feature(atr_col), day.feature(halted_col));
        let halts: Vec<(u32, u32)> = meta
            .halts
            .iter()
            .map(|h| (to_ms(h.start_ns), to_ms(h.end_ns)))
            .collect();
        let mut bars = Vec::with_capacity(n);
        for i in 0..n {
            let ts_ms = to_ms(ts[i]);
            let mut flags = 0;
            if halted[i] > 0.5 || halts.iter().any(|&(a, b)| ts_ms >= a && ts_ms < b) {
                flags |= FLAG_HALTED;
            }
            if suspect.is_some_and(|f| f[i] & crate::cache::FLAG_SUSPECT != 0) {
                flags |= FLAG_SUSPECT;
            }
            // The book in force when bar i opens: bar i−1's closing quote (the cache
            // stores each bar's quote at its close, a bar later than the open).
            let (mut bid, mut ask) = (0.0, 0.0);
            if let Some((b, a)) = quotes
                && i > 0
                && b[i - 1].0 > 0
                && a[i - 1].0 >= b[i - 1].0
            {
                flags |= FLAG_QUOTE;
                bid = b[i - 1].dollars();
                ask = a[i - 1].dollars();
            }
            bars.push(BarRec {
                ts_ms,
                flags,
                open: open[i].dollars(),
                close: close[i].dollars(),
                bid,
                ask,
                volume: vol[i] as f32,
                sigma: if i == 0 { 0.0 } else { atr[i - 1].max(0.0) },
            });
        }
        let cols: Vec<&[f32]> = params
            .feature_cols
            .iter()
            .map(|&k| day.feature(k))
            .collect();
        let k = cols.len();
        let mut features = vec![0f32; n * k];
        for (i, row) in features.chunks_exact_mut(k.max(1)).enumerate().take(n) {
            for (dst, col) in row.iter_mut().zip(&cols) {
                *dst = col[i];
            }
        }
        let s = meta.session;
        let (open_s, close_s) = match params.session {
            SessionKind::Regular => (s.open_sec, s.close_sec),
            SessionKind::Extended => (s.pre_open_sec, s.post_close_sec),
        };
        DayData::assemble(
            meta.symbol.clone(),
            meta.date,
            meta.bar,
            midnight_ns,
            bars,
            features,
            k,
            (open_s * 1000, close_s * 1000),
            halts,
        )
    }

    /// Builds a day from parts (hand-built test days, synthetic days): finds the session
    /// rows. `session_ms` is the traded session `[open, close)` in ms since midnight.
    #[allow(clippy::too_many_arguments)]
    pub fn assemble(
        symbol: String,
        date: NaiveDate,
        bar: BarSize,
        midnight_ns: i64,
        bars: Vec<BarRec>,
        features: Vec<f32>,
        k: usize,
        session_ms: (u32, u32),
        halts: Vec<(u32, u32)>,
    ) -> DayData {
        assert_eq!(features.len(), bars.len() * k, "features must be rows × k");
        let (bars, features) = pack2(bars.len(), features.len(), |b, f| {
            b.copy_from_slice(&bars);
            f.copy_from_slice(&features);
        });
        let (open_ms, close_ms) = session_ms;
        let first = bars.partition_point(|b| b.ts_ms < open_ms);
        let end = bars.partition_point(|b| b.ts_ms < close_ms);
        let (first_row, last_row) = if end > first {
            (first as u32, (end - 1) as u32)
        } else {
            (1, 0)
        };
        DayData {
            symbol,
            date,
            bar,
            bar_ms: bar.secs() * 1000,
            midnight_ns,
            bars,
            features,
            k,
            first_row,
            last_row,
            close_ms,
            halts,
        }
    }

    /// A day with no bars yet, to be grown bar by bar as a live feed delivers them
    /// ([`DayData::push`]); its session rows are found as bars arrive.
    #[allow(clippy::too_many_arguments)]
    pub fn growing(
        symbol: String,
        date: NaiveDate,
        bar: BarSize,
        midnight_ns: i64,
        k: usize,
        close_ms: u32,
        halts: Vec<(u32, u32)>,
    ) -> DayData {
        DayData {
            symbol,
            date,
            bar,
            bar_ms: bar.secs() * 1000,
            midnight_ns,
            bars: SharedSlice::default(),
            features: SharedSlice::default(),
            k,
            first_row: GROWING,
            last_row: GROWING,
            close_ms,
            halts,
        }
    }

    /// Appends a bar of a growing day: the first bar at or after `open_ms` (and before
    /// the close) becomes the session's first row; `last` marks the session's last bar.
    /// Rows are exactly those of the same day assembled whole, so an episode stepping
    /// through a growing day steps as through the whole one.
    pub fn push(&mut self, bar: BarRec, features: &[f32], open_ms: u32, last: bool) {
        debug_assert_eq!(features.len(), self.k);
        debug_assert!(self.bars.last().is_none_or(|b| b.ts_ms < bar.ts_ms));
        let row = self.bars.len() as u32;
        if self.first_row == GROWING && bar.ts_ms >= open_ms && bar.ts_ms < self.close_ms {
            self.first_row = row;
        }
        if last {
            self.last_row = row;
        }
        self.bars.push(bar);
        self.features.extend_from_slice(features);
    }

    pub fn rows(&self) -> usize {
        self.bars.len()
    }

    /// Feature row `row` (the observation's first `k` values).
    #[inline]
    pub fn feature_row(&self, row: usize) -> &[f32] {
        &self.features[row * self.k..(row + 1) * self.k]
    }

    /// Whether `ms` falls inside a halt of the day.
    #[inline]
    pub fn in_halt(&self, ms: u32) -> bool {
        self.halts.iter().any(|&(a, b)| ms >= a && ms < b)
    }

    /// The first row at or after `sec_of_day` inside the traded session from which an
    /// episode can start (at least one more session bar must follow it), if any.
    pub fn start_row_at(&self, sec_of_day: u32) -> Option<u32> {
        if self.first_row >= self.last_row {
            return None;
        }
        let ms = sec_of_day.saturating_mul(1000);
        let row = self.bars.partition_point(|b| b.ts_ms < ms) as u32;
        let row = row.max(self.first_row);
        (row < self.last_row).then_some(row)
    }

    /// UTC nanoseconds of a ms-of-day time.
    pub fn utc_ns(&self, ms: u32) -> i64 {
        self.midnight_ns + ms as i64 * 1_000_000
    }

    /// Bytes of market data one step reads (a bar record and a feature row).
    pub fn bytes_per_step(k: usize) -> usize {
        std::mem::size_of::<BarRec>() + 4 * k
    }
}

/// Which cached days to load.
#[derive(Clone, Debug, Default)]
pub struct DaySelection {
    /// Symbols (upper case); `None` = every symbol in the cache.
    pub symbols: Option<Vec<String>>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

/// The catalog entries of the cached days of `dir` that `sel` selects, in (symbol, date)
/// order. Errors name the cache and what is missing; an empty selection is an error.
pub fn select_days(
    dir: &std::path::Path,
    sel: &DaySelection,
) -> crate::Result<Vec<crate::cache::CatalogEntry>> {
    let catalog = crate::cache::Catalog::load_existing(dir)?;
    if let Some(symbols) = &sel.symbols {
        let known = catalog.symbols();
        if let Some(s) = symbols.iter().find(|s| !known.contains(s)) {
            return Err(crate::Error::NotFound(format!(
                "symbol {s} is not in the cache {} (it has {})",
                dir.display(),
                known.join(", ")
            )));
        }
    }
    let picked: Vec<_> = catalog
        .entries
        .into_values()
        .filter(|e| sel.symbols.as_ref().is_none_or(|s| s.contains(&e.symbol)))
        .filter(|e| sel.from.is_none_or(|f| e.date >= f) && sel.to.is_none_or(|t| e.date <= t))
        .collect();
    if picked.is_empty() {
        return Err(crate::Error::NotFound(format!(
            "no cached day in {} matches the selection (symbols {:?}, dates {:?}..{:?})",
            dir.display(),
            sel.symbols,
            sel.from,
            sel.to
        )));
    }
    Ok(picked)
}

/// Loads (in parallel) every cached day of `dir` that `sel` selects, in (symbol, date)
/// order. Errors name the cache and what is missing; an empty selection is an error.
pub fn load_days(
    dir: &std::path::Path,
    sel: &DaySelection,
    params: &EnvParams,
) -> crate::Result<Vec<std::sync::Arc<DayData>>> {
    use rayon::prelude::*;
    let picked = select_days(dir, sel)?;
    let rows: u64 = picked.iter().map(|e| e.rows).sum();
    crate::util::mem::check(
        &format!(
            "loading {} symbol-days ({rows} bars) of {}",
            picked.len(),
            dir.display()
        ),
        crate::util::mem::product(
            &[usize::try_from(rows).unwrap_or(usize::MAX)],
            DayData::bytes_per_row(params),
        ),
        "select fewer days (--symbols, --from, --to)",
    )?;
    picked
        .par_iter()
        .map(|e| {
            let path = crate::cache::day_path(dir, &e.symbol, e.date);
            Ok(std::sync::Arc::new(DayData::open(&path, params)?))
        })
        .collect()
}
