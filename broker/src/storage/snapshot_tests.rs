//! Tests of producer state snapshots through [`PartitionLog`]: loading after an unclean
//! stop, corrupt and truncated snapshots, a log cut below its newest snapshot, deletion with
//! segments, and AlterReplicaLogDirs moves.

use std::fs;
use std::path::Path;

use super::partition::OpenParams;
use super::producer_snapshot::{self, SnapshotEntry};
use super::producer_tests::{
    TOPIC, code, idempotent, log_segments, produce, ranges, snapshots, tmp,
};
use super::segment::now_ms;
use super::*;

fn part_dir(dir: &Path) -> std::path::PathBuf {
    dir.join(format!("{TOPIC}-0"))
}

/// Opens the log as after a stop with (`clean`) or without the marker, with a recovery
/// point.
fn reopen(dir: &Path, clean: bool, recovery_point: Option<i64>) -> PartitionLog {
    let params = OpenParams {
        config: LogConfig::default(),
        clean_shutdown: clean,
        recovery_point,
        log_start_offset: None,
        log_starts: None,
    };
    PartitionLog::open_with(dir, TOPIC, 0, params).expect("reopen")
}

#[test]
fn an_unclean_stop_replays_the_batches_after_the_snapshot_below_the_recovery_point() {
    let (_tmp, dir) = tmp();
    let now = now_ms();
    let expected = {
        let log = PartitionLog::create(&dir, TOPIC, 0).expect("create");
        produce(&log, &[idempotent(1, 0, 0, 2, now)], now).expect("p1");
        produce(&log, &[idempotent(1, 0, 2, 2, now)], now).expect("p1");
        produce(&log, &[idempotent(2, 0, 0, 1, now)], now).expect("p2");
        assert_eq!(log.roll_segment().expect("roll"), 5);
        produce(&log, &[idempotent(1, 0, 4, 2, now)], now).expect("p1");
        produce(&log, &[idempotent(1, 0, 6, 2, now)], now).expect("p1");
        produce(&log, &[idempotent(3, 2, 7, 1, now + 1)], now).expect("p3");
        log.flush().expect("flush");
        // A crash: no close, so no snapshot at the log end.
        log.producer_states()
    };
    assert_eq!(snapshots(&dir), [5]);
    // A snapshot above the first segment to recover may describe lost data: deleted.
    let bogus = SnapshotEntry {
        producer_id: 99,
        epoch: 0,
        last_sequence: 0,
        last_offset: 7,
        offset_delta: 0,
        timestamp: now,
        coordinator_epoch: -1,
        current_txn_first_offset: -1,
    };
    producer_snapshot::write_snapshot(&part_dir(&dir), 8, &[bogus]).expect("write");
    let log = reopen(&dir, false, Some(5));
    assert_eq!(log.open_report().verified_segments, 1);
    assert!(log.producer_state(99).is_none());
    let p1 = log.producer_state(1).expect("p1");
    // The snapshot's last batch of producer 1, then the two replayed after it.
    assert_eq!(ranges(&p1), [(2, 3, 2, 3), (4, 5, 5, 6), (6, 7, 7, 8)]);
    for (id, want) in &expected {
        let got = log.producer_state(*id).expect("known");
        assert_eq!(
            (
                got.epoch(),
                got.last_seq(),
                got.last_offset(),
                got.last_timestamp()
            ),
            (
                want.epoch(),
                want.last_seq(),
                want.last_offset(),
                want.last_timestamp()
            ),
            "producer {id}"
        );
    }
    assert_eq!(ranges(&log.producer_state(3).expect("p3")), [(7, 7, 9, 9)]);
    // The bogus snapshot is gone; the load snapshotted the log end.
    assert_eq!(snapshots(&dir), [5, 10]);
    let retry = produce(&log, &[idempotent(1, 0, 4, 2, now)], now).expect("retry");
    assert_eq!((retry.duplicate, retry.base_offset), (true, 5));
    let next = produce(&log, &[idempotent(3, 2, 8, 1, now)], now).expect("p3 next");
    assert!(!next.duplicate);
}

