//! Tabular bar files — generic CSV / Parquet and Polygon minute-aggregate flat files — as a
//! [`Source`], read with polars.
//!
//! The user names the columns and the time convention in `[ingest.table]` ([`TableSpec`]);
//! Polygon flat files are a fixed preset of the same machinery. Each file is read once into
//! typed columns (only the named ones), then one loop over rows converts prices to
//! [`Price`], timestamps to UTC bar starts, and appends each row to its symbol-day.
//!
//! Timestamps: integer epochs (`time_unit` = s/ms/us/ns) are UTC; text (`time_unit = "iso"`)
//! is either RFC 3339 with an offset, or a naive local date-time read in `time_zone`.
//! Parquet datetime columns carry their own unit. Intraday rows are grouped by their New
//! York date. Daily rows are grouped by the UTC calendar date of their timestamp — vendors
//! stamp daily bars at 00:00 UTC (Databento) or New York midnight (Polygon, LEAN), both on
//! the session date — and re-stamped at New York midnight of that date.
//!
//! Memory: generic tables are decoded when the source is built (filtered to the selection).
//! Polygon flat files come one per trading day named `YYYY-MM-DD.csv[.gz]`; when every
//! file is named so, files are only read when their date is loaded, so a folder with years
//! of the whole market costs nothing outside the selected dates.
//!
//! The grouping helpers at the bottom (`DayBuckets`, `SymbolIds`, `Decoded`, `merge_days`...)
//! are shared with the DBN source.

use crate::bars::{BarSize, PRICE_SCALE, Price, Quotes, RawDay, parse_date};
use crate::clock::{NY, ny_date_sec};
use crate::error::{Error, Result};
use crate::ingest::{Selection, Source};
use chrono::{Days, LocalResult, NaiveDate, Offset, TimeZone};
use chrono_tz::Tz;
use polars::prelude::{
    ChunkedArray, Column, CsvReadOptions, DataFrame, DataType, Float64Chunked, Int64Chunked,
    ParquetReader, PlSmallStr, PolarsNumericType, Schema, SerReader,
};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// How the time column encodes instants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnit {
    /// Integer seconds since the Unix epoch, UTC.
    S,
    /// Integer milliseconds since the Unix epoch, UTC.
    Ms,
    /// Integer microseconds since the Unix epoch, UTC.
    Us,
    /// Integer nanoseconds since the Unix epoch, UTC.
    Ns,
    /// Text: `2024-01-02 09:30:00` (local, in `time_zone`; `T` separator, fractional
    /// seconds and a bare date also accepted) or RFC 3339 with an offset.
    Iso,
}

impl TimeUnit {
    fn ns_per_unit(self) -> i64 {
        match self {
            TimeUnit::S => 1_000_000_000,
            TimeUnit::Ms => 1_000_000,
            TimeUnit::Us => 1_000,
            TimeUnit::Ns | TimeUnit::Iso => 1,
        }
    }
}

/// Which instant of a bar its timestamp marks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeIs {
    /// The bar's first instant (Databento, Polygon, LEAN).
    Start,
    /// The bar's end; bars are stored by start, so one bar length is subtracted.
    End,
}

/// `[ingest.table]`: how to read generic CSV / Parquet bar tables.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TableSpec {
    /// Column holding the bar timestamp.
    pub time_column: String,
    /// Encoding of the timestamp: "s", "ms", "us", "ns" (integer Unix epoch, UTC) or "iso" (text).
    pub time_unit: TimeUnit,
    /// IANA time zone of naive (offset-less) text timestamps; integer epochs are UTC.
    pub time_zone: String,
    /// Whether the timestamp marks the bar's "start" or its "end" (bar size from --bar;
    /// ignored for daily bars, whose date is the timestamp's date).
    pub time_is: TimeIs,
    /// Column holding the ticker; when unset, each file holds one symbol, its file name
    /// without extension, upper-cased.
    pub symbol_column: Option<String>,
    /// Column of opening prices.
    pub open: String,
    /// Column of high prices.
    pub high: String,
    /// Column of low prices.
    pub low: String,
    /// Column of closing prices.
    pub close: String,
    /// Column of traded volume (shares; fractional values are rounded).
    pub volume: String,
    /// Optional column of volume-weighted average prices.
    pub vwap: Option<String>,
    /// Optional column of trade counts.
    pub transactions: Option<String>,
    /// Optional column of the bid at the bar's close (set together with `ask`).
    pub bid: Option<String>,
    /// Optional column of the ask at the bar's close (set together with `bid`).
    pub ask: Option<String>,
    /// Factor from the file's price unit to dollars (e.g. 0.0001 for prices in 1/10000 $).
    pub price_scale: f64,
}

impl Default for TableSpec {
    fn default() -> TableSpec {
        TableSpec {
            time_column: "timestamp".into(),
            time_unit: TimeUnit::S,
            time_zone: "America/New_York".into(),
            time_is: TimeIs::Start,
            symbol_column: None,
            open: "open".into(),
            high: "high".into(),
            low: "low".into(),
            close: "close".into(),
            volume: "volume".into(),
            vwap: None,
            transactions: None,
            bid: None,
            ask: None,
            price_scale: 1.0,
        }
    }
}

impl TableSpec {
    /// Polygon minute-aggregate flat files: `ticker,volume,open,close,high,low,window_start,
    /// transactions`, `window_start` in Unix nanoseconds (UTC) at the bar start, raw prices.
    pub fn polygon() -> TableSpec {
        TableSpec {
            time_column: "window_start".into(),
            time_unit: TimeUnit::Ns,
            symbol_column: Some("ticker".into()),
            transactions: Some("transactions".into()),
            ..TableSpec::default()
        }
    }

    /// Checks the values that cannot be checked per file and resolves the time zone.
    fn validate(&self) -> Result<Tz> {
        let tz: Tz = self.time_zone.parse().map_err(|_| {
            Error::Config(format!(
                "ingest.table.time_zone: unknown time zone '{}': use an IANA name such as America/New_York",
                self.time_zone
            ))
        })?;
        if !(self.price_scale.is_finite() && self.price_scale > 0.0) {
            return Err(Error::Config(format!(
                "ingest.table.price_scale: {} is not a positive number (1.0 for prices in dollars)",
                self.price_scale
            )));
        }
        if self.bid.is_some() != self.ask.is_some() {
            return Err(Error::Config(
                "ingest.table.bid and ingest.table.ask: set both or neither".into(),
            ));
        }
        Ok(tz)
    }
}

