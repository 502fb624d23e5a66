//! `auditrail up`: the five services in one process, one address, on the
//! embedded store.
//!
//! The ingestor sends its batches to the indexer over real gRPC on this very
//! server's address, exactly as separate deployments do, so the all-in-one
//! runs the same code paths and delivery guarantee as a cluster install.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use auditrail_config::CommonArgs;
use auditrail_ingestor::{IndexerTarget, SourceArgs};
use auditrail_server::{ServiceConfig, Services};
use clap::ArgMatches;
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
    #[command(flatten)]
    sources: SourceArgs,
    /// Directory of the embedded store, checkpoints and reports.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Name of the cluster whose audit logs are collected.
    #[arg(long, value_name = "NAME")]
    cluster: Option<String>,
    /// Keep events this many days: older ones are not stored, stored ones are
    /// deleted once older (0: keep forever).
    #[arg(long, value_name = "DAYS")]
    retention_days: Option<u32>,
    /// Store in Elasticsearch at this URL (repeatable for several nodes)
    /// instead of the embedded store under the data directory.
    #[arg(long = "elasticsearch-url", value_name = "URL")]
    elasticsearch_urls: Vec<String>,
}

/// What `auditrail up` is configured with beyond the shared sections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct UpSettings {
    /// Everything lives under this directory.
    data_dir: PathBuf,
    /// The cluster name (overrides `ingestor.cluster`).
    cluster: String,
    /// Days of retention (overrides `indexer.retention_days`).
    retention_days: u32,
    /// The ingestor section: sources, batching, retries. Its `cluster`,
    /// `indexer_url` and `data_dir` are set by `up`.
    ingestor: auditrail_ingestor::Settings,
    /// Store in Elasticsearch instead of the embedded store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    elasticsearch: Option<auditrail_store_elasticsearch::ElasticOptions>,
    /// The embedded store's bounds and checks (the indexer's `store`).
    #[serde(default)]
    store: auditrail_indexer::StoreSettings,
}

fn default_config() -> ServiceConfig<UpSettings> {
    ServiceConfig::local(
        DEFAULT_PORT,
        DEFAULT_METRICS_PORT,
        UpSettings {
            data_dir: "./auditrail-data".into(),
            cluster: "cluster".to_owned(),
            retention_days: auditrail_indexer::Settings::default().retention_days,
            ingestor: auditrail_ingestor::Settings::default(),
            elasticsearch: None,
            store: auditrail_indexer::StoreSettings::default(),
        },
    )
}

pub(crate) async fn run(args: UpArgs, matches: &ArgMatches) -> anyhow::Result<()> {
    let sources = args.sources.sources(matches).map_err(anyhow::Error::msg)?;
    let config: ServiceConfig<UpSettings> = args
        .common
        .layers(&default_config())?
        .flag("data_dir", args.data_dir)
        .flag("cluster", args.cluster)
        .flag("retention_days", args.retention_days)
        .flag(
            "elasticsearch.urls",
            (!args.elasticsearch_urls.is_empty()).then_some(args.elasticsearch_urls),
        )
        .flag("ingestor.sources", sources)
        .flag("ingestor.cloudwatch", args.sources.cloudwatch())
        .flag("ingestor.start_at", args.sources.start_at)
        .extract()?;
    let settings = &config.service;
    std::fs::create_dir_all(&settings.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            settings.data_dir.display()
        )
    })?;

    let indexer = auditrail_indexer::Settings {
        data_dir: settings.data_dir.join("store"),
        retention_days: settings.retention_days,
        elasticsearch: settings.elasticsearch.clone(),
        store: settings.store.clone(),
        ..auditrail_indexer::Settings::default()
    };
    let store = auditrail_indexer::connect_store(&indexer)
        .await
        .with_context(|| match &indexer.elasticsearch {
            Some(es) => format!(
                "cannot open the Elasticsearch store at {}",
                es.urls.join(", ")
            ),
            None => format!("cannot open the store in {}", indexer.data_dir.display()),
        })?;
    let ingestor = auditrail_ingestor::Settings {
        cluster: settings.cluster.clone(),
        // Replaced by the bound address when the server starts.
        indexer_url: format!("http://{}", config.server.listen),
        data_dir: settings.data_dir.join("ingestor"),
        ..settings.ingestor.clone()
    };

    let services = Services::new()
        .with(auditrail_provisioner::Provisioner::server(
            &auditrail_provisioner::Settings::default(),
        ))
        .with(auditrail_query::Query::new(Arc::clone(&store)).server())
        .with(auditrail_reporter::Reporter::server(
            &auditrail_reporter::Settings {
                data_dir: settings.data_dir.join("reports"),
            },
        ));
    let services = auditrail_indexer::add_to(services, store, &indexer);
    let services = auditrail_ingestor::add_to(services, ingestor, IndexerTarget::ThisServer)?;
    auditrail_server::run_service("auditrail", &config, services).await?;
    Ok(())
}
