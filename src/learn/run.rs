//! A training run as a batch job: the run dir, per-update logs, a progress bar, periodic
//! and final checkpoints (also on Ctrl-C), and exact resume.
//!
//! Run dir layout:
//! - `config.resolved.toml`: the config the run uses (a resume reads it back);
//! - `metrics.jsonl` and `metrics.csv`: one record per update ([`METRIC_KEYS`]);
//! - `tb/`: the same scalars as TensorBoard event files, under CleanRL's tag names
//!   ([`tensorboard_tag`]; `tensorboard --logdir RUN_DIR/tb`), a new file per resume;
//! - `checkpoints/update-NNNNNNNN/` (`tensors.ot`, `envs.bin`, `state.json`) and
//!   `checkpoints/latest` naming the newest complete one;
//! - `summary.json`: what the run did, written at the end (and on Ctrl-C).
//!
//! A checkpoint is written into a hidden temporary folder and renamed into place, then
//! `latest` is replaced atomically: a failed write (disk full) leaves the previous
//! checkpoint as the valid one.

use super::config::{DeviceChoice, TrainEnv};
use super::device_env::InPlace;
use super::policy::{LstmState, Policy, PolicyShape};
use super::ppo::{Ppo, UpdateStats};
use super::sanity::{Bandit, Memory};
use super::tensorboard::{self, EventWriter};
use super::vec_env::{EpisodeLog, MarketEnvs, VecEnv};
use crate::config::{RESOLVED_FILE, Resolved};
use crate::env::{Backend, DaySelection, EnvOptions, EnvParams, Envs, StartTimes};
use crate::error::{Error, IoContext, Result};
use crate::util::fs::{sync_dir, write_atomic};
use crate::util::stats::mean;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tch::{Device, Tensor};

/// The per-update record's keys, in CSV column order (CleanRL's namespaces).
pub const METRIC_KEYS: &[&str] = &[
    "update",
    "global_step",
    "charts/lr",
    "charts/sps",
    "charts/epochs",
    "time/env_s",
    "time/inference_s",
    "time/learn_s",
    "losses/policy",
    "losses/value",
    "losses/entropy",
    "losses/approx_kl",
    "losses/old_approx_kl",
    "losses/clipfrac",
    "losses/explained_variance",
    "losses/grad_norm",
    "charts/episodes",
    "charts/episode_return",
    "charts/episode_length",
    "trading/pnl",
    "trading/trades",
    "trading/turnover",
    "trading/win_rate",
];

const METRICS_JSONL: &str = "metrics.jsonl";
const METRICS_CSV: &str = "metrics.csv";
const TENSORBOARD: &str = "tb";
const SUMMARY: &str = "summary.json";
const CHECKPOINTS: &str = "checkpoints";
const LATEST: &str = "latest";

/// Set by Ctrl-C: the run finishes its update, checkpoints and stops.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
    // A second Ctrl-C kills the process as usual.
    // SAFETY: signal() is async-signal-safe; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
    }
}

/// Makes Ctrl-C request a clean stop instead of killing the process.
pub fn install_ctrl_c() {
    // SAFETY: the handler only stores to an atomic and resets the disposition.
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
    }
}

/// Asks a running [`train`] to stop after its current update (what Ctrl-C does).
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}

/// How to run.
pub struct RunOptions {
    pub run_dir: PathBuf,
    /// Continue the run in `run_dir` from its latest checkpoint.
    pub resume: bool,
    /// Market data (`env = market` needs a cache or an index).
    pub cache: Option<PathBuf>,
    /// A scanner index: market episodes come from its curriculum sampler.
    pub index: Option<PathBuf>,
    /// Stop after this many updates in this process (tests of resume); `None` = run to
    /// the end.
    pub stop_after: Option<u64>,
    pub progress: bool,
    /// A new run starts from this checkpoint's policy weights and observation statistics
    /// (a warm start; the optimizer, environments and counters start fresh). Ignored on
    /// resume, where everything comes from the run's own checkpoint.
    pub init_from: Option<PathBuf>,
}

/// What `summary.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    pub version: String,
    pub env: String,
    pub device: String,
    /// Where the environments ran (`train.backend`; "cpu", or the GPU and its API).
    #[serde(default)]
    pub backend: String,
    pub run_dir: PathBuf,
    pub cache: Option<PathBuf>,
    pub index: Option<PathBuf>,
    pub finished: bool,
    pub updates_done: u64,
    pub updates_total: u64,
    pub global_step: u64,
    pub episodes: u64,
    /// Wall seconds of this process's part of the run.
    pub wall_s: f64,
    /// Environment steps per second over this process's updates.
    pub sps: f64,
    pub env_s: f64,
    pub inference_s: f64,
    pub learn_s: f64,
    /// Mean episode return over the last 10 % of updates (at least one), null if none.
    pub final_episode_return: Option<f64>,
    pub checkpoint: Option<PathBuf>,
    pub resumed_from_update: Option<u64>,
}

