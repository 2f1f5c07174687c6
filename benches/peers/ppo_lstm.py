#!/usr/bin/env python3
"""The PyTorch peer of `sim-train bench train --device cpu`: a PPO-LSTM learner written the
way CleanRL's `ppo_atari_lstm.py` is (single file; Agent = encoder -> nn.LSTM -> actor /
critic heads with orthogonal init; rollout with the LSTM state masked by `1 - done` at
every step; GAE; epochs of minibatches split by environment, each replaying its whole
sequence from the rollout's initial LSTM state; clipped policy and value losses, entropy
bonus, global grad-norm clip, Adam), with exactly the shapes and hyperparameters of our
`bench train` (below), on a trivial vectorized market whose cost is negligible next to the
learner's (a few tensor ops per step; `env_s` in the output says how small).

Shapes and hyperparameters, each confirmed in our code (paths from the repository root):

  value                         ours                             source
  envs N = 1024                 --envs default                   src/cli/mod.rs:364 (BenchTrainArgs)
  rollout T = 64                --steps default                  src/cli/mod.rs:367
  timed updates = 3 (+1 warm-up) --updates default; loop 0..=u   src/cli/mod.rs:370, src/bench.rs:555
  obs_dim = 24                  19 features v1 + 5 account       src/features.rs:55 (N_FEATURES), src/env/params.rs:253,423-425, config/default.toml:190 (features = [])
  n_actions = 5                 env.actions [-1,-.5,0,.5,1]      config/default.toml:183
  encoder = [128], tanh         train.encoder                    src/learn/config.rs:131, config/default.toml:321, src/learn/policy.rs:186
  LSTM hidden = 128, 1 layer    train.hidden                     src/learn/config.rs:132, config/default.toml:323, src/learn/policy.rs:204-218
  actor 5 (log-softmax), critic 1                                src/learn/policy.rs:192-200
  init: orthogonal, gains sqrt2 / 1 (LSTM) / 0.01 (actor) / 1 (critic), biases 0
                                                                 src/learn/policy.rs:88,94-103
  norm_obs = true, clip 10      running mean/var (count 1e-4, eps 1e-8), updated every rollout step
                                                                 src/learn/config.rs:133-134, config/default.toml:326-328, src/learn/normalize.rs:24,31, src/learn/ppo.rs:259-262
  learning_rate = 2.5e-4        constant in bench train          src/learn/config.rs:135, config/default.toml:330, src/bench.rs:561 (ppo.update(cfg.learning_rate): no annealing)
  adam_eps = 1e-5, betas (0.9, 0.999)                            src/learn/config.rs:137, config/default.toml:334, src/learn/ppo.rs:50-51
  gamma = 0.99                                                   src/learn/config.rs:138, config/default.toml:336
  gae_lambda = 0.95                                              src/learn/config.rs:139, config/default.toml:338
  minibatches = 4, split by environment                          src/learn/config.rs:140, config/default.toml:341, src/learn/ppo.rs:527,536-539
  epochs = 4                                                     src/learn/config.rs:141, config/default.toml:343
  bptt = 0 (whole rollout, T = 64)                               src/learn/config.rs:142, config/default.toml:345
  norm_adv = true (per minibatch, std unbiased, +1e-8)           src/learn/config.rs:143, src/learn/ppo.rs:580
  clip_coef = 0.1                                                src/learn/config.rs:144, config/default.toml:349
  clip_vloss = true                                              src/learn/config.rs:145, src/learn/ppo.rs:586-595
  ent_coef = 0.01                                                src/learn/config.rs:146, config/default.toml:353
  vf_coef = 0.5                                                  src/learn/config.rs:147, config/default.toml:355
  max_grad_norm = 0.5                                            src/learn/config.rs:148, config/default.toml:357, src/learn/ppo.rs:600
  target_kl = 0 (off)                                            src/learn/config.rs:149, config/default.toml:360
  seed = 1                                                       src/learn/config.rs:126
  threads: train.threads (0 = every core); tch::set_num_threads  src/bench.rs:514-519 (compare.py passes --set train.threads=T)

Throughput is counted as ours counts it (src/bench.rs:555-593): one untimed warm-up update
(rollout + learning), then `--updates` timed ones; steps_per_s = envs * T * updates /
seconds. `learn_s` runs from the end of the rollout (bootstrap value, GAE, the epochs), as
our `Ppo::update` does; `rollout_s` = `env_s` + `inference_s`.

The trivial market (`TrivialMarket`): per environment a position fraction (the action's
target from the same 5-entry table), a price return drawn from a pre-generated bank, a
cost per unit of position change, equity, and a step counter. Observations: 19 columns
gathered from a pre-generated bank of feature rows, then position, unrealized P&L, time in
trade, pending order (always 0) and time to the close, as our 5 account fields. Rewards
are 100 x P&L as a fraction of equity (our env.reward.scale). An episode ends when its
drawn length runs out (geometric, mean `--episode-mean` steps, 3,000 by default) or at the
2 % loss limit (rare with these small returns). 3,000 is the long-run rate of our market
environments under random actions, measured with benches/peers/numpy_env.py over the
default 200 synthetic days: one episode end per ~2,800-3,000 env-steps, mostly the 2 %
daily loss limit. So each rollout of 1,024 x 64 steps sees ~22 episode ends and the
done-masking paths run. (Ours, in `bench train`, starts every episode at 09:30 and sees
almost none in its 4 x 64 steps: 0-1 per rollout with random actions, measured the same
way; so in `--lstm packed` mode the peer does a little more packing than ours, and in
`--lstm cleanrl` mode the masking costs the same whatever the rate. `--episode-mean 1e12`
turns the ends off.)

`--lstm cleanrl` (default) replays minibatch sequences as CleanRL does, one LSTM call per
time step with the state multiplied by `1 - done`; `--lstm packed` runs each minibatch in
one fused nn.LSTM call over episode pieces packed into rows (what our
src/learn/policy.rs `Policy::sequence` does), the fastest PyTorch way we know to get the
same numbers.

Prints one JSON line.
"""

