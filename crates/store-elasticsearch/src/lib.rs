//! The Elasticsearch backend of the [`Store`] trait: what Calico users
//! already run, and what a fleet of clusters needs once one machine is not
//! enough.
//!
//! Same semantics as the embedded store, checked by the same conformance
//! suite (`auditrail-store-conformance`):
//!
//! - **Writes** (`bulk.rs`): `_bulk` requests of `create` actions with the
//!   event id as `_id` into the index the event's own time names
//!   ([`mapping`]), so a re-sent event meets its first copy and answers
//!   409, counted as a duplicate. Bulks are cut at a byte budget; each
//!   waits for the refresh (`refresh=wait_for`), so when `write` returns
//!   the events are durable (translog) and searchable, as the indexer's
//!   acknowledgement promises. 429 and 5xx, for a bulk or single items,
//!   are retried with exponential backoff and jitter; only then does
//!   `write` fail (and the ingestor re-sends the batch). An event
//!   Elasticsearch refuses for good is reported in
//!   [`WriteOutcome::refused`] and the others are stored.
//! - **Queries**: the [`auditrail_store::Query`] value is translated node by
//!   node ([`dsl`]); pages are `search_after` on (time, id), which is unique,
//!   so paging is exact while events arrive (a point in time is not needed
//!   for that and would have to live across the stateless page tokens).
//!   Partial answers (failed shards, timeouts) are errors, never results.
//! - **Retention** is the indexer's `retention_days`, whichever store
//!   keeps the trail: with ILM on, the writer installs a policy that
//!   deletes a daily index a whole day after its last event is that old,
//!   and the indexer's hourly retention only deletes undated events; with
//!   ILM off, the hourly retention deletes whole days itself.
//! - **Roles**: only the indexer ([`Role::Writer`]) installs templates and
//!   the ILM policy; the query service ([`Role::Reader`]) only checks that
//!   it can read, so a read-only key is enough for it.

mod bulk;
mod client;
pub mod dsl;
pub mod mapping;
mod options;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use auditrail_event::{EventId, EventType};
use auditrail_store::{
    CountMode, Cursor, Histogram, HistogramRequest, IndexStats, IndexedEvent, Provenance, Query,
    RefusedEvent, SearchPage, SearchRequest, Store, StoreError, StoredEvent, Total, WriteOutcome,
    top_terms,
};
use backon::{BackoffBuilder as _, ExponentialBuilder};
use bytes::Bytes;
use elasticsearch::http::StatusCode;
use elasticsearch::ilm::IlmPutLifecycleParts;
use elasticsearch::indices::{IndicesDeleteParts, IndicesPutIndexTemplateParts};
use elasticsearch::params::{Conflicts, Refresh};
use elasticsearch::{BulkParts, CountParts, DeleteByQueryParts, SearchParts};
use jiff::Timestamp;
use serde_json::{Value as Json, json};

pub use mapping::Naming;
pub use options::{Auth, ElasticOptions};

use client::{Nodes, answer, complete};

/// What a service does with the store, which decides what it needs of
/// the cluster at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The indexer: writes events and keeps them `retention_days` (0:
    /// forever); installs the index templates and, with ILM on, the ILM
    /// policy of that retention. Needs `manage_index_templates` and
    /// `manage_ilm` besides writing.
    Writer {
        /// The indexer's retention.
        retention_days: u32,
    },
    /// The query service: reads only; a key that may read the audit
    /// indices is enough.
    Reader,
}

/// Bulk requests are retried this many times on 429 and 5xx before `write`
/// fails.
const WRITE_ATTEMPTS: usize = 6;

/// The Elasticsearch store.
#[derive(Clone)]
pub struct ElasticStore {
    nodes: Arc<Nodes>,
    options: ElasticOptions,
    role: Role,
    patterns: Vec<String>,
}

impl std::fmt::Debug for ElasticStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElasticStore")
            .field("urls", &self.options.urls)
            .field("naming", &self.options.naming)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// Elasticsearch refuses a search whose `from + size` is above the index's
/// `index.max_result_window` (10,000 by default), `search_after` or not.
const MAX_RESULT_WINDOW: usize = 10_000;

/// The size of the next slice of a search that wants `wanted` events and
/// has `have`.
fn next_slice(wanted: usize, have: usize) -> usize {
    wanted.saturating_sub(have).clamp(1, MAX_RESULT_WINDOW)
}

