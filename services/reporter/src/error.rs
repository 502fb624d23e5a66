//! Every failure of the reporter, and the one place that decides the gRPC
//! code of each: handlers return [`ReportError`], never a `Status` built on
//! the spot, so a failure always has the code `report.proto` documents.

use tonic::Status;

/// Why a reporter call (or a report run) failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Bad input, naming the request field.
    #[error("{field}: {message}")]
    Invalid {
        /// The field, as the proto names it (`definition.schedule`).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// No such definition or report.
    #[error("{0}")]
    NotFound(String),
    /// The definition name is taken.
    #[error("{0}")]
    AlreadyExists(String),
    /// An update whose etag no longer matches.
    #[error("{0}")]
    Aborted(String),
    /// The report cannot be downloaded yet.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The reporter's database failed.
    #[error("report database: {0}")]
    Database(String),
    /// The query service answered an error or could not be reached.
    #[error("reading the trail: {0}")]
    Trail(String),
    /// The trail's answer was not what the contract says (a bug).
    #[error("{0}")]
    Internal(String),
}

impl ReportError {
    /// Bad input in `field`.
    pub fn invalid(field: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.to_string(),
        }
    }

    /// A database failure.
    pub fn db(error: impl std::fmt::Display) -> Self {
        Self::Database(error.to_string())
    }

    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Trail(_) | Self::Database(_))
    }
}

impl From<ReportError> for Status {
    fn from(error: ReportError) -> Self {
        let message = error.to_string();
        match error {
            ReportError::Invalid { .. } => Self::invalid_argument(message),
            ReportError::NotFound(_) => Self::not_found(message),
            ReportError::AlreadyExists(_) => Self::already_exists(message),
            ReportError::Aborted(_) => Self::aborted(message),
            ReportError::FailedPrecondition(_) => Self::failed_precondition(message),
            ReportError::Database(_) | ReportError::Trail(_) => Self::unavailable(message),
            ReportError::Internal(_) => Self::internal(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_has_its_documented_code() {
        let cases = [
            (
                ReportError::invalid("name", "bad"),
                tonic::Code::InvalidArgument,
            ),
            (ReportError::NotFound("x".into()), tonic::Code::NotFound),
            (
                ReportError::AlreadyExists("x".into()),
                tonic::Code::AlreadyExists,
            ),
            (ReportError::Aborted("x".into()), tonic::Code::Aborted),
            (
                ReportError::FailedPrecondition("x".into()),
                tonic::Code::FailedPrecondition,
            ),
            (ReportError::db("x"), tonic::Code::Unavailable),
            (ReportError::Trail("x".into()), tonic::Code::Unavailable),
        ];
        for (error, code) in cases {
            assert_eq!(Status::from(error).code(), code);
        }
        let status = Status::from(ReportError::invalid(
            "definition.schedule",
            "fires 60 times",
        ));
        assert_eq!(status.message(), "definition.schedule: fires 60 times");
    }
}
