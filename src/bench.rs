//! `sim-train bench cache|env|train|sweep|live`: throughput of the data layer, of the
//! environments, of the learner and of walk-forward sweeps, and the live loop's latency.
//! `bench train` and `bench sweep` train, so they are built with the `torch` feature only.
//!
//! `bench cache`, end to end on synthetic data:
//! - `build_bars_per_s`: bars per second through `cache build --source synth` (generation,
//!   validation, features, atomic writes with fsync), all cores;
//! - `scan_gb_per_s` vs `memcpy_gb_per_s`: summing every feature column of every cached
//!   day straight from the mmap, against a plain `memcpy` of the same number of bytes, in
//!   the same run (best of `bench.scan_repeats` passes each, single thread);
//! - `lookup_ns`: one clock-time → row lookup at a random time of a random day.
//!
//! `bench env`: N environments of a backend stepped S times with uniformly random actions
//! (drawn before timing) over cached or synthetic days, observations written into
//! caller-owned buffers, auto-resets included: `env_steps_per_s`, and the bytes of state,
//! market data, actions and outputs one env-step touches (`bytes_per_step`), which bounds
//! the rate by memory bandwidth. On the GPU backends (`--backend cuda|wgpu`) the outputs
//! stay in device memory (as for a GPU learner), the actions are uploaded each step, and
//! the time runs from the first launch until the device has finished the last step;
//! `device` names the GPU and its API.
//!
//! `bench train`: PPO-LSTM updates (`[train]` sizes, the request's envs and T) on the
//! market environments of a backend over cached or synthetic days, one warm-up update then
//! the timed ones: `train_steps_per_s` end to end and the env / inference / learn seconds
//! per update; `zero_copy` says whether the learner stepped CUDA environments in place
//! (`--device cuda --backend cuda`). The time ends when the device has finished.

use crate::bars::BarSize;
use crate::build::{BuildRequest, build_cache};
use crate::cache::{DayCache, list_day_files};
use crate::config::Resolved;
use crate::error::{Error, Result};
use crate::features::N_FEATURES;
use crate::ingest::SourceKind;
use serde::Serialize;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub os: String,
}

