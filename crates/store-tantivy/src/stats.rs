//! Statistics: per cluster and event type, how many events, their time
//! span, and the index's size on disk (reported on both types, since the
//! types share one index).

use std::path::Path;

use auditrail_event::EventType;
use auditrail_store::{IndexStats, StoreError};
use tantivy::Term;
use tantivy::collector::Count;
use tantivy::query::TermQuery;
use tantivy::schema::IndexRecordOption;

use crate::collect::TimeSpan;
use crate::read::View;
use crate::schema::{fields, timestamp};
use crate::writer::{ClusterIndex, internal};

/// The statistics of one cluster index: per event type with events, its
/// count and time span, and the size of the whole index directory.
pub(crate) fn stats_blocking(index: &ClusterIndex) -> Result<Vec<IndexStats>, StoreError> {
    let size_bytes = dir_size(&index.path)?;
    let view = View::of(index);
    let mut stats = Vec::new();
    for event_type in EventType::ALL {
        let query = TermQuery::new(
            Term::from_field_text(fields().event_type, event_type.as_str()),
            IndexRecordOption::Basic,
        );
        let (events, span) = view
            .collect(&query, &(Count, TimeSpan))
            .map_err(|e| internal("stats", e))?;
        if events == 0 {
            continue;
        }
        stats.push(IndexStats {
            cluster: index.cluster.clone(),
            event_type,
            events: events as u64,
            oldest: span.and_then(|(lo, _)| timestamp(lo)),
            newest: span.and_then(|(_, hi)| timestamp(hi)),
            size_bytes,
        });
    }
    Ok(stats)
}

/// Total size of the files in `dir` (tantivy's directories are flat).
fn dir_size(dir: &Path) -> Result<u64, StoreError> {
    let mut size = 0;
    let entries =
        std::fs::read_dir(dir).map_err(|e| internal(&format!("list {}", dir.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| internal(&format!("list {}", dir.display()), e))?;
        // A file removed by garbage collection meanwhile counts as empty.
        if let Ok(meta) = entry.metadata()
            && meta.is_file()
        {
            size += meta.len();
        }
    }
    Ok(size)
}
