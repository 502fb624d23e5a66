//! The `[reporter]` configuration table: where the reporter reads the
//! trail, how many reports it makes at once, how long it waits for the
//! trail to catch up, and how it retries.
//!
//! The reporter reads the trail only through the query service's gRPC API
//! (`query_url`), whether the query service runs in the same process
//! (`auditrail up`, where the process's own address is used) or in another
//! pod (the chart): one path, and access control and the access trail
//! apply to reports as to every other read.

use auditrail_server::client::ClientConfig;
use serde::{Deserialize, Serialize};

/// The reporter's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// gRPC address of the query service whose trail reports replay
    /// (`https://` with `query_client.tls_ca`). When the process also runs
    /// the query service, its own address is used instead.
    pub query_url: String,
    /// How the reporter reaches the query service: TLS CA, client
    /// certificate, bearer token (`[reporter.query_client]`). With access
    /// control on, its identity needs the `search` permission.
    #[serde(skip_serializing_if = "ClientConfig::is_empty")]
    pub query_client: ClientConfig,
    /// The cluster of definitions and snapshots that name none.
    pub default_cluster: String,
    /// Reports generated at the same time, at most.
    pub max_concurrent: usize,
    /// Seconds after an interval's end before its scheduled report starts,
    /// so that the trail has caught up with it (the ingestor's lag).
    pub trail_lag_secs: u64,
    /// Missed schedule ticks older than this many hours are not caught up
    /// (at most 168: 7 days).
    pub max_catch_up_hours: u64,
    /// Attempts per report before it is FAILED (at least 1).
    pub max_attempts: u32,
    /// Seconds before the first retry; each retry doubles it.
    pub retry_backoff_secs: u64,
    /// Seconds between two looks at the schedules.
    pub schedule_poll_secs: u64,
}

/// The most a report run may catch up: 7 days.
pub const MAX_CATCH_UP_HOURS: u64 = 7 * 24;

impl Default for Settings {
    fn default() -> Self {
        Self {
            query_url: auditrail_server::ports::local_url(auditrail_server::ports::QUERY),
            query_client: ClientConfig::default(),
            default_cluster: "cluster".to_owned(),
            max_concurrent: 2,
            trail_lag_secs: 30 * 60,
            max_catch_up_hours: MAX_CATCH_UP_HOURS,
            max_attempts: 3,
            retry_backoff_secs: 30,
            schedule_poll_secs: 30,
        }
    }
}

/// A setting out of its range.
#[derive(Debug, thiserror::Error)]
#[error("[reporter] {key} = {value}: {why}")]
pub struct SettingsError {
    /// The key.
    pub key: &'static str,
    /// Its value.
    pub value: String,
    /// What is allowed.
    pub why: &'static str,
}

impl Settings {
    /// Checks what the types cannot.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let bad = |key, value: &dyn std::fmt::Display, why| SettingsError {
            key,
            value: value.to_string(),
            why,
        };
        if self.max_concurrent == 0 {
            return Err(bad("max_concurrent", &0, "must be at least 1"));
        }
        if self.max_catch_up_hours > MAX_CATCH_UP_HOURS {
            return Err(bad(
                "max_catch_up_hours",
                &self.max_catch_up_hours,
                "must be at most 168 (7 days)",
            ));
        }
        if self.max_attempts == 0 {
            return Err(bad("max_attempts", &0, "must be at least 1"));
        }
        if self.schedule_poll_secs == 0 {
            return Err(bad("schedule_poll_secs", &0, "must be at least 1"));
        }
        if self.default_cluster.is_empty() {
            return Err(bad("default_cluster", &"\"\"", "must not be empty"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_settings_name_their_key() {
        assert!(Settings::default().validate().is_ok());
        let s = Settings {
            max_catch_up_hours: 200,
            ..Settings::default()
        };
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("max_catch_up_hours = 200"), "{err}");
        let s = Settings {
            max_concurrent: 0,
            ..Settings::default()
        };
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("max_concurrent")
        );
    }
}