impl Machine {
    pub fn detect() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|s| s.trim().to_string())
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            os: std::env::consts::OS.to_string(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct CacheBench {
    pub bench: &'static str,
    pub backend: &'static str,
    pub machine: Machine,
    pub symbols: usize,
    pub days: usize,
    pub bar: String,
    pub symbol_days: usize,
    pub bars: u64,
    pub cache_bytes: u64,
    pub build_s: f64,
    pub build_bars_per_s: f64,
    pub build_mb_per_s: f64,
    pub scan_bytes: u64,
    pub scan_gb_per_s: f64,
    pub memcpy_gb_per_s: f64,
    pub scan_over_memcpy: f64,
    pub lookups: usize,
    pub lookup_ns: f64,
    pub date: String,
}

/// Runs the cache benchmark with `symbols` × `days` synthetic `bar` bars in `dir`
/// (a temporary folder when None).
pub fn bench_cache(
    resolved: &Resolved,
    symbols: usize,
    days: usize,
    bar: BarSize,
    dir: Option<PathBuf>,
) -> Result<CacheBench> {
    let cfg = &resolved.config.bench;
    let tmp;
    let root = match dir {
        Some(d) => d,
        None => {
            tmp = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
            tmp.path().to_path_buf()
        }
    };
    let (cache_dir, built) = build_synthetic(resolved, symbols, days, bar, &root)?;

    // Open (and verify) every day once; the passes below then read warm mappings.
    let files = list_day_files(&cache_dir)?;
    let caches: Vec<DayCache> = files
        .iter()
        .map(DayCache::open)
        .collect::<std::result::Result<_, _>>()?;
    let scan_bytes: u64 = caches
        .iter()
        .map(|c| (c.rows() * N_FEATURES * 4) as u64)
        .sum();

    let mut best_scan = f64::INFINITY;
    for _ in 0..cfg.scan_repeats {
        let t = Instant::now();
        let mut acc = 0f32;
        for c in &caches {
            for k in 0..N_FEATURES {
                acc += sum_f32(black_box(c.feature(k)));
            }
        }
        black_box(acc);
        best_scan = best_scan.min(t.elapsed().as_secs_f64());
    }

    let src = vec![1u8; scan_bytes as usize];
    let mut dst = vec![0u8; scan_bytes as usize];
    let mut best_copy = f64::INFINITY;
    for _ in 0..cfg.scan_repeats {
        let t = Instant::now();
        dst.copy_from_slice(black_box(&src));
        black_box(&mut dst);
        best_copy = best_copy.min(t.elapsed().as_secs_f64());
    }

    // Random lookups: a small xorshift so the generator costs little next to the lookup.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let clocks: Vec<_> = caches.iter().map(|c| c.clock()).collect();
    let t = Instant::now();
    let mut hits = 0u64;
    for _ in 0..cfg.lookups {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let c = &clocks[(x % clocks.len() as u64) as usize];
        let span = (c.spec.n_slots * c.spec.slot_secs) as u64;
        let sec = c.spec.first_slot_sec as i64 + ((x >> 32) % span) as i64;
        hits += black_box(c.latest_at_or_before(sec)).map_or(0, |r| r as u64 & 1);
    }
    let lookup_ns = t.elapsed().as_secs_f64() * 1e9 / cfg.lookups as f64;
    black_box(hits);

    let gb = |bytes: u64, s: f64| bytes as f64 / s / 1e9;
    Ok(CacheBench {
        bench: "cache",
        backend: "cpu",
        machine: Machine::detect(),
        symbols,
        days,
        bar: bar.to_string(),
        symbol_days: built.days_written,
        bars: built.bars_written,
        cache_bytes: built.bytes_written,
        build_s: built.elapsed_s,
        build_bars_per_s: built.bars_per_s,
        build_mb_per_s: built.bytes_written as f64 / built.elapsed_s / 1e6,
        scan_bytes,
        scan_gb_per_s: gb(scan_bytes, best_scan),
        memcpy_gb_per_s: gb(scan_bytes, best_copy),
        scan_over_memcpy: best_copy / best_scan,
        lookups: cfg.lookups,
        lookup_ns,
        date: chrono::Local::now().format("%Y-%m-%d").to_string(),
    })
}

/// Builds `symbols` × `days` synthetic `bar` days into `<root>/bench-cache` (replacing
/// an earlier one).
pub fn build_synthetic(
    resolved: &Resolved,
    symbols: usize,
    days: usize,
    bar: BarSize,
    root: &std::path::Path,
) -> Result<(PathBuf, crate::build::BuildSummary)> {
    let cache_dir = root.join("bench-cache");
    if cache_dir.exists() {
        std::fs::remove_dir_all(&cache_dir).map_err(|e| Error::io(&cache_dir, e))?;
    }
    let mut r = resolved.clone();
    r.config.synth.symbols = symbols;
    r.config.synth.days = days;
    r.config.synth.bar = bar;
    let req = BuildRequest {
        source: SourceKind::Synth,
        input: None,
        cache_dir: cache_dir.clone(),
        symbols: None,
        from: None,
        to: None,
        bar,
        adjust: crate::adjust::AdjustMode::None,
    };
    let built = build_cache(&req, &r, false)?;
    Ok((cache_dir, built))
}

/// What `bench env` runs.
#[derive(Clone, Debug)]
pub struct EnvBenchRequest {
    pub backend: crate::env::Backend,
    pub envs: usize,
    pub steps: usize,
    /// Feature columns in the observation (the first K of feature set v2); None = as
    /// configured.
    pub obs_features: Option<usize>,
    /// A cache to step over; None = a synthetic one (`bench.symbols` × `bench.days` of
    /// `bench.bar`) built in a temporary folder.
    pub cache: Option<PathBuf>,
    /// Instruction set of the CPU step; None = the widest this CPU runs.
    pub simd: Option<crate::env::Simd>,
}

#[derive(Clone, Debug, Serialize)]
pub struct EnvBench {
    pub bench: &'static str,
    pub backend: crate::env::Backend,
    pub machine: Machine,
    /// The device that stepped the environments: the CPU, or the GPU and its API.
    pub device: String,
    /// Instruction set of the CPU step (None on a GPU backend).
    pub simd: Option<crate::env::Simd>,
    pub threads: usize,
    pub envs: usize,
    pub steps: usize,
    pub obs_dim: usize,
    pub obs_features: usize,
    /// Symbol-days in the universe, and those drawn among at once (`preload.resident_days`;
    /// a larger universe is loaded day-major as its day window reaches them).
    pub days: usize,
    pub resident_days: usize,
    pub bars: u64,
    pub data: String,
    pub episodes: u64,
    /// What the background day loader did over the run, warm-up included (day-major
    /// universes): days handed out, waits for a day still loading, loads and their time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preload: Option<crate::env::preload::PreloadStats>,
    /// The process's peak resident memory, MiB (`getrusage`), where the system reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_rss_mb: Option<f64>,
    pub elapsed_s: f64,
    pub env_steps_per_s: f64,
    pub ns_per_env_step: f64,
    pub bytes_per_step: usize,
    pub gb_per_s: f64,
    /// GPU backends, over the timed steps (counted by the engine around its device,
    /// `env::gpu::Meter`): host time per batch step in the step calls, waits for the
    /// device per batch step, bytes uploaded per batch step and per env-step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_us_per_step: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syncs_per_step: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub h2d_bytes_per_step: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub h2d_bytes_per_env_step: Option<f64>,
    pub date: String,
}

/// `steps` vectors of `n` actions drawn uniformly from `0..n_actions` (xorshift64,
/// seeded): random actions for benchmarks, drawn before timing.
pub fn random_actions(n: usize, steps: usize, n_actions: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut x = seed.max(1);
    (0..steps)
        .map(|_| {
            (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    ((x >> 32) % n_actions as u64) as u8
                })
                .collect()
        })
        .collect()
}

