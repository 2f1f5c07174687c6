//! Overfitting diagnostics against independent truth: the normal CDF and quantile against
//! 50-digit values, the deflated Sharpe ratio against the published example of Bailey &
//! López de Prado (2014), PSR's defining properties, and PBO on cases whose answer is
//! known by construction or by hand.
//!
//! Reference values marked "mpmath" were computed with Python's mpmath 1.3 at 50–60
//! significant digits from the exact f64 inputs: `Φ(x) = erfc(−x/√2)/2`, `Φ⁻¹` by
//! 250-step bisection on that `Φ`, and the DSR formulas evaluated term by term.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use sim_train::overfit::{
    DeflatedSharpe, OverfitError, Pbo, Performance, expected_max_sharpe, kurtosis, normal_cdf,
    normal_inv_cdf, psr, sharpe_ratio, skewness,
};

fn assert_rel(actual: f64, expected: f64, tol: f64, what: &str) {
    let err = (actual - expected).abs() / expected.abs().max(f64::MIN_POSITIVE);
    assert!(
        err <= tol,
        "{what}: got {actual:e}, expected {expected:e} (relative error {err:e} > {tol:e})"
    );
}

// ---------------------------------------------------------------------------------------
// Φ and Φ⁻¹
// ---------------------------------------------------------------------------------------

#[test]
fn normal_cdf_matches_high_precision_values() {
    // (x, Φ(x)) from mpmath, rounded to the nearest f64.
    let table = [
        (0.0, 0.5),
        (1.96, 0.975_002_104_851_779_5), // the textbook 0.9750021048517795
        (-1.96, 0.024_997_895_148_220_435),
        (1.0, 0.841_344_746_068_542_9),
        (-1.0, 0.158_655_253_931_457_05),
        (0.5, 0.691_462_461_274_013_1),
        (-3.0, 0.001_349_898_031_630_094_6),
        (3.0, 0.998_650_101_968_369_9),
        (-5.0, 2.866_515_718_791_939e-7),
        (-8.0, 6.220_960_574_271_784e-16),
        (-10.0, 7.619_853_024_160_525e-24),
        (-20.0, 2.753_624_118_606_233_7e-89),
        (-37.5, 4.605_353_009_581_955e-308),
        (6.0, 0.999_999_999_013_412_3),
    ];
    for (x, expected) in table {
        let x: f64 = x;
        // One rounding of x/√2 inside erfc(−x/√2) costs up to ~x²·2⁻⁵³ relative.
        let tol = 2e-16 * (x * x).max(5.0);
        assert_rel(normal_cdf(x), expected, tol, &format!("Φ({x})"));
    }
    assert_eq!(normal_cdf(f64::NEG_INFINITY), 0.0);
    assert_eq!(normal_cdf(f64::INFINITY), 1.0);
    assert!(normal_cdf(f64::NAN).is_nan());
}

#[test]
fn normal_inv_cdf_matches_high_precision_values() {
    // (p, Φ⁻¹(p)) from mpmath for the exact f64 p. Published decimal values differ in the
    // last digit where the f64 is not the decimal: Φ⁻¹(0.975) = 1.959963984540054 for the
    // decimal 0.975 (checked separately below).
    let table = [
        (0.975, 1.959_963_984_540_053_8),
        (0.025, -1.959_963_984_540_054_3),
        (0.99, 2.326_347_874_040_840_8),
        (0.01, -2.326_347_874_040_841),
        (0.9, 1.281_551_565_544_600_6),
        (0.3, -0.524_400_512_708_040_8),
        (0.6, 0.253_347_103_135_799_7),
        (0.02425, -1.972_961_051_311_885), // Acklam's region boundary
        (0.97575, 1.972_961_051_311_885),
        (0.999999, 4.753_424_308_817_087),
        (1e-5, -4.264_890_793_922_825),
        (1e-10, -6.361_340_902_404_057),
        (1e-300, -37.047_096_299_361_2),
        (2.225_073_858_507_201_4e-308, -37.519_379_347_144_5), // smallest normal f64
        (0.500_000_000_001, 2.506_572_823_701_860_3e-12),
        (0.499_999_999, -2.506_628_342_884_532_8e-9),
    ];
    for (p, expected) in table {
        assert_rel(normal_inv_cdf(p), expected, 2e-15, &format!("Φ⁻¹({p})"));
    }
    // Published / textbook values.
    assert!((normal_inv_cdf(0.975) - 1.959_963_984_540_054).abs() < 1e-15);
    assert!((normal_inv_cdf(1e-10) + 6.361_340_902_404_056).abs() < 1e-14);
    assert_eq!(normal_inv_cdf(0.5), 0.0);
    // Below the normal range the Halley step would overflow; Acklam alone is ~1e-9.
    assert_rel(
        normal_inv_cdf(5e-324),
        -38.467_405_617_144_344,
        1e-8,
        "Φ⁻¹(5e-324)",
    );
}

