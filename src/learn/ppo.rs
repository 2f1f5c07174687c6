//! Recurrent PPO, top to bottom (CleanRL's `ppo_atari_lstm.py` is the model).
//!
//! One update = one rollout of `T` steps of `N` environments, then `epochs` passes over it:
//!
//! 1. **Rollout.** At each step the policy reads the observations (with the LSTM state
//!    zeroed for environments whose episode just began), an action is sampled from its
//!    categorical distribution with the trainer's seeded RNG, and the environments step.
//!    The LSTM state is stored at the start of every truncated-BPTT chunk. When an episode
//!    is truncated by a time limit, the value of the state it was cut off in is computed
//!    right away (with the pre-reset LSTM state) so that GAE can bootstrap from it.
//! 2. **Advantages.** GAE(γ, λ) ([`super::gae`]): terminations cut the future, truncations
//!    bootstrap from that value, and the value of the state after the rollout closes it.
//! 3. **Epochs.** Environments are shuffled and split into minibatches, so each sequence
//!    stays whole; each minibatch runs its sequences chunk by chunk (truncated BPTT) from
//!    the stored states, with clipped policy loss, (optionally clipped) value loss and an
//!    entropy bonus, then a global grad-norm clip and an Adam step. The epochs stop early
//!    when the approximate KL passes `target_kl`.
//!
//! Everything random comes from seeded ChaCha streams (the trainer's for actions and
//! minibatch order, the policy's own for its initial weights; libtorch's global generator
//! is never used), so a checkpoint holding the RNG position, the weights, Adam's moments,
//! the observation statistics, the carried LSTM state and the environments resumes exactly.

use super::config::{Precision, TrainConfig};
use super::device_env::{self, DeviceNorm};
use super::gae::{GaeInput, gae};
use super::network::sample;
use super::normalize::ObsNorm;
use super::policy::{LstmState, Policy};
use super::vec_env::DeviceSteps;
use super::vec_env::VecEnv;
use crate::env::StepOut;
use crate::error::Result;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// Adam (Kingma & Ba), with PyTorch's update formula, its moments kept here so that
/// checkpoints can hold them.
pub struct Adam {
    pub params: Vec<(String, Tensor)>,
    pub m: Vec<Tensor>,
    pub v: Vec<Tensor>,
    pub step: u64,
    pub eps: f64,
}

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;

impl Adam {
    pub fn new(policy: &Policy, eps: f64) -> Adam {
        let params = policy.named_parameters();
        let m = params.iter().map(|(_, p)| p.zeros_like()).collect();
        let v = params.iter().map(|(_, p)| p.zeros_like()).collect();
        Adam {
            params,
            m,
            v,
            step: 0,
            eps,
        }
    }

    pub fn zero_grad(&mut self) {
        for (_, p) in &mut self.params {
            p.zero_grad();
        }
    }

    /// Scales the gradients so their global norm is at most `max_norm`; returns the norm
    /// before clipping (a scalar f32 tensor). Nothing is read to the host: the scale
    /// `min(1, max_norm / (norm + 1e-6))`, computed in f64 and applied in f32, is exactly
    /// 1 when no clipping is needed, so the gradients are then unchanged.
    pub fn clip_grad_norm(&mut self, max_norm: f64) -> Tensor {
        tch::no_grad(|| {
            let sq: Vec<Tensor> = self
                .params
                .iter()
                .map(|(_, p)| p.grad().pow_tensor_scalar(2).sum(Kind::Float))
                .collect();
            let norm = Tensor::stack(&sq, 0).sum(Kind::Float).sqrt();
            let max_norm = Tensor::from(max_norm).to_device(norm.device());
            let coef = (max_norm / (norm.to_kind(Kind::Double) + 1e-6))
                .clamp_max(1.0)
                .to_kind(Kind::Float);
            for (_, p) in &self.params {
                let mut g = p.grad();
                let _ = g.g_mul_(&coef);
            }
            norm
        })
    }