/// Distinct random action vectors `bench env` cycles through.
const ACTION_POOL: usize = 61;

/// Runs `bench env`.
pub fn bench_env(resolved: &Resolved, req: &EnvBenchRequest) -> Result<EnvBench> {
    use crate::env::{Buffers, CpuEnvs, DaySelection, EnvOptions, EnvParams, Envs, StartTimes};
    if req.envs == 0 || req.steps == 0 {
        return Err(Error::Usage("--envs and --steps must be at least 1".into()));
    }
    if req.simd.is_some() && req.backend.gpu().is_some() {
        return Err(Error::Usage(
            "--simd picks the CPU step's instruction set: use it with --backend cpu".into(),
        ));
    }
    if let Some(simd) = req.simd {
        simd.require()?; // before the synthetic days are built
    }
    let mut env_cfg = resolved.config.env.clone();
    if let Some(k) = req.obs_features {
        if k > N_FEATURES {
            return Err(Error::Usage(format!(
                "--obs-features {k}: feature set v2 has {N_FEATURES} columns"
            )));
        }
        env_cfg.features = crate::features::FEATURE_NAMES[..k]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if k == 0 {
            return Err(Error::Usage("--obs-features must be at least 1".into()));
        }
    }
    let params = std::sync::Arc::new(EnvParams::from_config(&env_cfg).map_err(Error::Config)?);
    // The environments and the pool of random actions, before anything is built.
    crate::util::mem::check(
        &format!("--envs {}", req.envs),
        crate::util::mem::product(&[req.envs], CpuEnvs::bytes_per_env(&params) + ACTION_POOL),
        "lower --envs",
    )?;
    let tmp;
    let (cache_dir, data) = match &req.cache {
        Some(c) => (c.clone(), c.display().to_string()),
        None => {
            tmp = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
            let b = &resolved.config.bench;
            let (dir, _) = build_synthetic(resolved, b.symbols, b.days, b.bar, tmp.path())?;
            (
                dir,
                format!(
                    "synthetic {} symbols × {} days of {} bars",
                    b.symbols, b.days, b.bar
                ),
            )
        }
    };
    // Episodes start every half hour of the session, so envs spread over the day.
    let starts: Vec<u32> = (0..13).map(|i| 34_200 + i * 1_800).collect();
    let preload = &resolved.config.preload;
    let universe = StartTimes::over_cache(
        &cache_dir,
        &DaySelection::default(),
        &params,
        &starts,
        resolved.config.env.seed,
        preload,
    )?;
    let (days, bars) = (universe.days, universe.bars);
    let resident_days = days.min(preload.resident_days);
    let n = req.envs;
    // Uniformly random actions, drawn before timing: a pool of distinct per-step action
    // vectors (a prime count, so no env sees a cycle aligned with its episodes), used in
    // turn. Drawing them inside the loop would time a single-threaded RNG, not the envs.
    let pool = random_actions(n, ACTION_POOL, params.actions.len(), 0x2545_F491_4F6C_DD1D);
    let warmup = req.steps.div_ceil(20).min(200);
    let machine = Machine::detect();
    // One code path for every backend (`Envs`): outputs stay where a learner on that
    // engine reads them (host buffers on the CPU, device memory on a GPU, where only the
    // actions go up each step, n bytes). The loop runs on a pool thread, as a trainer
    // calls `step`: from outside the pool every CPU step would be a cross-thread hand-off
    // and wake-up. The time runs until the device has finished the last step.
    let mut envs = Envs::open(
        req.backend,
        params.clone(),
        n,
        Box::new(universe.source),
        EnvOptions {
            simd: req.simd,
            window_episodes: Some(preload.window_episodes),
            ..Default::default()
        },
    )?;
    let mut buf = Buffers::new(n, params.obs_dim());
    let mut k = 0;
    // The device meter covers the timed steps only, up to the last submission (the
    // final wait belongs to the measurement, not to stepping).
    let mut meter = None;
    let mut run = |steps: usize, envs: &mut Envs, meter: &mut Option<_>| -> Result<()> {
        envs.reset_meter();
        for _ in 0..steps {
            envs.step_resident(&pool[k % ACTION_POOL], &mut buf.out())?;
            k += 1;
            black_box(&buf.obs);
        }
        *meter = envs.meter();
        envs.sync()
    };
    let elapsed = rayon::scope(|_| -> Result<f64> {
        run(warmup, &mut envs, &mut meter)?; // pages, caches, threads, device warm-up
        let t = Instant::now();
        run(req.steps, &mut envs, &mut meter)?;
        Ok(t.elapsed().as_secs_f64())
    })?;
    envs.drain_finished()?;
    let (episodes, bytes, simd) = (envs.episodes(), envs.bytes_per_step(), envs.simd());
    let device = match simd {
        Some(simd) => format!(
            "{} ({} threads, {})",
            machine.cpu,
            rayon::current_num_threads(),
            simd.name()
        ),
        None => envs.describe(),
    };
    let rate = (n * req.steps) as f64 / elapsed;
    Ok(EnvBench {
        bench: "env",
        backend: req.backend,
        machine,
        device,
        simd,
        threads: rayon::current_num_threads(),
        envs: n,
        steps: req.steps,
        obs_dim: params.obs_dim(),
        obs_features: params.feature_cols.len(),
        days,
        resident_days,
        bars,
        data,
        episodes,
        preload: envs.preload_stats(),
        peak_rss_mb: peak_rss_mb(),
        elapsed_s: elapsed,
        env_steps_per_s: rate,
        ns_per_env_step: 1e9 / rate,
        bytes_per_step: bytes,
        gb_per_s: rate * bytes as f64 / 1e9,
        host_us_per_step: meter.map(|m| m.host_ns as f64 / 1e3 / m.steps.max(1) as f64),
        syncs_per_step: meter.map(|m| m.syncs as f64 / m.steps.max(1) as f64),
        h2d_bytes_per_step: meter.map(|m| m.h2d_bytes as f64 / m.steps.max(1) as f64),
        h2d_bytes_per_env_step: meter
            .map(|m| m.h2d_bytes as f64 / (m.steps.max(1) as f64 * n as f64)),
        date: chrono::Local::now().format("%Y-%m-%d").to_string(),
    })
}

