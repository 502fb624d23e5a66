//! The `Store` contract on the tantivy backend. Every expectation is computed
//! in the test from the events written (an in-memory evaluation of the
//! query, a sort of the events), never pasted.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;
use std::sync::Arc;

use auditrail_event::{EventId, EventType};
use auditrail_store::{
    CountMode, Field, Histogram, HistogramRequest, IndexedEvent, Query, SearchRequest, SortOrder,
    Store, StoreError, TermsField, Value, top_terms,
};
use auditrail_store_tantivy::{TantivyOptions, TantivyStore};
use common::{all_pages, edge, generated, index, matches, open, real, sorted, ties, write_all};
use jiff::{SignedDuration, Timestamp};

/// Two clusters of generated events, the real samples, the edge cases, a
/// group of events sharing one timestamp, and the same lines in both clusters
/// (different events: the id includes the cluster).
fn dataset() -> Vec<IndexedEvent> {
    let mut events = generated("alpha", 1, "2026-01-01T00:00:00Z", 1800);
    events.extend(generated("beta", 2, "2026-01-01T00:00:30Z", 1200));
    events.extend(generated("beta", 1, "2026-01-01T00:00:00Z", 100));
    events.extend(real("alpha"));
    events.extend(edge("alpha"));
    events.extend(edge("beta"));
    events.extend(ties("alpha", "2026-01-01T00:01:00.123456Z", 40));
    events.extend(ties("beta", "2026-01-01T00:01:00.123456Z", 25));
    events
}

fn distinct(events: &[IndexedEvent]) -> Vec<IndexedEvent> {
    let mut seen = HashSet::new();
    events
        .iter()
        .filter(|e| seen.insert(e.id))
        .cloned()
        .collect()
}

async fn loaded() -> (tempfile::TempDir, TantivyStore, Vec<IndexedEvent>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let events = dataset();
    write_all(&store, &events, 700).await;
    let stored = distinct(&events);
    (dir, store, stored)
}

#[tokio::test]
async fn writes_are_idempotent_by_event_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let events = dataset();
    let pairs: HashSet<(&str, &[u8])> = events
        .iter()
        .map(|e| (e.cluster.as_str(), e.raw.as_slice()))
        .collect();

    let mut inserted = 0;
    for chunk in events.chunks(500) {
        let outcome = store.write(chunk.to_vec()).await.expect("write");
        assert_eq!(outcome.inserted + outcome.duplicates, chunk.len() as u64);
        inserted += outcome.inserted;
    }
    assert_eq!(inserted, pairs.len() as u64);
    assert_eq!(
        store.count(&Query::All).await.expect("count"),
        pairs.len() as u64
    );

    // A re-send of everything, in other batches, changes nothing.
    for chunk in events.chunks(1300) {
        let outcome = store.write(chunk.to_vec()).await.expect("write");
        assert_eq!(outcome.inserted, 0);
        assert_eq!(outcome.duplicates, chunk.len() as u64);
    }
    assert_eq!(
        store.count(&Query::All).await.expect("count"),
        pairs.len() as u64
    );

    // The same new event twice in one batch is stored once.
    let fresh = generated("gamma", 9, "2026-02-01T00:00:00Z", 1).remove(0);
    let outcome = store
        .write(vec![fresh.clone(), fresh.clone()])
        .await
        .expect("write");
    assert_eq!((outcome.inserted, outcome.duplicates), (1, 1));
    let q = Query::eq(Field::Id, fresh.id.to_hex());
    assert_eq!(store.count(&q).await.expect("count"), 1);
    assert_eq!(
        store.count(&Query::All).await.expect("count"),
        pairs.len() as u64 + 1
    );
}

#[tokio::test]
async fn events_sharing_audit_id_and_stage_are_all_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    // The elastic sample: two different events with one auditID and stage.
    let events = real("c");
    let mut groups: HashMap<(String, Option<&str>), HashSet<EventId>> = HashMap::new();
    for e in &events {
        groups
            .entry((
                e.audit_id.clone(),
                e.stage.map(auditrail_event::Stage::as_str),
            ))
            .or_default()
            .insert(e.id);
    }
    let shared: Vec<_> = groups.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(
        !shared.is_empty(),
        "the samples hold events sharing auditID and stage"
    );
    store.write(events.clone()).await.expect("write");
    for ((audit_id, stage), ids) in shared {
        let q = Query::And(vec![
            Query::eq(Field::AuditId, audit_id.clone()),
            Query::eq(Field::Stage, stage.unwrap_or_default()),
        ]);
        assert_eq!(store.count(&q).await.expect("count"), ids.len() as u64);
    }
}

