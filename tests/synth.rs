//! Properties of the synthetic generator checked on the data it produces: determinism and
//! independence of symbol-days, bar consistency, the ground truth against the bars
//! (momentum ranges, squeezes, halts, overnight gaps), the stylized facts it promises
//! (U-shaped volume, sparse seconds, volatility clustering), the files it writes, and
//! config validation.

use chrono::NaiveDate;
use sim_train::bars::{BarSize, Price, RawDay};
use sim_train::clock::{NS_PER_SEC, ny_date_sec};
use sim_train::synth::{
    DayTruth, SPEC_FILE, SynthParams, SynthSpec, TRUTH_FILE, Universe, read_spec, read_truth,
    write_universe,
};

const PRE: i64 = 14_400;
const OPEN: i64 = 34_200;
const CLOSE: i64 = 57_600;
const END: i64 = 72_000;

fn universe(params: SynthParams) -> Universe {
    Universe::from_spec(SynthSpec::with_weekdays(params).unwrap()).unwrap()
}

/// Every (symbol, day) of a universe, generated in order.
fn all_days(u: &Universe) -> Vec<(RawDay, DayTruth)> {
    let (ns, nd) = (u.symbols().len(), u.trading_days().len());
    (0..ns)
        .flat_map(|s| (0..nd).map(move |d| (s, d)))
        .map(|(s, d)| u.generate(s, d))
        .collect()
}

/// A universe rich in momentum days and halts, 1-minute bars: 300 symbol-days.
fn momentum_rich() -> SynthParams {
    SynthParams {
        seed: 7,
        symbols: 20,
        days: 15,
        momentum_share: 0.4,
        halt_prob: 0.7,
        ..SynthParams::default()
    }
}

