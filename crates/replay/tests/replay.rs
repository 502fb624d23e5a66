//! Replay from the outside: hand-written histories with the exact state
//! they must give, snapshots as `kubectl` writes them, warnings for what
//! cannot be applied, and the order independence the reports rely on.

use auditrail_replay::{
    Applied, ObjectKey, Recorded, Replayer, Snapshot, SnapshotError, State, WarningKind,
    parse_list, replay,
};
use jiff::Timestamp;
use proptest::prelude::*;
use serde_json::{Value, json};

const CLUSTER: &str = "test";

/// Builds audit events as the API server writes them.
#[derive(Debug, Clone)]
struct Ev {
    audit_id: String,
    verb: String,
    resource: String,
    group: String,
    namespace: Option<String>,
    name: String,
    code: i32,
    stage: String,
    uri: String,
    subresource: Option<String>,
    time: String,
    received: Option<String>,
    response: Option<Value>,
}

fn ts(second: u32) -> String {
    format!("2026-11-02T10:00:{second:02}.000000Z")
}

fn at(second: u32) -> Timestamp {
    ts(second).parse().expect("a valid test time")
}

fn object(
    kind: &str,
    api_version: &str,
    ns: Option<&str>,
    name: &str,
    rv: u64,
    labels: Value,
) -> Value {
    let mut metadata = json!({"name": name, "resourceVersion": rv.to_string()});
    metadata["labels"] = labels;
    if let Some(ns) = ns {
        metadata["namespace"] = json!(ns);
    }
    json!({"kind": kind, "apiVersion": api_version, "metadata": metadata})
}

fn pod(ns: &str, name: &str, rv: u64, app: &str) -> Value {
    object("Pod", "v1", Some(ns), name, rv, json!({"app": app}))
}

impl Ev {
    fn new(
        verb: &str,
        resource: &str,
        group: &str,
        ns: Option<&str>,
        name: &str,
        second: u32,
    ) -> Self {
        Self {
            audit_id: format!("{verb}-{name}-{second}"),
            verb: verb.into(),
            resource: resource.into(),
            group: group.into(),
            namespace: ns.map(Into::into),
            name: name.into(),
            code: if verb == "create" { 201 } else { 200 },
            stage: "ResponseComplete".into(),
            uri: format!("/api/v1/{resource}/{name}"),
            subresource: None,
            time: ts(second),
            received: None,
            response: None,
        }
    }

    fn pod(verb: &str, ns: &str, name: &str, second: u32, response: Option<Value>) -> Self {
        Self::new(verb, "pods", "", Some(ns), name, second).response(response)
    }

    fn response(mut self, response: Option<Value>) -> Self {
        self.response = response;
        self
    }

    fn line(&self) -> String {
        let mut object_ref = json!({
            "resource": self.resource,
            "name": self.name,
            "apiVersion": "v1",
        });
        if !self.group.is_empty() {
            object_ref["apiGroup"] = json!(self.group);
        }
        if let Some(ns) = &self.namespace {
            object_ref["namespace"] = json!(ns);
        }
        if let Some(sub) = &self.subresource {
            object_ref["subresource"] = json!(sub);
        }
        let mut event = json!({
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "RequestResponse",
            "auditID": self.audit_id,
            "stage": self.stage,
            "requestURI": self.uri,
            "verb": self.verb,
            "user": {"username": "alice"},
            "objectRef": object_ref,
            "responseStatus": {"code": self.code},
            "requestReceivedTimestamp": self.received.clone().unwrap_or_else(|| self.time.clone()),
            "stageTimestamp": self.time,
        });
        if let Some(response) = &self.response {
            event["responseObject"] = response.clone();
        }
        event.to_string()
    }
}

fn lines(events: &[Ev]) -> Vec<String> {
    events.iter().map(Ev::line).collect()
}

fn parse_all(lines: &[String]) -> Vec<Recorded<'_>> {
    lines
        .iter()
        .map(|l| Recorded::parse(CLUSTER, l.as_bytes()).expect("a valid test event"))
        .collect()
}

