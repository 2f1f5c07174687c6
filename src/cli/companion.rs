//! How a `sim-train` built without the `torch` feature runs the commands that need
//! libtorch: it replaces itself (`exec`) with `sim-train-torch`, the same front end built
//! with the feature, given the same arguments.
//! The user sees one program: the same help, output, exit codes and signals (an `exec`
//! keeps the process id, so `kill`, Slurm and Kubernetes reach the trainer itself).
//!
//! `sim-train-torch` is looked for beside the running `sim-train` (where `cargo build`
//! and `cargo install` put both), or where `SIM_TRAIN_TORCH` says.

use super::Command;
use crate::error::Error;
use std::path::PathBuf;

/// The companion's file name.
pub const NAME: &str = "sim-train-torch";

/// Environment variable naming the companion's path, for layouts where it is not beside
/// `sim-train`.
pub const ENV: &str = "SIM_TRAIN_TORCH";

/// Set in the companion's environment by the hand-over, and cleared by a binary that links
/// libtorch as it starts ([`super::init_process`]): a binary without libtorch that finds it
/// set was itself named as the companion, and refuses instead of handing over in a loop.
pub const HANDED_OVER: &str = "SIM_TRAIN_HANDED_OVER";

/// Where the companion is: `$SIM_TRAIN_TORCH`, else beside the running executable.
fn path() -> Result<PathBuf, Error> {
    if let Some(p) = std::env::var_os(ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| {
        Error::Usage(format!(
            "cannot find the running sim-train ({e}) to look for {NAME} beside it: set {ENV}=/path/to/{NAME}"
        ))
    })?;
    Ok(exe.with_file_name(NAME))
}

/// Runs the companion with this process's arguments in its place, for `command`. Returns
/// only when it cannot be run, with the error saying where it was looked for and what to
/// do.
pub fn exec(command: &Command) -> Error {
    if let Some(from) = std::env::var_os(HANDED_OVER) {
        return Error::NeedsTorch(format!(
            "`sim-train {}` was handed to {}, which was built without the torch feature too: point {ENV} at the binary `cargo build --release --bin {NAME}` makes",
            command.name(),
            std::path::Path::new(&from).display()
        ));
    }
    let path = match path() {
        Ok(p) => p,
        Err(e) => return e,
    };
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| "sim-train".into());
    let mut cmd = std::process::Command::new(&path);
    cmd.args(args).env(HANDED_OVER, &path);
    #[cfg(unix)]
    let e = {
        use std::os::unix::process::CommandExt;
        // argv[0] as the user typed it, so help and usage lines name `sim-train`.
        cmd.arg0(arg0).exec()
    };
    #[cfg(not(unix))]
    let e = {
        let _ = arg0;
        match cmd.status() {
            Ok(status) => std::process::exit(status.code().unwrap_or(1)),
            Err(e) => e,
        }
    };
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::NeedsTorch(format!(
            "`sim-train {}` runs libtorch, which this sim-train does not link, and {NAME}, which runs it, is not at {}: build it with `cargo build --release --bin {NAME}` (scripts/run.sh does), or set {ENV} to its path",
            command.name(),
            path.display()
        ))
    } else {
        Error::io(path, e)
    }
}
