//! Shared helpers of the QueryService tests: the dataset (generated and real
//! audit log lines), an independent in-memory view of every event read with
//! `serde_json`, an in-memory evaluation of `Filter`, and a real gRPC server
//! on a loopback socket in front of a tantivy store.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use auditrail_event::meaning::{CHANGE_VERBS, SESSION_SUBRESOURCES};
use auditrail_event::resource::{kind_of, resolve_kind};
use auditrail_event::{EventId, EventType, parse_line};
use auditrail_loggen::{GenConfig, Generator};
use auditrail_proto::v1;
use auditrail_proto::v1::query_service_client::QueryServiceClient;
use auditrail_query::Querier;
use auditrail_store::{IndexedEvent, Store};
use auditrail_store_tantivy::{TantivyOptions, TantivyStore};
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

#[path = "../../../../crates/event/tests/support/real_data.rs"]
mod real_data;
pub(crate) use real_data::real_data_dir;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Status};

/// The gRPC client the tests use.
pub type Client = QueryServiceClient<Channel>;

/// The time the store gives events without any timestamp (none of ours).
fn fallback_now() -> Timestamp {
    "2026-06-01T00:00:00Z".parse().expect("time")
}

/// One event of the dataset, read from its line with `serde_json` only (an
/// independent path from the store's and the service's parsing).
#[derive(Debug, Clone)]
pub struct Ev {
    pub cluster: String,
    /// The line, without its terminator: the event's original bytes.
    pub raw: String,
    pub json: Value,
    /// 64 hex digits; ids compare like their bytes.
    pub id: String,
    /// stageTimestamp, else requestReceivedTimestamp, else `timestamp`.
    pub time: Timestamp,
    /// `objectRef.apiGroup` is `projectcalico.org`.
    pub ee: bool,
    pub level: String,
    pub stage: String,
    pub verb: String,
    pub user: String,
    pub code: Option<i32>,
    pub dry_run: bool,
    /// Derived kind (the resource table's kind of objectRef.resource and
    /// apiGroup, else the resource name).
    pub kind: String,
    /// Derived name (objectRef.name, else from the response object).
    pub name: String,
    pub resource: String,
    pub namespace: String,
    pub object_name: String,
    pub api_group: String,
    pub api_version: String,
    pub subresource: String,
}

fn text(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn time_at(json: &Value, key: &str) -> Option<Timestamp> {
    json.get(key)?.as_str()?.parse().ok()
}

impl Ev {
    /// The event of `line` in `cluster`; `None` when the line is not an
    /// audit event.
    pub fn new(cluster: &str, line: &str) -> Option<Self> {
        let raw = line.strip_suffix('\n').unwrap_or(line);
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        // The product decides what is an event; everything else is read here.
        parse_line(raw.as_bytes()).ok()?;
        let json: Value = serde_json::from_str(raw).expect("an event is JSON");
        let oref = json.get("objectRef");
        let field = |key: &str| text(oref.and_then(|o| o.get(key)));
        let time = time_at(&json, "stageTimestamp")
            .or_else(|| time_at(&json, "requestReceivedTimestamp"))
            .or_else(|| time_at(&json, "timestamp"))
            .expect("every event of the dataset has a time");
        let response = json.get("responseObject");
        // The contract: the kind comes from the resource table, never from
        // the objects.
        let kind = kind_of(&field("resource"), &field("apiGroup")).into_owned();
        let non_empty = |v: Option<&Value>| Some(text(v)).filter(|s| !s.is_empty());
        let name = non_empty(oref.and_then(|o| o.get("name")))
            .or_else(|| non_empty(response.and_then(|r| r.pointer("/metadata/name"))))
            .or_else(|| non_empty(response.and_then(|r| r.pointer("/details/name"))))
            .unwrap_or_default();
        let request_uri = text(json.get("requestURI"));
        Some(Self {
            cluster: cluster.to_owned(),
            raw: raw.to_owned(),
            id: EventId::compute(cluster, raw.as_bytes()).to_hex(),
            time,
            ee: field("apiGroup") == "projectcalico.org",
            level: text(json.get("level")),
            stage: text(json.get("stage")),
            verb: text(json.get("verb")),
            user: text(json.pointer("/user/username")),
            code: json
                .pointer("/responseStatus/code")
                .and_then(Value::as_i64)
                .map(|c| i32::try_from(c).expect("HTTP code")),
            dry_run: request_uri.contains("dryRun"),
            kind,
            name,
            resource: field("resource"),
            namespace: field("namespace"),
            object_name: field("name"),
            api_group: field("apiGroup"),
            api_version: field("apiVersion"),
            subresource: field("subresource"),
            json,
        })
    }

    /// The indexed view the store is given.
    pub fn indexed(&self) -> IndexedEvent {
        IndexedEvent::from_raw(
            &self.cluster,
            self.raw.as_bytes(),
            EventType::Kube,
            fallback_now(),
        )
        .expect("valid event")
    }
}

/// `n` generated lines.
pub fn generated(seed: u64, start: &str, mean_interval: SignedDuration, n: usize) -> Vec<String> {
    Generator::new(GenConfig {
        seed,
        start: start.parse().expect("start time"),
        mean_interval,
        write_ratio: 0.3,
    })
    .take(n)
    .collect()
}

/// Every line of the real samples (some are not events).
pub fn real_lines() -> Vec<String> {
    let dir = real_data_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("falco-k8s-audit"))
        .expect("shared/data/real/falco-k8s-audit beside the checkout")
        .map(|e| e.expect("dir entry").path())
        .collect();
    files.sort();
    files.push(dir.join("elastic-integrations-test-audit.log"));
    let mut lines = Vec::new();
    for file in files {
        let content = std::fs::read_to_string(&file).expect("read sample");
        lines.extend(
            content
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned),
        );
    }
    lines
}

