//! Bulk writes, built and read without I/O, so that every body this store
//! sends and every answer it can get is checked by unit tests.
//!
//! Three rules keep one bad event from stalling the trail, and a large
//! batch from being refused as a whole:
//!
//! - **Checked before sending.** An event Elasticsearch would refuse for
//!   good (a time `date_nanos` cannot hold, an index name over 255 bytes)
//!   is refused here, with the reason, and never sent.
//! - **Bounded by bytes.** A write is cut into bulks of at most
//!   `max_bulk_bytes` of NDJSON (an event larger than that goes alone), so
//!   no request meets `http.max_content_length`; a 413 all the same halves
//!   the bulk, and a single event that still gets one is refused.
//! - **Answered per item.** 2xx is stored, 409 already there (a re-send),
//!   429 and 5xx are tried again, 400 (the mapping cannot take the
//!   document) refuses that event alone. 401, 403 and 404 fail the write:
//!   they say the cluster is set up wrong for every event (credentials
//!   without `create_doc`, `action.auto_create_index` excluding our
//!   names), so the batch waits, is retried, and is stored once that is
//!   mended, instead of every event being dead-lettered.

use std::collections::HashSet;
use std::ops::Range;

use auditrail_store::{IndexedEvent, RefusedEvent, StoreError};
use bytes::Bytes;
use jiff::Timestamp;
use serde_json::{Value as Json, json};

use crate::mapping::{self, MAX_INDEX_NAME_BYTES, Naming};

/// The events of one write, ready to send.
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    /// Per event to send: its position in the write and its two NDJSON
    /// lines (`create` action and document), newline-terminated.
    pub(crate) lines: Vec<(usize, Bytes)>,
    /// Events given twice in the write (stored once).
    pub(crate) duplicates: u64,
    /// Events refused before sending.
    pub(crate) refused: Vec<RefusedEvent>,
}

/// Checks, de-duplicates and serialises the events of a write.
pub(crate) fn prepare(naming: Naming, events: &[IndexedEvent]) -> Prepared {
    let mut prepared = Prepared::default();
    let mut seen = HashSet::with_capacity(events.len());
    for (position, event) in events.iter().enumerate() {
        if !seen.insert(event.id) {
            prepared.duplicates += 1;
            continue;
        }
        match line(naming, event) {
            Ok(line) => prepared.lines.push((position, line)),
            Err(reason) => prepared.refused.push(RefusedEvent { position, reason }),
        }
    }
    prepared
}

/// An event's `create` action and document, or why Elasticsearch would
/// refuse it for good.
fn line(naming: Naming, event: &IndexedEvent) -> Result<Bytes, String> {
    for (field, time) in [
        ("time", Some(event.time)),
        ("requestReceivedTimestamp", event.request_received),
        ("stageTimestamp", event.stage_timestamp),
    ] {
        if let Some(t) = time.filter(|t| !mapping::in_date_nanos_range(*t)) {
            return Err(format!(
                "{field} {t} is outside what Elasticsearch's date_nanos holds \
                 ({} to {})",
                Timestamp::UNIX_EPOCH,
                mapping::date_nanos_max()
            ));
        }
    }
    let index = naming.index(event);
    if index.len() > MAX_INDEX_NAME_BYTES {
        return Err(format!(
            "its index name would be {} bytes, over Elasticsearch's {MAX_INDEX_NAME_BYTES} \
             (cluster name {:?} is too long for the product's index names)",
            index.len(),
            event.cluster
        ));
    }
    let action = json!({ "create": { "_index": index, "_id": event.id.to_hex() } });
    let mut text = action.to_string();
    text.push('\n');
    text.push_str(&mapping::document(event).to_string());
    text.push('\n');
    Ok(Bytes::from(text))
}

