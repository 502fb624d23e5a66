//! Kubernetes NetworkPolicies and Calico policies read into one form: who
//! a policy selects, in which directions it applies (Kubernetes'
//! `policyTypes` and Calico's `types`, with their defaulting), and what
//! its allow rules admit in each direction (public addresses, namespaces).
//!
//! What a rule admits does not depend on the endpoint it protects, so it is
//! worked out once per policy; the calculator then only asks which
//! policies select each endpoint. A policy that cannot be read (a selector
//! that does not parse, a bad CIDR) is left out and reported as a
//! [`PolicyError`] naming the policy and the field.

use std::cell::Cell;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use auditrail_calico_selector::{Selector, SelectorError};
use auditrail_replay::State;
use ipnet::IpNet;
use serde::Serialize;
use serde_json::Value;

use crate::k8s::LabelSelector;
use crate::model::{CALICO_GROUP, Cluster, Endpoint, EndpointKind, LabelMap, NAME_LABEL};
use crate::nets::{admits_public, parse_net};

/// The Kubernetes NetworkPolicy group.
const NETWORKING_GROUP: &str = "networking.k8s.io";

/// The order of Calico's default tier when no Tier object says otherwise
/// (what Calico gives it since v3.26; tiers without an order come last).
pub const DEFAULT_TIER_ORDER: f64 = 1_000_000.0;

/// The order Calico gives Kubernetes NetworkPolicies in the default tier.
pub const KUBERNETES_POLICY_ORDER: f64 = 1000.0;

/// A policy, as reports name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRef {
    /// `NetworkPolicy`, `GlobalNetworkPolicy`, `StagedNetworkPolicy`, …
    pub kind: String,
    /// `networking.k8s.io` or `projectcalico.org`.
    pub api_group: String,
    /// The namespace; empty for global policies.
    pub namespace: String,
    /// The name.
    pub name: String,
    /// The Calico tier; empty for Kubernetes policies.
    pub tier: String,
}

impl fmt::Display for PolicyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{} ", self.kind, self.api_group)?;
        if !self.namespace.is_empty() {
            write!(f, "{}/", self.namespace)?;
        }
        f.write_str(&self.name)?;
        if !self.tier.is_empty() {
            write!(f, " (tier {})", self.tier)?;
        }
        Ok(())
    }
}

/// A policy that could not be read, and was left out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A Calico selector that does not parse.
    #[error("{policy}: {field}: {source}")]
    Selector {
        /// The policy.
        policy: PolicyRef,
        /// The field, e.g. `spec.ingress[0].source.selector`.
        field: String,
        /// The parse error.
        source: SelectorError,
    },
    /// Any other field that cannot be read.
    #[error("{policy}: {field}: {message}")]
    Invalid {
        /// The policy.
        policy: PolicyRef,
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// What the allow rules of one direction admit, over all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admits {
    /// Some public address.
    pub internet: bool,
    /// Endpoints of every namespace (present and future).
    pub any_namespace: bool,
    /// Endpoints of these namespaces.
    pub namespaces: BTreeSet<String>,
}

impl Admits {
    fn everything() -> Self {
        Self {
            internet: true,
            any_namespace: true,
            namespaces: BTreeSet::new(),
        }
    }

    fn merge(&mut self, other: Self) {
        self.internet |= other.internet;
        self.any_namespace |= other.any_namespace;
        self.namespaces.extend(other.namespaces);
    }

    /// Whether endpoints of a namespace other than `own` are admitted
    /// (`own` empty: any namespace counts).
    pub fn other_than(&self, own: &str) -> bool {
        self.any_namespace || self.namespaces.iter().any(|n| n != own)
    }
}

/// Whom a policy selects.
#[derive(Debug, Clone, PartialEq)]
enum Scope {
    /// A Kubernetes policy: pods of its namespace matching `pods`.
    Kubernetes {
        namespace: String,
        pods: LabelSelector,
    },
    /// A Calico policy; `namespace` is `None` for global ones.
    Calico {
        namespace: Option<String>,
        selector: Selector,
        namespace_selector: Option<Selector>,
        service_account_selector: Option<Selector>,
    },
}

