// The CUDA constructs kernels/env_step.cu uses, for a host C++ compiler (the `cuda-host`
// backend, src/env/gpu/host.rs; built by build.rs with the flags below). With it the
// conformance tests run the CUDA source itself, bit for bit against the CPU engine, on a
// machine without a GPU.
//
// What keeps host results equal to the GPU's:
// - doubles in SSE2 / NEON registers (never x87's 80-bit ones), round to nearest, no
//   flush to zero: sim_fp_env_ok() checks the thread's control register before a launch;
// - no contraction of a*b+c into an fma: built with -ffp-contract=off, as NVRTC runs with
//   --fmad=false (sim_contract_probe lets the Rust side check the flag took effect);
// - no -ffast-math (an #error below), -fwrapv (signed overflow wraps, as on the GPU);
// - d2i(): a double to i64 saturating with NaN to 0, as PTX's cvt.rzi.s64.f64 and Rust's
//   `as i64` do (a C++ cast is undefined outside the range);
// - fabs, fmax and sqrt are the compiler's IEEE builtins (sqrt is correctly rounded on
//   both sides; fmax only selects an argument).
#pragma once

#if defined(__FAST_MATH__)
#error "kernels/env_step.cu must not be compiled with -ffast-math: the host build must equal the GPU bit for bit"
#endif
#if !defined(__x86_64__) && !defined(__aarch64__)
#error "the host build of kernels/env_step.cu supports x86-64 and aarch64 only (no x87 doubles)"
#endif

static_assert(sizeof(long long) == 8 && sizeof(unsigned) == 4, "i64 and u32 widths");
static_assert(sizeof(double) == 8 && sizeof(float) == 4, "f64 and f32 widths");

#define SIM_HOST_BUILD 1
#define __device__
#define __global__
#define __forceinline__ inline __attribute__((always_inline))

// The thread index: set by sim_host_launch for each simulated thread, per OS thread.
struct sim_dim3 {
    unsigned x, y, z;
};
static thread_local sim_dim3 threadIdx, blockIdx, blockDim;

static inline unsigned atomicAdd(unsigned *p, unsigned v) {
    return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}

#define fabs __builtin_fabs
#define fmax __builtin_fmax
#define sqrt __builtin_sqrt

static inline long long d2i(double x) {
    if (x != x) {
        return 0;
    }
    if (x >= 9223372036854775807.0) {  // 2^63: the first double above the range
        return 9223372036854775807LL;
    }
    if (x <= -9223372036854775808.0) {
        return -9223372036854775807LL - 1;
    }
    return (long long)x;
}

// Round to nearest, no flush-to-zero or denormals-are-zero on this thread.
static inline bool sim_fp_env_ok() {
#if defined(__x86_64__)
    unsigned csr = __builtin_ia32_stmxcsr();
    const unsigned ftz = 1u << 15, daz = 1u << 6, rounding = 3u << 13;
    return (csr & (ftz | daz | rounding)) == 0u;
#else
    unsigned long fpcr = __builtin_aarch64_get_fpcr64();
    const unsigned long fz = 1ul << 24, rmode = 3ul << 22;
    return (fpcr & (fz | rmode)) == 0ul;
#endif
}
