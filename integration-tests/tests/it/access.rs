//! Access control end to end: `auditrail up` with a token file, and every
//! RPC of the contract called with no identity, an unknown token, and the
//! tokens of a viewer, an exporter, an ingestor and an admin. The allowed
//! calls are written out here by hand, not derived from the permission
//! table, so a wrong row there fails here. Then over mTLS, where the client
//! certificate (made here with rcgen) is the identity and its O the group,
//! and the console's certificate forwards its users' tokens.

use std::str::FromStr as _;

use auditrail_integration_tests::{Server, binary, channel, scrape, token_entry};
use auditrail_proto::v1;
use auditrail_proto::v1::ingest_service_client::IngestServiceClient;
use auditrail_proto::v1::query_service_client::QueryServiceClient;
use prost_reflect::DescriptorPool;
use tonic::Code;

/// The calls each built-in role may make (service/method), besides the
/// public health and reflection services.
fn allowed(role: &str) -> Vec<&'static str> {
    let viewer = vec![
        "QueryService/Search",
        "QueryService/Histogram",
        "QueryService/History",
        "QueryService/Diff",
        "QueryService/GetEvent",
        "IngestService/GetIndexStats",
        "IngestorService/GetStatus",
        "IngestorService/ListDeadLetters",
        "ProvisionService/GeneratePolicy",
        "ProvisionService/ValidatePolicy",
        "ProvisionService/EvaluatePolicy",
        "ProvisionService/RenderSetup",
        "ReportService/GetReportDefinition",
        "ReportService/ListReportDefinitions",
        "ReportService/ListReports",
        "ReportService/GetReport",
        "ReportService/DownloadReport",
    ];
    match role {
        "viewer" => viewer,
        "exporter" => {
            let mut exporter = viewer;
            exporter.push("QueryService/Export");
            exporter
        }
        "ingestor" => vec!["IngestService/IngestBatch"],
        _ => Vec::new(),
    }
}

