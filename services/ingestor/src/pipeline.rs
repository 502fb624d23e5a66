//! The ingestion pipeline: files → batches → indexer → checkpoints.
//!
//! Delivery guarantee: a checkpoint moves past a line only after the batch
//! holding it (or its dead letter) was acknowledged, and acknowledgements are
//! applied in the order batches were read. After a crash the ingestor
//! re-reads from the last checkpoint and re-sends what may not have been
//! stored; the indexer's idempotent writes (content-hash ids) turn that
//! at-least-once transport into exactly-once storage.
//!
//! Memory stays flat whatever the file sizes: one poll reads at most one
//! batch worth of bytes, at most `max_in_flight` batches wait for their
//! acknowledgement, and a line longer than `max_line_bytes` is skipped
//! without being buffered.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use auditrail_event::EventType;
use auditrail_filetail::{
    CheckpointError, CheckpointStore, Checkpoints, FileIdentity, FollowOptions, Follower, Record,
    RecordKind, StartPosition, Watch,
};
use auditrail_proto::v1;
use auditrail_server::StopSignal;
use bytes::Bytes;
use tokio::task::JoinHandle;

use crate::dead_letter::{
    DeadLetter, SharedDeadLetters, dead_letter_rejects, lock, looks_like_json_fragment,
    one_event_per_line_hint, reject_code,
};
use crate::expired::ExpiredLog;
use crate::sender::Sender;
use crate::settings::{Settings, StartAt};
use crate::status::StatusBoard;