/// The process's peak resident set so far, MiB (Linux reports `ru_maxrss` in KiB).
pub fn peak_rss_mb() -> Option<f64> {
    #[cfg(target_os = "linux")]
    {
        let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: getrusage writes the struct it is given; RUSAGE_SELF is always valid.
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr()) } == 0 {
            // SAFETY: initialised by the successful call above.
            return Some(unsafe { u.assume_init() }.ru_maxrss as f64 / 1024.0);
        }
    }
    None
}

/// Sums a column with 16 independent lanes so the compiler vectorizes the loop (a single
/// accumulator would serialize on floating-point addition latency).
pub fn sum_f32(xs: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let chunks = xs.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        for (l, v) in lanes.iter_mut().zip(c) {
            *l += v;
        }
    }
    lanes.iter().sum::<f32>() + rest.iter().sum::<f32>()
}

/// What `bench train` measures.
#[cfg(feature = "torch")]
#[derive(Clone, Debug)]
pub struct TrainBenchRequest {
    pub device: crate::learn::DeviceChoice,
    /// Engine stepping the environments.
    pub backend: crate::env::Backend,
    pub envs: usize,
    pub rollout_steps: usize,
    /// Updates timed (after one untimed warm-up update).
    pub updates: usize,
    pub cache: Option<PathBuf>,
}

