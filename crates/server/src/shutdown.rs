//! Waiting for the signal to stop.

use std::future::Future;

/// Registers SIGTERM (what Kubernetes sends) and SIGINT (Ctrl-C) handlers
/// *now*, and returns a future that completes when either arrives.
///
/// Registering eagerly matters: a signal that arrives after the server said
/// it is serving but before the future is first polled must still mean
/// "drain and exit 0", not the default disposition (immediate death). Must be
/// called inside a Tokio runtime. A handler that cannot be installed is
/// logged and that signal is then ignored; the other still works.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let register = |kind: SignalKind, name: &'static str| match signal(kind) {
            Ok(stream) => Some(stream),
            Err(err) => {
                tracing::error!(signal = name, error = %err, "cannot install signal handler");
                None
            }
        };
        let mut term = register(SignalKind::terminate(), "SIGTERM");
        let mut int = register(SignalKind::interrupt(), "SIGINT");
        async move {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(term.take()) => tracing::info!(signal = "SIGTERM", "received"),
                () = wait(int.take()) => tracing::info!(signal = "SIGINT", "received"),
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::info!(signal = "Ctrl-C", "received");
            } else {
                std::future::pending::<()>().await;
            }
        }
    }
}
