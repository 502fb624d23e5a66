//! The reporter's durable state: report definitions, generated reports
//! (status, summary, contents), imported snapshots and the last schedule
//! tick of each definition, in one embedded database file,
//! `<data_dir>/reports/reporter.redb`.
//!
//! Why `redb`: the reporter needs a handful of keyed tables with
//! transactions (an update checks the etag and writes in one step; a
//! definition and its reports are deleted together), durability on commit
//! (a report is never acknowledged and then lost), and range scans (the
//! latest snapshot at or before an instant). redb is an ACID,
//! copy-on-write B-tree store in pure Rust with no server and no C
//! dependency, maintained and widely used; a second tantivy index or
//! SQLite would be respectively the wrong tool and a C build.
//!
//! Values are the protobuf encodings of the `auditrail.v1` messages (the
//! contract already says what they mean and how they evolve); snapshots
//! are JSON. Contents are kept apart from the report record so that
//! listing reports never reads them.

use std::path::{Path, PathBuf};

use auditrail_proto::v1;
use auditrail_replay::Snapshot;
use jiff::Timestamp;
use prost::Message as _;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::error::ReportError;

const DEFINITIONS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("definitions");
const REPORTS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("reports");
const CONTENTS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("contents");
const SNAPSHOTS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("snapshots");
const TICKS: TableDefinition<'_, &str, i64> = TableDefinition::new("ticks");

/// The database of one reporter.
#[derive(Debug)]
pub struct Store {
    db: Database,
    path: PathBuf,
}

/// A snapshot as stored.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredSnapshot {
    request_start: Timestamp,
    request_completion: Timestamp,
    objects: Vec<serde_json::Value>,
    /// What the reader of a report built on it must know (resource types
    /// the API server did not serve when the reporter took it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    notes: Vec<String>,
}

/// A stored snapshot and its notes.
#[derive(Debug, Clone, PartialEq)]
pub struct KeptSnapshot {
    /// The objects and times.
    pub snapshot: Snapshot,
    /// What was missing when it was taken (empty for imports).
    pub notes: Vec<String>,
}

fn snapshot_key(cluster: &str, start: Timestamp) -> String {
    // Fixed width, so keys sort by time; times before 1970 are refused
    // when imported.
    format!("{cluster}\0{:024}", start.as_nanosecond())
}

/// The cluster and start of a snapshot key.
fn parse_snapshot_key(key: &str) -> Option<(&str, Timestamp)> {
    let (cluster, nanos) = key.rsplit_once('\0')?;
    let nanos: i128 = nanos.parse().ok()?;
    Some((cluster, Timestamp::from_nanosecond(nanos).ok()?))
}

fn decode<M: prost::Message + Default>(bytes: &[u8]) -> Result<M, ReportError> {
    M::decode(bytes).map_err(|e| ReportError::db(format!("undecodable record: {e}")))
}

