//! The mapping between `auditrail.v1` provisioning messages and the policy
//! library.
//!
//! The gRPC contract and the domain model evolve separately: the proto has
//! strings and optional fields, the policy crate has typed levels, stages and
//! validated rules. Keeping every translation (and every check the proto
//! documents on a request) here leaves the handlers a few lines each and
//! makes the wire behaviour testable in one place.

use auditrail_policy::{
    AuditDecision, LoadError, Policy, RequestAttributes, ResourceAttributes, ValidationErrors,
};
use auditrail_policy_gen::{
    AuditApiVersion, Finding, GenerateError, GroupResource, PolicyRequest, Profile, Severity,
};
use auditrail_proto::v1;
use auditrail_proto::v1::request_attributes::Target;
use thiserror::Error;

/// The largest `policy_yaml` accepted (1 MiB), as the proto documents.
pub(crate) const MAX_POLICY_BYTES: usize = 1 << 20;

/// A request the proto's documented checks refuse; always `INVALID_ARGUMENT`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum InvalidRequest {
    /// A required field is empty or unset.
    #[error("{0} is required")]
    Missing(&'static str),
    /// A required field is unset; the message says what it takes.
    #[error("{field} is required: {hint}")]
    Required {
        /// The field.
        field: &'static str,
        /// What it takes.
        hint: &'static str,
    },
    /// Neither `resource` nor `non_resource` is set.
    #[error("attributes.target is required: set attributes.resource or attributes.non_resource")]
    MissingTarget,
    /// `policy_yaml` is larger than [`MAX_POLICY_BYTES`].
    #[error("policy_yaml is {size} bytes; at most {MAX_POLICY_BYTES} bytes (1 MiB) are accepted")]
    PolicyTooLarge {
        /// The size received, in bytes.
        size: usize,
    },
    /// The policy does not load (syntax, apiVersion, kind, no rules).
    #[error("policy_yaml does not load: {0}")]
    PolicyLoad(String),
    /// The policy loads but kube-apiserver would refuse it.
    #[error("policy_yaml does not validate: {0}")]
    PolicyInvalid(String),
    /// An extra resource is not a valid group and resource.
    #[error("extra_resources[{index}]: {error}")]
    ExtraResource {
        /// Its index in the request.
        index: usize,
        /// What is wrong with it.
        error: GenerateError,
    },
}

/// Checks the documented bounds of `policy_yaml`: present, at most 1 MiB.
pub(crate) fn policy_text(policy_yaml: &str) -> Result<&str, InvalidRequest> {
    if policy_yaml.is_empty() {
        return Err(InvalidRequest::Missing("policy_yaml"));
    }
    if policy_yaml.len() > MAX_POLICY_BYTES {
        return Err(InvalidRequest::PolicyTooLarge {
            size: policy_yaml.len(),
        });
    }
    Ok(policy_yaml)
}

/// Lint codes of the warnings the loader and validation produce (the
/// compliance lint's come from `auditrail_policy_gen::LintCode`).
mod codes {
    pub(super) const DEPRECATED_API_VERSION: &str = "deprecated-api-version";
    pub(super) const UNKNOWN_FIELD: &str = "unknown-field";
    pub(super) const UNKNOWN_OMIT_STAGE: &str = "unknown-omit-stage";
}

/// The answer for a document that does not load: one document-level error.
pub(crate) fn load_failure(error: &LoadError) -> v1::ValidatePolicyResponse {
    v1::ValidatePolicyResponse {
        valid: false,
        errors: vec![v1::FieldError {
            field: String::new(),
            message: load_message(error),
        }],
        findings: Vec::new(),
    }
}

