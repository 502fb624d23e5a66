//! Who is calling and whether they may: one tower layer in front of every
//! service of a process, so no handler decides access on its own.
//!
//! For each call the layer finds the caller's identity, in this order: the
//! client certificate (over mTLS; the name is the first URI SAN, else DNS
//! SAN, else the CN, and the groups are the subject's O values, as
//! Kubernetes reads client certificates), then an `authorization: Bearer`
//! token checked against the token file. A certificate named in
//! `token_forwarders` (the web console, which calls the services with
//! its users' tokens over its own mTLS connection) is a carrier, not the
//! caller, when it brings a token: the call is the token's user, and its
//! access record names the forwarder (`auditrail.io/forwarded-by`), as
//! Kubernetes trusts a front proxy only by its certificate's name. It
//! then asks [`auditrail_access::Roles`] whether that identity holds the
//! permission the method needs ([`auditrail_access::required`]) and puts
//! the [`Caller`] (identity and scope) in the request's extensions for
//! the handler to narrow what it reads. Refusals are UNAUTHENTICATED (no or
//! unknown identity) or PERMISSION_DENIED (naming the permission),
//! counted in `auth_denied_total{service,method,reason}` and logged with
//! the identity, never the token.
//!
//! Access control is on as soon as an identity source is configured (a
//! client CA or a token file). Without one every caller may do everything
//! ([`Via::Unchecked`]): safe only where the listener is, which is why a
//! server without TLS listens on loopback unless told otherwise. The token
//! and roles files are re-read when they change; a file that no longer
//! parses is logged and the previous content kept.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use auditrail_access::{
    AccessError, Decision, Identity, Permission, Required, Roles, Scope, TokenFile, Via,
};
use rustls::pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tower::{Layer, Service};

use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use crate::access_log::{AccessLog, AccessNote, AccessRecord, Pending, RecordedBody, source_ips};
use crate::kube_auth::{ClusterCatalog, KubeAuth};

/// The `[server.auth]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Bearer tokens: a TOML file of `[[token]]` entries (name, SHA-256 of
    /// the token, groups), re-read when it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// Roles and bindings beyond the built-in ones (TOML), re-read when it
    /// changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles_file: Option<PathBuf>,
    /// Bearer tokens the token file does not hold are asked of the
    /// Kubernetes API (TokenReview): the cluster's service accounts and
    /// OIDC users are identities.
    #[serde(default)]
    pub kubernetes_tokens: bool,
    /// Permissions are asked of Kubernetes RBAC (SubjectAccessReview on
    /// `auditrail.io` resources) instead of the roles.
    #[serde(default)]
    pub kubernetes_authorization: bool,
    /// Client certificates trusted to forward their users' bearer tokens
    /// (the web console under mTLS), by the name the certificate gives its
    /// holder: a call over such a certificate that carries a token is the
    /// token's user, and its access record names the forwarder; one
    /// without a token is the certificate's own. Needs a client CA and a
    /// token source.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_forwarders: Vec<String>,
    /// Seconds a Kubernetes answer is reused (positive and negative).
    #[serde(default = "default_cache_ttl_secs")]
    pub cache_ttl_secs: u64,
    /// Most Kubernetes answers of each kind kept.
    #[serde(default = "default_cache_entries")]
    pub cache_entries: usize,
}

fn default_cache_ttl_secs() -> u64 {
    60
}

fn default_cache_entries() -> usize {
    10_000
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            token_file: None,
            roles_file: None,
            kubernetes_tokens: false,
            kubernetes_authorization: false,
            token_forwarders: Vec::new(),
            cache_ttl_secs: default_cache_ttl_secs(),
            cache_entries: default_cache_entries(),
        }
    }
}

impl AuthConfig {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// Whether access control is on: some identity source is set (client
    /// certificates, the token file or Kubernetes tokens). Without one,
    /// every call is served unchecked and a roles file is not used.
    pub fn checks_identity(&self, client_certificates: bool) -> bool {
        client_certificates || self.token_file.is_some() || self.kubernetes_tokens
    }

