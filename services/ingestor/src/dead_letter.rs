//! The dead-letter file: lines that are not audit events, kept for people.
//!
//! One JSON object per line in `<data_dir>/dead-letters.ndjson`: when, which
//! source, where (file and byte offset, or CloudWatch stream and event id),
//! why, the line's length and a bounded excerpt of it. File and CloudWatch
//! sources share the file (through [`SharedDeadLetters`]). Dead letters are
//! written before the checkpoint that moves past them is saved, so a crash
//! can repeat a dead letter but never lose one.
//!
//! The file holds every dead letter; the log does not repeat them one by
//! one. The first dead letter of each file (or stream) and reason is logged
//! at WARN with its reason; the others are counted and summarised in one
//! WARN line per file ([`DeadLetters::summarise`]) when the ingestor has
//! caught up, at most once per [`SUMMARY_INTERVAL`] per file, and at
//! shutdown.
//!
//! A file of pretty-printed JSON (one event over many lines) gives a dead
//! letter per line; the first such line of a file gets a reason that says
//! audit logs are one event per line and how to convert the file
//! ([`one_event_per_line_hint`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use auditrail_proto::v1;
use serde::{Deserialize, Serialize};

use crate::expired::is_expired;

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

/// Dead-letters the rejects of one acknowledged batch and syncs the file,
/// before the caller moves its checkpoints or stream positions past the
/// batch; answers how many dead letters the file holds now.
///
/// `sent` is what the batch carried, in order: a reject names its event by
/// index (one outside the batch is logged and skipped). An event past the
/// indexer's retention is not dead-lettered but handed to `expired`;
/// `letter` makes the dead letter of any other rejected event (given the
/// file, for its once-per-file hints).
pub fn dead_letter_rejects<T>(
    shared: &SharedDeadLetters,
    rejects: &[v1::Reject],
    sent: &[T],
    mut expired: impl FnMut(&T),
    mut letter: impl FnMut(&mut DeadLetters, &T, &v1::Reject) -> DeadLetter,
) -> u64 {
    let mut dead_letters = lock(shared);
    for reject in rejects {
        let Some(event) = usize::try_from(reject.index).ok().and_then(|i| sent.get(i)) else {
            tracing::error!(
                index = reject.index,
                "the indexer rejected an event index outside the batch"
            );
            continue;
        };
        if is_expired(reject) {
            expired(event);
            continue;
        }
        let letter = letter(&mut dead_letters, event, reject);
        if let Err(err) = dead_letters.append(&letter) {
            tracing::error!(error = %err, "cannot write the dead-letter file");
        }
    }
    if let Err(err) = dead_letters.sync() {
        tracing::error!(error = %err, "cannot sync the dead-letter file");
    }
    dead_letters.count()
}

/// The short code of an indexer reject reason, as dead letters name it.
pub fn reject_code(code: i32) -> &'static str {
    use v1::RejectReason;
    RejectReason::try_from(code).map_or("rejected", |c| match c {
        RejectReason::InvalidJson => "invalid_json",
        RejectReason::NotAuditEvent => "not_an_event",
        RejectReason::InvalidField => "invalid_field",
        RejectReason::TooLarge => "too_large",
        RejectReason::Empty => "empty",
        RejectReason::Expired => "expired",
        RejectReason::StoreRefused => "store_refused",
        RejectReason::Unspecified => "rejected",
    })
}

/// While running, the dead letters of one file that were not logged one by
/// one are summarised at most this often.
pub const SUMMARY_INTERVAL: Duration = Duration::from_mins(1);

/// Whether a line that is not an event looks like a piece of a multi-line
/// (pretty-printed) JSON document, or a list of events, rather than one
/// broken event: a lone `{` or `[`, a line starting with `}` or `]`, a
/// `"key": value` line, an indented line of JSON, a JSON array, or an
/// EventList on one line.
pub fn looks_like_json_fragment(line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let trimmed = line.trim_ascii();
    let Some(&first) = trimmed.first() else {
        return false;
    };
    let indented = line.first().is_some_and(|b| matches!(b, b' ' | b'\t'));
    let key_value = first == b'"' && trimmed.windows(2).any(|w| w == b"\":");
    let event_list = first == b'{'
        && trimmed
            .windows(b"\"EventList\"".len())
            .any(|w| w == b"\"EventList\"");
    trimmed == b"{"
        || matches!(first, b'[' | b'}' | b']')
        || key_value
        || event_list
        || (indented && matches!(first, b'"' | b'{'))
}

/// The reason added to the first dead letter of `file` that
/// [looks like a fragment](looks_like_json_fragment).
pub fn one_event_per_line_hint(file: &str) -> String {
    format!(
        "audit logs hold one JSON event per line, and this line is part of a multi-line \
         (pretty-printed) JSON document or of a list: convert the file first, with \
         `jq -c . {file} > {file}.ndjson` (one event per object), `jq -c '.[]' {file} > \
         {file}.ndjson` for a JSON array of events, or `jq -c '.items[]' {file} > \
         {file}.ndjson` for an EventList"
    )
}

