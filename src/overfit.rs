//! Overfitting diagnostics for parameter sweeps: how much of the best backtest is luck.
//!
//! A sweep that tries many configurations and keeps the best one overstates the winner:
//! even among strategies with no edge at all, the best of N backtests has a high Sharpe
//! ratio. Two diagnostics correct for that, and both report the inputs they used so that a
//! walk-forward report can be checked by hand:
//!
//! - [`DeflatedSharpe`] (Bailey & López de Prado 2014): the probability that the selected
//!   strategy's true Sharpe ratio beats the best Sharpe ratio that N no-skill trials would be
//!   expected to show, allowing for the sample's length, skewness and kurtosis. It is the
//!   probabilistic Sharpe ratio [`psr`] against the benchmark [`expected_max_sharpe`].
//! - [`Pbo`] (Bailey, Borwein, López de Prado & Zhu 2017): the probability of backtest
//!   overfitting by combinatorially symmetric cross-validation (CSCV), the share of
//!   in-sample / out-of-sample splits on which the in-sample winner falls to the bottom half
//!   out of sample.
//!
//! Conventions used throughout:
//!
//! - Sharpe ratios are **per period** (not annualised) and excess over 0: `mean / std` with
//!   the sample standard deviation (ddof = 1), exactly [`ReturnMetrics`]'s Sharpe with one
//!   period per year and no risk-free rate (see [`sharpe_ratio`]). An annualised Sharpe
//!   `SR_a` over `P` periods a year is `SR_a / √P` per period, and a variance across
//!   annualised trials is divided by `P`.
//! - Skewness `γ3` and kurtosis `γ4` are the plain (biased, population-formula) sample
//!   moments `m3 / m2^{3/2}` and `m4 / m2²` with `m_k = (1/n) Σ (x − x̄)^k`, as in the
//!   papers; kurtosis is **not** excess kurtosis (a normal sample has `γ4 ≈ 3`). These are
//!   scipy's `skew(x)` and `kurtosis(x, fisher=False)`; pandas' `skew` / `kurt` use the
//!   bias-corrected estimators and excess kurtosis instead.
//! - Degenerate inputs (too few observations or trials, zero variance, NaN or infinite
//!   numbers) are an [`OverfitError`] naming the problem: these functions never answer NaN.
//!   The two primitives [`normal_cdf`] and [`normal_inv_cdf`] follow IEEE conventions instead
//!   (NaN in, NaN out; `Φ⁻¹(0) = −∞`).
//!
//! References:
//!
//! - D. H. Bailey, M. López de Prado (2012), "The Sharpe Ratio Efficient Frontier",
//!   *Journal of Risk* 15(2), 3–44 (the probabilistic Sharpe ratio).
//! - D. H. Bailey, M. López de Prado (2014), "The Deflated Sharpe Ratio: Correcting for
//!   Selection Bias, Backtest Overfitting and Non-Normality", *Journal of Portfolio
//!   Management* 40(5), 94–107.
//! - D. H. Bailey, J. M. Borwein, M. López de Prado, Q. J. Zhu (2017), "The Probability of
//!   Backtest Overfitting", *Journal of Computational Finance* 20(4), 39–69.
//! - P. J. Acklam (2003), "An algorithm for computing the inverse normal cumulative
//!   distribution function" (rational approximation, relative error below 1.15e-9).

use std::f64::consts::{E, FRAC_1_SQRT_2, PI};

use rayon::prelude::*;
use serde::Serialize;

use crate::metrics::ReturnMetrics;

/// The Euler–Mascheroni constant γ.
const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// Why an overfitting statistic cannot be computed from the given inputs.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum OverfitError {
    /// Fewer observations, trials, configurations or partitions than the statistic needs.
    #[error("{what}: need at least {need}, got {got}")]
    TooFew {
        what: &'static str,
        need: usize,
        got: usize,
    },
    /// An input number is NaN or infinite.
    #[error("{what} is not finite ({value})")]
    NotFinite { what: String, value: f64 },
    /// The inputs are well formed but the statistic is undefined for them (zero variance,
    /// an undefined performance measure, moments no distribution has).
    #[error("{0}")]
    Undefined(String),
    /// The inputs contradict each other or the method (ragged matrix, odd partitions).
    #[error("{0}")]
    Invalid(String),
}

