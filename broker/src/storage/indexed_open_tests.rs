//! Tests of opening segments from their index files after a clean shutdown
//! (`Segment::open_indexed`): no batch of a closed segment read at open, the same answers
//! as a log opened by scanning every batch, and the fallbacks to a scan.

use std::fs;
use std::path::PathBuf;

use bytes::Bytes;
use gregor_protocol::records::{NewRecord, RecordBatchBuilder};

use super::*;
use crate::storage::leader_epoch::EpochEntry;

const NOW: i64 = 1_700_000_000_000;

/// A small deterministic generator (xorshift64*), so that failures reproduce.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

fn tmp() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_owned();
    (tmp, dir)
}

/// A batch of `count` records of `value_len` bytes with timestamps from `ts` (not in order:
/// every third record is older, so that max timestamps do not simply grow).
fn batch(count: usize, value_len: usize, ts: i64) -> Bytes {
    let records: Vec<NewRecord> = (0..count)
        .map(|i| {
            let t = if i % 3 == 2 { ts - 50 } else { ts + i as i64 };
            NewRecord::new(t, None, Some(Bytes::from(vec![b'v'; value_len])))
        })
        .collect();
    RecordBatchBuilder::new().build(&records).expect("batch")
}

fn append(log: &PartitionLog, records: Bytes) {
    let validated = validate_records(records, &log.config(), NOW).expect("valid");
    log.append(validated, 0, NOW).expect("append");
}

/// Everything a reader can ask the log, for every offset and some timestamps.
#[derive(Debug, PartialEq, Eq)]
struct Answers {
    log_end: i64,
    segments: Vec<(i64, i64, u64, i64)>,
    batches: Vec<Option<BatchEntry>>,
    by_time: Vec<Option<TimestampOffset>>,
    max_timestamp: Option<TimestampOffset>,
    reads: Vec<(usize, i64)>,
}

fn answers(log: &PartitionLog, timestamps: &[i64]) -> Answers {
    let log_end = log.log_end_offset();
    let segments = log
        .segments()
        .into_iter()
        .map(|s| (s.base_offset, s.next_offset, s.size, s.max_timestamp))
        .collect();
    Answers {
        log_end,
        segments,
        batches: (0..=log_end).map(|o| log.find_batch(o)).collect(),
        by_time: timestamps
            .iter()
            .map(|&t| log.offset_for_timestamp(t).expect("lookup"))
            .collect(),
        max_timestamp: log.max_timestamp().expect("max"),
        reads: (0..log_end)
            .step_by(7)
            .map(|o| {
                let read = log.read(o, 3000, true).expect("read");
                (read.records.len(), read.high_watermark)
            })
            .collect(),
    }
}

/// Fills a log with random batches and settings; returns the config used.
fn fill(dir: &std::path::Path, rng: &mut Rng) -> LogConfig {
    let config = LogConfig {
        segment_bytes: 2_000 + rng.below(6_000) as i64,
        index_interval_bytes: [0, 1, 100, 700, 4096][rng.below(5) as usize],
        ..LogConfig::default()
    };
    let log = PartitionLog::create_with_config(dir, "t", 0, config.clone()).expect("create");
    let batches = 20 + rng.below(80);
    for i in 0..batches {
        let count = 1 + rng.below(8) as usize;
        let value_len = rng.below(200) as usize;
        append(&log, batch(count, value_len, NOW + (i as i64) * 10));
    }
    log.close().expect("close");
    config
}

#[test]
fn a_clean_open_reads_no_batch_list_and_answers_as_a_full_scan() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..12 {
        let (_tmp, dir) = tmp();
        let config = fill(&dir, &mut rng);
        let timestamps: Vec<i64> = (0..40).map(|i| NOW - 100 + i * 29).collect();
        // The reference: a log opened by scanning (and verifying) every batch.
        let scanned = PartitionLog::open_with_config(&dir, "t", 0, config.clone()).expect("open");
        assert_eq!(scanned.open_report().indexed_segments, 0);
        let segments = scanned.segments().len();
        let expected = answers(&scanned, &timestamps);
        drop(scanned);

        fs::write(dir.join(CLEAN_SHUTDOWN_FILE), b"").expect("marker");
        let log = PartitionLog::open_with_config(&dir, "t", 0, config.clone()).expect("open");
        let report = log.open_report().clone();
        assert_eq!(
            report.indexed_segments, segments,
            "round {round}: {report:?}"
        );
        assert_eq!(report.rebuilt_indexes, 0, "round {round}");
        assert_eq!(log.segments_with_batches_loaded(), 0, "round {round}");
        assert_eq!(log.log_end_offset(), expected.log_end, "round {round}");
        assert_eq!(
            answers(&log, &timestamps),
            expected,
            "round {round} ({config:?})"
        );

        // Appending after the clean open continues the log as before.
        append(&log, batch(2, 10, NOW + 5_000));
        assert_eq!(log.log_end_offset(), expected.log_end + 2);
    }
}

