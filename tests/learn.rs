//! The learner: GAE against a plain loop of its definition, the packed LSTM against
//! step-by-step recurrence, the sanity tasks solved, bit-identical resume, and the
//! config / run-dir errors of `sim-train train`.

mod common;

use common::{sim_train, synth_cache};
use predicates::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sim_train::config::{Resolved, load};
use sim_train::learn::gae::{GaeInput, gae};
use sim_train::learn::policy::{LstmState, Policy, PolicyShape};
use sim_train::learn::run::{RunOptions, Summary, latest_checkpoint, train};
use std::path::Path;
use tch::{Device, Kind, Tensor};

#[allow(clippy::too_many_arguments)] // the formula's inputs, named as in the tests
fn gae_of(
    n: usize,
    r: &[f32],
    v: &[f32],
    term: &[u8],
    trunc: &[u8],
    fv: &[f32],
    next: &[f32],
    gamma: f32,
    lambda: f32,
) -> Vec<f32> {
    gae(&GaeInput {
        n,
        rewards: r,
        values: v,
        terminated: term,
        truncated: trunc,
        final_values: fv,
        next_value: next,
        gamma,
        lambda,
    })
    .advantages
}

#[test]
fn gae_hand_computed_cases() {
    // r = [1, 2], v = [0.5, 0.25], value after the rollout 1, γ = 0.9, λ = 0.8.
    // δ1 = 2 + 0.9·1 − 0.25 = 2.65; δ0 = 1 + 0.9·0.25 − 0.5 = 0.725; A0 = δ0 + 0.72·δ1.
    let (r, v, next) = ([1.0, 2.0], [0.5, 0.25], [1.0]);
    let a = gae_of(1, &r, &v, &[0, 0], &[0, 0], &[0.0, 0.0], &next, 0.9, 0.8);
    assert!(
        (a[1] - 2.65).abs() < 1e-6 && (a[0] - 2.633).abs() < 1e-6,
        "{a:?}"
    );
    // Terminated at step 0: no future, the chain is cut. A0 = 1 − 0.5.
    let a = gae_of(1, &r, &v, &[1, 0], &[0, 0], &[0.0, 0.0], &next, 0.9, 0.8);
    assert!((a[0] - 0.5).abs() < 1e-6, "{a:?}");
    // Truncated at step 0 in a state worth 2: bootstrap from it, still cut the chain.
    // A0 = 1 + 0.9·2 − 0.5 = 2.3.
    let a = gae_of(1, &r, &v, &[0, 0], &[1, 0], &[2.0, 0.0], &next, 0.9, 0.8);
    assert!((a[0] - 2.3).abs() < 1e-6, "{a:?}");
}

#[test]
fn gae_matches_a_plain_loop_of_the_definition() {
    // A_t = Σ_l (γλ)^l δ_{t+l} up to and including the step that ends the episode, with
    // δ_k = r_k + γ·(0 | V(final state) | V(s_{k+1})) − V(s_k) for a termination, a
    // truncation or neither; computed per environment in f64, O(T²).
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for &(t_len, n) in &[(1usize, 3usize), (16, 7), (64, 5)] {
        let len = t_len * n;
        let r: Vec<f32> = (0..len).map(|_| rng.random_range(-1.0..1.0)).collect();
        let v: Vec<f32> = (0..len).map(|_| rng.random_range(-1.0..1.0)).collect();
        let fv: Vec<f32> = (0..len).map(|_| rng.random_range(-1.0..1.0)).collect();
        let next: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let mut term = vec![0u8; len];
        let mut trunc = vec![0u8; len];
        for k in 0..len {
            match rng.random_range(0..10) {
                0 => term[k] = 1,
                1 => trunc[k] = 1,
                _ => {}
            }
        }
        let (gamma, lambda) = (0.97f64, 0.9f64);
        let got = gae_of(
            n,
            &r,
            &v,
            &term,
            &trunc,
            &fv,
            &next,
            gamma as f32,
            lambda as f32,
        );
        for (i, &after) in next.iter().enumerate() {
            let at = |t: usize| t * n + i;
            let delta = |t: usize| -> f64 {
                let k = at(t);
                let future = if term[k] == 1 {
                    0.0
                } else if trunc[k] == 1 {
                    fv[k] as f64
                } else if t + 1 < t_len {
                    v[at(t + 1)] as f64
                } else {
                    after as f64
                };
                r[k] as f64 + gamma * future - v[k] as f64
            };
            for t in 0..t_len {
                let mut want = 0.0;
                let mut w = 1.0;
                for u in t..t_len {
                    want += w * delta(u);
                    if term[at(u)] == 1 || trunc[at(u)] == 1 {
                        break;
                    }
                    w *= gamma * lambda;
                }
                let g = got[at(t)] as f64;
                assert!(
                    (g - want).abs() <= 1e-4 * (1.0 + want.abs()),
                    "T={t_len} env {i} step {t}: {g} vs {want}"
                );
            }
        }
    }
}

