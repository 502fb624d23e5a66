//! The allowed dependency directions between workspace crates, checked from
//! `cargo metadata`: low crates never reach up or sideways, so each can be
//! understood, tested and replaced on its own.

use std::path::Path;

use anyhow::Context as _;
use cargo_metadata::{DependencyKind, MetadataCommand};

use super::Violation;

/// Where a crate sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layer {
    /// The audit domain with no I/O: events, policies, the storage interface
    /// and query model, the log generator.
    Domain,
    /// The plumbing every service shares: the gRPC contract, configuration,
    /// telemetry, the server shell. Knows nothing of the domain.
    Infrastructure,
    /// One outside system behind a domain interface (files, tantivy,
    /// Elasticsearch, the Kubernetes API, the store conformance suite).
    Adapter,
    /// One gRPC service; services never depend on each other.
    Service,
    /// What composes everything: the composition crate, the CLI, the
    /// integration tests, xtask, and the server-process harness the last
    /// two share.
    Top,
}

use Layer::{Adapter, Domain, Infrastructure, Service, Top};

/// The dependency rule: a crate of the first layer may depend (normal and
/// build dependencies) only on crates of the listed layers. Dev-dependencies
/// may in addition use the [`TEST_KITS`].
const MAY_DEPEND_ON: [(Layer, &[Layer]); 5] = [
    (Domain, &[Domain]),
    (Infrastructure, &[Infrastructure]),
    (Adapter, &[Domain]),
    (Service, &[Domain, Infrastructure, Adapter]),
    (Top, &[Domain, Infrastructure, Adapter, Service, Top]),
];

/// Crates any crate's tests may use, whatever their layer.
const TEST_KITS: [&str; 2] = ["auditrail-loggen", "auditrail-store-conformance"];

/// Every workspace crate and its layer; a new crate must be added here.
const CRATES: [(&str, Layer); 33] = [
    ("auditrail-event", Domain),
    ("auditrail-policy", Domain),
    ("auditrail-policy-gen", Domain),
    ("auditrail-setup", Domain),
    ("auditrail-selector", Domain),
    ("auditrail-versions", Domain),
    ("auditrail-store", Domain),
    ("auditrail-loggen", Domain),
    ("auditrail-document", Domain),
    ("auditrail-calico-selector", Domain),
    ("auditrail-replay", Domain),
    ("auditrail-protection", Domain),
    ("auditrail-proto", Infrastructure),
    ("auditrail-config", Infrastructure),
    ("auditrail-telemetry", Infrastructure),
    ("auditrail-server", Infrastructure),
    ("auditrail-access", Infrastructure),
    ("auditrail-filetail", Adapter),
    ("auditrail-store-tantivy", Adapter),
    ("auditrail-store-elasticsearch", Adapter),
    ("auditrail-kube-apply", Adapter),
    ("auditrail-store-conformance", Adapter),
    ("auditrail-provisioner", Service),
    ("auditrail-ingestor", Service),
    ("auditrail-indexer", Service),
    ("auditrail-query", Service),
    ("auditrail-reporter", Service),
    ("auditrail-console", Service),
    ("auditrail-compose", Top),
    ("auditrail-cli", Top),
    ("auditrail-integration-tests", Top),
    ("auditrail-harness", Top),
    ("xtask", Top),
];

/// Edges that break the rule and are tolerated until a known change lands:
/// (from, to). None now: keep it so.
const TEMPORARY_EXCEPTIONS: [(&str, &str); 0] = [];

/// One dependency between workspace crates.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Edge {
    from: String,
    to: String,
    /// A dev-dependency (tests, benches, examples only).
    dev: bool,
}

pub(super) fn check(root: &Path) -> anyhow::Result<Vec<Violation>> {
    let metadata = MetadataCommand::new()
        .manifest_path(root.join("Cargo.toml"))
        .no_deps()
        .exec()
        .context("cannot run cargo metadata")?;
    let members: Vec<String> = metadata
        .workspace_packages()
        .iter()
        .map(|p| p.name.to_string())
        .collect();
    let mut edges = Vec::new();
    for package in metadata.workspace_packages() {
        for dep in &package.dependencies {
            if members.contains(&dep.name) {
                edges.push(Edge {
                    from: package.name.to_string(),
                    to: dep.name.clone(),
                    dev: dep.kind == DependencyKind::Development,
                });
            }
        }
    }
    let mut found = violations(&members, &edges);
    found.extend(stale_exceptions(&edges));
    Ok(found)
}

/// Exceptions whose edge is gone: delete them, so the table stays true.
fn stale_exceptions(edges: &[Edge]) -> Vec<Violation> {
    TEMPORARY_EXCEPTIONS
        .iter()
        .filter(|(from, to)| !edges.iter().any(|e| e.from == *from && e.to == *to))
        .map(|(from, to)| {
            Violation::new(
                *from,
                format!(
                    "no longer depends on {to}: remove the exception from \
                     TEMPORARY_EXCEPTIONS in xtask/src/tidy/deps.rs"
                ),
            )
        })
        .collect()
}

