//! Properties of the environment on real (LEAN) and synthetic days:
//! - the CPU batch engine equals the scalar reference bit for bit on random actions, with
//!   auto-resets, for every reward kind and execution variant, for any thread count and
//!   at every instruction set the CPU runs;
//! - accounting: equity − initial = realized + unrealized − costs, to the cent, at every
//!   step of random trajectories, and the fills' cash flows rebuild the cash;
//! - no look-ahead: rewriting every bar after t changes no observation, reward or fill up
//!   to t.

mod common;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sim_train::env::params::parse_hms;
use sim_train::env::{
    Buffers, CpuEnvs, DayData, EnvParams, Episode, EpisodeSource, EpisodeStats, ReferenceEnv, Simd,
    StartTimes,
};
use std::sync::Arc;

use common::envs::{params, real_days, synth_days, variants};

/// [`assert_parity_at`] for every instruction set this CPU runs (each is its own
/// compilation of the batch step).
fn assert_parity(label: &str, p: &Arc<EnvParams>, days: &[Arc<DayData>], n: usize, steps: usize) {
    for simd in Simd::available() {
        assert_parity_at(&format!("{label} {simd:?}"), simd, p, days, n, steps);
    }
}

/// Steps `n` reference environments exactly as the batch engine does (step all, then
/// reset the ended ones in environment order) and the batch engine itself at `simd`, with
/// the same random actions, comparing every output bit.
fn assert_parity_at(
    label: &str,
    simd: Simd,
    p: &Arc<EnvParams>,
    days: &[Arc<DayData>],
    n: usize,
    steps: usize,
) {
    let times: Vec<u32> = ["09:30:00", "10:00:00", "12:30:00", "15:58:00"]
        .iter()
        .map(|t| parse_hms(t).unwrap())
        .collect();
    let mut batch = CpuEnvs::new(
        p.clone(),
        n,
        Box::new(StartTimes::new(days, &times, 11).unwrap()),
    )
    .unwrap();
    batch.set_simd(simd).unwrap();
    let mut source = StartTimes::new(days, &times, 11).unwrap();
    let mut refs: Vec<ReferenceEnv> = (0..n)
        .map(|i| ReferenceEnv::new(p.clone(), source.next_episode(i).unwrap()).unwrap())
        .collect();
    let d = p.obs_dim();
    let mut buf = Buffers::new(n, d);
    batch.observe(&mut buf.out()).unwrap();
    let mut ref_obs = vec![0f32; d];
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut ref_finished: Vec<EpisodeStats> = Vec::new();
    for step in 0..steps {
        for (i, r) in refs.iter().enumerate() {
            r.observe(&mut ref_obs);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&buf.obs[i * d..(i + 1) * d]),
                bits(&ref_obs),
                "{label}: obs of env {i} before step {step}"
            );
        }
        let actions: Vec<u8> = (0..n)
            .map(|_| rng.random_range(0..p.actions.len() as u8))
            .collect();
        batch.step(&actions, &mut buf.out()).unwrap();
        for (i, r) in refs.iter_mut().enumerate() {
            let res = r.step(actions[i] as usize).unwrap();
            assert_eq!(
                buf.rewards[i].to_bits(),
                (res.reward as f32).to_bits(),
                "{label}: reward env {i} step {step}"
            );
            assert_eq!(
                buf.terminated[i] != 0,
                res.terminated,
                "{label}: terminated env {i} step {step}"
            );
            assert_eq!(
                buf.truncated[i] != 0,
                res.truncated,
                "{label}: truncated env {i} step {step}"
            );
        }
        for (i, r) in refs.iter_mut().enumerate() {
            if let Some(mut stats) = r.finished.take() {
                stats.env = i;
                ref_finished.push(stats);
                *r = ReferenceEnv::new(p.clone(), source.next_episode(i).unwrap()).unwrap();
            }
        }
    }
    let batch_finished = batch.drain_finished();
    assert!(
        !batch_finished.is_empty(),
        "{label}: some episodes must end in {steps} steps"
    );
    assert_eq!(batch_finished, ref_finished, "{label}: episode summaries");
}

