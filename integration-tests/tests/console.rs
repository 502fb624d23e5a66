//! The console end to end: `auditrail up` with access control (an admin,
//! and alice who may read cluster `a` only), the same generated events
//! stored for clusters `a` and `b`, and the console on its own port.
//!
//! - The JSON API over real HTTP: every endpoint, each answer checked
//!   against the gRPC answer to the same question (errors included, as
//!   exact JSON), sessions, CSRF and Origin checks, and the export
//!   compared byte for byte with `auditrail export`.
//! - The pages in headless Chromium driven through ChromeDriver
//!   (WebDriver, `fantoccini`): timeline rows and paging against gRPC,
//!   an event's YAML, a history's diff, an export downloaded by the page,
//!   the selector's error inline, and alice seeing nothing of cluster
//!   `b`. Screenshots of each page at 1280 and 375 px are written to
//!   `target/console-screenshots/` (not committed) to be looked at.
//!
//! `cargo xtask test` installs Debian's chromium and chromium-driver and
//! names them in `AUDITRAIL_CHROMIUM` and `AUDITRAIL_CHROMEDRIVER`; where
//! it could not, the browser trials are reported ignored with its reason
//! (`AUDITRAIL_NO_BROWSER`), never passed without running.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]
#![allow(
    clippy::too_many_lines,
    clippy::unnecessary_wraps,
    clippy::many_single_char_names,
    reason = "a trial is one scripted session, read top to bottom, with libtest-mimic's signature"
)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use auditrail_integration_tests::console_http::{http, sign_in};
use auditrail_integration_tests::{Server, binary, run_to_end, token_entry};
use auditrail_proto::v1;
use auditrail_proto::v1::ingest_service_client::IngestServiceClient;
use auditrail_proto::v1::query_service_client::QueryServiceClient;
use fantoccini::{Client, ClientBuilder, Locator};
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::{Value, json};

const ROOT: &str = "root-secret";
const ALICE: &str = "alice-secret";
/// Generated events stored in each cluster.
const EVENTS: usize = 400;

/// The server, its console and what the trials compare against.
struct Fixture {
    server: Server,
    console: String,
    _dir: tempfile::TempDir,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

impl Fixture {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens.toml");
        std::fs::write(
            &tokens,
            [
                token_entry("root", ROOT, &["admin"]),
                token_entry("alice", ALICE, &[]),
            ]
            .concat(),
        )
        .unwrap();
        let roles = dir.path().join("roles.toml");
        std::fs::write(
            &roles,
            "[[role]]\nname = \"a-reader\"\npermissions = [\"read\", \"export\"]\n\
             clusters = [\"a\"]\n\n[[binding]]\nrole = \"a-reader\"\nusers = [\"alice\"]\n",
        )
        .unwrap();
        let own_token = dir.path().join("ingestor.token");
        std::fs::write(&own_token, ROOT).unwrap();
        let data = dir.path().join("data");
        let server = Server::start(
            &binary("auditrail").unwrap(),
            &[
                "up",
                "--data-dir",
                data.to_str().unwrap(),
                "--retention-days",
                "0",
                "--auth-token-file",
                tokens.to_str().unwrap(),
                "--authz-file",
                roles.to_str().unwrap(),
                "--console-listen",
                "127.0.0.1:0",
            ],
            &[(
                "AUDITRAIL_INGESTOR__INDEXER_CLIENT__TOKEN_FILE",
                own_token.to_str().unwrap(),
            )],
        )
        .unwrap();
        let console = runtime().block_on(async {
            auditrail_integration_tests::eventually("the console's address", || {
                let url = server.console_url();
                async move { url }
            })
            .await
            .unwrap()
        });
        runtime().block_on(ingest(&server));
        Self {
            server,
            console,
            _dir: dir,
        }
    }
}

async fn grpc(
    server: &Server,
    token: &str,
) -> QueryServiceClient<
    tonic::service::interceptor::InterceptedService<
        tonic::transport::Channel,
        impl tonic::service::Interceptor + Clone,
    >,
> {
    let channel = auditrail_integration_tests::channel(server).await.unwrap();
    QueryServiceClient::with_interceptor(
        channel,
        auditrail_integration_tests::bearer(token).unwrap(),
    )
}

