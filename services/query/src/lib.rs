//! The query service: timeline search, histograms, streaming export, resource history and diffs over the stored trail.
//!
//! The service is a thin shell: domain logic lives in the library crates under
//! `crates/`, and the server around it (health, reflection, metrics, shutdown)
//! in `auditrail-server`. RPCs not built yet answer `UNIMPLEMENTED`.

use auditrail_proto::v1;
use auditrail_proto::v1::query_service_server::{QueryService, QueryServiceServer};
use auditrail_server::{ServiceConfig, not_built};
use serde::{Deserialize, Serialize};
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

/// Default gRPC port of the standalone query.
pub const DEFAULT_PORT: u16 = 50055;
/// Default Prometheus port of the standalone query.
pub const DEFAULT_METRICS_PORT: u16 = 9468;

/// The query's own settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// The embedded store to search lives under this directory.
    pub data_dir: std::path::PathBuf,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: "./auditrail-data".into(),
        }
    }
}

/// The standalone query's full configuration, with local defaults.
pub fn default_config() -> ServiceConfig<Settings> {
    ServiceConfig::local(DEFAULT_PORT, DEFAULT_METRICS_PORT, Settings::default())
}

/// The `QueryService` implementation.
#[derive(Debug, Clone, Default)]
pub struct Query {}

impl Query {
    /// The service for `settings`, ready to add to a server.
    pub fn server(_settings: &Settings) -> QueryServiceServer<Self> {
        QueryServiceServer::new(Self {})
    }
}

#[tonic::async_trait]
impl QueryService for Query {
    async fn search(
        &self,
        _request: Request<v1::SearchRequest>,
    ) -> Result<Response<v1::SearchResponse>, Status> {
        Err(not_built("QueryService.Search"))
    }

    async fn histogram(
        &self,
        _request: Request<v1::HistogramRequest>,
    ) -> Result<Response<v1::HistogramResponse>, Status> {
        Err(not_built("QueryService.Histogram"))
    }

    type ExportStream = BoxStream<v1::ExportChunk>;

    async fn export(
        &self,
        _request: Request<v1::ExportRequest>,
    ) -> Result<Response<Self::ExportStream>, Status> {
        Err(not_built("QueryService.Export"))
    }

    async fn history(
        &self,
        _request: Request<v1::HistoryRequest>,
    ) -> Result<Response<v1::HistoryResponse>, Status> {
        Err(not_built("QueryService.History"))
    }

    async fn diff(
        &self,
        _request: Request<v1::DiffRequest>,
    ) -> Result<Response<v1::DiffResponse>, Status> {
        Err(not_built("QueryService.Diff"))
    }
}
