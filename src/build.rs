//! The cache builder: source → validation → adjustment → features → day caches.
//!
//! Dates are walked in order because features warm up across the days of a symbol (the
//! state of every symbol carries from one date to the next); within a date, symbols are
//! processed in parallel (rayon) and each symbol-day is written atomically. Days before
//! `--from` are read only to warm the features up (`features.warmup_days`). The catalog,
//! the validation report and the resolved config are written at the end, and also when
//! the build stops on an error, so that nothing written is left unlisted.

use crate::adjust::{AdjustMode, FactorTables};
use crate::bars::{BarSize, RawDay};
use crate::cache::catalog::CacheSettings;
use crate::cache::format::FORMAT_VERSION;
use crate::cache::{Catalog, CatalogEntry, ClockSpec, DayInfo, SessionTimes, day_path, write_day};
use crate::calendar::{Calendar, Session};
use crate::config::Resolved;
use crate::error::{Error, IoContext, Result};
use crate::features::{self, BarInput, BenchmarkDay, DayContext, FeatureState, QuoteInput};
use crate::ingest::dbn::DbnSource;
use crate::ingest::lean::{self, LeanSource};
use crate::ingest::synth::SynthSource;
use crate::ingest::table::TableSource;
use crate::ingest::{Selection, Source, SourceKind};
use crate::util::fs::{sync_dir, write_atomic};
use crate::validate::{DayClock, DayReport, Problem, validate_day};
use chrono::NaiveDate;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What `cache build` was asked to do.
#[derive(Clone, Debug)]
pub struct BuildRequest {
    pub source: SourceKind,
    /// Input file or folder (optional for `synth`: the `[synth]` config is used).
    pub input: Option<PathBuf>,
    pub cache_dir: PathBuf,
    pub symbols: Option<Vec<String>>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub bar: BarSize,
    pub adjust: AdjustMode,
}

/// What a build did (printed, and saved as `build.json`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct BuildSummary {
    pub source: String,
    pub cache_dir: PathBuf,
    pub bar: String,
    pub adjust: String,
    pub symbols: usize,
    pub dates: usize,
    pub days_written: usize,
    pub days_dropped: usize,
    pub warmup_days_read: usize,
    pub bars_written: u64,
    pub bytes_written: u64,
    pub problems: BTreeMap<Problem, usize>,
    /// Bars flagged by the causal bad-print check (kept; see [`crate::validate::PrintCheck`]).
    pub suspect_prints: u64,
    /// `causal`, or `lookahead-outliers` when `ingest.validation.lookahead_outliers` removed
    /// spikes with the next bar in view (live trading cannot, so it will differ).
    pub cleaning: String,
    /// The benchmark of the cross-sectional features, and how many of its symbol-days in
    /// the built range the source held (0: those features are neutral).
    pub benchmark: Option<String>,
    pub benchmark_days: usize,
    pub elapsed_s: f64,
    pub bars_per_s: f64,
}

/// The session times used for the day (the calendar's, or the regular default when the
/// source has data on a day the calendar calls closed).
pub fn session_or_default(calendar: &Calendar, date: NaiveDate) -> Session {
    calendar.session(date).unwrap_or(Session {
        date,
        pre_open_sec: 4 * 3600,
        open_sec: 9 * 3600 + 1800,
        close_sec: 16 * 3600,
        post_close_sec: 20 * 3600,
        early_close: false,
    })
}

/// The clock of a day at a bar size: 04:00 to the end of after-hours, or one slot a day.
pub fn clock_spec(session: &Session, bar: BarSize) -> ClockSpec {
    if bar.is_intraday() {
        ClockSpec {
            first_slot_sec: session.pre_open_sec,
            slot_secs: bar.secs(),
            n_slots: (session.post_close_sec - session.pre_open_sec).div_ceil(bar.secs()),
        }
    } else {
        ClockSpec {
            first_slot_sec: 0,
            slot_secs: bar.secs(),
            n_slots: 1,
        }
    }
}

