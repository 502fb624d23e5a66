//! The `auditrail` commands on the real audit events of `shared/data/real`,
//! as a new user would run them: what the trail shows must be what happened
//! (exec is no new pod, a namespace lives in no namespace, a read is no
//! change), kinds are taken as kubectl users write them, and every mistake
//! gets a message that names it, never a silent empty answer. Each message
//! is checked by its text.

use std::collections::HashSet;
use std::process::Command;

use auditrail_integration_tests::{binary, run_to_end};

use crate::common;
use crate::real_data::real_data_dir;

fn auditrail(args: &[&str], server: &str) -> (bool, String, String) {
    let mut all = args.to_vec();
    all.extend(["--server", server]);
    let (status, out, err) =
        run_to_end(Command::new(binary("auditrail").unwrap()).args(&all)).unwrap();
    (status.success(), out, err)
}

/// Every line of every real sample, each file's lines ending in a newline.
fn real_lines() -> Vec<String> {
    let mut files = Vec::new();
    let mut dirs = vec![real_data_dir()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.file_name().unwrap() != "README.md" {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut lines = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        lines.extend(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned),
        );
    }
    lines
}

/// The rows of a table answer (the header left out).
fn rows(out: &str) -> Vec<&str> {
    out.lines().skip(1).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines, reason = "one scenario against one server")]
async fn the_real_trail_reads_right_and_mistakes_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let lines = real_lines();
    let events: HashSet<&String> = lines
        .iter()
        .filter(|l| auditrail_event::parse_line(l.as_bytes()).is_ok())
        .collect();
    assert!(events.len() > 200, "the real samples: {}", events.len());
    let log = dir.path().join("kube-audit.log");
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let server = common::up_following(&dir.path().join("data"), "real", &log, &[]);
    common::wait_for_count(&server, events.len() as u64).await;
    let url = server.url();
    let run = |args: &[&str]| auditrail(args, &url);

    // exec and attach are sessions into the pod, never new pods.
    let (ok, out, err) = run(&["search", "--subresource", "exec", "--subresource", "attach"]);
    assert!(ok, "{err}");
    let sessions = lines
        .iter()
        .filter(|l| {
            l.contains(r#""subresource":"exec""#) || l.contains(r#""subresource":"attach""#)
        })
        .count();
    assert_eq!(rows(&out).len(), sessions, "{out}");
    assert!(
        out.contains("Pod default/nginx-deployment-7998647bdf-phvq7 exec")
            && out.contains("Pod default/nginx-deployment-7998647bdf-phvq7 attach")
            && !out.contains("created"),
        "{out}"
    );

    // A namespace lives in no namespace: "Namespace foo", never "foo/foo".
    let (ok, out, err) = run(&["search", "--kind", "ns", "--name", "foo"]);
    assert!(ok, "{err}");
    assert!(out.contains("Namespace foo deleted"), "{out}");
    assert!(!out.contains("foo/foo"), "{out}");
    let (ok, history, err) = run(&["history", "namespaces", "foo"]);
    assert!(ok, "{err}");
    assert_eq!(
        rows(&history).len(),
        4,
        "three creates and the delete: {history}"
    );
    for alias in ["ns", "Namespace"] {
        let (ok, out, err) = run(&["history", alias, "foo"]);
        assert!(ok, "{err}");
        assert_eq!(out, history, "{alias}");
    }
    let (ok, _, err) = run(&["history", "namespaces", "foo/foo"]);
    assert!(!ok);
    assert!(
        err.contains(
            "namespaces are cluster-scoped: name the object without a namespace (\"foo\", not \"foo/foo\")"
        ),
        "{err}"
    );
    let (ok, _, err) = run(&["history", "cm", "my-config"]);
    assert!(!ok);
    assert!(
        err.contains(
            "configmaps are namespaced: name the object with its namespace (NAMESPACE/my-config)"
        ),
        "{err}"
    );

    // Kinds as kubectl users write them find the same events.
    let (ok, leases, err) = run(&["search", "--kind", "Lease"]);
    assert!(ok, "{err}");
    assert_eq!(rows(&leases).len(), 3, "{leases}");
    assert!(err.contains("3 of 3 matching events"), "{err}");
    for alias in ["leases", "lease", "LEASE", "leases.coordination.k8s.io"] {
        let (ok, out, err) = run(&["search", "--kind", alias]);
        assert!(ok, "{err}");
        assert_eq!(out, leases, "{alias}");
    }
    let (ok, out, err) = run(&["history", "ConfigMap", "default/my-config"]);
    assert!(ok, "{err}");
    assert!(rows(&out).len() >= 8, "{out}");
    let (ok, same, err) = run(&["history", "cm", "default/my-config"]);
    assert!(ok, "{err}");
    assert_eq!(same, out);

    // The timeline shows changes and sessions, never reads.
    let (ok, out, err) = run(&["search", "--timeline", "--limit", "0"]);
    assert!(ok, "{err}");
    assert!(!rows(&out).is_empty());
    for row in rows(&out) {
        assert!(
            !row.contains(" get ") && !row.contains(" list ") && !row.contains(" watch "),
            "a read on the timeline: {row}"
        );
    }
    let (ok, _, err) = run(&["search", "--timeline", "--level", "Metadata"]);
    assert!(!ok);
    assert!(
        err.contains(
            "the timeline shows only level RequestResponse, so level Metadata matches nothing there"
        ),
        "{err}"
    );
    let (ok, _, err) = run(&["search", "--timeline", "--stage", "ResponseStarted"]);
    assert!(!ok);
    assert!(
        err.contains("the timeline shows only stage ResponseComplete"),
        "{err}"
    );

    // --limit 0 means all, as for export.
    let (ok, out, err) = run(&["search", "--limit", "0"]);
    assert!(ok, "{err}");
    assert_eq!(rows(&out).len(), events.len());
    assert!(
        err.contains(&format!("{0} of {0} matching events", events.len())),
        "{err}"
    );

    // Values are checked like the selector checks them.
    for (args, message) in [
        (
            &["search", "--level", "Bogus"][..],
            "unknown level \"Bogus\"; expected one of None, Metadata, Request, RequestResponse",
        ),
        (
            &["search", "--verb", "DELETE"][..],
            "(values are case-sensitive: did you mean delete?)",
        ),
        (
            &["search", "--stage", "Done"][..],
            "unknown stage \"Done\"; expected one of RequestReceived, ResponseStarted, \
             ResponseComplete, Panic",
        ),
        (
            &["search", "--code=-1"][..],
            "response code -1 is not an HTTP status code (100 to 599)",
        ),
        (
            &["export", "--level", "Bogus", "-f", "-"][..],
            "unknown level \"Bogus\"",
        ),
        (
            &["search", "-s", "verb = DELETE"][..],
            "(verbs are lower case: did you mean delete?)",
        ),
    ] {
        let (ok, _, err) = run(args);
        assert!(!ok, "{args:?}");
        assert!(err.contains(message), "{args:?}: {err}");
    }

    // An empty answer names what it searched, and what is near.
    let (ok, out, err) = run(&["search", "--kind", "Leese", "--cluster", "prod"]);
    assert!(ok, "{err}");
    assert!(rows(&out).is_empty());
    assert!(
        err.contains("no events match kind Leese; cluster prod"),
        "{err}"
    );
    assert!(
        err.contains(
            "hint: \"Leese\" is not a kind auditrail knows, so it was searched as the resource \"leese\"; did you mean Lease?"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "hint: no stored event comes from cluster \"prod\"; the store holds clusters real"
        ),
        "{err}"
    );
    let (ok, _, err) = run(&[
        "search",
        "--timeline",
        "--kind",
        "Lease",
        "--user",
        "system:serviceaccount:kube-system:elastic-agent",
    ]);
    assert!(ok, "{err}");
    assert!(
        err.contains("hint: without --timeline, matching events: 1;"),
        "{err}"
    );
    let (ok, out, _) = run(&["search", "--count", "--user", "nobody"]);
    assert!(ok);
    assert_eq!(out.trim(), "0");
    let (ok, out, err) = run(&["history", "cm", "default/my-confg"]);
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        "no versions of configmaps default/my-confg in cluster real; did you mean configmaps default/my-config?"
    );
    let (ok, out, err) = run(&["history", "configmaps", "other/my-config"]);
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        "no versions of configmaps other/my-config in cluster real; did you mean configmaps default/my-config?"
    );
    let (ok, out, err) = run(&[
        "history",
        "pods",
        "default/nginx-deployment-7998647bdf-phvq7",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with(
            "no versions of pods default/nginx-deployment-7998647bdf-phvq7 in cluster real: the \
             trail holds 2 events about it, none a successful change of the object itself"
        ),
        "{out}"
    );
    server.terminate().unwrap();
}