#[test]
fn batch_equals_reference_bit_for_bit_on_real_days() {
    let dir = tempfile::tempdir().unwrap();
    for (label, p) in variants() {
        let Some(days) = real_days(
            "batch_equals_reference_bit_for_bit_on_real_days",
            dir.path(),
            &p,
        ) else {
            return;
        };
        // 300 envs: two parallel chunks and a remainder.
        assert_parity(label, &p, &days, 300, 1_500);
        let _ = std::fs::remove_dir_all(dir.path().join("s1"));
        let _ = std::fs::remove_dir_all(dir.path().join("m1"));
    }
}

#[test]
fn batch_equals_reference_bit_for_bit_on_synthetic_days() {
    for bar in ["1m", "1s"] {
        for (label, p) in variants() {
            let dir = tempfile::tempdir().unwrap();
            let days = synth_days(dir.path(), &p, bar);
            assert!(
                days.iter().any(|d| !d.halts.is_empty()),
                "synthetic halts are planted"
            );
            assert_parity(&format!("{label} {bar}"), &p, &days, 37, 2_000);
        }
    }
}

#[test]
fn batch_is_deterministic_across_thread_counts() {
    let dir = tempfile::tempdir().unwrap();
    let p = variants()[1].1.clone();
    let days = synth_days(dir.path(), &p, "1m");
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let src = StartTimes::new(&days, &[34_200, 45_000], 3).unwrap();
            let mut envs = CpuEnvs::new(p.clone(), 1_000, Box::new(src)).unwrap();
            let mut buf = Buffers::new(1_000, p.obs_dim());
            let mut rng = ChaCha8Rng::seed_from_u64(9);
            let mut trace = Vec::new();
            for _ in 0..400 {
                let a: Vec<u8> = (0..1_000).map(|_| rng.random_range(0..5)).collect();
                envs.step(&a, &mut buf.out()).unwrap();
                trace.extend(buf.obs.iter().map(|x| x.to_bits()));
                trace.extend(buf.rewards.iter().map(|x| x.to_bits()));
            }
            (trace, envs.drain_finished())
        })
    };
    let one = run(1);
    assert!(one == run(2), "1 and 2 threads differ");
    assert!(one == run(1), "same seed, different run");
}

#[test]
fn accounting_identity_holds_to_the_cent_on_real_days() {
    let dir = tempfile::tempdir().unwrap();
    let p = params(|c| {
        c.costs.borrow_rate_annual = 0.5; // make borrow visible
        c.execution.participation = 0.05;
        c.daily_loss_limit = 0.0;
    });
    let Some(days) = real_days(
        "accounting_identity_holds_to_the_cent_on_real_days",
        dir.path(),
        &p,
    ) else {
        return;
    };
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut checked_steps = 0;
    for day in &days {
        let start = day.start_row_at(34_200).unwrap();
        let mut env = ReferenceEnv::new(
            p.clone(),
            Episode {
                day: day.clone(),
                start_row: start,
            },
        )
        .unwrap();
        let e0 = p.initial_equity;
        let mut flows = 0.0; // cash paid for fills, including their costs
        let mut fill_costs = 0.0;
        let mut target = 0.0;
        loop {
            if rng.random_bool(0.02) {
                target = [-1.0, -0.5, 0.0, 0.5, 1.0][rng.random_range(0..5)];
            }
            let r = env.step_target(target).unwrap();
            for f in &env.last_fills {
                flows += f.shares as f64 * f.price + f.costs.total();
                fill_costs += f.costs.total();
            }
            let l = *env.ledger();
            let equity = env.equity();
            let identity = l.realized + env.unrealized() - l.costs;
            assert!(
                (equity - e0 - identity).abs() < 0.005,
                "{} {}: equity change {} vs realized + unrealized − costs {}",
                day.symbol,
                day.date,
                equity - e0,
                identity
            );
            // Cash = start − fill cash flows − borrow (costs beyond the fills' own).
            let borrow = l.costs - fill_costs;
            assert!(borrow >= -1e-9);
            assert!((l.cash - (e0 - flows - borrow)).abs() < 0.005);
            checked_steps += 1;
            if r.terminated {
                assert_eq!(l.position, 0);
                let stats = env.finished.clone().unwrap();
                assert!((stats.pnl - (stats.realized - stats.costs)).abs() < 0.005);
                break;
            }
        }
    }
    assert!(checked_steps > 100_000, "{checked_steps}");
}

