//! The indexer: receives batches of raw audit events over `IngestService`,
//! derives their indexed fields, de-duplicates them by content-hash id and
//! writes them to the store, answering only once they are durable.
//!
//! The ingestor advances its checkpoints only on that answer, so together
//! with idempotent writes every event is stored exactly once. Events that are
//! not audit events are answered as per-event rejects (the RPC succeeds and
//! the ingestor dead-letters them); a store that cannot commit answers
//! `UNAVAILABLE` and nothing of the batch is acknowledged.
//!
//! Retention is decided at ingest: an event already older than
//! `retention_days` is not stored but answered as an `EXPIRED` reject (the
//! ingestor counts those instead of dead-lettering them). A retention task
//! deletes what ages past `retention_days` later.

mod convert;
mod error;
mod retention;

use std::sync::Arc;
use std::time::Duration;

use auditrail_event::{EventType, ParseErrorKind};
use auditrail_proto::v1;
use auditrail_proto::v1::ingest_service_server::{IngestService, IngestServiceServer};
use auditrail_server::Services;
use auditrail_store::{IndexedEvent, Position, Provenance, Query, Store};
use error::IndexerError;
use serde::{Deserialize, Serialize};
use tonic::{Request, Response, Status};

pub use retention::run_retention;

/// Most events one batch may hold.
pub const MAX_BATCH_EVENTS: usize = 10_000;
/// Largest gRPC message the indexer accepts: room for one maximum-size event.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// The indexer's own settings: the `[indexer]` table. Where it stores is
/// the process's `[store]` table, shared with the query service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Largest single event accepted, in bytes.
    pub max_event_bytes: usize,
    /// Events older than this many days are not stored (answered as
    /// `EXPIRED` rejects) and, once stored, are deleted when they age past
    /// it; 0 keeps everything.
    pub retention_days: u32,
    /// The shortest max age `ApplyRetention` accepts without `force`, in
    /// days (and the shortest `retention_days` other than 0).
    pub min_retention_days: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_event_bytes: 16 * 1024 * 1024,
            retention_days: 91,
            min_retention_days: 1,
        }
    }
}

/// Settings that cannot work together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// A retention shorter than the floor.
    #[error(
        "retention_days {retention_days} is below min_retention_days {min_retention_days}: \
         lower the floor to keep so short a trail, or set 0 to keep everything"
    )]
    RetentionBelowFloor {
        /// The retention asked for.
        retention_days: u32,
        /// The floor.
        min_retention_days: u32,
    },
}

impl Settings {
    /// Checks what the types cannot: a retention shorter than the floor.
    pub fn check(&self) -> Result<(), SettingsError> {
        if self.retention_days != 0 && self.retention_days < self.min_retention_days {
            return Err(SettingsError::RetentionBelowFloor {
                retention_days: self.retention_days,
                min_retention_days: self.min_retention_days,
            });
        }
        Ok(())
    }
}

impl auditrail_server::Service for Indexer {
    const NAME: &'static str = "indexer";
    const DEFAULT_PORT: u16 = auditrail_server::ports::INDEXER.grpc;
    const DEFAULT_METRICS_PORT: u16 = auditrail_server::ports::INDEXER.metrics;
    type Settings = Settings;
    /// The store it writes, shared with the query service.
    type Shared = Arc<dyn Store>;
    type Error = SettingsError;

    fn check(settings: &Settings) -> Result<(), SettingsError> {
        settings.check()
    }

    /// Its `IngestService` and the retention task.
    fn add_to(
        services: Services,
        settings: &Settings,
        store: Arc<dyn Store>,
    ) -> Result<Services, SettingsError> {
        settings.check()?;
        let days = settings.retention_days;
        let retention_store = Arc::clone(&store);
        let indexer = Indexer::new(store, settings);
        Ok(services
            .with(indexer.clone().server())
            // The access records of this process's calls go straight to
            // its store, not over the network.
            .access_sink(Arc::new(indexer))
            .task("retention", move |mut ctx| async move {
                run_retention(retention_store, days, RETENTION_INTERVAL, async move {
                    ctx.stop.stopped().await;
                })
                .await;
            }))
    }
}

/// The `IngestService` implementation.
#[derive(Clone)]
pub struct Indexer {
    store: Arc<dyn Store>,
    max_event_bytes: usize,
    retention_days: u32,
    min_retention_days: u32,
}

