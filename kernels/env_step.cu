// The environment step as CUDA kernels: one thread per environment.
// layout-version: 2
//
// A line-for-line port of shaders/env_step.wgsl. The records (Params, SlotInfo, LogRec,
// Bar) and the state field indices (U_*, I_*, F_*) come from the prelude that
// src/env/gpu/layout.rs generates and the cuda backend (src/env/gpu/cuda.rs) puts in front
// of this file before NVRTC compiles it. Every formula is src/env/exec.rs's, in the same
// order of operations (the step's phases are src/env/cpu.rs's `step_block`), in IEEE
// double and 64-bit integers. The backend compiles with --fmad=false (no a*b+c
// contraction) and --ftz=false, and CUDA's double +, -, *, / and sqrt round correctly, so
// results match the CPU engines' bit for bit. Conversions: (long long) of a double
// truncates (and saturates, as Rust's `as i64`), (float) of a double rounds to nearest.
//
// NVRTC compiles this without system headers: nothing is #included. The same source is
// also compiled for the host CPU (kernels/host_entry.cpp with kernels/host_shim.h, the
// `cuda-host` backend) so that the conformance tests execute every line of it without a
// GPU; anything CUDA-specific therefore goes through the shim's short list (__device__,
// __global__, __forceinline__, the thread index, atomicAdd, fabs, fmax, sqrt, d2i).
//
// State buffers are field-major: field j of environment i is word j*n + i of su (u32),
// si (i64) or sf (f64); the rolling-Sharpe windows follow sf's fields (n x ring_w).
//
// Kernel parameters, in the order of src/env/gpu/mod.rs's Buf::ALL:
//   P             Params (one record)
//   action_table  n_actions position fractions
//   bars, feats   day slots: slot_rows bars and slot_rows x k features per slot
//   slots, halts  per slot: its SlotInfo and max_halts (start, end) ms pairs
//   su, si, sf    the state (u32, i64, f64 fields; then the rolling-Sharpe windows)
//   acts          one action byte per environment
//   obs           n x obs_dim observations, then n x obs_dim final observations of
//                 truncated episodes
//   rewards       one per environment
//   flags         bit 0: terminated, bit 1: truncated
//   queue         per environment, queue_len (day slot, start row) pairs; entry h is
//                 (i*Q + h % Q)
//   log_recs      finished episodes: a ring of log_cap (a power of two) records, record c
//                 at c % log_cap
//   ctl           CTL_LOG_COUNT (atomic record count)
//   tick          (an argument, not a buffer) the host's step counter

typedef long long i64;

#ifndef SIM_HOST_BUILD
// A double to i64 as PTX cvt.rzi.s64.f64 does it: truncated, saturated, NaN to 0 (Rust's
// `as i64`). The host build defines its own, since a plain C++ cast is undefined there
// outside the i64 range.
static __device__ __forceinline__ i64 d2i(double x) { return (i64)x; }
#endif

#define PARAMS const Params *__restrict__ P

static __device__ __forceinline__ unsigned ux(PARAMS, unsigned f, unsigned i) {
    return f * P->n_envs + i;
}

static __device__ __forceinline__ i64 iabs(i64 x) { return x >= 0 ? x : -x; }
static __device__ __forceinline__ i64 imin(i64 a, i64 b) { return a < b ? a : b; }
static __device__ __forceinline__ i64 isign(i64 x) { return x > 0 ? 1 : (x < 0 ? -1 : 0); }

// Rounds half away from zero through truncation (exec::round_half_away).
static __device__ __forceinline__ i64 round_half_away(double x) {
    i64 r = d2i(fabs(x) + 0.5);
    return x < 0.0 ? -r : r;
}

static __device__ __forceinline__ bool halted(const Bar &b) { return (b.flags & FLAG_HALTED) != 0u; }
static __device__ __forceinline__ bool has_quote(const Bar &b) { return (b.flags & FLAG_QUOTE) != 0u; }

static __device__ __forceinline__ bool in_halt(PARAMS, const SlotInfo *__restrict__ slots,
                                               const unsigned *__restrict__ halts,
                                               unsigned slot, unsigned ms) {
    unsigned n = slots[slot].n_halts;
    for (unsigned h = 0u; h < n; h++) {
        unsigned at = 2u * (slot * P->max_halts + h);
        if (ms >= halts[at] && ms < halts[at + 1u]) {
            return true;
        }
    }
    return false;
}

