//! The one mapping between Kubernetes resources and kinds.
//!
//! An audit event names its object by resource (`objectRef.resource`, the
//! plural `networkpolicies`) and group; people name it by kind
//! (`NetworkPolicy`), and kubectl users also by singular or short name
//! (`netpol`). The trail must show and filter kinds the same way everywhere,
//! and must decide an object's scope from its resource, not from
//! `objectRef.namespace` (the API server writes `namespace = foo` on events
//! about namespace `foo` itself). This table is that one mapping: the
//! built-in kinds of Kubernetes (1.33) and Calico's, each with its groups,
//! plural, singular, short names and scope. A resource that is not in the
//! table is shown under its resource name and keeps the namespace its events
//! carry.

use std::borrow::Cow;

/// A resource type the table knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceType {
    /// The kind, e.g. `NetworkPolicy`.
    pub kind: &'static str,
    /// The resource as audit events name it (plural, lower case).
    pub plural: &'static str,
    /// The singular, lower case.
    pub singular: &'static str,
    /// kubectl's short names.
    pub short_names: &'static [&'static str],
    /// The API groups serving it (`""`: the core group).
    pub groups: &'static [&'static str],
    /// Whether objects of this type live in a namespace.
    pub namespaced: bool,
}

impl ResourceType {
    /// Whether `name` (any case) is this type's kind, plural, singular or
    /// one of its short names.
    pub fn is_called(&self, name: &str) -> bool {
        [self.kind, self.plural, self.singular]
            .iter()
            .chain(self.short_names)
            .any(|n| n.eq_ignore_ascii_case(name))
    }
}

const CORE: &[&str] = &[""];
const APPS: &[&str] = &["apps", "extensions"];
const CALICO: &[&str] = &["projectcalico.org", "crd.projectcalico.org"];

const fn t(
    kind: &'static str,
    plural: &'static str,
    short_names: &'static [&'static str],
    groups: &'static [&'static str],
    namespaced: bool,
    singular: &'static str,
) -> ResourceType {
    ResourceType {
        kind,
        plural,
        singular,
        short_names,
        groups,
        namespaced,
    }
}

