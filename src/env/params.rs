//! Environment configuration (`[env]` in the config) and its validated form.
//!
//! [`EnvConfig`] is what users write; [`EnvParams`] is the checked plan the engines run:
//! the action table, the observation's feature columns, the cost model with its units
//! converted once (bps to fractions, annual borrow rate to a per-millisecond rate), and the
//! reward weights. Every engine (the scalar reference, the CPU batch, the GPU backends)
//! takes an `EnvParams`, so a config value means the same thing everywhere.

use crate::features::{FEATURE_NAMES, N_FEATURES, feature_index};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnvConfig {
    /// Account equity at the start of every episode, dollars.
    pub initial_equity: f64,
    /// Dollar value of a target of 1.0 (the maximum position); shares are
    /// `floor(max_position_usd / price)` at the decision bar's close.
    pub max_position_usd: f64,
    /// The discrete actions: target positions as fractions of the maximum position.
    pub actions: Vec<f64>,
    /// Whether targets below zero (short positions) are allowed.
    pub allow_short: bool,
    /// Orders smaller than this fraction of the maximum position are not sent unless the
    /// target is 0 (keeps a held target from trading a few shares each time the price
    /// moves).
    pub min_order_frac: f64,
    /// Feature columns of the observation, by name; empty means all of feature set v2.
    pub features: Vec<String>,
    /// Which bars an episode trades: "regular" (09:30–16:00, early closes respected) or
    /// "extended" (pre-market to after-hours, as cached).
    pub session: SessionKind,
    /// Steps after which an episode is truncated (not terminated); 0 = no limit.
    pub max_episode_steps: u32,
    /// Loss, as a fraction of the episode's starting equity, that terminates the episode
    /// (position flattened with costs); 0 disables the limit.
    pub daily_loss_limit: f64,
    /// Episode start times (NY, HH:MM:SS) used when no scanner index drives the episodes.
    pub start_times: Vec<String>,
    /// Seed of the episode draws of the built-in start-time sampler.
    pub seed: u64,
    pub execution: ExecutionConfig,
    pub costs: CostConfig,
    pub reward: RewardConfig,
}