#[test]
fn normal_inv_cdf_edges_follow_ieee_conventions() {
    assert_eq!(normal_inv_cdf(0.0), f64::NEG_INFINITY);
    assert_eq!(normal_inv_cdf(1.0), f64::INFINITY);
    for p in [-0.1, 1.1, f64::NAN, f64::INFINITY] {
        assert!(normal_inv_cdf(p).is_nan(), "Φ⁻¹({p}) should be NaN");
    }
}

#[test]
fn normal_inv_cdf_round_trips_and_is_symmetric() {
    // p → x → p over 300 orders of magnitude and the whole central range.
    let mut ps: Vec<f64> = (1..=300).map(|k| 10f64.powi(-k)).collect();
    ps.extend((1..1000).map(|k| k as f64 / 1000.0));
    for &p in &ps {
        let x = normal_inv_cdf(p);
        // Φ's own relative error grows like x²·2⁻⁵³ in the far tail.
        let tol = 4e-16 * (x * x).max(10.0);
        assert_rel(normal_cdf(x), p, tol, &format!("Φ(Φ⁻¹({p}))"));
        if p >= 0.5 {
            // 1 − p is exact here, so the symmetry must hold exactly.
            assert_eq!(
                normal_inv_cdf(p),
                -normal_inv_cdf(1.0 - p),
                "symmetry at {p}"
            );
        }
    }
    // x → p → x over the lower half, where p keeps x's information.
    for k in 0..=600 {
        let x = -30.0 + k as f64 * 0.05;
        let back = normal_inv_cdf(normal_cdf(x));
        assert!(
            (back - x).abs() <= 1e-14 * x.abs().max(1.0),
            "Φ⁻¹(Φ({x})) = {back}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Sample statistics
// ---------------------------------------------------------------------------------------

#[test]
fn moments_are_the_biased_sample_moments() {
    // [1, 2, 3, 4, 10]: mean 4, m2 = 10, m3 = 36, m4 = 278.8 by hand; skew 36/10^1.5,
    // kurtosis 278.8/100 = 2.788 (mpmath agrees to every digit).
    let x = [1.0, 2.0, 3.0, 4.0, 10.0];
    assert_rel(skewness(&x), 1.138_419_957_660_616_7, 1e-14, "skewness");
    assert_rel(kurtosis(&x), 2.788, 1e-14, "kurtosis");
    assert!(skewness(&[1.0]).is_nan() && kurtosis(&[3.0; 4]).is_nan());
}

#[test]
fn sharpe_is_metrics_sharpe_per_period() {
    // [0.01, 0.03]: mean 0.02, std(ddof=1) = 0.02/√2 → Sharpe √2.
    assert_rel(sharpe_ratio(&[0.01, 0.03]), 2f64.sqrt(), 1e-14, "Sharpe");
    let r = [0.01, -0.02, 0.015, 0.003, -0.007];
    let annual = sim_train::metrics::ReturnMetrics::from_returns(&r, 252.0, 0.0).sharpe;
    assert_rel(
        sharpe_ratio(&r) * 252f64.sqrt(),
        annual,
        1e-14,
        "annualised",
    );
}

// ---------------------------------------------------------------------------------------
// PSR, expected maximum Sharpe, DSR
// ---------------------------------------------------------------------------------------

#[test]
fn psr_is_one_half_at_the_benchmark_and_monotone() {
    for (sr, skew, kurt) in [(0.1, 0.0, 3.0), (0.3, -2.0, 9.0), (-0.05, 1.0, 4.0)] {
        assert_eq!(psr(sr, sr, 500, skew, kurt).unwrap(), 0.5);
    }
    // Rises with SR̂ and with n; falls with negative skew and with fat tails (SR̂ > 0).
    let base = psr(0.1, 0.05, 250, 0.0, 3.0).unwrap();
    assert!(psr(0.12, 0.05, 250, 0.0, 3.0).unwrap() > base);
    assert!(psr(0.1, 0.05, 500, 0.0, 3.0).unwrap() > base);
    assert!(psr(0.1, 0.05, 250, -1.0, 3.0).unwrap() < base);
    assert!(psr(0.1, 0.05, 250, 0.0, 8.0).unwrap() < base);
    // Normal returns, SR̂ = 0.1 over 253 days against 0: Φ(0.1·√252 / √(1 + 0.005)),
    // 0.94334588280401695561 by mpmath.
    assert_rel(
        psr(0.1, 0.0, 253, 0.0, 3.0).unwrap(),
        0.943_345_882_804_017,
        1e-14,
        "PSR",
    );
}

#[test]
fn expected_max_sharpe_approximates_the_maximum_of_normals() {
    // For V = 1 the formula is an approximation of E[max of N standard normals]; for
    // N = 100 that expectation is 2.50759 (Tippett's tables; mpmath quadrature gives
    // 2.50759363644), and the formula's 2.530602893201682 (mpmath) is 0.9% above it.
    let z = expected_max_sharpe(100, 1.0).unwrap();
    assert_rel(z, 2.530_602_893_201_682, 1e-14, "SR0(100, 1)");
    assert!((z / 2.507_593_636_44 - 1.0).abs() < 0.02);
    // Scales with √V and grows with N.
    assert_rel(
        expected_max_sharpe(100, 4.0).unwrap(),
        2.0 * z,
        1e-15,
        "√V scaling",
    );
    assert!(expected_max_sharpe(1000, 1.0).unwrap() > z);
}

#[test]
fn dsr_reproduces_the_published_example() {
    // Bailey & López de Prado (2014), "The Deflated Sharpe Ratio", numerical example:
    // best annualised SR 2.5 after N = 100 trials whose annualised SRs have variance 1/2,
    // T = 1250 daily returns (5 years of 250 days), skewness −3, kurtosis 10. The paper
    // works per day with 250 days a year and reports SR0 ≈ 0.1132 and DSR ≈ 0.9004.
    let year = 250.0_f64;
    let d =
        DeflatedSharpe::from_moments(2.5 / year.sqrt(), 1250, -3.0, 10.0, 100, 0.5 / year).unwrap();
    assert!(
        (d.sr0 - 0.1132).abs() < 5e-5,
        "SR0 {} vs published 0.1132",
        d.sr0
    );
    assert!(
        (d.dsr - 0.9004).abs() < 5e-5,
        "DSR {} vs published 0.9004",
        d.dsr
    );
    // The same numbers to full precision (mpmath, 40 digits): SR0 =
    // 0.11317200186513202887..., DSR = 0.90039683444939096155...
    assert_rel(d.sr0, 0.113_172_001_865_132_03, 1e-14, "SR0");
    assert_rel(d.dsr, 0.900_396_834_449_391, 1e-13, "DSR");
    // The report carries its inputs.
    assert_eq!(
        (d.n_obs, d.trials, d.skew, d.kurtosis),
        (1250, 100, -3.0, 10.0)
    );
    let json = serde_json::to_value(&d).unwrap();
    for key in [
        "sr_hat",
        "n_obs",
        "skew",
        "kurtosis",
        "trials",
        "sr_variance",
        "sr0",
        "dsr",
    ] {
        assert!(json.get(key).is_some(), "DeflatedSharpe JSON lacks {key}");
    }
}

#[test]
fn dsr_from_returns_uses_sample_moments_and_trial_variance() {
    // mpmath on the exact f64 inputs: SR̂ = mean/std(ddof=1), biased skew / kurtosis,
    // V = var(trials, ddof=1), then the formulas.
    let returns = [
        0.012, -0.007, 0.003, 0.021, -0.015, 0.004, 0.009, -0.002, 0.017, -0.031, 0.006, 0.011,
    ];
    let trials = [0.21, 0.05, -0.12, 0.33, 0.0, 0.17, -0.04, 0.09];
    let d = DeflatedSharpe::from_returns(&returns, &trials).unwrap();
    assert_rel(d.sr_hat, 0.160_992_067_677_175_05, 1e-13, "SR̂");
    assert_rel(d.skew, -0.984_758_099_547_829, 1e-12, "skew");
    assert_rel(d.kurtosis, 3.409_511_039_397_141, 1e-12, "kurtosis");
    assert_rel(d.sr_variance, 0.021_283_928_571_428_57, 1e-13, "V");
    assert_rel(d.sr0, 0.212_855_746_129_309_7, 1e-13, "SR0");
    assert_rel(d.dsr, 0.436_935_231_416_911_76, 1e-12, "DSR");
    assert_eq!((d.n_obs, d.trials), (12, 8));
}

#[test]
fn degenerate_dsr_inputs_are_errors() {
    use OverfitError::*;
    assert!(matches!(
        psr(0.1, 0.0, 1, 0.0, 3.0),
        Err(TooFew { got: 1, .. })
    ));
    assert!(matches!(
        psr(f64::NAN, 0.0, 10, 0.0, 3.0),
        Err(NotFinite { .. })
    ));
    assert!(matches!(
        psr(0.1, 0.0, 10, 0.0, f64::INFINITY),
        Err(NotFinite { .. })
    ));
    // Skewness 10 with kurtosis 1 is no distribution (γ4 ≥ 1 + γ3²): 1 − 10·0.5 < 0.
    assert!(matches!(psr(0.5, 0.0, 10, 10.0, 1.0), Err(Undefined(_))));
    assert!(matches!(
        expected_max_sharpe(1, 1.0),
        Err(TooFew { need: 2, .. })
    ));
    assert!(matches!(expected_max_sharpe(0, 1.0), Err(TooFew { .. })));
    assert!(matches!(expected_max_sharpe(10, 0.0), Err(Undefined(_))));
    assert!(matches!(expected_max_sharpe(10, -1.0), Err(Undefined(_))));
    assert!(matches!(
        expected_max_sharpe(10, f64::NAN),
        Err(NotFinite { .. })
    ));

    let trials = [0.1, 0.2, 0.3];
    let err = DeflatedSharpe::from_returns(&[0.01, 0.01, 0.01], &trials).unwrap_err();
    assert!(err.to_string().contains("all equal"), "{err}");
    assert!(matches!(
        DeflatedSharpe::from_returns(&[0.01], &trials),
        Err(TooFew { .. })
    ));
    let err = DeflatedSharpe::from_returns(&[0.01, f64::NAN, 0.02], &trials).unwrap_err();
    assert!(err.to_string().contains("returns[1]"), "{err}");
    let r = [0.01, -0.02, 0.03];
    assert!(matches!(
        DeflatedSharpe::from_returns(&r, &[0.1]),
        Err(TooFew { got: 1, .. })
    ));
    assert!(matches!(
        DeflatedSharpe::from_returns(&r, &[0.1, 0.1]),
        Err(Undefined(_))
    ));
    let err = DeflatedSharpe::from_returns(&r, &[0.1, f64::INFINITY]).unwrap_err();
    assert!(err.to_string().contains("trial_sharpes[1]"), "{err}");
}

// ---------------------------------------------------------------------------------------
// PBO
// ---------------------------------------------------------------------------------------

/// `configs` series of `t` i.i.d. N(mean_n, 1%) returns, config n drawing `means[n]`.
fn gaussian_configs(seed: u64, t: usize, means: &[f64]) -> Vec<Vec<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    means
        .iter()
        .map(|&mean| {
            let dist = Normal::new(mean, 0.01).unwrap();
            (0..t).map(|_| dist.sample(&mut rng)).collect()
        })
        .collect()
}

#[test]
fn pbo_of_pure_noise_is_about_one_half() {
    // No config has an edge, so the IS winner's identity is independent of the OOS half
    // and the OOS performances are exchangeable: its OOS rank is uniform on 1..=N and
    // P(λ ≤ 0) = P(rank ≤ N/2) = 1/2 exactly in expectation (λ = 0 cannot occur for even
    // N). One data set's PBO varies a lot around that, because its 12 870 combinations
    // reuse the same 1000 rows: over 40 seeds its standard deviation was 0.21 (values
    // 0.15–0.94). So we average 64 independent data sets (standard error ≈ 0.21/8 ≈ 0.026)
    // and accept [0.35, 0.65], more than 5 standard errors either side of 0.5.
    let pbos: Vec<f64> = (0..64)
        .map(|seed| {
            let configs = gaussian_configs(seed, 1000, &[0.0; 20]);
            let pbo = Pbo::from_returns(&configs, 16, Performance::Sharpe).unwrap();
            assert_eq!(pbo.combinations, 12_870);
            assert_eq!(pbo.logits.len(), 12_870);
            assert!(pbo.logits.iter().all(|l| l.is_finite() && *l != 0.0));
            pbo.pbo
        })
        .collect();
    let mean = pbos.iter().sum::<f64>() / pbos.len() as f64;
    assert!((0.35..=0.65).contains(&mean), "mean PBO {mean} of {pbos:?}");
}

#[test]
fn pbo_of_a_truly_better_config_is_about_zero() {
    // Config 7 earns 0.3% a day at 1% volatility (per-period Sharpe 0.3), the other 19
    // nothing. On a 500-day half the Sharpe estimate's standard error is ~0.045, so config
    // 7 is both the IS winner and the OOS best in essentially every split.
    let mut means = [0.0; 20];
    means[7] = 0.003;
    let configs = gaussian_configs(42, 1000, &means);
    let pbo = Pbo::from_returns(&configs, 16, Performance::Sharpe).unwrap();
    assert!(pbo.pbo <= 0.05, "PBO {}", pbo.pbo);
    let picked_7 = pbo.selected.iter().filter(|&&n| n == 7).count();
    assert!(picked_7 as f64 >= 0.95 * pbo.combinations as f64);
    assert!(pbo.oos_loss_probability <= 0.05);
}

#[test]
fn pbo_matches_a_hand_computed_case() {
    // T = 4, N = 3, S = 4 (one row per block), mean return as the measure:
    //   A = [-2,  1, 1, -2]
    //   B = [-1,  1, 0,  2]
    //   C = [ 1, -3, 1, -3]
    // IS blocks | IS means (A, B, C) | pick | OOS means (A, B, C) | rank of pick | λ
    //   {0,1}   | -0.5,  0.0, -1.0   |  B   | -0.5,  1.0, -1.0    | 3            | ln 3
    //   {0,2}   | -0.5, -0.5,  1.0   |  C   | -0.5,  1.5, -3.0    | 1            | −ln 3
    //   {0,3}   | -2.0,  0.5, -1.0   |  B   |  1.0,  0.5, -1.0    | 2            | 0
    //   {1,2}   |  1.0,  0.5, -1.0   |  A   | -2.0,  0.5, -1.0    | 1            | −ln 3
    //   {1,3}   | -0.5,  1.5, -3.0   |  B   | -0.5, -0.5,  1.0    | 1.5 (tie A)  | ln 0.6
    //   {2,3}   | -0.5,  1.0, -1.0   |  B   | -0.5,  0.0, -1.0    | 3            | ln 3
    // with ω̄ = rank/4: rank 3 → ln(0.75/0.25) = ln 3, rank 2 → ln 1 = 0, rank 1.5 →
    // ln(0.375/0.625) = ln 0.6. λ ≤ 0 in 4 of 6 splits (λ = 0 counts): PBO = 2/3. The
    // pick's OOS mean is below 0 in 3 of 6 (−3, −2, −0.5): probability of loss 1/2.
    let configs = vec![
        vec![-2.0, 1.0, 1.0, -2.0],
        vec![-1.0, 1.0, 0.0, 2.0],
        vec![1.0, -3.0, 1.0, -3.0],
    ];
    let pbo = Pbo::from_returns(&configs, 4, Performance::MeanReturn).unwrap();
    let ln3 = 3f64.ln();
    let expected = [ln3, -ln3, 0.0, -ln3, 0.6f64.ln(), ln3];
    assert_eq!(pbo.combinations, 6);
    assert_eq!(pbo.selected, vec![1, 2, 1, 0, 1, 1]);
    assert_eq!(pbo.oos_performance, vec![1.0, -3.0, 0.5, -2.0, -0.5, 0.0]);
    assert_eq!(pbo.is_performance, vec![0.0, 1.0, 0.5, 1.0, 1.5, 1.0]);
    for (got, want) in pbo.logits.iter().zip(expected) {
        assert!((got - want).abs() < 1e-15, "logits {:?}", pbo.logits);
    }
    assert_eq!(pbo.pbo, 4.0 / 6.0);
    assert_eq!(pbo.oos_loss_probability, 0.5);
    assert_eq!((pbo.configs, pbo.observations, pbo.partitions), (3, 4, 4));
}

#[test]
fn pbo_with_sharpe_matches_a_hand_computed_case() {
    // T = 4, N = 2, S = 2 (blocks = rows 0..2 and 2..4), Sharpe of two returns (a, b) is
    // mean / std = ((a+b)/2) / (|a−b|/√2):
    //   A = [1, 3 | 1, -1]: block Sharpe √2, 0
    //   B = [0, 1 | 1,  2]: block Sharpe 1/√2, 3/√2
    // IS block 0: A (√2 > 1/√2) wins, OOS block 1: A 0 < B 3/√2 → rank 1 → λ = ln(1/2).
    // IS block 1: B (3/√2 > 0) wins, OOS block 0: B 1/√2 < A √2 → rank 1 → λ = ln(1/2).
    // Each config is best in one half only: PBO = 1.
    let configs = [vec![1.0, 3.0, 1.0, -1.0], vec![0.0, 1.0, 1.0, 2.0]];
    let pbo = Pbo::from_returns(&configs, 2, Performance::Sharpe).unwrap();
    assert_eq!(pbo.selected, vec![0, 1]);
    assert_rel(pbo.is_performance[0], 2f64.sqrt(), 1e-15, "IS Sharpe of A");
    assert_rel(
        pbo.oos_performance[1],
        0.5f64.sqrt(),
        1e-15,
        "OOS Sharpe of B",
    );
    assert_eq!(pbo.oos_performance[0], 0.0);
    for l in &pbo.logits {
        assert!((l - 0.5f64.ln()).abs() < 1e-15);
    }
    assert_eq!(pbo.pbo, 1.0);
    let json = serde_json::to_value(&pbo).unwrap();
    assert_eq!(json["measure"], "sharpe");
    for key in [
        "configs",
        "observations",
        "partitions",
        "combinations",
        "pbo",
        "logits",
    ] {
        assert!(json.get(key).is_some(), "Pbo JSON lacks {key}");
    }
}

#[test]
fn pbo_performance_is_the_measure_of_the_joined_halves() {
    // Pbo merges per-block moments; check it against `Performance::evaluate` (Sharpe via
    // `ReturnMetrics`) on the rows of each half joined in time order, for every
    // combination of a 6-block split of 203 rows (blocks of 33 or 34 rows).
    let configs = gaussian_configs(7, 203, &[0.001, 0.0, -0.002, 0.0005]);
    let (t, s) = (203, 6);
    let masks = half_masks(s);
    for measure in [Performance::Sharpe, Performance::MeanReturn] {
        let pbo = Pbo::from_returns(&configs, s, measure).unwrap();
        assert_eq!(pbo.combinations, 20);
        for (c, &mask) in masks.iter().enumerate() {
            let half = |inside: bool| -> Vec<f64> {
                (0..s)
                    .filter(|b| (mask & (1 << b) != 0) == inside)
                    .flat_map(|b| configs[pbo.selected[c]][b * t / s..(b + 1) * t / s].to_vec())
                    .collect()
            };
            let is = measure.evaluate(&half(true));
            let oos = measure.evaluate(&half(false));
            assert_rel(pbo.is_performance[c], is, 1e-12, "IS performance");
            assert_rel(pbo.oos_performance[c], oos, 1e-12, "OOS performance");
            // And the pick is the IS best of all configs.
            for config in &configs {
                let other: Vec<f64> = (0..s)
                    .filter(|b| mask & (1 << b) != 0)
                    .flat_map(|b| config[b * t / s..(b + 1) * t / s].to_vec())
                    .collect();
                assert!(measure.evaluate(&other) <= is * (1.0 + 1e-12));
            }
        }
    }
}

/// The in-sample block sets of CSCV as bit masks, in lexicographic order, written
/// independently of the library by filtering all 2^s subsets.
fn half_masks(s: usize) -> Vec<u32> {
    let mut sets: Vec<Vec<usize>> = (0u32..1 << s)
        .filter(|m| m.count_ones() as usize == s / 2)
        .map(|m| (0..s).filter(|b| m & (1 << b) != 0).collect())
        .collect();
    sets.sort();
    sets.iter()
        .map(|set| set.iter().fold(0, |m, b| m | (1 << b)))
        .collect()
}

#[test]
fn pbo_uses_every_row_when_partitions_do_not_divide_observations() {
    // T = 5, S = 2: blocks are rows 0..2 and 2..5. Config 0 is 1 on rows 0..2 and 0
    // after; config 1 the reverse. With the mean: IS block 0 picks config 0 (1 > 0),
    // whose OOS mean over 3 rows is 0 < 1 → overfit, and symmetrically: PBO = 1.
    let configs = [vec![1.0, 1.0, 0.0, 0.0, 0.0], vec![0.0, 0.0, 1.0, 1.0, 1.0]];
    let pbo = Pbo::from_returns(&configs, 2, Performance::MeanReturn).unwrap();
    assert_eq!(pbo.selected, vec![0, 1]);
    assert_eq!(pbo.is_performance, vec![1.0, 1.0]);
    assert_eq!(pbo.pbo, 1.0);
}

#[test]
fn degenerate_pbo_inputs_are_errors() {
    let good = vec![vec![0.01, -0.02, 0.03, 0.0]; 2];
    let sharpe = Performance::Sharpe;
    let message = |configs: &[Vec<f64>], s: usize, measure| {
        Pbo::from_returns(configs, s, measure)
            .unwrap_err()
            .to_string()
    };
    assert!(message(&good[..1], 2, sharpe).contains("configurations"));
    let ragged = vec![vec![0.01, 0.02, 0.03, 0.0], vec![0.01, 0.02, 0.03]];
    assert!(message(&ragged, 2, sharpe).contains("config 1 has 3 returns"));
    let nan = vec![vec![0.01, 0.02, 0.03, 0.0], vec![0.01, 0.02, f64::NAN, 0.0]];
    assert!(message(&nan, 2, sharpe).contains("config 1 returns[2]"));
    assert!(message(&good, 3, sharpe).contains("even"));
    assert!(message(&good, 0, sharpe).contains("even"));
    assert!(message(&good, 6, sharpe).contains("must not exceed"));
    let long = vec![vec![0.01; 100]; 2];
    assert!(message(&long, 26, sharpe).contains("at most 24"));
    // A config that never trades has no Sharpe ratio: an error, not a NaN rank.
    let idle = vec![vec![0.01, -0.02, 0.03, 0.0], vec![0.0; 4]];
    let err = message(&idle, 2, sharpe);
    assert!(
        err.contains("config 1") && err.contains("undefined"),
        "{err}"
    );
    // T = 3, S = 2 gives a 1-row in-sample half (rows 0..1): no Sharpe ratio there.
    let three = vec![vec![0.01, -0.02, 0.03], vec![0.02, 0.01, -0.01]];
    assert!(message(&three, 2, sharpe).contains("half length 1"));
    assert!(Pbo::from_returns(&three, 2, Performance::MeanReturn).is_ok());
}
