//! Validation of one symbol-day before it is cached.
//!
//! Each check counts its problem; the configured [`Policy`] then decides: `fix` repairs the
//! bars as documented on [`Problem`], `drop-day` leaves the symbol-day out, `fail` stops
//! the build naming the symbol-day. Checks run in a fixed order so that each sees the
//! repairs of the ones before it (sorting before de-duplication, and so on).

use crate::bars::{BarSize, RawDay};
use crate::cache::ClockSpec;
use crate::clock;
use crate::config::{Policy, ValidationConfig};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A problem a symbol-day can have, and what `fix` does about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    /// Bars outside the extended session (04:00 to 20:00, 17:00 on early closes). Fix: drop them.
    OutsideSession,
    /// Timestamps going backwards. Fix: sort by time (stable).
    Unsorted,
    /// Two bars in the same clock slot. Fix: of bars with the same timestamp keep the last
    /// (vendors append corrections); bars with different timestamps in one slot (misaligned
    /// input) are folded into one bar stamped at the first: first open, highest high, lowest
    /// low, last close, summed volume.
    Duplicate,
    /// A price <= 0. Fix: drop the bar.
    NonPositive,
    /// high < low. Fix: swap them.
    HighLow,
    /// open or close outside [low, high]. Fix: widen high / low to contain them.
    Ohlc,
    /// An isolated spike, the shape of a bad print: the return into the bar and out of it
    /// both exceed `outlier_z` robust standard deviations with opposite signs, and the bar
    /// after it is back within that band of the bar before it. Bars next to a halt are never
    /// spikes (reopening moves are real). Fix: drop the bar. Checked only with
    /// `ingest.validation.lookahead_outliers` (off by default): it judges a bar with the
    /// next one in view, which a live feed cannot do. The default's causal counterpart is
    /// [`PrintCheck`], which flags and keeps.
    Outlier,
    /// The regular session has no bar for longer than `max_gap_secs`. Fix: keep the day
    /// (reported only: environments see no bar there and cannot trade).
    Gap,
}

impl Problem {
    pub fn as_str(self) -> &'static str {
        match self {
            Problem::OutsideSession => "outside_session",
            Problem::Unsorted => "unsorted",
            Problem::Duplicate => "duplicate",
            Problem::NonPositive => "non_positive",
            Problem::HighLow => "high_low",
            Problem::Ohlc => "ohlc",
            Problem::Outlier => "outlier",
            Problem::Gap => "gap",
        }
    }
}

/// What validation found in one symbol-day.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DayReport {
    pub symbol: String,
    pub date: chrono::NaiveDate,
    /// Number of bars (or gaps) per problem.
    pub counts: BTreeMap<Problem, usize>,
    /// The problem whose `drop-day` policy removed the day, if any.
    pub dropped: Option<Problem>,
    /// A few human-readable examples.
    pub examples: Vec<String>,
    /// Bars the causal [`PrintCheck`] flagged (kept in the cache, flagged in its `flags`
    /// column). Not a problem: the check runs on every bar, as live runs it.
    #[serde(default)]
    pub suspect_prints: usize,
}

impl DayReport {
    /// Nothing to report: no problem found and no suspect print flagged.
    pub fn is_clean(&self) -> bool {
        self.counts.is_empty() && self.suspect_prints == 0
    }
}

/// The session facts validation needs.
#[derive(Clone, Copy, Debug)]
pub struct DayClock {
    pub clock: ClockSpec,
    pub utc_offset_sec: i32,
    pub open_sec: u32,
    pub close_sec: u32,
}

fn policy_of(cfg: &ValidationConfig, p: Problem) -> Policy {
    let c = &cfg.policy;
    match p {
        Problem::OutsideSession => c.outside_session,
        Problem::Unsorted => c.unsorted,
        Problem::Duplicate => c.duplicate,
        Problem::NonPositive => c.non_positive,
        Problem::HighLow => c.high_low,
        Problem::Ohlc => c.ohlc,
        Problem::Outlier => c.outlier,
        Problem::Gap => c.gap,
    }
}

const MAX_EXAMPLES: usize = 5;

