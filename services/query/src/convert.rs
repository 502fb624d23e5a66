//! Mapping between stored events and `auditrail.v1` messages.

use crate::error::QueryError;
use std::borrow::Cow;
use std::collections::HashMap;

use auditrail_event::{EventType, UserInfo, parse_line};
use auditrail_proto::{timestamp, v1};
use auditrail_store::{Position, Provenance, StoredEvent};
use serde::Deserialize;

/// The `auditrail.v1` value of an event type (the proto crate does not know
/// the domain's types: it sits below them).
fn event_type_to_proto(t: EventType) -> v1::EventType {
    match t {
        EventType::Kube => v1::EventType::Kube,
        EventType::Ee => v1::EventType::Ee,
        EventType::Access => v1::EventType::Access,
    }
}

/// The parts of an event the typed view does not keep.
#[derive(Deserialize, Default)]
struct Extras<'a> {
    #[serde(default, borrow)]
    annotations: HashMap<Cow<'a, str>, Cow<'a, str>>,
}

fn user(u: &UserInfo<'_>) -> v1::UserInfo {
    let extra = u
        .extra
        .and_then(|raw| serde_json::from_str::<HashMap<String, Vec<String>>>(raw.get()).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|(k, values)| (k, v1::ExtraValue { values }))
        .collect();
    v1::UserInfo {
        username: u.username.to_string(),
        uid: u.uid.as_deref().unwrap_or_default().to_owned(),
        groups: u.groups.iter().map(ToString::to_string).collect(),
        extra,
    }
}

fn s(v: Option<&Cow<'_, str>>) -> String {
    v.map(ToString::to_string).unwrap_or_default()
}

/// The message of a stored event's provenance.
pub(crate) fn provenance(p: &Provenance) -> v1::Provenance {
    let position = p.position.as_ref().map(|position| match position {
        Position::File {
            path,
            inode,
            offset,
        } => v1::event_origin::Position::File(v1::FilePosition {
            path: path.clone(),
            offset: *offset,
            inode: *inode,
        }),
        Position::Cloudwatch {
            log_group,
            log_stream,
            event_id,
        } => v1::event_origin::Position::Cloudwatch(v1::CloudWatchPosition {
            log_group: log_group.clone(),
            log_stream: log_stream.clone(),
            event_id: event_id.clone(),
        }),
    });
    v1::Provenance {
        origin: (!p.source.is_empty() || position.is_some()).then(|| v1::EventOrigin {
            source: p.source.clone(),
            position,
        }),
        ingested_by: p.ingested_by.clone(),
        ingested_by_groups: p.ingested_by_groups.clone(),
        ingested_from: p.ingested_from.clone(),
        ingested_at: Some(timestamp(p.ingested_at)),
    }
}

/// The message of a stored event, with its fields read from the original
/// bytes (which a store always keeps). `raw` is filled when `include_raw`.
pub(crate) fn audit_event(
    stored: StoredEvent,
    include_raw: bool,
) -> Result<v1::AuditEvent, QueryError> {
    let parsed = parse_line(&stored.raw).map_err(|e| {
        QueryError::internal(format!("stored event {} does not parse: {e}", stored.id))
    })?;
    let e = &parsed.event;
    let extras: Extras<'_> = serde_json::from_slice(parsed.raw).unwrap_or_default();
    let object_ref = e.object_ref.as_ref().map(|o| v1::ObjectReference {
        resource: s(o.resource.as_ref()),
        namespace: s(o.namespace.as_ref()),
        name: s(o.name.as_ref()),
        uid: s(o.uid.as_ref()),
        api_group: s(o.api_group.as_ref()),
        api_version: s(o.api_version.as_ref()),
        resource_version: s(o.resource_version.as_ref()),
        subresource: s(o.subresource.as_ref()),
    });
    let message = v1::AuditEvent {
        id: stored.id.to_hex(),
        cluster: stored.cluster.clone(),
        r#type: event_type_to_proto(stored.event_type) as i32,
        level: e.level.as_str().to_owned(),
        stage: e.stage.map(|s| s.as_str().to_owned()).unwrap_or_default(),
        audit_id: e.audit_id.to_string(),
        verb: e.verb.to_string(),
        user: Some(user(&e.user)),
        impersonated_user: e.impersonated_user.as_ref().map(user),
        source_ips: e.source_ips.iter().map(ToString::to_string).collect(),
        user_agent: s(e.user_agent.as_ref()),
        object_ref,
        name: e.derived_name().map(Cow::into_owned).unwrap_or_default(),
        response_code: e.response_code().unwrap_or(0),
        request_uri: e.request_uri.to_string(),
        request_received_timestamp: e.request_received_timestamp.map(timestamp),
        stage_timestamp: e.stage_timestamp.or(e.timestamp).map(timestamp),
        api_version: e.api_version().as_str().to_owned(),
        raw: bytes::Bytes::new(),
        kind: e.derived_kind().map(Cow::into_owned).unwrap_or_default(),
        summary: e.summary(),
        version: e.is_version(),
        dry_run: e.is_dry_run(),
        annotations: extras
            .annotations
            .into_iter()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
        provenance: stored.provenance.as_ref().map(provenance),
    };
    Ok(if include_raw {
        v1::AuditEvent {
            raw: stored.raw.into(),
            ..message
        }
    } else {
        message
    })
}
