//! Translation of the backend-neutral [`Query`] into a tantivy query.
//!
//! The translation is structural (a query value in, a query object out; no
//! query strings) and checks types: a value of the wrong kind for its field,
//! a range on a keyword, or a substring search on a field that does not allow
//! one is an [`StoreError::InvalidRequest`] that names the field, so a caller's
//! mistake never silently matches nothing.
//!
//! - Keyword `Eq`/`In` are term and term-set queries; `""` finds the empty or
//!   absent value (indexed explicitly as `""`, see the schema).
//! - `ResponseCode` is an indexed and fast `i64`; an event without a response
//!   code has no value and matches no comparison.
//! - Times compare through their fast column (tantivy indexes date terms at
//!   second precision only). Stored times are whole microseconds, so a bound
//!   with a sub-microsecond part is rounded in the direction that keeps the
//!   comparison exact for every stored value.
//! - `Contains` is a regular expression over the term dictionary
//!   (`(?s).*<escaped>.*`), case-sensitive, allowed on `RequestUri`,
//!   `Username`, `Name` and `Namespace` only: it visits every distinct value of
//!   the field, which is acceptable for those and not meant to spread.
//! - `And([])` matches everything and `Or([])` nothing (the identities of the
//!   operations); `Not(q)` is "all but q".

use std::collections::BTreeSet;
use std::ops::Bound;

use auditrail_event::EventId;
use auditrail_store::{Field, Query, StoreError, Value};
use jiff::Timestamp;
use tantivy::Term;
use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, Occur, Query as TQuery, RangeQuery, RegexQuery, TermQuery,
    TermSetQuery,
};
use tantivy::schema::{Field as TField, IndexRecordOption};

use crate::schema::{ceil_micros, date, fields, floor_micros};

/// How a [`Field`] is indexed.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Raw keyword; `contains` says whether substring search is allowed.
    Keyword {
        field: TField,
        contains: bool,
    },
    /// The event id, compared with hex strings (see [`id_query`]).
    Id,
    Int(TField),
    Bool(TField),
    Time(TField),
}

fn kind(field: Field) -> Kind {
    let f = fields();
    let kw = |field| Kind::Keyword {
        field,
        contains: false,
    };
    let kw_contains = |field| Kind::Keyword {
        field,
        contains: true,
    };
    match field {
        Field::Id => Kind::Id,
        Field::Cluster => kw(f.cluster),
        Field::Type => kw(f.event_type),
        Field::Level => kw(f.level),
        Field::Stage => kw(f.stage),
        Field::AuditId => kw(f.audit_id),
        Field::Verb => kw(f.verb),
        Field::Username => kw_contains(f.username),
        Field::UserGroups => kw(f.user_groups),
        Field::SourceIps => kw(f.source_ips),
        Field::Resource => kw(f.resource),
        Field::Namespace => kw_contains(f.namespace),
        Field::ObjectName => kw(f.object_name),
        Field::ApiGroup => kw(f.api_group),
        Field::ApiVersion => kw(f.object_api_version),
        Field::Subresource => kw(f.subresource),
        Field::Name => kw_contains(f.name),
        Field::Kind => kw(f.kind),
        Field::RequestUri => kw_contains(f.request_uri),
        Field::ResponseCode => Kind::Int(f.response_code),
        Field::DryRun => Kind::Bool(f.dry_run),
        Field::RequestReceived => Kind::Time(f.request_received),
        Field::StageTimestamp => Kind::Time(f.stage_timestamp),
        Field::Time => Kind::Time(f.time),
    }
}

fn value_kind(value: &Value) -> &'static str {
    match value {
        Value::Str(_) => "a string",
        Value::Int(_) => "an integer",
        Value::Bool(_) => "a boolean",
        Value::Time(_) => "a time",
    }
}

fn field_kind(kind: Kind) -> &'static str {
    match kind {
        Kind::Keyword { .. } => "a keyword field (string values)",
        Kind::Id => "the event id (64 hex digits)",
        Kind::Int(_) => "an integer field",
        Kind::Bool(_) => "a boolean field",
        Kind::Time(_) => "a time field",
    }
}

