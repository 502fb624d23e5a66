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
        .extract()?;
    let store = auditrail_query::open_store(&config.service).map_err(|e| {
        anyhow::anyhow!(
            "cannot open the store in {}: {e}",
            config.service.data_dir.display()
        )
    })?;
    let services =
        auditrail_server::Services::new().with(auditrail_query::Query::new(store).server());
    auditrail_server::run_service("auditrail-query", &config, services).await?;
    Ok(())
}
