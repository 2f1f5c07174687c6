//! Databento DBN files (`.dbn`, `.dbn.zst`) as a [`Source`], decoded with Databento's own
//! `dbn` crate.
//!
//! The input is one file or a folder searched recursively. Each file's metadata names its
//! schema: OHLCV files (`ohlcv-1s`/`1m`/`1h`/`1d`, and `ohlcv-eod` as daily) give the bars,
//! `status` files give the trading halts of the same symbols; for intraday bars, tick files
//! give the quote and trade columns ([`crate::ingest::ticks`]): `trades`, `tbbo` and `mbp-1`
//! (its trade actions) the trades, `mbp-1`, `bbo-1s`, `bbo-1m` and `tbbo` (the book before
//! each trade) the quotes. A symbol-day's trades come from one schema, the first present of
//! `tbbo`, `trades`, `mbp-1` (they hold the same trades); its quotes from every quote
//! schema present, merged by receive time. Trades alone make the bars where no OHLCV file
//! covers the symbol-day. Every other schema (MBO, MBP-10, definitions...) is skipped.
//! Symbols come from the file's symbology (instrument id to raw symbol, by time), plus any
//! symbol-mapping records in the stream.
//!
//! DBN prices are already fixed-point 1e-9 dollars, i.e. our [`Price`] unit, so they are
//! copied exactly. `ts_event` is the bar start. Intraday bars are grouped by their New York
//! date; daily bars, which Databento stamps at 00:00 UTC of the session date, are grouped
//! by that UTC date and re-stamped at New York midnight of it so that every source agrees
//! on where a daily bar lives.
//!
//! Vendor files are per day and small once filtered to the selection, so every file is
//! decoded (in parallel) when the source is built; [`Source::load_date`] hands each date's
//! bars over without copying them (see `table::Decoded`) and attaches that date's halts.
//! Tick files are decoded in full at the same time and kept (56 bytes a trade, 40 a quote
//! update, for the selection only): a day of a liquid symbol's `mbp-1` is millions of
//! updates, so select the symbols and dates a build needs.

use crate::bars::{BarSize, Halt, Price, RawDay};
use crate::clock::ny_date_sec;
use crate::error::{Error, Result};
use crate::ingest::table::{
    DayBuckets, Decoded, NyDayCache, SymbolIds, daily_date, ny_midnight_ns,
};
use crate::ingest::ticks::{self, Quote, Trade};
use crate::ingest::{Selection, Source};
use chrono::{Days, NaiveDate};
use dbn::decode::DynReader;
use dbn::decode::dbn::fsm::{DbnFsm, ProcessResult};
use dbn::{
    BboMsg, BidAskPair, Mbp1Msg, Metadata, OhlcvMsg, RecordHeader, RecordRef, Schema, StatusAction,
    StatusMsg, TradeMsg, TsSymbolMap, VersionUpgradePolicy, rtype,
};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

const NS_PER_DAY: u64 = 86_400 * 1_000_000_000;

/// Bars and halts from Databento DBN files.
#[derive(Debug)]
pub struct DbnSource {
    bars: Decoded,
    /// Halt pieces by New York date and symbol, attached when a date is loaded.
    halts: BTreeMap<NaiveDate, HashMap<String, Vec<Halt>>>,
    /// Trades and quotes by New York date and symbol, sorted.
    ticks: BTreeMap<NaiveDate, BTreeMap<String, TickDay>>,
    sel: Selection,
    explicit: bool,
}

/// A tick schema, and what it gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TickKind {
    /// Each record a trade with the book just before it (also a quote update).
    Tbbo,
    /// Each record a trade.
    Trades,
    /// Each record the book after an event; trade actions are also trades.
    Mbp1,
    /// Each record the book sampled at an interval.
    Bbo,
}

impl TickKind {
    /// Which schema's trades a symbol-day keeps when several hold them (lower first).
    fn trade_rank(self) -> u8 {
        match self {
            TickKind::Tbbo => 0,
            TickKind::Trades => 1,
            TickKind::Mbp1 => 2,
            TickKind::Bbo => u8::MAX,
        }
    }
}

/// The trades and quotes of one symbol-day.
#[derive(Debug, Default)]
struct TickDay {
    trades: Vec<Trade>,
    /// [`TickKind::trade_rank`] of the schema the trades come from.
    trade_rank: u8,
    quotes: Vec<Quote>,
    origin: String,
}

