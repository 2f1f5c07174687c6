//! A GPU backend stepped side by side with the CPU engine, every output compared bit for
//! bit: the check behind `tests/gpu_conformance.rs` and `sim-train doctor` (which runs it
//! on whatever backends the host has, the NVIDIA card included).
//!
//! Both engines get the same episodes ([`StartTimes`] draws depend only on the seed, the
//! environment and the draw number) and the same uniformly random actions; after every
//! step the observations, rewards, terminated and truncated flags and the final
//! observations of truncated episodes must be equal to the bit, and at the end the
//! finished-episode summaries and counts.

use super::params::EnvConfig;
use super::{Buffers, CpuEnvs, DayData, EnvParams, Envs, StartTimes};
use rand::{Rng, SeedableRng};
use std::sync::Arc;

/// Episode start times (seconds after midnight, New York) of the checks: the open, two
/// mid-session times, and two minutes before the close (episodes of two bars on 1 m days).
pub const START_TIMES: [u32; 4] = [34_200, 36_000, 45_000, 57_480];

/// The episode source of both engines.
pub fn source(days: &[Arc<DayData>]) -> crate::Result<StartTimes> {
    StartTimes::new(days, &START_TIMES, 11)
}

/// The environment settings the checks run, each exercising other parts of the step:
/// every reward kind, order latency, cancelled remainders, a tight participation cap, the
/// daily loss limit, truncation, a feature subset, long-only with another action table.
pub fn variants() -> Vec<(&'static str, EnvConfig)> {
    use super::params::{Remainder, RewardKind};
    let base = || EnvConfig {
        start_times: ["09:30:00", "10:00:00", "12:30:00", "15:58:00"]
            .map(String::from)
            .to_vec(),
        ..EnvConfig::default()
    };
    let with = |edit: &dyn Fn(&mut EnvConfig)| {
        let mut c = base();
        edit(&mut c);
        c
    };
    vec![
        ("pnl", base()),
        (
            "hybrid+latency+cancel",
            with(&|c| {
                c.reward.kind = RewardKind::Hybrid;
                c.execution.latency_ms = 1_700;
                c.execution.remainder = Remainder::Cancel;
                c.execution.participation = 0.02;
            }),
        ),
        (
            "dsr+loss-limit+truncation",
            with(&|c| {
                c.reward.kind = RewardKind::Dsr;
                c.daily_loss_limit = 0.002;
                c.max_episode_steps = 300;
                c.max_position_usd = 400_000.0;
            }),
        ),
        (
            "sharpe+features+long-only",
            with(&|c| {
                c.reward.kind = RewardKind::Sharpe;
                c.reward.sharpe_window = 17;
                c.features = vec!["ret_1".into(), "vwap_dev".into(), "halted".into()];
                c.actions = vec![0.0, 0.25, 1.0];
                c.allow_short = false;
                c.min_order_frac = 0.0;
            }),
        ),
    ]
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// The first index where `a` and `b` differ in any bit.
fn first_difference(a: &[f32], b: &[f32]) -> Option<usize> {
    if a.len() != b.len() {
        return Some(a.len().min(b.len()));
    }
    a.iter()
        .zip(b)
        .position(|(x, y)| x.to_bits() != y.to_bits())
}

/// Steps a fresh CPU engine and `gpu` (any backend, built over `days` with [`source`]) side by side for
/// `steps` steps with random actions drawn from `seed`. Returns how many episodes ended,
/// or the first difference (or error) as one line naming `label`, the step and the
/// environment.
pub fn compare(
    label: &str,
    p: &Arc<EnvParams>,
    days: &[Arc<DayData>],
    gpu: &mut Envs,
    steps: usize,
    seed: u64,
) -> Result<usize, String> {
    let err = |what: &str, e: crate::Error| format!("{label}: {what}: {e}");
    let n = gpu.num_envs();
    let d = p.obs_dim();
    let src = source(days).map_err(|e| err("episode source", e))?;
    let mut cpu = CpuEnvs::new(p.clone(), n, Box::new(src)).map_err(|e| err("cpu engine", e))?;
    let (mut cb, mut gb) = (Buffers::new(n, d), Buffers::new(n, d));
    cpu.observe(&mut cb.out())
        .map_err(|e| err("cpu observe", e))?;
    gpu.observe(&mut gb.out()).map_err(|e| err("observe", e))?;
    if let Some(j) = first_difference(&cb.obs, &gb.obs) {
        return Err(format!(
            "{label}: first observations differ at env {} (cpu {}, {})",
            j / d.max(1),
            cb.obs[j],
            gb.obs.get(j).copied().unwrap_or(f32::NAN)
        ));
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut ended = 0;
    let (mut cpu_log, mut gpu_log) = (Vec::new(), Vec::new());
    let mut actions = vec![0u8; n];
    for step in 0..steps {
        for a in actions.iter_mut() {
            *a = rng.random_range(0..p.actions.len() as u8);
        }
        cpu.step(&actions, &mut cb.out())
            .map_err(|e| err(&format!("cpu step {step}"), e))?;
        gpu.step(&actions, &mut gb.out())
            .map_err(|e| err(&format!("step {step}"), e))?;
        if let Some(j) = first_difference(&cb.obs, &gb.obs) {
            let i = j / d;
            return Err(format!(
                "{label}: the observation of env {i} after step {step} differs: cpu {:?}, {:?}",
                &cb.obs[i * d..(i + 1) * d],
                &gb.obs[i * d..(i + 1) * d]
            ));
        }
        if let Some(i) = first_difference(&cb.rewards, &gb.rewards) {
            return Err(format!(
                "{label}: the reward of env {i} after step {step} differs: cpu {:e}, {:e} (bits {:#x} vs {:#x})",
                cb.rewards[i],
                gb.rewards[i],
                cb.rewards[i].to_bits(),
                gb.rewards[i].to_bits()
            ));
        }
        for (what, c, g) in [
            ("terminated", &cb.terminated, &gb.terminated),
            ("truncated", &cb.truncated, &gb.truncated),
        ] {
            if let Some(i) = c.iter().zip(g.iter()).position(|(a, b)| a != b) {
                return Err(format!(
                    "{label}: env {i} after step {step}: {what} is {} on the cpu, {} here",
                    c[i], g[i]
                ));
            }
        }
        if gb.truncated.iter().any(|&t| t != 0) {
            let fin = gpu.final_obs();
            for i in (0..n).filter(|&i| gb.truncated[i] != 0) {
                let r = i * d..(i + 1) * d;
                if bits(&cpu.final_obs()[r.clone()]) != bits(&fin[r.clone()]) {
                    return Err(format!(
                        "{label}: the final observation of env {i} at step {step} differs: cpu {:?}, {:?}",
                        &cpu.final_obs()[r.clone()],
                        &fin[r]
                    ));
                }
            }
        }
        ended += gb
            .terminated
            .iter()
            .chain(&gb.truncated)
            .filter(|&&f| f != 0)
            .count();
        if step % 97 == 0 {
            cpu_log.extend(cpu.drain_finished());
            gpu_log.extend(gpu.drain_finished().map_err(|e| err("episode log", e))?);
        }
    }
    cpu_log.extend(cpu.drain_finished());
    gpu_log.extend(gpu.drain_finished().map_err(|e| err("episode log", e))?);
    if ended == 0 {
        return Err(format!("{label}: no episode ended in {steps} steps"));
    }
    if cpu_log.len() != ended {
        return Err(format!(
            "{label}: {ended} episodes ended but the cpu engine logged {}",
            cpu_log.len()
        ));
    }
    if let Some(k) =
        (0..cpu_log.len().max(gpu_log.len())).find(|&k| cpu_log.get(k) != gpu_log.get(k))
    {
        return Err(format!(
            "{label}: episode summary {k} of {} differs: cpu {:?}, {:?}",
            cpu_log.len(),
            cpu_log.get(k),
            gpu_log.get(k)
        ));
    }
    if gpu.episodes() != cpu.episodes() {
        return Err(format!(
            "{label}: {} episodes drawn, the cpu engine drew {}",
            gpu.episodes(),
            cpu.episodes()
        ));
    }
    Ok(ended)
}
