//! The gRPC server shell every auditrail service runs in.
//!
//! A service crate only implements its tonic service; everything a production
//! gRPC server needs around it is here, so the five services and the
//! all-in-one `auditrail up` behave the same:
//!
//! - binding the gRPC and Prometheus listeners ([`ServerConfig`]),
//! - the standard gRPC health service, `SERVING` per service while up and
//!   `NOT_SERVING` as soon as shutdown starts,
//! - gRPC reflection (v1 and v1alpha) over the `auditrail.v1` descriptors,
//! - request metrics per method (`metrics_layer`),
//! - a panic in a handler fails that call with `INTERNAL`, logged and
//!   counted, never the connection ([`CatchPanicLayer`]),
//! - bounded connections: at most `max_connections` open, silent peers
//!   closed, HTTP/2 keep-alive pings, at most `max_concurrent_streams` calls
//!   per connection, and the open-file limit raised at start
//!   ([`raise_nofile_limit`]),
//! - TLS with a certificate reloaded when its files change, client
//!   certificates when a client CA is given, and no clear-text listener
//!   beyond loopback unless asked for ([`TlsConfig`], [`check_listen`]),
//! - who may call what, checked for every call in one layer
//!   ([`AuthLayer`]: client certificates and bearer tokens, the roles of
//!   `auditrail-access`),
//! - an access record of every call that reads or changes the trail,
//!   stored in the trail itself ([`AccessLogConfig`], `access_log`),
//! - graceful shutdown on SIGTERM or SIGINT ([`shutdown_signal`]): stop
//!   accepting, let in-flight calls finish within a grace period, then exit;
//! - how a listing RPC reads its `page_size` ([`PageBounds`]).

mod access_log;
mod auth_layer;
pub mod client;
mod connections;
mod kube_auth;
mod metrics_layer;
mod paging;
mod panic_layer;
pub mod ports;
mod service;
mod shutdown;
mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic_health::ServingStatus;

pub use access_log::{ACCESS_RECORD_GROUP, AccessLogConfig, AccessNote, AccessSink, RecordedBody};
pub use auth_layer::{AuthConfig, AuthError, AuthLayer, Caller, certificate_identity};
pub use connections::raise_nofile_limit;
pub use kube_auth::ClusterCatalog;
pub use metrics_layer::{GrpcMetricsLayer, code_name};
pub use paging::{PageBounds, PageSizeTooLarge};
pub use panic_layer::{CatchPanicLayer, install_panic_hook};
pub use service::Service;
pub use shutdown::shutdown_signal;
pub use tls::{TlsConfig, TlsError, check_listen};

/// The `server` section of every service's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address of the gRPC API. Port 0 picks a free port (logged at start).
    pub listen: SocketAddr,
    /// Whether to serve Prometheus metrics.
    pub metrics: bool,
    /// Address of the Prometheus `/metrics` endpoint.
    pub metrics_listen: SocketAddr,
    /// Seconds in-flight calls get to finish once shutdown starts.
    pub shutdown_grace_secs: u64,
    /// Most client connections open at once; beyond it new connections
    /// wait in the kernel's backlog until one closes.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Seconds a connection may send nothing (not even an answer to the
    /// server's keep-alive ping) before it is closed.
    #[serde(default = "default_idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// Most calls in flight on one connection (HTTP/2
    /// `SETTINGS_MAX_CONCURRENT_STREAMS`).
    #[serde(default = "default_max_concurrent_streams")]
    pub max_concurrent_streams: u32,
    /// TLS for the gRPC API (`[server.tls]`); without it the server listens
    /// only on loopback unless `insecure_listen` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// Serve without TLS on a non-loopback address (a warning is logged at
    /// start and every minute).
    #[serde(default)]
    pub insecure_listen: bool,
    /// Identities and roles (`[server.auth]`); access control is on as soon
    /// as a client CA or a token file is set.
    #[serde(default, skip_serializing_if = "AuthConfig::is_empty")]
    pub auth: AuthConfig,
    /// Access records of the calls that read or change the trail
    /// (`[server.access_log]`).
    #[serde(default, skip_serializing_if = "AccessLogConfig::is_default")]
    pub access_log: AccessLogConfig,
}

