//! The CUDA backend: `kernels/env_step.cu` behind the generated prelude, compiled to PTX
//! by NVRTC at run time and launched through the driver API (cudarc, both libraries
//! loaded dynamically: the binary builds and starts without CUDA).
//!
//! # Ordering
//! Every copy and every launch goes to **one stream**, the primary context's legacy
//! default stream, in submission order, so a kernel sees every earlier upload and a read
//! sees every earlier step. It is also libtorch's current stream (tch never sets another),
//! so a learner on the same GPU that reads and writes the buffers in place
//! ([`CudaDevice::device_ptr`], `crate::learn::device_env`) is ordered with the steps
//! without any synchronization. A read waits for the stream, and so for all work submitted
//! before it. [`super::GpuEnvs`] uploads days and queue entries only between steps, never
//! while a step could read them. The context's cross-stream event tracking is turned off:
//! with one stream it only costs time.
//!
//! # Copies
//! Small uploads (queue entries) go straight from pageable memory (`cuMemcpyHtoDAsync`
//! stages them before it returns); the step counter is a kernel argument. Large ones
//! (actions of 16,384 environments and more, days going into their slots) go through a
//! pinned staging ring of [`STAGING_BYTES`]: each copy takes the next free stretch and
//! records an event behind it, and the host waits only when the ring comes round to a
//! stretch whose copy has not run yet, that is when it is a whole ring of uploads ahead
//! of the GPU. Readbacks ([`Device::read_start`]) copy into pinned (cached) memory behind
//! an event that the host queries, and waits for only if the bytes are asked for before
//! they arrived.
//!
//! # Bit-exact arithmetic
//! The kernels compile with [`NVRTC_OPTIONS`]: no multiply-add contraction
//! (`--fmad=false`), no flushing of subnormals, IEEE division and square roots, so every
//! f64 operation rounds as the CPU engine's does.
//!
//! # Finding NVRTC
//! cudarc opens `libnvrtc` by name (the dynamic loader's search); when that fails,
//! [`super::nvrtc`] looks beside the loaded libtorch, in Python environments'
//! `nvidia` packages, on `LD_LIBRARY_PATH` and in CUDA 12 and 13 toolkits, loads the
//! first usable copy by path, and otherwise names every place it looked.

use super::layout;
use super::{BLOCK, Buf, Capacity, Device, Entry, N_BUFS};
use crate::error::{Error, Result};
use cudarc::driver::{
    CudaContext, CudaEvent, CudaFunction, CudaSlice, CudaStream, DevicePtr, LaunchConfig,
    PinnedHostSlice, PushKernelArg,
};
use cudarc::nvrtc::{CompileError, CompileOptions, Ptx};
use std::sync::{Arc, Mutex, OnceLock};

const SOURCE: &str = include_str!("../../../kernels/env_step.cu");

/// Bytes of each pinned staging buffer for large uploads.
pub const STAGING_BYTES: usize = 8 << 20;
/// Uploads of at least this many bytes go through the staging buffers.
const STAGED_FROM: usize = 64 << 10;
const SOURCE_NAME: &str = "kernels/env_step.cu";

/// The options NVRTC compiles the kernels with (plus `--gpu-architecture=<arch>` when an
/// architecture is given): f64 results bit-identical with the CPU engine.
pub const NVRTC_OPTIONS: &[&str] = &[
    "--fmad=false",
    "--ftz=false",
    "--prec-div=true",
    "--prec-sqrt=true",
];

use super::nvrtc::{self, HELP as NVRTC_HELP};

/// The full kernel text: the generated declarations, then the kernel source.
pub fn kernel_source() -> Result<String> {
    layout::check_source_version(SOURCE_NAME, SOURCE)?;
    Ok(format!("{}\n{SOURCE}", layout::cuda_prelude()))
}

/// Compiles the kernels ([`kernel_source`]) to PTX for `arch` (e.g. `"compute_90"`; NVRTC's
/// default when `None`).
pub fn compile_ptx(arch: Option<&str>) -> Result<String> {
    compile_ptx_source(&kernel_source()?, arch)
}