/// One query per field and operation, with values taken from the data.
#[allow(clippy::too_many_lines)] // a table of queries
fn queries(events: &[IndexedEvent]) -> Vec<Query> {
    let most = |f: &dyn Fn(&IndexedEvent) -> String| {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for e in events {
            *counts.entry(f(e)).or_default() += 1;
        }
        counts
            .into_iter()
            .filter(|(v, _)| !v.is_empty())
            .max_by_key(|(_, n)| *n)
            .map(|(v, _)| v)
            .expect("a value")
    };
    let mut times: Vec<Timestamp> = events.iter().map(|e| e.time).collect();
    times.sort();
    let t = |q: usize| times[times.len() * q / 100];
    let some = &events[events.len() / 3];
    let received = events
        .iter()
        .find_map(|e| e.request_received)
        .expect("a request time");
    let stage_ts = events
        .iter()
        .rev()
        .find_map(|e| e.stage_timestamp)
        .expect("a stage time");
    let tie_time = events
        .iter()
        .find(|e| e.audit_id == "tie-0")
        .expect("tie events")
        .time;
    let verb = most(&|e| e.verb.clone());
    let user = most(&|e| e.username.clone());
    let namespace = most(&|e| e.namespace.clone());
    let ip = most(&|e| e.source_ips.first().cloned().unwrap_or_default());
    let group = "system:authenticated".to_owned();
    let s = |v: &str| Value::Str(v.to_owned());
    let range = |field, lower, upper| Query::Range {
        field,
        lower,
        upper,
    };
    vec![
        Query::All,
        Query::eq(Field::Id, some.id.to_hex()),
        Query::eq(Field::Cluster, "beta"),
        Query::In(Field::Cluster, vec![s("alpha"), s("nope")]),
        Query::eq(Field::Type, "ee"),
        Query::eq(Field::Type, "kube"),
        Query::eq(Field::Level, "RequestResponse"),
        Query::In(Field::Level, vec![s("Request"), s("Metadata")]),
        Query::eq(Field::Stage, "ResponseComplete"),
        Query::eq(Field::Stage, ""),
        Query::eq(Field::AuditId, some.audit_id.clone()),
        Query::eq(Field::Verb, verb.clone()),
        Query::In(
            Field::Verb,
            vec![s("create"), s("update"), s("patch"), s("delete")],
        ),
        Query::eq(Field::Username, user.clone()),
        Query::eq(Field::UserGroups, group.clone()),
        Query::eq(Field::UserGroups, ""),
        Query::In(Field::UserGroups, vec![s("netsec"), s("system:masters")]),
        Query::eq(Field::SourceIps, ip),
        Query::eq(Field::SourceIps, "10.9.0.2"),
        Query::eq(Field::SourceIps, ""),
        Query::eq(Field::Resource, "networkpolicies"),
        Query::eq(Field::Namespace, namespace.clone()),
        Query::eq(Field::Namespace, ""),
        Query::eq(Field::ObjectName, some.object_name.clone()),
        Query::eq(Field::ApiGroup, "projectcalico.org"),
        Query::eq(Field::ApiGroup, ""),
        Query::eq(Field::ApiVersion, "v1"),
        Query::eq(Field::Subresource, "log"),
        Query::eq(Field::Name, some.name.clone()),
        Query::eq(Field::Kind, some.kind.clone()),
        Query::eq(Field::Kind, some.kind.to_lowercase()),
        Query::In(Field::Kind, vec![s(&some.kind.to_uppercase()), s("Nope")]),
        Query::eq(Field::RequestUri, some.request_uri.clone()),
        Query::Eq(Field::ResponseCode, Value::Int(200)),
        Query::Eq(Field::ResponseCode, Value::Int(0)),
        Query::In(
            Field::ResponseCode,
            vec![Value::Int(403), Value::Int(404), Value::Int(409)],
        ),
        range(
            Field::ResponseCode,
            Bound::Included(Value::Int(400)),
            Bound::Unbounded,
        ),
        range(
            Field::ResponseCode,
            Bound::Excluded(Value::Int(200)),
            Bound::Excluded(Value::Int(404)),
        ),
        range(Field::ResponseCode, Bound::Unbounded, Bound::Unbounded),
        Query::Eq(Field::DryRun, Value::Bool(true)),
        Query::Eq(Field::DryRun, Value::Bool(false)),
        Query::Eq(Field::RequestReceived, Value::Time(received)),
        Query::Eq(Field::StageTimestamp, Value::Time(stage_ts)),
        Query::Eq(Field::Time, Value::Time(tie_time)),
        Query::In(Field::Time, vec![Value::Time(tie_time), Value::Time(t(50))]),
        Query::time_range(Some(t(20)), Some(t(60))),
        Query::time_range(None, Some(t(10))),
        Query::time_range(Some(t(90)), None),
        range(
            Field::Time,
            Bound::Excluded(Value::Time(t(30))),
            Bound::Included(Value::Time(t(40))),
        ),
        range(
            Field::RequestReceived,
            Bound::Included(Value::Time(t(50))),
            Bound::Unbounded,
        ),
        range(Field::StageTimestamp, Bound::Unbounded, Bound::Unbounded),
        Query::Contains(Field::RequestUri, "dryRun".into()),
        Query::Contains(Field::RequestUri, "/namespaces/kube-system/".into()),
        Query::Contains(Field::Username, "example".into()),
        Query::Contains(Field::Name, ".".into()),
        Query::Contains(Field::Name, "+b(c)[d]*?".into()),
        Query::Contains(Field::Namespace, namespace[1..3].to_owned()),
        Query::Contains(Field::RequestUri, String::new()),
        Query::And(vec![
            Query::eq(Field::Verb, verb.clone()),
            Query::eq(Field::Username, user.clone()),
            Query::time_range(Some(t(25)), None),
        ]),
        Query::Or(vec![
            Query::eq(Field::Type, "ee"),
            Query::Eq(Field::ResponseCode, Value::Int(404)),
        ]),
        Query::Not(Box::new(Query::eq(Field::Verb, verb.clone()))),
        Query::Not(Box::new(Query::Eq(Field::ResponseCode, Value::Int(200)))),
        Query::And(vec![
            Query::Not(Box::new(Query::eq(Field::Namespace, ""))),
            Query::Or(vec![
                Query::eq(Field::Cluster, "alpha"),
                Query::Not(Box::new(Query::Contains(Field::Username, "system".into()))),
            ]),
        ]),
        Query::And(vec![]),
        Query::Or(vec![]),
        Query::In(Field::Verb, vec![]),
    ]
}