fn state_at(snapshot: Option<&Snapshot>, events: &[Ev], second: u32) -> auditrail_replay::Replay {
    let lines = lines(events);
    replay(snapshot, &parse_all(&lines), at(second)).expect("a valid snapshot")
}

fn pod_key(ns: &str, name: &str) -> ObjectKey {
    ObjectKey::new("pods", "", ns, name)
}

fn labels_of(state: &State, key: &ObjectKey) -> Option<Value> {
    state.get(key).map(|o| o["metadata"]["labels"].clone())
}

#[test]
fn create_then_patch_keeps_the_patched_object() {
    let events = [
        Ev::pod(
            "create",
            "prod",
            "web",
            1,
            Some(pod("prod", "web", 10, "v1")),
        ),
        Ev::pod(
            "patch",
            "prod",
            "web",
            2,
            Some(pod("prod", "web", 11, "v2")),
        ),
    ];
    let r = state_at(None, &events, 59);
    assert_eq!(r.state.len(), 1);
    assert_eq!(
        labels_of(&r.state, &pod_key("prod", "web")),
        Some(json!({"app": "v2"}))
    );
    assert_eq!(r.counts.applied, 2);
    assert!(r.warnings.is_empty());
    assert_eq!(r.started_from, None);
    // At the instant between the two, the first version.
    let r = state_at(None, &events, 1);
    assert_eq!(
        labels_of(&r.state, &pod_key("prod", "web")),
        Some(json!({"app": "v1"}))
    );
}

#[test]
fn managed_fields_are_not_kept() {
    let mut object = pod("prod", "web", 10, "v1");
    object["metadata"]["managedFields"] = json!([{"manager": "kubectl", "operation": "Apply"}]);
    object["metadata"]["annotations"] = json!({"a": "b"});
    let r = state_at(
        None,
        &[Ev::pod("create", "prod", "web", 1, Some(object.clone()))],
        59,
    );
    let kept = r.state.get(&pod_key("prod", "web")).cloned();
    if let Some(metadata) = object["metadata"].as_object_mut() {
        metadata.remove("managedFields");
    }
    assert_eq!(kept, Some(object));
}

#[test]
fn an_older_resource_version_never_replaces_a_newer_one() {
    let events = [
        Ev::pod(
            "create",
            "prod",
            "web",
            1,
            Some(pod("prod", "web", 10, "v1")),
        ),
        Ev::pod(
            "update",
            "prod",
            "web",
            2,
            Some(pod("prod", "web", 12, "new")),
        ),
        // Logged later, but a version older than the one held.
        Ev::pod(
            "update",
            "prod",
            "web",
            3,
            Some(pod("prod", "web", 11, "old")),
        ),
    ];
    let r = state_at(None, &events, 59);
    assert_eq!(
        labels_of(&r.state, &pod_key("prod", "web")),
        Some(json!({"app": "new"}))
    );
    assert_eq!(r.counts.stale, 1);
    assert_eq!(r.counts.applied, 2);
}

#[test]
fn delete_removes_and_recreate_comes_back() {
    let events = [
        Ev::pod(
            "create",
            "prod",
            "web",
            1,
            Some(pod("prod", "web", 10, "v1")),
        ),
        Ev::pod("create", "prod", "db", 1, Some(pod("prod", "db", 11, "db"))),
        // A delete answered with a Status (no object) is applied too.
        Ev::pod(
            "delete",
            "prod",
            "web",
            2,
            Some(json!({"kind": "Status", "status": "Success"})),
        ),
    ];
    let r = state_at(None, &events, 2);
    assert_eq!(r.state.get(&pod_key("prod", "web")), None);
    assert!(r.state.get(&pod_key("prod", "db")).is_some());
    let mut more = events.to_vec();
    more.push(Ev::pod(
        "create",
        "prod",
        "web",
        3,
        Some(pod("prod", "web", 20, "v3")),
    ));
    let r = state_at(None, &more, 59);
    assert_eq!(
        labels_of(&r.state, &pod_key("prod", "web")),
        Some(json!({"app": "v3"}))
    );
}

