//! `cargo xtask bench report`: what one report costs the reporter, in
//! process: the time of `compute` (replay to the interval's start, then
//! through every change of the interval, with the policy calculator after
//! each instant that changed the configuration, for inventory) and the
//! process's peak RSS, over a generated cluster.
//!
//! Why in process and not through `auditrail up`: what the reporter adds
//! to the trail's read (a `Search` of the tracked writes, measured by
//! `bench query`) is this computation, and its memory is the reporter's
//! own. The cluster is generated here so its objects are consistent with
//! the changes (a pod is created before it is deleted, resourceVersions
//! grow): a snapshot at the start of `--days` days with `--pods` pods in
//! `--namespaces` namespaces, a service account and Endpoints per app and
//! namespace, `--policies` policies (four in five Kubernetes
//! NetworkPolicies, the rest Calico NetworkPolicies and
//! GlobalNetworkPolicies in a tier), and, spread evenly over the days,
//! `--pod-churn` pod replacements a day (a delete and a create) and
//! `--policy-changes` policy updates a day.
//!
//! Flags: `--type policy-audit|inventory|network-access` (one report per
//! process, so that each peak RSS is its own), `--days`, `--pods`,
//! `--namespaces`, `--policies`, `--pod-churn`, `--policy-changes`.

use std::time::Instant;

use auditrail_proto::v1;
use auditrail_replay::Snapshot;
use auditrail_reporter::compute::{Input, compute};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

struct Args {
    report_type: v1::ReportType,
    days: i64,
    pods: usize,
    namespaces: usize,
    policies: usize,
    pod_churn: usize,
    policy_changes: usize,
}

fn args() -> Args {
    let mut a = Args {
        report_type: v1::ReportType::Inventory,
        days: 30,
        pods: 5000,
        namespaces: 50,
        policies: 500,
        pod_churn: 48,
        policy_changes: 10,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        if flag == "--bench" {
            continue;
        }
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        let number = || -> usize { value.parse().unwrap_or_else(|_| panic!("{flag} {value}")) };
        match flag.as_str() {
            "--type" => {
                a.report_type = match value.as_str() {
                    "policy-audit" => v1::ReportType::PolicyAudit,
                    "inventory" => v1::ReportType::Inventory,
                    "network-access" => v1::ReportType::NetworkAccess,
                    other => panic!("--type {other}"),
                }
            }
            "--days" => a.days = i64::try_from(number()).expect("days"),
            "--pods" => a.pods = number(),
            "--namespaces" => a.namespaces = number().max(1),
            "--policies" => a.policies = number(),
            "--pod-churn" => a.pod_churn = number(),
            "--policy-changes" => a.policy_changes = number(),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

const APPS: usize = 10;

fn ns(i: usize) -> String {
    format!("team-{i:03}")
}

fn pod(namespace: &str, name: &str, app: usize, rv: u64, ip: usize) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": namespace, "resourceVersion": rv.to_string(),
                        "uid": format!("uid-{name}"),
                        "labels": {"app": format!("app-{app}"), "tier": if app.is_multiple_of(2) { "web" } else { "db" }}},
           "spec": {"serviceAccountName": format!("sa-{app}"), "nodeName": format!("node-{}", ip % 20),
                    "containers": [{"name": "main", "image": "registry.example/app:1",
                                    "ports": [{"containerPort": 8080, "protocol": "TCP"}]}]},
           "status": {"phase": "Running", "podIP": format!("10.{}.{}.{}", ip / 65536 % 256, ip / 256 % 256, ip % 256)}})
}

fn k8s_policy(namespace: &str, name: &str, app: usize, rv: u64, port: u64) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
           "metadata": {"name": name, "namespace": namespace, "resourceVersion": rv.to_string()},
           "spec": {"podSelector": {"matchLabels": {"app": format!("app-{app}")}},
                    "policyTypes": ["Ingress", "Egress"],
                    "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"env": "prod"}}},
                                          {"podSelector": {"matchLabels": {"tier": "web"}}}],
                                 "ports": [{"protocol": "TCP", "port": port}]}],
                    "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.96.0.0/12"]}}]}]}})
}

fn calico_policy(namespace: Option<&str>, name: &str, app: usize, rv: u64, order: u64) -> Value {
    let (kind, mut metadata) = match namespace {
        Some(n) => (
            "NetworkPolicy",
            json!({"name": format!("security.{name}"), "namespace": n}),
        ),
        None => (
            "GlobalNetworkPolicy",
            json!({"name": format!("security.{name}")}),
        ),
    };
    metadata["resourceVersion"] = json!(rv.to_string());
    json!({"apiVersion": "projectcalico.org/v3", "kind": kind, "metadata": metadata,
           "spec": {"tier": "security", "order": order,
                    "selector": format!("app == 'app-{app}' && has(tier)"),
                    "types": ["Ingress", "Egress"],
                    "ingress": [{"action": "Allow", "source": {"namespaceSelector": "env == 'prod'"}},
                                {"action": "Deny"}],
                    "egress": [{"action": "Allow", "destination": {"nets": ["0.0.0.0/0"]}}]}})
}

