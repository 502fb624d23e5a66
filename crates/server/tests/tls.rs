//! TLS on a real server over real sockets, with certificates made here
//! (rcgen): handshakes that must succeed and those that must fail (another
//! CA, an expired certificate, a wrong name, no client certificate under
//! mTLS), and a certificate or a client CA rotated on disk taken without a
//! restart.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use auditrail_server::{ServerConfig, Services, TlsConfig, bind, check_listen};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// A certificate authority of the test.
struct Ca(CertifiedIssuer<'static, KeyPair>);

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        Self(CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA"))
    }

    fn pem(&self) -> String {
        self.0.pem()
    }

    /// A leaf for `names`, valid now unless `expired`: (certificate, key).
    fn leaf(&self, names: &[&str], expired: bool) -> (String, String) {
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .expect("params");
        if expired {
            params.not_before = rcgen::date_time_ymd(2001, 1, 1);
            params.not_after = rcgen::date_time_ymd(2002, 1, 1);
        }
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.0).expect("leaf");
        (cert.pem(), key.serialize_pem())
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

/// Serves the health service alone over TLS on a free loopback port.
async fn serve(tls: TlsConfig) -> SocketAddr {
    let mut config = ServerConfig::local(0, 0);
    config.metrics = false;
    config.tls = Some(tls);
    let server = bind(&config, Services::new()).await.expect("bind");
    let addr = server.grpc_addr().expect("address");
    tokio::spawn(server.run(std::future::pending()));
    addr
}

/// A health check over TLS to `addr` as `host`, trusting `ca`, with a
/// client identity when given.
async fn check(
    addr: SocketAddr,
    host: &str,
    ca: &str,
    identity: Option<(&str, &str)>,
) -> Result<(), String> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name(host);
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    let channel = Endpoint::from_shared(format!("https://{addr}"))
        .map_err(|e| e.to_string())?
        .tls_config(tls)
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .map(|_| ())
        .map_err(|e| format!("call: {e}"))
}

#[tokio::test]
async fn handshakes_succeed_only_with_the_right_ca_name_and_dates() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("dir");
    let ca = Ca::new("auditrail test CA");
    let other = Ca::new("another CA");
    let (cert, key) = ca.leaf(&["localhost"], false);
    let addr = serve(TlsConfig {
        cert: write(dir.path(), "tls.crt", &cert),
        key: write(dir.path(), "tls.key", &key),
        client_ca: None,
    })
    .await;
    check(addr, "localhost", &ca.pem(), None)
        .await
        .expect("the right CA and name");
    assert!(check(addr, "localhost", &other.pem(), None).await.is_err());
    assert!(
        check(addr, "auditrail-query.example", &ca.pem(), None)
            .await
            .is_err(),
        "a name the certificate does not hold"
    );

    let expired_dir = tempfile::tempdir().expect("dir");
    let (cert, key) = ca.leaf(&["localhost"], true);
    let expired = serve(TlsConfig {
        cert: write(expired_dir.path(), "tls.crt", &cert),
        key: write(expired_dir.path(), "tls.key", &key),
        client_ca: None,
    })
    .await;
    assert!(check(expired, "localhost", &ca.pem(), None).await.is_err());
}

#[tokio::test]
async fn a_rotated_certificate_is_served_without_a_restart() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("dir");
    let first = Ca::new("first CA");
    let second = Ca::new("second CA");
    let (cert, key) = first.leaf(&["localhost"], false);
    let cert_path = write(dir.path(), "tls.crt", &cert);
    let key_path = write(dir.path(), "tls.key", &key);
    let addr = serve(TlsConfig {
        cert: cert_path.clone(),
        key: key_path.clone(),
        client_ca: None,
    })
    .await;
    check(addr, "localhost", &first.pem(), None)
        .await
        .expect("first certificate");
    // Renewed in place, as cert-manager does: new key, new issuer.
    let (cert, key) = second.leaf(&["localhost"], false);
    std::fs::write(&key_path, key).expect("key");
    std::fs::write(&cert_path, cert).expect("cert");
    // The files are looked at every 5 s: wait until the new one is served
    // (a hang guard of 30 s, not a timing assertion).
    let mut served = Err(String::new());
    for _ in 0..60 {
        served = check(addr, "localhost", &second.pem(), None).await;
        if served.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    served.expect("the renewed certificate, without a restart");
    assert!(check(addr, "localhost", &first.pem(), None).await.is_err());
}