/// `train.precision = "bf16"`: the LSTM runs in bfloat16 and gives what the f32 LSTM gives
/// within bfloat16's rounding (8 significant bits), its gradients reach the f32 weights,
/// and switching back to f32 gives the f32 outputs exactly.
#[test]
fn a_bf16_lstm_tracks_the_f32_one_and_trains_f32_weights() {
    let shape = PolicyShape {
        obs_dim: 6,
        n_actions: 3,
        encoder: vec![16],
        hidden: 8,
    };
    let mut p = Policy::new(shape, Device::Cpu, 3);
    let (t, b) = (10i64, 4i64);
    let obs = Tensor::randn([t, b, 6], (Kind::Float, Device::Cpu));
    let first = vec![0.0f32; (t * b) as usize];
    let init = LstmState::zeros(b as usize, 8, Device::Cpu);
    let run = |p: &Policy| {
        let (out, last) = p.sequence(&obs, &first, &init);
        (out, last.expect("no episode begins inside"))
    };
    let (f32_out, f32_last) = tch::no_grad(|| run(&p));
    p.set_lstm_kind(Kind::BFloat16);
    let (out, last) = run(&p);
    assert_eq!(out.log_probs.kind(), Kind::Float);
    let diff = |a: &Tensor, b: &Tensor| (a - b).abs().max().double_value(&[]);
    let d = diff(&out.log_probs, &f32_out.log_probs);
    assert!(
        d > 0.0 && d < 0.02,
        "bf16 vs f32 log-probabilities differ by {d}"
    );
    let d = diff(&out.values, &f32_out.values);
    assert!(d > 0.0 && d < 0.05, "bf16 vs f32 values differ by {d}");
    assert!(diff(&last.h, &f32_last.h) < 0.05);
    out.values.sum(Kind::Float).backward();
    for (name, w) in p.named_parameters() {
        if name.starts_with("lstm.") {
            assert_eq!(w.kind(), Kind::Float, "{name}");
            let g = w.grad();
            assert_eq!(g.kind(), Kind::Float, "{name}");
            assert!(
                g.abs().sum(Kind::Float).double_value(&[]) > 0.0,
                "{name}: no gradient"
            );
        }
    }
    p.set_lstm_kind(Kind::Float);
    let (back, _) = tch::no_grad(|| run(&p));
    assert!(back.log_probs.equal(&f32_out.log_probs) && back.values.equal(&f32_out.values));
}

#[test]
fn packed_sequence_equals_step_by_step_recurrence() {
    // Episodes beginning inside a sequence: the packed fused LSTM must give what stepping
    // one time step at a time with the state zeroed at each start gives.
    let shape = PolicyShape {
        obs_dim: 6,
        n_actions: 3,
        encoder: vec![16],
        hidden: 8,
    };
    let p = Policy::new(shape, Device::Cpu, 3);
    let (t, b) = (12usize, 5usize);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let obs = Tensor::randn([t as i64, b as i64, 6], (Kind::Float, Device::Cpu));
    let first: Vec<f32> = (0..t * b)
        .map(|_| {
            if rng.random_range(0..4) == 0 {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    assert!(first[b..].contains(&1.0));
    let init = LstmState {
        h: Tensor::randn([b as i64, 8], (Kind::Float, Device::Cpu)),
        c: Tensor::randn([b as i64, 8], (Kind::Float, Device::Cpu)),
    };
    let (packed, last) = tch::no_grad(|| p.sequence(&obs, &first, &init));
    assert!(last.is_none());
    let mut state = init.copy();
    for step in 0..t {
        let (out, next) = tch::no_grad(|| {
            p.step(
                &obs.get(step as i64),
                &first[step * b..(step + 1) * b],
                &state,
            )
        });
        let dl = (&out.log_probs - packed.log_probs.get(step as i64))
            .abs()
            .max()
            .double_value(&[]);
        let dv = (&out.values - packed.values.get(step as i64))
            .abs()
            .max()
            .double_value(&[]);
        assert!(
            dl < 1e-5 && dv < 1e-5,
            "step {step}: log-prob diff {dl}, value diff {dv}"
        );
        state = next;
    }
}

fn sanity_config(env: &str, sets: &[&str]) -> Resolved {
    let mut all = vec![
        format!("train.env=\"{env}\""),
        "train.device=\"cpu\"".into(),
        "train.threads=2".into(),
    ];
    all.extend(sets.iter().map(|s| s.to_string()));
    load(None, &all).unwrap()
}

fn run(
    resolved: &Resolved,
    dir: &Path,
    resume: bool,
    cache: Option<&Path>,
    stop_after: Option<u64>,
) -> sim_train::Result<Summary> {
    train(
        resolved,
        &RunOptions {
            run_dir: dir.to_path_buf(),
            resume,
            cache: cache.map(Path::to_path_buf),
            index: None,
            stop_after,
            progress: false,
            init_from: None,
        },
    )
}

fn first_update_return(dir: &Path) -> f64 {
    let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    let v: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    v["charts/episode_return"].as_f64().unwrap()
}

#[test]
fn sanity_bandit_is_solved() {
    let tmp = tempfile::tempdir().unwrap();
    let r = sanity_config(
        "sanity-bandit",
        &[
            "train.num_envs=64",
            "train.rollout_steps=16",
            "train.total_steps=30000",
            "train.learning_rate=0.003",
        ],
    );
    let s = run(&r, tmp.path(), false, None, None).unwrap();
    // Chance is 1/4; solved is the paying arm every time.
    assert!(first_update_return(tmp.path()) < 0.5);
    let ret = s.final_episode_return.unwrap();
    assert!(ret >= 0.95, "bandit return {ret}");
}

#[test]
fn sanity_memory_is_solved_by_the_lstm() {
    let tmp = tempfile::tempdir().unwrap();
    let r = sanity_config(
        "sanity-memory",
        &[
            "train.num_envs=64",
            "train.rollout_steps=32",
            "train.total_steps=200000",
            "train.learning_rate=0.003",
            "train.hidden=32",
            "train.encoder=[32]",
        ],
    );
    let s = run(&r, tmp.path(), false, None, None).unwrap();
    // Without memory the best is 0.5 (a coin flip on the cue).
    assert!(first_update_return(tmp.path()) < 0.65);
    let ret = s.final_episode_return.unwrap();
    assert!(ret >= 0.95, "memory return {ret}");
}

/// Parameters and Adam moments of a checkpoint, by name.
fn checkpoint_tensors(dir: &Path) -> Vec<(String, Tensor)> {
    let mut t = Tensor::load_multi(latest_checkpoint(dir).unwrap().join("tensors.ot")).unwrap();
    t.sort_by(|a, b| a.0.cmp(&b.0));
    t
}

/// metrics.jsonl without the wall-clock fields.
fn metrics_without_timing(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let o = v.as_object_mut().unwrap();
            o.retain(|k, _| !k.starts_with("time/") && k != "charts/sps");
            v
        })
        .collect()
}

fn assert_resume_is_exact(resolved: &Resolved, cache: Option<&Path>, k: u64) {
    assert_resume_is_exact_with(resolved, cache, None, k)
}

fn assert_resume_is_exact_with(
    resolved: &Resolved,
    cache: Option<&Path>,
    index: Option<&Path>,
    k: u64,
) {
    let tmp = tempfile::tempdir().unwrap();
    let (whole, split) = (tmp.path().join("whole"), tmp.path().join("split"));
    let opts = |dir: &Path, stop_after| RunOptions {
        run_dir: dir.to_path_buf(),
        resume: false,
        cache: cache.map(Path::to_path_buf),
        index: index.map(Path::to_path_buf),
        stop_after,
        progress: false,
        init_from: None,
    };
    let a = train(resolved, &opts(&whole, None)).unwrap();
    assert_eq!(a.updates_done, 2 * k);
    let b = train(resolved, &opts(&split, Some(k))).unwrap();
    assert!(!b.finished && b.updates_done == k);
    let c = run(resolved, &split, true, None, None).unwrap();
    assert!(c.finished && c.resumed_from_update == Some(k));
    let (ta, tb) = (checkpoint_tensors(&whole), checkpoint_tensors(&split));
    assert_eq!(ta.len(), tb.len());
    for ((na, x), (nb, y)) in ta.iter().zip(&tb) {
        assert_eq!(na, nb);
        assert!(x.equal(y), "{na} differs after resume");
    }
    // Adam moved: the comparison is not between two untouched initializations.
    assert!(
        ta.iter()
            .any(|(n, x)| n.starts_with("adam_m/")
                && x.abs().sum(Kind::Float).double_value(&[]) > 0.0)
    );
    assert_eq!(
        metrics_without_timing(&whole),
        metrics_without_timing(&split)
    );
    assert_eq!(a.episodes, c.episodes);
}

#[test]
fn resume_is_bit_identical_on_the_memory_task() {
    let r = sanity_config(
        "sanity-memory",
        &[
            "train.num_envs=32",
            "train.rollout_steps=16",
            "train.total_steps=4096",
            "train.bptt=8",
            "train.checkpoint_every=3",
        ],
    );
    assert_eq!(r.config.train.updates(), 8);
    assert_resume_is_exact(&r, None, 4);
}

/// 16 market environments × 32 steps, 6 updates of 2 minibatches, plus `extra` sets.
fn market_config(extra: &[&str]) -> Resolved {
    let mut sets: Vec<String> = [
        "train.env=\"market\"",
        "train.device=\"cpu\"",
        "train.threads=2",
        "train.num_envs=16",
        "train.rollout_steps=32",
        "train.total_steps=3072",
        "train.minibatches=2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    sets.extend(extra.iter().map(|s| s.to_string()));
    load(None, &sets).unwrap()
}

/// 2 synthetic symbols × 3 days of 1 m bars.
fn small_market_cache(dir: &Path) -> std::path::PathBuf {
    synth_cache(
        dir,
        &["synth.symbols=2", "synth.days=3", "synth.bar=\"1m\""],
    )
}

/// Episodes truncated every 50 steps as well as ended by the close, so a run crosses
/// resets, truncation bootstraps and rolling state; the environments on `backend`.
fn market_backend_config(backend: &str) -> Resolved {
    market_config(&[
        "env.max_episode_steps=50",
        "env.start_times=[\"09:30:00\", \"12:00:00\", \"15:30:00\"]",
        "env.reward.kind=\"hybrid\"",
        &format!("train.backend=\"{backend}\""),
    ])
}

#[test]
fn resume_is_bit_identical_on_the_market() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = small_market_cache(tmp.path());
    let r = market_backend_config("cpu");
    assert_eq!(r.config.train.updates(), 6);
    assert_resume_is_exact(&r, Some(&cache), 3);
}

/// A GPU engine with fewer day slots than the universe has days (6 days, 4 slots; the
/// CUDA kernels compiled for the host, which always runs): the days stream through the
/// slots day-major, training runs, and a resume continues the day schedule bit for bit.
#[test]
fn trains_over_more_days_than_the_gpu_holds() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = small_market_cache(tmp.path());
    let mut r = market_backend_config("cuda-host");
    r.config.train.day_slots = 4;
    assert_resume_is_exact(&r, Some(&cache), 3);
}

