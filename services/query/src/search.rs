//! `Search` (pages of events) and `Histogram` (counts over time and top
//! values).

use crate::error::QueryError;
use crate::scope;
use auditrail_server::Caller;
use std::collections::BTreeMap;

use auditrail_proto::{timestamp, v1};
use auditrail_store::{
    CountMode, HistogramRequest, Query, SearchRequest, SortOrder, Store, TermsField,
};
use jiff::{SignedDuration, Timestamp};

use crate::convert::audit_event;
use crate::filter::{fingerprint, resolve_range, to_query, with_timeline};
use crate::token::PageToken;
use crate::{page_size, sort_order};

/// Matches a search counts exactly unless asked for an exact total; beyond
/// it the total is a lower bound (`total_hits_exact` false), so that a page
/// of a huge result costs what the page costs.
pub const TRACK_TOTAL_HITS: u64 = 10_000;

pub(crate) async fn search(
    store: &dyn Store,
    request: v1::SearchRequest,
    now: Timestamp,
    caller: &Caller,
) -> Result<v1::SearchResponse, QueryError> {
    let limit = page_size(request.page_size)?;
    let sort = sort_order(request.sort)?;
    let filter =
        with_timeline(request.filter.as_ref(), request.timeline).map_err(QueryError::from)?;
    let print = fingerprint(&[
        &request.filter.clone().unwrap_or_default(),
        &(sort == SortOrder::OldestFirst),
        &request.timeline,
    ]);
    let (from, to, after) = if request.page_token.is_empty() {
        let (from, to) = resolve_range(&filter.from, &filter.to, now).map_err(QueryError::from)?;
        (from, to, None)
    } else {
        let token = PageToken::decode(&request.page_token, print).map_err(QueryError::from)?;
        (token.from, token.to, Some(token.after))
    };
    let query = to_query(&filter, request.timeline, from, to).map_err(QueryError::from)?;
    let query = scope::restrict(query, &filter, caller, "read")?;
    let page = store
        .search(SearchRequest {
            query,
            sort,
            limit,
            after,
            // The message's fields are read from the original bytes.
            include_raw: true,
            count: if request.exact_total {
                CountMode::Exact
            } else {
                CountMode::UpTo(TRACK_TOTAL_HITS)
            },
        })
        .await
        .map_err(QueryError::from)?;
    let next_page_token = PageToken::next_page(print, from, to, page.next);
    let events = page
        .events
        .into_iter()
        .map(|e| audit_event(e, request.include_raw))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(v1::SearchResponse {
        events,
        next_page_token,
        total_hits: page.total.map_or(0, |t| t.count),
        total_hits_exact: page.total.is_some_and(|t| t.exact),
        resolved_from: from.map(timestamp),
        resolved_to: Some(timestamp(to)),
    })
}

/// Bucket widths chosen when a histogram request gives none.
const ROUND_INTERVALS: [SignedDuration; 13] = [
    SignedDuration::from_secs(1),
    SignedDuration::from_secs(5),
    SignedDuration::from_secs(10),
    SignedDuration::from_secs(30),
    SignedDuration::from_mins(1),
    SignedDuration::from_mins(5),
    SignedDuration::from_mins(10),
    SignedDuration::from_mins(30),
    SignedDuration::from_hours(1),
    SignedDuration::from_hours(3),
    SignedDuration::from_hours(12),
    SignedDuration::from_hours(24),
    SignedDuration::from_hours(24 * 7),
];
/// Buckets the chosen width aims to stay under.
const TARGET_BUCKETS: i128 = 100;
/// Most buckets a histogram may have.
const MAX_BUCKETS: i128 = 10_000;
/// Most top values per field.
const MAX_TOP_N: u32 = 100;

/// The smallest round width that gives at most about a hundred buckets over
/// `[from, to)`.
pub(crate) fn auto_interval(from: Timestamp, to: Timestamp) -> SignedDuration {
    let span = to.duration_since(from).as_nanos().max(1);
    ROUND_INTERVALS
        .into_iter()
        .find(|w| (span + w.as_nanos() - 1) / w.as_nanos() <= TARGET_BUCKETS)
        .unwrap_or(ROUND_INTERVALS[ROUND_INTERVALS.len() - 1])
}

