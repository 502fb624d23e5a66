//! Verifying a whole store: offline over a directory
//! ([`TantivyStore::verify_dir`], `auditrail store verify`), and over an
//! open store's indices in the background, at start and again every
//! [`crate::TantivyOptions::verify_interval`].
//!
//! The `verify` module checks one segment's files and keeps each index's
//! health; this module walks the clusters, reports what it found (the log,
//! the `store_damaged_*` gauges, the [`VerifyReport`]) and stops early
//! when the store is dropped.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use auditrail_store::{StoreError, valid_cluster_name};

use crate::TantivyStore;
use crate::verify::{self, ClusterVerification, VerifyReport};
use crate::writer::{self, ClusterIndex, internal};

impl TantivyStore {
    /// Verifies the checksum of every file of every segment of every
    /// cluster index under `dir`, without opening the store: no lock is
    /// taken and no segment needs to be readable, so it runs beside a
    /// server writing the same directory and on indices that would not
    /// open. Nothing is written. Blocking.
    pub fn verify_dir(dir: &Path) -> Result<VerifyReport, StoreError> {
        let entries =
            std::fs::read_dir(dir).map_err(|e| internal(&format!("list {}", dir.display()), e))?;
        let mut clusters = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| internal(&format!("list {}", dir.display()), e))?;
            let name = entry.file_name();
            let Some(cluster) = name.to_str().filter(|c| valid_cluster_name(c)) else {
                continue;
            };
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            if !path.join("meta.json").is_file() {
                // An index created but never committed holds nothing; one
                // holding segment files without meta.json is reported.
                if let Err(e) = writer::refuse_orphaned_segments(&path) {
                    clusters.push(ClusterVerification {
                        cluster: cluster.to_owned(),
                        segments: 0,
                        documents: 0,
                        damaged: Vec::new(),
                        error: Some(e.to_string()),
                    });
                }
                continue;
            }
            clusters.push(verify::verify_index_dir(cluster, &path));
        }
        clusters.sort_by(|a, b| a.cluster.cmp(&b.cluster));
        Ok(VerifyReport {
            dir: dir.to_owned(),
            clusters,
        })
    }

    /// Starts verifying the segments every cluster index serves now, on a
    /// thread of its own (serving goes on meanwhile). Each damaged segment
    /// is logged at ERROR, left out of every later read and of merges, and
    /// counted in the `store_damaged_segments` and `store_damaged_events`
    /// gauges (per cluster); [`auditrail_store::Store::damage`] lists them. Segments not
    /// verified yet are not merged until they are. Segments written after
    /// this call are new and not checked. The thread holds no index open:
    /// dropping the store ends it after the segment in progress. Joining
    /// the handle gives the report (servers need not). A server opens its
    /// store before it sets up logging: the report waits up to
    /// `wait_for_logging` for a log subscriber, so that no damaged segment
    /// is reported to nobody.
    pub fn verify_in_background(
        &self,
        wait_for_logging: Duration,
    ) -> Result<std::thread::JoinHandle<VerifyReport>, StoreError> {
        let indices = self.inner.expect_verification();
        let dir = self.inner.dir.clone();
        std::thread::Builder::new()
            .name("store-verify".to_owned())
            .spawn(move || {
                let deadline = std::time::Instant::now() + wait_for_logging;
                while !tracing::dispatcher::has_been_set() && std::time::Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
                // Ends early once the store is dropped.
                let gone = || indices.iter().all(|(_, index)| index.strong_count() == 0);
                verify_indices(dir, &indices, &gone)
            })
            .map_err(|e| internal("start the store verification thread", e))
    }
}

/// The background verification of [`TantivyStore::verify_in_background`].
/// Also run again every [`TantivyOptions::verify_interval`]; it ends early
/// (with a partial report) once `stop` answers `true`.
pub(crate) fn verify_indices(
    dir: PathBuf,
    indices: &[(String, std::sync::Weak<ClusterIndex>)],
    stop: &dyn Fn() -> bool,
) -> VerifyReport {
    let started = std::time::Instant::now();
    tracing::info!(dir = %dir.display(), clusters = indices.len(), "verifying the store's files in the background");
    let mut clusters = Vec::new();
    for (cluster, index) in indices {
        // Only the searcher and the health record are kept: the index (and
        // its writer) can close meanwhile.
        let Some((searcher, health)) = index
            .upgrade()
            .map(|i| (i.reader.searcher(), Arc::clone(&i.health)))
        else {
            break;
        };
        let mut report = ClusterVerification {
            cluster: cluster.clone(),
            segments: 0,
            documents: 0,
            damaged: Vec::new(),
            error: None,
        };
        let mut stopped = false;
        verify::verify_searcher(cluster, &searcher, |id, damage| {
            report.segments += 1;
            metrics::counter!("store_segments_verified_total", "cluster" => cluster.clone())
                .increment(1);
            if let Some(damage) = &damage {
                tracing::error!(
                    cluster,
                    segment = %damage.segment,
                    files = %damage.files.iter().map(|f| format!("{} ({})", f.name, f.problem)).collect::<Vec<_>>().join(", "),
                    events = damage.documents,
                    oldest = %damage.oldest.map_or_else(|| "unknown".to_owned(), |t| t.to_string()),
                    newest = %damage.newest.map_or_else(|| "unknown".to_owned(), |t| t.to_string()),
                    "damaged segment: its events are left out of searches, and exports over its time range fail with DATA_LOSS; nothing was deleted (run `auditrail store verify`)"
                );
                report.damaged.push(damage.clone());
            }
            health.verified(id, damage);
            stopped = stop();
            !stopped
        });
        health.done();
        let events: u64 = report.damaged.iter().map(|d| d.documents).sum();
        #[allow(clippy::cast_precision_loss)]
        {
            metrics::gauge!("store_damaged_segments", "cluster" => cluster.clone())
                .set(report.damaged.len() as f64);
            metrics::gauge!("store_damaged_events", "cluster" => cluster.clone())
                .set(events as f64);
        }
        report.documents = searcher
            .segment_readers()
            .iter()
            .map(|r| u64::from(r.max_doc()))
            .sum();
        clusters.push(report);
        if stopped {
            break;
        }
    }
    let damaged: usize = clusters.iter().map(|c| c.damaged.len()).sum();
    if damaged == 0 {
        tracing::info!(elapsed = ?started.elapsed(), "store verified: no damaged segment");
    } else {
        tracing::error!(damaged, elapsed = ?started.elapsed(), "store verified: damaged segments found");
    }
    VerifyReport { dir, clusters }
}
