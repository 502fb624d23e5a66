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
//!
//! Each step has its module: [`discovery`] (2, and opening in 5),
//! [`rotation`] (3 and 4), [`placement`] (5), [`reading`] (6); [`tracked`]
//! holds the state of each file, [`reconcile`] the checkpoints' side, and
//! [`types`] what callers see.

mod discovery;
mod placement;
mod reading;
mod reconcile;
mod rotation;
mod tracked;
mod types;

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::time::Instant;

use tracing::info;

use crate::checkpoint::Checkpoints;
use crate::identity::{FileIdentity, FileKey};
use crate::scan::{Watch, WatchState, scan};

use tracked::{Candidate, Location, Phase, Tracked};
pub use types::{
    DEFAULT_MAX_LINE_BYTES, DEFAULT_PARTIAL_LINE_GRACE, FileLocation, FileState, FileStatus,
    FollowError, FollowOptions, MIN_COPY_MATCH_LEN, Record, RecordKind, StartPosition,
};

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
    pub(super) fn finish_startup(&mut self) {
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

    /// Files that were found but could not be opened or read at the last
    /// poll, each with why (`cannot open: Permission denied (os error 13)`).
    /// They are tried again at every poll.
    pub fn unopened(&self) -> Vec<(PathBuf, String)> {
        self.unopened
            .iter()
            .map(|(path, why)| (path.clone(), why.clone()))
            .collect()
    }
}