/// The file formats a [`TableSource`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Csv,
    Parquet,
}

/// Bars from CSV / Parquet tables (generic or Polygon flat files).
#[derive(Debug)]
pub struct TableSource {
    name: &'static str,
    layout: Layout,
}

/// Where a source's bars wait until their date is loaded.
#[derive(Debug)]
enum Layout {
    /// Decoded when the source was built.
    Decoded {
        decoded: Decoded,
        reader: Box<TableReader>,
    },
    /// One file per date (named by it), read when the date is loaded. A listed date may
    /// load no days when none of the selected symbols traded on it.
    PerDay {
        files: BTreeMap<NaiveDate, Vec<PathBuf>>,
        reader: Box<TableReader>,
    },
}

impl TableSource {
    /// Generic CSV files (`.csv`, `.csv.gz`) laid out as `spec` says.
    pub fn csv(input: &Path, sel: Selection, spec: TableSpec) -> Result<TableSource> {
        let reader = TableReader::new(Format::Csv, spec, sel, ColumnHint::Config)?;
        Self::decoded("csv", input, reader)
    }

    /// Generic Parquet files (`.parquet`) laid out as `spec` says.
    pub fn parquet(input: &Path, sel: Selection, spec: TableSpec) -> Result<TableSource> {
        let reader = TableReader::new(Format::Parquet, spec, sel, ColumnHint::Config)?;
        Self::decoded("parquet", input, reader)
    }

    /// Polygon minute-aggregate flat files (`.csv`, `.csv.gz`), see [`TableSpec::polygon`].
    pub fn polygon(input: &Path, sel: Selection) -> Result<TableSource> {
        let reader = TableReader::new(Format::Csv, TableSpec::polygon(), sel, ColumnHint::Polygon)?;
        let paths = list_files(input, Format::Csv)?;
        let named: Option<Vec<NaiveDate>> = paths.iter().map(|p| date_in_name(p)).collect();
        let Some(named) = named else {
            return Self::decoded_files("polygon", paths, reader);
        };
        let mut files: BTreeMap<NaiveDate, Vec<PathBuf>> = BTreeMap::new();
        for (path, date) in paths.into_iter().zip(named) {
            if reader.sel.wants_date(date) {
                files.entry(date).or_default().push(path);
            }
        }
        Ok(TableSource {
            name: "polygon",
            layout: Layout::PerDay {
                files,
                reader: Box::new(reader),
            },
        })
    }

    fn decoded(name: &'static str, input: &Path, reader: TableReader) -> Result<TableSource> {
        let paths = list_files(input, reader.format)?;
        Self::decoded_files(name, paths, reader)
    }

    fn decoded_files(
        name: &'static str,
        paths: Vec<PathBuf>,
        reader: TableReader,
    ) -> Result<TableSource> {
        let per_file: Vec<Vec<RawDay>> = paths
            .par_iter()
            .map(|p| reader.read(p, Rows::Selected))
            .collect::<Result<_>>()?;
        Ok(TableSource {
            name,
            layout: Layout::Decoded {
                decoded: Decoded::new(paths.into_iter().zip(per_file)),
                reader: Box::new(reader),
            },
        })
    }
}

impl Source for TableSource {
    fn name(&self) -> &'static str {
        self.name
    }
    fn dates(&self) -> Result<Vec<NaiveDate>> {
        Ok(match &self.layout {
            Layout::Decoded { decoded, .. } => decoded.dates(),
            Layout::PerDay { files, .. } => files.keys().copied().collect(),
        })
    }
    fn load_date(&self, date: NaiveDate) -> Result<Vec<RawDay>> {
        let read_all =
            |paths: &[PathBuf], reader: &TableReader, rows: Rows| -> Result<Vec<RawDay>> {
                let mut days = Vec::new();
                for path in paths {
                    days.extend(reader.read(path, rows)?);
                }
                Ok(days)
            };
        match &self.layout {
            Layout::Decoded { decoded, reader } => {
                decoded.take(date, |paths| read_all(paths, reader, Rows::OnDate(date)))
            }
            Layout::PerDay { files, reader } => {
                let Some(paths) = files.get(&date) else {
                    return Ok(Vec::new());
                };
                let days = read_all(paths, reader, Rows::NamedFor(date))?;
                Ok(merge_days(days).remove(&date).unwrap_or_default())
            }
        }
    }
}

/// The date a file is named for (`2024-01-02.csv.gz`, `20240102.csv`), if any.
fn date_in_name(path: &Path) -> Option<NaiveDate> {
    parse_date(file_stem(path)?).ok()
}

/// A file's name without its table extensions (`.csv`, `.csv.gz`, `.parquet`).
fn file_stem(path: &Path) -> Option<&str> {
    let name = path.file_name()?.to_str()?;
    [".csv.gz", ".csv", ".parquet"]
        .iter()
        .find_map(|ext| name.strip_suffix(ext))
        .or(Some(name))
}

fn has_extension(path: &Path, format: Format) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    match format {
        Format::Csv => name.ends_with(".csv") || name.ends_with(".csv.gz"),
        Format::Parquet => name.ends_with(".parquet"),
    }
}

/// `input` itself when it is a file, else every file with the format's extension below it.
fn list_files(input: &Path, format: Format) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, format: Format, out: &mut Vec<PathBuf>) -> Result<()> {
        for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let path = entry.map_err(|e| Error::io(dir, e))?.path();
            let meta = std::fs::metadata(&path).map_err(|e| Error::io(&path, e))?;
            if meta.is_dir() {
                walk(&path, format, out)?;
            } else if has_extension(&path, format) {
                out.push(path);
            }
        }
        Ok(())
    }
    let meta = std::fs::metadata(input).map_err(|e| Error::io(input, e))?;
    if meta.is_file() {
        return Ok(vec![input.to_path_buf()]);
    }
    let mut out = Vec::new();
    walk(input, format, &mut out)?;
    if out.is_empty() {
        let exts = match format {
            Format::Csv => ".csv or .csv.gz",
            Format::Parquet => ".parquet",
        };
        return Err(Error::input(
            input,
            format!("no {exts} files in this folder"),
        ));
    }
    out.sort();
    Ok(out)
}

/// Which rows of a file to keep (besides the selection's filter).
#[derive(Clone, Copy, Debug)]
enum Rows {
    /// Every selected row.
    Selected,
    /// Only the rows of this date.
    OnDate(NaiveDate),
    /// The file is named for this date: a row of another date is an error.
    NamedFor(NaiveDate),
}

