//! The curriculum episode sampler: which (symbol, day, reset point) an environment starts
//! from when it resets.
//!
//! A draw, all from one seeded ChaCha8 stream, in O(`sampler.choices`):
//! 1. the **stage** is the last `[[sampler.stages]]` whose `from_episodes` is at most the
//!    number of episodes drawn before this one;
//! 2. a **category** is drawn with the stage's shares (a `uniform` stage: equal shares
//!    over the categories the range holds), times the performance multipliers when
//!    `sampler.adapt.enabled`;
//! 3. `sampler.choices` candidate days are drawn uniformly from that category's days (a
//!    prebuilt array per category); the winner is the candidate that was not drawn in the
//!    last `sampler.day_cooldown` draws (forced diversity), then whose symbol is not among
//!    the last `sampler.symbol_rotation` symbols drawn (symbol rotation), then that has the
//!    fewest uses (usage balancing, "power of k choices"); ties go to the first drawn;
//! 4. a **reset point** of that day is drawn uniformly.
//!
//! Only days inside the sampled range (`sampler.from`..=`sampler.to`, or the range the
//! caller gives, e.g. a walk-forward fold's train window) are ever drawn, loaded, or used
//! as lookback. Stages asking for a category the range does not hold are refused when the
//! sampler is built, never silently redistributed.
//!
//! Draws are planned `sampler.lookahead` ahead so the [`Preloader`] can load their days in
//! the background; the plan does not depend on loading, so the sequence is the same with
//! or without a preloader. [`EpisodeSource::save_state`] saves the RNG, usage counts and
//! the plan, so a resumed run draws exactly what the uninterrupted run would have.

use super::Category;
use super::config::SamplerConfig;
use super::index::{FileStamp, Index};
use super::preload::{CpuLoader, LoadedDay};
use crate::env::preload::{PreloadConfig, Preloader};
use crate::env::{EnvParams, Episode, EpisodeSource, EpisodeStats};
use crate::error::{Error, Result};
use chrono::NaiveDate;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Which days of the index may be drawn.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selection {
    /// First and last day (inclusive); None = open.
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// Only these symbols; None = all.
    pub symbols: Option<Vec<String>>,
}

impl Selection {
    /// The range of `[sampler]` (`from`, `to`), all symbols.
    pub fn from_config(cfg: &SamplerConfig) -> Selection {
        Selection {
            from: cfg.from,
            to: cfg.to,
            symbols: None,
        }
    }
    pub fn contains(&self, symbol: &str, date: NaiveDate) -> bool {
        self.from.is_none_or(|f| date >= f)
            && self.to.is_none_or(|t| date <= t)
            && self
                .symbols
                .as_ref()
                .is_none_or(|s| s.iter().any(|x| x == symbol))
    }
    fn describe(&self) -> String {
        let d = |x: Option<NaiveDate>| x.map_or("…".to_string(), |d| d.to_string());
        let mut s = format!("{}..={}", d(self.from), d(self.to));
        if let Some(sy) = &self.symbols {
            s.push_str(&format!(" symbols {}", sy.join(",")));
        }
        s
    }
}

/// One planned draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draw {
    /// Row of the day in the index's `days`.
    pub day: u32,
    /// Row of the reset point in the index's `resets`.
    pub reset: u32,
    pub category: Category,
    /// Curriculum stage (0-based) the draw came from.
    pub stage: u8,
}

/// What the sampler saves in a checkpoint.
#[derive(Serialize, Deserialize)]
struct SamplerState {
    kind: String,
    seed: u64,
    /// Days in the selection and a hash of their (symbol, date) list.
    days: usize,
    fingerprint: String,
    draws: u64,
    word_pos: String,
    usage: Vec<u32>,
    last_draw: Vec<u64>,
    recent_symbols: Vec<u32>,
    pending: Vec<Draw>,
    adapt_mean: [f64; 5],
    adapt_count: [u64; 5],
}

