//! Line-delimited JSON bars, for real-time integration: from stdin (`--feed stdin`) or
//! from producers connecting to a loopback TCP port (`--feed tcp:127.0.0.1:PORT`).
//!
//! One bar per line, a bar when it has closed:
//!
//! ```json
//! {"symbol":"AAPL","ts":"2024-01-05T09:30:00-05:00","open":181.99,"high":182.76,"low":181.91,"close":182.53,"volume":120450}
//! ```
//!
//! - `ts`: the bar's **start**, RFC 3339 with an offset, or integer UTC nanoseconds; on
//!   the bar grid (`--bar`) of its New York day;
//! - `open`, `high`, `low`, `close`: dollars, finite and positive, `low` ≤ `open`,
//!   `close` ≤ `high` (kept to the nanodollar, as caches keep them); `volume` ≥ 0;
//! - optional `bid` and `ask`: the quote at the bar's close (both or neither); it is the
//!   book the next bar's orders meet, as in caches (a crossed or zero quote is no book);
//!   optional `bid_size` and `ask_size` with it (shares, 0 when absent);
//! - optional `buy_volume` and `sell_volume`: the bar's volume initiated by buyers and by
//!   sellers (both or neither), where the producer classifies trades;
//! - optional `halted`: the bar lies in a trading halt (orders reaching the market during
//!   it are rejected).
//!
//! Bars go in time order per symbol, days in order across symbols. With a benchmark
//! (`features.benchmark`, e.g. SPY), its bar of each time goes before the other symbols'
//! bars of that time (a producer sends each bar time's bars benchmark first, as
//! [`vendor_lines`] and [`cache_lines`] do): a bar's cross-sectional features use the
//! benchmark's close as of its start, as the cache builder computes them on the common
//! clock. A benchmark bar that arrives after another symbol's bar of the same or a later
//! time is counted ([`Stream::late_benchmark_bars`]) and logged, since that symbol's
//! features used an older benchmark close than a cache would. The benchmark's bars are
//! taken even when it is not traded (not in `--symbols`). Each bar's features and
//! its suspect-print flag ([`crate::validate::PrintCheck`], `FLAG_SUSPECT`) are computed
//! by [`FeatureState::update`], the very code the cache builder runs, carried across days
//! the same way, so a stream of a cache's bars gives the cache's features and flags bit
//! for bit and the policy the same decisions (tested; `tests/causal_cleaning.rs` feeds both
//! the same raw vendor bars).
//!
//! Every line is journaled before it is looked at ([`Event::Input`](super::journal::Event));
//! a line that is not a good bar is refused with its reason
//! ([`Event::BadBar`](super::journal::Event)) and nothing is traded on it: malformed JSON,
//! an unknown symbol, a bar not after the symbol's last, a day the feed has left, a bar
//! off the grid, NaN, negative or inconsistent prices. A line identical to one of the
//! symbol's bars already taken today is a resend and is skipped without a record: a
//! producer that reconnects (or feeds a restarted run) may resend from any point of the
//! current day (earlier days are closed: their bars are refused). A restart feeds the journal's lines again
//! before new ones, so features, LSTM states, positions and risk state are rebuilt exactly.

use super::engine::{DayHeader, Engine};
use crate::bars::{BarSize, Price};
use crate::calendar::Calendar;
use crate::env::BarRec;
use crate::env::day::{FLAG_HALTED, FLAG_QUOTE, FLAG_SUSPECT};
use crate::env::params::SessionKind;
use crate::error::{Error, IoContext, Result};
use crate::features::{
    BarInput, BenchmarkDay, DayContext, FeatureState, N_FEATURES, QuoteInput, feature_index,
};
use chrono::NaiveDate;
use serde::Deserialize;
use std::collections::HashMap;
use std::io::BufRead;
use std::time::Instant;

/// A feed line as sent.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    symbol: String,
    ts: Timestamp,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
    #[serde(default)]
    bid: Option<f64>,
    #[serde(default)]
    ask: Option<f64>,
    #[serde(default)]
    bid_size: Option<f64>,
    #[serde(default)]
    ask_size: Option<f64>,
    #[serde(default)]
    buy_volume: Option<f64>,
    #[serde(default)]
    sell_volume: Option<f64>,
    #[serde(default)]
    halted: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Timestamp {
    Nanos(i64),
    Text(String),
}

impl Timestamp {
    fn ns(&self) -> std::result::Result<i64, String> {
        match self {
            Timestamp::Nanos(n) => Ok(*n),
            Timestamp::Text(t) => chrono::DateTime::parse_from_rfc3339(t)
                .ok()
                .and_then(|d| d.timestamp_nanos_opt())
                .ok_or_else(|| {
                    format!(
                        "ts {t:?} is not RFC 3339 with an offset (e.g. 2024-01-05T09:30:00-05:00)"
                    )
                }),
        }
    }
}

/// What the feed remembers of one symbol.
struct SymbolFeed {
    features: FeatureState,
    date: Option<NaiveDate>,
    midnight_ns: i64,
    /// The traded session, ms since midnight.
    open_ms: u32,
    close_ms: u32,
    last_ts_ns: i64,
    /// The day's bars taken so far: start (UTC ns) and the XXH3 of their line, to know a
    /// resent line.
    taken: Vec<(i64, u64)>,
    /// The quote at the previous bar's close (the book the next bar opens on).
    quote: Option<(f64, f64)>,
    /// ATR(14)/close of the previous bar of the day (the impact model's volatility).
    sigma: f32,
    halts: Vec<(u32, u32)>,
}

