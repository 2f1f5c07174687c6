//! `sim-train pipeline | synth | align | bench | calendar`. `pipeline`, `bench train` and
//! `bench sweep` train, so they are built with the `torch` feature only.

#[cfg(feature = "torch")]
use super::PipelineArgs;
use super::{AlignArgs, BenchCacheArgs, BenchEnvArgs, CalendarArgs, SynthArgs};
use crate::align::align;
use crate::build::calendar_from;
#[cfg(feature = "torch")]
use crate::build::{BuildRequest, build_cache};
use crate::cache::export::write_frame;
#[cfg(feature = "torch")]
use crate::cache::verify::verify_dir;
use crate::clock::{hms, iso_ny};
use crate::config::Resolved;
use crate::error::{Error, Result};
#[cfg(feature = "torch")]
use crate::ingest::SourceKind;
use polars::prelude::{Column, DataFrame};
#[cfg(feature = "torch")]
use std::path::{Path, PathBuf};

/// The synthetic spec from `[synth]` with the command-line overrides.
fn synth_spec(a: &SynthArgs, resolved: &Resolved) -> Result<crate::synth::SynthSpec> {
    let mut p = resolved.config.synth.clone();
    if let Some(v) = a.symbols {
        p.symbols = v;
    }
    if let Some(v) = a.days {
        p.days = v;
    }
    if let Some(v) = a.bar {
        p.bar = v;
    }
    if let Some(v) = a.seed {
        p.seed = v;
    }
    if let Some(v) = a.start {
        p.start = v;
    }
    p.validate().map_err(Error::Config)?;
    crate::synth::SynthSpec::from_params(&p, &calendar_from(resolved)?)
}

pub fn synth(a: &SynthArgs, resolved: &Resolved) -> Result<i32> {
    let spec = synth_spec(a, resolved)?;
    crate::synth::write_universe(&a.out, &spec)?;
    resolved.save_beside(&a.out)?;
    println!(
        "synthetic universe: {} symbols × {} days of {} bars (seed {}) in {}",
        spec.symbols.len(),
        spec.trading_days.len(),
        spec.bar(),
        spec.params.seed,
        a.out.display()
    );
    Ok(0)
}

/// Synthetic universe → caches → verify → scan → train → evaluate → plot; it trains, so it
/// is built with the `torch` feature.
#[cfg(feature = "torch")]
pub fn pipeline(a: &PipelineArgs, resolved: &Resolved, progress: bool) -> Result<i32> {
    let synth_dir = a.out.join("synth");
    let cache_dir = a.out.join("cache");
    let args = SynthArgs {
        out: synth_dir.clone(),
        symbols: None,
        days: None,
        bar: None,
        seed: None,
        start: None,
    };
    let spec = synth_spec(&args, resolved)?;
    crate::synth::write_universe(&synth_dir, &spec)?;
    tracing::info!(dir = %synth_dir.display(), "synthetic universe written");
    let req = BuildRequest {
        source: SourceKind::Synth,
        input: Some(synth_dir.clone()),
        cache_dir: cache_dir.clone(),
        symbols: None,
        from: None,
        to: None,
        bar: spec.bar(),
        adjust: crate::adjust::AdjustMode::None,
    };
    let built = build_cache(&req, resolved, progress)?;
    let verified = verify_dir(&cache_dir)?;
    resolved.save_beside(&a.out)?;
    let truth = crate::synth::read_truth(&synth_dir)?;
    let momentum = truth.iter().filter(|t| t.momentum).count();
    let halts: usize = truth.iter().map(|t| t.halts.len()).sum();
    let summary = serde_json::json!({
        "universe": { "symbols": spec.symbols.len(), "days": spec.trading_days.len(), "bar": spec.bar().to_string(),
                      "seed": spec.params.seed, "momentum_days": momentum, "halts": halts },
        "build": &built,
        "verify": { "files": verified.files, "bad": verified.bad.len() },
    });
    write_summary(&a.out, &summary)?;
    println!("sim-train pipeline → {}", a.out.display());
    println!(
        "  universe  {} symbols × {} days of {} bars, seed {}: {} momentum days, {} halts",
        spec.symbols.len(),
        spec.trading_days.len(),
        spec.bar(),
        spec.params.seed,
        momentum,
        halts
    );
    println!(
        "  caches    {} symbol-days, {} bars, {:.1} MB in {:.2}s ({:.0} bars/s) → {}",
        built.days_written,
        built.bars_written,
        built.bytes_written as f64 / 1e6,
        built.elapsed_s,
        built.bars_per_s,
        cache_dir.display()
    );
    println!(
        "  verify    {} files, {} bad",
        verified.files,
        verified.bad.len()
    );
    if !verified.ok() {
        println!("  summary   {}", a.out.join("summary.json").display());
        return Ok(4);
    }
    let learned = pipeline_learn(&a.out, &cache_dir, &spec, resolved, progress)?;
    let mut summary = summary;
    summary["learn"] = serde_json::to_value(&learned).unwrap_or_default();
    write_summary(&a.out, &summary)?;
    println!("  summary   {}", a.out.join("summary.json").display());
    Ok(0)
}

