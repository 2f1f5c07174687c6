// kernels/env_step.cu compiled for the host CPU: the `cuda-host` backend
// (src/env/gpu/host.rs). The kernels run as CUDA would run them, one call per thread
// index, over the blocks the caller hands this translation unit (the Rust side splits
// the grid across its worker threads). See host_shim.h for what keeps the results equal
// to the GPU's. No C++ runtime is used: nothing here needs libstdc++.
#include "host_shim.h"
#include "layout.h"

// extern "C" kernels named step/observe/scatter would be global C symbols: renamed here.
#define reset_all sim_k_reset_all
#define observe sim_k_observe
#define step sim_k_step
#define scatter sim_k_scatter
#include "env_step.cu"
#undef reset_all
#undef observe
#undef step
#undef scatter

// The 16 buffers in src/env/gpu/mod.rs's Buf::ALL order, as the kernels declare them.
#define SIM_ARGS                                                                              \
    (const Params *)b[0], (const double *)b[1], (const Bar *)b[2], (const float *)b[3],        \
        (const SlotInfo *)b[4], (const unsigned *)b[5], (unsigned *)b[6], (long long *)b[7],   \
        (double *)b[8], (const unsigned char *)b[9], (float *)b[10], (float *)b[11],           \
        (unsigned *)b[12], (unsigned *)b[13], (LogRec *)b[14], (unsigned *)b[15], tick

// Runs kernel `entry` (0 reset_all, 1 observe, 2 step, 3 scatter) for blocks first_block..end_block
// of `block` threads each. Returns 0, -1 when this thread's floating-point environment is
// not IEEE round-to-nearest without flush-to-zero, -2 for an unknown entry.
extern "C" int sim_host_launch(unsigned entry, void *const *b, unsigned tick, unsigned block,
                               unsigned first_block, unsigned end_block) {
    if (!sim_fp_env_ok()) {
        return -1;
    }
    if (entry > 3u) {
        return -2;
    }
    blockDim = {block, 1u, 1u};
    for (unsigned g = first_block; g < end_block; ++g) {
        blockIdx = {g, 0u, 0u};
        for (unsigned t = 0u; t < block; ++t) {
            threadIdx = {t, 0u, 0u};
            switch (entry) {
            case 0u:
                sim_k_reset_all(SIM_ARGS);
                break;
            case 1u:
                sim_k_observe(SIM_ARGS);
                break;
            case 2u:
                sim_k_step(SIM_ARGS);
                break;
            default:
                sim_k_scatter(SIM_ARGS);
                break;
            }
        }
    }
    return 0;
}

// a*b + c as this translation unit compiles it: the Rust side compares it with the
// separately rounded result to prove that no fma contraction was let in by the flags.
extern "C" double sim_contract_probe(double a, double b, double c) {
    return a * b + c;
}
