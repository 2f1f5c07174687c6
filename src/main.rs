//! The `sim-train` binary: everything lives in the library; see `sim_train::cli`.

fn main() {
    std::process::exit(sim_train::cli::main());
}