fn default_max_connections() -> usize {
    1000
}

fn default_idle_timeout_secs() -> u64 {
    300
}

fn default_max_concurrent_streams() -> u32 {
    128
}

/// Seconds a new connection has to send its first bytes.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Interval of the server's HTTP/2 keep-alive pings, and how long an
/// answer may take before the connection is closed.
const KEEPALIVE_INTERVAL: Duration = Duration::from_mins(1);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

impl ServerConfig {
    /// Defaults for a service listening on `port` (loopback) with metrics on
    /// `metrics_port`. Deployments set `0.0.0.0` explicitly.
    pub fn local(port: u16, metrics_port: u16) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], port)),
            metrics: true,
            metrics_listen: SocketAddr::from(([127, 0, 0, 1], metrics_port)),
            shutdown_grace_secs: 10,
            max_connections: default_max_connections(),
            idle_timeout_secs: default_idle_timeout_secs(),
            max_concurrent_streams: default_max_concurrent_streams(),
            tls: None,
            insecure_listen: false,
            auth: AuthConfig::default(),
            access_log: AccessLogConfig::default(),
        }
    }

    /// Whether the server requires client certificates (mTLS: a client CA
    /// is set), so that a client's certificate is its identity.
    pub fn requires_client_certificates(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.client_ca.is_some())
    }

    /// Whether access control is on ([`AuthConfig::checks_identity`]).
    pub fn checks_identity(&self) -> bool {
        self.auth
            .checks_identity(self.requires_client_certificates())
    }
}

/// Why a server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listener could not be bound (address in use, permission, …).
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// The configured address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Reflection could not be built from the embedded descriptors.
    #[error("cannot build gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The gRPC transport failed.
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The metrics endpoint failed.
    #[error(transparent)]
    Telemetry(#[from] auditrail_telemetry::TelemetryError),
    /// TLS cannot be set up, or is missing where it is required.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Access control cannot start.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Calls must be recorded and the records have nowhere to go.
    #[error("{0}")]
    AccessLog(String),
}