#[cfg(feature = "torch")]
#[derive(Clone, Debug, Serialize)]
pub struct TrainBench {
    pub bench: &'static str,
    /// The learner's device.
    pub device: String,
    pub backend: crate::env::Backend,
    /// Where the environments ran (the GPU and its API for the GPU backends), and
    /// whether the learner stepped them in place on its device (zero-copy).
    pub env_device: String,
    pub zero_copy: bool,
    pub machine: Machine,
    pub threads: usize,
    pub envs: usize,
    pub rollout_steps: usize,
    pub hidden: usize,
    pub encoder: Vec<usize>,
    /// The LSTM's number format (`train.precision`).
    pub precision: crate::learn::Precision,
    pub epochs: usize,
    pub minibatches: usize,
    pub obs_dim: usize,
    pub data: String,
    pub updates: usize,
    /// Environment steps learned from per second, end to end (rollout + update).
    pub train_steps_per_s: f64,
    /// Seconds per update stepping environments, in the policy during rollouts, learning.
    pub env_s: f64,
    pub inference_s: f64,
    pub learn_s: f64,
    pub update_s: f64,
    /// Reads of the learner's tensors to the host per update, counted in the learner
    /// (`Ppo`): each is a wait for the device on a GPU. One per rollout (its episode-start
    /// flags), one per update (its statistics), one per epoch but the last with
    /// `train.target_kl` > 0. Host environments also read each step's actions (not
    /// counted: they step on the host).
    pub syncs_per_update: f64,
    /// The process's peak resident memory, MiB (`getrusage`), where the system reports it:
    /// over a universe larger than `preload.resident_days` it follows the day window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_rss_mb: Option<f64>,
    pub date: String,
}

