//! Finding NVRTC, CUDA's runtime compiler, on hosts that were not set up for sim-train: a
//! binary carried to a GPU host that has only the NVIDIA driver and a PyTorch install, a
//! CUDA 12 or a CUDA 13 toolkit, a conda environment.
//!
//! cudarc opens `libnvrtc` by name through the dynamic loader. When the loader cannot see
//! it, [`ensure`] looks in these places, in order, and loads the first usable copy by path
//! (with the `libnvrtc-builtins` beside it, which NVRTC opens when it compiles), after
//! which cudarc's search by soname finds it:
//! 1. `$SIM_TRAIN_NVRTC`: the library itself or its folder;
//! 2. beside the libtorch this process loaded (`sim-train-torch`), and that PyTorch's
//!    `nvidia` packages (`site-packages/nvidia/{cu13,cuda_nvrtc}/lib`);
//! 3. `$LIBTORCH/lib` and its `nvidia` packages in the same way (the lean `sim-train`
//!    loads no libtorch, so pointing `LIBTORCH` at the host's PyTorch finds its NVRTC);
//! 4. the `nvidia` packages of the Python environments `$VIRTUAL_ENV`, `$CONDA_PREFIX`,
//!    `./.venv`, the `.venv` next to the binary's folder, and this checkout's `.venv`;
//! 5. every folder of `$LD_LIBRARY_PATH`;
//! 6. the CUDA toolkits: `$CUDA_HOME`, `$CUDA_PATH`, `/usr/local/cuda`, then
//!    `/usr/local/cuda-13*` and `/usr/local/cuda-12*` (`lib64`, `targets/*-linux/lib`).
//!
//! In each folder it takes `libnvrtc.so.13`, `libnvrtc.so.12` or `libnvrtc.so`. When the
//! driver's CUDA version is known, copies newer than the driver are passed over: NVRTC 13
//! writes PTX that a CUDA 12 driver refuses to load. When nothing loads, the error names
//! every place and what it held.

use std::path::{Path, PathBuf};

/// The file names tried in each folder, newest first.
pub const NAMES: [&str; 3] = ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"];

/// What to do when NVRTC is missing, for error messages.
pub const HELP: &str = "install NVRTC into the Python environment whose PyTorch you use (pip install nvidia-cuda-nvrtc, matching its CUDA major version; `scripts/setup.sh nvrtc` does it for .venv), or name the library or its folder in SIM_TRAIN_NVRTC";

/// The process facts the search reads, gathered by [`SearchEnv::from_process`] and
/// injectable in tests.
#[derive(Clone, Debug, Default)]
pub struct SearchEnv {
    pub sim_train_nvrtc: Option<PathBuf>,
    /// The folder of the libtorch this process loaded (`libtorch_cpu.so` or `libc10.so`).
    pub loaded_libtorch: Option<PathBuf>,
    pub libtorch: Option<PathBuf>,
    pub virtual_env: Option<PathBuf>,
    pub conda_prefix: Option<PathBuf>,
    pub cwd: Option<PathBuf>,
    pub exe_dir: Option<PathBuf>,
    pub checkout: Option<PathBuf>,
    pub ld_library_path: Vec<PathBuf>,
    pub cuda_home: Option<PathBuf>,
    pub cuda_path: Option<PathBuf>,
    /// Where `/usr/local/cuda*` toolkits are looked for.
    pub toolkit_root: PathBuf,
}

impl SearchEnv {
    pub fn from_process() -> SearchEnv {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        SearchEnv {
            sim_train_nvrtc: var("SIM_TRAIN_NVRTC"),
            loaded_libtorch: loaded_libtorch_dir(),
            libtorch: var("LIBTORCH"),
            virtual_env: var("VIRTUAL_ENV"),
            conda_prefix: var("CONDA_PREFIX"),
            cwd: std::env::current_dir().ok(),
            exe_dir: std::env::current_exe()
                .ok()
                .and_then(|e| e.parent().map(Path::to_path_buf)),
            checkout: Some(PathBuf::from(env!("CARGO_MANIFEST_DIR"))),
            ld_library_path: std::env::var_os("LD_LIBRARY_PATH")
                .map(|v| {
                    std::env::split_paths(&v)
                        .filter(|p| !p.as_os_str().is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            cuda_home: var("CUDA_HOME"),
            cuda_path: var("CUDA_PATH"),
            toolkit_root: PathBuf::from("/usr/local"),
        }
    }
}

/// The folder of the libtorch mapped into this process, from `/proc/self/maps`.
pub fn loaded_libtorch_dir() -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(Path::new)
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n == "libtorch_cpu.so" || n == "libc10.so")
        })
        .and_then(|p| p.parent().map(Path::to_path_buf))
}

