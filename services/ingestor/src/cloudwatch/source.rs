//! One CloudWatch source's loop: discover streams, read each from its
//! position, push pages to the indexer, advance positions after the
//! acknowledgement.
//!
//! Every fetch interval: `DescribeLogStreams` with the prefix (all pages),
//! then each stream that may have new events is read with `GetLogEvents`
//! from its saved forward token until the token comes back unchanged. A page
//! is one batch; its position is saved only after the indexer acknowledged
//! it (and its rejects were dead-lettered), so a crash repeats at most one
//! page per stream, which the indexer's content-hash ids de-duplicate.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use auditrail_proto::v1;
use auditrail_server::StopSignal;
use aws_sdk_cloudwatchlogs::types::OutputLogEvent;
use bytes::Bytes;

use super::api::{self, Api, CallError, FailureKind};
use super::checkpoint::{PositionStore, SourcePositions, StreamPosition};
use super::settings::CloudWatchSource;
use crate::dead_letter::{DeadLetter, SharedDeadLetters, dead_letter_rejects, lock, reject_code};
use crate::expired::ExpiredLog;
use crate::pipeline::PipelineError;
use crate::sender::Sender;
use crate::settings::Settings;
use crate::status::StatusBoard;

/// On a first run, reading starts this long before the newest kube event
/// already stored: CloudWatch timestamps trail the events' own times and
/// streams of several API servers interleave. What is read twice is
/// de-duplicated by the indexer.
const RESUME_MARGIN_MS: i64 = 5 * 60 * 1000;

/// Every this many fetches, every stream is read even when its last
/// ingestion time did not change (a guard against a stale listing).
const FULL_READ_EVERY: u64 = 10;

/// The position id of a CloudWatch event for dead letters and origins.
/// `GetLogEvents` returns no event id, so an event is named by its
/// timestamp, its ingestion time (both ms since the epoch) and its index in
/// the page it was read in: `<timestamp>-<ingestionTime>-<index>`.
pub fn event_id(event: &OutputLogEvent, index: usize) -> String {
    format!(
        "{}-{}-{index}",
        event.timestamp().unwrap_or_default(),
        event.ingestion_time().unwrap_or_default()
    )
}

/// A CloudWatch source, ready to run.
pub struct CloudWatchReader {
    source: CloudWatchSource,
    name: String,
    cluster: String,
    page_events: i32,
    store: PositionStore,
    /// `None` until the first run decided where streams begin.
    positions: Option<SourcePositions>,
    sender: Sender,
    retry: crate::settings::RetrySettings,
    dead_letters: SharedDeadLetters,
    status: Arc<StatusBoard>,
    /// Last ingestion time of each stream when it was last read to its end.
    read_to_end: HashMap<String, Option<i64>>,
    /// Timestamp of the newest event read (ms since the epoch).
    newest_ms: Option<i64>,
    fetches: u64,
    /// Events past the indexer's retention, and when they are logged.
    expired: ExpiredLog,
}

impl std::fmt::Debug for CloudWatchReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudWatchReader")
            .field("name", &self.name)
            .field("group", &self.source.group_name)
            .finish_non_exhaustive()
    }
}

impl CloudWatchReader {
    /// Loads the source's positions (an unreadable file stops the ingestor
    /// before it serves) and registers it on the status board.
    pub fn prepare(
        source: CloudWatchSource,
        settings: &Settings,
        status: Arc<StatusBoard>,
        dead_letters: SharedDeadLetters,
    ) -> Result<Self, PipelineError> {
        let name = source.name();
        let store = PositionStore::new(&settings.data_dir, &name);
        let positions = store.load()?;
        status.add_cloudwatch_source(
            &name,
            v1::CloudWatchSourceInfo {
                region: source.region.clone().unwrap_or_default(),
                log_group: source.group_name.clone(),
                stream_prefix: source.stream_prefix.clone(),
                streams: 0,
                fetch_interval_seconds: u32::try_from(source.fetch_interval).unwrap_or(u32::MAX),
            },
        );
        let reader = Self {
            name,
            cluster: settings.cluster.clone(),
            page_events: i32::try_from(settings.batch.max_events).unwrap_or(10_000),
            store,
            positions,
            sender: Sender::new(
                &settings.indexer_url,
                settings.retry.clone(),
                &settings.indexer_client,
            )?,
            retry: settings.retry.clone(),
            dead_letters,
            status,
            read_to_end: HashMap::new(),
            newest_ms: None,
            fetches: 0,
            expired: ExpiredLog::default(),
            source,
        };
        if let Some(positions) = &reader.positions {
            for (stream, position) in &positions.streams {
                reader.publish_position(stream, position);
            }
        }
        Ok(reader)
    }