/// `bench train`: PPO-LSTM updates on the market environments (train.* config, with the
/// request's sizes), one warm-up update, then `updates` timed ones.
#[cfg(feature = "torch")]
pub fn bench_train(resolved: &Resolved, req: &TrainBenchRequest) -> Result<TrainBench> {
    use crate::learn::policy::{Policy, PolicyShape};
    use crate::learn::ppo::Ppo;
    use crate::learn::run::{build_envs, pick_device};
    use tch::Device;
    if req.envs == 0 || req.rollout_steps == 0 || req.updates == 0 {
        return Err(Error::Usage(
            "--envs, --steps and --updates must be at least 1".into(),
        ));
    }
    let mut r = resolved.clone();
    let t = &mut r.config.train;
    t.env = crate::learn::TrainEnv::Market;
    t.device = req.device;
    t.backend = req.backend;
    t.num_envs = req.envs;
    t.rollout_steps = req.rollout_steps;
    t.validate().map_err(Error::Config)?;
    let device = pick_device(t.device)?;
    let threads = if t.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        t.threads
    };
    tch::set_num_threads(threads as i32);
    let tmp;
    let (cache, data) = match &req.cache {
        Some(c) => (c.clone(), c.display().to_string()),
        None => {
            tmp = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
            let b = &resolved.config.bench;
            let (dir, _) = build_synthetic(resolved, b.symbols, b.days, b.bar, tmp.path())?;
            let data = format!(
                "synthetic {} symbols × {} days of {} bars",
                b.symbols, b.days, b.bar
            );
            (dir, data)
        }
    };
    let cfg = r.config.train.clone();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Usage(format!("cannot start {threads} threads: {e}")))?;
    let mut env = build_envs(&r, Some(&cache), None, device)?;
    let shape = PolicyShape {
        obs_dim: env.obs_dim(),
        n_actions: env.num_actions(),
        encoder: cfg.encoder.clone(),
        hidden: cfg.hidden,
    };
    let obs_dim = shape.obs_dim;
    let zero_copy = env.on_device().is_some();
    let env_device = env.describe();
    shape.check_memory()?;
    let mut ppo = Ppo::new(&cfg, env.as_mut(), Policy::new(shape, device, cfg.seed))?;
    let (mut env_s, mut inf_s, mut learn_s) = (0.0, 0.0, 0.0);
    let mut drained = Vec::new();
    let elapsed = pool.install(|| -> Result<f64> {
        let mut start = Instant::now();
        for u in 0..=req.updates {
            if u == 1 {
                start = Instant::now();
                (env_s, inf_s, learn_s) = (0.0, 0.0, 0.0);
                ppo.take_syncs();
            }
            let (e, i) = ppo.rollout(env.as_mut())?;
            let s = ppo.update(cfg.learning_rate);
            env.drain_episodes(&mut drained)?;
            drained.clear();
            env_s += e;
            inf_s += i;
            learn_s += s.learn_s;
        }
        // The update reads its losses back, so the device is idle here; say so anyway.
        if let Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
        Ok(start.elapsed().as_secs_f64())
    })?;
    let u = req.updates as f64;
    let steps = (req.envs * req.rollout_steps) as f64 * u;
    let syncs_per_update = ppo.take_syncs() as f64 / u;
    Ok(TrainBench {
        bench: "train",
        device: format!("{device:?}").to_lowercase(),
        backend: req.backend,
        env_device,
        zero_copy,
        machine: Machine::detect(),
        threads,
        envs: req.envs,
        rollout_steps: req.rollout_steps,
        hidden: cfg.hidden,
        encoder: cfg.encoder.clone(),
        precision: cfg.precision,
        epochs: cfg.epochs,
        minibatches: cfg.minibatches,
        obs_dim,
        data,
        updates: req.updates,
        train_steps_per_s: steps / elapsed,
        env_s: env_s / u,
        inference_s: inf_s / u,
        learn_s: learn_s / u,
        update_s: elapsed / u,
        syncs_per_update,
        peak_rss_mb: peak_rss_mb(),
        date: chrono::Utc::now().format("%Y-%m-%d").to_string(),
    })
}

/// What `bench sweep` runs.
#[cfg(feature = "torch")]
#[derive(Clone, Debug)]
pub struct SweepBenchRequest {
    pub symbols: usize,
    pub days: usize,
    pub bar: BarSize,
    /// Seeds (trials) per fold.
    pub seeds: usize,
    /// Environment steps each unit trains for (`train.total_steps`).
    pub unit_steps: u64,
}

