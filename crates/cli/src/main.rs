//! `auditrail`: the all-in-one server and the command line of auditrail.
//!
//! `auditrail run --service …` runs any set of the six services in one
//! process (one per workload in a cluster), `auditrail up` all six (a
//! laptop, a demo, CI, a small cluster). `policy` and `setup` do their
//! work in this process (the provisioner's own code) unless `--server` names
//! a provisioner; the other subcommands are clients of a running server,
//! reached with `--server`; `store verify` reads a store directory itself.
//! Every failure is printed by one renderer (`error.rs`).

use anyhow::Context as _;

mod error;
mod health;
mod ingest;
mod output;
mod provision;
mod query;
mod report;
mod services;
mod store;
mod up;

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

/// How this invocation reaches servers: TLS and credentials from the
/// global flags, set once in `run` before any client connects.
static CLIENT: std::sync::OnceLock<Client> = std::sync::OnceLock::new();

/// The client side of the global flags.
#[derive(Debug, Default)]
struct Client {
    config: auditrail_server::client::ClientConfig,
    token: Option<String>,
}

/// The endpoint of `server` (`http://` or, with `--tls-ca`, `https://`).
pub(crate) fn endpoint(server: &str) -> anyhow::Result<tonic::transport::Endpoint> {
    let client = CLIENT.get_or_init(Client::default);
    auditrail_server::client::endpoint(server, &client.config)
        .with_context(|| format!("--server {server}"))
}

/// A gRPC connection to `server`, carrying the bearer token, with errors
/// that name it.
pub(crate) async fn connect(server: &str) -> anyhow::Result<auditrail_server::client::Connection> {
    let client = CLIENT.get_or_init(Client::default);
    let credentials = match &client.token {
        Some(token) => auditrail_server::client::Credentials::bearer(token)?,
        None => auditrail_server::client::credentials(&client.config)?,
    };
    let channel = endpoint(server)?
        .connect()
        .await
        .with_context(|| format!("cannot reach {server}"))?;
    Ok(tonic::service::interceptor::InterceptedService::new(
        channel,
        credentials,
    ))
}

/// A protobuf time as a `jiff` time; `None` when out of range.
pub(crate) fn jiff_time(t: &prost_types::Timestamp) -> Option<jiff::Timestamp> {
    jiff::Timestamp::new(t.seconds, t.nanos).ok()
}

/// A protobuf time as RFC 3339 UTC with microseconds (the audit log's own
/// precision, and fixed width so that columns line up); `-` when unset.
pub(crate) fn format_time(t: Option<&prost_types::Timestamp>) -> String {
    t.and_then(jiff_time).map_or_else(
        || "-".to_owned(),
        |t| t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
    )
}

/// The default address clients connect to: the local all-in-one server
/// (`auditrail_server::ports::ALL_IN_ONE`; a literal because clap's
/// default must be, and a test keeps the two equal).
const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";

/// Largest answer a client accepts: a page of up to 1000 events with their
/// original bytes.
pub(crate) const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// The server a client subcommand talks to.
#[derive(Debug, clap::Args)]
struct ServerArg {
    /// The server to ask (https:// with --tls-ca).
    #[arg(long, default_value = DEFAULT_SERVER, env = "AUDITRAIL_SERVER")]
    server: String,
}

/// The provisioner `policy` and `setup render` ask, if any.
#[derive(Debug, clap::Args)]
struct ProvisionerArg {
    /// Ask this provisioner server instead of working locally; the answer
    /// is the same (https:// with --tls-ca). Without it
    /// nothing is sent anywhere.
    #[arg(long, env = "AUDITRAIL_SERVER", value_name = "URL")]
    server: Option<String>,
}

impl ProvisionerArg {
    fn server(&self) -> Option<&str> {
        self.server.as_deref().filter(|s| !s.is_empty())
    }
}

