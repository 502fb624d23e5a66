//! The reference semantics of a [`Query`]: evaluated on an
//! [`IndexedEvent`] in memory, as the `auditrail-store` docs define it.

use std::ops::Bound;

use auditrail_store::{Field, IndexedEvent, Query, TermsField, Value};
use jiff::Timestamp;

/// The values of a keyword field (one, or several for multi-valued fields;
/// none when a multi-valued field is empty).
pub(crate) fn keyword_values(field: Field, e: &IndexedEvent) -> Vec<String> {
    let one = |s: &str| vec![s.to_owned()];
    match field {
        Field::Id => one(&e.id.to_hex()),
        Field::Cluster => one(&e.cluster),
        Field::Type => one(e.event_type.as_str()),
        Field::Level => one(e.level.as_str()),
        Field::Stage => one(e.stage.map_or("", |s| s.as_str())),
        Field::AuditId => one(&e.audit_id),
        Field::Verb => one(&e.verb),
        Field::Username => one(&e.username),
        Field::UserGroups => e.user_groups.clone(),
        Field::SourceIps => e.source_ips.clone(),
        Field::Resource => one(&e.resource),
        Field::Namespace => one(&e.namespace),
        Field::ObjectName => one(&e.object_name),
        Field::ApiGroup => one(&e.api_group),
        Field::ApiVersion => one(&e.object_api_version),
        Field::Subresource => one(&e.subresource),
        Field::Name => one(&e.name),
        Field::Kind => one(&e.kind.to_lowercase()),
        Field::RequestUri => one(&e.request_uri),
        Field::ResponseCode
        | Field::DryRun
        | Field::RequestReceived
        | Field::StageTimestamp
        | Field::Time => Vec::new(),
    }
}

/// The value a histogram counts an event under for `field`.
pub(crate) fn terms_value(field: TermsField, e: &IndexedEvent) -> String {
    match field {
        TermsField::Verb => e.verb.clone(),
        TermsField::Resource => e.resource.clone(),
        TermsField::Username => e.username.clone(),
        TermsField::Namespace => e.namespace.clone(),
    }
}

fn time_of(field: Field, e: &IndexedEvent) -> Option<Timestamp> {
    match field {
        Field::RequestReceived => e.request_received,
        Field::StageTimestamp => e.stage_timestamp,
        Field::Time => Some(e.time),
        _ => None,
    }
}

fn eq(field: Field, value: &Value, e: &IndexedEvent) -> bool {
    match value {
        Value::Str(s) => {
            let values = keyword_values(field, e);
            if s.is_empty() {
                values.is_empty() || values.iter().any(String::is_empty)
            } else if field == Field::Kind {
                values.contains(&s.to_lowercase())
            } else {
                values.contains(s)
            }
        }
        Value::Int(i) => field == Field::ResponseCode && e.response_code.map(i64::from) == Some(*i),
        Value::Bool(b) => field == Field::DryRun && e.dry_run == *b,
        Value::Time(t) => time_of(field, e) == Some(*t),
    }
}

fn in_range<T: PartialOrd>(x: &T, lower: &Bound<T>, upper: &Bound<T>) -> bool {
    let above = match lower {
        Bound::Included(l) => x >= l,
        Bound::Excluded(l) => x > l,
        Bound::Unbounded => true,
    };
    let below = match upper {
        Bound::Included(u) => x <= u,
        Bound::Excluded(u) => x < u,
        Bound::Unbounded => true,
    };
    above && below
}

fn bound<T>(b: &Bound<Value>, get: impl Fn(&Value) -> Option<T>) -> Option<Bound<T>> {
    Some(match b {
        Bound::Included(v) => Bound::Included(get(v)?),
        Bound::Excluded(v) => Bound::Excluded(get(v)?),
        Bound::Unbounded => Bound::Unbounded,
    })
}

fn range(field: Field, lower: &Bound<Value>, upper: &Bound<Value>, e: &IndexedEvent) -> bool {
    if field == Field::ResponseCode {
        let int = |v: &Value| match v {
            Value::Int(i) => Some(*i),
            _ => None,
        };
        let (Some(lower), Some(upper)) = (bound(lower, int), bound(upper, int)) else {
            return false;
        };
        return e
            .response_code
            .is_some_and(|c| in_range(&i64::from(c), &lower, &upper));
    }
    let time = |v: &Value| match v {
        Value::Time(t) => Some(*t),
        _ => None,
    };
    let (Some(lower), Some(upper)) = (bound(lower, time), bound(upper, time)) else {
        return false;
    };
    time_of(field, e).is_some_and(|t| in_range(&t, &lower, &upper))
}

/// Whether `e` matches `query`.
pub fn matches(query: &Query, e: &IndexedEvent) -> bool {
    match query {
        Query::All => true,
        Query::Eq(field, value) => eq(*field, value, e),
        Query::In(field, values) => values.iter().any(|v| eq(*field, v, e)),
        Query::Range {
            field,
            lower,
            upper,
        } => range(*field, lower, upper, e),
        Query::Contains(field, needle) => keyword_values(*field, e)
            .iter()
            .any(|v| v.contains(needle.as_str())),
        Query::And(parts) => parts.iter().all(|q| matches(q, e)),
        Query::Or(parts) => parts.iter().any(|q| matches(q, e)),
        Query::Not(inner) => !matches(inner, e),
    }
}
