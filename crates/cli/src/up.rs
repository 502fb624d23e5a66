//! `auditrail up`: the five services in one process, one address.

use std::path::PathBuf;

use anyhow::Context as _;
use auditrail_config::CommonArgs;
use auditrail_server::{ServiceConfig, Services};
use serde::{Deserialize, Serialize};

/// Default gRPC port of the all-in-one server.
const DEFAULT_PORT: u16 = 50051;
/// Default Prometheus port of the all-in-one server.
const DEFAULT_METRICS_PORT: u16 = 9464;

/// Flags of `auditrail up`; every one can also come from the config file
/// (`--config`) or an `AUDITRAIL_*` environment variable.
#[derive(Debug, clap::Args)]
pub(crate) struct UpArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Directory of the embedded store, checkpoints and reports.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Name of the cluster whose audit logs are collected.
    #[arg(long, value_name = "NAME")]
    cluster: Option<String>,
}

/// What `auditrail up` is configured with beyond the shared sections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct UpSettings {
    data_dir: PathBuf,
    cluster: String,
}

fn default_config() -> ServiceConfig<UpSettings> {
    ServiceConfig::local(
        DEFAULT_PORT,
        DEFAULT_METRICS_PORT,
        UpSettings {
            data_dir: "./auditrail-data".into(),
            cluster: "cluster".to_owned(),
        },
    )
}

pub(crate) async fn run(args: UpArgs) -> anyhow::Result<()> {
    let config: ServiceConfig<UpSettings> = args
        .common
        .layers(&default_config())?
        .flag("data_dir", args.data_dir)
        .flag("cluster", args.cluster)
        .extract()?;
    let settings = &config.service;
    anyhow::ensure!(!settings.cluster.is_empty(), "cluster must not be empty");
    std::fs::create_dir_all(&settings.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            settings.data_dir.display()
        )
    })?;

    let ingestor = auditrail_ingestor::Settings {
        cluster: settings.cluster.clone(),
        // In one process the indexer is this very server.
        indexer_url: format!("http://{}", config.server.listen),
        data_dir: settings.data_dir.join("ingestor"),
    };
    let store = |dir: &str| settings.data_dir.join(dir);
    let services = Services::new()
        .with(auditrail_provisioner::Provisioner::server(
            &auditrail_provisioner::Settings::default(),
        ))
        .with(auditrail_ingestor::Ingestor::server(&ingestor))
        .with(auditrail_indexer::Indexer::server(
            &auditrail_indexer::Settings {
                data_dir: store("store"),
            },
        ))
        .with(auditrail_query::Query::server(&auditrail_query::Settings {
            data_dir: store("store"),
        }))
        .with(auditrail_reporter::Reporter::server(
            &auditrail_reporter::Settings {
                data_dir: store("reports"),
            },
        ));
    auditrail_server::run_service("auditrail", &config, services).await?;
    Ok(())
}