/// The same generated events for clusters `a` and `b`, as the admin.
async fn ingest(server: &Server) {
    let channel = auditrail_integration_tests::channel(server).await.unwrap();
    let mut ingest = IngestServiceClient::with_interceptor(
        channel,
        auditrail_integration_tests::bearer(ROOT).unwrap(),
    );
    for batch in auditrail_integration_tests::generated_batches(&["a", "b"], EVENTS) {
        let answer = ingest.ingest_batch(batch).await.unwrap().into_inner();
        assert!(answer.committed);
    }
}

/// The JSON error the console must answer for `status` from gRPC.
fn error_json(status: &tonic::Status) -> Value {
    let code = match status.code() {
        tonic::Code::InvalidArgument => "INVALID_ARGUMENT",
        tonic::Code::NotFound => "NOT_FOUND",
        tonic::Code::PermissionDenied => "PERMISSION_DENIED",
        tonic::Code::Unauthenticated => "UNAUTHENTICATED",
        tonic::Code::FailedPrecondition => "FAILED_PRECONDITION",
        other => panic!("unexpected {other:?}"),
    };
    json!({"code": code, "message": status.message()})
}

fn ids(page: &Value) -> Vec<String> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

fn filter_a_writes() -> v1::Filter {
    v1::Filter {
        clusters: vec!["a".to_owned()],
        verbs: vec!["create".to_owned(), "patch".to_owned(), "update".to_owned()],
        ..v1::Filter::default()
    }
}

