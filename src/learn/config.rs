//! The `[train]` section: every knob of the PPO-LSTM learner, with CleanRL-like defaults
//! (`ppo_atari_lstm.py`), checked as a whole before anything is allocated.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// What the agent trains on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum TrainEnv {
    /// The market environments over a day cache (`--cache`).
    Market,
    /// One-step bandit: one arm pays; solvable without memory.
    SanityBandit,
    /// A cue shown once must be recalled several steps later: solvable only with memory.
    SanityMemory,
}

impl TrainEnv {
    pub fn name(self) -> &'static str {
        match self {
            TrainEnv::Market => "market",
            TrainEnv::SanityBandit => "sanity-bandit",
            TrainEnv::SanityMemory => "sanity-memory",
        }
    }
}

/// Where the policy runs and learns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    Cpu,
    Cuda,
    /// CUDA when a GPU is usable, else the CPU.
    Auto,
}

/// The number format the LSTM computes in while training.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// f32 throughout.
    #[default]
    F32,
    /// The LSTM's matrix products in bfloat16 (weights, inputs and states cast per call;
    /// the weights, their gradients, Adam and everything around the LSTM stay f32).
    /// Faster on CPUs with AVX512_BF16 or AMX; evaluation and bundles stay f32.
    Bf16,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Environment trained on (`--env` overrides).
    pub env: TrainEnv,
    /// Device of the policy and the learner (`--device` overrides).
    pub device: DeviceChoice,
    /// Engine stepping the market environments (`--backend` overrides): with `cuda` and a
    /// CUDA learner the observations, rewards, flags and actions never leave the GPU.
    pub backend: crate::env::Backend,
    /// GPU backends: days held on the device at once; 0 = as many as fit (twice the days
    /// of the first draws plus 16, as far as the largest buffer allows). A universe with
    /// more days than slots is drawn day-major (a window of days that moves through all
    /// of them).
    pub day_slots: usize,
    /// Seed of the weights, the action sampling and the minibatch order.
    pub seed: u64,
    /// CPU threads for the environments and libtorch; 0 = every core.
    pub threads: usize,
    /// Environment steps to train for (over all environments); rounded up to whole
    /// updates of `num_envs × rollout_steps`.
    pub total_steps: u64,
    /// Environments stepped together.
    pub num_envs: usize,
    /// Steps per environment per rollout (T).
    pub rollout_steps: usize,
    /// Widths of the observation encoder's layers (tanh), before the LSTM.
    pub encoder: Vec<usize>,
    /// LSTM hidden size.
    pub hidden: usize,
    /// The LSTM's number format while training (`f32` or `bf16`).
    pub precision: Precision,
    /// Normalize observations by their running mean and variance (saved with the policy).
    pub norm_obs: bool,
    /// Clip normalized observations to ±this.
    pub obs_clip: f64,
    /// Adam step size at the start.
    pub learning_rate: f64,
    /// Anneal the step size linearly to 0 over the run.
    pub anneal_lr: bool,
    /// Adam's epsilon.
    pub adam_eps: f64,
    /// Discount.
    pub gamma: f64,
    /// GAE lambda.
    pub gae_lambda: f64,
    /// Minibatches per epoch, split by environment (must divide num_envs).
    pub minibatches: usize,
    /// Passes over each rollout.
    pub epochs: usize,
    /// Truncated-BPTT length in steps (must divide rollout_steps); 0 = the whole rollout.
    pub bptt: usize,
    /// Normalize advantages per minibatch.
    pub norm_adv: bool,
    /// PPO clip range of the probability ratio.
    pub clip_coef: f64,
    /// Clip the value loss around the rollout's values too.
    pub clip_vloss: bool,
    /// Entropy bonus weight.
    pub ent_coef: f64,
    /// Value loss weight.
    pub vf_coef: f64,
    /// Global gradient-norm clip.
    pub max_grad_norm: f64,
    /// Stop an update's epochs early when the approximate KL exceeds this; 0 = off.
    pub target_kl: f64,
    /// Checkpoint every K updates (and always at the end and on Ctrl-C); 0 = only then.
    pub checkpoint_every: u64,
    /// Checkpoints kept in the run dir (the newest ones).
    pub keep_checkpoints: usize,
    /// Market: symbols trained on; empty = every symbol in the cache.
    pub symbols: Vec<String>,
    /// Market: first day trained on (inclusive); unset = the cache's first.
    pub from: Option<NaiveDate>,
    /// Market: last day trained on (inclusive); unset = the cache's last.
    pub to: Option<NaiveDate>,
    /// `sanity-bandit`: number of arms.
    pub bandit_arms: usize,
    /// `sanity-memory`: steps between the cue and the question.
    pub memory_delay: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            env: TrainEnv::Market,
            device: DeviceChoice::Auto,
            backend: crate::env::Backend::Cpu,
            day_slots: 0,
            seed: 1,
            threads: 0,
            total_steps: 2_000_000,
            num_envs: 1024,
            rollout_steps: 64,
            encoder: vec![128],
            hidden: 128,
            precision: Precision::F32,
            norm_obs: true,
            obs_clip: 10.0,
            learning_rate: 2.5e-4,
            anneal_lr: true,
            adam_eps: 1e-5,
            gamma: 0.99,
            gae_lambda: 0.95,
            minibatches: 4,
            epochs: 4,
            bptt: 0,
            norm_adv: true,
            clip_coef: 0.1,
            clip_vloss: true,
            ent_coef: 0.01,
            vf_coef: 0.5,
            max_grad_norm: 0.5,
            target_kl: 0.0,
            checkpoint_every: 50,
            keep_checkpoints: 2,
            symbols: Vec::new(),
            from: None,
            to: None,
            bandit_arms: 4,
            memory_delay: 8,
        }
    }
}

