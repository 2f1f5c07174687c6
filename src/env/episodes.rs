//! Where episodes come from: the [`EpisodeSource`] seam and the built-in start-time source.
//!
//! An environment that finishes an episode asks its source for the next (day, start row).
//! The scanner's curriculum sampler implements the same trait; [`StartTimes`] draws
//! uniformly (seeded) among the configured start times of the loaded days. Its `k`-th draw
//! for environment `i` is a function of `(seed, i, k)` alone, so the episodes do not depend
//! on the order in which environments ask: the CPU engine (which asks after each step, in
//! environment order) and the GPU backends (which queue episodes ahead) run the same
//! episodes for a seed, on every thread count.

use super::day::DayData;
use crate::error::{Error, Result};
use std::sync::Arc;

/// One episode to run: a day and the row whose close is the first decision.
#[derive(Clone, Debug)]
pub struct Episode {
    pub day: Arc<DayData>,
    pub start_row: u32,
}

impl Episode {
    /// Checks that the episode can take at least one step.
    pub fn check(&self) -> Result<()> {
        let d = &self.day;
        if self.start_row < d.first_row || self.start_row >= d.last_row {
            return Err(Error::Data(format!(
                "{} {}: episode start row {} is outside the session rows {}..{} (an episode needs a later session bar to step to)",
                d.symbol, d.date, self.start_row, d.first_row, d.last_row
            )));
        }
        Ok(())
    }
}

/// Hands out episodes to environments on reset.
pub trait EpisodeSource: Send {
    /// The next episode for environment `env`.
    fn next_episode(&mut self, env: usize) -> Result<Episode>;

    /// Everything that decides future draws (RNG position, usage counts, …), for a
    /// checkpoint: a source built from the same config and given this state by
    /// [`EpisodeSource::load_state`] draws the same sequence as this one from here on.
    fn save_state(&self) -> serde_json::Value;

    /// Restores a state written by [`EpisodeSource::save_state`]; errors name what does
    /// not match (another seed, other days).
    fn load_state(&mut self, state: &serde_json::Value) -> Result<()>;

    /// The most bars a day this source can hand out has, where it knows (the GPU
    /// backends size their day slots with it).
    fn max_day_rows(&self) -> Option<usize> {
        None
    }
}

/// Seeded uniform draws over every (day, start time) pair that can start an episode.
pub struct StartTimes {
    starts: Vec<Episode>,
    seed: u64,
    /// Draws made so far, per environment.
    drawn: Vec<u64>,
}

/// What [`StartTimes`] saves in a checkpoint.
#[derive(serde::Serialize, serde::Deserialize)]
struct StartTimesState {
    /// Number of (day, start) pairs, to catch a resume over other days.
    pairs: usize,
    seed: u64,
    /// Draws made so far, per environment.
    drawn: Vec<u64>,
}

/// The `k`-th draw of environment `env` among `n` pairs: xxh3 of `(env, k)` under `seed`,
/// mapped to `0..n` by a widening multiply (bias below `n / 2^64`).
fn pick(seed: u64, env: u64, k: u64, n: usize) -> usize {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&env.to_le_bytes());
    key[8..].copy_from_slice(&k.to_le_bytes());
    let h = xxhash_rust::xxh3::xxh3_64_with_seed(&key, seed);
    ((h as u128 * n as u128) >> 64) as usize
}

impl StartTimes {
    /// `times` are seconds after New York midnight; a time with no session bar after it on
    /// a day is skipped for that day. Errors when no pair is usable.
    pub fn new(days: &[Arc<DayData>], times: &[u32], seed: u64) -> Result<StartTimes> {
        let starts: Vec<Episode> = days
            .iter()
            .flat_map(|d| {
                times.iter().filter_map(|&t| {
                    d.start_row_at(t).map(|start_row| Episode {
                        day: d.clone(),
                        start_row,
                    })
                })
            })
            .collect();
        if starts.is_empty() {
            return Err(Error::Data(format!(
                "no episode can start: none of the {} loaded day(s) has session bars after the start times (env.start_times); load days with bars in the session or move the start times",
                days.len()
            )));
        }
        Ok(StartTimes {
            starts,
            seed,
            drawn: Vec::new(),
        })
    }

    /// Number of distinct episodes.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }
}

impl EpisodeSource for StartTimes {
    fn next_episode(&mut self, env: usize) -> Result<Episode> {
        if self.drawn.len() <= env {
            self.drawn.resize(env + 1, 0);
        }
        let k = self.drawn[env];
        self.drawn[env] += 1;
        Ok(self.starts[pick(self.seed, env as u64, k, self.starts.len())].clone())
    }

    fn max_day_rows(&self) -> Option<usize> {
        self.starts.iter().map(|e| e.day.rows()).max()
    }

    fn save_state(&self) -> serde_json::Value {
        serde_json::to_value(StartTimesState {
            pairs: self.starts.len(),
            seed: self.seed,
            drawn: self.drawn.clone(),
        })
        .expect("a plain struct serializes")
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        let s: StartTimesState = serde_json::from_value(state.clone()).map_err(|e| {
            Error::Data(format!(
                "episode source state is not a start-time state: {e}"
            ))
        })?;
        if s.pairs != self.starts.len() || s.seed != self.seed {
            return Err(Error::Data(format!(
                "the saved episode source had {} (day, start) pairs and seed {}, this one has {} and seed {}: resume with the days and seed of the saved run",
                s.pairs,
                s.seed,
                self.starts.len(),
                self.seed
            )));
        }
        self.drawn = s.drawn;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_uniform_and_order_free() {
        // Every pair drawn about equally often (chi-square, 9 degrees of freedom).
        let n = 10;
        let mut counts = [0f64; 10];
        let draws = 100_000;
        for k in 0..draws / 4 {
            for env in 0..4 {
                counts[pick(3, env, k, n)] += 1.0;
            }
        }
        let e = draws as f64 / n as f64;
        let chi2: f64 = counts.iter().map(|c| (c - e) * (c - e) / e).sum();
        assert!(chi2 < 27.9, "chi2 {chi2} (p < 0.001 at 9 dof)"); // 27.88
        // The k-th draw of an env is the same whichever env asked first.
        assert_eq!(pick(3, 1, 5, n), pick(3, 1, 5, n));
        assert_ne!(
            (0..20).map(|k| pick(3, 0, k, n)).collect::<Vec<_>>(),
            (0..20).map(|k| pick(3, 1, k, n)).collect::<Vec<_>>()
        );
    }
}
