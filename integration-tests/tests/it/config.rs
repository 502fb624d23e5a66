//! Configuration from file, environment and flags, and clear errors for bad
//! values, on the real binaries.

use std::process::Command;

use auditrail_integration_tests::{Server, binary, run_to_end};

fn auditrail() -> Command {
    Command::new(binary("auditrail").unwrap())
}

fn refused(command: &mut Command) -> String {
    let (status, _, err) = run_to_end(command).unwrap();
    assert!(!status.success(), "must be refused; stderr: {err}");
    err
}

#[test]
fn bad_flag_values_are_refused_by_the_parser() {
    let err = refused(auditrail().args(["up", "--listen", "nowhere"]));
    assert!(err.contains("--listen") && err.contains("nowhere"), "{err}");
    let err = refused(auditrail().args(["up", "--metrics-listen", "1.2.3.4:99999"]));
    assert!(err.contains("--metrics-listen"), "{err}");
    let err = refused(auditrail().args(["run", "--service", "query", "--no-such-flag"]));
    assert!(err.contains("--no-such-flag"), "{err}");
    let err = refused(auditrail().args(["run", "--service", "indexer,quarry"]));
    assert!(err.contains("\"quarry\"") && err.contains("query"), "{err}");
    let err = refused(auditrail().args(["up", "--log-format", "xml"]));
    assert!(err.contains("xml") && err.contains("json"), "{err}");
    assert!(!err.contains(".rs:"), "no source location of ours: {err}");
}

#[test]
fn bad_environment_values_name_the_key_and_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let err = refused(
        auditrail()
            .args(["up", "--data-dir"])
            .arg(dir.path())
            .env("AUDITRAIL_SERVER__LISTEN", "not-an-address"),
    );
    assert!(err.to_lowercase().contains("server.listen"), "{err}");
    assert!(err.contains("variable AUDITRAIL_SERVER__LISTEN"), "{err}");
    assert!(err.contains("socket address"), "{err}");

    let err = refused(
        auditrail()
            .args(["up", "--data-dir"])
            .arg(dir.path())
            .env("AUDITRAIL_SERVER__SHUTDOWN_GRACE_SECS", "-3"),
    );
    assert!(
        err.contains("variable AUDITRAIL_SERVER__SHUTDOWN_GRACE_SECS"),
        "{err}"
    );
}

/// The variables the CLI reads (the README tells users to export
/// `AUDITRAIL_SERVER`) are not server configuration: a server started in
/// the same shell serves, rather than taking `AUDITRAIL_SERVER` for its
/// `[server]` table.
#[test]
fn client_variables_never_break_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kube-audit.log");
    std::fs::write(&log, "").unwrap();
    let server = Server::start(
        &binary("auditrail").unwrap(),
        &[
            "up",
            "--data-dir",
            dir.path().join("data").to_str().unwrap(),
            "--log-path",
            log.to_str().unwrap(),
        ],
        &[
            ("AUDITRAIL_SERVER", "http://127.0.0.1:50051"),
            ("AUDITRAIL_TOKEN", "a-token"),
            ("AUDITRAIL_TOKEN_FILE", "/nowhere/token"),
            ("AUDITRAIL_MOTO_SERVER", "/nowhere/moto_server"),
        ],
    )
    .unwrap();
    let (status, out, err) = run_to_end(Command::new(binary("auditrail").unwrap()).args([
        "health",
        "--server",
        &server.url(),
    ]))
    .unwrap();
    assert!(status.success(), "{out}{err}");
    server.terminate().unwrap();
}

#[test]
fn bad_files_are_refused_with_their_path() {
    let dir = tempfile::tempdir().unwrap();
    let err = refused(
        auditrail()
            .args(["up", "--config"])
            .arg(dir.path().join("missing.toml")),
    );
    assert!(
        err.contains("missing.toml") && err.contains("does not exist"),
        "{err}"
    );

    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "[server\nlisten = 1\n").unwrap();
    let err = refused(auditrail().args(["up", "--config"]).arg(&broken));
    assert!(err.contains("broken.toml"), "{err}");

    let typed = dir.path().join("typed.toml");
    std::fs::write(&typed, "[log]\nformat = \"xml\"\n").unwrap();
    let err = refused(auditrail().args(["up", "--config"]).arg(&typed));
    assert!(err.contains("log.format") && err.contains("xml"), "{err}");

    let filter = dir.path().join("filter.toml");
    std::fs::write(&filter, "[log]\nlevel = \"info,[[[\"\n").unwrap();
    let err = refused(auditrail().args(["up", "--config"]).arg(&filter));
    assert!(err.contains("invalid log filter"), "{err}");
}

