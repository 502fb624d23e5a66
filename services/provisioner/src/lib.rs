//! The provisioner service: audit policies (generate, validate, evaluate) and the per-platform set-up that makes the API server write the audit trail.
//!
//! The service is a thin shell: domain logic lives in the library crates under
//! `crates/`, and the server around it (health, reflection, metrics, shutdown)
//! in `auditrail-server`. RPCs not built yet answer `UNIMPLEMENTED`.

use auditrail_proto::v1;
use auditrail_proto::v1::provision_service_server::{ProvisionService, ProvisionServiceServer};
use auditrail_server::{ServiceConfig, not_built};
use serde::{Deserialize, Serialize};
use tonic::{Request, Response, Status};

/// Default gRPC port of the standalone provisioner.
pub const DEFAULT_PORT: u16 = 50052;
/// Default Prometheus port of the standalone provisioner.
pub const DEFAULT_METRICS_PORT: u16 = 9465;

/// The provisioner's own settings (none yet: it is stateless).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {}

/// The standalone provisioner's full configuration, with local defaults.
pub fn default_config() -> ServiceConfig<Settings> {
    ServiceConfig::local(DEFAULT_PORT, DEFAULT_METRICS_PORT, Settings::default())
}

/// The `ProvisionService` implementation.
#[derive(Debug, Clone, Default)]
pub struct Provisioner {}

impl Provisioner {
    /// The service for `settings`, ready to add to a server.
    pub fn server(_settings: &Settings) -> ProvisionServiceServer<Self> {
        ProvisionServiceServer::new(Self {})
    }
}

#[tonic::async_trait]
impl ProvisionService for Provisioner {
    async fn generate_policy(
        &self,
        _request: Request<v1::GeneratePolicyRequest>,
    ) -> Result<Response<v1::GeneratePolicyResponse>, Status> {
        Err(not_built("ProvisionService.GeneratePolicy"))
    }

    async fn validate_policy(
        &self,
        _request: Request<v1::ValidatePolicyRequest>,
    ) -> Result<Response<v1::ValidatePolicyResponse>, Status> {
        Err(not_built("ProvisionService.ValidatePolicy"))
    }

    async fn evaluate_policy(
        &self,
        _request: Request<v1::EvaluatePolicyRequest>,
    ) -> Result<Response<v1::EvaluatePolicyResponse>, Status> {
        Err(not_built("ProvisionService.EvaluatePolicy"))
    }

    async fn render_setup(
        &self,
        _request: Request<v1::RenderSetupRequest>,
    ) -> Result<Response<v1::RenderSetupResponse>, Status> {
        Err(not_built("ProvisionService.RenderSetup"))
    }

    async fn apply_setup(
        &self,
        _request: Request<v1::ApplySetupRequest>,
    ) -> Result<Response<v1::ApplySetupResponse>, Status> {
        Err(not_built("ProvisionService.ApplySetup"))
    }
}
