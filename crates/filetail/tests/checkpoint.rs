//! The checkpoint file: atomic save, faithful load, loud corruption.

use std::fs;
use std::path::PathBuf;

use auditrail_filetail::{Checkpoint, CheckpointError, CheckpointStore, Checkpoints, FileIdentity};

fn checkpoint(ino: u64, offset: u64) -> Checkpoint {
    Checkpoint {
        identity: FileIdentity::from_prefix(66, ino, format!("content of {ino}").as_bytes()),
        path: PathBuf::from(format!("/var/log/calico/audit/kube-audit-{ino}.log")),
        offset,
    }
}

#[test]
fn save_then_load_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::new(dir.path().join("cp.json"));
    let cps: Checkpoints = [checkpoint(1, 10), checkpoint(2, u64::MAX - 1)]
        .into_iter()
        .collect();
    store.save(&cps).unwrap();
    assert_eq!(store.load().unwrap(), cps);

    // Saving again replaces the content, and leaves no temporary file.
    let fewer: Checkpoints = [checkpoint(2, 5)].into_iter().collect();
    store.save(&fewer).unwrap();
    assert_eq!(store.load().unwrap(), fewer);
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec!["cp.json".to_owned()]);
}

#[test]
fn missing_file_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::new(dir.path().join("none.json"));
    assert!(store.load().unwrap().is_empty());
}

#[test]
fn corrupt_file_is_an_error_not_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cp.json");
    let store = CheckpointStore::new(&path);
    store
        .save(&[checkpoint(1, 10)].into_iter().collect())
        .unwrap();
    let good = fs::read(&path).unwrap();

    for bad in [
        &good[..good.len() / 2],
        b"",
        b"not json",
        b"{\"version\":1}",
    ] {
        fs::write(&path, bad).unwrap();
        let err = store.load().unwrap_err();
        assert!(matches!(err, CheckpointError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("corrupt"), "{err}");
    }

    fs::write(&path, b"{\"version\":99,\"checkpoints\":[]}").unwrap();
    assert!(matches!(
        store.load().unwrap_err(),
        CheckpointError::UnsupportedVersion { version: 99, .. }
    ));
}

#[test]
fn save_into_a_missing_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::new(dir.path().join("no/such/dir/cp.json"));
    assert!(matches!(
        store.save(&Checkpoints::new()).unwrap_err(),
        CheckpointError::Io { .. }
    ));
}

#[test]
fn advance_moves_forward_and_new_content_on_the_inode_replaces() {
    let mut cps = Checkpoints::new();
    let a = checkpoint(1, 0);
    cps.advance_to(&a.identity, &a.path, 100);
    cps.advance_to(&a.identity, &a.path, 50);
    assert_eq!(
        cps.get(66, 1).unwrap().offset,
        100,
        "never backwards for the same identity"
    );

    let renamed = PathBuf::from("/var/log/calico/audit/kube-audit-renamed.log");
    cps.advance_to(&a.identity, &renamed, 100);
    assert_eq!(cps.get(66, 1).unwrap().path, renamed);

    // Truncated: new content on the same inode starts again.
    let new_content = FileIdentity::from_prefix(66, 1, b"new content");
    cps.advance_to(&new_content, &renamed, 20);
    assert_eq!(cps.len(), 1);
    assert_eq!(cps.get(66, 1).unwrap().offset, 20);
    assert_eq!(cps.get(66, 1).unwrap().identity, new_content);

    cps.insert(checkpoint(2, 7));
    cps.retain_files(&[new_content]);
    assert_eq!(cps.len(), 1);
    assert!(cps.get(66, 2).is_none());
}
