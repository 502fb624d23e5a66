//! Splitting a file into lines from an offset, in bounded memory.
//!
//! Reads are positional (`read_at`) in fixed chunks, so a file is never
//! loaded whole and a reader never disturbs another's position. Only complete
//! lines are produced; a trailing partial line is left for the next poll
//! (the offset stays at its start) unless the caller says the file is
//! finished. A line longer than the limit is scanned, not buffered: it costs
//! one chunk of memory however long it is, and its scan can pause across
//! polls.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use crate::follower::RecordKind;
use crate::identity::to_u64;

/// Bytes read per `read_at`.
const CHUNK: usize = 64 * 1024;

/// Where reading a file resumes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Cursor {
    /// Start of the next line (just after the last returned one).
    pub(crate) offset: u64,
    /// Inside a too-long line starting at `offset`: how far it has been
    /// scanned without finding its end.
    pub(crate) skip_to: Option<u64>,
}

/// How many more bytes a poll may return.
#[derive(Debug)]
pub(crate) struct Budget {
    remaining: usize,
}

impl Budget {
    pub(crate) fn new(max_bytes: usize) -> Self {
        Self {
            remaining: max_bytes.max(1),
        }
    }

    pub(crate) fn exhausted(&self) -> bool {
        self.remaining == 0
    }

    fn consume(&mut self, bytes: u64) {
        let bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
        self.remaining = self.remaining.saturating_sub(bytes);
    }
}

/// What to read and how.
pub(crate) struct ReadLimits {
    /// Read up to this offset (the size seen by this poll's `fstat`).
    pub(crate) limit: u64,
    /// Lines longer than this become [`RecordKind::TooLong`].
    pub(crate) max_line_bytes: usize,
    /// The file is finished: return a trailing partial line too.
    pub(crate) flush_tail: bool,
}