impl TickDay {
    fn new(origin: &str) -> TickDay {
        TickDay {
            trade_rank: u8::MAX,
            origin: origin.to_string(),
            ..TickDay::default()
        }
    }

    /// Adds another file's ticks of the same symbol-day.
    fn merge(&mut self, other: TickDay) {
        if !other.trades.is_empty() {
            if other.trade_rank < self.trade_rank || self.trades.is_empty() {
                self.trades = other.trades;
                self.trade_rank = other.trade_rank;
            } else if other.trade_rank == self.trade_rank {
                self.trades.extend(other.trades); // the same schema split over files
            }
        }
        self.quotes.extend(other.quotes);
        if !self.origin.split(", ").any(|o| o == other.origin) {
            if !self.origin.is_empty() {
                self.origin.push_str(", ");
            }
            self.origin.push_str(&other.origin);
        }
    }

    fn sort(&mut self) {
        self.trades.sort_by_key(|t| (t.ts_event, t.ts_recv));
        self.quotes.sort_by_key(|q| q.ts_recv);
    }
}

/// What one file contributed.
enum FileData {
    Bars(Vec<RawDay>, Vec<HaltEdge>),
    Status(Vec<HaltEdge>),
    /// An OHLCV file of another bar size than the one selected.
    OtherBar(BarSize),
    /// Trades and quotes by (New York date, symbol).
    Ticks(BTreeMap<(NaiveDate, String), TickDay>),
    /// A schema this source does not use.
    Ignored(Option<Schema>),
}

/// A status change that starts or ends a halt, for one symbol.
#[derive(Clone, Debug)]
struct HaltEdge {
    symbol: String,
    ts_ns: i64,
    starts: bool,
}

impl DbnSource {
    /// Decodes every DBN file at `input` (a file, or a folder searched recursively) for the
    /// selection. A file given explicitly must have the OHLCV schema of `sel.bar`; in a
    /// folder, OHLCV files of other bar sizes are skipped as long as some file matches.
    pub fn new(input: &Path, sel: Selection) -> Result<DbnSource> {
        let meta = std::fs::metadata(input).map_err(|e| Error::io(input, e))?;
        let explicit = meta.is_file();
        let files = if explicit {
            vec![input.to_path_buf()]
        } else {
            let mut files = Vec::new();
            list_dbn_files(input, &mut files)?;
            files.sort();
            if files.is_empty() {
                return Err(Error::input(
                    input,
                    "no .dbn or .dbn.zst files in this folder",
                ));
            }
            files
        };

        let decoded: Vec<FileData> = files
            .par_iter()
            .map(|path| decode_file(path, &sel, explicit))
            .collect::<Result<_>>()?;

        let mut bar_files = Vec::new();
        let mut halt_edges = Vec::new();
        let mut other_bars: Vec<BarSize> = Vec::new();
        let mut ticks: BTreeMap<NaiveDate, BTreeMap<String, TickDay>> = BTreeMap::new();
        for (path, data) in files.iter().zip(decoded) {
            match data {
                FileData::Ticks(days) => {
                    for ((date, symbol), day) in days {
                        ticks
                            .entry(date)
                            .or_default()
                            .entry(symbol)
                            .or_insert_with(|| TickDay::new(""))
                            .merge(day);
                    }
                }
                FileData::Bars(days, edges) => {
                    bar_files.push((path.clone(), days));
                    halt_edges.extend(edges);
                }
                FileData::Status(edges) => halt_edges.extend(edges),
                FileData::OtherBar(bar) => {
                    tracing::debug!(file = %path.display(), "skipping ohlcv-{bar} file (building {})", sel.bar);
                    other_bars.push(bar);
                }
                FileData::Ignored(schema) => {
                    let schema = schema.map_or("mixed", |s| s.as_str());
                    tracing::debug!(file = %path.display(), "skipping DBN file of schema {schema}");
                }
            }
        }
        for day in ticks.values_mut().flat_map(|d| d.values_mut()) {
            day.sort();
        }
        let has_trades = ticks
            .values()
            .any(|d| d.values().any(|t| !t.trades.is_empty()));
        if bar_files.is_empty() && !has_trades {
            other_bars.sort();
            other_bars.dedup();
            let hint = match other_bars.as_slice() {
                [] => String::new(),
                found => {
                    let names: Vec<&str> = found.iter().map(|b| b.as_str()).collect();
                    format!(
                        " (found ohlcv-{}: use --bar {})",
                        names.join(", ohlcv-"),
                        names[0]
                    )
                }
            };
            let quotes = if ticks.is_empty() {
                ""
            } else {
                "; quote files alone make no bars: add ohlcv or trades files"
            };
            return Err(Error::input(
                input,
                format!("no DBN file of schema ohlcv-{}{hint}{quotes}", sel.bar),
            ));
        }

        let mut halts: BTreeMap<NaiveDate, HashMap<String, Vec<Halt>>> = BTreeMap::new();
        for (symbol, halt) in halt_spans(halt_edges) {
            for_each_day_piece(halt, |date, piece| {
                if sel.wants_date(date) {
                    halts
                        .entry(date)
                        .or_default()
                        .entry(symbol.clone())
                        .or_default()
                        .push(piece);
                }
            });
        }
        Ok(DbnSource {
            bars: Decoded::new(bar_files),
            halts,
            ticks,
            sel,
            explicit,
        })
    }
}

