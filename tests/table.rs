//! The table sources (Polygon flat files, generic CSV, Parquet) against small files written
//! here with hand-computed expectations: exact prices, volumes, UTC bar starts and the
//! New York date grouping across the 2024 spring DST change, and errors that name the file,
//! row and column.

use chrono::NaiveDate;
use flate2::{Compression, write::GzEncoder};
use polars::prelude::{
    Column, DataFrame, DataType, NamedFrom, ParquetWriter, Series, TimeUnit as PlTimeUnit,
};
use sim_train::Error;
use sim_train::bars::{BarSize, Price, RawDay};
use sim_train::ingest::table::{TableSource, TableSpec, TimeIs, TimeUnit};
use sim_train::ingest::{Selection, Source};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn write_gz(path: &Path, text: &str) {
    let mut enc = GzEncoder::new(std::fs::File::create(path).unwrap(), Compression::default());
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap();
}

fn all_days(src: &impl Source) -> Vec<RawDay> {
    let mut out = Vec::new();
    for date in src.dates().unwrap() {
        out.extend(src.load_date(date).unwrap());
    }
    out
}

/// Bars keyed for comparison across sources (the origin differs).
fn without_origin(mut days: Vec<RawDay>) -> Vec<RawDay> {
    for day in &mut days {
        day.origin.clear();
    }
    days
}

fn input_error<T: std::fmt::Debug>(result: sim_train::Result<T>, file: &Path) -> String {
    match result {
        Err(Error::Input { path, detail }) => {
            assert_eq!(path, file, "{detail}");
            assert!(!detail.contains('\n'), "{detail}");
            detail
        }
        other => panic!(
            "expected an input error for {}, got {other:?}",
            file.display()
        ),
    }
}

// Bar starts (UTC ns), computed by hand. 2024-03-10 is the spring-forward Sunday: Friday
// 03-08 is EST (UTC-5), Monday 03-11 is EDT (UTC-4).
/// 2024-03-08 09:30 EST = 14:30 UTC.
const FRI_0930: i64 = 1_709_908_200_000_000_000;
/// 2024-03-08 09:31 EST.
const FRI_0931: i64 = 1_709_908_260_000_000_000;
/// 2024-03-08 19:59 EST = 2024-03-09 00:59 UTC: the UTC date is the next day.
const FRI_1959: i64 = 1_709_945_940_000_000_000;
/// 2024-03-11 00:30 EDT = 04:30 UTC: on 03-10 if read with the winter offset.
const MON_0030: i64 = 1_710_131_400_000_000_000;
/// 2024-03-11 04:00 EDT = 08:00 UTC.
const MON_0400: i64 = 1_710_144_000_000_000_000;
/// 2024-03-11 09:30 EDT = 13:30 UTC.
const MON_0930: i64 = 1_710_163_800_000_000_000;
/// 2024-03-11 09:31 EDT.
const MON_0931: i64 = 1_710_163_860_000_000_000;

const POLYGON_HEADER: &str = "ticker,volume,open,close,high,low,window_start,transactions\n";

fn polygon_friday() -> String {
    format!(
        "{POLYGON_HEADER}\
         AAPL,1000,170.5,170.75,170.8,170.4,{FRI_0930},12\n\
         AAPL,500.4,170.75,170.7,170.9,170.6,{FRI_0931},7\n\
         MSFT,2000,405.1,405.2,405.3,405,{FRI_0930},20\n\
         AAPL,300,171.01,171.02,171.03,171,{FRI_1959},3\n"
    )
}

fn polygon_monday() -> String {
    format!(
        "{POLYGON_HEADER}\
         MSFT,100,410,410,410,410,{MON_0030},1\n\
         MSFT,250,410.5,410.25,410.5,410.25,{MON_0400},2\n\
         AAPL,1500,172,172.5,172.6,171.9,{MON_0930},15\n"
    )
}

