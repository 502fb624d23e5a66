//! The reporter's own snapshots against a mock Kubernetes API server: a
//! real HTTP server on loopback, reached through a kubeconfig file as a
//! real cluster would be, that answers the list API as documented (typed
//! lists whose items carry no kind, `limit` and `continue` paging, a bare
//! 404 for the `projectcalico.org` group, as when Calico is not installed)
//! and records every request.

use std::sync::{Arc, Mutex, PoisonError};

use auditrail_reporter::settings::Settings;
use auditrail_reporter::snapshots::{self, SnapshotFailure};
use auditrail_reporter::store::Store;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde_json::{Value, json};

/// What the mock serves and what it was asked.
#[derive(Default)]
struct Mock {
    /// Requests as `path?query`.
    requests: Vec<String>,
    /// Whether endpoints answer 500.
    failing: bool,
    /// How many more requests carrying a `continue` token answer 410 Gone
    /// (the token expired: etcd compacted its revision).
    expiring: usize,
}

type Shared = Arc<Mutex<Mock>>;

fn pod(name: &str, ns: &str) -> Value {
    json!({
        "metadata": { "name": name, "namespace": ns, "resourceVersion": "10",
                      "labels": { "app": name } },
        "spec": { "serviceAccountName": "default" },
        "status": { "podIP": "10.0.0.1" }
    })
}

/// The collections served, each a list of items (no kind: typed lists).
fn collection(path: &str) -> Option<(&'static str, &'static str, Vec<Value>)> {
    Some(match path {
        "/api/v1/pods" => (
            "PodList",
            "v1",
            vec![pod("a", "prod"), pod("b", "prod"), pod("c", "dev")],
        ),
        "/api/v1/namespaces" => (
            "NamespaceList",
            "v1",
            vec![
                json!({ "metadata": { "name": "prod", "labels": { "team": "pay" } } }),
                json!({ "metadata": { "name": "dev" } }),
            ],
        ),
        "/api/v1/serviceaccounts" => (
            "ServiceAccountList",
            "v1",
            vec![json!({ "metadata": { "name": "default", "namespace": "prod" } })],
        ),
        "/api/v1/endpoints" => ("EndpointsList", "v1", Vec::new()),
        "/apis/networking.k8s.io/v1/networkpolicies" => (
            "NetworkPolicyList",
            "networking.k8s.io/v1",
            vec![json!({
                "metadata": { "name": "deny", "namespace": "prod", "resourceVersion": "7" },
                "spec": { "podSelector": {}, "policyTypes": ["Ingress"] }
            })],
        ),
        _ => return None,
    })
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
}

async fn serve(State(mock): State<Shared>, uri: Uri) -> Response {
    let path = uri.path().to_owned();
    let query = uri.query().unwrap_or_default().to_owned();
    let (failing, expired) = {
        let mut m = mock.lock().unwrap_or_else(PoisonError::into_inner);
        m.requests.push(format!("{path}?{query}"));
        let expired = m.expiring > 0 && query_param(&query, "continue").is_some();
        if expired {
            m.expiring -= 1;
        }
        (m.failing, expired)
    };
    if expired {
        // The API server's answer, as documented for an expired token.
        let status = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "The provided continue parameter is too old to display a consistent \
                        list result. You can start a new list without the continue parameter.",
            "reason": "Expired", "code": 410
        });
        return (
            StatusCode::GONE,
            [(header::CONTENT_TYPE, "application/json")],
            status.to_string(),
        )
            .into_response();
    }
    if failing && path == "/api/v1/endpoints" {
        let status = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "etcdserver: request timed out", "reason": "InternalError", "code": 500
        });
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "application/json")],
            status.to_string(),
        )
            .into_response();
    }
    let Some((kind, api_version, items)) = collection(&path) else {
        // What the API server answers for a group it does not serve.
        return (StatusCode::NOT_FOUND, "404 page not found").into_response();
    };
    let limit: usize = query_param(&query, "limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(usize::MAX);
    let from: usize = query_param(&query, "continue")
        .and_then(|c| c.strip_prefix("from-")?.parse().ok())
        .unwrap_or(0);
    let page: Vec<Value> = items.iter().skip(from).take(limit).cloned().collect();
    let next = from + page.len();
    let mut metadata = json!({ "resourceVersion": "1234" });
    if next < items.len() {
        metadata["continue"] = json!(format!("from-{next}"));
    }
    let body =
        json!({ "kind": kind, "apiVersion": api_version, "metadata": metadata, "items": page });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Starts the mock; its state, and settings that reach it through a
/// kubeconfig file in `dir`.
async fn start(dir: &std::path::Path) -> (Shared, Settings) {
    let mock: Shared = Arc::default();
    let router = axum::Router::new()
        .fallback(serve)
        .with_state(Arc::clone(&mock));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: mock\n  cluster:\n    server: http://{addr}\n\
             users:\n- name: u\n  user: {{}}\ncontexts:\n- name: mock\n  context:\n    cluster: mock\n    user: u\n\
             current-context: mock\n"
        ),
    )
    .expect("the kubeconfig is written");
    let mut settings = Settings {
        default_cluster: "prod-eu".into(),
        ..Settings::default()
    };
    settings.snapshots.enabled = true;
    settings.snapshots.kubeconfig = Some(kubeconfig);
    settings.snapshots.page_size = 2;
    (mock, settings)
}