fn mismatch(field: Field, kind: Kind, value: &Value) -> StoreError {
    StoreError::InvalidRequest(format!(
        "{field:?} is {}; cannot compare it with {} ({value:?})",
        field_kind(kind),
        value_kind(value)
    ))
}

/// The term a keyword, id, integer or boolean field is compared with.
fn term(field: Field, kind: Kind, value: &Value) -> Result<Term, StoreError> {
    match (kind, value) {
        // Kinds are indexed lower-cased (see the schema).
        (Kind::Keyword { field: tfield, .. }, Value::Str(s)) if field == Field::Kind => {
            Ok(Term::from_field_text(tfield, &s.to_lowercase()))
        }
        (Kind::Keyword { field, .. }, Value::Str(s)) => Ok(Term::from_field_text(field, s)),
        (Kind::Int(f), Value::Int(i)) => Ok(Term::from_field_i64(f, *i)),
        (Kind::Bool(f), Value::Bool(b)) => Ok(Term::from_field_bool(f, *b)),
        _ => Err(mismatch(field, kind, value)),
    }
}

fn time_value(field: Field, kind: Kind, value: &Value) -> Result<Timestamp, StoreError> {
    match value {
        Value::Time(t) => Ok(*t),
        other => Err(mismatch(field, kind, other)),
    }
}

/// A range over a time field's fast column, with the bounds rounded to whole
/// microseconds so that the comparison is exact for stored values.
fn time_range(
    field: Field,
    kind: Kind,
    tfield: TField,
    lower: &Bound<Value>,
    upper: &Bound<Value>,
) -> Result<Box<dyn TQuery>, StoreError> {
    // Stored values are integers x (µs): x >= b ⟺ x >= ceil(b); x > b ⟺
    // x > floor(b); x <= b ⟺ x <= floor(b); x < b ⟺ x < ceil(b).
    let lower = match lower {
        Bound::Included(v) => Bound::Included(ceil_micros(time_value(field, kind, v)?)),
        Bound::Excluded(v) => Bound::Excluded(floor_micros(time_value(field, kind, v)?)),
        Bound::Unbounded => Bound::Unbounded,
    };
    let upper = match upper {
        Bound::Included(v) => Bound::Included(floor_micros(time_value(field, kind, v)?)),
        Bound::Excluded(v) => Bound::Excluded(ceil_micros(time_value(field, kind, v)?)),
        Bound::Unbounded => Bound::Unbounded,
    };
    Ok(micros_range(tfield, lower, upper))
}

/// A range query over a date field's fast column, in microseconds. An
/// unbounded side becomes the extreme value (tantivy needs one bound; the
/// extremes keep "has a value" semantics).
pub(crate) fn micros_range(field: TField, lower: Bound<i64>, upper: Bound<i64>) -> Box<dyn TQuery> {
    let lower = match lower {
        Bound::Unbounded => Bound::Included(i64::MIN),
        b => b,
    };
    let upper = match upper {
        Bound::Unbounded => Bound::Included(i64::MAX),
        b => b,
    };
    let term = |micros| Term::from_field_date(field, date(micros));
    Box::new(RangeQuery::new(lower.map(term), upper.map(term)))
}

fn int_range(
    field: Field,
    kind: Kind,
    tfield: TField,
    lower: &Bound<Value>,
    upper: &Bound<Value>,
) -> Result<Box<dyn TQuery>, StoreError> {
    let int = |v: &Value| match v {
        Value::Int(i) => Ok(*i),
        other => Err(mismatch(field, kind, other)),
    };
    let lower = match lower {
        Bound::Included(v) => Bound::Included(int(v)?),
        Bound::Excluded(v) => Bound::Excluded(int(v)?),
        Bound::Unbounded => Bound::Included(i64::MIN),
    };
    let upper = match upper {
        Bound::Included(v) => Bound::Included(int(v)?),
        Bound::Excluded(v) => Bound::Excluded(int(v)?),
        Bound::Unbounded => Bound::Included(i64::MAX),
    };
    let term = |i| Term::from_field_i64(tfield, i);
    Ok(Box::new(RangeQuery::new(lower.map(term), upper.map(term))))
}