// exec::decide_target
static __device__ __forceinline__ i64 decide_target(PARAMS, double frac, double price, i64 current) {
    double max_shares = (double)d2i(P->max_position_usd / price);
    i64 target = round_half_away(frac * max_shares);
    double diff = (double)iabs(target - current);
    if (target != 0 && diff < P->min_order_frac * max_shares) {
        return current;
    }
    return target;
}

// exec::participation_cap
static __device__ __forceinline__ i64 participation_cap(PARAMS, const Bar &b) {
    return d2i(P->participation * (double)b.volume);
}

// exec::Costs
struct Costs {
    double commission;
    double spread;
    double impact;
};

// exec::fill_costs
static __device__ __forceinline__ Costs fill_costs(PARAMS, double q, double price, double half_spread,
                                                   const Bar &b) {
    double raw;
    if (P->commission_per_share != 0u) {
        raw = q * P->commission;
    } else {
        raw = q * price * P->commission;
    }
    double volume = fmax((double)b.volume, 1.0);
    Costs c;
    c.commission = fmax(raw, P->commission_min);
    c.spread = q * half_spread;
    c.impact = q * price * P->impact_k * (double)b.sigma * sqrt(q / volume);
    return c;
}

static __device__ __forceinline__ double costs_total(const Costs &c) {
    return c.commission + c.spread + c.impact;
}

// The account of one episode while it is stepped (exec::Ledger).
struct Ledger {
    double cash;
    i64 position;
    double avg_price;
    double realized;
    double costs;
    unsigned entry_ms;
    unsigned fills;
};

// exec::Ledger::book_costed (exec::apply_fill inlined).
static __device__ __forceinline__ void book_costed(Ledger *l, i64 shares, double price, const Costs &costs,
                                                   unsigned ts_ms) {
    i64 pos = l->position;
    double avg = l->avg_price;
    i64 new_pos = pos + shares;
    double new_avg;
    double realized = 0.0;
    if (pos == 0 || (pos > 0) == (shares > 0)) {
        double a = (double)iabs(pos);
        double b = (double)iabs(shares);
        new_avg = (a * avg + b * price) / (a + b);
    } else {
        double closed = (double)imin(iabs(shares), iabs(pos));
        double side = pos > 0 ? 1.0 : -1.0;
        realized = closed * (price - avg) * side;
        if (new_pos == 0) {
            new_avg = 0.0;
        } else if ((new_pos > 0) == (pos > 0)) {
            new_avg = avg;
        } else {
            new_avg = price;
        }
    }
    double total = costs_total(costs);
    l->cash = l->cash - (double)shares * price - total;
    l->costs += total;
    l->realized += realized;
    if (new_pos == 0) {
        l->entry_ms = 0u;
    } else if (pos == 0 || (new_pos > 0) != (pos > 0)) {
        l->entry_ms = ts_ms;
    }
    l->position = new_pos;
    l->avg_price = new_avg;
    l->fills += 1u;
}

// exec::dsr_step: returns D, updates the moments *a and *b.
static __device__ __forceinline__ double dsr_step(PARAMS, double *a_io, double *b_io, double r, bool warm) {
    double a = *a_io;
    double b = *b_io;
    double da = r - a;
    double db = r * r - b;
    double v = b - a * a;
    double d = 0.0;
    if (warm && v > P->dsr_eps) {
        d = (b * da - 0.5 * a * db) / (v * sqrt(v));
    }
    *a_io = a + P->dsr_eta * da;
    *b_io = b + P->dsr_eta * db;
    return d;
}