/// Compiles CUDA source `src` to PTX with [`NVRTC_OPTIONS`]. Errors (NVRTC missing, a
/// compile error with NVRTC's log) are [`Error::Device`].
pub fn compile_ptx_source(src: &str, arch: Option<&str>) -> Result<String> {
    ensure_nvrtc()?;
    if src.contains('\0') {
        return Err(Error::Device(
            "CUDA kernel source contains a NUL byte".into(),
        ));
    }
    let mut options: Vec<String> = NVRTC_OPTIONS.iter().map(|s| s.to_string()).collect();
    if let Some(a) = arch {
        options.push(format!("--gpu-architecture={a}"));
    }
    let opts = CompileOptions {
        options,
        name: Some(SOURCE_NAME.into()),
        ..Default::default()
    };
    // cudarc panics where the library lacks a symbol; NVRTC was found above, so this is a
    // last resort that keeps a broken installation an error.
    let compiled = std::panic::catch_unwind(|| cudarc::nvrtc::compile_ptx_with_opts(src, opts))
        .map_err(|p| {
            Error::Device(format!(
                "NVRTC failed unexpectedly ({}): {NVRTC_HELP}",
                panic_text(&p)
            ))
        })?;
    match compiled {
        Ok(ptx) => Ok(ptx.to_src()),
        Err(CompileError::CompileError {
            nvrtc,
            options,
            log,
        }) => Err(Error::Device(format!(
            "NVRTC could not compile {SOURCE_NAME} ({nvrtc:?}, options {}):\n{}",
            options.join(" "),
            log.to_string_lossy().trim_end()
        ))),
        Err(e) => Err(Error::Device(format!("NVRTC: {e}"))),
    }
}

/// Compiles the kernels ([`kernel_source`]) to machine code for `arch` (e.g. `"sm_120"`)
/// with [`NVRTC_OPTIONS`]: NVRTC runs ptxas, so this proves that the kernels build for
/// that chip without one. Returns the cubin (an ELF image).
pub fn compile_cubin(arch: &str) -> Result<Vec<u8>> {
    use cudarc::nvrtc::{result, sys};
    ensure_nvrtc()?;
    let nul = |_| Error::Device("CUDA kernel source contains a NUL byte".into());
    let src = std::ffi::CString::new(kernel_source()?).map_err(nul)?;
    let name = std::ffi::CString::new(SOURCE_NAME).map_err(nul)?;
    let prog = result::create_program(&src, Some(&name))
        .map_err(|e| Error::Device(format!("NVRTC: creating the program: {e:?}")))?;
    /// Destroys the program on every path.
    struct Program(sys::nvrtcProgram);
    impl Drop for Program {
        fn drop(&mut self) {
            // SAFETY: created above and destroyed once, here.
            let _ = unsafe { result::destroy_program(self.0) };
        }
    }
    let prog = Program(prog);
    let mut options: Vec<String> = NVRTC_OPTIONS.iter().map(|s| s.to_string()).collect();
    options.push(format!("--gpu-architecture={arch}"));
    // SAFETY: a live program, options without NUL bytes.
    if let Err(e) = unsafe { result::compile_program(prog.0, &options) } {
        // SAFETY: as above.
        let log = unsafe { result::get_program_log(prog.0) }
            .map(|l| {
                let bytes: Vec<u8> = l.iter().map(|&c| c as u8).take_while(|&c| c != 0).collect();
                String::from_utf8_lossy(&bytes).trim_end().to_string()
            })
            .unwrap_or_default();
        return Err(Error::Device(format!(
            "NVRTC could not compile {SOURCE_NAME} for {arch} ({e:?}, options {}):\n{log}",
            options.join(" ")
        )));
    }
    let mut size = 0usize;
    // SAFETY: a compiled program; writes one usize.
    unsafe { sys::nvrtcGetCUBINSize(prog.0, &mut size) }
        .result()
        .map_err(|e| Error::Device(format!("NVRTC: cubin size for {arch}: {e:?}")))?;
    if size == 0 {
        return Err(Error::Device(format!(
            "NVRTC {} wrote no machine code for {arch}",
            nvrtc_version().unwrap_or_default()
        )));
    }
    let mut cubin = vec![0u8; size];
    // SAFETY: `cubin` holds the `size` bytes NVRTC reported.
    unsafe { sys::nvrtcGetCUBIN(prog.0, cubin.as_mut_ptr().cast()) }
        .result()
        .map_err(|e| Error::Device(format!("NVRTC: cubin for {arch}: {e:?}")))?;
    Ok(cubin)
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic".into())
}

