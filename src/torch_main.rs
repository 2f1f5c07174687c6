//! `sim-train-torch`: the `sim-train` front end built with the `torch` feature, which runs
//! the commands that train or run a checkpoint itself. The `sim-train` that
//! `scripts/run.sh` builds links no libtorch and hands it those commands (see
//! `sim_train::cli::TorchCommands`); it runs any command.

/// mimalloc, which with its `override` feature is also the `malloc` that libtorch calls.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // SAFETY: first thing in main, while the process has one thread.
    unsafe { sim_train::cli::init_process() };
    std::process::exit(sim_train::cli::main());
}
