//! Background day loading: an engine or a sampler must never wait on disk.
//!
//! Two tiers (SPEC: Momentum scanner, index and curriculum):
//! - **slots**: days held in memory, ready to hand out (at most `preload.slots`; the least
//!   recently used day that is not about to be needed is dropped first — environments
//!   still holding it keep their `Arc`);
//! - **the pre-load queue**: the ids of the next days a consumer will hand out are sent
//!   (crossbeam channel) to `preload.workers` threads that load each day (mapping and
//!   verifying its cache file reads, and so warms, every page), then park it in a slot.
//!
//! The depth of the queue (how many upcoming distinct days are loaded ahead) adapts: it
//! doubles, up to `preload.max_depth`, every time a consumer had to wait, and shrinks by
//! one, down to `preload.min_depth`, after a long run of hits. Every wait is timed and
//! reported ([`PreloadStats`]).
//!
//! What a "day" is belongs to the [`DayLoader`]: [`CacheLoader`] yields the [`DayData`]
//! of a cache's days (the day windows of [`super::StartTimes`] over a universe larger than
//! its resident days); the scanner's sampler has a loader that adds each day's lookback
//! (`scan::preload`).

use super::{DayData, EnvParams};
use crate::error::{Error, Result};
use crossbeam_channel::{Receiver, Sender, unbounded};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

/// `[preload]`: background loading of the days an episode source will hand out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PreloadConfig {
    /// Loader threads.
    pub workers: usize,
    /// Days kept loading ahead at the start (and at least).
    pub min_depth: usize,
    /// Most days loaded ahead (the depth doubles after each wait, up to this).
    pub max_depth: usize,
    /// Most days held in memory (ahead and recently handed out); at least max_depth.
    pub slots: usize,
    /// Load each day's previous trading day with it (when cached and inside the range).
    pub lookback: bool,
    /// Most days of a `--cache` universe drawn among at once: a larger universe is drawn
    /// day-major, through a window of this many days that moves through it, its days
    /// loaded in the background as they come and dropped as their episodes end.
    pub resident_days: usize,
    /// Episodes the CPU backend draws between two moves of that window (on average each
    /// day serves this many per pass; the GPU backends move it as day slots free up).
    pub window_episodes: u64,
}

impl Default for PreloadConfig {
    fn default() -> Self {
        PreloadConfig {
            workers: 2,
            min_depth: 4,
            max_depth: 64,
            slots: 128,
            lookback: true,
            resident_days: 2048,
            window_episodes: 256,
        }
    }
}

/// Turns a day id into a ready day. Runs on the preloader's worker threads.
pub trait DayLoader: Send + Sync + 'static {
    type Day: Send + Sync + 'static;
    /// Loads day `id`. `resident` returns a day already held in a slot (to share a
    /// lookback day instead of loading it twice).
    fn load(&self, id: u32, resident: &dyn Fn(u32) -> Option<Arc<Self::Day>>) -> Result<Self::Day>;
}

/// Loads the days of a cache (by position in a list of them) for the environments.
pub struct CacheLoader {
    files: Vec<PathBuf>,
    params: Arc<EnvParams>,
}

impl CacheLoader {
    /// Day `k` is the `k`-th (symbol, date) of `days`, in the cache folder `dir`.
    pub fn new<'a>(
        dir: &std::path::Path,
        days: impl IntoIterator<Item = (&'a str, chrono::NaiveDate)>,
        params: Arc<EnvParams>,
    ) -> CacheLoader {
        CacheLoader {
            files: days
                .into_iter()
                .map(|(symbol, date)| crate::cache::day_path(dir, symbol, date))
                .collect(),
            params,
        }
    }
}

impl DayLoader for CacheLoader {
    type Day = DayData;
    fn load(&self, id: u32, _resident: &dyn Fn(u32) -> Option<Arc<DayData>>) -> Result<DayData> {
        let path = self.files.get(id as usize).ok_or_else(|| {
            Error::Data(format!(
                "day {id} is not among the {} days of this universe",
                self.files.len()
            ))
        })?;
        DayData::open(path, &self.params)
    }
}

/// What the preloader did (cumulative since it started).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PreloadStats {
    /// Days handed out.
    pub gets: u64,
    /// Handed out without waiting (already in a slot).
    pub hits: u64,
    /// Handed out after waiting (still loading, or not requested in time).
    pub waits: u64,
    /// Total and longest wait of a consumer, seconds.
    pub wait_s: f64,
    pub wait_max_s: f64,
    /// Days loaded by the workers and their total load time (worker seconds).
    pub loads: u64,
    pub load_s: f64,
    pub failed: u64,
    pub evictions: u64,
    /// Current queue depth and days held.
    pub depth: usize,
    pub resident: usize,
}

enum Slot<D> {
    Loading,
    Ready { day: Arc<D>, last_use: u64 },
    Failed(String),
}

struct State<D> {
    slots: HashMap<u32, Slot<D>>,
    stats: PreloadStats,
}

struct Shared<D> {
    state: Mutex<State<D>>,
    changed: Condvar,
    /// Set on drop: workers skip the loads still queued.
    stop: AtomicBool,
}

fn lock<D>(s: &Shared<D>) -> std::sync::MutexGuard<'_, State<D>> {
    // A worker that panicked cannot leave the map half-updated (each update is one
    // insert), so a poisoned lock is still consistent.
    s.state.lock().unwrap_or_else(|e| e.into_inner())
}

/// The background loader. See the module docs.
pub struct Preloader<L: DayLoader> {
    shared: Arc<Shared<L::Day>>,
    tx: Option<Sender<u32>>,
    workers: Vec<JoinHandle<()>>,
    cfg: PreloadConfig,
    depth: usize,
    hit_streak: usize,
    tick: u64,
}

