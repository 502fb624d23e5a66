//! Histogram: buckets, alignment, automatic width, top values, bad
//! requests; expectations counted in memory from the source lines, by
//! the reference histogram of `auditrail-store-conformance`.

use auditrail_proto::v1;
use auditrail_store_conformance::{bucket_counts, bucket_start};
use jiff::{SignedDuration, Timestamp};
use tonic::Code;

use crate::common::{Ev, dataset, expect_code, filter, on_timeline, serve, strings, time_of};

fn seconds(s: i64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: s,
        nanos: 0,
    }
}

/// Counts of `events` in each bucket from `first` to `last` (bucket starts).
fn buckets(
    events: &[&Ev],
    first: Timestamp,
    last: Timestamp,
    interval: SignedDuration,
) -> Vec<(Timestamp, u64)> {
    let mut counts = bucket_counts(events.iter().map(|e| e.time), interval);
    let mut out = Vec::new();
    let mut at = first;
    while at <= last {
        out.push((at, counts.remove(&at).unwrap_or(0)));
        at += interval;
    }
    assert!(
        counts.is_empty(),
        "every event falls in a bucket of the range"
    );
    out
}

fn got_buckets(answer: &v1::HistogramResponse) -> Vec<(Timestamp, u64)> {
    answer
        .buckets
        .iter()
        .map(|b| (time_of(b.start.as_ref()), b.count))
        .collect()
}

fn top_values(events: &[&Ev], field: v1::TopField, top_n: usize) -> v1::TopValues {
    let value = |e: &&Ev| -> String {
        match field {
            v1::TopField::Verb => e.verb.clone(),
            v1::TopField::Resource => e.resource.clone(),
            v1::TopField::User => e.user.clone(),
            v1::TopField::Namespace => e.namespace.clone(),
            v1::TopField::Unspecified => unreachable!("not asked"),
        }
    };
    let (values, other) = auditrail_store_conformance::top_values(events.iter().map(value), top_n);
    v1::TopValues {
        field: field as i32,
        values: values
            .into_iter()
            .map(|(value, count)| v1::TopValueCount { value, count })
            .collect(),
        other_count: other,
    }
}

