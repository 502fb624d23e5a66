//! Access control end to end: `auditrail up` with a token file, and every
//! RPC of the contract called with no identity, an unknown token, and the
//! tokens of a viewer, an exporter, an ingestor and an admin. The allowed
//! calls are written out here by hand, not derived from the permission
//! table, so a wrong row there fails here. Then over mTLS, where the client
//! certificate (made here with rcgen) is the identity and its O the group.

use std::str::FromStr as _;

use auditrail_integration_tests::{Server, binary, channel, scrape};
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
    let mut tokens = String::new();
    for role in roles {
        use std::fmt::Write as _;
        let digest = auditrail_access::digest_hex(&format!("{role}-secret"));
        writeln!(
            tokens,
            "[[token]]\nname = \"{role}-user\"\nsha256 = \"{digest}\"\ngroups = [\"{role}\"]\n"
        )
        .unwrap();
    }
    let token_file = dir.path().join("tokens.toml");
    std::fs::write(&token_file, tokens).unwrap();
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
        &[],
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
    assert_eq!(checked, 24, "every RPC of auditrail.v1");

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_mtls_the_client_certificate_is_the_identity() {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
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
    let data = dir.path().join("data");
    let server = Server::start(
        &binary("auditrail").unwrap(),
        &[
            "up",
            "--data-dir",
            data.to_str().unwrap(),
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--tls-client-ca",
            &client_ca_file,
        ],
        &[],
    )
    .unwrap();
    let port = server.addr().rsplit_once(':').unwrap().1.to_owned();
    let connect = |identity: (String, String)| {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(server_ca.0.pem()))
            .domain_name("localhost")
            .identity(Identity::from_pem(identity.0, identity.1));
        let url = format!("https://127.0.0.1:{port}");
        async move {
            Endpoint::from_shared(url)
                .unwrap()
                .tls_config(tls)
                .unwrap()
                .connect()
                .await
                .unwrap()
        }
    };
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
    let refusal = server
        .logs()
        .into_iter()
        .find(|line| line.contains("permission denied") && line.contains("bob.example"));
    assert!(refusal.is_some(), "the refusal is logged with the identity");
}
