//! Applies the Kubernetes objects of a rendered set-up: the policy
//! ConfigMap, the EKS credentials Secret and the LogCollector.
//!
//! Every object goes through server-side apply with field manager
//! `auditrail` (forced, so auditrail owns the fields it sets): the API
//! server merges, so applying twice changes nothing, and a LogCollector
//! that already has other sources or stores keeps them. Objects are read
//! first to tell created, patched and unchanged apart. A dry run is the API
//! server's own (`dryRun=All`): validation, admission and defaulting run,
//! nothing is stored.
//!
//! The functions take a [`kube::Client`], never build one from the
//! environment themselves (except [`default_client`]), so tests drive them
//! through a mock Kubernetes API and the provisioner through kubeconfig or
//! the in-cluster configuration.

mod apply;
mod error;
mod manifest;

pub use apply::{Action, AppliedObject, FIELD_MANAGER, apply, default_client};
pub use error::ApplyError;
pub use manifest::{Manifest, SUPPORTED_KINDS, SupportedKind};
