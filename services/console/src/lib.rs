//! The console service: auditrail in a browser. It serves the pages
//! (timeline, event, resource history with diffs, reports, ingest health)
//! and a JSON API under `/api/v1` that mirrors the read RPCs, and it
//! holds no data of its own: every answer comes from the query service,
//! the reporter, the ingestor and the indexer over gRPC, called with the
//! signed-in user's token, so a user sees in the console exactly what
//! their permissions allow on the command line.
//!
//! - [`settings`]: the `[console]` table.
//! - [`api`]: the JSON API's endpoints.
//! - [`params`]: strict query strings.
//! - [`backend`]: the services' channels; the user's token and the
//!   browser's address on each call.
//! - [`session`]: sign-in sessions and their CSRF tokens.
//! - [`json`]: answers in the proto3 JSON mapping.
//! - [`assets`]: the pages, embedded in the binary.
//! - [`error`]: the one error shape and its HTTP statuses.
//!
//! Like every service it runs in a process of `auditrail-compose`: beside
//! the others in `auditrail up` (then it calls its own process), or alone
//! (`--service console`, one workload of the chart). Its HTTP server is a
//! background task of that process, stopped with it.

pub mod api;
pub mod assets;
pub mod backend;
pub mod error;
pub mod json;
pub mod params;
pub mod session;
pub mod settings;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use auditrail_server::{Services, StopSignal};
use axum::Router;
use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use http::{HeaderValue, header};

pub use settings::Settings;

use crate::backend::{Backends, Urls, X_FORWARDED_FOR};
use crate::session::Sessions;

/// Which of the services the console calls run in its own process (their
/// address is then the process's own).
#[derive(Debug, Clone, Copy, Default)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "one switch per service the console calls, set by the composition table"
)]
pub struct Shared {
    /// The query service.
    pub query: bool,
    /// The reporter.
    pub reporter: bool,
    /// The ingestor.
    pub ingestor: bool,
    /// The indexer.
    pub indexer: bool,
}

/// Why the console cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting out of range.
    #[error(transparent)]
    Settings(#[from] settings::SettingsError),
    /// A service's address or TLS files are wrong.
    #[error("[console] {0}")]
    Client(#[from] auditrail_server::client::ClientError),
    /// The HTTP port cannot be bound.
    #[error("[console] listen = \"{addr}\": cannot listen there: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// What every request handler shares.
#[derive(Debug)]
pub struct App {
    /// The services.
    pub backends: Backends,
    /// Signed-in users.
    pub sessions: Sessions,
}

/// The console service.
#[derive(Debug)]
pub struct Console;

impl auditrail_server::Service for Console {
    const NAME: &'static str = "console";
    const DEFAULT_PORT: u16 = auditrail_server::ports::CONSOLE.grpc;
    const DEFAULT_METRICS_PORT: u16 = auditrail_server::ports::CONSOLE.metrics;
    type Settings = Settings;
    type Shared = Shared;
    type Error = StartError;

    fn check(settings: &Settings) -> Result<(), Self::Error> {
        settings.validate().map_err(StartError::from)
    }

    fn add_to(
        services: Services,
        settings: &Settings,
        shared: Shared,
    ) -> Result<Services, Self::Error> {
        settings.validate()?;
        let addr = settings.listen_addr()?;
        // Checked now, so a bad URL or TLS file stops the start.
        Backends::connect(&urls(settings, shared, None), &settings.client)?;
        // Bound now, so a port in use stops the start too.
        let listener = std::net::TcpListener::bind(addr)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|source| StartError::Listen { addr, source })?;
        let settings = settings.clone();
        Ok(services.task("console", move |ctx| async move {
            let urls = urls(&settings, shared, Some(&ctx.grpc_url));
            let backends = match Backends::connect(&urls, &settings.client) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "the console does not serve: it cannot reach the services (with [server.tls] in this process, set [console.client] tls_ca)");
                    return;
                }
            };
            let app = Arc::new(App {
                backends,
                sessions: Sessions::new(
                    Duration::from_secs(settings.session_ttl_mins * 60),
                    settings.max_sessions,
                ),
            });
            let served = match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => serve(listener, app, ctx.stop).await,
                Err(e) => Err(e),
            };
            if let Err(e) = served {
                tracing::error!(error = %e, listen = %addr, "the console stopped");
            }
        }))
    }
}

