//! Account metrics against independent truth: small cases computed by hand (the arithmetic is
//! in the comments) and reference numbers from the real empyrical library.
//!
//! The empyrical numbers came from empyrical-reloaded 0.7.1 (numpy 2.4.6, bottleneck 1.6.0,
//! pandas 3.1.1), in a throwaway venv, with this snippet per series `r`, `ann`, `rf`:
//!
//! ```python
//! import numpy as np, empyrical as ep
//! r = np.array(r, dtype=float)
//! with np.errstate(all="ignore"):
//!     ep.cum_returns_final(r)                              # total_return
//!     ep.annual_return(r, annualization=ann)               # cagr
//!     ep.annual_volatility(r, annualization=ann)           # annual_volatility
//!     ep.sharpe_ratio(r, risk_free=rf, annualization=ann)  # sharpe
//!     ep.sortino_ratio(r, required_return=rf, annualization=ann)  # sortino
//!     ep.max_drawdown(r)                                   # max_drawdown
//!     ep.calmar_ratio(r, annualization=ann)                # calmar
//! # each printed with repr(float(v))
//! ```

use sim_train::metrics::{ReturnMetrics, RoundTrip, TradeStats, daily_returns};

/// Equal within 1e-12 relative, or both NaN, or the same infinity.
fn assert_close(what: &str, actual: f64, expected: f64) {
    let ok = if expected.is_nan() {
        actual.is_nan()
    } else if expected.is_infinite() {
        actual == expected
    } else {
        actual == expected || (actual - expected).abs() <= 1e-12 * expected.abs()
    };
    assert!(ok, "{what}: got {actual:e}, expected {expected:e}");
}

/// The seven metrics in declaration order:
/// total_return, cagr, annual_volatility, sharpe, sortino, max_drawdown, calmar.
fn assert_metrics(name: &str, m: &ReturnMetrics, expected: [f64; 7]) {
    let actual = [
        m.total_return,
        m.cagr,
        m.annual_volatility,
        m.sharpe,
        m.sortino,
        m.max_drawdown,
        m.calmar,
    ];
    let names = [
        "total_return",
        "cagr",
        "annual_volatility",
        "sharpe",
        "sortino",
        "max_drawdown",
        "calmar",
    ];
    for i in 0..7 {
        assert_close(&format!("{name}.{}", names[i]), actual[i], expected[i]);
    }
}

#[test]
fn daily_returns_start_from_initial_equity() {
    // 100 → 98: -2%; 98 → 99.96: +2%; 99.96 → 100.9596: +1%.
    let r = daily_returns(100.0, &[98.0, 99.96, 100.9596]);
    assert_eq!(r.len(), 3);
    assert_close("r0", r[0], -0.02);
    assert_close("r1", r[1], 0.02);
    assert_close("r2", r[2], 0.01);
    assert!(daily_returns(100.0, &[]).is_empty());
}

#[test]
fn daily_returns_after_a_blown_account_are_not_finite() {
    // 100 → 0 is -100%; 0 → 0 is 0/0 - 1 = NaN; no panic.
    let r = daily_returns(100.0, &[0.0, 0.0]);
    assert_eq!(r[0], -1.0);
    assert!(r[1].is_nan());
}

#[test]
fn hand_computed_two_periods() {
    // r = [0.10, -0.10], 2 periods a year, rf = 0.05 per period.
    // growth = 1.1 * 0.9 = 0.99 → total_return = -0.01; one year → cagr = 0.99^1 - 1 = -0.01.
    // std(r, ddof=1) = sqrt((0.1² + 0.1²) / 1) = sqrt(0.02); × sqrt(2) → vol = sqrt(0.04) = 0.2.
    // excess = [0.05, -0.15], mean -0.05, std sqrt(0.02) → sharpe = -0.05 / sqrt(0.02) × sqrt(2)
    //   = -0.05 / 0.1 = -0.5.
    // sortino: mean × 2 = -0.1; downside = sqrt((0 + 0.15²) / 2) × sqrt(2) = 0.15 → -2/3.
    // wealth 1 → 1.1 → 0.99, peak 1.1: drawdown (0.99 - 1.1) / 1.1 = -0.1.
    // calmar = -0.01 / 0.1 = -0.1.
    let m = ReturnMetrics::from_returns(&[0.10, -0.10], 2.0, 0.05);
    assert_eq!(m.days, 2);
    assert_metrics(
        "two_periods",
        &m,
        [-0.01, -0.01, 0.2, -0.5, -2.0 / 3.0, -0.1, -0.1],
    );
}

#[test]
fn hand_computed_first_day_loss_is_a_drawdown() {
    // Wealth 1 → 0.5 → 1.0. Measured from the first close the peak would be 0.5 and the
    // drawdown 0; anchored on the starting wealth 1 it is (0.5 - 1) / 1 = -0.5.
    // growth = 0.5 × 2 = 1 → total_return = cagr = 0, calmar = 0 / 0.5 = 0.
    let m = ReturnMetrics::from_returns(&[-0.5, 1.0], 252.0, 0.0);
    assert_close("max_drawdown", m.max_drawdown, -0.5);
    assert_close("total_return", m.total_return, 0.0);
    assert_close("calmar", m.calmar, 0.0);
}

