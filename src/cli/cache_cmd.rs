//! `sim-train cache …`: build, ls, inspect, export, verify.

use super::{BuildArgs, CacheCommand, ExportFormat};
use crate::bars::BarSize;
use crate::build::{BuildRequest, build_cache};
use crate::cache::export::{day_frame, write_frame};
use crate::cache::verify::verify_dir;
use crate::cache::{Catalog, DayCache, day_path};
use crate::clock::{hms, iso_ny};
use crate::config::Resolved;
use crate::error::{Error, Result};
use crate::features::{FEATURE_NAMES, N_FEATURES};
use chrono::NaiveDate;
use std::path::Path;

pub fn run(cmd: CacheCommand, resolved: &Resolved, progress: bool) -> Result<i32> {
    match cmd {
        CacheCommand::Build(a) => build(a, resolved, progress),
        CacheCommand::Ls { cache, json } => ls(&cache, json),
        CacheCommand::Inspect {
            cache,
            symbol,
            date,
            json,
        } => inspect(&cache, &symbol, date, json),
        CacheCommand::Export {
            cache,
            symbol,
            date,
            format,
            out,
        } => {
            let day = open_day(&cache, &symbol, date)?;
            let mut df = day_frame(&day)?;
            write_frame(&mut df, &out, format == ExportFormat::Parquet)?;
            tracing::info!(rows = day.rows(), out = %out.display(), "exported");
            Ok(0)
        }
        CacheCommand::Verify { cache, json } => {
            let r = verify_dir(&cache)?;
            if json {
                return super::output::json(&r);
            }
            for b in &r.bad {
                println!("BAD {}: {}", b.path.display(), b.reason);
            }
            println!(
                "verified {} files ({:.1} MB): {} bad",
                r.files,
                r.bytes as f64 / 1e6,
                r.bad.len()
            );
            Ok(if r.ok() { 0 } else { 4 })
        }
    }
}

fn build(a: BuildArgs, resolved: &Resolved, progress: bool) -> Result<i32> {
    let bar = match (a.bar, a.source) {
        (Some(b), _) => b,
        (None, crate::ingest::SourceKind::Synth) => match &a.input {
            Some(dir) => crate::synth::read_spec(dir)?.bar(),
            None => resolved.config.synth.bar,
        },
        (None, _) => BarSize::M1,
    };
    let req = BuildRequest {
        source: a.source,
        input: a.input,
        cache_dir: a.cache,
        symbols: a.symbols,
        from: a.from,
        to: a.to,
        bar,
        adjust: a.adjust.unwrap_or(resolved.config.ingest.adjust),
    };
    let s = build_cache(&req, resolved, progress)?;
    if a.json {
        return super::output::json(&s);
    }
    println!(
        "built {} symbol-days ({} symbols, {} dates, {} bars, {:.1} MB) from {} into {} in {:.2}s: {:.0} bars/s",
        s.days_written,
        s.symbols,
        s.dates,
        s.bars_written,
        s.bytes_written as f64 / 1e6,
        s.source,
        s.cache_dir.display(),
        s.elapsed_s,
        s.bars_per_s
    );
    match (&s.benchmark, s.benchmark_days) {
        (Some(b), 0) => println!(
            "benchmark {b} (features.benchmark) is not in the source: rel_ret_* and bench_corr_60 stay neutral \
             (set features.benchmark to a symbol it has, or to \"\")"
        ),
        (Some(b), n) => println!(
            "benchmark {b} (features.benchmark): {n} symbol-days of it built with the others, for their cross-sectional features"
        ),
        (None, _) => {}
    }
    if s.warmup_days_read > 0 {
        println!(
            "read {} earlier symbol-days to warm features up",
            s.warmup_days_read
        );
    }
    if s.days_dropped > 0 {
        println!(
            "dropped {} symbol-days (see validation.json)",
            s.days_dropped
        );
    }
    for (p, n) in &s.problems {
        println!("  {:<16} {n}", p.as_str());
    }
    if s.suspect_prints > 0 {
        println!(
            "  {:<16} {} (flagged in the caches' `flags` column and kept: a causal check, the live stream's own)",
            "suspect_print", s.suspect_prints
        );
    }
    if s.cleaning != "causal" {
        println!(
            "warning: ingest.validation.lookahead_outliers is on: {} bar(s) were removed with the next bar in view; \
             live trading cannot see the next bar, so it will differ from these caches (leave it off for causal cleaning)",
            s.problems
                .get(&crate::validate::Problem::Outlier)
                .copied()
                .unwrap_or(0)
        );
    }
    Ok(0)
}

fn ls(cache: &Path, json: bool) -> Result<i32> {
    let cat = Catalog::load_existing(cache)?;
    if json {
        return super::output::json(&cat);
    }
    if let Some(s) = &cat.settings {
        println!(
            "{}: {} bars, adjust {}, features {} (version {}), benchmark {}, cleaning {}, {} symbol-days",
            cache.display(),
            s.bar,
            s.adjust,
            s.feature_set,
            s.feature_version,
            s.benchmark.as_deref().unwrap_or("none"),
            s.cleaning,
            cat.entries.len()
        );
    }
    println!(
        "{:<10} {:>5} {:<10} {:<10} {:>12} {:>10}",
        "symbol", "days", "first", "last", "bars", "MB"
    );
    for sym in cat.symbols() {
        let e: Vec<_> = cat.entries.values().filter(|e| e.symbol == sym).collect();
        let rows: u64 = e.iter().map(|e| e.rows).sum();
        let bytes: u64 = e.iter().map(|e| e.bytes).sum();
        println!(
            "{:<10} {:>5} {:<10} {:<10} {:>12} {:>10.2}",
            sym,
            e.len(),
            e.first().map(|e| e.date.to_string()).unwrap_or_default(),
            e.last().map(|e| e.date.to_string()).unwrap_or_default(),
            rows,
            bytes as f64 / 1e6
        );
    }
    Ok(0)
}

