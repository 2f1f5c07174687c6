//! (in progress) Seeded synthetic US-equity sessions with ground truth.
use serde::{Deserialize, Serialize};

/// `[synth]` config section.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SynthParams {}