    /// Why these settings cannot work on a server that does
    /// (`client_certificates`) or does not ask for client certificates.
    pub fn check(&self, client_certificates: bool) -> Result<(), String> {
        if self.token_forwarders.is_empty() {
            return Ok(());
        }
        if self.token_forwarders.iter().any(|n| n.trim().is_empty()) {
            return Err("server.auth.token_forwarders holds an empty name".to_owned());
        }
        if !client_certificates {
            return Err(format!(
                "server.auth.token_forwarders = {:?} names client certificates, and this server \
                 asks for none: set [server.tls] client_ca (mTLS), or drop token_forwarders",
                self.token_forwarders
            ));
        }
        if self.token_file.is_none() && !self.kubernetes_tokens {
            return Err(format!(
                "server.auth.token_forwarders = {:?}: a forwarded token is checked against the \
                 token file or by Kubernetes, and neither is set: set server.auth.token_file or \
                 server.auth.kubernetes_tokens",
                self.token_forwarders
            ));
        }
        Ok(())
    }
}

/// Why access control cannot start.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
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
    /// A file does not parse.
    #[error(transparent)]
    Invalid(#[from] AccessError),
    /// The Kubernetes client cannot be set up (no in-cluster service
    /// account, no kubeconfig).
    #[error("cannot reach the Kubernetes API for token or access reviews: {0}")]
    Kubernetes(String),
    /// The settings contradict each other ([`AuthConfig::check`]).
    #[error("{0}")]
    Config(String),
}

/// The caller of a request, as the handlers see it in its extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Who.
    pub identity: Identity,
    /// What the method's permission reaches for them.
    pub scope: Scope,
    /// Whether they may read access records (the `read_access`
    /// permission), decided for the calls that read events.
    pub read_access: bool,
    /// The client certificate that brought the caller's token, when a
    /// token forwarder (the console) made the call on their behalf.
    pub forwarded_by: Option<String>,
}

impl Caller {
    /// The caller of `request`; everything allowed when the request went
    /// through no auth layer (in-process tests).
    pub fn of<T>(request: &tonic::Request<T>) -> Self {
        request.extensions().get::<Self>().cloned().unwrap_or(Self {
            identity: Identity {
                name: String::new(),
                groups: Vec::new(),
                via: Via::Unchecked,
            },
            scope: Scope::all(),
            read_access: true,
            forwarded_by: None,
        })
    }
}

/// A file re-read when it changes.
struct Watched<T> {
    path: PathBuf,
    what: &'static str,
    parse: fn(&str, &str) -> Result<T, AccessError>,
    value: RwLock<Arc<T>>,
    stamp: RwLock<Option<(SystemTime, u64)>>,
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl<T> Watched<T> {
    fn load(
        path: &Path,
        what: &'static str,
        parse: fn(&str, &str) -> Result<T, AccessError>,
    ) -> Result<Self, AuthError> {
        let stamp_now = stamp(path);
        let value = Self::read(path, what, parse)?;
        Ok(Self {
            path: path.to_owned(),
            what,
            parse,
            value: RwLock::new(Arc::new(value)),
            stamp: RwLock::new(stamp_now),
        })
    }

    fn read(
        path: &Path,
        what: &'static str,
        parse: fn(&str, &str) -> Result<T, AccessError>,
    ) -> Result<T, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::Read {
            what,
            path: path.to_owned(),
            source,
        })?;
        Ok(parse(&path.display().to_string(), &text)?)
    }

    fn get(&self) -> Arc<T> {
        Arc::clone(
            &self
                .value
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Re-reads the file if it changed.
    fn refresh(&self) {
        let now = stamp(&self.path);
        if now
            == *self
                .stamp
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            return;
        }
        *self
            .stamp
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = now;
        match Self::read(&self.path, self.what, self.parse) {
            Ok(value) => {
                *self
                    .value
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(value);
                tracing::info!(file = %self.path.display(), what = self.what, "reloaded");
            }
            Err(err) => {
                tracing::warn!(error = %err, "keeping the previous {}", self.what);
            }
        }
    }
}

/// What the layer decides with.
struct AuthState {
    /// Whether access control is on.
    enabled: bool,
    tokens: Option<Watched<TokenFile>>,
    roles: Option<Watched<Roles>>,
    builtin: Arc<Roles>,
    /// TokenReview (with `kubernetes_tokens`).
    kube_tokens: Option<Arc<KubeAuth>>,
    /// SubjectAccessReview (with `kubernetes_authorization`).
    kube_authorization: Option<Arc<KubeAuth>>,
    /// The names of the client certificates that forward their users'
    /// tokens (`token_forwarders`).
    forwarders: Vec<String>,
    /// The clusters of the process's store, for reviews per cluster.
    catalog: Option<Arc<dyn ClusterCatalog>>,
}