/// Events sharing one stage timestamp, so that only the id orders them.
pub fn tie_lines(time: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"tie-{i}","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods","verb":"list","user":{{"username":"tie@example.com","groups":["system:authenticated"]}},"sourceIPs":["10.8.0.{i}"],"objectRef":{{"resource":"pods","namespace":"default","apiVersion":"v1"}},"responseStatus":{{"code":200}},"requestReceivedTimestamp":"{time}","stageTimestamp":"{time}"}}"#
            )
        })
        .collect()
}

/// The stage timestamp shared by the tie events.
pub const TIE_TIME: &str = "2026-01-01T00:10:00.000500Z";

/// Events of `lines` in `cluster` (lines that are not events skipped),
/// without repeated ids.
pub fn events_of(cluster: &str, lines: &[String]) -> Vec<Ev> {
    let mut seen = HashSet::new();
    lines
        .iter()
        .filter_map(|l| Ev::new(cluster, l))
        .filter(|e| seen.insert(e.id.clone()))
        .collect()
}

/// The shared dataset: cluster `alpha` has 2000 generated events (seed 1,
/// from 2026-01-01T00:00:00Z, one a second on average) and 20 events sharing
/// one time; cluster `beta` has 1000 generated events (seed 2, from
/// 00:20:00Z) and the real samples (2018 to 2025).
pub fn dataset() -> &'static [Ev] {
    static DATA: LazyLock<Vec<Ev>> = LazyLock::new(|| {
        let second = SignedDuration::from_secs(1);
        let mut alpha = generated(1, "2026-01-01T00:00:00Z", second, 2000);
        alpha.extend(tie_lines(TIE_TIME, 20));
        let mut beta = generated(2, "2026-01-01T00:20:00Z", second, 1000);
        let real = real_lines();
        let real_events = events_of("beta", &real);
        assert!(
            real_events.len() >= 45 && real_events.len() < real.len(),
            "the real samples hold about fifty events and one line that is not one: {} of {}",
            real_events.len(),
            real.len()
        );
        beta.extend(real);
        let mut all = events_of("alpha", &alpha);
        all.extend(events_of("beta", &beta));
        all
    });
    &DATA
}

/// Small writer memory: tests run in parallel on a small machine.
pub fn options() -> TantivyOptions {
    TantivyOptions {
        writer_memory_bytes: 20_000_000,
        ..TantivyOptions::default()
    }
}

