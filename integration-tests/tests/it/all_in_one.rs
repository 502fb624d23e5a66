//! `auditrail up`: the five services in one process, over real gRPC.

use auditrail_integration_tests::{Server, binary, channel, run_to_end, scrape};
use tokio_stream::StreamExt as _;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

fn up(data_dir: &std::path::Path, env: &[(&str, &str)]) -> Server {
    let exe = binary("auditrail").unwrap();
    let dir = data_dir.to_str().unwrap();
    Server::start(&exe, &["up", "--data-dir", dir], env).unwrap()
}

async fn reflection_services(server: &Server) -> Vec<String> {
    let mut client = ServerReflectionClient::new(channel(server).await.unwrap());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer = stream.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("unexpected reflection answer {answer:?}");
    };
    list.service.into_iter().map(|s| s.name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_serves_the_five_services_healthy_with_reflection_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let server = up(dir.path(), &[]);

    let mut health = HealthClient::new(channel(&server).await.unwrap());
    for name in auditrail_proto::SERVICE_NAMES {
        let status = health
            .check(HealthCheckRequest {
                service: name.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{name}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "auditrail.v1.NoSuchService".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    let listed = reflection_services(&server).await;
    for name in auditrail_proto::SERVICE_NAMES {
        assert!(listed.iter().any(|s| s == name), "{name} not in {listed:?}");
    }

    // The reporter answers (every service is built now): no definitions yet.
    let mut reports = auditrail_proto::v1::report_service_client::ReportServiceClient::new(
        channel(&server).await.unwrap(),
    );
    let listed = reports
        .list_report_definitions(auditrail_proto::v1::ListReportDefinitionsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.definitions.is_empty() && listed.next_page_token.is_empty());
    // So does the query service.
    let mut query = auditrail_proto::v1::query_service_client::QueryServiceClient::new(
        channel(&server).await.unwrap(),
    );
    let page = query
        .search(auditrail_proto::v1::SearchRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(page.events.is_empty() && page.total_hits_exact);

    // The calls above are counted, per method and status code.
    let metrics = scrape(server.metrics_addr().expect("metrics on")).unwrap();
    let list = r#"grpc_server_handled_total{service="auditrail.v1.ReportService",method="ListReportDefinitions",code="OK"}"#;
    assert_eq!(metrics.get(list), Some(&1.0), "{metrics:?}");
    let search = r#"grpc_server_handled_total{service="auditrail.v1.QueryService",method="Search",code="OK"}"#;
    assert_eq!(metrics.get(search), Some(&1.0), "{metrics:?}");
    let checks = r#"grpc_server_started_total{service="grpc.health.v1.Health",method="Check"}"#;
    assert_eq!(metrics.get(checks), Some(&6.0));

    // The CLI clients agree.
    let exe = binary("auditrail").unwrap();
    let (status, out, err) = run_to_end(std::process::Command::new(&exe).args([
        "health",
        "--server",
        &server.url(),
        "-o",
        "json",
    ]))
    .unwrap();
    assert!(status.success(), "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    for name in auditrail_proto::SERVICE_NAMES {
        assert_eq!(json[name], "SERVING", "{out}");
    }
    let (status, out, err) =
        run_to_end(std::process::Command::new(&exe).args(["services", "--server", &server.url()]))
            .unwrap();
    assert!(status.success(), "{err}");
    for name in auditrail_proto::SERVICE_NAMES {
        assert!(out.lines().any(|l| l == name), "{out}");
    }

    let status = server.terminate().unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(dir.path().is_dir());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_turns_health_not_serving_then_exits_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    // A one-second grace period, set through the environment layer.
    let server = up(
        dir.path(),
        &[("AUDITRAIL_SERVER__SHUTDOWN_GRACE_SECS", "1")],
    );
    let mut health = HealthClient::new(channel(&server).await.unwrap());
    let mut watch = health
        .watch(HealthCheckRequest {
            service: "auditrail.v1.QueryService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.next().await.unwrap().unwrap();
    assert_eq!(first.status, ServingStatus::Serving as i32);

    // The open Watch stream is an in-flight call: the server must tell it
    // NOT_SERVING, then close it when the grace period is over and exit 0.
    server.send_sigterm().unwrap();
    let next = watch.next().await.unwrap().unwrap();
    assert_eq!(next.status, ServingStatus::NotServing as i32);
    // The stream ends when the server closes it after the grace period.
    assert!(watch.next().await.is_none_or(|r| r.is_err()));
    server
        .wait_for_log("the end of the grace period", |l| {
            l.contains("grace period over")
        })
        .unwrap();
    let status = server.wait().unwrap();
    assert!(status.success(), "exit status {status}");
}

#[test]
fn the_data_directory_is_created_and_a_bad_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let exe = binary("auditrail").unwrap();
    let (status, _, err) = run_to_end(
        std::process::Command::new(&exe)
            .args([
                "up",
                "--listen",
                "127.0.0.1:0",
                "--no-metrics",
                "--data-dir",
            ])
            .arg(file.join("sub")),
    )
    .unwrap();
    assert!(!status.success());
    assert!(err.contains("cannot create the data directory"), "{err}");
}
