//! Validation of a [`Policy`] exactly as kube-apiserver performs it.
//!
//! Reproduces `k8s.io/apiserver/pkg/apis/audit/validation.ValidatePolicy`:
//! same checks, same order, same field paths (note that upstream does *not*
//! index `resources`: a bad group is reported at `rules[i].resources.group`)
//! and same messages. A policy that passes becomes a [`ValidatedPolicy`] whose
//! levels and stages are typed, ready for rule matching.

use crate::error::{BadValue, FieldError, ValidationErrors};
use crate::model::{GroupResources, Level, Policy, PolicyRule, Stage};

const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;
const DNS1123_SUBDOMAIN_MESSAGE: &str = r"a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const OMIT_STAGES_MESSAGE: &str =
    "allowed stages are RequestReceived,ResponseStarted,ResponseComplete,Panic";
const BOTH_KINDS_MESSAGE: &str =
    "rules cannot apply to both regular resources and non-resource URLs";
const URL_SLASH_MESSAGE: &str = "non-resource URL rules must begin with a '/' character";
const URL_WILDCARD_MESSAGE: &str =
    "non-resource URL wildcards '*' must be the final character of the rule";

/// A policy that passed validation, with typed levels and stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedPolicy {
    pub(crate) rules: Vec<ValidatedRule>,
    pub(crate) omit_stages: Vec<Stage>,
    pub(crate) omit_managed_fields: bool,
    pub(crate) warnings: Vec<String>,
}

impl ValidatedPolicy {
    /// The rules, in evaluation order.
    pub fn rules(&self) -> &[ValidatedRule] {
        &self.rules
    }

    /// Policy-wide omitted stages (sorted, deduplicated), used when no rule matches.
    pub fn omit_stages(&self) -> &[Stage] {
        &self.omit_stages
    }

    /// Policy-wide `omitManagedFields`.
    pub fn omit_managed_fields(&self) -> bool {
        self.omit_managed_fields
    }

    /// Things upstream accepts silently but that have no effect here: policy
    /// level `omitStages` values that are not stages (upstream does not
    /// validate them; they can never match a real stage, so they are dropped).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

/// One rule of a [`ValidatedPolicy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedRule {
    pub(crate) level: Level,
    pub(crate) users: Vec<String>,
    pub(crate) user_groups: Vec<String>,
    pub(crate) verbs: Vec<String>,
    pub(crate) resources: Vec<GroupResources>,
    pub(crate) namespaces: Vec<String>,
    pub(crate) non_resource_urls: Vec<String>,
    pub(crate) omit_stages: Vec<Stage>,
    pub(crate) omit_managed_fields: Option<bool>,
}

impl ValidatedRule {
    /// The level recorded for matching requests.
    pub fn level(&self) -> Level {
        self.level
    }

    /// User names the rule is limited to (empty: any).
    pub fn users(&self) -> &[String] {
        &self.users
    }

    /// User groups the rule is limited to (empty: any).
    pub fn user_groups(&self) -> &[String] {
        &self.user_groups
    }

    /// Verbs the rule is limited to (empty: any).
    pub fn verbs(&self) -> &[String] {
        &self.verbs
    }

    /// Group resources the rule is limited to (empty: any).
    pub fn resources(&self) -> &[GroupResources] {
        &self.resources
    }

    /// Namespaces the rule is limited to (empty: any).
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// Non-resource URL patterns the rule is limited to (empty: any).
    pub fn non_resource_urls(&self) -> &[String] {
        &self.non_resource_urls
    }

    /// Effective omitted stages: the rule's own unioned with the policy's,
    /// sorted and deduplicated.
    pub fn omit_stages(&self) -> &[Stage] {
        &self.omit_stages
    }

    /// The rule's own `omitManagedFields`, if set.
    pub fn omit_managed_fields(&self) -> Option<bool> {
        self.omit_managed_fields
    }
}

