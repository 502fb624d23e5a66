//! The things policies are about, read from a replayed state: endpoints
//! (pods and host endpoints) with the labels Calico evaluates selectors on,
//! namespaces, service accounts, network sets, and the services each pod
//! backs (from Endpoints objects).
//!
//! Calico evaluates a policy's `selector` on an endpoint's labels plus
//! `projectcalico.org/namespace`, `projectcalico.org/orchestrator` and
//! `projectcalico.org/serviceaccount`; namespace selectors on a
//! namespace's labels plus `projectcalico.org/name`; service-account
//! selectors on the account's labels plus `projectcalico.org/name`. The
//! maps built here carry those. Host-networked pods are no endpoints:
//! Calico does not police them. What no policy governs is allowed for a
//! pod and for a host endpoint with profiles, denied for a host endpoint
//! without ([`Endpoint::open_by_default`]).

use std::collections::{BTreeMap, BTreeSet};

use auditrail_calico_selector::NAMESPACE_LABEL;
use auditrail_replay::State;
use serde::Serialize;
use serde_json::Value;

/// The API group of Calico's resources, as the replay tracks them.
pub const CALICO_GROUP: &str = "projectcalico.org";
/// Calico's label for a workload's orchestrator.
pub const ORCHESTRATOR_LABEL: &str = "projectcalico.org/orchestrator";
/// Calico's label for a pod's service account.
pub const SERVICE_ACCOUNT_LABEL: &str = "projectcalico.org/serviceaccount";
/// Calico's label for a namespace's or service account's name.
pub const NAME_LABEL: &str = "projectcalico.org/name";
/// The label the API server gives every namespace: its name.
pub const K8S_NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Labels as selectors read them.
pub type LabelMap = BTreeMap<String, String>;

/// What an endpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum EndpointKind {
    /// A Kubernetes pod (a Calico workload endpoint).
    Pod,
    /// A Calico host endpoint.
    HostEndpoint,
}

impl EndpointKind {
    /// `Pod` or `HostEndpoint`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pod => "Pod",
            Self::HostEndpoint => "HostEndpoint",
        }
    }
}

/// Which endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct EndpointId {
    /// Pod or host endpoint.
    pub kind: EndpointKind,
    /// The namespace; empty for host endpoints.
    pub namespace: String,
    /// The name.
    pub name: String,
}

/// A namespace and a name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct NamespacedName {
    /// The namespace.
    pub namespace: String,
    /// The name.
    pub name: String,
}

/// An endpoint and what selectors see of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Which endpoint.
    pub id: EndpointId,
    /// Its own labels.
    pub labels: LabelMap,
    /// Its labels plus Calico's (namespace, orchestrator, service account).
    pub calico_labels: LabelMap,
    /// The service account a pod runs as; empty for host endpoints.
    pub service_account: String,
    /// Whether traffic no policy governs is allowed: pods (their
    /// namespace's profile allows all), and host endpoints with profiles
    /// (`projectcalico-default-allow` on automatic ones). A host endpoint
    /// without profiles denies what no policy allows.
    pub open_by_default: bool,
}

/// A network set: nets with labels that rule selectors can pick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSet {
    /// Its namespace; `None` for a GlobalNetworkSet.
    pub namespace: Option<String>,
    /// Its labels plus Calico's namespace label when namespaced.
    pub calico_labels: LabelMap,
    /// Its nets as written.
    pub nets: Vec<String>,
}

/// Everything the calculator reads from a state.
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    /// Pods and host endpoints, by id.
    pub endpoints: BTreeMap<EndpointId, Endpoint>,
    /// Namespace name → labels as namespace selectors see them (also for
    /// namespaces that only appear as a pod's namespace).
    pub namespaces: BTreeMap<String, LabelMap>,
    /// (namespace, name) → labels as service-account selectors see them.
    pub service_accounts: BTreeMap<(String, String), LabelMap>,
    /// Network sets and global network sets.
    pub network_sets: Vec<NetworkSet>,
    /// Pod (namespace, name) → the services it backs.
    pub services: BTreeMap<(String, String), BTreeSet<NamespacedName>>,
}