/// A store in a fresh directory holding `events`.
pub async fn store_with(events: &[Ev]) -> (TempDir, TantivyStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_owned();
    let store = tokio::task::spawn_blocking(move || TantivyStore::open(&path, options()))
        .await
        .expect("join")
        .expect("open store");
    write(&store, events).await;
    (dir, store)
}

/// Writes `events` into `store`.
pub async fn write(store: &TantivyStore, events: &[Ev]) {
    if events.is_empty() {
        return;
    }
    let outcome = store
        .write(events.iter().map(Ev::indexed).collect())
        .await
        .expect("write");
    assert_eq!(
        outcome.inserted,
        events.len() as u64,
        "the events are all new"
    );
}

/// A QueryService on a loopback socket, and a client connected to it.
pub struct Server {
    pub client: Client,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl Server {
    /// Serves `store` on `127.0.0.1:0`.
    pub async fn start(store: Arc<dyn Store>) -> Self {
        Self::start_service(Querier::new(store)).await
    }

    /// Serves `query` on `127.0.0.1:0`.
    pub async fn start_service(query: Querier) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(query.server())
                .serve_with_incoming_shutdown(
                    TcpIncoming::from(listener).with_nodelay(Some(true)),
                    async {
                        let _ = stopped.await;
                    },
                ),
        );
        let client = QueryServiceClient::connect(format!("http://{addr}"))
            .await
            .expect("connect");
        Self { client, stop, task }
    }

    /// Closes the client and stops the server, which must end cleanly.
    pub async fn stop(self) {
        drop(self.client);
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("the server stops")
            .expect("server task")
            .expect("server ended without error");
    }
}

/// A store holding `events` and a server in front of it.
pub async fn serve(events: &[Ev]) -> (TempDir, TantivyStore, Server) {
    let (dir, store) = store_with(events).await;
    let server = Server::start(Arc::new(store.clone())).await;
    (dir, store, server)
}

/// Whether the timeline shows `e`, read from the contract: level
/// RequestResponse, stage ResponseComplete, no dry run, and a change or a
/// session into a pod.
pub fn on_timeline(e: &Ev) -> bool {
    e.level == "RequestResponse"
        && e.stage == "ResponseComplete"
        && !e.dry_run
        && (CHANGE_VERBS.contains(&e.verb.as_str())
            || SESSION_SUBRESOURCES.contains(&e.subresource.as_str()))
}

/// Whether `e` is of the kind a person named (`Filter.kinds`): the
/// resources the table resolves it to (and its group when named), else the
/// name as a resource.
pub fn kind_matches(e: &Ev, name: &str) -> bool {
    match resolve_kind(name) {
        Some(k) => {
            k.resources.contains(&e.resource.as_str()) && k.group.is_none_or(|g| g == e.api_group)
        }
        None => e.resource == name.to_lowercase(),
    }
}

/// Whether `e` matches the structured part of `f` (everything but the
/// selector) over the resolved range `[from, to)`, read from the contract.
pub fn filter_matches(e: &Ev, f: &v1::Filter, from: Option<Timestamp>, to: Timestamp) -> bool {
    let any = |list: &[String], value: &str| list.is_empty() || list.iter().any(|v| v == value);
    let type_ok = match v1::TypeFilter::try_from(f.r#type).expect("known type") {
        v1::TypeFilter::Unspecified | v1::TypeFilter::Any => true,
        v1::TypeFilter::Kube => !e.ee,
        v1::TypeFilter::Ee => e.ee,
        // The oracle's events are all of the trail, never access records.
        v1::TypeFilter::Access => false,
    };
    let refs_ok = f.object_refs.is_empty()
        || f.object_refs.iter().any(|r| {
            [
                (&r.name, &e.object_name),
                (&r.namespace, &e.namespace),
                (&r.resource, &e.resource),
                (&r.api_group, &e.api_group),
                (&r.api_version, &e.api_version),
            ]
            .iter()
            .all(|(want, have)| want.is_empty() || want == have)
        });
    type_ok
        && any(&f.clusters, &e.cluster)
        && from.is_none_or(|from| e.time >= from)
        && e.time < to
        && (f.kinds.is_empty() || f.kinds.iter().any(|k| kind_matches(e, k)))
        && any(&f.subresources, &e.subresource)
        && refs_ok
        && any(&f.verbs, &e.verb)
        && any(&f.authors, &e.user)
        && (f.response_codes.is_empty() || e.code.is_some_and(|c| f.response_codes.contains(&c)))
        && any(&f.stages, &e.stage)
        && any(&f.levels, &e.level)
        && !(f.exclude_dry_run && e.dry_run)
}

