//! Criterion benches of the learner's pieces: GAE over a rollout (T = 64 × N = 1024, host
//! f32) and the policy's forward pass (one rollout step for 1024 environments; a training
//! minibatch of 256 sequences × 64 steps, forward and backward), on the CPU.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sim_train::learn::gae::{GaeInput, gae};
use sim_train::learn::policy::{LstmState, Policy, PolicyShape};
use std::hint::black_box;
use tch::{Device, Kind, Tensor};

const T: usize = 64;
const N: usize = 1024;
const OBS: usize = 24;

fn bench_gae(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let len = T * N;
    let r: Vec<f32> = (0..len).map(|_| rng.random_range(-1.0..1.0)).collect();
    let v: Vec<f32> = (0..len).map(|_| rng.random_range(-1.0..1.0)).collect();
    let term: Vec<u8> = (0..len)
        .map(|_| (rng.random_range(0..390) == 0) as u8)
        .collect();
    let trunc = vec![0u8; len];
    let fv = vec![0f32; len];
    let next = vec![0.5f32; N];
    let mut g = c.benchmark_group("learn");
    g.throughput(Throughput::Elements(len as u64));
    g.bench_function("gae/64x1024", |b| {
        b.iter(|| {
            black_box(gae(&GaeInput {
                n: N,
                rewards: &r,
                values: &v,
                terminated: &term,
                truncated: &trunc,
                final_values: &fv,
                next_value: &next,
                gamma: 0.99,
                lambda: 0.95,
            }))
        })
    });
    g.finish();
}

fn policy() -> Policy {
    Policy::new(
        PolicyShape {
            obs_dim: OBS,
            n_actions: 5,
            encoder: vec![128],
            hidden: 128,
        },
        Device::Cpu,
        1,
    )
}

fn bench_policy(c: &mut Criterion) {
    let p = policy();
    let mut g = c.benchmark_group("learn");
    let obs = Tensor::randn([N as i64, OBS as i64], (Kind::Float, Device::Cpu));
    let first = vec![0f32; N];
    let state = LstmState::zeros(N, 128, Device::Cpu);
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("policy_step/1024", |b| {
        b.iter(|| black_box(tch::no_grad(|| p.step(&obs, &first, &state))))
    });
    let b_mb = 256;
    let seq = Tensor::randn([T as i64, b_mb, OBS as i64], (Kind::Float, Device::Cpu));
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    // Episode starts as often as in 1-minute market episodes (one in ~390 steps).
    let firsts: Vec<f32> = (0..T * b_mb as usize)
        .map(|_| (rng.random_range(0..390) == 0) as u8 as f32)
        .collect();
    let st = LstmState::zeros(b_mb as usize, 128, Device::Cpu);
    g.throughput(Throughput::Elements((T * b_mb as usize) as u64));
    g.sample_size(10);
    g.bench_function("policy_sequence_fwd_bwd/64x256", |b| {
        b.iter(|| {
            let (out, _) = p.sequence(&seq, &firsts, &st);
            let loss = out.values.sum(Kind::Float) + out.log_probs.sum(Kind::Float);
            loss.backward();
        })
    });
    g.finish();
}

/// One decision of one account (what eval and live do per bar): the pure-Rust forward of
/// an exported bundle against libtorch's single step, 24 observation fields, encoder
/// [128], LSTM 128, 5 actions.
fn bench_decision(c: &mut Criterion) {
    use sim_train::bundle::native::NativePolicy;
    use sim_train::bundle::{Bundle, Provenance};
    let resolved = sim_train::config::load(None, &[]).unwrap();
    let params = sim_train::env::EnvParams::from_config(&resolved.config.env).unwrap();
    let p = Policy::new(
        PolicyShape {
            obs_dim: params.obs_dim(),
            n_actions: params.actions.len(),
            encoder: vec![128],
            hidden: 128,
        },
        Device::Cpu,
        1,
    );
    let trained = Provenance {
        run_id: "bench".into(),
        run_dir: "bench".into(),
        checkpoint: "bench".into(),
        update: 0,
        global_step: 0,
        seed: 1,
    };
    let (manifest, tensors) = sim_train::learn::network::bundle_parts(
        &p.shape,
        sim_train::learn::export::policy_parameters(&p),
        None,
        &params,
        &resolved.config.env,
        trained,
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bundle");
    Bundle::write(&out, manifest, &tensors, &resolved.to_toml()).unwrap();
    let native = NativePolicy::from_bundle(&Bundle::open(&out).unwrap()).unwrap();
    let d = native.obs_dim;
    let raw: Vec<f32> = (0..d).map(|j| (j as f32 * 0.3).sin()).collect();
    let mut state = native.state();
    let mut log_probs = vec![0f32; native.n_actions];
    let mut g = c.benchmark_group("decision");
    g.throughput(Throughput::Elements(1));
    g.bench_function("native_step/1", |b| {
        b.iter(|| black_box(native.step(black_box(&raw), false, &mut state, &mut log_probs)))
    });
    tch::set_num_threads(1);
    let x = Tensor::from_slice(&raw).view([1, d as i64]);
    let st = LstmState::zeros(1, 128, Device::Cpu);
    g.bench_function("libtorch_step/1", |b| {
        b.iter(|| black_box(tch::no_grad(|| p.step(&x, &[0.0], &st))))
    });
    g.finish();
}

criterion_group!(benches, bench_gae, bench_policy, bench_decision);
criterion_main!(benches);