/// One index of ours, as `_cat/indices` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct IndexInfo {
    name: String,
    docs: u64,
    size_bytes: u64,
}

impl ElasticStore {
    /// Connects, asks every node for its `info` (a wrong URL, a node down,
    /// refused credentials show now), and prepares the cluster for `role`:
    /// a writer installs the ILM policy and the index templates, a reader
    /// checks that it may read the audit indices. A clear error when the
    /// cluster cannot be reached or refuses us.
    pub async fn connect(options: ElasticOptions, role: Role) -> Result<Self, StoreError> {
        let nodes = Nodes::new(&options)?;
        nodes.probe().await?;
        let store = Self {
            patterns: options.naming.all_patterns(),
            nodes: Arc::new(nodes),
            options,
            role,
        };
        match role {
            Role::Writer { .. } => store.install().await?,
            Role::Reader => {
                store
                    .count_json(json!({ "query": { "match_all": {} } }))
                    .await?;
            }
        }
        Ok(store)
    }

    /// The retention ILM keeps, when it does.
    fn ilm_retention_days(&self) -> Option<u32> {
        match self.role {
            Role::Writer { retention_days } if self.options.ilm && retention_days > 0 => {
                Some(retention_days)
            }
            _ => None,
        }
    }

    /// Puts the ILM policy (when ILM keeps the retention) and the index
    /// templates.
    async fn install(&self) -> Result<(), StoreError> {
        if let Some(days) = self.ilm_retention_days() {
            let policy = mapping::ilm_policy(days);
            let response = self
                .nodes
                .send("ILM policy", |client| {
                    let policy = policy.clone();
                    async move {
                        client
                            .ilm()
                            .put_lifecycle(IlmPutLifecycleParts::Policy(mapping::ILM_POLICY))
                            .body(policy)
                            .send()
                            .await
                    }
                })
                .await?;
            answer("the ILM policy", response).await?;
        }
        let layout = mapping::Layout {
            naming: self.options.naming,
            shards: self.options.shards,
            replicas: self.options.replicas,
            ilm_retention_days: self.ilm_retention_days(),
        };
        for (name, template) in mapping::templates(layout) {
            let response = self
                .nodes
                .send("index template", |client| {
                    let (name, template) = (name.clone(), template.clone());
                    async move {
                        client
                            .indices()
                            .put_index_template(IndicesPutIndexTemplateParts::Name(&name))
                            .body(template)
                            .send()
                            .await
                    }
                })
                .await?;
            answer(&format!("the index template {name}"), response).await?;
        }
        Ok(())
    }

    fn patterns(&self) -> Vec<&str> {
        self.patterns.iter().map(String::as_str).collect()
    }

    /// Runs a search over our indices.
    async fn search_json(&self, body: Json) -> Result<Json, StoreError> {
        let patterns = self.patterns();
        let response = self
            .nodes
            .send("search", |client| {
                let (body, patterns) = (body.clone(), patterns.clone());
                async move {
                    client
                        .search(SearchParts::Index(&patterns))
                        .ignore_unavailable(true)
                        .allow_no_indices(true)
                        .allow_partial_search_results(false)
                        .body(body)
                        .send()
                        .await
                }
            })
            .await?;
        complete("search", answer("the search", response).await?)
    }

    /// Runs a count over our indices.
    async fn count_json(&self, body: Json) -> Result<u64, StoreError> {
        let patterns = self.patterns();
        let response = self
            .nodes
            .send("count", |client| {
                let (body, patterns) = (body.clone(), patterns.clone());
                async move {
                    client
                        .count(CountParts::Index(&patterns))
                        .ignore_unavailable(true)
                        .allow_no_indices(true)
                        .body(body)
                        .send()
                        .await
                }
            })
            .await?;
        let answer = complete("count", answer("the count", response).await?)?;
        Ok(answer["count"].as_u64().unwrap_or(0))
    }

    /// Sends one bulk; its items, or `None` when Elasticsearch found the
    /// request too large (413, `http.max_content_length`).
    async fn bulk_once(
        &self,
        lines: &[&(usize, Bytes)],
    ) -> Result<Option<Vec<bulk::Item>>, StoreError> {
        let response = self
            .nodes
            .send("bulk", |client| {
                let body: Vec<Bytes> = lines.iter().map(|(_, line)| line.clone()).collect();
                async move {
                    client
                        .bulk(BulkParts::None)
                        .refresh(Refresh::WaitFor)
                        .body(body)
                        .send()
                        .await
                }
            })
            .await?;
        if response.status_code() == StatusCode::PAYLOAD_TOO_LARGE {
            return Ok(None);
        }
        let answer = answer("the bulk write", response).await?;
        bulk::items(&answer, lines.len()).map(Some)
    }

