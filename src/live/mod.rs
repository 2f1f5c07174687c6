//! The live layer, as far as it is built: the risk manager ([`risk`]) and the journal
//! ([`journal`]) the live loop (feed → policy → risk → execution → broker) will run on.
//! The policy side is [`crate::bundle`] (export and the pure-Rust forward).

pub mod journal;
pub mod risk;

use serde::{Deserialize, Serialize};

/// `[live]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiveConfig {
    pub risk: risk::RiskConfig,
}
