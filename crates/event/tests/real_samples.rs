//! The parser, classifier, name derivation and ids on the real audit events in
//! `shared/data`. Expectations are computed from the same lines through an
//! independent path (`serde_json::Value`), never pasted.

use std::path::PathBuf;

use auditrail_event::{
    ApiVersion, EventId, EventType, ParseErrorKind, classify, parse_event_list, parse_line,
};
use serde_json::Value;

#[path = "support/real_data.rs"]
mod real_data;
use real_data::real_data_dir;

/// Every non-empty line of every real sample, with the file it came from.
fn real_lines() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(real_data_dir().join("falco-k8s-audit"))
        .expect("shared/data/real/falco-k8s-audit must exist beside the checkout")
        .map(|e| e.expect("dir entry").path())
        .collect();
    files.push(real_data_dir().join("elastic-integrations-test-audit.log"));
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let bytes = std::fs::read(&file).expect("read sample");
        let name = file
            .file_name()
            .expect("file name")
            .to_string_lossy()
            .into_owned();
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            if !line.iter().all(u8::is_ascii_whitespace) {
                out.push((name.clone(), line.to_vec()));
            }
        }
    }
    assert!(
        out.len() > 50,
        "expected the real samples, found {}",
        out.len()
    );
    out
}

fn str_at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

#[test]
fn every_real_event_parses_and_matches_an_independent_reading() {
    let mut parsed = 0;
    for (file, line) in real_lines() {
        let value: Value = serde_json::from_slice(&line).expect("samples are JSON");
        if file == "fal_01_003.json" {
            continue; // the fuzzing regression, tested on its own below
        }
        let p = parse_line(&line).unwrap_or_else(|e| panic!("{file}: {e}"));
        parsed += 1;
        assert_eq!(p.raw, line.strip_suffix(b"\n").unwrap_or(&line), "{file}");
        assert_eq!(
            Some(p.event.audit_id.as_ref()),
            str_at(&value, &["auditID"])
        );
        assert_eq!(Some(p.event.verb.as_ref()), str_at(&value, &["verb"]));
        assert_eq!(Some(p.event.level.as_str()), str_at(&value, &["level"]));
        assert_eq!(
            p.event.user.username.as_ref(),
            str_at(&value, &["user", "username"]).unwrap_or("")
        );
        assert_eq!(
            p.event.api_version().as_str(),
            str_at(&value, &["apiVersion"]).unwrap_or("audit.k8s.io/v1"),
            "{file}"
        );
        assert_eq!(
            p.event.response_code().map(i64::from),
            value
                .pointer("/responseStatus/code")
                .and_then(Value::as_i64)
        );
        let expected_name = str_at(&value, &["objectRef", "name"])
            .or_else(|| str_at(&value, &["responseObject", "metadata", "name"]))
            .or_else(|| str_at(&value, &["responseObject", "details", "name"]));
        assert_eq!(p.event.derived_name().as_deref(), expected_name, "{file}");
        let expected_type = match str_at(&value, &["objectRef", "apiGroup"]) {
            Some("projectcalico.org") => EventType::Ee,
            _ => EventType::Kube,
        };
        assert_eq!(classify(&p.event, EventType::Ee), expected_type, "{file}");
        let stage_ts = str_at(&value, &["stageTimestamp"]).map(|s| s.parse().expect("ts"));
        assert_eq!(p.event.stage_timestamp, stage_ts);
    }
    assert!(parsed >= 50);
}

#[test]
fn generate_name_creates_take_their_name_from_the_response() {
    let lines = real_lines();
    let (_, line) = lines
        .iter()
        .find(|(f, _)| f == "create_nginx_pod_unprivileged.json")
        .expect("sample present");
    let p = parse_line(line).unwrap();
    let object = p.event.object_ref.as_ref().unwrap();
    assert_eq!(object.name, None, "the sample has no objectRef.name");
    let value: Value = serde_json::from_slice(line).unwrap();
    assert_eq!(
        p.event.derived_name().as_deref(),
        value
            .pointer("/responseObject/metadata/name")
            .and_then(Value::as_str)
    );
    assert_eq!(p.event.api_version(), ApiVersion::V1Beta1);
}

