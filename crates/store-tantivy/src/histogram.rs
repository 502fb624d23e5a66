//! Histograms: the matches counted per time bucket, and the most frequent
//! values of the requested fields, from fast columns (no document is read).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use auditrail_store::{Histogram, HistogramRequest, StoreError, TermsField, top_terms};
use tantivy::query::Query as TQuery;

use crate::collect::{BucketCounts, Buckets};
use crate::read::views;
use crate::schema::{self, timestamp};
use crate::writer::{ClusterIndex, internal};

/// The bucket width of `request` in microseconds (stored times are whole
/// microseconds); anything else is refused.
pub(crate) fn interval_micros(request: &HistogramRequest) -> Result<i64, StoreError> {
    i64::try_from(request.interval.as_micros())
        .ok()
        .filter(|&m| m > 0 && i128::from(m) * 1000 == request.interval.as_nanos())
        .ok_or_else(|| {
            StoreError::InvalidRequest(format!(
                "histogram interval {:?} is not a positive whole number of microseconds",
                request.interval
            ))
        })
}

/// The histogram of the matches of `query` over `indices`: counts per
/// bucket of `interval_micros` and the top values of the requested fields.
pub(crate) fn histogram_blocking(
    indices: &[Arc<ClusterIndex>],
    query: &dyn TQuery,
    interval_micros: i64,
    request: &HistogramRequest,
) -> Result<Histogram, StoreError> {
    let collector = Buckets {
        interval_micros,
        terms: request.terms.iter().map(|f| terms_column(*f)).collect(),
    };
    let mut counts = BucketCounts::default();
    for view in views(indices) {
        let fruit = view
            .collect(query, &collector)
            .map_err(|e| internal("histogram", e))?;
        counts.add(fruit);
    }
    let mut buckets = BTreeMap::new();
    for (bucket, n) in counts.buckets {
        let start = bucket
            .checked_mul(interval_micros)
            .and_then(timestamp)
            .ok_or_else(|| StoreError::Internal(format!("bucket {bucket} out of range")))?;
        buckets.insert(start, n);
    }
    let total = buckets.values().sum();
    counts.terms.resize_with(request.terms.len(), HashMap::new);
    let terms = request
        .terms
        .iter()
        .zip(counts.terms)
        .map(|(field, values)| top_terms(*field, values, request.top_n))
        .collect();
    Ok(Histogram {
        buckets,
        terms,
        total,
    })
}

/// The fast column holding a histogram's terms field.
fn terms_column(field: TermsField) -> &'static str {
    match field {
        TermsField::Verb => schema::VERB,
        TermsField::Resource => schema::RESOURCE,
        TermsField::Username => schema::USERNAME,
        TermsField::Namespace => schema::NAMESPACE,
    }
}
