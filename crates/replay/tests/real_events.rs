//! Replay on the real audit events in `shared/data/real`: every event is
//! applied alone to an empty state, and what it must do is worked out
//! independently from its JSON (`serde_json::Value`), never pasted: a
//! successful write of a tracked object puts its `responseObject` (less
//! `managedFields`) under its key, or is a warning naming its auditID when
//! it has none; a delete removes; everything else is ignored.

use std::path::PathBuf;

use auditrail_replay::{Applied, ObjectKey, Recorded, Replayer, WarningKind};
use serde_json::Value;

#[path = "../../event/tests/support/real_data.rs"]
mod real_data;
use real_data::real_data_dir;

fn real_lines() -> Vec<(String, Vec<u8>)> {
    let root = real_data_dir();
    let mut files: Vec<PathBuf> = ["falco-k8s-audit", "more"]
        .iter()
        .flat_map(|dir| {
            std::fs::read_dir(root.join(dir))
                .expect("the real samples exist")
                .map(|e| e.expect("dir entry").path())
        })
        .collect();
    files.push(root.join("elastic-integrations-test-audit.log"));
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let bytes = std::fs::read(&file).expect("read sample");
        let name = file.display().to_string();
        for line in bytes.split(|&b| b == b'\n') {
            if !line.iter().all(u8::is_ascii_whitespace) {
                out.push((name.clone(), line.to_vec()));
            }
        }
    }
    out
}

fn text<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// The tracked (resource, group) pairs as the issue lists them.
fn tracked(resource: &str, group: &str) -> Option<&'static str> {
    let calico = [
        "tiers",
        "networkpolicies",
        "globalnetworkpolicies",
        "stagednetworkpolicies",
        "stagedglobalnetworkpolicies",
        "stagedkubernetesnetworkpolicies",
        "networksets",
        "globalnetworksets",
        "hostendpoints",
    ];
    match (resource, group) {
        ("pods" | "namespaces" | "serviceaccounts" | "endpoints", "") => Some(""),
        ("networkpolicies", "networking.k8s.io" | "extensions") => Some("networking.k8s.io"),
        (r, "projectcalico.org") if calico.contains(&r) => Some("projectcalico.org"),
        _ => None,
    }
}

#[test]
fn each_real_event_does_what_its_json_says() {
    let (mut put, mut warned, mut removed, mut ignored) = (0, 0, 0, 0);
    for (file, line) in real_lines() {
        let Ok(recorded) = Recorded::parse("real", &line) else {
            continue; // not an event: the event crate's suites cover those
        };
        let v: Value = serde_json::from_slice(&line).expect("samples are JSON");
        let resource = text(&v, &["objectRef", "resource"]).unwrap_or("");
        let group = text(&v, &["objectRef", "apiGroup"]).unwrap_or("");
        let verb = text(&v, &["verb"]).unwrap_or("");
        let code = v["responseStatus"]["code"].as_i64().unwrap_or(0);
        let response = v.get("responseObject").filter(|r| !r.is_null());
        let name = text(&v, &["objectRef", "name"])
            .or_else(|| response.and_then(|r| text(r, &["metadata", "name"])))
            .unwrap_or("");
        let write = text(&v, &["stage"]) == Some("ResponseComplete")
            && ["create", "update", "patch", "delete"].contains(&verb)
            && (200..300).contains(&code)
            && text(&v, &["objectRef", "subresource"]).is_none()
            && !text(&v, &["requestURI"]).unwrap_or("").contains("dryRun")
            && !name.is_empty();
        let mut replayer = Replayer::new();
        let applied = replayer.apply(&recorded);
        let Some(key_group) = tracked(resource, group).filter(|_| write) else {
            assert_eq!(applied, Applied::Ignored, "{file}: {verb} {resource}");
            ignored += 1;
            continue;
        };
        let namespace = if resource == "namespaces" {
            ""
        } else {
            text(&v, &["objectRef", "namespace"]).unwrap_or("")
        };
        let key = ObjectKey::new(resource, key_group, namespace, name);
        match (verb, response) {
            ("delete", _) => {
                assert_eq!(applied, Applied::Removed(0), "{file}");
                removed += 1;
            }
            (_, None) => {
                assert_eq!(applied, Applied::Warned, "{file}");
                let w = &replayer.warnings()[0];
                assert_eq!(w.audit_id, text(&v, &["auditID"]).unwrap_or(""), "{file}");
                assert_eq!(w.kind, WarningKind::MissingResponseObject, "{file}");
                assert_eq!(w.key, key, "{file}");
                warned += 1;
            }
            (_, Some(object)) => {
                assert_eq!(applied, Applied::Put, "{file}");
                // Kept as returned, less the server-side-apply bookkeeping.
                let mut want = object.clone();
                if let Some(m) = want.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("managedFields");
                }
                assert_eq!(replayer.state().get(&key), Some(&want), "{file}");
                assert_eq!(replayer.state().len(), 1, "{file}");
                put += 1;
            }
        }
    }
    // The samples hold each case; a change that ignored them all would
    // otherwise pass.
    assert!(put >= 10, "{put} put");
    assert!(warned >= 1, "{warned} warned");
    assert!(removed >= 2, "{removed} removed");
    assert!(ignored >= 50, "{ignored} ignored");
}