#[test]
fn empyrical_first_day_loss() {
    let m = ReturnMetrics::from_returns(&[-0.02, 0.01, 0.015, -0.005, 0.03], 252.0, 0.0);
    assert_eq!(m.days, 5);
    assert_metrics(
        "first_day_loss",
        &m,
        [
            0.02961247794999977,
            3.3527064365220465,
            0.3043189116699782,
            4.9684720272649505,
            10.330992777303925,
            -0.02,
            167.6353218261023,
        ],
    );
}

#[test]
fn empyrical_all_positive() {
    // Nothing below the hurdle: downside risk 0 and a positive mean → sortino +inf; no
    // drawdown → calmar NaN.
    let m = ReturnMetrics::from_returns(&[0.01, 0.02, 0.005, 0.015], 252.0, 0.0);
    assert_metrics(
        "all_positive",
        &m,
        [
            0.0508812649999999,
            21.79711666063816,
            0.10246950765959599,
            30.740852297878796,
            f64::INFINITY,
            0.0,
            f64::NAN,
        ],
    );
}

#[test]
fn empyrical_long_series_with_risk_free() {
    let r = [
        0.0123, -0.0045, 0.0067, 0.0011, -0.0189, 0.0052, 0.0098, -0.0031, 0.0144, -0.0076, 0.0035,
        0.0009, -0.0112, 0.0201, -0.0023, 0.0058, -0.0147, 0.0086, 0.0017, -0.0064, 0.0129,
        -0.0008, 0.0041, -0.0095, 0.0073, 0.0026, -0.0039, 0.0110, -0.0052, 0.0019,
    ];
    let m = ReturnMetrics::from_returns(&r, 252.0, 0.0001);
    assert_eq!(m.days, 30);
    assert_metrics(
        "long_30",
        &m,
        [
            0.041443107356844866,
            0.4064963842679472,
            0.14231536423222801,
            2.290125186119532,
            3.585802737293366,
            -0.018900000000000024,
            21.507745199362258,
        ],
    );
}

#[test]
fn empyrical_weekly_crash() {
    let m = ReturnMetrics::from_returns(&[0.05, -0.10, -0.20, 0.03, 0.10, -0.05], 52.0, 0.001);
    assert_metrics(
        "crash_weekly",
        &m,
        [
            -0.18627939999999987,
            -0.8324596729047484,
            0.7970361765106191,
            -1.9137567130405035,
            -2.246314981000274,
            -0.2799999999999999,
            -2.9730702603741026,
        ],
    );
}

#[test]
fn empyrical_total_loss() {
    let m = ReturnMetrics::from_returns(&[0.1, -1.0, 0.05], 252.0, 0.0);
    assert_metrics(
        "total_loss",
        &m,
        [
            -1.0,
            -1.0,
            9.860527369263776,
            -7.240992020625667,
            -7.790378681424928,
            -1.0,
            -1.0,
        ],
    );
}

#[test]
fn empyrical_missing_day_is_skipped() {
    // empyrical's nan-aware reductions skip the NaN but its length checks and the CAGR
    // horizon (4 days) count it.
    let m = ReturnMetrics::from_returns(&[0.01, f64::NAN, -0.02, 0.015], 252.0, 0.0);
    assert_eq!(m.days, 4);
    assert_metrics(
        "with_nan",
        &m,
        [
            0.004646999999999846,
            0.33921399350658654,
            0.3004995840263344,
            1.3976724838434154,
            2.2912878474779195,
            -0.019999999999999962,
            16.96069967532936,
        ],
    );
}

#[test]
fn empyrical_constant_series_has_infinite_sharpe() {
    // empyrical forces the deviation of equal values to 0 for Sharpe, giving +inf. Its
    // annual_volatility keeps float residue (3.718038940849074e-18 for 0.0013 × 7; exactly
    // 0.0 for 0.001 × 3); we report exactly 0 in both, the same rule Sharpe uses.
    let m = ReturnMetrics::from_returns(&[0.0013; 7], 252.0, 0.0);
    assert_metrics(
        "constant_odd",
        &m,
        [
            0.009135566995042144,
            0.38733861223680677,
            0.0,
            f64::INFINITY,
            f64::INFINITY,
            0.0,
            f64::NAN,
        ],
    );
    let m = ReturnMetrics::from_returns(&[0.001; 3], 252.0, 0.0);
    assert_metrics(
        "constant",
        &m,
        [
            0.0030030009999995055,
            0.2864340443761344,
            0.0,
            f64::INFINITY,
            f64::INFINITY,
            0.0,
            f64::NAN,
        ],
    );
}

