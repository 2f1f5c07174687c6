//! Seeded synthetic US-equity sessions with ground truth.
//!
//! This is the product's embedded default data source (every command works on a fresh
//! machine without vendor data) and the workload generator of the benchmarks, so it must
//! be both realistic enough to train and test on and fast: a 1-second symbol-day takes a
//! few milliseconds on one core and allocates per day, never per bar.
//!
//! What it models, per symbol and trading day, from 04:00 to 20:00 New York time:
//! - a daily price path: each symbol has an anchor price (log-uniform in the configured
//!   range) it mean-reverts to; day d+1 opens at day d's close times an overnight gap;
//! - *normal* days: a Brownian bridge from the open to the planned close;
//! - *momentum* days (a share of all days, up or down): a planned 10–50 % range built
//!   from a few *squeezes* (fast runs on volume spikes, one often in the pre-market) with
//!   pullbacks between them and a fade into the regular close, plus LULD-style *halts*
//!   of a few minutes after a regular-hours squeeze that reopen with a gap;
//! - intraday volatility clustering (a GARCH(1,1) recursion on one-minute returns),
//!   Student-t shocks, a U-shaped intraday activity curve over the regular session and
//!   thin pre-/after-hours trading;
//! - sparse bars: a bar slot (one second or one minute) has a bar only if at least one
//!   trade happened in it (a Poisson process whose intensity follows the activity curve);
//!   halted slots have vendor-style halt bars (volume 0, OHLC = the halt price);
//! - prices rounded to the cent with low <= open, close <= high, all > 0;
//! - optionally (`edge_drift_bps > 0`, off by default), a *planted edge*: on normal days a
//!   hidden up / flat / down drift regime (a Markov chain over the regular-session
//!   minutes, see [`Regime`]) that trailing returns reveal with noise, so that a causal
//!   rule or a learned agent can profit from it after costs while buy-and-hold cannot. Its
//!   path is in the ground truth. It draws from its own random stream, so turning it off
//!   gives exactly the data of a generator without it.
//!
//! Structure: [`SynthParams`] is the `[synth]` config; [`SynthSpec`] is the params plus
//! the symbol names and trading days (written as `synth.json`, enough to regenerate);
//! [`Universe`] precomputes, per symbol and sequentially from the seed, the cheap daily
//! plan (prices and day types) so that every (symbol, day) can then be generated
//! independently and in parallel by [`Universe::generate`], deterministically from
//! (seed, symbol, day). Each generated day comes with its [`DayTruth`] (what was planned
//! and what was realized), which `truth.json` collects for scanners and tests.
//!
//! The generator knows no holidays: callers pass the trading days
//! (`Calendar::trading_days`); [`SynthSpec::with_weekdays`] uses Monday–Friday where no
//! calendar is at hand.

use crate::bars::{BarSize, Halt, PRICE_SCALE, Price, RawDay};
use crate::clock::{NS_PER_SEC, utc_ns};
use crate::error::{Error, IoContext, Result};
use chrono::{Datelike, NaiveDate, Weekday};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp1, StandardNormal, StudentT};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::fmt::Display;
use std::path::Path;

/// Version of the generating algorithm. A spec written by another version would
/// regenerate different bars than its `truth.json` describes, so [`read_spec`] refuses it.
pub const GENERATOR_VERSION: u32 = 1;

/// Pre-market start, seconds since New York midnight (04:00).
pub const PRE_MARKET_SEC: u32 = 14_400;
/// Regular session open (09:30).
pub const REGULAR_OPEN_SEC: u32 = 34_200;
/// Regular session close (16:00).
pub const REGULAR_CLOSE_SEC: u32 = 57_600;
/// After-hours end (20:00).
pub const AFTER_HOURS_END_SEC: u32 = 72_000;

/// File names inside a synth output folder.
pub const SPEC_FILE: &str = "synth.json";
pub const TRUTH_FILE: &str = "truth.json";

/// Daily pull of a normal day's close back toward the symbol's anchor price (fraction of
/// the log distance), so that prices stay in the configured range over long runs.
const MEAN_REVERSION: f64 = 0.05;
/// Momentum days hold this fraction of their move at the close (uniform), so the close
/// lies strictly inside the planned range and the range can be met exactly.
const CLOSE_HOLD: (f64, f64) = (0.2, 0.85);
/// Volume multiplier of the reopening print after a halt (auction volume).
const REOPEN_VOLUME_MULT: f64 = 5.0;
/// Cap on a minute's squared standardized return fed to the GARCH recursion, so one
/// Student-t outlier cannot blow volatility up for the rest of the day.
const GARCH_SHOCK_CAP: f64 = 25.0;

/// `[synth]` config section: the seeded synthetic data source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SynthParams {
    /// Random seed; the same seed and parameters give bit-identical data. Default 42.
    pub seed: u64,
    /// Number of symbols, named SYN000, SYN001, ... Default 10.
    pub symbols: usize,
    /// Number of trading days. Default 20.
    pub days: usize,
    /// First trading day (YYYY-MM-DD); the days are the first `days` trading days from
    /// here. Default 2024-01-02.
    #[serde(with = "date_format")]
    pub start: NaiveDate,
    /// Bar size, "1s" (sparse: seconds without trades have no bar) or "1m". Default "1m".
    pub bar: BarSize,
    /// Lowest symbol anchor price in dollars (anchors are log-uniform in the range).
    /// Default 2.0.
    pub price_min: f64,
    /// Highest symbol anchor price in dollars. Default 100.0.
    pub price_max: f64,
    /// Standard deviation of a normal day's open-to-close log return, also the scale of
    /// its intraday noise. Default 0.03.
    pub daily_vol: f64,
    /// Standard deviation of the overnight log gap (close to next open) when no gap is
    /// planned. Default 0.01.
    pub gap_vol: f64,
    /// GARCH(1,1) reaction of one-minute variance to the last minute's squared shock.
    /// Default 0.10.
    pub garch_alpha: f64,
    /// GARCH(1,1) persistence of one-minute variance; alpha + beta < 1. Default 0.85.
    pub garch_beta: f64,
    /// Degrees of freedom of the Student-t shocks (fat tails; > 2). Default 4.0.
    pub tail_dof: f64,
    /// Fraction of symbol-days that are momentum days. Default 0.2.
    pub momentum_share: f64,
    /// Fraction of momentum days that run up (the rest run down). Default 0.7.
    pub momentum_up_share: f64,
    /// Smallest planned (high - low) / open of a momentum day. Default 0.10.
    pub momentum_range_min: f64,
    /// Largest planned (high - low) / open of a momentum day. Default 0.50.
    pub momentum_range_max: f64,
    /// Intraday noise of momentum days relative to `daily_vol`. Default 2.5.
    pub momentum_vol_mult: f64,
    /// Volume and trading activity of momentum days relative to normal days. Default 4.0.
    pub momentum_volume_mult: f64,
    /// Probability that a momentum day opens with a planned overnight gap in its
    /// direction. Default 0.5.
    pub momentum_gap_prob: f64,
    /// Largest planned gap, as |open / previous close - 1| (drawn in [0.02, this]).
    /// Default 0.20.
    pub momentum_gap_max: f64,
    /// Most squeezes per momentum day (each day has 1..=this). Default 3.
    pub squeezes_max: u32,
    /// Shortest squeeze in seconds (rounded to whole minutes). Default 120.
    pub squeeze_secs_min: u32,
    /// Longest squeeze in seconds (rounded to whole minutes). Default 900.
    pub squeeze_secs_max: u32,
    /// Variance multiplier of the noise during a squeeze. Default 4.0.
    pub squeeze_vol_mult: f64,
    /// Volume and trade-rate multiplier during a squeeze. Default 6.0.
    pub squeeze_volume_mult: f64,
    /// Probability that a momentum day's first regular-hours squeeze ends in a halt (and,
    /// after a halt, that the next one does too). Default 0.3.
    pub halt_prob: f64,
    /// Halt length in seconds, a whole number of minutes (LULD pauses are 5 minutes).
    /// Default 300.
    pub halt_secs: u32,
    /// Scale of the reopening gap after a halt (log return; |normal| times this, in the
    /// day's direction 70 % of the time). Default 0.03.
    pub halt_gap: f64,
    /// Pre-market and after-hours activity (trade rate, volume and variance per second)
    /// relative to a regular-session midday second. Default 0.1.
    pub extended_activity: f64,
    /// Probability that a regular-session midday second of a typical symbol has at least
    /// one trade (other times scale with the activity curve). Default 0.5.
    pub trade_prob: f64,
    /// Activity at the open relative to midday (U-shape left arm). Default 3.0.
    pub u_open: f64,
    /// Activity at the close relative to midday (U-shape right arm). Default 2.0.
    pub u_close: f64,
    /// Minutes over which the open and close activity decays (e-folding). Default 20.0.
    pub u_minutes: f64,
    /// Shares traded on a normal day by a typical symbol. Default 1000000.
    pub daily_volume: u64,
    /// Standard deviation of the log of a symbol's liquidity (volume and trade-rate
    /// multiplier, mean 1). Default 0.5.
    pub liquidity_dispersion: f64,
    /// Planted edge: drift of the hidden up / down regime, basis points of log price per
    /// minute of the regular session (the flat regime has none); 0 turns the planted
    /// edge off (no draws, the data are those of a generator without it). See
    /// [`Regime`]. Default 0.0.
    pub edge_drift_bps: f64,
    /// Planted edge: mean length of an up or down regime, minutes (geometric). Default 30.0.
    pub edge_trend_minutes: f64,
    /// Planted edge: mean length of the flat regime between two trends, minutes
    /// (geometric). Default 30.0.
    pub edge_flat_minutes: f64,
}

