//! Policy bundles: a trained policy as a folder that runs without libtorch.
//!
//! `sim-train export --checkpoint PATH --out BUNDLE_DIR` writes:
//! - `weights.safetensors`: the network's parameters (f32) and the observation
//!   statistics (`obs_norm/mean`, `obs_norm/var`, f64);
//! - `config.resolved.toml`: the configuration the policy was trained with (execution
//!   model, costs, risk limits, features, actions);
//! - `manifest.json` ([`Manifest`]): the observation schema (names in order, feature-set
//!   version, normalization), the action set, the network's shapes and layout, the
//!   training run it came from, and a SHA-256 content hash over the manifest (without
//!   the hash: its bytes as written, with the hash's value blanked) and both files.
//!
//! [`Bundle::open`] verifies the hash before anything is used: a missing file, an edited
//! manifest or config, or altered weights are refused. [`native::NativePolicy`] runs the
//! bundle's forward pass in plain Rust.

pub mod native;

use crate::error::{Error, IoContext, Result};
use crate::util::fs::write_atomic;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const MANIFEST_FILE: &str = "manifest.json";
pub const WEIGHTS_FILE: &str = "weights.safetensors";
pub const CONFIG_FILE: &str = "config.resolved.toml";
/// `manifest.format`.
pub const FORMAT: &str = "sim-train-policy";
/// Version of the bundle layout this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// The observation a policy reads, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObservationSchema {
    /// Feature-set version of the feature columns (the caches' and the live feed's must
    /// match).
    pub feature_set_version: u32,
    /// Every field of one observation, in order: feature columns, then account fields.
    pub fields: Vec<String>,
    /// How many of `fields` are feature columns (the rest are account fields).
    pub feature_fields: usize,
    /// Running normalization `clamp((x − mean) / sqrt(var + 1e-8), ±clip)` with the
    /// statistics in the weights file; null when the policy reads raw observations.
    pub normalization: Option<Normalization>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Normalization {
    pub clip: f32,
    /// Observations the statistics were estimated from.
    pub count: f64,
}

/// The network: layout and shapes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// `encoder (tanh MLP) → lstm → actor (log-softmax over actions) + critic`.
    pub architecture: String,
    pub obs_dim: usize,
    pub encoder: Vec<usize>,
    pub hidden: usize,
    pub n_actions: usize,
    /// PyTorch's LSTM gate order in `lstm.weight_ih` / `weight_hh` rows.
    pub lstm_gates: String,
    /// Every tensor of the weights file and its shape.
    pub tensors: BTreeMap<String, Vec<usize>>,
}

/// The training run a bundle was exported from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// `<config hash>/<checkpoint>`: names the run's config and the update exported.
    pub run_id: String,
    pub run_dir: PathBuf,
    pub checkpoint: PathBuf,
    pub update: u64,
    pub global_step: u64,
    pub seed: u64,
}

/// `manifest.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub sim_train_version: String,
    pub observation: ObservationSchema,
    /// Target positions, fractions of `env.max_position_usd`, by action index.
    pub actions: Vec<f64>,
    pub network: Network,
    pub trained: Provenance,
    /// The environment the policy was trained in: session, execution model, costs, risk
    /// limits, rewards (also in the config file).
    pub env: serde_json::Value,
    /// `sha256:<hex>` of the manifest file's bytes with this value empty, then the weights
    /// file, then the config file.
    pub content_hash: String,
}

/// A tensor of the weights file.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

/// An opened, verified bundle.
#[derive(Clone, Debug)]
pub struct Bundle {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub tensors: BTreeMap<String, (Vec<usize>, TensorData)>,
    /// The training configuration, as saved.
    pub config_toml: String,
}

/// The content hash over the manifest's bytes as written with an empty `content_hash`,
/// then the weights (length-prefixed) and the config.
fn content_hash(blank_manifest: &[u8], weights: &[u8], config: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(blank_manifest);
    h.update((weights.len() as u64).to_le_bytes());
    h.update(weights);
    h.update(config);
    let digest = h.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// The manifest file's text.
fn manifest_text(m: &Manifest) -> String {
    let mut json = serde_json::to_string_pretty(m).expect("the manifest serializes");
    json.push('\n');
    json
}

/// Serializes `tensors` as safetensors bytes.
fn encode(tensors: &BTreeMap<String, (Vec<usize>, TensorData)>) -> Result<Vec<u8>> {
    use safetensors::tensor::{Dtype, TensorView};
    let bytes: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, (shape, data))| {
            let (dtype, raw) = match data {
                TensorData::F32(v) => (Dtype::F32, bytemuck::cast_slice::<f32, u8>(v).to_vec()),
                TensorData::F64(v) => (Dtype::F64, bytemuck::cast_slice::<f64, u8>(v).to_vec()),
            };
            (name.clone(), dtype, shape.clone(), raw)
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(name, dtype, shape, raw)| {
            TensorView::new(*dtype, shape.clone(), raw)
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::Data(format!("tensor {name}: {e:?}")))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::tensor::serialize(views, &None)
        .map_err(|e| Error::Data(format!("encoding the weights: {e:?}")))
}

fn decode(bytes: &[u8], path: &Path) -> Result<BTreeMap<String, (Vec<usize>, TensorData)>> {
    use safetensors::tensor::{Dtype, SafeTensors};
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::input(path, format!("not a safetensors file: {e:?}")))?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let raw = view.data();
        let data = match view.dtype() {
            Dtype::F32 => TensorData::F32(
                raw.chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                    .collect(),
            ),
            Dtype::F64 => TensorData::F64(
                raw.chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                    .collect(),
            ),
            other => {
                return Err(Error::input(
                    path,
                    format!("tensor {name} has dtype {other:?}; bundles hold F32 and F64"),
                ));
            }
        };
        out.insert(name, (view.shape().to_vec(), data));
    }
    Ok(out)
}