/// The provisioner `setup apply` goes through, if any.
#[derive(Debug, clap::Args)]
struct ApplyServerArg {
    /// Apply through this provisioner server instead: it reaches the
    /// cluster with its own identity (its kubeconfig or in-cluster service
    /// account), not yours, and receives the AWS keys, if any (https:// with
    /// --tls-ca). Without it, apply uses your kubeconfig
    /// (KUBECONFIG or ~/.kube/config, its current context or --context),
    /// as kubectl does.
    #[arg(long, env = "AUDITRAIL_SERVER", value_name = "URL")]
    server: Option<String>,
}

impl ApplyServerArg {
    fn server(&self) -> Option<&str> {
        self.server.as_deref().filter(|s| !s.is_empty())
    }
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
    #[command(flatten)]
    client: ClientArgs,
}

/// How client subcommands reach a server secured by TLS and tokens.
#[derive(Debug, clap::Args)]
struct ClientArgs {
    /// PEM CA that signed the server's certificate (needed for https://).
    #[arg(long, global = true, value_name = "FILE")]
    tls_ca: Option<std::path::PathBuf>,
    /// PEM client certificate, for servers that require one (mTLS).
    #[arg(long, global = true, value_name = "FILE", requires = "tls_client_key")]
    tls_client_cert: Option<std::path::PathBuf>,
    /// PEM key of --tls-client-cert.
    #[arg(long, global = true, value_name = "FILE", requires = "tls_client_cert")]
    tls_client_key: Option<std::path::PathBuf>,
    /// Bearer token sent with every call.
    #[arg(
        long,
        global = true,
        env = "AUDITRAIL_TOKEN",
        hide_env_values = true,
        conflicts_with = "token_file"
    )]
    token: Option<String>,
    /// File holding the bearer token.
    #[arg(long, global = true, value_name = "FILE")]
    token_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run all six services (the console included) in one process (`run --service all`).
    Up(Box<auditrail_compose::NodeArgs>),
    /// Run some of the services in one process: `--service
    /// ingestor,indexer`; one per workload in a cluster.
    Run(Box<up::RunArgs>),
    /// Ask a server whether each auditrail service is serving.
    Health {
        #[command(flatten)]
        server: ServerArg,
        /// Check only this service (repeatable): ingestor, indexer, query,
        /// provisioner, reporter, as a one-service workload runs, or console
        /// (the console's server itself: it serves no gRPC API) [default:
        /// the five gRPC services].
        #[arg(long = "service", value_name = "NAME", value_parser = health::SERVICES.map(|(short, _)| short))]
        services: Vec<String>,
        #[command(flatten)]
        output: output::OutputArg,
    },
    /// Events stored per cluster and type, with their size on disk.
    Stats {
        #[command(flatten)]
        server: ServerArg,
        #[command(flatten)]
        output: output::OutputArg,
    },
    /// What the ingestor is reading: sources, checkpoints, dead letters.
    IngestStatus {
        #[command(flatten)]
        server: ServerArg,
        #[command(flatten)]
        output: output::OutputArg,
    },
    /// List the gRPC services a server offers (through gRPC reflection).
    Services {
        #[command(flatten)]
        server: ServerArg,
        #[command(flatten)]
        output: output::OutputArg,
    },
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
    /// Audit policies: generate, validate, evaluate (locally, or with
    /// --server on a provisioner).
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// The per-platform set-up that makes the API server write the trail
    /// (rendered locally, or with --server on a provisioner).
    #[command(subcommand)]
    Setup(SetupCommand),
    /// The embedded store's files, checked without a server.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Compliance reports: definitions, runs, downloads (a reporter).
    #[command(subcommand)]
    Report(ReportCommand),
    /// Snapshots of a cluster's network-security resources, where report
    /// replays start (a reporter).
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
}

#[derive(Debug, Subcommand)]
enum ReportCommand {
    /// Create (or with --update replace) a report definition.
    Define(Box<report::DefineArgs>),
    /// List report definitions.
    ListDefinitions(report::ListDefinitionsArgs),
    /// Run a report now over an interval (even when suspended).
    Run(report::RunArgs),
    /// List generated reports, newest interval first.
    List(report::ListArgs),
    /// Show one report: status, summary, warnings.
    Show(report::ShowArgs),
    /// Download a report file (JSON, CSV or YAML).
    Download(report::DownloadArgs),
}

