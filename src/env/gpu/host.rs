//! The `cuda-host` backend: `kernels/env_step.cu`, the CUDA backend's own kernel source,
//! compiled for the host CPU by build.rs (`kernels/host_entry.cpp` with the small shim
//! `kernels/host_shim.h`) and run behind the same [`Device`] interface as a GPU.
//!
//! It exists so that every line of the CUDA step executes in CI, on machines without a
//! GPU: the conformance tests (`tests/gpu_conformance.rs`) step it next to the CPU engine
//! and require equal outputs bit for bit, so a change to the CUDA kernels that breaks
//! parity fails there and not first on a user's card. It is also a way to measure the host
//! side of the GPU engine (`bench env --backend cuda-host`). It is not a fast CPU engine:
//! `--backend cpu` is.
//!
//! What it cannot show: anything the GPU's compiler or hardware adds (NVRTC's code
//! generation, alignment, launch configuration, real concurrency). `sim-train doctor`
//! runs the same conformance on an NVIDIA card for that.
//!
//! Buffers are host memory (8-byte aligned, zeroed); copies are `memcpy`s; a launch runs
//! the kernel for every thread index of the grid, the blocks split across the rayon
//! pool, and returns when it is done (so [`Device::sync`] has nothing to wait for).

use super::layout::Params;
use super::{BLOCK, Buf, Capacity, Device, Entry, N_BUFS};
use crate::error::{Error, Result};
use rayon::prelude::*;

unsafe extern "C" {
    /// Runs kernel `entry` (`Entry as u32`: 0 reset_all, 1 observe, 2 step, 3 scatter) for blocks
    /// `first_block..end_block` of `block` threads; 0, or -1 when the calling thread's
    /// floating-point environment is not round-to-nearest without flush-to-zero.
    fn sim_host_launch(
        entry: u32,
        bufs: *const *mut u8,
        tick: u32,
        block: u32,
        first_block: u32,
        end_block: u32,
    ) -> i32;
    /// `a * b + c` as the kernels' translation unit compiles it.
    fn sim_contract_probe(a: f64, b: f64, c: f64) -> f64;
}

/// The 16 buffer addresses for one launch, shared by the worker threads.
struct BufPtrs([*mut u8; N_BUFS]);

// SAFETY: the kernels write only their own environment's words of each buffer (and the
// log record whose index an atomic add on `ctl` gave them), so threads that run disjoint
// blocks never write the same byte; the buffers outlive the launch, which returns only
// after every worker finished.
unsafe impl Send for BufPtrs {}
unsafe impl Sync for BufPtrs {}

impl BufPtrs {
    /// Through a method, so closures capture the wrapper and not the bare array.
    fn as_ptr(&self) -> *const *mut u8 {
        self.0.as_ptr()
    }
}

pub struct HostCudaDevice {
    /// `u64` words: every record the kernels read is at most 8-byte aligned.
    bufs: Vec<Vec<u64>>,
    lens: [usize; N_BUFS],
    groups: u32,
    /// The bytes of a started readback (launches have finished when they return, so the
    /// copy is made at once).
    readback: Option<Vec<u8>>,
}

impl HostCudaDevice {
    /// Fails when the host compiler contracted `a*b+c` into a fused multiply-add (a
    /// `CXXFLAGS` with `-ffp-contract=fast` or `-ffast-math` and an FMA target), which
    /// would make results differ from the GPU's in the last bit.
    pub fn open() -> Result<HostCudaDevice> {
        let (a, b, c) = (1.0 + f64::EPSILON * 4.0, 1.0 - f64::EPSILON * 4.0, -1.0);
        // SAFETY: a pure function of three doubles.
        let host = unsafe { sim_contract_probe(a, b, c) };
        let separate = std::hint::black_box(a) * std::hint::black_box(b) + c;
        if host.to_bits() != separate.to_bits() {
            return Err(Error::Device(format!(
                "--backend cuda-host: the kernels were compiled with fused multiply-adds (a*b+c gave {host:e}, not {separate:e}); rebuild without -ffp-contract=fast or -ffast-math in CXXFLAGS"
            )));
        }
        Ok(HostCudaDevice {
            bufs: Vec::new(),
            lens: [0; N_BUFS],
            groups: 0,
            readback: None,
        })
    }

    fn range(&self, buf: Buf, offset: u64, len: usize) -> Result<std::ops::Range<usize>> {
        if self.bufs.len() != N_BUFS {
            return Err(Error::Device("cuda-host: buffers used before alloc".into()));
        }
        let size = self.lens[buf as usize];
        let start = usize::try_from(offset).ok();
        match start.and_then(|a| a.checked_add(len).map(|b| a..b)) {
            Some(r) if r.end <= size => Ok(r),
            _ => Err(Error::Device(format!(
                "cuda-host: {len} bytes at offset {offset} do not fit the {buf:?} buffer ({size} bytes)"
            ))),
        }
    }

    fn bytes(&self, buf: Buf) -> &[u8] {
        &bytemuck::cast_slice(&self.bufs[buf as usize])[..self.lens[buf as usize]]
    }

    fn bytes_mut(&mut self, buf: Buf) -> &mut [u8] {
        let len = self.lens[buf as usize];
        &mut bytemuck::cast_slice_mut(&mut self.bufs[buf as usize])[..len]
    }
}

impl Device for HostCudaDevice {
    fn describe(&self) -> String {
        format!(
            "host CPU, {} threads (kernels/env_step.cu compiled for the host)",
            rayon::current_num_threads()
        )
    }

    fn capacity(&self) -> Capacity {
        Capacity {
            max_buffer: isize::MAX as u64,
            free: crate::util::mem::available(),
        }
    }

