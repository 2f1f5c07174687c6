//! The recurrent actor-critic: observation encoder (MLP, tanh) → LSTM → categorical actor
//! head and value head, initialized as CleanRL does (orthogonal weights with gain √2 for the
//! encoder, 1 for the LSTM, 0.01 for the actor and 1 for the critic; zero biases).
//!
//! The LSTM is written out (gates in PyTorch's order i, f, g, o) rather than taken from
//! libtorch's fused module for two reasons: the state must be zeroed *inside* a sequence
//! wherever an episode began (CleanRL's per-step `(1 − done) · h`), and the input
//! projection of a whole sequence is then one matrix product instead of T small ones.

use tch::nn::{self, Init};
use tch::{Device, Kind, Tensor};

/// Sizes of a policy; saved in checkpoints and exports to rebuild the same network.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PolicyShape {
    pub obs_dim: usize,
    pub n_actions: usize,
    pub encoder: Vec<usize>,
    pub hidden: usize,
}

/// The network; its parameters live in `vs`.
pub struct Policy {
    pub vs: nn::VarStore,
    pub shape: PolicyShape,
    encoder: Vec<(Tensor, Tensor)>,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor,
    b_hh: Tensor,
    actor_w: Tensor,
    actor_b: Tensor,
    critic_w: Tensor,
    critic_b: Tensor,
}

/// An LSTM state, `[batch, hidden]` each.
pub struct LstmState {
    pub h: Tensor,
    pub c: Tensor,
}

impl LstmState {
    pub fn zeros(batch: usize, hidden: usize, device: Device) -> LstmState {
        LstmState {
            h: Tensor::zeros([batch as i64, hidden as i64], (Kind::Float, device)),
            c: Tensor::zeros([batch as i64, hidden as i64], (Kind::Float, device)),
        }
    }

    pub fn copy(&self) -> LstmState {
        LstmState {
            h: self.h.copy(),
            c: self.c.copy(),
        }
    }

    /// Rows `index` of the state.
    pub fn select(&self, index: &Tensor) -> LstmState {
        LstmState {
            h: self.h.index_select(0, index),
            c: self.c.index_select(0, index),
        }
    }
}

/// What the network outputs for a batch of steps.
pub struct PolicyOut {
    /// Log-probabilities of every action, `[.., n_actions]`.
    pub log_probs: Tensor,
    /// State values, `[..]`.
    pub values: Tensor,
}

impl Policy {
    /// A freshly initialized policy; the weights depend only on `seed` (through libtorch's
    /// generator, seeded here).
    pub fn new(shape: PolicyShape, device: Device, seed: u64) -> Policy {
        tch::manual_seed(seed as i64);
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let zero = Init::Const(0.0);
        let mut encoder = Vec::with_capacity(shape.encoder.len());
        let mut width = shape.obs_dim as i64;
        for (i, &w) in shape.encoder.iter().enumerate() {
            let w = w as i64;
            let weight = (&root / format!("encoder{i}")).var(
                "weight",
                &[w, width],
                Init::Orthogonal {
                    gain: std::f64::consts::SQRT_2,
                },
            );
            let bias = (&root / format!("encoder{i}")).var("bias", &[w], zero);
            encoder.push((weight, bias));
            width = w;
        }
        let h = shape.hidden as i64;
        let w_ih = (&root / "lstm").var("weight_ih", &[4 * h, width], Init::Orthogonal { gain: 1.0 });
        let w_hh = (&root / "lstm").var("weight_hh", &[4 * h, h], Init::Orthogonal { gain: 1.0 });
        let b_ih = (&root / "lstm").var("bias_ih", &[4 * h], zero);
        let b_hh = (&root / "lstm").var("bias_hh", &[4 * h], zero);
        let a = shape.n_actions as i64;
        let actor_w = (&root / "actor").var("weight", &[a, h], Init::Orthogonal { gain: 0.01 });
        let actor_b = (&root / "actor").var("bias", &[a], zero);
        let critic_w = (&root / "critic").var("weight", &[1, h], Init::Orthogonal { gain: 1.0 });
        let critic_b = (&root / "critic").var("bias", &[1], zero);
        Policy {
            vs,
            shape,
            encoder,
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            actor_w,
            actor_b,
            critic_w,
            critic_b,
        }
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// The trainable parameters with their names, in a fixed (sorted) order.
    pub fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Runs a sequence: `obs` is `[T, B, obs_dim]`, `first` is `[T, B]` with 1.0 where an
    /// episode begins at that step (the state is zeroed before reading it). Returns the
    /// outputs for every step and the state after the last one.
    pub fn sequence(&self, obs: &Tensor, first: &Tensor, state: &LstmState) -> (PolicyOut, LstmState) {
        let (t, b) = (obs.size()[0], obs.size()[1]);
        let mut x = obs.shallow_clone();
        for (w, bias) in &self.encoder {
            x = x.linear(w, Some(bias)).tanh();
        }
        // One product for the input projection of every step.
        let xg = x.linear(&self.w_ih, Some(&(&self.b_ih + &self.b_hh)));
        let w_hh_t = self.w_hh.tr();
        let keep = (first * -1.0 + 1.0).unsqueeze(-1);
        let (mut h, mut c) = (state.h.shallow_clone(), state.c.shallow_clone());
        let mut outs = Vec::with_capacity(t as usize);
        for i in 0..t {
            let k = keep.get(i);
            h = &h * &k;
            c = &c * &k;
            let gates = xg.get(i) + h.mm(&w_hh_t);
            let g = gates.chunk(4, -1);
            c = g[1].sigmoid() * &c + g[0].sigmoid() * g[2].tanh();
            h = g[3].sigmoid() * c.tanh();
            outs.push(h.shallow_clone());
        }
        let hs = Tensor::stack(&outs, 0);
        let logits = hs.linear(&self.actor_w, Some(&self.actor_b));
        let values = hs.linear(&self.critic_w, Some(&self.critic_b)).squeeze_dim(-1);
        debug_assert_eq!(values.size(), [t, b]);
        (
            PolicyOut {
                log_probs: logits.log_softmax(-1, Kind::Float),
                values,
            },
            LstmState { h, c },
        )
    }

    /// One step for a batch: `obs` `[B, obs_dim]`, `first` `[B]`.
    pub fn step(&self, obs: &Tensor, first: &Tensor, state: &LstmState) -> (PolicyOut, LstmState) {
        let (out, next) = self.sequence(&obs.unsqueeze(0), &first.unsqueeze(0), state);
        (
            PolicyOut {
                log_probs: out.log_probs.squeeze_dim(0),
                values: out.values.squeeze_dim(0),
            },
            next,
        )
    }
}
