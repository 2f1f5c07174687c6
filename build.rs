//! Links libtorch into the binaries, tests and benchmarks when the `torch` feature (the
//! default) is on; without it (the `sim-train` that scripts/build.sh makes, see
//! `src/cli/companion.rs`) nothing is linked here and the binary loads no libtorch.
//!
//! tch's own link arguments do not reach dependants, so the targets get here: an rpath to
//! `$LIBTORCH/lib` (the project venv's PyTorch, see `.cargo/config.toml`; every target,
//! since the library's unit tests call libtorch too), and, for the binaries, tests and
//! benchmarks, `-ltorch` under `--no-as-needed` (without it the linker drops libtorch,
//! whose load is what registers the CUDA backend, and CUDA is silently unavailable on GPU
//! hosts).

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-changed=build.rs");
    // Cargo sets CARGO_FEATURE_<NAME> for every enabled feature of this package.
    if std::env::var_os("CARGO_FEATURE_TORCH").is_none() {
        return;
    }
    let Ok(libtorch) = std::env::var("LIBTORCH") else {
        return;
    };
    let lib = std::path::Path::new(&libtorch).join("lib");
    println!("cargo:rustc-link-search=native={}", lib.display());
    // The rpath everywhere (the lib's unit tests call libtorch too); it loads nothing.
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    for arg in ["-Wl,--no-as-needed", "-ltorch"] {
        println!("cargo:rustc-link-arg-bins={arg}");
        println!("cargo:rustc-link-arg-tests={arg}");
        println!("cargo:rustc-link-arg-benches={arg}");
    }
}