#[test]
fn the_fuzzing_regression_is_refused_with_a_clear_error() {
    let line = std::fs::read(real_data_dir().join("falco-k8s-audit/fal_01_003.json")).unwrap();
    let err = parse_line(&line).unwrap_err();
    assert_eq!(err.kind, ParseErrorKind::NotAnEvent);
    assert!(
        err.message.contains("expected the string \"Event\""),
        "{err}"
    );
    // The offending value `0` stands right after `"kind":` (and any space).
    let text = String::from_utf8(line.clone()).unwrap();
    let zero = text.find('0').unwrap();
    assert!(
        err.offset <= zero + 1 && err.offset + 1 >= zero,
        "{err} vs {zero}"
    );
}

#[test]
fn events_sharing_audit_id_and_stage_get_different_ids() {
    let log = std::fs::read(real_data_dir().join("elastic-integrations-test-audit.log")).unwrap();
    let events: Vec<_> = log
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| parse_line(l).unwrap())
        .collect();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].event.audit_id, events[1].event.audit_id);
    assert_eq!(events[0].event.stage, events[1].event.stage);
    let a = EventId::compute("prod", events[0].raw);
    let b = EventId::compute("prod", events[1].raw);
    assert_ne!(a, b);
}

#[test]
fn ids_are_stable_per_cluster_and_bytes_and_round_trip_as_hex() {
    let (_, line) = &real_lines()[0];
    let raw = parse_line(line).unwrap().raw;
    let id = EventId::compute("c1", raw);
    assert_eq!(
        id,
        EventId::compute("c1", raw),
        "a re-send maps to the same id"
    );
    assert_ne!(id, EventId::compute("c2", raw), "clusters are separate");
    // Length-prefixing: moving bytes between cluster and body changes the id.
    let mut shifted = b"1".to_vec();
    shifted.extend_from_slice(raw);
    assert_ne!(id, EventId::compute("c", &shifted));
    let mut tampered = raw.to_vec();
    let last = tampered.len() - 2;
    tampered[last] ^= 1;
    assert_ne!(
        id,
        EventId::compute("c1", &tampered),
        "one byte changes the id"
    );
    let hex = id.to_string();
    assert_eq!(hex.len(), EventId::HEX_LEN);
    assert_eq!(hex.parse::<EventId>().unwrap(), id);
    assert!("xyz".parse::<EventId>().is_err());
}

#[test]
fn crlf_and_lf_lines_are_the_same_event() {
    let (_, line) = &real_lines()[0];
    let body = line.strip_suffix(b"\n").unwrap_or(line);
    let mut crlf = body.to_vec();
    crlf.extend_from_slice(b"\r\n");
    let a = parse_line(line).unwrap();
    let b = parse_line(&crlf).unwrap();
    assert_eq!(a.raw, b.raw);
    assert_eq!(EventId::compute("c", a.raw), EventId::compute("c", b.raw));
}

#[test]
fn event_lists_yield_each_item_with_its_own_bytes() {
    let lines: Vec<Vec<u8>> = real_lines()
        .into_iter()
        .filter(|(f, _)| f != "fal_01_003.json")
        .take(5)
        .map(|(_, l)| l.strip_suffix(b"\n").unwrap().to_vec())
        .collect();
    let mut doc = br#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":["#.to_vec();
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            doc.extend_from_slice(b", ");
        }
        doc.extend_from_slice(l);
    }
    doc.extend_from_slice(b"]}");
    let items = parse_event_list(&doc).unwrap();
    assert_eq!(items.len(), lines.len());
    for (item, line) in items.iter().zip(&lines) {
        assert_eq!(item.raw, line.as_slice());
    }

    // A bad item fails the list, at the bad item's position: an Event with
    // a level that does not exist is an invalid field.
    let bad = br#"{"kind":"EventList","items":[{"kind":"Event","level":"Loud"}]}"#;
    let err = parse_event_list(bad).unwrap_err();
    assert_eq!(err.kind, ParseErrorKind::InvalidField);
    let loud = bad.windows(6).position(|w| w == b"\"Loud\"").unwrap();
    assert!((loud..=loud + 6).contains(&err.offset), "{err}");
    assert!(parse_event_list(br#"{"kind":"Event"}"#).is_err());
}
