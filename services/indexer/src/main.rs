//! `auditrail-indexer`: the indexer as a standalone service.

use auditrail_config::CommonArgs;
use clap::Parser;

/// Receives batches of audit events, de-duplicates them by id and writes them
/// durably to the embedded store.
#[derive(Debug, Parser)]
#[command(name = "auditrail-indexer", version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Directory of the embedded store.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<std::path::PathBuf>,
    /// Keep events this many days: older ones are not stored, stored ones are
    /// deleted once older (0: keep forever).
    #[arg(long, value_name = "DAYS")]
    retention_days: Option<u32>,
    /// Store in Elasticsearch at this URL (repeatable for several nodes)
    /// instead of the embedded store.
    #[arg(long = "elasticsearch-url", value_name = "URL")]
    elasticsearch_urls: Vec<String>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    auditrail_server::exit_code(run().await)
}

async fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    let config: auditrail_server::ServiceConfig<auditrail_indexer::Settings> = args
        .common
        .layers(&auditrail_indexer::default_config())?
        .flag("data_dir", args.data_dir)
        .flag("retention_days", args.retention_days)
        .flag(
            "elasticsearch.urls",
            (!args.elasticsearch_urls.is_empty()).then_some(args.elasticsearch_urls),
        )
        .extract()?;
    let settings = &config.service;
    settings
        .check()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    let store = auditrail_indexer::connect_store(settings).await?;
    let services = auditrail_indexer::add_to(auditrail_server::Services::new(), store, settings);
    auditrail_server::run_service("auditrail-indexer", &config, services).await?;
    Ok(())
}
