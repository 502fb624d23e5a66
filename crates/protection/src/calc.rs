//! The per-endpoint answer of the inventory and network-access reports:
//! the flags, the policies that select the endpoint in evaluation order,
//! and the services it backs.

use auditrail_replay::State;
use serde::Serialize;

use crate::model::{Cluster, Endpoint, EndpointId, LabelMap, NamespacedName};
use crate::policy::{Policy, PolicyError, PolicyRef, read_policies};

/// What the policies do for one endpoint (see the crate docs for each
/// flag's meaning).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(clippy::struct_excessive_bools)] // Six independent flags, as in the reports.
pub struct Flags {
    /// Some enforced policy selects it for ingress.
    pub ingress_protected: bool,
    /// Some enforced policy selects it for egress.
    pub egress_protected: bool,
    /// It may receive from a public address.
    pub ingress_from_internet: bool,
    /// It may send to a public address.
    pub egress_to_internet: bool,
    /// It may receive from endpoints of another namespace.
    pub ingress_from_other_namespaces: bool,
    /// It may send to endpoints of another namespace.
    pub egress_to_other_namespaces: bool,
}

impl Flags {
    /// The flags over two instants, as the reports aggregate an interval:
    /// protected only if protected at both, exposed if exposed at either.
    #[must_use]
    pub fn ever(self, other: Self) -> Self {
        Self {
            ingress_protected: self.ingress_protected && other.ingress_protected,
            egress_protected: self.egress_protected && other.egress_protected,
            ingress_from_internet: self.ingress_from_internet || other.ingress_from_internet,
            egress_to_internet: self.egress_to_internet || other.egress_to_internet,
            ingress_from_other_namespaces: self.ingress_from_other_namespaces
                || other.ingress_from_other_namespaces,
            egress_to_other_namespaces: self.egress_to_other_namespaces
                || other.egress_to_other_namespaces,
        }
    }
}

/// A policy that selects an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedPolicy {
    /// Which policy.
    pub policy: PolicyRef,
    /// Whether it enforces (staged policies are listed, never enforce).
    pub enforced: bool,
    /// Whether it applies to the endpoint's ingress.
    pub ingress: bool,
    /// Whether it applies to the endpoint's egress.
    pub egress: bool,
}

/// One endpoint's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointReport {
    /// Which endpoint.
    pub id: EndpointId,
    /// The service account a pod runs as; empty for host endpoints.
    pub service_account: String,
    /// Its labels.
    pub labels: LabelMap,
    /// The flags.
    pub flags: Flags,
    /// The policies that select it, in evaluation order (tier, order).
    pub applied_policies: Vec<AppliedPolicy>,
    /// The services it backs, by namespace and name.
    pub services: Vec<NamespacedName>,
}

/// The answer for every endpoint of a state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calculation {
    /// Every endpoint, by id.
    pub endpoints: Vec<EndpointReport>,
    /// Policies left out because they could not be read.
    pub warnings: Vec<PolicyError>,
}

/// Works out every endpoint's flags, policies and services in `state`,
/// from scratch. [`crate::incremental::Tracker`] gives the same answers
/// while the state changes, working out again only what a change can
/// affect.
pub fn calculate(state: &State) -> Calculation {
    let cluster = Cluster::from_state(state);
    let (policies, warnings) = read_policies(state, &cluster);
    let mut endpoints: Vec<EndpointReport> = cluster
        .endpoints
        .values()
        .map(|endpoint| {
            let selecting = policies.iter().filter(|p| p.selects(endpoint, &cluster));
            report(endpoint, selecting, &cluster)
        })
        .collect();
    endpoints.sort_by(|a, b| a.id.cmp(&b.id));
    Calculation {
        endpoints,
        warnings,
    }
}

/// One endpoint's answer, given the policies that select it in evaluation
/// order.
pub(crate) fn report<'p>(
    endpoint: &Endpoint,
    selecting: impl Iterator<Item = &'p Policy>,
    cluster: &Cluster,
) -> EndpointReport {
    let mut flags = Flags::default();
    let mut applied = Vec::new();
    for policy in selecting {
        applied.push(AppliedPolicy {
            policy: policy.reference.clone(),
            enforced: policy.enforced,
            ingress: policy.ingress.is_some(),
            egress: policy.egress.is_some(),
        });
        if !policy.enforced {
            continue;
        }
        let own = &endpoint.id.namespace;
        if let Some(admits) = &policy.ingress {
            flags.ingress_protected = true;
            flags.ingress_from_internet |= admits.internet;
            flags.ingress_from_other_namespaces |= admits.other_than(own);
        }
        if let Some(admits) = &policy.egress {
            flags.egress_protected = true;
            flags.egress_to_internet |= admits.internet;
            flags.egress_to_other_namespaces |= admits.other_than(own);
        }
    }
    // A direction no policy protects lets everything through,
    // unless the endpoint denies by default.
    if !flags.ingress_protected && endpoint.open_by_default {
        flags.ingress_from_internet = true;
        flags.ingress_from_other_namespaces = true;
    }
    if !flags.egress_protected && endpoint.open_by_default {
        flags.egress_to_internet = true;
        flags.egress_to_other_namespaces = true;
    }
    let services = cluster
        .services
        .get(&(endpoint.id.namespace.clone(), endpoint.id.name.clone()))
        .map(|s| s.iter().cloned().collect())
        .unwrap_or_default();
    EndpointReport {
        id: endpoint.id.clone(),
        service_account: endpoint.service_account.clone(),
        labels: endpoint.labels.clone(),
        flags,
        applied_policies: applied,
        services,
    }
}
