//! The three policy profiles.
//!
//! - `network-policy`: exactly what the product documents for
//!   kube-apiserver: writes to network policies and to the resources they
//!   select, at RequestResponse, nothing else. Small, and enough for the
//!   timeline.
//! - `calico`: the Calico API server's policy for its nine resource kinds.
//! - `extended`: the network-policy rules plus what a security team expects
//!   beyond them, in the spirit of GKE's generated policy: the high-volume
//!   read-only system traffic dropped, secrets and similar recorded without
//!   their bodies, other reads with their request, everything else as
//!   metadata.
//!
//! Every profile omits the `RequestReceived` stage policy-wide: an event at
//! `ResponseComplete` carries everything the earlier one did, so recording
//! both doubles the volume for nothing.

use std::collections::BTreeSet;

use auditrail_policy::{API_VERSION_V1BETA1, GroupResources, Level, Policy, PolicyRule, Stage};

use crate::error::GenerateError;
use crate::resources::{
    CALICO_GROUP, CALICO_RESOURCES, GroupResource, KUBERNETES_COMPLIANCE_RESOURCES, WRITE_VERBS,
};

/// A built-in set of rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Profile {
    /// Writes to Kubernetes network policies, pods, namespaces, service
    /// accounts and endpoints at RequestResponse; nothing else.
    #[default]
    NetworkPolicy,
    /// Writes to the nine Calico resource kinds at RequestResponse (the
    /// Calico API server's policy).
    Calico,
    /// The network-policy rules plus a security team's baseline.
    Extended,
}

impl Profile {
    /// Every profile.
    pub const ALL: [Self; 3] = [Self::NetworkPolicy, Self::Calico, Self::Extended];

    /// The name used on the command line and in file names.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NetworkPolicy => "network-policy",
            Self::Calico => "calico",
            Self::Extended => "extended",
        }
    }
}

/// `apiVersion` of a generated policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AuditApiVersion {
    /// `audit.k8s.io/v1`, the only version since Kubernetes 1.24.
    #[default]
    V1,
    /// `audit.k8s.io/v1beta1`, for clusters older than 1.24.
    V1beta1,
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PolicyRequest {
    /// The base rules.
    pub profile: Profile,
    /// More resources whose writes are recorded like the profile's
    /// compliance resources.
    pub extra_resources: Vec<GroupResource>,
    /// The policy's `apiVersion`.
    pub api_version: AuditApiVersion,
}

impl PolicyRequest {
    /// The profile alone, as `audit.k8s.io/v1`.
    pub fn new(profile: Profile) -> Self {
        Self {
            profile,
            ..Self::default()
        }
    }
}

/// A generated policy and what its user should know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedPolicy {
    /// The policy; it validates.
    pub policy: Policy,
    /// E.g. the removal of `v1beta1`, extra resources already in the profile.
    pub warnings: Vec<String>,
}

/// Generates the policy of `request.profile` with its extra resources.
///
/// Extra resources are re-checked (a [`GroupResource`] built by hand may
/// hold anything); one the profile already records is left out with a
/// warning.
pub fn generate(request: &PolicyRequest) -> Result<GeneratedPolicy, GenerateError> {
    let mut warnings = Vec::new();
    let mut writes = match request.profile {
        Profile::NetworkPolicy | Profile::Extended => KUBERNETES_COMPLIANCE_RESOURCES
            .iter()
            .map(|(group, resource)| ((*group).to_owned(), (*resource).to_owned()))
            .collect::<Vec<_>>(),
        Profile::Calico => CALICO_RESOURCES
            .iter()
            .map(|resource| (CALICO_GROUP.to_owned(), (*resource).to_owned()))
            .collect(),
    };
    for extra in &request.extra_resources {
        let extra = GroupResource::new(&extra.group, &extra.resource)?;
        let pair = (extra.group.clone(), extra.resource.clone());
        if writes.contains(&pair) {
            warnings.push(format!(
                "extra resource {extra} is already audited by the {} profile; ignored",
                request.profile.as_str()
            ));
        } else {
            writes.push(pair);
        }
    }
    let compliance_writes = rule(
        Level::RequestResponse,
        |r| r.verbs = strings(WRITE_VERBS),
        group_resources(&writes),
    );
    let rules = match request.profile {
        Profile::NetworkPolicy | Profile::Calico => vec![compliance_writes],
        Profile::Extended => extended_rules(compliance_writes),
    };
    let mut policy = Policy::new(rules);
    policy.omit_stages = vec![Stage::RequestReceived.as_str().to_owned()];
    if request.api_version == AuditApiVersion::V1beta1 {
        API_VERSION_V1BETA1.clone_into(&mut policy.api_version);
        warnings.extend(policy.deprecation_warning().map(str::to_owned));
    }
    Ok(GeneratedPolicy { policy, warnings })
}

