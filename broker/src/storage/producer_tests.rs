//! Tests of idempotent producer checks through [`PartitionLog`]: duplicates answered with
//! their original offsets, sequence and epoch errors appending nothing, the state rebuilt
//! when the log is reopened, trusted appends, expiration and retention.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use gregor_protocol::records::{NewRecord, RecordBatchBuilder};

use super::segment::now_ms;
use super::*;

pub(super) const TOPIC: &str = "idem";

/// A temporary log directory.
pub(super) fn tmp() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_owned();
    (tmp, dir)
}

/// A batch of `count` records of producer `pid`, first sequence `seq`, timestamps `ts..`.
pub(super) fn idempotent(pid: i64, epoch: i16, seq: i32, count: usize, ts: i64) -> Bytes {
    let records: Vec<NewRecord> = (0..count)
        .map(|i| {
            NewRecord::new(
                ts + i as i64,
                Some(Bytes::from(format!("k{seq}-{i}"))),
                Some(Bytes::from(format!("v{seq}-{i}"))),
            )
        })
        .collect();
    RecordBatchBuilder::new()
        .producer(pid, epoch)
        .base_sequence(seq)
        .build(&records)
        .expect("batch")
}

/// A batch without a producer id.
fn plain(count: usize, ts: i64) -> Bytes {
    let records: Vec<NewRecord> = (0..count)
        .map(|i| NewRecord::new(ts + i as i64, None, Some(Bytes::from_static(b"v"))))
        .collect();
    RecordBatchBuilder::new().build(&records).expect("batch")
}

/// Validates and appends one partition's batches as the Produce path does.
pub(super) fn produce(
    log: &PartitionLog,
    batches: &[Bytes],
    now: i64,
) -> Result<AppendInfo, StorageError> {
    let all: Vec<u8> = batches.iter().flat_map(|b| b.iter().copied()).collect();
    let validated = validate_records(Bytes::from(all), &log.config(), now).expect("valid");
    log.append(validated, 0, now)
}

/// The Kafka error code of a refused append (0 when appended or a duplicate).
pub(super) fn code(result: &Result<AppendInfo, StorageError>) -> i16 {
    match result {
        Ok(_) => 0,
        Err(StorageError::Producer(error)) => error.code(),
        Err(other) => panic!("unexpected error {other}"),
    }
}

pub(super) fn ranges(entry: &ProducerEntry) -> Vec<(i32, i32, i64, i64)> {
    entry
        .batches()
        .map(|b| (b.first_seq, b.last_seq, b.first_offset, b.last_offset))
        .collect()
}

#[test]
fn retries_of_the_last_five_batches_are_answered_with_their_offsets() {
    let (_tmp, dir) = tmp();
    let log = PartitionLog::create(&dir, TOPIC, 0).expect("create");
    let now = now_ms();
    // Another producer and a plain batch in between do not matter.
    produce(&log, &[plain(2, now)], now).expect("plain");
    let mut sent = Vec::new();
    for i in 0..6 {
        let batch = idempotent(7, 0, i * 3, 3, now + i64::from(i));
        let info = produce(&log, std::slice::from_ref(&batch), now).expect("in sequence");
        assert!(!info.duplicate);
        produce(&log, &[idempotent(8, 0, i, 1, now)], now).expect("producer 8");
        sent.push((batch, info));
    }
    let end = log.log_end_offset();
    assert_eq!(end, 2 + 6 * 4);
    for (i, (batch, original)) in sent.iter().enumerate() {
        let retried = produce(&log, std::slice::from_ref(batch), now + 1_000);
        if i == 0 {
            assert_eq!(
                code(&retried),
                OUT_OF_ORDER_SEQUENCE_NUMBER,
                "the sixth batch back is no longer retained"
            );
            continue;
        }
        let info = retried.expect("a duplicate");
        assert_eq!(
            info,
            AppendInfo {
                base_offset: original.base_offset,
                last_offset: original.last_offset,
                log_end_offset: end,
                // Kafka answers a duplicate with the batch's max timestamp.
                log_append_time: now + i as i64 + 2,
                log_start_offset: 0,
                duplicate: true,
            },
            "batch {i}"
        );
    }
    assert_eq!(log.log_end_offset(), end, "no retry was appended");
    let entry = log.producer_state(7).expect("producer 7");
    assert_eq!(entry.epoch(), 0);
    assert_eq!(entry.batches().len(), NUM_BATCHES_TO_RETAIN);
    assert_eq!((entry.last_seq(), entry.last_offset()), (17, 24));
    // The next batch follows.
    let next = produce(&log, &[idempotent(7, 0, 18, 1, now)], now).expect("next");
    assert_eq!((next.base_offset, next.duplicate), (end, false));
    // Plain batches are never deduplicated.
    let batch = plain(1, now);
    let first = produce(&log, std::slice::from_ref(&batch), now).expect("plain");
    let again = produce(&log, &[batch], now).expect("plain again");
    assert_eq!(again.base_offset, first.base_offset + 1);
}

