//! Writers shared by the clusters of a store: opened by writes, at most
//! `max_open_writers` at once, closed when idle or when another cluster
//! needs the place; and the store's periodic re-verification. What must
//! hold throughout: every acknowledged event is stored exactly once, also
//! across closes, reopens and a restart, and searches see everything
//! committed whether a writer is open or not.

mod common;

use std::collections::BTreeSet;
use std::io::{Seek as _, SeekFrom, Write as _};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use auditrail_event::EventId;
use auditrail_store::{IndexedEvent, Query, SortOrder, Store, StoreError};
use auditrail_store_tantivy::{TantivyOptions, TantivyStore};
use common::{all_pages, generated};

/// Waits (at most a minute: a hang guard, not a timing check) until
/// `done` holds.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_mins(1);
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The ids of every stored event, checked to be distinct.
async fn stored_ids(store: &TantivyStore) -> BTreeSet<EventId> {
    let events = all_pages(store, &Query::All, SortOrder::OldestFirst, 500).await;
    let ids: BTreeSet<EventId> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), events.len(), "an event is stored twice");
    ids
}

fn ids_of(events: &[IndexedEvent]) -> BTreeSet<EventId> {
    events.iter().map(|e| e.id).collect()
}

#[tokio::test]
async fn an_idle_writer_closes_and_reopens_without_loss_or_doubles() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = TantivyOptions {
        writer_idle_close: Duration::from_millis(30),
        ..common::options()
    };
    let first = generated("alpha", 41, "2026-06-01T00:00:00Z", 300);
    let second = generated("alpha", 42, "2026-06-02T00:00:00Z", 200);

    let store = TantivyStore::open(dir.path(), options.clone()).expect("open");
    assert_eq!(store.open_writers(), 0, "opening the store opens no writer");
    let outcome = store.write(first.clone()).await.expect("write");
    assert_eq!(outcome.inserted, 300);
    eventually("the idle writer closed", || store.open_writers() == 0).await;
    // Searches do not need the writer.
    assert_eq!(stored_ids(&store).await, ids_of(&first));

    // The next write opens it again; its duplicate check knows what the
    // closed writer committed.
    let mut both = first.clone();
    both.extend(second.iter().cloned());
    let outcome = store.write(both.clone()).await.expect("write again");
    assert_eq!((outcome.inserted, outcome.duplicates), (200, 300));
    eventually("closed again", || store.open_writers() == 0).await;
    drop(store);

    // A restart: the same events once more are all duplicates.
    let store = TantivyStore::open(dir.path(), options).expect("reopen");
    assert_eq!(stored_ids(&store).await, ids_of(&both));
    let outcome = store.write(both.clone()).await.expect("re-send");
    assert_eq!((outcome.inserted, outcome.duplicates), (0, 500));
    assert_eq!(stored_ids(&store).await, ids_of(&both));
}

/// Many clusters writing at once through one place, with writers closing
/// when idle for a millisecond: writes race with closes and reopens all
/// the time, and every event, sent twice from different tasks, is stored
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_racing_with_closes_store_each_event_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = TantivyOptions {
        max_open_writers: 1,
        writer_idle_close: Duration::from_millis(1),
        ..common::options()
    };
    let store = Arc::new(TantivyStore::open(dir.path(), options.clone()).expect("open"));
    let clusters = ["c0", "c1", "c2", "c3", "c4"];
    let events: Vec<IndexedEvent> = clusters
        .iter()
        .zip(50..)
        .flat_map(|(cluster, seed)| generated(cluster, seed, "2026-06-01T00:00:00Z", 120))
        .collect();
    let batches: Vec<Vec<IndexedEvent>> = events.chunks(15).map(<[_]>::to_vec).collect();
    let mut tasks = Vec::new();
    // Two senders of every batch, in opposite orders.
    for reversed in [false, true] {
        let store = Arc::clone(&store);
        let mut mine = batches.clone();
        if reversed {
            mine.reverse();
        }
        tasks.push(tokio::spawn(async move {
            let mut inserted = 0;
            for batch in mine {
                inserted += store.write(batch).await.expect("write").inserted;
                assert!(store.open_writers() <= 1, "more writers than places");
            }
            inserted
        }));
    }
    let mut inserted = 0;
    for task in tasks {
        inserted += task.await.expect("writer task");
    }
    assert_eq!(inserted, events.len() as u64, "each event inserted once");
    assert_eq!(stored_ids(&store).await, ids_of(&events));
    drop(store);
    let store = TantivyStore::open(dir.path(), options).expect("reopen");
    assert_eq!(stored_ids(&store).await, ids_of(&events));
}