/// Every resource type the table knows, Calico's last. Where two types
/// share a plural (Kubernetes' and Calico's `networkpolicies`) their groups
/// tell them apart.
pub const RESOURCE_TYPES: &[ResourceType] = &[
    // Core group.
    t("Binding", "bindings", &[], CORE, true, "binding"),
    t(
        "ComponentStatus",
        "componentstatuses",
        &["cs"],
        CORE,
        false,
        "componentstatus",
    ),
    t("ConfigMap", "configmaps", &["cm"], CORE, true, "configmap"),
    t("Endpoints", "endpoints", &["ep"], CORE, true, "endpoints"),
    t(
        "Event",
        "events",
        &["ev"],
        &["", "events.k8s.io"],
        true,
        "event",
    ),
    t(
        "LimitRange",
        "limitranges",
        &["limits"],
        CORE,
        true,
        "limitrange",
    ),
    t("Namespace", "namespaces", &["ns"], CORE, false, "namespace"),
    t("Node", "nodes", &["no"], CORE, false, "node"),
    t(
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        &["pvc"],
        CORE,
        true,
        "persistentvolumeclaim",
    ),
    t(
        "PersistentVolume",
        "persistentvolumes",
        &["pv"],
        CORE,
        false,
        "persistentvolume",
    ),
    t("Pod", "pods", &["po"], CORE, true, "pod"),
    t(
        "PodTemplate",
        "podtemplates",
        &[],
        CORE,
        true,
        "podtemplate",
    ),
    t(
        "ReplicationController",
        "replicationcontrollers",
        &["rc"],
        CORE,
        true,
        "replicationcontroller",
    ),
    t(
        "ResourceQuota",
        "resourcequotas",
        &["quota"],
        CORE,
        true,
        "resourcequota",
    ),
    t("Secret", "secrets", &[], CORE, true, "secret"),
    t(
        "ServiceAccount",
        "serviceaccounts",
        &["sa"],
        CORE,
        true,
        "serviceaccount",
    ),
    t("Service", "services", &["svc"], CORE, true, "service"),
    // Admission, extensions, registration.
    t(
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        &[],
        &["admissionregistration.k8s.io"],
        false,
        "mutatingwebhookconfiguration",
    ),
    t(
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        &[],
        &["admissionregistration.k8s.io"],
        false,
        "validatingwebhookconfiguration",
    ),
    t(
        "ValidatingAdmissionPolicy",
        "validatingadmissionpolicies",
        &[],
        &["admissionregistration.k8s.io"],
        false,
        "validatingadmissionpolicy",
    ),
    t(
        "ValidatingAdmissionPolicyBinding",
        "validatingadmissionpolicybindings",
        &[],
        &["admissionregistration.k8s.io"],
        false,
        "validatingadmissionpolicybinding",
    ),
    t(
        "CustomResourceDefinition",
        "customresourcedefinitions",
        &["crd", "crds"],
        &["apiextensions.k8s.io"],
        false,
        "customresourcedefinition",
    ),
    t(
        "APIService",
        "apiservices",
        &[],
        &["apiregistration.k8s.io"],
        false,
        "apiservice",
    ),
    // Workloads.
    t(
        "ControllerRevision",
        "controllerrevisions",
        &[],
        &["apps"],
        true,
        "controllerrevision",
    ),
    t("DaemonSet", "daemonsets", &["ds"], APPS, true, "daemonset"),
    t(
        "Deployment",
        "deployments",
        &["deploy"],
        APPS,
        true,
        "deployment",
    ),
    t(
        "ReplicaSet",
        "replicasets",
        &["rs"],
        APPS,
        true,
        "replicaset",
    ),
    t(
        "StatefulSet",
        "statefulsets",
        &["sts"],
        &["apps"],
        true,
        "statefulset",
    ),
    t(
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        &["hpa"],
        &["autoscaling"],
        true,
        "horizontalpodautoscaler",
    ),
    t("CronJob", "cronjobs", &["cj"], &["batch"], true, "cronjob"),
    t("Job", "jobs", &[], &["batch"], true, "job"),
    // Authentication and authorization reviews.
    t(
        "TokenReview",
        "tokenreviews",
        &[],
        &["authentication.k8s.io"],
        false,
        "tokenreview",
    ),
    t(
        "SelfSubjectReview",
        "selfsubjectreviews",
        &[],
        &["authentication.k8s.io"],
        false,
        "selfsubjectreview",
    ),
    t(
        "LocalSubjectAccessReview",
        "localsubjectaccessreviews",
        &[],
        &["authorization.k8s.io"],
        true,
        "localsubjectaccessreview",
    ),
    t(
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        &[],
        &["authorization.k8s.io"],
        false,
        "selfsubjectaccessreview",
    ),
    t(
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        &[],
        &["authorization.k8s.io"],
        false,
        "selfsubjectrulesreview",
    ),
    t(
        "SubjectAccessReview",
        "subjectaccessreviews",
        &[],
        &["authorization.k8s.io"],
        false,
        "subjectaccessreview",
    ),
    t(
        "CertificateSigningRequest",
        "certificatesigningrequests",
        &["csr"],
        &["certificates.k8s.io"],
        false,
        "certificatesigningrequest",
    ),
    t(
        "Lease",
        "leases",
        &[],
        &["coordination.k8s.io"],
        true,
        "lease",
    ),
    t(
        "EndpointSlice",
        "endpointslices",
        &[],
        &["discovery.k8s.io"],
        true,
        "endpointslice",
    ),
    t(
        "FlowSchema",
        "flowschemas",
        &[],
        &["flowcontrol.apiserver.k8s.io"],
        false,
        "flowschema",
    ),
    t(
        "PriorityLevelConfiguration",
        "prioritylevelconfigurations",
        &[],
        &["flowcontrol.apiserver.k8s.io"],
        false,
        "prioritylevelconfiguration",
    ),
    // Networking.
    t(
        "IngressClass",
        "ingressclasses",
        &[],
        &["networking.k8s.io"],
        false,
        "ingressclass",
    ),
    t(
        "Ingress",
        "ingresses",
        &["ing"],
        &["networking.k8s.io", "extensions"],
        true,
        "ingress",
    ),
    t(
        "NetworkPolicy",
        "networkpolicies",
        &["netpol"],
        &["networking.k8s.io", "extensions"],
        true,
        "networkpolicy",
    ),
    t(
        "IPAddress",
        "ipaddresses",
        &[],
        &["networking.k8s.io"],
        false,
        "ipaddress",
    ),
    t(
        "ServiceCIDR",
        "servicecidrs",
        &[],
        &["networking.k8s.io"],
        false,
        "servicecidr",
    ),
    t(
        "RuntimeClass",
        "runtimeclasses",
        &[],
        &["node.k8s.io"],
        false,
        "runtimeclass",
    ),
    // Policy and RBAC.
    t(
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        &["pdb"],
        &["policy"],
        true,
        "poddisruptionbudget",
    ),
    t(
        "PodSecurityPolicy",
        "podsecuritypolicies",
        &["psp"],
        &["policy", "extensions"],
        false,
        "podsecuritypolicy",
    ),
    t(
        "ClusterRoleBinding",
        "clusterrolebindings",
        &[],
        &["rbac.authorization.k8s.io"],
        false,
        "clusterrolebinding",
    ),
    t(
        "ClusterRole",
        "clusterroles",
        &[],
        &["rbac.authorization.k8s.io"],
        false,
        "clusterrole",
    ),
    t(
        "RoleBinding",
        "rolebindings",
        &[],
        &["rbac.authorization.k8s.io"],
        true,
        "rolebinding",
    ),
    t(
        "Role",
        "roles",
        &[],
        &["rbac.authorization.k8s.io"],
        true,
        "role",
    ),
    t(
        "PriorityClass",
        "priorityclasses",
        &["pc"],
        &["scheduling.k8s.io"],
        false,
        "priorityclass",
    ),
    // Storage.
    t(
        "CSIDriver",
        "csidrivers",
        &[],
        &["storage.k8s.io"],
        false,
        "csidriver",
    ),
    t(
        "CSINode",
        "csinodes",
        &[],
        &["storage.k8s.io"],
        false,
        "csinode",
    ),
    t(
        "CSIStorageCapacity",
        "csistoragecapacities",
        &[],
        &["storage.k8s.io"],
        true,
        "csistoragecapacity",
    ),
    t(
        "StorageClass",
        "storageclasses",
        &["sc"],
        &["storage.k8s.io"],
        false,
        "storageclass",
    ),
    t(
        "VolumeAttachment",
        "volumeattachments",
        &[],
        &["storage.k8s.io"],
        false,
        "volumeattachment",
    ),
    // Calico (projectcalico.org through its API server, crd.projectcalico.org
    // for the CRDs behind it).
    t(
        "GlobalNetworkPolicy",
        "globalnetworkpolicies",
        &["gnp"],
        CALICO,
        false,
        "globalnetworkpolicy",
    ),
    t(
        "NetworkPolicy",
        "networkpolicies",
        &["cnp"],
        CALICO,
        true,
        "networkpolicy",
    ),
    t(
        "StagedGlobalNetworkPolicy",
        "stagedglobalnetworkpolicies",
        &[],
        CALICO,
        false,
        "stagedglobalnetworkpolicy",
    ),
    t(
        "StagedNetworkPolicy",
        "stagednetworkpolicies",
        &[],
        CALICO,
        true,
        "stagednetworkpolicy",
    ),
    t(
        "StagedKubernetesNetworkPolicy",
        "stagedkubernetesnetworkpolicies",
        &[],
        CALICO,
        true,
        "stagedkubernetesnetworkpolicy",
    ),
    t(
        "GlobalNetworkSet",
        "globalnetworksets",
        &[],
        CALICO,
        false,
        "globalnetworkset",
    ),
    t("NetworkSet", "networksets", &[], CALICO, true, "networkset"),
    t("Tier", "tiers", &[], CALICO, false, "tier"),
    t(
        "HostEndpoint",
        "hostendpoints",
        &[],
        CALICO,
        false,
        "hostendpoint",
    ),
    t("IPPool", "ippools", &[], CALICO, false, "ippool"),
    t(
        "IPReservation",
        "ipreservations",
        &[],
        CALICO,
        false,
        "ipreservation",
    ),
    t(
        "BGPConfiguration",
        "bgpconfigurations",
        &[],
        CALICO,
        false,
        "bgpconfiguration",
    ),
    t("BGPPeer", "bgppeers", &[], CALICO, false, "bgppeer"),
    t(
        "FelixConfiguration",
        "felixconfigurations",
        &[],
        CALICO,
        false,
        "felixconfiguration",
    ),
    t(
        "KubeControllersConfiguration",
        "kubecontrollersconfigurations",
        &[],
        CALICO,
        false,
        "kubecontrollersconfiguration",
    ),
    t(
        "ClusterInformation",
        "clusterinformations",
        &[],
        CALICO,
        false,
        "clusterinformation",
    ),
    t("Profile", "profiles", &[], CALICO, false, "profile"),
];

