//! The LEAN source and factor-file adjustment against the real LEAN samples in
//! `../shared/data/lean`: every value the source yields is compared with the raw zip read
//! independently here (the `zip` crate, `str::parse`, chrono-tz) and with literal values
//! read off the files by hand. Skips visibly when the data folder is absent.

mod common;

use chrono::{NaiveDate, TimeZone};
use sim_train::adjust::{AdjustMode, FactorFile, FactorTables, adjust_day};
use sim_train::bars::{BarSize, Price, RawDay};
use sim_train::ingest::Selection;
use sim_train::ingest::Source;
use sim_train::ingest::lean::{LeanSource, factor_dir};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data");

fn lean_root() -> Option<PathBuf> {
    let root = Path::new(DATA).join("lean");
    if root.is_dir() {
        Some(root)
    } else {
        common::skip(&root);
        None
    }
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn one_day(bar: BarSize, symbol: &str, date: NaiveDate) -> Selection {
    Selection {
        symbols: Some([symbol.to_string()].into()),
        from: Some(date),
        to: Some(date),
        bar,
    }
}

/// Loads one symbol-day through the source under test.
fn load(root: &Path, bar: BarSize, symbol: &str, date: NaiveDate) -> RawDay {
    let src = LeanSource::new(root, one_day(bar, symbol, date)).unwrap();
    assert_eq!(src.name(), "lean");
    assert_eq!(src.dates().unwrap(), vec![date]);
    let mut days = src.load_date(date).unwrap();
    assert_eq!(days.len(), 1);
    days.pop().unwrap()
}

/// The CSV lines of a zip's only entry, read independently of the source.
fn zip_lines(path: &Path) -> Vec<Vec<i64>> {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    assert_eq!(zip.len(), 1, "{}", path.display());
    let mut text = String::new();
    zip.by_index(0).unwrap().read_to_string(&mut text).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split(',')
                .map(|f| f.replace([' ', ':'], "").parse::<i64>().unwrap())
                .collect()
        })
        .collect()
}

/// UTC ns of `ms` after New York midnight, via chrono-tz directly.
fn ny_ms_to_utc_ns(date: NaiveDate, ms: i64) -> i64 {
    let midnight = chrono_tz::America::New_York
        .from_local_datetime(&date.and_hms_opt(0, 0, 0).unwrap())
        .single()
        .unwrap();
    midnight.timestamp() * 1_000_000_000 + ms * 1_000_000
}

/// LEAN 1/10000 dollars to nanodollars.
fn nd(raw: i64) -> Price {
    Price(raw * 100_000)
}

/// Checks every bar of a second/minute day against the raw trade and quote zips.
fn check_intraday(root: &Path, bar: BarSize, res: &str, date: NaiveDate) -> RawDay {
    let stamp = date.format("%Y%m%d");
    let dir = root.join(format!("equity/usa/{res}/spy"));
    let trades = zip_lines(&dir.join(format!("{stamp}_trade.zip")));
    let quotes = zip_lines(&dir.join(format!("{stamp}_quote.zip")));
    let day = load(root, bar, "spy", date);
    assert_eq!(day.symbol, "SPY");
    assert_eq!(day.bar, Some(bar));
    assert!(
        day.origin
            .ends_with(&format!("{res}/spy/{stamp}_trade.zip")),
        "{}",
        day.origin
    );
    assert_eq!(day.len(), trades.len(), "one bar per CSV line");
    let q = day.quotes.as_ref().expect("quote file merged");
    let mut k = 0; // quote rows with start <= the trade bar's, by a forward scan
    for (i, t) in trades.iter().enumerate() {
        assert_eq!(day.ts_ns[i], ny_ms_to_utc_ns(date, t[0]), "bar {i}");
        assert_eq!(
            (day.open[i], day.high[i], day.low[i], day.close[i]),
            (nd(t[1]), nd(t[2]), nd(t[3]), nd(t[4])),
            "bar {i}"
        );
        assert_eq!(day.volume[i], t[5] as u64, "bar {i}");
        while k < quotes.len() && quotes[k][0] <= t[0] {
            k += 1;
        }
        let want = match k {
            0 => (Price(0), Price(0), 0, 0),
            _ => {
                let r = &quotes[k - 1];
                (nd(r[4]), nd(r[9]), r[5] as u64, r[10] as u64)
            }
        };
        assert_eq!(
            (q.bid[i], q.ask[i], q.bid_size[i], q.ask_size[i]),
            want,
            "quote of bar {i}"
        );
    }
    day
}

