//! Why a policy cannot be generated.

use thiserror::Error;

/// A request [`generate`](crate::generate) refuses: only extra resources can
/// be wrong, the profiles themselves are fixed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GenerateError {
    /// An extra resource is not `GROUP/RESOURCE` with a valid group and
    /// resource name.
    #[error("extra resource {value:?}: {reason}")]
    InvalidResource {
        /// The resource as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}
