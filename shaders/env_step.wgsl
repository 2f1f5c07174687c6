// The environment step as WGSL compute shaders: one invocation per environment.
// layout-version: 2
//
// The records (Params, SlotInfo, LogRec, Bar) and the state field indices (U_*, I_*, F_*)
// come from the prelude that src/env/gpu/layout.rs generates and the wgpu backend puts in
// front of this file. Every formula is src/env/exec.rs's, in the same order of operations
// (the step's phases are src/env/cpu.rs's `step_block`), in f64 and i64 (the adapter must
// offer SHADER_F64 and SHADER_INT64), so results match the CPU engines' bit for bit
// wherever the device rounds IEEE operations correctly and does not contract a·b+c.
//
// State buffers are field-major: field j of environment i is word j·n + i of su (u32),
// si (i64) or sf (f64); the rolling-Sharpe windows follow sf's fields (n × ring_w).

@group(0) @binding(0) var<storage, read> P: Params;
@group(0) @binding(1) var<storage, read> action_table: array<f64>;
@group(0) @binding(2) var<storage, read> bars: array<Bar>;
@group(0) @binding(3) var<storage, read> feats: array<f32>;
@group(0) @binding(4) var<storage, read> slots: array<SlotInfo>;
@group(0) @binding(5) var<storage, read> halts: array<u32>;
@group(0) @binding(6) var<storage, read_write> su: array<u32>;
@group(0) @binding(7) var<storage, read_write> si: array<i64>;
@group(0) @binding(8) var<storage, read_write> sf: array<f64>;
// Actions as bytes, four per word (the host's u8 slice as it is).
@group(0) @binding(9) var<storage, read> acts: array<u32>;
// n × obs_dim observations, then n × obs_dim final observations of truncated episodes.
@group(0) @binding(10) var<storage, read_write> obs: array<f32>;
@group(0) @binding(11) var<storage, read_write> rewards: array<f32>;
// Bit 0: terminated, bit 1: truncated.
@group(0) @binding(12) var<storage, read_write> flags: array<u32>;
// Per environment, queue_len (day slot, start row) pairs; entry h is (i·Q + h % Q). Then
// the patch area that `scatter` copies into them: a count, then (entry, slot, start row)
// triples.
@group(0) @binding(13) var<storage, read_write> queue: array<u32>;
// Finished episodes: a ring of log_cap (a power of two) records, record c at c % log_cap.
@group(0) @binding(14) var<storage, read_write> log_recs: array<LogRec>;
@group(0) @binding(15) var<storage, read_write> ctl: array<atomic<u32>>;
// The host's step counter, set with each dispatch (no upload per step).
struct Immediates { tick: u32 }
var<immediate> imm: Immediates;

fn ux(f: u32, i: u32) -> u32 { return f * P.n_envs + i; }

fn iabs(x: i64) -> i64 { return select(-x, x, x >= 0li); }
fn imin(a: i64, b: i64) -> i64 { return select(b, a, a < b); }
fn isign(x: i64) -> i64 { return select(select(0li, -1li, x < 0li), 1li, x > 0li); }

// Rounds half away from zero through truncation (exec::round_half_away).
fn round_half_away(x: f64) -> i64 {
    let r = i64(abs(x) + 0.5lf);
    return select(r, -r, x < 0.0lf);
}

fn halted(b: Bar) -> bool { return (b.flags & FLAG_HALTED) != 0u; }
fn has_quote(b: Bar) -> bool { return (b.flags & FLAG_QUOTE) != 0u; }

fn in_halt(slot: u32, ms: u32) -> bool {
    let n = slots[slot].n_halts;
    for (var h = 0u; h < n; h++) {
        let at = 2u * (slot * P.max_halts + h);
        if (ms >= halts[at] && ms < halts[at + 1u]) {
            return true;
        }
    }
    return false;
}

// exec::decide_target
fn decide_target(frac: f64, price: f64, current: i64) -> i64 {
    let max_shares = f64(i64(P.max_position_usd / price));
    let want = round_half_away(frac * max_shares);
    let diff = f64(iabs(want - current));
    if (want != 0li && diff < P.min_order_frac * max_shares) {
        return current;
    }
    return want;
}

// exec::participation_cap
fn participation_cap(b: Bar) -> i64 {
    return i64(P.participation * f64(b.volume));
}

