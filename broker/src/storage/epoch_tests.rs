//! The leader epoch cache of a partition log: kept on append, truncated with the log
//! start offset, persisted in `leader-epoch-checkpoint`, rebuilt when the log is opened.

use std::fs;

use bytes::Bytes;
use gregor_protocol::records::{NewRecord, RecordBatchBuilder};

use super::leader_epoch::{self, EpochEntry, LEADER_EPOCH_CHECKPOINT};
use super::partition::OpenParams;
use super::*;

const NOW: i64 = 1_700_000_000_000;

fn batch(count: usize) -> Bytes {
    let records: Vec<NewRecord> = (0..count)
        .map(|i| NewRecord::new(NOW + i as i64, None, Some(Bytes::from(vec![b'v'; 100]))))
        .collect();
    RecordBatchBuilder::new().build(&records).expect("batch")
}

fn append(log: &PartitionLog, count: usize, epoch: i32) {
    let validated = validate_records(batch(count), &log.config(), NOW).expect("valid");
    log.append(validated, epoch, NOW).expect("append");
}

fn pairs(entries: &[EpochEntry]) -> Vec<(i32, i64)> {
    entries.iter().map(|e| (e.epoch, e.start_offset)).collect()
}

fn file(log: &PartitionLog) -> String {
    fs::read_to_string(log.dir().join(LEADER_EPOCH_CHECKPOINT)).expect("checkpoint")
}

#[test]
fn appends_start_epochs_and_the_file_follows() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = PartitionLog::create(tmp.path(), "t", 0).expect("create");
    assert_eq!(file(&log), "0\n0\n");
    append(&log, 5, 0);
    append(&log, 5, 0);
    append(&log, 3, 2);
    append(&log, 2, 5);
    assert_eq!(pairs(&log.leader_epochs()), [(0, 0), (2, 10), (5, 13)]);
    assert_eq!(file(&log), "0\n3\n0 0\n2 10\n5 13\n");
    assert_eq!(log.end_offset_for_epoch(0, 5), (0, 10));
    assert_eq!(log.end_offset_for_epoch(1, 5), (0, 10));
    assert_eq!(log.end_offset_for_epoch(2, 5), (2, 13));
    assert_eq!(log.end_offset_for_epoch(5, 5), (5, 15));
    assert_eq!(log.end_offset_for_epoch(6, 5), (-1, -1));
    assert_eq!(log.end_offset_for_epoch(-1, 5), (-1, -1));

    // A newer leader epoch in the metadata starts at the log end offset, as Kafka's
    // leader election records it before anything is written.
    assert_eq!(log.end_offset_for_epoch(5, 7), (5, 15));
    assert_eq!(
        pairs(&log.leader_epochs()),
        [(0, 0), (2, 10), (5, 13), (7, 15)]
    );
    assert_eq!(log.end_offset_for_epoch(7, 7), (7, 15));
    append(&log, 1, 7);
    assert_eq!(pairs(&log.leader_epochs()).last(), Some(&(7, 15)));
}

#[test]
fn delete_records_truncates_from_the_start_and_reopening_keeps_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = PartitionLog::create(tmp.path(), "t", 0).expect("create");
    append(&log, 10, 0);
    append(&log, 10, 1);
    append(&log, 10, 3);
    assert_eq!(log.delete_records_before(15).expect("delete"), 15);
    assert_eq!(pairs(&log.leader_epochs()), [(1, 15), (3, 20)]);
    assert_eq!(file(&log), "0\n2\n1 15\n3 20\n");
    // An epoch older than the log: the requested one, ending where the log now starts.
    assert_eq!(log.end_offset_for_epoch(0, 3), (0, 15));
    log.close().expect("close");
    drop(log);

    // Without the log-start checkpoint of a LogManager, the log starts at 0 again: the
    // rebuilt cache starts there too. With it, the truncation survives.
    let params = OpenParams {
        log_start_offset: Some(15),
        clean_shutdown: true,
        ..OpenParams::default()
    };
    let log = PartitionLog::open_with(tmp.path(), "t", 0, params).expect("reopen");
    assert_eq!(pairs(&log.leader_epochs()), [(1, 15), (3, 20)]);
}

