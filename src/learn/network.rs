//! The policy network as plain data, without libtorch: its sizes ([`PolicyShape`]), the
//! names and shapes of its parameters (libtorch's, as [`crate::learn::policy::Policy`]
//! holds them and bundles store them), CleanRL's initialization computed in plain Rust
//! ([`fresh_parameters`]), a bundle's manifest and tensors for a set of parameters
//! ([`bundle_parts`]), and the draw of an action from the network's log-probabilities
//! ([`sample`]).
//!
//! This is what the lean build (no `torch` feature) needs of the network: `bench live`
//! exports a freshly initialized policy through it, and `eval --policy` samples actions
//! with it; the trainer builds on the same names and shapes.

use super::normalize::ObsNorm;
use crate::bundle::{
    FORMAT, FORMAT_VERSION, Manifest, Network, Normalization, ObservationSchema, Provenance,
    TensorData,
};
use crate::env::{EnvConfig, EnvParams};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// Named tensors, each with its shape, as a bundle's weights file holds them.
pub type NamedTensors = BTreeMap<String, (Vec<usize>, TensorData)>;

/// Sizes of a policy (rebuilt from a run's config to load its checkpoints).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PolicyShape {
    pub obs_dim: usize,
    pub n_actions: usize,
    pub encoder: Vec<usize>,
    pub hidden: usize,
}

/// One trainable parameter: its name, its shape and how it is initialized.
#[derive(Clone, Debug, PartialEq)]
pub struct Parameter {
    /// libtorch's name, e.g. `lstm.weight_ih`.
    pub name: String,
    /// `[rows, cols]` for a weight, `[n]` for a bias.
    pub shape: Vec<usize>,
    /// The orthogonal initialization's gain of a weight; `None` for a bias (zeros).
    pub gain: Option<f64>,
}

impl PolicyShape {
    /// Refuses a network whose parameters, with their gradients and Adam's two moments
    /// (f32 each), would not fit in the memory available: one line naming the sizes
    /// (exit 2), before libtorch allocates anything.
    pub fn check_memory(&self) -> crate::Result<()> {
        let elements = self
            .parameters()
            .iter()
            .map(|p| crate::util::mem::product(&p.shape, 1))
            .fold(0u128, u128::saturating_add);
        crate::util::mem::check(
            &format!(
                "a policy with encoder {:?} and hidden size {} ({elements} parameters)",
                self.encoder, self.hidden
            ),
            elements.saturating_mul(4 * 4),
            "use a smaller train.hidden or train.encoder",
        )
    }

    /// Every trainable parameter in the order the initialization draws them: per encoder
    /// layer its weight (gain √2) and bias, then the LSTM's `weight_ih`, `weight_hh` (gain
    /// 1) and biases (gates i, f, g, o), the actor (gain 0.01) and the critic (gain 1).
    pub fn parameters(&self) -> Vec<Parameter> {
        let weight = |name: String, rows: usize, cols: usize, gain: f64| Parameter {
            name,
            shape: vec![rows, cols],
            gain: Some(gain),
        };
        let bias = |name: String, n: usize| Parameter {
            name,
            shape: vec![n],
            gain: None,
        };
        let mut v = Vec::new();
        let mut width = self.obs_dim;
        for (i, &w) in self.encoder.iter().enumerate() {
            let sqrt2 = std::f64::consts::SQRT_2;
            v.push(weight(format!("encoder{i}.weight"), w, width, sqrt2));
            v.push(bias(format!("encoder{i}.bias"), w));
            width = w;
        }
        let h = self.hidden;
        v.push(weight("lstm.weight_ih".into(), 4 * h, width, 1.0));
        v.push(weight("lstm.weight_hh".into(), 4 * h, h, 1.0));
        v.push(bias("lstm.bias_ih".into(), 4 * h));
        v.push(bias("lstm.bias_hh".into(), 4 * h));
        v.push(weight("actor.weight".into(), self.n_actions, h, 0.01));
        v.push(bias("actor.bias".into(), self.n_actions));
        v.push(weight("critic.weight".into(), 1, h, 1.0));
        v.push(bias("critic.bias".into(), 1));
        v
    }
}

/// The parameters of a freshly initialized policy, computed in plain Rust: the same draws
/// as [`crate::learn::policy::Policy::new`] for `seed` (a ChaCha stream, standard normal
/// matrices in [`PolicyShape::parameters`] order), made orthogonal by a QR decomposition in
/// f64 instead of libtorch's f32 one; the two agree within 1e-5 (tested).
pub fn fresh_parameters(shape: &PolicyShape, seed: u64) -> NamedTensors {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    shape
        .parameters()
        .into_iter()
        .map(|p| {
            let values = match p.gain {
                Some(gain) => orthogonal(&mut rng, p.shape[0], p.shape[1], gain),
                None => vec![0.0; p.shape[0]],
            };
            (p.name, (p.shape, TensorData::F32(values)))
        })
        .collect()
}