impl std::fmt::Debug for Indexer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Indexer")
            .field("max_event_bytes", &self.max_event_bytes)
            .field("retention_days", &self.retention_days)
            .finish_non_exhaustive()
    }
}

impl Indexer {
    /// An indexer writing to `store`.
    pub fn new(store: Arc<dyn Store>, settings: &Settings) -> Self {
        Self {
            store,
            max_event_bytes: settings.max_event_bytes,
            retention_days: settings.retention_days,
            min_retention_days: settings.min_retention_days,
        }
    }

    /// The gRPC service, with the message size limit batches need.
    pub fn server(self) -> IngestServiceServer<Self> {
        IngestServiceServer::new(self).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }
}

/// The retention cut-off at `now`: events older than it are not stored.
/// `None` when retention is 0 (keep everything) or reaches before the
/// representable range (nothing is that old).
pub fn retention_cutoff(now: jiff::Timestamp, retention_days: u32) -> Option<jiff::Timestamp> {
    if retention_days == 0 {
        return None;
    }
    now.checked_sub(jiff::SignedDuration::from_hours(
        i64::from(retention_days) * 24,
    ))
    .ok()
}

/// Derives the indexed events of a batch; events that cannot be indexed
/// become rejects with their index in the batch, and so do events older
/// than the retention `cutoff` (`EXPIRED`), which would only be deleted by
/// the next retention run.
fn index_batch(
    cluster: &str,
    events: Vec<v1::RawEvent>,
    max_event_bytes: usize,
    now: jiff::Timestamp,
    retention_days: u32,
    sender: &Sender,
) -> IndexedBatch {
    let cutoff = retention_cutoff(now, retention_days);
    let mut indexed = Vec::with_capacity(events.len());
    let mut positions = Vec::with_capacity(events.len());
    let mut rejects = Vec::new();
    for (index, event) in events.into_iter().enumerate() {
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        let reject = |code: v1::RejectReason, reason: String| v1::Reject {
            index,
            reason,
            code: code as i32,
        };
        if event.raw.len() > max_event_bytes {
            rejects.push(reject(
                v1::RejectReason::TooLarge,
                format!(
                    "event of {} bytes exceeds the limit of {max_event_bytes} bytes",
                    event.raw.len()
                ),
            ));
            continue;
        }
        let fallback = match v1::EventType::try_from(event.type_hint) {
            Ok(v1::EventType::Ee) => EventType::Ee,
            _ => EventType::Kube,
        };
        match IndexedEvent::from_raw(cluster, &event.raw, fallback, now) {
            Ok(mut e) => match cutoff {
                Some(cutoff) if e.time < cutoff => rejects.push(reject(
                    v1::RejectReason::Expired,
                    format!(
                        "event time {} is older than the retention of {retention_days} days \
                         (cut-off {cutoff}): not stored",
                        e.time
                    ),
                )),
                _ => {
                    e.provenance = Some(sender.provenance(event.origin.as_ref(), now));
                    indexed.push(e);
                    positions.push(index);
                }
            },
            Err(err) => {
                let code = match err.0.kind {
                    ParseErrorKind::Empty => v1::RejectReason::Empty,
                    ParseErrorKind::NotUtf8 | ParseErrorKind::InvalidJson => {
                        v1::RejectReason::InvalidJson
                    }
                    ParseErrorKind::NotAnEvent => v1::RejectReason::NotAuditEvent,
                    ParseErrorKind::InvalidField => v1::RejectReason::InvalidField,
                };
                rejects.push(reject(code, err.0.to_string()));
            }
        }
    }
    IndexedBatch {
        indexed,
        positions,
        rejects,
    }
}

/// Who sent a batch, as the auth layer authenticated them and the socket
/// saw them: the part of every event's provenance the sender cannot choose.
struct Sender {
    name: String,
    groups: Vec<String>,
    from: String,
}

impl Sender {
    /// The sender of `request`; `anonymous` when no access control
    /// authenticated it.
    fn of<T>(request: &Request<T>) -> Self {
        let caller = auditrail_server::Caller::of(request);
        Self {
            name: if caller.identity.name.is_empty() {
                "anonymous".to_owned()
            } else {
                caller.identity.name
            },
            groups: caller.identity.groups,
            from: request
                .remote_addr()
                .map(|a| a.to_string())
                .unwrap_or_default(),
        }
    }

