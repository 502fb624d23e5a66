//! History: the versions of a network policy, paging, bad requests;
//! versions derived in the test from the response objects.

use std::collections::BTreeMap;

use auditrail_proto::v1;
use serde_json::Value;
use tonic::Code;

use crate::common::{Client, Ev, dataset, expect_code, rfc3339, serve, time_of};

const WRITE_VERBS: [&str; 4] = ["create", "update", "patch", "delete"];

/// A successful write at ResponseComplete on the resource itself: a version.
pub(crate) fn is_version(e: &Ev) -> bool {
    e.stage == "ResponseComplete"
        && WRITE_VERBS.contains(&e.verb.as_str())
        && e.code.is_some_and(|c| (200..300).contains(&c))
        && e.subresource.is_empty()
}

/// One resource: cluster, api group, resource, namespace, name.
pub(crate) type Key = (String, String, String, String, String);

pub(crate) fn key(e: &Ev) -> Key {
    (
        e.cluster.clone(),
        e.api_group.clone(),
        e.resource.clone(),
        e.namespace.clone(),
        e.name.clone(),
    )
}

/// A network policy of `alpha` with a create, patches or updates and a
/// delete, no dry run, at least one read and one refused write; the richest
/// such policy. Returns every event about it, oldest first.
pub(crate) fn pick_policy(data: &[Ev]) -> Vec<&Ev> {
    let mut by_key: BTreeMap<Key, Vec<&Ev>> = BTreeMap::new();
    for e in data
        .iter()
        .filter(|e| e.cluster == "alpha" && e.resource == "networkpolicies")
    {
        by_key.entry(key(e)).or_default().push(e);
    }
    by_key
        .into_values()
        .filter_map(|mut events| {
            events.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
            let versions: Vec<&&Ev> = events.iter().filter(|e| is_version(e)).collect();
            let changes = versions
                .iter()
                .filter(|e| e.verb == "patch" || e.verb == "update")
                .count();
            let fits = versions.first().is_some_and(|e| e.verb == "create")
                && versions.last().is_some_and(|e| e.verb == "delete")
                && versions.iter().filter(|e| e.verb == "delete").count() == 1
                && changes >= 2
                && events.iter().all(|e| !e.dry_run)
                && events
                    .iter()
                    .any(|e| e.verb == "get" && e.code == Some(200));
            let refused = events
                .iter()
                .any(|e| WRITE_VERBS.contains(&e.verb.as_str()) && !is_version(e));
            fits.then_some(((refused, versions.len()), events))
        })
        .max_by_key(|(score, _)| *score)
        .map(|(_, events)| events)
        .expect("the generated data has a network policy created, changed and deleted")
}

/// What History must answer for the versions among `events`.
pub(crate) struct Expected<'a> {
    pub(crate) event: &'a Ev,
    pub(crate) object: Value,
}

pub(crate) fn expected_versions<'a>(events: &[&'a Ev]) -> Vec<Expected<'a>> {
    let mut previous: Option<Value> = None;
    let mut out = Vec::new();
    for e in events.iter().copied().filter(|e| is_version(e)) {
        let response = e.json.get("responseObject");
        let is_object = response.is_some_and(|r| {
            r.get("metadata").is_some() && r.get("kind").and_then(Value::as_str) != Some("Status")
        });
        let object = match (is_object, e.verb.as_str()) {
            (true, _) => response.cloned().expect("object"),
            (false, "delete") => previous.clone().expect("a delete after a version"),
            (false, _) => panic!("a successful write carries its object: {}", e.raw),
        };
        previous = Some(object.clone());
        out.push(Expected { event: e, object });
    }
    out
}