/// A `rows × cols` matrix (row-major) with orthonormal rows or columns (whichever are
/// fewer) times `gain`: PyTorch's `nn.init.orthogonal_`, i.e. the Q of a standard normal
/// `max × min` matrix with R's diagonal made positive, transposed when `rows < cols`.
/// Gram–Schmidt (each column orthogonalized twice, in f64) yields exactly that Q.
fn orthogonal(rng: &mut ChaCha8Rng, rows: usize, cols: usize, gain: f64) -> Vec<f32> {
    let (tall, wide) = (rows.max(cols), rows.min(cols));
    let normal: Vec<f32> = (0..tall * wide)
        .map(|_| rng.sample::<f32, _>(rand_distr::StandardNormal))
        .collect();
    // Columns of the `tall × wide` matrix, orthonormalized in place.
    let mut q: Vec<Vec<f64>> = (0..wide)
        .map(|j| (0..tall).map(|i| normal[i * wide + j] as f64).collect())
        .collect();
    for j in 0..wide {
        let (done, rest) = q.split_at_mut(j);
        let col = &mut rest[0];
        for _ in 0..2 {
            for prev in done.iter() {
                let d: f64 = prev.iter().zip(col.iter()).map(|(a, b)| a * b).sum();
                col.iter_mut().zip(prev).for_each(|(c, p)| *c -= d * p);
            }
        }
        let norm = col.iter().map(|c| c * c).sum::<f64>().sqrt();
        col.iter_mut().for_each(|c| *c /= norm);
    }
    let mut out = vec![0f32; rows * cols];
    for (j, col) in q.iter().enumerate() {
        for (i, &v) in col.iter().enumerate() {
            let at = if rows >= cols {
                i * cols + j
            } else {
                j * cols + i
            };
            out[at] = (v * gain) as f32;
        }
    }
    out
}

/// The manifest (without its hash) and the tensors of a bundle of a policy of `shape`
/// with `parameters` (named as [`PolicyShape::parameters`] names them) and the
/// observation statistics `obs_norm`, acting in an environment of `params` (configured
/// by `env`).
pub fn bundle_parts(
    shape: &PolicyShape,
    parameters: NamedTensors,
    obs_norm: Option<&ObsNorm>,
    params: &EnvParams,
    env: &EnvConfig,
    trained: Provenance,
) -> (Manifest, NamedTensors) {
    let mut tensors = parameters;
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

/// Inverse-CDF draw from a categorical distribution given by its log-probabilities, with
/// `u` uniform in [0, 1) (the last action absorbs rounding).
pub fn sample(log_probs: &[f32], u: f32) -> usize {
    let mut acc = 0.0;
    for (k, &lp) in log_probs.iter().enumerate() {
        acc += lp.exp();
        if u < acc {
            return k;
        }
    }
    log_probs.len() - 1
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_network_too_large_for_memory_is_refused() {
        let shape = |hidden| super::PolicyShape {
            obs_dim: 24,
            n_actions: 5,
            encoder: vec![128],
            hidden,
        };
        assert!(shape(128).check_memory().is_ok());
        let e = shape(10_000_000).check_memory().unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("hidden size 10000000"), "{e}");
        assert!(e.to_string().contains("train.hidden"), "{e}");
    }

    use super::*;

    fn f32s(t: &(Vec<usize>, TensorData)) -> &[f32] {
        match &t.1 {
            TensorData::F32(v) => v,
            TensorData::F64(_) => panic!("parameters are f32"),
        }
    }

    #[test]
    fn fresh_weights_are_orthogonal_with_cleanrl_gains_and_seeded() {
        let shape = PolicyShape {
            obs_dim: 24,
            n_actions: 5,
            encoder: vec![128],
            hidden: 32,
        };
        let p = fresh_parameters(&shape, 7);
        assert_eq!(p.len(), shape.parameters().len());
        for param in shape.parameters() {
            let t = &p[&param.name];
            assert_eq!(t.0, param.shape, "{}", param.name);
            let w = f32s(t);
            let Some(gain) = param.gain else {
                assert!(w.iter().all(|&x| x == 0.0), "{} is not zero", param.name);
                continue;
            };
            // Fewer rows than columns: W Wᵀ = gain² I; more: Wᵀ W = gain² I.
            let (r, c) = (param.shape[0], param.shape[1]);
            let at = |i: usize, j: usize| w[i * c + j] as f64;
            let n = r.min(c);
            for a in 0..n {
                for b in 0..n {
                    let g: f64 = if r < c {
                        (0..c).map(|k| at(a, k) * at(b, k)).sum()
                    } else {
                        (0..r).map(|k| at(k, a) * at(k, b)).sum()
                    };
                    let want = if a == b { gain * gain } else { 0.0 };
                    assert!(
                        (g - want).abs() < 1e-5 * gain * gain + 1e-7,
                        "{} gram[{a}][{b}] = {g}",
                        param.name
                    );
                }
            }
        }
        assert_eq!(p, fresh_parameters(&shape, 7));
        let other = fresh_parameters(&shape, 8);
        assert_ne!(p["lstm.weight_hh"], other["lstm.weight_hh"]);
    }

    #[test]
    fn sample_follows_the_cumulative_distribution() {
        let lp: Vec<f32> = [0.2f32, 0.5, 0.3].iter().map(|p| p.ln()).collect();
        assert_eq!(sample(&lp, 0.0), 0);
        assert_eq!(sample(&lp, 0.19), 0);
        assert_eq!(sample(&lp, 0.21), 1);
        assert_eq!(sample(&lp, 0.69), 1);
        assert_eq!(sample(&lp, 0.71), 2);
        assert_eq!(sample(&lp, 0.999_999_9), 2);
    }
}