/// Turns lines into bars for the engine.
pub struct Stream {
    /// A cache whose days warm each symbol's features up before its first streamed day.
    warmup: Option<(std::path::PathBuf, crate::cache::Catalog)>,
    /// Feed index of each symbol taken: the traded ones (`0..traded`, the engine's
    /// indices), then the benchmark when it is not traded.
    index: HashMap<String, usize>,
    symbols: Vec<SymbolFeed>,
    traded: usize,
    /// The benchmark's symbol and its bars of the day it is on.
    benchmark: Option<String>,
    bench_day: BenchmarkDay,
    bench_date: Option<NaiveDate>,
    /// The latest bar (date, start) of a symbol other than the benchmark, to notice a
    /// benchmark bar arriving after bars that needed it.
    latest_other: Option<(NaiveDate, u32)>,
    late_benchmark: u64,
    calendar: Calendar,
    bar: BarSize,
    session: SessionKind,
    feature_cols: Vec<usize>,
    atr_col: usize,
    row: [f32; N_FEATURES],
    obs: Vec<f32>,
}

impl Stream {
    /// A stream of `symbols`' bars of size `bar`, turned into observations of `params`'
    /// feature columns (an engine's: [`Engine::params`]), with cross-sectional features
    /// against `benchmark` (the `features.benchmark` the caches were built with).
    pub fn new(
        symbols: &[String],
        calendar: Calendar,
        bar: BarSize,
        params: &crate::env::EnvParams,
        benchmark: Option<String>,
    ) -> Stream {
        let p = params;
        let mut index: HashMap<String, usize> = symbols
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i))
            .collect();
        if let Some(b) = &benchmark {
            let n = index.len();
            index.entry(b.clone()).or_insert(n);
        }
        Stream {
            warmup: None,
            traded: symbols.len(),
            benchmark,
            bench_day: BenchmarkDay::new(),
            bench_date: None,
            latest_other: None,
            late_benchmark: 0,
            symbols: (0..index.len())
                .map(|_| SymbolFeed {
                    features: FeatureState::new(),
                    date: None,
                    midnight_ns: 0,
                    open_ms: 0,
                    close_ms: 0,
                    last_ts_ns: i64::MIN,
                    taken: Vec::new(),
                    quote: None,
                    sigma: 0.0,
                    halts: Vec::new(),
                })
                .collect(),
            index,
            calendar,
            bar,
            session: p.session,
            feature_cols: p.feature_cols.clone(),
            atr_col: feature_index("atr_ratio_14").expect("feature set v2 has atr_ratio_14"),
            row: [0.0; N_FEATURES],
            obs: vec![0.0; p.feature_cols.len()],
        }
    }

    /// Benchmark bars that arrived after another symbol's bar of the same or a later time
    /// (whose cross-sectional features then used an older benchmark close).
    pub fn late_benchmark_bars(&self) -> u64 {
        self.late_benchmark
    }

    /// Warms each symbol's features, at its first streamed bar, on `cache`'s days of that
    /// symbol before the bar's day (all of them, oldest first, as the cache builder
    /// carried them): a stream that starts on a cache's day D then computes exactly the
    /// features the cache holds for D, when the cache holds the whole history its builder
    /// read (built without `--from`; otherwise the longest windows converge over the
    /// days it holds). The cache must be unadjusted, as a feed's prices are.
    pub fn warm_up_from(&mut self, cache: &std::path::Path) -> Result<()> {
        let catalog = crate::cache::Catalog::load_existing(cache)?;
        if let Some(s) = &catalog.settings
            && s.adjust != "none"
        {
            return Err(Error::input(
                cache,
                format!(
                    "holds {}-adjusted prices, and a feed's are raw: warm up from a cache built with --adjust none",
                    s.adjust
                ),
            ));
        }
        if let Some(s) = &catalog.settings
            && s.benchmark != self.benchmark
        {
            return Err(Error::input(
                cache,
                format!(
                    "was built with features.benchmark {}, and this run computes features against {}: \
                     set features.benchmark as the cache was built, or warm up from a cache built with it",
                    s.benchmark.as_deref().unwrap_or("none"),
                    self.benchmark.as_deref().unwrap_or("none")
                ),
            ));
        }
        self.warmup = Some((cache.to_path_buf(), catalog));
        Ok(())
    }

    /// Runs symbol `k`'s feature state over the warm-up cache's days before `date`.
    fn warm(&mut self, k: usize, symbol: &str, date: NaiveDate) -> Result<()> {
        let Some((dir, catalog)) = &self.warmup else {
            return Ok(());
        };
        let st = &mut self.symbols[k];
        let open = |file: &std::path::Path| {
            let path = dir.join(file);
            crate::cache::DayCache::open(&path).map_err(|err| Error::input(&path, err.to_string()))
        };
        let mut row = [0f32; N_FEATURES];
        for e in catalog
            .entries
            .values()
            .filter(|e| e.symbol == symbol && e.date < date)
        {
            let day = open(&e.file)?;
            let bench = match self
                .benchmark
                .as_ref()
                .and_then(|b| catalog.entries.get(&(b.clone(), e.date)))
            {
                Some(b) => {
                    let (_, bars) = crate::build::cached_inputs(&open(&b.file)?, None);
                    Some(crate::build::benchmark_day(&bars))
                }
                None => None,
            };
            let (ctx, bars) = crate::build::cached_inputs(&day, bench.as_ref());
            st.features.begin_day(ctx);
            for b in &bars {
                st.features.update(b, &mut row);
            }
        }
        Ok(())
    }

    /// One line of the feed, received at `received_ns` (UTC), handed to `engine`.
    pub fn on_line(
        &mut self,
        engine: &mut impl BarSink,
        line: &str,
        received_ns: i64,
    ) -> Result<()> {
        let clock = Instant::now();
        let line = line.trim_end_matches(['\r', '\n']);
        let parsed = serde_json::from_str::<Line>(line)
            .map_err(|e| format!("not a bar: {e}"))
            .and_then(|b| Ok((b.ts.ns()?, b)));
        let (ts_ns, bar) = match parsed {
            Ok(p) => p,
            Err(why) => {
                engine.input(line, received_ns)?;
                return engine.bad_bar(received_ns, "", why);
            }
        };
        let Some(&k) = self.index.get(&bar.symbol) else {
            engine.input(line, received_ns)?;
            let mut known: Vec<&String> = self.index.keys().collect();
            known.sort();
            let why = format!(
                "unknown symbol {:?}: this run trades {} (--symbols)",
                bar.symbol,
                known
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            );
            return engine.bad_bar(received_ns, &bar.symbol, why);
        };
        let st = &mut self.symbols[k];
        let hash = xxhash_rust::xxh3::xxh3_64(line.as_bytes());
        if ts_ns <= st.last_ts_ns
            && st
                .taken
                .binary_search_by_key(&ts_ns, |t| t.0)
                .is_ok_and(|i| st.taken[i].1 == hash)
        {
            engine.duplicate();
            return Ok(());
        }
        engine.input(line, received_ns)?;
        if !(MIN_TS_NS..MAX_TS_NS).contains(&ts_ns) {
            let why = format!("ts {ts_ns} ns is not between 1990 and 2200");
            return engine.bad_bar(received_ns, &bar.symbol, why);
        }
        let (date, sec) = crate::clock::ny_date_sec(ts_ns);
        let prior = Prior {
            last_ts_ns: st.last_ts_ns,
            feed_date: engine.date(),
            received_ns,
        };
        if let Err(why) = check(&bar, ts_ns, date, sec, &prior, self.bar) {
            return engine.bad_bar(received_ns, &bar.symbol, why);
        }
        st.last_ts_ns = ts_ns;
        if st.date.is_none() {
            self.warm(k, &bar.symbol, date)?;
        }
        let st = &mut self.symbols[k];
        if st.date != Some(date) {
            st.taken.clear();
            let s = crate::build::session_or_default(&self.calendar, date);
            st.features.begin_day(DayContext::of(&s));
            let (open, close) = match self.session {
                SessionKind::Regular => (s.open_sec, s.close_sec),
                SessionKind::Extended => (s.pre_open_sec, s.post_close_sec),
            };
            st.date = Some(date);
            st.midnight_ns = crate::clock::utc_ns(date, 0);
            st.open_ms = open * 1000;
            st.close_ms = close * 1000;
            st.quote = None;
            st.sigma = 0.0;
            st.halts.clear();
        }
        st.taken.push((ts_ns, hash));
        // Kept to the nanodollar, as the cache keeps prices.
        let px = |x: f64| Price::from_dollars(x).dollars();
        let (open, high, low, close) = (px(bar.open), px(bar.high), px(bar.low), px(bar.close));
        let sec = sec as u32;
        let is_benchmark = self.benchmark.as_ref() == Some(&bar.symbol);
        if is_benchmark {
            if self.bench_date != Some(date) {
                self.bench_day.clear();
                self.bench_date = Some(date);
            }
            if self.latest_other.is_some_and(|l| l >= (date, sec)) {
                self.late_benchmark += 1;
                tracing::warn!(
                    benchmark = %bar.symbol,
                    bar = %crate::clock::iso_ny(ts_ns),
                    "live: a benchmark bar arrived after other symbols' bars of its time; \
                     their cross-sectional features used an older benchmark close (send the benchmark first)"
                );
            }
            self.bench_day.push(sec, close);
        } else {
            self.latest_other = self.latest_other.max(Some((date, sec)));
        }
        let bench_close = (self.bench_date == Some(date))
            .then(|| self.bench_day.close_at(sec))
            .flatten();
        st.features.update(
            &BarInput {
                sec_of_day: sec,
                open,
                high,
                low,
                close,
                volume: bar.volume,
                halted: bar.halted,
                quote: bar.bid.zip(bar.ask).map(|(b, a)| QuoteInput {
                    bid: px(b),
                    ask: px(a),
                    bid_size: bar.bid_size.unwrap_or(0.0),
                    ask_size: bar.ask_size.unwrap_or(0.0),
                }),
                flow: bar.buy_volume.zip(bar.sell_volume),
                bench_close,
            },
            &mut self.row,
        );
        if k >= self.traded {
            // The benchmark, taken for the others' features only.
            return Ok(());
        }
        let ts_ms = sec * 1000;
        let bar_ms = self.bar.secs() * 1000;
        let mut flags = if st.features.suspect() {
            FLAG_SUSPECT
        } else {
            0
        };
        if bar.halted {
            flags |= FLAG_HALTED;
            match st.halts.last_mut() {
                Some(h) if h.1 >= ts_ms => h.1 = ts_ms + bar_ms,
                _ => st.halts.push((ts_ms, ts_ms + bar_ms)),
            }
        }
        let (bid, ask) = match st.quote {
            Some(q) => {
                flags |= FLAG_QUOTE;
                q
            }
            None => (0.0, 0.0),
        };
        let rec = BarRec {
            ts_ms,
            flags,
            open,
            close,
            bid,
            ask,
            volume: bar.volume as f32,
            sigma: st.sigma.max(0.0),
        };
        st.quote = bar
            .bid
            .zip(bar.ask)
            .map(|(b, a)| (px(b), px(a)))
            .filter(|&(b, a)| b > 0.0 && a >= b);
        st.sigma = self.row[self.atr_col];
        for (o, &c) in self.obs.iter_mut().zip(&self.feature_cols) {
            *o = self.row[c];
        }
        let last = ts_ms < st.close_ms && ts_ms + bar_ms >= st.close_ms;
        engine.feature_time(clock.elapsed().as_secs_f64() * 1e6);
        engine
            .feed_lag(received_ns.saturating_sub(ts_ns + bar_ms as i64 * 1_000_000) as f64 * 1e-9);
        let header = DayHeader {
            symbol: k,
            symbol_name: &bar.symbol,
            date,
            bar: self.bar,
            midnight_ns: st.midnight_ns,
            open_ms: st.open_ms,
            close_ms: st.close_ms,
            halts: &st.halts,
        };
        engine.on_bar(&header, rec, &self.obs, last, clock)
    }
}