impl From<OverfitError> for crate::Error {
    fn from(error: OverfitError) -> crate::Error {
        crate::Error::Data(error.to_string())
    }
}

type Result<T> = std::result::Result<T, OverfitError>;

fn finite(what: impl FnOnce() -> String, value: f64) -> Result<f64> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(OverfitError::NotFinite {
            what: what(),
            value,
        })
    }
}

fn all_finite(what: &str, values: &[f64]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(OverfitError::NotFinite {
            what: format!("{what}[{i}]"),
            value: values[i],
        }),
    }
}

// ---------------------------------------------------------------------------------------
// The standard normal distribution
// ---------------------------------------------------------------------------------------

/// Standard normal CDF `Φ(x) = ½·erfc(−x/√2)`.
///
/// `erfc` is `libm`'s port of the FreeBSD / musl implementation (accurate to about 1 ulp),
/// and the lower tail goes through `erfc` rather than `1 + erf`, so `Φ(x)` keeps its
/// relative accuracy far into the lower tail (`Φ(−37.5) ≈ 4.6e-308`); the one rounding of
/// `x/√2` costs at most about `x²·2⁻⁵³` relative (≈ 1e-14 at `x = −10`). Upper-tail values
/// are accurate in absolute terms (they are `1 − tiny`, as an f64 must be). NaN gives NaN.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x * FRAC_1_SQRT_2)
}

/// Standard normal quantile `Φ⁻¹(p)`: Acklam's rational approximation refined by one Halley
/// step on [`normal_cdf`], which brings it to full double precision (the tests check
/// `≲ 2e-15` relative against 60-digit values).
///
/// `p = 0` gives `−∞`, `p = 1` gives `+∞`, and `p` outside `[0, 1]` or NaN gives NaN. For
/// `p > ½` the result is `−Φ⁻¹(1 − p)`, where `1 − p` is exact in floating point, so both
/// tails are refined where `Φ` has relative accuracy. Near `p = ½` the Halley residual is
/// formed as `½·erf(x/√2) − (p − ½)`, which keeps small quantiles relatively accurate.
pub fn normal_inv_cdf(p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        f64::NAN
    } else if p == 0.0 {
        f64::NEG_INFINITY
    } else if p == 1.0 {
        f64::INFINITY
    } else if p > 0.5 {
        -lower_quantile(1.0 - p)
    } else {
        lower_quantile(p)
    }
}

/// Acklam's coefficients for the central region `p_low ≤ p ≤ 1 − p_low`.
const ACKLAM_A: [f64; 6] = [
    -3.969_683_028_665_376e1,
    2.209_460_984_245_205e2,
    -2.759_285_104_469_687e2,
    1.383_577_518_672_69e2,
    -3.066_479_806_614_716e1,
    2.506_628_277_459_239,
];
const ACKLAM_B: [f64; 5] = [
    -5.447_609_879_822_406e1,
    1.615_858_368_580_409e2,
    -1.556_989_798_598_866e2,
    6.680_131_188_771_972e1,
    -1.328_068_155_288_572e1,
];
/// Acklam's coefficients for the tails, `p < p_low` (and `p > 1 − p_low` by symmetry).
const ACKLAM_C: [f64; 6] = [
    -7.784_894_002_430_293e-3,
    -3.223_964_580_411_365e-1,
    -2.400_758_277_161_838,
    -2.549_732_539_343_734,
    4.374_664_141_464_968,
    2.938_163_982_698_783,
];
const ACKLAM_D: [f64; 4] = [
    7.784_695_709_041_462e-3,
    3.224_671_290_700_398e-1,
    2.445_134_137_142_996,
    3.754_408_661_907_416,
];
const ACKLAM_P_LOW: f64 = 0.02425;

