//! The reporter service: compliance reports (policy-audit, inventory,
//! network-access) built from the audit trail on cron schedules or on
//! demand, stored durably, downloadable as JSON, CSV or YAML.
//!
//! - [`settings`]: the `[reporter]` table.
//! - [`store`]: definitions, reports, snapshots and schedule ticks in one
//!   embedded database (`redb`; why is in its docs).
//! - [`definition`]: what a valid definition is; schedules; report ids.
//! - [`trail`]: reading the trail through the query service.
//! - [`catch_up`]: when the trail holds an interval (the ingestor's
//!   status, or a fixed wait).
//! - [`snapshots`]: the reporter's own daily snapshots (LIST through the
//!   Kubernetes API) and their retention.
//! - [`compute`]: the three report types, from a snapshot and events,
//!   with `auditrail-replay` and `auditrail-protection` (no I/O).
//! - [`runner`]: the queue, the scheduler, retries, metrics.
//! - [`download`]: report files (parts, formats, CSV columns).
//! - [`error`]: every failure and its gRPC code.

pub mod catch_up;
pub mod compute;
pub mod definition;
pub mod download;
pub mod error;
pub mod runner;
pub mod settings;
pub mod snapshots;
pub mod store;
pub mod trail;

use std::path::PathBuf;
use std::sync::Arc;

use auditrail_proto::v1;
use auditrail_proto::v1::report_service_server::{ReportService, ReportServiceServer};
use auditrail_server::PageBounds;
use auditrail_server::Services;
use jiff::Timestamp;
use tokio::sync::mpsc;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

pub use error::ReportError;
use runner::{Core, from_ts, next_run_time};
pub use settings::Settings;
use store::Store;

/// Which query service the reporter reads the trail from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryTarget {
    /// `settings.query_url`.
    Configured,
    /// The query service of this very process, at the address it listens
    /// on.
    ThisServer,
}

/// Which ingestor tells the reporter how far the trail has caught up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestorTarget {
    /// `settings.ingestor_url`, when set; else none (`trail_lag_secs`).
    Configured,
    /// The ingestor of this very process, at the address it listens on.
    ThisServer,
}

/// What the process gives the reporter.
#[derive(Debug, Clone)]
pub struct Shared {
    /// Where its database lives (`<data_dir>/reports`).
    pub reports_dir: PathBuf,
    /// Where it reads the trail.
    pub query: QueryTarget,
    /// Which ingestor says when the trail has caught up.
    pub ingestor: IngestorTarget,
    /// The trail's retention in days (`[indexer] retention_days`; 0: keep
    /// all), the default of the snapshots' retention.
    pub trail_retention_days: u32,
}