    /// One step of size `lr`.
    pub fn apply(&mut self, lr: f64) {
        self.step += 1;
        let bc1 = 1.0 - BETA1.powi(self.step as i32);
        let bc2 = 1.0 - BETA2.powi(self.step as i32);
        tch::no_grad(|| {
            for (k, (_, p)) in self.params.iter().enumerate() {
                let g = p.grad();
                let (m, v) = (&mut self.m[k], &mut self.v[k]);
                let _ = m.g_mul_scalar_(BETA1);
                let _ = m.g_add_(&(&g * (1.0 - BETA1)));
                let _ = v.g_mul_scalar_(BETA2);
                let _ = v.g_add_(&(&g * &g * (1.0 - BETA2)));
                let denom = v.sqrt() / bc2.sqrt() + self.eps;
                let mut p = p.shallow_clone();
                let _ = p.g_sub_(&(&*m / &denom * (lr / bc1)));
            }
        });
    }
}

/// How many sums [`Ppo::update`] keeps on the device (policy loss, value loss, entropy,
/// KL, old KL, clip fraction, grad norm), and the KL's place among them.
const SUMS: usize = 7;
const KL: i64 = 3;

/// Losses and diagnostics of one update (means over its minibatch steps).
#[derive(Clone, Debug, Default)]
pub struct UpdateStats {
    pub policy_loss: f64,
    pub value_loss: f64,
    pub entropy: f64,
    pub approx_kl: f64,
    pub old_approx_kl: f64,
    pub clipfrac: f64,
    pub explained_variance: f64,
    pub grad_norm: f64,
    pub lr: f64,
    /// Epochs run (fewer than configured after a target-KL stop).
    pub epochs: usize,
    /// Seconds spent stepping environments, in the policy during the rollout, and learning.
    pub env_s: f64,
    pub inference_s: f64,
    pub learn_s: f64,
}

/// The learner: the policy, its optimizer, the rollout storage and what carries over from
/// one rollout to the next.
pub struct Ppo {
    pub cfg: TrainConfig,
    pub policy: Policy,
    pub adam: Adam,
    pub rng: ChaCha8Rng,
    n: usize,
    obs_dim: usize,
    n_actions: usize,
    // Rollout storage, step-major (`[t * n + i]`).
    obs: Vec<f32>,
    first: Vec<f32>,
    actions: Vec<i64>,
    logp: Vec<f32>,
    values: Vec<f32>,
    rewards: Vec<f32>,
    terminated: Vec<u8>,
    truncated: Vec<u8>,
    final_values: Vec<f32>,
    chunk_states: Vec<LstmState>,
    // Carried between rollouts: the current observations, which of them begin an
    // episode, and the LSTM state before reading them.
    pub next_obs: Vec<f32>,
    pub next_first: Vec<f32>,
    pub state: LstmState,
    step_actions: Vec<u8>,
    step_logp: Vec<f32>,
    /// Running observation statistics (`train.norm_obs`); part of the policy.
    pub obs_norm: Option<ObsNorm>,
    /// The current step's observations as the policy reads them (normalized).
    step_obs: Vec<f32>,
    /// Reads of the learner's tensors to the host since [`Ppo::take_syncs`]: each waits
    /// for the device when the learner is on a GPU (counted on every device alike).
    syncs: u64,
    /// The latest rollout's observations, actions and log-probabilities when it ran in
    /// place on the device ([`Ppo::rollout`] on [`DeviceSteps`]); `None` after a host
    /// rollout (they are in `obs`, `actions`, `logp`).
    on_device: Option<DeviceRollout>,
}

/// What an in-place rollout leaves on the device for the update.
struct DeviceRollout {
    /// `[T, N, obs_dim]` f32, normalized as the policy read them.
    obs: Tensor,
    /// `[T, N]` i64.
    actions: Tensor,
    /// `[T, N]` f32.
    logp: Tensor,
}

