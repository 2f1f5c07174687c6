//! The `[scan]`, `[sampler]` and `[preload]` config sections and their checks.
//!
//! Every field is documented in `config/default.toml` (a test keeps that file equal to
//! these defaults); [`check`] refuses impossible values with a message that names the key.

use super::Category;
use crate::env::params::parse_hms;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// `[scan]`: thresholds and weights of the offline scanner.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScanConfig {
    /// Earlier cached days of the symbol averaged for `rel_volume` (causal: only earlier days).
    pub volume_lookback_days: u32,
    /// Fewer earlier days than this: `rel_volume` is null and the volume conditions are skipped.
    pub volume_min_history: u32,
    /// Baseline of `rel_volume` over the earlier days: "median" (robust to earlier
    /// momentum days, the default) or "mean".
    pub volume_baseline: VolumeBaseline,
    /// A momentum day has `range >= momentum_range` ...
    pub momentum_range: f64,
    /// ... and `rel_volume >= momentum_rel_volume`.
    pub momentum_rel_volume: f64,
    /// A momentum day is `risk` when halted or when its largest drop from a high reaches this.
    pub risk_drawdown: f64,
    /// A momentum day that is not `risk` is `prime` at or above this quality, else `secondary`.
    pub prime_quality: f64,
    /// A day that is not momentum is `secondary` with at least this range ...
    pub secondary_range: f64,
    /// ... and at least this relative volume.
    pub secondary_rel_volume: f64,
    /// A day that is not momentum is `dead` below this range ...
    pub dead_range: f64,
    /// ... or below this relative volume.
    pub dead_rel_volume: f64,
    /// Range that scores 1 in the quality's range component (0 at `dead_range`).
    pub full_range: f64,
    /// Relative volume that scores 1 in the quality's volume component (0 at 1×).
    pub full_rel_volume: f64,
    /// Dollar volume that scores 0 in the liquidity component (1 at 100× it).
    pub min_dollar_volume: f64,
    /// Quality weights (normalized by their sum).
    pub weight_range: f64,
    pub weight_volume: f64,
    pub weight_trend: f64,
    pub weight_liquidity: f64,
    /// Squeeze: price move over this trailing window, seconds.
    pub squeeze_window_secs: u32,
    /// Squeeze: |log return| over the window at least this ...
    pub squeeze_move: f64,
    /// ... while the volume rate over this trailing window, seconds, ...
    pub squeeze_volume_secs: u32,
    /// ... is at least this multiple of the baseline rate.
    pub squeeze_volume_mult: f64,
    /// Volume baseline: the seconds before a volume window (same session part), for
    /// squeezes and volume velocities.
    pub baseline_secs: u32,
    /// Volume and price velocities of reset points: trailing window, seconds.
    pub velocity_secs: u32,
    /// Reset points of one pattern are at least this far apart, seconds.
    pub reset_min_gap_secs: u32,
    /// No reset point in the last this many seconds of the session.
    pub reset_tail_secs: u32,
    /// Session whose bars can be reset points: "regular" or "extended".
    pub reset_session: crate::env::params::SessionKind,
    /// `breakout`: a new high of the session at this volume velocity or more.
    pub breakout_volume: f64,
    /// `flush`: a new low of the session with a price velocity at or below minus this.
    pub flush_move: f64,
    /// `bounce`: after a drop of this much from the session high ...
    pub bounce_drop: f64,
    /// ... the price has recovered this fraction of the drop.
    pub bounce_retrace: f64,
    /// `consolidation`: the range over the last `consolidation_secs` is at most this ...
    pub consolidation_range: f64,
    /// ... window, seconds ...
    pub consolidation_secs: u32,
    /// ... after the session's range reached this.
    pub consolidation_after: f64,
    /// `power_hour` reset point time (NY HH:MM:SS).
    pub power_hour: String,
    /// Momentum phase: below this session range so far the phase is `quiet`.
    pub phase_min_range: f64,
}