const STATE_KIND: &str = "sim-train curriculum sampler v1";

/// The curriculum sampler. See the module docs.
pub struct Sampler {
    idx: Arc<Index>,
    cfg: SamplerConfig,
    /// Shares of each stage (uniform stages resolved to the categories present).
    stage_shares: Vec<[f64; 5]>,
    selection: Selection,
    /// Index day ids of the drawable days (in the selection, with reset points).
    days: Vec<u32>,
    /// Positions into `days`, per category.
    by_cat: [Vec<u32>; 5],
    /// Symbol number of each drawable day.
    day_sym: Vec<u32>,
    /// Position in `days` of each index day id (u32::MAX when not drawable).
    local_of: Vec<u32>,
    usage: Vec<u32>,
    /// Draw number (1-based) of each day's last draw; 0 = never.
    last_draw: Vec<u64>,
    recent_symbols: VecDeque<u32>,
    rng: ChaCha8Rng,
    draws: u64,
    pending: VecDeque<Draw>,
    adapt_mean: [f64; 5],
    adapt_count: [u64; 5],
    fingerprint: String,
    preloader: Option<Preloader<CpuLoader>>,
}

impl Sampler {
    /// A sampler over the days of `idx` that `sel` selects. Refuses an empty selection and
    /// stages whose categories the selection does not hold.
    pub fn new(idx: Arc<Index>, cfg: &SamplerConfig, sel: Selection) -> Result<Sampler> {
        let mut days = Vec::new();
        let mut by_cat: [Vec<u32>; 5] = Default::default();
        let mut day_sym = Vec::new();
        let mut local_of = vec![u32::MAX; idx.days.len()];
        let mut symbols: HashMap<&str, u32> = HashMap::new();
        let mut in_range = 0usize;
        let mut fp = xxhash_rust::xxh3::Xxh3::new();
        for (k, d) in idx.days.iter().enumerate() {
            if !sel.contains(&d.symbol, d.date) {
                continue;
            }
            in_range += 1;
            if idx.day_resets[k].is_empty() {
                continue;
            }
            let n = symbols.len() as u32;
            let sym = *symbols.entry(d.symbol.as_str()).or_insert(n);
            local_of[k] = days.len() as u32;
            by_cat[d.category.index()].push(days.len() as u32);
            days.push(k as u32);
            day_sym.push(sym);
            fp.update(d.symbol.as_bytes());
            fp.update(d.date.to_string().as_bytes());
        }
        if days.is_empty() {
            return Err(Error::NotFound(format!(
                "no day of the index {} can be drawn in {} ({} indexed day(s) in range, none with a reset point); widen the range (sampler.from / sampler.to) or scan more days",
                idx.dir.display(),
                sel.describe(),
                in_range
            )));
        }
        let mut stage_shares = Vec::with_capacity(cfg.stages.len());
        for (i, st) in cfg.stages.iter().enumerate() {
            if st.uniform {
                stage_shares.push(std::array::from_fn(|c| {
                    if by_cat[c].is_empty() { 0.0 } else { 1.0 }
                }));
                continue;
            }
            stage_shares.push(st.shares());
            for (c, share) in Category::ALL.iter().zip(st.shares()) {
                if share > 0.0 && by_cat[c.index()].is_empty() {
                    let counts: Vec<String> = Category::ALL
                        .iter()
                        .map(|c| format!("{} {}", c.name(), by_cat[c.index()].len()))
                        .collect();
                    return Err(Error::Data(format!(
                        "curriculum stage {} (from_episodes = {}) asks for {} days ({}) but the index {} holds none in {} (it has: {}); set that share to 0 in [[sampler.stages]], widen the range, or rescan with other [scan] thresholds",
                        i + 1,
                        st.from_episodes,
                        c.name(),
                        share,
                        idx.dir.display(),
                        sel.describe(),
                        counts.join(", ")
                    )));
                }
            }
        }
        let n = days.len();
        Ok(Sampler {
            idx,
            cfg: cfg.clone(),
            stage_shares,
            selection: sel,
            days,
            by_cat,
            day_sym,
            local_of,
            usage: vec![0; n],
            last_draw: vec![0; n],
            recent_symbols: VecDeque::new(),
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            draws: 0,
            pending: VecDeque::new(),
            adapt_mean: [0.0; 5],
            adapt_count: [0; 5],
            fingerprint: format!("{:016x}", fp.digest()),
            preloader: None,
        })
    }