/// What to suggest when a column is missing.
#[derive(Clone, Copy, Debug)]
enum ColumnHint {
    Config,
    Polygon,
}

/// The role of each column read, in [`TableReader::columns`] order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Time,
    Symbol,
    Open,
    High,
    Low,
    Close,
    Volume,
    Vwap,
    Transactions,
    Bid,
    Ask,
}

impl Role {
    /// The `[ingest.table]` key that names this column.
    fn key(self) -> &'static str {
        match self {
            Role::Time => "time_column",
            Role::Symbol => "symbol_column",
            Role::Open => "open",
            Role::High => "high",
            Role::Low => "low",
            Role::Close => "close",
            Role::Volume => "volume",
            Role::Vwap => "vwap",
            Role::Transactions => "transactions",
            Role::Bid => "bid",
            Role::Ask => "ask",
        }
    }
}

/// Reads one table file into symbol-days; shared by all files of a source.
#[derive(Debug)]
struct TableReader {
    format: Format,
    spec: TableSpec,
    tz: Tz,
    sel: Selection,
    hint: ColumnHint,
    /// (role, column name) of every column to read.
    columns: Vec<(Role, String)>,
}

/// The columns of one file in the types the row loop reads (null-free, one chunk).
struct Typed {
    ts_ns: Vec<i64>,
    symbol: Option<Column>,
    open: Float64Chunked,
    high: Float64Chunked,
    low: Float64Chunked,
    close: Float64Chunked,
    volume: Float64Chunked,
    vwap: Option<Float64Chunked>,
    transactions: Option<Float64Chunked>,
    bid: Option<Float64Chunked>,
    ask: Option<Float64Chunked>,
}

impl TableReader {
    fn new(
        format: Format,
        spec: TableSpec,
        sel: Selection,
        hint: ColumnHint,
    ) -> Result<TableReader> {
        let tz = spec.validate()?;
        let mut columns = vec![
            (Role::Time, spec.time_column.clone()),
            (Role::Open, spec.open.clone()),
            (Role::High, spec.high.clone()),
            (Role::Low, spec.low.clone()),
            (Role::Close, spec.close.clone()),
            (Role::Volume, spec.volume.clone()),
        ];
        let optional = [
            (Role::Symbol, &spec.symbol_column),
            (Role::Vwap, &spec.vwap),
            (Role::Transactions, &spec.transactions),
            (Role::Bid, &spec.bid),
            (Role::Ask, &spec.ask),
        ];
        for (role, name) in optional {
            if let Some(name) = name {
                columns.push((role, name.clone()));
            }
        }
        Ok(TableReader {
            format,
            spec,
            tz,
            sel,
            hint,
            columns,
        })
    }

