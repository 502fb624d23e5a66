//! The tantivy schema of an auditrail index and the mapping of an
//! [`IndexedEvent`] to a tantivy document.
//!
//! The schema is fixed and identical for every cluster's index, so field
//! handles are computed once ([`fields`]) and shared by query translation,
//! writers and collectors. Choices that matter for correctness:
//!
//! - Keyword fields use the `raw` tokenizer (like tantivy's `STRING`, but
//!   without field norms, which only scoring reads): one term per
//!   value, exact and case-sensitive, like an Elasticsearch `keyword`. A
//!   single-valued keyword field with no value is indexed as the empty string,
//!   and a multi-valued one with no values as one empty string, so
//!   `Eq(field, "")` ("empty or absent") is a plain term lookup. A value longer
//!   than tantivy's `MAX_TOKEN_LEN` (65 530 bytes) is not indexed at all
//!   (tantivy drops it), so it matches no keyword filter.
//! - Times are date fields with microsecond precision (what the API server
//!   writes). Tantivy keeps dates as `i64` nanoseconds and indexes their terms
//!   at second precision only, so every time comparison goes through the fast
//!   (columnar) field, which keeps microseconds. A stored time is the event's
//!   time floored to the microsecond and clamped to what `i64` nanoseconds can
//!   hold (1677-09-21 to 2262-04-11).
//! - The event id is stored as its 32 raw bytes and also as four
//!   fast `u64` columns holding its 32 bytes big-endian: comparing the four
//!   numbers in order is comparing the ids, which gives searches an exact
//!   (time, id) total order without reading the document store. Only the
//!   first column is indexed (see `writer::IdLookup` and `query::id_query`).
//! - The fields a histogram reports top values of (verb, resource, username,
//!   namespace) are also fast (columnar, dictionary-encoded), so counting
//!   values reads one ordinal per document instead of the document store.
//! - The original JSON is a stored *text* field, not bytes: tantivy reads a
//!   stored bytes value one byte at a time, a string in one copy, and JSON is
//!   UTF-8 anyway. That made reading events (exports, pages) markedly faster.
//! - The kind is indexed lower-cased: kinds are matched case-insensitively
//!   (`networkpolicy` finds `NetworkPolicy`), and the stored original keeps
//!   the real spelling.

use std::sync::LazyLock;

use auditrail_store::IndexedEvent;
use jiff::Timestamp;
use tantivy::DateTime;
use tantivy::schema::document::{Document, ReferenceValue, ReferenceValueLeaf, Value};
use tantivy::schema::{
    DateOptions, DateTimePrecision, FAST, Field, IndexRecordOption, NumericOptions, STORED, Schema,
    TextFieldIndexing, TextOptions,
};

/// Field names (also the names of the fast columns).
pub(crate) const ID: &str = "id";
pub(crate) const ID_PARTS: [&str; 4] = ["id_0", "id_1", "id_2", "id_3"];
pub(crate) const TIME: &str = "time";
pub(crate) const VERB: &str = "verb";
pub(crate) const RESOURCE: &str = "resource";
pub(crate) const USERNAME: &str = "username";
pub(crate) const NAMESPACE: &str = "namespace";

/// Handles of every field of the schema.
#[derive(Debug, Clone)]
pub(crate) struct Fields {
    pub(crate) schema: Schema,
    pub(crate) id: Field,
    pub(crate) id_parts: [Field; 4],
    pub(crate) cluster: Field,
    pub(crate) event_type: Field,
    pub(crate) level: Field,
    pub(crate) stage: Field,
    pub(crate) audit_id: Field,
    pub(crate) verb: Field,
    pub(crate) username: Field,
    pub(crate) user_groups: Field,
    pub(crate) source_ips: Field,
    pub(crate) resource: Field,
    pub(crate) namespace: Field,
    pub(crate) object_name: Field,
    pub(crate) api_group: Field,
    pub(crate) object_api_version: Field,
    pub(crate) subresource: Field,
    pub(crate) name: Field,
    pub(crate) kind: Field,
    pub(crate) request_uri: Field,
    pub(crate) response_code: Field,
    pub(crate) dry_run: Field,
    pub(crate) request_received: Field,
    pub(crate) stage_timestamp: Field,
    pub(crate) time: Field,
    pub(crate) raw: Field,
    pub(crate) provenance: Field,
}

