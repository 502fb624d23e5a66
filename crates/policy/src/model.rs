//! The serde model of an `audit.k8s.io` `Policy`, as written by operators.
//!
//! The raw model keeps `level` and `omitStages` as plain strings: a typo such
//! as `level: Metdata` must survive decoding so that validation can report it
//! the way kube-apiserver does, instead of failing early with a serde message.
//! [`Level`] and [`Stage`] are the checked forms produced by validation.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{EncodeError, LoadError, UnknownLevel, UnknownStage};
use crate::load::{Format, load};

/// `audit.k8s.io/v1`, the current version of the audit API.
pub const API_VERSION_V1: &str = "audit.k8s.io/v1";
/// `audit.k8s.io/v1beta1`, removed from kube-apiserver in 1.24; still read here.
pub const API_VERSION_V1BETA1: &str = "audit.k8s.io/v1beta1";
/// The only kind this crate loads.
pub const KIND_POLICY: &str = "Policy";

/// An audit policy document (`kind: Policy`), unvalidated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    /// `audit.k8s.io/v1` or `audit.k8s.io/v1beta1`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub api_version: String,
    /// Always `Policy` for a loadable document.
    #[serde(default, deserialize_with = "null_as_default")]
    pub kind: String,
    /// `ObjectMeta`, kept verbatim (the API server ignores it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
    /// Stages never recorded for any request; unioned into every rule's list.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub omit_stages: Vec<String>,
    /// Default for rules that do not set `omitManagedFields`.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_false"
    )]
    pub omit_managed_fields: bool,
    /// Evaluated in order; the first matching rule decides.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub rules: Vec<PolicyRule>,
}

/// One rule of a [`Policy`], unvalidated. Empty lists mean "any".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    /// `None`, `Metadata`, `Request` or `RequestResponse` (checked by validation).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub level: String,
    /// User names the rule applies to.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub users: Vec<String>,
    /// User groups the rule applies to (a user matches if in any of them).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub user_groups: Vec<String>,
    /// Verbs the rule applies to.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub verbs: Vec<String>,
    /// Resources the rule applies to (makes it a resource-only rule).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub resources: Vec<GroupResources>,
    /// Namespaces the rule applies to; `""` selects cluster-scoped resources.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub namespaces: Vec<String>,
    /// Non-resource URL paths (`*` alone, exact, or with a trailing `*`).
    #[serde(
        rename = "nonResourceURLs",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub non_resource_urls: Vec<String>,
    /// Stages not recorded for requests matching this rule.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub omit_stages: Vec<String>,
    /// Overrides the policy-wide `omitManagedFields` when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub omit_managed_fields: Option<bool>,
}

/// Resources of one API group. An empty `resources` list means every resource
/// of the group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupResources {
    /// API group name without version; `""` is the core group.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub group: String,
    /// Resource names: `pods`, `pods/log`, `pods/*`, `*/scale`, `*`.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub resources: Vec<String>,
    /// Object names the rule is restricted to.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub resource_names: Vec<String>,
}

impl Policy {
    /// A `audit.k8s.io/v1` policy with the given rules and no policy-wide settings.
    pub fn new(rules: Vec<PolicyRule>) -> Self {
        Self {
            api_version: API_VERSION_V1.to_owned(),
            kind: KIND_POLICY.to_owned(),
            metadata: None,
            omit_stages: Vec::new(),
            omit_managed_fields: false,
            rules,
        }
    }

    /// Loads a policy from YAML (JSON is accepted too, being YAML).
    ///
    /// Checks what kube-apiserver's loader checks before validation: the
    /// document decodes, `apiVersion` is `audit.k8s.io/v1` or `v1beta1`,
    /// `kind` is `Policy` and there is at least one rule. Unknown fields are
    /// ignored like the API server's lenient fallback does; use
    /// [`Policy::from_yaml_with_warnings`] to see them. Call
    /// [`Policy::validate`] afterwards.
    pub fn from_yaml(src: &str) -> Result<Self, LoadError> {
        load(src, Format::Yaml).map(|(policy, _)| policy)
    }