    /// Sends to `url` instead of the configured indexer.
    #[must_use]
    pub fn with_indexer_url(mut self, url: &str) -> Self {
        match self.sender.with_url(url) {
            Ok(sender) => self.sender = sender,
            Err(err) => tracing::error!(error = %err, "keeping the configured indexer"),
        }
        self
    }

    /// The file holding the source's positions.
    pub fn positions_path(&self) -> &Path {
        self.store.path()
    }

    /// Runs until `stop`.
    pub async fn run(mut self, mut stop: StopSignal) {
        let client = match api::client(&self.source).await {
            Ok(client) => client,
            Err(err) => {
                tracing::error!(source = %self.name, error = %err, "CloudWatch source cannot start");
                self.status.set_cloudwatch_state(
                    &self.name,
                    v1::SourceState::Failed,
                    Some(err.to_string()),
                );
                stop.stopped().await;
                return;
            }
        };
        let api = Api {
            client,
            source: self.name.clone(),
            status: Arc::clone(&self.status),
            retry: self.retry.clone(),
        };
        if self.positions.is_none() {
            let Some(positions) = self.first_run(&mut stop).await else {
                return;
            };
            self.positions = Some(positions);
            self.save_positions().await;
        }
        tracing::info!(
            source = %self.name,
            group = %self.source.group_name,
            prefix = %self.source.stream_prefix,
            interval_secs = self.source.fetch_interval,
            "CloudWatch ingestion started"
        );
        loop {
            match self.fetch(&api, &mut stop).await {
                Ok(()) => {
                    self.status
                        .set_cloudwatch_state(&self.name, v1::SourceState::Idle, None);
                }
                Err(CallError::Stopped) => break,
                Err(CallError::Failed(kind, message)) => {
                    let message = match kind {
                        FailureKind::NotFound => format!(
                            "log group {} not found (deleted, or not created yet: is audit logging on?): {message}",
                            self.source.group_name
                        ),
                        _ => message,
                    };
                    tracing::error!(source = %self.name, error = %message, "CloudWatch fetch failed; trying again at the next interval");
                    self.status.set_cloudwatch_state(
                        &self.name,
                        v1::SourceState::Failed,
                        Some(message),
                    );
                }
            }
            self.publish_lag();
            lock(&self.dead_letters).summarise(false);
            tokio::select! {
                () = tokio::time::sleep(self.source.interval()) => {}
                () = stop.stopped() => break,
            }
        }
        lock(&self.dead_letters).summarise(true);
        self.status
            .set_cloudwatch_state(&self.name, v1::SourceState::Stopped, None);
        tracing::info!(source = %self.name, "CloudWatch ingestion stopped");
    }

