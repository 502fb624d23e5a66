//! A seeded generator of realistic audit logs.
//!
//! Tests, benchmarks and the demo need audit logs that look like what the API
//! servers write, in any volume, reproducibly. The generator keeps a small
//! model of a cluster (namespaces, Kubernetes and Calico objects with their
//! resourceVersions) and emits what people and controllers do to it:
//!
//! - reads (`get`, `list`, `watch`) at level Metadata, the bulk of real traffic;
//! - writes (`create`, `update`, `patch`, `delete`) at RequestResponse with
//!   request and response objects, consistent with the model (an object is
//!   created before it is changed, deleted at most once, and its
//!   resourceVersion only grows);
//! - Calico resources (`projectcalico.org`) and Kubernetes ones, several users
//!   and service accounts, the occasional failed request (403, 404, 409) and
//!   dry run, and a few events that share an `auditID` with an earlier one
//!   (as a client-chosen `Audit-ID` header causes).
//!
//! The same seed and settings always give the same bytes (ChaCha8 stream).

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use rand::seq::IndexedRandom as _;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenConfig {
    /// Seed of the random stream.
    pub seed: u64,
    /// Time of the first event.
    pub start: Timestamp,
    /// Mean time between events.
    pub mean_interval: SignedDuration,
    /// Fraction of events that are writes (0.0 to 1.0).
    pub write_ratio: f64,
}

impl Default for GenConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            start: Timestamp::constant(1_767_225_600, 0), // 2026-01-01T00:00:00Z
            mean_interval: SignedDuration::from_millis(50),
            write_ratio: 0.3,
        }
    }
}

/// A kind of object the generator manipulates.
#[derive(Debug, Clone, Copy)]
struct ObjectKind {
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    kind: &'static str,
    namespaced: bool,
}

const KINDS: &[ObjectKind] = &[
    ObjectKind {
        group: "",
        version: "v1",
        resource: "pods",
        kind: "Pod",
        namespaced: true,
    },
    ObjectKind {
        group: "",
        version: "v1",
        resource: "serviceaccounts",
        kind: "ServiceAccount",
        namespaced: true,
    },
    ObjectKind {
        group: "",
        version: "v1",
        resource: "endpoints",
        kind: "Endpoints",
        namespaced: true,
    },
    ObjectKind {
        group: "",
        version: "v1",
        resource: "namespaces",
        kind: "Namespace",
        namespaced: false,
    },
    ObjectKind {
        group: "networking.k8s.io",
        version: "v1",
        resource: "networkpolicies",
        kind: "NetworkPolicy",
        namespaced: true,
    },
    ObjectKind {
        group: "projectcalico.org",
        version: "v3",
        resource: "networkpolicies",
        kind: "NetworkPolicy",
        namespaced: true,
    },
    ObjectKind {
        group: "projectcalico.org",
        version: "v3",
        resource: "globalnetworkpolicies",
        kind: "GlobalNetworkPolicy",
        namespaced: false,
    },
    ObjectKind {
        group: "projectcalico.org",
        version: "v3",
        resource: "stagednetworkpolicies",
        kind: "StagedNetworkPolicy",
        namespaced: true,
    },
    ObjectKind {
        group: "projectcalico.org",
        version: "v3",
        resource: "globalnetworksets",
        kind: "GlobalNetworkSet",
        namespaced: false,
    },
    ObjectKind {
        group: "projectcalico.org",
        version: "v3",
        resource: "networksets",
        kind: "NetworkSet",
        namespaced: true,
    },
    ObjectKind {
        group: "projectcalico.org",
        version: "v3",
        resource: "tiers",
        kind: "Tier",
        namespaced: false,
    },
    ObjectKind {
        group: "projectcalico.org",
        version: "v3",
        resource: "hostendpoints",
        kind: "HostEndpoint",
        namespaced: false,
    },
];

const NAMESPACES: &[&str] = &[
    "default",
    "payments",
    "frontend",
    "monitoring",
    "kube-system",
];