/// The type served under `resource` (plural) in `group` (`""`: core), when
/// the table knows it.
pub fn resource_type(resource: &str, group: &str) -> Option<&'static ResourceType> {
    RESOURCE_TYPES
        .iter()
        .find(|rt| rt.plural == resource && rt.groups.contains(&group))
}

/// The kind shown for objects of `resource` in `group`: the table's kind,
/// else the resource name itself; empty when there is no resource.
pub fn kind_of(resource: &str, group: &str) -> Cow<'static, str> {
    match resource_type(resource, group) {
        Some(rt) => Cow::Borrowed(rt.kind),
        None => Cow::Owned(resource.to_owned()),
    }
}

/// Whether objects of `resource` in `group` are cluster-scoped, so that a
/// namespace their events carry is not theirs. `false` for types the table
/// does not know (their events' namespace is taken as it is).
pub fn is_cluster_scoped(resource: &str, group: &str) -> bool {
    resource_type(resource, group).is_some_and(|rt| !rt.namespaced)
}

/// Whether objects of `resource` (a plural) are namespaced, in `group`
/// when given, else in every group the table serves it from; `None` when
/// the table does not know the resource or the groups disagree.
pub fn namespaced(resource: &str, group: Option<&str>) -> Option<bool> {
    let mut scopes = RESOURCE_TYPES
        .iter()
        .filter(|rt| rt.plural == resource && group.is_none_or(|g| rt.groups.contains(&g)))
        .map(|rt| rt.namespaced);
    let first = scopes.next()?;
    scopes.all(|s| s == first).then_some(first)
}

