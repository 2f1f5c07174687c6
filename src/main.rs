//! The `sim-train` binary: everything lives in the library; see `sim_train::cli`.

fn main() {
    // A CLI whose output is piped into `head` should end quietly when the pipe closes, as
    // Unix tools do, instead of panicking on the failed write (Rust ignores SIGPIPE).
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any other thread exists
    // has no memory-safety preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::process::exit(sim_train::cli::main());
}
