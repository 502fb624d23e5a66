//! Making reports: the queue of reports to generate, the scheduler that
//! adds one per schedule tick, and the runs themselves (at most
//! `max_concurrent` at once, retried with doubling backoff).
//!
//! - A report is first stored PENDING (by `RunReport` or a tick), then its
//!   id is queued. On start, reports left PENDING or RUNNING by a stopped
//!   process are queued again: a report is never left half made.
//! - The scheduler looks at every definition each `schedule_poll_secs`.
//!   A tick's report (the interval since the previous tick) is due once
//!   the trail has caught up with the interval: as the ingestor's status
//!   says when one is named (`ingestor_url`, or the process's own), else
//!   `trail_lag_secs` after the tick (see [`crate::catch_up`]). Ticks missed while the reporter was down are
//!   made up, oldest first, but not those older than
//!   `max_catch_up_hours` (at most 7 days). A suspended definition's ticks
//!   pass without reports. A new definition's first report is the last
//!   full interval before it was created.
//! - A run that fails on something that may pass (the query service or
//!   the database unavailable) is retried after `retry_backoff_secs`,
//!   doubled each time, up to `max_attempts`; then it is FAILED with the
//!   reason. On shutdown, running reports stop and are queued again at
//!   the next start.
//! - Metrics: `reporter_runs_total{type,outcome}`,
//!   `reporter_run_duration_seconds{type}` and
//!   `reporter_events_replayed_total{type}`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use auditrail_proto::v1;
use auditrail_server::StopSignal;
use jiff::{SignedDuration, Timestamp};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::catch_up::{Gate, Ingestor};
use crate::compute::{Input, compute};
use crate::definition::{Schedule, report_id};
use crate::download::type_name;
use crate::error::ReportError;
use crate::settings::Settings;
use crate::store::Store;
use crate::trail::Trail;

/// What the RPCs and the runner share.
#[derive(Debug)]
pub struct Core {
    /// The database.
    pub store: Arc<Store>,
    /// The settings.
    pub settings: Settings,
    /// Report ids to generate.
    pub queue: mpsc::UnboundedSender<String>,
    /// When the reporter last warned that the ingestor holds reports back.
    pub held_warning: Mutex<Option<Timestamp>>,
}

/// How often, at most, the reporter warns that reports wait for the
/// ingestor.
const HELD_WARNING_EVERY: SignedDuration = SignedDuration::from_mins(10);

/// The intervals a schedule has due.
#[derive(Debug, PartialEq, Eq)]
pub struct Due {
    /// [start, end) of each report to make, oldest first.
    pub intervals: Vec<(Timestamp, Timestamp)>,
    /// The end of the last interval handled (made or skipped).
    pub last: Timestamp,
    /// Whether ticks older than the catch-up window were skipped.
    pub skipped: bool,
}

/// The reports due for `schedule` after the tick `last`, at `now`: each
/// interval whose end `ready` says the trail has caught up with.
pub fn due(
    schedule: &Schedule,
    last: Timestamp,
    now: Timestamp,
    ready: &dyn Fn(Timestamp) -> bool,
    max_catch_up: SignedDuration,
    limit: usize,
) -> Due {
    let mut prev = last;
    let mut skipped = false;
    let horizon = now - max_catch_up;
    if prev < horizon
        && let Some(t) = schedule.at_or_before(horizon)
        && t > prev
    {
        prev = t;
        skipped = true;
    }
    let mut intervals = Vec::new();
    while intervals.len() < limit {
        let Some(next) = schedule.next_after(prev) else {
            break;
        };
        if next > now || !ready(next) {
            break;
        }
        intervals.push((prev, next));
        prev = next;
    }
    Due {
        intervals,
        last: prev,
        skipped,
    }
}

fn now() -> Timestamp {
    Timestamp::now()
}

fn ts(t: Timestamp) -> prost_types::Timestamp {
    auditrail_proto::timestamp(t)
}

/// A protobuf timestamp as a jiff one.
pub fn from_ts(t: &prost_types::Timestamp) -> Option<Timestamp> {
    Timestamp::new(t.seconds, t.nanos).ok()
}

/// Where a new definition's schedule starts: the tick before the last
/// tick at or before its creation, so its first report is the last full
/// interval before it was created (due as soon as the trail has caught
/// up), and every later interval follows.
fn first_tick(schedule: &Schedule, def: &v1::ReportDefinition) -> Option<Timestamp> {
    let created = def.create_time.as_ref().and_then(from_ts)?;
    let last = schedule.at_or_before(created)?;
    schedule.at_or_before(last - SignedDuration::from_secs(1))
}