/// Why the reporter cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting out of range.
    #[error(transparent)]
    Settings(#[from] settings::SettingsError),
    /// The database cannot be opened.
    #[error(transparent)]
    Store(#[from] ReportError),
}

/// The `ReportService` implementation.
#[derive(Debug, Clone)]
pub struct Reporter {
    core: Arc<Core>,
}

impl auditrail_server::Service for Reporter {
    const NAME: &'static str = "reporter";
    const DEFAULT_PORT: u16 = auditrail_server::ports::REPORTER.grpc;
    const DEFAULT_METRICS_PORT: u16 = auditrail_server::ports::REPORTER.metrics;
    type Settings = Settings;
    type Shared = Shared;
    type Error = StartError;

    fn check(settings: &Settings) -> Result<(), Self::Error> {
        settings.validate().map_err(StartError::from)
    }

    fn add_to(
        services: Services,
        settings: &Settings,
        shared: Shared,
    ) -> Result<Services, Self::Error> {
        settings.validate()?;
        let store = Arc::new(Store::open(&shared.reports_dir)?);
        let (queue, receiver) = mpsc::unbounded_channel();
        let core = Arc::new(Core {
            store,
            settings: settings.clone(),
            queue,
            held_warning: std::sync::Mutex::new(None),
        });
        // The clients are made now, so a bad URL or TLS file stops the start.
        if shared.query == QueryTarget::Configured {
            trail::Trail::connect(&settings.query_url, &settings.query_client)?;
        }
        if shared.ingestor == IngestorTarget::Configured
            && let Some(url) = &settings.ingestor_url
        {
            catch_up::Ingestor::connect(url, &settings.ingestor_client)?;
        }
        let reporter = Self {
            core: Arc::clone(&core),
        };
        let (query, ingestor) = (shared.query, shared.ingestor);
        let snapshot_store = Arc::clone(&core.store);
        let snapshot_settings = settings.clone();
        let retention_days = shared.trail_retention_days;
        Ok(services
            .with(ReportServiceServer::new(reporter))
            .task("reports", move |ctx| async move {
                let url = match query {
                    QueryTarget::Configured => core.settings.query_url.clone(),
                    QueryTarget::ThisServer => ctx.grpc_url.clone(),
                };
                let ingestor_url = match ingestor {
                    IngestorTarget::Configured => core.settings.ingestor_url.clone(),
                    IngestorTarget::ThisServer => Some(ctx.grpc_url.clone()),
                };
                let ingestor = match ingestor_url
                    .map(|u| catch_up::Ingestor::connect(&u, &core.settings.ingestor_client))
                    .transpose()
                {
                    Ok(ingestor) => ingestor,
                    Err(e) => {
                        tracing::error!(error = %e, "the reporter cannot reach the ingestor");
                        None
                    }
                };
                match trail::Trail::connect(&url, &core.settings.query_client) {
                    Ok(trail) => runner::run(core, receiver, trail, ingestor, ctx.stop).await,
                    Err(e) => tracing::error!(error = %e, "the reporter cannot reach the trail"),
                }
            })
            .task("snapshots", move |ctx| {
                snapshots::run(snapshot_store, snapshot_settings, retention_days, ctx.stop)
            }))
    }
}

/// The page bounds of the list RPCs.
const PAGES: PageBounds = PageBounds {
    default: 100,
    max: 1000,
};

fn page(page_size: u32, token: &str) -> Result<(usize, usize), ReportError> {
    let size = PAGES
        .page_size(page_size)
        .map_err(|e| ReportError::invalid("page_size", e))?;
    let skip = if token.is_empty() {
        0
    } else {
        token
            .parse::<usize>()
            .map_err(|_| ReportError::invalid("page_token", "malformed page token"))?
    };
    Ok((size, skip))
}

fn next_token(skip: usize, size: usize, total: usize) -> String {
    if skip + size < total {
        (skip + size).to_string()
    } else {
        String::new()
    }
}

fn required<'a>(field: &str, value: &'a str) -> Result<&'a str, ReportError> {
    if value.is_empty() {
        Err(ReportError::invalid(field, "required"))
    } else {
        Ok(value)
    }
}

impl Reporter {
    fn store(&self) -> &Store {
        &self.core.store
    }

    /// The definition as answered: output-only fields filled.
    fn answer(&self, mut def: v1::ReportDefinition) -> v1::ReportDefinition {
        def.next_run_time = next_run_time(self.store(), &def).map(auditrail_proto::timestamp);
        def
    }

    /// The writable fields of `def`, checked, with the cluster defaulted.
    fn writable(
        &self,
        def: Option<v1::ReportDefinition>,
    ) -> Result<v1::ReportDefinition, ReportError> {
        let def = def.ok_or_else(|| ReportError::invalid("definition", "required"))?;
        definition::validate(&def)?;
        Ok(v1::ReportDefinition {
            name: def.name,
            report_type: def.report_type,
            schedule: def.schedule.trim().to_owned(),
            endpoints: def.endpoints,
            suspend: def.suspend,
            cluster: if def.cluster.is_empty() {
                self.core.settings.default_cluster.clone()
            } else {
                def.cluster
            },
            ..Default::default()
        })
    }