/// `Φ⁻¹(p)` for `0 < p ≤ ½`.
fn lower_quantile(p: f64) -> f64 {
    let (x, residual) = if p < ACKLAM_P_LOW {
        let q = (-2.0 * p.ln()).sqrt();
        let [c0, c1, c2, c3, c4, c5] = ACKLAM_C;
        let [d0, d1, d2, d3] = ACKLAM_D;
        let x = (((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5)
            / ((((d0 * q + d1) * q + d2) * q + d3) * q + 1.0);
        (x, normal_cdf(x) - p)
    } else {
        let q = p - 0.5;
        let r = q * q;
        let [a0, a1, a2, a3, a4, a5] = ACKLAM_A;
        let [b0, b1, b2, b3, b4] = ACKLAM_B;
        let x = (((((a0 * r + a1) * r + a2) * r + a3) * r + a4) * r + a5) * q
            / (((((b0 * r + b1) * r + b2) * r + b3) * r + b4) * r + 1.0);
        // Φ(x) − p without cancelling: both terms are measured from ½.
        (x, 0.5 * libm::erf(x * FRAC_1_SQRT_2) - q)
    };
    // Halley's step for f(x) = Φ(x) − p: with u = f / f' = residual / φ(x),
    // x ← x − u / (1 + x·u/2)   (f''/f' = −x for the normal density).
    let u = residual * (2.0 * PI).sqrt() * (0.5 * x * x).exp();
    let refined = x - u / (1.0 + 0.5 * x * u);
    // exp(x²/2) overflows only for p below ~1e-308, where the approximation stands alone.
    if refined.is_finite() { refined } else { x }
}

// ---------------------------------------------------------------------------------------
// Sample statistics
// ---------------------------------------------------------------------------------------

/// Per-period Sharpe ratio `mean(r) / std(r, ddof = 1)`, no risk-free rate, no
/// annualisation: [`ReturnMetrics::from_returns`]`(returns, 1.0, 0.0).sharpe`, so it inherits
/// that function's edge cases (NaN below 2 values or for an all-zero series, ±inf for a
/// constant non-zero series; NaN values are skipped as missing days).
pub fn sharpe_ratio(returns: &[f64]) -> f64 {
    ReturnMetrics::from_returns(returns, 1.0, 0.0).sharpe
}

/// Central moments `(m2, m3, m4)`, `m_k = (1/n) Σ (x − x̄)^k`, two-pass; `None` below 2
/// values or when all values are equal (the mean of equal floats can miss them by an ulp,
/// which would leave a meaningless residue in `m2`).
fn central_moments(values: &[f64]) -> Option<(f64, f64, f64)> {
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    if values.len() < 2 || lo == hi {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let (m2, m3, m4) = values.iter().fold((0.0, 0.0, 0.0), |(m2, m3, m4), &v| {
        let d = v - mean;
        let d2 = d * d;
        (m2 + d2, m3 + d2 * d, m4 + d2 * d2)
    });
    Some((m2 / n, m3 / n, m4 / n))
}

/// Sample skewness `γ3 = m3 / m2^{3/2}` with biased central moments (see the module docs;
/// scipy's `skew(x)`). NaN below 2 values, when all values are equal, or with NaN values.
pub fn skewness(values: &[f64]) -> f64 {
    central_moments(values).map_or(f64::NAN, |(m2, m3, _)| m3 / m2.powf(1.5))
}

/// Sample kurtosis `γ4 = m4 / m2²`, **not** excess (≈ 3 for normal data), with biased
/// central moments (scipy's `kurtosis(x, fisher=False)`). NaN below 2 values, when all
/// values are equal, or with NaN values.
pub fn kurtosis(values: &[f64]) -> f64 {
    central_moments(values).map_or(f64::NAN, |(m2, _, m4)| m4 / (m2 * m2))
}

/// Sample variance with ddof = 1, two-pass.
fn sample_variance(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0)
}

// ---------------------------------------------------------------------------------------
// Probabilistic and deflated Sharpe ratios
// ---------------------------------------------------------------------------------------

/// Probabilistic Sharpe ratio (Bailey & López de Prado 2012): the probability that the true
/// Sharpe ratio exceeds `sr_benchmark`, given an estimate `sr_hat` from `n_obs` returns with
/// sample skewness `skew` (γ3) and kurtosis `kurtosis` (γ4, not excess):
///
/// `PSR = Φ( (SR̂ − SR*)·√(n − 1) / √(1 − γ3·SR̂ + (γ4 − 1)/4·SR̂²) )`.
///
/// Both Sharpe ratios are per period (see the module docs). `PSR = ½` when `SR̂ = SR*`; it
/// rises with `SR̂` and `n` and, for positive `SR̂`, falls with negative skew and fat tails.
///
/// Errors: `n_obs < 2`, a non-finite input, or a non-positive variance term, which no real
/// return distribution gives (`γ4 ≥ 1 + γ3²` makes it `≥ (1 − γ3·SR̂/2)²`).
pub fn psr(sr_hat: f64, sr_benchmark: f64, n_obs: usize, skew: f64, kurtosis: f64) -> Result<f64> {
    finite(|| "sr_hat".into(), sr_hat)?;
    finite(|| "sr_benchmark".into(), sr_benchmark)?;
    finite(|| "skew".into(), skew)?;
    finite(|| "kurtosis".into(), kurtosis)?;
    if n_obs < 2 {
        return Err(OverfitError::TooFew {
            what: "observations for a probabilistic Sharpe ratio",
            need: 2,
            got: n_obs,
        });
    }
    let variance_term = 1.0 - skew * sr_hat + (kurtosis - 1.0) / 4.0 * sr_hat * sr_hat;
    if variance_term.is_nan() || variance_term <= 0.0 {
        return Err(OverfitError::Undefined(format!(
            "PSR variance term 1 − γ3·SR̂ + (γ4 − 1)/4·SR̂² = {variance_term} is not positive \
             (SR̂ {sr_hat}, skewness {skew}, kurtosis {kurtosis}); real returns have \
             kurtosis ≥ 1 + skewness², which keeps it ≥ 0"
        )));
    }
    let z = (sr_hat - sr_benchmark) * ((n_obs - 1) as f64).sqrt() / variance_term.sqrt();
    Ok(normal_cdf(z))
}

/// Expected maximum of `trials` independent Sharpe ratio estimates with true Sharpe 0 and
/// cross-trial variance `sr_variance` (Bailey & López de Prado 2014, eq. for `SR0`):
///
/// `SR0 = √V · ( (1 − γ)·Φ⁻¹(1 − 1/N) + γ·Φ⁻¹(1 − 1/(N·e)) )`,
///
/// with γ the Euler–Mascheroni constant. `sr_variance` is the variance of the trials'
/// per-period Sharpe ratios, in the same units as the Sharpe ratio it will be compared with.
/// Errors: fewer than 2 trials (`Φ⁻¹(0) = −∞`), or a variance that is not finite and positive.
pub fn expected_max_sharpe(trials: usize, sr_variance: f64) -> Result<f64> {
    if trials < 2 {
        return Err(OverfitError::TooFew {
            what: "trials for an expected maximum Sharpe ratio",
            need: 2,
            got: trials,
        });
    }
    finite(
        || "variance of the trials' Sharpe ratios".into(),
        sr_variance,
    )?;
    if sr_variance <= 0.0 {
        return Err(OverfitError::Undefined(format!(
            "variance of the trials' Sharpe ratios is {sr_variance}: the trials do not differ, \
             so the expected maximum under the null is undefined"
        )));
    }
    let n = trials as f64;
    let z = (1.0 - EULER_GAMMA) * normal_inv_cdf(1.0 - 1.0 / n)
        + EULER_GAMMA * normal_inv_cdf(1.0 - 1.0 / (n * E));
    Ok(sr_variance.sqrt() * z)
}

/// Deflated Sharpe ratio of the strategy selected from a sweep, with the inputs it was
/// computed from (Bailey & López de Prado 2014):
///
/// `DSR = PSR(SR0) = Φ( (SR̂ − SR0)·√(n − 1) / √(1 − γ3·SR̂ + (γ4 − 1)/4·SR̂²) )`,
/// `SR0 = ` [`expected_max_sharpe`]`(trials, sr_variance)`.
///
/// Read it as the probability that the selected strategy's true Sharpe ratio is positive
/// once selection among `trials` attempts is accounted for: a test at the 95% level asks
/// for `dsr ≥ 0.95`. All Sharpe ratios are per period.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeflatedSharpe {
    /// Per-period Sharpe ratio of the selected strategy, SR̂.
    pub sr_hat: f64,
    /// Number of returns SR̂ was estimated from, n.
    pub n_obs: usize,
    /// Sample skewness of those returns, γ3.
    pub skew: f64,
    /// Sample kurtosis of those returns, γ4 (not excess).
    pub kurtosis: f64,
    /// Number of independent trials in the sweep, N.
    pub trials: usize,
    /// Variance of the trials' per-period Sharpe ratios, V[SR̂_n].
    pub sr_variance: f64,
    /// Expected maximum per-period Sharpe ratio of N no-skill trials.
    pub sr0: f64,
    /// The deflated Sharpe ratio, a probability in [0, 1].
    pub dsr: f64,
}

impl DeflatedSharpe {
    /// From the selected strategy's summary statistics and the sweep's size and spread.
    /// Errors as [`psr`] and [`expected_max_sharpe`].
    pub fn from_moments(
        sr_hat: f64,
        n_obs: usize,
        skew: f64,
        kurtosis: f64,
        trials: usize,
        sr_variance: f64,
    ) -> Result<DeflatedSharpe> {
        let sr0 = expected_max_sharpe(trials, sr_variance)?;
        let dsr = psr(sr_hat, sr0, n_obs, skew, kurtosis)?;
        Ok(DeflatedSharpe {
            sr_hat,
            n_obs,
            skew,
            kurtosis,
            trials,
            sr_variance,
            sr0,
            dsr,
        })
    }

    /// From the selected strategy's per-period `returns` and the per-period Sharpe ratios
    /// of every trial in the sweep, the selected one included (`trials = len`,
    /// `sr_variance` = their sample variance with ddof = 1). SR̂ is [`sharpe_ratio`], γ3
    /// and γ4 are [`skewness`] and [`kurtosis`] of `returns`.
    ///
    /// Errors: fewer than 2 returns or trials, a non-finite return or trial Sharpe ratio,
    /// returns that are all equal (no spread: SR̂, γ3 and γ4 are undefined), or trials that
    /// all have the same Sharpe ratio.
    pub fn from_returns(returns: &[f64], trial_sharpes: &[f64]) -> Result<DeflatedSharpe> {
        if returns.len() < 2 {
            return Err(OverfitError::TooFew {
                what: "returns of the selected strategy",
                need: 2,
                got: returns.len(),
            });
        }
        all_finite("returns", returns)?;
        if trial_sharpes.len() < 2 {
            return Err(OverfitError::TooFew {
                what: "trial Sharpe ratios",
                need: 2,
                got: trial_sharpes.len(),
            });
        }
        all_finite("trial_sharpes", trial_sharpes)?;
        let (skew, kurt) = match central_moments(returns) {
            Some((m2, m3, m4)) => (m3 / m2.powf(1.5), m4 / (m2 * m2)),
            None => {
                return Err(OverfitError::Undefined(
                    "the selected strategy's returns are all equal: its Sharpe ratio, \
                     skewness and kurtosis are undefined"
                        .into(),
                ));
            }
        };
        let sr_hat = finite(
            || "Sharpe ratio of the returns".into(),
            sharpe_ratio(returns),
        )?;
        DeflatedSharpe::from_moments(
            sr_hat,
            returns.len(),
            skew,
            kurt,
            trial_sharpes.len(),
            sample_variance(trial_sharpes),
        )
    }
}

// ---------------------------------------------------------------------------------------
// Probability of backtest overfitting (CSCV)
// ---------------------------------------------------------------------------------------

/// Most partitions [`Pbo::from_returns`] accepts: `C(24, 12) = 2 704 156` combinations,
/// each ranking every configuration twice. The paper uses 16 (12 870 combinations).
pub const MAX_PARTITIONS: usize = 24;

/// Performance measure by which CSCV ranks configurations, in sample and out of sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Performance {
    /// Per-period Sharpe ratio, [`sharpe_ratio`] (the paper's choice).
    #[default]
    Sharpe,
    /// Arithmetic mean return per period.
    MeanReturn,
}

