//! Property-based fuzzing of versions and diffs: `version_of` on mutations
//! of the real samples, `diff_objects` and the YAML rendering on the
//! objects of those events and on generated JSON. Runs 256 cases per
//! property by default; `PROPTEST_CASES=100000 cargo test -p
//! auditrail-versions fuzz` runs more.

#[path = "../../event/tests/support/fuzz_input.rs"]
mod fuzz_input;

use auditrail_event::parse_line;
use auditrail_versions::{diff_objects, strip_noisy_metadata, to_sorted_yaml, version_of};
use fuzz_input::{Wrap, config, event_input, event_line, json_value, nest};
use proptest::prelude::*;
use serde_json::Value;

/// An object as a response carries it: generated, from a mutated real
/// event, or nested up to (and past) the JSON parser's depth limit.
fn object() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => json_value(),
        3 => event_line().prop_map(|line| {
            version_of(&line).ok().and_then(|v| v.object).unwrap_or(Value::Null)
        }),
        1 => (0..140usize, any::<bool>()).prop_map(|(depth, array)| {
            let wrap = if array { Wrap::Array } else { Wrap::Object };
            serde_json::from_str(&nest("{\"metadata\":{\"name\":\"x\"}}", wrap, depth))
                .unwrap_or(Value::Null)
        }),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    /// A version is read exactly from what parses, says what the event
    /// says, and its object is readable or the reason is given.
    #[test]
    fn fuzz_version_of(line in event_input()) {
        match (version_of(&line), parse_line(&line)) {
            (Err(err), Err(_)) => prop_assert!(!err.to_string().is_empty()),
            (Ok(version), Ok(parsed)) => {
                prop_assert_eq!(&version.summary, &parsed.event.summary());
                prop_assert_eq!(version.is_version, parsed.event.is_version());
                prop_assert_eq!(&version.key.name, &parsed.event.derived_name().unwrap_or_default());
                prop_assert!(version.object.is_none() || version.object_error.is_none());
                if let Some(why) = &version.object_error {
                    prop_assert!(!why.is_empty());
                    prop_assert!(parsed.event.response_object.is_some());
                }
                if let Some(object) = &version.object {
                    let _ = (version.resource_version(), version.uid());
                    to_sorted_yaml(object).expect("a parsed object renders");
                }
            }
            (version, parsed) => prop_assert!(
                false,
                "version_of {:?} but parse_line {:?}",
                version.map(|v| v.summary),
                parsed.map(|_| ())
            ),
        }
    }

    /// Two objects: identical exactly when equal (after stripping, when
    /// asked), else a unified diff under the two labels; stripping is
    /// idempotent.
    #[test]
    fn fuzz_diff_objects(from in object(), to in object(), ignore in any::<bool>(), context in 0..5usize) {
        let diff = diff_objects(&from, &to, ignore, context, "a", "b").expect("objects diff");
        let (mut a, mut b) = (from.clone(), to.clone());
        if ignore {
            strip_noisy_metadata(&mut a);
            strip_noisy_metadata(&mut b);
            let (mut a2, mut b2) = (a.clone(), b.clone());
            strip_noisy_metadata(&mut a2);
            strip_noisy_metadata(&mut b2);
            prop_assert_eq!(&a2, &a);
            prop_assert_eq!(&b2, &b);
        }
        prop_assert_eq!(diff.identical, a == b);
        if diff.identical {
            prop_assert_eq!(diff.unified, "");
        } else {
            prop_assert!(diff.unified.starts_with("--- a\n+++ b\n"), "{}", diff.unified);
        }
        let same = diff_objects(&from, &from, ignore, context, "a", "b").expect("diff");
        prop_assert!(same.identical);
    }
}