/// The NVRTC library mapped into this process (after [`preload`] or cudarc's own load),
/// from `/proc/self/maps`.
pub fn loaded_path() -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| {
            Path::new(p)
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| {
                    n.starts_with("libnvrtc.so")
                        || (n.starts_with("libnvrtc-") && !n.contains("builtins"))
                })
        })
        .map(PathBuf::from)
}

/// One place the search looks: a name for messages and its folders (or a file, for
/// `$SIM_TRAIN_NVRTC`).
#[derive(Clone, Debug, PartialEq)]
pub struct Place {
    pub what: String,
    pub paths: Vec<PathBuf>,
}

/// The `nvidia` package folders of a PyTorch whose library folder is `torch_lib`
/// (`…/site-packages/torch/lib`).
fn nvidia_beside_torch(torch_lib: &Path) -> Vec<PathBuf> {
    let mut out = vec![torch_lib.to_path_buf()];
    if let Some(site) = torch_lib.parent().and_then(Path::parent) {
        out.extend(nvidia_packages(site));
    }
    out
}

fn nvidia_packages(site_packages: &Path) -> Vec<PathBuf> {
    ["nvidia/cu13/lib", "nvidia/cuda_nvrtc/lib"]
        .iter()
        .map(|s| site_packages.join(s))
        .collect()
}

/// The `nvidia` package folders of a Python environment (every `lib/python3*`).
fn venv_packages(venv: &Path) -> Vec<PathBuf> {
    let mut pythons: Vec<PathBuf> = std::fs::read_dir(venv.join("lib"))
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("python3"))
                })
                .collect()
        })
        .unwrap_or_default();
    pythons.sort();
    if pythons.is_empty() {
        // Not there (yet): name the usual folder, so the message says where it looked.
        pythons.push(venv.join("lib/python3"));
    }
    pythons
        .iter()
        .flat_map(|py| nvidia_packages(&py.join("site-packages")))
        .collect()
}

fn toolkit_libs(root: &Path) -> Vec<PathBuf> {
    [
        "lib64",
        "targets/x86_64-linux/lib",
        "targets/sbsa-linux/lib",
    ]
    .iter()
    .map(|s| root.join(s))
    .collect()
}

/// Every place, in search order (module docs); an unset variable is a place with no
/// paths, so the error still names it.
pub fn places(env: &SearchEnv) -> Vec<Place> {
    let place = |what: &str, paths: Vec<PathBuf>| Place {
        what: what.to_string(),
        paths,
    };
    let opt = |p: &Option<PathBuf>| p.iter().cloned().collect::<Vec<_>>();
    let mut out = vec![
        place("$SIM_TRAIN_NVRTC", opt(&env.sim_train_nvrtc)),
        place(
            "beside the loaded libtorch",
            env.loaded_libtorch
                .as_deref()
                .map(nvidia_beside_torch)
                .unwrap_or_default(),
        ),
        place(
            "$LIBTORCH",
            env.libtorch
                .as_deref()
                .map(|l| nvidia_beside_torch(&l.join("lib")))
                .unwrap_or_default(),
        ),
        place(
            "$VIRTUAL_ENV",
            env.virtual_env
                .as_deref()
                .map(venv_packages)
                .unwrap_or_default(),
        ),
        place(
            "$CONDA_PREFIX",
            env.conda_prefix
                .as_deref()
                .map(venv_packages)
                .unwrap_or_default(),
        ),
    ];
    let mut venvs: Vec<PathBuf> = Vec::new();
    if let Some(c) = &env.cwd {
        venvs.push(c.join(".venv"));
    }
    if let Some(e) = &env.exe_dir {
        venvs.extend(e.parent().map(|p| p.join(".venv")));
    }
    if let Some(c) = &env.checkout {
        venvs.push(c.join(".venv"));
    }
    let mut seen = std::collections::HashSet::new();
    venvs.retain(|v| seen.insert(v.clone()));
    out.push(place(
        "the .venv of the working folder, the binary's folder and this checkout",
        venvs.iter().flat_map(|v| venv_packages(v)).collect(),
    ));
    out.push(place("$LD_LIBRARY_PATH", env.ld_library_path.clone()));
    let mut toolkits: Vec<PathBuf> = [&env.cuda_home, &env.cuda_path]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    toolkits.push(env.toolkit_root.join("cuda"));
    let mut versioned: Vec<PathBuf> = std::fs::read_dir(&env.toolkit_root)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("cuda-13") || n.starts_with("cuda-12"))
                })
                .collect()
        })
        .unwrap_or_default();
    versioned.sort();
    versioned.reverse();
    toolkits.extend(versioned);
    out.push(place(
        "the CUDA toolkits ($CUDA_HOME, $CUDA_PATH, /usr/local/cuda*)",
        toolkits.iter().flat_map(|t| toolkit_libs(t)).collect(),
    ));
    out
}

