//! `IngestBatch` and friends on a real embedded store in a temporary
//! directory, called through the service trait.

use auditrail_loggen::{GenConfig, Generator};
use auditrail_proto::v1;
use auditrail_proto::v1::ingest_service_server::IngestService as _;
use tonic::Request;

use crate::{Indexer, Settings, open_store};

fn indexer(dir: &std::path::Path) -> Indexer {
    let settings = Settings {
        data_dir: dir.to_owned(),
        max_event_bytes: 64 * 1024,
        retention_days: 0,
        elasticsearch: None,
    };
    Indexer::new(open_store(&settings).unwrap(), &settings)
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
    let lines: Vec<Vec<u8>> = Generator::new(GenConfig::default())
        .take(20)
        .map(String::into_bytes)
        .collect();
    indexer
        .ingest_batch(Request::new(batch("b", &lines)))
        .await
        .unwrap();
    let request = |dry_run| v1::ApplyRetentionRequest {
        cutoff: Some(v1::apply_retention_request::Cutoff::MaxAgeDays(1)),
        clusters: vec![],
        types: vec![],
        dry_run,
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
