//! `auditrail health`: the gRPC health of each service on a server, or of
//! the one a one-service workload runs (`--service query`, as the chart's
//! `helm test` pods ask).

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::output::{Format, print_document};

/// The services by the names `--service` takes (those of `auditrail run
/// --service`) and the gRPC service each serves.
pub(crate) const SERVICES: [(&str, &str); 5] = [
    ("provisioner", "auditrail.v1.ProvisionService"),
    ("ingestor", "auditrail.v1.IngestorService"),
    ("indexer", "auditrail.v1.IngestService"),
    ("query", "auditrail.v1.QueryService"),
    ("reporter", "auditrail.v1.ReportService"),
];

/// Checks `only` (short names; empty: each of the five services); fails
/// unless all checked are `SERVING`. Text is one line per service; JSON
/// and YAML map each service to its status.
pub(crate) async fn run(server: &str, only: &[String], format: Format) -> anyhow::Result<()> {
    let channel = crate::connect(server).await?;
    let mut client = HealthClient::new(channel);
    let mut statuses = Vec::new();
    let checked = SERVICES
        .iter()
        .filter(|(short, _)| only.is_empty() || only.iter().any(|o| o == short))
        .map(|(_, full)| *full);
    for service in checked {
        let status = match client
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
        {
            Ok(response) => ServingStatus::try_from(response.into_inner().status)
                .map_or("UNKNOWN", |s| s.as_str_name()),
            Err(status) if status.code() == tonic::Code::NotFound => "SERVICE_UNKNOWN",
            Err(status) => {
                return Err(crate::error::rpc(
                    &format!("health check of {service}"),
                    &status,
                ));
            }
        };
        statuses.push((service, status));
    }
    if format == Format::Text {
        for (service, status) in &statuses {
            println!("{service:<32} {status}");
        }
    } else {
        let map: serde_json::Map<String, serde_json::Value> = statuses
            .iter()
            .map(|(s, st)| ((*s).to_owned(), (*st).into()))
            .collect();
        print_document(format, &map)?;
    }
    let down: Vec<_> = statuses
        .iter()
        .filter(|(_, s)| *s != "SERVING")
        .map(|(s, _)| *s)
        .collect();
    anyhow::ensure!(down.is_empty(), "not serving: {}", down.join(", "));
    Ok(())
}

#[cfg(test)]
mod tests {
    /// `--service` names every service of the contract, each once.
    #[test]
    fn every_service_of_the_contract_has_its_short_name() {
        let mut ours: Vec<&str> = super::SERVICES.iter().map(|(_, full)| *full).collect();
        let mut contract = auditrail_proto::SERVICE_NAMES.to_vec();
        ours.sort_unstable();
        contract.sort_unstable();
        assert_eq!(ours, contract);
    }
}