/// The next tick of `def`, for `ReportDefinition.next_run_time`.
pub fn next_run_time(store: &Store, def: &v1::ReportDefinition) -> Option<Timestamp> {
    if def.suspend || def.schedule.is_empty() {
        return None;
    }
    let schedule = Schedule::parse(&def.schedule).ok()?;
    let last = match store.last_tick(&def.name).ok().flatten() {
        Some(t) => t,
        None => first_tick(&schedule, def)?,
    };
    schedule.next_after(last)
}

impl Core {
    /// Stores report PENDING for `def` over [start, end) and queues it;
    /// its id.
    pub fn enqueue(
        &self,
        def: &v1::ReportDefinition,
        start: Timestamp,
        end: Timestamp,
        trigger: v1::ReportTrigger,
    ) -> Result<String, ReportError> {
        let id = report_id(&def.name, start, end);
        let cluster = if def.cluster.is_empty() {
            self.settings.default_cluster.clone()
        } else {
            def.cluster.clone()
        };
        let report = v1::Report {
            id: id.clone(),
            definition_name: def.name.clone(),
            definition: Some(def.clone()),
            report_type: def.report_type,
            cluster,
            interval: Some(v1::TimeInterval {
                start: Some(ts(start)),
                end: Some(ts(end)),
            }),
            status: v1::ReportStatus::Pending as i32,
            trigger: trigger as i32,
            create_time: Some(ts(now())),
            ..Default::default()
        };
        self.store.put_report(&report, None)?;
        self.queue
            .send(id.clone())
            .map_err(|_| ReportError::db("the reporter is shutting down"))?;
        Ok(id)
    }

    /// The fixed wait after an interval's end.
    pub fn trail_lag(&self) -> SignedDuration {
        SignedDuration::from_secs(self.settings.trail_lag_secs.try_into().unwrap_or(i64::MAX))
    }

    /// One look at every schedule: queues what `gate` says is due.
    pub fn schedule_pass(&self, gate: &Gate) -> Result<(), ReportError> {
        let lag = self.trail_lag();
        let catch_up =
            SignedDuration::from_hours(self.settings.max_catch_up_hours.try_into().unwrap_or(168));
        let now = now();
        for def in self.store.definitions()? {
            if def.schedule.is_empty() {
                continue;
            }
            let Ok(schedule) = Schedule::parse(&def.schedule) else {
                continue;
            };
            let last = match self.store.last_tick(&def.name)? {
                Some(t) => t,
                None => match first_tick(&schedule, &def) {
                    Some(t) => t,
                    None => continue,
                },
            };
            let due = due(&schedule, last, now, &|end| gate.ready(end), catch_up, 100);
            if let Gate::Ingestor(view) = gate
                && let Some(next) = schedule.next_after(due.last)
                && next + lag <= now
                && due.intervals.len() < 100
            {
                self.warn_held(&def.name, next, &view.behind(next), now);
            }
            if due.skipped {
                tracing::warn!(
                    definition = %def.name,
                    "schedule ticks older than the catch-up window were skipped"
                );
            }
            if !def.suspend {
                for (start, end) in &due.intervals {
                    self.enqueue(&def, *start, *end, v1::ReportTrigger::Schedule)?;
                }
            }
            if due.last != last {
                self.store.set_last_tick(&def.name, due.last)?;
            }
        }
        Ok(())
    }
}

impl Core {
    /// Warns (at most every ten minutes) that the ingestor holds back the
    /// report of `name` ending at `end`, longer than `trail_lag_secs`.
    fn warn_held(&self, name: &str, end: Timestamp, behind: &[String], now: Timestamp) {
        let mut last = self
            .held_warning
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|t| t + HELD_WARNING_EVERY > now) {
            return;
        }
        *last = Some(now);
        tracing::warn!(
            definition = %name,
            interval_end = %end,
            sources = %behind.join(", "),
            "a scheduled report waits for the ingestor to catch up with its interval \
             (longer than trail_lag_secs); it starts once these sources have"
        );
    }
}

