//! The reporter's own snapshots: where replay starts, taken daily by LIST
//! through the Kubernetes API, and their retention.
//!
//! Why the reporter takes them: a replay that starts from an empty state
//! at the trail's oldest event only knows the objects written since then,
//! and the trail keeps 91 days; a daily snapshot lets every report start
//! from the cluster as it was, at most a day before its interval.
//!
//! - **When** ([`snapshot_due`]): once a day at `hour_utc`, or at the first
//!   look after it: a snapshot is due when the cluster has none that
//!   started at or after the last `hour_utc:00` UTC (an imported one
//!   counts). The loop looks every `poll_secs`; a failed snapshot is
//!   logged, counted (`reporter_snapshots_total{outcome="failed"}`) and
//!   tried again at the next look.
//! - **What** ([`take`]): every tracked resource of `auditrail-replay`
//!   (`TRACKED`: pods, namespaces, service accounts, endpoints,
//!   `networking.k8s.io/v1` network policies, the `projectcalico.org/v3`
//!   kinds), each listed in pages of `page_size` (`limit`, then
//!   `continue`). The first request's start is the snapshot's
//!   `request_start` (trail writes from it on are replayed on top; the
//!   highest resourceVersion wins, so writes during the LIST do no harm),
//!   the last answer's arrival its `request_completion`. A resource type
//!   the API server does not serve (404: Calico not installed, or an old
//!   Calico without staged policies) is left out and noted in the
//!   snapshot, and the notes become warnings of every report built on it.
//!   A `continue` token the API server no longer honours (410 Gone,
//!   reason `Expired`: etcd compacted the revision the list started at,
//!   five minutes by default) restarts that type's list from its first
//!   page, its pages so far dropped, as the API documents; any start after
//!   `request_start` is as good as the first. After
//!   [`MAX_LIST_RESTARTS`] restarts of one type the snapshot fails.
//!   Any other failure (an error status, a broken page) fails the whole
//!   snapshot: nothing is stored, never half a cluster.
//! - **Stored** with `Store::put_snapshot_noted`, the shape
//!   `ImportSnapshot` stores, in one transaction.
//! - **Retention** ([`expired`]): snapshots older than the retention
//!   (`[reporter.snapshots] retention_days`, by default the trail's
//!   `[indexer] retention_days`; 0 keeps all) are deleted, except the
//!   newest one at or before the cut-off: the trail's oldest kept event
//!   is there, and a report on the oldest interval still needs a start.
//!   It runs at every look, for every cluster's snapshots.

use std::sync::Arc;
use std::time::Duration;

use auditrail_event::CALICO_API_GROUP;
use auditrail_replay::{Snapshot, SnapshotError, TRACKED};
use auditrail_server::StopSignal;
use jiff::{SignedDuration, Timestamp};
use kube::api::ListParams;
use serde::Deserialize;

use crate::error::ReportError;
use crate::settings::{Settings, SnapshotSettings};
use crate::store::Store;

