//! Export: byte-exact JSON, NDJSON and YAML documents, chunking, `done`,
//! `limit`, a client that goes away, and the bound on concurrent exports.

use std::collections::HashMap;
use std::sync::Arc;

use auditrail_proto::v1;
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use serde_json::Value;
use tonic::Code;

use crate::common::{
    Client, Ev, Server, dataset, events_of, expect_code, filter, filter_matches, generated,
    on_timeline, ordered, search, serve, store_with, strings,
};

/// What an export streamed.
pub(crate) struct Exported {
    pub(crate) doc: Vec<u8>,
    pub(crate) summary: v1::ExportSummary,
    largest_chunk: usize,
    chunks: usize,
}

pub(crate) async fn export(client: &mut Client, request: v1::ExportRequest) -> Exported {
    let mut stream = client.export(request).await.expect("export").into_inner();
    let mut doc = Vec::new();
    let mut summary = None;
    let mut so_far = 0;
    let mut largest_chunk = 0;
    let mut chunks = 0;
    while let Some(chunk) = stream.message().await.expect("chunk") {
        assert!(summary.is_none(), "done is on the last message only");
        assert!(
            chunk.events_so_far >= so_far,
            "events_so_far never decreases"
        );
        so_far = chunk.events_so_far;
        largest_chunk = largest_chunk.max(chunk.data.len());
        chunks += 1;
        doc.extend_from_slice(&chunk.data);
        summary = chunk.done;
    }
    let summary = summary.expect("the last message carries done");
    assert_eq!(summary.total_bytes, doc.len() as u64, "total_bytes");
    assert_eq!(
        summary.total_events, so_far,
        "events_so_far of the last message"
    );
    Exported {
        doc,
        summary,
        largest_chunk,
        chunks,
    }
}

fn json_document(raws: &[&str]) -> String {
    if raws.is_empty() {
        "[]\n".to_owned()
    } else {
        format!("[\n{}\n]\n", raws.join(",\n"))
    }
}

/// A YAML stream cut into its documents at the `---` lines.
fn yaml_documents(doc: &str) -> Vec<String> {
    let mut docs = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.split_inclusive('\n') {
        if line == "---\n" {
            docs.extend(current.replace(String::new()));
        } else {
            current
                .as_mut()
                .expect("the stream starts with ---")
                .push_str(line);
        }
    }
    docs.extend(current);
    docs
}

/// The top-level keys of a JSON object, in document order.
struct TopKeys(Vec<String>);

impl<'de> Deserialize<'de> for TopKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> serde::de::Visitor<'de> for Keys {
            type Value = TopKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<TopKeys, A::Error> {
                let mut keys = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    keys.push(key);
                }
                Ok(TopKeys(keys))
            }
        }
        deserializer.deserialize_map(Keys)
    }
}

