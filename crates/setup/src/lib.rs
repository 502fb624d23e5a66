//! The per-platform set-up that makes an API server write the audit trail
//! auditrail reads, rendered as files and Kubernetes objects.
//!
//! Turning auditing on differs per platform: kube-apiserver flags and a
//! static pod on premises, the cluster spec on kOps, `cluster.yml` on RKE,
//! CloudWatch Logs on EKS (whose control plane has a fixed policy). The
//! rendering is pure (options in, [`Setup`] out) so the provisioner service,
//! the CLI and the golden-file tests share it, and applying the Kubernetes
//! objects is a separate step (`auditrail-kube-apply`).
//!
//! ```
//! use auditrail_setup::{ArtifactKind, Platform, SetupOptions, render};
//!
//! let setup = render(Platform::OnPrem, &SetupOptions::default())?;
//! let flags = setup.artifacts.iter().find(|a| a.kind == ArtifactKind::ApiServerFlags);
//! assert!(flags.is_some_and(|f| f.content.contains("--audit-log-path=/var/log/calico/audit/kube-audit.log")));
//! # Ok::<(), auditrail_setup::SetupError>(())
//! ```

mod eks;
mod error;
mod objects;
mod options;
mod render;

pub use error::SetupError;
pub use objects::{
    EKS_SECRET_NAME, EKS_SECRET_NAMESPACE, LOG_COLLECTOR_NAME, POLICY_CONFIG_MAP_KEY,
    POLICY_CONFIG_MAP_NAME,
};
pub use options::{AwsCredentials, EksOptions, Platform, SetupOptions};
pub use render::{Artifact, ArtifactKind, Setup, render};
