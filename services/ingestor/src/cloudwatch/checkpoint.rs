//! Per-stream resume positions of a CloudWatch source, in one file per
//! source, replaced atomically (write, fsync, rename) after each
//! acknowledged page.
//!
//! A stream's position is the `nextForwardToken` after its last acknowledged
//! page, together with the `startTime` the token chain began with (tokens
//! are relative to the query they came from, so both are sent again). The
//! file also remembers where the source's very first run began, so that a
//! restart before every stream was read begins those streams at the same
//! place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use auditrail_filetail::{CheckpointError, load_versioned, save_versioned};
use serde::{Deserialize, Serialize};

/// Format version of the file.
const FORMAT_VERSION: u32 = 1;

/// Where one stream is read up to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamPosition {
    /// The `nextForwardToken` to resume from.
    pub next_token: Option<String>,
    /// The `startTime` (ms since the epoch) of the token chain.
    pub start_time_ms: Option<i64>,
    /// Position id of the last acknowledged event (see
    /// [`super::source::event_id`]).
    pub last_event_id: Option<String>,
    /// Timestamp (ms since the epoch) of the last acknowledged event.
    pub last_event_time_ms: Option<i64>,
    /// When the position was last written.
    pub updated_at: Option<jiff::Timestamp>,
}

/// Everything a CloudWatch source resumes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcePositions {
    /// Where streams without a position begin (ms since the epoch; `None`:
    /// at their start). Decided once, at the source's first run.
    pub initial_start_ms: Option<i64>,
    /// Per stream name.
    pub streams: BTreeMap<String, StreamPosition>,
}

/// The file of one source's positions.
#[derive(Debug, Clone)]
pub struct PositionStore {
    path: PathBuf,
}

impl PositionStore {
    /// The store for the source named `source` in `data_dir`.
    pub fn new(data_dir: &Path, source: &str) -> Self {
        let hash = blake3::hash(source.as_bytes()).to_hex();
        Self {
            path: data_dir.join(format!("cloudwatch-{}.json", &hash.as_str()[..16])),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved positions, `None` before the source's first run. An
    /// unreadable file is an error, never an empty start (which would
    /// re-read or skip).
    pub fn load(&self) -> Result<Option<SourcePositions>, CheckpointError> {
        load_versioned(&self.path, FORMAT_VERSION)
    }

    /// Replaces the file with `positions`.
    pub fn save(&self, positions: &SourcePositions) -> Result<(), CheckpointError> {
        save_versioned(&self.path, FORMAT_VERSION, positions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_and_corruption_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = PositionStore::new(dir.path(), "cloudwatch:/aws/eks/x/cluster");
        assert_eq!(store.load().unwrap(), None);
        let mut positions = SourcePositions {
            initial_start_ms: Some(1_700_000_000_000),
            ..SourcePositions::default()
        };
        positions.streams.insert(
            "kube-apiserver-audit-a".into(),
            StreamPosition {
                next_token: Some("f/0001".into()),
                start_time_ms: Some(1_700_000_000_000),
                last_event_id: Some("1700000000001-1700000000002-0".into()),
                last_event_time_ms: Some(1_700_000_000_001),
                updated_at: Some(jiff::Timestamp::UNIX_EPOCH),
            },
        );
        store.save(&positions).unwrap();
        assert_eq!(store.load().unwrap(), Some(positions));

        std::fs::write(store.path(), b"{\"version\":1,").unwrap();
        assert!(matches!(store.load(), Err(CheckpointError::Corrupt { .. })));
        std::fs::write(store.path(), b"{\"version\":9,\"streams\":{}}").unwrap();
        assert!(matches!(
            store.load(),
            Err(CheckpointError::UnsupportedVersion { version: 9, .. })
        ));
    }
}
