//! Policies evaluated against the real audit events in `shared/data/real`.
//!
//! Every expectation is computed from the same lines through an independent
//! path (`serde_json::Value` and plain predicates), never by calling the
//! matcher, or derived by hand from a fixture with the reasoning in a comment.

use std::path::PathBuf;

use auditrail_event::parse_line;
use auditrail_policy::{
    AuditDecision, Level, Policy, RequestAttributes, RequestTarget, Stage, ValidatedPolicy,
};
use serde_json::Value;

#[path = "../../event/tests/support/real_data.rs"]
mod real_data;
use real_data::real_data_dir;

/// The fuzzing regression among the samples: not an event.
const FUZZ_REGRESSION: &str = "fal_01_003.json";

const K8S_DOCS_EXAMPLE: &str = include_str!("fixtures/audit-policy.yaml");

/// One non-empty line of a sample file.
struct Sample {
    file: String,
    /// 0-based index among the file's non-empty lines.
    index: usize,
    line: Vec<u8>,
}

/// Every non-empty line of every real sample, fuzzing regression included.
/// Panics (fails the test) if the data is missing.
fn samples() -> Vec<Sample> {
    let dir = real_data_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("falco-k8s-audit"))
        .unwrap_or_else(|e| {
            panic!(
                "real samples must exist at {}: {e}",
                dir.join("falco-k8s-audit").display()
            )
        })
        .map(|e| e.expect("directory entry").path())
        .collect();
    files.push(dir.join("elastic-integrations-test-audit.log"));
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let bytes =
            std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let file = path
            .file_name()
            .expect("file name")
            .to_string_lossy()
            .into_owned();
        let lines = bytes
            .split(|&b| b == b'\n')
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace));
        for (index, line) in lines.enumerate() {
            out.push(Sample {
                file: file.clone(),
                index,
                line: line.to_vec(),
            });
        }
    }
    assert!(
        out.len() > 50,
        "expected the real samples, found {} lines",
        out.len()
    );
    out
}

/// The samples that are audit events, read independently as JSON.
fn events() -> Vec<(Sample, Value)> {
    samples()
        .into_iter()
        .filter(|s| s.file != FUZZ_REGRESSION)
        .map(|s| {
            let value: Value = serde_json::from_slice(&s.line)
                .unwrap_or_else(|e| panic!("{}: not JSON: {e}", s.file));
            (s, value)
        })
        .collect()
}

fn str_at<'v>(v: &'v Value, pointer: &str) -> Option<&'v str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn attributes(sample: &Sample) -> RequestAttributes {
    let parsed = parse_line(&sample.line)
        .unwrap_or_else(|e| panic!("{}[{}]: {e}", sample.file, sample.index));
    RequestAttributes::from_event(&parsed.event)
}

#[test]
fn the_fuzzing_regression_is_refused() {
    let regression: Vec<Sample> = samples()
        .into_iter()
        .filter(|s| s.file == FUZZ_REGRESSION)
        .collect();
    assert_eq!(regression.len(), 1);
    assert!(parse_line(&regression[0].line).is_err());
}