impl TrainConfig {
    /// Steps per update (`num_envs × rollout_steps`).
    pub fn batch_steps(&self) -> u64 {
        (self.num_envs * self.rollout_steps) as u64
    }

    /// Updates the run takes.
    pub fn updates(&self) -> u64 {
        self.total_steps.div_ceil(self.batch_steps()).max(1)
    }

    /// Truncated-BPTT length in steps.
    pub fn bptt_len(&self) -> usize {
        if self.bptt == 0 {
            self.rollout_steps
        } else {
            self.bptt
        }
    }

    /// Checks what types cannot; the message names the key and the fix.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("num_envs", self.num_envs),
            ("rollout_steps", self.rollout_steps),
            ("hidden", self.hidden),
            ("minibatches", self.minibatches),
            ("epochs", self.epochs),
            ("keep_checkpoints", self.keep_checkpoints),
            ("bandit_arms", self.bandit_arms),
            ("memory_delay", self.memory_delay),
        ];
        if let Some((k, v)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("train.{k} = {v}: must be at least 1"));
        }
        if self.bandit_arms < 2 || self.bandit_arms > 255 {
            return Err(format!(
                "train.bandit_arms = {}: must be between 2 and 255",
                self.bandit_arms
            ));
        }
        if self.total_steps == 0 {
            return Err("train.total_steps = 0: must be at least 1".into());
        }
        if self.encoder.contains(&0) {
            return Err(format!(
                "train.encoder = {:?}: every layer needs at least 1 unit",
                self.encoder
            ));
        }
        if !self.num_envs.is_multiple_of(self.minibatches) {
            return Err(format!(
                "train.minibatches = {} does not divide train.num_envs = {}: minibatches split the batch by environment, so pick a divisor",
                self.minibatches, self.num_envs
            ));
        }
        if self.bptt > self.rollout_steps {
            return Err(format!(
                "train.bptt = {} is longer than train.rollout_steps = {}: truncated BPTT runs within a rollout",
                self.bptt, self.rollout_steps
            ));
        }
        if !self.rollout_steps.is_multiple_of(self.bptt_len()) {
            return Err(format!(
                "train.bptt = {} does not divide train.rollout_steps = {}",
                self.bptt, self.rollout_steps
            ));
        }
        let unit = [("gamma", self.gamma), ("gae_lambda", self.gae_lambda)];
        if let Some((k, v)) = unit.iter().find(|(_, v)| !(0.0..=1.0).contains(v)) {
            return Err(format!("train.{k} = {v}: must be within [0, 1]"));
        }
        let pos = [
            ("learning_rate", self.learning_rate),
            ("adam_eps", self.adam_eps),
            ("clip_coef", self.clip_coef),
            ("obs_clip", self.obs_clip),
            ("max_grad_norm", self.max_grad_norm),
        ];
        if let Some((k, v)) = pos.iter().find(|(_, v)| !(v.is_finite() && *v > 0.0)) {
            return Err(format!("train.{k} = {v}: must be a positive number"));
        }
        let nonneg = [
            ("ent_coef", self.ent_coef),
            ("vf_coef", self.vf_coef),
            ("target_kl", self.target_kl),
        ];
        if let Some((k, v)) = nonneg.iter().find(|(_, v)| !(v.is_finite() && *v >= 0.0)) {
            return Err(format!("train.{k} = {v}: must be a non-negative number"));
        }
        if self.backend != crate::env::Backend::Cpu && self.env != TrainEnv::Market {
            return Err(format!(
                "train.backend = {} steps the market environments; train.env = {} runs on the CPU: set train.backend = \"cpu\"",
                self.backend.name(),
                self.env.name()
            ));
        }
        if let (Some(f), Some(t)) = (self.from, self.to)
            && f > t
        {
            return Err(format!("train.from = {f} is after train.to = {t}"));
        }
        Ok(())
    }
}
