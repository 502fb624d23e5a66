//! Property-based fuzzing of what the query service reads from outside or
//! derives from a stored event: page tokens (`PageToken::decode` with any
//! string), the `AuditEvent` message of a stored event (summary, name,
//! kind, times), and the export documents. On mutations of the real
//! samples; 256 cases per property by default, `PROPTEST_CASES=100000 cargo
//! test -p auditrail-query fuzz` runs more.

#[path = "../../../crates/event/tests/support/fuzz_input.rs"]
mod fuzz_input;

use auditrail_event::{EventId, EventType, parse_line};
use auditrail_store::{Cursor, StoredEvent};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fuzz_input::{config, event_input, event_line, json_value, mutation};
use jiff::Timestamp;
use proptest::prelude::*;
use serde::Deserialize as _;
use serde_json::Value;

use crate::convert::audit_event;
use crate::token::PageToken;
use auditrail_document::{DocumentWriter, Format};

fn timestamp() -> impl Strategy<Value = Timestamp> {
    (
        Timestamp::MIN.as_second()..=Timestamp::MAX.as_second(),
        0..1_000_000_000i32,
        prop_oneof![Just(0i64), -2_000_000_000i64..2_000_000_000],
        any::<bool>(),
    )
        .prop_map(|(wide, nanos, near, use_near)| {
            let second = if use_near { near } else { wide };
            Timestamp::new(second, nanos).unwrap_or(Timestamp::UNIX_EPOCH)
        })
}

fn token() -> impl Strategy<Value = PageToken> {
    (
        any::<[u8; 16]>(),
        prop::option::of(timestamp()),
        timestamp(),
        timestamp(),
        any::<[u8; 32]>(),
    )
        .prop_map(|(fingerprint, from, to, time, id)| PageToken {
            fingerprint,
            from,
            to,
            after: Cursor {
                time,
                id: EventId::from_bytes(id),
            },
        })
}

