//! The periodic retention task: events older than the configured age go.

use std::sync::Arc;
use std::time::Duration;

use auditrail_store::Store;

/// Deletes events older than `days` every `interval`, until `stop` resolves
/// ([`Store::expire_before`]: a backend with its own lifecycle, installed
/// from the same retention, does only what that lifecycle cannot).
/// `days == 0` disables retention. Failures are logged and retried at the
/// next tick: retention is housekeeping, never a reason to stop ingesting.
pub async fn run_retention(
    store: Arc<dyn Store>,
    days: u32,
    interval: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    if days == 0 {
        tracing::info!("retention disabled: events are kept forever");
        stop.await;
        return;
    }
    let age = jiff::SignedDuration::from_hours(i64::from(days) * 24);
    let mut ticker = tokio::time::interval(interval);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = ticker.tick() => {}
        }
        let Ok(cutoff) = jiff::Timestamp::now().checked_sub(age) else {
            continue;
        };
        match store.expire_before(cutoff).await {
            Ok(0) => tracing::debug!(%cutoff, "retention: nothing to delete"),
            Ok(deleted) => {
                metrics::counter!("indexer_retention_deleted_total", "trigger" => "schedule")
                    .increment(deleted);
                tracing::warn!(
                    %cutoff,
                    deleted,
                    retention_days = days,
                    requested_by = "the retention schedule (retention_days)",
                    "retention deleted the events older than the cut-off"
                );
            }
            Err(err) => tracing::warn!(error = %err, "retention failed; retrying at the next tick"),
        }
    }
}
