//! Tests of the recovery after an unclean shutdown that starts at the offset index entry
//! at or below the recovery point (`segment/recover_from.rs`): a torn tail, a corrupt batch
//! after the recovery point, index entries past the valid end, aborted transactions before
//! and after where the producer state stands; each time the log must answer exactly as one
//! recovered by scanning every batch of its segments.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use gregor_protocol::records::{NewRecord, RecordBatchBuilder};

use super::index::{offset_index_path, time_index_path};
use super::leader_epoch::LEADER_EPOCH_CHECKPOINT;
use super::partition::OpenParams;
use super::segment::now_ms;
use super::txn_index::txn_index_path;
use super::*;

const TOPIC: &str = "r";

fn tmp() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_owned();
    (tmp, dir)
}

/// A batch of `count` records of 120 bytes, timestamps around `ts` (every third one older,
/// so that the largest timestamp does not simply follow the offsets).
fn batch(count: usize, ts: i64) -> Bytes {
    let records: Vec<NewRecord> = (0..count)
        .map(|i| {
            let t = if i % 3 == 2 { ts - 50 } else { ts + i as i64 };
            NewRecord::new(t, None, Some(Bytes::from(vec![b'v'; 120])))
        })
        .collect();
    RecordBatchBuilder::new().build(&records).expect("batch")
}

/// A batch of producer `pid` (transactional or only idempotent).
fn producer_batch(pid: i64, seq: i32, count: usize, transactional: bool) -> Bytes {
    let records: Vec<NewRecord> = (0..count)
        .map(|i| NewRecord::new(now_ms(), None, Some(Bytes::from(format!("p{seq}-{i}")))))
        .collect();
    RecordBatchBuilder::new()
        .producer(pid, 0)
        .base_sequence(seq)
        .transactional(transactional)
        .build(&records)
        .expect("batch")
}

fn append(log: &PartitionLog, records: Bytes) {
    let now = now_ms();
    let validated = validate_records(records, &log.config(), now).expect("valid");
    log.append(validated, 0, now).expect("append");
}

fn config(interval: i32) -> LogConfig {
    LogConfig {
        index_interval_bytes: interval,
        ..LogConfig::default()
    }
}

/// Opens the log of `dir` as after a kill -9 with `recovery_point` checkpointed.
fn reopen(dir: &Path, interval: i32, recovery_point: i64) -> PartitionLog {
    let params = OpenParams {
        config: config(interval),
        clean_shutdown: false,
        recovery_point: Some(recovery_point),
        ..OpenParams::default()
    };
    PartitionLog::open_with(dir, TOPIC, 0, params).expect("open")
}

