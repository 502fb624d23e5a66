//! The rebuilt set of objects: what a report reads, and what must come out
//! byte-identical however often and in whatever arrival order it is
//! rebuilt. Objects are kept as the API server returned them, less
//! `metadata.managedFields`. Objects are held in a sorted map by key, and
//! `serde_json::Value` keeps object members sorted, so serialising the
//! state is deterministic.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// Which object: a tracked (resource, group) and its namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectKey {
    /// The resource (plural), e.g. `networkpolicies`.
    pub resource: String,
    /// The group it is tracked under (`""`: core).
    pub api_group: String,
    /// The namespace; `""` for cluster-scoped objects.
    pub namespace: String,
    /// The name.
    pub name: String,
}

impl ObjectKey {
    /// A key from its parts.
    pub fn new(resource: &str, api_group: &str, namespace: &str, name: &str) -> Self {
        Self {
            resource: resource.to_owned(),
            api_group: api_group.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }
}

/// `metadata.resourceVersion` as the integer the API server makes it (etcd's
/// revision); `None` when absent or not an integer.
pub fn resource_version(object: &Value) -> Option<u64> {
    object
        .get("metadata")?
        .get("resourceVersion")?
        .as_str()?
        .parse()
        .ok()
}

/// The objects of the tracked resources at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    objects: BTreeMap<ObjectKey, Value>,
}

/// One object as the state serialises it.
#[derive(Serialize)]
struct Entry<'a> {
    #[serde(flatten)]
    key: &'a ObjectKey,
    object: &'a Value,
}

impl State {
    /// The object under `key`.
    pub fn get(&self, key: &ObjectKey) -> Option<&Value> {
        self.objects.get(key)
    }

    /// Every object, by key.
    pub fn iter(&self) -> impl Iterator<Item = (&ObjectKey, &Value)> {
        self.objects.iter()
    }

    /// The objects of `resource` in `api_group` (the group they are tracked
    /// under), by namespace and name.
    pub fn of<'a>(
        &'a self,
        resource: &'a str,
        api_group: &'a str,
    ) -> impl Iterator<Item = (&'a ObjectKey, &'a Value)> + 'a {
        self.objects
            .iter()
            .filter(move |(k, _)| k.resource == resource && k.api_group == api_group)
    }

    /// How many objects there are.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// The state as JSON: an array of `{resource, apiGroup, namespace, name,
    /// object}` sorted by key. The same state always gives the same bytes.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let entries: Vec<Entry<'_>> = self
            .objects
            .iter()
            .map(|(key, object)| Entry { key, object })
            .collect();
        serde_json::to_vec(&entries)
    }

    /// Puts `object` under `key`, without its `metadata.managedFields`:
    /// the server-side-apply bookkeeping is often most of an object's
    /// bytes, says nothing about what the object does, and `kubectl get`
    /// hides it too.
    pub(crate) fn insert(&mut self, key: ObjectKey, mut object: Value) {
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.remove("managedFields");
        }
        self.objects.insert(key, object);
    }

    pub(crate) fn remove(&mut self, key: &ObjectKey) -> Option<Value> {
        self.objects.remove(key)
    }

    /// Removes every namespaced object in `namespace`; their keys.
    pub(crate) fn remove_namespace(&mut self, namespace: &str) -> Vec<ObjectKey> {
        let gone: Vec<ObjectKey> = self
            .objects
            .keys()
            .filter(|k| k.namespace == namespace)
            .cloned()
            .collect();
        for key in &gone {
            self.objects.remove(key);
        }
        gone
    }
}
