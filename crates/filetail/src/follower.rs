//! The follower: which file to read next, from where, and what a rotation did.
//!
//! Each [`Follower::poll`] runs the same steps, all cheap when nothing
//! changed (a directory listing, an `fstat` per followed file, and a read of
//! at most 1 KiB of a file that changed):
//!
//! 1. list the live files and backups of every watch;
//! 2. match them to followed files by inode: a renamed file keeps its read
//!    position and is read to its end under its new name; a followed file no
//!    longer listed is *gone* (deleted or moved away) but is still read to its
//!    end through the descriptor the follower keeps open;
//! 3. `fstat` each followed file: size below the read offset, or leading
//!    bytes that no longer match its fingerprint, means it was truncated
//!    (copy-truncate): it is read again from 0, and what had been read of it
//!    is remembered so that its copy is not read twice;
//! 4. forget gone files that are fully read;
//! 5. open new files and decide where each starts: its checkpoint (found by
//!    inode and fingerprint, whatever its name now), the offset reached in
//!    the file it is a copy of, or the beginning (or end, see
//!    [`StartPosition`]);
//! 6. read complete lines, group by group (a live file with its backups),
//!    backups in name order before the live file, until the byte budget is
//!    spent.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use crate::checkpoint::{Checkpoint, Checkpoints};
use crate::identity::{FINGERPRINT_LEN, FileIdentity, FileKey, read_prefix, to_u64};
use crate::read::{Budget, Cursor, ReadLimits, last_line_end, read_lines};
use crate::scan::{Group, Seen, Watch, WatchState, scan};

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

/// How many truncated files are remembered for matching their copies.
const TRUNCATED_MEMORY: usize = 32;

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Location {
    Live,
    Backup,
    Gone { scans: u32, deleted: bool },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Pending { skip_existing: bool },
    Shadow { of: FileKey },
    Reading,
}

/// Why a file started where it did: what [`Follower::reconcile_checkpoints`]
/// may record for it before any of its lines is acknowledged.
#[derive(Clone, Debug)]
enum Origin {
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
struct Candidate {
    key: FileKey,
    identity: FileIdentity,
    fingerprints: Vec<String>,
    generation: u64,
    offset: u64,
    /// `offset` comes from a checkpoint (acknowledged), not from reading.
    acknowledged: bool,
    /// Its inode has been matched (to a file that no longer has its content).
    key_claimed: bool,
    path: PathBuf,
}

#[derive(Debug)]
struct Tracked {
    file: File,
    key: FileKey,
    path: PathBuf,
    watch: usize,
    group: Group,
    location: Location,
    identity: FileIdentity,
    /// Every fingerprint this content had as it grew (to recognise its
    /// checkpoints).
    fingerprints: Vec<String>,
    /// How many times this inode's content was replaced (truncated) while
    /// followed: orders its successive contents.
    generation: u64,
    size: u64,
    mtime: (i64, i64),
    last_change: Instant,
    discovered_at: Instant,
    /// When it stopped being live (`None` while live).
    rotated_at: Option<Instant>,
    cursor: Cursor,
    phase: Phase,
    origin: Origin,
    /// A copy started beyond its current size (still being copied, or
    /// shorter than what was read of the original): nothing to read yet.
    awaiting_copy: bool,
    seq: u64,
    last_error: Option<String>,
    /// See [`FileStatus::unterminated`].
    unterminated: u64,
}

impl Tracked {
    fn idle(&self, now: Instant, grace: Duration) -> bool {
        now.saturating_duration_since(self.last_change) >= grace
    }

    /// Whether a trailing partial line may be returned: the file has been
    /// neither live nor changed for the grace period.
    fn finished(&self, now: Instant, grace: Duration) -> bool {
        self.location != Location::Live
            && self
                .rotated_at
                .is_some_and(|at| now.saturating_duration_since(at) >= grace)
            && self.idle(now, grace)
    }

    fn fully_read(&self) -> bool {
        match self.phase {
            Phase::Reading => {
                self.awaiting_copy
                    || (self.cursor.offset >= self.size && self.cursor.skip_to.is_none())
            }
            Phase::Shadow { .. } => true,
            Phase::Pending { .. } => false,
        }
    }

    fn set_error(&mut self, what: &str, error: &std::io::Error) {
        let message = format!("{what}: {error}");
        if self.last_error.as_deref() != Some(message.as_str()) {
            warn!(path = %self.path.display(), error = %error, "{what}");
        }
        self.last_error = Some(message);
    }

