//! Tests of the saved objects in `kibana/` (valid, consistent, only indexed
//! fields) and of the import against a mock Kibana: a one-shot HTTP server
//! on loopback that records the request and answers as Kibana does. Kibana
//! itself does not run here.

#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::thread::JoinHandle;

use serde_json::Value;

use super::*;

/// The fields the Elasticsearch backend indexes (its mapping); anything a
/// visualization or search uses must be one of them, or it shows nothing.
const INDEXED_FIELDS: &[&str] = &[
    "id",
    "cluster",
    "type",
    "level",
    "stage",
    "auditID",
    "verb",
    "user.username",
    "user.groups",
    "sourceIPs",
    "objectRef.resource",
    "objectRef.namespace",
    "objectRef.name",
    "objectRef.apiGroup",
    "objectRef.apiVersion",
    "objectRef.subresource",
    "name",
    "kind",
    "requestURI",
    "userAgent",
    "responseStatus.code",
    "dryRun",
    "requestReceivedTimestamp",
    "stageTimestamp",
    "time",
];

fn saved_objects() -> Vec<Value> {
    let path = workspace_root().join(NDJSON);
    let text = std::fs::read_to_string(&path).unwrap();
    let objects: Vec<Value> = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}:{}: not JSON: {e}", path.display(), i + 1))
        })
        // An export's summary line, which Kibana's import skips.
        .filter(|o: &Value| o.get("exportedCount").is_none())
        .collect();
    assert!(
        objects.len() >= 6,
        "too few saved objects: {}",
        objects.len()
    );
    objects
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {v}"))
}

/// A JSON document kept in a string attribute, parsed.
fn json_in_string(v: &Value, pointer: &str) -> Value {
    serde_json::from_str(str_at(v, pointer))
        .unwrap_or_else(|e| panic!("{pointer} of {} is not JSON: {e}", v["id"]))
}

fn object<'a>(objects: &'a [Value], kind: &str, id: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["type"] == kind && o["id"] == id)
        .unwrap_or_else(|| panic!("no {kind} {id}"))
}

/// Field names of a KQL query: the words just before a ` : `.
fn kql_fields(query: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let words: Vec<&str> = query.split_whitespace().collect();
    for pair in words.windows(2) {
        if pair[1] == ":" {
            fields.push(pair[0].trim_start_matches('(').to_owned());
        }
    }
    fields
}

#[test]
fn every_object_has_type_id_attributes_and_unique_ids() {
    let objects = saved_objects();
    let mut seen = BTreeSet::new();
    for o in &objects {
        let kind = str_at(o, "/type");
        let id = str_at(o, "/id");
        assert!(o["attributes"].is_object(), "{kind}/{id}: no attributes");
        assert!(str_at(o, "/attributes/title").len() > 1, "{kind}/{id}");
        assert!(seen.insert((kind, id)), "{kind}/{id} twice");
    }
    let kinds: BTreeSet<&str> = objects.iter().map(|o| str_at(o, "/type")).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["dashboard", "index-pattern", "search", "visualization"])
    );
}

#[test]
fn references_point_into_the_file_and_are_used() {
    let objects = saved_objects();
    let ids: BTreeSet<(&str, &str)> = objects
        .iter()
        .map(|o| (str_at(o, "/type"), str_at(o, "/id")))
        .collect();
    for o in &objects {
        let references = o["references"].as_array().unwrap();
        for r in references {
            let target = (str_at(r, "/type"), str_at(r, "/id"));
            assert!(ids.contains(&target), "{}: dangling {target:?}", o["id"]);
        }
        let names: BTreeSet<&str> = references.iter().map(|r| str_at(r, "/name")).collect();
        assert_eq!(
            names.len(),
            references.len(),
            "{}: duplicate names",
            o["id"]
        );
        match str_at(o, "/type") {
            "visualization" | "search" => {
                let source =
                    json_in_string(o, "/attributes/kibanaSavedObjectMeta/searchSourceJSON");
                let name = str_at(&source, "/indexRefName");
                let r = references.iter().find(|r| r["name"] == name).unwrap();
                assert_eq!(r["type"], "index-pattern");
            }
            "dashboard" => {
                let panels = json_in_string(o, "/attributes/panelsJSON");
                let panels = panels.as_array().unwrap();
                assert_eq!(panels.len(), references.len(), "one reference a panel");
                for panel in panels {
                    let index = str_at(panel, "/panelIndex");
                    let name = format!("{index}:{}", str_at(panel, "/panelRefName"));
                    let r = references.iter().find(|r| r["name"] == name.as_str());
                    let r = r.unwrap_or_else(|| panic!("panel {index}: no reference {name}"));
                    assert_eq!(r["type"], panel["type"], "panel {index}");
                    assert_eq!(str_at(panel, "/gridData/i"), index);
                }
            }
            _ => assert!(references.is_empty()),
        }
    }
}