/// Validates (and under `fix`, repairs) `day` in place. `Ok(report)` with
/// `report.dropped = Some(_)` means the day must not be cached.
pub fn validate_day(day: &mut RawDay, dc: &DayClock, cfg: &ValidationConfig) -> Result<DayReport> {
    let mut report = DayReport {
        symbol: day.symbol.clone(),
        date: day.date,
        ..DayReport::default()
    };
    let bar = day.bar.unwrap_or(BarSize::M1);
    let date = day.date;
    let sec = move |ts: i64| clock::sec_of_day(ts, date, dc.utc_offset_sec);
    let daily = !bar.is_intraday();

    // Each step: find the rows with the problem, then apply the policy.
    macro_rules! step {
        ($problem:expr, $count:expr, $example:expr, $fix:block) => {{
            let count: usize = $count;
            let example: String = $example;
            if count > 0 {
                report.counts.insert($problem, count);
                if report.examples.len() < MAX_EXAMPLES {
                    report.examples.push(format!("{}: {}", $problem.as_str(), example));
                }
                match policy_of(cfg, $problem) {
                    Policy::Fix => $fix,
                    Policy::DropDay => {
                        report.dropped = Some($problem);
                        return Ok(report);
                    }
                    Policy::Fail => {
                        return Err(Error::Validation {
                            symbol: day.symbol.clone(),
                            date: day.date,
                            detail: format!(
                                "{} {} in {} (policy `fail` for ingest.validation.policy.{}; set it to fix or drop-day to continue)",
                                count,
                                example,
                                day.origin,
                                $problem.as_str()
                            ),
                        });
                    }
                }
            }
        }};
    }

    // 1. Outside the session clock.
    if !daily {
        let keep: Vec<bool> = day
            .ts_ns
            .iter()
            .map(|&t| dc.clock.slot_of(sec(t)).is_some())
            .collect();
        let n = keep.iter().filter(|k| !**k).count();
        let first_bad = keep
            .iter()
            .position(|k| !k)
            .map(|i| clock::hms(sec(day.ts_ns[i])));
        step!(
            Problem::OutsideSession,
            n,
            format!(
                "bar(s) outside the session, first at {}",
                first_bad.unwrap_or_default()
            ),
            {
                day.retain_rows(&keep);
            }
        );
    }

    // 2. Order.
    let unsorted = day.ts_ns.windows(2).filter(|w| w[1] < w[0]).count();
    step!(
        Problem::Unsorted,
        unsorted,
        "timestamp(s) going backwards".to_string(),
        {
            let mut order: Vec<usize> = (0..day.len()).collect();
            order.sort_by_key(|&i| day.ts_ns[i]);
            day.permute_rows(&order);
        }
    );

    // 3. One bar per clock slot (daily: one bar per day).
    let slot = |ts: i64| -> i64 {
        if daily {
            0
        } else {
            dc.clock.slot_of(sec(ts)).map_or(i64::MIN, |s| s as i64)
        }
    };
    let dup = day
        .ts_ns
        .windows(2)
        .filter(|w| slot(w[0]) == slot(w[1]))
        .count();
    step!(
        Problem::Duplicate,
        dup,
        "bar(s) sharing a clock slot".to_string(),
        {
            let n = day.len();
            let mut keep = vec![true; n];
            let mut head = 0; // first kept bar of the current slot
            for i in 1..n {
                if slot(day.ts_ns[i]) != slot(day.ts_ns[head]) {
                    head = i;
                } else if day.ts_ns[i] == day.ts_ns[head] {
                    // A correction of the slot's bar: it replaces it.
                    keep[head] = false;
                    head = i;
                } else {
                    day.fold_into(head, i);
                    keep[i] = false;
                }
            }
            day.retain_rows(&keep);
        }
    );

    // 4. Prices must be positive.
    let bad: Vec<bool> = (0..day.len())
        .map(|i| {
            day.open[i].0 <= 0 || day.high[i].0 <= 0 || day.low[i].0 <= 0 || day.close[i].0 <= 0
        })
        .collect();
    let n = bad.iter().filter(|b| **b).count();
    step!(
        Problem::NonPositive,
        n,
        "bar(s) with a price <= 0".to_string(),
        {
            let keep: Vec<bool> = bad.iter().map(|b| !b).collect();
            day.retain_rows(&keep);
        }
    );

    // 5. high >= low.
    let n = (0..day.len()).filter(|&i| day.high[i] < day.low[i]).count();
    step!(Problem::HighLow, n, "bar(s) with high < low".to_string(), {
        for i in 0..day.len() {
            if day.high[i] < day.low[i] {
                std::mem::swap(&mut day.high[i], &mut day.low[i]);
            }
        }
    });

    // 6. open and close within [low, high].
    let n = (0..day.len())
        .filter(|&i| {
            let (o, h, l, c) = (day.open[i], day.high[i], day.low[i], day.close[i]);
            o > h || c > h || o < l || c < l
        })
        .count();
    step!(
        Problem::Ohlc,
        n,
        "bar(s) with open/close outside [low, high]".to_string(),
        {
            for i in 0..day.len() {
                day.high[i] = day.high[i].max(day.open[i]).max(day.close[i]);
                day.low[i] = day.low[i].min(day.open[i]).min(day.close[i]);
            }
        }
    );

    // 7. Isolated spikes, judged with the next bar in view: opt-in only.
    let mut spikes = if !cfg.lookahead_outliers {
        Vec::new()
    } else {
        spike_rows(
            &day.close.iter().map(|p| p.dollars()).collect::<Vec<_>>(),
            cfg.outlier_z,
        )
    };
    spikes.retain(|&i| {
        let (from, to) = (day.ts_ns[i - 1], day.ts_ns[i + 1]);
        !day.halts
            .iter()
            .any(|h| h.start_ns <= to && h.end_ns >= from)
    });
    let example = spikes
        .first()
        .map(|&i| {
            format!(
                "spike(s), first at {} close {}",
                clock::hms(sec(day.ts_ns[i])),
                day.close[i]
            )
        })
        .unwrap_or_default();
    step!(Problem::Outlier, spikes.len(), example, {
        let mut keep = vec![true; day.len()];
        for &i in &spikes {
            keep[i] = false;
        }
        day.retain_rows(&keep);
    });

    // 8. Regular-session gaps (reported).
    if !daily {
        let limit = cfg.max_gap_secs.max(bar.secs()) as i64;
        let mut gaps = 0;
        let mut first = String::new();
        let mut prev_end = dc.open_sec as i64;
        for &t in &day.ts_ns {
            let s = sec(t);
            if s < dc.open_sec as i64 {
                continue;
            }
            if s >= dc.close_sec as i64 {
                break;
            }
            if s - prev_end > limit {
                gaps += 1;
                if first.is_empty() {
                    first = format!("{}–{}", clock::hms(prev_end), clock::hms(s));
                }
            }
            prev_end = s + bar.secs() as i64;
        }
        if dc.close_sec as i64 - prev_end > limit && !day.is_empty() {
            gaps += 1;
            if first.is_empty() {
                first = format!(
                    "{}–{}",
                    clock::hms(prev_end),
                    clock::hms(dc.close_sec as i64)
                );
            }
        }
        step!(
            Problem::Gap,
            gaps,
            format!("regular-session gap(s) without bars, first {first}"),
            {}
        );
    }
    Ok(report)
}

