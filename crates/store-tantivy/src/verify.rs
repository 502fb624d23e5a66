//! Verification of the index files: every file of every segment is checked
//! against the CRC32 that tantivy writes in its footer, and a damaged
//! segment is described by what can still be read from its undamaged files.
//!
//! A flipped byte in a doc store (`.store`) makes reading its events fail or
//! return other bytes; in a fast-field file (`.fast`) it silently changes
//! times and ids, so results come out reordered or filtered wrongly. Neither
//! is noticed when an index opens (tantivy reads files lazily), so the store
//! verifies them: in the background when a server opens it
//! ([`crate::TantivyStore::verify_in_background`]) and again every
//! [`crate::TantivyOptions::verify_interval`] (the store's maintenance
//! thread), and offline with
//! [`crate::TantivyStore::verify_dir`] (`auditrail store verify`).
//!
//! **What is reported** per damaged segment: the cluster, the segment id
//! (tantivy's UUID, the prefix of its files), the damaged files and why
//! (checksum mismatch, missing, unreadable), the documents its metadata
//! counts, and the time range it covers: the minimum and maximum of the
//! `time` fast column when `.fast` is intact, else the times stored with
//! the documents when `.store` is intact, else unknown. Damaged files are
//! never read for the report, and nothing is ever deleted or rewritten.

use std::collections::{BTreeMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock};

use auditrail_store::{Damage, DamagedFile, StoreError};
use jiff::Timestamp;
use tantivy::columnar::{ColumnarReader, DynamicColumn};
use tantivy::directory::error::OpenReadError;
use tantivy::index::SegmentId;
use tantivy::schema::OwnedValue;
use tantivy::schema::document::{DeserializeError, DocumentDeserialize, DocumentDeserializer};
use tantivy::store::StoreReader;
use tantivy::{Directory as _, Index, Searcher};

use crate::schema::{TIME, fields, timestamp};
use crate::writer::internal;

/// What verifying one cluster's index found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterVerification {
    /// The cluster.
    pub cluster: String,
    /// Segments checked.
    pub segments: usize,
    /// Documents in the segments checked (as their metadata counts them).
    pub documents: u64,
    /// The damaged segments.
    pub damaged: Vec<Damage>,
    /// Why the index could not be checked at all (its `meta.json` cannot
    /// be read), if so.
    pub error: Option<String>,
}

/// What verifying a store found, per cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// The store directory.
    pub dir: PathBuf,
    /// One entry per cluster index, by name.
    pub clusters: Vec<ClusterVerification>,
}

impl VerifyReport {
    /// Every segment was read and none is damaged.
    pub fn is_clean(&self) -> bool {
        self.clusters
            .iter()
            .all(|c| c.damaged.is_empty() && c.error.is_none())
    }
}

/// A segment as verification needs it, from its metadata or its reader.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SegmentInfo {
    pub(crate) id: SegmentId,
    pub(crate) max_doc: u32,
    pub(crate) delete_opstamp: Option<u64>,
}

/// The files of a segment: one per extension of the index's plugins (the
/// built-in `idx`, `pos`, `term`, `fieldnorm`, `fast`, `store`), and the
/// alive bitset when it has deletes.
fn segment_files(index: &Index, info: &SegmentInfo) -> Vec<String> {
    let uuid = info.id.uuid_string();
    let mut files: Vec<String> = index
        .all_plugins()
        .flat_map(|plugin| {
            plugin
                .extensions()
                .iter()
                .map(|ext| format!("{uuid}.{ext}"))
                .collect::<Vec<_>>()
        })
        .collect();
    if let Some(opstamp) = info.delete_opstamp {
        files.push(format!("{uuid}.{opstamp}.del"));
    }
    files.sort();
    files.dedup();
    files
}

/// Checks the files of one segment; `Some` when any is damaged.
pub(crate) fn check_segment(cluster: &str, index: &Index, info: &SegmentInfo) -> Option<Damage> {
    let mut damaged = Vec::new();
    for name in segment_files(index, info) {
        let problem = match index.directory().validate_checksum(Path::new(&name)) {
            Ok(true) => continue,
            Ok(false) => "checksum mismatch".to_owned(),
            Err(OpenReadError::FileDoesNotExist(_)) => "missing".to_owned(),
            Err(e) => format!("unreadable: {e}"),
        };
        damaged.push(DamagedFile { name, problem });
    }
    if damaged.is_empty() {
        return None;
    }
    let uuid = info.id.uuid_string();
    let intact = |ext: &str| {
        let name = format!("{uuid}.{ext}");
        !damaged.iter().any(|f| f.name == name)
    };
    let range = if intact("fast") {
        fast_time_range(index, &format!("{uuid}.fast"))
    } else {
        None
    }
    .or_else(|| {
        intact("store")
            .then(|| stored_time_range(index, &format!("{uuid}.store")))
            .flatten()
    });
    Some(Damage {
        cluster: cluster.to_owned(),
        segment: uuid,
        files: damaged,
        documents: u64::from(info.max_doc),
        oldest: range.map(|(lo, _)| lo),
        newest: range.map(|(_, hi)| hi),
    })
}

