//! The real samples of `shared/data/real` through the service: each
//! event's summary and `History` membership as
//! `crates/event/tests/real_events.tsv` gives them.

use std::collections::{BTreeMap, HashMap, HashSet};

use auditrail_proto::v1;
use tonic::Code;

use crate::common::{Ev, events_of, expect_code, real_data_dir, search_all, serve};

/// Every real sample, through the real service: each event's summary in a
/// search answer is the one `crates/event/tests/real_events.tsv` gives (rows
/// written from reading the events), and `History` of its object lists the
/// event exactly when its row says it is a version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_events_read_right_in_search_and_history() {
    let root = real_data_dir();
    let table = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../crates/event/tests/real_events.tsv"),
    )
    .expect("real_events.tsv");
    // id → (version, summary); the table names lines by file and number.
    let mut expected: HashMap<String, (bool, String)> = HashMap::new();
    let mut lines = Vec::new();
    for row in table
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let cols: Vec<&str> = row.split('\t').collect();
        let [file, line, version, summary] = cols[..] else {
            panic!("row {row:?}");
        };
        if version == "error" {
            continue;
        }
        let n: usize = line.parse().expect("line number");
        let content = std::fs::read_to_string(root.join(file)).expect("sample");
        let text = content.split('\n').nth(n - 1).expect("the line exists");
        let ev = Ev::new("real", text).expect("an event");
        expected.insert(ev.id.clone(), (version == "version", summary.to_owned()));
        lines.push(text.to_owned());
    }
    let events = events_of("real", &lines);
    assert!(events.len() > 200, "every real sample: {}", events.len());
    let (_dir, _store, mut server) = serve(&events).await;

    let walk = search_all(
        &mut server.client,
        v1::SearchRequest {
            page_size: 1000,
            ..v1::SearchRequest::default()
        },
    )
    .await;
    assert_eq!(walk.events.len(), events.len());
    for got in &walk.events {
        let (version, summary) = &expected[&got.id];
        assert_eq!(&got.summary, summary, "{}", got.id);
        assert_eq!(got.version, *version, "{summary}");
    }

    // History of each object holds exactly its versions.
    let mut objects: BTreeMap<(String, String, String, String), Vec<&Ev>> = BTreeMap::new();
    for e in &events {
        if e.resource.is_empty() || e.name.is_empty() {
            continue;
        }
        let cluster_scoped =
            auditrail_event::resource::namespaced(&e.resource, Some(&e.api_group)) == Some(false);
        let namespace = if cluster_scoped { "" } else { &e.namespace };
        let group = if e.api_group.is_empty() {
            "core"
        } else {
            &e.api_group
        };
        objects
            .entry((
                group.to_owned(),
                e.resource.clone(),
                namespace.to_owned(),
                e.name.clone(),
            ))
            .or_default()
            .push(e);
    }
    let mut versions_seen = 0;
    for ((group, resource, namespace, name), about) in &objects {
        let history = server
            .client
            .history(v1::HistoryRequest {
                api_group: group.clone(),
                resource: resource.clone(),
                namespace: namespace.clone(),
                name: name.clone(),
                page_size: 1000,
                ..v1::HistoryRequest::default()
            })
            .await
            .unwrap_or_else(|s| panic!("history {resource} {namespace}/{name}: {s:?}"))
            .into_inner();
        let listed: HashSet<&str> = history
            .versions
            .iter()
            .map(|v| v.event_id.as_str())
            .collect();
        let want: HashSet<&str> = about
            .iter()
            .filter(|e| expected[&e.id].0)
            .map(|e| e.id.as_str())
            .collect();
        assert_eq!(
            listed, want,
            "history of {group}/{resource} {namespace}/{name}"
        );
        assert_eq!(history.cluster, "real");
        versions_seen += want.len();
    }
    let all_versions = expected.values().filter(|(v, _)| *v).count();
    assert!(versions_seen > 50, "{versions_seen} versions checked");
    assert!(versions_seen <= all_versions);

    // Kinds as kubectl users write them name the same history.
    let history = |resource: &str, namespace: &str, name: &str| v1::HistoryRequest {
        resource: resource.into(),
        namespace: namespace.into(),
        name: name.into(),
        ..v1::HistoryRequest::default()
    };
    let ids = |r: v1::HistoryResponse| -> Vec<String> {
        r.versions.into_iter().map(|v| v.event_id).collect()
    };
    let namespace_foo = ids(server
        .client
        .history(history("namespaces", "", "foo"))
        .await
        .expect("history")
        .into_inner());
    assert_eq!(
        namespace_foo.len(),
        4,
        "three creates of namespace foo, one delete"
    );
    for alias in ["ns", "Namespace", "namespace", "NAMESPACES"] {
        let got = server
            .client
            .history(history(alias, "", "foo"))
            .await
            .expect(alias);
        let got = got.into_inner();
        assert_eq!(
            (got.resource.as_str(), got.kind.as_str()),
            ("namespaces", "Namespace")
        );
        assert_eq!(ids(got), namespace_foo, "{alias}");
    }
    let config = ids(server
        .client
        .history(history("configmaps", "default", "my-config"))
        .await
        .expect("history")
        .into_inner());
    assert!(config.len() >= 8, "{config:?}");
    for alias in ["ConfigMap", "configmap", "cm"] {
        let got = server
            .client
            .history(history(alias, "default", "my-config"))
            .await;
        assert_eq!(ids(got.expect(alias).into_inner()), config, "{alias}");
    }
    // A namespace on a cluster-scoped object, or none on a namespaced one,
    // is a mistake, never an empty answer.
    let status = expect_code(
        server
            .client
            .history(history("namespaces", "foo", "foo"))
            .await,
        Code::InvalidArgument,
        "namespace foo/foo",
    );
    assert!(status.message().contains("cluster-scoped"), "{status:?}");
    let status = expect_code(
        server.client.history(history("cm", "", "my-config")).await,
        Code::InvalidArgument,
        "a config map without its namespace",
    );
    assert!(status.message().contains("namespaced"), "{status:?}");
    server.stop().await;
}