    fn create(
        &self,
        req: v1::CreateReportDefinitionRequest,
    ) -> Result<v1::ReportDefinition, ReportError> {
        let mut def = self.writable(req.definition)?;
        let now = auditrail_proto::timestamp(Timestamp::now());
        def.create_time = Some(now);
        def.update_time = Some(now);
        def.etag = definition::etag(&def, Timestamp::now());
        self.store().create_definition(&def)?;
        Ok(self.answer(def))
    }

    fn update(
        &self,
        req: v1::UpdateReportDefinitionRequest,
    ) -> Result<v1::ReportDefinition, ReportError> {
        let etag = req
            .definition
            .as_ref()
            .map(|d| d.etag.clone())
            .unwrap_or_default();
        let new = self.writable(req.definition)?;
        let updated = self
            .store()
            .update_definition(&new.name.clone(), &etag, |stored| {
                let mut def = v1::ReportDefinition {
                    create_time: stored.create_time,
                    update_time: Some(auditrail_proto::timestamp(Timestamp::now())),
                    ..new
                };
                def.etag = definition::etag(&def, Timestamp::now());
                def
            })?;
        Ok(self.answer(updated))
    }

    fn run(&self, req: &v1::RunReportRequest) -> Result<v1::RunReportResponse, ReportError> {
        let name = required("definition_name", &req.definition_name)?;
        let interval = req
            .interval
            .ok_or_else(|| ReportError::invalid("interval", "required"))?;
        let start = interval
            .start
            .as_ref()
            .ok_or_else(|| ReportError::invalid("interval.start", "required"))
            .and_then(|t| {
                from_ts(t).ok_or_else(|| ReportError::invalid("interval.start", "not a valid time"))
            })?;
        let end = interval
            .end
            .as_ref()
            .ok_or_else(|| ReportError::invalid("interval.end", "required"))
            .and_then(|t| {
                from_ts(t).ok_or_else(|| ReportError::invalid("interval.end", "not a valid time"))
            })?;
        if start >= end {
            return Err(ReportError::invalid(
                "interval",
                format!("start {start} is not before end {end}"),
            ));
        }
        if end > Timestamp::now() {
            return Err(ReportError::invalid(
                "interval.end",
                format!("{end} is in the future"),
            ));
        }
        let def = self
            .store()
            .definition(name)?
            .ok_or_else(|| ReportError::NotFound(format!("no report definition named {name:?}")))?;
        let id = self
            .core
            .enqueue(&def, start, end, v1::ReportTrigger::Manual)?;
        Ok(v1::RunReportResponse {
            report_id: id,
            status: v1::ReportStatus::Pending as i32,
        })
    }

    fn import(
        &self,
        req: v1::ImportSnapshotRequest,
    ) -> Result<v1::ImportSnapshotResponse, ReportError> {
        if req.list_json.is_empty() {
            return Err(ReportError::invalid("list_json", "required"));
        }
        let start = req
            .request_start
            .as_ref()
            .ok_or_else(|| ReportError::invalid("request_start", "required"))
            .and_then(|t| {
                from_ts(t).ok_or_else(|| ReportError::invalid("request_start", "not a valid time"))
            })?;
        if start.as_second() < 0 {
            return Err(ReportError::invalid("request_start", "before 1970"));
        }
        let completion = match &req.request_completion {
            Some(t) => from_ts(t)
                .ok_or_else(|| ReportError::invalid("request_completion", "not a valid time"))?,
            None => start,
        };
        let (snapshot, skipped) = auditrail_replay::parse_list(&req.list_json, start, completion)
            .map_err(|e| match e {
            auditrail_replay::SnapshotError::Times { .. } => {
                ReportError::invalid("request_completion", e)
            }
            e => ReportError::invalid("list_json", e),
        })?;
        let cluster = if req.cluster.is_empty() {
            self.core.settings.default_cluster.clone()
        } else {
            req.cluster
        };
        let id = self.store().put_snapshot(&cluster, &snapshot)?;
        Ok(v1::ImportSnapshotResponse {
            snapshot_id: id,
            objects: snapshot.objects.len() as u64,
            skipped: skipped
                .iter()
                .map(|s| format!("item {}: {} ({})", s.index, s.kind, s.api_version))
                .collect(),
        })
    }