#[test]
fn a_refused_batch_appends_nothing_of_the_request() {
    let (_tmp, dir) = tmp();
    let log = PartitionLog::create(&dir, TOPIC, 0).expect("create");
    let now = now_ms();
    produce(&log, &[idempotent(1, 0, 0, 5, now)], now).expect("first");
    // A gap.
    let gap = produce(&log, &[idempotent(1, 0, 20, 2, now)], now);
    assert_eq!(code(&gap), OUT_OF_ORDER_SEQUENCE_NUMBER);
    let Err(StorageError::Producer(error)) = gap else {
        unreachable!()
    };
    assert_eq!(
        error,
        ProducerStateError::OutOfOrderSequence {
            producer_id: 1,
            offset: 5,
            first_seq: 20,
            last_seq: 4,
        }
    );
    // Good batches with a bad one after them: none is appended.
    let mixed = produce(
        &log,
        &[
            plain(1, now),
            idempotent(1, 0, 5, 1, now),
            idempotent(1, 0, 7, 1, now),
        ],
        now,
    );
    assert_eq!(code(&mixed), OUT_OF_ORDER_SEQUENCE_NUMBER);
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(log.producer_state(1).expect("known").last_seq(), 4);
    // In sequence, several batches in one request chain on each other.
    let info = produce(
        &log,
        &[
            idempotent(1, 0, 5, 1, now),
            plain(1, now),
            idempotent(1, 0, 6, 2, now),
        ],
        now,
    )
    .expect("in sequence");
    assert_eq!((info.base_offset, info.last_offset), (5, 8));
    let entry = log.producer_state(1).expect("known");
    assert_eq!(
        ranges(&entry),
        [(0, 4, 0, 4), (5, 5, 5, 5), (6, 7, 7, 8)],
        "offsets as appended"
    );
}

#[test]
fn epochs_fence_and_restart_sequences() {
    let (_tmp, dir) = tmp();
    let log = PartitionLog::create(&dir, TOPIC, 0).expect("create");
    let now = now_ms();
    produce(&log, &[idempotent(3, 1, 0, 2, now)], now).expect("epoch 1");
    assert_eq!(
        code(&produce(&log, &[idempotent(3, 0, 2, 1, now)], now)),
        INVALID_PRODUCER_EPOCH
    );
    assert_eq!(
        code(&produce(&log, &[idempotent(3, 2, 2, 1, now)], now)),
        OUT_OF_ORDER_SEQUENCE_NUMBER,
        "a new epoch starts at 0"
    );
    produce(&log, &[idempotent(3, 2, 0, 1, now)], now).expect("epoch 2 at 0");
    assert_eq!(
        code(&produce(&log, &[idempotent(3, 1, 2, 1, now)], now)),
        INVALID_PRODUCER_EPOCH,
        "epoch 1 is fenced now"
    );
    let entry = log.producer_state(3).expect("known");
    assert_eq!((entry.epoch(), ranges(&entry)), (2, vec![(0, 0, 2, 2)]));
    // A producer this partition never saw may start anywhere.
    produce(&log, &[idempotent(4, 9, 1_000, 1, now)], now).expect("unknown producer");
    assert_eq!(log.log_end_offset(), 4);
}

