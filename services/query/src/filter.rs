//! From a `Filter` message to a store query: time expressions, the timeline
//! defaults, and the fingerprint that ties a page token to its filter.
//!
//! Every condition becomes a node of the store's `Query` value; the selector
//! is parsed by `auditrail-selector` into the same value. Nothing here builds
//! query text.

use std::ops::Bound;

use auditrail_event::meaning::KNOWN_VERBS;
use auditrail_event::{Level, Stage};
use auditrail_proto::v1;
use auditrail_server::echo;
use auditrail_store::{Field, Query, Value};
use jiff::{SignedDuration, Timestamp};

/// A filter the service refuses, with the reason shown to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(pub String);

fn bad(message: impl Into<String>) -> FilterError {
    FilterError(message.into())
}

/// Parses a time of a filter: RFC 3339 with an offset, `now`, or
/// `now-<n><unit>` with unit `s`, `m`, `h`, `d` or `w`.
pub fn parse_time(text: &str, now: Timestamp, what: &str) -> Result<Timestamp, FilterError> {
    let text = text.trim();
    let shown = echo(text);
    if let Some(rest) = text.strip_prefix("now") {
        if rest.is_empty() {
            return Ok(now);
        }
        let relative = rest.strip_prefix('-').ok_or_else(|| {
            bad(format!(
                "{what} {shown}: expected `now` or `now-<n><unit>` (unit s, m, h, d or w)"
            ))
        })?;
        let split = relative
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(relative.len());
        let (digits, unit) = relative.split_at(split);
        let n: i64 = digits.parse().map_err(|_| {
            bad(format!(
                "{what} {shown}: expected a number after `now-`, e.g. `now-15m`"
            ))
        })?;
        let seconds_per_unit = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 604_800,
            _ => {
                return Err(bad(format!(
                    "{what} {shown}: unknown unit {unit:?}; expected s, m, h, d or w"
                )));
            }
        };
        return n
            .checked_mul(seconds_per_unit)
            .map(SignedDuration::from_secs)
            .and_then(|d| now.checked_sub(d).ok())
            .ok_or_else(|| bad(format!("{what} {shown} is too far in the past")));
    }
    text.parse::<Timestamp>().map_err(|e| {
        bad(format!(
            "{what} {shown} is not a time: expected RFC 3339 with an offset \
             (2024-05-01T10:00:00Z) or now-<n><unit> ({e})"
        ))
    })
}

/// The time range of a filter, resolved against `now`: `from` inclusive
/// (`None`: unbounded), `to` exclusive (default `now`).
pub fn resolve_range(
    from: &str,
    to: &str,
    now: Timestamp,
) -> Result<(Option<Timestamp>, Timestamp), FilterError> {
    let from = (!from.trim().is_empty())
        .then(|| parse_time(from, now, "from"))
        .transpose()?;
    let to = if to.trim().is_empty() {
        now
    } else {
        parse_time(to, now, "to")?
    };
    if let Some(from) = from
        && from > to
    {
        return Err(bad(format!("from ({from}) is after to ({to})")));
    }
    Ok((from, to))
}

fn strings(field: Field, values: &[String]) -> Option<Query> {
    match values {
        [] => None,
        [one] => Some(Query::eq(field, one.clone())),
        many => Some(Query::In(
            field,
            many.iter().map(|v| Value::Str(v.clone())).collect(),
        )),
    }
}

fn object_ref(r: &v1::ObjectRefFilter) -> Query {
    let parts: Vec<Query> = [
        (Field::ObjectName, &r.name),
        (Field::Namespace, &r.namespace),
        (Field::Resource, &r.resource),
        (Field::ApiGroup, &r.api_group),
        (Field::ApiVersion, &r.api_version),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(f, v)| Query::eq(f, v.clone()))
    .collect();
    Query::And(parts)
}

/// `value` must be one of `known` (spelled exactly); the error names the
/// field, the value, the known values and, when only the case differs, the
/// value meant.
fn check_one_of(what: &str, value: &str, known: &[&str]) -> Result<(), FilterError> {
    if known.contains(&value) {
        return Ok(());
    }
    let hint = known
        .iter()
        .find(|k| k.eq_ignore_ascii_case(value))
        .map(|k| format!(" (values are case-sensitive: did you mean {k}?)"))
        .unwrap_or_default();
    Err(bad(format!(
        "unknown {what} {}; expected one of {}{hint}",
        echo(value),
        known.join(", ")
    )))
}