const USERS: &[(&str, &[&str])] = &[
    (
        "kubernetes-admin",
        &["system:masters", "system:authenticated"],
    ),
    ("alice@example.com", &["netsec", "system:authenticated"]),
    ("bob@example.com", &["developers", "system:authenticated"]),
    (
        "system:serviceaccount:ci:deployer",
        &[
            "system:serviceaccounts",
            "system:serviceaccounts:ci",
            "system:authenticated",
        ],
    ),
    (
        "system:serviceaccount:kube-system:replicaset-controller",
        &[
            "system:serviceaccounts",
            "system:serviceaccounts:kube-system",
            "system:authenticated",
        ],
    ),
];

const AGENTS: &[&str] = &[
    "kubectl/v1.31.2 (linux/amd64) kubernetes/5864a46",
    "calicoctl/v3.29.0",
    "kube-controller-manager/v1.31.2 (linux/amd64) kubernetes/5864a46/system:serviceaccount:kube-system:replicaset-controller",
    "argocd-application-controller/v2.12.3",
];

const NAME_WORDS: &[&str] = &[
    "allow-dns",
    "deny-all",
    "web",
    "api",
    "db",
    "cache",
    "metrics",
    "ingress",
    "egress",
    "batch",
];

/// An object alive in the modelled cluster.
#[derive(Debug, Clone)]
struct Object {
    kind: usize,
    namespace: Option<&'static str>,
    name: String,
    uid: String,
    resource_version: u64,
    generation: u64,
    labels: BTreeMap<String, String>,
    ports: Vec<u16>,
}

/// The objects alive in the modelled cluster, with an index by kind so that
/// picking one of a kind costs the same whatever the population (a scan made
/// generating ten million events quadratic).
#[derive(Debug, Default)]
struct Population {
    objects: Vec<Object>,
    /// Per kind, the positions of its objects in `objects`.
    by_kind: Vec<Vec<usize>>,
    /// Per object, its position in its kind's list.
    slot: Vec<usize>,
}

impl Population {
    fn len(&self) -> usize {
        self.objects.len()
    }

    fn of_kind(&self, kind: usize) -> &[usize] {
        self.by_kind.get(kind).map_or(&[], Vec::as_slice)
    }

    fn push(&mut self, o: Object) {
        if self.by_kind.len() <= o.kind {
            self.by_kind.resize_with(o.kind + 1, Vec::new);
        }
        let same_kind = &mut self.by_kind[o.kind];
        self.slot.push(same_kind.len());
        same_kind.push(self.objects.len());
        self.objects.push(o);
    }

    fn swap_remove(&mut self, index: usize) {
        // Out of its kind's list (the list's last entry takes its slot).
        let kind = self.objects[index].kind;
        let slot = self.slot[index];
        let same_kind = &mut self.by_kind[kind];
        same_kind.swap_remove(slot);
        if let Some(&moved) = same_kind.get(slot) {
            self.slot[moved] = slot;
        }
        // Out of the objects (the last object takes its position).
        let last = self.objects.len() - 1;
        if index != last {
            let last_kind = self.objects[last].kind;
            let last_slot = self.slot[last];
            self.by_kind[last_kind][last_slot] = index;
        }
        self.objects.swap_remove(index);
        self.slot.swap_remove(index);
    }
}

impl std::ops::Index<usize> for Population {
    type Output = Object;
    fn index(&self, i: usize) -> &Object {
        &self.objects[i]
    }
}

impl std::ops::IndexMut<usize> for Population {
    fn index_mut(&mut self, i: usize) -> &mut Object {
        &mut self.objects[i]
    }
}

/// An infinite iterator of audit log lines (JSON, no line terminator).
#[derive(Debug)]
pub struct Generator {
    config: GenConfig,
    rng: ChaCha8Rng,
    now: Timestamp,
    objects: Population,
    resource_version: u64,
    recent_audit_ids: Vec<String>,
    produced: u64,
}

