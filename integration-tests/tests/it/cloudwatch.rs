//! The CloudWatch source end to end: moto's CloudWatch Logs server (the
//! real emulator from PyPI, installed by `cargo xtask test`) on a free
//! loopback port, filled through the real AWS SDK; `auditrail up` reading it
//! with `--cloudwatch-*` flags; the stored ids compared with the ids of the
//! messages of the matching streams.
//!
//! Covered: several streams (matching the prefix or not), events arriving
//! over time, a stream appearing mid-run, a hard kill and restart, a message
//! that is not an audit event (dead-lettered with its stream and position),
//! throttling (a proxy in this test answers ThrottlingException to some
//! requests), and where a first run begins when the store already holds
//! kube events.

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use auditrail_integration_tests::{PROCESS_DEADLINE, Server, scrape};
use auditrail_loggen::{GenConfig, Generator};
use auditrail_proto::v1;
use auditrail_proto::v1::ingestor_service_client::IngestorServiceClient;
use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::common::{self, assert_exactly_once, expected_ids, stored_ids, wait_for_count};
use crate::real_data::real_data_dir;

const CLUSTER: &str = "eks1";
const GROUP: &str = "/aws/eks/eks1/cluster";
const REGION: &str = "us-east-1";
/// The secret access key the ingestor reads from its credentials directory
/// (moto accepts any); it must never appear in a log line.
const SECRET_KEY: &str = "auditrail-test-secret-9f8e7d";

/// moto's server on a free loopback port, stopped when dropped.
struct Moto {
    child: Child,
    addr: SocketAddr,
}