/// Writes `out/summary.json`.
#[cfg(feature = "torch")]
fn write_summary(out: &Path, summary: &serde_json::Value) -> Result<()> {
    let path = out.join("summary.json");
    let json = serde_json::to_vec_pretty(summary)
        .map_err(|e| Error::Data(format!("cannot write {}: {e}", path.display())))?;
    crate::util::fs::write_atomic(&path, &json)
}

/// What the pipeline's scan, training and evaluation stages produced.
#[cfg(feature = "torch")]
#[derive(serde::Serialize)]
struct PipelineLearn {
    index: Option<PathBuf>,
    run_dir: PathBuf,
    train_to: chrono::NaiveDate,
    holdout_from: chrono::NaiveDate,
    train: crate::learn::run::Summary,
    eval: crate::learn::eval::Comparison,
    plot: PathBuf,
}

/// Scan → train on all but the held-out days → evaluate on them against baselines → plot.
#[cfg(feature = "torch")]
fn pipeline_learn(
    out: &Path,
    cache: &Path,
    spec: &crate::synth::SynthSpec,
    resolved: &Resolved,
    progress: bool,
) -> Result<PipelineLearn> {
    use crate::backtest::Baseline;
    let p = &resolved.config.pipeline;
    let days = &spec.trading_days;
    if p.holdout_days >= days.len() {
        return Err(Error::Config(format!(
            "pipeline.holdout_days = {} leaves no training day out of the universe's {} (synth.days)",
            p.holdout_days,
            days.len()
        )));
    }
    let train_to = days[days.len() - p.holdout_days - 1];
    let holdout_from = days[days.len() - p.holdout_days];
    let index = if p.use_index {
        let dir = out.join("index");
        let s = crate::scan::scan_cache(cache, &dir, &resolved.config.scan, progress)?;
        println!(
            "  scan      {} symbol-days, {} momentum days → {}",
            s.days,
            s.momentum_days,
            dir.display()
        );
        Some(dir)
    } else {
        None
    };
    let r = resolved.with_sets(&[
        "train.env=\"market\"".into(),
        format!("train.total_steps={}", p.train_steps),
        format!("train.to={train_to}"),
    ])?;
    let run_dir = out.join("run");
    if run_dir.exists() {
        // The pipeline's own output from an earlier run of it.
        std::fs::remove_dir_all(&run_dir).map_err(|e| Error::io(&run_dir, e))?;
    }
    crate::learn::run::install_ctrl_c();
    let train = crate::learn::run::train(
        &r,
        &crate::learn::run::RunOptions {
            run_dir: run_dir.clone(),
            resume: false,
            cache: Some(cache.to_path_buf()),
            index: index.clone(),
            stop_after: None,
            progress,
            init_from: None,
        },
    )?;
    println!(
        "  train     {} updates, {} env steps on {} at {:.0} steps/s (days to {train_to}) → {}",
        train.updates_done,
        train.global_step,
        train.device,
        train.sps,
        run_dir.display()
    );
    let sel = crate::env::DaySelection {
        symbols: None,
        from: Some(holdout_from),
        to: None,
    };
    let eval_dir = out.join("eval");
    let req = crate::learn::eval::EvalRequest {
        mode: crate::learn::eval::ActMode::Greedy,
        seed: 0,
    };
    let evaluated = crate::learn::checkpoint::evaluate(&req, &run_dir, None, cache, &sel)?;
    let eval = crate::learn::eval::compare(
        &req,
        evaluated,
        cache,
        &sel,
        &[Baseline::Flat, Baseline::BuyAndHold, Baseline::SmaCross],
        &eval_dir,
    )?
    .comparison;
    println!(
        "  eval      held-out {holdout_from} .. {}: policy {:+.3} %/day ({} trades); {} → {}",
        days[days.len() - 1],
        100.0 * eval.policy_mean_daily_return,
        eval.policy_trades,
        eval.versus
            .iter()
            .map(|v| format!(
                "{} {:+.3} %/day (t {})",
                v.baseline,
                100.0 * v.baseline_mean_daily_return,
                v.t_stat.map_or("-".into(), |t| format!("{t:.2}"))
            ))
            .collect::<Vec<_>>()
            .join(", "),
        eval_dir.display()
    );
    let plot = crate::plot::plot_run(&run_dir, &run_dir.join("plots"))?
        .into_iter()
        .next()
        .expect("one plot file");
    println!("  plots     {}", plot.display());
    Ok(PipelineLearn {
        index,
        run_dir,
        train_to,
        holdout_from,
        train,
        eval,
        plot,
    })
}

