//! The live layer: the loop (feed → policy → risk → execution → broker) over a replay
//! feed ([`replay`]), the risk manager ([`risk`]) and the journal ([`journal`]). The
//! policy is an exported bundle run by the pure-Rust forward ([`crate::bundle`]); the
//! paper broker is the simulator's execution model.

pub mod journal;
pub mod replay;
pub mod risk;

use serde::{Deserialize, Serialize};

/// `[live]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiveConfig {
    pub risk: risk::RiskConfig,
}
