//! `History` (the versions of one resource) and `Diff` (two versions).
//!
//! A version is a successful (2xx) create, update, patch or delete at stage
//! `ResponseComplete` that was not a dry run: exactly the events that changed
//! the resource. Its
//! object comes from `auditrail-versions`; a delete that answered a
//! `Status` takes the object of the version before it, looked up in the
//! store when it is not on the same page.

use crate::error::QueryError;
use auditrail_event::EventId;
use auditrail_proto::{timestamp, v1};
use auditrail_store::{
    CountMode, Cursor, Field, Query, SearchRequest, SortOrder, Store, StoredEvent, Value,
};
use auditrail_versions::{Version, VersionError, diff_objects, version_of};
use jiff::Timestamp;
use serde_json::Value as Json;
use std::ops::Bound;

use crate::filter::{fingerprint, resolve_range};
use crate::page_size;
use crate::token::PageToken;
use auditrail_server::echo;

/// The verbs that change a resource.
const WRITE_VERBS: [&str; 4] = ["create", "update", "patch", "delete"];
/// Most context lines of a diff.
const MAX_CONTEXT: u32 = 1000;

fn version_status(id: &EventId, e: &VersionError) -> QueryError {
    QueryError::internal(format!("stored event {id} cannot be read: {e}"))
}

/// Which resource, in which cluster.
struct Target<'a> {
    cluster: &'a str,
    /// `None`: any group.
    api_group: Option<&'a str>,
    resource: &'a str,
    /// `None`: cluster-scoped, whatever namespace the events carry.
    namespace: Option<&'a str>,
    name: &'a str,
}

/// The events that are versions of `target`.
fn versions_query(target: &Target<'_>) -> Query {
    let mut all = vec![Query::eq(Field::Cluster, target.cluster)];
    if let Some(group) = target.api_group {
        all.push(Query::eq(Field::ApiGroup, group));
    }
    if let Some(namespace) = target.namespace {
        all.push(Query::eq(Field::Namespace, namespace));
    }
    all.extend([
        Query::eq(Field::Resource, target.resource),
        Query::eq(Field::Name, target.name),
        Query::eq(Field::Subresource, ""),
        Query::eq(Field::Stage, "ResponseComplete"),
        // A dry run changed nothing.
        Query::Eq(Field::DryRun, Value::Bool(false)),
        Query::In(
            Field::Verb,
            WRITE_VERBS
                .iter()
                .map(|v| Value::Str((*v).to_owned()))
                .collect(),
        ),
        Query::Range {
            field: Field::ResponseCode,
            lower: Bound::Included(Value::Int(200)),
            upper: Bound::Excluded(Value::Int(300)),
        },
    ]);
    Query::And(all)
}

/// The single cluster of the store's trail (access records, kept under a
/// cluster name of their own, do not count), when the request names none.
async fn only_cluster(store: &dyn Store) -> Result<Option<String>, QueryError> {
    let mut clusters: Vec<String> = store
        .stats()
        .await
        .map_err(QueryError::from)?
        .into_iter()
        .filter(|s| s.event_type != auditrail_event::EventType::Access)
        .map(|s| s.cluster)
        .collect();
    clusters.dedup();
    match clusters.len() {
        0 | 1 => Ok(clusters.pop()),
        n => Err(QueryError::invalid(format!(
            "the store holds {n} clusters ({}); name one in `cluster`",
            clusters.join(", ")
        ))),
    }
}

/// The object of the version just before `cursor` (for a delete that
/// carried none): the newest earlier version that has one.
async fn object_before(
    store: &dyn Store,
    query: &Query,
    cursor: Cursor,
) -> Result<Option<Json>, QueryError> {
    let page = store
        .search(SearchRequest {
            query: query.clone(),
            sort: SortOrder::NewestFirst,
            limit: 10,
            after: Some(cursor),
            include_raw: true,
            count: CountMode::None,
        })
        .await
        .map_err(QueryError::from)?;
    for event in page.events {
        let version = version_of(&event.raw).map_err(|e| version_status(&event.id, &e))?;
        if version.object.is_some() {
            return Ok(version.object);
        }
    }
    Ok(None)
}