/// Makes NVRTC loadable by cudarc: already on the loader's path, or loaded here from the
/// first usable copy [`nvrtc::search`] finds. Decided once per process.
fn ensure_nvrtc() -> Result<()> {
    static FOUND: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            // SAFETY: opening a library by name runs its initializers; NVRTC's are benign.
            if unsafe { cudarc::nvrtc::sys::is_culib_present() } {
                return Ok(());
            }
            let found = nvrtc::search(&nvrtc::SearchEnv::from_process(), driver_major());
            let mut failed = Vec::new();
            for lib in &found.libraries {
                // NVRTC opens its builtins library by soname when it compiles: load the
                // one beside it first.
                for b in nvrtc::builtins_beside(lib) {
                    let _ = nvrtc::preload(&b);
                }
                match nvrtc::preload(lib) {
                    // SAFETY: as above.
                    Ok(()) if unsafe { cudarc::nvrtc::sys::is_culib_present() } => return Ok(()),
                    Ok(()) => failed.push(format!(
                        "{} (loaded, but its soname is none that cudarc opens)",
                        lib.display()
                    )),
                    Err(e) => failed.push(format!("{} ({e})", lib.display())),
                }
            }
            Err(format!(
                "--backend cuda: NVRTC (CUDA's runtime compiler, libnvrtc.so.13 or .12) was not found, so the CUDA kernels cannot be compiled. Looked at: the loader's search (LD_LIBRARY_PATH, ldconfig) for {}; {}.{} To fix: {NVRTC_HELP}.",
                nvrtc::NAMES.join(", "),
                found.account.join("; "),
                if failed.is_empty() {
                    String::new()
                } else {
                    format!(" Found but not loadable: {}.", failed.join(", "))
                }
            ))
        })
        .clone()
        .map_err(Error::Device)
}

/// The version of the NVRTC that cudarc uses, as "major.minor" (once it is loaded).
pub fn nvrtc_version() -> Option<String> {
    ensure_nvrtc().ok()?;
    let (mut major, mut minor) = (0, 0);
    // SAFETY: writes two ints; the library is loaded.
    let r = unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) };
    (r == cudarc::nvrtc::sys::nvrtcResult::NVRTC_SUCCESS).then(|| format!("{major}.{minor}"))
}

/// The driver's CUDA major version, when a driver library is present.
fn driver_major() -> Option<u32> {
    // SAFETY: opening a library by name runs its initializers.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return None;
    }
    driver_version()?.split('.').next()?.parse().ok()
}

/// PTX per architecture, compiled once per process.
fn cached_ptx(arch: Option<&str>) -> Result<String> {
    static CACHE: Mutex<Vec<(Option<String>, String)>> = Mutex::new(Vec::new());
    let key = arch.map(str::to_string);
    if let Some((_, ptx)) = CACHE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|(a, _)| *a == key)
    {
        return Ok(ptx.clone());
    }
    let ptx = compile_ptx(arch)?;
    CACHE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((key, ptx.clone()));
    Ok(ptx)
}

fn dev_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Device(format!("cuda: {what}: {e}"))
}

/// The driver's CUDA version as "major.minor".
fn driver_version() -> Option<String> {
    let mut v: std::ffi::c_int = 0;
    // SAFETY: writes one int; the driver library is loaded (checked in `open`).
    let r = unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut v) };
    (r == cudarc::driver::sys::CUresult::CUDA_SUCCESS)
        .then(|| format!("{}.{}", v / 1000, v % 1000 / 10))
}

