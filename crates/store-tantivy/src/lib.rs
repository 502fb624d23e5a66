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

mod collect;
mod maintenance;
mod pool;
mod query;
mod schema;
#[cfg(test)]
mod tantivy_ceiling;
mod verify;
mod writer;

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use auditrail_event::{EventId, EventType};
use auditrail_store::{
    CountMode, Cursor, Histogram, HistogramRequest, IndexStats, IndexedEvent, Query, SearchPage,
    SearchRequest, SortOrder, Store, StoreError, StoredEvent, TermsField, Total, WriteOutcome,
    top_terms,
};
use jiff::Timestamp;
use tantivy::collector::Collector as _;
use tantivy::collector::Count;
use tantivy::index::SegmentId;
use tantivy::query::EnableScoring;
use tantivy::query::{BooleanQuery, Query as TQuery, TermQuery};
use tantivy::schema::document::{DeserializeError, DocumentDeserialize, DocumentDeserializer};
use tantivy::schema::{IndexRecordOption, OwnedValue};
use tantivy::{DocAddress, DocSet as _, Searcher, SegmentReader, TERMINATED, Term};

pub use query::to_tantivy;
pub use schema::schema;
pub use verify::{ClusterVerification, VerifyReport};

use collect::{BucketCounts, Buckets, SortKey, TimeSpan, TopByTime, best_time_word, cursor_key};
use maintenance::Maintenance;
use pool::WriterPool;
use query::micros_range;
use schema::{EventDocument, ceil_micros, fields, floor_micros, timestamp};
use writer::{ClusterIndex, IdLookup, internal};

/// Settings of a [`TantivyStore`]. The writer settings apply to each open
/// writer; at most `max_open_writers` are open at once, whatever the number
/// of clusters, so the store's writers use at most `max_open_writers` ×
/// (`writer_threads` + `merge_threads` + 2) threads and `max_open_writers`
/// × `writer_memory_bytes` of indexing memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TantivyOptions {
    /// Commit once this many documents are pending (default 50 000).
    pub commit_max_docs: usize,
    /// Commit at the latest this long after the first pending document was
    /// added, even if more writes are queued (default 200 ms).
    pub commit_max_delay: Duration,
    /// Indexing memory of each open writer, split between its threads
    /// (default 128 MiB; at least 15 MB per thread).
    pub writer_memory_bytes: usize,
    /// Indexing threads of each open writer (default 1).
    pub writer_threads: usize,
    /// Segment-merging threads of each open writer (default 1).
    pub merge_threads: usize,
    /// Most cluster indices the store holds (default 64). Any writer of the
    /// store can send new cluster names, and each index keeps a directory
    /// and a reader open; a write that would create one more is refused
    /// ([`StoreError::LimitReached`]).
    pub max_clusters: usize,
    /// Most writers open at once, over all clusters (default 4). A cluster
    /// writing while all are taken closes the writer asked for least
    /// recently (after it committed everything it took).
    pub max_open_writers: usize,
    /// A writer nobody asked for this long is committed and closed, giving
    /// back its threads and memory; the next write opens it again (default
    /// 5 minutes; zero: kept open until its place is needed).
    pub writer_idle_close: Duration,
    /// How often the store's files are verified again after the check at
    /// start ([`TantivyStore::verify_in_background`]), by the store's own
    /// thread (default 6 hours; zero: never).
    pub verify_interval: Duration,
}

impl Default for TantivyOptions {
    fn default() -> Self {
        Self {
            commit_max_docs: 50_000,
            commit_max_delay: Duration::from_millis(200),
            writer_memory_bytes: 128 << 20,
            writer_threads: 1,
            merge_threads: 1,
            max_clusters: 64,
            max_open_writers: 4,
            writer_idle_close: Duration::from_mins(5),
            verify_interval: Duration::from_hours(6),
        }
    }
}

/// Tantivy's smallest indexing memory per writer thread.
const MIN_MEMORY_PER_THREAD: usize = 15_000_000;
/// Tantivy's largest indexing memory per writer thread (just under 4 GB).
const MAX_MEMORY_PER_THREAD: usize = u32::MAX as usize - MIN_MEMORY_PER_THREAD;

