//! Background day loading: the learner must never wait on disk.
//!
//! Two tiers (SPEC: Momentum scanner, index and curriculum):
//! - **slots**: days held in memory, ready to hand out (at most `preload.slots`; the least
//!   recently used day that is not about to be needed is dropped first — environments
//!   still holding it keep their `Arc`);
//! - **the pre-load queue**: the ids of the next days the sampler will hand out are sent
//!   (crossbeam channel) to `preload.workers` threads that map, verify (which reads, and so
//!   warms, every page) and regroup each day, then park it in a slot.
//!
//! The depth of the queue (how many upcoming distinct days are loaded ahead) adapts: it
//! doubles, up to `preload.max_depth`, every time a consumer had to wait, and shrinks by
//! one, down to `preload.min_depth`, after a long run of hits. Every wait is timed and
//! reported ([`PreloadStats`]).
//!
//! What a "day" is belongs to the [`DayLoader`]: [`CpuLoader`] yields a [`LoadedDay`] (the
//! day as [`DayData`] plus its previous trading day, the lookback); a GPU backend will
//! implement the same trait with a loader that also uploads the day to device memory.

use super::config::PreloadConfig;
use super::index::{FileStamp, Index};
use crate::cache::DayCache;
use crate::env::{DayData, EnvParams};
use crate::error::{Error, Result};
use crossbeam_channel::{Receiver, Sender, unbounded};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

/// Turns a day id into a ready day. Runs on the preloader's worker threads.
pub trait DayLoader: Send + Sync + 'static {
    type Day: Send + Sync + 'static;
    /// Loads day `id`. `resident` returns a day already held in a slot (to share a
    /// lookback day instead of loading it twice).
    fn load(&self, id: u32, resident: &dyn Fn(u32) -> Option<Arc<Self::Day>>) -> Result<Self::Day>;
}

/// A day as the CPU environments use it, with its lookback.
#[derive(Debug)]
pub struct LoadedDay {
    pub day: Arc<DayData>,
    /// The symbol's previous trading day, when it is cached and inside the sampled range.
    pub lookback: Option<Arc<DayData>>,
}

/// Loads days of an index from their cache files for the CPU environments.
pub struct CpuLoader {
    params: Arc<EnvParams>,
    /// Per index day: its file as scanned.
    files: Vec<FileStamp>,
    symbols: Vec<String>,
    dates: Vec<chrono::NaiveDate>,
    /// Per index day: the index day id of its lookback (None: no lookback).
    lookback: Vec<Option<u32>>,
}

impl CpuLoader {
    /// `lookback[k]` names day k's lookback day (see [`super::Sampler`]).
    pub fn new(idx: &Index, params: Arc<EnvParams>, lookback: Vec<Option<u32>>) -> CpuLoader {
        CpuLoader {
            params,
            files: idx
                .days
                .iter()
                .map(|d| FileStamp {
                    path: d.path.clone().into(),
                    len: d.file_len,
                    mtime_ns: d.file_mtime_ns,
                })
                .collect(),
            symbols: idx.days.iter().map(|d| d.symbol.clone()).collect(),
            dates: idx.days.iter().map(|d| d.date).collect(),
            lookback,
        }
    }

    fn load_one(&self, id: u32) -> Result<DayData> {
        let f = &self.files[id as usize];
        let now = FileStamp::of(&f.path).map_err(|_| {
            Error::NotFound(format!(
                "{} {}: the index names {}, which no longer exists; rescan with `sim-train scan`",
                self.symbols[id as usize],
                self.dates[id as usize],
                f.path.display()
            ))
        })?;
        if now.len != f.len || now.mtime_ns != f.mtime_ns {
            return Err(Error::Data(format!(
                "{}: changed since the index was built (the index describes the old file); rescan with `sim-train scan`",
                f.path.display()
            )));
        }
        let cache = DayCache::open(&f.path)?;
        Ok(DayData::from_cache(&cache, &self.params))
    }
}

impl DayLoader for CpuLoader {
    type Day = LoadedDay;
    fn load(&self, id: u32, resident: &dyn Fn(u32) -> Option<Arc<LoadedDay>>) -> Result<LoadedDay> {
        let day = Arc::new(self.load_one(id)?);
        let lookback = match self.lookback.get(id as usize).copied().flatten() {
            Some(prev) => Some(match resident(prev) {
                Some(d) => d.day.clone(),
                None => Arc::new(self.load_one(prev)?),
            }),
            None => None,
        };
        Ok(LoadedDay { day, lookback })
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