impl Performance {
    /// The measure of one return series; NaN where it is undefined (a Sharpe ratio of fewer
    /// than 2 returns or of all zeros). This is the definition [`Pbo`] ranks by.
    pub fn evaluate(self, returns: &[f64]) -> f64 {
        match self {
            Performance::Sharpe => sharpe_ratio(returns),
            Performance::MeanReturn => returns.iter().sum::<f64>() / returns.len() as f64,
        }
    }
}

/// Probability of backtest overfitting by combinatorially symmetric cross-validation
/// (Bailey, Borwein, López de Prado & Zhu 2017), with its inputs and per-combination detail.
///
/// The method, for a `T × N` matrix of per-period returns (T observations, N configs):
///
/// 1. Split the rows, in time order, into `S` (even) contiguous blocks. Block `s` holds rows
///    `⌊s·T/S⌋ .. ⌊(s+1)·T/S⌋`, so every row is used and block sizes differ by at most one
///    (the paper assumes `S` divides `T`; this is the same split when it does).
/// 2. For each of the `C(S, S/2)` ways to choose `S/2` blocks, the chosen blocks (joined
///    in time order) are in sample (IS) and the others out of sample (OOS). Combinations
///    are enumerated in lexicographic order of their IS block sets, so combination 0 has
///    IS blocks `{0, …, S/2 − 1}`; every per-combination vector below follows that order.
/// 3. Measure every config IS and OOS ([`Performance::evaluate`] of the half's rows; it is
///    computed from per-block moments, which agrees with evaluating the joined rows up to
///    rounding); select `n*`, the best IS (the lowest index among exact ties).
/// 4. Rank `n*`'s OOS performance among all N OOS performances, 1 = worst, N = best, with
///    exact ties given their average rank; relative rank `ω̄ = rank / (N + 1)`, which lies
///    strictly inside (0, 1), and logit `λ = ln(ω̄ / (1 − ω̄))`.
/// 5. `PBO = #{λ ≤ 0} / C(S, S/2)`: how often the IS winner does no better than the OOS
///    median. `λ = 0` (possible for odd N) counts as overfit.
///
/// With no skill anywhere the IS winner's OOS rank is uniform and PBO ≈ ½; a config that
/// is truly better wins both halves and PBO → 0.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Pbo {
    /// Performance measure used to rank configs.
    pub measure: Performance,
    /// Number of configurations, N.
    pub configs: usize,
    /// Number of observations per configuration, T.
    pub observations: usize,
    /// Number of blocks the observations are split into, S.
    pub partitions: usize,
    /// Number of IS / OOS splits, `C(S, S/2)`.
    pub combinations: usize,
    /// Probability of backtest overfitting: the share of combinations with `λ ≤ 0`.
    pub pbo: f64,
    /// Share of combinations in which the IS winner's OOS performance is below 0 (the
    /// paper's probability of loss).
    pub oos_loss_probability: f64,
    /// Logit `λ` of each combination.
    pub logits: Vec<f64>,
    /// Index of the IS-best config, per combination.
    pub selected: Vec<usize>,
    /// IS performance of the selected config, per combination (±inf, a constant half with
    /// a non-zero mean under Sharpe, serializes as `null` in JSON).
    pub is_performance: Vec<f64>,
    /// OOS performance of the selected config, per combination.
    pub oos_performance: Vec<f64>,
}