/// How often the token and roles files are looked at.
const RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// The layer, cheap to clone.
#[derive(Clone)]
pub struct AuthLayer {
    state: Arc<AuthState>,
    /// Where the records of recorded calls go, when they are recorded.
    access: Option<AccessLog>,
}

/// A call refused by the layer, and who made it when that is known.
struct Refusal {
    status: tonic::Status,
    identity: Option<Identity>,
    /// The token forwarder that brought the call, when one did.
    forwarded_by: Option<String>,
}

impl From<tonic::Status> for Refusal {
    fn from(status: tonic::Status) -> Self {
        Self {
            status,
            identity: None,
            forwarded_by: None,
        }
    }
}

impl std::fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthLayer")
            .field("enabled", &self.state.enabled)
            .finish_non_exhaustive()
    }
}

impl AuthLayer {
    /// The layer of `config`; `client_certificates` says whether the
    /// server requires client certificates (a client CA is set).
    pub async fn new(
        config: &AuthConfig,
        client_certificates: bool,
        catalog: Option<Arc<dyn ClusterCatalog>>,
    ) -> Result<Self, AuthError> {
        config
            .check(client_certificates)
            .map_err(AuthError::Config)?;
        let tokens = config
            .token_file
            .as_deref()
            .map(|p| Watched::load(p, "token file", TokenFile::parse))
            .transpose()?;
        let roles = config
            .roles_file
            .as_deref()
            .map(|p| Watched::load(p, "roles file", Roles::parse))
            .transpose()?;
        let kube = if config.kubernetes_tokens || config.kubernetes_authorization {
            let client = kube::Client::try_default()
                .await
                .map_err(|e| AuthError::Kubernetes(e.to_string()))?;
            Some(Arc::new(KubeAuth::new(
                client,
                Duration::from_secs(config.cache_ttl_secs),
                config.cache_entries,
            )))
        } else {
            None
        };
        let enabled = config.checks_identity(client_certificates);
        if !enabled && roles.is_some() {
            tracing::warn!(
                "a roles file is set but no identity source (client CA or token file): access control is off"
            );
        }
        Ok(Self {
            state: Arc::new(AuthState {
                enabled,
                tokens,
                roles,
                builtin: Arc::new(Roles::builtin()),
                kube_tokens: kube.clone().filter(|_| config.kubernetes_tokens),
                kube_authorization: kube.filter(|_| config.kubernetes_authorization),
                forwarders: config.token_forwarders.clone(),
                catalog,
            }),
            access: None,
        })
    }

    /// The layer recording the calls that need it in `log`.
    pub(crate) fn recording(mut self, log: AccessLog) -> Self {
        self.access = Some(log);
        self
    }

    /// Whether calls are checked.
    pub fn enabled(&self) -> bool {
        self.state.enabled
    }