// exec::rolling_sharpe over environment i's window.
static __device__ __forceinline__ double rolling_sharpe(PARAMS, double *__restrict__ sf, unsigned i,
                                                        unsigned count, double r) {
    unsigned w = P->ring_w;
    unsigned ring = N_F64 * P->n_envs + i * w;
    unsigned slot = count % w;
    double sum = sf[ux(P, F_SHARPE_SUM, i)];
    double sumsq = sf[ux(P, F_SHARPE_SUMSQ, i)];
    if (count >= w) {
        double old = sf[ring + slot];
        sum -= old;
        sumsq -= old * old;
    }
    sf[ring + slot] = r;
    sum += r;
    sumsq += r * r;
    sf[ux(P, F_SHARPE_SUM, i)] = sum;
    sf[ux(P, F_SHARPE_SUMSQ, i)] = sumsq;
    if (count + 1u < w) {
        return 0.0;
    }
    double n = (double)w;
    double v = (sumsq - sum * sum / n) / (n - 1.0);
    if (v > 0.0) {
        return (sum / n) / sqrt(v);
    }
    return 0.0;
}

// Writes environment i's observation of its current bar into obs[base..base + obs_dim].
static __device__ __forceinline__ void write_obs(PARAMS, const Bar *__restrict__ bars,
                                                 const float *__restrict__ feats,
                                                 const SlotInfo *__restrict__ slots,
                                                 const unsigned *__restrict__ su,
                                                 const i64 *__restrict__ si,
                                                 const double *__restrict__ sf,
                                                 float *__restrict__ obs, unsigned i, unsigned base) {
    unsigned slot = su[ux(P, U_DAY_SLOT, i)];
    unsigned row = su[ux(P, U_ROW, i)];
    SlotInfo info = slots[slot];
    Bar b = bars[slot * P->slot_rows + row];
    unsigned k = P->k;
    unsigned frow = (slot * P->slot_rows + row) * k;
    for (unsigned j = 0u; j < k; j++) {
        obs[base + j] = feats[frow + j];
    }
    // exec::account_obs
    i64 pos = si[ux(P, I_POSITION, i)];
    i64 pending = si[ux(P, I_PEND_LEFT, i)];
    unsigned now = b.ts_ms + info.bar_ms;
    unsigned entry = su[ux(P, U_ENTRY_MS, i)];
    unsigned held = 0u;
    if (pos != 0 && now > entry) {
        held = now - entry;
    }
    double inv_e0 = sf[ux(P, F_INV_EQUITY0, i)];
    obs[base + k] = (float)((double)pos * b.close * P->inv_max_position_usd);
    obs[base + k + 1u] = (float)((double)pos * (b.close - sf[ux(P, F_AVG_PRICE, i)]) * inv_e0);
    obs[base + k + 2u] = (float)((double)held * P->inv_session_ms);
    obs[base + k + 3u] = (float)((double)pending * b.close * P->inv_max_position_usd);
    obs[base + k + 4u] = (float)(((double)info.close_ms - (double)now) * P->inv_session_ms);
}

// A fresh account at the next queued episode of environment i (CpuEnvs::init_env).
static __device__ __forceinline__ void start_next_episode(PARAMS, const unsigned *__restrict__ queue,
                                                          unsigned *__restrict__ su,
                                                          i64 *__restrict__ si,
                                                          double *__restrict__ sf, unsigned i) {
    unsigned head = su[ux(P, U_EP_HEAD, i)];
    unsigned e = 2u * (i * P->queue_len + head % P->queue_len);
    unsigned slot = queue[e];
    unsigned start = queue[e + 1u];
    su[ux(P, U_EP_HEAD, i)] = head + 1u;
    su[ux(P, U_DAY_SLOT, i)] = slot;
    su[ux(P, U_ROW, i)] = start;
    su[ux(P, U_STEPS, i)] = 0u;
    su[ux(P, U_START_ROW, i)] = start;
    su[ux(P, U_ENTRY_MS, i)] = 0u;
    su[ux(P, U_PEND_ARRIVAL, i)] = 0u;
    su[ux(P, U_FILLS, i)] = 0u;
    su[ux(P, U_REJECTED, i)] = 0u;
    su[ux(P, U_ENDED, i)] = 0u;
    si[ux(P, I_POSITION, i)] = 0;
    si[ux(P, I_PEND_TARGET, i)] = 0;
    si[ux(P, I_PEND_LEFT, i)] = 0;
    double e0 = P->initial_equity;
    sf[ux(P, F_AVG_PRICE, i)] = 0.0;
    sf[ux(P, F_CASH, i)] = e0;
    sf[ux(P, F_EQUITY0, i)] = e0;
    sf[ux(P, F_INV_EQUITY0, i)] = P->inv_initial_equity;
    sf[ux(P, F_PREV_EQUITY, i)] = e0;
    sf[ux(P, F_PEAK_EQUITY, i)] = e0;
    sf[ux(P, F_REALIZED, i)] = 0.0;
    sf[ux(P, F_COSTS, i)] = 0.0;
    sf[ux(P, F_DSR_A, i)] = 0.0;
    sf[ux(P, F_DSR_B, i)] = 0.0;
    sf[ux(P, F_SHARPE_SUM, i)] = 0.0;
    sf[ux(P, F_SHARPE_SUMSQ, i)] = 0.0;
    sf[ux(P, F_REWARD_SUM, i)] = 0.0;
    sf[ux(P, F_TURNOVER, i)] = 0.0;
    unsigned ring = N_F64 * P->n_envs + i * P->ring_w;
    for (unsigned j = 0u; j < P->ring_w; j++) {
        sf[ring + j] = 0.0;
    }
}

