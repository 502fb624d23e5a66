//! The services the console shows, reached over gRPC like any client:
//! one lazy channel each, and every call made with the signed-in user's
//! bearer token (or none), so the services decide what the user may see
//! and record the call under the user's name and the browser's address.

use std::time::Duration;

use auditrail_proto::v1::ingest_service_client::IngestServiceClient;
use auditrail_proto::v1::ingestor_service_client::IngestorServiceClient;
use auditrail_proto::v1::query_service_client::QueryServiceClient;
use auditrail_proto::v1::report_service_client::ReportServiceClient;
use auditrail_server::client::{ClientConfig, ClientError, endpoint};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use crate::error::ApiError;

/// How long a unary call may take; exports and downloads stream without
/// a deadline (their client may read slowly).
const UNARY_DEADLINE: Duration = Duration::from_secs(30);

/// The four services' channels.
#[derive(Debug, Clone)]
pub struct Backends {
    query: Channel,
    reporter: Channel,
    ingestor: Channel,
    indexer: Channel,
}

/// The addresses of the four services.
#[derive(Debug, Clone)]
pub struct Urls {
    /// The query service.
    pub query: String,
    /// The reporter.
    pub reporter: String,
    /// The ingestor.
    pub ingestor: String,
    /// The indexer.
    pub indexer: String,
}

impl Backends {
    /// Channels to `urls` with the TLS of `client`; they connect when first
    /// used, so a service that is down fails only the pages that need it.
    pub fn connect(urls: &Urls, client: &ClientConfig) -> Result<Self, ClientError> {
        let lazy = |url: &str| endpoint(url, client).map(|e| e.connect_lazy());
        Ok(Self {
            query: lazy(&urls.query)?,
            reporter: lazy(&urls.reporter)?,
            ingestor: lazy(&urls.ingestor)?,
            indexer: lazy(&urls.indexer)?,
        })
    }

    /// The query service.
    pub fn query(&self) -> QueryServiceClient<Channel> {
        QueryServiceClient::new(self.query.clone())
    }

    /// The reporter.
    pub fn reporter(&self) -> ReportServiceClient<Channel> {
        ReportServiceClient::new(self.reporter.clone())
    }

    /// The ingestor.
    pub fn ingestor(&self) -> IngestorServiceClient<Channel> {
        IngestorServiceClient::new(self.ingestor.clone())
    }

    /// The indexer.
    pub fn indexer(&self) -> IngestServiceClient<Channel> {
        IngestServiceClient::new(self.indexer.clone())
    }
}

/// The header (and gRPC metadata) that lists the addresses a request was
/// forwarded for, nearest last.
pub const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// Whom a call is made for: the signed-in user's bearer token, and the
/// addresses the browser's request came from (its `X-Forwarded-For` with
/// the browser's own address appended, as a proxy does), which the
/// services record as the call's `sourceIPs` before the console's own.
#[derive(Debug, Clone, Default)]
pub struct OnBehalf {
    /// The session's token; none before sign-in.
    pub token: Option<String>,
    /// `X-Forwarded-For` to send.
    pub forwarded_for: Option<String>,
}

/// `message` as a call made on `behalf`, with the unary deadline.
pub fn unary<T>(message: T, behalf: &OnBehalf) -> Result<tonic::Request<T>, ApiError> {
    let mut request = streaming(message, behalf)?;
    request.set_timeout(UNARY_DEADLINE);
    Ok(request)
}

/// `message` as a streaming call made on `behalf`, without a deadline.
pub fn streaming<T>(message: T, behalf: &OnBehalf) -> Result<tonic::Request<T>, ApiError> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = &behalf.token {
        let value: MetadataValue<_> = format!("Bearer {token}").parse().map_err(|_| {
            ApiError::invalid("the session's token holds characters a request cannot carry")
        })?;
        request.metadata_mut().insert("authorization", value);
    }
    // Built from parsed addresses by the console (`forward_for`): always
    // a valid value; one that was not would only lose the addresses.
    if let Some(value) = behalf
        .forwarded_for
        .as_deref()
        .and_then(|f| f.parse::<MetadataValue<_>>().ok())
    {
        request.metadata_mut().insert(X_FORWARDED_FOR, value);
    }
    Ok(request)
}
