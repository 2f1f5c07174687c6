//! Reset points and squeezes: one causal forward pass over a day's bars.
//!
//! A reset point is a moment an episode can start from: a time, the pattern that makes
//! it interesting (`open`, `power_hour`, `breakout`, `flush`, `bounce`, `consolidation`,
//! `squeeze`, `halt_resume`), the momentum phase at that moment, and a few features.
//! **Every feature of a reset point at time t is computed from bars that start at or
//! before t** (and from halts that ended by then); the pass keeps only running state and
//! trailing windows, so rewriting the rest of the day after t leaves the point unchanged
//! (a test proves it by rewriting). That is what makes reset features safe to train on.
//!
//! Squeezes are detected by the same pass: the price moved at least `scan.squeeze_move`
//! (|log return|) over the trailing `scan.squeeze_window_secs`, while the volume rate of
//! the trailing `scan.squeeze_volume_secs` is at least `scan.squeeze_volume_mult` times
//! the rate of the `scan.baseline_secs` before it (within the same part of the session:
//! pre-market, regular, after-hours). A squeeze lasts while the condition keeps firing
//! within one window; the day's squeeze count (an end-of-day field) is the number of such
//! episodes over all bars.

use super::config::ScanConfig;
use super::metrics::DayBars;
use crate::env::params::{SessionKind, parse_hms};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Why a moment is a reset point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pattern {
    /// The first bar of the reset session.
    Open,
    /// The first bar at or after `scan.power_hour`.
    PowerHour,
    /// A new high of the day on a volume velocity of at least `scan.breakout_volume`.
    Breakout,
    /// A new low of the day with a price velocity at or below `-scan.flush_move`.
    Flush,
    /// After a drop of `scan.bounce_drop` from the high, back up by `scan.bounce_retrace`
    /// of the drop.
    Bounce,
    /// The range over the last `scan.consolidation_secs` became tight (at most
    /// `scan.consolidation_range`) after the day moved `scan.consolidation_after`; one
    /// point per tight stretch (the range must widen to twice the limit before the next).
    Consolidation,
    /// The start of a squeeze (see the module docs).
    Squeeze,
    /// The first bar after a halt.
    HaltResume,
}

impl Pattern {
    pub const ALL: [Pattern; 8] = [
        Pattern::Open,
        Pattern::PowerHour,
        Pattern::Breakout,
        Pattern::Flush,
        Pattern::Bounce,
        Pattern::Consolidation,
        Pattern::Squeeze,
        Pattern::HaltResume,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Open => "open",
            Pattern::PowerHour => "power_hour",
            Pattern::Breakout => "breakout",
            Pattern::Flush => "flush",
            Pattern::Bounce => "bounce",
            Pattern::Consolidation => "consolidation",
            Pattern::Squeeze => "squeeze",
            Pattern::HaltResume => "halt_resume",
        }
    }
    pub fn parse(s: &str) -> Option<Pattern> {
        Pattern::ALL.into_iter().find(|p| p.name() == s)
    }
}

/// Where the day's move stands at a moment (from bars so far).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The day's range so far is below `scan.phase_min_range`.
    Quiet,
    /// Up on the day, in the top quarter of the range so far.
    RunUp,
    /// Up on the day, below the top quarter.
    Pullback,
    /// Down on the day, in the bottom quarter of the range so far.
    RunDown,
    /// Down on the day, above the bottom quarter.
    Recovery,
}

impl Phase {
    pub const ALL: [Phase; 5] = [
        Phase::Quiet,
        Phase::RunUp,
        Phase::Pullback,
        Phase::RunDown,
        Phase::Recovery,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Phase::Quiet => "quiet",
            Phase::RunUp => "run_up",
            Phase::Pullback => "pullback",
            Phase::RunDown => "run_down",
            Phase::Recovery => "recovery",
        }
    }
    pub fn parse(s: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.name() == s)
    }
}

/// One reset point. All fields are causal (from bars starting at or before `sec`).
#[derive(Clone, Debug, PartialEq)]
pub struct ResetPoint {
    /// Bar start, seconds after New York midnight.
    pub sec: u32,
    pub pattern: Pattern,
    pub phase: Phase,
    /// In [0, 1]: mean of the range so far, volume velocity and price velocity scores.
    pub local_quality: f64,
    /// Volume per second over the trailing `scan.velocity_secs`, over the day's rate
    /// before that window (1 without earlier volume).
    pub volume_velocity: f64,
    /// Log return over the trailing `scan.velocity_secs`.
    pub price_velocity: f64,
    /// Close of the bar, dollars.
    pub price: f64,
    /// `close / day's first open - 1`.
    pub move_so_far: f64,
    /// `(high so far - low so far) / day's first open`.
    pub range_so_far: f64,
}

/// What the pass finds in a day.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DayEvents {
    pub resets: Vec<ResetPoint>,
    /// Start times of the squeezes detected over all bars (seconds after midnight).
    pub squeezes: Vec<u32>,
}