#[test]
fn spy_minute_2013_10_07_matches_raw_zip_and_hand_values() {
    let Some(root) = lean_root() else { return };
    let day = check_intraday(&root, BarSize::M1, "minute", d(2013, 10, 7));
    // First line `14400000,1674100,1674100,1672500,1672700,3197`: 04:00 EDT = 08:00 UTC.
    assert_eq!(day.ts_ns[0], 1_381_132_800 * 1_000_000_000);
    assert_eq!(day.open[0], Price::from_dollars(167.41));
    assert_eq!(day.high[0], Price::from_dollars(167.41));
    assert_eq!(day.low[0], Price::from_dollars(167.25));
    assert_eq!(day.close[0], Price::from_dollars(167.27));
    assert_eq!(day.volume[0], 3197);
    // Quote file's first line: `14400000,…,1672500,300,…,1672700,20000` (same start).
    let q = day.quotes.as_ref().unwrap();
    assert_eq!(
        (q.bid[0], q.ask[0]),
        (Price::from_dollars(167.25), Price::from_dollars(167.27))
    );
    assert_eq!((q.bid_size[0], q.ask_size[0]), (300, 20000));
    assert_eq!(day.len(), 827 + 1, "827 newlines, no trailing one");
}

#[test]
fn spy_second_2013_10_07_matches_raw_zip_and_hand_values() {
    let Some(root) = lean_root() else { return };
    let day = check_intraday(&root, BarSize::S1, "second", d(2013, 10, 7));
    // `14400000,1674100,1674100,1674100,1674100,2049`, then a gap to 04:00:02 (sparse).
    assert_eq!(day.ts_ns[0], 1_381_132_800 * 1_000_000_000);
    assert_eq!(day.ts_ns[1], 1_381_132_802 * 1_000_000_000);
    assert_eq!(day.close[0], Price::from_dollars(167.41));
    assert_eq!(day.volume[0], 2049);
    // Quote `14400000,…,1672700,100,…,1674100,600`.
    let q = day.quotes.as_ref().unwrap();
    assert_eq!(
        (q.bid[0], q.ask[0]),
        (Price::from_dollars(167.27), Price::from_dollars(167.41))
    );
    assert_eq!((q.bid_size[0], q.ask_size[0]), (100, 600));
}

/// Checks one date of an hour/daily zip against the raw file.
fn check_series(root: &Path, bar: BarSize, res: &str, date: NaiveDate) -> RawDay {
    let rows = zip_lines(&root.join(format!("equity/usa/{res}/spy.zip")));
    let key = date.format("%Y%m%d").to_string().parse::<i64>().unwrap();
    // Stamps were read as YYYYMMDDHHMM.
    let rows: Vec<&Vec<i64>> = rows.iter().filter(|r| r[0] / 10_000 == key).collect();
    let day = load(root, bar, "SPY", date);
    assert_eq!(day.len(), rows.len());
    for (i, r) in rows.iter().enumerate() {
        let (hh, mm) = ((r[0] % 10_000) / 100, r[0] % 100);
        assert_eq!(
            day.ts_ns[i],
            ny_ms_to_utc_ns(date, (hh * 3600 + mm * 60) * 1000)
        );
        assert_eq!(
            (day.open[i], day.high[i], day.low[i], day.close[i]),
            (nd(r[1]), nd(r[2]), nd(r[3]), nd(r[4]))
        );
        assert_eq!(day.volume[i], r[5] as u64);
    }
    assert!(day.quotes.is_none());
    day
}

