//! Which audit events change the replayed state, in which order, and how.
//!
//! An event counts when it is a successful write of a tracked object
//! itself: stage `ResponseComplete`, verb `create`, `update`, `patch` or
//! `delete`, a 2xx answer, not a dry run, no subresource. That is exactly
//! `auditrail_event::Event::is_version`, the trail's one definition of "a
//! new version of an object"; it is reused here, not re-derived. A
//! `deletecollection` counts too (its answer lists what it deleted):
//! leaving it out would keep deleted policies alive in every later report.
//!
//! - A create, update or patch puts the `responseObject` under the event's
//!   key, unless the object there has a higher `metadata.resourceVersion`
//!   (an integer; objects without one are replaced): a write never goes
//!   back in time, even when the snapshot already holds a later version.
//! - A delete removes the object by `objectRef`; deleting a Namespace also
//!   removes every namespaced object in it (the namespace controller's own
//!   deletes may be missing from the trail).
//! - A write without a readable `responseObject` (the audit policy logged
//!   the resource below level `RequestResponse`) cannot be applied: it is a
//!   [`Warning`] with the event's id and auditID, which reports show. A
//!   delete needs no object and is applied whatever the level.
//!
//! The order is (`stageTimestamp`, `requestReceivedTimestamp`, event id),
//! so the same events give byte-identical state whatever order the store
//! returned them in.

use std::fmt;

use auditrail_event::{Event, EventId, ParseError, parse_line};
use jiff::Timestamp;
use serde_json::Value;

use crate::resources::{Tracked, tracked};
use crate::snapshot::{Snapshot, SnapshotError};
use crate::state::{ObjectKey, State, resource_version};

/// An audit event with the id it is stored under.
#[derive(Debug, Clone)]
pub struct Recorded<'a> {
    /// The event's id (ties in time are broken by it).
    pub id: EventId,
    /// The event.
    pub event: Event<'a>,
}

impl<'a> Recorded<'a> {
    /// One line of an audit log of `cluster`, with its id computed as the
    /// store computes it.
    pub fn parse(cluster: &str, raw: &'a [u8]) -> Result<Self, ParseError> {
        let parsed = parse_line(raw)?;
        Ok(Self {
            id: EventId::compute(cluster, parsed.raw),
            event: parsed.event,
        })
    }

    /// When the event happened: its stage timestamp, else the time the
    /// request was received.
    pub fn time(&self) -> Option<Timestamp> {
        self.event
            .stage_timestamp
            .or(self.event.request_received_timestamp)
    }

    fn sort_key(&self) -> (Option<Timestamp>, Option<Timestamp>, EventId) {
        (
            self.event.stage_timestamp,
            self.event.request_received_timestamp,
            self.id,
        )
    }
}

/// Puts events in replay order: by `stageTimestamp`, then
/// `requestReceivedTimestamp`, then event id (events without a time first).
pub fn order(events: &mut [Recorded<'_>]) {
    events.sort_by_key(Recorded::sort_key);
}

/// Why an event that should have changed the state could not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarningKind {
    /// A create, update, patch or deletecollection without
    /// `responseObject`: the audit policy must log this resource at level
    /// `RequestResponse`.
    MissingResponseObject,
    /// The `responseObject` is not the object (a `Status`, not JSON, too
    /// deeply nested); the reason.
    UnreadableResponseObject(String),
    /// The event has neither `stageTimestamp` nor
    /// `requestReceivedTimestamp`, so it cannot be placed in time.
    NoTime,
}

/// An event that could not be applied, reported rather than skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The event's id in the store.
    pub event_id: EventId,
    /// The event's `auditID`.
    pub audit_id: String,
    /// The event's verb.
    pub verb: String,
    /// The object it was about.
    pub key: ObjectKey,
    /// What was wrong.
    pub kind: WarningKind,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = &self.key;
        let group = if k.api_group.is_empty() {
            String::new()
        } else {
            format!(".{}", k.api_group)
        };
        let object = if k.namespace.is_empty() {
            k.name.clone()
        } else {
            format!("{}/{}", k.namespace, k.name)
        };
        write!(
            f,
            "event {} (auditID {}, {} {}{group} {object}) not applied: ",
            self.event_id, self.audit_id, self.verb, k.resource
        )?;
        match &self.kind {
            WarningKind::MissingResponseObject => f.write_str(
                "no responseObject; the audit policy must log this resource at level RequestResponse",
            ),
            WarningKind::UnreadableResponseObject(why) => {
                write!(f, "its responseObject cannot be read: {why}")
            }
            WarningKind::NoTime => f.write_str("it has no timestamp"),
        }
    }
}