#[test]
fn reading_the_tail_loads_only_the_active_segment() {
    let (_tmp, dir) = tmp();
    let config = LogConfig {
        segment_bytes: 3_000,
        index_interval_bytes: 500,
        ..LogConfig::default()
    };
    let log = PartitionLog::create_with_config(&dir, "t", 0, config.clone()).expect("create");
    for i in 0..60 {
        append(&log, batch(3, 200, NOW + i));
    }
    let end = log.log_end_offset();
    log.close().expect("close");
    drop(log);
    fs::write(dir.join(CLEAN_SHUTDOWN_FILE), b"").expect("marker");
    let log = PartitionLog::open_with_config(&dir, "t", 0, config).expect("open");
    assert!(log.open_report().indexed_segments > 3);
    let size: u64 = fs::read_dir(dir.join("t-0"))
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .map(|p| fs::metadata(p).expect("metadata").len())
        .sum();
    assert_eq!(log.size_bytes(), size);
    assert_eq!(log.segments_with_batches_loaded(), 0);
    let read = log.read(end - 3, 1 << 20, true).expect("read");
    assert!(!read.records.is_empty());
    assert_eq!(log.segments_with_batches_loaded(), 1);
}

#[test]
fn the_time_index_is_read_when_a_timestamp_is_first_needed() {
    let (_tmp, dir) = tmp();
    let config = LogConfig {
        segment_bytes: 3_000,
        index_interval_bytes: 500,
        ..LogConfig::default()
    };
    let log = PartitionLog::create_with_config(&dir, "t", 0, config.clone()).expect("create");
    for i in 0..60 {
        append(&log, batch(3, 200, NOW + i));
    }
    let timestamps: Vec<i64> = (0..10).map(|i| NOW + i * 7).collect();
    let expected = answers(&log, &timestamps);
    log.close().expect("close");
    drop(log);
    let part = dir.join("t-0");
    fs::write(dir.join(CLEAN_SHUTDOWN_FILE), b"").expect("marker");
    let log = PartitionLog::open_with_config(&dir, "t", 0, config.clone()).expect("open");
    let segments = log.open_report().indexed_segments;
    assert!(segments > 3);
    assert_eq!(log.segments_with_max_time_loaded(), 0);
    assert_eq!(answers(&log, &timestamps), expected);
    assert_eq!(log.segments_with_max_time_loaded(), segments);
    drop(log);
    // A time index that fails the sanity check on first use: the batches answer.
    let bases: Vec<i64> = {
        let log = PartitionLog::open_with_config(&dir, "t", 0, config.clone()).expect("open");
        log.segments().iter().map(|s| s.base_offset).collect()
    };
    for base in &bases {
        let path = index::time_index_path(&part, *base);
        let good = fs::read(&path).expect("time index");
        fs::write(&path, &good[..good.len().saturating_sub(5)]).expect("cut");
    }
    fs::write(dir.join(CLEAN_SHUTDOWN_FILE), b"").expect("marker");
    let log = PartitionLog::open_with_config(&dir, "t", 0, config).expect("open");
    assert_eq!(log.open_report().indexed_segments, bases.len());
    assert_eq!(answers(&log, &timestamps), expected);
}

