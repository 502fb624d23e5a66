//! `cargo xtask bench secure`: what access control costs. One store of
//! generated events, served by the release `auditrail run --service
//! indexer,query` three times, in turn: in clear without access control
//! or access records, in clear with access records (every call recorded in
//! the trail), and over TLS with a token file and access records (every
//! call authenticated, authorized and recorded). Each time, the `load`
//! bench's clients (20 for 30 s, timeline pages, histograms, look-ups,
//! short exports) and five exports of every event through the CLI (NDJSON
//! to nowhere, wall time; the median is reported).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use auditrail_harness::ServerProcess;

use super::events_stored;
use crate::cargo::{build_binary, cargo, run_cmd};
use crate::gen_logs::write_log;

/// Events in the store.
const EVENTS: u64 = 100_000;
const CLIENTS: &str = "20";
const SECONDS: &str = "30";
/// Full exports per mode (the median is reported).
const EXPORTS: usize = 5;

pub(crate) fn run() -> anyhow::Result<()> {
    let auditrail = build_binary("auditrail-cli", "auditrail", true)?;
    run_cmd(cargo().args([
        "bench",
        "-p",
        "auditrail-query",
        "--bench",
        "load",
        "--no-run",
    ]))?;
    let dir = std::env::temp_dir().join(format!("auditrail-secure-{}", std::process::id()));
    let result = run_in(&dir, &auditrail);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run_in(dir: &Path, auditrail: &Path) -> anyhow::Result<()> {
    let log = dir.join("logs/kube-audit.log");
    let start = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_hours(2))
        .context("clock out of range")?;
    println!("secure: storing {EVENTS} generated events");
    write_log(&log, EVENTS, 7, start)?;
    let data = dir.join("data");
    let mut command = Command::new(auditrail);
    command
        .args([
            "up",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .args([
            "--retention-days",
            "0",
            "--cluster",
            "secure",
            "--log-format",
            "json",
        ])
        .arg("--data-dir")
        .arg(&data)
        .arg("--log-path")
        .arg(&log);
    let server = ServerProcess::spawn(command, &[])?;
    let metrics = server.metrics_addr().context("no metrics")?.to_owned();
    let waiting = Instant::now();
    #[allow(clippy::cast_precision_loss)]
    while events_stored(&metrics)? < EVENTS as f64 {
        if waiting.elapsed() > Duration::from_mins(10) {
            bail!("the events were not stored within 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    server.stop()?;

    let secure = crate::certs::make(&dir.join("tls"), "exporter")?;
    for (tls, recorded) in [(false, false), (false, true), (true, true)] {
        measure(auditrail, &data, &secure, tls, recorded)?;
    }
    Ok(())
}

/// The load clients and one full export against the store in `data`,
/// served in clear or (`tls`) over TLS with a token file, each call
/// leaving an access record when `recorded`.
fn measure(
    auditrail: &Path,
    data: &Path,
    secure: &crate::certs::Secure,
    tls: bool,
    recorded: bool,
) -> anyhow::Result<()> {
    let mode = match (tls, recorded) {
        (true, _) => "TLS + token + authorization + access records",
        (false, true) => "clear, no access control, access records",
        (false, false) => "clear, no access control, no access records",
    };
    println!("\nsecure: {mode}");
    let mut command = Command::new(auditrail);
    command
        .args([
            "run",
            "--service",
            "indexer,query",
            "--listen",
            "127.0.0.1:0",
        ])
        .args([
            "--no-metrics",
            "--log-level",
            "warn,auditrail_server=info",
            "--log-format",
            "json",
        ])
        .arg("--data-dir")
        .arg(data)
        .env("AUDITRAIL_QUERY__MAX_EXPORTS", "20")
        .env("AUDITRAIL_QUERY__MAX_EXPORTS_PER_CLIENT", "20");
    if tls {
        command.args(secure.server_args());
    }
    if !recorded {
        command.arg("--no-access-log");
    }
    let server = ServerProcess::spawn(command, &[])?;
    let url = if tls {
        crate::certs::https_url(&server)?
    } else {
        server.url()
    };
    let ca = secure.ca.to_str().context("path is not UTF-8")?;
    let security: Vec<&str> = if tls {
        vec!["--tls-ca", ca, "--token", &secure.token]
    } else {
        Vec::new()
    };
    let load = run_cmd(
        cargo()
            .args(["bench", "-p", "auditrail-query", "--bench", "load", "--"])
            .args(["--server", &url, "--clients", CLIENTS, "--secs", SECONDS])
            .args(&security),
    );
    // One export of 100,000 events takes about half a second: the median
    // of several is what is compared.
    let exports: anyhow::Result<Vec<(f64, u64)>> = (0..EXPORTS)
        .map(|_| export_all(auditrail, &url, &security))
        .collect();
    server.stop()?;
    load?;
    let mut exports = exports?;
    exports.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (seconds, bytes) = exports[exports.len() / 2];
    let all: Vec<String> = exports.iter().map(|(s, _)| format!("{s:.2}")).collect();
    #[allow(clippy::cast_precision_loss)]
    let mb = bytes as f64 / 1e6;
    println!(
        "secure: export of {EVENTS} events, median of {EXPORTS} ({} s): {seconds:.2} s, {mb:.1} MB, {:.1} MB/s",
        all.join(", "),
        mb / seconds
    );
    Ok(())
}

/// Exports every event through the CLI; wall seconds and bytes.
fn export_all(auditrail: &Path, url: &str, security: &[&str]) -> anyhow::Result<(f64, u64)> {
    let started = Instant::now();
    let output = Command::new(auditrail)
        .args([
            "export",
            "--format",
            "ndjson",
            "--from",
            "2000-01-01T00:00:00Z",
        ])
        .args(["--file", "-", "--quiet", "--server", url])
        .args(security)
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run auditrail export")?;
    let seconds = started.elapsed().as_secs_f64();
    if !output.status.success() {
        bail!("auditrail export failed with {}", output.status);
    }
    Ok((seconds, output.stdout.len() as u64))
}
