#!/usr/bin/env python3
"""The NumPy peer of `sim-train bench env --backend cpu`: the market environment's batch
step written as a NumPy user would write it at their best: struct-of-arrays state (one
array per field, as our `CpuEnvs`), every phase of the step a vectorized expression over
all environments (`np.where` for the per-case selections, `np.take` for the bar and
feature gathers), no Python loop over environments.

It steps *the same days* as ours: it reads the day-cache files (`*.simday`, format v1,
`src/cache/format.rs`) straight from disk with `np.frombuffer`, and regroups them as
`src/env/day.rs` (`DayData::from_cache`) does: the execution fields of each bar (time,
open, close, volume, sigma = the previous bar's ATR(14)/close, halted, and bid / ask of
the quote in force at the open when the data have quotes) and the bar's 19 feature values
row-major, for all days concatenated (the layout is below). `compare.py env`
gets the cache from `sim-train bench cache --dir DIR`, which builds the synthetic
universe with the same function, config and seed as `bench env` (`build_synthetic`,
`bench.symbols × bench.days` of `bench.bar`, `synth.seed`): bit-identical files.

One step, as `src/env/cpu.rs` (`step_block`) and `src/env/reference.rs` do it, with
`src/env/exec.rs`'s formulas, for the default `[env]` config:
  0. gather bar t+1 of every environment's day (bar t, the decision bar, is carried);
  1. decision at t's close: target shares `round(frac * floor(max_usd / close))`,
     held within `min_order_frac` of the current target; keep / send / cancel the order;
  2. fill at t+1's open (quote mid when quoted): arrival, halt rejection, participation
     cap, commission (per share, minimum), half spread, square-root impact; remainder
     carried;
  3. books (average price, realized P&L, entry time, cash), short borrow, mark at t+1's
     close; episode end at the session's last bar or the daily loss limit, flattening at
     the close with costs;
  4. reward `scale * pnl` (equity change / starting equity; the default `pnl` preset);
  5. observation: the 19 features of bar t+1 and the 5 account fields;
  then the auto-reset of the environments whose episode ended: a new (day, start time)
  drawn uniformly, a fresh account, its first observation.
As in `bench env`: actions uniformly random from a pool of 61 action vectors drawn
before timing, episodes start every half hour from 09:30 (13 start times), warm-up of
`ceil(steps / 20)` (at most 200) untimed steps, `env_steps_per_s = envs * steps / s`.

Layout choices a careful NumPy user makes (each measured faster here): the execution
fields of all bars in one `rows x 5` f64 matrix (`rows x 7` when the data have quotes), so
bar t+1 of every environment is one `np.take` instead of one per field; bar t's time and
close carried from the previous step instead of gathered again; the features in a
24-wide table so one `np.take(..., out=obs)` fills the observations; per-day constants
copied into per-environment arrays at reset. One thread: NumPy's element-wise loops are
single-threaded, and `--threads 2` (shards on a thread pool) measured slower (GIL
hand-offs at every operation).

Checked against ours: `--trace PREFIX` steps one environment with random held targets
and writes PREFIX.positions.csv, a schedule for `sim-train backtest --positions`, and
PREFIX.equity.csv; the backtest's equity.csv (our scalar reference engine, which the
batch engine matches bit for bit) agrees in every row, bit for bit (equity, cash,
position), over loss-limit exits, a session close and days with halts.

Differences from ours that do not change the work of a step: the episode draws come from
NumPy's PCG64, not xxh3 of (env, draw) (same uniform distribution over the same pairs);
episode summaries are counted, not logged; only the default reward preset (`pnl`) and
`max_episode_steps = 0` (no truncation) are implemented, which is what `bench env` runs.
With `--threads T > 1` the environments are split into T shards stepped by a thread pool
(NumPy releases the GIL inside its loops); `--threads 1` is plain single-threaded NumPy.

Prints one JSON line: env_steps_per_s, envs, steps, days, bars, threads, ...
"""

import argparse
import json
import os

import struct
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from machine import runtime

