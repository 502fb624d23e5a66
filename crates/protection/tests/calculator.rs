//! The calculator on hand-made clusters: the Kubernetes documentation's
//! NetworkPolicy examples and Calico cases (tiers, order, global and staged
//! policies, service-account and namespace selectors, network sets, host
//! endpoints), each with the flags it must give.

use auditrail_protection::{
    Calculation, EndpointKind, EndpointReport, Ever, Flags, PolicyError, calculate,
};
use auditrail_replay::{Snapshot, State};
use jiff::Timestamp;
use serde_json::{Value, json};

fn meta(ns: Option<&str>, name: &str, labels: &Value) -> Value {
    let mut m = json!({"name": name, "labels": labels, "resourceVersion": "1"});
    if let Some(ns) = ns {
        m["namespace"] = json!(ns);
    }
    m
}

fn namespace(name: &str, labels: &Value) -> Value {
    json!({"kind": "Namespace", "apiVersion": "v1", "metadata": meta(None, name, labels)})
}

fn pod(ns: &str, name: &str, labels: &Value, sa: &str) -> Value {
    json!({"kind": "Pod", "apiVersion": "v1", "metadata": meta(Some(ns), name, labels),
           "spec": {"serviceAccountName": sa}})
}

fn service_account(ns: &str, name: &str, labels: &Value) -> Value {
    json!({"kind": "ServiceAccount", "apiVersion": "v1", "metadata": meta(Some(ns), name, labels)})
}

fn knp(ns: &str, name: &str, spec: &Value) -> Value {
    json!({"kind": "NetworkPolicy", "apiVersion": "networking.k8s.io/v1",
           "metadata": meta(Some(ns), name, &json!({})), "spec": spec})
}

fn calico(kind: &str, ns: Option<&str>, name: &str, spec: &Value) -> Value {
    json!({"kind": kind, "apiVersion": "projectcalico.org/v3",
           "metadata": meta(ns, name, &json!({})), "spec": spec})
}

fn cnp(ns: &str, name: &str, spec: &Value) -> Value {
    calico("NetworkPolicy", Some(ns), name, spec)
}

fn gnp(name: &str, spec: &Value) -> Value {
    calico("GlobalNetworkPolicy", None, name, spec)
}

/// Three namespaces (prod, dev, other), pods prod/web (service account
/// web-sa, labelled role=frontend), prod/db and dev/client.
fn base() -> Vec<Value> {
    vec![
        namespace("prod", &json!({"team": "prod"})),
        namespace("dev", &json!({"team": "dev", "project": "myproject"})),
        namespace("other", &json!({})),
        pod(
            "prod",
            "web",
            &json!({"app": "web", "role": "frontend"}),
            "web-sa",
        ),
        pod("prod", "db", &json!({"app": "db", "role": "db"}), "default"),
        pod(
            "dev",
            "client",
            &json!({"app": "client", "role": "frontend"}),
            "default",
        ),
        service_account("prod", "web-sa", &json!({"role": "frontend"})),
    ]
}

fn state(extra: Vec<Value>) -> State {
    let mut objects = base();
    objects.extend(extra);
    let snapshot = Snapshot {
        request_start: Timestamp::UNIX_EPOCH,
        request_completion: Timestamp::UNIX_EPOCH,
        objects,
    };
    State::from_snapshot(&snapshot).expect("valid test objects")
}

/// `in[PIN] out[PIN]`: Protected, Internet, other Namespaces; `-` when not.
fn show(flags: Flags) -> String {
    let c = |b: bool, ch: char| if b { ch } else { '-' };
    format!(
        "in[{}{}{}] out[{}{}{}]",
        c(flags.ingress_protected, 'P'),
        c(flags.ingress_from_internet, 'I'),
        c(flags.ingress_from_other_namespaces, 'N'),
        c(flags.egress_protected, 'P'),
        c(flags.egress_to_internet, 'I'),
        c(flags.egress_to_other_namespaces, 'N'),
    )
}

