//! `cargo xtask bench`: run benchmarks in release mode and print figures.
//!
//! - `parse`: the per-event CPU cost (a `harness = false` bench target).
//! - `ingest`: file to committed and searchable, end to end: a generated log
//!   of about 1 KB events, the release `auditrail run --service ingestor` and
//!   `--service indexer` as separate processes over loopback gRPC, timed
//!   until the indexer has committed every event; events/s, MB/s and the
//!   peak RSS of each process; once with the indexer's access records off
//!   and once on (each batch leaves one).
//! - `store`: the embedded store's own ceiling without gRPC or parsing
//!   (`store_ceiling`, `crates/store-tantivy/tests/bench.rs`) and tantivy's
//!   alone on the same documents (`tantivy_ceiling`, a unit test of that
//!   crate), one and two indexing threads; both are ignored tests run with
//!   `--ignored --nocapture`, and take `N` (events) from the environment.
//! - `query`: p50/p99 latency of timeline pages, filtered searches, counts
//!   and histograms, and export MB/s, over loopback gRPC on a store of
//!   `--events` generated events (built once and kept under the target
//!   directory; see `services/query/benches/query.rs`).
//! - `load`: the release `auditrail up` ingesting a generated log (200,000
//!   events written before it starts, then 1,000 a second appended while
//!   the load runs) and 20 concurrent gRPC clients for 60 s calling a mix
//!   of timeline pages, histograms, point look-ups and short exports
//!   (`services/query/benches/load.rs`); calls, errors, p50/p99 latency,
//!   and the events ingested meanwhile.
//! - `secure`: what access control costs: the same store served in clear
//!   without and with access records, and over TLS with a token and access
//!   records, the `load` clients and a full export each time
//!   (`bench/secure.rs`).
//! - `access-crash`: what a SIGKILL under load loses of the access records
//!   (`access_trail::crash_loss`, an ignored test of the integration tests
//!   that prints its figures).
//! - `console`: the JSON API's timeline page against the same gRPC call,
//!   and the time to the first timeline page in headless Chromium, on a
//!   store of `--events` events (`bench/console.rs`).
//! - `report`: policy-audit and inventory over 30 days of a generated
//!   cluster of 5,000 pods and 500 policies, each computed in a process of
//!   its own (replay, policy calculator, "ever" fold) with its wall time and
//!   peak RSS (`services/reporter/benches/report.rs`).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use auditrail_harness::{ServerProcess, scrape};

use crate::cargo::{build_binary, cargo, run_cmd};
use crate::gen_logs::write_log;

mod console;
mod load;
mod secure;

/// Options of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// Which benchmark: `parse`, `ingest`, `store`, `query`, `load`,
    /// `secure`, `access-crash`, `report`, `console`, or all.
    #[arg(value_parser = ["parse", "ingest", "store", "query", "load", "secure", "access-crash", "report", "console", "all"], default_value = "all")]
    which: String,
    /// Events in the `ingest` benchmark's log and the `query` and `console`
    /// benchmarks' stores.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
}

pub(crate) fn run(args: &BenchArgs) -> anyhow::Result<()> {
    print_machine();
    if matches!(args.which.as_str(), "parse" | "all") {
        run_cmd(cargo().args(["bench", "-p", "auditrail-event", "--bench", "parse"]))?;
    }
    if matches!(args.which.as_str(), "ingest" | "all") {
        ingest(args.events)?;
    }
    if matches!(args.which.as_str(), "store" | "all") {
        store()?;
    }
    if matches!(args.which.as_str(), "query" | "all") {
        let events = args.events.to_string();
        run_cmd(cargo().args([
            "bench",
            "-p",
            "auditrail-query",
            "--bench",
            "query",
            "--",
            "--events",
            &events,
        ]))?;
    }
    if matches!(args.which.as_str(), "load" | "all") {
        load::run()?;
    }
    if matches!(args.which.as_str(), "secure" | "all") {
        secure::run()?;
    }
    if matches!(args.which.as_str(), "console" | "all") {
        console::run(args.events)?;
    }
    if matches!(args.which.as_str(), "access-crash" | "all") {
        run_cmd(cargo().args(["build", "-p", "auditrail-cli"]))?;
        run_cmd(cargo().args([
            "test",
            "-p",
            "auditrail-integration-tests",
            "--test",
            "it",
            "--",
            "--ignored",
            "--nocapture",
            "--exact",
            "access_trail::crash_loss",
        ]))?;
    }
    if matches!(args.which.as_str(), "report" | "all") {
        for report_type in ["policy-audit", "inventory"] {
            run_cmd(cargo().args([
                "bench",
                "-p",
                "auditrail-reporter",
                "--bench",
                "report",
                "--",
                "--type",
                report_type,
                "--days",
                "30",
                "--pods",
                "5000",
                "--policies",
                "500",
            ]))?;
        }
    }
    Ok(())
}

