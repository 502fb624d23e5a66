//! Every failure of the indexer's API, and the one place that decides the
//! gRPC code of each: handlers return [`IndexerError`], never a `Status`
//! built on the spot.

use auditrail_store::StoreError;
use tonic::Status;

/// Why an indexer call failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IndexerError {
    /// The request is malformed or out of bounds (a missing batch id or
    /// cluster, too many events, a bad cut-off).
    #[error("{0}")]
    Invalid(String),
    /// A retention shorter than the floor, without `force`.
    #[error("{0}")]
    NeedsForce(String),
    /// The caller's permission does not reach what it asked for (a
    /// cluster outside its scope).
    #[error("{0}")]
    Forbidden(String),
    /// The store failed; its own error decides the code (a full disk or a
    /// store that cannot commit is UNAVAILABLE: nothing was acknowledged).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The indexing task died (a bug).
    #[error("indexing task failed: {0}")]
    Task(String),
}

impl IndexerError {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }
}

impl From<IndexerError> for Status {
    fn from(err: IndexerError) -> Self {
        match err {
            IndexerError::Invalid(m) => Self::invalid_argument(m),
            IndexerError::NeedsForce(m) => Self::failed_precondition(m),
            IndexerError::Forbidden(m) => Self::permission_denied(m),
            IndexerError::Store(e) => Self::from(e),
            IndexerError::Task(m) => Self::internal(format!("indexing task failed: {m}")),
        }
    }
}