/// Adds gRPC reflection (v1 and v1alpha, for older clients such as some
/// `grpcurl` versions) over the auditrail and health descriptors.
fn add_reflection(routes: &mut RoutesBuilder) -> Result<(), ServerError> {
    let v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(auditrail_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(auditrail_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    routes.add_service(v1).add_service(v1alpha);
    Ok(())
}

/// Awaits the access records' flusher (it ends once the server's layers
/// are gone and the buffer is stored) within `grace`.
async fn await_flusher(flusher: tokio::task::JoinHandle<()>, grace: Duration) {
    if tokio::time::timeout(grace, flusher).await.is_err() {
        tracing::error!(
            "access records still waiting could not be stored within the grace period: they are lost"
        );
    }
}

/// Awaits background tasks, each within `grace`.
async fn join_tasks(tasks: Vec<(&'static str, tokio::task::JoinHandle<()>)>, grace: Duration) {
    for (name, task) in tasks {
        match tokio::time::timeout(grace, task).await {
            Ok(Ok(())) => tracing::debug!(task = name, "background task stopped"),
            Ok(Err(err)) => tracing::error!(task = name, error = %err, "background task panicked"),
            Err(_) => tracing::warn!(
                task = name,
                "background task did not stop within the grace period"
            ),
        }
    }
}

/// The span of one gRPC call: named after the method for trace backends,
/// with the RPC semantic-convention attributes.
fn request_span(request: &http::Request<()>) -> tracing::Span {
    let path = request.uri().path();
    let (service, method) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or(("unknown", "unknown"));
    tracing::info_span!(
        "grpc.request",
        otel.name = %path.trim_start_matches('/'),
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = %service,
        rpc.method = %method,
    )
}

/// Serves `routes` on `incoming` until `stop`: the per-call layers
/// (metrics outside, panic catching inside), tracing spans, HTTP/2
/// keep-alive pings and the per-connection call limit.
async fn serve_grpc<IO>(
    routes: RoutesBuilder,
    incoming: impl tokio_stream::Stream<Item = std::io::Result<IO>> + Send + 'static,
    max_concurrent_streams: u32,
    auth: AuthLayer,
    stop: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error>
where
    IO: tokio::io::AsyncRead
        + tokio::io::AsyncWrite
        + tonic::transport::server::Connected
        + Unpin
        + Send
        + 'static,
    IO::ConnectInfo: Clone + Send + Sync + 'static,
{
    tonic::transport::Server::builder()
        .trace_fn(request_span)
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .max_concurrent_streams(Some(max_concurrent_streams))
        .layer(GrpcMetricsLayer)
        .layer(auth)
        .layer(CatchPanicLayer)
        .add_routes(routes.routes())
        .serve_with_incoming_shutdown(incoming, stop)
        .await
}

/// Starts the background tasks, each with its context.
fn spawn_tasks(
    tasks: Vec<(&'static str, Task)>,
    stop: &watch::Receiver<bool>,
    grpc_addr: SocketAddr,
    tls: bool,
) -> Vec<(&'static str, tokio::task::JoinHandle<()>)> {
    let grpc_url = if tls {
        format!("https://localhost:{}", grpc_addr.port())
    } else {
        format!("http://{grpc_addr}")
    };
    tasks
        .into_iter()
        .map(|(name, task)| {
            let ctx = TaskContext {
                stop: StopSignal(stop.clone()),
                grpc_addr,
                grpc_url: grpc_url.clone(),
            };
            (name, tokio::spawn(task(ctx)))
        })
        .collect()
}

/// Serves `routes` on the connections of `listener` until `stop`: over
/// TLS when configured (its certificate reloaded until `stop`), else in
/// clear, with the minutely warning of a clear listener at `clear_on`
/// beyond loopback.
#[allow(
    clippy::too_many_arguments,
    reason = "the server's parts, passed once from run"
)]
async fn serve_connections(
    listener: TcpListener,
    bounds: connections::Bounds,
    tls: Option<std::sync::Arc<tls::Tls>>,
    clear_on: Option<SocketAddr>,
    routes: RoutesBuilder,
    max_concurrent_streams: u32,
    auth: AuthLayer,
    stop: watch::Receiver<bool>,
) -> Result<(), tonic::transport::Error> {
    let plain = connections::incoming(listener, bounds, stop.clone());
    let stopped = {
        let mut stop = stop.clone();
        async move {
            let _ = stop.wait_for(|s| *s).await;
        }
    };
    if let Some(addr) = clear_on {
        let mut stop = stop.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_mins(1)) => tls::warn_clear(addr),
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        });
    }
    match tls {
        Some(tls) => {
            tokio::spawn(std::sync::Arc::clone(&tls).reload_until(stop.clone()));
            let incoming = tls.accept(plain, HANDSHAKE_TIMEOUT);
            serve_grpc(routes, incoming, max_concurrent_streams, auth, stopped).await
        }
        None => serve_grpc(routes, plain, max_concurrent_streams, auth, stopped).await,
    }
}

/// Tells a background task that the server is shutting down.
#[derive(Debug, Clone)]
pub struct StopSignal(watch::Receiver<bool>);

impl StopSignal {
    /// Completes once shutdown has started (immediately if it already has).
    pub async fn stopped(&mut self) {
        // An error means the sender is gone, which also means stop.
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    /// Whether shutdown has started.
    pub fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }
}

/// What a background task is started with.
#[derive(Debug, Clone)]
pub struct TaskContext {
    /// Resolves when shutdown starts.
    pub stop: StopSignal,
    /// The address the gRPC API listens on (the real port when 0 was asked
    /// for), so a task can call a service of its own server.
    pub grpc_addr: SocketAddr,
    /// The URL of this server: `http://ADDR`, or with TLS
    /// `https://localhost:PORT` (its certificate must then name
    /// `localhost` for a task to call it).
    pub grpc_url: String,
}