#[derive(Debug, Subcommand)]
enum SnapshotCommand {
    /// Store the output of `kubectl get … -o json` as a snapshot.
    Import(report::ImportArgs),
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Check every file of every segment against its checksum and report
    /// the damaged segments (cluster, segment, files, events, time range).
    /// Needs no server and takes no lock: the store may be in use. Exits 0
    /// when all is intact, 2 when damage was found, 1 when the check could
    /// not run.
    Verify(store::VerifyArgs),
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Print an audit policy for a profile.
    Generate {
        #[command(flatten)]
        server: ProvisionerArg,
        #[command(flatten)]
        args: provision::GenerateArgs,
    },
    /// The API server's validation and the compliance lint; fails on errors.
    Validate {
        #[command(flatten)]
        server: ProvisionerArg,
        #[command(flatten)]
        args: provision::ValidateArgs,
    },
    /// How a policy audits one request: level, omitted stages, rule.
    Evaluate {
        #[command(flatten)]
        server: ProvisionerArg,
        #[command(flatten)]
        args: Box<provision::EvaluateArgs>,
    },
}

#[derive(Debug, Subcommand)]
enum SetupCommand {
    /// Print (or write) a platform's set-up: policy, flags or cluster patch, objects.
    Render {
        #[command(flatten)]
        server: ProvisionerArg,
        #[command(flatten)]
        args: Box<provision::RenderArgs>,
    },
    /// Apply the set-up's Kubernetes objects (ConfigMap, Secret, LogCollector)
    /// with your kubeconfig, or with --server through a provisioner and its
    /// identity.
    Apply {
        #[command(flatten)]
        server: ApplyServerArg,
        #[command(flatten)]
        args: Box<provision::ApplyArgs>,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // First, before any TLS client is built (kube, Elasticsearch).
    auditrail_server::install_crypto_provider();
    end_quietly_when_stdout_closes();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // The reader of standard output went away (`| head`): no error.
        Err(error) if stdout_closed(&error) => std::process::ExitCode::from(141),
        // `store verify` found damage: its report is printed already.
        Err(error) if error.downcast_ref::<store::Damaged>().is_some() => {
            eprintln!("{}", error::render(&error));
            std::process::ExitCode::from(store::DAMAGE_EXIT)
        }
        Err(error) => {
            eprintln!("{}", error::render(&error));
            std::process::ExitCode::FAILURE
        }
    }
}

/// Whether `error` is standard output's reader going away: a broken pipe
/// that did not come from a connection. A server that closes the
/// connection while the client writes (the TLS handshake of a server that
/// requires a client certificate, refusing one without) gives a broken
/// pipe too, and that is a failure to report, never a quiet exit.
fn stdout_closed(error: &anyhow::Error) -> bool {
    let from_network = error.chain().any(|cause| {
        cause.is::<tonic::transport::Error>()
            || cause.is::<tonic::Status>()
            || cause.is::<error::RpcError>()
    });
    !from_network
        && error.chain().any(|cause| {
            cause
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
        })
}

/// `auditrail search … | head` closes standard output early; printing then
/// fails, which `println!` turns into a panic with a backtrace. A reader
/// that stopped reading is no error: the process ends quietly with 141, the
/// status a shell reports for a program stopped by SIGPIPE. Every other
/// panic goes to the default hook.
fn end_quietly_when_stdout_closes() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