    /// Loads days for [`EpisodeSource::next_episode`] through a [`Preloader`]. Checks that
    /// every drawable day's cache file still exists and is the file that was scanned, and
    /// warns when the cache holds days the index does not.
    pub fn with_preloader(
        mut self,
        params: Arc<EnvParams>,
        cfg: &PreloadConfig,
    ) -> Result<Sampler> {
        let idx = &self.idx;
        for &k in &self.days {
            let d = &idx.days[k as usize];
            let stamp = FileStamp::of(std::path::Path::new(&d.path)).map_err(|_| {
                Error::NotFound(format!(
                    "{} {}: the index {} names {}, which no longer exists; rescan with `sim-train scan --cache {} --out {}`",
                    d.symbol,
                    d.date,
                    idx.dir.display(),
                    d.path,
                    idx.manifest.cache.display(),
                    idx.dir.display()
                ))
            })?;
            if stamp.len != d.file_len || stamp.mtime_ns != d.file_mtime_ns {
                return Err(Error::Data(format!(
                    "{}: the cache file changed since the index {} was built (stale index); rescan with `sim-train scan --cache {} --out {}`",
                    d.path,
                    idx.dir.display(),
                    idx.manifest.cache.display(),
                    idx.dir.display()
                )));
            }
        }
        idx.warn_if_stale()?;
        let lookback = if cfg.lookback {
            self.lookback_days()
        } else {
            vec![None; idx.days.len()]
        };
        let loader = CpuLoader::new(idx, params, lookback);
        self.preloader = Some(Preloader::new(loader, cfg));
        Ok(self)
    }

    /// Per index day: the index day holding the symbol's previous trading day, when it is
    /// inside the selection (never a day outside it).
    fn lookback_days(&self) -> Vec<Option<u32>> {
        let cal = crate::calendar::Calendar::us_equity_shared();
        let days = &self.idx.days;
        (0..days.len())
            .map(|k| {
                let d = &days[k];
                let p = k.checked_sub(1)?;
                let prev = &days[p];
                (prev.symbol == d.symbol
                    && prev.date == cal.prev_trading_day(d.date)
                    && self.selection.contains(&prev.symbol, prev.date))
                .then_some(p as u32)
            })
            .collect()
    }

    pub fn index(&self) -> &Index {
        &self.idx
    }

    /// Drawable days per category, in [`Category::ALL`] order.
    pub fn category_days(&self) -> [usize; 5] {
        std::array::from_fn(|c| self.by_cat[c].len())
    }

    /// Index day ids of the drawable days.
    pub fn drawable_days(&self) -> &[u32] {
        &self.days
    }

    /// Episodes handed out so far (planned draws not yet handed out excluded).
    pub fn handed_out(&self) -> u64 {
        self.draws - self.pending.len() as u64
    }

    /// How often each index day was drawn (planned draws included), for drawable days.
    pub fn usage(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.days.iter().copied().zip(self.usage.iter().copied())
    }

    pub fn preload_stats(&self) -> Option<crate::env::preload::PreloadStats> {
        self.preloader.as_ref().map(|p| p.stats())
    }

    fn stage_of(&self, n: u64) -> usize {
        self.cfg
            .stages
            .iter()
            .rposition(|s| s.from_episodes <= n)
            .unwrap_or(0)
    }