/// Checks the values of the fields that have a fixed set of values, the
/// way the selector checks them: a typo is an error, never an empty answer.
pub fn check_values(filter: &v1::Filter) -> Result<(), FilterError> {
    let levels: Vec<&str> = Level::ALL.iter().map(|l| l.as_str()).collect();
    for level in &filter.levels {
        check_one_of("level", level, &levels)?;
    }
    let stages: Vec<&str> = Stage::ALL.iter().map(|s| s.as_str()).collect();
    for stage in &filter.stages {
        check_one_of("stage", stage, &stages)?;
    }
    for verb in &filter.verbs {
        check_one_of("verb", verb, &KNOWN_VERBS)?;
    }
    for code in &filter.response_codes {
        if !(100..=599).contains(code) {
            return Err(bad(format!(
                "response code {code} is not an HTTP status code (100 to 599)"
            )));
        }
    }
    for kind in &filter.kinds {
        if kind.trim().is_empty() {
            return Err(bad("a kind must not be empty"));
        }
    }
    Ok(())
}

/// The level and stage the timeline shows.
const TIMELINE_LEVEL: &str = "RequestResponse";
const TIMELINE_STAGE: &str = "ResponseComplete";

/// `values` combined with the one value the timeline allows: that value when
/// `values` is empty or holds it; an error when they cannot meet, so that a
/// timeline never silently ignores a condition.
fn combine(what: &str, values: &[String], allowed: &str) -> Result<Vec<String>, FilterError> {
    if values.is_empty() || values.iter().any(|v| v == allowed) {
        Ok(vec![allowed.to_owned()])
    } else {
        Err(bad(format!(
            "the timeline shows only {what} {allowed}, so {what} {} matches nothing there; \
             search without the timeline to see other {what}s",
            values.join(", ")
        )))
    }
}

/// A filter with its values checked and, when asked, the timeline's
/// conditions combined in: level RequestResponse, stage ResponseComplete,
/// no dry runs (and, in [`to_query`], only changes and pod sessions).
/// Levels or stages that cannot meet the timeline's are refused.
pub fn with_timeline(
    filter: Option<&v1::Filter>,
    timeline: bool,
) -> Result<v1::Filter, FilterError> {
    let mut filter = filter.cloned().unwrap_or_default();
    check_values(&filter)?;
    if timeline {
        filter.levels = combine("level", &filter.levels, TIMELINE_LEVEL)?;
        filter.stages = combine("stage", &filter.stages, TIMELINE_STAGE)?;
        filter.exclude_dry_run = true;
    }
    Ok(filter)
}

