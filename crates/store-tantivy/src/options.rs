//! The store's settings and their limits.
//!
//! [`TantivyOptions`] bounds what the writers may use (threads, indexing
//! memory, open writers, clusters) and when they commit and close; its
//! values are checked when the store opens, against what tantivy accepts,
//! so that a bad setting is refused at start rather than at the first write.

use std::time::Duration;

use auditrail_store::StoreError;

/// Settings of a [`crate::TantivyStore`]. The writer settings apply to each open
/// writer; at most `max_open_writers` are open at once, whatever the number
/// of clusters, so the store's writers use at most `max_open_writers` ×
/// (`writer_threads` + `merge_threads` + 2) threads and `max_open_writers`
/// × `writer_memory_bytes` of indexing memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TantivyOptions {
    /// Commit once this many documents are pending (default 50 000).
    pub commit_max_docs: usize,
    /// Commit at the latest this long after the first pending document was
    /// added, even if more writes are queued (default 200 ms).
    pub commit_max_delay: Duration,
    /// Indexing memory of each open writer, split between its threads
    /// (default 128 MiB; at least 15 MB per thread).
    pub writer_memory_bytes: usize,
    /// Indexing threads of each open writer (default 1).
    pub writer_threads: usize,
    /// Segment-merging threads of each open writer (default 1).
    pub merge_threads: usize,
    /// Most cluster indices the store holds (default 64). Any writer of the
    /// store can send new cluster names, and each index keeps a directory
    /// and a reader open; a write that would create one more is refused
    /// ([`StoreError::LimitReached`]).
    pub max_clusters: usize,
    /// Most writers open at once, over all clusters (default 4). A cluster
    /// writing while all are taken closes the writer asked for least
    /// recently (after it committed everything it took).
    pub max_open_writers: usize,
    /// A writer nobody asked for this long is committed and closed, giving
    /// back its threads and memory; the next write opens it again (default
    /// 5 minutes; zero: kept open until its place is needed).
    pub writer_idle_close: Duration,
    /// How often the store's files are verified again after the check at
    /// start ([`crate::TantivyStore::verify_in_background`]), by the store's own
    /// thread (default 6 hours; zero: never).
    pub verify_interval: Duration,
}

impl Default for TantivyOptions {
    fn default() -> Self {
        Self {
            commit_max_docs: 50_000,
            commit_max_delay: Duration::from_millis(200),
            writer_memory_bytes: 128 << 20,
            writer_threads: 1,
            merge_threads: 1,
            max_clusters: 64,
            max_open_writers: 4,
            writer_idle_close: Duration::from_mins(5),
            verify_interval: Duration::from_hours(6),
        }
    }
}

/// Tantivy's smallest indexing memory per writer thread.
const MIN_MEMORY_PER_THREAD: usize = 15_000_000;
/// Tantivy's largest indexing memory per writer thread (just under 4 GB).
const MAX_MEMORY_PER_THREAD: usize = u32::MAX as usize - MIN_MEMORY_PER_THREAD;

impl TantivyOptions {
    pub(crate) fn validate(&self) -> Result<(), StoreError> {
        let invalid = |m: String| Err(StoreError::InvalidRequest(m));
        if self.commit_max_docs == 0 {
            return invalid("commit_max_docs must be at least 1".into());
        }
        if self.writer_threads == 0 || self.merge_threads == 0 || self.max_open_writers == 0 {
            return invalid(
                "writer_threads, merge_threads and max_open_writers must be at least 1".into(),
            );
        }
        let per_thread = self.writer_memory_bytes / self.writer_threads;
        if !(MIN_MEMORY_PER_THREAD..=MAX_MEMORY_PER_THREAD).contains(&per_thread) {
            return invalid(format!(
                "writer_memory_bytes / writer_threads is {per_thread}; tantivy needs \
                 {MIN_MEMORY_PER_THREAD} to {MAX_MEMORY_PER_THREAD} bytes per thread"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked() {
        assert!(TantivyOptions::default().validate().is_ok());
        let small = TantivyOptions {
            writer_memory_bytes: 20 << 20,
            writer_threads: 2,
            ..TantivyOptions::default()
        };
        assert!(matches!(
            small.validate(),
            Err(StoreError::InvalidRequest(_))
        ));
        let zero = TantivyOptions {
            commit_max_docs: 0,
            ..TantivyOptions::default()
        };
        assert!(zero.validate().is_err());
    }
}
