//! `auditrail-reporter`: the reporter as a standalone service.

use auditrail_config::CommonArgs;
use clap::Parser;

/// Compliance reports (policy-audit, inventory, network-access) built from the audit trail on cron schedules.
#[derive(Debug, Parser)]
#[command(name = "auditrail-reporter", version)]
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
    let config: auditrail_server::ServiceConfig<auditrail_reporter::Settings> = args
        .common
        .layers(&auditrail_reporter::default_config())?
        .flag("data_dir", args.data_dir)
        .extract()?;
    let services = auditrail_server::Services::new()
        .with(auditrail_reporter::Reporter::server(&config.service));
    auditrail_server::run_service("auditrail-reporter", &config, services).await?;
    Ok(())
}