    /// Writes one bulk's events until each is stored, already there or
    /// refused for good, adding them to `outcome`. A bulk Elasticsearch
    /// finds too large is halved; one event alone that still is, refused.
    async fn write_bulk(
        &self,
        lines: Vec<&(usize, Bytes)>,
        outcome: &mut WriteOutcome,
    ) -> Result<(), StoreError> {
        let mut delays = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(5))
            .with_jitter()
            .with_max_times(WRITE_ATTEMPTS)
            .build();
        let mut queue = VecDeque::from([lines]);
        while let Some(pending) = queue.pop_front() {
            let items = match self.bulk_once(&pending).await {
                Ok(Some(items)) => items,
                Ok(None) if pending.len() == 1 => {
                    outcome.refused.push(RefusedEvent {
                        position: pending[0].0,
                        reason: format!(
                            "Elasticsearch refused the event as too large (413): {} bytes \
                             over its http.max_content_length",
                            pending[0].1.len()
                        ),
                    });
                    continue;
                }
                Ok(None) => {
                    let mut first = pending;
                    let second = first.split_off(first.len() / 2);
                    tracing::warn!(
                        events = first.len() + second.len(),
                        "Elasticsearch found a bulk too large (413); halving it"
                    );
                    queue.push_front(second);
                    queue.push_front(first);
                    continue;
                }
                Err(StoreError::Unavailable(reason)) => {
                    // The whole bulk failed: nothing of it was counted.
                    let Some(delay) = delays.next() else {
                        return Err(StoreError::Unavailable(reason));
                    };
                    tracing::warn!(%reason, retry_in = ?delay, "Elasticsearch bulk failed; retrying");
                    tokio::time::sleep(delay).await;
                    queue.push_front(pending);
                    continue;
                }
                Err(other) => return Err(other),
            };
            let mut retry = Vec::new();
            let mut why = String::new();
            for (line, item) in pending.into_iter().zip(items) {
                match item {
                    bulk::Item::Inserted => outcome.inserted += 1,
                    bulk::Item::Duplicate => outcome.duplicates += 1,
                    bulk::Item::Retry(reason) => {
                        why = reason;
                        retry.push(line);
                    }
                    bulk::Item::Refused(reason) => outcome.refused.push(RefusedEvent {
                        position: line.0,
                        reason,
                    }),
                    bulk::Item::Fatal(err) => return Err(err),
                }
            }
            if retry.is_empty() {
                continue;
            }
            let Some(delay) = delays.next() else {
                return Err(StoreError::Unavailable(format!(
                    "Elasticsearch kept refusing {} events, the last with {why}",
                    retry.len()
                )));
            };
            tracing::warn!(events = retry.len(), reason = %why, retry_in = ?delay, "Elasticsearch refused some events for now; retrying them");
            tokio::time::sleep(delay).await;
            queue.push_front(retry);
        }
        Ok(())
    }

    /// Our indices (`_cat/indices` over our patterns).
    async fn indices(&self) -> Result<Vec<IndexInfo>, StoreError> {
        let patterns = self.patterns();
        let response = self
            .nodes
            .send("index list", |client| {
                let patterns = patterns.clone();
                async move {
                    client
                        .cat()
                        .indices(elasticsearch::cat::CatIndicesParts::Index(&patterns))
                        .format("json")
                        .bytes(elasticsearch::params::Bytes::B)
                        .send()
                        .await
                }
            })
            .await?;
        let list = answer("the index list", response).await?;
        let naming = self.options.naming;
        Ok(list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| {
                let name = i["index"].as_str()?.to_owned();
                let docs = i["docs.count"].as_str()?.parse().ok()?;
                let size_bytes = i["pri.store.size"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                naming.owns(&name).then_some(IndexInfo {
                    name,
                    docs,
                    size_bytes,
                })
            })
            .collect())
    }

    /// Deletes whole daily indices of days that ended before `cutoff`.
    async fn delete_days_before(&self, cutoff: Timestamp) -> Result<u64, StoreError> {
        let cutoff_day = jiff::tz::TimeZone::UTC.to_datetime(cutoff).date();
        let doomed: Vec<IndexInfo> = self
            .indices()
            .await?
            .into_iter()
            .filter(|i| Naming::day_of(&i.name).is_some_and(|day| day < cutoff_day))
            .collect();
        let mut deleted = 0;
        for index in doomed {
            let response = self
                .nodes
                .send("index deletion", |client| {
                    let name = index.name.clone();
                    async move {
                        client
                            .indices()
                            .delete(IndicesDeleteParts::Index(&[&name]))
                            .send()
                            .await
                    }
                })
                .await?;
            // Already gone (ILM, another indexer): what was asked is done.
            if response.status_code() == StatusCode::NOT_FOUND {
                continue;
            }
            answer("the index deletion", response).await?;
            tracing::info!(index = %index.name, events = index.docs, "retention deleted an index");
            deleted += index.docs;
        }
        Ok(deleted)
    }

    /// Deletes the undated events indexed before `cutoff` (their `time` is
    /// when they were indexed), by query: their indices have no day.
    async fn delete_undated_before(&self, cutoff: Timestamp) -> Result<u64, StoreError> {
        let patterns = self.options.naming.undated_patterns();
        let body = json!({ "query": { "range": { "time": { "lt": dsl::time_json(cutoff) } } } });
        let response = self
            .nodes
            .send("deletion of undated events", |client| {
                let body = body.clone();
                let patterns: Vec<&str> = patterns.iter().map(String::as_str).collect();
                async move {
                    client
                        .delete_by_query(DeleteByQueryParts::Index(&patterns))
                        .ignore_unavailable(true)
                        .allow_no_indices(true)
                        .conflicts(Conflicts::Proceed)
                        .refresh(true)
                        .body(body)
                        .send()
                        .await
                }
            })
            .await?;
        let answer = answer("the deletion of undated events", response).await?;
        if let Some(failure) = answer["failures"].as_array().and_then(|f| f.first()) {
            return Err(StoreError::Unavailable(format!(
                "Elasticsearch deleted undated events only in part: {failure}"
            )));
        }
        let deleted = answer["deleted"].as_u64().unwrap_or(0);
        if deleted > 0 {
            tracing::info!(events = deleted, "retention deleted undated events");
        }
        Ok(deleted)
    }
}