#[test]
fn duplicates_carry_the_log_append_time() {
    let (_tmp, dir) = tmp();
    let log = PartitionLog::create_with_config(
        &dir,
        TOPIC,
        0,
        LogConfig {
            timestamp_type: TimestampType::LogAppendTime,
            ..LogConfig::default()
        },
    )
    .expect("create");
    let now = now_ms();
    let batch = idempotent(1, 0, 0, 2, now - 5_000);
    let first = produce(&log, std::slice::from_ref(&batch), now).expect("first");
    assert_eq!(first.log_append_time, now);
    let retried = produce(&log, &[batch], now + 50).expect("retry");
    assert!(retried.duplicate);
    assert_eq!(
        (retried.base_offset, retried.log_append_time),
        (0, now),
        "the time it was appended at"
    );
}

/// Appends batches of two producers across several segments and returns the states.
fn fill(log: &PartitionLog, now: i64) -> Vec<(i64, ProducerEntry)> {
    for i in 0..8 {
        produce(log, &[idempotent(1, 0, i * 2, 2, now)], now).expect("producer 1");
        if i % 3 == 0 {
            log.roll_segment().expect("roll");
        }
    }
    produce(log, &[idempotent(2, 0, 0, 1, now)], now).expect("producer 2");
    produce(log, &[idempotent(2, 1, 0, 1, now)], now).expect("producer 2, epoch 1");
    log.producer_states()
}

#[test]
fn the_state_is_rebuilt_when_the_log_is_reopened() {
    for clean in [true, false] {
        let (_tmp, dir) = tmp();
        let now = now_ms();
        let before = {
            let log = PartitionLog::create(&dir, TOPIC, 0).expect("create");
            let states = fill(&log, now);
            log.close().expect("close");
            states
        };
        assert!(log_segments(&dir).len() > 2);
        // A snapshot at each roll and one at close.
        assert_eq!(snapshots(&dir), [2, 8, 14, 18]);
        if clean {
            fs::write(dir.join(CLEAN_SHUTDOWN_FILE), b"").expect("marker");
        }
        let log = PartitionLog::open(&dir, TOPIC, 0).expect("reopen");
        let after = log.producer_states();
        let entry = log.producer_state(1).expect("producer 1");
        if clean {
            // Loaded from the snapshot at the log end: each producer's last batch only, as
            // Kafka's snapshots keep it; epochs, last sequence, offset and timestamp kept.
            assert_eq!(ranges(&entry), [(14, 15, 14, 15)]);
            assert_eq!(after.len(), before.len());
            for ((id, was), (same_id, now)) in before.iter().zip(&after) {
                assert_eq!(id, same_id);
                assert_eq!(was.epoch(), now.epoch());
                assert_eq!(was.last_seq(), now.last_seq());
                assert_eq!(was.last_offset(), now.last_offset());
                assert_eq!(was.last_timestamp(), now.last_timestamp());
                assert_eq!(was.batches().last(), now.batches().last());
                assert_eq!(now.coordinator_epoch(), -1);
                assert_eq!(now.current_txn_first_offset(), None);
            }
            assert_eq!(snapshots(&dir), [2, 8, 14, 18]);
        } else {
            // Without the marker the snapshots above the first segment recovered (all of
            // them: there is no recovery point) are deleted and the whole log replayed; the
            // replay snapshots the last two segments' bases and the log end again.
            assert_eq!(after, before);
            assert_eq!(entry.batches().len(), NUM_BATCHES_TO_RETAIN);
            assert_eq!(snapshots(&dir), [8, 14, 18]);
        }
        assert_eq!((entry.last_seq(), entry.last_offset()), (15, 15));
        let epoch = log.producer_state(2).expect("producer 2");
        assert_eq!((epoch.epoch(), ranges(&epoch)), (1, vec![(0, 0, 17, 17)]));

        // Retries of the last batch are still recognised, sequences still checked.
        let last = produce(&log, &[idempotent(1, 0, 14, 2, now)], now).expect("retry");
        assert_eq!((last.duplicate, last.base_offset), (true, 14));
        let older = produce(&log, &[idempotent(1, 0, 8, 2, now)], now);
        if clean {
            // Kafka forgets the older retained batches across a restart from a snapshot.
            assert_eq!(code(&older), OUT_OF_ORDER_SEQUENCE_NUMBER);
        } else {
            let older = older.expect("retry");
            assert_eq!((older.duplicate, older.base_offset), (true, 8));
        }
        let gap = produce(&log, &[idempotent(1, 0, 20, 2, now)], now);
        assert_eq!(code(&gap), OUT_OF_ORDER_SEQUENCE_NUMBER);
        let old = produce(&log, &[idempotent(2, 0, 1, 1, now)], now);
        assert_eq!(code(&old), INVALID_PRODUCER_EPOCH);
        let next = produce(&log, &[idempotent(1, 0, 16, 2, now)], now).expect("next");
        assert_eq!((next.duplicate, next.base_offset), (false, 18));
    }
}

