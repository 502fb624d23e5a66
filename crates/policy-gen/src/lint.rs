//! The compliance lint: what in a policy the API server accepts still
//! defeats a network-policy audit trail.
//!
//! Validation says whether kube-apiserver loads a policy; it says nothing
//! about whether the trail it produces is any use. The lint checks four
//! things, each a [`LintCode`]:
//!
//! - every compliance resource's writes are recorded at RequestResponse,
//!   at ResponseComplete (found by evaluating a write of an ordinary user in
//!   namespace `default` for each verb, so the matcher's exact semantics
//!   apply). A policy that names `projectcalico.org` and none of the
//!   Kubernetes compliance groups is a Calico API server policy and is
//!   checked for the Calico resources instead;
//! - no rule is shadowed: a rule whose every request an earlier rule already
//!   matches never applies (checked structurally and conservatively: only
//!   plain containment of the lists is recognised, so a reported rule is
//!   certainly dead);
//! - RequestReceived is omitted wherever something is recorded;
//! - secrets are never recorded at Request or above, where their data would
//!   be written into the trail.

use std::fmt;

use auditrail_policy::{
    GroupResources, Level, RequestAttributes, ResourceAttributes, Stage, ValidatedPolicy,
    ValidatedRule,
};

use crate::resources::{
    CALICO_GROUP, CALICO_RESOURCES, KUBERNETES_COMPLIANCE_RESOURCES, WRITE_VERBS,
};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth knowing; the policy works as intended.
    Info,
    /// Likely a mistake: events auditrail needs may be missing, noisy or
    /// leak secrets.
    Warning,
}

/// Which check found something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LintCode {
    /// A compliance resource's writes are not recorded at RequestResponse.
    ComplianceWritesNotCaptured,
    /// RequestReceived is recorded: every request is audited twice.
    RequestReceivedNotOmitted,
    /// Secrets are recorded with their data.
    SecretsLogged,
    /// A rule can never match: an earlier rule always wins.
    ShadowedRule,
}

impl LintCode {
    /// The stable identifier, e.g. `shadowed-rule`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ComplianceWritesNotCaptured => "compliance-writes-not-captured",
            Self::RequestReceivedNotOmitted => "request-received-not-omitted",
            Self::SecretsLogged => "secrets-logged",
            Self::ShadowedRule => "shadowed-rule",
        }
    }
}

impl fmt::Display for LintCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing the lint found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The check.
    pub code: LintCode,
    /// How serious.
    pub severity: Severity,
    /// The rule concerned (0-based), if one is.
    pub rule_index: Option<usize>,
    /// What was found and how to fix it.
    pub message: String,
}

/// Lints a validated policy. Findings are ordered by rule index (policy-wide
/// ones first), then code.
pub fn lint(policy: &ValidatedPolicy) -> Vec<Finding> {
    let mut findings = Vec::new();
    compliance_writes(policy, &mut findings);
    request_received(policy, &mut findings);
    secrets(policy, &mut findings);
    shadowed(policy, &mut findings);
    findings.sort_by_key(|f| (f.rule_index, f.code));
    findings
}

/// The user of the requests the lint evaluates: nobody special.
const LINT_USER: &str = "auditrail-lint";
const LINT_GROUPS: [&str; 1] = ["system:authenticated"];

fn write_request(verb: &str, group: &str, resource: &str) -> RequestAttributes {
    // Namespaces are cluster-scoped; the rest live in a namespace.
    let namespace = if resource == "namespaces" {
        ""
    } else {
        "default"
    };
    RequestAttributes::resource(
        verb,
        ResourceAttributes::new(group, resource).in_namespace(namespace),
    )
    .with_user(LINT_USER, LINT_GROUPS)
}

/// Whether the policy is for the Calico API server rather than kube-apiserver.
fn is_calico_policy(policy: &ValidatedPolicy) -> bool {
    let groups = || {
        policy
            .rules()
            .iter()
            .flat_map(|r| r.resources().iter().map(|gr| gr.group.as_str()))
    };
    groups().any(|g| g == CALICO_GROUP)
        && !groups().any(|g| {
            KUBERNETES_COMPLIANCE_RESOURCES
                .iter()
                .any(|(kg, _)| *kg == g)
        })
}

fn compliance_writes(policy: &ValidatedPolicy, findings: &mut Vec<Finding>) {
    let resources: Vec<(&str, &str)> = if is_calico_policy(policy) {
        CALICO_RESOURCES
            .iter()
            .map(|r| (CALICO_GROUP, *r))
            .collect()
    } else {
        KUBERNETES_COMPLIANCE_RESOURCES.to_vec()
    };
    for (group, resource) in resources {
        let mut short = Vec::new();
        let mut first_rule = None;
        for verb in WRITE_VERBS {
            let decision = policy.evaluate(&write_request(verb, group, resource));
            let captured = decision.level == Level::RequestResponse
                && !decision.omit_stages.contains(&Stage::ResponseComplete);
            if !captured {
                first_rule = first_rule.or(decision.rule);
                let how = match decision.rule {
                    Some(i) if decision.level == Level::RequestResponse => {
                        format!("{verb} without ResponseComplete (rule {i})")
                    }
                    Some(i) => format!("{verb} at {} (rule {i})", decision.level),
                    None => format!("{verb} not recorded (no rule matches)"),
                };
                short.push(how);
            }
        }
        if !short.is_empty() {
            let group_name = if group.is_empty() { "core" } else { group };
            findings.push(Finding {
                code: LintCode::ComplianceWritesNotCaptured,
                severity: Severity::Warning,
                rule_index: first_rule,
                message: format!(
                    "writes to {resource} ({group_name} group) are not all recorded at RequestResponse: {}; compliance needs create, patch, update and delete at RequestResponse",
                    short.join(", ")
                ),
            });
        }
    }
}