    /// Category multipliers from the agent's results (1 when adaptation is off).
    fn adapt_mult(&self) -> [f64; 5] {
        let a = &self.cfg.adapt;
        std::array::from_fn(|c| {
            if !a.enabled || self.adapt_count[c] == 0 {
                1.0
            } else {
                1.0 + a.strength * (-self.adapt_mean[c] / a.scale).clamp(0.0, 1.0)
            }
        })
    }

    /// Plans one more draw (see the module docs).
    fn plan(&mut self) -> Draw {
        let stage = self.stage_of(self.draws);
        let shares = self.stage_shares[stage];
        let mult = self.adapt_mult();
        let mut total = 0.0;
        let mut cum = [0.0; 5];
        for c in 0..5 {
            total += shares[c] * mult[c];
            cum[c] = total;
        }
        let x = self.rng.random::<f64>() * total;
        let cat = (0..5)
            .find(|&c| x < cum[c] && shares[c] > 0.0)
            .unwrap_or_else(|| (0..5).rev().find(|&c| shares[c] > 0.0).unwrap_or(0));
        let pool = &self.by_cat[cat];
        let mut best = u32::MAX;
        let mut best_score = u64::MAX;
        for _ in 0..self.cfg.choices {
            let local = pool[self.rng.random_range(0..pool.len())];
            let l = local as usize;
            let cooling = self.last_draw[l] != 0
                && self.last_draw[l] + self.cfg.day_cooldown as u64 > self.draws;
            let sym_recent = self.recent_symbols.contains(&self.day_sym[l]);
            let score =
                ((cooling as u64) << 63) | ((sym_recent as u64) << 62) | self.usage[l] as u64;
            if score < best_score {
                best_score = score;
                best = local;
            }
        }
        let l = best as usize;
        let day = self.days[l];
        let r = &self.idx.day_resets[day as usize];
        let reset = r.start + self.rng.random_range(0..r.end - r.start);
        self.draws += 1;
        self.usage[l] += 1;
        self.last_draw[l] = self.draws;
        if self.cfg.symbol_rotation > 0 {
            if self.recent_symbols.len() == self.cfg.symbol_rotation as usize {
                self.recent_symbols.pop_front();
            }
            self.recent_symbols.push_back(self.day_sym[l]);
        }
        Draw {
            day,
            reset,
            category: Category::ALL[cat],
            stage: stage as u8,
        }
    }

    /// The next draw (the oldest planned one, or a new one).
    pub fn draw(&mut self) -> Draw {
        match self.pending.pop_front() {
            Some(d) => d,
            None => self.plan(),
        }
    }

    /// Plans up to `sampler.lookahead` draws ahead and lets the preloader start on them.
    fn plan_ahead(&mut self) {
        while self.pending.len() < self.cfg.lookahead as usize {
            let d = self.plan();
            self.pending.push_back(d);
        }
        if let Some(p) = self.preloader.as_mut() {
            p.prefetch(self.pending.iter().map(|d| d.day));
        }
    }

    /// The next episode with its lookback day and the draw it came from.
    pub fn next_loaded(&mut self) -> Result<(Episode, Arc<LoadedDay>, Draw)> {
        if self.preloader.is_none() {
            return Err(Error::Usage(
                "this sampler has no day loader: build it with Sampler::with_preloader".into(),
            ));
        }
        self.plan_ahead();
        let d = self.pending.pop_front().expect("planned ahead");
        let loaded = self.preloader.as_mut().expect("checked above").get(d.day)?;
        let reset = &self.idx.resets[d.reset as usize];
        let day = &loaded.day;
        let start_row = day.start_row_at(reset.sec).ok_or_else(|| {
            Error::Data(format!(
                "{} {}: the reset point at {} has no later session bar in the cache (env.session differs from scan.reset_session, or the index is stale); rescan with `sim-train scan`",
                reset.symbol,
                reset.date,
                crate::clock::hms(reset.sec as i64)
            ))
        })?;
        let ep = Episode {
            day: day.clone(),
            start_row,
        };
        ep.check()?;
        Ok((ep, loaded, d))
    }

