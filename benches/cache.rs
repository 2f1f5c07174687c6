//! Criterion benchmarks of the data layer's hot pieces, on one synthetic 1-second day
//! (the `[synth]` generator, seed 7) on the CPU:
//!
//! - `features/update`: incremental features v1, bars/s;
//! - `cache/write_day`: one day cache written atomically (with fsync), bytes/s;
//! - `cache/open_verify`: open + full checksum verification, bytes/s;
//! - `cache/scan_feature` vs `cache/memcpy`: one feature column read from the mmap vs a
//!   memcpy of the same bytes;
//! - `cache/clock_lookup`: latest bar at or before a clock time;
//! - `ticks/*`: Databento-style trades and quotes to bar columns
//!   ([`sim_train::ingest::ticks`]): one regular session of 1,000,000 trades and 2,000,000
//!   quote updates (seeded), bars built from the trades, then the trade columns (Lee–Ready
//!   classification) and the quote columns; trades/s and quotes/s.
//!
//! Run: `cargo bench --bench cache` (figures and dates: benches/NOTES.md).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sim_train::bars::{BarSize, Price, RawDay};
use sim_train::bench::sum_f32;
use sim_train::build::{BuildRequest, build_cache};
use sim_train::cache::{DayCache, list_day_files};
use sim_train::features::{FeatureState, N_FEATURES, QuoteInput};
use sim_train::ingest::ticks::{self, Quote, Trade};
use std::hint::black_box;

fn one_day_cache() -> (tempfile::TempDir, DayCache) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut r = sim_train::config::load(None, &[]).expect("default config");
    r.config.synth.symbols = 1;
    r.config.synth.days = 1;
    r.config.synth.bar = sim_train::bars::BarSize::S1;
    let req = BuildRequest {
        source: sim_train::ingest::SourceKind::Synth,
        input: None,
        cache_dir: dir.path().join("c"),
        symbols: None,
        from: None,
        to: None,
        bar: sim_train::bars::BarSize::S1,
        adjust: sim_train::adjust::AdjustMode::None,
    };
    build_cache(&req, &r, false).expect("build");
    let file = list_day_files(&dir.path().join("c")).expect("list")[0].clone();
    let day = DayCache::open(file).expect("open");
    (dir, day)
}

fn benches(c: &mut Criterion) {
    let (_dir, day) = one_day_cache();
    let n = day.rows();
    // The synthetic day's bars, with a quote, trade flow and a benchmark close added so
    // every feature is computed (the most work a bar can take).
    let (ctx, mut bars) = sim_train::build::cached_inputs(&day, None);
    for (i, b) in bars.iter_mut().enumerate() {
        b.quote = Some(QuoteInput {
            bid: b.close - 0.01,
            ask: b.close + 0.01 * (1 + i % 2) as f64,
            bid_size: 100.0 * (1 + i % 3) as f64,
            ask_size: 100.0 * (1 + i % 5) as f64,
        });
        b.flow = Some((0.4 * b.volume, 0.6 * b.volume));
        b.bench_close = Some(4.0 * b.close * (1.0 + 1e-4 * (i % 7) as f64));
    }

    let mut g = c.benchmark_group("features");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(BenchmarkId::new("update", format!("{n} bars")), |b| {
        b.iter(|| {
            let mut st = FeatureState::new();
            st.begin_day(ctx);
            let mut out = [0f32; N_FEATURES];
            for bar in &bars {
                st.update(bar, &mut out);
            }
            black_box(out)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("cache");
    let file_len = day.file_len() as u64;
    g.throughput(Throughput::Bytes(file_len));
    g.bench_function(
        BenchmarkId::new("open_verify", format!("{file_len} B")),
        |b| b.iter(|| black_box(DayCache::open(day.path()).expect("open").rows())),
    );

    let col = day.feature(0);
    let bytes = (col.len() * 4) as u64;
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function(
        BenchmarkId::new("scan_feature", format!("{bytes} B")),
        |b| b.iter(|| black_box(sum_f32(black_box(col)))),
    );
    let src = col.to_vec();
    let mut dst = vec![0f32; src.len()];
    g.bench_function(BenchmarkId::new("memcpy", format!("{bytes} B")), |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&src));
            black_box(&mut dst);
        })
    });

    let clock = day.clock();
    let span = clock.spec.n_slots as i64;
    g.throughput(Throughput::Elements(1024));
    g.bench_function("clock_lookup", |b| {
        let mut x = 12345u64;
        b.iter(|| {
            let mut acc = 0u32;
            for _ in 0..1024 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let sec = clock.spec.first_slot_sec as i64 + (x % span as u64) as i64;
                acc = acc.wrapping_add(clock.latest_at_or_before(sec).unwrap_or(0));
            }
            black_box(acc)
        })
    });
    g.finish();

    ticks(c);
}

/// A regular session (09:30–16:00, ns since midnight) of `n` trades around $50 and twice as
/// many quote updates, a random walk in cents, seeded.
fn session_ticks(n: usize) -> (Vec<Trade>, Vec<Quote>) {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let span = 23_400i64 * 1_000_000_000;
    let cent = 10_000_000i64; // nanodollars
    let (mut mid, mut trades, mut quotes) = (5_000 * cent, Vec::with_capacity(n), Vec::new());
    for k in 0..2 * n {
        let ts = 34_200 * 1_000_000_000 + span * k as i64 / (2 * n) as i64;
        mid += (next() % 3) as i64 * cent - cent;
        let (bid, ask) = (Price(mid - cent), Price(mid + cent));
        quotes.push(Quote {
            ts_recv: ts,
            bid,
            ask,
            bid_size: 100 + next() % 900,
            ask_size: 100 + next() % 900,
        });
        if k % 2 == 1 {
            let r = next();
            let price = [bid, ask, Price(mid)][(r % 3) as usize];
            trades.push(Trade {
                ts_event: ts + 500,
                ts_recv: ts + 600,
                price,
                size: 1 + (r >> 8) % 500,
                quote: None,
            });
        }
    }
    (trades, quotes)
}

fn ticks(c: &mut Criterion) {
    let n = 1_000_000;
    let (trades, quotes) = session_ticks(n);
    let date = chrono::NaiveDate::from_ymd_opt(2024, 1, 2).expect("date");
    let mut g = c.benchmark_group("ticks");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(
        BenchmarkId::new("bars_and_trade_columns", format!("{n} trades")),
        |b| {
            b.iter(|| {
                let mut day = RawDay::new("X", date, BarSize::S1, "bench");
                ticks::bars_from_trades(&mut day, &trades, BarSize::S1, 0);
                ticks::attach_trades(&mut day, &trades, &quotes, BarSize::S1);
                black_box(day.len())
            })
        },
    );
    let mut day = RawDay::new("X", date, BarSize::S1, "bench");
    ticks::bars_from_trades(&mut day, &trades, BarSize::S1, 0);
    g.throughput(Throughput::Elements(quotes.len() as u64));
    g.bench_function(
        BenchmarkId::new(
            "quote_columns",
            format!("{} quotes, {} bars", quotes.len(), day.len()),
        ),
        |b| {
            b.iter(|| {
                ticks::attach_quotes(&mut day, &quotes, BarSize::S1);
                black_box(day.quotes.as_ref().map(|q| q.len()))
            })
        },
    );
    g.finish();
}

criterion_group!(name = data; config = Criterion::default().sample_size(20); targets = benches);
criterion_main!(data);