/// Where a stream's lines go: the live [`Engine`], which journals and trades them, or a
/// recorder of what the stream made of them (tests compare it with a cache).
pub trait BarSink {
    /// The trading date under way, if any.
    fn date(&self) -> Option<NaiveDate>;
    /// A line, before it is looked at.
    fn input(&mut self, line: &str, received_ns: i64) -> Result<()>;
    /// A resent line already taken.
    fn duplicate(&mut self);
    /// A line refused, with its reason.
    fn bad_bar(&mut self, received_ns: i64, symbol: &str, reason: String) -> Result<()>;
    /// Time spent turning the line into a bar and its features, µs.
    fn feature_time(&mut self, us: f64);
    /// How late the bar arrived after its close, s.
    fn feed_lag(&mut self, secs: f64);
    /// A good bar: its day, record and observation row; `last`: the session's last bar.
    fn on_bar(
        &mut self,
        h: &DayHeader,
        bar: BarRec,
        features: &[f32],
        last: bool,
        arrived: Instant,
    ) -> Result<()>;
}

impl BarSink for Engine {
    fn date(&self) -> Option<NaiveDate> {
        Engine::date(self)
    }
    fn input(&mut self, line: &str, received_ns: i64) -> Result<()> {
        Engine::input(self, line, received_ns)
    }
    fn duplicate(&mut self) {
        Engine::duplicate(self)
    }
    fn bad_bar(&mut self, received_ns: i64, symbol: &str, reason: String) -> Result<()> {
        Engine::bad_bar(self, received_ns, symbol, reason)
    }
    fn feature_time(&mut self, us: f64) {
        Engine::feature_time(self, us)
    }
    fn feed_lag(&mut self, secs: f64) {
        Engine::feed_lag(self, secs)
    }
    fn on_bar(
        &mut self,
        h: &DayHeader,
        bar: BarRec,
        features: &[f32],
        last: bool,
        arrived: Instant,
    ) -> Result<()> {
        Engine::on_bar(self, h, bar, features, last, arrived)
    }
}

