//! `cache export`: one symbol-day as CSV or Parquet, one row per bar, with `ts` (bar start,
//! ISO-8601 with the New York offset), `open, high, low, close` in dollars and `volume`
//! (adjusted as built), then every feature column by its name. Written through polars,
//! atomically.

use super::DayCache;
use crate::clock::iso_ny;
use crate::error::{Error, Result};
use crate::features::{FEATURE_NAMES, N_FEATURES};
use polars::prelude::*;
use std::path::Path;

/// The bars and features of `day` as a DataFrame.
pub fn day_frame(day: &DayCache) -> Result<DataFrame> {
    let dollars = |p: &[crate::bars::Price]| p.iter().map(|x| x.dollars()).collect::<Vec<f64>>();
    let mut cols: Vec<Column> = vec![
        Column::new(
            "ts".into(),
            day.ts_ns()
                .iter()
                .map(|&t| iso_ny(t))
                .collect::<Vec<String>>(),
        ),
        Column::new("open".into(), dollars(day.opens())),
        Column::new("high".into(), dollars(day.highs())),
        Column::new("low".into(), dollars(day.lows())),
        Column::new("close".into(), dollars(day.closes())),
        Column::new("volume".into(), day.volumes().to_vec()),
    ];
    // The optional columns the day has, then the features.
    if let Some(v) = day.vwap() {
        cols.push(Column::new("vwap".into(), dollars(v)));
    }
    if let Some(v) = day.transactions() {
        cols.push(Column::new("transactions".into(), v.to_vec()));
    }
    if let (Some(b), Some(a)) = (day.bid(), day.ask()) {
        cols.push(Column::new("bid".into(), dollars(b)));
        cols.push(Column::new("ask".into(), dollars(a)));
    }
    if let (Some(b), Some(a)) = (day.bid_size(), day.ask_size()) {
        cols.push(Column::new("bid_size".into(), b.to_vec()));
        cols.push(Column::new("ask_size".into(), a.to_vec()));
    }
    if let (Some(b), Some(s)) = (day.buy_volume(), day.sell_volume()) {
        cols.push(Column::new("buy_volume".into(), b.to_vec()));
        cols.push(Column::new("sell_volume".into(), s.to_vec()));
    }
    if let Some(f) = day.flags() {
        let suspect: Vec<bool> = f.iter().map(|x| x & super::FLAG_SUSPECT != 0).collect();
        cols.push(Column::new("suspect_print".into(), suspect));
    }
    for (k, name) in FEATURE_NAMES.iter().enumerate().take(N_FEATURES) {
        cols.push(Column::new((*name).into(), day.feature(k).to_vec()));
    }
    DataFrame::new_infer_height(cols)
        .map_err(|e| Error::input(day.path(), format!("building the table: {e}")))
}

/// Writes `df` as CSV or Parquet to `out` (temporary file, then rename).
pub fn write_frame(df: &mut DataFrame, out: &Path, parquet: bool) -> Result<()> {
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut tmp = crate::util::fs::temp_in(dir).map_err(|e| Error::io(dir, e))?;
    let res = if parquet {
        ParquetWriter::new(tmp.as_file_mut()).finish(df).map(|_| ())
    } else {
        CsvWriter::new(tmp.as_file_mut())
            .include_header(true)
            .finish(df)
    };
    res.map_err(|e| Error::input(out, format!("writing: {e}")))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(out, e))?;
    tmp.persist(out).map_err(|e| Error::io(out, e.error))?;
    Ok(())
}
