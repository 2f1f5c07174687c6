//! Where episodes come from: the [`EpisodeSource`] seam and the built-in start-time source.
//!
//! An environment that finishes an episode asks its source for the next (day, start row).
//! The scanner's curriculum sampler implements the same trait; [`StartTimes`] draws
//! uniformly (seeded) among the configured start times of the loaded days. Its `k`-th draw
//! for environment `i` is a function of `(seed, i, k)` alone, so the episodes do not depend
//! on the order in which environments ask: the CPU engine (which asks after each step, in
//! environment order) and the GPU backends (which queue episodes ahead) run the same
//! episodes for a seed, on every thread count.
//!
//! # Day-major draws (universes larger than a GPU's day slots)
//! A GPU engine holds a fixed number of days on the device. When the universe has more,
//! it asks its source to [`EpisodeSource::limit_days`]: [`StartTimes`] then draws only
//! among a **window** of days that moves through the whole universe one day at a time,
//! in a seeded order. The engine moves it ([`EpisodeSource::move_window`]) when the day
//! that would come in has a slot free beside the days still in use, at most once per
//! queue top-up. Every day has its turn, each resident day serves many episodes, and the
//! days that left the window are released as their running and queued episodes end. The
//! draws then depend on when the engine moves the window, so a windowed run is
//! reproducible for a backend and its slot count, but not equal to a CPU run.

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
    /// How many distinct days this source can hand out, where it knows.
    fn num_days(&self) -> Option<usize> {
        None
    }
    /// From now on, draw among a window of at most `days` distinct days, which
    /// [`EpisodeSource::move_window`] moves on (module docs, "Day-major draws"). Returns
    /// false when this source cannot (it then draws as before).
    fn limit_days(&mut self, _days: usize) -> Result<bool> {
        Ok(false)
    }
    /// The days the window would hold after one move; `None` without a window.
    fn window_after_move(&self) -> Option<Vec<Arc<DayData>>> {
        None
    }
    /// Moves the window on by one day (the first leaves, the next in the order comes in).
    fn move_window(&mut self) {}
}

/// Seeded uniform draws over every (day, start time) pair that can start an episode,
/// or over those of a moving window of days ([`EpisodeSource::limit_days`]).
pub struct StartTimes {
    starts: Vec<Episode>,
    seed: u64,
    /// Draws made so far, per environment.
    drawn: Vec<u64>,
    /// Per day (in the order of the days given to [`StartTimes::new`]), its pairs'
    /// indices into `starts`.
    day_pairs: Vec<Vec<u32>>,
    window: Option<Window>,
}

/// The moving window of days of a limited [`StartTimes`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Window {
    /// Days drawn among at a time.
    days: usize,
    /// Moves so far: the window holds positions `at .. at + days` of the day order.
    at: u64,
}

