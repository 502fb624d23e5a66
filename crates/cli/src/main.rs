//! `auditrail`: the all-in-one server and the command line of auditrail.
//!
//! `auditrail up` runs the five services in one process on the embedded store
//! (a laptop, a demo, CI, a small cluster). The other subcommands are clients
//! of a running server, reached with `--server`.

mod health;
mod services;
mod up;

use clap::{Parser, Subcommand};

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
    Up(up::UpArgs),
    /// Ask a server whether each auditrail service is serving.
    Health {
        /// The server to ask.
        #[arg(long, default_value = DEFAULT_SERVER, env = "AUDITRAIL_SERVER")]
        server: String,
        /// Print JSON instead of a table.
        #[arg(long, short = 'o', value_enum, default_value_t = health::Output::Text)]
        output: health::Output,
    },
    /// List the gRPC services a server offers (through gRPC reflection).
    Services {
        /// The server to ask.
        #[arg(long, default_value = DEFAULT_SERVER, env = "AUDITRAIL_SERVER")]
        server: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Up(args) => up::run(args).await,
        Command::Health { server, output } => health::run(&server, output).await,
        Command::Services { server } => services::run(&server).await,
    }
}