// Appends environment i's finished episode to the log ring. The host reads the ring well
// within log_cap records of their writing, and counts the records it finds overwritten.
static __device__ __forceinline__ void log_episode(PARAMS, const SlotInfo *__restrict__ slots,
                                                   const unsigned *__restrict__ su,
                                                   const double *__restrict__ sf,
                                                   LogRec *__restrict__ log_recs, unsigned *ctl,
                                                   unsigned tick, unsigned i, unsigned reason) {
    unsigned at = atomicAdd(&ctl[CTL_LOG_COUNT], 1u) & (P->log_cap - 1u);
    LogRec r;
    r.reward = sf[ux(P, F_REWARD_SUM, i)];
    r.pnl = sf[ux(P, F_PREV_EQUITY, i)] - sf[ux(P, F_EQUITY0, i)];
    r.realized = sf[ux(P, F_REALIZED, i)];
    r.costs = sf[ux(P, F_COSTS, i)];
    r.turnover = sf[ux(P, F_TURNOVER, i)];
    r.tick = tick;
    r.env = i;
    r.day = slots[su[ux(P, U_DAY_SLOT, i)]].day;
    r.start_row = su[ux(P, U_START_ROW, i)];
    r.steps = su[ux(P, U_STEPS, i)];
    r.reason = reason;
    r.fills = su[ux(P, U_FILLS, i)];
    r.rejected = su[ux(P, U_REJECTED, i)];
    log_recs[at] = r;
}

// The kernels' parameter list: a pointer to each buffer, in Buf::ALL's order, then the
// host's step counter (a value: no upload per step).
#define KERNEL_ARGS                                                                        \
    const Params *__restrict__ P, const double *__restrict__ action_table,                \
        const Bar *__restrict__ bars, const float *__restrict__ feats,                    \
        const SlotInfo *__restrict__ slots, const unsigned *__restrict__ halts,           \
        unsigned *__restrict__ su, i64 *__restrict__ si, double *__restrict__ sf,         \
        const unsigned char *__restrict__ acts, float *__restrict__ obs,                  \
        float *__restrict__ rewards, unsigned *__restrict__ flags,                        \
        unsigned *__restrict__ queue, LogRec *__restrict__ log_recs, unsigned *ctl,    \
        unsigned tick

// Every environment takes its first queued episode and writes its first observation.
extern "C" __global__ void reset_all(KERNEL_ARGS) {
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= P->n_envs) {
        return;
    }
    start_next_episode(P, queue, su, si, sf, i);
    write_obs(P, bars, feats, slots, su, si, sf, obs, i, i * P->obs_dim);
}

// Copies the host's new queue entries from the patch area into the queues; thread i takes
// entries i, i + n, i + 2n, ... (one top-up writes at most n * queue_len entries).
extern "C" __global__ void scatter(KERNEL_ARGS) {
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= P->n_envs) {
        return;
    }
    unsigned base = 2u * P->n_envs * P->queue_len;
    unsigned count = queue[base];
    for (unsigned j = i; j < count; j += P->n_envs) {
        unsigned at = base + 1u + 3u * j;
        unsigned e = queue[at];
        queue[2u * e] = queue[at + 1u];
        queue[2u * e + 1u] = queue[at + 2u];
    }
}