    /// Decides where the streams of a source that never ran begin: shortly
    /// before the newest kube event of the cluster already stored, else the
    /// configured start time, else each stream's start.
    async fn first_run(&self, stop: &mut StopSignal) -> Option<SourcePositions> {
        let newest = tokio::select! {
            newest = self.sender.newest_event(&self.cluster, v1::EventType::Kube) => newest,
            () = stop.stopped() => return None,
        };
        let initial_start_ms = if let Some(newest) = newest {
            tracing::info!(source = %self.name, newest_stored = %newest, "first run: resuming shortly before the newest kube event already stored");
            Some(newest.as_millisecond() - RESUME_MARGIN_MS)
        } else if let Some(start) = self.source.start_time {
            tracing::info!(source = %self.name, start = %start, "first run: starting at the configured start time");
            Some(start.as_millisecond())
        } else {
            tracing::info!(source = %self.name, "first run: reading every stream from its start");
            None
        };
        Some(SourcePositions {
            initial_start_ms,
            ..SourcePositions::default()
        })
    }

    /// One fetch: discover the streams, read each that may have news.
    async fn fetch(&mut self, api: &Api, stop: &mut StopSignal) -> Result<(), CallError> {
        let streams = self.discover(api, stop).await?;
        self.status
            .set_cloudwatch_streams(&self.name, streams.len());
        self.status
            .set_cloudwatch_state(&self.name, v1::SourceState::Running, None);
        let full = self.fetches.is_multiple_of(FULL_READ_EVERY);
        self.fetches += 1;
        for (stream, ingested) in streams {
            if !full && ingested.is_some() && self.read_to_end.get(&stream) == Some(&ingested) {
                continue;
            }
            match self.read_stream(api, &stream, stop).await {
                Ok(()) => {
                    self.read_to_end.insert(stream, ingested);
                }
                Err(CallError::Failed(FailureKind::NotFound, message)) => {
                    tracing::warn!(source = %self.name, stream = %stream, error = %message, "log stream vanished (deleted); going on with the others");
                    self.read_to_end.remove(&stream);
                }
                Err(other) => return Err(other),
            }
        }
        Ok(())
    }

