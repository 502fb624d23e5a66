//! Reading the objects out of manifest text, and the kinds auditrail
//! applies.

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde::Deserialize as _;

use crate::error::ApplyError;

/// Manifest text (one or more YAML documents) and the artifact it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The artifact's name, for messages.
    pub artifact: String,
    /// The YAML.
    pub content: String,
}

/// A kind auditrail applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupportedKind {
    /// API group (`""` for core).
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Resource (plural).
    pub plural: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// What installs the kind when the cluster does not serve it.
    pub installed_by: &'static str,
}

/// The kinds a set-up renders: the policy ConfigMap, the EKS Secret and the
/// Tigera operator's LogCollector.
pub const SUPPORTED_KINDS: [SupportedKind; 3] = [
    SupportedKind {
        group: "",
        version: "v1",
        kind: "ConfigMap",
        plural: "configmaps",
        namespaced: true,
        installed_by: "built into Kubernetes",
    },
    SupportedKind {
        group: "",
        version: "v1",
        kind: "Secret",
        plural: "secrets",
        namespaced: true,
        installed_by: "built into Kubernetes",
    },
    SupportedKind {
        group: "operator.tigera.io",
        version: "v1",
        kind: "LogCollector",
        plural: "logcollectors",
        namespaced: false,
        installed_by: "install the Tigera operator first",
    },
];

impl SupportedKind {
    pub(crate) fn api_resource(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(self.group, self.version, self.kind),
            self.plural,
        )
    }

    pub(crate) fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// An object to apply, with its kind looked up.
#[derive(Debug, Clone)]
pub(crate) struct ParsedObject {
    pub(crate) kind: &'static SupportedKind,
    pub(crate) name: String,
    pub(crate) object: DynamicObject,
}

/// Every object of every manifest, in order; refuses the lot if one is bad,
/// so that nothing is half applied because of a typo.
pub(crate) fn parse(manifests: &[Manifest]) -> Result<Vec<ParsedObject>, ApplyError> {
    let mut objects = Vec::new();
    for manifest in manifests {
        let invalid = |message: String| ApplyError::InvalidManifest {
            artifact: manifest.artifact.clone(),
            message,
        };
        for document in serde_norway::Deserializer::from_str(&manifest.content) {
            let value = serde_json::Value::deserialize(document)
                .map_err(|e| invalid(format!("not YAML: {e}")))?;
            if value.is_null() {
                continue; // an empty document, e.g. after a trailing `---`
            }
            let object: DynamicObject = serde_json::from_value(value)
                .map_err(|e| invalid(format!("not a Kubernetes object: {e}")))?;
            let types = object
                .types
                .clone()
                .ok_or_else(|| invalid("an object without apiVersion and kind".to_owned()))?;
            let kind = SUPPORTED_KINDS
                .iter()
                .find(|k| k.kind == types.kind && k.api_version() == types.api_version)
                .ok_or_else(|| ApplyError::UnsupportedKind {
                    artifact: manifest.artifact.clone(),
                    kind: types.kind.clone(),
                    api_version: types.api_version.clone(),
                })?;
            let name = object
                .metadata
                .name
                .clone()
                .filter(|n| !n.is_empty())
                .ok_or_else(|| invalid(format!("a {} without metadata.name", kind.kind)))?;
            // Names and namespaces become URL path segments: only what the
            // API server accepts may pass.
            if !is_dns1123_subdomain(&name) {
                return Err(invalid(format!(
                    "metadata.name {name:?} is not a lowercase RFC 1123 subdomain"
                )));
            }
            if let Some(namespace) = object.metadata.namespace.as_deref()
                && !namespace.is_empty()
                && !is_dns1123_label(namespace)
            {
                return Err(invalid(format!(
                    "metadata.namespace {namespace:?} is not a lowercase RFC 1123 label"
                )));
            }
            objects.push(ParsedObject { kind, name, object });
        }
    }
    Ok(objects)
}

/// A namespace name: a lowercase RFC 1123 label of at most 63 characters.
pub(crate) fn is_dns1123_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    let alphanumeric = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    bytes.len() <= 63
        && bytes.first().is_some_and(alphanumeric)
        && bytes.last().is_some_and(alphanumeric)
        && bytes.iter().all(|b| alphanumeric(b) || *b == b'-')
}

/// An object name: dot-separated labels, at most 253 characters.
fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns1123_label)
}
