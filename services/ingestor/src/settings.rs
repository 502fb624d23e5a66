//! The ingestor's settings: which files to read, how to batch, where to send.

use std::path::{Path, PathBuf};
use std::time::Duration;

use auditrail_event::{EventType, valid_cluster_name};
use auditrail_server::client::ClientConfig;
use serde::{Deserialize, Serialize};

use crate::cloudwatch::CloudWatchSource;

/// Default live audit log of kube-apiserver on a Calico Enterprise node.
pub const DEFAULT_KUBE_LOG: &str = "/var/log/calico/audit/kube-audit.log";
/// Default live audit log of the Calico API server.
pub const DEFAULT_EE_LOG: &str = "/var/log/calico/audit/tsee-audit.log";

/// `kube` or `ee`, as written in configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceType {
    /// Kubernetes API server log.
    Kube,
    /// Calico API server log.
    Ee,
}

impl From<SourceType> for EventType {
    fn from(t: SourceType) -> Self {
        match t {
            SourceType::Kube => EventType::Kube,
            SourceType::Ee => EventType::Ee,
        }
    }
}

/// One watched log: a live file path or glob, and optionally the type its
/// events fall back to when they have no `objectRef`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSource {
    /// Live file path or glob, e.g. `/var/log/calico/audit/kube-audit.log`.
    pub path: String,
    /// `kube` or `ee`: the type of events without `objectRef` (non-resource
    /// requests such as `/healthz`). Optional: when absent, each file's own
    /// name tells (see [`type_from_name`]), and a name that tells nothing
    /// means `kube`. Every event with an `objectRef` is typed by itself
    /// (`ee` iff its apiGroup is `projectcalico.org`) whatever this says.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub source_type: Option<SourceType>,
}

/// The type a log file's name tells: `ee` for the Calico API server's
/// (`tsee…`, `ee-audit…`, `…calico…`), `kube` for kube-apiserver's
/// (`…kube…`), `None` otherwise (e.g. `audit.log`, a glob like `*.json`).
/// Only the file name counts, not its directory.
pub fn type_from_name(path: &Path) -> Option<EventType> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if name.contains("tsee") || name.starts_with("ee-audit") || name.contains("calico") {
        Some(EventType::Ee)
    } else if name.contains("kube") {
        Some(EventType::Kube)
    } else {
        None
    }
}

/// The type of events without `objectRef` when neither the configuration
/// nor the file name tells: they are the API server's non-resource requests
/// (`/healthz`, `/version`, `/apis`), which kube-apiserver audits.
pub const DEFAULT_FALLBACK_TYPE: EventType = EventType::Kube;

impl FileSource {
    /// The source's own fallback type: configured, else told by the name in
    /// its path or glob; `None` when it is decided per file.
    pub fn event_type(&self) -> Option<EventType> {
        self.source_type
            .map(EventType::from)
            .or_else(|| type_from_name(Path::new(&self.path)))
    }

    /// The fallback type of the events read from `file` (one of this
    /// source's files, live or rotated): configured, else told by the
    /// file's name, else told by the source's path, else
    /// [`DEFAULT_FALLBACK_TYPE`].
    pub fn fallback_for(&self, file: &Path) -> EventType {
        self.source_type
            .map(EventType::from)
            .or_else(|| type_from_name(file))
            .or_else(|| type_from_name(Path::new(&self.path)))
            .unwrap_or(DEFAULT_FALLBACK_TYPE)
    }
}

/// Where to begin a log that has no checkpoint yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    /// Rotated backups oldest first, then the live file (the default).
    #[default]
    Beginning,
    /// Only what is written from now on.
    End,
}

/// When a batch is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchSettings {
    /// Send when this many events are waiting.
    pub max_events: usize,
    /// Send when this many bytes are waiting.
    pub max_bytes: usize,
    /// Send what is waiting after this many milliseconds.
    pub max_wait_ms: u64,
    /// Batches sent and not yet acknowledged, at most.
    pub max_in_flight: usize,
}

impl Default for BatchSettings {
    fn default() -> Self {
        Self {
            max_events: 2_000,
            max_bytes: 2 * 1024 * 1024,
            max_wait_ms: 250,
            max_in_flight: 4,
        }
    }
}

/// Retry of batches while the indexer is unreachable: exponential backoff
/// with jitter, without limit (events are never dropped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySettings {
    /// First delay, in milliseconds.
    pub initial_ms: u64,
    /// Largest delay, in milliseconds.
    pub max_ms: u64,
}

