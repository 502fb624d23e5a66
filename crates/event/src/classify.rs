//! `kube` or `ee`: which trail an event belongs to.
//!
//! Calico Enterprise keeps two audit trails: Kubernetes resources (`kube`) and
//! Calico resources (`ee`, for the `projectcalico.org` API group). The type is
//! decided from the event itself, never from the file it was read from: the
//! kube-apiserver also audits the requests it proxies to the Calico API
//! server, so `kube-audit.log` can hold Calico events. A source's configured
//! type only decides for events with no `objectRef` (non-resource requests).

use std::fmt;
use std::str::FromStr;

use crate::model::Event;

/// The API group of Calico's resources.
pub const CALICO_API_GROUP: &str = "projectcalico.org";

/// The trail an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// Kubernetes resources and non-resource requests.
    Kube,
    /// Calico (`projectcalico.org`) resources.
    Ee,
    /// auditrail's own access records: who read or changed the trail. Never
    /// decided from an event's content (an ingested event is `kube` or
    /// `ee` whatever it says): only the indexer's access-record path
    /// writes them, so a client cannot forge one through ingestion.
    Access,
}

impl EventType {
    /// Every type.
    pub const ALL: [Self; 3] = [Self::Kube, Self::Ee, Self::Access];

    /// The types of the audit trail proper (what the cluster did), as
    /// opposed to the access records (what was done with the trail).
    pub const TRAIL: [Self; 2] = [Self::Kube, Self::Ee];

    /// The short name used in configuration, index names and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kube => "kube",
            Self::Ee => "ee",
            Self::Access => "access",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event type name that is not `kube`, `ee` or `access`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type {0:?}; expected \"kube\", \"ee\" or \"access\"")]
pub struct UnknownEventType(pub String);

impl FromStr for EventType {
    type Err = UnknownEventType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "kube" => Ok(Self::Kube),
            "ee" => Ok(Self::Ee),
            "access" => Ok(Self::Access),
            other => Err(UnknownEventType(other.to_owned())),
        }
    }
}

/// Classifies an event: `ee` when `objectRef.apiGroup` is `projectcalico.org`,
/// `kube` for any other object, and `fallback` (the source's configured type)
/// when the event has no `objectRef`.
pub fn classify(event: &Event<'_>, fallback: EventType) -> EventType {
    match &event.object_ref {
        Some(object) if object.api_group.as_deref() == Some(CALICO_API_GROUP) => EventType::Ee,
        Some(_) => EventType::Kube,
        None => fallback,
    }
}