fn check_polygon_days(days: &[RawDay]) {
    let keys: Vec<(&str, NaiveDate)> = days.iter().map(|r| (r.symbol.as_str(), r.date)).collect();
    assert_eq!(
        keys,
        [
            ("AAPL", d(2024, 3, 8)),
            ("MSFT", d(2024, 3, 8)),
            ("AAPL", d(2024, 3, 11)),
            ("MSFT", d(2024, 3, 11))
        ]
    );
    let aapl = &days[0];
    assert_eq!(aapl.bar, Some(BarSize::M1));
    assert_eq!(aapl.ts_ns, vec![FRI_0930, FRI_0931, FRI_1959]);
    assert_eq!(
        aapl.open,
        vec![
            Price(170_500_000_000),
            Price(170_750_000_000),
            Price(171_010_000_000)
        ]
    );
    assert_eq!(
        aapl.high,
        vec![
            Price(170_800_000_000),
            Price(170_900_000_000),
            Price(171_030_000_000)
        ]
    );
    assert_eq!(
        aapl.low,
        vec![
            Price(170_400_000_000),
            Price(170_600_000_000),
            Price(171_000_000_000)
        ]
    );
    assert_eq!(
        aapl.close,
        vec![
            Price(170_750_000_000),
            Price(170_700_000_000),
            Price(171_020_000_000)
        ]
    );
    assert_eq!(aapl.volume, vec![1000, 500, 300]); // 500.4 shares round to 500
    assert_eq!(aapl.transactions, Some(vec![12, 7, 3]));
    assert_eq!(aapl.vwap, None);
    assert_eq!(aapl.quotes, None);
    let msft = &days[1];
    assert_eq!(msft.ts_ns, vec![FRI_0930]);
    assert_eq!(msft.close, vec![Price(405_200_000_000)]);
    assert_eq!(msft.low, vec![Price(405_000_000_000)]);
    assert_eq!(msft.volume, vec![2000]);
    assert_eq!(days[2].ts_ns, vec![MON_0930]);
    assert_eq!(days[2].high, vec![Price(172_600_000_000)]);
    let msft_mon = &days[3];
    assert_eq!(msft_mon.ts_ns, vec![MON_0030, MON_0400]);
    assert_eq!(
        msft_mon.close,
        vec![Price(410_000_000_000), Price(410_250_000_000)]
    );
    assert_eq!(msft_mon.volume, vec![100, 250]);
    assert_eq!(msft_mon.transactions, Some(vec![1, 2]));
}

#[test]
fn polygon_day_files_plain_and_gzipped() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("us_stocks_sip/minute_aggs_v1/2024/03");
    std::fs::create_dir_all(&dir).unwrap();
    write(&dir.join("2024-03-08.csv"), &polygon_friday());
    write_gz(&dir.join("2024-03-11.csv.gz"), &polygon_monday());
    write(&dir.join("README.txt"), "not a table");

    let src = TableSource::polygon(tmp.path(), Selection::all(BarSize::M1)).unwrap();
    assert_eq!(src.name(), "polygon");
    assert_eq!(src.dates().unwrap(), vec![d(2024, 3, 8), d(2024, 3, 11)]);
    let days = all_days(&src);
    check_polygon_days(&days);
    assert!(days[0].origin.ends_with("2024-03-08.csv"));
    assert!(days[3].origin.ends_with("2024-03-11.csv.gz"));
    assert_eq!(src.load_date(d(2024, 3, 9)).unwrap(), vec![]);

    // A file not named by date (both days in one gzipped file) gives the same bars.
    let other = tmp.path().join("export");
    std::fs::create_dir(&other).unwrap();
    let both = format!(
        "{}{}",
        polygon_friday(),
        &polygon_monday()[POLYGON_HEADER.len()..]
    );
    write_gz(&other.join("minute_aggs.csv.gz"), &both);
    let single = TableSource::polygon(
        &other.join("minute_aggs.csv.gz"),
        Selection::all(BarSize::M1),
    )
    .unwrap();
    assert_eq!(without_origin(all_days(&single)), without_origin(days));
}

