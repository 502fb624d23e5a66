//! What the caller may read. The auth layer of the server decides whether
//! a caller may read at all and over which clusters and event types
//! ([`Caller`]); here every query is narrowed to that scope, so totals,
//! histograms, pages, exports and histories never count or show what the
//! caller may not read, and a filter that asks for a cluster or type
//! outside it is refused by name rather than answered empty.

use auditrail_proto::v1;
use auditrail_server::Caller;
use auditrail_store::{Field, Query, Value};

use crate::error::QueryError;

/// `query` narrowed to what `caller` may `verb` (read, export), after
/// refusing a `filter` that names a cluster or type outside it.
pub(crate) fn restrict(
    query: Query,
    filter: &v1::Filter,
    caller: &Caller,
    verb: &str,
) -> Result<Query, QueryError> {
    if filter.r#type == v1::TypeFilter::Access as i32 {
        // Access records are their own permission, over every cluster;
        // the filter already holds the query to them.
        return if caller.read_access {
            Ok(query)
        } else {
            Err(QueryError::Forbidden(format!(
                "{} may not {verb} access records: it needs the permission read_access",
                caller.identity.name
            )))
        };
    }
    let scope = &caller.scope;
    if scope.is_all() {
        return Ok(query);
    }
    if let Some(cluster) = filter.clusters.iter().find(|c| !scope.allows_cluster(c)) {
        return Err(denied(caller, verb, &format!("cluster {cluster:?}")));
    }
    let asked = match v1::TypeFilter::try_from(filter.r#type) {
        Ok(v1::TypeFilter::Kube) => Some("kube"),
        Ok(v1::TypeFilter::Ee) => Some("ee"),
        _ => None,
    };
    if let Some(t) = asked.filter(|t| !scope.allows_type(t)) {
        return Err(denied(caller, verb, &format!("events of type {t}")));
    }
    Ok(Query::And(vec![query, within(caller)]))
}

/// The query of every event of the trail (kube and ee, never access
/// records) that `caller`'s scope reaches.
pub(crate) fn within(caller: &Caller) -> Query {
    let values = |set: &std::collections::BTreeSet<String>| {
        set.iter()
            .map(|v| Value::Str(v.clone()))
            .collect::<Vec<_>>()
    };
    let mut all = Vec::new();
    if let Some(clusters) = &caller.scope.clusters {
        all.push(Query::In(Field::Cluster, values(clusters)));
    }
    match &caller.scope.types {
        Some(types) => all.push(Query::In(Field::Type, values(types))),
        None => all.push(Query::In(
            Field::Type,
            vec![Value::Str("kube".to_owned()), Value::Str("ee".to_owned())],
        )),
    }
    Query::And(all)
}

/// Refuses `cluster` when the caller may not read it.
pub(crate) fn check_cluster(caller: &Caller, cluster: &str) -> Result<(), QueryError> {
    if caller.scope.allows_cluster(cluster) {
        Ok(())
    } else {
        Err(denied(caller, "read", &format!("cluster {cluster:?}")))
    }
}

/// Refuses an event the caller may not read.
pub(crate) fn check_event(
    caller: &Caller,
    cluster: &str,
    event_type: &str,
) -> Result<(), QueryError> {
    if event_type == "access" {
        return if caller.read_access {
            Ok(())
        } else {
            Err(QueryError::Forbidden(format!(
                "{} may not read access records: it needs the permission read_access",
                caller.identity.name
            )))
        };
    }
    check_cluster(caller, cluster)?;
    if caller.scope.allows_type(event_type) {
        Ok(())
    } else {
        Err(denied(
            caller,
            "read",
            &format!("events of type {event_type}"),
        ))
    }
}

fn denied(caller: &Caller, verb: &str, what: &str) -> QueryError {
    QueryError::Forbidden(format!(
        "{} may not {verb} {what}: its permission {verb} does not reach it",
        caller.identity.name
    ))
}