/// Trailing-window bookkeeping: index of the first bar inside `(t - w, t]`, and of the
/// first bar of the volume baseline before it: `[max(t - w - baseline, phase start), t - w]`
/// where the phase is the part of the session the bar is in (pre-market, regular,
/// after-hours), so that the jump in activity at the open is not a volume spike.
struct Trail {
    w: u32,
    baseline: u32,
    first: usize,
    base_first: usize,
}

impl Trail {
    fn new(w: u32, baseline: u32) -> Trail {
        Trail {
            w,
            baseline,
            first: 0,
            base_first: 0,
        }
    }
    fn advance(&mut self, secs: &[u32], i: usize, phase_start: u32) {
        let t = secs[i];
        while self.first < i && secs[self.first] + self.w <= t {
            self.first += 1;
        }
        let from = (t.saturating_sub(self.w + self.baseline)).max(phase_start);
        while self.base_first < self.first && secs[self.base_first] < from {
            self.base_first += 1;
        }
    }
    /// Seconds the baseline covers.
    fn baseline_secs(&self, t: u32, phase_start: u32) -> u32 {
        let end = t.saturating_sub(self.w);
        let start = (t.saturating_sub(self.w + self.baseline)).max(phase_start);
        end.saturating_sub(start)
    }
}

/// Rolling max (or min with negated values) over a trailing window.
struct RollMax {
    q: VecDeque<(usize, f64)>,
}

impl RollMax {
    fn push(&mut self, i: usize, v: f64) {
        while self.q.back().is_some_and(|&(_, x)| x <= v) {
            self.q.pop_back();
        }
        self.q.push_back((i, v));
    }
    fn max_from(&mut self, first: usize) -> f64 {
        while self.q.front().is_some_and(|&(j, _)| j < first) {
            self.q.pop_front();
        }
        self.q.front().map_or(f64::NAN, |&(_, v)| v)
    }
}

