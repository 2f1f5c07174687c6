//! Generalized advantage estimation (Schulman et al. 2016) over a rollout of `T` steps of
//! `N` environments, stored step-major (`[t * N + i]`).
//!
//! Step t of environment i took the action in state s_t and reported `reward`, whether the
//! episode `terminated` (no future: the value after it is 0) or was `truncated` (cut off by
//! a time limit: the future is the value of the state it was cut off in, `final_value`),
//! and the environment then moved on to s_{t+1}, the next episode's first state when the
//! episode ended. The advantage chain never crosses an episode end.

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
