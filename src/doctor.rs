//! `sim-train doctor`: one command that says whether this host can run sim-train on its
//! GPU, and how fast. It is what travels to an NVIDIA host (the stripped
//! `sim-train-torch` alone) and the first thing to run there.
//!
//! In order, each step reported on stderr as it finishes and all of them in one JSON
//! report on stdout:
//! 1. **libtorch**: where it was loaded from, its version, whether it was built with CUDA
//!    and sees a device (the learner's side);
//! 2. **CUDA**: the driver and the first device, without compiling anything;
//! 3. **NVRTC**: which copy was found (`env::gpu::nvrtc`), the kernels compiled to PTX for
//!    `compute_90` and `compute_120` with every f64 operation rounded alone
//!    (`env::gpu::ptx::rounding_violations`) and to machine code for `sm_90` and `sm_120`
//!    (`cuda::compile_cubin`: ptxas accepts them), and the f64 census of the step entry;
//! 4. **wgpu**: the adapter;
//! 5. **conformance**: [`crate::env::conformance`] on every backend that opens here
//!    (`cuda`, `wgpu`, and `cuda-host`, the CUDA source compiled for this CPU): every
//!    variant on synthetic 1 m and 1 s days with halts, and recycled day slots, bit for
//!    bit against the CPU engine;
//! 6. with a CUDA device: `bench env --backend cuda` at [`Request::env_sizes`] and `bench
//!    train --device cuda --backend cuda` at [`Request::train_sizes`].
//!
//! Exit code 0 when everything ran and conformed on CUDA; 1 when a check failed (a
//! conformance difference, a benchmark error); 6 with one line when this host has no CUDA
//! device (the report still says what was found).

use crate::bench::{self, EnvBench, EnvBenchRequest, Machine, TrainBench, TrainBenchRequest};
use crate::config::Resolved;
use crate::env::gpu::{self, GpuApi, GpuOptions};
use crate::env::{Backend, EnvOptions, EnvParams, Envs, conformance, load_days};
use crate::error::{Error, Result};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// What the doctor runs.
#[derive(Clone, Debug)]
pub struct Request {
    /// Environments of each `bench env --backend cuda` run.
    pub env_sizes: Vec<usize>,
    /// Batch steps of each of them.
    pub env_steps: usize,
    /// Environments of each `bench train --device cuda --backend cuda` run.
    pub train_sizes: Vec<usize>,
    /// Environments and steps of each conformance case.
    pub conformance_envs: usize,
    pub conformance_steps: usize,
}

impl Default for Request {
    fn default() -> Self {
        Request {
            env_sizes: vec![65_536, 262_144],
            env_steps: 1_000,
            train_sizes: vec![4_096, 65_536],
            conformance_envs: 515,
            conformance_steps: 1_000,
        }
    }
}

/// One check: whether it passed (or the thing was found) and what it saw.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub ok: bool,
    pub detail: String,
}

