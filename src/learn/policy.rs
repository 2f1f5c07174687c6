//! The recurrent actor-critic: observation encoder (MLP, tanh) → LSTM → categorical actor
//! head and value head, initialized as CleanRL does (orthogonal weights with gain √2 for the
//! encoder, 1 for the LSTM, 0.01 for the actor and 1 for the critic; zero biases).
//!
//! The LSTM's parameters are PyTorch's (`weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`,
//! gates i, f, g, o) and it runs in libtorch's fused kernel. The state must be zeroed
//! *inside* a sequence wherever an episode began (CleanRL's per-step `(1 − done) · h`);
//! [`Policy::sequence`] does that by packing episode pieces into rows instead of stepping
//! one time step at a time, which makes the backward pass several times cheaper.
//!
//! # One buffer
//! Every parameter's data is a slice of one f32 buffer ([`Policy::flat`]): the LSTM's
//! `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh` first and in that order, which is
//! cuDNN's packed weight layout (gates i, f, g, o; matrices, then biases), so libtorch can
//! hand them to cuDNN in place instead of copying them into a packed buffer (and warning)
//! on every call (f32 only; not yet run on a GPU); then the encoder, actor and critic.
//! The optimizer updates the whole buffer with a handful of element-wise kernels instead
//! of a handful per parameter ([`super::ppo::Adam`]). The parameters stay separate
//! variables with their own names and gradients.

pub use super::network::PolicyShape;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::nn::{self, Init};
use tch::{Device, Kind, Tensor};

/// The network; its parameters live in `vs`.
pub struct Policy {
    pub vs: nn::VarStore,
    /// Every parameter's data, in one f32 buffer (module docs, "One buffer").
    flat: Tensor,
    /// Each parameter's name and offset in `flat`, in buffer order.
    segments: Vec<(String, i64)>,
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
    /// The LSTM's compute format ([`Policy::set_lstm_kind`]; f32 by default).
    lstm_kind: Kind,
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
    /// A freshly initialized policy; the weights depend only on `seed` (drawn from a
    /// ChaCha stream of our own, not libtorch's global generator, so concurrent users of
    /// libtorch cannot change them).
    pub fn new(shape: PolicyShape, device: Device, seed: u64) -> Policy {
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut ortho = |path: &nn::Path, name: &str, rows: i64, cols: i64, gain: f64| {
            let init = orthogonal(&mut rng, rows, cols, gain).to_device(device);
            path.var_copy(name, &init)
        };
        let zeros = |path: &nn::Path, name: &str, n: i64| path.var(name, &[n], Init::Const(0.0));
        let mut encoder = Vec::with_capacity(shape.encoder.len());
        let mut width = shape.obs_dim as i64;
        for (i, &w) in shape.encoder.iter().enumerate() {
            let w = w as i64;
            let path = &root / format!("encoder{i}");
            let weight = ortho(&path, "weight", w, width, std::f64::consts::SQRT_2);
            encoder.push((weight, zeros(&path, "bias", w)));
            width = w;
        }
        let h = shape.hidden as i64;
        let lstm = &root / "lstm";
        let w_ih = ortho(&lstm, "weight_ih", 4 * h, width, 1.0);
        let w_hh = ortho(&lstm, "weight_hh", 4 * h, h, 1.0);
        let b_ih = zeros(&lstm, "bias_ih", 4 * h);
        let b_hh = zeros(&lstm, "bias_hh", 4 * h);
        let actor = &root / "actor";
        let actor_w = ortho(&actor, "weight", shape.n_actions as i64, h, 0.01);
        let actor_b = zeros(&actor, "bias", shape.n_actions as i64);
        let critic = &root / "critic";
        let critic_w = ortho(&critic, "weight", 1, h, 1.0);
        let critic_b = zeros(&critic, "bias", 1);
        // One buffer under every parameter (module docs, "One buffer"): the LSTM's four
        // first, in cuDNN's layout, then the rest; each variable's data becomes its slice.
        let mut in_order: Vec<(&str, &Tensor)> = vec![
            ("lstm.weight_ih", &w_ih),
            ("lstm.weight_hh", &w_hh),
            ("lstm.bias_ih", &b_ih),
            ("lstm.bias_hh", &b_hh),
        ];
        let encoder_names: Vec<(String, String)> = (0..encoder.len())
            .map(|i| (format!("encoder{i}.weight"), format!("encoder{i}.bias")))
            .collect();
        for ((w, b), (wn, bn)) in encoder.iter().zip(&encoder_names) {
            in_order.extend([(wn.as_str(), w), (bn.as_str(), b)]);
        }
        in_order.extend([
            ("actor.weight", &actor_w),
            ("actor.bias", &actor_b),
            ("critic.weight", &critic_w),
            ("critic.bias", &critic_b),
        ]);
        let flat = Tensor::cat(
            &in_order
                .iter()
                .map(|(_, t)| t.detach().view([-1]))
                .collect::<Vec<_>>(),
            0,
        );
        let mut segments = Vec::with_capacity(in_order.len());
        let mut at = 0;
        for (name, t) in &in_order {
            let n = t.numel() as i64;
            t.shallow_clone()
                .set_data(&flat.narrow(0, at, n).view(t.size().as_slice()));
            segments.push((name.to_string(), at));
            at += n;
        }
        Policy {
            vs,
            flat,
            segments,
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
            lstm_kind: Kind::Float,
        }
    }