    fn column_name(&self, role: Role) -> Option<&str> {
        self.columns
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, n)| n.as_str())
    }

    /// Distinct column names to read (one column may serve several roles).
    fn distinct_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for (_, n) in &self.columns {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
        names
    }

    fn missing_column(&self, path: &Path, role: Role, name: &str) -> Error {
        match self.hint {
            ColumnHint::Config => Error::input(
                path,
                format!("no column '{name}' (set ingest.table.{})", role.key()),
            ),
            ColumnHint::Polygon => Error::input(
                path,
                format!(
                    "no column '{name}': not a Polygon minute-aggregate flat file \
                     (ticker,volume,open,close,high,low,window_start,transactions)"
                ),
            ),
        }
    }

    /// Fails on the first configured column the file lacks.
    fn check_columns(&self, path: &Path, present: impl Fn(&str) -> bool) -> Result<()> {
        for (role, name) in &self.columns {
            if !present(name) {
                return Err(self.missing_column(path, *role, name));
            }
        }
        Ok(())
    }

    /// The bars of one file, grouped by symbol-day and filtered to the selection and `rows`.
    fn read(&self, path: &Path, rows: Rows) -> Result<Vec<RawDay>> {
        let df = match self.format {
            Format::Csv => self.read_csv(path)?,
            Format::Parquet => self.read_parquet(path)?,
        };
        let typed = self.typed(path, &df)?;
        self.group(path, &typed, rows)
    }

    fn read_csv(&self, path: &Path) -> Result<DataFrame> {
        let polars_err =
            |e: polars::error::PolarsError| Error::input(path, one_line(&e.to_string()));
        // The header alone (polars stops decompressing after it) to name a missing column
        // before parsing anything.
        let header = CsvReadOptions::default()
            .with_has_header(true)
            .with_n_rows(Some(0))
            .with_infer_schema_length(Some(0))
            .with_raise_if_empty(false)
            .try_into_reader_with_file_path(Some(path.to_path_buf()))
            .and_then(|r| r.finish())
            .map_err(polars_err)?;
        let schema = header.schema();
        self.check_columns(path, |n| schema.contains(n))?;

        // Forcing the types (instead of inferring them from the first rows) reads "12" and
        // "12.5" in the same price column alike and makes a bad cell an error.
        let mut overwrite = Schema::default();
        for (role, name) in &self.columns {
            let dtype = match role {
                Role::Time if self.spec.time_unit == TimeUnit::Iso => DataType::String,
                Role::Time => DataType::Int64,
                Role::Symbol => DataType::String,
                _ => DataType::Float64,
            };
            overwrite.with_column(PlSmallStr::from_str(name), dtype);
        }
        let names: Arc<[PlSmallStr]> = self
            .distinct_names()
            .iter()
            .map(|n| PlSmallStr::from_str(n))
            .collect();
        let read = CsvReadOptions::default()
            .with_has_header(true)
            .with_columns(Some(names.clone()))
            .with_schema_overwrite(Some(Arc::new(overwrite)))
            .try_into_reader_with_file_path(Some(path.to_path_buf()))
            .and_then(|r| r.finish());
        match read {
            Ok(df) => Ok(df),
            Err(e) => Err(self
                .diagnose_csv(path, names)
                .unwrap_or_else(|| polars_err(e))),
        }
    }

    /// After a typed read failed: re-reads the columns as text and names the first cell
    /// that does not parse, which polars' own message does not always do.
    fn diagnose_csv(&self, path: &Path, names: Arc<[PlSmallStr]>) -> Option<Error> {
        let df = CsvReadOptions::default()
            .with_has_header(true)
            .with_columns(Some(names))
            .with_infer_schema_length(Some(0))
            .try_into_reader_with_file_path(Some(path.to_path_buf()))
            .and_then(|r| r.finish())
            .ok()?;
        for (role, name) in &self.columns {
            let (integer, what) = match role {
                Role::Symbol => continue,
                Role::Time if self.spec.time_unit == TimeUnit::Iso => continue,
                Role::Time => match self.hint {
                    ColumnHint::Config => (
                        true,
                        "an integer epoch (set ingest.table.time_unit = \"iso\" for text times)",
                    ),
                    ColumnHint::Polygon => {
                        (true, "an integer epoch in nanoseconds, as Polygon writes")
                    }
                },
                _ => (false, "a number"),
            };
            let col = df.column(name).ok()?.str().ok()?;
            for (i, cell) in col.iter().enumerate() {
                let Some(cell) = cell else { continue };
                let cell = cell.trim();
                let ok = cell.is_empty()
                    || if integer {
                        cell.parse::<i64>().is_ok()
                    } else {
                        cell.parse::<f64>().is_ok()
                    };
                if !ok {
                    return Some(Error::input(
                        path,
                        format!("row {}, column '{name}': '{cell}' is not {what}", i + 1),
                    ));
                }
            }
        }
        None
    }

    fn read_parquet(&self, path: &Path) -> Result<DataFrame> {
        let polars_err =
            |e: polars::error::PolarsError| Error::input(path, one_line(&e.to_string()));
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut reader = ParquetReader::new(file);
        let schema = reader.schema().map_err(polars_err)?;
        self.check_columns(path, |n| schema.contains(n))?;
        reader
            .with_columns(Some(self.distinct_names()))
            .finish()
            .map_err(polars_err)
    }

    fn typed(&self, path: &Path, df: &DataFrame) -> Result<Typed> {
        let col = |role: Role| -> Result<Option<&Column>> {
            let Some(name) = self.column_name(role) else {
                return Ok(None);
            };
            df.column(name)
                .map(Some)
                .map_err(|_| self.missing_column(path, role, name))
        };
        let num = |role: Role| -> Result<Option<Float64Chunked>> {
            let Some(c) = col(role)? else { return Ok(None) };
            float_column(path, c).map(Some)
        };
        let req = |role: Role| -> Result<Float64Chunked> {
            num(role)?.ok_or_else(|| Error::input(path, format!("no column for {}", role.key())))
        };
        let time = col(Role::Time)?.ok_or_else(|| Error::input(path, "no time column"))?;
        Ok(Typed {
            ts_ns: self.time_column(path, time)?,
            // Parquet writers may store tickers as categoricals; the loop reads text.
            symbol: col(Role::Symbol)?
                .map(|c| c.cast(&DataType::String))
                .transpose()
                .map_err(|e| Error::input(path, one_line(&e.to_string())))?,
            open: req(Role::Open)?,
            high: req(Role::High)?,
            low: req(Role::Low)?,
            close: req(Role::Close)?,
            volume: req(Role::Volume)?,
            vwap: num(Role::Vwap)?,
            transactions: num(Role::Transactions)?,
            bid: num(Role::Bid)?,
            ask: num(Role::Ask)?,
        })
    }

    /// UTC nanoseconds at each row's bar start.
    fn time_column(&self, path: &Path, col: &Column) -> Result<Vec<i64>> {
        let name = col.name().as_str();
        let daily = self.sel.bar == BarSize::D1;
        let shift = if self.spec.time_is == TimeIs::End && !daily {
            self.sel.bar.secs() as i64 * 1_000_000_000
        } else {
            0
        };
        let mut out = Vec::with_capacity(col.len());
        match col.dtype() {
            DataType::String => {
                if self.spec.time_unit != TimeUnit::Iso {
                    return Err(Error::input(
                        path,
                        format!("column '{name}' holds text: set ingest.table.time_unit = \"iso\""),
                    ));
                }
                let ca = col
                    .str()
                    .map_err(|e| Error::input(path, one_line(&e.to_string())))?;
                let mut local = LocalOffsets::new(self.tz);
                for (i, cell) in ca.iter().enumerate() {
                    let cell = cell.ok_or_else(|| empty_cell(path, i, name))?;
                    let parsed = parse_iso(cell.trim()).ok_or_else(|| {
                        Error::input(
                            path,
                            format!(
                                "row {}, column '{name}': '{cell}' is not a date-time like 2024-01-02 09:30:00 or 2024-01-02T09:30:00-05:00",
                                i + 1
                            ),
                        )
                    })?;
                    let ts = match parsed.offset_secs {
                        Some(off) => (parsed.local_secs - off as i64) * 1_000_000_000 + parsed.nanos,
                        None => local.utc_ns(parsed.local_secs, parsed.nanos).ok_or_else(|| {
                            Error::input(
                                path,
                                format!(
                                    "row {}, column '{name}': '{cell}' does not exist in {} (skipped by a DST change)",
                                    i + 1,
                                    self.tz
                                ),
                            )
                        })?,
                    };
                    out.push(ts - shift);
                }
            }
            DataType::Datetime(unit, tz) => {
                let per = match unit {
                    polars::prelude::TimeUnit::Nanoseconds => 1,
                    polars::prelude::TimeUnit::Microseconds => 1_000,
                    polars::prelude::TimeUnit::Milliseconds => 1_000_000,
                };
                let naive = tz.is_none();
                let ints = int_column(path, col)?;
                let mut local = LocalOffsets::new(self.tz);
                for (i, &v) in dense(path, &ints)?.iter().enumerate() {
                    let ns = v
                        .checked_mul(per)
                        .ok_or_else(|| out_of_range(path, i, name, v))?;
                    let ts = if naive {
                        // A naive datetime is a wall-clock time in `time_zone`.
                        let (secs, nanos) =
                            (ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000));
                        local
                            .utc_ns(secs, nanos)
                            .ok_or_else(|| out_of_range(path, i, name, v))?
                    } else {
                        ns
                    };
                    out.push(ts - shift);
                }
            }
            DataType::Date => {
                let days = col
                    .cast(&DataType::Int32)
                    .map_err(|e| Error::input(path, one_line(&e.to_string())))?;
                let days = days
                    .i32()
                    .map_err(|e| Error::input(path, one_line(&e.to_string())))?;
                for (i, d) in days.iter().enumerate() {
                    let d = d.ok_or_else(|| empty_cell(path, i, name))?;
                    let date = epoch_day_to_date(d as i64)
                        .ok_or_else(|| out_of_range(path, i, name, d as i64))?;
                    out.push(ny_midnight_ns(date));
                }
            }
            dt if dt.is_integer() => {
                if self.spec.time_unit == TimeUnit::Iso {
                    return Err(Error::input(
                        path,
                        format!(
                            "column '{name}' holds integers: set ingest.table.time_unit to \"s\", \"ms\", \"us\" or \"ns\""
                        ),
                    ));
                }
                let per = self.spec.time_unit.ns_per_unit();
                let ints = int_column(path, col)?;
                for (i, &v) in dense(path, &ints)?.iter().enumerate() {
                    let ns = v
                        .checked_mul(per)
                        .ok_or_else(|| out_of_range(path, i, name, v))?;
                    out.push(ns - shift);
                }
            }
            other => {
                return Err(Error::input(
                    path,
                    format!("column '{name}' has type {other}, not a timestamp"),
                ));
            }
        }
        Ok(out)
    }

    /// The row loop: converts every row and appends it to its symbol-day.
    fn group(&self, path: &Path, t: &Typed, rows: Rows) -> Result<Vec<RawDay>> {
        let n = t.ts_ns.len();
        let origin = path.display().to_string();
        let scale = self.spec.price_scale;
        let open = dense(path, &t.open)?;
        let high = dense(path, &t.high)?;
        let low = dense(path, &t.low)?;
        let close = dense(path, &t.close)?;
        let volume = dense(path, &t.volume)?;
        let vwap = t.vwap.as_ref().map(|c| dense(path, c)).transpose()?;
        let transactions = t
            .transactions
            .as_ref()
            .map(|c| dense(path, c))
            .transpose()?;
        let bid = t.bid.as_ref().map(|c| dense(path, c)).transpose()?;
        let ask = t.ask.as_ref().map(|c| dense(path, c)).transpose()?;

        let mut symbols = SymbolIds::default();
        // Without a symbol column the whole file is one symbol, named by the file.
        let file_symbol = match &t.symbol {
            Some(_) => None,
            None => {
                let stem = file_stem(path).unwrap_or_default();
                Some(symbols.id(stem, &self.sel))
            }
        };
        let mut symbol_cells = match &t.symbol {
            Some(c) => Some(
                c.str()
                    .map_err(|_| {
                        let name = self.column_name(Role::Symbol).unwrap_or_default();
                        Error::input(path, format!("column '{name}' does not hold text symbols"))
                    })?
                    .iter(),
            ),
            None => None,
        };
        let name_of = |role: Role| self.column_name(role).unwrap_or_default();

        let mut buckets = DayBuckets::default();
        let mut ny_day = NyDayCache::default();
        let daily = self.sel.bar == BarSize::D1;
        for i in 0..n {
            let sym = match (&mut symbol_cells, file_symbol) {
                (Some(cells), _) => {
                    let cell = cells.next().flatten();
                    let cell = cell.ok_or_else(|| empty_cell(path, i, name_of(Role::Symbol)))?;
                    symbols.id(cell, &self.sel)
                }
                (None, Some(s)) => s,
                (None, None) => None,
            };
            let Some(sym) = sym else { continue };
            let (date, ts) = if daily {
                let date = daily_date(t.ts_ns[i]);
                (date, ny_midnight_ns(date))
            } else {
                (ny_day.date(t.ts_ns[i]), t.ts_ns[i])
            };
            match rows {
                Rows::NamedFor(named) if date != named => {
                    return Err(Error::input(
                        path,
                        format!(
                            "row {}: a bar of {date} in the file named for {named}; rename the file or put it elsewhere",
                            i + 1
                        ),
                    ));
                }
                Rows::OnDate(only) if date != only => continue,
                _ => {}
            }
            if !self.sel.wants_date(date) {
                continue;
            }
            let price = |col: &[f64], role: Role| to_price(path, i, name_of(role), col[i], scale);
            let (o, h, l, c) = (
                price(open, Role::Open)?,
                price(high, Role::High)?,
                price(low, Role::Low)?,
                price(close, Role::Close)?,
            );
            let v = to_count(path, i, name_of(Role::Volume), volume[i], u64::MAX as f64)?;
            let day = buckets.get(sym, date, || {
                let mut d = RawDay::new(symbols.name(sym), date, self.sel.bar, origin.as_str());
                d.vwap = vwap.map(|_| Vec::new());
                d.transactions = transactions.map(|_| Vec::new());
                d.quotes = bid.map(|_| Quotes::default());
                d
            });
            day.push(ts, o, h, l, c, v);
            if let (Some(col), Some(out)) = (vwap, day.vwap.as_mut()) {
                out.push(price(col, Role::Vwap)?);
            }
            if let (Some(col), Some(out)) = (transactions, day.transactions.as_mut()) {
                out.push(to_count(
                    path,
                    i,
                    name_of(Role::Transactions),
                    col[i],
                    u32::MAX as f64,
                )? as u32);
            }
            if let (Some(b), Some(a), Some(q)) = (bid, ask, day.quotes.as_mut()) {
                q.bid.push(price(b, Role::Bid)?);
                q.ask.push(price(a, Role::Ask)?);
                // The tables carry no sizes; zero means "unknown".
                q.bid_size.push(0);
                q.ask_size.push(0);
            }
        }
        Ok(buckets.into_days())
    }
}

