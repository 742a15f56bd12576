//! Tests of the Produce v0-v2 legacy path: topic checks, codecs, and the stored result on a
//! real partition log.

#[path = "../../tests/legacy_produce/messages.rs"]
mod messages;

use bytes::Bytes;
use gregor_protocol::records::{
    Batch, Compression, RecordBatch, RecordBatches, TimestampType as RecordTimestampType,
};

use super::super::config::CleanupPolicy;
use super::super::{PartitionLog, segment};
use super::*;
use messages::{message, message_set};

fn now() -> i64 {
    segment::now_ms()
}

fn stored(log: &PartitionLog) -> Vec<RecordBatch> {
    let read = log.read(0, usize::MAX, true).expect("read");
    RecordBatches::new(read.records)
        .map(|b| match b.expect("batch") {
            Batch::V2(batch) => batch,
            Batch::Legacy(_) => panic!("a legacy batch was stored"),
        })
        .collect()
}

#[test]
fn sets_are_stored_as_v2_batches_with_log_offsets() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let log =
        PartitionLog::create_with_config(tmp.path(), "t", 0, LogConfig::default()).expect("create");
    let ts = now() - 1000;
    let rows = [
        (ts, Some(&b"a"[..]), Some(&b"1"[..])),
        (ts + 5, None, Some(&b"2"[..])),
        (ts + 2, Some(&b"c"[..]), None),
    ];
    let mut base = 0;
    for (magic, codec) in [
        (0, Compression::None),
        (1, Compression::None),
        (0, Compression::Gzip),
        (1, Compression::Snappy),
        (1, Compression::Lz4),
    ] {
        let set = Bytes::from(message_set(magic, codec, &rows));
        assert!(is_legacy_message_set(&set));
        let validated = validate_legacy_records(set, &log.config(), now()).expect("valid");
        let batch = &validated.batches()[0];
        assert_eq!((batch.record_count, batch.producer_id), (3, -1));
        assert_eq!(batch.compression, codec, "producer keeps the codec");
        let expected_max = if magic == 0 { -1 } else { ts + 5 };
        assert_eq!(batch.max_timestamp, expected_max);
        let info = log.append(validated, 0, now()).expect("append");
        assert_eq!(info.base_offset, base);
        base += 3;
    }
    let batches = stored(&log);
    assert_eq!(batches.len(), 5);
    for (i, batch) in batches.iter().enumerate() {
        assert_eq!(batch.base_offset(), i as i64 * 3);
        let records: Vec<_> = batch.records().map(|r| r.expect("record")).collect();
        let timestamps: Vec<i64> = records.iter().map(|r| r.timestamp).collect();
        if i == 0 || i == 2 {
            assert_eq!(timestamps, [-1, -1, -1], "magic 0 has no timestamps");
        } else {
            assert_eq!(timestamps, [ts, ts + 5, ts + 2]);
        }
        assert_eq!(records[0].key.as_deref(), Some(&b"a"[..]));
        assert_eq!(records[1].key, None);
        assert_eq!(records[2].value, None);
    }
}

#[test]
fn topic_codec_and_log_append_time() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        compression_type: Some(Compression::Zstd),
        timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let log = PartitionLog::create_with_config(tmp.path(), "t", 0, config).expect("create");
    let set = Bytes::from(message_set(
        1,
        Compression::Gzip,
        &[(1, Some(&b"k"[..]), Some(&b"v"[..]))],
    ));
    let validated = validate_legacy_records(set, &log.config(), now()).expect("valid");
    assert_eq!(validated.batches()[0].compression, Compression::Zstd);
    assert!(!validated.uses_zstd(), "the producer did not use zstd");
    let when = now();
    let info = log.append(validated, 0, when).expect("append");
    assert_eq!(info.log_append_time, when);
    let batch = &stored(&log)[0];
    assert_eq!(batch.compression(), Compression::Zstd);
    assert_eq!(
        batch.header().timestamp_type(),
        RecordTimestampType::LogAppendTime
    );
    assert_eq!(batch.header().max_timestamp, when);
}

#[test]
fn record_checks() {
    let now = now();
    // A null key on a compacted topic, per outer message index as Kafka counts them.
    let compacted = LogConfig {
        cleanup_policy: CleanupPolicy {
            delete: false,
            compact: true,
        },
        ..LogConfig::default()
    };
    let set = message_set(
        1,
        Compression::Gzip,
        &[
            (now, Some(&b"k"[..]), Some(&b"v"[..])),
            (now, None, Some(&b"v"[..])),
        ],
    );
    let error = validate_legacy_records(Bytes::from(set), &compacted, now).unwrap_err();
    assert_eq!(error.code, INVALID_RECORD);
    assert_eq!(error.record_errors[0].batch_index, 1);
    // A create time too far in the future.
    let set = message_set(
        1,
        Compression::None,
        &[(now + 7_200_000, None, Some(&b"v"[..]))],
    );
    let error = validate_legacy_records(Bytes::from(set), &LogConfig::default(), now).unwrap_err();
    assert_eq!(error.code, INVALID_TIMESTAMP);
    assert_eq!(error.record_errors.len(), 1);
    // Magic 0 has no timestamp to check.
    let set = message_set(
        0,
        Compression::None,
        &[(now + 7_200_000, None, Some(&b"v"[..]))],
    );
    validate_legacy_records(Bytes::from(set), &LogConfig::default(), now).expect("valid");
    // The log append time bit from a producer: INVALID_TIMESTAMP where Kafka checks it
    // (a LogAppendTime topic), ignored where the create time was checked instead.
    let lat = message(0, 1, 0x08, now, None, Some(b"v"));
    let lat_topic = LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let error = validate_legacy_records(Bytes::from(lat.clone()), &lat_topic, now).unwrap_err();
    assert_eq!(error.code, INVALID_TIMESTAMP);
    validate_legacy_records(Bytes::from(lat), &LogConfig::default(), now).expect("valid");
}

#[test]
fn size_limits_and_structural_errors() {
    let now = now();
    let small = LogConfig {
        max_message_bytes: 100,
        ..LogConfig::default()
    };
    let big = message(0, 1, 0, now, None, Some(&[7u8; 200]));
    let error = validate_legacy_records(Bytes::from(big), &small, now).unwrap_err();
    assert_eq!(error.code, MESSAGE_TOO_LARGE);
    // A small gzip wrapper whose converted (uncompressed) batch exceeds the limit.
    let values = vec![0u8; 400];
    let set = message_set(1, Compression::Gzip, &[(now, None, Some(&values[..]))]);
    let uncompressed = LogConfig {
        compression_type: Some(Compression::None),
        ..small.clone()
    };
    let error = validate_legacy_records(Bytes::from(set), &uncompressed, now).unwrap_err();
    assert_eq!(error.code, MESSAGE_TOO_LARGE);
    // Corrupt CRC, and an empty set.
    let mut corrupt = message(0, 0, 0, 0, None, Some(b"value"));
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    let error =
        validate_legacy_records(Bytes::from(corrupt), &LogConfig::default(), now).unwrap_err();
    assert_eq!(error.code, super::super::CORRUPT_MESSAGE);
    let error = validate_legacy_records(Bytes::new(), &LogConfig::default(), now).unwrap_err();
    assert_eq!(error.code, INVALID_RECORD);
}