/// `metadata.labels` (string values only).
pub fn labels_of(object: &Value) -> LabelMap {
    object
        .get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn namespace_labels(name: &str, own: LabelMap) -> LabelMap {
    let mut labels = own;
    labels
        .entry(K8S_NAMESPACE_NAME_LABEL.to_owned())
        .or_insert_with(|| name.to_owned());
    labels.insert(NAME_LABEL.to_owned(), name.to_owned());
    labels
}

impl Cluster {
    /// Reads the endpoints and their context from a replayed state.
    pub fn from_state(state: &State) -> Self {
        let mut cluster = Self::default();
        for (key, ns) in state.of("namespaces", "") {
            cluster
                .namespaces
                .insert(key.name.clone(), namespace_labels(&key.name, labels_of(ns)));
        }
        for (key, sa) in state.of("serviceaccounts", "") {
            let mut labels = labels_of(sa);
            labels.insert(NAME_LABEL.to_owned(), key.name.clone());
            cluster
                .service_accounts
                .insert((key.namespace.clone(), key.name.clone()), labels);
        }
        cluster.read_pods(state);
        cluster.read_host_endpoints(state);
        cluster.read_network_sets(state);
        cluster.read_services(state);
        cluster
    }

    fn read_pods(&mut self, state: &State) {
        for (key, pod) in state.of("pods", "") {
            let Some(endpoint) = pod_endpoint(&key.namespace, &key.name, pod) else {
                continue;
            };
            self.namespaces
                .entry(key.namespace.clone())
                .or_insert_with(|| namespace_labels(&key.namespace, LabelMap::new()));
            self.endpoints.insert(endpoint.id.clone(), endpoint);
        }
    }

    fn read_host_endpoints(&mut self, state: &State) {
        for (key, hep) in state.of("hostendpoints", CALICO_GROUP) {
            let endpoint = host_endpoint(&key.name, hep);
            self.endpoints.insert(endpoint.id.clone(), endpoint);
        }
    }

    fn read_network_sets(&mut self, state: &State) {
        self.network_sets = Self::from_state_network_sets(state);
    }

    /// The network sets and global network sets of `state`.
    pub fn from_state_network_sets(state: &State) -> Vec<NetworkSet> {
        let mut sets = Vec::new();
        for resource in ["networksets", "globalnetworksets"] {
            for (key, set) in state.of(resource, CALICO_GROUP) {
                let namespace = (!key.namespace.is_empty()).then(|| key.namespace.clone());
                let mut calico_labels = labels_of(set);
                if let Some(ns) = &namespace {
                    calico_labels.insert(NAMESPACE_LABEL.to_owned(), ns.clone());
                }
                let nets = set
                    .get("spec")
                    .and_then(|s| s.get("nets"))
                    .and_then(Value::as_array)
                    .map(|n| {
                        n.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default();
                sets.push(NetworkSet {
                    namespace,
                    calico_labels,
                    nets,
                });
            }
        }
        sets
    }

    fn read_services(&mut self, state: &State) {
        for (key, endpoints) in state.of("endpoints", "") {
            let service = NamespacedName {
                namespace: key.namespace.clone(),
                name: key.name.clone(),
            };
            for pod in service_targets(&key.namespace, endpoints) {
                self.services
                    .entry(pod)
                    .or_default()
                    .insert(service.clone());
            }
        }
    }
}

/// The endpoint of pod `namespace`/`name`; `None` for a host-networked
/// pod, which Calico does not police.
pub(crate) fn pod_endpoint(namespace: &str, name: &str, pod: &Value) -> Option<Endpoint> {
    let spec = pod.get("spec");
    if spec
        .and_then(|s| s.get("hostNetwork"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        return None;
    }
    let service_account = spec
        .and_then(|s| {
            s.get("serviceAccountName")
                .or_else(|| s.get("serviceAccount"))
        })
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("default")
        .to_owned();
    let labels = labels_of(pod);
    let mut calico_labels = labels.clone();
    calico_labels.insert(NAMESPACE_LABEL.to_owned(), namespace.to_owned());
    calico_labels.insert(ORCHESTRATOR_LABEL.to_owned(), "k8s".to_owned());
    calico_labels.insert(SERVICE_ACCOUNT_LABEL.to_owned(), service_account.clone());
    Some(Endpoint {
        id: EndpointId {
            kind: EndpointKind::Pod,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        },
        labels,
        calico_labels,
        service_account,
        open_by_default: true,
    })
}

/// The endpoint of host endpoint `name`.
pub(crate) fn host_endpoint(name: &str, hep: &Value) -> Endpoint {
    let labels = labels_of(hep);
    Endpoint {
        id: EndpointId {
            kind: EndpointKind::HostEndpoint,
            namespace: String::new(),
            name: name.to_owned(),
        },
        calico_labels: labels.clone(),
        labels,
        service_account: String::new(),
        open_by_default: hep
            .get("spec")
            .and_then(|s| s.get("profiles"))
            .and_then(Value::as_array)
            .is_some_and(|p| !p.is_empty()),
    }
}

/// The pods (namespace, name) an Endpoints object of `namespace` lists,
/// ready or not, in the order it lists them (possibly repeated).
pub(crate) fn service_targets(namespace: &str, endpoints: &Value) -> Vec<(String, String)> {
    let mut pods = Vec::new();
    let subsets = endpoints.get("subsets").and_then(Value::as_array);
    for subset in subsets.into_iter().flatten() {
        for list in ["addresses", "notReadyAddresses"] {
            let addresses = subset.get(list).and_then(Value::as_array);
            for target in addresses
                .into_iter()
                .flatten()
                .filter_map(|a| a.get("targetRef"))
            {
                if target.get("kind").and_then(Value::as_str) != Some("Pod") {
                    continue;
                }
                let Some(name) = target.get("name").and_then(Value::as_str) else {
                    continue;
                };
                let pod_namespace = target
                    .get("namespace")
                    .and_then(Value::as_str)
                    .unwrap_or(namespace);
                pods.push((pod_namespace.to_owned(), name.to_owned()));
            }
        }
    }
    pods
}
