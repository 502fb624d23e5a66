//! The composition table: the six services a process can run, by name,
//! with their default ports and what each is given to start.
//!
//! A service is added to a process only through `ServiceName::add`, which
//! calls its crate's [`Service`] implementation; nothing else here knows a
//! service's internals. What the services share is decided in one place:
//! one store handle for the indexer and the query service, and the
//! ingestor's indexer is this very process when the indexer runs in it,
//! and so is the reporter's query service.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use auditrail_server::{Service, Services};
use auditrail_store::Store;

use crate::ComposeError;
use crate::config::NodeConfig;

/// The services, in the order they are listed and started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServiceName {
    /// Follows audit logs and sends their events to the indexer.
    Ingestor,
    /// Stores events exactly once; applies retention.
    Indexer,
    /// Search, histograms, export, history and diffs.
    Query,
    /// Audit policies and the set-up that makes clusters write them.
    Provisioner,
    /// Compliance reports.
    Reporter,
    /// The web console and its JSON API.
    Console,
}

/// Every service, in table order.
pub const ALL: [ServiceName; 6] = [
    ServiceName::Ingestor,
    ServiceName::Indexer,
    ServiceName::Query,
    ServiceName::Provisioner,
    ServiceName::Reporter,
    ServiceName::Console,
];

/// The gRPC port of a process running several services.
pub const ALL_IN_ONE_PORT: u16 = auditrail_server::ports::ALL_IN_ONE.grpc;
/// The Prometheus port of a process running several services.
pub const ALL_IN_ONE_METRICS_PORT: u16 = auditrail_server::ports::ALL_IN_ONE.metrics;

impl ServiceName {
    /// Its name in `--service` and its configuration table.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ingestor => <auditrail_ingestor::Ingestor as Service>::NAME,
            Self::Indexer => <auditrail_indexer::Indexer as Service>::NAME,
            Self::Query => <auditrail_query::Querier as Service>::NAME,
            Self::Provisioner => <auditrail_provisioner::Provisioner as Service>::NAME,
            Self::Reporter => <auditrail_reporter::Reporter as Service>::NAME,
            Self::Console => <auditrail_console::Console as Service>::NAME,
        }
    }

    /// Its gRPC and Prometheus ports when it runs alone.
    pub fn default_ports(self) -> (u16, u16) {
        fn ports<S: Service>() -> (u16, u16) {
            (S::DEFAULT_PORT, S::DEFAULT_METRICS_PORT)
        }
        match self {
            Self::Ingestor => ports::<auditrail_ingestor::Ingestor>(),
            Self::Indexer => ports::<auditrail_indexer::Indexer>(),
            Self::Query => ports::<auditrail_query::Querier>(),
            Self::Provisioner => ports::<auditrail_provisioner::Provisioner>(),
            Self::Reporter => ports::<auditrail_reporter::Reporter>(),
            Self::Console => ports::<auditrail_console::Console>(),
        }
    }

    /// Checks its settings in `config` before anything starts.
    pub(crate) fn check(self, config: &NodeConfig) -> Result<(), ComposeError> {
        fn check<S: Service>(settings: &S::Settings) -> Result<(), ComposeError> {
            S::check(settings).map_err(|e| failed::<S>(&e))
        }
        match self {
            Self::Ingestor => check::<auditrail_ingestor::Ingestor>(&config.ingestor),
            Self::Indexer => check::<auditrail_indexer::Indexer>(&config.indexer),
            Self::Query => check::<auditrail_query::Querier>(&config.query),
            Self::Provisioner => check::<auditrail_provisioner::Provisioner>(&config.provisioner),
            Self::Reporter => check::<auditrail_reporter::Reporter>(&config.reporter),
            Self::Console => check::<auditrail_console::Console>(&config.console),
        }
    }

    /// Adds it to `services`, given what the process shares.
    pub(crate) fn add(
        self,
        services: Services,
        config: &NodeConfig,
        shared: &Shared,
    ) -> Result<Services, ComposeError> {
        fn add<S: Service>(
            services: Services,
            settings: &S::Settings,
            shared: S::Shared,
        ) -> Result<Services, ComposeError> {
            S::add_to(services, settings, shared).map_err(|e| failed::<S>(&e))
        }
        let store = || {
            shared
                .store
                .clone()
                .ok_or(ComposeError::Internal("no store was opened"))
        };
        match self {
            Self::Ingestor => add::<auditrail_ingestor::Ingestor>(
                services,
                &config.ingestor,
                auditrail_ingestor::Shared {
                    data_dir: config.ingestor_dir(),
                    indexer: if shared.selection.contains(&Self::Indexer) {
                        auditrail_ingestor::IndexerTarget::ThisServer
                    } else {
                        auditrail_ingestor::IndexerTarget::Configured
                    },
                },
            ),
            Self::Indexer => add::<auditrail_indexer::Indexer>(services, &config.indexer, store()?),
            Self::Query => add::<auditrail_query::Querier>(services, &config.query, store()?),
            Self::Provisioner => {
                add::<auditrail_provisioner::Provisioner>(services, &config.provisioner, ())
            }
            Self::Reporter => add::<auditrail_reporter::Reporter>(
                services,
                &config.reporter,
                auditrail_reporter::Shared {
                    reports_dir: config.reports_dir(),
                    query: if shared.selection.contains(&Self::Query) {
                        auditrail_reporter::QueryTarget::ThisServer
                    } else {
                        auditrail_reporter::QueryTarget::Configured
                    },
                    ingestor: if shared.selection.contains(&Self::Ingestor) {
                        auditrail_reporter::IngestorTarget::ThisServer
                    } else {
                        auditrail_reporter::IngestorTarget::Configured
                    },
                    trail_retention_days: config.indexer.retention_days,
                },
            ),
            Self::Console => add::<auditrail_console::Console>(
                services,
                &config.console,
                auditrail_console::Shared {
                    query: shared.selection.contains(&Self::Query),
                    reporter: shared.selection.contains(&Self::Reporter),
                    ingestor: shared.selection.contains(&Self::Ingestor),
                    indexer: shared.selection.contains(&Self::Indexer),
                },
            ),
        }
    }
}

