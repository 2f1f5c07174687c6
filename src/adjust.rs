//! Corporate-action adjustment of raw bars from LEAN factor files.
//!
//! Vendors deliver raw (as-traded) prices; a 7-for-1 split makes the price drop 7x overnight,
//! which a learner would read as a crash. The builder therefore multiplies every bar of a
//! symbol-day by that day's factors before computing features, so one cache holds one
//! consistent price scale ([`AdjustMode`] is recorded with the cache, and raw and adjusted
//! prices are never mixed).
//!
//! A LEAN factor file (`equity/usa/factor_files/<symbol>.csv`) has rows
//! `YYYYMMDD,price_factor,split_factor,reference_price`, ascending by date. The row that
//! applies to a trading date is the first row whose date is on or after it: a row marks the
//! *last* day its factors are valid (the day before the corporate action). The last row
//! (conventionally `20501231,1,1,0`) covers the most recent data with factors 1, so adjusted
//! prices are expressed on the scale of the factor file's latest row, i.e. in today's
//! shares. Every day of a symbol is adjusted against that same reference, which is what
//! makes adjusted series continuous across splits.

use crate::bars::{Price, RawDay};
use crate::error::{Error, IoContext, Result};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// How a cache's prices are adjusted for corporate actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum AdjustMode {
    /// Raw, as-traded prices and volumes.
    #[serde(rename = "none")]
    #[value(name = "none")]
    None,
    /// Prices multiplied by the split factor, volumes divided by it.
    #[serde(rename = "split")]
    #[value(name = "split")]
    Split,
    /// As `split`, and prices also multiplied by the dividend (price) factor, so that
    /// price returns include dividends (total-return series).
    #[serde(rename = "split+dividend")]
    #[value(name = "split+dividend")]
    SplitDividend,
}

impl AdjustMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AdjustMode::None => "none",
            AdjustMode::Split => "split",
            AdjustMode::SplitDividend => "split+dividend",
        }
    }
}

impl std::fmt::Display for AdjustMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of a LEAN factor file.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FactorRow {
    /// Last date on which these factors apply.
    pub date: NaiveDate,
    /// Cumulative dividend adjustment (multiplies prices in `split+dividend` mode).
    pub price_factor: f64,
    /// Cumulative split adjustment (multiplies prices, divides volumes).
    pub split_factor: f64,
    /// The close the vendor used to compute the row; informational only.
    pub reference_price: f64,
}

/// A symbol's factor file, rows ascending by date.
#[derive(Clone, Debug, PartialEq)]
pub struct FactorFile {
    rows: Vec<FactorRow>,
    /// xxh3-64 of the file's text: caches record it, because adjusted prices are on the
    /// scale of the file's latest row and a changed file means a new scale.
    checksum: u64,
}

impl FactorFile {
    /// xxh3-64 of the file's text (identifies the adjustment scale).
    pub fn checksum(&self) -> u64 {
        self.checksum
    }

    /// Reads a LEAN factor file. Errors name the file, the line and the offending value.
    pub fn load(path: &Path) -> Result<FactorFile> {
        let text = std::fs::read_to_string(path).at(path)?;
        FactorFile::parse(&text, path)
    }