/// Rows whose close is an isolated spike (see [`Problem::Outlier`]).
pub(crate) fn spike_rows(close: &[f64], z: f64) -> Vec<usize> {
    if close.len() < 4 {
        return Vec::new();
    }
    let r: Vec<f64> = close.windows(2).map(|w| (w[1] / w[0]).ln()).collect();
    let sigma = robust_sigma(&r);
    if sigma <= 0.0 || !sigma.is_finite() {
        return Vec::new();
    }
    let lim = z * sigma;
    // r[i-1] is the return into row i, r[i] the return out of it.
    (1..close.len() - 1)
        .filter(|&i| {
            let (a, b) = (r[i - 1], r[i]);
            // Into and out of the bar, opposite ways, and back where it came from.
            a.abs() > lim && b.abs() > lim && a.signum() != b.signum() && (a + b).abs() < lim
        })
        .collect()
}

/// The causal bad-print check: one piece of code for the cache builder and the live stream
/// (it lives in [`crate::features::FeatureState`], which both run bar by bar), so the flags
/// a cache holds are the flags live computes. It flags a bar; it never removes or changes
/// one.
///
/// A bar is **suspect** when its close departs from today's last unflagged close by more
/// than [`PrintCheck::Z`] standard deviations, scaled by the square root of the seconds
/// between the two bars (a random walk's spread, so sparse after-hours bars a half hour
/// apart are judged against a half hour of volatility), and by at least
/// [`PrintCheck::MIN_MOVE`] and [`PrintCheck::MIN_TICKS`]. The volatility is an
/// EWMA (span [`PrintCheck::SPAN`] bars, carried across days) of the unflagged bars' absolute
/// per-√second log returns, times √(π/2) (mean absolute deviation to σ for a normal).
/// - Nothing is flagged until [`PrintCheck::WARMUP`] returns have been folded in, on
///   halted bars, or on the first bar after a halt (reopening moves are real).
/// - A flagged bar leaves the reference and the volatility as they were, so one bad print
///   does not flag the bar after it for coming back.
/// - When the bar after a flagged one stays within the band of the flagged close, the new
///   level is taken as real: that bar is not flagged and becomes the reference. A jump
///   flags one bar, not the rest of the day.
///
/// A causal check cannot see that a price comes back, so it also flags real jumps: the flag
/// is information for the agent and the user (the build summary counts it), not a verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct PrintCheck {
    /// Today's last unflagged close and its second of the day.
    level: Option<(f64, u32)>,
    /// The last bar's close and second when it was flagged.
    flagged: Option<(f64, u32)>,
    /// EWMA of the unflagged bars' |log return| / √seconds.
    abs_ret: f64,
    /// Returns folded into `abs_ret`, all days together.
    n: u32,
    /// The last bar was halted.
    after_halt: bool,
}