#[test]
fn spy_hour_and_daily_1998_01_02_match_raw_zip_and_hand_values() {
    let Some(root) = lean_root() else { return };
    // `19980102 09:00,973100,975300,970300,970300,384500`: 09:00 EST = 14:00 UTC.
    let h = check_series(&root, BarSize::H1, "hour", d(1998, 1, 2));
    assert_eq!(h.ts_ns[0], 883_749_600 * 1_000_000_000);
    assert_eq!(h.open[0], Price::from_dollars(97.31));
    assert_eq!(h.high[0], Price::from_dollars(97.53));
    assert_eq!(h.low[0], Price::from_dollars(97.03));
    assert_eq!(h.close[0], Price::from_dollars(97.03));
    assert_eq!(h.volume[0], 384_500);
    // `19980102 00:00,973100,975300,965300,973600,2150000`: midnight EST = 05:00 UTC.
    let dd = check_series(&root, BarSize::D1, "daily", d(1998, 1, 2));
    assert_eq!(dd.len(), 1);
    assert_eq!(dd.ts_ns[0], 883_717_200 * 1_000_000_000);
    assert_eq!(dd.low[0], Price::from_dollars(96.53));
    assert_eq!(dd.close[0], Price::from_dollars(97.36));
    assert_eq!(dd.volume[0], 2_150_000);
    // One date per daily line, over the whole file.
    let src = LeanSource::new(
        &root,
        Selection {
            symbols: Some(["SPY".to_string()].into()),
            ..Selection::all(BarSize::D1)
        },
    )
    .unwrap();
    let n_lines = zip_lines(&root.join("equity/usa/daily/spy.zip")).len();
    assert_eq!(src.dates().unwrap().len(), n_lines);
}

#[test]
fn every_symbol_at_every_resolution_loads() {
    let Some(root) = lean_root() else { return };
    let five = ["AAPL", "AIG", "BAC", "IBM", "SPY"];
    for (bar, expect) in [
        (BarSize::S1, &five[1..]), // no AAPL second data in the samples
        (BarSize::M1, &five[..]),
        (BarSize::H1, &five[..]),
        (BarSize::D1, &five[..]),
    ] {
        let src = LeanSource::new(&root, Selection::all(bar)).unwrap();
        for s in expect {
            assert!(
                src.symbols().contains(s),
                "{bar}: {s} missing from {:?}",
                src.symbols()
            );
        }
        let dates = src.dates().unwrap();
        assert!(!dates.is_empty(), "{bar}");
        assert!(
            dates.windows(2).all(|w| w[0] < w[1]),
            "{bar}: dates ascending, unique"
        );
        let mut seen = std::collections::BTreeSet::new();
        for &date in &dates {
            let days = src.load_date(date).unwrap();
            assert!(!days.is_empty(), "{bar} {date}: listed date without data");
            for day in &days {
                assert!(!day.is_empty(), "{bar} {date} {}", day.symbol);
                assert_eq!(day.date, date);
                seen.insert(day.symbol.clone());
                for i in 0..day.len() {
                    let ohlc = [day.open[i], day.high[i], day.low[i], day.close[i]];
                    assert!(
                        ohlc.iter().all(|p| p.0 > 0),
                        "{bar} {date} {} bar {i}: {ohlc:?}",
                        day.symbol
                    );
                }
            }
        }
        for s in expect {
            assert!(seen.contains(*s), "{bar}: no day of {s} loaded");
        }
    }
}

#[test]
fn bac_1998_history_is_read_under_its_current_name() {
    // BAC's map file names it NB until 1998-09-30, but the samples keep the whole history
    // in bac.zip: the source falls back to the symbol's own file.
    let Some(root) = lean_root() else { return };
    let day = load(&root, BarSize::D1, "BAC", d(1998, 1, 2));
    assert_eq!(day.symbol, "BAC");
    assert!(day.origin.ends_with("daily/bac.zip"));
    assert_eq!(day.close[0], Price::from_dollars(73.63)); // `19980102 00:00,…,736300,919900`
}

/// `a * num / den` rounded half up, in exact integer arithmetic (`a >= 0`).
fn mul_exact(a: i64, num: i128, den: i128) -> i64 {
    ((a as i128 * num * 2 + den) / (2 * den)) as i64
}

