//! Universes larger than the resident days (`preload.resident_days`): drawn day-major
//! through a moving window whose days are loaded as it reaches them, in memory bounded by
//! the window, not the universe; the same draws as the window over days loaded up front;
//! every day has its turn; the CPU engine resumes such a run exactly; the GPU engine's
//! slots work over it.

mod common;

use sim_train::env::gpu::{GpuApi, GpuOptions};
use sim_train::env::{
    Backend, Buffers, DayData, DaySelection, EnvOptions, EnvParams, Envs, EpisodeSource,
    PreloadConfig, StartTimes, load_days,
};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

/// Start times (seconds after midnight) every synthetic 1 m day has bars after.
const TIMES: [u32; 3] = [34_200, 37_800, 45_000];

/// 8 symbols × 10 days of 1 m bars: 80 symbol-days.
fn universe(dir: &Path) -> PathBuf {
    common::synth_cache(
        dir,
        &["synth.symbols=8", "synth.days=10", "synth.bar=\"1m\""],
    )
}

fn params() -> Arc<EnvParams> {
    Arc::new(
        EnvParams::from_config(&sim_train::env::EnvConfig {
            max_episode_steps: 40,
            ..Default::default()
        })
        .unwrap(),
    )
}

fn preload(resident_days: usize) -> PreloadConfig {
    PreloadConfig {
        workers: 1,
        min_depth: 2,
        max_depth: 4,
        slots: 4,
        resident_days,
        window_episodes: 25,
        ..Default::default()
    }
}

fn over(cache: &Path, p: &Arc<EnvParams>, cfg: &PreloadConfig) -> sim_train::env::CacheUniverse {
    StartTimes::over_cache(cache, &DaySelection::default(), p, &TIMES, 9, cfg).unwrap()
}

#[test]
fn a_large_universe_is_drawn_day_major_with_only_the_window_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let cache = universe(dir.path());
    let p = params();
    let cfg = preload(6);
    let u = over(&cache, &p, &cfg);
    assert_eq!(u.days, 80);
    assert!(u.loaded.is_empty(), "nothing is loaded up front");
    let mut s = u.source;
    assert_eq!(s.num_days(), Some(80));

    // 16 environments, each holding its episode's day as an engine does; every day ever
    // handed out is watched through a weak reference.
    let n = 16;
    let mut held: Vec<Option<Arc<DayData>>> = vec![None; n];
    let mut watched: Vec<Weak<DayData>> = Vec::new();
    let mut seen = HashSet::new();
    let mut most_alive = 0;
    for round in 0..400 {
        let mut at_once = HashSet::new();
        for k in 0..25 {
            let env = (round * 7 + k) % n;
            let e = s.next_episode(env).unwrap();
            at_once.insert((e.day.symbol.clone(), e.day.date));
            seen.insert((e.day.symbol.clone(), e.day.date));
            watched.push(Arc::downgrade(&e.day));
            held[env] = Some(e.day);
        }
        // Between two moves, draws come from the window's days only.
        assert!(
            at_once.len() <= 6,
            "{} days between two moves",
            at_once.len()
        );
        s.move_window();
        watched.retain(|w| w.strong_count() > 0);
        let alive: HashSet<*const DayData> = watched.iter().map(|w| w.as_ptr()).collect();
        most_alive = most_alive.max(alive.len());
    }
    assert_eq!(seen.len(), 80, "every day of the universe has its turn");
    // In memory at once: the days the environments hold, the window (with the next day,
    // and the day that just left it until the next draw), and the preloader's slots;
    // never the universe.
    let bound = n + 6 + 2 + cfg.slots;
    assert!(
        most_alive <= bound,
        "{most_alive} days in memory at once, more than {bound}"
    );
    let stats = s
        .preload_stats()
        .expect("a day-major universe loads in the background");
    assert!(stats.loads >= 80, "{stats:?}");
}

