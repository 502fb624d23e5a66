//! One cluster's index and its writer thread: idempotent adds, group commit,
//! retention deletes. The writer is opened on demand and may be closed
//! again (see the `pool` module); the reader stays open.
//!
//! Tantivy allows one `IndexWriter` per index, and a commit costs the same
//! (segment flush plus fsyncs) whether it carries ten documents or ten
//! thousand. So every open writer has one dedicated thread that owns it and
//! receives requests over a bounded channel (which also applies back-pressure
//! to callers). The thread runs in *rounds*:
//!
//! 1. block for one request;
//! 2. handle it, then keep taking requests that are already queued, without
//!    waiting, until the queue is empty, or `commit_max_docs` documents are
//!    pending, or `commit_max_delay` has passed since the round's first
//!    added document;
//! 3. commit once (if anything was added), reload the reader, and answer
//!    every request of the round.
//!
//! A lone write is therefore committed at once (no timer to wait for), and
//! under load the writes that queue up while one commit runs share the next
//! one: at most one commit is in flight per index, a commit covers at least
//! one write call, and a request waits at most for the round in progress
//! plus its own (each round gathers for at most `commit_max_delay`, then
//! commits).
//!
//! **Idempotency.** Because this thread is the only writer of its index, the
//! check "is this id stored?" cannot race with another add. An id is a
//! duplicate when it is in the committed index (a term lookup on the
//! reader, which is reloaded after every commit, skipping deleted documents;
//! asked only when the Bloom filter [`CommittedIds`] cannot rule the id out)
//! or among the documents added in the current round (a set, cleared at each
//! commit). **Across crashes** this is enough: `write` answers only after the
//! commit that contains its documents, and a crash before that commit loses
//! exactly the documents that were never acknowledged, which tantivy's
//! recovery to the last commit removes entirely; they are re-sent, found
//! absent, and added once. No document is ever visible without having been
//! checked against everything committed before it. **Across closes**: a
//! writer closes only after committing and answering everything it took,
//! and a new writer builds its Bloom filter from the reloaded reader, so it
//! starts from everything committed.

use std::collections::HashSet;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use auditrail_event::EventId;
use auditrail_store::{StoreError, WriteOutcome};
use fastbloom::BloomFilter;
use tantivy::columnar::Column;
use tantivy::indexer::{IndexWriterOptions, UserOperation};
use tantivy::query::Query as _;
use tantivy::schema::IndexRecordOption;
use tantivy::store::Compressor;
use tantivy::{
    DocAddress, DocSet, Index, IndexReader, IndexSettings, IndexWriter, InvertedIndexReader,
    ReloadPolicy, Searcher, SegmentReader, TERMINATED, Term,
};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};

use crate::TantivyOptions;
use crate::pool::WriterPool;
use crate::query::micros_range;
use crate::schema::{EventDocument, ID_PARTS, fields, id_parts};
use crate::verify::{Health, HealthyMerges};

/// Requests waiting in a writer's queue before senders wait.
const QUEUE_CAPACITY: usize = 64;

pub(crate) fn internal(context: &str, e: impl std::fmt::Display) -> StoreError {
    let message = format!("{context}: {e}");
    if is_disk_full(&message) {
        // Freeing space fixes it: the caller retries (the ingestor re-sends
        // the batch, nothing is lost), so this is UNAVAILABLE, not INTERNAL.
        StoreError::Unavailable(format!(
            "{message} (the disk is full: nothing of this write was stored; retry once space is \
             freed)"
        ))
    } else {
        StoreError::Internal(message)
    }
}

/// Whether an I/O failure's text says the disk (or the quota) is full:
/// tantivy's errors keep the OS error only as text.
fn is_disk_full(message: &str) -> bool {
    message.contains("No space left on device")
        || message.contains("os error 28")
        || message.contains("Disk quota exceeded")
        || message.contains("os error 122")
}