fn layer_of(name: &str) -> Option<Layer> {
    CRATES
        .iter()
        .find(|(crate_name, _)| *crate_name == name)
        .map(|&(_, layer)| layer)
}

fn allowed(from: Layer, to: Layer) -> bool {
    MAY_DEPEND_ON
        .iter()
        .any(|&(layer, targets)| layer == from && targets.contains(&to))
}

/// The broken rules among `members` (every workspace crate) and `edges`.
fn violations(members: &[String], edges: &[Edge]) -> Vec<Violation> {
    let mut found: Vec<Violation> = members
        .iter()
        .filter(|name| layer_of(name).is_none())
        .map(|name| {
            Violation::new(
                name.as_str(),
                "a workspace crate with no layer: add it to CRATES in xtask/src/tidy/deps.rs",
            )
        })
        .collect();
    for edge in edges {
        let (Some(from), Some(to)) = (layer_of(&edge.from), layer_of(&edge.to)) else {
            continue; // reported above
        };
        let test_kit = edge.dev && TEST_KITS.contains(&edge.to.as_str());
        let excepted = TEMPORARY_EXCEPTIONS.contains(&(edge.from.as_str(), edge.to.as_str()));
        if !allowed(from, to) && !test_kit && !excepted {
            let kind = if edge.dev {
                "dev-dependency"
            } else {
                "dependency"
            };
            found.push(Violation::new(
                edge.from.as_str(),
                format!(
                    "{kind} on {} breaks the layering: a {from:?} crate may depend only on \
                     {:?} crates, and {} is {to:?} (see MAY_DEPEND_ON in xtask/src/tidy/deps.rs)",
                    edge.to,
                    MAY_DEPEND_ON
                        .iter()
                        .find(|(layer, _)| *layer == from)
                        .map_or(&[][..], |(_, targets)| *targets),
                    edge.to,
                ),
            ));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(from: &str, to: &str, dev: bool) -> Edge {
        Edge {
            from: from.to_owned(),
            to: to.to_owned(),
            dev,
        }
    }

    fn members() -> Vec<String> {
        CRATES.iter().map(|(name, _)| (*name).to_owned()).collect()
    }

    #[test]
    fn downward_edges_pass() {
        let edges = [
            edge("auditrail-store", "auditrail-event", false),
            edge("auditrail-query", "auditrail-store-tantivy", false),
            edge("auditrail-query", "auditrail-server", false),
            edge("auditrail-server", "auditrail-telemetry", false),
            edge("auditrail-cli", "auditrail-query", false),
        ];
        assert_eq!(violations(&members(), &edges), []);
    }

    #[test]
    fn infrastructure_on_domain_is_refused() {
        let found = violations(
            &members(),
            &[edge("auditrail-proto", "auditrail-event", false)],
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].at, "auditrail-proto");
        assert!(found[0].rule.contains("auditrail-event"), "{found:?}");
    }

    #[test]
    fn service_on_service_is_refused() {
        let found = violations(
            &members(),
            &[edge("auditrail-query", "auditrail-indexer", false)],
        );
        assert_eq!(found.len(), 1, "{found:?}");
    }

    #[test]
    fn domain_on_adapter_is_refused_even_for_tests_unless_a_test_kit() {
        let found = violations(
            &members(),
            &[
                edge("auditrail-store", "auditrail-store-tantivy", true),
                edge("auditrail-store", "auditrail-store-conformance", true),
                edge("auditrail-store", "auditrail-store-conformance", false),
            ],
        );
        let refused: Vec<_> = found.iter().map(|v| v.rule.as_str()).collect();
        assert_eq!(found.len(), 2, "{refused:?}");
        assert!(refused[0].starts_with("dev-dependency on auditrail-store-tantivy"));
        assert!(refused[1].starts_with("dependency on auditrail-store-conformance"));
    }

    #[test]
    fn infrastructure_never_reaches_the_store() {
        for from in ["auditrail-server", "auditrail-config"] {
            assert_eq!(
                violations(&members(), &[edge(from, "auditrail-store", false)]).len(),
                1,
                "{from}"
            );
        }
    }

    #[test]
    fn with_no_exception_nothing_is_stale() {
        let edges = [edge("auditrail-server", "auditrail-proto", false)];
        assert_eq!(stale_exceptions(&edges), []);
    }

    #[test]
    fn a_crate_without_a_layer_is_reported() {
        let mut members = members();
        members.push("auditrail-new".to_owned());
        let found = violations(&members, &[edge("auditrail-new", "auditrail-event", false)]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].at, "auditrail-new");
    }
}