#[test]
fn the_window_draws_the_same_episodes_as_over_days_loaded_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let cache = universe(dir.path());
    let p = params();
    let mut lazy = over(&cache, &p, &preload(5)).source;
    let days = load_days(&cache, &DaySelection::default(), &p).unwrap();
    let mut eager = StartTimes::new(&days, &TIMES, 9).unwrap();
    assert!(eager.limit_days(5).unwrap());
    for k in 0..3_000usize {
        let (a, b) = (
            lazy.next_episode(k % 11).unwrap(),
            eager.next_episode(k % 11).unwrap(),
        );
        assert_eq!(
            (&a.day.symbol, a.day.date, a.start_row),
            (&b.day.symbol, b.day.date, b.start_row),
            "draw {k}"
        );
        if k % 17 == 16 {
            lazy.move_window();
            eager.move_window();
        }
    }
    // Days loaded up front fit in `resident_days`: no window at all, as before.
    let u = over(&cache, &p, &preload(80));
    assert_eq!(u.loaded.len(), 80);
    assert!(u.source.preload_stats().is_none());
}

/// Steps `envs` with the same pseudo-random actions for `steps`, returning every output.
fn run(envs: &mut Envs, steps: usize, from: usize) -> Vec<(Vec<f32>, Vec<f32>, Vec<u8>)> {
    let n = envs.num_envs();
    let mut b = Buffers::new(n, envs.obs_dim());
    let actions = envs.params().actions.len() as u64;
    (from..from + steps)
        .map(|t| {
            let a: Vec<u8> = (0..n)
                .map(|i| ((t as u64 * 2_654_435_761 + i as u64 * 40_503) % actions) as u8)
                .collect();
            envs.step(&a, &mut b.out()).unwrap();
            (b.obs.clone(), b.rewards.clone(), b.terminated.clone())
        })
        .collect()
}

fn cpu_envs(cache: &Path, p: &Arc<EnvParams>, n: usize) -> Envs {
    let cfg = preload(6);
    Envs::open(
        Backend::Cpu,
        p.clone(),
        n,
        Box::new(over(cache, p, &cfg).source),
        EnvOptions {
            window_episodes: Some(cfg.window_episodes),
            ..Default::default()
        },
    )
    .unwrap()
}

#[test]
fn the_cpu_engine_moves_the_window_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let cache = universe(dir.path());
    let p = params();
    let n = 24;
    let mut a = cpu_envs(&cache, &p, n);
    run(&mut a, 150, 0);
    let snap = a.save_state().unwrap();
    let expect = run(&mut a, 300, 150);
    let traded: HashSet<_> = a
        .drain_finished()
        .unwrap()
        .into_iter()
        .map(|e| (e.symbol, e.date))
        .collect();
    assert!(
        traded.len() > 12,
        "the window moved on: {} days traded",
        traded.len()
    );

    let mut b = cpu_envs(&cache, &p, n);
    let load = |s: &str, d: chrono::NaiveDate| {
        let sel = DaySelection {
            symbols: Some(vec![s.to_string()]),
            from: Some(d),
            to: Some(d),
        };
        load_days(&cache, &sel, &p).ok()?.pop()
    };
    b.load_state(&snap, &load).unwrap();
    let got = run(&mut b, 300, 150);
    assert!(got == expect, "the resumed run differs");
}

/// The GPU engine over a day-major universe: its day slots hold the window (it moves the
/// window as slots free up), and every day has its turn.
#[test]
fn the_gpu_engine_streams_a_day_major_universe_through_its_slots() {
    let test = "the_gpu_engine_streams_a_day_major_universe_through_its_slots";
    if common::gpu_available(GpuApi::CudaHost, test).is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cache = universe(dir.path());
    let p = params();
    let n = 32;
    let opts = EnvOptions {
        gpu: GpuOptions {
            queue_len: Some(4),
            day_slots: Some(8),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut g = Envs::open(
        Backend::CudaHost,
        p.clone(),
        n,
        Box::new(over(&cache, &p, &preload(6)).source),
        opts,
    )
    .unwrap();
    let mut traded = HashSet::new();
    let mut b = Buffers::new(n, p.obs_dim());
    for t in 0..6_000u32 {
        let a: Vec<u8> = (0..n as u32).map(|i| ((t * 7 + i) % 5) as u8).collect();
        g.step(&a, &mut b.out()).unwrap();
        traded.extend(
            g.drain_finished()
                .unwrap()
                .into_iter()
                .map(|e| (e.symbol, e.date)),
        );
    }
    assert_eq!(traded.len(), 80, "every day has its turn through 8 slots");
}
