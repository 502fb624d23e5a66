//! The indexed view of an event, as handed to a store, and the stored event
//! as read back.

use auditrail_event::{
    ApiVersion, EventId, EventType, Level, ParseError, Stage, classify, parse_line,
};
use jiff::Timestamp;

use crate::Provenance;

/// Every field a store indexes, derived from the original bytes, plus the
/// bytes themselves. Strings are empty where the event has no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedEvent {
    /// Content-hash id (cluster + bytes).
    pub id: EventId,
    /// The cluster the event came from.
    pub cluster: String,
    /// kube or ee.
    pub event_type: EventType,
    /// `audit.k8s.io/v1` or `v1beta1`.
    pub api_version: ApiVersion,
    /// Audit level.
    pub level: Level,
    /// Stage, when the event has one.
    pub stage: Option<Stage>,
    /// The auditID (not unique).
    pub audit_id: String,
    /// The verb.
    pub verb: String,
    /// `user.username`.
    pub username: String,
    /// `user.groups`.
    pub user_groups: Vec<String>,
    /// `impersonatedUser.username`, empty when none.
    pub impersonated_user: String,
    /// `sourceIPs`.
    pub source_ips: Vec<String>,
    /// `userAgent`.
    pub user_agent: String,
    /// `objectRef.resource`.
    pub resource: String,
    /// `objectRef.namespace`.
    pub namespace: String,
    /// `objectRef.name`.
    pub object_name: String,
    /// `objectRef.apiGroup`.
    pub api_group: String,
    /// `objectRef.apiVersion`.
    pub object_api_version: String,
    /// `objectRef.subresource`.
    pub subresource: String,
    /// Derived name (objectRef.name, else from the response object).
    pub name: String,
    /// Derived kind of the object.
    pub kind: String,
    /// `responseStatus.code`.
    pub response_code: Option<i32>,
    /// `requestURI`.
    pub request_uri: String,
    /// Whether the request was a dry run.
    pub dry_run: bool,
    /// `requestReceivedTimestamp`.
    pub request_received: Option<Timestamp>,
    /// `stageTimestamp`.
    pub stage_timestamp: Option<Timestamp>,
    /// The event's time on the timeline: stage timestamp, else request
    /// received, else the `v1beta1` timestamp, else the time it was indexed.
    pub time: Timestamp,
    /// The event carries no timestamp at all, so `time` is when it was
    /// indexed: a re-send later gets another `time`, and a backend that
    /// places events by time must place these by something else.
    pub undated: bool,
    /// The original JSON, byte for byte, without line terminator.
    pub raw: Vec<u8>,
    /// How the event arrived, set by the indexer; `None` when the writer
    /// did not say (tests, tools).
    pub provenance: Option<Provenance>,
}

/// An event a store could not index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an audit event: {0}")]
pub struct RawEventError(#[from] pub ParseError);

fn s(v: Option<&std::borrow::Cow<'_, str>>) -> String {
    v.map(ToString::to_string).unwrap_or_default()
}

impl IndexedEvent {
    /// Derives the indexed view of `raw` (one audit event's JSON) from
    /// `cluster`. `fallback_type` classifies events without `objectRef`;
    /// `now` is the time used for events that carry no timestamp at all.
    pub fn from_raw(
        cluster: &str,
        raw: &[u8],
        fallback_type: EventType,
        now: Timestamp,
    ) -> Result<Self, RawEventError> {
        let parsed = parse_line(raw)?;
        let e = &parsed.event;
        let object = e.object_ref.as_ref();
        Ok(Self {
            id: EventId::compute(cluster, parsed.raw),
            cluster: cluster.to_owned(),
            event_type: classify(e, fallback_type),
            api_version: e.api_version(),
            level: e.level,
            stage: e.stage,
            audit_id: e.audit_id.to_string(),
            verb: e.verb.to_string(),
            username: e.user.username.to_string(),
            user_groups: e.user.groups.iter().map(ToString::to_string).collect(),
            impersonated_user: e
                .impersonated_user
                .as_ref()
                .map(|u| u.username.to_string())
                .unwrap_or_default(),
            source_ips: e.source_ips.iter().map(ToString::to_string).collect(),
            user_agent: s(e.user_agent.as_ref()),
            resource: s(object.and_then(|o| o.resource.as_ref())),
            namespace: s(object.and_then(|o| o.namespace.as_ref())),
            object_name: s(object.and_then(|o| o.name.as_ref())),
            api_group: s(object.and_then(|o| o.api_group.as_ref())),
            object_api_version: s(object.and_then(|o| o.api_version.as_ref())),
            subresource: s(object.and_then(|o| o.subresource.as_ref())),
            name: e
                .derived_name()
                .map(std::borrow::Cow::into_owned)
                .unwrap_or_default(),
            kind: e
                .derived_kind()
                .map(std::borrow::Cow::into_owned)
                .unwrap_or_default(),
            response_code: e.response_code(),
            request_uri: e.request_uri.to_string(),
            dry_run: e.is_dry_run(),
            request_received: e.request_received_timestamp,
            stage_timestamp: e.stage_timestamp,
            time: e.time().unwrap_or(now),
            undated: e.time().is_none(),
            raw: parsed.raw.to_vec(),
            provenance: None,
        })
    }
}

/// An event as a store returns it: identity, placement and original bytes.
/// Parse `raw` (or use [`IndexedEvent::from_raw`]) for the other fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// The content-hash id.
    pub id: EventId,
    /// The cluster.
    pub cluster: String,
    /// kube or ee.
    pub event_type: EventType,
    /// The event's time on the timeline (see [`IndexedEvent::time`]).
    pub time: Timestamp,
    /// The original JSON (empty when the search did not ask for it).
    pub raw: Vec<u8>,
    /// How the event arrived; `None` when it was stored without one.
    pub provenance: Option<Provenance>,
}
