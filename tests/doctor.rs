//! `sim-train doctor` on this host: the report is one JSON document on stdout, every
//! conformance case that runs here (the CUDA source compiled for the host always, wgpu
//! where an adapter exists) is bit for bit, and without a CUDA device the command exits 6
//! with one error line. On a GPU host it must exit 0 with its benchmarks in the report.

mod common;

use sim_train::env::gpu::GpuApi;

#[test]
fn doctor_reports_what_it_found_and_refuses_without_cuda() {
    let out = common::sim_train()
        .args([
            "doctor",
            "--conformance-envs",
            "67",
            "--conformance-steps",
            "400",
            "--envs",
            "4096",
            "--train-envs",
            "256",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON report ({e}); stderr:\n{stderr}"));
    let code = out.status.code();
    assert_eq!(
        report["exit_code"].as_i64().map(|c| c as i32),
        code,
        "{stderr}"
    );
    assert!(report["libtorch"]["ok"].as_bool().unwrap(), "{report:#}");
    assert!(
        report["libtorch"]["detail"]
            .as_str()
            .unwrap()
            .contains("PyTorch 2.11"),
        "{report:#}"
    );

    let cases = report["conformance"].as_array().unwrap();
    let on = |backend: &str| {
        cases
            .iter()
            .filter(|c| c["backend"] == backend)
            .collect::<Vec<_>>()
    };
    // Every variant on 1 m and 1 s days, and the recycled slots.
    assert_eq!(on("cuda-host").len(), 9, "{report:#}");
    for c in cases {
        assert!(c["ok"].as_bool().unwrap(), "{c:#}");
        assert!(c["episodes"].as_u64().unwrap() > 0, "{c:#}");
    }
    let wgpu = report["wgpu"]["ok"].as_bool().unwrap();
    assert!(wgpu || !common::required(GpuApi::Wgpu), "{report:#}");
    assert_eq!(on("wgpu").len(), if wgpu { 9 } else { 0 });

    let cuda = report["cuda"]["ok"].as_bool().unwrap();
    let nvrtc = report["nvrtc"]["found"]["ok"].as_bool().unwrap();
    if nvrtc {
        for p in report["nvrtc"]["ptx"].as_array().unwrap() {
            assert!(p["ok"].as_bool().unwrap(), "{p:#}");
        }
        let census = &report["nvrtc"]["f64_census"];
        assert!(census["div"].as_u64().unwrap() > 0, "{census:#}");
        assert!(census["arith"].as_u64().unwrap() > 0, "{census:#}");
    }
    if cuda && nvrtc {
        assert_eq!(code, Some(0), "{stderr}");
        assert_eq!(on("cuda").len(), 9, "{report:#}");
        assert_eq!(report["bench_env"].as_array().unwrap().len(), 1);
        assert!(report["bench_env"][0]["env_steps_per_s"].as_f64().unwrap() > 0.0);
        assert!(
            report["bench_train"][0]["train_steps_per_s"]
                .as_f64()
                .unwrap()
                > 0.0
        );
    } else {
        assert!(
            !common::required(GpuApi::Cuda),
            "SIM_TRAIN_REQUIRE_CUDA is set but the doctor found no CUDA: {stderr}"
        );
        assert_eq!(code, Some(6), "{stderr}");
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{stderr}");
        assert!(errors[0].contains("no CUDA here"), "{stderr}");
        assert!(report["bench_env"].as_array().unwrap().is_empty());
    }
}

/// Bad sizes are a usage error before anything runs.
#[test]
fn doctor_refuses_zero_sizes() {
    common::sim_train()
        .args(["doctor", "--envs", "0"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("must be at least 1"));
}
