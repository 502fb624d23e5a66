//! `cargo xtask bench load`: many clients against the all-in-one server
//! while it ingests, the figure of record for "the load held" (BENCHMARKS.md).
//!
//! The server is the release `auditrail up`, a process of its own as in
//! production, following a generated log: 200,000 events written before it
//! starts (their times end about now) and 1,000 a second appended for as
//! long as the load runs, so ingest, merges and queries share the machine.
//! The load starts once the first 50,000 events are stored. The clients are
//! the `load` bench of `auditrail-query` (real gRPC over loopback).

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use auditrail_harness::ServerProcess;
use auditrail_loggen::{GenConfig, Generator};

use super::events_stored;
use crate::cargo::{build_binary, cargo, run_cmd};
use crate::gen_logs::{start_ending_now, write_log};

/// Events in the log before the server starts.
const EVENTS_BEFORE: u64 = 200_000;
/// Stored events the load waits for.
const EVENTS_BEFORE_LOAD: f64 = 50_000.0;
/// Events appended to the log each second while the load runs.
const EVENTS_PER_SECOND: usize = 1_000;
const CLIENTS: &str = "20";
const SECONDS: &str = "60";

pub(crate) fn run() -> anyhow::Result<()> {
    let auditrail = build_binary("auditrail-cli", "auditrail", true)?;
    // Built before the server starts, so that the build does not share
    // the machine with it.
    run_cmd(cargo().args([
        "bench",
        "-p",
        "auditrail-query",
        "--bench",
        "load",
        "--no-run",
    ]))?;
    let dir = std::env::temp_dir().join(format!("auditrail-load-{}", std::process::id()));
    let result = run_in(&dir, &auditrail);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run_in(dir: &Path, auditrail: &Path) -> anyhow::Result<()> {
    let log = dir.join("logs/kube-audit.log");
    let start = start_ending_now(EVENTS_BEFORE)?;
    println!("load: writing {EVENTS_BEFORE} generated events");
    write_log(&log, EVENTS_BEFORE, 42, start)?;

    let mut command = Command::new(auditrail);
    command
        .args([
            "up",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .args(["--retention-days", "0", "--cluster", "load"])
        .args([
            "--log-level",
            "warn,auditrail_server=info",
            "--log-format",
            "json",
        ])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--log-path")
        .arg(&log)
        // The 20 clients are one process on 127.0.0.1, which the export
        // bounds would count as one client; deployed clients have their own
        // addresses. The bounds have their own tests; this measures load.
        .env("AUDITRAIL_QUERY__MAX_EXPORTS", "20")
        .env("AUDITRAIL_QUERY__MAX_EXPORTS_PER_CLIENT", "20");
    let server = ServerProcess::spawn(command, &[])?;
    let metrics = server
        .metrics_addr()
        .context("the server serves no metrics")?;
    let stored = || events_stored(metrics);
    let waiting = Instant::now();
    while stored()? < EVENTS_BEFORE_LOAD {
        if waiting.elapsed() > Duration::from_mins(10) {
            bail!("fewer than {EVENTS_BEFORE_LOAD} events were stored in 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let before = stored()?;

    let appending = Arc::new(AtomicBool::new(true));
    let appending_thread = {
        let appending = Arc::clone(&appending);
        let log = log.clone();
        std::thread::spawn(move || append(&log, &appending))
    };
    let url = server.url();
    let load = run_cmd(cargo().args([
        "bench",
        "-p",
        "auditrail-query",
        "--bench",
        "load",
        "--",
        "--server",
        &url,
        "--clients",
        CLIENTS,
        "--secs",
        SECONDS,
    ]));
    appending.store(false, Ordering::Relaxed);
    let appended = appending_thread
        .join()
        .map_err(|_| anyhow::anyhow!("the log appender panicked"))??;
    let after = stored()?;
    #[allow(clippy::cast_precision_loss)]
    let peak_rss = server.peak_rss_kib().map_or(0.0, |k| k as f64 / 1024.0);
    server.stop()?;
    load?;
    println!(
        "load: meanwhile {:.0} events stored ({appended} appended to the log), peak RSS of the \
         server {peak_rss:.1} MiB",
        after - before
    );
    Ok(())
}

/// Appends `EVENTS_PER_SECOND` generated events a second to `log`, times
/// from now on, until `appending` is cleared; how many.
fn append(log: &Path, appending: &AtomicBool) -> anyhow::Result<u64> {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(log)
        .with_context(|| format!("cannot append to {}", log.display()))?;
    let mut generator = Generator::new(GenConfig {
        seed: 43,
        start: jiff::Timestamp::now(),
        mean_interval: jiff::SignedDuration::from_millis(1),
        ..GenConfig::default()
    });
    let mut appended = 0u64;
    let tick = Duration::from_millis(100);
    let per_tick = EVENTS_PER_SECOND / 10;
    let mut next = Instant::now();
    while appending.load(Ordering::Relaxed) {
        let mut chunk = String::new();
        for line in generator.by_ref().take(per_tick) {
            chunk.push_str(&line);
            chunk.push('\n');
        }
        file.write_all(chunk.as_bytes())?;
        appended += per_tick as u64;
        next += tick;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    Ok(appended)
}