/// The answer for a loaded policy: its validation errors (if any) and the
/// warnings of loading (`unknown_fields`), of its apiVersion and of validation.
pub(crate) fn validation_report(
    policy: &Policy,
    unknown_fields: &[String],
) -> v1::ValidatePolicyResponse {
    let mut findings: Vec<v1::LintFinding> = unknown_fields
        .iter()
        .map(|w| {
            warning(
                codes::UNKNOWN_FIELD,
                format!("{w} is ignored by kube-apiserver; check its spelling"),
            )
        })
        .collect();
    if let Some(w) = policy.deprecation_warning() {
        findings.push(warning(codes::DEPRECATED_API_VERSION, w.to_owned()));
    }
    let errors = match policy.validate() {
        Ok(validated) => {
            findings.extend(
                validated
                    .warnings()
                    .iter()
                    .map(|w| warning(codes::UNKNOWN_OMIT_STAGE, w.clone())),
            );
            findings.extend(
                auditrail_policy_gen::lint(&validated)
                    .iter()
                    .map(lint_finding),
            );
            Vec::new()
        }
        Err(errors) => field_errors(&errors),
    };
    // The proto orders findings by rule index, then code; the sort is stable.
    findings.sort_by(|a, b| (a.rule_index, &a.code).cmp(&(b.rule_index, &b.code)));
    v1::ValidatePolicyResponse {
        valid: errors.is_empty(),
        errors,
        findings,
    }
}

/// The proto form of a compliance lint finding.
fn lint_finding(finding: &Finding) -> v1::LintFinding {
    v1::LintFinding {
        severity: match finding.severity {
            Severity::Info => v1::LintSeverity::Info,
            Severity::Warning => v1::LintSeverity::Warning,
        }
        .into(),
        // A policy of at most 1 MiB has far fewer than u32::MAX rules.
        rule_index: finding.rule_index.and_then(|i| u32::try_from(i).ok()),
        message: finding.message.clone(),
        code: finding.code.as_str().to_owned(),
    }
}

/// The domain request for a profile, its extra resources and apiVersion,
/// as `GeneratePolicyRequest` and `SetupOptions` carry them.
pub(crate) fn policy_request(
    profile: v1::PolicyProfile,
    extra_resources: Vec<v1::GroupResource>,
    api_version: v1::AuditApiVersion,
) -> Result<PolicyRequest, InvalidRequest> {
    let extra_resources = extra_resources
        .into_iter()
        .enumerate()
        .map(|(index, gr)| {
            GroupResource::new(&gr.group, &gr.resource)
                .map_err(|error| InvalidRequest::ExtraResource { index, error })
        })
        .collect::<Result<_, _>>()?;
    Ok(PolicyRequest {
        profile: match profile {
            v1::PolicyProfile::Unspecified | v1::PolicyProfile::NetworkPolicy => {
                Profile::NetworkPolicy
            }
            v1::PolicyProfile::Calico => Profile::Calico,
            v1::PolicyProfile::Extended => Profile::Extended,
        },
        extra_resources,
        api_version: match api_version {
            v1::AuditApiVersion::Unspecified | v1::AuditApiVersion::V1 => AuditApiVersion::V1,
            v1::AuditApiVersion::V1beta1 => AuditApiVersion::V1beta1,
        },
    })
}

/// A policy-wide warning finding.
fn warning(code: &str, message: String) -> v1::LintFinding {
    v1::LintFinding {
        severity: v1::LintSeverity::Warning.into(),
        rule_index: None,
        message,
        code: code.to_owned(),
    }
}

/// Every validation error, with the API server's field path and message.
fn field_errors(errors: &ValidationErrors) -> Vec<v1::FieldError> {
    errors
        .errors()
        .iter()
        .map(|e| v1::FieldError {
            field: e.field().to_owned(),
            message: e.body(),
        })
        .collect()
}

/// The loader's message with the position, when the parser knows one. The
/// YAML parser's own messages already say `at line L column C`; others are
/// prefixed with it.
fn load_message(error: &LoadError) -> String {
    let text = error.to_string();
    let Some(line) = error.line() else {
        return text;
    };
    let position = match error.column() {
        Some(column) => format!("line {line} column {column}"),
        None => format!("line {line}"),
    };
    if text.contains(&position) {
        text
    } else {
        format!("{position}: {text}")
    }
}

/// The `INVALID_ARGUMENT` for a policy that does not load.
pub(crate) fn load_refusal(error: &LoadError) -> InvalidRequest {
    InvalidRequest::PolicyLoad(load_message(error))
}