#[tokio::test]
async fn every_filter_matches_an_in_memory_evaluation() {
    let (_dir, store, events) = loaded().await;
    for query in queries(&events) {
        let expected: Vec<&IndexedEvent> = events.iter().filter(|e| matches(e, &query)).collect();
        let count = store.count(&query).await.expect("count");
        assert_eq!(count, expected.len() as u64, "count of {query:?}");
        // Walked page by page, in both orders: the events and their order.
        for order in [SortOrder::NewestFirst, SortOrder::OldestFirst] {
            let want: Vec<_> = expected.iter().map(|e| (e.time, e.id)).collect();
            let want = {
                let mut w = want;
                w.sort();
                if order == SortOrder::NewestFirst {
                    w.reverse();
                }
                w
            };
            let got: Vec<_> = all_pages(&store, &query, order, 250)
                .await
                .into_iter()
                .map(|e| (e.time, e.id))
                .collect();
            assert_eq!(got, want, "{order:?} {query:?}");
        }
    }
}

#[tokio::test]
async fn mistyped_queries_and_bad_clusters_are_invalid_requests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let bad = [
        Query::Eq(Field::Time, Value::Str("yesterday".into())),
        Query::Range {
            field: Field::Verb,
            lower: Bound::Included(Value::Str("a".into())),
            upper: Bound::Unbounded,
        },
        Query::Contains(Field::AuditId, "x".into()),
        Query::Eq(Field::ResponseCode, Value::Str("200".into())),
    ];
    for q in bad {
        assert!(
            matches!(store.count(&q).await, Err(StoreError::InvalidRequest(_))),
            "{q:?}"
        );
    }
    for cluster in ["", "..", "a/b", "x y"] {
        let mut event = generated("ok", 3, "2026-01-01T00:00:00Z", 1).remove(0);
        event.cluster = cluster.to_owned();
        let good = generated("ok", 3, "2026-01-01T00:00:00Z", 2).remove(1);
        let result = store.write(vec![good, event]).await;
        assert!(
            matches!(result, Err(StoreError::InvalidRequest(_))),
            "{cluster:?}: {result:?}"
        );
    }
    // Bytes that are not UTF-8 cannot be an audit event (JSON); the good
    // event before it in the batch is refused with it.
    let mut batch = generated("ok", 3, "2026-01-01T00:00:00Z", 2);
    batch[1].raw.push(0xff);
    let result = store.write(batch).await;
    assert!(
        matches!(result, Err(StoreError::InvalidRequest(ref m)) if m.contains("UTF-8")),
        "{result:?}"
    );
    // Nothing of a refused batch was written.
    assert_eq!(store.count(&Query::All).await.expect("count"), 0);
    assert!(store.clusters().is_empty());
}

