//! `auditrail-provisioner`: the provisioner as a standalone service.

use auditrail_config::CommonArgs;
use clap::Parser;

/// Audit policies (generate, validate, evaluate) and the per-platform set-up that makes the API server write the audit trail.
#[derive(Debug, Parser)]
#[command(name = "auditrail-provisioner", version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    auditrail_server::exit_code(run().await)
}

async fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    let config: auditrail_server::ServiceConfig<auditrail_provisioner::Settings> = args
        .common
        .layers(&auditrail_provisioner::default_config())?
        .extract()?;
    let services = auditrail_server::Services::new()
        .with(auditrail_provisioner::Provisioner::server(&config.service));
    auditrail_server::run_service("auditrail-provisioner", &config, services).await?;
    Ok(())
}
