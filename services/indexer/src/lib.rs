//! The indexer service: receives batches of audit events, de-duplicates them by id and writes them durably to the store.
//!
//! The service is a thin shell: domain logic lives in the library crates under
//! `crates/`, and the server around it (health, reflection, metrics, shutdown)
//! in `auditrail-server`. RPCs not built yet answer `UNIMPLEMENTED`.

use auditrail_proto::v1;
use auditrail_proto::v1::ingest_service_server::{IngestService, IngestServiceServer};
use auditrail_server::{ServiceConfig, not_built};
use serde::{Deserialize, Serialize};
use tonic::{Request, Response, Status};

/// Default gRPC port of the standalone indexer.
pub const DEFAULT_PORT: u16 = 50054;
/// Default Prometheus port of the standalone indexer.
pub const DEFAULT_METRICS_PORT: u16 = 9467;

/// The indexer's own settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// The embedded store lives under this directory.
    pub data_dir: std::path::PathBuf,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: "./auditrail-data".into(),
        }
    }
}

/// The standalone indexer's full configuration, with local defaults.
pub fn default_config() -> ServiceConfig<Settings> {
    ServiceConfig::local(DEFAULT_PORT, DEFAULT_METRICS_PORT, Settings::default())
}

/// The `IngestService` implementation.
#[derive(Debug, Clone, Default)]
pub struct Indexer {}

impl Indexer {
    /// The service for `settings`, ready to add to a server.
    pub fn server(_settings: &Settings) -> IngestServiceServer<Self> {
        IngestServiceServer::new(Self {})
    }
}

#[tonic::async_trait]
impl IngestService for Indexer {
    async fn ingest_batch(
        &self,
        _request: Request<v1::IngestBatchRequest>,
    ) -> Result<Response<v1::IngestBatchResponse>, Status> {
        Err(not_built("IngestService.IngestBatch"))
    }

    async fn get_index_stats(
        &self,
        _request: Request<v1::GetIndexStatsRequest>,
    ) -> Result<Response<v1::GetIndexStatsResponse>, Status> {
        Err(not_built("IngestService.GetIndexStats"))
    }

    async fn apply_retention(
        &self,
        _request: Request<v1::ApplyRetentionRequest>,
    ) -> Result<Response<v1::ApplyRetentionResponse>, Status> {
        Err(not_built("IngestService.ApplyRetention"))
    }
}