/// The start of the bucket of width `interval` holding `t`.
fn bucket_start(t: Timestamp, interval: SignedDuration) -> Result<Timestamp, QueryError> {
    let step = interval.as_nanos();
    let nanos = t.as_nanosecond().div_euclid(step) * step;
    Timestamp::from_nanosecond(nanos)
        .map_err(|e| QueryError::invalid(format!("time range out of bounds: {e}")))
}

fn terms_field(field: i32) -> Result<(TermsField, v1::TopField), QueryError> {
    match v1::TopField::try_from(field) {
        Ok(v1::TopField::Verb) => Ok((TermsField::Verb, v1::TopField::Verb)),
        Ok(v1::TopField::Resource) => Ok((TermsField::Resource, v1::TopField::Resource)),
        Ok(v1::TopField::User) => Ok((TermsField::Username, v1::TopField::User)),
        Ok(v1::TopField::Namespace) => Ok((TermsField::Namespace, v1::TopField::Namespace)),
        Ok(v1::TopField::Unspecified) | Err(_) => Err(QueryError::invalid(format!(
            "top field {field} is not one of VERB, RESOURCE, USER, NAMESPACE"
        ))),
    }
}

fn interval_of(d: &prost_types::Duration) -> Result<SignedDuration, QueryError> {
    let interval = SignedDuration::new(d.seconds, d.nanos);
    if interval < SignedDuration::from_secs(1) {
        return Err(QueryError::invalid(format!(
            "interval {interval:?} is below the minimum of 1s"
        )));
    }
    // Elasticsearch's date histograms are millisecond-grained: the same
    // interval must mean the same buckets whichever store answers.
    if interval.subsec_nanos() % 1_000_000 != 0 {
        return Err(QueryError::invalid(format!(
            "interval {interval:?} is not a whole number of milliseconds"
        )));
    }
    Ok(interval)
}

/// The time of the first event matching `query` in `sort` order, if any.
pub(crate) async fn first_time(
    store: &dyn Store,
    query: Query,
    sort: SortOrder,
) -> Result<Option<Timestamp>, QueryError> {
    let page = store
        .search(SearchRequest {
            query,
            sort,
            limit: 1,
            after: None,
            include_raw: false,
            count: CountMode::None,
        })
        .await
        .map_err(QueryError::from)?;
    Ok(page.events.first().map(|e| e.time))
}

