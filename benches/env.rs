//! Criterion benchmarks of the environment step on the CPU, over synthetic 1-second days
//! (`[synth]` generator, 8 symbols × 2 days, seed 42), default `[env]` config (19 feature
//! columns + 5 account fields), uniformly random actions drawn before timing:
//!
//! - `env/cpu_batch/{256,4096,16384}`: one batch step of N environments (rayon), env
//!   steps/s;
//! - `env/reference`: one step of the scalar reference environment, steps/s.
//!
//! Run: `cargo bench --bench env` (figures and dates: benches/NOTES.md). The end-to-end
//! figure with the bytes per step is `sim-train bench env --json`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sim_train::bench::random_actions;
use sim_train::env::{
    Buffers, CpuEnvs, DaySelection, EnvParams, Episode, ReferenceEnv, StartTimes, load_days,
};
use std::hint::black_box;
use std::sync::Arc;

fn setup() -> (
    tempfile::TempDir,
    Arc<EnvParams>,
    Vec<Arc<sim_train::env::DayData>>,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = sim_train::config::load(None, &[]).expect("default config");
    let (cache, _) =
        sim_train::bench::build_synthetic(&r, 8, 2, sim_train::bars::BarSize::S1, dir.path())
            .expect("synthetic cache");
    let params = Arc::new(EnvParams::from_config(&r.config.env).expect("env params"));
    let days = load_days(&cache, &DaySelection::default(), &params).expect("days");
    (dir, params, days)
}

fn bench_env(c: &mut Criterion) {
    let (_dir, params, days) = setup();
    let starts: Vec<u32> = (0..13).map(|i| 34_200 + i * 1_800).collect();
    let mut g = c.benchmark_group("env");
    for n in [256usize, 4096, 16384] {
        let source = StartTimes::new(&days, &starts, 7).expect("starts");
        let mut envs = CpuEnvs::new(params.clone(), n, Box::new(source)).expect("envs");
        let mut buf = Buffers::new(n, params.obs_dim());
        let pool = random_actions(n, 61, params.actions.len(), 0x9E37_79B9_7F4A_7C15);
        let mut k = 0;
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::new("cpu_batch", n), |b| {
            // On a pool thread, as a trainer calls it (see CpuEnvs::step).
            rayon::scope(|_| {
                b.iter(|| {
                    envs.step(&pool[k % pool.len()], &mut buf.out())
                        .expect("step");
                    k += 1;
                    envs.drain_finished();
                    black_box(&buf.obs);
                })
            })
        });
    }
    let start = days[0].start_row_at(34_200).expect("start");
    let episode = Episode {
        day: days[0].clone(),
        start_row: start,
    };
    let mut env = ReferenceEnv::new(params.clone(), episode.clone()).expect("env");
    let actions = random_actions(1, 4096, params.actions.len(), 0x9E37_79B9_7F4A_7C15);
    let mut k = 0;
    g.throughput(Throughput::Elements(1));
    g.bench_function("reference", |b| {
        b.iter(|| {
            let r = env.step(actions[k % 4096][0] as usize).expect("step");
            k += 1;
            if r.terminated || r.truncated {
                env = ReferenceEnv::new(params.clone(), episode.clone()).expect("env");
            }
            black_box(r)
        })
    });
    g.finish();
}

criterion_group!(benches, bench_env);
criterion_main!(benches);