#[test]
fn a_corrupt_or_truncated_snapshot_falls_back_to_an_older_one_then_to_the_log() {
    let (_tmp, dir) = tmp();
    let now = now_ms();
    {
        let log = PartitionLog::create(&dir, TOPIC, 0).expect("create");
        produce(&log, &[idempotent(1, 0, 0, 2, now)], now).expect("p1");
        log.roll_segment().expect("roll");
        produce(&log, &[idempotent(1, 0, 2, 2, now)], now).expect("p1");
        produce(&log, &[idempotent(2, 0, 0, 1, now)], now).expect("p2");
        log.close().expect("close");
    }
    assert_eq!(snapshots(&dir), [2, 5]);
    // The newest snapshot's CRC no longer matches: deleted, the one at 2 used.
    let newest = part_dir(&dir).join(producer_snapshot::snapshot_file_name(5));
    let mut bytes = fs::read(&newest).expect("read");
    *bytes.last_mut().expect("bytes") ^= 1;
    fs::write(&newest, &bytes).expect("corrupt");
    {
        let log = reopen(&dir, true, None);
        // Producer 1: the batch from the snapshot at 2, then the replayed one.
        assert_eq!(
            ranges(&log.producer_state(1).expect("p1")),
            [(0, 1, 0, 1), (2, 3, 2, 3)]
        );
        assert_eq!(ranges(&log.producer_state(2).expect("p2")), [(0, 0, 4, 4)]);
        // A fresh, valid snapshot at the log end replaced the corrupt one.
        assert_eq!(snapshots(&dir), [2, 5]);
        producer_snapshot::read_snapshot(&newest).expect("valid again");
    }
    // Both truncated: everything replayed from the log.
    for offset in [2, 5] {
        let path = part_dir(&dir).join(producer_snapshot::snapshot_file_name(offset));
        let bytes = fs::read(&path).expect("read");
        fs::write(&path, &bytes[..bytes.len() - 5]).expect("truncate");
    }
    let log = reopen(&dir, true, None);
    assert_eq!(
        ranges(&log.producer_state(1).expect("p1")),
        [(0, 1, 0, 1), (2, 3, 2, 3)]
    );
    assert_eq!(snapshots(&dir), [2, 5]);
    let retry = produce(&log, &[idempotent(1, 0, 0, 2, now)], now).expect("retry");
    assert!(retry.duplicate, "the full replay retains every batch");
}

#[test]
fn a_log_cut_below_its_newest_snapshot_reloads_an_older_one() {
    let (_tmp, dir) = tmp();
    let now = now_ms();
    let last_len = {
        let log = PartitionLog::create(&dir, TOPIC, 0).expect("create");
        produce(&log, &[idempotent(1, 0, 0, 2, now)], now).expect("p1");
        log.roll_segment().expect("roll");
        produce(&log, &[idempotent(1, 0, 2, 2, now)], now).expect("p1");
        let last = idempotent(1, 0, 4, 2, now);
        produce(&log, std::slice::from_ref(&last), now).expect("p1");
        log.close().expect("close");
        last.len() as u64
    };
    assert_eq!(snapshots(&dir), [2, 6]);
    // The last batch is torn (the snapshot at 6 counts it): the clean open cuts it off.
    let segment = log_segments(&dir).pop().expect("segment");
    let len = fs::metadata(&segment).expect("metadata").len();
    fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .and_then(|f| f.set_len(len - last_len / 2))
        .expect("tear");
    let log = reopen(&dir, true, None);
    assert_eq!(log.log_end_offset(), 4);
    assert_eq!(
        ranges(&log.producer_state(1).expect("p1")),
        [(0, 1, 0, 1), (2, 3, 2, 3)]
    );
    // The snapshot above the end went; one at the new end was taken.
    assert_eq!(snapshots(&dir), [2, 4]);
    let resent = produce(&log, &[idempotent(1, 0, 4, 2, now)], now).expect("resent");
    assert_eq!((resent.duplicate, resent.base_offset), (false, 4));
}

