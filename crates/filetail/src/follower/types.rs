//! The follower's public vocabulary: the options it is made with, the
//! records it returns, the status of each file, and its error. Kept apart
//! from the logic so that what a caller sees is in one short file.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoint;
use crate::identity::FileIdentity;

/// The longest line returned whole by default (16 MiB).
pub const DEFAULT_MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// How long a rotated file with a trailing partial line must be idle before
/// the partial line is returned (default).
pub const DEFAULT_PARTIAL_LINE_GRACE: Duration = Duration::from_secs(5);

/// A new file is recognised as a copy of another only if at least this many
/// leading bytes are compared: audit lines share their first ~100 bytes
/// (`{"kind":"Event","apiVersion":…`), so a shorter comparison could take a
/// new file for a copy and skip its lines. A missed copy is only read twice.
pub const MIN_COPY_MATCH_LEN: u64 = 256;

/// Where to start a watch that has no checkpoint at all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartPosition {
    /// Existing backups oldest first, then the live file from its start.
    #[default]
    Beginning,
    /// The live file from its current end (after its last complete line);
    /// existing backups are skipped.
    End,
}

/// How the follower reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowOptions {
    /// Where to start a watch that has no checkpoint at all.
    pub start: StartPosition,
    /// Lines longer than this (without the `\n`) are returned as
    /// [`RecordKind::TooLong`] instead of their bytes.
    pub max_line_bytes: usize,
    /// How long a file that is no longer live must be idle before a trailing
    /// line without `\n` is returned anyway.
    pub partial_line_grace: Duration,
}

impl Default for FollowOptions {
    fn default() -> Self {
        Self {
            start: StartPosition::Beginning,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            partial_line_grace: DEFAULT_PARTIAL_LINE_GRACE,
        }
    }
}

/// One line of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The file it was read from.
    pub identity: FileIdentity,
    /// The path the file had when it was read.
    pub path: PathBuf,
    /// Offset of the line's first byte.
    pub offset: u64,
    /// Offset just after its `\n` (the checkpoint after this record).
    pub end: u64,
    /// The line, or why it is not here.
    pub kind: RecordKind,
}

impl Record {
    /// The checkpoint just after this record.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint::after(self)
    }
}

/// What a record holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// The line's bytes without the `\n` (a `\r` before it is kept). Also a
    /// rotated file's final partial line once the file has been idle for the
    /// grace period.
    Line(Vec<u8>),
    /// A line longer than the limit, skipped without buffering it: its
    /// length in bytes, without the `\n`.
    TooLong {
        /// Length of the line without its terminator.
        len: u64,
    },
}

/// Errors of the follower.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// A watch's pattern is not a valid glob.
    #[error("invalid watch pattern {pattern:?}: {source}")]
    InvalidPattern {
        /// The pattern.
        pattern: String,
        /// Why it is invalid.
        source: glob::PatternError,
    },
}

/// Where a followed file is now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileLocation {
    /// It is (one of) the watch's live file(s).
    Live,
    /// It has a backup's name.
    Rotated,
    /// It is no longer listed (deleted or moved away); it is still read to
    /// its end through the open descriptor, then forgotten.
    Gone,
}

/// What the follower does with a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileState {
    /// Its lines are read.
    Reading,
    /// A new backup too short to tell yet whether it is a copy of another
    /// file (e.g. a copy in progress); it is not read until it is.
    Pending,
    /// A copy of another followed file that is still readable; it takes over
    /// from where that file was read when that file is truncated or gone.
    CopyOf(PathBuf),
}

/// The status of one followed file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileStatus {
    /// Its current (or last) path.
    pub path: PathBuf,
    /// Its identity.
    pub identity: FileIdentity,
    /// Where the next line starts.
    pub offset: u64,
    /// Its size at the last poll.
    pub size: u64,
    /// Where it is.
    pub location: FileLocation,
    /// What is done with it.
    pub state: FileState,
    /// The last I/O error on it, if the last attempt failed.
    pub last_error: Option<String>,
    /// Bytes at its end after its last complete line: a line still waiting
    /// for its `\n` (a writer mid-line, or a last line written without
    /// one), as found by the last read that reached the end of the file; 0
    /// when there is none or it is not known yet. The line is returned once
    /// its `\n` is written or, once the file is no longer live and has not
    /// changed for [`FollowOptions::partial_line_grace`], as it is.
    pub unterminated: u64,
}

impl FileStatus {
    /// Whether the file is a live file of its watch.
    pub fn is_live(&self) -> bool {
        self.location == FileLocation::Live
    }
}
