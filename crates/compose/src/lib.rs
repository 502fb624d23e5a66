//! Runs any set of auditrail services in one process, as Loki's module
//! manager and Quickwit's `--service` do: `auditrail run --service
//! ingestor,indexer` on a laptop, one `--service` per workload in a
//! cluster, `auditrail up` for all six.
//!
//! - [`table`]: the composition table: each service's name, default ports,
//!   and how it is added to a server through its crate's
//!   [`auditrail_server::Service`] implementation.
//! - [`config`]: the one configuration layout ([`NodeConfig`]), the same
//!   file for every workload.
//! - [`flags`]: the flags, declared once, overriding the configuration
//!   through a typed value.
//!
//! This is also where the store is chosen and opened (embedded or
//! Elasticsearch), once per process, and shared by the indexer and the
//! query service: no store backend or service chooses another.

pub mod config;
pub mod flags;
pub mod store;
pub mod table;

use std::sync::Arc;
use std::time::Duration;

use auditrail_config::Layers;
use auditrail_server::Services;
use auditrail_store::{Store, StoreError};
use clap::ArgMatches;

pub use config::NodeConfig;
pub use flags::{AuthArgs, NodeArgs};
pub use store::StoreSettings;
pub use table::{ALL, Selection, ServiceName};

/// Why a process could not start.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// The configuration could not be loaded.
    #[error(transparent)]
    Config(#[from] auditrail_config::ConfigError),
    /// A flag was given for a service this process does not run.
    #[error(
        "{flag} configures the {services}, which this process does not run (--service {selection})"
    )]
    FlagNotUsed {
        /// The flag, as typed.
        flag: String,
        /// The services it configures.
        services: String,
        /// The services run.
        selection: String,
    },
    /// Flags that contradict each other.
    #[error("{0}")]
    Flags(String),
    /// A service refused its settings or could not be set up.
    #[error("invalid configuration of the {service}: {message}")]
    Service {
        /// Which service.
        service: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The store could not be opened.
    #[error("{what}: {source}")]
    Store {
        /// Which store, where.
        what: String,
        /// Why.
        source: StoreError,
    },
    /// The data directory could not be created.
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The configuration could not be printed.
    #[error("cannot print the configuration: {0}")]
    Print(#[from] toml::ser::Error),
    /// The server failed.
    #[error(transparent)]
    Server(#[from] auditrail_server::ServerError),
    /// A bug in the composition.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// Loads the configuration of a process running `selection`: defaults,
/// the `--config` file, `AUDITRAIL_*` variables, then the flags; checks
/// every selected service's settings.
pub fn load(
    selection: &Selection,
    args: &NodeArgs,
    matches: &ArgMatches,
) -> Result<NodeConfig, ComposeError> {
    NodeArgs::check_owners(matches, selection)?;
    let overrides = args.overrides(matches)?;
    let config: NodeConfig = Layers::new(&NodeConfig::defaults_for(selection))
        .file(args.config.as_deref())?
        .env()
        .flags(&overrides)
        .extract()?;
    for service in selection.iter() {
        service.check(&config)?;
    }
    check_own_ingestor(&config, selection)?;
    check_own_console(&config, selection)?;
    check_access_log(&config, selection)?;
    config
        .server
        .auth
        .check(config.server.requires_client_certificates())
        .map_err(|message| ComposeError::Service {
            service: "server",
            message,
        })?;
    Ok(config)
}

/// The calls of the query service, the provisioner and the reporter are
/// recorded in the trail: by the indexer of the same process, or by the
/// one `server.access_log.indexer_url` names. A process that has neither
/// is refused at start (the server refuses it too, for other callers of
/// `auditrail-server`), so that no call runs unrecorded.
fn check_access_log(config: &NodeConfig, selection: &Selection) -> Result<(), ComposeError> {
    let settings = &config.server.access_log;
    let refuse = |message: String| {
        Err(ComposeError::Service {
            service: "access log",
            message,
        })
    };
    if let Err(message) = settings.check() {
        return refuse(message);
    }
    if !auditrail_event::valid_cluster_name(&settings.cluster) {
        return refuse(format!(
            "server.access_log.cluster = {:?} is not a valid cluster name: 1 to 253 ASCII \
             letters, digits, '.', '_' or '-' (not '.' or '..')",
            settings.cluster
        ));
    }
    let recorded: Vec<&str> = selection
        .iter()
        .filter(|s| {
            matches!(
                s,
                ServiceName::Query | ServiceName::Provisioner | ServiceName::Reporter
            )
        })
        .map(ServiceName::as_str)
        .collect();
    if recorded.is_empty()
        || selection.contains(&ServiceName::Indexer)
        || !settings.enabled
        || settings.indexer_url.is_some()
    {
        return Ok(());
    }
    refuse(format!(
        "the calls of the {} are recorded in the trail, and no indexer runs in this process \
         to store the records: give --access-log-indexer-url (server.access_log.indexer_url, \
         with [server.access_log.client] for its TLS and token; that identity needs the \
         record_access permission, built-in role recorder), or --no-access-log",
        recorded.join(", ")
    ))
}

/// The ingestor of a process that also runs the indexer sends to this
/// very server: over TLS it must trust the server's certificate, and with
/// access control on it needs an identity. Refused at start rather than
/// found when the first batch cannot be sent.
fn check_own_ingestor(config: &NodeConfig, selection: &Selection) -> Result<(), ComposeError> {
    if !(selection.contains(&ServiceName::Ingestor) && selection.contains(&ServiceName::Indexer)) {
        return Ok(());
    }
    let client = &config.ingestor.indexer_client;
    let server = &config.server;
    let refuse = |message: String| {
        Err(ComposeError::Service {
            service: "ingestor",
            message,
        })
    };
    if server.tls.is_some() && client.tls_ca.is_none() {
        return refuse(
            "with [server.tls] the ingestor sends to this server at https://localhost:PORT: \
             set [ingestor.indexer_client] tls_ca to the CA of the server's certificate \
             (which must name localhost)"
                .to_owned(),
        );
    }
    if server.checks_identity() && client.token_file.is_none() && client.tls_cert.is_none() {
        return refuse(
            "access control is on, and the ingestor sends to this server: give it an identity \
             with the ingest permission ([ingestor.indexer_client] token_file, or tls_cert and \
             tls_key under mTLS)"
                .to_owned(),
        );
    }
    Ok(())
}

/// The console of a process that also runs a service it shows calls this
/// very server: over TLS it must trust the server's certificate, and under
/// mTLS present its own, which the server must trust to carry the
/// signed-in users' tokens (`token_forwarders`), since the console has no
/// identity of its own. Refused at start rather than found when the first
/// page cannot load.
fn check_own_console(config: &NodeConfig, selection: &Selection) -> Result<(), ComposeError> {
    let calls_own = [
        ServiceName::Query,
        ServiceName::Reporter,
        ServiceName::Ingestor,
        ServiceName::Indexer,
    ]
    .iter()
    .any(|s| selection.contains(s));
    if !(selection.contains(&ServiceName::Console) && calls_own) {
        return Ok(());
    }
    let client = &config.console.client;
    let server = &config.server;
    let refuse = |message: &str| {
        Err(ComposeError::Service {
            service: "console",
            message: message.to_owned(),
        })
    };
    if server.tls.is_none() {
        return Ok(());
    }
    if client.tls_ca.is_none() {
        return refuse(
            "with [server.tls] the console calls this server at https://localhost:PORT: set \
             [console.client] tls_ca to the CA of the server's certificate (which must name \
             localhost), or leave the console out (--service without console)",
        );
    }
    if !server.requires_client_certificates() {
        return Ok(());
    }
    if client.tls_cert.is_none() {
        return refuse(
            "this server requires client certificates ([server.tls] client_ca), and the console \
             calls it: give the console a certificate ([console.client] tls_cert, tls_key) and \
             name it in [server.auth] token_forwarders, so that its calls carry the signed-in \
             users' tokens",
        );
    }
    if server.auth.token_forwarders.is_empty() {
        return refuse(
            "the console presents its certificate ([console.client] tls_cert) to this server, \
             which requires client certificates: name that certificate (its first URI SAN, else \
             DNS SAN, else CN) in [server.auth] token_forwarders, else every console call is \
             the certificate's own, not the signed-in user's",
        );
    }
    Ok(())
}

/// Runs `selection` until SIGTERM or SIGINT; with `--check-config`, prints
/// the effective configuration instead and returns.
pub async fn run(
    selection: Selection,
    args: &NodeArgs,
    matches: &ArgMatches,
) -> Result<(), ComposeError> {
    let config = load(&selection, args, matches)?;
    if args.check_config {
        print!("{}", config.to_redacted_toml()?);
        return Ok(());
    }
    std::fs::create_dir_all(&config.data_dir).map_err(|source| ComposeError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let shared = table::Shared {
        store: open_store(&config, &selection).await?,
        selection,
    };
    let mut services = Services::new();
    for service in shared.selection.iter() {
        services = service.add(services, &config, &shared)?;
    }
    if let Some(store) = &shared.store {
        services = services.cluster_catalog(Arc::new(StoreClusters(Arc::clone(store))));
    }
    auditrail_server::run_service(
        shared.selection.process_name(),
        &config.server,
        &config.log,
        &config.otlp,
        services,
    )
    .await?;
    Ok(())
}

/// The clusters of the store, for Kubernetes authorization per cluster.
struct StoreClusters(Arc<dyn auditrail_store::Store>);

#[async_trait::async_trait]
impl auditrail_server::ClusterCatalog for StoreClusters {
    async fn clusters(&self) -> Result<Vec<String>, String> {
        let mut clusters: Vec<String> = self
            .0
            .stats()
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|s| s.event_type != auditrail_event::EventType::Access)
            .map(|s| s.cluster)
            .collect();
        clusters.sort();
        clusters.dedup();
        Ok(clusters)
    }
}

/// How long the embedded store's verification report waits for logging:
/// the store is opened before the server sets logging up.
const WAIT_FOR_LOGGING: Duration = Duration::from_secs(30);

/// Opens the store when the indexer or the query service runs:
/// Elasticsearch when `[store.elasticsearch]` is set (connected, every
/// node probed; the indexer installs the templates and the ILM policy of
/// its own `retention_days`, the query service only checks that it may
/// read), else the embedded store under
/// `<data_dir>/store`, read-write when the indexer runs here and read-only
/// otherwise, its files verified in the background (damaged segments are
/// logged, counted and left out of every read).
async fn open_store(
    config: &NodeConfig,
    selection: &Selection,
) -> Result<Option<Arc<dyn Store>>, ComposeError> {
    let writes = selection.contains(&ServiceName::Indexer);
    if !writes && !selection.contains(&ServiceName::Query) {
        return Ok(None);
    }
    if let Some(options) = &config.store.elasticsearch {
        use auditrail_store_elasticsearch::{ElasticStore, Role};
        let role = if writes {
            Role::Writer {
                retention_days: config.indexer.retention_days,
            }
        } else {
            Role::Reader
        };
        let store = ElasticStore::connect(options.clone(), role)
            .await
            .map_err(|source| ComposeError::Store {
                what: format!(
                    "cannot open the Elasticsearch store at {}",
                    options.urls.join(", ")
                ),
                source,
            })?;
        return Ok(Some(Arc::new(store)));
    }
    let dir = config.store_dir();
    let opened = if writes {
        auditrail_store_tantivy::TantivyStore::open(&dir, config.store.tantivy_options())
    } else {
        auditrail_store_tantivy::TantivyStore::open_read_only(&dir)
    };
    let failed = |source| ComposeError::Store {
        what: format!("cannot open the store in {}", dir.display()),
        source,
    };
    let store = opened.map_err(failed)?;
    // Detached: the report goes to the logs, the metrics and the store.
    drop(
        store
            .verify_in_background(WAIT_FOR_LOGGING)
            .map_err(failed)?,
    );
    Ok(Some(Arc::new(store)))
}