// Writes every environment's current observation.
extern "C" __global__ void observe(KERNEL_ARGS) {
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= P->n_envs) {
        return;
    }
    write_obs(P, bars, feats, slots, su, si, sf, obs, i, i * P->obs_dim);
}

// One step of every environment (src/env/mod.rs, "One step"), with same-step auto-reset.
extern "C" __global__ void step(KERNEL_ARGS) {
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= P->n_envs) {
        return;
    }
    unsigned slot = su[ux(P, U_DAY_SLOT, i)];
    SlotInfo info = slots[slot];
    unsigned base = slot * P->slot_rows;
    unsigned t = su[ux(P, U_ROW, i)];
    Bar bar_t = bars[base + t];

    // 1. Decision at t's close.
    unsigned a = acts[i];
    i64 position0 = si[ux(P, I_POSITION, i)];
    i64 pend_left = si[ux(P, I_PEND_LEFT, i)];
    i64 pend_target = si[ux(P, I_PEND_TARGET, i)];
    unsigned pend_arrival = su[ux(P, U_PEND_ARRIVAL, i)];
    i64 current = pend_left != 0 ? pend_target : position0;
    i64 target = decide_target(P, action_table[a], bar_t.close, current);
    if (!(pend_left != 0 && pend_target == target)) {
        if (target != position0) {
            pend_target = target;
            pend_left = target - position0;
            pend_arrival = bar_t.ts_ms + info.bar_ms + P->latency_ms;
        } else {
            pend_left = 0;
        }
    }

    // 2. Fills at t+1.
    unsigned f = t + 1u;
    Bar bar_f = bars[base + f];
    unsigned rejected = su[ux(P, U_REJECTED, i)];
    i64 fill_shares = 0;
    double fill_price = 0.0;
    Costs fill_c;
    fill_c.commission = 0.0;
    fill_c.spread = 0.0;
    fill_c.impact = 0.0;
    if (pend_left != 0 && bar_f.ts_ms >= pend_arrival) {
        if (halted(bar_f) || in_halt(P, slots, halts, slot, pend_arrival)) {
            pend_left = 0;
            rejected += 1u;
        } else {
            i64 q = imin(iabs(pend_left), participation_cap(P, bar_f));
            if (q > 0) {
                i64 shares = q * isign(pend_left);
                double price = bar_f.open;
                double half = bar_f.open * P->half_spread_frac;
                if (has_quote(bar_f)) {
                    price = (bar_f.bid + bar_f.ask) * 0.5;
                    half = (bar_f.ask - bar_f.bid) * 0.5;
                }
                fill_shares = shares;
                fill_price = price;
                fill_c = fill_costs(P, (double)q, price, half, bar_f);
                pend_left = pend_left - shares;
            }
            if (P->carry_remainder == 0u) {
                pend_left = 0;
            }
        }
    }

    // 3. Books, borrow, mark, episode end (with the forced exit).
    Ledger l;
    l.cash = sf[ux(P, F_CASH, i)];
    l.position = position0;
    l.avg_price = sf[ux(P, F_AVG_PRICE, i)];
    l.realized = sf[ux(P, F_REALIZED, i)];
    l.costs = sf[ux(P, F_COSTS, i)];
    l.entry_ms = su[ux(P, U_ENTRY_MS, i)];
    l.fills = su[ux(P, U_FILLS, i)];
    double e0 = sf[ux(P, F_EQUITY0, i)];
    double traded = 0.0;
    if (fill_shares != 0) {
        book_costed(&l, fill_shares, fill_price, fill_c, bar_f.ts_ms);
        traded += (double)iabs(fill_shares) * fill_price;
    }
    if (l.position < 0) {
        double cost = (double)(-l.position) * bar_f.close * P->borrow_per_ms * (double)(bar_f.ts_ms - bar_t.ts_ms);
        l.cash -= cost;
        l.costs += cost;
    }
    unsigned steps = su[ux(P, U_STEPS, i)] + 1u;
    double equity = l.cash + (double)l.position * bar_f.close;
    unsigned ended = 0u;
    if (f == info.last_row) {
        ended = 1u;
    } else if (P->loss_limit > 0.0 && equity - e0 <= -P->loss_limit * e0) {
        ended = 2u;
    } else if (P->max_episode_steps > 0u && steps >= P->max_episode_steps) {
        ended = 3u;
    }
    if (ended == 1u || ended == 2u) {
        pend_left = 0;
        i64 pos = l.position;
        if (pos != 0) {
            double half = bar_f.close * P->half_spread_frac;
            if (has_quote(bar_f)) {
                half = (bar_f.ask - bar_f.bid) * 0.5;
            }
            Costs c = fill_costs(P, (double)iabs(pos), bar_f.close, half, bar_f);
            book_costed(&l, -pos, bar_f.close, c, bar_f.ts_ms);
            traded += (double)iabs(pos) * bar_f.close;
        }
        equity = l.cash;
    }
    su[ux(P, U_ROW, i)] = f;
    su[ux(P, U_STEPS, i)] = steps;
    su[ux(P, U_PEND_ARRIVAL, i)] = pend_arrival;
    su[ux(P, U_REJECTED, i)] = rejected;
    su[ux(P, U_ENTRY_MS, i)] = l.entry_ms;
    su[ux(P, U_FILLS, i)] = l.fills;
    su[ux(P, U_ENDED, i)] = ended;
    si[ux(P, I_POSITION, i)] = l.position;
    si[ux(P, I_PEND_TARGET, i)] = pend_target;
    si[ux(P, I_PEND_LEFT, i)] = pend_left;
    sf[ux(P, F_AVG_PRICE, i)] = l.avg_price;
    sf[ux(P, F_CASH, i)] = l.cash;
    sf[ux(P, F_REALIZED, i)] = l.realized;
    sf[ux(P, F_COSTS, i)] = l.costs;

    // 4. Reward (exec::step_fractions, dsr_step, rolling_sharpe, reward).
    double inv_e0 = sf[ux(P, F_INV_EQUITY0, i)];
    double prev = sf[ux(P, F_PREV_EQUITY, i)];
    double peak0 = sf[ux(P, F_PEAK_EQUITY, i)];
    double pnl = (equity - prev) * inv_e0;
    double dd_before = (peak0 - prev) * inv_e0;
    double peak = fmax(peak0, equity);
    double dd_increase = fmax((peak - equity) * inv_e0 - dd_before, 0.0);
    double turnover = traded * inv_e0;
    double dsr = 0.0;
    if (P->w_dsr != 0.0) {
        double da = sf[ux(P, F_DSR_A, i)];
        double db = sf[ux(P, F_DSR_B, i)];
        dsr = dsr_step(P, &da, &db, pnl, steps > P->dsr_warmup);
        sf[ux(P, F_DSR_A, i)] = da;
        sf[ux(P, F_DSR_B, i)] = db;
    }
    double sharpe = 0.0;
    if (P->w_sharpe != 0.0) {
        sharpe = rolling_sharpe(P, sf, i, steps - 1u, pnl);
    }
    double reward = P->reward_scale
        * (P->w_pnl * pnl + P->w_dsr * dsr + P->w_sharpe * sharpe
           - P->w_drawdown * dd_increase
           - P->w_turnover * turnover);
    sf[ux(P, F_PREV_EQUITY, i)] = equity;
    sf[ux(P, F_PEAK_EQUITY, i)] = peak;
    sf[ux(P, F_REWARD_SUM, i)] = sf[ux(P, F_REWARD_SUM, i)] + reward;
    sf[ux(P, F_TURNOVER, i)] = sf[ux(P, F_TURNOVER, i)] + traded;
    rewards[i] = (float)reward;
    flags[i] = ((ended == 1u || ended == 2u) ? 1u : 0u) | (ended == 3u ? 2u : 0u);

    // 5. The observation of t+1, or the end of the episode and the next one's first.
    if (ended == 0u) {
        write_obs(P, bars, feats, slots, su, si, sf, obs, i, i * P->obs_dim);
        return;
    }
    log_episode(P, slots, su, sf, log_recs, ctl, tick, i, ended);
    if (ended == 3u) {
        write_obs(P, bars, feats, slots, su, si, sf, obs, i, (P->n_envs + i) * P->obs_dim);
    }
    start_next_episode(P, queue, su, si, sf, i);
    write_obs(P, bars, feats, slots, su, si, sf, obs, i, i * P->obs_dim);
}