fn date_options(stored: bool) -> DateOptions {
    // Fast only, not indexed: every time comparison runs on the fast column
    // (the inverted index would hold second-precision terms nobody reads,
    // and building their term dictionary costs ingest time).
    let options = DateOptions::default()
        .set_fast()
        .set_precision(DateTimePrecision::Microseconds);
    if stored {
        options.set_stored()
    } else {
        options
    }
}

/// A keyword field: the `raw` tokenizer (one term per value), document ids
/// only, and no field norms. Tantivy's `STRING` keeps a norm per document
/// and field, which only scoring reads; every auditrail search runs with
/// scoring disabled, so recording them was pure ingest cost.
fn keyword() -> TextOptions {
    TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("raw")
            .set_index_option(IndexRecordOption::Basic)
            .set_fieldnorms(false),
    )
}

/// An indexed number (or bool) without field norms (tantivy's `INDEXED`
/// records them; see [`keyword`]).
fn indexed_number() -> NumericOptions {
    NumericOptions::default().set_indexed()
}

fn build() -> Fields {
    let mut b = Schema::builder();
    // Random keys are the costliest terms for the term dictionary (an SSTable)
    // to build at every commit and merge, so only the id's first 8 bytes
    // (`id_0`) are indexed; a lookup checks the other 24 bytes in the fast
    // columns. The id itself is stored as 32 raw bytes.
    let id = b.add_bytes_field(ID, STORED);
    let id_parts = ID_PARTS.map(|name| {
        if name == ID_PARTS[0] {
            b.add_u64_field(name, indexed_number().set_fast())
        } else {
            b.add_u64_field(name, FAST)
        }
    });
    let cluster = b.add_text_field("cluster", keyword() | STORED);
    let event_type = b.add_text_field("type", keyword() | STORED);
    let level = b.add_text_field("level", keyword());
    let stage = b.add_text_field("stage", keyword());
    let audit_id = b.add_text_field("audit_id", keyword());
    let verb = b.add_text_field(VERB, keyword() | FAST);
    let username = b.add_text_field(USERNAME, keyword() | FAST);
    let user_groups = b.add_text_field("user_groups", keyword());
    let source_ips = b.add_text_field("source_ips", keyword());
    let resource = b.add_text_field(RESOURCE, keyword() | FAST);
    let namespace = b.add_text_field(NAMESPACE, keyword() | FAST);
    let object_name = b.add_text_field("object_name", keyword());
    let api_group = b.add_text_field("api_group", keyword());
    let object_api_version = b.add_text_field("object_api_version", keyword());
    let subresource = b.add_text_field("subresource", keyword());
    let name = b.add_text_field("name", keyword());
    let kind = b.add_text_field("kind", keyword());
    let request_uri = b.add_text_field("request_uri", keyword());
    let response_code = b.add_i64_field("response_code", indexed_number().set_fast());
    let dry_run = b.add_bool_field("dry_run", indexed_number());
    let request_received = b.add_date_field("request_received", date_options(false));
    let stage_timestamp = b.add_date_field("stage_timestamp", date_options(false));
    let time = b.add_date_field(TIME, date_options(true));
    let raw = b.add_text_field("raw", STORED);
    // How the event arrived (compact JSON), stored beside the original
    // bytes and never inside them; not searchable.
    let provenance = b.add_text_field("provenance", STORED);
    Fields {
        schema: b.build(),
        id,
        id_parts,
        cluster,
        event_type,
        level,
        stage,
        audit_id,
        verb,
        username,
        user_groups,
        source_ips,
        resource,
        namespace,
        object_name,
        api_group,
        object_api_version,
        subresource,
        name,
        kind,
        request_uri,
        response_code,
        dry_run,
        request_received,
        stage_timestamp,
        time,
        raw,
        provenance,
    }
}

static FIELDS: LazyLock<Fields> = LazyLock::new(build);

/// The schema's field handles (the same for every index).
pub(crate) fn fields() -> &'static Fields {
    &FIELDS
}

/// The schema of every auditrail tantivy index.
pub fn schema() -> Schema {
    fields().schema.clone()
}

/// Smallest and largest microsecond counts whose nanosecond count fits `i64`
/// (tantivy's `DateTime`).
const MIN_MICROS: i64 = i64::MIN / 1000;
const MAX_MICROS: i64 = i64::MAX / 1000;