fn secs(raw: &RawDay, i: usize) -> i64 {
    let (date, sec) = ny_date_sec(raw.ts_ns[i]);
    assert_eq!(date, raw.date);
    sec
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[test]
fn same_seed_same_data_other_seed_other_data() {
    let p = SynthParams {
        symbols: 3,
        days: 4,
        ..momentum_rich()
    };
    let (a, b) = (universe(p.clone()), universe(p.clone()));
    let c = universe(SynthParams { seed: 8, ..p });
    for s in 0..3 {
        for d in 0..4 {
            let (ra, ta) = a.generate(s, d);
            let (rb, tb) = b.generate(s, d);
            assert_eq!(ra, rb);
            assert_eq!(ta, tb);
            let (rc, _) = c.generate(s, d);
            assert_ne!(ra.close, rc.close, "seed 8 repeats seed 7 at ({s}, {d})");
        }
    }
}

#[test]
fn a_symbol_day_does_not_depend_on_what_else_is_generated() {
    let p = momentum_rich();
    let u = universe(p.clone());
    let alone = universe(p.clone()).generate(13, 9);
    // Generated after everything else, in parallel, in another order.
    let all: Vec<(RawDay, DayTruth)> = {
        use rayon::prelude::*;
        let mut idx: Vec<(usize, usize)> =
            (0..20).flat_map(|s| (0..15).map(move |d| (s, d))).collect();
        idx.reverse();
        idx.par_iter().map(|&(s, d)| u.generate(s, d)).collect()
    };
    let (raw, truth) = &all[(19 - 13) * 15 + (14 - 9)];
    assert_eq!(raw, &alone.0);
    assert_eq!(truth, &alone.1);
    // A smaller universe (fewer symbols and days) is a prefix of the larger one.
    let small = universe(SynthParams {
        symbols: 14,
        days: 10,
        ..p
    });
    assert_eq!(small.generate(13, 9), alone);
}

#[test]
fn bars_are_consistent_and_truth_matches_them() {
    let u = universe(momentum_rich());
    let days = all_days(&u);
    assert_eq!(days.len(), 300);
    let (mut momentum, mut halts) = (0, 0);
    for (raw, truth) in &days {
        let tag = format!("{} {}", raw.symbol, raw.date);
        assert_eq!(raw.bar, Some(BarSize::M1));
        assert!(!raw.is_empty(), "{tag}");
        for i in 0..raw.len() {
            let (o, h, l, c) = (raw.open[i], raw.high[i], raw.low[i], raw.close[i]);
            assert!(l.0 > 0, "{tag}: non-positive low");
            assert!(
                l <= o && l <= c && o <= h && c <= h,
                "{tag} bar {i}: {o} {h} {l} {c}"
            );
            for p in [o, h, l, c] {
                assert_eq!(p.0 % 10_000_000, 0, "{tag}: {p} not in cents");
            }
            let sec = secs(raw, i);
            assert!(
                (PRE..END).contains(&sec) && sec % 60 == 0,
                "{tag}: bar at {sec}"
            );
            if i > 0 {
                assert!(raw.ts_ns[i] > raw.ts_ns[i - 1], "{tag}: bars not ascending");
            }
        }
        // The truth describes these bars.
        let high = raw.high.iter().max().unwrap().dollars();
        let low = raw.low.iter().min().unwrap().dollars();
        let open = raw.open[0].dollars();
        assert_eq!(truth.symbol, raw.symbol);
        assert_eq!(truth.date, raw.date);
        assert_eq!(truth.open, open);
        assert_eq!(truth.close, raw.close[raw.len() - 1].dollars());
        assert_eq!((truth.high, truth.low), (high, low));
        assert!((truth.range - (high - low) / open).abs() < 1e-9, "{tag}");
        assert_eq!(truth.bars as usize, raw.len());
        assert_eq!(truth.volume, raw.volume.iter().sum::<u64>());
        assert_eq!(truth.momentum, truth.direction != 0);
        assert_eq!(truth.momentum, truth.planned_range.is_some());
        assert_eq!(
            truth.momentum,
            !truth.squeezes.is_empty(),
            "{tag}: squeezes iff momentum"
        );
        if truth.momentum {
            momentum += 1;
            let r = (high - low) / open;
            assert!((0.10..=0.50).contains(&r), "{tag}: momentum range {r}");
        }
        // Halts: RawDay.halts == truth, and the bars inside are exactly the zero-volume
        // bars, one per slot, frozen at the last price before the halt.
        let recorded: Vec<[u32; 2]> = raw
            .halts
            .iter()
            .map(|h| {
                let (d0, s0) = ny_date_sec(h.start_ns);
                let (d1, s1) = ny_date_sec(h.end_ns);
                assert_eq!((d0, d1), (raw.date, raw.date));
                [s0 as u32, s1 as u32]
            })
            .collect();
        assert_eq!(recorded, truth.halts, "{tag}");
        for &[a, b] in &truth.halts {
            halts += 1;
            assert!(truth.momentum);
            assert!(
                a as i64 >= OPEN && (b as i64) < CLOSE,
                "{tag}: halt outside regular hours"
            );
            let inside: Vec<usize> = (0..raw.len())
                .filter(|&i| (a as i64..b as i64).contains(&secs(raw, i)))
                .collect();
            assert_eq!(
                inside.len() as u32,
                (b - a) / 60,
                "{tag}: one halt bar per minute"
            );
            let halt_price = raw.close[inside[0] - 1];
            for &i in &inside {
                assert_eq!(raw.volume[i], 0);
                assert_eq!(
                    [raw.open[i], raw.high[i], raw.low[i], raw.close[i]],
                    [halt_price; 4]
                );
            }
            // The halt follows a squeeze (the fast move that triggered it).
            assert!(
                truth.squeezes.iter().any(|s| s[1] == a),
                "{tag}: halt not after a squeeze"
            );
        }
        for i in 0..raw.len() {
            assert_eq!(
                raw.volume[i] == 0,
                raw.is_halted(raw.ts_ns[i]),
                "{tag} bar {i}"
            );
        }
    }
    // Enough of each to mean something (40 % momentum days, 70 % halt probability).
    assert!(momentum >= 80, "{momentum} momentum days");
    assert!(halts >= 20, "{halts} halts");
}

#[test]
fn the_plan_announces_what_generation_realizes() {
    let u = universe(momentum_rich());
    for s in 0..20 {
        for d in 0..15 {
            let plan = u.plan(s, d);
            let (_, truth) = u.generate(s, d);
            assert_eq!(plan.direction, truth.direction);
            assert_eq!(plan.gap_planned, truth.gap_planned);
            assert_eq!(plan.planned_range, truth.planned_range);
            assert_eq!(
                (plan.prev_close, plan.open, plan.close),
                (truth.prev_close, truth.open, truth.close)
            );
            assert_eq!(
                (&plan.squeezes, &plan.halts),
                (&truth.squeezes, &truth.halts)
            );
        }
    }
}

#[test]
fn momentum_days_range_far_more_than_normal_days() {
    let days = all_days(&universe(momentum_rich()));
    let ranges = |m: bool| -> Vec<f64> {
        days.iter()
            .filter(|d| d.1.momentum == m)
            .map(|d| d.1.range)
            .collect()
    };
    let (mom, normal) = (median(ranges(true)), median(ranges(false)));
    assert!(
        mom > 2.0 * normal,
        "median range momentum {mom} vs normal {normal}"
    );
    // Planned and realized ranges agree up to the rounding margin.
    for (_, t) in days.iter().filter(|d| d.1.momentum) {
        let planned = t.planned_range.unwrap();
        assert!(
            (t.range - planned).abs() < 0.03,
            "{} {}: {} vs {planned}",
            t.symbol,
            t.date,
            t.range
        );
    }
}

#[test]
fn squeezes_are_fast_runs_on_heavy_volume() {
    let days = all_days(&universe(momentum_rich()));
    let (mut runs, mut with_direction, mut heavier) = (0, 0, 0);
    for (raw, truth) in days.iter().filter(|d| d.1.momentum) {
        let dir = truth.direction as f64;
        for &[a, b] in &truth.squeezes {
            let (a, b) = (a as i64, b as i64);
            let within: Vec<usize> = (0..raw.len())
                .filter(|&i| (a..b).contains(&secs(raw, i)))
                .collect();
            let Some((&first, &last)) = within.first().zip(within.last()) else {
                continue;
            };
            runs += 1;
            let mv = (raw.close[last].dollars() / raw.open[first].dollars()).ln() * dir;
            if mv > 0.0 {
                with_direction += 1;
            }
            // Volume per bar in the squeeze vs. in the same session part of the day outside
            // any squeeze or halt.
            let regular = (OPEN..CLOSE).contains(&a);
            let outside: Vec<u64> = (0..raw.len())
                .filter(|&i| {
                    let s = secs(raw, i);
                    (OPEN..CLOSE).contains(&s) == regular
                        && raw.volume[i] > 0
                        && !truth
                            .squeezes
                            .iter()
                            .any(|q| (q[0] as i64..q[1] as i64).contains(&s))
                })
                .map(|i| raw.volume[i])
                .collect();
            let mean = |v: &[u64]| v.iter().sum::<u64>() as f64 / v.len().max(1) as f64;
            let inside: Vec<u64> = within.iter().map(|&i| raw.volume[i]).collect();
            if mean(&inside) > 2.0 * mean(&outside) {
                heavier += 1;
            }
        }
    }
    assert!(runs >= 100, "{runs} squeezes");
    assert!(
        with_direction as f64 > 0.9 * runs as f64,
        "{with_direction}/{runs} squeezes run the day's way"
    );
    assert!(
        heavier as f64 > 0.9 * runs as f64,
        "{heavier}/{runs} squeezes on heavy volume"
    );
}

#[test]
fn reopening_after_a_halt_gaps() {
    let days = all_days(&universe(momentum_rich()));
    let mut gaps = Vec::new();
    for (raw, truth) in &days {
        for &[_, b] in &truth.halts {
            let i = (0..raw.len())
                .find(|&i| secs(raw, i) == b as i64)
                .expect("reopening bar");
            assert!(raw.volume[i] > 0);
            gaps.push(
                (raw.open[i].dollars() / raw.close[i - 1].dollars())
                    .ln()
                    .abs(),
            );
        }
    }
    // |N(0,1)| * halt_gap (0.03) has mean 0.024; rescaling to the planned range keeps it
    // of that order.
    let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
    assert!(mean > 0.01, "mean reopening gap {mean}");
}

#[test]
fn next_day_opens_from_the_previous_close() {
    let p = SynthParams {
        days: 30,
        symbols: 10,
        ..SynthParams::default()
    };
    let u = universe(p.clone());
    let (mut planned, mut unplanned) = (0, 0);
    for s in 0..10 {
        let mut prev: Option<(RawDay, DayTruth)> = None;
        for d in 0..30 {
            let (raw, truth) = u.generate(s, d);
            let open = raw.open[0];
            assert_eq!(
                Price::from_dollars(truth.prev_close).dollars(),
                truth.prev_close
            );
            if let Some((praw, ptruth)) = &prev {
                let prev_close = praw.close[praw.len() - 1];
                assert_eq!(truth.prev_close, prev_close.dollars());
                assert_eq!(ptruth.close, truth.prev_close);
                let gap = open.dollars() / prev_close.dollars() - 1.0;
                assert!((gap - truth.gap).abs() < 1e-12);
                let cent = 0.01 / prev_close.dollars();
                if truth.gap_planned {
                    planned += 1;
                    assert!(truth.momentum);
                    assert!(
                        gap * truth.direction as f64 > 0.0,
                        "planned gap against the day"
                    );
                    assert!(
                        gap.abs() >= 0.02 - cent
                            && gap.abs() <= (p.momentum_gap_max).exp() - 1.0 + cent
                    );
                } else {
                    unplanned += 1;
                    // Normal gaps are N(0, gap_vol): 6 sigma is never reached in practice.
                    assert!(gap.abs() < 6.0 * p.gap_vol + cent, "unplanned gap {gap}");
                }
            }
            prev = Some((raw, truth));
        }
    }
    assert!(
        planned >= 5 && unplanned >= 200,
        "{planned} planned, {unplanned} unplanned gaps"
    );
}

#[test]
fn volume_is_u_shaped_over_the_regular_session() {
    let days = all_days(&universe(SynthParams {
        symbols: 20,
        days: 10,
        ..SynthParams::default()
    }));
    let mut sums = [0f64; 3]; // first 30 min, midday 12:00–14:00, last 30 min
    let mut counts = [0f64; 3];
    for (raw, _) in &days {
        for i in 0..raw.len() {
            let s = secs(raw, i);
            let k = if (OPEN..OPEN + 1800).contains(&s) {
                0
            } else if (43_200..50_400).contains(&s) {
                1
            } else if (CLOSE - 1800..CLOSE).contains(&s) {
                2
            } else {
                continue;
            };
            sums[k] += raw.volume[i] as f64;
            counts[k] += 1.0;
        }
    }
    let m: Vec<f64> = (0..3).map(|k| sums[k] / counts[k]).collect();
    assert!(
        m[0] > 1.3 * m[1] && m[2] > 1.3 * m[1],
        "open {} midday {} close {}",
        m[0],
        m[1],
        m[2]
    );
}

#[test]
fn seconds_are_sparse_and_sparser_outside_regular_hours() {
    let u = universe(SynthParams {
        bar: BarSize::S1,
        symbols: 4,
        days: 3,
        momentum_share: 0.5,
        halt_prob: 1.0,
        ..SynthParams::default()
    });
    let (mut pre, mut reg, mut halt_bars) = (0usize, 0usize, 0usize);
    for (raw, truth) in all_days(&u) {
        assert!(raw.len() < (END - PRE) as usize, "{} bars", raw.len());
        for i in 0..raw.len() {
            let s = secs(&raw, i);
            if i > 0 {
                assert!(raw.ts_ns[i] - raw.ts_ns[i - 1] >= NS_PER_SEC);
            }
            if s < OPEN {
                pre += 1;
            } else if s < CLOSE {
                reg += 1;
            }
            assert!(
                raw.low[i] <= raw.open[i].min(raw.close[i])
                    && raw.high[i] >= raw.open[i].max(raw.close[i])
            );
        }
        for &[a, b] in &truth.halts {
            let n = (0..raw.len())
                .filter(|&i| (a as i64..b as i64).contains(&secs(&raw, i)))
                .count();
            assert_eq!(n as u32, b - a, "one halt bar per second");
            halt_bars += n;
        }
        if truth.momentum {
            let r = truth.range;
            assert!((0.10..=0.50).contains(&r), "1s momentum range {r}");
        }
    }
    let pre_share = pre as f64 / (12.0 * (OPEN - PRE) as f64);
    let reg_share = reg as f64 / (12.0 * (CLOSE - OPEN) as f64);
    assert!(
        reg_share > 0.2 && reg_share < 1.0,
        "regular seconds with a bar: {reg_share}"
    );
    assert!(
        pre_share < reg_share / 3.0,
        "pre-market {pre_share} vs regular {reg_share}"
    );
    assert!(halt_bars > 0, "no halt in 12 momentum-prone 1s days");
}

/// Mean over days of the lag-1 autocorrelation of absolute 1-minute log returns between
/// 10:30 and 15:00 (where the U-shape is flat, so seasonality does not create it).
fn abs_return_acf(p: SynthParams) -> f64 {
    let days = all_days(&universe(p));
    let mut acfs = Vec::new();
    for (raw, _) in &days {
        let closes: Vec<f64> = (0..raw.len())
            .filter(|&i| (37_800..54_000).contains(&secs(raw, i)))
            .map(|i| raw.close[i].dollars().ln())
            .collect();
        let r: Vec<f64> = closes.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
        let mean = r.iter().sum::<f64>() / r.len() as f64;
        let var: f64 = r.iter().map(|x| (x - mean).powi(2)).sum();
        let cov: f64 = r.windows(2).map(|w| (w[0] - mean) * (w[1] - mean)).sum();
        acfs.push(cov / var);
    }
    acfs.iter().sum::<f64>() / acfs.len() as f64
}

#[test]
fn volatility_clusters() {
    let base = SynthParams {
        symbols: 30,
        days: 10,
        momentum_share: 0.0,
        price_min: 30.0,
        price_max: 100.0,
        ..SynthParams::default()
    };
    let garch = abs_return_acf(base.clone());
    let iid = abs_return_acf(SynthParams {
        garch_alpha: 0.0,
        garch_beta: 0.0,
        ..base
    });
    assert!(garch > 0.05, "GARCH acf {garch}");
    assert!(iid.abs() < 0.03, "i.i.d. acf {iid}");
}

#[test]
fn write_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("syn");
    let spec = SynthSpec::with_weekdays(SynthParams {
        symbols: 3,
        days: 4,
        ..momentum_rich()
    })
    .unwrap();
    write_universe(&out, &spec).unwrap();
    let back = read_spec(&out).unwrap();
    assert_eq!(back, spec);
    let truth = read_truth(&out).unwrap();
    let u = Universe::from_spec(back).unwrap();
    let expected: Vec<DayTruth> = all_days(&u).into_iter().map(|d| d.1).collect();
    assert_eq!(truth, expected);
    // Only the two files, no temporary leftovers.
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, [SPEC_FILE, TRUTH_FILE]);

    // Bad files are named in the error.
    let missing = read_spec(&dir.path().join("nope")).unwrap_err().to_string();
    assert!(
        missing.contains("nope") && missing.contains(SPEC_FILE),
        "{missing}"
    );
    std::fs::write(out.join(SPEC_FILE), b"{\"generator\": 1}").unwrap();
    let bad = read_spec(&out).unwrap_err().to_string();
    assert!(
        bad.contains(SPEC_FILE) && bad.contains("synth spec"),
        "{bad}"
    );
    let mut edited = spec.clone();
    edited.params.momentum_share = 2.0;
    std::fs::write(out.join(SPEC_FILE), serde_json::to_vec(&edited).unwrap()).unwrap();
    let bad = read_spec(&out).unwrap_err().to_string();
    assert!(
        bad.contains(SPEC_FILE) && bad.contains("synth.momentum_share = 2"),
        "{bad}"
    );
    edited = spec.clone();
    edited.generator += 1;
    std::fs::write(out.join(SPEC_FILE), serde_json::to_vec(&edited).unwrap()).unwrap();
    let bad = read_spec(&out).unwrap_err().to_string();
    assert!(bad.contains("generator version"), "{bad}");
}

