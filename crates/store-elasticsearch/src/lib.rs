//! The Elasticsearch backend of the [`Store`] trait: what Calico users
//! already run, and what a fleet of clusters needs once one machine is not
//! enough.
//!
//! Same semantics as the embedded store, checked by the same conformance
//! suite (`auditrail-store-conformance`):
//!
//! - **Writes**: one `_bulk` of `create` actions with the event id as `_id`
//!   into the daily index of the event's time ([`mapping`]), so a re-sent
//!   event meets its first copy and answers 409, counted as a duplicate.
//!   The bulk waits for the refresh (`refresh=wait_for`): when `write`
//!   returns, the events are durable (translog) and searchable, as the
//!   indexer's acknowledgement promises. 429 and 5xx answers, for the whole
//!   bulk or single items, are retried with exponential backoff and jitter;
//!   only then does `write` fail (and the ingestor re-sends the batch).
//! - **Queries**: the [`auditrail_store::Query`] value is translated node by
//!   node ([`dsl`]); pages are `search_after` on (time, id), which is unique,
//!   so paging is exact while events arrive (a point in time is not needed
//!   for that and would have to live across the stateless page tokens).
//! - **Retention**: an ILM policy deletes a daily index `retention_days`
//!   after its day; with ILM off, [`ElasticStore::delete_before`] deletes
//!   whole days (index-granular, as `ApplyRetention` documents).

pub mod dsl;
pub mod mapping;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use auditrail_event::{EventId, EventType};
use auditrail_store::{
    CountMode, Cursor, Histogram, HistogramRequest, IndexStats, IndexedEvent, Query, SearchPage,
    SearchRequest, Store, StoreError, StoredEvent, Total, WriteOutcome, top_terms,
};
use backon::{BackoffBuilder as _, ExponentialBuilder};
use elasticsearch::auth::Credentials;
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::http::request::JsonBody;
use elasticsearch::http::response::Response;
use elasticsearch::http::transport::{
    MultiNodeConnectionPool, SingleNodeConnectionPool, TransportBuilder,
};
use elasticsearch::http::{StatusCode, Url};
use elasticsearch::ilm::IlmPutLifecycleParts;
use elasticsearch::indices::{IndicesDeleteParts, IndicesPutIndexTemplateParts};
use elasticsearch::params::Refresh;
use elasticsearch::{BulkParts, CountParts, Elasticsearch, SearchParts};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

pub use mapping::Naming;

/// How to authenticate.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    /// No authentication.
    #[default]
    None,
    /// HTTP basic authentication.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// An API key, base64 of `id:key` as Elasticsearch hands it out.
    ApiKey(String),
    /// A bearer token (service account or OAuth).
    Bearer(String),
}

impl std::fmt::Debug for Auth {
    // Secrets never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Self::ApiKey(_) => f.write_str("ApiKey(***)"),
            Self::Bearer(_) => f.write_str("Bearer(***)"),
        }
    }
}

/// Where the cluster is and how the indices are laid out. Every field has a
/// default, so a configuration may name only what differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ElasticOptions {
    /// Node URLs (one or more, round robin).
    pub urls: Vec<String>,
    /// Authentication.
    pub auth: Auth,
    /// PEM file of the CA that signed the cluster's certificate (https).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
    /// Index names: ours or the product's.
    pub naming: Naming,
    /// Retention by an ILM policy (else by deleting whole days).
    pub ilm: bool,
    /// Days an index is kept after its day, when ILM manages retention.
    pub retention_days: u32,
    /// Replicas per index.
    pub replicas: u32,
    /// Timeout of one request, in seconds.
    pub timeout_secs: u64,
}

impl Default for ElasticOptions {
    fn default() -> Self {
        Self {
            urls: vec!["http://127.0.0.1:9200".to_owned()],
            auth: Auth::None,
            ca_cert: None,
            naming: Naming::Auditrail,
            ilm: true,
            retention_days: 91,
            replicas: 1,
            timeout_secs: 60,
        }
    }
}

/// Bulk requests are retried this many times on 429 and 5xx before `write`
/// fails.
const WRITE_ATTEMPTS: usize = 6;

/// The Elasticsearch store.
#[derive(Clone)]
pub struct ElasticStore {
    client: Elasticsearch,
    options: ElasticOptions,
    patterns: Vec<String>,
}

