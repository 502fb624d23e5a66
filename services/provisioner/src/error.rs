//! Every failure of the provisioner, and the one place that decides the
//! gRPC code of each: handlers return [`ProvisionError`], never a `Status`
//! built on the spot, so the same failure always has the same code (the
//! codes the proto documents for each RPC).

use auditrail_kube_apply::ApplyError;
use auditrail_setup::SetupError;
use tonic::Status;

use crate::convert::InvalidRequest;

/// Why a provisioner call failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProvisionError {
    /// A request the proto's documented checks refuse.
    #[error(transparent)]
    Invalid(#[from] InvalidRequest),
    /// A set-up `auditrail-setup` refuses to render.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// Applying the set-up to the cluster failed.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// No slot for policy work: the server is shutting down.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// A bug: policy work that died, a checked request that still failed.
    #[error("{0}")]
    Internal(String),
}

impl ProvisionError {
    pub(crate) fn internal(message: impl std::fmt::Display) -> Self {
        Self::Internal(message.to_string())
    }
}

impl From<ProvisionError> for Status {
    fn from(error: ProvisionError) -> Self {
        match error {
            ProvisionError::Invalid(e) => Self::invalid_argument(e.to_string()),
            ProvisionError::Setup(e) => setup_status(&e),
            ProvisionError::Apply(e) => apply_status(&e),
            ProvisionError::ShuttingDown => Self::unavailable(error.to_string()),
            ProvisionError::Internal(m) => Self::internal(m),
        }
    }
}

/// A refused set-up: OpenShift is a precondition of the cluster, everything
/// else bad input.
fn setup_status(error: &SetupError) -> Status {
    match error {
        SetupError::Unsupported { .. } => Status::failed_precondition(error.to_string()),
        SetupError::InvalidOption { .. } => Status::invalid_argument(error.to_string()),
        SetupError::Policy(e) => Status::invalid_argument(format!("extra_resources: {e}")),
        SetupError::Encode { .. } => Status::internal(error.to_string()),
    }
}

/// An apply failure: what the cluster answered, or why it was not reached.
fn apply_status(error: &ApplyError) -> Status {
    let message = error.to_string();
    match error {
        ApplyError::InvalidManifest { .. }
        | ApplyError::InvalidNamespace(_)
        | ApplyError::UnsupportedKind { .. } => Status::invalid_argument(message),
        ApplyError::MissingResourceType { .. } | ApplyError::NoConfiguration(_) => {
            Status::failed_precondition(message)
        }
        ApplyError::Forbidden { .. } => Status::permission_denied(message),
        ApplyError::Rejected { code, .. } => match code {
            400 | 422 => Status::invalid_argument(message),
            401 | 403 => Status::permission_denied(message),
            429 | 500.. => Status::unavailable(message),
            _ => Status::failed_precondition(message),
        },
        ApplyError::Unreachable(_) => Status::unavailable(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn apply_errors_get_the_documented_codes() {
        let rejected = |code| ApplyError::Rejected {
            kind: "ConfigMap".to_owned(),
            name: "p".to_owned(),
            code,
            message: "m".to_owned(),
        };
        for (error, expected) in [
            (
                ApplyError::UnsupportedKind {
                    artifact: "a".to_owned(),
                    kind: "Deployment".to_owned(),
                    api_version: "apps/v1".to_owned(),
                },
                Code::InvalidArgument,
            ),
            (
                ApplyError::MissingResourceType {
                    kind: "LogCollector".to_owned(),
                    name: "tigera-secure".to_owned(),
                    api_version: "operator.tigera.io/v1".to_owned(),
                    hint: "install the Tigera operator first",
                },
                Code::FailedPrecondition,
            ),
            (
                ApplyError::NoConfiguration("none".to_owned()),
                Code::FailedPrecondition,
            ),
            (
                ApplyError::InvalidNamespace("A".to_owned()),
                Code::InvalidArgument,
            ),
            (
                ApplyError::Forbidden {
                    kind: "Secret".to_owned(),
                    name: "s".to_owned(),
                    message: "m".to_owned(),
                },
                Code::PermissionDenied,
            ),
            (rejected(422), Code::InvalidArgument),
            (rejected(404), Code::FailedPrecondition),
            (rejected(409), Code::FailedPrecondition),
            (rejected(401), Code::PermissionDenied),
            (rejected(503), Code::Unavailable),
            (rejected(429), Code::Unavailable),
            (
                ApplyError::Unreachable("refused".to_owned()),
                Code::Unavailable,
            ),
        ] {
            let message = error.to_string();
            let status = Status::from(ProvisionError::from(error));
            assert_eq!(status.code(), expected, "{message}");
            assert_eq!(status.message(), message);
        }
    }
}
