//! Following one process's worth of rotations: every complete line exactly
//! once, in order.

mod common;

use std::fs;
use std::thread::sleep;
use std::time::Duration;

use auditrail_filetail::{
    Checkpoints, FileLocation, FileState, FollowOptions, Follower, RecordKind, Watch,
};
use common::*;

#[test]
fn appended_lines_arrive_once_in_order_and_partial_lines_wait() {
    let env = Env::new();
    append(&env.live, &events(0..3));
    let mut f = env.follower(&Checkpoints::new());
    assert_eq!(texts(&f.poll(1 << 20).unwrap()), events(0..3));
    assert!(
        f.poll(1 << 20).unwrap().is_empty(),
        "nothing new, nothing returned"
    );

    append(&env.live, &events(3..5));
    let line5 = event(5);
    let (head, tail) = line5.split_at(100);
    append_raw(&env.live, head.as_bytes());
    assert_eq!(texts(&f.poll(1 << 20).unwrap()), events(3..5));
    assert!(f.poll(1 << 20).unwrap().is_empty(), "partial line is held");

    append_raw(&env.live, format!("{tail}\n").as_bytes());
    let records = f.poll(1 << 20).unwrap();
    assert_eq!(texts(&records), vec![line5]);
    assert_offsets_consistent(&records);
    let size = fs::metadata(&env.live).unwrap().len();
    assert_eq!(records[0].end, size);
}

#[test]
fn records_carry_exact_offsets() {
    let env = Env::new();
    append_raw(&env.live, b"one\ntwo\n\nfour\n");
    let mut f = env.follower(&Checkpoints::new());
    let records = f.poll(1 << 20).unwrap();
    let spans: Vec<(u64, u64)> = records.iter().map(|r| (r.offset, r.end)).collect();
    assert_eq!(spans, vec![(0, 4), (4, 8), (8, 9), (9, 14)]);
    assert!(records.iter().all(|r| r.path == env.live));
}

#[test]
fn rename_rotation_mid_read_delivers_old_lines_then_new() {
    let env = Env::new();
    append(&env.live, &events(0..3));
    let mut f = env.follower(&Checkpoints::new());
    assert_eq!(texts(&f.poll(1 << 20).unwrap()), events(0..3));

    // Unread lines in the old file, then rotation, then lines in the new one.
    append(&env.live, &events(3..6));
    env.rotate_rename(1);
    append(&env.live, &events(6..9));

    let records = drain(&mut f);
    assert_eq!(texts(&records), events(3..9));
    assert!(records[..3].iter().all(|r| r.path == env.backup(1)));
    assert!(records[3..].iter().all(|r| r.path == env.live));
    assert_offsets_consistent(&records);
}

#[test]
fn several_rotations_between_and_during_polls() {
    let env = Env::new();
    let mut f = env.follower(&Checkpoints::new());
    let mut got = Vec::new();
    let mut next = 0;
    for rotation in 1..=4 {
        append(&env.live, &events(next..next + 4));
        next += 4;
        if rotation % 2 == 0 {
            got.extend(f.poll(1 << 20).unwrap());
        }
        env.rotate_rename(rotation);
        append(&env.live, &events(next..next + 2));
        next += 2;
        if rotation == 3 {
            // Two rotations before the next poll.
            continue;
        }
        got.extend(f.poll(1 << 20).unwrap());
    }
    got.extend(drain(&mut f));
    assert_eq!(texts(&got), events(0..next));
}

#[test]
fn backups_are_read_oldest_first_at_first_start() {
    let env = Env::new();
    // Create them newest first so that creation order cannot explain the result.
    append(&env.backup(3), &events(6..8));
    append(&env.backup(1), &events(0..2));
    append(&env.backup(2), &events(2..6));
    append(&env.live, &events(8..10));
    fs::write(
        env.dir
            .path()
            .join("kube-audit-2024-04-30T10-00-00.000.log.gz"),
        b"compressed\n",
    )
    .unwrap();
    fs::write(env.dir.path().join("other.log"), b"not ours\n").unwrap();
    let mut f = env.follower(&Checkpoints::new());
    assert_eq!(texts(&drain(&mut f)), events(0..10));
}

