//! What the ingestor is doing, for `IngestorService.GetStatus`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use auditrail_event::EventType;
use auditrail_filetail::{Checkpoints, FileStatus};
use auditrail_proto::{timestamp, v1};

#[derive(Debug, Default)]
struct SourceEntry {
    name: String,
    event_type: Option<EventType>,
    files: Vec<FileStatus>,
    /// Set for CloudWatch sources, which also report their own state,
    /// newest event time and lag.
    cloudwatch: Option<CloudWatchEntry>,
    events_read: u64,
    bytes_read: u64,
    events_acknowledged: u64,
    events_expired: u64,
    error: Option<String>,
}

#[derive(Debug)]
struct CloudWatchEntry {
    info: v1::CloudWatchSourceInfo,
    state: v1::SourceState,
    last_event_time: Option<jiff::Timestamp>,
    lag_seconds: f64,
}

#[derive(Debug, Default)]
struct Board {
    sources: Vec<SourceEntry>,
    checkpoints: Vec<Checkpoints>,
    dead_letter_path: PathBuf,
    dead_letters: u64,
    in_flight_batches: usize,
    in_flight_bytes: u64,
    events_acknowledged: u64,
    /// CloudWatch checkpoints by source key.
    cloudwatch_checkpoints: BTreeMap<String, v1::Checkpoint>,
}

/// Shared, updated by the pipeline, read by the status RPC.
#[derive(Debug)]
pub struct StatusBoard {
    cluster: String,
    started_at: jiff::Timestamp,
    board: Mutex<Board>,
}