    /// Runs the LSTM's matrix products in `kind` (`Kind::BFloat16`; `Kind::Float` for
    /// f32, the default): the parameters, inputs and states are cast at each call, so
    /// the weights and their gradients stay f32.
    pub fn set_lstm_kind(&mut self, kind: Kind) {
        self.lstm_kind = kind;
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// The one buffer every parameter's data lies in (module docs, "One buffer"):
    /// writing it writes the parameters.
    pub fn flat(&self) -> &Tensor {
        &self.flat
    }

    /// Where parameter `name` begins in [`Policy::flat`].
    pub fn offset(&self, name: &str) -> Option<i64> {
        self.segments
            .iter()
            .find(|(n, _)| n == name)
            .map(|&(_, at)| at)
    }

    /// The trainable parameters with their names, in a fixed (sorted) order.
    pub fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Runs a sequence: `obs` is `[T, B, obs_dim]`; `first` (`T × B`, step-major, on the
    /// host) holds 1.0 where an episode begins at that step, and the LSTM state is zeroed
    /// before reading such a step. Returns the outputs of every step, and the state after
    /// the last step when no episode began after step 0.
    ///
    /// The recurrence runs in libtorch's fused LSTM. Episodes that begin inside the
    /// sequence are handled by packing: every (environment, episode piece) becomes its own
    /// row, starting from the carried state (first piece) or zeros (later pieces), padded
    /// to T and unpacked afterwards — the same numbers as zeroing the state per step,
    /// without a per-step loop in the autograd graph.
    pub fn sequence(
        &self,
        obs: &Tensor,
        first: &[f32],
        state: &LstmState,
    ) -> (PolicyOut, Option<LstmState>) {
        let size = obs.size();
        let (t, b) = (size[0] as usize, size[1] as usize);
        assert_eq!(first.len(), t * b, "first flags are not T × B");
        let dev = self.device();
        let x = self.encode(obs);
        let keep0: Vec<f32> = first[..b].iter().map(|f| 1.0 - f).collect();
        let keep0 = Tensor::from_slice(&keep0).to_device(dev).unsqueeze(-1);
        let (h0, c0) = (&state.h * &keep0, &state.c * &keep0);
        let (hs, last) = if first[b..].iter().all(|&f| f == 0.0) {
            let (out, h, c) = self.fused_lstm(&x, &h0, &c0);
            let last = LstmState {
                h: h.squeeze_dim(0),
                c: c.squeeze_dim(0),
            };
            (out, Some(last))
        } else {
            let p = Packing::new(first, t, b);
            let (bp, hidden, width) = (p.rows as i64, self.shape.hidden as i64, x.size()[2]);
            let long = |v: &[i64]| Tensor::from_slice(v).to_device(dev);
            let zero_row = |w: i64| Tensor::zeros([1, w], (Kind::Float, dev));
            let xs = Tensor::cat(&[x.view([(t * b) as i64, width]), zero_row(width)], 0)
                .index_select(0, &long(&p.gather))
                .view([t as i64, bp, width]);
            let init = long(&p.init);
            let h_init = Tensor::cat(&[h0, zero_row(hidden)], 0).index_select(0, &init);
            let c_init = Tensor::cat(&[c0, zero_row(hidden)], 0).index_select(0, &init);
            let (out, _, _) = self.fused_lstm(&xs, &h_init, &c_init);
            let hs = out
                .view([t as i64 * bp, hidden])
                .index_select(0, &long(&p.unpack))
                .view([t as i64, b as i64, hidden]);
            (hs, None)
        };
        (self.heads(&hs), last)
    }

    /// The observation encoder over `[.., obs_dim]`.
    fn encode(&self, obs: &Tensor) -> Tensor {
        let mut x = obs.shallow_clone();
        for (w, bias) in &self.encoder {
            x = x.linear(w, Some(bias)).tanh();
        }
        x
    }

    /// The actor and critic heads over LSTM outputs `[.., hidden]`.
    fn heads(&self, hs: &Tensor) -> PolicyOut {
        let logits = hs.linear(&self.actor_w, Some(&self.actor_b));
        PolicyOut {
            log_probs: logits.log_softmax(-1, Kind::Float),
            values: hs
                .linear(&self.critic_w, Some(&self.critic_b))
                .squeeze_dim(-1),
        }
    }

    /// libtorch's LSTM over `x` (`[T, B, in]`) from `(h0, c0)` (`[B, hidden]`): the
    /// outputs `[T, B, hidden]` and the final state (`[1, B, hidden]` each), computed in
    /// [`Policy::set_lstm_kind`]'s format and returned as f32 (casts to the format a
    /// tensor already has are no-ops, so f32 runs exactly as without them).
    fn fused_lstm(&self, x: &Tensor, h0: &Tensor, c0: &Tensor) -> (Tensor, Tensor, Tensor) {
        let cast = |t: &Tensor| t.to_kind(self.lstm_kind);
        let params = [&self.w_ih, &self.w_hh, &self.b_ih, &self.b_hh].map(cast);
        let (has_biases, layers, dropout, train, bidirectional, batch_first) =
            (true, 1, 0.0, true, false, false);
        let (out, h, c) = cast(x).lstm(
            &[&cast(&h0.unsqueeze(0)), &cast(&c0.unsqueeze(0))],
            &[&params[0], &params[1], &params[2], &params[3]],
            has_biases,
            layers,
            dropout,
            train,
            bidirectional,
            batch_first,
        );
        let f32 = |t: Tensor| t.to_kind(Kind::Float);
        (f32(out), f32(h), f32(c))
    }

    pub fn load_parameters(
        &self,
        tensors: &std::collections::HashMap<String, Tensor>,
        prefix: &str,
    ) -> Result<(), String> {
        tch::no_grad(|| {
            for (n, p) in self.named_parameters() {
                let key = format!("{prefix}{n}");
                let src = tensors.get(&key).ok_or_else(|| {
                    format!("has no tensor {key}: not a checkpoint of this policy")
                })?;
                if src.size() != p.size() {
                    return Err(format!(
                        "tensor {key} has shape {:?}, the policy {:?} (another train.encoder / train.hidden / env config?)",
                        src.size(),
                        p.size()
                    ));
                }
                p.shallow_clone().copy_(src);
            }
            Ok(())
        })
    }

    /// One step for a batch: `obs` `[B, obs_dim]`, `first` (`B`) as in
    /// [`Policy::sequence`]; returns the outputs and the next state.
    pub fn step(&self, obs: &Tensor, first: &[f32], state: &LstmState) -> (PolicyOut, LstmState) {
        let keep: Vec<f32> = first.iter().map(|f| 1.0 - f).collect();
        self.step_masked(
            obs,
            &Tensor::from_slice(&keep).to_device(self.device()),
            state,
        )
    }

    /// [`Policy::step`] with the episode starts on the device: `keep` (`[B]` f32) is 0.0
    /// where an episode begins (the state is zeroed), 1.0 elsewhere.
    pub fn step_masked(
        &self,
        obs: &Tensor,
        keep: &Tensor,
        state: &LstmState,
    ) -> (PolicyOut, LstmState) {
        let keep = keep.unsqueeze(-1);
        let (h0, c0) = (&state.h * &keep, &state.c * &keep);
        let (hs, h, c) = self.fused_lstm(&self.encode(&obs.unsqueeze(0)), &h0, &c0);
        let out = self.heads(&hs.squeeze_dim(0));
        let next = LstmState {
            h: h.squeeze_dim(0),
            c: c.squeeze_dim(0),
        };
        (out, next)
    }
}

/// A `rows × cols` matrix with orthonormal rows or columns (whichever are fewer) times
/// `gain`: PyTorch's `nn.init.orthogonal_` (QR of a standard normal matrix, signs fixed
/// by R's diagonal), drawn from `rng`.
fn orthogonal(rng: &mut ChaCha8Rng, rows: i64, cols: i64, gain: f64) -> Tensor {
    let (tall, wide) = (rows.max(cols), rows.min(cols));
    let normal: Vec<f32> = (0..tall * wide)
        .map(|_| rng.sample::<f32, _>(rand_distr::StandardNormal))
        .collect();
    let a = Tensor::from_slice(&normal).view([tall, wide]);
    let (q, r) = Tensor::linalg_qr(&a, "reduced");
    let q = q * r.diagonal(0, 0, 1).sign().unsqueeze(0);
    let q = if rows < cols { q.tr() } else { q };
    (q * gain).contiguous()
}

/// Where each (environment, episode piece) of a `T × B` sequence goes when every piece is
/// its own row of a `T × rows` sequence starting at time 0.
struct Packing {
    rows: usize,
    /// `T × rows`: the row of the flattened `[T·B (+1 zero row)]` input read at each packed
    /// position (the zero row `T·B` for padding).
    gather: Vec<i64>,
    /// `T × B`: the packed position each original step's output comes from.
    unpack: Vec<i64>,
    /// `rows`: the initial-state row of each piece (its environment for a first piece,
    /// the zero row `B` for a piece that begins an episode).
    init: Vec<i64>,
}

impl Packing {
    fn new(first: &[f32], t: usize, b: usize) -> Packing {
        let mut pieces = Vec::with_capacity(b);
        for env in 0..b {
            let mut t0 = 0;
            for step in 1..t {
                if first[step * b + env] != 0.0 {
                    pieces.push((env, t0, step - t0));
                    t0 = step;
                }
            }
            pieces.push((env, t0, t - t0));
        }
        let rows = pieces.len();
        let mut gather = vec![(t * b) as i64; t * rows];
        let mut unpack = vec![0i64; t * b];
        let mut init = Vec::with_capacity(rows);
        for (r, &(env, t0, len)) in pieces.iter().enumerate() {
            for tau in 0..len {
                gather[tau * rows + r] = ((t0 + tau) * b + env) as i64;
                unpack[(t0 + tau) * b + env] = (tau * rows + r) as i64;
            }
            init.push(if t0 == 0 { env as i64 } else { b as i64 });
        }
        Packing {
            rows,
            gather,
            unpack,
            init,
        }
    }
}
