//! The trail of the trail: every call that reads or changes the audit
//! trail leaves an access record (who, what, when, the result), stored in
//! the trail itself as an event of type `access`.
//!
//! Why this shape:
//! - **Never run unrecorded.** Before a recorded call runs, the layer
//!   reserves a place in a bounded buffer ([`AccessLog`]); when none is
//!   free (the trail has not taken records for a while) the call is
//!   refused with UNAVAILABLE instead of running without a record. The
//!   reservation becomes the record when the call's answer ends, with its
//!   final gRPC code (a streamed export's comes in its trailers).
//! - **Never wait for a commit.** A call's answer does not wait for its
//!   record to be durable: a flusher takes records from the buffer in
//!   batches and writes them to an [`AccessSink`] (the indexer of this
//!   process, or a remote one over `RecordAccess`), retrying a batch until
//!   it is stored. A record's id is a hash of its bytes, so a retried batch
//!   is stored once.
//! - **What a crash can lose:** the records still in the buffer, those of
//!   the calls answered in the last flush interval (200 ms by default) and
//!   of calls still running; never a stored one.
//! - **Records are audit events.** Each is an `audit.k8s.io/v1` Event of
//!   the `auditrail.io` API group, so it is parsed, indexed and searched
//!   like any other (`auditrail search --type access --user alice`). The
//!   request's details come from the handler ([`AccessNote`]): what it was
//!   asked (filters, object) and how many events it returned or wrote.
//!
//! Refused calls (no identity, no permission) are recorded too, when the
//! buffer has room: they ran nothing, so when it has none they are counted
//! in `access_records_dropped_total` rather than refused twice.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::client::{ClientConfig, ClientError};

/// The API group of every access record's `objectRef`.
pub const ACCESS_RECORD_GROUP: &str = auditrail_access::KUBERNETES_GROUP;

/// The `[server.access_log]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessLogConfig {
    /// Record the calls that read or change the trail. Turning it off is
    /// logged at WARN when the server starts.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// The cluster name the records are stored under.
    #[serde(default = "default_cluster")]
    pub cluster: String,
    /// The indexer that stores the records of a process that runs none
    /// (`https://indexer:50051`); unused when the indexer runs in the
    /// same process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indexer_url: Option<String>,
    /// How this process reaches `indexer_url` (`[server.access_log.client]`:
    /// `tls_ca`, `tls_cert`, `tls_key`, `token_file`); its identity needs
    /// the `record_access` permission (built-in role `recorder`).
    #[serde(default, skip_serializing_if = "ClientConfig::is_empty")]
    pub client: ClientConfig,
    /// Most records waiting to be stored; when it is full, recorded calls
    /// are refused with UNAVAILABLE.
    #[serde(default = "default_buffer")]
    pub buffer: usize,
    /// Milliseconds the flusher gathers records before writing a batch.
    #[serde(default = "default_flush_interval_ms")]
    pub flush_interval_ms: u64,
}

fn default_enabled() -> bool {
    true
}

fn default_cluster() -> String {
    "auditrail".to_owned()
}

fn default_buffer() -> usize {
    10_000
}

fn default_flush_interval_ms() -> u64 {
    200
}

impl Default for AccessLogConfig {
    fn default() -> Self {
        Self {
            enabled: default_enabled(),
            cluster: default_cluster(),
            indexer_url: None,
            client: ClientConfig::default(),
            buffer: default_buffer(),
            flush_interval_ms: default_flush_interval_ms(),
        }
    }
}

impl AccessLogConfig {
    /// Whether nothing differs from the defaults.
    pub fn is_default(&self) -> bool {
        self == &Self::default()
    }

    /// The first value that cannot work, named by its key (the cluster
    /// name is checked where the domain's rule is known: by
    /// `auditrail-compose` at start, and by the indexer).
    pub fn check(&self) -> Result<(), String> {
        if self.buffer == 0 {
            return Err("server.access_log.buffer must be at least 1".to_owned());
        }
        if self.flush_interval_ms == 0 || self.flush_interval_ms > 60_000 {
            return Err(format!(
                "server.access_log.flush_interval_ms = {} must be between 1 and 60000",
                self.flush_interval_ms
            ));
        }
        Ok(())
    }
}

