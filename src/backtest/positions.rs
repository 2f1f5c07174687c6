//! Positions files: reading, checking and turning a target-position schedule into
//! per-bar targets on cached days.
//!
//! A positions file is CSV or Parquet (by extension) with the columns `symbol`, `ts` and
//! `target`, one row per change of target:
//! - `symbol`: a symbol of the cache (trimmed; letters are upper-cased, as the cache
//!   stores them);
//! - `ts`: the decision bar's time, ISO-8601 with a UTC offset
//!   (`2013-10-07T09:31:00-04:00`, `Z`, fractional seconds and a space instead of `T` are
//!   accepted) or epoch nanoseconds as an integer (a Parquet file may also hold a
//!   time-zone-aware datetime column);
//! - `target`: the position as a fraction of `env.max_position_usd`, in [−1, 1] (negative
//!   only with `env.allow_short = true`).
//!
//! A row's decision bar is the last bar of its New York trading day that starts at or
//! before `ts`; `ts` must fall on a cached day of the symbol, at or after the day's first
//! session bar and before the session's close. The target is decided at that bar's close
//! and held until the symbol's next row, across days: the environment still flattens at
//! every close, and the held target reopens the position at the next day's first decision.
//! Several rows on one bar: the last one wins. Before a symbol's first row its target is
//! 0.
//!
//! Every problem is an [`Error::Input`] naming the file, the 1-based data row (the header
//! is not counted), the value and the fix.

use super::engine::{DayPlan, SymbolPlan};
use crate::cache::Catalog;
use crate::clock::{iso_ny, ny_date_sec};
use crate::env::{DayData, DaySelection, EnvParams, load_days};
use crate::error::{Error, Result};
use chrono::NaiveDate;
use polars::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc as StdArc;

/// The columns a positions file must have, in the order the errors list them.
pub const COLUMNS: [&str; 3] = ["symbol", "ts", "target"];

/// One checked row of a positions file.
#[derive(Clone, Debug, PartialEq)]
pub struct PositionRow {
    /// 1-based data row in the file (the header is not counted).
    pub row: usize,
    pub symbol: String,
    /// UTC nanoseconds.
    pub ts_ns: i64,
    pub target: f64,
}

/// The `ts` column as read: text to parse, or integer nanoseconds (Parquet integers and
/// time-zone-aware datetimes).
enum TsColumn {
    Text(Vec<Option<String>>),
    Nanos(Vec<Option<i64>>),
}

/// The `target` column as read.
enum TargetColumn {
    Text(Vec<Option<String>>),
    Float(Vec<Option<f64>>),
}

