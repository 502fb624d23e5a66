//! How the reporter reads the audit trail: as a client of the query
//! service (`QueryService.Search`, oldest first, with the original bytes),
//! never from the store directly. The same path serves `auditrail up`
//! (the process's own address) and the chart (another pod), and keeps the
//! query service's access control and access trail in force for reports.
//!
//! Only what a replay can use is asked for: successful-or-not writes
//! (create, update, patch, delete, deletecollection) at stage
//! ResponseComplete, dry runs excluded, of the tracked resources; the
//! replay itself keeps the 2xx ones.

use auditrail_proto::v1;
use auditrail_proto::v1::query_service_client::QueryServiceClient;
use auditrail_server::client::{ClientConfig, Connection};
use jiff::Timestamp;

use crate::error::ReportError;

/// Events per Search page (the query service's maximum).
const PAGE: u32 = 1000;

/// A client of the query service.
#[derive(Debug, Clone)]
pub struct Trail {
    client: QueryServiceClient<Connection>,
}

/// The resources the replay tracks, as the query filter's `kinds` names
/// them (`plural.group`; the core group has no suffix).
fn tracked_kinds() -> Vec<String> {
    let mut kinds: Vec<String> = auditrail_replay::TRACKED
        .iter()
        .map(|(resource, group)| {
            if group.is_empty() {
                (*resource).to_owned()
            } else {
                format!("{resource}.{group}")
            }
        })
        .collect();
    // Kubernetes NetworkPolicies written through the old group.
    kinds.push("networkpolicies.extensions".to_owned());
    kinds
}

fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.fZ").to_string()
}

impl Trail {
    /// A client of the query service at `url` (connects when first used).
    pub fn connect(url: &str, config: &ClientConfig) -> Result<Self, ReportError> {
        let connection = auditrail_server::client::connect_lazy(url, config)
            .map_err(|e| ReportError::Trail(e.to_string()))?;
        Ok(Self {
            client: QueryServiceClient::new(connection).max_decoding_message_size(64 * 1024 * 1024),
        })
    }

    /// Every write of a tracked resource in `cluster` from `from`
    /// (inclusive; `None`: the oldest event) to `to` (exclusive), oldest
    /// first, with `raw` set.
    pub async fn changes(
        &self,
        cluster: &str,
        from: Option<Timestamp>,
        to: Timestamp,
    ) -> Result<Vec<v1::AuditEvent>, ReportError> {
        let filter = v1::Filter {
            clusters: vec![cluster.to_owned()],
            from: from.map(rfc3339).unwrap_or_default(),
            to: rfc3339(to),
            kinds: tracked_kinds(),
            verbs: ["create", "update", "patch", "delete", "deletecollection"]
                .map(str::to_owned)
                .to_vec(),
            stages: vec!["ResponseComplete".to_owned()],
            exclude_dry_run: true,
            ..Default::default()
        };
        let mut client = self.client.clone();
        let mut events = Vec::new();
        let mut page_token = String::new();
        loop {
            let response = client
                .search(v1::SearchRequest {
                    filter: Some(filter.clone()),
                    sort: v1::SortOrder::OldestFirst as i32,
                    page_size: PAGE,
                    page_token: std::mem::take(&mut page_token),
                    include_raw: true,
                    ..Default::default()
                })
                .await
                .map_err(|status| {
                    ReportError::Trail(format!(
                        "QueryService.Search answered {:?}: {}",
                        status.code(),
                        status.message()
                    ))
                })?
                .into_inner();
            events.extend(response.events);
            if response.next_page_token.is_empty() {
                break;
            }
            page_token = response.next_page_token;
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tracked_resource_is_asked_for_with_its_group() {
        let kinds = tracked_kinds();
        assert!(kinds.contains(&"pods".to_owned()));
        assert!(kinds.contains(&"networkpolicies.networking.k8s.io".to_owned()));
        assert!(kinds.contains(&"globalnetworkpolicies.projectcalico.org".to_owned()));
        assert_eq!(kinds.len(), auditrail_replay::TRACKED.len() + 1);
    }
}