fn resource_version(id: &EventId, version: &Version, object: Option<&Json>) -> v1::ResourceVersion {
    let metadata = |key: &str| {
        object
            .and_then(|o| o.get("metadata"))
            .and_then(|m| m.get(key))
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    v1::ResourceVersion {
        event_id: id.to_hex(),
        time: version.time.map(timestamp),
        user: version.user.clone(),
        verb: version.verb.clone(),
        resource_version: metadata("resourceVersion"),
        response_code: version.response_code.unwrap_or(0),
        object: object
            .map(|o| serde_json::to_vec(o).unwrap_or_default())
            .unwrap_or_default(),
        deleted: version.deleted,
        uid: metadata("uid"),
        kind: version.kind.clone(),
    }
}

/// The resource a history request names, resolved like a kind filter.
struct Resource {
    plural: String,
    /// `None`: any group; `Some("")`: the core group.
    group: Option<String>,
    kind: String,
    /// `None` when the table does not know the resource.
    namespaced: Option<bool>,
}

fn resolve_resource(name: &str, group: &str) -> Resource {
    let group = match group {
        "" => None,
        "core" => Some(String::new()),
        g => Some(g.to_owned()),
    };
    let with_group = match &group {
        Some(g) if !g.is_empty() => format!("{name}.{g}"),
        _ => name.to_owned(),
    };
    match auditrail_event::resource::resolve_kind(&with_group) {
        Some(k) => {
            // A kind served under two plurals is rare; history follows one
            // object, so it takes the first.
            let plural = k.resources.first().copied().unwrap_or_default();
            let group = k.group.or(group);
            Resource {
                plural: plural.to_owned(),
                namespaced: auditrail_event::resource::namespaced(plural, group.as_deref()),
                kind: k.kind.to_owned(),
                group,
            }
        }
        // Taken as a resource name, as `Filter.kinds` takes it.
        None => Resource {
            plural: name.to_ascii_lowercase(),
            kind: name.to_ascii_lowercase(),
            namespaced: None,
            group,
        },
    }
}

/// The namespace condition of a history request: refused where it cannot
/// name the object (a namespace on a cluster-scoped resource, none on a
/// namespaced one), so that a mistake never answers "no versions".
fn namespace_condition<'a>(
    resource: &Resource,
    namespace: &'a str,
    name: &str,
) -> Result<Option<&'a str>, QueryError> {
    match (resource.namespaced, namespace.is_empty()) {
        (Some(false), false) => Err(QueryError::invalid(format!(
            "{} are cluster-scoped: name the object without a namespace ({}, not {})",
            resource.plural,
            echo(name),
            echo(&format!("{namespace}/{name}"))
        ))),
        (Some(false), true) => Ok(None),
        (Some(true), true) => Err(QueryError::invalid(format!(
            "{} are namespaced: name the object with its namespace (NAMESPACE/{})",
            resource.plural,
            echo(name).trim_matches('"')
        ))),
        _ => Ok(Some(namespace)),
    }
}

pub(crate) async fn history(
    store: &dyn Store,
    request: v1::HistoryRequest,
    now: Timestamp,
    caller: &auditrail_server::Caller,
) -> Result<v1::HistoryResponse, QueryError> {
    if request.resource.trim().is_empty() || request.name.is_empty() {
        return Err(QueryError::invalid("resource and name are required"));
    }
    let resource = resolve_resource(request.resource.trim(), &request.api_group);
    let namespace = namespace_condition(&resource, &request.namespace, &request.name)?;
    let limit = page_size(request.page_size)?;
    let print = fingerprint(&[&v1::HistoryRequest {
        page_size: 0,
        page_token: String::new(),
        ..request.clone()
    }]);
    let searched = |cluster: &str| v1::HistoryResponse {
        cluster: cluster.to_owned(),
        resource: resource.plural.clone(),
        api_group: resource.group.clone().unwrap_or_default(),
        kind: resource.kind.clone(),
        ..v1::HistoryResponse::default()
    };
    let cluster = if request.cluster.is_empty() {
        match only_cluster(store).await? {
            Some(c) => c,
            None => return Ok(searched("")),
        }
    } else {
        request.cluster.clone()
    };
    crate::scope::check_cluster(caller, &cluster)?;
    let (from, to, after) = if request.page_token.is_empty() {
        let (from, to) =
            resolve_range(&request.from, &request.to, now).map_err(QueryError::from)?;
        (from, to, None)
    } else {
        let token = PageToken::decode(&request.page_token, print).map_err(QueryError::from)?;
        (token.from, token.to, Some(token.after))
    };
    let versions = Query::And(vec![
        versions_query(&Target {
            cluster: &cluster,
            api_group: resource.group.as_deref(),
            resource: &resource.plural,
            namespace,
            name: &request.name,
        }),
        crate::scope::within(caller),
    ]);
    let page = store
        .search(SearchRequest {
            query: Query::And(vec![versions.clone(), Query::time_range(from, Some(to))]),
            sort: SortOrder::OldestFirst,
            limit,
            after,
            include_raw: true,
            count: CountMode::None,
        })
        .await
        .map_err(QueryError::from)?;
    let mut out = Vec::with_capacity(page.events.len());
    let mut previous: Option<Json> = None;
    for event in &page.events {
        let version = version_of(&event.raw).map_err(|e| version_status(&event.id, &e))?;
        let object = match (&version.object, version.deleted) {
            (Some(o), _) => Some(o.clone()),
            (None, true) => match previous.clone() {
                Some(o) => Some(o),
                None => object_before(store, &versions, cursor(event)).await?,
            },
            (None, false) => None,
        };
        out.push(resource_version(&event.id, &version, object.as_ref()));
        previous = object;
    }
    let next_page_token = PageToken::next_page(print, from, to, page.next);
    Ok(v1::HistoryResponse {
        versions: out,
        next_page_token,
        ..searched(&cluster)
    })
}

