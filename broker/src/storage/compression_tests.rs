//! Tests of `compression.type` on the produce path: batches whose codec differs from the
//! topic's are stored re-compressed with their records, offsets, timestamps, headers and
//! producer fields unchanged; `producer` and a matching codec keep the batch as it came.

use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use gregor_protocol::records::{
    Batch, Compression, Header, NewRecord, Record, RecordBatch, RecordBatchBuilder, RecordBatches,
};

use super::*;

/// The time of the test: real time, so the producer state rebuilt on reopen does not
/// expire the producers (`producer.id.expiration.ms` counts from their timestamps).
fn now() -> i64 {
    super::segment::now_ms()
}

fn tmp() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_owned();
    (tmp, dir)
}

/// `count` records with keys, values and two headers, timestamps `now() - 100 + i`.
fn records(first: usize, count: usize) -> Vec<NewRecord> {
    (first..first + count)
        .map(|i| NewRecord {
            timestamp: now() - 100 + i as i64,
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(format!("value-{i}-{}", "abc".repeat(i % 9)))),
            headers: vec![
                Header::new(
                    Bytes::from_static(b"trace"),
                    Some(Bytes::from(format!("t{i}"))),
                ),
                Header::new(Bytes::from_static(b"empty"), None),
            ],
        })
        .collect()
}

/// An idempotent batch of producer 9, epoch 2, first sequence `seq`.
fn idempotent(codec: Compression, seq: i32, count: usize) -> Bytes {
    RecordBatchBuilder::new()
        .producer(9, 2)
        .base_sequence(seq)
        .compression(codec)
        .build(&records(seq as usize, count))
        .expect("batch")
}

fn config(target: Option<Compression>) -> LogConfig {
    LogConfig {
        compression_type: target,
        ..LogConfig::default()
    }
}

/// Every stored batch of the log, from offset 0.
fn stored(log: &PartitionLog) -> Vec<RecordBatch> {
    let read = log.read(0, usize::MAX, true).expect("read");
    RecordBatches::new(read.records)
        .map(|b| match b.expect("batch") {
            Batch::V2(batch) => batch,
            Batch::Legacy(_) => panic!("a legacy batch"),
        })
        .collect()
}

fn all_records(batch: &RecordBatch) -> Vec<Record> {
    batch.records().collect::<Result<_, _>>().expect("records")
}

/// The records a producer's batch holds once it is stored at `base_offset`.
fn expected(batch: &Bytes, base_offset: i64) -> Vec<Record> {
    let mut bytes = batch.to_vec();
    gregor_protocol::records::set_base_offset(&mut bytes, base_offset).expect("v2");
    all_records(&RecordBatch::parse(Bytes::from(bytes)).expect("batch"))
}

#[test]
fn a_gzip_batch_to_a_zstd_topic_is_stored_as_zstd_with_everything_kept() {
    let (_tmp, dir) = tmp();
    let log = PartitionLog::create_with_config(&dir, "t", 0, config(Some(Compression::Zstd)))
        .expect("create");
    let first = idempotent(Compression::Gzip, 0, 30);
    let second = idempotent(Compression::Gzip, 30, 5);
    for (batch, base) in [(&first, 0), (&second, 30)] {
        let validated = validate_records(batch.clone(), &log.config(), now()).expect("valid");
        assert!(!validated.uses_zstd(), "the producer did not use zstd");
        assert_eq!(validated.batches()[0].compression, Compression::Zstd);
        assert_eq!(
            validated.batches()[0].producer_compression,
            Compression::Gzip
        );
        let info = log.append(validated, 4, now()).expect("append");
        assert_eq!(info.base_offset, base);
        assert!(!info.duplicate);
    }
    // A retry of the first batch is recognised by its sequence numbers, as it would be
    // without re-compression.
    let validated = validate_records(first.clone(), &log.config(), now()).expect("valid");
    let info = log.append(validated, 4, now()).expect("duplicate");
    assert!(info.duplicate);
    assert_eq!((info.base_offset, info.last_offset), (0, 29));
    // A gap in the sequence is still refused.
    let gap = idempotent(Compression::Gzip, 40, 1);
    let validated = validate_records(gap, &log.config(), now()).expect("valid");
    assert!(log.append(validated, 4, now()).is_err());

    let batches = stored(&log);
    assert_eq!(batches.len(), 2);
    for (batch, (original, base)) in batches.iter().zip([(&first, 0), (&second, 30)]) {
        batch.validate().expect("stored batch is sound");
        assert_eq!(batch.compression(), Compression::Zstd);
        let source = RecordBatch::parse(original.clone()).expect("batch");
        let (h, s) = (batch.header(), source.header());
        assert_eq!(h.base_offset, base);
        assert_eq!(h.partition_leader_epoch, 4);
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (9, 2, s.base_sequence)
        );
        assert_eq!(
            (h.base_timestamp, h.max_timestamp, h.record_count),
            (s.base_timestamp, s.max_timestamp, s.record_count)
        );
        assert!(!h.is_transactional() && !h.is_control());
        assert_eq!(all_records(batch), expected(original, base));
    }
    // Reopened, the log and the producer state rebuilt from it still agree.
    drop(log);
    let log = PartitionLog::open_with_config(&dir, "t", 0, config(Some(Compression::Zstd)))
        .expect("reopen");
    let validated = validate_records(second.clone(), &log.config(), now()).expect("valid");
    assert!(
        log.append(validated, 4, now())
            .expect("duplicate")
            .duplicate
    );
    let next = idempotent(Compression::Gzip, 35, 2);
    let validated = validate_records(next, &log.config(), now()).expect("valid");
    assert_eq!(
        log.append(validated, 4, now()).expect("append").base_offset,
        35
    );
}

