//! Each service as its own binary: serves its one API, healthy, reflected,
//! measured, and stops cleanly on SIGTERM.

use auditrail_integration_tests::{Server, binary, scrape};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const SERVICES: [(&str, &str); 5] = [
    ("auditrail-provisioner", "auditrail.v1.ProvisionService"),
    ("auditrail-ingestor", "auditrail.v1.IngestorService"),
    ("auditrail-indexer", "auditrail.v1.IngestService"),
    ("auditrail-query", "auditrail.v1.QueryService"),
    ("auditrail-reporter", "auditrail.v1.ReportService"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_binary_serves_only_its_own_api() {
    let dir = tempfile::tempdir().unwrap();
    for (bin, own) in SERVICES {
        let exe = binary(bin).unwrap();
        let args: Vec<&str> = if bin == "auditrail-provisioner" {
            vec![]
        } else {
            vec!["--data-dir", dir.path().to_str().unwrap()]
        };
        let server = Server::start(&exe, &args, &[]).unwrap();
        let mut health = HealthClient::new(server.channel().await.unwrap());
        for (_, name) in SERVICES {
            let answer = health
                .check(HealthCheckRequest {
                    service: name.into(),
                })
                .await;
            if name == own {
                assert_eq!(
                    answer.unwrap().into_inner().status,
                    ServingStatus::Serving as i32,
                    "{bin}"
                );
            } else {
                assert_eq!(
                    answer.unwrap_err().code(),
                    tonic::Code::NotFound,
                    "{bin} {name}"
                );
            }
        }
        let metrics = scrape(server.metrics_addr().unwrap()).unwrap();
        let key = r#"grpc_server_handled_total{service="grpc.health.v1.Health",method="Check",code="OK"}"#;
        assert_eq!(metrics.get(key), Some(&1.0), "{bin}: {metrics:?}");
        let status = server.terminate().unwrap();
        assert!(status.success(), "{bin}: {status}");
    }
}