impl Ppo {
    /// A learner for `env`'s sizes; reads the environments' first observations.
    pub fn new(cfg: &TrainConfig, env: &mut dyn VecEnv, mut policy: Policy) -> Result<Ppo> {
        let (n, d, a) = (env.num_envs(), env.obs_dim(), env.num_actions());
        let t = cfg.rollout_steps;
        // The rollout's T × N records (observations, actions, log-probabilities, values,
        // rewards, flags) on the host, and at least as much again for the update's tensors.
        crate::util::mem::check(
            &format!("a rollout of {t} steps × {n} environments ({d} observations each)"),
            crate::util::mem::product(&[t, n], 2 * (d * 4 + 6 * 4 + 3)),
            "lower the rollout length or the number of environments (--steps, --envs, train.rollout_steps, train.num_envs)",
        )?;
        policy.set_lstm_kind(match cfg.precision {
            Precision::F32 => Kind::Float,
            Precision::Bf16 => Kind::BFloat16,
        });
        let mut next_obs = vec![0.0; n * d];
        env.observe(&mut next_obs)?;
        let adam = Adam::new(&policy, cfg.adam_eps);
        let state = LstmState::zeros(n, cfg.hidden, policy.device());
        Ok(Ppo {
            cfg: cfg.clone(),
            adam,
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            n,
            obs_dim: d,
            n_actions: a,
            // Sized by the first host rollout (an in-place rollout keeps them on the device).
            obs: Vec::new(),
            first: vec![0.0; t * n],
            actions: vec![0; t * n],
            logp: vec![0.0; t * n],
            values: vec![0.0; t * n],
            rewards: vec![0.0; t * n],
            terminated: vec![0; t * n],
            truncated: vec![0; t * n],
            final_values: vec![0.0; t * n],
            chunk_states: Vec::new(),
            next_obs,
            next_first: vec![1.0; n],
            state,
            step_actions: vec![0; n],
            step_logp: vec![0.0; n * a],
            obs_norm: cfg.norm_obs.then(|| ObsNorm::new(d, cfg.obs_clip as f32)),
            step_obs: vec![0.0; n * d],
            on_device: None,
            syncs: 0,
            policy,
        })
    }

    fn device(&self) -> Device {
        self.policy.device()
    }

    /// The host reads of the learner's tensors since the last call (each a wait for the
    /// device on a GPU).
    pub fn take_syncs(&mut self) -> u64 {
        std::mem::take(&mut self.syncs)
    }

    fn tensor(&self, data: &[f32], shape: &[i64]) -> Tensor {
        Tensor::from_slice(data)
            .view(shape)
            .to_device(self.device())
    }

