//! Where a replay starts: the tracked objects as a LIST returned them, with
//! the times the LIST was sent and answered.
//!
//! The reporter takes snapshots itself; clusters it cannot reach (and
//! tests) bring the output of `kubectl get … -o json`, which [`parse_list`]
//! reads: a `List` whose items carry their own `kind` and `apiVersion`, or
//! a typed list (`PodList`) whose items do not and take them from the list.
//! Items of resources the replay does not track (a `kubectl get all`
//! brings Services and Deployments) are returned as [`Skipped`], so the
//! caller can say what was left out.

use jiff::Timestamp;
use serde_json::Value;

use crate::resources::{Tracked, tracked_kind};
use crate::state::{ObjectKey, State};

/// Why a snapshot was refused.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The input is not JSON.
    #[error("the snapshot is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The input is not a list of objects.
    #[error("the snapshot is not a Kubernetes List (an object with `items`): {0}")]
    NotAList(&'static str),
    /// An item says neither its kind and apiVersion nor does its list.
    #[error("item {index}: no kind and apiVersion, neither on the item nor on a typed list")]
    NoKind {
        /// Position of the item in `items`.
        index: usize,
    },
    /// An item has no `metadata.name`.
    #[error("item {index} ({kind}): no metadata.name")]
    NoName {
        /// Position of the item.
        index: usize,
        /// Its kind.
        kind: String,
    },
    /// A namespaced item has no `metadata.namespace`.
    #[error("item {index} ({kind} {name}): a namespaced object without metadata.namespace")]
    NoNamespace {
        /// Position of the item.
        index: usize,
        /// Its kind.
        kind: String,
        /// Its name.
        name: String,
    },
    /// An item of a resource the replay does not track (only in
    /// [`State::from_snapshot`]; [`parse_list`] skips those).
    #[error("item {index}: {kind} ({api_version}) is not a tracked resource")]
    Untracked {
        /// Position of the item.
        index: usize,
        /// Its kind.
        kind: String,
        /// Its apiVersion.
        api_version: String,
    },
    /// The LIST was answered before it was sent.
    #[error("the snapshot's request completed ({completion}) before it started ({start})")]
    Times {
        /// When the LIST was sent.
        start: Timestamp,
        /// When it was answered.
        completion: Timestamp,
    },
}

/// The tracked objects at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// When the LIST requests were sent: the trail's writes from this
    /// instant on are applied on top of the snapshot.
    pub request_start: Timestamp,
    /// When the last LIST was answered.
    pub request_completion: Timestamp,
    /// The objects, each with `kind` and `apiVersion`.
    pub objects: Vec<Value>,
}

/// An item [`parse_list`] left out because the replay does not track it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Position of the item in `items`.
    pub index: usize,
    /// Its kind.
    pub kind: String,
    /// Its apiVersion.
    pub api_version: String,
}

fn str_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Reads the output of `kubectl get … -o json` taken between
/// `request_start` and `request_completion`. Items of untracked resources
/// are skipped and listed; every item kept gets its `kind` and
/// `apiVersion` (from the list when it had none).
pub fn parse_list(
    json: &[u8],
    request_start: Timestamp,
    request_completion: Timestamp,
) -> Result<(Snapshot, Vec<Skipped>), SnapshotError> {
    if request_completion < request_start {
        return Err(SnapshotError::Times {
            start: request_start,
            completion: request_completion,
        });
    }
    let list: Value = serde_json::from_slice(json)?;
    if !list.is_object() {
        return Err(SnapshotError::NotAList("not an object"));
    }
    let items = match list.get("items") {
        Some(Value::Array(items)) => items,
        Some(Value::Null) => &Vec::new(),
        Some(_) => return Err(SnapshotError::NotAList("`items` is not an array")),
        None => return Err(SnapshotError::NotAList("no `items`")),
    };
    // A typed list (`PodList`) names its items' kind; `List` does not.
    let list_kind = str_field(&list, "kind")
        .and_then(|k| k.strip_suffix("List"))
        .filter(|k| !k.is_empty());
    let list_version = str_field(&list, "apiVersion");
    let mut objects = Vec::new();
    let mut skipped = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let kind = str_field(item, "kind").or(list_kind);
        let api_version = str_field(item, "apiVersion").or(list_version);
        let (Some(kind), Some(api_version)) = (kind, api_version) else {
            return Err(SnapshotError::NoKind { index });
        };
        if tracked_kind(kind, api_version).is_none() {
            skipped.push(Skipped {
                index,
                kind: kind.to_owned(),
                api_version: api_version.to_owned(),
            });
            continue;
        }
        let mut object = item.clone();
        if let Some(map) = object.as_object_mut() {
            map.insert("kind".into(), Value::from(kind));
            map.insert("apiVersion".into(), Value::from(api_version));
        }
        key_of(index, &object)?;
        objects.push(object);
    }
    Ok((
        Snapshot {
            request_start,
            request_completion,
            objects,
        },
        skipped,
    ))
}

/// The tracked type and key of the snapshot object at `index`.
pub(crate) fn key_of(index: usize, object: &Value) -> Result<(Tracked, ObjectKey), SnapshotError> {
    let (Some(kind), Some(api_version)) =
        (str_field(object, "kind"), str_field(object, "apiVersion"))
    else {
        return Err(SnapshotError::NoKind { index });
    };
    let Some(t) = tracked_kind(kind, api_version) else {
        return Err(SnapshotError::Untracked {
            index,
            kind: kind.to_owned(),
            api_version: api_version.to_owned(),
        });
    };
    let metadata = object.get("metadata").unwrap_or(&Value::Null);
    let Some(name) = str_field(metadata, "name") else {
        return Err(SnapshotError::NoName {
            index,
            kind: kind.to_owned(),
        });
    };
    let namespace = if t.namespaced {
        match str_field(metadata, "namespace") {
            Some(ns) => ns,
            None => {
                return Err(SnapshotError::NoNamespace {
                    index,
                    kind: kind.to_owned(),
                    name: name.to_owned(),
                });
            }
        }
    } else {
        ""
    };
    Ok((t, ObjectKey::new(t.resource, t.api_group, namespace, name)))
}

impl State {
    /// The state a snapshot describes. Two objects under one key (a list
    /// taken twice) keep the higher resourceVersion.
    pub fn from_snapshot(snapshot: &Snapshot) -> Result<Self, SnapshotError> {
        let mut state = Self::default();
        for (index, object) in snapshot.objects.iter().enumerate() {
            let (_, key) = key_of(index, object)?;
            let newer = state.get(&key).is_none_or(|old| {
                crate::state::resource_version(old) <= crate::state::resource_version(object)
            });
            if newer {
                state.insert(key, object.clone());
            }
        }
        Ok(state)
    }
}
