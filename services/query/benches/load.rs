//! Many clients at once against a running server: `cargo xtask bench load`
//! starts the release `auditrail up` ingesting a growing log and runs this
//! (`cargo bench -p auditrail-query --bench load -- --server URL
//! [--clients N] [--secs S] [--tls-ca FILE] [--token TOKEN]`); `cargo
//! xtask bench secure` runs it against the same store in clear and over
//! TLS with a token, to measure what access control costs.
//!
//! Each of `--clients` tasks (default 20) has its own connection and, for
//! `--secs` seconds (default 60), calls one request after another, drawn
//! from a fixed mix: timeline pages (the first, or the next through the
//! last page token), histograms with the four top fields, point look-ups of
//! one event by its `auditID` (the client's "get"), and short NDJSON
//! exports (500 events). Prints the calls, the errors (by code) and the
//! p50/p99 latency of each kind and of all calls. Without `--server` it
//! says how to run it and exits.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use auditrail_proto::v1;
use auditrail_proto::v1::query_service_client::QueryServiceClient;
use auditrail_server::client::{ClientConfig, Connection, Credentials};
use tokio_stream::StreamExt as _;

struct Args {
    server: Option<String>,
    clients: usize,
    secs: u64,
    tls_ca: Option<std::path::PathBuf>,
    token: Option<String>,
}

fn args() -> Args {
    let mut args = Args {
        server: None,
        clients: 20,
        secs: 60,
        tls_ca: None,
        token: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--server" => args.server = it.next(),
            "--clients" => {
                args.clients = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(args.clients);
            }
            "--secs" => {
                args.secs = it.next().and_then(|v| v.parse().ok()).unwrap_or(args.secs);
            }
            "--tls-ca" => args.tls_ca = it.next().map(Into::into),
            "--token" => args.token = it.next(),
            _ => {} // cargo bench passes `--bench`
        }
    }
    args
}

/// The kinds of call, in the order of the report.
const KINDS: [&str; 4] = ["search page", "histogram", "get", "export"];

/// What one client saw: latencies per kind, errors per kind and code.
#[derive(Default)]
struct Tally {
    latencies: BTreeMap<&'static str, Vec<Duration>>,
    errors: BTreeMap<(&'static str, String), u64>,
}

impl Tally {
    fn record(&mut self, kind: &'static str, started: Instant, result: Result<(), tonic::Status>) {
        match result {
            Ok(()) => self
                .latencies
                .entry(kind)
                .or_default()
                .push(started.elapsed()),
            Err(status) => {
                *self
                    .errors
                    .entry((kind, format!("{:?}", status.code())))
                    .or_default() += 1;
            }
        }
    }

    fn merge(&mut self, other: Self) {
        for (kind, mut times) in other.latencies {
            self.latencies.entry(kind).or_default().append(&mut times);
        }
        for (key, n) in other.errors {
            *self.errors.entry(key).or_default() += n;
        }
    }
}

/// One client's state: where its timeline paging is, and audit ids seen.
struct Client {
    rpc: QueryServiceClient<Connection>,
    token: String,
    audit_ids: Vec<String>,
    /// A cheap deterministic sequence choosing the next call.
    state: u64,
}

impl Client {
    fn next_choice(&mut self) -> u64 {
        // xorshift64: enough to mix the calls, and reproducible.
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state % 100
    }

    async fn search_page(&mut self) -> Result<(), tonic::Status> {
        let page = self
            .rpc
            .search(v1::SearchRequest {
                timeline: true,
                page_size: 100,
                page_token: std::mem::take(&mut self.token),
                ..v1::SearchRequest::default()
            })
            .await?
            .into_inner();
        // Follow up to ten pages deep, then start again from the top.
        if self.next_choice() < 90 {
            self.token = page.next_page_token;
        }
        self.audit_ids = page
            .events
            .into_iter()
            .map(|e| e.audit_id)
            .take(20)
            .collect();
        Ok(())
    }

