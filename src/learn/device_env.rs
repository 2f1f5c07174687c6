//! The environments as the learner's one rollout path sees them ([`DeviceSteps`]: tensors
//! on its device):
//! - [`InPlace`]: CUDA environments next to a CUDA learner, their observation, reward,
//!   flag and action buffers seen as libtorch tensors (zero-copy), so a rollout never
//!   copies through host memory;
//! - [`HostSteps`]: any other environments, stepped on the host into their output buffers
//!   and copied up each step.
//!
//! The rollout's device-side normalizer ([`DeviceNorm`]) and sampler ([`sample`]) live
//! here too. The rest of this page is about [`InPlace`].
//!
//! # How it is kept safe
//! - **Lifetime.** [`EnvViews`] are `Tensor::from_blob` views of buffers that
//!   [`GpuEnvs`] allocated once, at creation, and never reallocates. The views live in the
//!   same struct as the environments, declared before them, so they are dropped first. The
//!   learner copies out of them (into its rollout storage) within the step that wrote them
//!   and keeps no view of its own.
//! - **Ordering.** The CUDA backend issues every copy and launch on the context's legacy
//!   default stream, which is libtorch's current stream too (nothing here ever changes
//!   it), in the device's primary context, which libtorch also uses. So the work of both
//!   libraries runs in the order it is submitted: the action copy (libtorch) before the
//!   step kernel (cudarc), the step kernel before the reads of its outputs (libtorch).
//!   No host synchronization is needed between them.
//! - **Values.** The learner writes only action indices drawn from the policy's
//!   categorical distribution (`0..n_actions`), the range the kernels index their action
//!   table with; the kernels trust the action buffer (the host path checks every action).

use super::vec_env::{DeviceSteps, EnvViews, EpisodeLog, VecEnv};
use crate::env::gpu::{Buf, GpuEnvs};
use crate::error::{Error, Result};
use tch::{Device, Kind, Tensor};

impl EnvViews {
    /// Views of `envs`' CUDA buffers for a learner on `device`: errors unless the
    /// environments run on CUDA and `device` is a CUDA device (the first one, which the
    /// CUDA backend uses).
    pub fn of_gpu(envs: &GpuEnvs, device: Device) -> Result<EnvViews> {
        let not_shared = |why: &str| {
            Error::Usage(format!(
                "the {} environments cannot share buffers with a learner on {device:?}: {why}",
                envs.api().name()
            ))
        };
        if device != Device::Cuda(0) {
            return Err(not_shared("zero-copy needs the learner on cuda:0"));
        }
        let ptr = |b: Buf| {
            envs.device_ptr(b)
                .ok_or_else(|| not_shared("only the cuda backend's buffers are CUDA memory"))
        };
        let (n, d) = (envs.num_envs() as i64, envs.obs_dim() as i64);
        let obs_ptr = ptr(Buf::Obs)?;
        let final_ptr = obs_ptr + (4 * n * d) as u64;
        // SAFETY: each pointer is the start of a device allocation of at least the viewed
        // size (GpuEnvs sizes Obs as 2·n·d f32, Rewards n f32, Flags n u32, Actions n
        // bytes rounded up to words) that outlives the views (module docs).
        let view = |p: u64, size: &[i64], kind: Kind| unsafe {
            let strides: Vec<i64> = match size {
                [_, d] => vec![*d, 1],
                _ => vec![1],
            };
            Tensor::from_blob(p as *const u8, size, &strides, kind, device)
        };
        Ok(EnvViews {
            obs: view(obs_ptr, &[n, d], Kind::Float),
            final_obs: view(final_ptr, &[n, d], Kind::Float),
            rewards: view(ptr(Buf::Rewards)?, &[n], Kind::Float),
            flags: view(ptr(Buf::Flags)?, &[n], Kind::Int),
            actions: view(ptr(Buf::Actions)?, &[n], Kind::Uint8),
        })
    }

    /// Fresh tensors on `device` that host environments' outputs are copied into
    /// ([`HostSteps`]).
    fn fresh(n: usize, d: usize, device: Device) -> EnvViews {
        let (n, d) = (n as i64, d as i64);
        let f = |size: &[i64]| Tensor::zeros(size, (Kind::Float, device));
        EnvViews {
            obs: f(&[n, d]),
            final_obs: f(&[n, d]),
            rewards: f(&[n]),
            flags: Tensor::zeros([n], (Kind::Int, device)),
            actions: Tensor::zeros([n], (Kind::Uint8, device)),
        }
    }
}