    /// Parses factor-file text; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<FactorFile> {
        let mut rows: Vec<FactorRow> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let [date, price, split, reference] = fields[..] else {
                return Err(Error::input(
                    path,
                    format!(
                        "line {n}: expected 4 fields 'YYYYMMDD,price_factor,split_factor,reference_price', found {} in '{line}'",
                        fields.len()
                    ),
                ));
            };
            let date = NaiveDate::parse_from_str(date, "%Y%m%d").map_err(|_| {
                Error::input(
                    path,
                    format!("line {n}: invalid date '{date}': expected YYYYMMDD"),
                )
            })?;
            let factor = |name: &str, v: &str| -> Result<f64> {
                match v.parse::<f64>() {
                    Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
                    _ => Err(Error::input(
                        path,
                        format!("line {n}: {name} '{v}' is not a positive number"),
                    )),
                }
            };
            let price_factor = factor("price_factor", price)?;
            let split_factor = factor("split_factor", split)?;
            let reference_price = reference.parse::<f64>().map_err(|_| {
                Error::input(
                    path,
                    format!("line {n}: reference_price '{reference}' is not a number"),
                )
            })?;
            if let Some(prev) = rows.last()
                && prev.date >= date
            {
                return Err(Error::input(
                    path,
                    format!(
                        "line {n}: date {} is not after the previous row's {}: rows must be ascending",
                        date.format("%Y%m%d"),
                        prev.date.format("%Y%m%d")
                    ),
                ));
            }
            rows.push(FactorRow {
                date,
                price_factor,
                split_factor,
                reference_price,
            });
        }
        if rows.is_empty() {
            return Err(Error::input(path, "factor file has no rows"));
        }
        Ok(FactorFile {
            rows,
            checksum: xxhash_rust::xxh3::xxh3_64(text.as_bytes()),
        })
    }

    pub fn rows(&self) -> &[FactorRow] {
        &self.rows
    }

    /// `(price_factor, split_factor)` for data on `date`: the first row dated on or after
    /// `date`. Dates after the last row get `(1, 1)`, as in LEAN (no later action known).
    pub fn factors(&self, date: NaiveDate) -> (f64, f64) {
        let i = self.rows.partition_point(|r| r.date < date);
        self.rows
            .get(i)
            .map_or((1.0, 1.0), |r| (r.price_factor, r.split_factor))
    }
}

/// Adjusts one symbol-day in place with `factors = (price_factor, split_factor)` from
/// [`FactorFile::factors`] for that day.
///
/// Prices (OHLC, vwap, bid/ask) are multiplied by the split factor, and in
/// `split+dividend` mode by the price factor too; each is rounded to the nearest
/// nanodollar. Volumes and quote sizes are divided by the split factor and rounded: only
/// splits change the number of shares, dividends do not. A zero price (no quote yet)
/// stays zero. The result is on the scale of the factor file's latest row.
pub fn adjust_day(day: &mut RawDay, factors: (f64, f64), mode: AdjustMode) {
    let (price_factor, split_factor) = factors;
    let price_mult = match mode {
        AdjustMode::None => return,
        AdjustMode::Split => split_factor,
        AdjustMode::SplitDividend => split_factor * price_factor,
    };
    if price_mult != 1.0 {
        let scale = |v: &mut Vec<Price>| v.iter_mut().for_each(|p| *p = p.scaled(price_mult));
        scale(&mut day.open);
        scale(&mut day.high);
        scale(&mut day.low);
        scale(&mut day.close);
        if let Some(v) = &mut day.vwap {
            scale(v);
        }
        if let Some(q) = &mut day.quotes {
            scale(&mut q.bid);
            scale(&mut q.ask);
        }
    }
    if split_factor != 1.0 {
        let inv = 1.0 / split_factor;
        let shares = |v: &mut Vec<u64>| {
            v.iter_mut()
                .for_each(|s| *s = (*s as f64 * inv).round() as u64)
        };
        shares(&mut day.volume);
        if let Some(f) = &mut day.flow {
            shares(&mut f.buy_volume);
            shares(&mut f.sell_volume);
        }
        if let Some(q) = &mut day.quotes {
            shares(&mut q.bid_size);
            shares(&mut q.ask_size);
        }
    }
}

/// Factor files of a LEAN folder, loaded on first use and shared; safe to call from the
/// builder's rayon threads.
#[derive(Debug)]
pub struct FactorTables {
    dir: PathBuf,
    loaded: Mutex<HashMap<String, Option<Arc<FactorFile>>>>,
}

