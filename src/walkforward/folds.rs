//! Walk-forward folds over trading days: which days each fold trains on, tests on, and
//! leaves out, with an audit listing.
//!
//! Over the ordered trading days `D[0..n)` (the days with data for the universe), with
//! `train_days` L, `test_days` M, `purge_days` P, `embargo_days` E and `step_days` S
//! (0 = M + E):
//!
//! - fold k tests on `D[t_k .. t_k + M)`, with `t_0 = L + P` and `t_k = t_0 + k·S`, for
//!   every k with `t_k + M ≤ n`;
//! - it trains on `D[t_k − P − L .. t_k − P)` (rolling) or `D[0 .. t_k − P)` (anchored,
//!   whose first window also holds L days);
//! - **purge**: the P days `D[t_k − P .. t_k)` between training and test are in neither
//!   (features and labels that span several days cannot leak the test window into
//!   training);
//! - **embargo**: the E days `D[t_k + M .. t_k + M + E)` after a test window are tested by
//!   no fold (`S ≥ M + E`), so consecutive folds' out-of-sample results are not serially
//!   correlated through adjacent days; later folds may train on them (the past is
//!   always allowed to a model tested later).
//!
//! Training always ends before testing starts, so no fold ever trains on a day it tests
//! on, or on a later one.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// How the training window moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Window {
    /// The last `train_days` days before the purge.
    Rolling,
    /// Every day from the first up to the purge.
    Anchored,
}

/// The fold layout, in trading days.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FoldSpec {
    pub window: Window,
    pub train_days: usize,
    pub test_days: usize,
    /// Days between fold starts; 0 = `test_days + embargo_days` (adjacent folds).
    pub step_days: usize,
    pub purge_days: usize,
    pub embargo_days: usize,
}

impl FoldSpec {
    /// The step between test windows.
    pub fn step(&self) -> usize {
        if self.step_days == 0 {
            self.test_days + self.embargo_days
        } else {
            self.step_days
        }
    }
}

/// One fold: its days by role, each in date order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fold {
    pub index: usize,
    pub train: Vec<NaiveDate>,
    pub purged: Vec<NaiveDate>,
    pub test: Vec<NaiveDate>,
    /// Days after the test window that no fold tests on (empty past the last day).
    pub embargoed: Vec<NaiveDate>,
}

/// The folds of `spec` over `days` (strictly increasing). Errors name the setting that
/// makes the layout impossible.
pub fn make_folds(days: &[NaiveDate], spec: &FoldSpec) -> Result<Vec<Fold>, String> {
    if let Some(w) = days.windows(2).find(|w| w[0] >= w[1]) {
        return Err(format!(
            "trading days must be strictly increasing: {} is followed by {}",
            w[0], w[1]
        ));
    }
    if spec.train_days == 0 || spec.test_days == 0 {
        return Err(format!(
            "train_days = {} and test_days = {}: both must be at least 1",
            spec.train_days, spec.test_days
        ));
    }
    let step = spec.step();
    if step < spec.test_days + spec.embargo_days {
        return Err(format!(
            "step_days = {step} is shorter than test_days + embargo_days = {} + {}: test windows would overlap or fall in an embargo",
            spec.test_days, spec.embargo_days
        ));
    }
    let (n, l, m, p) = (days.len(), spec.train_days, spec.test_days, spec.purge_days);
    let first = l + p;
    if first + m > n {
        return Err(format!(
            "{n} trading day(s) hold no fold: one needs train_days + purge_days + test_days = {l} + {p} + {m} = {}",
            first + m
        ));
    }
    let mut folds = Vec::new();
    let mut t = first;
    while t + m <= n {
        let train_end = t - p;
        let train_start = match spec.window {
            Window::Rolling => train_end - l,
            Window::Anchored => 0,
        };
        let embargo_end = (t + m + spec.embargo_days).min(n);
        folds.push(Fold {
            index: folds.len(),
            train: days[train_start..train_end].to_vec(),
            purged: days[train_end..t].to_vec(),
            test: days[t..t + m].to_vec(),
            embargoed: days[t + m..embargo_end].to_vec(),
        });
        t += step;
    }
    Ok(folds)
}

/// The audit listing: one CSV row per fold and role (`train`, `purged`, `test`,
/// `embargoed`) with its first and last day and its number of days.
pub fn audit_csv(folds: &[Fold]) -> String {
    let mut s = String::from("fold,role,first,last,days\n");
    for f in folds {
        for (role, days) in [
            ("train", &f.train),
            ("purged", &f.purged),
            ("test", &f.test),
            ("embargoed", &f.embargoed),
        ] {
            let date = |d: Option<&NaiveDate>| d.map_or(String::new(), |d| d.to_string());
            let _ = writeln!(
                s,
                "{},{role},{},{},{}",
                f.index,
                date(days.first()),
                date(days.last()),
                days.len()
            );
        }
    }
    s
}
