//! Query latency and export throughput over real gRPC on the embedded store:
//! `cargo xtask bench query [--events N]` (or `cargo bench -p auditrail-query
//! --bench query -- --events N`).
//!
//! Builds (once, then reuses) a store of N generated events (about 1 KB
//! each, a mix of Kubernetes and Calico reads and writes spread over days),
//! serves `QueryService` on a loopback port, and times from a client:
//!
//! - timeline pages: the first page, and pages deep in the result through
//!   their page tokens (100 events each, newest first);
//! - filtered searches (a verb and kind, a namespace and selector);
//! - exact counts (`page_size` 1 and `exact_total`: the total only);
//! - histograms (automatic interval, the four top fields);
//! - a full NDJSON export, in MB/s of document received.
//!
//! Prints p50 and p99 per operation. The store is kept in
//! `$CARGO_TARGET_DIR/bench-data/query-<N>` (or `--dir`), because indexing
//! ten million events takes minutes and is measured by `bench ingest`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use auditrail_event::EventType;
use auditrail_loggen::{GenConfig, Generator};
use auditrail_proto::v1;
use auditrail_proto::v1::query_service_client::QueryServiceClient;
use auditrail_store::{IndexedEvent, Store};
use auditrail_store_tantivy::{TantivyOptions, TantivyStore};
use tokio_stream::StreamExt as _;
use tonic::transport::Channel;

/// Bump when the generated data or the schema changes, to rebuild stores.
const DATA_VERSION: u32 = 6;
const CLUSTER: &str = "bench";
const BATCH: usize = 20_000;

struct Args {
    events: u64,
    dir: Option<PathBuf>,
    samples: usize,
}

fn args() -> Args {
    let mut args = Args {
        events: 1_000_000,
        dir: None,
        samples: 200,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--events" => {
                args.events = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(args.events);
            }
            "--dir" => args.dir = it.next().map(PathBuf::from),
            "--samples" => {
                args.samples = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(args.samples);
            }
            _ => {} // cargo bench passes `--bench`
        }
    }
    args
}

fn data_dir(args: &Args) -> PathBuf {
    args.dir.clone().unwrap_or_else(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
            || {
                std::env::var_os("CARGO_MANIFEST_DIR")
                    .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
                    .join("../../target")
            },
            PathBuf::from,
        );
        target
            .join("bench-data")
            .join(format!("query-{}-v{DATA_VERSION}", args.events))
    })
}

/// Opens the store in `dir`, first filling it with `events` generated events
/// unless a complete earlier build is there.
async fn store(dir: &Path, events: u64) -> Arc<TantivyStore> {
    let marker = dir.join("complete");
    if !marker.exists() {
        let _ = std::fs::remove_dir_all(dir);
    }
    let store = Arc::new(TantivyStore::open(dir, TantivyOptions::default()).expect("open store"));
    if marker.exists() {
        println!(
            "query: reusing the store of {events} events in {}",
            dir.display()
        );
        return store;
    }
    println!(
        "query: indexing {events} generated events into {}",
        dir.display()
    );
    let started = Instant::now();
    let now = jiff::Timestamp::now();
    let mut generator = Generator::new(GenConfig::default());
    let mut written = 0u64;
    while written < events {
        let n = usize::try_from((events - written).min(BATCH as u64)).expect("batch fits");
        let batch: Vec<IndexedEvent> = generator
            .by_ref()
            .take(n)
            .map(|line| {
                IndexedEvent::from_raw(CLUSTER, line.as_bytes(), EventType::Kube, now)
                    .expect("generated events index")
            })
            .collect();
        store.write(batch).await.expect("write");
        written += n as u64;
        if written.is_multiple_of(1_000_000) {
            println!(
                "  {written} events, {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    std::fs::write(&marker, b"").expect("mark the store complete");
    println!("query: indexed in {:.0} s", started.elapsed().as_secs_f64());
    store
}

/// Serves the query service on a free loopback port; returns its address
/// and the sender that stops it.
async fn serve(store: Arc<dyn Store>) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(auditrail_query::Querier::new(store).server())
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                async {
                    let _ = stopped.await;
                },
            )
            .await
            .expect("serve");
    });
    (format!("http://{addr}"), stop)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "query: {name:<34} p50 {:>8.2} ms  p99 {:>8.2} ms  ({} samples)",
        ms(percentile(&samples, 0.5)),
        ms(percentile(&samples, 0.99)),
        samples.len()
    );
}