/// Runs `f`, turning a panic (tantivy's readers may panic on bytes they do
/// not expect) into `None`.
fn guarded<T>(f: impl FnOnce() -> Option<T>) -> Option<T> {
    catch_unwind(AssertUnwindSafe(f)).ok().flatten()
}

/// The minimum and maximum of the `time` column of an intact `.fast` file.
fn fast_time_range(index: &Index, name: &str) -> Option<(Timestamp, Timestamp)> {
    guarded(|| {
        let slice = index.directory().open_read(Path::new(name)).ok()?;
        let columnar = ColumnarReader::open(slice).ok()?;
        let mut range: Option<(i64, i64)> = None;
        for handle in columnar.read_columns(TIME).ok()? {
            if let Ok(DynamicColumn::DateTime(column)) = handle.open() {
                let lo = column.min_value().into_timestamp_micros();
                let hi = column.max_value().into_timestamp_micros();
                range = Some(range.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
            }
        }
        let (lo, hi) = range?;
        Some((timestamp(lo)?, timestamp(hi)?))
    })
}

/// The time stored with a document, and nothing else.
struct StoredTime(Option<i64>);

impl DocumentDeserialize for StoredTime {
    fn deserialize<'de, D>(mut deserializer: D) -> Result<Self, DeserializeError>
    where
        D: DocumentDeserializer<'de>,
    {
        let time = fields().time;
        let mut out = None;
        while let Some((field, value)) = deserializer.next_field::<OwnedValue>()? {
            if let OwnedValue::Date(d) = value
                && field == time
            {
                out = Some(d.into_timestamp_micros());
            }
        }
        Ok(Self(out))
    }
}

/// The earliest and latest time stored with the documents of an intact
/// `.store` file (every document is read: only for damaged segments).
fn stored_time_range(index: &Index, name: &str) -> Option<(Timestamp, Timestamp)> {
    guarded(|| {
        let slice = index.directory().open_read(Path::new(name)).ok()?;
        let store = StoreReader::open(slice, 1).ok()?;
        let mut range: Option<(i64, i64)> = None;
        for doc in store.iter::<StoredTime>(None) {
            if let Ok(StoredTime(Some(t))) = doc {
                range = Some(range.map_or((t, t), |(a, b)| (a.min(t), b.max(t))));
            }
        }
        let (lo, hi) = range?;
        Some((timestamp(lo)?, timestamp(hi)?))
    })
}

/// Verifies the committed segments of the index in `path` without a
/// writer or a reader (neither a lock nor a readable segment is needed).
/// A segment whose files vanish meanwhile was merged away by a writer in
/// another process: it is skipped when the newest `meta.json` no longer
/// lists it.
pub(crate) fn verify_index_dir(cluster: &str, path: &Path) -> ClusterVerification {
    let mut report = ClusterVerification {
        cluster: cluster.to_owned(),
        segments: 0,
        documents: 0,
        damaged: Vec::new(),
        error: None,
    };
    let metas = match Index::open_in_dir(path).and_then(|index| Ok((index.load_metas()?, index))) {
        Ok(metas) => metas,
        Err(e) => {
            report.error = Some(format!("cannot read the index {}: {e}", path.display()));
            return report;
        }
    };
    let (metas, index) = metas;
    for meta in &metas.segments {
        let info = SegmentInfo {
            id: meta.id(),
            max_doc: meta.max_doc(),
            delete_opstamp: meta.delete_opstamp(),
        };
        report.segments += 1;
        report.documents += u64::from(info.max_doc);
        if let Some(damage) = check_segment(cluster, &index, &info) {
            let vanished = damage.files.iter().all(|f| f.problem == "missing")
                && index
                    .load_metas()
                    .is_ok_and(|now| !now.segments.iter().any(|m| m.id() == info.id));
            if vanished {
                report.segments -= 1;
                report.documents -= u64::from(info.max_doc);
                continue;
            }
            report.damaged.push(damage);
        }
    }
    report
}

/// Verifies the segments `searcher` serves (their files stay readable
/// while it is held, even if a merge replaces them meanwhile), calling
/// `on_segment` after each, until it answers `false`.
pub(crate) fn verify_searcher(
    cluster: &str,
    searcher: &Searcher,
    mut on_segment: impl FnMut(SegmentId, Option<Damage>) -> bool,
) {
    for reader in searcher.segment_readers() {
        let info = SegmentInfo {
            id: reader.segment_id(),
            max_doc: reader.max_doc(),
            delete_opstamp: reader.delete_opstamp(),
        };
        let damage = check_segment(cluster, searcher.index(), &info);
        if !on_segment(info.id, damage) {
            return;
        }
    }
}

/// What is known of the health of one cluster index's segments: those
/// found damaged (left out of every read and every merge) and those not
/// verified yet since the store opened (left out of merges until they are,
/// so that a damaged segment is never merged into a new one with a valid
/// checksum).
#[derive(Debug, Default)]
pub(crate) struct Health {
    state: RwLock<HealthState>,
}

#[derive(Debug, Default)]
struct HealthState {
    damaged: BTreeMap<SegmentId, Damage>,
    unverified: HashSet<SegmentId>,
}

impl Health {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HealthState> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HealthState> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The damaged segments: reads skip them.
    pub(crate) fn damaged_ids(&self) -> HashSet<SegmentId> {
        self.read().damaged.keys().copied().collect()
    }

    /// What was found damaged.
    pub(crate) fn damage(&self) -> Vec<Damage> {
        self.read().damaged.values().cloned().collect()
    }

    /// Whether a merge may read this segment.
    pub(crate) fn mergeable(&self, id: SegmentId) -> bool {
        let state = self.read();
        !state.damaged.contains_key(&id) && !state.unverified.contains(&id)
    }

    /// Marks `ids` as waiting for verification.
    pub(crate) fn expect(&self, ids: impl IntoIterator<Item = SegmentId>) {
        self.write().unverified.extend(ids);
    }

    /// Records the verification of one segment.
    pub(crate) fn verified(&self, id: SegmentId, damage: Option<Damage>) {
        let mut state = self.write();
        state.unverified.remove(&id);
        if let Some(damage) = damage {
            state.damaged.insert(id, damage);
        }
    }

    /// Verification ended (or failed): nothing waits for it any more.
    pub(crate) fn done(&self) {
        self.write().unverified.clear();
    }
}

/// The merge policy of an index, leaving out its damaged and not yet
/// verified segments.
#[derive(Debug)]
pub(crate) struct HealthyMerges<P> {
    pub(crate) inner: P,
    pub(crate) health: std::sync::Arc<Health>,
}

impl<P: tantivy::merge_policy::MergePolicy> tantivy::merge_policy::MergePolicy
    for HealthyMerges<P>
{
    fn compute_merge_candidates(
        &self,
        segments: &[tantivy::index::SegmentMeta],
    ) -> Vec<tantivy::merge_policy::MergeCandidate> {
        let healthy: Vec<_> = segments
            .iter()
            .filter(|s| self.health.mergeable(s.id()))
            .cloned()
            .collect();
        self.inner.compute_merge_candidates(&healthy)
    }
}

/// A damaged segment met while reading a document: the store's error,
/// naming the segment and what its columns say it covers.
pub(crate) fn data_loss(
    cluster: &str,
    searcher: &Searcher,
    address: tantivy::DocAddress,
    error: impl std::fmt::Display,
) -> StoreError {
    let Some(reader) = usize::try_from(address.segment_ord)
        .ok()
        .and_then(|n| searcher.segment_readers().get(n))
    else {
        return internal("read stored event", error);
    };
    let info = SegmentInfo {
        id: reader.segment_id(),
        max_doc: reader.max_doc(),
        delete_opstamp: reader.delete_opstamp(),
    };
    let damage = check_segment(cluster, searcher.index(), &info).unwrap_or_else(|| Damage {
        cluster: cluster.to_owned(),
        segment: info.id.uuid_string(),
        files: vec![DamagedFile {
            name: format!("{}.store", info.id.uuid_string()),
            problem: format!("unreadable: {error}"),
        }],
        documents: u64::from(info.max_doc),
        oldest: None,
        newest: None,
    });
    tracing::error!(
        cluster,
        segment = %damage.segment,
        error = %error,
        "a stored event cannot be read: the segment is damaged"
    );
    StoreError::DataLoss(format!(
        "{}; its events cannot be read (run `auditrail store verify`)",
        damage.describe()
    ))
}
