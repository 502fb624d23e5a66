//! The store conformance suite: one set of behaviour checks that every
//! [`Store`] backend must pass, so the embedded store and Elasticsearch
//! answer the same questions the same way.
//!
//! Each check writes its own events under a cluster name of its own and
//! scopes every query to that cluster, so all checks can share one store
//! (one Elasticsearch cluster) and run in any order. Expected answers come
//! from an oracle ([`matches()`]) that evaluates the query value on the
//! indexed events in memory, and for histograms from the reference
//! histogram ([`bucket_counts`], [`top_values`]), which the query service's
//! tests use too; a backend passes when its answers equal the oracle's.
//!
//! A backend's test binary runs [`checks`] with `libtest-mimic`, so a check
//! that cannot run (no Elasticsearch, no Docker) is reported as ignored,
//! with the reason printed, never as passed.

mod histogram;
mod oracle;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::ops::Bound;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use auditrail_event::{EventId, EventType};
use auditrail_loggen::{GenConfig, Generator};
use auditrail_store::{
    CountMode, Field, HistogramRequest, IndexedEvent, Position, Provenance, Query, SearchRequest,
    SortOrder, Store, TermsField, Value,
};
use jiff::{SignedDuration, Timestamp};

pub use histogram::{bucket_counts, bucket_start, top_values};
pub use oracle::matches;

/// A check's future.
pub type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// A check: runs against a store, `Err` with what differed.
pub type Check = fn(Arc<dyn Store>) -> CheckFuture;

/// Every check, with its name.
pub fn checks() -> Vec<(&'static str, Check)> {
    vec![
        ("ingest_and_read_back", |s| {
            Box::pin(ingest_and_read_back(s))
        }),
        ("resent_events_are_stored_once", |s| {
            Box::pin(resent_events_are_stored_once(s))
        }),
        ("every_filter_matches_the_oracle", |s| {
            Box::pin(every_filter_matches_the_oracle(s))
        }),
        ("selectors_match_the_oracle", |s| {
            Box::pin(selectors_match_the_oracle(s))
        }),
        ("paging_is_exact_under_concurrent_writes", |s| {
            Box::pin(paging_is_exact_under_concurrent_writes(s))
        }),
        ("histogram_matches_the_oracle", |s| {
            Box::pin(histogram_matches_the_oracle(s))
        }),
        ("export_is_byte_exact", |s| {
            Box::pin(export_is_byte_exact(s))
        }),
        ("history_of_an_object_in_order", |s| {
            Box::pin(history_of_an_object_in_order(s))
        }),
    ]
}

/// A cluster name no other check (or run) uses.
fn fresh_cluster(check: &str) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    format!(
        "conf-{check}-{}-{}",
        Timestamp::now().as_microsecond(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
    .replace('_', "-")
}

/// `n` realistic events of `cluster`, seeded.
fn events(cluster: &str, seed: u64, n: usize) -> Vec<IndexedEvent> {
    Generator::new(GenConfig {
        seed,
        ..GenConfig::default()
    })
    .take(n)
    .filter_map(|line| {
        IndexedEvent::from_raw(
            cluster,
            line.as_bytes(),
            EventType::Kube,
            Timestamp::UNIX_EPOCH,
        )
        .ok()
    })
    .collect()
}

/// A provenance naming `sender`, read at `offset` of a log file.
fn provenance(sender: &str, offset: u64) -> Provenance {
    Provenance {
        source: "kube-audit".to_owned(),
        position: Some(Position::File {
            path: "/var/log/calico/audit/kube-audit.log".to_owned(),
            inode: 4242,
            offset,
        }),
        ingested_by: sender.to_owned(),
        ingested_by_groups: vec!["auditrail:ingestors".to_owned()],
        ingested_from: "10.0.0.7:51234".to_owned(),
        ingested_at: Timestamp::from_microsecond(1_764_900_000_123_456).unwrap_or_default(),
    }
}

fn err(what: impl std::fmt::Display) -> String {
    what.to_string()
}

/// `query` restricted to `cluster`.
fn scoped(cluster: &str, query: Query) -> Query {
    Query::And(vec![Query::eq(Field::Cluster, cluster), query])
}

/// Every id matching `query`, paging oldest first.
async fn all_ids(store: &dyn Store, query: &Query, page: usize) -> Result<Vec<EventId>, String> {
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .search(SearchRequest {
                query: query.clone(),
                sort: SortOrder::OldestFirst,
                limit: page,
                after,
                include_raw: false,
                count: CountMode::None,
            })
            .await
            .map_err(err)?;
        ids.extend(page.events.iter().map(|e| e.id));
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(ids),
        }
    }
}