pub(crate) async fn histogram(
    store: &dyn Store,
    request: v1::HistogramRequest,
    now: Timestamp,
    caller: &Caller,
) -> Result<v1::HistogramResponse, QueryError> {
    let filter =
        with_timeline(request.filter.as_ref(), request.timeline).map_err(QueryError::from)?;
    let (from, to) = resolve_range(&filter.from, &filter.to, now).map_err(QueryError::from)?;
    let query = to_query(&filter, request.timeline, from, to).map_err(QueryError::from)?;
    let query = scope::restrict(query, &filter, caller, "read")?;
    let top_n = match request.top_n {
        0 => 10,
        n if n <= MAX_TOP_N => n,
        n => {
            return Err(QueryError::invalid(format!(
                "top_n {n} is above the maximum of {MAX_TOP_N}"
            )));
        }
    };
    let mut fields: Vec<(TermsField, v1::TopField)> = Vec::new();
    for f in &request.top_fields {
        let f = terms_field(*f)?;
        if !fields.contains(&f) {
            fields.push(f);
        }
    }
    let explicit = request.interval.as_ref().map(interval_of).transpose()?;
    // The range starts at `from`, or at the oldest matching event.
    let start = match from {
        Some(from) => Some(from),
        None => first_time(store, query.clone(), SortOrder::OldestFirst).await?,
    };
    let interval = explicit
        .or_else(|| start.map(|s| auto_interval(s, to)))
        .unwrap_or(ROUND_INTERVALS[0]);
    let empty_top = || {
        fields
            .iter()
            .map(|(_, f)| v1::TopValues {
                field: *f as i32,
                values: Vec::new(),
                other_count: 0,
            })
            .collect()
    };
    let Some(start) = start.filter(|s| *s < to) else {
        return Ok(v1::HistogramResponse {
            buckets: Vec::new(),
            interval: Some(duration(interval)),
            top_values: empty_top(),
            total: 0,
        });
    };
    let first = bucket_start(start, interval)?;
    let last = bucket_start(to - SignedDuration::from_nanos(1), interval)?;
    let count = last.duration_since(first).as_nanos() / interval.as_nanos() + 1;
    if count > MAX_BUCKETS {
        return Err(QueryError::invalid(format!(
            "interval {interval:?} gives {count} buckets over the range; at most {MAX_BUCKETS} \
             are allowed"
        )));
    }
    let answer = store
        .histogram(HistogramRequest {
            query,
            interval,
            terms: fields.iter().map(|(t, _)| *t).collect(),
            top_n: top_n as usize,
        })
        .await
        .map_err(QueryError::from)?;
    let mut counts: BTreeMap<Timestamp, u64> = answer.buckets;
    let mut buckets = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    let mut at = first;
    while at <= last {
        buckets.push(v1::HistogramBucket {
            start: Some(timestamp(at)),
            count: counts.remove(&at).unwrap_or(0),
        });
        at += interval;
    }
    let top_values = fields
        .iter()
        .zip(answer.terms)
        .map(|((_, field), top)| v1::TopValues {
            field: *field as i32,
            values: top
                .values
                .into_iter()
                .map(|(value, count)| v1::TopValueCount { value, count })
                .collect(),
            other_count: top.other,
        })
        .collect();
    Ok(v1::HistogramResponse {
        buckets,
        interval: Some(duration(interval)),
        top_values,
        total: answer.total,
    })
}

fn duration(d: SignedDuration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: d.as_secs(),
        nanos: d.subsec_nanos(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_whole_milliseconds_of_at_least_a_second() {
        let of = |seconds, nanos| interval_of(&prost_types::Duration { seconds, nanos });
        assert_eq!(
            of(1, 500_000_000).expect("1.5s"),
            SignedDuration::from_millis(1500)
        );
        let err = of(1, 500).expect_err("sub-millisecond").to_string();
        assert!(err.contains("whole number of milliseconds"), "{err}");
        let err = of(0, 999_000_000).expect_err("under a second").to_string();
        assert!(err.contains("minimum of 1s"), "{err}");
    }

    #[test]
    fn auto_intervals_are_round_and_give_at_most_a_hundred_buckets() {
        let t = |s: &str| s.parse::<Timestamp>().expect("time");
        let from = t("2026-01-01T00:00:00Z");
        let cases = [
            ("2026-01-01T00:00:30Z", SignedDuration::from_secs(1)),
            ("2026-01-01T00:15:00Z", SignedDuration::from_secs(10)),
            ("2026-01-01T01:00:00Z", SignedDuration::from_mins(1)),
            ("2026-01-02T00:00:00Z", SignedDuration::from_mins(30)),
            ("2026-01-31T00:00:00Z", SignedDuration::from_hours(12)),
            ("2027-01-01T00:00:00Z", SignedDuration::from_hours(24 * 7)),
        ];
        for (to, want) in cases {
            assert_eq!(auto_interval(from, t(to)), want, "to {to}");
        }
    }

    #[test]
    fn buckets_align_to_the_epoch() {
        let t: Timestamp = "2026-01-01T00:07:31.5Z".parse().expect("time");
        let start = bucket_start(t, SignedDuration::from_mins(5)).expect("start");
        assert_eq!(start.to_string(), "2026-01-01T00:05:00Z");
        let before: Timestamp = "1969-12-31T23:59:59Z".parse().expect("time");
        let start = bucket_start(before, SignedDuration::from_mins(1)).expect("start");
        assert_eq!(start.to_string(), "1969-12-31T23:59:00Z");
    }
}
