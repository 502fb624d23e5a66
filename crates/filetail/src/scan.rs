//! Finding the files of a watch: live files by glob, backups by lumberjack name.
//!
//! Every poll lists the files again (a directory read and a `stat` per file),
//! so rotations are noticed without inotify and without trusting any single
//! listing: a file is followed by its inode, and the listing only tells
//! whether that inode is currently live, a rotated backup, or gone.
//!
//! For a live file `dir/stem.ext`, lumberjack names its backups
//! `dir/stem-<timestamp>.ext`, and the timestamp format
//! (`2006-01-02T15-04-05.000`) makes name order time order. Compressed
//! backups (`….gz`) cannot be followed and are ignored with a debug log.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};

use glob::Pattern;
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use crate::identity::FileKey;

/// One watched log: a path or glob pattern of live files (e.g.
/// `/var/log/calico/audit/kube-audit.log` or `/var/log/*/kube-audit.log`).
/// Each live file's rotated backups are followed too.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Watch {
    /// Path or glob pattern of the live file(s).
    pub pattern: String,
}

impl Watch {
    /// A watch of the live files matching `pattern`.
    pub fn new(pattern: impl Into<String>) -> Self {
        Self {
            pattern: pattern.into(),
        }
    }
}

/// The files of one live file: itself and its backups share a group.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Group {
    dir: PathBuf,
    stem: String,
    ext: String,
}

/// What a name in a group's directory is.
#[derive(Debug, PartialEq, Eq)]
enum NameKind {
    Backup,
    Compressed,
    Other,
}

impl Group {
    /// The group of the live file at `path` (`None` for a non-UTF-8 name).
    pub(crate) fn of_live(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_str()?;
        let (stem, ext) = match name.rfind('.') {
            Some(i) if i > 0 => (&name[..i], &name[i..]),
            _ => (name, ""),
        };
        Some(Self {
            dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            stem: stem.to_owned(),
            ext: ext.to_owned(),
        })
    }

    /// Glob of every name starting with `stem-` in the group's directory.
    fn candidates_glob(&self) -> Option<String> {
        let stem = Pattern::escape(&self.stem);
        if self.dir.as_os_str().is_empty() {
            return Some(format!("{stem}-*"));
        }
        let dir = Pattern::escape(self.dir.to_str()?);
        Some(format!("{}/{stem}-*", dir.trim_end_matches('/')))
    }

    fn classify_name(&self, name: &str) -> NameKind {
        let Some(rest) = name
            .strip_prefix(self.stem.as_str())
            .and_then(|r| r.strip_prefix('-'))
        else {
            return NameKind::Other;
        };
        if Path::new(rest)
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
        {
            return NameKind::Compressed;
        }
        match rest.strip_suffix(self.ext.as_str()) {
            Some(ts) if !ts.is_empty() => NameKind::Backup,
            _ => NameKind::Other,
        }
    }

    /// Whether `path` is named like a backup of this group.
    pub(crate) fn is_backup_path(&self, path: &Path) -> bool {
        path.parent().map(Path::to_path_buf).unwrap_or_default() == self.dir
            && path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| self.classify_name(n) == NameKind::Backup)
    }
}

/// A watch with its compiled pattern and the groups seen so far (remembered
/// so that backups are still found while the live file is briefly missing
/// during a rotation).
#[derive(Debug)]
pub(crate) struct WatchState {
    pub(crate) watch: Watch,
    pub(crate) pattern: Pattern,
    pub(crate) groups: BTreeSet<Group>,
}

impl WatchState {
    pub(crate) fn new(watch: Watch) -> Result<Self, glob::PatternError> {
        let pattern = Pattern::new(&watch.pattern)?;
        let mut groups = BTreeSet::new();
        // A literal path names its group even before the file exists.
        if !watch.pattern.contains(['*', '?', '['])
            && let Some(group) = Group::of_live(Path::new(&watch.pattern))
        {
            groups.insert(group);
        }
        Ok(Self {
            watch,
            pattern,
            groups,
        })
    }

    /// Whether a file at `path` belongs to this watch by name.
    pub(crate) fn names(&self, path: &Path) -> bool {
        self.pattern.matches_path(path) || self.groups.iter().any(|g| g.is_backup_path(path))
    }
}

/// One file found by a scan.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub(crate) path: PathBuf,
    pub(crate) key: FileKey,
    pub(crate) live: bool,
    pub(crate) watch: usize,
    pub(crate) group: Group,
}

