//! The scanner's index: `days.parquet`, `resets.parquet` and `index.json` in one folder.
//!
//! [`DayRow`] and [`ResetRow`] are the rows of the two tables, kept in memory as plain
//! structs (sorted by symbol, date, and for resets by time) so queries and the sampler
//! index them by integer. [`Index::load`] reads the folder (milliseconds for a few hundred
//! thousand days) and [`Index::save`] writes it atomically: each table to a temporary
//! file renamed into place, `index.json` (the manifest, with the row counts) last, so a
//! reader never pairs tables of different scans without noticing.
//!
//! Which fields are causal: every [`ResetRow`] feature is computed from bars at or before
//! its time (see [`super::resets`]). Every [`DayRow`] field is an end-of-day label except
//! `rel_volume` and `volume_history`, which look only at *earlier* days (and so does
//! nothing else); `quality`, `momentum` and `category` combine end-of-day fields.

use super::Category;
use super::config::ScanConfig;
use super::metrics::DayMetrics;
use super::resets::{Pattern, Phase, ResetPoint};
use crate::error::{Error, IoContext, Result};
use crate::util::fs::temp_in;
use chrono::NaiveDate;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const DAYS_FILE: &str = "days.parquet";
pub const RESETS_FILE: &str = "resets.parquet";
pub const MANIFEST_FILE: &str = "index.json";
/// Version of the index layout; an index of another version is rescanned from scratch.
pub const INDEX_VERSION: u32 = 1;

/// One symbol-day of `days.parquet`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DayRow {
    pub symbol: String,
    pub date: NaiveDate,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: u64,
    pub dollar_volume: f64,
    pub bars: u32,
    pub range: f64,
    pub change: f64,
    pub gap: Option<f64>,
    pub max_runup: f64,
    pub max_drawdown: f64,
    pub max_move: f64,
    pub trend: f64,
    pub halts: u32,
    pub squeezes: u32,
    /// Volume over the median (or mean, `scan.volume_baseline`) volume of up to
    /// `scan.volume_lookback_days` earlier cached days of the symbol (causal); None with
    /// fewer than `scan.volume_min_history` of them.
    pub rel_volume: Option<f64>,
    /// Earlier days behind `rel_volume`.
    pub volume_history: u32,
    pub momentum: bool,
    pub quality: f64,
    pub category: Category,
    /// Reset points of the day in `resets.parquet`.
    pub resets: u32,
    /// The cache file scanned, its length and modification time (ns since the epoch): a
    /// file that changed since is stale.
    pub path: String,
    pub file_len: u64,
    pub file_mtime_ns: i64,
}

impl DayRow {
    /// A row of the raw metrics; the cross-day fields are set by [`finish_days`].
    pub fn new(
        m: &DayMetrics,
        symbol: String,
        date: NaiveDate,
        squeezes: u32,
        resets: u32,
        file: &FileStamp,
    ) -> DayRow {
        DayRow {
            symbol,
            date,
            open: m.open,
            high: m.high,
            low: m.low,
            close: m.close,
            volume: m.volume,
            dollar_volume: m.dollar_volume,
            bars: m.bars,
            range: m.range,
            change: m.change,
            gap: m.gap,
            max_runup: m.max_runup,
            max_drawdown: m.max_drawdown,
            max_move: m.max_move,
            trend: m.trend,
            halts: m.halts,
            squeezes,
            rel_volume: None,
            volume_history: 0,
            momentum: false,
            quality: 0.0,
            category: Category::Dead,
            resets,
            path: file.path.display().to_string(),
            file_len: file.len,
            file_mtime_ns: file.mtime_ns,
        }
    }
}

/// One reset point of `resets.parquet`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResetRow {
    pub symbol: String,
    pub date: NaiveDate,
    /// Seconds after New York midnight (the parquet also has it as `time`, HH:MM:SS).
    pub sec: u32,
    pub pattern: Pattern,
    pub phase: Phase,
    pub local_quality: f64,
    pub volume_velocity: f64,
    pub price_velocity: f64,
    pub price: f64,
    pub move_so_far: f64,
    pub range_so_far: f64,
    /// Row of the day in [`Index::days`] (not stored; set on load).
    #[serde(skip)]
    pub day: u32,
}