/// A policy read for the calculator.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Which policy.
    pub reference: PolicyRef,
    /// Whether it enforces (staged policies never do).
    pub enforced: bool,
    tier_order: f64,
    /// The tier it is evaluated in: Kubernetes policies are in `default`.
    evaluated_in: String,
    order: f64,
    scope: Scope,
    /// What its ingress allow rules admit; `None` when it does not apply
    /// to ingress.
    pub ingress: Option<Admits>,
    /// What its egress allow rules admit; `None` when it does not apply to
    /// egress.
    pub egress: Option<Admits>,
    /// Whether reading it looked at the endpoints (a rule peer that picks
    /// pods by selector or service account admits their namespaces), so
    /// that a pod's change may change what it admits.
    pub reads_endpoints: bool,
}

/// Which endpoints a policy can select at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Only pods of this namespace.
    Namespace(String),
    /// Any endpoint (a global policy).
    Everywhere,
}

impl Policy {
    /// Calico's evaluation order: tier order, tier name, policy order,
    /// name (then namespace and kind, for a total order).
    pub fn evaluation_order(&self, other: &Self) -> Ordering {
        self.tier_order
            .total_cmp(&other.tier_order)
            .then_with(|| self.evaluated_in.cmp(&other.evaluated_in))
            .then_with(|| self.order.total_cmp(&other.order))
            .then_with(|| self.reference.name.cmp(&other.reference.name))
            .then_with(|| self.reference.namespace.cmp(&other.reference.namespace))
            .then_with(|| self.reference.kind.cmp(&other.reference.kind))
    }

    /// Which endpoints it can select: what must be worked out again when
    /// it comes, goes or changes.
    pub fn reach(&self) -> Reach {
        match &self.scope {
            Scope::Kubernetes { namespace, .. }
            | Scope::Calico {
                namespace: Some(namespace),
                ..
            } => Reach::Namespace(namespace.clone()),
            Scope::Calico {
                namespace: None, ..
            } => Reach::Everywhere,
        }
    }

    /// Whether the policy selects `endpoint`.
    pub fn selects(&self, endpoint: &Endpoint, cluster: &Cluster) -> bool {
        let pod = endpoint.id.kind == EndpointKind::Pod;
        match &self.scope {
            Scope::Kubernetes { namespace, pods } => {
                pod && endpoint.id.namespace == *namespace && pods.matches(&endpoint.labels)
            }
            Scope::Calico {
                namespace,
                selector,
                namespace_selector,
                service_account_selector,
            } => {
                if let Some(ns) = namespace
                    && !(pod && endpoint.id.namespace == *ns)
                {
                    return false;
                }
                if !selector.matches(&endpoint.calico_labels) {
                    return false;
                }
                if let Some(ns_selector) = namespace_selector {
                    let none = LabelMap::new();
                    let labels = if pod {
                        cluster
                            .namespaces
                            .get(&endpoint.id.namespace)
                            .unwrap_or(&none)
                    } else {
                        &none
                    };
                    if !ns_selector.matches(labels) {
                        return false;
                    }
                }
                if let Some(sa_selector) = service_account_selector {
                    if !pod {
                        return false;
                    }
                    let key = (
                        endpoint.id.namespace.clone(),
                        endpoint.service_account.clone(),
                    );
                    let fallback: LabelMap =
                        [(NAME_LABEL.to_owned(), endpoint.service_account.clone())].into();
                    let labels = cluster.service_accounts.get(&key).unwrap_or(&fallback);
                    if !sa_selector.matches(labels) {
                        return false;
                    }
                }
                true
            }
        }
    }
}

/// The policy resources: (resource, group, kind, enforced).
const SOURCES: [(&str, &str, &str, bool); 6] = [
    ("networkpolicies", NETWORKING_GROUP, "NetworkPolicy", true),
    (
        "stagedkubernetesnetworkpolicies",
        CALICO_GROUP,
        "StagedKubernetesNetworkPolicy",
        false,
    ),
    ("networkpolicies", CALICO_GROUP, "NetworkPolicy", true),
    (
        "globalnetworkpolicies",
        CALICO_GROUP,
        "GlobalNetworkPolicy",
        true,
    ),
    (
        "stagednetworkpolicies",
        CALICO_GROUP,
        "StagedNetworkPolicy",
        false,
    ),
    (
        "stagedglobalnetworkpolicies",
        CALICO_GROUP,
        "StagedGlobalNetworkPolicy",
        false,
    ),
];

