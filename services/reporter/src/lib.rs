//! The reporter service: compliance reports (policy-audit, inventory, network-access) built from the audit trail on cron schedules.
//!
//! The service is a thin shell: domain logic lives in the library crates under
//! `crates/`, and the server around it (health, reflection, metrics, shutdown)
//! in `auditrail-server`. RPCs not built yet answer `UNIMPLEMENTED`.

use auditrail_proto::v1;
use auditrail_proto::v1::report_service_server::{ReportService, ReportServiceServer};
use auditrail_server::{ServiceConfig, not_built};
use serde::{Deserialize, Serialize};
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

/// Default gRPC port of the standalone reporter.
pub const DEFAULT_PORT: u16 = 50056;
/// Default Prometheus port of the standalone reporter.
pub const DEFAULT_METRICS_PORT: u16 = 9469;

/// The reporter's own settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Report definitions and generated reports lives under this directory.
    pub data_dir: std::path::PathBuf,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: "./auditrail-data".into(),
        }
    }
}

/// The standalone reporter's full configuration, with local defaults.
pub fn default_config() -> ServiceConfig<Settings> {
    ServiceConfig::local(DEFAULT_PORT, DEFAULT_METRICS_PORT, Settings::default())
}

/// The `ReportService` implementation.
#[derive(Debug, Clone, Default)]
pub struct Reporter {}

impl Reporter {
    /// The service for `settings`, ready to add to a server.
    pub fn server(_settings: &Settings) -> ReportServiceServer<Self> {
        ReportServiceServer::new(Self {})
    }
}

#[tonic::async_trait]
impl ReportService for Reporter {
    async fn create_report_definition(
        &self,
        _request: Request<v1::CreateReportDefinitionRequest>,
    ) -> Result<Response<v1::CreateReportDefinitionResponse>, Status> {
        Err(not_built("ReportService.CreateReportDefinition"))
    }

    async fn get_report_definition(
        &self,
        _request: Request<v1::GetReportDefinitionRequest>,
    ) -> Result<Response<v1::GetReportDefinitionResponse>, Status> {
        Err(not_built("ReportService.GetReportDefinition"))
    }

    async fn list_report_definitions(
        &self,
        _request: Request<v1::ListReportDefinitionsRequest>,
    ) -> Result<Response<v1::ListReportDefinitionsResponse>, Status> {
        Err(not_built("ReportService.ListReportDefinitions"))
    }

    async fn update_report_definition(
        &self,
        _request: Request<v1::UpdateReportDefinitionRequest>,
    ) -> Result<Response<v1::UpdateReportDefinitionResponse>, Status> {
        Err(not_built("ReportService.UpdateReportDefinition"))
    }

    async fn delete_report_definition(
        &self,
        _request: Request<v1::DeleteReportDefinitionRequest>,
    ) -> Result<Response<v1::DeleteReportDefinitionResponse>, Status> {
        Err(not_built("ReportService.DeleteReportDefinition"))
    }

    async fn run_report(
        &self,
        _request: Request<v1::RunReportRequest>,
    ) -> Result<Response<v1::RunReportResponse>, Status> {
        Err(not_built("ReportService.RunReport"))
    }

    async fn list_reports(
        &self,
        _request: Request<v1::ListReportsRequest>,
    ) -> Result<Response<v1::ListReportsResponse>, Status> {
        Err(not_built("ReportService.ListReports"))
    }

    async fn get_report(
        &self,
        _request: Request<v1::GetReportRequest>,
    ) -> Result<Response<v1::GetReportResponse>, Status> {
        Err(not_built("ReportService.GetReport"))
    }

    type DownloadReportStream = BoxStream<v1::ReportChunk>;

    async fn download_report(
        &self,
        _request: Request<v1::DownloadReportRequest>,
    ) -> Result<Response<Self::DownloadReportStream>, Status> {
        Err(not_built("ReportService.DownloadReport"))
    }
}
