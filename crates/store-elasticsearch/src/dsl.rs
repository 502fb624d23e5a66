//! The store's [`Query`] value translated to Elasticsearch's query DSL, and
//! the search, count and aggregation bodies built around it.
//!
//! Everything here is a `serde_json::Value` built node by node from the
//! query tree: user input only ever becomes a JSON string value, never query
//! text, so nothing can be injected. No I/O: the translation is tested
//! without a cluster.

use std::ops::Bound;

use auditrail_store::{
    Cursor, Field, HistogramRequest, Query, SortOrder, StoreError, TermsField, Value,
};
use jiff::Timestamp;
use serde_json::{Value as Json, json};

/// How a field is indexed, which decides the values it can be compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Keyword,
    Int,
    Bool,
    Time,
}

/// The Elasticsearch field of a store field, and its kind.
pub(crate) fn es_field(field: Field) -> &'static str {
    match field {
        Field::Id => "id",
        Field::Cluster => "cluster",
        Field::Type => "type",
        Field::Level => "level",
        Field::Stage => "stage",
        Field::AuditId => "auditID",
        Field::Verb => "verb",
        Field::Username => "user.username",
        Field::UserGroups => "user.groups",
        Field::SourceIps => "sourceIPs",
        Field::Resource => "objectRef.resource",
        Field::Namespace => "objectRef.namespace",
        Field::ObjectName => "objectRef.name",
        Field::ApiGroup => "objectRef.apiGroup",
        Field::ApiVersion => "objectRef.apiVersion",
        Field::Subresource => "objectRef.subresource",
        Field::Name => "name",
        Field::Kind => "kind",
        Field::RequestUri => "requestURI",
        Field::ResponseCode => "responseStatus.code",
        Field::DryRun => "dryRun",
        Field::RequestReceived => "requestReceivedTimestamp",
        Field::StageTimestamp => "stageTimestamp",
        Field::Time => "time",
    }
}

fn kind(field: Field) -> Kind {
    match field {
        Field::ResponseCode => Kind::Int,
        Field::DryRun => Kind::Bool,
        Field::RequestReceived | Field::StageTimestamp | Field::Time => Kind::Time,
        _ => Kind::Keyword,
    }
}

/// The Elasticsearch field of a histogram terms field.
pub(crate) fn terms_field(field: TermsField) -> &'static str {
    match field {
        TermsField::Verb => es_field(Field::Verb),
        TermsField::Resource => es_field(Field::Resource),
        TermsField::Username => es_field(Field::Username),
        TermsField::Namespace => es_field(Field::Namespace),
    }
}

fn mismatch(field: Field, value: &Value) -> StoreError {
    let wanted = match kind(field) {
        Kind::Keyword => "a keyword field (string values)",
        Kind::Int => "an integer field",
        Kind::Bool => "a boolean field",
        Kind::Time => "a time field",
    };
    StoreError::InvalidRequest(format!(
        "{field:?} is {wanted}; cannot compare it with {value:?}"
    ))
}

/// A time as Elasticsearch reads it: RFC 3339 in UTC with nanoseconds.
pub(crate) fn time_json(t: Timestamp) -> Json {
    Json::String(t.strftime("%Y-%m-%dT%H:%M:%S%.9fZ").to_string())
}

/// The JSON value `field` is compared with, checked against its kind.
fn term_value(field: Field, value: &Value) -> Result<Json, StoreError> {
    match (kind(field), value) {
        // Kinds are indexed lower-cased (see the mapping).
        (Kind::Keyword, Value::Str(s)) if field == Field::Kind => Ok(json!(s.to_lowercase())),
        (Kind::Keyword, Value::Str(s)) => Ok(json!(s)),
        (Kind::Int, Value::Int(i)) => Ok(json!(i)),
        (Kind::Bool, Value::Bool(b)) => Ok(json!(b)),
        (Kind::Time, Value::Time(t)) => Ok(time_json(*t)),
        _ => Err(mismatch(field, value)),
    }
}

/// Translates `query` to a query DSL node.
pub(crate) fn query(query: &Query) -> Result<Json, StoreError> {
    Ok(match query {
        Query::All => json!({ "match_all": {} }),
        Query::Eq(field, value) => eq(*field, value)?,
        Query::In(field, values) => {
            if values.is_empty() {
                return Ok(json!({ "match_none": {} }));
            }
            let any_empty = values
                .iter()
                .any(|v| matches!(v, Value::Str(s) if s.is_empty()));
            let values = values
                .iter()
                .map(|v| term_value(*field, v))
                .collect::<Result<Vec<_>, _>>()?;
            let terms = json!({ "terms": { es_field(*field): values } });
            if any_empty {
                json!({ "bool": { "should": [terms, missing(*field)], "minimum_should_match": 1 } })
            } else {
                terms
            }
        }
        Query::Range {
            field,
            lower,
            upper,
        } => range(*field, lower, upper)?,
        Query::Contains(field, needle) => {
            if kind(*field) != Kind::Keyword {
                return Err(mismatch(*field, &Value::Str(needle.clone())));
            }
            json!({ "wildcard": { es_field(*field): { "value": format!("*{}*", escape_wildcard(needle)) } } })
        }
        Query::And(parts) => {
            let parts = parts
                .iter()
                .map(self::query)
                .collect::<Result<Vec<_>, _>>()?;
            json!({ "bool": { "filter": parts } })
        }
        Query::Or(parts) => {
            if parts.is_empty() {
                return Ok(json!({ "match_none": {} }));
            }
            let parts = parts
                .iter()
                .map(self::query)
                .collect::<Result<Vec<_>, _>>()?;
            json!({ "bool": { "should": parts, "minimum_should_match": 1 } })
        }
        Query::Not(inner) => json!({ "bool": { "must_not": [self::query(inner)?] } }),
    })
}

