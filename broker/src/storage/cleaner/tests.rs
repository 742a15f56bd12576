//! Tests of the cleaner on real partition logs in temporary directories: a property test
//! against a model of compaction, crashes at every step of a swap, producers' last
//! batches, transactions, and the manager's choice and checkpoint.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use gregor_protocol::records::{
    Batch, Compression, ControlRecordKey, ControlRecordType, NewRecord, RecordBatchBuilder,
    RecordBatches,
};
use proptest::prelude::*;

use super::*;
use crate::storage::partition::CrashPoint;
use crate::storage::{LogConfig, PartitionLog};

const TOPIC: &str = "compacted";
const DELETE_RETENTION_MS: i64 = 1_000;

fn config() -> LogConfig {
    let mut config = LogConfig {
        segment_bytes: 400,
        delete_retention_ms: DELETE_RETENTION_MS,
        ..LogConfig::default()
    };
    config.cleanup_policy.compact = true;
    config.cleanup_policy.delete = false;
    config
}

fn cleaner() -> Cleaner {
    Cleaner::new(1 << 20, 0.9, 64 * 1024, Arc::new(Throttler::new(f64::MAX)))
}

/// One record as read back: offset, key, value (`None`: tombstone).
type Row = (i64, Vec<u8>, Option<Vec<u8>>);

/// Batches to append: a codec choice and (key, value) records.
type Batches = Vec<(u8, Vec<(u8, Option<u8>)>)>;

/// Appends one batch of `records` (key, value) with `codec`, timestamps `ts`.
fn append(log: &PartitionLog, records: &[(u8, Option<u8>)], codec: Compression, ts: i64) {
    let records: Vec<NewRecord> = records
        .iter()
        .map(|(k, v)| {
            NewRecord::new(
                ts,
                Some(Bytes::from(vec![b'k', *k])),
                v.map(|v| Bytes::from(vec![v; 20])),
            )
        })
        .collect();
    let mut batch = RecordBatchBuilder::new()
        .compression(codec)
        .build(&records)
        .expect("batch")
        .to_vec();
    log.append_batch(&mut batch).expect("append");
}

/// Every record of the log, checking each batch (CRC and structure).
fn read_all(log: &PartitionLog) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut offset = log.log_start_offset();
    let end = log.log_end_offset();
    while offset < end {
        let read = log.read(offset, 1 << 20, true).expect("read");
        if read.records.is_empty() {
            break;
        }
        let mut last = offset;
        for batch in RecordBatches::new(read.records.clone()) {
            let Batch::V2(batch) = batch.expect("a batch") else {
                panic!("legacy batch")
            };
            batch.validate().expect("a valid batch");
            last = batch.last_offset();
            if batch.is_control() {
                continue;
            }
            for record in batch.records() {
                let record = record.expect("record");
                if record.offset >= offset {
                    rows.push((
                        record.offset,
                        record.key.expect("keyed").to_vec(),
                        record.value.map(|v| v.to_vec()),
                    ));
                }
            }
        }
        offset = last + 1;
    }
    rows
}

/// Cleans `log` once as a cleaner thread would (first dirty offset from `checkpoint`),
/// at `now`; returns the end offset.
fn clean_once(
    log: &Arc<PartitionLog>,
    cleaner: &mut Cleaner,
    checkpoint: Option<i64>,
    now: i64,
    crash: Option<CrashPoint>,
) -> Result<i64, CleanError> {
    let (chosen, _) = LogToClean::compute(Arc::clone(log), checkpoint, now);
    let plan = log.compact(cleaner, &chosen, &[], now, &|| false, crash)?;
    Ok(plan.end_offset)
}

/// The model: below `end`, the latest record of each key (tombstones only while
/// `keep_tombstone(offset)`); from `end` on, everything.
fn model(rows: &[Row], end: i64, keep_tombstone: impl Fn(i64) -> bool) -> Vec<Row> {
    let mut latest: HashMap<Vec<u8>, i64> = HashMap::new();
    for (offset, key, _) in rows.iter().filter(|r| r.0 < end) {
        latest.insert(key.clone(), *offset);
    }
    rows.iter()
        .filter(|(offset, key, value)| {
            *offset >= end
                || (latest[key] == *offset && (value.is_some() || keep_tombstone(*offset)))
        })
        .cloned()
        .collect()
}

fn codec(i: u8) -> Compression {
    match i % 3 {
        0 => Compression::None,
        1 => Compression::Lz4,
        _ => Compression::Gzip,
    }
}

