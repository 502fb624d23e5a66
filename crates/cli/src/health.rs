//! `auditrail health`: the gRPC health of each service on a server.

use anyhow::Context as _;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// How to print the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Output {
    /// One line per service.
    Text,
    /// A JSON object mapping service to status.
    Json,
}

/// Checks each of the five services; fails unless all are `SERVING`.
pub(crate) async fn run(server: &str, output: Output) -> anyhow::Result<()> {
    let channel = crate::connect(server).await?;
    let mut client = HealthClient::new(channel);
    let mut statuses = Vec::new();
    for service in auditrail_proto::SERVICE_NAMES {
        let status = match client
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
        {
            Ok(response) => ServingStatus::try_from(response.into_inner().status)
                .map_or("UNKNOWN", |s| s.as_str_name()),
            Err(status) if status.code() == tonic::Code::NotFound => "SERVICE_UNKNOWN",
            Err(status) => return Err(status).context(format!("health check of {service} failed")),
        };
        statuses.push((service, status));
    }
    match output {
        Output::Text => {
            for (service, status) in &statuses {
                println!("{service:<32} {status}");
            }
        }
        Output::Json => {
            let map: serde_json::Map<String, serde_json::Value> = statuses
                .iter()
                .map(|(s, st)| ((*s).to_owned(), (*st).into()))
                .collect();
            println!("{}", serde_json::Value::Object(map));
        }
    }
    let down: Vec<_> = statuses
        .iter()
        .filter(|(_, s)| *s != "SERVING")
        .map(|(s, _)| *s)
        .collect();
    anyhow::ensure!(down.is_empty(), "not serving: {}", down.join(", "));
    Ok(())
}