/// The offsets of the partition's producer snapshot files.
pub(super) fn snapshots(dir: &Path) -> Vec<i64> {
    super::producer_snapshot::list_snapshots(&dir.join(format!("{TOPIC}-0"))).expect("list")
}

pub(super) fn log_segments(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir.join(format!("{TOPIC}-0")))
        .expect("partition dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    found.sort();
    found
}

#[test]
fn a_torn_batch_is_not_in_the_rebuilt_state() {
    let (_tmp, dir) = tmp();
    let now = now_ms();
    let second_len = {
        let log = PartitionLog::create(&dir, TOPIC, 0).expect("create");
        produce(&log, &[idempotent(1, 0, 0, 3, now)], now).expect("first");
        let second = idempotent(1, 0, 3, 3, now);
        produce(&log, std::slice::from_ref(&second), now).expect("second");
        log.close().expect("close");
        second.len() as u64
    };
    // A crash in the middle of the second batch.
    let segment = log_segments(&dir).pop().expect("a segment");
    let len = fs::metadata(&segment).expect("metadata").len();
    let file = fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .expect("open");
    file.set_len(len - second_len / 2).expect("truncate");
    drop(file);
    let log = PartitionLog::open(&dir, TOPIC, 0).expect("reopen");
    assert!(log.torn_tail().is_some());
    assert_eq!(log.log_end_offset(), 3);
    assert_eq!(log.producer_state(1).expect("known").last_seq(), 2);
    // The producer's retry is appended: the batch was lost.
    let retried = produce(&log, &[idempotent(1, 0, 3, 3, now)], now).expect("retry");
    assert_eq!((retried.duplicate, retried.base_offset), (false, 3));
}

#[test]
fn trusted_appends_are_recorded_without_checks() {
    let (_tmp, dir) = tmp();
    let log = PartitionLog::create(&dir, TOPIC, 0).expect("create");
    let now = now_ms();
    produce(&log, &[idempotent(1, 0, 0, 2, now)], now).expect("first");
    // A gap, through the unchecked path.
    let mut batch = idempotent(1, 0, 10, 2, now).to_vec();
    let info = log.append_batch(&mut batch).expect("trusted");
    assert_eq!((info.base_offset, info.duplicate), (2, false));
    let entry = log.producer_state(1).expect("known");
    assert_eq!(ranges(&entry), [(0, 1, 0, 1), (10, 11, 2, 3)]);
    // The same bytes again are not deduplicated either.
    let mut again = idempotent(1, 0, 10, 2, now).to_vec();
    assert_eq!(log.append_batch(&mut again).expect("again").base_offset, 4);
    // Control batches are not producer batches.
    let mut control = RecordBatchBuilder::new()
        .producer(5, 0)
        .base_sequence(0)
        .control(true)
        .build(&[NewRecord::new(now, None, None)])
        .expect("control")
        .to_vec();
    log.append_batch(&mut control).expect("control batch");
    assert!(log.producer_state(5).is_none());
    // Client appends check against what the trusted ones recorded.
    produce(&log, &[idempotent(1, 0, 12, 1, now)], now).expect("follows 11");
}

