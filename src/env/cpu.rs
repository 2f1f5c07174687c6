//! The CPU batch engine: N environments in struct-of-arrays layout, stepped together.
//!
//! State lives in [`EnvState`], one array per field (the layout the GPU backends mirror:
//! [`EnvState::FIELDS`] lists it), so a thread walks each field sequentially and a GPU
//! thread per environment reads coalesced words. A step runs in two passes:
//! 1. in parallel over chunks of environments (rayon), the step of every environment,
//!    writing observations, rewards and flags into the caller's buffers ([`StepOut`]);
//! 2. in environment order, the auto-reset of those whose episode ended: their stats are
//!    logged, the next episode is drawn from the [`EpisodeSource`] and its first
//!    observation written. Drawing in a fixed order keeps runs reproducible for any thread
//!    count.
//!
//! Pass 1 steps blocks of 64 environments phase by phase, each phase a branch-free loop
//! over the block, which the compiler vectorizes; it is compiled once per [`Simd`] level
//! (AVX-512, AVX2, the baseline) and the widest the CPU runs is used.
//!
//! Every number is computed with the same operations in the same order as
//! [`super::reference::ReferenceEnv`], which the tests check bit for bit at every level.

use super::day::{BarRec, DayData};
use super::episodes::{Episode, EpisodeSource};
use super::exec::{self, Ledger, select};
use super::params::{ACCOUNT_FIELDS, EnvParams};
use super::{EndReason, EpisodeStats, StepOut};
use crate::error::{Error, Result};
use std::sync::Arc;