impl ResetRow {
    pub fn new(symbol: &str, date: NaiveDate, p: &ResetPoint) -> ResetRow {
        ResetRow {
            symbol: symbol.to_string(),
            date,
            sec: p.sec,
            pattern: p.pattern,
            phase: p.phase,
            local_quality: p.local_quality,
            volume_velocity: p.volume_velocity,
            price_velocity: p.price_velocity,
            price: p.price,
            move_so_far: p.move_so_far,
            range_so_far: p.range_so_far,
            day: 0,
        }
    }
}

/// A cache file's identity when it was scanned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileStamp {
    pub path: PathBuf,
    pub len: u64,
    pub mtime_ns: i64,
}

impl FileStamp {
    pub fn of(path: &Path) -> Result<FileStamp> {
        let md = std::fs::metadata(path).at(path)?;
        let mtime_ns = md
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i64);
        Ok(FileStamp {
            path: path.to_path_buf(),
            len: md.len(),
            mtime_ns,
        })
    }
}

/// `index.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    /// The cache folder scanned (absolute).
    pub cache: PathBuf,
    /// The `[scan]` settings the index was built with.
    pub scan: ScanConfig,
    pub days: usize,
    pub resets: usize,
    /// When the scan finished (local time, RFC 3339).
    pub created: String,
    pub created_by: String,
}

/// A loaded index.
#[derive(Clone, Debug)]
pub struct Index {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub days: Vec<DayRow>,
    /// Sorted by (symbol, date, time); `day_resets[k]` is the range of day `k`'s.
    pub resets: Vec<ResetRow>,
    pub day_resets: Vec<std::ops::Range<u32>>,
}

/// Fills the cross-day fields of `days` (sorted by symbol, then date): `rel_volume`
/// from earlier days only, then `momentum`, `quality` and `category`.
pub fn finish_days(days: &mut [DayRow], cfg: &ScanConfig) {
    let lookback = cfg.volume_lookback_days as usize;
    let mut start = 0;
    while start < days.len() {
        let mut end = start;
        while end < days.len() && days[end].symbol == days[start].symbol {
            end += 1;
        }
        for k in start..end {
            let from = k.saturating_sub(lookback).max(start);
            let history = k - from;
            let base = baseline(
                days[from..k].iter().map(|d| d.volume as f64),
                cfg.volume_baseline,
            );
            let d = &mut days[k];
            d.volume_history = history as u32;
            d.rel_volume = (history >= cfg.volume_min_history as usize && base > 0.0)
                .then(|| d.volume as f64 / base);
            classify(d, cfg);
        }
        start = end;
    }
}

/// Median or mean of the earlier days' volumes (0 for none).
fn baseline(volumes: impl Iterator<Item = f64>, kind: super::config::VolumeBaseline) -> f64 {
    let mut v: Vec<f64> = volumes.collect();
    if v.is_empty() {
        return 0.0;
    }
    match kind {
        super::config::VolumeBaseline::Mean => v.iter().sum::<f64>() / v.len() as f64,
        super::config::VolumeBaseline::Median => {
            v.sort_by(f64::total_cmp);
            let m = v.len() / 2;
            if v.len() % 2 == 1 {
                v[m]
            } else {
                0.5 * (v[m - 1] + v[m])
            }
        }
    }
}

