//! Property-based fuzzing of `IndexedEvent::from_raw`, what the indexer
//! runs on every line it receives, on mutations of the real samples and on
//! any bytes. Runs 256 cases by default; `PROPTEST_CASES=100000 cargo test
//! -p auditrail-store fuzz` runs more.

#[path = "../../event/tests/support/fuzz_input.rs"]
mod fuzz_input;

use auditrail_event::{EventId, EventType, parse_line};
use auditrail_store::IndexedEvent;
use fuzz_input::{config, event_input};
use jiff::Timestamp;
use proptest::prelude::*;

proptest! {
    #![proptest_config(config(256))]

    /// A line is indexed exactly when it parses; the indexed event is keyed
    /// by the id of its bytes (the same for the same bytes, another in
    /// another cluster), keeps those bytes and files itself under the
    /// event's own time, else the time it was received.
    #[test]
    fn fuzz_indexed_event_from_raw(line in event_input(), cluster in "[a-z0-9-]{0,12}") {
        let now = Timestamp::from_second(1_800_000_000).expect("a time");
        let indexed = IndexedEvent::from_raw(&cluster, &line, EventType::Kube, now);
        let parsed = parse_line(&line);
        match (indexed, parsed) {
            (Err(err), Err(parse_err)) => {
                prop_assert_eq!(&err.0, &parse_err);
                prop_assert!(!err.to_string().is_empty());
            }
            (Ok(indexed), Ok(parsed)) => {
                prop_assert_eq!(indexed.raw.as_slice(), parsed.raw);
                prop_assert_eq!(indexed.id, EventId::compute(&cluster, parsed.raw));
                prop_assert_ne!(indexed.id, EventId::compute(&format!("{cluster}x"), parsed.raw));
                let again = IndexedEvent::from_raw(&cluster, &line, EventType::Ee, now)
                    .expect("the same bytes index again");
                prop_assert_eq!(again.id, indexed.id);
                prop_assert_eq!(indexed.time, parsed.event.time().unwrap_or(now));
                prop_assert_eq!(&indexed.verb, &parsed.event.verb);
                prop_assert_eq!(indexed.name, parsed.event.derived_name().unwrap_or_default());
                prop_assert_eq!(indexed.kind, parsed.event.derived_kind().unwrap_or_default());
            }
            (indexed, parsed) => prop_assert!(
                false,
                "from_raw {:?} but parse_line {:?}",
                indexed.map(|e| e.id),
                parsed.map(|_| ())
            ),
        }
    }
}