fn raws<'a>(data: &'a [Ev], ids: &[String]) -> Vec<&'a str> {
    let by_id: HashMap<&str, &str> = data
        .iter()
        .map(|e| (e.id.as_str(), e.raw.as_str()))
        .collect();
    ids.iter().map(|id| by_id[id.as_str()]).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_streams_byte_exact_documents() {
    let data = dataset();
    let (_dir, _store, mut server) = serve(data).await;
    let client = &mut server.client;
    let mib = 1 << 20;

    // Everything as JSON, newest first: several chunks.
    let all = export(client, v1::ExportRequest::default()).await;
    let want = json_document(&raws(data, &ordered(data, true)));
    assert!(want.len() > 2 * mib, "the dataset takes several chunks");
    assert!(all.chunks >= 3);
    assert!(all.largest_chunk <= mib, "chunks of at most 1 MiB");
    assert_eq!(String::from_utf8(all.doc.clone()).expect("utf-8"), want);
    assert_eq!(all.summary.total_events, data.len() as u64);
    let parsed: Value = serde_json::from_slice(&all.doc).expect("a JSON document");
    assert_eq!(parsed.as_array().map(Vec::len), Some(data.len()));

    // A filtered JSON export, oldest first.
    let policies = v1::Filter {
        clusters: strings(&["alpha"]),
        kinds: strings(&["networkpolicy"]),
        ..filter()
    };
    let got = export(
        client,
        v1::ExportRequest {
            filter: Some(policies.clone()),
            format: v1::ExportFormat::Json as i32,
            sort: v1::SortOrder::OldestFirst as i32,
            ..v1::ExportRequest::default()
        },
    )
    .await;
    let now = Timestamp::now();
    let ids = ordered(
        data.iter()
            .filter(|e| filter_matches(e, &policies, None, now)),
        false,
    );
    assert!(!ids.is_empty());
    assert_eq!(
        String::from_utf8(got.doc).expect("utf-8"),
        json_document(&raws(data, &ids))
    );
    assert_eq!(got.summary.total_events, ids.len() as u64);

    // NDJSON, oldest first: the log lines.
    let got = export(
        client,
        v1::ExportRequest {
            format: v1::ExportFormat::Ndjson as i32,
            sort: v1::SortOrder::OldestFirst as i32,
            ..v1::ExportRequest::default()
        },
    )
    .await;
    let lines: String = raws(data, &ordered(data, false))
        .iter()
        .fold(String::new(), |doc, r| doc + r + "\n");
    assert_eq!(String::from_utf8(got.doc).expect("utf-8"), lines);
    assert!(got.largest_chunk <= mib);

    // Timeline NDJSON with a limit: the newest timeline events.
    let timeline = ordered(data.iter().filter(|e| on_timeline(e)), true);
    let got = export(
        client,
        v1::ExportRequest {
            format: v1::ExportFormat::Ndjson as i32,
            timeline: true,
            limit: 25,
            ..v1::ExportRequest::default()
        },
    )
    .await;
    let lines: String = raws(data, &timeline[..25])
        .iter()
        .fold(String::new(), |doc, r| doc + r + "\n");
    assert_eq!(String::from_utf8(got.doc).expect("utf-8"), lines);
    assert_eq!(got.summary.total_events, 25);

    // A limit above the number of events changes nothing.
    let got = export(
        client,
        v1::ExportRequest {
            filter: Some(policies.clone()),
            limit: 1_000_000,
            ..v1::ExportRequest::default()
        },
    )
    .await;
    let ids = ordered(
        data.iter()
            .filter(|e| filter_matches(e, &policies, None, now)),
        true,
    );
    assert_eq!(
        String::from_utf8(got.doc).expect("utf-8"),
        json_document(&raws(data, &ids))
    );

    // YAML of the real samples and the generated writes of beta: one
    // document per event, equal to the JSON, keys in the original order.
    let yaml_filter = v1::Filter {
        clusters: strings(&["beta"]),
        levels: strings(&["Request", "RequestResponse"]),
        ..filter()
    };
    let got = export(
        client,
        v1::ExportRequest {
            filter: Some(yaml_filter.clone()),
            format: v1::ExportFormat::Yaml as i32,
            sort: v1::SortOrder::OldestFirst as i32,
            ..v1::ExportRequest::default()
        },
    )
    .await;
    let ids = ordered(
        data.iter()
            .filter(|e| filter_matches(e, &yaml_filter, None, now)),
        false,
    );
    let text = String::from_utf8(got.doc).expect("utf-8");
    let documents = yaml_documents(&text);
    assert!(ids.len() > 100, "the real samples and beta's writes");
    assert_eq!(documents.len(), ids.len());
    assert_eq!(got.summary.total_events, ids.len() as u64);
    for (document, raw) in documents.iter().zip(raws(data, &ids)) {
        let from_yaml: Value =
            serde_norway::from_str(document).unwrap_or_else(|e| panic!("{e}: {document}"));
        let original: Value = serde_json::from_str(raw).expect("json");
        assert_eq!(from_yaml, original, "{document}");
        let yaml_keys: Vec<&str> = document
            .lines()
            .filter(|l| !l.starts_with([' ', '-']) && l.contains(':'))
            .map(|l| l.split(':').next().expect("key"))
            .collect();
        let TopKeys(json_keys) = serde_json::from_str(raw).expect("json");
        assert_eq!(yaml_keys, json_keys, "key order kept");
    }

    // Nothing matches: an empty array, an empty stream.
    let nothing = v1::Filter {
        verbs: strings(&["trace"]),
        ..filter()
    };
    for (format, want) in [
        (v1::ExportFormat::Unspecified, "[]\n"),
        (v1::ExportFormat::Ndjson, ""),
        (v1::ExportFormat::Yaml, ""),
    ] {
        let got = export(
            client,
            v1::ExportRequest {
                filter: Some(nothing.clone()),
                format: format as i32,
                ..v1::ExportRequest::default()
            },
        )
        .await;
        assert_eq!(
            String::from_utf8(got.doc).expect("utf-8"),
            want,
            "{format:?}"
        );
        assert_eq!(got.summary.total_events, 0);
    }

    // Bad requests.
    let bad = [
        v1::ExportRequest {
            format: 42,
            ..v1::ExportRequest::default()
        },
        v1::ExportRequest {
            filter: Some(v1::Filter {
                selector: "verb ==".into(),
                ..filter()
            }),
            ..v1::ExportRequest::default()
        },
        v1::ExportRequest {
            filter: Some(v1::Filter {
                from: "now".into(),
                to: "now-1d".into(),
                ..filter()
            }),
            ..v1::ExportRequest::default()
        },
    ];
    for request in bad {
        let what = format!("{request:?}");
        let result = match client.export(request).await {
            Ok(response) => response.into_inner().message().await.map(|_| ()),
            Err(status) => Err(status),
        };
        expect_code(result, Code::InvalidArgument, &what);
    }

    // A client that goes away after the first chunk does not break the
    // server: the next requests are answered in full.
    let mut stream = client
        .export(v1::ExportRequest::default())
        .await
        .expect("export")
        .into_inner();
    let first = stream
        .message()
        .await
        .expect("chunk")
        .expect("a first chunk");
    assert!(
        first.done.is_none(),
        "the export is not over after one chunk"
    );
    drop(stream);
    let page = client
        .search(search(filter(), 10))
        .await
        .expect("search after a dropped export")
        .into_inner();
    assert_eq!(page.events.len(), 10);
    let again = export(
        client,
        v1::ExportRequest {
            format: v1::ExportFormat::Ndjson as i32,
            ..v1::ExportRequest::default()
        },
    )
    .await;
    assert_eq!(again.summary.total_events, data.len() as u64);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_chunks_stay_within_one_mib_at_the_end_of_the_document() {
    // One event so large that the JSON document's opening and the event fit
    // in one chunk and its closing does not.
    let mib = 1 << 20;
    let head = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"big","stage":"ResponseComplete","requestURI":"/api/v1/namespaces","verb":"list","user":{"username":"big@example.com"},"responseStatus":{"code":200},"stageTimestamp":"2026-01-01T00:00:00.000001Z","annotations":{"pad":""#;
    let tail = r#""}}"#;
    let pad = "x".repeat(mib - 4 - head.len() - tail.len());
    let line = format!("{head}{pad}{tail}");
    assert_eq!(line.len(), mib - 4);
    let events = events_of("solo", std::slice::from_ref(&line));
    assert_eq!(events.len(), 1);
    let (_dir, _store, mut server) = serve(&events).await;
    let got = export(&mut server.client, v1::ExportRequest::default()).await;
    assert_eq!(
        String::from_utf8(got.doc).expect("utf-8"),
        json_document(&[&line])
    );
    assert!(
        got.largest_chunk <= mib,
        "a chunk of {} bytes, above 1 MiB ({mib}); the contract says chunks of at most 1 MiB",
        got.largest_chunk
    );
    server.stop().await;
}

/// Exports whose clients do not read hold their slots; beyond the bounds
/// `Export` answers RESOURCE_EXHAUSTED at once, and cancelled exports free
/// their slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_exports_are_bounded_and_freed_when_cancelled() {
    let lines = generated(
        7,
        "2026-03-01T00:00:00Z",
        SignedDuration::from_secs(1),
        20_000,
    );
    let events = events_of("many", &lines);
    let (_dir, store) = store_with(&events).await;
    let mut server = Server::start_service(
        auditrail_query::Querier::new(Arc::new(store)).with_export_limits(3, 3),
    )
    .await;
    let request = || v1::ExportRequest {
        format: v1::ExportFormat::Yaml as i32,
        ..v1::ExportRequest::default()
    };
    // Three exports nobody reads: far more than the windows and the
    // channel hold, so none of them can finish.
    let mut unread = Vec::new();
    for _ in 0..3 {
        unread.push(
            server
                .client
                .export(request())
                .await
                .expect("export")
                .into_inner(),
        );
    }
    let status = expect_code(
        server.client.export(request()).await.map(|_| ()),
        Code::ResourceExhausted,
        "a fourth export",
    );
    assert!(
        status.message().contains("3 exports are running"),
        "{status:?}"
    );
    // Cancelling them frees their slots.
    drop(unread);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match server.client.export(request()).await {
            Ok(stream) => {
                let mut stream = stream.into_inner();
                let mut done = None;
                while let Some(chunk) = stream.message().await.expect("chunk") {
                    done = chunk.done;
                }
                assert_eq!(done.expect("the end marker").total_events, 20_000);
                break;
            }
            Err(status) if status.code() == Code::ResourceExhausted => {
                assert!(std::time::Instant::now() < deadline, "slots never freed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(status) => panic!("export: {status:?}"),
        }
    }
    server.stop().await;
}