    /// Collects one rollout; returns (env seconds, inference seconds). Environments that
    /// live on the learner's device ([`VecEnv::on_device`]) are stepped in place.
    pub fn rollout(&mut self, env: &mut dyn VecEnv) -> Result<(f64, f64)> {
        let truncates = env.can_truncate();
        if let Some(steps) = env.on_device() {
            return self.rollout_in_place(steps, truncates);
        }
        let (n, d, a) = (self.n, self.obs_dim, self.n_actions);
        let bptt = self.cfg.bptt_len();
        let (mut env_s, mut inf_s) = (0.0, 0.0);
        self.chunk_states.clear();
        self.on_device = None;
        self.obs.resize(self.cfg.rollout_steps * n * d, 0.0);
        for t in 0..self.cfg.rollout_steps {
            let clock = Instant::now();
            if t % bptt == 0 {
                self.chunk_states.push(self.state.copy());
            }
            if let Some(norm) = &mut self.obs_norm {
                norm.update(&self.next_obs);
            }
            self.normalize_next_obs();
            let obs = self.tensor(&self.step_obs, &[n as i64, d as i64]);
            let (out, next_state) =
                tch::no_grad(|| self.policy.step(&obs, &self.next_first, &self.state));
            let row = t * n;
            self.syncs += 2;
            out.values
                .to_device(Device::Cpu)
                .copy_data(&mut self.values[row..row + n], n);
            out.log_probs
                .to_device(Device::Cpu)
                .copy_data(&mut self.step_logp, n * a);
            for i in 0..n {
                let lp = &self.step_logp[i * a..(i + 1) * a];
                let pick = sample(lp, self.rng.random());
                self.step_actions[i] = pick as u8;
                self.actions[row + i] = pick as i64;
                self.logp[row + i] = lp[pick];
            }
            self.obs[row * d..(row + n) * d].copy_from_slice(&self.step_obs);
            self.first[row..row + n].copy_from_slice(&self.next_first);
            inf_s += clock.elapsed().as_secs_f64();

            let clock = Instant::now();
            env.step(
                &self.step_actions,
                &mut StepOut {
                    obs: &mut self.next_obs,
                    rewards: &mut self.rewards[row..row + n],
                    terminated: &mut self.terminated[row..row + n],
                    truncated: &mut self.truncated[row..row + n],
                },
            )?;
            env_s += clock.elapsed().as_secs_f64();

            let clock = Instant::now();
            let cut: Vec<i64> = (0..n)
                .filter(|&i| self.truncated[row + i] != 0 && self.terminated[row + i] == 0)
                .map(|i| i as i64)
                .collect();
            self.final_values[row..row + n].fill(0.0);
            if !cut.is_empty() {
                let mut rows: Vec<f32> = cut
                    .iter()
                    .flat_map(|&i| {
                        env.final_obs()[i as usize * d..(i as usize + 1) * d]
                            .iter()
                            .copied()
                    })
                    .collect();
                if let Some(norm) = &self.obs_norm {
                    let raw = rows.clone();
                    norm.normalize(&raw, &mut rows);
                }
                let idx = Tensor::from_slice(&cut).to_device(self.device());
                let last = self.tensor(&rows, &[cut.len() as i64, d as i64]);
                let zero = vec![0.0; cut.len()];
                let (v, _) =
                    tch::no_grad(|| self.policy.step(&last, &zero, &next_state.select(&idx)));
                let mut vals = vec![0f32; cut.len()];
                self.syncs += 1;
                v.values
                    .to_device(Device::Cpu)
                    .copy_data(&mut vals, cut.len());
                for (&i, v) in cut.iter().zip(vals) {
                    self.final_values[row + i as usize] = v;
                }
            }
            for i in 0..n {
                let ended = self.terminated[row + i] | self.truncated[row + i];
                self.next_first[i] = if ended != 0 { 1.0 } else { 0.0 };
            }
            self.state = next_state;
            inf_s += clock.elapsed().as_secs_f64();
        }
        Ok((env_s, inf_s))
    }