#[test]
fn deleting_a_namespace_removes_what_is_in_it() {
    let gnp = object(
        "GlobalNetworkPolicy",
        "projectcalico.org/v3",
        None,
        "default.deny",
        5,
        json!({}),
    );
    let netpol = object(
        "NetworkPolicy",
        "networking.k8s.io/v1",
        Some("a"),
        "deny",
        6,
        json!({}),
    );
    let events = [
        Ev::new("create", "namespaces", "", None, "a", 1).response(Some(object(
            "Namespace",
            "v1",
            None,
            "a",
            1,
            json!({}),
        ))),
        Ev::new("create", "namespaces", "", None, "b", 1).response(Some(object(
            "Namespace",
            "v1",
            None,
            "b",
            2,
            json!({}),
        ))),
        Ev::pod("create", "a", "web", 2, Some(pod("a", "web", 3, "web"))),
        Ev::pod("create", "b", "web", 2, Some(pod("b", "web", 4, "web"))),
        Ev::new(
            "create",
            "globalnetworkpolicies",
            "projectcalico.org",
            None,
            "default.deny",
            2,
        )
        .response(Some(gnp)),
        Ev::new(
            "create",
            "networkpolicies",
            "networking.k8s.io",
            Some("a"),
            "deny",
            2,
        )
        .response(Some(netpol)),
        // The API server writes the namespace's own name as objectRef.namespace.
        Ev::new("delete", "namespaces", "", Some("a"), "a", 3),
    ];
    let r = state_at(None, &events, 59);
    let keys: Vec<String> = r
        .state
        .iter()
        .map(|(k, _)| format!("{}.{} {}/{}", k.resource, k.api_group, k.namespace, k.name))
        .collect();
    assert_eq!(
        keys,
        [
            "globalnetworkpolicies.projectcalico.org /default.deny",
            "namespaces. /b",
            "pods. b/web",
        ]
    );
}

#[test]
fn a_write_without_response_object_is_a_warning_with_its_ids() {
    let events = [
        Ev::pod(
            "create",
            "prod",
            "web",
            1,
            Some(pod("prod", "web", 10, "v1")),
        ),
        Ev::pod("patch", "prod", "web", 2, None),
        // Not a policy gap: a delete needs no object.
        Ev::pod("delete", "prod", "db", 3, None),
    ];
    let lines = lines(&events);
    let recorded = parse_all(&lines);
    let r = replay(None, &recorded, at(59)).expect("no snapshot");
    assert_eq!(r.warnings.len(), 1);
    let w = &r.warnings[0];
    assert_eq!(w.audit_id, "patch-web-2");
    assert_eq!(w.event_id, recorded[1].id);
    assert_eq!(w.kind, WarningKind::MissingResponseObject);
    assert_eq!(w.key, pod_key("prod", "web"));
    assert_eq!(
        w.to_string(),
        format!(
            "event {} (auditID patch-web-2, patch pods prod/web) not applied: no responseObject; \
             the audit policy must log this resource at level RequestResponse",
            recorded[1].id
        )
    );
    // The state keeps the last version that could be read.
    assert_eq!(
        labels_of(&r.state, &pod_key("prod", "web")),
        Some(json!({"app": "v1"}))
    );
    assert_eq!(r.counts.warned, 1);
}

#[test]
fn a_status_where_the_object_belongs_is_a_warning() {
    let events = [Ev::pod(
        "update",
        "prod",
        "web",
        1,
        Some(json!({"kind": "Status", "metadata": {}})),
    )];
    let r = state_at(None, &events, 59);
    assert!(r.state.is_empty());
    assert!(matches!(
        r.warnings.first().map(|w| &w.kind),
        Some(WarningKind::UnreadableResponseObject(why)) if why.contains("Status")
    ));
}

