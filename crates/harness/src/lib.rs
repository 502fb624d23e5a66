//! Running auditrail servers as child processes: the one harness of the
//! end-to-end tests (`integration-tests`) and of xtask's demo and
//! benchmarks, which both start `auditrail run`/`up`, wait until it serves,
//! read its Prometheus metrics and stop it.
//!
//! Servers are started on port 0 with JSON logs; the harness reads the
//! `serving` log line to learn the ports the OS picked, so nobody races for
//! a port. A server is always killed when its handle drops. Waits are
//! bounded by [`PROCESS_DEADLINE`], a guard against hangs, never a
//! performance assertion.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How long a server may take to start, or to stop after SIGTERM, and a
/// command to finish, before the caller fails.
pub const PROCESS_DEADLINE: Duration = Duration::from_mins(1);

/// A running server process; killed on drop if still running.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    grpc: String,
    metrics: Option<String>,
    logs: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
}

/// What a server's `serving` log line says.
struct Serving {
    grpc: String,
    metrics: String,
}

/// The console's listen address in the environment (`[console] listen`).
pub const CONSOLE_LISTEN_ENV: &str = "AUDITRAIL_CONSOLE__LISTEN";

impl ServerProcess {
    /// Starts `binary` with `args` (after which the harness adds
    /// `--listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --log-format json`,
    /// and a free port for the console) and `env`, and waits until it
    /// serves.
    pub fn start(binary: &Path, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let mut command = Command::new(binary);
        command
            .args(args)
            .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
            .args(["--log-format", "json"]);
        Self::spawn(command, env)
    }

    /// Starts a fully prepared command (the caller sets every flag,
    /// `--log-format json` included) with `env` added, and waits until it
    /// serves. Its log lines are kept ([`Self::logs`]).
    pub fn spawn(command: Command, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        Self::launch(command, env, false)
    }

    /// [`Self::spawn`], also printing each log line as it comes (for
    /// people watching, as in the demo).
    pub fn spawn_echoing(command: Command, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        Self::launch(command, env, true)
    }

    fn launch(mut command: Command, env: &[(&str, &str)], echo: bool) -> anyhow::Result<Self> {
        let mut child = command
            // The console of a process that runs it takes a free port, so
            // that servers started side by side never share 8080; `env` or
            // `--console-listen` override it.
            .env(CONSOLE_LISTEN_ENV, "127.0.0.1:0")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {command:?}"))?;
        let stderr = child.stderr.take().context("no stderr")?;
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = Arc::clone(&logs);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if echo {
                    println!("    [server] {line}");
                }
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
            reader: Some(reader),
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

    /// The gRPC address (`IP:port`).
    pub fn addr(&self) -> &str {
        &self.grpc
    }

    /// `ADDR` of the metrics endpoint, when enabled.
    pub fn metrics_addr(&self) -> Option<&str> {
        self.metrics.as_deref()
    }

    /// The log lines read so far. A line the server has written may not
    /// have been read yet: to check for a line logged by something just
    /// done, wait for it ([`Self::wait_for_log`]).
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The log lines matching `matches`, once there is at least one: the
    /// server writes its log to a pipe that a thread of this harness reads,
    /// so a line logged before an RPC answered may be read after it.
    /// Fails after [`PROCESS_DEADLINE`] naming `what` (a hang guard).
    pub fn wait_for_log(
        &self,
        what: &str,
        matches: impl Fn(&str) -> bool,
    ) -> anyhow::Result<Vec<String>> {
        let start = Instant::now();
        loop {
            let found: Vec<String> = self
                .logs()
                .into_iter()
                .filter(|line| matches(line))
                .collect();
            if !found.is_empty() {
                return Ok(found);
            }
            if start.elapsed() > PROCESS_DEADLINE {
                bail!(
                    "timed out waiting for {what} in the log:\n{}",
                    self.logs().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `http://ADDR` of the console, once its `console serving` line is
    /// logged (a process that runs the console, with JSON logs).
    pub fn console_url(&self) -> Option<String> {
        self.logs().iter().find_map(|line| {
            let log: serde_json::Value = serde_json::from_str(line).ok()?;
            if log["message"] != "console serving" {
                return None;
            }
            Some(format!("http://{}", log["console_addr"].as_str()?))
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident set size in KiB (`VmHWM`), on Linux.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }

    /// Sends SIGTERM, as Kubernetes does to stop a pod.
    pub fn send_sigterm(&self) -> anyhow::Result<()> {
        self.signal(Signal::SIGTERM)
    }

    /// Waits for the process to exit (after a signal), then for its last
    /// log lines.
    pub fn wait(mut self) -> anyhow::Result<ExitStatus> {
        let status = wait_deadline(&mut self.child, PROCESS_DEADLINE)?;
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        Ok(status)
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(self) -> anyhow::Result<ExitStatus> {
        self.send_sigterm()?;
        self.wait()
    }

    /// Sends SIGTERM, waits, and fails unless the process exited 0.
    pub fn stop(self) -> anyhow::Result<ExitStatus> {
        let status = self.terminate()?;
        if !status.success() {
            bail!("the server exited with {status}");
        }
        Ok(status)
    }

    /// Kills the process with SIGKILL (a crash: no draining, no flushing)
    /// and waits for it.
    pub fn kill_hard(self) -> anyhow::Result<ExitStatus> {
        self.signal(Signal::SIGKILL)?;
        self.wait()
    }

    fn signal(&self, signal: Signal) -> anyhow::Result<()> {
        let pid = i32::try_from(self.child.id()).context("pid out of range")?;
        kill(Pid::from_raw(pid), signal).with_context(|| format!("cannot send {signal}"))
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

/// Fetches `/metrics` from `addr` (a minimal HTTP/1.0 client) and parses
/// the samples into a map from `name{labels}` to value.
pub fn scrape(addr: &str) -> anyhow::Result<HashMap<String, f64>> {
    let mut stream = std::net::TcpStream::connect(addr)
        .with_context(|| format!("cannot connect to the metrics endpoint {addr}"))?;
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
    Ok(samples(body))
}

/// The samples of a Prometheus text exposition (comments and malformed
/// lines left out).
fn samples(body: &str) -> HashMap<String, f64> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_owned(), value.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_keyed_by_name_and_labels() {
        let body = "# HELP store_commits_total Commits.\n\
                    # TYPE store_commits_total counter\n\
                    store_commits_total{cluster=\"a b\"} 3\n\
                    indexer_events_accepted_total 12\n\
                    \n\
                    not_a_sample\n";
        let want = HashMap::from([
            ("store_commits_total{cluster=\"a b\"}".to_owned(), 3.0),
            ("indexer_events_accepted_total".to_owned(), 12.0),
        ]);
        assert_eq!(samples(body), want);
    }
}
