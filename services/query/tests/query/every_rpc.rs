//! What every RPC shares: an empty store answers empty results, and an
//! event nested deeper than the JSON parser's limit degrades instead of
//! failing.

use std::sync::Arc;

use auditrail_event::EventType;
use auditrail_proto::v1;
use jiff::Timestamp;
use tonic::Code;

use crate::common::{Server, expect_code, filter, search, store_with};
use crate::export::export;

/// An empty store answers every RPC with an empty result, not an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_over_an_empty_store_answers_empty_results() {
    let (_dir, store) = store_with(&[]).await;
    let mut server = Server::start(Arc::new(store)).await;
    let client = &mut server.client;
    let page = client
        .search(search(filter(), 0))
        .await
        .expect("search")
        .into_inner();
    assert!(page.events.is_empty());
    assert_eq!(page.total_hits, 0);
    assert!(page.next_page_token.is_empty());
    let histogram = client
        .histogram(v1::HistogramRequest::default())
        .await
        .expect("histogram")
        .into_inner();
    assert!(histogram.buckets.is_empty());
    assert_eq!(histogram.total, 0);
    let got = export(client, v1::ExportRequest::default()).await;
    assert_eq!(got.doc, b"[]\n");
    let history = client
        .history(v1::HistoryRequest {
            resource: "networkpolicies".into(),
            namespace: "default".into(),
            name: "x".into(),
            ..v1::HistoryRequest::default()
        })
        .await
        .expect("history")
        .into_inner();
    assert!(history.versions.is_empty());
    // It says what it searched: no cluster, since the store holds none.
    assert_eq!(
        (
            history.cluster.as_str(),
            history.resource.as_str(),
            history.kind.as_str()
        ),
        ("", "networkpolicies", "NetworkPolicy")
    );
    server.stop().await;
}

/// An event nesting deeper than the JSON parser's limit is stored like any
/// other; YAML renders it as its original JSON with a note instead of
/// failing the export, history lists it without its object, and diff says
/// why it cannot compare it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deeply_nested_event_degrades_instead_of_failing() {
    let version = |verb: &str, time: &str, data: &str| {
        format!(
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"{verb}","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/configmaps/deep","verb":"{verb}","user":{{"username":"u"}},"objectRef":{{"resource":"configmaps","namespace":"default","name":"deep","apiVersion":"v1"}},"responseStatus":{{"code":200}},"responseObject":{{"kind":"ConfigMap","apiVersion":"v1","metadata":{{"name":"deep","namespace":"default"}},"data":{data}}},"requestReceivedTimestamp":"{time}","stageTimestamp":"{time}"}}"#
        )
    };
    let deep = format!("{{\"x\":{}1{}}}", "[".repeat(2000), "]".repeat(2000));
    let lines = [
        version("create", "2026-02-01T00:00:00Z", r#"{"a":"1"}"#),
        version("update", "2026-02-01T00:01:00Z", &deep),
    ];
    // The test's own reading (serde_json::Value) cannot hold the deep
    // event: the store is given the product's indexed view directly.
    let (dir, store) = store_with(&[]).await;
    let now: Timestamp = "2026-06-01T00:00:00Z".parse().expect("time");
    let indexed = lines
        .iter()
        .map(|l| {
            auditrail_store::IndexedEvent::from_raw("deep", l.as_bytes(), EventType::Kube, now)
                .expect("the product stores it")
        })
        .collect();
    let outcome = auditrail_store::Store::write(&store, indexed)
        .await
        .expect("write");
    assert_eq!(outcome.inserted, 2);
    let mut server = Server::start(Arc::new(store)).await;
    let client = &mut server.client;

    let got = export(
        client,
        v1::ExportRequest {
            format: v1::ExportFormat::Yaml as i32,
            sort: v1::SortOrder::OldestFirst as i32,
            ..v1::ExportRequest::default()
        },
    )
    .await;
    assert_eq!(got.summary.total_events, 2);
    let doc = String::from_utf8(got.doc).expect("utf-8");
    let parts: Vec<&str> = doc.split("---\n").skip(1).collect();
    assert_eq!(parts.len(), 2);
    assert!(parts[0].starts_with("kind: Event\n"), "{}", parts[0]);
    assert!(
        parts[1].starts_with("# auditrail: this event is shown as its original JSON"),
        "{}",
        &parts[1][..100]
    );
    assert!(parts[1].ends_with(&format!("{}\n", lines[1])));

    let history = client
        .history(v1::HistoryRequest {
            resource: "configmaps".into(),
            namespace: "default".into(),
            name: "deep".into(),
            ..v1::HistoryRequest::default()
        })
        .await
        .expect("history")
        .into_inner();
    assert_eq!(history.versions.len(), 2);
    assert!(!history.versions[0].object.is_empty());
    assert!(history.versions[1].object.is_empty());
    let status = expect_code(
        client
            .diff(v1::DiffRequest {
                from_event_id: history.versions[0].event_id.clone(),
                to_event_id: history.versions[1].event_id.clone(),
                ..v1::DiffRequest::default()
            })
            .await,
        Code::FailedPrecondition,
        "diff with a deep object",
    );
    assert!(
        status.message().contains("cannot be compared"),
        "{status:?}"
    );
    assert!(status.message().contains("recursion limit"), "{status:?}");
    server.stop().await;
    drop(dir);
}