#[test]
fn bad_cloudwatch_settings_are_refused_before_starting() {
    let dir = tempfile::tempdir().unwrap();
    let err = refused(auditrail().args(["up", "--cloudwatch-region", "us-west-2"]));
    assert!(err.contains("--cloudwatch-group"), "{err}");
    let err = refused(auditrail().args([
        "up",
        "--cloudwatch-group",
        "/aws/eks/x/cluster",
        "--cloudwatch-start-time",
        "last tuesday",
    ]));
    assert!(err.contains("--cloudwatch-start-time"), "{err}");

    let config = dir.path().join("eks.toml");
    std::fs::write(
        &config,
        "[[ingestor.cloudwatch]]\ngroupName = \"/aws/eks/x/cluster\"\nfetchInterval = 0\n",
    )
    .unwrap();
    let err = refused(
        auditrail()
            .args(["up", "--data-dir"])
            .arg(dir.path())
            .arg("--config")
            .arg(&config),
    );
    assert!(
        err.contains("cloudwatch") && err.contains("fetch_interval"),
        "{err}"
    );
}

#[test]
fn an_unreachable_elasticsearch_stops_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let err = refused(
        auditrail()
            .args(["up", "--elasticsearch-url", &url, "--data-dir"])
            .arg(dir.path()),
    );
    assert!(
        err.contains("cannot reach Elasticsearch") && err.contains(&url),
        "{err}"
    );
    let err = refused(auditrail().args([
        "run",
        "--service",
        "query",
        "--no-access-log",
        "--elasticsearch-url",
        "not-a-url",
    ]));
    assert!(err.contains("invalid Elasticsearch URL"), "{err}");
    let config = dir.path().join("es.toml");
    std::fs::write(
        &config,
        "[store.elasticsearch]\nurls = [\"http://127.0.0.1:9200\"]\nnaming = \"kibana\"\n",
    )
    .unwrap();
    let err = refused(
        auditrail()
            .args(["up", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path()),
    );
    assert!(err.contains("kibana") && err.contains("product"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_then_environment_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("auditrail.toml");
    let data = dir.path().join("from-file");
    // The file asks for text logs on a fixed port; the environment switches
    // logs to JSON (the harness reads JSON), and flags pick port 0.
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[server]\nlisten = \"127.0.0.1:1\"\nmetrics = false\n[log]\nformat = \"text\"\n[ingestor]\ncluster = \"prod-eu\"\n",
            data.to_str().unwrap()
        ),
    )
    .unwrap();
    let mut command = auditrail();
    command
        .args(["up", "--config"])
        .arg(&config)
        .args(["--listen", "127.0.0.1:0"]);
    let server = Server::spawn(command, &[("AUDITRAIL_LOG__FORMAT", "json")]).unwrap();
    assert!(
        server.metrics_addr().is_none(),
        "the file turned metrics off"
    );
    assert!(data.is_dir(), "data_dir came from the file");
    assert_ne!(
        server.url(),
        "http://127.0.0.1:1",
        "the flag overrode the file"
    );
    let status = server.terminate().unwrap();
    assert!(status.success());
}