fn names(objects: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = objects
        .iter()
        .map(|o| {
            format!(
                "{} {} {}/{}",
                o["apiVersion"].as_str().expect("apiVersion"),
                o["kind"].as_str().expect("kind"),
                o["metadata"]["namespace"].as_str().unwrap_or(""),
                o["metadata"]["name"].as_str().expect("name")
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn a_snapshot_holds_exactly_the_listed_objects_across_pages() {
    let dir = tempfile::tempdir().unwrap();
    let (mock, settings) = start(dir.path()).await;
    let store = Arc::new(Store::open(&dir.path().join("reports")).unwrap());
    let before = Timestamp::now();
    let (id, objects) = snapshots::take_and_store(&store, &settings).await.unwrap();
    let after = Timestamp::now();
    assert!(id.starts_with("prod-eu@"), "{id}");
    assert_eq!(objects, 7);
    let kept = store
        .snapshot_before("prod-eu", after)
        .unwrap()
        .expect("a stored snapshot");
    assert_eq!(
        names(&kept.snapshot.objects),
        vec![
            "networking.k8s.io/v1 NetworkPolicy prod/deny",
            "v1 Namespace /dev",
            "v1 Namespace /prod",
            "v1 Pod dev/c",
            "v1 Pod prod/a",
            "v1 Pod prod/b",
            "v1 ServiceAccount prod/default",
        ]
    );
    // The objects themselves, as served, with kind and apiVersion added.
    let a = kept
        .snapshot
        .objects
        .iter()
        .find(|o| o["metadata"]["name"] == "a")
        .unwrap();
    let mut expected = pod("a", "prod");
    expected["kind"] = json!("Pod");
    expected["apiVersion"] = json!("v1");
    assert_eq!(a, &expected);
    // Times: the first request's start and the last answer's arrival.
    let s = &kept.snapshot;
    assert!(before <= s.request_start, "{before} > {}", s.request_start);
    assert!(s.request_start <= s.request_completion);
    assert!(s.request_completion <= after);
    // Each Calico kind is noted as not served; nothing else is.
    assert_eq!(kept.notes.len(), 9, "{:?}", kept.notes);
    assert!(
        kept.notes
            .iter()
            .all(|n| n.contains("(projectcalico.org/v3): not served by the API server (404)")),
        "{:?}",
        kept.notes
    );
    assert!(
        kept.notes
            .iter()
            .any(|n| n.starts_with("globalnetworkpolicies "))
    );
    // Pods came in two pages of two, the second with the continue token.
    let requests = mock
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .requests
        .clone();
    let pods: Vec<&String> = requests
        .iter()
        .filter(|r| r.starts_with("/api/v1/pods?"))
        .collect();
    assert_eq!(pods.len(), 2, "{requests:?}");
    assert!(pods[0].contains("limit=2") && !pods[0].contains("continue"));
    assert!(pods[1].contains("limit=2") && pods[1].contains("continue=from-2"));
    assert_eq!(requests.len(), 2 + 1 + 1 + 1 + 1 + 9);
}

#[tokio::test]
async fn a_server_error_stores_nothing_and_the_next_look_tries_again() {
    let dir = tempfile::tempdir().unwrap();
    let (mock, settings) = start(dir.path()).await;
    mock.lock().unwrap_or_else(PoisonError::into_inner).failing = true;
    let store = Arc::new(Store::open(&dir.path().join("reports")).unwrap());
    let err = snapshots::take_and_store(&store, &settings)
        .await
        .unwrap_err();
    assert!(matches!(err, SnapshotFailure::Take(_)), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("/api/v1/endpoints") && message.contains("etcdserver"),
        "{message}"
    );
    // The look that failed stored nothing, not even the lists before it.
    snapshots::look(&store, &settings, 0).await;
    assert!(store.snapshot_times().unwrap().is_empty());
    // The API server recovers: the next look takes it.
    mock.lock().unwrap_or_else(PoisonError::into_inner).failing = false;
    snapshots::look(&store, &settings, 0).await;
    assert_eq!(store.snapshot_times().unwrap().len(), 1);
    // And the one after finds it taken today: no second snapshot.
    snapshots::look(&store, &settings, 0).await;
    assert_eq!(store.snapshot_times().unwrap().len(), 1);
}

/// The pods' requests the mock was asked, in order.
fn pod_requests(mock: &Shared) -> Vec<String> {
    mock.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .requests
        .iter()
        .filter(|r| r.starts_with("/api/v1/pods?"))
        .cloned()
        .collect()
}

#[tokio::test]
async fn an_expired_continue_token_lists_the_type_again_without_doubling() {
    let dir = tempfile::tempdir().unwrap();
    let (mock, settings) = start(dir.path()).await;
    mock.lock().unwrap_or_else(PoisonError::into_inner).expiring = 1;
    let store = Arc::new(Store::open(&dir.path().join("reports")).unwrap());
    let (_, objects) = snapshots::take_and_store(&store, &settings).await.unwrap();
    // The pods' first page was dropped and listed again: each pod once.
    assert_eq!(objects, 7);
    let kept = store
        .snapshot_before("prod-eu", Timestamp::now())
        .unwrap()
        .expect("a stored snapshot");
    let pods: Vec<String> = names(&kept.snapshot.objects)
        .into_iter()
        .filter(|n| n.starts_with("v1 Pod "))
        .collect();
    assert_eq!(pods, ["v1 Pod dev/c", "v1 Pod prod/a", "v1 Pod prod/b"]);
    let requests = pod_requests(&mock);
    assert_eq!(requests.len(), 4, "{requests:?}");
    assert!(!requests[0].contains("continue"), "{requests:?}");
    assert!(requests[1].contains("continue=from-2"), "{requests:?}");
    assert!(!requests[2].contains("continue"), "{requests:?}");
    assert!(requests[3].contains("continue=from-2"), "{requests:?}");
}

#[tokio::test]
async fn a_list_whose_token_keeps_expiring_fails_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (mock, settings) = start(dir.path()).await;
    mock.lock().unwrap_or_else(PoisonError::into_inner).expiring = usize::MAX;
    let store = Arc::new(Store::open(&dir.path().join("reports")).unwrap());
    let err = snapshots::take_and_store(&store, &settings)
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with("LIST /api/v1/pods failed: ") && message.contains("too old"),
        "{message}"
    );
    // The first list and its restarts, each a first page and an expired
    // second one; nothing stored.
    assert_eq!(
        pod_requests(&mock).len(),
        2 * (1 + snapshots::MAX_LIST_RESTARTS)
    );
    assert!(store.snapshot_times().unwrap().is_empty());
}
