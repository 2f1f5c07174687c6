//! Sanity environments (after PufferLib's `ocean/sanity.py`): tasks so small that a
//! correct learner must solve them in seconds, each failing a specific part of it.
//!
//! - [`Bandit`]: one step per episode, a constant observation, one of `arms` actions pays
//!   1 (the others 0). Solved when the policy picks the paying arm: the policy gradient
//!   and the value head work.
//! - [`Memory`]: the first observation shows a cue (±1), the next `delay` show nothing,
//!   and the last asks for the cue back: action 0 for −1, action 1 for +1 pays 1, the
//!   other 0. Without memory the best policy earns 0.5 on average; with a working LSTM
//!   (state carried through the sequence, reset between episodes) it earns 1.

use super::vec_env::{EpisodeLog, VecEnv, read_u64};
use crate::env::StepOut;
use crate::error::{Error, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The multi-armed bandit task.
pub struct Bandit {
    n: usize,
    arms: usize,
    /// The paying arm (fixed by the seed).
    best: u8,
    episodes: Vec<EpisodeLog>,
    final_obs: Vec<f32>,
}

impl Bandit {
    pub fn new(n: usize, arms: usize, seed: u64) -> Bandit {
        let best = ChaCha8Rng::seed_from_u64(seed).random_range(0..arms) as u8;
        Bandit {
            n,
            arms,
            best,
            episodes: Vec::new(),
            final_obs: vec![0.0; n],
        }
    }

    /// The arm that pays.
    pub fn best_arm(&self) -> u8 {
        self.best
    }
}

impl VecEnv for Bandit {
    fn num_envs(&self) -> usize {
        self.n
    }
    fn obs_dim(&self) -> usize {
        1
    }
    fn num_actions(&self) -> usize {
        self.arms
    }
    fn observe(&mut self, obs: &mut [f32]) -> Result<()> {
        obs.fill(1.0);
        Ok(())
    }
    fn step(&mut self, actions: &[u8], out: &mut StepOut<'_>) -> Result<()> {
        for (i, &a) in actions.iter().enumerate() {
            let r = if a == self.best { 1.0 } else { 0.0 };
            out.rewards[i] = r;
            out.terminated[i] = 1;
            out.truncated[i] = 0;
            out.obs[i] = 1.0;
            self.episodes.push(EpisodeLog {
                reward: r as f64,
                length: 1,
                ..EpisodeLog::default()
            });
        }
        Ok(())
    }
    fn final_obs(&self) -> &[f32] {
        &self.final_obs
    }
    fn drain_episodes(&mut self, into: &mut Vec<EpisodeLog>) -> Result<()> {
        into.append(&mut self.episodes);
        Ok(())
    }
    fn save_state(&mut self) -> Result<Vec<u8>> {
        Ok(Vec::new())
    }
    fn load_state(&mut self, bytes: &[u8]) -> Result<()> {
        if !bytes.is_empty() {
            return Err(Error::Data("bandit state must be empty".into()));
        }
        Ok(())
    }
}

/// The memory task.
pub struct Memory {
    n: usize,
    delay: usize,
    /// Per environment: the cue (0 = −1, 1 = +1) and the step within the episode.
    cue: Vec<u8>,
    t: Vec<u32>,
    reward_sum: Vec<f32>,
    rng: ChaCha8Rng,
    episodes: Vec<EpisodeLog>,
    final_obs: Vec<f32>,
}

/// Observation: [cue shown now (±1 or 0), question asked now (1 or 0)].
const MEMORY_OBS: usize = 2;

impl Memory {
    pub fn new(n: usize, delay: usize, seed: u64) -> Memory {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let cue = (0..n).map(|_| rng.random_range(0..2u8)).collect();
        Memory {
            n,
            delay,
            cue,
            t: vec![0; n],
            reward_sum: vec![0.0; n],
            rng,
            episodes: Vec::new(),
            final_obs: vec![0.0; n * MEMORY_OBS],
        }
    }

    fn write_obs(&self, i: usize, obs: &mut [f32]) {
        let t = self.t[i] as usize;
        obs[0] = if t == 0 {
            if self.cue[i] == 1 { 1.0 } else { -1.0 }
        } else {
            0.0
        };
        obs[1] = if t == self.delay { 1.0 } else { 0.0 };
    }
}

impl VecEnv for Memory {
    fn num_envs(&self) -> usize {
        self.n
    }
    fn obs_dim(&self) -> usize {
        MEMORY_OBS
    }
    fn num_actions(&self) -> usize {
        2
    }
    fn observe(&mut self, obs: &mut [f32]) -> Result<()> {
        for i in 0..self.n {
            self.write_obs(i, &mut obs[i * MEMORY_OBS..(i + 1) * MEMORY_OBS]);
        }
        Ok(())
    }
    fn step(&mut self, actions: &[u8], out: &mut StepOut<'_>) -> Result<()> {
        for (i, &a) in actions.iter().enumerate() {
            out.truncated[i] = 0;
            if self.t[i] as usize == self.delay {
                let r = if a == self.cue[i] { 1.0 } else { 0.0 };
                out.rewards[i] = r;
                out.terminated[i] = 1;
                self.episodes.push(EpisodeLog {
                    reward: (self.reward_sum[i] + r) as f64,
                    length: self.t[i] + 1,
                    ..EpisodeLog::default()
                });
                self.t[i] = 0;
                self.reward_sum[i] = 0.0;
                self.cue[i] = self.rng.random_range(0..2u8);
            } else {
                out.rewards[i] = 0.0;
                out.terminated[i] = 0;
                self.t[i] += 1;
            }
            self.write_obs(i, &mut out.obs[i * MEMORY_OBS..(i + 1) * MEMORY_OBS]);
        }
        Ok(())
    }
    fn final_obs(&self) -> &[f32] {
        &self.final_obs
    }
    fn drain_episodes(&mut self, into: &mut Vec<EpisodeLog>) -> Result<()> {
        into.append(&mut self.episodes);
        Ok(())
    }
    fn save_state(&mut self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(16 + self.n * 9);
        out.extend_from_slice(&(self.n as u64).to_le_bytes());
        out.extend_from_slice(&self.rng.get_word_pos().to_le_bytes());
        out.extend_from_slice(&self.cue);
        for t in &self.t {
            out.extend_from_slice(&t.to_le_bytes());
        }
        for r in &self.reward_sum {
            out.extend_from_slice(&r.to_le_bytes());
        }
        Ok(out)
    }
    fn load_state(&mut self, bytes: &[u8]) -> Result<()> {
        let n = read_u64(bytes, 0, "memory task")? as usize;
        if n != self.n || bytes.len() != 24 + n * 9 {
            return Err(Error::Data(format!(
                "memory task state is for {n} environments, this run has {}",
                self.n
            )));
        }
        let pos = u128::from_le_bytes(bytes[8..24].try_into().expect("16 bytes"));
        self.rng.set_word_pos(pos);
        self.cue.copy_from_slice(&bytes[24..24 + n]);
        let at = 24 + n;
        for i in 0..n {
            let b = |k: usize| bytes[at + k..at + k + 4].try_into().expect("4 bytes");
            self.t[i] = u32::from_le_bytes(b(4 * i));
            self.reward_sum[i] = f32::from_le_bytes(b(4 * n + 4 * i));
        }
        Ok(())
    }
}