/// A request to a writer thread.
pub(crate) enum Request {
    Write {
        events: Vec<EventDocument>,
        reply: oneshot::Sender<Result<WriteOutcome, StoreError>>,
    },
    /// Delete events whose stored time is below this many microseconds.
    DeleteBefore {
        micros: i64,
        reply: oneshot::Sender<Result<u64, StoreError>>,
    },
}

/// One cluster's index: always searchable through `reader`; written
/// through a writer thread that is opened on the first write, holds one
/// place of the store's [`WriterPool`], and is committed and closed again
/// when idle or when another cluster needs its place.
pub(crate) struct ClusterIndex {
    pub(crate) cluster: String,
    pub(crate) path: PathBuf,
    pub(crate) reader: IndexReader,
    /// Which segments are damaged (reads skip them) or not yet verified.
    pub(crate) health: Arc<Health>,
    /// The index, to open writers on (`None`: opened read-only).
    index: Option<Index>,
    /// The open writer, if any. Held while a writer opens or closes, so
    /// that a cluster never has two (tantivy's lock would refuse the
    /// second) and a write never goes to a writer being closed.
    writer: tokio::sync::Mutex<Option<OpenWriter>>,
    /// When a write last asked for the writer (for idle closing and for
    /// choosing which writer gives up its place).
    last_used: std::sync::Mutex<Instant>,
    /// Whether a writer is open (read without the lock).
    open: AtomicBool,
}

/// A running writer thread and the place it holds.
struct OpenWriter {
    requests: mpsc::Sender<Request>,
    thread: JoinHandle<()>,
    _place: OwnedSemaphorePermit,
}

impl std::fmt::Debug for ClusterIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterIndex")
            .field("cluster", &self.cluster)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Refuses an index directory that holds segment files but no `meta.json`.
///
/// Tantivy would take it for an empty directory, create a new index, and
/// delete the files its new metadata does not list at the first commit: a
/// lost or damaged `meta.json` would silently erase the trail it indexed
/// (whose log checkpoints say it is stored, so it is never re-read). Nothing
/// is deleted here; the operator decides.
pub(crate) fn refuse_orphaned_segments(path: &Path) -> Result<(), StoreError> {
    let meta = path.join("meta.json");
    if meta.is_file() {
        return Ok(());
    }
    let entries =
        std::fs::read_dir(path).map_err(|e| internal(&format!("list {}", path.display()), e))?;
    let mut segment_files = 0usize;
    for entry in entries {
        let entry = entry.map_err(|e| internal(&format!("list {}", path.display()), e))?;
        // Tantivy's own bookkeeping (`.managed.json`, lock files) starts
        // with a dot; segment files are `<segment id>.<component>`.
        if !entry.file_name().to_string_lossy().starts_with('.') {
            segment_files += 1;
        }
    }
    if segment_files == 0 {
        return Ok(());
    }
    Err(StoreError::Internal(format!(
        "the index {} holds {segment_files} segment files but no meta.json, so which of them \
         hold the stored events is unknown; refusing to open it (nothing was deleted). \
         Restore meta.json from a backup, or move the directory aside to start this \
         cluster's index anew (its events are then re-read only if the ingestor's \
         checkpoints are removed too)",
        path.display()
    )))
}

