//! The Databento DBN source against Databento's own sample files (decoded independently
//! here with the `dbn` crate's plain decoder, and by hand-checked literals) and against DBN
//! files written in the test with `dbn`'s encoder (status records, mixed folders).

mod common;

use chrono::NaiveDate;
use dbn::decode::{DbnMetadata, DecodeRecord};
use dbn::encode::{EncodeRecord, dbn::Encoder};
use dbn::{
    MappingInterval, Metadata, MetadataBuilder, OhlcvMsg, RecordHeader, SType, Schema,
    StatusAction, StatusMsg, SymbolMapping, rtype,
};
use sim_train::Error;
use sim_train::bars::{BarSize, Halt, Price, RawDay};
use sim_train::clock::{NS_PER_SEC, ny_date_sec};
use sim_train::ingest::dbn::DbnSource;
use sim_train::ingest::{Selection, Source};
use std::collections::BTreeSet;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};

fn data_dir() -> Option<PathBuf> {
    common::databento_dir()
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

/// UTC ns of a UTC wall-clock time.
fn utc(y: i32, mo: u32, day: u32, h: u32, mi: u32, s: u32) -> i64 {
    d(y, mo, day)
        .and_hms_opt(h, mi, s)
        .unwrap()
        .and_utc()
        .timestamp()
        * NS_PER_SEC
}

fn all_days(src: &DbnSource) -> Vec<RawDay> {
    let mut out = Vec::new();
    for date in src.dates().unwrap() {
        out.extend(src.load_date(date).unwrap());
    }
    out
}

/// The sample's records as the plain `dbn` decoder reads them (symbol from the metadata).
fn decode_plain(path: &Path) -> (String, Vec<OhlcvMsg>) {
    let mut dec = dbn::decode::dbn::Decoder::from_zstd_file(path).unwrap();
    let symbol = dec.metadata().mappings[0].raw_symbol.clone();
    let mut recs = Vec::new();
    while let Some(r) = dec.decode_record::<OhlcvMsg>().unwrap() {
        recs.push(r.clone());
    }
    (symbol, recs)
}

const SAMPLES: [(&str, &str, (i32, u32, u32)); 2] = [
    ("XNAS.ITCH", "NVDA", (2020, 12, 28)),
    ("EQUS.MINI", "QQQ", (2023, 3, 28)),
];

#[test]
fn every_ohlcv_sample_matches_the_plain_decoder() {
    let Some(dir) = data_dir() else { return };
    for (dataset, symbol, (y, m, day)) in SAMPLES {
        for bar in BarSize::ALL {
            let path = dir
                .join(dataset)
                .join(format!("test_data.ohlcv-{bar}.dbn.zst"));
            let src = DbnSource::new(&path, Selection::all(bar)).unwrap();
            assert_eq!(src.name(), "dbn");
            assert_eq!(
                src.dates().unwrap(),
                vec![d(y, m, day)],
                "{}",
                path.display()
            );
            let days = all_days(&src);
            assert_eq!(days.len(), 1);
            let got = &days[0];
            let (raw_symbol, recs) = decode_plain(&path);
            assert_eq!(raw_symbol, symbol);
            assert_eq!(got.symbol, symbol);
            assert_eq!(got.date, d(y, m, day));
            assert_eq!(got.bar, Some(bar));
            assert_eq!(got.len(), recs.len());
            assert!(!recs.is_empty());
            for (i, r) in recs.iter().enumerate() {
                let ts = r.hd.ts_event as i64;
                if bar == BarSize::D1 {
                    // Databento stamps daily bars at 00:00 UTC of the session date; we keep
                    // them at New York midnight of that date.
                    assert_eq!(ts, utc(y, m, day, 0, 0, 0));
                    assert_eq!(ny_date_sec(got.ts_ns[i]), (d(y, m, day), 0));
                } else {
                    assert_eq!(got.ts_ns[i], ts);
                    assert_eq!(ny_date_sec(ts).0, d(y, m, day));
                }
                assert_eq!(got.open[i], Price(r.open));
                assert_eq!(got.high[i], Price(r.high));
                assert_eq!(got.low[i], Price(r.low));
                assert_eq!(got.close[i], Price(r.close));
                assert_eq!(got.volume[i], r.volume);
            }
            assert!(got.halts.is_empty());
        }
    }
}

#[test]
fn first_bars_have_the_known_values() {
    let Some(dir) = data_dir() else { return };
    let load = |dataset: &str, bar: BarSize| {
        let path = dir
            .join(dataset)
            .join(format!("test_data.ohlcv-{bar}.dbn.zst"));
        all_days(&DbnSource::new(&path, Selection::all(bar)).unwrap()).remove(0)
    };
    // NVDA 2020-12-28 04:05:12 EST (09:05:12 UTC): pre-market at $521.00, 36 shares.
    let nvda = load("XNAS.ITCH", BarSize::S1);
    assert_eq!(nvda.ts_ns[0], utc(2020, 12, 28, 9, 5, 12));
    assert_eq!(
        ny_date_sec(nvda.ts_ns[0]),
        (d(2020, 12, 28), 4 * 3600 + 5 * 60 + 12)
    );
    assert_eq!(nvda.open[0], Price(521_000_000_000));
    assert_eq!(nvda.open[0], Price::from_dollars(521.0));
    assert_eq!(nvda.close[0], Price(521_000_000_000));
    assert_eq!(nvda.volume[0], 36);
    // NVDA daily: O 521.00 H 522.86 L 510.54 C 515.60, 1,424,253 shares; NY midnight (EST).
    let daily = load("XNAS.ITCH", BarSize::D1);
    assert_eq!(daily.ts_ns, vec![utc(2020, 12, 28, 5, 0, 0)]);
    assert_eq!(
        (
            daily.open[0],
            daily.high[0],
            daily.low[0],
            daily.close[0],
            daily.volume[0]
        ),
        (
            Price(521_000_000_000),
            Price(522_860_000_000),
            Price(510_540_000_000),
            Price(515_600_000_000),
            1_424_253
        )
    );
    // QQQ 2023-03-28 07:08:14 EDT: O 307.83 H 307.83 L 307.80 C 307.80, 1800 shares.
    let qqq = load("EQUS.MINI", BarSize::S1);
    assert_eq!(qqq.ts_ns[0], utc(2023, 3, 28, 11, 8, 14));
    assert_eq!(
        ny_date_sec(qqq.ts_ns[0]),
        (d(2023, 3, 28), 7 * 3600 + 8 * 60 + 14)
    );
    assert_eq!(
        (
            qqq.open[0],
            qqq.high[0],
            qqq.low[0],
            qqq.close[0],
            qqq.volume[0]
        ),
        (
            Price(307_830_000_000),
            Price(307_830_000_000),
            Price(307_800_000_000),
            Price(307_800_000_000),
            1800
        )
    );
    let qqq_daily = load("EQUS.MINI", BarSize::D1);
    assert_eq!(qqq_daily.ts_ns, vec![utc(2023, 3, 28, 4, 0, 0)]); // EDT midnight
}

/// Property of the vendor's aggregation: the 1s bars of a minute roll up into that
/// minute's 1m bar (volume summed, high/low extremes, first open, last close).
#[test]
fn second_bars_roll_up_into_the_minute_bars() {
    let Some(dir) = data_dir() else { return };
    for (dataset, _, _) in SAMPLES {
        let load = |bar: BarSize| {
            let path = dir
                .join(dataset)
                .join(format!("test_data.ohlcv-{bar}.dbn.zst"));
            all_days(&DbnSource::new(&path, Selection::all(bar)).unwrap()).remove(0)
        };
        let (secs, mins) = (load(BarSize::S1), load(BarSize::M1));
        // The samples hold a few records each: compare every minute the 1s file reaches.
        let last_sec = *secs.ts_ns.last().unwrap();
        let mut checked = 0;
        for m in (0..mins.len()).filter(|&m| mins.ts_ns[m] <= last_sec) {
            let start = mins.ts_ns[m];
            let inside: Vec<usize> = (0..secs.len())
                .filter(|&i| secs.ts_ns[i] >= start && secs.ts_ns[i] < start + 60 * NS_PER_SEC)
                .collect();
            assert!(
                !inside.is_empty(),
                "{dataset}: no 1s bars in the 1m bar at {start}"
            );
            assert_eq!(
                inside.iter().map(|&i| secs.volume[i]).sum::<u64>(),
                mins.volume[m]
            );
            assert_eq!(secs.open[inside[0]], mins.open[m]);
            assert_eq!(secs.close[*inside.last().unwrap()], mins.close[m]);
            assert_eq!(
                inside.iter().map(|&i| secs.high[i]).max().unwrap(),
                mins.high[m]
            );
            assert_eq!(
                inside.iter().map(|&i| secs.low[i]).min().unwrap(),
                mins.low[m]
            );
            checked += 1;
        }
        // NVDA: 09:05 (36+4+1 = 41 shares) and 09:08; QQQ: 11:08, 11:10 (900+162), 11:11.
        assert!(checked >= 2, "{dataset}: only {checked} minutes checked");
    }
}

#[test]
fn a_sample_folder_keeps_only_the_requested_bar_size() {
    let Some(dir) = data_dir() else { return };
    let folder = dir.join("XNAS.ITCH"); // ohlcv-1s/1m/1h/1d plus trades, mbo, definition...
    let src = DbnSource::new(&folder, Selection::all(BarSize::H1)).unwrap();
    let days = all_days(&src);
    assert_eq!(days.len(), 1);
    assert_eq!(days[0].symbol, "NVDA");
    let (_, recs) = decode_plain(&folder.join("test_data.ohlcv-1h.dbn.zst"));
    let ts: Vec<i64> = recs.iter().map(|r| r.hd.ts_event as i64).collect();
    assert_eq!(days[0].ts_ns, ts);
}

#[test]
fn selection_filters_symbols_and_dates() {
    let Some(dir) = data_dir() else { return };
    let path = dir.join("EQUS.MINI/test_data.ohlcv-1m.dbn.zst");
    let mut sel = Selection::all(BarSize::M1);
    sel.symbols = Some(BTreeSet::from(["SPY".to_string()]));
    assert!(
        DbnSource::new(&path, sel.clone())
            .unwrap()
            .dates()
            .unwrap()
            .is_empty()
    );
    sel.symbols = Some(BTreeSet::from(["QQQ".to_string()]));
    sel.from = Some(d(2023, 3, 29));
    assert!(
        DbnSource::new(&path, sel.clone())
            .unwrap()
            .dates()
            .unwrap()
            .is_empty()
    );
    sel.from = Some(d(2023, 3, 28));
    sel.to = Some(d(2023, 3, 28));
    assert_eq!(
        DbnSource::new(&path, sel).unwrap().dates().unwrap(),
        vec![d(2023, 3, 28)]
    );
}

fn expect_input_error(result: sim_train::Result<DbnSource>, file: &Path) -> String {
    match result {
        Err(Error::Input { path, detail }) => {
            assert_eq!(path, file);
            let msg = Error::Input {
                path,
                detail: detail.clone(),
            }
            .to_string();
            assert!(msg.contains(&file.display().to_string()), "{msg}");
            assert!(!msg.contains('\n'), "{msg}");
            detail
        }
        other => panic!(
            "expected an input error for {}, got {other:?}",
            file.display()
        ),
    }
}

#[test]
fn a_minute_file_asked_for_as_seconds_names_the_bar_to_use() {
    let Some(dir) = data_dir() else { return };
    let path = dir.join("XNAS.ITCH/test_data.ohlcv-1m.dbn.zst");
    let detail = expect_input_error(DbnSource::new(&path, Selection::all(BarSize::S1)), &path);
    assert!(
        detail.contains("ohlcv-1m") && detail.contains("--bar 1m"),
        "{detail}"
    );
}

#[test]
fn truncated_and_foreign_files_are_errors_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let foreign = tmp.path().join("notes.dbn");
    std::fs::write(&foreign, "date,open,high\n2024-01-02,1,2\n").unwrap();
    let detail = expect_input_error(
        DbnSource::new(&foreign, Selection::all(BarSize::M1)),
        &foreign,
    );
    assert!(detail.contains("DBN"), "{detail}");

    let empty = tmp.path().join("empty.dbn.zst");
    std::fs::write(&empty, b"").unwrap();
    expect_input_error(DbnSource::new(&empty, Selection::all(BarSize::M1)), &empty);

    // A plain DBN file cut in the middle of a record.
    let plain = tmp.path().join("cut.dbn");
    write_dbn(
        &plain,
        &metadata(Schema::Ohlcv1M, &[("AAA", 1)]),
        &minute_bars(1, utc(2024, 1, 2, 15, 0, 0), 5),
    );
    let bytes = std::fs::read(&plain).unwrap();
    std::fs::write(&plain, &bytes[..bytes.len() - 20]).unwrap();
    expect_input_error(DbnSource::new(&plain, Selection::all(BarSize::M1)), &plain);

    // A real zstd sample cut short.
    let Some(dir) = data_dir() else { return };
    let bytes = std::fs::read(dir.join("XNAS.ITCH/test_data.ohlcv-1h.dbn.zst")).unwrap();
    let cut = tmp.path().join("cut.ohlcv-1h.dbn.zst");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    expect_input_error(DbnSource::new(&cut, Selection::all(BarSize::H1)), &cut);
}