/// A resource of cluster `a` with at least two versions: (query string
/// of /history, the gRPC history).
async fn resource_with_versions(server: &Server) -> (String, v1::HistoryResponse) {
    let mut q = grpc(server, ROOT).await;
    let page = q
        .search(v1::SearchRequest {
            filter: Some(v1::Filter {
                clusters: vec!["a".to_owned()],
                verbs: vec!["update".to_owned(), "patch".to_owned()],
                ..v1::Filter::default()
            }),
            timeline: true,
            page_size: 200,
            ..v1::SearchRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    for e in page.events {
        let r = e.object_ref.unwrap();
        let history = q
            .history(v1::HistoryRequest {
                cluster: "a".to_owned(),
                api_group: r.api_group.clone(),
                resource: r.resource.clone(),
                namespace: r.namespace.clone(),
                name: r.name.clone(),
                ..v1::HistoryRequest::default()
            })
            .await
            .unwrap()
            .into_inner();
        if history.versions.len() >= 2 {
            let query = format!(
                "cluster=a&resource={}&apiGroup={}&namespace={}&name={}",
                r.resource, r.api_group, r.namespace, r.name
            );
            return (query, history);
        }
    }
    panic!("no resource with two versions among the generated events");
}

/// `auditrail export --cluster a --verb create --timeline` in `format`,
/// as the admin: the file it writes.
fn cli_export(f: &Fixture, format: &str) -> Vec<u8> {
    let out = tempfile::NamedTempFile::new().unwrap();
    let (status, _, err) = run_to_end(Command::new(binary("auditrail").unwrap()).args([
        "export",
        "--server",
        &f.server.url(),
        "--token",
        ROOT,
        "--cluster",
        "a",
        "--verb",
        "create",
        "--timeline",
        "--format",
        format,
        "--quiet",
        "--file",
        out.path().to_str().unwrap(),
    ]))
    .unwrap();
    assert!(status.success(), "{err}");
    std::fs::read(out.path()).unwrap()
}

// ---- the JSON API ------------------------------------------------------------

fn json_api(f: &Fixture) -> Result<(), Failed> {
    let rt = runtime();
    let c = &f.console;
    let origin = [("Origin", c.as_str())];

    // Nobody signed in: the session says so; the services refuse.
    let anonymous = http("GET", &format!("{c}/api/v1/session"), &[], None);
    assert_eq!(
        anonymous.json(),
        json!({"signedIn": false, "csrfToken": ""})
    );
    let refused = http("GET", &format!("{c}/api/v1/search"), &[], None);
    assert_eq!(refused.status, 401);
    assert_eq!(refused.json()["code"], "UNAUTHENTICATED");

    // Sign-in: only from the console's own origin, only with a known token.
    let no_origin = http(
        "POST",
        &format!("{c}/api/v1/session"),
        &[],
        Some(&json!({"token": ROOT})),
    );
    assert_eq!(no_origin.status, 403);
    assert_eq!(
        no_origin.json(),
        json!({"code": "PERMISSION_DENIED", "message": "cross-origin request refused: \
        state-changing requests must come from the console's own pages (Origin must match Host)"})
    );
    let other_site = http(
        "POST",
        &format!("{c}/api/v1/session"),
        &[("Origin", "https://evil.example")],
        Some(&json!({"token": ROOT})),
    );
    assert_eq!(other_site.status, 403);
    let stranger = http(
        "POST",
        &format!("{c}/api/v1/session"),
        &origin,
        Some(&json!({"token": "not-a-token"})),
    );
    assert_eq!(stranger.status, 401, "an unknown token is refused");
    let bad_body = http(
        "POST",
        &format!("{c}/api/v1/session"),
        &origin,
        Some(&json!({"tokn": ROOT})),
    );
    assert_eq!(bad_body.status, 400);
    assert_eq!(bad_body.json()["code"], "INVALID_ARGUMENT");

    let root = sign_in(c, ROOT);
    let mine = root.get(c, "/api/v1/session").json();
    assert_eq!(mine, json!({"signedIn": true, "csrfToken": root.csrf}));

    // Search: every page of a filter, against gRPC's pages.
    let mut q = rt.block_on(grpc(&f.server, ROOT));
    let mut grpc_ids = Vec::new();
    let mut token = String::new();
    loop {
        let page = rt
            .block_on(q.search(v1::SearchRequest {
                filter: Some(filter_a_writes()),
                page_size: 40,
                page_token: token.clone(),
                ..v1::SearchRequest::default()
            }))
            .unwrap()
            .into_inner();
        grpc_ids.extend(page.events.iter().map(|e| e.id.clone()));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert!(grpc_ids.len() > 40, "several pages: {}", grpc_ids.len());
    let mut api_ids = Vec::new();
    let mut token = String::new();
    let mut total = None;
    loop {
        let mut path =
            "/api/v1/search?cluster=a&verb=create&verb=patch&verb=update&pageSize=40".to_owned();
        if !token.is_empty() {
            path = format!("{path}&pageToken={token}");
        }
        let page = root.get(c, &path);
        assert_eq!(page.status, 200);
        let page = page.json();
        total.get_or_insert(page["totalHits"].as_str().unwrap().to_owned());
        api_ids.extend(ids(&page));
        page["nextPageToken"]
            .as_str()
            .unwrap()
            .clone_into(&mut token);
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(
        api_ids, grpc_ids,
        "the same events, in order, no repeats or gaps"
    );
    assert_eq!(total.unwrap(), grpc_ids.len().to_string());

    // Histogram: the same total.
    let h = root
        .get(
            c,
            "/api/v1/histogram?cluster=a&verb=create&verb=patch&verb=update&top=verb",
        )
        .json();
    assert_eq!(h["total"], grpc_ids.len().to_string());
    assert_eq!(h["topValues"][0]["field"], "TOP_FIELD_VERB");

    // Errors: the service's own, as exact JSON.
    let bad_selector = rt
        .block_on(q.search(v1::SearchRequest {
            filter: Some(v1::Filter {
                selector: "verb ==".to_owned(),
                ..v1::Filter::default()
            }),
            ..v1::SearchRequest::default()
        }))
        .unwrap_err();
    let answer = root.get(c, "/api/v1/search?selector=verb%20%3D%3D");
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json(), error_json(&bad_selector));
    let bad_time = rt
        .block_on(q.search(v1::SearchRequest {
            filter: Some(v1::Filter {
                from: "yesterday".to_owned(),
                ..v1::Filter::default()
            }),
            ..v1::SearchRequest::default()
        }))
        .unwrap_err();
    let answer = root.get(c, "/api/v1/search?from=yesterday");
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json(), error_json(&bad_time));
    // A page token of another query.
    let first = root.get(c, "/api/v1/search?cluster=a&pageSize=5").json();
    let other_token = first["nextPageToken"].as_str().unwrap().to_owned();
    let foreign = rt
        .block_on(q.search(v1::SearchRequest {
            filter: Some(v1::Filter {
                clusters: vec!["b".to_owned()],
                ..v1::Filter::default()
            }),
            page_size: 5,
            page_token: other_token.clone(),
            ..v1::SearchRequest::default()
        }))
        .unwrap_err();
    let answer = root.get(
        c,
        &format!("/api/v1/search?cluster=b&pageSize=5&pageToken={other_token}"),
    );
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json(), error_json(&foreign));
    // The console's own checks.
    assert_eq!(
        root.get(c, "/api/v1/search?verbs=create").json(),
        json!({"code": "INVALID_ARGUMENT", "message": "unknown parameter \"verbs\"; see the \
        JSON API in the README for the parameters of each endpoint"})
    );
    assert_eq!(
        root.get(c, "/api/v1/search?code=abc").json(),
        json!({"code": "INVALID_ARGUMENT",
               "message": "parameter code = \"abc\": an HTTP status code, e.g. 403"})
    );
    assert_eq!(
        root.get(c, "/api/v1/histogram?interval=5y").json(),
        json!({"code": "INVALID_ARGUMENT", "message": "parameter interval = \"5y\": a whole \
        number and a unit s, m, h, d or w, e.g. 5m"})
    );
    let nowhere = root.get(c, "/api/v1/nowhere");
    assert_eq!(nowhere.status, 404);
    assert_eq!(
        nowhere.json(),
        json!({"code": "NOT_FOUND", "message": "no endpoint /nowhere; see the JSON API in the README"})
    );

    // One event: the original bytes, as text and as downloads.
    let id = &grpc_ids[0];
    let expected = rt
        .block_on(q.get_event(v1::GetEventRequest { id: id.clone() }))
        .unwrap()
        .into_inner()
        .event
        .unwrap();
    let event = root.get(c, &format!("/api/v1/events/{id}")).json();
    assert_eq!(event["event"]["id"], id.as_str());
    assert_eq!(event["raw"].as_str().unwrap().as_bytes(), &expected.raw[..]);
    assert!(event["yaml"].as_str().unwrap().contains(&expected.audit_id));
    let download = root.get(c, &format!("/api/v1/events/{id}?download=json"));
    assert_eq!(download.body, expected.raw);
    assert!(
        download.headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment"),
    );
    let missing = "0".repeat(64);
    let not_found = rt
        .block_on(q.get_event(v1::GetEventRequest {
            id: missing.clone(),
        }))
        .unwrap_err();
    let answer = root.get(c, &format!("/api/v1/events/{missing}"));
    assert_eq!(answer.status, 404);
    assert_eq!(answer.json(), error_json(&not_found));
    let malformed = root.get(c, "/api/v1/events/xyz");
    assert_eq!(malformed.status, 400);
    assert_eq!(
        malformed.json(),
        json!({"code": "INVALID_ARGUMENT", "message": "id \"xyz\" is not an event id (64 hex digits)"})
    );

    // History and diff, against gRPC.
    let (query, history) = rt.block_on(resource_with_versions(&f.server));
    let api_history = root.get(c, &format!("/api/v1/history?{query}")).json();
    let versions: Vec<&str> = api_history["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["eventId"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = history
        .versions
        .iter()
        .map(|v| v.event_id.as_str())
        .collect();
    assert_eq!(versions, expected);
    let (from, to) = (&expected[0], &expected[1]);
    let diff = rt
        .block_on(q.diff(v1::DiffRequest {
            from_event_id: (*from).to_owned(),
            to_event_id: (*to).to_owned(),
            ignore_noisy_metadata: true,
            context_lines: None,
        }))
        .unwrap()
        .into_inner();
    let api_diff = root
        .get(
            c,
            &format!("/api/v1/diff?from={from}&to={to}&ignoreNoise=true"),
        )
        .json();
    assert_eq!(api_diff["unifiedDiff"], diff.unified_diff.as_str());
    let no_to = root.get(c, &format!("/api/v1/diff?from={from}"));
    assert_eq!(
        no_to.json(),
        json!({"code": "INVALID_ARGUMENT", "message": "parameter to is required"})
    );

    // Export: byte for byte what `auditrail export` writes.
    for format in ["json", "ndjson", "yaml"] {
        let api = root.get(
            c,
            &format!("/api/v1/export?cluster=a&verb=create&timeline=true&format={format}"),
        );
        assert_eq!(api.status, 200);
        let cli = cli_export(f, format);
        assert!(!api.body.is_empty());
        assert!(
            api.body == cli,
            "{format}: the export differs from the CLI's"
        );
    }
    let bad_format = root.get(c, "/api/v1/export?format=xml");
    assert_eq!(
        bad_format.json(),
        json!({"code": "INVALID_ARGUMENT", "message": "parameter format = \"xml\": give json, ndjson or yaml"})
    );

    // Ingest: the store per cluster and type, and the ingestor's answer.
    let ingest = root.get(c, "/api/v1/ingest").json();
    let clusters: Vec<&str> = ingest["store"]["stats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["cluster"].as_str().unwrap())
        .collect();
    assert!(
        clusters.contains(&"a") && clusters.contains(&"b"),
        "{ingest}"
    );
    assert!(ingest["status"]["sources"].is_array(), "{ingest}");
    assert!(ingest["deadLetters"]["total"].is_string(), "{ingest}");

    // Reports: lists, and the reporter's own errors.
    let defs = root.get(c, "/api/v1/reports/definitions");
    assert_eq!(defs.status, 200);
    assert!(defs.json()["definitions"].is_array());
    assert_eq!(root.get(c, "/api/v1/reports").status, 200);
    let unknown = root.get(c, "/api/v1/reports/nope");
    assert_eq!(
        unknown.status,
        404,
        "{}",
        String::from_utf8_lossy(&unknown.body)
    );
    assert_eq!(unknown.json()["code"], "NOT_FOUND");
    let bad_part = root.get(c, "/api/v1/reports/nope/download?part=flows");
    assert_eq!(
        bad_part.json(),
        json!({"code": "INVALID_ARGUMENT", "message": "parameter part = \"flows\": give all, \
        summary, endpoints, namespaces or events"})
    );
    // Running one needs the session's CSRF token.
    let run = |csrf: &str| {
        http(
            "POST",
            &format!("{c}/api/v1/reports/run"),
            &[
                ("Origin", c),
                ("Cookie", &root.cookie),
                ("X-CSRF-Token", csrf),
            ],
            Some(
                &json!({"definition": "nope", "start": "2026-01-01T00:00:00Z",
                         "end": "2026-01-02T00:00:00Z"}),
            ),
        )
    };
    let forged = run("forged");
    assert_eq!(forged.status, 403);
    assert_eq!(
        forged.json(),
        json!({"code": "PERMISSION_DENIED", "message": "missing or wrong X-CSRF-Token: reload \
        the page (GET /api/v1/session gives it)"})
    );
    let real = run(&root.csrf);
    assert_eq!(real.status, 404, "{}", String::from_utf8_lossy(&real.body));
    assert_eq!(real.json()["code"], "NOT_FOUND");

    // Alice reads cluster a only.
    let alice = sign_in(c, ALICE);
    let hers = alice.get(c, "/api/v1/search?pageSize=1000").json();
    let clusters: std::collections::BTreeSet<&str> = hers["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["cluster"].as_str().unwrap())
        .collect();
    assert_eq!(clusters, std::collections::BTreeSet::from(["a"]));
    let b = alice.get(c, "/api/v1/search?cluster=b");
    assert_eq!(b.status, 403);
    assert_eq!(b.json()["code"], "PERMISSION_DENIED");
    let b_event = rt
        .block_on(q.search(v1::SearchRequest {
            filter: Some(v1::Filter {
                clusters: vec!["b".to_owned()],
                ..v1::Filter::default()
            }),
            page_size: 1,
            ..v1::SearchRequest::default()
        }))
        .unwrap()
        .into_inner()
        .events[0]
        .id
        .clone();
    assert_eq!(
        alice.get(c, &format!("/api/v1/events/{b_event}")).status,
        403,
        "an event of cluster b by id"
    );

    // Sign-out ends the session on the server.
    let out = http(
        "DELETE",
        &format!("{c}/api/v1/session"),
        &[
            ("Origin", c),
            ("Cookie", &root.cookie),
            ("X-CSRF-Token", &root.csrf),
        ],
        None,
    );
    assert_eq!(out.status, 200);
    assert_eq!(root.get(c, "/api/v1/search").status, 401);

    // Every answer carries the strict policy.
    for path in ["/timeline", "/api/v1/session", "/assets/app.js"] {
        let answer = http("GET", &format!("{c}{path}"), &[], None);
        let csp = answer.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    }
    Ok(())
}

// ---- the browser ---------------------------------------------------------------

/// ChromeDriver on a free port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn browser() -> (Driver, Client) {
    let driver_path = std::env::var("AUDITRAIL_CHROMEDRIVER").unwrap();
    let chromium = std::env::var("AUDITRAIL_CHROMIUM").unwrap();
    let port = free_port();
    let child = Command::new(driver_path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let profile = tempfile::tempdir().unwrap().keep();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": chromium,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", "--window-size=1280,900",
                     format!("--user-data-dir={}", profile.display())],
        }),
    );
    let client = auditrail_integration_tests::eventually("ChromeDriver", || {
        let caps = caps.clone();
        let url = driver.url.clone();
        async move {
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps)
                .connect(&url)
                .await
                .ok()
        }
    })
    .await
    .unwrap();
    (driver, client)
}