/// What a checkpoint's `state.json` holds besides tensors and environments.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct CkptState {
    version: String,
    config_hash: String,
    cache: Option<PathBuf>,
    #[serde(default)]
    index: Option<PathBuf>,
    update: u64,
    global_step: u64,
    episodes: u64,
    adam_step: u64,
    rng_seed: u64,
    /// The trainer RNG's word position (u128 as a decimal string).
    rng_word_pos: String,
}

/// The device `choice` names; errors when CUDA is asked for and absent.
pub fn pick_device(choice: DeviceChoice) -> Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Cuda if tch::Cuda::is_available() => Ok(Device::Cuda(0)),
        DeviceChoice::Cuda => Err(Error::Usage(
            "--device cuda: no usable CUDA device (no GPU, no driver, or libtorch without CUDA); use --device cpu or auto".into(),
        )),
        DeviceChoice::Auto if tch::Cuda::is_available() => Ok(Device::Cuda(0)),
        DeviceChoice::Auto => Ok(Device::Cpu),
    }
}

fn device_name(d: Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}"),
    }
}

/// Builds the environments a config asks for. Market episodes come from the scanner
/// index's curriculum sampler when `index` is given (days loaded in the background from
/// the index's cache, or `cache`), else from `env.start_times` over the days of `cache`
/// that `train.symbols` / `from` / `to` select (loaded up front, or day-major through a
/// window of `preload.resident_days` when there are more: [`StartTimes::over_cache`]).
/// They run on
/// `train.backend`; CUDA environments next to a learner on `device` = CUDA share their
/// buffers with it ([`InPlace::on_gpu`]).
pub fn build_envs(
    resolved: &Resolved,
    cache: Option<&Path>,
    index: Option<&Path>,
    device: Device,
) -> Result<Box<dyn VecEnv>> {
    let t = &resolved.config.train;
    Ok(match t.env {
        TrainEnv::SanityBandit => Box::new(Bandit::new(t.num_envs, t.bandit_arms, t.seed)),
        TrainEnv::SanityMemory => Box::new(Memory::new(t.num_envs, t.memory_delay, t.seed)),
        TrainEnv::Market => {
            let env_cfg = &resolved.config.env;
            let params =
                std::sync::Arc::new(EnvParams::from_config(env_cfg).map_err(Error::Config)?);
            let symbols: Option<Vec<String>> = (!t.symbols.is_empty())
                .then(|| t.symbols.iter().map(|s| s.to_uppercase()).collect());
            if let Some(index) = index {
                let idx = std::sync::Arc::new(crate::scan::Index::load(index)?);
                let cache = cache.map_or_else(|| idx.manifest.cache.clone(), Path::to_path_buf);
                let s = &resolved.config.sampler;
                let sel = crate::scan::sampler::Selection {
                    from: t.from.or(s.from),
                    to: t.to.or(s.to),
                    symbols,
                };
                let sampler = crate::scan::Sampler::new(idx, s, sel)?
                    .with_preloader(params.clone(), &resolved.config.preload)?;
                return market_envs(resolved, params, Box::new(sampler), &[], &cache, device);
            }
            let cache = cache.ok_or_else(|| {
                Error::Usage(
                    "train.env = market needs market data: pass --cache DIR (a day cache from `sim-train cache build` or `pipeline`) or --index DIR (a `sim-train scan` index)".into(),
                )
            })?;
            let sel = DaySelection {
                symbols,
                from: t.from,
                to: t.to,
            };
            let starts = env_cfg
                .start_times
                .iter()
                .map(|s| crate::env::params::parse_hms(s).map_err(Error::Config))
                .collect::<Result<Vec<u32>>>()?;
            let u = StartTimes::over_cache(
                cache,
                &sel,
                &params,
                &starts,
                env_cfg.seed,
                &resolved.config.preload,
            )?;
            return market_envs(
                resolved,
                params,
                Box::new(u.source),
                &u.loaded,
                cache,
                device,
            );
        }
    })
}

