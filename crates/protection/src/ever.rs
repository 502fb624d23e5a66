//! The "ever" aggregation over a report's interval: the configuration
//! changes within the interval, and a report must not call an endpoint
//! protected because it was protected at the end. An endpoint is in scope
//! if it existed at any instant; a protection flag holds only if it held at
//! every instant the endpoint existed (unprotected at any instant counts as
//! unprotected); an exposure flag (internet, other namespaces) holds if it
//! held at any instant. Applied policies and services are the union.

use std::collections::BTreeMap;

use crate::calc::{Calculation, EndpointReport};
use crate::model::EndpointId;

/// Folds the calculations of successive instants.
#[derive(Debug, Clone, Default)]
pub struct Ever {
    endpoints: BTreeMap<EndpointId, EndpointReport>,
}

impl Ever {
    /// Nothing seen yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the calculation of one more instant.
    pub fn add(&mut self, calculation: &Calculation) {
        for report in &calculation.endpoints {
            self.add_report(report);
        }
    }

    /// Adds one endpoint's answer at one more instant. Adding the same
    /// answer twice in a row changes nothing (the flags' rule and the
    /// unions are idempotent, the labels and account are the last seen),
    /// so a caller may skip an endpoint whose answer is the one it added
    /// last.
    pub fn add_report(&mut self, report: &EndpointReport) {
        match self.endpoints.get_mut(&report.id) {
            None => {
                self.endpoints.insert(report.id.clone(), report.clone());
            }
            Some(seen) => {
                seen.flags = seen.flags.ever(report.flags);
                for applied in &report.applied_policies {
                    match seen
                        .applied_policies
                        .iter_mut()
                        .find(|a| a.policy == applied.policy)
                    {
                        Some(a) => {
                            a.ingress |= applied.ingress;
                            a.egress |= applied.egress;
                        }
                        None => seen.applied_policies.push(applied.clone()),
                    }
                }
                for service in &report.services {
                    if !seen.services.contains(service) {
                        seen.services.push(service.clone());
                    }
                }
                seen.services.sort();
                seen.labels.clone_from(&report.labels);
                seen.service_account.clone_from(&report.service_account);
            }
        }
    }

    /// Every endpoint seen, by id, with its aggregated answer.
    pub fn finish(self) -> Vec<EndpointReport> {
        self.endpoints.into_values().collect()
    }
}