/// Opens `path` and waits until its page has rendered.
async fn open(client: &Client, console: &str, path: &str) {
    client.goto(&format!("{console}{path}")).await.unwrap();
    ready(client, path.split('?').next().unwrap()).await;
}

/// Waits until the page at `page_path` has rendered its answer.
async fn ready(client: &Client, page_path: &str) {
    let locator = format!("body[data-ready=\"{page_path}\"]");
    client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(&locator))
        .await
        .unwrap_or_else(|e| panic!("{page_path} did not render: {e}"));
}

async fn texts(client: &Client, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in client.find_all(Locator::Css(css)).await.unwrap() {
        out.push(e.text().await.unwrap());
    }
    out
}

async fn hrefs(client: &Client, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in client.find_all(Locator::Css(css)).await.unwrap() {
        out.push(e.attr("href").await.unwrap().unwrap_or_default());
    }
    out
}

fn screenshots_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().nth(3).unwrap().to_owned();
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A screenshot of the page at both widths.
async fn screenshot(client: &Client, name: &str) {
    for width in [1280, 375] {
        client.set_window_size(width, 900).await.unwrap();
        let png = client.screenshot().await.unwrap();
        std::fs::write(screenshots_dir().join(format!("{name}-{width}.png")), png).unwrap();
    }
    client.set_window_size(1280, 900).await.unwrap();
}