/// What a name that a person typed for a kind stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindName {
    /// The resources (plurals) it names; one unless two groups serve one
    /// kind under different plurals.
    pub resources: Vec<&'static str>,
    /// The group, when the name carried one (`networkpolicies.projectcalico.org`).
    pub group: Option<String>,
    /// The kind it resolved to, for messages.
    pub kind: &'static str,
}

/// Resolves a kind as a person writes it: the kind, plural, singular or a
/// short name, in any case, optionally followed by `.group` as kubectl
/// accepts (`netpol`, `NetworkPolicy`, `networkpolicies.networking.k8s.io`).
/// `None` when the table knows no such name: callers then take the name as
/// a resource name (the kind shown for unknown resources).
pub fn resolve_kind(name: &str) -> Option<KindName> {
    let name = name.trim();
    let matches = |n: &str, group: Option<&str>| -> Option<KindName> {
        let found: Vec<&ResourceType> = RESOURCE_TYPES
            .iter()
            .filter(|rt| rt.is_called(n) && group.is_none_or(|g| rt.groups.contains(&g)))
            .collect();
        let first = found.first()?;
        let mut resources: Vec<&'static str> = found.iter().map(|rt| rt.plural).collect();
        resources.dedup();
        Some(KindName {
            resources,
            group: group.map(str::to_owned),
            kind: first.kind,
        })
    };
    matches(name, None).or_else(|| {
        let (n, group) = name.split_once('.')?;
        matches(n, Some(&group.to_ascii_lowercase()))
    })
}

