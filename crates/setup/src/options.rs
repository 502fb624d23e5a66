//! What a set-up is rendered from.

use std::fmt;

use auditrail_policy_gen::PolicyRequest;

/// Where the API server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    /// On premises / kubeadm: a static kube-apiserver pod.
    OnPrem,
    /// Amazon EKS: the audit log is in CloudWatch Logs.
    Eks,
    /// kOps: the cluster spec.
    Kops,
    /// Rancher RKE: `cluster.yml`.
    Rke,
    /// OpenShift: refused.
    OpenShift,
}

/// Options of every platform. [`Default`] gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupOptions {
    /// The audit policy to install (not used on EKS, whose control plane has
    /// its own).
    pub policy: PolicyRequest,
    /// `--audit-log-path`: where auditrail's ingestor reads.
    pub log_path: String,
    /// `--audit-log-maxage`: days to keep rotated files (0: no limit).
    pub max_age_days: u32,
    /// `--audit-log-maxbackup`: rotated files to keep (0: no limit).
    pub max_backups: u32,
    /// `--audit-log-maxsize`: megabytes before rotation (0: no rotation).
    pub max_size_mb: u32,
    /// `--audit-policy-file` on the control-plane nodes; `None` for the
    /// platform's usual place.
    pub policy_path: Option<String>,
    /// EKS options; required for EKS, ignored otherwise.
    pub eks: Option<EksOptions>,
}

/// The log file the ingestor reads by default.
pub(crate) const DEFAULT_LOG_PATH: &str = "/var/log/calico/audit/kube-audit.log";

impl Default for SetupOptions {
    fn default() -> Self {
        Self {
            policy: PolicyRequest::default(),
            log_path: DEFAULT_LOG_PATH.to_owned(),
            max_age_days: 30,
            max_backups: 10,
            max_size_mb: 100,
            policy_path: None,
            eks: None,
        }
    }
}

/// Where EKS's audit log is and how to read it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EksOptions {
    /// The EKS cluster's name.
    pub cluster_name: String,
    /// Its AWS region, e.g. `us-west-2`.
    pub region: String,
    /// The log group; `None` for `/aws/eks/<cluster_name>/cluster`.
    pub log_group: Option<String>,
    /// The stream prefix; `None` for `kube-apiserver-audit-`.
    pub stream_prefix: Option<String>,
    /// Seconds between fetches; `None` for 60.
    pub fetch_interval_seconds: Option<u32>,
    /// Keys for the log forwarder's Secret; `None` when the identity comes
    /// from elsewhere (e.g. IAM roles for service accounts).
    pub credentials: Option<AwsCredentials>,
}

/// An AWS access key pair. `Debug` never shows the secret key.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    /// The access key id (`aws-id`).
    pub access_key_id: String,
    /// The secret access key (`aws-key`).
    pub secret_access_key: String,
}

impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}