/// The `extended` rules, in order: what to drop, the compliance writes,
/// what to record without bodies, the other reads, and the catch-all.
fn extended_rules(compliance_writes: PolicyRule) -> Vec<PolicyRule> {
    vec![
        // kube-proxy watches services and endpoints on every node, forever.
        rule(
            Level::None,
            |r| {
                r.users = strings(["system:kube-proxy"]);
                r.verbs = strings(["watch"]);
            },
            group_resources(&[
                (String::new(), "endpoints".to_owned()),
                (String::new(), "services".to_owned()),
                (String::new(), "services/status".to_owned()),
                ("discovery.k8s.io".to_owned(), "endpointslices".to_owned()),
            ]),
        ),
        // Kubelets read their node and its status every few seconds.
        rule(
            Level::None,
            |r| {
                r.user_groups = strings(["system:nodes"]);
                r.verbs = strings(["get"]);
            },
            group_resources(&[
                (String::new(), "nodes".to_owned()),
                (String::new(), "nodes/status".to_owned()),
            ]),
        ),
        // Health probes and version checks.
        rule(
            Level::None,
            |r| {
                r.non_resource_urls =
                    strings(["/healthz*", "/livez*", "/readyz*", "/version", "/version/"]);
            },
            Vec::new(),
        ),
        // Events are a log of their own; recording them doubles it.
        rule(
            Level::None,
            |_| {},
            group_resources(&[
                (String::new(), "events".to_owned()),
                ("events.k8s.io".to_owned(), "events".to_owned()),
            ]),
        ),
        compliance_writes,
        // Their bodies are credentials: never in the trail.
        rule(
            Level::Metadata,
            |_| {},
            group_resources(&[
                (String::new(), "secrets".to_owned()),
                (String::new(), "configmaps".to_owned()),
                (
                    "authentication.k8s.io".to_owned(),
                    "tokenreviews".to_owned(),
                ),
            ]),
        ),
        rule(
            Level::Request,
            |r| r.verbs = strings(["get", "list", "watch"]),
            Vec::new(),
        ),
        rule(Level::Metadata, |_| {}, Vec::new()),
    ]
}

/// A rule at `level` for `resources`, with `customise` setting the rest.
fn rule(
    level: Level,
    customise: impl FnOnce(&mut PolicyRule),
    resources: Vec<GroupResources>,
) -> PolicyRule {
    let mut rule = PolicyRule {
        level: level.as_str().to_owned(),
        resources,
        ..PolicyRule::default()
    };
    customise(&mut rule);
    rule
}

/// `(group, resource)` pairs as one `GroupResources` per group, groups in
/// order of first appearance, resources in the given order.
fn group_resources(pairs: &[(String, String)]) -> Vec<GroupResources> {
    let mut seen = BTreeSet::new();
    pairs
        .iter()
        .filter(|(group, _)| seen.insert(group.clone()))
        .map(|(group, _)| GroupResources {
            group: group.clone(),
            resources: pairs
                .iter()
                .filter(|(g, _)| g == group)
                .map(|(_, resource)| resource.clone())
                .collect(),
            resource_names: Vec::new(),
        })
        .collect()
}

fn strings<const N: usize>(items: [&str; N]) -> Vec<String> {
    items.into_iter().map(str::to_owned).collect()
}