pub(crate) fn assert_version(got: &v1::ResourceVersion, want: &Expected<'_>) {
    let e = want.event;
    let metadata = |key: &str| {
        want.object
            .pointer(&format!("/metadata/{key}"))
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    assert_eq!(got.event_id, e.id);
    assert_eq!(time_of(got.time.as_ref()), e.time, "{}", e.id);
    assert_eq!(got.user, e.user);
    assert_eq!(got.verb, e.verb);
    assert_eq!(got.response_code, e.code.expect("code"));
    assert_eq!(got.deleted, e.verb == "delete", "{}", e.id);
    assert_eq!(
        got.resource_version,
        metadata("resourceVersion"),
        "{}",
        e.id
    );
    assert_eq!(got.uid, metadata("uid"));
    assert_eq!(got.kind, "NetworkPolicy");
    let object: Value = serde_json::from_slice(&got.object).expect("object is JSON");
    assert_eq!(object, want.object, "{} {}", e.verb, e.id);
}

fn history_request(policy: &Ev, cluster: &str, page_size: u32) -> v1::HistoryRequest {
    v1::HistoryRequest {
        cluster: cluster.into(),
        api_group: policy.api_group.clone(),
        resource: policy.resource.clone(),
        namespace: policy.namespace.clone(),
        name: policy.name.clone(),
        page_size,
        ..v1::HistoryRequest::default()
    }
}

async fn history_all(client: &mut Client, request: v1::HistoryRequest) -> Vec<v1::ResourceVersion> {
    let mut request = request;
    let mut out = Vec::new();
    loop {
        let page = client
            .history(request.clone())
            .await
            .expect("history")
            .into_inner();
        if request.page_size > 0 {
            assert!(page.versions.len() <= request.page_size as usize);
        }
        out.extend(page.versions);
        if page.next_page_token.is_empty() {
            return out;
        }
        request.page_token = page.next_page_token;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_lists_the_versions_of_a_network_policy() {
    let data = dataset();
    let events = pick_policy(data);
    let want = expected_versions(&events);
    assert!(want.len() >= 4, "create, two changes, delete");
    let policy = events[0];
    let (_dir, _store, mut server) = serve(data).await;
    let client = &mut server.client;

    // One page, then pages of 1 (a delete alone on its page takes the
    // object of a version on another page) and of 2.
    for page_size in [0, 1, 2, 1000] {
        let got = history_all(client, history_request(policy, "alpha", page_size)).await;
        assert_eq!(got.len(), want.len(), "page_size {page_size}");
        for (got, want) in got.iter().zip(&want) {
            assert_version(got, want);
        }
    }

    // A time range narrows the versions.
    let from = want[1].event.time;
    let got = history_all(
        client,
        v1::HistoryRequest {
            from: rfc3339(from),
            ..history_request(policy, "alpha", 0)
        },
    )
    .await;
    let ids: Vec<&str> = got.iter().map(|v| v.event_id.as_str()).collect();
    let want_ids: Vec<&str> = want[1..].iter().map(|w| w.event.id.as_str()).collect();
    assert_eq!(ids, want_ids);

    // A token belongs to its request.
    let page = client
        .history(history_request(policy, "alpha", 1))
        .await
        .expect("history")
        .into_inner();
    assert!(!page.next_page_token.is_empty());
    let other = v1::HistoryRequest {
        name: format!("{}-other", policy.name),
        page_token: page.next_page_token.clone(),
        ..history_request(policy, "alpha", 1)
    };
    expect_code(
        client.history(other).await,
        Code::InvalidArgument,
        "token of another resource",
    );
    let garbage = v1::HistoryRequest {
        page_token: "garbage".into(),
        ..history_request(policy, "alpha", 1)
    };
    expect_code(
        client.history(garbage).await,
        Code::InvalidArgument,
        "garbage token",
    );

    // Unknown resources answer an empty list.
    for request in [
        history_request(policy, "beta", 0),
        v1::HistoryRequest {
            name: "no-such-policy".into(),
            ..history_request(policy, "alpha", 0)
        },
    ] {
        let page = client.history(request).await.expect("history").into_inner();
        assert!(page.versions.is_empty());
        assert!(page.next_page_token.is_empty());
    }

    let bad = [
        (
            "no resource",
            v1::HistoryRequest {
                resource: String::new(),
                ..history_request(policy, "alpha", 0)
            },
        ),
        (
            "no name",
            v1::HistoryRequest {
                name: String::new(),
                ..history_request(policy, "alpha", 0)
            },
        ),
        (
            "no cluster, two in the store",
            history_request(policy, "", 0),
        ),
        ("page_size 1001", history_request(policy, "alpha", 1001)),
        (
            "bad time",
            v1::HistoryRequest {
                from: "last week".into(),
                ..history_request(policy, "alpha", 0)
            },
        ),
    ];
    for (what, request) in bad {
        expect_code(client.history(request).await, Code::InvalidArgument, what);
    }
    server.stop().await;

    // With a single cluster in the store, the cluster may be left out.
    let solo: Vec<Ev> = events.iter().map(|e| (*e).clone()).collect();
    let (_dir, _store, mut server) = serve(&solo).await;
    let got = history_all(&mut server.client, history_request(policy, "", 0)).await;
    assert_eq!(got.len(), want.len());
    for (got, want) in got.iter().zip(&want) {
        assert_version(got, want);
    }
    server.stop().await;
}
