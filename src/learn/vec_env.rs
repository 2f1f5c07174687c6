//! What the learner steps: a batch of environments writing into the learner's buffers.
//! The market backend ([`MarketEnvs`]) and the sanity tasks ([`super::sanity`]) implement
//! it, so the PPO loop never knows which one it trains on.

use crate::env::gpu::GpuEnvs;
use crate::env::{CpuEnvs, DayData, StepOut};
use crate::error::{Error, Result};
use chrono::NaiveDate;
use std::collections::HashMap;
use std::sync::Arc;

/// One finished episode, as the learner logs it.
#[derive(Clone, Debug, Default)]
pub struct EpisodeLog {
    /// Sum of rewards.
    pub reward: f64,
    pub length: u32,
    /// Market only: change in equity, fills, traded notional.
    pub pnl: f64,
    pub trades: u32,
    pub turnover: f64,
}

pub trait VecEnv: Send {
    fn num_envs(&self) -> usize;
    fn obs_dim(&self) -> usize;
    fn num_actions(&self) -> usize;
    /// Writes every environment's current observation.
    fn observe(&mut self, obs: &mut [f32]) -> Result<()>;
    /// One step of every environment; ended episodes auto-reset and their next
    /// episode's first observation is written.
    fn step(&mut self, actions: &[u8], out: &mut StepOut<'_>) -> Result<()>;
    /// `n × obs_dim`: the last observation of the environments truncated in the latest
    /// step (other rows are stale).
    fn final_obs(&self) -> &[f32];
    /// Moves the episodes finished since the last call into `into`.
    fn drain_episodes(&mut self, into: &mut Vec<EpisodeLog>) -> Result<()>;
    /// Everything that decides future steps (for checkpoints).
    fn save_state(&mut self) -> Result<Vec<u8>>;
    /// Restores [`VecEnv::save_state`] into environments built from the same config.
    fn load_state(&mut self, bytes: &[u8]) -> Result<()>;
    /// Where the environments run, e.g. "cpu" or "cuda: NVIDIA H100 …".
    fn describe(&self) -> String {
        "cpu".into()
    }
    /// The environments' buffers as tensors on the learner's device, when they live there
    /// (CUDA environments next to a CUDA learner): the learner then steps them through
    /// [`super::device_env::DeviceSteps`] without copying through host memory.
    #[cfg(feature = "torch")]
    fn on_device(&mut self) -> Option<&mut dyn super::device_env::DeviceSteps> {
        None
    }
}

/// The engine behind [`MarketEnvs`].
enum Engine {
    Cpu(Box<CpuEnvs>),
    Gpu(Box<GpuEngine>),
}

/// GPU environments stepped through host memory (and, for CUDA next to a CUDA learner,
/// in place: [`MarketEnvs::share_with`]).
struct GpuEngine {
    /// Tensors viewing the device buffers; declared before `envs`, so they are dropped
    /// before the memory they view.
    #[cfg(feature = "torch")]
    shared: Option<super::device_env::EnvViews>,
    envs: GpuEnvs,
    /// The latest step's final observations (read back only after a truncation).
    final_obs: Vec<f32>,
}

/// The market environments, on the CPU ([`CpuEnvs`]) or a GPU ([`GpuEnvs`]).
pub struct MarketEnvs {
    engine: Engine,
    /// Days loaded up front (start-time episodes), by (symbol, date).
    by_key: HashMap<(String, NaiveDate), Arc<DayData>>,
    /// Where a restored snapshot's other days are loaded from (sampler episodes, whose
    /// days the preloader brings in on demand).
    cache: std::path::PathBuf,
}

impl MarketEnvs {
    /// `days`: the days loaded up front (may be empty when the episode source loads its
    /// own from `cache`).
    pub fn new(envs: CpuEnvs, days: &[Arc<DayData>], cache: &std::path::Path) -> MarketEnvs {
        MarketEnvs::with_engine(Engine::Cpu(Box::new(envs)), days, cache)
    }

    /// Environments on a GPU, as [`MarketEnvs::new`].
    pub fn gpu(envs: GpuEnvs, days: &[Arc<DayData>], cache: &std::path::Path) -> MarketEnvs {
        let final_obs = vec![0.0; envs.num_envs() * envs.obs_dim()];
        MarketEnvs::with_engine(
            Engine::Gpu(Box::new(GpuEngine {
                #[cfg(feature = "torch")]
                shared: None,
                envs,
                final_obs,
            })),
            days,
            cache,
        )
    }

    fn with_engine(engine: Engine, days: &[Arc<DayData>], cache: &std::path::Path) -> MarketEnvs {
        let by_key = days
            .iter()
            .map(|d| ((d.symbol.clone(), d.date), d.clone()))
            .collect();
        MarketEnvs {
            engine,
            by_key,
            cache: cache.to_path_buf(),
        }
    }

    /// Lets a learner on `device` step CUDA environments in place (zero-copy): errors
    /// when the environments are not on that device.
    #[cfg(feature = "torch")]
    pub fn share_with(&mut self, device: tch::Device) -> Result<()> {
        match &mut self.engine {
            Engine::Gpu(g) => {
                g.shared = Some(super::device_env::EnvViews::of_gpu(&g.envs, device)?);
                Ok(())
            }
            Engine::Cpu(_) => Err(Error::Usage(
                "the CPU environments cannot share buffers with a GPU learner".into(),
            )),
        }
    }

    fn params(&self) -> &crate::env::EnvParams {
        match &self.engine {
            Engine::Cpu(e) => e.params(),
            Engine::Gpu(g) => g.envs.params(),
        }
    }

