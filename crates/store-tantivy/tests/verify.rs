//! Damaged index files: a store written with generated events, bytes then
//! flipped in one segment's doc store (`.store`) or fast fields (`.fast`).
//! The verification names the segment, the file, the events it holds and
//! their time range (computed here from the events written); the open store
//! leaves the damaged segment out of every read instead of returning its
//! garbage, and re-sent events of that segment are stored again.

mod common;

use std::path::{Path, PathBuf};

use auditrail_event::EventId;
use auditrail_store::{IndexedEvent, Query, SortOrder, Store};
use auditrail_store_tantivy::{TantivyStore, VerifyReport};
use common::{all_pages, generated, open, sorted};
use jiff::Timestamp;

const CLUSTER: &str = "alpha";
/// One write (so one commit, one segment) per batch; the sizes differ, so
/// a segment's document count says which batch it holds.
const BATCHES: [usize; 3] = [400, 700, 1000];

fn batches() -> Vec<Vec<IndexedEvent>> {
    let mut all = generated(CLUSTER, 11, "2026-02-01T00:00:00Z", BATCHES.iter().sum());
    let mut out = Vec::new();
    for size in BATCHES {
        let rest = all.split_off(size);
        out.push(all);
        all = rest;
    }
    out
}

/// A store holding the batches, one segment each; closed again.
async fn written(dir: &Path) -> Vec<Vec<IndexedEvent>> {
    let batches = batches();
    let store = open(dir);
    for batch in &batches {
        let outcome = store.write(batch.clone()).await.expect("write");
        assert_eq!(
            outcome.inserted,
            batch.len() as u64,
            "generated ids are distinct"
        );
    }
    drop(store);
    batches
}

/// The files of the index with this extension, by name.
fn files_with(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(CLUSTER))
        .expect("index directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    files
}

/// Inverts `n` bytes in the middle of `file`.
fn flip(file: &Path, n: usize) {
    let mut bytes = std::fs::read(file).expect("read");
    assert!(
        bytes.len() > 2 * n,
        "{} has {} bytes",
        file.display(),
        bytes.len()
    );
    let start = bytes.len() / 2 - n / 2;
    for b in &mut bytes[start..start + n] {
        *b = !*b;
    }
    std::fs::write(file, bytes).expect("write");
}

fn name(path: &Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .expect("utf-8 name")
        .to_owned()
}

/// The batch a damaged segment holds, and its time range (times are
/// stored floored to the microsecond).
fn expected_range(batch: &[IndexedEvent]) -> (Timestamp, Timestamp) {
    let floor = |t: Timestamp| Timestamp::from_microsecond(t.as_microsecond()).expect("in range");
    let lo = batch.iter().map(|e| e.time).min().expect("events");
    let hi = batch.iter().map(|e| e.time).max().expect("events");
    (floor(lo), floor(hi))
}

/// Checks that `report` names exactly the segment of `file`, that file,
/// one of the batches by its size and that batch's time range; returns
/// the batch's index.
fn assert_names(report: &VerifyReport, file: &Path, batches: &[Vec<IndexedEvent>]) -> usize {
    assert!(!report.is_clean());
    assert_eq!(report.clusters.len(), 1);
    let cluster = &report.clusters[0];
    assert_eq!(cluster.cluster, CLUSTER);
    assert_eq!(cluster.segments, BATCHES.len());
    assert_eq!(cluster.documents, BATCHES.iter().sum::<usize>() as u64);
    assert_eq!(cluster.error, None);
    assert_eq!(cluster.damaged.len(), 1, "{:?}", cluster.damaged);
    let damage = &cluster.damaged[0];
    let file_name = name(file);
    let segment = file_name.split('.').next().expect("segment id");
    assert_eq!(damage.cluster, CLUSTER);
    assert_eq!(damage.segment, segment);
    assert_eq!(damage.files.len(), 1, "{:?}", damage.files);
    assert_eq!(damage.files[0].name, file_name);
    assert_eq!(damage.files[0].problem, "checksum mismatch");
    let n = batches
        .iter()
        .position(|b| b.len() as u64 == damage.documents)
        .expect("the segment holds one batch");
    let (oldest, newest) = expected_range(&batches[n]);
    assert_eq!(damage.oldest, Some(oldest));
    assert_eq!(damage.newest, Some(newest));
    let text = damage.describe();
    assert!(
        text.contains(segment) && text.contains(&file_name) && text.contains(&oldest.to_string()),
        "{text}"
    );
    n
}

fn ids(events: &[IndexedEvent]) -> Vec<(Timestamp, EventId)> {
    sorted(events, SortOrder::OldestFirst)
}