fn clamp_micros(micros: i128) -> i64 {
    i64::try_from(micros.clamp(i128::from(MIN_MICROS), i128::from(MAX_MICROS)))
        .unwrap_or(if micros < 0 { MIN_MICROS } else { MAX_MICROS })
}

/// `t` in whole microseconds, rounded down, clamped to the storable range.
pub(crate) fn floor_micros(t: Timestamp) -> i64 {
    clamp_micros(t.as_nanosecond().div_euclid(1000))
}

/// `t` in whole microseconds, rounded up, clamped to the storable range.
pub(crate) fn ceil_micros(t: Timestamp) -> i64 {
    let nanos = t.as_nanosecond();
    clamp_micros(nanos.div_euclid(1000) + i128::from(nanos.rem_euclid(1000) != 0))
}

/// A microsecond count as a tantivy date.
pub(crate) fn date(micros: i64) -> DateTime {
    DateTime::from_timestamp_micros(micros.clamp(MIN_MICROS, MAX_MICROS))
}

/// How `t` is stored.
pub(crate) fn stored_date(t: Timestamp) -> DateTime {
    date(floor_micros(t))
}

/// A stored date back as a timestamp.
pub(crate) fn timestamp(micros: i64) -> Option<Timestamp> {
    Timestamp::from_microsecond(micros).ok()
}

/// The id's 32 bytes as four big-endian `u64`s (same order as the bytes).
pub(crate) fn id_parts(id: &auditrail_event::EventId) -> [u64; 4] {
    let bytes = id.as_bytes();
    std::array::from_fn(|i| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[i * 8..(i + 1) * 8]);
        u64::from_be_bytes(word)
    })
}

/// A value of an [`EventDocument`]: always a leaf (the schema has no JSON
/// or object fields), borrowed from the event.
#[derive(Debug, Clone)]
pub(crate) struct Leaf<'a>(ReferenceValueLeaf<'a>);

impl<'a> Value<'a> for Leaf<'a> {
    type ArrayIter = std::iter::Empty<Self>;
    type ObjectIter = std::iter::Empty<(&'a str, Self)>;

    fn as_value(&self) -> ReferenceValue<'a, Self> {
        ReferenceValue::Leaf(self.0.clone())
    }
}

/// The fields a document has at most one value of.
const SINGLE_VALUED: usize = 28;

/// An event as tantivy indexes it, the event itself moved in (nothing is
/// copied into a `TantivyDocument`): tantivy walks its fields several times
/// (inverted index, fast columns, document store), each time reading the
/// event's own strings. The original JSON was checked for UTF-8 once, when
/// the document was made.
#[derive(Debug)]
pub(crate) struct EventDocument {
    event: IndexedEvent,
    raw: String,
    kind: String,
    provenance: Option<String>,
    id_parts: [u64; 4],
}

impl EventDocument {
    /// The document of `event`, or the event's id when its JSON is not
    /// UTF-8.
    pub(crate) fn new(mut event: IndexedEvent) -> Result<Self, auditrail_event::EventId> {
        let Ok(raw) = String::from_utf8(std::mem::take(&mut event.raw)) else {
            return Err(event.id);
        };
        Ok(Self {
            raw,
            kind: event.kind.to_lowercase(),
            provenance: event
                .provenance
                .as_ref()
                .map(auditrail_store::Provenance::to_json),
            id_parts: id_parts(&event.id),
            event,
        })
    }

    /// The event's id.
    pub(crate) fn id(&self) -> &auditrail_event::EventId {
        &self.event.id
    }

    /// The id's first 8 bytes (the indexed `id_0` column), computed once.
    pub(crate) fn id_prefix(&self) -> u64 {
        self.id_parts[0]
    }

    /// The cluster the event came from.
    pub(crate) fn cluster(&self) -> &str {
        &self.event.cluster
    }
}

/// A keyword field's values: each given one, or one empty string when
/// there are none (so `Eq(field, "")` finds events without a value).
#[derive(Debug)]
pub(crate) struct Keywords<'a> {
    field: Field,
    values: std::slice::Iter<'a, String>,
    empty: bool,
}

impl<'a> Keywords<'a> {
    fn new(field: Field, values: &'a [String]) -> Self {
        Self {
            field,
            values: values.iter(),
            empty: values.is_empty(),
        }
    }
}

