//! The `[store]` table, shared by the indexer and the query service: the
//! embedded store's bounds and checks as configuration keys (whole numbers
//! with their unit in the name, like every other duration and size of the
//! configuration, turned into the store's own [`TantivyOptions`]), or
//! `[store.elasticsearch]` to keep the trail in Elasticsearch instead (then
//! the embedded keys are ignored).

use std::time::Duration;

use auditrail_store_elasticsearch::ElasticOptions;
use auditrail_store_tantivy::TantivyOptions;
use serde::{Deserialize, Serialize};

/// The store a process opens when it runs the indexer or the query service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// Store in Elasticsearch instead of the embedded store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elasticsearch: Option<ElasticOptions>,
    /// Most clusters the store keeps an index for; events of one more are
    /// refused with `RESOURCE_EXHAUSTED`.
    pub max_clusters: usize,
    /// Most index writers open at once, over all clusters; a cluster that
    /// writes while all are open closes the one used least recently.
    pub max_open_writers: usize,
    /// Indexing memory of each open writer, in MiB.
    pub writer_memory_mib: usize,
    /// A writer unused this many seconds is committed and closed (the next
    /// write reopens it); 0 keeps it open until its place is needed.
    pub writer_idle_close_secs: u64,
    /// The store's files are verified against their checksums at start and
    /// again every this many seconds; 0 only at start.
    pub verify_interval_secs: u64,
}

impl Default for StoreSettings {
    fn default() -> Self {
        let options = TantivyOptions::default();
        Self {
            elasticsearch: None,
            max_clusters: options.max_clusters,
            max_open_writers: options.max_open_writers,
            writer_memory_mib: options.writer_memory_bytes >> 20,
            writer_idle_close_secs: options.writer_idle_close.as_secs(),
            verify_interval_secs: options.verify_interval.as_secs(),
        }
    }
}

impl StoreSettings {
    /// The store's options for these settings (the others at their
    /// defaults).
    pub fn tantivy_options(&self) -> TantivyOptions {
        TantivyOptions {
            max_clusters: self.max_clusters,
            max_open_writers: self.max_open_writers,
            writer_memory_bytes: self.writer_memory_mib.saturating_mul(1 << 20),
            writer_idle_close: Duration::from_secs(self.writer_idle_close_secs),
            verify_interval: Duration::from_secs(self.verify_interval_secs),
            ..TantivyOptions::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_stores() {
        assert_eq!(
            StoreSettings::default().tantivy_options(),
            TantivyOptions::default()
        );
    }

    #[test]
    fn keys_are_read_with_defaults_for_the_rest() {
        let settings: StoreSettings =
            serde_json::from_str(r#"{"max_open_writers": 2, "verify_interval_secs": 0}"#)
                .expect("valid");
        let options = settings.tantivy_options();
        assert_eq!(options.max_open_writers, 2);
        assert!(options.verify_interval.is_zero());
        assert_eq!(options.max_clusters, TantivyOptions::default().max_clusters);
        assert!(serde_json::from_str::<StoreSettings>(r#"{"max_writers": 2}"#).is_err());
    }
}
