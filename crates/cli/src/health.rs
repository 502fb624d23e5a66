//! `auditrail health`: the gRPC health of each service on a server, or of
//! the one a one-service workload runs (`--service query`, as the chart's
//! `helm test` pods ask).

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::output::{Format, print_document};

/// The services by the names `--service` takes (those of `auditrail run
/// --service`) and the gRPC health entry of each: the gRPC service it
/// serves, or `""`, the server's own entry, for the console, which serves
/// no gRPC API of its own (its gRPC port has health and reflection only;
/// its pages are on its HTTP port).
pub(crate) const SERVICES: [(&str, &str); 6] = [
    ("provisioner", "auditrail.v1.ProvisionService"),
    ("ingestor", "auditrail.v1.IngestorService"),
    ("indexer", "auditrail.v1.IngestService"),
    ("query", "auditrail.v1.QueryService"),
    ("reporter", "auditrail.v1.ReportService"),
    ("console", ""),
];

/// The entries to check for `only` (short names; empty: each of the five
/// gRPC services), each as (the name printed, the health entry asked).
fn selected(only: &[String]) -> Vec<(&'static str, &'static str)> {
    SERVICES
        .iter()
        .filter(|(short, full)| {
            if only.is_empty() {
                !full.is_empty()
            } else {
                only.iter().any(|o| o == short)
            }
        })
        .map(|(short, full)| (if full.is_empty() { *short } else { *full }, *full))
        .collect()
}

/// Checks `only` (short names; empty: each of the five gRPC services);
/// fails unless all checked are `SERVING`. Text is one line per service;
/// JSON and YAML map each service to its status.
pub(crate) async fn run(server: &str, only: &[String], format: Format) -> anyhow::Result<()> {
    let channel = crate::connect(server).await?;
    let mut client = HealthClient::new(channel);
    let mut statuses = Vec::new();
    for (service, entry) in selected(only) {
        let status = match client
            .check(HealthCheckRequest {
                service: entry.to_owned(),
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
        let mut ours: Vec<&str> = super::SERVICES
            .iter()
            .map(|(_, full)| *full)
            .filter(|full| !full.is_empty())
            .collect();
        let mut contract = auditrail_proto::SERVICE_NAMES.to_vec();
        ours.sort_unstable();
        contract.sort_unstable();
        assert_eq!(ours, contract);
    }

    /// `--service console` asks the server's own entry (the console serves
    /// no gRPC API), printed as `console`; without `--service` the five
    /// gRPC services are checked, not the console.
    #[test]
    fn the_console_is_the_servers_own_entry_and_only_on_request() {
        assert_eq!(super::selected(&["console".to_owned()]), [("console", "")]);
        let all = super::selected(&[]);
        assert_eq!(all.len(), 5);
        assert!(
            all.iter()
                .all(|(name, entry)| name == entry && !entry.is_empty())
        );
        assert_eq!(
            super::selected(&["query".to_owned()]),
            [("auditrail.v1.QueryService", "auditrail.v1.QueryService")]
        );
    }
}