/// [`PrintCheck`]'s checkpoint form ([`PrintCheck::to_bits`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PrintBits {
    level: Option<(u64, u32)>,
    flagged: Option<(u64, u32)>,
    abs_ret: u64,
    n: u32,
    after_halt: bool,
}

impl Default for PrintCheck {
    fn default() -> Self {
        PrintCheck {
            level: None,
            flagged: None,
            abs_ret: 0.0,
            n: 0,
            after_halt: false,
        }
    }
}

impl PrintCheck {
    /// Standard deviations (σ from the EWMA below) beyond which a close is suspect.
    pub const Z: f64 = 10.0;
    /// Span of the volatility's EWMA, in returns (alpha = 2 / (span + 1)).
    pub const SPAN: f64 = 120.0;
    /// Returns folded in before anything can be flagged.
    pub const WARMUP: u32 = 30;
    /// The smallest suspect move, in log terms (0.3 %): below it a move is never suspect,
    /// however quiet the stock (one-second returns are mostly zero, so σ alone would
    /// flag every one-tick move of a low-priced stock).
    pub const MIN_MOVE: f64 = 0.003;
    /// The smallest suspect move in dollars (three cent ticks): a low-priced stock's one-
    /// or two-tick moves are never suspect. (In a split-adjusted cache this is three cents
    /// of adjusted price; a live feed's prices are raw, as caches built for live use are.)
    pub const MIN_TICKS: f64 = 0.03;

    /// Starts a day: the reference level restarts (an overnight gap is not a bad print);
    /// the volatility carries on.
    pub fn begin_day(&mut self) {
        self.level = None;
        self.flagged = None;
        self.after_halt = false;
    }

