//! Diff: headers, changed lines, noisy metadata, identical versions, and
//! the error codes.

use auditrail_event::EventId;
use auditrail_proto::v1;
use serde_json::Value;
use tonic::Code;

use crate::common::{dataset, expect_code, serve};
use crate::history::{assert_version, expected_versions, is_version, key, pick_policy};

fn diff_request(from: &str, to: &str) -> v1::DiffRequest {
    v1::DiffRequest {
        from_event_id: from.into(),
        to_event_id: to.into(),
        ..v1::DiffRequest::default()
    }
}

/// The body lines of a unified diff starting with `sign`.
fn changed(diff: &str, sign: char) -> Vec<&str> {
    diff.lines()
        .filter(|l| !l.starts_with("---") && !l.starts_with("+++") && l.starts_with(sign))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_shows_what_changed_between_two_versions() {
    let data = dataset();
    let events = pick_policy(data);
    let want = expected_versions(&events);
    let (_dir, _store, mut server) = serve(data).await;
    let client = &mut server.client;
    let (a, b) = (&want[0], &want[1]);
    let md = |v: &Value, key: &str| {
        v.pointer(&format!("/metadata/{key}"))
            .cloned()
            .expect("metadata")
    };

    let answer = client
        .diff(diff_request(&a.event.id, &b.event.id))
        .await
        .expect("diff")
        .into_inner();
    let diff = &answer.unified_diff;
    assert!(!answer.identical);
    assert!(
        diff.starts_with(&format!("--- {}\n+++ {}\n", a.event.id, b.event.id)),
        "{diff}"
    );
    assert_version(answer.from.as_ref().expect("from"), a);
    assert_version(answer.to.as_ref().expect("to"), b);
    let (minus, plus) = (changed(diff, '-'), changed(diff, '+'));
    let has = |lines: &[&str], key: &str, value: &Value| {
        let value = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_owned);
        lines
            .iter()
            .any(|l| l.contains(&format!("{key}:")) && l.contains(&value))
    };
    for key in ["resourceVersion", "generation"] {
        assert!(
            has(&minus, key, &md(&a.object, key)),
            "old {key} removed:\n{diff}"
        );
        assert!(
            has(&plus, key, &md(&b.object, key)),
            "new {key} added:\n{diff}"
        );
    }
    // The change itself: the `rev` label the patch set.
    let rev = b
        .object
        .pointer("/metadata/labels/rev")
        .cloned()
        .expect("rev label");
    assert!(a.object.pointer("/metadata/labels/rev").is_none());
    assert!(has(&plus, "rev", &rev), "{diff}");
    assert!(!has(&minus, "rev", &rev), "{diff}");

    // Noisy metadata left out: the change stays, the noise goes.
    let quiet = client
        .diff(v1::DiffRequest {
            ignore_noisy_metadata: true,
            ..diff_request(&a.event.id, &b.event.id)
        })
        .await
        .expect("diff")
        .into_inner();
    assert!(!quiet.identical);
    assert!(
        !quiet.unified_diff.contains("resourceVersion"),
        "{}",
        quiet.unified_diff
    );
    assert!(
        !quiet.unified_diff.contains("generation"),
        "{}",
        quiet.unified_diff
    );
    assert!(
        has(&changed(&quiet.unified_diff, '+'), "rev", &rev),
        "{}",
        quiet.unified_diff
    );

    // Unset context is three lines.
    let three = client
        .diff(v1::DiffRequest {
            context_lines: Some(3),
            ..diff_request(&a.event.id, &b.event.id)
        })
        .await
        .expect("diff")
        .into_inner();
    assert_eq!(&three.unified_diff, diff, "default context is 3");
    let wide = client
        .diff(v1::DiffRequest {
            context_lines: Some(1000),
            ..diff_request(&a.event.id, &b.event.id)
        })
        .await
        .expect("diff")
        .into_inner();
    assert!(wide.unified_diff.lines().count() > diff.lines().count());

    // No context: only changed lines and hunk headers.
    let bare = client
        .diff(v1::DiffRequest {
            context_lines: Some(0),
            ..diff_request(&a.event.id, &b.event.id)
        })
        .await
        .expect("diff")
        .into_inner();
    assert!(
        bare.unified_diff
            .lines()
            .skip(2)
            .all(|l| l.starts_with(['-', '+', '@'])),
        "{}",
        bare.unified_diff
    );
    assert!(bare.unified_diff.lines().count() < diff.lines().count());

    // Identical objects: a version with itself, and a delete (whose object
    // is the version before it) with that version.
    let last = &want[want.len() - 1];
    let before_last = &want[want.len() - 2];
    assert_eq!(last.event.verb, "delete");
    for (from, to) in [(b, b), (before_last, last)] {
        let same = client
            .diff(diff_request(&from.event.id, &to.event.id))
            .await
            .expect("diff")
            .into_inner();
        assert!(same.identical, "{} -> {}", from.event.verb, to.event.verb);
        assert_eq!(same.unified_diff, "");
        assert_version(same.to.as_ref().expect("to"), to);
    }

    // Errors.
    let other = data
        .iter()
        .find(|e| {
            is_version(e)
                && e.cluster == "alpha"
                && e.resource == "networkpolicies"
                && key(e) != key(a.event)
        })
        .expect("another policy");
    let read = events
        .iter()
        .find(|e| e.verb == "get")
        .expect("a read of the policy");
    let unknown = EventId::compute("alpha", b"never stored").to_hex();
    let cases = [
        (
            "unknown id",
            diff_request(&a.event.id, &unknown),
            Code::NotFound,
        ),
        (
            "unknown from id",
            diff_request(&unknown, &a.event.id),
            Code::NotFound,
        ),
        (
            "malformed id",
            diff_request("xyz", &a.event.id),
            Code::InvalidArgument,
        ),
        (
            "short id",
            diff_request(&a.event.id, &a.event.id[1..]),
            Code::InvalidArgument,
        ),
        (
            "empty id",
            diff_request(&a.event.id, ""),
            Code::InvalidArgument,
        ),
        (
            "two resources",
            diff_request(&a.event.id, &other.id),
            Code::FailedPrecondition,
        ),
        (
            "an event without object",
            diff_request(&a.event.id, &read.id),
            Code::FailedPrecondition,
        ),
        (
            "context above 1000",
            v1::DiffRequest {
                context_lines: Some(1001),
                ..diff_request(&a.event.id, &b.event.id)
            },
            Code::InvalidArgument,
        ),
    ];
    for (what, request, code) in cases {
        expect_code(client.diff(request).await, code, what);
    }
    // A huge id is named by its start, never echoed back whole.
    let huge = "f".repeat(1 << 20);
    let status = expect_code(
        client.diff(diff_request(&huge, &a.event.id)).await,
        Code::InvalidArgument,
        "a 1 MiB id",
    );
    assert!(status.message().len() < 300, "{}", status.message().len());
    assert!(status.message().contains("(1048576 bytes)"), "{status:?}");
    // A read is no version: diff refuses it and says what it is.
    let status = expect_code(
        client.diff(diff_request(&a.event.id, &read.id)).await,
        Code::FailedPrecondition,
        "a read",
    );
    assert!(
        status.message().contains("is not a version of its object"),
        "{status:?}"
    );
    server.stop().await;
}
