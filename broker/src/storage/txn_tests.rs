//! Tests of transactions through [`PartitionLog`]: the LSO as interleaved transactional
//! producers commit and abort, the `.txnindex` bytes, READ_COMMITTED reads, markers with
//! stale epochs, and recovery after clean and unclean stops.

use std::fs;
use std::path::PathBuf;

use bytes::Bytes;
use gregor_protocol::error_code;
use gregor_protocol::records::{NewRecord, RecordBatch, RecordBatchBuilder};

use super::segment::now_ms;
use super::txn_index::txn_index_path;
use super::*;

const TOPIC: &str = "txn";

fn tmp() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_owned();
    (tmp, dir)
}

/// A batch of `count` records of producer `pid`, transactional or not.
pub(super) fn batch(pid: i64, seq: i32, count: usize, transactional: bool) -> Bytes {
    let records: Vec<NewRecord> = (0..count)
        .map(|i| NewRecord::new(now_ms(), None, Some(Bytes::from(format!("v{seq}-{i}")))))
        .collect();
    RecordBatchBuilder::new()
        .producer(pid, 0)
        .base_sequence(seq)
        .transactional(transactional)
        .build(&records)
        .expect("batch")
}

fn produce(log: &PartitionLog, batch: Bytes) -> Result<AppendInfo, StorageError> {
    let now = now_ms();
    let validated = validate_records(batch, &log.config(), now).expect("valid");
    log.append(validated, 0, now)
}

fn marker(log: &PartitionLog, pid: i64, coordinator_epoch: i32, commit: bool) -> AppendInfo {
    log.append_txn_marker(pid, 0, coordinator_epoch, commit, 0, now_ms())
        .expect("marker")
}

fn code(result: Result<AppendInfo, StorageError>) -> i16 {
    match result {
        Ok(_) => 0,
        Err(StorageError::Producer(error)) => error.code(),
        Err(other) => panic!("unexpected error {other}"),
    }
}

/// (base offset, transactional, control) of every batch in `records`.
fn batches(records: &Bytes) -> Vec<(i64, bool, bool)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < records.len() {
        let header = gregor_protocol::records::BatchHeader::decode(&records[at..]).expect("batch");
        out.push((
            header.base_offset,
            header.is_transactional(),
            header.is_control(),
        ));
        at += header.batch_length as usize + 12;
    }
    out
}

fn aborted(pid: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
    AbortedTxn {
        producer_id: pid,
        first_offset: first,
        last_offset: last,
        last_stable_offset: lso,
    }
}

#[test]
fn the_lso_follows_interleaved_transactions() {
    let (_tmp, dir) = tmp();
    let log = PartitionLog::create(&dir, TOPIC, 0).expect("create");
    assert_eq!(log.last_stable_offset(), 0);
    produce(&log, batch(1, 0, 2, true)).expect("p1 at 0-1");
    assert_eq!(log.last_stable_offset(), 0);
    produce(&log, batch(2, 0, 1, true)).expect("p2 at 2");
    produce(&log, batch(3, 0, 1, false)).expect("idempotent p3 at 3");
    assert_eq!((log.last_stable_offset(), log.high_watermark()), (0, 4));
    // A non-transactional batch of a producer in a transaction.
    assert_eq!(
        code(produce(&log, batch(1, 2, 1, false))),
        error_code::INVALID_TXN_STATE
    );
    assert_eq!(log.log_end_offset(), 4, "nothing appended");
    let entry = log.producer_state(1).expect("p1");
    assert_eq!(entry.current_txn_first_offset(), Some(0));

    // p1 commits at 4: p2's transaction (from 2) holds the LSO.
    let commit = marker(&log, 1, 3, true);
    assert_eq!((commit.base_offset, commit.last_offset), (4, 4));
    assert_eq!(log.last_stable_offset(), 2);
    let entry = log.producer_state(1).expect("p1");
    assert_eq!(
        (entry.current_txn_first_offset(), entry.coordinator_epoch()),
        (None, 3)
    );
    // p1 starts another transaction at 5, then p2 aborts at 6.
    produce(&log, batch(1, 2, 1, true)).expect("p1 at 5");
    marker(&log, 2, 3, false);
    assert_eq!(log.last_stable_offset(), 5);
    // The abort's entry records the LSO after it: p1's transaction at 5.
    assert_eq!(log.transaction_index(0), [aborted(2, 2, 6, 5)]);
    let golden: Vec<u8> = [
        &0i16.to_be_bytes()[..],
        &2i64.to_be_bytes(),
        &2i64.to_be_bytes(),
        &6i64.to_be_bytes(),
        &5i64.to_be_bytes(),
    ]
    .concat();
    assert_eq!(fs::read(txn_index_path(log.dir(), 0)).unwrap(), golden);
    // p1 aborts too: nothing ongoing, the LSO is the high watermark.
    marker(&log, 1, 3, false);
    assert_eq!(log.last_stable_offset(), 8);
    assert_eq!(log.high_watermark(), 8);
    assert_eq!(log.transaction_index(0)[1], aborted(1, 5, 7, 8));
    // A marker without a transaction is written but changes no index.
    marker(&log, 1, 3, true);
    assert_eq!(log.transaction_index(0).len(), 2);
    assert_eq!(log.last_stable_offset(), 9);
    // Producer 3 never noticed anything.
    produce(&log, batch(3, 1, 1, false)).expect("p3 again");
}

