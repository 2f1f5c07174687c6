//! QuantConnect LEAN equity data as a [`Source`].
//!
//! Layout under a LEAN data folder (`<root>/equity/usa`, or that folder itself):
//! - `second|minute/<sym>/<YYYYMMDD>_trade.zip`: one CSV per day,
//!   `ms_since_midnight_NY,open,high,low,close,volume`; an optional `<YYYYMMDD>_quote.zip`
//!   beside it holds `ms,bid_o,bid_h,bid_l,bid_c,bid_size,ask_o,ask_h,ask_l,ask_c,ask_size`.
//! - `hour|daily/<sym>.zip`: one CSV for the symbol's whole history,
//!   `YYYYMMDD HH:MM,open,high,low,close,volume`.
//! - `map_files/<sym>.csv` (`YYYYMMDD,ticker,exchange`): ticker renames. The folder read for
//!   a symbol on a date is the ticker of the first map row dated on or after that date;
//!   when that ticker has no file, the symbol's own name is tried (LEAN data sets often keep
//!   a renamed company's whole history under its current ticker).
//! - `factor_files/<sym>.csv`: split and dividend factors, read by [`crate::adjust`]
//!   through [`factor_dir`].
//!
//! Prices are integers in 1/10000 dollars and become exact [`Price`]s; times are New York
//! wall-clock and become UTC nanoseconds of the bar start through [`crate::clock`]. Symbols
//! are upper-case in our API and lower-case on disk; a [`RawDay`] keeps the requested
//! symbol even when a renamed folder was read. Quotes are merged into trade bars as the top
//! of book at each trade bar's close (see [`merge_quotes`]; `Price(0)` and size 0 mean no
//! quote yet). A daily bar's timestamp is New York midnight of its date (LEAN writes
//! `YYYYMMDD 00:00`); hour bars keep their `HH:MM` start. Hour and daily zips are parsed
//! once per file and cached, since every date of a build needs the same file.
//!
//! Malformed input (truncated zip, wrong column count, a bad number) is an
//! [`Error::Input`] naming the file and line; an empty file is a day without bars.

use crate::bars::{BarSize, Price, Quotes, RawDay};
use crate::clock;
use crate::error::{Error, IoContext, Result};
use crate::ingest::{Selection, Source};
use chrono::NaiveDate;
use rayon::prelude::*;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// LEAN equity prices are in 1/10000 dollars.
const UNITS_PER_DOLLAR: i64 = 10_000;
const MS_PER_DAY: i64 = 86_400_000;
const NS_PER_MS: i64 = 1_000_000;
/// Largest raw price that converts to nanodollars without overflowing an `i64`.
const MAX_RAW_PRICE: i64 = i64::MAX / (crate::bars::PRICE_SCALE / UNITS_PER_DOLLAR);

/// The folder holding LEAN's factor files for `root` (a LEAN data folder or its
/// `equity/usa`), for [`crate::adjust::FactorTables`].
pub fn factor_dir(root: &Path) -> PathBuf {
    usa_dir(root).join("factor_files")
}

/// `<root>/equity/usa` when it exists, else `root` itself (the caller passed `equity/usa`).
fn usa_dir(root: &Path) -> PathBuf {
    let nested = root.join("equity").join("usa");
    if nested.is_dir() {
        nested
    } else {
        root.to_path_buf()
    }
}

fn res_folder(bar: BarSize) -> &'static str {
    match bar {
        BarSize::S1 => "second",
        BarSize::M1 => "minute",
        BarSize::H1 => "hour",
        BarSize::D1 => "daily",
    }
}

