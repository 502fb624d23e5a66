//! The query commands of the `auditrail` binary against a running
//! `auditrail up`: `search` (counts, tables, byte-exact JSON/NDJSON),
//! `export` (byte-exact files, no file left behind on failure), `history`
//! and `diff`, and their errors. Expectations come from the generated log
//! lines, parsed in the test.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use auditrail_integration_tests::{Server, binary, run_to_end};
use auditrail_loggen::{GenConfig, Generator};

use crate::common;

const EVENTS: usize = 3000;

fn auditrail(args: &[&str]) -> (bool, String, String) {
    let (status, out, err) =
        run_to_end(Command::new(binary("auditrail").unwrap()).args(args)).unwrap();
    (status.success(), out, err)
}

/// Starts `auditrail up` on a generated log and waits until it is indexed.
async fn loaded(dir: &Path) -> (Server, Vec<String>) {
    let lines: Vec<String> = Generator::new(GenConfig::default()).take(EVENTS).collect();
    let server = common::up_on_lines(dir, &lines).await;
    (server, lines)
}

fn value(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap()
}

/// The event time as the store orders it (all generated events have a
/// stage timestamp, written with microseconds, so strings sort as times).
fn time(event: &serde_json::Value) -> String {
    event["stageTimestamp"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines, reason = "one scenario against one server")]
