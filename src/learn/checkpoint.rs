//! A training checkpoint's policy run through libtorch (the `torch` feature): loading it
//! ([`Agent`]) and evaluating it account by account, for [`super::eval`].

use super::TrainEnv;
use super::eval::{EvalRequest, Evaluated, account_rng, pick, run_accounts};
use super::normalize::ObsNorm;
use super::policy::{LstmState, Policy, PolicyShape};
use super::run::latest_checkpoint;
use crate::backtest::engine::Decider;
use crate::backtest::report::Source;
use crate::backtest::{finish, start_sec};
use crate::config::{RESOLVED_FILE, Resolved};
use crate::env::{DaySelection, EnvParams, ReferenceEnv};
use crate::error::{Error, Result};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tch::{Device, Tensor};

/// A trained policy with what it needs to act: its observation statistics and the
/// environment parameters it was trained under.
pub struct Agent {
    pub policy: Policy,
    pub obs_norm: Option<ObsNorm>,
    pub params: Arc<EnvParams>,
    pub checkpoint: PathBuf,
    pub resolved: Resolved,
}

impl Agent {
    /// Loads `checkpoint` (default: the latest) of a `sim-train train` run dir (a market
    /// run).
    pub fn load(run_dir: &Path, checkpoint: Option<&Path>) -> Result<Agent> {
        let saved = run_dir.join(RESOLVED_FILE);
        if !saved.is_file() {
            return Err(Error::Usage(format!(
                "{} is not a run dir (no {RESOLVED_FILE})",
                run_dir.display()
            )));
        }
        let resolved = crate::config::load(Some(&saved), &[])?;
        let cfg = &resolved.config.train;
        if cfg.env != TrainEnv::Market {
            return Err(Error::Usage(format!(
                "{} trained on {}: only market policies trade days",
                run_dir.display(),
                cfg.env.name()
            )));
        }
        let mut p = EnvParams::from_config(&resolved.config.env).map_err(Error::Config)?;
        p.max_episode_steps = 0;
        let params = Arc::new(p);
        let shape = PolicyShape {
            obs_dim: params.obs_dim(),
            n_actions: params.actions.len(),
            encoder: cfg.encoder.clone(),
            hidden: cfg.hidden,
        };
        let checkpoint = match checkpoint {
            Some(c) => c.to_path_buf(),
            None => latest_checkpoint(run_dir)?,
        };
        let tp = checkpoint.join("tensors.ot");
        if !tp.is_file() {
            return Err(Error::Usage(format!(
                "{} is not a checkpoint (no tensors.ot): give a run dir's checkpoints/update-NNNNNNNN folder",
                checkpoint.display()
            )));
        }
        let bad = |what: String| Error::input(&tp, what);
        let map: HashMap<String, Tensor> = Tensor::load_multi(&tp)
            .map_err(|e| bad(format!("unreadable: {e}")))?
            .into_iter()
            .collect();
        let get = |k: &str| map.get(k).ok_or_else(|| bad(format!("has no tensor {k}")));
        shape.check_memory()?;
        let policy = Policy::new(shape, Device::Cpu, cfg.seed);
        policy.load_parameters(&map, "param/").map_err(bad)?;
        let obs_norm = if cfg.norm_obs {
            let mut norm = ObsNorm::new(params.obs_dim(), cfg.obs_clip as f32);
            let mean = get("obs_norm/mean")?;
            let var = get("obs_norm/var")?;
            if mean.numel() != norm.dim() || var.numel() != norm.dim() {
                return Err(bad("observation statistics of the wrong size".into()));
            }
            let d = norm.dim();
            mean.copy_data(&mut norm.mean, d);
            var.copy_data(&mut norm.var, d);
            norm.count = get("obs_norm/count")?.double_value(&[0]);
            Some(norm)
        } else {
            None
        };
        Ok(Agent {
            policy,
            obs_norm,
            params,
            checkpoint,
            resolved,
        })
    }
}

/// A checkpoint's policy (libtorch) as a [`Decider`] for one account: LSTM state carried
/// through a day and zeroed at each day's start.
struct TorchDecider {
    agent: Agent,
    state: LstmState,
    first: f32,
    raw: Vec<f32>,
    obs: Vec<f32>,
    rng: Option<ChaCha8Rng>,
    log_probs: Vec<f32>,
}

impl Decider for TorchDecider {
    fn begin_day(&mut self, _: usize) -> Result<()> {
        self.first = 1.0;
        Ok(())
    }

    fn target(&mut self, env: &ReferenceEnv, _: usize) -> Result<f64> {
        env.observe(&mut self.raw);
        match &self.agent.obs_norm {
            Some(n) => n.normalize(&self.raw, &mut self.obs),
            None => self.obs.copy_from_slice(&self.raw),
        }
        let d = self.obs.len() as i64;
        let x = Tensor::from_slice(&self.obs).view([1, d]);
        let (out, next) = tch::no_grad(|| self.agent.policy.step(&x, &[self.first], &self.state));
        self.state = next;
        self.first = 0.0;
        let n = self.log_probs.len();
        out.log_probs.copy_data(&mut self.log_probs, n);
        Ok(self.agent.params.actions[pick(&self.log_probs, &mut self.rng)])
    }
}

/// Runs `checkpoint` (default: the latest) of `run_dir` over the selected days of
/// `cache`, one account per symbol. The network is loaded once per account (libtorch
/// tensors are not shared across threads; one libtorch thread per account).
pub fn evaluate(
    req: &EvalRequest,
    run_dir: &Path,
    checkpoint: Option<&Path>,
    cache: &Path,
    sel: &DaySelection,
) -> Result<Evaluated> {
    let agent = Agent::load(run_dir, checkpoint)?;
    let config = agent.resolved.config.clone();
    let start = start_sec(&config)?;
    tch::set_num_threads(1);
    let runs = run_accounts(&agent.params, start, cache, sel, |symbol| {
        let agent = Agent::load(run_dir, checkpoint)?;
        let d = agent.params.obs_dim();
        Ok(TorchDecider {
            state: LstmState::zeros(1, agent.policy.shape.hidden, Device::Cpu),
            first: 1.0,
            raw: vec![0.0; d],
            obs: vec![0.0; d],
            rng: account_rng(req, symbol),
            log_probs: vec![0.0; agent.params.actions.len()],
            agent,
        })
    })?;
    let source = Source::Policy {
        checkpoint: agent.checkpoint.display().to_string(),
        mode: req.mode_name(),
    };
    Ok(Evaluated {
        backtest: finish(source, runs, &config),
        policy: agent.checkpoint,
        kind: "checkpoint",
        resolved: agent.resolved,
    })
}