/// What a file of this resolution should look like, for error messages.
fn layout_hint(root: &Path, bar: BarSize) -> String {
    let res = res_folder(bar);
    if bar == BarSize::S1 || bar == BarSize::M1 {
        format!(
            "{}/equity/usa/{res}/<symbol>/<YYYYMMDD>_trade.zip",
            root.display()
        )
    } else {
        format!("{}/equity/usa/{res}/<symbol>.zip", root.display())
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Cache maps are only ever updated by single inserts, so a panicked holder cannot have
    // left them inconsistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A symbol's ticker history from `map_files/<sym>.csv`.
#[derive(Clone, Debug, PartialEq)]
struct MapFile {
    /// `(last date the ticker is valid, lower-case ticker)`, ascending.
    rows: Vec<(NaiveDate, String)>,
}

impl MapFile {
    fn parse(text: &str, path: &Path) -> Result<MapFile> {
        let mut rows: Vec<(NaiveDate, String)> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let mut fields = line.split(',').map(str::trim);
            let (Some(date), Some(ticker)) = (fields.next(), fields.next()) else {
                return Err(Error::input(
                    path,
                    format!("line {n}: expected 'YYYYMMDD,ticker,exchange', found '{line}'"),
                ));
            };
            let date = NaiveDate::parse_from_str(date, "%Y%m%d").map_err(|_| {
                Error::input(
                    path,
                    format!("line {n}: invalid date '{date}': expected YYYYMMDD"),
                )
            })?;
            if ticker.is_empty() {
                return Err(Error::input(path, format!("line {n}: empty ticker")));
            }
            if let Some((prev, _)) = rows.last()
                && *prev >= date
            {
                return Err(Error::input(
                    path,
                    format!(
                        "line {n}: date {} is not after the previous row's: rows must be ascending",
                        date.format("%Y%m%d")
                    ),
                ));
            }
            rows.push((date, ticker.to_ascii_lowercase()));
        }
        if rows.is_empty() {
            return Err(Error::input(path, "map file has no rows"));
        }
        Ok(MapFile { rows })
    }

    /// The ticker in use on `date`: the first row dated on or after it (after the last row,
    /// the last ticker).
    fn ticker(&self, date: NaiveDate) -> &str {
        let i = self.rows.partition_point(|(d, _)| *d < date);
        let row = self.rows.get(i).or(self.rows.last());
        row.map_or("", |(_, t)| t.as_str())
    }
}

/// One selected symbol and where its files are.
#[derive(Debug)]
struct Sym {
    /// Upper-case, as in our API and in every [`RawDay`].
    name: String,
    /// Lower-case, as on disk.
    disk: String,
    map: Option<MapFile>,
    /// Hour/daily only: the tickers of this symbol that have a `<ticker>.zip`.
    zips: HashSet<String>,
}

impl Sym {
    /// Every folder/file name this symbol's data may be under: its own name and any ticker
    /// in its map file.
    fn all_tickers(&self) -> BTreeSet<&str> {
        let mut t: BTreeSet<&str> = BTreeSet::from([self.disk.as_str()]);
        if let Some(m) = &self.map {
            t.extend(m.rows.iter().map(|(_, t)| t.as_str()));
        }
        t
    }

    /// The mapped ticker on `date`, then the symbol's own name if different.
    fn tickers_on(&self, date: NaiveDate) -> [Option<&str>; 2] {
        match &self.map {
            Some(m) if m.ticker(date) != self.disk => [Some(m.ticker(date)), Some(&self.disk)],
            _ => [Some(&self.disk), None],
        }
    }
}

/// An hour/daily zip parsed once: rows grouped by date, raw LEAN units.
#[derive(Debug, Default)]
struct Series {
    /// `(date, rows of that date)`, ascending by date.
    days: Vec<(NaiveDate, Range<usize>)>,
    sec: Vec<i64>,
    open: Vec<i64>,
    high: Vec<i64>,
    low: Vec<i64>,
    close: Vec<i64>,
    volume: Vec<u64>,
}

impl Series {
    fn day(&self, date: NaiveDate) -> Option<Range<usize>> {
        let i = self.days.binary_search_by_key(&date, |(d, _)| *d).ok()?;
        self.days.get(i).map(|(_, r)| r.clone())
    }
}

/// A per-file slot: parsed at most once (on success), concurrent askers wait for it.
type SeriesSlot = Arc<Mutex<Option<Arc<Series>>>>;

/// QuantConnect LEAN equity data for one bar size.
#[derive(Debug)]
pub struct LeanSource {
    root: PathBuf,
    res_dir: PathBuf,
    sel: Selection,
    symbols: Vec<Sym>,
    series: Mutex<HashMap<PathBuf, SeriesSlot>>,
}

impl LeanSource {
    /// Opens the LEAN data folder `root` (containing `equity/usa`, or being it) for
    /// `sel.bar`. Without `sel.symbols`, every symbol present at that resolution is
    /// selected; a requested symbol without any file there is an error.
    pub fn new(root: &Path, sel: Selection) -> Result<LeanSource> {
        let res = res_folder(sel.bar);
        if !root.is_dir() {
            return Err(Error::NotFound(format!(
                "LEAN data folder {} does not exist: pass the folder that contains equity/usa/{res}",
                root.display()
            )));
        }
        let usa = usa_dir(root);
        let res_dir = usa.join(res);
        if !res_dir.is_dir() {
            return Err(Error::NotFound(format!(
                "no LEAN {res} data under {}: expected {}",
                root.display(),
                layout_hint(root, sel.bar)
            )));
        }
        let names: BTreeSet<String> = match &sel.symbols {
            Some(s) => s.iter().map(|s| s.to_ascii_uppercase()).collect(),
            None => list_symbols(&res_dir, sel.bar)?,
        };
        let map_dir = usa.join("map_files");
        let mut symbols = Vec::with_capacity(names.len());
        for name in names {
            let disk = name.to_ascii_lowercase();
            let map_path = map_dir.join(format!("{disk}.csv"));
            let map = match std::fs::read_to_string(&map_path) {
                Ok(text) => Some(MapFile::parse(&text, &map_path)?),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(Error::io(map_path, e)),
            };
            let mut sym = Sym {
                name,
                disk,
                map,
                zips: HashSet::new(),
            };
            let tickers: Vec<String> = sym.all_tickers().into_iter().map(str::to_owned).collect();
            let present: Vec<String> = if is_per_day(sel.bar) {
                tickers
                    .into_iter()
                    .filter(|t| res_dir.join(t).is_dir())
                    .collect()
            } else {
                tickers
                    .into_iter()
                    .filter(|t| res_dir.join(format!("{t}.zip")).is_file())
                    .collect()
            };
            if present.is_empty() {
                return Err(Error::NotFound(format!(
                    "no LEAN {res} data for symbol {} under {}: expected {}",
                    sym.name,
                    root.display(),
                    layout_hint(root, sel.bar).replace("<symbol>", &sym.disk)
                )));
            }
            if !is_per_day(sel.bar) {
                sym.zips = present.into_iter().collect();
            }
            symbols.push(sym);
        }
        Ok(LeanSource {
            root: root.to_path_buf(),
            res_dir,
            sel,
            symbols,
            series: Mutex::new(HashMap::new()),
        })
    }

    /// The selected symbols, upper-case, sorted.
    pub fn symbols(&self) -> Vec<&str> {
        self.symbols.iter().map(|s| s.name.as_str()).collect()
    }

    /// The LEAN data folder this source reads.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Second/minute: the trade zip (and where its quote zip would be) of `sym` on `date`.
    fn day_files(&self, sym: &Sym, date: NaiveDate) -> Option<(PathBuf, PathBuf)> {
        let stamp = date.format("%Y%m%d");
        sym.tickers_on(date)
            .into_iter()
            .flatten()
            .find_map(|ticker| {
                let dir = self.res_dir.join(ticker);
                let trade = dir.join(format!("{stamp}_trade.zip"));
                trade
                    .is_file()
                    .then(|| (trade, dir.join(format!("{stamp}_quote.zip"))))
            })
    }

    /// Hour/daily: the zip that holds `sym`'s bars of `date`.
    fn series_file(&self, sym: &Sym, date: NaiveDate) -> Option<PathBuf> {
        let ticker = sym
            .tickers_on(date)
            .into_iter()
            .flatten()
            .find(|t| sym.zips.contains(*t))?;
        Some(self.res_dir.join(format!("{ticker}.zip")))
    }

    /// The parsed hour/daily zip at `path`, from the cache or parsed now (once per file
    /// even when several threads ask at the same time).
    fn series(&self, path: &Path) -> Result<Arc<Series>> {
        let slot = lock(&self.series)
            .entry(path.to_path_buf())
            .or_default()
            .clone();
        let mut slot = lock(&slot);
        if let Some(s) = slot.as_ref() {
            return Ok(s.clone());
        }
        let parsed = Arc::new(parse_series(&read_zip_csv(path)?, path)?);
        *slot = Some(parsed.clone());
        Ok(parsed)
    }

    fn load_symbol(&self, sym: &Sym, date: NaiveDate) -> Result<Option<RawDay>> {
        let bar = self.sel.bar;
        if is_per_day(bar) {
            let Some((trade_path, quote_path)) = self.day_files(sym, date) else {
                return Ok(None);
            };
            let (trade, quotes) = rayon::join(
                || read_zip_csv(&trade_path),
                || -> Result<Option<Vec<u8>>> {
                    if quote_path.is_file() {
                        read_zip_csv(&quote_path).map(Some)
                    } else {
                        Ok(None)
                    }
                },
            );
            let mut day = RawDay::new(&sym.name, date, bar, trade_path.display().to_string());
            parse_trade_bars(&trade?, &trade_path, date, &mut day)?;
            if day.is_empty() {
                return Ok(None);
            }
            if let Some(text) = quotes? {
                let (q_ts, q) = parse_quote_bars(&text, &quote_path, date)?;
                if !q_ts.is_empty() {
                    day.quotes = Some(merge_quotes(&day.ts_ns, &q_ts, &q));
                }
            }
            Ok(Some(day))
        } else {
            let Some(path) = self.series_file(sym, date) else {
                return Ok(None);
            };
            let series = self.series(&path)?;
            let Some(rows) = series.day(date) else {
                return Ok(None);
            };
            let mut day = RawDay::new(&sym.name, date, bar, path.display().to_string());
            let n = rows.len();
            day.reserve(n);
            let offset = clock::ny_offset_secs(date);
            for i in rows {
                // LEAN stamps daily bars `YYYYMMDD 00:00`: a daily bar starts at New York
                // midnight of its date, whatever the file says.
                let sec = if bar == BarSize::D1 { 0 } else { series.sec[i] };
                day.push(
                    clock::utc_ns_with_offset(date, sec, offset),
                    Price::from_fixed(series.open[i], UNITS_PER_DOLLAR),
                    Price::from_fixed(series.high[i], UNITS_PER_DOLLAR),
                    Price::from_fixed(series.low[i], UNITS_PER_DOLLAR),
                    Price::from_fixed(series.close[i], UNITS_PER_DOLLAR),
                    series.volume[i],
                );
            }
            Ok(Some(day))
        }
    }
}

/// Second and minute data come as one zip per day; hour and daily as one zip per symbol.
fn is_per_day(bar: BarSize) -> bool {
    matches!(bar, BarSize::S1 | BarSize::M1)
}

/// Every symbol present at one resolution: sub-folders (second/minute) or `*.zip` files
/// (hour/daily), upper-cased. A renamed symbol's old folder is listed as a symbol of its
/// own; select symbols explicitly to read such history under the current name.
fn list_symbols(res_dir: &Path, bar: BarSize) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(res_dir).at(res_dir)? {
        let entry = entry.at(res_dir)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') {
            continue;
        }
        if is_per_day(bar) {
            if entry.path().is_dir() {
                out.insert(name.to_ascii_uppercase());
            }
        } else if let Some(stem) = name.strip_suffix(".zip") {
            out.insert(stem.to_ascii_uppercase());
        }
    }
    Ok(out)
}