/// The oracle's ids for `query`, in (time, id) order.
fn expected_ids(events: &[IndexedEvent], query: &Query) -> Vec<EventId> {
    let mut hits: Vec<&IndexedEvent> = events.iter().filter(|e| matches(query, e)).collect();
    hits.sort_by_key(|e| (e.time, e.id));
    hits.dedup_by_key(|e| e.id);
    hits.iter().map(|e| e.id).collect()
}

async fn compare(
    store: &dyn Store,
    events: &[IndexedEvent],
    cluster: &str,
    query: Query,
) -> Result<(), String> {
    let scoped = scoped(cluster, query.clone());
    let got = all_ids(store, &scoped, 37).await?;
    let want = expected_ids(events, &scoped);
    if got != want {
        return Err(format!(
            "{query:?}: store returned {} events, the oracle {}",
            got.len(),
            want.len()
        ));
    }
    let count = store.count(&scoped).await.map_err(err)?;
    if count != want.len() as u64 {
        return Err(format!("{query:?}: count {count}, expected {}", want.len()));
    }
    Ok(())
}

async fn ingest_and_read_back(store: Arc<dyn Store>) -> Result<(), String> {
    let cluster = fresh_cluster("ingest");
    let mut events = events(&cluster, 1, 300);
    // Every other event arrives with a provenance, which reads back whole;
    // the others read back without one.
    for (i, event) in events.iter_mut().enumerate().filter(|(i, _)| i % 2 == 0) {
        event.provenance = Some(provenance(&format!("ingestor-{i}"), i as u64));
    }
    let outcome = store.write(events.clone()).await.map_err(err)?;
    if outcome.inserted != events.len() as u64 || outcome.duplicates != 0 {
        return Err(format!(
            "first write: {outcome:?} for {} events",
            events.len()
        ));
    }
    for event in events.iter().step_by(7) {
        let stored = store
            .get(&event.id)
            .await
            .map_err(err)?
            .ok_or_else(|| format!("{} not found", event.id))?;
        if stored.raw != event.raw || stored.cluster != cluster || stored.time != event.time {
            return Err(format!("{} read back differently", event.id));
        }
        if stored.provenance != event.provenance {
            return Err(format!(
                "{}: provenance {:?} read back as {:?}",
                event.id, event.provenance, stored.provenance
            ));
        }
    }
    let missing = EventId::compute(&cluster, b"never written");
    if store.get(&missing).await.map_err(err)?.is_some() {
        return Err("an id never written was found".to_owned());
    }
    let stats = store.stats().await.map_err(err)?;
    let stored: u64 = stats
        .iter()
        .filter(|s| s.cluster == cluster)
        .map(|s| s.events)
        .sum();
    if stored != events.len() as u64 {
        return Err(format!(
            "stats count {stored} events, {} written",
            events.len()
        ));
    }
    Ok(())
}

