//! Why objects could not be applied.

use thiserror::Error;

/// What went wrong applying a set-up. The variants follow what the caller
/// should do about it: fix the input, fix the cluster, fix the permissions,
/// or retry.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ApplyError {
    /// A manifest does not parse, or an object in it lacks a name.
    #[error("{artifact}: {message}")]
    InvalidManifest {
        /// The artifact the manifest came from.
        artifact: String,
        /// What is wrong.
        message: String,
    },
    /// The namespace for objects that name none is not a namespace name.
    #[error("namespace {0:?} is not a lowercase RFC 1123 label")]
    InvalidNamespace(String),
    /// An object of a kind auditrail does not apply.
    #[error(
        "{artifact}: {kind} ({api_version}) is not applied by auditrail; it applies ConfigMap, Secret and LogCollector"
    )]
    UnsupportedKind {
        /// The artifact the manifest came from.
        artifact: String,
        /// The object's kind.
        kind: String,
        /// The object's apiVersion.
        api_version: String,
    },
    /// The API server does not serve the kind (its CRD is not installed).
    #[error("{kind} {name}: the cluster does not serve {api_version} {kind} ({hint})")]
    MissingResourceType {
        /// The kind.
        kind: String,
        /// The object's name.
        name: String,
        /// The apiVersion not served.
        api_version: String,
        /// What installs it.
        hint: &'static str,
    },
    /// RBAC forbids the request.
    #[error("{kind} {name}: forbidden: {message}")]
    Forbidden {
        /// The kind.
        kind: String,
        /// The object's name.
        name: String,
        /// The API server's message.
        message: String,
    },
    /// The API server refused the request for another reason.
    #[error("{kind} {name}: the Kubernetes API answered {code}: {message}")]
    Rejected {
        /// The kind.
        kind: String,
        /// The object's name.
        name: String,
        /// The HTTP status code.
        code: u16,
        /// The API server's message.
        message: String,
    },
    /// No kubeconfig or in-cluster configuration was found or usable.
    #[error("no Kubernetes configuration: {0}")]
    NoConfiguration(String),
    /// The API server could not be reached.
    #[error("cannot reach the Kubernetes API: {0}")]
    Unreachable(String),
}
