//! `auditrail`: the all-in-one server and the command line of auditrail.
//!
//! `auditrail up` runs the five services in one process on the embedded store
//! (a laptop, a demo, CI, a small cluster). The other subcommands are clients
//! of a running server, reached with `--server`.

use anyhow::Context as _;

mod health;
mod ingest;
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

/// The default address clients connect to: the local all-in-one server.
const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";

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
        /// The server to ask.
        #[arg(long, default_value = DEFAULT_SERVER, env = "AUDITRAIL_SERVER")]
        server: String,
        /// Print JSON instead of a table.
        #[arg(long, short = 'o', value_enum, default_value_t = health::Output::Text)]
        output: health::Output,
    },
    /// Events stored per cluster and type.
    Stats {
        /// The server to ask.
        #[arg(long, default_value = DEFAULT_SERVER, env = "AUDITRAIL_SERVER")]
        server: String,
    },
    /// What the ingestor is reading: sources, checkpoints, dead letters.
    IngestStatus {
        /// The server to ask.
        #[arg(long, default_value = DEFAULT_SERVER, env = "AUDITRAIL_SERVER")]
        server: String,
    },
    /// List the gRPC services a server offers (through gRPC reflection).
    Services {
        /// The server to ask.
        #[arg(long, default_value = DEFAULT_SERVER, env = "AUDITRAIL_SERVER")]
        server: String,
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
        Command::Health { server, output } => health::run(&server, output).await,
        Command::Services { server } => services::run(&server).await,
        Command::Stats { server } => ingest::stats(&server).await,
        Command::IngestStatus { server } => ingest::status(&server).await,
    }
}
