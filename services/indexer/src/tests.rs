//! `IngestBatch` and friends on a real embedded store in a temporary
//! directory, called through the service trait.

use auditrail_loggen::{GenConfig, Generator};
use auditrail_proto::v1;
use auditrail_proto::v1::ingest_service_server::IngestService as _;
use tonic::Request;

use crate::{Indexer, Settings};

/// A real embedded store in `dir`.
fn open_store(dir: &std::path::Path) -> std::sync::Arc<dyn auditrail_store::Store> {
    std::sync::Arc::new(
        auditrail_store_tantivy::TantivyStore::open(
            dir,
            auditrail_store_tantivy::TantivyOptions::default(),
        )
        .unwrap(),
    )
}

fn indexer(dir: &std::path::Path) -> Indexer {
    let settings = Settings {
        max_event_bytes: 64 * 1024,
        retention_days: 0,
        min_retention_days: 1,
    };
    Indexer::new(open_store(dir), &settings)
}

fn batch(id: &str, lines: &[Vec<u8>]) -> v1::IngestBatchRequest {
    v1::IngestBatchRequest {
        batch_id: id.into(),
        cluster: "c1".into(),
        source: "test".into(),
        events: lines
            .iter()
            .map(|raw| v1::RawEvent {
                raw: raw.clone().into(),
                type_hint: v1::EventType::Kube as i32,
                origin: None,
            })
            .collect(),
    }
}

fn sender() -> crate::Sender {
    crate::Sender {
        name: "ingestor-a".into(),
        groups: vec!["auditrail:ingestors".into()],
        from: "10.0.0.7:51234".into(),
    }
}

#[test]
fn every_event_carries_its_origin_and_the_authenticated_sender() {
    let lines: Vec<Vec<u8>> = Generator::new(GenConfig::default())
        .take(2)
        .map(String::into_bytes)
        .collect();
    let mut events = batch("b", &lines).events;
    events[0].origin = Some(v1::EventOrigin {
        source: "kube-audit".into(),
        position: Some(v1::event_origin::Position::File(v1::FilePosition {
            path: "/var/log/calico/audit/kube-audit.log".into(),
            offset: 4096,
            inode: 77,
        })),
    });
    let now = jiff::Timestamp::now();
    let crate::IndexedBatch { indexed, .. } =
        crate::index_batch("c1", events, 1 << 20, now, 0, &sender());
    let first = indexed[0].provenance.clone().expect("provenance");
    assert_eq!(first.source, "kube-audit");
    assert_eq!(
        first.position,
        Some(auditrail_store::Position::File {
            path: "/var/log/calico/audit/kube-audit.log".into(),
            inode: 77,
            offset: 4096,
        })
    );
    assert_eq!(first.ingested_by, "ingestor-a");
    assert_eq!(first.ingested_by_groups, ["auditrail:ingestors"]);
    assert_eq!(first.ingested_from, "10.0.0.7:51234");
    assert_eq!(first.ingested_at, now);
    // An event sent without an origin says so: no source, no position,
    // but still who sent it.
    let second = indexed[1].provenance.clone().expect("provenance");
    assert_eq!((second.source.as_str(), second.position), ("", None));
    assert_eq!(second.ingested_by, "ingestor-a");
    // The original bytes are untouched.
    assert_eq!(indexed[0].raw, lines[0]);
}

