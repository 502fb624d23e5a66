//! Server-side apply of the parsed objects.

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::{Client, Error as KubeError};

use crate::error::ApplyError;
use crate::manifest::{Manifest, ParsedObject, is_dns1123_label, parse};

/// The field manager of every apply: the owner of the fields auditrail sets.
pub const FIELD_MANAGER: &str = "auditrail";

/// What was (or, on a dry run, would be) done to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// It did not exist.
    Created,
    /// It existed and changed.
    Patched,
    /// It existed and already matched.
    Unchanged,
}

/// The outcome for one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedObject {
    /// e.g. `v1`, `operator.tigera.io/v1`.
    pub api_version: String,
    /// e.g. `ConfigMap`.
    pub kind: String,
    /// `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// The object's name.
    pub name: String,
    /// What was done.
    pub action: Action,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

/// A client from kubeconfig (`KUBECONFIG`, `~/.kube/config`) or, failing
/// that, the in-cluster service account.
pub async fn default_client() -> Result<Client, ApplyError> {
    Client::try_default()
        .await
        .map_err(|e| ApplyError::NoConfiguration(e.to_string()))
}

/// Applies every object of `manifests`, in order. Namespaced objects without
/// a namespace go to `default_namespace`; objects that name theirs keep it.
/// Stops at the first failure (the objects before it stay applied; applying
/// again is safe).
pub async fn apply(
    client: &Client,
    manifests: &[Manifest],
    default_namespace: &str,
    dry_run: bool,
) -> Result<Vec<AppliedObject>, ApplyError> {
    if !is_dns1123_label(default_namespace) {
        return Err(ApplyError::InvalidNamespace(default_namespace.to_owned()));
    }
    let objects = parse(manifests)?;
    let mut params = PatchParams::apply(FIELD_MANAGER).force();
    params.dry_run = dry_run;
    let mut applied = Vec::with_capacity(objects.len());
    for ParsedObject {
        kind,
        name,
        mut object,
    } in objects
    {
        let namespace = kind.namespaced.then(|| {
            object
                .metadata
                .namespace
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| default_namespace.to_owned())
        });
        object.metadata.namespace.clone_from(&namespace);
        let resource = kind.api_resource();
        let api: Api<DynamicObject> = match &namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        let failed = |error: KubeError| {
            failure(
                error,
                kind.kind,
                &name,
                &kind.api_version(),
                kind.installed_by,
            )
        };
        let before = api.get_opt(&name).await.map_err(failed)?;
        let after = api
            .patch(&name, &params, &Patch::Apply(&object))
            .await
            .map_err(failed)?;
        let action = match before {
            None => Action::Created,
            Some(before) if comparable(&before) == comparable(&after) => Action::Unchanged,
            Some(_) => Action::Patched,
        };
        applied.push(AppliedObject {
            api_version: kind.api_version(),
            kind: kind.kind.to_owned(),
            namespace,
            name,
            action,
            dry_run,
        });
    }
    Ok(applied)
}

/// The object without what changes on every write even when nothing else
/// does (the field managers' timestamps, the resource version).
fn comparable(object: &DynamicObject) -> DynamicObject {
    let mut object = object.clone();
    object.metadata.managed_fields = None;
    object.metadata.resource_version = None;
    object
}

fn failure(
    error: KubeError,
    kind: &str,
    name: &str,
    api_version: &str,
    installed_by: &'static str,
) -> ApplyError {
    match error {
        KubeError::Api(status) => {
            // An object-level 404 carries the Status details; a resource
            // type the server does not serve answers a bare 404.
            if status.code == 404 && status.details.is_none() {
                ApplyError::MissingResourceType {
                    kind: kind.to_owned(),
                    name: name.to_owned(),
                    api_version: api_version.to_owned(),
                    hint: installed_by,
                }
            } else if status.code == 403 {
                ApplyError::Forbidden {
                    kind: kind.to_owned(),
                    name: name.to_owned(),
                    message: status.message,
                }
            } else {
                ApplyError::Rejected {
                    kind: kind.to_owned(),
                    name: name.to_owned(),
                    code: status.code,
                    message: status.message,
                }
            }
        }
        other => ApplyError::Unreachable(other.to_string()),
    }
}