fn clamp01(x: f64) -> f64 {
    if x.is_finite() {
        x.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// Quality and category of a day whose `rel_volume` is known (see README: Scanning).
fn classify(d: &mut DayRow, cfg: &ScanConfig) {
    let range_c = clamp01((d.range - cfg.dead_range) / (cfg.full_range - cfg.dead_range));
    let liquidity_c = clamp01((d.dollar_volume / cfg.min_dollar_volume).log10() / 2.0);
    let mut num = cfg.weight_range * range_c
        + cfg.weight_trend * d.trend
        + cfg.weight_liquidity * liquidity_c;
    let mut den = cfg.weight_range + cfg.weight_trend + cfg.weight_liquidity;
    if let Some(r) = d.rel_volume {
        num += cfg.weight_volume * clamp01(r.ln() / cfg.full_rel_volume.ln());
        den += cfg.weight_volume;
    }
    d.quality = if den > 0.0 { clamp01(num / den) } else { 0.0 };
    let volume_at_least = |x: f64| d.rel_volume.is_none_or(|r| r >= x);
    d.momentum = d.range >= cfg.momentum_range && volume_at_least(cfg.momentum_rel_volume);
    d.category = if d.momentum {
        if d.halts > 0 || d.max_drawdown >= cfg.risk_drawdown {
            Category::Risk
        } else if d.quality >= cfg.prime_quality {
            Category::Prime
        } else {
            Category::Secondary
        }
    } else if d.range >= cfg.secondary_range && volume_at_least(cfg.secondary_rel_volume) {
        Category::Secondary
    } else if d.range < cfg.dead_range || d.rel_volume.is_some_and(|r| r < cfg.dead_rel_volume) {
        Category::Dead
    } else {
        Category::Mixed
    };
}

fn hms(sec: u32) -> String {
    format!("{:02}:{:02}:{:02}", sec / 3600, sec / 60 % 60, sec % 60)
}

fn frame_err(path: &Path) -> impl Fn(PolarsError) -> Error + '_ {
    move |e| {
        Error::input(
            path,
            format!(
                "{}; rerun `sim-train scan` to rewrite the index",
                e.to_string()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        )
    }
}

fn days_frame(days: &[DayRow]) -> PolarsResult<DataFrame> {
    macro_rules! col {
        ($name:literal, $f:expr) => {
            Column::new($name.into(), days.iter().map($f).collect::<Vec<_>>())
        };
    }
    DataFrame::new_infer_height(vec![
        col!("symbol", |d| d.symbol.clone()),
        col!("date", |d| d.date.to_string()),
        col!("open", |d| d.open),
        col!("high", |d| d.high),
        col!("low", |d| d.low),
        col!("close", |d| d.close),
        col!("volume", |d| d.volume),
        col!("dollar_volume", |d| d.dollar_volume),
        col!("bars", |d| d.bars),
        col!("range", |d| d.range),
        col!("change", |d| d.change),
        col!("gap", |d| d.gap),
        col!("max_runup", |d| d.max_runup),
        col!("max_drawdown", |d| d.max_drawdown),
        col!("max_move", |d| d.max_move),
        col!("trend", |d| d.trend),
        col!("halts", |d| d.halts),
        col!("squeezes", |d| d.squeezes),
        col!("rel_volume", |d| d.rel_volume),
        col!("volume_history", |d| d.volume_history),
        col!("momentum", |d| d.momentum),
        col!("quality", |d| d.quality),
        col!("category", |d| d.category.name().to_string()),
        col!("resets", |d| d.resets),
        col!("path", |d| d.path.clone()),
        col!("file_len", |d| d.file_len),
        col!("file_mtime_ns", |d| d.file_mtime_ns),
    ])
}

fn resets_frame(resets: &[ResetRow]) -> PolarsResult<DataFrame> {
    macro_rules! col {
        ($name:literal, $f:expr) => {
            Column::new($name.into(), resets.iter().map($f).collect::<Vec<_>>())
        };
    }
    DataFrame::new_infer_height(vec![
        col!("symbol", |r| r.symbol.clone()),
        col!("date", |r| r.date.to_string()),
        col!("sec", |r| r.sec),
        col!("time", |r| hms(r.sec)),
        col!("pattern", |r| r.pattern.name().to_string()),
        col!("phase", |r| r.phase.name().to_string()),
        col!("local_quality", |r| r.local_quality),
        col!("volume_velocity", |r| r.volume_velocity),
        col!("price_velocity", |r| r.price_velocity),
        col!("price", |r| r.price),
        col!("move_so_far", |r| r.move_so_far),
        col!("range_so_far", |r| r.range_so_far),
    ])
}

fn write_parquet(path: &Path, mut df: DataFrame) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = temp_in(dir).at(dir)?;
    ParquetWriter::new(tmp.as_file_mut())
        .finish(&mut df)
        .map_err(|e| Error::input(path, format!("writing: {e}")))?;
    tmp.as_file().sync_all().at(path)?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// Typed access to the columns of a loaded table, with errors naming file and column.
struct Table<'a> {
    path: &'a Path,
    df: DataFrame,
}

impl Table<'_> {
    fn col(&self, name: &str, dt: DataType) -> Result<Column> {
        let c = self.df.column(name).map_err(|_| {
            Error::input(
                self.path,
                format!("no column '{name}': not an index of this version; rerun `sim-train scan`"),
            )
        })?;
        c.cast(&dt).map_err(frame_err(self.path))
    }
    fn f64s(&self, name: &str) -> Result<Vec<Option<f64>>> {
        Ok(self
            .col(name, DataType::Float64)?
            .f64()
            .map_err(frame_err(self.path))?
            .iter()
            .collect())
    }
    fn u64s(&self, name: &str) -> Result<Vec<Option<u64>>> {
        Ok(self
            .col(name, DataType::UInt64)?
            .u64()
            .map_err(frame_err(self.path))?
            .iter()
            .collect())
    }
    fn i64s(&self, name: &str) -> Result<Vec<Option<i64>>> {
        Ok(self
            .col(name, DataType::Int64)?
            .i64()
            .map_err(frame_err(self.path))?
            .iter()
            .collect())
    }
    fn bools(&self, name: &str) -> Result<Vec<Option<bool>>> {
        Ok(self
            .col(name, DataType::Boolean)?
            .bool()
            .map_err(frame_err(self.path))?
            .iter()
            .collect())
    }
    fn strs(&self, name: &str) -> Result<Vec<Option<String>>> {
        Ok(self
            .col(name, DataType::String)?
            .str()
            .map_err(frame_err(self.path))?
            .iter()
            .map(|s| s.map(str::to_string))
            .collect())
    }
    fn bad(&self, name: &str, row: usize, what: &str) -> Error {
        Error::input(
            self.path,
            format!(
                "row {row}, column '{name}': {what}; rerun `sim-train scan` to rewrite the index"
            ),
        )
    }
}

