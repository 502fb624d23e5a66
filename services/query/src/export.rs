//! `Export`: every matching event as one document, streamed in chunks.
//!
//! Memory stays flat whatever the number of events: a task reads the store
//! one page at a time and sends chunks of at most 1 MiB into a channel of
//! two, so it runs at most a few chunks ahead of the client and stops as soon
//! as the client goes away (the channel's receiver is dropped). How many
//! exports run at once is bounded too (`limits`).
//!
//! **Windows.** Paging through millions of events with search-after alone
//! would make every page consider all the events beyond the cursor. The
//! export instead walks the time range in windows, in the requested order,
//! and pages within each window: a page then only considers the window's
//! events, and the embedded store skips whole segments outside it. The
//! window width adapts to the density of events (doubling while windows
//! hold few events, halving when they hold many), so sparse and dense trails
//! both take few windows; pages hold about 32 MiB of events (between 16 and
//! 50,000 of them). Windows are contiguous and disjoint, so the
//! concatenation of their pages is exactly the ordered result.

use crate::error::QueryError;
use std::ops::Bound;
use std::sync::Arc;

use auditrail_proto::v1;
use auditrail_store::{
    CountMode, Cursor, Provenance, Query, SearchRequest, SortOrder, Store, StoredEvent,
};
use jiff::{SignedDuration, Timestamp};
use tokio::sync::mpsc;
use tonic::Status;
use tonic::codegen::BoxStream;

use crate::filter::{resolve_range, time_window, to_query, with_timeline};
use crate::limits::ExportSlot;
use crate::search::first_time;
use crate::sort_order;
use auditrail_document::{DocumentWriter, Envelope, Format};

/// Largest `data` of one chunk.
pub(crate) const CHUNK_BYTES: usize = 1 << 20;
/// Bytes of original events a page aims to hold: pages adapt their event
/// count to the events' mean size, so memory stays bounded by about this
/// much whatever the events weigh, and small events come in large pages
/// (each page costs a search over its window, whatever its size).
const PAGE_BYTES: usize = 32 << 20;
/// Fewest and most events per page.
const PAGE_EVENTS: (usize, usize) = (16, 50_000);

fn format_from_proto(format: i32) -> Result<Format, QueryError> {
    match v1::ExportFormat::try_from(format) {
        Ok(v1::ExportFormat::Unspecified | v1::ExportFormat::Json) => Ok(Format::Json),
        Ok(v1::ExportFormat::Ndjson) => Ok(Format::Ndjson),
        Ok(v1::ExportFormat::Yaml) => Ok(Format::Yaml),
        Err(_) => Err(QueryError::invalid(format!(
            "unknown export format {format}"
        ))),
    }
}

/// Checks the request and starts the export task; the stream is its output.
pub(crate) fn start(
    store: Arc<dyn Store>,
    request: &v1::ExportRequest,
    now: Timestamp,
    slot: ExportSlot,
    caller: &auditrail_server::Caller,
    note: Option<auditrail_server::AccessNote>,
) -> Result<BoxStream<v1::ExportChunk>, QueryError> {
    let format = format_from_proto(request.format)?;
    let sort = sort_order(request.sort)?;
    let filter =
        with_timeline(request.filter.as_ref(), request.timeline).map_err(QueryError::from)?;
    let (from, to) = resolve_range(&filter.from, &filter.to, now).map_err(QueryError::from)?;
    let query = to_query(&filter, request.timeline, from, to).map_err(QueryError::from)?;
    let query = crate::scope::restrict(query, &filter, caller, "export")?;
    let limit = (request.limit > 0).then_some(request.limit);
    let with_provenance = request.with_provenance;
    let scope = Scope {
        clusters: filter.clusters.clone(),
        from,
        to,
    };
    let (tx, rx) = mpsc::channel(2);
    tokio::spawn(async move {
        // Held while the export runs: its end, failure or abandonment frees it.
        let _slot = slot;
        let mut export = Export {
            store,
            sink: tx,
            writer: DocumentWriter::new(format),
            with_provenance,
            buffer: Vec::with_capacity(CHUNK_BYTES * 2),
            bytes: 0,
            page_events: 1000,
        };
        let result = match refuse_damage(&*export.store, &scope).await {
            Ok(()) => export.run(query, sort, limit).await,
            Err(status) => Err(Stop::Failed(status)),
        };
        // The call's access record is sent when the stream ends, after this.
        if let Some(note) = note {
            note.count(export.writer.events());
        }
        match result {
            Ok(()) => {}
            Err(Stop::ClientGone) => {
                tracing::debug!(events = export.writer.events(), "export client went away");
            }
            Err(Stop::Failed(err)) => {
                tracing::warn!(error = %err, "export failed");
                let _ = export.sink.send(Err(err.into())).await;
            }
        }
    });
    Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
}

