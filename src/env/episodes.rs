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
}

/// Seeded uniform draws over every (day, start time) pair that can start an episode.
pub struct StartTimes {
    starts: Vec<Episode>,
    rng: ChaCha8Rng,
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
}
