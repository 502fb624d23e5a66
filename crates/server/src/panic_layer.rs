//! A panic in a request handler fails that call, not the connection.
//!
//! Without this layer a panicking handler unwinds through hyper's
//! connection task: the client sees its stream reset (`CANCELLED …
//! RST_STREAM`), every other call on the connection fails with it, and
//! nothing says why. With it, the call answers `INTERNAL` with a message
//! that says the failure was logged, the panic is logged at ERROR with the
//! method (its message, location and backtrace are logged by the panic
//! hook, [`install_panic_hook`]), and `grpc_server_panics_total{method}`
//! counts it.

use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use tower::{Layer, Service};

/// The tower layer that turns handler panics into `INTERNAL`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CatchPanicLayer;

impl<S> Layer<S> for CatchPanicLayer {
    type Service = CatchPanic<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CatchPanic { inner }
    }
}

/// The service produced by [`CatchPanicLayer`].
#[derive(Debug, Clone)]
pub struct CatchPanic<S> {
    inner: S,
}

/// The future of one call, polled inside `catch_unwind`.
pub struct CatchPanicFuture<F> {
    inner: Pin<Box<F>>,
    method: String,
}

impl<F, R, E> Future for CatchPanicFuture<F>
where
    F: Future<Output = Result<http::Response<R>, E>>,
    R: Default,
{
    type Output = Result<http::Response<R>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.inner.as_mut();
        let Ok(poll) = std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) else {
            tracing::error!(
                method = %self.method,
                "a request handler panicked; the call failed with INTERNAL"
            );
            metrics::counter!("grpc_server_panics_total", "method" => self.method.clone())
                .increment(1);
            return Poll::Ready(Ok(tonic::Status::internal(
                "the server failed on this call (a bug, logged on the server); other calls are \
                 not affected",
            )
            .into_http()));
        };
        poll
    }
}

impl<S, B, R> Service<http::Request<B>> for CatchPanic<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    R: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = CatchPanicFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = crate::metrics_layer::method_label(request.uri().path());
        CatchPanicFuture {
            inner: Box::pin(self.inner.call(request)),
            method,
        }
    }
}

/// Logs every panic through `tracing` (message, location and backtrace) in
/// addition to the default hook's line on standard error, so that a panic
/// reaches the structured logs and their collectors.
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_owned());
        let location = info
            .location()
            .map_or_else(String::new, |l| format!("{}:{}", l.file(), l.line()));
        let backtrace = std::backtrace::Backtrace::force_capture();
        tracing::error!(%message, %location, %backtrace, "panic");
        default(info);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    #[derive(Clone)]
    struct Panics;

    impl Service<http::Request<()>> for Panics {
        type Response = http::Response<tonic::body::Body>;
        type Error = Infallible;
        type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: http::Request<()>) -> Self::Future {
            Box::pin(async move {
                assert!(request.uri().path() != "/a.B/Boom", "boom");
                Ok(http::Response::new(tonic::body::Body::default()))
            })
        }
    }

    #[tokio::test]
    async fn a_panicking_call_answers_internal_and_others_go_on() {
        let mut service = CatchPanicLayer.layer(Panics);
        let call = |path: &str| {
            http::Request::builder()
                .uri(path)
                .body(())
                .expect("request")
        };
        let answer = service.call(call("/a.B/Boom")).await.expect("answer");
        let status = tonic::Status::from_header_map(answer.headers()).expect("a status");
        assert_eq!(status.code(), tonic::Code::Internal);
        assert!(
            status.message().contains("logged on the server"),
            "{status:?}"
        );
        let answer = service.call(call("/a.B/Fine")).await.expect("answer");
        assert!(tonic::Status::from_header_map(answer.headers()).is_none());
    }
}
