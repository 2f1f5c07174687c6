//! Links libtorch so that the binary finds it at run time and keeps CUDA available, when
//! the `torch` feature (the default) is on; without it nothing is linked here and the
//! binary needs no libtorch (`cargo build --release --no-default-features`).
//!
//! tch's own link arguments do not reach dependants, so the final binaries get here: an
//! rpath to `$LIBTORCH/lib` (the project venv's PyTorch, see `.cargo/config.toml`) and
//! `-ltorch` under `--no-as-needed` (without it the linker drops libtorch, whose load is
//! what registers the CUDA backend, and CUDA is silently unavailable on GPU hosts).

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
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    println!("cargo:rustc-link-arg=-ltorch");
}