    /// Judges one bar (its start second, close and halt state) and folds it in; `true`
    /// when it is suspect.
    pub fn check(&mut self, sec_of_day: u32, close: f64, halted: bool) -> bool {
        if !(close > 0.0 && close.is_finite()) {
            return false; // not a price (validation drops these): nothing to judge
        }
        let level = self.level.replace((close, sec_of_day));
        let after_halt = std::mem::replace(&mut self.after_halt, halted);
        let flagged = self.flagged.take();
        let Some((ref_close, ref_sec)) = level else {
            return false; // the day's first bar
        };
        if halted {
            return false;
        }
        let sigma = self.abs_ret * std::f64::consts::FRAC_PI_2.sqrt();
        // A move from (from, from_sec) to this bar: its log size, and whether it lies
        // outside the band (Z σ √seconds, and at least MIN_MOVE and MIN_TICKS).
        // (Also √seconds.) The tick floor's logarithm is only taken for a move already
        // outside the rest of the band: most bars never need it.
        let outside = |from: f64, from_sec: u32| {
            let root = (sec_of_day.saturating_sub(from_sec).max(1) as f64).sqrt();
            let size = (close / from).ln().abs();
            let out = size > (Self::Z * sigma * root).max(Self::MIN_MOVE)
                && size > (1.0 + Self::MIN_TICKS / from).ln();
            (size, root, out)
        };
        let (size, root, suspect) = outside(ref_close, ref_sec);
        if self.n < Self::WARMUP {
            // Warming up: folded in, never flagged.
            self.fold(size / root);
        } else if after_halt {
            // Reopening after a halt: the new level, neither flagged nor volatility.
        } else if !suspect {
            self.fold(size / root);
        } else if flagged.is_none_or(|(c, s)| outside(c, s).2) {
            // Suspect: the reference and the volatility stay as they were.
            self.level = level;
            self.flagged = Some((close, sec_of_day));
            return true;
        }
        // (else: a new level that holds after a flagged bar; the jump is not volatility.)
        false
    }

    /// The state with its floats as IEEE-754 bit patterns, for checkpoints that restore
    /// it bit for bit.
    pub fn to_bits(&self) -> PrintBits {
        PrintBits {
            level: self.level.map(|(c, s)| (c.to_bits(), s)),
            flagged: self.flagged.map(|(c, s)| (c.to_bits(), s)),
            abs_ret: self.abs_ret.to_bits(),
            n: self.n,
            after_halt: self.after_halt,
        }
    }

    pub fn from_bits(b: &PrintBits) -> PrintCheck {
        PrintCheck {
            level: b.level.map(|(c, s)| (f64::from_bits(c), s)),
            flagged: b.flagged.map(|(c, s)| (f64::from_bits(c), s)),
            abs_ret: f64::from_bits(b.abs_ret),
            n: b.n,
            after_halt: b.after_halt,
        }
    }

    fn fold(&mut self, abs_u: f64) {
        let alpha = (2.0 / (Self::SPAN + 1.0)).max(1.0 / (self.n as f64 + 1.0));
        self.abs_ret += alpha * (abs_u - self.abs_ret);
        self.n = self.n.saturating_add(1);
    }
}

