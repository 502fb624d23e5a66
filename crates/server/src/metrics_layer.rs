//! Per-method gRPC request metrics.
//!
//! Records, for every call to a known method:
//! - `grpc_server_started_total{service, method}`: calls started;
//! - `grpc_server_handled_total{service, method, code}`: calls answered with
//!   an error status in the response headers (trailers-only responses, which
//!   is how tonic answers a failed unary call), or `code="OK"` when the
//!   headers carry no status (the status then travels in the trailers);
//! - `grpc_server_handling_seconds{service, method}`: time to response headers.
//!
//! Paths that are not `/<package>.<Service>/<Method>` are counted under
//! `method="unknown"`, so a client sending random paths cannot blow up the
//! label set.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tower::{Layer, Service};

/// The tower layer that records the metrics above.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcMetricsLayer;

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics { inner }
    }
}

/// The service produced by [`GrpcMetricsLayer`].
#[derive(Debug, Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
}

/// Splits `/auditrail.v1.QueryService/Search` into service and method.
fn split_path(path: &str) -> (String, String) {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    match (parts.next(), parts.next()) {
        (Some(service), Some(method))
            if !service.is_empty()
                && !method.is_empty()
                && !method.contains('/')
                && service.len() + method.len() <= 128 =>
        {
            (service.to_owned(), method.to_owned())
        }
        _ => ("unknown".to_owned(), "unknown".to_owned()),
    }
}

/// The method label of a path: `Service/Method`, or `unknown`.
pub(crate) fn method_label(path: &str) -> String {
    let (service, method) = split_path(path);
    format!("{service}/{method}")
}

/// gRPC's canonical name of `code` (`INVALID_ARGUMENT`), as metrics label
/// it and gRPC tools print it.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

impl<S, B, R> Service<http::Request<B>> for GrpcMetrics<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let (service, method) = split_path(request.uri().path());
        let start = Instant::now();
        metrics::counter!("grpc_server_started_total", "service" => service.clone(), "method" => method.clone())
            .increment(1);
        let future = self.inner.call(request);
        Box::pin(async move {
            let result = future.await;
            if let Ok(response) = &result {
                let code = response
                    .headers()
                    .get("grpc-status")
                    .map_or(tonic::Code::Ok, |v| tonic::Code::from_bytes(v.as_bytes()));
                metrics::counter!(
                    "grpc_server_handled_total",
                    "service" => service.clone(),
                    "method" => method.clone(),
                    "code" => code_name(code)
                )
                .increment(1);
            }
            metrics::histogram!("grpc_server_handling_seconds", "service" => service, "method" => method)
                .record(start.elapsed().as_secs_f64());
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::split_path;

    #[test]
    fn paths_split_into_service_and_method() {
        assert_eq!(
            split_path("/auditrail.v1.QueryService/Search"),
            ("auditrail.v1.QueryService".into(), "Search".into())
        );
        for bad in ["/", "", "/only", "/a/b/c", "//x"] {
            assert_eq!(
                split_path(bad),
                ("unknown".into(), "unknown".into()),
                "{bad}"
            );
        }
    }
}