pub fn align_cmd(a: &AlignArgs, resolved: &Resolved) -> Result<i32> {
    if a.symbols.len() < 2 {
        return Err(Error::Usage(
            "--symbols needs at least two symbols to align".into(),
        ));
    }
    let days = a
        .symbols
        .iter()
        .map(|s| super::cache_cmd::open_day(&a.cache, s, a.date))
        .collect::<Result<Vec<_>>>()?;
    let how = a.how.unwrap_or(resolved.config.align.how);
    let columns = a
        .columns
        .clone()
        .unwrap_or_else(|| resolved.config.align.columns.clone());
    let aligned = align(&days, how, &columns, resolved.config.align.outlier_z)?;
    let mut cols = vec![Column::new(
        "ts".into(),
        aligned
            .ts_ns
            .iter()
            .map(|&t| iso_ny(t))
            .collect::<Vec<String>>(),
    )];
    for (name, v) in &aligned.columns {
        cols.push(Column::new(name.as_str().into(), v.clone()));
    }
    let mut df =
        DataFrame::new_infer_height(cols).map_err(|e| Error::input(&a.out, e.to_string()))?;
    let parquet = a.out.extension().is_some_and(|e| e == "parquet");
    write_frame(&mut df, &a.out, parquet)?;
    if a.json {
        return super::output::json(&aligned.report);
    }
    println!(
        "aligned {} symbols on {} clock times ({:?}) → {}",
        days.len(),
        aligned.ts_ns.len(),
        how,
        a.out.display()
    );
    println!(
        "{:<10} {:>8} {:>8} {:>8} {:>14} {:>9}",
        "symbol", "bars", "missing", "filled", "longest gap s", "outliers"
    );
    for r in &aligned.report {
        println!(
            "{:<10} {:>8} {:>8} {:>8} {:>14.0} {:>9}",
            r.symbol, r.bars, r.missing, r.filled, r.longest_gap_s, r.outliers
        );
    }
    Ok(0)
}

