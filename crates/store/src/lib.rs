//! The storage contract of auditrail.
//!
//! Every backend (embedded tantivy, Elasticsearch) implements [`Store`] with
//! the same semantics, checked by one conformance suite:
//!
//! - **Writes are idempotent by event id.** Delivery is at-least-once, so a
//!   re-sent event must not be stored twice; [`Store::write`] reports which
//!   events were new and which were already stored.
//! - **A write is durable when it returns.** The indexer acknowledges a batch
//!   to the ingestor (which then advances its checkpoints) only after
//!   `write` returned `Ok`.
//! - **Queries are values, not strings.** Filters and the selector language
//!   compile to a [`Query`] tree that each backend translates to its own query
//!   form; nothing is ever glued together as text.
//! - **The original bytes are the truth.** A stored event keeps its original
//!   JSON; the indexed fields are derived from it ([`IndexedEvent::from_raw`]).
//!
//! This crate has no I/O.

mod histogram;
mod indexed;
mod provenance;
mod query;
#[cfg(feature = "grpc")]
mod status;

pub use histogram::{Histogram, HistogramRequest, TermsField, TopTerms, top_terms};
pub use indexed::{IndexedEvent, RawEventError, StoredEvent};
pub use provenance::{Position, Provenance, ProvenanceError};
pub use query::{
    CountMode, Cursor, Field, Query, SearchPage, SearchRequest, SortOrder, Total, Value,
};

pub use auditrail_event::valid_cluster_name;
use auditrail_event::{EventId, EventType};
use jiff::Timestamp;

/// Why a store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The request cannot be served as asked (a bad query, an unknown field
    /// for an operation, a cursor from another query).
    #[error("invalid store request: {0}")]
    InvalidRequest(String),
    /// The backend cannot be reached or is overloaded; retrying may succeed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The backend failed (I/O, a bug); retrying will not help.
    #[error("store failure: {0}")]
    Internal(String),
    /// The request would take the store past one of its bounds (for the
    /// embedded store: its most cluster indices); retrying will not help
    /// until an operator raises the bound.
    #[error("store limit reached: {0}")]
    LimitReached(String),
    /// Stored data is damaged (a file's checksum does not match, or its
    /// documents cannot be read): the message names what is damaged and
    /// which events it held. Retrying will not help; nothing was deleted.
    #[error("stored data is damaged: {0}")]
    DataLoss(String),
}

/// What a [`Store::write`] did with the events it was given:
/// `inserted + duplicates + refused.len()` is the number of events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Events stored by this call.
    pub inserted: u64,
    /// Events whose id was already stored (re-sends); nothing was changed.
    pub duplicates: u64,
    /// Events the backend refused for good, one by one (for Elasticsearch a
    /// document its mapping cannot take, a time outside what it can
    /// store); sending them again would be refused again, so the caller
    /// reports them (the ingestor dead-letters them) instead of retrying.
    /// Failures that retrying can fix fail the whole write instead.
    pub refused: Vec<RefusedEvent>,
}

/// One event of a [`Store::write`] that the backend refused for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedEvent {
    /// Its position in the events given to `write`.
    pub position: usize,
    /// Why, in the backend's words.
    pub reason: String,
}

/// Size and time span of the events stored for one cluster and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexStats {
    /// The cluster.
    pub cluster: String,
    /// kube or ee.
    pub event_type: EventType,
    /// Number of events.
    pub events: u64,
    /// Time of the oldest event, if any.
    pub oldest: Option<Timestamp>,
    /// Time of the newest event, if any.
    pub newest: Option<Timestamp>,
    /// Bytes on disk (shared between types when a backend keeps both in one
    /// index; then each type reports the whole index).
    pub size_bytes: u64,
}