#[test]
fn params_read_from_toml_and_calendar_days() {
    let p: SynthParams = toml::from_str("seed = 5\nstart = 2024-03-01\nbar = \"1s\"").unwrap();
    assert_eq!((p.seed, p.bar), (5, BarSize::S1));
    assert_eq!(p.start, NaiveDate::from_ymd_opt(2024, 3, 1).unwrap());
    let q: SynthParams = toml::from_str("start = \"2024-03-01\"").unwrap();
    assert_eq!(q.start, p.start);
    let err = toml::from_str::<SynthParams>("start = \"March\"")
        .unwrap_err()
        .to_string();
    assert!(err.contains("March"), "{err}");
    let err = toml::from_str::<SynthParams>("momentum = 0.2")
        .unwrap_err()
        .to_string();
    assert!(err.contains("momentum"), "{err}");

    // The caller's calendar decides the days: a holiday (2024-01-15, MLK day) left out of
    // the list is skipped; days before `start` are ignored.
    let d = |day| NaiveDate::from_ymd_opt(2024, 1, day).unwrap();
    let cal = vec![d(10), d(11), d(12), d(16), d(17)];
    let params = SynthParams {
        start: d(11),
        days: 3,
        symbols: 2,
        ..SynthParams::default()
    };
    let u = Universe::new(params.clone(), cal.clone()).unwrap();
    assert_eq!(u.trading_days(), &[d(11), d(12), d(16)]);
    assert_eq!(u.symbols(), ["SYN000", "SYN001"]);
    let err = Universe::new(SynthParams { days: 5, ..params }, cal)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("synth.days = 5"), "{err}");
    let many = SynthParams {
        symbols: 1001,
        ..SynthParams::default()
    };
    let names = many.symbol_names();
    assert_eq!(
        (names[0].as_str(), names[1000].as_str()),
        ("SYN0000", "SYN1000")
    );
}