#[tokio::test]
async fn with_a_client_ca_every_client_needs_its_certificate() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("dir");
    let ca = Ca::new("server CA");
    let clients = Ca::new("client CA");
    let stranger = Ca::new("stranger CA");
    let (cert, key) = ca.leaf(&["localhost"], false);
    let addr = serve(TlsConfig {
        cert: write(dir.path(), "tls.crt", &cert),
        key: write(dir.path(), "tls.key", &key),
        client_ca: Some(write(dir.path(), "client-ca.crt", &clients.pem())),
    })
    .await;
    assert!(
        check(addr, "localhost", &ca.pem(), None).await.is_err(),
        "no client certificate"
    );
    let (bad_cert, bad_key) = stranger.leaf(&["ingestor.auditrail"], false);
    assert!(
        check(addr, "localhost", &ca.pem(), Some((&bad_cert, &bad_key)))
            .await
            .is_err(),
        "a certificate of another CA"
    );
    let (cert, key) = clients.leaf(&["ingestor.auditrail"], false);
    check(addr, "localhost", &ca.pem(), Some((&cert, &key)))
        .await
        .expect("a client certificate of the client CA");
}

#[tokio::test]
async fn a_rotated_client_ca_is_trusted_without_a_restart() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("dir");
    let ca = Ca::new("server CA");
    let old_clients = Ca::new("old client CA");
    let new_clients = Ca::new("new client CA");
    let (cert, key) = ca.leaf(&["localhost"], false);
    let client_ca = write(dir.path(), "client-ca.crt", &old_clients.pem());
    let addr = serve(TlsConfig {
        cert: write(dir.path(), "tls.crt", &cert),
        key: write(dir.path(), "tls.key", &key),
        client_ca: Some(client_ca.clone()),
    })
    .await;
    let (old_cert, old_key) = old_clients.leaf(&["ingestor.auditrail"], false);
    let (new_cert, new_key) = new_clients.leaf(&["ingestor.auditrail"], false);
    check(addr, "localhost", &ca.pem(), Some((&old_cert, &old_key)))
        .await
        .expect("a certificate of the old client CA");
    assert!(
        check(addr, "localhost", &ca.pem(), Some((&new_cert, &new_key)))
            .await
            .is_err(),
        "the new CA is not trusted yet"
    );
    // The CA bundle replaced in place (cert-manager's trust rotation).
    std::fs::write(&client_ca, new_clients.pem()).expect("client CA");
    // Looked at every 5 s: a hang guard of 30 s, not a timing assertion.
    let mut trusted = Err(String::new());
    for _ in 0..60 {
        trusted = check(addr, "localhost", &ca.pem(), Some((&new_cert, &new_key))).await;
        if trusted.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    trusted.expect("the new client CA, without a restart");
    assert!(
        check(addr, "localhost", &ca.pem(), Some((&old_cert, &old_key)))
            .await
            .is_err(),
        "the old client CA is no longer trusted"
    );
}

#[tokio::test]
async fn unreadable_or_mismatched_files_are_clear_errors_at_start() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = Ca::new("CA");
    let (cert, _) = ca.leaf(&["localhost"], false);
    let (_, other_key) = ca.leaf(&["localhost"], false);
    let mut config = ServerConfig::local(0, 0);
    config.metrics = false;
    config.tls = Some(TlsConfig {
        cert: dir.path().join("missing.crt"),
        key: dir.path().join("missing.key"),
        client_ca: None,
    });
    let err = bind(&config, Services::new()).await.expect_err("no files");
    assert!(err.to_string().contains("missing.crt"), "{err}");
    config.tls = Some(TlsConfig {
        cert: write(dir.path(), "tls.crt", &cert),
        key: write(dir.path(), "other.key", &other_key),
        client_ca: None,
    });
    let err = bind(&config, Services::new())
        .await
        .expect_err("a key of another certificate");
    assert!(err.to_string().contains("does not fit"), "{err}");
}

#[test]
fn without_tls_a_server_stays_on_loopback_unless_told_otherwise() {
    let any: SocketAddr = "0.0.0.0:50051".parse().expect("address");
    let loopback: SocketAddr = "127.0.0.1:50051".parse().expect("address");
    let v6: SocketAddr = "[::1]:50051".parse().expect("address");
    assert!(check_listen(loopback, None, false).is_ok());
    assert!(check_listen(v6, None, false).is_ok());
    let err = check_listen(any, None, false).expect_err("clear on the network");
    assert!(
        err.to_string().contains("--tls-cert") && err.to_string().contains("--insecure-listen"),
        "{err}"
    );
    assert!(check_listen(any, None, true).is_ok());
    let tls = TlsConfig {
        cert: "c".into(),
        key: "k".into(),
        client_ca: None,
    };
    assert!(check_listen(any, Some(&tls), false).is_ok());
}