impl Bundle {
    /// Writes a bundle into `dir` (created; must not hold files already). The manifest's
    /// `content_hash` is computed here. Files are written atomically, the manifest last.
    pub fn write(
        dir: &Path,
        mut manifest: Manifest,
        tensors: &BTreeMap<String, (Vec<usize>, TensorData)>,
        config_toml: &str,
    ) -> Result<Manifest> {
        if dir.exists() && std::fs::read_dir(dir).at(dir)?.next().is_some() {
            return Err(Error::Usage(format!(
                "{} exists and is not empty: export into a new folder",
                dir.display()
            )));
        }
        std::fs::create_dir_all(dir).at(dir)?;
        manifest.network.tensors = tensors
            .iter()
            .map(|(k, (shape, _))| (k.clone(), shape.clone()))
            .collect();
        let weights = encode(tensors)?;
        manifest.content_hash = String::new();
        let blank = manifest_text(&manifest);
        manifest.content_hash = content_hash(blank.as_bytes(), &weights, config_toml.as_bytes());
        write_atomic(&dir.join(WEIGHTS_FILE), &weights)?;
        write_atomic(&dir.join(CONFIG_FILE), config_toml.as_bytes())?;
        write_atomic(
            &dir.join(MANIFEST_FILE),
            manifest_text(&manifest).as_bytes(),
        )?;
        Ok(manifest)
    }

    /// Opens and verifies the bundle in `dir`.
    pub fn open(dir: &Path) -> Result<Bundle> {
        let read = |name: &str| -> Result<Vec<u8>> {
            let p = dir.join(name);
            if !p.is_file() {
                return Err(Error::Usage(format!(
                    "{} is not a policy bundle: {name} is missing (write one with `sim-train export`)",
                    dir.display()
                )));
            }
            std::fs::read(&p).at(&p)
        };
        let mpath = dir.join(MANIFEST_FILE);
        let mbytes = read(MANIFEST_FILE)?;
        let manifest: Manifest = serde_json::from_slice(&mbytes)
            .map_err(|e| Error::input(&mpath, format!("not a bundle manifest: {e}")))?;
        if manifest.format != FORMAT || manifest.format_version != FORMAT_VERSION {
            return Err(Error::input(
                &mpath,
                format!(
                    "format {} version {}: this build reads {FORMAT} version {FORMAT_VERSION}",
                    manifest.format, manifest.format_version
                ),
            ));
        }
        let weights = read(WEIGHTS_FILE)?;
        let config = read(CONFIG_FILE)?;
        // The hash covers the manifest's bytes as they are on disk, with its own value
        // blanked.
        let text = String::from_utf8_lossy(&mbytes);
        let field = format!("\"content_hash\": \"{}\"", manifest.content_hash);
        if text.matches(&field).count() != 1 {
            return Err(Error::input(
                &mpath,
                "has no single content_hash field: export it again",
            ));
        }
        let blank = text.replacen(&field, "\"content_hash\": \"\"", 1);
        let hash = content_hash(blank.as_bytes(), &weights, &config);
        if hash != manifest.content_hash {
            return Err(Error::input(
                dir,
                format!(
                    "content hash mismatch (manifest says {}, the files give {hash}): the bundle was altered or is incomplete; export it again",
                    manifest.content_hash
                ),
            ));
        }
        let tensors = decode(&weights, &dir.join(WEIGHTS_FILE))?;
        let listed: BTreeMap<String, Vec<usize>> = tensors
            .iter()
            .map(|(k, (s, _))| (k.clone(), s.clone()))
            .collect();
        if listed != manifest.network.tensors {
            return Err(Error::input(
                &mpath,
                "network.tensors does not list the weights file's tensors",
            ));
        }
        let config_toml = String::from_utf8(config)
            .map_err(|_| Error::input(dir.join(CONFIG_FILE), "not UTF-8 text"))?;
        Ok(Bundle {
            dir: dir.to_path_buf(),
            manifest,
            tensors,
            config_toml,
        })
    }

    /// An f32 tensor of the weights, checked against `shape`.
    pub fn f32(&self, name: &str, shape: &[usize]) -> Result<&[f32]> {
        match self.tensors.get(name) {
            Some((s, TensorData::F32(v))) if s == shape => Ok(v),
            Some((s, _)) => Err(Error::input(
                self.dir.join(WEIGHTS_FILE),
                format!("tensor {name} is {s:?} (or not f32), expected f32 {shape:?}"),
            )),
            None => Err(Error::input(
                self.dir.join(WEIGHTS_FILE),
                format!("has no tensor {name}"),
            )),
        }
    }

