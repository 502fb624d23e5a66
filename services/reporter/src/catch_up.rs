//! When a scheduled report may start: once the trail holds its whole
//! interval. The ingestor knows (`IngestorService.GetStatus`); a fixed
//! wait (`trail_lag_secs`) is the fallback when no ingestor is named or
//! it cannot be reached.
//!
//! The rule, for an interval ending at `E` and a status the ingestor
//! answered at `T` (the reporter's clock when the answer came):
//!
//! - a source has caught up with `E` when
//!   1. its `last_event_time` ≥ `E` (it has read an event of `E` or later;
//!      a source reads its events in order), or
//!   2. it has nothing left to read and nothing unacknowledged: state
//!      `IDLE` (or `WAITING`: no file to read yet), `lag_seconds` 0, no
//!      `bytes_pending` beyond lines still waiting for their newline, the
//!      ingestor has no batch in flight, and `T` ≥ `E` + `trail_settle_secs`
//!      (default 60): what the API server wrote until then (its audit
//!      backend's buffering, the indexer's commit becoming searchable) has
//!      been read and acknowledged;
//! - the trail has caught up with `E` when every source has (an ingestor
//!   without sources: when `T` ≥ `E` + `trail_settle_secs`).
//!
//! File sources never report `last_event_time` (they do not parse), so
//! they catch up by rule 2. A source that is `FAILED`, `BACKOFF`,
//! `RUNNING` or `STARTING` without an event at or after `E` holds the
//! report back for as long as it stays so; the reporter logs at WARN which
//! sources hold it once `trail_lag_secs` have passed, and ticks older than
//! `max_catch_up_hours` are skipped as after downtime.
//!
//! The decision is [`Gate::ready`], a pure function of the status and the
//! clock; [`Ingestor::gate`] asks the ingestor.

use std::time::Duration;

use auditrail_proto::v1;
use auditrail_proto::v1::ingestor_service_client::IngestorServiceClient;
use auditrail_server::client::{ClientConfig, Connection};
use jiff::{SignedDuration, Timestamp};

use crate::error::ReportError;
use crate::runner::from_ts;

/// How long the reporter waits for `GetStatus`.
const STATUS_TIMEOUT: Duration = Duration::from_secs(10);

/// What one source said, as the decision needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceView {
    /// Its name.
    pub name: String,
    /// Its run state.
    pub state: v1::SourceState,
    /// The newest event read, when the source tells.
    pub last_event_time: Option<Timestamp>,
    /// Seconds since the oldest unacknowledged event (0: none).
    pub lag_seconds: f64,
    /// Bytes still to read, not counting lines waiting for their newline.
    pub pending_bytes: u64,
    /// The source's last error.
    pub error: String,
}

/// What the ingestor said, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestorView {
    /// When the answer came.
    pub observed: Timestamp,
    /// Every source.
    pub sources: Vec<SourceView>,
    /// Batches sent to the indexer and not acknowledged.
    pub in_flight_batches: u32,
    /// How long after an interval's end an idle ingestor is believed to
    /// have read everything of the interval (`trail_settle_secs`).
    pub settle: SignedDuration,
}

impl IngestorView {
    /// The view of a `GetStatus` answer received at `observed`.
    pub fn from_status(
        status: &v1::GetStatusResponse,
        observed: Timestamp,
        settle: SignedDuration,
    ) -> Self {
        let sources = status
            .sources
            .iter()
            .map(|s| {
                let pending_bytes = match &s.location {
                    Some(v1::source_status::Location::File(f)) => {
                        let waiting: u64 = f.unterminated_lines.iter().map(|l| l.bytes).sum();
                        f.bytes_pending.saturating_sub(waiting)
                    }
                    _ => 0,
                };
                SourceView {
                    name: s.name.clone(),
                    state: v1::SourceState::try_from(s.state)
                        .unwrap_or(v1::SourceState::Unspecified),
                    last_event_time: s.last_event_time.as_ref().and_then(from_ts),
                    lag_seconds: s.lag_seconds,
                    pending_bytes,
                    error: s.error.clone(),
                }
            })
            .collect();
        Self {
            observed,
            sources,
            in_flight_batches: status.in_flight_batches,
            settle,
        }
    }