    /// Re-reads the token and roles files when they change, until `stop`.
    pub(crate) async fn reload_until(self, mut stop: watch::Receiver<bool>) {
        if self.state.tokens.is_none() && self.state.roles.is_none() {
            return;
        }
        loop {
            tokio::select! {
                () = tokio::time::sleep(RELOAD_INTERVAL) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            if let Some(tokens) = &self.state.tokens {
                tokens.refresh();
            }
            if let Some(roles) = &self.state.roles {
                roles.refresh();
            }
        }
    }

    /// The caller of a request with `token` (its bearer token, if any)
    /// over a connection whose client presented `certificates`, or why
    /// there is none; and the token forwarder that brought the token,
    /// when one did (known even when the token is refused).
    async fn identify(
        &self,
        token: Option<Result<String, &'static str>>,
        certificates: Option<&[CertificateDer<'static>]>,
    ) -> (Result<Identity, tonic::Status>, Option<String>) {
        let Some(leaf) = certificates.and_then(<[_]>::first) else {
            return (self.token_identity(token).await, None);
        };
        let Some(holder) = certificate_identity(leaf) else {
            return (
                Err(tonic::Status::unauthenticated(
                    "the client certificate names no one",
                )),
                None,
            );
        };
        if token.is_none() || !self.state.forwarders.contains(&holder.name) {
            return (Ok(holder), None);
        }
        // A forwarder's call is its user's: the token decides, and an
        // unknown token is refused, never taken as the forwarder's own.
        (self.token_identity(token).await, Some(holder.name))
    }

    /// The identity a bearer token proves, or why it proves none.
    async fn token_identity(
        &self,
        token: Option<Result<String, &'static str>>,
    ) -> Result<Identity, tonic::Status> {
        let unauthenticated = |reason: &str| tonic::Status::unauthenticated(reason.to_owned());
        let token = match token {
            None => {
                return Err(unauthenticated(
                    "no identity: give a bearer token (authorization metadata) or a client \
                     certificate",
                ));
            }
            Some(token) => token.map_err(unauthenticated)?,
        };
        if let Some(identity) = self
            .state
            .tokens
            .as_ref()
            .and_then(|t| t.get().verify(&token))
        {
            return Ok(identity);
        }
        match &self.state.kube_tokens {
            Some(kube) => kube
                .authenticate(&token)
                .await
                .map_err(|e| tonic::Status::unavailable(e.to_string()))?
                .ok_or_else(|| unauthenticated("token unknown")),
            None if self.state.tokens.is_none() => Err(unauthenticated(
                "tokens are not accepted here (no token file)",
            )),
            None => Err(unauthenticated("token unknown")),
        }
    }

    /// The decision for a call to `path`: the caller to put in its
    /// extensions, or the refusal.
    async fn check(
        &self,
        path: &str,
        token: Option<Result<String, &'static str>>,
        certificates: Option<&[CertificateDer<'static>]>,
    ) -> Result<Option<Caller>, Refusal> {
        let permission = match auditrail_access::required(path) {
            Required::Public => return Ok(None),
            Required::Permission(p) => p,
            Required::Unknown => {
                deny(path, "-", "unknown_method");
                return Err(tonic::Status::permission_denied(format!(
                    "{path} has no permission defined; it is not served"
                ))
                .into());
            }
        };
        let (identity, forwarded_by) = self.identify(token, certificates).await;
        let identity = match identity {
            Ok(identity) => identity,
            Err(status) => {
                let reason = if status.code() == tonic::Code::Unavailable {
                    "unavailable"
                } else {
                    "unauthenticated"
                };
                deny(path, "-", reason);
                tracing::info!(
                    method = path,
                    reason = status.message(),
                    forwarded_by,
                    "call refused: {reason}"
                );
                return Err(Refusal {
                    status,
                    identity: None,
                    forwarded_by,
                });
            }
        };
        let decision = match self.decide(&identity, permission).await {
            Ok(decision) => decision,
            Err(status) => {
                deny(path, &identity.name, "unavailable");
                return Err(Refusal {
                    status,
                    identity: Some(identity),
                    forwarded_by,
                });
            }
        };
        match decision {
            Decision::Allow(scope) => {
                // Calls that read events learn whether access records are
                // theirs to read too.
                let read_access = matches!(permission, Permission::Read | Permission::Export)
                    && matches!(
                        self.decide(&identity, Permission::ReadAccess).await,
                        Ok(Decision::Allow(_))
                    );
                Ok(Some(Caller {
                    identity,
                    scope,
                    read_access,
                    forwarded_by,
                }))
            }
            Decision::Deny => {
                deny(path, &identity.name, "permission");
                Err(Refusal {
                    status: tonic::Status::permission_denied(format!(
                        "{} may not call {}: it needs the permission {permission}",
                        identity.name,
                        path.trim_start_matches('/')
                    )),
                    identity: Some(identity),
                    forwarded_by,
                })
            }
        }
    }

    /// Whether `identity` holds `permission`, from Kubernetes RBAC or the
    /// roles.
    async fn decide(
        &self,
        identity: &Identity,
        permission: Permission,
    ) -> Result<Decision, tonic::Status> {
        match &self.state.kube_authorization {
            Some(kube) => kube
                .authorize(identity, permission, self.state.catalog.as_deref())
                .await
                .map_err(|e| tonic::Status::unavailable(e.to_string())),
            None => Ok(self
                .state
                .roles
                .as_ref()
                .map_or_else(|| Arc::clone(&self.state.builtin), Watched::get)
                .decide(identity, permission)),
        }
    }
}

/// The bearer token of `headers`: `None` without authorization metadata,
/// an error when it is not `Bearer <token>`.
fn bearer(headers: &http::HeaderMap) -> Option<Result<String, &'static str>> {
    let value = headers.get(http::header::AUTHORIZATION)?;
    Some(
        value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .ok_or("the authorization metadata is not \"Bearer <token>\""),
    )
}

/// Counts and logs a refusal.
fn deny(path: &str, identity: &str, reason: &'static str) {
    let (service, method) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or(("unknown", "unknown"));
    metrics::counter!(
        "auth_denied_total",
        "service" => service.to_owned(),
        "method" => method.to_owned(),
        "reason" => reason,
    )
    .increment(1);
    if reason == "permission" {
        tracing::warn!(identity, method = path, "call refused: permission denied");
    }
}

/// The identity a client certificate names: its first URI SAN, else its
/// first DNS SAN, else its CN; its groups, the subject's O values.
pub fn certificate_identity(der: &[u8]) -> Option<Identity> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let sans: Vec<GeneralName<'_>> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|ext| ext.value.general_names.clone())
        .unwrap_or_default();
    let uri = sans.iter().find_map(|n| match n {
        GeneralName::URI(u) => Some((*u).to_owned()),
        _ => None,
    });
    let dns = || {
        sans.iter().find_map(|n| match n {
            GeneralName::DNSName(d) => Some((*d).to_owned()),
            _ => None,
        })
    };
    let cn = || {
        cert.subject()
            .iter_common_name()
            .next()
            .and_then(|a| a.as_str().ok())
            .map(str::to_owned)
    };
    let name = uri.or_else(dns).or_else(cn)?;
    let groups = cert
        .subject()
        .iter_organization()
        .filter_map(|a| a.as_str().ok().map(str::to_owned))
        .collect();
    Some(Identity {
        name,
        groups,
        via: Via::Certificate,
    })
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Auth {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`AuthLayer`].
#[derive(Clone)]
pub struct Auth<S> {
    inner: S,
    layer: AuthLayer,
}

impl<S> std::fmt::Debug for Auth<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("layer", &self.layer)
            .finish_non_exhaustive()
    }
}

