//! Inputs that are not audit events: each is refused with the right reason and
//! a byte offset that points at the problem.

use auditrail_event::{ParseErrorKind, parse_line};

const GOOD: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a","stage":"ResponseComplete","requestURI":"/api/v1/pods","verb":"list","user":{"username":"u"}}"#;

fn err(line: &[u8]) -> auditrail_event::ParseError {
    parse_line(line).expect_err("must be refused")
}

#[test]
fn the_good_line_parses() {
    let p = parse_line(GOOD.as_bytes()).unwrap();
    assert_eq!(p.event.verb, "list");
    assert!(p.event.object_ref.is_none());
}

#[test]
fn empty_and_blank_lines() {
    for line in [&b""[..], b"\n", b"   \r\n", b"\t"] {
        assert_eq!(err(line).kind, ParseErrorKind::Empty);
    }
}

#[test]
fn non_utf8_reports_the_first_bad_byte() {
    let mut line = GOOD.as_bytes().to_vec();
    let at = GOOD.find("list").unwrap();
    line[at] = 0xff;
    let e = err(&line);
    assert_eq!(e.kind, ParseErrorKind::NotUtf8);
    assert_eq!(e.offset, at);
}

#[test]
fn truncated_line_is_invalid_json_at_the_end() {
    let cut = &GOOD.as_bytes()[..GOOD.len() / 2];
    let e = err(cut);
    assert_eq!(e.kind, ParseErrorKind::InvalidJson);
    assert!(e.offset >= cut.len() - 1, "{e}");
}

#[test]
fn syntax_error_points_into_the_line() {
    let line = GOOD.replacen("\"level\":", "\"level\" ", 1);
    let e = err(line.as_bytes());
    assert_eq!(e.kind, ParseErrorKind::InvalidJson);
    let at = line.find("\"level\" ").unwrap() + "\"level\" ".len();
    assert!(e.offset.abs_diff(at) <= 1, "{e} vs {at}");
    assert!(
        !e.message.contains(" at line "),
        "the offset replaces line/column"
    );
}

#[test]
fn other_documents_are_not_an_event() {
    let cases = [
        GOOD.replace("\"kind\":\"Event\"", "\"kind\":\"EventList\""),
        GOOD.replace("audit.k8s.io/v1", "audit.k8s.io/v2"),
        GOOD.replace("\"kind\":\"Event\"", "\"kind\":0"),
        "[1,2,3]".to_owned(),
        "\"Event\"".to_owned(),
        "{}".to_owned(),
    ];
    for line in cases {
        let e = err(line.as_bytes());
        assert_eq!(e.kind, ParseErrorKind::NotAnEvent, "{line}: {e}");
        assert!(e.offset <= line.len());
    }
}

#[test]
fn events_with_a_missing_or_malformed_field_are_invalid_fields() {
    let cases = [
        GOOD.replace("Metadata", "Loud"),
        GOOD.replace("ResponseComplete", "Done"),
        GOOD.replace("\"auditID\":\"a\",", ""),
        GOOD.replace("\"verb\":\"list\"", "\"verb\":3"),
        GOOD.replace("\"verb\"", "\"stageTimestamp\":\"yesterday\",\"verb\""),
    ];
    for line in cases {
        let e = err(line.as_bytes());
        assert_eq!(e.kind, ParseErrorKind::InvalidField, "{line}: {e}");
        assert!(e.offset <= line.len());
    }
}

#[test]
fn unknown_fields_are_kept_in_the_original_bytes() {
    let line = GOOD.replace("\"verb\"", "\"futureField\":{\"x\":[1,2]},\"verb\"");
    let p = parse_line(line.as_bytes()).unwrap();
    assert_eq!(p.raw, line.as_bytes());
}

#[test]
fn dry_runs_and_time_fallbacks() {
    let line = GOOD.replace("/api/v1/pods", "/api/v1/pods?dryRun=All");
    let p = parse_line(line.as_bytes()).unwrap();
    assert!(p.event.is_dry_run());
    assert!(p.event.time().is_none());
    let line = GOOD.replace(
        "\"verb\"",
        "\"requestReceivedTimestamp\":\"2024-01-02T03:04:05.123456Z\",\"verb\"",
    );
    let p = parse_line(line.as_bytes()).unwrap();
    assert_eq!(
        p.event.time().unwrap().to_string(),
        "2024-01-02T03:04:05.123456Z"
    );
    let bad_time = GOOD.replace("\"verb\"", "\"stageTimestamp\":\"yesterday\",\"verb\"");
    assert_eq!(err(bad_time.as_bytes()).kind, ParseErrorKind::InvalidField);
}
