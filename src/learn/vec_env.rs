//! What the learner steps: a batch of environments writing into the learner's buffers.
//! The market backend ([`MarketEnvs`]) and the sanity tasks ([`super::sanity`]) implement
//! it, so the PPO loop never knows which one it trains on.

use crate::env::{DayData, Envs, StepOut};
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
    /// The market environments' engine, for extensions that work on a backend's own
    /// buffers (`super::device_env`); `None` for the sanity tasks.
    fn envs_mut(&mut self) -> Option<&mut Envs> {
        None
    }
    /// The environments' buffers as tensors on the learner's device, when they live there
    /// (CUDA environments next to a CUDA learner, `super::device_env`): the learner then
    /// steps them through [`DeviceSteps`] without copying through host memory.
    #[cfg(feature = "torch")]
    fn on_device(&mut self) -> Option<&mut dyn DeviceSteps> {
        None
    }

    /// Whether a step can truncate an episode (end it without a termination, so the
    /// learner bootstraps its value). The market environments truncate only at
    /// `env.max_episode_steps`; when it is 0 the learner skips the check.
    fn can_truncate(&self) -> bool {
        true
    }
}

/// Tensors viewing an environment batch's buffers on the learner's device (built by
/// `super::device_env`).
#[cfg(feature = "torch")]
pub struct EnvViews {
    /// `[n, obs_dim]` f32: the observations after the latest step (the next episode's first
    /// one where an episode ended).
    pub obs: tch::Tensor,
    /// `[n, obs_dim]` f32: the last observation of the episodes truncated in the latest
    /// step (other rows are stale).
    pub final_obs: tch::Tensor,
    /// `[n]` f32.
    pub rewards: tch::Tensor,
    /// `[n]` i32: bit 0 terminated, bit 1 truncated in the latest step.
    pub flags: tch::Tensor,
    /// `[n]` u8: the actions the next step takes, written by the learner.
    pub actions: tch::Tensor,
}

/// Environments as the learner's rollout reads and writes them: tensors on its device
/// ([`EnvViews`]). The implementations live in `super::device_env`: CUDA environments'
/// own buffers (zero-copy), or host environments' outputs copied up each step.
#[cfg(feature = "torch")]
pub trait DeviceSteps {
    fn views(&self) -> &EnvViews;
    /// One step of every environment with the actions in `views().actions`; the outputs
    /// are in the views when the work submitted so far has run (stream order).
    fn step_in_place(&mut self) -> Result<()>;
}

/// The market environments on any backend ([`Envs`]), with the days a snapshot may
/// name.
pub struct MarketEnvs {
    envs: Envs,
    /// Days loaded up front (start-time episodes), by (symbol, date).
    by_key: HashMap<(String, NaiveDate), Arc<DayData>>,
    /// Where a restored snapshot's other days are loaded from (sampler episodes, whose
    /// days the preloader brings in on demand).
    cache: std::path::PathBuf,
}

impl MarketEnvs {
    /// `days`: the days loaded up front (may be empty when the episode source loads its
    /// own from `cache`).
    pub fn new(envs: Envs, days: &[Arc<DayData>], cache: &std::path::Path) -> MarketEnvs {
        let by_key = days
            .iter()
            .map(|d| ((d.symbol.clone(), d.date), d.clone()))
            .collect();
        MarketEnvs {
            envs,
            by_key,
            cache: cache.to_path_buf(),
        }
    }

    pub fn envs(&self) -> &Envs {
        &self.envs
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
        crate::env::load_days(&self.cache, &sel, self.envs.params())?
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
        self.envs.num_envs()
    }

    fn obs_dim(&self) -> usize {
        self.envs.obs_dim()
    }

    fn num_actions(&self) -> usize {
        self.envs.params().actions.len()
    }

    fn observe(&mut self, obs: &mut [f32]) -> Result<()> {
        let n = self.num_envs();
        let (mut r, mut te, mut tr) = (vec![0.0; n], vec![0; n], vec![0; n]);
        self.envs.observe(&mut StepOut {
            obs,
            rewards: &mut r,
            terminated: &mut te,
            truncated: &mut tr,
        })
    }

    fn step(&mut self, actions: &[u8], out: &mut StepOut<'_>) -> Result<()> {
        self.envs.step(actions, out)
    }

    fn describe(&self) -> String {
        self.envs.describe()
    }

    fn can_truncate(&self) -> bool {
        self.envs.params().max_episode_steps > 0
    }

    fn envs_mut(&mut self) -> Option<&mut Envs> {
        Some(&mut self.envs)
    }

    fn final_obs(&self) -> &[f32] {
        self.envs.final_obs()
    }

    fn drain_episodes(&mut self, into: &mut Vec<EpisodeLog>) -> Result<()> {
        into.extend(self.envs.drain_finished()?.into_iter().map(|e| EpisodeLog {
            reward: e.reward,
            length: e.steps,
            pnl: e.pnl,
            trades: e.fills,
            turnover: e.turnover,
        }));
        Ok(())
    }

    fn save_state(&mut self) -> Result<Vec<u8>> {
        self.envs.save_state()
    }

    fn load_state(&mut self, bytes: &[u8]) -> Result<()> {
        // Days are looked up (or loaded) before the environments are touched.
        let found = self.snapshot_days(self.envs.snapshot_days(bytes)?)?;
        let day = |s: &str, d: NaiveDate| found.get(&(s.to_string(), d)).cloned();
        self.envs.load_state(bytes, &day)
    }
}

/// Reads a little-endian u64 at `at` of a state blob.
pub(crate) fn read_u64(bytes: &[u8], at: usize, what: &str) -> Result<u64> {
    bytes
        .get(at..at + 8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
        .ok_or_else(|| Error::Data(format!("{what} state is truncated")))
}