impl ClusterIndex {
    /// Opens (or creates) the index in `path` for writing; its writer is
    /// opened by the first write. Blocking.
    pub(crate) fn open(cluster: &str, path: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(path)
            .map_err(|e| internal(&format!("create {}", path.display()), e))?;
        refuse_orphaned_segments(path)?;
        let directory = tantivy::directory::MmapDirectory::open(path)
            .map_err(|e| internal(&format!("open {}", path.display()), e))?;
        let settings = IndexSettings {
            docstore_compression: Compressor::Lz4,
            ..IndexSettings::default()
        };
        let index = Index::builder()
            .schema(fields().schema.clone())
            .settings(settings)
            .open_or_create(directory)
            .map_err(|e| internal(&format!("open index {}", path.display()), e))?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|e| internal("open reader", e))?;
        Ok(Self::new(cluster, path, reader, Some(index)))
    }

    /// Opens the existing index in `path` for searching only: no writer
    /// (another process may hold it), and a reader that reloads when that
    /// writer commits. Blocking.
    pub(crate) fn open_reader(cluster: &str, path: &Path) -> Result<Self, StoreError> {
        let index = Index::open_in_dir(path)
            .map_err(|e| internal(&format!("open index {}", path.display()), e))?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::OnCommitWithDelay)
            .try_into()
            .map_err(|e| internal("open reader", e))?;
        Ok(Self::new(cluster, path, reader, None))
    }

    fn new(cluster: &str, path: &Path, reader: IndexReader, index: Option<Index>) -> Self {
        Self {
            cluster: cluster.to_owned(),
            path: path.to_owned(),
            reader,
            health: Arc::new(Health::default()),
            index,
            writer: tokio::sync::Mutex::new(None),
            last_used: std::sync::Mutex::new(Instant::now()),
            open: AtomicBool::new(false),
        }
    }

    /// Whether a writer is open now.
    pub(crate) fn writer_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// When a write last asked for the writer.
    pub(crate) fn last_used(&self) -> Instant {
        *self
            .last_used
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The queue of this index's writer, opened (taking a place of `pool`)
    /// if it is closed.
    async fn requests(
        self: &Arc<Self>,
        pool: &Arc<WriterPool>,
    ) -> Result<mpsc::Sender<Request>, StoreError> {
        let Some(index) = self.index.clone() else {
            return Err(StoreError::InvalidRequest(format!(
                "the index of {} is open read-only",
                self.cluster
            )));
        };
        let mut slot = self.writer.lock().await;
        *self
            .last_used
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Instant::now();
        if let Some(open) = slot.as_ref() {
            return Ok(open.requests.clone());
        }
        let place = pool.place_for(&self.cluster).await?;
        let this = Arc::clone(self);
        let options = pool.options().clone();
        let open = tokio::task::spawn_blocking(move || this.start_writer(&index, &options, place))
            .await
            .map_err(|e| StoreError::Internal(format!("opening a writer failed: {e}")))??;
        let requests = open.requests.clone();
        *slot = Some(open);
        self.open.store(true, Ordering::Release);
        pool.opened(self);
        Ok(requests)
    }

    /// Opens a tantivy writer on `index` and starts its thread. Blocking.
    fn start_writer(
        &self,
        index: &Index,
        options: &TantivyOptions,
        place: OwnedSemaphorePermit,
    ) -> Result<OpenWriter, StoreError> {
        let started = Instant::now();
        let path = &self.path;
        let writer_options = IndexWriterOptions::builder()
            .num_worker_threads(options.writer_threads)
            .memory_budget_per_thread(options.writer_memory_bytes / options.writer_threads)
            .num_merge_threads(options.merge_threads)
            .build();
        let writer: IndexWriter<EventDocument> = index
            .writer_with_options(writer_options)
            .map_err(|e| match e {
                tantivy::TantivyError::LockFailure(..) => StoreError::Unavailable(format!(
                    "index {} is in use by another writer: {e}",
                    path.display()
                )),
                e => internal(&format!("open writer on {}", path.display()), e),
            })?;
        writer.set_merge_policy(Box::new(HealthyMerges {
            inner: merge_policy(),
            health: Arc::clone(&self.health),
        }));
        // The duplicate check must see every commit, also those of the
        // writer this one replaces.
        self.reader
            .reload()
            .map_err(|e| internal("reload reader", e))?;
        let committed_ids = CommittedIds::build(&self.reader.searcher(), &self.health)?;
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let state = WriterThread {
            cluster: self.cluster.clone(),
            index_writer: Some(writer),
            reader: self.reader.clone(),
            max_docs: options.commit_max_docs,
            max_delay: options.commit_max_delay,
            committed_ids,
            round: Round::default(),
            broken: None,
            health: Arc::clone(&self.health),
        };
        let thread = std::thread::Builder::new()
            .name(format!("tantivy-writer-{}", self.cluster))
            .spawn(move || state.run(rx))
            .map_err(|e| internal("spawn writer thread", e))?;
        metrics::counter!("store_writers_opened_total", "cluster" => self.cluster.clone())
            .increment(1);
        tracing::debug!(cluster = %self.cluster, elapsed = ?started.elapsed(), "writer opened");
        Ok(OpenWriter {
            requests: tx,
            thread,
            _place: place,
        })
    }

    /// Closes the writer if one is open and not being opened or closed
    /// right now, after it has committed and answered every queued request;
    /// with `idle_for`, only if no write asked for it for that long.
    /// Whether it closed one. Blocking (from a thread outside the runtime,
    /// or `spawn_blocking`).
    pub(crate) fn close_writer(&self, idle_for: Option<Duration>, why: &str) -> bool {
        let Ok(mut slot) = self.writer.try_lock() else {
            return false;
        };
        if idle_for.is_some_and(|idle| self.last_used().elapsed() < idle) {
            return false;
        }
        let Some(open) = slot.take() else {
            return false;
        };
        Self::stop(&self.cluster, open);
        self.open.store(false, Ordering::Release);
        metrics::counter!("store_writers_closed_total", "cluster" => self.cluster.clone())
            .increment(1);
        tracing::debug!(cluster = %self.cluster, why, "writer closed");
        true
    }

    /// Ends a writer thread: closing its queue ends it once it has
    /// committed and answered what is queued (a write that took the queue
    /// before is still answered); joining it releases the index lock, and
    /// only then its place in the pool.
    fn stop(cluster: &str, open: OpenWriter) {
        let OpenWriter {
            requests,
            thread,
            _place,
        } = open;
        drop(requests);
        if thread.join().is_err() {
            tracing::error!(cluster, "tantivy writer thread panicked");
        }
    }

    /// Writes `events` (all of this cluster); answers after the commit.
    pub(crate) async fn write(
        self: &Arc<Self>,
        pool: &Arc<WriterPool>,
        events: Vec<EventDocument>,
    ) -> Result<WriteOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(pool, Request::Write { events, reply }).await?;
        answer.await.map_err(|_| self.stopped())?
    }

    /// Deletes the events stored before `micros`; answers after the commit.
    /// An index holding none is not touched (no writer is opened for it).
    pub(crate) async fn delete_before(
        self: &Arc<Self>,
        pool: &Arc<WriterPool>,
        micros: i64,
    ) -> Result<u64, StoreError> {
        if self.index.is_some() && count_before(&self.reader.searcher(), micros)? == 0 {
            return Ok(0);
        }
        let (reply, answer) = oneshot::channel();
        self.send(pool, Request::DeleteBefore { micros, reply })
            .await?;
        answer.await.map_err(|_| self.stopped())?
    }

    async fn send(
        self: &Arc<Self>,
        pool: &Arc<WriterPool>,
        request: Request,
    ) -> Result<(), StoreError> {
        self.requests(pool)
            .await?
            .send(request)
            .await
            .map_err(|_| StoreError::Internal(format!("writer of {} stopped", self.cluster)))
    }

    fn stopped(&self) -> StoreError {
        StoreError::Internal(format!(
            "writer of {} stopped before answering",
            self.cluster
        ))
    }
}