fn read_table(path: &Path) -> Result<Table<'_>> {
    let file = std::fs::File::open(path).at(path)?;
    let df = ParquetReader::new(file).finish().map_err(frame_err(path))?;
    Ok(Table { path, df })
}

fn parse_date(t: &Table, row: usize, s: Option<String>) -> Result<NaiveDate> {
    s.as_deref()
        .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .ok_or_else(|| t.bad("date", row, "not a YYYY-MM-DD date"))
}

fn read_days(path: &Path) -> Result<Vec<DayRow>> {
    let t = read_table(path)?;
    let f = |n| t.f64s(n);
    let u = |n| t.u64s(n);
    let (symbol, date, category, file) = (
        t.strs("symbol")?,
        t.strs("date")?,
        t.strs("category")?,
        t.strs("path")?,
    );
    let (open, high, low, close) = (f("open")?, f("high")?, f("low")?, f("close")?);
    let (volume, dollar_volume, bars) = (u("volume")?, f("dollar_volume")?, u("bars")?);
    let (range, change, gap) = (f("range")?, f("change")?, f("gap")?);
    let (runup, drawdown, max_move, trend) = (
        f("max_runup")?,
        f("max_drawdown")?,
        f("max_move")?,
        f("trend")?,
    );
    let (halts, squeezes, rel_volume, history) = (
        u("halts")?,
        u("squeezes")?,
        f("rel_volume")?,
        u("volume_history")?,
    );
    let (momentum, quality, resets) = (t.bools("momentum")?, f("quality")?, u("resets")?);
    let (file_len, mtime) = (u("file_len")?, t.i64s("file_mtime_ns")?);
    let mut out = Vec::with_capacity(symbol.len());
    for i in 0..symbol.len() {
        let req = |v: Option<f64>, name: &str| v.ok_or_else(|| t.bad(name, i, "empty"));
        let requ = |v: Option<u64>, name: &str| v.ok_or_else(|| t.bad(name, i, "empty"));
        out.push(DayRow {
            symbol: symbol[i]
                .clone()
                .ok_or_else(|| t.bad("symbol", i, "empty"))?,
            date: parse_date(&t, i, date[i].clone())?,
            open: req(open[i], "open")?,
            high: req(high[i], "high")?,
            low: req(low[i], "low")?,
            close: req(close[i], "close")?,
            volume: requ(volume[i], "volume")?,
            dollar_volume: req(dollar_volume[i], "dollar_volume")?,
            bars: requ(bars[i], "bars")? as u32,
            range: req(range[i], "range")?,
            change: req(change[i], "change")?,
            gap: gap[i],
            max_runup: req(runup[i], "max_runup")?,
            max_drawdown: req(drawdown[i], "max_drawdown")?,
            max_move: req(max_move[i], "max_move")?,
            trend: req(trend[i], "trend")?,
            halts: requ(halts[i], "halts")? as u32,
            squeezes: requ(squeezes[i], "squeezes")? as u32,
            rel_volume: rel_volume[i],
            volume_history: requ(history[i], "volume_history")? as u32,
            momentum: momentum[i].ok_or_else(|| t.bad("momentum", i, "empty"))?,
            quality: req(quality[i], "quality")?,
            category: category[i]
                .as_deref()
                .and_then(Category::parse)
                .ok_or_else(|| t.bad("category", i, "not a category"))?,
            resets: requ(resets[i], "resets")? as u32,
            path: file[i].clone().ok_or_else(|| t.bad("path", i, "empty"))?,
            file_len: requ(file_len[i], "file_len")?,
            file_mtime_ns: mtime[i].ok_or_else(|| t.bad("file_mtime_ns", i, "empty"))?,
        });
    }
    Ok(out)
}

