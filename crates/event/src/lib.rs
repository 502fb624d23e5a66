//! The Kubernetes audit event as auditrail sees it.
//!
//! Every other crate needs to agree on what an audit event *is*: which fields
//! are read, how an event is classified as `kube` or `ee`, what its name is and
//! which id it is stored under. This crate is that agreement, with no I/O so it
//! can be used from the ingestor's hot path, the indexer, tests and benchmarks
//! alike.
//!
//! - [`model`]: the serde model of `audit.k8s.io/v1` and `v1beta1` `Event` and
//!   `EventList`, borrowing from the input wherever it can.
//! - [`parse`]: one line (or one `EventList` document) into a typed view plus
//!   the original bytes, with errors that carry a reason and a byte offset.
//! - [`classify`](mod@classify): `kube` or `ee`, decided from the event itself.
//! - [`cluster`]: which strings may name a cluster.
//! - [`id`]: the stable content-hash id that makes re-sends idempotent.
//! - [`resource`]: the one mapping of resources to kinds, names people type
//!   and scopes.
//! - [`meaning`]: what an event means: its object, whether it is a version
//!   of that object, and the one line the timeline shows.

pub mod classify;
pub mod cluster;
pub mod id;
pub mod meaning;
pub mod model;
pub mod parse;
pub mod resource;

pub use classify::{CALICO_API_GROUP, EventType, UnknownEventType, classify};
pub use cluster::valid_cluster_name;
pub use id::{EventId, EventIdParseError};
pub use model::{
    ApiVersion, Event, EventKind, Level, ObjectReference, ResponseStatus, Stage, UnknownValue,
    UserInfo,
};
pub use parse::{ParseError, ParseErrorKind, ParsedEvent, parse_event_list, parse_line};