/// Polars errors can span lines; ours are one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn empty_cell(path: &Path, row: usize, column: &str) -> Error {
    Error::input(
        path,
        format!("row {}, column '{column}': empty value", row + 1),
    )
}

fn out_of_range(path: &Path, row: usize, column: &str, value: i64) -> Error {
    Error::input(
        path,
        format!(
            "row {}, column '{column}': timestamp {value} is out of range",
            row + 1
        ),
    )
}

/// A numeric column as `f64` (a text cell that is not a number becomes an error).
fn float_column(path: &Path, col: &Column) -> Result<Float64Chunked> {
    let name = col.name().as_str();
    let dtype = col.dtype();
    if !(dtype.is_primitive_numeric() || dtype == &DataType::String) {
        return Err(Error::input(
            path,
            format!("column '{name}' has type {dtype}, not a number"),
        ));
    }
    let cast = col
        .cast(&DataType::Float64)
        .map_err(|e| Error::input(path, one_line(&e.to_string())))?;
    let ca = cast
        .f64()
        .map_err(|e| Error::input(path, one_line(&e.to_string())))?
        .rechunk()
        .into_owned();
    if ca.null_count() > 0 {
        // The cast turns unparseable text into nulls; tell the two apart for the message.
        let row = ca.iter().position(|v| v.is_none()).unwrap_or(0);
        let original = col.get(row).map(|v| v.to_string()).unwrap_or_default();
        return Err(
            if col.dtype() == &DataType::String && !original.is_empty() && original != "null" {
                Error::input(
                    path,
                    format!(
                        "row {}, column '{name}': {original} is not a number",
                        row + 1
                    ),
                )
            } else {
                empty_cell(path, row, name)
            },
        );
    }
    Ok(ca)
}