/// What one IS / OOS split yields.
struct Split {
    selected: usize,
    is_performance: f64,
    oos_performance: f64,
    logit: f64,
}

impl Pbo {
    /// Runs CSCV over `configs`, one per-period return series per configuration (the
    /// columns of the `T × N` matrix: `configs[n][t]`), split into `partitions` blocks.
    ///
    /// Errors: fewer than 2 configs; series of different lengths; a NaN or infinite return;
    /// `partitions` odd, below 2, above [`MAX_PARTITIONS`] or above T; a performance that
    /// is undefined (NaN) for some config on some half, e.g. the Sharpe ratio of an
    /// all-zero half (a config that never trades) or of a half with a single row.
    pub fn from_returns<R: AsRef<[f64]>>(
        configs: &[R],
        partitions: usize,
        measure: Performance,
    ) -> Result<Pbo> {
        let n_configs = configs.len();
        if n_configs < 2 {
            return Err(OverfitError::TooFew {
                what: "configurations for PBO",
                need: 2,
                got: n_configs,
            });
        }
        let observations = configs[0].as_ref().len();
        for (n, config) in configs.iter().enumerate() {
            let series = config.as_ref();
            if series.len() != observations {
                return Err(OverfitError::Invalid(format!(
                    "config {n} has {} returns but config 0 has {observations}: every config \
                     needs one return per observation",
                    series.len()
                )));
            }
            all_finite(&format!("config {n} returns"), series)?;
        }
        if partitions < 2 || !partitions.is_multiple_of(2) {
            return Err(OverfitError::Invalid(format!(
                "partitions must be even and at least 2 (half the blocks go in sample), got \
                 {partitions}"
            )));
        }
        if partitions > MAX_PARTITIONS {
            return Err(OverfitError::Invalid(format!(
                "partitions must be at most {MAX_PARTITIONS} (C(S, S/2) combinations grow \
                 fast), got {partitions}"
            )));
        }
        if partitions > observations {
            return Err(OverfitError::Invalid(format!(
                "partitions ({partitions}) must not exceed the number of observations \
                 ({observations}): every block needs a row"
            )));
        }

        // Each half's measure comes from per-block moments merged exactly (see
        // `Moments`), so a combination costs N·S merges instead of N·T reads.
        let blocks: Vec<Vec<Moments>> = configs
            .iter()
            .map(|config| {
                let series = config.as_ref();
                (0..partitions)
                    .map(|s| {
                        let rows =
                            s * observations / partitions..(s + 1) * observations / partitions;
                        Moments::of(&series[rows])
                    })
                    .collect()
            })
            .collect();
        let masks = half_subsets(partitions);
        let splits = masks
            .par_iter()
            .enumerate()
            .map(|(combination, &mask)| {
                let mut is_perf = Vec::with_capacity(n_configs);
                let mut oos_perf = Vec::with_capacity(n_configs);
                for (n, config_blocks) in blocks.iter().enumerate() {
                    let (mut is_half, mut oos_half) = (Moments::EMPTY, Moments::EMPTY);
                    for (s, block) in config_blocks.iter().enumerate() {
                        if mask & (1 << s) != 0 {
                            is_half = is_half.merge(block);
                        } else {
                            oos_half = oos_half.merge(block);
                        }
                    }
                    for (half, moments, out) in [
                        ("in-sample", is_half, &mut is_perf),
                        ("out-of-sample", oos_half, &mut oos_perf),
                    ] {
                        let value = moments.measure(measure);
                        if value.is_nan() {
                            return Err(OverfitError::Undefined(format!(
                                "{measure:?} of config {n} is undefined on the {half} half \
                                 of combination {combination} (half length {}, in-sample \
                                 blocks {:?})",
                                moments.n,
                                blocks_of(mask, partitions)
                            )));
                        }
                        out.push(value);
                    }
                }
                Ok(split(&is_perf, &oos_perf))
            })
            .collect::<Result<Vec<Split>>>()?;

        let combinations = splits.len();
        let share = |count: usize| count as f64 / combinations as f64;
        Ok(Pbo {
            measure,
            configs: n_configs,
            observations,
            partitions,
            combinations,
            pbo: share(splits.iter().filter(|s| s.logit <= 0.0).count()),
            oos_loss_probability: share(splits.iter().filter(|s| s.oos_performance < 0.0).count()),
            logits: splits.iter().map(|s| s.logit).collect(),
            selected: splits.iter().map(|s| s.selected).collect(),
            is_performance: splits.iter().map(|s| s.is_performance).collect(),
            oos_performance: splits.iter().map(|s| s.oos_performance).collect(),
        })
    }
}

