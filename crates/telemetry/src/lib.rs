//! Observability, set up the same way in every auditrail binary.
//!
//! - Logs: `tracing` with an EnvFilter, as text for people or JSON lines for
//!   log pipelines ([`LogConfig`]).
//! - Traces: exported over OTLP/gRPC when an endpoint is configured
//!   ([`OtlpConfig`]), otherwise not collected at all.
//! - Metrics: the `metrics` facade, recorded by a process-wide Prometheus
//!   recorder and served at `GET /metrics` by [`serve_metrics`].
//!
//! Libraries only ever use the `tracing` and `metrics` macros; which backends
//! receive them is decided here, once, by the binary.

mod logs;
mod prometheus;

pub use logs::{LogConfig, LogFormat, OtlpConfig, TelemetryGuard, init};
pub use prometheus::{metrics_handle, serve_metrics};

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The log filter did not parse.
    #[error("invalid log filter {filter:?}: {source}")]
    Filter {
        /// The filter as configured.
        filter: String,
        /// The parser's complaint.
        source: tracing_subscriber::filter::ParseError,
    },
    /// The OTLP exporter could not be built (for example a malformed URL).
    #[error("cannot set up OTLP export to {endpoint:?}: {source}")]
    Otlp {
        /// The endpoint as configured.
        endpoint: String,
        /// The exporter's complaint.
        source: opentelemetry_otlp::ExporterBuildError,
    },
    /// A global subscriber was already installed in this process.
    #[error("a tracing subscriber is already installed: {0}")]
    AlreadyInstalled(String),
    /// The Prometheus recorder could not be installed.
    #[error("cannot install the Prometheus recorder: {0}")]
    Metrics(String),
    /// The metrics endpoint failed.
    #[error("metrics endpoint failed: {0}")]
    Serve(#[from] std::io::Error),
}