    /// [`Ppo::rollout`] with the environments' buffers on the device ([`DeviceSteps`]):
    /// the same steps as the host rollout (the same uniform draws from the trainer's RNG,
    /// inverse-CDF sampling, observation statistics, truncation bootstrap), as tensor ops
    /// that never copy observations, actions or rewards through host memory. What the
    /// update and the checkpoints read on the host (rewards, values, flags, the carried
    /// observations and statistics) comes down once, at the end. Where environments can
    /// truncate episodes (`env.max_episode_steps` > 0), one host synchronization per step
    /// remains: whether any episode was truncated (rare), which decides whether the
    /// bootstrap values are computed; otherwise none. On a GPU, work runs asynchronously,
    /// so the env seconds returned are those spent submitting steps (and topping queues
    /// up); the total is exact, as the downloads at the end wait for everything.
    fn rollout_in_place(
        &mut self,
        envs: &mut dyn DeviceSteps,
        truncates: bool,
    ) -> Result<(f64, f64)> {
        let (n, d) = (self.n as i64, self.obs_dim as i64);
        let t_len = self.cfg.rollout_steps;
        let bptt = self.cfg.bptt_len();
        let dev = self.device();
        let clock = Instant::now();
        self.chunk_states.clear();
        let mut norm = self.obs_norm.as_ref().map(|o| DeviceNorm::upload(o, dev));
        // The host rollout draws u for step t, env i in this order.
        let u: Vec<f32> = (0..t_len * self.n).map(|_| self.rng.random()).collect();
        let u = Tensor::from_slice(&u)
            .view([t_len as i64, n])
            .to_device(dev);
        let f32_tn = || Tensor::zeros([t_len as i64, n], (Kind::Float, dev));
        let store = DeviceRollout {
            obs: Tensor::zeros([t_len as i64, n, d], (Kind::Float, dev)),
            actions: Tensor::zeros([t_len as i64, n], (Kind::Int64, dev)),
            logp: f32_tn(),
        };
        let (values, rewards, final_values, first_s) = (f32_tn(), f32_tn(), f32_tn(), f32_tn());
        let flags = Tensor::zeros([t_len as i64, n], (Kind::Int, dev));
        let mut first = Tensor::from_slice(&self.next_first).to_device(dev);
        let views = envs.views();
        // The carried observations (a resumed run's come from its checkpoint).
        views.obs.shallow_clone().copy_(
            &Tensor::from_slice(&self.next_obs)
                .view([n, d])
                .to_device(dev),
        );
        let mut env_s = 0.0;
        for t in 0..t_len {
            let ti = t as i64;
            if t % bptt == 0 {
                self.chunk_states.push(self.state.copy());
            }
            let views = envs.views();
            let x = match &mut norm {
                Some(nm) => {
                    nm.update(&views.obs);
                    nm.normalize(&views.obs)
                }
                None => views.obs.copy(),
            };
            let keep = first.ones_like() - &first;
            let (out, next_state) =
                tch::no_grad(|| self.policy.step_masked(&x, &keep, &self.state));
            let pick = device_env::sample(&out.log_probs, &u.get(ti));
            store.obs.get(ti).copy_(&x);
            store.actions.get(ti).copy_(&pick);
            store.logp.get(ti).copy_(
                &out.log_probs
                    .gather(-1, &pick.unsqueeze(-1), false)
                    .squeeze_dim(-1),
            );
            values.get(ti).copy_(&out.values);
            first_s.get(ti).copy_(&first);
            views
                .actions
                .shallow_clone()
                .copy_(&pick.to_kind(Kind::Uint8));
            let step_clock = Instant::now();
            envs.step_in_place()?;
            env_s += step_clock.elapsed().as_secs_f64();
            let views = envs.views();
            let f = views.flags.shallow_clone();
            rewards.get(ti).copy_(&views.rewards);
            flags.get(ti).copy_(&f);
            let cut = f.bitwise_and(3).eq(2); // truncated, not terminated
            // Environments that cannot truncate cost no read here.
            if truncates && {
                self.syncs += 1;
                cut.any().int64_value(&[]) != 0
            } {
                let idx = cut.nonzero().squeeze_dim(-1);
                let last = views.final_obs.index_select(0, &idx);
                let last = match &norm {
                    Some(nm) => nm.normalize(&last),
                    None => last,
                };
                let keep_all = Tensor::ones([idx.size()[0]], (Kind::Float, dev));
                let (v, _) = tch::no_grad(|| {
                    self.policy
                        .step_masked(&last, &keep_all, &next_state.select(&idx))
                });
                let _ = final_values.get(ti).index_copy_(0, &idx, &v.values);
            }
            first = f.ne(0).to_kind(Kind::Float);
            self.state = next_state;
        }
        // Down once: what GAE, the logs and the checkpoints read on the host.
        let tn = t_len * self.n;
        let host_f32 = |x: &Tensor, dst: &mut Vec<f32>| {
            let len = dst.len();
            x.to_device(Device::Cpu).view([-1]).copy_data(dst, len)
        };
        // values, rewards, final values, first flags, flags, the carried observations
        // and first flags, and the observation statistics (mean, variance).
        self.syncs += 7 + 2 * u64::from(norm.is_some());
        host_f32(&values, &mut self.values);
        host_f32(&rewards, &mut self.rewards);
        host_f32(&final_values, &mut self.final_values);
        host_f32(&first_s, &mut self.first);
        let mut fl = vec![0i32; tn];
        flags
            .to_device(Device::Cpu)
            .view([-1])
            .copy_data(&mut fl, tn);
        for (k, f) in fl.iter().enumerate() {
            self.terminated[k] = (f & 1) as u8;
            self.truncated[k] = (f >> 1 & 1) as u8;
        }
        host_f32(&envs.views().obs, &mut self.next_obs);
        host_f32(&first, &mut self.next_first);
        if let (Some(nm), Some(host)) = (&norm, &mut self.obs_norm) {
            nm.download(host);
        }
        self.on_device = Some(store);
        let total = clock.elapsed().as_secs_f64();
        Ok((env_s, total - env_s))
    }