/// Where the flusher stores records: the indexer of this process, or a
/// remote indexer's `RecordAccess`.
#[tonic::async_trait]
pub trait AccessSink: Send + Sync + 'static {
    /// Stores `records` (rendered access records) under `cluster`, durably,
    /// once each; an error means nothing is acknowledged and the batch is
    /// sent again.
    async fn record(&self, cluster: &str, records: Vec<Vec<u8>>) -> Result<(), String>;
}

/// A remote indexer, reached over `IngestService.RecordAccess`.
pub(crate) struct RemoteSink {
    client:
        auditrail_proto::v1::ingest_service_client::IngestServiceClient<crate::client::Connection>,
}

impl RemoteSink {
    /// The sink of `url`, connected when first used.
    pub(crate) fn new(url: &str, config: &ClientConfig) -> Result<Self, ClientError> {
        Ok(Self {
            client: auditrail_proto::v1::ingest_service_client::IngestServiceClient::new(
                crate::client::connect_lazy(url, config)?,
            ),
        })
    }
}

#[tonic::async_trait]
impl AccessSink for RemoteSink {
    async fn record(&self, cluster: &str, records: Vec<Vec<u8>>) -> Result<(), String> {
        self.client
            .clone()
            .record_access(auditrail_proto::v1::RecordAccessRequest {
                cluster: cluster.to_owned(),
                records,
            })
            .await
            .map(|_| ())
            .map_err(|status| format!("{}: {}", status.code(), status.message()))
    }
}

/// What a handler says about its call, for the call's access record: what
/// it was asked and how many events it returned or wrote. Found in the
/// request's extensions of recorded calls ([`AccessNote::of`]).
#[derive(Debug, Clone, Default)]
pub struct AccessNote(Arc<Mutex<NoteInner>>);

#[derive(Debug, Default)]
struct NoteInner {
    request: Option<String>,
    events: Option<u64>,
}

impl AccessNote {
    /// The note of `request`, when its call is recorded.
    pub fn of<T>(request: &tonic::Request<T>) -> Option<Self> {
        request.extensions().get::<Self>().cloned()
    }

    /// What was asked: a short description of the filters or object
    /// (at most 4 KiB are kept).
    pub fn describe(&self, what: impl Into<String>) {
        let mut what: String = what.into();
        if what.len() > MAX_DESCRIPTION {
            let mut cut = MAX_DESCRIPTION;
            while !what.is_char_boundary(cut) {
                cut -= 1;
            }
            what.truncate(cut);
            what.push('…');
        }
        self.lock().request = Some(what);
    }