    /// Feeds a finished episode's result to the performance-based adjustment (a no-op when
    /// `sampler.adapt.enabled` is false): categories the agent does badly on are drawn
    /// more, up to `1 + strength` times their share.
    pub fn observe(&mut self, stats: &EpisodeStats) {
        if !self.cfg.adapt.enabled {
            return;
        }
        let Some(k) = self.idx.find(&stats.symbol, stats.date) else {
            return;
        };
        if self.local_of[k] == u32::MAX {
            return;
        }
        let c = self.idx.days[k].category.index();
        let a = self.cfg.adapt.alpha;
        self.adapt_mean[c] = if self.adapt_count[c] == 0 {
            stats.reward
        } else {
            (1.0 - a) * self.adapt_mean[c] + a * stats.reward
        };
        self.adapt_count[c] += 1;
    }
}

impl EpisodeSource for Sampler {
    fn preload_stats(&self) -> Option<crate::env::preload::PreloadStats> {
        Sampler::preload_stats(self)
    }

    fn next_episode(&mut self, _env: usize) -> Result<Episode> {
        self.next_loaded().map(|(e, _, _)| e)
    }

    fn save_state(&self) -> serde_json::Value {
        serde_json::to_value(SamplerState {
            kind: STATE_KIND.into(),
            seed: self.cfg.seed,
            days: self.days.len(),
            fingerprint: self.fingerprint.clone(),
            draws: self.draws,
            word_pos: self.rng.get_word_pos().to_string(),
            usage: self.usage.clone(),
            last_draw: self.last_draw.clone(),
            recent_symbols: self.recent_symbols.iter().copied().collect(),
            pending: self.pending.iter().copied().collect(),
            adapt_mean: self.adapt_mean,
            adapt_count: self.adapt_count,
        })
        .expect("a plain struct serializes")
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        let s: SamplerState = serde_json::from_value(state.clone()).map_err(|e| {
            Error::Data(format!(
                "episode source state is not a curriculum sampler state: {e}"
            ))
        })?;
        if s.kind != STATE_KIND {
            return Err(Error::Data(format!(
                "episode source state is a '{}', not a '{STATE_KIND}'",
                s.kind
            )));
        }
        if s.seed != self.cfg.seed || s.days != self.days.len() || s.fingerprint != self.fingerprint
        {
            return Err(Error::Data(format!(
                "the saved sampler drew from {} day(s) (fingerprint {}) with seed {}, this one from {} (fingerprint {}) with seed {}: resume with the index, range and seed of the saved run",
                s.days,
                s.fingerprint,
                s.seed,
                self.days.len(),
                self.fingerprint,
                self.cfg.seed
            )));
        }
        let n = self.days.len();
        if s.usage.len() != n || s.last_draw.len() != n {
            return Err(Error::Data(
                "episode source state: usage counts do not match the days".into(),
            ));
        }
        let n_idx = self.idx.days.len() as u32;
        if s.pending
            .iter()
            .any(|d| d.day >= n_idx || d.reset as usize >= self.idx.resets.len())
        {
            return Err(Error::Data(
                "episode source state: a planned draw names a day the index does not have".into(),
            ));
        }
        let pos: u128 = s.word_pos.parse().map_err(|_| {
            Error::Data(format!(
                "episode source state: bad RNG position '{}'",
                s.word_pos
            ))
        })?;
        self.rng = ChaCha8Rng::seed_from_u64(self.cfg.seed);
        self.rng.set_word_pos(pos);
        self.draws = s.draws;
        self.usage = s.usage;
        self.last_draw = s.last_draw;
        self.recent_symbols = s.recent_symbols.into();
        self.pending = s.pending.into();
        self.adapt_mean = s.adapt_mean;
        self.adapt_count = s.adapt_count;
        Ok(())
    }
}