impl Store {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Self, ReportError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| ReportError::db(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join("reporter.redb");
        let db = Database::create(&path)
            .map_err(|e| ReportError::db(format!("cannot open {}: {e}", path.display())))?;
        let txn = db.begin_write().map_err(ReportError::db)?;
        {
            txn.open_table(DEFINITIONS).map_err(ReportError::db)?;
            txn.open_table(REPORTS).map_err(ReportError::db)?;
            txn.open_table(CONTENTS).map_err(ReportError::db)?;
            txn.open_table(SNAPSHOTS).map_err(ReportError::db)?;
            txn.open_table(TICKS).map_err(ReportError::db)?;
        }
        txn.commit().map_err(ReportError::db)?;
        Ok(Self { db, path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The definition called `name`.
    pub fn definition(&self, name: &str) -> Result<Option<v1::ReportDefinition>, ReportError> {
        let txn = self.db.begin_read().map_err(ReportError::db)?;
        let table = txn.open_table(DEFINITIONS).map_err(ReportError::db)?;
        match table.get(name).map_err(ReportError::db)? {
            Some(v) => Ok(Some(decode(v.value())?)),
            None => Ok(None),
        }
    }

    /// Every definition, by name.
    pub fn definitions(&self) -> Result<Vec<v1::ReportDefinition>, ReportError> {
        let txn = self.db.begin_read().map_err(ReportError::db)?;
        let table = txn.open_table(DEFINITIONS).map_err(ReportError::db)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(ReportError::db)? {
            let (_, v) = entry.map_err(ReportError::db)?;
            out.push(decode(v.value())?);
        }
        Ok(out)
    }

    /// Stores a new definition; ALREADY_EXISTS when the name is taken.
    pub fn create_definition(&self, def: &v1::ReportDefinition) -> Result<(), ReportError> {
        let txn = self.db.begin_write().map_err(ReportError::db)?;
        {
            let mut table = txn.open_table(DEFINITIONS).map_err(ReportError::db)?;
            if table
                .get(def.name.as_str())
                .map_err(ReportError::db)?
                .is_some()
            {
                return Err(ReportError::AlreadyExists(format!(
                    "report definition {:?} already exists",
                    def.name
                )));
            }
            table
                .insert(def.name.as_str(), def.encode_to_vec().as_slice())
                .map_err(ReportError::db)?;
        }
        txn.commit().map_err(ReportError::db)
    }

    /// Replaces a definition, made by `change` from the stored one, when
    /// `etag` (if not empty) matches the stored one: one transaction.
    pub fn update_definition(
        &self,
        name: &str,
        etag: &str,
        change: impl FnOnce(v1::ReportDefinition) -> v1::ReportDefinition,
    ) -> Result<v1::ReportDefinition, ReportError> {
        let txn = self.db.begin_write().map_err(ReportError::db)?;
        let updated = {
            let mut table = txn.open_table(DEFINITIONS).map_err(ReportError::db)?;
            let stored: v1::ReportDefinition = match table.get(name).map_err(ReportError::db)? {
                Some(v) => decode(v.value())?,
                None => return Err(not_found_definition(name)),
            };
            if !etag.is_empty() && etag != stored.etag {
                return Err(ReportError::Aborted(format!(
                    "report definition {name:?} was changed meanwhile (etag {etag:?}, now {:?}); read it again",
                    stored.etag
                )));
            }
            let updated = change(stored);
            table
                .insert(name, updated.encode_to_vec().as_slice())
                .map_err(ReportError::db)?;
            updated
        };
        txn.commit().map_err(ReportError::db)?;
        Ok(updated)
    }

    /// Deletes a definition (and its reports when asked); how many reports
    /// went with it.
    pub fn delete_definition(&self, name: &str, with_reports: bool) -> Result<u64, ReportError> {
        let txn = self.db.begin_write().map_err(ReportError::db)?;
        let mut deleted = 0;
        {
            let mut table = txn.open_table(DEFINITIONS).map_err(ReportError::db)?;
            if table.remove(name).map_err(ReportError::db)?.is_none() {
                return Err(not_found_definition(name));
            }
            let mut ticks = txn.open_table(TICKS).map_err(ReportError::db)?;
            ticks.remove(name).map_err(ReportError::db)?;
            if with_reports {
                let mut reports = txn.open_table(REPORTS).map_err(ReportError::db)?;
                let mut contents = txn.open_table(CONTENTS).map_err(ReportError::db)?;
                let mut ids = Vec::new();
                for entry in reports.iter().map_err(ReportError::db)? {
                    let (k, v) = entry.map_err(ReportError::db)?;
                    let report: v1::Report = decode(v.value())?;
                    if report.definition_name == name {
                        ids.push(k.value().to_owned());
                    }
                }
                for id in &ids {
                    reports.remove(id.as_str()).map_err(ReportError::db)?;
                    contents.remove(id.as_str()).map_err(ReportError::db)?;
                }
                deleted = ids.len() as u64;
            }
        }
        txn.commit().map_err(ReportError::db)?;
        Ok(deleted)
    }

    /// Stores a report record, and its contents when given (a report
    /// without contents loses those of an earlier run under the same id).
    pub fn put_report(
        &self,
        report: &v1::Report,
        contents: Option<&v1::ReportContents>,
    ) -> Result<(), ReportError> {
        let txn = self.db.begin_write().map_err(ReportError::db)?;
        {
            let mut record = report.clone();
            record.contents = None;
            let mut reports = txn.open_table(REPORTS).map_err(ReportError::db)?;
            reports
                .insert(report.id.as_str(), record.encode_to_vec().as_slice())
                .map_err(ReportError::db)?;
            let mut table = txn.open_table(CONTENTS).map_err(ReportError::db)?;
            match contents {
                Some(c) => {
                    table
                        .insert(report.id.as_str(), c.encode_to_vec().as_slice())
                        .map_err(ReportError::db)?;
                }
                None => {
                    table.remove(report.id.as_str()).map_err(ReportError::db)?;
                }
            }
        }
        txn.commit().map_err(ReportError::db)
    }

    /// The report `id` (without contents).
    pub fn report(&self, id: &str) -> Result<Option<v1::Report>, ReportError> {
        let txn = self.db.begin_read().map_err(ReportError::db)?;
        let table = txn.open_table(REPORTS).map_err(ReportError::db)?;
        match table.get(id).map_err(ReportError::db)? {
            Some(v) => Ok(Some(decode(v.value())?)),
            None => Ok(None),
        }
    }

    /// The contents of report `id`.
    pub fn contents(&self, id: &str) -> Result<Option<v1::ReportContents>, ReportError> {
        let txn = self.db.begin_read().map_err(ReportError::db)?;
        let table = txn.open_table(CONTENTS).map_err(ReportError::db)?;
        match table.get(id).map_err(ReportError::db)? {
            Some(v) => Ok(Some(decode(v.value())?)),
            None => Ok(None),
        }
    }

    /// Every report record.
    pub fn reports(&self) -> Result<Vec<v1::Report>, ReportError> {
        let txn = self.db.begin_read().map_err(ReportError::db)?;
        let table = txn.open_table(REPORTS).map_err(ReportError::db)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(ReportError::db)? {
            let (_, v) = entry.map_err(ReportError::db)?;
            out.push(decode(v.value())?);
        }
        Ok(out)
    }

    /// Stores a snapshot of `cluster`; its id.
    pub fn put_snapshot(&self, cluster: &str, snapshot: &Snapshot) -> Result<String, ReportError> {
        self.put_snapshot_noted(cluster, snapshot, &[])
    }

    /// Stores a snapshot of `cluster` with notes for the reports built on
    /// it, in one transaction (all of it or nothing); its id.
    pub fn put_snapshot_noted(
        &self,
        cluster: &str,
        snapshot: &Snapshot,
        notes: &[String],
    ) -> Result<String, ReportError> {
        let key = snapshot_key(cluster, snapshot.request_start);
        let stored = StoredSnapshot {
            request_start: snapshot.request_start,
            request_completion: snapshot.request_completion,
            objects: snapshot.objects.clone(),
            notes: notes.to_vec(),
        };
        let bytes = serde_json::to_vec(&stored).map_err(ReportError::db)?;
        let txn = self.db.begin_write().map_err(ReportError::db)?;
        {
            let mut table = txn.open_table(SNAPSHOTS).map_err(ReportError::db)?;
            table
                .insert(key.as_str(), bytes.as_slice())
                .map_err(ReportError::db)?;
        }
        txn.commit().map_err(ReportError::db)?;
        Ok(format!(
            "{cluster}@{}",
            snapshot.request_start.strftime("%Y-%m-%dT%H:%M:%S%.fZ")
        ))
    }

    /// The latest snapshot of `cluster` whose LIST started at or before `at`.
    pub fn snapshot_before(
        &self,
        cluster: &str,
        at: Timestamp,
    ) -> Result<Option<KeptSnapshot>, ReportError> {
        let txn = self.db.begin_read().map_err(ReportError::db)?;
        let table = txn.open_table(SNAPSHOTS).map_err(ReportError::db)?;
        let low = format!("{cluster}\0");
        let high = snapshot_key(cluster, at);
        let mut range = table
            .range(low.as_str()..=high.as_str())
            .map_err(ReportError::db)?;
        match range.next_back() {
            Some(entry) => {
                let (_, v) = entry.map_err(ReportError::db)?;
                let s: StoredSnapshot = serde_json::from_slice(v.value())
                    .map_err(|e| ReportError::db(format!("undecodable snapshot: {e}")))?;
                Ok(Some(KeptSnapshot {
                    snapshot: Snapshot {
                        request_start: s.request_start,
                        request_completion: s.request_completion,
                        objects: s.objects,
                    },
                    notes: s.notes,
                }))
            }
            None => Ok(None),
        }
    }

    /// The start of every stored snapshot, by cluster then time (read from
    /// the keys: no snapshot is decoded).
    pub fn snapshot_times(&self) -> Result<Vec<(String, Timestamp)>, ReportError> {
        let txn = self.db.begin_read().map_err(ReportError::db)?;
        let table = txn.open_table(SNAPSHOTS).map_err(ReportError::db)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(ReportError::db)? {
            let (k, _) = entry.map_err(ReportError::db)?;
            let key = k.value();
            let (cluster, start) = parse_snapshot_key(key)
                .ok_or_else(|| ReportError::db(format!("malformed snapshot key {key:?}")))?;
            out.push((cluster.to_owned(), start));
        }
        Ok(out)
    }

    /// Deletes the snapshots of `cluster` that started at `starts`, in one
    /// transaction; how many there were.
    pub fn delete_snapshots(
        &self,
        cluster: &str,
        starts: &[Timestamp],
    ) -> Result<usize, ReportError> {
        let txn = self.db.begin_write().map_err(ReportError::db)?;
        let mut deleted = 0;
        {
            let mut table = txn.open_table(SNAPSHOTS).map_err(ReportError::db)?;
            for start in starts {
                let key = snapshot_key(cluster, *start);
                if table
                    .remove(key.as_str())
                    .map_err(ReportError::db)?
                    .is_some()
                {
                    deleted += 1;
                }
            }
        }
        txn.commit().map_err(ReportError::db)?;
        Ok(deleted)
    }

    /// The end of the last scheduled interval of definition `name`.
    pub fn last_tick(&self, name: &str) -> Result<Option<Timestamp>, ReportError> {
        let txn = self.db.begin_read().map_err(ReportError::db)?;
        let table = txn.open_table(TICKS).map_err(ReportError::db)?;
        match table.get(name).map_err(ReportError::db)? {
            Some(v) => Ok(Timestamp::from_second(v.value()).ok()),
            None => Ok(None),
        }
    }

    /// Records the end of the last scheduled interval of `name`.
    pub fn set_last_tick(&self, name: &str, tick: Timestamp) -> Result<(), ReportError> {
        let txn = self.db.begin_write().map_err(ReportError::db)?;
        {
            let mut table = txn.open_table(TICKS).map_err(ReportError::db)?;
            table
                .insert(name, tick.as_second())
                .map_err(ReportError::db)?;
        }
        txn.commit().map_err(ReportError::db)
    }
}

fn not_found_definition(name: &str) -> ReportError {
    ReportError::NotFound(format!("no report definition named {name:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(name: &str) -> v1::ReportDefinition {
        v1::ReportDefinition {
            name: name.to_owned(),
            report_type: v1::ReportType::Inventory as i32,
            etag: "e1".to_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn definitions_survive_a_reopen_and_updates_check_the_etag() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store.create_definition(&def("a")).unwrap();
            let err = store.create_definition(&def("a")).unwrap_err();
            assert!(matches!(err, ReportError::AlreadyExists(_)), "{err}");
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.definition("a").unwrap().unwrap().name, "a");
        let err = store.update_definition("a", "stale", |d| d).unwrap_err();
        assert!(matches!(err, ReportError::Aborted(_)), "{err}");
        let updated = store
            .update_definition("a", "e1", |mut d| {
                d.suspend = true;
                d.etag = "e2".into();
                d
            })
            .unwrap();
        assert!(updated.suspend);
        assert!(matches!(
            store.update_definition("b", "", |d| d).unwrap_err(),
            ReportError::NotFound(_)
        ));
    }

    #[test]
    fn deleting_a_definition_deletes_its_reports_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for name in ["a", "b"] {
            store.create_definition(&def(name)).unwrap();
            let report = v1::Report {
                id: format!("r-{name}"),
                definition_name: name.to_owned(),
                ..Default::default()
            };
            store
                .put_report(&report, Some(&v1::ReportContents::default()))
                .unwrap();
        }
        assert_eq!(store.delete_definition("a", true).unwrap(), 1);
        assert!(store.report("r-a").unwrap().is_none());
        assert!(store.contents("r-a").unwrap().is_none());
        assert_eq!(store.delete_definition("b", false).unwrap(), 0);
        assert!(store.report("r-b").unwrap().is_some());
        assert!(matches!(
            store.delete_definition("b", false).unwrap_err(),
            ReportError::NotFound(_)
        ));
    }

    #[test]
    fn the_snapshot_used_is_the_latest_at_or_before_the_instant() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        for (cluster, at) in [
            ("c", "2026-01-01T00:00:00Z"),
            ("c", "2026-01-03T00:00:00Z"),
            ("d", "2026-01-02T00:00:00Z"),
        ] {
            let snapshot = Snapshot {
                request_start: t(at),
                request_completion: t(at),
                objects: vec![serde_json::json!({ "cluster": cluster })],
            };
            store.put_snapshot(cluster, &snapshot).unwrap();
        }
        let got = store
            .snapshot_before("c", t("2026-01-02T12:00:00Z"))
            .unwrap()
            .unwrap()
            .snapshot;
        assert_eq!(got.request_start, t("2026-01-01T00:00:00Z"));
        let got = store
            .snapshot_before("c", t("2026-01-03T00:00:00Z"))
            .unwrap()
            .unwrap()
            .snapshot;
        assert_eq!(got.request_start, t("2026-01-03T00:00:00Z"));
        assert!(
            store
                .snapshot_before("c", t("2025-12-31T00:00:00Z"))
                .unwrap()
                .is_none()
        );
        let got = store
            .snapshot_before("d", t("2027-01-01T00:00:00Z"))
            .unwrap()
            .unwrap();
        assert_eq!(got.snapshot.objects[0]["cluster"], "d");
        assert!(got.notes.is_empty());
        assert_eq!(
            store.snapshot_times().unwrap(),
            vec![
                ("c".to_owned(), t("2026-01-01T00:00:00Z")),
                ("c".to_owned(), t("2026-01-03T00:00:00Z")),
                ("d".to_owned(), t("2026-01-02T00:00:00Z")),
            ]
        );
        assert_eq!(
            store
                .delete_snapshots("c", &[t("2026-01-01T00:00:00Z"), t("2026-01-05T00:00:00Z")])
                .unwrap(),
            1
        );
        assert_eq!(store.snapshot_times().unwrap().len(), 2);
    }
}