/// Cuts `sizes` (bytes per event, in order) into consecutive ranges of at
/// most `max_bytes` each; an event larger than `max_bytes` is a range of
/// its own.
pub(crate) fn split_by_bytes(sizes: &[usize], max_bytes: usize) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, size) in sizes.iter().enumerate() {
        if i > start && bytes + size > max_bytes {
            ranges.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < sizes.len() {
        ranges.push(start..sizes.len());
    }
    ranges
}

/// What one item of a bulk answer says of its event.
#[derive(Debug)]
pub(crate) enum Item {
    /// Stored now.
    Inserted,
    /// Already stored (a re-send).
    Duplicate,
    /// Refused for now (429, 5xx): send it again.
    Retry(String),
    /// Refused for good (400): report it, never send it again.
    Refused(String),
    /// Refused because the cluster is set up wrong for us (401, 403, 404):
    /// fail the write.
    Fatal(StoreError),
}

/// Reads one item of a bulk answer.
pub(crate) fn item(item: &Json) -> Item {
    let create = &item["create"];
    let status = create["status"].as_u64().unwrap_or(0);
    let error = &create["error"];
    let reason = match (error["type"].as_str(), error["reason"].as_str()) {
        (Some(kind), Some(reason)) => format!("{kind}: {reason}"),
        (None, Some(reason)) => reason.to_owned(),
        _ => "no reason given".to_owned(),
    };
    let index = create["_index"].as_str().unwrap_or("?");
    match status {
        200..=299 => Item::Inserted,
        409 => Item::Duplicate,
        429 | 500..=599 => Item::Retry(format!("{status}: {reason}")),
        401 | 403 => Item::Fatal(StoreError::Internal(format!(
            "Elasticsearch refused to write to {index} ({status}): {reason}; the credentials \
             need the create_doc and create_index privileges on the audit indices"
        ))),
        404 => Item::Fatal(StoreError::Internal(format!(
            "Elasticsearch has no index {index} and did not create it (404): {reason}; \
             action.auto_create_index must allow the audit indices"
        ))),
        _ => Item::Refused(format!(
            "Elasticsearch refused the event ({status}): {reason}"
        )),
    }
}

/// The items of a bulk answer for `sent` events, checked to be one each.
pub(crate) fn items(answer: &Json, sent: usize) -> Result<Vec<Item>, StoreError> {
    let items = answer["items"].as_array().map_or(&[][..], Vec::as_slice);
    if items.len() != sent {
        return Err(StoreError::Internal(format!(
            "Elasticsearch answered {} bulk items for {sent} events",
            items.len()
        )));
    }
    Ok(items.iter().map(item).collect())
}

#[cfg(test)]
mod tests {
    use auditrail_event::EventType;

    use super::*;

    fn event(cluster: &str, line: &str) -> IndexedEvent {
        IndexedEvent::from_raw(cluster, line.as_bytes(), EventType::Kube, Timestamp::now())
            .expect("event")
    }

    fn at(time: &str, audit_id: &str) -> String {
        format!(
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"{audit_id}","stage":"ResponseComplete","requestURI":"/api/v1/pods","verb":"list","user":{{"username":"u"}},"requestReceivedTimestamp":"{time}","stageTimestamp":"{time}"}}"#
        )
    }

    #[test]
    fn each_event_is_a_create_action_and_its_document() {
        let events = vec![
            event("prod", &at("2026-11-18T10:00:00Z", "a")),
            event("prod", &at("2026-11-18T10:00:00Z", "a")),
            event("prod", &at("2026-11-19T10:00:00Z", "b")),
        ];
        let prepared = prepare(Naming::Auditrail, &events);
        assert_eq!(prepared.duplicates, 1);
        assert!(prepared.refused.is_empty());
        let positions: Vec<usize> = prepared.lines.iter().map(|(p, _)| *p).collect();
        assert_eq!(positions, vec![0, 2]);
        let text = std::str::from_utf8(&prepared.lines[0].1).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(text.ends_with('\n'));
        let action: Json = serde_json::from_str(lines[0]).expect("action");
        assert_eq!(action["create"]["_index"], "auditrail-kube-2026.11.18");
        assert_eq!(action["create"]["_id"], events[0].id.to_hex());
        let document: Json = serde_json::from_str(lines[1]).expect("document");
        assert_eq!(document["cluster"], "prod");
        assert_eq!(document["id"], events[0].id.to_hex());
    }

    #[test]
    fn events_elasticsearch_would_refuse_for_good_are_refused_before_sending() {
        let events = vec![
            event("prod", &at("1969-07-20T20:17:40Z", "moon")),
            event("prod", &at("2026-11-18T10:00:00Z", "fine")),
            event("prod", &at("2300-01-01T00:00:00Z", "future")),
            event(&"c".repeat(240), &at("2026-11-18T10:00:00Z", "long")),
        ];
        let own = prepare(Naming::Auditrail, &events);
        // Our own names do not hold the cluster: a long one is fine.
        assert_eq!(
            own.lines.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
            vec![1, 3]
        );
        assert_eq!(
            own.refused.iter().map(|r| r.position).collect::<Vec<_>>(),
            vec![0, 2]
        );
        assert!(
            own.refused[0].reason.contains("1969-07-20T20:17:40Z")
                && own.refused[0].reason.contains("date_nanos"),
            "{}",
            own.refused[0].reason
        );
        let product = prepare(Naming::Product, &events);
        assert_eq!(
            product
                .refused
                .iter()
                .map(|r| r.position)
                .collect::<Vec<_>>(),
            vec![0, 2, 3]
        );
        assert!(
            product.refused[2]
                .reason
                .contains("over Elasticsearch's 255"),
            "{}",
            product.refused[2].reason
        );
    }

    #[test]
    fn bulks_are_cut_at_the_byte_budget() {
        assert_eq!(split_by_bytes(&[], 10), Vec::<Range<usize>>::new());
        assert_eq!(split_by_bytes(&[4, 4, 4, 4], 10), vec![0..2, 2..4]);
        assert_eq!(split_by_bytes(&[4, 6, 1], 10), vec![0..2, 2..3]);
        // An event over the budget goes alone, and so never blocks others.
        assert_eq!(split_by_bytes(&[3, 25, 3], 10), vec![0..1, 1..2, 2..3]);
        let sizes = vec![1000; 95];
        let ranges = split_by_bytes(&sizes, 10_000);
        assert_eq!(ranges.len(), 10);
        assert!(ranges.iter().all(|r| r.len() <= 10));
        assert_eq!(ranges.iter().map(Range::len).sum::<usize>(), 95);
    }

    #[test]
    fn bulk_items_are_read_one_by_one() {
        let answer = json!({ "errors": true, "items": [
            { "create": { "_index": "auditrail-kube-2026.11.18", "status": 201 } },
            { "create": { "status": 409, "error": { "type": "version_conflict_engine_exception", "reason": "exists" } } },
            { "create": { "status": 429, "error": { "type": "es_rejected_execution_exception", "reason": "queue full" } } },
            { "create": { "status": 503, "error": { "reason": "primary not active" } } },
            { "create": { "status": 400, "error": { "type": "document_parsing_exception", "reason": "failed to parse field [time]" } } },
            { "create": { "_index": "auditrail-kube-2026.11.18", "status": 403, "error": { "type": "security_exception", "reason": "action [indices:data/write/bulk[s]] is unauthorized" } } },
            { "create": { "_index": "auditrail-kube-2026.11.18", "status": 404, "error": { "type": "index_not_found_exception", "reason": "no such index" } } },
        ] });
        let items = items(&answer, 7).expect("items");
        assert!(matches!(items[0], Item::Inserted));
        assert!(matches!(items[1], Item::Duplicate));
        assert!(matches!(&items[2], Item::Retry(r) if r.contains("queue full")));
        assert!(matches!(&items[3], Item::Retry(r) if r.starts_with("503")));
        assert!(
            matches!(&items[4], Item::Refused(r) if r.contains("document_parsing_exception: failed to parse field [time]"))
        );
        assert!(
            matches!(&items[5], Item::Fatal(StoreError::Internal(m)) if m.contains("create_doc") && m.contains("auditrail-kube-2026.11.18"))
        );
        assert!(
            matches!(&items[6], Item::Fatal(StoreError::Internal(m)) if m.contains("auto_create_index"))
        );
        let err = super::items(&answer, 8).expect_err("one item short");
        assert!(
            err.to_string().contains("7 bulk items for 8 events"),
            "{err}"
        );
    }
}
