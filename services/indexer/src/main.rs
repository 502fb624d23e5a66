//! `auditrail-indexer`: the indexer as a standalone service.

use auditrail_config::CommonArgs;
use clap::Parser;

/// Receives batches of audit events, de-duplicates them by id and writes them durably to the store.
#[derive(Debug, Parser)]
#[command(name = "auditrail-indexer", version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Data directory.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config: auditrail_server::ServiceConfig<auditrail_indexer::Settings> = args
        .common
        .layers(&auditrail_indexer::default_config())?
        .flag("data_dir", args.data_dir)
        .extract()?;
    let services =
        auditrail_server::Services::new().with(auditrail_indexer::Indexer::server(&config.service));
    auditrail_server::run_service("auditrail-indexer", &config, services).await?;
    Ok(())
}