#[test]
fn training_on_wgpu_equals_training_on_the_cpu() {
    let test = "training_on_wgpu_equals_training_on_the_cpu";
    if common::gpu_available(sim_train::env::gpu::GpuApi::Wgpu, test).is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cache = small_market_cache(tmp.path());
    let (cpu, gpu) = (tmp.path().join("cpu"), tmp.path().join("wgpu"));
    let a = run(
        &market_backend_config("cpu"),
        &cpu,
        false,
        Some(&cache),
        None,
    )
    .unwrap();
    let b = run(
        &market_backend_config("wgpu"),
        &gpu,
        false,
        Some(&cache),
        None,
    )
    .unwrap();
    assert!(a.finished && b.finished);
    assert!(a.backend.starts_with("cpu ("), "{}", a.backend);
    assert!(b.backend.starts_with("wgpu: "), "{}", b.backend);
    // The environments are bit-identical (tests/gpu_conformance.rs), so is everything the
    // learner did with them: weights, Adam moments, carried state, every logged number.
    let (ta, tb) = (checkpoint_tensors(&cpu), checkpoint_tensors(&gpu));
    assert_eq!(ta.len(), tb.len());
    for ((na, x), (nb, y)) in ta.iter().zip(&tb) {
        assert_eq!(na, nb);
        assert!(x.equal(y), "{na} differs between the cpu and wgpu runs");
    }
    assert_eq!(metrics_without_timing(&cpu), metrics_without_timing(&gpu));
    assert_eq!(a.episodes, b.episodes);
    assert!(a.episodes > 0);
}