/// Appends `batches` (each a codec choice and records), then rolls so that they are all
/// cleanable, then appends `active` into the active segment.
fn fill(log: &PartitionLog, batches: &Batches, active: &[(u8, Option<u8>)], ts: i64) {
    for (c, records) in batches {
        append(log, records, codec(*c), ts);
    }
    log.roll_segment().expect("roll");
    if !active.is_empty() {
        append(log, active, Compression::None, ts);
    }
}

fn records_strategy() -> impl Strategy<Value = Batches> {
    let record = (0u8..10, prop::option::weighted(0.8, any::<u8>()));
    prop::collection::vec((any::<u8>(), prop::collection::vec(record, 1..5)), 1..40)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random keyed appends with tombstones over many small segments, cleaned twice:
    /// the latest value per key survives at its offset, tombstones until their delete
    /// horizon, the active segment is untouched, and the cleaned log reopens the same.
    #[test]
    fn cleaning_matches_the_model(
        first in records_strategy(),
        second in records_strategy(),
        active in prop::collection::vec((0u8..10, prop::option::of(any::<u8>())), 0..4),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let log = Arc::new(PartitionLog::create_with_config(tmp.path(), TOPIC, 0, config()).unwrap());
        let t0 = 1_000_000;
        fill(&log, &first, &[], t0);
        let before = read_all(&log);
        let mut cleaner = cleaner();
        let end = clean_once(&log, &mut cleaner, None, t0, None).unwrap();
        prop_assert_eq!(end, log.log_end_offset());
        // First cleaning: tombstones get a delete horizon and stay.
        let expected = model(&before, end, |_| true);
        prop_assert_eq!(&read_all(&log), &expected);

        // More updates, cleaned after the horizon: the first part's tombstones go.
        let mid = log.log_end_offset();
        fill(&log, &second, &active, t0 + 1);
        let all_before = read_all(&log);
        let active_start = log.segments().last().unwrap().base_offset;
        let t1 = t0 + DELETE_RETENTION_MS + 1;
        let end2 = clean_once(&log, &mut cleaner, Some(end), t1, None).unwrap();
        prop_assert_eq!(end2, active_start);
        let expected = model(&all_before, end2, |offset| offset >= mid);
        let after = read_all(&log);
        prop_assert_eq!(&after, &expected);
        // The active segment is never touched.
        let tail: Vec<&Row> = all_before.iter().filter(|r| r.0 >= active_start).collect();
        let tail_after: Vec<&Row> = after.iter().filter(|r| r.0 >= active_start).collect();
        prop_assert_eq!(tail, tail_after);

        // The cleaned files are a valid log: reopened, the same records.
        log.close().unwrap();
        drop(log);
        let reopened = PartitionLog::open_with_config(tmp.path(), TOPIC, 0, config()).unwrap();
        prop_assert!(reopened.torn_tail().is_none());
        prop_assert_eq!(&read_all(&reopened), &expected);
        prop_assert_eq!(reopened.log_end_offset(), all_before.last().map_or(0, |r| r.0 + 1).max(reopened.log_end_offset()));
    }
}

/// The files of the partition directory with a suffix.
fn leftovers(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| {
            n.ends_with(CLEANED_SUFFIX) || n.ends_with(SWAP_SUFFIX) || n.ends_with(".deleted")
        })
        .collect()
}

#[test]
fn a_crash_at_every_step_of_a_swap_leaves_a_valid_log_without_loss() {
    for crash in [
        CrashPoint::Cleaned,
        CrashPoint::SwapRenamed,
        CrashPoint::OldDeleted,
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let log =
            Arc::new(PartitionLog::create_with_config(tmp.path(), TOPIC, 0, config()).unwrap());
        let batches: Batches = (0..30u8)
            .map(|i| (i, vec![(i % 4, Some(i)), ((i + 1) % 4, Some(i))]))
            .collect();
        fill(&log, &batches, &[(9, Some(9))], 1_000);
        assert!(log.segments().len() > 4, "several segments to group");
        let before = read_all(&log);
        let latest = model(&before, i64::MAX, |_| true);
        let error = clean_once(&log, &mut cleaner(), None, 2_000, Some(crash));
        assert!(
            matches!(error, Err(CleanError::Aborted)),
            "{crash:?}: {error:?}"
        );
        let part_dir = log.dir().to_owned();
        drop(log);

        let reopened =
            Arc::new(PartitionLog::open_with_config(tmp.path(), TOPIC, 0, config()).unwrap());
        assert!(
            leftovers(&part_dir).is_empty(),
            "{crash:?}: {:?}",
            leftovers(&part_dir)
        );
        assert!(reopened.torn_tail().is_none(), "{crash:?}");
        let rows = read_all(&reopened);
        // Either the old log or the cleaned one: every key's latest value is there, and
        // offsets increase.
        assert!(rows.windows(2).all(|w| w[0].0 < w[1].0), "{crash:?}");
        for row in &latest {
            assert!(rows.contains(row), "{crash:?}: lost {row:?}");
        }
        assert_eq!(reopened.log_end_offset(), before.last().unwrap().0 + 1);
        // And cleaning again completes.
        clean_once(&reopened, &mut cleaner(), None, 2_000, None).unwrap();
        assert_eq!(
            read_all(&reopened),
            model(&before, before.last().unwrap().0, |_| true)
        );
    }
}

