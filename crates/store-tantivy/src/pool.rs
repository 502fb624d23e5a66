//! The places for open writers, shared by every cluster index of a store.
//!
//! A tantivy writer costs threads (its indexing and merge threads, its
//! segment updater, and the store's writer thread in front of it) and
//! indexing memory whether it writes or not, so one open writer per cluster
//! grew without bound with the number of cluster names (the issue measured
//! 290 of them at 8.3 GB and 1,183 threads, kept across restarts). Here a
//! cluster's writer is opened by its first write and holds one of
//! [`TantivyOptions::max_open_writers`] places: a cluster that needs one
//! while all are taken closes the writer that was asked for least recently
//! (it commits and answers everything queued first), and a writer nobody
//! asked for during [`TantivyOptions::writer_idle_close`] is closed by the
//! store's maintenance thread. The store's threads and indexing memory are
//! therefore bounded by the number of places, whatever the number of
//! clusters; reading never needs a writer.
//!
//! Closing loses nothing and doubles nothing: a writer thread ends only
//! after committing every request it took, each answered after its commit,
//! and the next writer of that index rebuilds its duplicate check from the
//! reloaded committed index (see the `writer` module).

use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use auditrail_store::StoreError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::TantivyOptions;
use crate::writer::ClusterIndex;

/// How long a cluster waiting for a place waits for a writer that is
/// opening or closing before it looks again for one to close.
const RETRY_PLACE: Duration = Duration::from_millis(50);

/// The writer places of one store.
#[derive(Debug)]
pub(crate) struct WriterPool {
    options: TantivyOptions,
    places: Arc<Semaphore>,
    /// Indices that opened a writer (some may have closed it since).
    writing: Mutex<Vec<Weak<ClusterIndex>>>,
}

impl WriterPool {
    pub(crate) fn new(options: TantivyOptions) -> Self {
        Self {
            places: Arc::new(Semaphore::new(options.max_open_writers)),
            options,
            writing: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn options(&self) -> &TantivyOptions {
        &self.options
    }

    /// Notes that `index` opened a writer.
    pub(crate) fn opened(&self, index: &Arc<ClusterIndex>) {
        let mut writing = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        if !writing.iter().any(|w| w.as_ptr() == Arc::as_ptr(index)) {
            writing.push(Arc::downgrade(index));
        }
        drop(writing);
        self.report();
    }

    /// The indices whose writer is open (forgetting the others).
    fn open_indices(&self) -> Vec<Arc<ClusterIndex>> {
        let mut writing = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        let mut open = Vec::with_capacity(writing.len());
        writing.retain(|w| match w.upgrade() {
            Some(index) if index.writer_open() => {
                open.push(index);
                true
            }
            // A writer that is being opened is registered again when done.
            _ => false,
        });
        open
    }

    /// How many writers hold a place (open, or opening).
    pub(crate) fn open_writers(&self) -> usize {
        self.options.max_open_writers - self.places.available_permits()
    }

    /// The number of open writers, as the `store_writers_open` gauge.
    fn report(&self) {
        let open = self.open_writers();
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!("store_writers_open").set(open as f64);
    }

    /// A place for the writer of `cluster`, closing the least recently
    /// asked for writer of another cluster while none is free.
    pub(crate) async fn place_for(
        self: &Arc<Self>,
        cluster: &str,
    ) -> Result<OwnedSemaphorePermit, StoreError> {
        loop {
            if let Ok(place) = Arc::clone(&self.places).try_acquire_owned() {
                return Ok(place);
            }
            let pool = Arc::clone(self);
            let except = cluster.to_owned();
            let freed = tokio::task::spawn_blocking(move || pool.close_least_recent(&except))
                .await
                .map_err(|e| StoreError::Internal(format!("closing a writer failed: {e}")))?;
            if freed {
                continue;
            }
            // Every open writer is opening or closing right now: one of
            // them frees its place soon, or is open and can be closed then.
            if let Ok(place) =
                tokio::time::timeout(RETRY_PLACE, Arc::clone(&self.places).acquire_owned()).await
            {
                return place.map_err(|e| StoreError::Internal(format!("writer places: {e}")));
            }
        }
    }

    /// Closes the open writer (of a cluster other than `except`) that was
    /// asked for least recently. Whether one was closed. Blocking.
    fn close_least_recent(&self, except: &str) -> bool {
        let mut open = self.open_indices();
        open.retain(|index| index.cluster != except);
        open.sort_by_key(|index| index.last_used());
        let closed = open
            .iter()
            .any(|index| index.close_writer(None, "its place was needed by another cluster"));
        self.report();
        closed
    }

    /// Closes the writers nobody asked for during `writer_idle_close`; how
    /// many. Blocking.
    pub(crate) fn close_idle(&self) -> usize {
        let idle = self.options.writer_idle_close;
        if idle.is_zero() {
            return 0;
        }
        let closed = self
            .open_indices()
            .iter()
            .filter(|index| index.close_writer(Some(idle), "idle"))
            .count();
        if closed > 0 {
            self.report();
        }
        closed
    }
}