import argparse
import json

import sys
import time


def parse_args():
    ap = argparse.ArgumentParser(description="CleanRL-style PPO-LSTM peer of `sim-train bench train`")
    ap.add_argument("--envs", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=64, help="rollout length T")
    ap.add_argument("--updates", type=int, default=3, help="timed updates (after one warm-up update)")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op and inter-op threads")
    ap.add_argument("--lstm", choices=["cleanrl", "packed"], default="cleanrl")
    ap.add_argument("--episode-mean", type=float, default=3000.0, help="mean episode length of the trivial market, steps")
    ap.add_argument("--seed", type=int, default=1)
    return ap.parse_args()


ARGS = parse_args()
# Threads first: inter-op threads can only be set before any parallel work starts.
import torch  # noqa: E402

torch.set_num_threads(ARGS.threads)
torch.set_num_interop_threads(ARGS.threads)
import numpy as np  # noqa: E402
import torch.nn as nn  # noqa: E402

from machine import runtime

OBS_DIM = 24  # 19 features + 5 account fields
N_FEATURES = 19
ACTIONS = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0])
N_ACTIONS = len(ACTIONS)
ENCODER = 128
HIDDEN = 128
LR = 2.5e-4
ADAM_EPS = 1e-5
GAMMA = 0.99
GAE_LAMBDA = 0.95
MINIBATCHES = 4
EPOCHS = 4
NORM_ADV = True
CLIP_COEF = 0.1
CLIP_VLOSS = True
ENT_COEF = 0.01
VF_COEF = 0.5
MAX_GRAD_NORM = 0.5
OBS_CLIP = 10.0
REWARD_SCALE = 100.0
LOSS_LIMIT = 0.02
SESSION_STEPS = 23_400.0  # a regular session of 1 s bars


