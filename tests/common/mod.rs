//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;

/// `../shared/data`, or None after printing a visible SKIP line. The line goes straight to
/// the process's stderr (not through the test harness's capture) so a skip is never silent.
pub fn shared_data(test: &str) -> Option<PathBuf> {
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data"));
    if p.is_dir() {
        Some(p)
    } else {
        let _ = writeln!(std::io::stderr(), "SKIP {test}: {} not found", p.display());
        None
    }
}

/// Prints a visible SKIP line for a missing data path (straight to stderr, see above).
pub fn skip(path: &std::path::Path) {
    let _ = writeln!(std::io::stderr(), "SKIP: {} not found", path.display());
}

/// The `sim-train` binary under test.
pub fn sim_train() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("sim-train").expect("binary built")
}