/// Opens the damaged store, verifies it in the background and checks
/// that every read leaves the damaged batch out (no reordered or garbled
/// events), then that re-sending that batch stores it again.
async fn serves_the_rest(dir: &Path, file: &Path, batches: &[Vec<IndexedEvent>], damaged: usize) {
    let store = open(dir);
    let report = store
        .verify_in_background(std::time::Duration::ZERO)
        .expect("start")
        .join()
        .expect("verification thread");
    assert_eq!(assert_names(&report, file, batches), damaged);
    let listed = store.damage().await.expect("damage");
    assert_eq!(listed, report.clusters[0].damaged);

    let healthy: Vec<IndexedEvent> = batches
        .iter()
        .enumerate()
        .filter(|(n, _)| *n != damaged)
        .flat_map(|(_, b)| b.clone())
        .collect();
    let found = all_pages(&store, &Query::All, SortOrder::OldestFirst, 333).await;
    let found: Vec<_> = found.iter().map(|e| (e.time, e.id)).collect();
    assert_eq!(found, ids(&healthy));
    assert_eq!(
        store.count(&Query::All).await.expect("count"),
        healthy.len() as u64
    );
    let stats = store.stats().await.expect("stats");
    assert_eq!(
        stats.iter().map(|s| s.events).sum::<u64>(),
        healthy.len() as u64
    );
    let lost = &batches[damaged][0];
    assert_eq!(store.get(&lost.id).await.expect("get"), None);
    let kept = &healthy[0];
    assert!(store.get(&kept.id).await.expect("get").is_some());

    // The damaged segment's events are not served, so a re-send (the
    // ingestor's logs read again) stores them anew, in a healthy segment;
    // the damaged files stay where they were.
    let outcome = store
        .write(batches[damaged].clone())
        .await
        .expect("re-send");
    assert_eq!(outcome.inserted, batches[damaged].len() as u64);
    let all: Vec<IndexedEvent> = batches.concat();
    let found = all_pages(&store, &Query::All, SortOrder::OldestFirst, 500).await;
    let found: Vec<_> = found.iter().map(|e| (e.time, e.id)).collect();
    assert_eq!(found, ids(&all));
    drop(store);
    assert!(file.is_file(), "nothing is deleted");
}

#[tokio::test]
async fn an_undamaged_store_verifies_clean() {
    let dir = tempfile::tempdir().expect("tempdir");
    written(dir.path()).await;
    let report = TantivyStore::verify_dir(dir.path()).expect("verify");
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.clusters.len(), 1);
    assert_eq!(report.clusters[0].segments, BATCHES.len());
    assert_eq!(
        report.clusters[0].documents,
        BATCHES.iter().sum::<usize>() as u64
    );

    let store = open(dir.path());
    let report = store
        .verify_in_background(std::time::Duration::ZERO)
        .expect("start")
        .join()
        .expect("verification thread");
    assert!(report.is_clean(), "{report:?}");
    assert!(store.damage().await.expect("damage").is_empty());
}

#[tokio::test]
async fn flipped_bytes_in_a_doc_store_are_reported_and_left_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let batches = written(dir.path()).await;
    let stores = files_with(dir.path(), "store");
    assert_eq!(stores.len(), BATCHES.len(), "one segment per batch");
    let file = &stores[1];
    flip(file, 64);

    let report = TantivyStore::verify_dir(dir.path()).expect("verify");
    // The time range comes from the intact fast fields.
    let damaged = assert_names(&report, file, &batches);
    serves_the_rest(dir.path(), file, &batches, damaged).await;
}

#[tokio::test]
async fn flipped_bytes_in_fast_fields_are_reported_and_left_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let batches = written(dir.path()).await;
    let fast = files_with(dir.path(), "fast");
    assert_eq!(fast.len(), BATCHES.len(), "one segment per batch");
    // The largest segment: its fast fields hold more than 8 KiB.
    let file = fast
        .iter()
        .max_by_key(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .expect("a fast file");
    flip(file, 4096);

    let report = TantivyStore::verify_dir(dir.path()).expect("verify");
    // The time range comes from the times stored with the documents.
    let damaged = assert_names(&report, file, &batches);
    serves_the_rest(dir.path(), file, &batches, damaged).await;
}

#[tokio::test]
async fn a_missing_directory_is_an_error_and_an_empty_one_is_clean() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(TantivyStore::verify_dir(&dir.path().join("absent")).is_err());
    let report = TantivyStore::verify_dir(dir.path()).expect("verify");
    assert!(report.is_clean() && report.clusters.is_empty());
}
