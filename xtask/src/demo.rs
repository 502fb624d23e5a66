//! `cargo xtask demo`: auditrail on the embedded default, end to end.
//!
//! Builds the `auditrail` binary, writes a sample audit log (Kubernetes and
//! Calico events, with a rotated backup), starts `auditrail up` on free
//! loopback ports with a fresh data directory, shows that the five services
//! answer gRPC health and reflection, waits until the sample is indexed and
//! shows what was stored, prints a timeline page and the history and diff of
//! the sample's most-changed network policy, then stops the server with
//! SIGTERM. Last, the secure path: the indexer and query services again
//! over TLS (a CA and certificate made on the spot) with bearer tokens, a
//! call refused without one, and the same timeline read with a viewer's.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use auditrail_harness::{ServerProcess, scrape};

use crate::cargo::build_binary;
use crate::gen_logs::write_log;

/// Events in the demo's sample log.
const SAMPLE_EVENTS: u64 = 5_000;

pub(crate) fn run() -> anyhow::Result<()> {
    println!("==> building auditrail");
    let exe = build_binary("auditrail-cli", "auditrail", false)?;
    let dir = std::env::temp_dir().join(format!("auditrail-demo-{}", std::process::id()));
    let result = demo(&exe, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    println!(
        "\nThe binary the demo ran is {} (`cargo xtask install --debug` puts this build on your PATH).",
        exe.display()
    );
    Ok(())
}

fn demo(exe: &Path, dir: &Path) -> anyhow::Result<()> {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    let live = logs.join("kube-audit.log");
    println!("==> writing a sample audit log: {SAMPLE_EVENTS} events, one rotated backup");
    let half = SAMPLE_EVENTS / 2;
    // Recent events, so that the default 91-day retention keeps them.
    let start = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_hours(2))
        .context("clock out of range")?;
    let later = start
        .checked_add(jiff::SignedDuration::from_mins(30))
        .context("clock out of range")?;
    let backup = logs.join(format!(
        "kube-audit-{}.log",
        later.strftime("%Y-%m-%dT%H-%M-%S.000")
    ));
    write_log(&backup, half, 1, start)?;
    write_log(&live, SAMPLE_EVENTS - half, 2, later)?;

    let data = dir.join("data");
    println!("\n==> auditrail up --log-path {}", live.display());
    let mut command = Command::new(exe);
    command
        .args([
            "up",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--console-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(&data)
        .args(["--cluster", "demo", "--log-path"])
        .arg(&live);
    let server = ServerProcess::spawn_echoing(command, &[])?;
    let metrics = server
        .metrics_addr()
        .context("the server serves no metrics")?;
    let url = server.url();

    println!("\n==> auditrail health --server {url}");
    client(exe, &["health", "--server", &url])?;
    println!("\n==> auditrail services --server {url}   (gRPC reflection)");
    client(exe, &["services", "--server", &url])?;

    println!("\n==> waiting until the sample is indexed");
    let start = Instant::now();
    loop {
        let accepted = scrape(metrics)?
            .get("indexer_events_accepted_total")
            .copied()
            .unwrap_or_default();
        #[allow(clippy::cast_precision_loss)]
        if accepted >= SAMPLE_EVENTS as f64 {
            println!(
                "    {accepted} events indexed in {:.1} s",
                start.elapsed().as_secs_f64()
            );
            break;
        }
        if start.elapsed() > Duration::from_mins(2) {
            bail!("only {accepted} of {SAMPLE_EVENTS} events were indexed in time");
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    println!("\n==> auditrail stats --server {url}");
    client(exe, &["stats", "--server", &url])?;
    println!("\n==> auditrail ingest-status --server {url}");
    client(exe, &["ingest-status", "--server", &url])?;

    println!("\n==> auditrail search --timeline --limit 10 --server {url}");
    client(
        exe,
        &["search", "--timeline", "--limit", "10", "--server", &url],
    )?;
    history_and_diff(exe, &url)?;
    console(&server)?;

    println!("\n==> SIGTERM: graceful shutdown");
    let status = server.stop()?;
    println!("\nauditrail stopped cleanly ({status}).");
    secure(exe, dir, &data)
}

/// The secure path: TLS with a certificate for `localhost` signed by a CA
/// made here, and a token file with a viewer; the trail of the first part
/// read again through it.
fn secure(exe: &Path, dir: &Path, data: &Path) -> anyhow::Result<()> {
    let secure = crate::certs::make(&dir.join("tls"), "viewer")?;
    let token = secure.token.clone();

    println!(
        "\n==> the secure path: auditrail run --service indexer,query --tls-cert … --auth-token-file …"
    );
    let mut command = Command::new(exe);
    command
        .args([
            "run",
            "--service",
            "indexer,query",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--no-metrics", "--log-format", "json"])
        .arg("--data-dir")
        .arg(data)
        .args(secure.server_args());
    let server = ServerProcess::spawn_echoing(command, &[])?;
    let url = crate::certs::https_url(&server)?;
    let ca_file = secure.ca.to_str().context("temporary path is not UTF-8")?;

    println!("\n==> auditrail stats --server {url} --tls-ca ca.crt   (no token: refused)");
    let refused = Command::new(exe)
        .args(["stats", "--server", &url, "--tls-ca", ca_file])
        .output()?;
    if refused.status.success() {
        bail!("a call without a token was answered by a server with a token file");
    }
    print!("{}", String::from_utf8_lossy(&refused.stderr));

    println!(
        "\n==> auditrail search --timeline --limit 5 --server {url} --tls-ca ca.crt --token …"
    );
    client(
        exe,
        &[
            "search",
            "--timeline",
            "--limit",
            "5",
            "--server",
            &url,
            "--tls-ca",
            ca_file,
            "--token",
            &token,
        ],
    )?;
    let status = server.stop()?;
    println!("\nthe secure server stopped cleanly ({status}).");
    Ok(())
}

/// Shows the history of the network policy changed most often in the sample,
/// and the diff between its last two versions.
fn history_and_diff(exe: &Path, url: &str) -> anyhow::Result<()> {
    let updates = client_output(
        exe,
        &[
            "search",
            "--timeline",
            "--kind",
            "NetworkPolicy",
            "--verb",
            "update",
            "--verb",
            "patch",
            "--limit",
            "1000",
            "-o",
            "ndjson",
            "--server",
            url,
        ],
    )?;
    let mut changes: std::collections::BTreeMap<(String, String), usize> =
        std::collections::BTreeMap::new();
    for line in updates.lines() {
        let event: serde_json::Value = serde_json::from_str(line)?;
        let field = |key: &str| event["objectRef"][key].as_str().unwrap_or("").to_owned();
        *changes
            .entry((field("namespace"), field("name")))
            .or_default() += 1;
    }
    let Some(((namespace, name), _)) = changes.into_iter().max_by_key(|(_, n)| *n) else {
        println!("\n(the sample has no network policy updates)");
        return Ok(());
    };
    let object = format!("{namespace}/{name}");
    println!("\n==> auditrail history networkpolicies {object} --server {url}");
    client(
        exe,
        &["history", "networkpolicies", &object, "--server", url],
    )?;
    let history = client_output(
        exe,
        &[
            "history",
            "networkpolicies",
            &object,
            "-o",
            "json",
            "--server",
            url,
        ],
    )?;
    let versions: Vec<serde_json::Value> = serde_json::from_str(&history)?;
    let ids: Vec<&str> = versions
        .iter()
        .filter(|v| !v["object"].is_null() && v["deleted"] == false)
        .filter_map(|v| v["eventId"].as_str())
        .collect();
    if let [.., from, to] = ids.as_slice() {
        println!("\n==> auditrail diff --ignore-noise {from} {to} --server {url}");
        client(exe, &["diff", "--ignore-noise", from, to, "--server", url])?;
    }
    Ok(())
}

/// Runs a client command and returns what it printed.
fn client_output(exe: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new(exe)
        .args(args)
        .output()
        .with_context(|| format!("cannot run auditrail {}", args.join(" ")))?;
    if !output.status.success() {
        bail!(
            "auditrail {} failed with {}: {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8(output.stdout).context("auditrail printed something that is not UTF-8")
}

fn client(exe: &Path, args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new(exe)
        .args(args)
        .status()
        .with_context(|| format!("cannot run auditrail {}", args.join(" ")))?;
    if !status.success() {
        bail!("auditrail {} failed with {status}", args.join(" "));
    }
    Ok(())
}

/// The console's address (from its log line), and one page of its JSON
/// API, as a browser's timeline would ask for it.
fn console(server: &ServerProcess) -> anyhow::Result<()> {
    let base = server
        .console_url()
        .context("the console did not report its address")?;
    println!("\n==> the web console: {base}/timeline");
    println!("    (while `auditrail up` runs, open it in a browser; `--console-listen` sets the");
    println!("    address, 127.0.0.1:8080 by default)");
    let api = format!("{base}/api/v1/search?timeline=true&pageSize=3");
    println!("\n==> curl '{api}'");
    let mut answer = ureq::get(&api)
        .call()
        .with_context(|| format!("cannot reach the console at {base}"))?;
    let page: serde_json::Value = serde_json::from_str(&answer.body_mut().read_to_string()?)?;
    for event in page["events"].as_array().into_iter().flatten() {
        println!(
            "    {}  {}  {}",
            event["stageTimestamp"].as_str().unwrap_or_default(),
            event["summary"].as_str().unwrap_or_default(),
            event["user"]["username"].as_str().unwrap_or_default()
        );
    }
    Ok(())
}
