//! The `sim-train` binary: everything lives in the library; see `sim_train::cli`. It links
//! no libtorch; the commands that need it run in `sim-train-torch`.

fn main() {
    // SAFETY: first thing in main, while the process has one thread.
    unsafe { sim_train::cli::init_process() };
    std::process::exit(sim_train::cli::main());
}