impl Source for LeanSource {
    fn name(&self) -> &'static str {
        "lean"
    }

    fn dates(&self) -> Result<Vec<NaiveDate>> {
        let mut out = BTreeSet::new();
        for sym in &self.symbols {
            for ticker in sym.all_tickers() {
                if is_per_day(self.sel.bar) {
                    let dir = self.res_dir.join(ticker);
                    let entries = match std::fs::read_dir(&dir) {
                        Ok(e) => e,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(Error::io(dir, e)),
                    };
                    for entry in entries {
                        let name = entry.at(&dir)?.file_name();
                        let Some(date) = name
                            .to_str()
                            .and_then(|n| n.strip_suffix("_trade.zip"))
                            .and_then(|d| NaiveDate::parse_from_str(d, "%Y%m%d").ok())
                        else {
                            continue;
                        };
                        // Only dates whose file load_date would read from this very folder.
                        if self.sel.wants_date(date)
                            && self
                                .day_files(sym, date)
                                .is_some_and(|(p, _)| p.parent() == Some(dir.as_path()))
                        {
                            out.insert(date);
                        }
                    }
                } else if sym.zips.contains(ticker) {
                    let path = self.res_dir.join(format!("{ticker}.zip"));
                    let series = self.series(&path)?;
                    for (date, _) in &series.days {
                        if self.sel.wants_date(*date)
                            && self.series_file(sym, *date).as_deref() == Some(path.as_path())
                        {
                            out.insert(*date);
                        }
                    }
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    fn load_date(&self, date: NaiveDate) -> Result<Vec<RawDay>> {
        let days: Vec<Option<RawDay>> = self
            .symbols
            .par_iter()
            .map(|sym| self.load_symbol(sym, date))
            .collect::<Result<_>>()?;
        Ok(days.into_iter().flatten().collect())
    }
}

/// The CSV inside a LEAN zip (the first entry named `*.csv`). A zero-byte file or an
/// archive without entries is an empty day; anything unreadable is an [`Error::Input`].
fn read_zip_csv(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).at(path)?;
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let corrupt = |what: String| {
        Error::input(
            path,
            format!("{what}: the zip is truncated or corrupt; re-download or delete it"),
        )
    };
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| corrupt(format!("cannot open zip ({e})")))?;
    if zip.is_empty() {
        return Ok(Vec::new());
    }
    let index = (0..zip.len()).find(|&i| {
        zip.name_for_index(i)
            .and_then(|n| n.ok())
            .is_some_and(|n| n.to_ascii_lowercase().ends_with(".csv"))
    });
    let Some(index) = index else {
        return Err(Error::input(
            path,
            "the zip holds no .csv file: expected one LEAN CSV per zip",
        ));
    };
    let mut entry = zip
        .by_index(index)
        .map_err(|e| corrupt(format!("cannot read entry {index} ({e})")))?;
    // The declared size is untrusted: cap the up-front reservation.
    let mut text = Vec::with_capacity(entry.size().min(1 << 28) as usize);
    entry
        .read_to_end(&mut text)
        .map_err(|e| corrupt(format!("cannot decompress its CSV ({e})")))?;
    Ok(text)
}

/// Non-blank lines with their 1-based line numbers, `\r` tolerated.
fn csv_lines(text: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    text.split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_ascii()))
        .filter(|(_, l)| !l.is_empty())
}