/// What one event did to the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Nothing: not a successful write of a tracked object.
    Ignored,
    /// An object was created or replaced.
    Put,
    /// Objects were removed: the object itself, or the items of a
    /// deletecollection, plus a deleted namespace's contents.
    Removed(usize),
    /// Nothing: the state holds a newer version than the event's.
    Stale,
    /// Nothing, and a [`Warning`] was recorded.
    Warned,
}

/// How many events did what.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Events that put or removed objects.
    pub applied: u64,
    /// Events older than the version already held.
    pub stale: u64,
    /// Events that became warnings.
    pub warned: u64,
    /// Events that change nothing the replay tracks.
    pub ignored: u64,
}

/// The outcome of a replay.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    /// The objects at the instant replayed to.
    pub state: State,
    /// Events that could not be applied, in replay order.
    pub warnings: Vec<Warning>,
    /// What the events did.
    pub counts: Counts,
    /// Where the replay started: the snapshot's request start, `None` when
    /// it started empty (the state is then only what the events created).
    pub started_from: Option<Timestamp>,
}

/// Applies events one by one to a state, for callers that walk through an
/// interval; [`replay`] is the one-shot form.
#[derive(Debug, Clone, Default)]
pub struct Replayer {
    state: State,
    warnings: Vec<Warning>,
    counts: Counts,
    started_from: Option<Timestamp>,
    /// The keys put or removed since the last [`Replayer::take_changed`],
    /// when the caller asked for them ([`Replayer::track_changes`]).
    changed: Option<Vec<ObjectKey>>,
}

fn response_object(event: &Event<'_>) -> Result<Option<Value>, String> {
    let Some(raw) = event.response_object else {
        return Ok(None);
    };
    serde_json::from_str::<Value>(raw.get())
        .map(Some)
        .map_err(|e| e.to_string())
}

/// Whether `object` is a resource object, not a `Status` or a list.
fn is_resource_object(object: &Value) -> bool {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    object.get("metadata").is_some_and(Value::is_object)
        && kind != "Status"
        && !kind.ends_with("List")
}

impl Replayer {
    /// A replay that starts empty.
    pub fn new() -> Self {
        Self::default()
    }

    /// A replay that starts from `snapshot`.
    pub fn from_snapshot(snapshot: &Snapshot) -> Result<Self, SnapshotError> {
        Ok(Self {
            state: State::from_snapshot(snapshot)?,
            started_from: Some(snapshot.request_start),
            ..Self::default()
        })
    }

    /// The state so far.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// From now on, records which keys each applied event put or removed,
    /// for a caller that recomputes only what changed (the reports'
    /// incremental calculator); [`Replayer::take_changed`] hands them over.
    pub fn track_changes(&mut self) {
        self.changed.get_or_insert_with(Vec::new);
    }