    /// Like [`Policy::from_yaml`], also returning one warning per unknown
    /// field (`unknown field "rules[0].namespace"`), i.e. what kube-apiserver
    /// logs when its strict decoding fails and it falls back to lenient.
    pub fn from_yaml_with_warnings(src: &str) -> Result<(Self, Vec<String>), LoadError> {
        load(src, Format::Yaml)
    }

    /// Loads a policy from JSON, with the same checks as [`Policy::from_yaml`].
    pub fn from_json(src: &str) -> Result<Self, LoadError> {
        load(src, Format::Json).map(|(policy, _)| policy)
    }

    /// Encodes the policy as YAML (empty fields are left out).
    pub fn to_yaml(&self) -> Result<String, EncodeError> {
        serde_norway::to_string(self).map_err(|e| EncodeError(e.to_string()))
    }

    /// Encodes the policy as compact JSON (empty fields are left out).
    pub fn to_json(&self) -> Result<String, EncodeError> {
        serde_json::to_string(self).map_err(|e| EncodeError(e.to_string()))
    }

    /// A warning to show when the policy uses a removed API version.
    pub fn deprecation_warning(&self) -> Option<&'static str> {
        (self.api_version == API_VERSION_V1BETA1)
            .then_some("audit.k8s.io/v1beta1 was removed in Kubernetes 1.24; use audit.k8s.io/v1")
    }
}

/// How much of a request is recorded. Ordered from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Level {
    /// Nothing is recorded.
    None,
    /// Request metadata only (user, verb, resource, ...), no bodies.
    Metadata,
    /// Metadata and the request body.
    Request,
    /// Metadata, request body and response body.
    RequestResponse,
}

impl Level {
    /// Every level, in upstream's declaration order (also the sort order).
    pub const ALL: [Self; 4] = [
        Self::None,
        Self::Metadata,
        Self::Request,
        Self::RequestResponse,
    ];

    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Metadata => "Metadata",
            Self::Request => "Request",
            Self::RequestResponse => "RequestResponse",
        }
    }
}

impl FromStr for Level {
    type Err = UnknownLevel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| UnknownLevel(s.to_owned()))
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stage of request handling at which an audit event can be emitted.
/// Ordered as a request goes through them (`Panic` last).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Stage {
    /// As soon as the request is received, before it is handled.
    RequestReceived,
    /// Response headers sent, body not yet (long-running requests only).
    ResponseStarted,
    /// The response is complete.
    ResponseComplete,
    /// A panic occurred.
    Panic,
}

impl Stage {
    /// Every stage, in upstream's declaration order (also the sort order).
    pub const ALL: [Self; 4] = [
        Self::RequestReceived,
        Self::ResponseStarted,
        Self::ResponseComplete,
        Self::Panic,
    ];

    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequestReceived => "RequestReceived",
            Self::ResponseStarted => "ResponseStarted",
            Self::ResponseComplete => "ResponseComplete",
            Self::Panic => "Panic",
        }
    }
}

