//! A small walk-forward sweep shared by the walk-forward and Slurm tests, and the byte-for-
//! byte comparison of two merged reports.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Two configs × two seeds over three folds of a 12-day synthetic universe: 12 small
/// units.
pub const SWEEP: &str = r#"
[train]
total_steps = 512
num_envs = 16
rollout_steps = 16
threads = 1
checkpoint_every = 1
keep_checkpoints = 3

[walkforward]
train_days = 3
test_days = 2
purge_days = 1
embargo_days = 1
seeds = [1, 2]
pbo_partitions = 2

[[walkforward.configs]]
name = "a"

[[walkforward.configs]]
name = "b"
set = ["train.learning_rate=1e-3", "train.ent_coef=0.05"]
"#;

/// Writes `text` to `dir/name`; returns the path.
pub fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The sweep's universe: 2 symbols × 12 days of 1-minute bars, cached under `dir`.
pub fn universe(dir: &Path) -> PathBuf {
    super::synth_cache(
        dir,
        &["synth.symbols=2", "synth.days=12", "synth.bar=\"1m\""],
    )
}

/// Every file under `dir`, relative path → bytes.
pub fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The merged reports of plan dirs `a` and `b` hold the same files, byte for byte.
pub fn assert_same_reports(a: &Path, b: &Path) {
    let (fa, fb) = (files(&a.join("report")), files(&b.join("report")));
    assert_eq!(
        fa.keys().collect::<Vec<_>>(),
        fb.keys().collect::<Vec<_>>(),
        "the reports hold different files"
    );
    assert!(fa.len() >= 20, "{} files", fa.len());
    for (k, v) in &fa {
        assert!(v == &fb[k], "{} differs between the merges", k.display());
    }
}
