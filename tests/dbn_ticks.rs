//! Databento trades and quotes (`trades`, `tbbo`, `mbp-1`, `bbo-1s`, `bbo-1m`) into the
//! caches' quote and trade columns, checked against the real samples' raw records as the
//! `dbn` crate's plain decoder reads them, against Databento's own OHLCV bars, and against
//! values worked out by hand from the records printed below.
//!
//! NVDA, XNAS.ITCH, 2020-12-28 (pre-market; `tbbo`, UTC):
//!
//! | ts_event | price | size | bid / ask before | quote rule | tick rule |
//! |---|---|---|---|---|---|
//! | 09:05:12.5767 | 521.00 | 36 | 520.00 / 521.00 | buy (above the mid 520.50) | none yet |
//! | 09:05:24.6851 | 521.00 | 4 | 520.00 / 521.00 | buy | none yet |
//! | 09:05:36.2167 | 521.00 | 1 | 521.00 / 535.50 | sell (below 528.25) | none yet |
//! | 09:08:35.9384 | 521.01 | 1 | 521.00 / 522.00 | sell (below 521.50) | buy (uptick) |
//!
//! QQQ, EQUS.MINI, 2023-03-28 (`tbbo`): 11:08:14.5597 307.83 × 900 at bid 307.83 / ask
//! 307.89 (sell), 11:08:14.5617 307.80 × 900 at 307.80 / 307.86 (sell), 11:10:31.1240
//! 307.97 × 700 and × 200 at 307.89 / 307.97 (buys).

mod common;

use dbn::decode::DecodeRecord;
use dbn::{Mbp1Msg, OhlcvMsg, TradeMsg};
use sim_train::bars::{BarSize, Price, RawDay};
use sim_train::ingest::dbn::DbnSource;
use sim_train::ingest::{Selection, Source};
use std::path::{Path, PathBuf};

fn data_dir() -> Option<PathBuf> {
    common::databento_dir()
}

fn one_day(input: &Path, bar: BarSize) -> RawDay {
    let src = DbnSource::new(input, Selection::all(bar)).unwrap_or_else(|e| panic!("{e}"));
    let dates = src.dates().unwrap();
    assert_eq!(dates.len(), 1, "{dates:?}");
    let mut days = src.load_date(dates[0]).unwrap();
    assert_eq!(days.len(), 1);
    days.remove(0)
}

fn records<T: dbn::HasRType + dbn::Record<Header = dbn::RecordHeader> + Clone>(
    path: &Path,
) -> Vec<T> {
    let mut dec = dbn::decode::dbn::Decoder::from_zstd_file(path).unwrap();
    let mut out = Vec::new();
    while let Some(r) = dec.decode_record::<T>().unwrap() {
        out.push(r.clone());
    }
    out
}

fn px(d: f64) -> Price {
    Price::from_dollars(d)
}

/// Bars built from trade records alone are Databento's own OHLCV bars, at one second and
/// one minute, wherever the sample's trades are all of the bar's trades (its volume is the
/// vendor bar's: the samples hold the first four trades of the day only).
#[test]
fn trades_alone_make_the_vendors_own_bars() {
    let Some(dir) = data_dir() else { return };
    for (feed, bar, schema, complete) in [
        ("XNAS.ITCH", BarSize::S1, "ohlcv-1s", 4),
        ("XNAS.ITCH", BarSize::M1, "ohlcv-1m", 2),
        ("EQUS.MINI", BarSize::S1, "ohlcv-1s", 2),
        ("EQUS.MINI", BarSize::M1, "ohlcv-1m", 1),
    ] {
        let day = one_day(&dir.join(feed).join("test_data.trades.dbn.zst"), bar);
        let vendor: Vec<OhlcvMsg> =
            records(&dir.join(feed).join(format!("test_data.{schema}.dbn.zst")));
        let mut compared = 0;
        for i in 0..day.len() {
            let v = vendor
                .iter()
                .find(|v| v.hd.ts_event as i64 == day.ts_ns[i])
                .unwrap_or_else(|| panic!("{feed} {schema}: no vendor bar at {}", day.ts_ns[i]));
            assert!(day.volume[i] <= v.volume, "{feed} {schema} bar {i}");
            if day.volume[i] == v.volume {
                let got = [day.open[i].0, day.high[i].0, day.low[i].0, day.close[i].0];
                assert_eq!(
                    got,
                    [v.open, v.high, v.low, v.close],
                    "{feed} {schema} bar {i}"
                );
                compared += 1;
            }
        }
        assert_eq!(compared, complete, "{feed} {schema}: bars compared");
    }
    // NVDA's four trades fall in four seconds and two minutes (36 + 4 + 1 = 41, then 1).
    let day = one_day(&dir.join("XNAS.ITCH/test_data.trades.dbn.zst"), BarSize::M1);
    assert_eq!(day.volume, vec![41, 1]);
}