/// A reader that stops early (`auditrail search | head -1`) ends the
/// command quietly, never with a panic and its backtrace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pipe_ends_the_command_quietly() {
    use std::io::Read as _;
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let lines = real_lines();
    let log = dir.path().join("kube-audit.log");
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let server = common::up_following(&dir.path().join("data"), "real", &log, &[]);
    common::wait_for_count(&server, 200).await;
    for output in ["ndjson", "table"] {
        let mut child = Command::new(binary("auditrail").unwrap())
            .args([
                "search",
                "--limit",
                "0",
                "-o",
                output,
                "--server",
                &server.url(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Read one byte, then close the pipe while the command still writes.
        let mut stdout = child.stdout.take().unwrap();
        let mut first = [0u8; 1];
        stdout.read_exact(&mut first).unwrap();
        drop(stdout);
        let status = auditrail_integration_tests::wait_deadline(
            &mut child,
            auditrail_integration_tests::PROCESS_DEADLINE,
        )
        .unwrap();
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert!(!err.contains("panicked"), "{output}: {err}");
        assert!(
            status.code() == Some(141) || status.success(),
            "{output}: {status:?}: {err}"
        );
    }
    server.terminate().unwrap();
}

/// A `--log-path` that is a directory is a mistake the status names: the
/// source is in BACKOFF with the reason, not IDLE or waiting for a file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_given_as_log_path_is_named_in_ingest_status() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("audit");
    std::fs::create_dir(&logs).unwrap();
    let server = common::up(
        &dir.path().join("data"),
        "real",
        &["--log-path", logs.to_str().unwrap()],
        &[],
    );
    let url = server.url();
    let status = auditrail_integration_tests::eventually("the source's error", || {
        let url = url.clone();
        async move {
            let (ok, out, _) = auditrail(&["ingest-status"], &url);
            (ok && out.contains("BACKOFF")).then_some(out)
        }
    })
    .await
    .unwrap();
    assert!(
        status.contains(&format!(
            "error: {}: is a directory, not a log file",
            logs.display()
        )),
        "{status}"
    );
    assert!(!status.contains("WAITING"), "{status}");
    let warnings = server
        .wait_for_log("the directory warning", |l| {
            l.contains("is a directory, not a log file")
        })
        .unwrap();
    assert_eq!(warnings.len(), 1, "logged once, not at every poll");
    server.terminate().unwrap();
}