/// A context on the first CUDA device: an error (never a panic) when there is no driver
/// or no device.
fn first_context() -> Result<Arc<CudaContext>> {
    // SAFETY: opening a library by name runs its initializers.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err(Error::Device(
            "--backend cuda: no CUDA driver (libcuda) found: this machine has no NVIDIA driver installed; use --backend wgpu or cpu".into(),
        ));
    }
    let count = CudaContext::device_count().map_err(|e| {
        Error::Device(format!(
            "--backend cuda: the CUDA driver found no usable device (cuInit: {e}); use --backend wgpu or cpu"
        ))
    })?;
    if count < 1 {
        return Err(Error::Device(
            "--backend cuda: the CUDA driver reports no device; use --backend wgpu or cpu".into(),
        ));
    }
    CudaContext::new(0).map_err(|e| dev_err("creating the context", e))
}

/// The driver and the first device, without compiling anything, e.g. "NVIDIA H100 80GB
/// HBM3, compute capability 9.0, 79.2 GiB, 132 SMs, driver CUDA 13.0".
pub fn probe() -> Result<String> {
    let ctx = first_context()?;
    let name = ctx.name().map_err(|e| dev_err("device name", e))?;
    let (major, minor) = ctx
        .compute_capability()
        .map_err(|e| dev_err("compute capability", e))?;
    let mem = ctx.total_mem().map_err(|e| dev_err("device memory", e))?;
    let sms = ctx
        .attribute(
            cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
        )
        .map_or_else(|_| "?".to_string(), |n| n.to_string());
    Ok(format!(
        "{name}, compute capability {major}.{minor}, {:.1} GiB, {sms} SMs, driver CUDA {}",
        mem as f64 / (1u64 << 30) as f64,
        driver_version().unwrap_or_else(|| "?".into())
    ))
}

/// One CUDA device: a context, one stream, the step module and (after
/// [`Device::alloc`]) one allocation per [`Buf`].
pub struct CudaDevice {
    /// Dropped first: the allocations are freed on the stream before it goes.
    bufs: Vec<CudaSlice<u8>>,
    /// The pinned staging ring for large uploads (allocated on the first).
    staging: Option<StagingRing>,
    /// Pinned memory for readbacks, the event behind the started one and its length.
    readback: Option<Pinned>,
    readback_event: Option<CudaEvent>,
    readback_len: Option<usize>,
    groups: u32,
    /// `reset_all`, `observe`, `step` (they hold the module).
    funcs: Vec<CudaFunction>,
    stream: Arc<CudaStream>,
    ctx: Arc<CudaContext>,
    name: String,
    driver: String,
}

/// Page-locked host memory, addressed through the pointer the driver gave.
struct Pinned {
    _mem: PinnedHostSlice<u8>,
    base: *mut u8,
    len: usize,
}

// SAFETY: the memory is owned by `Pinned` and reached only through `&mut self`.
unsafe impl Send for Pinned {}

impl Pinned {
    /// `len` bytes, write-combined (fast for the host to write and the GPU to read, slow
    /// for the host to read) or cached.
    fn new(ctx: &Arc<CudaContext>, len: usize, write_combined: bool) -> Result<Pinned> {
        let flags = if write_combined {
            cudarc::driver::sys::CU_MEMHOSTALLOC_WRITECOMBINED
        } else {
            0
        };
        // SAFETY: the bytes are written (by the host or a copy) before they are read.
        let mut mem = unsafe { ctx.alloc_pinned_with_flags::<u8>(len.max(1), flags) }
            .map_err(|e| dev_err(&format!("allocating {len} bytes of pinned memory"), e))?;
        let base = mem.as_mut_ptr().map_err(|e| dev_err("pinned memory", e))?;
        Ok(Pinned {
            _mem: mem,
            base,
            len: len.max(1),
        })
    }

    /// The bytes in `r` (inside the allocation; the caller knows no copy in flight
    /// touches them).
    fn bytes(&mut self, r: std::ops::Range<usize>) -> &mut [u8] {
        assert!(r.start <= r.end && r.end <= self.len);
        // SAFETY: inside the allocation (asserted), borrowed mutably through `self`.
        unsafe { std::slice::from_raw_parts_mut(self.base.add(r.start), r.len()) }
    }
}