#[test]
fn polygon_selection_filters_symbols_and_dates() {
    let tmp = tempfile::tempdir().unwrap();
    write(&tmp.path().join("2024-03-08.csv"), &polygon_friday());
    write_gz(&tmp.path().join("2024-03-11.csv.gz"), &polygon_monday());
    let mut sel = Selection::all(BarSize::M1);
    sel.symbols = Some(BTreeSet::from(["MSFT".to_string()]));
    sel.from = Some(d(2024, 3, 9));
    let src = TableSource::polygon(tmp.path(), sel).unwrap();
    assert_eq!(src.dates().unwrap(), vec![d(2024, 3, 11)]);
    let days = src.load_date(d(2024, 3, 11)).unwrap();
    assert_eq!(days.len(), 1);
    assert_eq!(
        (days[0].symbol.as_str(), days[0].ts_ns.as_slice()),
        ("MSFT", &[MON_0030, MON_0400][..])
    );
}

#[test]
fn a_polygon_file_holding_another_day_than_its_name_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("2024-03-08.csv");
    write(&file, &polygon_monday());
    let src = TableSource::polygon(tmp.path(), Selection::all(BarSize::M1)).unwrap();
    let detail = input_error(src.load_date(d(2024, 3, 8)), &file);
    assert!(
        detail.contains("2024-03-11") && detail.contains("row 1"),
        "{detail}"
    );
}

/// One symbol per file (named by the file), ISO local times marking the bar's *end*,
/// prices in 1/10000 dollars.
fn generic_spec() -> TableSpec {
    TableSpec {
        time_column: "Date Time".into(),
        time_unit: TimeUnit::Iso,
        time_is: TimeIs::End,
        open: "O".into(),
        high: "H".into(),
        low: "L".into(),
        close: "C".into(),
        volume: "Vol".into(),
        vwap: Some("VWAP".into()),
        bid: Some("Bid".into()),
        ask: Some("Ask".into()),
        price_scale: 0.0001,
        ..TableSpec::default()
    }
}

const GENERIC_CSV: &str = "Date Time,O,H,L,C,Vol,VWAP,Bid,Ask,Note\n\
    2024-03-08 09:31:00,5120000,5125000,5119000,5121500,1200,5122000,5121400,5121600,x\n\
    2024-03-08 09:32:00,5121500,5121500,5120000,5120000,800,5120800,5119900,5120100,y\n\
    2024-03-11 09:31:00,5200000,5200000,5200000,5200000,10,5200000,5199900,5200100,z\n\
    2024-03-11T09:32:00-04:00,5200100,5200200,5200000,5200200,20,5200150,5200100,5200300,w\n";

fn check_generic_days(days: &[RawDay]) {
    assert_eq!(days.len(), 2);
    let (fri, mon) = (&days[0], &days[1]);
    assert_eq!((fri.symbol.as_str(), fri.date), ("SPY", d(2024, 3, 8)));
    assert_eq!((mon.symbol.as_str(), mon.date), ("SPY", d(2024, 3, 11)));
    // Stamped at the end (09:31 local), stored at the start (09:30 local, in UTC).
    assert_eq!(fri.ts_ns, vec![FRI_0930, FRI_0931]);
    assert_eq!(mon.ts_ns, vec![MON_0930, MON_0931]);
    assert_eq!(
        fri.open,
        vec![Price(512_000_000_000), Price(512_150_000_000)]
    );
    assert_eq!(
        fri.high,
        vec![Price(512_500_000_000), Price(512_150_000_000)]
    );
    assert_eq!(
        fri.low,
        vec![Price(511_900_000_000), Price(512_000_000_000)]
    );
    assert_eq!(
        fri.close,
        vec![Price(512_150_000_000), Price(512_000_000_000)]
    );
    assert_eq!(fri.volume, vec![1200, 800]);
    assert_eq!(
        fri.vwap,
        Some(vec![Price(512_200_000_000), Price(512_080_000_000)])
    );
    let q = fri.quotes.as_ref().unwrap();
    assert_eq!(q.bid, vec![Price(512_140_000_000), Price(511_990_000_000)]);
    assert_eq!(q.ask, vec![Price(512_160_000_000), Price(512_010_000_000)]);
    assert_eq!(
        (q.bid_size.as_slice(), q.ask_size.as_slice()),
        (&[0, 0][..], &[0, 0][..])
    );
    assert_eq!(
        mon.close,
        vec![Price(520_000_000_000), Price(520_020_000_000)]
    );
    assert_eq!(mon.transactions, None);
}