/// Validates a source's day as the cache builder does (sorted, deduplicated, repaired or
/// dropped per `[ingest.validation]`, against its session's clock at bar size `bar`);
/// the live feed's vendor replays go through the same step.
pub fn validate_for(
    raw: &mut RawDay,
    session: &Session,
    bar: BarSize,
    cfg: &crate::config::ValidationConfig,
) -> Result<DayReport> {
    raw.bar = Some(bar);
    let dc = DayClock {
        clock: clock_spec(session, bar),
        utc_offset_sec: crate::clock::ny_offset_secs(raw.date),
        open_sec: session.open_sec,
        close_sec: session.close_sec,
    };
    validate_day(raw, &dc, cfg)
}

/// The calendar the config asks for.
pub fn calendar_from(resolved: &Resolved) -> Result<Calendar> {
    match &resolved.config.calendar.market_hours_file {
        Some(p) => Calendar::from_lean_market_hours(p),
        None => Ok(Calendar::us_equity()),
    }
}

/// Opens the source `req` names.
pub fn open_source(
    req: &BuildRequest,
    sel: Selection,
    resolved: &Resolved,
    calendar: &Calendar,
) -> Result<Box<dyn Source>> {
    let need_input = || {
        req.input.clone().ok_or_else(|| {
            Error::Usage(format!(
                "--source {} needs --input PATH",
                req.source.as_str()
            ))
        })
    };
    let cfg = &resolved.config;
    Ok(match req.source {
        SourceKind::Lean => Box::new(LeanSource::new(&need_input()?, sel)?),
        SourceKind::Dbn => Box::new(DbnSource::new(&need_input()?, sel)?),
        SourceKind::Polygon => Box::new(TableSource::polygon(&need_input()?, sel)?),
        SourceKind::Csv => Box::new(TableSource::csv(
            &need_input()?,
            sel,
            cfg.ingest.table.clone(),
        )?),
        SourceKind::Parquet => Box::new(TableSource::parquet(
            &need_input()?,
            sel,
            cfg.ingest.table.clone(),
        )?),
        SourceKind::Synth => {
            let spec = match &req.input {
                Some(dir) => crate::synth::read_spec(dir)?,
                None => crate::synth::SynthSpec::from_params(&cfg.synth, calendar)?,
            };
            check_synth_space(&spec, &req.cache_dir)?;
            Box::new(SynthSource::new(spec, sel)?)
        }
    })
}

/// Refuses a synthetic universe whose day files would not fit on the cache's file system:
/// every symbol-day at most a full session of bars (04:00 to 20:00), each bar at most its
/// OHLCV, quote and feature columns.
fn check_synth_space(spec: &crate::synth::SynthSpec, cache_dir: &Path) -> Result<()> {
    let p = &spec.params;
    let rows = 16 * 3600 / p.bar.secs() as usize;
    let row_bytes = 6 * 8 + 4 + 4 * 8 + crate::features::N_FEATURES * 4;
    crate::util::fs::check_space(
        cache_dir,
        &format!(
            "a synthetic cache of {} symbols × {} days of {} bars",
            p.symbols, p.days, p.bar
        ),
        crate::util::mem::product(&[p.symbols, p.days, rows], row_bytes),
        "use fewer symbols or days (synth.symbols, synth.days; bench --symbols, --days), or another --cache folder",
    )
}

/// Per-symbol state carried from one date to the next.
#[derive(Default)]
struct SymbolState {
    features: FeatureState,
}

/// Result of one symbol-day.
struct DayOutcome {
    entry: Option<CatalogEntry>,
    report: DayReport,
    bars: u64,
    /// The benchmark's day on the bar clock, when this symbol-day is the benchmark's.
    benchmark: Option<BenchmarkDay>,
}

/// Where a symbol-day's benchmark closes come from.
#[derive(Clone, Copy)]
enum Bench<'a> {
    /// The day is the benchmark's own: its closes are its own.
    Own,
    /// Another symbol: the benchmark's day, when the source has it and it was kept.
    Other(Option<&'a BenchmarkDay>),
}