/// Reads and checks a positions file on its own (no cache needed): columns, times,
/// targets, order per symbol. `allow_short` is `env.allow_short`.
pub fn read_positions(path: &Path, allow_short: bool) -> Result<Vec<PositionRow>> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let parquet = match ext.as_deref() {
        Some("csv") => false,
        Some("parquet") | Some("pq") => true,
        _ => {
            return Err(Error::input(
                path,
                "unknown positions file type: name it .csv or .parquet (columns symbol, ts, target)",
            ));
        }
    };
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.len() == 0 {
        return Err(empty(path));
    }
    let df = if parquet {
        read_parquet(path)?
    } else {
        read_csv(path)?
    };
    let find = |name: &str| -> Result<&Column> {
        df.columns()
            .iter()
            .find(|c| c.name().trim() == name)
            .ok_or_else(|| {
                let have: Vec<&str> = df.get_column_names().iter().map(|s| s.as_str()).collect();
                Error::input(
                    path,
                    format!(
                        "missing column '{name}' (the file has: {}): a positions file needs the columns {}",
                        if have.is_empty() { "none".to_string() } else { have.join(", ") },
                        COLUMNS.join(", ")
                    ),
                )
            })
    };
    let (sym_col, ts_col, target_col) = (find("symbol")?, find("ts")?, find("target")?);
    if df.height() == 0 {
        return Err(empty(path));
    }
    let symbols = text_column(path, sym_col)?;
    let ts = ts_column(path, ts_col)?;
    let targets = target_column(path, target_col)?;

    let mut out = Vec::with_capacity(df.height());
    let mut last: HashMap<String, (i64, usize)> = HashMap::new();
    for i in 0..df.height() {
        let row = i + 1;
        let symbol = match &symbols[i] {
            Some(s) if !s.trim().is_empty() => s.trim().to_ascii_uppercase(),
            _ => return Err(empty_cell(path, row, "symbol")),
        };
        let ts_ns = match &ts {
            TsColumn::Text(v) => {
                let cell = v[i].as_deref().map(str::trim).filter(|s| !s.is_empty());
                let cell = cell.ok_or_else(|| empty_cell(path, row, "ts"))?;
                parse_ts(cell).ok_or_else(|| {
                    Error::input(
                        path,
                        format!(
                            "row {row}: ts '{cell}' is not a time: use ISO-8601 with a UTC offset, e.g. 2013-10-07T09:31:00-04:00, or epoch nanoseconds as an integer"
                        ),
                    )
                })?
            }
            TsColumn::Nanos(v) => v[i].ok_or_else(|| empty_cell(path, row, "ts"))?,
        };
        let target = match &targets {
            TargetColumn::Float(v) => v[i].ok_or_else(|| empty_cell(path, row, "target"))?,
            TargetColumn::Text(v) => {
                let cell = v[i].as_deref().map(str::trim).filter(|s| !s.is_empty());
                let cell = cell.ok_or_else(|| empty_cell(path, row, "target"))?;
                cell.parse::<f64>().map_err(|_| {
                    Error::input(
                        path,
                        format!("row {row}: target '{cell}' is not a number: give a fraction of the maximum position in [-1, 1]"),
                    )
                })?
            }
        };
        if !(target.is_finite() && (-1.0..=1.0).contains(&target)) {
            return Err(Error::input(
                path,
                format!(
                    "row {row}: target {target} is outside [-1, 1]: targets are fractions of the maximum position (env.max_position_usd)"
                ),
            ));
        }
        if target < 0.0 && !allow_short {
            return Err(Error::input(
                path,
                format!(
                    "row {row}: target {target} is short but env.allow_short = false: use targets in [0, 1] or --set env.allow_short=true"
                ),
            ));
        }
        if let Some(&(prev_ts, prev_row)) = last.get(&symbol)
            && ts_ns <= prev_ts
        {
            let what = if ts_ns == prev_ts {
                "repeats"
            } else {
                "is before"
            };
            return Err(Error::input(
                path,
                format!(
                    "row {row}: ts {} of {symbol} {what} row {prev_row}'s {}: the rows of a symbol must be in strictly increasing time (sort the file by time and drop duplicates)",
                    iso_ny(ts_ns),
                    iso_ny(prev_ts)
                ),
            ));
        }
        last.insert(symbol.clone(), (ts_ns, row));
        out.push(PositionRow {
            row,
            symbol,
            ts_ns,
            target,
        });
    }
    Ok(out)
}

