//! `auditrail store verify` on a real store directory, and `auditrail up`
//! serving a store with damaged files: a store written with generated
//! events in three batches (one segment each), then bytes flipped in one
//! segment's doc store and in another's fast fields. Every expectation
//! (segment ids, file names, event counts, time ranges) is computed here
//! from the files and the events written.

use std::path::{Path, PathBuf};
use std::process::Command;

use auditrail_event::EventType;
use auditrail_integration_tests::{Server, binary, eventually, run_to_end, scrape};
use auditrail_loggen::{GenConfig, Generator};
use auditrail_proto::v1;
use auditrail_proto::v1::ingest_service_client::IngestServiceClient;
use auditrail_store::{IndexedEvent, Store as _};
use jiff::Timestamp;

const CLUSTER: &str = "alpha";
/// Distinct sizes: a segment's event count says which batch it holds.
const BATCHES: [usize; 3] = [300, 500, 800];

fn auditrail(args: &[&str]) -> (i32, String, String) {
    let mut command = Command::new(binary("auditrail").unwrap());
    command.args(args).env_remove("AUDITRAIL_SERVER");
    let (status, out, err) = run_to_end(&mut command).unwrap();
    (status.code().unwrap_or(-1), out, err)
}

/// Writes the batches into `<data>/store` (as `auditrail up --data-dir
/// data` keeps it), one commit and so one segment each.
async fn written(data: &Path) -> Vec<Vec<IndexedEvent>> {
    let now: Timestamp = "2026-03-01T00:00:00Z".parse().unwrap();
    let mut lines = Generator::new(GenConfig {
        seed: 7,
        start: "2026-01-01T00:00:00Z".parse().unwrap(),
        ..GenConfig::default()
    });
    let store = auditrail_store_tantivy::TantivyStore::open(
        &data.join("store"),
        auditrail_store_tantivy::TantivyOptions::default(),
    )
    .unwrap();
    let mut batches = Vec::new();
    for size in BATCHES {
        let batch: Vec<IndexedEvent> = lines
            .by_ref()
            .take(size)
            .map(|l| IndexedEvent::from_raw(CLUSTER, l.as_bytes(), EventType::Kube, now).unwrap())
            .collect();
        store.write(batch.clone()).await.unwrap();
        batches.push(batch);
    }
    batches
}

fn files_with(data: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data.join("store").join(CLUSTER))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    files
}

fn flip(file: &Path, n: usize) {
    let mut bytes = std::fs::read(file).unwrap();
    assert!(
        bytes.len() > 2 * n,
        "{}: {} bytes",
        file.display(),
        bytes.len()
    );
    let start = bytes.len() / 2 - n / 2;
    for b in &mut bytes[start..start + n] {
        *b = !*b;
    }
    std::fs::write(file, bytes).unwrap();
}

fn name(path: &Path) -> String {
    path.file_name().unwrap().to_str().unwrap().to_owned()
}

fn segment_of(file: &str) -> &str {
    file.split('.').next().unwrap()
}

/// What the report must say of one damaged segment.
struct Expected {
    segment: String,
    file: String,
    events: usize,
    oldest: String,
    newest: String,
}

/// What the report must say of the segment of `file`, which holds `batch`.
fn expected(file: &Path, batch: &[IndexedEvent]) -> Expected {
    let micros = |t: Timestamp| {
        Timestamp::from_microsecond(t.as_microsecond())
            .unwrap()
            .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string()
    };
    let file = name(file);
    Expected {
        segment: segment_of(&file).to_owned(),
        file,
        events: batch.len(),
        oldest: micros(batch.iter().map(|e| e.time).min().unwrap()),
        newest: micros(batch.iter().map(|e| e.time).max().unwrap()),
    }
}

/// The JSON report's damaged segment named `segment`.
fn damaged<'a>(report: &'a serde_json::Value, segment: &str) -> &'a serde_json::Value {
    report["clusters"][0]["damagedSegments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["segment"] == segment)
        .unwrap_or_else(|| panic!("segment {segment} not reported: {report}"))
}

