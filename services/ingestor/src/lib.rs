//! The ingestor service: reads audit logs (files, CloudWatch Logs) and pushes them to the indexer; this crate is its status API and, later, its sources.
//!
//! The service is a thin shell: domain logic lives in the library crates under
//! `crates/`, and the server around it (health, reflection, metrics, shutdown)
//! in `auditrail-server`. RPCs not built yet answer `UNIMPLEMENTED`.

use auditrail_proto::v1;
use auditrail_proto::v1::ingestor_service_server::{IngestorService, IngestorServiceServer};
use auditrail_server::{ServiceConfig, not_built};
use serde::{Deserialize, Serialize};
use tonic::{Request, Response, Status};

/// Default gRPC port of the standalone ingestor.
pub const DEFAULT_PORT: u16 = 50053;
/// Default Prometheus port of the standalone ingestor.
pub const DEFAULT_METRICS_PORT: u16 = 9466;

/// The ingestor's own settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Name of the cluster whose audit logs this ingestor reads; part of
    /// every event id and index name.
    pub cluster: String,
    /// gRPC address of the indexer's `IngestService`.
    pub indexer_url: String,
    /// Where checkpoints and dead letters are kept.
    pub data_dir: std::path::PathBuf,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            cluster: "cluster".to_owned(),
            indexer_url: "http://127.0.0.1:50054".to_owned(),
            data_dir: "./auditrail-data/ingestor".into(),
        }
    }
}

/// The standalone ingestor's full configuration, with local defaults.
pub fn default_config() -> ServiceConfig<Settings> {
    ServiceConfig::local(DEFAULT_PORT, DEFAULT_METRICS_PORT, Settings::default())
}

/// The `IngestorService` implementation.
#[derive(Debug, Clone, Default)]
pub struct Ingestor {}

impl Ingestor {
    /// The service for `settings`, ready to add to a server.
    pub fn server(_settings: &Settings) -> IngestorServiceServer<Self> {
        IngestorServiceServer::new(Self {})
    }
}

#[tonic::async_trait]
impl IngestorService for Ingestor {
    async fn get_status(
        &self,
        _request: Request<v1::GetStatusRequest>,
    ) -> Result<Response<v1::GetStatusResponse>, Status> {
        Err(not_built("IngestorService.GetStatus"))
    }

    async fn list_dead_letters(
        &self,
        _request: Request<v1::ListDeadLettersRequest>,
    ) -> Result<Response<v1::ListDeadLettersResponse>, Status> {
        Err(not_built("IngestorService.ListDeadLetters"))
    }
}