# ---------------------------------------------------------------------------------------
# The default [env] config (config/default.toml [env], src/env/params.rs EnvConfig).
INITIAL_EQUITY = 100_000.0  # env.initial_equity
MAX_POSITION_USD = 100_000.0  # env.max_position_usd
INV_MAX_POSITION_USD = 1.0 / MAX_POSITION_USD
ACTIONS = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])  # env.actions
MIN_ORDER_FRAC = 0.05  # env.min_order_frac
LOSS_LIMIT = 0.02  # env.daily_loss_limit
LATENCY_MS = 0  # env.execution.latency_ms
PARTICIPATION = 0.1  # env.execution.participation
CARRY_REMAINDER = True  # env.execution.remainder = "carry"
COMMISSION_PER_SHARE = 0.005  # env.costs.commission_per_share
COMMISSION_MIN = 1.0  # env.costs.commission_min
HALF_SPREAD_FRAC = 1.0 * 1e-4  # env.costs.half_spread_bps
IMPACT_K = 1.0  # env.costs.impact_k
BORROW_PER_MS = 0.03 / (365.0 * 86_400_000.0)  # env.costs.borrow_rate_annual / ms per year
REWARD_SCALE = 100.0  # env.reward.scale, kind = "pnl"
SESSION_MS = 390.0 * 60_000.0  # src/env/exec.rs SESSION_MS
INV_SESSION_MS = 1.0 / SESSION_MS
FLAG_HALTED, FLAG_QUOTE = 1, 2  # src/env/day.rs
# bench env: episodes start every half hour of the session (src/bench.rs bench_env).
START_SECS = [34_200 + i * 1_800 for i in range(13)]
ACTION_POOL = 61  # src/bench.rs ACTION_POOL

# Feature set v1 in column order (src/features.rs FEATURE_NAMES); env.features = [] = all.
FEATURE_NAMES = [
    "ret_1", "ret_5", "ret_15", "ret_60", "sma_ratio_20", "ema_ratio_12", "ema_ratio_26",
    "rsi_14", "macd_hist", "atr_ratio_14", "bb_pos_20", "vwap_dev", "vol_ratio_20",
    "range_pos", "gap_prev_close", "tod_sin", "tod_cos", "mins_to_close", "halted",
]
K = len(FEATURE_NAMES)
N_ACCOUNT = 5
OBS_DIM = K + N_ACCOUNT
PRICE_SCALE = 1e9  # nanodollars (src/bars.rs PRICE_SCALE)
DTYPES = {"i64": np.int64, "u64": np.uint64, "u32": np.uint32, "f32": np.float32}


# ---------------------------------------------------------------------------------------
# Reading the day caches.
def read_simday(path):
    """(meta, {column name: array}) of one day-cache file (src/cache/format.rs)."""
    raw = np.fromfile(path, dtype=np.uint8)
    buf = raw.data
    if bytes(raw[:8]) != b"SIMTDAY\0":
        raise ValueError(f"{path}: not a day cache")
    (version,) = struct.unpack_from("<I", buf, 8)
    if version != 1:
        raise ValueError(f"{path}: format version {version}, this reads 1")
    (meta_len,) = struct.unpack_from("<Q", buf, 16)
    (data_start,) = struct.unpack_from("<Q", buf, 32)
    meta = json.loads(bytes(raw[64 : 64 + meta_len]))
    cols = {}
    for c in meta["columns"]:
        dt = DTYPES[c["dtype"]]
        off = data_start + c["offset"]
        cols[c["name"]] = np.frombuffer(buf, dtype=dt, count=c["len"], offset=off)
    return meta, cols


def day_files(cache):
    out = []
    for sym in sorted(os.listdir(cache)):
        d = os.path.join(cache, sym)
        if os.path.isdir(d):
            out += [os.path.join(d, f) for f in sorted(os.listdir(d)) if f.endswith(".simday")]
    if not out:
        raise SystemExit(f"no *.simday files under {cache}")
    return out


def midnight_ns(date, utc_offset_sec):
    """UTC ns of New York midnight of `date` (src/clock.rs utc_ns_with_offset)."""
    days = np.datetime64(date, "D").astype(np.int64)
    return (int(days) * 86_400 - utc_offset_sec) * 1_000_000_000


