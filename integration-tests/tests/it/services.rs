//! `auditrail run --service`: each service alone serves its one API on its
//! own default-port scheme, healthy, reflected, measured, and stops cleanly
//! on SIGTERM; a subset serves exactly its services.

use auditrail_integration_tests::{Server, binary, channel, scrape};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const SERVICES: [(&str, &str); 5] = [
    ("provisioner", "auditrail.v1.ProvisionService"),
    ("ingestor", "auditrail.v1.IngestorService"),
    ("indexer", "auditrail.v1.IngestService"),
    ("query", "auditrail.v1.QueryService"),
    ("reporter", "auditrail.v1.ReportService"),
];

/// Asserts that `server` serves exactly the APIs of `running`, and counts
/// its health checks.
async fn serves_exactly(server: &Server, running: &[&str]) {
    let mut health = HealthClient::new(channel(server).await.unwrap());
    for (service, api) in SERVICES {
        let answer = health
            .check(HealthCheckRequest {
                service: api.into(),
            })
            .await;
        if running.contains(&service) {
            assert_eq!(
                answer.unwrap().into_inner().status,
                ServingStatus::Serving as i32,
                "{running:?}: {api}"
            );
        } else {
            assert_eq!(
                answer.unwrap_err().code(),
                tonic::Code::NotFound,
                "{running:?}: {api}"
            );
        }
    }
    let metrics = scrape(server.metrics_addr().unwrap()).unwrap();
    let key =
        r#"grpc_server_handled_total{service="grpc.health.v1.Health",method="Check",code="OK"}"#;
    assert_eq!(
        metrics.get(key),
        Some(&f64::from(u32::try_from(running.len()).unwrap())),
        "{running:?}: {metrics:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_service_alone_serves_only_its_own_api() {
    let dir = tempfile::tempdir().unwrap();
    let exe = binary("auditrail").unwrap();
    for (service, _) in SERVICES {
        let mut args = vec!["run", "--service", service];
        if service != "provisioner" {
            args.extend(["--data-dir", dir.path().to_str().unwrap()]);
        }
        if matches!(service, "query" | "provisioner" | "reporter") {
            // No indexer runs beside them here to store their access
            // records (tests/it/access_trail.rs covers recording).
            args.push("--no-access-log");
        }
        let server = Server::start(&exe, &args, &[]).unwrap();
        serves_exactly(&server, &[service]).await;
        // `auditrail health --service`, as the chart's helm test pods ask a
        // one-service workload; without it the others are SERVICE_UNKNOWN.
        let health = |only: Option<&str>| {
            let mut command = std::process::Command::new(&exe);
            command.args(["health", "--server", &server.url()]);
            if let Some(only) = only {
                command.args(["--service", only]);
            }
            command.output().unwrap()
        };
        let own = health(Some(service));
        assert!(
            own.status.success(),
            "{service}: {}",
            String::from_utf8_lossy(&own.stderr)
        );
        let all = health(None);
        assert!(
            !all.status.success(),
            "{service}: the other four are not served"
        );
        assert!(
            String::from_utf8_lossy(&all.stdout).contains("SERVICE_UNKNOWN"),
            "{service}"
        );
        let status = server.terminate().unwrap();
        assert!(status.success(), "{service}: {status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subset_serves_exactly_its_services() {
    let dir = tempfile::tempdir().unwrap();
    let exe = binary("auditrail").unwrap();
    let data = dir.path().to_str().unwrap();
    let server = Server::start(
        &exe,
        &["run", "--service", "indexer,query", "--data-dir", data],
        &[],
    )
    .unwrap();
    serves_exactly(&server, &["indexer", "query"]).await;
    assert!(server.terminate().unwrap().success());
}