fn clamp01(x: f64) -> f64 {
    if x.is_finite() {
        x.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// Runs the causal pass over `d`.
pub fn day_events(d: &DayBars, cfg: &ScanConfig) -> DayEvents {
    let n = d.rows();
    let mut out = DayEvents::default();
    if n == 0 {
        return out;
    }
    let (sess_open, sess_close) = match cfg.reset_session {
        SessionKind::Regular => d.regular,
        SessionKind::Extended => d.extended,
    };
    let last_start = sess_close.saturating_sub(cfg.reset_tail_secs);
    let power_hour = parse_hms(&cfg.power_hour).unwrap_or(54_000);
    let day_open = d.open[0];
    let first_sec = d.secs[0];
    // Prefix sums of volume: `cum[i + 1]` = volume of bars 0..=i. Only entries up to the
    // current bar are ever read.
    let mut cum = Vec::with_capacity(n + 1);
    cum.push(0.0);
    let mut acc = 0.0;
    for v in &d.volume {
        acc += v;
        cum.push(acc);
    }
    let mut sq = Trail::new(cfg.squeeze_window_secs, 0);
    let mut sq_vol = Trail::new(cfg.squeeze_volume_secs, cfg.baseline_secs);
    let mut vel = Trail::new(cfg.velocity_secs, cfg.baseline_secs);
    let mut cons = Trail::new(cfg.consolidation_secs, 0);
    let mut cons_hi = RollMax { q: VecDeque::new() };
    let mut cons_lo = RollMax { q: VecDeque::new() };
    let (mut hi, mut lo) = (f64::MIN, f64::MAX);
    let mut lo_since_hi = f64::MAX;
    let mut bounce_armed = true;
    let mut last_emit = [None::<u32>; 8];
    let mut squeeze_last_fire: Option<u32> = None;
    let mut halt_next = 0usize;
    let mut halts: Vec<(u32, u32)> = d.halts.clone();
    halts.sort_unstable();
    let (mut opened, mut power_done) = (false, false);
    let mut was_tight = false;

    // Volume rate of the trailing window `(t - w, t]` against the baseline before it (at
    // least as long as the window, inside the bar's session phase).
    let rate_ratio = |tr: &Trail, i: usize, phase_start: u32| -> Option<f64> {
        let window = cum[i + 1] - cum[tr.first];
        let base = cum[tr.first] - cum[tr.base_first];
        let base_secs = tr.baseline_secs(d.secs[i], phase_start);
        if base_secs < tr.w || base <= 0.0 {
            return None;
        }
        Some((window / tr.w as f64) / (base / base_secs as f64))
    };
    let (reg_open, reg_close) = d.regular;
    let phase_start_of = |t: u32| -> u32 {
        let p = if t < reg_open {
            0
        } else if t < reg_close {
            reg_open
        } else {
            reg_close
        };
        p.max(first_sec)
    };
    // Log return since the close of the latest bar starting at or before `t - w`.
    let ret_over = |tr: &Trail, i: usize| -> f64 {
        let reference = if tr.first > 0 {
            d.close[tr.first - 1]
        } else {
            day_open
        };
        (d.close[i] / reference).ln()
    };

    for i in 0..n {
        let t = d.secs[i];
        let prev_hi = hi;
        let prev_lo = lo;
        hi = hi.max(d.high[i]);
        lo = lo.min(d.low[i]);
        // A new high restarts the drop measured by `bounce`; so does a new low since it.
        if d.high[i] >= prev_hi || d.low[i] < lo_since_hi {
            lo_since_hi = d.low[i];
            bounce_armed = true;
        }
        let phase_start = phase_start_of(t);
        sq.advance(&d.secs, i, phase_start);
        sq_vol.advance(&d.secs, i, phase_start);
        vel.advance(&d.secs, i, phase_start);
        cons.advance(&d.secs, i, phase_start);
        cons_hi.push(i, d.high[i]);
        cons_lo.push(i, -d.low[i]);
        let halted = halts.iter().any(|&(a, b)| t >= a && t < b);

        // Squeezes, over every bar.
        let sq_fire = !halted
            && ret_over(&sq, i).abs() >= cfg.squeeze_move
            && rate_ratio(&sq_vol, i, phase_start).is_some_and(|r| r >= cfg.squeeze_volume_mult);
        let mut squeeze_start = false;
        if sq_fire {
            if squeeze_last_fire.is_none_or(|f| t > f + cfg.squeeze_window_secs) {
                out.squeezes.push(t);
                squeeze_start = true;
            }
            squeeze_last_fire = Some(t);
        }

        // Halts known by now: those that ended at or before this bar.
        let mut resumed = false;
        while halt_next < halts.len() && halts[halt_next].1 <= t {
            resumed = true;
            halt_next += 1;
        }

        if halted || t < sess_open || t >= last_start {
            continue;
        }
        let price_velocity = ret_over(&vel, i);
        let volume_velocity = rate_ratio(&vel, i, phase_start).unwrap_or(1.0);
        let range_so_far = (hi - lo) / day_open;
        let move_so_far = d.close[i] / day_open - 1.0;
        let mut found: [bool; 8] = [false; 8];
        found[0] = !opened;
        opened = true;
        if !power_done && t >= power_hour {
            found[1] = true;
            power_done = true;
        }
        found[2] =
            prev_hi != f64::MIN && d.high[i] > prev_hi && volume_velocity >= cfg.breakout_volume;
        found[3] = prev_lo != f64::MAX && d.low[i] < prev_lo && price_velocity <= -cfg.flush_move;
        let drop = (hi - lo_since_hi) / hi;
        if bounce_armed
            && drop >= cfg.bounce_drop
            && d.close[i] >= lo_since_hi + cfg.bounce_retrace * (hi - lo_since_hi)
        {
            found[4] = true;
            bounce_armed = false;
        }
        if t >= first_sec + cfg.consolidation_secs && range_so_far >= cfg.consolidation_after {
            let w_hi = cons_hi.max_from(cons.first);
            let w_lo = -cons_lo.max_from(cons.first);
            let width = (w_hi - w_lo) / d.close[i];
            // One point per tight stretch: when the range becomes tight; the next needs
            // the range to have widened to twice the limit first.
            if width <= cfg.consolidation_range && !was_tight {
                found[5] = true;
                was_tight = true;
            } else if width > 2.0 * cfg.consolidation_range {
                was_tight = false;
            }
        }
        found[6] = squeeze_start;
        found[7] = resumed;
        if !found.iter().any(|&f| f) {
            continue;
        }
        let phase = if range_so_far < cfg.phase_min_range {
            Phase::Quiet
        } else {
            let pos = (d.close[i] - lo) / (hi - lo);
            match (move_so_far > 0.0, pos) {
                (true, p) if p >= 0.75 => Phase::RunUp,
                (true, _) => Phase::Pullback,
                (false, p) if p <= 0.25 => Phase::RunDown,
                (false, _) => Phase::Recovery,
            }
        };
        let range_score =
            clamp01((range_so_far - cfg.dead_range) / (cfg.full_range - cfg.dead_range));
        let volume_score = clamp01(volume_velocity.ln() / cfg.full_rel_volume.ln());
        let price_score = clamp01(price_velocity.abs() / cfg.squeeze_move);
        let local_quality = (range_score + volume_score + price_score) / 3.0;
        for (k, pattern) in Pattern::ALL.into_iter().enumerate() {
            if !found[k] {
                continue;
            }
            // The gap rule applies to the repeating patterns; open, power hour, squeeze
            // starts and halt resumes happen once per event anyway.
            let spaced = matches!(
                pattern,
                Pattern::Breakout | Pattern::Flush | Pattern::Bounce | Pattern::Consolidation
            );
            if spaced && last_emit[k].is_some_and(|e| t < e + cfg.reset_min_gap_secs) {
                continue;
            }
            last_emit[k] = Some(t);
            out.resets.push(ResetPoint {
                sec: t,
                pattern,
                phase,
                local_quality,
                volume_velocity,
                price_velocity,
                price: d.close[i],
                move_so_far,
                range_so_far,
            });
        }
    }
    out
}