fn parse_time(value: &Json) -> Option<Timestamp> {
    value.as_str()?.parse().ok()
}

/// The event of a search hit, `None` (with a warning) for a document that
/// is not one of ours (no `id`: written into our indices by something
/// else), an error for one of ours that is damaged.
fn stored_event(hit: &Json) -> Result<Option<StoredEvent>, StoreError> {
    let source = &hit["_source"];
    if source.get("id").is_none() {
        tracing::warn!(index = %hit["_index"], id = %hit["_id"], "a document in an audit index is not an auditrail event; skipped");
        return Ok(None);
    }
    let bad = |what: &str| StoreError::Internal(format!("stored document without {what}: {hit}"));
    let id: EventId = source["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("a valid id"))?;
    let event_type: EventType = source["type"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| bad("a type"))?;
    Ok(Some(StoredEvent {
        id,
        cluster: source["cluster"]
            .as_str()
            .ok_or_else(|| bad("a cluster"))?
            .to_owned(),
        event_type,
        time: parse_time(&source["time"]).ok_or_else(|| bad("a time"))?,
        raw: source["raw"]
            .as_str()
            .map(|s| s.as_bytes().to_vec())
            .unwrap_or_default(),
        provenance: match source.get("provenance") {
            None | Some(Json::Null) => None,
            Some(p) => Some(
                serde_json::from_value::<Provenance>(p.clone())
                    .map_err(|e| bad(&format!("a readable provenance ({e})")))?,
            ),
        },
    }))
}

/// The events of a search answer's hits.
fn stored_events(answer: &Json) -> Result<Vec<StoredEvent>, StoreError> {
    let mut events = Vec::new();
    for hit in answer["hits"]["hits"].as_array().into_iter().flatten() {
        events.extend(stored_event(hit)?);
    }
    Ok(events)
}

/// The store size of each (cluster, type): each index's size shared among
/// the clusters and types in it by their number of events (one index
/// holds every cluster with [`Naming::Auditrail`]). `counts` are the
/// events per (cluster, type, index).
fn apportion_sizes(
    indices: &[IndexInfo],
    counts: &[(String, EventType, String, u64)],
) -> BTreeMap<(String, EventType), u64> {
    let by_name: BTreeMap<&str, &IndexInfo> =
        indices.iter().map(|i| (i.name.as_str(), i)).collect();
    let mut sizes = BTreeMap::new();
    for (cluster, event_type, index, events) in counts {
        let Some(info) = by_name.get(index.as_str()) else {
            continue;
        };
        let share = if info.docs == 0 {
            0
        } else {
            u128::from(info.size_bytes) * u128::from((*events).min(info.docs))
                / u128::from(info.docs)
        };
        *sizes.entry((cluster.clone(), *event_type)).or_default() +=
            u64::try_from(share).unwrap_or(u64::MAX);
    }
    sizes
}

#[async_trait]
impl Store for ElasticStore {
    async fn write(&self, events: Vec<IndexedEvent>) -> Result<WriteOutcome, StoreError> {
        if self.role == Role::Reader {
            return Err(StoreError::Internal(
                "this Elasticsearch store was opened to read; only the indexer writes".to_owned(),
            ));
        }
        let prepared = bulk::prepare(self.options.naming, &events);
        let mut outcome = WriteOutcome {
            duplicates: prepared.duplicates,
            refused: prepared.refused,
            ..WriteOutcome::default()
        };
        let sizes: Vec<usize> = prepared.lines.iter().map(|(_, line)| line.len()).collect();
        for range in bulk::split_by_bytes(&sizes, self.options.max_bulk_bytes) {
            let lines = prepared.lines[range].iter().collect();
            self.write_bulk(lines, &mut outcome).await?;
        }
        outcome.refused.sort_by_key(|r| r.position);
        Ok(outcome)
    }

    async fn search(&self, request: SearchRequest) -> Result<SearchPage, StoreError> {
        let query = dsl::query(&request.query)?;
        let track = match request.count {
            CountMode::None => json!(false),
            CountMode::UpTo(n) => json!(n),
            CountMode::Exact => json!(true),
        };
        // One more than the page, to know whether another page follows;
        // fetched in slices Elasticsearch accepts (`max_result_window`),
        // each continuing after the last event of the one before.
        let wanted = request.limit + 1;
        let mut events: Vec<StoredEvent> = Vec::new();
        let mut after = request.after;
        let mut total = None;
        loop {
            let size = next_slice(wanted, events.len());
            let first = total.is_none();
            let body = dsl::search_body(
                &query,
                request.sort,
                size,
                after.as_ref(),
                request.include_raw,
                if first { &track } else { &Json::Bool(false) },
            );
            let answer = self.search_json(body).await?;
            if first {
                total = Some(Total {
                    count: answer["hits"]["total"]["value"].as_u64().unwrap_or(0),
                    exact: answer["hits"]["total"]["relation"] == "eq",
                });
            }
            let got = answer["hits"]["hits"].as_array().map_or(0, Vec::len);
            events.extend(stored_events(&answer)?);
            if got < size || events.len() >= wanted {
                break;
            }
            after = events.last().map(|e| Cursor {
                time: e.time,
                id: e.id,
            });
        }
        let more = events.len() > request.limit;
        events.truncate(request.limit);
        let next = if more {
            events.last().map(|e| Cursor {
                time: e.time,
                id: e.id,
            })
        } else {
            None
        };
        Ok(SearchPage {
            events,
            total: match request.count {
                CountMode::None => None,
                _ => total,
            },
            next,
        })
    }

    async fn count(&self, query: &Query) -> Result<u64, StoreError> {
        let query = dsl::query(query)?;
        self.count_json(json!({ "query": query })).await
    }

    async fn histogram(&self, request: HistogramRequest) -> Result<Histogram, StoreError> {
        if request.interval.as_millis() < 1 || request.interval.subsec_nanos() % 1_000_000 != 0 {
            return Err(StoreError::InvalidRequest(format!(
                "the Elasticsearch store needs a histogram interval of whole milliseconds, got {:?}",
                request.interval
            )));
        }
        let query = dsl::query(&request.query)?;
        let answer = self
            .search_json(dsl::histogram_body(&request, &query))
            .await?;
        let aggs = &answer["aggregations"];
        let mut buckets = BTreeMap::new();
        for bucket in aggs["buckets"]["buckets"].as_array().into_iter().flatten() {
            let (Some(key), Some(count)) = (bucket["key"].as_i64(), bucket["doc_count"].as_u64())
            else {
                continue;
            };
            let start = Timestamp::from_millisecond(key)
                .map_err(|e| StoreError::Internal(format!("bucket key {key}: {e}")))?;
            buckets.insert(start, count);
        }
        let terms = request
            .terms
            .iter()
            .map(|field| {
                let agg = &aggs[dsl::terms_field(*field)];
                let counts = agg["buckets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|b| {
                        Some((b["key"].as_str()?.to_owned(), b["doc_count"].as_u64()?))
                    });
                let mut top = top_terms(*field, counts, request.top_n);
                top.other += agg["sum_other_doc_count"].as_u64().unwrap_or(0);
                top
            })
            .collect();
        Ok(Histogram {
            buckets,
            terms,
            total: answer["hits"]["total"]["value"].as_u64().unwrap_or(0),
        })
    }

    async fn get(&self, id: &EventId) -> Result<Option<StoredEvent>, StoreError> {
        let body = json!({
            "query": { "term": { "id": id.to_hex() } },
            "size": 1,
            "_source": dsl::source_fields(true),
        });
        let answer = self.search_json(body).await?;
        Ok(stored_events(&answer)?.into_iter().next())
    }

    async fn delete_before(&self, cutoff: Timestamp) -> Result<u64, StoreError> {
        // Whole days only (an index goes when its day ended before the
        // cut-off), and the undated events indexed before it.
        let days = self.delete_days_before(cutoff).await?;
        Ok(days + self.delete_undated_before(cutoff).await?)
    }

    async fn expire_before(&self, cutoff: Timestamp) -> Result<u64, StoreError> {
        if self.ilm_retention_days().is_some() {
            // ILM deletes the dated indices on the same retention; undated
            // events have no index of their own to delete.
            self.delete_undated_before(cutoff).await
        } else {
            self.delete_before(cutoff).await
        }
    }

    async fn stats(&self) -> Result<Vec<IndexStats>, StoreError> {
        let indices = self.indices().await?;
        let body = json!({
            "size": 0,
            "aggs": { "clusters": {
                "terms": { "field": "cluster", "size": dsl::TERMS_SIZE },
                "aggs": { "types": {
                    "terms": { "field": "type", "size": 2 },
                    "aggs": {
                        "oldest": { "min": { "field": "time" } },
                        "newest": { "max": { "field": "time" } },
                        "indices": { "terms": { "field": "_index", "size": indices.len().max(1) } },
                    }
                } }
            } }
        });
        let answer = self.search_json(body).await?;
        let mut stats = Vec::new();
        let mut counts = Vec::new();
        for cluster in answer["aggregations"]["clusters"]["buckets"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let Some(name) = cluster["key"].as_str() else {
                continue;
            };
            for t in cluster["types"]["buckets"].as_array().into_iter().flatten() {
                let Some(event_type) = t["key"].as_str().and_then(|k| k.parse::<EventType>().ok())
                else {
                    continue;
                };
                for index in t["indices"]["buckets"].as_array().into_iter().flatten() {
                    if let (Some(index), Some(events)) =
                        (index["key"].as_str(), index["doc_count"].as_u64())
                    {
                        counts.push((name.to_owned(), event_type, index.to_owned(), events));
                    }
                }
                stats.push(IndexStats {
                    cluster: name.to_owned(),
                    event_type,
                    events: t["doc_count"].as_u64().unwrap_or(0),
                    oldest: parse_time(&t["oldest"]["value_as_string"]),
                    newest: parse_time(&t["newest"]["value_as_string"]),
                    size_bytes: 0,
                });
            }
        }
        let sizes = apportion_sizes(&indices, &counts);
        for stat in &mut stats {
            stat.size_bytes = sizes
                .get(&(stat.cluster.clone(), stat.event_type))
                .copied()
                .unwrap_or(0);
        }
        stats.sort_by(|a, b| {
            (a.cluster.as_str(), a.event_type.as_str())
                .cmp(&(b.cluster.as_str(), b.event_type.as_str()))
        });
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searches_are_sliced_within_the_result_window() {
        assert_eq!(next_slice(101, 0), 101);
        assert_eq!(next_slice(50_001, 0), 10_000);
        assert_eq!(next_slice(50_001, 40_000), 10_000);
        assert_eq!(next_slice(50_001, 50_000), 1);
        let mut have = 0;
        let mut slices = 0;
        while have < 50_001 {
            have += next_slice(50_001, have);
            slices += 1;
        }
        assert_eq!((have, slices), (50_001, 6));
    }

    #[test]
    fn index_sizes_are_shared_by_the_clusters_in_them() {
        let index = |name: &str, docs, size_bytes| IndexInfo {
            name: name.to_owned(),
            docs,
            size_bytes,
        };
        let indices = [
            index("auditrail-kube-2026.11.18", 4, 4000),
            index("auditrail-kube-2026.11.19", 1, 500),
            index("auditrail-ee-2026.11.18", 0, 200),
        ];
        let counts = [
            (
                "a".to_owned(),
                EventType::Kube,
                "auditrail-kube-2026.11.18".to_owned(),
                3,
            ),
            (
                "b".to_owned(),
                EventType::Kube,
                "auditrail-kube-2026.11.18".to_owned(),
                1,
            ),
            (
                "b".to_owned(),
                EventType::Kube,
                "auditrail-kube-2026.11.19".to_owned(),
                1,
            ),
            (
                "b".to_owned(),
                EventType::Ee,
                "auditrail-ee-2026.11.18".to_owned(),
                0,
            ),
            ("c".to_owned(), EventType::Kube, "gone".to_owned(), 9),
        ];
        let sizes = apportion_sizes(&indices, &counts);
        assert_eq!(sizes[&("a".to_owned(), EventType::Kube)], 3000);
        assert_eq!(sizes[&("b".to_owned(), EventType::Kube)], 1500);
        assert_eq!(sizes[&("b".to_owned(), EventType::Ee)], 0);
        assert!(!sizes.contains_key(&("c".to_owned(), EventType::Kube)));
    }

    #[test]
    fn documents_not_ours_are_skipped_and_damaged_ones_are_errors() {
        let answer = json!({ "hits": { "hits": [
            { "_index": "auditrail-kube-2026.11.18", "_id": "x", "_source": { "message": "not an event" } },
            { "_index": "auditrail-kube-2026.11.18", "_id": "y", "_source": {
                "id": EventId::compute("prod", b"{}").to_hex(), "type": "kube", "cluster": "prod",
                "time": "2026-11-18T10:00:00.000000000Z", "raw": "{}" } },
        ] } });
        let events = stored_events(&answer).expect("one event, one foreign document");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].cluster, "prod");
        let damaged = json!({ "hits": { "hits": [
            { "_source": { "id": "not hex", "type": "kube" } },
        ] } });
        let err = stored_events(&damaged).expect_err("damaged");
        assert!(err.to_string().contains("a valid id"), "{err}");
    }

    /// What the fake cluster saw: the size of each bulk it answered, and
    /// how many it refused as too large.
    #[derive(Default)]
    struct Seen {
        bulks: Vec<usize>,
        too_large: usize,
    }

    /// A fake cluster on a real socket: answers `_bulk` per item (400 for
    /// a document holding `refuse-me`, else 201), 413 with an empty body
    /// for a bulk over `max_content_length` (as Elasticsearch does), and
    /// anything else (info, templates, policy) with a plain 200.
    async fn fake_cluster(max_content_length: usize) -> (String, Arc<std::sync::Mutex<Seen>>) {
        use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let seen = Arc::new(std::sync::Mutex::new(Seen::default()));
        let state = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let state = Arc::clone(&state);
                tokio::spawn(async move {
                    let mut reader = tokio::io::BufReader::new(socket);
                    let mut request_line = String::new();
                    let _ = reader.read_line(&mut request_line).await;
                    let mut length = 0;
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).await.unwrap_or(0) == 0 || header == "\r\n"
                        {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':')
                            && name.eq_ignore_ascii_case("content-length")
                        {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    let _ = reader.read_exact(&mut body).await;
                    let (status, answer) = if request_line.contains("/_bulk") {
                        bulk_answer(&body, max_content_length, &state)
                    } else {
                        ("200 OK", r#"{"acknowledged":true}"#.to_owned())
                    };
                    let reply = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n\
                         x-elastic-product: Elasticsearch\r\ncontent-length: {}\r\n\
                         connection: close\r\n\r\n{answer}",
                        answer.len()
                    );
                    let _ = reader.get_mut().write_all(reply.as_bytes()).await;
                });
            }
        });
        (url, seen)
    }

    fn bulk_answer(
        body: &[u8],
        max_content_length: usize,
        seen: &std::sync::Mutex<Seen>,
    ) -> (&'static str, String) {
        let mut seen = seen.lock().expect("lock");
        if body.len() > max_content_length {
            seen.too_large += 1;
            return ("413 Payload Too Large", String::new());
        }
        seen.bulks.push(body.len());
        let text = String::from_utf8_lossy(body);
        let lines: Vec<&str> = text.lines().collect();
        let items: Vec<Json> = lines
            .chunks(2)
            .map(|pair| {
                if pair.get(1).is_some_and(|doc| doc.contains("refuse-me")) {
                    json!({ "create": { "status": 400, "error": {
                        "type": "document_parsing_exception", "reason": "failed to parse" } } })
                } else {
                    json!({ "create": { "status": 201 } })
                }
            })
            .collect();
        (
            "200 OK",
            json!({ "errors": true, "items": items }).to_string(),
        )
    }

    fn generated(n: usize) -> Vec<IndexedEvent> {
        use auditrail_loggen::{GenConfig, Generator};
        Generator::new(GenConfig::default())
            .take(n)
            .enumerate()
            .map(|(i, line)| {
                let line = if i == 7 {
                    line.replacen("\"auditID\":\"", "\"auditID\":\"refuse-me-", 1)
                } else {
                    line
                };
                IndexedEvent::from_raw("prod", line.as_bytes(), EventType::Kube, Timestamp::now())
                    .expect("event")
            })
            .collect()
    }

    #[tokio::test]
    async fn a_bulk_refused_as_too_large_is_halved_and_one_bad_event_is_refused_alone() {
        let events = generated(40);
        let total: usize = bulk::prepare(Naming::Auditrail, &events)
            .lines
            .iter()
            .map(|(_, line)| line.len())
            .sum();
        // The cluster takes about a third of the write per request; our
        // budget would send it whole.
        let (url, seen) = fake_cluster(total / 3).await;
        let store = ElasticStore::connect(
            ElasticOptions {
                timeout_secs: 5,
                ..ElasticOptions::for_url(&url)
            },
            Role::Writer { retention_days: 90 },
        )
        .await
        .expect("connect");
        let outcome = store.write(events).await.expect("written");
        assert_eq!(outcome.inserted, 39);
        assert_eq!(outcome.duplicates, 0);
        assert_eq!(
            outcome
                .refused
                .iter()
                .map(|r| r.position)
                .collect::<Vec<_>>(),
            vec![7]
        );
        assert!(
            outcome.refused[0]
                .reason
                .contains("document_parsing_exception")
        );
        let seen = seen.lock().expect("lock");
        assert!(seen.too_large >= 1, "the first bulk was over the limit");
        assert!(
            seen.bulks.iter().all(|&b| b <= total / 3),
            "{:?}",
            seen.bulks
        );
        assert_eq!(
            seen.bulks.iter().sum::<usize>(),
            total,
            "every event sent once"
        );
    }

    #[tokio::test]
    async fn writes_are_cut_at_the_byte_budget() {
        let events = generated(40);
        let (url, seen) = fake_cluster(usize::MAX).await;
        let store = ElasticStore::connect(
            ElasticOptions {
                timeout_secs: 5,
                max_bulk_bytes: 4096,
                ..ElasticOptions::for_url(&url)
            },
            Role::Writer { retention_days: 90 },
        )
        .await
        .expect("connect");
        let outcome = store.write(events).await.expect("written");
        assert_eq!((outcome.inserted, outcome.refused.len()), (39, 1));
        let seen = seen.lock().expect("lock");
        assert_eq!(seen.too_large, 0);
        assert!(seen.bulks.len() > 5, "{:?}", seen.bulks);
        assert!(seen.bulks.iter().all(|&b| b <= 4096), "{:?}", seen.bulks);
    }

    #[tokio::test]
    async fn a_reader_never_writes() {
        let (url, seen) = fake_cluster(usize::MAX).await;
        let reader = ElasticStore::connect(ElasticOptions::for_url(&url), Role::Reader)
            .await
            .expect("connect");
        let err = reader.write(generated(2)).await.expect_err("read-only");
        assert!(err.to_string().contains("only the indexer writes"), "{err}");
        assert!(seen.lock().expect("lock").bulks.is_empty());
    }
}