impl Default for SynthParams {
    fn default() -> SynthParams {
        SynthParams {
            seed: 42,
            symbols: 10,
            days: 20,
            start: NaiveDate::from_ymd_opt(2024, 1, 2).unwrap_or_default(),
            bar: BarSize::M1,
            price_min: 2.0,
            price_max: 100.0,
            daily_vol: 0.03,
            gap_vol: 0.01,
            garch_alpha: 0.10,
            garch_beta: 0.85,
            tail_dof: 4.0,
            momentum_share: 0.2,
            momentum_up_share: 0.7,
            momentum_range_min: 0.10,
            momentum_range_max: 0.50,
            momentum_vol_mult: 2.5,
            momentum_volume_mult: 4.0,
            momentum_gap_prob: 0.5,
            momentum_gap_max: 0.20,
            squeezes_max: 3,
            squeeze_secs_min: 120,
            squeeze_secs_max: 900,
            squeeze_vol_mult: 4.0,
            squeeze_volume_mult: 6.0,
            halt_prob: 0.3,
            halt_secs: 300,
            halt_gap: 0.03,
            extended_activity: 0.1,
            trade_prob: 0.5,
            u_open: 3.0,
            u_close: 2.0,
            u_minutes: 20.0,
            daily_volume: 1_000_000,
            liquidity_dispersion: 0.5,
            edge_drift_bps: 0.0,
            edge_trend_minutes: 30.0,
            edge_flat_minutes: 30.0,
        }
    }
}

/// `Err("synth.<key> = <value>: <rule>")` unless `ok`.
fn check(ok: bool, key: &str, value: impl Display, rule: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("synth.{key} = {value}: {rule}"))
    }
}

/// Whether `x` lies in `[lo, hi]` (false for NaN).
fn within(x: f64, lo: f64, hi: f64) -> bool {
    x >= lo && x <= hi
}

impl SynthParams {
    /// Checks every value; the error names the key, its value and the allowed range.
    pub fn validate(&self) -> Result<(), String> {
        let p = self;
        check(
            (1..=1_000_000).contains(&p.symbols),
            "symbols",
            p.symbols,
            "must be in [1, 1000000]",
        )?;
        check(
            (1..=100_000).contains(&p.days),
            "days",
            p.days,
            "must be in [1, 100000]",
        )?;
        check(
            matches!(p.bar, BarSize::S1 | BarSize::M1),
            "bar",
            format!("\"{}\"", p.bar),
            "must be \"1s\" or \"1m\"",
        )?;
        check(
            within(p.price_min, 1.0, 100_000.0),
            "price_min",
            p.price_min,
            "must be in [1, 100000] dollars",
        )?;
        check(
            within(p.price_max, p.price_min, 100_000.0),
            "price_max",
            p.price_max,
            &format!(
                "must be in [synth.price_min = {}, 100000] dollars",
                p.price_min
            ),
        )?;
        check(
            within(p.daily_vol, 1e-4, 0.5),
            "daily_vol",
            p.daily_vol,
            "must be in [0.0001, 0.5]",
        )?;
        check(
            within(p.gap_vol, 0.0, 0.2),
            "gap_vol",
            p.gap_vol,
            "must be in [0, 0.2]",
        )?;
        check(
            within(p.garch_alpha, 0.0, 1.0),
            "garch_alpha",
            p.garch_alpha,
            "must be in [0, 1)",
        )?;
        check(
            within(p.garch_beta, 0.0, 1.0),
            "garch_beta",
            p.garch_beta,
            "must be in [0, 1)",
        )?;
        check(
            p.garch_alpha + p.garch_beta < 1.0,
            "garch_alpha + synth.garch_beta",
            p.garch_alpha + p.garch_beta,
            "must be below 1 (stationary volatility)",
        )?;
        check(
            within(p.tail_dof, 2.05, 1e6),
            "tail_dof",
            p.tail_dof,
            "must be above 2 (finite variance), e.g. 4",
        )?;
        check(
            within(p.momentum_share, 0.0, 1.0),
            "momentum_share",
            p.momentum_share,
            "must be in [0, 1]",
        )?;
        check(
            within(p.momentum_up_share, 0.0, 1.0),
            "momentum_up_share",
            p.momentum_up_share,
            "must be in [0, 1]",
        )?;
        check(
            within(p.momentum_range_min, 0.05, 0.85),
            "momentum_range_min",
            p.momentum_range_min,
            "must be in [0.05, 0.85]",
        )?;
        check(
            within(p.momentum_range_max, p.momentum_range_min + 0.05, 0.9),
            "momentum_range_max",
            p.momentum_range_max,
            &format!(
                "must be in [synth.momentum_range_min + 0.05 = {}, 0.9]",
                p.momentum_range_min + 0.05
            ),
        )?;
        check(
            within(p.momentum_vol_mult, 0.1, 20.0),
            "momentum_vol_mult",
            p.momentum_vol_mult,
            "must be in [0.1, 20]",
        )?;
        check(
            within(p.momentum_volume_mult, 0.1, 100.0),
            "momentum_volume_mult",
            p.momentum_volume_mult,
            "must be in [0.1, 100]",
        )?;
        check(
            within(p.momentum_gap_prob, 0.0, 1.0),
            "momentum_gap_prob",
            p.momentum_gap_prob,
            "must be in [0, 1]",
        )?;
        check(
            within(p.momentum_gap_max, 0.02, 0.3),
            "momentum_gap_max",
            p.momentum_gap_max,
            "must be in [0.02, 0.3]",
        )?;
        check(
            (1..=6).contains(&p.squeezes_max),
            "squeezes_max",
            p.squeezes_max,
            "must be in [1, 6]",
        )?;
        check(
            (60..=3600).contains(&p.squeeze_secs_min),
            "squeeze_secs_min",
            p.squeeze_secs_min,
            "must be in [60, 3600] seconds",
        )?;
        check(
            (p.squeeze_secs_min..=3600).contains(&p.squeeze_secs_max),
            "squeeze_secs_max",
            p.squeeze_secs_max,
            &format!(
                "must be in [synth.squeeze_secs_min = {}, 3600] seconds",
                p.squeeze_secs_min
            ),
        )?;
        check(
            p.squeeze_secs_min.div_ceil(60) <= p.squeeze_secs_max / 60,
            "squeeze_secs_max",
            p.squeeze_secs_max,
            "must allow a whole number of minutes at or above synth.squeeze_secs_min",
        )?;
        check(
            within(p.squeeze_vol_mult, 1.0, 100.0),
            "squeeze_vol_mult",
            p.squeeze_vol_mult,
            "must be in [1, 100]",
        )?;
        check(
            within(p.squeeze_volume_mult, 1.0, 100.0),
            "squeeze_volume_mult",
            p.squeeze_volume_mult,
            "must be in [1, 100]",
        )?;
        check(
            within(p.halt_prob, 0.0, 1.0),
            "halt_prob",
            p.halt_prob,
            "must be in [0, 1]",
        )?;
        check(
            (60..=3600).contains(&p.halt_secs) && p.halt_secs.is_multiple_of(60),
            "halt_secs",
            p.halt_secs,
            "must be a whole number of minutes in [60, 3600] seconds",
        )?;
        check(
            within(p.halt_gap, 0.0, 0.3),
            "halt_gap",
            p.halt_gap,
            "must be in [0, 0.3]",
        )?;
        check(
            within(p.extended_activity, 1e-4, 1.0),
            "extended_activity",
            p.extended_activity,
            "must be in [0.0001, 1]",
        )?;
        check(
            p.trade_prob > 0.0 && p.trade_prob <= 1.0,
            "trade_prob",
            p.trade_prob,
            "must be in (0, 1]",
        )?;
        check(
            within(p.u_open, 1.0, 20.0),
            "u_open",
            p.u_open,
            "must be in [1, 20]",
        )?;
        check(
            within(p.u_close, 1.0, 20.0),
            "u_close",
            p.u_close,
            "must be in [1, 20]",
        )?;
        check(
            within(p.u_minutes, 1.0, 390.0),
            "u_minutes",
            p.u_minutes,
            "must be in [1, 390]",
        )?;
        check(
            (1..=1_000_000_000_000).contains(&p.daily_volume),
            "daily_volume",
            p.daily_volume,
            "must be in [1, 1e12] shares",
        )?;
        check(
            within(p.liquidity_dispersion, 0.0, 2.0),
            "liquidity_dispersion",
            p.liquidity_dispersion,
            "must be in [0, 2]",
        )?;
        check(
            within(p.edge_drift_bps, 0.0, 100.0),
            "edge_drift_bps",
            p.edge_drift_bps,
            "must be in [0, 100] basis points per minute (0 = no planted edge)",
        )?;
        check(
            within(p.edge_trend_minutes, 1.0, 390.0),
            "edge_trend_minutes",
            p.edge_trend_minutes,
            "must be in [1, 390] minutes",
        )?;
        check(
            within(p.edge_flat_minutes, 1.0, 390.0),
            "edge_flat_minutes",
            p.edge_flat_minutes,
            "must be in [1, 390] minutes",
        )?;
        Ok(())
    }