impl Generator {
    /// A generator for `config`.
    pub fn new(config: GenConfig) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            now: config.start,
            config,
            objects: Population::default(),
            resource_version: 100_000,
            recent_audit_ids: Vec::new(),
            produced: 0,
        }
    }

    /// How many events this generator has produced.
    pub fn produced(&self) -> u64 {
        self.produced
    }

    fn uuid(&mut self) -> String {
        uuid::Builder::from_random_bytes(self.rng.random())
            .into_uuid()
            .to_string()
    }

    fn advance_clock(&mut self) -> (Timestamp, Timestamp) {
        let mean = self.config.mean_interval.as_nanos().max(1);
        let step = i64::try_from(self.rng.random_range(0..=2 * mean)).unwrap_or(i64::MAX);
        self.now = self
            .now
            .saturating_add(SignedDuration::from_nanos(step))
            .unwrap_or(self.now);
        let latency = SignedDuration::from_micros(self.rng.random_range(300..40_000));
        let received = self.now;
        let done = received.saturating_add(latency).unwrap_or(received);
        (received, done)
    }

    fn audit_id(&mut self) -> String {
        // About 1 in 500 events reuses a recent audit ID (client-set header).
        if !self.recent_audit_ids.is_empty() && self.rng.random_ratio(1, 500) {
            let i = self.rng.random_range(0..self.recent_audit_ids.len());
            return self.recent_audit_ids[i].clone();
        }
        let id = self.uuid();
        if self.recent_audit_ids.len() >= 64 {
            self.recent_audit_ids.remove(0);
        }
        self.recent_audit_ids.push(id.clone());
        id
    }

    fn user(&mut self) -> Value {
        let (name, groups) = USERS.choose(&mut self.rng).copied().unwrap_or(USERS[0]);
        json!({"username": name, "uid": format!("uid-{}", name.len()), "groups": groups})
    }

    fn object_json(o: &Object) -> Value {
        let kind = KINDS[o.kind];
        let api_version = if kind.group.is_empty() {
            kind.version.to_owned()
        } else {
            format!("{}/{}", kind.group, kind.version)
        };
        let mut metadata = json!({
            "name": o.name,
            "uid": o.uid,
            "resourceVersion": o.resource_version.to_string(),
            "generation": o.generation,
            "labels": o.labels,
        });
        if let Some(ns) = o.namespace {
            metadata["namespace"] = json!(ns);
        }
        let spec = match kind.resource {
            "networkpolicies" | "globalnetworkpolicies" | "stagednetworkpolicies" => json!({
                "selector": format!("app == '{}'", o.labels.get("app").map_or("web", String::as_str)),
                "types": ["Ingress", "Egress"],
                "ingress": o.ports.iter().map(|p| json!({
                    "action": "Allow", "protocol": "TCP",
                    "source": {"selector": "role == 'frontend'"},
                    "destination": {"ports": [p]}
                })).collect::<Vec<_>>(),
                "egress": [{"action": "Allow", "protocol": "UDP", "destination": {"ports": [53]}}],
            }),
            "globalnetworksets" | "networksets" => json!({
                "nets": o.ports.iter().map(|p| format!("10.{}.0.0/16", p % 256)).collect::<Vec<_>>()
            }),
            "tiers" => json!({"order": o.ports.first().copied().unwrap_or(100)}),
            "hostendpoints" => {
                json!({"node": format!("node-{}", o.ports.len()), "interfaceName": "eth0"})
            }
            "pods" => json!({
                "containers": [{"name": "app", "image": format!("registry.example.com/{}:1.{}", o.name, o.generation),
                                "ports": o.ports.iter().map(|p| json!({"containerPort": p})).collect::<Vec<_>>()}],
                "serviceAccountName": "default"
            }),
            _ => json!({}),
        };
        json!({"kind": kind.kind, "apiVersion": api_version, "metadata": metadata, "spec": spec})
    }

    fn new_object(&mut self) -> Object {
        let kind = self.rng.random_range(0..KINDS.len());
        let namespace = KINDS[kind].namespaced.then(|| {
            NAMESPACES
                .choose(&mut self.rng)
                .copied()
                .unwrap_or("default")
        });
        let word = NAME_WORDS.choose(&mut self.rng).copied().unwrap_or("obj");
        let name = format!("{word}-{:05x}", self.rng.random_range(0..0x10_0000u32));
        let mut labels = BTreeMap::new();
        labels.insert("app".to_owned(), word.to_owned());
        labels.insert(
            "team".to_owned(),
            ["netsec", "platform", "payments"][self.rng.random_range(0..3)].to_owned(),
        );
        let ports = (0..self.rng.random_range(1..4))
            .map(|_| [80, 443, 5432, 6379, 8080, 9090][self.rng.random_range(0..6)])
            .collect();
        Object {
            kind,
            namespace,
            name,
            uid: self.uuid(),
            resource_version: 0,
            generation: 1,
            labels,
            ports,
        }
    }

    fn uri(kind: ObjectKind, namespace: Option<&str>, name: Option<&str>, query: &str) -> String {
        let mut uri = if kind.group.is_empty() {
            format!("/api/{}", kind.version)
        } else {
            format!("/apis/{}/{}", kind.group, kind.version)
        };
        if let Some(ns) = namespace {
            uri.push_str("/namespaces/");
            uri.push_str(ns);
        }
        uri.push('/');
        uri.push_str(kind.resource);
        if let Some(name) = name {
            uri.push('/');
            uri.push_str(name);
        }
        uri.push_str(query);
        uri
    }

    fn base_event(
        &mut self,
        level: &str,
        verb: &str,
        uri: &str,
        object_ref: &Value,
        code: u16,
    ) -> Value {
        let (received, done) = self.advance_clock();
        let audit_id = self.audit_id();
        let user = self.user();
        let agent = AGENTS.choose(&mut self.rng).copied().unwrap_or(AGENTS[0]);
        let ip = format!(
            "10.0.{}.{}",
            self.rng.random_range(0..4),
            self.rng.random_range(2..250)
        );
        json!({
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": level,
            "auditID": audit_id,
            "stage": "ResponseComplete",
            "requestURI": uri,
            "verb": verb,
            "user": user,
            "sourceIPs": [ip],
            "userAgent": agent,
            "objectRef": object_ref,
            "responseStatus": {"metadata": {}, "code": code},
            "requestReceivedTimestamp": format_micros(received),
            "stageTimestamp": format_micros(done),
            "annotations": {"authorization.k8s.io/decision": if code == 403 { "forbid" } else { "allow" },
                            "authorization.k8s.io/reason": ""},
        })
    }

    fn object_ref(
        kind: ObjectKind,
        namespace: Option<&str>,
        name: Option<&str>,
        rv: Option<u64>,
    ) -> Value {
        let mut r =
            json!({"resource": kind.resource, "apiGroup": kind.group, "apiVersion": kind.version});
        if let Some(ns) = namespace {
            r["namespace"] = json!(ns);
        }
        if let Some(name) = name {
            r["name"] = json!(name);
        }
        if let Some(rv) = rv {
            r["resourceVersion"] = json!(rv.to_string());
        }
        r
    }

    fn read(&mut self) -> Value {
        let kind_index = self.rng.random_range(0..KINDS.len());
        let kind = KINDS[kind_index];
        let namespace = kind.namespaced.then(|| {
            NAMESPACES
                .choose(&mut self.rng)
                .copied()
                .unwrap_or("default")
        });
        let roll = self.rng.random_range(0..10);
        let existing = self.objects.of_kind(kind_index);
        if roll < 4 && !existing.is_empty() {
            let pick = existing[self.rng.random_range(0..existing.len())];
            let o = self.objects[pick].clone();
            let uri = Self::uri(kind, o.namespace, Some(&o.name), "");
            let oref = Self::object_ref(kind, o.namespace, Some(&o.name), None);
            self.base_event("Metadata", "get", &uri, &oref, 200)
        } else if roll < 5 {
            let name = format!("missing-{:04x}", self.rng.random_range(0..0x1_0000u32));
            let uri = Self::uri(kind, namespace, Some(&name), "");
            let oref = Self::object_ref(kind, namespace, Some(&name), None);
            self.base_event("Metadata", "get", &uri, &oref, 404)
        } else if roll < 8 {
            let uri = Self::uri(kind, namespace, None, "?limit=500");
            let oref = Self::object_ref(kind, namespace, None, None);
            self.base_event("Metadata", "list", &uri, &oref, 200)
        } else {
            let rv = self.resource_version;
            let uri = Self::uri(
                kind,
                namespace,
                None,
                &format!("?allowWatchBookmarks=true&resourceVersion={rv}&watch=true"),
            );
            let oref = Self::object_ref(kind, namespace, None, None);
            self.base_event("Metadata", "watch", &uri, &oref, 200)
        }
    }

    fn write(&mut self) -> Value {
        let roll = self.rng.random_range(0..100);
        let dry_run = self.rng.random_ratio(1, 50);
        let query = if dry_run { "?dryRun=All" } else { "" };
        if roll < 35 || self.objects.len() < 5 {
            // create
            let mut o = self.new_object();
            let kind = KINDS[o.kind];
            let request = Self::object_json(&o);
            let conflict = self.rng.random_ratio(1, 40);
            let code = if conflict { 409 } else { 201 };
            if !conflict {
                self.resource_version += 1;
                o.resource_version = self.resource_version;
            }
            let uri = Self::uri(kind, o.namespace, None, query);
            let oref = Self::object_ref(kind, o.namespace, Some(&o.name), None);
            let mut event = self.base_event("RequestResponse", "create", &uri, &oref, code);
            event["requestObject"] = request;
            event["responseObject"] = if conflict {
                status_object(409, "AlreadyExists", &o.name)
            } else {
                Self::object_json(&o)
            };
            if !conflict && !dry_run {
                self.objects.push(o);
            }
            return event;
        }
        let index = self.rng.random_range(0..self.objects.len());
        let kind = KINDS[self.objects[index].kind];
        if roll < 85 {
            // update or patch
            let verb = if roll < 60 { "patch" } else { "update" };
            let forbidden = self.rng.random_ratio(1, 30);
            let mut o = self.objects[index].clone();
            o.ports
                .push([53, 8443, 9443, 3000][self.rng.random_range(0..4)]);
            if o.ports.len() > 5 {
                o.ports.remove(0);
            }
            o.labels.insert("rev".to_owned(), o.generation.to_string());
            let request = if verb == "patch" {
                json!({"metadata": {"labels": {"rev": o.generation.to_string()}}})
            } else {
                Self::object_json(&o)
            };
            let code = if forbidden { 403 } else { 200 };
            let uri = Self::uri(kind, o.namespace, Some(&o.name), query);
            let oref = Self::object_ref(kind, o.namespace, Some(&o.name), None);
            let mut event = self.base_event("RequestResponse", verb, &uri, &oref, code);
            event["requestObject"] = request;
            if forbidden {
                event["responseObject"] = status_object(403, "Forbidden", &o.name);
            } else {
                self.resource_version += 1;
                o.resource_version = self.resource_version;
                o.generation += 1;
                event["responseObject"] = Self::object_json(&o);
                if !dry_run {
                    self.objects[index] = o;
                }
            }
            event
        } else {
            // delete
            let o = self.objects[index].clone();
            let uri = Self::uri(kind, o.namespace, Some(&o.name), query);
            let oref = Self::object_ref(kind, o.namespace, Some(&o.name), None);
            let mut event = self.base_event("RequestResponse", "delete", &uri, &oref, 200);
            event["requestObject"] = json!({"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1", "propagationPolicy": "Background"});
            event["responseObject"] = json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": o.name, "group": kind.group, "kind": kind.resource, "uid": o.uid}
            });
            if !dry_run {
                self.objects.swap_remove(index);
            }
            event
        }
    }
}