/// Generates one report's contents.
async fn generate(
    store: &Arc<Store>,
    trail: &Trail,
    report: &v1::Report,
) -> Result<crate::compute::Output, ReportError> {
    let interval = report.interval.unwrap_or_default();
    let (Some(start), Some(end)) = (
        interval.start.as_ref().and_then(from_ts),
        interval.end.as_ref().and_then(from_ts),
    ) else {
        return Err(ReportError::Internal(
            "a stored report without interval".into(),
        ));
    };
    let (snapshot, notes) = match store.snapshot_before(&report.cluster, start)? {
        Some(kept) => (Some(kept.snapshot), kept.notes),
        None => (None, Vec::new()),
    };
    let from = snapshot.as_ref().map(|s| s.request_start);
    let events = trail.changes(&report.cluster, from, end).await?;
    let definition = report.definition.clone().unwrap_or_default();
    let report_type =
        v1::ReportType::try_from(report.report_type).unwrap_or(v1::ReportType::Unspecified);
    let cluster = report.cluster.clone();
    tokio::task::spawn_blocking(move || {
        compute(&Input {
            report_type,
            endpoints: definition.endpoints.as_ref(),
            cluster: &cluster,
            start,
            end,
            snapshot: snapshot.as_ref(),
            events: &events,
        })
        .map(|mut out| {
            out.events_replayed = events.len() as u64;
            if let Some(s) = &snapshot {
                let at = s.request_start.strftime("%Y-%m-%dT%H:%M:%SZ");
                out.warnings
                    .extend(notes.iter().map(|note| format!("snapshot of {at}: {note}")));
            }
            out
        })
    })
    .await
    .map_err(|e| ReportError::Internal(format!("report computation died: {e}")))?
}