    fn mark_rotation(&mut self, now: Instant) {
        if self.location == Location::Live {
            self.rotated_at = None;
        } else if self.rotated_at.is_none() {
            self.rotated_at = Some(now);
        }
    }

    fn rank(&self) -> u8 {
        match self.location {
            Location::Gone { .. } => 0,
            Location::Backup => 1,
            Location::Live => 2,
        }
    }
}

/// Follows the files of a set of watches through rotations; see the crate
/// documentation for its guarantees.
#[derive(Debug)]
pub struct Follower {
    watches: Vec<WatchState>,
    options: FollowOptions,
    files: BTreeMap<FileKey, Tracked>,
    checkpoint_candidates: Vec<Candidate>,
    truncated: VecDeque<Candidate>,
    next_seq: u64,
    /// Files with a smaller `seq` were found by [`Follower::new`].
    startup_seq_end: u64,
    startup_done: bool,
    group_cursor: usize,
    logged_compressed: HashSet<PathBuf>,
    /// Files found but not opened at the last poll (no permission, not
    /// readable), with why: shown by [`Follower::unopened`], logged once
    /// per path and reason, not at every poll.
    unopened: BTreeMap<PathBuf, String>,
    scratch: Vec<u8>,
}

impl Follower {
    /// Finds the files of `watches` and decides where each starts: at its
    /// checkpoint in `checkpoints` if it has one (matched by inode and
    /// fingerprint, under whatever name), from 0 if its watch has
    /// checkpoints (it is new), and as `options.start` says if its watch has
    /// none at all.
    pub fn new(
        watches: Vec<Watch>,
        checkpoints: &Checkpoints,
        options: FollowOptions,
    ) -> Result<Self, FollowError> {
        let watches = watches
            .into_iter()
            .map(|watch| {
                WatchState::new(watch.clone()).map_err(|source| FollowError::InvalidPattern {
                    pattern: watch.pattern,
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut follower = Self {
            watches,
            options,
            files: BTreeMap::new(),
            checkpoint_candidates: checkpoints
                .iter()
                .map(|cp| Candidate {
                    key: cp.identity.key(),
                    identity: cp.identity.clone(),
                    fingerprints: vec![cp.identity.fingerprint.clone()],
                    generation: 0,
                    offset: cp.offset,
                    acknowledged: true,
                    key_claimed: false,
                    path: cp.path.clone(),
                })
                .collect(),
            truncated: VecDeque::new(),
            next_seq: 0,
            startup_seq_end: 0,
            startup_done: false,
            group_cursor: 0,
            logged_compressed: HashSet::new(),
            unopened: BTreeMap::new(),
            scratch: Vec::new(),
        };
        let now = Instant::now();
        // What cannot be taken up (`refused` here, the files discovery
        // cannot open below) is found again, and logged, by the first poll:
        // servers set up their logging only once they serve, after the
        // follower was made.
        let mut refused = BTreeMap::new();
        let seen = scan(
            &mut follower.watches,
            &mut follower.logged_compressed,
            &mut refused,
        );
        let skip_existing: Vec<bool> = (0..follower.watches.len())
            .map(|w| {
                let state = &follower.watches[w];
                let has_checkpoint = seen
                    .iter()
                    .any(|s| s.watch == w && checkpoints.get_key(s.key).is_some())
                    || checkpoints.iter().any(|cp| state.names(&cp.path));
                follower.options.start == StartPosition::End && !has_checkpoint
            })
            .collect();
        let _unopened = follower.discover(seen, now, |w| skip_existing[w]);
        follower.classify(now);
        follower.startup_seq_end = follower.next_seq;
        follower.finish_startup();
        Ok(follower)
    }

    /// Notices new files, rotations, truncations and deletions, then returns
    /// the next complete lines: about `max_bytes` (at least one line if any
    /// is ready), in file order within each file, backups before the live
    /// file. An I/O error on one file does not fail the poll: it is logged,
    /// shown in [`Follower::status`], and retried on the next poll; no error
    /// is currently returned from here.
    pub fn poll(&mut self, max_bytes: usize) -> Result<Vec<Record>, FollowError> {
        let now = Instant::now();
        let mut refused = BTreeMap::new();
        let seen = scan(&mut self.watches, &mut self.logged_compressed, &mut refused);
        let new = self.update_locations(seen, now);
        self.refresh(now);
        self.forget_finished();
        let still = self.discover(new, now, |_| false);
        self.note_unopened(still, refused);
        self.classify(now);
        self.finish_startup();
        Ok(self.read(max_bytes, now))
    }

    /// Checkpoints only place files that existed at start (a copy made while
    /// stopped is there by then): once those are all placed, the checkpoints
    /// not matched are dropped, so that they do not hold back new backups.
    fn finish_startup(&mut self) {
        if self.startup_done
            || self
                .files
                .values()
                .any(|t| t.seq < self.startup_seq_end && matches!(t.phase, Phase::Pending { .. }))
        {
            return;
        }
        self.startup_done = true;
        for c in self.checkpoint_candidates.drain(..) {
            if !c.key_claimed {
                info!(
                    path = %c.path.display(),
                    offset = c.offset,
                    "no file found for checkpoint (deleted while stopped; lines after the checkpoint, if any, are lost)"
                );
            }
        }
    }

    /// The status of every followed file, ordered by watch, group and age.
    pub fn status(&self) -> Vec<FileStatus> {
        self.ordered_keys(|_| true)
            .into_iter()
            .filter_map(|key| self.files.get(&key))
            .map(|t| FileStatus {
                path: t.path.clone(),
                identity: t.identity.clone(),
                offset: t.cursor.offset,
                size: t.size,
                location: match t.location {
                    Location::Live => FileLocation::Live,
                    Location::Backup => FileLocation::Rotated,
                    Location::Gone { .. } => FileLocation::Gone,
                },
                state: match t.phase {
                    Phase::Reading => FileState::Reading,
                    Phase::Pending { .. } => FileState::Pending,
                    Phase::Shadow { of } => FileState::CopyOf(
                        self.files
                            .get(&of)
                            .map(|o| o.path.clone())
                            .unwrap_or_default(),
                    ),
                },
                last_error: t.last_error.clone(),
                unterminated: t.unterminated,
            })
            .collect()
    }

    /// The identities of all followed files.
    pub fn tracked_identities(&self) -> Vec<FileIdentity> {
        self.files.values().map(|t| t.identity.clone()).collect()
    }

    /// Brings the caller's acknowledged checkpoints in line with what the
    /// follower knows, before saving them:
    ///
    /// - a file the follower started past 0 without any acknowledgement (the
    ///   end of a file under [`StartPosition::End`], the copy of a truncated
    ///   file whose lines were acknowledged from the original) gets a
    ///   checkpoint at that start, so a restart does not read it from 0; a
    ///   copy only once the original's lines up to that point are
    ///   acknowledged;
    /// - checkpoints of files no longer followed are removed (except those
    ///   still needed to place a copy), so the file does not grow forever.
    pub fn reconcile_checkpoints(&self, checkpoints: &mut Checkpoints) {
        let mut keep: HashSet<FileKey> = HashSet::new();
        for t in self.files.values() {
            if let Some(cp) = checkpoints.get_key(t.key) {
                let fingerprint = &cp.identity.fingerprint;
                // This content, or an older content of the same inode (still
                // needed to place its copy after a restart).
                if t.fingerprints.contains(fingerprint)
                    || self
                        .content_generation(t.key, fingerprint)
                        .is_some_and(|g| g < t.generation)
                    || self
                        .checkpoint_candidates
                        .iter()
                        .any(|c| c.key == t.key && c.fingerprints.contains(fingerprint))
                {
                    keep.insert(t.key);
                    continue;
                }
                // Otherwise it belongs to a file that had this inode before
                // (inode reuse): replaced below, or dropped.
            }
            if t.phase != Phase::Reading {
                continue;
            }
            let start = match &t.origin {
                Origin::Plain => None,
                Origin::Skipped { offset } => Some(*offset),
                Origin::Copy {
                    source,
                    fingerprints,
                    generation,
                    offset,
                    acknowledged,
                } => {
                    let safe = *acknowledged
                        || checkpoints.get_key(*source).is_some_and(|cp| {
                            let fingerprint = &cp.identity.fingerprint;
                            if fingerprints.contains(fingerprint) {
                                cp.offset >= *offset
                            } else {
                                // A checkpoint on newer content of the source:
                                // acknowledged in order, so all of the copied
                                // content was acknowledged before it.
                                self.content_generation(*source, fingerprint)
                                    .is_some_and(|g| g > *generation)
                            }
                        });
                    if !safe {
                        keep.insert(*source);
                    }
                    safe.then_some(*offset)
                }
            };
            if let Some(offset) = start.filter(|o| *o > 0) {
                checkpoints.insert(Checkpoint {
                    identity: t.identity.clone(),
                    path: t.path.clone(),
                    offset,
                });
                keep.insert(t.key);
            }
        }
        checkpoints.retain(|cp| keep.contains(&cp.identity.key()));
    }

    /// Which generation of the content of inode `source` had `fingerprint`,
    /// if the follower still knows.
    fn content_generation(&self, source: FileKey, fingerprint: &String) -> Option<u64> {
        if let Some(t) = self.files.get(&source)
            && t.fingerprints.contains(fingerprint)
        {
            return Some(t.generation);
        }
        let copied = self.files.values().find_map(|t| match &t.origin {
            Origin::Copy {
                source: s,
                fingerprints,
                generation,
                ..
            } if *s == source && fingerprints.contains(fingerprint) => Some(*generation),
            _ => None,
        });
        copied.or_else(|| {
            self.truncated
                .iter()
                .find(|c| c.key == source && c.fingerprints.contains(fingerprint))
                .map(|c| c.generation)
        })
    }

    /// Matches a scan to the followed files; returns the files not followed
    /// yet.
    fn update_locations(&mut self, seen: Vec<Seen>, now: Instant) -> Vec<Seen> {
        let mut listed = HashSet::new();
        let mut new = Vec::new();
        for s in seen {
            listed.insert(s.key);
            match self.files.get_mut(&s.key) {
                Some(t) => {
                    if t.path != s.path {
                        debug!(from = %t.path.display(), to = %s.path.display(), "file renamed");
                    }
                    t.location = if s.live {
                        Location::Live
                    } else {
                        Location::Backup
                    };
                    t.mark_rotation(now);
                    t.path = s.path;
                    t.watch = s.watch;
                    t.group = s.group;
                }
                None => new.push(s),
            }
        }
        for t in self.files.values_mut() {
            if !listed.contains(&t.key) {
                t.location = if let Location::Gone { scans, deleted } = t.location {
                    Location::Gone {
                        scans: scans.saturating_add(1),
                        deleted,
                    }
                } else {
                    debug!(path = %t.path.display(), ino = t.key.ino, "file no longer listed");
                    Location::Gone {
                        scans: 1,
                        deleted: false,
                    }
                };
                t.mark_rotation(now);
            }
        }
        new
    }

    /// `fstat`s every followed file: growth, truncation, deletion.
    fn refresh(&mut self, now: Instant) {
        let keys: Vec<FileKey> = self.files.keys().copied().collect();
        for key in keys {
            let Some(t) = self.files.get_mut(&key) else {
                continue;
            };
            let meta = match t.file.metadata() {
                Ok(meta) => meta,
                Err(e) => {
                    t.set_error("cannot fstat", &e);
                    continue;
                }
            };
            let size = meta.len();
            let mtime = (meta.mtime(), meta.mtime_nsec());
            if let Location::Gone { deleted, .. } = &mut t.location {
                let now_deleted = meta.nlink() == 0;
                if now_deleted && !*deleted && size > t.cursor.offset {
                    warn!(
                        path = %t.path.display(), ino = t.key.ino,
                        read_up_to = t.cursor.offset,
                        size,
                        "file deleted before it was fully read: finishing it through the open descriptor"
                    );
                }
                *deleted = now_deleted;
            }
            let changed = size != t.size || mtime != t.mtime;
            if changed {
                t.last_change = now;
            }
            let reading = t.phase == Phase::Reading;
            let mut truncated = false;
            if t.awaiting_copy {
                t.awaiting_copy = size < t.cursor.offset;
            } else if reading && size < t.cursor.skip_to.unwrap_or(t.cursor.offset) {
                truncated = true;
            }
            let mut prefix = Vec::new();
            if changed || truncated {
                match read_prefix(&t.file, FINGERPRINT_LEN) {
                    Ok(bytes) => prefix = bytes,
                    Err(e) => {
                        t.set_error("cannot read", &e);
                        continue;
                    }
                }
                if !t.identity.prefix_matches(&prefix) {
                    if reading && !t.awaiting_copy {
                        truncated = true;
                    } else {
                        // Not read yet (or a copy that changed): just retake.
                        t.identity = FileIdentity::from_prefix(key.dev, key.ino, &prefix);
                        t.fingerprints = vec![t.identity.fingerprint.clone()];
                    }
                } else if to_u64(prefix.len()) > t.identity.fingerprint_len && !truncated {
                    t.identity = FileIdentity::from_prefix(key.dev, key.ino, &prefix);
                    t.fingerprints.push(t.identity.fingerprint.clone());
                }
            }
            t.size = size;
            t.mtime = mtime;
            t.last_error = None;
            if truncated {
                self.handle_truncation(key, &prefix);
            }
        }
    }

    /// A followed file lost its content: read it again from 0, and hand what
    /// had been read of the old content to its copy (now or when it appears).
    fn handle_truncation(&mut self, key: FileKey, prefix: &[u8]) {
        let Some(t) = self.files.get_mut(&key) else {
            return;
        };
        if t.cursor.offset > 0 {
            warn!(
                path = %t.path.display(),
                read_up_to = t.cursor.offset,
                size = t.size,
                "file truncated (copy-truncate rotation?): reading it again from offset 0; \
                 lines written after the last read and before the truncation are read only \
                 from a copy of the file, if one exists"
            );
        } else {
            debug!(path = %t.path.display(), "content replaced before any of it was read");
        }
        let old = Candidate {
            key,
            identity: t.identity.clone(),
            fingerprints: std::mem::take(&mut t.fingerprints),
            generation: t.generation,
            offset: t.cursor.offset,
            acknowledged: false,
            key_claimed: true,
            path: t.path.clone(),
        };
        t.identity = FileIdentity::from_prefix(key.dev, key.ino, prefix);
        t.fingerprints = vec![t.identity.fingerprint.clone()];
        t.generation += 1;
        t.cursor = Cursor::default();
        t.unterminated = 0;
        t.origin = Origin::Plain;
        self.hand_over(old);
    }

    /// `old` is no longer readable from its own inode: its first copy
    /// continues from where it was read, or it is remembered for a copy
    /// that appears later.
    fn hand_over(&mut self, old: Candidate) {
        let mut shadows: Vec<(u64, FileKey)> = self
            .files
            .values()
            .filter(|t| t.phase == Phase::Shadow { of: old.key })
            .map(|t| (t.seq, t.key))
            .collect();
        shadows.sort_unstable();
        let Some(((_, heir), rest)) = shadows.split_first() else {
            if self.truncated.len() >= TRUNCATED_MEMORY {
                self.truncated.pop_front();
            }
            self.truncated.push_back(old);
            return;
        };
        let heir = *heir;
        for (_, other) in rest {
            if let Some(t) = self.files.get_mut(other) {
                t.phase = Phase::Shadow { of: heir };
            }
        }
        if let Some(t) = self.files.get_mut(&heir) {
            info!(path = %t.path.display(), ino = t.key.ino, original = %old.path.display(), offset = old.offset, "continuing in the copy");
            start_copy(t, old);
        }
    }

    /// Forgets gone files that have nothing left to read.
    fn forget_finished(&mut self) {
        let done: Vec<FileKey> = self
            .files
            .values()
            .filter(|t| match t.location {
                Location::Gone { scans, deleted } => (deleted || scans >= 2) && t.fully_read(),
                _ => false,
            })
            .map(|t| t.key)
            .collect();
        for key in done {
            let Some(t) = self.files.remove(&key) else {
                continue;
            };
            debug!(path = %t.path.display(), ino = t.key.ino, "forgetting fully read file that is gone");
            if t.phase == Phase::Reading {
                self.hand_over_to_shadows(Candidate {
                    key,
                    identity: t.identity,
                    fingerprints: t.fingerprints,
                    generation: t.generation,
                    offset: t.cursor.offset,
                    acknowledged: false,
                    key_claimed: true,
                    path: t.path,
                });
            }
        }
    }

    fn hand_over_to_shadows(&mut self, old: Candidate) {
        if self
            .files
            .values()
            .any(|t| t.phase == Phase::Shadow { of: old.key })
        {
            self.hand_over(old);
        }
    }

    /// Files that were found but could not be opened or read at the last
    /// poll, each with why (`cannot open: Permission denied (os error 13)`).
    /// They are tried again at every poll.
    pub fn unopened(&self) -> Vec<(PathBuf, String)> {
        self.unopened
            .iter()
            .map(|(path, why)| (path.clone(), why.clone()))
            .collect()
    }

    /// Records that `path` could not be taken up: logged when the reason is
    /// new for the path, kept in `still` for [`Follower::unopened`].
    fn not_opened(
        &self,
        still: &mut BTreeMap<PathBuf, String>,
        path: &Path,
        what: &str,
        error: &std::io::Error,
    ) {
        let why = format!("{what}: {error}");
        if self.unopened.get(path) != Some(&why) {
            warn!(path = %path.display(), error = %error, "{what} (retried at every poll, logged again only if the reason changes)");
        }
        still.insert(path.to_owned(), why);
    }

    /// Opens newly listed files; they are classified next.
    /// Keeps what could not be taken up at this poll: the files discovery
    /// could not open (`still`, logged there) and the paths the scan
    /// refused (`refused`: not a regular file, not statable), logged here
    /// when new or changed.
    fn note_unopened(
        &mut self,
        mut still: BTreeMap<PathBuf, String>,
        refused: BTreeMap<PathBuf, String>,
    ) {
        for (path, why) in refused {
            if self.unopened.get(&path) != Some(&why) {
                warn!(path = %path.display(), "{why} (checked at every poll, logged again only if this changes)");
            }
            still.insert(path, why);
        }
        self.unopened = still;
    }

    /// Opens newly listed files (they are classified next); returns the
    /// ones that could not be opened, with why.
    fn discover(
        &mut self,
        new: Vec<Seen>,
        now: Instant,
        skip_existing: impl Fn(usize) -> bool,
    ) -> BTreeMap<PathBuf, String> {
        let mut still = BTreeMap::new();
        for s in new {
            let file = match File::open(&s.path) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    warn!(
                        path = %s.path.display(),
                        "file vanished before it could be opened: if it was renamed it is found \
                         under its new name, if it was deleted its lines are lost"
                    );
                    continue;
                }
                Err(e) => {
                    self.not_opened(&mut still, &s.path, "cannot open", &e);
                    continue;
                }
            };
            let meta = match file.metadata() {
                Ok(meta) => meta,
                Err(e) => {
                    self.not_opened(&mut still, &s.path, "cannot fstat", &e);
                    continue;
                }
            };
            // The name may point to another file by now: trust the descriptor.
            let key = FileKey::of(&meta);
            if self.files.contains_key(&key) {
                continue;
            }
            let prefix = match read_prefix(&file, FINGERPRINT_LEN) {
                Ok(prefix) => prefix,
                Err(e) => {
                    self.not_opened(&mut still, &s.path, "cannot read", &e);
                    continue;
                }
            };
            let identity = FileIdentity::from_prefix(key.dev, key.ino, &prefix);
            let grace = self.options.partial_line_grace;
            let age = meta
                .modified()
                .ok()
                .and_then(|m| SystemTime::now().duration_since(m).ok())
                .unwrap_or_default()
                .min(grace);
            // When it was rotated is unknown: assume no earlier than its last
            // write.
            let last_change = now.checked_sub(age).unwrap_or(now);
            let seq = self.next_seq;
            self.next_seq += 1;
            self.files.insert(
                key,
                Tracked {
                    file,
                    key,
                    path: s.path,
                    watch: s.watch,
                    group: s.group,
                    location: if s.live {
                        Location::Live
                    } else {
                        Location::Backup
                    },
                    fingerprints: vec![identity.fingerprint.clone()],
                    generation: 0,
                    identity,
                    size: meta.len(),
                    mtime: (meta.mtime(), meta.mtime_nsec()),
                    last_change,
                    discovered_at: now,
                    rotated_at: (!s.live).then_some(last_change),
                    cursor: Cursor::default(),
                    phase: Phase::Pending {
                        skip_existing: skip_existing(s.watch),
                    },
                    origin: Origin::Plain,
                    awaiting_copy: false,
                    seq,
                    last_error: None,
                    unterminated: 0,
                },
            );
        }
        still
    }

    /// Decides where each pending file starts: first every file that has its
    /// own checkpoint, then copies and new files (live files first, so that
    /// an original is known before its copy).
    fn classify(&mut self, now: Instant) {
        let mut pending: Vec<(bool, u64, FileKey)> = self
            .files
            .values()
            .filter(|t| matches!(t.phase, Phase::Pending { .. }))
            .map(|t| (t.location != Location::Live, t.seq, t.key))
            .collect();
        if pending.is_empty() {
            return;
        }
        pending.sort_unstable();
        let mut prefixes = BTreeMap::new();
        for &(_, _, key) in &pending {
            let Some(t) = self.files.get_mut(&key) else {
                continue;
            };
            match read_prefix(&t.file, FINGERPRINT_LEN) {
                Ok(prefix) => {
                    prefixes.insert(key, prefix);
                }
                Err(e) => t.set_error("cannot read", &e),
            }
        }
        for (key, prefix) in &prefixes {
            self.resume_from_own_checkpoint(*key, prefix);
        }
        for (_, _, key) in pending {
            if let Some(prefix) = prefixes.get(&key) {
                self.classify_new(key, prefix, now);
            }
        }
    }

    /// Resumes a file at its checkpoint if one has its inode and leading
    /// bytes.
    fn resume_from_own_checkpoint(&mut self, key: FileKey, prefix: &[u8]) {
        let Some(index) = self
            .checkpoint_candidates
            .iter()
            .position(|c| !c.key_claimed && c.key == key)
        else {
            return;
        };
        let Some(t) = self.files.get_mut(&key) else {
            return;
        };
        let c = &mut self.checkpoint_candidates[index];
        c.key_claimed = true;
        if c.identity.prefix_matches(prefix) && t.size >= c.offset {
            debug!(path = %t.path.display(), ino = t.key.ino, offset = c.offset, "resuming at checkpoint");
            // The checkpoint's (possibly shorter) fingerprint names this
            // content too.
            if !t.fingerprints.contains(&c.identity.fingerprint) {
                t.fingerprints.insert(0, c.identity.fingerprint.clone());
            }
            t.cursor = Cursor {
                offset: c.offset,
                skip_to: None,
            };
            t.phase = Phase::Reading;
            t.origin = Origin::Plain;
            self.checkpoint_candidates.remove(index);
        } else {
            warn!(
                path = %t.path.display(), ino = t.key.ino,
                checkpoint = c.offset,
                size = t.size,
                "file was truncated or replaced while stopped: reading it from the beginning"
            );
        }
    }

    fn classify_new(&mut self, key: FileKey, prefix: &[u8], now: Instant) {
        let grace = self.options.partial_line_grace;
        let Some(t) = self.files.get(&key) else {
            return;
        };
        let Phase::Pending { skip_existing } = t.phase else {
            return;
        };
        let live = t.location == Location::Live;
        let gone = matches!(t.location, Location::Gone { .. });
        let n = to_u64(prefix.len());

        // A young, short backup may be a copy in progress: wait until enough
        // of it is there to compare, or until it stops changing.
        // (Never longer than the grace period: a copy takes milliseconds.)
        if !live
            && !gone
            && n < to_u64(FINGERPRINT_LEN)
            && !t.idle(now, grace)
            && now.saturating_duration_since(t.discovered_at) < grace
        {
            let tracked_could_match = n < MIN_COPY_MATCH_LEN
                && self.files.values().any(|o| {
                    o.key != key
                        && o.phase == Phase::Reading
                        && o.identity.fingerprint_len >= MIN_COPY_MATCH_LEN
                });
            let candidate_could_match = self
                .checkpoint_candidates
                .iter()
                .chain(self.truncated.iter())
                .any(|c| {
                    c.key != key
                        && c.identity.fingerprint_len >= MIN_COPY_MATCH_LEN
                        && n < c.identity.fingerprint_len
                });
            if tracked_could_match || candidate_could_match {
                return;
            }
        }

        // A copy of a file still followed: shadow it.
        if !live {
            let mut originals: Vec<&Tracked> = self
                .files
                .values()
                .filter(|o| o.key != key && o.phase == Phase::Reading)
                .collect();
            originals.sort_by_key(|o| o.seq);
            let original = originals
                .into_iter()
                .find(|o| is_copy_of_tracked(prefix, o))
                .map(|o| (o.key, o.path.clone()));
            if let Some((of, original_path)) = original {
                if let Some(t) = self.files.get_mut(&key) {
                    info!(path = %t.path.display(), ino = t.key.ino, original = %original_path.display(), "new file is a copy of a followed file");
                    t.phase = Phase::Shadow { of };
                }
                return;
            }
        }

        // A copy of a file whose content is no longer readable: continue
        // where that file was read (or acknowledged).
        let matches = |c: &Candidate| {
            c.key != key
                && c.identity.fingerprint_len >= MIN_COPY_MATCH_LEN
                && c.identity.prefix_matches(prefix)
        };
        let found = if let Some(i) = self.checkpoint_candidates.iter().position(matches) {
            Some(self.checkpoint_candidates.remove(i))
        } else {
            self.truncated
                .iter()
                .position(matches)
                .and_then(|i| self.truncated.remove(i))
        };
        let Some(t) = self.files.get_mut(&key) else {
            return;
        };
        if let Some(original) = found {
            info!(path = %t.path.display(), ino = t.key.ino, original = %original.path.display(), offset = original.offset, "new file is a copy: continuing where the original was read");
            start_copy(t, original);
            return;
        }

        // A new file.
        t.phase = Phase::Reading;
        if skip_existing {
            let offset = if live {
                match last_line_end(&t.file, t.size) {
                    Ok(offset) => offset,
                    Err(e) => {
                        t.set_error("cannot read", &e);
                        t.size
                    }
                }
            } else {
                t.size
            };
            debug!(path = %t.path.display(), ino = t.key.ino, offset, "skipping existing content");
            t.cursor = Cursor {
                offset,
                skip_to: None,
            };
            t.origin = Origin::Skipped { offset };
        } else {
            debug!(path = %t.path.display(), ino = t.key.ino, "new file: reading from the beginning");
        }
    }

    /// Followed files in reading order: per group (watch and live file),
    /// gone files first, then backups by name, then the live file.
    fn ordered_keys(&self, include: impl Fn(&Tracked) -> bool) -> Vec<FileKey> {
        let mut files: Vec<&Tracked> = self.files.values().filter(|t| include(t)).collect();
        files.sort_by(|a, b| {
            (a.watch, &a.group, a.rank(), a.path.file_name(), a.seq).cmp(&(
                b.watch,
                &b.group,
                b.rank(),
                b.path.file_name(),
                b.seq,
            ))
        });
        files.into_iter().map(|t| t.key).collect()
    }

    fn read(&mut self, max_bytes: usize, now: Instant) -> Vec<Record> {
        let ordered = self.ordered_keys(|t| {
            matches!(t.phase, Phase::Reading | Phase::Pending { .. }) && !t.awaiting_copy
        });
        let mut groups: Vec<Vec<FileKey>> = Vec::new();
        let mut last_group: Option<(usize, &Group)> = None;
        let mut blocked = false;
        for key in &ordered {
            let Some(t) = self.files.get(key) else {
                continue;
            };
            let g = (t.watch, &t.group);
            if last_group != Some(g) {
                groups.push(Vec::new());
                last_group = Some(g);
                blocked = false;
            }
            // A backup not placed yet holds back the newer files of its
            // group, so that lines still come oldest first.
            blocked |= matches!(t.phase, Phase::Pending { .. });
            if !blocked && let Some(group) = groups.last_mut() {
                group.push(*key);
            }
        }
        let mut out = Vec::new();
        if groups.is_empty() {
            return out;
        }
        // Rotate which group goes first so that one busy log cannot starve
        // the others.
        let first = self.group_cursor % groups.len();
        self.group_cursor = self.group_cursor.wrapping_add(1);
        let mut budget = Budget::new(max_bytes);
        let grace = self.options.partial_line_grace;
        let max_line_bytes = self.options.max_line_bytes;
        'groups: for i in 0..groups.len() {
            for key in &groups[(first + i) % groups.len()] {
                let Some(t) = self.files.get_mut(key) else {
                    continue;
                };
                if t.cursor.offset >= t.size && t.cursor.skip_to.is_none() {
                    t.unterminated = 0;
                    continue;
                }
                let limits = ReadLimits {
                    limit: t.size,
                    max_line_bytes,
                    flush_tail: t.finished(now, grace),
                };
                let identity = &t.identity;
                let path = &t.path;
                let result = read_lines(
                    &t.file,
                    &mut t.cursor,
                    &limits,
                    &mut budget,
                    &mut self.scratch,
                    &mut |offset, end, kind| {
                        out.push(Record {
                            identity: identity.clone(),
                            path: path.clone(),
                            offset,
                            end,
                            kind,
                        });
                    },
                );
                match result {
                    Ok(true) => t.unterminated = limits.limit.saturating_sub(t.cursor.offset),
                    Ok(false) => t.unterminated = 0,
                    Err(e) => t.set_error("cannot read", &e),
                }
                if budget.exhausted() {
                    break 'groups;
                }
            }
        }
        out
    }
}

/// Whether a new file starting with `prefix` is a copy of the followed file
/// `original` (compared over at least [`MIN_COPY_MATCH_LEN`] bytes).
fn is_copy_of_tracked(prefix: &[u8], original: &Tracked) -> bool {
    let n = to_u64(prefix.len());
    let len = original.identity.fingerprint_len;
    if n >= len {
        return len >= MIN_COPY_MATCH_LEN && original.identity.prefix_matches(prefix);
    }
    // The copy is shorter than the original's fingerprint (still being
    // copied): compare the bytes it has.
    n >= MIN_COPY_MATCH_LEN
        && read_prefix(&original.file, prefix.len()).is_ok_and(|bytes| bytes == prefix)
}

/// Starts reading `t` as the copy of `original`, from where `original` was
/// read (or acknowledged).
fn start_copy(t: &mut Tracked, original: Candidate) {
    t.phase = Phase::Reading;
    t.cursor = Cursor {
        offset: original.offset,
        skip_to: None,
    };
    t.awaiting_copy = t.size < original.offset;
    t.origin = Origin::Copy {
        source: original.key,
        fingerprints: original.fingerprints,
        generation: original.generation,
        offset: original.offset,
        acknowledged: original.acknowledged,
    };
}