/// One damaged part of a store (for the embedded store a segment of a
/// cluster's index): what it holds and which of its files are damaged.
/// Backends that cannot tell report none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The cluster whose events it holds.
    pub cluster: String,
    /// The backend's name for the damaged part (a tantivy segment id).
    pub segment: String,
    /// The damaged files and what is wrong with each.
    pub files: Vec<DamagedFile>,
    /// Documents the part holds (including deleted ones not yet merged
    /// away), as its metadata says.
    pub documents: u64,
    /// Time of its oldest event, if it could be read from an undamaged file.
    pub oldest: Option<Timestamp>,
    /// Time of its newest event, if it could be read from an undamaged file.
    pub newest: Option<Timestamp>,
}

impl Damage {
    /// Whether events of `cluster` in `[from, to)` may lie in the damaged
    /// part (always, when its time range is unknown).
    pub fn may_hold(&self, cluster: &str, from: Option<Timestamp>, to: Option<Timestamp>) -> bool {
        if self.cluster != cluster {
            return false;
        }
        let (Some(oldest), Some(newest)) = (self.oldest, self.newest) else {
            return true;
        };
        from.is_none_or(|f| newest >= f) && to.is_none_or(|t| oldest < t)
    }

    /// `cluster prod, segment 3f2a…, 1200 events from … to …` for messages.
    pub fn describe(&self) -> String {
        let range = match (self.oldest, self.newest) {
            (Some(oldest), Some(newest)) => format!("from {oldest} to {newest}"),
            _ => "time range unknown".to_owned(),
        };
        let files: Vec<String> = self
            .files
            .iter()
            .map(|f| format!("{} ({})", f.name, f.problem))
            .collect();
        format!(
            "cluster {}, segment {}, {} events {range}, damaged files: {}",
            self.cluster,
            self.segment,
            self.documents,
            files.join(", ")
        )
    }
}

/// A damaged file of a [`Damage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedFile {
    /// The file's name in the backend's directory.
    pub name: String,
    /// What is wrong: `checksum mismatch`, `missing`, or the read error.
    pub problem: String,
}

/// A backend that keeps the audit trail.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores `events` (any clusters, any order). Events whose id is already
    /// stored, or that appear twice in `events`, are stored once. Durable when
    /// it returns `Ok`; on `Err` nothing is acknowledged and the caller
    /// retries the whole batch (idempotency makes that safe). An event the
    /// backend refuses for good does not fail the others: it is listed in
    /// [`WriteOutcome::refused`].
    async fn write(&self, events: Vec<IndexedEvent>) -> Result<WriteOutcome, StoreError>;

    /// One page of events matching the request's query, in its order, with
    /// the total number of matches.
    async fn search(&self, request: SearchRequest) -> Result<SearchPage, StoreError>;

    /// The number of events matching `query`.
    async fn count(&self, query: &Query) -> Result<u64, StoreError>;

    /// Event counts per time bucket and the most frequent values of the
    /// requested fields, over the events matching the request's query.
    async fn histogram(&self, request: HistogramRequest) -> Result<Histogram, StoreError>;

    /// The event with this id, if stored.
    async fn get(&self, id: &EventId) -> Result<Option<StoredEvent>, StoreError>;

    /// Deletes every event whose time is before `cutoff` (retention).
    /// Returns the number deleted.
    async fn delete_before(&self, cutoff: Timestamp) -> Result<u64, StoreError>;

    /// The periodic retention: what the indexer runs every hour with its
    /// own retention's cut-off. A backend whose own lifecycle already
    /// deletes on that schedule (Elasticsearch with ILM, installed from
    /// the same retention) does only what its lifecycle cannot; the others
    /// delete as [`Store::delete_before`] does.
    async fn expire_before(&self, cutoff: Timestamp) -> Result<u64, StoreError> {
        self.delete_before(cutoff).await
    }

    /// Statistics per cluster and type.
    async fn stats(&self) -> Result<Vec<IndexStats>, StoreError>;

    /// The damaged parts found so far (by the embedded store's checksum
    /// verification); their events are left out of every answer. Backends
    /// that do not verify their files report none.
    async fn damage(&self) -> Result<Vec<Damage>, StoreError> {
        Ok(Vec::new())
    }
}