/// The store's ceiling and tantivy's, each an ignored test of
/// `auditrail-store-tantivy` that prints its figures.
fn store() -> anyhow::Result<()> {
    let store_tests = ["test", "--release", "-p", "auditrail-store-tantivy"];
    let shown = ["--", "--ignored", "--nocapture"];
    run_cmd(
        cargo()
            .args(store_tests)
            .args(["--test", "bench"])
            .args(shown)
            .arg("store_ceiling"),
    )?;
    for threads in ["1", "2"] {
        run_cmd(
            cargo()
                .args(store_tests)
                .arg("--lib")
                .args(shown)
                .arg("tantivy_ceiling")
                .env("THREADS", threads),
        )?;
    }
    Ok(())
}

fn ingest(events: u64) -> anyhow::Result<()> {
    let auditrail = build_binary("auditrail-cli", "auditrail", true)?;
    let dir = std::env::temp_dir().join(format!("auditrail-bench-{}", std::process::id()));
    let result = ingest_in(&dir, events, &auditrail);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// The indexer and the ingestor as two processes (`auditrail run
/// --service …`), as deployed, sharing the data directory `dir`.
fn ingest_in(dir: &Path, events: u64, auditrail: &Path) -> anyhow::Result<()> {
    let log = dir.join("logs/kube-audit.log");
    println!("ingest: writing {events} generated events");
    let bytes = write_log(
        &log,
        events,
        42,
        auditrail_loggen::GenConfig::default().start,
    )?;

    // Each batch the indexer takes leaves an access record: measured with
    // recording off and on, each in a store of its own.
    for recorded in [false, true] {
        let data = dir.join(if recorded { "recorded" } else { "unrecorded" });
        ingest_once(auditrail, &log, &data, events, bytes, recorded)?;
    }
    Ok(())
}

/// One run of the ingest benchmark into the data directory `data`.
fn ingest_once(
    auditrail: &Path,
    log: &Path,
    data: &Path,
    events: u64,
    bytes: u64,
    recorded: bool,
) -> anyhow::Result<()> {
    let mut command = Command::new(auditrail);
    command
        .args(["run", "--service", "indexer"])
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .args([
            "--retention-days",
            "0",
            "--log-level",
            "warn,auditrail_server=info",
            "--log-format",
            "json",
        ])
        .arg("--data-dir")
        .arg(data);
    if !recorded {
        command.arg("--no-access-log");
    }
    let indexer = ServerProcess::spawn(command, &[])?;
    let indexer_metrics = indexer
        .metrics_addr()
        .context("the indexer serves no metrics")?;

    let start = Instant::now();
    let mut command = Command::new(auditrail);
    command
        .args(["run", "--service", "ingestor"])
        .args([
            "--listen",
            "127.0.0.1:0",
            "--no-metrics",
            "--cluster",
            "bench",
        ])
        .args([
            "--log-level",
            "warn,auditrail_server=info",
            "--log-format",
            "json",
        ])
        .arg("--indexer-url")
        .arg(indexer.url())
        .arg("--data-dir")
        .arg(data)
        .arg("--log-path")
        .arg(log);
    let ingestor = ServerProcess::spawn(command, &[])?;

    #[allow(clippy::cast_precision_loss)]
    let target = events as f64;
    loop {
        let done = events_stored(indexer_metrics)?;
        if done >= target {
            break;
        }
        if start.elapsed() > Duration::from_mins(30) {
            bail!("only {done} of {events} events were committed in 30 minutes");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let secs = start.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let rss = |p: &ServerProcess| p.peak_rss_kib().map_or(0.0, |k| k as f64 / 1024.0);
    let (ingestor_rss, indexer_rss) = (rss(&ingestor), rss(&indexer));
    ingestor.stop()?;
    indexer.stop()?;
    #[allow(clippy::cast_precision_loss)]
    let (rate, mbps, mean) = (
        target / secs,
        bytes as f64 / secs / 1e6,
        bytes as f64 / target,
    );
    let mode = if recorded {
        "access records on"
    } else {
        "access records off"
    };
    println!(
        "ingest ({mode}): {events} events ({mean:.0} B mean) file to committed in {secs:.1} s: \
         {rate:.0} events/s, {mbps:.1} MB/s; peak RSS ingestor {ingestor_rss:.1} MiB, \
         indexer {indexer_rss:.1} MiB"
    );
    Ok(())
}

/// The events the indexer serving metrics at `metrics` has stored or found
/// stored already.
fn events_stored(metrics: &str) -> anyhow::Result<f64> {
    let samples = scrape(metrics)?;
    let value = |name: &str| samples.get(name).copied().unwrap_or_default();
    Ok(value("indexer_events_accepted_total") + value("indexer_events_duplicate_total"))
}

fn print_machine() {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    println!("machine: {cpu}, {cores} cores available");
}