    /// Whether `source` has caught up with `end`.
    pub fn source_caught_up(&self, source: &SourceView, end: Timestamp) -> bool {
        if source.last_event_time.is_some_and(|t| t >= end) {
            return true;
        }
        let idle = matches!(
            source.state,
            v1::SourceState::Idle | v1::SourceState::Waiting
        );
        idle && source.lag_seconds <= 0.0
            && source.pending_bytes == 0
            && self.in_flight_batches == 0
            && self.observed >= end + self.settle
    }

    /// The sources that have not caught up with `end`, each with why (its
    /// state and error); empty when the trail has.
    pub fn behind(&self, end: Timestamp) -> Vec<String> {
        if self.sources.is_empty() && self.observed < end + self.settle {
            return vec!["(no source yet; a minute after the interval's end)".to_owned()];
        }
        self.sources
            .iter()
            .filter(|s| !self.source_caught_up(s, end))
            .map(|s| {
                let mut why = format!("{} ({})", s.name, s.state.as_str_name());
                if !s.error.is_empty() {
                    why.push_str(": ");
                    why.push_str(&s.error);
                }
                why
            })
            .collect()
    }
}

/// What decides whether a tick's report may start.
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    /// `trail_lag_secs` after the interval's end, on the reporter's clock.
    Fixed {
        /// The wait.
        lag: SignedDuration,
        /// Now.
        now: Timestamp,
    },
    /// The ingestor's status.
    Ingestor(IngestorView),
}

impl Gate {
    /// Whether the report of an interval ending at `end` may start.
    pub fn ready(&self, end: Timestamp) -> bool {
        match self {
            Self::Fixed { lag, now } => end + *lag <= *now,
            Self::Ingestor(view) => view.behind(end).is_empty(),
        }
    }
}

/// A client of the ingestor.
#[derive(Debug, Clone)]
pub struct Ingestor {
    client: IngestorServiceClient<Connection>,
    url: String,
}

impl Ingestor {
    /// A client of the ingestor at `url` (connects when first used).
    pub fn connect(url: &str, config: &ClientConfig) -> Result<Self, ReportError> {
        let connection = auditrail_server::client::connect_lazy(url, config)
            .map_err(|e| ReportError::Internal(format!("ingestor_url {url}: {e}")))?;
        Ok(Self {
            client: IngestorServiceClient::new(connection),
            url: url.to_owned(),
        })
    }

    /// The ingestor's view, or why it could not be had.
    pub async fn view(&self, settle: SignedDuration) -> Result<IngestorView, String> {
        let mut client = self.client.clone();
        let answer =
            tokio::time::timeout(STATUS_TIMEOUT, client.get_status(v1::GetStatusRequest {}))
                .await
                .map_err(|_| format!("GetStatus at {} timed out", self.url))?
                .map_err(|status| {
                    format!(
                        "GetStatus at {} answered {:?}: {}",
                        self.url,
                        status.code(),
                        status.message()
                    )
                })?;
        Ok(IngestorView::from_status(
            &answer.into_inner(),
            Timestamp::now(),
            settle,
        ))
    }