impl Source for DbnSource {
    fn name(&self) -> &'static str {
        "dbn"
    }
    fn dates(&self) -> Result<Vec<NaiveDate>> {
        let mut dates = self.bars.dates();
        // Days whose bars come from trades alone.
        dates.extend(
            self.ticks
                .iter()
                .filter(|(_, d)| d.values().any(|t| !t.trades.is_empty()))
                .map(|(date, _)| *date),
        );
        dates.sort();
        dates.dedup();
        Ok(dates)
    }
    fn load_date(&self, date: NaiveDate) -> Result<Vec<RawDay>> {
        let mut days = self.bars.take(date, |paths| {
            let sel = Selection {
                from: Some(date),
                to: Some(date),
                ..self.sel.clone()
            };
            let mut days = Vec::new();
            for path in paths {
                if let FileData::Bars(bars, _) = decode_file(path, &sel, self.explicit)? {
                    days.extend(bars);
                }
            }
            Ok(days)
        })?;
        if let Some(ticks) = self.ticks.get(&date) {
            let bar = self.sel.bar;
            let index: HashMap<String, usize> = days
                .iter()
                .enumerate()
                .map(|(i, d)| (d.symbol.clone(), i))
                .collect();
            for (symbol, t) in ticks {
                let i = match index.get(symbol) {
                    Some(&i) => i,
                    None if !t.trades.is_empty() => {
                        let mut day = RawDay::new(symbol, date, bar, t.origin.clone());
                        ticks::bars_from_trades(&mut day, &t.trades, bar, ny_midnight_ns(date));
                        days.push(day);
                        days.len() - 1
                    }
                    None => continue, // quotes without bars: nothing to attach them to
                };
                let day = &mut days[i];
                if !t.quotes.is_empty() {
                    ticks::attach_quotes(day, &t.quotes, bar);
                }
                if !t.trades.is_empty() {
                    ticks::attach_trades(day, &t.trades, &t.quotes, bar);
                }
            }
            days.sort_by(|a, b| a.symbol.cmp(&b.symbol));
        }
        // Halts of symbol-days without bars are dropped: there is nothing to simulate there.
        if let Some(halts) = self.halts.get(&date) {
            for day in &mut days {
                if let Some(h) = halts.get(&day.symbol) {
                    day.halts = h.clone();
                }
            }
        }
        Ok(days)
    }
}

fn list_dbn_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        // fs::metadata follows symlinks, so linked folders and files are searched too.
        let meta = std::fs::metadata(&path).map_err(|e| Error::io(&path, e))?;
        if meta.is_dir() {
            list_dbn_files(&path, out)?;
        } else if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(".dbn") || n.ends_with(".dbn.zst"))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// The bar size of an OHLCV record type; `None` for other records.
fn rtype_bar(rtype: u8) -> Option<BarSize> {
    match rtype {
        rtype::OHLCV_1S => Some(BarSize::S1),
        rtype::OHLCV_1M => Some(BarSize::M1),
        rtype::OHLCV_1H => Some(BarSize::H1),
        rtype::OHLCV_1D | rtype::OHLCV_EOD => Some(BarSize::D1),
        _ => None,
    }
}