/// Reads every policy of the state, in evaluation order, and the ones that
/// could not be read.
pub fn read_policies(state: &State, cluster: &Cluster) -> (Vec<Policy>, Vec<PolicyError>) {
    let tiers: BTreeMap<&str, f64> = state
        .of("tiers", CALICO_GROUP)
        .filter_map(|(k, t)| {
            let order = t.get("spec")?.get("order")?.as_f64()?;
            Some((k.name.as_str(), order))
        })
        .collect();
    let tier_order = |tier: &str| {
        tiers.get(tier).copied().unwrap_or(if tier == "default" {
            DEFAULT_TIER_ORDER
        } else {
            f64::INFINITY
        })
    };
    let mut policies = Vec::new();
    let mut errors = Vec::new();
    for (resource, group, kind, enforced) in SOURCES {
        for (key, object) in state.of(resource, group) {
            let spec = object.get("spec").unwrap_or(&Value::Null);
            let kubernetes = kind.ends_with("KubernetesNetworkPolicy") || group == NETWORKING_GROUP;
            let tier = if kubernetes {
                String::new()
            } else {
                spec.get("tier")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                    .unwrap_or("default")
                    .to_owned()
            };
            let reader = Reader {
                reference: PolicyRef {
                    kind: kind.to_owned(),
                    api_group: group.to_owned(),
                    namespace: key.namespace.clone(),
                    name: key.name.clone(),
                    tier: tier.clone(),
                },
                namespace: (!key.namespace.is_empty()).then(|| key.namespace.clone()),
                cluster,
                reads_endpoints: Cell::new(false),
            };
            let read = if kubernetes {
                reader.kubernetes(spec)
            } else {
                reader.calico(spec)
            };
            match read {
                Ok((scope, ingress, egress)) => {
                    let evaluated_in = if kubernetes { "default" } else { tier.as_str() };
                    policies.push(Policy {
                        enforced,
                        tier_order: tier_order(evaluated_in),
                        evaluated_in: evaluated_in.to_owned(),
                        order: if kubernetes {
                            KUBERNETES_POLICY_ORDER
                        } else {
                            spec.get("order")
                                .and_then(Value::as_f64)
                                .unwrap_or(f64::INFINITY)
                        },
                        scope,
                        ingress,
                        egress,
                        reads_endpoints: reader.reads_endpoints.get(),
                        reference: reader.reference,
                    });
                }
                Err(e) => errors.push(*e),
            }
        }
    }
    policies.sort_by(Policy::evaluation_order);
    (policies, errors)
}

type Read = (Scope, Option<Admits>, Option<Admits>);

/// A policy error, boxed while it travels up the reader.
type Fail = Box<PolicyError>;

/// Reads one policy's fields, naming it in errors.
struct Reader<'a> {
    reference: PolicyRef,
    namespace: Option<String>,
    cluster: &'a Cluster,
    /// Set when a rule peer looked at the endpoints.
    reads_endpoints: Cell<bool>,
}

fn array<'v>(value: &'v Value, key: &str) -> &'v [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn string_list(value: &Value, key: &str) -> Vec<String> {
    array(value, key)
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

/// The directions a policy applies to: the listed types, else the default
/// (`kubernetes`: Ingress, plus Egress with egress rules; Calico: Ingress,
/// Egress alone with only egress rules, both with both).
fn directions(spec: &Value, types_key: &str, kubernetes: bool) -> (bool, bool) {
    let types = string_list(spec, types_key);
    if !types.is_empty() {
        return (
            types.iter().any(|t| t == "Ingress"),
            types.iter().any(|t| t == "Egress"),
        );
    }
    let has_ingress = !array(spec, "ingress").is_empty();
    let has_egress = !array(spec, "egress").is_empty();
    if kubernetes {
        (true, has_egress)
    } else {
        (has_ingress || !has_egress, has_egress)
    }
}

/// Which namespaces a labelled Calico peer may be in.
enum NsScope {
    /// `namespaceSelector: global()`: only non-namespaced resources.
    Global,
    /// Every namespace (`namespaceSelector: all()`).
    AllNamespaces,
    /// These namespaces.
    Some(BTreeSet<String>),
    /// Every namespace and the global resources (a global policy's rule
    /// without namespaceSelector).
    Everything,
}

impl NsScope {
    fn contains(&self, namespace: Option<&str>) -> bool {
        match self {
            Self::Global => namespace.is_none(),
            Self::AllNamespaces => namespace.is_some(),
            Self::Some(set) => namespace.is_some_and(|n| set.contains(n)),
            Self::Everything => true,
        }
    }
}

