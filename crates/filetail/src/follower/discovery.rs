//! Step 2 and the opening half of step 5 of a poll: matching a directory
//! scan to the followed files by inode (renames, files gone), and opening
//! the files not followed yet. Files that cannot be opened are remembered
//! with why, and logged once per reason, not at every poll.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use tracing::{debug, warn};

use super::Follower;
use super::tracked::{Location, Origin, Phase, Tracked};
use crate::identity::{FINGERPRINT_LEN, FileIdentity, FileKey, read_prefix};
use crate::read::Cursor;
use crate::scan::Seen;

impl Follower {
    /// Matches a scan to the followed files; returns the files not followed
    /// yet.
    pub(super) fn update_locations(&mut self, seen: Vec<Seen>, now: Instant) -> Vec<Seen> {
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

    /// Records that `path` could not be taken up: logged when the reason is
    /// new for the path, kept in `still` for [`Follower::unopened`].
    pub(super) fn not_opened(
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
    pub(super) fn note_unopened(
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
    pub(super) fn discover(
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
}