/// What [`StartTimes`] saves in a checkpoint.
#[derive(serde::Serialize, serde::Deserialize)]
struct StartTimesState {
    /// Number of (day, start) pairs, to catch a resume over other days.
    pairs: usize,
    seed: u64,
    /// Draws made so far, per environment.
    drawn: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    window: Option<Window>,
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
        let mut starts: Vec<Episode> = Vec::new();
        let mut day_pairs: Vec<Vec<u32>> = Vec::new();
        for d in days {
            let first = starts.len() as u32;
            starts.extend(times.iter().filter_map(|&t| {
                d.start_row_at(t).map(|start_row| Episode {
                    day: d.clone(),
                    start_row,
                })
            }));
            if starts.len() as u32 > first {
                day_pairs.push((first..starts.len() as u32).collect());
            }
        }
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
            day_pairs,
            window: None,
        })
    }

    /// The day (index into `day_pairs`) at position `p` of the seeded order in which the
    /// window visits the days: a fixed permutation (an affine map modulo the day count,
    /// with a multiplier coprime to it), so every day comes once per cycle.
    fn day_at(&self, p: u64) -> usize {
        let n = self.day_pairs.len() as u64;
        let mut a = (xxhash_rust::xxh3::xxh3_64_with_seed(b"day-order", self.seed) % n).max(1);
        while gcd(a, n) != 1 {
            a += 1;
        }
        let b = xxhash_rust::xxh3::xxh3_64_with_seed(b"day-offset", self.seed) % n;
        ((a * (p % n) + b) % n) as usize
    }

    /// The days (indices into `day_pairs`) a window of `days` holds at position `at`.
    fn window_days(&self, days: usize, at: u64) -> impl Iterator<Item = usize> + '_ {
        (0..days as u64).map(move |j| self.day_at(at + j))
    }

    /// Number of distinct episodes.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl EpisodeSource for StartTimes {
    fn next_episode(&mut self, env: usize) -> Result<Episode> {
        if self.drawn.len() <= env {
            self.drawn.resize(env + 1, 0);
        }
        let k = self.drawn[env];
        self.drawn[env] += 1;
        let Some(w) = self.window.clone() else {
            return Ok(self.starts[pick(self.seed, env as u64, k, self.starts.len())].clone());
        };
        // Uniform over the pairs of the window's days.
        let days: Vec<usize> = self.window_days(w.days, w.at).collect();
        let count: usize = days.iter().map(|&d| self.day_pairs[d].len()).sum();
        let mut r = pick(self.seed, env as u64, k, count);
        let mut chosen = 0;
        for &d in &days {
            let pairs = &self.day_pairs[d];
            if r < pairs.len() {
                chosen = pairs[r] as usize;
                break;
            }
            r -= pairs.len();
        }
        Ok(self.starts[chosen].clone())
    }

    fn max_day_rows(&self) -> Option<usize> {
        self.starts.iter().map(|e| e.day.rows()).max()
    }

    fn num_days(&self) -> Option<usize> {
        Some(self.day_pairs.len())
    }

    fn limit_days(&mut self, days: usize) -> Result<bool> {
        if days == 0 {
            return Err(Error::Usage("a day window needs at least one day".into()));
        }
        self.window = (days < self.day_pairs.len()).then_some(Window { days, at: 0 });
        Ok(true)
    }

    fn window_after_move(&self) -> Option<Vec<Arc<DayData>>> {
        let w = self.window.as_ref()?;
        Some(
            self.window_days(w.days, w.at + 1)
                .map(|d| self.starts[self.day_pairs[d][0] as usize].day.clone())
                .collect(),
        )
    }

    fn move_window(&mut self) {
        if let Some(w) = &mut self.window {
            w.at += 1;
        }
    }

    fn save_state(&self) -> serde_json::Value {
        serde_json::to_value(StartTimesState {
            pairs: self.starts.len(),
            seed: self.seed,
            drawn: self.drawn.clone(),
            window: self.window.clone(),
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
        // The saved schedule goes on where it was, whatever window this run set up.
        self.window = s.window;
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

    fn days(n: usize) -> Vec<Arc<DayData>> {
        (0..n)
            .map(|i| {
                let date = chrono::NaiveDate::from_ymd_opt(2024, 1, 2).unwrap()
                    + chrono::Days::new(i as u64);
                // 1 m bars from 09:30 to 16:00.
                let bars: Vec<crate::env::BarRec> = (0..390)
                    .map(|r| crate::env::BarRec {
                        ts_ms: (34_200 + 60 * r) * 1000,
                        open: 10.0,
                        close: 10.0,
                        volume: 100.0,
                        ..Default::default()
                    })
                    .collect();
                Arc::new(DayData::assemble(
                    format!("S{i}"),
                    date,
                    crate::bars::BarSize::M1,
                    0,
                    bars,
                    Vec::new(),
                    0,
                    (34_200_000, 57_600_000),
                    Vec::new(),
                ))
            })
            .collect()
    }

    #[test]
    fn a_window_moves_through_every_day_and_holds_at_most_its_size() {
        let d = days(11);
        let mut s = StartTimes::new(&d, &[34_200, 36_000], 7).unwrap();
        assert_eq!(s.num_days(), Some(11));
        assert!(s.limit_days(3).unwrap());
        let mut seen = std::collections::HashSet::new();
        for r in 0..40u64 {
            let next: Vec<String> = s
                .window_after_move()
                .unwrap()
                .iter()
                .map(|d| d.symbol.clone())
                .collect();
            let mut at_once = std::collections::HashSet::new();
            for k in 0..10 {
                let e = s.next_episode(((r * 10 + k) % 4) as usize).unwrap();
                at_once.insert(e.day.symbol.clone());
                seen.insert(e.day.symbol.clone());
            }
            // Between moves: the 3 days of one position of the window.
            assert!(at_once.len() <= 3, "{at_once:?}");
            s.move_window();
            let after: std::collections::HashSet<String> = (0..30)
                .map(|k| {
                    s.clone_for_test()
                        .next_episode(k)
                        .unwrap()
                        .day
                        .symbol
                        .clone()
                })
                .collect();
            assert!(
                after.iter().all(|d| next.contains(d)),
                "{after:?} not in {next:?}"
            );
        }
        assert_eq!(seen.len(), 11, "every day has its turn: {seen:?}");

        // A snapshot resumes the schedule.
        let saved = s.save_state();
        let next: Vec<String> = (0..30)
            .map(|k| s.next_episode(k % 3).unwrap().day.symbol.clone())
            .collect();
        let mut t = StartTimes::new(&d, &[34_200, 36_000], 7).unwrap();
        t.load_state(&saved).unwrap();
        let again: Vec<String> = (0..30)
            .map(|k| t.next_episode(k % 3).unwrap().day.symbol.clone())
            .collect();
        assert_eq!(next, again);
    }

    #[test]
    fn a_window_as_large_as_the_universe_changes_nothing() {
        let d = days(4);
        let mut a = StartTimes::new(&d, &[34_200, 36_000], 7).unwrap();
        let mut b = StartTimes::new(&d, &[34_200, 36_000], 7).unwrap();
        assert!(b.limit_days(4).unwrap());
        assert!(b.window_after_move().is_none());
        for k in 0..50 {
            assert_eq!(
                a.next_episode(k % 5).unwrap().start_row,
                b.next_episode(k % 5).unwrap().start_row
            );
        }
        assert!(b.limit_days(0).is_err());
    }

    impl StartTimes {
        fn clone_for_test(&self) -> StartTimes {
            StartTimes {
                starts: self.starts.clone(),
                seed: self.seed,
                drawn: self.drawn.clone(),
                day_pairs: self.day_pairs.clone(),
                window: self.window.clone(),
            }
        }
    }

    #[test]
    fn the_day_order_is_a_permutation() {
        for n in [1usize, 2, 6, 12, 97] {
            let s = StartTimes {
                starts: Vec::new(),
                seed: 5,
                drawn: Vec::new(),
                day_pairs: vec![Vec::new(); n],
                window: None,
            };
            let mut order: Vec<usize> = (0..n as u64).map(|p| s.day_at(p)).collect();
            order.sort_unstable();
            assert_eq!(order, (0..n).collect::<Vec<_>>(), "{n} days");
        }
    }
}
