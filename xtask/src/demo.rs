//! `cargo xtask demo`: auditrail on the embedded default, end to end.
//!
//! Builds the `auditrail` binary, starts `auditrail up` on free loopback
//! ports with a fresh data directory, shows that the five services answer
//! gRPC health and are listed by reflection, shows the metrics endpoint, then
//! stops the server with SIGTERM and checks it drains and exits cleanly.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::cargo::build_binary;

/// Addresses `auditrail up` reported in its "serving" log line.
struct Serving {
    grpc: String,
    metrics: String,
}

/// Kills the server if the demo fails half way, so nothing is left running.
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

pub(crate) fn run() -> anyhow::Result<()> {
    println!("==> building auditrail");
    let exe = build_binary("auditrail-cli", "auditrail", false)?;
    let data_dir = std::env::temp_dir().join(format!("auditrail-demo-{}", std::process::id()));
    let result = demo(&exe, &data_dir);
    let _ = std::fs::remove_dir_all(&data_dir);
    result
}

fn demo(exe: &Path, data_dir: &Path) -> anyhow::Result<()> {
    println!("==> auditrail up (data directory {})", data_dir.display());
    let child = Command::new(exe)
        .args([
            "up",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--log-format", "json"])
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start auditrail up")?;
    let mut server = ServerProcess(child);
    let stderr = server.0.stderr.take().context("no stderr")?;

    // Echo the server's log lines and pick the addresses out of "serving".
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            println!("    [server] {line}");
            let Ok(log) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if log["message"] == "serving" {
                let addr = |k: &str| log[k].as_str().unwrap_or_default().to_owned();
                let _ = tx.send(Serving {
                    grpc: addr("grpc_addr"),
                    metrics: addr("metrics_addr"),
                });
            }
        }
    });
    let serving = rx
        .recv_timeout(Duration::from_mins(1))
        .context("auditrail up did not report that it is serving")?;
    let server_url = format!("http://{}", serving.grpc);

    println!("\n==> auditrail health --server {server_url}");
    client(exe, &["health", "--server", &server_url])?;

    println!("\n==> auditrail services --server {server_url}   (gRPC reflection)");
    client(exe, &["services", "--server", &server_url])?;

    println!("\n==> GET http://{}/metrics (first lines)", serving.metrics);
    match fetch_metrics(&serving.metrics) {
        Ok(body) => body
            .lines()
            .filter(|l| l.starts_with("grpc_server_handled_total"))
            .take(6)
            .for_each(|l| println!("    {l}")),
        Err(err) => println!("    (metrics unavailable: {err:#})"),
    }

    println!("\n==> SIGTERM: graceful shutdown");
    let pid = i32::try_from(server.0.id()).context("pid out of range")?;
    kill(Pid::from_raw(pid), Signal::SIGTERM).context("cannot signal the server")?;
    let status = server.0.wait()?;
    let _ = reader.join();
    if !status.success() {
        bail!("auditrail up exited with {status}");
    }
    println!("\nauditrail stopped cleanly ({status}).");
    Ok(())
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

/// A minimal HTTP/1.0 GET, enough for the local metrics endpoint.
fn fetch_metrics(addr: &str) -> anyhow::Result<String> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .context("malformed HTTP response")?;
    Ok(body)
}