    /// An f64 tensor of the weights of `len` values.
    pub fn f64(&self, name: &str, len: usize) -> Result<&[f64]> {
        match self.tensors.get(name) {
            Some((s, TensorData::F64(v))) if v.len() == len && s.len() == 1 => Ok(v),
            Some(_) => Err(Error::input(
                self.dir.join(WEIGHTS_FILE),
                format!("tensor {name} is not f64 [{len}]"),
            )),
            None => Err(Error::input(
                self.dir.join(WEIGHTS_FILE),
                format!("has no tensor {name}"),
            )),
        }
    }

    /// The human summary `sim-train policy inspect` prints.
    pub fn describe(&self) -> String {
        let m = &self.manifest;
        let n = &m.network;
        let params: usize = self
            .tensors
            .iter()
            .filter(|(k, _)| !k.starts_with("obs_norm/"))
            .map(|(_, (s, _))| s.iter().product::<usize>())
            .sum();
        let mut s = format!(
            "{}: {FORMAT} v{}, exported by sim-train {}\n",
            self.dir.display(),
            m.format_version,
            m.sim_train_version
        );
        s += &format!("  content hash   {}\n", m.content_hash);
        s += &format!(
            "  trained        run {} (update {}, {} steps, seed {})\n                 {}\n",
            m.trained.run_id,
            m.trained.update,
            m.trained.global_step,
            m.trained.seed,
            m.trained.checkpoint.display()
        );
        s += &format!(
            "  network        {} | obs {} → encoder {:?} → LSTM {} → {} actions; {} parameters\n",
            n.architecture, n.obs_dim, n.encoder, n.hidden, n.n_actions, params
        );
        s += &format!(
            "  observation    feature set v{}, {} features + {} account fields, {}\n",
            m.observation.feature_set_version,
            m.observation.feature_fields,
            m.observation.fields.len() - m.observation.feature_fields,
            match &m.observation.normalization {
                Some(n) => format!("normalized (clip ±{}, {} observations)", n.clip, n.count),
                None => "raw".into(),
            }
        );
        s += &format!("                 {}\n", m.observation.fields.join(", "));
        s += &format!(
            "  actions        {:?} (target position / max position)\n",
            m.actions
        );
        s
    }

    /// The configuration the policy was trained with and the environment it acts in
    /// (whole days: `max_episode_steps` = 0), checked against the manifest: the same
    /// observation fields in the same order, the same actions.
    pub fn policy_environment(
        &self,
    ) -> Result<(
        crate::config::Resolved,
        std::sync::Arc<crate::env::EnvParams>,
    )> {
        let resolved = crate::config::load(Some(&self.dir.join(CONFIG_FILE)), &[])?;
        let mut p =
            crate::env::EnvParams::from_config(&resolved.config.env).map_err(Error::Config)?;
        p.max_episode_steps = 0;
        let m = &self.manifest;
        let bad = |what: String| Error::input(self.dir.join(MANIFEST_FILE), what);
        if p.obs_names() != m.observation.fields {
            return Err(bad(format!(
                "its observation fields {:?} are not those of its config {:?}",
                m.observation.fields,
                p.obs_names()
            )));
        }
        if p.actions != m.actions {
            return Err(bad(format!(
                "its actions {:?} are not those of its config {:?}",
                m.actions, p.actions
            )));
        }
        Ok((resolved, std::sync::Arc::new(p)))
    }

    /// As [`Bundle::policy_environment`], for a live stream whose features this build
    /// computes: the bundle's feature set version must be this build's.
    pub fn stream_environment(
        &self,
    ) -> Result<(
        crate::config::Resolved,
        std::sync::Arc<crate::env::EnvParams>,
    )> {
        let v = self.manifest.observation.feature_set_version;
        if v != crate::features::FEATURE_VERSION {
            return Err(Error::Data(format!(
                "the bundle {} reads feature set version {v}, and this sim-train computes version {} from a feed: export a policy trained on caches of this version",
                self.dir.display(),
                crate::features::FEATURE_VERSION
            )));
        }
        self.policy_environment()
    }

    /// As [`Bundle::policy_environment`], for replaying `cache`: the bundle's feature set
    /// version must be the cache's.
    pub fn environment(
        &self,
        cache: &Path,
    ) -> Result<(
        crate::config::Resolved,
        std::sync::Arc<crate::env::EnvParams>,
    )> {
        let (resolved, p) = self.policy_environment()?;
        let m = &self.manifest;
        let catalog = crate::cache::Catalog::load_existing(cache)?;
        if let Some(s) = &catalog.settings
            && s.feature_version != m.observation.feature_set_version
        {
            return Err(Error::Data(format!(
                "the bundle {} reads feature set version {}, the cache {} holds version {}: rebuild the cache with this sim-train or export a policy trained on it",
                self.dir.display(),
                m.observation.feature_set_version,
                cache.display(),
                s.feature_version
            )));
        }
        Ok((resolved, p))
    }
}