fn status_object(code: u16, reason: &str, name: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("{reason}: {name}"), "reason": reason, "code": code
    })
}

/// Formats a timestamp as the API server does: RFC 3339, UTC, microseconds.
pub fn format_micros(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

impl Iterator for Generator {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        let event = if self
            .rng
            .random_bool(self.config.write_ratio.clamp(0.0, 1.0))
        {
            self.write()
        } else {
            self.read()
        };
        self.produced += 1;
        Some(event.to_string())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_population_index_matches_a_scan() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut population = Population::default();
        for step in 0..5_000u32 {
            if population.len() > 0 && rng.random_ratio(2, 5) {
                population.swap_remove(rng.random_range(0..population.len()));
            } else {
                population.push(Object {
                    kind: rng.random_range(0..KINDS.len()),
                    namespace: None,
                    name: format!("o{step}"),
                    uid: String::new(),
                    resource_version: 0,
                    generation: 1,
                    labels: BTreeMap::new(),
                    ports: Vec::new(),
                });
            }
            if step % 97 == 0 {
                for kind in 0..KINDS.len() {
                    let mut indexed = population.of_kind(kind).to_vec();
                    indexed.sort_unstable();
                    let scanned: Vec<usize> = (0..population.len())
                        .filter(|&i| population[i].kind == kind)
                        .collect();
                    assert_eq!(indexed, scanned, "kind {kind} at step {step}");
                }
            }
        }
    }

    use super::*;
    use auditrail_event::{EventType, classify, parse_line};

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let a: Vec<String> = Generator::new(GenConfig::default()).take(200).collect();
        let b: Vec<String> = Generator::new(GenConfig::default()).take(200).collect();
        assert_eq!(a, b);
        let c: Vec<String> = Generator::new(GenConfig {
            seed: 7,
            ..GenConfig::default()
        })
        .take(200)
        .collect();
        assert_ne!(a, c);
    }

    #[test]
    fn every_line_is_a_valid_event_and_the_mix_is_realistic() {
        let lines: Vec<String> = Generator::new(GenConfig::default()).take(5_000).collect();
        let mut verbs = BTreeMap::new();
        let mut types = BTreeMap::new();
        let mut last_time = None;
        let mut bytes = 0;
        for line in &lines {
            let parsed = parse_line(line.as_bytes()).expect("generated line parses");
            *verbs.entry(parsed.event.verb.to_string()).or_insert(0) += 1;
            *types
                .entry(classify(&parsed.event, EventType::Kube))
                .or_insert(0) += 1;
            let t = parsed.event.request_received_timestamp.expect("timestamp");
            assert!(last_time.is_none_or(|l| l <= t), "time never goes back");
            last_time = Some(t);
            bytes += line.len();
            if parsed.event.level.as_str() == "RequestResponse" {
                assert!(parsed.event.request_object.is_some());
                assert!(parsed.event.response_object.is_some());
                assert!(parsed.event.derived_name().is_some());
            }
        }
        for verb in [
            "get", "list", "watch", "create", "patch", "update", "delete",
        ] {
            assert!(
                verbs.get(verb).copied().unwrap_or(0) > 20,
                "{verb}: {verbs:?}"
            );
        }
        assert!(
            types[&EventType::Ee] > 500 && types[&EventType::Kube] > 500,
            "{types:?}"
        );
        let mean = bytes / lines.len();
        assert!((400..2_000).contains(&mean), "mean event size {mean} B");
    }

    #[test]
    fn some_events_share_an_audit_id_yet_differ() {
        let lines: Vec<String> = Generator::new(GenConfig::default()).take(5_000).collect();
        let mut seen: BTreeMap<String, &str> = BTreeMap::new();
        let mut shared = 0;
        for line in &lines {
            let id = parse_line(line.as_bytes())
                .unwrap()
                .event
                .audit_id
                .to_string();
            if let Some(previous) = seen.insert(id, line) {
                assert_ne!(previous, line);
                shared += 1;
            }
        }
        assert!(shared > 0);
    }
}
