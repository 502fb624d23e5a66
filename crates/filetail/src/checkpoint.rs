//! Checkpoints: how far each file has been acknowledged, persisted atomically.
//!
//! The ingestor may only move a checkpoint past a line once the indexer has
//! acknowledged it, so checkpoints are owned by the caller, not by the
//! [`Follower`](crate::Follower): the caller feeds acknowledged records to
//! [`Checkpoints::advance`], lets
//! [`Follower::reconcile_checkpoints`](crate::Follower::reconcile_checkpoints)
//! add start points the follower chose itself and drop files that are gone,
//! and saves the result with a [`CheckpointStore`].
//!
//! Entries are keyed by inode (`dev`, `ino`): a file keeps its entry through
//! renames, its fingerprint is extended as it grows, and new content on the
//! same inode (after a truncation, or inode reuse) replaces the entry. That is
//! why acknowledged records must be fed in the order the follower returned
//! them.
//!
//! The file is JSON, written to a temporary file in the same directory,
//! fsynced, renamed over the old one and the directory fsynced: after a crash
//! it holds either the old or the new checkpoints, never a mix. A missing
//! file means "no checkpoints"; an unreadable or corrupt one is an error,
//! never silently empty (that would re-read or skip whole files).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::follower::Record;
use crate::identity::{FileIdentity, FileKey};

/// The version of the checkpoint file format.
const FORMAT_VERSION: u32 = 1;

/// Where one file has been acknowledged up to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The file's identity at the time of the last acknowledged line.
    pub identity: FileIdentity,
    /// The last path the file was seen under.
    pub path: PathBuf,
    /// The byte offset just after the last acknowledged line.
    pub offset: u64,
}

impl Checkpoint {
    /// The checkpoint just after `record`.
    pub fn after(record: &Record) -> Self {
        Self {
            identity: record.identity.clone(),
            path: record.path.clone(),
            offset: record.end,
        }
    }
}

/// The checkpoints of all followed files, one per inode.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checkpoints {
    by_inode: BTreeMap<FileKey, Checkpoint>,
}

impl Checkpoints {
    /// No checkpoints.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of files with a checkpoint.
    pub fn len(&self) -> usize {
        self.by_inode.len()
    }

    /// Whether there are no checkpoints.
    pub fn is_empty(&self) -> bool {
        self.by_inode.is_empty()
    }

    /// All checkpoints, ordered by inode.
    pub fn iter(&self) -> impl Iterator<Item = &Checkpoint> {
        self.by_inode.values()
    }

    /// The checkpoint of the file on `dev`/`ino`, whatever its content.
    pub fn get(&self, dev: u64, ino: u64) -> Option<&Checkpoint> {
        self.by_inode.get(&FileKey { dev, ino })
    }

    pub(crate) fn get_key(&self, key: FileKey) -> Option<&Checkpoint> {
        self.by_inode.get(&key)
    }

    /// Inserts `checkpoint`, replacing the entry of the same inode; returns
    /// the replaced entry.
    pub fn insert(&mut self, checkpoint: Checkpoint) -> Option<Checkpoint> {
        self.by_inode.insert(checkpoint.identity.key(), checkpoint)
    }

    /// Records that `record` (and everything before it in its file) has been
    /// acknowledged. Call it in the order the records were returned.
    pub fn advance(&mut self, record: &Record) {
        self.advance_to(&record.identity, &record.path, record.end);
    }

    /// Records that the file `identity` has been acknowledged up to `end`
    /// under `path`. For the same identity the offset never moves back; a
    /// different identity on the same inode (grown fingerprint, truncation,
    /// inode reuse) replaces the entry.
    pub fn advance_to(&mut self, identity: &FileIdentity, path: &Path, end: u64) {
        let key = identity.key();
        if let Some(existing) = self.by_inode.get_mut(&key)
            && existing.identity == *identity
            && existing.offset >= end
        {
            if existing.path != path {
                existing.path = path.to_path_buf();
            }
            return;
        }
        self.by_inode.insert(
            key,
            Checkpoint {
                identity: identity.clone(),
                path: path.to_path_buf(),
                offset: end,
            },
        );
    }

    /// Keeps only the checkpoints for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&Checkpoint) -> bool) {
        self.by_inode.retain(|_, cp| keep(cp));
    }

    /// Keeps only the checkpoints of files on the inodes of `identities`
    /// (e.g. [`Follower::tracked_identities`](crate::Follower::tracked_identities)).
    pub fn retain_files(&mut self, identities: &[FileIdentity]) {
        self.by_inode
            .retain(|key, _| identities.iter().any(|id| id.key() == *key));
    }
}

