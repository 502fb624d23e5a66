//! The `[reporter]` configuration table: where the reporter reads the
//! trail, how many reports it makes at once, how long it waits for the
//! trail to catch up, and how it retries.
//!
//! The reporter reads the trail only through the query service's gRPC API
//! (`query_url`), whether the query service runs in the same process
//! (`auditrail up`, where the process's own address is used) or in another
//! pod (the chart): one path, and access control and the access trail
//! apply to reports as to every other read.
//!
//! `ingestor_url` (or, in `auditrail up`, the process's own ingestor)
//! tells a scheduled report when the trail has caught up with its
//! interval (see [`crate::catch_up`]); without one the fixed
//! `trail_lag_secs` does. `[reporter.snapshots]` makes the reporter take
//! its own daily snapshots through the Kubernetes API (see
//! [`crate::snapshots`]).

use std::path::PathBuf;

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
    /// so that the trail has caught up with it, when no ingestor tells
    /// (no `ingestor_url` and none in the process) or the ingestor cannot
    /// be reached.
    pub trail_lag_secs: u64,
    /// gRPC address of the ingestor whose `GetStatus` tells when the trail
    /// has caught up with an interval (`https://` with
    /// `ingestor_client.tls_ca`). When the process also runs the ingestor,
    /// its own address is used instead. Unset: `trail_lag_secs` alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingestor_url: Option<String>,
    /// How the reporter reaches the ingestor (`[reporter.ingestor_client]`,
    /// the same keys as `query_client`). With access control on, its
    /// identity needs the `status` permission (the `viewer` role has it).
    #[serde(skip_serializing_if = "ClientConfig::is_empty")]
    pub ingestor_client: ClientConfig,
    /// With an ingestor: seconds after an interval's end when an idle
    /// ingestor with nothing pending is believed to hold the whole
    /// interval (the API server's audit buffering, the store's refresh).
    pub trail_settle_secs: u64,
    /// Missed schedule ticks older than this many hours are not caught up
    /// (at most 168: 7 days).
    pub max_catch_up_hours: u64,
    /// Attempts per report before it is FAILED (at least 1).
    pub max_attempts: u32,
    /// Seconds before the first retry; each retry doubles it.
    pub retry_backoff_secs: u64,
    /// Seconds between two looks at the schedules.
    pub schedule_poll_secs: u64,
    /// The reporter's own snapshots (`[reporter.snapshots]`).
    pub snapshots: SnapshotSettings,
}

/// `[reporter.snapshots]`: daily snapshots of the tracked resources,
/// taken by LIST through the Kubernetes API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SnapshotSettings {
    /// Whether the reporter takes snapshots at all (off by default: it
    /// needs a cluster to reach and RBAC to list).
    pub enabled: bool,
    /// The hour (UTC, 0 to 23) of the daily snapshot: one is taken when
    /// none of the cluster started at or after the last such hour.
    pub hour_utc: u8,
    /// The cluster the snapshots are stored under (the name its trail's
    /// events carry); empty: `default_cluster`.
    pub cluster: String,
    /// A kubeconfig file to reach the cluster with; unset: `KUBECONFIG` or
    /// `~/.kube/config`, else the in-cluster service account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use; unset: its current context.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Use the pod's service account only (no kubeconfig).
    pub in_cluster: bool,
    /// Objects per LIST page (`limit`; the rest follows with `continue`).
    pub page_size: u32,
    /// Snapshots older than this many days are deleted, except the newest
    /// one at or before the trail's oldest kept event (replay starts
    /// there); unset: the trail's retention (`[indexer] retention_days`);
    /// 0 keeps every snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
    /// Seconds between two looks at whether a snapshot is due; a failed
    /// snapshot is tried again at the next look.
    pub poll_secs: u64,
}

impl Default for SnapshotSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            hour_utc: 0,
            cluster: String::new(),
            kubeconfig: None,
            context: None,
            in_cluster: false,
            page_size: 500,
            retention_days: None,
            poll_secs: 300,
        }
    }
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
            ingestor_url: None,
            ingestor_client: ClientConfig::default(),
            trail_settle_secs: 60,
            snapshots: SnapshotSettings::default(),
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
    /// The cluster the reporter's own snapshots are stored under.
    pub fn snapshot_cluster(&self) -> &str {
        if self.snapshots.cluster.is_empty() {
            &self.default_cluster
        } else {
            &self.snapshots.cluster
        }
    }

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
        if self.ingestor_url.as_deref().is_some_and(str::is_empty) {
            return Err(bad(
                "ingestor_url",
                &"\"\"",
                "must be a URL (leave it out to use trail_lag_secs)",
            ));
        }
        let s = &self.snapshots;
        if s.hour_utc > 23 {
            return Err(bad("snapshots.hour_utc", &s.hour_utc, "must be 0 to 23"));
        }
        if s.page_size == 0 {
            return Err(bad("snapshots.page_size", &0, "must be at least 1"));
        }
        if s.poll_secs == 0 {
            return Err(bad("snapshots.poll_secs", &0, "must be at least 1"));
        }
        if s.in_cluster && (s.kubeconfig.is_some() || s.context.is_some()) {
            return Err(bad(
                "snapshots.in_cluster",
                &true,
                "cannot be combined with snapshots.kubeconfig or snapshots.context",
            ));
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

    #[test]
    fn a_snapshot_hour_past_23_is_refused_naming_its_key() {
        let mut s = Settings::default();
        s.snapshots.hour_utc = 23;
        assert!(s.validate().is_ok());
        s.snapshots.hour_utc = 24;
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("snapshots.hour_utc = 24"), "{err}");
    }

    #[test]
    fn unknown_keys_are_refused_in_every_table() {
        let err = serde_json::from_value::<Settings>(serde_json::json!({
            "snapshots": { "enabled": true, "hour": 3 }
        }))
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown field `hour`"), "{err}");
        let err = serde_json::from_value::<Settings>(serde_json::json!({ "ingestor_ur": "x" }))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `ingestor_ur`"), "{err}");
        let ok: Settings = serde_json::from_value(serde_json::json!({
            "ingestor_url": "http://127.0.0.1:50053",
            "snapshots": { "enabled": true, "hour_utc": 3, "kubeconfig": "/k" }
        }))
        .unwrap();
        assert_eq!(ok.snapshots.hour_utc, 3);
        assert!(ok.validate().is_ok());
    }

    #[test]
    fn in_cluster_with_a_kubeconfig_is_refused() {
        let mut s = Settings::default();
        s.snapshots.in_cluster = true;
        s.snapshots.context = Some("prod".into());
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("snapshots.in_cluster"), "{err}");
    }
}
