//! The learner: a recurrent PPO agent (tch / libtorch) trained on a batch of environments.
//!
//! - [`config`]: the `[train]` section,
//! - [`normalize`]: running observation normalization,
//! - [`network`]: the network's shape, parameter layout and initialization as plain data,
//! - [`policy`]: the LSTM actor-critic (libtorch),
//! - [`gae`]: the advantages,
//! - [`ppo`]: rollouts and updates, one linear file,
//! - [`vec_env`]: what the learner steps (market or sanity environments),
//! - [`device_env`]: the environments as tensors on the learner's device, for its one
//!   rollout path (CUDA environments zero-copy, host environments copied up each step),
//! - [`sanity`]: tasks a correct learner solves in seconds,
//! - [`run`]: a training run (run dir, logs, progress, checkpoints, exact resume),
//! - [`eval`]: a trained policy through the backtest engine, against baselines,
//! - [`checkpoint`]: a checkpoint's policy loaded and run for [`eval`] (libtorch),
//! - [`export`]: a checkpoint as a policy bundle.
//! - [`tensorboard`]: the training scalars as TensorBoard event files.
//!
//! Only [`policy`], [`ppo`], [`run`], [`checkpoint`] and [`export`] run libtorch; they are
//! built with the `torch` feature (the default). Without it everything else stays, among
//! it the `[train]` config, the observation normalizer that bundles use, the network
//! layout, and [`eval`] of an exported bundle (a checkpoint is refused with
//! [`crate::Error::NeedsTorch`]).

#[cfg(feature = "torch")]
pub mod checkpoint;
pub mod config;
#[cfg(feature = "torch")]
pub mod device_env;
pub mod eval;
#[cfg(feature = "torch")]
pub mod export;
pub mod gae;
pub mod network;
pub mod normalize;
#[cfg(feature = "torch")]
pub mod policy;
#[cfg(feature = "torch")]
pub mod ppo;
#[cfg(feature = "torch")]
pub mod run;
pub mod sanity;
pub mod tensorboard;
pub mod vec_env;

pub use config::{DeviceChoice, Precision, TrainConfig, TrainEnv};