#[tokio::test]
async fn paging_is_exact_while_events_arrive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let mut stored = dataset();
    write_all(&store, &stored, 1000).await;
    stored = distinct(&stored);
    // Events that arrive while paging: older and newer than everything.
    let mut older = generated("alpha", 7, "2025-06-01T00:00:00Z", 600).into_iter();
    let mut newer = generated("beta", 8, "2026-09-01T00:00:00Z", 600).into_iter();
    for order in [SortOrder::NewestFirst, SortOrder::OldestFirst] {
        let at_start = stored.clone();
        let want = sorted(&at_start, order);
        let known: HashSet<EventId> = at_start.iter().map(|e| e.id).collect();
        let mut seen = HashSet::new();
        let mut sequence = Vec::new();
        let mut after = None;
        let mut pages = 0;
        loop {
            let page = store
                .search(SearchRequest {
                    query: Query::All,
                    sort: order,
                    limit: 97,
                    after,
                    include_raw: false,
                    count: CountMode::Exact,
                })
                .await
                .expect("search");
            if pages == 0 {
                assert_eq!(
                    page.total.map(|t| (t.count, t.exact)),
                    Some((at_start.len() as u64, true))
                );
            }
            pages += 1;
            for e in &page.events {
                assert!(seen.insert(e.id), "{order:?}: {} repeated", e.id);
                sequence.push((e.time, e.id));
            }
            // Between pages: a few events older and newer than all others.
            let batch: Vec<_> = older
                .by_ref()
                .take(4)
                .chain(newer.by_ref().take(4))
                .collect();
            store.write(batch.clone()).await.expect("write");
            stored.extend(batch);
            match page.next {
                Some(cursor) => after = Some(cursor),
                None => break,
            }
        }
        assert!(pages > 10, "several pages walked");
        // The order is strict and in the requested direction...
        for pair in sequence.windows(2) {
            match order {
                SortOrder::NewestFirst => assert!(pair[0] > pair[1], "{pair:?}"),
                SortOrder::OldestFirst => assert!(pair[0] < pair[1], "{pair:?}"),
            }
        }
        // ...and every event that existed at the start is seen exactly once,
        // in its place.
        let of_start: Vec<_> = sequence
            .iter()
            .copied()
            .filter(|(_, id)| known.contains(id))
            .collect();
        assert_eq!(of_start, want, "{order:?}");
    }
}

#[tokio::test]
async fn ties_on_time_are_ordered_by_id_and_cursors_split_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let events = ties("alpha", "2026-01-01T00:00:00Z", 50);
    store.write(events.clone()).await.expect("write");
    let mut ids: Vec<EventId> = events.iter().map(|e| e.id).collect();
    ids.sort();
    for order in [SortOrder::OldestFirst, SortOrder::NewestFirst] {
        let mut want = ids.clone();
        if order == SortOrder::NewestFirst {
            want.reverse();
        }
        // Pages of 1 and 7: every cursor lands inside the tie group.
        for limit in [1, 7] {
            let got: Vec<EventId> = all_pages(&store, &Query::All, order, limit)
                .await
                .into_iter()
                .map(|e| e.id)
                .collect();
            assert_eq!(got, want, "{order:?} limit {limit}");
        }
    }
}

#[tokio::test]
async fn sub_microsecond_times_are_floored_consistently() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let line = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"ns","stage":"ResponseComplete","requestURI":"/x","verb":"get","user":{"username":"u"},"stageTimestamp":"2026-01-01T00:00:00.000001500Z"}"#;
    let event = index("alpha", line.as_bytes());
    let exact = event.time;
    let floor = Timestamp::from_microsecond(exact.as_microsecond()).expect("time");
    assert!(floor < exact, "the sample has a sub-microsecond part");
    store.write(vec![event.clone()]).await.expect("write");
    let got = store.get(&event.id).await.expect("get").expect("stored");
    assert_eq!(got.time, floor);
    // Ranges compare the stored (floored) time.
    let count = |lower, upper| {
        let store = store.clone();
        async move {
            store
                .count(&Query::Range {
                    field: Field::Time,
                    lower,
                    upper,
                })
                .await
                .expect("count")
        }
    };
    let v = Value::Time;
    assert_eq!(count(Bound::Included(v(floor)), Bound::Unbounded).await, 1);
    assert_eq!(count(Bound::Included(v(exact)), Bound::Unbounded).await, 0);
    assert_eq!(count(Bound::Unbounded, Bound::Excluded(v(exact))).await, 1);
    assert_eq!(count(Bound::Unbounded, Bound::Excluded(v(floor))).await, 0);
    assert_eq!(count(Bound::Excluded(v(floor)), Bound::Unbounded).await, 0);
    let nudge = |t: Timestamp, ns| t.checked_add(SignedDuration::from_nanos(ns)).expect("time");
    assert_eq!(
        count(Bound::Excluded(v(nudge(floor, -1))), Bound::Unbounded).await,
        1
    );
    assert_eq!(
        count(Bound::Unbounded, Bound::Included(v(nudge(floor, 999)))).await,
        1
    );
    // A cursor with a sub-microsecond time sits between stored times.
    let others = ties("alpha", "2026-01-01T00:00:00.000001Z", 3);
    store.write(others).await.expect("write");
    for (order, want) in [(SortOrder::OldestFirst, 0), (SortOrder::NewestFirst, 4)] {
        let page = store
            .search(SearchRequest {
                query: Query::All,
                sort: order,
                limit: 10,
                after: Some(auditrail_store::Cursor {
                    time: nudge(floor, 1),
                    id: event.id,
                }),
                include_raw: false,
                count: CountMode::None,
            })
            .await
            .expect("search");
        assert_eq!(page.events.len(), want, "{order:?}");
    }
}