pub fn bench_cache(a: &BenchCacheArgs, resolved: &Resolved) -> Result<i32> {
    let (symbols, days, bar) = a.universe.sizes(&resolved.config.bench);
    let r = crate::bench::bench_cache(resolved, symbols, days, bar, a.dir.clone())?;
    if a.json {
        return super::output::json(&r);
    }
    println!(
        "bench cache on {} ({} cores), backend cpu: {} symbols × {} days of {} bars = {} bars, {:.1} MB",
        r.machine.cpu,
        r.machine.cores,
        r.symbols,
        r.days,
        r.bar,
        r.bars,
        r.cache_bytes as f64 / 1e6
    );
    println!(
        "  build   {:>12.0} bars/s  ({:.1} MB/s written)",
        r.build_bars_per_s, r.build_mb_per_s
    );
    println!(
        "  scan    {:>12.2} GB/s    memcpy {:.2} GB/s (scan/memcpy {:.2}) over {:.1} MB",
        r.scan_gb_per_s,
        r.memcpy_gb_per_s,
        r.scan_over_memcpy,
        r.scan_bytes as f64 / 1e6
    );
    println!("  lookup  {:>12.1} ns", r.lookup_ns);
    Ok(0)
}

pub fn calendar(a: &CalendarArgs, resolved: &Resolved) -> Result<i32> {
    if a.from > a.to {
        return Err(Error::Usage(format!(
            "impossible date range: --from {} is after --to {}",
            a.from, a.to
        )));
    }
    let cal = calendar_from(resolved)?;
    let mut rows = Vec::new();
    let mut d = a.from;
    while d <= a.to {
        rows.push((d, cal.session(d)));
        d = d
            .succ_opt()
            .ok_or_else(|| Error::Usage("date out of range".into()))?;
    }
    if a.json {
        let v: Vec<_> = rows
            .iter()
            .map(|(d, s)| serde_json::json!({ "date": d, "session": s }))
            .collect();
        return super::output::json(&v);
    }
    for (d, s) in rows {
        match s {
            Some(s) => println!(
                "{d} {}  {}–{}{}",
                d.format("%a"),
                hms(s.open_sec as i64),
                hms(s.close_sec as i64),
                if s.early_close { "  early close" } else { "" }
            ),
            None => println!("{d} {}  closed", d.format("%a")),
        }
    }
    Ok(0)
}

pub fn bench_env(a: &BenchEnvArgs, resolved: &Resolved) -> Result<i32> {
    let simd = match &a.simd {
        None => None,
        Some(s) => Some(crate::env::Simd::parse(s).ok_or_else(|| {
            Error::Usage(format!("--simd {s}: expected baseline, avx2 or avx512"))
        })?),
    };
    let r = crate::bench::bench_env(
        &a.universe.apply(resolved),
        &crate::bench::EnvBenchRequest {
            backend: a.backend,
            envs: a.envs,
            steps: a.steps,
            obs_features: a.obs_features,
            cache: a.cache.clone(),
            simd,
        },
    )?;
    if a.json {
        return super::output::json(&r);
    }
    println!(
        "bench env on {}, backend {}: {} envs × {} steps, obs_dim {}, {} days ({}), {} resident at once",
        r.device,
        r.backend.name(),
        r.envs,
        r.steps,
        r.obs_dim,
        r.days,
        r.data,
        r.resident_days
    );
    println!(
        "  {:>12.0} env-steps/s  ({:.1} ns/step, {} B/step → {:.1} GB/s, {} episodes)",
        r.env_steps_per_s, r.ns_per_env_step, r.bytes_per_step, r.gb_per_s, r.episodes
    );
    if let (Some(host), Some(syncs), Some(up)) = (
        r.host_us_per_step,
        r.syncs_per_step,
        r.h2d_bytes_per_env_step,
    ) {
        println!(
            "  host {host:.1} µs per batch step, {syncs:.4} waits for the device per step, {up:.3} bytes uploaded per env-step"
        );
    }
    Ok(0)
}