/// Count, mean, sum of squared deviations and range of a run of returns: enough to give
/// the mean and the ddof = 1 standard deviation of any union of runs without rereading
/// them. Merging uses the pairwise update of Chan, Golub & LeVeque (1979), which is exact
/// in real arithmetic and as stable as the two-pass formula in floating point; the range
/// reproduces [`ReturnMetrics`]'s rule that equal values have a deviation of exactly 0.
#[derive(Clone, Copy, Debug)]
struct Moments {
    n: usize,
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
}

impl Moments {
    const EMPTY: Moments = Moments {
        n: 0,
        mean: 0.0,
        m2: 0.0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
    };

    /// Two-pass moments of one block (non-empty, finite).
    fn of(values: &[f64]) -> Moments {
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let (m2, min, max) = values.iter().fold(
            (0.0, f64::INFINITY, f64::NEG_INFINITY),
            |(m2, min, max), &v| (m2 + (v - mean) * (v - mean), min.min(v), max.max(v)),
        );
        Moments {
            n,
            mean,
            m2,
            min,
            max,
        }
    }

    /// Moments of the union of two disjoint runs.
    fn merge(self, other: &Moments) -> Moments {
        if self.n == 0 {
            return *other;
        }
        let n = self.n + other.n;
        let delta = other.mean - self.mean;
        let weight = other.n as f64 / n as f64;
        Moments {
            n,
            mean: self.mean + delta * weight,
            m2: self.m2 + other.m2 + delta * delta * self.n as f64 * weight,
            min: self.min.min(other.min),
            max: self.max.max(other.max),
        }
    }