fn read_resets(path: &Path) -> Result<Vec<ResetRow>> {
    let t = read_table(path)?;
    let f = |n| t.f64s(n);
    let (symbol, date, sec) = (t.strs("symbol")?, t.strs("date")?, t.u64s("sec")?);
    let (pattern, phase) = (t.strs("pattern")?, t.strs("phase")?);
    let (lq, vv, pv) = (
        f("local_quality")?,
        f("volume_velocity")?,
        f("price_velocity")?,
    );
    let (price, mv, rg) = (f("price")?, f("move_so_far")?, f("range_so_far")?);
    let mut out = Vec::with_capacity(symbol.len());
    for i in 0..symbol.len() {
        let req = |v: Option<f64>, name: &str| v.ok_or_else(|| t.bad(name, i, "empty"));
        out.push(ResetRow {
            symbol: symbol[i]
                .clone()
                .ok_or_else(|| t.bad("symbol", i, "empty"))?,
            date: parse_date(&t, i, date[i].clone())?,
            sec: sec[i].ok_or_else(|| t.bad("sec", i, "empty"))? as u32,
            pattern: pattern[i]
                .as_deref()
                .and_then(Pattern::parse)
                .ok_or_else(|| t.bad("pattern", i, "not a pattern"))?,
            phase: phase[i]
                .as_deref()
                .and_then(Phase::parse)
                .ok_or_else(|| t.bad("phase", i, "not a phase"))?,
            local_quality: req(lq[i], "local_quality")?,
            volume_velocity: req(vv[i], "volume_velocity")?,
            price_velocity: req(pv[i], "price_velocity")?,
            price: req(price[i], "price")?,
            move_so_far: req(mv[i], "move_so_far")?,
            range_so_far: req(rg[i], "range_so_far")?,
            day: 0,
        });
    }
    Ok(out)
}

/// How an index compares with its cache's catalog.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Freshness {
    /// Cached days the index does not hold (added after the scan).
    pub not_indexed: Vec<(String, NaiveDate)>,
    /// Indexed days whose cache entry is gone.
    pub gone: Vec<(String, NaiveDate)>,
}

impl Freshness {
    pub fn is_fresh(&self) -> bool {
        self.not_indexed.is_empty() && self.gone.is_empty()
    }
}

impl Index {
    /// Builds an in-memory index from rows (sorted here) and a manifest.
    pub fn from_rows(
        dir: PathBuf,
        manifest: Manifest,
        mut days: Vec<DayRow>,
        mut resets: Vec<ResetRow>,
    ) -> Result<Index> {
        days.sort_by(|a, b| (&a.symbol, a.date).cmp(&(&b.symbol, b.date)));
        resets.sort_by(|a, b| (&a.symbol, a.date, a.sec).cmp(&(&b.symbol, b.date, b.sec)));
        let mut day_resets = Vec::with_capacity(days.len());
        let mut r = 0usize;
        for (k, d) in days.iter().enumerate() {
            let start = r;
            while r < resets.len() && (&resets[r].symbol, resets[r].date) < (&d.symbol, d.date) {
                r += 1;
            }
            if r != start {
                let x = &resets[start];
                return Err(Error::input(
                    dir.join(RESETS_FILE),
                    format!(
                        "reset point of {} {} has no row in {DAYS_FILE}; rerun `sim-train scan`",
                        x.symbol, x.date
                    ),
                ));
            }
            while r < resets.len() && resets[r].symbol == d.symbol && resets[r].date == d.date {
                resets[r].day = k as u32;
                r += 1;
            }
            day_resets.push(start as u32..r as u32);
        }
        if r != resets.len() {
            let x = &resets[r];
            return Err(Error::input(
                dir.join(RESETS_FILE),
                format!(
                    "reset point of {} {} has no row in {DAYS_FILE}; rerun `sim-train scan`",
                    x.symbol, x.date
                ),
            ));
        }
        Ok(Index {
            dir,
            manifest,
            days,
            resets,
            day_resets,
        })
    }

