//! The ingestor: follows the audit log files the API servers write and the
//! CloudWatch Logs streams EKS writes, batches their events and pushes them
//! to the indexer, advancing its checkpoints only after the indexer
//! acknowledged; what is not an audit event goes to a dead-letter file.
//! `IngestorService` reports its sources, checkpoints and dead letters.
//!
//! - [`settings`]: sources (paths or globs, kube/ee; CloudWatch), batching,
//!   retries.
//! - [`pipeline`]: files → batches → indexer → checkpoints.
//! - [`cloudwatch`]: CloudWatch streams → pages → indexer → positions.
//! - [`sender`]: the `IngestService` client with backoff.
//! - [`dead_letter`]: the dead-letter file.
//! - [`expired`]: events past the indexer's retention, counted and logged.
//! - [`status`]: the status board behind `GetStatus`.
//! - `error`: the gRPC code of every failure of `IngestorService`.

pub mod cloudwatch;
pub mod dead_letter;
mod error;
pub mod expired;
pub mod pipeline;
pub mod sender;
pub mod settings;
pub mod status;

use std::path::PathBuf;
use std::sync::Arc;

use auditrail_proto::v1;
use auditrail_proto::v1::ingestor_service_server::{IngestorService, IngestorServiceServer};
use auditrail_server::{PageBounds, Services};
use clap::ArgMatches;
use dead_letter::DeadLetters;
use error::IngestorError;
use tonic::{Request, Response, Status};

pub use cloudwatch::{CloudWatchReader, CloudWatchSource};
pub use pipeline::{Pipeline, PipelineError};
pub use settings::{FileSource, Settings, SourceType, StartAt};
pub use status::StatusBoard;

/// What the process running the ingestor gives it.
#[derive(Debug, Clone)]
pub struct Shared {
    /// Where its checkpoints and dead letters are kept.
    pub data_dir: PathBuf,
    /// Which indexer it sends to.
    pub indexer: IndexerTarget,
}

impl auditrail_server::Service for Ingestor {
    const NAME: &'static str = "ingestor";
    const DEFAULT_PORT: u16 = auditrail_server::ports::INGESTOR.grpc;
    const DEFAULT_METRICS_PORT: u16 = auditrail_server::ports::INGESTOR.metrics;
    type Settings = Settings;
    type Shared = Shared;
    type Error = PipelineError;

    fn check(settings: &Settings) -> Result<(), PipelineError> {
        Ok(settings.validate()?)
    }

    fn add_to(
        services: Services,
        settings: &Settings,
        shared: Shared,
    ) -> Result<Services, PipelineError> {
        let settings = Settings {
            data_dir: shared.data_dir,
            ..settings.clone()
        };
        add_to(services, settings, shared.indexer)
    }
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
    /// The indexer served by this very process (it runs the indexer too),
    /// at the address it actually listens on.
    ThisServer,
}

