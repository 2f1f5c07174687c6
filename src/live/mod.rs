//! The live layer: one engine ([`engine`]: feed → broker → policy → risk → order,
//! journaled) trading through a broker interface ([`broker`]: the paper broker is the
//! simulator's execution model), fed by a replay of cached days ([`replay`]) or by a line-delimited JSON
//! stream on stdin or loopback TCP ([`stream`]); the risk manager ([`risk`]); the journal
//! ([`journal`]); commands, signals and the monitoring endpoint ([`control`],
//! [`metrics`]); automatic kill triggers ([`watchdog`]). The policy is an exported bundle run by the pure-Rust forward
//! ([`crate::bundle`]).

pub mod broker;
pub mod control;
pub mod engine;
pub mod journal;
pub mod metrics;
pub mod replay;
pub mod risk;
pub mod stream;
pub mod watchdog;

use serde::{Deserialize, Serialize};

/// `[live]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiveConfig {
    pub risk: risk::RiskConfig,
    pub watchdog: watchdog::WatchdogConfig,
}
