//! Stopping and starting again from saved checkpoints: exactly the lines not
//! acknowledged yet, whatever happened to the files in between.

mod common;

use std::fs;

use auditrail_filetail::{Checkpoint, Checkpoints, FileIdentity, FollowOptions, StartPosition};
use common::*;

#[test]
fn restart_delivers_exactly_the_unacknowledged_lines() {
    let env = Env::new();
    append(&env.live, &events(0..10));
    let mut f = env.follower(&Checkpoints::new());
    let records = drain(&mut f);
    assert_eq!(records.len(), 10);
    let mut cps = Checkpoints::new();
    save(&env, &f, &mut cps, &records[..4]);
    drop(f);

    let mut f = env.follower(&load(&env));
    assert_eq!(texts(&drain(&mut f)), events(4..10));
}

#[test]
fn restart_after_rename_rotation_while_stopped() {
    let env = Env::new();
    append(&env.backup(1), &events(0..3));
    append(&env.live, &events(3..8));
    let mut f = env.follower(&Checkpoints::new());
    let records = drain(&mut f);
    assert_eq!(texts(&records), events(0..8));
    let mut cps = Checkpoints::new();
    save(&env, &f, &mut cps, &records[..5]); // all of the backup, 2 of the live file
    drop(f);

    // While stopped: more lines, a rotation, lines in the new live file.
    append(&env.live, &events(8..9));
    env.rotate_rename(2);
    append(&env.live, &events(9..12));

    let mut f = env.follower(&load(&env));
    let records = drain(&mut f);
    assert_eq!(texts(&records), events(5..12));
    assert!(records[..4].iter().all(|r| r.path == env.backup(2)));
}

#[test]
fn restart_after_copy_truncate_while_stopped_reads_the_copy_from_the_checkpoint() {
    let env = Env::new();
    append(&env.live, &events(0..6));
    let mut f = env.follower(&Checkpoints::new());
    let records = drain(&mut f);
    let mut cps = Checkpoints::new();
    save(&env, &f, &mut cps, &records[..4]);
    drop(f);

    append(&env.live, &events(6..7));
    env.rotate_copy_truncate(1);
    append(&env.live, &events(7..9));

    let mut f = env.follower(&load(&env));
    assert_eq!(texts(&drain(&mut f)), events(4..9));
}

#[test]
fn restart_after_copy_truncate_does_not_read_the_copy_again() {
    let env = Env::new();
    append(&env.live, &events(0..5));
    let mut f = env.follower(&Checkpoints::new());
    let mut cps = Checkpoints::new();
    let records = drain(&mut f);
    save(&env, &f, &mut cps, &records);

    // Everything was read before the rotation: the copy has nothing new.
    env.rotate_copy_truncate(1);
    append(&env.live, &events(5..7));
    let records = drain(&mut f);
    assert_eq!(texts(&records), events(5..7));
    save(&env, &f, &mut cps, &records);
    assert!(
        cps.iter().any(|cp| cp.path == env.backup(1)),
        "the copy got a checkpoint although none of its lines was returned: {cps:?}"
    );
    drop(f);

    let mut f = env.follower(&load(&env));
    assert!(drain(&mut f).is_empty());
    append(&env.live, &events(7..8));
    assert_eq!(texts(&drain(&mut f)), events(7..8));
}

#[test]
fn copy_is_not_checkpointed_past_unacknowledged_lines_of_the_original() {
    let env = Env::new();
    append(&env.live, &events(0..5));
    let mut f = env.follower(&Checkpoints::new());
    let mut cps = Checkpoints::new();
    let records = drain(&mut f);
    // Returned but only two acknowledged when the rotation happens.
    save(&env, &f, &mut cps, &records[..2]);
    env.rotate_copy_truncate(1);
    append(&env.live, &events(5..6));
    assert_eq!(texts(&drain(&mut f)), events(5..6));
    save(&env, &f, &mut cps, &[]);
    drop(f);

    // The three unacknowledged lines come again, from the copy.
    let mut f = env.follower(&load(&env));
    assert_eq!(texts(&drain(&mut f)), events(2..6));
}

#[test]
fn start_end_position_survives_a_restart_without_acknowledgements() {
    let env = Env::new();
    append(&env.backup(1), &events(0..2));
    append(&env.live, &events(2..4));
    let f = env.follower_from_end();
    let mut cps = Checkpoints::new();
    save(&env, &f, &mut cps, &[]);
    drop(f);

    append(&env.live, &events(4..5));
    // Restarting from the beginning now: the watch has checkpoints.
    let mut f = env.follower(&load(&env));
    assert_eq!(texts(&drain(&mut f)), events(4..5));
}