/// The market environments on `train.backend` ([`Envs::open`]); CUDA environments next to
/// a learner on a CUDA device are stepped in place ([`InPlace::on_gpu`]).
fn market_envs(
    resolved: &Resolved,
    params: std::sync::Arc<EnvParams>,
    source: Box<dyn crate::env::EpisodeSource>,
    days: &[std::sync::Arc<crate::env::DayData>],
    cache: &Path,
    device: Device,
) -> Result<Box<dyn VecEnv>> {
    let t = &resolved.config.train;
    let opts = EnvOptions {
        window_episodes: Some(resolved.config.preload.window_episodes),
        gpu: crate::env::gpu::GpuOptions {
            day_slots: (t.day_slots > 0).then_some(t.day_slots),
            ..Default::default()
        },
        ..Default::default()
    };
    let envs = Envs::open(t.backend, params, t.num_envs, source, opts)?;
    let envs: Box<dyn VecEnv> = Box::new(MarketEnvs::new(envs, days, cache));
    if t.backend == Backend::Cuda && device.is_cuda() {
        return Ok(Box::new(InPlace::on_gpu(envs, device)?));
    }
    Ok(envs)
}

/// Hash of the config's values (not of where they came from: a resume reads them back
/// from `config.resolved.toml`).
pub fn config_hash(resolved: &Resolved) -> String {
    let values = toml::to_string(&resolved.config).expect("the config serializes");
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(values.as_bytes()))
}

/// Trains (or resumes) a run. Errors before anything is allocated when the config cannot
/// work; Ctrl-C (after [`install_ctrl_c`]) stops cleanly after the current update.
pub fn train(resolved: &Resolved, opts: &RunOptions) -> Result<Summary> {
    let cfg = resolved.config.train.clone();
    cfg.validate().map_err(Error::Config)?;
    let device = pick_device(cfg.device)?;
    let dir = &opts.run_dir;
    let ckpt = opts.resume.then(|| latest_checkpoint(dir)).transpose()?;
    if ckpt.is_none() {
        check_new_run_dir(dir)?;
    }
    let saved: Option<CkptState> = ckpt
        .as_ref()
        .map(|c| read_state(&c.join("state.json")))
        .transpose()?;
    if let Some(s) = &saved {
        check_compatible(s, resolved)?;
    }
    let cache = opts
        .cache
        .clone()
        .or_else(|| saved.as_ref().and_then(|s| s.cache.clone()));
    let index = opts
        .index
        .clone()
        .or_else(|| saved.as_ref().and_then(|s| s.index.clone()));
    if let Some(c) = &cache {
        crate::build::check_cache_benchmark(c, &resolved.config.features)?;
    }

    let threads = if cfg.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        cfg.threads
    };
    tch::set_num_threads(threads as i32);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Usage(format!("cannot start {threads} threads: {e}")))?;

    // Data errors come before the run dir is created.
    let mut env = build_envs(resolved, cache.as_deref(), index.as_deref(), device)?;
    if ckpt.is_none() {
        prepare_new_run_dir(dir)?;
    }
    let shape = PolicyShape {
        obs_dim: env.obs_dim(),
        n_actions: env.num_actions(),
        encoder: cfg.encoder.clone(),
        hidden: cfg.hidden,
    };
    shape.check_memory()?;
    let policy = Policy::new(shape, device, cfg.seed);
    let mut ppo = Ppo::new(&cfg, env.as_mut(), policy)?;
    if let (None, Some(from)) = (&ckpt, &opts.init_from) {
        warm_start(from, &mut ppo)?;
    }
    let mut counters = Counters::default();
    if let (Some(c), Some(s)) = (&ckpt, &saved) {
        restore(c, s, &mut ppo, env.as_mut())?;
        counters = Counters {
            update: s.update,
            global_step: s.global_step,
            episodes: s.episodes,
        };
        truncate_logs(dir, s.update)?;
    } else {
        resolved.save_beside(dir)?;
    }
    let resumed_from = saved.as_ref().map(|s| s.update);
    let data = DataPaths { cache, index };
    pool.install(|| {
        run_updates(
            resolved,
            opts,
            &mut ppo,
            env.as_mut(),
            counters,
            data,
            resumed_from,
            device,
        )
    })
}

/// Where a market run's data came from (recorded in checkpoints for resume).
#[derive(Clone, Debug, Default)]
struct DataPaths {
    cache: Option<PathBuf>,
    index: Option<PathBuf>,
}

#[derive(Clone, Copy, Default)]
struct Counters {
    update: u64,
    global_step: u64,
    episodes: u64,
}

