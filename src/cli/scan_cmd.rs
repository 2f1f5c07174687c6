//! `sim-train scan`, `sim-train index query` and `sim-train bench scan`.

use crate::config::Resolved;
use crate::error::Result;
use crate::scan::index::Index;
use crate::scan::query::{self, Table};
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ScanArgs {
    /// Cache folder to scan.
    #[arg(long)]
    pub cache: PathBuf,
    /// Index folder to write (or update: only new or changed days are scanned).
    #[arg(long)]
    pub out: PathBuf,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum IndexCommand {
    /// Select rows of the index: days (default) or reset points.
    Query(QueryArgs),
}

#[derive(Args, Debug)]
pub struct QueryArgs {
    /// Index folder written by `sim-train scan`.
    #[arg(long)]
    pub index: PathBuf,
    /// Predicate, e.g. "category = 'prime' and range > 0.2" (see README: Scanning).
    #[arg(long = "where", value_name = "PREDICATE")]
    pub where_: Option<String>,
    /// Table to query.
    #[arg(long, value_enum, default_value = "days")]
    pub table: Table,
    /// Print at most this many rows (the count covers all matches).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Print only the number of matching rows.
    #[arg(long)]
    pub count: bool,
    /// Print the matching rows as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct BenchScanArgs {
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub universe: super::UniverseArgs,
    /// Sampler draws timed.
    #[arg(long, default_value_t = 5_000_000)]
    pub draws: usize,
    /// Days taken through the preloader in each preload run.
    #[arg(long, default_value_t = 200)]
    pub preload_gets: usize,
    /// Work folder (default: a temporary folder, removed afterwards).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

pub fn scan(a: &ScanArgs, resolved: &Resolved, progress: bool) -> Result<i32> {
    let s = crate::scan::scan_cache(&a.cache, &a.out, &resolved.config.scan, progress)?;
    resolved.save_beside(&a.out)?;
    if a.json {
        return super::output::json(&s);
    }
    println!(
        "scanned {} of {} symbol-days ({} kept from the index, {} dropped{}) in {:.2}s: {:.0} symbol-days/s, {:.0} bars/s",
        s.scanned,
        s.days,
        s.kept,
        s.dropped,
        s.full_rescan
            .as_deref()
            .map(|w| format!("; full rescan: {w}"))
            .unwrap_or_default(),
        s.elapsed_s,
        s.symbol_days_per_s,
        s.bars_per_s
    );
    let cats: Vec<String> = s
        .categories
        .iter()
        .map(|(c, n)| format!("{} {n}", c.name()))
        .collect();
    println!("  {} momentum days; {}", s.momentum_days, cats.join(", "));
    println!("  {} reset points → {}", s.resets, a.out.display());
    Ok(0)
}

pub fn index(cmd: IndexCommand) -> Result<i32> {
    match cmd {
        IndexCommand::Query(a) => query_cmd(&a),
    }
}

fn query_cmd(a: &QueryArgs) -> Result<i32> {
    let idx = Index::load(&a.index)?;
    if let Err(e) = idx.warn_if_stale() {
        tracing::warn!("cannot compare the index with its cache: {e}");
    }
    let rows = query::select(&idx, a.table, a.where_.as_deref())?;
    if a.count {
        if a.json {
            println!("{}", serde_json::json!({ "count": rows.len() }));
        } else {
            println!("{}", rows.len());
        }
        return Ok(0);
    }
    let shown = &rows[..a.limit.unwrap_or(rows.len()).min(rows.len())];
    if a.json {
        let v: Vec<serde_json::Value> = match a.table {
            Table::Days => shown
                .iter()
                .map(|&r| serde_json::to_value(&idx.days[r]).unwrap_or_default())
                .collect(),
            Table::Resets => shown
                .iter()
                .map(|&r| serde_json::to_value(&idx.resets[r]).unwrap_or_default())
                .collect(),
        };
        return super::output::json(&v);
    }
    match a.table {
        Table::Days => {
            println!(
                "{:<8} {:<10} {:>10} {:>8} {:>8} {:>6} {:>5} {:>5} {:>7} {:<9}",
                "symbol",
                "date",
                "close",
                "range",
                "relvol",
                "moves",
                "halts",
                "sqz",
                "quality",
                "category"
            );
            for &r in shown {
                let d = &idx.days[r];
                println!(
                    "{:<8} {:<10} {:>10.2} {:>8.4} {:>8} {:>6.3} {:>5} {:>5} {:>7.3} {:<9}",
                    d.symbol,
                    d.date.to_string(),
                    d.close,
                    d.range,
                    d.rel_volume.map_or("-".to_string(), |v| format!("{v:.2}")),
                    d.max_move,
                    d.halts,
                    d.squeezes,
                    d.quality,
                    d.category.name()
                );
            }
        }
        Table::Resets => {
            println!(
                "{:<8} {:<10} {:<8} {:<13} {:<9} {:>7} {:>8} {:>9}",
                "symbol", "date", "time", "pattern", "phase", "quality", "vol_vel", "price_vel"
            );
            for &r in shown {
                let x = &idx.resets[r];
                println!(
                    "{:<8} {:<10} {:<8} {:<13} {:<9} {:>7.3} {:>8.2} {:>9.4}",
                    x.symbol,
                    x.date.to_string(),
                    crate::clock::hms(x.sec as i64),
                    x.pattern.name(),
                    x.phase.name(),
                    x.local_quality,
                    x.volume_velocity,
                    x.price_velocity
                );
            }
        }
    }
    println!("{} of {} rows match", rows.len(), a.table.rows(&idx));
    Ok(0)
}

pub fn bench_scan(a: &BenchScanArgs, resolved: &Resolved) -> Result<i32> {
    let (symbols, days, bar) = a.universe.sizes(&resolved.config.bench);
    let r = crate::scan::bench::bench_scan(
        resolved,
        &crate::scan::bench::ScanBenchRequest {
            symbols,
            days,
            bar,
            draws: a.draws,
            preload_gets: a.preload_gets,
            dir: a.dir.clone(),
        },
    )?;
    if a.json {
        return super::output::json(&r);
    }
    println!(
        "bench scan on {} ({} threads): {} symbols × {} days of {} bars = {} bars",
        r.machine.cpu, r.threads, r.symbols, r.days, r.bar, r.bars
    );
    println!(
        "  scan     {:>12.0} symbol-days/s  {:>12.0} bars/s  (no-op rescan {:.3}s)",
        r.scan_symbol_days_per_s, r.scan_bars_per_s, r.rescan_noop_s
    );
    println!(
        "  index    {:.2} ms to load {} days, {} reset points",
        r.index_load_ms, r.index_days, r.index_resets
    );
    println!(
        "  sampler  {:>12.0} draws/s ({:.1} ns/draw, one thread)",
        r.draws_per_s, r.ns_per_draw
    );
    for p in &r.preload {
        println!(
            "  preload  {:<8} workers {} depth {}..{} work {:.2} ms/day: {} of {} gets waited, {:.3} ms/get (max {:.2} ms); second half {} waits, {:.2} ms",
            p.name,
            p.workers,
            p.min_depth,
            p.max_depth,
            p.work_ms,
            p.waits,
            p.gets,
            p.wait_ms_per_get,
            p.wait_max_ms,
            p.waits_second_half,
            p.wait_ms_second_half
        );
    }
    Ok(0)
}
