//! Histogram requests and answers: event counts per time bucket and the most
//! frequent values of a few keyword fields.
//!
//! A store answers with *sparse* buckets (only those holding events) keyed by
//! their start; callers that show a chart fill the empty ones, because only
//! they know the range the user asked for.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use crate::Query;

/// A keyword field whose most frequent values a histogram can report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TermsField {
    /// The verb.
    Verb,
    /// `objectRef.resource` (`""` for events without one).
    Resource,
    /// `user.username`.
    Username,
    /// `objectRef.namespace` (`""` for cluster-scoped and non-resource
    /// events).
    Namespace,
}

/// What to count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramRequest {
    /// The events to count.
    pub query: Query,
    /// Bucket width: positive, a whole number of microseconds. Buckets are
    /// aligned to multiples of it since the Unix epoch.
    pub interval: SignedDuration,
    /// Fields whose most frequent values to report (no duplicates).
    pub terms: Vec<TermsField>,
    /// Values to report per field.
    pub top_n: usize,
}

/// The most frequent values of one field among the matching events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopTerms {
    /// The field.
    pub field: TermsField,
    /// Values and their counts, most frequent first, ties by value
    /// ascending; at most `top_n`.
    pub values: Vec<(String, u64)>,
    /// Matching events whose value is not among `values`.
    pub other: u64,
}

/// The answer to a [`HistogramRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Histogram {
    /// Events per bucket start, for buckets holding at least one event.
    pub buckets: BTreeMap<Timestamp, u64>,
    /// One entry per requested field, in request order.
    pub terms: Vec<TopTerms>,
    /// Matching events (the sum of the bucket counts).
    pub total: u64,
}

/// The `top_n` most frequent of `counts` (ties by value ascending) and the
/// sum of the others. Backends share it so that ties break identically.
pub fn top_terms(
    field: TermsField,
    counts: impl IntoIterator<Item = (String, u64)>,
    top_n: usize,
) -> TopTerms {
    let mut all: Vec<(String, u64)> = counts.into_iter().filter(|(_, n)| *n > 0).collect();
    all.sort_unstable_by(|(va, na), (vb, nb)| nb.cmp(na).then_with(|| va.cmp(vb)));
    let other = all.iter().skip(top_n).map(|(_, n)| n).sum();
    all.truncate(top_n);
    TopTerms {
        field,
        values: all,
        other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_terms_orders_by_count_then_value_and_sums_the_rest() {
        let counts =
            [("b", 3), ("a", 3), ("c", 5), ("d", 1), ("e", 0)].map(|(v, n)| (v.to_owned(), n));
        let top = top_terms(TermsField::Verb, counts, 2);
        assert_eq!(top.values, vec![("c".to_owned(), 5), ("a".to_owned(), 3)]);
        assert_eq!(top.other, 4);
    }
}