#[test]
fn the_dashboard_shows_every_visualization_and_the_search() {
    let objects = saved_objects();
    let dashboard = object(&objects, "dashboard", "auditrail-dashboard");
    let shown: BTreeSet<&str> = dashboard["references"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| str_at(r, "/id"))
        .collect();
    for o in &objects {
        if matches!(str_at(o, "/type"), "visualization" | "search") {
            assert!(shown.contains(str_at(o, "/id")), "{} not on it", o["id"]);
        }
    }
    json_in_string(dashboard, "/attributes/optionsJSON");
    json_in_string(
        dashboard,
        "/attributes/kibanaSavedObjectMeta/searchSourceJSON",
    );
}

#[test]
fn the_data_view_covers_both_index_names_with_time_as_time_field() {
    let objects = saved_objects();
    let view = object(&objects, "index-pattern", "auditrail-data-view");
    assert_eq!(str_at(view, "/attributes/timeFieldName"), "time");
    let patterns: Vec<&str> = str_at(view, "/attributes/title").split(',').collect();
    for index in [
        "auditrail-kube.prod",
        "auditrail-ee.prod",
        "tigera_secure_ee_audit_kube.prod.fluentd.20261125",
        "tigera_secure_ee_audit_ee.prod.fluentd.20261125",
    ] {
        let matched = patterns.iter().any(|p| {
            let prefix = p.strip_suffix('*').unwrap();
            index.starts_with(prefix)
        });
        assert!(matched, "{index} not covered by {patterns:?}");
    }
}

#[test]
fn visualizations_and_the_search_use_indexed_fields_only() {
    let objects = saved_objects();
    let mut used = Vec::new();
    for o in &objects {
        match str_at(o, "/type") {
            "visualization" => {
                let state = json_in_string(o, "/attributes/visState");
                json_in_string(o, "/attributes/uiStateJSON");
                let aggs = state["aggs"].as_array().unwrap();
                assert!(aggs.iter().any(|a| a["schema"] == "metric"), "{}", o["id"]);
                for agg in aggs {
                    if let Some(field) = agg.pointer("/params/field") {
                        used.push((o["id"].clone(), field.as_str().unwrap().to_owned()));
                    }
                }
                let source =
                    json_in_string(o, "/attributes/kibanaSavedObjectMeta/searchSourceJSON");
                for field in kql_fields(str_at(&source, "/query/query")) {
                    used.push((o["id"].clone(), field));
                }
            }
            "search" => {
                for column in o["attributes"]["columns"].as_array().unwrap() {
                    used.push((o["id"].clone(), column.as_str().unwrap().to_owned()));
                }
                for sort in o["attributes"]["sort"].as_array().unwrap() {
                    used.push((o["id"].clone(), sort[0].as_str().unwrap().to_owned()));
                }
                let source =
                    json_in_string(o, "/attributes/kibanaSavedObjectMeta/searchSourceJSON");
                let fields = kql_fields(str_at(&source, "/query/query"));
                assert!(fields.len() > 5, "the query's fields were not found");
                used.extend(fields.into_iter().map(|f| (o["id"].clone(), f)));
            }
            _ => {}
        }
    }
    assert!(used.len() > 10, "too few fields found: {used:?}");
    for (id, field) in used {
        assert!(
            INDEXED_FIELDS.contains(&field.as_str()),
            "{id}: {field} is not indexed"
        );
    }
}