/// The NVRTC libraries at `path`: the file itself, or [`NAMES`] inside the folder.
pub fn libraries_at(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    NAMES
        .iter()
        .map(|n| path.join(n))
        .filter(|p| p.is_file())
        .collect()
}

/// The CUDA major version in a library's file name (`libnvrtc.so.12…` → 12).
pub fn major_of(lib: &Path) -> Option<u32> {
    let name = lib.file_name()?.to_str()?;
    let rest = name.split(".so.").nth(1)?;
    rest.split('.').next()?.parse().ok()
}

/// What the search found: the libraries to try in order, and for each place a short
/// account of what it held.
#[derive(Debug, Default)]
pub struct Found {
    pub libraries: Vec<PathBuf>,
    pub account: Vec<String>,
}

/// Runs the search over `env`, skipping libraries newer than `driver_major`.
pub fn search(env: &SearchEnv, driver_major: Option<u32>) -> Found {
    let mut found = Found::default();
    let mut seen = std::collections::HashSet::new();
    for place in places(env) {
        if place.paths.is_empty() {
            found.account.push(format!("{} (unset)", place.what));
            continue;
        }
        let mut held = Vec::new();
        for path in &place.paths {
            for lib in libraries_at(path) {
                let key = lib.canonicalize().unwrap_or_else(|_| lib.clone());
                let too_new = matches!((major_of(&lib), driver_major), (Some(m), Some(d)) if m > d);
                if too_new {
                    held.push(format!("{} (newer than the driver's CUDA)", lib.display()));
                } else if seen.insert(key) {
                    held.push(lib.display().to_string());
                    found.libraries.push(lib);
                }
            }
        }
        let folders: Vec<String> = place
            .paths
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        found.account.push(if held.is_empty() {
            format!("{}: {} (no libnvrtc)", place.what, folders.join(", "))
        } else {
            format!("{}: {}", place.what, held.join(", "))
        });
    }
    found
}

/// The `libnvrtc-builtins.so.*` files beside `nvrtc` (not the `.alt` variants), which
/// NVRTC opens by soname when it compiles.
pub fn builtins_beside(nvrtc: &Path) -> Vec<PathBuf> {
    let Some(Ok(entries)) = nvrtc.parent().map(std::fs::read_dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libnvrtc-builtins.so.") && !n.contains(".alt."))
        })
        .collect();
    out.sort();
    out
}

/// Loads the library at `path` for the rest of the process (the handle is never closed)
/// so that opening it by its soname finds it; the loader's error when it does not load.
#[cfg(unix)]
pub fn preload(path: &Path) -> std::result::Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| "a NUL byte in the path".to_string())?;
    // SAFETY: a NUL-terminated path; the handle is deliberately leaked.
    let handle = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    if handle.is_null() {
        // SAFETY: dlerror returns a thread-local string or NULL.
        let e = unsafe { libc::dlerror() };
        return Err(if e.is_null() {
            "not loadable".into()
        } else {
            // SAFETY: a NUL-terminated string owned by the loader.
            unsafe { std::ffi::CStr::from_ptr(e) }
                .to_string_lossy()
                .into_owned()
        });
    }
    Ok(())
}