type Task = Box<dyn FnOnce(TaskContext) -> BoxFuture + Send>;
type BoxFuture = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// A set of gRPC services to serve together, with their health entries and
/// the background tasks that run beside them.
#[derive(Default)]
pub struct Services {
    routes: RoutesBuilder,
    names: Vec<&'static str>,
    tasks: Vec<(&'static str, Task)>,
    access_sink: Option<Arc<dyn AccessSink>>,
    catalog: Option<Arc<dyn ClusterCatalog>>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("names", &self.names)
            .field(
                "tasks",
                &self.tasks.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Services {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a tonic service; it is reported `SERVING` while the server runs.
    #[must_use]
    pub fn with<S>(mut self, service: S) -> Self
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Error = Infallible,
                Response = http::Response<tonic::body::Body>,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.names.push(S::NAME);
        self.routes.add_service(service);
        self
    }

    /// Adds a background task (an ingestion pipeline, a retention loop). It
    /// starts when the server serves, is told to stop when shutdown starts,
    /// and is awaited (within the grace period) before the server returns.
    #[must_use]
    pub fn task<F, Fut>(mut self, name: &'static str, task: F) -> Self
    where
        F: FnOnce(TaskContext) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.tasks.push((
            name,
            Box::new(move |stop| Box::pin(task(stop)) as BoxFuture),
        ));
        self
    }

    /// Stores the access records of this process's calls in `sink` (the
    /// indexer does, when it runs in the process) instead of sending them
    /// to `server.access_log.indexer_url`.
    #[must_use]
    pub fn access_sink(mut self, sink: Arc<dyn AccessSink>) -> Self {
        self.access_sink = Some(sink);
        self
    }

    /// Reviews reading per cluster (Kubernetes authorization) over the
    /// clusters `catalog` names: the process's store.
    #[must_use]
    pub fn cluster_catalog(mut self, catalog: Arc<dyn ClusterCatalog>) -> Self {
        self.catalog = Some(catalog);
        self
    }

    /// The fully qualified names of the services in this set.
    pub fn names(&self) -> &[&'static str] {
        &self.names
    }
}

/// A server whose listeners are bound, ready to [`run`](BoundServer::run).
///
/// Binding first lets the caller learn the real addresses (when port 0 was
/// asked for) before serving.
#[derive(Debug)]
pub struct BoundServer {
    services: Services,
    grpc: TcpListener,
    metrics: Option<TcpListener>,
    grace: Duration,
    bounds: connections::Bounds,
    max_concurrent_streams: u32,
    tls: Option<std::sync::Arc<tls::Tls>>,
    /// Serving in clear beyond loopback (allowed by `insecure_listen`):
    /// warned about every minute.
    clear_on_network: bool,
    auth: AuthLayer,
    /// Stores the access records, when calls are recorded.
    flusher: Option<access_log::Flusher>,
}

/// Binds the listeners of `config` for `services`.
pub async fn bind(config: &ServerConfig, services: Services) -> Result<BoundServer, ServerError> {
    check_listen(config.listen, config.tls.as_ref(), config.insecure_listen)?;
    let tls = config
        .tls
        .as_ref()
        .map(tls::Tls::new)
        .transpose()?
        .map(std::sync::Arc::new);
    let mut auth = AuthLayer::new(
        &config.auth,
        config.requires_client_certificates(),
        services.catalog.clone(),
    )
    .await?;
    let flusher = match access_log(config, &services)? {
        Some((log, flusher)) => {
            auth = auth.recording(log);
            Some(flusher)
        }
        None => None,
    };
    if !auth.enabled() && !config.listen.ip().is_loopback() {
        tracing::warn!(listen = %config.listen, "access control is off (no client CA, no token file): every caller that reaches this address may read, export and delete the trail");
    }
    let grpc = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Bind {
            what: "gRPC",
            addr: config.listen,
            source,
        })?;
    let metrics = if config.metrics {
        // Install the recorder before any request is counted.
        auditrail_telemetry::metrics_handle()?;
        Some(
            TcpListener::bind(config.metrics_listen)
                .await
                .map_err(|source| ServerError::Bind {
                    what: "metrics",
                    addr: config.metrics_listen,
                    source,
                })?,
        )
    } else {
        None
    };
    Ok(BoundServer {
        services,
        grpc,
        metrics,
        grace: Duration::from_secs(config.shutdown_grace_secs),
        bounds: connections::Bounds {
            max_connections: config.max_connections,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            idle_timeout: Duration::from_secs(config.idle_timeout_secs),
        },
        max_concurrent_streams: config.max_concurrent_streams,
        tls,
        clear_on_network: config.tls.is_none() && !config.listen.ip().is_loopback(),
        auth,
        flusher,
    })
}

/// The access log of a process serving `services`, when some of their
/// calls are recorded: into the process's own indexer when it runs one,
/// else to `server.access_log.indexer_url`. A process with recorded calls
/// and neither does not start, unless recording is turned off.
fn access_log(
    config: &ServerConfig,
    services: &Services,
) -> Result<Option<(access_log::AccessLog, access_log::Flusher)>, ServerError> {
    let recorded: Vec<&str> = services
        .names
        .iter()
        .copied()
        .filter(|name| auditrail_access::service_recorded(name))
        .collect();
    if recorded.is_empty() {
        return Ok(None);
    }
    let settings = &config.access_log;
    if !settings.enabled {
        tracing::warn!(
            services = ?recorded,
            "access records are off (server.access_log.enabled = false): reads and changes of the trail leave no record"
        );
        return Ok(None);
    }
    settings.check().map_err(ServerError::AccessLog)?;
    let sink: Arc<dyn AccessSink> = match (&services.access_sink, &settings.indexer_url) {
        (Some(own), _) => Arc::clone(own),
        (None, Some(url)) => Arc::new(
            access_log::RemoteSink::new(url, &settings.client).map_err(|e| {
                ServerError::AccessLog(format!("server.access_log.indexer_url: {e}"))
            })?,
        ),
        (None, None) => {
            return Err(ServerError::AccessLog(format!(
                "{} serve calls that must leave an access record, and no indexer runs in this \
                 process to store them: set server.access_log.indexer_url (with \
                 [server.access_log.client] for its TLS and token; the identity needs the \
                 record_access permission), or turn recording off with \
                 server.access_log.enabled = false",
                recorded.join(", ")
            )));
        }
    };
    Ok(Some(access_log::AccessLog::new(settings, sink)))
}

impl BoundServer {
    /// The address the gRPC API is listening on.
    pub fn grpc_addr(&self) -> std::io::Result<SocketAddr> {
        self.grpc.local_addr()
    }

