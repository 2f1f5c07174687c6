//! Policy bundles: export, verification (content hash, schema), the pure-Rust forward
//! against libtorch's, and evaluation of a bundle against evaluation of its checkpoint.

mod common;

use common::{sim_train, trained_run};
use sim_train::bundle::native::NativePolicy;
use sim_train::bundle::{Bundle, Manifest};
use sim_train::learn::checkpoint::Agent;
use std::path::Path;
use tch::{Device, Tensor};

fn export(run: &Path, out: &Path) {
    sim_train()
        .args(["-q", "export", "--checkpoint"])
        .arg(run)
        .arg("--out")
        .arg(out)
        .assert()
        .success();
}

#[test]
fn export_writes_a_verified_bundle_and_refuses_altered_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, _) = trained_run(tmp.path());
    let b = tmp.path().join("bundle");
    export(&run, &b);
    let bundle = Bundle::open(&b).unwrap();
    let m = &bundle.manifest;
    let agent = Agent::load(&run, None).unwrap();
    assert_eq!(m.observation.fields, agent.params.obs_names());
    assert_eq!(m.observation.feature_fields, 39);
    assert_eq!(m.actions, agent.params.actions);
    assert_eq!(m.trained.update, 4);
    assert_eq!(m.trained.global_step, 1024);
    assert!(m.trained.checkpoint.ends_with("update-00000004"));
    let norm = m.observation.normalization.as_ref().unwrap();
    assert_eq!(norm.count, agent.obs_norm.as_ref().unwrap().count);
    assert!((norm.count - (1e-4 + 1024.0)).abs() < 1e-9);
    assert_eq!(m.network.tensors["lstm.weight_ih"], [4 * 128, 128]);
    assert_eq!(m.network.tensors["encoder0.weight"], [128, 44]);
    // Every parameter is exported exactly.
    for (name, t) in agent.policy.named_parameters() {
        let n = t.numel();
        let mut want = vec![0f32; n];
        t.flatten(0, -1).copy_data(&mut want, n);
        let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
        assert_eq!(bundle.f32(&name, &shape).unwrap(), &want[..], "{name}");
    }
    sim_train()
        .args(["policy", "inspect"])
        .arg(&b)
        .assert()
        .success()
        .stdout(predicates::str::contains(&m.content_hash))
        .stdout(predicates::str::contains(
            "feature set v2, 39 features + 5 account fields",
        ));

    // Exporting into a folder that holds files is refused.
    sim_train()
        .args(["-q", "export", "--checkpoint"])
        .arg(&run)
        .arg("--out")
        .arg(&b)
        .assert()
        .failure()
        .code(2)
        .stderr(predicates::str::contains("is not empty"));

    // Any change to any of the three files is caught by the content hash.
    let tampered = |name: &str, edit: &dyn Fn(&mut Vec<u8>)| {
        let t = tmp.path().join(format!("tampered-{name}"));
        std::fs::create_dir_all(&t).unwrap();
        for f in [
            "manifest.json",
            "weights.safetensors",
            "config.resolved.toml",
        ] {
            std::fs::copy(b.join(f), t.join(f)).unwrap();
        }
        let mut bytes = std::fs::read(t.join(name)).unwrap();
        edit(&mut bytes);
        std::fs::write(t.join(name), bytes).unwrap();
        sim_train()
            .args(["policy", "inspect"])
            .arg(&t)
            .assert()
            .failure()
            .code(3)
            .stderr(predicates::str::contains("content hash mismatch"));
    };
    tampered("weights.safetensors", &|b| {
        let n = b.len();
        b[n - 3] ^= 0x01;
    });
    tampered("config.resolved.toml", &|b| {
        b.extend_from_slice(b"\n# edited\n");
    });
    tampered("manifest.json", &|b| {
        let s = String::from_utf8(b.clone()).unwrap();
        *b = s.replacen("\"update\": 4", "\"update\": 5", 1).into_bytes();
    });
    // A field the format does not have is refused, not silently ignored.
    let extra = tmp.path().join("tampered-manifest.json");
    let text = std::fs::read_to_string(b.join("manifest.json")).unwrap();
    std::fs::write(
        extra.join("manifest.json"),
        text.replacen('{', "{\n  \"note\": 1,", 1),
    )
    .unwrap();
    sim_train()
        .args(["policy", "inspect"])
        .arg(&extra)
        .assert()
        .failure()
        .code(3)
        .stderr(predicates::str::contains("unknown field"));
    std::fs::write(extra.join("manifest.json"), &text).unwrap();
    std::fs::remove_file(
        tmp.path()
            .join("tampered-manifest.json/weights.safetensors"),
    )
    .unwrap();
    sim_train()
        .args(["policy", "inspect"])
        .arg(tmp.path().join("tampered-manifest.json"))
        .assert()
        .failure()
        .code(2)
        .stderr(predicates::str::contains("weights.safetensors is missing"));
}

