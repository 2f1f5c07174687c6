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
//! # Day-major draws (universes larger than the resident days or a GPU's day slots)
//! [`StartTimes`] can draw only among a **window** of days that moves through the whole
//! universe one day at a time, in a seeded order: every day has its turn each pass, each
//! resident day serves many episodes, and the days that left the window are released as
//! their running and queued episodes end. Two things set one up:
//! - **A universe larger than `preload.resident_days`** ([`StartTimes::over_cache`]): the
//!   window holds `resident_days` days, and only they and the next few in the order are in
//!   memory, loaded in the background ([`super::preload`]), so memory and the working set
//!   the step touches follow the window, not the universe. The CPU engine moves the window
//!   after every `preload.window_episodes` episodes it draws (counted in draw order, so a
//!   run is the same on every thread count and resumes exactly).
//! - **A GPU engine**, which holds a fixed number of days on the device: when the universe
//!   has more, it asks its source to [`EpisodeSource::limit_days`] to half its slots, and
//!   moves the window ([`EpisodeSource::move_window`]) when the day that would come in has
//!   a slot free beside the days still in use, at most once per queue top-up.
//!
//! The draws then depend on when the engine moves the window, so a windowed run is
//! reproducible for a backend (and its slot count), but not equal to another backend's.

use super::day::{DayData, DaySelection, load_days, select_days};
use super::params::EnvParams;
use super::preload::{CacheLoader, PreloadConfig, PreloadStats, Preloader};
use crate::error::{Error, Result};
use std::collections::HashMap;
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
    /// The days the window would hold after one move (loading them where they are
    /// loaded as the window reaches them); `None` without a window.
    fn window_after_move(&mut self) -> Result<Option<Vec<Arc<DayData>>>> {
        Ok(None)
    }
    /// Moves the window on by one day (the first leaves, the next in the order comes in).
    fn move_window(&mut self) {}
    /// What the background day loader did, where this source has one.
    fn preload_stats(&self) -> Option<PreloadStats> {
        None
    }
}

/// Seeded uniform draws over every (day, start time) pair that can start an episode,
/// or over those of a moving window of days ([`EpisodeSource::limit_days`]).
///
/// Its days are loaded up front ([`StartTimes::new`]) or, for a cache universe larger
/// than `preload.resident_days`, as the window reaches them ([`StartTimes::over_cache`]):
/// the window's days and the next few in its order are in memory, loaded in the
/// background ([`super::preload`]); a day that left the window is freed when the last
/// episode on it ends.
pub struct StartTimes {
    seed: u64,
    /// Draws made so far, per environment.
    drawn: Vec<u64>,
    window: Option<Window>,
    /// The order the window visits the days in.
    order: Order,
    days: Days,
    /// The (day, start) pairs of the window, in draw order, kept up to date as it moves.
    table: Option<Table>,
}

/// The pairs of a window position: its days in window order, each day's pairs in
/// start-time order. A move by one day drops the first day's pairs and appends the new
/// day's, so it costs one day's pairs, not the window's.
struct Table {
    /// The window position these are the pairs of.
    at: u64,
    pairs: std::collections::VecDeque<Episode>,
    /// Pairs per window day, in window order.
    per_day: std::collections::VecDeque<usize>,
}

/// Where a [`StartTimes`]' days are.
enum Days {
    /// Loaded up front: every (day, start) pair in day order, and per day that has one,
    /// its pairs' indices into `starts`.
    Loaded {
        starts: Vec<Episode>,
        day_pairs: Vec<Vec<u32>>,
    },
    /// A cache's days, loaded as the window reaches them.
    Lazy(Box<LazyDays>),
}