impl Policy {
    /// Validates the rules like kube-apiserver's `ValidatePolicy`, collecting
    /// every error. `apiVersion`, `kind` and the rule count are checked when
    /// loading (see [`Policy::from_yaml`]), as upstream's loader does.
    pub fn validate(&self) -> Result<ValidatedPolicy, ValidationErrors> {
        let mut warnings = Vec::new();
        let mut policy_stages = Vec::new();
        for (i, s) in self.omit_stages.iter().enumerate() {
            match s.parse::<Stage>() {
                Ok(stage) => policy_stages.push(stage),
                Err(_) => warnings.push(format!(
                    "omitStages[{i}]: unknown stage {s:?} is ignored (kube-apiserver does not validate policy-level omitStages)"
                )),
            }
        }
        policy_stages.sort_unstable();
        policy_stages.dedup();

        let mut errors = Vec::new();
        let mut rules = Vec::with_capacity(self.rules.len());
        for (i, rule) in self.rules.iter().enumerate() {
            if let Some(validated) =
                validate_rule(rule, &format!("rules[{i}]"), &policy_stages, &mut errors)
            {
                rules.push(validated);
            }
        }
        if !errors.is_empty() {
            return Err(ValidationErrors::new(errors));
        }
        Ok(ValidatedPolicy {
            rules,
            omit_stages: policy_stages,
            omit_managed_fields: self.omit_managed_fields,
            warnings,
        })
    }
}

/// Checks one rule in upstream's order; returns its typed form when it adds no error.
fn validate_rule(
    rule: &PolicyRule,
    path: &str,
    policy_stages: &[Stage],
    errors: &mut Vec<FieldError>,
) -> Option<ValidatedRule> {
    let before = errors.len();
    let level = validate_level(&rule.level, &format!("{path}.level"), errors);
    validate_non_resource_urls(
        &rule.non_resource_urls,
        &format!("{path}.nonResourceURLs"),
        errors,
    );
    validate_resources(&rule.resources, &format!("{path}.resources"), errors);
    let rule_stages =
        validate_omit_stages(&rule.omit_stages, &format!("{path}.omitStages"), errors);

    if !rule.non_resource_urls.is_empty()
        && (!rule.resources.is_empty() || !rule.namespaces.is_empty())
    {
        errors.push(FieldError::invalid(
            format!("{path}.nonResourceURLs"),
            BadValue::List(rule.non_resource_urls.clone()),
            BOTH_KINDS_MESSAGE,
        ));
    }

    if errors.len() != before {
        return None;
    }
    let mut omit_stages: Vec<Stage> = policy_stages.iter().copied().chain(rule_stages).collect();
    omit_stages.sort_unstable();
    omit_stages.dedup();
    Some(ValidatedRule {
        // validate_level only returns None after recording an error.
        level: level?,
        users: rule.users.clone(),
        user_groups: rule.user_groups.clone(),
        verbs: rule.verbs.clone(),
        resources: rule.resources.clone(),
        namespaces: rule.namespaces.clone(),
        non_resource_urls: rule.non_resource_urls.clone(),
        omit_stages,
        omit_managed_fields: rule.omit_managed_fields,
    })
}

/// Returns the level, or records why it is missing/unsupported.
fn validate_level(level: &str, path: &str, errors: &mut Vec<FieldError>) -> Option<Level> {
    if level.is_empty() {
        errors.push(FieldError::required(path.to_owned()));
        return None;
    }
    if let Ok(l) = level.parse::<Level>() {
        return Some(l);
    }
    let supported = Level::ALL.map(Level::as_str);
    errors.push(FieldError::not_supported(
        path.to_owned(),
        BadValue::Named(level.to_owned()),
        &supported,
    ));
    None
}

fn validate_non_resource_urls(urls: &[String], path: &str, errors: &mut Vec<FieldError>) {
    for (i, url) in urls.iter().enumerate() {
        if url == "*" {
            continue;
        }
        if !url.starts_with('/') {
            errors.push(FieldError::invalid(
                format!("{path}[{i}]"),
                BadValue::String(url.clone()),
                URL_SLASH_MESSAGE,
            ));
        }
        // Upstream: url != "" && strings.ContainsRune(url[:len(url)-1], '*').
        if let Some((_, all_but_last)) = url.as_bytes().split_last()
            && all_but_last.contains(&b'*')
        {
            errors.push(FieldError::invalid(
                format!("{path}[{i}]"),
                BadValue::String(url.clone()),
                URL_WILDCARD_MESSAGE,
            ));
        }
    }
}