/// `ts` text: ISO-8601 with an offset, or an integer of epoch nanoseconds.
pub fn parse_ts(s: &str) -> Option<i64> {
    if let Ok(n) = s.parse::<i64>() {
        return Some(n);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
}

/// Maps checked rows onto the cache: every symbol must be cached, every time must fall in
/// a cached session. Returns one plan per symbol (in symbol order) with the targets of
/// every cached day from its first row's date to its last row's.
pub fn plan_positions(
    cache: &Path,
    path: &Path,
    rows: &[PositionRow],
    params: &EnvParams,
) -> Result<Vec<SymbolPlan>> {
    let catalog = Catalog::load_existing(cache)?;
    let known = catalog.symbols();
    let mut by_symbol: BTreeMap<&str, Vec<&PositionRow>> = BTreeMap::new();
    for r in rows {
        if !known.contains(&r.symbol) {
            return Err(Error::input(
                path,
                format!(
                    "row {}: symbol '{}' is not in the cache {} (it has {}): fix the symbol or build its days into the cache",
                    r.row,
                    r.symbol,
                    cache.display(),
                    known.join(", ")
                ),
            ));
        }
        let (date, _) = ny_date_sec(r.ts_ns);
        if catalog.get(&r.symbol, date).is_none() {
            return Err(outside(
                path,
                cache,
                r,
                &format!("{date} is not a cached day of {}", r.symbol),
            ));
        }
        by_symbol.entry(r.symbol.as_str()).or_default().push(r);
    }
    let mut plans = Vec::with_capacity(by_symbol.len());
    for (symbol, rows) in by_symbol {
        let from = ny_date_sec(rows[0].ts_ns).0;
        let to = ny_date_sec(rows[rows.len() - 1].ts_ns).0;
        let sel = DaySelection {
            symbols: Some(vec![symbol.to_string()]),
            from: Some(from),
            to: Some(to),
        };
        let days = load_days(cache, &sel, params)?;
        plans.push(symbol_plan(cache, path, symbol, &days, &rows)?);
    }
    Ok(plans)
}

/// The per-bar targets of one symbol's days from its rows (sorted by time).
fn symbol_plan(
    cache: &Path,
    path: &Path,
    symbol: &str,
    days: &[StdArc<DayData>],
    rows: &[&PositionRow],
) -> Result<SymbolPlan> {
    let by_date: HashMap<NaiveDate, usize> =
        days.iter().enumerate().map(|(i, d)| (d.date, i)).collect();
    // (day index, bar row, target) for every file row, in file order.
    let mut decisions = Vec::with_capacity(rows.len());
    for r in rows {
        let (date, _) = ny_date_sec(r.ts_ns);
        let Some(&di) = by_date.get(&date) else {
            return Err(outside(
                path,
                cache,
                r,
                &format!("{date} is not a cached day of {symbol}"),
            ));
        };
        let bar = decision_bar(&days[di], r.ts_ns).map_err(|why| outside(path, cache, r, &why))?;
        decisions.push((di, bar, r.target));
    }
    let mut held = 0.0;
    let mut next = decisions.iter().peekable();
    let mut plan_days = Vec::with_capacity(days.len());
    for (di, day) in days.iter().enumerate() {
        let mut targets = Vec::with_capacity(day.rows());
        for row in 0..day.rows() {
            while let Some(&&(d, b, target)) = next.peek() {
                if d != di || b != row {
                    break;
                }
                held = target;
                next.next();
            }
            targets.push(held);
        }
        plan_days.push(DayPlan {
            day: day.clone(),
            targets,
        });
    }
    Ok(SymbolPlan {
        symbol: symbol.to_string(),
        days: plan_days,
    })
}

/// The decision bar of a time on its day: the last bar starting at or before `ts_ns`,
/// which must lie in `[first session bar's start, session close)`.
pub fn decision_bar(day: &DayData, ts_ns: i64) -> std::result::Result<usize, String> {
    if day.first_row > day.last_row {
        return Err(format!("{} {} has no session bars", day.symbol, day.date));
    }
    let first = &day.bars[day.first_row as usize];
    let open_ns = day.utc_ns(first.ts_ms);
    let close_ns = day.utc_ns(day.close_ms);
    if ts_ns < open_ns {
        return Err(format!(
            "it is before the first session bar of {} {} ({})",
            day.symbol,
            day.date,
            iso_ny(open_ns)
        ));
    }
    if ts_ns >= close_ns {
        return Err(format!(
            "it is at or after the session close of {} {} ({})",
            day.symbol,
            day.date,
            iso_ny(close_ns)
        ));
    }
    Ok(day.bars.partition_point(|b| day.utc_ns(b.ts_ms) <= ts_ns) - 1)
}

fn outside(path: &Path, cache: &Path, r: &PositionRow, why: &str) -> Error {
    Error::input(
        path,
        format!(
            "row {}: ts {} (= {} New York) is a time outside the cached sessions: {why}; give times of session bars of days cached in {} (see `sim-train cache ls`)",
            r.row,
            r.ts_ns,
            iso_ny(r.ts_ns),
            cache.display()
        ),
    )
}

fn empty(path: &Path) -> Error {
    Error::input(
        path,
        "the positions file is empty: give a header symbol,ts,target and at least one row",
    )
}

fn empty_cell(path: &Path, row: usize, column: &str) -> Error {
    Error::input(
        path,
        format!("row {row}: column '{column}' is empty: every row needs a {column}"),
    )
}

fn polars_err(path: &Path) -> impl Fn(PolarsError) -> Error + '_ {
    move |e| {
        Error::input(
            path,
            format!(
                "cannot read the positions table: {}",
                e.to_string()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        )
    }
}

/// Every column as text, so a bad cell is reported by row rather than by polars.
fn read_csv(path: &Path) -> Result<DataFrame> {
    CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .with_raise_if_empty(false)
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .and_then(|r| r.finish())
        .map_err(polars_err(path))
}

fn read_parquet(path: &Path) -> Result<DataFrame> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    ParquetReader::new(file).finish().map_err(polars_err(path))
}