impl TantivyOptions {
    fn validate(&self) -> Result<(), StoreError> {
        let invalid = |m: String| Err(StoreError::InvalidRequest(m));
        if self.commit_max_docs == 0 {
            return invalid("commit_max_docs must be at least 1".into());
        }
        if self.writer_threads == 0 || self.merge_threads == 0 || self.max_open_writers == 0 {
            return invalid(
                "writer_threads, merge_threads and max_open_writers must be at least 1".into(),
            );
        }
        let per_thread = self.writer_memory_bytes / self.writer_threads;
        if !(MIN_MEMORY_PER_THREAD..=MAX_MEMORY_PER_THREAD).contains(&per_thread) {
            return invalid(format!(
                "writer_memory_bytes / writer_threads is {per_thread}; tantivy needs \
                 {MIN_MEMORY_PER_THREAD} to {MAX_MEMORY_PER_THREAD} bytes per thread"
            ));
        }
        Ok(())
    }
}

pub use auditrail_store::valid_cluster_name;

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

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    options: TantivyOptions,
    /// The places of open writers (`None`: read-only).
    pool: Option<Arc<WriterPool>>,
    /// The store directory's lock ([`STORE_LOCK`]), held while open for
    /// writing.
    _lock: Option<std::fs::File>,
    indices: RwLock<BTreeMap<String, Arc<ClusterIndex>>>,
    /// Serialises index creation (the map lock is not held during I/O).
    creating: Mutex<()>,
    /// Opened with [`TantivyStore::open_read_only`].
    read_only: bool,
    /// When a read-only store last looked for new cluster indices.
    last_discovery: Mutex<Option<std::time::Instant>>,
}

/// The file a store open for writing locks, so that a second process
/// opening the same directory is refused at once, not at its first write.
const STORE_LOCK: &str = ".auditrail-store.lock";

/// How often a read-only store looks for cluster indices created since.
const DISCOVERY_INTERVAL: Duration = Duration::from_secs(1);

fn join_error(e: &tokio::task::JoinError) -> StoreError {
    StoreError::Internal(format!("store task failed: {e}"))
}

impl TantivyStore {
    /// Opens the store in `dir` (created if missing), with every cluster
    /// index found there (searchable at once; writers are opened by
    /// writes). Another process holding the directory open for writing is
    /// [`StoreError::Unavailable`]. Blocking: call it before serving, or
    /// from `spawn_blocking`.
    pub fn open(dir: &Path, options: TantivyOptions) -> Result<Self, StoreError> {
        options.validate()?;
        std::fs::create_dir_all(dir)
            .map_err(|e| internal(&format!("create {}", dir.display()), e))?;
        let lock = lock_dir(dir)?;
        let mut indices = BTreeMap::new();
        let entries =
            std::fs::read_dir(dir).map_err(|e| internal(&format!("list {}", dir.display()), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| internal(&format!("list {}", dir.display()), e))?;
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            let name = entry.file_name();
            match name.to_str() {
                Some(STORE_LOCK) => {}
                Some(cluster) if is_dir && valid_cluster_name(cluster) => {
                    let index = ClusterIndex::open(cluster, &entry.path())?;
                    indices.insert(cluster.to_owned(), Arc::new(index));
                }
                _ => tracing::warn!(path = %entry.path().display(), "not a cluster index; ignored"),
            }
        }
        tracing::info!(dir = %dir.display(), clusters = indices.len(), "tantivy store opened");
        let inner = Arc::new(Inner {
            dir: dir.to_owned(),
            pool: Some(Arc::new(WriterPool::new(options.clone()))),
            options,
            _lock: Some(lock),
            indices: RwLock::new(indices),
            creating: Mutex::new(()),
            read_only: false,
            last_discovery: Mutex::new(None),
        });
        Self::with_maintenance(inner)
    }