/// The batch a damaged segment holds, by its event count in the report.
fn batch_of<'a>(
    report: &serde_json::Value,
    segment: &str,
    batches: &'a [Vec<IndexedEvent>],
) -> &'a [IndexedEvent] {
    let events = damaged(report, segment)["events"].as_u64().unwrap();
    batches
        .iter()
        .find(|b| b.len() as u64 == events)
        .unwrap_or_else(|| panic!("no batch of {events} events"))
}

fn check_json(report: &serde_json::Value, want: &Expected) {
    let s = damaged(report, &want.segment);
    assert_eq!(s["events"], want.events as u64, "{s}");
    assert_eq!(s["oldest"], want.oldest.as_str(), "{s}");
    assert_eq!(s["newest"], want.newest.as_str(), "{s}");
    assert_eq!(s["files"].as_array().unwrap().len(), 1, "{s}");
    assert_eq!(s["files"][0]["name"], want.file.as_str(), "{s}");
    assert_eq!(s["files"][0]["problem"], "checksum mismatch", "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(
    clippy::too_many_lines,
    reason = "one store, verified before and after damage"
)]
async fn store_verify_names_damaged_segments_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let batches = written(&data).await;
    let data_arg = data.to_str().unwrap();

    // Intact: exit 0, the table, and a clean JSON document.
    let (code, out, err) = auditrail(&["store", "verify", "--data-dir", data_arg]);
    assert_eq!(code, 0, "{out}{err}");
    let total: usize = BATCHES.iter().sum();
    let row = format!("{CLUSTER:<20} {:>9} {total:>10} {:>8}", BATCHES.len(), 0);
    assert!(out.contains(&row), "{out}");
    assert!(!out.contains("damaged segment"), "{out}");
    let store_dir = data.join("store");
    let (code, out, _) = auditrail(&[
        "store",
        "verify",
        "--store-dir",
        store_dir.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert_eq!(code, 0);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["clean"], true);
    assert_eq!(report["clusters"][0]["segments"], BATCHES.len());
    assert_eq!(report["clusters"][0]["events"], total);

    // 64 bytes of one doc store and 4096 of another segment's fast fields.
    let stores = files_with(&data, "store");
    let store_file = stores[0].clone();
    let fast_file = files_with(&data, "fast")
        .into_iter()
        .filter(|f| segment_of(&name(f)) != segment_of(&name(&store_file)))
        .max_by_key(|f| std::fs::metadata(f).unwrap().len())
        .unwrap();
    flip(&store_file, 64);
    flip(&fast_file, 4096);

    let (code, out, err) = auditrail(&["store", "verify", "--data-dir", data_arg, "-o", "json"]);
    assert_eq!(code, 2, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["clean"], false);
    assert_eq!(
        report["clusters"][0]["damagedSegments"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "{report}"
    );
    let wants: Vec<Expected> = [&store_file, &fast_file]
        .into_iter()
        .map(|f| expected(f, batch_of(&report, segment_of(&name(f)), &batches)))
        .collect();
    for want in &wants {
        check_json(&report, want);
    }
    let total_damaged = wants.iter().map(|w| w.events).sum::<usize>();
    assert!(
        err.starts_with(&format!(
            "error: the store in {} has 2 damaged segment(s) holding {total_damaged} events",
            store_dir.display()
        )),
        "{err}"
    );

    // YAML says the same.
    let (code, out, _) = auditrail(&["store", "verify", "--data-dir", data_arg, "-o", "yaml"]);
    assert_eq!(code, 2);
    let yaml: serde_json::Value = serde_norway::from_str(&out).unwrap();
    assert_eq!(yaml, report);

    // Text: each damaged segment with its events, time range and file.
    let (code, out, _) = auditrail(&["store", "verify", "--data-dir", data_arg]);
    assert_eq!(code, 2);
    for want in &wants {
        let block = format!(
            "damaged segment {} (cluster {CLUSTER})\n  events: {}\n  time:   {} .. {}\n  file:   {} (checksum mismatch)\n",
            want.segment, want.events, want.oldest, want.newest, want.file
        );
        assert!(out.contains(&block), "{block}\nnot in\n{out}");
    }

    // No store there: an error, exit 1.
    let missing = dir.path().join("nothing");
    let (code, _, err) = auditrail(&["store", "verify", "--data-dir", missing.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.starts_with("error: no store in"), "{err}");

    // A server on the damaged store: serves, finds the damage in the
    // background, reports it in logs, metrics and GetIndexStats, counts
    // only the intact events, and refuses an export over the damage.
    let log = dir.path().join("kube-audit.log");
    std::fs::write(&log, "").unwrap();
    let server = Server::start(
        &binary("auditrail").unwrap(),
        &[
            "up",
            "--data-dir",
            data_arg,
            "--cluster",
            CLUSTER,
            "--retention-days",
            "0",
            "--log-path",
            log.to_str().unwrap(),
        ],
        &[],
    )
    .unwrap();
    // The gauge is set once the background verification has gone through
    // every segment: only then do the counts of GetIndexStats (read before
    // its list of damaged segments, not in one snapshot) leave out all the
    // damage.
    let metrics_addr = server.metrics_addr().unwrap().to_owned();
    let gauge = format!("store_damaged_segments{{cluster=\"{CLUSTER}\"}}");
    let metrics = eventually("the end of the background verification", || {
        let found = scrape(&metrics_addr)
            .ok()
            .filter(|metrics| metrics.contains_key(&gauge));
        async move { found }
    })
    .await
    .unwrap();
    assert_eq!(metrics.get(&gauge), Some(&2.0), "{metrics:?}");
    let url = server.url();
    let mut client = IngestServiceClient::connect(url.clone()).await.unwrap();
    let stats = client
        .get_index_stats(v1::GetIndexStatsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.damaged_segments.len(), 2, "{stats:?}");
    for want in &wants {
        let s = stats
            .damaged_segments
            .iter()
            .find(|s| s.segment == want.segment)
            .unwrap();
        assert_eq!(s.cluster, CLUSTER);
        assert_eq!(s.event_count, want.events as u64);
        assert_eq!(s.files.len(), 1);
        assert_eq!(s.files[0].name, want.file);
        assert_eq!(s.files[0].problem, "checksum mismatch");
        assert!(s.oldest.is_some() && s.newest.is_some());
    }
    let counted: u64 = stats.stats.iter().map(|s| s.event_count).sum();
    assert_eq!(counted, (total - total_damaged) as u64);
    for want in &wants {
        server
            .wait_for_log(&format!("the error about {}", want.segment), |l| {
                l.contains("ERROR") && l.contains("damaged segment") && l.contains(&want.segment)
            })
            .unwrap();
    }

    // `store verify` beside the running server (which holds the writer lock).
    let (code, out, err) = auditrail(&["store", "verify", "--data-dir", data_arg, "-o", "json"]);
    assert_eq!(code, 2, "{out}{err}");
    let beside: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(beside, report);

    // An export over everything would miss the damaged events: DATA_LOSS,
    // naming the segments; an export of a range before them works.
    let out_file = dir.path().join("export.json");
    let (code, _, err) = auditrail(&[
        "export",
        "--server",
        &url,
        "--from",
        "2025-01-01T00:00:00Z",
        "-q",
        "-f",
        out_file.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("(DATA_LOSS)"), "{err}");
    for want in &wants {
        assert!(err.contains(&want.segment), "{err}");
    }
    let before = wants.iter().map(|w| w.oldest.clone()).min().unwrap();
    let (code, _, err) = auditrail(&[
        "export",
        "--server",
        &url,
        "--from",
        "2025-01-01T00:00:00Z",
        "--to",
        &before,
        "-q",
        "-f",
        out_file.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    server.terminate().unwrap();
}