fn validate_resources(groups: &[GroupResources], path: &str, errors: &mut Vec<FieldError>) {
    for gr in groups {
        // The empty string is the core API group.
        if !gr.group.is_empty() {
            let msgs = dns1123_subdomain_errors(&gr.group);
            if !msgs.is_empty() {
                errors.push(FieldError::invalid(
                    format!("{path}.group"),
                    BadValue::String(gr.group.clone()),
                    msgs.join(","),
                ));
            }
        }
        if !gr.resource_names.is_empty() && gr.resources.is_empty() {
            errors.push(FieldError::invalid(
                format!("{path}.resourceNames"),
                BadValue::List(gr.resource_names.clone()),
                "using resourceNames requires at least one resource",
            ));
        }
    }
}

/// Returns the known stages, recording an error for each unknown one.
fn validate_omit_stages(stages: &[String], path: &str, errors: &mut Vec<FieldError>) -> Vec<Stage> {
    let mut out = Vec::with_capacity(stages.len());
    for (i, stage) in stages.iter().enumerate() {
        match stage.parse::<Stage>() {
            Ok(s) => out.push(s),
            Err(_) => errors.push(FieldError::invalid(
                format!("{path}[{i}]"),
                BadValue::String(stage.clone()),
                OMIT_STAGES_MESSAGE,
            )),
        }
    }
    out
}

/// apimachinery's `IsDNS1123Subdomain`: the messages for a bad value.
fn dns1123_subdomain_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(format!(
            "must be no more than {DNS1123_SUBDOMAIN_MAX_LENGTH} characters"
        ));
    }
    if !is_dns1123_subdomain(value) {
        errs.push(DNS1123_SUBDOMAIN_MESSAGE.to_owned());
    }
    errs
}

/// `^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
fn is_dns1123_subdomain(value: &str) -> bool {
    value.split('.').all(is_dns1123_label)
}

