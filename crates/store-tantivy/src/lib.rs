//! The embedded auditrail store, on tantivy.
//!
//! `auditrail up`, the demo, CI and small clusters need a store with no server
//! to run: this crate keeps the audit trail in a data directory and
//! implements [`Store`] with the same semantics as the Elasticsearch backend.
//!
//! # Layout
//! One tantivy index per cluster, in `<dir>/<cluster>/`. Cluster names are
//! validated before they become directory names (non-empty, at most 253 bytes,
//! `[A-Za-z0-9._-]` only, not `.` or `..`). Existing indices are opened by
//! [`TantivyStore::open`] for reading; a cluster's index is created on its
//! first write. Queries span every index (a top-level `Eq`/`In` on the
//! cluster skips the others). Per-cluster indices keep retention and
//! statistics per cluster cheap and let one cluster's writes never wait for
//! another's commits.
//!
//! # Writers
//! Writers are not per cluster but shared (the `pool` module): a cluster's
//! writer is opened by a write and holds one of
//! [`TantivyOptions::max_open_writers`] places; a cluster needing one while
//! all are taken closes the writer asked for least recently, and writers
//! unused for [`TantivyOptions::writer_idle_close`] are closed by the
//! store's maintenance thread. Threads and indexing memory are bounded by
//! the places, not by the number of clusters (itself bounded by
//! [`TantivyOptions::max_clusters`]). Closing a writer commits and answers
//! everything it took first. The directory is locked
//! (`.auditrail-store.lock`) while the store is open for writing.
//!
//! # Schema
//! See [`schema()`]: every query field is an exact keyword (or an `i64`, a
//! `bool`, a microsecond date); the original bytes are stored, not indexed.
//! The document store is compressed with **lz4**: tantivy 0.27 only has zstd
//! behind a non-default feature, and lz4 is fast enough that fetching a page
//! of events is dominated by the JSON they contain.
//!
//! Term dictionaries are tantivy's SSTable dictionaries (the `quickwit`
//! feature) rather than its default FSTs: building an FST (its node
//! registry) at every commit and merge was the largest single cost of
//! ingest, and the SSTable answers the same lookups, ranges and regular
//! expressions. Its blocks are not compressed (tantivy's default feature
//! `columnar-zstd-compression` is off): with zstd, every term lookup
//! decompressed a block, which made duplicate checks and searches slower
//! (BENCHMARKS.md). The formats do not mix: an index written with FST
//! dictionaries (auditrail before 2026-11-25) does not open; tantivy's error
//! says "Unsupported dictionary type"; re-ingest its logs into a new data
//! directory.
//!
//! # Durability and idempotency
//! [`Store::write`] answers only after a tantivy commit (segment files and
//! `meta.json` fsynced) that contains its documents, and readers are
//! reloaded before it answers, so a search that starts after `write` returned
//! sees its events. Each open writer has one thread that batches concurrent
//! writes into one commit ("group commit") and checks every id against the
//! committed index and the not-yet-committed documents before adding it, so
//! no id is ever stored twice, also across crashes: see the `writer` module
//! for the commit policy and the argument.
//!
//! # Read-only
//! [`TantivyStore::open_read_only`] serves searches beside a writer in
//! another process (tantivy allows one writer per index): readers reload
//! after that writer's commits, and new cluster indices are discovered by later
//! searches (the directory is listed at most once a second).
//!
//! # Crash recovery
//! Tantivy writes segments, then atomically replaces `meta.json`: an index
//! left by a killed process opens at its last commit, and files of an
//! unfinished commit are garbage-collected by the next writer. The writer lock
//! (`.tantivy-writer.lock`) is an OS file lock (`flock` through `fs4`), which
//! the kernel releases when the process dies: the file may remain, but it
//! does not block the next writer, so nothing needs removing (the test suite
//! kills a writing process and reopens its directory).
//!
//! # Times
//! Stored times are whole microseconds (what the API server writes); a
//! returned [`StoredEvent::time`] is the event's time floored to the
//! microsecond, and range bounds with a finer part are rounded so that the
//! comparison is exact for stored times. Times outside what tantivy's
//! nanosecond `i64` can hold (before 1677 or after 2262) are clamped.
//!
//! # Order and paging
//! Searches order by (time, id): newest first is (time desc, id desc), oldest
//! first (time asc, id asc), where ids compare as their 32 bytes. The order
//! is total, and `after` skips exactly the events at or before the cursor, so
//! paging never repeats or skips an event that existed when paging started.
//! `total` counts every match of the query, not only those after the cursor;
//! `next` is `None` exactly when no match lies after the page.
//!
//! # Statistics
//! [`Store::stats`] has one entry per cluster and type that has events; the
//! size is the cluster's whole index directory, reported on both types.
//!
//! # Damaged files
//! Tantivy ends every file with a CRC32 of its contents but checks it only
//! when asked, and reads segments lazily: a flipped byte in a doc store or a
//! fast-field file goes unnoticed until a read returns garbage, fails, or
//! (fast fields) silently reorders results. So the store verifies its files
//! (the `verify` module): [`TantivyStore::verify_in_background`] checks
//! every segment an opened store serves on a thread of its own (the servers
//! start it when they open the embedded store; serving does not wait), the
//! maintenance thread checks them again every
//! [`TantivyOptions::verify_interval`], and
//! [`TantivyStore::verify_dir`] checks a directory offline without a lock
//! (`auditrail store verify`). A damaged segment is reported with its
//! cluster, id, damaged files, document count and time range (from its
//! intact fast fields, else from the times stored with its documents, else
//! unknown), logged at ERROR, counted in the `store_damaged_segments` and
//! `store_damaged_events` gauges and listed by [`Store::damage`]. From then
//! on **every read leaves it out** (searches, counts, histograms, `get`,
//! statistics, the duplicate check) and merges never read it, so its
//! garbage is never served nor copied into a new segment with a valid
//! checksum; nothing is deleted. Because the duplicate check leaves it out
//! too, re-sending its events (reading the logs again) stores them anew.
//! Segments are not merged until verified. A document that cannot be read
//! before verification has found its segment is [`StoreError::DataLoss`]
//! naming the segment and its time range (a `DATA_LOSS` status).
//!
//! # Metrics
//! `store_events_written_total`, `store_duplicates_total`,
//! `store_commits_total` (counters) and `store_commit_seconds` (histogram),
//! each labelled with the cluster; `store_writers_opened_total` and
//! `store_writers_closed_total` (counters, per cluster) and
//! `store_writers_open` (gauge); from the verification,
//! `store_segments_verified_total` (counter), `store_damaged_segments` and
//! `store_damaged_events` (gauges), per cluster.