#[test]
fn opening_rebuilds_a_missing_stale_or_bad_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = PartitionLog::create(tmp.path(), "t", 0).expect("create");
    append(&log, 4, 0);
    append(&log, 4, 2);
    let dir = log.dir().to_owned();
    log.close().expect("close");
    drop(log);
    let path = dir.join(LEADER_EPOCH_CHECKPOINT);
    for (content, expected) in [
        // Missing.
        (None, vec![(0, 0), (2, 4)]),
        // Garbage.
        (Some("not a checkpoint"), vec![(0, 0), (2, 4)]),
        // Stale: misses the last epoch, and has one past the end of the log.
        (Some("0\n2\n0 0\n9 100\n"), vec![(0, 0), (2, 4)]),
        // A newer epoch elected at the log end, before anything was written in it: Kafka's
        // loader drops it too (the next lookup with that leader epoch records it again).
        (Some("0\n3\n0 0\n2 4\n6 8\n"), vec![(0, 0), (2, 4)]),
    ] {
        match content {
            None => fs::remove_file(&path).expect("remove"),
            Some(text) => fs::write(&path, text).expect("write"),
        }
        let log = PartitionLog::open(tmp.path(), "t", 0).expect("open");
        assert_eq!(pairs(&log.leader_epochs()), expected, "{content:?}");
        let written = leader_epoch::read_checkpoint(&dir)
            .expect("read")
            .expect("file");
        assert_eq!(pairs(&written), expected, "{content:?}");
    }
}

#[test]
fn a_torn_tail_takes_its_epoch_with_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = PartitionLog::create(tmp.path(), "t", 0).expect("create");
    append(&log, 4, 0);
    append(&log, 4, 3);
    let segment = log.segments()[0].path.clone();
    let dir = log.dir().to_owned();
    drop(log);
    // Cut the last batch in half (an unclean stop: no marker, no recovery point).
    let len = fs::metadata(&segment).expect("segment").len();
    let file = fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .expect("open");
    file.set_len(len - 20).expect("truncate");
    let log = PartitionLog::open(tmp.path(), "t", 0).expect("open");
    assert_eq!(log.log_end_offset(), 4);
    assert_eq!(pairs(&log.leader_epochs()), [(0, 0)]);
    assert_eq!(
        fs::read_to_string(dir.join(LEADER_EPOCH_CHECKPOINT)).unwrap(),
        "0\n1\n0 0\n"
    );
}

#[test]
fn retention_truncates_from_the_start() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        retention_ms: 10_000,
        ..LogConfig::default()
    };
    let log = PartitionLog::create_with_config(tmp.path(), "t", 0, config).expect("create");
    // Two segments of epoch 0 and 1 records (timestamps NOW..), then one of epoch 4.
    append(&log, 3, 0);
    log.roll_segment().expect("roll");
    append(&log, 3, 1);
    log.roll_segment().expect("roll");
    let validated = validate_records(
        RecordBatchBuilder::new()
            .build(&[NewRecord::new(NOW + 60_000, None, None)])
            .expect("batch"),
        &log.config(),
        NOW,
    )
    .expect("valid");
    log.append(validated, 4, NOW).expect("append");
    assert_eq!(pairs(&log.leader_epochs()), [(0, 0), (1, 3), (4, 6)]);
    // The first two segments are older than retention.ms at NOW + 20 s.
    assert_eq!(log.enforce_retention(NOW + 20_000).expect("retention"), 2);
    assert_eq!(log.log_start_offset(), 6);
    assert_eq!(pairs(&log.leader_epochs()), [(4, 6)]);
    assert_eq!(file(&log), "0\n1\n4 6\n");
    assert_eq!(log.end_offset_for_epoch(1, 4), (1, 6));
}