async fn run() -> anyhow::Result<()> {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches)?;
    let _ = CLIENT.set(Client {
        config: auditrail_server::client::ClientConfig {
            tls_ca: cli.client.tls_ca.clone(),
            tls_cert: cli.client.tls_client_cert.clone(),
            tls_key: cli.client.tls_client_key.clone(),
            token_file: cli.client.token_file.clone(),
        },
        token: cli.client.token.clone(),
    });
    match cli.command {
        Command::Up(args) => {
            let up_matches = matches
                .subcommand_matches("up")
                .context("`up` was parsed without its arguments")?;
            up::up(*args, up_matches).await
        }
        Command::Run(args) => {
            let run_matches = matches
                .subcommand_matches("run")
                .context("`run` was parsed without its arguments")?;
            up::run(*args, run_matches).await
        }
        Command::Health {
            server,
            services,
            output,
        } => health::run(&server.server, &services, output.output).await,
        Command::Services { server, output } => services::run(&server.server, output.output).await,
        Command::Stats { server, output } => ingest::stats(&server.server, output.output).await,
        Command::IngestStatus { server, output } => {
            ingest::status(&server.server, output.output).await
        }
        Command::Search { server, args } => query::search(&server.server, *args).await,
        Command::Export { server, args } => query::export(&server.server, *args).await,
        Command::History { server, args } => query::history(&server.server, args).await,
        Command::Diff { server, args } => query::diff(&server.server, args).await,
        Command::Policy(command) => match command {
            PolicyCommand::Generate { server, args } => {
                provision::generate(server.server(), args).await
            }
            PolicyCommand::Validate { server, args } => {
                provision::validate(server.server(), args).await
            }
            PolicyCommand::Evaluate { server, args } => {
                provision::evaluate(server.server(), *args).await
            }
        },
        Command::Setup(command) => match command {
            SetupCommand::Render { server, args } => {
                provision::render(server.server(), *args).await
            }
            SetupCommand::Apply { server, args } => provision::apply(server.server(), *args).await,
        },
        Command::Store(StoreCommand::Verify(args)) => store::verify(args).await,
        Command::Report(command) => match command {
            ReportCommand::Define(args) => report::define(*args).await,
            ReportCommand::ListDefinitions(args) => report::list_definitions(args).await,
            ReportCommand::Run(args) => report::run(args).await,
            ReportCommand::List(args) => report::list(args).await,
            ReportCommand::Show(args) => report::show(args).await,
            ReportCommand::Download(args) => report::download(args).await,
        },
        Command::Snapshot(SnapshotCommand::Import(args)) => report::import(args).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_broken_pipe_outside_a_connection_ends_quietly() {
        let broken = || std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        let printing = anyhow::Error::new(broken()).context("cannot print the page");
        assert!(stdout_closed(&printing));
        // The connection's write failed: a status whose source is the pipe.
        let refused = anyhow::Error::new(tonic::Status::from_error(Box::new(broken())))
            .context("cannot reach https://localhost:50054");
        assert!(!stdout_closed(&refused));
        let rpc = error::rpc(
            "health check",
            &tonic::Status::from_error(Box::new(broken())),
        );
        assert!(!stdout_closed(&rpc));
        let other = anyhow::anyhow!("something else");
        assert!(!stdout_closed(&other));
    }

    #[test]
    fn the_default_server_is_the_all_in_one_process() {
        use auditrail_server::ports;
        assert_eq!(DEFAULT_SERVER, ports::local_url(ports::ALL_IN_ONE));
    }

    #[test]
    fn https_needs_the_servers_ca_and_other_schemes_are_refused() {
        assert!(endpoint("http://127.0.0.1:50051").is_ok());
        assert!(endpoint("HTTP://localhost:50051").is_ok());
        for url in ["https://auditrail.example.com", "HTTPS://127.0.0.1:443"] {
            let message = format!("{:#}", endpoint(url).expect_err("refused"));
            assert!(
                message.contains(
                    "is https: give the CA that signed the server's certificate (--tls-ca"
                ) && message.starts_with(&format!("--server {url}")),
                "{message}"
            );
        }
        for url in ["127.0.0.1:50051", "grpc://127.0.0.1:50051"] {
            let message = format!("{:#}", endpoint(url).expect_err("refused"));
            assert!(message.contains("give http://HOST:PORT"), "{message}");
        }
    }

    #[tokio::test]
    async fn an_https_server_without_a_ca_is_refused_before_any_connection() {
        // Port 9 (discard) on loopback is never an auditrail server: were a
        // connection tried, the error would be "cannot reach".
        let error = connect("https://127.0.0.1:9").await.expect_err("refused");
        let line = error::render(&error);
        assert!(line.contains("give the CA"), "{line}");
        assert!(!line.contains("cannot reach"), "{line}");
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
