//! The ingestor: follows the audit log files the API servers write, batches
//! their lines and pushes them to the indexer, advancing its checkpoints only
//! after the indexer acknowledged; lines that are not audit events go to a
//! dead-letter file. `IngestorService` reports its sources, checkpoints and
//! dead letters.
//!
//! - [`settings`]: sources (paths or globs, kube/ee), batching, retries.
//! - [`pipeline`]: files → batches → indexer → checkpoints.
//! - [`sender`]: the `IngestService` client with backoff.
//! - [`dead_letter`]: the dead-letter file.
//! - [`status`]: the status board behind `GetStatus`.

pub mod dead_letter;
pub mod pipeline;
pub mod sender;
pub mod settings;
pub mod status;

use std::path::PathBuf;
use std::sync::Arc;

use auditrail_proto::v1;
use auditrail_proto::v1::ingestor_service_server::{IngestorService, IngestorServiceServer};
use auditrail_server::{ServiceConfig, Services};
use clap::ArgMatches;
use tonic::{Request, Response, Status};

pub use pipeline::{Pipeline, PipelineError};
pub use settings::{FileSource, Settings, SourceType, StartAt};
pub use status::StatusBoard;

/// Default gRPC port of the standalone ingestor.
pub const DEFAULT_PORT: u16 = 50053;
/// Default Prometheus port of the standalone ingestor.
pub const DEFAULT_METRICS_PORT: u16 = 9466;

/// The standalone ingestor's full configuration, with local defaults.
pub fn default_config() -> ServiceConfig<Settings> {
    ServiceConfig::local(DEFAULT_PORT, DEFAULT_METRICS_PORT, Settings::default())
}

/// The `IngestorService` implementation: reads the pipeline's status board.
#[derive(Debug, Clone)]
pub struct Ingestor {
    status: Arc<StatusBoard>,
    dead_letters: PathBuf,
}

impl Ingestor {
    /// The service reporting on `status`.
    pub fn new(status: Arc<StatusBoard>, settings: &Settings) -> Self {
        Self {
            status,
            dead_letters: settings.data_dir.join("dead-letters.ndjson"),
        }
    }

    /// The gRPC service.
    pub fn server(self) -> IngestorServiceServer<Self> {
        IngestorServiceServer::new(self)
    }
}

/// Which indexer the pipeline sends to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexerTarget {
    /// `settings.indexer_url`.
    Configured,
    /// The indexer served by this very server (`auditrail up`), at the
    /// address it actually listens on.
    ThisServer,
}

/// Adds the ingestor to `services`: its status API and its pipeline as a
/// background task. Fails (before anything is served) when the settings,
/// the data directory or the checkpoint file are unusable.
pub fn add_to(
    services: Services,
    settings: Settings,
    target: IndexerTarget,
) -> Result<Services, PipelineError> {
    let status = Arc::new(StatusBoard::new(&settings.cluster));
    let service = Ingestor::new(Arc::clone(&status), &settings);
    let pipeline = Pipeline::prepare(settings, status)?;
    Ok(services
        .with(service.server())
        .task("ingestion", move |ctx| async move {
            let pipeline = match target {
                IndexerTarget::Configured => pipeline,
                IndexerTarget::ThisServer => {
                    pipeline.with_indexer_url(&format!("http://{}", ctx.grpc_addr))
                }
            };
            pipeline.run(ctx.stop).await;
        }))
}

const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

#[tonic::async_trait]
impl IngestorService for Ingestor {
    async fn get_status(
        &self,
        _request: Request<v1::GetStatusRequest>,
    ) -> Result<Response<v1::GetStatusResponse>, Status> {
        Ok(Response::new(self.status.to_proto()))
    }