#[allow(clippy::too_many_arguments)]
fn run_updates(
    resolved: &Resolved,
    opts: &RunOptions,
    ppo: &mut Ppo,
    env: &mut dyn VecEnv,
    mut at: Counters,
    data: DataPaths,
    resumed_from: Option<u64>,
    device: Device,
) -> Result<Summary> {
    let cfg = ppo.cfg.clone();
    let dir = &opts.run_dir;
    let updates = cfg.updates();
    let hash = config_hash(resolved);
    let mut log = MetricsLog::open(dir, resumed_from.map(|_| at.global_step))?;
    let bar = crate::logging::progress(updates, "train", opts.progress);
    bar.set_position(at.update);
    let started = Instant::now();
    let (mut env_s, mut inf_s, mut learn_s, mut steps_here) = (0.0, 0.0, 0.0, 0u64);
    let mut returns_tail: Vec<f64> = Vec::new();
    let tail_from = updates - (updates / 10).max(1);
    let mut episodes = Vec::new();
    let mut last_ckpt = None;
    let mut done_here = 0u64;
    // A checkpoint reads what carries between rollouts off the learner's device first.
    let checkpoint = |ppo: &mut Ppo, env: &mut dyn VecEnv, at: &Counters| {
        ppo.sync_host();
        save_checkpoint(dir, ppo, env, at, &hash, &data, cfg.keep_checkpoints)
    };
    while at.update < updates {
        if STOP.load(Ordering::SeqCst) || opts.stop_after.is_some_and(|k| done_here >= k) {
            break;
        }
        let clock = Instant::now();
        let (e_s, i_s) = ppo.rollout(env)?;
        let lr = ppo.lr_at(at.update + 1, updates);
        let mut stats = ppo.update(lr);
        stats.env_s = e_s;
        stats.inference_s = i_s;
        at.update += 1;
        done_here += 1;
        at.global_step += cfg.batch_steps();
        steps_here += cfg.batch_steps();
        episodes.clear();
        env.drain_episodes(&mut episodes)?;
        at.episodes += episodes.len() as u64;
        let secs = clock.elapsed().as_secs_f64();
        env_s += stats.env_s;
        inf_s += stats.inference_s;
        learn_s += stats.learn_s;
        let record = metrics_record(&at, &stats, cfg.batch_steps() as f64 / secs, &episodes);
        if at.update > tail_from {
            returns_tail.extend(episodes.iter().map(|e| e.reward));
        }
        log.append(&record)?;
        let ret = mean(episodes.iter().map(|e| e.reward));
        let pnl = mean(episodes.iter().map(|e| e.pnl));
        bar.set_position(at.update);
        bar.set_message(format!(
            "{:.0} steps/s, {} episodes, return {}, P&L {}",
            cfg.batch_steps() as f64 / secs,
            at.episodes,
            ret.map_or("-".into(), |r| format!("{r:.3}")),
            pnl.map_or("-".into(), |p| format!("{p:.2}"))
        ));
        // Without a visible progress bar (not a terminal, JSON logs), ~20 log lines a run.
        if bar.is_hidden() && (at.update == 1 || at.update.is_multiple_of((updates / 20).max(1))) {
            tracing::info!(
                update = at.update,
                of = updates,
                global_step = at.global_step,
                sps = format!("{:.0}", cfg.batch_steps() as f64 / secs),
                episode_return = ret,
                pnl = pnl,
                "train"
            );
        }
        let periodic = cfg.checkpoint_every > 0 && at.update.is_multiple_of(cfg.checkpoint_every);
        if periodic || at.update == updates {
            last_ckpt = Some(checkpoint(ppo, env, &at)?);
        }
    }
    bar.finish_and_clear();
    let finished = at.update >= updates;
    let saved_last = last_ckpt
        .as_ref()
        .is_some_and(|c| c.ends_with(checkpoint_name(at.update)));
    if !finished && done_here > 0 && !saved_last {
        // Stopped early (Ctrl-C or stop_after): checkpoint where we are.
        last_ckpt = Some(checkpoint(ppo, env, &at)?);
    }
    if !finished {
        tracing::info!(
            update = at.update,
            "stopped before the end; continue with `sim-train train --resume {}`",
            dir.display()
        );
    }
    let wall = started.elapsed().as_secs_f64();
    let summary = Summary {
        version: env!("CARGO_PKG_VERSION").into(),
        env: cfg.env.name().into(),
        device: device_name(device),
        backend: env.describe(),
        run_dir: dir.clone(),
        cache: data.cache.clone(),
        index: data.index.clone(),
        finished,
        updates_done: at.update,
        updates_total: updates,
        global_step: at.global_step,
        episodes: at.episodes,
        wall_s: wall,
        sps: if wall > 0.0 {
            steps_here as f64 / wall
        } else {
            0.0
        },
        env_s,
        inference_s: inf_s,
        learn_s,
        final_episode_return: mean(returns_tail.iter().copied()),
        checkpoint: last_ckpt.or_else(|| latest_checkpoint(dir).ok()),
        resumed_from_update: resumed_from,
    };
    let json = serde_json::to_vec_pretty(&summary).expect("a plain struct serializes");
    write_atomic(&dir.join(SUMMARY), &json)?;
    Ok(summary)
}