fn failed<S: Service>(err: &S::Error) -> ComposeError {
    ComposeError::Service {
        service: S::NAME,
        message: err.to_string(),
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the services of one process share.
pub(crate) struct Shared {
    /// The services this process runs.
    pub(crate) selection: Selection,
    /// The store, when the indexer or the query service runs.
    pub(crate) store: Option<Arc<dyn Store>>,
}

/// The services one process runs: `--service ingestor,indexer`, or `all`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection(BTreeSet<ServiceName>);

impl Selection {
    /// All six services.
    pub fn all() -> Self {
        Self(ALL.into_iter().collect())
    }

    /// Just `service`.
    pub fn one(service: ServiceName) -> Self {
        Self(BTreeSet::from([service]))
    }

    /// Whether `service` is selected.
    pub fn contains(&self, service: &ServiceName) -> bool {
        self.0.contains(service)
    }

    /// The selected services, in table order.
    pub fn iter(&self) -> impl Iterator<Item = ServiceName> + '_ {
        self.0.iter().copied()
    }

    /// The one selected service, when only one is.
    pub fn single(&self) -> Option<ServiceName> {
        let mut it = self.0.iter();
        match (it.next(), it.next()) {
            (Some(one), None) => Some(*one),
            _ => None,
        }
    }

    /// The default ports: the service's own when one runs, else the
    /// all-in-one ports.
    pub fn default_ports(&self) -> (u16, u16) {
        self.single().map_or(
            (ALL_IN_ONE_PORT, ALL_IN_ONE_METRICS_PORT),
            ServiceName::default_ports,
        )
    }

    /// The process name in logs and traces: `auditrail-<service>` for one
    /// service, `auditrail` for several.
    pub fn process_name(&self) -> &'static str {
        match self.single() {
            Some(ServiceName::Ingestor) => "auditrail-ingestor",
            Some(ServiceName::Indexer) => "auditrail-indexer",
            Some(ServiceName::Query) => "auditrail-query",
            Some(ServiceName::Provisioner) => "auditrail-provisioner",
            Some(ServiceName::Reporter) => "auditrail-reporter",
            Some(ServiceName::Console) => "auditrail-console",
            None => "auditrail",
        }
    }
}

impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.iter().map(ServiceName::as_str).collect();
        f.write_str(&names.join(","))
    }
}

impl FromStr for Selection {
    type Err = String;

    /// `all`, or service names separated by commas.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut set = BTreeSet::new();
        for word in text.split(',').map(str::trim) {
            if word == "all" {
                set.extend(ALL);
                continue;
            }
            let Some(service) = ALL.into_iter().find(|s| s.as_str() == word) else {
                let known: Vec<_> = ALL.iter().map(|s| s.as_str()).collect();
                return Err(format!(
                    "unknown service {word:?}; the services are all, {}",
                    known.join(", ")
                ));
            };
            set.insert(service);
        }
        Ok(Self(set))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections_parse_names_and_all() {
        let s: Selection = "indexer,ingestor".parse().unwrap();
        assert_eq!(s.to_string(), "ingestor,indexer");
        assert_eq!(
            s.default_ports(),
            (ALL_IN_ONE_PORT, ALL_IN_ONE_METRICS_PORT)
        );
        assert_eq!("all".parse::<Selection>().unwrap(), Selection::all());
        let one: Selection = "query".parse().unwrap();
        assert_eq!(one.single(), Some(ServiceName::Query));
        assert_eq!(one.process_name(), "auditrail-query");
        assert_eq!(one.default_ports(), ServiceName::Query.default_ports());
        let err = "indexer,quarry".parse::<Selection>().unwrap_err();
        assert!(err.contains("\"quarry\""), "{err}");
        assert!(err.contains("query"), "{err}");
    }

    #[test]
    fn every_service_has_its_own_ports() {
        let mut ports: Vec<u16> = ALL
            .iter()
            .flat_map(|s| {
                let (grpc, metrics) = s.default_ports();
                [grpc, metrics]
            })
            .chain([
                ALL_IN_ONE_PORT,
                ALL_IN_ONE_METRICS_PORT,
                auditrail_console::settings::DEFAULT_HTTP_PORT,
            ])
            .collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 15, "no two listeners share a default port");
    }
}
