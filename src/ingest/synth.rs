//! The synthetic generator as an ingest [`Source`]: a [`Universe`] filtered by a
//! [`Selection`], generating each requested date's symbols in parallel on demand. Nothing
//! is read from disk beyond the spec (`synth.json` or the `[synth]` config), so it is the
//! source that works on a fresh machine.

use crate::bars::RawDay;
use crate::error::{Error, Result};
use crate::ingest::{Selection, Source};
use crate::synth::{SynthSpec, Universe};
use chrono::NaiveDate;
use rayon::prelude::*;

/// A [`Source`] over a synthetic universe.
pub struct SynthSource {
    universe: Universe,
    /// Selected symbol indices, ascending.
    symbols: Vec<usize>,
    /// Selected day indices, ascending.
    days: Vec<usize>,
}

impl SynthSource {
    /// The source for `spec` restricted to `sel`. Errors if the selection asks for another
    /// bar size than the spec generates, or for symbols the universe does not have.
    pub fn new(spec: SynthSpec, sel: Selection) -> Result<SynthSource> {
        if sel.bar != spec.params.bar {
            return Err(Error::Usage(format!(
                "synth source: the build asks for {} bars but the synth spec generates {} bars; \
                 set synth.bar = \"{}\" or build with --bar {}",
                sel.bar, spec.params.bar, sel.bar, spec.params.bar
            )));
        }
        let universe = Universe::from_spec(spec)?;
        if let Some(wanted) = &sel.symbols {
            let unknown: Vec<&str> = wanted
                .iter()
                .filter(|w| !universe.symbols().iter().any(|s| s.eq_ignore_ascii_case(w)))
                .map(String::as_str)
                .collect();
            if !unknown.is_empty() {
                let names = universe.symbols();
                return Err(Error::NotFound(format!(
                    "synth source: no symbol {} in the synthetic universe ({}..{})",
                    unknown.join(", "),
                    names.first().map_or("", String::as_str),
                    names.last().map_or("", String::as_str)
                )));
            }
        }
        let symbols = (0..universe.symbols().len())
            .filter(|&i| sel.wants_symbol(&universe.symbols()[i]))
            .collect();
        let days = (0..universe.trading_days().len())
            .filter(|&i| sel.wants_date(universe.trading_days()[i]))
            .collect();
        Ok(SynthSource {
            universe,
            symbols,
            days,
        })
    }

    pub fn universe(&self) -> &Universe {
        &self.universe
    }
}

impl Source for SynthSource {
    fn name(&self) -> &'static str {
        "synth"
    }

    fn dates(&self) -> Result<Vec<NaiveDate>> {
        Ok(self
            .days
            .iter()
            .map(|&d| self.universe.trading_days()[d])
            .collect())
    }

    fn load_date(&self, date: NaiveDate) -> Result<Vec<RawDay>> {
        let days = self.universe.trading_days();
        let day = self
            .days
            .iter()
            .copied()
            .find(|&d| days[d] == date)
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "synth source: no trading day {date} in the selection ({} days from {} to {})",
                    self.days.len(),
                    self.days
                        .first()
                        .map_or(String::new(), |&d| days[d].to_string()),
                    self.days
                        .last()
                        .map_or(String::new(), |&d| days[d].to_string()),
                ))
            })?;
        Ok(self
            .symbols
            .par_iter()
            .map(|&s| self.universe.generate(s, day).0)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bars::BarSize;
    use crate::synth::SynthParams;
    use std::collections::BTreeSet;

    fn spec() -> SynthSpec {
        SynthSpec::with_weekdays(SynthParams {
            symbols: 4,
            days: 5,
            ..SynthParams::default()
        })
        .unwrap()
    }

    fn date(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, m, d).unwrap()
    }

    #[test]
    fn selection_filters_symbols_and_dates() {
        let sel = Selection {
            symbols: Some(BTreeSet::from(["SYN001".to_string(), "SYN003".to_string()])),
            from: Some(date(1, 3)),
            to: Some(date(1, 5)),
            bar: BarSize::M1,
        };
        let src = SynthSource::new(spec(), sel).unwrap();
        assert_eq!(src.name(), "synth");
        // 2024-01-02 is a Tuesday: days are Jan 2, 3, 4, 5, 8.
        assert_eq!(
            src.dates().unwrap(),
            vec![date(1, 3), date(1, 4), date(1, 5)]
        );
        let days = src.load_date(date(1, 4)).unwrap();
        let names: Vec<&str> = days.iter().map(|d| d.symbol.as_str()).collect();
        assert_eq!(names, ["SYN001", "SYN003"]);
        // Same bars as the universe generates for (symbol 3, day 2).
        assert_eq!(days[1], src.universe().generate(3, 2).0);
        let err = src.load_date(date(1, 2)).unwrap_err().to_string();
        assert!(err.contains("2024-01-02"), "{err}");
    }

    #[test]
    fn bar_mismatch_and_unknown_symbols_are_errors() {
        let err = SynthSource::new(spec(), Selection::all(BarSize::S1))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("1s") && err.contains("1m"), "{err}");
        let sel = Selection {
            symbols: Some(BTreeSet::from(["AAPL".to_string()])),
            ..Selection::all(BarSize::M1)
        };
        let err = SynthSource::new(spec(), sel).err().unwrap().to_string();
        assert!(
            err.contains("AAPL") && err.contains("SYN000..SYN003"),
            "{err}"
        );
    }
}