class Market:
    """Every day of a cache, concatenated, in the layout `DayData` gives one day, arranged
    for NumPy gathers: one f64 matrix of the execution fields of each bar (`px`, columns
    OPEN..ASK), the bar times (`ts`, ms since New York midnight), and the 19 feature
    columns row-major in a 24-wide f32 table (`feat`), so that one `np.take` writes the
    feature part of every observation straight into the observation buffer."""

    OPEN, CLOSE, VOL, SIGMA, HALTED, BID, ASK = range(7)

    def __init__(self, cache):
        px, ts_all, feats = [], [], []
        day_base, day_last, day_close_ms, day_bar_ms, halts, starts = [], [], [], [], [], []
        base = 0
        quoted_any = False
        self.files = day_files(cache)
        for di, path in enumerate(self.files):
            meta, cols = read_simday(path)
            n = int(meta["rows"])
            mid = midnight_ns(meta["date"], meta["utc_offset_sec"])
            ts_ms = (np.clip(cols["ts_ns"] - mid, 0, 86_400_000_000_000) // 1_000_000).astype(np.int64)
            h = [
                (min(max(x["start_ns"] - mid, 0), 86_400_000_000_000) // 1_000_000,
                 min(max(x["end_ns"] - mid, 0), 86_400_000_000_000) // 1_000_000)
                for x in meta["halts"]
            ]
            halts.append(h)
            halted = cols["halted"] > 0.5
            for lo, hi in h:
                halted |= (ts_ms >= lo) & (ts_ms < hi)
            rec = np.zeros((n, 7))
            rec[:, self.OPEN] = cols["open"] / PRICE_SCALE
            rec[:, self.CLOSE] = cols["close"] / PRICE_SCALE
            # f32 in the bar record, used in f64 arithmetic: keep the f32 values exactly.
            rec[:, self.VOL] = cols["volume"].astype(np.float32)
            rec[1:, self.SIGMA] = np.maximum(cols["atr_ratio_14"][:-1], np.float32(0.0))
            rec[:, self.HALTED] = halted
            if "bid" in cols and "ask" in cols:
                # The book in force when bar i opens: bar i-1's closing quote, when usable.
                b, a = cols["bid"], cols["ask"]
                q = np.zeros(n, dtype=bool)
                q[1:] = (b[:-1] > 0) & (a[:-1] >= b[:-1])
                rec[1:, self.BID] = np.where(q[1:], b[:-1] / PRICE_SCALE, 0.0)
                rec[1:, self.ASK] = np.where(q[1:], a[:-1] / PRICE_SCALE, 0.0)
                quoted_any |= bool(q.any())
            px.append(rec)
            ts_all.append(ts_ms)
            f = np.zeros((n, OBS_DIM), np.float32)
            for j, name in enumerate(FEATURE_NAMES):
                f[:, j] = cols[name]
            feats.append(f)
            s = meta["session"]  # env.session = "regular"
            open_ms, close_ms = s["open_sec"] * 1000, s["close_sec"] * 1000
            first = int(np.searchsorted(ts_ms, open_ms, "left"))
            end = int(np.searchsorted(ts_ms, close_ms, "left"))
            first_row, last_row = (first, end - 1) if end > first else (1, 0)
            day_base.append(base)
            day_last.append(base + last_row)
            day_close_ms.append(close_ms)
            bar = meta["bar"]
            day_bar_ms.append({"1s": 1000, "1m": 60_000, "1h": 3_600_000, "1d": 86_400_000}[bar])
            # DayData::start_row_at for each start time.
            if first_row < last_row:
                for sec in START_SECS:
                    r = max(int(np.searchsorted(ts_ms, sec * 1000, "left")), first_row)
                    if r < last_row:
                        starts.append((di, base + r))
            base += n
        self.has_quotes = quoted_any
        # Without quotes in the data, the bid / ask columns are never read: drop them.
        self.px = np.ascontiguousarray(np.concatenate(px)[:, : 7 if quoted_any else 5])
        self.ts = np.concatenate(ts_all)
        self.feat = np.concatenate(feats)
        self.rows = base
        self.days = len(self.files)
        self.day_base = np.array(day_base, dtype=np.int64)
        self.day_last = np.array(day_last, dtype=np.int64)
        self.day_close_ms = np.array(day_close_ms, dtype=np.int64)
        self.day_bar_ms = np.array(day_bar_ms, dtype=np.int64)
        hmax = max((len(h) for h in halts), default=0)
        self.day_has_halts = np.array([len(h) > 0 for h in halts])
        self.halt_lo = np.zeros((self.days, max(hmax, 1)), dtype=np.int64)
        self.halt_hi = np.zeros((self.days, max(hmax, 1)), dtype=np.int64)
        for d, h in enumerate(halts):
            for j, (lo, hi) in enumerate(h):
                self.halt_lo[d, j], self.halt_hi[d, j] = lo, hi
        if not starts:
            raise SystemExit("no episode can start: no day has session bars after the start times")
        self.start_day = np.array([s[0] for s in starts], dtype=np.int64)
        self.start_row = np.array([s[1] for s in starts], dtype=np.int64)

    def bars(self, rows):
        """The execution fields of bars `rows`, one contiguous row per field."""
        return np.ascontiguousarray(self.px.take(rows, axis=0).T)


# ---------------------------------------------------------------------------------------
# The environments.
class NumpyEnvs:
    """N market environments, struct-of-arrays, stepped with vectorized NumPy."""

    def __init__(self, m, n, rng):
        self.m, self.n, self.rng = m, n, rng
        i64, f64 = np.int64, np.float64
        # Where each environment is: its day (for halts), its row, the day's last session
        # row, bar length and close (copied at reset: per-step gathers saved), and the
        # current bar's time and close (carried from the previous step's bar t+1).
        self.day = np.zeros(n, i64)
        self.row = np.zeros(n, i64)
        self.last_row = np.zeros(n, i64)
        self.bar_ms = np.zeros(n, i64)
        self.close_ms = np.zeros(n, i64)
        self.ts_t = np.zeros(n, i64)
        self.close_t = np.zeros(n, f64)
        self.steps = np.zeros(n, i64)
        self.start_row = np.zeros(n, i64)
        self.position = np.zeros(n, i64)
        self.avg_price = np.zeros(n, f64)
        self.cash = np.zeros(n, f64)
        self.equity0 = np.zeros(n, f64)
        self.inv_equity0 = np.zeros(n, f64)
        self.prev_equity = np.zeros(n, f64)
        self.peak_equity = np.zeros(n, f64)
        self.realized = np.zeros(n, f64)
        self.costs = np.zeros(n, f64)
        self.entry_ms = np.zeros(n, i64)
        self.pend_target = np.zeros(n, i64)
        self.pend_left = np.zeros(n, i64)
        self.pend_arrival = np.zeros(n, i64)
        self.reward_sum = np.zeros(n, f64)
        self.fills = np.zeros(n, i64)
        self.rejected = np.zeros(n, i64)
        self.turnover = np.zeros(n, f64)
        self.episodes = 0
        # Caller-owned outputs, as bench env's Buffers.
        self.obs = np.zeros((n, OBS_DIM), np.float32)
        self.rewards = np.zeros(n, np.float32)
        self.terminated = np.zeros(n, np.uint8)
        self.truncated = np.zeros(n, np.uint8)
        self.reset(np.arange(n))

    def reset(self, idx, k=None):
        """Fresh accounts for environments `idx` at newly drawn (day, start) pairs (or the
        pairs `k`), and their first observations."""
        m = self.m
        if k is None:
            k = self.rng.integers(0, len(m.start_row), size=len(idx))
        e0 = INITIAL_EQUITY
        day, row = m.start_day[k], m.start_row[k]
        self.day[idx] = day
        self.row[idx] = row
        self.start_row[idx] = row
        self.last_row[idx] = m.day_last[day]
        self.bar_ms[idx] = m.day_bar_ms[day]
        self.close_ms[idx] = m.day_close_ms[day]
        self.ts_t[idx] = m.ts[row]
        self.close_t[idx] = m.px[row, Market.CLOSE]
        self.steps[idx] = 0
        self.position[idx] = 0
        self.avg_price[idx] = 0.0
        self.cash[idx] = e0
        self.equity0[idx] = e0
        self.inv_equity0[idx] = 1.0 / e0
        self.prev_equity[idx] = e0
        self.peak_equity[idx] = e0
        self.realized[idx] = 0.0
        self.costs[idx] = 0.0
        self.entry_ms[idx] = 0
        self.pend_target[idx] = 0
        self.pend_left[idx] = 0
        self.pend_arrival[idx] = 0
        self.reward_sum[idx] = 0.0
        self.fills[idx] = 0
        self.rejected[idx] = 0
        self.turnover[idx] = 0.0
        # First observations: the start bar's features; flat, no order, so the account
        # fields are 0 but the time to the close.
        now = m.ts[row] + self.bar_ms[idx]
        self.obs[idx] = m.feat[row]
        self.obs[idx, K + 4] = (self.close_ms[idx] - now) * INV_SESSION_MS

    def step(self, actions):
        m = self.m
        where = np.where
        # 0. Gather bar t+1 (bar t's time and close are carried from the last step).
        t = self.row
        f = t + 1
        bars = m.bars(f)
        open_f, close_f, vol_f, sigma_f = bars[Market.OPEN], bars[Market.CLOSE], bars[Market.VOL], bars[Market.SIGMA]
        ts_f = m.ts.take(f)
        ts_t, close_t = self.ts_t, self.close_t
        bar_ms = self.bar_ms
        last = f == self.last_row
        frac = ACTIONS.take(actions)

        # 1. Decision at t's close (exec::decide_target), keep / send / cancel.
        position = self.position
        pend_left, pend_target = self.pend_left, self.pend_target
        pending = pend_left != 0
        current = where(pending, pend_target, position)
        max_shares = np.trunc(MAX_POSITION_USD / close_t)
        x = frac * max_shares
        r = (np.abs(x) + 0.5).astype(np.int64)
        target = where(x < 0.0, -r, r)
        hold = (target != 0) & (np.abs(target - current) < MIN_ORDER_FRAC * max_shares)
        target = where(hold, current, target)
        keep = pending & (pend_target == target)
        send = ~keep & (target != position)
        self.pend_target = where(send, target, pend_target)
        pend_left = where(keep, pend_left, where(send, target - position, 0))
        arrival = where(send, ts_t + bar_ms + LATENCY_MS, self.pend_arrival)
        self.pend_arrival = arrival

        # 2. Fills at t+1's open.
        arrived = (pend_left != 0) & (ts_f >= arrival)
        halted = bars[Market.HALTED] != 0.0
        hd = m.day_has_halts.take(self.day)
        if hd.any():
            # Orders arriving inside a halt of their day (rare days): checked for those only.
            ih = np.flatnonzero(hd)
            a = arrival[ih, None]
            dh = self.day[ih]
            halted[ih] |= ((a >= m.halt_lo[dh]) & (a < m.halt_hi[dh])).any(axis=1)
        rejected = arrived & halted
        cap = (PARTICIPATION * vol_f).astype(np.int64)
        q = np.minimum(np.abs(pend_left), cap)
        fills = arrived & ~rejected & (q > 0)
        shares = where(fills, q * np.sign(pend_left), 0)
        if m.has_quotes:
            bid_f, ask_f = bars[Market.BID], bars[Market.ASK]
            quoted = bid_f != 0.0
            price = where(quoted, (bid_f + ask_f) * 0.5, open_f)
            half = where(quoted, (ask_f - bid_f) * 0.5, open_f * HALF_SPREAD_FRAC)
        else:
            price = open_f
            half = open_f * HALF_SPREAD_FRAC
        qf = q.astype(np.float64)
        total = (
            np.maximum(qf * COMMISSION_PER_SHARE, COMMISSION_MIN)
            + qf * half
            + qf * price * IMPACT_K * sigma_f * np.sqrt(qf / np.maximum(vol_f, 1.0))
        )
        left = where(~rejected, pend_left - shares, 0) if CARRY_REMAINDER else np.zeros_like(pend_left)
        self.pend_left = pend_left = where(arrived, left, pend_left)
        self.rejected += rejected

        # 3. Books (exec::apply_fill / Ledger::book_total_if), borrow, mark, episode end.
        filled = shares != 0
        qs = where(filled, shares, 1)
        new_pos = position + qs
        a_, b_ = np.abs(position).astype(np.float64), np.abs(qs).astype(np.float64)
        avg = self.avg_price
        adding = (position == 0) | ((position > 0) == (qs > 0))
        added_avg = (a_ * avg + b_ * price) / (a_ + b_)
        realized = np.minimum(a_, b_) * (price - avg) * where(position > 0, 1.0, -1.0)
        reduced_avg = where(new_pos == 0, 0.0, where((new_pos > 0) == (position > 0), avg, price))
        avg_new = where(adding, added_avg, reduced_avg)
        realized = where(adding, 0.0, realized)
        entry = where(
            new_pos == 0,
            0,
            where((position == 0) | ((new_pos > 0) != (position > 0)), ts_f, self.entry_ms),
        )
        cash = where(filled, self.cash - shares * price - total, self.cash)
        costs = where(filled, self.costs + total, self.costs)
        self.realized = where(filled, self.realized + realized, self.realized)
        self.entry_ms = where(filled, entry, self.entry_ms)
        position = where(filled, new_pos, position)
        self.avg_price = where(filled, avg_new, avg)
        self.fills += filled
        traded = where(filled, np.abs(shares) * price, 0.0)
        borrow = where(position < 0, (-position) * close_f * BORROW_PER_MS * (ts_f - ts_t), 0.0)
        cash -= borrow
        costs += borrow
        self.steps += 1
        self.row = f
        self.ts_t, self.close_t = ts_f, close_f
        equity = cash + position * close_f
        e0 = self.equity0
        lost = equity - e0 <= -LOSS_LIMIT * e0
        ended = last | lost
        self.cash, self.costs, self.position = cash, costs, position
        any_ended = ended.any()
        if any_ended:
            # Terminated episodes leave flat: the order is cancelled and the position closed
            # at t+1's close with costs (rare: a handful of environments per step).
            ex = np.flatnonzero(ended)
            self.pend_left[ex] = 0
            pos = position[ex]
            px = close_f[ex]
            if m.has_quotes:
                hx = where(quoted[ex], (ask_f[ex] - bid_f[ex]) * 0.5, px * HALF_SPREAD_FRAC)
            else:
                hx = px * HALF_SPREAD_FRAC
            live = pos != 0
            qx = np.abs(pos).astype(np.float64)
            tot = (
                np.maximum(qx * COMMISSION_PER_SHARE, COMMISSION_MIN)
                + qx * hx
                + qx * px * IMPACT_K * sigma_f[ex] * np.sqrt(qx / np.maximum(vol_f[ex], 1.0))
            )
            avg_x = self.avg_price[ex]
            real_x = qx * (px - avg_x) * where(pos > 0, 1.0, -1.0)
            self.cash[ex] = where(live, cash[ex] + pos * px - tot, cash[ex])
            self.costs[ex] = where(live, costs[ex] + tot, costs[ex])
            self.realized[ex] = where(live, self.realized[ex] + real_x, self.realized[ex])
            self.fills[ex] += live
            self.position[ex] = 0
            self.avg_price[ex] = 0.0
            self.entry_ms[ex] = 0
            traded[ex] += where(live, qx * px, 0.0)
            equity[ex] = self.cash[ex]

        # 4. Reward (exec::step_fractions, preset pnl).
        inv_e0 = self.inv_equity0
        reward = REWARD_SCALE * ((equity - self.prev_equity) * inv_e0)
        np.maximum(self.peak_equity, equity, out=self.peak_equity)
        self.prev_equity = self.last_equity = equity
        self.reward_sum += reward
        self.turnover += traded
        self.rewards[:] = reward
        self.terminated[:] = ended
        self.truncated[:] = 0  # env.max_episode_steps = 0

        # 5. Observations at t+1: the feature rows straight into the buffer, then the
        # account fields; then the auto-reset (and first observations) of ended episodes.
        pos = self.position
        now = ts_f + bar_ms
        held = where(pos != 0, np.maximum(now - self.entry_ms, 0), 0)
        obs = self.obs
        m.feat.take(f, axis=0, out=obs)
        obs[:, K + 0] = pos * close_f * INV_MAX_POSITION_USD
        obs[:, K + 1] = pos * (close_f - self.avg_price) * inv_e0
        obs[:, K + 2] = held * INV_SESSION_MS
        obs[:, K + 3] = self.pend_left * close_f * INV_MAX_POSITION_USD
        obs[:, K + 4] = (self.close_ms - now) * INV_SESSION_MS
        if any_ended:
            self.episodes += len(ex)
            self.prev_equity = equity.copy()  # `last_equity` keeps the ended episodes' last
            self.reset(ex)


class Sharded:
    """T independent shards of environments stepped by a pool of T threads."""

    def __init__(self, m, n, threads, seed):
        bounds = np.linspace(0, n, threads + 1).astype(int)
        self.bounds = list(zip(bounds[:-1], bounds[1:]))
        self.shards = [
            NumpyEnvs(m, hi - lo, np.random.default_rng([seed, i]))
            for i, (lo, hi) in enumerate(self.bounds)
        ]
        self.pool = ThreadPoolExecutor(threads) if threads > 1 else None

    def step(self, actions):
        if self.pool is None:
            self.shards[0].step(actions)
            return
        futs = [
            self.pool.submit(s.step, actions[lo:hi]) for s, (lo, hi) in zip(self.shards, self.bounds)
        ]
        for f in futs:
            f.result()

    @property
    def episodes(self):
        return sum(s.episodes for s in self.shards)


def trace(m, prefix, seed, hold, day):
    """One environment on the first day from its first start time, random actions (each
    held `hold` steps) until the episode ends: writes PREFIX.positions.csv (the same
    targets as a `sim-train backtest --positions` schedule) and PREFIX.equity.csv (the
    account after each step, as the backtest's equity.csv reports it), to check this
    implementation against ours."""
    e = NumpyEnvs(m, 1, np.random.default_rng(seed))
    first = np.flatnonzero(m.start_day == day)[0]
    e.reset(np.array([0]), k=np.array([first]))
    meta, cols = read_simday(m.files[day])
    base = int(m.day_base[day])
    rng = np.random.default_rng(seed)
    pos_rows, eq_rows = [], []
    a = 0
    k = 0
    while True:
        if k % hold == 0:
            a = int(rng.integers(0, len(ACTIONS)))
        t = int(e.row[0])
        pos_rows.append(f"{meta['symbol']},{int(cols['ts_ns'][t - base])},{ACTIONS[a]}")
        e.step(np.array([a], dtype=np.uint8))
        k += 1
        f = t + 1
        if e.terminated[0]:
            eq_rows.append(f"{int(cols['ts_ns'][f - base])},{float(e.last_equity[0])!r},{float(e.last_equity[0])!r},0")
            break
        eq_rows.append(f"{int(cols['ts_ns'][f - base])},{float(e.prev_equity[0])!r},{float(e.cash[0])!r},{int(e.position[0])}")
    with open(prefix + ".positions.csv", "w") as fh:
        fh.write("symbol,ts,target\n" + "\n".join(pos_rows) + "\n")
    with open(prefix + ".equity.csv", "w") as fh:
        fh.write("ts_ns,equity,cash,position\n" + "\n".join(eq_rows) + "\n")
    print(json.dumps({"trace": prefix, "steps": k, "final_equity": float(e.last_equity[0])}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", required=True, help="day-cache folder (e.g. DIR/bench-cache of `sim-train bench cache --dir DIR`)")
    ap.add_argument("--envs", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=2000, help="batch steps timed")
    ap.add_argument("--threads", type=int, default=1, help="shards stepped by a thread pool (1 = plain NumPy)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--trace", metavar="PREFIX", help="write a one-environment trace to check against `sim-train backtest` (see trace())")
    ap.add_argument("--trace-day", type=int, default=0, help="day (file index, symbol then date order) --trace steps")
    ap.add_argument("--trace-hold", type=int, default=7, help="steps each random target of --trace is held")
    a = ap.parse_args()
    if a.envs < 1 or a.steps < 1 or a.threads < 1:
        raise SystemExit("--envs, --steps and --threads must be at least 1")
    t0 = time.perf_counter()
    m = Market(a.cache)
    load_s = time.perf_counter() - t0
    if a.trace:
        return trace(m, a.trace, a.seed, a.trace_hold, a.trace_day)
    envs = Sharded(m, a.envs, a.threads, a.seed)
    rng = np.random.default_rng(0x2545F4914F6CDD1D)
    pool = rng.integers(0, len(ACTIONS), size=(ACTION_POOL, a.envs), dtype=np.uint8)
    warmup = min(-(-a.steps // 20), 200)
    k = 0
    for _ in range(warmup):
        envs.step(pool[k % ACTION_POOL])
        k += 1
    ep0 = envs.episodes
    t = time.perf_counter()
    for _ in range(a.steps):
        envs.step(pool[k % ACTION_POOL])
        k += 1
    elapsed = time.perf_counter() - t
    rate = a.envs * a.steps / elapsed
    print(json.dumps({
        "bench": "env-numpy-peer",
        "env_steps_per_s": rate,
        "ns_per_env_step": 1e9 / rate,
        "elapsed_s": elapsed,
        "envs": a.envs,
        "steps": a.steps,
        "warmup_steps": warmup,
        "threads": a.threads,
        "days": m.days,
        "bars": int(m.rows),
        "obs_dim": OBS_DIM,
        "episodes": int(envs.episodes - ep0),
        "load_s": load_s,
        "cache": os.path.abspath(a.cache),
        **runtime(),
    }))


if __name__ == "__main__":
    sys.exit(main())
