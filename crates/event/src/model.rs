//! Serde model of the audit `Event` (`audit.k8s.io/v1` and `v1beta1`).
//!
//! The model is a *view*: it names the fields auditrail indexes and borrows
//! strings from the input line where no unescaping is needed. Fields it does
//! not name (annotations, `v1beta1` metadata, future additions) are not lost:
//! the original bytes of every event travel beside this view and are what the
//! store keeps. Request and response objects are kept as raw JSON and only
//! looked into when asked, so parsing an event with a multi-megabyte
//! `responseObject` costs one scan, not a tree of allocations.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The `apiVersion` values of audit events that auditrail understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ApiVersion {
    /// `audit.k8s.io/v1`, written by every supported Kubernetes version.
    #[serde(rename = "audit.k8s.io/v1")]
    V1,
    /// `audit.k8s.io/v1beta1`, removed in Kubernetes 1.24 but still found in
    /// old files; it adds `timestamp` and `metadata` fields.
    #[serde(rename = "audit.k8s.io/v1beta1")]
    V1Beta1,
}

impl ApiVersion {
    /// The wire form, e.g. `audit.k8s.io/v1`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "audit.k8s.io/v1",
            Self::V1Beta1 => "audit.k8s.io/v1beta1",
        }
    }
}

/// An unknown enumeration value, as reported by [`Level::from_str`] and
/// [`Stage::from_str`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}; expected one of {expected}")]
pub struct UnknownValue {
    what: &'static str,
    value: String,
    expected: &'static str,
}

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in ascending order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The wire form of this value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => stringify!($variant)),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $(stringify!($variant) => Ok(Self::$variant),)+
                    _ => Err(UnknownValue {
                        what: $what,
                        value: s.to_owned(),
                        expected: concat!($(stringify!($variant), " "),+),
                    }),
                }
            }
        }
    };
}

string_enum! {
    /// How much of a request the API server recorded, in increasing order.
    Level, "level" {
        /// Nothing is recorded.
        None,
        /// Request metadata only: user, timestamps, resource, verb.
        Metadata,
        /// Metadata and the request body.
        Request,
        /// Metadata, request and response bodies.
        RequestResponse,
    }
}

string_enum! {
    /// The stage of request handling at which an event was written.
    Stage, "stage" {
        /// As soon as the request is received, before it is handled.
        RequestReceived,
        /// Response headers sent, body not yet (long-running requests only).
        ResponseStarted,
        /// The response is complete.
        ResponseComplete,
        /// The handler panicked.
        Panic,
    }
}

/// `authentication.k8s.io/v1` `UserInfo`: who made the request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInfo<'a> {
    /// The user's name, e.g. `system:serviceaccount:kube-system:foo`.
    #[serde(default, borrow)]
    pub username: Cow<'a, str>,
    /// The user's unique id.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub uid: Option<Cow<'a, str>>,
    /// The groups the user belongs to.
    #[serde(default, borrow, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Cow<'a, str>>,
    /// Extra authenticator-provided attributes, kept raw.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub extra: Option<&'a RawValue>,
}

/// The object a request was about: `objectRef` of an audit event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference<'a> {
    /// Resource type, plural and lower case, e.g. `networkpolicies`.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub resource: Option<Cow<'a, str>>,
    /// Namespace; absent for cluster-scoped resources.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<Cow<'a, str>>,
    /// Object name; absent for collections and for `create` with `generateName`.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub name: Option<Cow<'a, str>>,
    /// Object UID.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub uid: Option<Cow<'a, str>>,
    /// API group; empty or absent for the core group.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub api_group: Option<Cow<'a, str>>,
    /// API version of the request, e.g. `v1`.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<Cow<'a, str>>,
    /// The object's resourceVersion, when the request named one.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<Cow<'a, str>>,
    /// Subresource, e.g. `status` or `log`.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub subresource: Option<Cow<'a, str>>,
}

/// The part of `responseStatus` (a `metav1.Status`) that is indexed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseStatus<'a> {
    /// HTTP status code of the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    /// `Success` or `Failure`, when set.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub status: Option<Cow<'a, str>>,
    /// Machine-readable reason for a failure, e.g. `NotFound`.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Cow<'a, str>>,
    /// Human-readable message.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub message: Option<Cow<'a, str>>,
}