    fn list_reports(
        &self,
        req: &v1::ListReportsRequest,
    ) -> Result<v1::ListReportsResponse, ReportError> {
        let (size, skip) = page(req.page_size, &req.page_token)?;
        let mut reports: Vec<v1::Report> = self
            .store()
            .reports()?
            .into_iter()
            .filter(|r| req.definition_name.is_empty() || r.definition_name == req.definition_name)
            .collect();
        let start = |r: &v1::Report| {
            r.interval
                .as_ref()
                .and_then(|i| i.start)
                .map(|t| (t.seconds, t.nanos))
        };
        reports.sort_by(|a, b| start(b).cmp(&start(a)).then_with(|| a.id.cmp(&b.id)));
        let total = reports.len();
        Ok(v1::ListReportsResponse {
            reports: reports.into_iter().skip(skip).take(size).collect(),
            next_page_token: next_token(skip, size, total),
        })
    }

    fn download(&self, req: &v1::DownloadReportRequest) -> Result<download::File, ReportError> {
        let id = required("report_id", &req.report_id)?;
        let report = self
            .store()
            .report(id)?
            .ok_or_else(|| ReportError::NotFound(format!("no report {id:?}")))?;
        let report_type =
            v1::ReportType::try_from(report.report_type).unwrap_or(v1::ReportType::Unspecified);
        let (format, part) = download::resolve(report_type, req.format, req.part)?;
        if report.status != v1::ReportStatus::Succeeded as i32 {
            return Err(ReportError::FailedPrecondition(format!(
                "report {id:?} is {}, not SUCCEEDED",
                v1::ReportStatus::try_from(report.status).map_or("unknown", |s| s.as_str_name())
            )));
        }
        let contents = self.store().contents(id)?.ok_or_else(|| {
            ReportError::Internal(format!("report {id:?} has no stored contents"))
        })?;
        download::render(&report, &contents, format, part)
    }
}

/// Runs `f` on the blocking pool (database work).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ReportError> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(format!("reporter task died: {e}")))?
        .map_err(Status::from)
}

/// Chunks of at most 1 MiB.
const CHUNK: usize = 1 << 20;

#[tonic::async_trait]
impl ReportService for Reporter {
    async fn create_report_definition(
        &self,
        request: Request<v1::CreateReportDefinitionRequest>,
    ) -> Result<Response<v1::CreateReportDefinitionResponse>, Status> {
        let this = self.clone();
        let req = request.into_inner();
        let definition = blocking(move || this.create(req)).await?;
        Ok(Response::new(v1::CreateReportDefinitionResponse {
            definition: Some(definition),
        }))
    }

    async fn get_report_definition(
        &self,
        request: Request<v1::GetReportDefinitionRequest>,
    ) -> Result<Response<v1::GetReportDefinitionResponse>, Status> {
        let this = self.clone();
        let name = request.into_inner().name;
        let definition = blocking(move || {
            let name = required("name", &name)?;
            let def = this.store().definition(name)?.ok_or_else(|| {
                ReportError::NotFound(format!("no report definition named {name:?}"))
            })?;
            Ok(this.answer(def))
        })
        .await?;
        Ok(Response::new(v1::GetReportDefinitionResponse {
            definition: Some(definition),
        }))
    }

