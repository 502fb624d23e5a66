//! Shared helpers: events from the generator, the real samples and a few
//! hand-written edge cases; an in-memory evaluation of [`Query`] that the
//! store's answers are checked against; and paging helpers.

#![allow(dead_code, unreachable_pub)]

use std::cmp::Ordering;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use auditrail_event::{EventId, EventType};
use auditrail_loggen::{GenConfig, Generator};
use auditrail_store::{
    CountMode, Field, IndexedEvent, Query, SearchRequest, SortOrder, Store, StoredEvent, Value,
};
use auditrail_store_tantivy::{TantivyOptions, TantivyStore};
use jiff::Timestamp;

/// The time given to events that carry no timestamp at all.
pub fn now() -> Timestamp {
    "2026-03-01T12:00:00Z".parse().expect("valid time")
}

/// Small writer memory: tests run in parallel on a small machine.
pub fn options() -> TantivyOptions {
    TantivyOptions {
        writer_memory_bytes: 20_000_000,
        ..TantivyOptions::default()
    }
}

pub fn open(dir: &Path) -> TantivyStore {
    TantivyStore::open(dir, options()).expect("open store")
}

pub fn index(cluster: &str, line: &[u8]) -> IndexedEvent {
    IndexedEvent::from_raw(cluster, line, EventType::Kube, now()).expect("valid audit event")
}

/// `n` generated events for `cluster`.
pub fn generated(cluster: &str, seed: u64, start: &str, n: usize) -> Vec<IndexedEvent> {
    Generator::new(GenConfig {
        seed,
        start: start.parse().expect("valid start"),
        ..GenConfig::default()
    })
    .take(n)
    .map(|line| index(cluster, line.as_bytes()))
    .collect()
}

fn data_dir() -> PathBuf {
    // Cargo sets the variable when it runs the binary: prefer it to the
    // compile-time value, which is stale when an artifact built from another
    // checkout is reused through a shared target directory.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("../../../shared/data/real")
}

/// Every real sample that is an audit event (the fuzzing regression is not).
pub fn real(cluster: &str) -> Vec<IndexedEvent> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_dir().join("falco-k8s-audit"))
        .expect("shared/data/real/falco-k8s-audit beside the checkout")
        .map(|e| e.expect("dir entry").path())
        .collect();
    files.push(data_dir().join("elastic-integrations-test-audit.log"));
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let bytes = std::fs::read(&file).expect("read sample");
        for line in bytes.split(|&b| b == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if let Ok(event) = IndexedEvent::from_raw(cluster, line, EventType::Kube, now()) {
                out.push(event);
            }
        }
    }
    assert!(
        out.len() > 40,
        "expected the real samples, found {}",
        out.len()
    );
    out
}

/// Hand-written events for what the generator never produces: no stage, no
/// response code, no source IPs or several, no groups, no objectRef, no
/// timestamp at all, a dry run, names with regex meta characters.
pub fn edge(cluster: &str) -> Vec<IndexedEvent> {
    [
        r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"edge-1","requestURI":"/healthz","verb":"get","user":{"username":"probe"},"sourceIPs":["10.9.0.1","10.9.0.2"],"requestReceivedTimestamp":"2026-01-01T00:00:01.000001Z"}"#,
        r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"edge-2","stage":"ResponseComplete","requestURI":"/apis/projectcalico.org/v3/globalnetworkpolicies?dryRun=All","verb":"create","user":{"username":"alice@example.com","groups":["netsec","system:authenticated"]},"sourceIPs":["10.9.0.3"],"objectRef":{"resource":"globalnetworkpolicies","name":"deny.all","apiGroup":"projectcalico.org","apiVersion":"v3"},"responseStatus":{"metadata":{},"code":201},"requestReceivedTimestamp":"2026-01-01T00:00:02.000000Z","stageTimestamp":"2026-01-01T00:00:02.000500Z"}"#,
        r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","auditID":"edge-3","stage":"RequestReceived","requestURI":"/api/v1/namespaces/kube-system/secrets/x","verb":"delete","user":{"username":"system:serviceaccount:kube-system:ctrl"},"objectRef":{"resource":"secrets","namespace":"kube-system","name":"x","apiVersion":"v1"}}"#,
        r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"edge-4","stage":"ResponseComplete","requestURI":"/api/v1/pods/a+b(c)[d]*?","verb":"get","user":{"username":"weird.user+1"},"sourceIPs":["::1"],"objectRef":{"resource":"pods","namespace":"default","name":"a+b(c)[d]*?","apiVersion":"v1","subresource":"log"},"responseStatus":{"code":200},"stageTimestamp":"2026-01-01T00:00:04.5Z"}"#,
    ]
    .iter()
    .map(|line| index(cluster, line.as_bytes()))
    .collect()
}

/// Events whose stage timestamps are all `time` (ties broken by id only).
pub fn ties(cluster: &str, time: &str, n: usize) -> Vec<IndexedEvent> {
    (0..n)
        .map(|i| {
            let line = format!(
                r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"tie-{i}","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods","verb":"list","user":{{"username":"tie@example.com","groups":["system:authenticated"]}},"sourceIPs":["10.8.0.{}"],"objectRef":{{"resource":"pods","namespace":"default","apiVersion":"v1"}},"responseStatus":{{"code":200}},"requestReceivedTimestamp":"{time}","stageTimestamp":"{time}"}}"#,
                i % 250
            );
            index(cluster, line.as_bytes())
        })
        .collect()
}