/// `bench sweep`: a whole walk-forward sweep (plan, every unit trained and evaluated
/// against the baselines, merge) over a synthetic universe.
#[cfg(feature = "torch")]
#[derive(Clone, Debug, Serialize)]
pub struct SweepBench {
    pub bench: &'static str,
    pub machine: Machine,
    pub data: String,
    pub folds: usize,
    pub seeds: usize,
    pub units: usize,
    pub train_days: usize,
    pub test_days: usize,
    pub unit_steps: u64,
    pub envs: usize,
    pub threads: usize,
    /// Units per hour, end to end (plan + units + merge, one process).
    pub units_per_hour: f64,
    /// Mean seconds per unit training and evaluating.
    pub train_s_per_unit: f64,
    pub eval_s_per_unit: f64,
    pub merge_s: f64,
    pub wall_s: f64,
    pub date: String,
}

/// Runs the sweep of `req` in a temporary folder: 10 training days, 5 test days, purge
/// and embargo of 1 day, one config, `req.seeds` seeds; the rest of `[train]` as
/// configured.
#[cfg(feature = "torch")]
pub fn bench_sweep(resolved: &Resolved, req: &SweepBenchRequest) -> Result<SweepBench> {
    use crate::walkforward as wf;
    if req.seeds == 0 || req.unit_steps == 0 {
        return Err(Error::Usage(
            "--seeds and --unit-steps must be at least 1".into(),
        ));
    }
    let (train_days, test_days) = (10, 5);
    if req.days < train_days + 1 + test_days {
        return Err(Error::Usage(format!(
            "--days {}: a sweep of {train_days} training + 1 purge + {test_days} test days needs at least {}",
            req.days,
            train_days + 1 + test_days
        )));
    }
    let tmp = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let (cache, _) = build_synthetic(resolved, req.symbols, req.days, req.bar, tmp.path())?;
    let seeds: Vec<String> = (1..=req.seeds).map(|s| s.to_string()).collect();
    let r = resolved.with_sets(&[
        format!("train.total_steps={}", req.unit_steps),
        format!("walkforward.train_days={train_days}"),
        format!("walkforward.test_days={test_days}"),
        "walkforward.purge_days=1".into(),
        "walkforward.embargo_days=1".into(),
        "walkforward.step_days=0".into(),
        "walkforward.window=\"rolling\"".into(),
        "walkforward.warm_start=false".into(),
        "walkforward.use_index=false".into(),
        "walkforward.symbols=[]".into(),
        "walkforward.configs=[]".into(),
        format!("walkforward.seeds=[{}]", seeds.join(",")),
    ])?;
    let r = wf::sweep_config(&r, Some(&cache))?;
    let clock = Instant::now();
    let plan = wf::build_plan(&r)?;
    let dir = tmp.path().join("sweep");
    wf::write_plan(&dir, &plan, &r)?;
    for u in &plan.units {
        wf::run_unit(&dir, &plan, &r, u, false)?;
    }
    let merge_clock = Instant::now();
    let merged = wf::merge(&dir, &plan, &r)?;
    let merge_s = merge_clock.elapsed().as_secs_f64();
    let wall_s = clock.elapsed().as_secs_f64();
    let n = plan.units.len();
    let t = &r.config.train;
    Ok(SweepBench {
        bench: "sweep",
        machine: Machine::detect(),
        data: format!(
            "synthetic {} symbols × {} days of {} bars",
            req.symbols, req.days, req.bar
        ),
        folds: plan.folds.len(),
        seeds: req.seeds,
        units: n,
        train_days,
        test_days,
        unit_steps: req.unit_steps,
        envs: t.num_envs,
        threads: if t.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            t.threads
        },
        units_per_hour: n as f64 * 3600.0 / wall_s,
        train_s_per_unit: merged.timing.train_s / n as f64,
        eval_s_per_unit: merged.timing.eval_s / n as f64,
        merge_s,
        wall_s,
        date: chrono::Utc::now().format("%Y-%m-%d").to_string(),
    })
}

/// What `bench live` runs.
#[derive(Clone, Debug)]
pub struct LiveBenchRequest {
    pub symbols: usize,
    pub days: usize,
    pub bar: BarSize,
    /// fsync the journal once per bar.
    pub fsync: bool,
    /// Feed the bars as JSON lines through the stream path (parsing and features per
    /// bar) instead of replaying the cache.
    pub stream: bool,
}

