//! What every client command of the `auditrail` binary shares: the server
//! address (`https://` refused, no silent plaintext), the one error
//! renderer (real messages: a closed port, a refusal from the server), and
//! `-o text|json|yaml` of `health`, `stats`, `ingest-status` and `services`
//! against a running `auditrail up`.

use std::process::Command;

use auditrail_integration_tests::{binary, run_to_end};
use auditrail_loggen::{GenConfig, Generator};

use crate::common;

fn auditrail(args: &[&str]) -> (bool, String, String) {
    let mut command = Command::new(binary("auditrail").unwrap());
    command.args(args).env_remove("AUDITRAIL_SERVER");
    let (status, out, err) = run_to_end(&mut command).unwrap();
    (status.success(), out, err)
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Every client command, with the arguments it needs to get as far as
/// connecting.
fn client_commands(dir: &std::path::Path) -> Vec<Vec<String>> {
    let policy = dir.join("policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n",
    )
    .unwrap();
    let policy = policy.to_str().unwrap();
    let export = dir.join("export.json");
    let export = export.to_str().unwrap();
    [
        vec!["health"],
        vec!["stats"],
        vec!["ingest-status"],
        vec!["services"],
        vec!["search", "--timeline"],
        vec!["export", "-q", "-f", export],
        vec!["history", "networkpolicies", "prod/allow-dns"],
        vec!["diff", "a", "b"],
        vec!["policy", "generate"],
        vec!["policy", "validate", policy],
        vec![
            "policy", "evaluate", policy, "--verb", "get", "--path", "/x",
        ],
        vec!["setup", "render", "--platform", "onprem"],
        vec!["setup", "apply", "--platform", "onprem", "--dry-run"],
    ]
    .into_iter()
    .map(|args| args.into_iter().map(str::to_owned).collect())
    .collect()
}

#[test]
fn https_servers_without_a_ca_are_refused_by_every_client_command() {
    let dir = tempfile::tempdir().unwrap();
    // A listening port: were the command to connect, it would not fail with
    // this message.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    for mut args in client_commands(dir.path()) {
        args.extend(["--server".to_owned(), url.clone()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, out, err) = auditrail(&args);
        assert!(!ok && out.is_empty(), "{args:?}: {out}");
        assert_eq!(
            err,
            format!(
                "error: --server {url}: {url} is https: give the CA that signed the server's certificate (--tls-ca, tls_ca)\n"
            ),
            "{args:?}"
        );
    }
    // AUDITRAIL_SERVER is the same address.
    let mut command = Command::new(binary("auditrail").unwrap());
    command.args(["stats"]).env("AUDITRAIL_SERVER", &url);
    let (status, _, err) = run_to_end(&mut command).unwrap();
    assert!(!status.success());
    assert!(err.contains("is https: give the CA"), "{err}");
    assert!(!dir.path().join("export.json").exists());
}

#[test]
fn a_closed_port_is_reported_once_by_every_client_command() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", closed_port());
    for mut args in client_commands(dir.path()) {
        args.extend(["--server".to_owned(), url.clone()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, out, err) = auditrail(&args);
        assert!(!ok && out.is_empty(), "{args:?}: {out}");
        assert!(
            err.starts_with(&format!("error: cannot reach {url}: ")),
            "{args:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        assert_eq!(err.matches("Connection refused").count(), 1, "{err}");
        // No cause repeats the one before it (the transport names "tcp
        // connect error" at two levels).
        let causes: Vec<&str> = err.trim_end().split(": ").collect();
        for pair in causes.windows(2) {
            assert!(!pair[0].contains(pair[1]), "{pair:?} repeated in {err}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_refusals_are_message_and_code() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kube-audit.log");
    std::fs::write(&log, "").unwrap();
    let server = common::up_following(&dir.path().join("data"), "default", &log, &[]);
    let url = server.url();
    let (ok, _, err) = auditrail(&[
        "setup",
        "render",
        "--platform",
        "eks",
        "--eks-cluster",
        "prod",
        "--eks-region",
        "US West",
        "--server",
        &url,
    ]);
    assert!(!ok);
    assert_eq!(
        err,
        "error: RenderSetup failed: --eks-region: \"US West\" is not an AWS region (e.g. us-west-2) (INVALID_ARGUMENT)\n"
    );
    // The query service's refusals go through the same renderer.
    let (ok, _, err) = auditrail(&["search", "--selector", "verb <", "--server", &url]);
    assert!(!ok);
    assert!(
        err.starts_with("error: Search failed: ") && err.ends_with(" (INVALID_ARGUMENT)\n"),
        "{err}"
    );
    assert!(
        !err.contains("InvalidArgument") && !err.contains("Status {"),
        "{err}"
    );
    server.terminate().unwrap();
}

/// `-o` of health, stats, ingest-status and services, on a server that
/// stored a generated log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_commands_print_text_json_and_yaml() {
    const EVENTS: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kube-audit.log");
    let lines: Vec<String> = Generator::new(GenConfig::default()).take(EVENTS).collect();
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let server = common::up_following(&dir.path().join("data"), "lab", &log, &[]);
    common::wait_for_count(&server, EVENTS as u64).await;
    let url = server.url();
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--server", &url]);
        let (ok, out, err) = auditrail(&all);
        assert!(ok, "{args:?}: {err}");
        out
    };
    let yaml = |text: &str| serde_norway::from_str::<serde_json::Value>(text).unwrap();
    let json = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap();

    // stats: the same document in JSON and YAML; sizes in bytes there and
    // with units in the table.
    let stored = json(&run(&["stats", "-o", "json"]));
    assert_eq!(
        yaml(&run(&["stats", "-o", "yaml"]))["stats"]
            .as_array()
            .map(Vec::len),
        stored["stats"].as_array().map(Vec::len)
    );
    let rows = stored["stats"].as_array().unwrap();
    assert!(!rows.is_empty());
    let total: u64 = rows.iter().map(|r| r["eventCount"].as_u64().unwrap()).sum();
    assert_eq!(total, EVENTS as u64);
    for row in rows {
        assert_eq!(row["cluster"], "lab");
        assert!(row["type"] == "kube" || row["type"] == "ee", "{row}");
        assert!(row["sizeBytes"].as_u64().unwrap() > 0, "{row}");
        assert!(row["oldest"].as_str().unwrap().ends_with('Z'), "{row}");
        assert!(row["newest"].as_str().unwrap() >= row["oldest"].as_str().unwrap());
    }
    let table = run(&["stats"]);
    let table_rows: Vec<&str> = table.lines().skip(1).collect();
    assert_eq!(table_rows.len(), rows.len(), "{table}");
    for row in table_rows {
        let words: Vec<&str> = row.split_whitespace().collect();
        let (number, unit) = (words[words.len() - 2], words[words.len() - 1]);
        assert!(["B", "KiB", "MiB", "GiB"].contains(&unit), "{row}");
        let number: f64 = number.parse().unwrap();
        assert!(unit == "B" || (1.0..1024.0).contains(&number), "{row}");
    }

    // ingest-status: the file source and its counts.
    let ingestor = json(&run(&["ingest-status", "-o", "json"]));
    assert_eq!(ingestor["cluster"], "lab");
    let source = &ingestor["sources"][0];
    assert_eq!(source["kind"], "file", "{ingestor}");
    assert_eq!(source["file"]["path"], log.to_str().unwrap(), "{ingestor}");
    assert_eq!(source["eventsRead"], EVENTS as u64, "{ingestor}");
    assert_eq!(
        yaml(&run(&["ingest-status", "-o", "yaml"]))["sources"][0]["eventsRead"],
        EVENTS as u64
    );
    let text = run(&["ingest-status"]);
    assert!(text.starts_with("cluster lab\nsource "), "{text}");
    assert!(text.contains(&format!("{EVENTS} lines read (")), "{text}");

    // services and health: the five services, in every format.
    let services = json(&run(&["services", "-o", "json"]));
    let yaml_services = yaml(&run(&["services", "-o", "yaml"]));
    let text_services = run(&["services"]);
    for name in auditrail_proto::SERVICE_NAMES {
        assert!(
            services["services"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == name),
            "{services}"
        );
        assert!(
            yaml_services["services"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == name)
        );
        assert!(text_services.lines().any(|l| l == name), "{text_services}");
    }
    let health_json = json(&run(&["health", "-o", "json"]));
    let health_yaml = yaml(&run(&["health", "-o", "yaml"]));
    for name in auditrail_proto::SERVICE_NAMES {
        assert_eq!(health_json[name], "SERVING");
        assert_eq!(health_yaml[name], "SERVING");
    }
    server.terminate().unwrap();
}
