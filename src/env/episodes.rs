//! Where episodes come from: the [`EpisodeSource`] seam and the built-in start-time source.
//!
//! An environment that finishes an episode asks its source for the next (day, start row).
//! The scanner's curriculum sampler implements the same trait; until it drives training,
//! [`StartTimes`] draws uniformly (seeded) among the configured start times of the loaded
//! days. Draws happen in environment order after each batch step, so a seed gives the same
//! episodes on every backend and thread count.

use super::day::DayData;
use crate::error::{Error, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
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
}

/// Seeded uniform draws over every (day, start time) pair that can start an episode.
pub struct StartTimes {
    starts: Vec<Episode>,
    rng: ChaCha8Rng,
    seed: u64,
}

/// What [`StartTimes`] saves in a checkpoint.
#[derive(serde::Serialize, serde::Deserialize)]
struct StartTimesState {
    /// Number of (day, start) pairs, to catch a resume over other days.
    pairs: usize,
    seed: u64,
    /// The RNG's word position (a u128, as a decimal string for JSON).
    word_pos: String,
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
            rng: ChaCha8Rng::seed_from_u64(seed),
            seed,
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
    fn next_episode(&mut self, _env: usize) -> Result<Episode> {
        let i = self.rng.random_range(0..self.starts.len());
        Ok(self.starts[i].clone())
    }

    fn save_state(&self) -> serde_json::Value {
        serde_json::to_value(StartTimesState {
            pairs: self.starts.len(),
            seed: self.seed,
            word_pos: self.rng.get_word_pos().to_string(),
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
        let pos: u128 = s.word_pos.parse().map_err(|_| {
            Error::Data(format!(
                "episode source state: bad RNG position '{}'",
                s.word_pos
            ))
        })?;
        self.rng.set_word_pos(pos);
        Ok(())
    }
}
