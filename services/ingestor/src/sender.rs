//! Sending batches to the indexer, retrying until they are acknowledged.

use auditrail_proto::v1;
use auditrail_proto::v1::ingest_service_client::IngestServiceClient;
use auditrail_server::client::{ClientConfig, ClientError, Connection};
use backon::Retryable as _;

use crate::settings::RetrySettings;

/// Largest message sent: room for one maximum-size event.
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// A client of the indexer's `IngestService`.
#[derive(Debug, Clone)]
pub struct Sender {
    client: IngestServiceClient<Connection>,
    retry: RetrySettings,
    credentials: ClientConfig,
}

/// The indexer URL, or the credentials to reach it, cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("cannot reach the indexer at {url:?}: {source}")]
pub struct InvalidIndexerUrl {
    url: String,
    source: ClientError,
}

impl Sender {
    /// A sender to `url` with `credentials` (TLS, client certificate,
    /// token); connects lazily (and reconnects) as needed.
    pub fn new(
        url: &str,
        retry: RetrySettings,
        credentials: &ClientConfig,
    ) -> Result<Self, InvalidIndexerUrl> {
        let connection =
            auditrail_server::client::connect_lazy(url, credentials).map_err(|source| {
                InvalidIndexerUrl {
                    url: url.to_owned(),
                    source,
                }
            })?;
        let client = IngestServiceClient::new(connection)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
            .max_decoding_message_size(MAX_MESSAGE_BYTES);
        Ok(Self {
            client,
            retry,
            credentials: credentials.clone(),
        })
    }

    /// The same sender to another URL.
    pub fn with_url(&self, url: &str) -> Result<Self, InvalidIndexerUrl> {
        Self::new(url, self.retry.clone(), &self.credentials)
    }

    /// Sends `batch` until the indexer acknowledges it committed. Every
    /// failure is retried with exponential backoff and jitter: an unreachable
    /// or overloaded indexer must never cost an event. Failures that retrying
    /// cannot fix (a refused batch) are logged as errors so an operator sees
    /// the pipeline is stuck, and retried at the slowest pace.
    pub async fn send(&self, batch: v1::IngestBatchRequest) -> v1::IngestBatchResponse {
        let attempt = || {
            let mut client = self.client.clone();
            let batch = batch.clone();
            async move {
                let response = client.ingest_batch(batch).await?.into_inner();
                if response.committed {
                    Ok(response)
                } else {
                    Err(tonic::Status::unavailable(
                        "the indexer did not commit the batch",
                    ))
                }
            }
        };
        loop {
            let backoff = self.retry.backoff();
            let result = attempt
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .notify(|status: &tonic::Status, delay| {
                metrics::counter!("ingestor_send_retries_total").increment(1);
                if matches!(
                    status.code(),
                    tonic::Code::Unavailable
                        | tonic::Code::DeadlineExceeded
                        | tonic::Code::ResourceExhausted
                        | tonic::Code::Aborted
                        | tonic::Code::Unknown
                ) {
                    tracing::warn!(code = ?status.code(), message = status.message(), retry_in = ?delay, "indexer unavailable; retrying the batch");
                } else {
                    tracing::error!(code = ?status.code(), message = status.message(), retry_in = ?delay, "indexer refused the batch; retrying (nothing is dropped)");
                }
            })
            .await;
            // `without_max_times` never gives up; should a policy ever end,
            // start it over rather than drop the batch.
            if let Ok(response) = result {
                return response;
            }
        }
    }

    /// The time of the newest stored event of `cluster` and `event_type`,
    /// `None` when the store holds none. Retried like [`Sender::send`]
    /// until the indexer answers.
    pub async fn newest_event(
        &self,
        cluster: &str,
        event_type: v1::EventType,
    ) -> Option<jiff::Timestamp> {
        let request = v1::GetIndexStatsRequest {
            clusters: vec![cluster.to_owned()],
            types: vec![event_type as i32],
        };
        let attempt = || {
            let mut client = self.client.clone();
            let request = request.clone();
            async move { client.get_index_stats(request).await }
        };
        let backoff = self.retry.backoff();
        let answer = loop {
            let result = attempt
                .retry(backoff)
                .sleep(tokio::time::sleep)
                .notify(|status: &tonic::Status, delay| {
                    tracing::warn!(code = ?status.code(), message = status.message(), retry_in = ?delay, "cannot ask the indexer for its newest event; retrying");
                })
                .await;
            if let Ok(answer) = result {
                break answer.into_inner();
            }
        };
        answer
            .stats
            .iter()
            .filter(|s| s.cluster == cluster && s.r#type == event_type as i32)
            .filter_map(|s| s.newest.as_ref())
            .filter_map(|t| jiff::Timestamp::new(t.seconds, t.nanos).ok())
            .max()
    }
}