/// The automatic width by the contract: the smallest round width giving at
/// most 100 buckets over the range, else the largest.
fn auto_width(start: Timestamp, to: Timestamp) -> SignedDuration {
    let round = [
        1,
        5,
        10,
        30,
        60,
        300,
        600,
        1800,
        3600,
        3 * 3600,
        12 * 3600,
        86_400,
        7 * 86_400,
    ]
    .map(SignedDuration::from_secs);
    let last = to - SignedDuration::from_nanos(1);
    round
        .iter()
        .copied()
        .find(|&w| {
            let n = bucket_start(last, w)
                .duration_since(bucket_start(start, w))
                .as_nanos()
                / w.as_nanos()
                + 1;
            n <= 100
        })
        .unwrap_or(round[round.len() - 1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histogram_counts_buckets_and_top_values() {
    let data = dataset();
    let (_dir, _store, mut server) = serve(data).await;
    let client = &mut server.client;
    let alpha_filter = |from: &str, to: &str| v1::Filter {
        clusters: strings(&["alpha"]),
        from: from.into(),
        to: to.into(),
        ..filter()
    };
    let minute = SignedDuration::from_mins(1);

    // Explicit width, a range that starts and ends inside buckets, every
    // top field (one twice: duplicates are ignored).
    let (from, to): (Timestamp, Timestamp) = (
        "2026-01-01T00:00:30Z".parse().expect("t"),
        "2026-01-01T00:59:45Z".parse().expect("t"),
    );
    let answer = client
        .histogram(v1::HistogramRequest {
            filter: Some(alpha_filter(&from.to_string(), &to.to_string())),
            interval: Some(seconds(60)),
            top_fields: vec![
                v1::TopField::Verb as i32,
                v1::TopField::Resource as i32,
                v1::TopField::Verb as i32,
                v1::TopField::User as i32,
                v1::TopField::Namespace as i32,
            ],
            top_n: 3,
            timeline: false,
        })
        .await
        .expect("histogram")
        .into_inner();
    let matching: Vec<&Ev> = data
        .iter()
        .filter(|e| e.cluster == "alpha" && e.time >= from && e.time < to)
        .collect();
    let last = bucket_start(to - SignedDuration::from_nanos(1), minute);
    let want = buckets(&matching, bucket_start(from, minute), last, minute);
    assert_eq!(want.len(), 60);
    assert!(
        want.iter().any(|(_, n)| *n == 0),
        "the range has empty buckets"
    );
    assert_eq!(got_buckets(&answer), want);
    assert_eq!(answer.interval, Some(seconds(60)));
    assert_eq!(answer.total, matching.len() as u64);
    let fields = [
        v1::TopField::Verb,
        v1::TopField::Resource,
        v1::TopField::User,
        v1::TopField::Namespace,
    ];
    let want_top: Vec<v1::TopValues> = fields
        .iter()
        .map(|f| top_values(&matching, *f, 3))
        .collect();
    assert_eq!(answer.top_values, want_top);

    // No `from`: the range starts at the oldest matching event's bucket; the
    // width is chosen; top_n 0 means 10.
    let to: Timestamp = "2026-01-01T01:00:00Z".parse().expect("t");
    let answer = client
        .histogram(v1::HistogramRequest {
            filter: Some(alpha_filter("", &to.to_string())),
            top_fields: vec![v1::TopField::Namespace as i32, v1::TopField::User as i32],
            ..v1::HistogramRequest::default()
        })
        .await
        .expect("histogram")
        .into_inner();
    let matching: Vec<&Ev> = data
        .iter()
        .filter(|e| e.cluster == "alpha" && e.time < to)
        .collect();
    let oldest = matching.iter().map(|e| e.time).min().expect("events");
    let width = auto_width(oldest, to);
    assert_eq!(answer.interval, Some(seconds(width.as_secs())));
    let last = bucket_start(to - SignedDuration::from_nanos(1), width);
    assert_eq!(
        got_buckets(&answer),
        buckets(&matching, bucket_start(oldest, width), last, width)
    );
    assert_eq!(
        answer.top_values,
        vec![
            top_values(&matching, v1::TopField::Namespace, 10),
            top_values(&matching, v1::TopField::User, 10)
        ]
    );

    // No range at all over years of events: the widest round width, from the
    // oldest event's bucket to now's.
    let before = Timestamp::now();
    let answer = client
        .histogram(v1::HistogramRequest {
            filter: Some(v1::Filter {
                clusters: strings(&["beta"]),
                ..filter()
            }),
            ..v1::HistogramRequest::default()
        })
        .await
        .expect("histogram")
        .into_inner();
    let after = Timestamp::now();
    let matching: Vec<&Ev> = data.iter().filter(|e| e.cluster == "beta").collect();
    let oldest = matching.iter().map(|e| e.time).min().expect("events");
    let week = SignedDuration::from_hours(24 * 7);
    assert_eq!(auto_width(oldest, before), week);
    assert_eq!(answer.interval, Some(seconds(week.as_secs())));
    let got = got_buckets(&answer);
    let last = got.last().expect("buckets").0;
    let nanosecond = SignedDuration::from_nanos(1);
    assert!(
        last == bucket_start(before - nanosecond, week)
            || last == bucket_start(after - nanosecond, week)
    );
    assert_eq!(
        got,
        buckets(&matching, bucket_start(oldest, week), last, week)
    );
    assert_eq!(answer.total, matching.len() as u64);

    // A range with no match: every bucket is there, empty.
    let answer = client
        .histogram(v1::HistogramRequest {
            filter: Some(v1::Filter {
                verbs: strings(&["trace"]),
                ..alpha_filter("2026-01-01T00:00:00Z", "2026-01-01T00:10:00Z")
            }),
            interval: Some(seconds(60)),
            top_fields: vec![v1::TopField::Verb as i32],
            ..v1::HistogramRequest::default()
        })
        .await
        .expect("histogram")
        .into_inner();
    let start: Timestamp = "2026-01-01T00:00:00Z".parse().expect("t");
    let empty: Vec<(Timestamp, u64)> = (0..10).map(|i| (start + minute * i, 0)).collect();
    assert_eq!(got_buckets(&answer), empty);
    assert_eq!(answer.total, 0);
    assert_eq!(
        answer.top_values,
        vec![top_values(&[], v1::TopField::Verb, 10)]
    );

    // The timeline mode counts the timeline's events.
    let (from, to): (Timestamp, Timestamp) = (
        "2026-01-01T00:00:00Z".parse().expect("t"),
        "2026-01-01T01:00:00Z".parse().expect("t"),
    );
    let answer = client
        .histogram(v1::HistogramRequest {
            filter: Some(alpha_filter(&from.to_string(), &to.to_string())),
            interval: Some(seconds(300)),
            timeline: true,
            ..v1::HistogramRequest::default()
        })
        .await
        .expect("histogram")
        .into_inner();
    let matching: Vec<&Ev> = data
        .iter()
        .filter(|e| e.cluster == "alpha" && e.time >= from && e.time < to && on_timeline(e))
        .collect();
    let five = SignedDuration::from_mins(5);
    assert_eq!(
        got_buckets(&answer),
        buckets(&matching, from, bucket_start(to - nanosecond, five), five)
    );

    // At most 10000 buckets: exactly 10000 is fine, one more is not.
    let day_start = "2026-01-01T00:00:00Z";
    let ok = client
        .histogram(v1::HistogramRequest {
            filter: Some(alpha_filter(day_start, "2026-01-01T02:46:40Z")),
            interval: Some(seconds(1)),
            ..v1::HistogramRequest::default()
        })
        .await
        .expect("10000 buckets")
        .into_inner();
    assert_eq!(ok.buckets.len(), 10_000);

    let bad = [
        (
            "half a second",
            Some(prost_types::Duration {
                seconds: 0,
                nanos: 500_000_000,
            }),
            vec![],
            0,
            "2026-01-01T00:10:00Z",
        ),
        (
            "zero interval",
            Some(seconds(0)),
            vec![],
            0,
            "2026-01-01T00:10:00Z",
        ),
        (
            "negative interval",
            Some(seconds(-60)),
            vec![],
            0,
            "2026-01-01T00:10:00Z",
        ),
        (
            "10001 buckets",
            Some(seconds(1)),
            vec![],
            0,
            "2026-01-01T02:46:41Z",
        ),
        (
            "a day of seconds",
            Some(seconds(1)),
            vec![],
            0,
            "2026-01-02T00:00:00Z",
        ),
        (
            "top_n 101",
            None,
            vec![v1::TopField::Verb as i32],
            101,
            "2026-01-01T00:10:00Z",
        ),
        (
            "unspecified top field",
            None,
            vec![v1::TopField::Unspecified as i32],
            0,
            "2026-01-01T00:10:00Z",
        ),
        (
            "unknown top field",
            None,
            vec![99],
            0,
            "2026-01-01T00:10:00Z",
        ),
        ("from after to", None, vec![], 0, "2025-12-31T00:00:00Z"),
    ];
    for (what, interval, top_fields, top_n, to) in bad {
        let request = v1::HistogramRequest {
            filter: Some(alpha_filter(day_start, to)),
            interval,
            top_fields,
            top_n,
            timeline: false,
        };
        expect_code(client.histogram(request).await, Code::InvalidArgument, what);
    }
    server.stop().await;
}