    /// The address of the metrics endpoint, when enabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves until `shutdown` completes, then drains: health turns
    /// `NOT_SERVING`, no new connections are accepted, in-flight calls get the
    /// grace period to finish, and what is still open after it is dropped.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServerError> {
        let local_addr = self.grpc_addr().map_err(|source| ServerError::Bind {
            what: "gRPC",
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            source,
        })?;
        let grpc_addr = self
            .grpc_addr()
            .map_or_else(|e| format!("unknown ({e})"), |a| a.to_string());
        let metrics_addr = self
            .metrics_addr()
            .map_or_else(|| "disabled".to_owned(), |a| a.to_string());
        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        for name in &self.services.names {
            health_reporter
                .set_service_status(*name, ServingStatus::Serving)
                .await;
        }
        health_reporter
            .set_service_status("", ServingStatus::Serving)
            .await;

        let mut routes = self.services.routes;
        add_reflection(&mut routes)?;
        routes.add_service(health_service);

        // `stopping` flips once: it stops the listeners and starts the grace clock.
        let (stop_tx, stop_rx) = watch::channel(false);
        let wait_stop = |mut rx: watch::Receiver<bool>| async move {
            // An error means the sender is gone, which also means stop.
            let _ = rx.wait_for(|stop| *stop).await;
        };

        let tasks = spawn_tasks(
            self.services.tasks,
            &stop_rx,
            local_addr,
            self.tls.is_some(),
        );

        let metrics_task = self.metrics.map(|listener| {
            tokio::spawn(auditrail_telemetry::serve_metrics(
                listener,
                wait_stop(stop_rx.clone()),
            ))
        });

        tracing::info!(
            grpc_addr = %grpc_addr,
            metrics_addr = %metrics_addr,
            services = ?self.services.names,
            "serving"
        );

        tokio::spawn(self.auth.clone().reload_until(stop_rx.clone()));
        // The flusher ends when the server's layers (holding the buffer)
        // are gone and every record taken from it is stored.
        let flusher = self.flusher.map(|f| tokio::spawn(f.run()));
        let serve = serve_connections(
            self.grpc,
            self.bounds,
            self.tls,
            self.clear_on_network.then_some(local_addr),
            routes,
            self.max_concurrent_streams,
            self.auth,
            stop_rx.clone(),
        );
        tokio::pin!(serve);