async fn resent_events_are_stored_once(store: Arc<dyn Store>) -> Result<(), String> {
    let cluster = fresh_cluster("dedup");
    let mut events = events(&cluster, 2, 120);
    events[0].provenance = Some(provenance("first", 1));
    store.write(events.clone()).await.map_err(err)?;
    // A re-send, through another sender, changes nothing: the event keeps
    // the provenance of its first arrival.
    let mut resent = events.clone();
    resent[0].provenance = Some(provenance("second", 2));
    let again = store.write(resent).await.map_err(err)?;
    if again.inserted != 0 || again.duplicates != events.len() as u64 {
        return Err(format!("re-send: {again:?}"));
    }
    let kept = store
        .get(&events[0].id)
        .await
        .map_err(err)?
        .ok_or("a stored event is gone")?
        .provenance;
    if kept != events[0].provenance {
        return Err(format!("a re-send replaced the provenance: {kept:?}"));
    }
    // Repeats inside one batch, and two different events that share
    // auditID and stage (a client may choose its own Audit-ID): both kept.
    let mut twin: serde_json::Value = serde_json::from_slice(&events[0].raw).map_err(err)?;
    twin["userAgent"] = "curl/8.0 (same Audit-ID, different request)".into();
    let twin = IndexedEvent::from_raw(
        &cluster,
        twin.to_string().as_bytes(),
        EventType::Kube,
        Timestamp::UNIX_EPOCH,
    )
    .map_err(err)?;
    let batch = vec![twin.clone(), twin.clone(), events[1].clone()];
    let outcome = store.write(batch).await.map_err(err)?;
    if (outcome.inserted, outcome.duplicates) != (1, 2) {
        return Err(format!("batch with repeats: {outcome:?}"));
    }
    let total = store
        .count(&Query::eq(Field::Cluster, cluster.as_str()))
        .await
        .map_err(err)?;
    if total != events.len() as u64 + 1 {
        return Err(format!("{total} stored, {} expected", events.len() + 1));
    }
    Ok(())
}

/// Distinct values of a keyword field among `events` (at most `n`).
fn sample_values(events: &[IndexedEvent], field: Field, n: usize) -> Vec<String> {
    let mut values = BTreeSet::new();
    for e in events {
        for v in oracle::keyword_values(field, e) {
            values.insert(v);
        }
    }
    values.into_iter().take(n).collect()
}

async fn every_filter_matches_the_oracle(store: Arc<dyn Store>) -> Result<(), String> {
    let cluster = fresh_cluster("filters");
    let events = events(&cluster, 3, 400);
    store.write(events.clone()).await.map_err(err)?;
    let mut queries = vec![Query::All];
    for field in [
        Field::Type,
        Field::Level,
        Field::Stage,
        Field::Verb,
        Field::Username,
        Field::UserGroups,
        Field::SourceIps,
        Field::Resource,
        Field::Namespace,
        Field::ObjectName,
        Field::ApiGroup,
        Field::ApiVersion,
        Field::Subresource,
        Field::Name,
        Field::Kind,
    ] {
        let values = sample_values(&events, field, 3);
        for v in &values {
            queries.push(Query::eq(field, v.as_str()));
        }
        queries.push(Query::In(
            field,
            values.iter().map(|v| Value::Str(v.clone())).collect(),
        ));
        // `""` matches events without a value.
        queries.push(Query::eq(field, ""));
    }
    // A long list of values too: a backend may read it otherwise than a
    // short one (the embedded store: a term set beyond 16 values, a union
    // of terms up to it).
    let names = sample_values(&events, Field::Name, 40);
    if names.len() <= 16 {
        return Err(format!(
            "the generated events hold only {} names; the long list needs more than 16",
            names.len()
        ));
    }
    queries.push(Query::In(
        Field::Name,
        names.into_iter().map(Value::Str).collect(),
    ));
    queries.push(Query::eq(Field::Kind, "networkpolicy"));
    queries.push(Query::eq(Field::Kind, "NETWORKPOLICY"));
    queries.push(Query::eq(Field::Id, events[5].id.to_hex()));
    queries.push(Query::eq(Field::AuditId, events[9].audit_id.as_str()));
    queries.push(Query::Eq(Field::ResponseCode, Value::Int(200)));
    queries.push(Query::Range {
        field: Field::ResponseCode,
        lower: Bound::Included(Value::Int(400)),
        upper: Bound::Excluded(Value::Int(500)),
    });
    queries.push(Query::Eq(Field::DryRun, Value::Bool(true)));
    queries.push(Query::Contains(Field::RequestUri, "dryRun".to_owned()));
    queries.push(Query::Contains(
        Field::RequestUri,
        "/namespaces/".to_owned(),
    ));
    let middle = events[events.len() / 2].time;
    queries.push(Query::time_range(Some(middle), None));
    queries.push(Query::time_range(None, Some(middle)));
    queries.push(Query::Range {
        field: Field::StageTimestamp,
        lower: Bound::Excluded(Value::Time(events[10].time)),
        upper: Bound::Included(Value::Time(middle)),
    });
    queries.push(Query::Or(vec![
        Query::eq(Field::Verb, "delete"),
        Query::Not(Box::new(Query::eq(Field::Resource, "pods"))),
    ]));
    for query in queries {
        compare(store.as_ref(), &events, &cluster, query).await?;
    }
    Ok(())
}

