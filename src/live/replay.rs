//! The replay feed: cached days, bar by bar in time order across symbols (the cache's
//! benchmark first within a bar time, then symbols in order, as the stream asks of
//! producers), through the live engine ([`super::engine`]) at full speed
//! or paced by the wall clock (`pace` × real time within a day).
//!
//! A replay is deterministic, so a restarted run replays from the start, checks every
//! record against the journal (applying the journaled commands where they were applied)
//! and appends from where the journal ends (tested by killing the process).

use super::control::Controls;
use super::engine::{DayHeader, Engine, EngineOptions, LiveSummary};
use super::journal::Journal;
use super::risk::RiskConfig;
use crate::bundle::Bundle;
use crate::bundle::native::NativePolicy;
use crate::env::{DayData, DaySelection, load_days};
use crate::error::Result;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::PathBuf;
use std::sync::Arc;

/// What to replay.
#[derive(Clone)]
pub struct ReplayRequest {
    pub bundle: PathBuf,
    pub cache: PathBuf,
    pub selection: DaySelection,
    pub journal: PathBuf,
    /// fsync the journal once per bar time, after every symbol's records of it (else
    /// flush to the OS only).
    pub fsync: bool,
    pub risk: RiskConfig,
    pub watchdog: super::watchdog::WatchdogConfig,
    /// Replay at this many times real time within a day (`None`: as fast as possible).
    pub pace: Option<f64>,
    pub controls: Option<Arc<Controls>>,
}

/// Replays the selected days of `req.cache` through the live engine.
pub fn replay(req: &ReplayRequest) -> Result<LiveSummary> {
    let bundle = Bundle::open(&req.bundle)?;
    let policy = NativePolicy::from_bundle(&bundle)?;
    let (resolved, params) = bundle.environment(&req.cache)?;
    let start = crate::backtest::start_sec(&resolved.config)?;
    let symbols = crate::backtest::selected_symbols(&req.cache, &req.selection)?;
    let benchmark = crate::cache::Catalog::load_existing(&req.cache)?
        .settings
        .and_then(|s| s.benchmark);
    let mut days: Vec<Vec<Arc<DayData>>> = Vec::with_capacity(symbols.len());
    for s in &symbols {
        let one = DaySelection {
            symbols: Some(vec![s.clone()]),
            from: req.selection.from,
            to: req.selection.to,
        };
        days.push(load_days(&req.cache, &one, &params)?);
    }
    let mut dates: Vec<chrono::NaiveDate> = days.iter().flatten().map(|d| d.date).collect();
    dates.sort();
    dates.dedup();
    let opened = Journal::open(&req.journal, false)?;
    let mut engine = Engine::paper(
        policy,
        params,
        start,
        &symbols,
        opened,
        EngineOptions {
            fsync: req.fsync,
            risk: req.risk.clone(),
            watchdog: req.watchdog.clone(),
            controls: req.controls.clone(),
        },
    );
    let mut stopped = false;
    'dates: for date in dates {
        let today: Vec<(usize, &Arc<DayData>)> = days
            .iter()
            .enumerate()
            .filter_map(|(k, list)| list.iter().find(|d| d.date == date).map(|d| (k, d)))
            .collect();
        // Merge the days' bars by (time, benchmark first, symbol), up to each session's
        // last bar.
        let rank = |i: usize| Some(&symbols[today[i].0]) != benchmark.as_ref();
        let mut heap: BinaryHeap<Reverse<(u32, bool, usize, usize)>> = today
            .iter()
            .enumerate()
            .filter(|(_, (_, d))| d.first_row <= d.last_row)
            .map(|(i, (_, d))| Reverse((d.bars[0].ts_ms, rank(i), i, 0)))
            .collect();
        let mut paced: Option<(u32, std::time::Instant)> = None;
        while let Some(Reverse((ts_ms, _, i, row))) = heap.pop() {
            if req.controls.as_ref().is_some_and(|c| c.stop_requested()) {
                tracing::info!("live: stop requested; ending the replay");
                stopped = true;
                break 'dates;
            }
            if let Some(k) = req.pace {
                let (t0, wall) = *paced.get_or_insert((ts_ms, std::time::Instant::now()));
                let due = wall + std::time::Duration::from_secs_f64((ts_ms - t0) as f64 / 1e3 / k);
                if let Some(wait) = due.checked_duration_since(std::time::Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            let (k, day) = today[i];
            // The session's first bar opens it (the whole day's first row).
            let open_ms = day.bars[day.first_row as usize].ts_ms;
            let header = DayHeader {
                symbol: k,
                symbol_name: &symbols[k],
                date,
                bar: day.bar,
                midnight_ns: day.midnight_ns,
                open_ms,
                close_ms: day.close_ms,
                halts: &day.halts,
            };
            let last = row as u32 == day.last_row;
            engine.on_bar(
                &header,
                day.bars[row],
                day.feature_row(row),
                last,
                std::time::Instant::now(),
            )?;
            if !last {
                heap.push(Reverse((day.bars[row + 1].ts_ms, rank(i), i, row + 1)));
            }
        }
    }
    // A run stopped while it still checked the journal appended nothing: it is not short.
    if !stopped {
        engine.check_caught_up()?;
    }
    engine.finish()
}