/// Rewrites every bar after row `t` (prices, volume, quotes, flags, σ, features and even
/// the timestamps, keeping them ordered inside the session).
fn rewrite_after(day: &DayData, t: usize, rng: &mut ChaCha8Rng) -> DayData {
    let mut d = day.clone();
    let mut bars = d.bars.to_vec();
    for b in &mut bars[t + 1..] {
        let m = rng.random_range(0.5..1.5);
        b.open *= m;
        b.close *= rng.random_range(0.5..1.5);
        b.bid = b.close * 0.999;
        b.ask = b.close * 1.001;
        b.flags = rng.random_range(0..4);
        b.volume = rng.random_range(1.0..1e5);
        b.sigma = rng.random_range(0.0..0.1);
    }
    let mut features = d.features.to_vec();
    for x in &mut features[(t + 1) * d.k..] {
        *x = rng.random_range(-3.0..3.0);
    }
    d.bars = bars.into();
    d.features = features.into();
    d.halts.push((
        d.bars[t].ts_ms + d.bar_ms + 1,
        d.bars[t].ts_ms + d.bar_ms + 5_000,
    ));
    d
}

#[test]
fn no_look_ahead_changing_bars_after_t_changes_nothing_up_to_t() {
    let dir = tempfile::tempdir().unwrap();
    let p = variants()[1].1.clone(); // latency, cancel, hybrid reward
    let mut days = synth_days(dir.path(), &p, "1m");
    if let Some(real) = real_days(
        "no_look_ahead_changing_bars_after_t_changes_nothing_up_to_t",
        &dir.path().join("real"),
        &p,
    ) {
        days.extend(real);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for day in &days {
        for _ in 0..5 {
            let start = day.start_row_at(34_200).unwrap() as usize;
            let t = rng.random_range(start + 1..day.last_row as usize);
            let changed = Arc::new(rewrite_after(day, t, &mut rng));
            let mut a = ReferenceEnv::new(
                p.clone(),
                Episode {
                    day: day.clone(),
                    start_row: start as u32,
                },
            )
            .unwrap();
            let mut b = ReferenceEnv::new(
                p.clone(),
                Episode {
                    day: changed,
                    start_row: start as u32,
                },
            )
            .unwrap();
            let d = p.obs_dim();
            let (mut oa, mut ob) = (vec![0f32; d], vec![0f32; d]);
            let mut steps = 0;
            while a.row() < t {
                a.observe(&mut oa);
                b.observe(&mut ob);
                assert_eq!(
                    oa,
                    ob,
                    "{} {}: observation at row {} (t = {t})",
                    day.symbol,
                    day.date,
                    a.row()
                );
                let act = rng.random_range(0..p.actions.len());
                let (ra, rb) = (a.step(act).unwrap(), b.step(act).unwrap());
                assert_eq!(ra, rb, "step result into row {}", a.row());
                assert_eq!(a.last_fills, b.last_fills, "fills into row {}", a.row());
                steps += 1;
                if ra.terminated || ra.truncated {
                    break;
                }
            }
            if a.row() == t {
                a.observe(&mut oa);
                b.observe(&mut ob);
                assert_eq!(oa, ob, "observation at t");
            }
            assert!(steps > 0);
        }
    }
}