impl Reader<'_> {
    fn invalid(&self, field: String, message: String) -> Fail {
        Box::new(PolicyError::Invalid {
            policy: self.reference.clone(),
            field,
            message,
        })
    }

    fn selector(&self, value: &Value, key: &str, field: &str) -> Result<Option<Selector>, Fail> {
        let Some(text) = value.get(key).and_then(Value::as_str) else {
            return Ok(None);
        };
        if text.trim().is_empty() {
            return Ok(None);
        }
        auditrail_calico_selector::parse(text)
            .map(Some)
            .map_err(|source| {
                Box::new(PolicyError::Selector {
                    policy: self.reference.clone(),
                    field: format!("{field}.{key}"),
                    source,
                })
            })
    }

    fn nets(&self, value: &Value, key: &str, field: &str) -> Result<Vec<IpNet>, Fail> {
        string_list(value, key)
            .iter()
            .map(|n| parse_net(n).map_err(|m| self.invalid(format!("{field}.{key}"), m)))
            .collect()
    }

    fn label_selector(&self, value: Option<&Value>, field: String) -> Result<LabelSelector, Fail> {
        LabelSelector::from_value(value).map_err(|m| self.invalid(field, m))
    }

    fn own_namespace(&self) -> BTreeSet<String> {
        self.namespace.iter().cloned().collect()
    }

    /// A Kubernetes NetworkPolicy spec (also a staged one's).
    fn kubernetes(&self, spec: &Value) -> Result<Read, Fail> {
        let pods = self.label_selector(spec.get("podSelector"), "spec.podSelector".into())?;
        let (ingress, egress) = directions(spec, "policyTypes", true);
        let rules = |direction: &str, peers_key: &str| -> Result<Admits, Fail> {
            let mut admits = Admits::default();
            for (i, rule) in array(spec, direction).iter().enumerate() {
                let peers = array(rule, peers_key);
                if peers.is_empty() {
                    return Ok(Admits::everything());
                }
                for (j, peer) in peers.iter().enumerate() {
                    let field = format!("spec.{direction}[{i}].{peers_key}[{j}]");
                    admits.merge(self.kubernetes_peer(peer, &field)?);
                }
            }
            Ok(admits)
        };
        Ok((
            Scope::Kubernetes {
                namespace: self.namespace.clone().unwrap_or_default(),
                pods,
            },
            ingress.then(|| rules("ingress", "from")).transpose()?,
            egress.then(|| rules("egress", "to")).transpose()?,
        ))
    }

    fn kubernetes_peer(&self, peer: &Value, field: &str) -> Result<Admits, Fail> {
        let mut admits = Admits::default();
        if let Some(block) = peer.get("ipBlock") {
            let cidr = block.get("cidr").and_then(Value::as_str).unwrap_or("");
            let cidr =
                parse_net(cidr).map_err(|m| self.invalid(format!("{field}.ipBlock.cidr"), m))?;
            let except = self.nets(block, "except", &format!("{field}.ipBlock"))?;
            admits.internet = admits_public(&[cidr], &except);
            return Ok(admits);
        }
        match peer.get("namespaceSelector") {
            Some(ns) => {
                let selector =
                    self.label_selector(Some(ns), format!("{field}.namespaceSelector"))?;
                if selector.is_empty() {
                    admits.any_namespace = true;
                } else {
                    admits.namespaces = self
                        .cluster
                        .namespaces
                        .iter()
                        .filter(|(_, labels)| selector.matches(*labels))
                        .map(|(name, _)| name.clone())
                        .collect();
                }
            }
            None => admits.namespaces = self.own_namespace(),
        }
        Ok(admits)
    }

    /// A Calico (Global)NetworkPolicy spec, staged or not.
    fn calico(&self, spec: &Value) -> Result<Read, Fail> {
        let global = self.namespace.is_none();
        let selector = self
            .selector(spec, "selector", "spec")?
            .unwrap_or(Selector::All);
        let namespace_selector = if global {
            self.selector(spec, "namespaceSelector", "spec")?
        } else {
            None
        };
        let service_account_selector = self.selector(spec, "serviceAccountSelector", "spec")?;
        let (ingress, egress) = directions(spec, "types", false);
        let rules = |direction: &str, peer_key: &str| -> Result<Admits, Fail> {
            let mut admits = Admits::default();
            for (i, rule) in array(spec, direction).iter().enumerate() {
                if rule.get("action").and_then(Value::as_str) != Some("Allow") {
                    continue;
                }
                let field = format!("spec.{direction}[{i}].{peer_key}");
                let peer = rule.get(peer_key).unwrap_or(&Value::Null);
                admits.merge(self.calico_peer(peer, &field)?);
            }
            Ok(admits)
        };
        Ok((
            Scope::Calico {
                namespace: self.namespace.clone(),
                selector,
                namespace_selector,
                service_account_selector,
            },
            ingress.then(|| rules("ingress", "source")).transpose()?,
            egress.then(|| rules("egress", "destination")).transpose()?,
        ))
    }

    /// What one Calico entity rule (a rule's `source` or `destination`)
    /// admits.
    fn calico_peer(&self, peer: &Value, field: &str) -> Result<Admits, Fail> {
        let nets = self.nets(peer, "nets", field)?;
        let not_nets = self.nets(peer, "notNets", field)?;
        let selector = self.selector(peer, "selector", field)?;
        let ns_selector = self.selector(peer, "namespaceSelector", field)?;
        let accounts = peer.get("serviceAccounts").filter(|v| !v.is_null());
        let services = peer.get("services").filter(|v| !v.is_null());
        if selector.is_none() && ns_selector.is_none() && accounts.is_none() && services.is_none() {
            // Only nets, or nothing: addresses, not endpoints.
            return Ok(Admits {
                internet: admits_public(&nets, &not_nets),
                any_namespace: nets.is_empty(),
                namespaces: BTreeSet::new(),
            });
        }
        let mut admits = Admits::default();
        if let Some(services) = services {
            let namespace = services
                .get("namespace")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| self.namespace.clone());
            admits.namespaces.extend(namespace);
            return Ok(admits);
        }
        let scope = match &ns_selector {
            Some(Selector::Global) => NsScope::Global,
            Some(Selector::All) => NsScope::AllNamespaces,
            Some(s) => NsScope::Some(
                self.cluster
                    .namespaces
                    .iter()
                    .filter(|(_, labels)| s.matches(*labels))
                    .map(|(name, _)| name.clone())
                    .collect(),
            ),
            None if self.namespace.is_some() => NsScope::Some(self.own_namespace()),
            None => NsScope::Everything,
        };
        let account_names = accounts
            .map(|a| string_list(a, "names"))
            .unwrap_or_default();
        let account_selector = match accounts {
            Some(a) => self.selector(a, "selector", &format!("{field}.serviceAccounts"))?,
            None => None,
        };
        let unrestricted = selector.as_ref().is_none_or(Selector::is_all) && accounts.is_none();
        if unrestricted {
            match &scope {
                NsScope::Global => {}
                NsScope::AllNamespaces | NsScope::Everything => admits.any_namespace = true,
                NsScope::Some(set) => admits.namespaces.extend(set.iter().cloned()),
            }
        } else {
            let selector = selector.clone().unwrap_or(Selector::All);
            self.reads_endpoints.set(true);
            for endpoint in self.cluster.endpoints.values() {
                if endpoint.id.kind != EndpointKind::Pod
                    || !scope.contains(Some(&endpoint.id.namespace))
                    || !selector.matches(&endpoint.calico_labels)
                {
                    continue;
                }
                if accounts.is_some() {
                    let named = account_names.is_empty()
                        || account_names.contains(&endpoint.service_account);
                    let key = (
                        endpoint.id.namespace.clone(),
                        endpoint.service_account.clone(),
                    );
                    let fallback: LabelMap =
                        [(NAME_LABEL.to_owned(), endpoint.service_account.clone())].into();
                    let labels = self.cluster.service_accounts.get(&key).unwrap_or(&fallback);
                    if !named || !account_selector.as_ref().is_none_or(|s| s.matches(labels)) {
                        continue;
                    }
                }
                admits.namespaces.insert(endpoint.id.namespace.clone());
            }
        }
        // Network sets the rule picks, when it may pick more than pods.
        if accounts.is_none() {
            let selector = selector.unwrap_or(Selector::All);
            admits.internet = self.cluster.network_sets.iter().any(|set| {
                scope.contains(set.namespace.as_deref())
                    && selector.matches(&set.calico_labels)
                    && {
                        let set_nets: Vec<IpNet> =
                            set.nets.iter().filter_map(|n| parse_net(n).ok()).collect();
                        !set_nets.is_empty()
                            && admits_public(&set_nets, &not_nets)
                            && (nets.is_empty() || admits_public(&nets, &not_nets))
                    }
            });
        }
        Ok(admits)
    }
}
