//! Turning bytes into events: one line of an audit log, or one `EventList`.
//!
//! A parsed event is a typed view *plus* the exact bytes it came from (without
//! the line terminator). The bytes are what gets stored and hashed into the
//! event id, so unknown fields are never dropped and an export reproduces the
//! API server's output byte for byte.
//!
//! Errors say what was wrong and where (a byte offset into the input), because
//! the ingestor writes them to a dead-letter file that a person will read.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::model::{ApiVersion, Event, EventKind};

/// A successfully parsed event: the typed view and the bytes it borrows from.
#[derive(Debug, Clone)]
pub struct ParsedEvent<'a> {
    /// The typed view of the indexed fields.
    pub event: Event<'a>,
    /// The original JSON of the event, without any line terminator.
    pub raw: &'a [u8],
}

/// Why an input was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParseErrorKind {
    /// The line holds nothing but white space.
    Empty,
    /// The line is not valid UTF-8 (JSON must be).
    NotUtf8,
    /// The line is not valid JSON (including a line cut short).
    InvalidJson,
    /// Valid JSON, but not an audit event: not an object, or a `kind` other
    /// than `Event`, or an `apiVersion` other than `audit.k8s.io/v1` and
    /// `v1beta1`.
    NotAnEvent,
    /// An audit event (`kind: Event` of a known `apiVersion`) with a field
    /// that is missing or malformed: no `auditID`, a level or stage that does
    /// not exist, a timestamp that is not RFC 3339, a number for a string.
    InvalidField,
}

impl ParseErrorKind {
    /// A short, stable name for metrics labels and dead-letter records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::NotUtf8 => "not_utf8",
            Self::InvalidJson => "invalid_json",
            Self::NotAnEvent => "not_an_event",
            Self::InvalidField => "invalid_field",
        }
    }
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An input that is not an audit event, with the reason and the byte offset
/// (into the input as given, terminator included) where parsing failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at byte {offset}: {message}")]
pub struct ParseError {
    /// The class of failure.
    pub kind: ParseErrorKind,
    /// Byte offset of the first offending byte (or the end, for a cut line).
    pub offset: usize,
    /// What was expected and what was found.
    pub message: String,
}

impl ParseError {
    fn new(kind: ParseErrorKind, offset: usize, message: impl Into<String>) -> Self {
        Self {
            kind,
            offset,
            message: message.into(),
        }
    }

    /// Converts a serde_json error on `input` into a [`ParseError`], turning
    /// its line and column into a byte offset relative to `base`.
    fn from_json(err: &serde_json::Error, input: &[u8], base: usize) -> Self {
        let kind = match err.classify() {
            serde_json::error::Category::Data if claims_to_be_an_event(input) => {
                ParseErrorKind::InvalidField
            }
            serde_json::error::Category::Data => ParseErrorKind::NotAnEvent,
            _ => ParseErrorKind::InvalidJson,
        };
        let offset = base + byte_offset(input, err.line(), err.column());
        let full = err.to_string();
        // serde_json appends " at line L column C"; the offset replaces it.
        let message = match full.rfind(" at line ") {
            Some(cut) if err.line() > 0 => full[..cut].to_owned(),
            _ => full,
        };
        Self::new(kind, offset, message)
    }
}

/// Whether `input` (valid JSON that failed to read as an event) is an
/// object saying `"kind": "Event"` with no `apiVersion` or a known one: its
/// failure is then a missing or malformed field, not a different document.
fn claims_to_be_an_event(input: &[u8]) -> bool {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Head<'a> {
        #[serde(default, borrow)]
        kind: Option<Cow<'a, str>>,
        #[serde(default, borrow)]
        api_version: Option<Cow<'a, str>>,
    }
    match serde_json::from_slice::<Head<'_>>(input) {
        Ok(head) => {
            head.kind.as_deref() == Some(EventKind::NAME)
                && head.api_version.as_deref().is_none_or(|v| {
                    [ApiVersion::V1.as_str(), ApiVersion::V1Beta1.as_str()].contains(&v)
                })
        }
        Err(_) => false,
    }
}

/// Byte offset of serde_json's (1-based line, column) position in `input`.
/// serde_json counts columns in bytes and reports the column just past the
/// offending byte, hence the `- 1`.
fn byte_offset(input: &[u8], line: usize, column: usize) -> usize {
    if line == 0 {
        return 0;
    }
    // The start of line `line` is just past the (line - 1)th newline.
    let line_start = match line.checked_sub(2) {
        None => 0,
        Some(newlines_before) => input
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'\n')
            .nth(newlines_before)
            .map_or(0, |(i, _)| i + 1),
    };
    (line_start + column.saturating_sub(1)).min(input.len())
}

/// Strips one trailing `\n` or `\r\n` (a lone trailing `\r` too).
fn strip_terminator(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Parses one line of an audit log (one JSON `Event`), with or without its
/// line terminator.
///
/// The returned [`ParsedEvent::raw`] is the line without its terminator, so
/// the same event read from a CRLF file and an LF file has the same bytes and
/// therefore the same id.
pub fn parse_line(line: &[u8]) -> Result<ParsedEvent<'_>, ParseError> {
    let raw = strip_terminator(line);
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::new(
            ParseErrorKind::Empty,
            0,
            "empty line: expected a JSON audit event",
        ));
    }
    let text = std::str::from_utf8(raw).map_err(|e| {
        ParseError::new(
            ParseErrorKind::NotUtf8,
            e.valid_up_to(),
            "invalid UTF-8 sequence: audit events are JSON, which must be UTF-8",
        )
    })?;
    let event: Event<'_> =
        serde_json::from_str(text).map_err(|e| ParseError::from_json(&e, raw, 0))?;
    Ok(ParsedEvent { event, raw })
}

#[derive(Deserialize)]
struct EventListDoc<'a> {
    kind: &'a str,
    #[serde(default, borrow)]
    items: Vec<&'a RawValue>,
}

/// Parses an `audit.k8s.io` `EventList` document (what `kubectl` and audit
/// webhooks exchange), returning each item with its own original bytes.
///
/// The first item that is not a valid event fails the whole list: a list is
/// one document, and silently dropping part of it would lose events.
pub fn parse_event_list(input: &[u8]) -> Result<Vec<ParsedEvent<'_>>, ParseError> {
    let text = std::str::from_utf8(input).map_err(|e| {
        ParseError::new(
            ParseErrorKind::NotUtf8,
            e.valid_up_to(),
            "invalid UTF-8 sequence: audit events are JSON, which must be UTF-8",
        )
    })?;
    let doc: EventListDoc<'_> =
        serde_json::from_str(text).map_err(|e| ParseError::from_json(&e, input, 0))?;
    if doc.kind != "EventList" {
        return Err(ParseError::new(
            ParseErrorKind::NotAnEvent,
            0,
            format!("kind is {:?}, expected \"EventList\"", doc.kind),
        ));
    }
    doc.items
        .into_iter()
        .map(|item| {
            let raw = item.get().as_bytes();
            // The item borrows from `input`, so its position is a pointer offset.
            let base = (raw.as_ptr() as usize).saturating_sub(input.as_ptr() as usize);
            serde_json::from_str::<Event<'_>>(item.get())
                .map(|event| ParsedEvent { event, raw })
                .map_err(|e| ParseError::from_json(&e, raw, base))
        })
        .collect()
}
