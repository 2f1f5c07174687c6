//! `sim-train train`, `plot`, `eval` and `export`. `train`, `export` and `eval` of a
//! checkpoint run libtorch and are built with the `torch` feature; `plot` and `eval
//! --policy BUNDLE` are not.

use super::DaysArgs;
#[cfg(feature = "torch")]
use super::GlobalArgs;
#[cfg(feature = "torch")]
use crate::config::RESOLVED_FILE;
use crate::config::Resolved;
use crate::error::{Error, Result};
use crate::learn::eval::Comparison;
#[cfg(feature = "torch")]
use crate::learn::run::{RunOptions, install_ctrl_c, train};
use crate::learn::{DeviceChoice, TrainEnv};
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// New run folder (config, logs, checkpoints, summary); must not exist or be empty.
    #[arg(long, conflicts_with = "resume", required_unless_present = "resume")]
    pub run_dir: Option<PathBuf>,
    /// Continue the run in this folder from its latest checkpoint, with its saved config.
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    /// Environment (default: train.env).
    #[arg(long, value_enum)]
    pub env: Option<TrainEnv>,
    /// Device (default: train.device).
    #[arg(long, value_enum)]
    pub device: Option<DeviceChoice>,
    /// Engine stepping the market environments (default: train.backend).
    #[arg(long, value_enum)]
    pub backend: Option<crate::env::Backend>,
    /// Day cache of the market environments (a resume reuses the saved one by default).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Scanner index (`sim-train scan`): market episodes come from its curriculum sampler
    /// ([sampler], days preloaded in the background) instead of env.start_times.
    #[arg(long)]
    pub index: Option<PathBuf>,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[cfg(feature = "torch")]