#[test]
fn markers_are_kafkas_control_batches() {
    let (_tmp, dir) = tmp();
    let log = PartitionLog::create(&dir, "__consumer_offsets", 0).expect("create");
    produce(&log, batch(7, 0, 1, true)).expect("txn");
    log.append_txn_marker(7, 0, 9, true, 4, 1_234)
        .expect("marker");
    let read = log.read(1, 1 << 20, true).expect("read");
    let marker = RecordBatch::parse(read.records).expect("a batch");
    let header = marker.header();
    assert!(header.is_control() && header.is_transactional());
    assert_eq!(
        (
            header.producer_id,
            header.producer_epoch,
            header.base_sequence
        ),
        (7, 0, -1)
    );
    assert_eq!(header.partition_leader_epoch, 4);
    let record = marker.records().next().expect("one record").expect("valid");
    assert_eq!(
        record.key.as_deref(),
        Some(&[0, 0, 0, 1][..]),
        "version 0, commit"
    );
    assert_eq!(record.value.as_deref(), Some(&[0, 0, 0, 0, 0, 9][..]));
    assert_eq!(record.timestamp(), 1_234);
}

#[test]
fn markers_with_stale_epochs_are_refused() {
    let (_tmp, dir) = tmp();
    let log = PartitionLog::create(&dir, TOPIC, 0).expect("create");
    let txn = RecordBatchBuilder::new()
        .producer(1, 2)
        .base_sequence(0)
        .transactional(true)
        .build(&[NewRecord::new(
            now_ms(),
            None,
            Some(Bytes::from_static(b"x")),
        )])
        .expect("batch");
    produce(&log, txn).expect("epoch 2");
    let stale = log.append_txn_marker(1, 1, 0, true, 0, now_ms());
    assert_eq!(code(stale), error_code::INVALID_PRODUCER_EPOCH);
    assert_eq!(log.log_end_offset(), 1, "nothing appended");
    log.append_txn_marker(1, 2, 5, false, 0, now_ms())
        .expect("abort");
    let fenced = log.append_txn_marker(1, 2, 4, false, 0, now_ms());
    assert_eq!(code(fenced), error_code::TRANSACTION_COORDINATOR_FENCED);
    assert_eq!(log.log_end_offset(), 2);
    assert!(matches!(
        log.append_txn_marker(-1, 0, 0, true, 0, now_ms()),
        Err(StorageError::InvalidBatch(_))
    ));
}

#[test]
fn read_committed_stops_at_the_lso_and_lists_aborted_transactions() {
    let (_tmp, dir) = tmp();
    let log = PartitionLog::create(&dir, TOPIC, 0).expect("create");
    produce(&log, batch(1, 0, 1, true)).expect("p1 at 0");
    produce(&log, batch(2, 0, 2, true)).expect("p2 at 1-2");
    marker(&log, 2, 0, false); // 3, LSO stays 0 (p1)
    log.roll_segment().expect("roll");
    produce(&log, batch(3, 0, 1, false)).expect("plain at 4");
    produce(&log, batch(4, 0, 1, true)).expect("p4 at 5");

    // Uncommitted: everything, no list.
    let read = log.read_isolated(0, 1 << 20, true, false).expect("read");
    assert_eq!(batches(&read.records).len(), 5);
    assert_eq!(
        (read.last_stable_offset, read.aborted_transactions),
        (0, None)
    );
    // Committed: nothing past the LSO (0), even at offsets up to the end.
    let read = log.read_isolated(0, 1 << 20, true, true).expect("read");
    assert!(read.records.is_empty());
    assert_eq!(read.aborted_transactions, Some(Vec::new()));
    assert!(
        log.read_isolated(4, 1 << 20, true, true)
            .unwrap()
            .records
            .is_empty()
    );
    assert!(log.read_isolated(7, 1 << 20, true, true).is_err());

    marker(&log, 1, 0, true); // 6: LSO 5 (p4)
    assert_eq!(log.last_stable_offset(), 5);
    let read = log.read_isolated(0, 1 << 20, true, true).expect("read");
    assert_eq!(
        batches(&read.records)
            .iter()
            .map(|b| b.0)
            .collect::<Vec<_>>(),
        [0, 1, 3, 4],
        "across the segments, up to the LSO"
    );
    assert_eq!(read.last_stable_offset, 5);
    assert_eq!(read.aborted_transactions, Some(vec![aborted(2, 1, 3, 0)]));
    // From after the abort: it does not overlap.
    let read = log.read_isolated(4, 1 << 20, true, true).expect("read");
    assert_eq!(batches(&read.records).len(), 1);
    assert_eq!(read.aborted_transactions, Some(Vec::new()));
    // p4 aborts: its transaction is listed for reads reaching it.
    marker(&log, 4, 0, false);
    let read = log.read_isolated(4, 1 << 20, true, true).expect("read");
    assert_eq!(batches(&read.records).len(), 4);
    assert_eq!(read.aborted_transactions, Some(vec![aborted(4, 5, 7, 8)]));
    assert_eq!(log.transaction_index(4), [aborted(4, 5, 7, 8)]);
    assert_eq!(
        log.aborted_transactions(0, 8),
        [aborted(2, 1, 3, 0), aborted(4, 5, 7, 8)]
    );
}