    /// `measure` of the run, with [`Performance::evaluate`]'s definitions (NaN where
    /// undefined).
    fn measure(self, measure: Performance) -> f64 {
        match measure {
            Performance::MeanReturn => self.mean,
            Performance::Sharpe if self.n < 2 => f64::NAN,
            Performance::Sharpe => {
                let std = if self.min == self.max {
                    0.0
                } else {
                    (self.m2 / (self.n - 1) as f64).sqrt()
                };
                self.mean / std
            }
        }
    }
}

/// Steps 3 and 4 of CSCV for one combination (performances are not NaN).
fn split(is_perf: &[f64], oos_perf: &[f64]) -> Split {
    // First index among exact ties: `>` keeps the earlier one.
    let selected = (1..is_perf.len()).fold(
        0,
        |best, n| {
            if is_perf[n] > is_perf[best] { n } else { best }
        },
    );
    let target = oos_perf[selected];
    let below = oos_perf.iter().filter(|&&v| v < target).count();
    let tied_others = oos_perf.iter().filter(|&&v| v == target).count() - 1;
    let rank = 1.0 + below as f64 + tied_others as f64 / 2.0;
    let omega = rank / (oos_perf.len() as f64 + 1.0);
    Split {
        selected,
        is_performance: is_perf[selected],
        oos_performance: target,
        logit: (omega / (1.0 - omega)).ln(),
    }
}

