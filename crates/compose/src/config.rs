//! The one configuration layout of every auditrail process, whatever
//! services it runs:
//!
//! ```toml
//! data_dir = "./auditrail-data"   # store/, ingestor/, reports/ live under it
//! [server]       # listeners, connection bounds, shutdown
//! [log]          # level, format
//! [otlp]         # trace export
//! [store]        # shared by indexer and query: embedded, or [store.elasticsearch]
//! [ingestor]     # sources, batching, retries
//! [indexer]      # event size, retention
//! [query]
//! [provisioner]
//! [reporter]
//! [console]
//! ```
//!
//! Every table refuses unknown keys. A process reads all the tables, so one
//! file serves every workload of a deployment; the tables of services it
//! does not run are checked for spelling but not used.

use std::path::PathBuf;

use auditrail_server::ServerConfig;
use auditrail_telemetry::{LogConfig, OtlpConfig};
use serde::{Deserialize, Serialize};

use crate::store::StoreSettings;
use crate::table::Selection;

/// A process's whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Everything a process keeps lives under this directory: the embedded
    /// store in `store/`, the ingestor's checkpoints and dead letters in
    /// `ingestor/`, reports in `reports/`.
    pub data_dir: PathBuf,
    /// Listeners, connection bounds and shutdown.
    pub server: ServerConfig,
    /// Logging.
    pub log: LogConfig,
    /// Trace export.
    pub otlp: OtlpConfig,
    /// The store the indexer writes and the query service reads.
    pub store: StoreSettings,
    /// The ingestor.
    pub ingestor: auditrail_ingestor::Settings,
    /// The indexer.
    pub indexer: auditrail_indexer::Settings,
    /// The query service.
    pub query: auditrail_query::Settings,
    /// The provisioner.
    pub provisioner: auditrail_provisioner::Settings,
    /// The reporter.
    pub reporter: auditrail_reporter::Settings,
    /// The web console.
    pub console: auditrail_console::Settings,
}

impl NodeConfig {
    /// The defaults of a process running `selection`: the service's own
    /// ports when one runs, the all-in-one ports otherwise.
    pub fn defaults_for(selection: &Selection) -> Self {
        let (port, metrics_port) = selection.default_ports();
        Self {
            data_dir: "./auditrail-data".into(),
            server: ServerConfig::local(port, metrics_port),
            log: LogConfig::default(),
            otlp: OtlpConfig::default(),
            store: StoreSettings::default(),
            ingestor: auditrail_ingestor::Settings::default(),
            indexer: auditrail_indexer::Settings::default(),
            query: auditrail_query::Settings::default(),
            provisioner: auditrail_provisioner::Settings::default(),
            reporter: auditrail_reporter::Settings::default(),
            console: auditrail_console::Settings::default(),
        }
    }

    /// The embedded store's directory.
    pub fn store_dir(&self) -> PathBuf {
        self.data_dir.join("store")
    }

    /// The ingestor's checkpoints and dead letters.
    pub fn ingestor_dir(&self) -> PathBuf {
        self.data_dir.join("ingestor")
    }

    /// The reporter's definitions and results.
    pub fn reports_dir(&self) -> PathBuf {
        self.data_dir.join("reports")
    }

    /// The configuration as TOML, every secret replaced by `<redacted>`:
    /// what `--check-config` prints.
    pub fn to_redacted_toml(&self) -> Result<String, toml::ser::Error> {
        let mut value = toml::Value::try_from(self)?;
        redact(&mut value);
        toml::to_string(&value)
    }
}

/// Keys whose values are secrets, wherever they appear.
const SECRET_KEYS: &[&str] = &["password", "api_key", "bearer", "token", "secret"];

fn redact(value: &mut toml::Value) {
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table.iter_mut() {
                if SECRET_KEYS.contains(&key.as_str()) {
                    *value = toml::Value::String("<redacted>".to_owned());
                } else {
                    redact(value);
                }
            }
        }
        toml::Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditrail_store_elasticsearch::{Auth, ElasticOptions};

    #[test]
    fn secrets_never_reach_the_printed_configuration() {
        let mut config = NodeConfig::defaults_for(&Selection::all());
        for auth in [
            Auth::Basic {
                username: "elastic".into(),
                password: "hunter2".into(),
            },
            Auth::ApiKey("hunter2".into()),
            Auth::Bearer("hunter2".into()),
        ] {
            config.store.elasticsearch = Some(ElasticOptions {
                auth,
                ..ElasticOptions::default()
            });
            let printed = config.to_redacted_toml().unwrap();
            assert!(!printed.contains("hunter2"), "{printed}");
            assert!(printed.contains("<redacted>"), "{printed}");
        }
    }

    #[test]
    fn the_printed_configuration_reads_back_the_same() {
        let config = NodeConfig::defaults_for(&Selection::all());
        let printed = config.to_redacted_toml().unwrap();
        let read: NodeConfig = toml::from_str(&printed).unwrap();
        assert_eq!(read.to_redacted_toml().unwrap(), printed);
        assert_eq!(read.indexer, config.indexer);
        assert_eq!(read.server, config.server);
    }
}