    /// The gate of this schedule pass: the ingestor's view, or the fixed
    /// lag (with a warning) when it cannot be reached.
    pub async fn gate(
        ingestor: Option<&Self>,
        lag: SignedDuration,
        settle: SignedDuration,
    ) -> Gate {
        let Some(ingestor) = ingestor else {
            return Gate::Fixed {
                lag,
                now: Timestamp::now(),
            };
        };
        match ingestor.view(settle).await {
            Ok(view) => Gate::Ingestor(view),
            Err(e) => {
                metrics::counter!("reporter_ingestor_status_failures_total").increment(1);
                tracing::warn!(
                    error = %e,
                    trail_lag_secs = lag.as_secs(),
                    "cannot ask the ingestor how far the trail has caught up; \
                     scheduled reports wait trail_lag_secs after their interval instead"
                );
                Gate::Fixed {
                    lag,
                    now: Timestamp::now(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn source(name: &str, state: v1::SourceState) -> SourceView {
        SourceView {
            name: name.to_owned(),
            state,
            last_event_time: None,
            lag_seconds: 0.0,
            pending_bytes: 0,
            error: String::new(),
        }
    }

    fn view(observed: &str, sources: Vec<SourceView>) -> IngestorView {
        IngestorView {
            observed: t(observed),
            sources,
            in_flight_batches: 0,
            settle: SignedDuration::from_secs(60),
        }
    }

    const END: &str = "2026-05-01T10:00:00Z";

    #[test]
    fn an_event_at_or_after_the_end_means_caught_up_whatever_the_state() {
        let mut s = source("cw", v1::SourceState::Running);
        s.last_event_time = Some(t(END));
        s.lag_seconds = 12.0;
        let v = view("2026-05-01T10:00:05Z", vec![s.clone()]);
        assert!(Gate::Ingestor(v).ready(t(END)));
        s.last_event_time = Some(t("2026-05-01T09:59:59Z"));
        let v = view("2026-05-01T10:00:05Z", vec![s]);
        assert_eq!(v.behind(t(END)), vec!["cw (SOURCE_STATE_RUNNING)"]);
        assert!(!Gate::Ingestor(v).ready(t(END)));
    }

    #[test]
    fn an_idle_source_with_nothing_pending_catches_up_a_minute_after_the_end() {
        let s = source("kube-audit.log", v1::SourceState::Idle);
        let early = view("2026-05-01T10:00:59Z", vec![s.clone()]);
        assert!(!Gate::Ingestor(early).ready(t(END)));
        let settled = view("2026-05-01T10:01:00Z", vec![s.clone()]);
        assert!(Gate::Ingestor(settled.clone()).ready(t(END)));
        // Bytes still to read, a lag, or a batch in flight hold it back.
        let mut pending = s.clone();
        pending.pending_bytes = 1;
        assert!(!Gate::Ingestor(view("2026-05-01T11:00:00Z", vec![pending])).ready(t(END)));
        let mut lagging = s.clone();
        lagging.lag_seconds = 3.5;
        assert!(!Gate::Ingestor(view("2026-05-01T11:00:00Z", vec![lagging])).ready(t(END)));
        let mut in_flight = view("2026-05-01T11:00:00Z", vec![s]);
        in_flight.in_flight_batches = 1;
        assert!(!Gate::Ingestor(in_flight).ready(t(END)));
    }

    #[test]
    fn every_source_must_have_caught_up_and_failed_ones_hold_the_report() {
        let idle = source("a", v1::SourceState::Idle);
        let waiting = source("b", v1::SourceState::Waiting);
        let mut failed = source("c", v1::SourceState::Failed);
        failed.error = "permission denied".into();
        let ok = view("2026-05-01T10:05:00Z", vec![idle.clone(), waiting.clone()]);
        assert!(Gate::Ingestor(ok).ready(t(END)));
        let held = view("2026-05-01T10:05:00Z", vec![idle, waiting, failed]);
        assert_eq!(
            held.behind(t(END)),
            vec!["c (SOURCE_STATE_FAILED): permission denied"]
        );
        // An ingestor without sources: once settled.
        assert!(!Gate::Ingestor(view("2026-05-01T10:00:30Z", vec![])).ready(t(END)));
        assert!(Gate::Ingestor(view("2026-05-01T10:01:00Z", vec![])).ready(t(END)));
    }

    #[test]
    fn the_fixed_gate_waits_the_lag() {
        let lag = SignedDuration::from_mins(30);
        let g = |now| Gate::Fixed { lag, now: t(now) };
        assert!(!g("2026-05-01T10:29:59Z").ready(t(END)));
        assert!(g("2026-05-01T10:30:00Z").ready(t(END)));
    }

    #[test]
    fn a_status_answer_is_read_with_waiting_lines_not_counted_as_pending() {
        let status = v1::GetStatusResponse {
            sources: vec![v1::SourceStatus {
                name: "f".into(),
                state: v1::SourceState::Idle as i32,
                location: Some(v1::source_status::Location::File(v1::FileSourceInfo {
                    bytes_pending: 40,
                    unterminated_lines: vec![v1::UnterminatedLine {
                        bytes: 40,
                        ..Default::default()
                    }],
                    ..Default::default()
                })),
                last_event_time: Some(auditrail_proto::timestamp(t(END))),
                ..Default::default()
            }],
            in_flight_batches: 2,
            ..Default::default()
        };
        let v = IngestorView::from_status(
            &status,
            t("2026-05-01T10:02:00Z"),
            SignedDuration::from_secs(60),
        );
        assert_eq!(v.sources[0].pending_bytes, 0);
        assert_eq!(v.sources[0].last_event_time, Some(t(END)));
        assert_eq!(v.sources[0].state, v1::SourceState::Idle);
        assert_eq!(v.in_flight_batches, 2);
    }
}
