//! The query value every backend translates, and search requests and pages.

use std::ops::Bound;

use auditrail_event::EventId;
use jiff::Timestamp;

use crate::StoredEvent;

/// An indexed field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// Event id (keyword).
    Id,
    /// Cluster name (keyword).
    Cluster,
    /// `kube` or `ee` (keyword).
    Type,
    /// Audit level (keyword).
    Level,
    /// Stage (keyword).
    Stage,
    /// auditID (keyword).
    AuditId,
    /// Verb (keyword).
    Verb,
    /// `user.username` (keyword).
    Username,
    /// `user.groups` (keyword, multi-valued).
    UserGroups,
    /// `sourceIPs` (keyword, multi-valued; exact string match).
    SourceIps,
    /// `objectRef.resource` (keyword).
    Resource,
    /// `objectRef.namespace` (keyword).
    Namespace,
    /// `objectRef.name` (keyword).
    ObjectName,
    /// `objectRef.apiGroup` (keyword).
    ApiGroup,
    /// `objectRef.apiVersion` (keyword).
    ApiVersion,
    /// `objectRef.subresource` (keyword).
    Subresource,
    /// Derived name (keyword).
    Name,
    /// Derived kind (keyword, compared case-insensitively: `networkpolicy`
    /// matches `NetworkPolicy`).
    Kind,
    /// `requestURI` (keyword).
    RequestUri,
    /// `responseStatus.code` (integer).
    ResponseCode,
    /// Dry run (boolean).
    DryRun,
    /// `requestReceivedTimestamp` (time).
    RequestReceived,
    /// `stageTimestamp` (time).
    StageTimestamp,
    /// The timeline time (time).
    Time,
}

/// A value to compare a field with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// For keyword fields.
    Str(String),
    /// For integer fields.
    Int(i64),
    /// For boolean fields.
    Bool(bool),
    /// For time fields.
    Time(Timestamp),
}

/// A query over stored events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// Every event.
    All,
    /// The field has exactly this value (for multi-valued fields: one of its
    /// values is this value). A keyword field compared with `""` matches
    /// events where the field is empty or absent.
    Eq(Field, Value),
    /// The field has one of these values.
    In(Field, Vec<Value>),
    /// The field lies in the range (integer and time fields).
    Range {
        /// The field.
        field: Field,
        /// Lower bound.
        lower: Bound<Value>,
        /// Upper bound.
        upper: Bound<Value>,
    },
    /// Keyword field contains this substring (e.g. `dryRun` in requestURI).
    Contains(Field, String),
    /// All of these.
    And(Vec<Query>),
    /// Any of these.
    Or(Vec<Query>),
    /// Not this.
    Not(Box<Query>),
}

impl Query {
    /// `field == value` for a keyword field.
    pub fn eq(field: Field, value: impl Into<String>) -> Self {
        Self::Eq(field, Value::Str(value.into()))
    }

    /// `field` is one of `values` (keyword fields).
    pub fn one_of(field: Field, values: &[&str]) -> Self {
        Self::In(
            field,
            values.iter().map(|v| Value::Str((*v).to_owned())).collect(),
        )
    }

    /// Events about objects of the kind a person named: a kind, plural,
    /// singular or short name in any case, optionally `.group`
    /// (`auditrail_event::resource::resolve_kind`). Matched on the resource,
    /// so every event of that resource matches whatever object it carried.
    /// A name the resource table does not know is taken as a resource name,
    /// which is the kind shown for unknown resources.
    pub fn kind(name: &str) -> Self {
        match auditrail_event::resource::resolve_kind(name) {
            Some(k) => {
                let resources = Self::one_of(Field::Resource, &k.resources);
                match k.group {
                    Some(group) => Self::And(vec![resources, Self::eq(Field::ApiGroup, group)]),
                    None => resources,
                }
            }
            None => Self::eq(Field::Resource, name.trim().to_ascii_lowercase()),
        }
    }

    /// The events a timeline shows: changes (create, update, patch, delete,
    /// deletecollection) and sessions into pods (exec, attach,
    /// port-forward), whatever their verb
    /// (`auditrail_event::meaning`). Reads are not changes.
    pub fn timeline_actions() -> Self {
        use auditrail_event::meaning::{CHANGE_VERBS, SESSION_SUBRESOURCES};
        Self::Or(vec![
            Self::one_of(Field::Verb, &CHANGE_VERBS),
            Self::one_of(Field::Subresource, &SESSION_SUBRESOURCES),
        ])
    }

    /// Events whose time is in `[from, to)`.
    pub fn time_range(from: Option<Timestamp>, to: Option<Timestamp>) -> Self {
        Self::Range {
            field: Field::Time,
            lower: from.map_or(Bound::Unbounded, |t| Bound::Included(Value::Time(t))),
            upper: to.map_or(Bound::Unbounded, |t| Bound::Excluded(Value::Time(t))),
        }
    }
}

/// The order of a search.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SortOrder {
    /// Newest first (the timeline's order).
    #[default]
    NewestFirst,
    /// Oldest first.
    OldestFirst,
}

/// A position in a sorted result: the last event of the previous page.
/// Paging by position (search-after on time, then id) stays correct while
/// new events arrive, unlike offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The time of the last event returned.
    pub time: Timestamp,
    /// Its id (ties on time are ordered by id, in the sort's direction).
    pub id: EventId,
}

/// One page of a search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRequest {
    /// What to match.
    pub query: Query,
    /// In which order.
    pub sort: SortOrder,
    /// Page size (the caller enforces its limits).
    pub limit: usize,
    /// Continue after this position.
    pub after: Option<Cursor>,
    /// Whether to return the original bytes.
    pub include_raw: bool,
    /// How far to count the matches ([`SearchPage::total`]).
    pub count: CountMode,
}

/// How far a search counts its matches. Counting visits every match, which
/// costs more than finding a page on large results, so a search usually
/// counts up to a limit (as Elasticsearch's `track_total_hits` does).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CountMode {
    /// No count (paging through an export).
    #[default]
    None,
    /// Exactly up to this many matches, then a lower bound.
    UpTo(u64),
    /// Every match.
    Exact,
}

/// The number of matches of a search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Total {
    /// Matches counted.
    pub count: u64,
    /// Whether that is all of them; `false` when counting stopped at the
    /// limit of [`CountMode::UpTo`] (`count` is then a lower bound).
    pub exact: bool,
}

/// The answer to a [`SearchRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPage {
    /// The events, in the requested order.
    pub events: Vec<StoredEvent>,
    /// Number of events matching the query (all pages), as far as
    /// [`SearchRequest::count`] asked; `None` for [`CountMode::None`].
    pub total: Option<Total>,
    /// Position to continue from; `None` on the last page.
    pub next: Option<Cursor>,
}