/// Runs one report to its end (with retries).
async fn run_one(
    store: Arc<Store>,
    trail: Trail,
    settings: Settings,
    id: String,
    mut stop: StopSignal,
) -> Result<(), ReportError> {
    let Some(mut report) = store.report(&id)? else {
        return Ok(());
    };
    let kind = type_name(
        v1::ReportType::try_from(report.report_type).unwrap_or(v1::ReportType::Unspecified),
    );
    let started = std::time::Instant::now();
    let mut backoff = Duration::from_secs(settings.retry_backoff_secs);
    for attempt in 1..=settings.max_attempts {
        report.status = v1::ReportStatus::Running as i32;
        report.attempts = attempt;
        report.summary = None;
        report.warnings.clear();
        report.generated_time = None;
        store.put_report(&report, None)?;
        match generate(&store, &trail, &report).await {
            Ok(out) => {
                report.status = v1::ReportStatus::Succeeded as i32;
                report.error.clear();
                report.summary = Some(out.summary);
                report.warnings = out.warnings;
                report.events_replayed = out.events_replayed;
                report.generated_time = Some(ts(now()));
                store.put_report(&report, Some(&out.contents))?;
                metrics::counter!("reporter_runs_total", "type" => kind, "outcome" => "succeeded")
                    .increment(1);
                metrics::counter!("reporter_events_replayed_total", "type" => kind)
                    .increment(out.events_replayed);
                metrics::histogram!("reporter_run_duration_seconds", "type" => kind)
                    .record(started.elapsed().as_secs_f64());
                tracing::info!(report = %id, definition = %report.definition_name, "report generated");
                return Ok(());
            }
            Err(e) if e.is_transient() && attempt < settings.max_attempts => {
                tracing::warn!(report = %id, attempt, error = %e, "report failed; retrying");
                report.error = format!("attempt {attempt}: {e}");
                report.status = v1::ReportStatus::Pending as i32;
                store.put_report(&report, None)?;
                metrics::counter!("reporter_runs_total", "type" => kind, "outcome" => "retried")
                    .increment(1);
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = stop.stopped() => return Ok(()),
                }
                backoff = backoff.saturating_mul(2);
            }
            Err(e) => {
                tracing::warn!(report = %id, error = %e, "report failed");
                report.status = v1::ReportStatus::Failed as i32;
                report.error = e.to_string();
                report.generated_time = Some(ts(now()));
                store.put_report(&report, None)?;
                metrics::counter!("reporter_runs_total", "type" => kind, "outcome" => "failed")
                    .increment(1);
                metrics::histogram!("reporter_run_duration_seconds", "type" => kind)
                    .record(started.elapsed().as_secs_f64());
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The background task: runs queued reports and the scheduler until
/// shutdown.
pub async fn run(
    core: Arc<Core>,
    mut queue: mpsc::UnboundedReceiver<String>,
    trail: Trail,
    ingestor: Option<Ingestor>,
    mut stop: StopSignal,
) {
    // Reports a stopped process left unfinished.
    match core.store.reports() {
        Ok(reports) => {
            for r in reports {
                let unfinished = r.status == v1::ReportStatus::Pending as i32
                    || r.status == v1::ReportStatus::Running as i32;
                if unfinished {
                    let _ = core.queue.send(r.id);
                }
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot list unfinished reports"),
    }
    let slots = Arc::new(Semaphore::new(core.settings.max_concurrent));
    let mut running: JoinSet<String> = JoinSet::new();
    let mut in_flight: HashSet<String> = HashSet::new();
    let mut again: HashSet<String> = HashSet::new();
    let mut waiting = std::collections::VecDeque::<String>::new();
    let mut poll = tokio::time::interval(Duration::from_secs(core.settings.schedule_poll_secs));
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Start what waits, while there are slots.
        while let Some(id) = waiting.front().cloned() {
            if in_flight.contains(&id) {
                waiting.pop_front();
                again.insert(id);
                continue;
            }
            let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                break;
            };
            waiting.pop_front();
            in_flight.insert(id.clone());
            let (store, trail, settings, stop) = (
                Arc::clone(&core.store),
                trail.clone(),
                core.settings.clone(),
                stop.clone(),
            );
            running.spawn(async move {
                if let Err(e) = run_one(store, trail, settings, id.clone(), stop).await {
                    tracing::error!(report = %id, error = %e, "report run stopped");
                }
                drop(permit);
                id
            });
        }
        tokio::select! {
            () = stop.stopped() => break,
            Some(id) = queue.recv() => {
                if !waiting.contains(&id) {
                    waiting.push_back(id);
                }
            }
            Some(done) = running.join_next(), if !running.is_empty() => {
                if let Ok(id) = done {
                    in_flight.remove(&id);
                    if again.remove(&id) {
                        waiting.push_back(id);
                    }
                }
            }
            _ = poll.tick() => {
                let settle = SignedDuration::from_secs(
                    core.settings.trail_settle_secs.try_into().unwrap_or(i64::MAX),
                );
                let gate = Ingestor::gate(ingestor.as_ref(), core.trail_lag(), settle).await;
                let core = Arc::clone(&core);
                let pass = tokio::task::spawn_blocking(move || core.schedule_pass(&gate)).await;
                match pass {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "schedule pass failed"),
                    Err(e) => tracing::error!(error = %e, "schedule pass died"),
                }
            }
        }
    }
    // Shutdown: running reports are abandoned (stored RUNNING) and queued
    // again at the next start.
    running.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn core(dir: &std::path::Path) -> (Core, mpsc::UnboundedReceiver<String>) {
        let (queue, receiver) = mpsc::unbounded_channel();
        let core = Core {
            store: Arc::new(Store::open(dir).unwrap()),
            settings: Settings {
                trail_lag_secs: 0,
                ..Settings::default()
            },
            queue,
            held_warning: Mutex::new(None),
        };
        (core, receiver)
    }

    fn daily(name: &str, suspend: bool, created: Timestamp) -> v1::ReportDefinition {
        v1::ReportDefinition {
            name: name.to_owned(),
            report_type: v1::ReportType::Inventory as i32,
            schedule: "0 0 * * *".to_owned(),
            suspend,
            create_time: Some(ts(created)),
            ..Default::default()
        }
    }

    #[test]
    fn a_schedule_pass_queues_each_due_interval_once_and_skips_suspended_ones() {
        let dir = tempfile::tempdir().unwrap();
        let (core, mut queue) = core(dir.path());
        let midnight = Schedule::parse("0 0 * * *")
            .unwrap()
            .at_or_before(now())
            .unwrap();
        let day = SignedDuration::from_hours(24);
        // Created two days ago, a little after midnight: its reports are the
        // day before creation, the creation day and yesterday.
        let created = midnight - day - day + SignedDuration::from_mins(5);
        core.store
            .create_definition(&daily("on", false, created))
            .unwrap();
        core.store
            .create_definition(&daily("off", true, created))
            .unwrap();
        let gate = Gate::Fixed {
            lag: SignedDuration::ZERO,
            now: now(),
        };
        core.schedule_pass(&gate).unwrap();
        let mut queued = Vec::new();
        while let Ok(id) = queue.try_recv() {
            queued.push(id);
        }
        let expected: Vec<String> = [3, 2, 1]
            .map(|back| {
                let start = midnight - day * back;
                report_id("on", start, start + day)
            })
            .to_vec();
        assert_eq!(queued, expected);
        for id in &queued {
            let report = core.store.report(id).unwrap().unwrap();
            assert_eq!(report.status, v1::ReportStatus::Pending as i32);
            assert_eq!(report.trigger, v1::ReportTrigger::Schedule as i32);
        }
        // The suspended one made none, but its ticks passed.
        assert_eq!(core.store.last_tick("off").unwrap(), Some(midnight));
        assert_eq!(core.store.reports().unwrap().len(), 3);
        // A second pass finds nothing new.
        core.schedule_pass(&gate).unwrap();
        assert!(queue.try_recv().is_err());
        assert_eq!(core.store.last_tick("on").unwrap(), Some(midnight));
    }

    #[test]
    fn a_tick_is_due_once_the_trail_has_caught_up() {
        let hourly = Schedule::parse("0 * * * *").unwrap();
        let lag = SignedDuration::from_mins(30);
        let week = SignedDuration::from_hours(168);
        let d = due(
            &hourly,
            t("2026-05-01T10:00:00Z"),
            t("2026-05-01T11:29:00Z"),
            &|end| end + lag <= t("2026-05-01T11:29:00Z"),
            week,
            100,
        );
        assert!(d.intervals.is_empty());
        assert_eq!(d.last, t("2026-05-01T10:00:00Z"));
        let d = due(
            &hourly,
            t("2026-05-01T10:00:00Z"),
            t("2026-05-01T11:30:00Z"),
            &|end| end + lag <= t("2026-05-01T11:30:00Z"),
            week,
            100,
        );
        assert_eq!(
            d.intervals,
            vec![(t("2026-05-01T10:00:00Z"), t("2026-05-01T11:00:00Z"))]
        );
        assert_eq!(d.last, t("2026-05-01T11:00:00Z"));
    }

    #[test]
    fn with_an_ingestor_the_ticks_it_has_caught_up_with_are_due_in_order() {
        use crate::catch_up::{IngestorView, SourceView};
        let hourly = Schedule::parse("0 * * * *").unwrap();
        let week = SignedDuration::from_hours(168);
        // A CloudWatch source that has read up to 11:10: 10:00 and 11:00
        // are caught up, 12:00 is not, whatever trail_lag_secs says.
        let view = IngestorView {
            observed: t("2026-05-01T12:40:00Z"),
            sources: vec![SourceView {
                name: "eks".into(),
                state: v1::SourceState::Running,
                last_event_time: Some(t("2026-05-01T11:10:00Z")),
                lag_seconds: 5400.0,
                pending_bytes: 0,
                error: String::new(),
            }],
            in_flight_batches: 1,
            settle: SignedDuration::from_secs(60),
        };
        let gate = Gate::Ingestor(view);
        let d = due(
            &hourly,
            t("2026-05-01T09:00:00Z"),
            t("2026-05-01T12:40:00Z"),
            &|end| gate.ready(end),
            week,
            100,
        );
        assert_eq!(
            d.intervals,
            vec![
                (t("2026-05-01T09:00:00Z"), t("2026-05-01T10:00:00Z")),
                (t("2026-05-01T10:00:00Z"), t("2026-05-01T11:00:00Z")),
            ]
        );
        assert_eq!(d.last, t("2026-05-01T11:00:00Z"));
    }

    #[test]
    fn missed_ticks_are_made_up_for_at_most_the_window() {
        let daily = Schedule::parse("0 0 * * *").unwrap();
        let lag = SignedDuration::from_mins(30);
        let week = SignedDuration::from_hours(168);
        // Down for 30 days: only the last 7 days' intervals are made.
        let d = due(
            &daily,
            t("2026-04-01T00:00:00Z"),
            t("2026-05-01T12:00:00Z"),
            &|end| end + lag <= t("2026-05-01T12:00:00Z"),
            week,
            100,
        );
        assert!(d.skipped);
        assert_eq!(d.intervals.len(), 7);
        assert_eq!(
            d.intervals[0],
            (t("2026-04-24T00:00:00Z"), t("2026-04-25T00:00:00Z"))
        );
        assert_eq!(d.intervals[6].1, t("2026-05-01T00:00:00Z"));
        // Consecutive intervals, no gap.
        for pair in d.intervals.windows(2) {
            assert_eq!(pair[0].1, pair[1].0);
        }
        // Down for two days: both made up.
        let d = due(
            &daily,
            t("2026-04-29T00:00:00Z"),
            t("2026-05-01T12:00:00Z"),
            &|end| end + lag <= t("2026-05-01T12:00:00Z"),
            week,
            100,
        );
        assert!(!d.skipped);
        assert_eq!(d.intervals.len(), 2);
        // A limit per pass leaves the rest for the next.
        let d = due(
            &daily,
            t("2026-04-29T00:00:00Z"),
            t("2026-05-01T12:00:00Z"),
            &|end| end + lag <= t("2026-05-01T12:00:00Z"),
            week,
            1,
        );
        assert_eq!(d.intervals.len(), 1);
        assert_eq!(d.last, t("2026-04-30T00:00:00Z"));
    }
}