// exec::fill_costs: (commission, spread, impact).
fn fill_costs(q: f64, price: f64, half_spread: f64, b: Bar) -> vec3<f64> {
    var raw: f64;
    if (P.commission_per_share != 0u) {
        raw = q * P.commission;
    } else {
        raw = q * price * P.commission;
    }
    let volume = max(f64(b.volume), 1.0lf);
    return vec3<f64>(
        max(raw, P.commission_min),
        q * half_spread,
        q * price * P.impact_k * f64(b.sigma) * sqrt(q / volume),
    );
}

fn costs_total(c: vec3<f64>) -> f64 { return c.x + c.y + c.z; }

// The account of one episode while it is stepped (exec::Ledger).
struct Ledger {
    cash: f64,
    position: i64,
    avg_price: f64,
    realized: f64,
    costs: f64,
    entry_ms: u32,
    fills: u32,
}

// exec::Ledger::book_costed (exec::apply_fill inlined).
fn book_costed(l: ptr<function, Ledger>, shares: i64, price: f64, costs: vec3<f64>, ts_ms: u32) {
    let pos = (*l).position;
    let avg = (*l).avg_price;
    let new_pos = pos + shares;
    var new_avg: f64;
    var realized = 0.0lf;
    if (pos == 0li || (pos > 0li) == (shares > 0li)) {
        let a = f64(iabs(pos));
        let b = f64(iabs(shares));
        new_avg = (a * avg + b * price) / (a + b);
    } else {
        let closed = f64(imin(iabs(shares), iabs(pos)));
        let side = select(-1.0lf, 1.0lf, pos > 0li);
        realized = closed * (price - avg) * side;
        if (new_pos == 0li) {
            new_avg = 0.0lf;
        } else if ((new_pos > 0li) == (pos > 0li)) {
            new_avg = avg;
        } else {
            new_avg = price;
        }
    }
    let total = costs_total(costs);
    (*l).cash = (*l).cash - f64(shares) * price - total;
    (*l).costs += total;
    (*l).realized += realized;
    if (new_pos == 0li) {
        (*l).entry_ms = 0u;
    } else if (pos == 0li || (new_pos > 0li) != (pos > 0li)) {
        (*l).entry_ms = ts_ms;
    }
    (*l).position = new_pos;
    (*l).avg_price = new_avg;
    (*l).fills += 1u;
}

// exec::dsr_step: returns (D, A, B).
fn dsr_step(a: f64, b: f64, r: f64, warm: bool) -> vec3<f64> {
    let da = r - a;
    let db = r * r - b;
    let v = b - a * a;
    var d = 0.0lf;
    if (warm && v > P.dsr_eps) {
        d = (b * da - 0.5lf * a * db) / (v * sqrt(v));
    }
    return vec3<f64>(d, a + P.dsr_eta * da, b + P.dsr_eta * db);
}

// exec::rolling_sharpe over environment i's window.
fn rolling_sharpe(i: u32, count: u32, r: f64) -> f64 {
    let w = P.ring_w;
    let ring = N_F64 * P.n_envs + i * w;
    let slot = count % w;
    var sum = sf[ux(F_SHARPE_SUM, i)];
    var sumsq = sf[ux(F_SHARPE_SUMSQ, i)];
    if (count >= w) {
        let old = sf[ring + slot];
        sum -= old;
        sumsq -= old * old;
    }
    sf[ring + slot] = r;
    sum += r;
    sumsq += r * r;
    sf[ux(F_SHARPE_SUM, i)] = sum;
    sf[ux(F_SHARPE_SUMSQ, i)] = sumsq;
    if (count + 1u < w) {
        return 0.0lf;
    }
    let n = f64(w);
    let v = (sumsq - sum * sum / n) / (n - 1.0lf);
    if (v > 0.0lf) {
        return (sum / n) / sqrt(v);
    }
    return 0.0lf;
}