/// Every subset of `{0, …, s − 1}` with `s/2` members as a bit mask, in lexicographic order
/// of the sorted member lists (`{0, 1, …}` first).
fn half_subsets(s: usize) -> Vec<u32> {
    let k = s / 2;
    let mut members: Vec<usize> = (0..k).collect();
    let mut masks = Vec::new();
    loop {
        masks.push(members.iter().fold(0u32, |mask, &m| mask | (1 << m)));
        // Advance the rightmost member that can still move right, reset the ones after it.
        let Some(i) = (0..k).rev().find(|&i| members[i] < s - k + i) else {
            return masks;
        };
        members[i] += 1;
        for j in i + 1..k {
            members[j] = members[j - 1] + 1;
        }
    }
}

/// The block indices set in `mask`, for error messages.
fn blocks_of(mask: u32, partitions: usize) -> Vec<usize> {
    (0..partitions).filter(|s| mask & (1 << s) != 0).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_subsets_are_lexicographic_and_complete() {
        // {0,1} {0,2} {0,3} {1,2} {1,3} {2,3}
        assert_eq!(
            half_subsets(4),
            vec![0b0011, 0b0101, 0b1001, 0b0110, 0b1010, 0b1100]
        );
        assert_eq!(half_subsets(2), vec![0b01, 0b10]);
        assert_eq!(half_subsets(16).len(), 12_870);
        let mut masks = half_subsets(10);
        assert!(masks.iter().all(|m| m.count_ones() == 5));
        masks.dedup();
        assert_eq!(masks.len(), 252);
    }

    #[test]
    fn ties_take_the_first_is_config_and_the_average_oos_rank() {
        // IS tie between 0 and 1 → 0; OOS: 0 ties with 2 for ranks 2 and 3 → 2.5 of 3.
        let s = split(&[1.0, 1.0, 0.0], &[0.5, 0.1, 0.5]);
        assert_eq!(s.selected, 0);
        let omega: f64 = 2.5 / 4.0;
        assert_eq!(s.logit, (omega / (1.0 - omega)).ln());
    }

    #[test]
    fn central_moments_reject_constant_series() {
        assert!(central_moments(&[0.0013; 7]).is_none());
        assert!(central_moments(&[1.0]).is_none());
        assert!(skewness(&[2.0; 3]).is_nan());
    }
}