fn cursor(event: &StoredEvent) -> Cursor {
    Cursor {
        time: event.time,
        id: event.id,
    }
}

async fn event(store: &dyn Store, text: &str, side: &str) -> Result<StoredEvent, QueryError> {
    if text.is_empty() {
        return Err(QueryError::invalid(format!("{side} is required")));
    }
    let id: EventId = text.parse().map_err(|_| {
        QueryError::invalid(format!(
            "{side} {} is not an event id (64 hex digits)",
            echo(text)
        ))
    })?;
    store
        .get(&id)
        .await
        .map_err(QueryError::from)?
        .ok_or_else(|| QueryError::not_found(format!("no event with id {text}")))
}

/// A version with its object, for a diff: a delete without an object takes
/// the previous version's.
async fn diff_side(
    store: &dyn Store,
    event: &StoredEvent,
) -> Result<(Version, Option<Json>), QueryError> {
    let version = version_of(&event.raw).map_err(|e| version_status(&event.id, &e))?;
    let object = match (&version.object, version.deleted) {
        (Some(o), _) => Some(o.clone()),
        (None, true) => {
            let query = versions_query(&Target {
                cluster: &event.cluster,
                api_group: Some(&version.key.api_group),
                resource: &version.key.resource,
                namespace: (!auditrail_event::resource::is_cluster_scoped(
                    &version.key.resource,
                    &version.key.api_group,
                ))
                .then_some(version.key.namespace.as_str()),
                name: &version.key.name,
            });
            object_before(store, &query, cursor(event)).await?
        }
        (None, false) => None,
    };
    Ok((version, object))
}

/// One event by id, when the caller may read it.
pub(crate) async fn get_event(
    store: &dyn Store,
    id: &str,
    caller: &auditrail_server::Caller,
) -> Result<v1::GetEventResponse, QueryError> {
    let stored = event(store, id, "id").await?;
    crate::scope::check_event(caller, &stored.cluster, stored.event_type.as_str())?;
    Ok(v1::GetEventResponse {
        event: Some(crate::convert::audit_event(stored, true)?),
    })
}

pub(crate) async fn diff(
    store: &dyn Store,
    request: v1::DiffRequest,
    caller: &auditrail_server::Caller,
) -> Result<v1::DiffResponse, QueryError> {
    let context = request.context_lines.unwrap_or(3);
    if context > MAX_CONTEXT {
        return Err(QueryError::invalid(format!(
            "context_lines {context} is above the maximum of {MAX_CONTEXT}"
        )));
    }
    let from_event = event(store, &request.from_event_id, "from_event_id").await?;
    let to_event = event(store, &request.to_event_id, "to_event_id").await?;
    for event in [&from_event, &to_event] {
        crate::scope::check_event(caller, &event.cluster, event.event_type.as_str())?;
    }
    let (from, from_object) = diff_side(store, &from_event).await?;
    let (to, to_object) = diff_side(store, &to_event).await?;
    for (version, id) in [(&from, &request.from_event_id), (&to, &request.to_event_id)] {
        if let Some(error) = &version.object_error {
            return Err(QueryError::not_applicable(format!(
                "event {id} cannot be compared: {error}"
            )));
        }
        if !version.is_version {
            return Err(QueryError::not_applicable(format!(
                "event {id} is not a version of its object ({}); versions are successful \
                 creates, updates, patches and deletes of the object itself, as `history` lists",
                version.summary
            )));
        }
    }
    if from_event.cluster != to_event.cluster || from.key != to.key {
        return Err(QueryError::not_applicable(format!(
            "the events are about different resources: {}/{} {}/{} in {} and {}/{} {}/{} in {}",
            from.key.api_group,
            from.key.resource,
            from.key.namespace,
            from.key.name,
            from_event.cluster,
            to.key.api_group,
            to.key.resource,
            to.key.namespace,
            to.key.name,
            to_event.cluster
        )));
    }
    let missing = |id: &str| {
        QueryError::not_applicable(format!(
            "event {id} carries no object (it was logged below level RequestResponse, or is \
             not a successful write)"
        ))
    };
    let left = from_object
        .as_ref()
        .ok_or_else(|| missing(&request.from_event_id))?;
    let right = to_object
        .as_ref()
        .ok_or_else(|| missing(&request.to_event_id))?;
    let diff = diff_objects(
        left,
        right,
        request.ignore_noisy_metadata,
        context as usize,
        &request.from_event_id,
        &request.to_event_id,
    )
    .map_err(|e| QueryError::internal(e.to_string()))?;
    Ok(v1::DiffResponse {
        unified_diff: diff.unified,
        from: Some(resource_version(&from_event.id, &from, Some(left))),
        to: Some(resource_version(&to_event.id, &to, Some(right))),
        identical: diff.identical,
    })
}