    async fn histogram(&mut self) -> Result<(), tonic::Status> {
        let timeline = self.next_choice() < 50;
        self.rpc
            .histogram(v1::HistogramRequest {
                filter: Some(v1::Filter {
                    from: "now-1h".into(),
                    ..v1::Filter::default()
                }),
                top_fields: vec![
                    v1::TopField::Verb as i32,
                    v1::TopField::Resource as i32,
                    v1::TopField::User as i32,
                    v1::TopField::Namespace as i32,
                ],
                timeline,
                ..v1::HistogramRequest::default()
            })
            .await?;
        Ok(())
    }

    async fn get(&mut self) -> Result<(), tonic::Status> {
        let pick = usize::try_from(self.next_choice()).unwrap_or(0);
        let Some(id) = self
            .audit_ids
            .get(pick % self.audit_ids.len().max(1))
            .cloned()
        else {
            return self.search_page().await;
        };
        self.rpc
            .search(v1::SearchRequest {
                filter: Some(v1::Filter {
                    selector: format!("auditID = \"{id}\""),
                    ..v1::Filter::default()
                }),
                page_size: 10,
                include_raw: true,
                ..v1::SearchRequest::default()
            })
            .await?;
        Ok(())
    }

    async fn export(&mut self) -> Result<(), tonic::Status> {
        let mut stream = self
            .rpc
            .export(v1::ExportRequest {
                format: v1::ExportFormat::Ndjson as i32,
                limit: 500,
                ..v1::ExportRequest::default()
            })
            .await?
            .into_inner();
        while let Some(chunk) = stream.next().await {
            chunk?;
        }
        Ok(())
    }
}

async fn run_client(
    url: String,
    seed: u64,
    until: Instant,
    tls_ca: Option<std::path::PathBuf>,
    token: Option<String>,
) -> Result<Tally, String> {
    let config = ClientConfig {
        tls_ca,
        ..ClientConfig::default()
    };
    let channel = auditrail_server::client::endpoint(&url, &config)
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let credentials = match &token {
        Some(token) => Credentials::bearer(token).map_err(|e| e.to_string())?,
        None => Credentials::default(),
    };
    let connection = tonic::service::interceptor::InterceptedService::new(channel, credentials);
    let mut client = Client {
        rpc: QueryServiceClient::new(connection).max_decoding_message_size(64 << 20),
        token: String::new(),
        audit_ids: Vec::new(),
        state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
    };
    let mut tally = Tally::default();
    while Instant::now() < until {
        let choice = client.next_choice();
        let started = Instant::now();
        let (kind, result) = match choice {
            0..40 => (KINDS[0], client.search_page().await),
            40..60 => (KINDS[1], client.histogram().await),
            60..85 => (KINDS[2], client.get().await),
            _ => (KINDS[3], client.export().await),
        };
        tally.record(kind, started, result);
    }
    Ok(tally)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn line(name: &str, mut times: Vec<Duration>) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "load: {name:<12} {:>7} calls  p50 {:>8.1} ms  p99 {:>8.1} ms",
        times.len(),
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = args();
    let Some(url) = args.server else {
        println!("load: needs a running server: run `cargo xtask bench load`");
        return;
    };
    let until = Instant::now() + Duration::from_secs(args.secs);
    let clients: Vec<_> = (0..args.clients)
        .map(|n| {
            tokio::spawn(run_client(
                url.clone(),
                n as u64 + 1,
                until,
                args.tls_ca.clone(),
                args.token.clone(),
            ))
        })
        .collect();
    let mut all = Tally::default();
    for client in clients {
        match client.await {
            Ok(Ok(tally)) => all.merge(tally),
            Ok(Err(e)) => println!("load: a client failed: {e}"),
            Err(e) => println!("load: a client panicked: {e}"),
        }
    }
    let errors: u64 = all.errors.values().sum();
    let mut every = Vec::new();
    for kind in KINDS {
        let times = all.latencies.remove(kind).unwrap_or_default();
        every.extend_from_slice(&times);
        line(kind, times);
    }
    let calls = every.len() as u64 + errors;
    line("all", every);
    println!(
        "load: {} clients for {} s: {calls} calls, {errors} errors",
        args.clients, args.secs
    );
    for ((kind, code), n) in &all.errors {
        println!("load:   {n} × {code} on {kind}");
    }
}