#[tokio::test]
async fn get_returns_the_original_bytes_and_include_raw_is_honoured() {
    let (_dir, store, events) = loaded().await;
    for e in events.iter().step_by(97).chain(edge("beta").iter()) {
        let got = store.get(&e.id).await.expect("get").expect("stored");
        assert_eq!(got.id, e.id);
        assert_eq!(got.cluster, e.cluster);
        assert_eq!(got.event_type, e.event_type);
        assert_eq!(got.time, e.time);
        assert_eq!(got.raw, e.raw);
    }
    let unknown = EventId::compute("alpha", b"never written");
    assert_eq!(store.get(&unknown).await.expect("get"), None);

    let by_id: HashMap<EventId, &IndexedEvent> = events.iter().map(|e| (e.id, e)).collect();
    for include_raw in [false, true] {
        let page = store
            .search(SearchRequest {
                query: Query::All,
                sort: SortOrder::NewestFirst,
                limit: 300,
                after: None,
                include_raw,
                count: CountMode::None,
            })
            .await
            .expect("search");
        assert_eq!(page.events.len(), 300);
        for got in page.events {
            let want = by_id[&got.id];
            if include_raw {
                assert_eq!(got.raw, want.raw);
            } else {
                assert!(got.raw.is_empty());
            }
        }
    }
}

#[tokio::test]
async fn delete_before_removes_exactly_the_older_events() {
    let (_dir, store, events) = loaded().await;
    let mut times: Vec<Timestamp> = events.iter().map(|e| e.time).collect();
    times.sort();
    let cutoff = times[times.len() / 2];
    let older: Vec<&IndexedEvent> = events.iter().filter(|e| e.time < cutoff).collect();
    assert!(!older.is_empty() && older.len() < events.len());

    let deleted = store.delete_before(cutoff).await.expect("delete");
    assert_eq!(deleted, older.len() as u64);
    assert_eq!(
        store.count(&Query::All).await.expect("count"),
        (events.len() - older.len()) as u64
    );
    assert_eq!(
        store
            .count(&Query::time_range(None, Some(cutoff)))
            .await
            .expect("count"),
        0
    );
    for e in older.iter().take(20) {
        assert_eq!(store.get(&e.id).await.expect("get"), None);
    }
    let kept = events
        .iter()
        .find(|e| e.time >= cutoff)
        .expect("a kept event");
    assert!(store.get(&kept.id).await.expect("get").is_some());
    // Again: nothing left to delete.
    assert_eq!(store.delete_before(cutoff).await.expect("delete"), 0);
    // The id filter was rebuilt without the deleted events: every kept
    // event sent again is still recognised.
    let kept: Vec<IndexedEvent> = events
        .iter()
        .filter(|e| e.time >= cutoff)
        .cloned()
        .collect();
    let resent = store.write(kept.clone()).await.expect("write");
    assert_eq!((resent.inserted, resent.duplicates), (0, kept.len() as u64));
    // A deleted event that is sent again is stored again (it is not stored).
    let again = store.write(vec![older[0].clone()]).await.expect("write");
    assert_eq!((again.inserted, again.duplicates), (1, 0));
}

fn expected_stats(
    events: &[IndexedEvent],
) -> BTreeMap<(String, EventType), (u64, Timestamp, Timestamp)> {
    let mut stats = BTreeMap::new();
    for e in events {
        stats
            .entry((e.cluster.clone(), e.event_type))
            .and_modify(|(n, lo, hi): &mut (u64, Timestamp, Timestamp)| {
                *n += 1;
                *lo = (*lo).min(e.time);
                *hi = (*hi).max(e.time);
            })
            .or_insert((1, e.time, e.time));
    }
    stats
}

