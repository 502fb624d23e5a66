//! Properties of the calculator over generated policies: staged policies
//! never change a flag, every applied policy really selects its endpoint's
//! namespace, and the "ever" fold is order-free.

use auditrail_protection::{Ever, Flags, calculate};
use auditrail_replay::{Snapshot, State};
use jiff::Timestamp;
use proptest::prelude::*;
use serde_json::{Value, json};

fn object(kind: &str, api_version: &str, ns: Option<&str>, name: &str, labels: &Value) -> Value {
    let mut metadata = json!({"name": name, "labels": labels});
    if let Some(ns) = ns {
        metadata["namespace"] = json!(ns);
    }
    json!({"kind": kind, "apiVersion": api_version, "metadata": metadata})
}

fn cluster() -> Vec<Value> {
    let mut objects = vec![
        object("Namespace", "v1", None, "prod", &json!({"team": "prod"})),
        object("Namespace", "v1", None, "dev", &json!({"team": "dev"})),
        object(
            "HostEndpoint",
            "projectcalico.org/v3",
            None,
            "h",
            &json!({"role": "gw"}),
        ),
        object(
            "GlobalNetworkSet",
            "projectcalico.org/v3",
            None,
            "dns",
            &json!({"role": "dns"}),
        ),
    ];
    objects[3]["spec"] = json!({"nets": ["8.8.8.8/32"]});
    for (ns, name, app) in [
        ("prod", "web", "web"),
        ("prod", "db", "db"),
        ("dev", "client", "web"),
    ] {
        objects.push(object("Pod", "v1", Some(ns), name, &json!({"app": app})));
    }
    objects
}

fn state(objects: Vec<Value>) -> State {
    let snapshot = Snapshot {
        request_start: Timestamp::UNIX_EPOCH,
        request_completion: Timestamp::UNIX_EPOCH,
        objects,
    };
    State::from_snapshot(&snapshot).expect("valid generated objects")
}

fn selector() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "all()",
        "app == 'web'",
        "has(role)",
        "app != 'db'",
        "role == 'dns'",
    ])
}

fn peer() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({})),
        Just(json!({"nets": ["0.0.0.0/0"]})),
        Just(json!({"nets": ["10.0.0.0/8"]})),
        selector().prop_map(|s| json!({"selector": s})),
        selector().prop_map(|s| json!({"selector": s, "namespaceSelector": "global()"})),
        Just(json!({"namespaceSelector": "team == 'dev'"})),
    ]
}

fn rules() -> impl Strategy<Value = Vec<Value>> {
    let action = prop::sample::select(vec!["Allow", "Deny", "Pass"]);
    prop::collection::vec((action, peer()), 0..3).prop_map(|rules| {
        rules
            .into_iter()
            .map(|(action, peer)| json!({"action": action, "source": peer, "destination": peer}))
            .collect()
    })
}

/// A Calico policy spec of a random shape.
fn spec() -> impl Strategy<Value = Value> {
    let types = prop::sample::select(vec![
        vec![],
        vec!["Ingress"],
        vec!["Egress"],
        vec!["Ingress", "Egress"],
    ]);
    (selector(), types, rules(), rules()).prop_map(|(selector, types, ingress, egress)| {
        json!({"selector": selector, "types": types, "ingress": ingress, "egress": egress})
    })
}

/// Policies of the given kind, global or in namespace prod.
fn policies(kinds: [&'static str; 2]) -> impl Strategy<Value = Vec<Value>> {
    prop::collection::vec((any::<bool>(), spec()), 0..4).prop_map(move |specs| {
        specs
            .into_iter()
            .enumerate()
            .map(|(i, (global, spec))| {
                let (kind, ns) = if global {
                    (kinds[0], None)
                } else {
                    (kinds[1], Some("prod"))
                };
                let mut p = object(
                    kind,
                    "projectcalico.org/v3",
                    ns,
                    &format!("default.p{i}"),
                    &json!({}),
                );
                p["spec"] = spec;
                p
            })
            .collect()
    })
}

fn flags(objects: Vec<Value>) -> Vec<Flags> {
    calculate(&state(objects))
        .endpoints
        .iter()
        .map(|e| e.flags)
        .collect()
}

fn any_flags() -> impl Strategy<Value = Flags> {
    prop::array::uniform6(any::<bool>()).prop_map(|b| Flags {
        ingress_protected: b[0],
        egress_protected: b[1],
        ingress_from_internet: b[2],
        egress_to_internet: b[3],
        ingress_from_other_namespaces: b[4],
        egress_to_other_namespaces: b[5],
    })
}

proptest! {
    #[test]
    fn staged_policies_never_change_a_flag(
        enforced in policies(["GlobalNetworkPolicy", "NetworkPolicy"]),
        staged in policies(["StagedGlobalNetworkPolicy", "StagedNetworkPolicy"]),
    ) {
        let mut objects = cluster();
        objects.extend(enforced);
        let before = flags(objects.clone());
        objects.extend(staged);
        prop_assert_eq!(flags(objects), before);
    }

    #[test]
    fn an_enforced_policy_only_ever_protects_more(
        enforced in policies(["GlobalNetworkPolicy", "NetworkPolicy"]),
        more in policies(["GlobalNetworkPolicy", "NetworkPolicy"]),
    ) {
        let mut objects = cluster();
        objects.extend(enforced);
        let before = flags(objects.clone());
        // Renamed so they add to, not replace, the first ones.
        objects.extend(more.into_iter().map(|mut p| {
            let name = format!("{}-more", p["metadata"]["name"].as_str().unwrap_or(""));
            p["metadata"]["name"] = json!(name);
            p
        }));
        for (b, a) in before.iter().zip(flags(objects)) {
            prop_assert!(a.ingress_protected >= b.ingress_protected);
            prop_assert!(a.egress_protected >= b.egress_protected);
        }
    }

    #[test]
    fn ever_is_order_free(a in any_flags(), b in any_flags(), c in any_flags()) {
        prop_assert_eq!(a.ever(b), b.ever(a));
        prop_assert_eq!(a.ever(b).ever(c), a.ever(b.ever(c)));
        prop_assert_eq!(a.ever(a), a);
        prop_assert!(a.ever(b).ingress_protected <= a.ingress_protected);
        prop_assert!(a.ever(b).egress_to_internet >= a.egress_to_internet);
    }

    #[test]
    fn ever_over_instants_does_not_depend_on_their_order(
        first in policies(["GlobalNetworkPolicy", "NetworkPolicy"]),
        second in policies(["GlobalNetworkPolicy", "NetworkPolicy"]),
    ) {
        let at = |policies: Vec<Value>| {
            let mut objects = cluster();
            objects.extend(policies);
            calculate(&state(objects))
        };
        let (one, two) = (at(first), at(second));
        let fold = |calcs: [&auditrail_protection::Calculation; 2]| {
            let mut ever = Ever::new();
            for c in calcs {
                ever.add(c);
            }
            ever.finish()
                .into_iter()
                .map(|e| (e.id, e.flags))
                .collect::<Vec<_>>()
        };
        prop_assert_eq!(fold([&one, &two]), fold([&two, &one]));
    }
}
