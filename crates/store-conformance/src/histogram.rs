//! The reference histogram: buckets and top values counted in memory, as
//! the `auditrail-store` docs define them. The conformance suite checks
//! every store's histograms against it, and the query service's tests the
//! `Histogram` RPC, so both judge by one definition, and neither by the
//! code under test.

use std::collections::{BTreeMap, HashMap};

use jiff::{SignedDuration, Timestamp};

/// The start of the bucket of width `interval` holding `time`: the multiple
/// of `interval` since the Unix epoch at or before it.
pub fn bucket_start(time: Timestamp, interval: SignedDuration) -> Timestamp {
    let step = interval.as_nanos();
    Timestamp::from_nanosecond(time.as_nanosecond().div_euclid(step) * step)
        .expect("a bucket starts within the range of a timestamp")
}

/// How many of `times` fall in each bucket of width `interval`, by bucket
/// start; buckets holding none are absent.
pub fn bucket_counts(
    times: impl IntoIterator<Item = Timestamp>,
    interval: SignedDuration,
) -> BTreeMap<Timestamp, u64> {
    let mut counts = BTreeMap::new();
    for time in times {
        *counts.entry(bucket_start(time, interval)).or_default() += 1;
    }
    counts
}

/// The `top_n` most frequent of `values`, most frequent first and ties by
/// value ascending, and how many values are not among them.
pub fn top_values<S: AsRef<str>>(
    values: impl IntoIterator<Item = S>,
    top_n: usize,
) -> (Vec<(String, u64)>, u64) {
    let mut counts: HashMap<String, u64> = HashMap::new();
    for value in values {
        *counts.entry(value.as_ref().to_owned()).or_default() += 1;
    }
    let mut all: Vec<(String, u64)> = counts.into_iter().collect();
    all.sort_by(|(va, na), (vb, nb)| nb.cmp(na).then_with(|| va.cmp(vb)));
    let other = all.iter().skip(top_n).map(|(_, n)| n).sum();
    all.truncate(top_n);
    (all, other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_aligned_to_the_epoch() {
        let minute = SignedDuration::from_mins(1);
        let at = |s: &str| s.parse::<Timestamp>().expect("time");
        let counts = bucket_counts(
            [
                at("2026-01-01T00:00:30Z"),
                at("2026-01-01T00:00:59.999Z"),
                at("2026-01-01T00:01:00Z"),
                at("1969-12-31T23:59:30Z"),
            ],
            minute,
        );
        let want = BTreeMap::from([
            (at("1969-12-31T23:59:00Z"), 1),
            (at("2026-01-01T00:00:00Z"), 2),
            (at("2026-01-01T00:01:00Z"), 1),
        ]);
        assert_eq!(counts, want);
    }

    #[test]
    fn top_values_order_by_count_then_value_and_count_the_rest() {
        let (top, other) = top_values(["b", "a", "c", "b", "a", "c", "c", "d"], 2);
        assert_eq!(top, vec![("c".to_owned(), 3), ("a".to_owned(), 2)]);
        assert_eq!(other, 3);
    }
}