async fn selectors_match_the_oracle(store: Arc<dyn Store>) -> Result<(), String> {
    let cluster = fresh_cluster("selectors");
    let events = events(&cluster, 4, 300);
    store.write(events.clone()).await.map_err(err)?;
    for selector in [
        "verb IN {create, update, patch, delete} AND objectRef.resource = networkpolicies",
        "responseStatus.code >= 400",
        "NOT (verb = get OR verb = list) && stage = ResponseComplete",
        "user.username != system:kube-scheduler AND level IN (Metadata, RequestResponse)",
        "objectRef.namespace = \"\"",
    ] {
        let query = auditrail_selector::parse(selector).map_err(|e| format!("{selector}: {e}"))?;
        compare(store.as_ref(), &events, &cluster, query)
            .await
            .map_err(|e| format!("selector {selector:?}: {e}"))?;
    }
    Ok(())
}

async fn paging_is_exact_under_concurrent_writes(store: Arc<dyn Store>) -> Result<(), String> {
    let cluster = fresh_cluster("paging");
    let first = events(&cluster, 5, 250);
    store.write(first.clone()).await.map_err(err)?;
    // Later events arrive while a reader pages newest-first.
    let later = events(&cluster, 6, 150);
    let writer = {
        let store = Arc::clone(&store);
        let later = later.clone();
        tokio::spawn(async move {
            for chunk in later.chunks(30) {
                if let Err(e) = store.write(chunk.to_vec()).await {
                    return Err(e.to_string());
                }
            }
            Ok(())
        })
    };
    let query = Query::eq(Field::Cluster, cluster.as_str());
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .search(SearchRequest {
                query: query.clone(),
                sort: SortOrder::NewestFirst,
                limit: 11,
                after,
                include_raw: false,
                count: CountMode::UpTo(10_000),
            })
            .await
            .map_err(err)?;
        seen.extend(page.events.iter().map(|e| (e.time, e.id)));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    writer.await.map_err(err)??;
    if seen.windows(2).any(|w| w[0] <= w[1]) {
        return Err("pages are not strictly newest first (time, id)".to_owned());
    }
    let seen: BTreeSet<EventId> = seen.into_iter().map(|(_, id)| id).collect();
    // Everything present when paging began is on a page; events written
    // meanwhile may or may not be, but nothing twice (checked above).
    let missing = first.iter().filter(|e| !seen.contains(&e.id)).count();
    if missing > 0 {
        return Err(format!(
            "{missing} events stored before paging were skipped"
        ));
    }
    let all: Vec<IndexedEvent> = first.into_iter().chain(later).collect();
    compare(store.as_ref(), &all, &cluster, Query::All).await
}