/// A column of integers (or datetimes' physical values) as `i64`, without nulls.
fn int_column(path: &Path, col: &Column) -> Result<Int64Chunked> {
    let name = col.name().as_str();
    let cast = col
        .cast(&DataType::Int64)
        .map_err(|e| Error::input(path, one_line(&e.to_string())))?;
    let ca = cast
        .i64()
        .map_err(|e| Error::input(path, one_line(&e.to_string())))?
        .rechunk()
        .into_owned();
    if ca.null_count() > 0 {
        let row = ca.iter().position(|v| v.is_none()).unwrap_or(0);
        return Err(empty_cell(path, row, name));
    }
    Ok(ca)
}

/// The contiguous values of a null-free, single-chunk column.
fn dense<'a, T: PolarsNumericType>(
    path: &Path,
    ca: &'a ChunkedArray<T>,
) -> Result<&'a [T::Native]> {
    ca.cont_slice().map_err(|_| {
        Error::input(
            path,
            format!("column '{}' could not be read as numbers", ca.name()),
        )
    })
}

/// Dollars (times the scale) to a [`Price`], refusing NaN, infinities and values beyond
/// what nanodollars in an `i64` hold.
fn to_price(path: &Path, row: usize, column: &str, raw: f64, scale: f64) -> Result<Price> {
    let dollars = raw * scale;
    if !dollars.is_finite() || dollars.abs() >= (i64::MAX / PRICE_SCALE) as f64 {
        return Err(Error::input(
            path,
            format!(
                "row {}, column '{column}': price {raw} is not a usable number",
                row + 1
            ),
        ));
    }
    Ok(Price::from_dollars(dollars))
}

/// A non-negative count (volume, trades), rounded to the nearest integer.
fn to_count(path: &Path, row: usize, column: &str, raw: f64, max: f64) -> Result<u64> {
    if raw.is_nan() || raw < 0.0 || raw > max {
        return Err(Error::input(
            path,
            format!(
                "row {}, column '{column}': {raw} is not a count (negative, NaN or too large)",
                row + 1
            ),
        ));
    }
    Ok(raw.round() as u64)
}

/// A parsed text timestamp: wall-clock seconds since the epoch (as if UTC), nanoseconds,
/// and the explicit UTC offset if the text had one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct IsoTime {
    local_secs: i64,
    nanos: i64,
    offset_secs: Option<i32>,
}

/// Parses `YYYY-MM-DD[( |T)HH:MM[:SS[.fffffffff]]][Z|±HH[:MM]]` without allocating.
fn parse_iso(s: &str) -> Option<IsoTime> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let digits = b.get(from..from + len)?;
        digits.iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + (c - b'0') as i64)
        })
    };
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(year as i32, month as u32, day as u32)?;
    let days = date
        .signed_duration_since(NaiveDate::from_ymd_opt(1970, 1, 1)?)
        .num_days();
    let mut secs = 0i64;
    let mut nanos = 0i64;
    let mut pos = 10;
    if matches!(b.get(10), Some(b' ' | b'T')) {
        let (hh, mm) = (num(11, 2)?, num(14, 2)?);
        if b.get(13) != Some(&b':') {
            return None;
        }
        pos = 16;
        let mut ss = 0;
        if b.get(16) == Some(&b':') {
            ss = num(17, 2)?;
            pos = 19;
            if matches!(b.get(19), Some(b'.' | b',')) {
                pos = 20;
                let mut digits = 0;
                while let Some(&c) = b.get(pos).filter(|c| c.is_ascii_digit()) {
                    if digits < 9 {
                        nanos = nanos * 10 + (c - b'0') as i64;
                        digits += 1;
                    }
                    pos += 1;
                }
                if digits == 0 {
                    return None;
                }
                nanos *= 10i64.pow(9 - digits);
            }
        }
        // 24:00 and leap seconds are not bar times.
        if hh > 23 || mm > 59 || ss > 59 {
            return None;
        }
        secs = hh * 3600 + mm * 60 + ss;
    }
    let offset_secs = match b.get(pos) {
        None => None,
        Some(b'Z' | b'z') if pos + 1 == b.len() => Some(0),
        Some(&sign @ (b'+' | b'-')) => {
            let hh = num(pos + 1, 2)?;
            let mm = match b.len().checked_sub(pos + 3)? {
                0 => 0,
                3 if b[pos + 3] == b':' => num(pos + 4, 2)?,
                2 => num(pos + 3, 2)?,
                _ => return None,
            };
            if hh > 23 || mm > 59 {
                return None;
            }
            let off = (hh * 3600 + mm * 60) as i32;
            Some(if sign == b'-' { -off } else { off })
        }
        Some(_) => return None,
    };
    Some(IsoTime {
        local_secs: days * 86_400 + secs,
        nanos,
        offset_secs,
    })
}

/// Wall-clock time in a zone to UTC, caching the offset of the last local hour seen (zones
/// change offset on whole hours, so one lookup per hour of data).
struct LocalOffsets {
    tz: Tz,
    hour: i64,
    offset: Option<i64>,
}

impl LocalOffsets {
    fn new(tz: Tz) -> LocalOffsets {
        LocalOffsets {
            tz,
            hour: i64::MIN,
            offset: None,
        }
    }

    /// UTC ns of a local wall-clock time (seconds since the epoch as if UTC). `None` when
    /// the time falls in a DST gap; an ambiguous time (the repeated autumn hour) is read as
    /// the first of the two.
    fn utc_ns(&mut self, local_secs: i64, nanos: i64) -> Option<i64> {
        let hour = local_secs.div_euclid(3600);
        if hour != self.hour {
            self.hour = hour;
            let naive = chrono::DateTime::from_timestamp(hour * 3600, 0)?.naive_utc();
            self.offset = match self.tz.from_local_datetime(&naive) {
                LocalResult::Single(dt) => Some(dt.offset().fix().local_minus_utc() as i64),
                LocalResult::Ambiguous(first, _) => {
                    Some(first.offset().fix().local_minus_utc() as i64)
                }
                LocalResult::None => None,
            };
        }
        Some((local_secs - self.offset?) * 1_000_000_000 + nanos)
    }
}