    /// The streams matching the prefix, with their last ingestion times.
    async fn discover(
        &self,
        api: &Api,
        stop: &mut StopSignal,
    ) -> Result<Vec<(String, Option<i64>)>, CallError> {
        let mut streams = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = api
                .call("DescribeLogStreams", stop, || {
                    let mut request = api
                        .client
                        .describe_log_streams()
                        .log_group_name(&self.source.group_name)
                        .set_next_token(token.clone());
                    if !self.source.stream_prefix.is_empty() {
                        request = request.log_stream_name_prefix(&self.source.stream_prefix);
                    }
                    request.send()
                })
                .await?;
            streams.extend(page.log_streams().iter().filter_map(|s| {
                let name = s.log_stream_name()?;
                name.starts_with(&self.source.stream_prefix)
                    .then(|| (name.to_owned(), s.last_ingestion_time()))
            }));
            match page.next_token() {
                Some(next) if !next.is_empty() && token.as_deref() != Some(next) => {
                    token = Some(next.to_owned());
                }
                _ => return Ok(streams),
            }
        }
    }

    /// Where `stream` is read from: its saved position, else the source's
    /// initial start.
    fn position(&self, stream: &str) -> StreamPosition {
        let positions = self.positions.as_ref();
        positions
            .and_then(|p| p.streams.get(stream))
            .cloned()
            .unwrap_or_else(|| StreamPosition {
                start_time_ms: positions.and_then(|p| p.initial_start_ms),
                ..StreamPosition::default()
            })
    }

    /// Reads `stream` from its position to its end, page by page.
    async fn read_stream(
        &mut self,
        api: &Api,
        stream: &str,
        stop: &mut StopSignal,
    ) -> Result<(), CallError> {
        loop {
            let position = self.position(stream);
            let page = api
                .call("GetLogEvents", stop, || {
                    api.client
                        .get_log_events()
                        .log_group_name(&self.source.group_name)
                        .log_stream_name(stream)
                        .start_from_head(true)
                        .set_next_token(position.next_token.clone())
                        .set_start_time(position.start_time_ms)
                        .limit(self.page_events)
                        .send()
                })
                .await;
            let page = match page {
                Err(CallError::Failed(FailureKind::InvalidParameter, message))
                    if position.next_token.is_some() =>
                {
                    // The token is no longer accepted: read again from the
                    // last acknowledged event's time; repeats are
                    // de-duplicated by the indexer.
                    tracing::warn!(source = %self.name, stream, error = %message, "saved token refused; re-reading from the last acknowledged event's time");
                    let restart = StreamPosition {
                        next_token: None,
                        start_time_ms: position.last_event_time_ms.or(position.start_time_ms),
                        ..position
                    };
                    self.set_position(stream, restart).await;
                    continue;
                }
                other => other?,
            };
            let events = page.events();
            if !events.is_empty() {
                self.deliver(stream, events, stop).await?;
            }
            let next = page.next_forward_token().map(str::to_owned);
            let at_end = next.is_none() || next == position.next_token;
            let mut advanced = StreamPosition {
                next_token: next.or_else(|| position.next_token.clone()),
                ..position.clone()
            };
            if let Some((index, last)) = events.iter().enumerate().next_back() {
                advanced.last_event_id = Some(event_id(last, index));
                advanced.last_event_time_ms = last.timestamp();
            }
            if advanced != position || self.position_is_new(stream) {
                advanced.updated_at = Some(jiff::Timestamp::now());
                self.set_position(stream, advanced).await;
            }
            if at_end {
                return Ok(());
            }
        }
    }

    fn position_is_new(&self, stream: &str) -> bool {
        self.positions
            .as_ref()
            .is_none_or(|p| !p.streams.contains_key(stream))
    }

    /// Pushes one page to the indexer and handles its answer: rejects are
    /// dead-lettered (and synced) before the caller moves the position,
    /// except events past the indexer's retention, which are counted.
    async fn deliver(
        &mut self,
        stream: &str,
        events: &[OutputLogEvent],
        stop: &mut StopSignal,
    ) -> Result<(), CallError> {
        let ids: Vec<String> = events
            .iter()
            .enumerate()
            .map(|(i, e)| event_id(e, i))
            .collect();
        let raws: Vec<Bytes> = events
            .iter()
            .map(|e| Bytes::from(trim_line_end(e.message().unwrap_or_default()).to_owned()))
            .collect();
        let bytes: u64 = raws.iter().map(|r| r.len() as u64).sum();
        self.status.add_read(&self.name, raws.len() as u64, bytes);
        metrics::counter!("ingestor_cloudwatch_events_fetched_total", "source" => self.name.clone())
            .increment(raws.len() as u64);
        if let Some(newest) = events.iter().filter_map(OutputLogEvent::timestamp).max() {
            self.newest_ms = Some(self.newest_ms.map_or(newest, |n| n.max(newest)));
        }
        self.publish_lag();
        let request = v1::IngestBatchRequest {
            batch_id: format!(
                "{}:{}:{stream}:{}",
                self.cluster,
                self.source.group_name,
                ids.first().map_or("", String::as_str)
            ),
            cluster: self.cluster.clone(),
            source: self.name.clone(),
            events: raws
                .iter()
                .zip(&ids)
                .map(|(raw, id)| v1::RawEvent {
                    raw: raw.clone(),
                    type_hint: v1::EventType::Kube as i32,
                    origin: Some(v1::EventOrigin {
                        source: self.name.clone(),
                        position: Some(v1::event_origin::Position::Cloudwatch(
                            v1::CloudWatchPosition {
                                log_group: self.source.group_name.clone(),
                                log_stream: stream.to_owned(),
                                event_id: id.clone(),
                            },
                        )),
                    }),
                })
                .collect(),
        };
        metrics::counter!("ingestor_batches_sent_total").increment(1);
        let response = tokio::select! {
            response = self.sender.send(request) => response,
            () = stop.stopped() => return Err(CallError::Stopped),
        };
        let mut expired = 0;
        let sent: Vec<(&String, &Bytes)> = ids.iter().zip(&raws).collect();
        let dead_letter_count = dead_letter_rejects(
            &self.dead_letters,
            &response.rejects,
            &sent,
            |_| expired += 1,
            |_, (id, raw), reject| {
                DeadLetter::cloudwatch(
                    &self.name,
                    stream,
                    id,
                    reject_code(reject.code),
                    reject.reason.clone(),
                    raw,
                )
            },
        );
        self.status.set_dead_letter_count(dead_letter_count);
        crate::expired::record(
            &self.status,
            &mut self.expired,
            &self.name,
            expired,
            response.retention_days,
        );
        self.status
            .add_source_acknowledged(&self.name, raws.len() as u64);
        metrics::counter!("ingestor_events_acknowledged_total")
            .increment(u64::from(response.accepted) + u64::from(response.duplicates));
        Ok(())
    }

    /// Records and saves the position of `stream`.
    async fn set_position(&mut self, stream: &str, position: StreamPosition) {
        self.publish_position(stream, &position);
        self.positions
            .get_or_insert_with(SourcePositions::default)
            .streams
            .insert(stream.to_owned(), position);
        self.save_positions().await;
    }

    /// Saves the positions off the async runtime. A failure is logged; the
    /// positions stay in memory and the next save tries again (a crash
    /// before then repeats pages, which the indexer de-duplicates).
    async fn save_positions(&self) {
        let Some(positions) = self.positions.clone() else {
            return;
        };
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.save(&positions)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::error!(source = %self.name, error = %err, "cannot save CloudWatch positions");
            }
            Err(err) => {
                tracing::error!(source = %self.name, error = %err, "position task failed");
            }
        }
    }

    fn publish_position(&self, stream: &str, position: &StreamPosition) {
        let to_timestamp = |ms: i64| jiff::Timestamp::from_millisecond(ms).ok();
        self.status.set_cloudwatch_checkpoint(v1::Checkpoint {
            source_key: format!("cloudwatch:{}:{stream}", self.name),
            source: self.name.clone(),
            position: Some(v1::checkpoint::Position::Cloudwatch(
                v1::CloudWatchCheckpoint {
                    log_group: self.source.group_name.clone(),
                    log_stream: stream.to_owned(),
                    next_token: position.next_token.clone().unwrap_or_default(),
                    last_event_id: position.last_event_id.clone().unwrap_or_default(),
                    last_event_time: position
                        .last_event_time_ms
                        .and_then(to_timestamp)
                        .map(auditrail_proto::timestamp),
                },
            )),
            updated_at: position.updated_at.map(auditrail_proto::timestamp),
        });
    }

    /// Publishes how far behind now the newest event read is.
    fn publish_lag(&self) {
        let Some(newest) = self
            .newest_ms
            .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        else {
            return;
        };
        let lag = jiff::Timestamp::now()
            .duration_since(newest)
            .as_secs_f64()
            .max(0.0);
        metrics::gauge!("ingestor_cloudwatch_lag_seconds", "source" => self.name.clone()).set(lag);
        self.status.set_cloudwatch_newest(&self.name, newest, lag);
    }
}

/// A message without one trailing `\n` or `\r\n`, so an event read from
/// CloudWatch has the same bytes (and id) as the same line read from a file.
fn trim_line_end(message: &str) -> &str {
    let message = message.strip_suffix('\n').unwrap_or(message);
    message.strip_suffix('\r').unwrap_or(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_lose_one_line_end() {
        assert_eq!(trim_line_end("{}\n"), "{}");
        assert_eq!(trim_line_end("{}\r\n"), "{}");
        assert_eq!(trim_line_end("{}\n\n"), "{}\n");
        assert_eq!(trim_line_end("{}"), "{}");
    }

    #[test]
    fn event_ids_name_time_ingestion_and_index() {
        let event = OutputLogEvent::builder()
            .timestamp(1_700_000_000_123)
            .ingestion_time(1_700_000_000_456)
            .message("{}")
            .build();
        assert_eq!(event_id(&event, 7), "1700000000123-1700000000456-7");
    }
}
