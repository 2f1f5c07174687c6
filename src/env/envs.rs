//! The one environment seam: [`Envs`], N environments on any backend behind one set of
//! signatures, built by one factory from the backend name ([`Envs::open`]). The learner
//! (`learn::vec_env`), `bench env`, training, `sim-train doctor` and the conformance check
//! use only this; nothing above `env` matches on the backend again.
//!
//! An enum over the engines, as candle's `Device` / `Storage` are: the CPU engine
//! ([`CpuEnvs`]) and the GPU engine ([`GpuEnvs`], whose [`super::gpu::Device`] is CUDA,
//! wgpu or the CUDA source compiled for the host). A backend compiled out of this binary
//! is refused by the factory with one line saying how to build it in.
//!
//! Stepping in place on the device, for a learner on the same GPU, is an extension:
//! [`Envs::gpu`] hands out the GPU engine, and `learn::device_env` alone builds on it.

use super::gpu::{GpuEnvs, GpuOptions};
use super::{Backend, CpuEnvs, DayData, EnvParams, EpisodeSource, EpisodeStats, Simd, StepOut};
use crate::error::Result;
use chrono::NaiveDate;
use std::sync::Arc;

/// N environments stepped together on one backend.
pub enum Envs {
    Cpu(Box<CpuEnvs>),
    Gpu(Box<GpuEnvs>),
}

/// How to build [`Envs`] beyond the backend: the CPU step's instruction set and day-window
/// cadence, the GPU's queue and day-slot sizes. Each applies to its engine only.
#[derive(Clone, Copy, Debug, Default)]
pub struct EnvOptions {
    /// The CPU step's instruction set (None: the widest this CPU runs).
    pub simd: Option<Simd>,
    /// Episodes the CPU engine draws between two moves of its source's day window (None:
    /// `preload.window_episodes`'s default).
    pub window_episodes: Option<u64>,
    pub gpu: GpuOptions,
}

impl Envs {
    /// `n` environments on `backend`, each given its first episode by `source`.
    pub fn open(
        backend: Backend,
        params: Arc<EnvParams>,
        n: usize,
        source: Box<dyn EpisodeSource>,
        opts: EnvOptions,
    ) -> Result<Envs> {
        match backend.gpu() {
            None => {
                let every = opts
                    .window_episodes
                    .unwrap_or(super::PreloadConfig::default().window_episodes);
                let mut e = CpuEnvs::with_window(params, n, source, every)?;
                if let Some(simd) = opts.simd {
                    e.set_simd(simd)?;
                }
                Ok(Envs::Cpu(Box::new(e)))
            }
            Some(api) => Ok(Envs::Gpu(Box::new(GpuEnvs::new(
                api, params, n, source, opts.gpu,
            )?))),
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Envs::Cpu(_) => Backend::Cpu,
            Envs::Gpu(g) => g.api().into(),
        }
    }

    pub fn num_envs(&self) -> usize {
        match self {
            Envs::Cpu(e) => e.num_envs(),
            Envs::Gpu(g) => g.num_envs(),
        }
    }

    pub fn params(&self) -> &Arc<EnvParams> {
        match self {
            Envs::Cpu(e) => e.params(),
            Envs::Gpu(g) => g.params(),
        }
    }

    pub fn obs_dim(&self) -> usize {
        self.params().obs_dim()
    }

    /// Writes every environment's current observation into `out.obs`.
    pub fn observe(&mut self, out: &mut StepOut<'_>) -> Result<()> {
        match self {
            Envs::Cpu(e) => e.observe(out),
            Envs::Gpu(g) => g.observe(out),
        }
    }

    /// One step of every environment with `actions[i]`, the outputs in `out`, with
    /// same-step auto-reset; the final observations of truncated episodes in
    /// [`Envs::final_obs`].
    pub fn step(&mut self, actions: &[u8], out: &mut StepOut<'_>) -> Result<()> {
        match self {
            Envs::Cpu(e) => e.step(actions, out),
            Envs::Gpu(g) => g.step(actions, out),
        }
    }

    /// One step whose outputs stay where a learner on this engine reads them: in `out` on
    /// the CPU, in device memory on a GPU backend (`out` untouched, nothing read back).
    /// What `bench env` times.
    pub fn step_resident(&mut self, actions: &[u8], out: &mut StepOut<'_>) -> Result<()> {
        match self {
            Envs::Cpu(e) => e.step(actions, out),
            Envs::Gpu(g) => g.step_on_device(actions),
        }
    }