#[test]
fn small_budget_still_delivers_everything_in_order() {
    let env = Env::new();
    append(&env.backup(1), &events(0..20));
    append(&env.live, &events(20..40));
    let mut f = env.follower(&Checkpoints::new());
    let first = f.poll(1000).unwrap();
    assert!(
        (1..=4).contains(&first.len()),
        "a 1000-byte budget returns about 3 lines, got {}",
        first.len()
    );
    let mut all = first;
    all.extend(drain_with(&mut f, 1000));
    assert_eq!(texts(&all), events(0..40));
}

#[test]
fn copy_truncate_with_lines_written_just_before_is_exactly_once() {
    let env = Env::new();
    append(&env.live, &events(0..5));
    let mut f = env.follower(&Checkpoints::new());
    assert_eq!(texts(&f.poll(1 << 20).unwrap()), events(0..5));

    // Written just before the rotation, not read yet: only the copy has them.
    append(&env.live, &events(5..8));
    env.rotate_copy_truncate(1);
    append(&env.live, &events(8..10));

    let records = drain(&mut f);
    assert_eq!(
        texts(&records),
        events(5..10),
        "no duplicates from the copy, nothing lost"
    );
    assert!(records[..3].iter().all(|r| r.path == env.backup(1)));
    assert!(records[3..].iter().all(|r| r.path == env.live));
    assert_offsets_consistent(&records);
}

#[test]
fn copy_seen_before_the_truncation_is_not_read_twice() {
    let env = Env::new();
    append(&env.live, &events(0..5));
    let mut f = env.follower(&Checkpoints::new());
    let mut got = f.poll(1 << 20).unwrap();

    append(&env.live, &events(5..7));
    fs::copy(&env.live, env.backup(1)).unwrap();
    got.extend(f.poll(1 << 20).unwrap());
    let status = f.status();
    let copy = status.iter().find(|s| s.path == env.backup(1)).unwrap();
    assert_eq!(copy.state, FileState::CopyOf(env.live.clone()));

    // Written after the copy, before the truncation: read from the original.
    append(&env.live, &events(7..8));
    got.extend(f.poll(1 << 20).unwrap());
    truncate(&env.live);
    append(&env.live, &events(8..9));
    got.extend(drain(&mut f));
    assert_eq!(texts(&got), events(0..9));
}

#[test]
fn copy_of_a_partly_read_file_seen_before_truncation_continues_in_the_copy() {
    let env = Env::new();
    append(&env.live, &events(0..6));
    let mut f = env.follower(&Checkpoints::new());
    // Read only part of the file before the copy and the truncation.
    let mut got = f.poll(700).unwrap();
    assert!(got.len() < 5, "{}", got.len());
    fs::copy(&env.live, env.backup(1)).unwrap();
    got.extend(f.poll(1).unwrap()); // sees the copy, reads one more line of the original
    truncate(&env.live);
    append(&env.live, &events(6..8));
    got.extend(drain(&mut f));
    assert_eq!(texts(&got), events(0..8));
}

#[test]
fn copy_in_progress_waits_until_it_can_be_compared() {
    let env = Env::new();
    append(&env.live, &events(0..5));
    let mut f = env.follower(&Checkpoints::new());
    let mut got = drain(&mut f);
    let content = fs::read(&env.live).unwrap();
    fs::write(env.backup(1), &content[..100]).unwrap(); // the copy has just started
    got.extend(f.poll(1 << 20).unwrap());
    let status = f.status();
    let copy = status.iter().find(|s| s.path == env.backup(1)).unwrap();
    assert_eq!(copy.state, FileState::Pending);

    append_raw(&env.backup(1), &content[100..]); // the copy is complete
    truncate(&env.live);
    append(&env.live, &events(5..6));
    got.extend(drain(&mut f));
    assert_eq!(texts(&got), events(0..6));
}

#[test]
fn truncation_without_copy_restarts_at_zero() {
    let env = Env::new();
    append(&env.live, &events(0..3));
    let mut f = env.follower(&Checkpoints::new());
    assert_eq!(texts(&f.poll(1 << 20).unwrap()), events(0..3));
    truncate(&env.live);
    append(&env.live, &events(3..4));
    assert_eq!(texts(&drain(&mut f)), events(3..4));
}

#[test]
fn truncation_regrown_past_the_old_offset_is_noticed_by_fingerprint() {
    let env = Env::new();
    append(&env.live, &events(0..1));
    let mut f = env.follower(&Checkpoints::new());
    assert_eq!(texts(&f.poll(1 << 20).unwrap()), events(0..1));
    truncate(&env.live);
    // New content longer than what had been read: size alone cannot tell.
    append(&env.live, &events(1..4));
    assert_eq!(texts(&drain(&mut f)), events(1..4));
}