fn is_dns1123_label(label: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    match label.as_bytes() {
        [] => false,
        [first, .., last] if !alnum(*first) || !alnum(*last) => false,
        [only] => alnum(*only),
        bytes => bytes.iter().all(|&b| alnum(b) || b == b'-'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(rules_yaml: &str) -> Policy {
        Policy::from_yaml(&format!(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n{rules_yaml}"
        ))
        .expect("test policy loads")
    }

    fn messages(rules_yaml: &str) -> Vec<String> {
        policy(rules_yaml)
            .validate()
            .expect_err("policy should be invalid")
            .errors()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn level_required() {
        assert_eq!(
            messages("- users: [a]\n"),
            vec!["rules[0].level: Required value"]
        );
    }

    #[test]
    fn level_not_supported_lists_upstream_order() {
        assert_eq!(
            messages("- level: None\n- level: Foo\n"),
            vec![
                r#"rules[1].level: Unsupported value: "Foo": supported values: "None", "Metadata", "Request", "RequestResponse""#
            ]
        );
    }

    #[test]
    fn level_is_case_sensitive() {
        let m = messages("- level: metadata\n");
        assert!(
            m[0].starts_with(r#"rules[0].level: Unsupported value: "metadata""#),
            "{m:?}"
        );
    }

    #[test]
    fn level_value_is_rendered_as_json() {
        // audit.Level is a named string type, so apimachinery JSON-encodes it.
        let m = messages("- level: \"a<b\"\n");
        assert!(
            m[0].starts_with(r#"rules[0].level: Unsupported value: "a\u003cb""#),
            "{m:?}"
        );
    }

    #[test]
    fn non_resource_url_must_begin_with_slash() {
        assert_eq!(
            messages("- level: None\n  nonResourceURLs: [/ok, healthz]\n"),
            vec![
                r#"rules[0].nonResourceURLs[1]: Invalid value: "healthz": non-resource URL rules must begin with a '/' character"#
            ]
        );
    }

    #[test]
    fn non_resource_url_empty_string_needs_slash_only() {
        assert_eq!(
            messages("- level: None\n  nonResourceURLs: [\"\"]\n"),
            vec![
                r#"rules[0].nonResourceURLs[0]: Invalid value: "": non-resource URL rules must begin with a '/' character"#
            ]
        );
    }

    #[test]
    fn non_resource_url_wildcard_only_last() {
        assert_eq!(
            messages("- level: None\n  nonResourceURLs: [\"/api/*/x\", \"/ok*\", \"*\"]\n"),
            vec![
                r#"rules[0].nonResourceURLs[0]: Invalid value: "/api/*/x": non-resource URL wildcards '*' must be the final character of the rule"#
            ]
        );
    }

    #[test]
    fn non_resource_url_both_errors_for_one_value() {
        assert_eq!(
            messages("- level: None\n  nonResourceURLs: [\"a*b\"]\n"),
            vec![
                r#"rules[0].nonResourceURLs[0]: Invalid value: "a*b": non-resource URL rules must begin with a '/' character"#,
                r#"rules[0].nonResourceURLs[0]: Invalid value: "a*b": non-resource URL wildcards '*' must be the final character of the rule"#,
            ]
        );
    }

    #[test]
    fn double_star_is_not_a_bare_wildcard() {
        assert_eq!(
            messages("- level: None\n  nonResourceURLs: [\"**\"]\n").len(),
            2
        );
    }

    #[test]
    fn resources_and_non_resource_urls_conflict() {
        assert_eq!(
            messages("- level: None\n  nonResourceURLs: [/a, /b]\n  resources: [{group: \"\"}]\n"),
            vec![
                r#"rules[0].nonResourceURLs: Invalid value: ["/a","/b"]: rules cannot apply to both regular resources and non-resource URLs"#
            ]
        );
    }

    #[test]
    fn namespaces_and_non_resource_urls_conflict() {
        assert_eq!(
            messages("- level: None\n  nonResourceURLs: [/a]\n  namespaces: [default]\n"),
            vec![
                r#"rules[0].nonResourceURLs: Invalid value: ["/a"]: rules cannot apply to both regular resources and non-resource URLs"#
            ]
        );
    }

    #[test]
    fn group_must_be_dns_subdomain_and_path_is_not_indexed() {
        assert_eq!(
            messages(
                "- level: None\n  resources:\n  - group: apps\n  - group: rbac.authorization.k8s.io/v1beta1\n"
            ),
            vec![format!(
                r#"rules[0].resources.group: Invalid value: "rbac.authorization.k8s.io/v1beta1": {DNS1123_SUBDOMAIN_MESSAGE}"#
            )]
        );
    }

    #[test]
    fn group_message_text_is_upstreams() {
        let m = messages("- level: None\n  resources: [{group: Apps}]\n");
        assert_eq!(
            m,
            vec![
                r#"rules[0].resources.group: Invalid value: "Apps": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#
            ]
        );
    }

    #[test]
    fn group_too_long_reports_both_messages_joined_by_comma() {
        let long = format!("{}.io", "a".repeat(251));
        assert_eq!(long.len(), 254);
        let m = messages(&format!(
            "- level: None\n  resources: [{{group: {long}}}]\n"
        ));
        assert_eq!(
            m,
            vec![format!(
                r#"rules[0].resources.group: Invalid value: "{long}": must be no more than 253 characters"#
            )]
        );
        // Length alone: the labels are fine, so only the length message.
        let bad_and_long = format!("{}-", "a".repeat(253));
        let m = messages(&format!(
            "- level: None\n  resources: [{{group: {bad_and_long}}}]\n"
        ));
        assert_eq!(
            m,
            vec![format!(
                r#"rules[0].resources.group: Invalid value: "{bad_and_long}": must be no more than 253 characters,{DNS1123_SUBDOMAIN_MESSAGE}"#
            )]
        );
    }

    #[test]
    fn group_of_exactly_253_is_fine() {
        let ok = format!("{}.io", "a".repeat(250));
        assert_eq!(ok.len(), 253);
        assert!(
            policy(&format!("- level: None\n  resources: [{{group: {ok}}}]\n"))
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn dns_subdomain_cases() {
        for ok in [
            "a",
            "0",
            "a-b",
            "a.b",
            "example.com",
            "x1.y-2.z3",
            "projectcalico.org",
        ] {
            assert!(is_dns1123_subdomain(ok), "{ok}");
        }
        for bad in [
            "", "-a", "a-", "a..b", ".a", "a.", "A", "a_b", "a/b", "a.-b", "é",
        ] {
            assert!(!is_dns1123_subdomain(bad), "{bad}");
        }
    }

    #[test]
    fn resource_names_require_resources() {
        assert_eq!(
            messages("- level: None\n  resources:\n  - group: \"\"\n    resourceNames: [x, y]\n"),
            vec![
                r#"rules[0].resources.resourceNames: Invalid value: ["x","y"]: using resourceNames requires at least one resource"#
            ]
        );
    }

    #[test]
    fn rule_omit_stages_must_be_known() {
        assert_eq!(
            messages("- level: None\n  omitStages: [RequestReceived, Bogus]\n"),
            vec![
                r#"rules[0].omitStages[1]: Invalid value: "Bogus": allowed stages are RequestReceived,ResponseStarted,ResponseComplete,Panic"#
            ]
        );
        assert_eq!(
            messages("- level: None\n  omitStages: [\"\"]\n"),
            vec![
                r#"rules[0].omitStages[0]: Invalid value: "": allowed stages are RequestReceived,ResponseStarted,ResponseComplete,Panic"#
            ]
        );
    }

    #[test]
    fn policy_level_omit_stages_are_not_validated_upstream() {
        let mut p = policy("- level: None\n");
        p.omit_stages = vec!["Bogus".to_owned(), "Panic".to_owned()];
        let v = p
            .validate()
            .expect("upstream accepts unknown policy-level stages");
        assert_eq!(v.omit_stages(), &[Stage::Panic]);
        assert_eq!(v.rules()[0].omit_stages(), &[Stage::Panic]);
        assert_eq!(v.warnings().len(), 1);
        assert!(v.warnings()[0].contains("\"Bogus\""), "{:?}", v.warnings());
    }

    #[test]
    fn all_errors_are_collected_in_upstream_order() {
        let errs = policy(
            "- level: Metadata\n\
             - level: \"\"\n  nonResourceURLs: [nope]\n  resources:\n  - group: Bad_Group\n    resourceNames: [n]\n  omitStages: [Later]\n\
             - level: Loud\n",
        )
        .validate()
        .expect_err("invalid");
        let fields: Vec<&str> = errs.errors().iter().map(FieldError::field).collect();
        assert_eq!(
            fields,
            vec![
                "rules[1].level",
                "rules[1].nonResourceURLs[0]",
                "rules[1].resources.group",
                "rules[1].resources.resourceNames",
                "rules[1].omitStages[0]",
                "rules[1].nonResourceURLs",
                "rules[2].level",
            ]
        );
        let text = errs.to_string();
        assert!(text.starts_with("[rules[1].level: Required value, rules[1].nonResourceURLs[0]: Invalid value: \"nope\""), "{text}");
        assert!(
            text.ends_with(
                r#"supported values: "None", "Metadata", "Request", "RequestResponse"]"#
            ),
            "{text}"
        );
    }

    #[test]
    fn identical_messages_are_printed_once() {
        // Upstream does not index resources, so two bad groups with the same
        // value yield identical messages; ToAggregate prints them once.
        let errs = policy("- level: None\n  resources: [{group: X}, {group: X}]\n")
            .validate()
            .expect_err("invalid");
        assert_eq!(errs.len(), 2);
        assert!(!errs.to_string().starts_with('['), "{errs}");
        assert_eq!(errs.messages().len(), 1);
    }

    #[test]
    fn valid_policies_pass_and_are_typed() {
        let v = policy(
            "- level: RequestResponse\n  omitStages: [ResponseStarted, RequestReceived, ResponseStarted]\n  omitManagedFields: true\n  resources:\n  - group: \"\"\n    resources: [pods, pods/log]\n    resourceNames: [a]\n  - group: apps\n  namespaces: [\"\", default]\n\
             - level: None\n  nonResourceURLs: [\"*\", /healthz, \"/api*\"]\n\
             - level: Metadata\n",
        )
        .validate()
        .expect("valid");
        assert_eq!(v.rules().len(), 3);
        let r0 = &v.rules()[0];
        assert_eq!(r0.level(), Level::RequestResponse);
        assert_eq!(
            r0.omit_stages(),
            &[Stage::RequestReceived, Stage::ResponseStarted]
        );
        assert_eq!(r0.omit_managed_fields(), Some(true));
        assert_eq!(r0.namespaces(), &["", "default"]);
        assert_eq!(r0.resources().len(), 2);
        assert_eq!(v.rules()[1].non_resource_urls().len(), 3);
        assert_eq!(v.rules()[2].level(), Level::Metadata);
        assert!(v.warnings().is_empty());
    }

    #[test]
    fn empty_rule_list_validates_programmatically() {
        // ValidatePolicy has no rule-count check; the loader has (see from_yaml).
        let v = Policy::new(Vec::new()).validate().expect("valid");
        assert!(v.rules().is_empty());
    }
}