#[test]
fn aapl_split_2014_06_09_adjusts_onto_one_scale() {
    let Some(root) = lean_root() else { return };
    let tables = FactorTables::new(factor_dir(&root));
    let f = tables.get("AAPL").unwrap().expect("aapl factor file");
    assert!(tables.get("NOSUCH").unwrap().is_none());
    let (pf6, sf6) = f.factors(d(2014, 6, 6));
    let (pf9, sf9) = f.factors(d(2014, 6, 9));
    assert_eq!((pf6, sf6), (0.9011818, 0.0357143));
    assert_eq!((pf9, sf9), (0.9011818, 0.25));
    assert!((sf9 / sf6 - 7.0).abs() < 1e-5, "7-for-1");
    assert_eq!(
        *f,
        FactorFile::load(&factor_dir(&root).join("aapl.csv")).unwrap()
    );

    let raw6 = load(&root, BarSize::M1, "AAPL", d(2014, 6, 6));
    let raw9 = load(&root, BarSize::M1, "AAPL", d(2014, 6, 9));
    let mut adj6 = raw6.clone();
    let mut adj9 = raw9.clone();
    adjust_day(&mut adj6, (pf6, sf6), AdjustMode::Split);
    adjust_day(&mut adj9, (pf9, sf9), AdjustMode::Split);

    // 09:30 EDT on 2014-06-09 = 13:30 UTC.
    let open9 = raw9
        .ts_ns
        .iter()
        .position(|&t| t >= 1_402_320_600 * 1_000_000_000)
        .unwrap();
    let last6 = raw6.len() - 1;
    let raw_ratio = raw6.close[last6].dollars() / raw9.close[open9].dollars();
    assert!(
        (6.5..7.5).contains(&raw_ratio),
        "raw prices differ ~7x: {raw_ratio}"
    );
    let adj_ratio = adj6.close[last6].dollars() / adj9.close[open9].dollars();
    assert!(
        (adj_ratio - 1.0).abs() < 0.03,
        "adjusted continuous: {adj_ratio}"
    );
    // Hand values: 645.70 * 0.0357143 = 23.06072..., 92.72 * 0.25 = 23.18.
    assert_eq!(raw6.close[last6], Price::from_dollars(645.70));
    assert_eq!(adj6.close[last6], Price(23_060_723_510));
    assert_eq!(adj9.close[open9], Price::from_dollars(23.18));

    for (raw, adj, num) in [(&raw6, &adj6, 357_143i128), (&raw9, &adj9, 2_500_000)] {
        assert_eq!(adj.ts_ns, raw.ts_ns);
        let rq = raw.quotes.as_ref().unwrap();
        let aq = adj.quotes.as_ref().unwrap();
        for i in 0..raw.len() {
            for (r, a) in [
                (raw.open[i], adj.open[i]),
                (raw.high[i], adj.high[i]),
                (raw.low[i], adj.low[i]),
                (raw.close[i], adj.close[i]),
                (rq.bid[i], aq.bid[i]),
                (rq.ask[i], aq.ask[i]),
            ] {
                assert!(
                    (a.0 - mul_exact(r.0, num, 10_000_000)).abs() <= 1,
                    "bar {i}: {r:?} -> {a:?}"
                );
            }
            // Shares: volume / split factor = volume * 10^7 / num, rounded.
            for (r, a) in [
                (raw.volume[i], adj.volume[i]),
                (rq.bid_size[i], aq.bid_size[i]),
                (rq.ask_size[i], aq.ask_size[i]),
            ] {
                let want = ((r as i128 * 20_000_000 + num) / (2 * num)) as u64;
                assert!(
                    a.abs_diff(want) <= 1,
                    "bar {i}: {r} shares -> {a}, want {want}"
                );
            }
        }
    }
    // 1 / 0.25 = 4 exactly: post-split volumes are exactly 4x.
    assert!(
        raw9.volume
            .iter()
            .zip(&adj9.volume)
            .all(|(r, a)| *a == r * 4)
    );

    // split+dividend: prices also times the price factor, shares as with splits only.
    let mut div6 = raw6.clone();
    adjust_day(&mut div6, (pf6, sf6), AdjustMode::SplitDividend);
    for i in 0..raw6.len() {
        // 0.0357143 * 0.9011818 = 357143 * 9011818 / 10^14.
        let exact = mul_exact(raw6.close[i].0, 357_143 * 9_011_818, 100_000_000_000_000);
        assert!(
            (div6.close[i].0 - exact).abs() <= 1,
            "bar {i}: {:?} vs {exact}",
            div6.close[i]
        );
        assert_eq!(div6.volume[i], adj6.volume[i]);
    }
    let mut none6 = raw6.clone();
    adjust_day(&mut none6, (pf6, sf6), AdjustMode::None);
    assert_eq!(none6, raw6);
}

