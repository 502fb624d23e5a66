//! The calculator kept up to date while a replay walks through a report's
//! interval, for the inventory and network-access reports.
//!
//! Running [`calculate`](crate::calculate) after every instant that
//! changed the configuration costs endpoints × policies each time (about
//! 141 ms for 5,000 pods and 500 policies, 449 s over 30 days of churn),
//! though most changes are one pod coming or going. A [`Tracker`] holds
//! the answer of every endpoint and, told which objects changed, works out
//! again only the answers the change can affect:
//!
//! - a pod or host endpoint: its own answer (its flags depend on its
//!   labels, its namespace's and service account's and the policies);
//! - an Endpoints object: the answers of the pods it lists, before and
//!   after (only their services change);
//! - a policy, tier or network set: the policies are read again (a few
//!   milliseconds) and compared with the previous reading; the endpoints
//!   a policy that came, went or changed can select are worked out again
//!   (a namespaced policy's namespace, every endpoint for a global one);
//! - a namespace's labels (or a namespace that only its pods name coming
//!   or going) or a service account: namespace and service-account
//!   selectors may now pick other endpoints, so every answer.
//!
//! A pod's change also reads the policies again when one of them picks
//! its peers among the pods (a rule's selector or service accounts: what
//! it admits is their namespaces). Each endpoint is checked only against
//! the policies that can select it (its namespace's and the global ones),
//! already read, with their selectors parsed once per reading.
//!
//! The answers are those of [`calculate`](crate::calculate) on the same
//! state; the reporter's tests compare the two over random histories.

use std::collections::{BTreeMap, BTreeSet};

use auditrail_replay::{ObjectKey, State};

use crate::calc::{Calculation, EndpointReport, report};
use crate::model::{
    CALICO_GROUP, Cluster, Endpoint, EndpointId, EndpointKind, LabelMap, NAME_LABEL,
    NamespacedName, host_endpoint, labels_of, namespace_labels, pod_endpoint, service_targets,
};
use crate::policy::{Policy, PolicyError, PolicyRef, Reach, read_policies};

/// Which answers changed since they were last taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    /// Possibly every endpoint's.
    All,
    /// These endpoints' (an endpoint that is gone has no answer).
    Some(BTreeSet<EndpointId>),
}

impl Default for Changed {
    fn default() -> Self {
        Self::Some(BTreeSet::new())
    }
}

impl Changed {
    fn all(&mut self) {
        *self = Self::All;
    }

    fn add(&mut self, id: EndpointId) {
        if let Self::Some(ids) = self {
            ids.insert(id);
        }
    }
}

/// The policies as read, indexed by the endpoints they can select.
#[derive(Debug, Default)]
struct Policies {
    /// In evaluation order.
    list: Vec<Policy>,
    /// Positions in `list` of the global policies.
    global: Vec<usize>,
    /// Positions in `list` of each namespace's policies.
    by_namespace: BTreeMap<String, Vec<usize>>,
    /// Whether some policy picks its peers among the pods.
    reads_endpoints: bool,
    /// Those that could not be read.
    warnings: Vec<PolicyError>,
}

impl Policies {
    fn read(state: &State, cluster: &Cluster) -> Self {
        let (list, warnings) = read_policies(state, cluster);
        let mut policies = Self {
            reads_endpoints: list.iter().any(|p| p.reads_endpoints),
            warnings,
            ..Self::default()
        };
        for (i, policy) in list.iter().enumerate() {
            match policy.reach() {
                Reach::Everywhere => policies.global.push(i),
                Reach::Namespace(ns) => policies.by_namespace.entry(ns).or_default().push(i),
            }
        }
        policies.list = list;
        policies
    }

    /// What changed from `old` to `self`: the reach of every policy that
    /// came, went or is read differently.
    fn reach_of_changes(&self, old: &Self) -> Vec<Reach> {
        let before: BTreeMap<&PolicyRef, &Policy> =
            old.list.iter().map(|p| (&p.reference, p)).collect();
        let after: BTreeMap<&PolicyRef, &Policy> =
            self.list.iter().map(|p| (&p.reference, p)).collect();
        let mut reaches = Vec::new();
        for (reference, policy) in &after {
            match before.get(reference) {
                Some(was) if *was == *policy => {}
                Some(was) => {
                    reaches.push(was.reach());
                    reaches.push(policy.reach());
                }
                None => reaches.push(policy.reach()),
            }
        }
        for (reference, was) in &before {
            if !after.contains_key(reference) {
                reaches.push(was.reach());
            }
        }
        reaches
    }