/// One audit event. See the module docs for what is and is not modelled.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event<'a> {
    /// Always `Event`; anything else is refused while parsing.
    pub kind: EventKind,
    /// `audit.k8s.io/v1` or `v1beta1`. Absent in some hand-trimmed samples,
    /// in which case the event is read as `v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<ApiVersion>,
    /// The audit level the event was recorded at.
    pub level: Level,
    /// The request's audit ID. Not unique: clients may set it themselves.
    #[serde(rename = "auditID", borrow)]
    pub audit_id: Cow<'a, str>,
    /// Stage at which the event was written. Absent only in trimmed samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
    /// The request URI as sent by the client.
    #[serde(rename = "requestURI", borrow)]
    pub request_uri: Cow<'a, str>,
    /// The Kubernetes verb (`get`, `list`, `create`, `patch`, …) or the
    /// lower-cased HTTP method for non-resource requests.
    #[serde(borrow)]
    pub verb: Cow<'a, str>,
    /// The authenticated user.
    #[serde(default, borrow)]
    pub user: UserInfo<'a>,
    /// The user the request impersonated, if any.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub impersonated_user: Option<UserInfo<'a>>,
    /// Source IPs, client first, then proxies.
    #[serde(
        default,
        borrow,
        rename = "sourceIPs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub source_ips: Vec<Cow<'a, str>>,
    /// The client's user agent.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<Cow<'a, str>>,
    /// The object the request was about; absent for non-resource requests.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub object_ref: Option<ObjectReference<'a>>,
    /// The response status; absent at stage `RequestReceived`.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub response_status: Option<ResponseStatus<'a>>,
    /// The request body, raw (level Request and above).
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub request_object: Option<&'a RawValue>,
    /// The response body, raw (level RequestResponse).
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub response_object: Option<&'a RawValue>,
    /// When the API server received the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_received_timestamp: Option<Timestamp>,
    /// When the event's stage was reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_timestamp: Option<Timestamp>,
    /// `v1beta1` only: when the event was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
}

/// The `kind` of an audit event, which can only be `Event`.
///
/// Deserialising anything else fails at the value's position, so a document
/// such as `{"kind":0}` or an `EventList` passed where an event belongs is
/// refused with a precise error instead of being half-read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct EventKind;

impl EventKind {
    /// The only accepted value.
    pub const NAME: &'static str = "Event";
}

impl Serialize for EventKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(Self::NAME)
    }
}

impl<'de> Deserialize<'de> for EventKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KindVisitor;
        impl serde::de::Visitor<'_> for KindVisitor {
            type Value = EventKind;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the string \"Event\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<EventKind, E> {
                if v == EventKind::NAME {
                    Ok(EventKind)
                } else {
                    Err(E::invalid_value(serde::de::Unexpected::Str(v), &self))
                }
            }
        }
        deserializer.deserialize_str(KindVisitor)
    }
}

/// The names that can hold an object's name inside a response object.
#[derive(Deserialize)]
struct NameHolder<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
}

/// Just enough of a response object to find its name.
#[derive(Deserialize)]
struct ObjectHead<'a> {
    #[serde(default, borrow)]
    metadata: Option<NameHolder<'a>>,
    #[serde(default, borrow)]
    details: Option<NameHolder<'a>>,
}

impl<'a> Event<'a> {
    /// The event's `apiVersion`, `v1` when the field was trimmed.
    pub fn api_version(&self) -> ApiVersion {
        self.api_version.unwrap_or(ApiVersion::V1)
    }

    /// The derived name of the object the event is about: `objectRef.name`,
    /// else `responseObject.metadata.name` (a `create` with `generateName`),
    /// else `responseObject.details.name` (a `delete` answering a `Status`).
    pub fn derived_name(&self) -> Option<Cow<'a, str>> {
        if let Some(name) = self
            .object_ref
            .as_ref()
            .and_then(|o| o.name.as_ref())
            .filter(|n| !n.is_empty())
        {
            return Some(name.clone());
        }
        let response = self.response_object?;
        let names: ObjectHead<'a> = serde_json::from_str(response.get()).ok()?;
        names
            .metadata
            .and_then(|m| m.name)
            .filter(|n| !n.is_empty())
            .or_else(|| names.details.and_then(|d| d.name).filter(|n| !n.is_empty()))
    }

    /// The kind of the object the event is about, from the one resource
    /// table ([`crate::resource::kind_of`]): `GlobalNetworkPolicy` for
    /// `globalnetworkpolicies` in `projectcalico.org`, the resource name for
    /// resources the table does not know. Decided by the resource, never by
    /// the request or response object, whose kind is `Scale`, `Eviction` or
    /// `Status` on subresources and deletes. `None` for non-resource
    /// requests.
    pub fn derived_kind(&self) -> Option<Cow<'static, str>> {
        let r = self.object_ref.as_ref()?;
        let resource = r.resource.as_deref().filter(|s| !s.is_empty())?;
        Some(crate::resource::kind_of(
            resource,
            r.api_group.as_deref().unwrap_or(""),
        ))
    }

    /// The HTTP status code of the response, when there was one.
    pub fn response_code(&self) -> Option<i32> {
        self.response_status.as_ref().and_then(|s| s.code)
    }

    /// The time the event is filed under on a timeline: the stage timestamp,
    /// else the time the request was received, else (`v1beta1`) the event's
    /// own timestamp.
    pub fn time(&self) -> Option<Timestamp> {
        self.stage_timestamp
            .or(self.request_received_timestamp)
            .or(self.timestamp)
    }

    /// Whether the request was a dry run (`dryRun` in the request URI), as the
    /// product's timeline decides it.
    pub fn is_dry_run(&self) -> bool {
        self.request_uri.contains("dryRun")
    }
}