#[test]
fn start_end_ignores_existing_content_and_backups() {
    let env = Env::new();
    append(&env.backup(1), &events(0..3));
    append(&env.live, &events(3..6));
    let mut f = env.follower_from_end();
    assert!(drain(&mut f).is_empty());
    append(&env.live, &events(6..8));
    assert_eq!(texts(&drain(&mut f)), events(6..8));
}

#[test]
fn start_end_keeps_a_partial_last_line_for_when_it_completes() {
    let env = Env::new();
    append(&env.live, &events(0..2));
    let line = event(2);
    append_raw(&env.live, &line.as_bytes()[..50]);
    let mut f = env.follower_from_end();
    assert!(drain(&mut f).is_empty());
    append_raw(&env.live, &line.as_bytes()[50..]);
    append_raw(&env.live, b"\n");
    assert_eq!(texts(&drain(&mut f)), vec![line]);
}

#[test]
fn too_long_line_is_reported_with_offset_and_length_then_reading_goes_on() {
    let env = Env::new();
    let long = "x".repeat(5 * 1024);
    append(&env.live, &[event(0), long, event(1)]);
    let mut f = env.follower_with(
        &Checkpoints::new(),
        FollowOptions {
            max_line_bytes: 1024,
            ..FollowOptions::default()
        },
    );
    let records = drain(&mut f);
    assert_eq!(records.len(), 3);
    let first_end = event(0).len() as u64 + 1;
    assert_eq!(records[1].offset, first_end);
    assert_eq!(records[1].kind, RecordKind::TooLong { len: 5 * 1024 });
    assert_eq!(records[1].end, first_end + 5 * 1024 + 1);
    assert_eq!(records[2].kind, RecordKind::Line(event(1).into_bytes()));
    assert_eq!(records[2].offset, records[1].end);
}

#[test]
fn line_of_exactly_the_limit_is_returned() {
    let env = Env::new();
    append(&env.live, &["y".repeat(1024), "z".repeat(1025)]);
    let mut f = env.follower_with(
        &Checkpoints::new(),
        FollowOptions {
            max_line_bytes: 1024,
            ..FollowOptions::default()
        },
    );
    let records = drain(&mut f);
    assert_eq!(records[0].kind, RecordKind::Line(vec![b'y'; 1024]));
    assert_eq!(records[1].kind, RecordKind::TooLong { len: 1025 });
}

#[test]
fn five_mib_line_arrives_whole_under_the_default_limit() {
    let env = Env::new();
    let big = "b".repeat(5 * 1024 * 1024);
    append(&env.live, &[big.clone(), event(0)]);
    let mut f = env.follower(&Checkpoints::new());
    let records = drain(&mut f);
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].kind, RecordKind::Line(big.into_bytes()));
    assert_eq!(records[1].kind, RecordKind::Line(event(0).into_bytes()));
}

#[test]
fn too_long_line_still_being_written_is_reported_once_complete() {
    let env = Env::new();
    let mut f = env.follower_with(
        &Checkpoints::new(),
        FollowOptions {
            max_line_bytes: 100,
            ..FollowOptions::default()
        },
    );
    append_raw(&env.live, &[b'q'; 300]);
    assert!(f.poll(1 << 20).unwrap().is_empty());
    append_raw(&env.live, &[b'q'; 300]);
    assert!(f.poll(1 << 20).unwrap().is_empty());
    append_raw(&env.live, b"\nok\n");
    let records = drain(&mut f);
    assert_eq!(
        records.iter().map(|r| r.kind.clone()).collect::<Vec<_>>(),
        vec![
            RecordKind::TooLong { len: 600 },
            RecordKind::Line(b"ok".to_vec())
        ]
    );
}

#[test]
fn crlf_keeps_its_carriage_return_and_empty_lines_are_returned() {
    let env = Env::new();
    append_raw(&env.live, b"a\r\n\r\n\nb\r\n");
    let mut f = env.follower(&Checkpoints::new());
    let kinds: Vec<RecordKind> = drain(&mut f).into_iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        vec![
            RecordKind::Line(b"a\r".to_vec()),
            RecordKind::Line(b"\r".to_vec()),
            RecordKind::Line(Vec::new()),
            RecordKind::Line(b"b\r".to_vec()),
        ]
    );
}

