//! Every failure of the query service, and the one place that decides the
//! gRPC code of each: handlers return [`QueryError`], never a `Status`
//! built on the spot, so the same failure always has the same code.

use auditrail_store::StoreError;
use tonic::Status;

use crate::filter::FilterError;

/// Why a query call failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum QueryError {
    /// The request is malformed or out of bounds: a filter, selector, time
    /// range, page size or token, sort order, missing field.
    #[error("{0}")]
    Invalid(String),
    /// The request names something that is not stored.
    #[error("{0}")]
    NotFound(String),
    /// A well-formed request that does not apply to what is stored (a diff
    /// of events that are not versions of one object).
    #[error("{0}")]
    NotApplicable(String),
    /// The caller may not read what it asked for (a cluster or event type
    /// outside its scope).
    #[error("{0}")]
    Forbidden(String),
    /// A bound on concurrent work (exports) is reached; retry later.
    #[error("{0}")]
    Busy(String),
    /// Stored data the answer needs is damaged.
    #[error("{0}")]
    Damaged(String),
    /// The store failed; its own error decides the code.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bug or an event stored in a form this build cannot read.
    #[error("{0}")]
    Internal(String),
}

impl QueryError {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    pub(crate) fn not_applicable(message: impl Into<String>) -> Self {
        Self::NotApplicable(message.into())
    }

    pub(crate) fn busy(message: impl Into<String>) -> Self {
        Self::Busy(message.into())
    }

    pub(crate) fn damaged(message: impl Into<String>) -> Self {
        Self::Damaged(message.into())
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::Internal(message.into())
    }
}

impl From<FilterError> for QueryError {
    fn from(err: FilterError) -> Self {
        Self::Invalid(err.0)
    }
}

impl From<QueryError> for Status {
    fn from(err: QueryError) -> Self {
        match err {
            QueryError::Invalid(m) => Self::invalid_argument(m),
            QueryError::NotFound(m) => Self::not_found(m),
            QueryError::NotApplicable(m) => Self::failed_precondition(m),
            QueryError::Forbidden(m) => Self::permission_denied(m),
            QueryError::Busy(m) => Self::resource_exhausted(m),
            QueryError::Damaged(m) => Self::data_loss(m),
            QueryError::Store(e) => Self::from(e),
            QueryError::Internal(m) => Self::internal(m),
        }
    }
}
