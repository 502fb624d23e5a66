//! Compliance reports end to end: `auditrail up` on a generated cluster
//! history (`auditrail-loggen`) plus a hand-written snapshot and policy
//! delete, a snapshot import and report definitions through the CLI,
//! `report run --wait`, and the reports' counts, entries and downloads
//! checked against what the test computes itself from the log lines. Then
//! the bad inputs, each refused as INVALID_ARGUMENT naming the field.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use auditrail_integration_tests::{Server, binary, run_to_end};
use auditrail_loggen::{GenConfig, Generator};
use serde_json::{Value, json};

use crate::common;

const GENERATED: usize = 3000;

fn auditrail(args: &[&str]) -> (bool, String, String) {
    let (status, out, err) =
        run_to_end(Command::new(binary("auditrail").unwrap()).args(args)).unwrap();
    (status.success(), out, err)
}

/// The namespace only the test's own objects live in.
const SNAP_NS: &str = "audit-snap";

/// The snapshot: a namespace, a pod and a policy protecting its ingress,
/// taken before the trail starts, plus a Service the replay does not track.
fn snapshot() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {"apiVersion": "v1", "kind": "Namespace",
             "metadata": {"name": SNAP_NS, "resourceVersion": "10", "labels": {"team": "audit"}}},
            {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": "snap-web", "namespace": SNAP_NS, "resourceVersion": "11",
                          "labels": {"app": "snapweb"}},
             "spec": {"serviceAccountName": "web", "containers": [{"name": "c", "image": "x"}]}},
            {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
             "metadata": {"name": "allow-same-ns", "namespace": SNAP_NS, "resourceVersion": "12"},
             "spec": {"podSelector": {"matchLabels": {"app": "snapweb"}},
                      "policyTypes": ["Ingress"],
                      "ingress": [{"from": [{"podSelector": {}}]}]}},
            {"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": "web", "namespace": SNAP_NS}, "spec": {}}
        ]
    })
}

/// A successful delete of the snapshot's policy at `at`.
fn policy_delete(at: &str) -> String {
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "auditID": "6c3a2f59-0000-4000-8000-000000000001", "stage": "ResponseComplete",
        "requestURI": format!("/apis/networking.k8s.io/v1/namespaces/{SNAP_NS}/networkpolicies/allow-same-ns"),
        "verb": "delete",
        "user": {"username": "auditor-test", "groups": ["system:authenticated"]},
        "sourceIPs": ["10.0.0.9"],
        "objectRef": {"resource": "networkpolicies", "namespace": SNAP_NS, "name": "allow-same-ns",
                      "apiGroup": "networking.k8s.io", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200},
        "responseObject": {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"},
        "requestReceivedTimestamp": at, "stageTimestamp": at
    })
    .to_string()
}

fn value(line: &str) -> Value {
    serde_json::from_str(line).unwrap()
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut v = v;
    for p in path {
        v = &v[*p];
    }
    v.as_str().unwrap_or("")
}

/// A successful change of the object itself: what replays and audits use.
fn is_change(e: &Value) -> bool {
    let code = e["responseStatus"]["code"].as_i64().unwrap_or(0);
    s(e, &["stage"]) == "ResponseComplete"
        && (200..300).contains(&code)
        && ["create", "update", "patch", "delete"].contains(&s(e, &["verb"]))
        && !s(e, &["requestURI"]).contains("dryRun")
        && s(e, &["objectRef", "subresource"]).is_empty()
}

/// (namespaced) for the network policy resources a policy-audit counts.
fn policy_resource(e: &Value) -> Option<bool> {
    let group = s(e, &["objectRef", "apiGroup"]);
    match (s(e, &["objectRef", "resource"]), group) {
        ("networkpolicies", "networking.k8s.io" | "extensions")
        | (
            "networkpolicies"
            | "stagednetworkpolicies"
            | "stagedkubernetesnetworkpolicies"
            | "networksets",
            "projectcalico.org",
        ) => Some(true),
        (
            "globalnetworkpolicies" | "stagedglobalnetworkpolicies" | "globalnetworksets" | "tiers",
            "projectcalico.org",
        ) => Some(false),
        _ => None,
    }
}

fn in_interval(e: &Value, start: &str, end: &str) -> bool {
    // Generated and hand-written times are RFC 3339 UTC with the same
    // precision or less; compare as times.
    let t: jiff::Timestamp = s(e, &["stageTimestamp"]).parse().unwrap();
    t >= start.parse().unwrap() && t < end.parse().unwrap()
}