fn epoch_day_to_date(days: i64) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(1970, 1, 1)?.checked_add_signed(chrono::Duration::try_days(days)?)
}

// ---------------------------------------------------------------------------------------
// Grouping helpers shared with the DBN source.

/// UTC ns of New York midnight starting `date` (midnight is never inside a DST change,
/// which New York makes at 02:00).
pub(crate) fn ny_midnight_ns(date: NaiveDate) -> i64 {
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    match NY.from_local_datetime(&midnight) {
        LocalResult::Single(dt) | LocalResult::Ambiguous(dt, _) => dt.timestamp() * 1_000_000_000,
        // Unreachable for New York; fall back to the standard-time offset.
        LocalResult::None => (midnight.and_utc().timestamp() + 5 * 3600) * 1_000_000_000,
    }
}

/// The session date of a daily bar: the UTC calendar date of its timestamp (00:00 UTC and
/// New York midnight of a date both fall on it).
pub(crate) fn daily_date(ts_ns: i64) -> NaiveDate {
    epoch_day_to_date(ts_ns.div_euclid(86_400 * 1_000_000_000)).unwrap_or_default()
}

/// The New York date of UTC timestamps, recomputing only when a timestamp leaves the last
/// day seen (bars come in time order, so that is about once per day).
#[derive(Default)]
pub(crate) struct NyDayCache {
    lo: i64,
    hi: i64,
    date: NaiveDate,
}

impl NyDayCache {
    pub(crate) fn date(&mut self, ts_ns: i64) -> NaiveDate {
        if ts_ns >= self.lo && ts_ns < self.hi {
            return self.date;
        }
        let (date, _) = ny_date_sec(ts_ns);
        self.lo = ny_midnight_ns(date);
        self.hi = ny_midnight_ns(date + Days::new(1));
        self.date = date;
        date
    }
}

/// Small integer ids for the symbols of one file, remembering which are selected.
#[derive(Default)]
pub(crate) struct SymbolIds {
    /// Upper-cased names by id.
    names: Vec<String>,
    /// Raw spelling -> id, or `None` when the selection does not want the symbol.
    ids: HashMap<String, Option<u32>>,
    /// The last lookup (rows of one symbol come together).
    last: Option<(String, Option<u32>)>,
}

impl SymbolIds {
    /// The id of `raw` (as spelled in the file), or `None` if the selection skips it.
    pub(crate) fn id(&mut self, raw: &str, sel: &Selection) -> Option<u32> {
        if let Some((last, id)) = &self.last
            && last == raw
        {
            return *id;
        }
        let id = match self.ids.get(raw) {
            Some(id) => *id,
            None => {
                let upper = raw.trim().to_ascii_uppercase();
                let id = sel.wants_symbol(&upper).then(|| {
                    self.names.push(upper);
                    (self.names.len() - 1) as u32
                });
                self.ids.insert(raw.to_string(), id);
                id
            }
        };
        match &mut self.last {
            Some((last, last_id)) => {
                last.clear();
                last.push_str(raw);
                *last_id = id;
            }
            None => self.last = Some((raw.to_string(), id)),
        }
        id
    }

    pub(crate) fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |s| s.as_str())
    }
}

/// Symbol-days of one file under construction, found by (symbol id, date).
#[derive(Default)]
pub(crate) struct DayBuckets {
    index: HashMap<(u32, NaiveDate), usize>,
    /// Each symbol's last (date, day index): a symbol's rows stay on one date for long runs,
    /// even when the file interleaves symbols.
    last_by_symbol: Vec<Option<(NaiveDate, usize)>>,
    days: Vec<RawDay>,
}

impl DayBuckets {
    /// The day for (`sym`, `date`), made by `make` the first time.
    pub(crate) fn get(
        &mut self,
        sym: u32,
        date: NaiveDate,
        make: impl FnOnce() -> RawDay,
    ) -> &mut RawDay {
        let s = sym as usize;
        let i = match self.last_by_symbol.get(s) {
            Some(&Some((d, i))) if d == date => i,
            _ => {
                let days = &mut self.days;
                let i = *self.index.entry((sym, date)).or_insert_with(|| {
                    days.push(make());
                    days.len() - 1
                });
                if s >= self.last_by_symbol.len() {
                    self.last_by_symbol.resize(s + 1, None);
                }
                self.last_by_symbol[s] = Some((date, i));
                i
            }
        };
        &mut self.days[i]
    }

    pub(crate) fn into_days(self) -> Vec<RawDay> {
        self.days
    }
}

/// Symbol-days decoded when a source is built. A date's days are moved out on its first
/// load (no copy, and the source shrinks as a build walks the dates); a date loaded again
/// is decoded again from the files that hold it.
#[derive(Debug)]
pub(crate) struct Decoded {
    days: Mutex<BTreeMap<NaiveDate, Vec<RawDay>>>,
    /// The files with bars on each date.
    files: BTreeMap<NaiveDate, Vec<PathBuf>>,
}

impl Decoded {
    /// From each file's symbol-days.
    pub(crate) fn new(per_file: impl IntoIterator<Item = (PathBuf, Vec<RawDay>)>) -> Decoded {
        let mut files: BTreeMap<NaiveDate, Vec<PathBuf>> = BTreeMap::new();
        let mut all = Vec::new();
        for (path, days) in per_file {
            for day in &days {
                let list = files.entry(day.date).or_default();
                if list.last() != Some(&path) {
                    list.push(path.clone());
                }
            }
            all.extend(days);
        }
        Decoded {
            days: Mutex::new(merge_days(all)),
            files,
        }
    }

    pub(crate) fn dates(&self) -> Vec<NaiveDate> {
        self.files.keys().copied().collect()
    }

    /// The days of `date`; `decode_again` reads the given files for it when this date was
    /// already handed out.
    pub(crate) fn take(
        &self,
        date: NaiveDate,
        decode_again: impl FnOnce(&[PathBuf]) -> Result<Vec<RawDay>>,
    ) -> Result<Vec<RawDay>> {
        // A poisoned lock only means another load panicked; the map itself is intact.
        let taken = self
            .days
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&date);
        match (taken, self.files.get(&date)) {
            (Some(days), _) => Ok(days),
            (None, Some(paths)) => Ok(merge_days(decode_again(paths)?)
                .remove(&date)
                .unwrap_or_default()),
            (None, None) => Ok(Vec::new()),
        }
    }
}