impl FactorTables {
    /// Tables read from `dir` (LEAN's `equity/usa/factor_files`).
    pub fn new(dir: impl Into<PathBuf>) -> FactorTables {
        FactorTables {
            dir: dir.into(),
            loaded: Mutex::new(HashMap::new()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The factor file of `symbol` (`<dir>/<symbol lower-case>.csv`), or `None` when it does
    /// not exist; whether that is an error is the caller's decision.
    pub fn get(&self, symbol: &str) -> Result<Option<Arc<FactorFile>>> {
        let key = symbol.to_ascii_lowercase();
        if let Some(hit) = self.lock().get(&key) {
            return Ok(hit.clone());
        }
        // Parsed outside the lock so threads asking for other symbols are not held up; two
        // threads racing on one symbol both parse the same file and keep the first result.
        let path = self.dir.join(format!("{key}.csv"));
        let file = match std::fs::metadata(&path) {
            Ok(_) => Some(Arc::new(FactorFile::load(&path)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(path, e)),
        };
        Ok(self.lock().entry(key).or_insert(file).clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Option<Arc<FactorFile>>>> {
        // A panic elsewhere cannot leave the map half-updated (inserts are single calls).
        self.loaded.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bars::{BarSize, Quotes};

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    const AAPL_EXCERPT: &str = "\
20140507,0.8961764,0.03571430,592.33
20140606,0.9011818,0.03571430,645.57
20140806,0.9011818,0.25,94.97
20201105,0.9967882,1,119.03
20501231,1,1,0
";

    #[test]
    fn row_on_or_after_the_date_applies() {
        let f = FactorFile::parse(AAPL_EXCERPT, Path::new("aapl.csv")).unwrap();
        // Before the 7:1 split (last pre-split day is the row's own date).
        assert_eq!(f.factors(d(2014, 6, 6)), (0.9011818, 0.0357143));
        assert_eq!(f.factors(d(2014, 5, 8)), (0.9011818, 0.0357143));
        // The day of the split takes the next row.
        assert_eq!(f.factors(d(2014, 6, 9)), (0.9011818, 0.25));
        // Before the first row: the first row.
        assert_eq!(f.factors(d(2000, 1, 3)), (0.8961764, 0.0357143));
        // Latest data: the sentinel row; past it, no action known.
        assert_eq!(f.factors(d(2021, 3, 1)), (1.0, 1.0));
        assert_eq!(f.factors(d(2060, 1, 1)), (1.0, 1.0));
    }

    #[test]
    fn bad_factor_files_name_line_and_value() {
        let p = Path::new("x.csv");
        let e = FactorFile::parse("20140506,1,1,0\n2014-06-06,1,1,0\n", p).unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("x.csv") && m.contains("line 2") && m.contains("2014-06-06"),
            "{m}"
        );
        let m = FactorFile::parse("20140506,1,abc,0\n", p)
            .unwrap_err()
            .to_string();
        assert!(m.contains("line 1") && m.contains("abc"), "{m}");
        let m = FactorFile::parse("20140506,1,0,0\n", p)
            .unwrap_err()
            .to_string();
        assert!(m.contains("split_factor '0'"), "{m}");
        let m = FactorFile::parse("20140506,1,1\n", p)
            .unwrap_err()
            .to_string();
        assert!(m.contains("expected 4 fields"), "{m}");
        let m = FactorFile::parse("20140606,1,1,0\n20140506,1,1,0\n", p)
            .unwrap_err()
            .to_string();
        assert!(m.contains("ascending"), "{m}");
        assert!(FactorFile::parse("\n", p).is_err());
    }

    fn day() -> RawDay {
        let mut r = RawDay::new("AAPL", d(2014, 6, 6), BarSize::M1, "t");
        r.push(
            0,
            Price::from_dollars(645.57),
            Price::from_dollars(646.0),
            Price::from_dollars(645.0),
            Price::from_dollars(645.7),
            45,
        );
        r.push(60, Price(0), Price(7), Price(1), Price(3), 1000);
        r.vwap = Some(vec![Price::from_dollars(645.5), Price(5)]);
        r.quotes = Some(Quotes {
            bid: vec![Price::from_dollars(645.5), Price(0)],
            ask: vec![Price::from_dollars(645.6), Price(0)],
            bid_size: vec![100, 0],
            ask_size: vec![300, 0],
        });
        r
    }

    #[test]
    fn split_scales_prices_and_shares_by_hand_values() {
        let mut r = day();
        adjust_day(&mut r, (0.9, 1.0 / 7.0), AdjustMode::Split);
        // 645.57 / 7 = 92.2242857142857... dollars, to the nanodollar.
        assert_eq!(r.open[0], Price(92_224_285_714));
        assert_eq!(r.close[0], Price(92_242_857_143)); // 645.7 / 7
        assert_eq!(r.vwap.as_ref().unwrap()[0], Price(92_214_285_714)); // 645.5 / 7
        let q = r.quotes.as_ref().unwrap();
        assert_eq!(q.bid[0], Price(92_214_285_714));
        assert_eq!(q.ask[0], Price(92_228_571_429)); // 645.6 / 7
        assert_eq!(
            (q.bid[1], q.ask[1]),
            (Price(0), Price(0)),
            "no-quote stays zero"
        );
        assert_eq!(r.volume, vec![315, 7000]);
        assert_eq!((q.bid_size[0], q.ask_size[0]), (700, 2100));
        assert_eq!(r.ts_ns, vec![0, 60], "times untouched");
    }

    #[test]
    fn dividend_mode_multiplies_price_factor_but_not_shares() {
        let mut r = day();
        adjust_day(&mut r, (0.5, 1.0), AdjustMode::SplitDividend);
        assert_eq!(r.open[0], Price::from_dollars(322.785));
        assert_eq!(r.high[1], Price(4)); // 7 * 0.5 = 3.5 rounds away from zero
        assert_eq!(r.volume, vec![45, 1000]);
        let mut r = day();
        adjust_day(&mut r, (0.5, 0.25), AdjustMode::SplitDividend);
        assert_eq!(r.close[0], Price::from_dollars(645.7 * 0.125));
        assert_eq!(r.volume, vec![180, 4000]);
    }

    #[test]
    fn none_mode_and_unit_factors_change_nothing() {
        let mut r = day();
        adjust_day(&mut r, (0.5, 0.25), AdjustMode::None);
        assert_eq!(r, day());
        adjust_day(&mut r, (1.0, 1.0), AdjustMode::SplitDividend);
        assert_eq!(r, day());
    }

    #[test]
    fn mode_names_match_serde_and_clap() {
        use clap::ValueEnum;
        for m in [
            AdjustMode::None,
            AdjustMode::Split,
            AdjustMode::SplitDividend,
        ] {
            assert_eq!(
                serde_json::to_string(&m).unwrap(),
                format!("\"{}\"", m.as_str())
            );
            assert_eq!(AdjustMode::from_str(m.as_str(), false).unwrap(), m);
        }
        let m: AdjustMode = serde_json::from_str("\"split+dividend\"").unwrap();
        assert_eq!(m, AdjustMode::SplitDividend);
    }

    #[test]
    fn tables_cache_and_report_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("aapl.csv"), AAPL_EXCERPT).unwrap();
        let t = FactorTables::new(dir.path());
        let a = t.get("AAPL").unwrap().unwrap();
        assert_eq!(a.rows().len(), 5);
        // Cached: the same Arc even after the file is gone.
        std::fs::remove_file(dir.path().join("aapl.csv")).unwrap();
        assert!(Arc::ptr_eq(&a, &t.get("aapl").unwrap().unwrap()));
        assert!(t.get("MSFT").unwrap().is_none());
        std::fs::write(dir.path().join("bad.csv"), "x").unwrap();
        let m = t.get("BAD").unwrap_err().to_string();
        assert!(m.contains("bad.csv"), "{m}");
    }
}