fn metrics_record(
    at: &Counters,
    s: &UpdateStats,
    sps: f64,
    eps: &[EpisodeLog],
) -> Vec<(&'static str, Option<f64>)> {
    let traded: Vec<&EpisodeLog> = eps.iter().filter(|e| e.trades > 0).collect();
    let win_rate = mean(traded.iter().map(|e| if e.pnl > 0.0 { 1.0 } else { 0.0 }));
    let values = [
        Some(at.update as f64),
        Some(at.global_step as f64),
        Some(s.lr),
        Some(sps),
        Some(s.epochs as f64),
        Some(s.env_s),
        Some(s.inference_s),
        Some(s.learn_s),
        Some(s.policy_loss),
        Some(s.value_loss),
        Some(s.entropy),
        Some(s.approx_kl),
        Some(s.old_approx_kl),
        Some(s.clipfrac),
        Some(s.explained_variance),
        Some(s.grad_norm),
        Some(eps.len() as f64),
        mean(eps.iter().map(|e| e.reward)),
        mean(eps.iter().map(|e| e.length as f64)),
        mean(eps.iter().map(|e| e.pnl)),
        mean(eps.iter().map(|e| e.trades as f64)),
        mean(eps.iter().map(|e| e.turnover)),
        win_rate,
    ];
    METRIC_KEYS
        .iter()
        .copied()
        .zip(
            values
                .into_iter()
                .map(|v| v.and_then(|x| x.is_finite().then_some(x))),
        )
        .collect()
}

/// The JSONL and CSV logs and the TensorBoard event file, appended one update at a time.
struct MetricsLog {
    jsonl: std::fs::File,
    csv: std::fs::File,
    paths: (PathBuf, PathBuf),
    tb: EventWriter,
}

impl MetricsLog {
    /// Opens the logs of `dir` for appending. `resumed_at`: the global step of the
    /// checkpoint a resume starts from; the event file then marks a restart there, so that
    /// TensorBoard drops the earlier files' points of the updates redone (as
    /// [`truncate_logs`] drops their records).
    fn open(dir: &Path, resumed_at: Option<u64>) -> Result<MetricsLog> {
        let (jp, cp) = (dir.join(METRICS_JSONL), dir.join(METRICS_CSV));
        let open = |p: &Path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .at(p)
        };
        let new_csv = !cp.exists() || std::fs::metadata(&cp).at(&cp)?.len() == 0;
        let mut csv = open(&cp)?;
        if new_csv {
            writeln!(csv, "{}", METRIC_KEYS.join(",")).at(&cp)?;
        }
        let tb_dir = dir.join(TENSORBOARD);
        let mut tb = EventWriter::create(&tb_dir).at(&tb_dir)?;
        if let Some(step) = resumed_at {
            tb.restart(step as i64 + 1, tensorboard::wall_time_now())
                .at(tb.path())?;
        }
        Ok(MetricsLog {
            jsonl: open(&jp)?,
            csv,
            paths: (jp, cp),
            tb,
        })
    }

    fn append(&mut self, record: &[(&str, Option<f64>)]) -> Result<()> {
        let obj: serde_json::Map<String, serde_json::Value> = record
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    v.map_or(serde_json::Value::Null, serde_json::Value::from),
                )
            })
            .collect();
        let line = serde_json::to_string(&obj).expect("numbers serialize");
        writeln!(self.jsonl, "{line}").at(&self.paths.0)?;
        let row: Vec<String> = record
            .iter()
            .map(|(_, v)| v.map_or(String::new(), |x| format!("{x}")))
            .collect();
        writeln!(self.csv, "{}", row.join(",")).at(&self.paths.1)?;
        let step = record
            .iter()
            .find(|(k, _)| *k == "global_step")
            .and_then(|(_, v)| *v)
            .unwrap_or(0.0) as i64;
        let scalars: Vec<(&str, f64)> = record
            .iter()
            .filter_map(|&(k, v)| Some((tensorboard_tag(k)?, v?)))
            .collect();
        let path = self.tb.path().to_path_buf();
        self.tb
            .scalars(step, tensorboard::wall_time_now(), &scalars)
            .and_then(|()| self.tb.flush())
            .at(path)
    }
}