/// A misspelt key is never ignored: in the file, in an `AUDITRAIL_…`
/// variable, in any table; the message names the key, where it was set and
/// the closest known key.
#[test]
fn unknown_keys_stop_the_start_with_the_closest_known_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("auditrail.toml");
    std::fs::write(&config, "[indexer]\nretention_dayz = 7\n").unwrap();
    let err = refused(auditrail().args(["up", "--config"]).arg(&config));
    assert!(err.contains("unknown key indexer.retention_dayz"), "{err}");
    assert!(err.contains("auditrail.toml"), "{err}");
    assert!(err.contains("did you mean retention_days?"), "{err}");

    // A key of a nested table is named once, with its tables.
    std::fs::write(&config, "[reporter.snapshots]\nhour = 2\n").unwrap();
    let err = refused(auditrail().args(["up", "--config"]).arg(&config));
    assert!(
        err.contains("unknown key reporter.snapshots.hour (in file"),
        "{err}"
    );
    assert!(err.contains("did you mean hour_utc?"), "{err}");
    // And a value out of range names its key.
    std::fs::write(&config, "[reporter.snapshots]\nhour_utc = 24\n").unwrap();
    let err = refused(
        auditrail()
            .args(["up", "--check-config", "--config"])
            .arg(&config),
    );
    assert!(
        err.contains("snapshots.hour_utc = 24: must be 0 to 23"),
        "{err}"
    );

    // The old flat layout of `up` (cluster at the top) is refused too.
    std::fs::write(&config, "cluster = \"prod\"\n").unwrap();
    let err = refused(auditrail().args(["up", "--config"]).arg(&config));
    assert!(err.contains("unknown key cluster"), "{err}");

    let err = refused(
        auditrail()
            .args(["run", "--service", "query", "--data-dir"])
            .arg(dir.path())
            .env("AUDITRAIL_DATA_DRI", "/tmp/x"),
    );
    assert!(err.contains("unknown key data_dri"), "{err}");
    assert!(err.contains("AUDITRAIL_DATA_DRI"), "{err}");
    assert!(err.contains("did you mean data_dir?"), "{err}");

    let err = refused(
        auditrail()
            .args(["run", "--service", "indexer", "--check-config"])
            .env("AUDITRAIL_INDEXER__RETENTION_DAYS", "ninety"),
    );
    assert!(err.contains("indexer.retention_days"), "{err}");
    assert!(err.contains("\"ninety\""), "the value: {err}");
    assert!(
        err.contains("AUDITRAIL_INDEXER__RETENTION_DAYS"),
        "where it came from: {err}"
    );
}

/// `--check-config` prints the effective configuration, every layer
/// applied and secrets redacted, and exits 0; a bad one exits 1 with the
/// error; nothing is started either way.
#[test]
fn check_config_prints_the_effective_configuration_or_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("auditrail.toml");
    std::fs::write(
        &config,
        "[indexer]\nretention_days = 30\n[store.elasticsearch]\nurls = [\"http://es:9200\"]\n\
         auth = { basic = { username = \"auditrail\", password = \"hunter2\" } }\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let (status, out, err) = run_to_end(
        auditrail()
            .args(["run", "--service", "indexer", "--check-config", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(&data)
            .env("AUDITRAIL_LOG__LEVEL", "debug"),
    )
    .unwrap();
    assert!(status.success(), "{err}");
    assert!(out.contains("retention_days = 30"), "the file: {out}");
    assert!(out.contains("level = \"debug\""), "the environment: {out}");
    assert!(out.contains(data.to_str().unwrap()), "the flags: {out}");
    assert!(
        out.contains("listen = \"127.0.0.1:50054\""),
        "the indexer's own port: {out}"
    );
    assert!(
        !out.contains("hunter2") && out.contains("<redacted>"),
        "{out}"
    );
    assert!(!data.exists(), "nothing was started or created");

    std::fs::write(
        &config,
        "[indexer]\nretention_days = 3\nmin_retention_days = 7\n",
    )
    .unwrap();
    let err = refused(
        auditrail()
            .args(["run", "--service", "indexer", "--check-config", "--config"])
            .arg(&config),
    );
    assert!(err.contains("below min_retention_days"), "{err}");
    // The indexer's table is checked only where the indexer runs.
    let (status, _, err) = run_to_end(
        auditrail()
            .args([
                "run",
                "--service",
                "provisioner",
                "--no-access-log",
                "--check-config",
                "--config",
            ])
            .arg(&config),
    )
    .unwrap();
    assert!(status.success(), "{err}");
}

/// A flag that configures a service the process does not run is refused,
/// not silently ignored.
#[test]
fn flags_of_services_not_run_are_refused() {
    let err = refused(auditrail().args(["run", "--service", "query", "--cluster", "prod"]));
    assert!(
        err.contains("--cluster configures the ingestor") && err.contains("--service query"),
        "{err}"
    );
    let err =
        refused(auditrail().args(["run", "--service", "provisioner", "--retention-days", "7"]));
    assert!(
        err.contains("--retention-days configures the indexer"),
        "{err}"
    );
}