    fn alloc(&mut self, sizes: &[u64; N_BUFS], params: &Params) -> Result<()> {
        self.bufs.clear();
        for b in Buf::ALL {
            let size = sizes[b as usize];
            let len = usize::try_from(size)
                .ok()
                .filter(|&l| l <= isize::MAX as usize)
                .ok_or_else(|| Error::Device(format!("cuda-host: the {b:?} buffer of {size} bytes does not fit this machine's address space")))?;
            let mut words = Vec::new();
            words.try_reserve_exact(len.div_ceil(8)).map_err(|_| {
                Error::Device(format!(
                    "cuda-host: cannot allocate the {b:?} buffer ({size} bytes)"
                ))
            })?;
            words.resize(len.div_ceil(8), 0u64);
            self.bufs.push(words);
            self.lens[b as usize] = len;
        }
        self.groups = params.n_envs.div_ceil(BLOCK);
        Ok(())
    }

    fn write(&mut self, buf: Buf, offset: u64, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let r = self.range(buf, offset, bytes.len())?;
        self.bytes_mut(buf)[r].copy_from_slice(bytes);
        Ok(())
    }

    fn read(&mut self, buf: Buf, offset: u64, out: &mut [u8]) -> Result<()> {
        if out.is_empty() {
            return Ok(());
        }
        let r = self.range(buf, offset, out.len())?;
        out.copy_from_slice(&self.bytes(buf)[r]);
        Ok(())
    }

    fn read_start(&mut self, regions: &[(Buf, u64, usize)]) -> Result<()> {
        if self.readback.is_some() {
            return Err(Error::Device(
                "cuda-host: a readback was started before the last one was taken".into(),
            ));
        }
        let mut bytes = Vec::with_capacity(regions.iter().map(|r| r.2).sum());
        for &(buf, offset, len) in regions {
            let r = self.range(buf, offset, len)?;
            bytes.extend_from_slice(&self.bytes(buf)[r]);
        }
        self.readback = Some(bytes);
        Ok(())
    }

    fn read_finish(&mut self, out: &mut Vec<u8>) -> Result<bool> {
        *out = self
            .readback
            .take()
            .ok_or_else(|| Error::Device("cuda-host: no readback was started".into()))?;
        Ok(false)
    }

    fn launch(&mut self, entry: Entry, tick: u32) -> Result<()> {
        if self.bufs.len() != N_BUFS {
            return Err(Error::Device("cuda-host: launch before alloc".into()));
        }
        let code = entry as u32;
        let mut ptrs = [std::ptr::null_mut(); N_BUFS];
        for (p, words) in ptrs.iter_mut().zip(self.bufs.iter_mut()) {
            *p = words.as_mut_ptr().cast::<u8>();
        }
        let ptrs = BufPtrs(ptrs);
        // A few chunks per worker, so that uneven blocks (episode ends) balance out.
        let groups = self.groups;
        let chunk = groups
            .div_ceil(4 * rayon::current_num_threads() as u32)
            .max(1);
        let failed = (0..groups.div_ceil(chunk)).into_par_iter().map(|c| {
            let first = c * chunk;
            let end = (first + chunk).min(groups);
            // SAFETY: the pointers are the 16 buffers `alloc` sized for these parameters,
            // in the kernels' order; see `BufPtrs` on the threads sharing them.
            unsafe { sim_host_launch(code, ptrs.as_ptr(), tick, BLOCK, first, end) }
        });
        match failed.find_any(|&rc| rc != 0) {
            None => Ok(()),
            Some(-1) => Err(Error::Device(
                "cuda-host: a worker thread runs with flush-to-zero or a rounding mode other than to-nearest (something in this process changed MXCSR / FPCR), so results would differ from the GPU's".into(),
            )),
            Some(rc) => Err(Error::Device(format!(
                "cuda-host: launching {} failed ({rc})",
                entry.name()
            ))),
        }
    }

    fn sync(&mut self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_without_contraction() {
        assert!(HostCudaDevice::open().is_ok());
        // The probe's operands tell a fused multiply-add from a separate one.
        let (a, b, c) = (1.0 + f64::EPSILON * 4.0, 1.0 - f64::EPSILON * 4.0, -1.0f64);
        assert_ne!(a.mul_add(b, c).to_bits(), (a * b + c).to_bits());
    }

    #[test]
    fn copies_are_bounds_checked() {
        let mut d = HostCudaDevice::open().unwrap();
        assert!(d.write(Buf::Obs, 0, &[1]).is_err(), "before alloc");
        let mut sizes = [8u64; N_BUFS];
        sizes[Buf::Obs as usize] = 12;
        let p = Params {
            n_envs: 1,
            ..bytemuck::Zeroable::zeroed()
        };
        d.alloc(&sizes, &p).unwrap();
        d.write(Buf::Obs, 4, &[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        let mut out = [0u8; 12];
        d.read(Buf::Obs, 0, &mut out).unwrap();
        assert_eq!(out, [0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
        d.read_start(&[(Buf::Obs, 8, 4), (Buf::Obs, 0, 8)]).unwrap();
        assert!(d.read_start(&[]).is_err(), "one readback at a time");
        let mut back = Vec::new();
        assert!(!d.read_finish(&mut back).unwrap(), "nothing to wait for");
        assert_eq!(back, [5, 6, 7, 8, 0, 0, 0, 0, 1, 2, 3, 4]);
        assert!(d.read_finish(&mut back).is_err(), "taken once");
        assert!(d.read_start(&[(Buf::Obs, 12, 4)]).is_err(), "bounds");
        let e = d.write(Buf::Obs, 5, &[0; 8]).unwrap_err().to_string();
        assert!(e.contains("do not fit the Obs buffer (12 bytes)"), "{e}");
    }
}
