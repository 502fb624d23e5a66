//! A full disk under the indexer: the store's directory is a small tmpfs,
//! filled up by another file while batches are sent. A batch the store
//! cannot commit is answered `UNAVAILABLE` (as ingest.proto documents: the
//! sender retries, nothing of it was stored); once space is freed the
//! retried batches are stored, and the trail is exact: every event once,
//! also after a restart.
//!
//! A size-limited directory needs a tmpfs mount, so root and a kernel that
//! lets this process mount. Where the machine does not allow it the test is
//! reported as ignored with the reason (as the Elasticsearch suite does
//! without Elasticsearch), never passed without running.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use auditrail_integration_tests::{Server, binary, channel};
use auditrail_loggen::{GenConfig, Generator};
use auditrail_proto::v1;
use auditrail_proto::v1::ingest_service_client::IngestServiceClient;
use libtest_mimic::{Arguments, Failed, Trial};
use tonic::Code;

const CLUSTER: &str = "full";
const BATCH: usize = 200;
const BATCHES: usize = 20;
/// The size of the store's disk.
const DISK: &str = "24m";

/// A tmpfs mounted for the test; unmounted on drop.
struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` on `path`, or says why it cannot.
    fn mount(path: &Path, size: &str) -> Result<Self, String> {
        std::fs::create_dir_all(path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "mounting a {size} tmpfs failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(Self {
            path: path.to_owned(),
        })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Busy (a server still running): detach it now, freed when idle.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// Fills the file system of `path` with one file, to the last block.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).unwrap();
    let mut written = 0u64;
    for chunk in [1 << 20, 4096, 512] {
        let block = vec![0x5a_u8; chunk];
        while file.write_all(&block).is_ok() {
            written += chunk as u64;
        }
    }
    // The part of a block that made write_all fail may remain buffered
    // nowhere: the file is what fit.
    let _ = file.sync_all();
    written
}

fn batches() -> Vec<v1::IngestBatchRequest> {
    let lines: Vec<String> = Generator::new(GenConfig {
        seed: 28,
        ..GenConfig::default()
    })
    .take(BATCH * BATCHES)
    .collect();
    lines
        .chunks(BATCH)
        .enumerate()
        .map(|(n, chunk)| v1::IngestBatchRequest {
            batch_id: format!("batch-{n}"),
            cluster: CLUSTER.into(),
            source: "disk-full-test".into(),
            events: chunk
                .iter()
                .map(|line| v1::RawEvent {
                    raw: line.clone().into_bytes().into(),
                    ..v1::RawEvent::default()
                })
                .collect(),
        })
        .collect()
}

/// The indexer alone, keeping its data under `data_dir` (the store in
/// `data_dir/store`).
fn start_indexer(data_dir: &Path) -> Server {
    let mut command = Command::new(binary("auditrail").unwrap());
    command
        .args(["run", "--service", "indexer"])
        .args([
            "--listen",
            "127.0.0.1:0",
            "--no-metrics",
            "--log-format",
            "json",
        ])
        .args(["--retention-days", "0"])
        .arg("--data-dir")
        .arg(data_dir);
    Server::spawn(command, &[]).unwrap()
}

async fn client(server: &Server) -> IngestServiceClient<tonic::transport::Channel> {
    IngestServiceClient::new(channel(server).await.unwrap()).max_encoding_message_size(64 << 20)
}

/// Sends `batch` until it is acknowledged, as the ingestor does (a hang
/// guard of a minute, not a timing check); its answer.
async fn send_until_stored(
    client: &mut IngestServiceClient<tonic::transport::Channel>,
    batch: &v1::IngestBatchRequest,
) -> v1::IngestBatchResponse {
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        match client.ingest_batch(batch.clone()).await {
            Ok(answer) => return answer.into_inner(),
            Err(status) => {
                assert_eq!(
                    status.code(),
                    Code::Unavailable,
                    "a retried batch failed otherwise: {status:?}"
                );
                assert!(
                    Instant::now() < deadline,
                    "{} never stored after space was freed: {status:?}",
                    batch.batch_id
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn stored_events(client: &mut IngestServiceClient<tonic::transport::Channel>) -> u64 {
    client
        .get_index_stats(v1::GetIndexStatsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .stats
        .iter()
        .map(|s| s.event_count)
        .sum()
}

async fn full_disk_then_freed(disk: &Path) {
    let batches = batches();
    let total = (BATCH * BATCHES) as u64;
    let indexer = start_indexer(disk);
    let mut ingest = client(&indexer).await;
    let mut accepted = 0u64;
    for batch in &batches[..5] {
        let answer = ingest
            .ingest_batch(batch.clone())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.accepted as usize, BATCH);
        accepted += u64::from(answer.accepted);
    }

    let filler = disk.join("filler");
    assert!(fill(&filler) > 0, "the disk had room to fill");
    // Sent while the disk is full: refused as UNAVAILABLE, not INTERNAL.
    let mut refused = Vec::new();
    for (n, batch) in batches.iter().enumerate().skip(5) {
        match ingest.ingest_batch(batch.clone()).await {
            Ok(answer) => accepted += u64::from(answer.into_inner().accepted),
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                assert!(
                    status.message().contains("disk is full"),
                    "{}",
                    status.message()
                );
                refused.push(n);
            }
        }
    }
    assert!(!refused.is_empty(), "no batch failed on the full disk");
    assert!(
        indexer.logs().iter().all(|l| !l.contains("panicked")),
        "the indexer panicked"
    );

    // Space freed: the refused batches are stored when sent again.
    std::fs::remove_file(&filler).unwrap();
    for &n in &refused {
        let answer = send_until_stored(&mut ingest, &batches[n]).await;
        accepted += u64::from(answer.accepted);
    }
    assert_eq!(accepted, total, "every event accepted exactly once");
    assert_eq!(stored_events(&mut ingest).await, total);
    drop(ingest);
    assert!(indexer.terminate().unwrap().success());

    // After a restart, everything sent again is a duplicate.
    let indexer = start_indexer(disk);
    let mut ingest = client(&indexer).await;
    assert_eq!(stored_events(&mut ingest).await, total);
    for batch in &batches {
        let answer = ingest
            .ingest_batch(batch.clone())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (answer.accepted, answer.duplicates as usize),
            (0, BATCH),
            "{} was not stored exactly once",
            batch.batch_id
        );
    }
    assert_eq!(stored_events(&mut ingest).await, total);
    drop(ingest);
    assert!(indexer.terminate().unwrap().success());
}

fn main() {
    let args = Arguments::from_args();
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(&dir.path().join("disk"), DISK);
    if let Err(why) = &disk {
        eprintln!("disk-full test skipped: {why}");
    }
    let skipped = disk.is_err();
    let path = disk.as_ref().map(|d| d.path.clone()).ok();
    let trial = Trial::test(
        "a_full_disk_is_unavailable_and_the_trail_exact_once_freed",
        move || {
            let path = path.ok_or_else(|| Failed::from("no size-limited directory"))?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| Failed::from(format!("cannot start a runtime: {e}")))?;
            runtime.block_on(full_disk_then_freed(&path));
            Ok(())
        },
    )
    .with_ignored_flag(skipped);
    let conclusion = libtest_mimic::run(&args, vec![trial]);
    drop(disk);
    drop(dir);
    conclusion.exit();
}