/// CUDA environments next to a CUDA learner, stepped in place through [`EnvViews`] of
/// their own device buffers (zero-copy; module docs).
pub struct InPlace {
    /// Declared before `env`: dropped before the device buffers they view.
    views: EnvViews,
    env: Box<dyn VecEnv>,
}

impl InPlace {
    /// `env`'s CUDA buffers viewed on `device` (module docs): errors unless `env` runs on
    /// the cuda backend and `device` is `cuda:0`.
    pub fn on_gpu(mut env: Box<dyn VecEnv>, device: Device) -> Result<InPlace> {
        let gpu = env
            .envs_mut()
            .and_then(crate::env::Envs::gpu)
            .ok_or_else(|| {
                Error::Usage("the CPU environments cannot share buffers with a GPU learner".into())
            })?;
        let views = EnvViews::of_gpu(gpu, device)?;
        Ok(InPlace { views, env })
    }

    fn gpu(&mut self) -> &mut GpuEnvs {
        self.env
            .envs_mut()
            .and_then(crate::env::Envs::gpu)
            .expect("InPlace::on_gpu checked the environments are on the GPU")
    }
}

impl DeviceSteps for InPlace {
    fn views(&self) -> &EnvViews {
        &self.views
    }

    fn step_in_place(&mut self) -> Result<()> {
        self.gpu().step_in_place()
    }
}

impl VecEnv for InPlace {
    fn num_envs(&self) -> usize {
        self.env.num_envs()
    }
    fn obs_dim(&self) -> usize {
        self.env.obs_dim()
    }
    fn num_actions(&self) -> usize {
        self.env.num_actions()
    }
    fn observe(&mut self, obs: &mut [f32]) -> Result<()> {
        self.env.observe(obs)
    }
    fn step(&mut self, actions: &[u8], out: &mut crate::env::StepOut<'_>) -> Result<()> {
        self.env.step(actions, out)
    }
    fn final_obs(&self) -> &[f32] {
        self.env.final_obs()
    }
    fn drain_episodes(&mut self, into: &mut Vec<EpisodeLog>) -> Result<()> {
        self.env.drain_episodes(into)
    }
    fn save_state(&mut self) -> Result<Vec<u8>> {
        self.env.save_state()
    }
    fn load_state(&mut self, bytes: &[u8]) -> Result<()> {
        self.env.load_state(bytes)
    }
    fn describe(&self) -> String {
        format!("{} (stepped in place by the learner)", self.env.describe())
    }
    fn envs_mut(&mut self) -> Option<&mut crate::env::Envs> {
        self.env.envs_mut()
    }
    fn on_device(&mut self) -> Option<&mut dyn DeviceSteps> {
        Some(self)
    }
    fn can_truncate(&self) -> bool {
        self.env.can_truncate()
    }
}

/// Environments that step on the host (any [`VecEnv`]: the CPU backend, wgpu, the sanity
/// tasks) behind tensors on the learner's device, so the learner has one rollout path:
/// each step reads the actions down, steps the environments into host buffers (the ones
/// every engine writes into, [`crate::env::StepOut`]), and copies their outputs up. The
/// learner owns it across rollouts and lends it its environments for each one
/// ([`HostSteps::with`]).
pub struct HostSteps {
    views: EnvViews,
    actions: Vec<u8>,
    obs: Vec<f32>,
    rewards: Vec<f32>,
    terminated: Vec<u8>,
    truncated: Vec<u8>,
    flags: Vec<i32>,
}

impl HostSteps {
    /// Buffers for `n` environments of `d` observations, the views on `device`.
    pub fn new(n: usize, d: usize, device: Device) -> HostSteps {
        HostSteps {
            views: EnvViews::fresh(n, d, device),
            actions: vec![0; n],
            obs: vec![0.0; n * d],
            rewards: vec![0.0; n],
            terminated: vec![0; n],
            truncated: vec![0; n],
            flags: vec![0; n],
        }
    }