#[test]
fn a_closed_segment_with_a_broken_index_is_scanned_and_its_index_rebuilt() {
    let (_tmp, dir) = tmp();
    let config = LogConfig {
        segment_bytes: 3_000,
        index_interval_bytes: 300,
        ..LogConfig::default()
    };
    let log = PartitionLog::create_with_config(&dir, "t", 0, config.clone()).expect("create");
    for i in 0..40 {
        append(&log, batch(2, 150, NOW + i));
    }
    log.close().expect("close");
    let timestamps: Vec<i64> = (0..10).map(|i| NOW + i * 4).collect();
    let expected = answers(&log, &timestamps);
    let bases: Vec<i64> = log.segments().iter().map(|s| s.base_offset).collect();
    drop(log);
    assert!(bases.len() >= 4);
    let part = dir.join("t-0");
    let good = fs::read(index::offset_index_path(&part, bases[1])).expect("index");
    let good_time = fs::read(index::time_index_path(&part, bases[2])).expect("time index");
    fs::write(dir.join(CLEAN_SHUTDOWN_FILE), b"").expect("marker");
    // Missing offset index of one closed segment, a time index of another cut mid-entry
    // (the time index is only read when a timestamp is first needed, as Kafka's lazy time
    // index: the batches answer for it then).
    fs::remove_file(index::offset_index_path(&part, bases[1])).expect("remove");
    fs::write(
        index::time_index_path(&part, bases[2]),
        &good_time[..good_time.len() - 5],
    )
    .expect("cut");
    let log = PartitionLog::open_with_config(&dir, "t", 0, config.clone()).expect("open");
    let report = log.open_report();
    assert_eq!(report.indexed_segments, bases.len() - 1, "{report:?}");
    assert_eq!(report.rebuilt_indexes, 1, "{report:?}");
    assert_eq!(
        fs::read(index::offset_index_path(&part, bases[1])).expect("index"),
        good
    );
    assert_eq!(answers(&log, &timestamps), expected);
    drop(log);
    // Rebuilt: the next clean open uses them.
    let log = PartitionLog::open_with_config(&dir, "t", 0, config).expect("open");
    assert_eq!(log.open_report().indexed_segments, bases.len());
}

#[test]
fn a_damaged_tail_after_a_clean_shutdown_falls_back_to_a_full_scan() {
    let (_tmp, dir) = tmp();
    let config = LogConfig {
        segment_bytes: 3_000,
        ..LogConfig::default()
    };
    let log = PartitionLog::create_with_config(&dir, "t", 0, config.clone()).expect("create");
    for i in 0..30 {
        append(&log, batch(2, 150, NOW + i));
    }
    log.close().expect("close");
    let end = log.log_end_offset();
    let last = log.segments().last().expect("segments").path.clone();
    drop(log);
    fs::write(dir.join(CLEAN_SHUTDOWN_FILE), b"").expect("marker");
    // Half a batch at the end of the active segment.
    let tail = batch(2, 150, NOW + 99);
    let mut file = fs::OpenOptions::new()
        .append(true)
        .open(&last)
        .expect("open");
    std::io::Write::write_all(&mut file, &tail[..tail.len() / 2]).expect("write");
    drop(file);
    let log = PartitionLog::open_with_config(&dir, "t", 0, config).expect("open");
    assert_eq!(log.open_report().indexed_segments, 0);
    assert_eq!(log.log_end_offset(), end);
    assert!(log.torn_tail().is_some());
}

#[test]
fn the_epoch_cache_comes_from_its_checkpoint_after_a_clean_shutdown() {
    let (_tmp, dir) = tmp();
    let config = LogConfig {
        segment_bytes: 2_000,
        ..LogConfig::default()
    };
    let log = PartitionLog::create_with_config(&dir, "t", 0, config.clone()).expect("create");
    for (i, epoch) in [0, 0, 1, 1, 1, 4, 4, 7].into_iter().enumerate() {
        let validated =
            validate_records(batch(3, 300, NOW + i as i64), &log.config(), NOW).expect("valid");
        log.append(validated, epoch, NOW).expect("append");
    }
    log.close().expect("close");
    let epochs = log.leader_epochs();
    drop(log);
    fs::write(dir.join(CLEAN_SHUTDOWN_FILE), b"").expect("marker");
    let log = PartitionLog::open_with_config(&dir, "t", 0, config).expect("open");
    assert!(log.open_report().indexed_segments > 1);
    assert_eq!(log.leader_epochs(), epochs);
}