impl Drop for ClusterIndex {
    fn drop(&mut self) {
        // The index lock is released before the store is gone, so the
        // directory can be reopened at once.
        if let Some(open) = self.writer.get_mut().take() {
            Self::stop(&self.cluster, open);
        }
    }
}

/// How many live events of `searcher` are stored before `micros`.
fn count_before(searcher: &Searcher, micros: i64) -> Result<usize, StoreError> {
    micros_range(fields().time, Bound::Unbounded, Bound::Excluded(micros))
        .count(searcher)
        .map_err(|e| internal("count events to delete", e))
}

/// The merge policy: tantivy's log-structured policy, merging a layer once it
/// holds 12 segments (tantivy's default is 8). A commit makes one segment, so
/// under steady ingest every document is rewritten by merges about
/// log12(events / events per commit) times; fewer, larger merges rebuild each
/// term dictionary (a large part of ingest) fewer times, while keeping
/// the segment count, which searches pay for, bounded.
fn merge_policy() -> tantivy::merge_policy::LogMergePolicy {
    let mut policy = tantivy::merge_policy::LogMergePolicy::default();
    policy.set_min_num_segments(12);
    policy.set_min_layer_size(20_000);
    policy
}

/// Id lookups on one searcher: per segment, the postings of the indexed
/// first 8 bytes of the id and the fast columns of the other 24, opened once
/// for many lookups. Damaged segments are not looked in: their events are
/// not served, so a re-sent event of theirs is stored anew.
pub(crate) struct IdLookup<'s> {
    segments: Vec<SegmentIds<'s>>,
}

