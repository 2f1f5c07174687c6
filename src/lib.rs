//! sim-train: a GPU-first, high-throughput simulator and trainer for intraday trading agents.
//!
//! The data layer lives here: vendor files are ingested ([`ingest`]), validated
//! ([`validate`]), adjusted for corporate actions ([`adjust`]), enriched with causal
//! features ([`features`]) and written as memory-mapped columnar day caches ([`cache`]) by
//! the builder ([`build`]). [`calendar`] and [`clock`] know US equity sessions;
//! [`synth`] generates realistic sessions with ground truth; [`align`] joins symbols on a
//! common clock. [`env`](mod@env) holds the trading environments, [`backtest`] runs target
//! schedules and baselines through them, [`metrics`] scores the results. [`scan`] finds
//! momentum days and reset points, indexes them and samples training episodes from them
//! by curriculum. The binary's commands are in [`cli`].
//!
//! The `torch` feature (on by default) builds what runs libtorch through tch: the
//! learner's network, training, checkpoints and export ([`learn`]), walk-forward sweeps
//! ([`walkforward`]) and the benches that train. Without it
//! (`cargo build --release --no-default-features`) the binary links no libtorch and keeps
//! everything else, among it policy bundles ([`bundle`]) and the live layer ([`live`]).

pub mod adjust;
pub mod align;
pub mod backtest;
pub mod bars;
pub mod bench;
pub mod build;
pub mod bundle;
pub mod cache;
pub mod calendar;
pub mod cli;
pub mod clock;
pub mod config;
#[cfg(feature = "torch")]
pub mod doctor;
pub mod env;
pub mod error;
pub mod features;
pub mod ingest;
pub mod learn;
pub mod live;
pub mod logging;
pub mod metrics;
pub mod overfit;
pub mod plot;
pub mod scan;
pub mod synth;
pub mod util;
pub mod validate;
pub mod walkforward;

pub use error::{Error, Result};