/// The ids of `events` in the order of the contract: by time, then id, in
/// one direction.
pub fn ordered<'a>(events: impl IntoIterator<Item = &'a Ev>, newest_first: bool) -> Vec<String> {
    let mut keyed: Vec<(Timestamp, &str)> = events
        .into_iter()
        .map(|e| (e.time, e.id.as_str()))
        .collect();
    keyed.sort_unstable();
    if newest_first {
        keyed.reverse();
    }
    keyed.into_iter().map(|(_, id)| id.to_owned()).collect()
}

/// A timestamp message as a time.
pub fn time_of(t: Option<&prost_types::Timestamp>) -> Timestamp {
    let t = t.expect("a timestamp");
    Timestamp::new(t.seconds, t.nanos).expect("valid timestamp")
}

/// A time as RFC 3339 with microseconds.
pub fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Asserts that `result` failed with `code`; returns the status.
pub fn expect_code<T: std::fmt::Debug>(
    result: Result<T, Status>,
    code: Code,
    what: &str,
) -> Status {
    match result {
        Ok(answer) => panic!("{what}: expected {code:?}, got an answer: {answer:?}"),
        Err(status) => {
            assert_eq!(status.code(), code, "{what}: {status:?}");
            status
        }
    }
}

/// Everything one search walk returned.
#[derive(Debug)]
pub struct Walk {
    pub events: Vec<v1::AuditEvent>,
    pub total_hits: u64,
    pub resolved_from: Option<Timestamp>,
    pub resolved_to: Timestamp,
    pub pages: usize,
}

impl Walk {
    pub fn ids(&self) -> Vec<String> {
        self.events.iter().map(|e| e.id.clone()).collect()
    }
}

/// Every page of `request` (whose token must be empty), checking what each
/// page must satisfy.
pub async fn search_all(client: &mut Client, request: v1::SearchRequest) -> Walk {
    let limit = match request.page_size {
        0 => 100,
        n => n as usize,
    };
    let mut request = request;
    let mut walk = Walk {
        events: Vec::new(),
        total_hits: 0,
        resolved_from: None,
        resolved_to: Timestamp::UNIX_EPOCH,
        pages: 0,
    };
    loop {
        let page = client
            .search(request.clone())
            .await
            .unwrap_or_else(|s| panic!("search {request:?}: {s:?}"))
            .into_inner();
        assert!(page.events.len() <= limit, "page larger than page_size");
        assert!(page.total_hits_exact, "a small store counts exactly");
        let from = page.resolved_from.as_ref().map(|t| time_of(Some(t)));
        let to = time_of(page.resolved_to.as_ref());
        if walk.pages == 0 {
            walk.total_hits = page.total_hits;
            walk.resolved_from = from;
            walk.resolved_to = to;
        } else {
            assert_eq!(page.total_hits, walk.total_hits, "total_hits is stable");
            assert_eq!(
                (from, to),
                (walk.resolved_from, walk.resolved_to),
                "the range resolved on the first page is kept"
            );
        }
        walk.pages += 1;
        walk.events.extend(page.events);
        if page.next_page_token.is_empty() {
            return walk;
        }
        assert!(walk.pages < 10_000, "paging does not end");
        request.page_token = page.next_page_token;
    }
}

/// A filter with nothing set.
pub fn filter() -> v1::Filter {
    v1::Filter::default()
}

/// Owned copies of `values`.
pub fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|s| (*s).to_owned()).collect()
}

/// A search for `filter`, `page_size` events a page.
pub fn search(filter: v1::Filter, page_size: u32) -> v1::SearchRequest {
    v1::SearchRequest {
        filter: Some(filter),
        page_size,
        ..v1::SearchRequest::default()
    }
}