fn endpoint<'a>(calc: &'a Calculation, ns: &str, name: &str) -> &'a EndpointReport {
    calc.endpoints
        .iter()
        .find(|e| e.id.namespace == ns && e.id.name == name)
        .unwrap_or_else(|| panic!("no endpoint {ns}/{name}"))
}

fn flags_of(calc: &Calculation, ns: &str, name: &str) -> String {
    show(endpoint(calc, ns, name).flags)
}

fn policies_of(calc: &Calculation, ns: &str, name: &str) -> Vec<String> {
    endpoint(calc, ns, name)
        .applied_policies
        .iter()
        .map(|a| {
            let p = &a.policy;
            let staged = if a.enforced { "" } else { " (staged)" };
            format!("{}:{}{}", p.tier, p.name, staged)
        })
        .collect()
}

const OPEN: &str = "in[-IN] out[-IN]";

/// (case, policies, [(namespace, pod, expected flags)]).
type Case = (
    &'static str,
    Vec<Value>,
    Vec<(&'static str, &'static str, &'static str)>,
);

fn check(cases: Vec<Case>) {
    for (name, policies, expected) in cases {
        let calc = calculate(&state(policies));
        assert!(calc.warnings.is_empty(), "{name}: {:?}", calc.warnings);
        for (ns, pod, want) in expected {
            assert_eq!(flags_of(&calc, ns, pod), want, "{name}: {ns}/{pod}");
        }
    }
}

#[test]
#[allow(clippy::too_many_lines)] // a table of cases
fn kubernetes_documentation_examples() {
    check(vec![
        (
            "no policy: everything open",
            vec![],
            vec![("prod", "web", OPEN), ("dev", "client", OPEN)],
        ),
        (
            "default deny ingress",
            vec![knp(
                "prod",
                "default-deny-ingress",
                &json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
            )],
            vec![
                ("prod", "web", "in[P--] out[-IN]"),
                ("prod", "db", "in[P--] out[-IN]"),
                ("dev", "client", OPEN),
            ],
        ),
        (
            "default deny egress",
            vec![knp(
                "prod",
                "default-deny-egress",
                &json!({"podSelector": {}, "policyTypes": ["Egress"]}),
            )],
            vec![("prod", "web", "in[-IN] out[P--]")],
        ),
        (
            "allow all ingress",
            vec![knp(
                "prod",
                "allow-all-ingress",
                &json!({"podSelector": {}, "ingress": [{}], "policyTypes": ["Ingress"]}),
            )],
            vec![("prod", "web", "in[PIN] out[-IN]")],
        ),
        (
            "allow all egress",
            vec![knp(
                "prod",
                "allow-all-egress",
                &json!({"podSelector": {}, "egress": [{}], "policyTypes": ["Egress"]}),
            )],
            vec![("prod", "web", "in[-IN] out[PIN]")],
        ),
        (
            "the documentation's test-network-policy: ipBlock with except, namespace and pod peers",
            vec![knp(
                "prod",
                "test-network-policy",
                &json!({
                    "podSelector": {"matchLabels": {"role": "db"}},
                    "policyTypes": ["Ingress", "Egress"],
                    "ingress": [{
                        "from": [
                            {"ipBlock": {"cidr": "172.17.0.0/16", "except": ["172.17.1.0/24"]}},
                            {"namespaceSelector": {"matchLabels": {"project": "myproject"}}},
                            {"podSelector": {"matchLabels": {"role": "frontend"}}}
                        ],
                        "ports": [{"protocol": "TCP", "port": 6379}]
                    }],
                    "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/24"}}], "ports": [{"protocol": "TCP", "port": 5978}]}]
                }),
            )],
            // dev is labelled project=myproject: another namespace.
            vec![("prod", "db", "in[P-N] out[P--]"), ("prod", "web", OPEN)],
        ),
        (
            "allow from the own namespace only (namespaceSelector matching it)",
            vec![knp(
                "prod",
                "same-ns",
                &json!({"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "prod"}}}]}]}),
            )],
            vec![("prod", "web", "in[P--] out[-IN]")],
        ),
        (
            "allow from every namespace (empty namespaceSelector)",
            vec![knp(
                "prod",
                "all-ns",
                &json!({"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}}]}]}),
            )],
            vec![("prod", "web", "in[P-N] out[-IN]")],
        ),
        (
            "ipBlock of the whole internet except private ranges",
            vec![knp(
                "prod",
                "internet",
                &json!({"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]}]}),
            )],
            vec![("prod", "web", "in[PI-] out[-IN]")],
        ),
        (
            "ipBlock whose public part is all excepted",
            vec![knp(
                "prod",
                "no-internet",
                &json!({"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "8.8.8.0/24", "except": ["8.8.8.0/25", "8.8.8.128/25"]}}]}]}),
            )],
            vec![("prod", "web", "in[P--] out[-IN]")],
        ),
        (
            "egress rules without policyTypes: Ingress is still implied",
            vec![knp(
                "prod",
                "egress-rules",
                &json!({"podSelector": {}, "egress": [{"to": [{"podSelector": {}}]}]}),
            )],
            vec![("prod", "web", "in[P--] out[P--]")],
        ),
        (
            "egress-only policy (policyTypes Egress)",
            vec![knp(
                "prod",
                "egress-only",
                &json!({"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [{"ipBlock": {"cidr": "1.1.1.1/32"}}]}]}),
            )],
            vec![("prod", "web", "in[-IN] out[PI-]")],
        ),
        (
            "matchExpressions select some pods only",
            vec![knp(
                "prod",
                "not-db",
                &json!({"podSelector": {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["db"]}]}}),
            )],
            vec![("prod", "web", "in[P--] out[-IN]"), ("prod", "db", OPEN)],
        ),
    ]);
}

#[test]
#[allow(clippy::too_many_lines)] // a table of cases
fn calico_policies() {
    let gns = |name: &str, nets: &[&str]| {
        json!({"kind": "GlobalNetworkSet", "apiVersion": "projectcalico.org/v3",
               "metadata": meta(None, name, &json!({"type": name})), "spec": {"nets": nets}})
    };
    check(vec![
        (
            "global policy with an allow from anywhere",
            vec![gnp(
                "default.allow-in",
                &json!({"selector": "all()", "ingress": [{"action": "Allow"}]}),
            )],
            vec![
                ("prod", "web", "in[PIN] out[-IN]"),
                ("dev", "client", "in[PIN] out[-IN]"),
            ],
        ),
        (
            "types default: only egress rules means Egress only",
            vec![gnp(
                "default.egress",
                &json!({"egress": [{"action": "Allow", "destination": {"nets": ["10.0.0.0/8"]}}]}),
            )],
            vec![("prod", "web", "in[-IN] out[P--]")],
        ),
        (
            "types default: no rules means Ingress (deny all)",
            vec![gnp("default.deny", &json!({"selector": "app == 'web'"}))],
            vec![("prod", "web", "in[P--] out[-IN]"), ("prod", "db", OPEN)],
        ),
        (
            "deny rules admit nothing",
            vec![cnp(
                "prod",
                "default.deny-in",
                &json!({"types": ["Ingress"], "ingress": [{"action": "Deny"}]}),
            )],
            vec![("prod", "web", "in[P--] out[-IN]"), ("dev", "client", OPEN)],
        ),
        (
            "staged policies never enforce",
            vec![
                calico(
                    "StagedGlobalNetworkPolicy",
                    None,
                    "default.deny-all",
                    &json!({"selector": "all()", "types": ["Ingress", "Egress"]}),
                ),
                calico(
                    "StagedNetworkPolicy",
                    Some("prod"),
                    "default.deny",
                    &json!({"types": ["Ingress"]}),
                ),
                json!({"kind": "StagedKubernetesNetworkPolicy", "apiVersion": "projectcalico.org/v3",
                       "metadata": meta(Some("prod"), "deny", &json!({})),
                       "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}),
            ],
            vec![("prod", "web", OPEN)],
        ),
        (
            "serviceAccountSelector",
            vec![cnp(
                "prod",
                "default.frontends",
                &json!({"serviceAccountSelector": "role == 'frontend'", "types": ["Ingress"]}),
            )],
            vec![("prod", "web", "in[P--] out[-IN]"), ("prod", "db", OPEN)],
        ),
        (
            "namespaceSelector of a global policy",
            vec![gnp(
                "default.dev",
                &json!({"namespaceSelector": "team == 'dev'", "types": ["Egress"]}),
            )],
            vec![("dev", "client", "in[-IN] out[P--]"), ("prod", "web", OPEN)],
        ),
        (
            "rule namespaceSelector admitting another namespace",
            vec![cnp(
                "prod",
                "default.from-dev",
                &json!({"ingress": [{"action": "Allow", "source": {"namespaceSelector": "team == 'dev'", "selector": "all()"}}]}),
            )],
            vec![("prod", "web", "in[P-N] out[-IN]")],
        ),
        (
            "rule selector in a namespaced policy stays in its namespace",
            vec![cnp(
                "prod",
                "default.from-frontends",
                &json!({"ingress": [{"action": "Allow", "source": {"selector": "role == 'frontend'"}}]}),
            )],
            vec![("prod", "db", "in[P--] out[-IN]")],
        ),
        (
            "rule selector in a global policy reaches every namespace",
            vec![gnp(
                "default.from-frontends",
                &json!({"selector": "app == 'db'", "ingress": [{"action": "Allow", "source": {"selector": "role == 'frontend'"}}]}),
            )],
            // dev/client is a frontend too.
            vec![("prod", "db", "in[P-N] out[-IN]")],
        ),
        (
            "rule serviceAccounts by name",
            vec![gnp(
                "default.from-web-sa",
                &json!({"selector": "app == 'db'", "ingress": [{"action": "Allow", "source": {"serviceAccounts": {"names": ["web-sa"]}}}]}),
            )],
            vec![("prod", "db", "in[P--] out[-IN]")],
        ),
        (
            "egress to a public GlobalNetworkSet",
            vec![
                gns("public-dns", &["8.8.8.8/32"]),
                gnp(
                    "default.dns",
                    &json!({"types": ["Egress"], "egress": [{"action": "Allow",
                            "destination": {"selector": "type == 'public-dns'", "namespaceSelector": "global()"}}]}),
                ),
            ],
            vec![("prod", "web", "in[-IN] out[PI-]")],
        ),
        (
            "egress to a private GlobalNetworkSet",
            vec![
                gns("corp", &["10.0.0.0/8", "fd00::/8"]),
                gnp(
                    "default.corp",
                    &json!({"types": ["Egress"], "egress": [{"action": "Allow",
                            "destination": {"selector": "type == 'corp'", "namespaceSelector": "global()"}}]}),
                ),
            ],
            vec![("prod", "web", "in[-IN] out[P--]")],
        ),
        (
            "notNets taking out the public part",
            vec![gnp(
                "default.private-only",
                &json!({"types": ["Egress"], "egress": [{"action": "Allow",
                        "destination": {"nets": ["0.0.0.0/0"], "notNets": ["0.0.0.0/1", "128.0.0.0/1"]}}]}),
            )],
            vec![("prod", "web", "in[-IN] out[P--]")],
        ),
    ]);
}

#[test]
fn tiers_and_order_decide_the_list() {
    let calc = calculate(&state(vec![
        json!({"kind": "Tier", "apiVersion": "projectcalico.org/v3",
               "metadata": meta(None, "security", &json!({})), "spec": {"order": 100}}),
        json!({"kind": "Tier", "apiVersion": "projectcalico.org/v3",
               "metadata": meta(None, "platform", &json!({})), "spec": {"order": 200}}),
        gnp("platform.b", &json!({"tier": "platform", "order": 1})),
        gnp("security.z", &json!({"tier": "security", "order": 10})),
        gnp("security.a", &json!({"tier": "security", "order": 20})),
        gnp("security.no-order", &json!({"tier": "security"})),
        cnp("prod", "default.late", &json!({"order": 2000})),
        cnp("prod", "default.early", &json!({"order": 5})),
        knp("prod", "k8s", &json!({"podSelector": {}})),
        calico(
            "StagedGlobalNetworkPolicy",
            None,
            "security.staged",
            &json!({"tier": "security", "order": 15}),
        ),
    ]));
    assert_eq!(
        policies_of(&calc, "prod", "web"),
        [
            "security:security.z",
            "security:security.staged (staged)",
            "security:security.a",
            "security:security.no-order",
            "platform:platform.b",
            "default:default.early",
            ":k8s",
            "default:default.late",
        ]
    );
    // Kubernetes policies are listed without a tier, in their own group.
    let k8s = &endpoint(&calc, "prod", "web").applied_policies[6];
    assert_eq!(
        (k8s.policy.api_group.as_str(), k8s.policy.kind.as_str()),
        ("networking.k8s.io", "NetworkPolicy")
    );
    // dev/client is selected by the global ones only.
    assert_eq!(policies_of(&calc, "dev", "client").len(), 5);
}

#[test]
fn host_endpoints_only_take_global_policies() {
    let hep = json!({"kind": "HostEndpoint", "apiVersion": "projectcalico.org/v3",
                     "metadata": meta(None, "node1-eth0", &json!({"role": "gateway"})), "spec": {"node": "node1"}});
    let auto = json!({"kind": "HostEndpoint", "apiVersion": "projectcalico.org/v3",
                      "metadata": meta(None, "node1-auto", &json!({})),
                      "spec": {"node": "node1", "interfaceName": "*", "profiles": ["projectcalico-default-allow"]}});
    let calc = calculate(&state(vec![
        hep,
        auto,
        gnp(
            "default.gateways",
            &json!({"selector": "role == 'gateway'", "types": ["Ingress"],
                                         "ingress": [{"action": "Allow", "source": {"namespaceSelector": "all()"}}]}),
        ),
        // A namespaced policy selecting everything in prod never selects a host endpoint.
        cnp("prod", "default.all", &json!({"types": ["Egress"]})),
        // A global policy with a namespaceSelector selects namespaced endpoints only.
        gnp(
            "default.ns-only",
            &json!({"namespaceSelector": "has(team)", "types": ["Egress"]}),
        ),
    ]));
    let hep = |name: &str| {
        calc.endpoints
            .iter()
            .find(|e| e.id.kind == EndpointKind::HostEndpoint && e.id.name == name)
            .unwrap_or_else(|| panic!("the host endpoint {name} is an endpoint"))
    };
    let gateway = hep("node1-eth0");
    assert_eq!(gateway.id.namespace, "");
    // No policy for its egress, and no profile: denied, not open.
    assert_eq!(show(gateway.flags), "in[P-N] out[---]");
    assert_eq!(gateway.applied_policies.len(), 1);
    // An automatic host endpoint's default-allow profile lets through
    // what no policy governs.
    assert_eq!(show(hep("node1-auto").flags), OPEN);
    assert!(hep("node1-auto").applied_policies.is_empty());
    // dev/client is selected by the rule-less egress global policy too.
    assert_eq!(flags_of(&calc, "dev", "client"), "in[-IN] out[P--]");
}

#[test]
fn host_networked_pods_are_no_endpoints_and_services_are_listed() {
    let calc = calculate(&state(vec![
        json!({"kind": "Pod", "apiVersion": "v1", "metadata": meta(Some("prod"), "node-agent", &json!({})),
               "spec": {"hostNetwork": true}}),
        json!({"kind": "Endpoints", "apiVersion": "v1", "metadata": meta(Some("prod"), "web-svc", &json!({})),
               "subsets": [{"addresses": [{"ip": "10.1.1.1", "targetRef": {"kind": "Pod", "name": "web", "namespace": "prod"}}],
                            "notReadyAddresses": [{"ip": "10.1.1.2", "targetRef": {"kind": "Pod", "name": "db", "namespace": "prod"}}]}]}),
        json!({"kind": "Endpoints", "apiVersion": "v1", "metadata": meta(Some("prod"), "all", &json!({})),
               "subsets": [{"addresses": [{"ip": "10.1.1.1", "targetRef": {"kind": "Pod", "name": "web", "namespace": "prod"}}]}]}),
    ]));
    assert_eq!(calc.endpoints.len(), 3);
    let services = |ns, name| -> Vec<String> {
        endpoint(&calc, ns, name)
            .services
            .iter()
            .map(|s| format!("{}/{}", s.namespace, s.name))
            .collect()
    };
    assert_eq!(services("prod", "web"), ["prod/all", "prod/web-svc"]);
    assert_eq!(services("prod", "db"), ["prod/web-svc"]);
    assert!(services("dev", "client").is_empty());
    assert_eq!(endpoint(&calc, "prod", "web").service_account, "web-sa");
    assert_eq!(endpoint(&calc, "prod", "db").service_account, "default");
}

#[test]
fn an_unreadable_policy_is_reported_and_left_out() {
    let calc = calculate(&state(vec![
        gnp("default.bad", &json!({"selector": "app == "})),
        knp(
            "prod",
            "bad-cidr",
            &json!({"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/99"}}]}]}),
        ),
        gnp("default.good", &json!({"selector": "app == 'web'"})),
    ]));
    let messages: Vec<String> = calc.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "NetworkPolicy.networking.k8s.io prod/bad-cidr: spec.ingress[0].from[0].ipBlock.cidr: \"10.0.0.0/99\" is not a CIDR or an IP address",
            "GlobalNetworkPolicy.projectcalico.org default.bad (tier default): spec.selector: selector \"app == \" at 7: expected a quoted value",
        ]
    );
    assert!(matches!(calc.warnings[1], PolicyError::Selector { .. }));
    assert_eq!(policies_of(&calc, "prod", "web"), ["default:default.good"]);
    assert_eq!(flags_of(&calc, "prod", "web"), "in[P--] out[-IN]");
}

