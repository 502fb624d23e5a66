//! `auditrail-ingestor`: the ingestor as a standalone service.

use auditrail_config::CommonArgs;
use auditrail_ingestor::SourceArgs;
use clap::{CommandFactory as _, FromArgMatches as _, Parser};

/// Follows audit log files through rotation and pushes their events to the
/// indexer, exactly once.
#[derive(Debug, Parser)]
#[command(name = "auditrail-ingestor", version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    sources: SourceArgs,
    /// Name of the cluster the logs come from.
    #[arg(long, value_name = "NAME")]
    cluster: Option<String>,
    /// gRPC address of the indexer.
    #[arg(long, value_name = "URL")]
    indexer_url: Option<String>,
    /// Directory for checkpoints and dead letters.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<std::path::PathBuf>,
}

// One thread: the ingestor needs a fraction of a core, and every runtime
// thread that allocates gets its own glibc malloc arena, each keeping freed
// batches; with the multi-threaded runtime peak RSS varied from 47 to 72 MiB
// between runs of the same 1M-event benchmark, with this one 47 to 54 MiB.
#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    auditrail_server::exit_code(run().await)
}

async fn run() -> anyhow::Result<()> {
    let matches = Args::command().get_matches();
    let args = Args::from_arg_matches(&matches)?;
    let sources = args.sources.sources(&matches).map_err(anyhow::Error::msg)?;
    let config: auditrail_server::ServiceConfig<auditrail_ingestor::Settings> = args
        .common
        .layers(&auditrail_ingestor::default_config())?
        .flag("cluster", args.cluster)
        .flag("indexer_url", args.indexer_url)
        .flag("data_dir", args.data_dir)
        .flag("sources", sources)
        .flag("cloudwatch", args.sources.cloudwatch())
        .flag("start_at", args.sources.start_at)
        .extract()?;
    let services = auditrail_ingestor::add_to(
        auditrail_server::Services::new(),
        config.service.clone(),
        auditrail_ingestor::IndexerTarget::Configured,
    )?;
    auditrail_server::run_service("auditrail-ingestor", &config, services).await?;
    Ok(())
}