#[test]
fn generic_csv_with_local_iso_end_times() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("spy.csv");
    write(&file, GENERIC_CSV);
    let src = TableSource::csv(&file, Selection::all(BarSize::M1), generic_spec()).unwrap();
    assert_eq!(src.name(), "csv");
    assert_eq!(src.dates().unwrap(), vec![d(2024, 3, 8), d(2024, 3, 11)]);
    let days = all_days(&src);
    check_generic_days(&days);
    // Loading a date again reads the file again, with the same result.
    assert_eq!(src.load_date(d(2024, 3, 8)).unwrap(), days[..1]);

    // The same file read as bar starts: every bar one minute later.
    let spec = TableSpec {
        time_is: TimeIs::Start,
        ..generic_spec()
    };
    let starts = all_days(&TableSource::csv(&file, Selection::all(BarSize::M1), spec).unwrap());
    assert_eq!(starts[0].ts_ns, vec![FRI_0931, FRI_0931 + 60_000_000_000]);
}

#[test]
fn parquet_written_by_polars_reads_like_the_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("csv/spy.csv");
    std::fs::create_dir(tmp.path().join("csv")).unwrap();
    write(&csv, GENERIC_CSV);
    let from_csv =
        all_days(&TableSource::csv(&csv, Selection::all(BarSize::M1), generic_spec()).unwrap());

    let times = [
        "2024-03-08 09:31:00",
        "2024-03-08 09:32:00",
        "2024-03-11 09:31:00",
        "2024-03-11T09:32:00-04:00",
    ];
    let col = |name: &str, v: [i64; 4]| Column::new(name.into(), v);
    let mut df = DataFrame::new_infer_height(vec![
        Column::new("Date Time".into(), times),
        col("O", [5120000, 5121500, 5200000, 5200100]),
        col("H", [5125000, 5121500, 5200000, 5200200]),
        col("L", [5119000, 5120000, 5200000, 5200000]),
        Column::new("C".into(), [5121500.0, 5120000.0, 5200000.0, 5200200.0]),
        col("Vol", [1200, 800, 10, 20]),
        col("VWAP", [5122000, 5120800, 5200000, 5200150]),
        col("Bid", [5121400, 5119900, 5199900, 5200100]),
        col("Ask", [5121600, 5120100, 5200100, 5200300]),
    ])
    .unwrap();
    let dir = tmp.path().join("pq");
    std::fs::create_dir(&dir).unwrap();
    ParquetWriter::new(std::fs::File::create(dir.join("spy.parquet")).unwrap())
        .finish(&mut df)
        .unwrap();
    let src = TableSource::parquet(&dir, Selection::all(BarSize::M1), generic_spec()).unwrap();
    assert_eq!(src.name(), "parquet");
    let from_parquet = all_days(&src);
    check_generic_days(&from_parquet);
    assert_eq!(
        without_origin(from_parquet),
        without_origin(from_csv.clone())
    );

    // A naive datetime column (milliseconds, wall-clock New York) instead of text.
    let local_ms = [
        1_709_890_260_000i64, // 2024-03-08 09:31 as if UTC
        1_709_890_320_000,
        1_710_149_460_000, // 2024-03-11 09:31 as if UTC
        1_710_149_520_000,
    ];
    let stamps = Series::new("Date Time".into(), local_ms)
        .cast(&DataType::Datetime(PlTimeUnit::Milliseconds, None))
        .unwrap();
    df.replace("Date Time", stamps.into()).unwrap();
    let dated = tmp.path().join("spy_dt.parquet");
    ParquetWriter::new(std::fs::File::create(&dated).unwrap())
        .finish(&mut df)
        .unwrap();
    let mut days = all_days(
        &TableSource::parquet(&dated, Selection::all(BarSize::M1), generic_spec()).unwrap(),
    );
    for day in &mut days {
        assert_eq!(day.symbol, "SPY_DT");
        day.symbol = "SPY".into();
    }
    assert_eq!(without_origin(days), without_origin(from_csv));
}