#[test]
fn resume_is_bit_identical_on_wgpu() {
    let test = "resume_is_bit_identical_on_wgpu";
    if common::gpu_available(sim_train::env::gpu::GpuApi::Wgpu, test).is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cache = small_market_cache(tmp.path());
    assert_resume_is_exact(&market_backend_config("wgpu"), Some(&cache), 3);
}

/// The learner's one rollout path (tensors on its device; here the CPU, with the market
/// environments stepping on the host) against a plain host loop written from the
/// definition: the same seeded uniforms drawn step-major, inverse-CDF sampling over the
/// policy's log-probabilities, observation statistics updated then applied, the value
/// of a truncated episode's last observation under the pre-reset LSTM state, and GAE over
/// host arrays ([`sim_train::learn::gae::gae`]). Equal actions and episodes, equal values
/// and advantages up to libtorch's reductions against the host's loops; and the reads to
/// the host: one per rollout and one per update.
#[test]
fn the_rollout_matches_a_host_loop_of_the_definition_and_reads_twice_per_update() {
    use sim_train::learn::network::sample;
    use sim_train::learn::normalize::ObsNorm;
    use sim_train::learn::ppo::Ppo;
    use sim_train::learn::run::build_envs;
    let tmp = tempfile::tempdir().unwrap();
    let cache = small_market_cache(tmp.path());
    let r = market_config(&[
        "env.max_episode_steps=20",
        "env.start_times=[\"09:30:00\", \"15:50:00\"]",
    ]);
    let cfg = r.config.train.clone();
    let make = || build_envs(&r, Some(&cache), None, Device::Cpu).unwrap();
    let (mut ours_env, mut ref_env) = (make(), make());
    let (n, d) = (ours_env.num_envs(), ours_env.obs_dim());
    let shape = PolicyShape {
        obs_dim: d,
        n_actions: ours_env.num_actions(),
        encoder: cfg.encoder.clone(),
        hidden: cfg.hidden,
    };
    let policy = Policy::new(shape.clone(), Device::Cpu, cfg.seed);
    let mut ppo = Ppo::new(
        &cfg,
        ours_env.as_mut(),
        Policy::new(shape, Device::Cpu, cfg.seed),
    )
    .unwrap();
    // The reference's state: what the learner carries, on the host.
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut next_obs = vec![0f32; n * d];
    ref_env.observe(&mut next_obs).unwrap();
    let mut next_first = vec![1f32; n];
    let mut norm = ObsNorm::new(d, cfg.obs_clip as f32);
    let mut state = LstmState::zeros(n, cfg.hidden, Device::Cpu);
    let t_len = cfg.rollout_steps;
    let close = |x: f32, y: f32| (x - y).abs() <= 2e-4 * (1.0 + x.abs());
    let (mut eo, mut er) = (Vec::new(), Vec::new());
    for update in 1..=3 {
        ppo.rollout(ours_env.as_mut()).unwrap();
        let ours = ppo.rollout_record().unwrap();
        let u: Vec<f32> = (0..t_len * n).map(|_| rng.random()).collect();
        let tensor = |x: &[f32], rows: usize| Tensor::from_slice(x).view([rows as i64, -1]);
        let (mut values, mut rewards, mut final_values) = (
            vec![0f32; t_len * n],
            vec![0f32; t_len * n],
            vec![0f32; t_len * n],
        );
        let (mut terminated, mut truncated) = (vec![0u8; t_len * n], vec![0u8; t_len * n]);
        let mut actions = vec![0u8; n];
        let mut obs = vec![0f32; n * d];
        for t in 0..t_len {
            norm.update(&next_obs);
            norm.normalize(&next_obs, &mut obs);
            let (out, next_state) =
                tch::no_grad(|| policy_step(&policy, &tensor(&obs, n), &next_first, &state));
            let mut lp = vec![0f32; n * shape_actions(&out.log_probs)];
            let a = lp.len() / n;
            out.log_probs.copy_data(&mut lp, n * a);
            out.values.copy_data(&mut values[t * n..(t + 1) * n], n);
            for i in 0..n {
                actions[i] = sample(&lp[i * a..(i + 1) * a], u[t * n + i]) as u8;
            }
            let row = t * n..(t + 1) * n;
            ref_env
                .step(
                    &actions,
                    &mut sim_train::env::StepOut {
                        obs: &mut next_obs,
                        rewards: &mut rewards[row.clone()],
                        terminated: &mut terminated[row.clone()],
                        truncated: &mut truncated[row.clone()],
                    },
                )
                .unwrap();
            for i in 0..n {
                let k = t * n + i;
                assert_eq!(
                    ours.actions[k], actions[i] as i64,
                    "update {update}, step {t}, env {i}: action"
                );
                if truncated[k] != 0 && terminated[k] == 0 {
                    let mut last = vec![0f32; d];
                    norm.normalize(&ref_env.final_obs()[i * d..(i + 1) * d], &mut last);
                    let idx = Tensor::from_slice(&[i as i64]);
                    let (v, _) = tch::no_grad(|| {
                        policy_step(&policy, &tensor(&last, 1), &[0.0], &next_state.select(&idx))
                    });
                    final_values[k] = v.values.double_value(&[0]) as f32;
                }
                next_first[i] = (terminated[k] | truncated[k]) as f32;
            }
            state = next_state;
        }
        norm.normalize(&next_obs, &mut obs);
        let (boot, _) =
            tch::no_grad(|| policy_step(&policy, &tensor(&obs, n), &next_first, &state));
        let mut next_value = vec![0f32; n];
        boot.values.copy_data(&mut next_value, n);
        let g = gae(&GaeInput {
            n,
            rewards: &rewards,
            values: &values,
            terminated: &terminated,
            truncated: &truncated,
            final_values: &final_values,
            next_value: &next_value,
            gamma: cfg.gamma as f32,
            lambda: cfg.gae_lambda as f32,
        });
        // Several arrays side by side: an index reads best.
        #[allow(clippy::needless_range_loop)]
        for k in 0..t_len * n {
            assert!(
                close(values[k], ours.values[k]),
                "value {k}: {} {}",
                values[k],
                ours.values[k]
            );
            assert!(
                close(g.advantages[k], ours.advantages[k]),
                "update {update}, advantage {k}: host {} ours {}",
                g.advantages[k],
                ours.advantages[k]
            );
            assert!(close(g.returns[k], ours.returns[k]), "return {k}");
        }
        // One read per rollout (the episode starts the update packs with), one per update.
        assert_eq!(ppo.take_syncs(), 1, "update {update}: reads of the rollout");
        ppo.update(1e-3);
        assert_eq!(ppo.take_syncs(), 1, "update {update}: reads of the update");
        // The update shuffles its minibatches with the trainer's RNG, once per epoch.
        for _ in 0..cfg.epochs {
            rand::seq::SliceRandom::shuffle(&mut (0..n as i64).collect::<Vec<_>>()[..], &mut rng);
        }
        // The reference learns nothing: give it the learner's weights.
        tch::no_grad(|| {
            for ((_, dst), (_, src)) in policy
                .named_parameters()
                .iter()
                .zip(&ppo.policy.named_parameters())
            {
                dst.shallow_clone().copy_(src);
            }
        });
        ours_env.drain_episodes(&mut eo).unwrap();
        ref_env.drain_episodes(&mut er).unwrap();
    }
    // What carries between rollouts, read back for a checkpoint: the reference's.
    ppo.sync_host();
    assert_eq!(ppo.next_obs, next_obs, "carried observations");
    assert_eq!(ppo.next_first, next_first, "carried episode starts");
    let ours_norm = ppo.obs_norm.as_ref().unwrap();
    for j in 0..d {
        assert!((ours_norm.mean[j] - norm.mean[j]).abs() <= 1e-9 * (1.0 + norm.mean[j].abs()));
        assert!((ours_norm.var[j] - norm.var[j]).abs() <= 1e-9 * (1.0 + norm.var[j].abs()));
    }
    let lengths = |e: &[sim_train::learn::vec_env::EpisodeLog]| -> Vec<(u32, u64)> {
        e.iter().map(|x| (x.length, x.reward.to_bits())).collect()
    };
    assert_eq!(lengths(&eo), lengths(&er));
    // Both kinds of episode end happened, so both bootstrap paths ran.
    assert!(eo.iter().any(|e| e.length == 20), "no truncated episode");
    assert!(eo.iter().any(|e| e.length < 20), "no terminated episode");
}

