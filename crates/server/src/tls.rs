//! TLS on every server, and the rule that keeps a server without it off
//! the network.
//!
//! The handshake runs in our own accept loop (tokio-rustls over the bounded
//! connections of `connections`), not in tonic's, for two reasons: the
//! certificate and key, and the client CA, are re-read when their files
//! change (cert-manager renews a Secret in place, a CA bundle gains the
//! next CA before a rotation, and a restart to pick either up would drop
//! every stream). tonic's own `TlsConnectInfo` carries the peer's
//! certificate chain to the layer that decides who is calling.
//!
//! With `client_ca`, every client must present a certificate that CA
//! signed (mTLS). Without TLS a server may listen only on a loopback
//! address unless `insecure_listen` says otherwise ([`check_listen`]).

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;

use crate::connections::BoundedConn;

/// The `[server.tls]` table: PEM files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The server's certificate chain (leaf first). Re-read when it
    /// changes.
    pub cert: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1). Re-read with the
    /// certificate.
    pub key: PathBuf,
    /// CA certificates that sign client certificates; when set, every
    /// client must present one (mTLS) and its name is its identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
}

/// Why TLS cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file cannot be read or holds nothing usable.
    #[error("cannot read the {what} {path}: {reason}")]
    File {
        /// Which file.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The key does not belong to the certificate, or is of a kind rustls
    /// cannot sign with.
    #[error("the key {key} does not fit the certificate {cert}: {reason}")]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(String),
    /// A server without TLS was asked to listen beyond loopback.
    #[error(
        "refusing to serve without TLS on {listen}, which is not a loopback address: give \
         --tls-cert and --tls-key ([server.tls] cert and key), or --insecure-listen \
         ([server] insecure_listen = true) to serve in clear on a network you trust"
    )]
    ClearOnNetwork {
        /// The configured address.
        listen: SocketAddr,
    },
}

/// Whether a server may listen on `listen`: with TLS anywhere; without it
/// only on loopback, unless `insecure` allows it (then a warning is logged
/// at start, and every minute by the server while it runs).
pub fn check_listen(
    listen: SocketAddr,
    tls: Option<&TlsConfig>,
    insecure: bool,
) -> Result<(), TlsError> {
    if tls.is_some() || listen.ip().is_loopback() {
        return Ok(());
    }
    if insecure {
        warn_clear(listen);
        return Ok(());
    }
    Err(TlsError::ClearOnNetwork { listen })
}

/// The warning of a server serving in clear beyond loopback.
pub(crate) fn warn_clear(listen: SocketAddr) {
    tracing::warn!(%listen, "serving gRPC WITHOUT TLS on a non-loopback address (insecure_listen): anyone on the network can read and send calls");
}

fn read_certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let fail = |reason: String| TlsError::File {
        what,
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(e.to_string()))?;
    if certs.is_empty() {
        return Err(fail("no PEM certificate in it".to_owned()));
    }
    Ok(certs)
}

/// Reads the certificate chain and key, checking they belong together.
fn load_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = read_certs("certificate", cert)?;
    let der = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::File {
        what: "private key",
        path: key.to_owned(),
        reason: e.to_string(),
    })?;
    let mismatch = |reason: String| TlsError::KeyMismatch {
        cert: cert.to_owned(),
        key: key.to_owned(),
        reason,
    };
    let signing = rustls::crypto::ring::sign::any_supported_type(&der)
        .map_err(|e| mismatch(e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|e| mismatch(e.to_string()))?;
    Ok(certified)
}

/// The server certificate, swapped when its files change.
#[derive(Debug)]
struct ReloadingCert {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        ))
    }
}