/// The TensorBoard tag of a [`METRIC_KEYS`] key: CleanRL's name where CleanRL logs the
/// same quantity (`ppo_atari_lstm.py`: `charts/learning_rate`, `charts/SPS`,
/// `charts/episodic_return`, `losses/value_loss`, ...), else the key under `charts/`,
/// `losses/` or `env/`; `None` for `global_step`, which is every scalar's step.
pub fn tensorboard_tag(key: &str) -> Option<&'static str> {
    Some(match key {
        "global_step" => return None,
        "update" => "charts/update",
        "charts/lr" => "charts/learning_rate",
        "charts/sps" => "charts/SPS",
        "charts/epochs" => "charts/update_epochs",
        "time/env_s" => "charts/env_s",
        "time/inference_s" => "charts/inference_s",
        "time/learn_s" => "charts/learn_s",
        "losses/policy" => "losses/policy_loss",
        "losses/value" => "losses/value_loss",
        "losses/entropy" => "losses/entropy",
        "losses/approx_kl" => "losses/approx_kl",
        "losses/old_approx_kl" => "losses/old_approx_kl",
        "losses/clipfrac" => "losses/clipfrac",
        "losses/explained_variance" => "losses/explained_variance",
        "losses/grad_norm" => "losses/grad_norm",
        "charts/episodes" => "charts/episodes",
        "charts/episode_return" => "charts/episodic_return",
        "charts/episode_length" => "charts/episodic_length",
        "trading/pnl" => "env/pnl",
        "trading/trades" => "env/trades",
        "trading/turnover" => "env/turnover",
        "trading/win_rate" => "env/win_rate",
        _ => return None,
    })
}

/// Keeps only the log records of updates up to `update` (a resume from that checkpoint
/// redoes the later ones).
fn truncate_logs(dir: &Path, update: u64) -> Result<()> {
    let jp = dir.join(METRICS_JSONL);
    if let Ok(text) = std::fs::read_to_string(&jp) {
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .ok()
                    .and_then(|v| v.get("update").and_then(|u| u.as_f64()))
                    .is_some_and(|u| u as u64 <= update)
            })
            .collect();
        let mut body = kept.join("\n");
        if !body.is_empty() {
            body.push('\n');
        }
        write_atomic(&jp, body.as_bytes())?;
    }
    let cp = dir.join(METRICS_CSV);
    if let Ok(text) = std::fs::read_to_string(&cp) {
        let mut lines = text.lines();
        let mut body = String::new();
        if let Some(h) = lines.next() {
            body.push_str(h);
            body.push('\n');
        }
        for l in lines {
            let u: Option<f64> = l.split(',').next().and_then(|x| x.parse().ok());
            if u.is_some_and(|u| u as u64 <= update) {
                body.push_str(l);
                body.push('\n');
            }
        }
        write_atomic(&cp, body.as_bytes())?;
    }
    Ok(())
}

fn check_new_run_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        let busy = std::fs::read_dir(dir).at(dir)?.next().is_some();
        if busy {
            return Err(Error::Usage(format!(
                "run dir {} already exists and is not empty: continue it with --resume {}, or pick another --run-dir",
                dir.display(),
                dir.display()
            )));
        }
    }
    Ok(())
}

fn prepare_new_run_dir(dir: &Path) -> Result<()> {
    check_new_run_dir(dir)?;
    std::fs::create_dir_all(dir.join(CHECKPOINTS)).at(dir)?;
    Ok(())
}

/// The newest complete checkpoint of a run dir.
pub fn latest_checkpoint(dir: &Path) -> Result<PathBuf> {
    let latest = dir.join(CHECKPOINTS).join(LATEST);
    let name = std::fs::read_to_string(&latest).map_err(|_| {
        Error::Usage(format!(
            "{} has no checkpoint to resume from (no {}): start a new run with --run-dir",
            dir.display(),
            latest.display()
        ))
    })?;
    let path = dir.join(CHECKPOINTS).join(name.trim());
    if !path.join("state.json").is_file() {
        return Err(Error::input(
            &latest,
            format!(
                "names checkpoint {} which is missing or incomplete",
                path.display()
            ),
        ));
    }
    Ok(path)
}

