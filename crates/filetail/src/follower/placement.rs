//! Step 5 of a poll: where each newly opened file starts. Its own
//! checkpoint, the position reached in the file it is a copy of, or the
//! beginning (or end, under `StartPosition::End`); a short backup that may
//! be a copy in progress waits until it can be compared.

use std::collections::BTreeMap;
use std::time::Instant;

use tracing::{debug, info, warn};

use super::Follower;
use super::rotation::start_copy;
use super::tracked::{Candidate, Location, Origin, Phase, Tracked};
use super::types::MIN_COPY_MATCH_LEN;
use crate::identity::{FINGERPRINT_LEN, FileKey, read_prefix, to_u64};
use crate::read::{Cursor, last_line_end};

impl Follower {
    /// Decides where each pending file starts: first every file that has its
    /// own checkpoint, then copies and new files (live files first, so that
    /// an original is known before its copy).
    pub(super) fn classify(&mut self, now: Instant) {
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
    pub(super) fn resume_from_own_checkpoint(&mut self, key: FileKey, prefix: &[u8]) {
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

    pub(super) fn classify_new(&mut self, key: FileKey, prefix: &[u8], now: Instant) {
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
}

/// Whether a new file starting with `prefix` is a copy of the followed file
/// `original` (compared over at least [`MIN_COPY_MATCH_LEN`] bytes).
pub(super) fn is_copy_of_tracked(prefix: &[u8], original: &Tracked) -> bool {
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
