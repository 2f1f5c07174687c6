//! Trading environments: the execution model, the rewards and the engines that step them.
//!
//! - [`params`]: the `[env]` config and its validated form, [`EnvParams`].
//! - [`day`]: a cached day regrouped for stepping ([`DayData`], [`BarRec`]).
//! - [`exec`]: the cost, fill, accounting and reward formulas (pure functions).
//! - [`episodes`]: where episodes come from ([`EpisodeSource`]).
//! - [`preload`]: loading days in the background ([`preload::Preloader`]).
//! - [`reference`]: one environment, one step at a time, written to be read: the
//!   definition every other engine is tested against.
//! - [`cpu`]: the batch engine (struct-of-arrays, rayon), the CPU backend.
//! - [`gpu`]: the same step as CUDA kernels or WGSL compute shaders, one thread per
//!   environment ([`gpu::GpuEnvs`]).
//!
//! # One step
//! An episode starts at row `s` of a day; the first observation describes bar `s`. Each
//! step takes a decision made at the close of the current bar `t` from data up to `t`:
//! 1. The action's target fraction becomes whole shares at `t`'s close
//!    (`round(frac · floor(max_position_usd / close_t))`; a non-zero target within
//!    `min_order_frac` of the maximum of the pending order's target, or else of the
//!    position, keeps it). A target
//!    different from the position (and from a pending order's target) replaces any pending
//!    order with one for the difference, arriving at `close time of t + latency_ms`; a
//!    target equal to the position cancels the pending order.
//! 2. The next bar `t+1` opens. A pending order whose arrival is at or before the bar's
//!    start is rejected if it arrived during a halt or the bar is halted; otherwise it fills
//!    up to `participation · volume` shares at the bar's open (or the mid of the quote in
//!    force at the open, i.e. the previous bar's closing quote) plus
//!    half-spread, impact and commission; the rest is carried to later bars or cancelled.
//!    Bars that do not exist cannot fill anything: the order waits for the next one.
//! 3. A short position pays borrow for the time from `t` to `t+1`. The account is marked at
//!    `t+1`'s close.
//! 4. If `t+1` is the session's last bar, or the loss limit is hit, the position is
//!    flattened at `t+1`'s close with all costs and the episode *terminates*; if the
//!    episode reached `max_episode_steps` it is *truncated* (no flatten: the value of the
//!    position is bootstrapped).
//! 5. The reward is computed from the equity change, and the observation of `t+1` written —
//!    or, if the episode ended, the environment resets to the next episode and writes that
//!    episode's first observation (same-step auto-reset).

pub mod conformance;
pub mod cpu;
pub mod day;
pub mod envs;
pub mod episodes;
pub mod exec;
pub mod gpu;
pub mod params;
pub mod preload;
pub mod reference;
pub mod store;

pub use cpu::{CpuEnvs, Simd};
pub use day::{BarRec, DayData, DaySelection, load_days, select_days};
pub use envs::{EnvOptions, Envs};
pub use episodes::{CacheUniverse, Episode, EpisodeSource, StartTimes};
pub use params::{ACCOUNT_FIELDS, EnvConfig, EnvParams};
pub use preload::PreloadConfig;
pub use reference::ReferenceEnv;

use serde::{Deserialize, Serialize};

/// The engine that steps the environments (`--backend`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// [`CpuEnvs`]: struct-of-arrays on every core (rayon).
    #[default]
    #[value(help = "struct-of-arrays on every core (rayon)")]
    Cpu,
    /// CUDA kernels (`kernels/env_step.cu`, [`gpu::cuda`]) on an NVIDIA GPU.
    #[value(help = "CUDA kernels (kernels/env_step.cu) on an NVIDIA GPU")]
    Cuda,
    /// WGSL compute shaders (`shaders/env_step.wgsl`, [`gpu::wgpu`]) on any Vulkan, Metal
    /// or DX12 GPU.
    #[value(help = "WGSL compute shaders (shaders/env_step.wgsl) on any Vulkan, Metal or DX12 GPU")]
    Wgpu,
    /// The CUDA kernels' source compiled for this CPU ([`gpu::host`]): runs every line of
    /// the CUDA step without a GPU, for tests and measuring the GPU engine's host side;
    /// not for speed (that is `cpu`).
    #[serde(rename = "cuda-host")]
    #[value(
        help = "the CUDA kernels' source compiled for this CPU: every line of the CUDA step without a GPU, for tests and measuring the GPU engine's host side; not for speed (that is cpu)"
    )]
    CudaHost,
}

impl Backend {
    /// The GPU API, for the GPU backends.
    pub fn gpu(self) -> Option<gpu::GpuApi> {
        match self {
            Backend::Cpu => None,
            Backend::Cuda => Some(gpu::GpuApi::Cuda),
            Backend::Wgpu => Some(gpu::GpuApi::Wgpu),
            Backend::CudaHost => Some(gpu::GpuApi::CudaHost),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            Backend::Cuda => "cuda",
            Backend::Wgpu => "wgpu",
            Backend::CudaHost => "cuda-host",
        }
    }
}

impl From<gpu::GpuApi> for Backend {
    fn from(api: gpu::GpuApi) -> Backend {
        match api {
            gpu::GpuApi::Cuda => Backend::Cuda,
            gpu::GpuApi::Wgpu => Backend::Wgpu,
            gpu::GpuApi::CudaHost => Backend::CudaHost,
        }
    }
}

/// Why an episode ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The session's last bar: flattened at its close (terminated).
    SessionClose,
    /// The loss limit: flattened at the bar's close (terminated).
    LossLimit,
    /// `max_episode_steps` reached (truncated).
    MaxSteps,
}

impl EndReason {
    pub fn terminated(self) -> bool {
        !matches!(self, EndReason::MaxSteps)
    }
}

/// Summary of one finished episode.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EpisodeStats {
    pub env: usize,
    pub symbol: String,
    pub date: chrono::NaiveDate,
    pub start_row: u32,
    pub steps: u32,
    pub reason: EndReason,
    /// Sum of the rewards.
    pub reward: f64,
    /// Final equity minus starting equity, dollars.
    pub pnl: f64,
    pub realized: f64,
    /// Commission, spread, impact and borrow paid, dollars.
    pub costs: f64,
    pub fills: u32,
    /// Orders rejected by halts.
    pub rejected: u32,
    /// Traded notional at reference prices, dollars.
    pub turnover: f64,
}

/// The trainer-owned buffers a batch step writes into (PufferLib's `buf=`): one row of
/// `obs_dim` f32 per environment, then one reward and two flags per environment.
pub struct StepOut<'a> {
    pub obs: &'a mut [f32],
    pub rewards: &'a mut [f32],
    pub terminated: &'a mut [u8],
    pub truncated: &'a mut [u8],
}

/// Owned buffers for callers that do not bring their own (tests, benchmarks, the CLI).
#[derive(Clone, Debug, Default)]
pub struct Buffers {
    pub obs: Vec<f32>,
    pub rewards: Vec<f32>,
    pub terminated: Vec<u8>,
    pub truncated: Vec<u8>,
}

impl Buffers {
    pub fn new(envs: usize, obs_dim: usize) -> Buffers {
        Buffers {
            obs: vec![0.0; envs * obs_dim],
            rewards: vec![0.0; envs],
            terminated: vec![0; envs],
            truncated: vec![0; envs],
        }
    }

    pub fn out(&mut self) -> StepOut<'_> {
        StepOut {
            obs: &mut self.obs,
            rewards: &mut self.rewards,
            terminated: &mut self.terminated,
            truncated: &mut self.truncated,
        }
    }
}