fn policy_step(
    p: &Policy,
    obs: &Tensor,
    first: &[f32],
    state: &LstmState,
) -> (sim_train::learn::policy::PolicyOut, LstmState) {
    p.step(obs, first, state)
}

fn shape_actions(log_probs: &Tensor) -> usize {
    log_probs.size()[1] as usize
}

#[test]
fn gpu_backends_refuse_what_they_cannot_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    sim_train()
        .args(["train", "--env", "sanity-bandit", "--backend", "wgpu"])
        .args(["--device", "cpu", "--run-dir", dir.to_str().unwrap()])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "train.backend = wgpu steps the market environments",
        ));
    assert!(!dir.exists(), "a refused run left its run dir");
    // CUDA environments next to a CPU learner run (through host memory) where a driver
    // exists; here, without one, the error says so before anything is written.
    if sim_train::env::gpu::open_device(sim_train::env::gpu::GpuApi::Cuda).is_err() {
        let cache = synth_cache(tmp.path(), &["synth.symbols=1", "synth.days=1"]);
        sim_train()
            .args(["bench", "train", "--backend", "cuda", "--device", "cpu"])
            .args(["--envs", "8", "--steps", "4", "--updates", "1"])
            .args(["--cache", cache.to_str().unwrap()])
            .assert()
            .code(6)
            .stderr(predicate::str::contains("--backend cuda"));
    }
}

#[test]
fn a_failed_checkpoint_write_leaves_the_previous_one_valid() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let r = sanity_config(
        "sanity-memory",
        &[
            "train.num_envs=8",
            "train.rollout_steps=8",
            "train.total_steps=640",
            "train.checkpoint_every=1",
        ],
    );
    run(&r, &dir, false, None, Some(2)).unwrap();
    let good = latest_checkpoint(&dir).unwrap();
    assert!(good.ends_with("update-00000002"));
    // A file where the next checkpoint's folder must go makes its write fail.
    let blocker = dir.join("checkpoints/update-00000003");
    std::fs::write(&blocker, b"not a checkpoint").unwrap();
    let err = run(&r, &dir, true, None, Some(1)).unwrap_err();
    assert!(err.to_string().contains("update-00000003"), "{err}");
    assert_eq!(latest_checkpoint(&dir).unwrap(), good);
    assert!(!dir.join("checkpoints/.update-00000003.tmp").exists());
    std::fs::remove_file(&blocker).unwrap();
    let s = run(&r, &dir, true, None, None).unwrap();
    assert!(s.finished && s.resumed_from_update == Some(2));
}

