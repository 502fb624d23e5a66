//! `cargo xtask bench console`: what the web console adds to a timeline
//! page. The release `auditrail up` on a store of `--events` generated
//! events (ending just before now, so the timeline's first page holds the
//! newest of them), and:
//!
//! - the latency of the JSON API's first timeline page
//!   (`/api/v1/search?timeline=true&pageSize=50`, HTTP keep-alive) against
//!   the same `Search` over gRPC from a client in this process (the call
//!   the console itself makes), as p50 and p99 of alternating calls;
//! - the time to the first timeline page in headless Chromium: from
//!   navigation start to the moment the page has its rows on screen (the
//!   `auditrail-first-page` performance mark of the page's script), median
//!   of fresh loads, through ChromeDriver's WebDriver API.
//!
//! Both are measured twice: right after the last event was stored, while
//! the store may still be merging segments, and once the server has
//! settled (its CPU use has fallen to almost nothing), the store as it
//! serves most of its life.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use auditrail_harness::ServerProcess;
use serde_json::{Value, json};

use super::events_stored;
use crate::cargo::build_binary;
use crate::gen_logs::{start_ending_now, write_log};

/// Alternating API and gRPC calls.
const CALLS: usize = 300;
/// Fresh page loads in the browser.
const LOADS: usize = 15;

pub(crate) fn run(events: u64) -> anyhow::Result<()> {
    let auditrail = build_binary("auditrail-cli", "auditrail", true)?;
    let dir = std::env::temp_dir().join(format!("auditrail-console-{}", std::process::id()));
    let result = run_in(&dir, &auditrail, events);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "an index into a short list"
    )]
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn run_in(dir: &Path, auditrail: &Path, events: u64) -> anyhow::Result<()> {
    let log = dir.join("logs/kube-audit.log");
    let start = start_ending_now(events)?;
    println!("console: storing {events} generated events, ending just before now");
    write_log(&log, events, 11, start)?;
    let mut command = Command::new(auditrail);
    command
        .args([
            "up",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--console-listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--retention-days",
            "0",
            "--start-at",
            "beginning",
            "--no-access-log",
        ])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--log-path")
        .arg(&log);
    let server = ServerProcess::spawn(command, &[])?;
    let metrics = server.metrics_addr().context("no metrics")?.to_owned();
    let began = Instant::now();
    #[allow(clippy::cast_precision_loss, reason = "event counts")]
    while events_stored(&metrics)? < events as f64 {
        if began.elapsed() > Duration::from_mins(30) {
            bail!("the events were not stored within 30 minutes");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    println!(
        "console: {events} events stored in {:.0} s",
        began.elapsed().as_secs_f64()
    );
    let console = server
        .console_url()
        .context("the console did not report its address")?;

    println!("console: right after the last event was stored (the store may still be merging)");
    api_against_grpc(&console, &server.url())?;
    first_page(&console)?;
    let settled = settle(server.pid())?;
    println!(
        "console: settled (the server used under {QUIET_CPU:.0} % of a core for {} s) after \
         another {settled:.0} s",
        QUIET_WINDOW.as_secs()
    );
    api_against_grpc(&console, &server.url())?;
    first_page(&console)?;
    server.stop()?;
    Ok(())
}

/// CPU time (user and system) of process `pid` so far, from
/// `/proc/<pid>/stat`, in seconds.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("no command name in /proc/PID/stat")?
        .1
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12
    // after the state.
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields
            .get(i)
            .context("a short /proc/PID/stat")?
            .parse::<f64>()?)
    };
    // The kernel's USER_HZ, 100 on every Linux this runs on.
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

/// The share of one core under which the server counts as settled.
const QUIET_CPU: f64 = 5.0;
/// How long it must stay under it.
const QUIET_WINDOW: Duration = Duration::from_secs(5);

/// Waits until the server's background work after ingest (commits,
/// segment merges) has ended: its CPU use over [`QUIET_WINDOW`] stays under
/// [`QUIET_CPU`] % of a core. The seconds waited.
fn settle(pid: u32) -> anyhow::Result<f64> {
    let began = Instant::now();
    loop {
        let before = cpu_seconds(pid)?;
        std::thread::sleep(QUIET_WINDOW);
        let used = cpu_seconds(pid)? - before;
        if used / QUIET_WINDOW.as_secs_f64() * 100.0 < QUIET_CPU {
            return Ok(began.elapsed().as_secs_f64());
        }
        if began.elapsed() > Duration::from_mins(30) {
            bail!("the server was still busy 30 minutes after the last event was stored");
        }
    }
}