impl RetrySettings {
    /// Exponential backoff with jitter between these bounds, without limit.
    pub fn backoff(&self) -> backon::ExponentialBuilder {
        backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(self.initial_ms))
            .with_max_delay(Duration::from_millis(self.max_ms))
            .with_jitter()
            .without_max_times()
    }
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            initial_ms: 100,
            max_ms: 10_000,
        }
    }
}

/// The ingestor's own settings: the `[ingestor]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Name of the cluster the logs come from; part of every event id.
    pub cluster: String,
    /// gRPC address of the indexer's `IngestService` (`https://` with
    /// `indexer_client.tls_ca`).
    pub indexer_url: String,
    /// How the ingestor reaches the indexer: TLS CA, client certificate,
    /// bearer token (`[ingestor.indexer_client]`). With access control on,
    /// its identity needs the `ingest` permission.
    #[serde(default, skip_serializing_if = "ClientConfig::is_empty")]
    pub indexer_client: ClientConfig,
    /// Where checkpoints and dead letters are kept: not configured here
    /// but given by the process, `<data_dir>/ingestor`.
    #[serde(skip)]
    pub data_dir: PathBuf,
    /// The watched logs.
    pub sources: Vec<FileSource>,
    /// CloudWatch Logs sources (EKS).
    #[serde(default)]
    pub cloudwatch: Vec<CloudWatchSource>,
    /// Where to begin a log without checkpoint.
    pub start_at: StartAt,
    /// Longest line accepted, in bytes; longer ones are dead-lettered.
    pub max_line_bytes: usize,
    /// How often files are checked for new lines, in milliseconds.
    pub poll_interval_ms: u64,
    /// Batching.
    pub batch: BatchSettings,
    /// Retries.
    pub retry: RetrySettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            cluster: "cluster".to_owned(),
            indexer_url: auditrail_server::ports::local_url(auditrail_server::ports::INDEXER),
            indexer_client: ClientConfig::default(),
            data_dir: "./auditrail-data/ingestor".into(),
            sources: vec![
                FileSource {
                    path: DEFAULT_KUBE_LOG.to_owned(),
                    source_type: Some(SourceType::Kube),
                },
                FileSource {
                    path: DEFAULT_EE_LOG.to_owned(),
                    source_type: Some(SourceType::Ee),
                },
            ],
            cloudwatch: Vec::new(),
            start_at: StartAt::Beginning,
            max_line_bytes: 16 * 1024 * 1024,
            poll_interval_ms: 200,
            batch: BatchSettings::default(),
            retry: RetrySettings::default(),
        }
    }
}