impl<S, B, R> Service<http::Request<B>> for Auth<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    R: Default + Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<RecordedBody<R>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let access = self
            .layer
            .access
            .clone()
            .filter(|_| auditrail_access::recorded(request.uri().path()));
        if !self.layer.state.enabled && access.is_none() {
            let answer = self.inner.call(request);
            return Box::pin(async move { Ok(answer.await?.map(RecordedBody::plain)) });
        }
        // The service that was polled ready serves this call; a clone takes
        // its place for the next one.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(self.layer.clone().serve(inner, request, access))
    }
}

/// A call's facts for its access record, gathered before it runs.
struct CallFacts {
    received: SystemTime,
    path: String,
    sources: Vec<String>,
    user_agent: Option<String>,
    checked: bool,
}

impl CallFacts {
    /// The record of this call by `identity` (none: not known), its
    /// outcome filled in when the answer ends.
    /// `forwarded_by` names the token forwarder that brought the call.
    fn record(&self, identity: Option<&Identity>, forwarded_by: Option<&str>) -> AccessRecord {
        let user = match identity {
            Some(i) => i.name.clone(),
            None if self.checked => "system:unauthenticated".to_owned(),
            None => "anonymous".to_owned(),
        };
        AccessRecord {
            audit_id: uuid::Uuid::new_v4().to_string(),
            user,
            groups: identity.map(|i| i.groups.clone()).unwrap_or_default(),
            via: match identity.map(|i| i.via) {
                Some(Via::Certificate) => "certificate",
                Some(Via::Token) => "token",
                Some(Via::Unchecked) | None if self.checked => "none",
                Some(Via::Unchecked) | None => "unchecked",
            },
            forwarded_by: forwarded_by.map(str::to_owned),
            sources: self.sources.clone(),
            user_agent: self.user_agent.clone(),
            path: self.path.clone(),
            received: self.received,
            completed: self.received,
            code: tonic::Code::Ok,
            message: String::new(),
            request: None,
            events: None,
        }
    }
}

/// `response` with a body that sends `pending`'s record when it ends.
fn recorded<R>(
    response: http::Response<R>,
    pending: Option<Pending>,
) -> http::Response<RecordedBody<R>> {
    match pending {
        Some(pending) => {
            let (parts, body) = response.into_parts();
            let body = RecordedBody::recording(body, pending, &parts.headers);
            http::Response::from_parts(parts, body)
        }
        None => response.map(RecordedBody::plain),
    }
}

