//! Trades and quotes to bar columns: the microstructure a one-second agent needs, from tick
//! records (Databento `trades`, `tbbo`, `mbp-1`, `bbo-1s` / `bbo-1m`).
//!
//! - **Quotes at each bar's close**: the last top of book received at or before the bar's
//!   end (`ts_recv <= start + bar`), carried forward from earlier bars; a side the record
//!   leaves undefined is stored as 0 (not a usable quote: the environments need
//!   `bid > 0` and `ask >= bid`).
//! - **Trade columns per bar** (trades by `ts_event`, the clock Databento's own OHLCV bars
//!   use): the trade count, VWAP (`Σ price·size / Σ size`, to the nanodollar; 0 in a bar
//!   without trade records), and the volume initiated by buyers and by sellers.
//! - **Who initiated a trade**, Lee and Ready (1991): the **quote rule** against the
//!   quote in force before the trade (the trade's own, for `tbbo`; else the last quote
//!   received at or before the trade): above the mid a buy, below a sell. At the mid, or
//!   without a usable quote, the **tick rule**: above the last different trade price of the
//!   day a buy, below a sell; with no earlier different price, unclassified (in neither
//!   column). The vendor's own aggressor side is not used, so every source is classified
//!   the same way.
//! - **Bars from trades**, when no OHLCV file covers the symbol-day: open, high, low and
//!   close of the trade prices in `ts_event` order and their summed size, per clock slot
//!   of the New York day (Databento's own OHLCV aggregation, which the tests check it
//!   against on the real samples).

use crate::bars::{BarSize, Price, Quotes, RawDay, TradeFlow};

/// One trade.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Trade {
    /// Matching-engine time: the bar it belongs to.
    pub ts_event: i64,
    /// When it was received: what it can be compared with.
    pub ts_recv: i64,
    pub price: Price,
    pub size: u64,
    /// The top of book just before the trade, when the record carries it (`tbbo`).
    pub quote: Option<(Price, Price)>,
}

/// One top-of-book update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quote {
    /// When it was received.
    pub ts_recv: i64,
    pub bid: Price,
    pub ask: Price,
    pub bid_size: u64,
    pub ask_size: u64,
}

/// Who initiated a trade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Buy,
    Sell,
    Unknown,
}

/// A quote that can say where a price sits: both sides positive, not crossed.
fn usable(q: (Price, Price)) -> Option<(Price, Price)> {
    (q.0.0 > 0 && q.1 >= q.0).then_some(q)
}

/// Classifies `trades` (in time order) with the quote rule and the tick rule; `quotes` (in
/// `ts_recv` order) give the quote in force for trades that carry none.
pub fn classify(trades: &[Trade], quotes: &[Quote]) -> Vec<Side> {
    let mut sides = Vec::with_capacity(trades.len());
    let mut q = 0; // quotes[..q] were received at or before the current trade
    let mut last_price: Option<Price> = None;
    let mut tick = Side::Unknown;
    for t in trades {
        while q < quotes.len() && quotes[q].ts_recv <= t.ts_recv {
            q += 1;
        }
        // The tick rule's direction: the last price change, this trade's included.
        if let Some(prev) = last_price {
            if t.price > prev {
                tick = Side::Buy;
            } else if t.price < prev {
                tick = Side::Sell;
            }
        }
        last_price = Some(t.price);
        let in_force = t
            .quote
            .or_else(|| q.checked_sub(1).map(|i| (quotes[i].bid, quotes[i].ask)))
            .and_then(usable);
        let side = match in_force {
            // Compared in integer nanodollars, doubled: price vs bid + ask.
            Some((bid, ask)) => {
                let (twice, mid2) = (2 * t.price.0 as i128, bid.0 as i128 + ask.0 as i128);
                if twice > mid2 {
                    Side::Buy
                } else if twice < mid2 {
                    Side::Sell
                } else {
                    tick
                }
            }
            None => tick,
        };
        sides.push(side);
    }
    sides
}

/// The clock slot (bar start, UTC ns) of `ts_ns` on `bar`'s grid of the New York day that
/// starts at `midnight_ns`.
fn slot_start(ts_ns: i64, midnight_ns: i64, bar_ns: i64) -> i64 {
    midnight_ns + (ts_ns - midnight_ns).div_euclid(bar_ns) * bar_ns
}