impl FromStr for Stage {
    type Err = UnknownStage;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStage(s.to_owned()))
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Treats an explicit `null` like an absent field, as Go's decoder does.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_false(b: &bool) -> bool {
    !*b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_order_and_strings() {
        assert!(Level::None < Level::Metadata);
        assert!(Level::Metadata < Level::Request);
        assert!(Level::Request < Level::RequestResponse);
        for l in Level::ALL {
            assert_eq!(l.as_str().parse::<Level>(), Ok(l));
            assert_eq!(l.to_string(), l.as_str());
        }
        assert_eq!(
            "metadata".parse::<Level>(),
            Err(UnknownLevel("metadata".to_owned()))
        );
        assert_eq!("".parse::<Level>(), Err(UnknownLevel(String::new())));
    }

    #[test]
    fn stage_order_and_strings() {
        assert!(Stage::RequestReceived < Stage::ResponseStarted);
        assert!(Stage::ResponseStarted < Stage::ResponseComplete);
        assert!(Stage::ResponseComplete < Stage::Panic);
        for s in Stage::ALL {
            assert_eq!(s.as_str().parse::<Stage>(), Ok(s));
        }
        assert_eq!(
            "requestReceived".parse::<Stage>(),
            Err(UnknownStage("requestReceived".to_owned()))
        );
    }

    #[test]
    fn level_and_stage_serde_use_api_spelling() {
        assert_eq!(
            serde_json::to_string(&Level::RequestResponse).unwrap(),
            r#""RequestResponse""#
        );
        assert_eq!(
            serde_json::from_str::<Stage>(r#""Panic""#).unwrap(),
            Stage::Panic
        );
    }

    #[test]
    fn unknown_level_and_stage_strings_survive_decoding() {
        let p = Policy::from_yaml(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [Bogus]\nrules:\n- level: Metdata\n  omitStages: [Nope]\n",
        )
        .unwrap();
        assert_eq!(p.omit_stages, vec!["Bogus"]);
        assert_eq!(p.rules[0].level, "Metdata");
        assert_eq!(p.rules[0].omit_stages, vec!["Nope"]);
    }

    #[test]
    fn explicit_nulls_are_empty() {
        let p = Policy::from_yaml(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: null\nomitManagedFields: null\nrules:\n- level:\n  users: ~\n  resources:\n  - group: null\n    resources: null\n",
        )
        .unwrap();
        assert!(p.omit_stages.is_empty());
        assert!(!p.omit_managed_fields);
        assert_eq!(p.rules[0].level, "");
        assert!(p.rules[0].users.is_empty());
        assert_eq!(p.rules[0].resources[0], GroupResources::default());
    }

    #[test]
    fn serialisation_omits_empty_fields_and_round_trips() {
        let mut rule = PolicyRule {
            level: "Metadata".to_owned(),
            non_resource_urls: vec!["/healthz".to_owned()],
            ..PolicyRule::default()
        };
        rule.omit_managed_fields = Some(false);
        let p = Policy::new(vec![rule]);
        let json = p.to_json().unwrap();
        assert_eq!(
            json,
            r#"{"apiVersion":"audit.k8s.io/v1","kind":"Policy","rules":[{"level":"Metadata","nonResourceURLs":["/healthz"],"omitManagedFields":false}]}"#
        );
        assert!(!json.contains("null"));
        assert_eq!(Policy::from_json(&json).unwrap(), p);

        let yaml = p.to_yaml().unwrap();
        assert!(!yaml.contains("null"), "{yaml}");
        assert!(!yaml.contains("users"), "{yaml}");
        assert_eq!(Policy::from_yaml(&yaml).unwrap(), p);
    }

    #[test]
    fn core_group_is_omitted_and_restored_as_empty() {
        let mut p = Policy::new(vec![PolicyRule {
            level: "None".to_owned(),
            resources: vec![GroupResources {
                group: String::new(),
                resources: vec!["events".to_owned()],
                resource_names: Vec::new(),
            }],
            ..PolicyRule::default()
        }]);
        p.omit_managed_fields = true;
        p.omit_stages = vec!["RequestReceived".to_owned()];
        let yaml = p.to_yaml().unwrap();
        assert!(!yaml.contains("group"), "{yaml}");
        assert!(yaml.contains("omitManagedFields: true"), "{yaml}");
        assert_eq!(Policy::from_yaml(&yaml).unwrap(), p);
    }

    #[test]
    fn deprecation_warning_only_for_v1beta1() {
        let mut p = Policy::new(Vec::new());
        assert_eq!(p.deprecation_warning(), None);
        p.api_version = API_VERSION_V1BETA1.to_owned();
        assert_eq!(
            p.deprecation_warning(),
            Some("audit.k8s.io/v1beta1 was removed in Kubernetes 1.24; use audit.k8s.io/v1")
        );
    }
}