pub fn run(a: &TrainArgs, global: &GlobalArgs, progress: bool) -> Result<i32> {
    let (resolved, dir, resume) = match (&a.resume, &a.run_dir) {
        (Some(dir), _) => {
            if global.config.is_some()
                || !global.set.is_empty()
                || a.env.is_some()
                || a.device.is_some()
                || a.backend.is_some()
                || a.index.is_some()
            {
                return Err(Error::Usage(format!(
                    "--resume continues {} with its saved {RESOLVED_FILE}: drop --config, --set, --env, --device, --backend and --index (start a new run to change settings)",
                    dir.display()
                )));
            }
            let saved = dir.join(RESOLVED_FILE);
            if !saved.is_file() {
                return Err(Error::Usage(format!(
                    "{} is not a run dir (no {RESOLVED_FILE}): give the --run-dir of an earlier `sim-train train`",
                    dir.display()
                )));
            }
            (crate::config::load(Some(&saved), &[])?, dir.clone(), true)
        }
        (None, Some(dir)) => {
            let mut sets = global.set.clone();
            if let Some(e) = a.env {
                sets.push(format!("train.env=\"{}\"", e.name()));
            }
            if let Some(d) = a.device {
                let name = match d {
                    DeviceChoice::Cpu => "cpu",
                    DeviceChoice::Cuda => "cuda",
                    DeviceChoice::Auto => "auto",
                };
                sets.push(format!("train.device=\"{name}\""));
            }
            if let Some(b) = a.backend {
                sets.push(format!("train.backend=\"{}\"", b.name()));
            }
            (
                crate::config::load(global.config.as_deref(), &sets)?,
                dir.clone(),
                false,
            )
        }
        (None, None) => return Err(Error::Usage("give --run-dir DIR or --resume DIR".into())),
    };
    install_ctrl_c();
    let summary = train(
        &resolved,
        &RunOptions {
            run_dir: dir.clone(),
            resume,
            cache: a.cache.clone(),
            index: a.index.clone(),
            stop_after: None,
            progress,
            init_from: None,
        },
    )?;
    if a.json {
        return super::output::json(&summary);
    }
    println!(
        "{} {} updates ({} env steps, {} episodes) on {} at {:.0} steps/s; final episode return {}",
        if summary.finished {
            "trained"
        } else {
            "stopped after"
        },
        summary.updates_done,
        summary.global_step,
        summary.episodes,
        summary.device,
        summary.sps,
        summary
            .final_episode_return
            .map_or("-".into(), |r| format!("{r:.4}")),
    );
    println!("run dir: {}", dir.display());
    if let Some(c) = &summary.checkpoint {
        println!("checkpoint: {}", c.display());
    }
    if !summary.finished {
        println!("resume with: sim-train train --resume {}", dir.display());
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct PlotArgs {
    /// Run folder of `sim-train train`.
    #[arg(long)]
    pub run_dir: PathBuf,
    /// Output folder (default: RUN_DIR/plots).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn plot(a: &PlotArgs, _resolved: &Resolved) -> Result<i32> {
    let out = a.out.clone().unwrap_or_else(|| a.run_dir.join("plots"));
    let files = crate::plot::plot_run(&a.run_dir, &out)?;
    for f in files {
        println!("{}", f.display());
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Run folder of `sim-train train` (a market run); its latest checkpoint is evaluated.
    #[arg(long, conflicts_with_all = ["checkpoint", "policy"], required_unless_present_any = ["checkpoint", "policy"])]
    pub run_dir: Option<PathBuf>,
    /// A checkpoint folder of a run (RUN_DIR/checkpoints/update-NNNNNNNN).
    #[arg(long, conflicts_with = "policy")]
    pub checkpoint: Option<PathBuf>,
    /// An exported policy bundle (`sim-train export`), run by the pure-Rust forward as in
    /// live trading; needs --cache and --out.
    #[arg(long, value_name = "BUNDLE")]
    pub policy: Option<PathBuf>,
    /// Greedy (most probable action) or sampled (seeded draws) actions.
    #[arg(long, value_enum, default_value = "greedy")]
    pub mode: crate::learn::eval::ActMode,
    /// Seed of sampled actions.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Day cache (default: the one the run trained on; required with --policy).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    #[command(flatten)]
    pub days: DaysArgs,
    /// Baselines run on the same days, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "flat,buy-and-hold"
    )]
    pub baselines: Vec<crate::backtest::Baseline>,
    /// Output folder (default: RUN_DIR/eval; required with --policy).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print comparison.json on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `eval --policy BUNDLE`: the bundle through the pure-Rust forward (no libtorch).
pub fn eval_bundle(a: &EvalArgs, bundle: &Path) -> Result<i32> {
    let need = |flag: &str| {
        Error::Usage(format!(
            "--policy {} needs {flag}: a bundle records neither its data nor an output folder",
            bundle.display()
        ))
    };
    let cache = a.cache.as_deref().ok_or_else(|| need("--cache DIR"))?;
    let out = a.out.as_deref().ok_or_else(|| need("--out DIR"))?;
    let sel = a.days.selection()?;
    let req = eval_request(a);
    let evaluated = crate::learn::eval::evaluate_bundle(&req, bundle, cache, &sel)?;
    let c = crate::learn::eval::compare(&req, evaluated, cache, &sel, &a.baselines, out)?;
    print_comparison(a.json, &c.comparison, out)
}

/// `eval --run-dir DIR` or `--checkpoint PATH`: the checkpoint through libtorch; the cache
/// defaults to the run's, the output to `RUN_DIR/eval`.
#[cfg(feature = "torch")]
pub fn eval_checkpoint(a: &EvalArgs) -> Result<i32> {
    let run_dir = match (&a.run_dir, &a.checkpoint) {
        (Some(d), _) => d.clone(),
        (None, Some(c)) => crate::learn::eval::run_dir_of(c)?,
        (None, None) => {
            return Err(Error::Usage(
                "give --run-dir DIR, --checkpoint PATH or --policy BUNDLE".into(),
            ));
        }
    };
    let cache = match &a.cache {
        Some(c) => c.clone(),
        None => crate::learn::run::run_cache(&run_dir)?.ok_or_else(|| {
            Error::Usage(format!(
                "{} does not record a cache: pass --cache DIR",
                run_dir.display()
            ))
        })?,
    };
    let out = a.out.clone().unwrap_or_else(|| run_dir.join("eval"));
    let sel = a.days.selection()?;
    let req = eval_request(a);
    let evaluated =
        crate::learn::checkpoint::evaluate(&req, &run_dir, a.checkpoint.as_deref(), &cache, &sel)?;
    let c = crate::learn::eval::compare(&req, evaluated, &cache, &sel, &a.baselines, &out)?;
    print_comparison(a.json, &c.comparison, &out)
}

fn eval_request(a: &EvalArgs) -> crate::learn::eval::EvalRequest {
    crate::learn::eval::EvalRequest {
        mode: a.mode,
        seed: a.seed,
    }
}

fn print_comparison(json: bool, c: &Comparison, out: &Path) -> Result<i32> {
    if json {
        return super::output::json(c);
    }
    let fmt_date = |d: Option<chrono::NaiveDate>| d.map_or("-".to_string(), |d| d.to_string());
    println!(
        "policy {} {} ({:?}) on {} days ({} .. {}): mean daily return {:+.4} %, total {:+.2} %, Sharpe {}, {} trades",
        c.policy_kind,
        c.policy.display(),
        c.mode,
        c.days,
        fmt_date(c.first_date),
        fmt_date(c.last_date),
        100.0 * c.policy_mean_daily_return,
        100.0 * c.policy_total_return,
        c.policy_sharpe.map_or("-".into(), |s| format!("{s:.2}")),
        c.policy_trades
    );
    for v in &c.versus {
        println!(
            "  vs {:<13} mean daily {:+.4} %, excess {:+.4} %/day, paired t {}",
            v.baseline,
            100.0 * v.baseline_mean_daily_return,
            100.0 * v.mean_daily_excess,
            v.t_stat.map_or("-".into(), |t| format!("{t:.2}"))
        );
    }
    println!("reports: {}", out.display());
    Ok(0)
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// A checkpoint folder (RUN_DIR/checkpoints/update-NNNNNNNN), or a run dir for its
    /// latest checkpoint.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// The bundle folder to write (new or empty).
    #[arg(long)]
    pub out: PathBuf,
    /// Print the manifest as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[cfg(feature = "torch")]
pub fn export(a: &ExportArgs) -> Result<i32> {
    let checkpoint = if a.checkpoint.join(crate::config::RESOLVED_FILE).is_file() {
        crate::learn::run::latest_checkpoint(&a.checkpoint)?
    } else {
        a.checkpoint.clone()
    };
    let m = crate::learn::export::export(&checkpoint, &a.out)?;
    if a.json {
        return super::output::json(&m);
    }
    print!("{}", crate::bundle::Bundle::open(&a.out)?.describe());
    Ok(0)
}