#[test]
fn only_successful_complete_writes_of_tracked_objects_count() {
    let p = || Some(pod("prod", "web", 10, "v1"));
    let mut failed = Ev::pod("create", "prod", "web", 1, p());
    failed.code = 403;
    let mut started = Ev::pod("create", "prod", "web", 1, p());
    started.stage = "ResponseStarted".into();
    let mut dry = Ev::pod("create", "prod", "web", 1, p());
    dry.uri = "/api/v1/namespaces/prod/pods?dryRun=All".into();
    let mut status = Ev::pod("update", "prod", "web", 1, p());
    status.subresource = Some("status".into());
    let configmap = Ev::new("create", "configmaps", "", Some("prod"), "web", 1).response(Some(
        object("ConfigMap", "v1", Some("prod"), "web", 1, json!({})),
    ));
    let crd = Ev::new(
        "create",
        "networkpolicies",
        "crd.projectcalico.org",
        Some("prod"),
        "p",
        1,
    )
    .response(Some(object(
        "NetworkPolicy",
        "crd.projectcalico.org/v1",
        Some("prod"),
        "p",
        1,
        json!({}),
    )));
    let get = Ev::pod("get", "prod", "web", 1, p());
    let events = [failed, started, dry, status, configmap, crd, get];
    let lines = lines(&events);
    let mut replayer = Replayer::new();
    for rec in parse_all(&lines) {
        assert_eq!(
            replayer.apply(&rec),
            Applied::Ignored,
            "{}",
            rec.event.audit_id
        );
    }
    let r = replayer.finish();
    assert!(r.state.is_empty());
    assert!(r.warnings.is_empty());
    assert_eq!(r.counts.ignored, 7);
}

#[test]
fn extensions_network_policies_are_networking_ones() {
    let np = |rv| {
        object(
            "NetworkPolicy",
            "extensions/v1beta1",
            Some("a"),
            "np",
            rv,
            json!({"v": rv.to_string()}),
        )
    };
    let events = [
        Ev::new(
            "create",
            "networkpolicies",
            "networking.k8s.io",
            Some("a"),
            "np",
            1,
        )
        .response(Some(np(1))),
        Ev::new(
            "update",
            "networkpolicies",
            "extensions",
            Some("a"),
            "np",
            2,
        )
        .response(Some(np(2))),
    ];
    let r = state_at(None, &events, 59);
    assert_eq!(r.state.len(), 1);
    let key = ObjectKey::new("networkpolicies", "networking.k8s.io", "a", "np");
    assert_eq!(labels_of(&r.state, &key), Some(json!({"v": "2"})));
}

#[test]
fn deletecollection_removes_each_listed_item() {
    let list = json!({"kind": "PodList", "apiVersion": "v1", "items": [
        pod("prod", "a", 20, "a"), pod("prod", "b", 21, "b"),
    ]});
    let mut dc = Ev::pod("deletecollection", "prod", "", 2, Some(list));
    dc.name = String::new();
    let events = [
        Ev::pod("create", "prod", "a", 1, Some(pod("prod", "a", 10, "a"))),
        Ev::pod("create", "prod", "b", 1, Some(pod("prod", "b", 11, "b"))),
        Ev::pod("create", "prod", "c", 1, Some(pod("prod", "c", 12, "c"))),
        dc.clone(),
    ];
    let r = state_at(None, &events, 59);
    let names: Vec<&str> = r.state.iter().map(|(k, _)| k.name.as_str()).collect();
    assert_eq!(names, ["c"]);
    // Without the list, what was deleted is unknown: a warning.
    let events = [
        Ev::pod("create", "prod", "a", 1, Some(pod("prod", "a", 10, "a"))),
        dc.response(None),
    ];
    let r = state_at(None, &events, 59);
    assert_eq!(r.state.len(), 1);
    assert_eq!(r.warnings.len(), 1);
}

