//! Ingest ceiling of the embedded store, for the team's capacity planning:
//! `cargo test --release -p auditrail-store-tantivy --test bench -- --ignored --nocapture`
//! (`store_ceiling` takes `N` and `ROUND` from the environment;
//! `cluster_resources` compares what many clusters cost).
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

/// The child run of `cluster_resources`: `design:clusters` in this
/// variable.
const RESOURCES_CHILD: &str = "AUDITRAIL_BENCH_CLUSTERS_CHILD";
/// Events written to each cluster by `cluster_resources`.
const EVENTS_PER_CLUSTER: usize = 2_000;

/// This process's resident memory (KiB) and thread count.
fn rss_and_threads() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    if std::env::var_os("RSS_DETAIL").is_some() {
        println!(
            "detail: anon {} KiB, file {} KiB",
            field("RssAnon:"),
            field("RssFile:")
        );
    }
    (field("VmRSS:"), field("Threads:"))
}

/// What the clusters of a store cost in memory and threads, per design
/// and number of clusters, each measured in a fresh child process (this
/// binary re-run on `cluster_resources_child`) after writing
/// `EVENTS_PER_CLUSTER` events to every cluster:
/// - `per-cluster`: one writer per cluster, all kept open (the store
///   before writers were pooled);
/// - `pool`: at most `max_open_writers` (default) open;
/// - `pool-idle`: the same once the idle writers were closed;
/// - `one-index`: the same events in one index (one index with the
///   cluster as a field).
///
/// `RSS_DETAIL=1` also prints the anonymous and file-backed parts.
#[test]
#[ignore = "benchmark; run with --release --ignored --nocapture"]
fn cluster_resources() {
    for clusters in [1usize, 16, 64] {
        for design in ["per-cluster", "pool", "pool-idle", "one-index"] {
            let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
                .args([
                    "cluster_resources_child",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(RESOURCES_CHILD, format!("{design}:{clusters}"))
                .output()
                .expect("child");
            let text = String::from_utf8_lossy(&out.stdout);
            match text
                .lines()
                .find_map(|l| l.find("clusters ").map(|at| &l[at..]))
            {
                Some(line) => println!("{line}"),
                None => println!(
                    "{design} with {clusters} clusters failed: {}{}",
                    text,
                    String::from_utf8_lossy(&out.stderr)
                ),
            }
        }
    }
}

#[test]
#[ignore = "run by cluster_resources in a child process"]
#[allow(clippy::cast_precision_loss)] // MiB for a human
fn cluster_resources_child() {
    let Some((design, clusters)) = std::env::var(RESOURCES_CHILD).ok().and_then(|v| {
        let (d, n) = v.split_once(':')?;
        Some((d.to_owned(), n.parse::<usize>().ok()?))
    }) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let names: Vec<String> = (0..clusters)
        .map(|n| {
            if design == "one-index" {
                "all".to_owned()
            } else {
                format!("c{n}")
            }
        })
        .collect();
    let defaults = TantivyOptions::default();
    let options = match design.as_str() {
        "per-cluster" => TantivyOptions {
            max_open_writers: clusters,
            writer_idle_close: std::time::Duration::ZERO,
            ..defaults
        },
        "pool-idle" => TantivyOptions {
            writer_idle_close: std::time::Duration::from_millis(200),
            ..defaults
        },
        _ => TantivyOptions {
            writer_idle_close: std::time::Duration::ZERO,
            ..defaults
        },
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (before, _) = rss_and_threads();
    runtime.block_on(async {
        let store = TantivyStore::open(dir.path(), options).expect("open");
        let started = Instant::now();
        // Generated one cluster at a time: the events in memory are one
        // batch, not the whole run.
        for (name, seed) in names.iter().zip(0u64..) {
            let batch = generated(name, seed, "2026-01-01T00:00:00Z", EVENTS_PER_CLUSTER);
            store.write(batch).await.expect("write");
        }
        let elapsed = started.elapsed();
        if design == "pool-idle" {
            while store.open_writers() > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
        let (rss, threads) = rss_and_threads();
        // What a write costs when its writer is open, and when it must be
        // opened (here: after idle closing or with no place free).
        let again = generated(&names[0], 999, "2026-02-01T00:00:00Z", 10);
        let t = Instant::now();
        store.write(again).await.expect("write");
        let first_write = t.elapsed();
        let more = generated(&names[0], 998, "2026-02-01T00:00:00Z", 10);
        let t = Instant::now();
        store.write(more).await.expect("write");
        let open_write = t.elapsed();
        println!(
            "clusters {clusters:>2}, {design:<11}: RSS {:>6.1} MiB (+{:.1} for the store), \
             {threads:>3} threads, {} writers open; {} events written in {elapsed:.2?} \
             (event generation included); \
             a write of 10 to cluster 0 then {first_write:.2?}, the next {open_write:.2?}",
            rss as f64 / 1024.0,
            rss.saturating_sub(before) as f64 / 1024.0,
            store.open_writers(),
            clusters * EVENTS_PER_CLUSTER,
        );
    });
}