/// Adds the ingestor to `services`: its status API, the file pipeline and
/// one task per CloudWatch source. Fails (before anything is served) when
/// the settings, the data directory or a checkpoint file are unusable.
fn add_to(
    services: Services,
    settings: Settings,
    target: IndexerTarget,
) -> Result<Services, PipelineError> {
    settings.validate()?;
    std::fs::create_dir_all(&settings.data_dir).map_err(|source| PipelineError::Io {
        what: "cannot create the data directory",
        path: settings.data_dir.clone(),
        source,
    })?;
    let dead_letters =
        DeadLetters::open_shared(&settings.data_dir).map_err(|source| PipelineError::Io {
            what: "cannot open the dead-letter file in",
            path: settings.data_dir.clone(),
            source,
        })?;
    let status = Arc::new(StatusBoard::new(&settings.cluster));
    {
        let letters = dead_letter::lock(&dead_letters);
        status.set_dead_letters(letters.path().to_owned(), letters.count());
    }
    let service = Ingestor::new(Arc::clone(&status), &settings);
    let readers = settings
        .cloudwatch
        .iter()
        .map(|source| {
            CloudWatchReader::prepare(
                source.clone(),
                &settings,
                Arc::clone(&status),
                Arc::clone(&dead_letters),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let pipeline = if settings.sources.is_empty() {
        None
    } else {
        Some(Pipeline::prepare(settings, status, dead_letters)?)
    };
    // Copy (it captures only `target`), so every task gets its own.
    let this_server = move |ctx: &auditrail_server::TaskContext| match target {
        IndexerTarget::Configured => None,
        IndexerTarget::ThisServer => Some(ctx.grpc_url.clone()),
    };
    let mut services = services.with(service.server());
    if let Some(pipeline) = pipeline {
        services = services.task("ingestion", move |ctx| async move {
            let pipeline = match this_server(&ctx) {
                None => pipeline,
                Some(url) => pipeline.with_indexer_url(&url),
            };
            pipeline.run(ctx.stop).await;
        });
    }
    for reader in readers {
        services = services.task("cloudwatch", move |ctx| async move {
            let reader = match this_server(&ctx) {
                None => reader,
                Some(url) => reader.with_indexer_url(&url),
            };
            reader.run(ctx.stop).await;
        });
    }
    Ok(services)
}

/// The page bounds of `ListDeadLetters`.
const DEAD_LETTER_PAGES: PageBounds = PageBounds {
    default: 100,
    max: 1000,
};

impl Ingestor {
    /// One page of the dead-letter file, with the token of the next.
    async fn dead_letter_page(
        &self,
        request: v1::ListDeadLettersRequest,
    ) -> Result<v1::ListDeadLettersResponse, IngestorError> {
        let limit = DEAD_LETTER_PAGES.page_size(request.page_size)?;
        let skip = if request.page_token.is_empty() {
            0
        } else {
            request
                .page_token
                .parse::<usize>()
                .map_err(|_| IngestorError::PageToken)?
        };
        let path = self.dead_letters.clone();
        let source = (!request.source.is_empty()).then_some(request.source);
        let (page, more) = tokio::task::spawn_blocking(move || {
            dead_letter::read_page(&path, source.as_deref(), skip, limit)
        })
        .await
        .map_err(|e| IngestorError::Task(e.to_string()))?
        .map_err(IngestorError::DeadLetterFile)?;
        let next = if more {
            (skip + page.len()).to_string()
        } else {
            String::new()
        };
        let total = self.status.to_proto().dead_letters.map_or(0, |d| d.count);
        Ok(v1::ListDeadLettersResponse {
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
                    log_stream: d.log_stream,
                    event_id: d.event_id,
                })
                .collect(),
            next_page_token: next,
            total,
        })
    }
}

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
        self.dead_letter_page(request.into_inner())
            .await
            .map(Response::new)
            .map_err(Status::from)
    }
}

/// The source flags shared by `auditrail-ingestor` and `auditrail up`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SourceArgs {
    /// An audit log to follow: a live file path or a glob (repeatable).
    /// Its rotated backups (`<name>-<timestamp>.<ext>`) are found beside it.
    #[arg(long = "log-path", value_name = "PATH_OR_GLOB")]
    pub log_paths: Vec<String>,
    /// The type (`kube` or `ee`) of the `--log-path` just before it, for
    /// its events without objectRef (non-resource requests such as /healthz);
    /// every other event is typed by itself. Optional: by default each
    /// file's name tells (tsee-audit.log: ee, kube-audit.log: kube), and
    /// kube when it does not.
    #[arg(long = "log-type", value_name = "TYPE", value_parser = ["kube", "ee"])]
    pub log_types: Vec<String>,
    /// Where to begin a log that has no checkpoint yet.
    #[arg(long, value_name = "WHERE", value_parser = ["beginning", "end"])]
    pub start_at: Option<String>,
    /// Read the EKS audit log from this CloudWatch Logs group
    /// (`/aws/eks/<cluster>/cluster`). Without `--log-path`, no file is
    /// followed.
    #[arg(long, value_name = "GROUP")]
    pub cloudwatch_group: Option<String>,
    /// AWS region of the log group (default: AWS_REGION or the profile's).
    #[arg(long, value_name = "REGION", requires = "cloudwatch_group")]
    pub cloudwatch_region: Option<String>,
    /// Only streams starting with this are read [default: kube-apiserver-audit-].
    #[arg(long, value_name = "PREFIX", requires = "cloudwatch_group")]
    pub cloudwatch_stream_prefix: Option<String>,
    /// Seconds between two fetches [default: 60].
    #[arg(long, value_name = "SECONDS", requires = "cloudwatch_group")]
    pub cloudwatch_fetch_interval: Option<u64>,
    /// CloudWatch Logs endpoint URL instead of the region's (private
    /// endpoints, emulators).
    #[arg(long, value_name = "URL", requires = "cloudwatch_group")]
    pub cloudwatch_endpoint: Option<String>,
    /// Where the first run begins when the store holds no kube event of the
    /// cluster yet (RFC 3339, e.g. 2026-11-01T00:00:00Z) [default: each
    /// stream's start].
    #[arg(long, value_name = "TIME", requires = "cloudwatch_group")]
    pub cloudwatch_start_time: Option<jiff::Timestamp>,
    /// Directory with the files `aws-id` and `aws-key` (the mounted Secret
    /// tigera-eks-log-forwarder-secret) [default: the AWS credential chain].
    #[arg(long, value_name = "DIR", requires = "cloudwatch_group")]
    pub cloudwatch_credentials_dir: Option<PathBuf>,
}