const KUBECTL_LIST: &str = r#"{
  "apiVersion": "v1",
  "kind": "List",
  "items": [
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "prod", "resourceVersion": "100", "labels": {"app": "snap"}}},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "prod"}},
    {"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy", "metadata": {"name": "default.deny", "resourceVersion": "90"}, "spec": {}},
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod", "resourceVersion": "1"}}
  ],
  "metadata": {"resourceVersion": ""}
}"#;

#[test]
fn kubectl_list_output_is_a_snapshot() {
    let (snapshot, skipped) =
        parse_list(KUBECTL_LIST.as_bytes(), at(10), at(11)).expect("a valid list");
    assert_eq!(snapshot.objects.len(), 3);
    assert_eq!(skipped.len(), 1);
    assert_eq!((skipped[0].index, skipped[0].kind.as_str()), (1, "Service"));
    let state = State::from_snapshot(&snapshot).expect("valid objects");
    assert!(state.get(&pod_key("prod", "web")).is_some());
    assert!(
        state
            .get(&ObjectKey::new(
                "globalnetworkpolicies",
                "projectcalico.org",
                "",
                "default.deny"
            ))
            .is_some()
    );
    assert!(
        state
            .get(&ObjectKey::new("namespaces", "", "", "prod"))
            .is_some()
    );
}

#[test]
fn a_typed_list_names_its_items_kind() {
    let list = r#"{"kind": "NetworkPolicyList", "apiVersion": "networking.k8s.io/v1", "items": [
        {"metadata": {"name": "np", "namespace": "a"}}
    ]}"#;
    let (snapshot, skipped) = parse_list(list.as_bytes(), at(1), at(1)).expect("a valid list");
    assert!(skipped.is_empty());
    assert_eq!(snapshot.objects[0]["kind"], "NetworkPolicy");
    assert_eq!(snapshot.objects[0]["apiVersion"], "networking.k8s.io/v1");
}

#[test]
fn bad_snapshots_say_which_item() {
    let cases: [(&str, &str); 6] = [
        (
            "[]",
            "the snapshot is not a Kubernetes List (an object with `items`): not an object",
        ),
        (
            "{\"kind\": \"List\"}",
            "the snapshot is not a Kubernetes List (an object with `items`): no `items`",
        ),
        (
            "{\"kind\": \"List\", \"apiVersion\": \"v1\", \"items\": [{\"metadata\": {\"name\": \"x\"}}]}",
            "item 0: no kind and apiVersion, neither on the item nor on a typed list",
        ),
        (
            "{\"kind\": \"List\", \"items\": [{\"kind\": \"Pod\", \"apiVersion\": \"v1\", \"metadata\": {}}]}",
            "item 0 (Pod): no metadata.name",
        ),
        (
            "{\"kind\": \"List\", \"items\": [{\"kind\": \"Pod\", \"apiVersion\": \"v1\", \"metadata\": {\"name\": \"p\"}}]}",
            "item 0 (Pod p): a namespaced object without metadata.namespace",
        ),
        (
            "{",
            "the snapshot is not JSON: EOF while parsing an object at line 1 column 1",
        ),
    ];
    for (input, want) in cases {
        let got = parse_list(input.as_bytes(), at(1), at(2))
            .err()
            .map(|e| e.to_string());
        assert_eq!(got.as_deref(), Some(want), "{input}");
    }
    assert!(matches!(
        parse_list(b"{\"items\": []}", at(2), at(1)),
        Err(SnapshotError::Times { .. })
    ));
}