/// Escapes every regular-expression meta character (the set `regex-syntax`,
/// which tantivy's regex automaton is built with, treats as meta).
fn escape_regex(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '.'
                | '+'
                | '*'
                | '?'
                | '('
                | ')'
                | '|'
                | '['
                | ']'
                | '{'
                | '}'
                | '^'
                | '$'
                | '#'
                | '&'
                | '-'
                | '~'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The query for one event id: the indexed first 8 bytes, then the other
/// 24 on their fast columns. A string that is not an id matches nothing.
fn id_query(field: Field, value: &Value) -> Result<Box<dyn TQuery>, StoreError> {
    let Value::Str(hex) = value else {
        return Err(mismatch(field, kind(field), value));
    };
    let Ok(id) = hex.parse::<EventId>() else {
        return Ok(Box::new(EmptyQuery));
    };
    let f = fields();
    let parts = crate::schema::id_parts(&id);
    let mut all: Vec<Box<dyn TQuery>> = vec![Box::new(TermQuery::new(
        Term::from_field_u64(f.id_parts[0], parts[0]),
        IndexRecordOption::Basic,
    ))];
    for (column, part) in f.id_parts.iter().zip(parts).skip(1) {
        let exact = Bound::Included(Term::from_field_u64(*column, part));
        all.push(Box::new(RangeQuery::new(exact.clone(), exact)));
    }
    Ok(Box::new(BooleanQuery::intersection(all)))
}

fn eq(field: Field, value: &Value) -> Result<Box<dyn TQuery>, StoreError> {
    let k = kind(field);
    if let Kind::Id = k {
        return id_query(field, value);
    }
    if let Kind::Time(tfield) = k {
        let bound = Bound::Included(value.clone());
        return time_range(field, k, tfield, &bound, &bound);
    }
    Ok(Box::new(TermQuery::new(
        term(field, k, value)?,
        IndexRecordOption::Basic,
    )))
}

/// The most values of an `In` read as a union of term queries; more
/// become one term set query (Lucene draws its line between the two
/// rewrites at 16 terms too).
const MAX_UNION_TERMS: usize = 16;

/// Translates `query` into a tantivy query over the auditrail schema.
///
/// Fails with [`StoreError::InvalidRequest`] when a value does not fit its
/// field or an operation is not allowed on a field.
pub fn to_tantivy(query: &Query) -> Result<Box<dyn TQuery>, StoreError> {
    match query {
        Query::All => Ok(Box::new(AllQuery)),
        Query::Eq(field, value) => eq(*field, value),
        Query::In(field, values) => {
            let k = kind(*field);
            if values.is_empty() {
                return Ok(Box::new(EmptyQuery));
            }
            if let Kind::Time(_) | Kind::Id = k {
                let alternatives = values
                    .iter()
                    .map(|v| eq(*field, v))
                    .collect::<Result<Vec<_>, _>>()?;
                return Ok(Box::new(BooleanQuery::union(alternatives)));
            }
            let terms = values
                .iter()
                .map(|v| term(*field, k, v))
                .collect::<Result<Vec<_>, _>>()?;
            if terms.len() > MAX_UNION_TERMS {
                return Ok(Box::new(TermSetQuery::new(terms)));
            }
            // A few terms: a union of their postings, read lazily. A term
            // set builds a bitset of every match in each segment before the
            // first document is read, and on a large segment that bitset
            // was most of a timeline page's time (its four verbs).
            let alternatives = terms
                .into_iter()
                .map(|t| Box::new(TermQuery::new(t, IndexRecordOption::Basic)) as Box<dyn TQuery>)
                .collect();
            Ok(Box::new(BooleanQuery::union(alternatives)))
        }
        Query::Range {
            field,
            lower,
            upper,
        } => match kind(*field) {
            k @ Kind::Time(tfield) => time_range(*field, k, tfield, lower, upper),
            k @ Kind::Int(tfield) => int_range(*field, k, tfield, lower, upper),
            k => Err(StoreError::InvalidRequest(format!(
                "range on {field:?}, which is {}; ranges apply to integer and time fields",
                field_kind(k)
            ))),
        },
        Query::Contains(field, needle) => match kind(*field) {
            Kind::Keyword {
                field: tfield,
                contains: true,
            } => {
                let pattern = format!("(?s).*{}.*", escape_regex(needle));
                let regex = RegexQuery::from_pattern(&pattern, tfield).map_err(|e| {
                    StoreError::InvalidRequest(format!(
                        "cannot search {field:?} for {needle:?}: {e}"
                    ))
                })?;
                Ok(Box::new(regex))
            }
            _ => Err(StoreError::InvalidRequest(format!(
                "substring search is not supported on {field:?}; it is on RequestUri, \
                 Username, Name and Namespace"
            ))),
        },
        Query::And(queries) => match queries.as_slice() {
            [] => Ok(Box::new(AllQuery)),
            [one] => to_tantivy(one),
            many => Ok(Box::new(BooleanQuery::intersection(
                many.iter().map(to_tantivy).collect::<Result<_, _>>()?,
            ))),
        },
        Query::Or(queries) => match queries.as_slice() {
            [] => Ok(Box::new(EmptyQuery)),
            [one] => to_tantivy(one),
            many => Ok(Box::new(BooleanQuery::union(
                many.iter().map(to_tantivy).collect::<Result<_, _>>()?,
            ))),
        },
        Query::Not(inner) => Ok(Box::new(BooleanQuery::new(vec![
            (Occur::Must, Box::new(AllQuery) as Box<dyn TQuery>),
            (Occur::MustNot, to_tantivy(inner)?),
        ]))),
    }
}

/// The clusters a query can match, when it restricts them at its top level
/// (`Eq`/`In` on [`Field::Cluster`], possibly inside `And`); `None` when any
/// cluster can match. Only used to skip indices: the query itself still
/// filters on the cluster field.
pub(crate) fn clusters(query: &Query) -> Option<BTreeSet<String>> {
    let names = |values: &[Value]| {
        values
            .iter()
            .filter_map(|v| match v {
                Value::Str(s) => Some(s.clone()),
                _ => None,
            })
            .collect::<BTreeSet<_>>()
    };
    match query {
        Query::Eq(Field::Cluster, v) => Some(names(std::slice::from_ref(v))),
        Query::In(Field::Cluster, vs) => Some(names(vs)),
        Query::And(queries) => queries
            .iter()
            .filter_map(clusters)
            .reduce(|a, b| a.intersection(&b).cloned().collect()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_meta_characters() {
        assert_eq!(escape_regex("a.b*c"), r"a\.b\*c");
        assert_eq!(escape_regex("dryRun=All"), "dryRun=All");
        assert_eq!(escape_regex("/api/v1?x=[1]"), r"/api/v1\?x=\[1\]");
    }

    #[test]
    fn type_mismatches_are_invalid_requests() {
        let bad = [
            Query::Eq(Field::Time, Value::Str("x".into())),
            Query::Eq(Field::Verb, Value::Int(1)),
            Query::Eq(Field::ResponseCode, Value::Str("200".into())),
            Query::Eq(Field::DryRun, Value::Str("true".into())),
            Query::In(
                Field::Verb,
                vec![Value::Str("get".into()), Value::Bool(true)],
            ),
            Query::Range {
                field: Field::Verb,
                lower: Bound::Included(Value::Str("a".into())),
                upper: Bound::Unbounded,
            },
            Query::Range {
                field: Field::DryRun,
                lower: Bound::Unbounded,
                upper: Bound::Unbounded,
            },
            Query::Range {
                field: Field::Time,
                lower: Bound::Included(Value::Int(3)),
                upper: Bound::Unbounded,
            },
            Query::Contains(Field::Verb, "ge".into()),
            Query::Not(Box::new(Query::Contains(Field::Time, "1".into()))),
        ];
        for q in bad {
            match to_tantivy(&q) {
                Err(StoreError::InvalidRequest(msg)) => assert!(!msg.is_empty()),
                other => panic!("{q:?}: expected InvalidRequest, got {other:?}"),
            }
        }
    }

    #[test]
    fn cluster_pruning() {
        let q = Query::And(vec![
            Query::eq(Field::Cluster, "a"),
            Query::eq(Field::Verb, "get"),
        ]);
        assert_eq!(clusters(&q), Some(BTreeSet::from(["a".to_owned()])));
        assert_eq!(clusters(&Query::All), None);
        let q = Query::Or(vec![Query::eq(Field::Cluster, "a")]);
        assert_eq!(clusters(&q), None);
    }
}
