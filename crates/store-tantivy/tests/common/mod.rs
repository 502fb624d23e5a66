//! Shared helpers: events from the generator, the real samples and a few
//! hand-written edge cases; an in-memory evaluation of [`Query`] that the
//! store's answers are checked against; and paging helpers.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};

use auditrail_event::{EventId, EventType};
use auditrail_loggen::{GenConfig, Generator};
use auditrail_store::{
    CountMode, IndexedEvent, Query, SearchRequest, SortOrder, Store, StoredEvent,
};
use auditrail_store_tantivy::{TantivyOptions, TantivyStore};
use jiff::Timestamp;

#[path = "../../../event/tests/support/real_data.rs"]
mod real_data;
use real_data::real_data_dir;

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

/// Every real sample that is an audit event (the fuzzing regression is not).
pub fn real(cluster: &str) -> Vec<IndexedEvent> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(real_data_dir().join("falco-k8s-audit"))
        .expect("shared/data/real/falco-k8s-audit beside the checkout")
        .map(|e| e.expect("dir entry").path())
        .collect();
    files.push(real_data_dir().join("elastic-integrations-test-audit.log"));
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

/// The meaning of a query, evaluated on one event in memory: the oracle
/// of the store conformance suite.
pub fn matches(e: &IndexedEvent, q: &Query) -> bool {
    auditrail_store_conformance::matches(q, e)
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
