//! `sim-train export`: a training checkpoint as a policy bundle ([`crate::bundle`]).

use super::eval::{Agent, run_dir_of};
use super::normalize::ObsNorm;
use super::policy::Policy;
use crate::bundle::{
    Bundle, FORMAT, FORMAT_VERSION, Manifest, Network, Normalization, ObservationSchema,
    Provenance, TensorData,
};
use crate::config::RESOLVED_FILE;
use crate::env::{EnvConfig, EnvParams};
use crate::error::{Error, IoContext, Result};
use std::collections::BTreeMap;
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
        &agent.policy,
        agent.obs_norm.as_ref(),
        &agent.params,
        &agent.resolved.config.env,
        trained,
    );
    let cfg_path = run_dir.join(RESOLVED_FILE);
    let config = std::fs::read_to_string(&cfg_path).at(&cfg_path)?;
    Bundle::write(out, manifest, &tensors, &config)
}

/// The manifest (without its hash) and the tensors of a bundle of `policy`, acting in an
/// environment of `params` (configured by `env`).
pub fn bundle_parts(
    policy: &Policy,
    obs_norm: Option<&ObsNorm>,
    params: &EnvParams,
    env: &EnvConfig,
    trained: Provenance,
) -> (Manifest, BTreeMap<String, (Vec<usize>, TensorData)>) {
    let mut tensors = BTreeMap::new();
    for (name, t) in policy.named_parameters() {
        let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
        let n = t.numel();
        let mut values = vec![0f32; n];
        t.to_kind(tch::Kind::Float)
            .flatten(0, -1)
            .copy_data(&mut values, n);
        tensors.insert(name, (shape, TensorData::F32(values)));
    }
    let normalization = obs_norm.map(|n| {
        let d = n.dim();
        tensors.insert(
            "obs_norm/mean".into(),
            (vec![d], TensorData::F64(n.mean.clone())),
        );
        tensors.insert(
            "obs_norm/var".into(),
            (vec![d], TensorData::F64(n.var.clone())),
        );
        Normalization {
            clip: n.clip,
            count: n.count,
        }
    });
    let shape = &policy.shape;
    let manifest = Manifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        sim_train_version: env!("CARGO_PKG_VERSION").into(),
        observation: ObservationSchema {
            feature_set_version: crate::features::FEATURE_VERSION,
            fields: params.obs_names(),
            feature_fields: params.obs_dim() - crate::env::ACCOUNT_FIELDS.len(),
            normalization,
        },
        actions: params.actions.clone(),
        network: Network {
            architecture: "encoder (tanh MLP) → lstm → actor (log-softmax) + critic".into(),
            obs_dim: shape.obs_dim,
            encoder: shape.encoder.clone(),
            hidden: shape.hidden,
            n_actions: shape.n_actions,
            lstm_gates: "i,f,g,o".into(),
            tensors: BTreeMap::new(),
        },
        trained,
        env: serde_json::to_value(env).expect("serializes"),
        content_hash: String::new(),
    };
    (manifest, tensors)
}
