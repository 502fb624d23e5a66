//! The store directory: opening it for writing (locked, every cluster index
//! found in it opened) or read-only (beside a writer in another process,
//! new cluster indices discovered by later searches), and creating a
//! cluster's index on its first write within `max_clusters`.
//!
//! Kept apart from reading and writing so that what a directory may hold
//! (cluster names as directory names, the lock file, indices without
//! `meta.json`) is decided in one place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use auditrail_store::{Query, StoreError, valid_cluster_name};
use tantivy::SegmentReader;

use crate::maintenance::{self, Maintenance};
use crate::pool::WriterPool;
use crate::verify_store::verify_indices;
use crate::writer::{ClusterIndex, internal};
use crate::{TantivyOptions, TantivyStore, join_error};

/// What every handle of a [`TantivyStore`] shares: the directory, its
/// lock, the cluster indices found or created in it, and the writer places.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) dir: PathBuf,
    pub(crate) options: TantivyOptions,
    /// The places of open writers (`None`: read-only).
    pub(crate) pool: Option<Arc<WriterPool>>,
    /// The store directory's lock ([`STORE_LOCK`]), held while open for
    /// writing.
    _lock: Option<std::fs::File>,
    indices: RwLock<BTreeMap<String, Arc<ClusterIndex>>>,
    /// Serialises index creation (the map lock is not held during I/O).
    creating: Mutex<()>,
    /// Opened with [`TantivyStore::open_read_only`].
    read_only: bool,
    /// When a read-only store last looked for new cluster indices.
    last_discovery: Mutex<Option<std::time::Instant>>,
}

/// The file a store open for writing locks, so that a second process
/// opening the same directory is refused at once, not at its first write.
const STORE_LOCK: &str = ".auditrail-store.lock";

/// How often a read-only store looks for cluster indices created since.
const DISCOVERY_INTERVAL: Duration = Duration::from_secs(1);

impl TantivyStore {
    /// Opens the store in `dir` (created if missing), with every cluster
    /// index found there (searchable at once; writers are opened by
    /// writes). Another process holding the directory open for writing is
    /// [`StoreError::Unavailable`]. Blocking: call it before serving, or
    /// from `spawn_blocking`.
    pub fn open(dir: &Path, options: TantivyOptions) -> Result<Self, StoreError> {
        options.validate()?;
        std::fs::create_dir_all(dir)
            .map_err(|e| internal(&format!("create {}", dir.display()), e))?;
        let lock = lock_dir(dir)?;
        let mut indices = BTreeMap::new();
        let entries =
            std::fs::read_dir(dir).map_err(|e| internal(&format!("list {}", dir.display()), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| internal(&format!("list {}", dir.display()), e))?;
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            let name = entry.file_name();
            match name.to_str() {
                Some(STORE_LOCK) => {}
                Some(cluster) if is_dir && valid_cluster_name(cluster) => {
                    let index = ClusterIndex::open(cluster, &entry.path())?;
                    indices.insert(cluster.to_owned(), Arc::new(index));
                }
                _ => tracing::warn!(path = %entry.path().display(), "not a cluster index; ignored"),
            }
        }
        tracing::info!(dir = %dir.display(), clusters = indices.len(), "tantivy store opened");
        let inner = Arc::new(Inner {
            dir: dir.to_owned(),
            pool: Some(Arc::new(WriterPool::new(options.clone()))),
            options,
            _lock: Some(lock),
            indices: RwLock::new(indices),
            creating: Mutex::new(()),
            read_only: false,
            last_discovery: Mutex::new(None),
        });
        Self::with_maintenance(inner)
    }