    /// The provenance of one event the sender said was read at `origin`.
    fn provenance(&self, origin: Option<&v1::EventOrigin>, now: jiff::Timestamp) -> Provenance {
        let position = origin
            .and_then(|o| o.position.as_ref())
            .map(|position| match position {
                v1::event_origin::Position::File(f) => Position::File {
                    path: f.path.clone(),
                    inode: f.inode,
                    offset: f.offset,
                },
                v1::event_origin::Position::Cloudwatch(c) => Position::Cloudwatch {
                    log_group: c.log_group.clone(),
                    log_stream: c.log_stream.clone(),
                    event_id: c.event_id.clone(),
                },
            });
        Provenance {
            source: origin.map(|o| o.source.clone()).unwrap_or_default(),
            position,
            ingested_by: self.name.clone(),
            ingested_by_groups: self.groups.clone(),
            ingested_from: self.from.clone(),
            ingested_at: now,
        }
    }
}

/// A batch ready for the store: the events that could be indexed, the
/// position of each in the batch (to name the ones the store refuses), and
/// the rejects so far.
struct IndexedBatch {
    indexed: Vec<IndexedEvent>,
    positions: Vec<u32>,
    rejects: Vec<v1::Reject>,
}

#[tonic::async_trait]
impl IngestService for Indexer {
    async fn ingest_batch(
        &self,
        request: Request<v1::IngestBatchRequest>,
    ) -> Result<Response<v1::IngestBatchResponse>, Status> {
        let caller = auditrail_server::Caller::of(&request);
        let sender = Sender::of(&request);
        let note = auditrail_server::AccessNote::of(&request);
        let request = request.into_inner();
        if let Some(note) = &note {
            note.describe(format!(
                "cluster={} batch_id={} source={} events={}",
                request.cluster,
                request.batch_id,
                request.source,
                request.events.len()
            ));
        }
        if !caller.scope.allows_cluster(&request.cluster) {
            return Err(IndexerError::Forbidden(format!(
                "{} may not ingest into cluster {:?}: its permission ingest does not reach it",
                caller.identity.name, request.cluster
            ))
            .into());
        }
        let answer = self.ingest(request, sender).await?;
        if let Some(note) = note {
            note.count(u64::from(answer.accepted));
        }
        Ok(Response::new(answer))
    }

    async fn record_access(
        &self,
        request: Request<v1::RecordAccessRequest>,
    ) -> Result<Response<v1::RecordAccessResponse>, Status> {
        let sender = Sender::of(&request);
        let request = request.into_inner();
        let (stored, duplicates) = self
            .record(&request.cluster, request.records, &sender)
            .await?;
        Ok(Response::new(v1::RecordAccessResponse {
            stored: u32::try_from(stored).unwrap_or(u32::MAX),
            duplicates: u32::try_from(duplicates).unwrap_or(u32::MAX),
        }))
    }