/// `bench live`: decision latency of the live loop over a replay (feed → policy → risk →
/// order → paper fill → journal), one core.
#[derive(Clone, Debug, Serialize)]
pub struct LiveBench {
    pub bench: &'static str,
    pub machine: Machine,
    pub data: String,
    /// `replay` (cached bars and features) or `stream` (JSON lines parsed, features
    /// computed bar by bar).
    pub feed: &'static str,
    pub symbols: usize,
    pub fsync: bool,
    pub decisions: usize,
    pub journal_records: usize,
    /// Per decision, µs.
    pub decision_us: crate::util::stats::Percentiles,
    /// Per bar of every symbol, µs.
    pub bar_us: crate::util::stats::Percentiles,
    pub date: String,
}

/// Replays `req.days` synthetic days of `req.symbols` symbols through the live loop with
/// a freshly initialized policy (`train.encoder`, `train.hidden`, `train.seed`; the
/// initialization computed in plain Rust, so this needs no libtorch) exported as a
/// bundle, the `[live.risk]` limits and a journal in a temporary folder.
pub fn bench_live(resolved: &Resolved, req: &LiveBenchRequest) -> Result<LiveBench> {
    use crate::bundle::{Bundle, Provenance};
    use crate::learn::network::{PolicyShape, bundle_parts, fresh_parameters};
    if req.symbols == 0 || req.days == 0 {
        return Err(Error::Usage(
            "--symbols and --days must be at least 1".into(),
        ));
    }
    let tmp = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let (cache, _) = build_synthetic(resolved, req.symbols, req.days, req.bar, tmp.path())?;
    let params = crate::env::EnvParams::from_config(&resolved.config.env).map_err(Error::Config)?;
    let t = &resolved.config.train;
    let shape = PolicyShape {
        obs_dim: params.obs_dim(),
        n_actions: params.actions.len(),
        encoder: t.encoder.clone(),
        hidden: t.hidden,
    };
    let parameters = fresh_parameters(&shape, t.seed);
    let trained = Provenance {
        run_id: "bench".into(),
        run_dir: tmp.path().to_path_buf(),
        checkpoint: tmp.path().to_path_buf(),
        update: 0,
        global_step: 0,
        seed: t.seed,
    };
    let (manifest, tensors) = bundle_parts(
        &shape,
        parameters,
        None,
        &params,
        &resolved.config.env,
        trained,
    );
    let bundle = tmp.path().join("bundle");
    Bundle::write(&bundle, manifest, &tensors, &resolved.to_toml())?;
    let all = crate::env::DaySelection::default();
    let journal = tmp.path().join("journal.jsonl");
    let risk = resolved.config.live.risk.clone();
    let s = if req.stream {
        let lines = crate::live::stream::cache_lines(&cache, &all)?;
        crate::live::stream::run_lines(
            crate::live::stream::StreamRequest {
                bundle,
                symbols: crate::backtest::selected_symbols(&cache, &all)?,
                bar: req.bar,
                calendar: crate::build::calendar_from(resolved)?,
                journal,
                fsync: req.fsync,
                risk,
                watchdog: resolved.config.live.watchdog.clone(),
                controls: None,
                warmup: None,
            },
            lines,
        )?
    } else {
        crate::live::replay::replay(&crate::live::replay::ReplayRequest {
            bundle,
            cache,
            selection: all,
            journal,
            fsync: req.fsync,
            risk,
            watchdog: resolved.config.live.watchdog.clone(),
            pace: None,
            controls: None,
        })?
    };
    Ok(LiveBench {
        bench: "live",
        machine: Machine::detect(),
        data: format!(
            "synthetic {} symbols × {} days of {} bars",
            req.symbols, req.days, req.bar
        ),
        feed: if req.stream { "stream" } else { "replay" },
        symbols: req.symbols,
        fsync: req.fsync,
        decisions: s.decisions,
        journal_records: s.appended,
        decision_us: s.decision_us,
        bar_us: s.bar_us,
        date: chrono::Utc::now().format("%Y-%m-%d").to_string(),
    })
}