/// Timestamps the feed takes: 1990-01-01 to 2200-01-01 UTC.
const MIN_TS_NS: i64 = 631_152_000 * 1_000_000_000;
const MAX_TS_NS: i64 = 7_258_118_400 * 1_000_000_000;
/// How far a bar's close may be ahead of its receipt (clocks a little apart).
const CLOCK_SLACK_NS: i64 = 5_000_000_000;
/// The largest price and volume taken (a price in nanodollars stays far from overflow).
const MAX_PRICE: f64 = 1e7;
const MAX_VOLUME: f64 = 1e15;

/// What a bar is checked against.
struct Prior {
    /// The symbol's last bar taken.
    last_ts_ns: i64,
    /// The day the feed is on.
    feed_date: Option<NaiveDate>,
    /// When the line arrived (journaled, so a restart checks it the same way).
    received_ns: i64,
}

/// Why a parsed bar is not a good one, if it is not.
fn check(
    b: &Line,
    ts_ns: i64,
    date: NaiveDate,
    sec: i64,
    prior: &Prior,
    bar: BarSize,
) -> std::result::Result<(), String> {
    let iso = crate::clock::iso_ny;
    let bar_ns = bar.secs() as i64 * 1_000_000_000;
    if ts_ns + bar_ns > prior.received_ns + CLOCK_SLACK_NS {
        return Err(format!(
            "the bar {} has not closed yet: its close is {:.1} s after it arrived (the producer's clock or dates are wrong)",
            iso(ts_ns),
            (ts_ns + bar_ns - prior.received_ns) as f64 * 1e-9
        ));
    }
    if !(0..86_400).contains(&sec) {
        return Err(format!(
            "ts {} falls outside its New York day (a daylight-saving shift on a weekend night)",
            iso(ts_ns)
        ));
    }
    let (last_ts_ns, feed_date) = (prior.last_ts_ns, prior.feed_date);
    if let Some(d) = feed_date
        && date < d
    {
        return Err(format!(
            "a bar of {date} after the feed moved on to {d}: days go in order"
        ));
    }
    if ts_ns <= last_ts_ns {
        return Err(format!(
            "out of order: {} is not after {}'s last bar {}",
            iso(ts_ns),
            b.symbol,
            iso(last_ts_ns)
        ));
    }
    if ts_ns % 1_000_000_000 != 0 || sec % bar.secs() as i64 != 0 {
        return Err(format!(
            "ts {} is not on the {} bar grid (bars start on whole multiples of {} s from midnight)",
            iso(ts_ns),
            bar.as_str(),
            bar.secs()
        ));
    }
    for (name, v) in [
        ("open", b.open),
        ("high", b.high),
        ("low", b.low),
        ("close", b.close),
    ] {
        // Checked as kept: to the nanodollar.
        if !(v.is_finite() && v <= MAX_PRICE && Price::from_dollars(v).0 > 0) {
            return Err(format!(
                "{name} {v} is not a price (positive to the nanodollar, at most {MAX_PRICE})"
            ));
        }
    }
    if b.low > b.open.min(b.close) || b.high < b.open.max(b.close) {
        return Err(format!(
            "prices are inconsistent: low {} high {} with open {} close {}",
            b.low, b.high, b.open, b.close
        ));
    }
    if !(b.volume.is_finite() && (0.0..=MAX_VOLUME).contains(&b.volume)) {
        return Err(format!(
            "volume {} is not a number of shares from 0 to {MAX_VOLUME}",
            b.volume
        ));
    }
    // A quote needs both sides; one that is not usable (crossed, or a side at zero) is
    // kept out of the book, as the cache builder keeps it out.
    if b.bid.is_some() != b.ask.is_some() {
        return Err(format!(
            "quote bid {:?} ask {:?}: give both sides or neither",
            b.bid, b.ask
        ));
    }
    if b.bid.is_none() && (b.bid_size.is_some() || b.ask_size.is_some()) {
        return Err("bid_size/ask_size without a quote: send them with bid and ask".into());
    }
    if b.buy_volume.is_some() != b.sell_volume.is_some() {
        return Err(format!(
            "trade flow buy_volume {:?} sell_volume {:?}: give both or neither",
            b.buy_volume, b.sell_volume
        ));
    }
    for (name, v) in [
        ("bid_size", b.bid_size),
        ("ask_size", b.ask_size),
        ("buy_volume", b.buy_volume),
        ("sell_volume", b.sell_volume),
    ] {
        if let Some(v) = v
            && !(v.is_finite() && (0.0..=MAX_VOLUME).contains(&v))
        {
            return Err(format!(
                "{name} {v} is not a number of shares from 0 to {MAX_VOLUME}"
            ));
        }
    }
    Ok(())
}