/// The bar size of an OHLCV schema; `None` for other schemas.
fn schema_bar(schema: Schema) -> Option<BarSize> {
    match schema {
        Schema::Ohlcv1S => Some(BarSize::S1),
        Schema::Ohlcv1M => Some(BarSize::M1),
        Schema::Ohlcv1H => Some(BarSize::H1),
        Schema::Ohlcv1D | Schema::OhlcvEod => Some(BarSize::D1),
        _ => None,
    }
}

/// One-line message for a `dbn` error (its I/O variant prints the source with `{:?}`).
fn dbn_detail(e: &dbn::Error) -> String {
    match e {
        dbn::Error::Io { source, context } => {
            format!("not a readable DBN file ({context}: {source})")
        }
        other => format!("not a readable DBN file ({other})"),
    }
}

/// Decodes one file: its bars and halt edges for `sel`, or what it holds instead.
fn decode_file(path: &Path, sel: &Selection, explicit: bool) -> Result<FileData> {
    let bad = |e: dbn::Error| Error::input(path, dbn_detail(&e));
    // The state machine rather than `DynDecoder`: at the end of the input it tells a
    // complete file from one cut inside a record, which the decoder reports as a clean end.
    let mut reader = DynReader::from_file(path).map_err(bad)?;
    let mut fsm = DbnFsm::builder()
        .upgrade_policy(VersionUpgradePolicy::UpgradeToV3)
        .build()
        .map_err(bad)?;
    let mut file: Option<FileDecoder> = None;
    loop {
        match fsm.process() {
            ProcessResult::ReadMore(_) => {
                let n = read_some(&mut reader, fsm.space())
                    .map_err(|e| Error::input(path, format!("not a readable DBN file ({e})")))?;
                if n > 0 {
                    fsm.fill(n);
                    continue;
                }
                if !fsm.has_decoded_metadata() {
                    return Err(Error::input(
                        path,
                        "not a DBN file (or cut short inside its metadata)",
                    ));
                }
                if !fsm.data().is_empty() {
                    return Err(Error::input(
                        path,
                        format!(
                            "cut short: the last {} bytes are an incomplete record",
                            fsm.data().len()
                        ),
                    ));
                }
                break;
            }
            ProcessResult::Metadata(metadata) => {
                match FileDecoder::new(path, sel, explicit, &metadata)? {
                    Ok(decoder) => file = Some(decoder),
                    Err(skipped) => return Ok(skipped),
                }
            }
            ProcessResult::Record(()) => {
                if let (Some(file), Some(rec)) = (file.as_mut(), fsm.last_record()) {
                    file.record(rec)?;
                }
            }
            ProcessResult::Err(e) => return Err(bad(e)),
        }
    }
    match file {
        Some(file) => file.finish(),
        None => Err(Error::input(path, "not a DBN file (no metadata)")),
    }
}

/// `read` that retries interrupted reads.
fn read_some(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Decoding state of one file once its metadata is known.
struct FileDecoder<'a> {
    path: &'a Path,
    sel: &'a Selection,
    /// Whether bars are wanted (false for a status or tick file).
    wants_bars: bool,
    /// The tick schema of a tick file.
    ticks: Option<TickKind>,
    tick_days: BTreeMap<(NaiveDate, u32), TickDay>,
    symbol_map: TsSymbolMap,
    /// Symbol id by (instrument id, UTC day): `None` when unmapped, `Some(None)` when not
    /// selected. Metadata mappings change only at UTC midnights; in-stream mapping records
    /// clear it. Saves a string lookup per record in files that interleave instruments.
    iid_syms: HashMap<(u32, u64), Option<Option<u32>>>,
    origin: String,
    symbols: SymbolIds,
    buckets: DayBuckets,
    edges: Vec<HaltEdge>,
    ny_day: NyDayCache,
    /// Records of interest with and without a symbol.
    mapped: u64,
    unmapped: u64,
    first_unmapped: u32,
    undef_prices: u64,
}