/// `sim-train doctor`: progress on stderr, the report on stdout, and for a host without
/// CUDA or a failed check one error line and its exit code.
#[cfg(feature = "torch")]
pub fn doctor(a: &super::DoctorArgs, resolved: &Resolved) -> Result<i32> {
    if a.envs.contains(&0)
        || a.train_envs.contains(&0)
        || a.steps == 0
        || a.conformance_envs == 0
        || a.conformance_steps == 0
    {
        return Err(Error::Usage(
            "doctor: --envs, --train-envs, --steps, --conformance-envs and --conformance-steps must be at least 1".into(),
        ));
    }
    let req = crate::doctor::Request {
        env_sizes: a.envs.clone(),
        env_steps: a.steps,
        train_sizes: a.train_envs.clone(),
        conformance_envs: a.conformance_envs,
        conformance_steps: a.conformance_steps,
    };
    let report = crate::doctor::run(resolved, &req, &|line| eprintln!("doctor: {line}"))?;
    super::output::json(&report)?;
    if report.exit_code != 0 {
        eprintln!("error: doctor: {}", report.verdict);
    }
    Ok(report.exit_code)
}

#[cfg(feature = "torch")]
pub fn bench_train(a: &super::BenchTrainArgs, resolved: &Resolved) -> Result<i32> {
    let r = crate::bench::bench_train(
        &a.universe.apply(resolved),
        &crate::bench::TrainBenchRequest {
            device: a.device,
            backend: a.backend,
            envs: a.envs,
            rollout_steps: a.steps,
            updates: a.updates,
            cache: a.cache.clone(),
        },
    )?;
    if a.json {
        return super::output::json(&r);
    }
    println!(
        "bench train on {} ({} threads), learner {}, environments {}{}: {} envs × T {}, hidden {}, encoder {:?}, {} epochs × {} minibatches, obs_dim {} ({})",
        r.machine.cpu,
        r.threads,
        r.device,
        r.env_device,
        if r.zero_copy { " (zero-copy)" } else { "" },
        r.envs,
        r.rollout_steps,
        r.hidden,
        r.encoder,
        r.epochs,
        r.minibatches,
        r.obs_dim,
        r.data
    );
    println!(
        "  {:>10.0} training steps/s  (per update: env {:.3} s, inference {:.3} s, learn {:.3} s, total {:.3} s)",
        r.train_steps_per_s, r.env_s, r.inference_s, r.learn_s, r.update_s
    );
    Ok(0)
}

#[cfg(feature = "torch")]
pub fn bench_sweep(a: &super::BenchSweepArgs, resolved: &Resolved) -> Result<i32> {
    let r = crate::bench::bench_sweep(
        resolved,
        &crate::bench::SweepBenchRequest {
            symbols: a.symbols,
            days: a.days,
            bar: a.bar,
            seeds: a.seeds,
            unit_steps: a.unit_steps,
        },
    )?;
    if a.json {
        return super::output::json(&r);
    }
    println!(
        "bench sweep on {} ({} threads): {}, {} folds ({} train / {} test days) × {} seeds = {} units of {} env steps ({} envs)",
        r.machine.cpu,
        r.threads,
        r.data,
        r.folds,
        r.train_days,
        r.test_days,
        r.seeds,
        r.units,
        r.unit_steps,
        r.envs
    );
    println!(
        "  {:>8.0} units/hour end to end  (per unit: train {:.2} s, eval {:.2} s; merge {:.2} s; total {:.1} s)",
        r.units_per_hour, r.train_s_per_unit, r.eval_s_per_unit, r.merge_s, r.wall_s
    );
    Ok(0)
}

pub fn bench_live(a: &super::BenchLiveArgs, resolved: &Resolved) -> Result<i32> {
    let r = crate::bench::bench_live(
        resolved,
        &crate::bench::LiveBenchRequest {
            symbols: a.symbols,
            days: a.days,
            bar: a.bar,
            fsync: a.fsync,
            stream: a.stream,
        },
    )?;
    if a.json {
        return super::output::json(&r);
    }
    println!(
        "bench live on {} (one core): {} fed as a {}, journal {}; {} decisions, {} records",
        r.machine.cpu,
        r.data,
        r.feed,
        if r.fsync { "fsynced" } else { "flushed" },
        r.decisions,
        r.journal_records
    );
    println!(
        "  per decision (bar in → order out): p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        r.decision_us.p50, r.decision_us.p99, r.decision_us.max
    );
    println!(
        "  per bar ({} symbols): p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        r.symbols, r.bar_us.p50, r.bar_us.p99, r.bar_us.max
    );
    Ok(0)
}