struct SegmentIds<'s> {
    /// The segment's ordinal in the searcher.
    ord: u32,
    reader: &'s SegmentReader,
    prefix_index: Arc<InvertedIndexReader>,
    rest: [Column<u64>; 3],
}

impl<'s> IdLookup<'s> {
    pub(crate) fn new(searcher: &'s Searcher, health: &Health) -> Result<Self, StoreError> {
        let damaged = health.damaged_ids();
        let segments = searcher
            .segment_readers()
            .iter()
            .enumerate()
            .filter(|(_, reader)| !damaged.contains(&reader.segment_id()))
            .map(|(ord, reader)| {
                let prefix_index = reader
                    .inverted_index(fields().id_parts[0])
                    .map_err(|e| internal("read id index", e))?;
                let fast = reader.fast_fields();
                let column = |name| fast.u64(name).map_err(|e| internal("read id column", e));
                let rest = [
                    column(ID_PARTS[1])?,
                    column(ID_PARTS[2])?,
                    column(ID_PARTS[3])?,
                ];
                let ord = u32::try_from(ord).map_err(|e| internal("segment ordinal", e))?;
                Ok(SegmentIds {
                    ord,
                    reader,
                    prefix_index,
                    rest,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Self { segments })
    }

    /// Where the document with this id is, if stored (and not deleted).
    pub(crate) fn find(&self, id: &EventId) -> Result<Option<DocAddress>, StoreError> {
        let parts = id_parts(id);
        let term = Term::from_field_u64(fields().id_parts[0], parts[0]);
        for segment in &self.segments {
            let Some(mut postings) = segment
                .prefix_index
                .read_postings(&term, IndexRecordOption::Basic)
                .map_err(|e| internal("read id postings", e))?
            else {
                continue;
            };
            let mut doc = postings.doc();
            while doc != TERMINATED {
                let same = segment
                    .rest
                    .iter()
                    .zip(&parts[1..])
                    .all(|(column, part)| column.first(doc) == Some(*part));
                if same && !segment.reader.is_deleted(doc) {
                    return Ok(Some(DocAddress::new(segment.ord, doc)));
                }
                doc = postings.advance();
            }
        }
        Ok(None)
    }
}

/// A Bloom filter over the ids of the committed index, so that the
/// duplicate check of a new event (nearly every event) costs no term
/// lookup: only an id the filter cannot rule out (a re-sent event, or
/// about 1 % of new ones) is looked up in every segment.
///
/// It holds the first 8 bytes of each id (`id_0`, which is also an indexed
/// fast column), already uniformly distributed BLAKE3 output, used as the
/// filter's hash. Built from the `id_0` columns when the index opens and
/// extended with every added id; an id added but never committed, or since
/// deleted, only makes the filter answer "maybe". When more ids were added
/// than it was sized for, it is rebuilt after the next commit with twice
/// the index's size (and after retention deletes).
pub(crate) struct CommittedIds {
    filter: BloomFilter,
    capacity: usize,
    inserted: usize,
}

impl CommittedIds {
    const FALSE_POSITIVE_RATE: f64 = 0.01;
    /// Smallest capacity: about 1.2 MB of filter.
    const MIN_CAPACITY: usize = 1 << 20;

    /// The filter of every live document of `searcher` (outside damaged
    /// segments).
    pub(crate) fn build(searcher: &Searcher, health: &Health) -> Result<Self, StoreError> {
        let damaged = health.damaged_ids();
        let docs = usize::try_from(searcher.num_docs()).unwrap_or(usize::MAX);
        let capacity = docs.saturating_mul(2).max(Self::MIN_CAPACITY);
        let mut filter =
            BloomFilter::with_false_pos(Self::FALSE_POSITIVE_RATE).expected_items(capacity);
        let mut inserted = 0;
        for reader in searcher.segment_readers() {
            if damaged.contains(&reader.segment_id()) {
                continue;
            }
            let column = reader
                .fast_fields()
                .u64(ID_PARTS[0])
                .map_err(|e| internal("read id column", e))?;
            for doc in reader.doc_ids_alive() {
                if let Some(prefix) = column.first(doc) {
                    filter.insert_hash(prefix);
                    inserted += 1;
                }
            }
        }
        Ok(Self {
            filter,
            capacity,
            inserted,
        })
    }

    /// Whether the committed index may hold the id whose first 8 bytes are
    /// `prefix` (`false`: it does not).
    fn may_contain(&self, prefix: u64) -> bool {
        self.filter.contains_hash(prefix)
    }

    /// Adds the id whose first 8 bytes are `prefix`.
    fn insert(&mut self, prefix: u64) {
        self.filter.insert_hash(prefix);
        self.inserted += 1;
    }

    /// More ids than it was sized for: its false positive rate is rising.
    fn is_full(&self) -> bool {
        self.inserted > self.capacity
    }
}

/// The requests of the current round.
#[derive(Default)]
struct Round {
    /// Ids added since the last commit.
    pending: HashSet<EventId>,
    /// When the first document of the round was added.
    first_added: Option<Instant>,
    inserted: u64,
    duplicates: u64,
    waiting: Vec<(
        oneshot::Sender<Result<WriteOutcome, StoreError>>,
        WriteOutcome,
    )>,
}

struct WriterThread {
    cluster: String,
    /// `None` only while being consumed at shutdown.
    index_writer: Option<IndexWriter<EventDocument>>,
    reader: IndexReader,
    max_docs: usize,
    max_delay: Duration,
    /// Which ids the committed index may hold.
    committed_ids: CommittedIds,
    round: Round,
    /// Why the writer cannot be used any more (a failed rollback, or a
    /// reader that could not be reloaded after a commit).
    broken: Option<String>,
    /// Damaged segments are not looked in for duplicates.
    health: Arc<Health>,
}

impl WriterThread {
    fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        while let Some(first) = rx.blocking_recv() {
            let mut next = Some(first);
            while let Some(request) = next.take() {
                match request {
                    Request::Write { events, reply } => self.add(events, reply),
                    Request::DeleteBefore { micros, reply } => {
                        self.commit_round();
                        let result = self.delete_before(micros);
                        // The receiver may have gone away (caller cancelled).
                        let _ = reply.send(result);
                    }
                }
                let full = self.round.pending.len() >= self.max_docs;
                let late = self
                    .round
                    .first_added
                    .is_some_and(|t| t.elapsed() >= self.max_delay);
                if full || late {
                    break;
                }
                next = rx.try_recv().ok();
            }
            self.commit_round();
        }
        if let Some(writer) = self.index_writer.take()
            && let Err(e) = writer.wait_merging_threads()
        {
            tracing::warn!(cluster = %self.cluster, error = %e, "tantivy merges did not finish cleanly");
        }
    }

    fn writer(&mut self) -> Result<&mut IndexWriter<EventDocument>, StoreError> {
        if let Some(reason) = &self.broken {
            return Err(StoreError::Internal(format!(
                "index of {} unusable: {reason}",
                self.cluster
            )));
        }
        self.index_writer
            .as_mut()
            .ok_or_else(|| StoreError::Internal(format!("writer of {} closed", self.cluster)))
    }

    /// Adds the events not yet stored; the answer waits for the commit.
    fn add(
        &mut self,
        events: Vec<EventDocument>,
        reply: oneshot::Sender<Result<WriteOutcome, StoreError>>,
    ) {
        match self.try_add(events) {
            Ok(outcome) => {
                self.round.inserted += outcome.inserted;
                self.round.duplicates += outcome.duplicates;
                self.round.waiting.push((reply, outcome));
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }

    fn try_add(&mut self, events: Vec<EventDocument>) -> Result<WriteOutcome, StoreError> {
        let mut outcome = WriteOutcome::default();
        // The id and id prefix of each document this call adds. Its ids go
        // into the round's pending set at once (so the same id twice in one
        // call is added once), and out again if the call fails.
        let mut added = Vec::with_capacity(events.len());
        let result = self.screen_and_add(events, &mut added, &mut outcome);
        if let Err(e) = result {
            for (id, _) in &added {
                self.round.pending.remove(id);
            }
            return Err(e);
        }
        if added.is_empty() {
            return Ok(outcome);
        }
        outcome.inserted = u64::try_from(added.len()).unwrap_or(u64::MAX);
        for (_, prefix) in added {
            // Into the filter now: after the commit the index holds the id,
            // and if the commit fails the extra entry only costs a lookup.
            self.committed_ids.insert(prefix);
        }
        self.round.first_added.get_or_insert_with(Instant::now);
        Ok(outcome)
    }

    /// Counts the duplicates of `events`, marks the others pending (noting
    /// them in `added`) and hands them to tantivy's indexing thread as one
    /// message (one per document cost a channel hand-off, and often a thread
    /// wake-up, each). The message is sent whole or not at all, so on an
    /// error nothing of `added` reached tantivy.
    fn screen_and_add(
        &mut self,
        events: Vec<EventDocument>,
        added: &mut Vec<(EventId, u64)>,
        outcome: &mut WriteOutcome,
    ) -> Result<(), StoreError> {
        let searcher = self.reader.searcher();
        // Opened only when the filter cannot rule an id out.
        let mut committed: Option<IdLookup<'_>> = None;
        let mut new = Vec::with_capacity(events.len());
        for doc in events {
            let duplicate = self.round.pending.contains(doc.id())
                || (self.committed_ids.may_contain(doc.id_prefix())
                    && match &committed {
                        Some(lookup) => lookup,
                        None => committed.insert(IdLookup::new(&searcher, &self.health)?),
                    }
                    .find(doc.id())?
                    .is_some());
            if duplicate {
                outcome.duplicates += 1;
                continue;
            }
            self.round.pending.insert(*doc.id());
            added.push((*doc.id(), doc.id_prefix()));
            new.push(UserOperation::Add(doc));
        }
        if new.is_empty() {
            return Ok(());
        }
        self.writer()?
            .run(new)
            .map_err(|e| internal("add documents", e))?;
        Ok(())
    }

    /// Commits what the round added (if anything), reloads the reader, and
    /// answers every write of the round.
    fn commit_round(&mut self) {
        let round = std::mem::take(&mut self.round);
        let result = if round.pending.is_empty() {
            Ok(())
        } else {
            self.commit()
        };
        match result {
            Ok(()) => {
                metrics::counter!("store_events_written_total", "cluster" => self.cluster.clone())
                    .increment(round.inserted);
                metrics::counter!("store_duplicates_total", "cluster" => self.cluster.clone())
                    .increment(round.duplicates);
                for (reply, outcome) in round.waiting {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::error!(cluster = %self.cluster, error = %e, "commit failed");
                self.rollback();
                for (reply, _) in round.waiting {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        let started = Instant::now();
        self.writer()?
            .commit()
            .map_err(|e| internal(&format!("commit {}", self.cluster), e))?;
        let elapsed = started.elapsed();
        metrics::counter!("store_commits_total", "cluster" => self.cluster.clone()).increment(1);
        metrics::histogram!("store_commit_seconds", "cluster" => self.cluster.clone())
            .record(elapsed.as_secs_f64());
        tracing::debug!(cluster = %self.cluster, ?elapsed, "committed");
        if let Err(e) = self.reader.reload() {
            // The commit is durable but the duplicate check would not see
            // it (and the pending set is gone): refuse further writes rather
            // than risk storing an id twice. Reopening the store recovers.
            let reason = format!("reader reload after a commit failed: {e}");
            tracing::error!(cluster = %self.cluster, %reason);
            self.broken = Some(reason.clone());
            return Err(StoreError::Internal(reason));
        }
        if self.committed_ids.is_full() {
            self.rebuild_committed_ids();
        }
        Ok(())
    }

    /// Rebuilds the id filter from the committed index (just reloaded, so
    /// nothing is pending): sized for the index as it is now, without the
    /// ids of deleted events. The commit before it is durable whatever
    /// happens here; if the filter cannot be rebuilt, the old one is kept
    /// (it still holds every committed id) and writes are refused until the
    /// store is reopened, rather than let its false positives grow.
    fn rebuild_committed_ids(&mut self) {
        let started = Instant::now();
        match CommittedIds::build(&self.reader.searcher(), &self.health) {
            Ok(ids) => {
                self.committed_ids = ids;
                tracing::debug!(cluster = %self.cluster, elapsed = ?started.elapsed(), ids = self.committed_ids.inserted, "id filter rebuilt");
            }
            Err(e) => {
                let reason = format!("rebuilding the id filter failed: {e}");
                tracing::error!(cluster = %self.cluster, %reason);
                self.broken = Some(reason);
            }
        }
    }

    /// After a failed commit: drop what was added since the last commit
    /// (nothing to do when the writer was marked unusable).
    fn rollback(&mut self) {
        let Ok(writer) = self.writer() else { return };
        if let Err(e) = writer.rollback() {
            tracing::error!(cluster = %self.cluster, error = %e, "rollback failed");
            self.broken = Some(format!("rollback after a failed commit failed: {e}"));
        }
    }

    fn delete_before(&mut self, micros: i64) -> Result<u64, StoreError> {
        let count = count_before(&self.reader.searcher(), micros)?;
        if count == 0 {
            return Ok(0);
        }
        let query = micros_range(fields().time, Bound::Unbounded, Bound::Excluded(micros));
        self.writer()?
            .delete_query(query)
            .map_err(|e| internal("delete", e))?;
        if let Err(e) = self.commit() {
            self.rollback();
            return Err(e);
        }
        // Forget the deleted ids (the filter would only answer "maybe" for
        // them, but it would fill up with them).
        self.rebuild_committed_ids();
        Ok(u64::try_from(count).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod disk_full_tests {
    use super::*;

    #[test]
    fn a_full_disk_is_unavailable_and_other_failures_internal() {
        let full = std::io::Error::from_raw_os_error(28);
        assert!(matches!(
            internal("commit c", &full),
            StoreError::Unavailable(m) if m.contains("the disk is full")
        ));
        let quota = std::io::Error::from_raw_os_error(122);
        assert!(matches!(
            internal("commit c", &quota),
            StoreError::Unavailable(_)
        ));
        let denied = std::io::Error::from_raw_os_error(13);
        assert!(matches!(
            internal("commit c", &denied),
            StoreError::Internal(_)
        ));
    }
}
