//! Events the indexer did not store because they are older than its
//! retention (`EXPIRED` rejects): handled, not malformed. They are counted
//! per source (`ingestor_events_expired_total{source}`, `GetStatus`) instead
//! of dead-lettered, their checkpoints advance like any other event's, and
//! each source logs them at WARN once, then again only each time its count
//! has grown tenfold (a handful of lines even for millions of events).

use auditrail_proto::v1;

use crate::status::StatusBoard;

/// Whether `reject` says the event is past the indexer's retention.
pub fn is_expired(reject: &v1::Reject) -> bool {
    reject.code == v1::RejectReason::Expired as i32
}

/// One source's expired events and when they are logged.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ExpiredLog {
    count: u64,
    /// The count at which the next log line is due (0: the first one).
    next_log_at: u64,
}

impl ExpiredLog {
    /// Adds `n` expired events; returns the total when it is to be logged:
    /// the first time, then each time the total reached ten times the total
    /// last logged.
    pub fn add(&mut self, n: u64) -> Option<u64> {
        if n == 0 {
            return None;
        }
        self.count = self.count.saturating_add(n);
        if self.count < self.next_log_at {
            return None;
        }
        self.next_log_at = self.count.saturating_mul(10);
        Some(self.count)
    }

    /// Expired events counted so far.
    pub fn count(&self) -> u64 {
        self.count
    }
}

/// Counts `n` expired events of `source` (metric, status board) and logs
/// them when `log` says so.
pub(crate) fn record(
    status: &StatusBoard,
    log: &mut ExpiredLog,
    source: &str,
    n: u64,
    retention_days: u32,
) {
    if n == 0 {
        return;
    }
    metrics::counter!("ingestor_events_expired_total", "source" => source.to_owned()).increment(n);
    status.add_expired(source, n);
    if let Some(total) = log.add(n) {
        tracing::warn!(
            source = %source,
            expired = total,
            retention_days,
            "{}",
            message(source, total, retention_days)
        );
    }
}

/// The WARN line about expired events.
pub fn message(source: &str, total: u64, retention_days: u32) -> String {
    format!(
        "{total} events read from {source} so far are older than the retention of \
         {retention_days} days and were not stored (they are counted in ingest-status and \
         ingestor_events_expired_total, not dead-lettered); --retention-days 0 on \
         the indexer (indexer.retention_days) keeps everything"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_first_then_each_time_the_count_grew_tenfold() {
        let mut log = ExpiredLog::default();
        assert_eq!(log.add(0), None, "nothing expired, nothing logged");
        assert_eq!(log.add(3), Some(3));
        let logged: Vec<u64> = (0..1_000).filter_map(|_| log.add(2_000)).collect();
        // The total 3 + 2000 k is logged at 2003, then once it reaches
        // 20 030 (22 003), then 220 030 (222 003); 2 220 030 is never reached.
        assert_eq!(logged, vec![2_003, 22_003, 222_003]);
        assert_eq!(log.count(), 2_000_003);
    }

    #[test]
    fn the_message_names_the_count_retention_and_the_flag_that_keeps_them() {
        let text = message("/logs/kube-audit.log", 37, 91);
        assert!(text.starts_with("37 events read from /logs/kube-audit.log"));
        assert!(text.contains("older than the retention of 91 days"));
        assert!(text.contains("--retention-days 0"));
    }
}