/// The store query of `filter` over the time range `[from, to)`; with
/// `timeline`, only the events a timeline shows ([`Query::timeline_actions`]).
pub fn to_query(
    filter: &v1::Filter,
    timeline: bool,
    from: Option<Timestamp>,
    to: Timestamp,
) -> Result<Query, FilterError> {
    let mut all = Vec::new();
    match v1::TypeFilter::try_from(filter.r#type) {
        // Access records are searched only when asked for by name.
        Ok(v1::TypeFilter::Unspecified | v1::TypeFilter::Any) => all.push(Query::In(
            Field::Type,
            vec![Value::Str("kube".to_owned()), Value::Str("ee".to_owned())],
        )),
        Ok(v1::TypeFilter::Kube) => all.push(Query::eq(Field::Type, "kube")),
        Ok(v1::TypeFilter::Ee) => all.push(Query::eq(Field::Type, "ee")),
        Ok(v1::TypeFilter::Access) => all.push(Query::eq(Field::Type, "access")),
        Err(_) => return Err(bad(format!("unknown type filter {}", filter.r#type))),
    }
    all.extend(strings(Field::Cluster, &filter.clusters));
    all.push(Query::time_range(from, Some(to)));
    match filter.kinds.as_slice() {
        [] => {}
        [one] => all.push(Query::kind(one)),
        many => all.push(Query::Or(many.iter().map(|k| Query::kind(k)).collect())),
    }
    if !filter.object_refs.is_empty() {
        all.push(Query::Or(
            filter.object_refs.iter().map(object_ref).collect(),
        ));
    }
    all.extend(strings(Field::Subresource, &filter.subresources));
    all.extend(strings(Field::Verb, &filter.verbs));
    all.extend(strings(Field::Username, &filter.authors));
    if !filter.response_codes.is_empty() {
        all.push(Query::In(
            Field::ResponseCode,
            filter
                .response_codes
                .iter()
                .map(|c| Value::Int(i64::from(*c)))
                .collect(),
        ));
    }
    all.extend(strings(Field::Stage, &filter.stages));
    all.extend(strings(Field::Level, &filter.levels));
    if filter.exclude_dry_run {
        all.push(Query::Eq(Field::DryRun, Value::Bool(false)));
    }
    if timeline {
        all.push(Query::timeline_actions());
    }
    if !filter.selector.trim().is_empty() {
        let selector = auditrail_selector::parse(&filter.selector)
            .map_err(|e| bad(format!("selector {e}")))?;
        all.push(selector);
    }
    Ok(Query::And(all))
}

/// A time range bound as a query (used to narrow windows of an export).
pub fn time_window(lower: Bound<Timestamp>, upper: Bound<Timestamp>) -> Query {
    Query::Range {
        field: Field::Time,
        lower: lower.map(Value::Time),
        upper: upper.map(Value::Time),
    }
}

/// A digest of everything that defines a result set and its order, so that
/// a page token is only accepted for the request it was issued for.
pub fn fingerprint(parts: &[&dyn ErasedMessage]) -> [u8; 16] {
    let mut hasher = blake3::Hasher::new();
    for part in parts {
        let bytes = part.encoded();
        hasher.update(&(bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    let mut out = [0; 16];
    out.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
    out
}

/// A protobuf message (or scalar) in its canonical encoding, for
/// [`fingerprint`].
pub trait ErasedMessage {
    /// The bytes that identify the value.
    fn encoded(&self) -> Vec<u8>;
}

impl<M: prost::Message> ErasedMessage for M {
    fn encoded(&self) -> Vec<u8> {
        self.encode_to_vec()
    }
}

/// A short description of what a query asked, for its access record:
/// the filter's fields that are set, as `name=value`.
pub(crate) fn summary(filter: Option<&v1::Filter>, timeline: bool) -> String {
    let Some(filter) = filter else {
        return if timeline {
            "timeline".to_owned()
        } else {
            String::new()
        };
    };
    let mut parts = Vec::new();
    let list = |name: &str, values: &[String], parts: &mut Vec<String>| {
        if !values.is_empty() {
            parts.push(format!("{name}={}", values.join(",")));
        }
    };
    if let Ok(t) = v1::TypeFilter::try_from(filter.r#type)
        && !matches!(t, v1::TypeFilter::Unspecified)
    {
        parts.push(format!(
            "type={}",
            t.as_str_name()
                .trim_start_matches("TYPE_FILTER_")
                .to_ascii_lowercase()
        ));
    }
    list("clusters", &filter.clusters, &mut parts);
    if !filter.from.is_empty() {
        parts.push(format!("from={}", filter.from));
    }
    if !filter.to.is_empty() {
        parts.push(format!("to={}", filter.to));
    }
    list("kinds", &filter.kinds, &mut parts);
    for object in &filter.object_refs {
        parts.push(format!(
            "object={}/{}/{}/{}",
            object.api_group, object.resource, object.namespace, object.name
        ));
    }
    list("subresources", &filter.subresources, &mut parts);
    list("verbs", &filter.verbs, &mut parts);
    list("users", &filter.authors, &mut parts);
    if !filter.response_codes.is_empty() {
        let codes: Vec<String> = filter
            .response_codes
            .iter()
            .map(ToString::to_string)
            .collect();
        list("codes", &codes, &mut parts);
    }
    list("stages", &filter.stages, &mut parts);
    list("levels", &filter.levels, &mut parts);
    if filter.exclude_dry_run {
        parts.push("exclude_dry_run".to_owned());
    }
    if !filter.selector.is_empty() {
        parts.push(format!("selector={:?}", filter.selector));
    }
    if timeline {
        parts.push("timeline".to_owned());
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-03-01T12:00:00Z".parse().expect("time")
    }

    #[test]
    fn times_absolute_and_relative() {
        let t = |s| parse_time(s, now(), "from");
        assert_eq!(t("now"), Ok(now()));
        assert_eq!(t("now-15m").expect("t").to_string(), "2026-03-01T11:45:00Z");
        assert_eq!(t("now-2d").expect("t").to_string(), "2026-02-27T12:00:00Z");
        assert_eq!(t("now-1w").expect("t").to_string(), "2026-02-22T12:00:00Z");
        assert_eq!(
            t("2024-05-01T12:00:00+02:00").expect("t").to_string(),
            "2024-05-01T10:00:00Z"
        );
        for bad in [
            "now+1h",
            "now-",
            "now-5y",
            "now-x",
            "yesterday",
            "2024-05-01T10:00:00",
            "",
        ] {
            let err = t(bad).expect_err(bad);
            assert!(err.0.contains("from"), "{bad}: {err}");
        }
    }

    #[test]
    fn range_defaults_and_order() {
        assert_eq!(resolve_range("", "", now()), Ok((None, now())));
        let err = resolve_range("now", "now-1h", now()).expect_err("reversed");
        assert!(err.0.contains("after"), "{err}");
    }

    #[test]
    fn timeline_defaults_override_levels_stages_and_dry_run() {
        let f = v1::Filter {
            levels: vec!["Metadata".into()],
            verbs: vec!["patch".into()],
            ..v1::Filter::default()
        };
        let err = with_timeline(Some(&f), true).expect_err("Metadata is never on the timeline");
        assert!(err.0.contains("only level RequestResponse"), "{err}");
        assert_eq!(with_timeline(Some(&f), false), Ok(f.clone()));
        let f = v1::Filter {
            levels: vec!["Metadata".into(), "RequestResponse".into()],
            stages: vec!["ResponseComplete".into()],
            ..f
        };
        let t = with_timeline(Some(&f), true).expect("combines");
        assert_eq!(t.levels, ["RequestResponse"]);
        assert_eq!(t.stages, ["ResponseComplete"]);
        assert!(t.exclude_dry_run);
        assert_eq!(t.verbs, ["patch"]);
        let stage = v1::Filter {
            stages: vec!["RequestReceived".into()],
            ..v1::Filter::default()
        };
        let err = with_timeline(Some(&stage), true).expect_err("stage");
        assert!(err.0.contains("only stage ResponseComplete"), "{err}");
    }

    #[test]
    fn fixed_values_are_checked_like_the_selector_checks_them() {
        let check = |f: v1::Filter| with_timeline(Some(&f), false).map(|_| ());
        let err = check(v1::Filter {
            levels: vec!["Bogus".into()],
            ..v1::Filter::default()
        })
        .expect_err("level");
        assert_eq!(
            err.0,
            "unknown level \"Bogus\"; expected one of None, Metadata, Request, RequestResponse"
        );
        let err = check(v1::Filter {
            verbs: vec!["DELETE".into()],
            ..v1::Filter::default()
        })
        .expect_err("verb");
        assert!(err.0.contains("did you mean delete?"), "{err}");
        let err = check(v1::Filter {
            stages: vec!["Done".into()],
            ..v1::Filter::default()
        })
        .expect_err("stage");
        assert!(err.0.starts_with("unknown stage \"Done\""), "{err}");
        let err = check(v1::Filter {
            response_codes: vec![-1],
            ..v1::Filter::default()
        })
        .expect_err("code");
        assert!(err.0.contains("-1 is not an HTTP status code"), "{err}");
        assert_eq!(
            check(v1::Filter {
                levels: vec!["Metadata".into()],
                stages: vec!["Panic".into()],
                verbs: vec!["deletecollection".into(), "post".into()],
                response_codes: vec![100, 599],
                ..v1::Filter::default()
            }),
            Ok(())
        );
    }

    #[test]
    fn selector_errors_are_filter_errors() {
        let f = v1::Filter {
            selector: "verb <".into(),
            ..v1::Filter::default()
        };
        let err = to_query(&f, false, None, now()).expect_err("bad selector");
        assert!(err.0.starts_with("selector"), "{err}");
    }

    #[test]
    fn fingerprints_differ_by_content() {
        let a = v1::Filter {
            verbs: vec!["get".into()],
            ..v1::Filter::default()
        };
        let b = v1::Filter::default();
        assert_ne!(fingerprint(&[&a, &1i32]), fingerprint(&[&b, &1i32]));
        assert_ne!(fingerprint(&[&a, &1i32]), fingerprint(&[&a, &2i32]));
        assert_eq!(fingerprint(&[&a, &1i32]), fingerprint(&[&a.clone(), &1i32]));
    }
}
