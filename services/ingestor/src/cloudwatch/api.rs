//! The CloudWatch Logs client of a source: how it is built (region,
//! endpoint, credentials) and how its calls are retried.
//!
//! The SDK's own retries are off: every call goes through `Api::call`,
//! which retries throttling, 5xx answers, timeouts and connection failures
//! with exponential backoff and jitter, without limit and until the
//! ingestor stops, so a throttled source slows down but never skips. Errors
//! retrying cannot fix (a deleted stream or group, refused credentials) are
//! returned to the caller, which logs them and goes on with the rest.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use auditrail_proto::v1;
use auditrail_server::StopSignal;
use aws_config::BehaviorVersion;
use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::config::{Credentials, Region};
use aws_sdk_cloudwatchlogs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use backon::BackoffBuilder as _;

use super::settings::{CloudWatchSource, KEY_ID_FILE, SECRET_KEY_FILE};
use crate::settings::RetrySettings;
use crate::status::StatusBoard;

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Neither the settings nor the AWS default chain name a region.
    #[error(
        "no AWS region for {source_name}: set `region` (or --cloudwatch-region), AWS_REGION or a profile region"
    )]
    NoRegion {
        /// The source.
        source_name: String,
    },
    /// A credentials file could not be read or is empty.
    #[error("cannot read the AWS credentials file {path}: {reason}")]
    Credentials {
        /// The file.
        path: String,
        /// What went wrong (never the file's content).
        reason: String,
    },
}

/// Builds the client of `source`: its region (else the default chain's),
/// its endpoint override, and its key files (else the default credential
/// chain: environment, profile, web identity for IRSA).
pub async fn client(source: &CloudWatchSource) -> Result<Client, ClientError> {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(30))
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .timeout_config(timeouts);
    if let Some(region) = &source.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(endpoint) = &source.endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    if let Some(dir) = &source.credentials_dir {
        let id = read_secret(&dir.join(KEY_ID_FILE)).await?;
        let key = read_secret(&dir.join(SECRET_KEY_FILE)).await?;
        loader = loader.credentials_provider(Credentials::new(
            id,
            key,
            None,
            None,
            "auditrail-credentials-dir",
        ));
    }
    let config = loader.load().await;
    if config.region().is_none() {
        return Err(ClientError::NoRegion {
            source_name: source.name(),
        });
    }
    Ok(Client::new(&config))
}

/// Reads one mounted secret file, trimmed. Its content never reaches a log
/// or an error message.
async fn read_secret(path: &Path) -> Result<String, ClientError> {
    let error = |reason: String| ClientError::Credentials {
        path: path.display().to_string(),
        reason,
    };
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|e| error(e.kind().to_string()))?;
    let text = String::from_utf8(bytes).map_err(|_| error("not UTF-8".to_owned()))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(error("the file is empty".to_owned()));
    }
    Ok(text.to_owned())
}

/// What a failed call means for the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// Throttled: retry later.
    Throttled,
    /// A 5xx answer, a timeout or a connection failure: retry.
    Transient,
    /// The stream or group does not exist (any more).
    NotFound,
    /// A request parameter was refused (for a read with a token: the
    /// token is no longer valid).
    InvalidParameter,
    /// Anything else (credentials, permissions): needs an operator.
    Fatal,
}

/// Error codes CloudWatch Logs answers when a caller goes too fast.
const THROTTLING_CODES: [&str; 4] = [
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
];

/// Classifies an SDK error.
pub(crate) fn classify<E: ProvideErrorMetadata, R>(
    error: &SdkError<E, R>,
    status: Option<u16>,
) -> FailureKind {
    match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            return FailureKind::Transient;
        }
        SdkError::ConstructionFailure(_) => return FailureKind::Fatal,
        _ => {}
    }
    match error.code() {
        Some(code) if THROTTLING_CODES.contains(&code) => FailureKind::Throttled,
        Some("ServiceUnavailableException" | "InternalFailure" | "InternalServerError") => {
            FailureKind::Transient
        }
        Some("ResourceNotFoundException") => FailureKind::NotFound,
        Some("InvalidParameterException") => FailureKind::InvalidParameter,
        _ if status.is_some_and(|s| s == 429) => FailureKind::Throttled,
        _ if status.is_some_and(|s| s >= 500) => FailureKind::Transient,
        _ => FailureKind::Fatal,
    }
}