/// The clusters (empty: all) and time range an export covers.
struct Scope {
    clusters: Vec<String>,
    from: Option<Timestamp>,
    to: Timestamp,
}

/// An export must not silently miss events: when the store knows damaged
/// segments (left out of every search) that may hold events of the
/// export's clusters and time range, the export fails with DATA_LOSS naming
/// them, before anything is sent. The selector is not considered (a
/// cluster it excludes still counts), so the check errs on the side of
/// refusing.
async fn refuse_damage(store: &dyn Store, scope: &Scope) -> Result<(), QueryError> {
    let damage = store.damage().await.map_err(QueryError::from)?;
    let hit: Vec<String> = damage
        .iter()
        .filter(|d| {
            (scope.clusters.is_empty() || scope.clusters.contains(&d.cluster))
                && d.may_hold(&d.cluster, scope.from, Some(scope.to))
        })
        .map(auditrail_store::Damage::describe)
        .collect();
    if hit.is_empty() {
        return Ok(());
    }
    Err(QueryError::damaged(format!(
        "the export would miss events: {} damaged segment(s) of the store may hold events \
         of its clusters and time range, and their events cannot be read ({}); \
         export a time range outside them, or restore the store's files \
         (`auditrail store verify` lists them; nothing was deleted)",
        hit.len(),
        hit.join("; ")
    )))
}

/// Why an export stopped early.
enum Stop {
    /// The client closed the stream: nothing more to do.
    ClientGone,
    /// The export failed; the client gets this error's status.
    Failed(QueryError),
}

impl From<QueryError> for Stop {
    fn from(err: QueryError) -> Self {
        Self::Failed(err)
    }
}

struct Export {
    store: Arc<dyn Store>,
    sink: mpsc::Sender<Result<v1::ExportChunk, Status>>,
    writer: DocumentWriter,
    /// Each event in an [`Envelope`] with its provenance.
    with_provenance: bool,
    buffer: Vec<u8>,
    bytes: u64,
    /// Events per page, adapted to the events' size; windows aim at it.
    page_events: usize,
}

impl Export {
    async fn run(&mut self, query: Query, sort: SortOrder, limit: Option<u64>) -> Result<(), Stop> {
        let edge = |sort| first_time(&*self.store, query.clone(), sort);
        let (Some(oldest), Some(newest)) = (
            edge(SortOrder::OldestFirst).await?,
            edge(SortOrder::NewestFirst).await?,
        ) else {
            return self.done().await;
        };
        // Start with a width that would hold the target if events were
        // spread evenly, assuming a dense trail; windows adapt from there.
        let mut width = SignedDuration::from_secs(60);
        // The next window starts at `edge` (inclusive for the first, then
        // exactly where the previous one ended).
        let mut edge = match sort {
            SortOrder::OldestFirst => oldest,
            SortOrder::NewestFirst => newest,
        };
        let mut first = true;
        loop {
            let (lower, upper, last) = match sort {
                SortOrder::OldestFirst => {
                    let end = edge.checked_add(width).unwrap_or(Timestamp::MAX);
                    let last = end > newest;
                    (Bound::Included(edge), Bound::Excluded(end), last)
                }
                SortOrder::NewestFirst => {
                    let start = edge.checked_sub(width).unwrap_or(Timestamp::MIN);
                    let last = start <= oldest;
                    let upper = if first {
                        Bound::Included(edge)
                    } else {
                        Bound::Excluded(edge)
                    };
                    (Bound::Included(start), upper, last)
                }
            };
            let window = Query::And(vec![query.clone(), time_window(lower, upper)]);
            let n = self.window(window, sort, limit).await?;
            if last || limit.is_some_and(|l| self.writer.events() >= l) {
                break;
            }
            edge = match sort {
                SortOrder::OldestFirst => edge.checked_add(width).unwrap_or(Timestamp::MAX),
                SortOrder::NewestFirst => edge.checked_sub(width).unwrap_or(Timestamp::MIN),
            };
            first = false;
            let target = self.page_events as u64;
            if n < target / 2 {
                width = width.checked_mul(2).unwrap_or(width);
            } else if n > target * 2 && width > SignedDuration::from_micros(2) {
                width /= 2;
            }
        }
        self.done().await
    }