#[test]
fn kql_fields_finds_each_field_before_a_colon() {
    assert_eq!(
        kql_fields(r#"verb : ("create" or "patch") and not (dryRun : true)"#),
        ["verb", "dryRun"]
    );
}

#[test]
fn latest_policy_changes_are_completed_writes_to_policy_resources_newest_first() {
    let objects = saved_objects();
    let search = object(&objects, "search", "auditrail-latest-policy-changes");
    assert_eq!(
        search["attributes"]["sort"],
        serde_json::json!([["time", "desc"]])
    );
    let source = json_in_string(search, "/attributes/kibanaSavedObjectMeta/searchSourceJSON");
    let query = str_at(&source, "/query/query");
    assert_eq!(str_at(&source, "/query/language"), "kuery");
    for needle in [
        r#"stage : "ResponseComplete""#,
        r#""create""#,
        r#""update""#,
        r#""patch""#,
        r#""delete""#,
        r#""networking.k8s.io""#,
        r#""projectcalico.org""#,
        r#""globalnetworkpolicies""#,
        r#""stagednetworkpolicies""#,
        r#""stagedglobalnetworkpolicies""#,
        r#""stagedkubernetesnetworkpolicies""#,
        r#""tiers""#,
        r#""networksets""#,
        r#""globalnetworksets""#,
        r#""hostendpoints""#,
    ] {
        assert!(query.contains(needle), "{needle} missing from {query}");
    }
    assert_eq!(
        query.matches('(').count(),
        query.matches(')').count(),
        "unbalanced: {query}"
    );
}

/// What the mock Kibana received.
#[derive(Debug)]
struct Recorded {
    request_line: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// A mock Kibana on a free loopback port: accepts one request, records it
/// and answers `status` with `answer`. Returns its base URL.
fn mock_kibana(status: &str, answer: &str) -> (String, JoinHandle<Recorded>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (status, answer) = (status.to_owned(), answer.to_owned());
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut request_line = String::new();
        reader.read_line(&mut request_line).unwrap();
        let mut headers = HashMap::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap();
            headers.insert(name.to_ascii_lowercase(), value.trim().to_owned());
        }
        let length: usize = headers["content-length"].parse().unwrap();
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let mut stream = stream;
        write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{answer}",
            answer.len()
        )
        .unwrap();
        Recorded {
            request_line: request_line.trim_end().to_owned(),
            headers,
            body,
        }
    });
    (url, handle)
}

fn import_to(url: &str, space: Option<&str>, auth: Auth, overwrite: bool) -> Import {
    Import {
        url: url.to_owned(),
        space: space.map(str::to_owned),
        auth,
        file: workspace_root().join(NDJSON),
        overwrite,
    }
}

#[test]
fn import_posts_the_file_as_multipart_with_xsrf_space_and_basic_auth() {
    let (url, kibana) = mock_kibana("200 OK", r#"{"success":true,"successCount":6}"#);
    let auth = Auth::Basic {
        user: "elastic".into(),
        password: "s3cret".into(),
    };
    let imported = import_saved_objects(&import_to(&url, Some("audit"), auth, true)).unwrap();
    assert_eq!(imported, 6);

    let request = kibana.join().unwrap();
    assert_eq!(
        request.request_line,
        "POST /s/audit/api/saved_objects/_import?overwrite=true HTTP/1.1"
    );
    assert_eq!(request.headers["kbn-xsrf"], "true");
    // base64("elastic:s3cret")
    assert_eq!(
        request.headers["authorization"],
        "Basic ZWxhc3RpYzpzM2NyZXQ="
    );
    let content_type = &request.headers["content-type"];
    let boundary = content_type
        .strip_prefix("multipart/form-data; boundary=")
        .unwrap();
    let body = String::from_utf8(request.body).unwrap();
    let ndjson = std::fs::read_to_string(workspace_root().join(NDJSON)).unwrap();
    let expected_start = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
         filename=\"auditrail.ndjson\"\r\nContent-Type: application/ndjson\r\n\r\n"
    );
    assert!(body.starts_with(&expected_start), "{body}");
    assert!(body.ends_with(&format!("\r\n--{boundary}--\r\n")), "{body}");
    assert_eq!(
        &body[expected_start.len()..body.len() - boundary.len() - 8],
        ndjson
    );
}