async fn time_searches(
    client: &mut QueryServiceClient<Channel>,
    name: &str,
    request: &v1::SearchRequest,
    samples: usize,
) -> v1::SearchResponse {
    let mut times = Vec::with_capacity(samples);
    let mut last = v1::SearchResponse::default();
    for _ in 0..samples {
        let started = Instant::now();
        last = client
            .search(request.clone())
            .await
            .expect("search")
            .into_inner();
        times.push(started.elapsed());
    }
    report(name, times);
    last
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = args();
    let dir = data_dir(&args);
    let store = store(&dir, args.events).await;
    let (url, stop) = serve(store).await;
    let mut client = QueryServiceClient::new(
        Channel::from_shared(url)
            .expect("url")
            .connect()
            .await
            .expect("connect"),
    )
    .max_decoding_message_size(256 << 20);
    let samples = args.samples;

    let timeline = v1::SearchRequest {
        timeline: true,
        page_size: 100,
        ..v1::SearchRequest::default()
    };
    let first = time_searches(&mut client, "timeline page 1", &timeline, samples).await;
    println!("query:   (timeline matches {} events)", first.total_hits);

    // Deep pages: follow tokens to about the middle, then time that page.
    let mut token = first.next_page_token.clone();
    let deep_pages = (first.total_hits / 100 / 2).min(500);
    for _ in 0..deep_pages {
        let page = client
            .search(v1::SearchRequest {
                page_token: token.clone(),
                ..timeline.clone()
            })
            .await
            .expect("page")
            .into_inner();
        token = page.next_page_token;
    }
    time_searches(
        &mut client,
        &format!("timeline page {}", deep_pages + 2),
        &v1::SearchRequest {
            page_token: token,
            ..timeline.clone()
        },
        samples,
    )
    .await;

    let filtered = v1::SearchRequest {
        filter: Some(v1::Filter {
            kinds: vec!["NetworkPolicy".into()],
            verbs: vec!["delete".into()],
            ..v1::Filter::default()
        }),
        page_size: 100,
        ..v1::SearchRequest::default()
    };
    time_searches(&mut client, "search kind+verb", &filtered, samples).await;
    let selector = v1::SearchRequest {
        filter: Some(v1::Filter {
            selector: "objectRef.namespace = payments AND responseStatus.code >= 400".into(),
            ..v1::Filter::default()
        }),
        page_size: 100,
        ..v1::SearchRequest::default()
    };
    time_searches(&mut client, "search selector", &selector, samples).await;
    let count = v1::SearchRequest {
        filter: Some(v1::Filter {
            selector: "verb IN {create, update, patch, delete}".into(),
            ..v1::Filter::default()
        }),
        page_size: 1,
        exact_total: true,
        ..v1::SearchRequest::default()
    };
    time_searches(&mut client, "exact count (writes)", &count, samples).await;
    let count = v1::SearchRequest {
        timeline: true,
        page_size: 1,
        exact_total: true,
        ..v1::SearchRequest::default()
    };
    time_searches(&mut client, "exact count (timeline)", &count, samples).await;

    histograms(&mut client, samples).await;
    export(&mut client).await;
    let _ = stop.send(());
}

async fn histograms(client: &mut QueryServiceClient<Channel>, samples: usize) {
    let histogram = v1::HistogramRequest {
        top_fields: vec![
            v1::TopField::Verb as i32,
            v1::TopField::Resource as i32,
            v1::TopField::User as i32,
            v1::TopField::Namespace as i32,
        ],
        ..v1::HistogramRequest::default()
    };
    let mut times = Vec::new();
    for _ in 0..samples.div_ceil(4) {
        let started = Instant::now();
        client
            .histogram(histogram.clone())
            .await
            .expect("histogram");
        times.push(started.elapsed());
    }
    report("histogram (all, 4 top fields)", times);
    let mut times = Vec::new();
    for _ in 0..samples.div_ceil(4) {
        let started = Instant::now();
        client
            .histogram(v1::HistogramRequest {
                timeline: true,
                ..histogram.clone()
            })
            .await
            .expect("histogram");
        times.push(started.elapsed());
    }
    report("histogram (timeline)", times);
}

async fn export(client: &mut QueryServiceClient<Channel>) {
    let started = Instant::now();
    let mut stream = client
        .export(v1::ExportRequest {
            format: v1::ExportFormat::Ndjson as i32,
            ..v1::ExportRequest::default()
        })
        .await
        .expect("export")
        .into_inner();
    let mut bytes = 0u64;
    let mut events = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("chunk");
        bytes += chunk.data.len() as u64;
        if let Some(done) = chunk.done {
            events = done.total_events;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let mb = bytes as f64 / 1e6;
    println!(
        "query: export ndjson {events} events, {mb:.0} MB in {secs:.1} s: {:.0} MB/s",
        mb / secs
    );
}
