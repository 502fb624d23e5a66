//! The cluster's network security as it was at any instant, rebuilt from
//! the audit trail.
//!
//! Compliance reports ask "which workloads were protected, by which
//! policies, at the time", long after the cluster has changed. The trail
//! holds every successful write of the resources that decide it, with the
//! object the API server answered (`responseObject`); starting from a
//! snapshot (a LIST of those resources) and applying the writes after it
//! rebuilds the set at any later instant, as Calico Enterprise's replayer
//! did. This crate does that with no I/O: the reporter reads snapshots and
//! events from its stores and hands them here.
//!
//! - [`resources`]: which resources are tracked, keyed by (resource, API
//!   group) as `objectRef` names them.
//! - [`snapshot`]: where a replay starts; the parser of `kubectl get … -o
//!   json` output.
//! - [`state`]: the rebuilt set of objects, serialised deterministically.
//! - [`replay`](mod@replay): the events that count, their order, and how
//!   each changes the state; what could not be applied is a [`Warning`]
//!   carrying the event's ids, never skipped silently.

pub mod replay;
pub mod resources;
pub mod snapshot;
pub mod state;

pub use replay::{
    Applied, Counts, Recorded, Replay, Replayer, Warning, WarningKind, order, replay,
};
pub use resources::{TRACKED, Tracked, tracked, tracked_kind};
pub use snapshot::{Skipped, Snapshot, SnapshotError, parse_list};
pub use state::{ObjectKey, State};