/// The services' addresses: the process's own (`own`, once known) for
/// those it runs, the settings' for the others.
fn urls(settings: &Settings, shared: Shared, own: Option<&str>) -> Urls {
    let pick = |here: bool, configured: &str| match (here, own) {
        (true, Some(own)) => own.to_owned(),
        _ => configured.to_owned(),
    };
    Urls {
        query: pick(shared.query, &settings.query_url),
        reporter: pick(shared.reporter, &settings.reporter_url),
        ingestor: pick(shared.ingestor, &settings.ingestor_url),
        indexer: pick(shared.indexer, &settings.indexer_url),
    }
}

/// Serves the console on `listener` until `stop`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    mut stop: StopSignal,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    tracing::info!(console_addr = %local, url = %format!("http://{local}/"), "console serving");
    let service = router(app).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(async move { stop.stopped().await })
        .await
}

/// Every route of the console.
pub fn router(app: Arc<App>) -> Router {
    let api = Router::new()
        .route(
            "/session",
            get(api::get_session)
                .post(api::sign_in)
                .delete(api::sign_out),
        )
        .route("/search", get(api::search))
        .route("/histogram", get(api::histogram))
        .route("/events/{id}", get(api::event))
        .route("/history", get(api::history))
        .route("/diff", get(api::diff))
        .route("/export", get(api::export))
        .route("/ingest", get(api::ingest))
        .route("/reports", get(api::reports))
        .route("/reports/definitions", get(api::report_definitions))
        .route("/reports/run", post(api::run_report))
        .route("/reports/{id}", get(api::report))
        .route("/reports/{id}/download", get(api::report_download))
        .fallback(api::no_such_endpoint)
        .with_state(app);
    let pages = Router::new()
        .route("/", get(assets::page))
        .route("/timeline", get(assets::page))
        .route("/event/{id}", get(assets::page))
        .route("/history", get(assets::page))
        .route("/reports", get(assets::page))
        .route("/ingest", get(assets::page))
        .route("/signin", get(assets::page))
        .route("/assets/{name}", get(assets::asset))
        .route("/healthz", get(|| async { "ok\n" }));
    pages
        .nest("/api/v1", api)
        .fallback(assets::not_found)
        .layer(axum::middleware::from_fn(observe))
        .layer(axum::middleware::from_fn(forward_for))
}

/// Most addresses of `X-Forwarded-For` the console passes on, the nearest
/// (the browser's last): the services keep no more.
const MAX_FORWARDED: usize = 9;

/// Appends the address the request came from to its `X-Forwarded-For`,
/// as a proxy does, so that the services' access records name the
/// browser (or the Ingress before it) and not only the console. Earlier
/// entries are what the client says; values that are not IP addresses are
/// dropped, and at most [`MAX_FORWARDED`] are kept.
async fn forward_for(mut request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let mut chain: Vec<IpAddr> = request
        .headers()
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    chain.extend(peer);
    let skip = chain.len().saturating_sub(MAX_FORWARDED);
    let text = chain
        .iter()
        .skip(skip)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let headers = request.headers_mut();
    headers.remove(X_FORWARDED_FOR);
    if let Ok(value) = HeaderValue::from_str(&text)
        && !text.is_empty()
    {
        headers.insert(X_FORWARDED_FOR, value);
    }
    next.run(request).await
}

/// What every answer carries: the strict Content-Security-Policy (only the
/// console's own scripts and styles, no inline code, no framing) and the
/// other protective headers; plus the request's metrics and debug log.
async fn observe(request: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().clone();
    let api = request.uri().path().starts_with("/api/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if api {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    let status = response.status().as_u16().to_string();
    let elapsed = start.elapsed();
    metrics::counter!("console_http_requests_total", "route" => route.clone(), "status" => status.clone())
        .increment(1);
    metrics::histogram!("console_http_request_duration_seconds", "route" => route.clone())
        .record(elapsed.as_secs_f64());
    tracing::debug!(%method, %route, %status, elapsed_ms = elapsed.as_secs_f64() * 1000.0, "console request");
    response
}