/// The `INVALID_ARGUMENT` for a policy that does not validate: the first
/// error first, then the others.
pub(crate) fn validation_refusal(errors: &ValidationErrors) -> InvalidRequest {
    let messages = errors.messages();
    let text = match messages.as_slice() {
        [] => errors.to_string(),
        [only] => only.clone(),
        [first, rest @ ..] => format!("{first} (and {} more: {})", rest.len(), rest.join("; ")),
    };
    InvalidRequest::PolicyInvalid(text)
}

/// The domain request for the proto's `RequestAttributes`, checking what the
/// proto requires: the attributes, a verb and one target with its resource or
/// path.
pub(crate) fn request_attributes(
    attributes: Option<v1::RequestAttributes>,
) -> Result<RequestAttributes, InvalidRequest> {
    let attributes = attributes.ok_or(InvalidRequest::Missing("attributes"))?;
    if attributes.verb.is_empty() {
        return Err(InvalidRequest::Missing("attributes.verb"));
    }
    let request = match attributes.target {
        None => return Err(InvalidRequest::MissingTarget),
        Some(Target::Resource(r)) => {
            if r.resource.is_empty() {
                return Err(InvalidRequest::Missing("attributes.resource.resource"));
            }
            RequestAttributes::resource(
                attributes.verb,
                ResourceAttributes {
                    namespace: r.namespace,
                    api_group: r.api_group,
                    resource: r.resource,
                    subresource: r.subresource,
                    name: r.name,
                },
            )
        }
        Some(Target::NonResource(nr)) => {
            if nr.path.is_empty() {
                return Err(InvalidRequest::Missing("attributes.non_resource.path"));
            }
            RequestAttributes::non_resource(attributes.verb, nr.path)
        }
    };
    // An empty user name with no groups is a request without a user.
    Ok(
        if attributes.user.is_empty() && attributes.groups.is_empty() {
            request
        } else {
            request.with_user(attributes.user, attributes.groups)
        },
    )
}

/// The proto form of a decision.
pub(crate) fn evaluation(decision: &AuditDecision) -> v1::EvaluatePolicyResponse {
    v1::EvaluatePolicyResponse {
        level: decision.level.as_str().to_owned(),
        omit_stages: decision
            .omit_stages
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect(),
        omit_managed_fields: decision.omit_managed_fields,
        // A policy of at most 1 MiB has far fewer than u32::MAX rules.
        matched_rule_index: decision.rule.and_then(|i| u32::try_from(i).ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_text_bounds() {
        assert_eq!(policy_text(""), Err(InvalidRequest::Missing("policy_yaml")));
        let max = "#".repeat(MAX_POLICY_BYTES);
        assert!(policy_text(&max).is_ok());
        let over = format!("{max}#");
        assert_eq!(
            policy_text(&over),
            Err(InvalidRequest::PolicyTooLarge {
                size: MAX_POLICY_BYTES + 1
            })
        );
    }

    #[test]
    fn user_without_name_and_groups_is_no_user() {
        let attrs = request_attributes(Some(v1::RequestAttributes {
            verb: "get".to_owned(),
            target: Some(Target::NonResource(v1::NonResourceAttributes {
                path: "/healthz".to_owned(),
            })),
            ..Default::default()
        }))
        .expect("valid");
        assert_eq!(attrs, RequestAttributes::non_resource("get", "/healthz"));
    }

    #[test]
    fn every_resource_field_is_carried() {
        let attrs = request_attributes(Some(v1::RequestAttributes {
            user: "u".to_owned(),
            groups: vec!["g".to_owned()],
            verb: "patch".to_owned(),
            target: Some(Target::Resource(v1::ResourceAttributes {
                api_group: "apps".to_owned(),
                resource: "deployments".to_owned(),
                subresource: "scale".to_owned(),
                namespace: "prod".to_owned(),
                name: "web".to_owned(),
            })),
        }))
        .expect("valid");
        assert_eq!(
            attrs,
            RequestAttributes::resource(
                "patch",
                ResourceAttributes::new("apps", "deployments")
                    .in_namespace("prod")
                    .with_subresource("scale")
                    .with_name("web"),
            )
            .with_user("u", ["g"])
        );
    }
}