/// 1.4826 × median absolute deviation (the normal-consistent robust σ); when more than
/// half the returns are zero (sparse 1-second data), the mean absolute deviation × 1.2533.
fn robust_sigma(x: &[f64]) -> f64 {
    let mut v: Vec<f64> = x.to_vec();
    let mid = v.len() / 2;
    let med = *v.select_nth_unstable_by(mid, f64::total_cmp).1;
    let mut dev: Vec<f64> = x.iter().map(|a| (a - med).abs()).collect();
    let mad = *dev.select_nth_unstable_by(mid, f64::total_cmp).1;
    if mad > 0.0 {
        1.4826 * mad
    } else {
        1.2533 * x.iter().map(|a| (a - med).abs()).sum::<f64>() / x.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bars::Price;
    use crate::config::PolicyConfig;
    use chrono::NaiveDate;

    fn date() -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 3, 5).unwrap()
    }
    fn dc() -> DayClock {
        DayClock {
            clock: ClockSpec {
                first_slot_sec: 14_400,
                slot_secs: 60,
                n_slots: 960,
            },
            utc_offset_sec: -5 * 3600,
            open_sec: 34_200,
            close_sec: 57_600,
        }
    }
    /// A day of 1-minute bars at the given minutes after 09:30 with the given closes.
    fn day(mins: &[i64], closes: &[f64]) -> RawDay {
        let mut d = RawDay::new("T", date(), BarSize::M1, "test");
        for (&m, &c) in mins.iter().zip(closes) {
            let p = Price::from_dollars(c);
            d.push(clock::utc_ns(date(), 34_200 + 60 * m), p, p, p, p, 100);
        }
        d
    }
    fn cfg(f: impl FnOnce(&mut PolicyConfig)) -> ValidationConfig {
        let mut c = ValidationConfig::default();
        f(&mut c.policy);
        c
    }

    #[test]
    fn clean_day_is_untouched() {
        let mins: Vec<i64> = (0..390).collect();
        let closes: Vec<f64> = (0..390).map(|i| 100.0 + (i as f64 * 0.37).sin()).collect();
        let mut d = day(&mins, &closes);
        let before = d.clone();
        let r = validate_day(&mut d, &dc(), &ValidationConfig::default()).unwrap();
        assert_eq!(r.counts.get(&Problem::Outlier), None, "{r:?}");
        assert_eq!(d, before);
    }

    #[test]
    fn sorts_dedups_and_repairs() {
        let mut d = day(&[2, 0, 1, 1, 3], &[10.0, 10.0, 10.0, 11.0, 10.0]);
        d.high[4] = Price::from_dollars(9.0); // high < low after swap? low=10, high=9 → swap
        d.open[0] = Price::from_dollars(12.0); // open above high
        let r = validate_day(&mut d, &dc(), &ValidationConfig::default()).unwrap();
        assert_eq!(r.counts[&Problem::Unsorted], 1);
        assert_eq!(r.counts[&Problem::Duplicate], 1);
        assert_eq!(r.counts[&Problem::HighLow], 1);
        assert_eq!(r.counts[&Problem::Ohlc], 1);
        // Sorted, the later duplicate (close 11) kept.
        let secs: Vec<i64> = d
            .ts_ns
            .iter()
            .map(|&t| clock::sec_of_day(t, date(), -18000))
            .collect();
        assert_eq!(secs, vec![34_200, 34_260, 34_320, 34_380]);
        assert_eq!(d.close[1], Price::from_dollars(11.0));
        // Swapped: high 10, low 9; the bar with open 12 got its high widened to 12.
        assert_eq!(
            (d.high[3], d.low[3]),
            (Price::from_dollars(10.0), Price::from_dollars(9.0))
        );
        assert_eq!(d.high[2], Price::from_dollars(12.0));
        assert!(r.dropped.is_none());
    }

    #[test]
    fn policies_drop_and_fail() {
        let mut d = day(&[0, 1], &[10.0, -1.0]);
        let r = validate_day(&mut d.clone(), &dc(), &ValidationConfig::default()).unwrap();
        assert_eq!(r.counts[&Problem::NonPositive], 1);
        let r = validate_day(
            &mut d.clone(),
            &dc(),
            &cfg(|p| p.non_positive = Policy::DropDay),
        )
        .unwrap();
        assert_eq!(r.dropped, Some(Problem::NonPositive));
        let e = validate_day(&mut d, &dc(), &cfg(|p| p.non_positive = Policy::Fail))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("T 2024-03-05") && e.contains("non_positive"),
            "{e}"
        );
    }

    #[test]
    fn outside_session_bars_are_dropped() {
        // -400 minutes = 02:50, before the 04:00 pre-market.
        let mut d = day(&[-400, 0, 1], &[10.0, 10.0, 10.0]);
        let r = validate_day(&mut d, &dc(), &ValidationConfig::default()).unwrap();
        assert_eq!(r.counts[&Problem::OutsideSession], 1);
        assert_eq!(d.len(), 2);
    }

    fn lookahead() -> ValidationConfig {
        ValidationConfig {
            lookahead_outliers: true,
            ..ValidationConfig::default()
        }
    }

    #[test]
    fn by_default_a_spike_is_kept_as_the_vendor_sent_it() {
        let mins: Vec<i64> = (0..200).collect();
        let mut closes: Vec<f64> = (0..200)
            .map(|i| 100.0 + 0.05 * ((i * 7919) % 13) as f64)
            .collect();
        closes[50] = 150.0;
        let mut d = day(&mins, &closes);
        let before = d.clone();
        let r = validate_day(&mut d, &dc(), &ValidationConfig::default()).unwrap();
        assert_eq!(r.counts.get(&Problem::Outlier), None, "{r:?}");
        assert_eq!(d, before);
    }

    /// Feeds `closes` one bar a minute apart from 09:30 (bar `i` halted when `halted(i)`);
    /// returns the indices flagged.
    fn flagged(closes: &[f64], halted: impl Fn(usize) -> bool) -> Vec<usize> {
        let mut pc = PrintCheck::default();
        (0..closes.len())
            .filter(|&i| pc.check(34_200 + 60 * i as u32, closes[i], halted(i)))
            .collect()
    }

    /// A quiet minute series: ±1 cent around $100 (σ per √s ≈ 1e-4 / √60, so the band is
    /// the 0.3 % floor: 30 cents).
    fn quiet(n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| 100.0 + if i % 2 == 0 { 0.01 } else { -0.01 })
            .collect()
    }

    #[test]
    fn print_check_flags_a_spike_once_and_not_the_bar_that_comes_back() {
        let mut c = quiet(100);
        c[60] = 103.0; // +3 %: far outside the band
        assert_eq!(flagged(&c, |_| false), vec![60]);
        // A move inside the band (20 cents < 30) is not suspect.
        let mut c = quiet(100);
        c[60] = 100.2;
        assert_eq!(flagged(&c, |_| false), Vec::<usize>::new());
        // Two bad prints in a row, far from each other: both flagged.
        let mut c = quiet(100);
        c[60] = 103.0;
        c[61] = 97.0;
        assert_eq!(flagged(&c, |_| false), vec![60, 61]);
    }

    #[test]
    fn print_check_flags_one_bar_of_a_jump_that_holds() {
        let mut c = quiet(100);
        for x in c.iter_mut().skip(60) {
            *x += 5.0; // news: a new level from bar 60 on
        }
        assert_eq!(flagged(&c, |_| false), vec![60]);
    }

    #[test]
    fn print_check_waits_for_its_warm_up_and_never_flags_at_a_halt() {
        let mut c = quiet(100);
        c[20] = 103.0; // within the first 30 returns: not judged
        assert_eq!(flagged(&c, |_| false), Vec::<usize>::new());
        // A halted bar, and the reopening bar after it, are not judged.
        let mut c = quiet(100);
        for x in c.iter_mut().skip(60) {
            *x += 8.0;
        }
        assert_eq!(flagged(&c, |i| i == 59), Vec::<usize>::new());
        assert_eq!(flagged(&c, |i| i == 60), Vec::<usize>::new());
    }

    #[test]
    fn print_check_scales_with_the_time_between_bars_and_ticks() {
        // A volatile minute series: ±0.2 % alternating (σ per bar ≈ 0.2 %).
        let mut c: Vec<f64> = (0..100)
            .map(|i| if i % 2 == 0 { 100.0 } else { 100.2 })
            .collect();
        // +5 % a minute after the last bar: 25 σ, suspect.
        c.push(105.0);
        assert_eq!(flagged(&c, |_| false), vec![100]);
        // The same +5 % two hours later: 25 σ / √120 ≈ 2.3 σ, not suspect.
        let mut pc = PrintCheck::default();
        for (i, &x) in c[..100].iter().enumerate() {
            pc.check(34_200 + 60 * i as u32, x, false);
        }
        assert!(!pc.check(34_200 + 60 * 99 + 7200, 105.0, false));
        // A $2 stock moving one and two cents (0.5 %, 1 %) on a dead-quiet tape: ticks,
        // never suspect; three cents more than the band is.
        let mut c = vec![2.0; 60];
        c.extend([2.01, 2.0, 2.02, 2.0]);
        assert_eq!(flagged(&c, |_| false), Vec::<usize>::new());
        c.push(2.05);
        assert_eq!(flagged(&c, |_| false), vec![64]);
    }

    #[test]
    fn print_check_restarts_its_level_each_day_and_resumes_bit_for_bit() {
        let mut pc = PrintCheck::default();
        for (i, &x) in quiet(100).iter().enumerate() {
            pc.check(34_200 + 60 * i as u32, x, false);
        }
        // An overnight gap of 5 % is not a bad print.
        pc.begin_day();
        assert!(!pc.check(34_200, 105.0, false));
        assert!(pc.check(34_260, 110.0, false));
        // A checkpoint taken here resumes to the same verdicts.
        let mut resumed = PrintCheck::from_bits(&pc.to_bits());
        assert_eq!(resumed, pc);
        for i in 0..50u32 {
            let x = 105.0 + if i == 30 { 4.0 } else { 0.01 * (i % 3) as f64 };
            let t = 34_320 + 60 * i;
            assert_eq!(pc.check(t, x, false), resumed.check(t, x, false), "bar {i}");
        }
    }

    #[test]
    fn spike_is_an_outlier_but_a_jump_is_not() {
        let mins: Vec<i64> = (0..200).collect();
        let mut closes: Vec<f64> = (0..200)
            .map(|i| 100.0 + 0.05 * ((i * 7919) % 13) as f64)
            .collect();
        closes[50] = 150.0; // spike that reverts
        for c in closes.iter_mut().skip(120) {
            *c += 30.0; // a permanent jump (news): kept
        }
        let mut d = day(&mins, &closes);
        let r = validate_day(&mut d, &dc(), &lookahead()).unwrap();
        assert_eq!(r.counts.get(&Problem::Outlier), Some(&1), "{r:?}");
        assert_eq!(d.len(), 199);
        assert!(d.close.iter().all(|p| p.dollars() < 149.0));
    }

    #[test]
    fn a_pullback_after_a_jump_is_not_a_spike() {
        let mins: Vec<i64> = (0..200).collect();
        let mut closes: Vec<f64> = (0..200)
            .map(|i| 100.0 + 0.05 * ((i * 7919) % 13) as f64)
            .collect();
        // News at bar 80: +5 %, then a -1.5 % pullback that does not revert the jump.
        for c in closes.iter_mut().skip(80) {
            *c *= 1.05;
        }
        for c in closes.iter_mut().skip(81) {
            *c *= 0.985;
        }
        let mut d = day(&mins, &closes);
        let r = validate_day(&mut d, &dc(), &lookahead()).unwrap();
        assert_eq!(r.counts.get(&Problem::Outlier), None, "{r:?}");
        assert_eq!(d.len(), 200);
    }

    #[test]
    fn bars_sharing_a_slot_are_folded() {
        // 09:30:00 and 09:30:30 in one 1-minute slot (misaligned input), then 09:31:00.
        let mut d = RawDay::new("T", date(), BarSize::M1, "test");
        let p = Price::from_dollars;
        d.push(
            clock::utc_ns(date(), 34_200),
            p(10.0),
            p(10.5),
            p(9.8),
            p(10.2),
            100,
        );
        d.push(
            clock::utc_ns(date(), 34_230),
            p(10.2),
            p(11.0),
            p(10.1),
            p(10.9),
            50,
        );
        d.push(
            clock::utc_ns(date(), 34_260),
            p(10.9),
            p(10.9),
            p(10.9),
            p(10.9),
            7,
        );
        let r = validate_day(&mut d, &dc(), &ValidationConfig::default()).unwrap();
        assert_eq!(r.counts[&Problem::Duplicate], 1);
        assert_eq!(d.len(), 2);
        assert_eq!(d.ts_ns[0], clock::utc_ns(date(), 34_200));
        assert_eq!(
            (d.open[0], d.high[0], d.low[0], d.close[0]),
            (p(10.0), p(11.0), p(9.8), p(10.9))
        );
        assert_eq!(d.volume, vec![150, 7]);
    }

    #[test]
    fn gaps_are_reported_not_removed() {
        // Bars 09:30..09:40 and 10:30..16:00: one 50-minute gap.
        let mins: Vec<i64> = (0..10).chain(60..390).collect();
        let closes = vec![10.0; mins.len()];
        let mut d = day(&mins, &closes);
        let r = validate_day(&mut d, &dc(), &ValidationConfig::default()).unwrap();
        assert_eq!(r.counts[&Problem::Gap], 1);
        assert!(
            r.examples[0].contains("09:40:00–10:30:00"),
            "{:?}",
            r.examples
        );
        assert_eq!(d.len(), mins.len());
    }
}