/// Calls `path` with an empty request and `token`: the gRPC code of the
/// answer (`Ok` for a success).
async fn call(
    channel: &tonic::transport::Channel,
    path: &str,
    streaming: bool,
    token: Option<&str>,
) -> Code {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    if grpc.ready().await.is_err() {
        return Code::Unavailable;
    }
    let mut request = tonic::Request::new(());
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let path = http::uri::PathAndQuery::from_str(path).unwrap();
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    let result = if streaming {
        grpc.server_streaming(request, path, codec).await.map(drop)
    } else {
        grpc.unary(request, path, codec).await.map(drop)
    };
    result.err().map_or(Code::Ok, |status| status.code())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_answers_each_role_as_the_permissions_table_says() {
    let dir = tempfile::tempdir().unwrap();
    let roles = ["viewer", "exporter", "ingestor", "admin"];
    let tokens: String = roles
        .iter()
        .map(|role| token_entry(&format!("{role}-user"), &format!("{role}-secret"), &[role]))
        .collect();
    let token_file = dir.path().join("tokens.toml");
    std::fs::write(&token_file, tokens).unwrap();
    // The process's own ingestor sends with the ingestor's token.
    let own_token = dir.path().join("ingestor.token");
    std::fs::write(&own_token, "ingestor-secret\n").unwrap();
    let data = dir.path().join("data");
    let server = Server::start(
        &binary("auditrail").unwrap(),
        &[
            "up",
            "--data-dir",
            data.to_str().unwrap(),
            "--auth-token-file",
            token_file.to_str().unwrap(),
        ],
        &[(
            "AUDITRAIL_INGESTOR__INDEXER_CLIENT__TOKEN_FILE",
            own_token.to_str().unwrap(),
        )],
    )
    .unwrap();
    let channel = channel(&server).await.unwrap();
    let pool = DescriptorPool::decode(auditrail_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut checked = 0;
    for service in pool.services() {
        for method in service.methods() {
            let short = format!(
                "{}/{}",
                service.full_name().trim_start_matches("auditrail.v1."),
                method.name()
            );
            let path = format!("/{}/{}", service.full_name(), method.name());
            let streaming = method.is_server_streaming();
            for (who, token) in [("nobody", None), ("a stranger", Some("not-a-token"))] {
                let code = call(&channel, &path, streaming, token).await;
                assert_eq!(code, Code::Unauthenticated, "{short} by {who}");
            }
            for role in roles {
                let secret = format!("{role}-secret");
                let code = call(&channel, &path, streaming, Some(&secret)).await;
                let may = role == "admin" || allowed(role).contains(&short.as_str());
                if may {
                    assert!(
                        !matches!(code, Code::Unauthenticated | Code::PermissionDenied),
                        "{short} by {role}: refused with {code:?}"
                    );
                } else {
                    assert_eq!(code, Code::PermissionDenied, "{short} by {role}");
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 27, "every RPC of auditrail.v1");

    // Health stays open to probes without any identity.
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    health
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("health needs no identity");

    // Refusals are counted by service, method and reason.
    let metrics = scrape(server.metrics_addr().unwrap()).unwrap();
    let denied = |name: &str| {
        metrics
            .iter()
            .filter(|(k, _)| k.starts_with("auth_denied_total") && k.contains(name))
            .map(|(_, v)| v)
            .sum::<f64>()
    };
    assert!(denied("reason=\"unauthenticated\"") >= 48.0, "{metrics:?}");
    assert!(
        denied("method=\"Export\"") >= 3.0,
        "viewer, ingestor and two strangers"
    );
    // The token never reaches the log.
    assert!(
        server
            .logs()
            .iter()
            .all(|line| !line.contains("viewer-secret")),
        "a token was logged"
    );
}

/// A CA of the test, and leaves it signs: (certificate, key) PEM.
struct Ca(rcgen::CertifiedIssuer<'static, rcgen::KeyPair>);

impl Ca {
    fn new() -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        Self(
            rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap())
                .unwrap(),
        )
    }

    fn leaf(&self, sans: &[&str], group: Option<&str>) -> (String, String) {
        let mut params =
            rcgen::CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                .unwrap();
        if let Some(group) = group {
            params
                .distinguished_name
                .push(rcgen::DnType::OrganizationName, group);
        }
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.0).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// A channel to the server on loopback `port` over TLS, trusting `ca` for
/// its certificate (which names `localhost`) and presenting `identity`
/// (certificate and key, PEM).
async fn mtls_channel(
    port: &str,
    ca: &Ca,
    identity: (String, String),
) -> tonic::transport::Channel {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca.0.pem()))
        .domain_name("localhost")
        .identity(Identity::from_pem(identity.0, identity.1));
    Endpoint::from_shared(format!("https://127.0.0.1:{port}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_mtls_the_client_certificate_is_the_identity() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let server_ca = Ca::new();
    let client_ca = Ca::new();
    let (cert, key) = server_ca.leaf(&["localhost"], None);
    let (cert, key) = (write("tls.crt", &cert), write("tls.key", &key));
    let client_ca_file = write("client-ca.crt", &client_ca.0.pem());
    let server_ca_file = write("ca.crt", &server_ca.0.pem());
    let (own_cert, own_key) = client_ca.leaf(&["ingestor.auditrail"], Some("ingestor"));
    let (own_cert, own_key) = (write("own.crt", &own_cert), write("own.key", &own_key));
    let data = dir.path().join("data");
    // The console is left out: under mTLS it needs a certificate and token
    // forwarding (the next test).
    let server = Server::start(
        &binary("auditrail").unwrap(),
        &[
            "run",
            "--service",
            "ingestor,indexer,query",
            "--data-dir",
            data.to_str().unwrap(),
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--tls-client-ca",
            &client_ca_file,
        ],
        &[
            (
                "AUDITRAIL_INGESTOR__INDEXER_CLIENT__TLS_CA",
                &server_ca_file,
            ),
            ("AUDITRAIL_INGESTOR__INDEXER_CLIENT__TLS_CERT", &own_cert),
            ("AUDITRAIL_INGESTOR__INDEXER_CLIENT__TLS_KEY", &own_key),
        ],
    )
    .unwrap();
    let port = server.addr().rsplit_once(':').unwrap().1.to_owned();
    let connect = |identity: (String, String)| mtls_channel(&port, &server_ca, identity);
    let viewer = connect(client_ca.leaf(&["spiffe://auditrail/alice"], Some("viewer"))).await;
    let search = "/auditrail.v1.QueryService/Search";
    let export = "/auditrail.v1.QueryService/Export";
    assert!(!matches!(
        call(&viewer, search, false, None).await,
        Code::Unauthenticated | Code::PermissionDenied
    ));
    assert_eq!(
        call(&viewer, export, true, None).await,
        Code::PermissionDenied
    );
    let ingestor = connect(client_ca.leaf(&["ingestor.auditrail"], Some("ingestor"))).await;
    assert_eq!(
        call(&ingestor, search, false, None).await,
        Code::PermissionDenied
    );
    // The certificate comes first: a token beside it changes nothing.
    let nobody = connect(client_ca.leaf(&["bob.example"], None)).await;
    assert_eq!(
        call(&nobody, search, false, Some("admin-secret")).await,
        Code::PermissionDenied
    );
    // The refusal is logged with the identity.
    server
        .wait_for_log("the refusal of bob.example", |line| {
            line.contains("permission denied") && line.contains("bob.example")
        })
        .unwrap();
}

/// `auditrail up` under mTLS with certificates of `ca`, tokens for root
/// (admin) and alice (reader of cluster `a`), and the console presenting
/// `console` (its certificate and key), named in `token_forwarders`.
fn forwarding_server(dir: &std::path::Path, ca: &Ca, console: &(String, String)) -> Server {
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let (cert, key) = ca.leaf(&["localhost"], None);
    let (cert, key) = (write("tls.crt", &cert), write("tls.key", &key));
    let ca_file = write("ca.crt", &ca.0.pem());
    let (own_cert, own_key) = ca.leaf(&["ingestor.auditrail"], Some("ingestor"));
    let (own_cert, own_key) = (write("own.crt", &own_cert), write("own.key", &own_key));
    let (console_cert, console_key) = (
        write("console.crt", &console.0),
        write("console.key", &console.1),
    );
    let tokens = write(
        "tokens.toml",
        &[
            token_entry("root", "root-secret", &["admin"]),
            token_entry("alice", "alice-secret", &[]),
        ]
        .concat(),
    );
    let roles = write(
        "roles.toml",
        "[[role]]\nname = \"a-reader\"\npermissions = [\"read\"]\nclusters = [\"a\"]\n\n\
         [[binding]]\nrole = \"a-reader\"\nusers = [\"alice\"]\n",
    );
    let config = write(
        "auditrail.toml",
        &format!(
            "[server.auth]\ntoken_forwarders = [\"console.auditrail\"]\n\n\
             [console.client]\ntls_ca = {ca_file:?}\ntls_cert = {console_cert:?}\n\
             tls_key = {console_key:?}\n"
        ),
    );
    let data = dir.join("data");
    Server::start(
        &binary("auditrail").unwrap(),
        &[
            "up",
            "--config",
            &config,
            "--data-dir",
            data.to_str().unwrap(),
            "--retention-days",
            "0",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--tls-client-ca",
            &ca_file,
            "--auth-token-file",
            &tokens,
            "--authz-file",
            &roles,
            "--console-listen",
            "127.0.0.1:0",
        ],
        &[
            ("AUDITRAIL_INGESTOR__INDEXER_CLIENT__TLS_CA", &ca_file),
            ("AUDITRAIL_INGESTOR__INDEXER_CLIENT__TLS_CERT", &own_cert),
            ("AUDITRAIL_INGESTOR__INDEXER_CLIENT__TLS_KEY", &own_key),
        ],
    )
    .unwrap()
}

/// The clusters of the store statistics the console's ingest page shows
/// the user of `token` (`GET /api/v1/ingest` after signing in at `url`).
fn store_clusters_via_console(url: &str, token: &str) -> Vec<String> {
    let page = auditrail_integration_tests::console_http::sign_in(url, token)
        .get(url, "/api/v1/ingest")
        .json();
    let mut clusters: Vec<String> = page["store"]["stats"]
        .as_array()
        .unwrap_or_else(|| panic!("no store statistics: {page}"))
        .iter()
        .map(|s| s["cluster"].as_str().unwrap().to_owned())
        .collect();
    clusters.dedup();
    clusters
}

/// The first access record of `user` calling `uri` that `matches`, once
/// stored, read over `admin` (a channel whose identity may read access
/// records).
async fn access_record(
    admin: &tonic::transport::Channel,
    user: &str,
    uri: &str,
    matches: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let matches = &matches;
    auditrail_integration_tests::eventually("the access record", || {
        let mut query = QueryServiceClient::new(admin.clone());
        async move {
            let events = query
                .search(v1::SearchRequest {
                    filter: Some(v1::Filter {
                        r#type: v1::TypeFilter::Access as i32,
                        authors: vec![user.to_owned()],
                        ..v1::Filter::default()
                    }),
                    page_size: 1000,
                    include_raw: true,
                    ..v1::SearchRequest::default()
                })
                .await
                .unwrap()
                .into_inner()
                .events;
            events.iter().find_map(|e| {
                let raw: serde_json::Value = serde_json::from_slice(&e.raw).unwrap();
                (raw["requestURI"] == uri && matches(&raw)).then_some(raw)
            })
        }
    })
    .await
    .unwrap()
}

/// The web console under mTLS: it reaches a server that requires client
/// certificates with its own certificate, and that server, naming it in
/// `token_forwarders`, takes each call as the signed-in user whose token
/// it carries. So a viewer of one cluster sees that cluster's store
/// statistics on the ingest page (the indexer's `GetIndexStats`), the
/// admin sees both, the access records name the user and the forwarder,
/// and the console's certificate alone is no one with a role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_mtls_the_console_forwards_each_users_token() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let console_identity = ca.leaf(&["console.auditrail"], None);
    let server = forwarding_server(dir.path(), &ca, &console_identity);
    let port = server.addr().rsplit_once(':').unwrap().1.to_owned();
    let connect = |identity: (String, String)| mtls_channel(&port, &ca, identity);

    // The same events in clusters a and b, sent with the ingestor's
    // certificate.
    let ingestor = connect(ca.leaf(&["ingestor.auditrail"], Some("ingestor"))).await;
    for batch in auditrail_integration_tests::generated_batches(&["a", "b"], 20) {
        let answer = IngestServiceClient::new(ingestor.clone())
            .ingest_batch(batch)
            .await
            .unwrap()
            .into_inner();
        assert!(answer.committed);
    }

    // Over gRPC: the console's certificate carries a token, and is no one
    // with a role without one.
    let console = connect(console_identity.clone()).await;
    let search = "/auditrail.v1.QueryService/Search";
    let ingest = "/auditrail.v1.IngestService/IngestBatch";
    assert_eq!(
        call(&console, search, false, Some("alice-secret")).await,
        Code::Ok
    );
    assert_eq!(
        call(&console, ingest, false, Some("alice-secret")).await,
        Code::PermissionDenied,
        "the forwarded call has alice's permissions, not more"
    );
    assert_eq!(
        call(&console, search, false, None).await,
        Code::PermissionDenied
    );
    assert_eq!(
        call(&console, search, false, Some("nobody-secret")).await,
        Code::Unauthenticated,
        "an unknown forwarded token is refused, never taken as the console's own call"
    );
    // A certificate not named a forwarder stays the caller, token or not.
    let other = connect(ca.leaf(&["other.auditrail"], None)).await;
    assert_eq!(
        call(&other, search, false, Some("root-secret")).await,
        Code::PermissionDenied
    );

    // Through the console's pages' API.
    let console_url = auditrail_integration_tests::eventually("the console's address", || {
        let url = server.console_url();
        async move { url }
    })
    .await
    .unwrap();
    let store_clusters = |token: &'static str| {
        let url = console_url.clone();
        tokio::task::spawn_blocking(move || store_clusters_via_console(&url, token))
    };
    assert_eq!(store_clusters("alice-secret").await.unwrap(), ["a"]);
    assert_eq!(store_clusters("root-secret").await.unwrap(), ["a", "b"]);

    // The access records name alice and the console that brought her call.
    let admin = connect(ca.leaf(&["admin.auditrail"], Some("admin"))).await;
    let stats = "/auditrail.v1.IngestService/GetIndexStats";
    let forwarded = access_record(&admin, "alice", stats, |_| true).await;
    assert_eq!(
        forwarded["annotations"]["auditrail.io/forwarded-by"], "console.auditrail",
        "{forwarded}"
    );
    assert_eq!(
        forwarded["annotations"]["auditrail.io/authenticated-by"],
        "token"
    );
    // And where the call came from, as Kubernetes records it: the
    // browser's address (as the console saw it), then the console's (as
    // the server saw it).
    assert_eq!(
        forwarded["sourceIPs"],
        serde_json::json!(["127.0.0.1", "127.0.0.1"]),
        "{forwarded}"
    );
    // Behind a proxy that says whom it forwards (an Ingress), that address
    // comes first; what is not an address is dropped.
    let url = console_url.clone();
    let answer = tokio::task::spawn_blocking(move || {
        let session = auditrail_integration_tests::console_http::sign_in(&url, "alice-secret");
        auditrail_integration_tests::console_http::http(
            "GET",
            &format!("{url}/api/v1/ingest"),
            &[
                ("Cookie", &session.cookie),
                ("X-Forwarded-For", "203.0.113.9, unknown"),
            ],
            None,
        )
    })
    .await
    .unwrap();
    assert_eq!(answer.status, 200);
    let proxied = access_record(&admin, "alice", stats, |r| {
        r["sourceIPs"].as_array().is_some_and(|ips| ips.len() == 3)
    })
    .await;
    assert_eq!(
        proxied["sourceIPs"],
        serde_json::json!(["203.0.113.9", "127.0.0.1", "127.0.0.1"]),
        "{proxied}"
    );
}

/// Token forwarding that could never work is refused at start, naming
/// what to set: forwarders on a server that asks for no certificates or
/// checks no tokens, and a console in the process that could not reach
/// its own server or whose calls would not be its users'.
#[test]
fn impossible_token_forwarding_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let tls = "[server.tls]\ncert = \"tls.crt\"\nkey = \"tls.key\"\n";
    let mtls = "[server.tls]\ncert = \"tls.crt\"\nkey = \"tls.key\"\nclient_ca = \"ca.crt\"\n";
    let console_ca = "[console.client]\ntls_ca = \"ca.crt\"\n";
    let console_cert =
        "[console.client]\ntls_ca = \"ca.crt\"\ntls_cert = \"c.crt\"\ntls_key = \"c.key\"\n";
    let forwarders = "[server.auth]\ntoken_forwarders = [\"console.auditrail\"]\n";
    let forwarders_tokens =
        "[server.auth]\ntoken_file = \"tokens.toml\"\ntoken_forwarders = [\"console.auditrail\"]\n";
    let ingestor = "[ingestor.indexer_client]\ntls_ca = \"ca.crt\"\ntls_cert = \"i.crt\"\ntls_key = \"i.key\"\n";
    let cases: [(&[&str], String, &str); 5] = [
        (
            &["run", "--service", "indexer"],
            forwarders.to_owned(),
            "invalid configuration of the server: server.auth.token_forwarders = \
             [\"console.auditrail\"] names client certificates, and this server asks for none",
        ),
        (
            &["run", "--service", "indexer"],
            [mtls, forwarders].concat(),
            "a forwarded token is checked against the token file or by Kubernetes, and neither \
             is set",
        ),
        (
            &["up"],
            [tls, ingestor].concat(),
            "invalid configuration of the console: with [server.tls] the console calls this \
             server at https://localhost:PORT: set [console.client] tls_ca",
        ),
        (
            &["up"],
            [mtls, ingestor, console_ca].concat(),
            "this server requires client certificates ([server.tls] client_ca), and the console \
             calls it: give the console a certificate",
        ),
        (
            &["up"],
            [mtls, ingestor, console_cert].concat(),
            "name that certificate (its first URI SAN, else DNS SAN, else CN) in [server.auth] \
             token_forwarders",
        ),
    ];
    // `--check-config` with `args` and `config`: success, and stderr.
    let check = |args: &[&str], config: &str| {
        let file = dir.path().join("auditrail.toml");
        std::fs::write(&file, config).unwrap();
        let output = std::process::Command::new(binary("auditrail").unwrap())
            .args(args)
            .arg("--check-config")
            .arg("--config")
            .arg(&file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (output.status.success(), stderr)
    };
    for (args, config, expected) in cases {
        let (accepted, stderr) = check(args, &config);
        assert!(!accepted, "accepted: {config}");
        assert!(stderr.contains(expected), "{config}\n{stderr}");
    }
    // The complete set-up is accepted.
    let (accepted, stderr) = check(
        &["up"],
        &[mtls, ingestor, console_cert, forwarders_tokens].concat(),
    );
    assert!(accepted, "{stderr}");
}

/// A client of `server` sending `token`.
async fn with_token(
    server: &Server,
    token: &str,
) -> tonic::service::interceptor::InterceptedService<
    tonic::transport::Channel,
    impl FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Clone,
> {
    tonic::service::interceptor::InterceptedService::new(
        channel(server).await.unwrap(),
        auditrail_integration_tests::bearer(token).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_reader_sees_exactly_its_clusters_and_types() {
    use tokio_stream::StreamExt as _;

    let dir = tempfile::tempdir().unwrap();
    let server = scoped_server(dir.path());
    let expected = ingest_two_clusters(&server).await;

    let alice = with_token(&server, "alice-secret").await;
    let mut query = QueryServiceClient::new(alice.clone());
    let search = |filter: v1::Filter| v1::SearchRequest {
        filter: Some(filter),
        page_size: 1,
        exact_total: true,
        ..v1::SearchRequest::default()
    };
    let seen = query
        .search(search(v1::Filter::default()))
        .await
        .unwrap()
        .into_inner()
        .total_hits;
    assert_eq!(seen, expected, "search total: only cluster a, type kube");
    // The admin sent these events by hand, naming no origin: their
    // provenance says who, from where, and that no source read them.
    let events = query
        .search(v1::SearchRequest {
            page_size: 5,
            ..v1::SearchRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(events.len(), 5);
    for event in &events {
        let p = event
            .provenance
            .as_ref()
            .expect("every stored event has one");
        assert_eq!(p.ingested_by, "root");
        assert_eq!(p.ingested_by_groups, ["admin"]);
        assert!(p.ingested_from.starts_with("127.0.0.1:"), "{p:?}");
        assert_eq!(
            p.origin, None,
            "no source, no position: not read from a log"
        );
    }
    let histogram = query
        .histogram(v1::HistogramRequest {
            filter: Some(v1::Filter {
                from: "2000-01-01T00:00:00Z".to_owned(),
                ..v1::Filter::default()
            }),
            interval: Some(prost_types::Duration {
                seconds: 86_400 * 365,
                nanos: 0,
            }),
            ..v1::HistogramRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    let counted: u64 = histogram.buckets.iter().map(|b| b.count).sum();
    assert_eq!(
        counted, expected,
        "histogram counts only what alice may read"
    );
    let mut export = query
        .export(v1::ExportRequest {
            format: v1::ExportFormat::Ndjson as i32,
            ..v1::ExportRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = export.next().await {
        bytes.extend(chunk.unwrap().data);
    }
    let exported = String::from_utf8(bytes).unwrap().lines().count() as u64;
    assert_eq!(exported, expected, "export holds only what alice may read");
    let stats = IngestServiceClient::new(alice.clone())
        .get_index_stats(v1::GetIndexStatsRequest::default())
        .await;
    // Alice has read, so statistics answer, limited to her scope.
    let stats = stats.unwrap().into_inner().stats;
    assert!(
        stats
            .iter()
            .all(|s| s.cluster == "a" && s.r#type == v1::EventType::Kube as i32),
        "{stats:?}"
    );

    outside_the_scope_is_refused(&server).await;
}

/// Stores the same generated events for clusters `a` and `b` as the admin;
/// the number of events of cluster `a` and type kube.
async fn ingest_two_clusters(server: &Server) -> u64 {
    // Two clusters of generated events (kube and Calico's ee kinds).
    let mut ingest = IngestServiceClient::new(with_token(server, "root-secret").await);
    for batch in auditrail_integration_tests::generated_batches(&["a", "b"], 400) {
        let answer = ingest.ingest_batch(batch).await.unwrap().into_inner();
        assert!(answer.committed);
    }
    let all_stats = ingest
        .get_index_stats(v1::GetIndexStatsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .stats;
    let expected: u64 = all_stats
        .iter()
        .filter(|s| s.cluster == "a" && s.r#type == v1::EventType::Kube as i32)
        .map(|s| s.event_count)
        .sum();
    let everything: u64 = all_stats.iter().map(|s| s.event_count).sum();
    assert!(expected > 0 && expected < everything, "{all_stats:?}");

    expected
}

/// What lies outside alice's scope is refused by name, never answered
/// empty.
async fn outside_the_scope_is_refused(server: &Server) {
    let alice = with_token(server, "alice-secret").await;
    let mut query = QueryServiceClient::new(alice.clone());
    let search = |filter: v1::Filter| v1::SearchRequest {
        filter: Some(filter),
        page_size: 1,
        exact_total: true,
        ..v1::SearchRequest::default()
    };
    let err = query
        .search(search(v1::Filter {
            clusters: vec!["b".to_owned()],
            ..v1::Filter::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().contains("cluster \"b\""), "{}", err.message());
    let err = query
        .search(search(v1::Filter {
            r#type: v1::TypeFilter::Ee as i32,
            ..v1::Filter::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{}", err.message());
    let err = query
        .history(v1::HistoryRequest {
            cluster: "b".to_owned(),
            resource: "networkpolicies".to_owned(),
            namespace: "default".to_owned(),
            name: "x".to_owned(),
            ..v1::HistoryRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // And alice may not ingest at all.
    let err = IngestServiceClient::new(alice)
        .ingest_batch(v1::IngestBatchRequest {
            batch_id: "forged".to_owned(),
            cluster: "a".to_owned(),
            source: "x".to_owned(),
            events: Vec::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
}

/// `auditrail up` with a token for `root` (admin) and `alice`, and a roles
/// file that lets alice read and export cluster `a`'s kube events only.
fn scoped_server(dir: &std::path::Path) -> Server {
    let tokens = dir.join("tokens.toml");
    std::fs::write(
        &tokens,
        [
            token_entry("root", "root-secret", &["admin"]),
            token_entry("alice", "alice-secret", &[]),
        ]
        .concat(),
    )
    .unwrap();
    let roles = dir.join("roles.toml");
    std::fs::write(
        &roles,
        "[[role]]\nname = \"a-kube\"\npermissions = [\"read\", \"export\"]\n\
         clusters = [\"a\"]\ntypes = [\"kube\"]\n\n\
         [[binding]]\nrole = \"a-kube\"\nusers = [\"alice\"]\n",
    )
    .unwrap();
    let own_token = dir.join("ingestor.token");
    std::fs::write(&own_token, "root-secret").unwrap();
    let data = dir.join("data");
    Server::start(
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
        ],
        &[(
            "AUDITRAIL_INGESTOR__INDEXER_CLIENT__TOKEN_FILE",
            own_token.to_str().unwrap(),
        )],
    )
    .unwrap()
}

/// A mock of the Kubernetes API's TokenReview and SubjectAccessReview (no
/// kube-apiserver runs here): answers as the API documents, from a table of
/// tokens and of allowed (user, verb, resource), records every review, and
/// can be taken down.
mod mock_reviews {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex, PoisonError};

    use axum::extract::{Request, State};
    use axum::http::StatusCode;
    use axum::response::{IntoResponse as _, Response};

    #[derive(Clone, Default)]
    pub(crate) struct MockReviews {
        pub(crate) tokens: Vec<(&'static str, &'static str, Vec<&'static str>)>,
        /// RBAC rules without resource names: (user, verb, resource).
        pub(crate) allowed: Vec<(&'static str, &'static str, &'static str)>,
        /// Rules with one resource name: (user, verb, resource, name),
        /// which match only a review naming that resource.
        pub(crate) allowed_named: Vec<(&'static str, &'static str, &'static str, &'static str)>,
        pub(crate) reviews: Arc<Mutex<Vec<serde_json::Value>>>,
        pub(crate) down: Arc<AtomicBool>,
    }

    impl MockReviews {
        pub(crate) async fn serve(&self) -> String {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let app = axum::Router::new()
                .fallback(handle)
                .with_state(self.clone());
            tokio::spawn(async move { axum::serve(listener, app).await });
            url
        }

        pub(crate) fn reviews(&self) -> Vec<serde_json::Value> {
            self.reviews
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        }
    }

    async fn handle(State(mock): State<MockReviews>, request: Request) -> Response {
        if mock.down.load(Ordering::SeqCst) {
            return (StatusCode::INTERNAL_SERVER_ERROR, "down").into_response();
        }
        let path = request.uri().path().to_owned();
        let bytes = axum::body::to_bytes(request.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        let mut review: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        mock.reviews
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(review.clone());
        let status = match path.as_str() {
            "/apis/authentication.k8s.io/v1/tokenreviews" => {
                let token = review["spec"]["token"].as_str().unwrap_or_default();
                match mock.tokens.iter().find(|(t, _, _)| *t == token) {
                    Some((_, user, groups)) => serde_json::json!({
                        "authenticated": true,
                        "user": { "username": user, "groups": groups },
                    }),
                    None => {
                        serde_json::json!({ "authenticated": false, "error": "invalid bearer token" })
                    }
                }
            }
            "/apis/authorization.k8s.io/v1/subjectaccessreviews" => {
                let spec = &review["spec"];
                let attributes = &spec["resourceAttributes"];
                let allowed = attributes["group"] == "auditrail.io"
                    && (mock.allowed.iter().any(|(user, verb, resource)| {
                        spec["user"] == *user
                            && attributes["verb"] == *verb
                            && attributes["resource"] == *resource
                    }) || mock
                        .allowed_named
                        .iter()
                        .any(|(user, verb, resource, name)| {
                            spec["user"] == *user
                                && attributes["verb"] == *verb
                                && attributes["resource"] == *resource
                                && attributes["name"] == *name
                        }));
                serde_json::json!({ "allowed": allowed })
            }
            _ => return (StatusCode::NOT_FOUND, "not found").into_response(),
        };
        review["status"] = status;
        (
            StatusCode::CREATED,
            [("content-type", "application/json")],
            review.to_string(),
        )
            .into_response()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_reviews_identify_and_authorize_with_a_cache_and_fail_closed() {
    use std::sync::atomic::Ordering;
    let mock = mock_reviews::MockReviews {
        tokens: vec![
            (
                "sa-token",
                "system:serviceaccount:monitoring:grafana",
                vec!["system:serviceaccounts"],
            ),
            ("other-token", "carol", vec![]),
        ],
        allowed: vec![
            ("system:serviceaccount:monitoring:grafana", "get", "kube"),
            ("carol", "get", "kube"),
        ],
        ..Default::default()
    };
    let url = mock.serve().await;
    let dir = tempfile::tempdir().unwrap();
    let server = reviewed_server(dir.path(), &url);
    let channel = channel(&server).await.unwrap();
    let search = "/auditrail.v1.QueryService/Search";
    for _ in 0..5 {
        let code = call(&channel, search, false, Some("sa-token")).await;
        assert!(
            !matches!(
                code,
                Code::Unauthenticated | Code::PermissionDenied | Code::Unavailable
            ),
            "{code:?}"
        );
    }
    assert_eq!(
        call(
            &channel,
            "/auditrail.v1.QueryService/Export",
            true,
            Some("sa-token")
        )
        .await,
        Code::PermissionDenied
    );
    assert_eq!(
        call(&channel, search, false, Some("forged")).await,
        Code::Unauthenticated
    );

    let reviews = mock.reviews();
    let token_reviews: Vec<_> = reviews
        .iter()
        .filter(|r| r["kind"] == "TokenReview")
        .collect();
    assert_eq!(
        token_reviews.len(),
        2,
        "one review per token, then the cache: {reviews:#?}"
    );
    assert_eq!(token_reviews[0]["spec"]["token"], "sa-token");
    let access_reviews: Vec<_> = reviews
        .iter()
        .filter(|r| r["kind"] == "SubjectAccessReview")
        .collect();
    // Read asks once per event type (kube, ee) and once whether the access
    // records are readable too (accessrecords), export once; five searches
    // reuse the first answers.
    assert_eq!(access_reviews.len(), 4, "{access_reviews:#?}");
    assert_eq!(
        access_reviews[2]["spec"]["resourceAttributes"]["resource"],
        "accessrecords"
    );
    assert!(
        access_reviews
            .iter()
            .all(|r| r["spec"]["resourceAttributes"]["group"] == "auditrail.io")
    );
    assert_eq!(
        access_reviews[0]["spec"]["user"],
        "system:serviceaccount:monitoring:grafana"
    );

    // Read reaches kube events only: asking for ee is refused by name.
    let mut request = tonic::Request::new(auditrail_proto::v1::SearchRequest {
        filter: Some(auditrail_proto::v1::Filter {
            r#type: auditrail_proto::v1::TypeFilter::Ee as i32,
            ..Default::default()
        }),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("authorization", "Bearer sa-token".parse().unwrap());
    let err = auditrail_proto::v1::query_service_client::QueryServiceClient::new(channel.clone())
        .search(request)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{}", err.message());

    // The API server down: a token not yet reviewed gets UNAVAILABLE,
    // never access on a guess.
    mock.down.store(true, Ordering::SeqCst);
    assert_eq!(
        call(&channel, search, false, Some("other-token")).await,
        Code::Unavailable
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_rbac_can_grant_reading_one_cluster_by_name() {
    let mock = mock_reviews::MockReviews {
        tokens: vec![
            (
                "sa-token",
                "system:serviceaccount:auditrail:ingestor",
                vec![],
            ),
            ("root-secret", "root", vec![]),
            ("dave-token", "dave", vec![]),
        ],
        allowed: vec![
            (
                "system:serviceaccount:auditrail:ingestor",
                "create",
                "events",
            ),
            ("root", "create", "events"),
            ("root", "get", "kube"),
            ("root", "get", "ee"),
        ],
        // dave: a Role with resourceNames ["a"] on kube only.
        allowed_named: vec![("dave", "get", "kube", "a")],
        ..Default::default()
    };
    let url = mock.serve().await;
    let dir = tempfile::tempdir().unwrap();
    let server = reviewed_server(dir.path(), &url);
    let expected = ingest_two_clusters(&server).await;
    let mut dave = QueryServiceClient::new(with_token(&server, "dave-token").await);
    let page = dave
        .search(v1::SearchRequest {
            page_size: 1000,
            exact_total: true,
            ..v1::SearchRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        page.total_hits, expected,
        "dave reads cluster a's kube events"
    );
    assert!(
        page.events
            .iter()
            .all(|e| e.cluster == "a" && e.r#type == v1::EventType::Kube as i32)
    );
    let refused = dave
        .search(v1::SearchRequest {
            filter: Some(v1::Filter {
                clusters: vec!["b".to_owned()],
                ..v1::Filter::default()
            }),
            ..v1::SearchRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Code::PermissionDenied,
        "{}",
        refused.message()
    );
    let named: Vec<_> = mock
        .reviews()
        .into_iter()
        .filter(|r| {
            r["spec"]["user"] == "dave" && r["spec"]["resourceAttributes"]["name"].is_string()
        })
        .map(|r| {
            (
                r["spec"]["resourceAttributes"]["resource"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                r["spec"]["resourceAttributes"]["name"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    // One review per cluster and type, cached for the second search.
    assert_eq!(
        named,
        [("kube", "a"), ("ee", "a"), ("kube", "b"), ("ee", "b")]
            .map(|(t, c)| (t.to_owned(), c.to_owned()))
    );
}

/// `auditrail up` asking the mock API at `url` (through a kubeconfig) to
/// review tokens and permissions.
fn reviewed_server(dir: &std::path::Path, url: &str) -> Server {
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: mock\n  cluster:\n    server: {url}\n\
             contexts:\n- name: mock\n  context:\n    cluster: mock\n    user: mock\n\
             current-context: mock\nusers:\n- name: mock\n  user:\n    token: auditrail-server\n"
        ),
    )
    .unwrap();
    let own_token = dir.join("ingestor.token");
    std::fs::write(&own_token, "sa-token").unwrap();
    let data = dir.join("data");
    Server::start(
        &binary("auditrail").unwrap(),
        &[
            "up",
            "--data-dir",
            data.to_str().unwrap(),
            "--auth-kubernetes",
            "--authz-kubernetes",
            // The generated events are older than the default retention.
            "--retention-days",
            "0",
        ],
        &[
            ("KUBECONFIG", kubeconfig.to_str().unwrap()),
            (
                "AUDITRAIL_INGESTOR__INDEXER_CLIENT__TOKEN_FILE",
                own_token.to_str().unwrap(),
            ),
        ],
    )
    .unwrap()
}

#[test]
fn up_with_access_control_refuses_an_ingestor_without_identity() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(&tokens, "").unwrap();
    let data = dir.path().join("data");
    let mut command = std::process::Command::new(binary("auditrail").unwrap());
    command
        .args(["up", "--check-config", "--data-dir"])
        .arg(&data)
        .arg("--auth-token-file")
        .arg(&tokens);
    let (status, _, err) = auditrail_integration_tests::run_to_end(&mut command).unwrap();
    assert!(!status.success());
    assert!(
        err.contains("give it an identity with the ingest permission")
            && err.contains("[ingestor.indexer_client] token_file"),
        "{err}"
    );
}