/// Lists the live files and backups of all watches, one entry per inode (a
/// file seen under two names keeps the later one: backups are listed after
/// live files, and a rename only ever goes from live to backup).
/// Live paths that match but cannot be followed go to `refused`, with why
/// (a directory, a path that cannot be stat-ed).
pub(crate) fn scan(
    watches: &mut [WatchState],
    logged_compressed: &mut HashSet<PathBuf>,
    refused: &mut BTreeMap<PathBuf, String>,
) -> Vec<Seen> {
    let mut seen = Vec::new();
    let mut live_paths = HashSet::new();
    for (index, state) in watches.iter_mut().enumerate() {
        // A glob may match directories beside the logs; a literal path
        // that is not a file is a mistake to report.
        let literal = !state.watch.pattern.contains(['*', '?', '[']);
        for path in glob_paths(&state.watch.pattern) {
            let Some(group) = Group::of_live(&path) else {
                warn!(path = %path.display(), "ignoring live file with a non-UTF-8 name");
                continue;
            };
            state.groups.insert(group.clone());
            live_paths.insert(path.clone());
            match std::fs::metadata(&path) {
                Ok(meta) if meta.is_file() => seen.push(Seen {
                    key: FileKey::of(&meta),
                    path,
                    live: true,
                    watch: index,
                    group,
                }),
                Ok(_) if !literal => {}
                Ok(meta) => {
                    let what = if meta.is_dir() {
                        "is a directory, not a log file: give the file's path, or a glob \
                         such as DIR/*.log"
                    } else {
                        "is not a regular file (a socket, a pipe or a device): audit logs \
                         are read from regular files"
                    };
                    refused.insert(path, what.to_owned());
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    refused.insert(path, format!("cannot stat: {e}"));
                }
            }
        }
    }
    for (index, state) in watches.iter().enumerate() {
        for group in &state.groups {
            let Some(pattern) = group.candidates_glob() else {
                continue;
            };
            for path in glob_paths(&pattern) {
                if live_paths.contains(&path) {
                    continue;
                }
                let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                match group.classify_name(name) {
                    NameKind::Backup => {
                        if let Some(key) = stat_file(&path) {
                            seen.push(Seen {
                                path,
                                key,
                                live: false,
                                watch: index,
                                group: group.clone(),
                            });
                        }
                    }
                    NameKind::Compressed => {
                        if logged_compressed.insert(path.clone()) {
                            debug!(path = %path.display(), "ignoring compressed backup");
                        }
                    }
                    NameKind::Other => {}
                }
            }
        }
    }
    let mut last: HashMap<FileKey, usize> = HashMap::new();
    for (i, s) in seen.iter().enumerate() {
        last.insert(s.key, i);
    }
    seen.into_iter()
        .enumerate()
        .filter(|(i, s)| last.get(&s.key) == Some(i))
        .map(|(_, s)| s)
        .collect()
}

fn glob_paths(pattern: &str) -> Vec<PathBuf> {
    match glob::glob(pattern) {
        Ok(paths) => paths
            .filter_map(|entry| match entry {
                Ok(path) => Some(path),
                Err(e) => {
                    warn!(path = %e.path().display(), error = %e.error(), "cannot list");
                    None
                }
            })
            .collect(),
        Err(e) => {
            warn!(pattern, error = %e, "invalid glob pattern");
            Vec::new()
        }
    }
}

/// The inode of the regular file at `path`, or `None` (with a warning unless
/// it simply vanished).
fn stat_file(path: &Path) -> Option<FileKey> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => Some(FileKey::of(&meta)),
        Ok(_) => None,
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => {
            warn!(path = %path.display(), error = %e, "cannot stat");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lumberjack_names() {
        let g = Group::of_live(Path::new("/var/log/calico/audit/kube-audit.log")).unwrap();
        assert_eq!(g.stem, "kube-audit");
        assert_eq!(g.ext, ".log");
        assert_eq!(
            g.classify_name("kube-audit-2024-05-01T10-00-00.000.log"),
            NameKind::Backup
        );
        assert_eq!(
            g.classify_name("kube-audit-2024-05-01T10-00-00.000.log.gz"),
            NameKind::Compressed
        );
        assert_eq!(g.classify_name("kube-audit.log"), NameKind::Other);
        assert_eq!(g.classify_name("kube-audit-.log"), NameKind::Other);
        assert_eq!(g.classify_name("tsee-audit-2024.log"), NameKind::Other);
        assert!(g.is_backup_path(Path::new("/var/log/calico/audit/kube-audit-x.log")));
        assert!(!g.is_backup_path(Path::new("/var/log/other/kube-audit-x.log")));
        assert_eq!(
            g.candidates_glob().unwrap(),
            "/var/log/calico/audit/kube-audit-*"
        );
    }

    #[test]
    fn names_without_extension_and_with_glob_characters() {
        let g = Group::of_live(Path::new("/logs/[a]/audit")).unwrap();
        assert_eq!(g.ext, "");
        assert_eq!(g.classify_name("audit-2024"), NameKind::Backup);
        assert_eq!(g.candidates_glob().unwrap(), "/logs/[[]a[]]/audit-*");
    }
}