#[test]
fn the_pure_rust_forward_equals_libtorch_over_long_sequences() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, _) = trained_run(tmp.path());
    let b = tmp.path().join("bundle");
    export(&run, &b);
    let native = NativePolicy::from_bundle(&Bundle::open(&b).unwrap()).unwrap();
    let agent = Agent::load(&run, None).unwrap();
    let (d, a) = (native.obs_dim, native.n_actions);
    let mut state = native.state();
    let mut torch_state = sim_train::learn::policy::LstmState::zeros(1, native.hidden, Device::Cpu);
    let norm = agent.obs_norm.as_ref().unwrap();
    let (mut raw, mut obs) = (vec![0f32; d], vec![0f32; d]);
    let (mut lp_native, mut lp_torch) = (vec![0f32; a], vec![0f32; a]);
    let mut worst: f32 = 0.0;
    // 600 steps of varied observations, with the state carried and reset (a new day)
    // every 200 steps.
    for t in 0..600 {
        for (j, x) in raw.iter_mut().enumerate() {
            *x = ((t * 31 + j * 17) as f32 * 0.37).sin() * (1.0 + j as f32 * 0.1);
        }
        let first = t % 200 == 0;
        let v_native = native.step(&raw, first, &mut state, &mut lp_native);
        norm.normalize(&raw, &mut obs);
        let x = Tensor::from_slice(&obs).view([1, d as i64]);
        let f = if first { 1.0 } else { 0.0 };
        let (out, next) = tch::no_grad(|| agent.policy.step(&x, &[f], &torch_state));
        torch_state = next;
        out.log_probs.copy_data(&mut lp_torch, a);
        let v_torch = out.values.double_value(&[0]) as f32;
        for k in 0..a {
            worst = worst.max((lp_native[k] - lp_torch[k]).abs());
        }
        worst = worst.max((v_native - v_torch).abs());
        let mut h = vec![0f32; native.hidden];
        torch_state.h.copy_data(&mut h, native.hidden);
        for (x, y) in h.iter().zip(&state.h) {
            worst = worst.max((x - y).abs());
        }
    }
    eprintln!("largest difference between the native and libtorch forwards: {worst:e}");
    assert!(worst < 1e-5, "largest difference {worst}");
    // The comparison has teeth: the policy's outputs move with the observations.
    assert!(
        lp_native
            .iter()
            .any(|l| (l - (1.0 / a as f32).ln()).abs() > 1e-4)
    );
}

#[test]
fn evaluating_the_bundle_trades_exactly_as_its_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, cache) = trained_run(tmp.path());
    let b = tmp.path().join("bundle");
    export(&run, &b);
    for mode in ["greedy", "sampled"] {
        let (ckpt_out, bundle_out) = (
            tmp.path().join(format!("ckpt-{mode}")),
            tmp.path().join(format!("bundle-{mode}")),
        );
        sim_train()
            .args([
                "-q",
                "eval",
                "--mode",
                mode,
                "--seed",
                "5",
                "--from",
                "2024-01-05",
                "--run-dir",
            ])
            .arg(&run)
            .arg("--out")
            .arg(&ckpt_out)
            .assert()
            .success();
        sim_train()
            .args([
                "-q",
                "eval",
                "--mode",
                mode,
                "--seed",
                "5",
                "--from",
                "2024-01-05",
                "--policy",
            ])
            .arg(&b)
            .arg("--cache")
            .arg(&cache)
            .arg("--out")
            .arg(&bundle_out)
            .assert()
            .success();
        for f in ["trades.csv", "equity.csv"] {
            let x = std::fs::read(ckpt_out.join("policy").join(f)).unwrap();
            let y = std::fs::read(bundle_out.join("policy").join(f)).unwrap();
            assert!(
                x == y,
                "{mode}: {f} differs between the checkpoint and the bundle"
            );
        }
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(bundle_out.join("policy/report.json")).unwrap())
                .unwrap();
        assert_eq!(report["source"]["kind"], "bundle");
        assert!(report["portfolio"]["trades"]["trades"].as_u64().unwrap() > 0);
    }
    // A bundle needs a cache and an output folder.
    sim_train()
        .args(["eval", "--policy"])
        .arg(&b)
        .assert()
        .failure()
        .code(2)
        .stderr(predicates::str::contains("needs --cache DIR"));
}

#[test]
fn a_bundle_of_another_feature_set_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, cache) = trained_run(tmp.path());
    let b = tmp.path().join("bundle");
    export(&run, &b);
    let bundle = Bundle::open(&b).unwrap();
    let mut m: Manifest = bundle.manifest.clone();
    m.observation.feature_set_version = 1;
    let other = tmp.path().join("v1");
    Bundle::write(&other, m, &bundle.tensors, &bundle.config_toml).unwrap();
    sim_train()
        .args(["-q", "eval", "--policy"])
        .arg(&other)
        .arg("--cache")
        .arg(&cache)
        .arg("--out")
        .arg(tmp.path().join("out"))
        .assert()
        .failure()
        .code(3)
        .stderr(predicates::str::contains("reads feature set version 1"));
    // A live stream computes this build's features: refused there too, before any line.
    sim_train()
        .args(["-q", "live", "--policy"])
        .arg(&other)
        .args(["--feed", "stdin", "--symbols", "SYN000", "--journal"])
        .arg(tmp.path().join("j.jsonl"))
        .write_stdin("")
        .assert()
        .failure()
        .code(3)
        .stderr(predicates::str::contains(
            "reads feature set version 1, and this sim-train computes version 2 from a feed",
        ));
}