impl StatusBoard {
    /// An empty board for `cluster`.
    pub fn new(cluster: &str) -> Self {
        Self {
            cluster: cluster.to_owned(),
            started_at: jiff::Timestamp::now(),
            board: Mutex::new(Board::default()),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Board) -> R) -> R {
        // A poisoned lock only means a panic elsewhere mid-update; the
        // counters are still the best information there is.
        let mut board = self
            .board
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut board)
    }

    fn source<'b>(board: &'b mut Board, name: &str) -> Option<&'b mut SourceEntry> {
        board.sources.iter_mut().find(|s| s.name == name)
    }

    /// A file source; `event_type` is `None` when its files' names decide.
    pub(crate) fn add_file_source(&self, name: &str, event_type: Option<EventType>) {
        self.with(|b| {
            b.sources.push(SourceEntry {
                name: name.to_owned(),
                event_type,
                ..SourceEntry::default()
            });
        });
    }

    pub(crate) fn add_cloudwatch_source(&self, name: &str, info: v1::CloudWatchSourceInfo) {
        self.with(|b| {
            b.sources.push(SourceEntry {
                name: name.to_owned(),
                event_type: Some(EventType::Kube),
                cloudwatch: Some(CloudWatchEntry {
                    info,
                    state: v1::SourceState::Starting,
                    last_event_time: None,
                    lag_seconds: 0.0,
                }),
                ..SourceEntry::default()
            });
        });
    }

    /// A CloudWatch source's state, and its error when it is backing off or
    /// failed (cleared otherwise).
    pub(crate) fn set_cloudwatch_state(
        &self,
        source: &str,
        state: v1::SourceState,
        error: Option<String>,
    ) {
        self.with(|b| {
            if let Some(s) = Self::source(b, source) {
                s.error = error;
                if let Some(cw) = &mut s.cloudwatch {
                    cw.state = state;
                }
            }
        });
    }

    pub(crate) fn set_cloudwatch_streams(&self, source: &str, streams: usize) {
        self.with(|b| {
            if let Some(cw) = Self::source(b, source).and_then(|s| s.cloudwatch.as_mut()) {
                cw.info.streams = u32::try_from(streams).unwrap_or(u32::MAX);
            }
        });
    }

    /// The newest CloudWatch event time seen and the lag behind now.
    pub(crate) fn set_cloudwatch_newest(
        &self,
        source: &str,
        newest: jiff::Timestamp,
        lag_seconds: f64,
    ) {
        self.with(|b| {
            if let Some(cw) = Self::source(b, source).and_then(|s| s.cloudwatch.as_mut()) {
                cw.last_event_time = Some(newest);
                cw.lag_seconds = lag_seconds;
            }
        });
    }

    pub(crate) fn set_cloudwatch_checkpoint(&self, checkpoint: v1::Checkpoint) {
        self.with(|b| {
            b.cloudwatch_checkpoints
                .insert(checkpoint.source_key.clone(), checkpoint);
        });
    }

    pub(crate) fn set_dead_letters(&self, path: PathBuf, count: u64) {
        self.with(|b| {
            b.dead_letter_path = path;
            b.dead_letters = count;
        });
    }

    pub(crate) fn set_error(&self, source: &str, error: Option<String>) {
        self.with(|b| {
            if let Some(s) = Self::source(b, source) {
                s.error = error;
            }
        });
    }

    pub(crate) fn update_files(&self, source: &str, files: Vec<FileStatus>) {
        self.with(|b| {
            if let Some(s) = Self::source(b, source) {
                s.files = files;
                s.error = None;
            }
        });
    }

    pub(crate) fn add_read(&self, source: &str, events: u64, bytes: u64) {
        metrics::counter!("ingestor_lines_read_total").increment(events);
        metrics::counter!("ingestor_bytes_read_total").increment(bytes);
        self.with(|b| {
            if let Some(s) = Self::source(b, source) {
                s.events_read += events;
                s.bytes_read += bytes;
            }
        });
    }

    pub(crate) fn add_source_acknowledged(&self, source: &str, events: u64) {
        self.with(|b| {
            if let Some(s) = Self::source(b, source) {
                s.events_acknowledged += events;
            }
        });
    }

    pub(crate) fn add_expired(&self, source: &str, events: u64) {
        self.with(|b| {
            if let Some(s) = Self::source(b, source) {
                s.events_expired += events;
            }
        });
    }

    pub(crate) fn set_in_flight(&self, batches: usize, bytes: u64) {
        metrics::gauge!("ingestor_in_flight_batches")
            .set(u32::try_from(batches).unwrap_or(u32::MAX));
        self.with(|b| {
            b.in_flight_batches = batches;
            b.in_flight_bytes = bytes;
        });
    }

    pub(crate) fn add_acknowledged(
        &self,
        events: u64,
        dead_letters: u64,
        checkpoints: &[Checkpoints],
    ) {
        self.with(|b| {
            b.events_acknowledged += events;
            b.dead_letters = dead_letters;
            b.checkpoints = checkpoints.to_vec();
        });
    }

    pub(crate) fn set_dead_letter_count(&self, dead_letters: u64) {
        self.with(|b| b.dead_letters = dead_letters);
    }

    /// The `GetStatus` answer.
    pub fn to_proto(&self) -> v1::GetStatusResponse {
        self.with(|b| {
            let sources = b
                .sources
                .iter()
                .map(|s| {
                    if let Some(cw) = &s.cloudwatch {
                        return cloudwatch_status(s, cw);
                    }
                    let live = s.files.iter().find(|f| f.is_live());
                    let pending: u64 = s
                        .files
                        .iter()
                        .map(|f| f.size.saturating_sub(f.offset))
                        .sum();
                    let unterminated: Vec<v1::UnterminatedLine> = s
                        .files
                        .iter()
                        .filter(|f| f.unterminated > 0)
                        .map(|f| v1::UnterminatedLine {
                            path: f.path.display().to_string(),
                            offset: f.offset,
                            bytes: f.unterminated,
                            rotated: !f.is_live(),
                        })
                        .collect();
                    let waiting_lines: u64 = unterminated.iter().map(|u| u.bytes).sum();
                    let state = file_state(
                        s.error.is_some(),
                        s.files.is_empty(),
                        pending.saturating_sub(waiting_lines),
                    );
                    v1::SourceStatus {
                        name: s.name.clone(),
                        kind: v1::SourceKind::File as i32,
                        location: Some(v1::source_status::Location::File(v1::FileSourceInfo {
                            path: live
                                .map_or_else(|| s.name.clone(), |f| f.path.display().to_string()),
                            current: live.map(|f| v1::FileIdentity {
                                device: f.identity.dev,
                                inode: f.identity.ino,
                                fingerprint: f.identity.fingerprint.clone(),
                            }),
                            bytes_pending: pending,
                            unterminated_lines: unterminated,
                        })),
                        state: state as i32,
                        events_read: s.events_read,
                        bytes_read: s.bytes_read,
                        last_event_time: None,
                        lag_seconds: 0.0,
                        error: s.error.clone().unwrap_or_default(),
                        type_hint: match s.event_type {
                            Some(EventType::Kube) => v1::EventType::Kube,
                            Some(EventType::Ee) => v1::EventType::Ee,
                            Some(EventType::Access) | None => v1::EventType::Unspecified,
                        } as i32,
                        events_acknowledged: s.events_acknowledged,
                        events_expired: s.events_expired,
                    }
                })
                .collect();
            let mut checkpoints: Vec<v1::Checkpoint> = b
                .checkpoints
                .iter()
                .flat_map(Checkpoints::iter)
                .map(|c| v1::Checkpoint {
                    source_key: format!(
                        "file:{}:{}:{}",
                        c.identity.dev, c.identity.ino, c.identity.fingerprint
                    ),
                    source: c.path.display().to_string(),
                    position: Some(v1::checkpoint::Position::File(v1::FileCheckpoint {
                        identity: Some(v1::FileIdentity {
                            device: c.identity.dev,
                            inode: c.identity.ino,
                            fingerprint: c.identity.fingerprint.clone(),
                        }),
                        offset: c.offset,
                        path: c.path.display().to_string(),
                    })),
                    updated_at: None,
                })
                .chain(b.cloudwatch_checkpoints.values().cloned())
                .collect();
            checkpoints.sort_by(|x, y| x.source_key.cmp(&y.source_key));
            v1::GetStatusResponse {
                sources,
                checkpoints,
                dead_letters: Some(v1::DeadLetterStats {
                    count: b.dead_letters,
                    path: b.dead_letter_path.display().to_string(),
                    size_bytes: std::fs::metadata(&b.dead_letter_path).map_or(0, |m| m.len()),
                }),
                in_flight_batches: u32::try_from(b.in_flight_batches).unwrap_or(u32::MAX),
                in_flight_bytes: b.in_flight_bytes,
                cluster: self.cluster.clone(),
                started_at: Some(timestamp(self.started_at)),
            }
        })
    }
}

