//! The compliance lint on hand-written policies: each check finds what it
//! should and nothing else.

use auditrail_policy::Policy;
use auditrail_policy_gen::{Finding, LintCode, Severity, lint};

fn findings(rules: &str) -> Vec<Finding> {
    let yaml = format!(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n{rules}"
    );
    lint(
        &Policy::from_yaml(&yaml)
            .expect("loads")
            .validate()
            .expect("validates"),
    )
}

fn codes(findings: &[Finding]) -> Vec<(Option<usize>, &'static str)> {
    findings
        .iter()
        .map(|f| (f.rule_index, f.code.as_str()))
        .collect()
}

const COMPLIANCE: &str = "- level: RequestResponse
  verbs: [create, patch, update, delete]
  resources:
  - group: networking.k8s.io
    resources: [networkpolicies]
  - group: extensions
    resources: [networkpolicies]
  - group: \"\"
    resources: [pods, namespaces, serviceaccounts, endpoints]
";

#[test]
fn the_minimum_policy_is_clean() {
    assert_eq!(findings(COMPLIANCE), Vec::new());
}

#[test]
fn writes_below_request_response_are_reported_per_resource() {
    let rules = format!(
        "- level: Metadata\n  verbs: [delete]\n  resources:\n  - group: \"\"\n    resources: [pods]\n{COMPLIANCE}"
    );
    let found = findings(&rules);
    assert_eq!(
        codes(&found),
        vec![(Some(0), "compliance-writes-not-captured")]
    );
    assert_eq!(found[0].severity, Severity::Warning);
    assert_eq!(
        found[0].message,
        "writes to pods (core group) are not all recorded at RequestResponse: delete at Metadata (rule 0); compliance needs create, patch, update and delete at RequestResponse"
    );
    let missing = findings("- level: Metadata\n");
    let messages: Vec<&str> = missing.iter().map(|f| f.message.as_str()).collect();
    assert_eq!(missing.len(), 6, "{messages:#?}");
    assert!(
        missing
            .iter()
            .all(|f| f.code == LintCode::ComplianceWritesNotCaptured && f.rule_index == Some(0))
    );
    let none = findings("- level: None\n  nonResourceURLs: [/healthz]\n");
    assert!(
        none[0]
            .message
            .contains("create not recorded (no rule matches)"),
        "{:?}",
        none[0]
    );
}

#[test]
fn omitting_response_complete_loses_the_write() {
    let rules = COMPLIANCE.replacen("  verbs:", "  omitStages: [ResponseComplete]\n  verbs:", 1);
    let found = findings(&rules);
    assert_eq!(found.len(), 6);
    assert!(
        found[0]
            .message
            .contains("create without ResponseComplete (rule 0)")
    );
}

#[test]
fn a_calico_policy_is_checked_for_the_calico_resources() {
    let calico = "- level: RequestResponse
  verbs: [create, patch, update, delete]
  resources:
  - group: projectcalico.org
    resources: [globalnetworkpolicies, networkpolicies, stagedglobalnetworkpolicies, stagednetworkpolicies, stagedkubernetesnetworkpolicies, globalnetworksets, networksets, tiers]
";
    let found = findings(calico);
    assert_eq!(
        codes(&found),
        vec![(None, "compliance-writes-not-captured")]
    );
    assert!(
        found[0]
            .message
            .starts_with("writes to hostendpoints (projectcalico.org group)")
    );
}

#[test]
fn a_rule_behind_a_broader_one_is_shadowed() {
    let rules = format!(
        "{COMPLIANCE}- level: None\n  nonResourceURLs: [\"/healthz*\"]\n- level: None\n  nonResourceURLs: [/healthz/etcd]\n- level: Metadata\n  verbs: [get]\n  resources:\n  - group: \"\"\n    resources: [pods]\n    resourceNames: [web]\n- level: Metadata\n- level: Request\n  verbs: [get]\n"
    );
    let found = findings(&rules);
    assert_eq!(
        codes(&found),
        vec![(Some(2), "shadowed-rule"), (Some(5), "shadowed-rule")]
    );
    assert_eq!(
        found[0].message,
        "rule 2 can never match: rule 1 comes first and matches every request rule 2 does; remove it or move it above rule 1"
    );
    assert!(found[1].message.contains("rule 4 comes first"));
    // A rule limited to some users does not shadow one for everybody.
    let rules = format!(
        "- level: None\n  users: [system:kube-proxy]\n  verbs: [watch]\n{COMPLIANCE}- level: None\n  verbs: [watch]\n"
    );
    assert_eq!(findings(&rules), Vec::new());
}

#[test]
fn request_received_must_be_omitted_where_something_is_recorded() {
    let yaml = format!(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n{COMPLIANCE}- level: None\n- level: Metadata\n  omitStages: [RequestReceived]\n"
    );
    let found = lint(
        &Policy::from_yaml(&yaml)
            .expect("loads")
            .validate()
            .expect("validates"),
    );
    assert_eq!(
        codes(&found),
        vec![
            (Some(0), "request-received-not-omitted"),
            (Some(2), "shadowed-rule")
        ]
    );
    assert!(found[0].message.contains("audited twice"));
}

#[test]
fn secrets_at_request_or_above_leak_into_the_trail() {
    let rules = format!(
        "{COMPLIANCE}- level: Request\n  verbs: [get, list]\n- level: RequestResponse\n  resources:\n  - group: \"\"\n    resources: [secrets]\n"
    );
    let found = findings(&rules);
    assert_eq!(
        codes(&found),
        vec![(Some(1), "secrets-logged"), (Some(2), "secrets-logged")]
    );
    assert!(
        found[0].message.contains("at Request"),
        "{}",
        found[0].message
    );
    // Secrets at Metadata first: the later Request rule never sees them.
    let rules = format!(
        "- level: Metadata\n  resources:\n  - group: \"\"\n    resources: [secrets]\n{COMPLIANCE}- level: Request\n"
    );
    assert_eq!(findings(&rules), Vec::new());
    // A rule for URLs only catches no secrets before a later rule.
    let rules = format!(
        "- level: None\n  nonResourceURLs: [/healthz]\n{COMPLIANCE}- level: Request\n  verbs: [get]\n"
    );
    assert_eq!(codes(&findings(&rules)), vec![(Some(2), "secrets-logged")]);
    // Other groups' resources and URLs are not secrets.
    let rules = format!(
        "{COMPLIANCE}- level: Request\n  resources:\n  - group: apps\n- level: Request\n  nonResourceURLs: [/metrics]\n"
    );
    assert_eq!(findings(&rules), Vec::new());
}