impl AuthLayer {
    /// Checks, records and serves one call with `inner`.
    async fn serve<S, B, R>(
        self,
        mut inner: S,
        mut request: http::Request<B>,
        access: Option<AccessLog>,
    ) -> Result<http::Response<RecordedBody<R>>, S::Error>
    where
        S: Service<http::Request<B>, Response = http::Response<R>>,
        R: Default,
    {
        let tls = request.extensions().get::<TlsConnectInfo<TcpConnectInfo>>();
        let certificates = tls.and_then(TlsConnectInfo::peer_certs);
        let peer = tls.and_then(|t| t.get_ref().remote_addr()).or_else(|| {
            request
                .extensions()
                .get::<TcpConnectInfo>()
                .and_then(TcpConnectInfo::remote_addr)
        });
        let facts = CallFacts {
            received: SystemTime::now(),
            path: request.uri().path().to_owned(),
            sources: source_ips(request.headers(), peer.map(|p| p.ip())),
            user_agent: request
                .headers()
                .get(http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(256).collect()),
            checked: self.state.enabled,
        };
        let decision = if self.state.enabled {
            let token = bearer(request.headers());
            self.check(
                &facts.path,
                token,
                certificates.as_deref().map(Vec::as_slice),
            )
            .await
        } else {
            Ok(None)
        };
        let caller = match decision {
            Ok(caller) => caller,
            Err(refusal) => {
                // A refused call ran nothing: it is recorded when there is
                // room, and counted when there is none.
                let pending = access.as_ref().and_then(|log| {
                    let Some(reservation) = log.reserve() else {
                        metrics::counter!(
                            "access_records_dropped_total",
                            "reason" => "refused_call_buffer_full"
                        )
                        .increment(1);
                        return None;
                    };
                    Some(Pending {
                        reservation,
                        record: facts
                            .record(refusal.identity.as_ref(), refusal.forwarded_by.as_deref()),
                        note: AccessNote::default(),
                    })
                });
                return Ok(recorded(refusal.status.into_http::<R>(), pending));
            }
        };
        let pending = if let Some(log) = &access {
            let Some(reservation) = log.reserve() else {
                metrics::counter!("access_log_full_refusals_total").increment(1);
                tracing::warn!(
                    method = %facts.path,
                    "call refused: the access trail is not taking records and this call must be recorded"
                );
                let status = tonic::Status::unavailable(
                    "the access trail is not taking records (its buffer is full): this call \
                     must be recorded, so it is refused; retry later",
                );
                return Ok(status.into_http::<R>().map(RecordedBody::plain));
            };
            let note = AccessNote::default();
            request.extensions_mut().insert(note.clone());
            Some(Pending {
                reservation,
                record: facts.record(
                    caller.as_ref().map(|c| &c.identity),
                    caller.as_ref().and_then(|c| c.forwarded_by.as_deref()),
                ),
                note,
            })
        } else {
            None
        };
        if let Some(caller) = caller {
            request.extensions_mut().insert(caller);
        }
        let response = inner.call(request).await?;
        Ok(recorded(response, pending))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarding(token_file: bool, kubernetes_tokens: bool, names: &[&str]) -> AuthConfig {
        AuthConfig {
            token_file: token_file.then(|| PathBuf::from("tokens.toml")),
            kubernetes_tokens,
            token_forwarders: names.iter().map(|n| (*n).to_owned()).collect(),
            ..AuthConfig::default()
        }
    }

    #[test]
    fn token_forwarders_need_client_certificates_and_a_token_source() {
        assert_eq!(forwarding(false, false, &[]).check(false), Ok(()));
        assert_eq!(forwarding(true, false, &["console"]).check(true), Ok(()));
        assert_eq!(forwarding(false, true, &["console"]).check(true), Ok(()));
        let no_ca = forwarding(true, false, &["console"])
            .check(false)
            .unwrap_err();
        assert!(
            no_ca.starts_with("server.auth.token_forwarders = [\"console\"] names client certificates, and this server asks for none"),
            "{no_ca}"
        );
        let no_tokens = forwarding(false, false, &["console"])
            .check(true)
            .unwrap_err();
        assert!(
            no_tokens.contains(
                "neither is set: set server.auth.token_file or server.auth.kubernetes_tokens"
            ),
            "{no_tokens}"
        );
        assert_eq!(
            forwarding(true, false, &["console", " "]).check(true),
            Err("server.auth.token_forwarders holds an empty name".to_owned())
        );
    }
}