#[test]
fn every_real_event_converts_like_an_independent_reading() {
    let events = events();
    assert!(events.len() >= 50, "{} events", events.len());
    for (sample, v) in &events {
        let at = format!("{}[{}]", sample.file, sample.index);
        let attrs = attributes(sample);

        assert_eq!(Some(attrs.verb.as_str()), str_at(v, "/verb"), "{at}");
        let user = attrs.user.as_ref().expect("every real event has a user");
        assert_eq!(
            Some(user.name.as_str()),
            str_at(v, "/user/username"),
            "{at}"
        );
        let groups: Vec<&str> = v
            .pointer("/user/groups")
            .and_then(Value::as_array)
            .map(|gs| gs.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        assert_eq!(user.groups, groups, "{at}");

        match (&attrs.target, v.get("objectRef")) {
            (RequestTarget::Resource(r), Some(object)) => {
                let field = |name: &str| object.get(name).and_then(Value::as_str).unwrap_or("");
                assert_eq!(r.resource, field("resource"), "{at}");
                assert!(!r.resource.is_empty(), "{at}");
                assert_eq!(r.namespace, field("namespace"), "{at}");
                assert_eq!(r.api_group, field("apiGroup"), "{at}");
                assert_eq!(r.subresource, field("subresource"), "{at}");
                // The API server had no name for a create of the resource itself.
                let creates_resource =
                    str_at(v, "/verb") == Some("create") && field("subresource").is_empty();
                let name = if creates_resource { "" } else { field("name") };
                assert_eq!(r.name, name, "{at}");
            }
            (RequestTarget::NonResource { path }, None) => {
                let uri = str_at(v, "/requestURI").expect("requestURI");
                assert_eq!(Some(path.as_str()), uri.split('?').next(), "{at}");
            }
            (target, object) => panic!("{at}: {target:?} for objectRef {object:?}"),
        }
    }
}

/// The compliance policy of the design: writes to the network-security
/// resources at RequestResponse (RequestReceived omitted), secrets and
/// configmaps at Metadata (never their content), nothing else.
const COMPLIANCE_POLICY: &str = r#"
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: RequestResponse
  omitStages: [RequestReceived]
  verbs: [create, update, patch, delete]
  resources:
  - group: ""
    resources: [pods, namespaces, serviceaccounts, endpoints]
  - group: networking.k8s.io
    resources: [networkpolicies]
  - group: projectcalico.org
    resources:
    - globalnetworkpolicies
    - networkpolicies
    - stagedglobalnetworkpolicies
    - stagednetworkpolicies
    - stagedkubernetesnetworkpolicies
    - globalnetworksets
    - networksets
    - tiers
    - hostendpoints
- level: Metadata
  resources:
  - group: ""
    resources: [secrets, configmaps]
- level: None
"#;

const CALICO_KINDS: [&str; 9] = [
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

/// What the compliance policy should decide for an event, by a plain reading
/// of its JSON: (level, omitted stages, index of the deciding rule).
fn compliance_expectation(v: &Value) -> (Level, Vec<Stage>, usize) {
    let catch_all = (Level::None, Vec::new(), 2);
    let Some(object) = v.get("objectRef") else {
        return catch_all;
    };
    let field = |name: &str| object.get(name).and_then(Value::as_str).unwrap_or("");
    // A listed resource never covers its subresources (pods/exec is not pods).
    if !field("subresource").is_empty() {
        return catch_all;
    }
    let (group, resource) = (field("apiGroup"), field("resource"));
    let write = matches!(
        str_at(v, "/verb"),
        Some("create" | "update" | "patch" | "delete")
    );
    let network_security = match group {
        "" => matches!(
            resource,
            "pods" | "namespaces" | "serviceaccounts" | "endpoints"
        ),
        "networking.k8s.io" => resource == "networkpolicies",
        "projectcalico.org" => CALICO_KINDS.contains(&resource),
        _ => false,
    };
    if write && network_security {
        (Level::RequestResponse, vec![Stage::RequestReceived], 0)
    } else if group.is_empty() && matches!(resource, "secrets" | "configmaps") {
        (Level::Metadata, Vec::new(), 1)
    } else {
        catch_all
    }
}

fn validated(src: &str) -> ValidatedPolicy {
    let (policy, warnings) = Policy::from_yaml_with_warnings(src).expect("policy loads");
    assert!(warnings.is_empty(), "{warnings:?}");
    policy.validate().expect("policy is valid")
}

#[test]
fn compliance_policy_on_every_real_event() {
    let policy = validated(COMPLIANCE_POLICY);
    let mut seen = [0_usize; 3];
    for (sample, v) in &events() {
        let (level, omit_stages, rule) = compliance_expectation(v);
        let decision = policy.evaluate(&attributes(sample));
        assert_eq!(
            decision,
            AuditDecision {
                level,
                omit_stages,
                omit_managed_fields: false,
                rule: Some(rule),
            },
            "{}[{}]",
            sample.file,
            sample.index
        );
        seen[rule] += 1;
    }
    // The real corpus exercises every outcome.
    assert!(seen.iter().all(|&n| n > 0), "outcomes per rule: {seen:?}");
}

/// The event on line `index` of `file`.
fn real(file: &str, index: usize) -> RequestAttributes {
    let sample = samples()
        .into_iter()
        .find(|s| s.file == file && s.index == index)
        .unwrap_or_else(|| panic!("sample {file}[{index}] is missing"));
    attributes(&sample)
}

/// The docs example omits RequestReceived policy-wide, so every decision,
/// whichever rule makes it, omits it; no rule sets omitManagedFields.
fn docs(level: Level, rule: usize) -> AuditDecision {
    AuditDecision {
        level,
        omit_stages: vec![Stage::RequestReceived],
        omit_managed_fields: false,
        rule: Some(rule),
    }
}

#[test]
fn docs_example_policy_on_selected_real_events() {
    let policy = validated(K8S_DOCS_EXAMPLE);
    let cases = [
        // `get` of pod default/my-pod: rule 0 lists "pods" with no verb or
        // namespace restriction, so even a read is RequestResponse. (That
        // cluster recorded it at Metadata: it did not run this policy.)
        (
            "elastic-integrations-test-audit.log",
            0,
            docs(Level::RequestResponse, 0),
        ),
        // `get` of a coordination.k8s.io lease: no rule names that group and
        // rule 7 only covers "" and extensions, so the catch-all rule 8 says
        // Metadata, which is what that cluster recorded.
        (
            "elastic-integrations-test-audit.log",
            1,
            docs(Level::Metadata, 8),
        ),
        // A replicaset-controller `create` of a pod with generateName: plain
        // "pods", rule 0, RequestResponse.
        (
            "create_nginx_pod_unprivileged.json",
            0,
            docs(Level::RequestResponse, 0),
        ),
        // `create` of pods/exec: rule 0's "pods" excludes subresources and
        // rule 1 lists only pods/log and pods/status; rules 2-6 are about
        // other resources or non-resource URLs; rule 7 takes the whole core
        // group at Request.
        ("exec_pod.json", 0, docs(Level::Request, 7)),
        // `create` of configmap default/my-config: rule 2 wants the name
        // controller-leader (a create has no name when matched), rule 5 only
        // kube-system; rule 6 covers configmaps elsewhere at Metadata.
        ("create_configmap.json", 0, docs(Level::Metadata, 6)),
        // `create` of a secret in kube-system: rule 5 is configmaps only, so
        // rule 6 (secrets and configmaps) says Metadata.
        (
            "create_kube_system_secret.json",
            0,
            docs(Level::Metadata, 6),
        ),
        // `create` of an extensions/v1beta1 deployment: rule 7 lists the
        // extensions group with all its resources, Request (also what the
        // minikube cluster recorded).
        ("create_deployment.json", 0, docs(Level::Request, 7)),
        // `create` of an rbac.authorization.k8s.io clusterrole: no rule names
        // that group, so the catch-all rule 8, Metadata.
        ("create_clusterrole.json", 0, docs(Level::Metadata, 8)),
    ];
    for (file, index, expected) in cases {
        assert_eq!(
            policy.evaluate(&real(file, index)),
            expected,
            "{file}[{index}]"
        );
    }
}

#[test]
fn docs_example_resource_names_rule_and_the_create_name() {
    // Rule 2 of the docs example drops configmap controller-leader. The only
    // way to know that name for a create is the body, which the API server
    // has not read when it evaluates the policy, so a create of that
    // configmap in kube-system is not dropped (rule 5, Request) while an
    // update of it is (rule 2, None). The same holds for the real
    // create_configmap.json event once renamed.
    let policy = validated(K8S_DOCS_EXAMPLE);
    let line =
        std::fs::read_to_string(real_data_dir().join("falco-k8s-audit/create_configmap.json"))
            .expect("sample present");
    let renamed = line
        .replace("\"my-config\"", "\"controller-leader\"")
        .replace("\"default\"", "\"kube-system\"");
    let create = parse_line(renamed.trim_end().as_bytes()).expect("still an event");
    assert_eq!(
        create
            .event
            .object_ref
            .as_ref()
            .and_then(|o| o.name.as_deref()),
        Some("controller-leader")
    );
    assert_eq!(
        policy.evaluate(&RequestAttributes::from_event(&create.event)),
        docs(Level::Request, 5)
    );
    let updated = renamed.replace("\"verb\":\"create\"", "\"verb\":\"update\"");
    assert_ne!(updated, renamed, "the sample's verb is create");
    let update = parse_line(updated.trim_end().as_bytes()).expect("still an event");
    assert_eq!(
        policy.evaluate(&RequestAttributes::from_event(&update.event)),
        docs(Level::None, 2)
    );
}
