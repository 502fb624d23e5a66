//! Step 6 of a poll: reading complete lines, group by group (a live file
//! with its backups), backups before the live file, within a byte budget,
//! with the first group rotated so that one busy log cannot starve another.

use std::time::Instant;

use super::Follower;
use super::tracked::{Phase, Tracked};
use super::types::Record;
use crate::identity::FileKey;
use crate::read::{Budget, ReadLimits, read_lines};
use crate::scan::Group;

impl Follower {
    /// Followed files in reading order: per group (watch and live file),
    /// gone files first, then backups by name, then the live file.
    pub(super) fn ordered_keys(&self, include: impl Fn(&Tracked) -> bool) -> Vec<FileKey> {
        let mut files: Vec<&Tracked> = self.files.values().filter(|t| include(t)).collect();
        files.sort_by(|a, b| {
            (a.watch, &a.group, a.rank(), a.path.file_name(), a.seq).cmp(&(
                b.watch,
                &b.group,
                b.rank(),
                b.path.file_name(),
                b.seq,
            ))
        });
        files.into_iter().map(|t| t.key).collect()
    }

    pub(super) fn read(&mut self, max_bytes: usize, now: Instant) -> Vec<Record> {
        let ordered = self.ordered_keys(|t| {
            matches!(t.phase, Phase::Reading | Phase::Pending { .. }) && !t.awaiting_copy
        });
        let mut groups: Vec<Vec<FileKey>> = Vec::new();
        let mut last_group: Option<(usize, &Group)> = None;
        let mut blocked = false;
        for key in &ordered {
            let Some(t) = self.files.get(key) else {
                continue;
            };
            let g = (t.watch, &t.group);
            if last_group != Some(g) {
                groups.push(Vec::new());
                last_group = Some(g);
                blocked = false;
            }
            // A backup not placed yet holds back the newer files of its
            // group, so that lines still come oldest first.
            blocked |= matches!(t.phase, Phase::Pending { .. });
            if !blocked && let Some(group) = groups.last_mut() {
                group.push(*key);
            }
        }
        let mut out = Vec::new();
        if groups.is_empty() {
            return out;
        }
        // Rotate which group goes first so that one busy log cannot starve
        // the others.
        let first = self.group_cursor % groups.len();
        self.group_cursor = self.group_cursor.wrapping_add(1);
        let mut budget = Budget::new(max_bytes);
        let grace = self.options.partial_line_grace;
        let max_line_bytes = self.options.max_line_bytes;
        'groups: for i in 0..groups.len() {
            for key in &groups[(first + i) % groups.len()] {
                let Some(t) = self.files.get_mut(key) else {
                    continue;
                };
                if t.cursor.offset >= t.size && t.cursor.skip_to.is_none() {
                    t.unterminated = 0;
                    continue;
                }
                let limits = ReadLimits {
                    limit: t.size,
                    max_line_bytes,
                    flush_tail: t.finished(now, grace),
                };
                let identity = &t.identity;
                let path = &t.path;
                let result = read_lines(
                    &t.file,
                    &mut t.cursor,
                    &limits,
                    &mut budget,
                    &mut self.scratch,
                    &mut |offset, end, kind| {
                        out.push(Record {
                            identity: identity.clone(),
                            path: path.clone(),
                            offset,
                            end,
                            kind,
                        });
                    },
                );
                match result {
                    Ok(true) => t.unterminated = limits.limit.saturating_sub(t.cursor.offset),
                    Ok(false) => t.unterminated = 0,
                    Err(e) => t.set_error("cannot read", &e),
                }
                if budget.exhausted() {
                    break 'groups;
                }
            }
        }
        out
    }
}