async fn sign_in_page(client: &Client, console: &str, token: &str) {
    open(client, console, "/signin").await;
    let input = client.find(Locator::Css("#token")).await.unwrap();
    input.send_keys(token).await.unwrap();
    client
        .find(Locator::Css("#signin button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    ready(client, "/timeline").await;
}

fn pages_in_browser(f: &Fixture) -> Result<(), Failed> {
    runtime().block_on(async {
        let (_driver, client) = browser().await;
        let c = &f.console;
        // Not signed in: the timeline sends to the sign-in page.
        client.goto(&format!("{c}/timeline")).await.unwrap();
        ready(&client, "/signin").await;
        screenshot(&client, "signin").await;
        sign_in_page(&client, c, ROOT).await;

        // The timeline of cluster a's writes against gRPC's first pages.
        let mut q = grpc(&f.server, ROOT).await;
        let filter = v1::Filter {
            clusters: vec!["a".to_owned()],
            ..v1::Filter::default()
        };
        let first = q
            .search(v1::SearchRequest {
                filter: Some(filter.clone()),
                timeline: true,
                page_size: 50,
                ..v1::SearchRequest::default()
            })
            .await
            .unwrap()
            .into_inner();
        open(&client, c, "/timeline?cluster=a").await;
        let rows = hrefs(&client, "#events a.summary").await;
        let expected: Vec<String> = first.events.iter().map(|e| format!("/event/{}", e.id)).collect();
        assert_eq!(rows, expected, "the first page's rows");
        let summaries = texts(&client, "#events a.summary").await;
        assert_eq!(summaries[0], first.events[0].summary);
        // The histogram is drawn over the same events.
        client
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Css("#histogram svg rect.bar"))
            .await
            .unwrap();
        screenshot(&client, "timeline").await;
        // The next page.
        client
            .find(Locator::Css("#next-page"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        ready(&client, "/timeline").await;
        let second = q
            .search(v1::SearchRequest {
                filter: Some(filter.clone()),
                timeline: true,
                page_size: 50,
                page_token: first.next_page_token.clone(),
                ..v1::SearchRequest::default()
            })
            .await
            .unwrap()
            .into_inner();
        let rows = hrefs(&client, "#events a.summary").await;
        let expected: Vec<String> =
            second.events.iter().map(|e| format!("/event/{}", e.id)).collect();
        assert_eq!(rows, expected, "the second page's rows");

        // A filter typed in the form lands in the URL and the rows.
        open(&client, c, "/timeline").await;
        let verb = client.find(Locator::Css("input[name=verb]")).await.unwrap();
        verb.send_keys("create").await.unwrap();
        let cluster = client.find(Locator::Css("input[name=cluster]")).await.unwrap();
        cluster.send_keys("a").await.unwrap();
        client
            .find(Locator::Css("#filters button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        ready(&client, "/timeline").await;
        let url = client.current_url().await.unwrap();
        assert_eq!(url.query(), Some("cluster=a&verb=create"));
        let creates = q
            .search(v1::SearchRequest {
                filter: Some(v1::Filter {
                    clusters: vec!["a".to_owned()],
                    verbs: vec!["create".to_owned()],
                    ..v1::Filter::default()
                }),
                timeline: true,
                page_size: 50,
                ..v1::SearchRequest::default()
            })
            .await
            .unwrap()
            .into_inner();
        let rows = hrefs(&client, "#events a.summary").await;
        let expected: Vec<String> =
            creates.events.iter().map(|e| format!("/event/{}", e.id)).collect();
        assert_eq!(rows, expected, "the filtered rows");
        // The export link of the page downloads what `auditrail export` writes.
        let downloaded = client
            .execute_async(
                "const done = arguments[arguments.length - 1];\
                 fetch(document.querySelector('a[data-format=ndjson]').href)\
                   .then(r => r.text()).then(done, e => done('failed: ' + e));",
                vec![],
            )
            .await
            .unwrap();
        let cli = cli_export(f, "ndjson");
        assert_eq!(downloaded.as_str().unwrap().as_bytes(), cli, "the page's export");

        // A selector mistake is shown inline with its position.
        open(&client, c, "/timeline?selector=verb%20%3D%3D").await;
        let error = texts(&client, ".list-slot .error").await;
        assert_eq!(
            error,
            ["INVALID_ARGUMENT: selector at position 7: expected a value after '==', found end of input"]
        );

        // An empty timeline says what the trail holds nearby: matches that
        // are not changes (reads), and matches outside the time range.
        let exact = |filter: v1::Filter, timeline: bool| {
            let mut q = q.clone();
            async move {
                q.search(v1::SearchRequest {
                    filter: Some(filter),
                    timeline,
                    page_size: 1,
                    exact_total: true,
                    ..v1::SearchRequest::default()
                })
                .await
                .unwrap()
                .into_inner()
                .total_hits
            }
        };
        let reads = v1::Filter {
            clusters: vec!["a".to_owned()],
            verbs: vec!["get".to_owned()],
            ..v1::Filter::default()
        };
        assert_eq!(exact(reads.clone(), true).await, 0);
        let off_timeline = exact(reads, false).await;
        assert!(off_timeline > 0);
        let on_timeline = exact(filter.clone(), true).await;
        for (path, hint) in [
            (
                "/timeline?cluster=a&verb=get",
                format!(
                    "{off_timeline} matching events are not on the timeline, which shows only \
                     changes and pod sessions (level RequestResponse, stage ResponseComplete, \
                     no dry runs)."
                ),
            ),
            (
                "/timeline?cluster=a&to=2000-01-01T00:00:00Z",
                format!("{on_timeline} events on the timeline match outside the chosen time range."),
            ),
        ] {
            open(&client, c, path).await;
            client
                .wait()
                .at_most(Duration::from_secs(30))
                .for_element(Locator::Css("#no-events-hints li"))
                .await
                .unwrap();
            assert_eq!(texts(&client, "#no-events").await, ["No events match."]);
            assert_eq!(texts(&client, "#no-events-hints li").await, [hint], "{path}");
        }

        // An event: its YAML.
        let event = &creates.events[0];
        open(&client, c, &format!("/event/{}", event.id)).await;
        let yaml = client
            .find(Locator::Css("#event-yaml"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(yaml.contains(&format!("auditID: {}", event.audit_id)), "{yaml}");
        screenshot(&client, "event").await;

        // A history: versions and the diff of the last two.
        let (query, history) = resource_with_versions(&f.server).await;
        open(&client, c, &format!("/history?{query}")).await;
        let n = history.versions.len();
        let rows = client.find_all(Locator::Css("#versions tbody tr")).await.unwrap();
        assert_eq!(rows.len(), n);
        let diff = q
            .diff(v1::DiffRequest {
                from_event_id: history.versions[n - 2].event_id.clone(),
                to_event_id: history.versions[n - 1].event_id.clone(),
                ignore_noisy_metadata: true,
                context_lines: None,
            })
            .await
            .unwrap()
            .into_inner();
        if diff.identical {
            client
                .find(Locator::Css("#identical"))
                .await
                .unwrap();
        } else {
            let unified = client
                .execute("return document.getElementById('unified').textContent", vec![])
                .await
                .unwrap();
            assert_eq!(unified.as_str().unwrap(), diff.unified_diff);
            let left = texts(&client, "#diff td.del").await;
            let removed: Vec<&str> = diff
                .unified_diff
                .lines()
                .filter(|l| l.starts_with('-') && !l.starts_with("---"))
                .map(|l| &l[1..])
                .collect();
            assert_eq!(left.len(), removed.len(), "removed lines on the left");
        }
        screenshot(&client, "history").await;

        open(&client, c, "/ingest").await;
        let store = texts(&client, "#store tbody td:first-child").await;
        assert!(store.contains(&"a".to_owned()) && store.contains(&"b".to_owned()));
        screenshot(&client, "ingest").await;
        open(&client, c, "/reports").await;
        screenshot(&client, "reports").await;
        client.close().await.unwrap();
    });
    Ok(())
}

fn viewer_in_browser(f: &Fixture) -> Result<(), Failed> {
    runtime().block_on(async {
        let (_driver, client) = browser().await;
        let c = &f.console;
        sign_in_page(&client, c, ALICE).await;
        open(&client, c, "/timeline").await;
        let clusters = texts(&client, "#events tbody td:nth-child(4)").await;
        assert!(!clusters.is_empty());
        assert!(clusters.iter().all(|c| c == "a"), "{clusters:?}");
        open(&client, c, "/timeline?cluster=b").await;
        assert!(
            client
                .find_all(Locator::Css("#events"))
                .await
                .unwrap()
                .is_empty()
        );
        let error = texts(&client, ".list-slot .error").await;
        assert!(error[0].starts_with("PERMISSION_DENIED"), "{error:?}");
        open(&client, c, "/ingest").await;
        let store = texts(&client, "#store tbody td:first-child").await;
        assert!(!store.contains(&"b".to_owned()), "{store:?}");
        client.close().await.unwrap();
    });
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    let fixture = Arc::new(Fixture::start());
    let browser = match (
        std::env::var("AUDITRAIL_CHROMEDRIVER"),
        std::env::var("AUDITRAIL_CHROMIUM"),
    ) {
        (Ok(_), Ok(_)) => None,
        _ => Some(std::env::var("AUDITRAIL_NO_BROWSER").unwrap_or_else(|_| {
            "AUDITRAIL_CHROMIUM and AUDITRAIL_CHROMEDRIVER are not set (cargo xtask test sets \
             them after installing Debian's chromium and chromium-driver)"
                .to_owned()
        })),
    };
    if let Some(reason) = &browser {
        eprintln!("browser trials ignored: {reason}");
    }
    let trial =
        |name: &'static str, run: fn(&Fixture) -> Result<(), Failed>, needs_browser: bool| {
            let f = Arc::clone(&fixture);
            Trial::test(name, move || run(&f)).with_ignored_flag(needs_browser && browser.is_some())
        };
    let trials = vec![
        trial("json_api", json_api, false),
        trial("pages_in_browser", pages_in_browser, true),
        trial("viewer_in_browser", viewer_in_browser, true),
    ];
    // One trial at a time: they share one server and the two cores.
    let mut args = args;
    args.test_threads = Some(1);
    let conclusion = libtest_mimic::run(&args, trials);
    drop(fixture);
    conclusion.exit();
}