/// The WARN line summarising `count` dead letters of `place` not logged one
/// by one.
pub fn summary_message(
    place: &str,
    count: u64,
    codes: &BTreeMap<String, u64>,
    path: &Path,
) -> String {
    let codes = codes
        .iter()
        .map(|(code, n)| format!("{code}: {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "{count} more lines of {place} were dead-lettered ({codes}), summarised here rather \
         than logged one by one; every one is in {}",
        path.display()
    )
}

/// Dead letters of one file or stream counted since its last log line.
#[derive(Debug, Default)]
struct Unlogged {
    source: String,
    count: u64,
    codes: BTreeMap<String, u64>,
}

/// The append-only dead-letter file.
#[derive(Debug)]
pub struct DeadLetters {
    path: PathBuf,
    file: File,
    unsynced: bool,
    count: u64,
    /// (file or stream, code) whose first dead letter was logged.
    logged: HashSet<(String, String)>,
    /// Per file or stream: dead letters not logged yet.
    unlogged: BTreeMap<String, Unlogged>,
    /// Per file or stream: when its last summary was logged.
    summarised_at: HashMap<String, Instant>,
    /// Files whose first fragment line got the one-event-per-line hint.
    hinted: HashSet<String>,
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
            unlogged: BTreeMap::new(),
            summarised_at: HashMap::new(),
            hinted: HashSet::new(),
        })
    }

    /// Whether `file` is yet to get the one-event-per-line hint (true once).
    pub fn hint_once(&mut self, file: &str) -> bool {
        self.hinted.insert(file.to_owned())
    }

    /// Appends a dead letter; logs the first one per file and reason, and
    /// counts the others for [`DeadLetters::summarise`].
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
                "event dead-lettered (further ones of this file or stream are counted and summarised)"
            );
        } else {
            let unlogged = self.unlogged.entry(place.clone()).or_default();
            letter.source.clone_into(&mut unlogged.source);
            unlogged.count += 1;
            *unlogged.codes.entry(letter.code.clone()).or_default() += 1;
        }
        Ok(())
    }

    /// Logs one WARN line per file or stream with dead letters not logged
    /// yet: every one when `force` (shutdown), else those not summarised in
    /// the last [`SUMMARY_INTERVAL`]. Returns the lines logged.
    pub fn summarise(&mut self, force: bool) -> Vec<String> {
        let now = Instant::now();
        let due: Vec<String> = self
            .unlogged
            .keys()
            .filter(|place| {
                force
                    || self
                        .summarised_at
                        .get(*place)
                        .is_none_or(|at| now.saturating_duration_since(*at) >= SUMMARY_INTERVAL)
            })
            .cloned()
            .collect();
        let mut lines = Vec::new();
        for place in due {
            let Some(unlogged) = self.unlogged.remove(&place) else {
                continue;
            };
            let message = summary_message(&place, unlogged.count, &unlogged.codes, &self.path);
            tracing::warn!(
                source = %unlogged.source,
                place = %place,
                dead_lettered = unlogged.count,
                dead_letters = %self.path.display(),
                "{message}"
            );
            lines.push(message);
            self.summarised_at.insert(place, now);
        }
        lines
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_of_pretty_printed_json_are_told_from_broken_events() {
        for fragment in [
            "{",
            "[",
            "}",
            "},",
            "  ]",
            "\"kind\": \"Event\",",
            "  \"apiVersion\": \"audit.k8s.io/v1\",",
            "    \"system:masters\"",
            "  \"user\": {\r",
            "    {",
            "[{\"kind\":\"Event\"}]",
            "{\"kind\":\"EventList\",\"items\":[]}",
        ] {
            assert!(
                looks_like_json_fragment(fragment.as_bytes()),
                "{fragment:?}"
            );
        }
        for broken in [
            "{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"auditID\":",
            "{this is not json}",
            "E1125 not an audit event",
            "",
            "   ",
            "{}",
            "\"just a string\"",
        ] {
            assert!(!looks_like_json_fragment(broken.as_bytes()), "{broken:?}");
        }
    }

    #[test]
    fn the_hint_says_one_event_per_line_and_how_to_convert() {
        let hint = one_event_per_line_hint("/logs/a.json");
        assert!(hint.starts_with("audit logs hold one JSON event per line"));
        assert!(hint.contains("`jq -c . /logs/a.json > /logs/a.json.ndjson`"));
        assert!(hint.contains("`jq -c '.[]' /logs/a.json > /logs/a.json.ndjson`"));
        assert!(hint.contains("`jq -c '.items[]' /logs/a.json > /logs/a.json.ndjson`"));
    }

    #[test]
    fn a_run_of_dead_letters_is_kept_whole_but_logged_as_first_plus_summary() {
        let dir = tempfile::tempdir().unwrap();
        let mut letters = DeadLetters::open(dir.path()).unwrap();
        let file = Path::new("/logs/a.json");
        for (i, code) in [
            "invalid_json",
            "invalid_json",
            "not_an_event",
            "invalid_json",
        ]
        .iter()
        .enumerate()
        {
            let letter = DeadLetter::new("s", file, i as u64, code, "bad".into(), 3, b"{");
            letters.append(&letter).unwrap();
        }
        letters.sync().unwrap();
        assert_eq!(letters.count(), 4);
        let (page, more) = read_page(letters.path(), None, 0, 10).unwrap();
        assert_eq!((page.len(), more), (4, false), "every dead letter is kept");
        // The first of each reason was logged; the other two are summarised
        // once, then not again until there are new ones.
        let summary = letters.summarise(false);
        assert_eq!(
            summary,
            vec![format!(
                "2 more lines of /logs/a.json were dead-lettered (invalid_json: 2), summarised \
                 here rather than logged one by one; every one is in {}",
                letters.path().display()
            )]
        );
        assert!(letters.summarise(true).is_empty());
        // Within the interval a new run waits for the next summary, unless
        // forced (shutdown).
        let letter = DeadLetter::new("s", file, 9, "invalid_json", "bad".into(), 3, b"{");
        letters.append(&letter).unwrap();
        assert!(letters.summarise(false).is_empty());
        assert_eq!(letters.summarise(true).len(), 1);
        assert!(letters.hint_once("/logs/a.json"));
        assert!(!letters.hint_once("/logs/a.json"));
    }
}