/// Declares the state struct, a mutable view of a range of environments, and the field
/// table, from one list of fields.
macro_rules! soa {
    ($(#[$m:meta])* $name:ident, $view:ident { $($(#[$fm:meta])* $f:ident : $t:ty),* $(,)? }) => {
        $(#[$m])*
        pub struct $name { $($(#[$fm])* pub $f: Vec<$t>,)* }

        /// A mutable view of a contiguous range of environments.
        pub struct $view<'a> { $(pub $f: &'a mut [$t],)* }

        impl $name {
            /// Field names and element types, in declaration order.
            pub const FIELDS: &'static [(&'static str, &'static str)] =
                &[$((stringify!($f), stringify!($t)),)*];

            fn zeroed(n: usize) -> Self {
                $name { $($f: vec![<$t>::default(); n],)* }
            }

            fn view(&mut self) -> $view<'_> {
                $view { $($f: &mut self.$f,)* }
            }

            /// Bytes of state per environment.
            pub fn bytes_per_env() -> usize {
                0 $(+ std::mem::size_of::<$t>())*
            }

            /// Appends every field's bytes, field after field (native endianness).
            fn write_bytes(&self, out: &mut Vec<u8>) {
                $(out.extend_from_slice(bytemuck::cast_slice(&self.$f));)*
            }

            /// Reads what [`Self::write_bytes`] wrote for the same number of
            /// environments; false when `bytes` has another length.
            fn read_bytes(&mut self, bytes: &[u8]) -> bool {
                if bytes.len() != self.row.len() * Self::bytes_per_env() {
                    return false;
                }
                let mut at = 0;
                $(
                    let dst: &mut [u8] = bytemuck::cast_slice_mut(&mut self.$f);
                    dst.copy_from_slice(&bytes[at..at + dst.len()]);
                    at += dst.len();
                )*
                let _ = at;
                true
            }
        }

        impl<'a> $view<'a> {
            /// Whether every field holds `n` environments (checked once per block, this
            /// lets the compiler drop the per-field bounds checks).
            #[inline(always)]
            fn holds(&self, n: usize) -> bool {
                true $(&& self.$f.len() == n)*
            }

            fn split_at(self, mid: usize) -> (Self, Self) {
                $(let $f = self.$f.split_at_mut(mid);)*
                ($view { $($f: $f.0,)* }, $view { $($f: $f.1,)* })
            }
        }
    };
}

soa! {
    /// Per-environment state, one array per field.
    EnvState, EnvStateView {
        /// Current bar (row of the day).
        row: u32,
        /// Steps taken in the episode.
        steps: u32,
        start_row: u32,
        position: i64,
        avg_price: f64,
        cash: f64,
        equity0: f64,
        /// `1 / equity0`.
        inv_equity0: f64,
        prev_equity: f64,
        peak_equity: f64,
        realized: f64,
        costs: f64,
        entry_ms: u32,
        /// Pending order: its target, its signed remaining shares (0 = none), its arrival.
        pend_target: i64,
        pend_left: i64,
        pend_arrival: u32,
        dsr_a: f64,
        dsr_b: f64,
        sharpe_sum: f64,
        sharpe_sumsq: f64,
        reward_sum: f64,
        fills: u32,
        rejected: u32,
        turnover: f64,
        /// 0 while running, else 1 + the [`EndReason`] of the step that ended it.
        ended: u8,
    }
}

impl EnvStateView<'_> {
    /// Environment `i`'s account.
    #[inline(always)]
    fn ledger(&self, i: usize) -> Ledger {
        Ledger {
            cash: self.cash[i],
            position: self.position[i],
            avg_price: self.avg_price[i],
            realized: self.realized[i],
            costs: self.costs[i],
            entry_ms: self.entry_ms[i],
            fills: self.fills[i],
        }
    }

    #[inline(always)]
    fn set_ledger(&mut self, i: usize, l: &Ledger) {
        self.cash[i] = l.cash;
        self.position[i] = l.position;
        self.avg_price[i] = l.avg_price;
        self.realized[i] = l.realized;
        self.costs[i] = l.costs;
        self.entry_ms[i] = l.entry_ms;
        self.fills[i] = l.fills;
    }
}

pub(crate) const REASONS: [EndReason; 3] = [
    EndReason::SessionClose,
    EndReason::LossLimit,
    EndReason::MaxSteps,
];

/// Prefetches every line a step from row `t` reads: bar records `t` and `t+1` (96
/// contiguous bytes, up to three lines) and feature row `t+1` (up to four lines for the 39
/// features). Addresses past the end of the day are harmless: a prefetch never faults.
#[inline(always)]
fn prefetch_step(day: &DayData, t: usize) {
    let bars = day.bars.as_ptr().wrapping_add(t) as *const u8;
    let span = 2 * std::mem::size_of::<BarRec>();
    let mut at = 0;
    while at < span {
        prefetch(bars.wrapping_add(at));
        at += 64;
    }
    prefetch(bars.wrapping_add(span - 1));
    let row = day.features.as_ptr().wrapping_add((t + 1) * day.k) as *const u8;
    let len = 4 * day.k;
    let mut at = 0;
    while at < len {
        prefetch(row.wrapping_add(at));
        at += 64;
    }
    prefetch(row.wrapping_add(len.saturating_sub(1)));
}

/// Fewest environments per parallel task.
const MIN_CHUNK: usize = 128;

/// Hints the CPU to pull the cache line holding `ptr` (a no-op off x86-64). The pointer
/// is never dereferenced here, so it may point past the end of its buffer.
#[inline(always)]
fn prefetch<T>(ptr: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is part of the x86-64 baseline, and a prefetch never faults or reads
    // memory architecturally, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(ptr as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ptr;
}

/// Most finished-episode summaries kept between [`CpuEnvs::drain_finished`] calls.
pub(crate) const LOG_CAP: usize = 1 << 16;

/// The CPU backend: a batch of environments over shared days.
pub struct CpuEnvs {
    params: Arc<EnvParams>,
    state: EnvState,
    days: Vec<Arc<DayData>>,
    /// Rolling-Sharpe windows, `n × sharpe_window` (empty when the term is off).
    ring: Vec<f64>,
    ring_w: usize,
    source: Box<dyn EpisodeSource>,
    finished: Vec<EpisodeStats>,
    /// Finished episodes dropped because nobody drained the log.
    dropped: u64,
    /// Episodes finished since creation.
    episodes: u64,
    /// `n × obs_dim`: the last observation of each environment whose episode was
    /// truncated in the latest step (other rows are stale).
    final_obs: Vec<f32>,
    simd: Simd,
    /// Episodes drawn between two moves of the source's day window (`preload.
    /// window_episodes`), and drawn since the last move.
    window: Rotation,
}

/// When the CPU engine moves its episode source's day window ([`EpisodeSource::
/// move_window`]; a source without a window ignores it): after every `every` draws, counted
/// in draw order, so a run is the same on every thread count and resumes exactly.
#[derive(Clone, Copy, Debug)]
struct Rotation {
    every: u64,
    since: u64,
}

impl Rotation {
    fn draw(&mut self, source: &mut dyn EpisodeSource, env: usize) -> Result<Episode> {
        let ep = source.next_episode(env)?;
        self.since += 1;
        if self.since >= self.every {
            self.since = 0;
            source.move_window();
        }
        Ok(ep)
    }
}

/// A snapshot's header: its length and content.
fn snapshot_meta(bytes: &[u8]) -> Result<(usize, SnapshotMeta)> {
    let bad = |what: &str| Error::Data(format!("environment snapshot: {what}"));
    let len = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
        .ok_or_else(|| bad("truncated header"))?;
    let meta = bytes
        .get(8..8 + len)
        .and_then(|b| serde_json::from_slice(b).ok())
        .ok_or_else(|| bad("unreadable header"))?;
    Ok((len, meta))
}

/// What a snapshot records besides the raw state arrays.
#[derive(serde::Serialize, serde::Deserialize)]
struct SnapshotMeta {
    envs: usize,
    obs_dim: usize,
    ring_w: usize,
    days: Vec<(String, chrono::NaiveDate)>,
    episodes: u64,
    dropped: u64,
    source: serde_json::Value,
    /// Draws since the day window last moved.
    #[serde(default)]
    window_draws: u64,
}

/// Refuses `n` environments whose host memory ([`CpuEnvs::bytes_per_env`]) does not fit.
pub(crate) fn check_memory(n: usize, params: &EnvParams) -> Result<()> {
    crate::util::mem::check(
        &format!("{n} environments (state, observations, outputs)"),
        crate::util::mem::product(&[n], CpuEnvs::bytes_per_env(params)),
        "use fewer environments (--envs, train.num_envs)",
    )
}

impl CpuEnvs {
    /// `n` environments, each given its first episode by `source`.
    /// Host bytes per environment: its state, its day, the rolling-Sharpe ring, its final
    /// observation, and the caller's step outputs ([`super::Buffers`]) and action.
    pub fn bytes_per_env(params: &EnvParams) -> usize {
        let ring = if params.uses_sharpe() {
            params.sharpe_window as usize * std::mem::size_of::<f64>()
        } else {
            0
        };
        EnvState::bytes_per_env()
            + std::mem::size_of::<Arc<DayData>>()
            + ring
            + 2 * params.obs_dim() * std::mem::size_of::<f32>()
            + std::mem::size_of::<f32>()
            + 3
    }

    pub fn new(
        params: Arc<EnvParams>,
        n: usize,
        source: Box<dyn EpisodeSource>,
    ) -> Result<CpuEnvs> {
        Self::with_window(
            params,
            n,
            source,
            super::PreloadConfig::default().window_episodes,
        )
    }

    /// As [`CpuEnvs::new`], moving the source's day window (where it has one) after every
    /// `window_episodes` episodes drawn.
    pub fn with_window(
        params: Arc<EnvParams>,
        n: usize,
        mut source: Box<dyn EpisodeSource>,
        window_episodes: u64,
    ) -> Result<CpuEnvs> {
        if n == 0 {
            return Err(Error::Usage(
                "the number of environments must be at least 1".into(),
            ));
        }
        check_memory(n, &params)?;
        if window_episodes == 0 {
            return Err(Error::Usage(
                "preload.window_episodes must be at least 1".into(),
            ));
        }
        let mut window = Rotation {
            every: window_episodes,
            since: 0,
        };
        let mut days = Vec::with_capacity(n);
        let mut starts = Vec::with_capacity(n);
        for i in 0..n {
            let ep = window.draw(&mut *source, i)?;
            ep.check()?;
            check_day(&params, &ep.day)?;
            starts.push(ep.start_row);
            days.push(ep.day);
        }
        let ring_w = if params.uses_sharpe() {
            params.sharpe_window as usize
        } else {
            0
        };
        let mut envs = CpuEnvs {
            state: EnvState::zeroed(n),
            days,
            ring: vec![0.0; n * ring_w],
            ring_w,
            source,
            finished: Vec::new(),
            dropped: 0,
            episodes: 0,
            final_obs: vec![0.0; n * params.obs_dim()],
            params,
            simd: Simd::best(),
            window,
        };
        for (i, start) in starts.into_iter().enumerate() {
            envs.init_env(i, start);
        }
        Ok(envs)
    }

    pub fn num_envs(&self) -> usize {
        self.days.len()
    }

    /// Where the episodes come from.
    pub fn source(&self) -> &dyn EpisodeSource {
        &*self.source
    }

    /// The instruction set the step runs (the widest this CPU has, unless set).
    pub fn simd(&self) -> Simd {
        self.simd
    }

    /// Runs the step compiled for `simd` (to compare levels; results are the same bits).
    pub fn set_simd(&mut self, simd: Simd) -> Result<()> {
        simd.require()?;
        self.simd = simd;
        Ok(())
    }

    pub fn obs_dim(&self) -> usize {
        self.params.obs_dim()
    }

    pub fn params(&self) -> &Arc<EnvParams> {
        &self.params
    }

    /// Episodes finished since creation.
    pub fn episodes(&self) -> u64 {
        self.episodes
    }

    /// Takes the summaries of episodes finished since the last call.
    pub fn drain_finished(&mut self) -> Vec<EpisodeStats> {
        std::mem::take(&mut self.finished)
    }

    /// Summaries dropped because the log was full (drain it more often).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Row `i` (`obs_dim` values) holds environment `i`'s last observation when its episode
    /// was truncated (`truncated[i] = 1`) in the latest step, so a learner can bootstrap
    /// from the value of the state it was cut off in; other rows are stale.
    pub fn final_obs(&self) -> &[f32] {
        &self.final_obs
    }

    /// Everything that decides future steps, for a checkpoint: the state arrays, each
    /// environment's day, the rolling windows, the counters and the episode source's state.
    /// Drain the finished-episode log first: it is not part of the snapshot.
    pub fn save_state(&self) -> Vec<u8> {
        let meta = SnapshotMeta {
            envs: self.num_envs(),
            obs_dim: self.obs_dim(),
            ring_w: self.ring_w,
            days: self
                .days
                .iter()
                .map(|d| (d.symbol.clone(), d.date))
                .collect(),
            episodes: self.episodes,
            dropped: self.dropped,
            source: self.source.save_state(),
            window_draws: self.window.since,
        };
        let meta = serde_json::to_vec(&meta).expect("a plain struct serializes");
        let mut out = Vec::with_capacity(
            8 + meta.len() + self.num_envs() * EnvState::bytes_per_env() + 8 * self.ring.len(),
        );
        out.extend_from_slice(&(meta.len() as u64).to_le_bytes());
        out.extend_from_slice(&meta);
        self.state.write_bytes(&mut out);
        out.extend_from_slice(bytemuck::cast_slice(&self.ring));
        out
    }

    /// The (symbol, date) of each environment's day in a [`CpuEnvs::save_state`] snapshot.
    pub fn snapshot_days(bytes: &[u8]) -> Result<Vec<(String, chrono::NaiveDate)>> {
        Ok(snapshot_meta(bytes)?.1.days)
    }

    /// Restores a [`CpuEnvs::save_state`] snapshot into environments built from the same
    /// config; `day` finds a loaded day by symbol and date. Errors say what differs.
    pub fn load_state(
        &mut self,
        bytes: &[u8],
        day: &dyn Fn(&str, chrono::NaiveDate) -> Option<Arc<DayData>>,
    ) -> Result<()> {
        let bad = |what: &str| Error::Data(format!("environment snapshot: {what}"));
        let (len, meta) = snapshot_meta(bytes)?;
        if meta.envs != self.num_envs()
            || meta.obs_dim != self.obs_dim()
            || meta.ring_w != self.ring_w
        {
            return Err(bad(&format!(
                "it holds {} environments with {} observations (sharpe window {}), these are {} with {} ({}): resume with the saved run's config",
                meta.envs,
                meta.obs_dim,
                meta.ring_w,
                self.num_envs(),
                self.obs_dim(),
                self.ring_w
            )));
        }
        let days = meta
            .days
            .iter()
            .map(|(sym, date)| {
                day(sym, *date).ok_or_else(|| {
                    bad(&format!("{sym} {date} is not among the loaded days: resume over the saved run's data"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let body = &bytes[8 + len..];
        let state_len = self.num_envs() * EnvState::bytes_per_env();
        if body.len() != state_len + 8 * self.ring.len() {
            return Err(bad("the state arrays have the wrong size"));
        }
        // The source checks its state before taking it; nothing here changes before that.
        self.source.load_state(&meta.source)?;
        let sized = self.state.read_bytes(&body[..state_len]);
        debug_assert!(sized, "sizes checked above");
        bytemuck::cast_slice_mut::<f64, u8>(&mut self.ring).copy_from_slice(&body[state_len..]);
        self.days = days;
        self.episodes = meta.episodes;
        self.dropped = meta.dropped;
        self.window.since = meta.window_draws;
        self.finished.clear();
        Ok(())
    }

    /// Bytes of state, market data, actions and outputs one environment step touches.
    pub fn bytes_per_step(&self) -> usize {
        let k = self.params.feature_cols.len();
        EnvState::bytes_per_env() * 2
            + DayData::bytes_per_step(k)
            + 1
            + 4 * self.obs_dim()
            + 4
            + 2
            + 2 * 8 * self.ring_w.min(1)
    }

    /// Writes every environment's current observation (after creation, or to re-read).
    pub fn observe(&self, out: &mut StepOut<'_>) -> Result<()> {
        check_out(self.num_envs(), self.obs_dim(), out)?;
        let d = self.obs_dim();
        for i in 0..self.num_envs() {
            self.write_obs_of(i, &mut out.obs[i * d..(i + 1) * d]);
        }
        Ok(())
    }

    /// One step of every environment with `actions[i]` (indices into `env.actions`).
    ///
    /// Call it from a thread of the rayon pool (e.g. inside `rayon::scope`) in a loop: from
    /// outside the pool every step is a hand-off to the pool and a wake-up back, which costs
    /// more than stepping a few hundred environments.
    pub fn step(&mut self, actions: &[u8], out: &mut StepOut<'_>) -> Result<()> {
        let n = self.num_envs();
        check_actions(&self.params, n, actions)?;
        check_out(n, self.obs_dim(), out)?;
        let d = self.obs_dim();
        let chunk = Chunk {
            state: self.state.view(),
            days: &self.days,
            ring: &mut self.ring,
            actions,
            obs: &mut *out.obs,
            rewards: &mut *out.rewards,
            terminated: &mut *out.terminated,
            truncated: &mut *out.truncated,
        };
        // About four tasks per thread: enough to balance, few enough that scheduling is
        // noise. Results do not depend on the split.
        let grain = (n / (4 * rayon::current_num_threads())).max(MIN_CHUNK);
        run_parallel(&self.params, chunk, d, self.ring_w, grain, self.simd);
        self.reset_ended(out)
    }

    /// Pass 2: log, redraw and re-observe the environments whose episode ended.
    fn reset_ended(&mut self, out: &mut StepOut<'_>) -> Result<()> {
        let d = self.obs_dim();
        for i in 0..self.num_envs() {
            let ended = self.state.ended[i];
            if ended == 0 {
                continue;
            }
            let s = &self.state;
            let stats = EpisodeStats {
                env: i,
                symbol: self.days[i].symbol.clone(),
                date: self.days[i].date,
                start_row: s.start_row[i],
                steps: s.steps[i],
                reason: REASONS[ended as usize - 1],
                reward: s.reward_sum[i],
                pnl: s.prev_equity[i] - s.equity0[i],
                realized: s.realized[i],
                costs: s.costs[i],
                fills: s.fills[i],
                rejected: s.rejected[i],
                turnover: s.turnover[i],
            };
            self.episodes += 1;
            if self.finished.len() < LOG_CAP {
                self.finished.push(stats);
            } else {
                self.dropped += 1;
            }
            if REASONS[ended as usize - 1] == EndReason::MaxSteps {
                let mut last = std::mem::take(&mut self.final_obs);
                self.write_obs_of(i, &mut last[i * d..(i + 1) * d]);
                self.final_obs = last;
            }
            let ep = self.window.draw(&mut *self.source, i)?;
            ep.check()?;
            check_day(&self.params, &ep.day)?;
            self.days[i] = ep.day;
            self.init_env(i, ep.start_row);
            self.write_obs_of(i, &mut out.obs[i * d..(i + 1) * d]);
        }
        Ok(())
    }

    /// Writes environment `i`'s current observation.
    fn write_obs_of(&self, i: usize, obs: &mut [f32]) {
        let s = &self.state;
        write_obs(
            &self.params,
            &self.days[i],
            s.row[i] as usize,
            s.position[i],
            s.avg_price[i],
            s.entry_ms[i],
            s.pend_left[i],
            s.inv_equity0[i],
            obs,
        );
    }

    /// A fresh account at `start_row` of environment `i`'s day.
    fn init_env(&mut self, i: usize, start_row: u32) {
        let s = &mut self.state;
        let e0 = self.params.initial_equity;
        s.row[i] = start_row;
        s.steps[i] = 0;
        s.start_row[i] = start_row;
        s.position[i] = 0;
        s.avg_price[i] = 0.0;
        s.cash[i] = e0;
        s.equity0[i] = e0;
        s.inv_equity0[i] = 1.0 / e0;
        s.prev_equity[i] = e0;
        s.peak_equity[i] = e0;
        s.realized[i] = 0.0;
        s.costs[i] = 0.0;
        s.entry_ms[i] = 0;
        s.pend_target[i] = 0;
        s.pend_left[i] = 0;
        s.pend_arrival[i] = 0;
        s.dsr_a[i] = 0.0;
        s.dsr_b[i] = 0.0;
        s.sharpe_sum[i] = 0.0;
        s.sharpe_sumsq[i] = 0.0;
        s.reward_sum[i] = 0.0;
        s.fills[i] = 0;
        s.rejected[i] = 0;
        s.turnover[i] = 0.0;
        s.ended[i] = 0;
        let w = self.ring_w;
        self.ring[i * w..(i + 1) * w].fill(0.0);
    }
}

/// One action per environment, each an index into `env.actions`.
pub(crate) fn check_actions(p: &EnvParams, n: usize, actions: &[u8]) -> Result<()> {
    if actions.len() != n {
        return Err(Error::Usage(format!(
            "{} actions for {n} environments",
            actions.len()
        )));
    }
    let n_actions = p.actions.len();
    if let Some(i) = actions.iter().position(|&a| a as usize >= n_actions) {
        return Err(Error::Usage(format!(
            "action {} of environment {i} is out of range: env.actions has {n_actions} entries (valid 0..{})",
            actions[i],
            n_actions - 1
        )));
    }
    Ok(())
}

/// Output buffers sized for `n` environments with `d` observations each.
pub(crate) fn check_out(n: usize, d: usize, out: &StepOut<'_>) -> Result<()> {
    if out.obs.len() != n * d
        || out.rewards.len() != n
        || out.terminated.len() != n
        || out.truncated.len() != n
    {
        return Err(Error::Usage(format!(
            "output buffers must hold {n} × {d} observations and {n} rewards and flags"
        )));
    }
    Ok(())
}

/// A day must carry the feature columns the params ask for.
pub(crate) fn check_day(p: &EnvParams, day: &DayData) -> Result<()> {
    if day.k != p.feature_cols.len() {
        return Err(Error::Data(format!(
            "{} {}: day was loaded with {} feature columns, the environment observes {}",
            day.symbol,
            day.date,
            day.k,
            p.feature_cols.len()
        )));
    }
    Ok(())
}

/// Writes the observation of bar `row` for an account (see [`exec::account_obs`]).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn write_obs(
    p: &EnvParams,
    day: &DayData,
    row: usize,
    position: i64,
    avg_price: f64,
    entry_ms: u32,
    pending: i64,
    inv_e0: f64,
    obs: &mut [f32],
) {
    let k = day.k;
    copy_row(&mut obs[..k], day.feature_row(row));
    obs[k..].copy_from_slice(&exec::account_obs(
        p,
        &day.bars[row],
        day.bar_ms,
        day.close_ms,
        position,
        avg_price,
        entry_ms,
        pending,
        inv_e0,
    ));
}

/// Copies a feature row in 16-byte moves: rows are short, and `copy_from_slice` of a
/// runtime length is a call into `memcpy` per environment.
#[inline(always)]
fn copy_row(dst: &mut [f32], src: &[f32]) {
    let mut d = dst.chunks_exact_mut(4);
    let mut s = src.chunks_exact(4);
    for (a, b) in (&mut d).zip(&mut s) {
        let v: [f32; 4] = b.try_into().expect("chunks of 4");
        a.copy_from_slice(&v);
    }
    for (a, b) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *a = *b;
    }
}

/// Everything one parallel task steps: a range of environments and their outputs.
struct Chunk<'a> {
    state: EnvStateView<'a>,
    days: &'a [Arc<DayData>],
    ring: &'a mut [f64],
    actions: &'a [u8],
    obs: &'a mut [f32],
    rewards: &'a mut [f32],
    terminated: &'a mut [u8],
    truncated: &'a mut [u8],
}

impl<'a> Chunk<'a> {
    fn len(&self) -> usize {
        self.days.len()
    }

    fn split(self, mid: usize, d: usize, w: usize) -> (Chunk<'a>, Chunk<'a>) {
        let (s0, s1) = self.state.split_at(mid);
        let (d0, d1) = self.days.split_at(mid);
        let (r0, r1) = self.ring.split_at_mut(mid * w);
        let (a0, a1) = self.actions.split_at(mid);
        let (o0, o1) = self.obs.split_at_mut(mid * d);
        let (w0, w1) = self.rewards.split_at_mut(mid);
        let (t0, t1) = self.terminated.split_at_mut(mid);
        let (u0, u1) = self.truncated.split_at_mut(mid);
        (
            Chunk {
                state: s0,
                days: d0,
                ring: r0,
                actions: a0,
                obs: o0,
                rewards: w0,
                terminated: t0,
                truncated: u0,
            },
            Chunk {
                state: s1,
                days: d1,
                ring: r1,
                actions: a1,
                obs: o1,
                rewards: w1,
                terminated: t1,
                truncated: u1,
            },
        )
    }
}

fn run_parallel(p: &EnvParams, c: Chunk<'_>, d: usize, w: usize, grain: usize, simd: Simd) {
    if c.len() <= grain {
        step_chunk(p, c, d, w, simd);
        return;
    }
    let mid = c.len() / 2;
    let (a, b) = c.split(mid, d, w);
    rayon::join(
        || run_parallel(p, a, d, w, grain, simd),
        || run_parallel(p, b, d, w, grain, simd),
    );
}

/// The instruction sets the batch step is compiled for; [`CpuEnvs`] runs the widest the
/// CPU has ([`Simd::best`]). Every level computes the same bits: the step's phases are
/// straight-line loops over a block of environments, which the compiler vectorizes with
/// exact IEEE operations (no reassociation, no fused multiply-add) at any width.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Simd {
    /// The target's baseline (SSE2 on x86-64): 2 `f64` lanes.
    Baseline,
    /// x86-64 AVX2: 4 `f64` lanes; `f64`↔`i64` conversions are per lane.
    Avx2,
    /// x86-64 AVX-512 (F, DQ, VL, BW): 8 `f64` lanes, vector `f64`↔`i64` conversions.
    Avx512,
}

impl Simd {
    /// Whether this CPU runs code compiled for `self`.
    pub fn supported(self) -> bool {
        match self {
            Simd::Baseline => true,
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => std::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512 => {
                std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512dq")
                    && std::is_x86_feature_detected!("avx512vl")
                    && std::is_x86_feature_detected!("avx512bw")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// Ok when this CPU runs `self`, else a usage error naming the levels it runs.
    pub fn require(self) -> Result<()> {
        if self.supported() {
            return Ok(());
        }
        Err(Error::Usage(format!(
            "this CPU cannot run the {} step (it runs: {})",
            self.name(),
            Simd::available()
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }

    /// The levels this CPU runs, narrowest first.
    pub fn available() -> Vec<Simd> {
        [Simd::Baseline, Simd::Avx2, Simd::Avx512]
            .into_iter()
            .filter(|s| s.supported())
            .collect()
    }

    /// The widest level this CPU runs.
    pub fn best() -> Simd {
        *Simd::available()
            .last()
            .expect("the baseline is always available")
    }

    pub fn name(self) -> &'static str {
        match self {
            Simd::Baseline => "baseline",
            Simd::Avx2 => "avx2",
            Simd::Avx512 => "avx512",
        }
    }

    pub fn parse(s: &str) -> Option<Simd> {
        [Simd::Baseline, Simd::Avx2, Simd::Avx512]
            .into_iter()
            .find(|l| l.name() == s)
    }
}

/// Pass 1 for one chunk at `simd` (which the CPU must support: [`CpuEnvs::set_simd`]
/// checks it).
fn step_chunk(p: &EnvParams, c: Chunk<'_>, d: usize, w: usize, simd: Simd) {
    match simd {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `simd` is supported by this CPU (checked when it was chosen).
        Simd::Avx512 => unsafe { step_chunk_avx512(p, c, d, w) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Simd::Avx2 => unsafe { step_chunk_avx2(p, c, d, w) },
        _ => step_chunk_blocks(p, c, d, w),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw")]
fn step_chunk_avx512(p: &EnvParams, c: Chunk<'_>, d: usize, w: usize) {
    step_chunk_blocks(p, c, d, w);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn step_chunk_avx2(p: &EnvParams, c: Chunk<'_>, d: usize, w: usize) {
    step_chunk_blocks(p, c, d, w);
}

/// Pass 1 for one chunk, in blocks of [`BLOCK`] environments (inlined into each
/// [`Simd`] level's function, which compiles it for its instruction set).
#[inline(always)]
fn step_chunk_blocks(p: &EnvParams, mut c: Chunk<'_>, d: usize, w: usize) {
    prefetch_block(&c, 0..c.len().min(BLOCK));
    while c.len() > 0 {
        let m = c.len().min(BLOCK);
        // The next block's lines arrive while this one is stepped.
        prefetch_block(&c, m..c.len().min(2 * BLOCK));
        let (block, rest) = c.split(m, d, w);
        step_block(p, block, d, w);
        c = rest;
    }
}

/// Prefetches what the step of environments `range` of `c` reads from their days: bars
/// `t` and `t+1` and feature row `t+1`.
#[inline(always)]
fn prefetch_block(c: &Chunk<'_>, range: std::ops::Range<usize>) {
    for i in range {
        prefetch_step(&c.days[i], c.state.row[i] as usize);
    }
}

/// Environments stepped phase by phase: each phase is a loop whose iterations are
/// independent, so the core overlaps several environments' divisions, square roots and
/// memory misses instead of waiting on one environment's long chain.
const BLOCK: usize = 64;

/// The market fields of one bar per environment of a block (bar `t+1`), gathered from
/// their days.
struct BlockBars {
    ts: [u32; BLOCK],
    flags: [u32; BLOCK],
    open: [f64; BLOCK],
    close: [f64; BLOCK],
    bid: [f64; BLOCK],
    ask: [f64; BLOCK],
    volume: [f32; BLOCK],
    sigma: [f32; BLOCK],
}

impl BlockBars {
    #[inline(always)]
    fn new() -> Self {
        BlockBars {
            ts: [0; BLOCK],
            flags: [0; BLOCK],
            open: [0.0; BLOCK],
            close: [0.0; BLOCK],
            bid: [0.0; BLOCK],
            ask: [0.0; BLOCK],
            volume: [0.0; BLOCK],
            sigma: [0.0; BLOCK],
        }
    }

    #[inline(always)]
    fn set(&mut self, i: usize, b: &BarRec) {
        self.ts[i] = b.ts_ms;
        self.flags[i] = b.flags;
        self.open[i] = b.open;
        self.close[i] = b.close;
        self.bid[i] = b.bid;
        self.ask[i] = b.ask;
        self.volume[i] = b.volume;
        self.sigma[i] = b.sigma;
    }

    #[inline(always)]
    fn get(&self, i: usize) -> BarRec {
        BarRec {
            ts_ms: self.ts[i],
            flags: self.flags[i],
            open: self.open[i],
            close: self.close[i],
            bid: self.bid[i],
            ask: self.ask[i],
            volume: self.volume[i],
            sigma: self.sigma[i],
        }
    }
}

/// The step of one block of at most [`BLOCK`] environments (see [`super`] for the rules;
/// the reference engine spells out the same sequence with named types):
/// - phase 0: gather each environment's action, bar `t`'s close and start, bar `t+1` and
///   its day's constants into block-local arrays (the lines were prefetched while the
///   previous block stepped: [`step_chunk_blocks`]);
/// - phase 1: the decision at `t`'s close;
/// - phase 2: whether and how much a working order fills at `t+1`, and its costs;
/// - phase 3: the books, borrow, mark and episode end (forced exits after it, rare);
/// - phase 4: the reward; phase 5: the observation.
#[inline(always)]
fn step_block(p: &EnvParams, c: Chunk<'_>, d: usize, w: usize) {
    let n = c.len();
    // One check of every length up front (a bug, never user input, could fail it) lets
    // the compiler drop the bounds check of each field access below.
    assert!(
        n <= BLOCK
            && c.state.holds(n)
            && c.actions.len() == n
            && c.ring.len() == n * w
            && c.obs.len() == n * d
            && c.rewards.len() == n
            && c.terminated.len() == n
            && c.truncated.len() == n
    );
    let mut s = c.state;
    let wts = &p.weights;

    // 0. Gather.
    let mut close_t = [0f64; BLOCK];
    let mut ts_t = [0u32; BLOCK];
    let mut close_ms = [0u32; BLOCK];
    let mut bf = BlockBars::new();
    let mut frac = [0f64; BLOCK];
    let mut bar_ms = [0u32; BLOCK];
    let mut last = [false; BLOCK];
    let mut any_halts = false;
    for i in 0..n {
        let day = &*c.days[i];
        let t = s.row[i] as usize;
        let bar_t = &day.bars[t];
        close_t[i] = bar_t.close;
        ts_t[i] = bar_t.ts_ms;
        close_ms[i] = day.close_ms;
        bf.set(i, &day.bars[t + 1]);
        frac[i] = p.actions[c.actions[i] as usize];
        bar_ms[i] = day.bar_ms;
        last[i] = (t + 1) as u32 == day.last_row;
        any_halts |= !day.halts.is_empty();
    }

    // 1. Decision at t's close. Keep the working order, send a new one, or cancel it:
    // selected, not branched (what the agent decides is a coin flip to the branch
    // predictor).
    for i in 0..n {
        let position = s.position[i];
        let (pend_left, pend_target) = (s.pend_left[i], s.pend_target[i]);
        let pending = pend_left != 0;
        let current = select(pending, pend_target, position);
        let target = exec::decide_target(p, frac[i], close_t[i], current);
        let keep = pending & (pend_target == target);
        let send = !keep & (target != position);
        s.pend_target[i] = select(send, target, pend_target);
        s.pend_left[i] = select(keep, pend_left, select(send, target - position, 0));
        s.pend_arrival[i] = select(send, ts_t[i] + bar_ms[i] + p.latency_ms, s.pend_arrival[i]);
    }
    // Orders arriving inside a halt of their day are rejected (days with halts are rare).
    let mut halt_at_arrival = [false; BLOCK];
    if any_halts {
        for ((h, day), &arrival) in halt_at_arrival.iter_mut().zip(c.days).zip(&*s.pend_arrival) {
            *h = day.in_halt(arrival);
        }
    }

    // 2. Fills at t+1: rejection, participation cap, reference price and costs.
    // Every environment's costs are computed, whether its order fills or not: cheaper
    // than a mispredicted branch on half of them.
    let mut fill_shares = [0i64; BLOCK];
    let mut fill_price = [0f64; BLOCK];
    let mut fill_total = [0f64; BLOCK];
    for i in 0..n {
        let pend_left = s.pend_left[i];
        let arrival = s.pend_arrival[i];
        let bar_f = bf.get(i);
        let arrived = (pend_left != 0) & (bar_f.ts_ms >= arrival);
        let rejected = arrived & (bar_f.halted() | halt_at_arrival[i]);
        let q = pend_left.abs().min(exec::participation_cap(p, &bar_f));
        let fills = arrived & !rejected & (q > 0);
        let shares = select(fills, q * pend_left.signum(), 0);
        let (price, half) = exec::open_basis(p, &bar_f);
        fill_shares[i] = shares;
        fill_price[i] = price;
        fill_total[i] = exec::fill_costs(p, q as f64, price, half, &bar_f).total();
        let left = select(p.carry_remainder & !rejected, pend_left - shares, 0);
        s.pend_left[i] = select(arrived, left, pend_left);
        s.rejected[i] += rejected as u32;
    }

    // 3. Books, borrow, mark, episode end.
    let mut equity_b = [0f64; BLOCK];
    let mut traded_b = [0f64; BLOCK];
    let mut any_exit = false;
    for i in 0..n {
        let mut l = s.ledger(i);
        let e0 = s.equity0[i];
        let shares = fill_shares[i];
        let filled = shares != 0;
        l.book_total_if(filled, shares, fill_price[i], fill_total[i], bf.ts[i]);
        let traded = select(filled, shares.abs() as f64 * fill_price[i], 0.0);
        l.borrow(p, bf.close[i], bf.ts[i] - ts_t[i]);
        let steps = s.steps[i] + 1;
        let equity = l.equity(bf.close[i]);
        let lost = (p.loss_limit > 0.0) & (equity - e0 <= -p.loss_limit * e0);
        let maxed = (p.max_episode_steps > 0) & (steps >= p.max_episode_steps);
        let ended: u8 = select(last[i], 1, select(lost, 2, select(maxed, 3, 0)));
        any_exit |= last[i] | lost;
        s.row[i] += 1;
        s.steps[i] = steps;
        s.set_ledger(i, &l);
        s.ended[i] = ended;
        equity_b[i] = equity;
        traded_b[i] = traded;
    }
    // Terminated episodes leave flat: the working order is cancelled and the position
    // closed at the bar's close, with costs.
    if any_exit {
        for i in 0..n {
            if s.ended[i] != 1 && s.ended[i] != 2 {
                continue;
            }
            s.pend_left[i] = 0;
            let mut l = s.ledger(i);
            let pos = l.position;
            if pos != 0 {
                let bar_f = bf.get(i);
                let (price, half) = exec::close_basis(p, &bar_f);
                l.book(p, -pos, price, half, &bar_f);
                traded_b[i] += pos.abs() as f64 * price;
            }
            equity_b[i] = l.cash;
            s.set_ledger(i, &l);
        }
    }

    // 4. Reward.
    let mut dsr = [0f64; BLOCK];
    let mut pnl_b = [0f64; BLOCK];
    let mut dd_b = [0f64; BLOCK];
    let mut turn_b = [0f64; BLOCK];
    for i in 0..n {
        let (pnl, dd_increase, turnover, peak) = exec::step_fractions(
            equity_b[i],
            s.prev_equity[i],
            s.peak_equity[i],
            s.inv_equity0[i],
            traded_b[i],
        );
        pnl_b[i] = pnl;
        dd_b[i] = dd_increase;
        turn_b[i] = turnover;
        s.peak_equity[i] = peak;
    }
    if wts.dsr != 0.0 {
        for i in 0..n {
            dsr[i] = exec::dsr_step(
                &mut s.dsr_a[i],
                &mut s.dsr_b[i],
                pnl_b[i],
                p.dsr_eta,
                p.dsr_eps,
                s.steps[i] > p.dsr_warmup,
            );
        }
    }
    let mut sharpe = [0f64; BLOCK];
    if wts.sharpe != 0.0 {
        for i in 0..n {
            sharpe[i] = exec::rolling_sharpe(
                &mut c.ring[i * w..(i + 1) * w],
                s.steps[i] - 1,
                &mut s.sharpe_sum[i],
                &mut s.sharpe_sumsq[i],
                pnl_b[i],
            );
        }
    }
    for i in 0..n {
        let reward = exec::reward(
            wts,
            p.reward_scale,
            pnl_b[i],
            dsr[i],
            sharpe[i],
            dd_b[i],
            turn_b[i],
        );
        s.prev_equity[i] = equity_b[i];
        s.reward_sum[i] += reward;
        s.turnover[i] += traded_b[i];
        let ended = s.ended[i];
        c.rewards[i] = reward as f32;
        c.terminated[i] = ((ended == 1) | (ended == 2)) as u8;
        c.truncated[i] = (ended == 3) as u8;
    }

    // 5. Observations of the environments still running (the others are reset in pass 2):
    // the block's account fields in one loop, then each environment's row.
    let mut acct = [[0f32; BLOCK]; ACCOUNT_FIELDS.len()];
    for i in 0..n {
        let a = exec::account_obs(
            p,
            &bf.get(i),
            bar_ms[i],
            close_ms[i],
            s.position[i],
            s.avg_price[i],
            s.entry_ms[i],
            s.pend_left[i],
            s.inv_equity0[i],
        );
        for (field, v) in acct.iter_mut().zip(a) {
            field[i] = v;
        }
    }
    let k = d - ACCOUNT_FIELDS.len();
    for i in 0..n {
        if s.ended[i] != 0 {
            continue;
        }
        let obs = &mut c.obs[i * d..(i + 1) * d];
        copy_row(&mut obs[..k], c.days[i].feature_row(s.row[i] as usize));
        for (o, field) in obs[k..].iter_mut().zip(&acct) {
            *o = field[i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The figures `benches/NOTES.md` quotes for the default config.
    #[test]
    fn state_and_step_bytes() {
        assert_eq!(EnvState::bytes_per_env(), 165);
        let p = EnvParams::from_config(&super::super::EnvConfig::default()).unwrap();
        let k = p.feature_cols.len();
        assert_eq!(DayData::bytes_per_step(k), 204);
        assert_eq!(EnvState::FIELDS.len(), 25);
    }
}