impl Default for ScanConfig {
    fn default() -> Self {
        ScanConfig {
            volume_lookback_days: 20,
            volume_min_history: 3,
            volume_baseline: VolumeBaseline::Median,
            momentum_range: 0.10,
            momentum_rel_volume: 2.0,
            risk_drawdown: 0.15,
            prime_quality: 0.5,
            secondary_range: 0.05,
            secondary_rel_volume: 1.5,
            dead_range: 0.015,
            dead_rel_volume: 0.5,
            full_range: 0.30,
            full_rel_volume: 5.0,
            min_dollar_volume: 100_000.0,
            weight_range: 0.4,
            weight_volume: 0.3,
            weight_trend: 0.2,
            weight_liquidity: 0.1,
            squeeze_window_secs: 900,
            squeeze_move: 0.025,
            squeeze_volume_secs: 300,
            squeeze_volume_mult: 2.5,
            baseline_secs: 1800,
            velocity_secs: 60,
            reset_min_gap_secs: 300,
            reset_tail_secs: 300,
            reset_session: crate::env::params::SessionKind::Regular,
            breakout_volume: 2.0,
            flush_move: 0.02,
            bounce_drop: 0.05,
            bounce_retrace: 0.5,
            consolidation_range: 0.01,
            consolidation_secs: 600,
            consolidation_after: 0.05,
            power_hour: "15:00:00".into(),
            phase_min_range: 0.03,
        }
    }
}

/// How the earlier days' volumes become the `rel_volume` denominator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VolumeBaseline {
    Median,
    Mean,
}

/// One curriculum stage: from `from_episodes` on, days are drawn by category in these
/// relative shares (normalized by their sum), or, with `uniform`, in equal shares over
/// every category the sampled range holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StageConfig {
    pub from_episodes: u64,
    pub uniform: bool,
    pub prime: f64,
    pub secondary: f64,
    pub risk: f64,
    pub mixed: f64,
    pub dead: f64,
}

impl Default for StageConfig {
    fn default() -> Self {
        StageConfig {
            from_episodes: 0,
            uniform: false,
            prime: 0.0,
            secondary: 0.0,
            risk: 0.0,
            mixed: 0.0,
            dead: 0.0,
        }
    }
}

impl StageConfig {
    /// Shares in [`Category::ALL`] order.
    pub fn shares(&self) -> [f64; 5] {
        [self.prime, self.secondary, self.risk, self.mixed, self.dead]
    }
    /// A stage from `from` episodes on with `shares` in [`Category::ALL`] order.
    pub fn with_shares(from: u64, s: [f64; 5]) -> StageConfig {
        StageConfig {
            from_episodes: from,
            uniform: false,
            prime: s[0],
            secondary: s[1],
            risk: s[2],
            mixed: s[3],
            dead: s[4],
        }
    }
}

/// `[sampler.adapt]`: performance-based adjustment of the category shares (off by default).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdaptConfig {
    pub enabled: bool,
    /// A category's share is multiplied by up to `1 + strength` when the agent does badly on it.
    pub strength: f64,
    /// Episode reward (sum) at or below `-scale` counts as fully bad (boost `1 + strength`).
    pub scale: f64,
    /// Weight of the newest episode in each category's moving average of rewards.
    pub alpha: f64,
}

impl Default for AdaptConfig {
    fn default() -> Self {
        AdaptConfig {
            enabled: false,
            strength: 1.0,
            scale: 1.0,
            alpha: 0.01,
        }
    }
}