impl Moto {
    /// Starts moto's server on a free port. The port is found by binding
    /// and releasing it, so another process of the suite may take it
    /// before moto does (moto then exits, and the port answers someone
    /// else's protocol): the start is checked by moto still running and
    /// answering HTTP/1, and tried again on another port if not.
    fn start() -> Self {
        let server = std::env::var_os("AUDITRAIL_MOTO_SERVER")
            .map(PathBuf::from)
            .expect(
                "AUDITRAIL_MOTO_SERVER is not set: run the tests with `cargo xtask test`, \
             which installs moto's server and points this variable at it",
            );
        for _ in 0..5 {
            let addr = free_port();
            let child = Command::new(&server)
                .args(["-H", "127.0.0.1", "-p", &addr.port().to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", server.display()));
            let mut moto = Self { child, addr };
            if moto.serving() {
                return moto;
            }
        }
        panic!("moto's server did not start on any of 5 free ports");
    }

    /// Waits until this moto answers HTTP/1 on its port; `false` when it
    /// exited or another server holds the port.
    fn serving(&mut self) -> bool {
        use std::io::{Read as _, Write as _};
        let start = Instant::now();
        while start.elapsed() < PROCESS_DEADLINE {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return false;
            }
            if let Ok(mut stream) = std::net::TcpStream::connect(self.addr) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut head = [0_u8; 7];
                let answered = stream
                    .write_all(b"GET / HTTP/1.0\r\n\r\n")
                    .and_then(|()| stream.read_exact(&mut head))
                    .is_ok();
                return answered
                    && &head == b"HTTP/1."
                    && matches!(self.child.try_wait(), Ok(None));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// The test's own SDK client (it plays EKS, writing the audit log), with
/// the log group [`GROUP`] created.
async fn writer(endpoint: &str) -> Client {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await;
    let cw = Client::new(&config);
    cw.create_log_group()
        .log_group_name(GROUP)
        .send()
        .await
        .unwrap();
    cw
}

/// Log event timestamps: increasing, starting `start_ms`.
struct Clock(AtomicI64);

impl Clock {
    fn starting(start_ms: i64) -> Self {
        Self(AtomicI64::new(start_ms))
    }

    fn next(&self) -> i64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

async fn create_streams(cw: &Client, streams: &[&str]) {
    for stream in streams {
        cw.create_log_stream()
            .log_group_name(GROUP)
            .log_stream_name(*stream)
            .send()
            .await
            .unwrap();
    }
}

/// Writes `messages` to `stream`, in order, 100 per call.
async fn put(cw: &Client, clock: &Clock, stream: &str, messages: &[String]) {
    for chunk in messages.chunks(100) {
        let events = chunk
            .iter()
            .map(|m| {
                InputLogEvent::builder()
                    .timestamp(clock.next())
                    .message(m)
                    .build()
                    .unwrap()
            })
            .collect();
        cw.put_log_events()
            .log_group_name(GROUP)
            .log_stream_name(stream)
            .set_log_events(Some(events))
            .send()
            .await
            .unwrap();
    }
}

fn take(generator: &mut Generator, n: usize) -> Vec<String> {
    generator.by_ref().take(n).collect()
}

/// `auditrail up` reading the group through `endpoint`, every second, with
/// small pages (so a stream takes several) and `env` added.
fn up(data: &Path, endpoint: &str, env: &[(&str, &str)]) -> Server {
    up_keeping(data, endpoint, "0", env)
}

/// [`up`] with `--retention-days retention_days`.
fn up_keeping(data: &Path, endpoint: &str, retention_days: &str, env: &[(&str, &str)]) -> Server {
    let credentials = data.join("aws-secret");
    std::fs::create_dir_all(&credentials).unwrap();
    std::fs::write(credentials.join("aws-id"), "testing\n").unwrap();
    std::fs::write(credentials.join("aws-key"), format!("{SECRET_KEY}\n")).unwrap();
    let mut env = env.to_vec();
    env.extend([
        ("AUDITRAIL_INGESTOR__BATCH__MAX_EVENTS", "40"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AUDITRAIL_LOG__LEVEL", "debug"),
    ]);
    common::up_keeping(
        data,
        CLUSTER,
        retention_days,
        &[
            "--cloudwatch-group",
            GROUP,
            "--cloudwatch-region",
            REGION,
            "--cloudwatch-endpoint",
            endpoint,
            "--cloudwatch-fetch-interval",
            "1",
            "--cloudwatch-credentials-dir",
            credentials.to_str().unwrap(),
        ],
        &env,
    )
}

async fn ingestor_status(server: &Server) -> v1::GetStatusResponse {
    IngestorServiceClient::connect(server.url())
        .await
        .unwrap()
        .get_status(v1::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner()
}

/// Sum of a Prometheus counter over its labels (a whole number).
fn counter_sum(server: &Server, name: &str) -> u64 {
    scrape(server.metrics_addr().unwrap())
        .unwrap()
        .iter()
        .filter(|(k, _)| *k == name || k.starts_with(&format!("{name}{{")))
        .map(|(_, v)| {
            assert!(v.fract() == 0.0 && *v >= 0.0, "{name} = {v}");
            format!("{v}").parse::<u64>().unwrap()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_matching_event_exactly_once_across_new_streams_and_a_kill() {
    let moto = Moto::start();
    let cw = writer(&moto.url()).await;
    let (a, b, c) = (
        "kube-apiserver-audit-aaa",
        "kube-apiserver-audit-bbb",
        "kube-apiserver-audit-ccc",
    );
    // Streams EKS also writes to the group, which must never be read.
    create_streams(&cw, &[a, b, "authenticator-aaa", "kube-scheduler-aaa"]).await;
    let clock = Clock::starting(jiff::Timestamp::now().as_millisecond() - 3_600_000);
    let mut generator = Generator::new(GenConfig {
        seed: 7,
        ..GenConfig::default()
    });
    let mut expected = Vec::new();

    let first_a = take(&mut generator, 120);
    put(&cw, &clock, a, &first_a).await;
    put(&cw, &clock, a, &["E1125 not an audit event".to_owned()]).await;
    let first_b = take(&mut generator, 80);
    put(&cw, &clock, b, &first_b).await;
    put(&cw, &clock, "authenticator-aaa", &take(&mut generator, 50)).await;
    put(&cw, &clock, "kube-scheduler-aaa", &take(&mut generator, 50)).await;
    expected.extend(first_a);
    expected.extend(first_b);

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = up(&data, &moto.url(), &[]);
    wait_for_count(&server, 200).await;

    // Events arrive over time, and a new stream appears mid-run.
    let second_a = take(&mut generator, 60);
    put(&cw, &clock, a, &second_a).await;
    create_streams(&cw, &[c]).await;
    let first_c = take(&mut generator, 70);
    put(&cw, &clock, c, &first_c).await;
    expected.extend(second_a);
    expected.extend(first_c);
    wait_for_count(&server, 330).await;

    // A crash in the middle of reading a burst.
    let burst = take(&mut generator, 300);
    put(&cw, &clock, b, &burst).await;
    expected.extend(burst);
    wait_for_count(&server, 331).await;
    server.kill_hard().unwrap();

    let last_a = take(&mut generator, 30);
    put(&cw, &clock, a, &last_a).await;
    expected.extend(last_a);
    let server = up(&data, &moto.url(), &[]);
    wait_for_count(&server, expected.len() as u64).await;

    let status = ingestor_status(&server).await;
    let source = &status.sources[0];
    assert_eq!(status.sources.len(), 1, "CloudWatch only: no file source");
    assert_eq!(source.kind, v1::SourceKind::Cloudwatch as i32);
    let Some(v1::source_status::Location::Cloudwatch(info)) = &source.location else {
        panic!("no CloudWatch details in {source:?}");
    };
    assert_eq!((info.log_group.as_str(), info.streams), (GROUP, 3));
    assert!(source.last_event_time.is_some());
    let streams: Vec<&str> = status
        .checkpoints
        .iter()
        .filter_map(|c| match &c.position {
            Some(v1::checkpoint::Position::Cloudwatch(p)) => Some(p.log_stream.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(streams, vec![a, b, c]);

    let letters = IngestorServiceClient::connect(server.url())
        .await
        .unwrap()
        .list_dead_letters(v1::ListDeadLettersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .dead_letters;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].log_stream, a);
    assert!(!letters[0].event_id.is_empty());
    assert!(letters[0].reason.starts_with("invalid_json"), "{letters:?}");
    assert_eq!(letters[0].excerpt, b"E1125 not an audit event");
    server
        .wait_for_log("the start of CloudWatch ingestion", |l| {
            l.contains("CloudWatch ingestion started")
        })
        .unwrap();
    assert!(!server.logs().iter().any(|l| l.contains(SECRET_KEY)));

    server.terminate().unwrap();
    let stored = stored_ids(&data.join("store")).await;
    assert_exactly_once(&stored, &expected_ids(CLUSTER, &expected));
}

/// A proxy between the ingestor and moto that answers ThrottlingException
/// to the requests whose number (from 1) is in `throttle`, and passes the
/// others through. One request per connection: moto's server closes after
/// each answer, and so does the proxy.
struct ThrottlingProxy {
    addr: SocketAddr,
    throttled: Arc<AtomicU32>,
    task: tokio::task::JoinHandle<()>,
}

impl ThrottlingProxy {
    async fn start(upstream: SocketAddr, throttle: &'static [u32]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let throttled = Arc::new(AtomicU32::new(0));
        let seen = Arc::new(AtomicU32::new(0));
        let counter = Arc::clone(&throttled);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (seen, counter) = (Arc::clone(&seen), Arc::clone(&counter));
                tokio::spawn(async move {
                    let _ = Self::serve(client, upstream, throttle, &seen, &counter).await;
                });
            }
        });
        Self {
            addr,
            throttled,
            task,
        }
    }

    async fn serve(
        mut client: tokio::net::TcpStream,
        upstream: SocketAddr,
        throttle: &[u32],
        seen: &AtomicU32,
        throttled: &AtomicU32,
    ) -> std::io::Result<()> {
        let request = read_request(&mut client).await?;
        let number = seen.fetch_add(1, Ordering::SeqCst) + 1;
        if throttle.contains(&number) {
            throttled.fetch_add(1, Ordering::SeqCst);
            let body = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
            let answer = format!(
                "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\n\
                 x-amzn-ErrorType: ThrottlingException\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
            client.write_all(answer.as_bytes()).await?;
        } else {
            let mut server = tokio::net::TcpStream::connect(upstream).await?;
            server.write_all(&request).await?;
            let mut answer = Vec::new();
            server.read_to_end(&mut answer).await?;
            client.write_all(&answer).await?;
        }
        client.shutdown().await
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for ThrottlingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one HTTP/1.1 request (head and Content-Length body), with a
/// `Connection: close` header added so the upstream closes after it.
async fn read_request(stream: &mut tokio::net::TcpStream) -> std::io::Result<Vec<u8>> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buffer.len() < head_end + 4 + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let mut request = Vec::with_capacity(buffer.len() + 20);
    let without_keep_alive: Vec<&str> = head
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    write!(
        request,
        "{}\r\nConnection: close\r\n\r\n",
        without_keep_alive.join("\r\n")
    )?;
    request.extend_from_slice(&buffer[head_end + 4..]);
    Ok(request)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_slows_reading_but_loses_and_doubles_nothing() {
    let moto = Moto::start();
    let cw = writer(&moto.url()).await;
    let (a, b) = ("kube-apiserver-audit-aaa", "kube-apiserver-audit-bbb");
    create_streams(&cw, &[a, b]).await;
    let clock = Clock::starting(jiff::Timestamp::now().as_millisecond() - 3_600_000);
    let mut generator = Generator::new(GenConfig {
        seed: 11,
        ..GenConfig::default()
    });
    let lines_a = take(&mut generator, 150);
    let lines_b = take(&mut generator, 50);
    put(&cw, &clock, a, &lines_a).await;
    put(&cw, &clock, b, &lines_b).await;

    // The listing, then reads in the middle of a stream, are throttled.
    let proxy = ThrottlingProxy::start(moto.addr, &[1, 2, 3, 5, 6, 8, 9, 10]).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = up(
        &data,
        &proxy.url(),
        &[
            ("AUDITRAIL_INGESTOR__RETRY__INITIAL_MS", "20"),
            ("AUDITRAIL_INGESTOR__RETRY__MAX_MS", "200"),
        ],
    );
    wait_for_count(&server, 200).await;

    let throttled = proxy.throttled.load(Ordering::SeqCst);
    assert_eq!(throttled, 8);
    assert_eq!(
        counter_sum(&server, "ingestor_cloudwatch_throttles_total"),
        u64::from(throttled)
    );
    // Throttled reads were retried, not re-sent: the indexer saw no event
    // twice.
    assert_eq!(counter_sum(&server, "indexer_events_duplicate_total"), 0);
    server.terminate().unwrap();
    let mut expected = lines_a;
    expected.extend(lines_b);
    assert_exactly_once(
        &stored_ids(&data.join("store")).await,
        &expected_ids(CLUSTER, &expected),
    );
}

/// A generated kube event (not a Calico one) whose times are `at`.
fn kube_event_at(at: jiff::Timestamp) -> String {
    let generator = Generator::new(GenConfig {
        seed: 5,
        start: at,
        ..GenConfig::default()
    });
    generator
        .map(|l| serde_json::from_str::<serde_json::Value>(&l).unwrap())
        .find(|e| e["objectRef"]["apiGroup"] != "projectcalico.org")
        .map(|e| e.to_string())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_run_begins_shortly_before_the_newest_stored_kube_event() {
    let now = jiff::Timestamp::now();
    let hour_ago = now - jiff::SignedDuration::from_hours(1);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    // The store already holds the cluster's kube events up to an hour ago
    // (collected from a file before the switch to CloudWatch).
    let log = dir.path().join("kube-audit.log");
    let stored_before = kube_event_at(hour_ago);
    let mut file = std::fs::File::create(&log).unwrap();
    writeln!(file, "{stored_before}").unwrap();
    drop(file);
    let from_file = common::up_following(&data, CLUSTER, &log, &[]);
    wait_for_count(&from_file, 1).await;
    from_file.terminate().unwrap();

    // CloudWatch holds older events (already collected) and newer ones.
    let moto = Moto::start();
    let cw = writer(&moto.url()).await;
    let a = "kube-apiserver-audit-aaa";
    create_streams(&cw, &[a]).await;
    let mut generator = Generator::new(GenConfig {
        seed: 13,
        ..GenConfig::default()
    });
    let three_hours_ago = (now - jiff::SignedDuration::from_hours(3)).as_millisecond();
    let older = take(&mut generator, 30);
    put(&cw, &Clock::starting(three_hours_ago), a, &older).await;
    let half_hour_ago = (now - jiff::SignedDuration::from_mins(30)).as_millisecond();
    let newer = take(&mut generator, 25);
    put(&cw, &Clock::starting(half_hour_ago), a, &newer).await;

    let server = up(&data, &moto.url(), &[]);
    wait_for_count(&server, 26).await;
    let status = ingestor_status(&server).await;
    assert_eq!(status.sources[0].events_read, 25, "{status:?}");
    server.terminate().unwrap();

    let mut expected = newer;
    expected.push(stored_before);
    assert_exactly_once(
        &stored_ids(&data.join("store")).await,
        &expected_ids(CLUSTER, &expected),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_past_the_retention_are_counted_not_dead_lettered() {
    let moto = Moto::start();
    let cw = writer(&moto.url()).await;
    let stream = "kube-apiserver-audit-old";
    create_streams(&cw, &[stream]).await;
    let clock = Clock::starting(jiff::Timestamp::now().as_millisecond() - 3_600_000);
    // 37 real events of 2017, then events of the last hour.
    let old: Vec<String> =
        std::fs::read_to_string(real_data_dir().join("more/liggitt__audit2rbac__demo.ndjson"))
            .expect("shared/data/real beside the checkout")
            .lines()
            .map(str::to_owned)
            .collect();
    let recent: Vec<String> = Generator::new(GenConfig {
        seed: 8,
        start: jiff::Timestamp::now()
            .checked_sub(jiff::SignedDuration::from_hours(1))
            .unwrap(),
        ..GenConfig::default()
    })
    .take(20)
    .collect();
    put(&cw, &clock, stream, &old).await;
    put(&cw, &clock, stream, &recent).await;

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = up_keeping(&data, &moto.url(), "91", &[]);
    wait_for_count(&server, recent.len() as u64).await;
    let start = Instant::now();
    let status = loop {
        let status = ingestor_status(&server).await;
        let positioned = status.checkpoints.iter().any(|c| {
            matches!(&c.position, Some(v1::checkpoint::Position::Cloudwatch(p)) if !p.last_event_id.is_empty())
        });
        if status.sources[0].events_expired == 37 && positioned {
            break status;
        }
        assert!(start.elapsed() < PROCESS_DEADLINE, "{status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.dead_letters.as_ref().unwrap().count, 0, "{status:?}");
    assert_eq!(counter_sum(&server, "ingestor_events_expired_total"), 37);
    let warnings = server
        .wait_for_log("the retention warning", |l| {
            l.contains("older than the retention of 91 days")
        })
        .unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    server.terminate().unwrap();
    let stored = stored_ids(&data.join("store")).await;
    assert_exactly_once(&stored, &expected_ids(CLUSTER, &recent));
}