    async fn get_index_stats(
        &self,
        request: Request<v1::GetIndexStatsRequest>,
    ) -> Result<Response<v1::GetIndexStatsResponse>, Status> {
        let caller = auditrail_server::Caller::of(&request);
        let mut answer = self.stats(request.into_inner()).await?;
        // Statistics never show what the caller may not read: access
        // records need read_access, other events the scope of read.
        answer.stats.retain(|s| {
            if s.r#type == v1::EventType::Access as i32 {
                return caller.read_access;
            }
            caller.scope.allows_cluster(&s.cluster)
                && caller
                    .scope
                    .allows_type(convert::type_name(s.r#type).unwrap_or_default())
        });
        answer
            .damaged_segments
            .retain(|d| caller.scope.allows_cluster(&d.cluster));
        Ok(Response::new(answer))
    }

    async fn apply_retention(
        &self,
        request: Request<v1::ApplyRetentionRequest>,
    ) -> Result<Response<v1::ApplyRetentionResponse>, Status> {
        let caller = auditrail_server::Caller::of(&request);
        if !caller.scope.is_all() {
            return Err(IndexerError::Forbidden(format!(
                "{} may not apply retention: it deletes events of every cluster, and its \
                 permission delete reaches only some",
                caller.identity.name
            ))
            .into());
        }
        let peer = request
            .remote_addr()
            .map_or_else(|| "unknown".to_owned(), |a| a.to_string());
        let note = auditrail_server::AccessNote::of(&request);
        let request = request.into_inner();
        if let Some(note) = &note {
            note.describe(format!(
                "cutoff={:?} dry_run={} force={}",
                request.cutoff, request.dry_run, request.force
            ));
        }
        let answer = self.retention(request, &peer).await?;
        if let Some(note) = note {
            note.count(answer.deleted_count);
        }
        Ok(Response::new(answer))
    }
}

/// The access records of the calls this process serves, stored in its
/// own store.
#[tonic::async_trait]
impl auditrail_server::AccessSink for Indexer {
    async fn record(&self, cluster: &str, records: Vec<Vec<u8>>) -> Result<(), String> {
        let sender = Sender {
            name: "auditrail".to_owned(),
            groups: Vec::new(),
            from: String::new(),
        };
        self.record(cluster, records, &sender)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// The calls, answering [`IndexerError`]s.
impl Indexer {
    /// Stores access records (type `access`) under `cluster`: each must be
    /// an audit event of the `auditrail.io` group. Answers how many were
    /// new and how many stored before.
    async fn record(
        &self,
        cluster: &str,
        records: Vec<Vec<u8>>,
        sender: &Sender,
    ) -> Result<(u64, u64), IndexerError> {
        if !auditrail_event::valid_cluster_name(cluster) {
            return Err(IndexerError::invalid(format!(
                "cluster {cluster:?} is not a valid cluster name"
            )));
        }
        if records.len() > MAX_BATCH_EVENTS {
            return Err(IndexerError::invalid(format!(
                "a batch holds at most {MAX_BATCH_EVENTS} access records, this one {}",
                records.len()
            )));
        }
        let now = jiff::Timestamp::now();
        let mut indexed = Vec::with_capacity(records.len());
        for (index, raw) in records.iter().enumerate() {
            if raw.len() > self.max_event_bytes {
                return Err(IndexerError::invalid(format!(
                    "access record {index} is {} bytes, over the limit of {}",
                    raw.len(),
                    self.max_event_bytes
                )));
            }
            let mut event = IndexedEvent::from_raw(cluster, raw, EventType::Kube, now)
                .map_err(|e| IndexerError::invalid(format!("access record {index}: {}", e.0)))?;
            if event.api_group != auditrail_server::ACCESS_RECORD_GROUP {
                return Err(IndexerError::invalid(format!(
                    "access record {index} is not one: its objectRef.apiGroup is {:?}, not {:?}",
                    event.api_group,
                    auditrail_server::ACCESS_RECORD_GROUP
                )));
            }
            event.event_type = EventType::Access;
            event.provenance = Some(Provenance {
                source: "access-log".to_owned(),
                position: None,
                ingested_by: sender.name.clone(),
                ingested_by_groups: sender.groups.clone(),
                ingested_from: sender.from.clone(),
                ingested_at: now,
            });
            indexed.push(event);
        }
        let outcome = self.store.write(indexed).await?;
        if let Some(refused) = outcome.refused.first() {
            return Err(IndexerError::Store(auditrail_store::StoreError::Internal(
                format!(
                    "the store refused access record {}: {}",
                    refused.position, refused.reason
                ),
            )));
        }
        metrics::counter!("indexer_access_records_total").increment(outcome.inserted);
        Ok((outcome.inserted, outcome.duplicates))
    }

    async fn ingest(
        &self,
        request: v1::IngestBatchRequest,
        sender: Sender,
    ) -> Result<v1::IngestBatchResponse, IndexerError> {
        if request.batch_id.is_empty() {
            return Err(IndexerError::invalid("batch_id is required"));
        }
        if request.cluster.is_empty() {
            return Err(IndexerError::invalid("cluster is required"));
        }
        if !auditrail_event::valid_cluster_name(&request.cluster) {
            return Err(IndexerError::invalid(format!(
                "cluster {:?} is not a valid cluster name: 1 to 253 ASCII letters, digits, \
                 '.', '_' or '-' (not '.' or '..')",
                request.cluster
            )));
        }
        if request.events.len() > MAX_BATCH_EVENTS {
            return Err(IndexerError::invalid(format!(
                "a batch holds at most {MAX_BATCH_EVENTS} events, this one {}",
                request.events.len()
            )));
        }
        let cluster = request.cluster;
        let max = self.max_event_bytes;
        let retention_days = self.retention_days;
        let IndexedBatch {
            indexed,
            positions,
            mut rejects,
        } = {
            let cluster = cluster.clone();
            let events = request.events;
            let now = jiff::Timestamp::now();
            tokio::task::spawn_blocking(move || {
                index_batch(&cluster, events, max, now, retention_days, &sender)
            })
            .await
            .map_err(|e| IndexerError::Task(e.to_string()))?
        };
        let outcome = if indexed.is_empty() {
            auditrail_store::WriteOutcome::default()
        } else {
            self.store.write(indexed).await?
        };
        for refused in &outcome.refused {
            let Some(&index) = positions.get(refused.position) else {
                return Err(IndexerError::Store(auditrail_store::StoreError::Internal(
                    format!(
                        "the store refused event {} of a write of {}",
                        refused.position,
                        positions.len()
                    ),
                )));
            };
            rejects.push(v1::Reject {
                index,
                reason: refused.reason.clone(),
                code: v1::RejectReason::StoreRefused as i32,
            });
        }
        rejects.sort_by_key(|r| r.index);
        metrics::counter!("indexer_events_accepted_total").increment(outcome.inserted);
        metrics::counter!("indexer_events_duplicate_total").increment(outcome.duplicates);
        let expired = rejects
            .iter()
            .filter(|r| r.code == v1::RejectReason::Expired as i32)
            .count() as u64;
        metrics::counter!("indexer_events_rejected_total")
            .increment(rejects.len() as u64 - expired);
        metrics::counter!("indexer_events_expired_total").increment(expired);
        tracing::debug!(
            batch_id = %request.batch_id,
            cluster = %cluster,
            source = %request.source,
            inserted = outcome.inserted,
            duplicates = outcome.duplicates,
            rejected = rejects.len() as u64 - expired,
            expired,
            "batch committed"
        );
        Ok(v1::IngestBatchResponse {
            accepted: u32::try_from(outcome.inserted).unwrap_or(u32::MAX),
            duplicates: u32::try_from(outcome.duplicates).unwrap_or(u32::MAX),
            rejects,
            committed: true,
            batch_id: request.batch_id,
            retention_days,
        })
    }

    async fn stats(
        &self,
        request: v1::GetIndexStatsRequest,
    ) -> Result<v1::GetIndexStatsResponse, IndexerError> {
        let stats = self.store.stats().await?;
        let stats = stats
            .into_iter()
            .filter(|s| request.clusters.is_empty() || request.clusters.contains(&s.cluster))
            .map(convert::stats_to_proto)
            // Access records are described only when asked for by type.
            .filter(|s| {
                if request.types.is_empty() {
                    s.r#type != v1::EventType::Access as i32
                } else {
                    request.types.contains(&s.r#type)
                }
            })
            .collect();
        let damaged_segments = self
            .store
            .damage()
            .await?
            .into_iter()
            .filter(|d| request.clusters.is_empty() || request.clusters.contains(&d.cluster))
            .map(convert::damage_to_proto)
            .collect();
        Ok(v1::GetIndexStatsResponse {
            stats,
            damaged_segments,
        })
    }

    async fn retention(
        &self,
        request: v1::ApplyRetentionRequest,
        peer: &str,
    ) -> Result<v1::ApplyRetentionResponse, IndexerError> {
        if !request.clusters.is_empty() || !request.types.is_empty() {
            return Err(IndexerError::invalid(
                "the embedded store applies retention to all clusters and types; \
                 leave clusters and types empty",
            ));
        }
        let max_age = convert::retention_max_age(request.cutoff)?;
        let floor = Duration::from_secs(u64::from(self.min_retention_days) * 86_400);
        if max_age < floor && !request.force {
            return Err(IndexerError::NeedsForce(format!(
                "a max age of {}s is shorter than this indexer's min_retention_days ({}): it \
                 would delete events that recent. Set force to confirm",
                max_age.as_secs(),
                self.min_retention_days
            )));
        }
        let cutoff = convert::cutoff(jiff::Timestamp::now(), max_age)?;
        let deleted = if request.dry_run {
            self.store
                .count(&Query::time_range(None, Some(cutoff)))
                .await
        } else {
            self.store.delete_before(cutoff).await
        }?;
        if request.dry_run {
            tracing::warn!(%peer, %cutoff, would_delete = deleted, "ApplyRetention dry run");
        } else {
            metrics::counter!("indexer_retention_deleted_total", "trigger" => "request")
                .increment(deleted);
            tracing::warn!(
                %peer,
                %cutoff,
                deleted,
                forced = request.force,
                "ApplyRetention deleted the events older than the cut-off"
            );
        }
        Ok(v1::ApplyRetentionResponse {
            deleted_count: deleted,
            cutoff: Some(convert::timestamp(cutoff)),
            dry_run: request.dry_run,
        })
    }
}

/// How often the retention task runs.
pub const RETENTION_INTERVAL: Duration = Duration::from_hours(1);

#[cfg(test)]
mod tests;