//!
//! # Modules
//! `directory` opens the store directory and its cluster indices; `writer`
//! and `pool` write them; `search`, `histogram` and `stats` answer the
//! reads, through the `read` module's views (which leave damaged segments
//! out) and the `collect` module's collectors; `verify` checks segment
//! files, `verify_store` runs those checks over a store; `maintenance` is
//! the store's own thread.

mod collect;
mod directory;
mod histogram;
mod maintenance;
mod options;
mod pool;
mod query;
mod read;
mod schema;
mod search;
mod stats;
#[cfg(test)]
mod tantivy_ceiling;
mod verify;
mod verify_store;
mod writer;

use std::collections::BTreeMap;
use std::sync::Arc;

use auditrail_event::EventId;
use auditrail_store::{
    Histogram, HistogramRequest, IndexStats, IndexedEvent, Query, SearchPage, SearchRequest, Store,
    StoreError, StoredEvent, WriteOutcome,
};
use jiff::Timestamp;

pub use auditrail_store::valid_cluster_name;
pub use options::TantivyOptions;
pub use query::to_tantivy;
pub use schema::schema;
pub use verify::{ClusterVerification, VerifyReport};

use directory::Inner;
use histogram::histogram_blocking;
use maintenance::Maintenance;
use read::{View, stored_event, views};
use schema::{EventDocument, ceil_micros};
use search::search_blocking;
use stats::stats_blocking;
use writer::{IdLookup, internal};

/// The embedded store: one tantivy index per cluster under one directory,
/// written through a bounded pool of writers.
///
/// Dropping the last handle stops the maintenance thread and the writer
/// threads (after they answered every queued request) and releases the
/// locks; that blocks for as long as merges in progress take to finish.
#[derive(Debug, Clone)]
pub struct TantivyStore {
    /// Stopped first when the last handle drops (fields drop in order), so
    /// that `inner` and its indices close on the dropping thread.
    _maintenance: Option<Arc<Maintenance>>,
    inner: Arc<Inner>,
}

fn join_error(e: &tokio::task::JoinError) -> StoreError {
    StoreError::Internal(format!("store task failed: {e}"))
}

impl TantivyStore {
    async fn blocking<T: Send + 'static>(
        f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| join_error(&e))?
    }
}

/// `documents` grouped by cluster, in their order. A batch usually comes
/// from one cluster: then it is passed on as it is.
fn by_cluster(documents: Vec<EventDocument>) -> BTreeMap<String, Vec<EventDocument>> {
    let mut groups: BTreeMap<String, Vec<EventDocument>> = BTreeMap::new();
    let Some(first) = documents.first().map(|d| d.cluster().to_owned()) else {
        return groups;
    };
    if documents.iter().all(|d| d.cluster() == first) {
        groups.insert(first, documents);
        return groups;
    }
    for doc in documents {
        match groups.get_mut(doc.cluster()) {
            Some(group) => group.push(doc),
            None => {
                groups.insert(doc.cluster().to_owned(), vec![doc]);
            }
        }
    }
    groups
}