/// Texts a client could send as a page token: anything, base64 of
/// anything, and base64 of a real token's JSON with fields changed.
fn token_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,80}",
        "[A-Za-z0-9_=-]{0,120}",
        prop::collection::vec(any::<u8>(), 0..120).prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
        (
            token(),
            prop::sample::select(&["v", "f", "from", "to", "t", "id", "x"][..]),
            json_value(),
            prop::collection::vec(mutation(), 0..2),
        )
            .prop_map(|(token, field, value, mutations)| {
                let json = URL_SAFE_NO_PAD
                    .decode(token.encode())
                    .expect("a token is base64");
                let mut doc: Value = serde_json::from_slice(&json).expect("a token is JSON");
                doc[field] = value;
                let mut bytes = serde_json::to_vec(&doc).expect("JSON");
                for m in &mutations {
                    m.apply(&mut bytes);
                }
                URL_SAFE_NO_PAD.encode(bytes)
            }),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    /// Any text is a token of this request or a refusal that says why.
    #[test]
    fn fuzz_page_token_decode(text in token_text(), fingerprint in any::<[u8; 16]>()) {
        if let Err(err) = PageToken::decode(&text, fingerprint) {
            prop_assert!(err.0.starts_with("page_token"), "{}", err);
            prop_assert!(err.0.len() < 200, "{}", err);
        }
    }

    /// Every token decodes to itself, for its own request only.
    #[test]
    fn fuzz_page_token_round_trip(token in token()) {
        let text = token.encode();
        prop_assert_eq!(PageToken::decode(&text, token.fingerprint), Ok(token.clone()));
        let mut other = token.fingerprint;
        other[0] ^= 1;
        prop_assert!(PageToken::decode(&text, other).is_err());
    }

    /// The message of a stored event: its summary is never blank, its
    /// times are valid protobuf timestamps of the event's own times.
    #[test]
    fn fuzz_audit_event(line in event_input()) {
        let Ok(parsed) = parse_line(&line) else {
            return Ok(());
        };
        let stored = StoredEvent {
            id: EventId::compute("c", parsed.raw),
            cluster: "c".to_owned(),
            event_type: EventType::Kube,
            time: parsed.event.time().unwrap_or(Timestamp::UNIX_EPOCH),
            raw: parsed.raw.to_vec(),
            provenance: None,
        };
        let message = audit_event(stored, true).expect("a parsed event converts");
        prop_assert!(!message.summary.trim().is_empty());
        prop_assert_eq!(&message.summary, &parsed.event.summary());
        prop_assert_eq!(message.raw.as_ref(), parsed.raw);
        let times = [
            (message.request_received_timestamp, parsed.event.request_received_timestamp),
            (message.stage_timestamp, parsed.event.stage_timestamp.or(parsed.event.timestamp)),
        ];
        for (sent, time) in times {
            prop_assert_eq!(sent.is_some(), time.is_some());
            if let (Some(sent), Some(time)) = (sent, time) {
                prop_assert!((0..1_000_000_000).contains(&sent.nanos), "{:?} for {}", sent, time);
                prop_assert_eq!(Timestamp::new(sent.seconds, sent.nanos).ok(), Some(time));
            }
        }
    }

    /// An export document of stored events: JSON and NDJSON are the
    /// original bytes; each YAML document reads back as the event's JSON,
    /// or is the event's JSON after a note.
    #[test]
    fn fuzz_export_documents(lines in prop::collection::vec(event_line(), 1..4)) {
        let events: Vec<Vec<u8>> = lines
            .into_iter()
            .filter_map(|l| parse_line(&l).ok().map(|p| p.raw.to_vec()))
            .collect();
        for format in [Format::Json, Format::Ndjson, Format::Yaml] {
            let mut writer = DocumentWriter::new(format);
            let mut out = Vec::new();
            for raw in &events {
                writer.event(raw, &mut out).expect("an event is written");
            }
            writer.finish(&mut out);
            let text = String::from_utf8(out).expect("documents are UTF-8");
            match format {
                Format::Json => {
                    let all: Vec<&serde_json::value::RawValue> =
                        serde_json::from_str(&text).expect("a JSON array");
                    let got: Vec<&[u8]> = all.iter().map(|r| r.get().as_bytes()).collect();
                    // (A raw value is read without the white space around it.)
                    let want: Vec<&[u8]> = events.iter().map(|e| e.trim_ascii()).collect();
                    prop_assert_eq!(got, want);
                }
                Format::Ndjson => {
                    let want: Vec<u8> = events.iter().flat_map(|e| [e.as_slice(), b"\n"].concat()).collect();
                    prop_assert_eq!(text.as_bytes(), want.as_slice());
                }
                Format::Yaml => {
                    let originals: Result<Vec<Value>, _> =
                        events.iter().map(|e| serde_json::from_slice::<Value>(e)).collect();
                    if events.is_empty() {
                        prop_assert_eq!(text, "");
                        continue;
                    }
                    let Ok(originals) = originals else {
                        // Deeper than the JSON parser's limit: shown as
                        // its JSON after a note, which YAML cannot read
                        // back either.
                        prop_assert!(text.contains("# auditrail: this event is shown as its original JSON"));
                        continue;
                    };
                    let back: Vec<Value> = serde_norway::Deserializer::from_str(&text)
                        .map(|document| Value::deserialize(document).expect("YAML reads back"))
                        .collect();
                    prop_assert_eq!(back, originals);
                }
            }
        }
    }
}

/// Regression inputs found while fuzzing, as plain tests.
mod found {
    use super::*;

    /// Found by `fuzz_audit_event`: a time before 1970 with a fraction of
    /// a second was sent with negative nanos, which protobuf timestamps do
    /// not allow (nanos are 0..1e9, the seconds rounded down).
    #[test]
    fn times_before_1970_have_nanos_in_range() {
        let time: Timestamp = "1969-12-31T23:59:59.5Z".parse().expect("time");
        let sent = auditrail_proto::timestamp(time);
        assert_eq!((sent.seconds, sent.nanos), (-1, 500_000_000));
        assert_eq!(Timestamp::new(sent.seconds, sent.nanos).ok(), Some(time));
    }
}