/// Flips a byte in the records of the batch of the log's segment `path` holding `offset`
/// (its CRC no longer matches).
fn corrupt_batch(log: &PartitionLog, path: &std::path::Path, offset: i64) {
    let entry = log.find_batch(offset).expect("batch");
    let mut bytes = fs::read(path).expect("segment");
    let at = entry.position as usize + entry.size as usize - 3;
    bytes[at] ^= 0x55;
    fs::write(path, bytes).expect("write");
}

#[test]
fn recovery_verifies_only_from_the_recovery_point() {
    let (_tmp, dir) = tmp();
    let dirs = vec![dir.clone()];
    let manager = LogManager::open(&dirs).expect("open");
    let log = manager.create("r", 0).expect("create");
    for i in 0..3 {
        append(&log, batch(2, 100, NOW + i));
        log.roll_segment().expect("roll");
    }
    for i in 0..10 {
        append(&log, batch(2, 100, NOW + 10 + i));
    }
    log.flush().expect("flush");
    let recovery_point = log.recovery_point();
    assert_eq!(recovery_point, 26);
    manager.checkpoint().expect("checkpoint");
    for i in 0..5 {
        append(&log, batch(2, 100, NOW + 30 + i));
    }
    let end = log.log_end_offset();
    let active = log.segments().last().expect("segment").path.clone();
    // Below the recovery point (synced, checkpointed: not verified again) and above it.
    corrupt_batch(&log, &active, 20);
    drop((log, manager));
    let reopen = || {
        let manager = LogManager::open(&dirs).expect("open");
        let log = manager.get("r", 0).expect("log");
        (manager, log)
    };
    // A torn tail (half a batch) after a kill -9: cut off, the rest kept.
    let tail = batch(2, 100, NOW + 99);
    let mut file = fs::OpenOptions::new()
        .append(true)
        .open(&active)
        .expect("open");
    std::io::Write::write_all(&mut file, &tail[..tail.len() / 2]).expect("write");
    drop(file);
    let (manager, log) = reopen();
    let report = log.open_report().clone();
    assert!(!report.clean_shutdown);
    assert_eq!(report.verified_segments, 1, "{report:?}");
    assert_eq!(
        report.indexed_segments, 3,
        "the segments below the recovery point"
    );
    assert_eq!(
        log.log_end_offset(),
        end,
        "the corrupt batch below it is not read"
    );
    assert_eq!(
        log.torn_tail().expect("torn").reason,
        "batch cut short by the end of the file"
    );
    // A corrupt batch past the recovery point ends the log there.
    corrupt_batch(&log, &active, 30);
    drop((log, manager));
    let (_manager, log) = reopen();
    assert_eq!(log.log_end_offset(), 30);
    assert_eq!(
        log.torn_tail().expect("torn").reason,
        "corrupt batch (CRC mismatch or malformed)"
    );
}

/// Appends a batch of `count` records in leader epoch `epoch`.
fn append_in_epoch(log: &PartitionLog, count: usize, epoch: i32, ts: i64) {
    let validated = validate_records(batch(count, 50, ts), &log.config(), NOW).expect("valid");
    log.append(validated, epoch, NOW).expect("append");
}

/// OffsetForLeaderEpoch's answers for epochs 0 to 8 (the leader's epoch in the metadata
/// being the latest written, so nothing is recorded by the lookups).
fn epoch_answers(log: &PartitionLog) -> Vec<(i32, i64)> {
    let current = log.leader_epochs().last().map_or(-1, |e| e.epoch);
    (0..=8)
        .map(|epoch| log.end_offset_for_epoch(epoch, current))
        .collect()
}