#[test]
fn snapshots_go_with_the_segments_retention_and_delete_records_remove() {
    let (_tmp, dir) = tmp();
    let now = now_ms();
    let log = PartitionLog::create(&dir, TOPIC, 0).expect("create");
    for i in 0..4 {
        produce(&log, &[idempotent(1, 0, i * 2, 2, now)], now).expect("p1");
        log.roll_segment().expect("roll");
    }
    assert_eq!(snapshots(&dir), [2, 4, 6, 8]);
    // DeleteRecords to 5 removes the segments at 0 and 2, and the snapshot at 2.
    assert_eq!(log.delete_records_before(5).expect("delete records"), 5);
    assert_eq!(log.segments()[0].base_offset, 4);
    assert_eq!(snapshots(&dir), [4, 6, 8]);
    // Retention by size removes the next one with its snapshot (the one at 6 stays: the
    // segment at 6 is kept).
    log.set_config(LogConfig {
        retention_bytes: 1,
        ..LogConfig::default()
    });
    assert_eq!(log.enforce_retention(now).expect("retention"), 1);
    assert_eq!(log.segments()[0].base_offset, 6);
    assert_eq!(snapshots(&dir), [6, 8]);
    // The producer outlives its batches, as in Kafka, and is in the next snapshot.
    assert!(log.producer_state(1).is_some());
    produce(&log, &[idempotent(2, 0, 0, 1, now)], now).expect("p2");
    log.close().expect("close");
    let at_close = producer_snapshot::read_snapshot(
        &part_dir(&dir).join(producer_snapshot::snapshot_file_name(9)),
    )
    .expect("close snapshot");
    let ids: Vec<i64> = at_close.iter().map(|e| e.producer_id).collect();
    assert_eq!(ids, [1, 2]);
    drop(log);
    // Reopened cleanly, the state comes from it; the snapshot at the log start offset is
    // deleted, as Kafka's truncateAndReload does.
    let log = reopen(&dir, true, None);
    assert_eq!(log.producer_state(1).expect("p1").last_offset(), 7);
    assert_eq!(snapshots(&dir), [8, 9]);
    assert_eq!(
        code(&produce(&log, &[idempotent(1, 0, 9, 1, now)], now)),
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );
}

#[test]
fn a_replica_move_brings_the_snapshots_and_the_live_state() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dirs = [tmp.path().join("a"), tmp.path().join("b")];
    for dir in &dirs {
        fs::create_dir(dir).expect("log dir");
    }
    let manager = LogManager::open(&dirs).expect("open");
    let log = manager.create(TOPIC, 0).expect("create");
    let from = log.log_dir().to_owned();
    let target = dirs
        .iter()
        .find(|d| **d != from)
        .expect("other dir")
        .clone();
    let now = now_ms();
    for i in 0..6 {
        produce(&log, &[idempotent(1, 0, i * 2, 2, now)], now).expect("p1");
        if i % 2 == 1 {
            log.roll_segment().expect("roll");
        }
    }
    let before = log.producer_states();
    let started = manager
        .start_move(TOPIC, 0, &target.to_string_lossy())
        .expect("start");
    let MoveStart::Started(future) = started else {
        panic!("not started: {started:?}");
    };
    assert!(manager.run_move(&future).expect("move"));
    let moved = manager.get(TOPIC, 0).expect("moved log");
    assert_eq!(moved.log_dir(), target);
    assert_eq!(snapshots(&target), [4, 8, 12]);
    assert_eq!(moved.producer_states(), before);
    assert_eq!(
        moved.producer_state(1).expect("p1").batches().len(),
        NUM_BATCHES_TO_RETAIN
    );
    let retry = produce(&moved, &[idempotent(1, 0, 4, 2, now)], now).expect("retry");
    assert!(retry.duplicate);
}
