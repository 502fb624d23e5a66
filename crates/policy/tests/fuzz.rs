//! Property-based fuzzing of audit policy loading, validation and
//! evaluation: mutations of real policies (the fixtures and the product's
//! profiles) as YAML and JSON, YAML's own structures (aliases, tags, block
//! and flow nesting), generated policies against generated requests, and
//! the requests behind mutated real events. Runs 256 cases per property by
//! default (fewer for the costly ones); `PROPTEST_CASES=100000 cargo test
//! -p auditrail-policy fuzz` runs more.

#[path = "../../event/tests/support/fuzz_input.rs"]
mod fuzz_input;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::OnceLock;

use auditrail_policy::{
    GroupResources, Level, LoadError, MAX_POLICY_VALUES, Policy, PolicyRule, RequestAttributes,
    ResourceAttributes, ValidatedPolicy,
};
use fuzz_input::{Mutation, config, event_line, json_value, mutation};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::Value;

/// The real policies: the fixtures and the product's profiles.
fn seeds() -> &'static [String] {
    static SEEDS: OnceLock<Vec<String>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let root = std::env::var_os("CARGO_MANIFEST_DIR")
            .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
        let mut paths = Vec::new();
        for dir in ["tests/fixtures", "../policy-gen/tests/golden"] {
            for entry in std::fs::read_dir(root.join(dir)).expect("policy seeds") {
                let path = entry.expect("dir entry").path();
                if path.extension().is_some_and(|e| e == "yaml") {
                    paths.push(path);
                }
            }
        }
        paths.sort();
        let seeds: Vec<String> = paths
            .iter()
            .map(|p| std::fs::read_to_string(p).expect("read seed"))
            .collect();
        assert!(seeds.len() >= 5, "policy seeds: {}", seeds.len());
        seeds
    })
}

fn seed_values() -> &'static [Value] {
    static VALUES: OnceLock<Vec<Value>> = OnceLock::new();
    VALUES.get_or_init(|| {
        seeds()
            .iter()
            .map(|s| serde_norway::from_str(s).expect("seeds are YAML"))
            .collect()
    })
}

fn validated_seeds() -> &'static [ValidatedPolicy] {
    static POLICIES: OnceLock<Vec<ValidatedPolicy>> = OnceLock::new();
    POLICIES.get_or_init(|| {
        seeds()
            .iter()
            .map(|s| {
                Policy::from_yaml(s)
                    .expect("seed loads")
                    .validate()
                    .expect("seed is valid")
            })
            .collect()
    })
}

/// YAML that matters to a YAML parser, inserted anywhere.
const YAML_SNIPPETS: &[&str] = &[
    "\n- - - - - - - - - - - - - - - - x\n",
    "\n  a: &a [x, y]\n  b: *a\n",
    "*a",
    "&a ",
    "<<: *a\n",
    "!!binary aGVsbG8=",
    "!!map ",
    "!!int x",
    "!Custom ",
    "? [a, b]\n: c\n",
    "\n---\n",
    "\n...\n",
    "%YAML 1.2\n",
    "\t",
    "|\n  text\n",
    ">-\n",
    ": ",
    "'",
    "\"",
    "#",
    "{",
    "[",
    ".nan",
    ".inf",
    "0x1F",
    "1e999",
    "~",
    "\u{feff}",
];

