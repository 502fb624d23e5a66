//! The reporter service: compliance reports (policy-audit, inventory, network-access) built from the audit trail on cron schedules.
//!
//! The service is a thin shell: domain logic lives in the library crates under
//! `crates/`, and the server around it (health, reflection, metrics, shutdown)
//! in `auditrail-server`. RPCs not built yet answer `UNIMPLEMENTED`.

use auditrail_proto::v1;
use auditrail_proto::v1::report_service_server::{ReportService, ReportServiceServer};
use auditrail_server::{Services, not_built};
use serde::{Deserialize, Serialize};
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

/// The reporter's own settings: the `[reporter]` table (none yet; its
/// definitions and results live in the directory the process gives it,
/// `<data_dir>/reports`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {}

/// The `ReportService` implementation.
#[derive(Debug, Clone, Default)]
pub struct Reporter {}

impl auditrail_server::Service for Reporter {
    const NAME: &'static str = "reporter";
    const DEFAULT_PORT: u16 = auditrail_server::ports::REPORTER.grpc;
    const DEFAULT_METRICS_PORT: u16 = auditrail_server::ports::REPORTER.metrics;
    type Settings = Settings;
    /// Where its definitions and results are kept.
    type Shared = std::path::PathBuf;
    type Error = std::convert::Infallible;

    fn check(_settings: &Settings) -> Result<(), Self::Error> {
        Ok(())
    }

    fn add_to(
        services: Services,
        _settings: &Settings,
        _reports_dir: std::path::PathBuf,
    ) -> Result<Services, Self::Error> {
        Ok(services.with(ReportServiceServer::new(Self {})))
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