impl FromIterator<Checkpoint> for Checkpoints {
    fn from_iter<T: IntoIterator<Item = Checkpoint>>(iter: T) -> Self {
        let mut cps = Self::new();
        for cp in iter {
            cps.insert(cp);
        }
        cps
    }
}

/// The content of the checkpoint file (beside its format version).
#[derive(Serialize, Deserialize)]
struct CheckpointFile {
    checkpoints: Vec<Checkpoint>,
}

/// A state file on disk: `{"version": N, ...content}`.
#[derive(Serialize, Deserialize)]
struct Versioned<T> {
    version: u32,
    #[serde(flatten)]
    content: T,
}

/// Errors reading or writing the checkpoint file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file could not be read, written, synced or renamed.
    #[error("checkpoint file {path}: {source}")]
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The file exists but is not a valid checkpoint file.
    #[error("checkpoint file {path} is corrupt: {source}")]
    Corrupt {
        /// The checkpoint file.
        path: PathBuf,
        /// What did not parse.
        source: serde_json::Error,
    },
    /// The file was written by a newer (or unknown) format version.
    #[error(
        "checkpoint file {path} has unsupported format version {version} (expected {expected})"
    )]
    UnsupportedVersion {
        /// The checkpoint file.
        path: PathBuf,
        /// The version it declares.
        version: u32,
        /// The version this build reads and writes.
        expected: u32,
    },
}

/// A checkpoint file on disk.
#[derive(Clone, Debug)]
pub struct CheckpointStore {
    path: PathBuf,
}

impl CheckpointStore {
    /// A store at `path` (the file need not exist yet; its directory must).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The checkpoint file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads the checkpoints: none if the file does not exist, an error if it
    /// cannot be read or parsed.
    pub fn load(&self) -> Result<Checkpoints, CheckpointError> {
        let file: Option<CheckpointFile> = load_versioned(&self.path, FORMAT_VERSION)?;
        Ok(file
            .map(|f| f.checkpoints.into_iter().collect())
            .unwrap_or_default())
    }

    /// Saves `checkpoints` atomically: temporary file in the same directory,
    /// fsync, rename over the old file, fsync of the directory.
    pub fn save(&self, checkpoints: &Checkpoints) -> Result<(), CheckpointError> {
        let file = CheckpointFile {
            checkpoints: checkpoints.iter().cloned().collect(),
        };
        save_versioned(&self.path, FORMAT_VERSION, &file)
    }
}

/// The versioned JSON state file at `path` (`{"version": N, ...}`), `None`
/// when it does not exist (a first start). A file that cannot be read, does
/// not parse, or declares another version than `version` is an error, never
/// "no state" (that would re-read or skip).
pub fn load_versioned<T: DeserializeOwned>(
    path: &Path,
    version: u32,
) -> Result<Option<T>, CheckpointError> {
    let Some(bytes) = read_if_exists(path)? else {
        return Ok(None);
    };
    let file: Versioned<T> =
        serde_json::from_slice(&bytes).map_err(|source| CheckpointError::Corrupt {
            path: path.to_path_buf(),
            source,
        })?;
    if file.version != version {
        return Err(CheckpointError::UnsupportedVersion {
            path: path.to_path_buf(),
            version: file.version,
            expected: version,
        });
    }
    Ok(Some(file.content))
}

/// Replaces the state file at `path` with `content` under `version`, as
/// pretty JSON, atomically (see `write_atomically`).
pub fn save_versioned<T: Serialize>(
    path: &Path,
    version: u32,
    content: &T,
) -> Result<(), CheckpointError> {
    let file = Versioned { version, content };
    let mut json = serde_json::to_vec_pretty(&file).map_err(|source| CheckpointError::Io {
        path: path.to_path_buf(),
        source: io::Error::other(source),
    })?;
    json.push(b'\n');
    write_atomically(path, &json)
}

/// The content of the state file at `path`, `None` when it does not exist
/// (a first start); any other failure is an error, never "no state".
fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>, CheckpointError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Replaces the file at `path` with `bytes` so that a crash leaves either the
/// old or the new content, never a mix: a temporary file in the same
/// directory, fsync, rename over `path`, fsync of the directory.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().map_or_else(
        || "checkpoints".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    let tmp = dir.join(format!(".{name}.tmp"));
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CheckpointError::Io { path, source }
    };
    let mut out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    out.write_all(bytes).map_err(io_err(&tmp))?;
    out.sync_all().map_err(io_err(&tmp))?;
    drop(out);
    fs::rename(&tmp, path).map_err(io_err(path))?;
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(&dir))?;
    Ok(())
}