#[test]
fn rotated_partial_tail_is_returned_after_the_grace_period_but_a_live_one_waits() {
    let env = Env::new();
    let options = FollowOptions {
        partial_line_grace: Duration::from_secs(1),
        ..FollowOptions::default()
    };
    let mut f = env.follower_with(&Checkpoints::new(), options);
    append(&env.live, &events(0..1));
    append_raw(&env.live, b"{\"truncated\":");
    assert_eq!(texts(&f.poll(1 << 20).unwrap()), events(0..1));
    sleep(Duration::from_millis(1200));
    assert!(
        f.poll(1 << 20).unwrap().is_empty(),
        "a live file's partial line waits"
    );

    env.rotate_rename(1);
    append(&env.live, &events(1..2));
    append_raw(&env.live, b"{\"live partial\":");
    let mut all = f.poll(1 << 20).unwrap();
    assert_eq!(
        texts(&all),
        events(1..2),
        "the tail waits until the file has been rotated for the grace period"
    );
    sleep(Duration::from_millis(1200));
    all.extend(drain(&mut f));
    let tail_index = all
        .iter()
        .position(|r| r.kind == RecordKind::Line(b"{\"truncated\":".to_vec()))
        .expect("partial tail of the rotated file is returned");
    assert_eq!(all[tail_index].path, env.backup(1));
    assert_eq!(
        all[tail_index].end,
        fs::metadata(env.backup(1)).unwrap().len()
    );
    let lines: Vec<_> = all
        .iter()
        .filter(|r| r.path == env.live)
        .map(|r| r.kind.clone())
        .collect();
    assert_eq!(lines, vec![RecordKind::Line(event(1).into_bytes())]);
}

#[test]
fn backup_deleted_before_it_was_fully_read_is_still_finished() {
    let env = Env::new();
    append(&env.live, &events(0..6));
    let mut f = env.follower(&Checkpoints::new());
    let mut got = f.poll(400).unwrap();
    assert!(got.len() < 6);
    env.rotate_rename(1);
    append(&env.live, &events(6..8));
    fs::remove_file(env.backup(1)).unwrap();
    got.extend(drain(&mut f));
    assert_eq!(texts(&got), events(0..8));
    // The deleted file is forgotten once read.
    let _ = f.poll(1 << 20).unwrap();
    let status = f.status();
    assert_eq!(status.len(), 1, "{status:?}");
    assert_eq!(status[0].path, env.live);
}

#[test]
fn glob_watch_follows_every_matching_live_file_and_its_backups() {
    let root = tempfile::tempdir().unwrap();
    let a = root.path().join("node-a");
    let b = root.path().join("node-b");
    fs::create_dir_all(&a).unwrap();
    fs::create_dir_all(&b).unwrap();
    append(
        &a.join("kube-audit-2024-01-01T00-00-00.000.log"),
        &events(0..2),
    );
    append(&a.join("kube-audit.log"), &events(2..4));
    append(&b.join("kube-audit.log"), &events(100..103));
    let pattern = format!("{}/*/kube-audit.log", root.path().display());
    let mut f = Follower::new(
        vec![Watch::new(pattern)],
        &Checkpoints::new(),
        FollowOptions::default(),
    )
    .unwrap();
    let records = drain(&mut f);
    let from = |dir: &std::path::Path| {
        texts(
            &records
                .iter()
                .filter(|r| r.path.starts_with(dir))
                .cloned()
                .collect::<Vec<_>>(),
        )
    };
    assert_eq!(from(&a), events(0..4));
    assert_eq!(from(&b), events(100..103));

    // A directory that appears later is followed from its beginning.
    let c = root.path().join("node-c");
    fs::create_dir_all(&c).unwrap();
    append(&c.join("kube-audit.log"), &events(200..201));
    assert_eq!(texts(&drain(&mut f)), events(200..201));
}