/// Stores `n` generated events (from 2026-01-01) through `IngestBatch`.
async fn ingest_generated(indexer: &Indexer, n: usize) {
    let lines: Vec<Vec<u8>> = Generator::new(GenConfig::default())
        .take(n)
        .map(String::into_bytes)
        .collect();
    indexer
        .ingest_batch(Request::new(batch("b", &lines)))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_batch_is_stored_once_and_bad_events_are_rejected_by_index() {
    let dir = tempfile::tempdir().unwrap();
    let indexer = indexer(dir.path());
    let mut lines: Vec<Vec<u8>> = Generator::new(GenConfig::default())
        .take(50)
        .map(String::into_bytes)
        .collect();
    lines.insert(3, b"{not json".to_vec());
    lines.insert(7, br#"{"kind":"EventList","items":[]}"#.to_vec());
    lines.insert(9, Vec::new());
    lines.insert(11, vec![b'x'; 70 * 1024]);
    let answer = indexer
        .ingest_batch(Request::new(batch("b1", &lines)))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.committed);
    assert_eq!(answer.accepted, 50);
    assert_eq!(answer.duplicates, 0);
    let codes: Vec<(u32, i32)> = answer.rejects.iter().map(|r| (r.index, r.code)).collect();
    assert_eq!(
        codes,
        vec![
            (3, v1::RejectReason::InvalidJson as i32),
            (7, v1::RejectReason::NotAuditEvent as i32),
            (9, v1::RejectReason::Empty as i32),
            (11, v1::RejectReason::TooLarge as i32),
        ]
    );

    // A re-sent batch changes nothing and says so.
    let again = indexer
        .ingest_batch(Request::new(batch("b1", &lines)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((again.accepted, again.duplicates), (0, 50));

    let stats = indexer
        .get_index_stats(Request::new(v1::GetIndexStatsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .stats;
    let total: u64 = stats.iter().map(|s| s.event_count).sum();
    assert_eq!(total, 50);
    assert!(stats.iter().all(|s| s.cluster == "c1"));
}

#[tokio::test]
async fn malformed_requests_are_invalid_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let indexer = indexer(dir.path());
    let mut no_id = batch("", &[]);
    no_id.batch_id.clear();
    let err = indexer.ingest_batch(Request::new(no_id)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let mut no_cluster = batch("b", &[]);
    no_cluster.cluster.clear();
    let err = indexer
        .ingest_batch(Request::new(no_cluster))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let big = batch("b", &vec![b"{}".to_vec(); crate::MAX_BATCH_EVENTS + 1]);
    let err = indexer.ingest_batch(Request::new(big)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let mut bad_cluster = batch(
        "b",
        &[Generator::new(GenConfig::default())
            .next()
            .unwrap()
            .into_bytes()],
    );
    bad_cluster.cluster = "../escape".into();
    let err = indexer
        .ingest_batch(Request::new(bad_cluster))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
}

#[tokio::test]
async fn retention_deletes_by_event_time_and_dry_run_only_counts() {
    let dir = tempfile::tempdir().unwrap();
    let indexer = indexer(dir.path());
    // Events from 2026-01-01: all older than one day from now.
    ingest_generated(&indexer, 20).await;
    let request = |dry_run| v1::ApplyRetentionRequest {
        cutoff: Some(v1::apply_retention_request::Cutoff::MaxAgeDays(1)),
        clusters: vec![],
        types: vec![],
        dry_run,
        force: false,
    };
    let dry = indexer
        .apply_retention(Request::new(request(true)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(dry.deleted_count, 20);
    let real = indexer
        .apply_retention(Request::new(request(false)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(real.deleted_count, 20);
    let again = indexer
        .apply_retention(Request::new(request(false)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.deleted_count, 0);
    let none = v1::ApplyRetentionRequest {
        cutoff: None,
        ..request(false)
    };
    let err = indexer
        .apply_retention(Request::new(none))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
}

/// A max age below the floor (a slip of seconds for days) deletes nothing
/// unless forced; one reaching before 1970 is refused, never answered with
/// an invalid timestamp.
#[tokio::test]
async fn short_and_huge_retentions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let indexer = indexer(dir.path());
    ingest_generated(&indexer, 10).await;
    let seconds = |s: i64, force| v1::ApplyRetentionRequest {
        cutoff: Some(v1::apply_retention_request::Cutoff::MaxAge(
            prost_types::Duration {
                seconds: s,
                nanos: 0,
            },
        )),
        force,
        ..v1::ApplyRetentionRequest::default()
    };
    let err = indexer
        .apply_retention(Request::new(seconds(60, false)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    assert_eq!(
        err.message(),
        "a max age of 60s is shorter than this indexer's min_retention_days (1): it would \
         delete events that recent. Set force to confirm"
    );
    let forced = indexer
        .apply_retention(Request::new(seconds(60, true)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(forced.deleted_count, 10, "forced, it deletes");
    for huge in [
        v1::apply_retention_request::Cutoff::MaxAgeDays(u32::MAX),
        v1::apply_retention_request::Cutoff::MaxAge(prost_types::Duration {
            seconds: i64::MAX,
            nanos: 0,
        }),
    ] {
        let err = indexer
            .apply_retention(Request::new(v1::ApplyRetentionRequest {
                cutoff: Some(huge),
                ..v1::ApplyRetentionRequest::default()
            }))
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
        assert!(
            err.message().contains("reaches before 1970-01-01"),
            "{err:?}"
        );
    }
}

#[test]
fn a_retention_below_the_floor_is_a_configuration_error() {
    let settings = Settings {
        retention_days: 3,
        min_retention_days: 7,
        ..Settings::default()
    };
    assert_eq!(
        settings.check().map_err(|e| e.to_string()),
        Err(
            "retention_days 3 is below min_retention_days 7: lower the floor to keep so short \
             a trail, or set 0 to keep everything"
                .to_owned()
        )
    );
    assert_eq!(
        Settings {
            retention_days: 0,
            ..settings.clone()
        }
        .check(),
        Ok(())
    );
}

#[path = "../../../crates/event/tests/support/real_data.rs"]
mod real_data;

/// The real samples of `shared/data/real` (2017 to 2019 and later), one
/// event per line.
fn real_lines() -> Vec<Vec<u8>> {
    let dir = real_data::real_data_dir();
    let text = std::fs::read_to_string(dir.join("more/liggitt__audit2rbac__demo.ndjson"))
        .expect("shared/data/real beside the checkout");
    text.lines().map(|l| l.as_bytes().to_vec()).collect()
}

#[test]
fn events_past_retention_are_expired_at_ingest_not_stored() {
    let lines = real_lines();
    let recent: Vec<u8> = {
        // A real event, re-dated to a minute ago.
        let mut value: serde_json::Value = serde_json::from_slice(&lines[0]).unwrap();
        let now = jiff::Timestamp::now();
        let minute_ago = now.checked_sub(jiff::SignedDuration::from_mins(1)).unwrap();
        value["stageTimestamp"] = minute_ago.to_string().into();
        value["requestReceivedTimestamp"] = minute_ago.to_string().into();
        value["timestamp"] = minute_ago.to_string().into();
        serde_json::to_vec(&value).unwrap()
    };
    let mut all = lines.clone();
    all.push(recent);
    all.push(b"{not json".to_vec());
    let events = batch("b", &all).events;
    let now = jiff::Timestamp::now();

    let crate::IndexedBatch {
        indexed, rejects, ..
    } = crate::index_batch("c1", events.clone(), 1 << 20, now, 91, &sender());
    assert_eq!(indexed.len(), 1, "only the recent event is stored");
    let codes: Vec<(u32, i32)> = rejects.iter().map(|r| (r.index, r.code)).collect();
    let n = u32::try_from(lines.len()).unwrap();
    let mut want: Vec<(u32, i32)> = (0..n)
        .map(|i| (i, v1::RejectReason::Expired as i32))
        .collect();
    want.push((n + 1, v1::RejectReason::InvalidJson as i32));
    assert_eq!(codes, want);
    assert!(
        rejects[0].reason.contains("2017-09-11T19:55:05Z")
            && rejects[0].reason.contains("retention of 91 days"),
        "{}",
        rejects[0].reason
    );

    // Retention 0 keeps everything: nothing expires.
    let crate::IndexedBatch {
        indexed, rejects, ..
    } = crate::index_batch("c1", events, 1 << 20, now, 0, &sender());
    assert_eq!(indexed.len(), lines.len() + 1);
    assert_eq!(rejects.len(), 1);
    assert_eq!(crate::retention_cutoff(now, 0), None);
}

#[tokio::test]
async fn the_answer_names_the_retention_and_expired_events_are_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        max_event_bytes: 64 * 1024,
        retention_days: 91,
        min_retention_days: 1,
    };
    let indexer = Indexer::new(open_store(dir.path()), &settings);
    let lines = real_lines();
    let answer = indexer
        .ingest_batch(Request::new(batch("b", &lines)))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.committed);
    assert_eq!((answer.accepted, answer.duplicates), (0, 0));
    assert_eq!(answer.rejects.len(), lines.len());
    assert_eq!(answer.retention_days, 91);
    let stats = indexer
        .get_index_stats(Request::new(v1::GetIndexStatsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .stats;
    assert_eq!(stats.iter().map(|s| s.event_count).sum::<u64>(), 0);
}

/// The embedded store, refusing for good every event whose original holds
/// `marker`, as Elasticsearch refuses a document its mapping cannot take:
/// the store's side of the contract the indexer answers for.
struct RefusingStore {
    inner: std::sync::Arc<dyn auditrail_store::Store>,
    marker: &'static [u8],
}

#[tonic::async_trait]
impl auditrail_store::Store for RefusingStore {
    async fn write(
        &self,
        events: Vec<auditrail_store::IndexedEvent>,
    ) -> Result<auditrail_store::WriteOutcome, auditrail_store::StoreError> {
        let refuse = |e: &auditrail_store::IndexedEvent| {
            e.raw.windows(self.marker.len()).any(|w| w == self.marker)
        };
        let refused = events
            .iter()
            .enumerate()
            .filter(|(_, e)| refuse(e))
            .map(|(position, _)| auditrail_store::RefusedEvent {
                position,
                reason: "mapper_parsing_exception: failed to parse".into(),
            })
            .collect();
        let kept = events.into_iter().filter(|e| !refuse(e)).collect();
        let outcome = self.inner.write(kept).await?;
        Ok(auditrail_store::WriteOutcome { refused, ..outcome })
    }
    async fn search(
        &self,
        request: auditrail_store::SearchRequest,
    ) -> Result<auditrail_store::SearchPage, auditrail_store::StoreError> {
        self.inner.search(request).await
    }
    async fn count(
        &self,
        query: &auditrail_store::Query,
    ) -> Result<u64, auditrail_store::StoreError> {
        self.inner.count(query).await
    }
    async fn histogram(
        &self,
        request: auditrail_store::HistogramRequest,
    ) -> Result<auditrail_store::Histogram, auditrail_store::StoreError> {
        self.inner.histogram(request).await
    }
    async fn get(
        &self,
        id: &auditrail_event::EventId,
    ) -> Result<Option<auditrail_store::StoredEvent>, auditrail_store::StoreError> {
        self.inner.get(id).await
    }
    async fn delete_before(
        &self,
        cutoff: jiff::Timestamp,
    ) -> Result<u64, auditrail_store::StoreError> {
        self.inner.delete_before(cutoff).await
    }
    async fn stats(&self) -> Result<Vec<auditrail_store::IndexStats>, auditrail_store::StoreError> {
        self.inner.stats().await
    }
}

#[tokio::test]
async fn events_the_store_refuses_for_good_are_rejects_and_the_rest_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = RefusingStore {
        inner: open_store(dir.path()),
        marker: b"refuse-me",
    };
    let settings = Settings {
        max_event_bytes: 64 * 1024,
        retention_days: 0,
        min_retention_days: 1,
    };
    let indexer = Indexer::new(std::sync::Arc::new(store), &settings);
    let mut lines: Vec<Vec<u8>> = Generator::new(GenConfig::default())
        .take(6)
        .map(String::into_bytes)
        .collect();
    // Position 2 is not even JSON; 4 is an event the store refuses. The
    // store sees events 0, 1, 3, 4, 5, 6: its position 3 is the batch's 4.
    lines.insert(2, b"{not json".to_vec());
    lines[4] = String::from_utf8(lines[4].clone())
        .unwrap()
        .replacen("\"auditID\":\"", "\"auditID\":\"refuse-me-", 1)
        .into_bytes();
    assert!(lines[4].windows(9).any(|w| w == b"refuse-me"));
    let answer = indexer
        .ingest_batch(Request::new(batch("b", &lines)))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.committed);
    assert_eq!((answer.accepted, answer.duplicates), (5, 0));
    let codes: Vec<(u32, i32)> = answer.rejects.iter().map(|r| (r.index, r.code)).collect();
    assert_eq!(
        codes,
        vec![
            (2, v1::RejectReason::InvalidJson as i32),
            (4, v1::RejectReason::StoreRefused as i32),
        ]
    );
    assert!(
        answer.rejects[1]
            .reason
            .contains("mapper_parsing_exception")
    );
}