/// Where a stream's lines come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    Stdin,
    /// Listen on a loopback address; producers connect one after another.
    Tcp(std::net::SocketAddr),
}

impl Source {
    /// `stdin` or `tcp:HOST:PORT` (loopback).
    pub fn parse(feed: &str) -> Result<Source> {
        if feed == "stdin" {
            return Ok(Source::Stdin);
        }
        let Some(addr) = feed.strip_prefix("tcp:") else {
            return Err(Error::Usage(format!(
                "--feed {feed}: the feeds are replay:CACHE_DIR, stdin and tcp:127.0.0.1:PORT"
            )));
        };
        let a: std::net::SocketAddr = addr.parse().map_err(|_| {
            Error::Usage(format!(
                "--feed {feed}: give a loopback address and port, e.g. tcp:127.0.0.1:9100"
            ))
        })?;
        if !a.ip().is_loopback() {
            return Err(Error::Usage(format!(
                "--feed {feed}: the stream listens on loopback only (127.0.0.1 or [::1]); relay remote feeds through a local producer"
            )));
        }
        Ok(Source::Tcp(a))
    }
}

/// A line and when it arrived, or the end of the feed.
pub enum Message {
    Line(String, i64),
    End,
}

/// Starts reading `source` on a thread; lines arrive on the returned channel. A TCP
/// source reports the address it listens on (port 0 picks a free one) through `bound`.
pub fn spawn(
    source: &Source,
) -> Result<(
    crossbeam_channel::Receiver<Message>,
    Option<std::net::SocketAddr>,
)> {
    let (tx, rx) = crossbeam_channel::bounded(1 << 16);
    match source {
        Source::Stdin => {
            std::thread::Builder::new()
                .name("feed-stdin".into())
                .spawn(move || {
                    let stdin = std::io::stdin();
                    read_lines(stdin.lock(), &tx);
                    let _ = tx.send(Message::End);
                })
                .map_err(|e| Error::io(std::path::Path::new("stdin"), e))?;
            Ok((rx, None))
        }
        Source::Tcp(addr) => {
            let listener =
                std::net::TcpListener::bind(addr).at(std::path::Path::new(&addr.to_string()))?;
            let bound = listener
                .local_addr()
                .at(std::path::Path::new(&addr.to_string()))?;
            tracing::info!(%bound, "live: feed listening for bar producers");
            std::thread::Builder::new()
                .name("feed-tcp".into())
                .spawn(move || {
                    // A thread per producer: one that hangs does not hold up the next.
                    for conn in listener.incoming() {
                        match conn {
                            Ok(c) => {
                                let tx = tx.clone();
                                let peer = c.peer_addr().map_or("?".into(), |a| a.to_string());
                                tracing::info!(%peer, "live: feed producer connected");
                                let spawned = std::thread::Builder::new()
                                    .name("feed-producer".into())
                                    .spawn(move || {
                                        read_lines(std::io::BufReader::new(c), &tx);
                                        tracing::info!(%peer, "live: feed producer disconnected");
                                    });
                                if let Err(e) = spawned {
                                    tracing::warn!("live: no thread for a feed producer: {e}");
                                }
                            }
                            Err(e) => tracing::warn!("live: feed accept failed: {e}"),
                        }
                    }
                })
                .map_err(|e| Error::io(std::path::Path::new(&addr.to_string()), e))?;
            Ok((rx, Some(bound)))
        }
    }
}

