//! Versions of a Kubernetes resource as the audit trail records them, and
//! diffs between two versions.
//!
//! "What exactly changed?" is answered from the objects the API server
//! returned: a successful create, update or patch logged at level
//! `RequestResponse` carries the whole new object as `responseObject`. A
//! delete answers either the deleted object (most resources today) or a
//! `Status`; in the second case the last known object is the previous
//! version's, which the caller supplies (it needs a store lookup, and this
//! crate has no I/O).
//!
//! Diffs are of YAML renderings with sorted keys, so that two versions whose
//! JSON differs only in key order are identical, and the unified diff reads
//! like a `kubectl diff`. Noisy metadata that changes on every write
//! (`managedFields`, `resourceVersion`, `generation`, timestamps) can be
//! left out, so a diff shows what a person changed.

use auditrail_event::{Event, ParseError, parse_line};
use jiff::Timestamp;
use serde_json::Value;

/// Why a version or a diff could not be made.
#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    /// The bytes are not an audit event.
    #[error("not an audit event: {0}")]
    NotAnEvent(#[from] ParseError),
    /// Rendering YAML failed.
    #[error("cannot render YAML: {0}")]
    Yaml(String),
}

/// Which resource an event is about: the identity two versions must share
/// to be diffed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceKey {
    /// `objectRef.apiGroup` (`""` for the core group).
    pub api_group: String,
    /// `objectRef.resource`.
    pub resource: String,
    /// The object's namespace: `objectRef.namespace`, `""` for resources
    /// that are cluster-scoped (whatever namespace their events carry).
    pub namespace: String,
    /// The derived name (`objectRef.name`, else from the response object).
    pub name: String,
}

/// One version of a resource, read from one audit event.
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    /// The resource.
    pub key: ResourceKey,
    /// Event time (stage timestamp, else request received).
    pub time: Option<Timestamp>,
    /// `user.username`.
    pub user: String,
    /// The verb.
    pub verb: String,
    /// `responseStatus.code`, when there was a response.
    pub response_code: Option<i32>,
    /// Whether the event deletes the resource.
    pub deleted: bool,
    /// The derived kind (`NetworkPolicy`, …), empty when unknown.
    pub kind: String,
    /// The object after the event: the response object when it is the
    /// resource itself (not a `Status`); `None` when the event carries none.
    pub object: Option<Value>,
    /// Why the response object could not be read, when it could not (it
    /// nests deeper than the JSON parser's limit of 128 levels): the
    /// version is still listed, without its object, and cannot be diffed.
    pub object_error: Option<String>,
    /// Whether the event is a version of its object
    /// (`auditrail_event::Event::is_version`); other events (a failed write,
    /// a dry run, a subresource) can be read here but are no versions.
    pub is_version: bool,
    /// What the event did, in the timeline's words
    /// (`auditrail_event::Event::summary`).
    pub summary: String,
}

impl Version {
    /// `metadata.resourceVersion` of the object, empty when unknown.
    pub fn resource_version(&self) -> &str {
        metadata_str(self.object.as_ref(), "resourceVersion")
    }

    /// `metadata.uid` of the object, empty when unknown.
    pub fn uid(&self) -> &str {
        metadata_str(self.object.as_ref(), "uid")
    }
}

fn metadata_str<'a>(object: Option<&'a Value>, key: &str) -> &'a str {
    object
        .and_then(|o| o.get("metadata"))
        .and_then(|m| m.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Whether `value` is a resource object rather than a wrapper the API server
/// answers with (`Status` for a delete, a list for a collection).
fn is_resource_object(value: &Value) -> bool {
    let Some(map) = value.as_object() else {
        return false;
    };
    match map.get("kind").and_then(Value::as_str) {
        Some("Status" | "DeleteOptions") => false,
        Some(kind) => !kind.ends_with("List") && map.contains_key("metadata"),
        None => map.contains_key("metadata"),
    }
}

fn resource_key(event: &Event<'_>) -> ResourceKey {
    let r = event.object_ref.as_ref();
    let s = |v: Option<&std::borrow::Cow<'_, str>>| v.map(ToString::to_string).unwrap_or_default();
    ResourceKey {
        api_group: s(r.and_then(|r| r.api_group.as_ref())),
        resource: s(r.and_then(|r| r.resource.as_ref())),
        namespace: event
            .object()
            .and_then(|o| o.namespace)
            .map(std::borrow::Cow::into_owned)
            .unwrap_or_default(),
        name: event
            .derived_name()
            .map(std::borrow::Cow::into_owned)
            .unwrap_or_default(),
    }
}

/// The version recorded by the audit event `raw`.
pub fn version_of(raw: &[u8]) -> Result<Version, VersionError> {
    let parsed = parse_line(raw)?;
    let event = &parsed.event;
    let (object, object_error) = match event.response_object {
        Some(raw) => match serde_json::from_str::<Value>(raw.get()) {
            Ok(value) => (Some(value).filter(is_resource_object), None),
            Err(e) => (
                None,
                Some(format!("its response object cannot be read: {e}")),
            ),
        },
        None => (None, None),
    };
    Ok(Version {
        key: resource_key(event),
        time: event.time(),
        user: event.user.username.to_string(),
        verb: event.verb.to_string(),
        response_code: event.response_code(),
        deleted: event.verb == "delete",
        kind: event
            .derived_kind()
            .map(std::borrow::Cow::into_owned)
            .unwrap_or_default(),
        object,
        object_error,
        is_version: event.is_version(),
        summary: event.summary(),
    })
}

/// Removes what changes on every write without anyone changing it:
/// `metadata.managedFields`, `resourceVersion`, `generation`,
/// `creationTimestamp` and `deletionTimestamp`, and `lastTransitionTime`
/// of status conditions.
pub fn strip_noisy_metadata(object: &mut Value) {
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in [
            "managedFields",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "deletionTimestamp",
        ] {
            metadata.remove(key);
        }
    }
    if let Some(conditions) = object
        .get_mut("status")
        .and_then(|s| s.get_mut("conditions"))
        .and_then(Value::as_array_mut)
    {
        for condition in conditions.iter_mut().filter_map(Value::as_object_mut) {
            condition.remove("lastTransitionTime");
        }
    }
}