/// `[sampler]`: the curriculum episode sampler.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamplerConfig {
    pub seed: u64,
    /// Candidate days per draw; the least used wins (power of k choices; 1 = no balancing).
    pub choices: u32,
    /// A day drawn within the last this many draws loses to any candidate that was not.
    pub day_cooldown: u32,
    /// A candidate whose symbol is among the last this many drawn loses to one whose is not.
    pub symbol_rotation: u32,
    /// Draws planned ahead (the preloader loads their days in the background).
    pub lookahead: u32,
    /// First day of the sampled range (inclusive); unset = the index's first.
    pub from: Option<NaiveDate>,
    /// Last day of the sampled range (inclusive); unset = the index's last.
    pub to: Option<NaiveDate>,
    pub stages: Vec<StageConfig>,
    pub adapt: AdaptConfig,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            seed: 11,
            choices: 4,
            day_cooldown: 16,
            symbol_rotation: 1,
            lookahead: 256,
            from: None,
            to: None,
            stages: vec![
                StageConfig::with_shares(0, [0.7, 0.2, 0.1, 0.0, 0.0]),
                StageConfig::with_shares(10_000, [0.4, 0.3, 0.2, 0.1, 0.0]),
                StageConfig {
                    from_episodes: 50_000,
                    uniform: true,
                    ..StageConfig::default()
                },
            ],
            adapt: AdaptConfig::default(),
        }
    }
}

fn fraction(key: &str, v: f64) -> Result<(), String> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(format!("{key} = {v}: must be a non-negative number"))
    }
}

fn positive(key: &str, v: f64) -> Result<(), String> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(format!("{key} = {v}: must be a positive number"))
    }
}