    /// Writes every event of one window; returns how many.
    async fn window(
        &mut self,
        query: Query,
        sort: SortOrder,
        limit: Option<u64>,
    ) -> Result<u64, Stop> {
        let mut after: Option<Cursor> = None;
        let mut n = 0;
        loop {
            let want = match limit {
                Some(l) => {
                    let left = l.saturating_sub(self.writer.events());
                    if left == 0 {
                        return Ok(n);
                    }
                    usize::try_from(left)
                        .unwrap_or(self.page_events)
                        .min(self.page_events)
                }
                None => self.page_events,
            };
            let page = self
                .store
                .search(SearchRequest {
                    query: query.clone(),
                    sort,
                    limit: want,
                    after,
                    include_raw: true,
                    count: CountMode::None,
                })
                .await
                .map_err(QueryError::from)?;
            n += page.events.len() as u64;
            let bytes: usize = page.events.iter().map(|e| e.raw.len()).sum();
            if let Some(mean) = bytes.checked_div(page.events.len()) {
                self.page_events = (PAGE_BYTES / mean.max(1)).clamp(PAGE_EVENTS.0, PAGE_EVENTS.1);
            }
            self.events(page.events).await?;
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(n),
            }
        }
    }

    async fn events(&mut self, events: Vec<StoredEvent>) -> Result<(), Stop> {
        for event in events {
            let enveloped;
            let raw = if self.with_provenance {
                let provenance = event.provenance.as_ref().map(Provenance::to_json);
                enveloped = Envelope {
                    id: &event.id.to_hex(),
                    cluster: &event.cluster,
                    event_type: event.event_type.as_str(),
                    provenance: provenance.as_deref(),
                }
                .wrap(&event.raw);
                &enveloped
            } else {
                &event.raw
            };
            self.writer
                .event(raw, &mut self.buffer)
                .map_err(|e| QueryError::internal(format!("stored event {}: {e}", event.id)))?;
            self.send_full_chunks().await?;
        }
        Ok(())
    }

    /// Sends the buffer's full chunks, keeping the rest (under a chunk).
    async fn send_full_chunks(&mut self) -> Result<(), Stop> {
        while self.buffer.len() >= CHUNK_BYTES {
            let rest = self.buffer.split_off(CHUNK_BYTES);
            let data = std::mem::replace(&mut self.buffer, rest);
            self.send(data, None).await?;
        }
        Ok(())
    }

    async fn send(&mut self, data: Vec<u8>, done: Option<v1::ExportSummary>) -> Result<(), Stop> {
        self.bytes += data.len() as u64;
        metrics::counter!("query_export_bytes_total").increment(data.len() as u64);
        let chunk = v1::ExportChunk {
            data,
            events_so_far: self.writer.events(),
            done,
        };
        self.sink
            .send(Ok(chunk))
            .await
            .map_err(|_| Stop::ClientGone)
    }

    async fn done(&mut self) -> Result<(), Stop> {
        self.writer.finish(&mut self.buffer);
        // The document's tail may push the buffer to a full chunk: the last
        // chunk too stays within the limit (and may then be empty).
        self.send_full_chunks().await?;
        metrics::counter!("query_export_events_total").increment(self.writer.events());
        let data = std::mem::take(&mut self.buffer);
        let total_bytes = self.bytes + data.len() as u64;
        let summary = v1::ExportSummary {
            total_events: self.writer.events(),
            total_bytes,
        };
        self.send(data, Some(summary)).await
    }
}