// ---- DBN files written by the test ------------------------------------------------------

/// Metadata for 2024-01-02 .. 2024-01-04 (UTC) mapping raw symbols to instrument ids.
fn metadata(schema: Schema, symbols: &[(&str, u32)]) -> Metadata {
    let mut md = MetadataBuilder::new()
        .dataset("XNAS.ITCH")
        .schema(Some(schema))
        .start(utc(2024, 1, 2, 0, 0, 0) as u64)
        .end(NonZeroU64::new(utc(2024, 1, 4, 0, 0, 0) as u64))
        .stype_in(Some(SType::RawSymbol))
        .stype_out(SType::InstrumentId)
        .build();
    // `time::Date` values from the metadata itself (the test has no `time` dependency).
    let (d0, d1) = (md.start().date(), md.end().unwrap().date());
    md.mappings = symbols
        .iter()
        .map(|(raw, iid)| SymbolMapping {
            raw_symbol: raw.to_string(),
            intervals: vec![MappingInterval {
                start_date: d0,
                end_date: d1,
                symbol: iid.to_string(),
            }],
        })
        .collect();
    md
}

fn write_dbn<R: dbn::encode::DbnEncodable>(path: &Path, md: &Metadata, records: &[R]) {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = Encoder::new(file, md).unwrap();
    for r in records {
        enc.encode_record(r).unwrap();
    }
    enc.flush().unwrap();
}