/// Pinned write-combined host memory that large uploads pass through, used as a ring:
/// each copy takes the next stretch and an event is recorded behind it.
struct StagingRing {
    mem: Pinned,
    /// Where the next stretch starts.
    at: usize,
    /// Stretches whose copies may still run, oldest first, with their events.
    in_flight: std::collections::VecDeque<(std::ops::Range<usize>, CudaEvent)>,
    /// Events whose copies have passed, for reuse.
    spare: Vec<CudaEvent>,
    /// The stretch taken last, until its event is recorded.
    taken: Option<std::ops::Range<usize>>,
}

impl StagingRing {
    fn new(ctx: &Arc<CudaContext>) -> Result<StagingRing> {
        Ok(StagingRing {
            mem: Pinned::new(ctx, STAGING_BYTES, true)?,
            at: 0,
            in_flight: Default::default(),
            spare: Vec::new(),
            taken: None,
        })
    }

    /// The next `len` bytes of the ring (`len` ≤ half of it), after the copies that read
    /// them last have run.
    fn take(&mut self, len: usize) -> Result<&mut [u8]> {
        debug_assert!(len <= STAGING_BYTES / 2);
        if self.at + len > STAGING_BYTES {
            self.at = 0;
        }
        let want = self.at..self.at + len;
        let overlaps = |r: &std::ops::Range<usize>| r.start < want.end && want.start < r.end;
        // Copies finish in stream order: wait for the newest overlapping one and every
        // older one with it.
        if let Some(last) = self.in_flight.iter().rposition(|(r, _)| overlaps(r)) {
            for (_, event) in self.in_flight.drain(..=last) {
                event
                    .synchronize()
                    .map_err(|e| dev_err("waiting for a staged copy", e))?;
                self.spare.push(event);
            }
        }
        self.at = want.end;
        self.taken = Some(want.clone());
        Ok(self.mem.bytes(want))
    }

    /// Records the event behind the copy of the stretch taken last.
    fn record(&mut self, stream: &Arc<CudaStream>) -> Result<()> {
        let Some(range) = self.taken.take() else {
            return Ok(());
        };
        let event = match self.spare.pop() {
            Some(e) => e,
            None => stream
                .context()
                .new_event(None)
                .map_err(|e| dev_err("creating an event", e))?,
        };
        event
            .record(stream)
            .map_err(|e| dev_err("recording an event", e))?;
        self.in_flight.push_back((range, event));
        Ok(())
    }
}

impl CudaDevice {
    /// The first CUDA device, with the kernels compiled for it: an error (never a panic)
    /// when there is no driver, no device, no NVRTC, or the driver cannot load the PTX.
    pub fn open() -> Result<CudaDevice> {
        let ctx = first_context()?;
        // The legacy default stream: libtorch's too (module docs).
        let stream = ctx.default_stream();
        // SAFETY: one stream does all the work (module docs), so no allocation needs the
        // events that order uses across streams.
        unsafe { ctx.disable_event_tracking() };
        let name = ctx.name().map_err(|e| dev_err("device name", e))?;
        let driver = driver_version().unwrap_or_else(|| "?".into());
        let (major, minor) = ctx
            .compute_capability()
            .map_err(|e| dev_err("compute capability", e))?;
        let arch = format!("compute_{major}{minor}");
        // A device newer than this NVRTC knows runs PTX for NVRTC's default architecture.
        let ptx = match cached_ptx(Some(&arch)) {
            Ok(p) => p,
            Err(e) if e.to_string().contains("INVALID_OPTION") => cached_ptx(None)?,
            Err(e) => return Err(e),
        };
        let module = ctx.load_module(Ptx::from_src(ptx)).map_err(|e| {
            dev_err(
                &format!(
                    "loading the step kernels on {name} (driver CUDA {driver}; the PTX comes from NVRTC {}, and a driver older than NVRTC's CUDA major version refuses it: install the nvidia-cuda-nvrtc that matches the driver)", nvrtc_version().unwrap_or_else(|| "?".into())
                ),
                e,
            )
        })?;
        let load = |entry: Entry| {
            module
                .load_function(entry.name())
                .map_err(|e| dev_err(&format!("kernel {}", entry.name()), e))
        };
        let funcs = Entry::ALL
            .into_iter()
            .map(load)
            .collect::<Result<Vec<_>>>()?;
        Ok(CudaDevice {
            bufs: Vec::new(),
            staging: None,
            readback: None,
            readback_event: None,
            readback_len: None,
            groups: 0,
            funcs,
            stream,
            ctx,
            name,
            driver,
        })
    }