    async fn list_report_definitions(
        &self,
        request: Request<v1::ListReportDefinitionsRequest>,
    ) -> Result<Response<v1::ListReportDefinitionsResponse>, Status> {
        let this = self.clone();
        let req = request.into_inner();
        let response = blocking(move || {
            let (size, skip) = page(req.page_size, &req.page_token)?;
            let defs: Vec<v1::ReportDefinition> = this
                .store()
                .definitions()?
                .into_iter()
                .filter(|d| req.cluster.is_empty() || d.cluster == req.cluster)
                .collect();
            let total = defs.len();
            Ok(v1::ListReportDefinitionsResponse {
                definitions: defs
                    .into_iter()
                    .skip(skip)
                    .take(size)
                    .map(|d| this.answer(d))
                    .collect(),
                next_page_token: next_token(skip, size, total),
            })
        })
        .await?;
        Ok(Response::new(response))
    }

    async fn update_report_definition(
        &self,
        request: Request<v1::UpdateReportDefinitionRequest>,
    ) -> Result<Response<v1::UpdateReportDefinitionResponse>, Status> {
        let this = self.clone();
        let req = request.into_inner();
        let definition = blocking(move || this.update(req)).await?;
        Ok(Response::new(v1::UpdateReportDefinitionResponse {
            definition: Some(definition),
        }))
    }

    async fn delete_report_definition(
        &self,
        request: Request<v1::DeleteReportDefinitionRequest>,
    ) -> Result<Response<v1::DeleteReportDefinitionResponse>, Status> {
        let this = self.clone();
        let req = request.into_inner();
        let deleted = blocking(move || {
            let name = required("name", &req.name)?;
            this.store().delete_definition(name, req.delete_reports)
        })
        .await?;
        Ok(Response::new(v1::DeleteReportDefinitionResponse {
            deleted_reports: deleted,
        }))
    }

    async fn run_report(
        &self,
        request: Request<v1::RunReportRequest>,
    ) -> Result<Response<v1::RunReportResponse>, Status> {
        let this = self.clone();
        let req = request.into_inner();
        Ok(Response::new(blocking(move || this.run(&req)).await?))
    }

    async fn list_reports(
        &self,
        request: Request<v1::ListReportsRequest>,
    ) -> Result<Response<v1::ListReportsResponse>, Status> {
        let this = self.clone();
        let req = request.into_inner();
        Ok(Response::new(
            blocking(move || this.list_reports(&req)).await?,
        ))
    }

    async fn get_report(
        &self,
        request: Request<v1::GetReportRequest>,
    ) -> Result<Response<v1::GetReportResponse>, Status> {
        let this = self.clone();
        let req = request.into_inner();
        let report = blocking(move || {
            let id = required("report_id", &req.report_id)?;
            let mut report = this
                .store()
                .report(id)?
                .ok_or_else(|| ReportError::NotFound(format!("no report {id:?}")))?;
            if req.include_contents && report.status == v1::ReportStatus::Succeeded as i32 {
                report.contents = this.store().contents(id)?;
            }
            Ok(report)
        })
        .await?;
        Ok(Response::new(v1::GetReportResponse {
            report: Some(report),
        }))
    }

    type DownloadReportStream = BoxStream<v1::ReportChunk>;

    async fn download_report(
        &self,
        request: Request<v1::DownloadReportRequest>,
    ) -> Result<Response<Self::DownloadReportStream>, Status> {
        let this = self.clone();
        let req = request.into_inner();
        let file = blocking(move || this.download(&req)).await?;
        let mut chunks: Vec<Result<v1::ReportChunk, Status>> = file
            .data
            .chunks(CHUNK)
            .map(|data| {
                Ok(v1::ReportChunk {
                    data: data.to_vec(),
                    ..Default::default()
                })
            })
            .collect();
        if chunks.is_empty() {
            chunks.push(Ok(v1::ReportChunk::default()));
        }
        if let Some(Ok(first)) = chunks.first_mut() {
            file.media_type.clone_into(&mut first.media_type);
            first.file_name = file.file_name;
        }
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks))))
    }

    async fn import_snapshot(
        &self,
        request: Request<v1::ImportSnapshotRequest>,
    ) -> Result<Response<v1::ImportSnapshotResponse>, Status> {
        let this = self.clone();
        let req = request.into_inner();
        Ok(Response::new(blocking(move || this.import(req)).await?))
    }
}