    /// Adds `n` to the events returned (or written).
    pub fn count(&self, n: u64) {
        let mut inner = self.lock();
        inner.events = Some(inner.events.unwrap_or(0).saturating_add(n));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, NoteInner> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Most forwarded addresses (`X-Forwarded-For`, `X-Real-Ip`) a record
/// keeps, the nearest ones: a client may send any list.
pub(crate) const MAX_FORWARDED_IPS: usize = 8;

/// `sourceIPs` as the Kubernetes API server records them: the addresses
/// of `X-Forwarded-For` in order, then `X-Real-Ip` if not among them,
/// then the connection's remote address (`peer`). Only the last is proved
/// (the connection); the others are what the client or the proxies before
/// it (the console, an Ingress) say. Values that are not IP addresses are
/// left out; at most [`MAX_FORWARDED_IPS`] forwarded ones are kept, the
/// nearest.
pub(crate) fn source_ips(headers: &http::HeaderMap, peer: Option<IpAddr>) -> Vec<String> {
    let parse = |v: &str| v.trim().parse::<IpAddr>().ok();
    let mut forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(parse)
        .collect();
    if let Some(real) = headers
        .get("x-real-ip")
        .and_then(|v| v.to_str().ok())
        .and_then(parse)
        && !forwarded.contains(&real)
    {
        forwarded.push(real);
    }
    let skip = forwarded.len().saturating_sub(MAX_FORWARDED_IPS);
    forwarded
        .into_iter()
        .skip(skip)
        .chain(peer)
        .map(|ip| ip.to_string())
        .collect()
}

/// Most bytes of a request description a record keeps.
const MAX_DESCRIPTION: usize = 4096;

/// One call, as its access record says.
#[derive(Debug, Clone)]
pub(crate) struct AccessRecord {
    pub(crate) audit_id: String,
    pub(crate) user: String,
    pub(crate) groups: Vec<String>,
    pub(crate) via: &'static str,
    /// The token forwarder (the console's certificate) that brought the
    /// call on the user's behalf.
    pub(crate) forwarded_by: Option<String>,
    /// `sourceIPs` ([`source_ips`]): the forwarded addresses, then the
    /// connection's own.
    pub(crate) sources: Vec<String>,
    pub(crate) user_agent: Option<String>,
    pub(crate) path: String,
    pub(crate) received: SystemTime,
    pub(crate) completed: SystemTime,
    pub(crate) code: tonic::Code,
    pub(crate) message: String,
    pub(crate) request: Option<String>,
    pub(crate) events: Option<u64>,
}

/// The HTTP status Kubernetes would answer for a gRPC code, so that
/// `--code 403` finds refusals in access records as in API-server events.
fn http_code(code: tonic::Code) -> u16 {
    use tonic::Code;
    match code {
        Code::Ok => 200,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => 400,
        Code::Unauthenticated => 401,
        Code::PermissionDenied => 403,
        Code::NotFound => 404,
        Code::AlreadyExists | Code::Aborted => 409,
        Code::ResourceExhausted => 429,
        Code::Cancelled => 499,
        Code::Unimplemented => 501,
        Code::Unavailable => 503,
        Code::DeadlineExceeded => 504,
        Code::Unknown | Code::Internal | Code::DataLoss => 500,
    }
}

fn rfc3339(time: SystemTime) -> String {
    jiff::Timestamp::try_from(time).map_or_else(
        |_| "1970-01-01T00:00:00Z".to_owned(),
        |t| t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
    )
}

impl AccessRecord {
    /// The record as an `audit.k8s.io/v1` Event of the `auditrail.io`
    /// group: `verb` is the method in lower case, `objectRef.resource` the
    /// service (`query`, `ingest`, `provision`, `report`), the gRPC code in
    /// `responseStatus.reason` and its HTTP equivalent in `code`, the
    /// details in `auditrail.io/…` annotations.
    pub(crate) fn render(&self) -> Vec<u8> {
        let trimmed = self.path.trim_start_matches('/');
        let (service, method) = trimmed.split_once('/').unwrap_or((trimmed, ""));
        let service = service.rsplit('.').next().unwrap_or(service);
        let resource = service
            .strip_suffix("Service")
            .unwrap_or(service)
            .to_ascii_lowercase();
        let mut annotations = serde_json::Map::new();
        annotations.insert(
            "auditrail.io/grpc-code".to_owned(),
            crate::code_name(self.code).into(),
        );
        annotations.insert("auditrail.io/authenticated-by".to_owned(), self.via.into());
        if let Some(forwarder) = &self.forwarded_by {
            annotations.insert(
                "auditrail.io/forwarded-by".to_owned(),
                forwarder.clone().into(),
            );
        }
        if let Some(request) = &self.request {
            annotations.insert("auditrail.io/request".to_owned(), request.clone().into());
        }
        if let Some(events) = self.events {
            annotations.insert("auditrail.io/events".to_owned(), events.to_string().into());
        }
        let mut status = serde_json::json!({
            "metadata": {},
            "status": if self.code == tonic::Code::Ok { "Success" } else { "Failure" },
            "code": http_code(self.code),
            "reason": crate::code_name(self.code),
        });
        if !self.message.is_empty() {
            status["message"] = self.message.clone().into();
        }
        let mut event = serde_json::json!({
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "Metadata",
            "auditID": self.audit_id,
            "stage": "ResponseComplete",
            "requestURI": self.path,
            "verb": method.to_ascii_lowercase(),
            "user": {"username": self.user, "groups": self.groups},
            "sourceIPs": self.sources,
            "objectRef": {
                "resource": resource,
                "apiGroup": ACCESS_RECORD_GROUP,
                "apiVersion": "v1",
            },
            "responseStatus": status,
            "requestReceivedTimestamp": rfc3339(self.received),
            "stageTimestamp": rfc3339(self.completed),
            "annotations": annotations,
        });
        if let Some(agent) = &self.user_agent {
            event["userAgent"] = agent.clone().into();
        }
        serde_json::to_vec(&event).unwrap_or_default()
    }
}

/// The buffer of records waiting for the flusher, shared by the layer.
#[derive(Debug, Clone)]
pub(crate) struct AccessLog {
    sender: mpsc::Sender<AccessRecord>,
}

/// The place of one record in the buffer, reserved before its call runs.
pub(crate) struct Reservation {
    permit: mpsc::OwnedPermit<AccessRecord>,
}

impl AccessLog {
    /// The log and its flusher, which writes to `sink` until every
    /// [`AccessLog`] clone and reservation is gone and the buffer is empty.
    pub(crate) fn new(config: &AccessLogConfig, sink: Arc<dyn AccessSink>) -> (Self, Flusher) {
        let (sender, receiver) = mpsc::channel(config.buffer);
        (
            Self { sender },
            Flusher {
                receiver,
                sink,
                cluster: config.cluster.clone(),
                interval: Duration::from_millis(config.flush_interval_ms),
            },
        )
    }

    /// A place for the record of a call about to run; `None` when the
    /// buffer is full.
    pub(crate) fn reserve(&self) -> Option<Reservation> {
        match self.sender.clone().try_reserve_owned() {
            Ok(permit) => Some(Reservation { permit }),
            Err(_) => None,
        }
    }
}

impl Reservation {
    fn send(self, record: AccessRecord) {
        self.permit.send(record);
        metrics::counter!("access_records_total").increment(1);
    }
}

/// Most records written in one batch.
const MAX_BATCH: usize = 1000;
/// The longest wait between two tries of a batch the sink refused.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Takes records from the buffer and stores them, in batches.
pub(crate) struct Flusher {
    receiver: mpsc::Receiver<AccessRecord>,
    sink: Arc<dyn AccessSink>,
    cluster: String,
    interval: Duration,
}

impl std::fmt::Debug for Flusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flusher")
            .field("cluster", &self.cluster)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl Flusher {
    /// Runs until the buffer is closed (the server is gone) and empty.
    pub(crate) async fn run(mut self) {
        let mut batch = Vec::new();
        while let Some(first) = self.receiver.recv().await {
            batch.push(first);
            // Gather what arrives within the interval, so that a burst of
            // calls costs one commit.
            let deadline = tokio::time::Instant::now() + self.interval;
            while batch.len() < MAX_BATCH {
                match tokio::time::timeout_at(deadline, self.receiver.recv()).await {
                    Ok(Some(record)) => batch.push(record),
                    Ok(None) | Err(_) => break,
                }
            }
            let records: Vec<Vec<u8>> = batch.drain(..).map(|r| r.render()).collect();
            self.store(records).await;
        }
    }

    /// Stores `records`, retrying with backoff until the sink takes them.
    async fn store(&self, records: Vec<Vec<u8>>) {
        let mut backoff = Duration::from_millis(100);
        let count = records.len() as u64;
        loop {
            match self.sink.record(&self.cluster, records.clone()).await {
                Ok(()) => {
                    metrics::counter!("access_records_stored_total").increment(count);
                    return;
                }
                Err(err) => {
                    metrics::counter!("access_record_write_failures_total").increment(1);
                    tracing::warn!(
                        error = %err,
                        records = count,
                        retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                        "cannot store access records; retrying (recorded calls are refused once the buffer is full)"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

/// What the layer keeps of a recorded call until its answer ends.
pub(crate) struct Pending {
    pub(crate) reservation: Reservation,
    pub(crate) record: AccessRecord,
    pub(crate) note: AccessNote,
}

impl Pending {
    fn finish(self, code: tonic::Code, message: String) {
        let Self {
            reservation,
            mut record,
            note,
        } = self;
        let inner = note.lock();
        record.request.clone_from(&inner.request);
        record.events = inner.events;
        drop(inner);
        record.completed = SystemTime::now();
        record.code = code;
        record.message = message;
        reservation.send(record);
    }
}

/// A response body that sends the call's access record when it ends (or
/// is dropped), with the call's final code: the status of the response
/// head for a refused call, else that of the trailers, else CANCELLED when
/// the client went away before the end.
pub struct RecordedBody<B> {
    inner: B,
    pending: Option<Pending>,
    /// The code the response head carried, if any.
    head: Option<(tonic::Code, String)>,
}

impl<B> RecordedBody<B> {
    /// A body that records nothing.
    pub(crate) fn plain(inner: B) -> Self {
        Self {
            inner,
            pending: None,
            head: None,
        }
    }

    /// A body that sends `pending`'s record when it ends.
    pub(crate) fn recording(inner: B, pending: Pending, headers: &http::HeaderMap) -> Self {
        Self {
            inner,
            pending: Some(pending),
            head: status_of(headers),
        }
    }

    fn finish(&mut self, code: tonic::Code, message: String) {
        if let Some(pending) = self.pending.take() {
            pending.finish(code, message);
        }
    }
}

impl<B: Default> Default for RecordedBody<B> {
    fn default() -> Self {
        Self::plain(B::default())
    }
}

/// The gRPC status of response headers or trailers, if they carry one.
fn status_of(headers: &http::HeaderMap) -> Option<(tonic::Code, String)> {
    let code = headers.get("grpc-status")?;
    let code = tonic::Code::from_bytes(code.as_bytes());
    let message = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .map(|m| {
            percent_decode(m)
                .chars()
                .take(crate::ECHO_CHARS * 4)
                .collect()
        })
        .unwrap_or_default();
    Some((code, message))
}

/// gRPC messages travel percent-encoded.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl<B> http_body::Body for RecordedBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let polled = std::pin::Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref()
                    && let Some((code, message)) = status_of(trailers)
                {
                    this.finish(code, message);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                this.finish(tonic::Code::Internal, "the answer failed".to_owned());
            }
            Poll::Ready(None) => {
                let (code, message) = this.head.take().unwrap_or((tonic::Code::Ok, String::new()));
                this.finish(code, message);
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for RecordedBody<B> {
    fn drop(&mut self) {
        let (code, message) = self.head.take().unwrap_or((
            tonic::Code::Cancelled,
            "the client went away before the answer ended".to_owned(),
        ));
        self.finish(code, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> AccessRecord {
        AccessRecord {
            audit_id: "6f0c3b8e-1c1e-4d6a-9c52-1f3b2a7e9d10".to_owned(),
            user: "alice".to_owned(),
            groups: vec!["viewer".to_owned()],
            via: "token",
            forwarded_by: None,
            sources: vec!["10.0.0.7".to_owned()],
            user_agent: Some("auditrail/0.1".to_owned()),
            path: "/auditrail.v1.QueryService/Search".to_owned(),
            received: SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_900_123),
            completed: SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_900_123_250),
            code: tonic::Code::PermissionDenied,
            message: "alice may not read cluster \"b\"".to_owned(),
            request: Some("clusters=b".to_owned()),
            events: Some(0),
        }
    }

    #[test]
    fn a_record_is_an_audit_event_of_the_auditrail_group() {
        let json: serde_json::Value =
            serde_json::from_slice(&record().render()).expect("valid JSON");
        assert_eq!(json["apiVersion"], "audit.k8s.io/v1");
        assert_eq!(json["verb"], "search");
        assert_eq!(json["objectRef"]["apiGroup"], "auditrail.io");
        assert_eq!(json["objectRef"]["resource"], "query");
        assert_eq!(json["user"]["username"], "alice");
        assert_eq!(json["sourceIPs"][0], "10.0.0.7");
        assert_eq!(json["responseStatus"]["code"], 403);
        assert_eq!(json["responseStatus"]["reason"], "PERMISSION_DENIED");
        assert_eq!(
            json["requestReceivedTimestamp"],
            "2025-12-05T02:02:03.000000Z"
        );
        assert_eq!(json["stageTimestamp"], "2025-12-05T02:02:03.250000Z");
        assert_eq!(json["annotations"]["auditrail.io/request"], "clusters=b");
        assert_eq!(json["annotations"]["auditrail.io/events"], "0");
        assert_eq!(
            json["annotations"]["auditrail.io/authenticated-by"],
            "token"
        );
        assert!(
            json["annotations"]
                .get("auditrail.io/forwarded-by")
                .is_none()
        );
        let forwarded = AccessRecord {
            forwarded_by: Some("auditrail-console".to_owned()),
            ..record()
        };
        let json: serde_json::Value =
            serde_json::from_slice(&forwarded.render()).expect("valid JSON");
        assert_eq!(
            json["annotations"]["auditrail.io/forwarded-by"],
            "auditrail-console"
        );
        assert_eq!(json["user"]["username"], "alice");
    }

    #[test]
    fn source_ips_list_the_forwarded_addresses_then_the_connections() {
        let peer: IpAddr = "10.1.2.3".parse().expect("an address");
        let mut headers = http::HeaderMap::new();
        assert_eq!(source_ips(&headers, Some(peer)), ["10.1.2.3"]);
        assert!(source_ips(&headers, None).is_empty());
        headers.insert(
            "x-forwarded-for",
            http::HeaderValue::from_static("203.0.113.9, not-an-ip ,2001:db8::1"),
        );
        headers.append(
            "x-forwarded-for",
            http::HeaderValue::from_static("192.0.2.4"),
        );
        headers.insert("x-real-ip", http::HeaderValue::from_static("192.0.2.4"));
        assert_eq!(
            source_ips(&headers, Some(peer)),
            ["203.0.113.9", "2001:db8::1", "192.0.2.4", "10.1.2.3"]
        );
        headers.insert("x-real-ip", http::HeaderValue::from_static("192.0.2.5"));
        assert_eq!(
            source_ips(&headers, Some(peer)),
            [
                "203.0.113.9",
                "2001:db8::1",
                "192.0.2.4",
                "192.0.2.5",
                "10.1.2.3"
            ]
        );
        // A long list keeps the nearest addresses, and the connection's.
        let long: Vec<String> = (0..20).map(|i| format!("192.0.2.{i}")).collect();
        headers.remove("x-real-ip");
        headers.insert(
            "x-forwarded-for",
            http::HeaderValue::from_str(&long.join(",")).expect("a header value"),
        );
        let kept = source_ips(&headers, Some(peer));
        assert_eq!(kept.len(), MAX_FORWARDED_IPS + 1);
        assert_eq!(kept[0], "192.0.2.12");
        assert_eq!(kept[MAX_FORWARDED_IPS], "10.1.2.3");
    }

    #[test]
    fn descriptions_are_bounded_and_grpc_messages_decoded() {
        let note = AccessNote::default();
        note.describe("é".repeat(10_000));
        let kept = note.lock().request.clone().expect("described");
        assert!(
            kept.len() <= MAX_DESCRIPTION + '…'.len_utf8(),
            "{}",
            kept.len()
        );
        assert_eq!(percent_decode("a%20b%zz%"), "a b%zz%");
    }

    #[test]
    fn a_full_buffer_refuses_a_reservation_until_a_record_is_taken() {
        struct Never;
        #[tonic::async_trait]
        impl AccessSink for Never {
            async fn record(&self, _: &str, _: Vec<Vec<u8>>) -> Result<(), String> {
                Err("down".to_owned())
            }
        }
        let config = AccessLogConfig {
            buffer: 2,
            ..AccessLogConfig::default()
        };
        let (log, mut flusher) = AccessLog::new(&config, Arc::new(Never));
        let first = log.reserve().expect("room for one");
        let _second = log.reserve().expect("room for two");
        assert!(log.reserve().is_none(), "a third does not fit");
        first.send(record());
        assert!(
            log.reserve().is_none(),
            "a sent record still holds its place"
        );
        let taken = flusher.receiver.try_recv().expect("the record is buffered");
        assert_eq!(taken.user, "alice");
        assert!(log.reserve().is_some(), "taking it frees its place");
    }

    #[test]
    fn configuration_errors_name_the_key() {
        let bad = AccessLogConfig {
            buffer: 0,
            ..AccessLogConfig::default()
        };
        assert!(
            bad.check()
                .unwrap_err()
                .contains("server.access_log.buffer")
        );
        let bad = AccessLogConfig {
            flush_interval_ms: 0,
            ..AccessLogConfig::default()
        };
        assert!(
            bad.check()
                .unwrap_err()
                .contains("server.access_log.flush_interval_ms")
        );
        assert!(AccessLogConfig::default().check().is_ok());
    }
}