/// A copy of the partition directory of `dir` in a new log directory.
fn copy_log(dir: &Path) -> (tempfile::TempDir, PathBuf) {
    let (guard, copy) = tmp();
    let from = dir.join(partition_dir_name(TOPIC, 0));
    let to = copy.join(partition_dir_name(TOPIC, 0));
    fs::create_dir_all(&to).expect("mkdir");
    for entry in fs::read_dir(&from).expect("list") {
        let entry = entry.expect("entry");
        fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
    (guard, copy)
}

/// Everything the recovered log answers, and its files.
#[derive(Debug, PartialEq, Eq)]
struct State {
    log_end: i64,
    batches: Vec<Option<BatchEntry>>,
    max_timestamp: Option<TimestampOffset>,
    by_time: Vec<Option<TimestampOffset>>,
    epochs: Vec<leader_epoch::EpochEntry>,
    /// As a snapshot holds them (a state loaded from one keeps only each producer's last
    /// batch, as Kafka's does).
    producers: Vec<producer_snapshot::SnapshotEntry>,
    last_stable: i64,
    aborted: Vec<AbortedTxn>,
    files: Vec<(String, Option<Vec<u8>>)>,
}

fn state(log: &PartitionLog, dir: &Path) -> State {
    let log_end = log.log_end_offset();
    let part = dir.join(partition_dir_name(TOPIC, 0));
    let mut files = Vec::new();
    for segment in log.segments() {
        // The time index is compared by its answers: a recovery from an index entry keeps
        // the entries before the tail as written, among them the closing entry of an
        // earlier clean close, which a full rebuild does not write again.
        for path in [
            offset_index_path(&part, segment.base_offset),
            txn_index_path(&part, segment.base_offset),
        ] {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            files.push((name, fs::read(&path).ok()));
        }
    }
    let by_time = (0..200)
        .map(|i| log.offset_for_timestamp(900 + i * 13).expect("lookup"))
        .collect();
    State {
        log_end,
        by_time,
        batches: (0..=log_end).map(|o| log.find_batch(o)).collect(),
        max_timestamp: log.max_timestamp().expect("max"),
        epochs: log.leader_epochs(),
        producers: log
            .producer_states()
            .into_iter()
            .map(|(pid, entry)| entry.to_snapshot(pid))
            .collect(),
        last_stable: log.last_stable_offset(),
        aborted: log.aborted_transactions(0, log_end),
        files,
    }
}

/// Recovers `dir` and, as the reference, a copy of it recovered by scanning every batch
/// (no epoch checkpoint: the open's full-scan path); both must agree. Returns the log and
/// its open report.
fn recover_and_compare(dir: &Path, interval: i32, recovery_point: i64) -> PartitionLog {
    let (_guard, copy) = copy_log(dir);
    fs::remove_file(
        copy.join(partition_dir_name(TOPIC, 0))
            .join(LEADER_EPOCH_CHECKPOINT),
    )
    .expect("remove the copy's epoch checkpoint");
    let reference = reopen(&copy, interval, recovery_point);
    assert_eq!(reference.open_report().recovered_from_index, 0);
    let expected = state(&reference, &copy);
    let expected_torn = reference.torn_tail().map(|t| (t.position, t.reason));
    drop(reference);
    let log = reopen(dir, interval, recovery_point);
    assert_eq!(
        log.open_report().recovered_from_index,
        1,
        "{:?}",
        log.open_report()
    );
    assert_eq!(state(&log, dir), expected);
    // And the time index passes the check every open makes.
    let part = dir.join(partition_dir_name(TOPIC, 0));
    let base = log.segments().last().expect("segment").base_offset;
    let times = fs::read(time_index_path(&part, base)).expect("time index");
    let times = index::decode_time_index(&times, base).expect("whole entries");
    let mut batches: Vec<BatchEntry> = (0..log.log_end_offset())
        .filter_map(|o| log.find_batch(o))
        .filter(|b| b.base_offset >= base)
        .collect();
    batches.dedup();
    index::check_time_index(&times, &batches).expect("a valid time index");
    assert_eq!(
        log.torn_tail().map(|t| (t.position, t.reason)),
        expected_torn
    );
    log
}

/// Writes a log as a broker does before a kill -9: `first` batches, a clean close (the
/// producer snapshot at its end), a reopen, `flushed` more batches and a flush (the
/// recovery point), `unflushed` more. Returns the recovery point.
fn write(dir: &Path, interval: i32, first: usize, flushed: usize, unflushed: usize) -> i64 {
    let log = PartitionLog::create_with_config(dir, TOPIC, 0, config(interval)).expect("create");
    for i in 0..first {
        append(&log, batch(1 + i % 4, 1_000 + i as i64 * 10));
    }
    log.close().expect("close");
    drop(log);
    let params = OpenParams {
        config: config(interval),
        clean_shutdown: true,
        ..OpenParams::default()
    };
    let log = PartitionLog::open_with(dir, TOPIC, 0, params).expect("reopen");
    for i in 0..flushed {
        append(&log, batch(1 + i % 3, 2_000 + i as i64 * 10));
    }
    log.flush().expect("flush");
    let recovery_point = log.recovery_point();
    for i in 0..unflushed {
        append(&log, batch(2, 3_000 + i as i64 * 10));
    }
    recovery_point
}

fn active_segment(dir: &Path) -> PathBuf {
    dir.join(partition_dir_name(TOPIC, 0))
        .join(segment::segment_file_name(0))
}

#[test]
fn a_torn_tail_is_cut_and_the_index_tail_rebuilt() {
    for interval in [0, 1, 300, 1000] {
        let (_tmp, dir) = tmp();
        let recovery_point = write(&dir, interval, 30, 10, 8);
        let end = {
            let log = reopen(&copy_log(&dir).1, interval, recovery_point);
            log.log_end_offset()
        };
        let tail = batch(3, 9_000);
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(active_segment(&dir))
            .expect("open");
        std::io::Write::write_all(&mut file, &tail[..tail.len() / 2]).expect("write");
        drop(file);
        let log = recover_and_compare(&dir, interval, recovery_point);
        assert_eq!(log.log_end_offset(), end, "interval {interval}");
        assert_eq!(
            log.torn_tail().expect("torn").reason,
            "batch cut short by the end of the file"
        );
        // Appending after the recovery goes on from the recovered end.
        append(&log, batch(2, 10_000));
        assert_eq!(log.log_end_offset(), end + 2);
    }
}

#[test]
fn a_corrupt_batch_after_the_recovery_point_ends_the_log() {
    let (_tmp, dir) = tmp();
    let interval = 200;
    let recovery_point = write(&dir, interval, 30, 10, 8);
    let target = {
        let log = reopen(&copy_log(&dir).1, interval, recovery_point);
        log.find_batch(log.log_end_offset() - 5).expect("batch")
    };
    let path = active_segment(&dir);
    let mut bytes = fs::read(&path).expect("segment");
    bytes[target.end_position() as usize - 3] ^= 0x55;
    fs::write(&path, bytes).expect("write");
    let log = recover_and_compare(&dir, interval, recovery_point);
    assert_eq!(log.log_end_offset(), target.base_offset);
    assert_eq!(
        log.torn_tail().expect("torn").reason,
        "corrupt batch (CRC mismatch or malformed)"
    );
}

#[test]
fn index_entries_past_the_valid_end_are_dropped() {
    let (_tmp, dir) = tmp();
    let interval = 0;
    let recovery_point = write(&dir, interval, 30, 10, 8);
    let part = dir.join(partition_dir_name(TOPIC, 0));
    // The file loses its last batches (they never reached the disk) while the index kept
    // their entries, and the index has zeros after them (preallocated space).
    let cut = {
        let log = reopen(&copy_log(&dir).1, interval, recovery_point);
        log.find_batch(log.log_end_offset() - 6).expect("batch")
    };
    let file = fs::OpenOptions::new()
        .write(true)
        .open(active_segment(&dir))
        .expect("open");
    file.set_len(u64::from(cut.position)).expect("truncate");
    drop(file);
    let index = offset_index_path(&part, 0);
    let mut bytes = fs::read(&index).expect("index");
    let entries_before = bytes.len();
    bytes.extend_from_slice(&[0u8; 64]);
    fs::write(&index, &bytes).expect("write");
    let log = recover_and_compare(&dir, interval, recovery_point);
    assert_eq!(log.log_end_offset(), cut.base_offset);
    assert!(log.torn_tail().is_none());
    let rebuilt = fs::read(&index).expect("index");
    assert!(
        rebuilt.len() < entries_before,
        "the entries past the end are gone"
    );
}

#[test]
fn nothing_is_rewritten_when_nothing_past_the_recovery_point_changed() {
    let (_tmp, dir) = tmp();
    let interval = 100;
    let recovery_point = write(&dir, interval, 30, 10, 0);
    let part = dir.join(partition_dir_name(TOPIC, 0));
    let before = (
        fs::read(offset_index_path(&part, 0)).expect("index"),
        fs::read(time_index_path(&part, 0)).expect("timeindex"),
    );
    let log = recover_and_compare(&dir, interval, recovery_point);
    assert_eq!(log.open_report().rebuilt_indexes, 0);
    assert_eq!(
        (
            fs::read(offset_index_path(&part, 0)).expect("index"),
            fs::read(time_index_path(&part, 0)).expect("timeindex"),
        ),
        before
    );
    // The batch list before the tail is read on first use.
    assert_eq!(log.find_batch(0).map(|b| b.base_offset), Some(0));
}

#[test]
fn producer_state_and_aborts_before_and_after_the_snapshot_survive() {
    let (_tmp, dir) = tmp();
    let interval = 0;
    let log = PartitionLog::create_with_config(&dir, TOPIC, 0, config(interval)).expect("create");
    // Before the snapshot: an aborted and a committed transaction, idempotent batches.
    append(&log, producer_batch(7, 0, 2, true));
    append(&log, producer_batch(9, 0, 3, false));
    log.append_txn_marker(7, 0, 0, false, 0, now_ms())
        .expect("abort");
    append(&log, producer_batch(7, 2, 2, true));
    log.append_txn_marker(7, 0, 0, true, 0, now_ms())
        .expect("commit");
    for i in 0..5 {
        append(&log, batch(2, 1_000 + i));
    }
    log.close().expect("close");
    drop(log);
    let params = OpenParams {
        config: config(interval),
        clean_shutdown: true,
        ..OpenParams::default()
    };
    let log = PartitionLog::open_with(&dir, TOPIC, 0, params).expect("reopen");
    // After it: another abort (flushed), then an open transaction and more idempotent
    // batches (not flushed).
    append(&log, producer_batch(11, 0, 2, true));
    log.append_txn_marker(11, 0, 0, false, 0, now_ms())
        .expect("abort");
    append(&log, producer_batch(9, 3, 2, false));
    log.flush().expect("flush");
    let recovery_point = log.recovery_point();
    append(&log, producer_batch(13, 0, 2, true));
    append(&log, producer_batch(9, 5, 1, false));
    drop(log);
    let log = recover_and_compare(&dir, interval, recovery_point);
    assert_eq!(log.aborted_transactions(0, log.log_end_offset()).len(), 2);
    assert!(log.producer_state(13).is_some());
    assert!(log.last_stable_offset() < log.log_end_offset());
}

/// A log with producers written as before a kill -9: returns the recovery point.
fn write_with_producers(dir: &Path, interval: i32) -> i64 {
    let log = PartitionLog::create_with_config(dir, TOPIC, 0, config(interval)).expect("create");
    append(&log, producer_batch(7, 0, 2, true));
    log.append_txn_marker(7, 0, 0, false, 0, now_ms())
        .expect("abort");
    for i in 0..10 {
        append(&log, batch(2, 1_000 + i));
    }
    log.close().expect("close");
    drop(log);
    let params = OpenParams {
        config: config(interval),
        clean_shutdown: true,
        ..OpenParams::default()
    };
    let log = PartitionLog::open_with(dir, TOPIC, 0, params).expect("reopen");
    append(&log, producer_batch(9, 0, 3, false));
    log.flush().expect("flush");
    let recovery_point = log.recovery_point();
    append(&log, producer_batch(11, 0, 2, true));
    append(&log, producer_batch(9, 3, 2, false));
    for i in 0..6 {
        append(&log, batch(2, 3_000 + i * 10));
    }
    recovery_point
}

#[test]
fn a_crash_right_after_the_recovery_recovers_the_same_log_again() {
    for interval in [0, 300] {
        let (_tmp, dir) = tmp();
        let recovery_point = write_with_producers(&dir, interval);
        let part = dir.join(partition_dir_name(TOPIC, 0));
        let first = recover_and_compare(&dir, interval, recovery_point);
        let end = first.log_end_offset();
        // The open wrote its snapshot at the log end offset (unsynced) and did not move
        // the recovery point.
        assert!(producer_snapshot::exists(&part, end));
        assert_eq!(first.recovery_point(), recovery_point);
        let expected = state(&first, &dir);
        // Killed again before any flush: the same recovery, from the same snapshots below
        // the recovery point (the one above it is deleted), gives the same log.
        drop(first);
        let second = recover_and_compare(&dir, interval, recovery_point);
        assert_eq!(state(&second, &dir), expected, "interval {interval}");
        assert!(second.producer_state(11).is_some());
        assert!(second.last_stable_offset() < second.log_end_offset());
    }
}

/// [`write_with_producers`], then the offset index of the active segment gets zeros after
/// its entries (preallocated space), which the recovery rewrites.
fn write_with_stale_index(dir: &Path, interval: i32) -> i64 {
    let recovery_point = write_with_producers(dir, interval);
    let index = offset_index_path(&dir.join(partition_dir_name(TOPIC, 0)), 0);
    let mut bytes = fs::read(&index).expect("index");
    bytes.extend_from_slice(&[0u8; 64]);
    fs::write(&index, &bytes).expect("write");
    recovery_point
}

#[test]
fn what_the_recovery_wrote_unsynced_is_synced_before_the_recovery_point_moves() {
    let interval = 0;
    // The offset index file and the snapshot at the log end.
    let unsynced = 2;
    let (_tmp, dir) = tmp();
    let recovery_point = write_with_stale_index(&dir, interval);
    let log = reopen(&dir, interval, recovery_point);
    assert_eq!(log.open_report().recovered_from_index, 1);
    assert_eq!(log.open_report().rebuilt_indexes, 1);
    assert_eq!(log.unsynced_files(), unsynced);
    log.flush().expect("flush");
    assert_eq!(log.recovery_point(), log.log_end_offset());
    assert_eq!(log.unsynced_files(), 0);
    drop(log);

    // A clean close syncs them even when the recovery point does not move.
    let (_tmp, dir) = tmp();
    let recovery_point = write_with_stale_index(&dir, interval);
    let log = reopen(&dir, interval, recovery_point);
    assert_eq!(log.unsynced_files(), unsynced);
    log.close().expect("close");
    assert_eq!(log.unsynced_files(), 0);
    drop(log);

    // And a roll moves the recovery point to the new segment: synced first.
    let (_tmp, dir) = tmp();
    let recovery_point = write_with_stale_index(&dir, interval);
    let log = reopen(&dir, interval, recovery_point);
    assert_eq!(log.unsynced_files(), unsynced);
    log.roll_segment().expect("roll");
    assert!(log.recovery_point() > recovery_point);
    assert_eq!(log.unsynced_files(), 0);
}

#[test]
fn an_open_with_nothing_past_the_recovery_point_rewrites_no_index() {
    let (_tmp, dir) = tmp();
    let interval = 100;
    let recovery_point = write(&dir, interval, 30, 10, 0);
    let log = reopen(&dir, interval, recovery_point);
    assert_eq!(log.open_report().rebuilt_indexes, 0);
    // Only the snapshot at the log end (the last one was taken at the clean close).
    assert_eq!(log.unsynced_files(), 1);
    assert!(producer_snapshot::exists(
        &dir.join(partition_dir_name(TOPIC, 0)),
        log.log_end_offset()
    ));
}