async fn search_export_history_and_diff_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let (server, lines) = loaded(dir.path()).await;
    let url = server.url();
    let s = ["--server", url.as_str()];

    // --count: the exact number of deletes, counted from the lines.
    let deletes: Vec<&String> = lines
        .iter()
        .filter(|l| value(l)["verb"] == "delete")
        .collect();
    assert!(!deletes.is_empty());
    let (ok, out, err) = auditrail(&[&["search", "--verb", "delete", "--count"][..], &s].concat());
    assert!(ok, "{err}");
    assert_eq!(out.trim(), deletes.len().to_string());

    // -o ndjson, oldest first: the original lines, byte for byte, in time
    // order (ties are broken by id, so compare as sorted sets per time too).
    let (ok, out, err) = auditrail(
        &[
            &[
                "search", "--verb", "delete", "--sort", "oldest", "--limit", "100000", "-o",
                "ndjson",
            ][..],
            &s,
        ]
        .concat(),
    );
    assert!(ok, "{err}");
    let got: Vec<&str> = out.lines().collect();
    let mut want: Vec<&str> = deletes.iter().map(|l| l.as_str()).collect();
    want.sort_by_key(|l| time(&value(l)));
    let times = |v: &[&str]| v.iter().map(|l| time(&value(l))).collect::<Vec<_>>();
    assert_eq!(times(&got), times(&want));
    let mut sorted_got = got.clone();
    sorted_got.sort_unstable();
    want.sort_unstable();
    assert_eq!(sorted_got, want);

    // The table: one row per event with the timeline's description.
    let (ok, out, err) = auditrail(&[&["search", "--timeline", "--limit", "5"][..], &s].concat());
    assert!(ok, "{err}");
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 5, "{out}");
    assert!(
        rows.iter()
            .all(|r| r.contains(" created ") || r.contains(" updated ") || r.contains(" deleted ")),
        "{out}"
    );

    // export: the whole log, byte for byte (as a multiset of lines), and a
    // JSON document that parses to the same events.
    let file = dir.path().join("trail.ndjson");
    let (ok, _, err) = auditrail(
        &[
            &[
                "export",
                "--format",
                "ndjson",
                "-q",
                "-f",
                file.to_str().unwrap(),
            ][..],
            &s,
        ]
        .concat(),
    );
    assert!(ok, "{err}");
    assert!(err.contains(&format!("exported {EVENTS} events")), "{err}");
    let exported = std::fs::read_to_string(&file).unwrap();
    let mut exported: Vec<&str> = exported.lines().collect();
    let mut source: Vec<&str> = lines.iter().map(String::as_str).collect();
    exported.sort_unstable();
    source.sort_unstable();
    assert_eq!(exported, source);
    let json = dir.path().join("trail.json");
    let (ok, _, err) = auditrail(
        &[
            &[
                "export",
                "--kind",
                "networkpolicy",
                "-q",
                "-f",
                json.to_str().unwrap(),
            ][..],
            &s,
        ]
        .concat(),
    );
    assert!(ok, "{err}");
    let array: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    // Kubernetes and Calico both have a NetworkPolicy kind.
    let policies = lines
        .iter()
        .filter(|l| value(l)["objectRef"]["resource"] == "networkpolicies")
        .count();
    assert_eq!(array.len(), policies);
    assert!(!dir.path().join("trail.json.partial").exists());

    // A refused export leaves no file behind.
    let bad = dir.path().join("bad.json");
    let (ok, _, err) = auditrail(
        &[
            &[
                "export",
                "--selector",
                "verb <",
                "-q",
                "-f",
                bad.to_str().unwrap(),
            ][..],
            &s,
        ]
        .concat(),
    );
    assert!(!ok);
    assert!(err.contains("position"), "{err}");
    assert!(!bad.exists() && !dir.path().join("bad.json.partial").exists());

    // history of the network policy with the most successful writes, and a
    // diff of its last two versions that carry an object.
    let mut writes: BTreeMap<(String, String), Vec<serde_json::Value>> = BTreeMap::new();
    for line in &lines {
        let v = value(line);
        let code = v["responseStatus"]["code"].as_i64().unwrap_or(0);
        if v["objectRef"]["resource"] == "networkpolicies"
            && v["stage"] == "ResponseComplete"
            && ["create", "update", "patch", "delete"].contains(&v["verb"].as_str().unwrap_or(""))
            && (200..300).contains(&code)
            && !v["requestURI"].as_str().unwrap_or("").contains("dryRun")
        {
            let key = (
                v["objectRef"]["namespace"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                v["objectRef"]["name"].as_str().unwrap_or("").to_owned(),
            );
            writes.entry(key).or_default().push(v);
        }
    }
    let ((namespace, name), mut versions) =
        writes.into_iter().max_by_key(|(_, v)| v.len()).unwrap();
    versions.sort_by_key(time);
    let object = format!("{namespace}/{name}");
    let (ok, out, err) = auditrail(
        &[
            &["history", "networkpolicies", &object, "-o", "json"][..],
            &s,
        ]
        .concat(),
    );
    assert!(ok, "{err}");
    let history: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let verbs = |v: &[serde_json::Value], key: &str| {
        v.iter()
            .map(|e| e[key].as_str().unwrap_or("").to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(verbs(&history, "verb"), verbs(&versions, "verb"));
    let users: Vec<String> = versions
        .iter()
        .map(|v| v["user"]["username"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(verbs(&history, "user"), users);
    let with_objects: Vec<&serde_json::Value> = history
        .iter()
        .filter(|v| v["deleted"] == false && !v["object"].is_null())
        .collect();
    assert!(with_objects.len() >= 2, "{out}");
    let (from, to) = (
        with_objects[with_objects.len() - 2],
        with_objects[with_objects.len() - 1],
    );
    let (from_id, to_id) = (
        from["eventId"].as_str().unwrap(),
        to["eventId"].as_str().unwrap(),
    );
    let (ok, out, err) = auditrail(&[&["diff", from_id, to_id][..], &s].concat());
    assert!(ok, "{err}");
    assert!(
        out.starts_with(&format!("--- {from_id}\n+++ {to_id}\n")),
        "{out}"
    );
    let old_rv = format!(
        "-  resourceVersion: '{}'",
        from["resourceVersion"].as_str().unwrap()
    );
    assert!(out.contains(&old_rv), "{out}");
    let (ok, out, err) = auditrail(&[&["diff", "--ignore-noise", from_id, to_id][..], &s].concat());
    assert!(ok, "{err}");
    assert!(!out.contains("resourceVersion"), "{out}");

    // Errors are clear and exit non-zero.
    let (ok, _, err) = auditrail(&[&["diff", "nope", to_id][..], &s].concat());
    assert!(!ok && err.contains("not an event id"), "{err}");
    let unknown = "0".repeat(64);
    let (ok, _, err) = auditrail(&[&["diff", &unknown, to_id][..], &s].concat());
    assert!(!ok && err.ends_with(" (NOT_FOUND)\n"), "{err}");

    server.terminate().unwrap();
}

/// The original line inside an envelope written with `--provenance`: the
/// value of `event`, the envelope's last member, byte for byte.
fn enveloped_line(envelope: &str) -> &str {
    let start = envelope.find(",\"event\":").expect("an event member") + ",\"event\":".len();
    envelope[start..]
        .strip_suffix('}')
        .expect("the envelope ends after the event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_says_where_it_was_read_and_who_sent_it() {
    use std::os::unix::fs::MetadataExt as _;

    let dir = tempfile::tempdir().unwrap();
    let (server, lines) = loaded(dir.path()).await;
    let url = server.url();
    let s = ["--server", url.as_str()];
    let log = dir.path().join("kube-audit.log");
    let inode = std::fs::metadata(&log).unwrap().ino();
    // Where each line starts in the file.
    let mut offsets = BTreeMap::new();
    let mut offset = 0_u64;
    for line in &lines {
        offsets.insert(line.as_str(), offset);
        offset += line.len() as u64 + 1;
    }

    let file = dir.path().join("with-provenance.ndjson");
    let (ok, _, err) = auditrail(
        &[
            &[
                "export",
                "--provenance",
                "--format",
                "ndjson",
                "-q",
                "-f",
                file.to_str().unwrap(),
            ][..],
            &s,
        ]
        .concat(),
    );
    assert!(ok, "{err}");
    let exported = std::fs::read_to_string(&file).unwrap();
    let envelopes: Vec<&str> = exported.lines().collect();
    assert_eq!(envelopes.len(), EVENTS);
    let mut seen = BTreeMap::new();
    for envelope in &envelopes {
        let line = enveloped_line(envelope);
        let want_offset = *offsets.get(line).expect("the original line, unchanged");
        let v = value(envelope);
        assert_eq!(v["type"], expected_type(&value(line)), "{envelope}");
        let p = &v["provenance"];
        assert_eq!(p["position"]["file"]["path"], log.to_str().unwrap(), "{p}");
        assert_eq!(p["position"]["file"]["offset"], want_offset, "{p}");
        assert_eq!(p["position"]["file"]["inode"], inode, "{p}");
        assert!(!p["source"].as_str().unwrap().is_empty(), "{p}");
        // No access control: the indexer names the sender anonymous, and
        // the address it came from.
        assert_eq!(p["ingestedBy"], "anonymous", "{p}");
        assert!(
            p["ingestedFrom"]
                .as_str()
                .unwrap()
                .starts_with("127.0.0.1:"),
            "{p}"
        );
        assert!(p["ingestedAt"].as_str().unwrap().starts_with("20"), "{p}");
        seen.insert(v["id"].as_str().unwrap().to_owned(), (*envelope).to_owned());
    }
    assert_eq!(seen.len(), EVENTS, "each event once");

    // search shows the same envelopes; without -o it refuses the flag.
    let (ok, out, err) = auditrail(
        &[
            &["search", "--provenance", "-o", "ndjson", "--limit", "20"][..],
            &s,
        ]
        .concat(),
    );
    assert!(ok, "{err}");
    let shown: Vec<&str> = out.lines().collect();
    assert_eq!(shown.len(), 20);
    for envelope in shown {
        let id = value(envelope)["id"].as_str().unwrap().to_owned();
        assert_eq!(envelope, seen[&id], "search and export agree");
    }
    let (ok, _, err) = auditrail(&[&["search", "--provenance"][..], &s].concat());
    assert!(!ok);
    assert!(
        err.contains("--provenance needs the events themselves"),
        "{err}"
    );
    drop(server);
}

/// The type an event's objectRef gives it.
fn expected_type(event: &serde_json::Value) -> &'static str {
    if event["objectRef"]["apiGroup"] == "projectcalico.org" {
        "ee"
    } else {
        "kube"
    }
}