/// `n` one-minute bars from `start` for instrument `iid`, price $10.00 + $0.01 per bar.
fn minute_bars(iid: u32, start: i64, n: i64) -> Vec<OhlcvMsg> {
    (0..n)
        .map(|k| {
            let px = 10_000_000_000 + k * 10_000_000;
            OhlcvMsg {
                hd: RecordHeader::new::<OhlcvMsg>(
                    rtype::OHLCV_1M,
                    1,
                    iid,
                    (start + k * 60 * NS_PER_SEC) as u64,
                ),
                open: px,
                high: px + 5_000_000,
                low: px - 5_000_000,
                close: px,
                volume: 100 + k as u64,
            }
        })
        .collect()
}

fn status(iid: u32, ts: i64, action: StatusAction, is_trading: u8) -> StatusMsg {
    StatusMsg {
        hd: RecordHeader::new::<StatusMsg>(rtype::STATUS, 1, iid, ts as u64),
        ts_recv: ts as u64 + 1000,
        action: action as u16,
        is_trading: is_trading as std::ffi::c_char,
        ..StatusMsg::default()
    }
}

#[test]
fn status_records_become_halts_on_their_symbol_days() {
    let tmp = tempfile::tempdir().unwrap();
    let syms = [("abcd", 1), ("EFGH", 2), ("IJKL", 3)];
    // Bars: ABCD on Jan 2 and Jan 3, EFGH on Jan 2; IJKL has none. One bar has an undefined
    // price (skipped).
    let mut bars = minute_bars(1, utc(2024, 1, 2, 14, 30, 0), 3);
    bars.extend(minute_bars(2, utc(2024, 1, 2, 14, 30, 0), 2));
    bars.extend(minute_bars(1, utc(2024, 1, 3, 14, 30, 0), 2));
    let mut undef = minute_bars(2, utc(2024, 1, 2, 14, 40, 0), 1);
    undef[0].high = dbn::UNDEF_PRICE;
    bars.extend(undef);
    bars.sort_by_key(|b| b.hd.ts_event);
    write_dbn(
        &tmp.path().join("bars.ohlcv-1m.dbn"),
        &metadata(Schema::Ohlcv1M, &syms),
        &bars,
    );

    let (y, n, na) = (b'Y', b'N', b'~');
    let events = [
        // ABCD: the open (not a halt), a halt with a quoting-only period, then trading.
        status(1, utc(2024, 1, 2, 14, 30, 0), StatusAction::Trading, y),
        status(1, utc(2024, 1, 2, 15, 0, 0), StatusAction::Halt, n),
        status(1, utc(2024, 1, 2, 15, 2, 0), StatusAction::Quoting, n),
        status(1, utc(2024, 1, 2, 15, 5, 0), StatusAction::Trading, y),
        // ABCD: an LULD pause that resumes through a record with no action but trading = Y.
        status(1, utc(2024, 1, 2, 16, 0, 0), StatusAction::Pause, n),
        status(1, utc(2024, 1, 2, 16, 0, 30), StatusAction::Pause, n),
        status(1, utc(2024, 1, 2, 16, 5, 0), StatusAction::None, y),
        // ABCD: halted 15:30 ET on Jan 2, resumed 09:45 ET on Jan 3 (split at NY midnight).
        status(1, utc(2024, 1, 2, 20, 30, 0), StatusAction::Halt, n),
        status(1, utc(2024, 1, 3, 14, 45, 0), StatusAction::Trading, y),
        // EFGH: suspended at 10:00 ET and never resumed: lasts to the end of the NY day.
        status(2, utc(2024, 1, 2, 15, 0, 0), StatusAction::Suspend, n),
        status(2, utc(2024, 1, 2, 15, 1, 0), StatusAction::Quoting, na),
        // IJKL: no bars, so nowhere to attach.
        status(3, utc(2024, 1, 2, 15, 0, 0), StatusAction::Halt, n),
    ];
    write_dbn(
        &tmp.path().join("status.dbn"),
        &metadata(Schema::Status, &syms),
        &events,
    );
    // A second-bar file in the same folder is skipped, not an error.
    write_dbn(
        &tmp.path().join("bars.ohlcv-1s.dbn"),
        &metadata(Schema::Ohlcv1S, &syms),
        &minute_bars(1, utc(2024, 1, 2, 14, 30, 0), 1)
            .into_iter()
            .map(|mut b| {
                b.hd.rtype = rtype::OHLCV_1S;
                b
            })
            .collect::<Vec<_>>(),
    );

    let src = DbnSource::new(tmp.path(), Selection::all(BarSize::M1)).unwrap();
    assert_eq!(src.dates().unwrap(), vec![d(2024, 1, 2), d(2024, 1, 3)]);
    let jan2 = src.load_date(d(2024, 1, 2)).unwrap();
    let jan3 = src.load_date(d(2024, 1, 3)).unwrap();
    let names: Vec<&str> = jan2.iter().map(|r| r.symbol.as_str()).collect();
    assert_eq!(names, ["ABCD", "EFGH"]);
    let (abcd2, efgh2) = (&jan2[0], &jan2[1]);
    assert_eq!(abcd2.len(), 3);
    assert_eq!(efgh2.len(), 2); // the undefined-price bar is gone
    assert_eq!(abcd2.open[1], Price(10_010_000_000));
    assert_eq!(abcd2.volume, vec![100, 101, 102]);

    let h = |a: i64, b: i64| Halt {
        start_ns: a,
        end_ns: b,
    };
    let jan3_midnight_ny = utc(2024, 1, 3, 5, 0, 0);
    assert_eq!(
        abcd2.halts,
        vec![
            h(utc(2024, 1, 2, 15, 0, 0), utc(2024, 1, 2, 15, 5, 0)),
            h(utc(2024, 1, 2, 16, 0, 0), utc(2024, 1, 2, 16, 5, 0)),
            h(utc(2024, 1, 2, 20, 30, 0), jan3_midnight_ny),
        ]
    );
    assert_eq!(
        efgh2.halts,
        vec![h(utc(2024, 1, 2, 15, 0, 0), jan3_midnight_ny)]
    );
    assert_eq!(jan3.len(), 1);
    assert_eq!(
        jan3[0].halts,
        vec![h(jan3_midnight_ny, utc(2024, 1, 3, 14, 45, 0))]
    );
    assert!(abcd2.is_halted(utc(2024, 1, 2, 15, 4, 0)));
    assert!(!abcd2.is_halted(utc(2024, 1, 2, 15, 5, 0)));
    // Loading a date again decodes its files again, with the same result.
    assert_eq!(src.load_date(d(2024, 1, 2)).unwrap(), jan2);
    assert_eq!(src.load_date(d(2024, 1, 3)).unwrap(), jan3);

    // Asking the folder for an absent bar size names the ones it has.
    let err = DbnSource::new(tmp.path(), Selection::all(BarSize::H1))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ohlcv-1s") && err.contains("ohlcv-1m") && err.contains("--bar 1s"),
        "{err}"
    );
}