/// Why the pipeline could not start.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A setting cannot work.
    #[error(transparent)]
    Settings(#[from] crate::settings::InvalidSettings),
    /// The data directory, checkpoint or dead-letter file is unusable.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The follower failed to start.
    #[error(transparent)]
    Follow(#[from] auditrail_filetail::FollowError),
    /// A checkpoint file is unreadable (never silently treated as empty:
    /// that would re-read everything, or worse, skip).
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The indexer URL is not usable.
    #[error(transparent)]
    Indexer(#[from] crate::sender::InvalidIndexerUrl),
}

/// One watched source: its follower, its checkpoints and what its events
/// fall back to. Each source has its own checkpoint file, so pruning one
/// source's checkpoints never touches another's.
struct Source {
    name: String,
    /// The configuration: its type, if any, and its path.
    config: crate::settings::FileSource,
    follower: Follower,
    store: CheckpointStore,
    checkpoints: Checkpoints,
    /// Acknowledged progress not yet saved.
    dirty: bool,
    /// Events past the indexer's retention, and when they are logged.
    expired: ExpiredLog,
    /// No file matches the path or glob (at the last poll).
    waiting: bool,
}

/// Where one event of a batch came from, to dead-letter it if rejected.
struct Origin {
    source: usize,
    path: PathBuf,
    offset: u64,
    /// The line, shared with the request (no copy).
    line: Bytes,
}

/// A batch being filled.
#[derive(Default)]
struct Filling {
    events: Vec<v1::RawEvent>,
    origins: Vec<Origin>,
    /// Furthest position reached per source and file, applied when
    /// acknowledged.
    positions: BTreeMap<(usize, u64, u64), Position>,
    bytes: usize,
    records: usize,
    started: Option<Instant>,
    /// The last file path and source seen, how events show the path and
    /// their type hint there (formatting a path for every line cost as much
    /// as reading it).
    shown_path: Option<(PathBuf, usize, String, i32)>,
}

/// How far a batch got in one file of one source.
struct Position {
    source: usize,
    identity: FileIdentity,
    path: PathBuf,
    end: u64,
}

/// A batch sent and not yet applied.
struct InFlight {
    task: JoinHandle<v1::IngestBatchResponse>,
    origins: Vec<Origin>,
    positions: Vec<Position>,
    bytes: usize,
    events: usize,
}

/// The pipeline, ready to run.
pub struct Pipeline {
    settings: Settings,
    sources: Vec<Source>,
    dead_letters: SharedDeadLetters,
    sender: Sender,
    status: Arc<StatusBoard>,
    /// Set when a batch was lost before its acknowledgement: no checkpoint
    /// may move any more in this run.
    stalled: bool,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field(
                "sources",
                &self.sources.iter().map(|s| &s.name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    /// Checks the settings, opens the data directory, loads checkpoints and
    /// starts following the sources. Errors here stop the ingestor before it
    /// serves: better than running without its state.
    pub fn prepare(
        settings: Settings,
        status: Arc<StatusBoard>,
        dead_letters: SharedDeadLetters,
    ) -> Result<Self, PipelineError> {
        settings.validate()?;
        let options = FollowOptions {
            start: match settings.start_at {
                StartAt::Beginning => StartPosition::Beginning,
                StartAt::End => StartPosition::End,
            },
            max_line_bytes: settings.max_line_bytes,
            ..FollowOptions::default()
        };
        let mut sources = Vec::new();
        for source in &settings.sources {
            let store = CheckpointStore::new(checkpoint_path(&settings.data_dir, &source.path));
            let checkpoints = store.load()?;
            let follower = Follower::new(
                vec![Watch::new(source.path.clone())],
                &checkpoints,
                options.clone(),
            )?;
            sources.push(Source {
                name: source.path.clone(),
                config: source.clone(),
                waiting: false,
                follower,
                store,
                checkpoints,
                dirty: false,
                expired: ExpiredLog::default(),
            });
        }
        let sender = Sender::new(
            &settings.indexer_url,
            settings.retry.clone(),
            &settings.indexer_client,
        )?;
        for source in &mut sources {
            status.add_file_source(&source.name, source.config.event_type());
            let files = source.follower.status();
            // Logged when the pipeline runs (logging is set up by then).
            source.waiting = files.is_empty();
            status.update_files(&source.name, files);
        }
        let loaded: Vec<Checkpoints> = sources.iter().map(|s| s.checkpoints.clone()).collect();
        status.add_acknowledged(0, lock(&dead_letters).count(), &loaded);
        Ok(Self {
            settings,
            sources,
            dead_letters,
            sender,
            status,
            stalled: false,
        })
    }

    /// Sends to `url` instead of the configured indexer (a URL built from a
    /// bound socket address, which is always valid).
    #[must_use]
    pub fn with_indexer_url(mut self, url: &str) -> Self {
        match self.sender.with_url(url) {
            Ok(sender) => {
                url.clone_into(&mut self.settings.indexer_url);
                self.sender = sender;
            }
            Err(err) => tracing::error!(error = %err, "keeping the configured indexer"),
        }
        self
    }

    /// Runs until `stop`: reads, batches, sends, applies acknowledgements.
    pub async fn run(mut self, mut stop: StopSignal) {
        tracing::info!(
            sources = ?self.sources.iter().map(|s| &s.name).collect::<Vec<_>>(),
            indexer = %self.settings.indexer_url,
            "ingestion started"
        );
        for source in self.sources.iter().filter(|s| s.waiting) {
            tracing::warn!(source = %source.name, "{}", waiting_message(&source.name));
        }
        let mut filling = Filling::default();
        let mut in_flight: VecDeque<InFlight> = VecDeque::new();
        let max_wait = std::time::Duration::from_millis(self.settings.batch.max_wait_ms);
        loop {
            if stop.is_stopped() || self.stalled {
                break;
            }
            let Some(polled) = self.poll().await else {
                break;
            };
            let read: usize = polled.iter().map(|(_, r)| r.len()).sum();
            for (source, records) in polled {
                // One status update per source and poll, not per line.
                let bytes = records.iter().map(|r| r.end - r.offset).sum();
                self.status
                    .add_read(&self.sources[source].name, records.len() as u64, bytes);
                for record in records {
                    self.add(&mut filling, source, record);
                    if filling.records > 0
                        && (filling.events.len() >= self.settings.batch.max_events
                            || filling.bytes >= self.settings.batch.max_bytes)
                    {
                        self.dispatch(&mut filling, &mut in_flight).await;
                    }
                }
            }
            if filling.records > 0 && filling.started.is_some_and(|t| t.elapsed() >= max_wait) {
                self.dispatch(&mut filling, &mut in_flight).await;
            }
            // Apply whatever has been acknowledged, in order.
            while in_flight.front().is_some_and(|b| b.task.is_finished()) {
                if let Some(batch) = in_flight.pop_front() {
                    self.complete(batch).await;
                }
            }
            self.status.set_in_flight(
                in_flight.len(),
                in_flight.iter().map(|b| b.bytes as u64).sum(),
            );
            if read == 0 {
                if in_flight.is_empty() && filling.records == 0 {
                    // Caught up: summarise the dead letters not logged.
                    lock(&self.dead_letters).summarise(false);
                }
                let idle = self.settings.poll_interval().min(max_wait);
                tokio::select! {
                    () = tokio::time::sleep(idle) => {}
                    () = stop.stopped() => break,
                }
            }
        }
        // Stopping: what was acknowledged is applied; the partial batch and
        // unacknowledged lines are read again at the next start.
        tracing::info!(in_flight = in_flight.len(), "ingestion stopping");
        while let Some(batch) = in_flight.pop_front() {
            self.complete(batch).await;
        }
        lock(&self.dead_letters).summarise(true);
        tracing::info!("ingestion stopped");
    }

    /// Reads what is new in every source (blocking file I/O, off the async
    /// runtime). `None` when the reader itself failed and ingestion must stop.
    async fn poll(&mut self) -> Option<Vec<(usize, Vec<Record>)>> {
        let budget = self.settings.batch.max_bytes;
        let mut sources = std::mem::take(&mut self.sources);
        let joined = tokio::task::spawn_blocking(move || {
            let mut polled = Vec::new();
            let mut errors = Vec::new();
            for (i, source) in sources.iter_mut().enumerate() {
                match source.follower.poll(budget) {
                    Ok(records) if !records.is_empty() => polled.push((i, records)),
                    Ok(_) => {}
                    Err(err) => errors.push((source.name.clone(), err)),
                }
            }
            (sources, polled, errors)
        })
        .await;
        match joined {
            Ok((sources, polled, errors)) => {
                self.sources = sources;
                let mut failed: HashMap<String, String> = HashMap::new();
                for (name, err) in errors {
                    tracing::error!(source = %name, error = %err, "reading the audit log failed; retrying");
                    failed.insert(name, err.to_string());
                }
                for source in &mut self.sources {
                    let files = source.follower.status();
                    let unopened = source.follower.unopened();
                    // The status shows why a source is not read: the poll's
                    // error, else a file that cannot be opened, else a
                    // followed file's last I/O error.
                    let error = failed
                        .remove(&source.name)
                        .or_else(|| {
                            unopened
                                .first()
                                .map(|(path, why)| format!("{}: {why}", path.display()))
                        })
                        .or_else(|| {
                            files.iter().find_map(|f| {
                                f.last_error
                                    .as_ref()
                                    .map(|e| format!("{}: {e}", f.path.display()))
                            })
                        });
                    // A file that exists but cannot be opened is not "no
                    // file": the source is in error, not waiting.
                    let none = files.is_empty() && unopened.is_empty();
                    if source.waiting && !none {
                        tracing::info!(
                            source = %source.name,
                            files = ?files.iter().map(|f| f.path.display().to_string()).collect::<Vec<_>>(),
                            "a file matching {} appeared: reading it",
                            source.name
                        );
                    } else if !source.waiting && none {
                        tracing::warn!(source = %source.name, "{}", waiting_message(&source.name));
                    }
                    source.waiting = none;
                    self.status.update_files(&source.name, files);
                    self.status.set_error(&source.name, error);
                }
                Some(polled)
            }
            Err(err) => {
                tracing::error!(error = %err, "the file reader failed; ingestion stops");
                None
            }
        }
    }

    /// Adds one record to the batch being filled.
    fn add(&mut self, filling: &mut Filling, source: usize, record: Record) {
        let Record {
            identity,
            path,
            offset,
            end,
            kind,
        } = record;
        filling.records += 1;
        filling.started.get_or_insert_with(Instant::now);
        let name = &self.sources[source].name;
        match kind {
            RecordKind::Line(line) => {
                if line.iter().all(u8::is_ascii_whitespace) {
                    metrics::counter!("ingestor_empty_lines_total").increment(1);
                } else {
                    let line = Bytes::from(line);
                    filling.bytes += line.len();
                    let (shown_path, type_hint) = match &filling.shown_path {
                        Some((last, last_source, shown, hint))
                            if *last_source == source && last.as_os_str() == path.as_os_str() =>
                        {
                            (shown.clone(), *hint)
                        }
                        _ => {
                            let shown = path.display().to_string();
                            let hint = match self.sources[source].config.fallback_for(&path) {
                                EventType::Kube => v1::EventType::Kube,
                                EventType::Ee => v1::EventType::Ee,
                                // A source is never configured as access
                                // records (SourceType has no such type).
                                EventType::Access => v1::EventType::Unspecified,
                            } as i32;
                            filling.shown_path = Some((path.clone(), source, shown.clone(), hint));
                            (shown, hint)
                        }
                    };
                    filling.events.push(v1::RawEvent {
                        raw: line.clone(),
                        type_hint,
                        origin: Some(v1::EventOrigin {
                            source: name.clone(),
                            position: Some(v1::event_origin::Position::File(v1::FilePosition {
                                path: shown_path,
                                offset,
                                inode: identity.ino,
                            })),
                        }),
                    });
                    filling.origins.push(Origin {
                        source,
                        path: path.clone(),
                        offset,
                        line,
                    });
                }
            }
            RecordKind::TooLong { len } => {
                let letter = DeadLetter::new(
                    name,
                    &path,
                    offset,
                    "too_long",
                    format!(
                        "line of {len} bytes exceeds max_line_bytes ({})",
                        self.settings.max_line_bytes
                    ),
                    len,
                    &[],
                );
                if let Err(err) = lock(&self.dead_letters).append(&letter) {
                    tracing::error!(error = %err, "cannot write the dead-letter file");
                }
            }
        }
        let key = (source, identity.dev, identity.ino);
        filling.positions.insert(
            key,
            Position {
                source,
                identity,
                path,
                end,
            },
        );
    }

    /// Sends the filled batch, first waiting for the oldest in-flight batch
    /// when the in-flight limit is reached.
    async fn dispatch(&mut self, filling: &mut Filling, in_flight: &mut VecDeque<InFlight>) {
        let batch = std::mem::take(filling);
        while in_flight.len() >= self.settings.batch.max_in_flight {
            if let Some(oldest) = in_flight.pop_front() {
                self.complete(oldest).await;
            }
        }
        let first = batch.origins.first().map_or_else(
            || "empty".to_owned(),
            |o| format!("{}@{}", o.path.display(), o.offset),
        );
        let request = v1::IngestBatchRequest {
            batch_id: format!("{}:{first}", self.settings.cluster),
            cluster: self.settings.cluster.clone(),
            source: "files".to_owned(),
            events: batch.events,
        };
        let events = request.events.len();
        metrics::counter!("ingestor_batches_sent_total").increment(1);
        let sender = self.sender.clone();
        let task = tokio::spawn(async move {
            if request.events.is_empty() {
                // Only skipped lines: nothing to send, positions still advance.
                return v1::IngestBatchResponse {
                    committed: true,
                    batch_id: request.batch_id,
                    ..Default::default()
                };
            }
            sender.send(request).await
        });
        in_flight.push_back(InFlight {
            task,
            origins: batch.origins,
            positions: batch.positions.into_values().collect(),
            bytes: batch.bytes,
            events,
        });
    }

    /// Applies an acknowledged batch: dead-letters its rejects (counting
    /// those past the retention instead), then moves the checkpoints past
    /// it and saves them.
    async fn complete(&mut self, batch: InFlight) {
        if self.stalled {
            return;
        }
        let response = match batch.task.await {
            Ok(response) => response,
            Err(err) => {
                // The send task ends early only if the runtime is shutting
                // down or the task panicked. Later batches must not move the
                // checkpoints past this one's lines: stop advancing them; the
                // lines are read again at the next start.
                tracing::error!(error = %err, "a batch was abandoned before its acknowledgement; checkpoints stop here until restart");
                self.stalled = true;
                return;
            }
        };
        let mut expired = vec![0u64; self.sources.len()];
        let sources = &self.sources;
        let dead_letter_count = dead_letter_rejects(
            &self.dead_letters,
            &response.rejects,
            &batch.origins,
            |origin| {
                if let Some(n) = expired.get_mut(origin.source) {
                    *n += 1;
                }
            },
            |dead_letters, origin, reject| {
                let code = reject_code(reject.code);
                let mut reason = reject.reason.clone();
                if matches!(code, "invalid_json" | "not_an_event")
                    && looks_like_json_fragment(&origin.line)
                {
                    let file = origin.path.display().to_string();
                    if dead_letters.hint_once(&file) {
                        reason = format!("{reason}; {}", one_event_per_line_hint(&file));
                    }
                }
                DeadLetter::new(
                    &sources[origin.source].name,
                    &origin.path,
                    origin.offset,
                    code,
                    reason,
                    origin.line.len() as u64,
                    &origin.line,
                )
            },
        );
        for (source, n) in self.sources.iter_mut().zip(expired) {
            crate::expired::record(
                &self.status,
                &mut source.expired,
                &source.name,
                n,
                response.retention_days,
            );
        }
        for p in batch.positions {
            if let Some(source) = self.sources.get_mut(p.source) {
                source.checkpoints.advance_to(&p.identity, &p.path, p.end);
                source.dirty = true;
            }
        }
        self.save_checkpoints().await;
        let mut per_source = vec![0u64; self.sources.len()];
        for origin in &batch.origins {
            if let Some(n) = per_source.get_mut(origin.source) {
                *n += 1;
            }
        }
        for (source, n) in self.sources.iter().zip(per_source) {
            if n > 0 {
                self.status.add_source_acknowledged(&source.name, n);
            }
        }
        metrics::counter!("ingestor_events_acknowledged_total")
            .increment(u64::from(response.accepted) + u64::from(response.duplicates));
        let all: Vec<Checkpoints> = self.sources.iter().map(|s| s.checkpoints.clone()).collect();
        self.status
            .add_acknowledged(batch.events as u64, dead_letter_count, &all);
    }

    /// Saves the checkpoints that moved (atomically, off the async runtime),
    /// after pruning those of files the follower no longer needs.
    async fn save_checkpoints(&mut self) {
        for source in self.sources.iter_mut().filter(|s| s.dirty) {
            source
                .follower
                .reconcile_checkpoints(&mut source.checkpoints);
            let store = source.store.clone();
            let checkpoints = source.checkpoints.clone();
            match tokio::task::spawn_blocking(move || store.save(&checkpoints)).await {
                Ok(Ok(())) => source.dirty = false,
                Ok(Err(err)) => tracing::error!(error = %err, "cannot save checkpoints"),
                Err(err) => tracing::error!(error = %err, "checkpoint task failed"),
            }
        }
    }
}

/// The WARN line of a source whose path or glob matches no file.
pub fn waiting_message(source: &str) -> String {
    format!(
        "no file matches {source}: waiting for it to appear (it is read from its start when \
         it does; ingest-status shows the source as WAITING)"
    )
}

/// The checkpoint file of `source` in a data directory: one per source,
/// named after a hash of its configured path.
pub fn checkpoint_path(data_dir: &Path, source: &str) -> PathBuf {
    let hash = blake3::hash(source.as_bytes()).to_hex();
    data_dir.join(format!("checkpoints-{}.json", &hash.as_str()[..16]))
}
