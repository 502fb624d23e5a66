//! Mapping between the store's types and `auditrail.v1` messages.

use std::time::Duration;

use crate::error::IndexerError;
use auditrail_event::EventType;
use auditrail_proto::v1;
use auditrail_store::{Damage, IndexStats};

pub(crate) use auditrail_proto::timestamp;

/// The name (`kube`, `ee`) of an `auditrail.v1` event type value.
pub(crate) fn type_name(value: i32) -> Option<&'static str> {
    match v1::EventType::try_from(value) {
        Ok(v1::EventType::Kube) => Some("kube"),
        Ok(v1::EventType::Ee) => Some("ee"),
        Ok(v1::EventType::Access) => Some("access"),
        _ => None,
    }
}

/// The `auditrail.v1` value of an event type (the proto crate does not know
/// the domain's types: it sits below them).
fn event_type_to_proto(t: EventType) -> v1::EventType {
    match t {
        EventType::Kube => v1::EventType::Kube,
        EventType::Ee => v1::EventType::Ee,
        EventType::Access => v1::EventType::Access,
    }
}

pub(crate) fn stats_to_proto(s: IndexStats) -> v1::IndexStats {
    v1::IndexStats {
        cluster: s.cluster,
        r#type: event_type_to_proto(s.event_type) as i32,
        event_count: s.events,
        oldest: s.oldest.map(timestamp),
        newest: s.newest.map(timestamp),
        size_bytes: s.size_bytes,
    }
}

pub(crate) fn damage_to_proto(d: Damage) -> v1::DamagedSegment {
    v1::DamagedSegment {
        cluster: d.cluster,
        segment: d.segment,
        files: d
            .files
            .into_iter()
            .map(|f| v1::DamagedFile {
                name: f.name,
                problem: f.problem,
            })
            .collect(),
        event_count: d.documents,
        oldest: d.oldest.map(timestamp),
        newest: d.newest.map(timestamp),
    }
}

/// The maximum age a retention request asks for; it must be positive.
pub(crate) fn retention_max_age(
    cutoff: Option<v1::apply_retention_request::Cutoff>,
) -> Result<Duration, IndexerError> {
    use v1::apply_retention_request::Cutoff;
    match cutoff {
        Some(Cutoff::MaxAgeDays(days)) if days > 0 => {
            Ok(Duration::from_secs(u64::from(days) * 86_400))
        }
        Some(Cutoff::MaxAge(d)) if d.seconds > 0 || (d.seconds == 0 && d.nanos > 0) => {
            let secs = u64::try_from(d.seconds).unwrap_or(0);
            let nanos = u32::try_from(d.nanos).unwrap_or(0);
            Ok(Duration::new(secs, nanos))
        }
        Some(_) => Err(IndexerError::invalid(
            "the retention max age must be positive",
        )),
        None => Err(IndexerError::invalid(
            "a cut-off is required: max_age or max_age_days",
        )),
    }
}

/// `now - max_age`, refusing ages that reach before 1970-01-01: no stored
/// event is older, and a cut-off there could not be answered as a valid
/// protobuf Timestamp.
pub(crate) fn cutoff(
    now: jiff::Timestamp,
    max_age: Duration,
) -> Result<jiff::Timestamp, IndexerError> {
    let too_large = || {
        IndexerError::invalid(format!(
            "the retention max age of {} days reaches before 1970-01-01, where no stored \
             event can be; give a shorter one",
            max_age.as_secs() / 86_400
        ))
    };
    let age = jiff::SignedDuration::try_from(max_age).map_err(|_| too_large())?;
    now.checked_sub(age)
        .ok()
        .filter(|cutoff| *cutoff >= jiff::Timestamp::UNIX_EPOCH)
        .ok_or_else(too_large)
}