/// The expected policy-audit: (created, modified, deleted) and the lines.
fn expected_audit<'a>(
    lines: &'a [String],
    start: &str,
    end: &str,
    namespace: Option<&str>,
) -> ([u64; 3], Vec<&'a String>) {
    let mut counts = [0; 3];
    let mut counted = Vec::new();
    for line in lines {
        let e = value(line);
        let Some(namespaced) = policy_resource(&e) else {
            continue;
        };
        if !is_change(&e) || !in_interval(&e, start, end) {
            continue;
        }
        if namespaced && namespace.is_some_and(|ns| s(&e, &["objectRef", "namespace"]) != ns) {
            continue;
        }
        counts[match s(&e, &["verb"]) {
            "create" => 0,
            "delete" => 2,
            _ => 1,
        }] += 1;
        counted.push(line);
    }
    (counts, counted)
}

/// The pods of `namespaces` that existed at some instant of [start, end),
/// from the snapshot's pod and the generated creates and deletes.
fn expected_pods(
    lines: &[String],
    start: &str,
    end: &str,
    namespaces: &[&str],
) -> BTreeSet<(String, String)> {
    let mut events: Vec<Value> = lines
        .iter()
        .map(|l| value(l))
        .filter(|e| {
            s(e, &["objectRef", "resource"]) == "pods"
                && s(e, &["objectRef", "apiGroup"]).is_empty()
                && is_change(e)
        })
        .collect();
    events.sort_by_key(|e| {
        s(e, &["stageTimestamp"])
            .parse::<jiff::Timestamp>()
            .unwrap()
    });
    let start_t: jiff::Timestamp = start.parse().unwrap();
    let end_t: jiff::Timestamp = end.parse().unwrap();
    let mut alive: BTreeSet<(String, String)> =
        BTreeSet::from([(SNAP_NS.to_owned(), "snap-web".to_owned())]);
    let mut seen = BTreeSet::new();
    let mut started = false;
    for e in &events {
        let t: jiff::Timestamp = s(e, &["stageTimestamp"]).parse().unwrap();
        if t >= end_t {
            break;
        }
        if t >= start_t && !started {
            seen.extend(alive.iter().cloned());
            started = true;
        }
        let key = (
            s(e, &["objectRef", "namespace"]).to_owned(),
            s(e, &["objectRef", "name"]).to_owned(),
        );
        if s(e, &["verb"]) == "delete" {
            alive.remove(&key);
        } else {
            alive.insert(key.clone());
            if started {
                seen.insert(key);
            }
        }
    }
    if !started {
        seen.extend(alive.iter().cloned());
    }
    seen.into_iter()
        .filter(|(ns, _)| namespaces.contains(&ns.as_str()))
        .collect()
}

async fn loaded(dir: &Path) -> (Server, Vec<String>) {
    let mut lines: Vec<String> = Generator::new(GenConfig::default())
        .take(GENERATED)
        .collect();
    lines.push(policy_delete("2026-01-01T00:01:00.000000Z"));
    let server = common::up_on_lines(dir, &lines).await;
    (server, lines)
}