    /// These buffers with `env`, as [`DeviceSteps`].
    pub fn with<'a>(&'a mut self, env: &'a mut dyn VecEnv) -> Stepping<'a> {
        Stepping { host: self, env }
    }
}

/// A [`HostSteps`] lent the environments it steps.
pub struct Stepping<'a> {
    host: &'a mut HostSteps,
    env: &'a mut dyn VecEnv,
}

impl DeviceSteps for Stepping<'_> {
    fn views(&self) -> &EnvViews {
        &self.host.views
    }

    fn step_in_place(&mut self) -> Result<()> {
        let h = &mut *self.host;
        let n = h.actions.len();
        h.views.actions.copy_data(&mut h.actions, n);
        self.env.step(
            &h.actions,
            &mut crate::env::StepOut {
                obs: &mut h.obs,
                rewards: &mut h.rewards,
                terminated: &mut h.terminated,
                truncated: &mut h.truncated,
            },
        )?;
        let v = &mut h.views;
        let shape = v.obs.size();
        v.obs
            .copy_(&Tensor::from_slice(&h.obs).view(shape.as_slice()));
        if self.env.can_truncate() {
            v.final_obs
                .copy_(&Tensor::from_slice(self.env.final_obs()).view(shape.as_slice()));
        }
        v.rewards.copy_(&Tensor::from_slice(&h.rewards));
        for (i, f) in h.flags.iter_mut().enumerate() {
            *f = (h.terminated[i] as i32) | (h.truncated[i] as i32) << 1;
        }
        v.flags.copy_(&Tensor::from_slice(&h.flags));
        Ok(())
    }
}

/// [`super::normalize::ObsNorm`] on the learner's device for the length of a rollout:
/// the same update (Chan et al., f64) and normalization as the host's, as tensor ops.
pub struct DeviceNorm {
    mean: Tensor,
    var: Tensor,
    count: f64,
    clip: f64,
}

impl DeviceNorm {
    pub fn upload(norm: &super::normalize::ObsNorm, device: Device) -> DeviceNorm {
        DeviceNorm {
            mean: Tensor::from_slice(&norm.mean).to_device(device),
            var: Tensor::from_slice(&norm.var).to_device(device),
            count: norm.count,
            clip: norm.clip as f64,
        }
    }

    /// Folds a batch `[rows, dim]` (f32) into the statistics.
    pub fn update(&mut self, obs: &Tensor) {
        let x = obs.to_kind(Kind::Double);
        let n = x.size()[0] as f64;
        if n == 0.0 {
            return;
        }
        let m = x.mean_dim(0, false, Kind::Double);
        let v = (&x - &m).square().mean_dim(0, false, Kind::Double);
        let total = self.count + n;
        let delta = &m - &self.mean;
        let m2 = &self.var * self.count + v * n + delta.square() * (self.count * n / total);
        self.mean = &self.mean + delta * (n / total);
        self.var = m2 / total;
        self.count = total;
    }

    /// The normalized, clipped observations (f32, same shape).
    pub fn normalize(&self, obs: &Tensor) -> Tensor {
        let scale = (&self.var + super::normalize::EPS).sqrt().reciprocal();
        ((obs.to_kind(Kind::Double) - &self.mean) * scale)
            .to_kind(Kind::Float)
            .clamp(-self.clip, self.clip)
    }

    /// Writes the statistics back to the host's normalizer.
    pub fn download(&self, norm: &mut super::normalize::ObsNorm) {
        let d = norm.mean.len();
        self.mean
            .to_device(Device::Cpu)
            .copy_data(&mut norm.mean, d);
        self.var.to_device(Device::Cpu).copy_data(&mut norm.var, d);
        norm.count = self.count;
    }
}

/// Inverse-CDF draws from categorical distributions given by their log-probabilities
/// (`[n, a]`), with `u` (`[n]`) uniform in [0, 1): the first action whose cumulative
/// probability exceeds `u`, the last one absorbing rounding ([`super::network::sample`]
/// on the device). Returns i64 indices `[n]`.
pub fn sample(log_probs: &Tensor, u: &Tensor) -> Tensor {
    let a = log_probs.size()[1];
    log_probs
        .exp()
        .cumsum(-1, Kind::Float)
        .le_tensor(&u.unsqueeze(-1))
        .sum_dim_intlist(-1, false, Kind::Int64)
        .clamp_max(a - 1)
}