/// More clusters than places: each write of a cluster without a writer
/// closes the one asked for least recently.
#[tokio::test]
async fn clusters_beyond_the_places_take_turns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = TantivyOptions {
        max_open_writers: 2,
        writer_idle_close: Duration::ZERO,
        ..common::options()
    };
    let store = TantivyStore::open(dir.path(), options).expect("open");
    let mut all = Vec::new();
    for round in 0..2u64 {
        for (n, cluster) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            let events = generated(cluster, 100 * round + n as u64, "2026-07-01T00:00:00Z", 20);
            let outcome = store.write(events.clone()).await.expect("write");
            assert_eq!(outcome.inserted, 20);
            assert_eq!(store.open_writers(), 2.min(all.len() / 20 + 1));
            all.extend(events);
        }
    }
    assert_eq!(stored_ids(&store).await, ids_of(&all));
    assert_eq!(store.clusters().len(), 5);
}

#[tokio::test]
async fn a_second_writer_of_the_directory_is_refused_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = common::open(dir.path());
    let err = TantivyStore::open(dir.path(), common::options()).expect_err("second");
    assert!(
        matches!(&err, StoreError::Unavailable(m) if m.contains("in use by another writer")),
        "{err}"
    );
    // Read-only beside it is fine, and so is a new writer once it is gone.
    drop(TantivyStore::open_read_only(dir.path()).expect("read-only"));
    drop(store);
    drop(common::open(dir.path()));
}

/// Inverts `n` bytes in the middle of `file` in place (the live store
/// maps it: it is not truncated and rewritten).
fn flip_in_place(file: &Path, n: u64) {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)
        .expect("open");
    let len = f.metadata().expect("metadata").len();
    assert!(len > 2 * n, "{} has {len} bytes", file.display());
    let bytes = std::fs::read(file).expect("read");
    let start = len / 2 - n / 2;
    let range = usize::try_from(start).expect("small")..usize::try_from(start + n).expect("small");
    let flipped: Vec<u8> = bytes[range].iter().map(|b| !b).collect();
    f.seek(SeekFrom::Start(start)).expect("seek");
    f.write_all(&flipped).expect("write");
    f.sync_all().expect("sync");
}

/// Damage that appears after the check at start is found by the next
/// periodic verification, listed and left out of reads as at start.
#[tokio::test]
async fn periodic_verification_finds_later_damage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = TantivyOptions {
        verify_interval: Duration::from_millis(50),
        ..common::options()
    };
    let store = TantivyStore::open(dir.path(), options).expect("open");
    let early = generated("alpha", 61, "2026-08-01T00:00:00Z", 400);
    let late = generated("alpha", 62, "2026-08-02T00:00:00Z", 300);
    store.write(early.clone()).await.expect("write");
    let before: BTreeSet<_> = std::fs::read_dir(dir.path().join("alpha"))
        .expect("list")
        .map(|e| e.expect("entry").path())
        .collect();
    store.write(late.clone()).await.expect("write");
    assert!(store.damage().await.expect("damage").is_empty());
    let fast = std::fs::read_dir(dir.path().join("alpha"))
        .expect("list")
        .map(|e| e.expect("entry").path())
        .find(|p| !before.contains(p) && p.extension().is_some_and(|e| e == "fast"))
        .expect("the second segment's fast fields");
    flip_in_place(&fast, 64);

    let mut damage = Vec::new();
    let deadline = Instant::now() + Duration::from_mins(1);
    while damage.is_empty() {
        assert!(Instant::now() < deadline, "the damage was never found");
        tokio::time::sleep(Duration::from_millis(20)).await;
        damage = store.damage().await.expect("damage");
    }
    let segment = fast
        .file_stem()
        .and_then(|s| s.to_str())
        .expect("segment id");
    assert_eq!(damage.len(), 1, "{damage:?}");
    assert_eq!(damage[0].segment, segment);
    assert_eq!(damage[0].documents, 300);
    // Reads leave the damaged segment out.
    assert_eq!(stored_ids(&store).await, ids_of(&early));
}
