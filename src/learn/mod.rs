//! The learner: a recurrent PPO agent (tch / libtorch) trained on a batch of environments.
//!
//! - [`config`]: the `[train]` section,
//! - [`normalize`]: running observation normalization,
//! - [`network`]: the network's shape, parameter layout and initialization as plain data,
//! - [`policy`]: the LSTM actor-critic (libtorch),
//! - [`gae`]: the advantages,
//! - [`ppo`]: rollouts and updates, one linear file,
//! - [`vec_env`]: what the learner steps (market or sanity environments),
//! - [`sanity`]: tasks a correct learner solves in seconds,
//! - [`run`]: a training run (run dir, logs, progress, checkpoints, exact resume),
//! - [`eval`]: a trained policy through the backtest engine, against baselines,
//! - [`checkpoint`]: a checkpoint's policy loaded and run for [`eval`] (libtorch),
//! - [`export`]: a checkpoint as a policy bundle.

pub mod checkpoint;
pub mod config;
pub mod eval;
pub mod export;
pub mod gae;
pub mod network;
pub mod normalize;
pub mod policy;
pub mod ppo;
pub mod run;
pub mod sanity;
pub mod vec_env;

pub use config::{DeviceChoice, TrainConfig, TrainEnv};