    /// Loads the index in `dir`. A folder without one, or with tables that do not match
    /// the manifest (an interrupted write), is refused with what to run.
    pub fn load(dir: &Path) -> Result<Index> {
        let mpath = dir.join(MANIFEST_FILE);
        if !mpath.is_file() {
            return Err(Error::NotFound(format!(
                "{}: no scanner index here ({MANIFEST_FILE} is missing); build one with `sim-train scan --cache CACHE_DIR --out {}`",
                dir.display(),
                dir.display()
            )));
        }
        let manifest: Manifest = serde_json::from_slice(&std::fs::read(&mpath).at(&mpath)?)
            .map_err(|e| {
                Error::input(
                    &mpath,
                    format!("unreadable manifest ({e}); rerun `sim-train scan`"),
                )
            })?;
        if manifest.version != INDEX_VERSION {
            return Err(Error::input(
                &mpath,
                format!(
                    "index version {}, this build reads {INDEX_VERSION}; rerun `sim-train scan --cache {} --out {}`",
                    manifest.version,
                    manifest.cache.display(),
                    dir.display()
                ),
            ));
        }
        let days = read_days(&dir.join(DAYS_FILE))?;
        let resets = read_resets(&dir.join(RESETS_FILE))?;
        if days.len() != manifest.days || resets.len() != manifest.resets {
            return Err(Error::input(
                dir,
                format!(
                    "the tables hold {} days and {} reset points, {MANIFEST_FILE} says {} and {} (an interrupted scan?); rerun `sim-train scan --cache {} --out {}`",
                    days.len(),
                    resets.len(),
                    manifest.days,
                    manifest.resets,
                    manifest.cache.display(),
                    dir.display()
                ),
            ));
        }
        Index::from_rows(dir.to_path_buf(), manifest, days, resets)
    }

    /// Writes the index into `self.dir` atomically (tables first, manifest last).
    pub fn save(&self) -> Result<()> {
        std::fs::create_dir_all(&self.dir).at(&self.dir)?;
        let err = |p: &Path| {
            let p = p.to_path_buf();
            move |e: PolarsError| Error::input(p.clone(), format!("building the table: {e}"))
        };
        let dp = self.dir.join(DAYS_FILE);
        write_parquet(&dp, days_frame(&self.days).map_err(err(&dp))?)?;
        let rp = self.dir.join(RESETS_FILE);
        write_parquet(&rp, resets_frame(&self.resets).map_err(err(&rp))?)?;
        let mut m = self.manifest.clone();
        m.days = self.days.len();
        m.resets = self.resets.len();
        let json =
            serde_json::to_vec_pretty(&m).map_err(|e| Error::input(&self.dir, e.to_string()))?;
        crate::util::fs::write_atomic(&self.dir.join(MANIFEST_FILE), &json)?;
        crate::util::fs::sync_dir(&self.dir);
        Ok(())
    }

    /// Row of (symbol, date) in [`Index::days`].
    pub fn find(&self, symbol: &str, date: NaiveDate) -> Option<usize> {
        self.days
            .binary_search_by(|d| (d.symbol.as_str(), d.date).cmp(&(symbol, date)))
            .ok()
    }

    /// Reset points of day `k`.
    pub fn resets_of(&self, k: usize) -> &[ResetRow] {
        let r = &self.day_resets[k];
        &self.resets[r.start as usize..r.end as usize]
    }

    /// Compares the index with its cache's catalog (reads `catalog.json`, no day file).
    pub fn freshness(&self) -> Result<Freshness> {
        let catalog = crate::cache::Catalog::load_existing(&self.manifest.cache)?;
        let mut f = Freshness::default();
        for (key, _) in catalog.entries.iter() {
            if self.find(&key.0, key.1).is_none() {
                f.not_indexed.push(key.clone());
            }
        }
        for d in &self.days {
            if !catalog.entries.contains_key(&(d.symbol.clone(), d.date)) {
                f.gone.push((d.symbol.clone(), d.date));
            }
        }
        Ok(f)
    }

    /// Logs a warning when the cache changed since the scan, saying what to run.
    pub fn warn_if_stale(&self) -> Result<Freshness> {
        let f = self.freshness()?;
        if !f.is_fresh() {
            tracing::warn!(
                "index {} is stale: {} cached day(s) are not indexed and {} indexed day(s) left the cache {}; update it with `sim-train scan --cache {} --out {}`",
                self.dir.display(),
                f.not_indexed.len(),
                f.gone.len(),
                self.manifest.cache.display(),
                self.manifest.cache.display(),
                self.dir.display()
            );
        }
        Ok(f)
    }
}
