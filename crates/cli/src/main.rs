//! `auditrail`: the all-in-one server and the command line of auditrail.
//!
//! `auditrail up` runs the five services in one process on the embedded store
//! (a laptop, a demo, CI, a small cluster). The other subcommands are clients
//! of a running server, reached with `--server`.

use anyhow::Context as _;

mod health;
mod ingest;
mod provision;
mod query;
mod services;
mod up;

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

/// A gRPC channel to `server`, with errors that name it.
pub(crate) async fn connect(server: &str) -> anyhow::Result<tonic::transport::Channel> {
    tonic::transport::Endpoint::from_shared(server.to_owned())
        .with_context(|| format!("invalid server address {server:?}"))?
        .connect()
        .await
        .with_context(|| format!("cannot reach {server}"))
}

/// A protobuf time as RFC 3339 UTC with microseconds (the audit log's own
/// precision, and fixed width so that columns line up); `-` when unset.
pub(crate) fn format_time(t: Option<&prost_types::Timestamp>) -> String {
    t.and_then(|t| jiff::Timestamp::new(t.seconds, t.nanos).ok())
        .map_or_else(
            || "-".to_owned(),
            |t| t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        )
}

/// The default address clients connect to: the local all-in-one server.
const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";

/// Largest answer a client accepts: a page of up to 1000 events with their
/// original bytes.
pub(crate) const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// The server a client subcommand talks to.
#[derive(Debug, clap::Args)]
struct ServerArg {
    /// The server to ask.
    #[arg(long, default_value = DEFAULT_SERVER, env = "AUDITRAIL_SERVER")]
    server: String,
}

#[derive(Debug, Parser)]
#[command(
    name = "auditrail",
    version,
    about = "Audit trail for Kubernetes network security"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run all five services in one process, on the embedded store.
    Up(Box<up::UpArgs>),
    /// Ask a server whether each auditrail service is serving.
    Health {
        #[command(flatten)]
        server: ServerArg,
        /// Print JSON instead of a table.
        #[arg(long, short = 'o', value_enum, default_value_t = health::Output::Text)]
        output: health::Output,
    },
    /// Events stored per cluster and type.
    Stats(ServerArg),
    /// What the ingestor is reading: sources, checkpoints, dead letters.
    IngestStatus(ServerArg),
    /// List the gRPC services a server offers (through gRPC reflection).
    Services(ServerArg),
    /// Search the trail: a table of what happened, or the events themselves.
    Search {
        #[command(flatten)]
        server: ServerArg,
        #[command(flatten)]
        args: Box<query::SearchArgs>,
    },
    /// Export every matching event to a file (JSON, NDJSON or YAML).
    Export {
        #[command(flatten)]
        server: ServerArg,
        #[command(flatten)]
        args: Box<query::ExportArgs>,
    },
    /// Every version of one resource: who changed it, when, how.
    History {
        #[command(flatten)]
        server: ServerArg,
        #[command(flatten)]
        args: query::HistoryArgs,
    },
    /// What changed between two versions (event ids from `history`).
    Diff {
        #[command(flatten)]
        server: ServerArg,
        #[command(flatten)]
        args: query::DiffArgs,
    },
    /// Audit policies: generate, validate, evaluate.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// The per-platform set-up that makes the API server write the trail.
    #[command(subcommand)]
    Setup(SetupCommand),
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Print an audit policy for a profile.
    Generate {
        #[command(flatten)]
        server: ServerArg,
        #[command(flatten)]
        args: provision::GenerateArgs,
    },
    /// The API server's validation and the compliance lint; fails on errors.
    Validate {
        #[command(flatten)]
        server: ServerArg,
        #[command(flatten)]
        args: provision::ValidateArgs,
    },
    /// How a policy audits one request: level, omitted stages, rule.
    Evaluate {
        #[command(flatten)]
        server: ServerArg,
        #[command(flatten)]
        args: Box<provision::EvaluateArgs>,
    },
}

#[derive(Debug, Subcommand)]
enum SetupCommand {
    /// Print (or write) a platform's set-up: policy, flags or cluster patch, objects.
    Render {
        #[command(flatten)]
        server: ServerArg,
        #[command(flatten)]
        args: Box<provision::RenderArgs>,
    },
    /// Apply the set-up's Kubernetes objects (ConfigMap, Secret, LogCollector).
    Apply {
        #[command(flatten)]
        server: ServerArg,
        #[command(flatten)]
        args: Box<provision::ApplyArgs>,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    auditrail_server::exit_code(run().await)
}

async fn run() -> anyhow::Result<()> {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches)?;
    match cli.command {
        Command::Up(args) => {
            let up_matches = matches
                .subcommand_matches("up")
                .context("`up` was parsed without its arguments")?;
            up::run(*args, up_matches).await
        }
        Command::Health { server, output } => health::run(&server.server, output).await,
        Command::Services(s) => services::run(&s.server).await,
        Command::Stats(s) => ingest::stats(&s.server).await,
        Command::IngestStatus(s) => ingest::status(&s.server).await,
        Command::Search { server, args } => query::search(&server.server, *args).await,
        Command::Export { server, args } => query::export(&server.server, *args).await,
        Command::History { server, args } => query::history(&server.server, args).await,
        Command::Diff { server, args } => query::diff(&server.server, args).await,
        Command::Policy(command) => match command {
            PolicyCommand::Generate { server, args } => {
                provision::generate(&server.server, args).await
            }
            PolicyCommand::Validate { server, args } => {
                provision::validate(&server.server, args).await
            }
            PolicyCommand::Evaluate { server, args } => {
                provision::evaluate(&server.server, *args).await
            }
        },
        Command::Setup(command) => match command {
            SetupCommand::Render { server, args } => provision::render(&server.server, *args).await,
            SetupCommand::Apply { server, args } => provision::apply(&server.server, *args).await,
        },
    }
}
