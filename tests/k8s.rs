//! The walk-forward Kubernetes manifests, rendered by `scripts/k8s/render.sh` and read
//! back with a YAML parser: an Indexed Job whose completions, parallelism and `--shards`
//! are the shards asked for, the resources, time limit, image, plan dir and volume as
//! given, and a merge Job over the same plan dir and volume. Bad values are refused.

use serde_yaml_ng::Value;
use std::path::Path;
use std::process::Command;

fn render(what: &str, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new("bash");
    c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/k8s/render.sh"))
        .arg(what)
        .args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn manifest(what: &str, args: &[&str], env: &[(&str, &str)]) -> Value {
    let out = render(what, args, env);
    assert!(
        out.status.success(),
        "render.sh {what} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("${"), "unfilled placeholder:\n{text}");
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"))
}

fn str_of<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    at(v, path)
        .as_str()
        .unwrap_or_else(|| panic!("{path:?} is not a string: {:?}", at(v, path)))
}

fn u64_of(v: &Value, path: &[&str]) -> u64 {
    at(v, path)
        .as_u64()
        .unwrap_or_else(|| panic!("{path:?} is not a number: {:?}", at(v, path)))
}

fn at<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(v, |v, k| match k.parse::<usize>() {
        Ok(i) => &v[i],
        Err(_) => &v[*k],
    })
}

/// A pod's command as strings.
fn command(pod: &Value) -> Vec<String> {
    at(pod, &["containers", "0", "command"])
        .as_sequence()
        .expect("command")
        .iter()
        .map(|a| a.as_str().expect("string argument").to_string())
        .collect()
}

/// The value after `flag` in `cmd`.
fn after<'a>(cmd: &'a [String], flag: &str) -> &'a str {
    let k = cmd
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("no {flag} in {cmd:?}"));
    &cmd[k + 1]
}

/// Checks a shard Job and its merge Job rendered with these values.
#[allow(clippy::too_many_arguments)]
fn check_pair(
    job: &Value,
    merge: &Value,
    name: &str,
    shards: u64,
    cpus: &str,
    memory: &str,
    deadline: u64,
    image: &str,
    plan: &str,
    mount: &str,
    claim: &str,
) {
    for (m, n) in [(job, name.to_string()), (merge, format!("{name}-merge"))] {
        assert_eq!(str_of(m, &["apiVersion"]), "batch/v1");
        assert_eq!(str_of(m, &["kind"]), "Job");
        assert_eq!(str_of(m, &["metadata", "name"]), n);
        let pod = at(m, &["spec", "template", "spec"]);
        assert_eq!(str_of(pod, &["restartPolicy"]), "Never");
        assert_eq!(u64_of(pod, &["activeDeadlineSeconds"]), deadline);
        assert_eq!(str_of(pod, &["containers", "0", "image"]), image);
        assert_eq!(after(&command(pod), "--plan"), plan);
        let res = at(pod, &["containers", "0", "resources"]);
        assert_eq!(str_of(res, &["requests", "memory"]), memory);
        assert_eq!(str_of(res, &["limits", "memory"]), memory);
        assert_eq!(
            str_of(pod, &["containers", "0", "volumeMounts", "0", "mountPath"]),
            mount
        );
        assert_eq!(
            str_of(pod, &["containers", "0", "volumeMounts", "0", "name"]),
            str_of(pod, &["volumes", "0", "name"])
        );
        assert_eq!(
            str_of(pod, &["volumes", "0", "persistentVolumeClaim", "claimName"]),
            claim
        );
        assert!(plan.starts_with(&format!("{}/", mount.trim_end_matches('/'))));
    }

    let spec = at(job, &["spec"]);
    assert_eq!(str_of(spec, &["completionMode"]), "Indexed");
    assert_eq!(u64_of(spec, &["completions"]), shards);
    assert_eq!(u64_of(spec, &["parallelism"]), shards);
    assert!(u64_of(spec, &["backoffLimitPerIndex"]) >= 1);
    let pod = at(spec, &["template", "spec"]);
    let cmd = command(pod);
    assert_eq!(
        &cmd[..],
        &[
            "sim-train",
            "--log-format",
            "json",
            "walk-forward",
            "run",
            "--plan",
            plan,
            "--shards",
            &shards.to_string()
        ]
    );
    assert_eq!(
        str_of(pod, &["containers", "0", "resources", "requests", "cpu"]),
        cpus
    );

    let pod = at(merge, &["spec", "template", "spec"]);
    assert_eq!(
        &command(pod)[..],
        &["sim-train", "walk-forward", "merge", "--plan", plan]
    );
    assert_eq!(
        str_of(pod, &["containers", "0", "resources", "requests", "cpu"]),
        "1"
    );
}

#[test]
fn the_kubernetes_manifests_render_with_the_resources_asked_for() {
    // Options.
    let args = [
        "--shards",
        "5",
        "--cpus",
        "3",
        "--mem",
        "6G",
        "--time",
        "1-02:30",
        "--image",
        "registry.example/sim-train:1.2",
        "--plan",
        "/mnt/sweeps/a",
        "--mount",
        "/mnt/sweeps/",
        "--claim",
        "sweeps",
        "--name",
        "wf-a",
    ];
    check_pair(
        &manifest("job", &args, &[]),
        &manifest("merge", &args, &[]),
        "wf-a",
        5,
        "3",
        "6Gi",
        26 * 3600 + 30 * 60,
        "registry.example/sim-train:1.2",
        "/mnt/sweeps/a",
        "/mnt/sweeps",
        "sweeps",
    );

    // Variables, options over variables (`--opt=value` too), a bare size in megabytes.
    let env = [
        ("WF_SHARDS", "12"),
        ("WF_CPUS", "4"),
        ("WF_MEM", "1500"),
        ("WF_TIME", "90"),
        ("WF_IMAGE", "sim-train:test"),
        ("WF_PLAN", "/vol/wf"),
        ("WF_MOUNT", "/vol"),
        ("WF_CLAIM", "vol-claim"),
        ("WF_NAME", "wf-b"),
    ];
    check_pair(
        &manifest("job", &["--shards=7"], &env),
        &manifest("merge", &["--shards=7"], &env),
        "wf-b",
        7,
        "4",
        "1500Mi",
        90 * 60,
        "sim-train:test",
        "/vol/wf",
        "/vol",
        "vol-claim",
    );

    // Defaults.
    check_pair(
        &manifest("job", &[], &[]),
        &manifest("merge", &[], &[]),
        "sim-train-walk-forward",
        8,
        "2",
        "4Gi",
        12 * 3600,
        "sim-train:latest",
        "/data/wf",
        "/data",
        "sim-train-data",
    );

    // Bad values: exit 2, naming the option.
    let long = "x".repeat(60);
    for (args, says) in [
        (&["--shards", "0"][..], "--shards"),
        (&["--cpus", "two"], "--cpus"),
        (&["--mem", "lots"], "--mem"),
        (&["--time", "soon"], "--time"),
        (&["--plan", "wf"], "--plan"),
        (&["--plan", "/elsewhere/wf"], "not on the volume"),
        (&["--image", "a b"], "--image"),
        (&["--claim", "Bad_Claim"], "--claim"),
        (&["--name", long.as_str()], "--name"),
        (&["--image", "x\"\ny: 1"], "--image"),
        (&["--bogus", "1"], "unknown option"),
    ] {
        let out = render("job", args, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    assert_eq!(render("cronjob", &[], &[]).status.code(), Some(2));
}
