//! The `sim-train` binary: everything lives in the library; see `sim_train::cli`. As
//! `scripts/build.sh` builds it, it links no libtorch and the commands that need it run in
//! `sim-train-torch`; built with the default features (`cargo build`), it runs them itself.

/// With libtorch linked, mimalloc is the process's `malloc`, as in `sim-train-torch`.
#[cfg(feature = "torch")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // SAFETY: first thing in main, while the process has one thread.
    unsafe { sim_train::cli::init_process() };
    std::process::exit(sim_train::cli::main());
}