/// `field == value`; for keyword fields `""` also matches a missing field.
fn eq(field: Field, value: &Value) -> Result<Json, StoreError> {
    let term = json!({ "term": { es_field(field): term_value(field, value)? } });
    Ok(match value {
        Value::Str(s) if s.is_empty() => {
            json!({ "bool": { "should": [term, missing(field)], "minimum_should_match": 1 } })
        }
        _ => term,
    })
}

fn missing(field: Field) -> Json {
    json!({ "bool": { "must_not": [{ "exists": { "field": es_field(field) } }] } })
}

fn range(field: Field, lower: &Bound<Value>, upper: &Bound<Value>) -> Result<Json, StoreError> {
    if !matches!(kind(field), Kind::Int | Kind::Time) {
        let value = match (lower, upper) {
            (Bound::Included(v) | Bound::Excluded(v), _)
            | (_, Bound::Included(v) | Bound::Excluded(v)) => v.clone(),
            _ => Value::Str(String::new()),
        };
        return Err(StoreError::InvalidRequest(format!(
            "{field:?} cannot be compared by range (only integer and time fields can); got {value:?}"
        )));
    }
    let mut bounds = serde_json::Map::new();
    for (bound, included, excluded) in [(lower, "gte", "gt"), (upper, "lte", "lt")] {
        match bound {
            Bound::Included(v) => {
                bounds.insert(included.to_owned(), term_value(field, &in_date_nanos(v))?);
            }
            Bound::Excluded(v) => {
                bounds.insert(excluded.to_owned(), term_value(field, &in_date_nanos(v))?);
            }
            Bound::Unbounded => {}
        }
    }
    if bounds.is_empty() {
        return Ok(json!({ "exists": { "field": es_field(field) } }));
    }
    Ok(json!({ "range": { es_field(field): bounds } }))
}

/// A time bound moved into what `date_nanos` holds (1970-01-01 to
/// 2262-04-11): Elasticsearch refuses a range bound outside it with a 400,
/// and no stored event lies beyond it, so `from=1900-01-01` means "from
/// the start". Other values are returned as they are.
fn in_date_nanos(value: &Value) -> Value {
    let Value::Time(t) = value else {
        return value.clone();
    };
    Value::Time((*t).clamp(Timestamp::UNIX_EPOCH, crate::mapping::date_nanos_max()))
}