/// Checks the three sections; errors name the key.
pub fn check(
    scan: &ScanConfig,
    sampler: &SamplerConfig,
    preload: &crate::env::PreloadConfig,
) -> Result<(), String> {
    let s = scan;
    if s.volume_lookback_days == 0 {
        return Err("scan.volume_lookback_days = 0: must be at least 1".into());
    }
    if s.volume_min_history == 0 || s.volume_min_history > s.volume_lookback_days {
        return Err(format!(
            "scan.volume_min_history = {}: must be in [1, scan.volume_lookback_days = {}]",
            s.volume_min_history, s.volume_lookback_days
        ));
    }
    for (k, v) in [
        ("scan.momentum_range", s.momentum_range),
        ("scan.momentum_rel_volume", s.momentum_rel_volume),
        ("scan.risk_drawdown", s.risk_drawdown),
        ("scan.secondary_range", s.secondary_range),
        ("scan.secondary_rel_volume", s.secondary_rel_volume),
        ("scan.full_range", s.full_range),
        ("scan.full_rel_volume", s.full_rel_volume),
        ("scan.min_dollar_volume", s.min_dollar_volume),
        ("scan.squeeze_move", s.squeeze_move),
        ("scan.squeeze_volume_mult", s.squeeze_volume_mult),
        ("scan.breakout_volume", s.breakout_volume),
        ("scan.flush_move", s.flush_move),
        ("scan.bounce_drop", s.bounce_drop),
        ("scan.consolidation_range", s.consolidation_range),
        ("scan.consolidation_after", s.consolidation_after),
        ("scan.phase_min_range", s.phase_min_range),
    ] {
        positive(k, v)?;
    }
    for (k, v) in [
        ("scan.dead_range", s.dead_range),
        ("scan.dead_rel_volume", s.dead_rel_volume),
        ("scan.weight_range", s.weight_range),
        ("scan.weight_volume", s.weight_volume),
        ("scan.weight_trend", s.weight_trend),
        ("scan.weight_liquidity", s.weight_liquidity),
    ] {
        fraction(k, v)?;
    }
    if s.weight_range + s.weight_volume + s.weight_trend + s.weight_liquidity <= 0.0 {
        return Err("scan.weight_range: the four quality weights sum to 0; give at least one a positive weight".into());
    }
    if !(0.0..=1.0).contains(&s.prime_quality) {
        return Err(format!(
            "scan.prime_quality = {}: must be in [0, 1]",
            s.prime_quality
        ));
    }
    if !(s.bounce_retrace > 0.0 && s.bounce_retrace <= 1.0) {
        return Err(format!(
            "scan.bounce_retrace = {}: must be in (0, 1]",
            s.bounce_retrace
        ));
    }
    if s.full_range <= s.dead_range {
        return Err(format!(
            "scan.full_range = {}: must be above scan.dead_range = {}",
            s.full_range, s.dead_range
        ));
    }
    if s.full_rel_volume <= 1.0 {
        return Err(format!(
            "scan.full_rel_volume = {}: must be above 1",
            s.full_rel_volume
        ));
    }
    for (k, v) in [
        ("scan.squeeze_window_secs", s.squeeze_window_secs),
        ("scan.squeeze_volume_secs", s.squeeze_volume_secs),
        ("scan.baseline_secs", s.baseline_secs),
        ("scan.velocity_secs", s.velocity_secs),
        ("scan.consolidation_secs", s.consolidation_secs),
    ] {
        if v == 0 || v > 14_400 {
            return Err(format!("{k} = {v}: must be in [1, 14400] seconds"));
        }
    }
    parse_hms(&s.power_hour).map_err(|e| format!("scan.power_hour: {e}"))?;

    let p = sampler;
    if p.choices == 0 || p.choices > 64 {
        return Err(format!(
            "sampler.choices = {}: must be in [1, 64]",
            p.choices
        ));
    }
    if p.lookahead == 0 {
        return Err("sampler.lookahead = 0: must be at least 1".into());
    }
    if let (Some(f), Some(t)) = (p.from, p.to)
        && f > t
    {
        return Err(format!("sampler.from = {f}: after sampler.to = {t}"));
    }
    if p.stages.is_empty() {
        return Err(
            "sampler.stages is empty: give at least one [[sampler.stages]] with from_episodes = 0"
                .into(),
        );
    }
    if p.stages[0].from_episodes != 0 {
        return Err(format!(
            "sampler.stages: the first stage starts at from_episodes = {}; it must start at 0",
            p.stages[0].from_episodes
        ));
    }
    for (i, st) in p.stages.iter().enumerate() {
        if i > 0 && st.from_episodes <= p.stages[i - 1].from_episodes {
            return Err(format!(
                "sampler.stages: stage {} starts at from_episodes = {}, not after the previous stage ({}); list stages in increasing order",
                i + 1,
                st.from_episodes,
                p.stages[i - 1].from_episodes
            ));
        }
        for (c, v) in Category::ALL.iter().zip(st.shares()) {
            fraction(&format!("sampler.stages[{}].{}", i + 1, c.name()), v)?;
        }
        if st.uniform && st.shares().iter().any(|&x| x > 0.0) {
            return Err(format!(
                "sampler.stages: stage {} (from_episodes = {}) is uniform and also gives shares; use one or the other",
                i + 1,
                st.from_episodes
            ));
        }
        if !st.uniform && st.shares().iter().sum::<f64>() <= 0.0 {
            return Err(format!(
                "sampler.stages: stage {} (from_episodes = {}) has no positive share; give a category a share or set uniform = true",
                i + 1,
                st.from_episodes
            ));
        }
    }
    let a = &p.adapt;
    fraction("sampler.adapt.strength", a.strength)?;
    positive("sampler.adapt.scale", a.scale)?;
    if !(a.alpha > 0.0 && a.alpha <= 1.0) {
        return Err(format!(
            "sampler.adapt.alpha = {}: must be in (0, 1]",
            a.alpha
        ));
    }

    let l = preload;
    if l.workers == 0 || l.workers > 64 {
        return Err(format!(
            "preload.workers = {}: must be in [1, 64]",
            l.workers
        ));
    }
    if l.min_depth == 0 || l.min_depth > l.max_depth {
        return Err(format!(
            "preload.min_depth = {}: must be in [1, preload.max_depth = {}]",
            l.min_depth, l.max_depth
        ));
    }
    if l.slots < l.max_depth {
        return Err(format!(
            "preload.slots = {}: must be at least preload.max_depth = {}",
            l.slots, l.max_depth
        ));
    }
    if l.resident_days == 0 {
        return Err("preload.resident_days = 0: must be at least 1".into());
    }
    if l.window_episodes == 0 {
        return Err("preload.window_episodes = 0: must be at least 1".into());
    }
    Ok(())
}
