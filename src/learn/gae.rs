//! Generalized advantage estimation (Schulman et al. 2016) over a rollout of `T` steps of
//! `N` environments, stored step-major (`[t * N + i]`).
//!
//! Step t of environment i took the action in state s_t and reported `reward`, whether the
//! episode `terminated` (no future: the value after it is 0) or was `truncated` (cut off by
//! a time limit: the future is the value of the state it was cut off in, `final_value`),
//! and the environment then moved on to s_{t+1}, the next episode's first state when the
//! episode ended. The advantage chain never crosses an episode end.

#[cfg(feature = "torch")]
use tch::{Kind, Tensor};

/// The rollout's advantages and returns (`advantages + values`).
pub struct Gae {
    pub advantages: Vec<f32>,
    pub returns: Vec<f32>,
}

/// Inputs of [`gae`]; every slice is `T × N` step-major, except `next_value` (`N`, the
/// value of the state after the rollout).
pub struct GaeInput<'a> {
    pub n: usize,
    pub rewards: &'a [f32],
    pub values: &'a [f32],
    pub terminated: &'a [u8],
    pub truncated: &'a [u8],
    pub final_values: &'a [f32],
    pub next_value: &'a [f32],
    pub gamma: f32,
    pub lambda: f32,
}

/// GAE(γ, λ), backwards over the steps, all environments at once.
pub fn gae(x: &GaeInput<'_>) -> Gae {
    let n = x.n;
    let len = x.rewards.len();
    assert!(
        n > 0 && len.is_multiple_of(n),
        "rollout of {len} values is not T × {n}"
    );
    for s in [x.values, x.final_values] {
        assert_eq!(s.len(), len);
    }
    assert_eq!(x.terminated.len(), len);
    assert_eq!(x.truncated.len(), len);
    assert_eq!(x.next_value.len(), n);
    let t_len = len / n;
    let mut adv = vec![0f32; len];
    let mut last = vec![0f32; n];
    for t in (0..t_len).rev() {
        let row = t * n;
        for (i, last) in last.iter_mut().enumerate() {
            let k = row + i;
            let next = if t + 1 < t_len {
                x.values[k + n]
            } else {
                x.next_value[i]
            };
            let (future, carry) = if x.terminated[k] != 0 {
                (0.0, 0.0)
            } else if x.truncated[k] != 0 {
                (x.final_values[k], 0.0)
            } else {
                (next, 1.0)
            };
            let delta = x.rewards[k] + x.gamma * future - x.values[k];
            *last = delta + x.gamma * x.lambda * carry * *last;
            adv[k] = *last;
        }
    }
    let returns = adv.iter().zip(x.values).map(|(a, v)| a + v).collect();
    Gae {
        advantages: adv,
        returns,
    }
}

/// Inputs of [`gae_tensors`]: `[T, N]` tensors on one device, except `next_value` (`[N]`).
#[cfg(feature = "torch")]
pub struct GaeTensors<'a> {
    pub rewards: &'a Tensor,
    pub values: &'a Tensor,
    /// i32: bit 0 terminated, bit 1 truncated.
    pub flags: &'a Tensor,
    pub final_values: &'a Tensor,
    pub next_value: &'a Tensor,
    pub gamma: f32,
    pub lambda: f32,
}

/// [`gae`] as tensor ops on the inputs' device, backwards over the steps: the same
/// operations in the same order on f32, so the same bits. Returns (advantages, returns).
#[cfg(feature = "torch")]
pub fn gae_tensors(x: &GaeTensors<'_>) -> (Tensor, Tensor) {
    let t_len = x.rewards.size()[0];
    let terminated = x.flags.bitwise_and(1).ne(0);
    let truncated = x.flags.bitwise_and(2).ne(0);
    let zero = x.next_value.zeros_like();
    let gl = x.gamma * x.lambda;
    let mut last = zero.shallow_clone();
    let mut adv = Vec::with_capacity(t_len as usize);
    for t in (0..t_len).rev() {
        let next = if t + 1 < t_len {
            x.values.get(t + 1)
        } else {
            x.next_value.shallow_clone()
        };
        let (term, trunc) = (terminated.get(t), truncated.get(t));
        let future = zero.where_self(&term, &x.final_values.get(t).where_self(&trunc, &next));
        // 1.0 where the episode goes on (neither flag), else 0.0.
        let carry = x.flags.get(t).eq(0).to_kind(Kind::Float);
        let delta = (x.rewards.get(t) + future * x.gamma as f64) - x.values.get(t);
        last = delta + carry * gl as f64 * &last;
        adv.push(last.shallow_clone());
    }
    adv.reverse();
    let adv = Tensor::stack(&adv, 0);
    let returns = &adv + x.values;
    (adv, returns)
}

#[cfg(all(test, feature = "torch"))]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The tensor version computes the host loop's bits, on rollouts with every kind of
    /// step end (terminated, truncated, both, neither).
    #[test]
    fn tensors_equal_the_host_loop_bit_for_bit() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let (t, n) = (37, 23);
        let f = |rng: &mut rand_chacha::ChaCha8Rng| -> Vec<f32> {
            (0..t * n)
                .map(|_| rng.random::<f32>() * 4.0 - 2.0)
                .collect()
        };
        let (rewards, values, final_values) = (f(&mut rng), f(&mut rng), f(&mut rng));
        let flags: Vec<i32> = (0..t * n).map(|_| rng.random_range(0..8) % 4).collect();
        let next_value: Vec<f32> = (0..n).map(|_| rng.random::<f32>()).collect();
        let terminated: Vec<u8> = flags.iter().map(|f| (f & 1) as u8).collect();
        let truncated: Vec<u8> = flags.iter().map(|f| (f >> 1 & 1) as u8).collect();
        let (gamma, lambda) = (0.99f32, 0.95f32);
        let host = gae(&GaeInput {
            n,
            rewards: &rewards,
            values: &values,
            terminated: &terminated,
            truncated: &truncated,
            final_values: &final_values,
            next_value: &next_value,
            gamma,
            lambda,
        });
        let tn = |x: &[f32]| Tensor::from_slice(x).view([t as i64, n as i64]);
        let (adv, ret) = gae_tensors(&GaeTensors {
            rewards: &tn(&rewards),
            values: &tn(&values),
            flags: &Tensor::from_slice(&flags).view([t as i64, n as i64]),
            final_values: &tn(&final_values),
            next_value: &Tensor::from_slice(&next_value),
            gamma,
            lambda,
        });
        let read = |x: &Tensor| {
            let mut v = vec![0f32; t * n];
            x.view([-1]).copy_data(&mut v, t * n);
            v
        };
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&read(&adv)), bits(&host.advantages));
        assert_eq!(bits(&read(&ret)), bits(&host.returns));
    }
}