/// The state of a file source: backing off after an error, waiting for a
/// file when none matches, running while complete lines are left to read
/// (bytes pending, not counting lines still waiting for their `\n`), else
/// idle.
fn file_state(error: bool, no_file: bool, readable_pending: u64) -> v1::SourceState {
    if error {
        v1::SourceState::Backoff
    } else if no_file {
        v1::SourceState::Waiting
    } else if readable_pending > 0 {
        v1::SourceState::Running
    } else {
        v1::SourceState::Idle
    }
}

/// The status of a CloudWatch source, which reports its own state.
fn cloudwatch_status(s: &SourceEntry, cw: &CloudWatchEntry) -> v1::SourceStatus {
    v1::SourceStatus {
        name: s.name.clone(),
        kind: v1::SourceKind::Cloudwatch as i32,
        location: Some(v1::source_status::Location::Cloudwatch(cw.info.clone())),
        state: cw.state as i32,
        events_read: s.events_read,
        bytes_read: s.bytes_read,
        last_event_time: cw.last_event_time.map(timestamp),
        lag_seconds: cw.lag_seconds,
        error: s.error.clone().unwrap_or_default(),
        type_hint: v1::EventType::Kube as i32,
        events_acknowledged: s.events_acknowledged,
        events_expired: s.events_expired,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_states() {
        assert_eq!(file_state(true, true, 5), v1::SourceState::Backoff);
        assert_eq!(file_state(false, true, 0), v1::SourceState::Waiting);
        assert_eq!(file_state(false, false, 5), v1::SourceState::Running);
        // Only an unterminated last line left: caught up.
        assert_eq!(file_state(false, false, 0), v1::SourceState::Idle);
    }

    #[test]
    fn a_source_without_files_waits_and_an_unterminated_line_is_named() {
        let board = StatusBoard::new("c");
        board.add_file_source("/logs/*.json", None);
        let source = &board.to_proto().sources[0];
        assert_eq!(source.state, v1::SourceState::Waiting as i32);

        let identity = auditrail_filetail::FileIdentity {
            dev: 1,
            ino: 2,
            fingerprint: String::new(),
            fingerprint_len: 0,
        };
        board.update_files(
            "/logs/*.json",
            vec![FileStatus {
                path: "/logs/a.json".into(),
                identity,
                offset: 100,
                size: 130,
                location: auditrail_filetail::FileLocation::Live,
                state: auditrail_filetail::FileState::Reading,
                last_error: None,
                unterminated: 30,
            }],
        );
        let source = &board.to_proto().sources[0];
        assert_eq!(source.state, v1::SourceState::Idle as i32);
        let Some(v1::source_status::Location::File(file)) = &source.location else {
            panic!("{source:?}");
        };
        assert_eq!(file.bytes_pending, 30);
        assert_eq!(
            file.unterminated_lines,
            vec![v1::UnterminatedLine {
                path: "/logs/a.json".into(),
                offset: 100,
                bytes: 30,
                rotated: false,
            }]
        );
    }
}