fn event(
    verb: &str,
    object_ref: &Value,
    at: Timestamp,
    code: u16,
    object: &Value,
) -> v1::AuditEvent {
    let at = at.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    let name = object_ref["name"].as_str().unwrap_or_default();
    let line = json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "auditID": format!("{verb}-{name}-{at}"), "stage": "ResponseComplete",
        "requestURI": format!("/bench/{name}"), "verb": verb,
        "user": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
        "sourceIPs": ["10.0.0.1"], "objectRef": object_ref,
        "responseStatus": {"metadata": {}, "code": code}, "requestObject": object,
        "responseObject": object,
        "requestReceivedTimestamp": at, "stageTimestamp": at
    })
    .to_string();
    v1::AuditEvent {
        id: auditrail_event::EventId::compute("bench", line.as_bytes()).to_hex(),
        raw: line.into_bytes().into(),
        verb: verb.to_owned(),
        ..Default::default()
    }
}

fn object_ref(resource: &str, group: &str, version: &str, namespace: &str, name: &str) -> Value {
    let mut r = json!({"resource": resource, "name": name, "apiVersion": version});
    if !group.is_empty() {
        r["apiGroup"] = json!(group);
    }
    if !namespace.is_empty() {
        r["namespace"] = json!(namespace);
    }
    r
}

/// The snapshot at `start` and the changes of the following days.
#[allow(clippy::too_many_lines)]
fn cluster(a: &Args, start: Timestamp) -> (Snapshot, Vec<v1::AuditEvent>) {
    let mut rv: u64 = 1;
    let mut next_rv = || {
        rv += 1;
        rv
    };
    let mut objects = Vec::new();
    for n in 0..a.namespaces {
        let env = if n % 3 == 0 { "dev" } else { "prod" };
        objects.push(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns(n), "resourceVersion": next_rv().to_string(),
                         "labels": {"env": env, "kubernetes.io/metadata.name": ns(n)}}}));
        for app in 0..APPS {
            objects.push(json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": format!("sa-{app}"), "namespace": ns(n),
                             "resourceVersion": next_rv().to_string()}}));
        }
    }
    // Pods: (namespace, name, app) of those alive, by slot.
    let mut alive: Vec<(usize, String, usize)> = Vec::with_capacity(a.pods);
    for i in 0..a.pods {
        let (n, app) = (i % a.namespaces, i / a.namespaces % APPS);
        let name = format!("app-{app}-{i:06}");
        objects.push(pod(&ns(n), &name, app, next_rv(), i));
        alive.push((n, name, app));
    }
    for n in 0..a.namespaces {
        for app in 0..APPS {
            let addresses: Vec<Value> = alive
                .iter()
                .filter(|(pn, _, pa)| *pn == n && *pa == app)
                .map(|(_, name, _)| json!({"ip": "10.0.0.1", "targetRef": {"kind": "Pod", "name": name, "namespace": ns(n)}}))
                .collect();
            objects.push(json!({"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": format!("svc-{app}"), "namespace": ns(n),
                             "resourceVersion": next_rv().to_string()},
                "subsets": [{"addresses": addresses, "ports": [{"port": 8080, "protocol": "TCP"}]}]}));
        }
    }
    objects.push(json!({"apiVersion": "projectcalico.org/v3", "kind": "Tier",
        "metadata": {"name": "security", "resourceVersion": next_rv().to_string()},
        "spec": {"order": 100}}));
    // Policies: (the object, its objectRef) so that changes can rewrite them.
    let mut policies: Vec<(Value, Value)> = Vec::with_capacity(a.policies);
    let k8s = a.policies * 4 / 5;
    for p in 0..a.policies {
        let n = p % a.namespaces;
        let app = p / a.namespaces % APPS;
        let (object, r) = if p < k8s {
            let name = format!("allow-{p:04}");
            (
                k8s_policy(&ns(n), &name, app, next_rv(), 8080),
                object_ref("networkpolicies", "networking.k8s.io", "v1", &ns(n), &name),
            )
        } else if p % 2 == 0 {
            let name = format!("calico-{p:04}");
            (
                calico_policy(Some(&ns(n)), &name, app, next_rv(), 100 + p as u64),
                object_ref(
                    "networkpolicies",
                    "projectcalico.org",
                    "v3",
                    &ns(n),
                    &format!("security.{name}"),
                ),
            )
        } else {
            let name = format!("global-{p:04}");
            (
                calico_policy(None, &name, app, next_rv(), 100 + p as u64),
                object_ref(
                    "globalnetworkpolicies",
                    "projectcalico.org",
                    "v3",
                    "",
                    &format!("security.{name}"),
                ),
            )
        };
        objects.push(object.clone());
        policies.push((object, r));
    }
    let snapshot = Snapshot {
        request_start: start,
        request_completion: start,
        objects,
    };

    // Changes, spread evenly: pod replacements and policy updates.
    let mut events = Vec::new();
    let day = SignedDuration::from_hours(24);
    let mut born = a.pods;
    let mut slot = 0;
    for d in 0..a.days {
        let day_start = start + day * i32::try_from(d).expect("days");
        let churn = i32::try_from(a.pod_churn.max(1)).expect("churn");
        for c in 0..a.pod_churn {
            if alive.is_empty() {
                break;
            }
            let at = day_start
                + day / churn * i32::try_from(c).expect("churn")
                + SignedDuration::from_secs(1);
            let (n, old, app) = alive[slot % alive.len()].clone();
            let r = object_ref("pods", "", "v1", &ns(n), &old);
            let gone = pod(&ns(n), &old, app, next_rv(), slot);
            events.push((at, event("delete", &r, at, 200, &gone)));
            let name = format!("app-{app}-{born:06}");
            born += 1;
            let r = object_ref("pods", "", "v1", &ns(n), &name);
            let new = pod(&ns(n), &name, app, next_rv(), born);
            let at = at + SignedDuration::from_millis(500);
            events.push((at, event("create", &r, at, 201, &new)));
            let len = alive.len();
            alive[slot % len] = (n, name, app);
            slot += 7;
        }
        let changes = i32::try_from(a.policy_changes.max(1)).expect("changes");
        for c in 0..a.policy_changes {
            if policies.is_empty() {
                break;
            }
            let at = day_start
                + day / changes * i32::try_from(c).expect("changes")
                + SignedDuration::from_mins(7);
            let which = (usize::try_from(d).expect("day") * 31 + c * 17) % policies.len();
            let (object, r) = &mut policies[which];
            object["metadata"]["resourceVersion"] = json!(next_rv().to_string());
            if let Some(port) = object.pointer_mut("/spec/ingress/0/ports/0/port") {
                *port = json!(8000 + c);
            } else if let Some(order) = object.pointer_mut("/spec/order") {
                *order = json!(200 + c);
            }
            events.push((at, event("update", r, at, 200, object)));
        }
    }
    // The trail answers oldest first.
    events.sort_by_key(|(at, _)| *at);
    (snapshot, events.into_iter().map(|(_, e)| e).collect())
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

