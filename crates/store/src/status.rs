//! The gRPC status of a store failure, decided once for every service that
//! reads or writes the store (the indexer and the query service map their
//! own errors through it). Behind the `grpc` feature: the store's users
//! that are not gRPC services do not pull tonic in.

use crate::StoreError;

impl From<&StoreError> for tonic::Status {
    /// A bad request is INVALID_ARGUMENT, a store that cannot be reached
    /// UNAVAILABLE (retry), a bound reached RESOURCE_EXHAUSTED, damaged
    /// stored data DATA_LOSS (the message names what is damaged), anything
    /// else INTERNAL.
    fn from(err: &StoreError) -> Self {
        match err {
            StoreError::InvalidRequest(m) => Self::invalid_argument(m.clone()),
            StoreError::Unavailable(m) => Self::unavailable(m.clone()),
            StoreError::Internal(m) => Self::internal(m.clone()),
            StoreError::LimitReached(m) => Self::resource_exhausted(m.clone()),
            StoreError::DataLoss(m) => Self::data_loss(m.clone()),
        }
    }
}

impl From<StoreError> for tonic::Status {
    fn from(err: StoreError) -> Self {
        Self::from(&err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn every_failure_has_its_code_and_keeps_its_message() {
        let cases = [
            (
                StoreError::InvalidRequest("q".into()),
                Code::InvalidArgument,
            ),
            (StoreError::Unavailable("u".into()), Code::Unavailable),
            (StoreError::Internal("i".into()), Code::Internal),
            (
                StoreError::LimitReached("l".into()),
                Code::ResourceExhausted,
            ),
            (StoreError::DataLoss("d".into()), Code::DataLoss),
        ];
        for (err, code) in cases {
            let status = tonic::Status::from(&err);
            assert_eq!(status.code(), code, "{err}");
            assert!(err.to_string().ends_with(status.message()), "{err}");
        }
    }
}
