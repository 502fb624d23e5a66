//! The client side of the same security: how the CLI and a service that
//! calls another (the ingestor sending to the indexer) reach a server over
//! TLS, with a client certificate and a bearer token when given.
//!
//! `http://` URLs are plain gRPC; `https://` needs the CA that signed the
//! server's certificate (`tls_ca`: no system roots are trusted, an
//! auditrail deployment has its own CA). The token travels in every call's
//! `authorization: Bearer` metadata, added by [`Credentials`].

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// How a client proves who it is and whom it trusts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// PEM CA certificates that sign the servers' certificates (needed for
    /// `https://`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<PathBuf>,
    /// PEM client certificate (mTLS), with `tls_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// PEM key of `tls_cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// A file holding the bearer token (trailing white space ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
}

impl ClientConfig {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// Why a client cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not one.
    #[error("invalid server address {url:?}: give http://HOST:PORT or https://HOST:PORT")]
    Url {
        /// The URL.
        url: String,
    },
    /// `https://` without a CA to check the server with.
    #[error("{url} is https: give the CA that signed the server's certificate (--tls-ca, tls_ca)")]
    NoCa {
        /// The URL.
        url: String,
    },
    /// A file cannot be read.
    #[error("cannot read the {what} {path}: {source}")]
    Read {
        /// Which file.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A client certificate without its key, or the other way round.
    #[error(
        "a client certificate needs both tls_cert and tls_key (--tls-client-cert, --tls-client-key)"
    )]
    HalfIdentity,
    /// The token cannot travel in metadata.
    #[error("the bearer token is empty or holds characters metadata cannot carry")]
    BadToken,
    /// tonic refused the TLS settings.
    #[error("TLS settings for {url}: {source}")]
    Tls {
        /// The URL.
        url: String,
        /// Why.
        source: tonic::transport::Error,
    },
}

/// Adds the bearer token, if any, to every call.
#[derive(Clone, Default)]
pub struct Credentials {
    token: Option<MetadataValue<Ascii>>,
}

impl std::fmt::Debug for Credentials {
    // The token never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl Credentials {
    /// Credentials sending `token`.
    pub fn bearer(token: &str) -> Result<Self, ClientError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(ClientError::BadToken);
        }
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| ClientError::BadToken)?;
        Ok(Self { token: Some(value) })
    }
}

impl Interceptor for Credentials {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(token) = &self.token {
            request
                .metadata_mut()
                .insert("authorization", token.clone());
        }
        Ok(request)
    }
}

/// A channel that carries the client's credentials.
pub type Connection = InterceptedService<Channel, Credentials>;

fn read(what: &'static str, path: &PathBuf) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|source| ClientError::Read {
        what,
        path: path.clone(),
        source,
    })
}

/// The endpoint of `url` with the TLS of `config`.
pub fn endpoint(url: &str, config: &ClientConfig) -> Result<Endpoint, ClientError> {
    let bad = || ClientError::Url {
        url: url.to_owned(),
    };
    let endpoint = Endpoint::from_shared(url.to_owned()).map_err(|_| bad())?;
    let endpoint = endpoint
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true);
    match endpoint.uri().scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("http") => Ok(endpoint),
        Some(s) if s.eq_ignore_ascii_case("https") => {
            let ca = config.tls_ca.as_ref().ok_or_else(|| ClientError::NoCa {
                url: url.to_owned(),
            })?;
            let mut tls =
                ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read("CA", ca)?));
            match (&config.tls_cert, &config.tls_key) {
                (Some(cert), Some(key)) => {
                    tls = tls.identity(Identity::from_pem(
                        read("client certificate", cert)?,
                        read("client key", key)?,
                    ));
                }
                (None, None) => {}
                _ => return Err(ClientError::HalfIdentity),
            }
            endpoint.tls_config(tls).map_err(|source| ClientError::Tls {
                url: url.to_owned(),
                source,
            })
        }
        _ => Err(bad()),
    }
}

/// The credentials of `config` (its token file, if any).
pub fn credentials(config: &ClientConfig) -> Result<Credentials, ClientError> {
    match &config.token_file {
        Some(path) => {
            let text = read("token file", path)?;
            Credentials::bearer(std::str::from_utf8(&text).map_err(|_| ClientError::BadToken)?)
        }
        None => Ok(Credentials::default()),
    }
}

/// A connection to `url` that connects (and reconnects) when used.
pub fn connect_lazy(url: &str, config: &ClientConfig) -> Result<Connection, ClientError> {
    let channel = endpoint(url, config)?.connect_lazy();
    Ok(InterceptedService::new(channel, credentials(config)?))
}