/// Escapes the wildcard query's special characters.
fn escape_wildcard(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if matches!(c, '\\' | '*' | '?') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The sort of a search: time, then id, both in the order's direction.
pub(crate) fn sort(order: SortOrder) -> Json {
    let direction = match order {
        SortOrder::NewestFirst => "desc",
        SortOrder::OldestFirst => "asc",
    };
    json!([
        { "time": { "order": direction, "format": "strict_date_optional_time_nanos" } },
        { "id": { "order": direction } }
    ])
}

/// The `search_after` values of a cursor (the sort values of the last hit).
pub(crate) fn search_after(cursor: &Cursor) -> Json {
    json!([time_json(cursor.time), cursor.id.to_hex()])
}

/// The `_source` fields a search returns.
pub(crate) fn source_fields(include_raw: bool) -> Json {
    if include_raw {
        json!(["id", "cluster", "type", "time", "provenance", "raw"])
    } else {
        json!(["id", "cluster", "type", "time", "provenance"])
    }
}

/// The body of a search for one page (`size` hits, one more than the page
/// tells whether another page follows).
pub(crate) fn search_body(
    query: &Json,
    order: SortOrder,
    size: usize,
    after: Option<&Cursor>,
    include_raw: bool,
    track_total_hits: &Json,
) -> Json {
    let mut body = json!({
        "query": query,
        "sort": sort(order),
        "size": size,
        "_source": source_fields(include_raw),
        "track_total_hits": track_total_hits,
    });
    if let Some(after) = after {
        body["search_after"] = search_after(after);
    }
    body
}

/// Largest number of distinct values asked from a terms aggregation when
/// computing the top values and the sum of the others exactly.
pub(crate) const TERMS_SIZE: usize = 10_000;

/// The body of a histogram: a date histogram on `time` with a fixed
/// interval in milliseconds (buckets aligned to the epoch, empty ones left
/// out) and one terms aggregation per requested field.
pub(crate) fn histogram_body(request: &HistogramRequest, query: &Json) -> Json {
    let interval_ms = request.interval.as_millis().max(1);
    let mut aggs = serde_json::Map::new();
    aggs.insert(
        "buckets".to_owned(),
        json!({ "date_histogram": {
            "field": "time",
            "fixed_interval": format!("{interval_ms}ms"),
            "min_doc_count": 1,
        } }),
    );
    for field in &request.terms {
        aggs.insert(
            terms_field(*field).to_owned(),
            json!({ "terms": { "field": terms_field(*field), "size": TERMS_SIZE, "missing": "" } }),
        );
    }
    json!({ "size": 0, "track_total_hits": true, "query": query, "aggs": aggs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditrail_store::Query;

    #[test]
    fn filters_become_bool_filters_of_terms_and_ranges() {
        let t = Timestamp::from_second(1_767_225_600).unwrap();
        let q = Query::And(vec![
            Query::eq(Field::Verb, "delete"),
            Query::eq(Field::Kind, "NetworkPolicy"),
            Query::In(Field::ResponseCode, vec![Value::Int(200), Value::Int(201)]),
            Query::time_range(Some(t), None),
            Query::Not(Box::new(Query::Eq(Field::DryRun, Value::Bool(true)))),
        ]);
        assert_eq!(
            query(&q).unwrap(),
            json!({ "bool": { "filter": [
                { "term": { "verb": "delete" } },
                { "term": { "kind": "networkpolicy" } },
                { "terms": { "responseStatus.code": [200, 201] } },
                { "range": { "time": { "gte": "2026-01-01T00:00:00.000000000Z" } } },
                { "bool": { "must_not": [{ "term": { "dryRun": true } }] } },
            ] } })
        );
    }

    #[test]
    fn empty_keyword_values_also_match_missing_fields() {
        assert_eq!(
            query(&Query::eq(Field::Namespace, "")).unwrap(),
            json!({ "bool": { "should": [
                { "term": { "objectRef.namespace": "" } },
                { "bool": { "must_not": [{ "exists": { "field": "objectRef.namespace" } }] } },
            ], "minimum_should_match": 1 } })
        );
    }

    #[test]
    fn user_input_stays_a_value() {
        let q = Query::Contains(Field::RequestUri, "dry*Run\" OR 1".to_owned());
        assert_eq!(
            query(&q).unwrap(),
            json!({ "wildcard": { "requestURI": { "value": "*dry\\*Run\" OR 1*" } } })
        );
    }

    #[test]
    fn mismatched_values_are_invalid_requests() {
        for bad in [
            Query::Eq(Field::Verb, Value::Int(1)),
            Query::Eq(Field::ResponseCode, Value::Str("200".into())),
            Query::Range {
                field: Field::Verb,
                lower: Bound::Included(Value::Str("a".into())),
                upper: Bound::Unbounded,
            },
            Query::Contains(Field::ResponseCode, "2".into()),
        ] {
            assert!(
                matches!(query(&bad), Err(StoreError::InvalidRequest(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            query(&Query::Or(vec![])).unwrap(),
            json!({ "match_none": {} })
        );
        assert_eq!(
            query(&Query::In(Field::Verb, vec![])).unwrap(),
            json!({ "match_none": {} })
        );
    }

    #[test]
    fn pages_sort_by_time_then_id_and_continue_after_the_cursor() {
        let cursor = Cursor {
            time: Timestamp::from_microsecond(1_767_225_600_123_456).unwrap(),
            id: auditrail_event::EventId::from_bytes([0xab; 32]),
        };
        let body = search_body(
            &json!({ "match_all": {} }),
            SortOrder::NewestFirst,
            101,
            Some(&cursor),
            false,
            &json!(10_000),
        );
        assert_eq!(body["sort"][0]["time"]["order"], "desc");
        assert_eq!(body["sort"][1]["id"]["order"], "desc");
        assert_eq!(
            body["search_after"],
            json!(["2026-01-01T00:00:00.123456000Z", "ab".repeat(32)])
        );
        assert_eq!(body["size"], 101);
        assert_eq!(
            body["_source"],
            json!(["id", "cluster", "type", "time", "provenance"])
        );
    }

    #[test]
    fn time_bounds_outside_date_nanos_are_clamped() {
        let t = |s: &str| Value::Time(s.parse().expect("time"));
        let q = query(&Query::Range {
            field: Field::Time,
            lower: Bound::Included(t("1900-01-01T00:00:00Z")),
            upper: Bound::Excluded(t("3000-01-01T00:00:00Z")),
        })
        .expect("a range");
        assert_eq!(q["range"]["time"]["gte"], "1970-01-01T00:00:00.000000000Z");
        assert_eq!(q["range"]["time"]["lt"], "2262-04-11T23:47:16.854775807Z");
        let inside = query(&Query::Range {
            field: Field::Time,
            lower: Bound::Included(t("2026-01-01T00:00:00Z")),
            upper: Bound::Unbounded,
        })
        .expect("a range");
        assert_eq!(
            inside["range"]["time"]["gte"],
            "2026-01-01T00:00:00.000000000Z"
        );
    }
}