/// Opens one symbol-day, with errors that say what exists instead.
pub fn open_day(cache: &Path, symbol: &str, date: NaiveDate) -> Result<DayCache> {
    let cat = Catalog::load_existing(cache)?;
    let symbol = symbol.to_ascii_uppercase();
    let Some(entry) = cat.get(&symbol, date) else {
        let dates: Vec<String> = cat
            .entries
            .values()
            .filter(|e| e.symbol == symbol)
            .map(|e| e.date.to_string())
            .collect();
        return Err(Error::NotFound(if dates.is_empty() {
            format!(
                "{}: no symbol {symbol}; it holds {}",
                cache.display(),
                cat.symbols().join(", ")
            )
        } else {
            format!(
                "{}: no {symbol} on {date}; {symbol} has {} to {} ({} days)",
                cache.display(),
                dates[0],
                dates[dates.len() - 1],
                dates.len()
            )
        }));
    };
    let path = cache.join(&entry.file);
    debug_assert_eq!(path, day_path(cache, &symbol, date));
    Ok(DayCache::open(&path)?)
}

fn inspect(cache: &Path, symbol: &str, date: NaiveDate, json: bool) -> Result<i32> {
    let day = open_day(cache, symbol, date)?;
    let m = day.meta();
    let stats: Vec<(String, f32, f32, f32)> = (0..N_FEATURES)
        .map(|k| {
            let c = day.feature(k);
            let (mn, mx) = c
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &x| {
                    (a.min(x), b.max(x))
                });
            let mean = c.iter().map(|&x| x as f64).sum::<f64>() / c.len().max(1) as f64;
            (FEATURE_NAMES[k].to_string(), mn, mean as f32, mx)
        })
        .collect();
    if json {
        let v = serde_json::json!({
            "path": day.path(),
            "meta": m,
            "bytes": day.file_len(),
            "features": stats.iter().map(|(n, a, b, c)| serde_json::json!({"name": n, "min": a, "mean": b, "max": c})).collect::<Vec<_>>(),
        });
        return super::output::json(&v);
    }
    println!(
        "{} {} {} — {} bars, {} bytes, {}",
        m.symbol,
        m.date,
        m.bar,
        m.rows,
        day.file_len(),
        day.path().display()
    );
    println!(
        "source   {} ({}), adjust {}, features {} (version {})",
        m.source, m.origin, m.adjust, m.feature_set, m.feature_version
    );
    let s = m.session;
    println!(
        "session  pre {} regular {}–{} post {}{} (UTC{:+03}:00)",
        hms(s.pre_open_sec as i64),
        hms(s.open_sec as i64),
        hms(s.close_sec as i64),
        hms(s.post_close_sec as i64),
        if s.early_close { " early close" } else { "" },
        m.utc_offset_sec / 3600
    );
    let suspects: Vec<String> = day
        .flags()
        .map(|f| {
            (0..day.rows())
                .filter(|&i| f[i] & crate::cache::FLAG_SUSPECT != 0)
                .map(|i| hms(day.sec_of_day(i)))
                .collect()
        })
        .unwrap_or_default();
    println!(
        "cleaning {}   suspect prints {}{}",
        m.cleaning
            .as_deref()
            .unwrap_or("not recorded (built before it was)"),
        suspects.len(),
        if suspects.is_empty() {
            String::new()
        } else {
            format!(
                " (at {}{})",
                suspects[..suspects.len().min(5)].join(", "),
                if suspects.len() > 5 { ", …" } else { "" }
            )
        }
    );
    println!(
        "prev close {}   halts {}",
        m.prev_close.map_or("none".to_string(), |p| p.to_string()),
        if m.halts.is_empty() {
            "none".to_string()
        } else {
            crate::cache::writer::halt_secs(&m.halts, m.date, m.utc_offset_sec)
                .iter()
                .map(|[a, b]| format!("{}–{}", hms(*a), hms(*b)))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    println!(
        "clock    {} slots of {}s from {} ({} groups)",
        m.clock.n_slots,
        m.clock.slot_secs,
        hms(m.clock.first_slot_sec as i64),
        m.clock.n_groups()
    );
    println!(
        "{:<18} {:<4} {:>10} {:>18}",
        "column", "type", "rows", "xxh3"
    );
    for c in &m.columns {
        println!(
            "{:<18} {:<4} {:>10} {:>18x}",
            c.name,
            format!("{:?}", c.dtype).to_lowercase(),
            c.len,
            c.checksum
        );
    }
    for (label, row) in [("first", 0usize), ("last", day.rows().saturating_sub(1))] {
        if day.rows() > 0 {
            println!(
                "{label:<6} bar {} o {} h {} l {} c {} v {}",
                iso_ny(day.ts_ns()[row]),
                day.opens()[row],
                day.highs()[row],
                day.lows()[row],
                day.closes()[row],
                day.volumes()[row]
            );
        }
    }
    println!(
        "{:<18} {:>12} {:>12} {:>12}",
        "feature", "min", "mean", "max"
    );
    for (n, a, b, c) in stats {
        println!("{n:<18} {a:>12.5} {b:>12.5} {c:>12.5}");
    }
    Ok(0)
}