/// `object` as YAML with its keys sorted at every level.
///
/// `serde_json::Value` keeps objects in a sorted map (the workspace does not
/// enable `preserve_order`), so serialising it sorts the keys.
pub fn to_sorted_yaml(object: &Value) -> Result<String, VersionError> {
    serde_norway::to_string(object).map_err(|e| VersionError::Yaml(e.to_string()))
}

/// A unified diff between two versions' objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectDiff {
    /// The unified diff, with `--- from` / `+++ to` headers; empty when the
    /// objects are equal.
    pub unified: String,
    /// Whether the objects are equal (after stripping, when asked).
    pub identical: bool,
}

/// Diffs two objects as sorted YAML, with `context` unchanged lines around
/// each change, labelling the sides `from_label` and `to_label`.
pub fn diff_objects(
    from: &Value,
    to: &Value,
    ignore_noisy_metadata: bool,
    context: usize,
    from_label: &str,
    to_label: &str,
) -> Result<ObjectDiff, VersionError> {
    let (mut from, mut to) = (from.clone(), to.clone());
    if ignore_noisy_metadata {
        strip_noisy_metadata(&mut from);
        strip_noisy_metadata(&mut to);
    }
    if from == to {
        return Ok(ObjectDiff {
            unified: String::new(),
            identical: true,
        });
    }
    let (left, right) = (to_sorted_yaml(&from)?, to_sorted_yaml(&to)?);
    let unified = similar::TextDiff::from_lines(&left, &right)
        .unified_diff()
        .context_radius(context)
        .header(from_label, to_label)
        .to_string();
    Ok(ObjectDiff {
        unified,
        identical: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(verb: &str, code: i32, response: &Value) -> Vec<u8> {
        json!({
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "RequestResponse",
            "auditID": "a",
            "stage": "ResponseComplete",
            "requestURI": "/apis/networking.k8s.io/v1/namespaces/ns/networkpolicies/np",
            "verb": verb,
            "user": {"username": "alice"},
            "objectRef": {"resource": "networkpolicies", "namespace": "ns", "name": "np",
                          "apiGroup": "networking.k8s.io", "apiVersion": "v1"},
            "responseStatus": {"code": code},
            "responseObject": response,
            "requestReceivedTimestamp": "2026-01-01T00:00:00.000000Z",
            "stageTimestamp": "2026-01-01T00:00:00.100000Z"
        })
        .to_string()
        .into_bytes()
    }

    fn policy(rv: &str, port: u16) -> Value {
        json!({
            "kind": "NetworkPolicy",
            "apiVersion": "networking.k8s.io/v1",
            "metadata": {"name": "np", "namespace": "ns", "uid": "u1", "resourceVersion": rv,
                         "generation": 2, "managedFields": [{"manager": "kubectl"}]},
            "spec": {"ingress": [{"ports": [{"port": port}]}], "podSelector": {}}
        })
    }

    #[test]
    fn versions_carry_the_response_object_and_identity() {
        let v = version_of(&event("patch", 200, &policy("42", 80))).expect("version");
        assert_eq!(v.key.resource, "networkpolicies");
        assert_eq!(v.key.name, "np");
        assert_eq!(v.key.api_group, "networking.k8s.io");
        assert_eq!(v.user, "alice");
        assert_eq!(v.kind, "NetworkPolicy");
        assert_eq!(v.resource_version(), "42");
        assert_eq!(v.uid(), "u1");
        assert!(!v.deleted);
    }

    #[test]
    fn a_status_answer_is_no_object() {
        let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Success",
                            "details": {"name": "np", "kind": "networkpolicies"}});
        let v = version_of(&event("delete", 200, &status)).expect("version");
        assert!(v.deleted);
        assert_eq!(v.object, None);
        assert_eq!(v.key.name, "np");
    }

    #[test]
    fn diffs_show_the_change_and_can_ignore_noise() {
        let (a, b) = (policy("1", 80), policy("2", 443));
        let d = diff_objects(&a, &b, false, 3, "x", "y").expect("diff");
        assert!(!d.identical);
        assert!(d.unified.starts_with("--- x\n+++ y\n"), "{}", d.unified);
        assert!(d.unified.contains("-    - port: 80\n"), "{}", d.unified);
        assert!(d.unified.contains("+    - port: 443\n"), "{}", d.unified);
        assert!(
            d.unified.contains("-  resourceVersion: '1'\n"),
            "{}",
            d.unified
        );

        let d = diff_objects(&a, &b, true, 3, "x", "y").expect("diff");
        assert!(!d.unified.contains("resourceVersion"), "{}", d.unified);
        assert!(d.unified.contains("+    - port: 443\n"), "{}", d.unified);

        let same =
            diff_objects(&policy("1", 80), &policy("9", 80), true, 3, "x", "y").expect("diff");
        assert!(same.identical);
        assert_eq!(same.unified, "");
    }

    #[test]
    fn yaml_keys_are_sorted() {
        let yaml = to_sorted_yaml(&json!({"b": 1, "a": {"d": 2, "c": 3}})).expect("yaml");
        assert_eq!(yaml, "a:\n  c: 3\n  d: 2\nb: 1\n");
    }
}