fn json_of(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn count(v: &Value) -> u64 {
    // proto3 JSON writes 64-bit integers as strings and leaves zeros out.
    match v {
        Value::String(s) => s.parse().unwrap(),
        Value::Number(n) => n.as_u64().unwrap(),
        Value::Null => 0,
        other => panic!("not a count: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines, reason = "one scenario against one server")]
async fn reports_replay_the_trail_and_match_an_independent_count() {
    let dir = tempfile::tempdir().unwrap();
    let (server, lines) = loaded(dir.path()).await;
    let url = server.url();
    let sv = ["--server", url.as_str()];
    let run = |args: &[&str]| auditrail(&[args, &sv[..]].concat());

    // The snapshot, taken before the trail starts; the Service is left out.
    let snap = dir.path().join("snapshot.json");
    std::fs::write(&snap, snapshot().to_string()).unwrap();
    let (ok, out, err) = run(&[
        "snapshot",
        "import",
        snap.to_str().unwrap(),
        "--at",
        "2025-12-31T23:00:00Z",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains(": 3 objects"), "{out}");
    assert!(
        out.contains("left out (not tracked): item 3: Service (v1)"),
        "{out}"
    );

    // Policy-audit over 90 s of the trail, the hand-written delete included.
    let (ok, _, err) = run(&["report", "define", "audit-all", "--type", "policy-audit"]);
    assert!(ok, "{err}");
    let (start, end) = ("2026-01-01T00:00:00Z", "2026-01-01T00:01:30Z");
    let (ok, out, err) = run(&[
        "report",
        "run",
        "audit-all",
        "--start",
        start,
        "--end",
        end,
        "--wait",
        "-o",
        "json",
    ]);
    assert!(ok, "{err}");
    let report = json_of(&out);
    let ([created, modified, deleted], counted) = expected_audit(&lines, start, end, None);
    assert!(
        created > 0 && modified > 0 && deleted > 0,
        "a history with every kind of change"
    );
    let summary = &report["summary"]["policyAudit"];
    assert_eq!(count(&summary["created"]), created, "{out}");
    assert_eq!(count(&summary["modified"]), modified, "{out}");
    assert_eq!(count(&summary["deleted"]), deleted, "{out}");
    assert_eq!(count(&summary["total"]), created + modified + deleted);
    assert_eq!(report["status"], "REPORT_STATUS_SUCCEEDED");
    let id = report["id"].as_str().unwrap().to_owned();

    // Its events, byte for byte, and as YAML documents.
    let events_file = dir.path().join("events.json");
    let (ok, _, err) = run(&[
        "report",
        "download",
        &id,
        "--part",
        "events",
        "-f",
        events_file.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let got: Vec<Value> = serde_json::from_slice(&std::fs::read(&events_file).unwrap()).unwrap();
    let mut got: Vec<String> = got.iter().map(Value::to_string).collect();
    let mut want: Vec<String> = counted.iter().map(|l| value(l).to_string()).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    let raw = std::fs::read_to_string(&events_file).unwrap();
    for line in &counted {
        assert!(raw.contains(line.as_str()), "original bytes kept");
    }
    let (ok, out, err) = run(&["report", "download", &id, "--format", "yaml"]);
    assert!(ok, "{err}");
    assert_eq!(out.matches("---\n").count(), counted.len());
    // The CSV summary ends with the total.
    let (ok, out, err) = run(&["report", "download", &id, "--format", "csv"]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("namespace,total,created,modified,deleted\r\n"),
        "{out}"
    );
    let total = out.trim_end().rsplit("\r\n").next().unwrap();
    assert_eq!(
        total,
        format!(
            "TOTAL,{},{created},{modified},{deleted}",
            created + modified + deleted
        )
    );

    // Running it again replaces it: same id, still one report.
    let (ok, out, err) = run(&["report", "run", "audit-all", "--start", start, "--end", end]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), id);
    // Scoped to one namespace: its namespaced policies and the global ones.
    let (ok, _, err) = run(&[
        "report",
        "define",
        "audit-payments",
        "--type",
        "policy-audit",
        "-n",
        "payments",
    ]);
    assert!(ok, "{err}");
    let (ok, out, err) = run(&[
        "report",
        "run",
        "audit-payments",
        "--start",
        start,
        "--end",
        end,
        "--wait",
        "-o",
        "json",
    ]);
    assert!(ok, "{err}");
    let ([c, m, d], _) = expected_audit(&lines, start, end, Some("payments"));
    let summary = &json_of(&out)["summary"]["policyAudit"];
    assert_eq!(
        (
            count(&summary["created"]),
            count(&summary["modified"]),
            count(&summary["deleted"])
        ),
        (c, m, d)
    );
    assert!(c + m + d < created + modified + deleted);

    // Inventory of two namespaces, before and across the policy's delete.
    let (ok, _, err) = run(&[
        "report",
        "define",
        "inv",
        "--type",
        "network-access",
        "-n",
        SNAP_NS,
        "-n",
        "payments",
    ]);
    assert!(ok, "{err}");
    let mut flags = BTreeMap::new();
    for (start, end) in [
        ("2026-01-01T00:00:20Z", "2026-01-01T00:00:50Z"),
        ("2026-01-01T00:00:50Z", "2026-01-01T00:01:30Z"),
    ] {
        let (ok, out, err) = run(&[
            "report", "run", "inv", "--start", start, "--end", end, "--wait", "-o", "json",
        ]);
        assert!(ok, "{err}");
        let report = json_of(&out);
        let pods = expected_pods(&lines, start, end, &[SNAP_NS, "payments"]);
        let summary = &report["summary"]["networkAccess"];
        assert_eq!(
            count(&summary["endpoints"]["total"]),
            pods.len() as u64,
            "{start}: {out}"
        );
        let namespaces: BTreeSet<&String> = pods.iter().map(|(ns, _)| ns).collect();
        assert_eq!(
            count(&summary["namespacesInScope"]),
            namespaces.len() as u64
        );
        // The endpoint entries name exactly those pods.
        let id = report["id"].as_str().unwrap();
        let (ok, out, err) = run(&["report", "download", id, "--part", "endpoints"]);
        assert!(ok, "{err}");
        let entries: Vec<Value> = serde_json::from_str(&out).unwrap();
        let named: BTreeSet<(String, String)> = entries
            .iter()
            .map(|e| (s(e, &["namespace"]).to_owned(), s(e, &["name"]).to_owned()))
            .collect();
        assert_eq!(named, pods);
        let snap = entries.iter().find(|e| e["name"] == "snap-web").unwrap();
        flags.insert(start, snap.clone());
        // The CSV has a row per endpoint.
        let (ok, out, err) = run(&[
            "report",
            "download",
            id,
            "--part",
            "endpoints",
            "--format",
            "csv",
        ]);
        assert!(ok, "{err}");
        let mut csv = csv::Reader::from_reader(out.as_bytes());
        assert_eq!(csv.records().count(), pods.len());
    }
    // Before the delete: protected for ingress by its policy, from its own
    // namespace only; egress open (no policy for it).
    let before = &flags["2026-01-01T00:00:20Z"];
    assert_eq!(before["ingressProtected"], true, "{before}");
    assert_eq!(before["ingressFromInternet"], Value::Null, "{before}");
    assert_eq!(
        before["ingressFromOtherNamespaces"],
        Value::Null,
        "{before}"
    );
    assert_eq!(before["egressProtected"], Value::Null, "{before}");
    assert_eq!(before["egressToInternet"], true, "{before}");
    assert_eq!(before["serviceAccount"], "web");
    assert_eq!(before["appliedPolicies"][0]["name"], "allow-same-ns");
    // Across it: unprotected at some instant, so unprotected ("ever"), and
    // open to the internet then.
    let across = &flags["2026-01-01T00:00:50Z"];
    assert_eq!(across["ingressProtected"], Value::Null, "{across}");
    assert_eq!(across["ingressFromInternet"], true, "{across}");

    // Listing: newest interval first, every run kept once.
    let (ok, out, err) = run(&["report", "list", "-o", "json"]);
    assert!(ok, "{err}");
    let listed = json_of(&out);
    let reports = listed["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 4, "{out}");
    let (ok, out, err) = run(&["report", "list", "-o", "table"]);
    assert!(ok, "{err}");
    assert!(out.lines().nth(1).unwrap().contains("inv"), "{out}");

    // Bad input: each an INVALID_ARGUMENT naming the field.
    let refused = |args: &[&str], field: &str| {
        let (ok, _, err) = run(args);
        assert!(!ok, "{args:?} accepted");
        assert!(err.contains("INVALID_ARGUMENT"), "{args:?}: {err}");
        assert!(err.contains(field), "{args:?} should name {field}: {err}");
    };
    refused(
        &[
            "report",
            "define",
            "bad-sel",
            "--type",
            "inventory",
            "--selector",
            "app ==",
        ],
        "definition.endpoints.selector",
    );
    refused(
        &[
            "report",
            "define",
            "bad-cron",
            "--type",
            "inventory",
            "--schedule",
            "* * * * *",
        ],
        "definition.schedule",
    );
    refused(
        &["report", "define", "Bad_Name", "--type", "inventory"],
        "definition.name",
    );
    refused(
        &[
            "report",
            "run",
            "inv",
            "--start",
            "2026-01-01T00:00:00Z",
            "--end",
            "2999-01-01T00:00:00Z",
        ],
        "interval.end",
    );
    refused(
        &[
            "report",
            "run",
            "inv",
            "--start",
            "2026-01-02T00:00:00Z",
            "--end",
            "2026-01-01T00:00:00Z",
        ],
        "interval",
    );
    let inv_id = reports
        .iter()
        .find(|r| r["definitionName"] == "inv")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    refused(&["report", "download", &inv_id, "--part", "events"], "part");
    refused(
        &[
            "report",
            "download",
            &inv_id,
            "--part",
            "endpoints",
            "--format",
            "yaml",
        ],
        "format",
    );
    let (ok, _, err) = run(&["report", "define", "inv", "--type", "inventory"]);
    assert!(!ok && err.contains("ALREADY_EXISTS"), "{err}");
    let (ok, _, err) = run(&["report", "show", "no-such-report"]);
    assert!(!ok && err.contains("NOT_FOUND"), "{err}");

    // Definitions: list, update with a stale etag, delete with reports.
    let (ok, out, err) = run(&["report", "list-definitions", "-o", "yaml"]);
    assert!(ok, "{err}");
    assert_eq!(out.matches("name: ").count(), 3, "{out}");
    let (ok, _, err) = run(&[
        "report",
        "define",
        "inv",
        "--type",
        "inventory",
        "--update",
        "--etag",
        "stale",
    ]);
    assert!(!ok && err.contains("ABORTED"), "{err}");

    // The runs are counted.
    let metrics = auditrail_integration_tests::scrape(server.metrics_addr().unwrap()).unwrap();
    let runs: f64 = metrics
        .iter()
        .filter(|(k, _)| {
            k.starts_with("reporter_runs_total") && k.contains("outcome=\"succeeded\"")
        })
        .map(|(_, v)| v)
        .sum();
    assert!(runs >= 5.0, "{metrics:?}");

    let status = server.terminate().unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_makes_the_last_full_interval_and_skips_suspended_definitions() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::up(
        &dir.path().join("data"),
        "prod",
        &["--log-path", dir.path().join("none.log").to_str().unwrap()],
        // The ingestor of the process decides when a tick's report starts:
        // its only source waits for a file that is not there, so it has
        // caught up at once (no settling time). The fixed lag of a day
        // would hold the report back: were the ingestor not asked, no
        // report would come.
        &[
            ("AUDITRAIL_REPORTER__TRAIL_LAG_SECS", "86400"),
            ("AUDITRAIL_REPORTER__TRAIL_SETTLE_SECS", "0"),
            ("AUDITRAIL_REPORTER__SCHEDULE_POLL_SECS", "1"),
        ],
    );
    let url = server.url();
    let sv = ["--server", url.as_str()];
    let run = |args: &[&str]| auditrail(&[args, &sv[..]].concat());
    let schedule = "*/5 * * * *";
    let (ok, _, err) = run(&[
        "report",
        "define",
        "paused",
        "--type",
        "inventory",
        "--schedule",
        schedule,
        "--suspend",
    ]);
    assert!(ok, "{err}");
    let (ok, out, err) = run(&[
        "report",
        "define",
        "every-5",
        "--type",
        "policy-audit",
        "--schedule",
        schedule,
        "-o",
        "json",
    ]);
    assert!(ok, "{err}");
    let definition = json_of(&out);
    // `--cluster prod` is the reporter's default cluster too.
    assert_eq!(definition["cluster"], "prod");
    let created: jiff::Timestamp = definition["createTime"].as_str().unwrap().parse().unwrap();
    let tick = created.as_second() - created.as_second().rem_euclid(300);
    let expected_start = jiff::Timestamp::from_second(tick - 300).unwrap();
    let expected_end = jiff::Timestamp::from_second(tick).unwrap();

    let report = auditrail_integration_tests::eventually("the scheduled report", || async {
        let (ok, out, _) = run(&["report", "list", "--definition", "every-5", "-o", "json"]);
        let listed = json_of(&out);
        // The oldest: a run that crosses a tick may already have the next.
        let done = listed["reports"]
            .as_array()
            .and_then(|r| r.last())
            .filter(|r| r["status"] == "REPORT_STATUS_SUCCEEDED")
            .cloned();
        ok.then_some(done).flatten()
    })
    .await
    .unwrap();
    assert_eq!(report["trigger"], "REPORT_TRIGGER_SCHEDULE");
    assert_eq!(report["cluster"], "prod");
    let at = |v: &Value| v.as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
    assert_eq!(at(&report["interval"]["start"]), expected_start);
    assert_eq!(at(&report["interval"]["end"]), expected_end);
    // The pass that made it also looked at the suspended definition.
    let (ok, out, err) = run(&["report", "list", "--definition", "paused", "-o", "json"]);
    assert!(ok, "{err}");
    assert_eq!(json_of(&out)["reports"], Value::Null, "{out}");
    // Its next tick is not shown while suspended; the active one's is.
    let (ok, out, err) = run(&["report", "list-definitions", "-o", "json"]);
    assert!(ok, "{err}");
    let defs = json_of(&out);
    let defs = defs["definitions"].as_array().unwrap();
    assert_eq!(defs[0]["name"], "every-5");
    assert!(defs[0]["nextRunTime"].is_string(), "{out}");
    assert_eq!(defs[1]["name"], "paused");
    assert!(defs[1]["nextRunTime"].is_null(), "{out}");

    let status = server.terminate().unwrap();
    assert!(status.success());
}