    /// The answer for `endpoint`: the policies that can select it, in
    /// evaluation order, asked whether they do.
    fn report(&self, endpoint: &Endpoint, cluster: &Cluster) -> EndpointReport {
        let local: &[usize] = if endpoint.id.kind == EndpointKind::Pod {
            self.by_namespace
                .get(&endpoint.id.namespace)
                .map_or(&[], Vec::as_slice)
        } else {
            &[]
        };
        let mut candidates = Vec::with_capacity(local.len() + self.global.len());
        let (mut a, mut b) = (local.iter().peekable(), self.global.iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(&&x), Some(&&y)) if x < y => a.next(),
                (Some(_) | None, Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, None) => break,
            };
            candidates.extend(next.copied());
        }
        let selecting = candidates
            .into_iter()
            .filter_map(|i| self.list.get(i))
            .filter(|p| p.selects(endpoint, cluster));
        report(endpoint, selecting, cluster)
    }
}

/// Every endpoint's answer, kept up to date as the state changes.
#[derive(Debug)]
pub struct Tracker {
    cluster: Cluster,
    /// Pods (that are endpoints) per namespace: a namespace that only its
    /// pods name exists for selectors while it has some.
    pods_per_namespace: BTreeMap<String, usize>,
    /// Each Endpoints object's (namespace, name) → the pods it lists.
    targets: BTreeMap<(String, String), Vec<(String, String)>>,
    policies: Policies,
    /// Bumped each time the policies are read again.
    generation: u64,
    rows: BTreeMap<EndpointId, EndpointReport>,
    changed: Changed,
}

impl Tracker {
    /// Every endpoint's answer in `state`; all of them count as changed.
    pub fn new(state: &State) -> Self {
        let cluster = Cluster::from_state(state);
        let mut pods_per_namespace = BTreeMap::new();
        for id in cluster.endpoints.keys() {
            if id.kind == EndpointKind::Pod {
                *pods_per_namespace.entry(id.namespace.clone()).or_insert(0) += 1;
            }
        }
        let targets = state
            .of("endpoints", "")
            .map(|(key, object)| {
                (
                    (key.namespace.clone(), key.name.clone()),
                    service_targets(&key.namespace, object),
                )
            })
            .collect();
        let policies = Policies::read(state, &cluster);
        let mut tracker = Self {
            cluster,
            pods_per_namespace,
            targets,
            policies,
            generation: 0,
            rows: BTreeMap::new(),
            changed: Changed::All,
        };
        tracker.redo_all();
        tracker
    }

    /// The endpoints, namespaces and service accounts as of the last
    /// update (what `Cluster::from_state` reads from the same state).
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The policies that could not be read.
    pub fn warnings(&self) -> &[PolicyError] {
        &self.policies.warnings
    }

    /// A number that changes whenever the policies were read again (and
    /// [`Tracker::warnings`] may have changed).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// One endpoint's answer.
    pub fn report(&self, id: &EndpointId) -> Option<&EndpointReport> {
        self.rows.get(id)
    }

    /// Every endpoint's answer, by id.
    pub fn reports(&self) -> impl Iterator<Item = &EndpointReport> {
        self.rows.values()
    }

    /// What [`calculate`](crate::calculate) says of the state last updated
    /// to.
    pub fn calculation(&self) -> Calculation {
        Calculation {
            endpoints: self.rows.values().cloned().collect(),
            warnings: self.policies.warnings.clone(),
        }
    }

    /// The answers that changed since the last call (or since
    /// [`Tracker::new`]: all).
    pub fn take_changed(&mut self) -> Changed {
        std::mem::take(&mut self.changed)
    }

    fn redo_all(&mut self) {
        self.rows = self
            .cluster
            .endpoints
            .values()
            .map(|e| (e.id.clone(), self.policies.report(e, &self.cluster)))
            .collect();
        self.changed.all();
    }

    fn redo(&mut self, id: &EndpointId) {
        match self.cluster.endpoints.get(id) {
            Some(endpoint) => {
                let row = self.policies.report(endpoint, &self.cluster);
                self.rows.insert(id.clone(), row);
            }
            None => {
                self.rows.remove(id);
            }
        }
        self.changed.add(id.clone());
    }

    /// The pods of namespace `ns`.
    fn pods_of(&self, ns: &str) -> Vec<EndpointId> {
        let from = EndpointId {
            kind: EndpointKind::Pod,
            namespace: ns.to_owned(),
            name: String::new(),
        };
        self.cluster
            .endpoints
            .range(from..)
            .map(|(id, _)| id)
            .take_while(|id| id.kind == EndpointKind::Pod && id.namespace == ns)
            .cloned()
            .collect()
    }