impl SourceArgs {
    /// The sources given on the command line (each `--log-type` applies to
    /// the closest `--log-path` before it), or `None` when none were given.
    pub fn sources(&self, matches: &ArgMatches) -> Result<Option<Vec<FileSource>>, String> {
        if self.log_paths.is_empty() {
            if !self.log_types.is_empty() {
                return Err("--log-type needs a --log-path before it".to_owned());
            }
            // CloudWatch only: the default files are not followed.
            return Ok(self.cloudwatch_group.is_some().then(Vec::new));
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
        Ok(Some(sources))
    }

    /// The CloudWatch source given on the command line, if any.
    pub fn cloudwatch(&self) -> Option<Vec<CloudWatchSource>> {
        let group = self.cloudwatch_group.clone()?;
        let mut source = CloudWatchSource::new(group);
        source.region.clone_from(&self.cloudwatch_region);
        if let Some(prefix) = &self.cloudwatch_stream_prefix {
            source.stream_prefix.clone_from(prefix);
        }
        if let Some(interval) = self.cloudwatch_fetch_interval {
            source.fetch_interval = interval;
        }
        source.endpoint.clone_from(&self.cloudwatch_endpoint);
        source.start_time = self.cloudwatch_start_time;
        source
            .credentials_dir
            .clone_from(&self.cloudwatch_credentials_dir);
        Some(vec![source])
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
    fn cloudwatch_flags_make_one_source() {
        let matches = Cli::command()
            .try_get_matches_from([
                "x",
                "--cloudwatch-group",
                "/aws/eks/prod/cluster",
                "--cloudwatch-region",
                "eu-west-1",
                "--cloudwatch-fetch-interval",
                "5",
                "--cloudwatch-start-time",
                "2026-11-01T00:00:00Z",
            ])
            .unwrap();
        let cli = Cli::from_arg_matches(&matches).unwrap();
        let sources = cli.sources.cloudwatch().unwrap();
        assert_eq!(sources.len(), 1);
        assert_eq!(sources[0].region.as_deref(), Some("eu-west-1"));
        assert_eq!(sources[0].fetch_interval, 5);
        assert_eq!(sources[0].stream_prefix, "kube-apiserver-audit-");
        assert_eq!(
            sources[0].start_time.map(jiff::Timestamp::as_second),
            Some(1_793_491_200)
        );
        let bad_time = Cli::command().try_get_matches_from([
            "x",
            "--cloudwatch-group",
            "g",
            "--cloudwatch-start-time",
            "yesterday",
        ]);
        assert!(bad_time.is_err());
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
        // No type needed, whatever the name or glob.
        for path in ["/b/audit.log", "/b/*.json"] {
            let sources = parse(&["--log-path", path]).unwrap().unwrap();
            assert_eq!(sources[0].source_type, None, "{path}");
        }
        assert!(parse(&["--log-type", "ee", "--log-path", "/b/kube.log"]).is_err());
        // CloudWatch alone replaces the default files; its other flags need
        // the group.
        assert_eq!(
            parse(&["--cloudwatch-group", "/aws/eks/x/cluster"]).unwrap(),
            Some(Vec::new())
        );
        assert!(parse(&["--cloudwatch-region", "us-west-2"]).is_err());
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