/// Reads lines from `cursor` to `limits.limit`, calling `emit(offset, end,
/// kind)` for each and advancing `cursor` past it. Stops at a line boundary
/// once `budget` is exhausted. On error the cursor stays after the last
/// emitted line. Returns whether everything up to `limits.limit` was
/// scanned: then the bytes from the cursor to the limit are one line still
/// waiting for its `\n` (none when the cursor is at the limit).
pub(crate) fn read_lines(
    file: &File,
    cursor: &mut Cursor,
    limits: &ReadLimits,
    budget: &mut Budget,
    scratch: &mut Vec<u8>,
    emit: &mut dyn FnMut(u64, u64, RecordKind),
) -> io::Result<bool> {
    scratch.resize(CHUNK, 0);
    let max = limits.max_line_bytes;
    let mut line_start = cursor.offset;
    let mut skipping = cursor.skip_to.is_some();
    let mut pos = cursor.skip_to.unwrap_or(cursor.offset).max(cursor.offset);
    let mut line: Vec<u8> = Vec::new();

    while pos < limits.limit {
        if budget.exhausted() {
            if skipping {
                cursor.skip_to = Some(pos);
                return Ok(false);
            }
            if pos == line_start {
                return Ok(false);
            }
        }
        let want = usize::try_from(limits.limit - pos).map_or(CHUNK, |n| n.min(CHUNK));
        let n = match file.read_at(&mut scratch[..want], pos) {
            Ok(0) => break, // shrank under us: the next poll sees the truncation
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut chunk = &scratch[..n];
        let mut chunk_pos = pos;
        while let Some(i) = memchr::memchr(b'\n', chunk) {
            let end = chunk_pos + to_u64(i) + 1;
            let kind = if skipping || line.len() + i > max {
                RecordKind::TooLong {
                    len: end - 1 - line_start,
                }
            } else {
                line.extend_from_slice(&chunk[..i]);
                RecordKind::Line(std::mem::take(&mut line))
            };
            emit(line_start, end, kind);
            budget.consume(end - line_start);
            line.clear();
            skipping = false;
            line_start = end;
            *cursor = Cursor {
                offset: end,
                skip_to: None,
            };
            chunk = &chunk[i + 1..];
            chunk_pos = end;
            if budget.exhausted() {
                return Ok(end >= limits.limit);
            }
        }
        if !skipping {
            if line.len() + chunk.len() > max {
                skipping = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        if skipping {
            // Scanning a huge line is work too: let it pause across polls.
            budget.consume(to_u64(chunk.len()));
        }
        pos = chunk_pos + to_u64(chunk.len());
    }

    if pos > line_start {
        if limits.flush_tail && pos >= limits.limit {
            let kind = if skipping {
                RecordKind::TooLong {
                    len: pos - line_start,
                }
            } else {
                RecordKind::Line(line)
            };
            emit(line_start, pos, kind);
            budget.consume(pos - line_start);
            *cursor = Cursor {
                offset: pos,
                skip_to: None,
            };
        } else if skipping {
            cursor.skip_to = Some(pos);
        }
    }
    Ok(pos >= limits.limit)
}

/// The offset just after the last newline before `size` (0 if none): where
/// to start so that a partial last line is still returned once complete.
pub(crate) fn last_line_end(file: &File, size: u64) -> io::Result<u64> {
    let mut buf = vec![0; CHUNK];
    let mut end = size;
    while end > 0 {
        let start = end.saturating_sub(to_u64(CHUNK));
        let len = usize::try_from(end - start).unwrap_or(CHUNK);
        file.read_exact_at(&mut buf[..len], start)?;
        if let Some(i) = buf[..len].iter().rposition(|&b| b == b'\n') {
            return Ok(start + to_u64(i) + 1);
        }
        end = start;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn collect(
        content: &[u8],
        cursor: &mut Cursor,
        max: usize,
        budget: usize,
        flush: bool,
    ) -> Vec<(u64, u64, RecordKind)> {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(content).unwrap();
        let mut out = Vec::new();
        let mut budget = Budget::new(budget);
        read_lines(
            &f,
            cursor,
            &ReadLimits {
                limit: content.len() as u64,
                max_line_bytes: max,
                flush_tail: flush,
            },
            &mut budget,
            &mut Vec::new(),
            &mut |o, e, k| out.push((o, e, k)),
        )
        .unwrap();
        out
    }

    #[test]
    fn scanning_to_the_end_is_told_so_a_partial_tail_can_be_measured() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"aaaa\nbbbb\ncc").unwrap();
        let read = |cursor: &mut Cursor, budget: usize| {
            read_lines(
                &f,
                cursor,
                &ReadLimits {
                    limit: 12,
                    max_line_bytes: 100,
                    flush_tail: false,
                },
                &mut Budget::new(budget),
                &mut Vec::new(),
                &mut |_, _, _| {},
            )
            .unwrap()
        };
        let mut cursor = Cursor::default();
        assert!(
            !read(&mut cursor, 5),
            "the budget stopped it after one line"
        );
        assert_eq!(cursor.offset, 5);
        assert!(read(&mut cursor, 1000));
        assert_eq!(12 - cursor.offset, 2, "two bytes wait for their newline");
    }

    #[test]
    fn partial_line_is_left_unless_flushed() {
        let mut cursor = Cursor::default();
        let out = collect(b"a\nbc", &mut cursor, 100, 1000, false);
        assert_eq!(out, vec![(0, 2, RecordKind::Line(b"a".to_vec()))]);
        assert_eq!(cursor.offset, 2);
        let out = collect(b"a\nbc", &mut cursor, 100, 1000, true);
        assert_eq!(out, vec![(2, 4, RecordKind::Line(b"bc".to_vec()))]);
        assert_eq!(cursor.offset, 4);
    }

    #[test]
    fn budget_stops_at_a_line_boundary() {
        let mut cursor = Cursor::default();
        let out = collect(b"aaaa\nbbbb\ncccc\n", &mut cursor, 100, 6, false);
        assert_eq!(
            out.len(),
            2,
            "first line leaves 1 byte of budget, second one is whole"
        );
        assert_eq!(cursor.offset, 10);
    }

    #[test]
    fn too_long_scan_pauses_across_calls() {
        let mut content = vec![b'x'; 3 * CHUNK];
        content.extend_from_slice(b"\nok\n");
        let mut cursor = Cursor::default();
        let out = collect(&content, &mut cursor, 10, CHUNK, false);
        assert!(out.is_empty());
        assert!(cursor.skip_to.is_some());
        assert_eq!(cursor.offset, 0);
        let mut all = Vec::new();
        for _ in 0..5 {
            all.extend(collect(&content, &mut cursor, 10, CHUNK, false));
        }
        let len = 3 * CHUNK as u64;
        assert_eq!(
            all,
            vec![
                (0, len + 1, RecordKind::TooLong { len }),
                (len + 1, len + 4, RecordKind::Line(b"ok".to_vec())),
            ]
        );
    }

    #[test]
    fn last_line_end_finds_the_last_newline() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"a\nb\npartial").unwrap();
        assert_eq!(last_line_end(&f, 11).unwrap(), 4);
        assert_eq!(last_line_end(&f, 4).unwrap(), 4);
        assert_eq!(last_line_end(&f, 1).unwrap(), 0);
    }
}
