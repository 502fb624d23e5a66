//! `auditrail stats` and `auditrail ingest-status`: what is stored and what
//! the ingestor is doing, as text (sizes with units) or as JSON or YAML
//! documents with stable camelCase fields (sizes in bytes, times RFC 3339 or
//! null).

use auditrail_proto::v1;
use auditrail_proto::v1::ingest_service_client::IngestServiceClient;
use auditrail_proto::v1::ingestor_service_client::IngestorServiceClient;
use indicatif::HumanBytes;
use serde::Serialize;

use crate::format_time as time;
use crate::output::{Format, print_document};

/// A size for people: `512 B`, `1.50 KiB`, `3.20 MiB`, `1.00 GiB`.
pub(crate) fn size(bytes: u64) -> String {
    HumanBytes(bytes).to_string()
}

/// A time for documents: RFC 3339 with microseconds, or null when unset.
fn time_field(t: Option<&prost_types::Timestamp>) -> Option<String> {
    t.is_some().then(|| time(t)).filter(|s| s != "-")
}

/// The name of an event type in documents and tables.
pub(crate) fn event_type(value: i32) -> &'static str {
    match v1::EventType::try_from(value) {
        Ok(v1::EventType::Ee) => "ee",
        Ok(v1::EventType::Kube) => "kube",
        Ok(v1::EventType::Access) => "access",
        _ => "unspecified",
    }
}

/// `stats -o json|yaml`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Stats {
    stats: Vec<IndexStats>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct IndexStats {
    cluster: String,
    r#type: &'static str,
    event_count: u64,
    oldest: Option<String>,
    newest: Option<String>,
    size_bytes: u64,
}

/// The stats table: one row per cluster and type, sizes with units.
fn stats_table(stats: &[IndexStats]) -> String {
    use std::fmt::Write as _;
    let mut out = format!(
        "{:<20} {:<5} {:>10} {:<28} {:<28} {:>12}\n",
        "CLUSTER", "TYPE", "EVENTS", "OLDEST", "NEWEST", "SIZE"
    );
    for s in stats {
        let _ = writeln!(
            out,
            "{:<20} {:<5} {:>10} {:<28} {:<28} {:>12}",
            s.cluster,
            s.r#type,
            s.event_count,
            s.oldest.as_deref().unwrap_or("-"),
            s.newest.as_deref().unwrap_or("-"),
            size(s.size_bytes),
        );
    }
    if stats.is_empty() {
        out.push_str("(no events stored yet)\n");
    }
    out
}

/// Prints events stored per cluster and type.
pub(crate) async fn stats(server: &str, format: Format) -> anyhow::Result<()> {
    let mut client = IngestServiceClient::new(crate::connect(server).await?);
    let response = client
        .get_index_stats(v1::GetIndexStatsRequest::default())
        .await
        .map_err(|s| crate::error::rpc("GetIndexStats", &s))?
        .into_inner();
    let stats: Vec<IndexStats> = response
        .stats
        .iter()
        .map(|s| IndexStats {
            cluster: s.cluster.clone(),
            r#type: event_type(s.r#type),
            event_count: s.event_count,
            oldest: time_field(s.oldest.as_ref()),
            newest: time_field(s.newest.as_ref()),
            size_bytes: s.size_bytes,
        })
        .collect();
    match format {
        Format::Text => {
            print!("{}", stats_table(&stats));
            Ok(())
        }
        _ => print_document(format, &Stats { stats }),
    }
}

