//! Steps 3 and 4 of a poll, what rotations do to followed files: growth,
//! truncation (copy-truncate) and deletion seen through `fstat`, handing
//! what was read of a lost content to its copy, and forgetting gone files
//! once read. The only place that decides a file's content was replaced.

use std::os::unix::fs::MetadataExt as _;
use std::time::Instant;

use tracing::{debug, info, warn};

use super::Follower;
use super::tracked::{Candidate, Location, Origin, Phase, Tracked};
use crate::identity::{FINGERPRINT_LEN, FileIdentity, FileKey, read_prefix, to_u64};
use crate::read::Cursor;

/// How many truncated files are remembered for matching their copies.
const TRUNCATED_MEMORY: usize = 32;

impl Follower {
    /// `fstat`s every followed file: growth, truncation, deletion.
    pub(super) fn refresh(&mut self, now: Instant) {
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
    pub(super) fn handle_truncation(&mut self, key: FileKey, prefix: &[u8]) {
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
    pub(super) fn hand_over(&mut self, old: Candidate) {
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
    pub(super) fn forget_finished(&mut self) {
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

    pub(super) fn hand_over_to_shadows(&mut self, old: Candidate) {
        if self
            .files
            .values()
            .any(|t| t.phase == Phase::Shadow { of: old.key })
        {
            self.hand_over(old);
        }
    }
}

/// Starts reading `t` as the copy of `original`, from where `original` was
/// read (or acknowledged).
pub(super) fn start_copy(t: &mut Tracked, original: Candidate) {
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