    /// Row `i`: environment `i`'s last observation when its episode was truncated in the
    /// latest [`Envs::step`] (other rows are stale).
    pub fn final_obs(&self) -> &[f32] {
        match self {
            Envs::Cpu(e) => e.final_obs(),
            Envs::Gpu(g) => g.final_obs(),
        }
    }

    /// Waits until every submitted step has finished (a no-op on the CPU).
    pub fn sync(&mut self) -> Result<()> {
        match self {
            Envs::Cpu(_) => Ok(()),
            Envs::Gpu(g) => g.sync(),
        }
    }

    /// Takes the summaries of the episodes finished since the last call.
    pub fn drain_finished(&mut self) -> Result<Vec<EpisodeStats>> {
        match self {
            Envs::Cpu(e) => Ok(e.drain_finished()),
            Envs::Gpu(g) => g.drain_finished(),
        }
    }

    /// What the episode source's background day loader did, where it has one.
    pub fn preload_stats(&self) -> Option<super::preload::PreloadStats> {
        match self {
            Envs::Cpu(e) => e.source().preload_stats(),
            Envs::Gpu(g) => g.source().preload_stats(),
        }
    }

    /// Episodes finished since creation.
    pub fn episodes(&self) -> u64 {
        match self {
            Envs::Cpu(e) => e.episodes(),
            Envs::Gpu(g) => g.episodes(),
        }
    }

    /// Summaries dropped because the log was full.
    pub fn dropped(&self) -> u64 {
        match self {
            Envs::Cpu(e) => e.dropped(),
            Envs::Gpu(g) => g.dropped(),
        }
    }

    /// Bytes of state, market data, actions and outputs one environment step touches.
    pub fn bytes_per_step(&self) -> usize {
        match self {
            Envs::Cpu(e) => e.bytes_per_step(),
            Envs::Gpu(g) => g.bytes_per_step(),
        }
    }

    /// The CPU step's instruction set (None on a GPU backend).
    pub fn simd(&self) -> Option<Simd> {
        match self {
            Envs::Cpu(e) => Some(e.simd()),
            Envs::Gpu(_) => None,
        }
    }

    /// What steps the environments: "cpu (2 threads, avx512)", "wgpu: llvmpipe …".
    pub fn describe(&self) -> String {
        match self {
            Envs::Cpu(e) => format!(
                "cpu ({} threads, {})",
                rayon::current_num_threads(),
                e.simd().name()
            ),
            Envs::Gpu(g) => format!("{}: {}", g.api().name(), g.device_name()),
        }
    }

    /// Everything that decides future steps (a checkpoint's environment state).
    pub fn save_state(&mut self) -> Result<Vec<u8>> {
        match self {
            Envs::Cpu(e) => Ok(e.save_state()),
            Envs::Gpu(g) => g.save_state(),
        }
    }

    /// The days (symbol, date) a snapshot of this engine names, to look up before
    /// [`Envs::load_state`].
    pub fn snapshot_days(&self, bytes: &[u8]) -> Result<Vec<(String, NaiveDate)>> {
        match self {
            Envs::Cpu(_) => CpuEnvs::snapshot_days(bytes),
            Envs::Gpu(_) => GpuEnvs::snapshot_days(bytes),
        }
    }

    /// Restores a [`Envs::save_state`] snapshot; `day` finds the days it names.
    pub fn load_state(
        &mut self,
        bytes: &[u8],
        day: &dyn Fn(&str, NaiveDate) -> Option<Arc<DayData>>,
    ) -> Result<()> {
        match self {
            Envs::Cpu(e) => e.load_state(bytes, day),
            Envs::Gpu(g) => g.load_state(bytes, day),
        }
    }

    /// What the host did for the device ([`super::gpu::Meter`]); `None` on the CPU.
    pub fn meter(&self) -> Option<super::gpu::Meter> {
        match self {
            Envs::Cpu(_) => None,
            Envs::Gpu(g) => Some(g.meter()),
        }
    }

    /// Starts the [`Envs::meter`] counts afresh.
    pub fn reset_meter(&mut self) {
        if let Envs::Gpu(g) = self {
            g.reset_meter();
        }
    }

    /// The GPU engine, for the extensions that work on its device buffers (stepping in
    /// place next to a learner on the same device: `learn::device_env`).
    pub fn gpu(&mut self) -> Option<&mut GpuEnvs> {
        match self {
            Envs::Cpu(_) => None,
            Envs::Gpu(g) => Some(g),
        }
    }
}
