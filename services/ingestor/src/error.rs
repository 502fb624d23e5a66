//! Every failure of the ingestor's API (`IngestorService`), and the one
//! place that decides the gRPC code of each: handlers return
//! [`IngestorError`], never a `Status` built on the spot, so the same
//! failure always has the same code.

use auditrail_server::PageSizeTooLarge;
use tonic::Status;

/// Why an `IngestorService` call failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IngestorError {
    /// `page_size` above the maximum.
    #[error(transparent)]
    PageSize(#[from] PageSizeTooLarge),
    /// A `page_token` this server did not issue.
    #[error("page_token is not one this server issued")]
    PageToken,
    /// The dead-letter file cannot be read now.
    #[error("cannot read the dead-letter file: {0}")]
    DeadLetterFile(std::io::Error),
    /// The task reading the file died (a bug, or the runtime shutting down).
    #[error("{0}")]
    Task(String),
}

impl From<IngestorError> for Status {
    fn from(error: IngestorError) -> Self {
        let message = error.to_string();
        match error {
            IngestorError::PageSize(_) | IngestorError::PageToken => {
                Self::invalid_argument(message)
            }
            IngestorError::DeadLetterFile(_) => Self::unavailable(message),
            IngestorError::Task(_) => Self::internal(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn each_failure_has_its_code() {
        for (error, code) in [
            (
                IngestorError::PageSize(PageSizeTooLarge {
                    requested: 1001,
                    max: 1000,
                }),
                Code::InvalidArgument,
            ),
            (IngestorError::PageToken, Code::InvalidArgument),
            (
                IngestorError::DeadLetterFile(std::io::Error::other("gone")),
                Code::Unavailable,
            ),
            (IngestorError::Task("panicked".to_owned()), Code::Internal),
        ] {
            let message = error.to_string();
            let status = Status::from(error);
            assert_eq!(status.code(), code, "{message}");
            assert_eq!(status.message(), message);
        }
    }
}