/// Builds (or extends) the cache `req.cache_dir`.
pub fn build_cache(
    req: &BuildRequest,
    resolved: &Resolved,
    show_progress: bool,
) -> Result<BuildSummary> {
    let cfg = &resolved.config;
    if let (Some(f), Some(t)) = (req.from, req.to)
        && f > t
    {
        return Err(Error::Usage(format!(
            "impossible date range: --from {f} is after --to {t}"
        )));
    }
    let calendar = calendar_from(resolved)?;
    let benchmark = cfg.features.benchmark();
    // The benchmark is read and written with the symbols asked for: the cross-sectional
    // features of every symbol are computed against it.
    let symbols: Option<BTreeSet<String>> = req.symbols.as_ref().map(|v| {
        v.iter()
            .map(|s| s.trim().to_ascii_uppercase())
            .filter(|s| !s.is_empty())
            .chain(benchmark.clone())
            .collect()
    });
    let load_from = req
        .from
        .map(|f| calendar.trading_days_back(f, cfg.features.warmup_days as usize));
    let sel = Selection {
        symbols: symbols.clone(),
        from: load_from,
        to: req.to,
        bar: req.bar,
    };
    let source = open_source(req, sel, resolved, &calendar)?;
    let factors = factor_tables(req, resolved)?;

    std::fs::create_dir_all(&req.cache_dir).at(&req.cache_dir)?;
    let _lock = lock_cache(&req.cache_dir)?;
    remove_stale_temporaries(&req.cache_dir)?;
    let mut catalog = Catalog::load(&req.cache_dir)?;
    let settings = CacheSettings {
        bar: req.bar,
        adjust: req.adjust.as_str().to_string(),
        feature_set: features::FEATURE_SET.to_string(),
        feature_version: features::FEATURE_VERSION,
        format_version: FORMAT_VERSION,
        cleaning: cleaning_of(&resolved.config.ingest.validation).to_string(),
        benchmark: benchmark.clone(),
    };
    check_settings(&req.cache_dir, &catalog, &settings)?;
    catalog.settings = Some(settings);

    // The factor file each symbol's adjusted days were built with: extending a symbol with
    // another version of it would put two split scales in one folder.
    let factor_checksums: HashMap<String, u64> = catalog
        .entries
        .values()
        .filter_map(|e| e.factor_checksum.map(|c| (e.symbol.clone(), c)))
        .collect();

    let dates = source.dates()?;
    if dates.is_empty() {
        return Err(Error::NotFound(format!(
            "no {} data for {} between {} and {} in {}",
            req.bar,
            symbols.as_ref().map_or("any symbol".to_string(), |s| s
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(",")),
            req.from.map_or("the start".into(), |d| d.to_string()),
            req.to.map_or("the end".into(), |d| d.to_string()),
            req.input
                .as_ref()
                .map_or("the synthetic universe".into(), |p| p.display().to_string()),
        )));
    }

    let started = Instant::now();
    let mut summary = BuildSummary {
        source: source.name().to_string(),
        cache_dir: req.cache_dir.clone(),
        bar: req.bar.to_string(),
        adjust: req.adjust.as_str().to_string(),
        cleaning: cleaning_of(&resolved.config.ingest.validation).to_string(),
        benchmark: benchmark.clone(),
        ..BuildSummary::default()
    };
    let mut reports: Vec<DayReport> = Vec::new();
    let mut states: HashMap<String, SymbolState> = HashMap::new();
    let mut seen_symbols = BTreeSet::new();
    let pb = crate::logging::progress(dates.len() as u64, "building day caches", show_progress);

    let result = (|| -> Result<()> {
        for &date in &dates {
            pb.set_message(date.to_string());
            let write = req.from.is_none_or(|f| date >= f);
            let raws = source.load_date(date)?;
            let session = session_or_default(&calendar, date);
            let mut work: Vec<(RawDay, SymbolState)> = raws
                .into_iter()
                .map(|r| {
                    let st = states.remove(&r.symbol).unwrap_or_default();
                    (r, st)
                })
                .collect();
            // The benchmark's day first (it is first in `work` after the sort), then the
            // other symbols in parallel against its closes.
            work.sort_by_key(|(r, _)| Some(&r.symbol) != benchmark.as_ref());
            let split = work
                .first()
                .is_some_and(|(r, _)| Some(&r.symbol) == benchmark.as_ref())
                as usize;
            let (own, others) = work.split_at_mut(split);
            let day = |(raw, st): &mut (RawDay, SymbolState), bench: Bench| {
                process_day(
                    raw,
                    st,
                    &session,
                    req,
                    &factors,
                    &factor_checksums,
                    resolved,
                    write,
                    source.name(),
                    bench,
                )
            };
            let mut outcomes: Vec<Result<DayOutcome>> =
                own.iter_mut().map(|w| day(w, Bench::Own)).collect();
            if write {
                summary.benchmark_days += own.len();
            }
            let bench_day = outcomes
                .first()
                .and_then(|o| o.as_ref().ok())
                .and_then(|o| o.benchmark.clone());
            outcomes.extend(
                others
                    .par_iter_mut()
                    .map(|w| day(w, Bench::Other(bench_day.as_ref())))
                    .collect::<Vec<_>>(),
            );
            // Every outcome is accounted for before an error is returned, so files written
            // in parallel with a failing symbol-day are listed in the catalog.
            let mut first_err = None;
            for ((raw, st), outcome) in work.into_iter().zip(outcomes) {
                seen_symbols.insert(raw.symbol.clone());
                let symbol = raw.symbol;
                states.insert(symbol.clone(), st);
                let outcome = match outcome {
                    Ok(o) => o,
                    Err(e) => {
                        first_err.get_or_insert(e);
                        continue;
                    }
                };
                if !write {
                    summary.warmup_days_read += 1;
                    continue;
                }
                if outcome.report.dropped.is_some() {
                    summary.days_dropped += 1;
                }
                for (p, n) in &outcome.report.counts {
                    *summary.problems.entry(*p).or_default() += n;
                }
                summary.suspect_prints += outcome.report.suspect_prints as u64;
                match outcome.entry {
                    Some(entry) => {
                        summary.days_written += 1;
                        summary.bars_written += outcome.bars;
                        summary.bytes_written += entry.bytes;
                        catalog.upsert(entry);
                    }
                    None => {
                        // Dropped or empty now: a file from an earlier build must not survive.
                        catalog.entries.remove(&(symbol.clone(), date));
                        let stale = day_path(&req.cache_dir, &symbol, date);
                        if stale.exists() {
                            std::fs::remove_file(&stale).at(&stale)?;
                        }
                    }
                }
                if !outcome.report.is_clean() {
                    reports.push(outcome.report);
                }
            }
            if let Some(e) = first_err {
                return Err(e);
            }
            summary.dates += write as usize;
            pb.inc(1);
        }
        Ok(())
    })();
    pb.finish_and_clear();

    summary.symbols = seen_symbols.len();
    summary.elapsed_s = started.elapsed().as_secs_f64();
    summary.bars_per_s = summary.bars_written as f64 / summary.elapsed_s.max(1e-9);
    // Whatever happened, list what was written.
    for sym in &seen_symbols {
        sync_dir(&req.cache_dir.join(sym));
    }
    catalog.save(&req.cache_dir)?;
    let report_json = serde_json::json!({ "summary": &summary, "days": &reports });
    write_atomic(
        &req.cache_dir.join("validation.json"),
        serde_json::to_string_pretty(&report_json)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    resolved.save_beside(&req.cache_dir)?;
    result?;
    write_atomic(
        &req.cache_dir.join("build.json"),
        serde_json::to_string_pretty(&summary)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    Ok(summary)
}

#[allow(clippy::too_many_arguments)]
fn process_day(
    raw: &mut RawDay,
    st: &mut SymbolState,
    session: &Session,
    req: &BuildRequest,
    factors: &Option<FactorTables>,
    factor_checksums: &HashMap<String, u64>,
    resolved: &Resolved,
    write: bool,
    source_name: &str,
    bench: Bench,
) -> Result<DayOutcome> {
    let cfg = &resolved.config;
    let report = validate_for(raw, session, req.bar, &cfg.ingest.validation)?;
    let utc_offset_sec = crate::clock::ny_offset_secs(raw.date);
    let clock = clock_spec(session, req.bar);
    if report.dropped.is_some() || raw.is_empty() {
        return Ok(DayOutcome {
            entry: None,
            report,
            bars: 0,
            benchmark: None,
        });
    }
    let mut factor_checksum = None;
    if req.adjust != AdjustMode::None {
        let tables = factors
            .as_ref()
            .expect("factor tables exist when adjusting");
        let file = tables.get(&raw.symbol)?.ok_or_else(|| {
            Error::NotFound(format!(
                "no factor file for {} in {} (needed by --adjust {}); add it or use --adjust none",
                raw.symbol,
                tables.dir().display(),
                req.adjust.as_str()
            ))
        })?;
        if factor_checksums
            .get(&raw.symbol)
            .is_some_and(|&c| c != file.checksum())
        {
            return Err(Error::Usage(format!(
                "{}: {}'s cached days were adjusted with another version of its factor file in {}; \
                 mixing them would put two split scales in one folder: build {} into a new --cache folder",
                req.cache_dir.display(),
                raw.symbol,
                tables.dir().display(),
                raw.symbol
            )));
        }
        factor_checksum = Some(file.checksum());
        crate::adjust::adjust_day(raw, file.factors(raw.date), req.adjust);
    }

    // Features, with the state carried over from the symbol's previous days.
    st.features.begin_day(DayContext::of(session));
    let prev_close = st.features.prev_close();
    let mut inputs = raw_inputs(raw, utc_offset_sec);
    let own_bench = matches!(bench, Bench::Own).then(|| benchmark_day(&inputs));
    let bench = match bench {
        Bench::Own => own_bench.as_ref(),
        Bench::Other(b) => b,
    };
    if let Some(b) = bench {
        for bar in &mut inputs {
            bar.bench_close = b.close_at(bar.sec_of_day);
        }
    }
    let mut cols: Vec<Vec<f32>> = (0..features::N_FEATURES)
        .map(|_| Vec::with_capacity(raw.len()))
        .collect();
    let mut out = [0f32; features::N_FEATURES];
    let mut flags = Vec::with_capacity(inputs.len());
    for b in &inputs {
        st.features.update(b, &mut out);
        for (c, v) in cols.iter_mut().zip(out) {
            c.push(v);
        }
        flags.push(if st.features.suspect() {
            crate::cache::FLAG_SUSPECT
        } else {
            0
        });
    }
    let mut report = report;
    for (i, _) in flags.iter().enumerate().filter(|(_, f)| **f != 0) {
        report.suspect_prints += 1;
        if report.examples.len() < 5 {
            report.examples.push(format!(
                "suspect_print (flagged, kept): {} close {}",
                crate::clock::hms(inputs[i].sec_of_day as i64),
                raw.close[i]
            ));
        }
    }
    if !write {
        return Ok(DayOutcome {
            entry: None,
            report,
            bars: 0,
            benchmark: own_bench,
        });
    }
    let info = DayInfo {
        session: SessionTimes {
            pre_open_sec: session.pre_open_sec,
            open_sec: session.open_sec,
            close_sec: session.close_sec,
            post_close_sec: session.post_close_sec,
            early_close: session.early_close,
        },
        utc_offset_sec,
        source: source_name.to_string(),
        adjust: req.adjust.as_str().to_string(),
        feature_set: features::FEATURE_SET.to_string(),
        feature_version: features::FEATURE_VERSION,
        prev_close: prev_close.map(crate::bars::Price::from_dollars),
        clock,
        cleaning: cleaning_of(&cfg.ingest.validation).to_string(),
    };
    let path = day_path(&req.cache_dir, &raw.symbol, raw.date);
    let (meta, bytes) = write_day(
        &path,
        raw,
        Some(&flags),
        &features::FEATURE_NAMES,
        &cols,
        &info,
    )?;
    let rel = path
        .strip_prefix(&req.cache_dir)
        .unwrap_or(&path)
        .to_path_buf();
    let mut entry = CatalogEntry::from_meta(
        &meta,
        bytes,
        rel,
        raw.ts_ns.first().copied(),
        raw.ts_ns.last().copied(),
    );
    entry.factor_checksum = factor_checksum;
    Ok(DayOutcome {
        entry: Some(entry),
        report,
        bars: raw.len() as u64,
        benchmark: own_bench,
    })
}

/// Refuses a cache whose cross-sectional features were computed against another benchmark
/// than `features.benchmark` says: a policy trained on it would meet other values from a
/// live stream, which computes them against the configured one.
pub fn check_cache_benchmark(cache: &Path, features: &crate::config::FeaturesConfig) -> Result<()> {
    let catalog = Catalog::load_existing(cache)?;
    let want = features.benchmark();
    match catalog.settings {
        Some(s) if s.benchmark != want => Err(Error::Config(format!(
            "{} was built with features.benchmark {} and this run's config says {}: its cross-sectional \
             features would differ from a live stream's; set features.benchmark = \"{}\" or rebuild the cache",
            cache.display(),
            s.benchmark.as_deref().unwrap_or("none"),
            want.as_deref().unwrap_or("none"),
            s.benchmark.as_deref().unwrap_or("")
        ))),
        _ => Ok(()),
    }
}

/// A validated (and adjusted) day's bars as the features see them: OHLCV, halts, the
/// closing quote and the trade flow where the source has them; no benchmark close yet.
pub fn raw_inputs(raw: &RawDay, utc_offset_sec: i32) -> Vec<BarInput> {
    (0..raw.len())
        .map(|i| BarInput {
            sec_of_day: crate::clock::sec_of_day(raw.ts_ns[i], raw.date, utc_offset_sec).max(0)
                as u32,
            open: raw.open[i].dollars(),
            high: raw.high[i].dollars(),
            low: raw.low[i].dollars(),
            close: raw.close[i].dollars(),
            volume: raw.volume[i] as f64,
            halted: raw.is_halted(raw.ts_ns[i]),
            quote: raw.quotes.as_ref().map(|q| QuoteInput {
                bid: q.bid[i].dollars(),
                ask: q.ask[i].dollars(),
                bid_size: q.bid_size[i] as f64,
                ask_size: q.ask_size[i] as f64,
            }),
            flow: raw
                .flow
                .as_ref()
                .map(|f| (f.buy_volume[i] as f64, f.sell_volume[i] as f64)),
            bench_close: None,
        })
        .collect()
}

/// The benchmark's day on the bar clock, from its bars.
pub fn benchmark_day(bars: &[BarInput]) -> BenchmarkDay {
    let mut day = BenchmarkDay::new();
    for b in bars {
        day.push(b.sec_of_day, b.close);
    }
    day
}

/// A cached day's bars as the features see them, benchmark closes from `bench` (the
/// benchmark's cached day of the same date, when there is one): what the cache builder
/// fed [`FeatureState::update`] for this day, so replaying a cache's days rebuilds its
/// feature state. Returns the day's context with them.
pub fn cached_inputs(
    day: &crate::cache::DayCache,
    bench: Option<&BenchmarkDay>,
) -> (DayContext, Vec<BarInput>) {
    let meta = day.meta();
    let ctx = DayContext::new(meta.date, meta.session.open_sec, meta.session.close_sec);
    let quotes = match (day.bid(), day.ask(), day.bid_size(), day.ask_size()) {
        (Some(b), Some(a), Some(bs), Some(az)) => Some((b, a, bs, az)),
        _ => None,
    };
    let flow = day.buy_volume().zip(day.sell_volume());
    let inputs = (0..day.rows())
        .map(|i| {
            let ts = day.ts_ns()[i];
            let sec_of_day = day.sec_of_day(i).max(0) as u32;
            BarInput {
                sec_of_day,
                open: day.opens()[i].dollars(),
                high: day.highs()[i].dollars(),
                low: day.lows()[i].dollars(),
                close: day.closes()[i].dollars(),
                volume: day.volumes()[i] as f64,
                halted: meta.halts.iter().any(|h| ts >= h.start_ns && ts < h.end_ns),
                quote: quotes.map(|(b, a, bs, az)| QuoteInput {
                    bid: b[i].dollars(),
                    ask: a[i].dollars(),
                    bid_size: bs[i] as f64,
                    ask_size: az[i] as f64,
                }),
                flow: flow.map(|(b, s)| (b[i] as f64, s[i] as f64)),
                bench_close: bench.and_then(|b| b.close_at(sec_of_day)),
            }
        })
        .collect();
    (ctx, inputs)
}

/// How `cfg` cleans bars, as the build summary and the caches record it.
pub fn cleaning_of(cfg: &crate::config::ValidationConfig) -> &'static str {
    if cfg.lookahead_outliers {
        "lookahead-outliers"
    } else {
        "causal"
    }
}

fn factor_tables(req: &BuildRequest, resolved: &Resolved) -> Result<Option<FactorTables>> {
    if req.adjust == AdjustMode::None {
        return Ok(None);
    }
    let dir = match (req.source, &req.input, &resolved.config.ingest.factor_files) {
        (_, _, Some(dir)) => dir.clone(),
        (SourceKind::Lean, Some(root), None) => lean::factor_dir(root),
        (SourceKind::Synth, _, None) => {
            return Err(Error::Usage(
                "--adjust needs factor files, and synthetic data has no corporate actions: use --adjust none".into(),
            ));
        }
        (kind, _, None) => {
            return Err(Error::Usage(format!(
                "--adjust {} with --source {} needs LEAN-format factor files: set ingest.factor_files (e.g. --set ingest.factor_files=DIR) or use --adjust none",
                req.adjust.as_str(),
                kind.as_str()
            )));
        }
    };
    if !dir.is_dir() {
        return Err(Error::NotFound(format!(
            "{}: factor-file folder not found (needed by --adjust {})",
            dir.display(),
            req.adjust.as_str()
        )));
    }
    Ok(Some(FactorTables::new(&dir)))
}

fn check_settings(dir: &Path, catalog: &Catalog, want: &CacheSettings) -> Result<()> {
    match &catalog.settings {
        Some(have) if have != want && !catalog.entries.is_empty() => Err(Error::Usage(format!(
            "{} holds {} bars, adjust {}, features {} v{} (format {}), cleaning {}, benchmark {}; this build makes {} bars, adjust {}, features {} v{} (format {}), cleaning {}, benchmark {}. One cache folder never mixes them: use another --cache folder, or delete this one to rebuild it",
            dir.display(),
            have.bar,
            have.adjust,
            have.feature_set,
            have.feature_version,
            have.format_version,
            have.cleaning,
            have.benchmark.as_deref().unwrap_or("none"),
            want.bar,
            want.adjust,
            want.feature_set,
            want.feature_version,
            want.format_version,
            want.cleaning,
            want.benchmark.as_deref().unwrap_or("none"),
        ))),
        _ => Ok(()),
    }
}

/// Holds an exclusive advisory lock on the cache folder for the duration of a build, so two
/// builds never write one folder at once. Released when dropped or when the process dies.
fn lock_cache(dir: &Path) -> Result<std::fs::File> {
    let path = dir.join(".lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .at(&path)?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Usage(format!(
            "{}: another build is writing this cache; wait for it to finish",
            dir.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(path, e)),
    }
}

/// Temporary files left by an interrupted build (never renamed into place) are removed.
fn remove_stale_temporaries(dir: &Path) -> Result<()> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in rd.flatten() {
        let p = entry.path();
        if p.is_dir() {
            for f in std::fs::read_dir(&p).at(&p)?.flatten() {
                let name = f.file_name();
                let name = name.to_string_lossy();
                if name.starts_with('.') && name.ends_with(".tmp") {
                    std::fs::remove_file(f.path()).at(f.path())?;
                }
            }
        }
    }
    Ok(())
}