impl<L: DayLoader> Preloader<L> {
    pub fn new(loader: L, cfg: &PreloadConfig) -> Preloader<L> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                slots: HashMap::new(),
                stats: PreloadStats::default(),
            }),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let loader = Arc::new(loader);
        let (tx, rx): (Sender<u32>, Receiver<u32>) = unbounded();
        let workers = (0..cfg.workers)
            .map(|w| {
                let (rx, shared, loader) = (rx.clone(), shared.clone(), loader.clone());
                std::thread::Builder::new()
                    .name(format!("sim-train-preload-{w}"))
                    .spawn(move || worker(rx, shared, loader))
                    .expect("spawning a preload thread")
            })
            .collect();
        Preloader {
            shared,
            tx: Some(tx),
            workers,
            cfg: cfg.clone(),
            depth: cfg.min_depth,
            hit_streak: 0,
            tick: 0,
        }
    }

    /// Current queue depth (distinct upcoming days loaded ahead).
    pub fn depth(&self) -> usize {
        self.depth
    }

    fn request(&self, st: &mut State<L::Day>, id: u32) {
        if let std::collections::hash_map::Entry::Vacant(e) = st.slots.entry(id) {
            e.insert(Slot::Loading);
            if let Some(tx) = &self.tx {
                // The workers hold the receiver until the preloader is dropped.
                let _ = tx.send(id);
            }
        }
    }

    /// Starts loading the first `depth` distinct days of `upcoming` (the sampler's plan,
    /// soonest first) and drops the least recently used days beyond `preload.slots` that
    /// are not among them.
    pub fn prefetch(&mut self, upcoming: impl IntoIterator<Item = u32>) {
        let mut pinned: Vec<u32> = Vec::with_capacity(self.depth);
        for id in upcoming {
            if pinned.len() >= self.depth {
                break;
            }
            if !pinned.contains(&id) {
                pinned.push(id);
            }
        }
        let mut st = lock(&self.shared);
        for &id in &pinned {
            self.request(&mut st, id);
        }
        let excess = st.slots.len().saturating_sub(self.cfg.slots);
        if excess > 0 {
            let mut victims: Vec<(u64, u32)> = st
                .slots
                .iter()
                .filter_map(|(&id, s)| match s {
                    Slot::Ready { last_use, .. } if !pinned.contains(&id) => Some((*last_use, id)),
                    Slot::Failed(_) => Some((0, id)),
                    _ => None,
                })
                .collect();
            victims.sort_unstable();
            for &(_, id) in victims.iter().take(excess) {
                st.slots.remove(&id);
                st.stats.evictions += 1;
            }
        }
    }

    /// Day `id`, waiting for it if it is not loaded yet (the wait is timed and counted).
    pub fn get(&mut self, id: u32) -> Result<Arc<L::Day>> {
        self.tick += 1;
        let tick = self.tick;
        let mut st = lock(&self.shared);
        st.stats.gets += 1;
        let mut waited = None;
        loop {
            match st.slots.get_mut(&id) {
                Some(Slot::Ready { day, last_use }) => {
                    *last_use = tick;
                    let day = day.clone();
                    match waited {
                        None => {
                            st.stats.hits += 1;
                            self.hit_streak += 1;
                            if self.hit_streak >= 8 * self.depth && self.depth > self.cfg.min_depth
                            {
                                self.depth -= 1;
                                self.hit_streak = 0;
                            }
                        }
                        Some(t0) => {
                            let w = Instant::elapsed(&t0).as_secs_f64();
                            st.stats.waits += 1;
                            st.stats.wait_s += w;
                            st.stats.wait_max_s = st.stats.wait_max_s.max(w);
                            self.hit_streak = 0;
                            self.depth = (self.depth * 2).min(self.cfg.max_depth);
                        }
                    }
                    return Ok(day);
                }
                Some(Slot::Failed(msg)) => {
                    let msg = msg.clone();
                    st.slots.remove(&id);
                    return Err(Error::Data(msg));
                }
                Some(Slot::Loading) => {}
                None => self.request(&mut st, id),
            }
            waited.get_or_insert_with(Instant::now);
            st = self
                .shared
                .changed
                .wait(st)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Whether day `id` is loaded and waiting in a slot.
    pub fn is_ready(&self, id: u32) -> bool {
        matches!(lock(&self.shared).slots.get(&id), Some(Slot::Ready { .. }))
    }

    pub fn stats(&self) -> PreloadStats {
        let st = lock(&self.shared);
        let mut s = st.stats.clone();
        s.depth = self.depth;
        s.resident = st
            .slots
            .values()
            .filter(|s| matches!(s, Slot::Ready { .. }))
            .count();
        s
    }
}

fn worker<L: DayLoader>(rx: Receiver<u32>, shared: Arc<Shared<L::Day>>, loader: Arc<L>) {
    while let Ok(id) = rx.recv() {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let t0 = Instant::now();
        let resident = |k: u32| match lock(&shared).slots.get(&k) {
            Some(Slot::Ready { day, .. }) => Some(day.clone()),
            _ => None,
        };
        let res = loader.load(id, &resident);
        let dt = t0.elapsed().as_secs_f64();
        let mut st = lock(&shared);
        st.stats.load_s += dt;
        match res {
            Ok(day) => {
                st.stats.loads += 1;
                st.slots.insert(
                    id,
                    Slot::Ready {
                        day: Arc::new(day),
                        last_use: 0,
                    },
                );
            }
            Err(e) => {
                st.stats.failed += 1;
                st.slots.insert(id, Slot::Failed(e.to_string()));
            }
        }
        drop(st);
        shared.changed.notify_all();
    }
}

impl<L: DayLoader> Drop for Preloader<L> {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.tx = None; // closes the channel: workers finish their day and exit
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}