#[test]
fn recovery_rebuilds_ongoing_transactions_and_the_index() {
    for clean in [false, true] {
        let (_tmp, dir) = tmp();
        let (index0, index1) = {
            let log = PartitionLog::create(&dir, TOPIC, 0).expect("create");
            produce(&log, batch(1, 0, 1, true)).expect("p1 at 0");
            produce(&log, batch(2, 0, 1, true)).expect("p2 at 1");
            log.roll_segment().expect("roll");
            marker(&log, 1, 2, false); // 2, in the second segment
            produce(&log, batch(3, 0, 1, true)).expect("p3 at 3");
            marker(&log, 2, 2, true); // 4
            log.close().expect("close");
            assert_eq!(log.last_stable_offset(), 3);
            (log.transaction_index(0), log.transaction_index(2))
        };
        assert!(index0.is_empty());
        assert_eq!(index1, [aborted(1, 0, 2, 1)]);
        let file = txn_index_path(&dir.join(format!("{TOPIC}-0")), 2);
        let bytes = fs::read(&file).expect("txnindex");
        if clean {
            fs::write(dir.join(CLEAN_SHUTDOWN_FILE), b"").expect("marker");
        } else {
            // An unclean stop: the index is rebuilt from the batches.
            fs::remove_file(&file).expect("remove");
        }
        let log = PartitionLog::open(&dir, TOPIC, 0).expect("reopen");
        assert_eq!(log.last_stable_offset(), 3, "clean: {clean}");
        assert_eq!(log.transaction_index(2), index1);
        assert_eq!(fs::read(&file).expect("txnindex"), bytes);
        let p3 = log.producer_state(3).expect("p3");
        assert_eq!(p3.current_txn_first_offset(), Some(3));
        assert_eq!(log.producer_state(2).unwrap().coordinator_epoch(), 2);
        // The coordinator epoch survives: an older coordinator is fenced.
        let fenced = log.append_txn_marker(2, 0, 1, true, 0, now_ms());
        assert_eq!(code(fenced), error_code::TRANSACTION_COORDINATOR_FENCED);
        marker(&log, 3, 2, false);
        assert_eq!(log.last_stable_offset(), 6);
        assert_eq!(log.transaction_index(2)[1], aborted(3, 3, 5, 6));
        drop(log);
        // A corrupt index after a clean stop is rebuilt.
        fs::write(dir.join(CLEAN_SHUTDOWN_FILE), b"").expect("marker");
        let mut damaged = fs::read(&file).expect("txnindex");
        damaged.push(1);
        fs::write(&file, damaged).expect("damage");
        let log = PartitionLog::open(&dir, TOPIC, 0).expect("reopen");
        assert_eq!(log.transaction_index(2).len(), 2);
        assert_eq!(fs::metadata(&file).unwrap().len(), 68);
    }
}

#[test]
fn transaction_indexes_go_with_their_segments() {
    let (_tmp, dir) = tmp();
    let log = PartitionLog::create(&dir, TOPIC, 0).expect("create");
    produce(&log, batch(1, 0, 1, true)).expect("p1 at 0");
    marker(&log, 1, 0, false);
    log.roll_segment().expect("roll");
    produce(&log, batch(2, 0, 1, false)).expect("plain");
    let file = txn_index_path(log.dir(), 0);
    assert!(file.exists());
    log.advance_log_start_offset(2).expect("delete records");
    assert!(!file.exists(), "deleted with its segment");
    assert!(log.aborted_transactions(0, 3).is_empty());
}

#[test]
fn verification_guards_gate_the_first_transactional_batch() {
    let (_tmp, dir) = tmp();
    let log = PartitionLog::create(&dir, TOPIC, 0).expect("create");
    let append = |guard| {
        let now = now_ms();
        let validated = validate_records(batch(1, 0, 1, true), &log.config(), now).unwrap();
        log.append_with_verification(validated, 0, now, TxnVerification::Guard(guard))
    };
    assert_eq!(
        code(append(VerificationGuard::SENTINEL)),
        error_code::INVALID_TXN_STATE
    );
    let guard = log.start_txn_verification(1, 0, 0);
    append(guard).expect("verified");
    assert!(log.has_ongoing_txn(1));
    assert_eq!(
        log.start_txn_verification(1, 1, 0),
        VerificationGuard::SENTINEL
    );
}
