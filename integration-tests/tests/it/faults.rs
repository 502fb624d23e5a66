//! The fault suite: what once crashed a server, lost the trail silently or
//! grew without bound, reproduced against a running `auditrail up` (sizes
//! scaled down for CI). After each, the server must still answer health
//! and the trail must be exact.

use std::process::Command;
use std::time::Duration;

use auditrail_integration_tests::{Server, binary, channel, run_to_end};
use auditrail_proto::v1;
use auditrail_proto::v1::provision_service_client::ProvisionServiceClient;
use auditrail_proto::v1::query_service_client::QueryServiceClient;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::common;

const EVENTS: usize = 300;

/// Health of the whole server, within a deadline (a hang guard).
async fn serving(server: &Server) -> bool {
    let check = async {
        let mut health = HealthClient::new(channel(server).await.ok()?);
        let answer = health
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await
            .ok()?;
        Some(answer.into_inner().status == ServingStatus::Serving as i32)
    };
    tokio::time::timeout(Duration::from_secs(30), check)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

fn lines() -> Vec<String> {
    auditrail_loggen::Generator::new(auditrail_loggen::GenConfig::default())
        .take(EVENTS)
        .collect()
}

async fn exact_count(server: &Server) -> u64 {
    let mut query = QueryServiceClient::new(channel(server).await.unwrap());
    query
        .search(v1::SearchRequest {
            page_size: 1,
            exact_total: true,
            ..v1::SearchRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .total_hits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines, reason = "one server, one fault after another")]
async fn hostile_requests_fail_alone_and_the_server_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kube-audit.log");
    std::fs::write(&log, lines().join("\n") + "\n").unwrap();
    let server = common::up_following(
        &dir.path().join("data"),
        "faults",
        &log,
        &[("AUDITRAIL_SERVER__MAX_CONNECTIONS", "40")],
    );
    common::wait_for_count(&server, EVENTS as u64).await;
    let mut query = QueryServiceClient::new(channel(&server).await.unwrap());

    // Selectors nested thousands deep: refused with the bound, no stack
    // overflow.
    for selector in [
        format!("{}verb=get", "!".repeat(500)),
        format!("{}verb=get", "NOT ".repeat(1000)),
        "(".repeat(2000),
    ] {
        let status = query
            .search(v1::SearchRequest {
                filter: Some(v1::Filter {
                    selector,
                    ..v1::Filter::default()
                }),
                ..v1::SearchRequest::default()
            })
            .await
            .expect_err("too deep");
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status.message().contains("more than 64 levels deep"),
            "{status:?}"
        );
    }
    assert!(serving(&server).await);

    // A deeply nested audit policy: refused before parsing, at once.
    let mut provision = ProvisionServiceClient::new(channel(&server).await.unwrap());
    let answer = provision
        .validate_policy(v1::ValidatePolicyRequest {
            policy_yaml: format!("rules: {}", "{a: ".repeat(100_000)),
        })
        .await
        .expect("an answer")
        .into_inner();
    assert!(!answer.valid);
    assert_eq!(
        answer.errors[0].message,
        "the policy nests '{' and '[' more than 64 levels deep (line 1)"
    );

    // A huge id is not echoed back.
    let status = query
        .diff(v1::DiffRequest {
            from_event_id: "f".repeat(1 << 20),
            to_event_id: "0".repeat(64),
            ..v1::DiffRequest::default()
        })
        .await
        .expect_err("not an id");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().len() < 300);

    // Idle TCP connections beyond the bound do not take the server down:
    // they are closed for their silence, and health answers again.
    let addr = server.url().trim_start_matches("http://").to_owned();
    let idle: Vec<std::net::TcpStream> = (0..60)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    assert!(serving(&server).await, "health answers beside idle sockets");
    drop(idle);

    // Exports nobody reads are bounded per client; cancelled ones free
    // their slots.
    let mut unread = Vec::new();
    let status = loop {
        match query
            .export(v1::ExportRequest {
                format: v1::ExportFormat::Yaml as i32,
                ..v1::ExportRequest::default()
            })
            .await
        {
            Ok(stream) => unread.push(stream.into_inner()),
            Err(status) => break status,
        }
        assert!(unread.len() <= 16, "exports are bounded");
    };
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    drop(unread);
    assert!(serving(&server).await);

    // The trail is exact after all of it.
    assert_eq!(exact_count(&server).await, EVENTS as u64);
    let logs = server.logs().join("\n");
    assert!(!logs.contains("panicked"), "{logs}");
    server.terminate().unwrap();
}

/// A store whose index lost its `meta.json` is refused at start, with the
/// path, and every file stays (it used to start empty and delete the old
/// segments at its first commit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_index_metadata_file_stops_the_start_and_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kube-audit.log");
    std::fs::write(&log, lines().join("\n") + "\n").unwrap();
    let data = dir.path().join("data");
    let server = common::up_following(&data, "faults", &log, &[]);
    common::wait_for_count(&server, EVENTS as u64).await;
    server.terminate().unwrap();

    let index = data.join("store").join("faults");
    std::fs::remove_file(index.join("meta.json")).unwrap();
    let files = |dir: &std::path::Path| -> Vec<(String, u64)> {
        let mut all: Vec<(String, u64)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().unwrap().len(),
                )
            })
            .collect();
        all.sort();
        all
    };
    let before = files(&index);
    let (status, _, err) = run_to_end(Command::new(binary("auditrail").unwrap()).args([
        "up",
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().unwrap(),
        "--cluster",
        "faults",
        "--retention-days",
        "0",
        "--log-path",
        log.to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("no meta.json"), "{err}");
    assert!(err.contains(&index.display().to_string()), "{err}");
    assert_eq!(files(&index), before, "nothing was deleted");
}
