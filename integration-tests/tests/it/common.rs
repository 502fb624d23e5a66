//! Helpers shared by the tests that ingest (files, CloudWatch, and the CLI
//! query tests' log): counts over gRPC, and the stored ids read back from
//! the store directory to check "each event of the source exactly once".

use std::collections::BTreeSet;
use std::path::Path;

use auditrail_event::EventId;
use auditrail_integration_tests::{Server, binary, eventually};
use auditrail_proto::v1;
use auditrail_proto::v1::ingest_service_client::IngestServiceClient;
use auditrail_store::{CountMode, Query, SearchRequest, SortOrder, Store as _};

/// `auditrail up` on `data` for `cluster`, keeping every event (the
/// generated ones are from 2026-01-01), with `source` (the flags naming what
/// to ingest) and `env` added.
pub(crate) fn up(data: &Path, cluster: &str, source: &[&str], env: &[(&str, &str)]) -> Server {
    up_keeping(data, cluster, "0", source, env)
}

/// [`up`] with `--retention-days retention_days` ("0" keeps everything).
pub(crate) fn up_keeping(
    data: &Path,
    cluster: &str,
    retention_days: &str,
    source: &[&str],
    env: &[(&str, &str)],
) -> Server {
    let data = data.to_str().unwrap();
    let mut args = vec![
        "up",
        "--data-dir",
        data,
        "--cluster",
        cluster,
        "--retention-days",
        retention_days,
    ];
    args.extend_from_slice(source);
    Server::start(&binary("auditrail").unwrap(), &args, env).unwrap()
}

/// `auditrail up` following the log file `log`, with short batch waits and
/// `env` added.
pub(crate) fn up_following(data: &Path, cluster: &str, log: &Path, env: &[(&str, &str)]) -> Server {
    let mut env = env.to_vec();
    env.push(("AUDITRAIL_INGESTOR__BATCH__MAX_WAIT_MS", "50"));
    up(data, cluster, &["--log-path", log.to_str().unwrap()], &env)
}

/// Writes `lines` as a log in `dir`, starts `auditrail up` on it (store in
/// `dir/data`, retention off, quick batches) and waits until every line
/// is stored.
pub(crate) async fn up_on_lines(dir: &Path, lines: &[String]) -> Server {
    let log = dir.join("kube-audit.log");
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&log, text).unwrap();
    let server = Server::start(
        &binary("auditrail").unwrap(),
        &[
            "up",
            "--data-dir",
            dir.join("data").to_str().unwrap(),
            "--retention-days",
            "0",
            "--log-path",
            log.to_str().unwrap(),
        ],
        &[("AUDITRAIL_INGESTOR__BATCH__MAX_WAIT_MS", "50")],
    )
    .unwrap();
    wait_for_count(&server, lines.len() as u64).await;
    server
}

pub(crate) async fn stored_count(url: &str) -> Option<u64> {
    let mut client = IngestServiceClient::connect(url.to_owned()).await.ok()?;
    let stats = client
        .get_index_stats(v1::GetIndexStatsRequest::default())
        .await
        .ok()?
        .into_inner()
        .stats;
    Some(stats.iter().map(|s| s.event_count).sum())
}

pub(crate) async fn wait_for_count(server: &Server, at_least: u64) -> u64 {
    let url = server.url();
    eventually(&format!("{at_least} stored events"), || {
        let url = url.clone();
        async move { stored_count(&url).await.filter(|&n| n >= at_least) }
    })
    .await
    .unwrap()
}

/// Every stored event id of the trail (not the access records of the
/// calls made), read from the store directory after the server stopped,
/// with duplicates kept visible (a multiset as a sorted Vec).
pub(crate) async fn stored_ids(store_dir: &Path) -> Vec<EventId> {
    let store = auditrail_store_tantivy::TantivyStore::open(
        store_dir,
        auditrail_store_tantivy::TantivyOptions::default(),
    )
    .unwrap();
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .search(SearchRequest {
                query: Query::In(
                    auditrail_store::Field::Type,
                    vec![
                        auditrail_store::Value::Str("kube".to_owned()),
                        auditrail_store::Value::Str("ee".to_owned()),
                    ],
                ),
                sort: SortOrder::OldestFirst,
                limit: 1000,
                after,
                include_raw: false,
                count: CountMode::None,
            })
            .await
            .unwrap();
        ids.extend(page.events.iter().map(|e| e.id));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    ids.sort();
    ids
}

pub(crate) fn expected_ids(cluster: &str, lines: &[String]) -> BTreeSet<EventId> {
    lines
        .iter()
        .map(|l| EventId::compute(cluster, l.as_bytes()))
        .collect()
}

pub(crate) fn assert_exactly_once(stored: &[EventId], expected: &BTreeSet<EventId>) {
    let distinct: BTreeSet<EventId> = stored.iter().copied().collect();
    assert_eq!(distinct.len(), stored.len(), "an event is stored twice");
    let missing = expected.difference(&distinct).count();
    let extra = distinct.difference(expected).count();
    assert_eq!((missing, extra), (0, 0), "missing or unexpected events");
}