/// `tbbo`: each trade classified by the quote rule against the book just before it; the
/// quote at each bar's close is the last one received by then.
#[test]
fn tbbo_trades_are_classified_by_the_quote_before_them() {
    let Some(dir) = data_dir() else { return };
    let path = dir.join("XNAS.ITCH/test_data.tbbo.dbn.zst");
    let day = one_day(&path, BarSize::S1);
    assert_eq!(day.len(), 4);
    assert_eq!(day.transactions, Some(vec![1, 1, 1, 1]));
    let flow = day.flow.clone().unwrap();
    assert_eq!(flow.buy_volume, vec![36, 4, 0, 0]);
    assert_eq!(flow.sell_volume, vec![0, 0, 1, 1]);
    assert_eq!(
        day.vwap,
        Some(vec![px(521.0), px(521.0), px(521.0), px(521.01)])
    );
    let q = day.quotes.clone().unwrap();
    assert_eq!(q.bid, vec![px(520.0), px(520.0), px(521.0), px(521.0)]);
    assert_eq!(q.ask, vec![px(521.0), px(521.0), px(535.5), px(522.0)]);
    assert_eq!(q.bid_size, vec![100, 100, 6, 23]);
    assert_eq!(q.ask_size, vec![40, 4, 4, 1]);
    // The same from the raw records: each bar holds one trade, and its closing quote is
    // that trade's book.
    let raw: Vec<Mbp1Msg> = records(&path);
    assert_eq!(raw.len(), 4);
    for (i, r) in raw.iter().enumerate() {
        assert_eq!(day.vwap.as_ref().unwrap()[i].0, r.price);
        assert_eq!(q.bid[i].0, r.levels[0].bid_px);
        assert_eq!(q.ask[i].0, r.levels[0].ask_px);
        assert_eq!(q.bid_size[i], r.levels[0].bid_sz as u64);
        let mid2 = r.levels[0].bid_px as i128 + r.levels[0].ask_px as i128;
        let buy = 2 * r.price as i128 > mid2;
        assert_eq!(flow.buy_volume[i], if buy { r.size as u64 } else { 0 });
    }
}

/// `trades` carry no quote: the tick rule, which classifies nothing until the price moves.
#[test]
fn trades_without_quotes_fall_back_to_the_tick_rule() {
    let Some(dir) = data_dir() else { return };
    let day = one_day(&dir.join("XNAS.ITCH/test_data.trades.dbn.zst"), BarSize::S1);
    let flow = day.flow.clone().unwrap();
    assert_eq!(flow.buy_volume, vec![0, 0, 0, 1]);
    assert_eq!(flow.sell_volume, vec![0, 0, 0, 0]);
    assert_eq!(day.transactions, Some(vec![1, 1, 1, 1]));
    assert!(day.quotes.is_none());
    let raw: Vec<TradeMsg> = records(&dir.join("XNAS.ITCH/test_data.trades.dbn.zst"));
    let sizes: u64 = raw.iter().map(|r| r.size as u64).sum();
    assert_eq!(day.volume.iter().sum::<u64>(), sizes);
}