    /// The stream every copy and launch goes to (see the module docs on ordering).
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// Copies `bytes` to `buf` at byte `start` through the pinned staging ring, in chunks
    /// of at most half the ring (module docs: Copies).
    fn write_staged(&mut self, buf: Buf, start: usize, bytes: &[u8]) -> Result<()> {
        if self.staging.is_none() {
            self.staging = Some(StagingRing::new(&self.ctx)?);
        }
        let ring = self.staging.as_mut().expect("allocated above");
        let (base, _sync) = self.bufs[buf as usize].device_ptr(&self.stream);
        let mut done = 0;
        for chunk in bytes.chunks(STAGING_BYTES / 2) {
            let host = ring.take(chunk.len())?;
            host.copy_from_slice(chunk);
            let dst = base + (start + done) as u64;
            // SAFETY: `dst .. dst + chunk.len()` lies inside the buffer (`buf_range` checked
            // the whole write); the ring leaves the pinned source untouched until the event
            // recorded behind this copy has passed.
            unsafe {
                cudarc::driver::result::memcpy_htod_async(dst, host, self.stream.cu_stream())
            }
            .map_err(|e| dev_err(&format!("copy to {buf:?}"), e))?;
            ring.record(&self.stream)?;
            done += chunk.len();
        }
        Ok(())
    }

    fn buf_range(&self, buf: Buf, offset: u64, len: usize) -> Result<std::ops::Range<usize>> {
        let s = self
            .bufs
            .get(buf as usize)
            .ok_or_else(|| Error::Device("cuda: buffers used before alloc".into()))?;
        let start = usize::try_from(offset).ok();
        match start.and_then(|a| a.checked_add(len).map(|b| a..b)) {
            Some(r) if r.end <= s.len() => Ok(r),
            _ => Err(Error::Device(format!(
                "cuda: {len} bytes at offset {offset} do not fit the {buf:?} buffer ({} bytes)",
                s.len()
            ))),
        }
    }
}

impl Device for CudaDevice {
    fn describe(&self) -> String {
        format!("{} (CUDA {})", self.name, self.driver)
    }

    fn capacity(&self) -> Capacity {
        match self.ctx.mem_get_info() {
            Ok((free, _total)) => Capacity {
                max_buffer: free as u64,
                free: Some(free as u64),
            },
            Err(_) => Capacity {
                max_buffer: self.ctx.total_mem().map_or(u64::MAX, |t| t as u64),
                free: None,
            },
        }
    }

    fn alloc(&mut self, sizes: &[u64; N_BUFS], params: &layout::Params) -> Result<()> {
        self.bufs.clear();
        let mut bufs = Vec::with_capacity(N_BUFS);
        for b in Buf::ALL {
            let size = sizes[b as usize];
            let len = usize::try_from(size)
                .map_err(|_| Error::Device(format!("cuda: the {b:?} buffer of {size} bytes")))?;
            let s = self
                .stream
                .alloc_zeros::<u8>(len)
                .map_err(|e| dev_err(&format!("allocating the {b:?} buffer ({size} bytes)"), e))?;
            bufs.push(s);
        }
        self.bufs = bufs;
        self.groups = params.n_envs.div_ceil(BLOCK);
        Ok(())
    }

    fn write(&mut self, buf: Buf, offset: u64, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let r = self.buf_range(buf, offset, bytes.len())?;
        if bytes.len() >= STAGED_FROM {
            return self.write_staged(buf, r.start, bytes);
        }
        let mut dst = self.bufs[buf as usize].slice_mut(r);
        self.stream
            .memcpy_htod(bytes, &mut dst)
            .map_err(|e| dev_err(&format!("copy to {buf:?}"), e))
    }