/// The days of a cache universe larger than the resident set.
struct LazyDays {
    /// Per universe day, in (symbol, date) order.
    keys: Vec<(String, chrono::NaiveDate)>,
    /// The most bars a universe day has (from the catalog).
    max_rows: usize,
    /// Start times, seconds after New York midnight.
    times: Vec<u32>,
    preloader: Preloader<CacheLoader>,
    /// The days in memory for the window (its days, and the next position's on a GPU's
    /// request), each with its start rows (empty: no episode can start on it).
    resident: HashMap<usize, (Arc<DayData>, Vec<u32>)>,
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
    /// Number of (day, start) pairs (days loaded up front) or of universe days (loaded as
    /// the window reaches them), to catch a resume over other days.
    pairs: usize,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    lazy: bool,
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

/// The start rows of `times` on `day` (a time with no session bar after it is skipped).
fn start_rows(day: &DayData, times: &[u32]) -> Vec<u32> {
    times.iter().filter_map(|&t| day.start_row_at(t)).collect()
}

/// The days a [`StartTimes::over_cache`] universe holds.
pub struct CacheUniverse {
    pub source: StartTimes,
    /// The days loaded up front (empty when they are loaded as the window reaches them).
    pub loaded: Vec<Arc<DayData>>,
    /// Symbol-days in the universe and their bars.
    pub days: usize,
    pub bars: u64,
}

impl StartTimes {
    /// `times` are seconds after New York midnight; a time with no session bar after it on
    /// a day is skipped for that day. Errors when no pair is usable.
    pub fn new(days: &[Arc<DayData>], times: &[u32], seed: u64) -> Result<StartTimes> {
        let mut starts: Vec<Episode> = Vec::new();
        let mut day_pairs: Vec<Vec<u32>> = Vec::new();
        for d in days {
            let first = starts.len() as u32;
            starts.extend(start_rows(d, times).into_iter().map(|start_row| Episode {
                day: d.clone(),
                start_row,
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
            seed,
            drawn: Vec::new(),
            window: None,
            order: Order::new(seed, day_pairs.len()),
            days: Days::Loaded { starts, day_pairs },
            table: None,
        })
    }

    /// The cached days of `dir` that `sel` selects. Up to `preload.resident_days` of them
    /// are loaded up front ([`StartTimes::new`]); a larger universe is drawn day-major
    /// from the start: a window of `resident_days` days moves through it in a seeded order
    /// ([`EpisodeSource::move_window`], moved by the engine), and only the window's days
    /// and the next `preload.max_depth` are loaded (in the background), so memory follows
    /// the window, not the universe.
    pub fn over_cache(
        dir: &std::path::Path,
        sel: &DaySelection,
        params: &Arc<EnvParams>,
        times: &[u32],
        seed: u64,
        preload: &PreloadConfig,
    ) -> Result<CacheUniverse> {
        let picked = select_days(dir, sel)?;
        let bars = picked.iter().map(|e| e.rows).sum();
        if picked.len() <= preload.resident_days {
            let loaded = load_days(dir, sel, params)?;
            return Ok(CacheUniverse {
                source: StartTimes::new(&loaded, times, seed)?,
                days: loaded.len(),
                loaded,
                bars,
            });
        }
        let loader = CacheLoader::new(
            dir,
            picked.iter().map(|e| (e.symbol.as_str(), e.date)),
            params.clone(),
        );
        let lazy = LazyDays {
            keys: picked.iter().map(|e| (e.symbol.clone(), e.date)).collect(),
            max_rows: picked.iter().map(|e| e.rows as usize).max().unwrap_or(0),
            times: times.to_vec(),
            preloader: Preloader::new(loader, preload),
            resident: HashMap::new(),
        };
        let mut source = StartTimes {
            seed,
            drawn: Vec::new(),
            order: Order::new(seed, picked.len()),
            window: Some(Window {
                days: preload.resident_days,
                at: 0,
            }),
            days: Days::Lazy(Box::new(lazy)),
            table: None,
        };
        source.prefetch();
        Ok(CacheUniverse {
            source,
            loaded: Vec::new(),
            days: picked.len(),
            bars,
        })
    }

    /// Days drawn from (those with at least one start for days loaded up front).
    fn n_days(&self) -> usize {
        match &self.days {
            Days::Loaded { day_pairs, .. } => day_pairs.len(),
            Days::Lazy(l) => l.keys.len(),
        }
    }

    /// The day (index into the days) at position `p` of the order the window visits
    /// them in ([`Order`]).
    fn day_at(&self, p: u64) -> usize {
        self.order.at(p)
    }

    /// The days a window of `days` holds at position `at`.
    fn window_days(&self, days: usize, at: u64) -> impl Iterator<Item = usize> + '_ {
        (0..days as u64).map(move |j| self.day_at(at + j))
    }

    /// Day `d` and its start rows: loaded up front, or brought into memory (from the
    /// preloader, which has usually loaded it already).
    fn day_starts(&mut self, d: usize) -> Result<(Arc<DayData>, Vec<u32>)> {
        match &mut self.days {
            Days::Loaded { starts, day_pairs } => {
                let pairs = &day_pairs[d];
                Ok((
                    starts[pairs[0] as usize].day.clone(),
                    pairs
                        .iter()
                        .map(|&i| starts[i as usize].start_row)
                        .collect(),
                ))
            }
            Days::Lazy(l) => {
                if let Some(r) = l.resident.get(&d) {
                    return Ok(r.clone());
                }
                let day = l.preloader.get(d as u32)?;
                let rows = start_rows(&day, &l.times);
                l.resident.insert(d, (day.clone(), rows.clone()));
                Ok((day, rows))
            }
        }
    }

    /// Frees the days outside the window (and the day after it), where days are loaded as
    /// the window reaches them (episodes still on them keep them until they end), and
    /// asks the preloader for the days it will reach next.
    fn prefetch(&mut self) {
        let (Some(w), order) = (&self.window, self.order) else {
            return;
        };
        let (days, at) = (w.days as u64, w.at);
        if let Days::Lazy(l) = &mut self.days {
            let keep: std::collections::HashSet<usize> =
                (at..at + days + 1).map(|p| order.at(p)).collect();
            l.resident.retain(|d, _| keep.contains(d));
            // The window's own days first (all of them on a rebuild), then those ahead.
            l.preloader
                .prefetch((at..at + days + order.n).map(|p| order.at(p) as u32));
        }
    }

    /// After one move of the window past position `left`: frees that day (unless the
    /// window wraps onto it) and asks the preloader for the days ahead.
    fn slid(&mut self, left: u64) {
        let (Some(w), order) = (&self.window, self.order) else {
            return;
        };
        let (days, at) = (w.days as u64, w.at);
        if let Days::Lazy(l) = &mut self.days {
            if days + 1 < order.n {
                l.resident.remove(&order.at(left));
            }
            l.preloader
                .prefetch((at + days..at + days + order.n).map(|p| order.at(p) as u32));
        }
    }

    /// The window's pairs in draw order, brought to the window's position: slid one day
    /// per move since it was last brought there, or rebuilt (first draw, a resize, a
    /// restored state).
    fn table(&mut self, w: &Window) -> Result<&std::collections::VecDeque<Episode>> {
        let mut t = match self.table.take() {
            Some(t) if t.at <= w.at && w.at - t.at < w.days as u64 && t.per_day.len() == w.days => {
                t
            }
            _ => {
                let mut t = Table {
                    at: w.at,
                    pairs: Default::default(),
                    per_day: Default::default(),
                };
                self.prefetch();
                for j in 0..w.days as u64 {
                    self.push_day(&mut t, w.at + j)?;
                }
                t
            }
        };
        while t.at < w.at {
            let gone = t
                .per_day
                .pop_front()
                .expect("a window holds at least one day");
            t.pairs.drain(..gone);
            t.at += 1;
            let newest = t.at + w.days as u64 - 1;
            self.push_day(&mut t, newest)?;
            self.slid(t.at - 1);
        }
        if t.pairs.is_empty() {
            let days: Vec<usize> = self.window_days(w.days, w.at).take(4).collect();
            let names: Vec<String> = days
                .into_iter()
                .map(|d| {
                    self.day_starts(d)
                        .map(|(x, _)| format!("{} {}", x.symbol, x.date))
                })
                .collect::<Result<_>>()?;
            return Err(Error::Data(format!(
                "no episode can start on the {} days of the day window ({}, …): none has session bars after the start times (env.start_times); move the start times or raise preload.resident_days",
                w.days,
                names.join(", ")
            )));
        }
        Ok(&self.table.insert(t).pairs)
    }

    /// Appends the pairs of the day at window position `p` to `t`.
    fn push_day(&mut self, t: &mut Table, p: u64) -> Result<()> {
        let (day, rows) = self.day_starts(self.day_at(p))?;
        t.per_day.push_back(rows.len());
        t.pairs.extend(rows.into_iter().map(|start_row| Episode {
            day: day.clone(),
            start_row,
        }));
        Ok(())
    }

    /// Number of distinct episodes (days loaded up front; 0 when loaded as the window
    /// reaches them).
    pub fn len(&self) -> usize {
        match &self.days {
            Days::Loaded { starts, .. } => starts.len(),
            Days::Lazy(_) => 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The seeded order in which a window visits the days: a fixed permutation (an affine map
/// modulo the day count, with a multiplier coprime to it), so every day comes once per
/// cycle.
#[derive(Clone, Copy, Debug)]
struct Order {
    a: u64,
    b: u64,
    n: u64,
}

impl Order {
    fn new(seed: u64, days: usize) -> Order {
        let n = days.max(1) as u64;
        let mut a = (xxhash_rust::xxh3::xxh3_64_with_seed(b"day-order", seed) % n).max(1);
        while gcd(a, n) != 1 {
            a += 1;
        }
        let b = xxhash_rust::xxh3::xxh3_64_with_seed(b"day-offset", seed) % n;
        Order { a, b, n }
    }

    /// The day at position `p`.
    fn at(&self, p: u64) -> usize {
        ((self.a * (p % self.n) + self.b) % self.n) as usize
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
        let seed = self.seed;
        let ep = match self.window.clone() {
            None => match &self.days {
                Days::Loaded { starts, .. } => {
                    starts[pick(seed, env as u64, k, starts.len())].clone()
                }
                Days::Lazy(_) => {
                    return Err(Error::Data(
                        "a universe loaded as its day window reaches its days has no window".into(),
                    ));
                }
            },
            // Uniform over the pairs of the window's days.
            Some(w) => {
                let table = self.table(&w)?;
                table[pick(seed, env as u64, k, table.len())].clone()
            }
        };
        self.drawn[env] += 1;
        Ok(ep)
    }

    fn max_day_rows(&self) -> Option<usize> {
        match &self.days {
            Days::Loaded { starts, .. } => starts.iter().map(|e| e.day.rows()).max(),
            Days::Lazy(l) => Some(l.max_rows),
        }
    }

    fn num_days(&self) -> Option<usize> {
        Some(self.n_days())
    }

    fn limit_days(&mut self, days: usize) -> Result<bool> {
        if days == 0 {
            return Err(Error::Usage("a day window needs at least one day".into()));
        }
        let at = self.window.as_ref().map_or(0, |w| w.at);
        self.window = match &self.days {
            Days::Loaded { .. } => (days < self.n_days()).then_some(Window { days, at }),
            Days::Lazy(_) => Some(Window {
                days: days.min(self.n_days()),
                at,
            }),
        };
        self.table = None;
        self.prefetch();
        Ok(true)
    }

    fn window_after_move(&mut self) -> Result<Option<Vec<Arc<DayData>>>> {
        let Some(w) = self.window.clone() else {
            return Ok(None);
        };
        let days: Vec<usize> = self.window_days(w.days, w.at + 1).collect();
        let mut out = Vec::with_capacity(days.len());
        for d in days {
            out.push(self.day_starts(d)?.0);
        }
        Ok(Some(out))
    }

    fn move_window(&mut self) {
        if let Some(w) = &mut self.window {
            w.at += 1;
        }
    }

    fn preload_stats(&self) -> Option<PreloadStats> {
        match &self.days {
            Days::Loaded { .. } => None,
            Days::Lazy(l) => Some(l.preloader.stats()),
        }
    }

    fn save_state(&self) -> serde_json::Value {
        serde_json::to_value(StartTimesState {
            pairs: self.len().max(match &self.days {
                Days::Loaded { .. } => 0,
                Days::Lazy(l) => l.keys.len(),
            }),
            lazy: matches!(self.days, Days::Lazy(_)),
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
        let (pairs, lazy, what) = match &self.days {
            Days::Loaded { starts, .. } => (starts.len(), false, "(day, start) pairs"),
            Days::Lazy(l) => (
                l.keys.len(),
                true,
                "days (loaded as the day window reaches them)",
            ),
        };
        if s.lazy != lazy {
            return Err(Error::Data(format!(
                "the saved episode source {} its days as a day window reached them and this one {}: resume with the saved run's preload.resident_days and days",
                if s.lazy { "loaded" } else { "did not load" },
                if lazy { "does" } else { "does not" }
            )));
        }
        if s.pairs != pairs || s.seed != self.seed {
            return Err(Error::Data(format!(
                "the saved episode source had {} {what} and seed {}, this one has {pairs} and seed {}: resume with the days and seed of the saved run",
                s.pairs, s.seed, self.seed
            )));
        }
        if lazy && s.window.is_none() {
            return Err(Error::Data(
                "the saved episode source has no day window, which a universe loaded as the window reaches its days needs".into(),
            ));
        }
        self.drawn = s.drawn;
        // The saved schedule goes on where it was, whatever window this run set up.
        self.window = s.window;
        self.table = None;
        self.prefetch();
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
        assert!(b.window_after_move().unwrap().is_none());
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
            let Days::Loaded { starts, day_pairs } = &self.days else {
                panic!("days loaded up front")
            };
            StartTimes {
                seed: self.seed,
                drawn: self.drawn.clone(),
                window: self.window.clone(),
                order: self.order,
                days: Days::Loaded {
                    starts: starts.clone(),
                    day_pairs: day_pairs.clone(),
                },
                table: None,
            }
        }
    }

    #[test]
    fn the_day_order_is_a_permutation() {
        for n in [1usize, 2, 6, 12, 97] {
            let s = StartTimes {
                seed: 5,
                drawn: Vec::new(),
                window: None,
                order: Order::new(5, n),
                days: Days::Loaded {
                    starts: Vec::new(),
                    day_pairs: vec![Vec::new(); n],
                },
                table: None,
            };
            let mut order: Vec<usize> = (0..n as u64).map(|p| s.day_at(p)).collect();
            order.sort_unstable();
            assert_eq!(order, (0..n).collect::<Vec<_>>(), "{n} days");
        }
    }
}