#[test]
fn start_position_applies_only_to_a_watch_without_checkpoints() {
    let env = Env::new();
    append(&env.live, &events(0..3));
    let mut f = env.follower(&Checkpoints::new());
    let records = drain(&mut f);
    let mut cps = Checkpoints::new();
    save(&env, &f, &mut cps, &records);
    drop(f);

    env.rotate_rename(1);
    append(&env.live, &events(3..5));
    let options = FollowOptions {
        start: StartPosition::End,
        ..FollowOptions::default()
    };
    let mut f = env.follower_with(&load(&env), options);
    assert_eq!(
        texts(&drain(&mut f)),
        events(3..5),
        "the new live file is new: read from 0"
    );
}

#[test]
fn checkpoints_of_deleted_files_are_pruned() {
    let env = Env::new();
    append(&env.backup(1), &events(0..2));
    append(&env.live, &events(2..4));
    let mut f = env.follower(&Checkpoints::new());
    let mut cps = Checkpoints::new();
    let records = drain(&mut f);
    save(&env, &f, &mut cps, &records);
    assert_eq!(cps.len(), 2);

    fs::remove_file(env.backup(1)).unwrap();
    assert!(drain(&mut f).is_empty());
    let _ = f.poll(1 << 20).unwrap();
    save(&env, &f, &mut cps, &[]);
    assert_eq!(cps.len(), 1);
    assert_eq!(cps.iter().next().unwrap().path, env.live);
    assert_eq!(f.tracked_identities().len(), 1);
}

#[test]
fn file_replaced_on_the_same_path_while_stopped_is_read_from_zero() {
    let env = Env::new();
    append(&env.live, &events(0..3));
    let mut f = env.follower(&Checkpoints::new());
    let records = drain(&mut f);
    let mut cps = Checkpoints::new();
    save(&env, &f, &mut cps, &records);
    drop(f);

    // Truncated and rewritten in place while stopped (same inode).
    truncate(&env.live);
    append(&env.live, &events(10..15));
    let mut f = env.follower(&load(&env));
    assert_eq!(texts(&drain(&mut f)), events(10..15));
}

#[test]
fn two_copy_truncates_before_any_acknowledgement_lose_nothing_on_restart() {
    let env = Env::new();
    append(&env.live, &events(0..4));
    let mut f = env.follower(&Checkpoints::new());
    let mut cps = Checkpoints::new();
    let first = drain(&mut f);
    save(&env, &f, &mut cps, &first[..1]); // the indexer is slow

    env.rotate_copy_truncate(1);
    append(&env.live, &events(4..8));
    assert_eq!(texts(&drain(&mut f)), events(4..8));
    env.rotate_copy_truncate(2);
    append(&env.live, &events(8..10));
    assert_eq!(texts(&drain(&mut f)), events(8..10));
    save(&env, &f, &mut cps, &[]); // still only the first line acknowledged
    drop(f);

    let mut f = env.follower(&load(&env));
    assert_eq!(texts(&drain(&mut f)), events(1..10));
}

#[test]
fn stale_checkpoint_of_a_reused_inode_does_not_block_the_copy_checkpoint() {
    let env = Env::new();
    append(&env.live, &events(0..5));
    let mut f = env.follower(&Checkpoints::new());
    let mut cps = Checkpoints::new();
    let records = drain(&mut f);
    save(&env, &f, &mut cps, &records);
    env.rotate_copy_truncate(1);
    append(&env.live, &events(5..6));
    let records = drain(&mut f);
    assert_eq!(texts(&records), events(5..6));

    // A deleted file that had the copy's inode left its checkpoint behind
    // (it had not been pruned yet when the inode was reused).
    let copy = f
        .status()
        .into_iter()
        .find(|s| s.path == env.backup(1))
        .unwrap();
    cps.insert(Checkpoint {
        identity: FileIdentity::from_prefix(copy.identity.dev, copy.identity.ino, b"an older file"),
        path: env
            .dir
            .path()
            .join("kube-audit-2024-01-01T00-00-00.000.log"),
        offset: 99,
    });
    save(&env, &f, &mut cps, &records);
    let entry = cps.get(copy.identity.dev, copy.identity.ino).unwrap();
    assert_eq!(entry.identity, copy.identity, "stale entry replaced");
    assert_eq!(entry.offset, copy.size);
    drop(f);

    let mut f = env.follower(&load(&env));
    assert!(drain(&mut f).is_empty());
}