    /// The store around `inner`, with its maintenance thread if it has
    /// work: closing idle writers, verifying the files again.
    fn with_maintenance(inner: Arc<Inner>) -> Result<Self, StoreError> {
        let idle = inner
            .pool
            .as_ref()
            .map_or(Duration::ZERO, |p| p.options().writer_idle_close);
        let verify_every = inner.options.verify_interval;
        let every = [idle, verify_every]
            .into_iter()
            .filter(|d| !d.is_zero())
            .min();
        let maintenance = match every {
            None => None,
            Some(every) => {
                let weak = Arc::downgrade(&inner);
                let mut next_verification = std::time::Instant::now() + verify_every;
                Some(Arc::new(Maintenance::start(
                    maintenance::tick_for(every),
                    move |signal| {
                        let Some(inner) = weak.upgrade() else {
                            return false;
                        };
                        if let Some(pool) = &inner.pool {
                            pool.close_idle();
                        }
                        if !verify_every.is_zero() && std::time::Instant::now() >= next_verification
                        {
                            let indices = inner.expect_verification();
                            let dir = inner.dir.clone();
                            // The indices are held weakly meanwhile.
                            drop(inner);
                            verify_indices(dir, &indices, &|| signal.is_set());
                            next_verification = std::time::Instant::now() + verify_every;
                        }
                        true
                    },
                )?))
            }
        };
        Ok(Self {
            _maintenance: maintenance,
            inner,
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// How many writers are open now (at most
    /// [`TantivyOptions::max_open_writers`]; also the `store_writers_open`
    /// gauge).
    pub fn open_writers(&self) -> usize {
        self.inner.pool.as_ref().map_or(0, |p| p.open_writers())
    }

    /// The clusters that have an index.
    pub fn clusters(&self) -> Vec<String> {
        self.inner.map().keys().cloned().collect()
    }

    /// Opens the store in `dir` for searching only, beside a writer in
    /// another process (the standalone query service next to the indexer):
    /// no index is locked or created, readers reload after the writer's
    /// commits, and cluster indices created later are found by later
    /// searches (the directory is listed at most once a second). Writes,
    /// deletes and retention answer [`StoreError::InvalidRequest`]. A
    /// missing `dir` is an empty store.
    pub fn open_read_only(dir: &Path) -> Result<Self, StoreError> {
        let inner = Arc::new(Inner {
            dir: dir.to_owned(),
            options: TantivyOptions::default(),
            pool: None,
            _lock: None,
            indices: RwLock::new(BTreeMap::new()),
            creating: Mutex::new(()),
            read_only: true,
            last_discovery: Mutex::new(None),
        });
        inner.discover()?;
        let store = Self::with_maintenance(inner)?;
        tracing::info!(dir = %dir.display(), clusters = store.clusters().len(), "tantivy store opened read-only");
        Ok(store)
    }

    /// The indices a query can match.
    pub(crate) fn indices_for(&self, query: &Query) -> Vec<Arc<ClusterIndex>> {
        self.inner.rediscover();
        let map = self.inner.map();
        match crate::query::clusters(query) {
            Some(names) => names.iter().filter_map(|n| map.get(n).cloned()).collect(),
            None => map.values().cloned().collect(),
        }
    }

    pub(crate) fn all_indices(&self) -> Vec<Arc<ClusterIndex>> {
        self.inner.rediscover();
        self.inner.map().values().cloned().collect()
    }

    /// The index of `cluster`, created if needed.
    pub(crate) async fn index_for_write(
        &self,
        cluster: &str,
    ) -> Result<Arc<ClusterIndex>, StoreError> {
        if let Some(index) = self.inner.map().get(cluster) {
            return Ok(Arc::clone(index));
        }
        let inner = Arc::clone(&self.inner);
        let cluster = cluster.to_owned();
        tokio::task::spawn_blocking(move || inner.create(&cluster))
            .await
            .map_err(|e| join_error(&e))?
    }
}

/// Locks the store directory `dir` (see [`STORE_LOCK`]); the kernel
/// releases the lock when the process dies. Blocking.
fn lock_dir(dir: &Path) -> Result<std::fs::File, StoreError> {
    let path = dir.join(STORE_LOCK);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| internal(&format!("open {}", path.display()), e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Unavailable(format!(
            "the store in {} is in use by another writer (another process holds {})",
            dir.display(),
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(internal(&format!("lock {}", path.display()), e))
        }
    }
}

impl Inner {
    /// Every index and its segments as they are now, those segments marked
    /// as waiting for verification (not merged until verified).
    pub(crate) fn expect_verification(&self) -> Vec<(String, std::sync::Weak<ClusterIndex>)> {
        self.map()
            .iter()
            .map(|(cluster, index)| {
                let searcher = index.reader.searcher();
                index.health.expect(
                    searcher
                        .segment_readers()
                        .iter()
                        .map(SegmentReader::segment_id),
                );
                (cluster.clone(), Arc::downgrade(index))
            })
            .collect()
    }

    /// The writer places (a store open for writing has them).
    pub(crate) fn pool(&self) -> Result<&Arc<WriterPool>, StoreError> {
        self.writable()?;
        self.pool
            .as_ref()
            .ok_or_else(|| StoreError::Internal("a writable store without writers".into()))
    }

    fn map(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<ClusterIndex>>> {
        self.indices.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens the cluster indices of the directory not opened yet
    /// (read-only stores only). Blocking, but only a directory listing
    /// unless a new index appeared.
    fn discover(&self) -> Result<(), StoreError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(internal(&format!("list {}", self.dir.display()), e)),
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(cluster) = name.to_str().filter(|c| valid_cluster_name(c)) else {
                continue;
            };
            // An index exists once its writer committed `meta.json`.
            if self.map().contains_key(cluster) || !entry.path().join("meta.json").is_file() {
                continue;
            }
            let index = Arc::new(ClusterIndex::open_reader(cluster, &entry.path())?);
            self.indices
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(cluster.to_owned(), index);
        }
        Ok(())
    }

    /// Refuses writes to a read-only store.
    pub(crate) fn writable(&self) -> Result<(), StoreError> {
        if self.read_only {
            return Err(StoreError::InvalidRequest(format!(
                "the store in {} is open read-only",
                self.dir.display()
            )));
        }
        Ok(())
    }

    /// [`Self::discover`] for read-only stores before a search, at most
    /// once per [`DISCOVERY_INTERVAL`] (searches do not each list the
    /// directory); a failure is logged and the known indices are searched.
    fn rediscover(&self) {
        if !self.read_only {
            return;
        }
        {
            let mut last = self
                .last_discovery
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if last.is_some_and(|t| t.elapsed() < DISCOVERY_INTERVAL) {
                return;
            }
            *last = Some(std::time::Instant::now());
        }
        if let Err(e) = self.discover() {
            tracing::warn!(error = %e, "cannot look for new cluster indices");
        }
    }

    fn create(&self, cluster: &str) -> Result<Arc<ClusterIndex>, StoreError> {
        self.writable()?;
        let _creating = self.creating.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(index) = self.map().get(cluster) {
            return Ok(Arc::clone(index));
        }
        let held = self.map().len();
        if held >= self.options.max_clusters {
            tracing::warn!(
                cluster,
                held,
                max_clusters = self.options.max_clusters,
                "refused a new cluster index: the store holds its most"
            );
            return Err(StoreError::LimitReached(format!(
                "the store holds {held} cluster indices, its most (max_clusters); events of \
                 a new cluster {cluster:?} are refused until the limit is raised"
            )));
        }
        let index = Arc::new(ClusterIndex::open(cluster, &self.dir.join(cluster))?);
        tracing::info!(cluster, "created cluster index");
        self.indices
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(cluster.to_owned(), Arc::clone(&index));
        Ok(index)
    }
}
