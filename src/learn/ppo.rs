//! Recurrent PPO, top to bottom (CleanRL's `ppo_atari_lstm.py` is the model).
//!
//! One update = one rollout of `T` steps of `N` environments, then `epochs` passes over it:
//!
//! 1. **Rollout** ([`Ppo::rollout`]), one path over `[T, N, …]` tensors on the learner's
//!    device for every environment: at each step the policy reads the observations (with
//!    the LSTM state zeroed for environments whose episode just began), an action is
//!    sampled from its categorical distribution with the trainer's seeded RNG, and the
//!    environments step (in place on the device, or on the host with their outputs copied
//!    up). The LSTM state is stored at the start of every truncated-BPTT chunk. When an
//!    episode is truncated by a time limit, the value of the state it was cut off in is
//!    computed right away (with the pre-reset LSTM state) so that GAE can bootstrap from
//!    it.
//! 2. **Advantages.** GAE(γ, λ) ([`super::gae`]), on the device: terminations cut the
//!    future, truncations bootstrap from that value, and the value of the state after the
//!    rollout closes it.
//! 3. **Epochs.** Environments are shuffled and split into minibatches, so each sequence
//!    stays whole; each minibatch runs its sequences chunk by chunk (truncated BPTT) from
//!    the stored states, with clipped policy loss, (optionally clipped) value loss and an
//!    entropy bonus, then a global grad-norm clip and an Adam step. The epochs stop early
//!    when an epoch's mean approximate KL passes `target_kl` (checked after every epoch
//!    but the last).
//!
//! **Reads to the host** ([`Ppo::take_syncs`], `bench train`'s `syncs_per_update`): one
//! per rollout (the episode-start flags, which the update packs its sequences with), one
//! per update (its statistics), one per epoch but the last with `target_kl` > 0, and what
//! a checkpoint takes ([`Ppo::sync_host`]). Host environments also read each step's
//! actions (they step on the host); environments stepped in place on the device do not.
//!
//! Everything random comes from seeded ChaCha streams (the trainer's for actions and
//! minibatch order, the policy's own for its initial weights; libtorch's global generator
//! is never used), so a checkpoint holding the RNG position, the weights, Adam's moments,
//! the observation statistics, the carried LSTM state and the environments resumes exactly.

use super::config::{Precision, TrainConfig};
use super::device_env::{self, DeviceNorm, HostSteps};
use super::gae::{GaeTensors, gae_tensors};
use super::normalize::ObsNorm;
use super::policy::{LstmState, Policy};
use super::vec_env::DeviceSteps;
use super::vec_env::VecEnv;
use crate::error::Result;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// Adam (Kingma & Ba), with PyTorch's update formula, its moments kept here so that
/// checkpoints can hold them. It works on the policy's one parameter buffer
/// ([`Policy::flat`]) and moments of the same layout, so a step is a few element-wise
/// kernels over the whole model (what libtorch's fused and foreach Adam do) instead of a
/// few per parameter; `m` and `v` are per-parameter views of those moments (for
/// checkpoints, by name).
pub struct Adam {
    /// The parameters, by name (sorted).
    pub params: Vec<(String, Tensor)>,
    pub m: Vec<Tensor>,
    pub v: Vec<Tensor>,
    pub step: u64,
    pub eps: f64,
    /// The policy's parameter buffer and the moments in its layout.
    flat: Tensor,
    flat_m: Tensor,
    flat_v: Tensor,
    /// Indices into `params` in buffer order (to gather the gradients in that order).
    in_buffer_order: Vec<usize>,
}

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;

