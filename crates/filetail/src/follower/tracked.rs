//! What the follower knows of each file it follows ([`Tracked`]: its
//! descriptor, identity, read position, where it is listed and what is done
//! with it) and of content that may reappear in a copy ([`Candidate`]).
//! The state every step of a poll reads and updates, in one place.

use std::fs::File;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tracing::warn;

use crate::identity::{FileIdentity, FileKey};
use crate::read::Cursor;
use crate::scan::Group;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Location {
    Live,
    Backup,
    Gone { scans: u32, deleted: bool },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    Pending { skip_existing: bool },
    Shadow { of: FileKey },
    Reading,
}

/// Why a file started where it did: what [`Follower::reconcile_checkpoints`]
/// may record for it before any of its lines is acknowledged.
#[derive(Clone, Debug)]
pub(super) enum Origin {
    /// From 0 or from its own checkpoint: nothing to record.
    Plain,
    /// StartPosition::End skipped its content up to `offset`.
    Skipped { offset: u64 },
    /// A copy of `source`, started where `source` had been read.
    Copy {
        source: FileKey,
        fingerprints: Vec<String>,
        /// Which content of the source inode it copies (see
        /// [`Tracked::generation`]).
        generation: u64,
        offset: u64,
        acknowledged: bool,
    },
}

/// A file whose content may reappear in a copy: a checkpoint not yet matched
/// to its file, or a file that was truncated.
#[derive(Clone, Debug)]
pub(super) struct Candidate {
    pub(super) key: FileKey,
    pub(super) identity: FileIdentity,
    pub(super) fingerprints: Vec<String>,
    pub(super) generation: u64,
    pub(super) offset: u64,
    /// `offset` comes from a checkpoint (acknowledged), not from reading.
    pub(super) acknowledged: bool,
    /// Its inode has been matched (to a file that no longer has its content).
    pub(super) key_claimed: bool,
    pub(super) path: PathBuf,
}

#[derive(Debug)]
pub(super) struct Tracked {
    pub(super) file: File,
    pub(super) key: FileKey,
    pub(super) path: PathBuf,
    pub(super) watch: usize,
    pub(super) group: Group,
    pub(super) location: Location,
    pub(super) identity: FileIdentity,
    /// Every fingerprint this content had as it grew (to recognise its
    /// checkpoints).
    pub(super) fingerprints: Vec<String>,
    /// How many times this inode's content was replaced (truncated) while
    /// followed: orders its successive contents.
    pub(super) generation: u64,
    pub(super) size: u64,
    pub(super) mtime: (i64, i64),
    pub(super) last_change: Instant,
    pub(super) discovered_at: Instant,
    /// When it stopped being live (`None` while live).
    pub(super) rotated_at: Option<Instant>,
    pub(super) cursor: Cursor,
    pub(super) phase: Phase,
    pub(super) origin: Origin,
    /// A copy started beyond its current size (still being copied, or
    /// shorter than what was read of the original): nothing to read yet.
    pub(super) awaiting_copy: bool,
    pub(super) seq: u64,
    pub(super) last_error: Option<String>,
    /// See [`FileStatus::unterminated`].
    pub(super) unterminated: u64,
}

impl Tracked {
    pub(super) fn idle(&self, now: Instant, grace: Duration) -> bool {
        now.saturating_duration_since(self.last_change) >= grace
    }

    /// Whether a trailing partial line may be returned: the file has been
    /// neither live nor changed for the grace period.
    pub(super) fn finished(&self, now: Instant, grace: Duration) -> bool {
        self.location != Location::Live
            && self
                .rotated_at
                .is_some_and(|at| now.saturating_duration_since(at) >= grace)
            && self.idle(now, grace)
    }

    pub(super) fn fully_read(&self) -> bool {
        match self.phase {
            Phase::Reading => {
                self.awaiting_copy
                    || (self.cursor.offset >= self.size && self.cursor.skip_to.is_none())
            }
            Phase::Shadow { .. } => true,
            Phase::Pending { .. } => false,
        }
    }

    pub(super) fn set_error(&mut self, what: &str, error: &std::io::Error) {
        let message = format!("{what}: {error}");
        if self.last_error.as_deref() != Some(message.as_str()) {
            warn!(path = %self.path.display(), error = %error, "{what}");
        }
        self.last_error = Some(message);
    }

    pub(super) fn mark_rotation(&mut self, now: Instant) {
        if self.location == Location::Live {
            self.rotated_at = None;
        } else if self.rotated_at.is_none() {
            self.rotated_at = Some(now);
        }
    }

    pub(super) fn rank(&self) -> u8 {
        match self.location {
            Location::Gone { .. } => 0,
            Location::Backup => 1,
            Location::Live => 2,
        }
    }
}