#[test]
fn cli_trains_plots_and_refuses_bad_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let d = dir.to_str().unwrap();
    let small = [
        "--set",
        "train.num_envs=16",
        "--set",
        "train.rollout_steps=8",
        "--set",
        "train.total_steps=256",
    ];
    sim_train()
        .args([
            "train",
            "--env",
            "sanity-bandit",
            "--device",
            "cpu",
            "--run-dir",
            d,
        ])
        .args(small)
        .assert()
        .success()
        .stdout(predicate::str::contains("trained 2 updates"));
    for f in [
        "config.resolved.toml",
        "metrics.jsonl",
        "metrics.csv",
        "summary.json",
        "checkpoints/latest",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3);
    assert!(csv.starts_with("update,global_step,charts/lr,charts/sps"));
    sim_train()
        .args(["plot", "--run-dir", d])
        .assert()
        .success();
    let svg = std::fs::read_to_string(dir.join("plots/training.svg")).unwrap();
    assert!(
        svg.starts_with("<svg")
            && svg.contains("charts/episode_return")
            && svg.contains("class=\"series\""),
        "{svg}"
    );

    // The same dir again: refused, nothing overwritten.
    sim_train()
        .args([
            "train",
            "--env",
            "sanity-bandit",
            "--device",
            "cpu",
            "--run-dir",
            d,
        ])
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("already exists").and(predicate::str::contains("--resume")),
        );
    // A finished run resumes to nothing new.
    sim_train()
        .args(["train", "--resume", d])
        .assert()
        .success();
    // A run dir whose config was edited cannot be resumed.
    let cfg = dir.join("config.resolved.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, text.replace("ent_coef = 0.01", "ent_coef = 0.02")).unwrap();
    sim_train()
        .args(["train", "--resume", d])
        .assert()
        .failure()
        .stderr(predicate::str::contains("differs"));
    sim_train()
        .args(["train", "--resume", d, "--set", "train.seed=2"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--resume continues"));

    // Configs that cannot work: one error line naming the key, no run dir created.
    let cases: &[(&[&str], &str)] = &[
        (&["--set", "train.minibatches=3"], "train.minibatches"),
        (&["--set", "train.bptt=128"], "train.bptt"),
        (&["--set", "train.bptt=24"], "train.bptt"),
        (&["--set", "train.gamma=1.5"], "train.gamma"),
        (&["--set", "train.device=\"tpu\""], "train.device"),
    ];
    for (i, (args, key)) in cases.iter().enumerate() {
        let bad = tmp.path().join(format!("bad{i}"));
        sim_train()
            .args([
                "train",
                "--env",
                "sanity-bandit",
                "--run-dir",
                bad.to_str().unwrap(),
            ])
            .args(*args)
            .assert()
            .failure()
            .stderr(predicate::str::contains(*key));
        assert!(
            !bad.exists(),
            "{key}: run dir created before the config was checked"
        );
    }
    if !tch::Cuda::is_available() {
        let bad = tmp.path().join("cuda");
        sim_train()
            .args([
                "train",
                "--env",
                "sanity-bandit",
                "--device",
                "cuda",
                "--run-dir",
                bad.to_str().unwrap(),
            ])
            .assert()
            .failure()
            .stderr(predicate::str::contains("no usable CUDA device"));
        assert!(!bad.exists());
    }
    sim_train()
        .args(["train", "--run-dir", tmp.path().join("m").to_str().unwrap()])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--cache"));
}

#[test]
fn resume_is_bit_identical_with_the_curriculum_sampler() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = synth_cache(
        tmp.path(),
        &["synth.symbols=3", "synth.days=4", "synth.bar=\"1m\""],
    );
    let r = market_config(&["sampler.stages=[{from_episodes=0, uniform=true}]"]);
    let index = tmp.path().join("index");
    sim_train::scan::scan_cache(&cache, &index, &r.config.scan, false).unwrap();
    // Episodes start at the index's reset points, days come through the preloader; the
    // resumed run reloads the days its environments were on from the cache.
    assert_resume_is_exact_with(&r, None, Some(&index), 3);
}

#[test]
fn ctrl_c_finishes_the_update_and_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("sim-train"))
        .args([
            "-q",
            "train",
            "--env",
            "sanity-memory",
            "--device",
            "cpu",
            "--run-dir",
        ])
        .arg(&dir)
        .args([
            "--set",
            "train.num_envs=64",
            "--set",
            "train.rollout_steps=64",
        ])
        .args([
            "--set",
            "train.total_steps=100000000",
            "--set",
            "train.checkpoint_every=0",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first update's record, then interrupt.
    let metrics = dir.join("metrics.jsonl");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while std::fs::read_to_string(&metrics).map_or(true, |t| t.lines().count() < 1) {
        assert!(
            std::time::Instant::now() < deadline,
            "no update within 2 minutes"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "exit {:?}", out.status);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("stopped after") && stdout.contains("--resume"),
        "{stdout}"
    );
    // The checkpoint is the last finished update, and its log ends there.
    let ckpt = latest_checkpoint(&dir).unwrap();
    let records = std::fs::read_to_string(&metrics).unwrap().lines().count();
    assert!(
        ckpt.ends_with(format!("update-{records:08}")),
        "{} vs {records} records",
        ckpt.display()
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["finished"], false);
    assert_eq!(summary["updates_done"], records as u64);
}

#[test]
fn eval_compares_the_policy_with_baselines_on_the_same_days() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = synth_cache(
        tmp.path(),
        &["synth.symbols=2", "synth.days=4", "synth.bar=\"1m\""],
    );
    let dir = tmp.path().join("run");
    let d = dir.to_str().unwrap();
    sim_train()
        .args(["-q", "train", "--device", "cpu", "--run-dir", d, "--cache"])
        .arg(&cache)
        .args([
            "--set",
            "train.num_envs=16",
            "--set",
            "train.rollout_steps=16",
        ])
        .args([
            "--set",
            "train.total_steps=512",
            "--set",
            "train.to=2024-01-04",
        ])
        .assert()
        .success();
    let out = tmp.path().join("eval");
    sim_train()
        .args([
            "-q",
            "eval",
            "--run-dir",
            d,
            "--from",
            "2024-01-05",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("vs flat").and(predicate::str::contains("vs buy-and-hold")),
        );
    let read = |p: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(out.join(p)).unwrap()).unwrap()
    };
    let cmp = read("comparison.json");
    // Daily returns from the report's daily equity: end over the previous day's end
    // (the first day over its start).
    let daily = |p: &str| -> Vec<f64> {
        let rows = read(p)["portfolio"]["daily"].as_array().unwrap().clone();
        let mut prev = rows[0]["start_equity"].as_f64().unwrap();
        rows.iter()
            .map(|r| {
                let end = r["end_equity"].as_f64().unwrap();
                let ret = end / prev - 1.0;
                prev = end;
                ret
            })
            .collect()
    };
    let policy = daily("policy/report.json");
    let bh = daily("buy-and-hold/report.json");
    // Only the held-out days, the same for all, and the t-statistic is that of the
    // written reports' daily returns.
    assert_eq!(cmp["first_date"], "2024-01-05");
    assert_eq!(policy.len(), cmp["days"].as_u64().unwrap() as usize);
    assert_eq!(policy.len(), bh.len());
    assert!(daily("flat/report.json").iter().all(|&r| r == 0.0));
    let want = sim_train::metrics::paired_t_stat(&policy, &bh);
    let got = cmp["versus"][1]["t_stat"].as_f64();
    assert_eq!(cmp["versus"][1]["baseline"], "buy-and-hold");
    match (want, got) {
        (Some(w), Some(g)) => assert!((w - g).abs() < 1e-9, "{w} vs {g}"),
        (None, None) => {}
        other => panic!("{other:?}"),
    }
    let source = &read("policy/report.json")["source"];
    assert_eq!(source["kind"], "policy");
    assert!(
        source["checkpoint"]
            .as_str()
            .unwrap()
            .contains("update-00000002")
    );
    // A sanity run has no market policy to evaluate.
    let sanity = tmp.path().join("sanity");
    sim_train()
        .args([
            "-q",
            "train",
            "--env",
            "sanity-bandit",
            "--device",
            "cpu",
            "--run-dir",
        ])
        .arg(&sanity)
        .args([
            "--set",
            "train.num_envs=8",
            "--set",
            "train.rollout_steps=8",
            "--set",
            "train.total_steps=64",
        ])
        .assert()
        .success();
    sim_train()
        .args(["eval", "--run-dir", sanity.to_str().unwrap(), "--cache"])
        .arg(&cache)
        .assert()
        .failure()
        .stderr(predicate::str::contains("only market policies"));
}

