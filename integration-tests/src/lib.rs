//! Harness for the end-to-end tests: run the real auditrail binaries as
//! child processes on free loopback ports and talk to them over real gRPC.
//!
//! Servers are started with `--listen 127.0.0.1:0` and JSON logs; the harness
//! reads the `serving` log line to learn the ports the OS picked, so tests
//! never race for a port. A server is always stopped when its handle drops.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How long a server may take to start, or to stop after SIGTERM, before the
/// test is failed (a guard against hangs, not a performance assertion).
pub const PROCESS_DEADLINE: Duration = Duration::from_mins(1);

/// Path of a workspace binary, next to the test executable's `deps/` folder.
///
/// `cargo xtask test` builds every binary before running the tests.
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("no current executable")?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .context("test executable is not under target/<profile>/deps")?;
    let path = dir.join(name);
    if !path.is_file() {
        bail!(
            "{} is not built; run `cargo xtask test` (or `cargo build --workspace --bins`) first",
            path.display()
        );
    }
    Ok(path)
}

/// A running server process.
#[derive(Debug)]
pub struct Server {
    child: Child,
    grpc: String,
    metrics: Option<String>,
    logs: Arc<Mutex<Vec<String>>>,
}

/// What a server's `serving` log line says.
struct Serving {
    grpc: String,
    metrics: String,
}

impl Server {
    /// Starts `binary` with `args` (after the harness's own `--listen`,
    /// `--metrics-listen` and `--log-format json`) and `env`, and waits until
    /// it serves.
    pub fn start(binary: &Path, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let mut command = Command::new(binary);
        command
            .args(args)
            .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
            .args(["--log-format", "json"]);
        Self::spawn(command, env)
    }

    /// Starts a fully prepared command (the test controls every flag) and
    /// waits until it serves.
    pub fn spawn(mut command: Command, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        command
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().context("cannot start the server")?;
        let stderr = child.stderr.take().context("no stderr")?;
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(log) = serde_json::from_str::<serde_json::Value>(&line)
                    && log["message"] == "serving"
                {
                    let field = |k: &str| log[k].as_str().unwrap_or_default().to_owned();
                    let _ = tx.send(Serving {
                        grpc: field("grpc_addr"),
                        metrics: field("metrics_addr"),
                    });
                }
                if let Ok(mut logs) = sink.lock() {
                    logs.push(line);
                }
            }
        });
        let mut server = Self {
            child,
            grpc: String::new(),
            metrics: None,
            logs,
        };
        let Ok(serving) = rx.recv_timeout(PROCESS_DEADLINE) else {
            let status = server.child.try_wait().ok().flatten();
            bail!(
                "server did not report serving (exit: {status:?}); logs:\n{}",
                server.logs().join("\n")
            );
        };
        server.grpc = serving.grpc;
        server.metrics = (serving.metrics != "disabled").then_some(serving.metrics);
        Ok(server)
    }

    /// `http://ADDR` of the gRPC API.
    pub fn url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// `ADDR` of the metrics endpoint, when enabled.
    pub fn metrics_addr(&self) -> Option<&str> {
        self.metrics.as_deref()
    }

    /// The log lines so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// A gRPC channel to the server.
    pub async fn channel(&self) -> anyhow::Result<tonic::transport::Channel> {
        Ok(tonic::transport::Endpoint::from_shared(self.url())?
            .connect()
            .await?)
    }

    /// Sends SIGTERM, as Kubernetes does to stop a pod.
    pub fn send_sigterm(&self) -> anyhow::Result<()> {
        let pid = i32::try_from(self.child.id()).context("pid out of range")?;
        kill(Pid::from_raw(pid), Signal::SIGTERM).context("cannot send SIGTERM")
    }

    /// Waits for the process to exit (after a signal).
    pub fn wait(mut self) -> anyhow::Result<ExitStatus> {
        wait_deadline(&mut self.child, PROCESS_DEADLINE)
    }

    /// Kills the process with SIGKILL (a crash: no draining, no flushing)
    /// and waits for it.
    pub fn kill_hard(mut self) -> anyhow::Result<ExitStatus> {
        let pid = i32::try_from(self.child.id()).context("pid out of range")?;
        kill(Pid::from_raw(pid), Signal::SIGKILL).context("cannot send SIGKILL")?;
        wait_deadline(&mut self.child, PROCESS_DEADLINE)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The gRPC address (`IP:port`).
    pub fn addr(&self) -> &str {
        &self.grpc
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(self) -> anyhow::Result<ExitStatus> {
        self.send_sigterm()?;
        self.wait()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits for `child` to exit, failing (and killing it) after `deadline`.
pub fn wait_deadline(child: &mut Child, deadline: Duration) -> anyhow::Result<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            bail!("process did not exit within {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `check` every 50 ms until it returns `Some`, failing after
/// `PROCESS_DEADLINE` with `what` (a hang guard, not a timing assertion).
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if start.elapsed() > PROCESS_DEADLINE {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs a command to completion (for commands that must fail or finish at
/// once) and returns its status, standard output and standard error.
pub fn run_to_end(command: &mut Command) -> anyhow::Result<(ExitStatus, String, String)> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start the command")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let stderr = child.stderr.take().context("no stderr")?;
    let out = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let err = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let status = wait_deadline(&mut child, PROCESS_DEADLINE)?;
    Ok((
        status,
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    ))
}

/// Fetches `/metrics` from `addr` and parses the sample lines into a map
/// from `name{labels}` to value.
pub fn scrape(addr: &str) -> anyhow::Result<HashMap<String, f64>> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("malformed HTTP response")?;
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        bail!("metrics endpoint answered {head}");
    }
    Ok(body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_owned(), value.parse().ok()?))
        })
        .collect())
}