#[test]
fn epoch_seconds_with_a_symbol_column_and_daily_bars() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("daily.csv");
    // Daily bars stamped at 00:00 UTC (Databento style) and at New York midnight.
    write(
        &file,
        "sym,timestamp,open,high,low,close,volume\n\
         ibm,1709856000,190,191,189,190.5,1000\n\
         IBM,1710129600,191,192,190,191.5,2000\n",
    );
    let spec = TableSpec {
        symbol_column: Some("sym".into()),
        ..TableSpec::default()
    };
    let src = TableSource::csv(&file, Selection::all(BarSize::D1), spec).unwrap();
    assert_eq!(src.dates().unwrap(), vec![d(2024, 3, 8), d(2024, 3, 11)]);
    let days = all_days(&src);
    assert_eq!(days[0].symbol, "IBM");
    // Re-stamped at New York midnight: 05:00 UTC in winter, 04:00 UTC in summer.
    assert_eq!(days[0].ts_ns, vec![1_709_874_000_000_000_000]);
    assert_eq!(days[1].ts_ns, vec![1_710_129_600_000_000_000]);
    assert_eq!(days[1].close, vec![Price(191_500_000_000)]);
}

#[test]
fn missing_columns_name_the_file_and_the_setting() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("spy.csv");
    write(
        &file,
        "Date Time,O,H,L,Close,Vol\n2024-03-08 09:31:00,1,1,1,1,1\n",
    );
    let spec = TableSpec {
        vwap: None,
        bid: None,
        ask: None,
        ..generic_spec()
    };
    let detail = input_error(
        TableSource::csv(&file, Selection::all(BarSize::M1), spec.clone()),
        &file,
    );
    assert_eq!(detail, "no column 'C' (set ingest.table.close)");

    let pq = tmp.path().join("spy.parquet");
    let mut df = DataFrame::new_infer_height(vec![Column::new(
        "Date Time".into(),
        ["2024-03-08 09:31:00"],
    )])
    .unwrap();
    ParquetWriter::new(std::fs::File::create(&pq).unwrap())
        .finish(&mut df)
        .unwrap();
    let detail = input_error(
        TableSource::parquet(&pq, Selection::all(BarSize::M1), spec),
        &pq,
    );
    assert_eq!(detail, "no column 'O' (set ingest.table.open)");

    let poly = tmp.path().join("2024-03-08.csv.gz");
    write_gz(
        &poly,
        "ticker,volume,open,close,high,low,window_start\nAAPL,1,1,1,1,1,1\n",
    );
    let src = TableSource::polygon(&poly, Selection::all(BarSize::M1)).unwrap();
    let detail = input_error(src.load_date(d(2024, 3, 8)), &poly);
    assert!(
        detail.contains("'transactions'") && detail.contains("Polygon"),
        "{detail}"
    );
}