/// A setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSettings {
    /// A setting is out of range.
    #[error("invalid setting {key}: {reason}")]
    Value {
        /// The setting.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl Settings {
    /// Checks everything that can be checked before starting.
    pub fn validate(&self) -> Result<(), InvalidSettings> {
        let bad = |key, reason: &str| {
            Err(InvalidSettings::Value {
                key,
                reason: reason.to_owned(),
            })
        };
        if !valid_cluster_name(&self.cluster) {
            return bad(
                "cluster",
                "must be 1 to 253 characters of letters, digits, '.', '_' and '-'",
            );
        }
        if self.sources.is_empty() && self.cloudwatch.is_empty() {
            return bad(
                "sources",
                "at least one log file or CloudWatch source is needed",
            );
        }
        let mut names = std::collections::HashSet::new();
        for source in &self.cloudwatch {
            if let Some(problem) = source.problem() {
                return Err(InvalidSettings::Value {
                    key: "cloudwatch",
                    reason: format!("{}: {problem}", source.name()),
                });
            }
            if !names.insert(source.name()) {
                return Err(InvalidSettings::Value {
                    key: "cloudwatch",
                    reason: format!(
                        "two sources are named {}; give them distinct `name`s",
                        source.name()
                    ),
                });
            }
        }
        if self.max_line_bytes < 1024 {
            return bad("max_line_bytes", "must be at least 1024");
        }
        if self.batch.max_events == 0 || self.batch.max_events > 10_000 {
            return bad("batch.max_events", "must be between 1 and 10000");
        }
        if self.batch.max_bytes == 0 || self.batch.max_in_flight == 0 {
            return bad("batch", "max_bytes and max_in_flight must be positive");
        }
        if self.retry.initial_ms == 0 || self.retry.max_ms < self.retry.initial_ms {
            return bad("retry", "need 0 < initial_ms <= max_ms");
        }
        Ok(())
    }

    /// The poll interval.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_types_are_configured_or_told_by_file_names_else_kube() {
        let src = |p: &str| FileSource {
            path: p.into(),
            source_type: None,
        };
        let file = |p: &str| PathBuf::from(p);
        assert_eq!(src(DEFAULT_KUBE_LOG).event_type(), Some(EventType::Kube));
        assert_eq!(src(DEFAULT_EE_LOG).event_type(), Some(EventType::Ee));
        assert_eq!(
            src("/logs/*/kube-audit.log").event_type(),
            Some(EventType::Kube)
        );
        // A mixed glob has no type of its own: each file's name decides,
        // and kube when it tells nothing.
        let mixed = src("/logs/*.json");
        assert_eq!(mixed.event_type(), None);
        assert_eq!(
            mixed.fallback_for(&file("/logs/tsee-audit.json")),
            EventType::Ee
        );
        assert_eq!(
            mixed.fallback_for(&file("/logs/tsee-audit-2026-01-01T00-00-00.000.json")),
            EventType::Ee
        );
        assert_eq!(
            mixed.fallback_for(&file("/logs/kube-audit.json")),
            EventType::Kube
        );
        assert_eq!(mixed.fallback_for(&file("/logs/a.json")), EventType::Kube);
        // The directory does not count, only the file name.
        assert_eq!(
            src("/var/log/calico/audit/*.log").fallback_for(&file("/var/log/calico/audit/x.log")),
            EventType::Kube
        );
        // A path that tells the type applies to files whose names do not.
        assert_eq!(
            src("/logs/tsee-audit.log").fallback_for(&file("/logs/tsee-audit.log")),
            EventType::Ee
        );
        // Configured wins over names.
        let typed = FileSource {
            path: "/logs/*.json".into(),
            source_type: Some(SourceType::Ee),
        };
        assert_eq!(typed.event_type(), Some(EventType::Ee));
        assert_eq!(
            typed.fallback_for(&file("/logs/kube-audit.json")),
            EventType::Ee
        );
    }

    #[test]
    fn a_source_without_type_is_valid_in_every_form() {
        let settings = Settings {
            sources: vec![FileSource {
                path: "/logs/*.json".into(),
                source_type: None,
            }],
            ..Settings::default()
        };
        assert_eq!(settings.validate(), Ok(()));
        let from_config: Settings = serde_json::from_value(serde_json::json!({
            "cluster": "c",
            "indexer_url": "http://127.0.0.1:1",
            "sources": [{"path": "/logs/audit.log"}, {"path": "/logs/b.log", "type": "ee"}],
            "start_at": "beginning",
            "max_line_bytes": 4096,
            "poll_interval_ms": 100,
            "batch": BatchSettings::default(),
            "retry": RetrySettings::default(),
        }))
        .unwrap();
        assert_eq!(from_config.sources[0].source_type, None);
        assert_eq!(from_config.sources[1].source_type, Some(SourceType::Ee));
        assert_eq!(from_config.validate(), Ok(()));
    }

    #[test]
    fn validation_catches_what_cannot_work() {
        assert!(Settings::default().validate().is_ok());
        let bad_cluster = Settings {
            cluster: "../x".into(),
            ..Settings::default()
        };
        assert!(bad_cluster.validate().is_err());
        let huge_batches = Settings {
            batch: BatchSettings {
                max_events: 20_000,
                ..BatchSettings::default()
            },
            ..Settings::default()
        };
        assert!(huge_batches.validate().is_err());
        let no_sources = Settings {
            sources: Vec::new(),
            ..Settings::default()
        };
        assert!(no_sources.validate().is_err());
        let cloudwatch_only = Settings {
            sources: Vec::new(),
            cloudwatch: vec![CloudWatchSource::new("/aws/eks/prod/cluster")],
            ..Settings::default()
        };
        assert!(cloudwatch_only.validate().is_ok());
        let twice = Settings {
            cloudwatch: vec![
                CloudWatchSource::new("/aws/eks/prod/cluster"),
                CloudWatchSource::new("/aws/eks/prod/cluster"),
            ],
            ..cloudwatch_only.clone()
        };
        assert!(
            twice
                .validate()
                .unwrap_err()
                .to_string()
                .contains("distinct")
        );
        let bad_interval = Settings {
            cloudwatch: vec![CloudWatchSource {
                fetch_interval: 0,
                ..CloudWatchSource::new("/aws/eks/prod/cluster")
            }],
            ..cloudwatch_only
        };
        assert!(
            bad_interval
                .validate()
                .unwrap_err()
                .to_string()
                .contains("fetch_interval")
        );
    }
}