#[test]
fn producer_keeps_the_batch_and_a_matching_codec_is_not_recompressed() {
    for (target, codec) in [
        (None, Compression::Gzip),
        (None, Compression::Snappy),
        (Some(Compression::Lz4), Compression::Lz4),
        (Some(Compression::None), Compression::None),
    ] {
        let batch = idempotent(codec, 0, 10);
        let validated = validate_records(batch.clone(), &config(target), now()).expect("valid");
        assert_eq!(
            validated.records().as_ptr(),
            batch.as_ptr(),
            "{target:?} {codec}: kept without a copy"
        );
        assert_eq!(validated.batches()[0].compression, codec);
    }
}

#[test]
fn uncompressed_stores_records_without_a_codec_and_transactions_survive() {
    let (_tmp, dir) = tmp();
    let log = PartitionLog::create_with_config(&dir, "t", 0, config(Some(Compression::None)))
        .expect("create");
    let plain = RecordBatchBuilder::new()
        .compression(Compression::Snappy)
        .build(&records(0, 3))
        .expect("batch");
    let transactional = RecordBatchBuilder::new()
        .producer(11, 0)
        .base_sequence(0)
        .transactional(true)
        .compression(Compression::Zstd)
        .build(&records(3, 4))
        .expect("batch");
    let mut both = BytesMut::new();
    both.extend_from_slice(&plain);
    both.extend_from_slice(&transactional);
    let validated = validate_records(both.freeze(), &log.config(), now()).expect("valid");
    assert!(
        validated.uses_zstd(),
        "the producer's codec decides for old Produce versions"
    );
    let batches = validated.batches().to_vec();
    assert_eq!(batches[1].position, batches[0].size);
    assert_eq!(validated.size(), batches[0].size + batches[1].size);
    log.append(validated, 0, now()).expect("append");
    let stored = stored(&log);
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().all(|b| b.compression() == Compression::None));
    assert_eq!(all_records(&stored[0]), expected(&plain, 0));
    assert_eq!(all_records(&stored[1]), expected(&transactional, 3));
    let h = stored[1].header();
    assert!(h.is_transactional());
    assert_eq!(
        (h.producer_id, h.producer_epoch, h.base_sequence),
        (11, 0, 0)
    );
}

#[test]
fn log_append_time_applies_to_recompressed_batches() {
    let (_tmp, dir) = tmp();
    let config = LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..config(Some(Compression::Lz4))
    };
    let log = PartitionLog::create_with_config(&dir, "t", 0, config).expect("create");
    let batch = idempotent(Compression::Gzip, 0, 6);
    let validated = validate_records(batch, &log.config(), now()).expect("valid");
    let info = log.append(validated, 0, now() + 5).expect("append");
    let stored = stored(&log);
    assert_eq!(stored[0].compression(), Compression::Lz4);
    stored[0].validate().expect("sound");
    assert!(
        all_records(&stored[0])
            .iter()
            .all(|r| r.timestamp == info.log_append_time)
    );
}

#[test]
fn a_batch_too_large_once_recompressed_is_refused() {
    // 2,000 identical records compress to almost nothing with gzip, but not uncompressed.
    let records: Vec<NewRecord> = (0..2_000)
        .map(|_| NewRecord::new(now(), None, Some(Bytes::from(vec![b'x'; 100]))))
        .collect();
    let batch = RecordBatchBuilder::new()
        .compression(Compression::Gzip)
        .build(&records)
        .expect("batch");
    let mut config = config(Some(Compression::None));
    config.max_message_bytes = 100_000;
    assert!(batch.len() < 100_000);
    let error = validate_records(batch.clone(), &config, now()).unwrap_err();
    assert_eq!(error.code, MESSAGE_TOO_LARGE, "{error}");
    // The same for all batches together against segment.bytes.
    config.max_message_bytes = 1 << 20;
    config.segment_bytes = 100_000;
    let error = validate_records(batch.clone(), &config, now()).unwrap_err();
    assert_eq!(error.code, RECORD_LIST_TOO_LARGE, "{error}");
    // With the producer's codec it is fine.
    config.compression_type = None;
    validate_records(batch, &config, now()).expect("kept compressed");
}
