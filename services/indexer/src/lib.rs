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
mod retention;
mod store_settings;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use auditrail_event::{EventType, ParseErrorKind};
use auditrail_proto::v1;
use auditrail_proto::v1::ingest_service_server::{IngestService, IngestServiceServer};
use auditrail_server::{ServiceConfig, Services, store_status};
use auditrail_store::{IndexedEvent, Query, Store, StoreError};
use serde::{Deserialize, Serialize};
use tonic::{Request, Response, Status};

pub use retention::run_retention;
pub use store_settings::StoreSettings;

/// Default gRPC port of the standalone indexer.
pub const DEFAULT_PORT: u16 = 50054;
/// Default Prometheus port of the standalone indexer.
pub const DEFAULT_METRICS_PORT: u16 = 9467;
/// Most events one batch may hold.
pub const MAX_BATCH_EVENTS: usize = 10_000;
/// Largest gRPC message the indexer accepts: room for one maximum-size event.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// The indexer's own settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// The embedded store lives under this directory (one index per cluster).
    pub data_dir: PathBuf,
    /// Largest single event accepted, in bytes.
    pub max_event_bytes: usize,
    /// Events older than this many days are not stored (answered as
    /// `EXPIRED` rejects) and, once stored, are deleted when they age past
    /// it; 0 keeps everything.
    pub retention_days: u32,
    /// The shortest max age `ApplyRetention` accepts without `force`, in
    /// days (and the shortest `retention_days` other than 0).
    #[serde(default = "default_min_retention_days")]
    pub min_retention_days: u32,
    /// Store in Elasticsearch instead of the embedded store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elasticsearch: Option<auditrail_store_elasticsearch::ElasticOptions>,
    /// The embedded store's bounds and checks.
    #[serde(default)]
    pub store: StoreSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: "./auditrail-data/store".into(),
            max_event_bytes: 16 * 1024 * 1024,
            retention_days: 91,
            min_retention_days: default_min_retention_days(),
            elasticsearch: None,
            store: StoreSettings::default(),
        }
    }
}

fn default_min_retention_days() -> u32 {
    1
}

impl Settings {
    /// Checks what the types cannot: a retention shorter than the floor.
    pub fn check(&self) -> Result<(), String> {
        if self.retention_days != 0 && self.retention_days < self.min_retention_days {
            return Err(format!(
                "retention_days {} is below min_retention_days {}: lower the floor to keep \
                 so short a trail, or set 0 to keep everything",
                self.retention_days, self.min_retention_days
            ));
        }
        Ok(())
    }
}

/// The standalone indexer's full configuration, with local defaults.
pub fn default_config() -> ServiceConfig<Settings> {
    ServiceConfig::local(DEFAULT_PORT, DEFAULT_METRICS_PORT, Settings::default())
}

/// Opens the embedded store of `settings` and starts verifying its files
/// in the background (serving does not wait; damaged segments are logged
/// at ERROR, counted in `store_damaged_segments{cluster}`, listed by
/// `GetIndexStats` and left out of every read).
pub fn open_store(settings: &Settings) -> Result<Arc<dyn Store>, StoreError> {
    let store = auditrail_store_tantivy::TantivyStore::open(
        &settings.data_dir,
        settings.store.tantivy_options(),
    )?;
    // Detached: the report goes to the logs, the metrics and the store.
    // The server sets up its logging after opening the store: the report
    // waits for it.
    drop(store.verify_in_background(std::time::Duration::from_secs(30))?);
    Ok(Arc::new(store))
}