/// Sends `r`'s lines; false once the receiver is gone.
fn read_lines<R: BufRead>(mut r: R, tx: &crossbeam_channel::Sender<Message>) -> bool {
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf) {
            Ok(0) => return true,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf).into_owned();
                if line.trim().is_empty() {
                    continue;
                }
                if tx
                    .send(Message::Line(line, super::engine::now_ns()))
                    .is_err()
                {
                    return false;
                }
            }
            Err(e) => {
                tracing::warn!("live: feed read failed: {e}");
                return true;
            }
        }
    }
}

/// What to run on a stream.
pub struct StreamRequest {
    pub bundle: std::path::PathBuf,
    /// The symbols traded (bars of others are refused).
    pub symbols: Vec<String>,
    pub bar: BarSize,
    pub calendar: Calendar,
    pub journal: std::path::PathBuf,
    /// fsync the journal at each group commit (else flush to the OS only).
    pub fsync: bool,
    pub risk: super::risk::RiskConfig,
    pub watchdog: super::watchdog::WatchdogConfig,
    pub controls: Option<std::sync::Arc<super::control::Controls>>,
    /// A cache to warm the features up from ([`Stream::warm_up_from`]).
    pub warmup: Option<std::path::PathBuf>,
}

/// The engine and the stream for `req`, with a journal being continued caught up: its
/// input lines fed again and every derived record checked.
fn open(req: &StreamRequest) -> Result<(Engine, Stream)> {
    use super::engine::EngineOptions;
    if req.symbols.is_empty() {
        return Err(Error::Usage(
            "a stream feed needs the symbols it trades: --symbols A,B,…".into(),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(twice) = req.symbols.iter().find(|s| !seen.insert(*s)) {
        return Err(Error::Usage(format!(
            "--symbols lists {twice} twice: each symbol is one account; list it once"
        )));
    }
    let bundle = crate::bundle::Bundle::open(&req.bundle)?;
    let policy = crate::bundle::native::NativePolicy::from_bundle(&bundle)?;
    let (resolved, params) = bundle.stream_environment()?;
    let start = crate::backtest::start_sec(&resolved.config)?;
    let opened = super::journal::Journal::open(&req.journal, false)?;
    let mut engine = Engine::paper(
        policy,
        params,
        start,
        &req.symbols,
        opened,
        EngineOptions {
            fsync: req.fsync,
            risk: req.risk.clone(),
            watchdog: req.watchdog.clone(),
            controls: req.controls.clone(),
        },
    );
    let mut stream = Stream::new(
        &req.symbols,
        req.calendar.clone(),
        req.bar,
        &engine.params().clone(),
        resolved.config.features.benchmark(),
    );
    if let Some(cache) = &req.warmup {
        stream.warm_up_from(cache)?;
    }
    for (line, received_ns) in engine.journaled_inputs() {
        if req.controls.as_ref().is_some_and(|c| c.stop_requested()) {
            return Err(Error::Usage(format!(
                "stopped (SIGTERM / SIGINT) while catching up with the journal {}; it is unchanged: run again to continue",
                req.journal.display()
            )));
        }
        stream.on_line(&mut engine, &line, received_ns)?;
    }
    engine.check_caught_up()?;
    engine.commit()?;
    Ok((engine, stream))
}

/// Runs the live engine on a stream from `source` until it ends (stdin's end) or a stop
/// is asked for (`SIGTERM` / `SIGINT`). `ready` is called once the feed is open, with the
/// TCP address it listens on.
pub fn run(
    req: StreamRequest,
    source: &Source,
    ready: &dyn Fn(Option<std::net::SocketAddr>),
) -> Result<super::engine::LiveSummary> {
    let (mut engine, mut stream) = open(&req)?;
    let (rx, bound) = spawn(source)?;
    ready(bound);
    let stop = || req.controls.as_ref().is_some_and(|c| c.stop_requested());
    loop {
        if stop() {
            tracing::info!("live: stop requested; ending the stream");
            break;
        }
        match rx.recv_timeout(std::time::Duration::from_millis(100)) {
            Ok(Message::Line(line, received_ns)) => {
                stream.on_line(&mut engine, &line, received_ns)?;
                if rx.is_empty() {
                    engine.idle()?;
                }
            }
            Ok(Message::End) | Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => engine.idle()?,
        }
    }
    engine.finish()
}

/// Runs the live engine on `lines` in this thread, one after another as fast as they are
/// handled (`bench live --stream`).
pub fn run_lines(
    req: StreamRequest,
    lines: impl IntoIterator<Item = String>,
) -> Result<super::engine::LiveSummary> {
    let (mut engine, mut stream) = open(&req)?;
    for line in lines {
        stream.on_line(&mut engine, &line, super::engine::now_ns())?;
    }
    engine.finish()
}

/// The bars of `cache`'s selected days as feed lines, in time order across symbols (the
/// cache's benchmark first within a bar time, whether selected or not, then symbols in
/// name order), with each bar's closing quote and sizes when the cache has a usable one,
/// its trade flow when it has one, and `halted` in a halt: what a producer would send.
pub fn cache_lines(
    cache: &std::path::Path,
    selection: &crate::env::DaySelection,
) -> Result<Vec<String>> {
    let catalog = crate::cache::Catalog::load_existing(cache)?;
    let benchmark = catalog.settings.as_ref().and_then(|s| s.benchmark.clone());
    let mut rows: Vec<FeedRow> = Vec::new();
    for e in catalog.entries.values() {
        let wanted = (selection
            .symbols
            .as_ref()
            .is_none_or(|s| s.contains(&e.symbol))
            || benchmark.as_ref() == Some(&e.symbol))
            && selection.from.is_none_or(|f| e.date >= f)
            && selection.to.is_none_or(|t| e.date <= t);
        if !wanted {
            continue;
        }
        let path = cache.join(&e.file);
        let day = crate::cache::DayCache::open(&path)
            .map_err(|err| Error::input(&path, err.to_string()))?;
        let halts = &day.meta().halts;
        let quotes = match (day.bid(), day.ask(), day.bid_size(), day.ask_size()) {
            (Some(b), Some(a), Some(bs), Some(az)) => Some((b, a, bs, az)),
            _ => None,
        };
        let flow = day.buy_volume().zip(day.sell_volume());
        let first = benchmark.as_ref() != Some(&e.symbol);
        for i in 0..day.rows() {
            let ts = day.ts_ns()[i];
            let line = LineBar {
                ohlc: [
                    day.opens()[i],
                    day.highs()[i],
                    day.lows()[i],
                    day.closes()[i],
                ],
                volume: day.volumes()[i],
                quote: quotes.map(|(b, a, bs, az)| (b[i], a[i], bs[i], az[i])),
                flow: flow.map(|(b, s)| (b[i], s[i])),
                halted: halts.iter().any(|h| ts >= h.start_ns && ts < h.end_ns),
            }
            .line(&e.symbol, ts);
            rows.push((ts, first, e.symbol.clone(), line));
        }
    }
    rows.sort();
    Ok(rows.into_iter().map(|r| r.3).collect())
}

/// A feed line with its sort key: bar start, `false` for the benchmark (first within a
/// time), symbol.
type FeedRow = (i64, bool, String, String);

/// A vendor's files replayed as a stream (`--feed replay:KIND:PATH`).
pub struct VendorReplay {
    pub kind: crate::ingest::SourceKind,
    pub input: std::path::PathBuf,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// Replay at this many times real time within a day (`None`: as fast as possible).
    pub pace: Option<f64>,
}

/// Replays a vendor's files through the stream path: each date's bars read by the cache
/// builder's source, validated by its causal rules ([`vendor_lines`]), and fed as lines
/// in time order across symbols (prices as the vendor gives them, unadjusted, as a live
/// feed does).
/// Features are computed bar by bar, so a replay of the files a cache was built from
/// makes that cache's decisions (tested). A restart feeds the journal's lines again,
/// skips the days already done and resends the current day (taken lines are skipped).
pub fn replay_vendor(
    req: StreamRequest,
    vendor: &VendorReplay,
    resolved: &crate::config::Resolved,
) -> Result<super::engine::LiveSummary> {
    let (mut engine, mut stream) = open(&req)?;
    // The benchmark is read with the symbols traded, for their cross-sectional features.
    let read: Vec<String> = req
        .symbols
        .iter()
        .cloned()
        .chain(stream.benchmark.clone())
        .collect();
    let build = crate::build::BuildRequest {
        source: vendor.kind,
        input: Some(vendor.input.clone()),
        cache_dir: std::path::PathBuf::new(),
        symbols: Some(read.clone()),
        from: vendor.from,
        to: vendor.to,
        bar: req.bar,
        adjust: crate::adjust::AdjustMode::None,
    };
    let selection = crate::ingest::Selection {
        symbols: Some(read.into_iter().collect()),
        from: vendor.from,
        to: vendor.to,
        bar: req.bar,
    };
    let source = crate::build::open_source(&build, selection, resolved, &req.calendar)?;
    let benchmark = stream.benchmark.clone();
    let stop = || req.controls.as_ref().is_some_and(|c| c.stop_requested());
    for date in source.dates()? {
        if engine.date().is_some_and(|d| date < d) {
            continue;
        }
        let lines = vendor_lines(
            source.as_ref(),
            date,
            &req.calendar,
            req.bar,
            &resolved.config.ingest.validation,
            benchmark.as_deref(),
        )?;
        let mut paced: Option<(i64, std::time::Instant)> = None;
        for (ts, _, line) in lines {
            if stop() {
                tracing::info!("live: stop requested; ending the replay");
                return engine.finish();
            }
            if let Some(k) = vendor.pace {
                let (t0, wall) = *paced.get_or_insert((ts, std::time::Instant::now()));
                let due = wall + std::time::Duration::from_secs_f64((ts - t0) as f64 * 1e-9 / k);
                if let Some(wait) = due.checked_duration_since(std::time::Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            stream.on_line(&mut engine, &line, super::engine::now_ns())?;
        }
    }
    engine.finish()
}

/// One date of a vendor's files as feed lines `(start, symbol, line)`, in time order across
/// symbols (`benchmark` first within a bar time, then symbols in name order): each
/// symbol-day read by the cache builder's source and validated by the builder's rules,
/// always causally (`lookahead_outliers` is ignored here: a feed cannot see the next bar,
/// and a replay stands for a feed). Suspect prints are left for the stream's own check.
pub fn vendor_lines(
    source: &dyn crate::ingest::Source,
    date: NaiveDate,
    calendar: &Calendar,
    bar: BarSize,
    validation: &crate::config::ValidationConfig,
    benchmark: Option<&str>,
) -> Result<Vec<(i64, String, String)>> {
    let causal = crate::config::ValidationConfig {
        lookahead_outliers: false,
        ..validation.clone()
    };
    let session = crate::build::session_or_default(calendar, date);
    let mut rows: Vec<FeedRow> = Vec::new();
    for mut raw in source.load_date(date)? {
        let report = crate::build::validate_for(&mut raw, &session, bar, &causal)?;
        if report.dropped.is_none() {
            let first = benchmark != Some(raw.symbol.as_str());
            rows.extend(
                raw_lines(&raw)
                    .into_iter()
                    .map(|(ts, line)| (ts, first, raw.symbol.clone(), line)),
            );
        }
    }
    rows.sort();
    Ok(rows
        .into_iter()
        .map(|(ts, _, sym, line)| (ts, sym, line))
        .collect())
}

/// A validated day's bars as feed lines, with their start times.
fn raw_lines(raw: &crate::bars::RawDay) -> Vec<(i64, String)> {
    (0..raw.len())
        .map(|i| {
            let ts = raw.ts_ns[i];
            let line = LineBar {
                ohlc: [raw.open[i], raw.high[i], raw.low[i], raw.close[i]],
                volume: raw.volume[i],
                quote: raw
                    .quotes
                    .as_ref()
                    .map(|q| (q.bid[i], q.ask[i], q.bid_size[i], q.ask_size[i])),
                flow: raw
                    .flow
                    .as_ref()
                    .map(|f| (f.buy_volume[i], f.sell_volume[i])),
                halted: raw.is_halted(ts),
            }
            .line(&raw.symbol, ts);
            (ts, line)
        })
        .collect()
}

/// One bar's fields as a producer sends them.
struct LineBar {
    ohlc: [Price; 4],
    volume: u64,
    /// Bid, ask, bid size, ask size at the close.
    quote: Option<(Price, Price, u64, u64)>,
    /// Volume initiated by buyers, by sellers.
    flow: Option<(u64, u64)>,
    halted: bool,
}

impl LineBar {
    /// The bar as a feed line: OHLC, volume, the closing quote with its sizes when it is
    /// usable (both sides positive, not crossed), the trade flow when known, and `halted`
    /// in a halt.
    fn line(&self, symbol: &str, ts_ns: i64) -> String {
        let ohlc = &self.ohlc;
        let mut bar = serde_json::json!({
            "symbol": symbol,
            "ts": ts_ns,
            "open": ohlc[0].dollars(),
            "high": ohlc[1].dollars(),
            "low": ohlc[2].dollars(),
            "close": ohlc[3].dollars(),
            "volume": self.volume,
        });
        if let Some((b, a, bs, az)) = self.quote
            && b.0 > 0
            && a.0 >= b.0
        {
            bar["bid"] = serde_json::json!(b.dollars());
            bar["ask"] = serde_json::json!(a.dollars());
            bar["bid_size"] = serde_json::json!(bs);
            bar["ask_size"] = serde_json::json!(az);
        }
        if let Some((buy, sell)) = self.flow {
            bar["buy_volume"] = serde_json::json!(buy);
            bar["sell_volume"] = serde_json::json!(sell);
        }
        if self.halted {
            bar["halted"] = serde_json::json!(true);
        }
        bar.to_string()
    }
}