async fn histogram_matches_the_oracle(store: Arc<dyn Store>) -> Result<(), String> {
    let cluster = fresh_cluster("histogram");
    let events = events(&cluster, 7, 400);
    store.write(events.clone()).await.map_err(err)?;
    let interval = SignedDuration::from_secs(2);
    let query = scoped(
        &cluster,
        Query::Not(Box::new(Query::eq(Field::Verb, "watch"))),
    );
    let fields = [
        TermsField::Verb,
        TermsField::Resource,
        TermsField::Username,
        TermsField::Namespace,
    ];
    let got = store
        .histogram(HistogramRequest {
            query: query.clone(),
            interval,
            terms: fields.to_vec(),
            top_n: 3,
        })
        .await
        .map_err(err)?;
    let hits: Vec<&IndexedEvent> = events.iter().filter(|e| matches(&query, e)).collect();
    let buckets = bucket_counts(hits.iter().map(|e| e.time), interval);
    if got.buckets != buckets || got.total != hits.len() as u64 {
        return Err(format!(
            "buckets differ: {} buckets / {} events, expected {} / {}",
            got.buckets.len(),
            got.total,
            buckets.len(),
            hits.len()
        ));
    }
    for (field, top) in fields.iter().zip(&got.terms) {
        let (values, other) = top_values(hits.iter().map(|e| oracle::terms_value(*field, e)), 3);
        if top.field != *field || top.values != values || top.other != other {
            return Err(format!(
                "top {field:?}: {top:?}, expected {values:?} and {other} others"
            ));
        }
    }
    Ok(())
}

async fn export_is_byte_exact(store: Arc<dyn Store>) -> Result<(), String> {
    let cluster = fresh_cluster("export");
    let events = events(&cluster, 8, 200);
    store.write(events.clone()).await.map_err(err)?;
    let by_id: BTreeMap<EventId, &IndexedEvent> = events.iter().map(|e| (e.id, e)).collect();
    let mut after = None;
    let mut exported = 0;
    loop {
        let page = store
            .search(SearchRequest {
                query: Query::eq(Field::Cluster, cluster.as_str()),
                sort: SortOrder::OldestFirst,
                limit: 64,
                after,
                include_raw: true,
                count: CountMode::None,
            })
            .await
            .map_err(err)?;
        for e in &page.events {
            let original = by_id
                .get(&e.id)
                .ok_or_else(|| format!("unknown event {}", e.id))?;
            if e.raw != original.raw {
                return Err(format!("{} is not byte-exact", e.id));
            }
            exported += 1;
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    if exported != events.len() {
        return Err(format!("{exported} exported of {}", events.len()));
    }
    Ok(())
}

async fn history_of_an_object_in_order(store: Arc<dyn Store>) -> Result<(), String> {
    let cluster = fresh_cluster("history");
    let events = events(&cluster, 9, 600);
    store.write(events.clone()).await.map_err(err)?;
    // The most changed network policy, as the History RPC asks for it.
    let writes = |e: &&IndexedEvent| {
        e.resource == "networkpolicies"
            && matches!(e.verb.as_str(), "create" | "update" | "patch" | "delete")
    };
    let mut changes: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for e in events.iter().filter(writes) {
        *changes
            .entry((e.api_group.clone(), e.namespace.clone(), e.name.clone()))
            .or_default() += 1;
    }
    let Some(((group, namespace, name), _)) = changes.iter().max_by_key(|(_, n)| **n) else {
        return Err("the generated events hold no network policy change".to_owned());
    };
    let query = Query::And(vec![
        Query::eq(Field::ApiGroup, group.as_str()),
        Query::eq(Field::Resource, "networkpolicies"),
        Query::eq(Field::Namespace, namespace.as_str()),
        Query::eq(Field::Name, name.as_str()),
        Query::In(
            Field::Verb,
            ["create", "update", "patch", "delete"]
                .map(|v| Value::Str(v.to_owned()))
                .to_vec(),
        ),
        Query::eq(Field::Stage, "ResponseComplete"),
        Query::Range {
            field: Field::ResponseCode,
            lower: Bound::Included(Value::Int(200)),
            upper: Bound::Excluded(Value::Int(300)),
        },
    ]);
    compare(store.as_ref(), &events, &cluster, query).await
}