#[derive(Debug, Clone)]
enum Edit {
    Bytes(Mutation),
    Snippet(Index, &'static str),
    Indent(Index, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => mutation().prop_map(Edit::Bytes),
        2 => (any::<Index>(), prop::sample::select(YAML_SNIPPETS)).prop_map(|(i, s)| Edit::Snippet(i, s)),
        1 => (any::<Index>(), 1..200usize).prop_map(|(i, n)| Edit::Indent(i, n)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for edit in edits {
        match edit {
            Edit::Bytes(m) => m.apply(&mut bytes),
            Edit::Snippet(at, snippet) => {
                let at = at.index(bytes.len() + 1);
                bytes.splice(at..at, snippet.bytes());
            }
            Edit::Indent(at, n) => {
                let at = at.index(bytes.len() + 1);
                bytes.splice(at..at, std::iter::repeat_n(b' ', *n));
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A real policy's YAML after zero to four edits.
fn policy_yaml() -> impl Strategy<Value = String> {
    (any::<Index>(), prop::collection::vec(edit(), 0..4)).prop_map(|(seed, edits)| {
        let seeds = seeds();
        apply(&seeds[seed.index(seeds.len())], &edits)
    })
}

const RULE_FIELDS: &[&str] = &[
    "level",
    "users",
    "userGroups",
    "verbs",
    "resources",
    "namespaces",
    "nonResourceURLs",
    "omitStages",
    "omitManagedFields",
];

/// A real policy as JSON, with fields of its rules set to random JSON, then
/// byte mutations.
fn policy_json() -> impl Strategy<Value = String> {
    (
        any::<Index>(),
        prop::collection::vec(
            (
                any::<Index>(),
                prop::sample::select(RULE_FIELDS),
                json_value(),
            ),
            0..3,
        ),
        prop::collection::vec(mutation(), 0..3),
    )
        .prop_map(|(seed, sets, mutations)| {
            let values = seed_values();
            let mut doc = values[seed.index(values.len())].clone();
            if let Some(rules) = doc.get_mut("rules").and_then(Value::as_array_mut) {
                for (rule, field, value) in sets {
                    if rules.is_empty() {
                        break;
                    }
                    let i = rule.index(rules.len());
                    if let Some(rule) = rules[i].as_object_mut() {
                        rule.insert(field.to_owned(), value);
                    }
                }
            }
            let mut bytes = serde_json::to_vec(&doc).expect("JSON");
            for m in &mutations {
                m.apply(&mut bytes);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
}

/// Checks what loading `src` gives: a policy that survives validation,
/// evaluation and its own round trips, or an error with a message and, when
/// it has one, a line inside the text.
fn check_load(src: &str, loaded: Result<Policy, LoadError>) {
    let policy = match loaded {
        Err(err) => {
            assert!(!err.to_string().trim().is_empty());
            if let Some(line) = err.line() {
                // YAML breaks lines at "\r\n", "\n" and a lone "\r".
                let lines = src
                    .replace("\r\n", "\n")
                    .replace('\r', "\n")
                    .lines()
                    .count();
                assert!(line <= lines + 1, "line {line} of {lines}: {err}");
            }
            return;
        }
        Ok(policy) => policy,
    };
    assert!(!policy.rules.is_empty());
    let _ = policy.deprecation_warning();
    match policy.validate() {
        Err(errors) => {
            assert!(!errors.is_empty());
            assert!(!errors.to_string().trim().is_empty());
        }
        Ok(valid) => {
            for attrs in sample_requests() {
                check_decision(&valid, &attrs);
            }
        }
    }
    // `metadata` is kept verbatim but not compared: serde_json (without its
    // `float_roundtrip` feature) may read a float one unit in the last place
    // off, so a float in metadata can change by that much on a round trip.
    let without_metadata = |p: &Policy| Policy {
        metadata: None,
        ..p.clone()
    };
    let yaml = policy.to_yaml().expect("a loaded policy encodes");
    let again = Policy::from_yaml(&yaml).expect("its YAML loads");
    assert_eq!(
        without_metadata(&again),
        without_metadata(&policy),
        "YAML round trip of {yaml}"
    );
    let json = policy.to_json().expect("a loaded policy encodes");
    let again = Policy::from_json(&json).expect("its JSON loads");
    assert_eq!(
        without_metadata(&again),
        without_metadata(&policy),
        "JSON round trip of {json}"
    );
}

/// The first-match rule, checked against the rules one by one.
fn check_decision(policy: &ValidatedPolicy, attrs: &RequestAttributes) {
    let decision = policy.evaluate(attrs);
    let first = policy.rules().iter().position(|r| r.matches(attrs));
    assert_eq!(decision.rule, first, "{attrs:?}");
    match first {
        Some(i) => assert_eq!(decision.level, policy.rules()[i].level()),
        None => assert_eq!(decision.level, Level::None),
    }
    assert!(decision.omit_stages.windows(2).all(|w| w[0] < w[1]));
}

fn sample_requests() -> Vec<RequestAttributes> {
    vec![
        RequestAttributes::resource(
            "get",
            ResourceAttributes::new("", "pods")
                .in_namespace("default")
                .with_subresource("log"),
        )
        .with_user("alice", ["system:authenticated"]),
        RequestAttributes::resource(
            "create",
            ResourceAttributes::new("", "secrets")
                .in_namespace("kube-system")
                .with_name("x"),
        ),
        RequestAttributes::resource(
            "patch",
            ResourceAttributes::new("projectcalico.org", "globalnetworkpolicies").with_name("p"),
        )
        .with_user("system:kube-controller-manager", ["system:masters"]),
        RequestAttributes::non_resource("get", "/healthz/etcd"),
    ]
}

const WORDS: &[&str] = &[
    "",
    "*",
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "pods",
    "pods/*",
    "*/scale",
    "pods/log",
    "deployments",
    "apps",
    "projectcalico.org",
    "default",
    "kube-system",
    "/healthz*",
    "/healthz",
    "*",
    "/api",
    "system:nodes",
    "alice",
    "x",
    "é",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(WORDS).prop_map(str::to_owned),
        1 => ".{0,6}",
    ]
}

fn words() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(word(), 0..3)
}

fn rule() -> impl Strategy<Value = PolicyRule> {
    (
        prop::sample::select(&["None", "Metadata", "Request", "RequestResponse", "Loud", ""][..]),
        (words(), words(), words(), words(), words()),
        prop::collection::vec((word(), words(), words()), 0..3),
        prop::collection::vec(
            prop::sample::select(
                &[
                    "RequestReceived",
                    "ResponseStarted",
                    "ResponseComplete",
                    "Panic",
                    "Done",
                ][..],
            ),
            0..2,
        ),
        prop::option::of(any::<bool>()),
    )
        .prop_map(
            |(
                level,
                (users, user_groups, verbs, namespaces, non_resource_urls),
                resources,
                omit,
                omf,
            )| PolicyRule {
                level: level.to_owned(),
                users,
                user_groups,
                verbs,
                resources: resources
                    .into_iter()
                    .map(|(group, resources, resource_names)| GroupResources {
                        group,
                        resources,
                        resource_names,
                    })
                    .collect(),
                namespaces,
                non_resource_urls,
                omit_stages: omit.into_iter().map(str::to_owned).collect(),
                omit_managed_fields: omf,
            },
        )
}

fn request() -> impl Strategy<Value = RequestAttributes> {
    let user = prop::option::of((word(), words()));
    let target = prop_oneof![
        (word(), word(), word(), word(), word()).prop_map(|(g, r, ns, sub, name)| {
            auditrail_policy::RequestTarget::Resource(
                ResourceAttributes::new(g, r)
                    .in_namespace(ns)
                    .with_subresource(sub)
                    .with_name(name),
            )
        }),
        word().prop_map(|path| auditrail_policy::RequestTarget::NonResource { path }),
    ];
    (user, word(), target).prop_map(|(user, verb, target)| RequestAttributes {
        user: user.map(|(name, groups)| auditrail_policy::UserInfo { name, groups }),
        verb,
        target,
    })
}

proptest! {
    #![proptest_config(config(256))]

    /// Mutated real policies, as YAML.
    #[test]
    fn fuzz_policy_yaml(src in policy_yaml()) {
        check_load(&src, Policy::from_yaml(&src));
        let _ = Policy::from_yaml_with_warnings(&src);
    }

    /// Mutated real policies, as JSON, with random values in rule fields.
    #[test]
    fn fuzz_policy_json(src in policy_json()) {
        check_load(&src, Policy::from_json(&src));
        check_load(&src, Policy::from_yaml(&src));
    }

    /// Generated policies, valid or not, against generated requests: the
    /// decision is the first rule that matches, with its level.
    #[test]
    fn fuzz_policy_evaluate(
        rules in prop::collection::vec(rule(), 1..5),
        requests in prop::collection::vec(request(), 1..6),
    ) {
        let policy = Policy::new(rules);
        let yaml = policy.to_yaml().expect("encodes");
        check_load(&yaml, Policy::from_yaml(&yaml));
        if let Ok(valid) = policy.validate() {
            for attrs in &requests {
                check_decision(&valid, attrs);
            }
        }
    }

    /// The requests behind mutated real events, against the real policies.
    #[test]
    fn fuzz_policy_from_event(line in event_line()) {
        if let Ok(parsed) = auditrail_event::parse_line(&line) {
            let attrs = RequestAttributes::from_event(&parsed.event);
            for policy in validated_seeds() {
                check_decision(policy, &attrs);
            }
        }
    }
}

proptest! {
    #![proptest_config(config(64))]

    /// Anchors and aliases nested `levels` deep, `width` aliases each, over
    /// a base of `base` values, expanding to at most about 50,000 values:
    /// loaded, with every alias expanded. (Expansions past the bound are
    /// refused; `found::nested_aliases_are_refused_without_expanding_them`
    /// checks that once, as each such case costs seconds in the dev profile.)
    #[test]
    fn fuzz_policy_aliases(base in 1..100usize, width in 1..8usize, levels in 0..4usize) {
        let src = alias_bomb(base, width, levels);
        let policy = Policy::from_yaml(&src).expect("a small expansion loads");
        let metadata = policy.metadata.expect("metadata");
        let last = metadata[format!("a{levels}")].as_array().expect("a list").len();
        prop_assert_eq!(last, if levels == 0 { base } else { width });
    }
}

/// A policy whose metadata holds `base` values under `&a0`, then `levels`
/// anchors each repeating the previous one `width` times.
fn alias_bomb(base: usize, width: usize, levels: usize) -> String {
    let mut src = String::from("apiVersion: audit.k8s.io/v1\nkind: Policy\nmetadata:\n  a0: &a0 [");
    src.push_str(&vec!["x"; base].join(","));
    src.push_str("]\n");
    for i in 1..=levels {
        let aliases = vec![format!("*a{}", i - 1); width].join(",");
        writeln!(src, "  a{i}: &a{i} [{aliases}]").expect("a String takes text");
    }
    src.push_str("rules:\n- level: None\n");
    src
}

/// Regression inputs found while fuzzing, as plain tests.
mod found {
    use super::*;

    /// Found while fuzzing anchors and aliases: 4 KB of nested aliases expanded to
    /// 200 million values (over a minute and gigabytes) before anything
    /// was checked. The provisioner's ValidatePolicy takes policy text from
    /// any client.
    #[test]
    fn nested_aliases_are_refused_without_expanding_them() {
        let src = alias_bomb(2000, 10, 5);
        assert!(src.len() < 5000);
        let started = std::time::Instant::now();
        let err = Policy::from_yaml(&src).expect_err("a bomb");
        assert_eq!(
            err,
            LoadError::TooManyValues {
                max: MAX_POLICY_VALUES
            }
        );
        assert!(err.to_string().contains("expands to more than"), "{err}");
        assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
    }

    /// Aliases a person writes to reuse a list still load.
    #[test]
    fn ordinary_aliases_load() {
        let src = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  verbs: &reads [get, list, watch]\n- level: Metadata\n  verbs: *reads\n";
        let policy = Policy::from_yaml(src).expect("loads");
        assert_eq!(policy.rules[1].verbs, ["get", "list", "watch"]);
    }
}