#[test]
fn plain_rust_init_matches_libtorch_init() {
    // `network::fresh_parameters` (what `bench live` exports without libtorch) draws what
    // `Policy::new` draws and orthogonalizes in f64 instead of libtorch's f32 QR.
    use sim_train::bundle::TensorData;
    let shape = PolicyShape {
        obs_dim: 24,
        n_actions: 5,
        encoder: vec![64, 32],
        hidden: 48,
    };
    for seed in [1, 7] {
        let torch = sim_train::learn::export::policy_parameters(&Policy::new(
            shape.clone(),
            Device::Cpu,
            seed,
        ));
        let plain = sim_train::learn::network::fresh_parameters(&shape, seed);
        assert_eq!(
            torch.keys().collect::<Vec<_>>(),
            plain.keys().collect::<Vec<_>>()
        );
        for (name, (shape_t, t)) in &torch {
            let (shape_p, p) = &plain[name];
            assert_eq!(shape_t, shape_p, "{name}");
            let (TensorData::F32(t), TensorData::F32(p)) = (t, p) else {
                panic!("{name} is not f32");
            };
            let worst = t
                .iter()
                .zip(p)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(worst < 1e-5, "seed {seed} {name}: differs by {worst}");
        }
    }
}

#[test]
fn policy_init_is_orthogonal_with_cleanrl_gains_and_seeded() {
    let shape = PolicyShape {
        obs_dim: 24,
        n_actions: 5,
        encoder: vec![128],
        hidden: 128,
    };
    let p = Policy::new(shape.clone(), Device::Cpu, 7);
    let params: std::collections::HashMap<String, Tensor> =
        p.named_parameters().into_iter().collect();
    // Fewer rows than columns: W Wᵀ = gain² I; more: Wᵀ W = gain² I.
    for (name, gain) in [
        ("encoder0.weight", std::f64::consts::SQRT_2),
        ("lstm.weight_ih", 1.0),
        ("lstm.weight_hh", 1.0),
        ("actor.weight", 0.01),
        ("critic.weight", 1.0),
    ] {
        let w = &params[name];
        let (r, c) = (w.size()[0], w.size()[1]);
        let gram = if r < c { w.mm(&w.tr()) } else { w.tr().mm(w) };
        let eye = Tensor::eye(r.min(c), (Kind::Float, Device::Cpu)) * (gain * gain);
        let err = (gram - eye).abs().max().double_value(&[]);
        assert!(err < 1e-4 * gain * gain + 1e-6, "{name}: {err}");
    }
    for name in ["lstm.bias_ih", "actor.bias", "critic.bias"] {
        assert_eq!(params[name].abs().sum(Kind::Float).double_value(&[]), 0.0);
    }
    let again = Policy::new(shape.clone(), Device::Cpu, 7);
    let other = Policy::new(shape, Device::Cpu, 8);
    for ((n, a), ((_, b), (_, c))) in p.named_parameters().iter().zip(
        again
            .named_parameters()
            .iter()
            .zip(other.named_parameters().iter()),
    ) {
        assert!(a.equal(b), "{n} differs for the same seed");
        if n.ends_with("weight") || n.ends_with("weight_ih") || n.ends_with("weight_hh") {
            assert!(!a.equal(c), "{n} equal for another seed");
        }
    }
}