#[test]
fn status_shows_each_file_with_offset_size_and_location() {
    let env = Env::new();
    append(&env.live, &events(0..2));
    let mut f = env.follower(&Checkpoints::new());
    drain(&mut f);
    env.rotate_rename(1);
    append(&env.live, &events(2..3));
    append_raw(&env.live, b"partial");
    drain(&mut f);
    let status = f.status();
    assert_eq!(status.len(), 2);
    let backup = &status[0];
    assert_eq!(backup.path, env.backup(1));
    assert_eq!(backup.location, FileLocation::Rotated);
    assert_eq!(backup.offset, backup.size);
    let live = &status[1];
    assert!(live.is_live());
    assert_eq!(live.state, FileState::Reading);
    assert_eq!(live.size, fs::metadata(&env.live).unwrap().len());
    assert_eq!(
        live.offset,
        live.size - 7,
        "the partial line is not consumed"
    );
    assert!(live.last_error.is_none());
}

#[test]
fn invalid_pattern_is_an_error() {
    let err = Follower::new(
        vec![Watch::new("/var/log/[")],
        &Checkpoints::new(),
        FollowOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("invalid watch pattern"), "{err}");
}

#[test]
fn missing_live_file_is_picked_up_when_it_appears() {
    let env = Env::new();
    let mut f = env.follower(&Checkpoints::new());
    assert!(drain(&mut f).is_empty());
    append(&env.live, &events(0..2));
    assert_eq!(texts(&drain(&mut f)), events(0..2));
}

#[test]
fn status_tells_the_bytes_of_a_last_line_without_newline_until_it_is_read() {
    let env = Env::new();
    let options = FollowOptions {
        partial_line_grace: Duration::from_millis(500),
        ..FollowOptions::default()
    };
    let mut f = env.follower_with(&Checkpoints::new(), options);
    append(&env.live, &events(0..1));
    append_raw(&env.live, b"{\"partial\":");
    assert_eq!(texts(&drain(&mut f)), events(0..1));
    let status = f.status();
    assert_eq!(status[0].unterminated, 11, "{status:?}");
    assert_eq!(status[0].size - status[0].offset, 11);

    // Completed: read, and nothing is waiting any more.
    append_raw(&env.live, b"1}\n");
    let got = drain(&mut f);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].kind, RecordKind::Line(b"{\"partial\":1}".to_vec()));
    assert_eq!(f.status()[0].unterminated, 0);

    // A rotated file's unterminated line is returned as it is after the
    // grace period; until then the status shows it under the backup's name.
    append_raw(&env.live, b"{\"cut\":");
    assert!(drain(&mut f).is_empty());
    assert_eq!(f.status()[0].unterminated, 7);
    env.rotate_rename(1);
    let mut got = drain(&mut f);
    if got.is_empty() {
        // (Unless this machine took longer than the grace period.)
        let status = f.status();
        let backup = status.iter().find(|s| s.path == env.backup(1)).unwrap();
        assert_eq!(backup.unterminated, 7, "{status:?}");
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while got.is_empty() && std::time::Instant::now() < deadline {
        sleep(Duration::from_millis(50));
        got = drain(&mut f);
    }
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].kind, RecordKind::Line(b"{\"cut\":".to_vec()));
    assert!(f.status().iter().all(|s| s.unterminated == 0));
}

/// A literal log path that is a directory is reported (the status can say
/// why nothing is read) instead of looking like a file that does not exist
/// yet; once a file takes its place it is read. A glob that also matches a
/// directory is not an error.
#[test]
fn a_directory_at_the_log_path_is_reported_not_silently_waited_for() {
    let env = Env::new();
    fs::create_dir(&env.live).unwrap();
    let mut f = env.follower(&Checkpoints::new());
    assert!(f.poll(1 << 20).unwrap().is_empty());
    let unopened = f.unopened();
    assert_eq!(unopened.len(), 1, "{unopened:?}");
    assert_eq!(unopened[0].0, env.live);
    assert!(
        unopened[0].1.starts_with("is a directory, not a log file"),
        "{unopened:?}"
    );
    assert!(f.status().is_empty());

    fs::remove_dir(&env.live).unwrap();
    append(&env.live, &events(0..2));
    assert_eq!(texts(&f.poll(1 << 20).unwrap()), events(0..2));
    assert!(f.unopened().is_empty(), "reported only while it lasts");

    let glob = Watch::new(format!("{}/*", env.dir.path().display()));
    fs::create_dir(env.dir.path().join("subdir")).unwrap();
    let mut f = Follower::new(vec![glob], &Checkpoints::new(), FollowOptions::default()).unwrap();
    assert_eq!(texts(&f.poll(1 << 20).unwrap()), events(0..2));
    assert!(f.unopened().is_empty(), "{:?}", f.unopened());
}