impl Check {
    fn of(r: Result<String>) -> Check {
        match r {
            Ok(detail) => Check { ok: true, detail },
            Err(e) => Check {
                ok: false,
                detail: e.to_string(),
            },
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Nvrtc {
    pub found: Check,
    /// PTX for each architecture: compiled, and every f64 operation rounded alone.
    pub ptx: Vec<PtxCheck>,
    /// The f64 instructions of the step entry (PTX for `compute_120`).
    pub f64_census: Option<gpu::ptx::F64Census>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PtxCheck {
    pub arch: String,
    #[serde(flatten)]
    pub check: Check,
}

#[derive(Clone, Debug, Serialize)]
pub struct ConformanceCase {
    pub backend: &'static str,
    pub case: String,
    pub envs: usize,
    pub steps: usize,
    pub ok: bool,
    /// Episodes that ended, or the first difference.
    pub episodes: usize,
    pub error: Option<String>,
    pub seconds: f64,
}

/// A benchmark's figures or why it did not run.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum Measured<T> {
    Ran(T),
    Failed { envs: usize, error: String },
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub doctor: &'static str,
    pub version: &'static str,
    pub date: String,
    pub machine: Machine,
    pub libtorch: Check,
    pub cuda: Check,
    pub nvrtc: Nvrtc,
    pub wgpu: Check,
    pub conformance: Vec<ConformanceCase>,
    pub bench_env: Vec<Measured<EnvBench>>,
    pub bench_train: Vec<Measured<TrainBench>>,
    /// One line: what this host can do.
    pub verdict: String,
    pub exit_code: i32,
}

/// libtorch: its folder, version, CUDA build and devices.
fn libtorch() -> Result<String> {
    let dir = gpu::nvrtc::loaded_libtorch_dir();
    let version = dir
        .as_deref()
        .and_then(|d| std::fs::read_to_string(d.parent()?.join("version.py")).ok())
        .and_then(|v| {
            v.lines()
                .find(|l| l.starts_with("__version__"))
                .and_then(|l| l.split(['\'', '"']).nth(1).map(str::to_string))
        })
        .unwrap_or_else(|| "version unknown".into());
    Ok(format!(
        "PyTorch {version} at {}; CUDA usable: {}; CUDA devices: {}{}",
        dir.map_or_else(|| "?".into(), |d| d.display().to_string()),
        tch::utils::has_cuda(),
        tch::Cuda::device_count(),
        if tch::Cuda::cudnn_is_available() {
            ", cuDNN available"
        } else {
            ""
        }
    ))
}

#[cfg(not(feature = "cuda"))]
fn nvrtc() -> Nvrtc {
    Nvrtc {
        found: Check::of(Err(no_cuda_feature())),
        ptx: Vec::new(),
        f64_census: None,
    }
}

#[cfg(not(feature = "cuda"))]
fn no_cuda_feature() -> Error {
    Error::Device("this binary was built without the cuda feature".into())
}

#[cfg(feature = "cuda")]
fn cuda_probe() -> Result<String> {
    gpu::cuda::probe()
}

#[cfg(not(feature = "cuda"))]
fn cuda_probe() -> Result<String> {
    Err(no_cuda_feature())
}

#[cfg(feature = "cuda")]
fn nvrtc() -> Nvrtc {
    let found = Check::of(gpu::cuda::compile_ptx(None).map(|_| {
        format!(
            "NVRTC {} ({})",
            gpu::cuda::nvrtc_version().unwrap_or_default(),
            gpu::nvrtc::loaded_path().map_or_else(|| "?".into(), |p| p.display().to_string())
        )
    }));
    let mut census = None;
    let ptx = ["90", "120"]
        .iter()
        .map(|&cc| {
            let arch = format!("compute_{cc}");
            let r = gpu::cuda::compile_ptx(Some(&arch)).and_then(|ptx| {
                let bad = gpu::ptx::rounding_violations(&ptx);
                if !bad.is_empty() {
                    return Err(Error::Device(format!(
                        "{} f64 operations not rounded alone, first: {}",
                        bad.len(),
                        bad[0]
                    )));
                }
                if cc == "120" {
                    census = gpu::ptx::f64_census(&ptx, "step");
                }
                let cubin = gpu::cuda::compile_cubin(&format!("sm_{cc}"))?;
                Ok(format!(
                    "{} bytes of PTX, every f64 operation rounded alone; machine code for sm_{cc}: {} bytes",
                    ptx.len(),
                    cubin.len()
                ))
            });
            PtxCheck {
                arch,
                check: Check::of(r),
            }
        })
        .collect();
    Nvrtc {
        found,
        ptx,
        f64_census: census,
    }
}

/// Synthetic days with halts and momentum days for the conformance cases (3 symbols × 3
/// days of `bar`), in `dir`.
fn conformance_cache(
    resolved: &Resolved,
    bar: crate::bars::BarSize,
    dir: &Path,
) -> Result<std::path::PathBuf> {
    let mut r = resolved.clone();
    r.config.synth.halt_prob = 0.5;
    r.config.synth.momentum_share = 0.5;
    Ok(bench::build_synthetic(&r, 3, 3, bar, dir)?.0)
}

/// Every conformance case on `api`.
fn conform(
    api: GpuApi,
    req: &Request,
    caches: &[(&str, std::path::PathBuf)],
    progress: &dyn Fn(&str),
) -> Result<Vec<ConformanceCase>> {
    let mut out = Vec::new();
    let mut run =
        |case: String, p: Arc<EnvParams>, cache: &Path, n: usize, opts: GpuOptions| -> Result<()> {
            let days = load_days(cache, &crate::env::DaySelection::default(), &p)?;
            let t = Instant::now();
            let r = Envs::open(
                api.into(),
                p.clone(),
                n,
                Box::new(conformance::source(&days)?),
                EnvOptions {
                    gpu: opts,
                    ..Default::default()
                },
            )
            .map_err(|e| format!("{case}: {e}"))
            .and_then(|mut g| {
                conformance::compare(&case, &p, &days, &mut g, req.conformance_steps, 5)
            });
            let c = ConformanceCase {
                backend: api.name(),
                case,
                envs: n,
                steps: req.conformance_steps,
                ok: r.is_ok(),
                episodes: *r.as_ref().unwrap_or(&0),
                error: r.err(),
                seconds: t.elapsed().as_secs_f64(),
            };
            progress(&format!(
                "conformance {} {}: {}",
                c.backend,
                c.case,
                match &c.error {
                    None => format!("bit for bit, {} episodes, {:.1} s", c.episodes, c.seconds),
                    Some(e) => format!("FAILED: {e}"),
                }
            ));
            out.push(c);
            Ok(())
        };
    for (bar, cache) in caches {
        for (label, cfg) in conformance::variants() {
            let p = Arc::new(EnvParams::from_config(&cfg).map_err(Error::Config)?);
            let opts = GpuOptions {
                queue_len: Some(4),
                ..Default::default()
            };
            run(
                format!("{label} {bar}"),
                p,
                cache,
                req.conformance_envs,
                opts,
            )?;
        }
    }
    // Fewer day slots than days: slots recycled as episodes move on.
    let (_, cache) = &caches[0];
    let mut cfg = conformance::variants().remove(0).1;
    cfg.max_episode_steps = 25;
    let p = Arc::new(EnvParams::from_config(&cfg).map_err(Error::Config)?);
    let (n, q) = (2, 2);
    let opts = GpuOptions {
        queue_len: Some(q),
        day_slots: Some(n * (q + 1)),
        ..Default::default()
    };
    run("recycled day slots".into(), p, cache, n, opts)?;
    Ok(out)
}

/// Runs the doctor; `progress` gets one line per finished step.
pub fn run(resolved: &Resolved, req: &Request, progress: &dyn Fn(&str)) -> Result<Report> {
    let show = |what: &str, c: &Check| {
        progress(&format!(
            "{what}: {}{}",
            if c.ok { "" } else { "NOT AVAILABLE: " },
            c.detail
        ))
    };
    let libtorch = Check::of(libtorch());
    show("libtorch", &libtorch);
    let cuda = Check::of(cuda_probe());
    show("CUDA", &cuda);
    let nvrtc = nvrtc();
    show("NVRTC", &nvrtc.found);
    for c in &nvrtc.ptx {
        show(&format!("PTX {}", c.arch), &c.check);
    }
    if let Some(c) = &nvrtc.f64_census {
        progress(&format!(
            "f64 census of the step entry (static, compute_120): {} instructions: {} add/sub/mul, {} div, {} sqrt, {} compare, {} convert, {} other",
            c.total(),
            c.arith,
            c.div,
            c.sqrt,
            c.compare,
            c.convert,
            c.other
        ));
    }
    let wgpu = Check::of(gpu::open_device(GpuApi::Wgpu).map(|d| d.describe()));
    show("wgpu", &wgpu);

    let tmp = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let caches = [
        (
            "1m",
            conformance_cache(resolved, crate::bars::BarSize::M1, &tmp.path().join("m1"))?,
        ),
        (
            "1s",
            conformance_cache(resolved, crate::bars::BarSize::S1, &tmp.path().join("s1"))?,
        ),
    ];
    let mut apis = Vec::new();
    if cuda.ok && nvrtc.found.ok {
        apis.push(GpuApi::Cuda);
    }
    if wgpu.ok {
        apis.push(GpuApi::Wgpu);
    }
    apis.push(GpuApi::CudaHost);
    let mut conformance = Vec::new();
    for api in apis {
        match conform(api, req, &caches, progress) {
            Ok(c) => conformance.extend(c),
            Err(e) => {
                progress(&format!("conformance {}: FAILED: {e}", api.name()));
                conformance.push(ConformanceCase {
                    backend: api.name(),
                    case: "setup".into(),
                    envs: 0,
                    steps: 0,
                    ok: false,
                    episodes: 0,
                    error: Some(e.to_string()),
                    seconds: 0.0,
                });
            }
        }
    }

    let can_cuda = cuda.ok && nvrtc.found.ok;
    let mut bench_env = Vec::new();
    let mut bench_train = Vec::new();
    if can_cuda {
        let b = &resolved.config.bench;
        let (cache, _) = bench::build_synthetic(resolved, b.symbols, b.days, b.bar, tmp.path())?;
        for &envs in &req.env_sizes {
            let r = bench::bench_env(
                resolved,
                &EnvBenchRequest {
                    backend: Backend::Cuda,
                    envs,
                    steps: req.env_steps,
                    obs_features: None,
                    cache: Some(cache.clone()),
                    simd: None,
                },
            );
            bench_env.push(measured(
                r,
                envs,
                "bench env --backend cuda",
                progress,
                |b| format!("{:.3e} env-steps/s", b.env_steps_per_s),
            ));
        }
        for &envs in &req.train_sizes {
            let r = bench::bench_train(
                resolved,
                &TrainBenchRequest {
                    device: crate::learn::DeviceChoice::Cuda,
                    backend: Backend::Cuda,
                    envs,
                    rollout_steps: 64,
                    updates: 2,
                    cache: Some(cache.clone()),
                },
            );
            bench_train.push(measured(
                r,
                envs,
                "bench train --device cuda --backend cuda",
                progress,
                |b| {
                    format!(
                        "{:.3e} train steps/s, zero-copy {}",
                        b.train_steps_per_s, b.zero_copy
                    )
                },
            ));
        }
    }

    let failed_cases = conformance.iter().filter(|c| !c.ok).count();
    let failed_benches = bench_env
        .iter()
        .filter(|m| matches!(m, Measured::Failed { .. }))
        .count()
        + bench_train
            .iter()
            .filter(|m| matches!(m, Measured::Failed { .. }))
            .count();
    let failed_ptx = nvrtc.found.ok && nvrtc.ptx.iter().any(|c| !c.check.ok);
    let (verdict, exit_code) = if failed_cases > 0 || failed_benches > 0 || failed_ptx {
        (
            format!(
                "FAILED: {failed_cases} conformance cases differ or did not run, {failed_benches} benchmarks failed{}",
                if failed_ptx {
                    ", the PTX check failed"
                } else {
                    ""
                }
            ),
            1,
        )
    } else if !can_cuda {
        (
            format!(
                "no CUDA here: {}; what runs here conforms ({} cases on {})",
                if cuda.ok {
                    &nvrtc.found.detail
                } else {
                    &cuda.detail
                },
                conformance.len(),
                names(&conformance)
            ),
            6,
        )
    } else {
        (
            format!(
                "OK: CUDA conforms bit for bit ({} cases on {}), {} benchmarks ran",
                conformance.len(),
                names(&conformance),
                bench_env.len() + bench_train.len()
            ),
            0,
        )
    };
    Ok(Report {
        doctor: "sim-train doctor",
        version: env!("CARGO_PKG_VERSION"),
        date: chrono::Local::now().format("%Y-%m-%d %H:%M").to_string(),
        machine: Machine::detect(),
        libtorch,
        cuda,
        nvrtc,
        wgpu,
        conformance,
        bench_env,
        bench_train,
        verdict,
        exit_code,
    })
}

fn names(cases: &[ConformanceCase]) -> String {
    let mut n: Vec<&str> = cases.iter().map(|c| c.backend).collect();
    n.dedup();
    n.join(", ")
}

fn measured<T>(
    r: Result<T>,
    envs: usize,
    what: &str,
    progress: &dyn Fn(&str),
    figure: impl Fn(&T) -> String,
) -> Measured<T> {
    match r {
        Ok(b) => {
            progress(&format!("{what} at {envs} envs: {}", figure(&b)));
            Measured::Ran(b)
        }
        Err(e) => {
            progress(&format!("{what} at {envs} envs: FAILED: {e}"));
            Measured::Failed {
                envs,
                error: e.to_string(),
            }
        }
    }
}