impl Default for EnvConfig {
    fn default() -> Self {
        EnvConfig {
            initial_equity: 100_000.0,
            max_position_usd: 100_000.0,
            actions: vec![-1.0, -0.5, 0.0, 0.5, 1.0],
            allow_short: true,
            min_order_frac: 0.05,
            features: Vec::new(),
            session: SessionKind::Regular,
            max_episode_steps: 0,
            daily_loss_limit: 0.02,
            start_times: vec!["09:30:00".into()],
            seed: 7,
            execution: ExecutionConfig::default(),
            costs: CostConfig::default(),
            reward: RewardConfig::default(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionKind {
    Regular,
    Extended,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecutionConfig {
    /// Time from the decision (the decision bar's close) until the order reaches the
    /// market, milliseconds. It fills at the first bar that starts at or after arrival.
    pub latency_ms: u32,
    /// Largest fraction of a bar's volume one order may take in that bar, in (0, 1].
    pub participation: f64,
    /// What happens to the part of an order above the participation cap: "carry" (it
    /// keeps filling in the next bars) or "cancel".
    pub remainder: Remainder,
}

impl Default for ExecutionConfig {
    fn default() -> Self {
        ExecutionConfig {
            latency_ms: 0,
            participation: 0.1,
            remainder: Remainder::Carry,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Remainder {
    Carry,
    Cancel,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CostConfig {
    /// How commission is charged: "per-share" or "bps" (of traded notional).
    pub commission: CommissionKind,
    /// Dollars per share when `commission = "per-share"`.
    pub commission_per_share: f64,
    /// Basis points of notional when `commission = "bps"`.
    pub commission_bps: f64,
    /// Smallest commission of one fill, dollars.
    pub commission_min: f64,
    /// Half the bid-ask spread in basis points of price, used where a bar has no quote.
    pub half_spread_bps: f64,
    /// Market impact coefficient k: the cost per share is
    /// `k · σ · sqrt(shares / bar volume) · price`, σ = ATR(14)/close of the bar before
    /// the fill.
    pub impact_k: f64,
    /// Annual short-borrow rate on the value of a short position, charged per second held.
    pub borrow_rate_annual: f64,
}

impl Default for CostConfig {
    fn default() -> Self {
        CostConfig {
            commission: CommissionKind::PerShare,
            commission_per_share: 0.005,
            commission_bps: 0.0,
            commission_min: 1.0,
            half_spread_bps: 1.0,
            impact_k: 1.0,
            borrow_rate_annual: 0.03,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommissionKind {
    PerShare,
    Bps,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RewardConfig {
    /// Reward preset: "pnl", "dsr", "sharpe" or "hybrid" (the weights below).
    pub kind: RewardKind,
    /// Multiplies the whole reward (per-step P&L as a fraction of equity is small).
    pub scale: f64,
    /// Adaptation rate η of the differential Sharpe ratio's moving moments.
    pub dsr_eta: f64,
    /// Steps at the start of an episode whose DSR term is 0 while the moments settle.
    pub dsr_warmup: u32,
    /// The DSR term is 0 while the moments' variance B − A² is at or below this.
    pub dsr_eps: f64,
    /// Window of the rolling Sharpe term, steps.
    pub sharpe_window: u32,
    /// Weight of the P&L term in "hybrid".
    pub hybrid_pnl: f64,
    /// Weight of the DSR term in "hybrid".
    pub hybrid_dsr: f64,
    /// Penalty per unit of new drawdown (fraction of starting equity) in "hybrid".
    pub hybrid_drawdown: f64,
    /// Penalty per unit of traded notional (fraction of starting equity) in "hybrid".
    pub hybrid_turnover: f64,
}

impl Default for RewardConfig {
    fn default() -> Self {
        RewardConfig {
            kind: RewardKind::Pnl,
            scale: 100.0,
            dsr_eta: 0.01,
            dsr_warmup: 20,
            dsr_eps: 1e-18,
            sharpe_window: 60,
            hybrid_pnl: 1.0,
            hybrid_dsr: 0.01,
            hybrid_drawdown: 1.0,
            hybrid_turnover: 0.0001,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RewardKind {
    Pnl,
    Dsr,
    Sharpe,
    Hybrid,
}

/// Reward term weights: `reward = scale · (pnl·P + dsr·D + sharpe·S − drawdown·ΔDD −
/// turnover·T)`. Each preset is one choice of weights of the same sum.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RewardWeights {
    pub pnl: f64,
    pub dsr: f64,
    pub sharpe: f64,
    pub drawdown: f64,
    pub turnover: f64,
}

/// Commission of one fill, with units resolved.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Commission {
    /// Dollars per share.
    PerShare(f64),
    /// Fraction of notional.
    Notional(f64),
}

/// The validated environment plan shared by every engine.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvParams {
    pub initial_equity: f64,
    pub max_position_usd: f64,
    /// `1 / max_position_usd`.
    pub inv_max_position_usd: f64,
    pub actions: Vec<f64>,
    pub allow_short: bool,
    pub min_order_frac: f64,
    /// Cache feature columns copied into the observation, in order.
    pub feature_cols: Vec<usize>,
    pub session: SessionKind,
    pub max_episode_steps: u32,
    /// Loss limit as a fraction; 0 = off.
    pub loss_limit: f64,
    pub latency_ms: u32,
    pub participation: f64,
    pub carry_remainder: bool,
    pub commission: Commission,
    pub commission_min: f64,
    /// Half-spread as a fraction of price where there is no quote.
    pub half_spread_frac: f64,
    pub impact_k: f64,
    /// Borrow cost per dollar short per millisecond.
    pub borrow_per_ms: f64,
    pub reward_scale: f64,
    pub weights: RewardWeights,
    pub dsr_eta: f64,
    pub dsr_warmup: u32,
    pub dsr_eps: f64,
    pub sharpe_window: u32,
}

/// Names of the account fields appended to the features in every observation, in order.
pub const ACCOUNT_FIELDS: [&str; 5] = [
    "position_frac",
    "unrealized_pnl",
    "time_in_trade",
    "pending_order",
    "time_to_close",
];

const MS_PER_YEAR: f64 = 365.0 * 86_400_000.0;

impl EnvParams {
    /// Checks `cfg` and resolves it; errors name the key (`env.…`) and the fix.
    pub fn from_config(cfg: &EnvConfig) -> Result<EnvParams, String> {
        positive("env.initial_equity", cfg.initial_equity)?;
        positive("env.max_position_usd", cfg.max_position_usd)?;
        if cfg.actions.is_empty() || cfg.actions.len() > 255 {
            return Err(format!(
                "env.actions has {} entries: give 1 to 255 target fractions, e.g. [-1, 0, 1]",
                cfg.actions.len()
            ));
        }
        for (i, &a) in cfg.actions.iter().enumerate() {
            if !(a.is_finite() && (-1.0..=1.0).contains(&a)) {
                return Err(format!(
                    "env.actions[{i}] = {a}: targets are fractions of the maximum position in [-1, 1]"
                ));
            }
            if a < 0.0 && !cfg.allow_short {
                return Err(format!(
                    "env.actions[{i}] = {a} is short but env.allow_short = false: drop negative actions or allow shorting"
                ));
            }
        }
        if !(cfg.min_order_frac.is_finite() && (0.0..1.0).contains(&cfg.min_order_frac)) {
            return Err(format!(
                "env.min_order_frac = {}: must be in [0, 1)",
                cfg.min_order_frac
            ));
        }
        let feature_cols = if cfg.features.is_empty() {
            (0..N_FEATURES).collect()
        } else {
            let mut cols = Vec::with_capacity(cfg.features.len());
            for name in &cfg.features {
                let k = feature_index(name).ok_or_else(|| {
                    format!(
                        "env.features: unknown feature '{name}': known are {}",
                        FEATURE_NAMES.join(", ")
                    )
                })?;
                if cols.contains(&k) {
                    return Err(format!("env.features lists '{name}' twice"));
                }
                cols.push(k);
            }
            cols
        };
        let limit = cfg.daily_loss_limit;
        if !(limit.is_finite() && (0.0..1.0).contains(&limit)) {
            return Err(format!(
                "env.daily_loss_limit = {limit}: must be in [0, 1) (0 disables it)"
            ));
        }
        for t in &cfg.start_times {
            parse_hms(t).map_err(|e| format!("env.start_times: {e}"))?;
        }
        if cfg.start_times.is_empty() {
            return Err("env.start_times is empty: give at least one, e.g. [\"09:30:00\"]".into());
        }
        let ex = &cfg.execution;
        if !(ex.participation.is_finite() && ex.participation > 0.0 && ex.participation <= 1.0) {
            return Err(format!(
                "env.execution.participation = {}: must be in (0, 1] (a fraction of bar volume)",
                ex.participation
            ));
        }
        if ex.latency_ms > 3_600_000 {
            return Err(format!(
                "env.execution.latency_ms = {}: more than an hour makes no sense",
                ex.latency_ms
            ));
        }
        let c = &cfg.costs;
        for (key, v) in [
            ("env.costs.commission_per_share", c.commission_per_share),
            ("env.costs.commission_bps", c.commission_bps),
            ("env.costs.commission_min", c.commission_min),
            ("env.costs.half_spread_bps", c.half_spread_bps),
            ("env.costs.impact_k", c.impact_k),
            ("env.costs.borrow_rate_annual", c.borrow_rate_annual),
        ] {
            non_negative(key, v)?;
        }
        let r = &cfg.reward;
        positive("env.reward.scale", r.scale)?;
        if !(r.dsr_eta.is_finite() && r.dsr_eta > 0.0 && r.dsr_eta < 1.0) {
            return Err(format!(
                "env.reward.dsr_eta = {}: must be in (0, 1)",
                r.dsr_eta
            ));
        }
        non_negative("env.reward.dsr_eps", r.dsr_eps)?;
        if r.sharpe_window < 2 {
            return Err(format!(
                "env.reward.sharpe_window = {}: needs at least 2 steps",
                r.sharpe_window
            ));
        }
        for (key, v) in [
            ("env.reward.hybrid_pnl", r.hybrid_pnl),
            ("env.reward.hybrid_dsr", r.hybrid_dsr),
            ("env.reward.hybrid_drawdown", r.hybrid_drawdown),
            ("env.reward.hybrid_turnover", r.hybrid_turnover),
        ] {
            non_negative(key, v)?;
        }
        let zero = RewardWeights {
            pnl: 0.0,
            dsr: 0.0,
            sharpe: 0.0,
            drawdown: 0.0,
            turnover: 0.0,
        };
        let weights = match r.kind {
            RewardKind::Pnl => RewardWeights { pnl: 1.0, ..zero },
            RewardKind::Dsr => RewardWeights { dsr: 1.0, ..zero },
            RewardKind::Sharpe => RewardWeights {
                sharpe: 1.0,
                ..zero
            },
            RewardKind::Hybrid => RewardWeights {
                pnl: r.hybrid_pnl,
                dsr: r.hybrid_dsr,
                sharpe: 0.0,
                drawdown: r.hybrid_drawdown,
                turnover: r.hybrid_turnover,
            },
        };
        Ok(EnvParams {
            initial_equity: cfg.initial_equity,
            max_position_usd: cfg.max_position_usd,
            inv_max_position_usd: 1.0 / cfg.max_position_usd,
            actions: cfg.actions.clone(),
            allow_short: cfg.allow_short,
            min_order_frac: cfg.min_order_frac,
            feature_cols,
            session: cfg.session,
            max_episode_steps: cfg.max_episode_steps,
            loss_limit: limit,
            latency_ms: ex.latency_ms,
            participation: ex.participation,
            carry_remainder: ex.remainder == Remainder::Carry,
            commission: match c.commission {
                CommissionKind::PerShare => Commission::PerShare(c.commission_per_share),
                CommissionKind::Bps => Commission::Notional(c.commission_bps * 1e-4),
            },
            commission_min: c.commission_min,
            half_spread_frac: c.half_spread_bps * 1e-4,
            impact_k: c.impact_k,
            borrow_per_ms: c.borrow_rate_annual / MS_PER_YEAR,
            reward_scale: r.scale,
            weights,
            dsr_eta: r.dsr_eta,
            dsr_warmup: r.dsr_warmup,
            dsr_eps: r.dsr_eps,
            sharpe_window: r.sharpe_window,
        })
    }

    /// Length of one observation: the feature columns, then [`ACCOUNT_FIELDS`].
    pub fn obs_dim(&self) -> usize {
        self.feature_cols.len() + ACCOUNT_FIELDS.len()
    }

    /// The observation's field names, in order (exported with a policy).
    pub fn obs_names(&self) -> Vec<String> {
        self.feature_cols
            .iter()
            .map(|&k| FEATURE_NAMES[k].to_string())
            .chain(ACCOUNT_FIELDS.iter().map(|s| s.to_string()))
            .collect()
    }

    /// Whether the rolling-Sharpe ring buffer is needed.
    pub fn uses_sharpe(&self) -> bool {
        self.weights.sharpe != 0.0
    }
}

/// `HH:MM:SS` (or `HH:MM`) to seconds after midnight.
pub fn parse_hms(s: &str) -> Result<u32, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let bad = || format!("'{s}' is not a time of day: use HH:MM:SS, e.g. 09:30:00");
    if !(2..=3).contains(&parts.len()) {
        return Err(bad());
    }
    let mut v = [0u32; 3];
    for (i, p) in parts.iter().enumerate() {
        v[i] = p.parse().map_err(|_| bad())?;
    }
    if v[0] > 23 || v[1] > 59 || v[2] > 59 {
        return Err(bad());
    }
    Ok(v[0] * 3600 + v[1] * 60 + v[2])
}

fn positive(key: &str, v: f64) -> Result<(), String> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(format!("{key} = {v}: must be a positive number"))
    }
}

fn non_negative(key: &str, v: f64) -> Result<(), String> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(format!("{key} = {v}: must be zero or positive"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_resolve() {
        let p = EnvParams::from_config(&EnvConfig::default()).unwrap();
        assert_eq!(p.obs_dim(), N_FEATURES + 5);
        assert_eq!(p.obs_names().len(), p.obs_dim());
        assert_eq!(p.weights.pnl, 1.0);
        assert!((p.borrow_per_ms * MS_PER_YEAR - 0.03).abs() < 1e-15);
    }

    #[test]
    fn nonsense_is_refused_by_key() {
        let bad = |f: fn(&mut EnvConfig), key: &str| {
            let mut c = EnvConfig::default();
            f(&mut c);
            let e = EnvParams::from_config(&c).unwrap_err();
            assert!(e.starts_with(key), "{e}");
        };
        bad(
            |c| c.execution.participation = 0.0,
            "env.execution.participation",
        );
        bad(|c| c.actions = vec![0.0, 1.5], "env.actions[1]");
        bad(|c| c.allow_short = false, "env.actions[0]");
        bad(|c| c.features = vec!["nope".into()], "env.features");
        bad(|c| c.costs.impact_k = -1.0, "env.costs.impact_k");
        bad(|c| c.start_times = vec!["9h30".into()], "env.start_times");
        bad(|c| c.daily_loss_limit = 1.0, "env.daily_loss_limit");
        bad(|c| c.reward.sharpe_window = 1, "env.reward.sharpe_window");
    }

    #[test]
    fn hms() {
        assert_eq!(parse_hms("09:30:00"), Ok(34_200));
        assert_eq!(parse_hms("15:59"), Ok(57_540));
        assert!(parse_hms("24:00:00").is_err());
    }
}