/// Why a call returned without an answer.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The ingestor is stopping.
    Stopped,
    /// Not retried: the kind and the error's description.
    Failed(FailureKind, String),
}

/// A source's client, with the retry policy around it.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    pub(crate) client: Client,
    pub(crate) source: String,
    pub(crate) status: Arc<StatusBoard>,
    pub(crate) retry: RetrySettings,
}

impl Api {
    /// Runs `call` (an SDK request named `operation`) until it succeeds, a
    /// failure that retrying cannot fix, or `stop`.
    pub(crate) async fn call<T, E, R, F, Fut>(
        &self,
        operation: &'static str,
        stop: &mut StopSignal,
        mut call: F,
    ) -> Result<T, CallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, R>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + HasStatus,
    {
        let mut delays = self.retry.backoff().build();
        loop {
            metrics::counter!("ingestor_cloudwatch_api_calls_total", "operation" => operation)
                .increment(1);
            let result = tokio::select! {
                result = call() => result,
                () = stop.stopped() => return Err(CallError::Stopped),
            };
            let error = match result {
                Ok(answer) => return Ok(answer),
                Err(error) => error,
            };
            let status = error.raw_response().and_then(HasStatus::http_status);
            let kind = classify(&error, status);
            let message = DisplayErrorContext(&error).to_string();
            match kind {
                FailureKind::Throttled | FailureKind::Transient => {
                    let delay = delays
                        .next()
                        .unwrap_or(Duration::from_millis(self.retry.max_ms));
                    if kind == FailureKind::Throttled {
                        metrics::counter!("ingestor_cloudwatch_throttles_total", "operation" => operation)
                            .increment(1);
                    }
                    tracing::warn!(
                        source = %self.source,
                        operation,
                        retry_in = ?delay,
                        error = %message,
                        "CloudWatch call failed; retrying"
                    );
                    self.status.set_cloudwatch_state(
                        &self.source,
                        v1::SourceState::Backoff,
                        Some(format!("{operation}: {message}")),
                    );
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = stop.stopped() => return Err(CallError::Stopped),
                    }
                }
                _ => return Err(CallError::Failed(kind, format!("{operation}: {message}"))),
            }
        }
    }
}

/// The HTTP status of a raw response, when there is one.
pub(crate) trait HasStatus {
    /// The status code.
    fn http_status(&self) -> Option<u16>;
}

impl HasStatus for aws_sdk_cloudwatchlogs::config::http::HttpResponse {
    fn http_status(&self) -> Option<u16> {
        Some(self.status().as_u16())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudwatchlogs::error::ErrorMetadata;

    #[derive(Debug)]
    struct Coded(ErrorMetadata);

    impl std::fmt::Display for Coded {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{:?}", self.0.code())
        }
    }
    impl std::error::Error for Coded {}
    impl ProvideErrorMetadata for Coded {
        fn meta(&self) -> &ErrorMetadata {
            &self.0
        }
    }

    fn service_error(code: &str) -> SdkError<Coded, ()> {
        SdkError::service_error(Coded(ErrorMetadata::builder().code(code).build()), ())
    }

    #[test]
    fn failures_are_classified_by_code_then_status() {
        assert_eq!(
            classify(&service_error("ThrottlingException"), Some(400)),
            FailureKind::Throttled
        );
        assert_eq!(
            classify(&service_error("ServiceUnavailableException"), Some(503)),
            FailureKind::Transient
        );
        assert_eq!(
            classify(&service_error("ResourceNotFoundException"), Some(400)),
            FailureKind::NotFound
        );
        assert_eq!(
            classify(&service_error("InvalidParameterException"), Some(400)),
            FailureKind::InvalidParameter
        );
        assert_eq!(
            classify(&service_error("AccessDeniedException"), Some(400)),
            FailureKind::Fatal
        );
        assert_eq!(
            classify(&service_error("Weird"), Some(502)),
            FailureKind::Transient
        );
        assert_eq!(
            classify(&service_error("Weird"), Some(429)),
            FailureKind::Throttled
        );
        let timeout: SdkError<Coded, ()> = SdkError::timeout_error("slow");
        assert_eq!(classify(&timeout, None), FailureKind::Transient);
    }
}
