//! Why a set-up cannot be rendered.

use auditrail_policy_gen::GenerateError;
use thiserror::Error;

/// A set-up [`render`](crate::render) refuses.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SetupError {
    /// The platform is not supported (OpenShift).
    #[error("{platform} is not supported: {reason}")]
    Unsupported {
        /// The platform's name.
        platform: &'static str,
        /// Why, for the person who asked.
        reason: &'static str,
    },
    /// A required option is empty or has the wrong form.
    #[error("{option}: {reason}")]
    InvalidOption {
        /// The option, e.g. `eks.cluster_name`.
        option: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The policy cannot be generated (a bad extra resource).
    #[error(transparent)]
    Policy(#[from] GenerateError),
    /// A rendered document could not be encoded (a bug, not bad input).
    #[error("cannot encode {what}: {message}")]
    Encode {
        /// The document.
        what: &'static str,
        /// The encoder's message.
        message: String,
    },
}

impl SetupError {
    pub(crate) fn invalid(option: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidOption {
            option,
            reason: reason.into(),
        }
    }
}