/// p50 and p99 of the first timeline page through the JSON API and over
/// gRPC, calls alternating.
fn api_against_grpc(console: &str, grpc: &str) -> anyhow::Result<()> {
    use auditrail_proto::v1;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_mins(1)))
        .build()
        .into();
    let url = format!("{console}/api/v1/search?timeline=true&pageSize=50");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut client = runtime.block_on(v1::query_service_client::QueryServiceClient::connect(
        grpc.to_owned(),
    ))?;
    let request = v1::SearchRequest {
        timeline: true,
        page_size: 50,
        ..v1::SearchRequest::default()
    };
    let (mut api, mut rpc) = (Vec::new(), Vec::new());
    for i in 0..CALLS * 2 {
        let t = Instant::now();
        if i % 2 == 0 {
            let mut answer = agent.get(&url).call()?;
            let body = answer.body_mut().read_to_vec()?;
            anyhow::ensure!(!body.is_empty(), "an empty answer");
            api.push(t.elapsed().as_secs_f64() * 1000.0);
        } else {
            runtime.block_on(client.search(request.clone()))?;
            rpc.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    api.sort_by(f64::total_cmp);
    rpc.sort_by(f64::total_cmp);
    println!("console: first timeline page of 50 events, {CALLS} calls each");
    for (name, v) in [("JSON API", &api), ("gRPC", &rpc)] {
        println!(
            "  {name:<9} p50 {:>7.2} ms   p99 {:>7.2} ms",
            percentile(v, 0.5),
            percentile(v, 0.99)
        );
    }
    println!(
        "  the console adds {:.2} ms at p50",
        percentile(&api, 0.5) - percentile(&rpc, 0.5)
    );
    Ok(())
}

/// ChromeDriver, killed on drop.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A WebDriver command: `POST {base}{path}` with `body`, its `value`.
fn webdriver(agent: &ureq::Agent, url: &str, body: &Value) -> anyhow::Result<Value> {
    let mut answer = agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(serde_json::to_vec(body)?)?;
    let value: Value = serde_json::from_slice(&answer.body_mut().read_to_vec()?)?;
    Ok(value["value"].clone())
}

/// The median time from navigation start to the first timeline page on
/// screen, over fresh loads in headless Chromium.
fn first_page(console: &str) -> anyhow::Result<()> {
    let (Ok(chromium), Ok(driver)) = (which("/usr/bin/chromium"), which("/usr/bin/chromedriver"))
    else {
        println!(
            "console: time to first page skipped: /usr/bin/chromium and /usr/bin/chromedriver \
             are not installed (apt-get install chromium chromium-driver)"
        );
        return Ok(());
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let _driver = Driver(
        Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let base = format!("http://127.0.0.1:{port}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_mins(1)))
        .build()
        .into();
    let profile = tempfile::tempdir()?;
    let caps = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
        "binary": chromium,
        "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                 format!("--user-data-dir={}", profile.path().display())]}}}});
    let began = Instant::now();
    let session = loop {
        match webdriver(&agent, &format!("{base}/session"), &caps) {
            Ok(v) if v["sessionId"].is_string() => {
                break v["sessionId"].as_str().unwrap_or_default().to_owned();
            }
            _ if began.elapsed() < Duration::from_secs(20) => {
                std::thread::sleep(Duration::from_millis(200));
            }
            other => bail!("ChromeDriver gave no session: {other:?}"),
        }
    };
    let s = format!("{base}/session/{session}");
    let mut times = Vec::new();
    for _ in 0..LOADS {
        webdriver(&agent, &format!("{s}/url"), &json!({"url": "about:blank"}))?;
        webdriver(
            &agent,
            &format!("{s}/url"),
            &json!({"url": format!("{console}/timeline")}),
        )?;
        let waited = Instant::now();
        let mark = loop {
            let v = webdriver(
                &agent,
                &format!("{s}/execute/sync"),
                &json!({"script": "const m = performance.getEntriesByName('auditrail-first-page'); \
                                   return m.length ? m[0].startTime : null;", "args": []}),
            )?;
            if let Some(ms) = v.as_f64() {
                break ms;
            }
            if waited.elapsed() > Duration::from_mins(1) {
                bail!("the timeline did not render within a minute");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        times.push(mark);
    }
    let _ = agent.delete(&s).call();
    times.sort_by(f64::total_cmp);
    println!(
        "console: time to the first timeline page in headless Chromium, {LOADS} loads: \
         median {:.0} ms, min {:.0} ms, max {:.0} ms",
        percentile(&times, 0.5),
        times[0],
        times[times.len() - 1]
    );
    Ok(())
}

fn which(path: &str) -> anyhow::Result<&str> {
    if Path::new(path).is_file() {
        Ok(path)
    } else {
        bail!("{path} is missing")
    }
}