/// A sample folder: the OHLCV file gives the bars; `tbbo` (not `trades` or `mbp-1`, which
/// hold the same trades) the trade columns; `mbp-1`, `bbo-1s`, `bbo-1m` and `tbbo` the
/// quotes, merged by receive time.
#[test]
fn a_folder_merges_ohlcv_bars_with_trades_and_every_quote_schema() {
    let Some(dir) = data_dir() else { return };
    let folder = dir.join("EQUS.MINI");
    let day = one_day(&folder, BarSize::S1);
    let vendor: Vec<OhlcvMsg> = records(&folder.join("test_data.ohlcv-1s.dbn.zst"));
    let ts: Vec<i64> = vendor.iter().map(|v| v.hd.ts_event as i64).collect();
    assert_eq!(day.ts_ns, ts, "the bars are the OHLCV file's");
    assert_eq!(day.volume, vec![1800, 900, 162, 99]);
    // 11:08:14: two sells of 900 at 307.83 and 307.80; 11:10:31: buys of 700 and 200; the
    // last two bars have no trade record in the sample.
    assert_eq!(day.transactions, Some(vec![2, 2, 0, 0]));
    let flow = day.flow.clone().unwrap();
    assert_eq!(flow.buy_volume, vec![0, 900, 0, 0]);
    assert_eq!(flow.sell_volume, vec![1800, 0, 0, 0]);
    assert_eq!(
        day.vwap,
        Some(vec![px(307.815), px(307.97), Price(0), Price(0)])
    );
    // Quotes: mbp-1 at 11:00:00 (307.89 / 307.94), bbo-1s at 11:00:01–03 (one-sided),
    // bbo-1m at 11:02 and 11:03 (307.93 / 308.01), then tbbo's books at the trades.
    let q = day.quotes.clone().unwrap();
    assert_eq!(q.bid, vec![px(307.80), px(307.89), px(307.89), px(307.89)]);
    assert_eq!(q.ask, vec![px(307.86), px(307.97), px(307.97), px(307.97)]);
    assert_eq!(q.bid_size, vec![900, 1500, 1500, 1500]);
    assert_eq!(q.ask_size, vec![100, 1500, 1500, 1500]);

    // Quote files alone: the book at each bar's close, one-sided books kept as zeros.
    let quotes_only = DbnSource::new(
        &folder.join("test_data.bbo-1s.dbn.zst"),
        Selection::all(BarSize::S1),
    );
    let e = quotes_only.unwrap_err().to_string();
    assert!(e.contains("quote files alone make no bars"), "{e}");
}

/// Through the cache: the columns are written, read back, and the environments' book at
/// each bar's open is the previous bar's closing quote (the costs the rules charge).
#[test]
fn the_cache_keeps_the_quote_and_trade_columns_and_the_environments_trade_on_the_book() {
    let Some(dir) = data_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let req = sim_train::build::BuildRequest {
        source: sim_train::ingest::SourceKind::Dbn,
        input: Some(dir.join("EQUS.MINI")),
        cache_dir: tmp.path().join("cache"),
        symbols: None,
        from: None,
        to: None,
        bar: BarSize::S1,
        adjust: sim_train::adjust::AdjustMode::None,
    };
    let r = sim_train::config::load(None, &["env.session=\"extended\"".into()]).unwrap();
    sim_train::build::build_cache(&req, &r, false).unwrap_or_else(|e| panic!("{e}"));
    let catalog = sim_train::cache::Catalog::load_existing(&req.cache_dir).unwrap();
    let e = catalog.entries.values().next().unwrap();
    let cached = sim_train::cache::DayCache::open(req.cache_dir.join(&e.file)).unwrap();
    assert_eq!(cached.buy_volume().unwrap(), &[0, 900, 0, 0]);
    assert_eq!(cached.sell_volume().unwrap(), &[1800, 0, 0, 0]);
    assert_eq!(cached.transactions().unwrap(), &[2, 2, 0, 0]);
    assert_eq!(cached.bid().unwrap()[0], px(307.80));
    let params = sim_train::env::EnvParams::from_config(&r.config.env).unwrap();
    let day = sim_train::env::DayData::from_cache(&cached, &params);
    assert!(
        !day.bars[0].has_quote(),
        "no book before the first bar's close"
    );
    assert!(day.bars[1].has_quote());
    assert_eq!((day.bars[1].bid, day.bars[1].ask), (307.80, 307.86));
    assert_eq!((day.bars[2].bid, day.bars[2].ask), (307.89, 307.97));
    // An order filling at bar 1's open pays the quote's half-spread around its mid, not
    // the configured fraction of the open.
    let (mid, half) = sim_train::env::exec::open_basis(&params, &day.bars[1]);
    assert!(
        (mid - 307.83).abs() < 1e-9 && (half - 0.03).abs() < 1e-9,
        "{mid} {half}"
    );
    let (_, unquoted) = sim_train::env::exec::open_basis(&params, &day.bars[0]);
    assert!((unquoted - day.bars[0].open * params.half_spread_frac).abs() < 1e-12);

    // Features v2 from these columns, by hand: sellers initiated all of bar 0's volume
    // and buyers all of bar 1's; bars 2 and 3 traded nothing (neutral 0). Bar 0's closing
    // quote 307.80 / 307.86 is 0.06 / 307.83 · 10⁴ bps wide.
    let f = |name: &str| cached.feature_by_name(name).unwrap().to_vec();
    assert_eq!(f("trade_imbalance"), [-1.0, 1.0, 0.0, 0.0]);
    let spread = f64::from(f("spread_bps")[0]);
    assert!((spread - 0.06 / 307.83 * 1e4).abs() < 1e-4, "{spread}");
}