#[tokio::test]
async fn stats_per_cluster_and_type() {
    let (_dir, store, events) = loaded().await;
    let want = expected_stats(&events);
    let got = store.stats().await.expect("stats");
    assert_eq!(got.len(), want.len());
    let mut sizes: HashMap<String, u64> = HashMap::new();
    for s in &got {
        let (n, lo, hi) = want[&(s.cluster.clone(), s.event_type)];
        assert_eq!(
            (s.events, s.oldest, s.newest),
            (n, Some(lo), Some(hi)),
            "{s:?}"
        );
        assert!(s.size_bytes > 0);
        // Both types of a cluster report the whole index.
        assert_eq!(
            *sizes.entry(s.cluster.clone()).or_insert(s.size_bytes),
            s.size_bytes
        );
    }
}

#[tokio::test]
async fn reopening_keeps_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = dataset();
    let stored = distinct(&events);
    let (stats_before, page_before) = {
        let store = open(dir.path());
        write_all(&store, &events, 900).await;
        let page = all_pages(&store, &Query::All, SortOrder::NewestFirst, 500).await;
        (store.stats().await.expect("stats"), page)
    };
    // The store was dropped: writer threads stopped and locks released.
    let store = open(dir.path());
    let mut clusters = store.clusters();
    clusters.sort();
    assert_eq!(clusters, ["alpha", "beta"]);
    assert_eq!(
        store.count(&Query::All).await.expect("count"),
        stored.len() as u64
    );
    let page = all_pages(&store, &Query::All, SortOrder::NewestFirst, 500).await;
    assert_eq!(page, page_before);
    let stats = store.stats().await.expect("stats");
    let counts = |s: &[auditrail_store::IndexStats]| {
        s.iter()
            .map(|s| {
                (
                    s.cluster.clone(),
                    s.event_type,
                    s.events,
                    s.oldest,
                    s.newest,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(counts(&stats), counts(&stats_before));
    for e in stored.iter().step_by(211) {
        assert_eq!(
            store.get(&e.id).await.expect("get").expect("kept").raw,
            e.raw
        );
    }
    // Still idempotent after the reopen, and still writable.
    let outcome = store.write(events[..500].to_vec()).await.expect("write");
    assert_eq!(outcome.inserted, 0);
    let fresh = generated("alpha", 11, "2026-05-01T00:00:00Z", 10);
    let outcome = store.write(fresh).await.expect("write");
    assert_eq!(outcome.inserted, 10);
}

/// A lost `meta.json` must not turn into an empty index that deletes the
/// old segments at its first commit: the store refuses to open, names the
/// directory, and leaves every file where it was.
#[tokio::test]
async fn an_index_without_its_metadata_is_refused_and_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = dataset();
    {
        let store = open(dir.path());
        write_all(&store, &events, 900).await;
    }
    let alpha = dir.path().join("alpha");
    std::fs::remove_file(alpha.join("meta.json")).expect("remove meta.json");
    let files_before = file_sizes(&alpha);
    assert!(
        files_before.len() > 3,
        "segments were written: {files_before:?}"
    );
    let err = TantivyStore::open(dir.path(), TantivyOptions::default())
        .expect_err("an index without meta.json");
    let message = err.to_string();
    assert!(message.contains(&alpha.display().to_string()), "{message}");
    assert!(message.contains("no meta.json"), "{message}");
    assert!(message.contains("nothing was deleted"), "{message}");
    assert_eq!(
        file_sizes(&alpha),
        files_before,
        "every file is still there"
    );
}

/// Every new cluster name opens an index with its own writer: their
/// number is bounded, and a write beyond it is refused without harming the
/// clusters already held.
#[tokio::test]
async fn the_number_of_cluster_indices_is_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = TantivyOptions {
        max_clusters: 2,
        ..common::options()
    };
    let store = TantivyStore::open(dir.path(), options.clone()).expect("open");
    for cluster in ["a", "b"] {
        let outcome = store
            .write(generated(cluster, 3, "2026-05-01T00:00:00Z", 5))
            .await
            .expect("within the bound");
        assert_eq!(outcome.inserted, 5);
    }
    let err = store
        .write(generated("c", 3, "2026-05-01T00:00:00Z", 5))
        .await
        .expect_err("a third cluster");
    assert!(
        matches!(&err, StoreError::LimitReached(m) if m.contains("2 cluster indices") && m.contains("\"c\"")),
        "{err}"
    );
    assert!(!dir.path().join("c").exists(), "no index was created");
    let outcome = store
        .write(generated("a", 4, "2026-05-02T00:00:00Z", 5))
        .await
        .expect("held clusters still take writes");
    assert_eq!(outcome.inserted, 5);
    assert_eq!(store.count(&Query::All).await.expect("count"), 15);
}

fn file_sizes(dir: &std::path::Path) -> BTreeMap<String, u64> {
    std::fs::read_dir(dir)
        .expect("list")
        .map(|e| {
            let e = e.expect("entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().expect("metadata").len(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_overlapping_writes_store_each_event_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(open(dir.path()));
    let mut events = generated("alpha", 21, "2026-01-01T00:00:00Z", 1500);
    events.extend(generated("beta", 22, "2026-01-01T00:00:00Z", 1500));
    let all = distinct(&events);
    // 16 writers, each sending overlapping slices (every event twice or more).
    let mut tasks = Vec::new();
    for w in 0..16usize {
        let store = Arc::clone(&store);
        let slice: Vec<IndexedEvent> = events
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 8 == w % 8 || (i / 50) % 16 == w)
            .map(|(_, e)| e.clone())
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut total = (0, 0);
            for chunk in slice.chunks(60) {
                let o = store.write(chunk.to_vec()).await.expect("write");
                total.0 += o.inserted;
                total.1 += o.duplicates;
            }
            (total, slice.len() as u64)
        }));
    }
    let mut inserted = 0;
    for task in tasks {
        let ((ins, dup), sent) = task.await.expect("task");
        assert_eq!(ins + dup, sent);
        inserted += ins;
    }
    assert_eq!(inserted, all.len() as u64);
    assert_eq!(
        store.count(&Query::All).await.expect("count"),
        all.len() as u64
    );
    let ids: HashSet<EventId> = all_pages(&store, &Query::All, SortOrder::OldestFirst, 1000)
        .await
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids.len(), all.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_commit_limits_still_answer_every_write_once() {
    // Every round ends after one request: the size and delay bounds, not
    // an idle queue, decide when to commit.
    let dir = tempfile::tempdir().expect("tempdir");
    let options = auditrail_store_tantivy::TantivyOptions {
        commit_max_docs: 1,
        commit_max_delay: std::time::Duration::ZERO,
        ..common::options()
    };
    let store = Arc::new(TantivyStore::open(dir.path(), options).expect("open"));
    let events = generated("alpha", 41, "2026-01-01T00:00:00Z", 400);
    let mut tasks = Vec::new();
    for w in 0..4 {
        let store = Arc::clone(&store);
        // Writers 0/2 and 1/3 send the same events.
        let mine: Vec<IndexedEvent> = events.iter().skip(w % 2).step_by(2).cloned().collect();
        tasks.push(tokio::spawn(async move {
            let mut inserted = 0;
            for chunk in mine.chunks(10) {
                inserted += store.write(chunk.to_vec()).await.expect("write").inserted;
            }
            inserted
        }));
    }
    let mut inserted = 0;
    for task in tasks {
        inserted += task.await.expect("task");
    }
    assert_eq!(inserted, events.len() as u64);
    assert_eq!(
        store.count(&Query::All).await.expect("count"),
        events.len() as u64
    );
}

/// The histogram of `events` computed in memory: buckets by flooring the
/// time to the interval, values by counting each field.
fn expected_histogram(
    events: &[IndexedEvent],
    query: &Query,
    interval: SignedDuration,
    terms: &[TermsField],
    top_n: usize,
) -> Histogram {
    let step = interval.as_micros();
    let matching: Vec<&IndexedEvent> = events.iter().filter(|e| matches(e, query)).collect();
    let mut buckets = BTreeMap::new();
    for e in &matching {
        let micros = e.time.as_microsecond();
        let start = Timestamp::from_microsecond(
            i64::try_from(i128::from(micros).div_euclid(step) * step).expect("fits"),
        )
        .expect("a time");
        *buckets.entry(start).or_insert(0u64) += 1;
    }
    let value = |e: &IndexedEvent, f: TermsField| match f {
        TermsField::Verb => e.verb.clone(),
        TermsField::Resource => e.resource.clone(),
        TermsField::Username => e.username.clone(),
        TermsField::Namespace => e.namespace.clone(),
    };
    let terms = terms
        .iter()
        .map(|&f| {
            let mut counts: HashMap<String, u64> = HashMap::new();
            for e in &matching {
                *counts.entry(value(e, f)).or_default() += 1;
            }
            top_terms(f, counts, top_n)
        })
        .collect();
    Histogram {
        buckets,
        terms,
        total: matching.len() as u64,
    }
}

#[tokio::test]
async fn histograms_match_an_in_memory_count() {
    let (_dir, store, events) = loaded().await;
    let all_terms = [
        TermsField::Namespace,
        TermsField::Verb,
        TermsField::Username,
        TermsField::Resource,
    ];
    let cases = [
        (Query::All, SignedDuration::from_secs(60), 5),
        (
            Query::eq(Field::Cluster, "beta"),
            SignedDuration::from_secs(1),
            3,
        ),
        (
            Query::eq(Field::Verb, "patch"),
            SignedDuration::from_hours(24),
            100,
        ),
        (
            Query::Not(Box::new(Query::eq(Field::Namespace, ""))),
            SignedDuration::from_micros(1500),
            1,
        ),
        (
            Query::eq(Field::Verb, "no-such-verb"),
            SignedDuration::from_secs(1),
            10,
        ),
    ];
    for (query, interval, top_n) in cases {
        let got = store
            .histogram(HistogramRequest {
                query: query.clone(),
                interval,
                terms: all_terms.to_vec(),
                top_n,
            })
            .await
            .expect("histogram");
        let want = expected_histogram(&events, &query, interval, &all_terms, top_n);
        assert_eq!(got, want, "{query:?} every {interval:?}");
    }
    // Some events are in every answer with values, so the test can fail.
    let all = expected_histogram(
        &events,
        &Query::All,
        SignedDuration::from_secs(60),
        &all_terms,
        5,
    );
    assert!(all.buckets.len() > 10 && all.terms.iter().all(|t| t.values.len() == 5));
}

#[tokio::test]
async fn histogram_intervals_must_be_whole_positive_microseconds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    for interval in [
        SignedDuration::ZERO,
        SignedDuration::from_secs(-1),
        SignedDuration::from_nanos(1500),
    ] {
        let err = store
            .histogram(HistogramRequest {
                query: Query::All,
                interval,
                terms: vec![],
                top_n: 10,
            })
            .await
            .expect_err("a bad interval");
        assert!(
            matches!(err, StoreError::InvalidRequest(_)),
            "{interval:?}: {err}"
        );
    }
}