    /// Whether the planted-edge regimes are generated (`edge_drift_bps > 0`).
    pub fn edge_enabled(&self) -> bool {
        self.edge_drift_bps > 0.0
    }

    /// Symbol names: `SYN000`, `SYN001`, ... (more digits past 1000 symbols).
    pub fn symbol_names(&self) -> Vec<String> {
        let width = self.symbols.saturating_sub(1).to_string().len().max(3);
        (0..self.symbols)
            .map(|i| format!("SYN{i:0width$}"))
            .collect()
    }
}

/// `start` reads as a string (`"2024-01-02"`) or a bare TOML date (`2024-01-02`) and is
/// written as a string.
mod date_format {
    use chrono::NaiveDate;
    use serde::de::{self, MapAccess, Visitor};
    use serde::{Deserialize, Deserializer, Serializer};
    use std::fmt;

    pub fn serialize<S: Serializer>(date: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&date.format("%Y-%m-%d"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
        d.deserialize_any(DateVisitor)
    }

    struct DateVisitor;

    impl<'de> Visitor<'de> for DateVisitor {
        type Value = NaiveDate;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a date like 2024-01-02")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<NaiveDate, E> {
            crate::bars::parse_date(s).map_err(E::custom)
        }
        // TOML hands its native dates over as a one-entry map; toml's own type decodes it.
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<NaiveDate, A::Error> {
            let dt =
                toml::value::Datetime::deserialize(de::value::MapAccessDeserializer::new(map))?;
            match (dt.date, dt.time, dt.offset) {
                (Some(d), None, None) => {
                    NaiveDate::from_ymd_opt(d.year.into(), d.month.into(), d.day.into())
                        .ok_or_else(|| de::Error::custom(format!("invalid date '{dt}'")))
                }
                _ => Err(de::Error::custom(format!(
                    "'{dt}' is not a plain date: use YYYY-MM-DD"
                ))),
            }
        }
    }
}

/// The first `n` weekdays (Monday–Friday) on or after `start`; holidays are not known here.
fn weekdays(start: NaiveDate, n: usize) -> Vec<NaiveDate> {
    start
        .iter_days()
        .filter(|d| !matches!(d.weekday(), Weekday::Sat | Weekday::Sun))
        .take(n)
        .collect()
}

/// Everything needed to regenerate a synthetic universe: the params, the derived symbol
/// names and the trading days. Written as `synth.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthSpec {
    /// [`GENERATOR_VERSION`] of the generator that wrote it.
    pub generator: u32,
    pub params: SynthParams,
    /// `params.symbol_names()`, stored for readers of the file.
    pub symbols: Vec<String>,
    /// The `params.days` trading days, ascending.
    pub trading_days: Vec<NaiveDate>,
}

impl SynthSpec {
    /// The spec over the first `params.days` of `calendar_days` on or after `params.start`.
    /// Pass `Calendar::trading_days` (exchange holidays excluded) over a range that covers
    /// them.
    pub fn new(params: SynthParams, calendar_days: Vec<NaiveDate>) -> Result<SynthSpec> {
        params.validate().map_err(Error::Config)?;
        let mut days: Vec<NaiveDate> = calendar_days
            .into_iter()
            .filter(|d| *d >= params.start)
            .collect();
        days.sort_unstable();
        days.dedup();
        if days.len() < params.days {
            return Err(Error::Config(format!(
                "synth.days = {}: only {} trading days given on or after synth.start = {}; \
                 lower synth.days or extend the calendar",
                params.days,
                days.len(),
                params.start
            )));
        }
        days.truncate(params.days);
        let spec = SynthSpec {
            generator: GENERATOR_VERSION,
            symbols: params.symbol_names(),
            params,
            trading_days: days,
        };
        spec.check().map_err(Error::Config)?;
        Ok(spec)
    }

    /// The spec over the exchange's full trading days from `params.start`: holidays and the
    /// few early-close days (13:00 closes) are skipped, because every synthetic session runs
    /// the full 04:00–20:00 clock with the regular close at 16:00.
    pub fn from_params(
        params: &SynthParams,
        calendar: &crate::calendar::Calendar,
    ) -> Result<SynthSpec> {
        params.validate().map_err(Error::Config)?;
        // Early closes are at most three a year: twice the days always suffices.
        let last = calendar.trading_days_forward(params.start, params.days * 2 + 3);
        let full_days = calendar
            .trading_days(params.start, last)
            .into_iter()
            .filter(|d| calendar.session(*d).is_some_and(|s| !s.early_close))
            .collect();
        SynthSpec::new(params.clone(), full_days)
    }

    /// Bar size of the universe.
    pub fn bar(&self) -> crate::bars::BarSize {
        self.params.bar
    }

    /// The spec over Monday–Friday from `params.start`, ignoring exchange holidays: for
    /// tests, benchmarks and tools without a calendar.
    pub fn with_weekdays(params: SynthParams) -> Result<SynthSpec> {
        let days = weekdays(params.start, params.days);
        SynthSpec::new(params, days)
    }

    /// Checks the params and that the names and days agree with them (a hand-edited or
    /// foreign `synth.json`).
    pub fn check(&self) -> Result<(), String> {
        if self.generator != GENERATOR_VERSION {
            return Err(format!(
                "written by synth generator version {}, this build is version {}: \
                 regenerate it with `sim-train synth`",
                self.generator, GENERATOR_VERSION
            ));
        }
        self.params.validate()?;
        if self.symbols != self.params.symbol_names() {
            return Err(format!(
                "symbols do not match synth.symbols = {} (expected SYN000.. in order)",
                self.params.symbols
            ));
        }
        if self.trading_days.len() != self.params.days {
            return Err(format!(
                "{} trading days listed but synth.days = {}",
                self.trading_days.len(),
                self.params.days
            ));
        }
        if let Some(w) = self.trading_days.windows(2).find(|w| w[0] >= w[1]) {
            return Err(format!(
                "trading days not strictly ascending at {} then {}",
                w[0], w[1]
            ));
        }
        if let Some(d) = self
            .trading_days
            .iter()
            .find(|d| matches!(d.weekday(), Weekday::Sat | Weekday::Sun))
        {
            return Err(format!("trading day {d} is a {:?}", d.weekday()));
        }
        if let Some(first) = self.trading_days.first()
            && *first < self.params.start
        {
            return Err(format!(
                "trading day {first} is before synth.start = {}",
                self.params.start
            ));
        }
        Ok(())
    }
}

/// Ground truth of one generated symbol-day: what was planned and what the bars realize.
/// Prices are in dollars (cents exactly), ratios rounded to 12 decimals; times are
/// seconds since New York midnight.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DayTruth {
    pub symbol: String,
    pub date: NaiveDate,
    /// A momentum day (planned 10–50 % range with squeezes), or a normal one.
    pub momentum: bool,
    /// +1 momentum up, -1 momentum down, 0 normal day.
    pub direction: i8,
    /// The previous day's close (day 0: the virtual close before the first day).
    pub prev_close: f64,
    /// First bar's open (04:00).
    pub open: f64,
    /// Highest high and lowest low of the day's bars.
    pub high: f64,
    pub low: f64,
    /// Last bar's close (the bar ending at 20:00); the next day opens from it.
    pub close: f64,
    /// open / prev_close - 1.
    pub gap: f64,
    /// Whether the gap was planned (a momentum day's gap-and-go); otherwise it is small
    /// noise of scale `gap_vol`.
    pub gap_planned: bool,
    /// The planned (high - low) / open of a momentum day.
    pub planned_range: Option<f64>,
    /// Realized (high - low) / open.
    pub range: f64,
    /// Squeeze windows `[start, end)` in seconds since midnight.
    pub squeezes: Vec<[u32; 2]>,
    /// Halts `[start, end)` in seconds since midnight (also in `RawDay::halts`).
    pub halts: Vec<[u32; 2]>,
    /// Number of bars (halt bars included) and total volume.
    pub bars: u32,
    pub volume: u64,
    /// The planted-edge regime path over the regular session (normal days with
    /// `synth.edge_drift_bps > 0`; empty otherwise, and then absent from `truth.json`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regimes: Vec<Regime>,
}

