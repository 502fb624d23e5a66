//! `auditrail-ingestor`: the ingestor as a standalone service.

use auditrail_config::CommonArgs;
use clap::Parser;

/// Reads audit logs (files, CloudWatch Logs) and pushes them to the indexer; this crate is its status API and, later, its sources.
#[derive(Debug, Parser)]
#[command(name = "auditrail-ingestor", version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config: auditrail_server::ServiceConfig<auditrail_ingestor::Settings> = args
        .common
        .layers(&auditrail_ingestor::default_config())?
        .flag("cluster", args.cluster)
        .flag("indexer_url", args.indexer_url)
        .flag("data_dir", args.data_dir)
        .extract()?;
    let services = auditrail_server::Services::new()
        .with(auditrail_ingestor::Ingestor::server(&config.service));
    auditrail_server::run_service("auditrail-ingestor", &config, services).await?;
    Ok(())
}