class TrivialMarket:
    """N environments as a handful of tensors; its step costs a few dozen tensor ops."""

    BANK = 1 << 16

    def __init__(self, n, episode_mean, seed):
        g = torch.Generator().manual_seed(seed)
        self.g = g
        self.n = n
        self.mean = episode_mean
        self.features = torch.randn(self.BANK, N_FEATURES, generator=g)
        # Small returns and costs: the loss limit stays rare, the drawn lengths set the
        # rate of episode ends.
        self.returns = torch.randn(self.BANK, generator=g) * 1e-4
        self.cursor = torch.randint(0, self.BANK, (n,), generator=g)
        self.pos = torch.zeros(n)
        self.equity = torch.ones(n)
        self.entry_equity = torch.ones(n)
        self.held = torch.zeros(n)
        self.t = torch.zeros(n)
        self.length = self._lengths(n)
        self.ends = 0

    def _lengths(self, k):
        # Geometric (memoryless): the same rate of episode ends from the first step on.
        return torch.empty(k).exponential_(1.0 / self.mean, generator=self.g).ceil()

    def observe(self):
        obs = torch.empty(self.n, OBS_DIM)
        obs[:, :N_FEATURES] = self.features[self.cursor]
        obs[:, N_FEATURES + 0] = self.pos
        obs[:, N_FEATURES + 1] = self.equity - self.entry_equity
        obs[:, N_FEATURES + 2] = self.held / SESSION_STEPS
        obs[:, N_FEATURES + 3] = 0.0
        obs[:, N_FEATURES + 4] = (self.length - self.t) / SESSION_STEPS
        return obs

    def step(self, action):
        target = ACTIONS[action]
        self.cursor = (self.cursor + 1) % self.BANK
        ret = self.returns[self.cursor]
        change = (target - self.pos).abs()
        pnl = target * ret - 1e-6 * change
        self.equity = self.equity * (1.0 + pnl)
        traded = change > 0
        self.entry_equity = torch.where(traded, self.equity, self.entry_equity)
        self.held = torch.where(traded, torch.zeros_like(self.held), self.held + 1.0)
        self.pos = target
        self.t = self.t + 1.0
        reward = REWARD_SCALE * pnl
        done = (self.t >= self.length) | (self.equity <= 1.0 - LOSS_LIMIT)
        if bool(done.any()):
            k = int(done.sum())
            self.ends += k
            self.pos = torch.where(done, torch.zeros_like(self.pos), self.pos)
            self.equity = torch.where(done, torch.ones_like(self.equity), self.equity)
            self.entry_equity = torch.where(done, torch.ones_like(self.equity), self.entry_equity)
            self.held = torch.where(done, torch.zeros_like(self.held), self.held)
            self.t = torch.where(done, torch.zeros_like(self.t), self.t)
            self.length[done] = self._lengths(k)
        return self.observe(), reward, done.float()


class ObsNorm:
    """Running mean / variance of observations (Chan et al.), f64, normalize and clip: the
    statistics our learner keeps (src/learn/normalize.rs)."""

    def __init__(self, d):
        self.mean = torch.zeros(d, dtype=torch.float64)
        self.var = torch.ones(d, dtype=torch.float64)
        self.count = 1e-4

    def update(self, x):
        x = x.double()
        n = x.shape[0]
        m = x.mean(0)
        v = x.var(0, unbiased=False)
        total = self.count + n
        delta = m - self.mean
        m2 = self.var * self.count + v * n + delta * delta * self.count * n / total
        self.mean = self.mean + delta * n / total
        self.var = m2 / total
        self.count = total

    def __call__(self, x):
        z = (x.double() - self.mean) / torch.sqrt(self.var + 1e-8)
        return z.clamp(-OBS_CLIP, OBS_CLIP).float()