#[allow(clippy::cast_precision_loss)]
fn main() {
    let a = args();
    let start = Timestamp::constant(1_767_225_600, 0); // 2026-01-01T00:00:00Z
    let end = start + SignedDuration::from_hours(24 * a.days);
    let (snapshot, events) = cluster(&a, start);
    let input_rss = peak_rss_mib();
    let bytes: usize = events.iter().map(|e| e.raw.len()).sum();
    let began = Instant::now();
    let out = compute(&Input {
        report_type: a.report_type,
        endpoints: None,
        cluster: "bench",
        start,
        end,
        snapshot: Some(&snapshot),
        events: &events,
    })
    .expect("the report computes");
    let secs = began.elapsed().as_secs_f64();
    let rss = peak_rss_mib();
    let what = match out.summary.kind {
        Some(v1::report_summary::Kind::PolicyAudit(s)) => format!("{} policy changes", s.total),
        Some(
            v1::report_summary::Kind::Inventory(s) | v1::report_summary::Kind::NetworkAccess(s),
        ) => format!(
            "{} endpoints, {} ingress-protected",
            s.endpoints.as_ref().map_or(0, |c| c.total),
            s.endpoints.as_ref().map_or(0, |c| c.ingress_protected)
        ),
        None => "nothing".to_owned(),
    };
    println!(
        "report {}: {} days, {} pods in {} namespaces, {} policies; snapshot {} objects, \
         {} tracked writes replayed ({:.1} MB): {what}; computed in {secs:.2} s; \
         peak RSS {rss:.0} MiB ({input_rss:.0} MiB with the input alone); {} warnings",
        a.report_type.as_str_name(),
        a.days,
        a.pods,
        a.namespaces,
        a.policies,
        snapshot.objects.len(),
        events.len(),
        bytes as f64 / 1e6,
        out.warnings.len()
    );
}
