//! Property-based fuzzing of the event parsers and of what is derived from
//! a parsed event, on mutations of the real samples and on any bytes. Runs
//! 256 cases per property by default; `PROPTEST_CASES=100000 cargo test -p
//! auditrail-event fuzz` runs more.

#[path = "support/fuzz_input.rs"]
mod fuzz_input;

use auditrail_event::meaning::VERSION_VERBS;
use auditrail_event::resource::{resolve_kind, similar_kinds};
use auditrail_event::{
    EventId, EventType, ParseError, ParseErrorKind, ParsedEvent, classify, parse_event_list,
    parse_line,
};
use fuzz_input::{config, event_input, event_line, mutation};
use proptest::prelude::*;

/// What every refusal must be: a kind, a message, an offset inside the input.
fn check_error(err: &ParseError, input: &[u8]) {
    assert!(err.offset <= input.len(), "offset past the input: {err}");
    assert!(!err.message.trim().is_empty(), "no message: {err:?}");
    let shown = err.to_string();
    assert!(shown.starts_with(err.kind.as_str()), "{shown}");
    if err.kind == ParseErrorKind::NotUtf8 {
        assert!(std::str::from_utf8(&input[..err.offset]).is_ok(), "{err}");
    }
}

/// What every accepted event must satisfy, whatever its content.
fn check_event(parsed: &ParsedEvent<'_>) {
    let e = &parsed.event;
    assert!(!e.summary().trim().is_empty(), "empty summary for {e:?}");
    if let Some(name) = e.derived_name() {
        assert!(!name.is_empty(), "an empty derived name is None");
    }
    if let Some(kind) = e.derived_kind() {
        assert!(!kind.is_empty(), "an empty derived kind is None");
    }
    if let Some(object) = e.object() {
        assert_eq!(Some(&object.kind), e.derived_kind().as_ref());
        assert!(object.namespace.as_ref().is_none_or(|ns| !ns.is_empty()));
    }
    if e.is_version() {
        assert!(VERSION_VERBS.contains(&e.verb.as_ref()));
        assert!(e.derived_name().is_some());
        assert!(e.subresource().is_empty());
        assert!(!e.is_dry_run());
    }
    let _ = (e.action(), e.time(), e.response_code(), e.api_version());
    let _ = classify(e, EventType::Kube);
}