// Writes environment i's observation of its current bar into obs[base..base + obs_dim].
fn write_obs(i: u32, base: u32) {
    let slot = su[ux(U_DAY_SLOT, i)];
    let row = su[ux(U_ROW, i)];
    let info = slots[slot];
    let b = bars[slot * P.slot_rows + row];
    let k = P.k;
    let frow = (slot * P.slot_rows + row) * k;
    for (var j = 0u; j < k; j++) {
        obs[base + j] = feats[frow + j];
    }
    // exec::account_obs
    let pos = si[ux(I_POSITION, i)];
    let pending = si[ux(I_PEND_LEFT, i)];
    let now = b.ts_ms + info.bar_ms;
    let entry = su[ux(U_ENTRY_MS, i)];
    var held = 0u;
    if (pos != 0li && now > entry) {
        held = now - entry;
    }
    let inv_e0 = sf[ux(F_INV_EQUITY0, i)];
    obs[base + k] = f32(f64(pos) * b.close * P.inv_max_position_usd);
    obs[base + k + 1u] = f32(f64(pos) * (b.close - sf[ux(F_AVG_PRICE, i)]) * inv_e0);
    obs[base + k + 2u] = f32(f64(held) * P.inv_session_ms);
    obs[base + k + 3u] = f32(f64(pending) * b.close * P.inv_max_position_usd);
    obs[base + k + 4u] = f32((f64(info.close_ms) - f64(now)) * P.inv_session_ms);
}

// A fresh account at the next queued episode of environment i (CpuEnvs::init_env).
fn start_next_episode(i: u32) {
    let head = su[ux(U_EP_HEAD, i)];
    let e = 2u * (i * P.queue_len + head % P.queue_len);
    let slot = queue[e];
    let start = queue[e + 1u];
    su[ux(U_EP_HEAD, i)] = head + 1u;
    su[ux(U_DAY_SLOT, i)] = slot;
    su[ux(U_ROW, i)] = start;
    su[ux(U_STEPS, i)] = 0u;
    su[ux(U_START_ROW, i)] = start;
    su[ux(U_ENTRY_MS, i)] = 0u;
    su[ux(U_PEND_ARRIVAL, i)] = 0u;
    su[ux(U_FILLS, i)] = 0u;
    su[ux(U_REJECTED, i)] = 0u;
    su[ux(U_ENDED, i)] = 0u;
    si[ux(I_POSITION, i)] = 0li;
    si[ux(I_PEND_TARGET, i)] = 0li;
    si[ux(I_PEND_LEFT, i)] = 0li;
    let e0 = P.initial_equity;
    sf[ux(F_AVG_PRICE, i)] = 0.0lf;
    sf[ux(F_CASH, i)] = e0;
    sf[ux(F_EQUITY0, i)] = e0;
    sf[ux(F_INV_EQUITY0, i)] = P.inv_initial_equity;
    sf[ux(F_PREV_EQUITY, i)] = e0;
    sf[ux(F_PEAK_EQUITY, i)] = e0;
    sf[ux(F_REALIZED, i)] = 0.0lf;
    sf[ux(F_COSTS, i)] = 0.0lf;
    sf[ux(F_DSR_A, i)] = 0.0lf;
    sf[ux(F_DSR_B, i)] = 0.0lf;
    sf[ux(F_SHARPE_SUM, i)] = 0.0lf;
    sf[ux(F_SHARPE_SUMSQ, i)] = 0.0lf;
    sf[ux(F_REWARD_SUM, i)] = 0.0lf;
    sf[ux(F_TURNOVER, i)] = 0.0lf;
    let ring = N_F64 * P.n_envs + i * P.ring_w;
    for (var j = 0u; j < P.ring_w; j++) {
        sf[ring + j] = 0.0lf;
    }
}

// Appends environment i's finished episode to the log ring. The host reads the ring well
// within log_cap records of their writing, and counts the records it finds overwritten.
fn log_episode(i: u32, reason: u32) {
    let at = atomicAdd(&ctl[CTL_LOG_COUNT], 1u) & (P.log_cap - 1u);
    var r: LogRec;
    r.reward = sf[ux(F_REWARD_SUM, i)];
    r.pnl = sf[ux(F_PREV_EQUITY, i)] - sf[ux(F_EQUITY0, i)];
    r.realized = sf[ux(F_REALIZED, i)];
    r.costs = sf[ux(F_COSTS, i)];
    r.turnover = sf[ux(F_TURNOVER, i)];
    r.tick = imm.tick;
    r.env = i;
    r.day = slots[su[ux(U_DAY_SLOT, i)]].day;
    r.start_row = su[ux(U_START_ROW, i)];
    r.steps = su[ux(U_STEPS, i)];
    r.reason = reason;
    r.fills = su[ux(U_FILLS, i)];
    r.rejected = su[ux(U_REJECTED, i)];
    log_recs[at] = r;
}

