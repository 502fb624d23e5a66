//! Starting auditrail servers from xtask and talking to them over plain
//! HTTP (metrics), shared by the demo and the benchmarks.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A running server; killed on drop if still running.
pub(crate) struct ServerProcess {
    child: Child,
    /// The gRPC address it reported.
    pub(crate) grpc: String,
    /// The metrics address it reported (`disabled` when off).
    pub(crate) metrics: String,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl ServerProcess {
    /// Starts `command` with JSON logs, echoing its log lines when `echo` is
    /// set, and waits for its `serving` line.
    pub(crate) fn start(mut command: Command, echo: bool) -> anyhow::Result<Self> {
        let mut child = command
            .args(["--log-format", "json"])
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {command:?}"))?;
        let stderr = child.stderr.take().context("no stderr")?;
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if echo {
                    println!("    [server] {line}");
                }
                let Ok(log) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if log["message"] == "serving" {
                    let field = |k: &str| log[k].as_str().unwrap_or_default().to_owned();
                    let _ = tx.send((field("grpc_addr"), field("metrics_addr")));
                }
            }
        });
        let mut server = Self {
            child,
            grpc: String::new(),
            metrics: String::new(),
            reader: Some(reader),
        };
        let (grpc, metrics) = rx
            .recv_timeout(Duration::from_mins(1))
            .context("the server did not report that it is serving")?;
        server.grpc = grpc;
        server.metrics = metrics;
        Ok(server)
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident set size in KiB (`VmHWM`), on Linux.
    pub(crate) fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }

    /// SIGTERM, then waits; fails unless it exits 0.
    pub(crate) fn stop(mut self) -> anyhow::Result<std::process::ExitStatus> {
        let pid = i32::try_from(self.child.id()).context("pid out of range")?;
        kill(Pid::from_raw(pid), Signal::SIGTERM).context("cannot signal the server")?;
        let status = self.child.wait()?;
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        if !status.success() {
            bail!("the server exited with {status}");
        }
        Ok(status)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The body of `GET /metrics` at `addr` (a minimal HTTP/1.0 client).
pub(crate) fn fetch_metrics(addr: &str) -> anyhow::Result<String> {
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

/// The value of an unlabelled counter in a metrics body (0 when absent).
pub(crate) fn counter(body: &str, name: &str) -> f64 {
    body.lines()
        .filter_map(|l| l.strip_prefix(name))
        .filter_map(|rest| rest.strip_prefix(' '))
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .sum()
}