proptest! {
    #![proptest_config(config(256))]

    /// A line is an event or a refusal with an offset inside it; an event's
    /// raw bytes are the line without its terminator, its id depends on
    /// those bytes only, and what the trail derives from it never panics.
    #[test]
    fn fuzz_parse_line(line in event_input()) {
        match parse_line(&line) {
            Err(err) => check_error(&err, &line),
            Ok(parsed) => {
                prop_assert!(line.starts_with(parsed.raw));
                let rest = &line[parsed.raw.len()..];
                prop_assert!(matches!(rest, b"" | b"\n" | b"\r\n" | b"\r"), "{rest:?}");
                check_event(&parsed);
                let id = EventId::compute("c", parsed.raw);
                prop_assert_eq!(id, EventId::compute("c", &line[..parsed.raw.len()]));
                prop_assert_eq!(id.to_hex().parse::<EventId>(), Ok(id));
                // The same bytes with another terminator: the same event.
                let mut crlf = parsed.raw.to_vec();
                crlf.extend_from_slice(b"\r\n");
                let again = parse_line(&crlf).expect("the same bytes parse again");
                prop_assert_eq!(again.raw, parsed.raw);
                prop_assert_eq!(again.event.summary(), parsed.event.summary());
            }
        }
    }

    /// An `EventList` of mutated lines, itself mutated: a list of events
    /// whose raw bytes are where they were found, or a refusal inside it.
    #[test]
    fn fuzz_parse_event_list(
        items in prop::collection::vec(event_line(), 0..4),
        mutations in prop::collection::vec(mutation(), 0..3),
    ) {
        let mut input = b"{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"items\":[".to_vec();
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                input.push(b',');
            }
            input.extend_from_slice(item);
        }
        input.extend_from_slice(b"]}");
        for m in &mutations {
            m.apply(&mut input);
        }
        match parse_event_list(&input) {
            Err(err) => check_error(&err, &input),
            Ok(events) => {
                for parsed in &events {
                    let at = (parsed.raw.as_ptr() as usize) - (input.as_ptr() as usize);
                    prop_assert_eq!(&input[at..at + parsed.raw.len()], parsed.raw);
                    check_event(parsed);
                }
            }
        }
    }

    /// Events built from the values the meaning of an event turns on
    /// (verbs, subresources, stages, codes, blank and odd strings) in every
    /// combination: what the trail says of them is never blank.
    #[test]
    fn fuzz_meaning_of_generated_events(
        verb in word(),
        uri in word(),
        object_ref in prop::option::of((word(), word(), word(), word(), word())),
        stage in prop::option::of(prop::sample::select(&["RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"][..])),
        code in prop::option::of(prop_oneof![Just(0i32), Just(101), Just(200), Just(201), Just(299), Just(403), Just(500), any::<i32>()]),
        response_name in prop::option::of(word()),
    ) {
        let mut event = serde_json::json!({
            "kind": "Event", "level": "Metadata", "auditID": "a",
            "requestURI": uri, "verb": verb,
        });
        if let Some((resource, group, namespace, name, subresource)) = object_ref {
            event["objectRef"] = serde_json::json!({
                "resource": resource, "apiGroup": group, "namespace": namespace,
                "name": name, "subresource": subresource,
            });
        }
        if let Some(stage) = stage {
            event["stage"] = stage.into();
        }
        if let Some(code) = code {
            event["responseStatus"] = serde_json::json!({"code": code});
        }
        if let Some(name) = response_name {
            event["responseObject"] = serde_json::json!({"metadata": {"name": name}});
        }
        let line = event.to_string();
        let parsed = parse_line(line.as_bytes()).expect("a generated event parses");
        check_event(&parsed);
    }

    /// What a person types for a kind resolves or not, never panics.
    #[test]
    fn fuzz_resolve_kind(name in prop_oneof![".{0,40}", "[a-zA-Z.]{0,30}"]) {
        if let Some(k) = resolve_kind(&name) {
            prop_assert!(!k.resources.is_empty());
        }
        let _ = similar_kinds(&name);
    }
}

/// A field value: one the meaning turns on, blank, or anything short.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(
            &[
                "",
                " ",
                "\t",
                "get",
                "list",
                "create",
                "update",
                "patch",
                "delete",
                "deletecollection",
                "exec",
                "attach",
                "portforward",
                "proxy",
                "scale",
                "status",
                "eviction",
                "log",
                "pods",
                "namespaces",
                "projectcalico.org",
                "default",
                "/healthz?dryRun=All",
            ][..]
        )
        .prop_map(str::to_owned),
        ".{0,8}",
    ]
}

/// Regression inputs found while fuzzing, as plain tests.
mod found {
    use super::*;

    fn good() -> String {
        r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a","stage":"ResponseComplete","requestURI":"/api/v1/pods","verb":"list","user":{"username":"u"}}"#
            .to_owned()
    }

    #[test]
    fn the_good_line_is_an_event() {
        let line = good();
        check_event(&parse_line(line.as_bytes()).expect("event"));
    }

    /// Found by `fuzz_meaning_of_generated_events`: an event with a blank
    /// verb and request URI had the summary " ", a blank timeline line.
    #[test]
    fn a_blank_verb_and_uri_still_have_a_summary() {
        let line = good()
            .replace("\"verb\":\"list\"", "\"verb\":\"\"")
            .replace("\"/api/v1/pods\"", "\"\"");
        let parsed = parse_line(line.as_bytes()).expect("event");
        check_event(&parsed);
        let line = good()
            .replace("\"verb\":\"list\"", "\"verb\":\" \"")
            .replace(
                "\"user\"",
                "\"objectRef\":{\"resource\":\" \"},\"responseStatus\":{\"code\":200},\"user\"",
            );
        let parsed = parse_line(line.as_bytes()).expect("event");
        check_event(&parsed);
    }
}