/// TensorBoard's own reader (PyPI `tensorboard`, installed in the project venv by
/// scripts/setup.sh) loads a run's `tb/` folder, across a resume, with every scalar of
/// `metrics.jsonl` under its CleanRL tag at its global step: the same values at f32, and
/// the updates redone after the resume once, not twice.
#[test]
fn tensorboard_reads_the_runs_scalars() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = manifest.join(".venv/bin/python");
    let has_tensorboard = std::process::Command::new(&python)
        .args(["-c", "import tensorboard"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_tensorboard {
        assert!(
            std::env::var_os("SIM_TRAIN_REQUIRE_TENSORBOARD").is_none(),
            "SIM_TRAIN_REQUIRE_TENSORBOARD is set, but {} cannot import tensorboard (scripts/setup.sh torch installs it)",
            python.display()
        );
        eprintln!(
            "SKIP tensorboard_reads_the_runs_scalars: no tensorboard in {} (scripts/setup.sh torch)",
            python.display()
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let r = sanity_config(
        "sanity-bandit",
        &[
            "train.num_envs=16",
            "train.rollout_steps=8",
            "train.total_steps=640",
            "train.checkpoint_every=2",
        ],
    );
    // 5 updates, checkpoints every 2. The first session logs 4 updates and dies after
    // checkpoint 2 (as if killed before checkpoint 4 was written: `latest` names update 2
    // again), the resume redoes updates 3 and 4 and runs 5: each is logged once.
    run(&r, &dir, false, None, Some(4)).unwrap();
    let checkpoints = dir.join("checkpoints");
    std::fs::remove_dir_all(checkpoints.join("update-00000004")).unwrap();
    std::fs::write(checkpoints.join("latest"), "update-00000002").unwrap();
    let s = run(&r, &dir, true, None, None).unwrap();
    assert_eq!(s.resumed_from_update, Some(2));
    let files = std::fs::read_dir(dir.join("tb")).unwrap().count();
    assert_eq!(files, 2, "one event file per session");
    let out = std::process::Command::new(&python)
        .arg(manifest.join("scripts/tensorboard_scalars.py"))
        .arg(dir.join("tb"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let records: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 5);
    let mut tags = 0;
    for key in sim_train::learn::run::METRIC_KEYS {
        let Some(tag) = sim_train::learn::run::tensorboard_tag(key) else {
            assert_eq!(*key, "global_step");
            continue;
        };
        let expected: Vec<(i64, f32)> = records
            .iter()
            .filter_map(|r| {
                let v = r[*key].as_f64()?;
                Some((r["global_step"].as_f64().unwrap() as i64, v as f32))
            })
            .collect();
        let got: Vec<(i64, f32)> = read[tag]
            .as_array()
            .map(|points| {
                points
                    .iter()
                    .map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap() as f32))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(got, expected, "{key} as {tag}");
        tags += usize::from(!expected.is_empty());
    }
    assert!(tags >= 15, "only {tags} tags had points");
    for tag in [
        "charts/learning_rate",
        "charts/SPS",
        "charts/episodic_return",
        "losses/value_loss",
        "losses/policy_loss",
        "losses/entropy",
        "losses/approx_kl",
        "losses/clipfrac",
    ] {
        assert!(read.get(tag).is_some(), "no {tag} in {read}");
    }
}

/// The parameters live in one buffer with the LSTM's four first, in cuDNN's layout
/// (`weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`, back to back from the buffer's
/// start), and one Adam step over the buffer is PyTorch's formula for every parameter.
#[test]
fn parameters_share_one_buffer_and_adam_steps_it_as_per_parameter_adam() {
    use sim_train::learn::ppo::Adam;
    let shape = PolicyShape {
        obs_dim: 24,
        n_actions: 5,
        encoder: vec![64],
        hidden: 32,
    };
    let p = Policy::new(shape, Device::Cpu, 3);
    let params: std::collections::HashMap<String, Tensor> =
        p.named_parameters().into_iter().collect();
    let base = p.flat().data_ptr() as usize;
    let mut at = base;
    for name in [
        "lstm.weight_ih",
        "lstm.weight_hh",
        "lstm.bias_ih",
        "lstm.bias_hh",
    ] {
        assert_eq!(
            params[name].data_ptr() as usize,
            at,
            "{name} is not where cuDNN expects it"
        );
        at += 4 * params[name].numel();
    }
    let total: usize = params.values().map(|t| t.numel()).sum();
    assert_eq!(
        p.flat().numel(),
        total,
        "one buffer holds every parameter, once"
    );

    let mut adam = Adam::new(&p, 1e-5);
    let obs = Tensor::randn([7, 3, 24], (Kind::Float, Device::Cpu));
    let (out, _) = p.sequence(&obs, &[0.0; 21], &LstmState::zeros(3, 32, Device::Cpu));
    (out.values.square().sum(Kind::Float) + out.log_probs.select(-1, 2).sum(Kind::Float))
        .backward();
    let before: Vec<(String, Tensor, Tensor)> = p
        .named_parameters()
        .into_iter()
        .map(|(n, t)| (n, t.detach().copy(), t.grad().copy()))
        .collect();
    let lr = 3e-3;
    adam.apply(lr);
    for (name, p0, g) in before {
        // PyTorch's Adam after one step from zero moments.
        let (b1, b2) = (0.9f64, 0.999f64);
        let m = &g * (1.0 - b1);
        let v = &g * &g * (1.0 - b2);
        let want = &p0 - &m / (v.sqrt() / (1.0 - b2).sqrt() + 1e-5) * (lr / (1.0 - b1));
        let got = &params[&name];
        let err = (got - &want).abs().max().double_value(&[]);
        assert!(err <= 1e-7, "{name}: off by {err}");
        assert!(
            got.ne_tensor(&p0).any().int64_value(&[]) != 0,
            "{name} did not move"
        );
    }
}

/// Training on a cache whose cross-sectional features were computed against another
/// benchmark than the config names is refused before the run starts: live would compute
/// them against the configured one.
#[test]
fn a_cache_of_another_benchmark_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = small_market_cache(tmp.path()); // built with the default benchmark, SPY
    let r = market_config(&["features.benchmark=\"QQQ\""]);
    let err = train(
        &r,
        &RunOptions {
            run_dir: tmp.path().join("run"),
            resume: false,
            cache: Some(cache),
            index: None,
            stop_after: None,
            progress: false,
            init_from: None,
        },
    )
    .map(|_| ())
    .expect_err("trained on a cache of another benchmark");
    let msg = err.to_string();
    assert!(
        msg.contains("features.benchmark SPY") && msg.contains("says QQQ"),
        "{msg}"
    );
    assert!(!tmp.path().join("run").exists(), "the run dir was created");
}