impl std::fmt::Debug for ElasticStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElasticStore")
            .field("urls", &self.options.urls)
            .field("naming", &self.options.naming)
            .finish_non_exhaustive()
    }
}

fn unavailable(what: &str, err: &elasticsearch::Error) -> StoreError {
    StoreError::Unavailable(format!("Elasticsearch {what}: {err}"))
}

/// Elasticsearch refuses a search whose `from + size` is above the index's
/// `index.max_result_window` (10,000 by default), `search_after` or not.
const MAX_RESULT_WINDOW: usize = 10_000;

/// The size of the next slice of a search that wants `wanted` events and
/// has `have`.
fn next_slice(wanted: usize, have: usize) -> usize {
    wanted.saturating_sub(have).clamp(1, MAX_RESULT_WINDOW)
}

/// The most characters of an unexpected answer an error repeats.
const BODY_CHARS: usize = 300;

/// Why Elasticsearch refused a request, from its error answer: the first
/// root cause (the shard's own words) rather than the summary ("all shards
/// failed"), else the summary, else the start of the body.
fn error_reason(body: &Json, text: &str) -> String {
    let root = &body["error"]["root_cause"][0];
    if let Some(reason) = root["reason"].as_str() {
        return match root["type"].as_str() {
            Some(kind) => format!("{kind}: {reason}"),
            None => reason.to_owned(),
        };
    }
    if let Some(reason) = body["error"]["reason"].as_str() {
        return reason.to_owned();
    }
    let text = text.trim();
    if text.is_empty() {
        return "(an empty answer)".to_owned();
    }
    match text.char_indices().nth(BODY_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The store error of an error `status` with `reason`: 400 (and 413, a
/// request over `http.max_content_length`) a bad request; 401/403 refused
/// credentials; 408, 429 and 5xx unavailability (retry).
fn status_error(what: &str, status: StatusCode, reason: &str) -> StoreError {
    match status {
        StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE => {
            StoreError::InvalidRequest(format!("Elasticsearch refused {what} ({status}): {reason}"))
        }
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => StoreError::Internal(format!(
            "Elasticsearch refused the credentials for {what} ({status}): {reason}"
        )),
        s if s == StatusCode::REQUEST_TIMEOUT
            || s == StatusCode::TOO_MANY_REQUESTS
            || s.is_server_error() =>
        {
            StoreError::Unavailable(format!("Elasticsearch {what} ({status}): {reason}"))
        }
        _ => StoreError::Internal(format!("Elasticsearch {what} ({status}): {reason}")),
    }
}

/// A search answer that Elasticsearch gave with 200 although part of it is
/// missing (failed shards, a timeout; partial results are on by default)
/// is no answer: UNAVAILABLE, naming the first failure.
fn complete(what: &str, answer: Json) -> Result<Json, StoreError> {
    let failed = answer["_shards"]["failed"].as_u64().unwrap_or(0);
    if failed > 0 {
        let total = answer["_shards"]["total"].as_u64().unwrap_or(0);
        let reason = answer["_shards"]["failures"][0]["reason"]["reason"]
            .as_str()
            .unwrap_or("no reason given");
        return Err(StoreError::Unavailable(format!(
            "Elasticsearch {what}: {failed} of {total} shards failed, so the answer would be \
             incomplete: {reason}"
        )));
    }
    if answer["timed_out"].as_bool() == Some(true) {
        return Err(StoreError::Unavailable(format!(
            "Elasticsearch {what} timed out, so the answer would be incomplete"
        )));
    }
    Ok(answer)
}

/// Reads a response, mapping an error status to the store's error kinds
/// ([`status_error`]). The status is read before the body, which may be
/// empty or not JSON (a 413, a proxy's page).
async fn answer(what: &str, response: Response) -> Result<Json, StoreError> {
    let status = response.status_code();
    let text = response
        .text()
        .await
        .map_err(|e| StoreError::Unavailable(format!("Elasticsearch {what}: {e}")))?;
    let body: Option<Json> = serde_json::from_str(&text).ok();
    if status.is_success() {
        return body.ok_or_else(|| {
            StoreError::Unavailable(format!(
                "Elasticsearch {what}: the answer is not JSON: {}",
                error_reason(&Json::Null, &text)
            ))
        });
    }
    let reason = error_reason(body.as_ref().unwrap_or(&Json::Null), &text);
    Err(status_error(what, status, &reason))
}

impl ElasticStore {
    /// Connects, checks that the cluster answers and accepts the
    /// credentials, and installs the index template and the ILM policy. A
    /// clear error when the cluster cannot be reached or refuses us.
    pub async fn connect(options: ElasticOptions) -> Result<Self, StoreError> {
        let client = client(&options)?;
        let response = client.info().send().await.map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot reach Elasticsearch at {}: {e}",
                options.urls.join(", ")
            ))
        })?;
        answer("info", response).await?;
        let store = Self {
            patterns: options.naming.all_patterns(),
            client,
            options,
        };
        store.install().await?;
        Ok(store)
    }

    /// Puts the ILM policy (when ILM is on) and the index template.
    async fn install(&self) -> Result<(), StoreError> {
        if self.options.ilm {
            let response = self
                .client
                .ilm()
                .put_lifecycle(IlmPutLifecycleParts::Policy(mapping::ILM_POLICY))
                .body(mapping::ilm_policy(self.options.retention_days))
                .send()
                .await
                .map_err(|e| unavailable("ILM policy", &e))?;
            answer("the ILM policy", response).await?;
        }
        let template = match self.options.naming {
            Naming::Auditrail => mapping::TEMPLATE.to_owned(),
            Naming::Product => format!("{}-product-names", mapping::TEMPLATE),
        };
        let response = self
            .client
            .indices()
            .put_index_template(IndicesPutIndexTemplateParts::Name(&template))
            .body(mapping::template(
                self.options.naming,
                self.options.replicas,
                self.options.ilm,
            ))
            .send()
            .await
            .map_err(|e| unavailable("index template", &e))?;
        answer("the index template", response).await?;
        Ok(())
    }

    fn patterns(&self) -> Vec<&str> {
        self.patterns.iter().map(String::as_str).collect()
    }

    /// Runs a search over every audit index.
    async fn search_json(&self, body: Json) -> Result<Json, StoreError> {
        let patterns = self.patterns();
        let response = self
            .client
            .search(SearchParts::Index(&patterns))
            .ignore_unavailable(true)
            .allow_no_indices(true)
            .allow_partial_search_results(false)
            .body(body)
            .send()
            .await
            .map_err(|e| unavailable("search", &e))?;
        complete("search", answer("the search", response).await?)
    }

    /// One bulk of `create` actions; returns the items that must be tried
    /// again (429, 5xx) and adds the others to `outcome`.
    async fn bulk_once(
        &self,
        events: &[&IndexedEvent],
        outcome: &mut WriteOutcome,
    ) -> Result<Vec<usize>, StoreError> {
        let mut body: Vec<JsonBody<Json>> = Vec::with_capacity(events.len() * 2);
        for event in events {
            let index = self
                .options
                .naming
                .index(&event.cluster, event.event_type, event.time);
            body.push(json!({ "create": { "_index": index, "_id": event.id.to_hex() } }).into());
            body.push(mapping::document(event).into());
        }
        let response = self
            .client
            .bulk(BulkParts::None)
            .refresh(Refresh::WaitFor)
            .body(body)
            .send()
            .await
            .map_err(|e| unavailable("bulk", &e))?;
        let answer = answer("the bulk write", response).await?;
        let items = answer["items"].as_array().cloned().unwrap_or_default();
        if items.len() != events.len() {
            return Err(StoreError::Internal(format!(
                "Elasticsearch answered {} bulk items for {} events",
                items.len(),
                events.len()
            )));
        }
        let mut retry = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let status = item["create"]["status"].as_u64().unwrap_or(0);
            match status {
                200..=299 => outcome.inserted += 1,
                409 => outcome.duplicates += 1,
                429 | 500..=599 => retry.push(i),
                _ => {
                    return Err(StoreError::Internal(format!(
                        "Elasticsearch refused event {} ({status}): {}",
                        events[i].id,
                        item["create"]["error"]["reason"]
                            .as_str()
                            .unwrap_or("no reason given")
                    )));
                }
            }
        }
        Ok(retry)
    }

    /// Every audit index: name, documents, primary store size in bytes.
    async fn indices(&self) -> Result<Vec<(String, u64, u64)>, StoreError> {
        let patterns = self.patterns();
        let response = self
            .client
            .cat()
            .indices(elasticsearch::cat::CatIndicesParts::Index(&patterns))
            .format("json")
            .bytes(elasticsearch::params::Bytes::B)
            .send()
            .await
            .map_err(|e| unavailable("index list", &e))?;
        let list = answer("the index list", response).await?;
        Ok(list
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|i| {
                        let name = i["index"].as_str()?.to_owned();
                        let docs = i["docs.count"].as_str()?.parse().ok()?;
                        let size = i["pri.store.size"].as_str().and_then(|s| s.parse().ok());
                        Some((name, docs, size.unwrap_or(0)))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
}

/// Builds the client: one node or round robin over several, credentials,
/// custom CA, timeout.
fn client(options: &ElasticOptions) -> Result<Elasticsearch, StoreError> {
    let urls = options
        .urls
        .iter()
        .map(|u| {
            Url::parse(u).map_err(|e| {
                StoreError::InvalidRequest(format!("invalid Elasticsearch URL {u:?}: {e}"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut builder = match urls.as_slice() {
        [] => {
            return Err(StoreError::InvalidRequest(
                "no Elasticsearch URL given".to_owned(),
            ));
        }
        [one] => TransportBuilder::new(SingleNodeConnectionPool::new(one.clone())),
        many => TransportBuilder::new(MultiNodeConnectionPool::round_robin(many.to_vec(), None)),
    };
    builder = builder.timeout(Duration::from_secs(options.timeout_secs.max(1)));
    builder = match &options.auth {
        Auth::None => builder,
        Auth::Basic { username, password } => {
            builder.auth(Credentials::Basic(username.clone(), password.clone()))
        }
        Auth::ApiKey(key) => builder.auth(Credentials::EncodedApiKey(key.clone())),
        Auth::Bearer(token) => builder.auth(Credentials::Bearer(token.clone())),
    };
    if let Some(path) = &options.ca_cert {
        let pem = std::fs::read(path).map_err(|e| {
            StoreError::InvalidRequest(format!("cannot read the CA file {}: {e}", path.display()))
        })?;
        let cert = Certificate::from_pem(&pem).map_err(|e| {
            StoreError::InvalidRequest(format!("{} is not a PEM certificate: {e}", path.display()))
        })?;
        builder = builder.cert_validation(CertificateValidation::Full(cert));
    }
    let transport = builder
        .build()
        .map_err(|e| StoreError::Internal(format!("cannot build the Elasticsearch client: {e}")))?;
    Ok(Elasticsearch::new(transport))
}

fn parse_time(value: &Json) -> Option<Timestamp> {
    value.as_str()?.parse().ok()
}

fn stored_event(hit: &Json) -> Result<StoredEvent, StoreError> {
    let source = &hit["_source"];
    let bad = |what: &str| StoreError::Internal(format!("stored document without {what}: {hit}"));
    let id: EventId = source["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("a valid id"))?;
    let event_type = match source["type"].as_str() {
        Some("ee") => EventType::Ee,
        Some("kube") => EventType::Kube,
        _ => return Err(bad("a type")),
    };
    Ok(StoredEvent {
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
    })
}

#[async_trait]
impl Store for ElasticStore {
    async fn write(&self, events: Vec<IndexedEvent>) -> Result<WriteOutcome, StoreError> {
        let mut outcome = WriteOutcome::default();
        let mut seen = HashSet::new();
        let mut pending: Vec<&IndexedEvent> = Vec::with_capacity(events.len());
        for event in &events {
            if seen.insert(event.id) {
                pending.push(event);
            } else {
                outcome.duplicates += 1;
            }
        }
        let mut delays = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(5))
            .with_jitter()
            .with_max_times(WRITE_ATTEMPTS)
            .build();
        while !pending.is_empty() {
            let result = self.bulk_once(&pending, &mut outcome).await;
            let retry: Vec<usize> = match result {
                Ok(retry) => retry,
                Err(StoreError::Unavailable(reason)) => {
                    // The whole bulk failed: nothing of it was counted.
                    let Some(delay) = delays.next() else {
                        return Err(StoreError::Unavailable(reason));
                    };
                    tracing::warn!(%reason, retry_in = ?delay, "Elasticsearch bulk failed; retrying");
                    tokio::time::sleep(delay).await;
                    continue;
                }
                Err(other) => return Err(other),
            };
            if retry.is_empty() {
                break;
            }
            let Some(delay) = delays.next() else {
                return Err(StoreError::Unavailable(format!(
                    "Elasticsearch kept refusing {} events (429/5xx)",
                    retry.len()
                )));
            };
            tracing::warn!(events = retry.len(), retry_in = ?delay, "Elasticsearch refused some events (429/5xx); retrying them");
            tokio::time::sleep(delay).await;
            pending = retry.into_iter().map(|i| pending[i]).collect();
        }
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
            let slice = answer["hits"]["hits"]
                .as_array()
                .map(|hits| hits.iter().map(stored_event).collect::<Result<Vec<_>, _>>())
                .transpose()?
                .unwrap_or_default();
            let got = slice.len();
            events.extend(slice);
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
        let patterns = self.patterns();
        let response = self
            .client
            .count(CountParts::Index(&patterns))
            .ignore_unavailable(true)
            .allow_no_indices(true)
            .body(json!({ "query": query }))
            .send()
            .await
            .map_err(|e| unavailable("count", &e))?;
        let answer = complete("count", answer("the count", response).await?)?;
        Ok(answer["count"].as_u64().unwrap_or(0))
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
        answer["hits"]["hits"]
            .as_array()
            .and_then(|h| h.first())
            .map(stored_event)
            .transpose()
    }

    async fn delete_before(&self, cutoff: Timestamp) -> Result<u64, StoreError> {
        // Whole days only: an index goes when its day ended before the
        // cut-off.
        let cutoff_day = jiff::tz::TimeZone::UTC.to_datetime(cutoff).date();
        let doomed: Vec<(String, u64)> = self
            .indices()
            .await?
            .into_iter()
            .filter(|(name, _, _)| {
                self.options.naming.parse(name).is_some()
                    && Naming::day_of(name).is_some_and(|day| day < cutoff_day)
            })
            .map(|(name, docs, _)| (name, docs))
            .collect();
        let mut deleted = 0;
        for (name, docs) in doomed {
            let response = self
                .client
                .indices()
                .delete(IndicesDeleteParts::Index(&[&name]))
                .send()
                .await
                .map_err(|e| unavailable("index deletion", &e))?;
            // Already gone (ILM, another indexer): what was asked is done.
            if response.status_code() == StatusCode::NOT_FOUND {
                continue;
            }
            answer("the index deletion", response).await?;
            tracing::info!(index = %name, events = docs, "retention deleted an index");
            deleted += docs;
        }
        Ok(deleted)
    }

    async fn stats(&self) -> Result<Vec<IndexStats>, StoreError> {
        let mut sizes: BTreeMap<(String, EventType), u64> = BTreeMap::new();
        for (name, _, size) in self.indices().await? {
            if let Some(key) = self.options.naming.parse(&name) {
                *sizes.entry(key).or_default() += size;
            }
        }
        let body = json!({
            "size": 0,
            "aggs": { "clusters": {
                "terms": { "field": "cluster", "size": dsl::TERMS_SIZE },
                "aggs": { "types": {
                    "terms": { "field": "type", "size": 2 },
                    "aggs": {
                        "oldest": { "min": { "field": "time" } },
                        "newest": { "max": { "field": "time" } },
                    }
                } }
            } }
        });
        let answer = self.search_json(body).await?;
        let mut stats = Vec::new();
        for cluster in answer["aggregations"]["clusters"]["buckets"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let Some(name) = cluster["key"].as_str() else {
                continue;
            };
            for t in cluster["types"]["buckets"].as_array().into_iter().flatten() {
                let event_type = match t["key"].as_str() {
                    Some("ee") => EventType::Ee,
                    Some("kube") => EventType::Kube,
                    _ => continue,
                };
                stats.push(IndexStats {
                    cluster: name.to_owned(),
                    event_type,
                    events: t["doc_count"].as_u64().unwrap_or(0),
                    oldest: parse_time(&t["oldest"]["value_as_string"]),
                    newest: parse_time(&t["newest"]["value_as_string"]),
                    size_bytes: sizes
                        .get(&(name.to_ascii_lowercase(), event_type))
                        .copied()
                        .unwrap_or(0),
                });
            }
        }
        stats.sort_by(|a, b| {
            (a.cluster.as_str(), a.event_type.as_str())
                .cmp(&(b.cluster.as_str(), b.event_type.as_str()))
        });
        Ok(stats)
    }
}

/// The store a service was configured with: Elasticsearch when `options`
/// are given (connected, credentials checked, template installed), else
/// the service's own embedded store from `embedded`.
pub async fn connect_or_embedded(
    options: Option<&ElasticOptions>,
    embedded: impl FnOnce() -> Result<std::sync::Arc<dyn Store>, StoreError>,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    match options {
        Some(options) => Ok(std::sync::Arc::new(
            ElasticStore::connect(options.clone()).await?,
        )),
        None => embedded(),
    }
}

/// Reads `ELASTICSEARCH_URL`-style settings for tests and tools: the URL
/// and, when given, basic credentials.
pub fn options_for_url(url: &str) -> ElasticOptions {
    ElasticOptions {
        urls: vec![url.to_owned()],
        replicas: 0,
        ..ElasticOptions::default()
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
    fn errors_name_the_root_cause_and_the_status_decides_the_kind() {
        let body = json!({"error": {
            "root_cause": [{"type": "illegal_argument_exception", "reason": "Result window is too large"}],
            "type": "search_phase_execution_exception",
            "reason": "all shards failed",
        }});
        assert_eq!(
            error_reason(&body, ""),
            "illegal_argument_exception: Result window is too large"
        );
        assert_eq!(
            error_reason(&json!({"error": {"reason": "summary"}}), ""),
            "summary"
        );
        assert_eq!(error_reason(&Json::Null, ""), "(an empty answer)");
        let page = "<html>".repeat(100);
        assert!(error_reason(&Json::Null, &page).ends_with('…'));
        assert!(matches!(
            status_error("x", StatusCode::REQUEST_TIMEOUT, "r"),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            status_error("x", StatusCode::PAYLOAD_TOO_LARGE, "r"),
            StoreError::InvalidRequest(_)
        ));
        assert!(matches!(
            status_error("x", StatusCode::TOO_MANY_REQUESTS, "r"),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            status_error("x", StatusCode::BAD_REQUEST, "r"),
            StoreError::InvalidRequest(_)
        ));
    }

    #[test]
    fn partial_answers_are_unavailable() {
        let partial = json!({
            "timed_out": false,
            "_shards": {"total": 5, "successful": 3, "failed": 2, "failures": [
                {"shard": 1, "reason": {"type": "node_disconnected_exception", "reason": "node left"}}
            ]},
            "hits": {"hits": []},
        });
        let err = complete("search", partial).expect_err("failed shards");
        assert!(
            matches!(&err, StoreError::Unavailable(m) if m.contains("2 of 5 shards failed") && m.contains("node left")),
            "{err}"
        );
        let late = json!({"timed_out": true, "_shards": {"total": 1, "failed": 0}});
        assert!(matches!(
            complete("search", late),
            Err(StoreError::Unavailable(_))
        ));
        let whole = json!({"timed_out": false, "_shards": {"total": 1, "failed": 0}, "count": 3});
        assert_eq!(complete("count", whole.clone()).expect("whole"), whole);
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let auth = Auth::Basic {
            username: "elastic".into(),
            password: "hunter2".into(),
        };
        assert_eq!(format!("{auth:?}"), "Basic(elastic, ***)");
        assert!(!format!("{:?}", Auth::ApiKey("c2VjcmV0".into())).contains("c2VjcmV0"));
    }

    #[test]
    fn bad_urls_and_ca_files_are_clear_errors() {
        let err = client(&ElasticOptions {
            urls: vec!["not a url".into()],
            ..ElasticOptions::default()
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("invalid Elasticsearch URL"),
            "{err}"
        );
        let err = client(&ElasticOptions {
            ca_cert: Some("/nonexistent/ca.pem".into()),
            ..ElasticOptions::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
        let err = client(&ElasticOptions {
            urls: Vec::new(),
            ..ElasticOptions::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("no Elasticsearch URL"), "{err}");
    }

    #[tokio::test]
    async fn an_unreachable_cluster_is_a_clear_error_at_start() {
        // A port nothing listens on: bind, note it, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_or(1, |a| a.port());
        let err = ElasticStore::connect(ElasticOptions {
            timeout_secs: 2,
            ..options_for_url(&format!("http://127.0.0.1:{port}"))
        })
        .await
        .unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
        assert!(
            err.to_string().contains("cannot reach Elasticsearch"),
            "{err}"
        );
    }
}