/// The cache a run trained on (as its latest checkpoint records it).
pub fn run_cache(dir: &Path) -> Result<Option<PathBuf>> {
    let ckpt = latest_checkpoint(dir)?;
    Ok(read_state(&ckpt.join("state.json"))?.cache)
}

fn read_state(path: &Path) -> Result<CkptState> {
    let text = std::fs::read_to_string(path).at(path)?;
    serde_json::from_str(&text)
        .map_err(|e| Error::input(path, format!("unreadable checkpoint state: {e}")))
}

fn check_compatible(s: &CkptState, resolved: &Resolved) -> Result<()> {
    let version = env!("CARGO_PKG_VERSION");
    if s.version != version {
        return Err(Error::Usage(format!(
            "the checkpoint was written by sim-train {}, this is {version}: resume it with that version",
            s.version
        )));
    }
    let hash = config_hash(resolved);
    if s.config_hash != hash {
        return Err(Error::Usage(format!(
            "the checkpoint's config (hash {}) differs from this config (hash {hash}): --resume uses the run dir's {RESOLVED_FILE} as is; start a new run to change settings",
            s.config_hash
        )));
    }
    Ok(())
}

fn save_checkpoint(
    dir: &Path,
    ppo: &Ppo,
    env: &mut dyn VecEnv,
    at: &Counters,
    hash: &str,
    data: &DataPaths,
    keep: usize,
) -> Result<PathBuf> {
    let root = dir.join(CHECKPOINTS);
    std::fs::create_dir_all(&root).at(&root)?;
    let name = checkpoint_name(at.update);
    let final_dir = root.join(&name);
    let tmp = root.join(format!(".{name}.tmp"));
    let result = (|| -> Result<()> {
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).at(&tmp)?;
        }
        std::fs::create_dir_all(&tmp).at(&tmp)?;
        let mut named: Vec<(String, Tensor)> = Vec::new();
        for (k, (n, p)) in ppo.adam.params.iter().enumerate() {
            named.push((format!("param/{n}"), p.shallow_clone()));
            named.push((format!("adam_m/{n}"), ppo.adam.m[k].shallow_clone()));
            named.push((format!("adam_v/{n}"), ppo.adam.v[k].shallow_clone()));
        }
        named.push(("lstm/h".into(), ppo.state.h.shallow_clone()));
        named.push(("lstm/c".into(), ppo.state.c.shallow_clone()));
        named.push(("next/obs".into(), Tensor::from_slice(&ppo.next_obs)));
        if let Some(norm) = &ppo.obs_norm {
            named.push(("obs_norm/mean".into(), Tensor::from_slice(&norm.mean)));
            named.push(("obs_norm/var".into(), Tensor::from_slice(&norm.var)));
            named.push(("obs_norm/count".into(), Tensor::from_slice(&[norm.count])));
        }
        named.push(("next/first".into(), Tensor::from_slice(&ppo.next_first)));
        let tp = tmp.join("tensors.ot");
        Tensor::save_multi(&named, &tp)
            .map_err(|e| Error::io(&tp, std::io::Error::other(e.to_string())))?;
        write_file_synced(&tmp.join("envs.bin"), &env.save_state()?)?;
        let state = CkptState {
            version: env!("CARGO_PKG_VERSION").into(),
            config_hash: hash.into(),
            cache: data.cache.clone(),
            index: data.index.clone(),
            update: at.update,
            global_step: at.global_step,
            episodes: at.episodes,
            adam_step: ppo.adam.step,
            rng_seed: ppo.cfg.seed,
            rng_word_pos: ppo.rng.get_word_pos().to_string(),
        };
        write_file_synced(
            &tmp.join("state.json"),
            &serde_json::to_vec_pretty(&state).expect("a plain struct serializes"),
        )?;
        if let Ok(f) = std::fs::File::open(&tp) {
            f.sync_all().at(&tp)?;
        }
        sync_dir(&tmp);
        if final_dir.exists() {
            std::fs::remove_dir_all(&final_dir).at(&final_dir)?;
        }
        std::fs::rename(&tmp, &final_dir).at(&final_dir)?;
        sync_dir(&root);
        write_atomic(&root.join(LATEST), name.as_bytes())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    prune_checkpoints(&root, keep);
    Ok(final_dir)
}

/// The folder name of the checkpoint after update `update`.
fn checkpoint_name(update: u64) -> String {
    format!("update-{update:08}")
}