impl Adam {
    pub fn new(policy: &Policy, eps: f64) -> Adam {
        let params = policy.named_parameters();
        let flat = policy.flat().shallow_clone();
        let (flat_m, flat_v) = (flat.zeros_like(), flat.zeros_like());
        let offsets: Vec<i64> = params
            .iter()
            .map(|(n, _)| {
                policy
                    .offset(n)
                    .expect("every parameter lies in the policy's buffer")
            })
            .collect();
        let view = |buf: &Tensor, k: usize| {
            let p = &params[k].1;
            buf.narrow(0, offsets[k], p.numel() as i64)
                .view(p.size().as_slice())
        };
        let m = (0..params.len()).map(|k| view(&flat_m, k)).collect();
        let v = (0..params.len()).map(|k| view(&flat_v, k)).collect();
        let mut in_buffer_order: Vec<usize> = (0..params.len()).collect();
        in_buffer_order.sort_by_key(|&k| offsets[k]);
        Adam {
            params,
            m,
            v,
            step: 0,
            eps,
            flat,
            flat_m,
            flat_v,
            in_buffer_order,
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

    /// One step of size `lr`, over the whole parameter buffer at once.
    pub fn apply(&mut self, lr: f64) {
        self.step += 1;
        let bc1 = 1.0 - BETA1.powi(self.step as i32);
        let bc2 = 1.0 - BETA2.powi(self.step as i32);
        tch::no_grad(|| {
            let grads: Vec<Tensor> = self
                .in_buffer_order
                .iter()
                .map(|&k| self.params[k].1.grad().view([-1]))
                .collect();
            let g = Tensor::cat(&grads, 0);
            let (m, v) = (&mut self.flat_m, &mut self.flat_v);
            let _ = m.g_mul_scalar_(BETA1);
            let _ = m.g_add_(&(&g * (1.0 - BETA1)));
            let _ = v.g_mul_scalar_(BETA2);
            let _ = v.g_add_(&(&g * &g * (1.0 - BETA2)));
            let denom = v.sqrt() / bc2.sqrt() + self.eps;
            let _ = self.flat.g_sub_(&(&*m / &denom * (lr / bc1)));
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
    chunk_states: Vec<LstmState>,
    /// The host's copy of what carries between rollouts, for checkpoints: the current
    /// observations, which of them begin an episode, and the observation statistics
    /// (`train.norm_obs`; part of the policy). While the learner runs they live on its
    /// device (`Carry`); [`Ppo::sync_host`] brings this copy up to date, and after
    /// writing it (a restored checkpoint) [`Ppo::host_changed`] makes the next rollout
    /// start from it.
    pub next_obs: Vec<f32>,
    pub next_first: Vec<f32>,
    pub obs_norm: Option<ObsNorm>,
    /// The LSTM state before reading the current observations.
    pub state: LstmState,
    /// What carries between rollouts, on the learner's device (`None`: take the host's
    /// copy at the next rollout).
    carry: Option<Carry>,
    /// Host environments' outputs as tensors on the learner's device (environments that
    /// do not step in place, [`VecEnv::on_device`]), made at the first rollout.
    host_steps: Option<HostSteps>,
    /// The latest rollout, what the next update learns from.
    rollout: Option<Rollout>,
    /// Reads of the learner's tensors to the host since [`Ppo::take_syncs`]: each waits
    /// for the device when the learner is on a GPU (counted on every device alike).
    syncs: u64,
}

/// What carries from one rollout to the next, on the learner's device.
struct Carry {
    /// `[N, obs_dim]` f32: the observations the next step reads (raw).
    obs: Tensor,
    /// `[N]` f32: 1.0 where one begins an episode.
    first: Tensor,
    /// The observation statistics (`train.norm_obs`).
    norm: Option<DeviceNorm>,
}

/// One rollout on the learner's device, ready for the update.
struct Rollout {
    /// `[T, N, obs_dim]` f32, normalized as the policy read them.
    obs: Tensor,
    /// `[T, N]` i64.
    actions: Tensor,
    /// `[T, N]` f32: log-probabilities of the actions, values, advantages and returns.
    logp: Tensor,
    values: Tensor,
    advantages: Tensor,
    returns: Tensor,
    /// `T × N` step-major: 1.0 where a step's observation begins an episode. The one read
    /// of a rollout: the update packs its minibatch sequences from it.
    first: Vec<f32>,
}

/// A rollout on the host ([`Ppo::rollout_record`]), `T × N` step-major.
#[derive(Clone, Debug)]
pub struct RolloutRecord {
    pub actions: Vec<i64>,
    pub values: Vec<f32>,
    pub advantages: Vec<f32>,
    pub returns: Vec<f32>,
    pub first: Vec<f32>,
}

impl Ppo {
    /// A learner for `env`'s sizes; reads the environments' first observations.
    pub fn new(cfg: &TrainConfig, env: &mut dyn VecEnv, mut policy: Policy) -> Result<Ppo> {
        let (n, d) = (env.num_envs(), env.obs_dim());
        let t = cfg.rollout_steps;
        // The rollout's T × N records (observations, actions, log-probabilities, values,
        // advantages, returns, rewards, flags), and at least as much again for the
        // update's tensors.
        crate::util::mem::check(
            &format!("a rollout of {t} steps × {n} environments ({d} observations each)"),
            crate::util::mem::product(&[t, n], 2 * (d * 4 + 9 * 4)),
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
            chunk_states: Vec::new(),
            next_obs,
            next_first: vec![1.0; n],
            obs_norm: cfg.norm_obs.then(|| ObsNorm::new(d, cfg.obs_clip as f32)),
            state,
            carry: None,
            host_steps: None,
            rollout: None,
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

    /// Brings the host's copy of what carries between rollouts (`next_obs`, `next_first`,
    /// `obs_norm`) up to date, for a checkpoint: reads them from the device (counted in
    /// [`Ppo::take_syncs`]). Nothing to do before the first rollout.
    pub fn sync_host(&mut self) {
        let Some(c) = &self.carry else {
            return;
        };
        let host_f32 = |x: &Tensor, dst: &mut Vec<f32>| {
            let len = dst.len();
            x.to_device(Device::Cpu).view([-1]).copy_data(dst, len)
        };
        host_f32(&c.obs, &mut self.next_obs);
        host_f32(&c.first, &mut self.next_first);
        self.syncs += 2;
        if let (Some(nm), Some(host)) = (&c.norm, &mut self.obs_norm) {
            nm.download(host);
            self.syncs += 2;
        }
    }

    /// The host's copy of what carries between rollouts was written (a restored
    /// checkpoint): the next rollout starts from it.
    pub fn host_changed(&mut self) {
        self.carry = None;
    }

    /// Collects one rollout on the learner's device; returns (env seconds, inference
    /// seconds).
    ///
    /// One path for every environment: those that live on the learner's device
    /// ([`VecEnv::on_device`], CUDA environments next to a CUDA learner) are stepped in
    /// place; any other ([`HostSteps`]) steps on the host, its outputs copied into tensors
    /// on the learner's device each step and the actions read back. At each step the
    /// observations are folded into the statistics and normalized, the policy reads them
    /// (with the LSTM state zeroed where an episode begins), an action is drawn by
    /// inverse CDF from the trainer's seeded uniforms (drawn up front, step-major), and
    /// the environments step. Where they can truncate episodes (`env.max_episode_steps` >
    /// 0), the value of every environment's final observation under the pre-reset state is
    /// computed each step and kept where an episode was truncated, so nothing is read to
    /// decide it. After the last step, the value of the state after the rollout and GAE
    /// run on the device; the one read is the episode-start flags the update packs its
    /// sequences with. On a GPU, work runs asynchronously, so the env seconds are those
    /// spent submitting steps (and topping queues up); the total is exact, as that read
    /// waits for everything.
    pub fn rollout(&mut self, env: &mut dyn VecEnv) -> Result<(f64, f64)> {
        let truncates = env.can_truncate();
        if let Some(steps) = env.on_device() {
            return self.rollout_on(steps, truncates);
        }
        let mut host = match self.host_steps.take() {
            Some(h) => h,
            None => HostSteps::new(env.num_envs(), env.obs_dim(), self.device()),
        };
        let r = self.rollout_on(&mut host.with(env), truncates);
        self.host_steps = Some(host);
        r
    }

    fn rollout_on(&mut self, envs: &mut dyn DeviceSteps, truncates: bool) -> Result<(f64, f64)> {
        let (n, d) = (self.n as i64, self.obs_dim as i64);
        let t_len = self.cfg.rollout_steps;
        let bptt = self.cfg.bptt_len();
        let dev = self.device();
        let clock = Instant::now();
        self.chunk_states.clear();
        self.rollout = None;
        let mut carry = match self.carry.take() {
            Some(c) => c,
            None => Carry {
                obs: Tensor::from_slice(&self.next_obs)
                    .view([n, d])
                    .to_device(dev),
                first: Tensor::from_slice(&self.next_first).to_device(dev),
                norm: self.obs_norm.as_ref().map(|o| DeviceNorm::upload(o, dev)),
            },
        };
        // The carried observations in the views (they are there already unless the host's
        // copy was restored; one copy either way).
        envs.views().obs.shallow_clone().copy_(&carry.obs);
        let u: Vec<f32> = (0..t_len * self.n).map(|_| self.rng.random()).collect();
        let u = Tensor::from_slice(&u)
            .view([t_len as i64, n])
            .to_device(dev);
        let tn = |kind: Kind| Tensor::zeros([t_len as i64, n], (kind, dev));
        let obs = Tensor::zeros([t_len as i64, n, d], (Kind::Float, dev));
        let (actions, logp) = (tn(Kind::Int64), tn(Kind::Float));
        let (values, rewards, final_values, first_s) = (
            tn(Kind::Float),
            tn(Kind::Float),
            tn(Kind::Float),
            tn(Kind::Float),
        );
        let flags = tn(Kind::Int);
        let mut first = carry.first.shallow_clone();
        let all = Tensor::ones([n], (Kind::Float, dev));
        let mut env_s = 0.0;
        for t in 0..t_len {
            let ti = t as i64;
            if t % bptt == 0 {
                self.chunk_states.push(self.state.copy());
            }
            let views = envs.views();
            let x = match &mut carry.norm {
                Some(nm) => {
                    nm.update(&views.obs);
                    nm.normalize(&views.obs)
                }
                None => views.obs.copy(),
            };
            let keep = &all - &first;
            let (out, next_state) =
                tch::no_grad(|| self.policy.step_masked(&x, &keep, &self.state));
            let pick = device_env::sample(&out.log_probs, &u.get(ti));
            obs.get(ti).copy_(&x);
            actions.get(ti).copy_(&pick);
            logp.get(ti).copy_(
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
            if truncates {
                // Every environment's final observation under its pre-reset state; kept
                // where the step truncated an episode (and did not terminate it).
                let cut = f.bitwise_and(3).eq(2).to_kind(Kind::Float);
                let last = match &carry.norm {
                    Some(nm) => nm.normalize(&views.final_obs),
                    None => views.final_obs.shallow_clone(),
                };
                let (v, _) = tch::no_grad(|| self.policy.step_masked(&last, &all, &next_state));
                final_values.get(ti).copy_(&(v.values * cut));
            }
            first = f.ne(0).to_kind(Kind::Float);
            self.state = next_state;
        }
        let views = envs.views();
        carry.obs.copy_(&views.obs);
        carry.first = first;
        // The value of the state after the rollout (the statistics are not updated with
        // these observations: they are the next rollout's first).
        let x = match &carry.norm {
            Some(nm) => nm.normalize(&carry.obs),
            None => carry.obs.shallow_clone(),
        };
        let keep = &all - &carry.first;
        let (boot, _) = tch::no_grad(|| self.policy.step_masked(&x, &keep, &self.state));
        let (advantages, returns) = tch::no_grad(|| {
            gae_tensors(&GaeTensors {
                rewards: &rewards,
                values: &values,
                flags: &flags,
                final_values: &final_values,
                next_value: &boot.values,
                gamma: self.cfg.gamma as f32,
                lambda: self.cfg.gae_lambda as f32,
            })
        });
        let mut first_host = vec![0f32; t_len * self.n];
        self.syncs += 1;
        first_s
            .to_device(Device::Cpu)
            .view([-1])
            .copy_data(&mut first_host, t_len * self.n);
        self.carry = Some(carry);
        self.rollout = Some(Rollout {
            obs,
            actions,
            logp,
            values,
            advantages,
            returns,
            first: first_host,
        });
        let total = clock.elapsed().as_secs_f64();
        Ok((env_s, total - env_s))
    }

    /// The latest rollout read to the host (`None` before the first rollout and after an
    /// update), for tests and diagnostics: not counted in [`Ppo::take_syncs`].
    pub fn rollout_record(&self) -> Option<RolloutRecord> {
        let r = self.rollout.as_ref()?;
        let f32s = |x: &Tensor| -> Vec<f32> {
            let x = x.to_device(Device::Cpu).view([-1]);
            let len = x.numel();
            let mut v = vec![0f32; len];
            x.copy_data(&mut v, len);
            v
        };
        let actions = r.actions.to_device(Device::Cpu).view([-1]);
        let mut a = vec![0i64; actions.numel()];
        let len = a.len();
        actions.copy_data(&mut a, len);
        Some(RolloutRecord {
            actions: a,
            values: f32s(&r.values),
            advantages: f32s(&r.advantages),
            returns: f32s(&r.returns),
            first: r.first.clone(),
        })
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

    /// Learns from the last rollout: `epochs` passes over minibatches of whole environment
    /// sequences, chunk by chunk. Nothing is read to the host but its statistics, once at
    /// the end, and, with `target_kl` > 0, the epoch's mean KL after every epoch but the
    /// last (which decides whether another runs).
    ///
    /// # Panics
    /// Without a rollout since the last update (a caller's error).
    pub fn update(&mut self, lr: f64) -> UpdateStats {
        let clock = Instant::now();
        let cfg = self.cfg.clone();
        let n = self.n;
        let dev = self.device();
        let r = self
            .rollout
            .take()
            .expect("Ppo::update learns from a rollout: call Ppo::rollout first");
        let (t, ni) = (cfg.rollout_steps as i64, n as i64);
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
            let order = Tensor::from_slice(&envs).to_device(dev);
            let mut epoch_kl = Tensor::zeros([], (Kind::Double, dev));
            let mut epoch_steps = 0.0;
            for (k, mb) in envs.chunks(mb_envs).enumerate() {
                let idx = order.narrow(0, (k * mb_envs) as i64, mb.len() as i64);
                for (c, start) in self.chunk_states.iter().zip((0..t).step_by(bptt as usize)) {
                    let pick = |x: &Tensor| x.narrow(0, start, bptt).index_select(1, &idx);
                    let all_first = &r.first;
                    let mb_first: Vec<f32> = (start..start + bptt)
                        .flat_map(|s| {
                            mb.iter()
                                .map(move |&i| all_first[s as usize * n + i as usize])
                        })
                        .collect();
                    let (out, _) = self
                        .policy
                        .sequence(&pick(&r.obs), &mb_first, &c.select(&idx));
                    let mb_actions = pick(&r.actions);
                    let new_logp = out
                        .log_probs
                        .gather(-1, &mb_actions.unsqueeze(-1), false)
                        .squeeze_dim(-1);
                    let entropy = -(out.log_probs.exp() * &out.log_probs).sum_dim_intlist(
                        -1,
                        false,
                        Kind::Float,
                    );
                    let logratio = &new_logp - pick(&r.logp);
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
                    let mut adv = pick(&r.advantages);
                    if cfg.norm_adv {
                        adv = (&adv - adv.mean(Kind::Float)) / (adv.std(true) + 1e-8);
                    }
                    let pg1 = -&adv * &ratio;
                    let pg2 = -&adv * ratio.clamp(1.0 - cfg.clip_coef, 1.0 + cfg.clip_coef);
                    let pg_loss = pg1.max_other(&pg2).mean(Kind::Float);
                    let mb_returns = pick(&r.returns);
                    let v_loss = if cfg.clip_vloss {
                        let old_v = pick(&r.values);
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
            if cfg.target_kl > 0.0 && epoch + 1 < cfg.epochs {
                self.syncs += 1;
                if epoch_kl.double_value(&[]) / epoch_steps > cfg.target_kl {
                    break;
                }
            }
        }
        let ev = tch::no_grad(|| explained_variance_tensor(&r.values, &r.returns));
        let mut means = [0f64; SUMS + 1];
        self.syncs += 1;
        Tensor::cat(&[sums / steps, ev.view([1])], 0)
            .to_device(Device::Cpu)
            .copy_data(&mut means, SUMS + 1);
        [
            stats.policy_loss,
            stats.value_loss,
            stats.entropy,
            stats.approx_kl,
            stats.old_approx_kl,
            stats.clipfrac,
            stats.grad_norm,
            stats.explained_variance,
        ] = means;
        stats.learn_s = clock.elapsed().as_secs_f64();
        stats
    }
}

/// [`explained_variance`] on the device (f64): `1 − Var(returns − values) / Var(returns)`
/// with population variances, NaN when the returns do not vary.
fn explained_variance_tensor(values: &Tensor, returns: &Tensor) -> Tensor {
    let y = returns.to_kind(Kind::Double).view([-1]);
    let var = |x: &Tensor| (x - x.mean(Kind::Double)).square().mean(Kind::Double);
    let var_y = var(&y);
    let ev: Tensor = 1.0 - var(&(&y - values.to_kind(Kind::Double).view([-1]))) / &var_y;
    ev.where_self(
        &var_y.ne(0.0),
        &Tensor::from(f64::NAN).to_device(y.device()),
    )
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