#[test]
fn replay_starts_at_the_snapshot() {
    let (snapshot, _) = parse_list(KUBECTL_LIST.as_bytes(), at(10), at(11)).expect("a valid list");
    let events = [
        // Before the snapshot: already in it, not applied again.
        Ev::pod("delete", "prod", "web", 5, None),
        // During the LIST, but older than what it returned: stale.
        Ev::pod(
            "update",
            "prod",
            "web",
            10,
            Some(pod("prod", "web", 99, "older")),
        ),
        Ev::pod(
            "create",
            "prod",
            "db",
            12,
            Some(pod("prod", "db", 101, "db")),
        ),
        Ev::new(
            "delete",
            "globalnetworkpolicies",
            "projectcalico.org",
            None,
            "default.deny",
            13,
        ),
        // After the instant asked for.
        Ev::pod("delete", "prod", "db", 30, None),
    ];
    let r = state_at(Some(&snapshot), &events, 20);
    assert_eq!(r.started_from, Some(at(10)));
    assert_eq!(
        labels_of(&r.state, &pod_key("prod", "web")),
        Some(json!({"app": "snap"}))
    );
    assert!(r.state.get(&pod_key("prod", "db")).is_some());
    assert_eq!(r.state.len(), 3);
    assert_eq!((r.counts.applied, r.counts.stale), (2, 1));
}

#[test]
fn ties_in_time_are_broken_by_received_time_then_id() {
    let mut first = Ev::pod(
        "update",
        "prod",
        "web",
        5,
        Some(pod("prod", "web", 1, "first")),
    );
    first.received = Some(ts(1));
    let mut second = Ev::pod(
        "update",
        "prod",
        "web",
        5,
        Some(pod("prod", "web", 1, "second")),
    );
    second.received = Some(ts(2));
    // Same resourceVersion, so order alone decides: received time.
    let r = state_at(None, &[second.clone(), first.clone()], 59);
    assert_eq!(
        labels_of(&r.state, &pod_key("prod", "web")),
        Some(json!({"app": "second"}))
    );
    // Same times: the higher id is applied last.
    first.received = None;
    second.received = None;
    let lines = lines(&[first, second]);
    let recorded = parse_all(&lines);
    let applied_last = recorded
        .iter()
        .max_by_key(|r| r.id)
        .and_then(|r| r.event.response_object)
        .and_then(|o| serde_json::from_str::<Value>(o.get()).ok())
        .map(|o| o["metadata"]["labels"]["app"].clone());
    for order in [[0, 1], [1, 0]] {
        let events = [recorded[order[0]].clone(), recorded[order[1]].clone()];
        let r = replay(None, &events, at(59)).expect("no snapshot");
        let app = labels_of(&r.state, &pod_key("prod", "web")).map(|l| l["app"].clone());
        assert_eq!(app, applied_last);
    }
}

/// A random history over a few objects: creates, updates with random
/// resource versions, deletes, namespace deletes, and writes without
/// objects, at times that often coincide.
fn history() -> impl Strategy<Value = Vec<Ev>> {
    let op = (0u8..6, 0usize..2, 0usize..3, 0u32..6, 1u64..8);
    prop::collection::vec(op, 0..24).prop_map(|ops| {
        ops.into_iter()
            .enumerate()
            .map(|(i, (op, ns, name, second, rv))| {
                let ns = ["a", "b"][ns];
                let name = ["x", "y", "z"][name];
                let mut ev = match op {
                    0 | 1 => Ev::pod(
                        "create",
                        ns,
                        name,
                        second,
                        Some(pod(ns, name, rv, &i.to_string())),
                    ),
                    2 => Ev::pod(
                        "patch",
                        ns,
                        name,
                        second,
                        Some(pod(ns, name, rv, &i.to_string())),
                    ),
                    3 => Ev::pod("delete", ns, name, second, None),
                    4 => Ev::new("delete", "namespaces", "", Some(ns), ns, second),
                    _ => Ev::pod("update", ns, name, second, None),
                };
                ev.audit_id = format!("e{i}");
                ev
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn any_arrival_order_gives_the_same_bytes(
        (events, shuffled) in history().prop_flat_map(|h| (Just(h.clone()), Just(h).prop_shuffle())),
        second in 0u32..7,
    ) {
        let a = state_at(None, &events, second);
        let b = state_at(None, &shuffled, second);
        prop_assert_eq!(a.state.to_json().ok(), b.state.to_json().ok());
        prop_assert_eq!(&a.warnings, &b.warnings);
        prop_assert_eq!(a.counts, b.counts);
    }
}