impl<'a> FileDecoder<'a> {
    /// `Err(data)` when the schema says the file has nothing for this selection.
    fn new(
        path: &'a Path,
        sel: &'a Selection,
        explicit: bool,
        metadata: &Metadata,
    ) -> Result<std::result::Result<FileDecoder<'a>, FileData>> {
        let schema = metadata.schema;
        // `None` means the stream may mix record types (live data): sort them by rtype.
        let tick_kind = match schema {
            Some(Schema::Tbbo) => Some(TickKind::Tbbo),
            Some(Schema::Trades) => Some(TickKind::Trades),
            Some(Schema::Mbp1) => Some(TickKind::Mbp1),
            Some(Schema::Bbo1S | Schema::Bbo1M) => Some(TickKind::Bbo),
            _ => None,
        };
        if tick_kind.is_some() && !sel.bar.is_intraday() {
            return Ok(Err(FileData::Ignored(schema)));
        }
        let wants_bars = match schema {
            Some(_) if tick_kind.is_some() => false,
            Some(s) => match schema_bar(s) {
                Some(bar) if bar == sel.bar => true,
                Some(bar) if explicit => {
                    return Err(Error::input(
                        path,
                        format!(
                            "schema is ohlcv-{bar} but ohlcv-{} was asked for: use --bar {bar}",
                            sel.bar
                        ),
                    ));
                }
                Some(bar) => return Ok(Err(FileData::OtherBar(bar))),
                None if s == Schema::Status => false,
                None => return Ok(Err(FileData::Ignored(schema))),
            },
            None => true,
        };
        // Live streams may carry no symbology in the metadata, only mapping records.
        let symbol_map = match metadata.symbol_map() {
            Ok(map) => map,
            Err(_) if metadata.mappings.is_empty() => TsSymbolMap::new(),
            Err(e) => {
                return Err(Error::input(
                    path,
                    format!("unusable symbology in the metadata: {e}"),
                ));
            }
        };
        Ok(Ok(FileDecoder {
            path,
            sel,
            wants_bars,
            ticks: tick_kind,
            tick_days: BTreeMap::new(),
            symbol_map,
            iid_syms: HashMap::new(),
            origin: path.display().to_string(),
            symbols: SymbolIds::default(),
            buckets: DayBuckets::default(),
            edges: Vec::new(),
            ny_day: NyDayCache::default(),
            mapped: 0,
            unmapped: 0,
            first_unmapped: 0,
            undef_prices: 0,
        }))
    }

    fn record(&mut self, rec: RecordRef) -> Result<()> {
        let hd: &RecordHeader = rec.header();
        let rt = hd.rtype;
        if rt == rtype::SYMBOL_MAPPING {
            self.iid_syms.clear();
            return self
                .symbol_map
                .on_record(rec)
                .map_err(|e| Error::input(self.path, format!("bad symbol mapping record: {e}")));
        }
        if let Some(kind) = self.ticks {
            return self.tick(rec, kind);
        }
        let is_status = rt == rtype::STATUS;
        if !is_status && rtype_bar(rt) != Some(self.sel.bar) {
            return Ok(());
        }
        let (ts_event, iid) = (hd.ts_event, hd.instrument_id);
        let Some(sym) = self.symbol_at(ts_event, iid) else {
            return Ok(()); // unmapped, or not selected
        };
        if is_status {
            if let Some(msg) = rec.get::<StatusMsg>()
                && let Some(starts) = halt_edge(msg)
            {
                let ts = if ts_event != dbn::UNDEF_TIMESTAMP {
                    ts_event
                } else {
                    msg.ts_recv
                };
                if let Ok(ts_ns) = i64::try_from(ts) {
                    let symbol = self.symbols.name(sym).to_string();
                    self.edges.push(HaltEdge {
                        symbol,
                        ts_ns,
                        starts,
                    });
                }
            }
            return Ok(());
        }
        let Some(msg) = rec.get::<OhlcvMsg>() else {
            return Ok(());
        };
        let Ok(ts) = i64::try_from(ts_event) else {
            return Ok(());
        }; // UNDEF_TIMESTAMP
        if [msg.open, msg.high, msg.low, msg.close].contains(&dbn::UNDEF_PRICE) {
            self.undef_prices += 1;
            return Ok(());
        }
        let bar = self.sel.bar;
        let (date, ts) = if bar == BarSize::D1 {
            let date = daily_date(ts);
            (date, ny_midnight_ns(date))
        } else {
            (self.ny_day.date(ts), ts)
        };
        if !self.sel.wants_date(date) {
            return Ok(());
        }
        let (symbols, origin) = (&self.symbols, self.origin.as_str());
        let day = self.buckets.get(sym, date, || {
            RawDay::new(symbols.name(sym), date, bar, origin)
        });
        day.push(
            ts,
            Price(msg.open),
            Price(msg.high),
            Price(msg.low),
            Price(msg.close),
            msg.volume,
        );
        Ok(())
    }

    /// The selected symbol of instrument `iid` at `ts` (UTC ns); `None` when the
    /// symbology has none (counted) or the selection skips it.
    fn symbol_at(&mut self, ts: u64, iid: u32) -> Option<u32> {
        let key = (iid, ts / NS_PER_DAY);
        let sym = match self.iid_syms.get(&key) {
            Some(&sym) => sym,
            None => {
                let raw = self.symbol_map.get_for_ts(ts, iid);
                let sym = raw.map(|raw| self.symbols.id(raw, self.sel));
                self.iid_syms.insert(key, sym);
                sym
            }
        };
        let Some(sym) = sym else {
            self.unmapped += 1;
            if self.unmapped == 1 {
                self.first_unmapped = iid;
            }
            return None;
        };
        self.mapped += 1;
        sym
    }

    /// One record of a tick file: a trade, a quote update, or both.
    fn tick(&mut self, rec: RecordRef, kind: TickKind) -> Result<()> {
        let hd = rec.header();
        let book = |l: &BidAskPair, ts_recv: u64| {
            let side = |px: i64| Price(if px == dbn::UNDEF_PRICE { 0 } else { px });
            let (bid, ask) = (side(l.bid_px), side(l.ask_px));
            Quote {
                ts_recv: i64::try_from(ts_recv).unwrap_or(i64::MAX),
                bid,
                ask,
                bid_size: if bid.0 > 0 { l.bid_sz as u64 } else { 0 },
                ask_size: if ask.0 > 0 { l.ask_sz as u64 } else { 0 },
            }
        };
        let trade = |price: i64, size: u32, ts_recv: u64, quote: Option<&Quote>| {
            (price != dbn::UNDEF_PRICE && size > 0 && hd.ts_event != dbn::UNDEF_TIMESTAMP).then(
                || Trade {
                    ts_event: i64::try_from(hd.ts_event).unwrap_or(i64::MAX),
                    ts_recv: i64::try_from(ts_recv).unwrap_or(i64::MAX),
                    price: Price(price),
                    size: size as u64,
                    quote: quote.map(|q| (q.bid, q.ask)),
                },
            )
        };
        // (symbology time, trade, quote update)
        let (ts_map, trade, quote) = match kind {
            TickKind::Trades => {
                let Some(m) = rec.get::<TradeMsg>() else {
                    return Ok(());
                };
                (hd.ts_event, trade(m.price, m.size, m.ts_recv, None), None)
            }
            TickKind::Tbbo | TickKind::Mbp1 => {
                let Some(m) = rec.get::<Mbp1Msg>() else {
                    return Ok(());
                };
                let q = book(&m.levels[0], m.ts_recv);
                let is_trade = m.action as u8 == b'T';
                let t = if !is_trade {
                    None
                } else if kind == TickKind::Tbbo {
                    trade(m.price, m.size, m.ts_recv, Some(&q))
                } else {
                    // MBP-1's book on a trade record is the book at the trade.
                    trade(m.price, m.size, m.ts_recv, None)
                };
                (hd.ts_event, t, Some(q))
            }
            TickKind::Bbo => {
                let Some(m) = rec.get::<BboMsg>() else {
                    return Ok(());
                };
                // A sampled book has no event time; its symbology time is its sample time.
                (m.ts_recv, None, Some(book(&m.levels[0], m.ts_recv)))
            }
        };
        if ts_map == dbn::UNDEF_TIMESTAMP {
            return Ok(());
        }
        let Some(sym) = self.symbol_at(ts_map, hd.instrument_id) else {
            return Ok(());
        };
        let origin = self.origin.as_str();
        if let Some(t) = trade {
            let date = self.ny_day.date(t.ts_event);
            if self.sel.wants_date(date) {
                let day = self
                    .tick_days
                    .entry((date, sym))
                    .or_insert_with(|| TickDay::new(origin));
                day.trades.push(t);
                day.trade_rank = kind.trade_rank();
            }
        }
        if let Some(q) = quote
            && q.ts_recv != i64::MAX
        {
            let (date, _) = ny_date_sec(q.ts_recv);
            if self.sel.wants_date(date) {
                self.tick_days
                    .entry((date, sym))
                    .or_insert_with(|| TickDay::new(origin))
                    .quotes
                    .push(q);
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<FileData> {
        let path = self.path.display();
        if self.unmapped > 0 && self.mapped == 0 {
            return Err(Error::input(
                self.path,
                format!(
                    "no symbol for instrument_id {} in the file's symbology: request the data with \
                     symbols (stype_in raw_symbol) so the file maps instrument ids to tickers",
                    self.first_unmapped
                ),
            ));
        }
        if self.unmapped > 0 {
            tracing::warn!(
                file = %path,
                "{} records have no symbol in the file's symbology (first instrument_id {}); they are skipped",
                self.unmapped,
                self.first_unmapped
            );
        }
        if self.undef_prices > 0 {
            tracing::debug!(file = %path, "{} bars with an undefined price skipped", self.undef_prices);
        }
        if self.ticks.is_some() {
            let symbols = &self.symbols;
            return Ok(FileData::Ticks(
                self.tick_days
                    .into_iter()
                    .map(|((date, sym), day)| ((date, symbols.name(sym).to_string()), day))
                    .collect(),
            ));
        }
        Ok(if self.wants_bars {
            // A mixed stream (live data) may carry status records beside its bars.
            FileData::Bars(self.buckets.into_days(), self.edges)
        } else {
            FileData::Status(self.edges)
        })
    }
}

/// Whether a status message starts (`Some(true)`) or ends (`Some(false)`) a halt.
/// Halts, pauses (LULD) and suspensions start one; the first message that says the
/// instrument trades again ends it. Quoting-only periods inside a halt keep it going.
fn halt_edge(msg: &StatusMsg) -> Option<bool> {
    match msg.action() {
        Ok(StatusAction::Halt | StatusAction::Pause | StatusAction::Suspend) => Some(true),
        Ok(StatusAction::Trading) => Some(false),
        _ if msg.is_trading() == Some(true) => Some(false),
        _ => None,
    }
}

/// Pairs each symbol's halt starts with the next resumption. A halt still open at the end of
/// the data lasts until the end of its New York day.
fn halt_spans(mut edges: Vec<HaltEdge>) -> Vec<(String, Halt)> {
    edges.sort_by(|a, b| a.symbol.cmp(&b.symbol).then(a.ts_ns.cmp(&b.ts_ns)));
    let mut spans = Vec::new();
    let mut open: Option<(usize, i64)> = None; // (index of the start edge, start ts)
    for (i, e) in edges.iter().enumerate() {
        if let Some((s, start)) = open
            && edges[s].symbol != e.symbol
        {
            spans.push((
                edges[s].symbol.clone(),
                Halt {
                    start_ns: start,
                    end_ns: ny_day_end(start),
                },
            ));
            open = None;
        }
        match (open, e.starts) {
            (None, true) => open = Some((i, e.ts_ns)),
            (Some((s, start)), false) => {
                if e.ts_ns > start {
                    spans.push((
                        edges[s].symbol.clone(),
                        Halt {
                            start_ns: start,
                            end_ns: e.ts_ns,
                        },
                    ));
                }
                open = None;
            }
            _ => {} // a repeated start inside a halt, or a resumption outside one
        }
    }
    if let Some((s, start)) = open {
        spans.push((
            edges[s].symbol.clone(),
            Halt {
                start_ns: start,
                end_ns: ny_day_end(start),
            },
        ));
    }
    spans
}

/// UTC ns of the New York midnight that ends the day containing `ts_ns`.
fn ny_day_end(ts_ns: i64) -> i64 {
    let (date, _) = ny_date_sec(ts_ns);
    ny_midnight_ns(date + Days::new(1))
}

/// Splits a halt at New York midnights, calling `f` with each piece and its date.
fn for_each_day_piece(halt: Halt, mut f: impl FnMut(NaiveDate, Halt)) {
    let mut start = halt.start_ns;
    while start < halt.end_ns {
        let (date, _) = ny_date_sec(start);
        let end = ny_midnight_ns(date + Days::new(1)).min(halt.end_ns);
        f(
            date,
            Halt {
                start_ns: start,
                end_ns: end,
            },
        );
        start = end;
    }
}