#[test]
fn bad_values_name_the_file_row_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let sel = || Selection::all(BarSize::M1);
    let polygon_row = |name: &str, row: &str| {
        let file = tmp.path().join(name);
        write(
            &file,
            &format!("{POLYGON_HEADER}AAPL,1,1,1,1,1,{FRI_0930},1\n{row}\n"),
        );
        file
    };

    let file = polygon_row("close.csv", &format!("AAPL,1,1,abc,1,1,{FRI_0931},1"));
    let detail = input_error(TableSource::polygon(&file, sel()), &file);
    assert!(
        detail.contains("row 2") && detail.contains("'close'") && detail.contains("abc"),
        "{detail}"
    );

    let file = polygon_row("negative.csv", &format!("AAPL,-5,1,1,1,1,{FRI_0931},1"));
    let detail = input_error(TableSource::polygon(&file, sel()), &file);
    assert!(
        detail.contains("row 2") && detail.contains("'volume'") && detail.contains("-5"),
        "{detail}"
    );

    let file = polygon_row("nan.csv", &format!("AAPL,NaN,1,1,1,1,{FRI_0931},1"));
    let detail = input_error(TableSource::polygon(&file, sel()), &file);
    assert!(
        detail.contains("row 2") && detail.contains("'volume'") && detail.contains("NaN"),
        "{detail}"
    );

    let file = polygon_row("empty.csv", &format!("AAPL,1,1,1,,1,{FRI_0931},1"));
    let detail = input_error(TableSource::polygon(&file, sel()), &file);
    assert!(
        detail.contains("row 2") && detail.contains("'high'"),
        "{detail}"
    );

    let file = polygon_row("time.csv", "AAPL,1,1,1,1,1,2024-03-08 09:31:00,1");
    let detail = input_error(TableSource::polygon(&file, sel()), &file);
    assert!(
        detail.contains("row 2") && detail.contains("'window_start'"),
        "{detail}"
    );

    // Local times inside the spring-forward gap do not exist.
    let file = tmp.path().join("gap.csv");
    write(
        &file,
        "timestamp,open,high,low,close,volume\n2024-03-10 02:30:00,1,1,1,1,1\n",
    );
    let spec = TableSpec {
        time_unit: TimeUnit::Iso,
        ..TableSpec::default()
    };
    let detail = input_error(TableSource::csv(&file, sel(), spec.clone()), &file);
    assert!(
        detail.contains("row 1") && detail.contains("2024-03-10 02:30:00"),
        "{detail}"
    );

    let file = tmp.path().join("garbled.csv");
    write(
        &file,
        "timestamp,open,high,low,close,volume\n2024-03-08 9:30,1,1,1,1,1\n",
    );
    let detail = input_error(TableSource::csv(&file, sel(), spec), &file);
    assert!(
        detail.contains("row 1") && detail.contains("'timestamp'"),
        "{detail}"
    );
}

#[test]
fn bad_settings_are_config_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("x.csv");
    write(&file, "timestamp,open,high,low,close,volume\n");
    let spec = TableSpec {
        time_zone: "America/New_Yrok".into(),
        ..TableSpec::default()
    };
    match TableSource::csv(&file, Selection::all(BarSize::M1), spec) {
        Err(Error::Config(msg)) => {
            assert!(
                msg.contains("ingest.table.time_zone") && msg.contains("America/New_Yrok"),
                "{msg}"
            )
        }
        other => panic!("expected a config error, got {other:?}"),
    }
    let spec = TableSpec {
        bid: Some("bid".into()),
        ..TableSpec::default()
    };
    assert!(matches!(
        TableSource::csv(&file, Selection::all(BarSize::M1), spec),
        Err(Error::Config(m)) if m.contains("ingest.table.bid")
    ));
}

#[test]
fn spec_reads_from_toml_and_rejects_unknown_keys() {
    let spec: TableSpec = toml::from_str(
        "time_column = \"ts\"\ntime_unit = \"ms\"\ntime_is = \"end\"\nsymbol_column = \"ticker\"\nprice_scale = 0.01\n",
    )
    .unwrap();
    assert_eq!(spec.time_column, "ts");
    assert_eq!(spec.time_unit, TimeUnit::Ms);
    assert_eq!(spec.time_is, TimeIs::End);
    assert_eq!(spec.symbol_column.as_deref(), Some("ticker"));
    assert_eq!(spec.close, "close");
    assert_eq!(spec.time_zone, "America/New_York");
    assert!(toml::from_str::<TableSpec>("closing = \"c\"\n").is_err());
    assert!(toml::from_str::<TableSpec>("time_unit = \"minutes\"\n").is_err());
    assert_eq!(
        toml::from_str::<TableSpec>("").unwrap(),
        TableSpec::default()
    );
}