/// OHLCV bars of `bar` (intraday) from `trades` (sorted by `ts_event`), for the New York
/// day starting at `midnight_ns`.
pub fn bars_from_trades(day: &mut RawDay, trades: &[Trade], bar: BarSize, midnight_ns: i64) {
    let bar_ns = bar.secs() as i64 * 1_000_000_000;
    for t in trades {
        let start = slot_start(t.ts_event, midnight_ns, bar_ns);
        let last = day.len().checked_sub(1);
        match last {
            Some(i) if day.ts_ns[i] == start => {
                day.high[i] = day.high[i].max(t.price);
                day.low[i] = day.low[i].min(t.price);
                day.close[i] = t.price;
                day.volume[i] += t.size;
            }
            _ => day.push(start, t.price, t.price, t.price, t.price, t.size),
        }
    }
}

/// `day`'s rows in time order (a source's rows may come unsorted; validation sorts later).
fn time_order(day: &RawDay) -> Vec<usize> {
    let mut order: Vec<usize> = (0..day.len()).collect();
    order.sort_by_key(|&i| day.ts_ns[i]);
    order
}

/// Sets `day`'s trade columns (transactions, VWAP, buy and sell volume) from `trades`
/// (sorted by `ts_event`) classified by [`classify`]. A trade in no bar of `day` counts
/// nowhere.
pub fn attach_trades(day: &mut RawDay, trades: &[Trade], quotes: &[Quote], bar: BarSize) {
    let bar_ns = bar.secs() as i64 * 1_000_000_000;
    let sides = classify(trades, quotes);
    let n = day.len();
    let mut count = vec![0u32; n];
    let mut flow = TradeFlow {
        buy_volume: vec![0; n],
        sell_volume: vec![0; n],
    };
    let mut notional = vec![0i128; n];
    let mut size = vec![0u64; n];
    let order = time_order(day);
    let mut k = 0;
    for (t, side) in trades.iter().zip(sides) {
        while k < n && day.ts_ns[order[k]] + bar_ns <= t.ts_event {
            k += 1;
        }
        if k == n || day.ts_ns[order[k]] > t.ts_event {
            continue; // in no bar of the day (the OHLCV file has none there)
        }
        let row = order[k];
        count[row] = count[row].saturating_add(1);
        notional[row] += t.price.0 as i128 * t.size as i128;
        size[row] += t.size;
        match side {
            Side::Buy => flow.buy_volume[row] += t.size,
            Side::Sell => flow.sell_volume[row] += t.size,
            Side::Unknown => {}
        }
    }
    let vwap = notional
        .iter()
        .zip(&size)
        .map(|(&pv, &s)| {
            if s == 0 {
                Price(0)
            } else {
                // Rounded half away from zero to the nanodollar (prices are positive).
                Price(((2 * pv + s as i128) / (2 * s as i128)) as i64)
            }
        })
        .collect();
    day.transactions = Some(count);
    day.vwap = Some(vwap);
    day.flow = Some(flow);
}