fn write_file_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = std::fs::File::create(path).at(path)?;
    f.write_all(bytes).at(path)?;
    f.sync_all().at(path)
}

/// Removes all but the newest `keep` checkpoints (best effort).
fn prune_checkpoints(root: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("update-"))
        .collect();
    names.sort();
    let drop = names.len().saturating_sub(keep);
    for n in &names[..drop] {
        let _ = std::fs::remove_dir_all(root.join(n));
    }
}

/// Reads a checkpoint's observation statistics into `norm`.
fn read_obs_norm(
    map: &std::collections::HashMap<String, Tensor>,
    norm: &mut super::normalize::ObsNorm,
    bad: &dyn Fn(String) -> Error,
) -> Result<()> {
    let read = |k: &str, dst: &mut Vec<f64>| -> Result<()> {
        let t = map
            .get(k)
            .ok_or_else(|| bad(format!("has no tensor {k}: not a checkpoint of this run")))?;
        if t.numel() != dst.len() || t.kind() != tch::Kind::Double {
            return Err(bad(format!(
                "tensor {k} does not match the observation size"
            )));
        }
        let len = dst.len();
        t.copy_data(dst, len);
        Ok(())
    };
    read("obs_norm/mean", &mut norm.mean)?;
    read("obs_norm/var", &mut norm.var)?;
    let mut count = vec![0.0];
    read("obs_norm/count", &mut count)?;
    norm.count = count[0];
    Ok(())
}

/// Starts `ppo` from the policy weights and observation statistics of checkpoint `ckpt`
/// (of a run with the same network shape).
fn warm_start(ckpt: &Path, ppo: &mut Ppo) -> Result<()> {
    let tp = ckpt.join("tensors.ot");
    let bad = |what: String| Error::input(&tp, format!("{what} (warm start)"));
    let loaded = Tensor::load_multi(&tp).map_err(|e| bad(format!("unreadable: {e}")))?;
    let map: std::collections::HashMap<String, Tensor> = loaded.into_iter().collect();
    ppo.policy.load_parameters(&map, "param/").map_err(&bad)?;
    if let Some(norm) = &mut ppo.obs_norm {
        read_obs_norm(&map, norm, &bad)?;
    }
    ppo.host_changed();
    Ok(())
}

fn restore(ckpt: &Path, s: &CkptState, ppo: &mut Ppo, env: &mut dyn VecEnv) -> Result<()> {
    let tp = ckpt.join("tensors.ot");
    let bad = |what: String| Error::input(&tp, what);
    let loaded = Tensor::load_multi(&tp).map_err(|e| bad(format!("unreadable: {e}")))?;
    let map: std::collections::HashMap<String, Tensor> = loaded.into_iter().collect();
    let get = |k: &str| {
        map.get(k)
            .ok_or_else(|| bad(format!("has no tensor {k}: not a checkpoint of this run")))
    };
    let dev = ppo.policy.device();
    ppo.policy.load_parameters(&map, "param/").map_err(bad)?;
    tch::no_grad(|| -> Result<()> {
        for (k, (n, _)) in ppo.adam.params.iter().enumerate() {
            ppo.adam.m[k].copy_(get(&format!("adam_m/{n}"))?);
            ppo.adam.v[k].copy_(get(&format!("adam_v/{n}"))?);
        }
        Ok(())
    })?;
    ppo.adam.step = s.adam_step;
    ppo.state = LstmState {
        h: get("lstm/h")?.to_device(dev),
        c: get("lstm/c")?.to_device(dev),
    };
    let copy_host = |k: &str, dst: &mut Vec<f32>| -> Result<()> {
        let t = get(k)?;
        if t.numel() != dst.len() {
            return Err(bad(format!(
                "tensor {k} has {} values, expected {}",
                t.numel(),
                dst.len()
            )));
        }
        let len = dst.len();
        t.copy_data(dst, len);
        Ok(())
    };
    copy_host("next/obs", &mut ppo.next_obs)?;
    if let Some(norm) = &mut ppo.obs_norm {
        read_obs_norm(&map, norm, &bad)?;
    }
    copy_host("next/first", &mut ppo.next_first)?;
    ppo.host_changed();
    let pos: u128 = s
        .rng_word_pos
        .parse()
        .map_err(|_| Error::input(ckpt.join("state.json"), "bad rng_word_pos"))?;
    ppo.rng.set_word_pos(pos);
    let ep = ckpt.join("envs.bin");
    let bytes = std::fs::read(&ep).at(&ep)?;
    env.load_state(&bytes)
}