def layer_init(layer, std=np.sqrt(2), bias_const=0.0):
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    def __init__(self, packed):
        super().__init__()
        self.network = nn.Sequential(layer_init(nn.Linear(OBS_DIM, ENCODER)), nn.Tanh())
        self.lstm = nn.LSTM(ENCODER, HIDDEN)
        for name, param in self.lstm.named_parameters():
            if "bias" in name:
                nn.init.constant_(param, 0)
            elif "weight" in name:
                nn.init.orthogonal_(param, 1.0)
        self.actor = layer_init(nn.Linear(HIDDEN, N_ACTIONS), std=0.01)
        self.critic = layer_init(nn.Linear(HIDDEN, 1), std=1)
        self.packed = packed

    def get_states(self, x, lstm_state, done):
        """x: [T * B, obs_dim] (time-major), done: [T * B]; CleanRL's loop, or packed."""
        hidden = self.network(x)
        batch_size = lstm_state[0].shape[1]
        hidden = hidden.reshape((-1, batch_size, self.lstm.input_size))
        done = done.reshape((-1, batch_size))
        if self.packed and hidden.shape[0] > 1:
            out, lstm_state = self.packed_lstm(hidden, lstm_state, done)
            return torch.flatten(out, 0, 1), lstm_state
        new_hidden = []
        for h, d in zip(hidden, done):
            h, lstm_state = self.lstm(
                h.unsqueeze(0),
                ((1.0 - d).view(1, -1, 1) * lstm_state[0], (1.0 - d).view(1, -1, 1) * lstm_state[1]),
            )
            new_hidden += [h]
        return torch.flatten(torch.cat(new_hidden), 0, 1), lstm_state

    def packed_lstm(self, x, lstm_state, first):
        """The same outputs as the per-step loop, from one fused LSTM call: every
        (environment, episode piece) becomes its own row, starting from the carried state
        (an environment's first piece) or zeros (a piece that begins an episode), padded
        to T at its end. Returns the outputs [T, B, hidden] (and no final state when an
        episode began inside the sequence; the update does not use it)."""
        t_len, b, w = x.shape
        keep0 = (1.0 - first[0]).view(1, b, 1)
        h0, c0 = lstm_state[0] * keep0, lstm_state[1] * keep0
        f = first.bool().clone()
        f[0] = False
        if not bool(f.any()):
            return self.lstm(x, (h0, c0))
        seg = f.long().cumsum(0)  # piece number within its environment, [T, B]
        pieces = seg[-1] + 1
        base = pieces.cumsum(0) - pieces  # first row of each environment
        rows = int(pieces.sum())
        rowid = base.unsqueeze(0) + seg
        tt = torch.arange(t_len).unsqueeze(1).expand(t_len, b)
        start = torch.cummax(torch.where(f, tt, torch.zeros_like(tt)), dim=0).values
        tau = tt - start  # position within the piece
        xp = x.new_zeros(t_len, rows, w).index_put((tau, rowid), x)
        hi = h0.new_zeros(1, rows, HIDDEN).index_put((torch.zeros_like(base), base), h0[0])
        ci = c0.new_zeros(1, rows, HIDDEN).index_put((torch.zeros_like(base), base), c0[0])
        out, _ = self.lstm(xp, (hi, ci))
        return out[tau, rowid], None

    def get_value(self, x, lstm_state, done):
        hidden, _ = self.get_states(x, lstm_state, done)
        return self.critic(hidden)

    def get_action_and_value(self, x, lstm_state, done, action=None):
        hidden, lstm_state = self.get_states(x, lstm_state, done)
        logits = self.actor(hidden)
        probs = torch.distributions.Categorical(logits=logits)
        if action is None:
            action = probs.sample()
        return action, probs.log_prob(action), probs.entropy(), self.critic(hidden).flatten(), lstm_state