fn request_received(policy: &ValidatedPolicy, findings: &mut Vec<Finding>) {
    for (i, rule) in policy.rules().iter().enumerate() {
        if rule.level() > Level::None && !rule.omit_stages().contains(&Stage::RequestReceived) {
            findings.push(Finding {
                code: LintCode::RequestReceivedNotOmitted,
                severity: Severity::Warning,
                rule_index: Some(i),
                message: format!(
                    "rule {i} records the RequestReceived stage: every request it matches is audited twice; add RequestReceived to omitStages (of the policy or the rule)"
                ),
            });
        }
    }
}

fn secrets(policy: &ValidatedPolicy, findings: &mut Vec<Finding>) {
    for (i, rule) in policy.rules().iter().enumerate() {
        if rule.level() < Level::Request || !can_match_secrets(rule) {
            continue;
        }
        let caught_before = policy.rules()[..i].iter().any(catches_all_secrets);
        if !caught_before {
            findings.push(Finding {
                code: LintCode::SecretsLogged,
                severity: Severity::Warning,
                rule_index: Some(i),
                message: format!(
                    "rule {i} can record secrets at {}: their data would be written into the audit trail; record secrets at Metadata in an earlier rule",
                    rule.level()
                ),
            });
        }
    }
}

/// Whether one of `resources` names core `secrets` (or every core resource).
fn names_secrets(resources: &[GroupResources]) -> bool {
    resources.iter().any(|gr| {
        gr.group.is_empty()
            && (gr.resources.is_empty()
                || gr
                    .resources
                    .iter()
                    .any(|r| matches!(r.as_str(), "secrets" | "secrets/*" | "*")))
    })
}

fn can_match_secrets(rule: &ValidatedRule) -> bool {
    match target(rule) {
        Target::Any => true,
        Target::Resources => rule.resources().is_empty() || names_secrets(rule.resources()),
        Target::NonResource => false,
    }
}

/// Whether the rule matches every request for secrets, whoever makes it.
fn catches_all_secrets(rule: &ValidatedRule) -> bool {
    let unrestricted = rule.users().is_empty()
        && rule.user_groups().is_empty()
        && rule.verbs().is_empty()
        && rule.namespaces().is_empty();
    unrestricted
        && match target(rule) {
            Target::Any => true,
            Target::Resources => rule.resources().iter().any(|gr| {
                gr.group.is_empty()
                    && gr.resource_names.is_empty()
                    && (gr.resources.is_empty()
                        || gr.resources.iter().any(|r| r == "secrets" || r == "*"))
            }),
            Target::NonResource => false,
        }
}

/// What kind of request a rule can match, as the matcher decides it: a rule
/// with namespaces or resources matches resource requests only, one with
/// only non-resource URLs non-resource requests only, one with neither
/// everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Any,
    Resources,
    NonResource,
}

fn target(rule: &ValidatedRule) -> Target {
    if !rule.namespaces().is_empty() || !rule.resources().is_empty() {
        Target::Resources
    } else if !rule.non_resource_urls().is_empty() {
        Target::NonResource
    } else {
        Target::Any
    }
}

fn shadowed(policy: &ValidatedPolicy, findings: &mut Vec<Finding>) {
    let rules = policy.rules();
    for (j, later) in rules.iter().enumerate() {
        if let Some(i) = rules[..j].iter().position(|earlier| covers(earlier, later)) {
            findings.push(Finding {
                code: LintCode::ShadowedRule,
                severity: Severity::Warning,
                rule_index: Some(j),
                message: format!(
                    "rule {j} can never match: rule {i} comes first and matches every request rule {j} does; remove it or move it above rule {i}"
                ),
            });
        }
    }
}

/// Whether every request `later` matches is matched by `earlier`.
fn covers(earlier: &ValidatedRule, later: &ValidatedRule) -> bool {
    list_covers(earlier.users(), later.users())
        && list_covers(earlier.user_groups(), later.user_groups())
        && list_covers(earlier.verbs(), later.verbs())
        && match (target(earlier), target(later)) {
            (Target::Any, _) => true,
            (Target::Resources, Target::Resources) => {
                list_covers(earlier.namespaces(), later.namespaces())
                    && (earlier.resources().is_empty()
                        || (!later.resources().is_empty()
                            && later
                                .resources()
                                .iter()
                                .all(|l| earlier.resources().iter().any(|e| group_covers(e, l)))))
            }
            (Target::NonResource, Target::NonResource) => later
                .non_resource_urls()
                .iter()
                .all(|l| earlier.non_resource_urls().iter().any(|e| url_covers(e, l))),
            _ => false,
        }
}

/// An empty constraint allows anything; otherwise `later` must be a non-empty
/// subset.
fn list_covers(earlier: &[String], later: &[String]) -> bool {
    earlier.is_empty() || (!later.is_empty() && later.iter().all(|l| earlier.contains(l)))
}

fn group_covers(earlier: &GroupResources, later: &GroupResources) -> bool {
    earlier.group == later.group
        && list_covers(&earlier.resource_names, &later.resource_names)
        && (earlier.resources.is_empty()
            || earlier.resources.iter().any(|r| r == "*")
            || list_covers(&earlier.resources, &later.resources))
}

fn url_covers(earlier: &str, later: &str) -> bool {
    earlier == "*"
        || earlier == later
        || earlier
            .strip_suffix('*')
            .is_some_and(|prefix| later.starts_with(prefix))
}