#[test]
fn validate_names_the_bad_key() {
    let bad: Vec<(&str, SynthParams)> = vec![
        (
            "synth.momentum_share = 1.5",
            SynthParams {
                momentum_share: 1.5,
                ..Default::default()
            },
        ),
        (
            "synth.symbols = 0",
            SynthParams {
                symbols: 0,
                ..Default::default()
            },
        ),
        (
            "synth.days = 0",
            SynthParams {
                days: 0,
                ..Default::default()
            },
        ),
        (
            "synth.bar = \"1h\"",
            SynthParams {
                bar: BarSize::H1,
                ..Default::default()
            },
        ),
        (
            "synth.price_max = 1",
            SynthParams {
                price_min: 2.0,
                price_max: 1.0,
                ..Default::default()
            },
        ),
        (
            "synth.daily_vol = NaN",
            SynthParams {
                daily_vol: f64::NAN,
                ..Default::default()
            },
        ),
        (
            "synth.garch_alpha + synth.garch_beta",
            SynthParams {
                garch_alpha: 0.3,
                garch_beta: 0.8,
                ..Default::default()
            },
        ),
        (
            "synth.tail_dof = 2",
            SynthParams {
                tail_dof: 2.0,
                ..Default::default()
            },
        ),
        (
            "synth.momentum_range_max = 0.12",
            SynthParams {
                momentum_range_max: 0.12,
                ..Default::default()
            },
        ),
        (
            "synth.squeezes_max = 0",
            SynthParams {
                squeezes_max: 0,
                ..Default::default()
            },
        ),
        (
            "synth.squeeze_secs_max = 100",
            SynthParams {
                squeeze_secs_max: 100,
                ..Default::default()
            },
        ),
        (
            "synth.halt_secs = 90",
            SynthParams {
                halt_secs: 90,
                ..Default::default()
            },
        ),
        (
            "synth.halt_prob = -0.1",
            SynthParams {
                halt_prob: -0.1,
                ..Default::default()
            },
        ),
        (
            "synth.trade_prob = 0",
            SynthParams {
                trade_prob: 0.0,
                ..Default::default()
            },
        ),
        (
            "synth.u_open = 0.5",
            SynthParams {
                u_open: 0.5,
                ..Default::default()
            },
        ),
        (
            "synth.daily_volume = 0",
            SynthParams {
                daily_volume: 0,
                ..Default::default()
            },
        ),
        (
            "synth.extended_activity = 0",
            SynthParams {
                extended_activity: 0.0,
                ..Default::default()
            },
        ),
    ];
    for (key, p) in bad {
        let err = p.validate().unwrap_err();
        assert!(err.starts_with(key), "expected '{key}...', got '{err}'");
        // The spec and the universe refuse them too, with the same message.
        let err = SynthSpec::with_weekdays(p).unwrap_err().to_string();
        assert!(err.contains(key), "{err}");
    }
    assert_eq!(SynthParams::default().validate(), Ok(()));
}
