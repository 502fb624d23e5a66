//! The dead-letter file: lines that are not audit events, kept for people.
//!
//! One JSON object per line in `<data_dir>/dead-letters.ndjson`: when, which
//! source, where (file and byte offset, or CloudWatch stream and event id),
//! why, the line's length and a bounded excerpt of it. File and CloudWatch
//! sources share the file (through [`SharedDeadLetters`]). Dead letters are written before the checkpoint that moves past them
//! is saved, so a crash can repeat a dead letter but never lose one.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Bytes of the offending line kept in a dead letter.
pub const EXCERPT_BYTES: usize = 1024;

/// One dead letter, as written to the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// When it was written (RFC 3339).
    pub time: jiff::Timestamp,
    /// The source (the configured path or glob).
    pub source: String,
    /// The file the line was read from.
    pub file: String,
    /// Byte offset of the line in that file.
    pub offset: u64,
    /// Short machine-readable reason, e.g. `invalid_json`, `too_long`.
    pub code: String,
    /// What was wrong, for people.
    pub reason: String,
    /// Length of the whole line in bytes.
    pub length: u64,
    /// The first bytes of the line (lossy UTF-8).
    pub excerpt: String,
    /// Whether `excerpt` is shorter than the line.
    pub truncated: bool,
    /// CloudWatch log stream (CloudWatch sources only).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub log_stream: String,
    /// CloudWatch event position (CloudWatch sources only).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub event_id: String,
}

impl DeadLetter {
    /// A dead letter for `line` (which may be empty when it was not kept).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        source: &str,
        file: &Path,
        offset: u64,
        code: &str,
        reason: String,
        length: u64,
        line: &[u8],
    ) -> Self {
        let excerpt = &line[..line.len().min(EXCERPT_BYTES)];
        Self {
            time: jiff::Timestamp::now(),
            source: source.to_owned(),
            file: file.display().to_string(),
            offset,
            code: code.to_owned(),
            reason,
            length,
            excerpt: String::from_utf8_lossy(excerpt).into_owned(),
            truncated: (excerpt.len() as u64) < length,
            log_stream: String::new(),
            event_id: String::new(),
        }
    }

    /// A dead letter for a CloudWatch message: it has a stream and an event
    /// id instead of a file and an offset.
    pub fn cloudwatch(
        source: &str,
        log_stream: &str,
        event_id: &str,
        code: &str,
        reason: String,
        message: &[u8],
    ) -> Self {
        Self {
            file: String::new(),
            log_stream: log_stream.to_owned(),
            event_id: event_id.to_owned(),
            ..Self::new(
                source,
                Path::new(""),
                0,
                code,
                reason,
                message.len() as u64,
                message,
            )
        }
    }
}

/// The dead-letter file shared by every source of an ingestor.
pub type SharedDeadLetters = std::sync::Arc<std::sync::Mutex<DeadLetters>>;

/// Locks the shared dead-letter file. A poisoned lock only means a panic
/// elsewhere mid-append; the file itself is still usable.
pub fn lock(shared: &SharedDeadLetters) -> std::sync::MutexGuard<'_, DeadLetters> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The short code of an indexer reject reason, as dead letters name it.
pub fn reject_code(code: i32) -> &'static str {
    use auditrail_proto::v1::RejectReason;
    RejectReason::try_from(code).map_or("rejected", |c| match c {
        RejectReason::InvalidJson => "invalid_json",
        RejectReason::NotAuditEvent => "not_an_event",
        RejectReason::InvalidField => "invalid_field",
        RejectReason::TooLarge => "too_large",
        RejectReason::Empty => "empty",
        RejectReason::Expired => "expired",
        RejectReason::Unspecified => "rejected",
    })
}

/// The append-only dead-letter file.
#[derive(Debug)]
pub struct DeadLetters {
    path: PathBuf,
    file: File,
    unsynced: bool,
    count: u64,
    logged: HashSet<(String, String)>,
}

impl DeadLetters {
    /// Opens (creating) the file in `dir`, to be shared by every source.
    pub fn open_shared(dir: &Path) -> std::io::Result<SharedDeadLetters> {
        Ok(std::sync::Arc::new(std::sync::Mutex::new(Self::open(dir)?)))
    }

    /// Opens (creating) the file in `dir`.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        let path = dir.join("dead-letters.ndjson");
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let count = BufReader::new(File::open(&path)?).lines().count() as u64;
        Ok(Self {
            path,
            file,
            unsynced: false,
            count,
            logged: HashSet::new(),
        })
    }

    /// Appends a dead letter; logs the first one per file and reason.
    pub fn append(&mut self, letter: &DeadLetter) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(letter).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.unsynced = true;
        self.count += 1;
        metrics::counter!("ingestor_dead_letters_total", "reason" => letter.code.clone())
            .increment(1);
        let place = if letter.file.is_empty() {
            &letter.log_stream
        } else {
            &letter.file
        };
        if self.logged.insert((place.clone(), letter.code.clone())) {
            tracing::warn!(
                source = %letter.source,
                file = %letter.file,
                offset = letter.offset,
                log_stream = %letter.log_stream,
                event_id = %letter.event_id,
                reason = %letter.reason,
                dead_letters = %self.path.display(),
                "event dead-lettered (further ones for this file or stream and reason are counted, not logged)"
            );
        }
        Ok(())
    }

    /// Makes appended letters durable (before a checkpoint moves past them).
    pub fn sync(&mut self) -> std::io::Result<()> {
        if self.unsynced {
            self.file.sync_data()?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// Number of dead letters in the file.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads one page of dead letters: `skip` letters, then up to `limit`, with
/// an optional source filter. Returns the page and whether more follow.
pub fn read_page(
    path: &Path,
    source: Option<&str>,
    skip: usize,
    limit: usize,
) -> std::io::Result<(Vec<DeadLetter>, bool)> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), false)),
        Err(e) => return Err(e),
    };
    let mut matching = BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str::<DeadLetter>(&l).ok())
        .filter(|d| source.is_none_or(|s| d.source == s))
        .skip(skip);
    let page: Vec<DeadLetter> = matching.by_ref().take(limit).collect();
    let more = matching.next().is_some();
    Ok((page, more))
}