/// Why a snapshot could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum TakeError {
    /// No usable Kubernetes configuration.
    #[error("no Kubernetes configuration: {0}")]
    Configuration(String),
    /// A LIST failed (other than a resource type that is not served).
    #[error("LIST {path} failed: {source}")]
    List {
        /// The request path.
        path: String,
        /// kube's error.
        source: kube::Error,
    },
    /// A page is not a list of valid objects.
    #[error("LIST {path} answered a page that is not a valid list: {source}")]
    Page {
        /// The request path.
        path: String,
        /// What is wrong with it.
        source: SnapshotError,
    },
    /// A request could not be built.
    #[error("LIST {path}: {message}")]
    Request {
        /// The request path.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// How many times the list of one resource type restarts after its
/// `continue` token expired before the snapshot fails: a type whose list
/// outlasts the API server's compaction interval every time will not get
/// through by trying more.
pub const MAX_LIST_RESTARTS: usize = 3;

/// A snapshot as taken, before it is stored.
#[derive(Debug)]
pub struct Taken {
    /// The objects and times.
    pub snapshot: Snapshot,
    /// The resource types the API server did not serve.
    pub notes: Vec<String>,
    /// LIST requests made.
    pub requests: usize,
    /// Lists restarted from their first page after a `continue` token
    /// expired.
    pub restarts: usize,
}

/// The LIST path of a tracked resource: the version the reporter reads
/// (`v1`, `networking.k8s.io/v1`, `projectcalico.org/v3`). Kubernetes
/// network policies are tracked under `networking.k8s.io` only (the old
/// `extensions` group serves the same objects).
pub fn list_path(resource: &str, group: &str) -> String {
    let version = match group {
        CALICO_API_GROUP => "v3",
        _ => "v1",
    };
    if group.is_empty() {
        format!("/api/{version}/{resource}")
    } else {
        format!("/apis/{group}/{version}/{resource}")
    }
}

/// `metadata.continue` of a list page (the rest is read by
/// `auditrail_replay::parse_list`).
#[derive(Deserialize)]
struct ListPage {
    #[serde(default)]
    metadata: ListMeta,
}

#[derive(Default, Deserialize)]
struct ListMeta {
    #[serde(default, rename = "continue")]
    continue_token: Option<String>,
}

/// Lists every tracked resource type through `client`, `page_size`
/// objects a page.
pub async fn take(client: &kube::Client, page_size: u32) -> Result<Taken, TakeError> {
    let request_start = Timestamp::now();
    let mut objects = Vec::new();
    let mut notes = Vec::new();
    let mut requests = 0;
    let mut restarts = 0;
    for (resource, group) in TRACKED {
        let path = list_path(resource, group);
        let mut token: Option<String> = None;
        let first_of_type = objects.len();
        let mut restarts_of_type = 0;
        loop {
            let mut params = ListParams::default().limit(page_size);
            if let Some(t) = &token {
                params = params.continue_token(t);
            }
            let request = kube::core::Request::new(path.as_str())
                .list(&params)
                .map_err(|e| TakeError::Request {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            requests += 1;
            let text = match client.request_text(request).await {
                Ok(text) => text,
                // A collection that is not served answers 404 (a list of
                // a served type is never "not found", only empty).
                Err(kube::Error::Api(status)) if status.code == 404 && token.is_none() => {
                    let api_version = path
                        .trim_start_matches("/apis/")
                        .trim_start_matches("/api/")
                        .trim_end_matches(resource)
                        .trim_end_matches('/');
                    notes.push(format!(
                        "{resource} ({api_version}): not served by the API server (404) when \
                         the snapshot was taken, so none are in it"
                    ));
                    break;
                }
                // The continue token expired: list this type again from
                // its first page, without the objects of its pages so far.
                Err(kube::Error::Api(status))
                    if status.code == 410
                        && token.is_some()
                        && restarts_of_type < MAX_LIST_RESTARTS =>
                {
                    restarts_of_type += 1;
                    restarts += 1;
                    tracing::warn!(
                        path,
                        restart = restarts_of_type,
                        of = MAX_LIST_RESTARTS,
                        reason = %status.message,
                        "snapshot: the list's continue token expired (410 Gone); listing this \
                         type again from its first page"
                    );
                    objects.truncate(first_of_type);
                    token = None;
                    continue;
                }
                Err(source) => {
                    return Err(TakeError::List {
                        path: path.clone(),
                        source,
                    });
                }
            };
            let page: ListPage = serde_json::from_str(&text).map_err(|e| TakeError::Page {
                path: path.clone(),
                source: SnapshotError::Json(e),
            })?;
            let (listed, _untracked) =
                auditrail_replay::parse_list(text.as_bytes(), request_start, request_start)
                    .map_err(|source| TakeError::Page {
                        path: path.clone(),
                        source,
                    })?;
            objects.extend(listed.objects);
            match page.metadata.continue_token.filter(|t| !t.is_empty()) {
                Some(next) => token = Some(next),
                None => break,
            }
        }
    }
    Ok(Taken {
        snapshot: Snapshot {
            request_start,
            request_completion: Timestamp::now().max(request_start),
            objects,
        },
        notes,
        requests,
        restarts,
    })
}

/// The client the settings describe: a kubeconfig file (with a context),
/// the in-cluster service account, or kube's default (`KUBECONFIG`,
/// `~/.kube/config`, else in-cluster). Read at every snapshot, so a
/// rotated credential is picked up.
pub async fn client(settings: &SnapshotSettings) -> Result<kube::Client, TakeError> {
    auditrail_server::install_crypto_provider();
    let bad = |e: &dyn std::fmt::Display| TakeError::Configuration(e.to_string());
    let options = kube::config::KubeConfigOptions {
        context: settings.context.clone(),
        ..Default::default()
    };
    let config = if settings.in_cluster {
        kube::Config::incluster().map_err(|e| bad(&e))?
    } else if let Some(path) = &settings.kubeconfig {
        let file = kube::config::Kubeconfig::read_from(path)
            .map_err(|e| bad(&format_args!("{}: {e}", path.display())))?;
        kube::Config::from_custom_kubeconfig(file, &options)
            .await
            .map_err(|e| bad(&format_args!("{}: {e}", path.display())))?
    } else if settings.context.is_some() {
        kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| bad(&e))?
    } else {
        kube::Config::infer().await.map_err(|e| bad(&e))?
    };
    kube::Client::try_from(config).map_err(|e| bad(&e))
}

/// The last `hour:00` UTC at or before `now` (UTC days have 86,400
/// seconds in Unix time).
pub fn last_hour(hour: u8, now: Timestamp) -> Timestamp {
    const DAY: i64 = 86_400;
    let offset = i64::from(hour.min(23)) * 3600;
    let secs = (now.as_second() - offset).div_euclid(DAY) * DAY + offset;
    Timestamp::from_second(secs).unwrap_or(now)
}

/// Whether a snapshot is due at `now` when the cluster's newest one
/// started at `newest`.
pub fn snapshot_due(hour: u8, now: Timestamp, newest: Option<Timestamp>) -> bool {
    newest.is_none_or(|newest| newest < last_hour(hour, now))
}

/// Of the starts of one cluster's snapshots, those retention deletes at
/// `cutoff` (now minus the retention): every one before the cut-off except
/// the newest at or before it.
pub fn expired(starts: &[Timestamp], cutoff: Timestamp) -> Vec<Timestamp> {
    let keep = starts.iter().copied().filter(|s| *s <= cutoff).max();
    let mut out: Vec<Timestamp> = starts
        .iter()
        .copied()
        .filter(|s| *s < cutoff && Some(*s) != keep)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Deletes what retention says, for every cluster; how many.
pub fn apply_retention(store: &Store, days: u32, now: Timestamp) -> Result<usize, ReportError> {
    if days == 0 {
        return Ok(0);
    }
    let cutoff = now - SignedDuration::from_hours(i64::from(days) * 24);
    let mut by_cluster: std::collections::BTreeMap<String, Vec<Timestamp>> =
        std::collections::BTreeMap::new();
    for (cluster, start) in store.snapshot_times()? {
        by_cluster.entry(cluster).or_default().push(start);
    }
    let mut deleted = 0;
    for (cluster, starts) in by_cluster {
        let old = expired(&starts, cutoff);
        if old.is_empty() {
            continue;
        }
        let n = store.delete_snapshots(&cluster, &old)?;
        tracing::info!(
            cluster = %cluster,
            deleted = n,
            cutoff = %cutoff,
            "snapshots older than the retention deleted (the newest before the cut-off is kept)"
        );
        deleted += n;
    }
    Ok(deleted)
}

/// Takes one snapshot and stores it; its id and object count.
pub async fn take_and_store(
    store: &Arc<Store>,
    settings: &Settings,
) -> Result<(String, usize), SnapshotFailure> {
    let kube = client(&settings.snapshots).await?;
    let taken = take(&kube, settings.snapshots.page_size).await?;
    let objects = taken.snapshot.objects.len();
    let cluster = settings.snapshot_cluster().to_owned();
    let store = Arc::clone(store);
    let id = tokio::task::spawn_blocking(move || {
        store.put_snapshot_noted(&cluster, &taken.snapshot, &taken.notes)
    })
    .await
    .map_err(|e| ReportError::Internal(format!("snapshot task died: {e}")))??;
    Ok((id, objects))
}

/// Why a snapshot was not stored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotFailure {
    /// Taking it failed.
    #[error(transparent)]
    Take(#[from] TakeError),
    /// Storing it failed.
    #[error(transparent)]
    Store(#[from] ReportError),
}

/// One look: a snapshot when due, then retention.
pub async fn look(store: &Arc<Store>, settings: &Settings, retention_days: u32) {
    if settings.snapshots.enabled {
        let cluster = settings.snapshot_cluster().to_owned();
        let newest = store.snapshot_times().map(|times| {
            times
                .into_iter()
                .filter(|(c, _)| *c == cluster)
                .map(|(_, t)| t)
                .max()
        });
        match newest {
            Ok(newest) if snapshot_due(settings.snapshots.hour_utc, Timestamp::now(), newest) => {
                let started = std::time::Instant::now();
                match take_and_store(store, settings).await {
                    Ok((id, objects)) => {
                        metrics::counter!("reporter_snapshots_total", "outcome" => "succeeded")
                            .increment(1);
                        #[allow(clippy::cast_precision_loss)]
                        metrics::gauge!("reporter_snapshot_objects").set(objects as f64);
                        metrics::histogram!("reporter_snapshot_duration_seconds")
                            .record(started.elapsed().as_secs_f64());
                        tracing::info!(snapshot = %id, objects, "snapshot taken");
                    }
                    Err(e) => {
                        metrics::counter!("reporter_snapshots_total", "outcome" => "failed")
                            .increment(1);
                        tracing::warn!(
                            cluster = %cluster,
                            error = %e,
                            retry_in_secs = settings.snapshots.poll_secs,
                            "snapshot failed; nothing was stored, trying again at the next look"
                        );
                    }
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the stored snapshots"),
        }
    }
    let days = settings.snapshots.retention_days.unwrap_or(retention_days);
    let store = Arc::clone(store);
    let result =
        tokio::task::spawn_blocking(move || apply_retention(&store, days, Timestamp::now())).await;
    match result {
        Ok(Ok(n)) => {
            metrics::counter!("reporter_snapshots_deleted_total").increment(n as u64);
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "snapshot retention failed"),
        Err(e) => tracing::error!(error = %e, "snapshot retention died"),
    }
}

/// The background task: a look every `poll_secs` until shutdown.
pub async fn run(store: Arc<Store>, settings: Settings, retention_days: u32, mut stop: StopSignal) {
    let mut poll = tokio::time::interval(Duration::from_secs(settings.snapshots.poll_secs.max(1)));
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.stopped() => break,
            _ = poll.tick() => look(&store, &settings, retention_days).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditrail_replay::resources::NETWORKING_GROUP;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn every_tracked_resource_has_the_path_of_its_served_version() {
        assert_eq!(list_path("pods", ""), "/api/v1/pods");
        assert_eq!(
            list_path("networkpolicies", NETWORKING_GROUP),
            "/apis/networking.k8s.io/v1/networkpolicies"
        );
        assert_eq!(
            list_path("globalnetworksets", CALICO_API_GROUP),
            "/apis/projectcalico.org/v3/globalnetworksets"
        );
    }

    #[test]
    fn a_snapshot_is_due_when_none_started_since_the_last_hour() {
        assert_eq!(
            last_hour(2, t("2026-05-01T10:00:00Z")),
            t("2026-05-01T02:00:00Z")
        );
        assert_eq!(
            last_hour(2, t("2026-05-01T01:59:59Z")),
            t("2026-04-30T02:00:00Z")
        );
        assert_eq!(
            last_hour(0, t("2026-05-01T00:00:00Z")),
            t("2026-05-01T00:00:00Z")
        );
        let now = t("2026-05-01T10:00:00Z");
        assert!(snapshot_due(2, now, None));
        assert!(snapshot_due(2, now, Some(t("2026-05-01T01:59:59Z"))));
        assert!(!snapshot_due(2, now, Some(t("2026-05-01T02:00:00Z"))));
        assert!(!snapshot_due(2, now, Some(t("2026-05-01T09:00:00Z"))));
    }

    #[test]
    fn retention_keeps_the_newest_snapshot_at_or_before_the_cutoff() {
        let starts = [
            t("2026-01-01T00:00:00Z"),
            t("2026-01-02T00:00:00Z"),
            t("2026-01-03T00:00:00Z"),
            t("2026-01-05T00:00:00Z"),
        ];
        // Cut-off between the 3rd and the 5th: the 3rd is replay's start.
        assert_eq!(
            expired(&starts, t("2026-01-04T00:00:00Z")),
            vec![t("2026-01-01T00:00:00Z"), t("2026-01-02T00:00:00Z")]
        );
        // A snapshot exactly at the cut-off is that start.
        assert_eq!(
            expired(&starts, t("2026-01-03T00:00:00Z")),
            vec![t("2026-01-01T00:00:00Z"), t("2026-01-02T00:00:00Z")]
        );
        // Everything older: only the newest stays.
        assert_eq!(
            expired(&starts, t("2026-02-01T00:00:00Z")),
            starts[..3].to_vec()
        );
        // Nothing older than the cut-off: nothing goes.
        assert!(expired(&starts, t("2025-12-01T00:00:00Z")).is_empty());
        assert!(expired(&[], t("2026-01-04T00:00:00Z")).is_empty());
    }

    #[test]
    fn retention_deletes_per_cluster_and_zero_keeps_all() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let now = t("2026-05-01T00:00:00Z");
        let day = SignedDuration::from_hours(24);
        for (cluster, days_ago) in [("a", 40), ("a", 35), ("a", 20), ("a", 1), ("b", 50)] {
            let at = now - day * days_ago;
            let snapshot = Snapshot {
                request_start: at,
                request_completion: at,
                objects: Vec::new(),
            };
            store.put_snapshot(cluster, &snapshot).unwrap();
        }
        assert_eq!(apply_retention(&store, 0, now).unwrap(), 0);
        assert_eq!(store.snapshot_times().unwrap().len(), 5);
        assert_eq!(apply_retention(&store, 30, now).unwrap(), 1);
        assert_eq!(
            store.snapshot_times().unwrap(),
            vec![
                ("a".to_owned(), now - day * 35),
                ("a".to_owned(), now - day * 20),
                ("a".to_owned(), now - day),
                ("b".to_owned(), now - day * 50),
            ]
        );
        // Again: nothing more.
        assert_eq!(apply_retention(&store, 30, now).unwrap(), 0);
    }
}
