//! Summary statistics of benchmark samples: the one definition of each figure
//! the benchmarks report.
//!
//! - **median**: the middle value of the sorted sample for an odd count, the
//!   mean of the two middle values for an even count. Every "p50" a benchmark
//!   reports is this median (and so is "the median" of runs or ratios).
//! - **percentile** `p`, for `0 ≤ p ≤ 100`: by nearest rank, never
//!   interpolated — the value at 1-based rank ⌈p/100 · n⌉ of the sorted
//!   sample, `sorted[ceil(p/100 · n) - 1]`, the rank taken as at least 1. So
//!   p0 is the minimum and p100 the maximum; p95 of 1, 2, …, 20 is 19 and p99
//!   of 1, 2, …, 200 is 198. (The rank is computed as `p · n / 100`, exact
//!   for whole `p` and any sample a benchmark takes.)
//!
//! Both take a sample in any order: they sort a copy with [`f64::total_cmp`],
//! so a NaN (a request the server sent no timings for) sorts after every
//! number instead of failing. Neither panics: an empty sample, or a `p`
//! outside `[0, 100]` or NaN, gives `None`, which a report shows as NaN
//! (`null` in JSON).

/// The median of `values` (any order): the middle value, or the mean of the
/// two middle values for an even count; `None` for an empty sample.
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    let sorted = sorted(values);
    let n = sorted.len();
    match n {
        0 => None,
        n if n % 2 == 1 => sorted.get(n / 2).copied(),
        n => Some((sorted.get(n / 2 - 1)? + sorted.get(n / 2)?) / 2.0),
    }
}

/// The `p`-th percentile of `values` (any order) by nearest rank:
/// `sorted[ceil(p/100 · n) - 1]`, p0 the minimum, p100 the maximum; `None`
/// for an empty sample or a `p` outside `[0, 100]`.
pub(crate) fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if !(0.0..=100.0).contains(&p) || values.is_empty() {
        return None;
    }
    let sorted = sorted(values);
    let n = sorted.len();
    // `as` saturates; the rank is within 1..=n after the clamp.
    let rank = ((p * n as f64 / 100.0).ceil() as usize).clamp(1, n);
    sorted.get(rank - 1).copied()
}

/// A sorted copy (NaN after every number).
fn sorted(values: &[f64]) -> Vec<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(median(&[5.0, 1.0]), Some(3.0));
    }

    #[test]
    fn empty_sample_has_no_median_or_percentile() {
        assert_eq!(median(&[]), None);
        assert_eq!(percentile(&[], 0.0), None);
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[], 100.0), None);
    }

    #[test]
    fn percentile_by_nearest_rank() {
        let one_to_twenty: Vec<f64> = (1..=20).rev().map(f64::from).collect();
        assert_eq!(percentile(&one_to_twenty, 0.0), Some(1.0));
        assert_eq!(percentile(&one_to_twenty, 5.0), Some(1.0));
        assert_eq!(percentile(&one_to_twenty, 6.0), Some(2.0));
        assert_eq!(percentile(&one_to_twenty, 50.0), Some(10.0));
        assert_eq!(percentile(&one_to_twenty, 95.0), Some(19.0));
        assert_eq!(percentile(&one_to_twenty, 99.0), Some(20.0));
        assert_eq!(percentile(&one_to_twenty, 100.0), Some(20.0));
        let one_to_200: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(percentile(&one_to_200, 99.0), Some(198.0));
        assert_eq!(percentile(&one_to_200, 50.0), Some(100.0));
        // Odd count: p50 is the median.
        let odd = [9.0, 1.0, 5.0, 3.0, 7.0];
        assert_eq!(percentile(&odd, 50.0), median(&odd));
    }

    #[test]
    fn p0_and_p100_are_minimum_and_maximum() {
        let values = [2.5, -1.0, 8.0, 3.0];
        assert_eq!(percentile(&values, 0.0), Some(-1.0));
        assert_eq!(percentile(&values, 100.0), Some(8.0));
        assert_eq!(percentile(&[4.0], 0.0), Some(4.0));
        assert_eq!(percentile(&[4.0], 100.0), Some(4.0));
    }

    #[test]
    fn percentile_outside_0_to_100_is_none() {
        assert_eq!(percentile(&[1.0, 2.0], -1.0), None);
        assert_eq!(percentile(&[1.0, 2.0], 100.5), None);
        assert_eq!(percentile(&[1.0, 2.0], f64::NAN), None);
        assert_eq!(percentile(&[1.0, 2.0], f64::INFINITY), None);
    }

    #[test]
    fn nan_samples_sort_last_without_panicking() {
        let values = [f64::NAN, 1.0, 3.0, 2.0];
        assert_eq!(percentile(&values, 0.0), Some(1.0));
        assert_eq!(percentile(&values, 75.0), Some(3.0));
        assert!(percentile(&values, 100.0).is_some_and(f64::is_nan));
        assert_eq!(median(&values), Some(2.5));
        assert!(median(&[f64::NAN]).is_some_and(f64::is_nan));
    }
}
