//! How a stored event arrived: where the ingestor read it and who sent it.
//!
//! An event's id and fields come from its original bytes, which anyone
//! allowed to ingest can write: a forged "alice deleted a NetworkPolicy"
//! looks exactly like a real one. Its provenance, recorded by the indexer
//! beside the bytes and never inside them, shows how it came: the source
//! and position the ingestor named, and the identity the indexer
//! authenticated. Stores keep it as compact JSON (the same JSON exports
//! show), so every backend stores it the same way.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The provenance of one stored event. Its JSON (what stores keep and
/// exports with provenance show) is documented at
/// `auditrail.v1.ExportRequest.with_provenance`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Provenance {
    /// The ingestor source's name, as the ingestor said; empty when none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// Where the source read the event, as the ingestor said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
    /// The authenticated identity that sent the batch (`anonymous` without
    /// access control).
    pub ingested_by: String,
    /// The groups of that identity.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingested_by_groups: Vec<String>,
    /// The network address the batch came from; empty when unknown.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ingested_from: String,
    /// When the indexer stored the event.
    pub ingested_at: Timestamp,
}

/// Where in its source an event was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Position {
    /// A line of a log file.
    #[serde(rename_all = "camelCase")]
    File {
        /// The file's path when the line was read.
        path: String,
        /// The file's inode (0 when unknown).
        inode: u64,
        /// Byte offset of the line's start.
        offset: u64,
    },
    /// An event of a CloudWatch Logs stream.
    #[serde(rename_all = "camelCase")]
    Cloudwatch {
        /// The log group.
        log_group: String,
        /// The log stream.
        log_stream: String,
        /// The event's position in the stream.
        event_id: String,
    },
}

/// A stored provenance that does not read back.
#[derive(Debug, thiserror::Error)]
#[error("stored provenance is not readable: {0}")]
pub struct ProvenanceError(#[from] serde_json::Error);

impl Provenance {
    /// The compact JSON stores keep.
    pub fn to_json(&self) -> String {
        // Serializing plain strings, numbers and a timestamp cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads back what [`Provenance::to_json`] wrote.
    pub fn from_json(json: &str) -> Result<Self, ProvenanceError> {
        Ok(serde_json::from_str(json)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_in_the_documented_shape() {
        let p = Provenance {
            source: "kube-audit".into(),
            position: Some(Position::File {
                path: "/var/log/calico/audit/kube-audit.log".into(),
                inode: 42,
                offset: 1234,
            }),
            ingested_by: "ingestor".into(),
            ingested_by_groups: vec!["auditrail:ingestors".into()],
            ingested_from: "10.0.0.7:51234".into(),
            ingested_at: "2026-12-05T10:00:00Z".parse().expect("time"),
        };
        let json = p.to_json();
        assert_eq!(
            json,
            r#"{"source":"kube-audit","position":{"file":{"path":"/var/log/calico/audit/kube-audit.log","inode":42,"offset":1234}},"ingestedBy":"ingestor","ingestedByGroups":["auditrail:ingestors"],"ingestedFrom":"10.0.0.7:51234","ingestedAt":"2026-12-05T10:00:00Z"}"#
        );
        assert_eq!(Provenance::from_json(&json).expect("reads back"), p);
        let cw = Provenance {
            source: String::new(),
            position: Some(Position::Cloudwatch {
                log_group: "/aws/eks/a/cluster".into(),
                log_stream: "kube-apiserver-audit-1".into(),
                event_id: "1-2-3".into(),
            }),
            ingested_by_groups: Vec::new(),
            ingested_from: String::new(),
            ..p
        };
        assert!(
            cw.to_json()
                .contains(r#""cloudwatch":{"logGroup":"/aws/eks/a/cluster","logStream""#)
        );
        assert_eq!(
            Provenance::from_json(&cw.to_json()).expect("reads back"),
            cw
        );
    }

    #[test]
    fn damaged_json_is_an_error() {
        let err = Provenance::from_json(r#"{"ingestedBy":"x"}"#).expect_err("no time");
        assert!(err.to_string().contains("ingestedAt"), "{err}");
    }
}
