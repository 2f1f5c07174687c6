//! Means and percentiles, computed the same way wherever a report needs them.

use serde::Serialize;

/// The arithmetic mean, summed left to right (the same bits for the same values in the
/// same order, wherever it is called); `None` when there are no values.
pub fn mean(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values
        .into_iter()
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// Summary of a sample of durations (or any values): its size, median, 99th percentile
/// and maximum. A percentile is the sample's value at rank `round((n - 1) q)` of the
/// sorted values (no interpolation, so it is always a value that occurred).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub n: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// The summary of `v` (all zero when empty); NaNs sort last.
    pub fn of(mut v: Vec<f64>) -> Percentiles {
        if v.is_empty() {
            return Percentiles::default();
        }
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        Percentiles {
            n: v.len(),
            p50: at(0.5),
            p99: at(0.99),
            max: v[v.len() - 1],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_of_hand_computed_cases() {
        assert_eq!(mean([1.0, 2.0, 6.0]), Some(3.0));
        assert_eq!(mean([]), None);
        assert!(mean([1.0, f64::NAN]).unwrap().is_nan());
        // Left to right: (1e16 + 1) + (-1e16) = 0 in f64, then / 3.
        assert_eq!(mean([1e16, 1.0, -1e16]), Some(0.0));
    }

    #[test]
    fn percentiles_are_ranks_of_the_sorted_sample() {
        let p = Percentiles::of((1..=101).rev().map(f64::from).collect());
        assert_eq!((p.n, p.p50, p.p99, p.max), (101, 51.0, 100.0, 101.0));
        let p = Percentiles::of(vec![5.0, 1.0]);
        // rank round(0.5) = 1 (half away from zero): the larger value.
        assert_eq!((p.p50, p.p99, p.max), (5.0, 5.0, 5.0));
        assert_eq!(Percentiles::of(vec![]), Percentiles::default());
    }
}