def main():
    a = ARGS
    if a.envs % MINIBATCHES:
        raise SystemExit(f"--envs {a.envs}: {MINIBATCHES} minibatches split by environment need a multiple of {MINIBATCHES}")
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    n, t_len = a.envs, a.steps
    env = TrivialMarket(n, a.episode_mean, a.seed)
    norm = ObsNorm(OBS_DIM)
    agent = Agent(a.lstm == "packed")
    optimizer = torch.optim.Adam(agent.parameters(), lr=LR, eps=ADAM_EPS)

    obs = torch.zeros((t_len, n, OBS_DIM))
    actions = torch.zeros((t_len, n), dtype=torch.long)
    logprobs = torch.zeros((t_len, n))
    rewards = torch.zeros((t_len, n))
    dones = torch.zeros((t_len, n))
    values = torch.zeros((t_len, n))

    next_raw = env.observe()
    next_done = torch.ones(n)  # every environment begins an episode (as ours: next_first = 1)
    next_lstm_state = (torch.zeros(1, n, HIDDEN), torch.zeros(1, n, HIDDEN))
    envs_per_mb = n // MINIBATCHES
    envinds = np.arange(n)
    totals = {"env_s": 0.0, "inference_s": 0.0, "learn_s": 0.0}
    ends0 = 0
    start = time.perf_counter()
    for update in range(a.updates + 1):
        if update == 1:  # the first update warms up, untimed (as ours)
            start = time.perf_counter()
            totals = {k: 0.0 for k in totals}
            ends0 = env.ends
        initial_lstm_state = (next_lstm_state[0].clone(), next_lstm_state[1].clone())
        # 1. Rollout.
        env_s = inf_s = 0.0
        for step in range(t_len):
            c = time.perf_counter()
            norm.update(next_raw)
            next_obs = norm(next_raw)
            obs[step] = next_obs
            dones[step] = next_done
            with torch.no_grad():
                action, logprob, _, value, next_lstm_state = agent.get_action_and_value(next_obs, next_lstm_state, next_done)
            values[step] = value
            actions[step] = action
            logprobs[step] = logprob
            c2 = time.perf_counter()
            inf_s += c2 - c
            next_raw, reward, next_done = env.step(action)
            rewards[step] = reward
            env_s += time.perf_counter() - c2
        # 2. Advantages (GAE), bootstrapped from the value after the rollout.
        c = time.perf_counter()
        with torch.no_grad():
            next_value = agent.get_value(norm(next_raw), next_lstm_state, next_done).reshape(1, -1)
            advantages = torch.zeros_like(rewards)
            lastgaelam = 0
            for t in reversed(range(t_len)):
                if t == t_len - 1:
                    nextnonterminal = 1.0 - next_done
                    nextvalues = next_value
                else:
                    nextnonterminal = 1.0 - dones[t + 1]
                    nextvalues = values[t + 1]
                delta = rewards[t] + GAMMA * nextvalues * nextnonterminal - values[t]
                advantages[t] = lastgaelam = delta + GAMMA * GAE_LAMBDA * nextnonterminal * lastgaelam
            returns = advantages + values
        # 3. Epochs over minibatches of whole environment sequences.
        clipfracs = []
        for epoch in range(EPOCHS):
            np.random.shuffle(envinds)
            for s0 in range(0, n, envs_per_mb):
                mb = torch.from_numpy(envinds[s0 : s0 + envs_per_mb])
                mb_obs = obs[:, mb].reshape(-1, OBS_DIM)
                _, newlogprob, entropy, newvalue, _ = agent.get_action_and_value(
                    mb_obs,
                    (initial_lstm_state[0][:, mb], initial_lstm_state[1][:, mb]),
                    dones[:, mb].reshape(-1),
                    actions[:, mb].reshape(-1),
                )
                logratio = newlogprob - logprobs[:, mb].reshape(-1)
                ratio = logratio.exp()
                with torch.no_grad():
                    old_approx_kl = (-logratio).mean()
                    approx_kl = ((ratio - 1) - logratio).mean()
                    clipfracs += [((ratio - 1.0).abs() > CLIP_COEF).float().mean().item()]
                mb_adv = advantages[:, mb].reshape(-1)
                if NORM_ADV:
                    mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
                pg_loss = torch.max(-mb_adv * ratio, -mb_adv * torch.clamp(ratio, 1 - CLIP_COEF, 1 + CLIP_COEF)).mean()
                mb_returns = returns[:, mb].reshape(-1)
                mb_values = values[:, mb].reshape(-1)
                if CLIP_VLOSS:
                    v_unclipped = (newvalue - mb_returns) ** 2
                    v_clipped = mb_values + torch.clamp(newvalue - mb_values, -CLIP_COEF, CLIP_COEF)
                    v_loss = 0.5 * torch.max(v_unclipped, (v_clipped - mb_returns) ** 2).mean()
                else:
                    v_loss = 0.5 * ((newvalue - mb_returns) ** 2).mean()
                entropy_loss = entropy.mean()
                loss = pg_loss - ENT_COEF * entropy_loss + v_loss * VF_COEF
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), MAX_GRAD_NORM)
                optimizer.step()
            # target_kl = 0: no early stop.
        learn_s = time.perf_counter() - c
        totals["env_s"] += env_s
        totals["inference_s"] += inf_s
        totals["learn_s"] += learn_s
    elapsed = time.perf_counter() - start
    u = a.updates
    steps = n * t_len * u
    print(json.dumps({
        "bench": "train-pytorch-peer",
        "steps_per_s": steps / elapsed,
        "rollout_s": (totals["env_s"] + totals["inference_s"]) / u,
        "env_s": totals["env_s"] / u,
        "inference_s": totals["inference_s"] / u,
        "learn_s": totals["learn_s"] / u,
        "update_s": elapsed / u,
        "updates": u,
        "envs": n,
        "steps": t_len,
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "lstm": a.lstm,
        "episode_ends_per_update": (env.ends - ends0) / u,
        "hidden": HIDDEN,
        "encoder": [ENCODER],
        "epochs": EPOCHS,
        "minibatches": MINIBATCHES,
        "obs_dim": OBS_DIM,
        "n_actions": N_ACTIONS,
        "last_loss": float(loss.item()),
        "clipfrac": float(np.mean(clipfracs)),
        "approx_kl": float(approx_kl.item()),
        "old_approx_kl": float(old_approx_kl.item()),
        "torch": torch.__version__,
        **runtime(),
    }))


if __name__ == "__main__":
    sys.exit(main())
