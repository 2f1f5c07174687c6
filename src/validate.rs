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
    /// spikes (reopening moves are real). Fix: drop the bar. This cleans vendor errors
    /// offline with the whole day in view; it is not a causal signal.
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
}

impl DayReport {
    pub fn is_clean(&self) -> bool {
        self.counts.is_empty()
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

    // 7. Isolated spikes.
    let mut spikes = spike_rows(
        &day.close.iter().map(|p| p.dollars()).collect::<Vec<_>>(),
        cfg.outlier_z,
    );
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
        assert!(r.is_clean(), "{r:?}");
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
        let r = validate_day(&mut d, &dc(), &ValidationConfig::default()).unwrap();
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
        let r = validate_day(&mut d, &dc(), &ValidationConfig::default()).unwrap();
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
