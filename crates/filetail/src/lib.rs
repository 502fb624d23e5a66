//! Following audit log files through rotation, exactly once.
//!
//! kube-apiserver and the Calico API server write audit events one JSON
//! object per line and rotate their files with lumberjack (rename the live
//! file to `<stem>-<timestamp><ext>`, create a new one) or, in some setups,
//! by copy-truncate. The ingestor must hand every complete line to the
//! indexer once, across rotations, truncations and its own restarts, and may
//! only remember a line as done once the indexer acknowledged it. This crate
//! is the file side of that: it finds the files, reads their lines in
//! bounded memory, and says exactly where each line came from so the caller
//! can checkpoint acknowledged lines.
//!
//! - [`Follower`] lists the files of each [`Watch`] on every
//!   [`poll`](Follower::poll), follows each file by identity, and returns
//!   [`Record`]s (a line, or a [`RecordKind::TooLong`] marker).
//! - [`FileIdentity`] is inode plus a fingerprint of the first KiB.
//! - [`Checkpoints`] / [`CheckpointStore`] are the caller's acknowledged
//!   offsets and their atomic JSON file.
//!
//! # Usage
//!
//! ```no_run
//! # use auditrail_filetail::*;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = CheckpointStore::new("/var/lib/auditrail/checkpoints.json");
//! let mut checkpoints = store.load()?;
//! let watches = vec![Watch::new("/var/log/calico/audit/kube-audit.log")];
//! let mut follower = Follower::new(watches, &checkpoints, FollowOptions::default())?;
//! loop {
//!     let records = follower.poll(1 << 20)?;
//!     // ... send the records, wait for the acknowledgement, then:
//!     for record in &records {
//!         checkpoints.advance(record);
//!     }
//!     follower.reconcile_checkpoints(&mut checkpoints);
//!     store.save(&checkpoints)?;
//! #   break;
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Guarantees
//!
//! Given that the caller feeds acknowledged records to
//! [`Checkpoints::advance`] in the order they were returned, calls
//! [`Follower::reconcile_checkpoints`] before saving, and restarts from the
//! saved checkpoints:
//!
//! - **Complete lines only, each once, in file order.** A line is returned
//!   when its `\n` has been written; its bytes exclude the `\n` and keep a
//!   `\r`. Records of one file are in offset order; files of one live file's
//!   group are read oldest first (backups in name order, which is time
//!   order for lumberjack names, then the live file), and a file's complete
//!   lines are all returned before the next file's in the same poll. A new
//!   backup that cannot be placed yet (a copy in progress, see below) holds
//!   back the newer files of its group until it is.
//! - **Rename rotation** loses and repeats nothing: the renamed file keeps
//!   its inode, so it is read to its end under its new name from where it
//!   was, and the new live file is a new inode read from 0. Even a file
//!   deleted (lumberjack `maxbackups`) before it was read to its end is
//!   finished, through the descriptor the follower keeps open on every
//!   followed file; that open descriptor also means a followed inode cannot
//!   be reused under the follower's feet.
//! - **Copy-truncate** loses and repeats nothing that was in the file when it
//!   was copied: the truncation is noticed (size below the read offset, or
//!   leading bytes that no longer match the fingerprint) and the file is
//!   read again from 0; the copy is recognised by its leading bytes (equal to
//!   the original's over at least [`MIN_COPY_MATCH_LEN`] bytes) and read from
//!   the offset the original had been read to, not from 0 — whether the copy
//!   is seen before the truncation (it then waits as a
//!   [`FileState::CopyOf`]), after it, or only after a restart (it then
//!   starts at the original's checkpoint).
//! - **Restarts** resume each file at its checkpoint, matched by inode and
//!   fingerprint, whatever its name now (a rename while stopped is fine). A
//!   file without a checkpoint is new and read from 0 when its watch has
//!   checkpoints; [`StartPosition`] applies only to a watch without any. A
//!   checkpoint whose inode now holds other leading bytes (truncated while
//!   stopped, or inode reuse) does not apply to it: the file is read from 0,
//!   and the checkpoint can still place a copy of its old content.
//!   [`Follower::reconcile_checkpoints`] replaces the checkpoint a deleted
//!   file left on an inode that a new file reuses.
//! - **Bounded memory**: one poll holds about `max_bytes` of records plus
//!   one line of at most `max_line_bytes` plus a 64 KiB read buffer; a longer
//!   line is scanned, never buffered, and reported as
//!   [`RecordKind::TooLong`] with its offset and length so it can be
//!   dead-lettered.
//! - **Nothing is silently dropped at the end of a file**: a rotated (or
//!   gone) file ending in a line without `\n` gets that partial line
//!   returned once the file has been neither live nor written to for
//!   [`FollowOptions::partial_line_grace`] (it will not parse, and is
//!   dead-lettered by the caller).
//!
//! # Known limits
//!
//! - Bytes written to a copy-truncated file after the copy was taken and
//!   before the truncation are in neither file: lost (inherent to
//!   copy-truncate, logged as a warning on truncation).
//! - A copy is not recognised, and is read from 0, if its original was
//!   shorter than [`MIN_COPY_MATCH_LEN`] bytes, or if it appears only after
//!   32 later truncations in the same process: its lines are then repeated
//!   (the indexer's content-hash ids make repeats harmless), never lost.
//! - A file truncated and rewritten between two polls with exactly the same
//!   first KiB and to at least the read offset is not noticed.
//! - A file deleted before the follower ever listed it (e.g. a backup
//!   deleted while the ingestor was stopped before it was read) is lost;
//!   this is logged. So are the unacknowledged lines of a file deleted while
//!   followed if the process restarts before they are acknowledged: only the
//!   running follower's open descriptor could still read them.
//! - A checkpoint taken while a file was shorter than its fingerprint length
//!   identifies it by those few bytes only; after a restart, a different
//!   file on the same inode with the same first bytes would be taken for it.
//! - The live file's trailing partial line waits as long as the file is
//!   live: a writer that died mid-line (or a file whose last line was
//!   written without `\n`) delays that line until it is completed or the
//!   file is rotated. [`FileStatus::unterminated`] tells its size, so the
//!   caller can show it.
//! - Acknowledgements must be fed in order: a checkpoint is per inode, and
//!   the latest advance on an inode with another fingerprint replaces it.

mod checkpoint;
mod follower;
mod identity;
mod read;
mod scan;

pub use checkpoint::{
    Checkpoint, CheckpointError, CheckpointStore, Checkpoints, load_versioned, save_versioned,
};
pub use follower::{
    DEFAULT_MAX_LINE_BYTES, DEFAULT_PARTIAL_LINE_GRACE, FileLocation, FileState, FileStatus,
    FollowError, FollowOptions, Follower, MIN_COPY_MATCH_LEN, Record, RecordKind, StartPosition,
};
pub use identity::{FINGERPRINT_LEN, FileIdentity};
pub use scan::Watch;