    /// `step_obs` ← the current observations as the policy reads them.
    fn normalize_next_obs(&mut self) {
        match &self.obs_norm {
            Some(norm) => norm.normalize(&self.next_obs, &mut self.step_obs),
            None => self.step_obs.copy_from_slice(&self.next_obs),
        }
    }

    /// The learning rate of update `update` (1-based) of `updates`.
    pub fn lr_at(&self, update: u64, updates: u64) -> f64 {
        if self.cfg.anneal_lr {
            let frac = 1.0 - (update - 1) as f64 / updates as f64;
            frac * self.cfg.learning_rate
        } else {
            self.cfg.learning_rate
        }
    }

    /// Learns from the last rollout.
    pub fn update(&mut self, lr: f64) -> UpdateStats {
        let clock = Instant::now();
        let cfg = self.cfg.clone();
        let (n, d, t_len) = (self.n, self.obs_dim, cfg.rollout_steps);
        let dev = self.device();

        // 2. Advantages, bootstrapped from the value of the state after the rollout.
        self.normalize_next_obs();
        let obs_next = self.tensor(&self.step_obs, &[n as i64, d as i64]);
        let (boot, _) = tch::no_grad(|| self.policy.step(&obs_next, &self.next_first, &self.state));
        let mut next_value = vec![0f32; n];
        self.syncs += 1;
        boot.values
            .to_device(Device::Cpu)
            .copy_data(&mut next_value, n);
        let g = gae(&GaeInput {
            n,
            rewards: &self.rewards,
            values: &self.values,
            terminated: &self.terminated,
            truncated: &self.truncated,
            final_values: &self.final_values,
            next_value: &next_value,
            gamma: cfg.gamma as f32,
            lambda: cfg.gae_lambda as f32,
        });

        let (t, ni) = (t_len as i64, n as i64);
        let (obs, actions, old_logp) = match &self.on_device {
            Some(r) => (
                r.obs.shallow_clone(),
                r.actions.shallow_clone(),
                r.logp.shallow_clone(),
            ),
            None => (
                self.tensor(&self.obs, &[t, ni, d as i64]),
                Tensor::from_slice(&self.actions)
                    .view([t, ni])
                    .to_device(dev),
                self.tensor(&self.logp, &[t, ni]),
            ),
        };
        let old_values = self.tensor(&self.values, &[t, ni]);
        let advantages = self.tensor(&g.advantages, &[t, ni]);
        let returns = self.tensor(&g.returns, &[t, ni]);

        // 3. Epochs over minibatches of whole environment sequences, chunk by chunk.
        let mb_envs = n / cfg.minibatches;
        let bptt = cfg.bptt_len() as i64;
        let mut envs: Vec<i64> = (0..ni).collect();
        let mut stats = UpdateStats {
            lr,
            ..UpdateStats::default()
        };
        // The minibatches' losses and diagnostics are summed on the device, in f64, in
        // the order of `SUMS`, and read once at the end (and the KL once per epoch when
        // `target_kl` is on): no read per minibatch.
        let mut sums = Tensor::zeros([SUMS as i64], (Kind::Double, dev));
        let mut steps = 0.0;
        for epoch in 0..cfg.epochs {
            envs.shuffle(&mut self.rng);
            let mut epoch_kl = Tensor::zeros([], (Kind::Double, dev));
            let mut epoch_steps = 0.0;
            for mb in envs.chunks(mb_envs) {
                let idx = Tensor::from_slice(mb).to_device(dev);
                for (c, start) in self.chunk_states.iter().zip((0..t).step_by(bptt as usize)) {
                    let pick = |x: &Tensor| x.narrow(0, start, bptt).index_select(1, &idx);
                    let all_first = &self.first;
                    let mb_first: Vec<f32> = (start..start + bptt)
                        .flat_map(|s| {
                            mb.iter()
                                .map(move |&i| all_first[s as usize * n + i as usize])
                        })
                        .collect();
                    let (out, _) = self
                        .policy
                        .sequence(&pick(&obs), &mb_first, &c.select(&idx));
                    let mb_actions = pick(&actions);
                    let new_logp = out
                        .log_probs
                        .gather(-1, &mb_actions.unsqueeze(-1), false)
                        .squeeze_dim(-1);
                    let entropy = -(out.log_probs.exp() * &out.log_probs).sum_dim_intlist(
                        -1,
                        false,
                        Kind::Float,
                    );
                    let logratio = &new_logp - pick(&old_logp);
                    let ratio = logratio.exp();
                    let (kl, old_kl, clipfrac) = tch::no_grad(|| {
                        let kl = ((&ratio - 1.0) - &logratio).mean(Kind::Float);
                        let old_kl = (-&logratio).mean(Kind::Float);
                        let cf = (&ratio - 1.0)
                            .abs()
                            .gt(cfg.clip_coef)
                            .to_kind(Kind::Float)
                            .mean(Kind::Float);
                        (kl, old_kl, cf)
                    });
                    let mut adv = pick(&advantages);
                    if cfg.norm_adv {
                        adv = (&adv - adv.mean(Kind::Float)) / (adv.std(true) + 1e-8);
                    }
                    let pg1 = -&adv * &ratio;
                    let pg2 = -&adv * ratio.clamp(1.0 - cfg.clip_coef, 1.0 + cfg.clip_coef);
                    let pg_loss = pg1.max_other(&pg2).mean(Kind::Float);
                    let mb_returns = pick(&returns);
                    let v_loss = if cfg.clip_vloss {
                        let old_v = pick(&old_values);
                        let unclipped = (&out.values - &mb_returns).square();
                        let clipped_v =
                            &old_v + (&out.values - &old_v).clamp(-cfg.clip_coef, cfg.clip_coef);
                        let clipped = (clipped_v - &mb_returns).square();
                        unclipped.max_other(&clipped).mean(Kind::Float) * 0.5
                    } else {
                        (&out.values - &mb_returns).square().mean(Kind::Float) * 0.5
                    };
                    let ent = entropy.mean(Kind::Float);
                    let loss = &pg_loss - &ent * cfg.ent_coef + &v_loss * cfg.vf_coef;
                    self.adam.zero_grad();
                    loss.backward();
                    let grad_norm = self.adam.clip_grad_norm(cfg.max_grad_norm);
                    self.adam.apply(lr);

                    tch::no_grad(|| {
                        let this = Tensor::stack(
                            &[
                                pg_loss.detach(),
                                v_loss.detach(),
                                ent.detach(),
                                kl,
                                old_kl,
                                clipfrac,
                                grad_norm,
                            ],
                            0,
                        );
                        let this = this.to_kind(Kind::Double);
                        epoch_kl += this.get(KL);
                        sums += this;
                    });
                    steps += 1.0;
                    epoch_steps += 1.0;
                }
            }
            stats.epochs = epoch + 1;
            if cfg.target_kl > 0.0 {
                self.syncs += 1;
                if epoch_kl.double_value(&[]) / epoch_steps > cfg.target_kl {
                    break;
                }
            }
        }
        let mut means = [0f64; SUMS];
        self.syncs += 1;
        sums.to_device(Device::Cpu).copy_data(&mut means, SUMS);
        [
            stats.policy_loss,
            stats.value_loss,
            stats.entropy,
            stats.approx_kl,
            stats.old_approx_kl,
            stats.clipfrac,
            stats.grad_norm,
        ] = means.map(|x| x / steps);
        stats.explained_variance = explained_variance(&self.values, &g.returns);
        stats.learn_s = clock.elapsed().as_secs_f64();
        stats
    }
}

/// `1 − Var(returns − values) / Var(returns)` (NaN when the returns do not vary).
pub fn explained_variance(values: &[f32], returns: &[f32]) -> f64 {
    let n = returns.len() as f64;
    let mean = |x: &mut dyn Iterator<Item = f64>| x.sum::<f64>() / n;
    let var = |x: &dyn Fn(usize) -> f64| {
        let m = mean(&mut (0..returns.len()).map(x));
        (0..returns.len()).map(|i| (x(i) - m).powi(2)).sum::<f64>() / n
    };
    let var_y = var(&|i| returns[i] as f64);
    if var_y == 0.0 {
        return f64::NAN;
    }
    1.0 - var(&|i| (returns[i] - values[i]) as f64) / var_y
}