/// One run of the planted-edge regime: the minutes `[start, end)` (seconds since New York
/// midnight, inside the regular session 09:30–16:00) during which the hidden drift was
/// `state · synth.edge_drift_bps` basis points of log price per minute.
///
/// The regime is a three-state Markov chain over the 390 regular-session minutes of a
/// normal day: up (+1), flat (0), down (−1). It starts from its stationary law (flat with
/// probability `F / (F + T)`, up or down with `T / (2 (F + T))` each, for mean lengths
/// `T = synth.edge_trend_minutes` and `F = synth.edge_flat_minutes`); each minute an up or
/// down regime ends with probability `1 / T` (into flat) and a flat one with probability
/// `1 / F` (into up or down, even odds), so run lengths are geometric with those means.
/// The drift is added to the day's price path on top of its noise and planned close
/// (which it moves by the day's total drift), so trailing returns (`ret_5`, `ret_15`)
/// reveal the current regime with noise, and the regime persists after it is seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Regime {
    pub start: u32,
    pub end: u32,
    /// +1 up, 0 flat, −1 down.
    pub state: i8,
}

/// Regular-session minutes a regime path covers (09:30–16:00).
pub const REGIME_MINUTES: usize = ((REGULAR_CLOSE_SEC - REGULAR_OPEN_SEC) / 60) as usize;

/// The planted-edge regime of each regular-session minute of (sym, day), from its own
/// random stream (see [`Regime`]). Empty when the edge is off.
fn regime_states(p: &SynthParams, sym: usize, day: usize) -> Vec<i8> {
    if !p.edge_enabled() {
        return Vec::new();
    }
    let mut rng = rng_for(p.seed, Stream::Regime, sym, day);
    let (trend, flat) = (p.edge_trend_minutes, p.edge_flat_minutes);
    let trend_side = |rng: &mut ChaCha8Rng| if rng.random::<f64>() < 0.5 { 1 } else { -1 };
    let mut state: i8 = if rng.random::<f64>() < flat / (flat + trend) {
        0
    } else {
        trend_side(&mut rng)
    };
    let mut states = Vec::with_capacity(REGIME_MINUTES);
    states.push(state);
    for _ in 1..REGIME_MINUTES {
        let mean = if state == 0 { flat } else { trend };
        if rng.random::<f64>() < 1.0 / mean {
            state = if state == 0 { trend_side(&mut rng) } else { 0 };
        }
        states.push(state);
    }
    states
}

/// Per-minute states as runs.
fn regime_runs(states: &[i8]) -> Vec<Regime> {
    let mut runs: Vec<Regime> = Vec::new();
    for (m, &state) in states.iter().enumerate() {
        let sec = REGULAR_OPEN_SEC + 60 * m as u32;
        match runs.last_mut() {
            Some(r) if r.state == state => r.end = sec + 60,
            _ => runs.push(Regime {
                start: sec,
                end: sec + 60,
                state,
            }),
        }
    }
    runs
}

/// Cumulative planted drift (log price) at the start of each regular-session minute and at
/// the close: `cum[m] = Σ_{j<m} state_j · drift`, `REGIME_MINUTES + 1` values.
fn regime_cumulative(states: &[i8], drift_per_minute: f64) -> Vec<f64> {
    let mut cum = Vec::with_capacity(states.len() + 1);
    let mut acc = 0.0;
    cum.push(acc);
    for &st in states {
        acc += st as f64 * drift_per_minute;
        cum.push(acc);
    }
    cum
}

/// The planted drift accumulated by second `sec` of the day: 0 before the open, linear
/// within each minute, the day's total after the close.
fn regime_drift_at(cum: &[f64], sec: u32) -> f64 {
    if sec <= REGULAR_OPEN_SEC {
        return 0.0;
    }
    let into = sec - REGULAR_OPEN_SEC;
    let m = (into / 60) as usize;
    if m + 1 >= cum.len() {
        return cum[cum.len() - 1];
    }
    let frac = (into % 60) as f64 / 60.0;
    cum[m] + (cum[m + 1] - cum[m]) * frac
}

/// The sequential part of a symbol-day: prices and day type (compact, one per symbol-day).
#[derive(Clone, Copy, Debug)]
struct PricePlan {
    prev_close: f64,
    open: f64,
    close: f64,
    /// +1 / -1 momentum, 0 normal.
    direction: i8,
    gap_planned: bool,
    /// Planned range of a momentum day (0 for normal days).
    range: f64,
}

/// One day's plan: prices, type and intraday events, derivable without generating bars.
#[derive(Clone, Debug, PartialEq)]
pub struct DayPlan {
    pub prev_close: f64,
    pub open: f64,
    pub close: f64,
    pub direction: i8,
    pub gap_planned: bool,
    pub planned_range: Option<f64>,
    /// Squeeze windows `[start, end)`, seconds since midnight, ascending.
    pub squeezes: Vec<[u32; 2]>,
    /// Halts `[start, end)`, seconds since midnight, ascending.
    pub halts: Vec<[u32; 2]>,
    /// The planted-edge regime path (see [`DayTruth::regimes`]).
    pub regimes: Vec<Regime>,
}

/// A momentum day's intraday events (empty for normal days).
#[derive(Default)]
struct Events {
    squeezes: Vec<[u32; 2]>,
    halts: Vec<[u32; 2]>,
    /// Log reopening jump of each halt.
    jumps: Vec<f64>,
    /// Trend skeleton: (second, log price relative to the open), piecewise linear.
    knots: Vec<(u32, f64)>,
}

/// Independent random streams, so that e.g. the events of a day do not depend on how
/// many draws its bars took.
#[derive(Clone, Copy)]
enum Stream {
    Symbol = 1,
    Events = 2,
    Bars = 3,
    /// The planted-edge regime path (drawn only when the edge is on, so that the other
    /// streams, and the data of a universe without the edge, never depend on it).
    Regime = 4,
}

fn rng_for(seed: u64, stream: Stream, sym: usize, day: usize) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&(stream as u64).to_le_bytes());
    key[16..24].copy_from_slice(&(sym as u64).to_le_bytes());
    key[24..].copy_from_slice(&(day as u64).to_le_bytes());
    ChaCha8Rng::seed_from_u64(xxhash_rust::xxh3::xxh3_64(&key))
}

/// Dollars rounded to the cent, at least one cent.
fn round_cents(dollars: f64) -> f64 {
    ((dollars * 100.0).round() / 100.0).max(0.01)
}

/// Per-bar working columns of one day, reused across days by each thread.
#[derive(Default)]
struct Scratch {
    slot: Vec<u32>,
    /// Noise log price at the bar's open / close, then the deviation from the bridge line.
    o: Vec<f64>,
    c: Vec<f64>,
    /// Excursion of the high above max(open, close) / of the low below min(open, close),
    /// then the high / low deviation from the bridge line.
    hi: Vec<f64>,
    lo: Vec<f64>,
    /// Cumulative variance at the bar's open / close, then the bridge line there.
    wo: Vec<f64>,
    wc: Vec<f64>,
    volume: Vec<u64>,
}