    /// The store around `inner`, with its maintenance thread if it has
    /// work: closing idle writers, verifying the files again.
    fn with_maintenance(inner: Arc<Inner>) -> Result<Self, StoreError> {
        let idle = inner
            .pool
            .as_ref()
            .map_or(Duration::ZERO, |p| p.options().writer_idle_close);
        let verify_every = inner.options.verify_interval;
        let every = [idle, verify_every]
            .into_iter()
            .filter(|d| !d.is_zero())
            .min();
        let maintenance = match every {
            None => None,
            Some(every) => {
                let weak = Arc::downgrade(&inner);
                let mut next_verification = std::time::Instant::now() + verify_every;
                Some(Arc::new(Maintenance::start(
                    maintenance::tick_for(every),
                    move |signal| {
                        let Some(inner) = weak.upgrade() else {
                            return false;
                        };
                        if let Some(pool) = &inner.pool {
                            pool.close_idle();
                        }
                        if !verify_every.is_zero() && std::time::Instant::now() >= next_verification
                        {
                            let indices = inner.expect_verification();
                            let dir = inner.dir.clone();
                            // The indices are held weakly meanwhile.
                            drop(inner);
                            verify_indices(dir, &indices, &|| signal.is_set());
                            next_verification = std::time::Instant::now() + verify_every;
                        }
                        true
                    },
                )?))
            }
        };
        Ok(Self {
            _maintenance: maintenance,
            inner,
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// How many writers are open now (at most
    /// [`TantivyOptions::max_open_writers`]; also the `store_writers_open`
    /// gauge).
    pub fn open_writers(&self) -> usize {
        self.inner.pool.as_ref().map_or(0, |p| p.open_writers())
    }

    /// The clusters that have an index.
    pub fn clusters(&self) -> Vec<String> {
        self.inner.map().keys().cloned().collect()
    }

    /// Opens the store in `dir` for searching only, beside a writer in
    /// another process (the standalone query service next to the indexer):
    /// no index is locked or created, readers reload after the writer's
    /// commits, and cluster indices created later are found by later
    /// searches (the directory is listed at most once a second). Writes,
    /// deletes and retention answer [`StoreError::InvalidRequest`]. A
    /// missing `dir` is an empty store.
    pub fn open_read_only(dir: &Path) -> Result<Self, StoreError> {
        let inner = Arc::new(Inner {
            dir: dir.to_owned(),
            options: TantivyOptions::default(),
            pool: None,
            _lock: None,
            indices: RwLock::new(BTreeMap::new()),
            creating: Mutex::new(()),
            read_only: true,
            last_discovery: Mutex::new(None),
        });
        inner.discover()?;
        let store = Self::with_maintenance(inner)?;
        tracing::info!(dir = %dir.display(), clusters = store.clusters().len(), "tantivy store opened read-only");
        Ok(store)
    }

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
    /// gauges (per cluster); [`Store::damage`] lists them. Segments not
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

    /// The indices a query can match.
    fn indices_for(&self, query: &Query) -> Vec<Arc<ClusterIndex>> {
        self.inner.rediscover();
        let map = self.inner.map();
        match query::clusters(query) {
            Some(names) => names.iter().filter_map(|n| map.get(n).cloned()).collect(),
            None => map.values().cloned().collect(),
        }
    }

    fn all_indices(&self) -> Vec<Arc<ClusterIndex>> {
        self.inner.rediscover();
        self.inner.map().values().cloned().collect()
    }

    /// The index of `cluster`, created if needed.
    async fn index_for_write(&self, cluster: &str) -> Result<Arc<ClusterIndex>, StoreError> {
        if let Some(index) = self.inner.map().get(cluster) {
            return Ok(Arc::clone(index));
        }
        let inner = Arc::clone(&self.inner);
        let cluster = cluster.to_owned();
        tokio::task::spawn_blocking(move || inner.create(&cluster))
            .await
            .map_err(|e| join_error(&e))?
    }

    async fn blocking<T: Send + 'static>(
        f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| join_error(&e))?
    }
}

/// Locks the store directory `dir` (see [`STORE_LOCK`]); the kernel
/// releases the lock when the process dies. Blocking.
fn lock_dir(dir: &Path) -> Result<std::fs::File, StoreError> {
    let path = dir.join(STORE_LOCK);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| internal(&format!("open {}", path.display()), e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Unavailable(format!(
            "the store in {} is in use by another writer (another process holds {})",
            dir.display(),
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(internal(&format!("lock {}", path.display()), e))
        }
    }
}

impl Inner {
    /// Every index and its segments as they are now, those segments marked
    /// as waiting for verification (not merged until verified).
    fn expect_verification(&self) -> Vec<(String, std::sync::Weak<ClusterIndex>)> {
        self.map()
            .iter()
            .map(|(cluster, index)| {
                let searcher = index.reader.searcher();
                index.health.expect(
                    searcher
                        .segment_readers()
                        .iter()
                        .map(SegmentReader::segment_id),
                );
                (cluster.clone(), Arc::downgrade(index))
            })
            .collect()
    }

    /// The writer places (a store open for writing has them).
    fn pool(&self) -> Result<&Arc<WriterPool>, StoreError> {
        self.writable()?;
        self.pool
            .as_ref()
            .ok_or_else(|| StoreError::Internal("a writable store without writers".into()))
    }

    fn map(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<ClusterIndex>>> {
        self.indices.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens the cluster indices of the directory not opened yet
    /// (read-only stores only). Blocking, but only a directory listing
    /// unless a new index appeared.
    fn discover(&self) -> Result<(), StoreError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(internal(&format!("list {}", self.dir.display()), e)),
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(cluster) = name.to_str().filter(|c| valid_cluster_name(c)) else {
                continue;
            };
            // An index exists once its writer committed `meta.json`.
            if self.map().contains_key(cluster) || !entry.path().join("meta.json").is_file() {
                continue;
            }
            let index = Arc::new(ClusterIndex::open_reader(cluster, &entry.path())?);
            self.indices
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(cluster.to_owned(), index);
        }
        Ok(())
    }

    /// Refuses writes to a read-only store.
    fn writable(&self) -> Result<(), StoreError> {
        if self.read_only {
            return Err(StoreError::InvalidRequest(format!(
                "the store in {} is open read-only",
                self.dir.display()
            )));
        }
        Ok(())
    }

    /// [`Self::discover`] for read-only stores before a search, at most
    /// once per [`DISCOVERY_INTERVAL`] (searches do not each list the
    /// directory); a failure is logged and the known indices are searched.
    fn rediscover(&self) {
        if !self.read_only {
            return;
        }
        {
            let mut last = self
                .last_discovery
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if last.is_some_and(|t| t.elapsed() < DISCOVERY_INTERVAL) {
                return;
            }
            *last = Some(std::time::Instant::now());
        }
        if let Err(e) = self.discover() {
            tracing::warn!(error = %e, "cannot look for new cluster indices");
        }
    }

    fn create(&self, cluster: &str) -> Result<Arc<ClusterIndex>, StoreError> {
        self.writable()?;
        let _creating = self.creating.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(index) = self.map().get(cluster) {
            return Ok(Arc::clone(index));
        }
        let held = self.map().len();
        if held >= self.options.max_clusters {
            tracing::warn!(
                cluster,
                held,
                max_clusters = self.options.max_clusters,
                "refused a new cluster index: the store holds its most"
            );
            return Err(StoreError::LimitReached(format!(
                "the store holds {held} cluster indices, its most (max_clusters); events of \
                 a new cluster {cluster:?} are refused until the limit is raised"
            )));
        }
        let index = Arc::new(ClusterIndex::open(cluster, &self.dir.join(cluster))?);
        tracing::info!(cluster, "created cluster index");
        self.indices
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(cluster.to_owned(), Arc::clone(&index));
        Ok(index)
    }
}

/// The background verification of [`TantivyStore::verify_in_background`].
/// Also run again every [`TantivyOptions::verify_interval`]; it ends early
/// (with a partial report) once `stop` answers `true`.
fn verify_indices(
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

/// The stored fields of an event, read straight from the document store:
/// each value is moved out of the decoder (the original JSON is not copied
/// again), and fields nobody reads are not collected into a document.
#[derive(Default)]
struct StoredFields {
    id: Option<Vec<u8>>,
    cluster: Option<String>,
    event_type: Option<String>,
    time: Option<tantivy::DateTime>,
    raw: Option<String>,
}

impl DocumentDeserialize for StoredFields {
    fn deserialize<'de, D>(mut deserializer: D) -> Result<Self, DeserializeError>
    where
        D: DocumentDeserializer<'de>,
    {
        let f = fields();
        let mut out = Self::default();
        while let Some((field, value)) = deserializer.next_field::<OwnedValue>()? {
            match value {
                OwnedValue::Bytes(b) if field == f.id => out.id = Some(b),
                OwnedValue::Str(s) if field == f.cluster => out.cluster = Some(s),
                OwnedValue::Str(s) if field == f.event_type => out.event_type = Some(s),
                OwnedValue::Date(d) if field == f.time => out.time = Some(d),
                OwnedValue::Str(s) if field == f.raw => out.raw = Some(s),
                _ => {}
            }
        }
        Ok(out)
    }
}

/// The stored event at `address`; a document that cannot be read is
/// [`StoreError::DataLoss`] naming its segment.
fn stored_event(
    view: &View,
    address: DocAddress,
    include_raw: bool,
) -> Result<StoredEvent, StoreError> {
    let doc: StoredFields = view
        .searcher
        .doc(address)
        .map_err(|e| verify::data_loss(&view.cluster, &view.searcher, address, e))?;
    let missing = |name: &str| StoreError::Internal(format!("stored event without {name}"));
    let id = doc
        .id
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .map(EventId::from_bytes)
        .ok_or_else(|| missing("a valid id"))?;
    let event_type = doc
        .event_type
        .ok_or_else(|| missing("type"))?
        .parse::<EventType>()
        .map_err(|e| internal("stored type", e))?;
    let micros = doc
        .time
        .ok_or_else(|| missing("time"))?
        .into_timestamp_micros();
    let time = timestamp(micros)
        .ok_or_else(|| StoreError::Internal(format!("stored time {micros} out of range")))?;
    let raw = match (include_raw, doc.raw) {
        (true, Some(raw)) => raw.into_bytes(),
        _ => Vec::new(),
    };
    Ok(StoredEvent {
        id,
        cluster: doc.cluster.ok_or_else(|| missing("cluster"))?,
        event_type,
        time,
        raw,
    })
}

/// A searcher of one cluster index and its damaged segments, which no read
/// touches.
struct View {
    cluster: String,
    searcher: Searcher,
    damaged: std::collections::HashSet<SegmentId>,
}

impl View {
    fn of(index: &ClusterIndex) -> Self {
        Self {
            cluster: index.cluster.clone(),
            searcher: index.reader.searcher(),
            damaged: index.health.damaged_ids(),
        }
    }

    /// The undamaged segments, with their ordinals in the searcher.
    fn segments(&self) -> impl Iterator<Item = (u32, &SegmentReader)> {
        (0u32..)
            .zip(self.searcher.segment_readers())
            .filter(|(_, reader)| !self.damaged.contains(&reader.segment_id()))
    }

    /// `collector` over the undamaged segments.
    fn collect<C: tantivy::collector::Collector>(
        &self,
        query: &dyn TQuery,
        collector: &C,
    ) -> tantivy::Result<C::Fruit> {
        let weight = query.weight(EnableScoring::disabled_from_searcher(&self.searcher))?;
        let mut fruits = Vec::new();
        for (ord, reader) in self.segments() {
            fruits.push(collector.collect_segment(weight.as_ref(), ord, reader)?);
        }
        collector.merge_fruits(fruits)
    }

    /// The live matches of `query` in the undamaged segments.
    fn count(&self, query: &dyn TQuery) -> tantivy::Result<u64> {
        let weight = query.weight(EnableScoring::disabled_from_searcher(&self.searcher))?;
        let mut n = 0u64;
        for (_, reader) in self.segments() {
            n += u64::from(weight.count(reader)?);
        }
        Ok(n)
    }
}

fn views(indices: &[Arc<ClusterIndex>]) -> Vec<View> {
    indices.iter().map(|i| View::of(i)).collect()
}

fn search_blocking(
    indices: &[Arc<ClusterIndex>],
    query: &dyn TQuery,
    request: &SearchRequest,
) -> Result<SearchPage, StoreError> {
    let views = views(indices);
    let total = count(&views, query, request.count)?;
    // Past a cursor, only events on its side of its time can follow: bound
    // the query by time too, so that whole segments before the cursor are
    // skipped (a fast-field range answers "none" from a segment's min/max).
    let bounded: Option<Box<dyn TQuery>> = request.after.as_ref().map(|cursor| {
        let f = fields();
        let range = match request.sort {
            SortOrder::OldestFirst => micros_range(
                f.time,
                Bound::Included(floor_micros(cursor.time)),
                Bound::Unbounded,
            ),
            SortOrder::NewestFirst => micros_range(
                f.time,
                Bound::Unbounded,
                Bound::Included(ceil_micros(cursor.time)),
            ),
        };
        Box::new(BooleanQuery::intersection(vec![query.box_clone(), range])) as Box<dyn TQuery>
    });
    let page_query = bounded.as_deref().unwrap_or(query);
    // One more than the page tells whether another page follows.
    let keep = request.limit.saturating_add(1);
    let after = request.after.as_ref().map(|c| cursor_key(request.sort, c));
    let hits = top_hits(&views, page_query, request.sort, keep, after)?;
    let more = hits.len() > request.limit;
    let events = hits
        .into_iter()
        .take(request.limit)
        .map(|(_, n, address)| stored_event(&views[n], address, request.include_raw))
        .collect::<Result<Vec<_>, _>>()?;
    let next = match events.last() {
        Some(last) if more => Some(Cursor {
            time: last.time,
            id: last.id,
        }),
        _ => None,
    };
    Ok(SearchPage {
        events,
        total,
        next,
    })
}

/// The first `keep` matches of `query` in `order` after `after`, over every
/// undamaged segment of every view: `(key, view index, address)`, in order.
///
/// Segments are visited best first (by the newest, or oldest, time they
/// hold), each collected below the worst hit kept so far; once `keep` hits
/// are held, the first segment whose best time cannot beat them ends the
/// search, since every later segment is worse still. Audit events arrive
/// roughly in time order, so segments cover narrow time spans and a
/// timeline page reads few of them.
fn top_hits(
    views: &[View],
    query: &dyn TQuery,
    order: SortOrder,
    keep: usize,
    after: Option<SortKey>,
) -> Result<Vec<(SortKey, usize, DocAddress)>, StoreError> {
    let search = |e| internal("search", e);
    let mut segments = Vec::new();
    let mut weights = Vec::with_capacity(views.len());
    for (n, view) in views.iter().enumerate() {
        weights.push(
            query
                .weight(EnableScoring::disabled_from_searcher(&view.searcher))
                .map_err(search)?,
        );
        for (ord, reader) in view.segments() {
            if let Some(best) = best_time_word(order, reader).map_err(search)? {
                segments.push((best, n, ord, reader));
            }
        }
    }
    segments.sort_unstable_by_key(|(best, ..)| *best);
    let mut top: Vec<(SortKey, usize, DocAddress)> = Vec::new();
    for (best, n, ord, reader) in segments {
        let below = (top.len() >= keep).then(|| top[keep - 1].0);
        if below.is_some_and(|b| best > b[0]) {
            break;
        }
        let collector = TopByTime {
            order,
            keep,
            after,
            below,
        };
        let hits = collector
            .collect_segment(weights[n].as_ref(), ord, reader)
            .map_err(search)?;
        top.extend(hits.into_iter().map(|(key, address)| (key, n, address)));
        top.sort_unstable_by_key(|(key, ..)| *key);
        top.truncate(keep);
    }
    Ok(top)
}

/// Counts the matches of `query` as far as `mode` asks.
fn count(views: &[View], query: &dyn TQuery, mode: CountMode) -> Result<Option<Total>, StoreError> {
    let limit = match mode {
        CountMode::None => return Ok(None),
        CountMode::Exact => {
            let mut n = 0u64;
            for view in views {
                n += view.count(query).map_err(|e| internal("count", e))?;
            }
            return Ok(Some(Total {
                count: n,
                exact: true,
            }));
        }
        CountMode::UpTo(limit) => limit,
    };
    // Walk the matches until one more than the limit is found.
    let mut n = 0u64;
    for view in views {
        let weight = query
            .weight(EnableScoring::disabled_from_searcher(&view.searcher))
            .map_err(|e| internal("count", e))?;
        for (_, reader) in view.segments() {
            let mut scorer = weight
                .scorer(reader, 1.0)
                .map_err(|e| internal("count", e))?;
            let alive = reader.alive_bitset();
            let mut doc = scorer.doc();
            while doc != TERMINATED {
                if alive.is_none_or(|a| a.is_alive(doc)) {
                    n += 1;
                    if n > limit {
                        return Ok(Some(Total {
                            count: limit,
                            exact: false,
                        }));
                    }
                }
                doc = scorer.advance();
            }
        }
    }
    Ok(Some(Total {
        count: n,
        exact: true,
    }))
}

fn histogram_blocking(
    indices: &[Arc<ClusterIndex>],
    query: &dyn TQuery,
    interval_micros: i64,
    request: &HistogramRequest,
) -> Result<Histogram, StoreError> {
    let collector = Buckets {
        interval_micros,
        terms: request.terms.iter().map(|f| terms_column(*f)).collect(),
    };
    let mut counts = BucketCounts::default();
    for view in views(indices) {
        let fruit = view
            .collect(query, &collector)
            .map_err(|e| internal("histogram", e))?;
        counts.add(fruit);
    }
    let mut buckets = BTreeMap::new();
    for (bucket, n) in counts.buckets {
        let start = bucket
            .checked_mul(interval_micros)
            .and_then(timestamp)
            .ok_or_else(|| StoreError::Internal(format!("bucket {bucket} out of range")))?;
        buckets.insert(start, n);
    }
    let total = buckets.values().sum();
    counts.terms.resize_with(request.terms.len(), HashMap::new);
    let terms = request
        .terms
        .iter()
        .zip(counts.terms)
        .map(|(field, values)| top_terms(*field, values, request.top_n))
        .collect();
    Ok(Histogram {
        buckets,
        terms,
        total,
    })
}

/// The fast column holding a histogram's terms field.
fn terms_column(field: TermsField) -> &'static str {
    match field {
        TermsField::Verb => schema::VERB,
        TermsField::Resource => schema::RESOURCE,
        TermsField::Username => schema::USERNAME,
        TermsField::Namespace => schema::NAMESPACE,
    }
}

fn stats_blocking(index: &ClusterIndex) -> Result<Vec<IndexStats>, StoreError> {
    let size_bytes = dir_size(&index.path)?;
    let view = View::of(index);
    let mut stats = Vec::new();
    for event_type in [EventType::Kube, EventType::Ee] {
        let query = TermQuery::new(
            Term::from_field_text(fields().event_type, event_type.as_str()),
            IndexRecordOption::Basic,
        );
        let (events, span) = view
            .collect(&query, &(Count, TimeSpan))
            .map_err(|e| internal("stats", e))?;
        if events == 0 {
            continue;
        }
        stats.push(IndexStats {
            cluster: index.cluster.clone(),
            event_type,
            events: events as u64,
            oldest: span.and_then(|(lo, _)| timestamp(lo)),
            newest: span.and_then(|(_, hi)| timestamp(hi)),
            size_bytes,
        });
    }
    Ok(stats)
}

/// Total size of the files in `dir` (tantivy's directories are flat).
fn dir_size(dir: &Path) -> Result<u64, StoreError> {
    let mut size = 0;
    let entries =
        std::fs::read_dir(dir).map_err(|e| internal(&format!("list {}", dir.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| internal(&format!("list {}", dir.display()), e))?;
        // A file removed by garbage collection meanwhile counts as empty.
        if let Ok(meta) = entry.metadata()
            && meta.is_file()
        {
            size += meta.len();
        }
    }
    Ok(size)
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
        let interval_micros = i64::try_from(request.interval.as_micros())
            .ok()
            .filter(|&m| m > 0 && i128::from(m) * 1000 == request.interval.as_nanos())
            .ok_or_else(|| {
                StoreError::InvalidRequest(format!(
                    "histogram interval {:?} is not a positive whole number of microseconds",
                    request.interval
                ))
            })?;
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

    #[test]
    fn options_are_checked() {
        assert!(TantivyOptions::default().validate().is_ok());
        let small = TantivyOptions {
            writer_memory_bytes: 20 << 20,
            writer_threads: 2,
            ..TantivyOptions::default()
        };
        assert!(matches!(
            small.validate(),
            Err(StoreError::InvalidRequest(_))
        ));
        let zero = TantivyOptions {
            commit_max_docs: 0,
            ..TantivyOptions::default()
        };
        assert!(zero.validate().is_err());
    }
}