/// Opens the configured store: Elasticsearch when `elasticsearch` is set
/// (connecting, checking credentials and installing its template), else
/// the embedded store.
pub async fn connect_store(settings: &Settings) -> Result<Arc<dyn Store>, StoreError> {
    auditrail_store_elasticsearch::connect_or_embedded(settings.elasticsearch.as_ref(), || {
        open_store(settings)
    })
    .await
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
) -> (Vec<IndexedEvent>, Vec<v1::Reject>) {
    let cutoff = retention_cutoff(now, retention_days);
    let mut indexed = Vec::with_capacity(events.len());
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
            Ok(e) => match cutoff {
                Some(cutoff) if e.time < cutoff => rejects.push(reject(
                    v1::RejectReason::Expired,
                    format!(
                        "event time {} is older than the retention of {retention_days} days \
                         (cut-off {cutoff}): not stored",
                        e.time
                    ),
                )),
                _ => indexed.push(e),
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
    (indexed, rejects)
}

#[tonic::async_trait]
impl IngestService for Indexer {
    async fn ingest_batch(
        &self,
        request: Request<v1::IngestBatchRequest>,
    ) -> Result<Response<v1::IngestBatchResponse>, Status> {
        let request = request.into_inner();
        if request.batch_id.is_empty() {
            return Err(Status::invalid_argument("batch_id is required"));
        }
        if request.cluster.is_empty() {
            return Err(Status::invalid_argument("cluster is required"));
        }
        if request.events.len() > MAX_BATCH_EVENTS {
            return Err(Status::invalid_argument(format!(
                "a batch holds at most {MAX_BATCH_EVENTS} events, this one {}",
                request.events.len()
            )));
        }
        let cluster = request.cluster;
        let max = self.max_event_bytes;
        let retention_days = self.retention_days;
        let (indexed, rejects) = {
            let cluster = cluster.clone();
            let events = request.events;
            let now = jiff::Timestamp::now();
            tokio::task::spawn_blocking(move || {
                index_batch(&cluster, events, max, now, retention_days)
            })
            .await
            .map_err(|e| Status::internal(format!("indexing task failed: {e}")))?
        };
        let outcome = if indexed.is_empty() {
            auditrail_store::WriteOutcome::default()
        } else {
            self.store
                .write(indexed)
                .await
                .map_err(|e| store_status(&e))?
        };
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
        Ok(Response::new(v1::IngestBatchResponse {
            accepted: u32::try_from(outcome.inserted).unwrap_or(u32::MAX),
            duplicates: u32::try_from(outcome.duplicates).unwrap_or(u32::MAX),
            rejects,
            committed: true,
            batch_id: request.batch_id,
            retention_days,
        }))
    }

    async fn get_index_stats(
        &self,
        request: Request<v1::GetIndexStatsRequest>,
    ) -> Result<Response<v1::GetIndexStatsResponse>, Status> {
        let request = request.into_inner();
        let stats = self.store.stats().await.map_err(|e| store_status(&e))?;
        let stats = stats
            .into_iter()
            .filter(|s| request.clusters.is_empty() || request.clusters.contains(&s.cluster))
            .map(convert::stats_to_proto)
            .filter(|s| request.types.is_empty() || request.types.contains(&s.r#type))
            .collect();
        let damaged_segments = self
            .store
            .damage()
            .await
            .map_err(|e| store_status(&e))?
            .into_iter()
            .filter(|d| request.clusters.is_empty() || request.clusters.contains(&d.cluster))
            .map(convert::damage_to_proto)
            .collect();
        Ok(Response::new(v1::GetIndexStatsResponse {
            stats,
            damaged_segments,
        }))
    }

    async fn apply_retention(
        &self,
        request: Request<v1::ApplyRetentionRequest>,
    ) -> Result<Response<v1::ApplyRetentionResponse>, Status> {
        if !request.get_ref().clusters.is_empty() || !request.get_ref().types.is_empty() {
            return Err(Status::invalid_argument(
                "the embedded store applies retention to all clusters and types; \
                 leave clusters and types empty",
            ));
        }
        let peer = request
            .remote_addr()
            .map_or_else(|| "unknown".to_owned(), |a| a.to_string());
        let request = request.into_inner();
        let max_age = convert::retention_max_age(request.cutoff)?;
        let floor = Duration::from_secs(u64::from(self.min_retention_days) * 86_400);
        if max_age < floor && !request.force {
            return Err(Status::failed_precondition(format!(
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
        }
        .map_err(|e| store_status(&e))?;
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
        Ok(Response::new(v1::ApplyRetentionResponse {
            deleted_count: deleted,
            cutoff: Some(convert::timestamp(cutoff)),
            dry_run: request.dry_run,
        }))
    }
}

/// Adds the indexer to `services`: its `IngestService` on `store` and the
/// retention task.
pub fn add_to(services: Services, store: Arc<dyn Store>, settings: &Settings) -> Services {
    let days = settings.retention_days;
    let retention_store = Arc::clone(&store);
    services.with(Indexer::new(store, settings).server()).task(
        "retention",
        move |mut ctx| async move {
            run_retention(retention_store, days, RETENTION_INTERVAL, async move {
                ctx.stop.stopped().await;
            })
            .await;
        },
    )
}

/// How often the retention task runs.
pub const RETENTION_INTERVAL: Duration = Duration::from_hours(1);

#[cfg(test)]
mod tests;