impl Scratch {
    fn clear(&mut self) {
        self.slot.clear();
        self.o.clear();
        self.c.clear();
        self.hi.clear();
        self.lo.clear();
        self.wo.clear();
        self.wc.clear();
        self.volume.clear();
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// A synthetic universe ready to generate any (symbol, day) independently.
pub struct Universe {
    spec: SynthSpec,
    /// `plans[sym * days + day]`.
    plans: Vec<PricePlan>,
    /// Per-symbol volume and trade-rate multiplier.
    liquidity: Vec<f64>,
    /// Bar slots per day (04:00–20:00).
    n_slots: usize,
    /// Activity weight of each slot (U-shape; extended hours low), and its prefix sums.
    weight: Vec<f64>,
    weight_prefix: Vec<f64>,
    /// UTC ns of New York midnight of each trading day.
    midnight_ns: Vec<i64>,
    student: StudentT<f64>,
    /// Scales a Student-t draw to unit variance.
    student_scale: f64,
}

impl Universe {
    /// The universe over the first `params.days` trading days of `trading_days` on or
    /// after `params.start`; pass `Calendar::trading_days`.
    pub fn new(params: SynthParams, trading_days: Vec<NaiveDate>) -> Result<Universe> {
        Universe::from_spec(SynthSpec::new(params, trading_days)?)
    }

    /// The universe a spec (e.g. from [`read_spec`]) describes.
    pub fn from_spec(spec: SynthSpec) -> Result<Universe> {
        spec.check().map_err(Error::Config)?;
        let p = &spec.params;
        let student = StudentT::new(p.tail_dof)
            .map_err(|e| Error::Config(format!("synth.tail_dof = {}: {e}", p.tail_dof)))?;
        let bar_secs = p.bar.secs();
        let n_slots = ((AFTER_HOURS_END_SEC - PRE_MARKET_SEC) / bar_secs) as usize;
        let weight: Vec<f64> = (0..n_slots)
            .map(|t| {
                slot_activity(p, PRE_MARKET_SEC + t as u32 * bar_secs, bar_secs) * bar_secs as f64
            })
            .collect();
        let mut weight_prefix = Vec::with_capacity(n_slots + 1);
        let mut acc = 0.0;
        weight_prefix.push(0.0);
        for w in &weight {
            acc += w;
            weight_prefix.push(acc);
        }
        let symbols: Vec<(f64, Vec<PricePlan>)> = (0..p.symbols)
            .into_par_iter()
            .map(|s| plan_symbol(p, &student, s))
            .collect();
        let mut plans = Vec::with_capacity(p.symbols * p.days);
        let mut liquidity = Vec::with_capacity(p.symbols);
        for (liq, days) in symbols {
            liquidity.push(liq);
            plans.extend(days);
        }
        let midnight_ns = spec.trading_days.iter().map(|&d| utc_ns(d, 0)).collect();
        Ok(Universe {
            student_scale: ((p.tail_dof - 2.0) / p.tail_dof).sqrt(),
            student,
            spec,
            plans,
            liquidity,
            n_slots,
            weight,
            weight_prefix,
            midnight_ns,
        })
    }

    pub fn spec(&self) -> &SynthSpec {
        &self.spec
    }
    pub fn params(&self) -> &SynthParams {
        &self.spec.params
    }
    pub fn symbols(&self) -> &[String] {
        &self.spec.symbols
    }
    pub fn trading_days(&self) -> &[NaiveDate] {
        &self.spec.trading_days
    }

    fn price_plan(&self, sym: usize, day: usize) -> &PricePlan {
        assert!(
            sym < self.spec.params.symbols && day < self.spec.params.days,
            "synth: (symbol {sym}, day {day}) outside the {}x{} universe",
            self.spec.params.symbols,
            self.spec.params.days
        );
        &self.plans[sym * self.spec.params.days + day]
    }

    /// The plan of (sym, day) without generating its bars.
    ///
    /// # Panics
    /// If `sym` or `day` is out of range (they are indices, not user input).
    pub fn plan(&self, sym: usize, day: usize) -> DayPlan {
        let pp = *self.price_plan(sym, day);
        let ev = self.events(sym, day, &pp);
        DayPlan {
            prev_close: pp.prev_close,
            open: pp.open,
            close: pp.close,
            direction: pp.direction,
            gap_planned: pp.gap_planned,
            planned_range: (pp.direction != 0).then_some(round12(pp.range)),
            squeezes: ev.squeezes,
            halts: ev.halts,
            regimes: regime_runs(&self.regime_states(sym, day, &pp)),
        }
    }

    /// The planted-edge regime of each regular-session minute of a normal day (empty on
    /// momentum days and without the edge).
    fn regime_states(&self, sym: usize, day: usize, pp: &PricePlan) -> Vec<i8> {
        if pp.direction != 0 {
            return Vec::new();
        }
        regime_states(&self.spec.params, sym, day)
    }

    /// A momentum day's squeezes, halts and trend skeleton, from its own random stream.
    fn events(&self, sym: usize, day: usize, pp: &PricePlan) -> Events {
        let p = &self.spec.params;
        let mut ev = Events::default();
        if pp.direction == 0 {
            return ev;
        }
        let mut rng = rng_for(p.seed, Stream::Events, sym, day);
        let n = rng.random_range(1..=p.squeezes_max);
        let (min_minutes, max_minutes) = (p.squeeze_secs_min.div_ceil(60), p.squeeze_secs_max / 60);
        // Each squeeze reserves room for a halt and a pause after it.
        let mut reserved: Vec<[u32; 2]> = Vec::with_capacity(n as usize);
        for k in 0..n {
            for _attempt in 0..20 {
                let dur = 60 * rng.random_range(min_minutes..=max_minutes);
                let (lo, hi) = if k == 0 && rng.random::<f64>() < 0.5 {
                    // Gap-and-go: the first run happens in the pre-market (07:00–09:25).
                    (25_200, (REGULAR_OPEN_SEC - 300).saturating_sub(dur))
                } else if k == 0 {
                    // Opening drive (09:30–10:30).
                    (REGULAR_OPEN_SEC, 37_800)
                } else {
                    (
                        REGULAR_OPEN_SEC,
                        (REGULAR_CLOSE_SEC - 1800).saturating_sub(dur),
                    )
                };
                if hi < lo {
                    continue;
                }
                let a = lo + 60 * rng.random_range(0..=(hi - lo) / 60);
                let b = a + dur;
                let r = [a.saturating_sub(60), b + p.halt_secs + 120];
                if reserved.iter().all(|q| r[1] <= q[0] || r[0] >= q[1]) {
                    reserved.push(r);
                    ev.squeezes.push([a, b]);
                    break;
                }
            }
        }
        ev.squeezes.sort_unstable();
        let n = ev.squeezes.len();
        // Halts: LULD pauses after a regular-hours run that ends at least 5 minutes after
        // the open and leaves the halt 5 minutes before the close.
        let mut halted = vec![false; n];
        let mut halt_next = rng.random::<f64>() < p.halt_prob;
        for (k, &[a, b]) in ev.squeezes.iter().enumerate() {
            let eligible = a >= REGULAR_OPEN_SEC
                && b >= REGULAR_OPEN_SEC + 300
                && b + p.halt_secs + 300 <= REGULAR_CLOSE_SEC;
            if eligible && halt_next {
                halted[k] = true;
                ev.halts.push([b, b + p.halt_secs]);
                let z: f64 = rng.sample::<f64, _>(StandardNormal).abs();
                let sign = if rng.random::<f64>() < 0.7 { 1.0 } else { -1.0 };
                ev.jumps.push(sign * pp.direction as f64 * z * p.halt_gap);
                halt_next = rng.random::<f64>() < p.halt_prob;
            }
        }
        // Trend skeleton: each squeeze adds a share of the peak move, pullbacks between
        // squeezes give back part of the previous run, then the day fades to the closing
        // level by 16:00.
        let peak = if pp.direction > 0 {
            (1.0 + pp.range).ln()
        } else {
            (1.0 - pp.range).ln()
        };
        let shares: Vec<f64> = (0..n).map(|_| rng.random_range(0.5..1.5)).collect();
        let pullbacks: Vec<f64> = (0..n).map(|_| rng.random_range(0.0..0.35)).collect();
        let net: f64 = (0..n)
            .map(|k| shares[k] * if k + 1 < n { 1.0 - pullbacks[k] } else { 1.0 })
            .sum();
        let unit = peak / net;
        let mut level = 0.0;
        ev.knots.push((PRE_MARKET_SEC, 0.0));
        let mut halt_i = 0;
        for k in 0..n {
            let [a, b] = ev.squeezes[k];
            if k > 0 {
                level -= pullbacks[k - 1] * shares[k - 1] * unit;
            }
            ev.knots.push((a, level));
            level += shares[k] * unit;
            ev.knots.push((b, level));
            if halted[k] {
                ev.knots.push((ev.halts[halt_i][1], level));
                halt_i += 1;
            }
        }
        // The fade ends at the regular close (every squeeze and halt ends before it);
        // after-hours trading only adds noise around the closing level.
        let close_log = (pp.close / pp.open).ln();
        ev.knots.push((REGULAR_CLOSE_SEC, close_log));
        ev.knots.push((AFTER_HOURS_END_SEC, close_log));
        ev
    }

    /// Generates the bars and truth of (sym, day), deterministically from (seed, sym,
    /// day): the same call anywhere, alone or in parallel, gives the same result.
    ///
    /// # Panics
    /// If `sym` or `day` is out of range (they are indices, not user input).
    pub fn generate(&self, sym: usize, day: usize) -> (RawDay, DayTruth) {
        SCRATCH.with(|s| self.generate_with(sym, day, &mut s.borrow_mut()))
    }

    fn generate_with(&self, sym: usize, day: usize, s: &mut Scratch) -> (RawDay, DayTruth) {
        let p = &self.spec.params;
        let pp = *self.price_plan(sym, day);
        let ev = self.events(sym, day, &pp);
        let momentum = pp.direction != 0;
        let bar_secs = p.bar.secs();
        let slot_of = |sec: u32| ((sec - PRE_MARKET_SEC) / bar_secs) as usize;
        let n = self.n_slots;
        let mut rng = rng_for(p.seed, Stream::Bars, sym, day);

        // Day totals of the variance and volume weights (squeezes boosted, halts silent),
        // from the precomputed prefix sums.
        let span = |a: usize, b: usize| self.weight_prefix[b] - self.weight_prefix[a];
        let mut var_total = span(0, n);
        let mut vol_total = var_total;
        for &[a, b] in &ev.squeezes {
            let w = span(slot_of(a), slot_of(b));
            var_total += (p.squeeze_vol_mult - 1.0) * w;
            vol_total += (p.squeeze_volume_mult - 1.0) * w;
        }
        for &[a, b] in &ev.halts {
            let w = span(slot_of(a), slot_of(b));
            var_total -= w;
            vol_total -= w;
        }
        let noise_sd = p.daily_vol * if momentum { p.momentum_vol_mult } else { 1.0 };
        let unit_var = noise_sd * noise_sd / var_total;
        let activity = self.liquidity[sym]
            * if momentum {
                p.momentum_volume_mult
            } else {
                1.0
            };
        let day_volume = p.daily_volume as f64 * activity;
        // Trade hazard per unit weight: a weight-1 second at activity 1 has a trade with
        // probability trade_prob (infinite hazard when trade_prob = 1: every slot trades).
        let hazard_unit = -(1.0 - p.trade_prob).ln() * activity;

        // Pass 1: walk the slots; latent noise log price `x` (relative to the open).
        s.clear();
        let (omega, alpha, beta) = (
            1.0 - p.garch_alpha - p.garch_beta,
            p.garch_alpha,
            p.garch_beta,
        );
        let slots_per_minute = (60 / bar_secs) as usize;
        let mut minute_left = slots_per_minute; // slots left in the current minute
        let mut garch_h = 1.0;
        let (mut g_sum, mut g_var) = (0.0f64, 0.0f64);
        let mut x = 0.0f64;
        let mut pending = 0.0f64; // variance accumulated since the last bar
        let mut cum = 0.0f64; // cumulative variance through the current slot
        let mut wait: f64 = rng.sample(Exp1);
        let (mut sq_i, mut halt_i) = (0usize, 0usize);
        let sq_slots: Vec<[usize; 2]> = ev
            .squeezes
            .iter()
            .map(|&[a, b]| [slot_of(a), slot_of(b)])
            .collect();
        let halt_slots: Vec<[usize; 2]> = ev
            .halts
            .iter()
            .map(|&[a, b]| [slot_of(a), slot_of(b)])
            .collect();
        for t in 0..n {
            if minute_left == 0 {
                minute_left = slots_per_minute;
                // GARCH(1,1) on the minute just ended; a silent minute counts as expected.
                let q = if g_var > 0.0 {
                    (g_sum * g_sum / g_var).min(GARCH_SHOCK_CAP)
                } else {
                    1.0
                };
                garch_h = omega + (alpha * q + beta) * garch_h;
                g_sum = 0.0;
                g_var = 0.0;
            }
            minute_left -= 1;
            while halt_i < halt_slots.len() && t >= halt_slots[halt_i][1] {
                halt_i += 1;
            }
            if halt_i < halt_slots.len() && t >= halt_slots[halt_i][0] {
                // Halt bar: no trading, price frozen at the last print.
                s.push(t as u32, x, x, 0.0, 0.0, cum, cum, 0);
                continue;
            }
            while sq_i < sq_slots.len() && t >= sq_slots[sq_i][1] {
                sq_i += 1;
            }
            let in_squeeze = sq_i < sq_slots.len() && t >= sq_slots[sq_i][0];
            let w = self.weight[t];
            let (var_mult, vol_mult) = if in_squeeze {
                (p.squeeze_vol_mult, p.squeeze_volume_mult)
            } else {
                (1.0, 1.0)
            };
            let slot_var = w * var_mult * garch_h;
            let hazard = w * vol_mult * hazard_unit;
            // `halt_i` is the next halt (or the one that just ended at `t`).
            let reopen = (halt_i > 0 && halt_slots[halt_i - 1][1] == t).then(|| halt_i - 1);
            let before_halt = halt_i < halt_slots.len() && halt_slots[halt_i][0] == t + 1;
            // The first and last slots print (the day's open and close), and so do the
            // slot before a halt (the triggering trade) and the reopening.
            let forced = t == 0 || t + 1 == n || reopen.is_some() || before_halt;
            // Poisson trades: an Exp(1) budget is spent by each slot's hazard; a slot that
            // exhausts it has a trade, and the budget is redrawn (memorylessness).
            let trades = forced || wait < hazard;
            if !trades {
                wait -= hazard;
                pending += slot_var;
                cum += slot_var;
                continue;
            }
            wait = rng.sample(Exp1);
            let mut open = x;
            if pending > 0.0 {
                // The price moved while nobody traded: the bar opens away from the last close.
                // (For GARCH, this variance counts toward the current minute.)
                let z = self.t_shock(&mut rng);
                open += (pending * unit_var).sqrt() * z;
                g_sum += z * (pending / garch_h).sqrt();
                g_var += pending / garch_h;
            }
            if let Some(h) = reopen {
                open += ev.jumps[h];
            }
            let wo = cum;
            let z = self.t_shock(&mut rng);
            let sd = (slot_var * unit_var).sqrt();
            let close = open + sd * z;
            g_sum += z * (slot_var / garch_h).sqrt();
            g_var += slot_var / garch_h;
            cum += slot_var;
            // High / low: the exact law of the bar's Brownian path beyond its endpoints.
            let d = (close - open).abs();
            let e1: f64 = rng.sample(Exp1);
            let e2: f64 = rng.sample(Exp1);
            let up = bridge_excursion(d, sd, e1);
            let down = bridge_excursion(d, sd, e2);
            // Volume: the slot's expected share of the day, divided by the chance that the
            // slot trades at all, with lognormal noise and more volume on bigger moves.
            let expected = day_volume * w * vol_mult / vol_total;
            let p_trade = if forced { 1.0 } else { -(-hazard).exp_m1() };
            let noise: f64 = (0.5 * rng.sample::<f64, _>(StandardNormal) - 0.125).exp();
            let mut volume = expected / p_trade * noise * (0.5 + 0.6 * z.abs());
            if reopen.is_some() {
                volume *= REOPEN_VOLUME_MULT;
            }
            // Positive, so adding 0.5 and truncating rounds (and avoids a libm call per bar).
            let volume = ((volume + 0.5) as u64).max(1);
            s.push(t as u32, open, close, up, down, wo, cum, volume);
            pending = 0.0;
            x = close;
        }

        // Pass 2: pin the noise to end at 0 (bridge, spread along cumulative variance) and
        // add the trend: normal days drift to the close along cumulative variance,
        // momentum days follow their squeeze skeleton. Store deviations from the line
        // `close_log * W` so that momentum days can scale them to their planned range.
        let close_log = (pp.close / pp.open).ln();
        // Planted edge (normal days): the line runs from the open to the close less the
        // day's planted drift, and the drift path is added on top of it.
        let regime_states = self.regime_states(sym, day, &pp);
        let regime_cum = regime_cumulative(&regime_states, p.edge_drift_bps * 1e-4);
        let base_log = close_log - regime_cum[regime_cum.len() - 1];
        let x_end = x;
        let total = if cum > 0.0 { cum } else { 1.0 };
        let mut knot = 0usize;
        let mut skeleton = |sec: u32| -> f64 {
            let k = &ev.knots;
            while knot + 2 < k.len() && sec >= k[knot + 1].0 {
                knot += 1;
            }
            let (t0, l0) = k[knot];
            let (t1, l1) = k[knot + 1];
            l0 + (l1 - l0) * (sec.clamp(t0, t1) - t0) as f64 / (t1 - t0) as f64
        };
        for i in 0..s.slot.len() {
            let (w_o, w_c) = (s.wo[i] / total, s.wc[i] / total);
            let (line_o, line_c) = if regime_states.is_empty() {
                (close_log * w_o, close_log * w_c)
            } else {
                let sec = PRE_MARKET_SEC + s.slot[i] * bar_secs;
                (
                    base_log * w_o + regime_drift_at(&regime_cum, sec),
                    base_log * w_c + regime_drift_at(&regime_cum, sec + bar_secs),
                )
            };
            let mut o = s.o[i] - x_end * w_o;
            let mut c = s.c[i] - x_end * w_c;
            if momentum {
                let sec = PRE_MARKET_SEC + s.slot[i] * bar_secs;
                o += skeleton(sec);
                c += skeleton(sec + bar_secs);
            } else {
                o += line_o;
                c += line_c;
            }
            let hi = o.max(c) + s.hi[i];
            let lo = o.min(c) - s.lo[i];
            s.o[i] = o - line_o;
            s.c[i] = c - line_c;
            s.hi[i] = hi - line_c;
            s.lo[i] = lo - line_c;
            s.wo[i] = line_o;
            s.wc[i] = line_c;
        }

        // Momentum days: scale the deviations so that the realized range after rounding
        // to cents is the planned one (the margin absorbs the rounding).
        let mut k_scale = 1.0;
        if momentum {
            let margin = 0.011 / pp.open;
            let target = pp
                .range
                .min(p.momentum_range_max - margin)
                .max(p.momentum_range_min + margin);
            k_scale = solve_scale(s, target);
        }

        // Pass 3: prices in cents, OHLC made consistent after rounding.
        let date = self.spec.trading_days[day];
        let base_ns = self.midnight_ns[day];
        let mut raw = RawDay::new(self.spec.symbols[sym].clone(), date, p.bar, self.origin());
        let m = s.slot.len();
        raw.reserve(m);
        let open_cents = pp.open * 100.0;
        let to_cents = |v: f64| ((open_cents * v.exp() + 0.5) as i64).max(1);
        let (mut day_hi, mut day_lo, mut day_volume_sum) = (i64::MIN, i64::MAX, 0u64);
        for i in 0..m {
            let o = to_cents(s.wo[i] + k_scale * s.o[i]);
            let c = to_cents(s.wc[i] + k_scale * s.c[i]);
            let h = to_cents(s.wc[i] + k_scale * s.hi[i]).max(o).max(c);
            let l = to_cents(s.wc[i] + k_scale * s.lo[i]).min(o).min(c);
            day_hi = day_hi.max(h);
            day_lo = day_lo.min(l);
            day_volume_sum += s.volume[i];
            let sec = (PRE_MARKET_SEC + s.slot[i] * bar_secs) as i64;
            raw.push(
                base_ns + sec * NS_PER_SEC,
                cents(o),
                cents(h),
                cents(l),
                cents(c),
                s.volume[i],
            );
        }
        raw.halts = ev
            .halts
            .iter()
            .map(|&[a, b]| Halt {
                start_ns: base_ns + a as i64 * NS_PER_SEC,
                end_ns: base_ns + b as i64 * NS_PER_SEC,
            })
            .collect();

        let dollars = |c: i64| c as f64 / 100.0;
        let first_open = raw.open.first().map_or(pp.open, |p| p.dollars());
        let last_close = raw.close.last().map_or(pp.close, |p| p.dollars());
        let truth = DayTruth {
            symbol: raw.symbol.clone(),
            date,
            momentum,
            direction: pp.direction,
            prev_close: pp.prev_close,
            open: first_open,
            high: dollars(day_hi),
            low: dollars(day_lo),
            close: last_close,
            gap: round12(first_open / pp.prev_close - 1.0),
            gap_planned: pp.gap_planned,
            planned_range: momentum.then_some(round12(pp.range)),
            range: round12((day_hi - day_lo) as f64 / 100.0 / first_open),
            squeezes: ev.squeezes,
            halts: ev.halts,
            bars: m as u32,
            volume: day_volume_sum,
            regimes: regime_runs(&regime_states),
        };
        (raw, truth)
    }

    /// A unit-variance Student-t draw.
    fn t_shock(&self, rng: &mut ChaCha8Rng) -> f64 {
        self.student.sample(rng) * self.student_scale
    }

    /// Recorded as every RawDay's origin.
    fn origin(&self) -> String {
        format!("synth:seed={}", self.spec.params.seed)
    }
}

/// `x` rounded to 12 decimals: plenty for ratios, and the decimal serde_json writes then
/// reads back as exactly the same `f64`, so `truth.json` round-trips.
fn round12(x: f64) -> f64 {
    (x * 1e12).round() / 1e12
}

fn cents(c: i64) -> Price {
    Price(c * (PRICE_SCALE / 100))
}

impl Scratch {
    #[allow(clippy::too_many_arguments)]
    fn push(&mut self, slot: u32, o: f64, c: f64, hi: f64, lo: f64, wo: f64, wc: f64, volume: u64) {
        self.slot.push(slot);
        self.o.push(o);
        self.c.push(c);
        self.hi.push(hi);
        self.lo.push(lo);
        self.wo.push(wo);
        self.wc.push(wc);
        self.volume.push(volume);
    }
}

/// How far a Brownian bridge with variance `sd^2` whose endpoints differ by `d >= 0` rises
/// above the higher endpoint, drawn by inversion from `e ~ Exp(1)`: the excursion exceeds
/// `y` with probability `exp(-2 y (y + d) / sd^2)` (the reflection principle), so
/// `2 y (y + d) = sd^2 e`.
fn bridge_excursion(d: f64, sd: f64, e: f64) -> f64 {
    0.5 * ((d * d + 2.0 * sd * sd * e).sqrt() - d)
}

/// A bar's open, high or low as a function of the momentum scale `k`: the log price
/// relative to the open is `line + k * dev`.
#[derive(Clone, Copy)]
struct Extreme {
    line: f64,
    dev: f64,
}

impl Extreme {
    fn at(self, k: f64) -> f64 {
        self.line + k * self.dev
    }
}

/// The candidates for the day's top (highs and opens) and bottom (lows and opens); a
/// close never beats the high or low of its own bar, which share its line.
fn extremes(s: &Scratch) -> impl Iterator<Item = (Extreme, Extreme, Extreme)> + '_ {
    (0..s.slot.len()).map(|i| {
        let open = Extreme {
            line: s.wo[i],
            dev: s.o[i],
        };
        let high = Extreme {
            line: s.wc[i],
            dev: s.hi[i],
        };
        let low = Extreme {
            line: s.wc[i],
            dev: s.lo[i],
        };
        (open, high, low)
    })
}

/// (high - low) / open of the day at scale `k` (the first bar opens at log 0, so
/// exp(max) - exp(min) is relative to the open).
fn range_at(tops: &[Extreme], bottoms: &[Extreme], k: f64) -> f64 {
    let top = tops.iter().fold(f64::MIN, |m, e| m.max(e.at(k)));
    let bottom = bottoms.iter().fold(f64::MAX, |m, e| m.min(e.at(k)));
    top.exp() - bottom.exp()
}

/// The scale `k >= 0` at which the day's range equals `target`. The range at `k = 0` is
/// the straight line from the open to the close, inside the planned range by
/// construction, and it grows without bound with `k`, so a root is bracketed; bisection
/// keeps it safe where the range is not monotone. Once bracketed, only the extremes
/// that can still be the day's top or bottom inside the bracket are kept, so the
/// bisection costs a handful of candidates instead of every bar.
fn solve_scale(s: &Scratch, target: f64) -> f64 {
    let full_range = |k: f64| {
        let (mut top, mut bottom) = (f64::MIN, f64::MAX);
        for (o, h, l) in extremes(s) {
            top = top.max(h.at(k).max(o.at(k)));
            bottom = bottom.min(l.at(k).min(o.at(k)));
        }
        top.exp() - bottom.exp()
    };
    if full_range(0.0) >= target {
        return 0.0;
    }
    let (mut lo, mut hi) = (0.0, 1.0);
    while full_range(hi) < target {
        if hi > 1e6 {
            return hi;
        }
        lo = hi;
        hi *= 2.0;
    }
    // A line below another line's minimum over [lo, hi] is never the top there.
    let (mut top_floor, mut bottom_ceiling) = (f64::MIN, f64::MAX);
    for (o, h, l) in extremes(s) {
        for e in [o, h] {
            top_floor = top_floor.max(e.at(lo).min(e.at(hi)));
        }
        for e in [o, l] {
            bottom_ceiling = bottom_ceiling.min(e.at(lo).max(e.at(hi)));
        }
    }
    let (mut tops, mut bottoms) = (Vec::new(), Vec::new());
    for (o, h, l) in extremes(s) {
        for e in [o, h] {
            if e.at(lo).max(e.at(hi)) >= top_floor {
                tops.push(e);
            }
        }
        for e in [o, l] {
            if e.at(lo).min(e.at(hi)) <= bottom_ceiling {
                bottoms.push(e);
            }
        }
    }
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        let r = range_at(&tops, &bottoms, mid);
        if (r - target).abs() < 1e-9 {
            return mid;
        }
        if r < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Activity of the slot starting at `sec` (per second, 1 at a regular-session midday):
/// U-shaped over the regular session, `extended_activity` outside it.
fn slot_activity(p: &SynthParams, sec: u32, bar_secs: u32) -> f64 {
    if !(REGULAR_OPEN_SEC..REGULAR_CLOSE_SEC).contains(&sec) {
        return p.extended_activity;
    }
    let minutes = (sec - REGULAR_OPEN_SEC) as f64 / 60.0 + bar_secs as f64 / 120.0;
    let session = (REGULAR_CLOSE_SEC - REGULAR_OPEN_SEC) as f64 / 60.0;
    1.0 + (p.u_open - 1.0) * (-minutes / p.u_minutes).exp()
        + (p.u_close - 1.0) * (-(session - minutes) / p.u_minutes).exp()
}

/// One symbol's liquidity and daily plans, sequential from its own seed stream (so a
/// symbol's data do not depend on how many symbols or later days the universe has).
fn plan_symbol(p: &SynthParams, student: &StudentT<f64>, sym: usize) -> (f64, Vec<PricePlan>) {
    let mut rng = rng_for(p.seed, Stream::Symbol, sym, 0);
    let anchor = rng.random_range(p.price_min.ln()..=p.price_max.ln());
    let disp = p.liquidity_dispersion;
    let liquidity = (disp * rng.sample::<f64, _>(StandardNormal) - 0.5 * disp * disp).exp();
    // Prices stay inside a band around the anchor range, so they stay positive and sane.
    let (band_lo, band_hi) = (p.price_min / 2.0, p.price_max * 2.0);
    let to_band = |x: f64| round_cents(x.clamp(band_lo, band_hi));
    let t_scale = ((p.tail_dof - 2.0) / p.tail_dof).sqrt();
    let mut prev_close = to_band((anchor + 0.1 * rng.sample::<f64, _>(StandardNormal)).exp());
    let mut plans = Vec::with_capacity(p.days);
    let drift_per_minute = p.edge_drift_bps * 1e-4;
    for day in 0..p.days {
        let momentum = rng.random::<f64>() < p.momentum_share;
        let up = rng.random::<f64>() < p.momentum_up_share;
        let direction: i8 = match (momentum, prev_close) {
            (false, _) => 0,
            // Far from the range: run back toward it.
            (true, c) if c > p.price_max => -1,
            (true, c) if c < p.price_min => 1,
            (true, _) => {
                if up {
                    1
                } else {
                    -1
                }
            }
        };
        let gap_planned = momentum && rng.random::<f64>() < p.momentum_gap_prob;
        let gap = if gap_planned {
            direction as f64 * rng.random_range(0.02..=p.momentum_gap_max)
        } else {
            p.gap_vol * rng.sample::<f64, _>(StandardNormal)
        };
        let open = to_band(prev_close * gap.exp());
        let u: f64 = rng.random();
        let range = p.momentum_range_min + (p.momentum_range_max - p.momentum_range_min) * u * u;
        let hold = rng.random_range(CLOSE_HOLD.0..=CLOSE_HOLD.1);
        let shock = (student.sample(&mut rng) * t_scale).clamp(-4.0, 4.0);
        let close_log = if momentum {
            let peak = if direction > 0 {
                (1.0 + range).ln()
            } else {
                (1.0 - range).ln()
            };
            hold * peak
        } else if p.edge_enabled() {
            // The planted drift moves the close by the day's total; the regime path comes
            // from its own stream, so this symbol's other draws are those without the edge.
            let cum = regime_cumulative(&regime_states(p, sym, day), drift_per_minute);
            let total = cum[cum.len() - 1];
            -MEAN_REVERSION * (open.ln() - anchor) + p.daily_vol * shock + total
        } else {
            -MEAN_REVERSION * (open.ln() - anchor) + p.daily_vol * shock
        };
        let mut close = to_band(open * close_log.exp());
        if momentum && (close - open) * direction as f64 <= 0.0 {
            // The band clamp ate the whole move: close flat (still inside the range).
            close = open;
        }
        plans.push(PricePlan {
            prev_close,
            open,
            close,
            direction,
            gap_planned,
            range: if momentum { range } else { 0.0 },
        });
        prev_close = close;
    }
    (liquidity, plans)
}

/// Writes `synth.json` (the spec) and `truth.json` (every [`DayTruth`], symbol-major, one
/// per line) into `dir`, each atomically (temporary file in `dir`, then rename).
pub fn write_universe(dir: &Path, spec: &SynthSpec) -> Result<()> {
    let (n_sym, n_days) = (spec.params.symbols, spec.params.days);
    // Each symbol-day's truth, and its JSON line (about 400 bytes), are held at once.
    crate::util::mem::check(
        &format!("the truth of {n_sym} symbols × {n_days} days"),
        crate::util::mem::product(&[n_sym, n_days], std::mem::size_of::<DayTruth>() + 448),
        "use fewer symbols or days (--symbols, --days, synth.symbols, synth.days)",
    )?;
    let universe = Universe::from_spec(spec.clone())?;
    let truths: Vec<DayTruth> = (0..n_sym * n_days)
        .into_par_iter()
        .map(|i| universe.generate(i / n_days, i % n_days).1)
        .collect();
    std::fs::create_dir_all(dir).at(dir)?;
    let spec_json = serde_json::to_vec_pretty(spec)
        .map_err(|e| Error::input(dir.join(SPEC_FILE), format!("cannot encode the spec: {e}")))?;
    crate::util::fs::write_atomic(&dir.join(SPEC_FILE), &spec_json)?;
    let mut body = Vec::with_capacity(truths.len() * 400 + 4);
    body.extend_from_slice(b"[\n");
    for (i, t) in truths.iter().enumerate() {
        if i > 0 {
            body.extend_from_slice(b",\n");
        }
        serde_json::to_writer(&mut body, t).map_err(|e| {
            Error::input(
                dir.join(TRUTH_FILE),
                format!("cannot encode the truth: {e}"),
            )
        })?;
    }
    body.extend_from_slice(b"\n]\n");
    crate::util::fs::write_atomic(&dir.join(TRUTH_FILE), &body)
}

/// Reads and checks `dir/synth.json`.
pub fn read_spec(dir: &Path) -> Result<SynthSpec> {
    let path = dir.join(SPEC_FILE);
    let text = std::fs::read(&path).at(&path)?;
    let spec: SynthSpec = serde_json::from_slice(&text).map_err(|e| {
        Error::input(
            &path,
            format!("not a synth spec ({e}); regenerate it with `sim-train synth`"),
        )
    })?;
    spec.check().map_err(|e| Error::input(&path, e))?;
    Ok(spec)
}

/// Reads `dir/truth.json`.
pub fn read_truth(dir: &Path) -> Result<Vec<DayTruth>> {
    let path = dir.join(TRUTH_FILE);
    let text = std::fs::read(&path).at(&path)?;
    serde_json::from_slice(&text).map_err(|e| {
        Error::input(
            &path,
            format!("not a synth truth file ({e}); regenerate it with `sim-train synth`"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekdays_skip_weekends() {
        // 2024-01-05 is a Friday.
        let d = |m, day| NaiveDate::from_ymd_opt(2024, m, day).unwrap();
        assert_eq!(weekdays(d(1, 5), 3), vec![d(1, 5), d(1, 8), d(1, 9)]);
        assert_eq!(weekdays(d(1, 6), 1), vec![d(1, 8)]);
    }

    #[test]
    fn activity_is_u_shaped_and_low_outside_regular_hours() {
        let p = SynthParams::default();
        let open = slot_activity(&p, REGULAR_OPEN_SEC, 60);
        let mid = slot_activity(&p, 12 * 3600, 60);
        let close = slot_activity(&p, REGULAR_CLOSE_SEC - 60, 60);
        // First minute (mid-point 0.5 min): 1 + 2 e^{-0.5/20} = 2.9506.
        assert!(
            (open - (1.0 + 2.0 * (-0.5f64 / 20.0).exp())).abs() < 1e-3,
            "{open}"
        );
        // 12:00 (mid-point 150.5 min after the open, 239.5 before the close).
        let expect_mid = 1.0 + 2.0 * (-150.5f64 / 20.0).exp() + (-239.5f64 / 20.0).exp();
        assert!((mid - expect_mid).abs() < 1e-12 && mid < 1.002, "{mid}");
        assert!(
            (close - (1.0 + (-0.5f64 / 20.0).exp())).abs() < 1e-3,
            "{close}"
        );
        assert_eq!(slot_activity(&p, PRE_MARKET_SEC, 60), 0.1);
        assert_eq!(slot_activity(&p, REGULAR_CLOSE_SEC, 60), 0.1);
    }

    #[test]
    fn bridge_excursion_matches_simulated_bridges() {
        // Independent truth: discretized Brownian bridges from 0 to d (variance 1), whose
        // maximum above max(0, d) we compare with the sampler at a few quantiles.
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (paths, steps) = (4000, 2000);
        for d in [0.0f64, 0.8] {
            let mut sim: Vec<f64> = (0..paths)
                .map(|_| {
                    let mut w = Vec::with_capacity(steps + 1);
                    let mut x = 0.0;
                    w.push(0.0);
                    for _ in 0..steps {
                        x += rng.sample::<f64, _>(StandardNormal) / (steps as f64).sqrt();
                        w.push(x);
                    }
                    let end = x;
                    // Bridge: b(t) = w(t) - t (w(1) - d).
                    w.iter()
                        .enumerate()
                        .map(|(i, v)| v - i as f64 / steps as f64 * (end - d))
                        .fold(f64::MIN, f64::max)
                        - d.max(0.0)
                })
                .collect();
            let mut drawn: Vec<f64> = (0..paths)
                .map(|_| bridge_excursion(d, 1.0, rng.sample(Exp1)))
                .collect();
            sim.sort_by(f64::total_cmp);
            drawn.sort_by(f64::total_cmp);
            for q in [0.25, 0.5, 0.75, 0.9] {
                let i = (q * paths as f64) as usize;
                // The grid misses the true maximum by about 0.58 / sqrt(steps) = 0.013.
                assert!(
                    (sim[i] + 0.013 - drawn[i]).abs() < 0.035,
                    "d={d} q={q}: simulated {} drawn {}",
                    sim[i],
                    drawn[i]
                );
            }
        }
    }
}