@compute @workgroup_size(64)
fn reset_all(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= P.n_envs) {
        return;
    }
    start_next_episode(i);
    write_obs(i, i * P.obs_dim);
}

// Copies the host's new queue entries from the patch area into the queues; thread i
// takes entries i, i + n, i + 2n, … (one top-up writes at most n·queue_len entries).
@compute @workgroup_size(64)
fn scatter(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= P.n_envs) {
        return;
    }
    let base = 2u * P.n_envs * P.queue_len;
    let count = queue[base];
    for (var j = i; j < count; j += P.n_envs) {
        let at = base + 1u + 3u * j;
        let e = queue[at];
        queue[2u * e] = queue[at + 1u];
        queue[2u * e + 1u] = queue[at + 2u];
    }
}

// Writes every environment's current observation.
@compute @workgroup_size(64)
fn observe(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= P.n_envs) {
        return;
    }
    write_obs(i, i * P.obs_dim);
}

// One step of every environment (src/env/mod.rs, "One step"), with same-step auto-reset.
@compute @workgroup_size(64)
fn step(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= P.n_envs) {
        return;
    }
    let slot = su[ux(U_DAY_SLOT, i)];
    let info = slots[slot];
    let base = slot * P.slot_rows;
    let t = su[ux(U_ROW, i)];
    let bar_t = bars[base + t];

    // 1. Decision at t's close.
    let a = (acts[i / 4u] >> (8u * (i % 4u))) & 0xffu;
    let position0 = si[ux(I_POSITION, i)];
    var pend_left = si[ux(I_PEND_LEFT, i)];
    var pend_target = si[ux(I_PEND_TARGET, i)];
    var pend_arrival = su[ux(U_PEND_ARRIVAL, i)];
    let current = select(position0, pend_target, pend_left != 0li);
    let want = decide_target(action_table[a], bar_t.close, current);
    if (!(pend_left != 0li && pend_target == want)) {
        if (want != position0) {
            pend_target = want;
            pend_left = want - position0;
            pend_arrival = bar_t.ts_ms + info.bar_ms + P.latency_ms;
        } else {
            pend_left = 0li;
        }
    }

    // 2. Fills at t+1.
    let f = t + 1u;
    let bar_f = bars[base + f];
    var rejected = su[ux(U_REJECTED, i)];
    var fill_shares = 0li;
    var fill_price = 0.0lf;
    var fill_c = vec3<f64>(0.0lf, 0.0lf, 0.0lf);
    if (pend_left != 0li && bar_f.ts_ms >= pend_arrival) {
        if (halted(bar_f) || in_halt(slot, pend_arrival)) {
            pend_left = 0li;
            rejected += 1u;
        } else {
            let q = imin(iabs(pend_left), participation_cap(bar_f));
            if (q > 0li) {
                let shares = q * isign(pend_left);
                var price = bar_f.open;
                var half = bar_f.open * P.half_spread_frac;
                if (has_quote(bar_f)) {
                    price = (bar_f.bid + bar_f.ask) * 0.5lf;
                    half = (bar_f.ask - bar_f.bid) * 0.5lf;
                }
                fill_shares = shares;
                fill_price = price;
                fill_c = fill_costs(f64(q), price, half, bar_f);
                pend_left = pend_left - shares;
            }
            if (P.carry_remainder == 0u) {
                pend_left = 0li;
            }
        }
    }

    // 3. Books, borrow, mark, episode end (with the forced exit).
    var l: Ledger;
    l.cash = sf[ux(F_CASH, i)];
    l.position = position0;
    l.avg_price = sf[ux(F_AVG_PRICE, i)];
    l.realized = sf[ux(F_REALIZED, i)];
    l.costs = sf[ux(F_COSTS, i)];
    l.entry_ms = su[ux(U_ENTRY_MS, i)];
    l.fills = su[ux(U_FILLS, i)];
    let e0 = sf[ux(F_EQUITY0, i)];
    var traded = 0.0lf;
    if (fill_shares != 0li) {
        book_costed(&l, fill_shares, fill_price, fill_c, bar_f.ts_ms);
        traded += f64(iabs(fill_shares)) * fill_price;
    }
    if (l.position < 0li) {
        let cost = f64(-l.position) * bar_f.close * P.borrow_per_ms * f64(bar_f.ts_ms - bar_t.ts_ms);
        l.cash -= cost;
        l.costs += cost;
    }
    let steps = su[ux(U_STEPS, i)] + 1u;
    var equity = l.cash + f64(l.position) * bar_f.close;
    var ended = 0u;
    if (f == info.last_row) {
        ended = 1u;
    } else if (P.loss_limit > 0.0lf && equity - e0 <= -P.loss_limit * e0) {
        ended = 2u;
    } else if (P.max_episode_steps > 0u && steps >= P.max_episode_steps) {
        ended = 3u;
    }
    if (ended == 1u || ended == 2u) {
        pend_left = 0li;
        let pos = l.position;
        if (pos != 0li) {
            var half = bar_f.close * P.half_spread_frac;
            if (has_quote(bar_f)) {
                half = (bar_f.ask - bar_f.bid) * 0.5lf;
            }
            let c = fill_costs(f64(iabs(pos)), bar_f.close, half, bar_f);
            book_costed(&l, -pos, bar_f.close, c, bar_f.ts_ms);
            traded += f64(iabs(pos)) * bar_f.close;
        }
        equity = l.cash;
    }
    su[ux(U_ROW, i)] = f;
    su[ux(U_STEPS, i)] = steps;
    su[ux(U_PEND_ARRIVAL, i)] = pend_arrival;
    su[ux(U_REJECTED, i)] = rejected;
    su[ux(U_ENTRY_MS, i)] = l.entry_ms;
    su[ux(U_FILLS, i)] = l.fills;
    su[ux(U_ENDED, i)] = ended;
    si[ux(I_POSITION, i)] = l.position;
    si[ux(I_PEND_TARGET, i)] = pend_target;
    si[ux(I_PEND_LEFT, i)] = pend_left;
    sf[ux(F_AVG_PRICE, i)] = l.avg_price;
    sf[ux(F_CASH, i)] = l.cash;
    sf[ux(F_REALIZED, i)] = l.realized;
    sf[ux(F_COSTS, i)] = l.costs;

    // 4. Reward (exec::step_fractions, dsr_step, rolling_sharpe, reward).
    let inv_e0 = sf[ux(F_INV_EQUITY0, i)];
    let prev = sf[ux(F_PREV_EQUITY, i)];
    let peak0 = sf[ux(F_PEAK_EQUITY, i)];
    let pnl = (equity - prev) * inv_e0;
    let dd_before = (peak0 - prev) * inv_e0;
    let peak = max(peak0, equity);
    let dd_increase = max((peak - equity) * inv_e0 - dd_before, 0.0lf);
    let turnover = traded * inv_e0;
    var dsr = 0.0lf;
    if (P.w_dsr != 0.0lf) {
        let r = dsr_step(sf[ux(F_DSR_A, i)], sf[ux(F_DSR_B, i)], pnl, steps > P.dsr_warmup);
        dsr = r.x;
        sf[ux(F_DSR_A, i)] = r.y;
        sf[ux(F_DSR_B, i)] = r.z;
    }
    var sharpe = 0.0lf;
    if (P.w_sharpe != 0.0lf) {
        sharpe = rolling_sharpe(i, steps - 1u, pnl);
    }
    let reward = P.reward_scale
        * (P.w_pnl * pnl + P.w_dsr * dsr + P.w_sharpe * sharpe
            - P.w_drawdown * dd_increase
            - P.w_turnover * turnover);
    sf[ux(F_PREV_EQUITY, i)] = equity;
    sf[ux(F_PEAK_EQUITY, i)] = peak;
    sf[ux(F_REWARD_SUM, i)] = sf[ux(F_REWARD_SUM, i)] + reward;
    sf[ux(F_TURNOVER, i)] = sf[ux(F_TURNOVER, i)] + traded;
    rewards[i] = f32(reward);
    flags[i] = select(0u, 1u, ended == 1u || ended == 2u) | select(0u, 2u, ended == 3u);

    // 5. The observation of t+1, or the end of the episode and the next one's first.
    if (ended == 0u) {
        write_obs(i, i * P.obs_dim);
        return;
    }
    log_episode(i, ended);
    if (ended == 3u) {
        write_obs(i, (P.n_envs + i) * P.obs_dim);
    }
    start_next_episode(i);
    write_obs(i, i * P.obs_dim);
}