/// Sets `day`'s quote columns: the last of `quotes` (sorted by `ts_recv`) received at or
/// before each bar's end. Bars before the first quote get an empty book (zeros).
pub fn attach_quotes(day: &mut RawDay, quotes: &[Quote], bar: BarSize) {
    let bar_ns = bar.secs() as i64 * 1_000_000_000;
    let n = day.len();
    let mut out = Quotes {
        bid: vec![Price(0); n],
        ask: vec![Price(0); n],
        bid_size: vec![0; n],
        ask_size: vec![0; n],
    };
    let mut q = 0;
    for row in time_order(day) {
        while q < quotes.len() && quotes[q].ts_recv <= day.ts_ns[row] + bar_ns {
            q += 1;
        }
        if let Some(x) = q.checked_sub(1).map(|i| quotes[i]) {
            out.bid[row] = x.bid;
            out.ask[row] = x.ask;
            out.bid_size[row] = x.bid_size;
            out.ask_size[row] = x.ask_size;
        }
    }
    day.quotes = Some(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn px(d: f64) -> Price {
        Price::from_dollars(d)
    }
    fn trade(ts: i64, p: f64, size: u64, quote: Option<(f64, f64)>) -> Trade {
        Trade {
            ts_event: ts,
            ts_recv: ts + 1,
            price: px(p),
            size,
            quote: quote.map(|(b, a)| (px(b), px(a))),
        }
    }
    fn quote(ts: i64, b: f64, a: f64) -> Quote {
        Quote {
            ts_recv: ts,
            bid: px(b),
            ask: px(a),
            bid_size: 100,
            ask_size: 200,
        }
    }

    #[test]
    fn the_quote_rule_decides_and_the_tick_rule_breaks_ties() {
        use Side::*;
        let trades = [
            trade(1, 10.00, 1, None), // no quote, no earlier price: unknown
            trade(2, 10.00, 1, None), // zero tick, no change yet: unknown
            trade(3, 10.01, 1, None), // uptick: buy
            trade(4, 10.01, 1, None), // zero-uptick: buy
            trade(5, 10.00, 1, Some((10.0, 10.02))), // own quote, below the mid: sell
            trade(6, 10.01, 1, Some((10.0, 10.02))), // at the mid: tick rule, up: buy
            trade(6, 10.00, 1, Some((9.99, 10.01))), // at the mid: tick rule, down: sell
            trade(7, 10.02, 1, Some((10.03, 10.01))), // crossed: tick rule, up: buy
            trade(25, 10.00, 1, None), // quote stream: 9.99 / 10.00, above mid: buy
            trade(40, 10.00, 1, None), // the later quote 10.00 / 10.04: sell
        ];
        let quotes = [quote(20, 9.99, 10.00), quote(41, 10.0, 10.04)];
        // Trades are received 1 ns after they happen: the one at 40 with the second quote.
        assert_eq!(
            classify(&trades, &quotes),
            vec![Unknown, Unknown, Buy, Buy, Sell, Buy, Sell, Buy, Buy, Sell]
        );
    }

    #[test]
    fn bars_columns_and_quotes_by_hand() {
        let s = 1_000_000_000i64;
        let midnight = 0;
        let trades = [
            trade(5 * s + 100, 10.00, 100, Some((9.99, 10.00))), // buy (at the ask)
            trade(5 * s + 200, 10.02, 50, Some((10.00, 10.02))), // buy
            trade(5 * s + 300, 9.98, 30, Some((9.98, 10.00))),   // sell
            trade(9 * s, 10.01, 10, None),                       // no quote: uptick, buy
        ];
        let mut day = RawDay::new("X", chrono::NaiveDate::MIN, BarSize::S1, "t");
        bars_from_trades(&mut day, &trades, BarSize::S1, midnight);
        assert_eq!(day.ts_ns, vec![5 * s, 9 * s]);
        assert_eq!(day.open, vec![px(10.0), px(10.01)]);
        assert_eq!(day.high, vec![px(10.02), px(10.01)]);
        assert_eq!(day.low, vec![px(9.98), px(10.01)]);
        assert_eq!(day.close, vec![px(9.98), px(10.01)]);
        assert_eq!(day.volume, vec![180, 10]);
        attach_trades(&mut day, &trades, &[], BarSize::S1);
        assert_eq!(day.transactions, Some(vec![3, 1]));
        let f = day.flow.clone().unwrap();
        assert_eq!(f.buy_volume, vec![150, 10]);
        assert_eq!(f.sell_volume, vec![30, 0]);
        // (10.00·100 + 10.02·50 + 9.98·30) / 180 = 1800.40 / 180 = 10.002222…
        assert_eq!(day.vwap, Some(vec![Price(10_002_222_222), px(10.01)]));

        // Quotes at each bar's close: received at or before start + 1 s.
        let quotes = [
            quote(2 * s, 9.0, 9.5),
            quote(6 * s, 9.97, 9.99), // exactly the first bar's end: in force there
            quote(6 * s + 1, 9.96, 9.98),
            Quote {
                ts_recv: 8 * s,
                bid: px(9.95),
                ask: Price(0), // an undefined side
                bid_size: 3,
                ask_size: 0,
            },
        ];
        attach_quotes(&mut day, &quotes, BarSize::S1);
        let q = day.quotes.unwrap();
        assert_eq!(q.bid, vec![px(9.97), px(9.95)]);
        assert_eq!(q.ask, vec![px(9.99), Price(0)]);
        assert_eq!(q.bid_size, vec![100, 3]);
        // No quote yet: an empty book.
        let mut early = RawDay::new("X", chrono::NaiveDate::MIN, BarSize::S1, "t");
        early.push(0, px(1.0), px(1.0), px(1.0), px(1.0), 1);
        attach_quotes(&mut early, &quotes, BarSize::S1);
        assert_eq!(early.quotes.unwrap().bid, vec![Price(0)]);
    }
}