#[async_trait::async_trait]
impl Store for TantivyStore {
    async fn write(&self, events: Vec<IndexedEvent>) -> Result<WriteOutcome, StoreError> {
        self.inner.writable()?;
        if let Some(bad) = events.iter().find(|e| !valid_cluster_name(&e.cluster)) {
            return Err(StoreError::InvalidRequest(format!(
                "invalid cluster name {:?}: expected 1 to 253 characters of [A-Za-z0-9._-], \
                 not \".\" or \"..\"",
                bad.cluster
            )));
        }
        // Made here, on the caller's task, so the one writer thread per index
        // only checks ids and hands documents to tantivy.
        let mut documents = Vec::with_capacity(events.len());
        for event in events {
            match EventDocument::new(event) {
                Ok(doc) => documents.push(doc),
                Err(id) => {
                    return Err(StoreError::InvalidRequest(format!(
                        "event {id} is not UTF-8: audit events are JSON"
                    )));
                }
            }
        }
        let by_cluster = by_cluster(documents);
        let pool = Arc::clone(self.inner.pool()?);
        let mut waiting = Vec::with_capacity(by_cluster.len());
        for (cluster, events) in by_cluster {
            let index = self.index_for_write(&cluster).await?;
            let pool = Arc::clone(&pool);
            // Each cluster's writer works in parallel; answers are awaited
            // below, all of them, so a failure reports after the others are
            // settled.
            waiting.push(tokio::spawn(
                async move { index.write(&pool, events).await },
            ));
        }
        let mut outcome = WriteOutcome::default();
        let mut failure = None;
        for handle in waiting {
            match handle.await.map_err(|e| join_error(&e)).and_then(|r| r) {
                Ok(o) => {
                    outcome.inserted += o.inserted;
                    outcome.duplicates += o.duplicates;
                }
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(outcome),
        }
    }

    async fn search(&self, request: SearchRequest) -> Result<SearchPage, StoreError> {
        let query = to_tantivy(&request.query)?;
        let indices = self.indices_for(&request.query);
        Self::blocking(move || search_blocking(&indices, &*query, &request)).await
    }

    async fn histogram(&self, request: HistogramRequest) -> Result<Histogram, StoreError> {
        let interval_micros = histogram::interval_micros(&request)?;
        let query = to_tantivy(&request.query)?;
        let indices = self.indices_for(&request.query);
        Self::blocking(move || histogram_blocking(&indices, &*query, interval_micros, &request))
            .await
    }

    async fn count(&self, query: &Query) -> Result<u64, StoreError> {
        let tquery = to_tantivy(query)?;
        let indices = self.indices_for(query);
        Self::blocking(move || {
            let mut total = 0u64;
            for view in views(&indices) {
                total += view.count(&*tquery).map_err(|e| internal("count", e))?;
            }
            Ok(total)
        })
        .await
    }

    async fn get(&self, id: &EventId) -> Result<Option<StoredEvent>, StoreError> {
        let indices = self.all_indices();
        let id = *id;
        Self::blocking(move || {
            for index in &indices {
                let view = View::of(index);
                if let Some(address) = IdLookup::new(&view.searcher, &index.health)?.find(&id)? {
                    return stored_event(&view, address, true).map(Some);
                }
            }
            Ok(None)
        })
        .await
    }

    async fn delete_before(&self, cutoff: Timestamp) -> Result<u64, StoreError> {
        self.inner.writable()?;
        // time < cutoff ⟺ stored µs < ceil(cutoff) (stored times are whole µs).
        let micros = ceil_micros(cutoff);
        let pool = self.inner.pool()?;
        let mut deleted = 0;
        for index in self.all_indices() {
            deleted += index.delete_before(pool, micros).await?;
        }
        Ok(deleted)
    }

    async fn damage(&self) -> Result<Vec<auditrail_store::Damage>, StoreError> {
        Ok(self
            .all_indices()
            .iter()
            .flat_map(|index| index.health.damage())
            .collect())
    }

    async fn stats(&self) -> Result<Vec<IndexStats>, StoreError> {
        let indices = self.all_indices();
        Self::blocking(move || {
            let mut all = Vec::new();
            for index in &indices {
                all.extend(stats_blocking(index)?);
            }
            Ok(all)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names() {
        for ok in ["a", "prod-eu.1", "x_y", &"a".repeat(253)] {
            assert!(valid_cluster_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "é", &"a".repeat(254), "a\0"] {
            assert!(!valid_cluster_name(bad), "{bad:?}");
        }
    }
}
