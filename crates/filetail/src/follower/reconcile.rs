//! Bringing the caller's acknowledged checkpoints in line with what the
//! follower knows before they are saved: a file started past 0 gets its
//! start recorded, and checkpoints of files no longer followed are dropped
//! so that the file does not grow forever.

use std::collections::HashSet;

use super::Follower;
use super::tracked::{Origin, Phase};
use crate::checkpoint::{Checkpoint, Checkpoints};
use crate::identity::FileKey;

impl Follower {
    /// Brings the caller's acknowledged checkpoints in line with what the
    /// follower knows, before saving them:
    ///
    /// - a file the follower started past 0 without any acknowledgement (the
    ///   end of a file under `StartPosition::End`, the copy of a truncated
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
    pub(super) fn content_generation(&self, source: FileKey, fingerprint: &String) -> Option<u64> {
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
}