#[cfg(not(unix))]
pub fn preload(_path: &Path) -> std::result::Result<(), String> {
    Err("loading by path is implemented on Unix only".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"").unwrap();
    }

    #[test]
    fn looks_everywhere_in_order_and_names_every_place() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        let venv = r.join("venv");
        let v12 = venv.join("lib/python3.12/site-packages/nvidia/cuda_nvrtc/lib/libnvrtc.so.12");
        touch(&v12);
        let torch = r.join("py/lib/python3.12/site-packages/torch/lib");
        let beside = r.join("py/lib/python3.12/site-packages/nvidia/cu13/lib/libnvrtc.so.13");
        touch(&beside);
        std::fs::create_dir_all(&torch).unwrap();
        let ld = r.join("ld");
        touch(&ld.join("libnvrtc.so"));
        let kit = r.join("local/cuda-12.8/lib64/libnvrtc.so.12");
        touch(&kit);
        let env = SearchEnv {
            loaded_libtorch: Some(torch.clone()),
            virtual_env: Some(venv.clone()),
            ld_library_path: vec![ld.clone()],
            toolkit_root: r.join("local"),
            ..Default::default()
        };
        let f = search(&env, None);
        assert_eq!(
            f.libraries,
            vec![
                beside.clone(),
                v12.clone(),
                ld.join("libnvrtc.so"),
                kit.clone()
            ]
        );
        let text = f.account.join("; ");
        for what in [
            "$SIM_TRAIN_NVRTC (unset)",
            "beside the loaded libtorch: ",
            "$LIBTORCH (unset)",
            "$VIRTUAL_ENV: ",
            "$CONDA_PREFIX (unset)",
            "the .venv of the working folder",
            "$LD_LIBRARY_PATH: ",
            "the CUDA toolkits",
        ] {
            assert!(text.contains(what), "{what} missing from: {text}");
        }
        assert_eq!(f.account.len(), places(&env).len());

        // A CUDA 12 driver passes NVRTC 13 over, and says so.
        let f = search(&env, Some(12));
        assert_eq!(f.libraries[0], v12);
        assert!(
            f.account
                .join("; ")
                .contains("newer than the driver's CUDA")
        );

        // $SIM_TRAIN_NVRTC comes first, as a file or a folder.
        let env2 = SearchEnv {
            sim_train_nvrtc: Some(kit.parent().unwrap().to_path_buf()),
            ..env.clone()
        };
        assert_eq!(search(&env2, None).libraries[0], kit);
    }

    #[test]
    fn libtorch_variable_finds_the_pytorch_packages() {
        let t = tempfile::tempdir().unwrap();
        let torch = t.path().join("site-packages/torch");
        let lib = t
            .path()
            .join("site-packages/nvidia/cu13/lib/libnvrtc.so.13");
        touch(&lib);
        let env = SearchEnv {
            libtorch: Some(torch),
            toolkit_root: t.path().join("none"),
            ..Default::default()
        };
        assert_eq!(search(&env, Some(13)).libraries, vec![lib]);
    }

    #[test]
    fn major_versions_come_from_file_names() {
        assert_eq!(major_of(Path::new("/a/libnvrtc.so.13")), Some(13));
        assert_eq!(major_of(Path::new("/a/libnvrtc.so.12.8.93")), Some(12));
        assert_eq!(major_of(Path::new("/a/libnvrtc.so")), None);
    }

    #[test]
    fn a_file_that_is_not_a_library_does_not_load() {
        let t = tempfile::tempdir().unwrap();
        let fake = t.path().join("libnvrtc.so.12");
        touch(&fake);
        let e = preload(&fake).unwrap_err();
        assert!(!e.is_empty());
    }

    /// The library tests link libtorch: its folder is found in this process's maps.
    #[cfg(feature = "torch")]
    #[test]
    fn finds_the_loaded_libtorch() {
        let _ = tch::Tensor::zeros([1], (tch::Kind::Float, tch::Device::Cpu));
        let dir = loaded_libtorch_dir().expect("libtorch is mapped");
        assert!(dir.join("libc10.so").is_file(), "{}", dir.display());
    }
}
