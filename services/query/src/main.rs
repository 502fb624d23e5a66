//! `auditrail-query`: the query as a standalone service.

use auditrail_config::CommonArgs;
use clap::Parser;

/// Timeline search, histograms, streaming export, resource history and diffs over the stored trail.
#[derive(Debug, Parser)]
#[command(name = "auditrail-query", version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Data directory.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<std::path::PathBuf>,
    /// Search Elasticsearch at this URL (repeatable for several nodes)
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
    let config: auditrail_server::ServiceConfig<auditrail_query::Settings> = args
        .common
        .layers(&auditrail_query::default_config())?
        .flag("data_dir", args.data_dir)
        .flag(
            "elasticsearch.urls",
            (!args.elasticsearch_urls.is_empty()).then_some(args.elasticsearch_urls),
        )
        .extract()?;
    let store = auditrail_query::connect_store(&config.service)
        .await
        .map_err(|e| match &config.service.elasticsearch {
            Some(_) => anyhow::anyhow!("cannot open the Elasticsearch store: {e}"),
            None => anyhow::anyhow!(
                "cannot open the store in {}: {e}",
                config.service.data_dir.display()
            ),
        })?;
    let services =
        auditrail_server::Services::new().with(auditrail_query::Query::new(store).server());
    auditrail_server::run_service("auditrail-query", &config, services).await?;
    Ok(())
}