/// A batch of an idempotent producer.
fn producer_batch(keys: &[u8], producer_id: i64, sequence: i32, transactional: bool) -> Vec<u8> {
    let records: Vec<NewRecord> = keys
        .iter()
        .map(|k| {
            NewRecord::new(
                5,
                Some(Bytes::from(vec![b'k', *k])),
                Some(Bytes::from_static(b"v")),
            )
        })
        .collect();
    RecordBatchBuilder::new()
        .producer(producer_id, 0)
        .base_sequence(sequence)
        .transactional(transactional)
        .build(&records)
        .unwrap()
        .to_vec()
}

/// Every batch header of the log.
fn headers(log: &PartitionLog) -> Vec<gregor_protocol::records::BatchHeader> {
    let read = log.read(log.log_start_offset(), 1 << 20, true).unwrap();
    RecordBatches::new(read.records)
        .map(|b| match b.unwrap() {
            Batch::V2(b) => *b.header(),
            Batch::Legacy(_) => panic!("legacy"),
        })
        .collect()
}

#[test]
fn a_producers_last_batch_is_kept_empty_to_preserve_its_sequence() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Arc::new(PartitionLog::create_with_config(tmp.path(), TOPIC, 0, config()).unwrap());
    // Producer 7 writes keys 1 and 2 (offsets 0-1), then a plain batch overwrites both.
    log.append_batch(&mut producer_batch(&[1, 2], 7, 0, false))
        .unwrap();
    append(&log, &[(1, Some(3)), (2, Some(3))], Compression::None, 10);
    log.roll_segment().unwrap();
    clean_once(&log, &mut cleaner(), None, 100, None).unwrap();
    let batches = headers(&log);
    assert_eq!(batches.len(), 2);
    let empty = batches[0];
    assert_eq!(
        (empty.base_offset, empty.last_offset(), empty.record_count),
        (0, 1, 0)
    );
    assert_eq!(
        (empty.producer_id, empty.producer_epoch, empty.base_sequence),
        (7, 0, 0)
    );
    assert_eq!(read_all(&log).len(), 2);
}

#[test]
fn records_of_aborted_transactions_go_and_markers_stay_until_their_horizon() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Arc::new(PartitionLog::create_with_config(tmp.path(), TOPIC, 0, config()).unwrap());
    // Offsets 0-1: producer 5's transaction, aborted by the marker at 2.
    log.append_batch(&mut producer_batch(&[1, 2], 5, 0, true))
        .unwrap();
    let marker = RecordBatchBuilder::new()
        .producer(5, 0)
        .transactional(true)
        .control(true)
        .build(&[NewRecord::new(
            5,
            Some(ControlRecordKey::new(ControlRecordType::Abort).encode()),
            Some(Bytes::from_static(&[0, 0, 0, 0, 0, 0])),
        )])
        .unwrap();
    log.append_batch(&mut marker.to_vec()).unwrap();
    append(&log, &[(3, Some(1))], Compression::None, 10);
    log.roll_segment().unwrap();
    let aborted = [AbortedTxn {
        producer_id: 5,
        first_offset: 0,
        last_offset: 2,
    }];
    // Expire producer 5's state, so that its last batch is not kept for its sequence.
    log.expire_producers(i64::MAX / 2);
    assert!(log.producer_state(5).is_none());
    let run = |now: i64, checkpoint: Option<i64>| {
        let (chosen, _) = LogToClean::compute(Arc::clone(&log), checkpoint, now);
        log.compact(&mut cleaner(), &chosen, &aborted, now, &|| false, None)
            .unwrap()
            .end_offset
    };
    let more = |value: u8| {
        append(&log, &[(3, Some(value))], Compression::None, 10);
        log.roll_segment().unwrap();
    };
    // First cleaning: the aborted data goes; its marker stays (data of its transaction
    // was seen in this pass), without a horizon yet.
    let end = run(100, None);
    let after = headers(&log);
    assert!(after.iter().all(|h| h.is_control() || h.producer_id != 5));
    let marker = after
        .iter()
        .find(|h| h.is_control())
        .expect("the marker stays");
    assert_eq!(marker.delete_horizon(), None);
    assert_eq!(
        read_all(&log),
        vec![(3, b"k\x03".to_vec(), Some(vec![1; 20]))]
    );
    // Second: no data of the transaction is left, so the marker gets its delete horizon.
    more(2);
    let end = run(200, Some(end));
    let marker = headers(&log)
        .into_iter()
        .find(|h| h.is_control())
        .expect("still there");
    assert_eq!(marker.delete_horizon(), Some(200 + DELETE_RETENTION_MS));
    assert_eq!((marker.base_offset, marker.record_count), (2, 1));
    // Third, past the horizon: the marker goes.
    more(3);
    run(200 + DELETE_RETENTION_MS, Some(end));
    assert!(headers(&log).iter().all(|h| !h.is_control()));
    assert_eq!(
        read_all(&log),
        vec![(5, b"k\x03".to_vec(), Some(vec![3; 20]))]
    );
}