    /// The keys put or removed since the last call (or since
    /// [`Replayer::track_changes`]), in the order they changed, possibly
    /// repeated; empty when changes are not tracked.
    pub fn take_changed(&mut self) -> Vec<ObjectKey> {
        self.changed
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    fn note(&mut self, key: &ObjectKey) {
        if let Some(changed) = &mut self.changed {
            changed.push(key.clone());
        }
    }

    /// The warnings so far.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// The state, warnings and counts.
    pub fn finish(self) -> Replay {
        Replay {
            state: self.state,
            warnings: self.warnings,
            counts: self.counts,
            started_from: self.started_from,
        }
    }

    /// The tracked type and key of a write that may change the state;
    /// `None` for every other event.
    fn target(event: &Event<'_>) -> Option<(Tracked, ObjectKey)> {
        let r = event.object_ref.as_ref()?;
        let t = tracked(r.resource.as_deref()?, r.api_group.as_deref().unwrap_or(""))?;
        let namespace = if t.namespaced {
            r.namespace.as_deref().unwrap_or("")
        } else {
            ""
        };
        if event.verb == "deletecollection" {
            let ok = event.subresource().is_empty()
                && event.stage == Some(auditrail_event::Stage::ResponseComplete)
                && event
                    .response_code()
                    .is_some_and(|c| (200..300).contains(&c))
                && !event.is_dry_run();
            return ok.then(|| (t, ObjectKey::new(t.resource, t.api_group, namespace, "")));
        }
        if !event.is_version() {
            return None;
        }
        let name = event.derived_name()?;
        Some((t, ObjectKey::new(t.resource, t.api_group, namespace, &name)))
    }

    fn warn(&mut self, rec: &Recorded<'_>, key: ObjectKey, kind: WarningKind) -> Applied {
        self.counts.warned += 1;
        self.warnings.push(Warning {
            event_id: rec.id,
            audit_id: rec.event.audit_id.to_string(),
            verb: rec.event.verb.to_string(),
            key,
            kind,
        });
        Applied::Warned
    }

    /// Applies one event (the caller keeps them in [`order`]).
    pub fn apply(&mut self, rec: &Recorded<'_>) -> Applied {
        let Some((t, key)) = Self::target(&rec.event) else {
            self.counts.ignored += 1;
            return Applied::Ignored;
        };
        let object = match response_object(&rec.event) {
            Ok(object) => object,
            // A delete needs no object; an unreadable one is ignored.
            Err(_) if rec.event.verb == "delete" => None,
            Err(why) => return self.warn(rec, key, WarningKind::UnreadableResponseObject(why)),
        };
        let outcome = match rec.event.verb.as_ref() {
            "delete" => self.delete(t, &key, object.as_ref()),
            "deletecollection" => match object {
                None => return self.warn(rec, key, WarningKind::MissingResponseObject),
                Some(list) => self.delete_collection(t, &key, &list),
            },
            _ => match object {
                None => return self.warn(rec, key, WarningKind::MissingResponseObject),
                Some(object) if !is_resource_object(&object) => {
                    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
                    let why = format!("it is a {kind:?}, not the object");
                    return self.warn(rec, key, WarningKind::UnreadableResponseObject(why));
                }
                Some(object) => self.put(key, object),
            },
        };
        match outcome {
            Applied::Stale => self.counts.stale += 1,
            _ => self.counts.applied += 1,
        }
        outcome
    }

    /// Whether `incoming` is older than what the state holds under `key`.
    fn is_stale(&self, key: &ObjectKey, incoming: &Value) -> bool {
        let held = self.state.get(key).and_then(resource_version);
        matches!((held, resource_version(incoming)), (Some(held), Some(new)) if new < held)
    }

    fn put(&mut self, key: ObjectKey, object: Value) -> Applied {
        if self.is_stale(&key, &object) {
            return Applied::Stale;
        }
        self.note(&key);
        self.state.insert(key, object);
        Applied::Put
    }

    fn delete(&mut self, t: Tracked, key: &ObjectKey, object: Option<&Value>) -> Applied {
        // The deleted object as answered: a delete of an older version than
        // the one held (the snapshot saw it re-created) is stale.
        if object.is_some_and(|o| is_resource_object(o) && self.is_stale(key, o)) {
            return Applied::Stale;
        }
        let mut removed = usize::from(self.state.remove(key).is_some());
        if removed > 0 {
            self.note(key);
        }
        if t.resource == "namespaces" && t.api_group.is_empty() {
            let gone = self.state.remove_namespace(&key.name);
            removed += gone.len();
            if let Some(changed) = &mut self.changed {
                changed.extend(gone);
            }
        }
        Applied::Removed(removed)
    }

    fn delete_collection(&mut self, t: Tracked, key: &ObjectKey, list: &Value) -> Applied {
        let items = list.get("items").and_then(Value::as_array);
        let mut removed = 0;
        for item in items.into_iter().flatten() {
            let metadata = item.get("metadata");
            let field = |name: &str| {
                metadata
                    .and_then(|m| m.get(name))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned()
            };
            let name = field("name");
            if name.is_empty() {
                continue;
            }
            let namespace = if t.namespaced {
                let ns = field("namespace");
                if ns.is_empty() {
                    key.namespace.clone()
                } else {
                    ns
                }
            } else {
                String::new()
            };
            let item_key = ObjectKey::new(t.resource, t.api_group, &namespace, &name);
            if let Applied::Removed(n) = self.delete(t, &item_key, Some(item)) {
                removed += n;
            }
        }
        Applied::Removed(removed)
    }
}

/// The state at `at`: `snapshot` (or nothing) plus the events from the
/// snapshot's request start up to and including `at`, in [`order`]
/// whatever order `events` are in. Events outside that span are ignored;
/// a write with no timestamp at all is a [`WarningKind::NoTime`] warning.
pub fn replay(
    snapshot: Option<&Snapshot>,
    events: &[Recorded<'_>],
    at: Timestamp,
) -> Result<Replay, SnapshotError> {
    let mut replayer = match snapshot {
        Some(snapshot) => Replayer::from_snapshot(snapshot)?,
        None => Replayer::new(),
    };
    let from = snapshot.map(|s| s.request_start);
    let mut sorted: Vec<&Recorded<'_>> = events.iter().collect();
    sorted.sort_by_key(|r| r.sort_key());
    for rec in sorted {
        match rec.time() {
            None => match Replayer::target(&rec.event) {
                Some((_, key)) => {
                    replayer.warn(rec, key, WarningKind::NoTime);
                }
                None => replayer.counts.ignored += 1,
            },
            Some(t) if t > at || from.is_some_and(|from| t < from) => {}
            Some(_) => {
                replayer.apply(rec);
            }
        }
    }
    Ok(replayer.finish())
}