    /// Brings the answers to `state`, in which the objects under `keys`
    /// (as the replay reports them, repeats allowed) were put or removed
    /// since the last update; every other object is as it was then.
    pub fn update(&mut self, state: &State, keys: &[ObjectKey]) {
        let keys: BTreeSet<&ObjectKey> = keys.iter().collect();
        let mut redo: BTreeSet<EndpointId> = BTreeSet::new();
        let mut namespaces: BTreeSet<String> = BTreeSet::new();
        let (mut everything, mut reread, mut endpoints_changed) = (false, false, false);
        for key in keys {
            let (ns, name) = (key.namespace.as_str(), key.name.as_str());
            match (key.resource.as_str(), key.api_group.as_str()) {
                ("pods", "") => {
                    let id = EndpointId {
                        kind: EndpointKind::Pod,
                        namespace: ns.to_owned(),
                        name: name.to_owned(),
                    };
                    if self.cluster.endpoints.remove(&id).is_some() {
                        self.count_pod(ns, false);
                    }
                    if let Some(endpoint) = state.get(key).and_then(|p| pod_endpoint(ns, name, p)) {
                        self.count_pod(ns, true);
                        self.cluster.endpoints.insert(id.clone(), endpoint);
                    }
                    namespaces.insert(ns.to_owned());
                    redo.insert(id);
                    endpoints_changed = true;
                }
                ("hostendpoints", CALICO_GROUP) => {
                    let id = EndpointId {
                        kind: EndpointKind::HostEndpoint,
                        namespace: String::new(),
                        name: name.to_owned(),
                    };
                    self.cluster.endpoints.remove(&id);
                    if let Some(hep) = state.get(key) {
                        self.cluster
                            .endpoints
                            .insert(id.clone(), host_endpoint(name, hep));
                    }
                    redo.insert(id);
                    endpoints_changed = true;
                }
                ("endpoints", "") => self.services_changed(state, key, &mut redo),
                ("namespaces", "") => {
                    namespaces.insert(name.to_owned());
                }
                ("serviceaccounts", "") => {
                    let account = (ns.to_owned(), name.to_owned());
                    match state.get(key) {
                        Some(sa) => {
                            let mut labels = labels_of(sa);
                            labels.insert(NAME_LABEL.to_owned(), name.to_owned());
                            self.cluster.service_accounts.insert(account, labels);
                        }
                        None => {
                            self.cluster.service_accounts.remove(&account);
                        }
                    }
                    everything = true;
                    reread = true;
                }
                ("networksets" | "globalnetworksets", CALICO_GROUP) => {
                    self.cluster.network_sets = Cluster::from_state_network_sets(state);
                    reread = true;
                }
                _ => reread = true,
            }
        }
        for ns in namespaces {
            if self.namespace_changed(state, ns) {
                everything = true;
                reread = true;
            }
        }
        if endpoints_changed && self.policies.reads_endpoints {
            reread = true;
        }
        if reread {
            let policies = Policies::read(state, &self.cluster);
            let reaches = policies.reach_of_changes(&self.policies);
            self.policies = policies;
            self.generation += 1;
            for reach in reaches {
                match reach {
                    Reach::Everywhere => everything = true,
                    Reach::Namespace(ns) => redo.extend(self.pods_of(&ns)),
                }
            }
        }
        if everything {
            self.redo_all();
        } else {
            for id in &redo {
                self.redo(id);
            }
        }
    }

    /// Brings namespace `ns` as selectors see it to `state`; whether it
    /// changed.
    fn namespace_changed(&mut self, state: &State, ns: String) -> bool {
        let object = state.get(&ObjectKey::new("namespaces", "", "", &ns));
        let labels: Option<LabelMap> = match object {
            Some(object) => Some(namespace_labels(&ns, labels_of(object))),
            None if self.pods_per_namespace.contains_key(&ns) => {
                Some(namespace_labels(&ns, LabelMap::new()))
            }
            None => None,
        };
        if self.cluster.namespaces.get(&ns) == labels.as_ref() {
            return false;
        }
        match labels {
            Some(labels) => self.cluster.namespaces.insert(ns, labels),
            None => self.cluster.namespaces.remove(&ns),
        };
        true
    }

    fn count_pod(&mut self, ns: &str, added: bool) {
        if added {
            *self.pods_per_namespace.entry(ns.to_owned()).or_insert(0) += 1;
        } else if let Some(n) = self.pods_per_namespace.get_mut(ns) {
            *n -= 1;
            if *n == 0 {
                self.pods_per_namespace.remove(ns);
            }
        }
    }

    /// An Endpoints object changed: the service leaves the pods it listed
    /// and joins those it lists now.
    fn services_changed(
        &mut self,
        state: &State,
        key: &ObjectKey,
        redo: &mut BTreeSet<EndpointId>,
    ) {
        let service = NamespacedName {
            namespace: key.namespace.clone(),
            name: key.name.clone(),
        };
        let at = (key.namespace.clone(), key.name.clone());
        let pod_id = |(namespace, name): &(String, String)| EndpointId {
            kind: EndpointKind::Pod,
            namespace: namespace.clone(),
            name: name.clone(),
        };
        for pod in self.targets.remove(&at).unwrap_or_default() {
            if let Some(services) = self.cluster.services.get_mut(&pod) {
                services.remove(&service);
                if services.is_empty() {
                    self.cluster.services.remove(&pod);
                }
            }
            redo.insert(pod_id(&pod));
        }
        if let Some(object) = state.get(key) {
            let pods = service_targets(&key.namespace, object);
            for pod in &pods {
                self.cluster
                    .services
                    .entry(pod.clone())
                    .or_default()
                    .insert(service.clone());
                redo.insert(pod_id(pod));
            }
            self.targets.insert(at, pods);
        }
    }
}