/// Issue 14's bug: after DeleteRecords and a clean shutdown, an index-based open took the
/// epoch cache from the checkpoint without looking at it, so a damaged (or stale) file made
/// every OffsetForLeaderEpoch answer the log end offset. The checkpoint is used only when
/// it agrees with the batch headers the open reads; otherwise every segment is scanned and
/// the file rebuilt. A kill -9 restart still recovers from the recovery point.
#[test]
fn delete_records_then_clean_reopens_keep_the_epoch_answers() {
    let (_tmp, dir) = tmp();
    let dirs = vec![dir.clone()];
    let manager = LogManager::open(&dirs).expect("open");
    let log = manager.create("e", 0).expect("create");
    // Epoch 0 at 0, 2 at 10, 5 at 20, one segment each, and an active segment in epoch 5.
    for (segment, epoch) in [0, 2, 5].into_iter().enumerate() {
        for i in 0..2 {
            append_in_epoch(&log, 5, epoch, NOW + (segment * 2 + i) as i64);
        }
        log.roll_segment().expect("roll");
    }
    append_in_epoch(&log, 4, 5, NOW + 10);
    assert_eq!(log.log_end_offset(), 34);
    // Deletes the first segment and moves epoch 2's entry up to the new log start.
    assert_eq!(
        manager.delete_records("e", 0, 12).expect("delete"),
        Some(12)
    );
    let entries = |pairs: &[(i32, i64)]| -> Vec<EpochEntry> {
        pairs
            .iter()
            .map(|&(epoch, start_offset)| EpochEntry {
                epoch,
                start_offset,
            })
            .collect()
    };
    assert_eq!(log.leader_epochs(), entries(&[(2, 12), (5, 20)]));
    let expected = epoch_answers(&log);
    assert_eq!(
        expected,
        [
            (0, 12),
            (1, 12),
            (2, 20),
            (2, 20),
            (2, 20),
            (5, 34),
            (-1, -1),
            (-1, -1),
            (-1, -1)
        ]
    );
    let checkpoint = dir.join("e-0").join(leader_epoch::LEADER_EPOCH_CHECKPOINT);
    let good = "0\n2\n2 12\n5 20\n";
    assert_eq!(fs::read_to_string(&checkpoint).expect("checkpoint"), good);
    manager.shutdown().expect("shutdown");
    drop((log, manager));

    let reopen = || {
        let manager = LogManager::open(&dirs).expect("open");
        let log = manager.get("e", 0).expect("log");
        (manager, log)
    };
    // A clean reopen trusts the agreeing file: every segment opened from its indexes.
    let (manager, log) = reopen();
    assert!(log.open_report().clean_shutdown);
    assert_eq!(
        log.open_report().indexed_segments,
        3,
        "{:?}",
        log.open_report()
    );
    assert_eq!(log.log_start_offset(), 12);
    assert_eq!(epoch_answers(&log), expected);
    manager.shutdown().expect("shutdown");
    drop((log, manager));

    // A damaged file (the protocol test's) and a stale one (its newest epoch never
    // written): not trusted, the cache rebuilt from the batches, the file repaired.
    for bad in ["0\n1\n9 999\n", "0\n1\n2 12\n", "0\n3\n0 0\n2 12\n5 25\n"] {
        fs::write(&checkpoint, bad).expect("damage");
        let (manager, log) = reopen();
        assert!(log.open_report().clean_shutdown);
        assert_eq!(epoch_answers(&log), expected, "{bad:?}");
        assert_eq!(log.leader_epochs(), entries(&[(2, 12), (5, 20)]), "{bad:?}");
        assert_eq!(log.open_report().indexed_segments, 0, "{bad:?}");
        assert_eq!(fs::read_to_string(&checkpoint).expect("checkpoint"), good);
        manager.shutdown().expect("shutdown");
        drop((log, manager));
    }

    // kill -9 after more writes in a new epoch (nothing synced or checkpointed): the
    // segments below the recovery point are opened from their indexes, the rest scanned
    // and verified, the new epoch found in the batches.
    let (manager, log) = reopen();
    append_in_epoch(&log, 3, 7, NOW + 20);
    drop((log, manager));
    let (_manager, log) = reopen();
    let report = log.open_report().clone();
    assert!(!report.clean_shutdown);
    assert_eq!(report.verified_segments, 1, "{report:?}");
    assert_eq!(report.indexed_segments, 2, "{report:?}");
    assert_eq!(log.log_end_offset(), 37);
    assert_eq!(log.leader_epochs(), entries(&[(2, 12), (5, 20), (7, 34)]));
    assert_eq!(log.end_offset_for_epoch(5, 7), (5, 34));
    assert_eq!(log.end_offset_for_epoch(0, 7), (0, 12));
    assert_eq!(log.end_offset_for_epoch(7, 7), (7, 37));
}