    async fn list_dead_letters(
        &self,
        request: Request<v1::ListDeadLettersRequest>,
    ) -> Result<Response<v1::ListDeadLettersResponse>, Status> {
        let request = request.into_inner();
        let limit = match usize::try_from(request.page_size).unwrap_or(usize::MAX) {
            0 => DEFAULT_PAGE,
            n if n > MAX_PAGE => {
                return Err(Status::invalid_argument(format!(
                    "page_size is at most {MAX_PAGE}"
                )));
            }
            n => n,
        };
        let skip = if request.page_token.is_empty() {
            0
        } else {
            request
                .page_token
                .parse::<usize>()
                .map_err(|_| Status::invalid_argument("page_token is not one this server issued"))?
        };
        let path = self.dead_letters.clone();
        let source = (!request.source.is_empty()).then_some(request.source);
        let (page, more) = tokio::task::spawn_blocking(move || {
            dead_letter::read_page(&path, source.as_deref(), skip, limit)
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(|e| Status::unavailable(format!("cannot read the dead-letter file: {e}")))?;
        let next = if more {
            (skip + page.len()).to_string()
        } else {
            String::new()
        };
        let total = self.status.to_proto().dead_letters.map_or(0, |d| d.count);
        Ok(Response::new(v1::ListDeadLettersResponse {
            dead_letters: page
                .into_iter()
                .map(|d| v1::DeadLetter {
                    source: d.source,
                    file: d.file,
                    offset: d.offset,
                    reason: format!("{}: {}", d.code, d.reason),
                    time: Some(auditrail_proto::timestamp(d.time)),
                    excerpt: d.excerpt.into_bytes(),
                    truncated: d.truncated,
                    length: d.length,
                    log_stream: String::new(),
                    event_id: String::new(),
                })
                .collect(),
            next_page_token: next,
            total,
        }))
    }
}

/// The source flags shared by `auditrail-ingestor` and `auditrail up`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SourceArgs {
    /// An audit log to follow: a live file path or a glob (repeatable).
    /// Its rotated backups (`<name>-<timestamp>.<ext>`) are found beside it.
    #[arg(long = "log-path", value_name = "PATH_OR_GLOB")]
    pub log_paths: Vec<String>,
    /// The type (`kube` or `ee`) of the `--log-path` just before it, when
    /// its file name does not tell.
    #[arg(long = "log-type", value_name = "TYPE", value_parser = ["kube", "ee"])]
    pub log_types: Vec<String>,
    /// Where to begin a log that has no checkpoint yet.
    #[arg(long, value_name = "WHERE", value_parser = ["beginning", "end"])]
    pub start_at: Option<String>,
}

impl SourceArgs {
    /// The sources given on the command line (each `--log-type` applies to
    /// the closest `--log-path` before it), or `None` when none were given.
    pub fn sources(&self, matches: &ArgMatches) -> Result<Option<Vec<FileSource>>, String> {
        if self.log_paths.is_empty() {
            if self.log_types.is_empty() {
                return Ok(None);
            }
            return Err("--log-type needs a --log-path before it".to_owned());
        }
        let path_at: Vec<usize> = matches
            .indices_of("log_paths")
            .map(Iterator::collect)
            .unwrap_or_default();
        let type_at: Vec<usize> = matches
            .indices_of("log_types")
            .map(Iterator::collect)
            .unwrap_or_default();
        let mut sources: Vec<FileSource> = self
            .log_paths
            .iter()
            .map(|p| FileSource {
                path: p.clone(),
                source_type: None,
            })
            .collect();
        for (t, at) in self.log_types.iter().zip(type_at) {
            let Some(owner) = path_at.iter().rposition(|&p| p < at) else {
                return Err(format!("--log-type {t} needs a --log-path before it"));
            };
            if sources[owner].source_type.is_some() {
                return Err(format!(
                    "--log-path {} has more than one --log-type",
                    sources[owner].path
                ));
            }
            sources[owner].source_type = Some(if t == "ee" {
                SourceType::Ee
            } else {
                SourceType::Kube
            });
        }
        for source in &sources {
            source.event_type().map_err(|e| e.to_string())?;
        }
        Ok(Some(sources))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory as _, FromArgMatches as _, Parser};

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        sources: SourceArgs,
    }

    fn parse(args: &[&str]) -> Result<Option<Vec<FileSource>>, String> {
        let matches = Cli::command()
            .try_get_matches_from(std::iter::once("x").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        let cli = Cli::from_arg_matches(&matches).map_err(|e| e.to_string())?;
        cli.sources.sources(&matches)
    }

    #[test]
    fn log_types_pair_with_the_path_before_them() {
        let sources = parse(&[
            "--log-path",
            "/a/kube-audit.log",
            "--log-path",
            "/b/audit.log",
            "--log-type",
            "ee",
            "--log-path",
            "/c/x.log",
            "--log-type",
            "kube",
        ])
        .unwrap()
        .unwrap();
        let types: Vec<_> = sources.iter().map(|s| s.source_type).collect();
        assert_eq!(
            types,
            vec![None, Some(SourceType::Ee), Some(SourceType::Kube)]
        );
        assert_eq!(parse(&[]).unwrap(), None);
        assert!(
            parse(&["--log-path", "/b/audit.log"])
                .unwrap_err()
                .contains("--log-type")
        );
        assert!(parse(&["--log-type", "ee", "--log-path", "/b/kube.log"]).is_err());
        assert!(
            parse(&[
                "--log-path",
                "/b/a.log",
                "--log-type",
                "ee",
                "--log-type",
                "kube"
            ])
            .is_err()
        );
    }
}