/// Splits a line into exactly `N` comma-separated fields.
fn fields<'a, const N: usize>(
    line: &'a [u8],
    n: usize,
    path: &Path,
    layout: &str,
) -> Result<[&'a [u8]; N]> {
    let mut out: [&[u8]; N] = [&[]; N];
    let mut count = 0;
    for f in line.split(|&b| b == b',') {
        if let Some(slot) = out.get_mut(count) {
            *slot = f.trim_ascii();
        }
        count += 1;
    }
    if count != N {
        return Err(Error::input(
            path,
            format!("line {n}: expected {N} comma-separated fields ({layout}), found {count}"),
        ));
    }
    Ok(out)
}

/// A non-negative decimal integer.
fn uint(field: &[u8], n: usize, path: &Path, name: &str) -> Result<u64> {
    let bad = || {
        Error::input(
            path,
            format!(
                "line {n}: {name} '{}' is not a non-negative integer",
                String::from_utf8_lossy(field)
            ),
        )
    };
    if field.is_empty() {
        return Err(bad());
    }
    let mut v: u64 = 0;
    for &b in field {
        if !b.is_ascii_digit() {
            return Err(bad());
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or_else(bad)?;
    }
    Ok(v)
}

/// A price in 1/10000 dollars, range-checked so that it converts to nanodollars.
fn raw_price(field: &[u8], n: usize, path: &Path, name: &str) -> Result<i64> {
    let v = uint(field, n, path, name)?;
    i64::try_from(v)
        .ok()
        .filter(|&v| v <= MAX_RAW_PRICE)
        .ok_or_else(|| {
            Error::input(
                path,
                format!("line {n}: {name} {v} is out of range (1/10000 dollars)"),
            )
        })
}

/// Milliseconds since New York midnight, within the day.
fn ms_of_day(field: &[u8], n: usize, path: &Path) -> Result<i64> {
    let v = uint(field, n, path, "time (ms since midnight)")?;
    if v >= MS_PER_DAY as u64 {
        return Err(Error::input(
            path,
            format!("line {n}: time {v} ms is not within a day (0..86400000)"),
        ));
    }
    Ok(v as i64)
}

const TRADE_LAYOUT: &str = "ms,open,high,low,close,volume";
const QUOTE_LAYOUT: &str =
    "ms,bid_open,bid_high,bid_low,bid_close,bid_size,ask_open,ask_high,ask_low,ask_close,ask_size";
const SERIES_LAYOUT: &str = "YYYYMMDD HH:MM,open,high,low,close,volume";

/// Appends the trade bars of one second/minute CSV to `day`.
fn parse_trade_bars(text: &[u8], path: &Path, date: NaiveDate, day: &mut RawDay) -> Result<()> {
    let rows = text.iter().filter(|&&b| b == b'\n').count() + 1;
    day.reserve(rows);
    let midnight = clock::utc_ns_with_offset(date, 0, clock::ny_offset_secs(date));
    for (n, line) in csv_lines(text) {
        let [ms, o, h, l, c, v] = fields::<6>(line, n, path, TRADE_LAYOUT)?;
        let ts = midnight + ms_of_day(ms, n, path)? * NS_PER_MS;
        day.push(
            ts,
            Price::from_fixed(raw_price(o, n, path, "open")?, UNITS_PER_DOLLAR),
            Price::from_fixed(raw_price(h, n, path, "high")?, UNITS_PER_DOLLAR),
            Price::from_fixed(raw_price(l, n, path, "low")?, UNITS_PER_DOLLAR),
            Price::from_fixed(raw_price(c, n, path, "close")?, UNITS_PER_DOLLAR),
            uint(v, n, path, "volume")?,
        );
    }
    Ok(())
}

/// The quote bars of one second/minute CSV: bar starts (UTC ns) and the closing top of
/// book of each bar. Only the closes are kept: they are the book at the bar's end.
fn parse_quote_bars(text: &[u8], path: &Path, date: NaiveDate) -> Result<(Vec<i64>, Quotes)> {
    let rows = text.iter().filter(|&&b| b == b'\n').count() + 1;
    let mut ts_ns = Vec::with_capacity(rows);
    let mut q = Quotes::with_capacity(rows);
    let midnight = clock::utc_ns_with_offset(date, 0, clock::ny_offset_secs(date));
    for (n, line) in csv_lines(text) {
        let f = fields::<11>(line, n, path, QUOTE_LAYOUT)?;
        ts_ns.push(midnight + ms_of_day(f[0], n, path)? * NS_PER_MS);
        // Opens/highs/lows are still checked so a garbled line is never half-accepted.
        for (i, name) in [
            (1, "bid_open"),
            (2, "bid_high"),
            (3, "bid_low"),
            (6, "ask_open"),
            (7, "ask_high"),
            (8, "ask_low"),
        ] {
            raw_price(f[i], n, path, name)?;
        }
        q.bid.push(Price::from_fixed(
            raw_price(f[4], n, path, "bid_close")?,
            UNITS_PER_DOLLAR,
        ));
        q.bid_size.push(uint(f[5], n, path, "bid_size")?);
        q.ask.push(Price::from_fixed(
            raw_price(f[9], n, path, "ask_close")?,
            UNITS_PER_DOLLAR,
        ));
        q.ask_size.push(uint(f[10], n, path, "ask_size")?);
    }
    Ok((ts_ns, q))
}

/// Top of book for each trade bar: the latest quote bar starting at or before the trade
/// bar's start gives `bid = bid_close`, `ask = ask_close` and their sizes, i.e. the book at
/// the end of that quote bar, which is the trade bar's close when both share a start.
/// A trade bar before any quote gets `Price(0)` and size 0, meaning "no quote yet".
/// Quote bars need not be sorted; trade bars keep their order.
pub fn merge_quotes(trade_ts: &[i64], quote_ts: &[i64], quotes: &Quotes) -> Quotes {
    // Sorting an index (stable: of equal starts the later line wins) keeps the quote
    // columns untouched and costs nothing when the file is already in order.
    let order: Option<Vec<usize>> = (!quote_ts.is_sorted()).then(|| {
        let mut o: Vec<usize> = (0..quote_ts.len()).collect();
        o.sort_by_key(|&i| quote_ts[i]);
        o
    });
    let at = |k: usize| order.as_ref().map_or(k, |o| o[k]);
    let mut out = Quotes::with_capacity(trade_ts.len());
    for &t in trade_ts {
        let k = match &order {
            None => quote_ts.partition_point(|&q| q <= t),
            Some(o) => o.partition_point(|&i| quote_ts[i] <= t),
        };
        if k == 0 {
            out.bid.push(Price(0));
            out.ask.push(Price(0));
            out.bid_size.push(0);
            out.ask_size.push(0);
        } else {
            let i = at(k - 1);
            out.bid.push(quotes.bid[i]);
            out.ask.push(quotes.ask[i]);
            out.bid_size.push(quotes.bid_size[i]);
            out.ask_size.push(quotes.ask_size[i]);
        }
    }
    out
}

/// `YYYYMMDD HH:MM` into a date and seconds since midnight.
fn parse_stamp(field: &[u8], n: usize, path: &Path) -> Result<(NaiveDate, i64)> {
    let bad = || {
        Error::input(
            path,
            format!(
                "line {n}: time '{}' is not 'YYYYMMDD HH:MM'",
                String::from_utf8_lossy(field)
            ),
        )
    };
    let digits = |r: Range<usize>| -> Option<u32> {
        let s = field.get(r)?;
        s.iter().try_fold(0u32, |acc, &b| {
            b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
        })
    };
    if field.len() != 14 || field[8] != b' ' || field[11] != b':' {
        return Err(bad());
    }
    let (y, m, d) = (digits(0..4), digits(4..6), digits(6..8));
    let (hh, mm) = (digits(9..11), digits(12..14));
    let (Some(y), Some(m), Some(d), Some(hh), Some(mm)) = (y, m, d, hh, mm) else {
        return Err(bad());
    };
    let date = NaiveDate::from_ymd_opt(y as i32, m, d).ok_or_else(bad)?;
    if hh >= 24 || mm >= 60 {
        return Err(bad());
    }
    Ok((date, i64::from(hh * 3600 + mm * 60)))
}

/// Parses an hour/daily CSV and groups its rows by date.
fn parse_series(text: &[u8], path: &Path) -> Result<Series> {
    let rows = text.iter().filter(|&&b| b == b'\n').count() + 1;
    let mut dates: Vec<NaiveDate> = Vec::with_capacity(rows);
    let mut s = Series {
        days: Vec::new(),
        sec: Vec::with_capacity(rows),
        open: Vec::with_capacity(rows),
        high: Vec::with_capacity(rows),
        low: Vec::with_capacity(rows),
        close: Vec::with_capacity(rows),
        volume: Vec::with_capacity(rows),
    };
    for (n, line) in csv_lines(text) {
        let [t, o, h, l, c, v] = fields::<6>(line, n, path, SERIES_LAYOUT)?;
        let (date, sec) = parse_stamp(t, n, path)?;
        dates.push(date);
        s.sec.push(sec);
        s.open.push(raw_price(o, n, path, "open")?);
        s.high.push(raw_price(h, n, path, "high")?);
        s.low.push(raw_price(l, n, path, "low")?);
        s.close.push(raw_price(c, n, path, "close")?);
        s.volume.push(uint(v, n, path, "volume")?);
    }
    if !dates.is_sorted() {
        // Group by date; rows within a date keep their file order (validation sorts them).
        let mut order: Vec<usize> = (0..dates.len()).collect();
        order.sort_by_key(|&i| dates[i]);
        fn perm<T: Copy>(v: &mut Vec<T>, order: &[usize]) {
            *v = order.iter().map(|&i| v[i]).collect();
        }
        perm(&mut dates, &order);
        perm(&mut s.sec, &order);
        perm(&mut s.open, &order);
        perm(&mut s.high, &order);
        perm(&mut s.low, &order);
        perm(&mut s.close, &order);
        perm(&mut s.volume, &order);
    }
    let mut start = 0;
    for (i, d) in dates.iter().enumerate() {
        if dates.get(i + 1) != Some(d) {
            s.days.push((*d, start..i + 1));
            start = i + 1;
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn write_zip(path: &Path, entry: &str, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut w = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
        w.start_file(entry, zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(text.as_bytes()).unwrap();
        w.finish().unwrap();
    }

    fn sel(bar: BarSize, symbols: &[&str]) -> Selection {
        Selection {
            symbols: Some(symbols.iter().map(|s| s.to_string()).collect()),
            ..Selection::all(bar)
        }
    }

    #[test]
    fn map_file_rows_apply_up_to_their_date() {
        // BAC's real map file: NationsBank until 1998-09-30.
        let m = MapFile::parse(
            "19980102,nb,N\n19980930,nb,N\n20501231,bac,N\n",
            Path::new("bac.csv"),
        )
        .unwrap();
        assert_eq!(m.ticker(d(1990, 1, 2)), "nb");
        assert_eq!(m.ticker(d(1998, 9, 30)), "nb");
        assert_eq!(m.ticker(d(1998, 10, 1)), "bac");
        assert_eq!(m.ticker(d(2060, 1, 1)), "bac");
        let e = MapFile::parse("19980102,nb\nxx,bac\n", Path::new("bac.csv")).unwrap_err();
        assert!(
            e.to_string().contains("bac.csv") && e.to_string().contains("line 2"),
            "{e}"
        );
    }

    #[test]
    fn quotes_merge_latest_at_or_before_and_zero_before_first() {
        let q = Quotes {
            bid: vec![Price(30), Price(10), Price(20)],
            ask: vec![Price(31), Price(11), Price(21)],
            bid_size: vec![3, 1, 2],
            ask_size: vec![6, 4, 5],
        };
        // Unsorted quote starts 300, 100, 200.
        let m = merge_quotes(&[50, 100, 150, 250, 400], &[300, 100, 200], &q);
        assert_eq!(
            m.bid,
            vec![Price(0), Price(10), Price(10), Price(20), Price(30)]
        );
        assert_eq!(
            m.ask,
            vec![Price(0), Price(11), Price(11), Price(21), Price(31)]
        );
        assert_eq!(m.bid_size, vec![0, 1, 1, 2, 3]);
        assert_eq!(m.ask_size, vec![0, 4, 4, 5, 6]);
    }

    #[test]
    fn minute_day_parses_hand_values_and_renamed_folder() {
        let dir = tempfile::tempdir().unwrap();
        let usa = dir.path().join("equity/usa");
        // An old ticker's folder ("old") for a symbol now called NEW.
        std::fs::create_dir_all(usa.join("map_files")).unwrap();
        std::fs::write(
            usa.join("map_files/new.csv"),
            "20000101,old,Q\n20100105,old,Q\n20501231,new,Q\n",
        )
        .unwrap();
        write_zip(
            &usa.join("minute/old/20100105_trade.zip"),
            "a.csv",
            "34200000,1000000,1010000,990000,1005000,7\r\n\n34260000,1005000,1005000,1005000,1005000,0\n",
        );
        write_zip(
            &usa.join("minute/old/20100105_quote.zip"),
            "a.csv",
            "34230000,1,1,1,999900,5,2,2,2,1000100,9\n",
        );
        write_zip(
            &usa.join("minute/new/20100106_trade.zip"),
            "b.csv",
            "34200000,2000000,2000000,2000000,2000000,1\n",
        );
        std::fs::write(usa.join("minute/new/20100107_trade.zip"), b"").unwrap();
        let src = LeanSource::new(dir.path(), sel(BarSize::M1, &["new"])).unwrap();
        assert_eq!(src.symbols(), vec!["NEW"]);
        assert_eq!(
            src.dates().unwrap(),
            vec![d(2010, 1, 5), d(2010, 1, 6), d(2010, 1, 7)]
        );
        let days = src.load_date(d(2010, 1, 5)).unwrap();
        assert_eq!(days.len(), 1);
        let day = &days[0];
        assert_eq!(day.symbol, "NEW");
        assert!(
            day.origin.ends_with("minute/old/20100105_trade.zip"),
            "{}",
            day.origin
        );
        // 09:30 EST = 14:30 UTC on 2010-01-05 = 1262701800 s.
        assert_eq!(
            day.ts_ns,
            vec![
                1_262_701_800 * clock::NS_PER_SEC,
                1_262_701_860 * clock::NS_PER_SEC
            ]
        );
        assert_eq!(
            day.open,
            vec![Price::from_dollars(100.0), Price::from_dollars(100.5)]
        );
        assert_eq!(day.high[0], Price::from_dollars(101.0));
        assert_eq!(day.low[0], Price::from_dollars(99.0));
        assert_eq!(day.volume, vec![7, 0]);
        // The quote at 09:30:30 is after the first trade bar's start, before the second's.
        let q = day.quotes.as_ref().unwrap();
        assert_eq!(q.bid, vec![Price(0), Price::from_dollars(99.99)]);
        assert_eq!(q.ask, vec![Price(0), Price::from_dollars(100.01)]);
        assert_eq!(
            (q.bid_size.clone(), q.ask_size.clone()),
            (vec![0, 5], vec![0, 9])
        );
        let days = src.load_date(d(2010, 1, 6)).unwrap();
        assert_eq!(days[0].close, vec![Price::from_dollars(200.0)]);
        assert!(days[0].quotes.is_none());
        // Empty file: an empty day, skipped.
        assert!(src.load_date(d(2010, 1, 7)).unwrap().is_empty());
        assert!(src.load_date(d(2010, 1, 8)).unwrap().is_empty());
    }

    #[test]
    fn hour_and_daily_series_group_by_date() {
        let dir = tempfile::tempdir().unwrap();
        // Root is equity/usa itself; rows deliberately out of date order.
        let usa = dir.path();
        let text = "20100105 10:00,1000000,1000000,1000000,1000000,5\n20100104 09:00,1,2,3,4,6\n20100105 09:00,2,2,2,2,7\n";
        write_zip(&usa.join("hour/xyz.zip"), "xyz.csv", text);
        write_zip(
            &usa.join("daily/xyz.zip"),
            "xyz.csv",
            "20100104 00:00,10000,20000,5000,15000,100\n",
        );
        let src = LeanSource::new(usa, Selection::all(BarSize::H1)).unwrap();
        assert_eq!(src.dates().unwrap(), vec![d(2010, 1, 4), d(2010, 1, 5)]);
        let day = &src.load_date(d(2010, 1, 5)).unwrap()[0];
        assert_eq!(day.symbol, "XYZ");
        // 10:00 EST = 15:00 UTC.
        assert_eq!(day.ts_ns[0], clock::utc_ns(d(2010, 1, 5), 10 * 3600));
        assert_eq!(day.ts_ns[0], 1_262_703_600 * clock::NS_PER_SEC);
        assert_eq!(day.volume, vec![5, 7]);
        let mut s = sel(BarSize::D1, &["XYZ"]);
        s.from = Some(d(2010, 1, 4));
        s.to = Some(d(2010, 1, 4));
        let src = LeanSource::new(usa, s).unwrap();
        assert_eq!(src.dates().unwrap(), vec![d(2010, 1, 4)]);
        let day = &src.load_date(d(2010, 1, 4)).unwrap()[0];
        assert_eq!(day.ts_ns, vec![1_262_581_200 * clock::NS_PER_SEC]); // 05:00 UTC
        assert_eq!(day.close, vec![Price::from_dollars(1.5)]);
        assert_eq!(day.low, vec![Price::from_dollars(0.5)]);
    }

    #[test]
    fn malformed_lines_name_file_line_and_value() {
        let dir = tempfile::tempdir().unwrap();
        let usa = dir.path().join("equity/usa");
        let cases = [
            ("34200000,1,2,3,4\n", "expected 6 comma-separated fields"),
            (
                "34200000,1,2,3,4,5\n34260000,1,2,x3,4,5\n",
                "line 2: low 'x3'",
            ),
            ("34200000,1,2,3,4,-5\n", "volume '-5'"),
            ("86400000,1,2,3,4,5\n", "not within a day"),
            ("34200000,99999999999999999,2,3,4,5\n", "out of range"),
            (
                "34200000,1,2,3,4,99999999999999999999\n",
                "volume '99999999999999999999'",
            ),
        ];
        for (i, (text, want)) in cases.iter().enumerate() {
            let sym = format!("s{i}");
            let path = usa.join(format!("minute/{sym}/20100105_trade.zip"));
            write_zip(&path, "x.csv", text);
            let src = LeanSource::new(dir.path(), sel(BarSize::M1, &[&sym])).unwrap();
            let m = src.load_date(d(2010, 1, 5)).unwrap_err().to_string();
            assert!(
                m.contains(&path.display().to_string()) && m.contains(want),
                "{m}"
            );
        }
        let path = usa.join("minute/q/20100105_quote.zip");
        write_zip(
            &usa.join("minute/q/20100105_trade.zip"),
            "x.csv",
            "34200000,1,2,3,4,5\n",
        );
        write_zip(&path, "x.csv", "34200000,1,1,1,1,5,2,2,2,2\n");
        let src = LeanSource::new(dir.path(), sel(BarSize::M1, &["Q"])).unwrap();
        let m = src.load_date(d(2010, 1, 5)).unwrap_err().to_string();
        assert!(
            m.contains("20100105_quote.zip") && m.contains("expected 11"),
            "{m}"
        );
        let path = usa.join("hour/h.zip");
        write_zip(&path, "h.csv", "2010-01-05 09:00,1,1,1,1,1\n");
        let src = LeanSource::new(dir.path(), sel(BarSize::H1, &["H"])).unwrap();
        let m = src.dates().unwrap_err().to_string();
        assert!(
            m.contains("h.zip") && m.contains("line 1") && m.contains("2010-01-05 09:00"),
            "{m}"
        );
        let path = usa.join("daily/h.zip");
        write_zip(&path, "h.csv", "20100105 25:00,1,1,1,1,1\n");
        let src = LeanSource::new(dir.path(), sel(BarSize::D1, &["H"])).unwrap();
        assert!(src.dates().unwrap_err().to_string().contains("25:00"));
    }

    #[test]
    fn missing_folders_and_symbols_say_what_is_expected() {
        let dir = tempfile::tempdir().unwrap();
        let m = LeanSource::new(&dir.path().join("nope"), Selection::all(BarSize::M1))
            .unwrap_err()
            .to_string();
        assert!(m.contains("nope") && m.contains("does not exist"), "{m}");
        let m = LeanSource::new(dir.path(), Selection::all(BarSize::S1))
            .unwrap_err()
            .to_string();
        assert!(
            m.contains("no LEAN second data")
                && m.contains("equity/usa/second/<symbol>/<YYYYMMDD>_trade.zip"),
            "{m}"
        );
        std::fs::create_dir_all(dir.path().join("equity/usa/daily")).unwrap();
        let m = LeanSource::new(dir.path(), sel(BarSize::D1, &["ZZZ"]))
            .unwrap_err()
            .to_string();
        assert!(
            m.contains("ZZZ") && m.contains("equity/usa/daily/zzz.zip"),
            "{m}"
        );
        assert_eq!(
            factor_dir(dir.path()),
            dir.path().join("equity/usa/factor_files")
        );
    }
}