#[test]
fn import_sends_an_api_key_to_the_default_space_without_overwrite() {
    let (url, kibana) = mock_kibana("200 OK", r#"{"success":true,"successCount":6}"#);
    let auth = Auth::ApiKey("aWQ6a2V5".into());
    // A trailing slash on the URL is not doubled.
    import_saved_objects(&import_to(&format!("{url}/"), None, auth, false)).unwrap();
    let request = kibana.join().unwrap();
    assert_eq!(
        request.request_line,
        "POST /api/saved_objects/_import?overwrite=false HTTP/1.1"
    );
    assert_eq!(request.headers["authorization"], "ApiKey aWQ6a2V5");
    assert_eq!(request.headers["kbn-xsrf"], "true");
}

#[test]
fn import_without_credentials_sends_no_authorization() {
    let (url, kibana) = mock_kibana("200 OK", r#"{"success":true,"successCount":6}"#);
    import_saved_objects(&import_to(&url, None, Auth::None, false)).unwrap();
    let request = kibana.join().unwrap();
    assert!(!request.headers.contains_key("authorization"));
}

#[test]
fn a_failed_import_lists_each_of_kibanas_errors() {
    let answer = r#"{"success":false,"successCount":4,"errors":[
        {"id":"auditrail-top-users","type":"visualization","meta":{"title":"auditrail: top users"},
         "error":{"type":"missing_references","references":[{"type":"index-pattern","id":"gone"}]}},
        {"id":"auditrail-dashboard","type":"dashboard","meta":{"title":"auditrail: audit trail overview"},
         "error":{"type":"conflict"}}]}"#;
    let (url, kibana) = mock_kibana("200 OK", answer);
    let err = import_saved_objects(&import_to(&url, None, Auth::None, false)).unwrap_err();
    kibana.join().unwrap();
    let message = format!("{err:#}");
    assert!(
        message.contains("imported 4 objects and reported 2 errors"),
        "{message}"
    );
    assert!(
        message.contains(
            "visualization/auditrail-top-users (auditrail: top users): \
             missing_references (index-pattern/gone)"
        ),
        "{message}"
    );
    assert!(
        message
            .contains("dashboard/auditrail-dashboard (auditrail: audit trail overview): conflict"),
        "{message}"
    );
}

#[test]
fn an_http_error_gives_kibanas_message() {
    let answer = r#"{"statusCode":401,"error":"Unauthorized","message":"[security_exception] unable to authenticate user"}"#;
    let (url, kibana) = mock_kibana("401 Unauthorized", answer);
    let err = import_saved_objects(&import_to(&url, None, Auth::None, false)).unwrap_err();
    kibana.join().unwrap();
    assert_eq!(
        format!("{err:#}"),
        "Kibana answered HTTP 401: [security_exception] unable to authenticate user"
    );
}

#[test]
fn a_non_json_error_page_is_cut_short() {
    let page = format!("<html>{}</html>", "x".repeat(1000));
    let (url, kibana) = mock_kibana("404 Not Found", &page);
    let err = import_saved_objects(&import_to(&url, None, Auth::None, false)).unwrap_err();
    kibana.join().unwrap();
    let message = format!("{err:#}");
    assert!(
        message.starts_with("Kibana answered HTTP 404: <html>xxx"),
        "{message}"
    );
    assert!(message.ends_with("x…"), "{message}");
    assert!(message.chars().count() < 350, "{message}");
}

#[test]
fn an_unreachable_kibana_gives_a_clear_error() {
    // A port that was free a moment ago and has no listener now.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let err = import_saved_objects(&import_to(&url, None, Auth::None, false)).unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.starts_with(&format!(
            "cannot reach Kibana at {url}: is it running, and is --url right?"
        )),
        "{message}"
    );
}

#[test]
fn bad_urls_and_space_ids_are_refused_before_sending() {
    let err = import_url("localhost:5601", None, false).unwrap_err();
    assert!(err.to_string().contains("http:// or https://"), "{err}");
    for space in ["", "Audit", "a/b", "a?b"] {
        let err = import_url("http://kibana:5601", Some(space), false).unwrap_err();
        assert!(err.to_string().contains("space id"), "{space:?}: {err}");
    }
    assert_eq!(
        import_url("https://kibana.example/base/", Some("team-a_1"), true).unwrap(),
        "https://kibana.example/base/s/team-a_1/api/saved_objects/_import?overwrite=true"
    );
}

#[test]
fn the_boundary_never_occurs_in_the_file() {
    let content = b"--auditrail-kibana-import and --auditrail-kibana-importx";
    let (content_type, body) = multipart_file(Path::new("x.ndjson"), content);
    let boundary = content_type.rsplit('=').next().unwrap();
    assert_eq!(boundary, "auditrail-kibana-importxx");
    let body = String::from_utf8(body).unwrap();
    assert_eq!(body.matches(boundary).count(), 2);
}