impl<'a> Iterator for Keywords<'a> {
    type Item = (Field, Leaf<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        if std::mem::take(&mut self.empty) {
            return Some((self.field, Leaf(ReferenceValueLeaf::Str(""))));
        }
        let value = self.values.next()?;
        Some((self.field, Leaf(ReferenceValueLeaf::Str(value))))
    }
}

/// The fields and values of an [`EventDocument`], without allocating.
pub(crate) type FieldValues<'a> = std::iter::Chain<
    std::iter::Chain<
        std::iter::Flatten<std::array::IntoIter<Option<(Field, Leaf<'a>)>, SINGLE_VALUED>>,
        Keywords<'a>,
    >,
    Keywords<'a>,
>;

fn text(field: Field, value: &str) -> (Field, Leaf<'_>) {
    (field, Leaf(ReferenceValueLeaf::Str(value)))
}

fn date_value(field: Field, t: Timestamp) -> (Field, Leaf<'static>) {
    (field, Leaf(ReferenceValueLeaf::Date(stored_date(t))))
}

fn u64_value(field: Field, v: u64) -> (Field, Leaf<'static>) {
    (field, Leaf(ReferenceValueLeaf::U64(v)))
}

impl Document for EventDocument {
    type Value<'a> = Leaf<'a>;
    type FieldsValuesIter<'a> = FieldValues<'a>;

    fn iter_fields_and_values(&self) -> FieldValues<'_> {
        let f = fields();
        let e = &self.event;
        let [id_0, id_1, id_2, id_3] = self.id_parts;
        let single: [Option<(Field, Leaf<'_>)>; SINGLE_VALUED] = [
            Some((f.id, Leaf(ReferenceValueLeaf::Bytes(e.id.as_bytes())))),
            Some(u64_value(f.id_parts[0], id_0)),
            Some(u64_value(f.id_parts[1], id_1)),
            Some(u64_value(f.id_parts[2], id_2)),
            Some(u64_value(f.id_parts[3], id_3)),
            Some(text(f.cluster, &e.cluster)),
            Some(text(f.event_type, e.event_type.as_str())),
            Some(text(f.level, e.level.as_str())),
            Some(text(f.stage, e.stage.map_or("", |s| s.as_str()))),
            Some(text(f.audit_id, &e.audit_id)),
            Some(text(f.verb, &e.verb)),
            Some(text(f.username, &e.username)),
            Some(text(f.resource, &e.resource)),
            Some(text(f.namespace, &e.namespace)),
            Some(text(f.object_name, &e.object_name)),
            Some(text(f.api_group, &e.api_group)),
            Some(text(f.object_api_version, &e.object_api_version)),
            Some(text(f.subresource, &e.subresource)),
            Some(text(f.name, &e.name)),
            Some(text(f.kind, &self.kind)),
            Some(text(f.request_uri, &e.request_uri)),
            e.response_code.map(|code| {
                (
                    f.response_code,
                    Leaf(ReferenceValueLeaf::I64(i64::from(code))),
                )
            }),
            Some((f.dry_run, Leaf(ReferenceValueLeaf::Bool(e.dry_run)))),
            Some(date_value(f.time, e.time)),
            e.request_received
                .map(|t| date_value(f.request_received, t)),
            e.stage_timestamp.map(|t| date_value(f.stage_timestamp, t)),
            Some(text(f.raw, &self.raw)),
            self.provenance.as_deref().map(|p| text(f.provenance, p)),
        ];
        single
            .into_iter()
            .flatten()
            .chain(Keywords::new(f.user_groups, &e.user_groups))
            .chain(Keywords::new(f.source_ips, &e.source_ips))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_round_in_the_right_direction() {
        let whole = Timestamp::from_microsecond(1_000_001).unwrap();
        assert_eq!(floor_micros(whole), 1_000_001);
        assert_eq!(ceil_micros(whole), 1_000_001);
        let frac = Timestamp::from_nanosecond(1_000_001_500).unwrap();
        assert_eq!(floor_micros(frac), 1_000_001);
        assert_eq!(ceil_micros(frac), 1_000_002);
        let neg = Timestamp::from_nanosecond(-1_500).unwrap();
        assert_eq!(floor_micros(neg), -2);
        assert_eq!(ceil_micros(neg), -1);
        assert_eq!(floor_micros(Timestamp::MAX), MAX_MICROS);
        assert_eq!(floor_micros(Timestamp::MIN), MIN_MICROS);
    }

    #[test]
    fn a_document_has_every_field_and_the_event_its_values() {
        let line = br#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"a-1","stage":"ResponseComplete","requestURI":"/apis/networking.k8s.io/v1/namespaces/prod/networkpolicies/deny","verb":"create","user":{"username":"alice","groups":["devs","system:authenticated"]},"sourceIPs":["10.0.0.1"],"objectRef":{"resource":"networkpolicies","namespace":"prod","name":"deny","apiGroup":"networking.k8s.io","apiVersion":"v1"},"responseStatus":{"code":201},"requestReceivedTimestamp":"2026-01-01T00:00:00.000001Z","stageTimestamp":"2026-01-01T00:00:00.000002Z"}"#;
        let event = IndexedEvent::from_raw(
            "c",
            line,
            auditrail_event::EventType::Kube,
            Timestamp::UNIX_EPOCH,
        )
        .expect("event");
        let event = IndexedEvent {
            provenance: Some(auditrail_store::Provenance {
                source: "s".into(),
                position: None,
                ingested_by: "ingestor".into(),
                ingested_by_groups: Vec::new(),
                ingested_from: String::new(),
                ingested_at: Timestamp::UNIX_EPOCH,
            }),
            ..event
        };
        let doc = EventDocument::new(event).expect("UTF-8");
        let f = fields();
        let mut seen: Vec<(String, String)> = doc
            .iter_fields_and_values()
            .map(|(field, value)| {
                let name = f.schema.get_field_name(field).to_owned();
                let value = match value.0 {
                    ReferenceValueLeaf::Str(s) if field == f.raw => format!("{} bytes", s.len()),
                    ReferenceValueLeaf::Str(s) => s.to_owned(),
                    ReferenceValueLeaf::I64(v) => v.to_string(),
                    ReferenceValueLeaf::U64(_) | ReferenceValueLeaf::Bytes(_) => "id".to_owned(),
                    ReferenceValueLeaf::Bool(v) => v.to_string(),
                    ReferenceValueLeaf::Date(d) => d.into_timestamp_micros().to_string(),
                    other => format!("{other:?}"),
                };
                (name, value)
            })
            .collect();
        // Every field of the schema, each exactly once, except the
        // multi-valued ones: once per value (two groups, one address).
        let mut names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
        let mut expected: Vec<&str> = f.schema.fields().map(|(_, e)| e.name()).collect();
        expected.push("user_groups");
        names.sort_unstable();
        expected.sort_unstable();
        assert_eq!(names, expected);
        seen.sort();
        let value = |name: &str| -> Vec<&str> {
            seen.iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        assert_eq!(value("kind"), ["networkpolicy"]);
        assert_eq!(
            value("provenance"),
            [r#"{"source":"s","ingestedBy":"ingestor","ingestedAt":"1970-01-01T00:00:00Z"}"#]
        );
        assert_eq!(value("user_groups"), ["devs", "system:authenticated"]);
        assert_eq!(value("source_ips"), ["10.0.0.1"]);
        assert_eq!(value("subresource"), [""]);
        assert_eq!(value("response_code"), ["201"]);
        assert_eq!(value("dry_run"), ["false"]);
        assert_eq!(value("time"), ["1767225600000002"]);
        assert_eq!(value("request_received"), ["1767225600000001"]);
        assert_eq!(value("raw"), [format!("{} bytes", line.len()).as_str()]);
    }

    #[test]
    fn a_document_needs_utf8() {
        let good = IndexedEvent::from_raw(
            "c",
            br#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a","stage":"ResponseComplete","verb":"get","requestURI":"/x"}"#,
            auditrail_event::EventType::Kube,
            Timestamp::UNIX_EPOCH,
        )
        .expect("event");
        let mut bad = good.clone();
        bad.raw.push(0xff);
        let id = EventDocument::new(bad.clone()).expect_err("not UTF-8");
        assert_eq!(id, bad.id);
        assert!(EventDocument::new(good).is_ok());
    }

    #[test]
    fn id_parts_order_like_ids() {
        let a = auditrail_event::EventId::compute("c", b"a");
        let b = auditrail_event::EventId::compute("c", b"b");
        assert_eq!(a.cmp(&b), id_parts(&a).cmp(&id_parts(&b)));
    }
}
