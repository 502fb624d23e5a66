//! The ingest pipeline end to end: audit log files → ingestor → indexer →
//! embedded store, through rotations (rename and copy-truncate), graceful
//! restarts and hard kills. The index must hold each event of the source
//! exactly once: the test compares the stored ids with the ids computed from
//! the source lines, and the dead letters with the bad lines it wrote.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use auditrail_event::EventId;
use auditrail_integration_tests::{Server, binary, eventually, run_to_end, scrape};
use auditrail_loggen::{GenConfig, Generator};
use auditrail_proto::v1;
use auditrail_proto::v1::ingestor_service_client::IngestorServiceClient;
use rand::{Rng as _, SeedableRng as _};

use crate::common::{self, assert_exactly_once, expected_ids, stored_ids, wait_for_count};
use crate::real_data::real_data_dir;

const CLUSTER: &str = "c1";

fn append(path: &Path, lines: &[String]) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for line in lines {
        file.write_all(line.as_bytes()).unwrap();
        file.write_all(b"\n").unwrap();
    }
    file.sync_all().unwrap();
}

/// lumberjack's rotation: rename the live file to `<stem>-<time>.log`; the
/// writer then creates a new live file on its next write.
fn rotate_rename(live: &Path, stamp: &str) {
    let backup = live.with_file_name(format!("kube-audit-{stamp}.log"));
    std::fs::rename(live, backup).unwrap();
}

/// copytruncate: copy the live file to a backup, then truncate it in place.
fn rotate_copy_truncate(live: &Path, stamp: &str) {
    let backup = live.with_file_name(format!("kube-audit-{stamp}.log"));
    std::fs::copy(live, backup).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(live)
        .unwrap()
        .set_len(0)
        .unwrap();
}

/// Two different events with the same auditID and stage, as when a client
/// sets its own Audit-ID header: both must be kept.
fn same_audit_id_pair() -> Vec<String> {
    let base = Generator::new(GenConfig {
        seed: 99,
        ..GenConfig::default()
    })
    .next()
    .unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&base).unwrap();
    let first = value.to_string();
    value["userAgent"] = "curl/8.0 (same Audit-ID, different request)".into();
    vec![first, value.to_string()]
}

/// `auditrail up` following `log`, with short batch waits and `env` added.
fn up_with(data: &Path, log: &Path, env: &[(&str, &str)]) -> Server {
    common::up_following(data, CLUSTER, log, env)
}

fn up(data: &Path, log: &Path) -> Server {
    up_with(data, log, &[])
}

/// `auditrail up` with the default retention (91 days, unlike the other
/// tests' `--retention-days 0`), short batch waits and `args` added.
fn up_default_retention(data: &Path, args: &[&str]) -> Server {
    let mut all = vec![
        "up",
        "--data-dir",
        data.to_str().unwrap(),
        "--cluster",
        CLUSTER,
    ];
    all.extend_from_slice(args);
    Server::start(
        &binary("auditrail").unwrap(),
        &all,
        &[("AUDITRAIL_INGESTOR__BATCH__MAX_WAIT_MS", "50")],
    )
    .unwrap()
}

/// The lines of a file of `shared/data/real` (real audit events).
fn real_lines(name: &str) -> Vec<String> {
    let path = real_data_dir().join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} beside the checkout: {e}", path.display()))
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Generated events of the last hour (kept by the default retention).
fn recent_events(seed: u64, n: usize) -> Vec<String> {
    let start = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_hours(1))
        .unwrap();
    Generator::new(GenConfig {
        seed,
        start,
        ..GenConfig::default()
    })
    .take(n)
    .collect()
}

async fn get_status(
    client: &IngestorServiceClient<tonic::transport::Channel>,
) -> Option<v1::GetStatusResponse> {
    let mut client = client.clone();
    Some(
        client
            .get_status(v1::GetStatusRequest::default())
            .await
            .ok()?
            .into_inner(),
    )
}

/// `auditrail ingest-status` against `server`: its standard output.
fn ingest_status_text(server: &Server) -> String {
    let (status, out, err) = run_to_end(
        Command::new(binary("auditrail").unwrap())
            .args(["ingest-status", "--server"])
            .arg(server.url()),
    )
    .unwrap();
    assert!(status.success(), "{err}");
    out
}

