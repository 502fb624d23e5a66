//! The resources a replay tracks: those that decide which endpoints exist
//! and which policies select them. Everything else in the trail is ignored
//! by the replay.
//!
//! Objects are keyed by (resource, API group) as `objectRef` names them,
//! with one normalisation: a Kubernetes NetworkPolicy written through the
//! old `extensions` group is the same stored object as through
//! `networking.k8s.io`, so both are tracked under `networking.k8s.io`.
//! Calico resources are tracked in `projectcalico.org` only: the Calico API
//! server stores them as `crd.projectcalico.org` custom resources, and
//! tracking those writes as well would count every change twice.

use auditrail_event::CALICO_API_GROUP;
use auditrail_event::resource::{RESOURCE_TYPES, resource_type};

/// A tracked resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracked {
    /// The resource as `objectRef.resource` names it (plural).
    pub resource: &'static str,
    /// The group objects are keyed under (`""`: core).
    pub api_group: &'static str,
    /// The kind, from the event crate's resource table.
    pub kind: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
}

/// The Kubernetes NetworkPolicy group; `extensions` is read as this one.
pub const NETWORKING_GROUP: &str = "networking.k8s.io";

/// Every tracked (resource, group), in the groups objects are keyed under.
pub const TRACKED: [(&str, &str); 14] = [
    ("pods", ""),
    ("namespaces", ""),
    ("serviceaccounts", ""),
    ("endpoints", ""),
    ("networkpolicies", NETWORKING_GROUP),
    ("tiers", CALICO_API_GROUP),
    ("networkpolicies", CALICO_API_GROUP),
    ("globalnetworkpolicies", CALICO_API_GROUP),
    ("stagednetworkpolicies", CALICO_API_GROUP),
    ("stagedglobalnetworkpolicies", CALICO_API_GROUP),
    ("stagedkubernetesnetworkpolicies", CALICO_API_GROUP),
    ("networksets", CALICO_API_GROUP),
    ("globalnetworksets", CALICO_API_GROUP),
    ("hostendpoints", CALICO_API_GROUP),
];

/// The tracked type of `resource` in `group` (as an event's `objectRef`
/// names them), `None` when the replay ignores it.
pub fn tracked(resource: &str, group: &str) -> Option<Tracked> {
    let group = if group == "extensions" && resource == "networkpolicies" {
        NETWORKING_GROUP
    } else {
        group
    };
    let &(resource, api_group) = TRACKED
        .iter()
        .find(|(r, g)| *r == resource && *g == group)?;
    let rt = resource_type(resource, api_group)?;
    Some(Tracked {
        resource,
        api_group,
        kind: rt.kind,
        namespaced: rt.namespaced,
    })
}

/// The tracked type of objects of `kind` in `api_version` (`v1`,
/// `networking.k8s.io/v1`, `projectcalico.org/v3`), as a List item names
/// itself; `None` when the replay ignores it.
pub fn tracked_kind(kind: &str, api_version: &str) -> Option<Tracked> {
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let rt = RESOURCE_TYPES
        .iter()
        .find(|rt| rt.kind == kind && rt.groups.contains(&group))?;
    tracked(rt.plural, group)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tracked_resource_is_in_the_event_table() {
        for (resource, group) in TRACKED {
            let t = tracked(resource, group);
            assert!(t.is_some(), "{resource}.{group}");
        }
    }

    #[test]
    fn groups_are_told_apart_and_extensions_is_networking() {
        let k8s = tracked("networkpolicies", "extensions");
        assert_eq!(k8s.map(|t| t.api_group), Some(NETWORKING_GROUP));
        let calico = tracked("networkpolicies", "projectcalico.org");
        assert_eq!(calico.map(|t| t.api_group), Some("projectcalico.org"));
        assert_eq!(tracked("networkpolicies", "crd.projectcalico.org"), None);
        assert_eq!(tracked("configmaps", ""), None);
        assert_eq!(tracked("namespaces", "").map(|t| t.namespaced), Some(false));
        assert_eq!(
            tracked_kind("GlobalNetworkPolicy", "projectcalico.org/v3").map(|t| t.resource),
            Some("globalnetworkpolicies")
        );
        assert_eq!(
            tracked_kind("NetworkPolicy", "extensions/v1beta1").map(|t| t.api_group),
            Some(NETWORKING_GROUP)
        );
        assert_eq!(tracked_kind("Pod", "v1").map(|t| t.resource), Some("pods"));
        assert_eq!(tracked_kind("Service", "v1"), None);
    }
}
