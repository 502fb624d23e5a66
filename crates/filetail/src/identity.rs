//! Which file is this? Identities that survive renames and detect reuse.
//!
//! A path says nothing durable about a log file: lumberjack renames the live
//! file away and creates a new one under the same name, and copy-truncate
//! rewrites the same inode with new content. A [`FileIdentity`] therefore
//! combines the inode (`dev`, `ino`), which follows a file through renames,
//! with a fingerprint of its first bytes, which tells a file apart from a
//! later file that happens to reuse the inode (or from the inode's own content
//! after a truncation).
//!
//! The fingerprint is the hex BLAKE3 hash of the first
//! `min(size, FINGERPRINT_LEN)` bytes and records how many bytes it covers.
//! While a file is shorter than [`FINGERPRINT_LEN`] its fingerprint is
//! extended as it grows; a comparison only ever hashes the candidate's first
//! `fingerprint_len` bytes, so a grown file still matches the identity taken
//! when it was small, while a rewritten one does not.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

use serde::{Deserialize, Serialize};

/// How many leading bytes of a file its fingerprint covers at most.
pub const FINGERPRINT_LEN: usize = 1024;

/// A file's identity: inode plus a fingerprint of its first bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileIdentity {
    /// Device number of the file system holding the file.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Hex BLAKE3 hash of the first `fingerprint_len` bytes.
    pub fingerprint: String,
    /// How many leading bytes `fingerprint` covers (at most [`FINGERPRINT_LEN`]).
    pub fingerprint_len: u64,
}

impl FileIdentity {
    /// The identity of a file on `dev`/`ino` whose content starts with
    /// `prefix` (only the first [`FINGERPRINT_LEN`] bytes are used).
    pub fn from_prefix(dev: u64, ino: u64, prefix: &[u8]) -> Self {
        let prefix = &prefix[..prefix.len().min(FINGERPRINT_LEN)];
        Self {
            dev,
            ino,
            fingerprint: fingerprint(prefix),
            fingerprint_len: to_u64(prefix.len()),
        }
    }

    /// Reads the identity of an open file (one `fstat` and one read of at
    /// most [`FINGERPRINT_LEN`] bytes).
    pub fn of_file(file: &File) -> io::Result<Self> {
        let meta = file.metadata()?;
        let prefix = read_prefix(file, FINGERPRINT_LEN)?;
        Ok(Self::from_prefix(meta.dev(), meta.ino(), &prefix))
    }

    /// Whether a file whose content starts with `prefix` has the same first
    /// `fingerprint_len` bytes as this identity. A prefix shorter than that
    /// never matches: the file lost bytes, so it is not the same content.
    pub fn prefix_matches(&self, prefix: &[u8]) -> bool {
        let Ok(len) = usize::try_from(self.fingerprint_len) else {
            return false;
        };
        len <= FINGERPRINT_LEN
            && prefix.len() >= len
            && fingerprint(&prefix[..len]) == self.fingerprint
    }

    /// Whether the file on `dev`/`ino` whose content starts with `prefix` is
    /// the file this identity was taken from: same inode and same leading
    /// bytes. The same inode with different leading bytes is inode reuse (or
    /// a rewrite) and therefore a different file.
    pub fn is_same_file(&self, dev: u64, ino: u64, prefix: &[u8]) -> bool {
        self.dev == dev && self.ino == ino && self.prefix_matches(prefix)
    }

    /// Whether `other` is on the same inode (says nothing about content).
    pub fn same_inode(&self, other: &FileIdentity) -> bool {
        self.dev == other.dev && self.ino == other.ino
    }

    pub(crate) fn key(&self) -> FileKey {
        FileKey {
            dev: self.dev,
            ino: self.ino,
        }
    }
}

/// `(dev, ino)`: the part of an identity that a rename keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct FileKey {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
}

impl FileKey {
    pub(crate) fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// Hex BLAKE3 of `bytes`.
pub(crate) fn fingerprint(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// Reads up to `len` bytes from the start of `file` (fewer at end of file).
pub(crate) fn read_prefix(file: &File, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; len];
    let mut filled = 0;
    while filled < len {
        match file.read_at(&mut buf[filled..], to_u64(filled)) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

/// Lossless on every platform Rust supports (`usize` is at most 64 bits).
pub(crate) fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTENT: &[u8] =
        b"{\"kind\":\"Event\",\"auditID\":\"a1\"}\n{\"kind\":\"Event\",\"auditID\":\"a2\"}\n";

    #[test]
    fn grown_file_matches_identity_taken_when_small() {
        let small = FileIdentity::from_prefix(1, 7, &CONTENT[..20]);
        assert_eq!(small.fingerprint_len, 20);
        assert!(small.is_same_file(1, 7, CONTENT));
    }

    #[test]
    fn same_inode_with_other_content_is_a_different_file() {
        // Inode reuse: the old file was deleted and a new one got its inode.
        let old = FileIdentity::from_prefix(1, 7, CONTENT);
        let reused =
            b"{\"kind\":\"Event\",\"auditID\":\"b9\"}\n{\"kind\":\"Event\",\"auditID\":\"b8\"}\n";
        assert!(!old.is_same_file(1, 7, reused));
        assert_ne!(old, FileIdentity::from_prefix(1, 7, reused));
    }

    #[test]
    fn shorter_content_than_the_fingerprint_is_a_different_file() {
        let id = FileIdentity::from_prefix(1, 7, CONTENT);
        assert!(!id.is_same_file(1, 7, &CONTENT[..10]));
        assert!(!id.is_same_file(1, 7, b""));
    }

    #[test]
    fn other_inode_is_a_different_file_even_with_equal_content() {
        let id = FileIdentity::from_prefix(1, 7, CONTENT);
        assert!(!id.is_same_file(1, 8, CONTENT));
        assert!(!id.is_same_file(2, 7, CONTENT));
        assert!(id.prefix_matches(CONTENT), "content alone still matches");
    }

    #[test]
    fn fingerprint_covers_at_most_the_first_kib() {
        let mut big = vec![b'a'; 4000];
        let id = FileIdentity::from_prefix(1, 1, &big);
        assert_eq!(id.fingerprint_len, FINGERPRINT_LEN as u64);
        big[3000] = b'b';
        assert!(
            id.is_same_file(1, 1, &big),
            "bytes after the first KiB are not compared"
        );
        big[10] = b'b';
        assert!(!id.is_same_file(1, 1, &big));
    }

    #[test]
    fn empty_identity_matches_anything_on_the_same_inode() {
        let id = FileIdentity::from_prefix(1, 1, b"");
        assert_eq!(id.fingerprint_len, 0);
        assert!(id.is_same_file(1, 1, CONTENT));
    }

    #[test]
    fn bogus_fingerprint_length_never_matches() {
        let mut id = FileIdentity::from_prefix(1, 1, CONTENT);
        id.fingerprint_len = 5000;
        assert!(!id.prefix_matches(&[b'a'; 6000]));
    }
}