/// Collects symbol-days from many files by date, concatenating the rows of a symbol-day
/// that several files hold (validation sorts and de-duplicates them). Days are sorted by
/// symbol within a date.
pub(crate) fn merge_days(
    days: impl IntoIterator<Item = RawDay>,
) -> BTreeMap<NaiveDate, Vec<RawDay>> {
    let mut by_date: BTreeMap<NaiveDate, Vec<RawDay>> = BTreeMap::new();
    let mut index: HashMap<(String, NaiveDate), usize> = HashMap::new();
    for day in days {
        let list = by_date.entry(day.date).or_default();
        match index.get(&(day.symbol.clone(), day.date)) {
            Some(&i) => append_day(&mut list[i], day),
            None => {
                index.insert((day.symbol.clone(), day.date), list.len());
                list.push(day);
            }
        }
    }
    for list in by_date.values_mut() {
        list.sort_by(|a, b| a.symbol.cmp(&b.symbol));
    }
    by_date
}

fn append_day(dst: &mut RawDay, src: RawDay) {
    fn opt<T>(dst: &mut Option<Vec<T>>, src: Option<Vec<T>>) {
        match (dst.as_mut(), src) {
            (Some(d), Some(s)) => d.extend(s),
            // A column only some files have cannot be kept aligned with the rows.
            _ => *dst = None,
        }
    }
    dst.ts_ns.extend(src.ts_ns);
    dst.open.extend(src.open);
    dst.high.extend(src.high);
    dst.low.extend(src.low);
    dst.close.extend(src.close);
    dst.volume.extend(src.volume);
    opt(&mut dst.vwap, src.vwap);
    opt(&mut dst.transactions, src.transactions);
    match (dst.quotes.as_mut(), src.quotes) {
        (Some(d), Some(s)) => {
            d.bid.extend(s.bid);
            d.ask.extend(s.ask);
            d.bid_size.extend(s.bid_size);
            d.ask_size.extend(s.ask_size);
        }
        _ => dst.quotes = None,
    }
    match (dst.flow.as_mut(), src.flow) {
        (Some(d), Some(s)) => {
            d.buy_volume.extend(s.buy_volume);
            d.sell_volume.extend(s.sell_volume);
        }
        _ => dst.flow = None,
    }
    dst.halts.extend(src.halts);
    if !dst.origin.split(", ").any(|o| o == src.origin) {
        dst.origin.push_str(", ");
        dst.origin.push_str(&src.origin);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iso(s: &str) -> Option<(i64, i64, Option<i32>)> {
        parse_iso(s).map(|t| (t.local_secs, t.nanos, t.offset_secs))
    }

    #[test]
    fn parse_iso_accepts_the_documented_forms() {
        // 2024-01-02 = 19724 days after 1970-01-01.
        let day = 19_724 * 86_400;
        let t0930 = day + 9 * 3600 + 30 * 60;
        assert_eq!(iso("2024-01-02 09:30:00"), Some((t0930, 0, None)));
        assert_eq!(iso("2024-01-02T09:30:00"), Some((t0930, 0, None)));
        assert_eq!(iso("2024-01-02 09:30"), Some((t0930, 0, None)));
        assert_eq!(iso("2024-01-02"), Some((day, 0, None)));
        assert_eq!(
            iso("2024-01-02T09:30:00.5"),
            Some((t0930, 500_000_000, None))
        );
        assert_eq!(
            iso("2024-01-02T09:30:00.123456789123"),
            Some((t0930, 123_456_789, None))
        );
        assert_eq!(iso("2024-01-02T09:30:00Z"), Some((t0930, 0, Some(0))));
        assert_eq!(
            iso("2024-01-02T09:30:00-05:00"),
            Some((t0930, 0, Some(-18_000)))
        );
        assert_eq!(
            iso("2024-01-02T09:30:00+0530"),
            Some((t0930, 0, Some(19_800)))
        );
        assert_eq!(iso("2024-01-02T09:30:00+01"), Some((t0930, 0, Some(3_600))));
    }

    #[test]
    fn parse_iso_rejects_malformed_text() {
        for bad in [
            "",
            "2024-1-02",
            "2024/01/02",
            "2024-02-30",
            "2024-01-02 9:30",
            "2024-01-02 24:00:00",
            "2024-01-02 09:60:00",
            "2024-01-02 09:30:00.",
            "2024-01-02 09:30:00 EST",
            "2024-01-02T09:30:00Zjunk",
            "2024-01-02T09:30:00+5",
        ] {
            assert_eq!(parse_iso(bad), None, "{bad}");
        }
    }

    #[test]
    fn local_times_follow_the_zone_rules() {
        let mut ny = LocalOffsets::new(NY);
        let local = |y, m, d, h| {
            NaiveDate::from_ymd_opt(y, m, d)
                .unwrap()
                .and_hms_opt(h, 0, 0)
                .unwrap()
                .and_utc()
                .timestamp()
        };
        // Winter: UTC-5; summer: UTC-4; the autumn repeated hour reads as its first (EDT) pass.
        assert_eq!(
            ny.utc_ns(local(2024, 1, 2, 9), 0),
            Some((local(2024, 1, 2, 9) + 5 * 3600) * 1_000_000_000)
        );
        assert_eq!(
            ny.utc_ns(local(2024, 7, 2, 9), 7),
            Some((local(2024, 7, 2, 9) + 4 * 3600) * 1_000_000_000 + 7)
        );
        assert_eq!(
            ny.utc_ns(local(2024, 11, 3, 1), 0),
            Some((local(2024, 11, 3, 1) + 4 * 3600) * 1_000_000_000)
        );
        assert_eq!(ny.utc_ns(local(2024, 3, 10, 2) + 1800, 0), None);
    }

    #[test]
    fn daily_dates_and_new_york_midnights() {
        let date = NaiveDate::from_ymd_opt(2024, 3, 11).unwrap();
        // 00:00 UTC and 04:00 UTC (EDT midnight) of 2024-03-11 are both that session.
        assert_eq!(daily_date(1_710_115_200_000_000_000), date);
        assert_eq!(daily_date(1_710_129_600_000_000_000), date);
        assert_eq!(ny_midnight_ns(date), 1_710_129_600_000_000_000);
        // The spring-forward Sunday's midnight is still EST (05:00 UTC).
        let sunday = NaiveDate::from_ymd_opt(2024, 3, 10).unwrap();
        assert_eq!(ny_midnight_ns(sunday), 1_710_046_800_000_000_000);
        let mut cache = NyDayCache::default();
        assert_eq!(cache.date(ny_midnight_ns(date) - 1), sunday);
        assert_eq!(cache.date(ny_midnight_ns(date)), date);
    }
}
