//! `sim-train train` and `sim-train plot`.

use super::GlobalArgs;
use crate::config::{RESOLVED_FILE, Resolved};
use crate::error::{Error, Result};
use crate::learn::run::{RunOptions, install_ctrl_c, train};
use crate::learn::{DeviceChoice, TrainEnv};
use clap::Args;
use std::path::PathBuf;

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
    /// Day cache of the market environments (a resume reuses the saved one by default).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: &TrainArgs, global: &GlobalArgs, progress: bool) -> Result<i32> {
    let (resolved, dir, resume) = match (&a.resume, &a.run_dir) {
        (Some(dir), _) => {
            if global.config.is_some() || !global.set.is_empty() || a.env.is_some() || a.device.is_some() {
                return Err(Error::Usage(format!(
                    "--resume continues {} with its saved {RESOLVED_FILE}: drop --config, --set, --env and --device (start a new run to change settings)",
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
            (crate::config::load(global.config.as_deref(), &sets)?, dir.clone(), false)
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
            stop_after: None,
            progress,
        },
    )?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary).expect("serializes"));
    } else {
        println!(
            "{} {} updates ({} env steps, {} episodes) on {} at {:.0} steps/s; final episode return {}",
            if summary.finished { "trained" } else { "stopped after" },
            summary.updates_done,
            summary.global_step,
            summary.episodes,
            summary.device,
            summary.sps,
            summary.final_episode_return.map_or("-".into(), |r| format!("{r:.4}")),
        );
        println!("run dir: {}", dir.display());
        if let Some(c) = &summary.checkpoint {
            println!("checkpoint: {}", c.display());
        }
        if !summary.finished {
            println!("resume with: sim-train train --resume {}", dir.display());
        }
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