/// The acceptor of `config`: its client CA (when set) read now, the
/// server's certificate from `cert`.
fn acceptor(config: &TlsConfig, cert: &Arc<ReloadingCert>) -> Result<TlsAcceptor, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match &config.client_ca {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for ca in read_certs("client CA", path)? {
                roots.add(ca).map_err(|e| TlsError::File {
                    what: "client CA",
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::Config(format!("client CA {}: {e}", path.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut server = builder.with_cert_resolver(Arc::clone(cert) as Arc<dyn ResolvesServerCert>);
    server.alpn_protocols = vec![b"h2".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server)))
}

/// How often the certificate files are looked at.
const RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// The TLS side of a server: the acceptor and what reloads its
/// certificate.
pub(crate) struct Tls {
    /// Rebuilt when the client CA changes; each handshake takes the
    /// current one.
    acceptor: RwLock<TlsAcceptor>,
    cert: Arc<ReloadingCert>,
    config: TlsConfig,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// When a file was last changed, and its size: a change of either is a
/// change of the file (a Secret's symlink swap changes both).
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl Tls {
    /// Loads the files of `config` and builds the acceptor (HTTP/2 only).
    pub(crate) fn new(config: &TlsConfig) -> Result<Self, TlsError> {
        let cert = Arc::new(ReloadingCert {
            current: RwLock::new(Arc::new(load_key(&config.cert, &config.key)?)),
        });
        Ok(Self {
            acceptor: RwLock::new(acceptor(config, &cert)?),
            cert,
            config: config.clone(),
        })
    }

    /// Re-reads the certificate and key, and the client CA, whenever their
    /// files change, until `stop`. A pair or a CA that does not load (a
    /// half-written renewal) is logged and the current one kept; the next
    /// change is tried again.
    pub(crate) async fn reload_until(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let pair = |config: &TlsConfig| (stamp(&config.cert), stamp(&config.key));
        let ca = |config: &TlsConfig| config.client_ca.as_deref().and_then(stamp);
        let (mut seen_pair, mut seen_ca) = (pair(&self.config), ca(&self.config));
        loop {
            tokio::select! {
                () = tokio::time::sleep(RELOAD_INTERVAL) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let now = pair(&self.config);
            if now != seen_pair {
                match load_key(&self.config.cert, &self.config.key) {
                    Ok(key) => {
                        *self
                            .cert
                            .current
                            .write()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(key);
                        seen_pair = now;
                        metrics::counter!("tls_certificate_reloads_total").increment(1);
                        tracing::info!(cert = %self.config.cert.display(), "TLS certificate reloaded");
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "TLS certificate changed but does not load; keeping the current one");
                    }
                }
            }
            let now = ca(&self.config);
            if now != seen_ca {
                match acceptor(&self.config, &self.cert) {
                    Ok(acceptor) => {
                        *self
                            .acceptor
                            .write()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) = acceptor;
                        seen_ca = now;
                        metrics::counter!("tls_client_ca_reloads_total").increment(1);
                        tracing::info!("TLS client CA reloaded");
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "TLS client CA changed but does not load; keeping the current one");
                    }
                }
            }
        }
    }

    /// The TLS connections of `plain`: each handshake runs on its own task
    /// (within `timeout`), so a slow client delays nobody else. Failed
    /// handshakes are logged at debug and counted.
    pub(crate) fn accept(
        self: &Arc<Self>,
        mut plain: ReceiverStream<io::Result<BoundedConn>>,
        timeout: Duration,
    ) -> ReceiverStream<io::Result<tokio_rustls::server::TlsStream<BoundedConn>>> {
        let (tx, rx) = mpsc::channel(16);
        let tls = Arc::clone(self);
        tokio::spawn(async move {
            while let Some(conn) = plain.next().await {
                let conn = match conn {
                    Ok(conn) => conn,
                    Err(e) => {
                        if tx.send(Err(e)).await.is_err() {
                            return;
                        }
                        continue;
                    }
                };
                let acceptor = tls
                    .acceptor
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let remote = conn.remote_addr();
                    match tokio::time::timeout(timeout, acceptor.accept(conn)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send(Ok(stream)).await;
                        }
                        Ok(Err(e)) => {
                            metrics::counter!("tls_handshake_failures_total").increment(1);
                            tracing::debug!(?remote, error = %e, "TLS handshake failed");
                        }
                        Err(_) => {
                            metrics::counter!("tls_handshake_failures_total").increment(1);
                            tracing::debug!(?remote, "TLS handshake timed out");
                        }
                    }
                });
            }
        });
        ReceiverStream::new(rx)
    }
}