    fn read(&mut self, buf: Buf, offset: u64, out: &mut [u8]) -> Result<()> {
        if out.is_empty() {
            return Ok(());
        }
        let r = self.buf_range(buf, offset, out.len())?;
        let src = self.bufs[buf as usize].slice(r);
        self.stream
            .memcpy_dtoh(&src, out)
            .map_err(|e| dev_err(&format!("copy from {buf:?}"), e))?;
        self.sync()
    }

    fn read_start(&mut self, regions: &[(Buf, u64, usize)]) -> Result<()> {
        if self.readback_len.is_some() {
            return Err(Error::Device(
                "cuda: a readback was started before the last one was taken".into(),
            ));
        }
        let len: usize = regions.iter().map(|r| r.2).sum();
        let ranges = regions
            .iter()
            .map(|&(buf, offset, bytes)| self.buf_range(buf, offset, bytes))
            .collect::<Result<Vec<_>>>()?;
        if self.readback.as_ref().is_none_or(|p| p.len < len) {
            self.readback = Some(Pinned::new(&self.ctx, len.next_power_of_two(), false)?);
        }
        if self.readback_event.is_none() {
            self.readback_event = Some(
                self.ctx
                    .new_event(None)
                    .map_err(|e| dev_err("creating an event", e))?,
            );
        }
        let host = self.readback.as_mut().expect("allocated above");
        let mut at = 0;
        for (&(buf, _, bytes), r) in regions.iter().zip(ranges) {
            if bytes == 0 {
                continue;
            }
            let (base, _sync) = self.bufs[buf as usize].device_ptr(&self.stream);
            // SAFETY: the source range lies inside the buffer (`buf_range`), the
            // destination inside the pinned allocation, which the host does not touch
            // until the event recorded behind the copies has passed (`read_finish`).
            unsafe {
                cudarc::driver::result::memcpy_dtoh_async(
                    host.bytes(at..at + bytes),
                    base + r.start as u64,
                    self.stream.cu_stream(),
                )
            }
            .map_err(|e| dev_err(&format!("copy from {buf:?}"), e))?;
            at += bytes;
        }
        self.readback_event
            .as_ref()
            .expect("created above")
            .record(&self.stream)
            .map_err(|e| dev_err("recording an event", e))?;
        self.readback_len = Some(len);
        Ok(())
    }

    fn read_finish(&mut self, out: &mut Vec<u8>) -> Result<bool> {
        let len = self
            .readback_len
            .take()
            .ok_or_else(|| Error::Device("cuda: no readback was started".into()))?;
        let event = self
            .readback_event
            .as_ref()
            .expect("a readback was started");
        let ready = event
            .try_is_complete()
            .map_err(|e| dev_err("running the step kernels", e))?;
        if !ready {
            event
                .synchronize()
                .map_err(|e| dev_err("running the step kernels", e))?;
        }
        out.clear();
        if len > 0 {
            let host = self.readback.as_mut().expect("a readback was started");
            out.extend_from_slice(host.bytes(0..len));
        }
        Ok(!ready)
    }

    fn launch(&mut self, entry: Entry, tick: u32) -> Result<()> {
        if self.bufs.len() != N_BUFS {
            return Err(Error::Device("cuda: launch before alloc".into()));
        }
        let func = &self.funcs[entry as usize];
        let cfg = LaunchConfig {
            grid_dim: (self.groups, 1, 1),
            block_dim: (BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut args = self.stream.launch_builder(func);
        for b in &self.bufs {
            args.arg(b);
        }
        args.arg(&tick);
        // SAFETY: the arguments are the 16 buffers in `Buf::ALL` order and the step
        // counter, as the kernels declare them; every index the kernels compute stays
        // inside the sizes that `GpuEnvs` allocated for these parameters.
        unsafe { args.launch(cfg) }
            .map(|_| ())
            .map_err(|e| dev_err(&format!("launching {}", entry.name()), e))
    }

    fn sync(&mut self) -> Result<()> {
        self.stream
            .synchronize()
            .map_err(|e| dev_err("running the step kernels", e))
    }

    fn device_ptr(&self, buf: Buf) -> Option<u64> {
        self.bufs.get(buf as usize).map(|s| {
            let (ptr, _sync) = s.device_ptr(&self.stream);
            ptr
        })
    }
}