fn keyword(e: &IndexedEvent, field: Field) -> Option<Vec<String>> {
    let one = |s: &str| Some(vec![s.to_owned()]);
    match field {
        Field::Id => one(&e.id.to_hex()),
        Field::Cluster => one(&e.cluster),
        Field::Type => one(e.event_type.as_str()),
        Field::Level => one(e.level.as_str()),
        Field::Stage => one(e.stage.map_or("", |s| s.as_str())),
        Field::AuditId => one(&e.audit_id),
        Field::Verb => one(&e.verb),
        Field::Username => one(&e.username),
        Field::UserGroups => Some(e.user_groups.clone()),
        Field::SourceIps => Some(e.source_ips.clone()),
        Field::Resource => one(&e.resource),
        Field::Namespace => one(&e.namespace),
        Field::ObjectName => one(&e.object_name),
        Field::ApiGroup => one(&e.api_group),
        Field::ApiVersion => one(&e.object_api_version),
        Field::Subresource => one(&e.subresource),
        Field::Name => one(&e.name),
        Field::Kind => one(&e.kind),
        Field::RequestUri => one(&e.request_uri),
        Field::ResponseCode
        | Field::DryRun
        | Field::RequestReceived
        | Field::StageTimestamp
        | Field::Time => None,
    }
}

/// The field's value as a [`Value`] (non-keyword fields), if it has one.
fn scalar(e: &IndexedEvent, field: Field) -> Option<Value> {
    match field {
        Field::ResponseCode => e.response_code.map(|c| Value::Int(i64::from(c))),
        Field::DryRun => Some(Value::Bool(e.dry_run)),
        Field::RequestReceived => e.request_received.map(Value::Time),
        Field::StageTimestamp => e.stage_timestamp.map(Value::Time),
        Field::Time => Some(Value::Time(e.time)),
        _ => None,
    }
}

fn cmp(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
        (Value::Time(a), Value::Time(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

fn equals(e: &IndexedEvent, field: Field, value: &Value) -> bool {
    if let Some(values) = keyword(e, field) {
        let Value::Str(s) = value else { return false };
        // Kinds compare case-insensitively.
        let same = |v: &String| match field {
            Field::Kind => v.to_lowercase() == s.to_lowercase(),
            _ => v == s,
        };
        values.iter().any(same) || (s.is_empty() && values.is_empty())
    } else {
        scalar(e, field).is_some_and(|v| cmp(&v, value) == Some(Ordering::Equal))
    }
}

/// The meaning of a query, evaluated on one event in memory.
pub fn matches(e: &IndexedEvent, q: &Query) -> bool {
    match q {
        Query::All => true,
        Query::Eq(field, value) => equals(e, *field, value),
        Query::In(field, values) => values.iter().any(|v| equals(e, *field, v)),
        Query::Range {
            field,
            lower,
            upper,
        } => {
            let Some(v) = scalar(e, *field) else {
                return false;
            };
            let above = match lower {
                Bound::Included(b) => cmp(&v, b).is_some_and(Ordering::is_ge),
                Bound::Excluded(b) => cmp(&v, b).is_some_and(Ordering::is_gt),
                Bound::Unbounded => true,
            };
            let below = match upper {
                Bound::Included(b) => cmp(&v, b).is_some_and(Ordering::is_le),
                Bound::Excluded(b) => cmp(&v, b).is_some_and(Ordering::is_lt),
                Bound::Unbounded => true,
            };
            above && below
        }
        Query::Contains(field, needle) => {
            keyword(e, *field).is_some_and(|vs| vs.iter().any(|v| v.contains(needle.as_str())))
        }
        Query::And(qs) => qs.iter().all(|q| matches(e, q)),
        Query::Or(qs) => qs.iter().any(|q| matches(e, q)),
        Query::Not(q) => !matches(e, q),
    }
}

/// `events` in the store's order (distinct ids, as stored).
pub fn sorted(events: &[IndexedEvent], order: SortOrder) -> Vec<(Timestamp, EventId)> {
    let mut keys: Vec<_> = events.iter().map(|e| (e.time, e.id)).collect();
    keys.sort();
    keys.dedup();
    if order == SortOrder::NewestFirst {
        keys.reverse();
    }
    keys
}

/// Every page of `query` in `order`, `limit` events at a time.
pub async fn all_pages(
    store: &TantivyStore,
    query: &Query,
    order: SortOrder,
    limit: usize,
) -> Vec<StoredEvent> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .search(SearchRequest {
                query: query.clone(),
                sort: order,
                limit,
                after,
                include_raw: false,
                count: CountMode::Exact,
            })
            .await
            .expect("search");
        assert!(page.events.len() <= limit);
        assert!(
            page.total.is_some_and(|t| t.exact),
            "an exact count was asked for"
        );
        out.extend(page.events);
        match page.next {
            Some(cursor) => after = Some(cursor),
            None => return out,
        }
    }
}

/// Writes `events` in batches of `batch`.
pub async fn write_all(store: &TantivyStore, events: &[IndexedEvent], batch: usize) {
    for chunk in events.chunks(batch) {
        store.write(chunk.to_vec()).await.expect("write");
    }
}