#[tokio::test]
async fn counting_up_to_a_limit_is_exact_below_it_and_a_bound_above() {
    let (_dir, store, events) = loaded().await;
    let query = Query::eq(Field::Verb, "get");
    let n = events.iter().filter(|e| matches(e, &query)).count() as u64;
    assert!(n > 100, "the data has enough gets ({n})");
    let total = |count| {
        let store = store.clone();
        let query = query.clone();
        async move {
            let page = store
                .search(SearchRequest {
                    query,
                    sort: SortOrder::NewestFirst,
                    limit: 5,
                    after: None,
                    include_raw: false,
                    count,
                })
                .await
                .expect("search");
            assert_eq!(page.events.len(), 5);
            page.total.map(|t| (t.count, t.exact))
        }
    };
    assert_eq!(total(CountMode::None).await, None);
    assert_eq!(total(CountMode::Exact).await, Some((n, true)));
    assert_eq!(total(CountMode::UpTo(n)).await, Some((n, true)));
    assert_eq!(total(CountMode::UpTo(n + 1)).await, Some((n, true)));
    assert_eq!(total(CountMode::UpTo(n - 1)).await, Some((n - 1, false)));
    assert_eq!(total(CountMode::UpTo(100)).await, Some((100, false)));
}

#[tokio::test]
async fn a_read_only_store_follows_a_writer_it_does_not_block() {
    let dir = tempfile::tempdir().expect("tempdir");
    let writer = open(dir.path());
    let first = generated("alpha", 5, "2026-01-01T00:00:00Z", 50);
    writer.write(first.clone()).await.expect("write");
    let reader = TantivyStore::open_read_only(dir.path()).expect("open read-only");
    assert_eq!(reader.count(&Query::All).await.expect("count"), 50);

    // Commits of the writer, in a known index and in a new one, appear.
    writer
        .write(generated("alpha", 6, "2026-01-02T00:00:00Z", 20))
        .await
        .expect("write");
    writer
        .write(generated("beta", 7, "2026-01-02T00:00:00Z", 30))
        .await
        .expect("write");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let n = reader.count(&Query::All).await.expect("count");
        if n == 100 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the reader saw {n} of 100 events"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(reader.clusters(), ["alpha", "beta"]);
    let got = reader
        .get(&first[0].id)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(got.raw, first[0].raw);

    // It writes nothing.
    for result in [
        reader
            .write(generated("alpha", 8, "2026-01-03T00:00:00Z", 1))
            .await
            .map(|_| 0),
        reader
            .write(generated("gamma", 8, "2026-01-03T00:00:00Z", 1))
            .await
            .map(|_| 0),
        reader.delete_before(Timestamp::MAX).await,
    ] {
        assert!(
            matches!(result, Err(StoreError::InvalidRequest(ref m)) if m.contains("read-only")),
            "{result:?}"
        );
    }
    assert_eq!(writer.count(&Query::All).await.expect("count"), 100);

    // A directory with no store yet is an empty store.
    let empty = TantivyStore::open_read_only(&dir.path().join("none")).expect("open");
    assert_eq!(empty.count(&Query::All).await.expect("count"), 0);
}
