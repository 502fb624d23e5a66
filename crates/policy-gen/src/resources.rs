//! The resources compliance depends on, and the `GROUP/RESOURCE` form in
//! which people name more.

use std::fmt;
use std::str::FromStr;

use crate::error::GenerateError;

/// The verbs that change an object; a compliance trail records each of them
/// with the request and the response.
pub const WRITE_VERBS: [&str; 4] = ["create", "patch", "update", "delete"];

/// The API group of the Calico resources.
pub const CALICO_GROUP: &str = "projectcalico.org";

/// The Calico resources the Calico API server audits by default (see
/// DESIGN.md): every kind a network-policy audit trail has to show.
pub const CALICO_RESOURCES: [&str; 9] = [
    "globalnetworkpolicies",
    "networkpolicies",
    "stagedglobalnetworkpolicies",
    "stagednetworkpolicies",
    "stagedkubernetesnetworkpolicies",
    "globalnetworksets",
    "networksets",
    "tiers",
    "hostendpoints",
];

/// The Kubernetes resources whose writes the timeline and the compliance
/// reports need, as (group, resource): network policies (`extensions` on old
/// clusters) and what policies select and protect.
pub const KUBERNETES_COMPLIANCE_RESOURCES: [(&str, &str); 6] = [
    ("networking.k8s.io", "networkpolicies"),
    ("extensions", "networkpolicies"),
    ("", "pods"),
    ("", "namespaces"),
    ("", "serviceaccounts"),
    ("", "endpoints"),
];

/// A resource of an API group, written `GROUP/RESOURCE` (`apps/deployments`)
/// or `RESOURCE` alone (or `/RESOURCE`) for the core group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupResource {
    /// API group; empty for the core group.
    pub group: String,
    /// Resource, plural lower case.
    pub resource: String,
}

impl GroupResource {
    /// Checks both parts: the group is empty or a lowercase RFC 1123
    /// subdomain (as the API server's policy validation requires), the
    /// resource a lowercase name of letters, digits and `-`.
    pub fn new(group: &str, resource: &str) -> Result<Self, GenerateError> {
        Self::checked(group, resource, &format!("{group}/{resource}"))
    }

    /// [`GroupResource::new`], naming the input as `value` in errors.
    fn checked(group: &str, resource: &str, value: &str) -> Result<Self, GenerateError> {
        let gr = Self {
            group: group.to_owned(),
            resource: resource.to_owned(),
        };
        let refuse = |reason: &str| GenerateError::InvalidResource {
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        if gr.resource.is_empty() {
            return Err(refuse("the resource name is empty"));
        }
        if !gr
            .resource
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(refuse(
                "a resource is a plural lower-case name of letters, digits and '-' (e.g. deployments)",
            ));
        }
        if !gr.group.is_empty() && !is_dns1123_subdomain(&gr.group) {
            return Err(refuse(
                "the group must be empty (core) or a lowercase RFC 1123 subdomain (e.g. apps, networking.k8s.io)",
            ));
        }
        Ok(gr)
    }
}

impl FromStr for GroupResource {
    type Err = GenerateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (group, resource) = s.split_once('/').unwrap_or(("", s));
        Self::checked(group, resource, s)
    }
}

impl fmt::Display for GroupResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.group, self.resource)
    }
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*`, at most
/// 253 characters.
fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            let bytes = label.as_bytes();
            let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
            match (bytes.first(), bytes.last()) {
                (Some(first), Some(last)) => {
                    alnum(first) && alnum(last) && bytes.iter().all(|b| alnum(b) || *b == b'-')
                }
                _ => false,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_group_slash_resource_and_core_forms() {
        let apps: GroupResource = "apps/deployments".parse().expect("valid");
        assert_eq!(
            (apps.group.as_str(), apps.resource.as_str()),
            ("apps", "deployments")
        );
        for core in ["configmaps", "/configmaps"] {
            let gr: GroupResource = core.parse().expect("valid");
            assert_eq!(
                (gr.group.as_str(), gr.resource.as_str()),
                ("", "configmaps")
            );
        }
    }

    #[test]
    fn refuses_bad_groups_and_resources_naming_the_input() {
        for (input, reason) in [
            ("apps/", "empty"),
            ("", "empty"),
            ("apps/Deployments", "lower-case"),
            ("apps/deployments/scale", "lower-case"),
            ("Apps/deployments", "RFC 1123"),
            ("-apps/deployments", "RFC 1123"),
            ("apps../deployments", "RFC 1123"),
        ] {
            let error = input.parse::<GroupResource>().expect_err(input);
            let GenerateError::InvalidResource { value, reason: why } = &error;
            assert_eq!(value, input);
            assert!(why.contains(reason), "{input}: {error}");
        }
    }
}