#[test]
fn the_manager_picks_the_dirtiest_log_and_checkpoints_in_kafkas_format() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Arc::new(PartitionLog::create_with_config(tmp.path(), TOPIC, 0, config()).unwrap());
    for i in 0..20u8 {
        append(&log, &[(i % 2, Some(i))], Compression::None, 1_000);
    }
    log.roll_segment().unwrap();
    let manager = CleanerManager::new();
    let mut cleaner = cleaner();
    assert!(threads::clean_filthiest_log(
        &manager,
        &mut cleaner,
        &[Arc::clone(&log)],
        5_000,
        &|| false
    ));
    let text = std::fs::read_to_string(tmp.path().join(CLEANER_OFFSET_CHECKPOINT)).unwrap();
    assert_eq!(text, format!("0\n1\n{TOPIC} 0 20\n"));
    assert_eq!(read_all(&log).len(), 2);
    // Nothing dirty now: not chosen again.
    assert!(!threads::clean_filthiest_log(
        &manager,
        &mut cleaner,
        &[Arc::clone(&log)],
        5_000,
        &|| false
    ));
    // A new manager reads the checkpoint back.
    assert_eq!(CleanerManager::new().checkpoint_of(&log), Some(20));
}

#[test]
fn min_compaction_lag_keeps_recent_segments_dirty() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = config();
    config.min_compaction_lag_ms = 10_000;
    let log = Arc::new(PartitionLog::create_with_config(tmp.path(), TOPIC, 0, config).unwrap());
    for i in 0..20u8 {
        append(
            &log,
            &[(i % 2, Some(i))],
            Compression::None,
            1_000 + i64::from(i) * 1_000,
        );
    }
    log.roll_segment().unwrap();
    let before = read_all(&log);
    // At 15_000 only records older than 5_000 (timestamps 1_000..=4_000) may be cleaned.
    let (chosen, _) = LogToClean::compute(Arc::clone(&log), None, 15_000);
    assert!(
        chosen.first_uncleanable_offset <= 4,
        "{}",
        chosen.first_uncleanable_offset
    );
    clean_once(&log, &mut cleaner(), None, 15_000, None).unwrap();
    let after = read_all(&log);
    let untouched: Vec<&Row> = before
        .iter()
        .filter(|r| r.0 >= chosen.first_uncleanable_offset)
        .collect();
    let kept: Vec<&Row> = after
        .iter()
        .filter(|r| r.0 >= chosen.first_uncleanable_offset)
        .collect();
    assert_eq!(untouched, kept);
}

#[test]
fn a_failing_cleaning_marks_the_partition_uncleanable() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Arc::new(PartitionLog::create_with_config(tmp.path(), TOPIC, 0, config()).unwrap());
    for i in 0..10u8 {
        append(&log, &[(i % 2, Some(i))], Compression::None, 1_000);
    }
    log.roll_segment().unwrap();
    // Corrupt the records of the first segment (the batch index still points at them).
    let first = log.segments()[0].path.clone();
    let mut bytes = std::fs::read(&first).unwrap();
    let len = bytes.len();
    bytes[61..len].fill(0xff);
    std::fs::write(&first, &bytes).unwrap();
    let manager = CleanerManager::new();
    assert!(threads::clean_filthiest_log(
        &manager,
        &mut cleaner(),
        &[Arc::clone(&log)],
        5_000,
        &|| false
    ));
    assert!(manager.is_uncleanable(&log));
    assert!(!threads::clean_filthiest_log(
        &manager,
        &mut cleaner(),
        &[Arc::clone(&log)],
        5_000,
        &|| false
    ));
    let _ = BTreeMap::<i32, i32>::new();
}