/// The `message` of the server's JSON log lines at `level`.
fn log_messages(server: &Server, level: &str) -> Vec<String> {
    server
        .logs()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["level"] == level)
        .filter_map(|l| l["message"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_exactly_once_through_rotations_restarts_and_kills() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let live = logs.join("kube-audit.log");
    let data = dir.path().join("data");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);

    let mut lines: Vec<String> = Generator::new(GenConfig::default()).take(6_000).collect();
    let pair = same_audit_id_pair();
    lines.splice(4_000..4_000, pair.clone());
    let expected = expected_ids(CLUSTER, &lines);
    assert_eq!(
        expected.len(),
        lines.len(),
        "the source has no duplicate lines"
    );

    // Existing backups and a live file before the first start.
    append(&live, &lines[..800]);
    rotate_rename(&live, "2026-01-01T00-00-00.000");
    append(&live, &lines[800..2_000]);

    // Run 1: killed hard at a random point of the ingestion.
    let server = up(&data, &live);
    let kill_at = rng.random_range(200..1_800);
    wait_for_count(&server, kill_at).await;
    server.kill_hard().unwrap();

    // While down: more lines, then a rename rotation.
    append(&live, &lines[2_000..2_600]);
    rotate_rename(&live, "2026-01-01T01-00-00.000");
    append(&live, &lines[2_600..3_000]);

    // Run 2: a rename rotation while running, then a graceful stop.
    let server = up(&data, &live);
    let stop_at = rng.random_range(2_000..3_000);
    wait_for_count(&server, stop_at).await;
    rotate_rename(&live, "2026-01-01T02-00-00.000");
    append(&live, &lines[3_000..3_500]);
    let status = server.terminate().unwrap();
    assert!(status.success());

    // While down: copy-truncate rotation, then new lines in the live file.
    append(&live, &lines[3_500..4_200]);
    rotate_copy_truncate(&live, "2026-01-01T03-00-00.000");
    append(&live, &lines[4_200..5_000]);

    // Run 3: copy-truncate while running and a last hard kill.
    let server = up(&data, &live);
    wait_for_count(&server, 4_500).await;
    rotate_copy_truncate(&live, "2026-01-01T04-00-00.000");
    append(&live, &lines[5_000..5_600]);
    let kill_at = rng.random_range(4_600..5_600);
    wait_for_count(&server, kill_at).await;
    server.kill_hard().unwrap();

    // Run 4: the rest, until everything is in.
    append(&live, &lines[5_600..]);
    let server = up(&data, &live);
    let total = lines.len() as u64;
    wait_for_count(&server, total).await;
    let status = server.terminate().unwrap();
    assert!(status.success());

    let stored = stored_ids(&data.join("store")).await;
    assert_exactly_once(&stored, &expected);
    for line in &pair {
        assert!(stored.contains(&EventId::compute(CLUSTER, line.as_bytes())));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_ingestor_and_indexer_survive_each_others_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("kube-audit.log");
    let store_dir = dir.path().join("store");
    let lines: Vec<String> = Generator::new(GenConfig {
        seed: 3,
        ..GenConfig::default()
    })
    .take(3_000)
    .collect();
    append(&live, &lines[..1_500]);

    // Two processes sharing one data directory, as deployed: the store in
    // store/, the ingestor's checkpoints in ingestor/.
    let auditrail = binary("auditrail").unwrap();
    let start_indexer = |listen: &str| {
        let mut command = Command::new(&auditrail);
        command
            .args(["run", "--service", "indexer"])
            .args(["--listen", listen, "--no-metrics", "--log-format", "json"])
            .args(["--retention-days", "0"])
            .arg("--data-dir")
            .arg(dir.path());
        Server::spawn(command, &[]).unwrap()
    };
    let indexer = start_indexer("127.0.0.1:0");
    let indexer_addr = indexer.addr().to_owned();
    let start_ingestor = || {
        let mut command = Command::new(&auditrail);
        command
            .args(["run", "--service", "ingestor"])
            .args([
                "--listen",
                "127.0.0.1:0",
                "--no-metrics",
                "--log-format",
                "json",
            ])
            .args(["--cluster", CLUSTER, "--indexer-url"])
            .arg(format!("http://{indexer_addr}"))
            .arg("--data-dir")
            .arg(dir.path())
            .arg("--log-path")
            .arg(&live);
        Server::spawn(command, &[("AUDITRAIL_INGESTOR__BATCH__MAX_WAIT_MS", "50")]).unwrap()
    };
    let ingestor = start_ingestor();

    // The indexer crashes mid-stream; the ingestor keeps retrying.
    wait_for_count(&indexer, 300).await;
    indexer.kill_hard().unwrap();
    append(&live, &lines[1_500..2_200]);
    let indexer = start_indexer(&indexer_addr);
    wait_for_count(&indexer, 1_600).await;

    // Now the ingestor crashes; its replacement resumes from the checkpoint.
    ingestor.kill_hard().unwrap();
    append(&live, &lines[2_200..]);
    let ingestor = start_ingestor();
    wait_for_count(&indexer, lines.len() as u64).await;

    // The ingestor's status reports its source, and its checkpoint reaches
    // the end of the file once it has applied the last acknowledgement
    // (which may trail the indexer's commit a little).
    let status_client = IngestorServiceClient::connect(ingestor.url())
        .await
        .unwrap();
    let file_len = std::fs::metadata(&live).unwrap().len();
    let status = eventually("the checkpoint at the end of the file", || {
        let mut client = status_client.clone();
        async move {
            let status = client
                .get_status(v1::GetStatusRequest::default())
                .await
                .ok()?
                .into_inner();
            let at_end = status.checkpoints.iter().any(|c| {
                matches!(
                    &c.position,
                    Some(v1::checkpoint::Position::File(f)) if f.offset == file_len
                )
            });
            at_end.then_some(status)
        }
    })
    .await
    .unwrap();
    assert_eq!(status.cluster, CLUSTER);
    assert_eq!(status.sources.len(), 1);
    assert!(status.sources[0].events_acknowledged > 0, "{status:?}");
    drop(status_client);

    assert!(ingestor.terminate().unwrap().success());
    assert!(indexer.terminate().unwrap().success());
    assert_exactly_once(
        &stored_ids(&store_dir).await,
        &expected_ids(CLUSTER, &lines),
    );
}

/// A line and what the ingestor must do with it.
struct Case {
    bytes: Vec<u8>,
    dead_letter: Option<&'static str>,
}

/// The malformed corpus: every kind of bad line between good events, and
/// the offsets they are written at.
fn write_malformed_corpus(live: &Path) -> (Vec<Case>, Vec<u64>) {
    let good: Vec<String> = Generator::new(GenConfig {
        seed: 11,
        ..GenConfig::default()
    })
    .take(40)
    .collect();
    let big = {
        // A 5 MiB event: a real event with a large response object.
        let mut value: serde_json::Value = serde_json::from_str(&good[0]).unwrap();
        value["responseObject"] = serde_json::json!({
            "kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"name": "huge", "namespace": "default"},
            "data": {"blob": "x".repeat(5 * 1024 * 1024)}
        });
        value.to_string()
    };
    let mut cases = vec![
        Case {
            bytes: good[1].as_bytes()[..good[1].len() / 2].to_vec(),
            dead_letter: Some("invalid_json"),
        },
        Case {
            bytes: b"{this is not json}".to_vec(),
            dead_letter: Some("invalid_json"),
        },
        Case {
            bytes: [
                b"{\"kind\":\"Event\",\"x\":\"".as_ref(),
                &[0xff, 0xfe],
                b"\"}",
            ]
            .concat(),
            dead_letter: Some("invalid_json"),
        },
        Case {
            bytes: br#"{"kind":0}"#.to_vec(),
            dead_letter: Some("not_an_event"),
        },
        Case {
            bytes: Vec::new(),
            dead_letter: None,
        },
        Case {
            bytes: b"   ".to_vec(),
            dead_letter: None,
        },
        Case {
            bytes: [good[2].as_bytes(), b"\r"].concat(),
            dead_letter: None,
        },
        Case {
            bytes: big.clone().into_bytes(),
            dead_letter: None,
        },
        Case {
            bytes: vec![b'y'; 9 * 1024 * 1024],
            dead_letter: Some("too_long"),
        },
    ];
    for line in &good[3..] {
        cases.push(Case {
            bytes: line.clone().into_bytes(),
            dead_letter: None,
        });
    }
    let mut file = std::fs::File::create(live).unwrap();
    let mut offsets = Vec::new();
    let mut offset = 0u64;
    for case in &cases {
        offsets.push(offset);
        file.write_all(&case.bytes).unwrap();
        file.write_all(b"\n").unwrap();
        offset += case.bytes.len() as u64 + 1;
    }
    file.sync_all().unwrap();
    drop(file);
    (cases, offsets)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_lines_are_dead_lettered_and_good_ones_all_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("kube-audit.log");
    let data = dir.path().join("data");
    let (cases, offsets) = write_malformed_corpus(&live);
    let server = up_with(
        &data,
        &live,
        &[("AUDITRAIL_INGESTOR__MAX_LINE_BYTES", "8388608")],
    );
    // Good events: the 37 plain ones, the CRLF one and the 5 MiB one.
    let expected: BTreeSet<EventId> = cases
        .iter()
        .filter(|c| c.dead_letter.is_none() && !c.bytes.iter().all(u8::is_ascii_whitespace))
        .map(|c| {
            let body = c.bytes.strip_suffix(b"\r").unwrap_or(&c.bytes);
            EventId::compute(CLUSTER, body)
        })
        .collect();
    wait_for_count(&server, expected.len() as u64).await;
    let bad = cases.iter().filter(|c| c.dead_letter.is_some()).count() as u64;

    let client = IngestorServiceClient::connect(server.url()).await.unwrap();
    let letters = eventually("the dead letters", || {
        let mut client = client.clone();
        async move {
            let page = client
                .list_dead_letters(v1::ListDeadLettersRequest::default())
                .await
                .ok()?
                .into_inner();
            (page.dead_letters.len() as u64 >= bad).then_some(page.dead_letters)
        }
    })
    .await
    .unwrap();
    let got: Vec<(u64, String)> = letters
        .iter()
        .map(|d| {
            (
                d.offset,
                d.reason.split(':').next().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let want: Vec<(u64, String)> = cases
        .iter()
        .zip(&offsets)
        .filter_map(|(c, &o)| c.dead_letter.map(|code| (o, code.to_owned())))
        .collect();
    let mut got_sorted = got.clone();
    got_sorted.sort();
    assert_eq!(got_sorted, want);
    assert!(letters.iter().all(|d| d.file.ends_with("kube-audit.log")));
    let too_long = letters
        .iter()
        .find(|d| d.reason.starts_with("too_long"))
        .unwrap();
    assert_eq!(too_long.length, 9 * 1024 * 1024);
    // The status board counts them once their batch's acknowledgement is
    // applied, which may trail the file by a moment.
    let counted = eventually("the dead-letter count in the status", || {
        let mut client = client.clone();
        async move {
            let status = client
                .get_status(v1::GetStatusRequest::default())
                .await
                .ok()?
                .into_inner();
            let count = status.dead_letters?.count;
            (count >= bad).then_some(count)
        }
    })
    .await
    .unwrap();
    assert_eq!(counted, bad);
    drop(client);

    assert!(server.terminate().unwrap().success());
    let stored = stored_ids(&data.join("store")).await;
    assert_exactly_once(&stored, &expected);
    let dead_letter_file: PathBuf = data.join("ingestor/dead-letters.ndjson");
    assert!(dead_letter_file.is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_past_the_retention_are_counted_not_stored_nor_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("kube-audit.log");
    let data = dir.path().join("data");
    // 37 real events of 2017, then recent ones.
    let old = real_lines("more/liggitt__audit2rbac__demo.ndjson");
    assert_eq!(old.len(), 37);
    let recent = recent_events(21, 30);
    append(&live, &old);
    append(&live, &recent);
    let file_len = std::fs::metadata(&live).unwrap().len();

    let server = up_default_retention(&data, &["--log-path", live.to_str().unwrap()]);
    wait_for_count(&server, recent.len() as u64).await;
    let client = IngestorServiceClient::connect(server.url()).await.unwrap();
    let status = eventually("37 expired events and the checkpoint at the end", || {
        let client = client.clone();
        async move {
            let status = get_status(&client).await?;
            let at_end = status.checkpoints.iter().any(|c| {
                matches!(&c.position, Some(v1::checkpoint::Position::File(f)) if f.offset == file_len)
            });
            (at_end && status.sources[0].events_expired == 37).then_some(status)
        }
    })
    .await
    .unwrap();
    // Handled, not malformed: no dead letter; acknowledged like the others.
    assert_eq!(status.dead_letters.as_ref().unwrap().count, 0, "{status:?}");
    assert_eq!(status.sources[0].events_acknowledged, 67);
    let source = live.to_str().unwrap();
    let metrics = scrape(server.metrics_addr().unwrap()).unwrap();
    let key = format!("ingestor_events_expired_total{{source=\"{source}\"}}");
    assert_eq!(metrics.get(&key), Some(&37.0), "{metrics:?}");
    assert!(
        ingest_status_text(&server).contains("37 older than the retention (not stored)"),
        "{}",
        ingest_status_text(&server)
    );
    // A search of their time finds none, and says why.
    let (status, out, err) = run_to_end(
        Command::new(binary("auditrail").unwrap())
            .args(["search", "--to", "2018-01-01T00:00:00Z", "--server"])
            .arg(server.url()),
    )
    .unwrap();
    assert!(status.success(), "{err}");
    assert!(!out.contains("2017-"), "{out}");
    assert!(
        err.contains(
            "hint: the ingestor of this server left out 37 events it read because they are \
             older than the retention"
        ),
        "{err}"
    );
    // Logged once (not per event, not per batch), with the retention and
    // the flag that keeps them.
    let warnings = eventually("the retention warning", || {
        let warnings: Vec<String> = log_messages(&server, "WARN")
            .into_iter()
            .filter(|m| m.contains("older than the retention"))
            .collect();
        async move { (!warnings.is_empty()).then_some(warnings) }
    })
    .await
    .unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains(&format!("events read from {source} so far are older than the retention of 91 days and were not stored"))
            && warnings[0].contains("--retention-days 0 on the indexer (indexer.retention_days) keeps everything"),
        "{}",
        warnings[0]
    );
    drop(client);
    assert!(server.terminate().unwrap().success());

    // After a restart the expired events are not read again: the
    // checkpoint went past them.
    let more = recent_events(22, 5);
    append(&live, &more);
    let server = up_default_retention(&data, &["--log-path", live.to_str().unwrap()]);
    wait_for_count(&server, 35).await;
    let client = IngestorServiceClient::connect(server.url()).await.unwrap();
    let status = eventually("the new events acknowledged", || {
        let client = client.clone();
        async move {
            let status = get_status(&client).await?;
            (status.sources[0].events_acknowledged == 5).then_some(status)
        }
    })
    .await
    .unwrap();
    assert_eq!(status.sources[0].events_expired, 0, "{status:?}");
    drop(client);
    assert!(server.terminate().unwrap().success());
    let stored = stored_ids(&data.join("store")).await;
    let kept: Vec<String> = recent.into_iter().chain(more).collect();
    assert_exactly_once(&stored, &expected_ids(CLUSTER, &kept));
}

/// Event counts per type (kube, ee) that files typed by `fallback` should
/// give, from the same classification the indexer uses.
fn counts_by_type(files: &[(&[String], auditrail_event::EventType)]) -> (u64, u64) {
    let now = jiff::Timestamp::now();
    let mut counts = (0, 0);
    for (lines, fallback) in files {
        for line in *lines {
            let event =
                auditrail_store::IndexedEvent::from_raw(CLUSTER, line.as_bytes(), *fallback, now)
                    .unwrap();
            match event.event_type {
                auditrail_event::EventType::Kube => counts.0 += 1,
                auditrail_event::EventType::Ee => counts.1 += 1,
                auditrail_event::EventType::Access => panic!("a log line classified as access"),
            }
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_glob_of_mixed_files_needs_no_type() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let data = dir.path().join("data");
    // Real events, many without objectRef (non-resource URLs), plus
    // generated ones (Calico resources among them).
    let mut plain = real_lines("more/liggitt__audit2rbac__demo.ndjson");
    plain.extend(Generator::new(GenConfig::default()).take(200));
    let calico_named = real_lines("more/sysdiglabs__aks-audit-log__event.ndjson");
    append(&logs.join("a.json"), &plain);
    append(&logs.join("tsee-audit.json"), &calico_named);
    append(&logs.join("not-matched.log"), &recent_events(3, 5));
    let (kube, ee) = counts_by_type(&[
        (&plain, auditrail_event::EventType::Kube),
        (&calico_named, auditrail_event::EventType::Ee),
    ]);
    let (all_kube, _) = counts_by_type(&[
        (&plain, auditrail_event::EventType::Kube),
        (&calico_named, auditrail_event::EventType::Kube),
    ]);
    assert!(
        all_kube > kube,
        "tsee-audit.json has events without objectRef"
    );
    assert!(ee > 0 && kube > 37);

    let glob = logs.join("*.json");
    let server = common::up(
        &data,
        CLUSTER,
        &["--log-path", glob.to_str().unwrap()],
        &[("AUDITRAIL_INGESTOR__BATCH__MAX_WAIT_MS", "50")],
    );
    let total = (plain.len() + calico_named.len()) as u64;
    wait_for_count(&server, total).await;
    let mut client =
        auditrail_proto::v1::ingest_service_client::IngestServiceClient::connect(server.url())
            .await
            .unwrap();
    let index_stats = client
        .get_index_stats(v1::GetIndexStatsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .stats;
    let count = |t: v1::EventType| {
        index_stats
            .iter()
            .filter(|s| s.r#type == t as i32)
            .map(|s| s.event_count)
            .sum::<u64>()
    };
    assert_eq!(
        (count(v1::EventType::Kube), count(v1::EventType::Ee)),
        (kube, ee),
        "{index_stats:?}"
    );
    let status = IngestorServiceClient::connect(server.url())
        .await
        .unwrap()
        .get_status(v1::GetStatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.sources[0].type_hint,
        v1::EventType::Unspecified as i32,
        "decided per file: {status:?}"
    );
    drop(client);
    assert!(server.terminate().unwrap().success());
    let stored = stored_ids(&data.join("store")).await;
    let both: Vec<String> = plain.into_iter().chain(calico_named).collect();
    assert_exactly_once(&stored, &expected_ids(CLUSTER, &both));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_file_or_empty_glob_is_waited_for_and_read_when_it_appears() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let live = logs.join("kube-audit.log");
    let glob = dir.path().join("exports").join("*.json");
    let data = dir.path().join("data");
    let (live_name, glob_name) = (live.to_str().unwrap(), glob.to_str().unwrap());
    let server = common::up(
        &data,
        CLUSTER,
        &["--log-path", live_name, "--log-path", glob_name],
        &[("AUDITRAIL_INGESTOR__BATCH__MAX_WAIT_MS", "50")],
    );
    let client = IngestorServiceClient::connect(server.url()).await.unwrap();
    let source_states = |status: &v1::GetStatusResponse| -> Vec<i32> {
        status.sources.iter().map(|s| s.state).collect()
    };
    let status = get_status(&client).await.unwrap();
    let waiting = v1::SourceState::Waiting as i32;
    assert_eq!(source_states(&status), vec![waiting, waiting], "{status:?}");
    let warnings = eventually("the waiting warnings", || {
        let warnings: Vec<String> = log_messages(&server, "WARN")
            .into_iter()
            .filter(|m| m.starts_with("no file matches"))
            .collect();
        async move { (warnings.len() == 2).then_some(warnings) }
    })
    .await
    .unwrap();
    for (warning, path) in warnings.iter().zip([live_name, glob_name]) {
        assert_eq!(
            warning,
            &format!(
                "no file matches {path}: waiting for it to appear (it is read from its start \
                 when it does; ingest-status shows the source as WAITING)"
            )
        );
    }
    let text = ingest_status_text(&server);
    assert!(
        text.contains(&format!(
            "source {live_name}: WAITING (no file matches {live_name} yet: waiting for it to appear)"
        )),
        "{text}"
    );

    // The file appears (its directory too): read from its start.
    std::fs::create_dir_all(&logs).unwrap();
    let lines: Vec<String> = Generator::new(GenConfig::default()).take(10).collect();
    append(&live, &lines);
    wait_for_count(&server, 10).await;
    let status = eventually("the source no longer waiting", || {
        let client = client.clone();
        async move {
            let status = get_status(&client).await?;
            (status.sources[0].state == v1::SourceState::Idle as i32).then_some(status)
        }
    })
    .await
    .unwrap();
    assert_eq!(status.sources[1].state, waiting, "{status:?}");
    let appeared = format!("a file matching {live_name} appeared: reading it");
    eventually("the log of the file appearing", || {
        let logged = log_messages(&server, "INFO").contains(&appeared);
        async move { logged.then_some(()) }
    })
    .await
    .unwrap();
    drop(client);
    assert!(server.terminate().unwrap().success());
    let stored = stored_ids(&data.join("store")).await;
    assert_exactly_once(&stored, &expected_ids(CLUSTER, &lines));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_last_line_without_newline_is_named_in_the_status_and_read_once_completed() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("kube-audit.log");
    let data = dir.path().join("data");
    let lines = real_lines("more/openshift__cluster-logging-operator__audit_in.ndjson");
    let (complete, last) = (&lines[..3], &lines[3]);
    append(&live, complete);
    let offset = std::fs::metadata(&live).unwrap().len();
    {
        // The last event written without its newline.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&live)
            .unwrap();
        file.write_all(last.as_bytes()).unwrap();
        file.sync_all().unwrap();
    }
    let bytes = last.len() as u64;
    let server = up(&data, &live);
    wait_for_count(&server, 3).await;
    let client = IngestorServiceClient::connect(server.url()).await.unwrap();
    let status = eventually("the unterminated line in the status", || {
        let client = client.clone();
        async move {
            let status = get_status(&client).await?;
            let Some(v1::source_status::Location::File(file)) = &status.sources[0].location else {
                return None;
            };
            (!file.unterminated_lines.is_empty()).then_some(status)
        }
    })
    .await
    .unwrap();
    let source = &status.sources[0];
    let Some(v1::source_status::Location::File(file)) = &source.location else {
        panic!("{status:?}");
    };
    assert_eq!(
        file.unterminated_lines,
        vec![v1::UnterminatedLine {
            path: live.display().to_string(),
            offset,
            bytes,
            rotated: false,
        }]
    );
    assert_eq!(file.bytes_pending, bytes);
    assert_eq!(
        source.state,
        v1::SourceState::Idle as i32,
        "caught up: only the unterminated line is left"
    );
    let text = ingest_status_text(&server);
    assert!(
        text.contains(&format!(
            "  {}: last line has no newline yet, {bytes} bytes at byte {offset}; read when its \
             newline is written (echo >> FILE adds one)",
            live.display()
        )),
        "{text}"
    );

    // Completed: read, stored, and no longer shown.
    append(&live, &[String::new()]);
    wait_for_count(&server, 4).await;
    eventually("no unterminated line left", || {
        let client = client.clone();
        async move {
            let status = get_status(&client).await?;
            let Some(v1::source_status::Location::File(file)) = &status.sources[0].location else {
                return None;
            };
            file.unterminated_lines.is_empty().then_some(())
        }
    })
    .await
    .unwrap();
    drop(client);
    assert!(server.terminate().unwrap().success());
    let stored = stored_ids(&data.join("store")).await;
    assert_exactly_once(&stored, &expected_ids(CLUSTER, &lines[..4]));
}

/// The server's WARN log lines about single dead letters, and the messages
/// of those summarising them.
fn dead_letter_warnings(server: &Server) -> (Vec<serde_json::Value>, Vec<String>) {
    let logs: Vec<serde_json::Value> = server
        .logs()
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|l: &serde_json::Value| l["level"] == "WARN")
        .collect();
    let one_by_one = logs
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("event dead-lettered"))
        })
        .cloned()
        .collect();
    let summaries = logs
        .iter()
        .filter_map(|l| l["message"].as_str())
        .filter(|m| m.contains("were dead-lettered"))
        .map(str::to_owned)
        .collect();
    (one_by_one, summaries)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pretty_printed_file_is_dead_lettered_saying_how_to_convert_it_and_logged_in_summary() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("kube-audit.log");
    let data = dir.path().join("data");
    let live_name = live.display().to_string();
    // A real event as `kubectl … -o json` or `jq .` print it: over many
    // lines, between two one-line events.
    let real: serde_json::Value = serde_json::from_str(
        &real_lines("more/crowdsecurity__hub__k8s-audit-priv-pod-file.ndjson")[0],
    )
    .unwrap();
    let pretty = serde_json::to_string_pretty(&real).unwrap();
    let fragments: Vec<String> = pretty.lines().map(str::to_owned).collect();
    let good: Vec<String> = Generator::new(GenConfig::default()).take(2).collect();
    append(&live, &good[..1]);
    append(&live, &fragments);
    append(&live, &good[1..]);
    let n = fragments.len() as u64;
    assert!(n > 50, "{n}");

    let server = up(&data, &live);
    wait_for_count(&server, 2).await;
    let client = IngestorServiceClient::connect(server.url()).await.unwrap();
    let letters = eventually("a dead letter per fragment line", || {
        let mut client = client.clone();
        async move {
            let page = client
                .list_dead_letters(v1::ListDeadLettersRequest {
                    page_size: 1000,
                    ..Default::default()
                })
                .await
                .ok()?
                .into_inner();
            (page.dead_letters.len() as u64 == n).then_some(page.dead_letters)
        }
    })
    .await
    .unwrap();
    // Every line is kept; the first says what is wrong and how to convert.
    let first = letters.iter().min_by_key(|d| d.offset).unwrap();
    assert_eq!(first.excerpt, b"{");
    let hint = format!(
        "audit logs hold one JSON event per line, and this line is part of a multi-line \
         (pretty-printed) JSON document or of a list: convert the file first, with \
         `jq -c . {live_name} > {live_name}.ndjson` (one event per object)"
    );
    assert!(
        first.reason.starts_with("invalid_json: ") && first.reason.contains(&hint),
        "{}",
        first.reason
    );
    assert_eq!(
        letters
            .iter()
            .filter(|d| d.reason.contains("jq -c"))
            .count(),
        1,
        "the hint is given once per file"
    );

    // The log: the first dead letter of each reason with its reason, then
    // one summary line with the count of the others, not a line each.
    let (one_by_one, summaries) = eventually("the dead-letter summary", || {
        let (one_by_one, summaries) = dead_letter_warnings(&server);
        async move { (!summaries.is_empty()).then_some((one_by_one, summaries)) }
    })
    .await
    .unwrap();
    assert!(
        !one_by_one.is_empty() && one_by_one.len() <= 2,
        "{one_by_one:?}"
    );
    assert!(
        one_by_one[0]["reason"].as_str().unwrap().contains(&hint),
        "{one_by_one:?}"
    );
    let rest = n - one_by_one.len() as u64;
    assert_eq!(summaries.len(), 1, "{summaries:?}");
    assert!(
        summaries[0].starts_with(&format!(
            "{rest} more lines of {live_name} were dead-lettered (invalid_json: "
        )) && summaries[0].ends_with(&format!(
            "summarised here rather than logged one by one; every one is in {}",
            data.join("ingestor/dead-letters.ndjson").display()
        )),
        "{}",
        summaries[0]
    );
    drop(client);
    assert!(server.terminate().unwrap().success());
    let stored = stored_ids(&data.join("store")).await;
    assert_exactly_once(&stored, &expected_ids(CLUSTER, &good));
}
