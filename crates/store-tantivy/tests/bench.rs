//! Ingest ceiling of the embedded store, for the team's capacity planning:
//! `cargo test --release -p auditrail-store-tantivy --test bench -- --ignored --nocapture`
//! (`store_ceiling` takes `N` and `ROUND` from the environment).
//! Not run in CI (timing depends on the machine).

mod common;

use std::sync::Arc;
use std::time::Instant;

use auditrail_store::{IndexedEvent, Query, Store};
use auditrail_store_tantivy::{TantivyOptions, TantivyStore};
use common::generated;

const EVENTS: usize = 100_000;

fn events() -> Vec<IndexedEvent> {
    let mut events = generated("alpha", 31, "2026-01-01T00:00:00Z", EVENTS / 2);
    events.extend(generated("beta", 32, "2026-01-01T00:00:00Z", EVENTS / 2));
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run with --release --ignored --nocapture"]
#[allow(clippy::cast_precision_loss)] // rates and MiB for a human
async fn ingest_100k_generated_events() {
    let events = events();
    let bytes: usize = events.iter().map(|e| e.raw.len()).sum();
    for (writers, batch) in [(1usize, 1000usize), (4, 1000), (1, 10_000)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            Arc::new(TantivyStore::open(dir.path(), TantivyOptions::default()).expect("open"));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..writers {
            let store = Arc::clone(&store);
            let mine: Vec<IndexedEvent> = events
                .chunks(batch)
                .skip(w)
                .step_by(writers)
                .flatten()
                .cloned()
                .collect();
            tasks.push(tokio::spawn(async move {
                for chunk in mine.chunks(batch) {
                    store.write(chunk.to_vec()).await.expect("write");
                }
            }));
        }
        for task in tasks {
            task.await.expect("writer");
        }
        let elapsed = started.elapsed();
        assert_eq!(
            store.count(&Query::All).await.expect("count"),
            EVENTS as u64
        );
        let stats = store.stats().await.expect("stats");
        // Both types of a cluster report the whole index: count it once.
        let sizes: std::collections::BTreeMap<&str, u64> = stats
            .iter()
            .map(|s| (s.cluster.as_str(), s.size_bytes))
            .collect();
        let size: u64 = sizes.values().sum();
        println!(
            "{writers} writer(s), batches of {batch}: {EVENTS} events ({:.1} MiB of JSON) in {:.2?}: \
             {:.0} events/s; ~{:.1} MiB on disk",
            bytes as f64 / 1_048_576.0,
            elapsed,
            EVENTS as f64 / elapsed.as_secs_f64(),
            size as f64 / 1_048_576.0,
        );
    }
}

/// A setting of `store_ceiling` from the environment, else its default.
fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The store's own ceiling on one cluster: `N` pre-parsed events (default
/// 200,000) written as concurrent writes of 2,000, with commits of at most
/// `ROUND` documents (default 100,000): what tantivy, the duplicate check
/// and the commits cost without gRPC, parsing or the ingestor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run with --release --ignored --nocapture"]
#[allow(clippy::cast_precision_loss)] // rates for a human
async fn store_ceiling() {
    let n = knob("N", 200_000);
    let round = knob("ROUND", 100_000);
    let events = generated("alpha", 31, "2026-01-01T00:00:00Z", n);
    let dir = tempfile::tempdir().expect("tempdir");
    let options = TantivyOptions {
        commit_max_docs: round,
        commit_max_delay: std::time::Duration::from_mins(1),
        writer_memory_bytes: 256 << 20,
        ..TantivyOptions::default()
    };
    let store = Arc::new(TantivyStore::open(dir.path(), options).expect("open"));
    let started = Instant::now();
    let writes: Vec<_> = events
        .chunks(2_000)
        .map(|chunk| {
            let store = Arc::clone(&store);
            let chunk = chunk.to_vec();
            tokio::spawn(async move { store.write(chunk).await.expect("write") })
        })
        .collect();
    let mut inserted = 0;
    for write in writes {
        inserted += write.await.expect("writer").inserted;
    }
    let elapsed = started.elapsed();
    assert_eq!(inserted, n as u64);
    assert_eq!(store.count(&Query::All).await.expect("count"), n as u64);
    println!(
        "store ceiling: {n} events, commits of at most {round}: {elapsed:.2?}, {:.0} events/s",
        n as f64 / elapsed.as_secs_f64()
    );
}
