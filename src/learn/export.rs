//! `sim-train export`: a training checkpoint as a policy bundle ([`crate::bundle`]), whose
//! manifest and tensors [`super::network::bundle_parts`] lays out.

use super::checkpoint::Agent;
use super::eval::run_dir_of;
use super::network::{NamedTensors, bundle_parts};
use super::policy::Policy;
use crate::bundle::{Bundle, Manifest, Provenance, TensorData};
use crate::config::RESOLVED_FILE;
use crate::error::{Error, IoContext, Result};
use std::path::Path;

/// Exports `checkpoint` (a run's `checkpoints/update-NNNNNNNN` folder) into `out`.
pub fn export(checkpoint: &Path, out: &Path) -> Result<Manifest> {
    let run_dir = run_dir_of(checkpoint)?;
    let agent = Agent::load(&run_dir, Some(checkpoint))?;
    let state_path = checkpoint.join("state.json");
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_path).at(&state_path)?)
            .map_err(|e| Error::input(&state_path, format!("unreadable: {e}")))?;
    let counter = |k: &str| state[k].as_u64().unwrap_or(0);
    let config_hash = state["config_hash"]
        .as_str()
        .unwrap_or("unknown")
        .to_string();

    let checkpoint_name = checkpoint
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let trained = Provenance {
        run_id: format!("{config_hash}/{checkpoint_name}"),
        run_dir: run_dir.clone(),
        checkpoint: checkpoint.to_path_buf(),
        update: counter("update"),
        global_step: counter("global_step"),
        seed: agent.resolved.config.train.seed,
    };
    let (manifest, tensors) = bundle_parts(
        &agent.policy.shape,
        policy_parameters(&agent.policy),
        agent.obs_norm.as_ref(),
        &agent.params,
        &agent.resolved.config.env,
        trained,
    );
    let cfg_path = run_dir.join(RESOLVED_FILE);
    let config = std::fs::read_to_string(&cfg_path).at(&cfg_path)?;
    Bundle::write(out, manifest, &tensors, &config)
}

/// A policy's parameters as a bundle stores them (f32, libtorch's names and shapes).
pub fn policy_parameters(policy: &Policy) -> NamedTensors {
    policy
        .named_parameters()
        .into_iter()
        .map(|(name, t)| {
            let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
            let n = t.numel();
            let mut values = vec![0f32; n];
            t.to_kind(tch::Kind::Float)
                .flatten(0, -1)
                .copy_data(&mut values, n);
            (name, (shape, TensorData::F32(values)))
        })
        .collect()
}