/// Known kind names close to `name` (for "did you mean" hints): the kinds
/// whose names start with it or are within two edits of it, case-insensitive.
pub fn similar_kinds(name: &str) -> Vec<&'static str> {
    // No kind is longer than this: a longer name is near none of them, and
    // comparing it would cost time that grows with its length.
    if name.len() > 64 {
        return Vec::new();
    }
    let lower = name.to_ascii_lowercase();
    let mut out: Vec<&'static str> = Vec::new();
    for rt in RESOURCE_TYPES {
        let close = [rt.kind, rt.plural, rt.singular].iter().any(|n| {
            let n = n.to_ascii_lowercase();
            (lower.len() >= 3 && n.starts_with(&lower)) || strsim::levenshtein(&n, &lower) <= 2
        });
        if close && !out.contains(&rt.kind) {
            out.push(rt.kind);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_is_well_formed_and_names_are_unambiguous_per_group() {
        for rt in RESOURCE_TYPES {
            assert!(!rt.singular.is_empty(), "{} has no singular", rt.kind);
            assert_eq!(rt.plural, rt.plural.to_ascii_lowercase(), "{}", rt.kind);
            assert!(!rt.groups.is_empty(), "{}", rt.kind);
            for group in rt.groups {
                let same: Vec<_> = RESOURCE_TYPES
                    .iter()
                    .filter(|o| o.plural == rt.plural && o.groups.contains(group))
                    .collect();
                assert_eq!(same.len(), 1, "{}/{} twice", group, rt.plural);
            }
        }
    }

    #[test]
    fn kinds_come_from_resource_and_group() {
        assert_eq!(kind_of("pods", ""), "Pod");
        assert_eq!(kind_of("leases", "coordination.k8s.io"), "Lease");
        assert_eq!(
            kind_of("networkpolicies", "projectcalico.org"),
            "NetworkPolicy"
        );
        assert_eq!(kind_of("deployments", "extensions"), "Deployment");
        // Unknown resources (and known plurals in other groups) keep their name.
        assert_eq!(kind_of("routes", "route.openshift.io"), "routes");
        assert_eq!(kind_of("pods", "metrics.k8s.io"), "pods");
        assert_eq!(kind_of("", ""), "");
    }

    #[test]
    fn scope_comes_from_the_resource() {
        assert!(is_cluster_scoped("namespaces", ""));
        assert!(is_cluster_scoped(
            "clusterroles",
            "rbac.authorization.k8s.io"
        ));
        assert!(is_cluster_scoped(
            "globalnetworkpolicies",
            "projectcalico.org"
        ));
        assert!(!is_cluster_scoped("networkpolicies", "projectcalico.org"));
        assert!(!is_cluster_scoped("pods", ""));
        assert!(!is_cluster_scoped("widgets", "example.com"));
        assert_eq!(namespaced("namespaces", None), Some(false));
        assert_eq!(namespaced("networkpolicies", None), Some(true));
        assert_eq!(
            namespaced("globalnetworkpolicies", Some("projectcalico.org")),
            Some(false)
        );
        assert_eq!(namespaced("pods", Some("metrics.k8s.io")), None);
        assert_eq!(namespaced("widgets", None), None);
    }

    #[test]
    fn kinds_resolve_as_kubectl_users_write_them() {
        for name in [
            "NetworkPolicy",
            "networkpolicy",
            "networkpolicies",
            "NETPOL",
            "netpol",
            "cnp",
        ] {
            let k = resolve_kind(name).expect(name);
            assert_eq!(k.resources, ["networkpolicies"], "{name}");
            assert_eq!(k.kind, "NetworkPolicy");
            assert_eq!(k.group, None);
        }
        let k = resolve_kind("networkpolicies.projectcalico.org").expect("with group");
        assert_eq!(k.resources, ["networkpolicies"]);
        assert_eq!(k.group.as_deref(), Some("projectcalico.org"));
        assert_eq!(resolve_kind("cm").expect("cm").resources, ["configmaps"]);
        assert_eq!(resolve_kind("Lease").expect("lease").resources, ["leases"]);
        assert_eq!(
            resolve_kind("gnp").expect("gnp").kind,
            "GlobalNetworkPolicy"
        );
        assert_eq!(resolve_kind("widgets"), None);
        assert_eq!(resolve_kind("netpol.example.com"), None);
    }

    #[test]
    fn similar_kinds_suggest_near_names() {
        assert!(similar_kinds("NetworkPolicys").contains(&"NetworkPolicy"));
        assert!(similar_kinds("configmap").contains(&"ConfigMap"));
        assert!(similar_kinds("Deploy").contains(&"Deployment"));
        assert!(similar_kinds("zzzzzzzz").is_empty());
    }
}