/// `ingest-status -o json|yaml`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    cluster: String,
    started_at: Option<String>,
    sources: Vec<Source>,
    checkpoints: Vec<Checkpoint>,
    dead_letters: Option<DeadLetters>,
    in_flight_batches: u32,
    in_flight_bytes: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Source {
    name: String,
    /// `file` or `cloudwatch`.
    kind: &'static str,
    /// `starting`, `running`, `idle`, `backoff`, `failed`, `stopped`,
    /// `waiting` (no file matches the path yet).
    state: String,
    /// The configured event type for events without objectRef.
    type_hint: &'static str,
    events_read: u64,
    bytes_read: u64,
    events_acknowledged: u64,
    /// Events older than the retention: read, acknowledged, not stored.
    events_expired: u64,
    last_event_time: Option<String>,
    lag_seconds: f64,
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<FileSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cloudwatch: Option<CloudWatchSource>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FileSource {
    path: String,
    bytes_pending: u64,
    /// Last lines still waiting for their newline, per file.
    unterminated_lines: Vec<UnterminatedLine>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct UnterminatedLine {
    path: String,
    offset: u64,
    bytes: u64,
    /// The file was rotated: the line is read as it is once it stops
    /// changing.
    rotated: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CloudWatchSource {
    region: String,
    log_group: String,
    stream_prefix: String,
    streams: u32,
    fetch_interval_seconds: u32,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Checkpoint {
    source: String,
    source_key: String,
    updated_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<FileCheckpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cloudwatch: Option<CloudWatchCheckpoint>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FileCheckpoint {
    path: String,
    offset: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CloudWatchCheckpoint {
    log_group: String,
    log_stream: String,
    last_event_id: Option<String>,
    last_event_time: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DeadLetters {
    count: u64,
    path: String,
    size_bytes: u64,
}

impl From<&v1::FileSourceInfo> for FileSource {
    fn from(f: &v1::FileSourceInfo) -> Self {
        Self {
            path: f.path.clone(),
            bytes_pending: f.bytes_pending,
            unterminated_lines: f
                .unterminated_lines
                .iter()
                .map(|l| UnterminatedLine {
                    path: l.path.clone(),
                    offset: l.offset,
                    bytes: l.bytes,
                    rotated: l.rotated,
                })
                .collect(),
        }
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

impl From<&v1::GetStatusResponse> for Status {
    fn from(status: &v1::GetStatusResponse) -> Self {
        let sources = status
            .sources
            .iter()
            .map(|s| {
                let (file, cloudwatch) = match &s.location {
                    Some(v1::source_status::Location::File(f)) => (Some(FileSource::from(f)), None),
                    Some(v1::source_status::Location::Cloudwatch(cw)) => (
                        None,
                        Some(CloudWatchSource {
                            region: cw.region.clone(),
                            log_group: cw.log_group.clone(),
                            stream_prefix: cw.stream_prefix.clone(),
                            streams: cw.streams,
                            fetch_interval_seconds: cw.fetch_interval_seconds,
                        }),
                    ),
                    None => (None, None),
                };
                Source {
                    name: s.name.clone(),
                    kind: match v1::SourceKind::try_from(s.kind) {
                        Ok(v1::SourceKind::File) => "file",
                        Ok(v1::SourceKind::Cloudwatch) => "cloudwatch",
                        _ => "unspecified",
                    },
                    state: v1::SourceState::try_from(s.state).map_or_else(
                        |_| "unspecified".to_owned(),
                        |state| {
                            state
                                .as_str_name()
                                .trim_start_matches("SOURCE_STATE_")
                                .to_ascii_lowercase()
                        },
                    ),
                    type_hint: event_type(s.type_hint),
                    events_read: s.events_read,
                    bytes_read: s.bytes_read,
                    events_acknowledged: s.events_acknowledged,
                    events_expired: s.events_expired,
                    last_event_time: time_field(s.last_event_time.as_ref()),
                    lag_seconds: s.lag_seconds,
                    error: non_empty(&s.error),
                    file,
                    cloudwatch,
                }
            })
            .collect();
        let checkpoints = status
            .checkpoints
            .iter()
            .map(|c| Checkpoint {
                source: c.source.clone(),
                source_key: c.source_key.clone(),
                updated_at: time_field(c.updated_at.as_ref()),
                file: match &c.position {
                    Some(v1::checkpoint::Position::File(f)) => Some(FileCheckpoint {
                        path: f.path.clone(),
                        offset: f.offset,
                    }),
                    _ => None,
                },
                cloudwatch: match &c.position {
                    Some(v1::checkpoint::Position::Cloudwatch(cw)) => Some(CloudWatchCheckpoint {
                        log_group: cw.log_group.clone(),
                        log_stream: cw.log_stream.clone(),
                        last_event_id: non_empty(&cw.last_event_id),
                        last_event_time: time_field(cw.last_event_time.as_ref()),
                    }),
                    _ => None,
                },
            })
            .collect();
        Self {
            cluster: status.cluster.clone(),
            started_at: time_field(status.started_at.as_ref()),
            sources,
            checkpoints,
            dead_letters: status.dead_letters.as_ref().map(|d| DeadLetters {
                count: d.count,
                path: d.path.clone(),
                size_bytes: d.size_bytes,
            }),
            in_flight_batches: status.in_flight_batches,
            in_flight_bytes: status.in_flight_bytes,
        }
    }
}

/// The status for people: one line per source and checkpoint, sizes with
/// units.
fn status_text(status: &Status) -> String {
    use std::fmt::Write as _;
    let mut out = format!("cluster {}\n", status.cluster);
    for source in &status.sources {
        let state = source.state.to_ascii_uppercase();
        let error = source
            .error
            .as_ref()
            .map(|e| format!(", error: {e}"))
            .unwrap_or_default();
        let expired = if source.events_expired == 0 {
            String::new()
        } else {
            format!(
                ", {} older than the retention (not stored)",
                source.events_expired
            )
        };
        let last = source.last_event_time.as_deref().unwrap_or("-");
        let _ = match (&source.cloudwatch, &source.file) {
            (Some(cw), _) => writeln!(
                out,
                "source {}: {state}, {} streams matching {:?} in {}, {} events read, {} acknowledged{expired}, newest {last} (lag {:.0}s){error}",
                source.name,
                cw.streams,
                cw.stream_prefix,
                cw.log_group,
                source.events_read,
                source.events_acknowledged,
                source.lag_seconds,
            ),
            (None, file) => {
                let waiting = if source.state == "waiting" {
                    format!(
                        " (no file matches {} yet: waiting for it to appear)",
                        source.name
                    )
                } else {
                    String::new()
                };
                let written = writeln!(
                    out,
                    "source {}: {state}{waiting}, {} lines read ({}), {} pending{expired}{error}",
                    source.name,
                    source.events_read,
                    size(source.bytes_read),
                    size(file.as_ref().map_or(0, |f| f.bytes_pending)),
                );
                for line in file.iter().flat_map(|f| &f.unterminated_lines) {
                    let when = if line.rotated {
                        "read as it is once the rotated file has not changed for 5 s"
                    } else {
                        "read when its newline is written (echo >> FILE adds one)"
                    };
                    let _ = writeln!(
                        out,
                        "  {}: last line has no newline yet, {} bytes at byte {}; {when}",
                        line.path, line.bytes, line.offset
                    );
                }
                written
            }
        };
    }
    for checkpoint in &status.checkpoints {
        if let Some(f) = &checkpoint.file {
            let _ = writeln!(out, "checkpoint {} at byte {}", f.path, f.offset);
        }
        if let Some(cw) = &checkpoint.cloudwatch {
            let _ = writeln!(
                out,
                "checkpoint {} stream {} after event {} ({})",
                cw.log_group,
                cw.log_stream,
                cw.last_event_id.as_deref().unwrap_or("none"),
                cw.last_event_time.as_deref().unwrap_or("-"),
            );
        }
    }
    if let Some(d) = &status.dead_letters {
        let _ = writeln!(
            out,
            "dead letters: {} in {} ({})",
            d.count,
            d.path,
            size(d.size_bytes)
        );
    }
    let _ = writeln!(
        out,
        "in flight: {} batches, {}",
        status.in_flight_batches,
        size(status.in_flight_bytes)
    );
    out
}

/// Prints the ingestor's sources, checkpoints and dead letters.
pub(crate) async fn status(server: &str, format: Format) -> anyhow::Result<()> {
    let mut client = IngestorServiceClient::new(crate::connect(server).await?);
    let response = client
        .get_status(v1::GetStatusRequest::default())
        .await
        .map_err(|s| crate::error::rpc("GetStatus", &s))?
        .into_inner();
    let status = Status::from(&response);
    match format {
        Format::Text => {
            print!("{}", status_text(&status));
            Ok(())
        }
        _ => print_document(format, &status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(seconds: i64) -> Option<prost_types::Timestamp> {
        let timestamp = prost_types::Timestamp { seconds, nanos: 0 };
        (seconds > 0).then_some(timestamp)
    }

    fn sample_stats() -> Vec<IndexStats> {
        vec![IndexStats {
            cluster: "prod".to_owned(),
            r#type: event_type(v1::EventType::Kube.into()),
            event_count: 3000,
            oldest: time_field(stamp(1_767_225_600).as_ref()),
            newest: time_field(None),
            size_bytes: 3 * 1024 * 1024 + 512 * 1024,
        }]
    }

    #[test]
    fn sizes_have_binary_units() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1536), "1.50 KiB");
        assert_eq!(size(5 * 1024 * 1024), "5.00 MiB");
        assert_eq!(size(3 << 30), "3.00 GiB");
    }

    #[test]
    fn the_stats_table_shows_sizes_with_units() {
        let table = stats_table(&sample_stats());
        let row = table.lines().nth(1).expect("a row");
        assert!(row.starts_with("prod "), "{table}");
        assert!(row.ends_with("  3.50 MiB"), "{table}");
        assert!(row.contains(" 2026-01-01T00:00:00.000000Z "), "{table}");
        assert_eq!(
            stats_table(&[]),
            format!(
                "{:<20} {:<5} {:>10} {:<28} {:<28} {:>12}\n(no events stored yet)\n",
                "CLUSTER", "TYPE", "EVENTS", "OLDEST", "NEWEST", "SIZE"
            )
        );
    }

    #[test]
    fn stats_documents_have_stable_camel_case_fields() {
        let json: serde_json::Value = serde_json::from_str(
            &crate::output::document(
                Format::Json,
                &Stats {
                    stats: sample_stats(),
                },
            )
            .expect("json"),
        )
        .expect("parses");
        assert_eq!(
            json,
            serde_json::json!({"stats": [{
                "cluster": "prod",
                "type": "kube",
                "eventCount": 3000,
                "oldest": "2026-01-01T00:00:00.000000Z",
                "newest": null,
                "sizeBytes": 3_670_016,
            }]})
        );
    }

    #[test]
    #[allow(
        clippy::too_many_lines,
        reason = "one response with every field, and its documents"
    )]
    fn status_documents_carry_every_field() {
        let response = v1::GetStatusResponse {
            sources: vec![
                v1::SourceStatus {
                    name: "kube-audit".to_owned(),
                    kind: v1::SourceKind::File.into(),
                    location: Some(v1::source_status::Location::File(v1::FileSourceInfo {
                        path: "/var/log/kube-audit.log".to_owned(),
                        current: None,
                        bytes_pending: 2048,
                        unterminated_lines: vec![v1::UnterminatedLine {
                            path: "/var/log/kube-audit.log".to_owned(),
                            offset: 4096,
                            bytes: 12,
                            rotated: false,
                        }],
                    })),
                    state: v1::SourceState::Idle.into(),
                    events_read: 10,
                    bytes_read: 4096,
                    type_hint: v1::EventType::Kube.into(),
                    events_acknowledged: 10,
                    events_expired: 3,
                    ..Default::default()
                },
                v1::SourceStatus {
                    name: "eks".to_owned(),
                    kind: v1::SourceKind::Cloudwatch.into(),
                    location: Some(v1::source_status::Location::Cloudwatch(
                        v1::CloudWatchSourceInfo {
                            region: "us-west-2".to_owned(),
                            log_group: "/aws/eks/prod/cluster".to_owned(),
                            stream_prefix: "kube-apiserver-audit-".to_owned(),
                            streams: 2,
                            fetch_interval_seconds: 60,
                        },
                    )),
                    state: v1::SourceState::Backoff.into(),
                    error: "throttled".to_owned(),
                    last_event_time: stamp(1_767_225_600),
                    lag_seconds: 1.5,
                    ..Default::default()
                },
            ],
            checkpoints: vec![v1::Checkpoint {
                source_key: "kube-audit:1:2".to_owned(),
                source: "kube-audit".to_owned(),
                position: Some(v1::checkpoint::Position::File(v1::FileCheckpoint {
                    identity: None,
                    offset: 4096,
                    path: "/var/log/kube-audit.log".to_owned(),
                })),
                updated_at: stamp(1_767_225_600),
            }],
            dead_letters: Some(v1::DeadLetterStats {
                count: 1,
                path: "/data/dead.ndjson".to_owned(),
                size_bytes: 100,
            }),
            in_flight_batches: 1,
            in_flight_bytes: 1536,
            cluster: "prod".to_owned(),
            started_at: None,
        };
        let status = Status::from(&response);
        let json = serde_json::to_value(&status).expect("json");
        assert_eq!(
            json,
            serde_json::json!({
                "cluster": "prod",
                "startedAt": null,
                "sources": [
                    {
                        "name": "kube-audit", "kind": "file", "state": "idle", "typeHint": "kube",
                        "eventsRead": 10, "bytesRead": 4096, "eventsAcknowledged": 10,
                        "eventsExpired": 3,
                        "lastEventTime": null, "lagSeconds": 0.0, "error": null,
                        "file": {
                            "path": "/var/log/kube-audit.log", "bytesPending": 2048,
                            "unterminatedLines": [{
                                "path": "/var/log/kube-audit.log", "offset": 4096,
                                "bytes": 12, "rotated": false,
                            }],
                        },
                    },
                    {
                        "name": "eks", "kind": "cloudwatch", "state": "backoff", "typeHint": "unspecified",
                        "eventsRead": 0, "bytesRead": 0, "eventsAcknowledged": 0,
                        "eventsExpired": 0,
                        "lastEventTime": "2026-01-01T00:00:00.000000Z", "lagSeconds": 1.5,
                        "error": "throttled",
                        "cloudwatch": {
                            "region": "us-west-2", "logGroup": "/aws/eks/prod/cluster",
                            "streamPrefix": "kube-apiserver-audit-", "streams": 2,
                            "fetchIntervalSeconds": 60,
                        },
                    },
                ],
                "checkpoints": [{
                    "source": "kube-audit", "sourceKey": "kube-audit:1:2",
                    "updatedAt": "2026-01-01T00:00:00.000000Z",
                    "file": {"path": "/var/log/kube-audit.log", "offset": 4096},
                }],
                "deadLetters": {"count": 1, "path": "/data/dead.ndjson", "sizeBytes": 100},
                "inFlightBatches": 1,
                "inFlightBytes": 1536,
            })
        );
        let text = status_text(&status);
        assert_eq!(
            text,
            "cluster prod\n\
             source kube-audit: IDLE, 10 lines read (4.00 KiB), 2.00 KiB pending, 3 older than the retention (not stored)\n\
             \x20 /var/log/kube-audit.log: last line has no newline yet, 12 bytes at byte 4096; read when its newline is written (echo >> FILE adds one)\n\
             source eks: BACKOFF, 2 streams matching \"kube-apiserver-audit-\" in /aws/eks/prod/cluster, 0 events read, 0 acknowledged, newest 2026-01-01T00:00:00.000000Z (lag 2s), error: throttled\n\
             checkpoint /var/log/kube-audit.log at byte 4096\n\
             dead letters: 1 in /data/dead.ndjson (100 B)\n\
             in flight: 1 batches, 1.50 KiB\n"
        );
    }
}
