//! Traces reach an OpenTelemetry collector when `--otlp-endpoint` is set.
//!
//! The collector here is a real OTLP/gRPC `TraceService` server (generated
//! from the OpenTelemetry protos) on a free loopback port, inside the test.

use std::sync::{Arc, Mutex};

use auditrail_integration_tests::{Server, binary, channel};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// Spans received: (service.name resource attribute, span name).
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<(String, String)>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.0.lock().unwrap();
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref()?.value.as_ref())
                .map(|v| match v {
                    Value::StringValue(s) => s.clone(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    spans.push((service.clone(), span.name));
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_of_grpc_calls_are_exported_over_otlp() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let collector = Collector::default();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let receiver = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async {
                    let _ = stopped.await;
                },
            ),
    );

    let dir = tempfile::tempdir().unwrap();
    let exe = binary("auditrail").unwrap();
    let server = Server::start(
        &exe,
        &[
            "up",
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--otlp-endpoint",
            &endpoint,
        ],
        &[],
    )
    .unwrap();
    let mut health = HealthClient::new(channel(&server).await.unwrap());
    health
        .check(HealthCheckRequest {
            service: "auditrail.v1.QueryService".into(),
        })
        .await
        .unwrap();
    drop(health);
    // Shutdown flushes the batch exporter before the process exits.
    let status = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());

    let spans = collector.0.lock().unwrap().clone();
    assert!(
        spans.contains(&(
            "auditrail".to_owned(),
            "grpc.health.v1.Health/Check".to_owned()
        )),
        "{spans:?}"
    );
    let _ = stop.send(());
    receiver.await.unwrap().unwrap();
}
