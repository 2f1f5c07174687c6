//! Running observation normalization (as SB3's `VecNormalize` / gymnasium's
//! `NormalizeObservation`): each observation column is shifted and scaled by the mean and
//! variance of every observation seen so far, then clipped. Market features live on very
//! different scales (returns of 1e-3 next to an RSI near 0.5 and minutes to the close in
//! the hundreds); without this the small ones, where the signal often is, barely move the
//! network.
//!
//! The statistics are part of the policy: they are saved in checkpoints (and `eval` uses
//! them), and
//! updated only from rollout observations, in environment order, in f64 (Chan et al.'s
//! parallel update), so runs are reproducible.

/// Per-column running mean and variance of observations.
#[derive(Clone, Debug, PartialEq)]
pub struct ObsNorm {
    pub mean: Vec<f64>,
    pub var: Vec<f64>,
    /// Observations seen (starts at a tiny epsilon, as SB3 does, so the first update
    /// takes the batch's statistics).
    pub count: f64,
    pub clip: f32,
}

pub(crate) const EPS: f64 = 1e-8;

impl ObsNorm {
    pub fn new(dim: usize, clip: f32) -> ObsNorm {
        ObsNorm {
            mean: vec![0.0; dim],
            var: vec![1.0; dim],
            count: 1e-4,
            clip,
        }
    }

    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Folds a batch of observations (`rows × dim`, row-major) into the statistics.
    pub fn update(&mut self, obs: &[f32]) {
        let d = self.dim();
        let rows = obs.len() / d;
        if rows == 0 {
            return;
        }
        let n = rows as f64;
        for j in 0..d {
            let mut s = 0.0;
            for r in 0..rows {
                s += obs[r * d + j] as f64;
            }
            let m = s / n;
            let mut ss = 0.0;
            for r in 0..rows {
                let x = obs[r * d + j] as f64 - m;
                ss += x * x;
            }
            let v = ss / n;
            let total = self.count + n;
            let delta = m - self.mean[j];
            let m2 = self.var[j] * self.count + v * n + delta * delta * self.count * n / total;
            self.mean[j] += delta * n / total;
            self.var[j] = m2 / total;
        }
        self.count += n;
    }

    /// Writes the normalized, clipped `obs` into `out` (same shape).
    pub fn normalize(&self, obs: &[f32], out: &mut [f32]) {
        let d = self.dim();
        let scale: Vec<f64> = self.var.iter().map(|v| 1.0 / (v + EPS).sqrt()).collect();
        for (o, x) in out.chunks_exact_mut(d).zip(obs.chunks_exact(d)) {
            for j in 0..d {
                let z = ((x[j] as f64 - self.mean[j]) * scale[j]) as f32;
                o[j] = z.clamp(-self.clip, self.clip);
            }
        }
    }
}
