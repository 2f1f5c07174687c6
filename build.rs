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
//!
//! It also compiles the CUDA kernels' source for the host CPU (`kernels/host_entry.cpp`,
//! the `cuda-host` backend of `src/env/gpu/host.rs`), so that the conformance tests run
//! it bit for bit against the CPU engine on machines without a GPU. The flags are what
//! keeps the host's double arithmetic equal to the GPU's (see `kernels/host_shim.h`); no
//! C++ runtime is linked.

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-changed=build.rs");
    host_kernels();
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

/// `kernels/env_step.cu` for the host: a static library with `sim_host_launch`.
fn host_kernels() {
    for f in [
        "kernels/env_step.cu",
        "kernels/host_entry.cpp",
        "kernels/host_shim.h",
        "kernels/layout.h",
    ] {
        println!("cargo:rerun-if-changed={f}");
    }
    cc::Build::new()
        .cpp(true)
        .cpp_link_stdlib(None)
        .std("c++17")
        .include("kernels")
        .file("kernels/host_entry.cpp")
        .opt_level(2)
        .flag("-ffp-contract=off")
        .flag("-fno-fast-math")
        .flag("-fno-math-errno")
        .flag("-fwrapv")
        .flag("-fno-exceptions")
        .flag("-fno-rtti")
        // Each kernel takes all 16 buffers and uses some.
        .flag("-Wno-unused-parameter")
        .warnings(true)
        .extra_warnings(true)
        .compile("sim_env_host");
}