/// A copy of the LEAN layout in a tempdir holding one SPY minute day given as bytes.
fn fake_root(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("equity/usa/minute/spy/20131007_trade.zip");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

fn load_err(root: &Path) -> String {
    let src = LeanSource::new(root, one_day(BarSize::M1, "SPY", d(2013, 10, 7))).unwrap();
    src.load_date(d(2013, 10, 7)).unwrap_err().to_string()
}

#[test]
fn broken_zips_and_lines_are_errors_naming_the_file() {
    let Some(root) = lean_root() else { return };
    let real = std::fs::read(root.join("equity/usa/minute/spy/20131007_trade.zip")).unwrap();

    let (dir, path) = fake_root(&real[..real.len() / 2]);
    let m = load_err(dir.path());
    assert!(
        m.contains(&path.display().to_string()) && m.contains("truncated or corrupt"),
        "{m}"
    );

    // Intact directory, damaged compressed data: caught by inflate or the CRC.
    let mut flipped = real.clone();
    for b in &mut flipped[200..400] {
        *b ^= 0x5a;
    }
    let (dir, path) = fake_root(&flipped);
    let m = load_err(dir.path());
    assert!(
        m.contains(&path.display().to_string()) && m.contains("truncated or corrupt"),
        "{m}"
    );

    // The real CSV with line 100 replaced by garbage.
    let mut text = String::new();
    zip::ZipArchive::new(std::io::Cursor::new(&real))
        .unwrap()
        .by_index(0)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[99] = "53340000,1690500,garbage,1690400,1690500,100";
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut w = zip::ZipWriter::new(&mut buf);
    w.start_file(
        "20131007_spy_minute_trade.csv",
        zip::write::SimpleFileOptions::default(),
    )
    .unwrap();
    w.write_all(lines.join("\n").as_bytes()).unwrap();
    w.finish().unwrap();
    let (dir, path) = fake_root(buf.get_ref());
    let m = load_err(dir.path());
    assert!(
        m.contains(&path.display().to_string()) && m.contains("line 100: high 'garbage'"),
        "{m}"
    );

    // A truncated hour zip fails when its dates are listed.
    let real_hour = std::fs::read(root.join("equity/usa/hour/ibm.zip")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("equity/usa/hour/ibm.zip");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &real_hour[..real_hour.len() - 100]).unwrap();
    let src = LeanSource::new(dir.path(), Selection::all(BarSize::H1)).unwrap();
    let m = src.dates().unwrap_err().to_string();
    assert!(m.contains(&path.display().to_string()), "{m}");

    let missing = root.join("no-such-folder");
    let m = LeanSource::new(&missing, Selection::all(BarSize::M1))
        .unwrap_err()
        .to_string();
    assert!(m.contains(&missing.display().to_string()), "{m}");
}

#[test]
fn equity_usa_itself_is_accepted_as_root() {
    let Some(root) = lean_root() else { return };
    let usa = root.join("equity/usa");
    let a = load(&root, BarSize::M1, "IBM", d(2013, 10, 8));
    let b = load(&usa, BarSize::M1, "IBM", d(2013, 10, 8));
    assert_eq!(a, b);
    assert_eq!(factor_dir(&usa), factor_dir(&root));
}
