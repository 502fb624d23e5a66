//! Helpers shared by the integration tests: realistic audit lines, file
//! writes, and polling until nothing is left.

// Test helpers: a failed file operation should fail the test at once.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use auditrail_filetail::{
    CheckpointStore, Checkpoints, FollowOptions, Follower, Record, RecordKind, StartPosition, Watch,
};
use tempfile::TempDir;

/// A realistic audit line (about 330 bytes, unique from byte ~80 on, like
/// real events whose auditID comes early).
pub fn event(n: usize) -> String {
    format!(
        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"{n:08x}-1111-2222-3333-444444444444","stage":"ResponseComplete","requestURI":"/apis/projectcalico.org/v3/globalnetworkpolicies/policy-{n}","verb":"patch","user":{{"username":"admin"}},"sourceIPs":["10.0.0.1"],"objectRef":{{"resource":"globalnetworkpolicies","name":"policy-{n}"}}}}"#
    )
}

pub fn events(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(event).collect()
}

pub struct Env {
    pub dir: TempDir,
    pub live: PathBuf,
}

impl Env {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("kube-audit.log");
        Self { dir, live }
    }

    pub fn watch(&self) -> Vec<Watch> {
        vec![Watch::new(self.live.to_str().unwrap())]
    }

    /// Lumberjack's backup name for rotation number `i` (name order = `i` order).
    pub fn backup(&self, i: u32) -> PathBuf {
        self.dir
            .path()
            .join(format!("kube-audit-2024-05-01T10-00-{i:02}.000.log"))
    }

    pub fn follower(&self, checkpoints: &Checkpoints) -> Follower {
        Follower::new(self.watch(), checkpoints, FollowOptions::default()).unwrap()
    }

    pub fn follower_with(&self, checkpoints: &Checkpoints, options: FollowOptions) -> Follower {
        Follower::new(self.watch(), checkpoints, options).unwrap()
    }

    pub fn follower_from_end(&self) -> Follower {
        self.follower_with(
            &Checkpoints::new(),
            FollowOptions {
                start: StartPosition::End,
                ..FollowOptions::default()
            },
        )
    }

    pub fn checkpoint_path(&self) -> PathBuf {
        self.dir.path().join("state").join("checkpoints.json")
    }

    /// Lumberjack rotation: rename the live file to backup `i`, create a new
    /// live file.
    pub fn rotate_rename(&self, i: u32) {
        fs::rename(&self.live, self.backup(i)).unwrap();
        fs::File::create(&self.live).unwrap();
    }

    /// Copy-truncate rotation: copy the live file to backup `i`, truncate it.
    pub fn rotate_copy_truncate(&self, i: u32) {
        fs::copy(&self.live, self.backup(i)).unwrap();
        truncate(&self.live);
    }
}

pub fn append(path: &Path, lines: &[String]) {
    let mut bytes = Vec::new();
    for line in lines {
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
    }
    append_raw(path, &bytes);
}

pub fn append_raw(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
}

pub fn truncate(path: &Path) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(0)
        .unwrap();
}

/// Polls until a poll returns nothing.
pub fn drain(follower: &mut Follower) -> Vec<Record> {
    drain_with(follower, 1 << 20)
}

pub fn drain_with(follower: &mut Follower, max_bytes: usize) -> Vec<Record> {
    let mut all = Vec::new();
    for _ in 0..10_000 {
        let records = follower.poll(max_bytes).unwrap();
        if records.is_empty() {
            return all;
        }
        all.extend(records);
    }
    panic!("follower never ran dry");
}

/// The records' lines as strings (panics on `TooLong`).
pub fn texts(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| match &r.kind {
            RecordKind::Line(bytes) => String::from_utf8(bytes.clone()).unwrap(),
            RecordKind::TooLong { len } => panic!("unexpected TooLong({len}) at {}", r.offset),
        })
        .collect()
}

/// Checks that each record's offset/end describe its bytes in its file
/// (`end` = `offset` + line + `\n`).
pub fn assert_offsets_consistent(records: &[Record]) {
    for r in records {
        if let RecordKind::Line(bytes) = &r.kind {
            assert_eq!(r.end, r.offset + bytes.len() as u64 + 1, "record {r:?}");
        }
    }
}

pub fn ack(checkpoints: &mut Checkpoints, records: &[Record]) {
    for r in records {
        checkpoints.advance(r);
    }
}

/// Acknowledges `records`, reconciles and saves, like the ingestor does.
pub fn save(env: &Env, follower: &Follower, checkpoints: &mut Checkpoints, records: &[Record]) {
    ack(checkpoints, records);
    follower.reconcile_checkpoints(checkpoints);
    fs::create_dir_all(env.checkpoint_path().parent().unwrap()).unwrap();
    CheckpointStore::new(env.checkpoint_path())
        .save(checkpoints)
        .unwrap();
}

/// Loads what [`save`] saved.
pub fn load(env: &Env) -> Checkpoints {
    CheckpointStore::new(env.checkpoint_path()).load().unwrap()
}