    /// A day by symbol and date: loaded up front, else from the cache (errors say why it
    /// cannot be loaded: gone from the cache, corrupt, …).
    fn day(&self, symbol: &str, date: NaiveDate) -> Result<Arc<DayData>> {
        if let Some(d) = self.by_key.get(&(symbol.to_string(), date)) {
            return Ok(d.clone());
        }
        let sel = crate::env::DaySelection {
            symbols: Some(vec![symbol.to_string()]),
            from: Some(date),
            to: Some(date),
        };
        crate::env::load_days(&self.cache, &sel, self.params())?
            .into_iter()
            .next()
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "{symbol} {date}, a day the checkpoint's environments were on, is not in the cache {}: resume over the saved run's data",
                    self.cache.display()
                ))
            })
    }

    /// The days a snapshot needs, found (or loaded) before the environments are touched.
    fn snapshot_days(
        &self,
        keys: Vec<(String, NaiveDate)>,
    ) -> Result<HashMap<(String, NaiveDate), Arc<DayData>>> {
        let mut found = HashMap::new();
        for (s, d) in keys {
            let day = self.day(&s, d)?;
            found.insert((s, d), day);
        }
        Ok(found)
    }
}

impl VecEnv for MarketEnvs {
    fn num_envs(&self) -> usize {
        match &self.engine {
            Engine::Cpu(e) => e.num_envs(),
            Engine::Gpu(g) => g.envs.num_envs(),
        }
    }

    fn obs_dim(&self) -> usize {
        self.params().obs_dim()
    }

    fn num_actions(&self) -> usize {
        self.params().actions.len()
    }

    fn observe(&mut self, obs: &mut [f32]) -> Result<()> {
        let n = self.num_envs();
        let (mut r, mut te, mut tr) = (vec![0.0; n], vec![0; n], vec![0; n]);
        let mut out = StepOut {
            obs,
            rewards: &mut r,
            terminated: &mut te,
            truncated: &mut tr,
        };
        match &mut self.engine {
            Engine::Cpu(e) => e.observe(&mut out),
            Engine::Gpu(g) => g.envs.observe(&mut out),
        }
    }

    fn step(&mut self, actions: &[u8], out: &mut StepOut<'_>) -> Result<()> {
        match &mut self.engine {
            Engine::Cpu(e) => e.step(actions, out),
            Engine::Gpu(g) => {
                g.envs.step(actions, out)?;
                let cut = out
                    .truncated
                    .iter()
                    .zip(out.terminated.iter())
                    .any(|(&tr, &te)| tr != 0 && te == 0);
                if cut {
                    g.final_obs = g.envs.final_obs()?;
                }
                Ok(())
            }
        }
    }

    fn describe(&self) -> String {
        match &self.engine {
            Engine::Cpu(_) => "cpu".into(),
            Engine::Gpu(g) => format!("{}: {}", g.envs.api().name(), g.envs.device_name()),
        }
    }

    fn final_obs(&self) -> &[f32] {
        match &self.engine {
            Engine::Cpu(e) => e.final_obs(),
            Engine::Gpu(g) => &g.final_obs,
        }
    }

    fn drain_episodes(&mut self, into: &mut Vec<EpisodeLog>) -> Result<()> {
        let finished = match &mut self.engine {
            Engine::Cpu(e) => e.drain_finished(),
            Engine::Gpu(g) => g.envs.drain_finished()?,
        };
        into.extend(finished.into_iter().map(|e| EpisodeLog {
            reward: e.reward,
            length: e.steps,
            pnl: e.pnl,
            trades: e.fills,
            turnover: e.turnover,
        }));
        Ok(())
    }

    fn save_state(&mut self) -> Result<Vec<u8>> {
        match &mut self.engine {
            Engine::Cpu(e) => Ok(e.save_state()),
            Engine::Gpu(g) => g.envs.save_state(),
        }
    }

    fn load_state(&mut self, bytes: &[u8]) -> Result<()> {
        // Days are looked up (or loaded) before the environments are touched.
        let keys = match &self.engine {
            Engine::Cpu(_) => CpuEnvs::snapshot_days(bytes)?,
            Engine::Gpu(_) => GpuEnvs::snapshot_days(bytes)?,
        };
        let found = self.snapshot_days(keys)?;
        let day = |s: &str, d: NaiveDate| found.get(&(s.to_string(), d)).cloned();
        match &mut self.engine {
            Engine::Cpu(e) => e.load_state(bytes, &day),
            Engine::Gpu(g) => g.envs.load_state(bytes, &day),
        }
    }

    #[cfg(feature = "torch")]
    fn on_device(&mut self) -> Option<&mut dyn super::device_env::DeviceSteps> {
        match &mut self.engine {
            Engine::Gpu(g) if g.shared.is_some() => Some(&mut **g),
            _ => None,
        }
    }
}

#[cfg(feature = "torch")]
impl super::device_env::DeviceSteps for GpuEngine {
    fn views(&self) -> &super::device_env::EnvViews {
        self.shared
            .as_ref()
            .expect("handed out only with views (VecEnv::on_device)")
    }

    fn step_in_place(&mut self) -> Result<()> {
        self.envs.step_in_place()
    }
}

/// Reads a little-endian u64 at `at` of a state blob.
pub(crate) fn read_u64(bytes: &[u8], at: usize, what: &str) -> Result<u64> {
    bytes
        .get(at..at + 8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
        .ok_or_else(|| Error::Data(format!("{what} state is truncated")))
}