#[test]
fn ever_counts_unprotected_at_any_instant() {
    let protected = calculate(&state(vec![knp(
        "prod",
        "deny",
        &json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
    )]));
    let open = calculate(&state(vec![knp(
        "prod",
        "egress-only",
        &json!({"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]}),
    )]));
    assert_eq!(flags_of(&protected, "prod", "web"), "in[P--] out[P--]");
    assert_eq!(flags_of(&open, "prod", "web"), "in[-IN] out[PIN]");
    for order in [[&protected, &open], [&open, &protected]] {
        let mut ever = Ever::new();
        for calc in order {
            ever.add(calc);
        }
        let endpoints = ever.finish();
        let web = endpoints
            .iter()
            .find(|e| e.id.name == "web")
            .expect("web was seen");
        assert_eq!(show(web.flags), "in[-IN] out[PIN]");
        let names: Vec<&str> = web
            .applied_policies
            .iter()
            .map(|a| a.policy.name.as_str())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
    // Protected at every instant stays protected.
    let mut ever = Ever::new();
    ever.add(&protected);
    ever.add(&protected);
    let all = ever.finish();
    assert!(
        all.iter()
            .filter(|e| e.id.namespace == "prod")
            .all(|e| e.flags.ingress_protected)
    );
    // An endpoint that exists at one instant only is still in scope.
    let mut ever = Ever::new();
    ever.add(&Calculation::default());
    ever.add(&open);
    assert_eq!(ever.finish().len(), 3);
}