fn text_column(path: &Path, col: &Column) -> Result<Vec<Option<String>>> {
    let cast = col.cast(&DataType::String).map_err(polars_err(path))?;
    let ca = cast.str().map_err(polars_err(path))?;
    Ok(ca.iter().map(|v| v.map(str::to_string)).collect())
}

fn ts_column(path: &Path, col: &Column) -> Result<TsColumn> {
    let name = col.name().as_str();
    match col.dtype() {
        DataType::String => Ok(TsColumn::Text(text_column(path, col)?)),
        DataType::Datetime(unit, tz) => {
            if tz.is_none() {
                return Err(Error::input(
                    path,
                    format!(
                        "column '{name}' holds datetimes without a time zone: store them with a time zone (UTC) or as epoch nanoseconds"
                    ),
                ));
            }
            let per: i64 = match unit {
                TimeUnit::Nanoseconds => 1,
                TimeUnit::Microseconds => 1_000,
                TimeUnit::Milliseconds => 1_000_000,
            };
            let ints = col.cast(&DataType::Int64).map_err(polars_err(path))?;
            let ca = ints.i64().map_err(polars_err(path))?;
            Ok(TsColumn::Nanos(
                ca.iter()
                    .map(|v| v.and_then(|v| v.checked_mul(per)))
                    .collect(),
            ))
        }
        dt if dt.is_integer() => {
            let ints = col.cast(&DataType::Int64).map_err(polars_err(path))?;
            let ca = ints.i64().map_err(polars_err(path))?;
            Ok(TsColumn::Nanos(ca.iter().collect()))
        }
        dt => Err(Error::input(
            path,
            format!(
                "column '{name}' has type {dt}: ts must be ISO-8601 text with an offset or integer epoch nanoseconds"
            ),
        )),
    }
}

fn target_column(path: &Path, col: &Column) -> Result<TargetColumn> {
    if col.dtype() == &DataType::String {
        return Ok(TargetColumn::Text(text_column(path, col)?));
    }
    if !col.dtype().is_primitive_numeric() {
        return Err(Error::input(
            path,
            format!(
                "column 'target' has type {}: targets are numbers in [-1, 1]",
                col.dtype()
            ),
        ));
    }
    let f = col.cast(&DataType::Float64).map_err(polars_err(path))?;
    let ca = f.f64().map_err(polars_err(path))?;
    Ok(TargetColumn::Float(ca.iter().collect()))
}