#[test]
fn producers_expire_but_outlive_their_batches() {
    let (_tmp, dir) = tmp();
    let config = LogConfig {
        segment_bytes: 200,
        retention_ms: -1,
        producer_id_expiration_ms: 60_000,
        ..LogConfig::default()
    };
    let log = PartitionLog::create_with_config(&dir, TOPIC, 0, config.clone()).expect("create");
    let now = now_ms();
    for i in 0..4 {
        produce(&log, &[idempotent(1, 0, i, 1, now - 30_000)], now).expect("producer 1");
    }
    produce(&log, &[idempotent(2, 0, 0, 1, now)], now).expect("producer 2");
    assert!(log.segments().len() > 2, "small segments");
    // DeleteRecords removing producer 1's batches keeps its state, as Kafka does.
    log.delete_records_before(4).expect("delete records");
    assert_eq!(log.log_start_offset(), 4);
    assert_eq!(
        code(&produce(&log, &[idempotent(1, 0, 9, 1, now)], now)),
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    let retried = produce(&log, &[idempotent(1, 0, 3, 1, now - 30_000)], now).expect("retry");
    assert_eq!(
        (
            retried.duplicate,
            retried.base_offset,
            retried.log_start_offset
        ),
        (true, 3, 4)
    );
    // The periodic check expires producers whose last batch is older than the expiration
    // (retention does not).
    assert_eq!(log.enforce_retention(now + 30_000).expect("retention"), 0);
    assert_eq!(log.expire_producers(now), 0);
    assert_eq!(log.producer_states().len(), 2);
    assert_eq!(log.expire_producers(now + 30_000), 1);
    assert!(log.producer_state(1).is_none(), "expired");
    assert!(log.producer_state(2).is_some(), "not yet");
    // An expired producer is unknown: any sequence is accepted.
    produce(&log, &[idempotent(1, 0, 9, 1, now)], now).expect("unknown again");

    // Loading a snapshot drops the producers expired by the wall clock.
    produce(&log, &[idempotent(3, 0, 0, 1, now - 61_000)], now).expect("old timestamps");
    log.close().expect("close");
    drop(log);
    fs::write(dir.join(CLEAN_SHUTDOWN_FILE), b"").expect("marker");
    let log = PartitionLog::open_with_config(&dir, TOPIC, 0, config.clone()).expect("reopen");
    let known: Vec<i64> = log.producer_states().iter().map(|(id, _)| *id).collect();
    assert_eq!(known, [1, 2]);
    // The next snapshot no longer holds it (the one at the log end stays as written: a
    // snapshot is only taken at a newer offset, as in Kafka).
    produce(&log, &[idempotent(2, 0, 1, 1, now)], now).expect("producer 2");
    let rolled = log.roll_segment().expect("roll");
    drop(log);
    fs::remove_file(dir.join(CLEAN_SHUTDOWN_FILE)).expect("no marker");
    let part = dir.join(format!("{TOPIC}-0"));
    let in_snapshot =
        super::producer_snapshot::read_snapshot(&part.join(format!("{rolled:020}.snapshot")))
            .expect("snapshot at the roll");
    let ids: Vec<i64> = in_snapshot.iter().map(|e| e.producer_id).collect();
    assert_eq!(ids, [1, 2]);
    // Replayed batches are not expired at open (Kafka's periodic check does that): a full
    // replay (no recovery point) brings producer 3 back until the next check.
    let log = PartitionLog::open_with_config(&dir, TOPIC, 0, config).expect("reopen");
    let known: Vec<i64> = log.producer_states().iter().map(|(id, _)| *id).collect();
    assert_eq!(known, [1, 2, 3]);
    assert_eq!(log.expire_producers(now_ms()), 1);
}