        let grace = self.grace;
        let names = self.services.names.clone();
        let stopping = async {
            shutdown.await;
            tracing::info!(
                grace_secs = grace.as_secs(),
                "shutting down: draining in-flight calls"
            );
            for name in names {
                health_reporter
                    .set_service_status(name, ServingStatus::NotServing)
                    .await;
            }
            health_reporter
                .set_service_status("", ServingStatus::NotServing)
                .await;
            let _ = stop_tx.send(true);
            tokio::time::sleep(grace).await;
        };

        let result = tokio::select! {
            result = &mut serve => result.map_err(ServerError::from),
            () = stopping => {
                tracing::warn!("grace period over: closing the calls still open");
                Ok(())
            }
        };
        // Whatever ended the server, background tasks stop now.
        let _ = stop_tx.send(true);
        // Background tasks were told to stop with the listeners; give them
        // what is left of the grace period to finish their current step.
        join_tasks(tasks, grace).await;
        if let Some(flusher) = flusher {
            await_flusher(flusher, grace).await;
        }
        if let Some(task) = metrics_task {
            match tokio::time::timeout(Duration::from_secs(1), task).await {
                Ok(Ok(Err(err))) => tracing::warn!(error = %err, "metrics endpoint failed"),
                Ok(Err(err)) => tracing::warn!(error = %err, "metrics task panicked"),
                Ok(Ok(Ok(()))) | Err(_) => {}
            }
        }
        tracing::info!("stopped");
        result
    }
}

/// The life of a process after its configuration is loaded: set up
/// telemetry, bind, serve until SIGTERM/SIGINT, drain, flush traces.
pub async fn run_service(
    name: &'static str,
    server: &ServerConfig,
    log: &auditrail_telemetry::LogConfig,
    otlp: &auditrail_telemetry::OtlpConfig,
    services: Services,
) -> Result<(), ServerError> {
    let telemetry = auditrail_telemetry::init(name, log, otlp)?;
    install_panic_hook();
    install_crypto_provider();
    let open_files = raise_nofile_limit();
    tracing::debug!(?open_files, "open-file limit");
    let shutdown = shutdown_signal();
    let server = bind(server, services).await?;
    let result = server.run(shutdown).await;
    telemetry.shutdown();
    result
}

/// Chooses rustls' cryptography (ring) for the whole process. kube and the
/// AWS SDK compile in both ring and aws-lc-rs; with two providers rustls
/// refuses to guess and the first TLS connection (a kube client to an
/// https API server, an https Elasticsearch) panics. Installing one at
/// start, before any client is built, makes every TLS client work. An error
/// only means one is installed already.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Most characters of a request value an error message repeats.
const ECHO_CHARS: usize = 80;

/// A request value as an error message repeats it: quoted, whole when short,
/// else its start and its length, so that a huge input is never echoed back
/// (clients refuse messages that large, and logs fill up).
pub fn echo(text: &str) -> String {
    match text.char_indices().nth(ECHO_CHARS) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes)", &text[..cut], text.len()),
    }
}

/// The answer of an RPC whose implementation has not been built yet: honest
/// `UNIMPLEMENTED`, never a made-up result.
pub fn not_built(rpc: &str) -> tonic::Status {
    tonic::Status::unimplemented(format!(
        "{rpc} is not implemented yet in this auditrail build"
    ))
}

/// The exit code of a binary's `main`: success, or the error and its causes
/// on one line of standard error (no backtrace: a bad flag or an unreachable
/// port is a message for an operator, not a bug report) and code 1.
pub fn exit_code<E: std::fmt::Display>(result: Result<(), E>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod echo_tests {
    #[test]
    fn long_values_are_cut() {
        assert_eq!(super::echo("abc"), "\"abc\"");
        let long = "é".repeat(1_000_000);
        let shown = super::echo(&long);
        assert!(shown.len() < 200, "{shown}");
        assert!(shown.ends_with("… (2000000 bytes)"), "{shown}");
    }
}