#[test]
fn empyrical_degenerate_series() {
    let nan = f64::NAN;
    // All zero: zero mean over zero risk → NaN Sharpe and Sortino.
    let m = ReturnMetrics::from_returns(&[0.0; 3], 252.0, 0.0);
    assert_metrics("zeros", &m, [0.0, 0.0, 0.0, nan, nan, 0.0, nan]);
    // One day: growth and drawdown are defined, anything needing a deviation is not.
    let m = ReturnMetrics::from_returns(&[0.01], 252.0, 0.0);
    assert_metrics(
        "single",
        &m,
        [
            0.010000000000000009,
            11.274002099240244,
            nan,
            nan,
            nan,
            0.0,
            nan,
        ],
    );
    let m = ReturnMetrics::from_returns(&[], 252.0, 0.0);
    assert_eq!(m.days, 0);
    assert_metrics("empty", &m, [nan; 7]);
}

#[test]
fn undefined_metrics_serialize_as_null() {
    let json = serde_json::to_value(ReturnMetrics::from_returns(&[], 252.0, 0.0)).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "days": 0, "total_return": null, "cagr": null, "annual_volatility": null,
            "sharpe": null, "sortino": null, "max_drawdown": null, "calmar": null,
        })
    );
    let json =
        serde_json::to_value(ReturnMetrics::from_returns(&[0.01, 0.02], 252.0, 0.0)).unwrap();
    assert_eq!(
        json["sortino"],
        serde_json::Value::Null,
        "+inf becomes null"
    );
    assert_eq!(json["max_drawdown"], serde_json::json!(0.0));
}

fn trip(
    symbol: &str,
    entry_s: f64,
    exit_s: f64,
    side: i8,
    gross_pnl: f64,
    costs: f64,
) -> RoundTrip {
    RoundTrip {
        symbol: symbol.to_string(),
        entry_ns: (entry_s * 1e9) as i64,
        exit_ns: (exit_s * 1e9) as i64,
        side,
        max_shares: 100,
        gross_pnl,
        costs,
    }
}

#[test]
fn trade_stats_by_hand() {
    let trips = [
        trip("AAPL", 0.0, 60.0, 1, 100.0, 10.0),   // net +90, 60 s
        trip("AAPL", 60.0, 180.0, -1, -50.0, 5.0), // net -55, 120 s
        trip("MSFT", 0.0, 30.0, 1, 20.0, 2.0),     // net +18, 30 s
        trip("MSFT", 100.0, 130.5, 1, 3.0, 3.0),   // net 0 (break-even, not a win), 30.5 s
    ];
    assert_close("net", trips[1].net_pnl(), -55.0);
    assert_close("holding", trips[3].holding_secs(), 30.5);
    let s = TradeStats::from_round_trips(&trips);
    assert_eq!(s.trades, 4);
    // 2 winners of 4.
    assert_close("win_rate", s.win_rate, 0.5);
    // (90 + 18) / |-55| = 108 / 55.
    assert_close("profit_factor", s.profit_factor, 108.0 / 55.0);
    // (60 + 120 + 30 + 30.5) / 4 = 240.5 / 4 = 60.125.
    assert_close("avg_holding_secs", s.avg_holding_secs, 60.125);
    // (90 - 55 + 18 + 0) / 4 = 53 / 4 = 13.25.
    assert_close("avg_trade_pnl", s.avg_trade_pnl, 13.25);
}

#[test]
fn trade_stats_edge_cases() {
    let none = TradeStats::from_round_trips(&[]);
    assert_eq!(none.trades, 0);
    for v in [
        none.win_rate,
        none.profit_factor,
        none.avg_holding_secs,
        none.avg_trade_pnl,
    ] {
        assert!(v.is_nan());
    }
    let json = serde_json::to_value(&none).unwrap();
    assert_eq!(json["profit_factor"], serde_json::Value::Null);

    // Only winners: 10 / |0| = +inf, which serializes as null.
    let winners = TradeStats::from_round_trips(&[trip("A", 0.0, 1.0, 1, 10.0, 0.0)]);
    assert_eq!(winners.profit_factor, f64::INFINITY);
    assert_eq!(
        serde_json::to_value(&winners).unwrap()["profit_factor"],
        serde_json::Value::Null
    );

    // Only losers: 0 / 4 = 0, a positive zero.
    let losers = TradeStats::from_round_trips(&[trip("A", 0.0, 1.0, -1, -3.0, 1.0)]);
    assert_eq!(losers.profit_factor, 0.0);
    assert!(losers.profit_factor.is_sign_positive());
    assert_eq!(losers.win_rate, 0.0);
}

#[test]
fn holding_time_cannot_overflow() {
    // i64::MAX - i64::MIN overflows i64; the difference is taken wider.
    let t = RoundTrip {
        symbol: "X".into(),
        entry_ns: i64::MIN,
        exit_ns: i64::MAX,
        side: 1,
        max_shares: 1,
        gross_pnl: 0.0,
        costs: 0.0,
    };
    assert_close("holding", t.holding_secs(), u64::MAX as f64 / 1e9);
}
