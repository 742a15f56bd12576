//! Tests of the write path: validation, appends, index files, rolls, flushes, recovery,
//! checkpoints, retention, DeleteRecords and timestamp lookups.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use gregor_protocol::records::{
    Compression, NewRecord, RecordBatch, RecordBatchBuilder, RecordBatches, TimestampType as Tt,
};

use super::validate::crc32c;
use super::*;

const NOW: i64 = 1_700_000_000_000;

/// Records with timestamps `ts, ts+1, ...`, keys and values of `value_len` bytes.
fn records(count: usize, value_len: usize, ts: i64) -> Vec<NewRecord> {
    (0..count)
        .map(|i| {
            NewRecord::new(
                ts + i as i64,
                Some(Bytes::from(format!("k{i}"))),
                Some(Bytes::from(vec![b'v'; value_len])),
            )
        })
        .collect()
}

/// A producer's batch (base offset 0).
fn produced(count: usize, value_len: usize, ts: i64) -> Bytes {
    RecordBatchBuilder::new()
        .build(&records(count, value_len, ts))
        .expect("batch")
}

/// A producer's batch with explicit timestamps.
fn produced_at(timestamps: &[i64]) -> Bytes {
    let records: Vec<NewRecord> = timestamps
        .iter()
        .map(|&ts| NewRecord::new(ts, Some(Bytes::from_static(b"k")), None))
        .collect();
    RecordBatchBuilder::new().build(&records).expect("batch")
}

/// Recomputes the CRC of a v2 batch after its covered bytes were edited.
fn refresh_crc(batch: &mut [u8]) {
    let crc = crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

fn edited(batch: &Bytes, edit: impl FnOnce(&mut Vec<u8>)) -> Bytes {
    let mut bytes = batch.to_vec();
    edit(&mut bytes);
    Bytes::from(bytes)
}

fn code_of(records: Bytes, config: &LogConfig) -> i16 {
    match validate_records(records, config, NOW) {
        Ok(_) => 0,
        Err(error) => error.code,
    }
}

#[test]
fn the_crc32c_matches_the_library() {
    for batch in [
        produced(3, 10, NOW),
        produced(1, 0, 0),
        produced(50, 100, 5),
    ] {
        let stored = u32::from_be_bytes(batch[17..21].try_into().unwrap());
        assert_eq!(crc32c(&batch[21..]), stored);
    }
    // The standard check value of CRC-32C.
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
}

#[test]
fn validation_accepts_good_records_without_copying() {
    let config = LogConfig::default();
    let gzip = RecordBatchBuilder::new()
        .compression(Compression::Gzip)
        .build(&records(5, 20, NOW - 50))
        .expect("batch");
    let mut all = BytesMut::new();
    all.extend_from_slice(&produced(3, 10, NOW));
    all.extend_from_slice(&gzip);
    all.extend_from_slice(&produced_at(&[NOW - 5, NOW + 7, NOW + 7, NOW]));
    let all = all.freeze();
    let validated = validate_records(all.clone(), &config, NOW).expect("valid");
    assert_eq!(validated.records().as_ptr(), all.as_ptr(), "no copy");
    assert_eq!(validated.record_count(), 12);
    assert_eq!(validated.size(), all.len());
    let batches = validated.batches();
    assert_eq!(batches.len(), 3);
    assert_eq!(
        batches
            .iter()
            .map(|b| (b.position, b.record_count, b.compression))
            .collect::<Vec<_>>(),
        vec![
            (0, 3, Compression::None),
            (batches[0].size, 5, Compression::Gzip),
            (batches[0].size + batches[1].size, 4, Compression::None),
        ]
    );
    assert_eq!(batches[0].max_timestamp, NOW + 2);
    assert_eq!(batches[0].offset_delta_of_max_timestamp, 2);
    assert_eq!(batches[1].max_timestamp, NOW - 46);
    assert_eq!(batches[2].max_timestamp, NOW + 7);
    assert_eq!(
        batches[2].offset_delta_of_max_timestamp, 1,
        "first record with the max"
    );
    assert_eq!(validated.max_timestamp(), NOW + 7);
    assert!(!validated.uses_zstd());

    // Idempotent and transactional batches are accepted.
    let idempotent = RecordBatchBuilder::new()
        .producer(7, 1)
        .base_sequence(0)
        .transactional(true)
        .compression(Compression::Zstd)
        .build(&records(2, 1, NOW))
        .expect("batch");
    let validated = validate_records(idempotent, &config, NOW).expect("valid");
    let b = &validated.batches()[0];
    assert_eq!(
        (
            b.producer_id,
            b.producer_epoch,
            b.base_sequence,
            b.transactional
        ),
        (7, 1, 0, true)
    );
    assert!(validated.uses_zstd());

    // Exactly max.message.bytes is fine.
    let batch = produced(2, 100, NOW);
    let exact = LogConfig {
        max_message_bytes: batch.len() as i32,
        ..LogConfig::default()
    };
    assert!(validate_records(batch, &exact, NOW).is_ok());
}

#[test]
fn validation_error_codes() {
    let config = LogConfig::default();
    let good = produced(3, 10, NOW);

    assert_eq!(code_of(Bytes::new(), &config), INVALID_RECORD);
    // Framing: partial batches, tiny lengths, unknown magic.
    let mut partial = good.to_vec();
    partial.extend_from_slice(&good[..30]);
    assert_eq!(code_of(Bytes::from(partial), &config), CORRUPT_MESSAGE);
    assert_eq!(
        code_of(good.slice(..good.len() - 1), &config),
        CORRUPT_MESSAGE
    );
    assert_eq!(code_of(good.slice(..8), &config), CORRUPT_MESSAGE);
    let tiny = edited(&good, |b| b[8..12].copy_from_slice(&13i32.to_be_bytes()));
    assert_eq!(code_of(tiny, &config), CORRUPT_MESSAGE);
    let magic = edited(&good, |b| b[16] = 3);
    assert_eq!(code_of(magic, &config), CORRUPT_MESSAGE);
    // Legacy formats (Kafka 4 removed them): INVALID_RECORD.
    let mut legacy = BytesMut::new();
    legacy.extend_from_slice(&0i64.to_be_bytes());
    legacy.extend_from_slice(&22i32.to_be_bytes());
    legacy.extend_from_slice(&[0, 0, 0, 0, 1, 0]);
    legacy.extend_from_slice(&0i64.to_be_bytes());
    legacy.extend_from_slice(&(-1i32).to_be_bytes());
    legacy.extend_from_slice(&(-1i32).to_be_bytes());
    assert_eq!(code_of(legacy.freeze(), &config), INVALID_RECORD);
    // A v2 length below the 61-byte header.
    let short = edited(&good, |b| {
        b[8..12].copy_from_slice(&40i32.to_be_bytes());
        b.truncate(52);
    });
    assert_eq!(code_of(short, &config), CORRUPT_MESSAGE);
    // Base offset not 0.
    let based = edited(&good, |b| b[0..8].copy_from_slice(&5i64.to_be_bytes()));
    assert_eq!(code_of(based, &config), INVALID_RECORD);
    // Too large.
    let small = LogConfig {
        max_message_bytes: good.len() as i32 - 1,
        ..LogConfig::default()
    };
    assert_eq!(code_of(good.clone(), &small), MESSAGE_TOO_LARGE);
    // CRC.
    let corrupt = edited(&good, |b| {
        let last = b.len() - 1;
        b[last] ^= 1;
    });
    let error = validate_records(corrupt, &config, NOW).unwrap_err();
    assert_eq!(error.code, CORRUPT_MESSAGE);
    assert!(error.message.contains("crc"), "{}", error.message);
    // Unknown codec (CRC valid).
    let codec = edited(&good, |b| {
        b[22] |= 5;
        refresh_crc(b);
    });
    assert_eq!(code_of(codec, &config), UNSUPPORTED_COMPRESSION_TYPE);
    // Record count and offset range.
    let count = edited(&good, |b| {
        b[57..61].copy_from_slice(&2i32.to_be_bytes());
        refresh_crc(b);
    });
    assert_eq!(code_of(count, &config), INVALID_RECORD);
    let negative = edited(&good, |b| {
        b[57..61].copy_from_slice(&(-1i32).to_be_bytes());
        refresh_crc(b);
    });
    assert_eq!(code_of(negative, &config), INVALID_RECORD);
    let delta = edited(&good, |b| {
        b[23..27].copy_from_slice(&3i32.to_be_bytes());
        refresh_crc(b);
    });
    assert_eq!(code_of(delta, &config), INVALID_RECORD);
    // Both agree but the records disagree: 3 records, header says 4.
    let both = edited(&good, |b| {
        b[23..27].copy_from_slice(&3i32.to_be_bytes());
        b[57..61].copy_from_slice(&4i32.to_be_bytes());
        refresh_crc(b);
    });
    assert_eq!(code_of(both, &config), INVALID_RECORD);
    // No records at all.
    let empty = RecordBatchBuilder::new().build(&[]).expect("batch");
    assert_eq!(code_of(empty, &config), INVALID_RECORD);
    // Offset deltas not 0..n-1: the first record's delta set to 1 (one byte at 64).
    let single = RecordBatchBuilder::new()
        .build(&[
            NewRecord::new(NOW, None, Some(Bytes::from_static(b"a"))),
            NewRecord::new(NOW, None, Some(Bytes::from_static(b"b"))),
        ])
        .expect("batch");
    assert_eq!(single[64], 0, "offset delta of record 0");
    let deltas = edited(&single, |b| {
        b[64] = 2; // zigzag(1)
        refresh_crc(b);
    });
    assert_eq!(code_of(deltas, &config), INVALID_RECORD);
    // Malformed record bytes.
    let malformed = edited(&good, |b| {
        b[61] = 0x7f; // record length far past the end
        refresh_crc(b);
    });
    assert_eq!(code_of(malformed, &config), INVALID_RECORD);
    // Control batches, producer ids without sequences, transactions without producer.
    let control = RecordBatchBuilder::new()
        .control(true)
        .build(&records(1, 1, NOW))
        .expect("batch");
    assert_eq!(code_of(control, &config), INVALID_RECORD);
    let no_sequence = RecordBatchBuilder::new()
        .producer(3, 0)
        .build(&records(1, 1, NOW))
        .expect("batch");
    assert_eq!(code_of(no_sequence, &config), INVALID_RECORD);
    let no_producer = RecordBatchBuilder::new()
        .transactional(true)
        .build(&records(1, 1, NOW))
        .expect("batch");
    assert_eq!(code_of(no_producer, &config), INVALID_RECORD);
    // Log append time set by the producer.
    let lat = RecordBatchBuilder::new()
        .log_append_time(NOW)
        .build(&records(1, 1, NOW))
        .expect("batch");
    assert_eq!(code_of(lat, &config), INVALID_TIMESTAMP);
    // Corrupt compressed data (CRC valid).
    let gzip = RecordBatchBuilder::new()
        .compression(Compression::Gzip)
        .build(&records(5, 20, NOW))
        .expect("batch");
    let broken = edited(&gzip, |b| {
        for byte in &mut b[61 + 10..61 + 20] {
            *byte ^= 0x5a;
        }
        refresh_crc(b);
    });
    assert_eq!(code_of(broken, &config), CORRUPT_MESSAGE);
    // All batches larger than a segment.
    let tiny_segments = LogConfig {
        segment_bytes: good.len() as i64 * 2 - 1,
        ..LogConfig::default()
    };
    let two = Bytes::from([good.to_vec(), good.to_vec()].concat());
    assert_eq!(code_of(two.clone(), &tiny_segments), RECORD_LIST_TOO_LARGE);
    assert_eq!(code_of(two, &config), 0);
    // The first bad batch decides, even after good ones.
    let mixed = Bytes::from(
        [
            good.to_vec(),
            edited(&good, |b| b[0..8].copy_from_slice(&1i64.to_be_bytes())).to_vec(),
        ]
        .concat(),
    );
    assert_eq!(code_of(mixed, &config), INVALID_RECORD);
}

#[test]
fn timestamp_and_key_checks_report_records() {
    let config = LogConfig {
        message_timestamp_before_max_ms: 1_000,
        message_timestamp_after_max_ms: 500,
        ..LogConfig::default()
    };
    let ok = produced_at(&[NOW - 1_000, NOW, NOW + 500]);
    assert!(validate_records(ok, &config, NOW).is_ok());
    let late = produced_at(&[NOW, NOW + 501, NOW - 1_001, NOW]);
    let error = validate_records(late, &config, NOW).unwrap_err();
    assert_eq!(error.code, INVALID_TIMESTAMP);
    assert_eq!(
        error
            .record_errors
            .iter()
            .map(|e| e.batch_index)
            .collect::<Vec<_>>(),
        vec![1, 2]
    );
    // Kafka 4.0's default: one hour into the future at most, any age.
    let default = LogConfig::default();
    assert_eq!(
        code_of(produced_at(&[NOW + 3_600_001]), &default),
        INVALID_TIMESTAMP
    );
    assert_eq!(code_of(produced_at(&[0, NOW + 3_600_000]), &default), 0);
    // -1 (no timestamp) is not checked; extreme values do not overflow.
    assert_eq!(code_of(produced_at(&[-1]), &config), 0);
    assert_eq!(
        code_of(produced_at(&[i64::MIN + 1]), &config),
        INVALID_TIMESTAMP
    );
    assert_eq!(
        code_of(produced_at(&[i64::MAX]), &config),
        INVALID_TIMESTAMP
    );
    // LogAppendTime topics do not check producer timestamps.
    let lat = LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..config.clone()
    };
    assert_eq!(code_of(produced_at(&[0]), &lat), 0);

    // Null keys on a compacted topic.
    let compacted = LogConfig {
        cleanup_policy: CleanupPolicy {
            delete: false,
            compact: true,
        },
        ..LogConfig::default()
    };
    let keyless = RecordBatchBuilder::new()
        .build(&[
            NewRecord::new(NOW, Some(Bytes::from_static(b"k")), None),
            NewRecord::new(NOW, None, Some(Bytes::from_static(b"v"))),
        ])
        .expect("batch");
    let error = validate_records(keyless.clone(), &compacted, NOW).unwrap_err();
    assert_eq!(error.code, INVALID_RECORD);
    assert_eq!(error.record_errors.len(), 1);
    assert_eq!(error.record_errors[0].batch_index, 1);
    assert!(
        error.message.contains("1 record errors"),
        "{}",
        error.message
    );
    assert_eq!(code_of(keyless, &LogConfig::default()), 0);
}

/// A temporary log directory.
fn tmp() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_owned();
    (tmp, dir)
}

fn append(log: &PartitionLog, batches: &[Bytes], epoch: i32, now: i64) -> AppendInfo {
    let all: Vec<u8> = batches.iter().flat_map(|b| b.iter().copied()).collect();
    let validated = validate_records(Bytes::from(all), &log.config(), now).expect("valid records");
    log.append(validated, epoch, now).expect("append")
}

/// Every batch of the log, parsed (checks every CRC and record).
fn all_batches(log: &PartitionLog) -> Vec<RecordBatch> {
    let read = log
        .read(log.log_start_offset(), usize::MAX, true)
        .expect("read");
    RecordBatches::new(read.records)
        .map(|batch| match batch.expect("batch") {
            gregor_protocol::records::Batch::V2(batch) => {
                batch.validate().expect("valid batch");
                batch
            }
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn appends_assign_offsets_epochs_and_stamp_log_append_time() {
    let (_tmp, dir) = tmp();
    let log = PartitionLog::create(&dir, "a", 0).expect("create");
    let info = append(
        &log,
        &[produced(3, 5, NOW), produced(2, 5, NOW + 10)],
        7,
        NOW,
    );
    assert_eq!(
        info,
        AppendInfo {
            base_offset: 0,
            last_offset: 4,
            log_end_offset: 5,
            log_append_time: -1,
            log_start_offset: 0,
            duplicate: false,
        }
    );
    log.set_config(LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    });
    let info = append(&log, &[produced(4, 5, 123)], 8, NOW + 99);
    assert_eq!(
        (info.base_offset, info.last_offset, info.log_append_time),
        (5, 8, NOW + 99)
    );
    let batches = all_batches(&log);
    assert_eq!(
        batches
            .iter()
            .map(|b| (
                b.base_offset(),
                b.last_offset(),
                b.header().partition_leader_epoch
            ))
            .collect::<Vec<_>>(),
        vec![(0, 2, 7), (3, 4, 7), (5, 8, 8)]
    );
    let stamped = &batches[2];
    assert_eq!(stamped.header().timestamp_type(), Tt::LogAppendTime);
    assert_eq!(stamped.header().max_timestamp, NOW + 99);
    stamped.verify_crc().expect("CRC recomputed");
    for record in stamped.records() {
        assert_eq!(record.expect("record").timestamp, NOW + 99);
    }
    assert_eq!(batches[0].header().timestamp_type(), Tt::CreateTime);
    assert_eq!(log.segments()[0].max_timestamp, NOW + 99);

    // A header max timestamp that disagrees with the records is corrected (CRC too).
    log.set_config(LogConfig::default());
    let lying = edited(&produced_at(&[NOW, NOW + 40, NOW + 3]), |b| {
        b[35..43].copy_from_slice(&(NOW + 1).to_be_bytes());
        refresh_crc(b);
    });
    append(&log, &[lying], 9, NOW);
    let fixed = all_batches(&log).pop().expect("batch");
    assert_eq!(fixed.header().max_timestamp, NOW + 40);
    fixed.verify_crc().expect("CRC recomputed");

    // A shared buffer is copied, the caller's bytes are untouched.
    let original = produced(2, 1, NOW);
    let validated = validate_records(original.clone(), &log.config(), NOW).expect("valid");
    log.append(validated, 1, NOW).expect("append");
    assert_eq!(&original[0..8], &0i64.to_be_bytes());
}

/// Checks every `.index`/`.timeindex` of the partition directory against its segments:
/// whole entries, every offset entry at a batch boundary with that batch's last offset,
/// every time entry naming the first batch reaching a new largest timestamp.
fn check_indexes(log: &PartitionLog) {
    for segment in log.segments() {
        let base = segment.base_offset;
        let bytes = fs::read(log.dir().join(format!("{base:020}.index"))).expect("index file");
        assert_eq!(bytes.len() % 8, 0);
        let entries = index::decode_offset_index(&bytes, base).expect("entries");
        let batches = log.segment_batches(base);
        for entry in &entries {
            let batch = batches
                .iter()
                .find(|b| b.position == entry.position)
                .unwrap_or_else(|| panic!("{entry:?} not at a batch boundary"));
            assert_eq!(entry.offset, batch.last_offset, "{entry:?}");
        }
        assert!(entries.windows(2).all(|w| w[0].offset < w[1].offset));
        let bytes =
            fs::read(log.dir().join(format!("{base:020}.timeindex"))).expect("time index file");
        assert_eq!(bytes.len() % 12, 0);
        let times = index::decode_time_index(&bytes, base).expect("entries");
        for entry in &times {
            let at = batches
                .iter()
                .position(|b| b.last_offset == entry.offset)
                .unwrap_or_else(|| panic!("{entry:?} not at a batch"));
            assert_eq!(batches[at].max_timestamp, entry.timestamp);
            assert!(
                batches[..at]
                    .iter()
                    .all(|b| b.max_timestamp < entry.timestamp)
            );
        }
        assert!(times.windows(2).all(|w| w[0].timestamp < w[1].timestamp));
        assert!(index::check_offset_index(&entries, &batches).is_ok());
        assert!(index::check_time_index(&times, &batches).is_ok());
    }
}

#[test]
fn index_files_in_kafka_format() {
    let (_tmp, dir) = tmp();
    let config = LogConfig {
        index_interval_bytes: 100,
        ..LogConfig::default()
    };
    let log = PartitionLog::create_with_config(&dir, "idx", 0, config).expect("create");
    // Batches of 1 record: sizes known from the first.
    let b = |ts: i64| produced_at(&[ts]);
    let size = b(0).len() as u32;
    assert!(size > 50 && size < 100);
    // ts: 10, 30, 20, 40, 40, 50 at offsets 0..=5.
    for ts in [10, 30, 20, 40, 40, 50] {
        append(&log, &[b(NOW + ts)], 0, NOW);
    }
    // Offset index: an entry for the batch once > 100 bytes were written since the last
    // one: batch 2 (bytes before it: 2 * size > 100), then batch 4 (2 * size since batch 2).
    let index = fs::read(dir.join("idx-0/00000000000000000000.index")).expect("index");
    let mut expected = Vec::new();
    for (offset, position) in [(2u32, 2 * size), (4, 4 * size)] {
        expected.extend_from_slice(&offset.to_be_bytes());
        expected.extend_from_slice(&position.to_be_bytes());
    }
    assert_eq!(index, expected);
    // Time index: at batch 2 the max so far is 30 (batch 1), at batch 4 it is 40 (batch 3).
    let time_index = fs::read(dir.join("idx-0/00000000000000000000.timeindex")).expect("index");
    let mut expected = Vec::new();
    for (ts, offset) in [(NOW + 30, 1u32), (NOW + 40, 3)] {
        expected.extend_from_slice(&ts.to_be_bytes());
        expected.extend_from_slice(&offset.to_be_bytes());
    }
    assert_eq!(time_index, expected);
    check_indexes(&log);
    // Rolling closes the time index with the largest timestamp (50 at offset 5).
    log.roll_segment().expect("roll");
    let time_index = fs::read(dir.join("idx-0/00000000000000000000.timeindex")).expect("index");
    assert_eq!(&time_index[24..32], &(NOW + 50).to_be_bytes());
    assert_eq!(&time_index[32..36], &5u32.to_be_bytes());
    assert!(dir.join("idx-0/00000000000000000006.index").is_file());
    assert!(dir.join("idx-0/00000000000000000006.timeindex").is_file());
    // Relative offsets in the next segment.
    for ts in [60, 70, 80] {
        append(&log, &[b(NOW + ts)], 0, NOW);
    }
    let index = fs::read(dir.join("idx-0/00000000000000000006.index")).expect("index");
    assert_eq!(&index[..8], &[0, 0, 0, 2, 0, 0, 0, (2 * size) as u8]);
    check_indexes(&log);

    // Rebuilt from scratch after they are deleted: the same bytes (the closing entry of the
    // active segment included, as Kafka's recovery writes it).
    drop(log);
    let saved: Vec<(PathBuf, Vec<u8>)> = fs::read_dir(dir.join("idx-0"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "index" || e == "timeindex")
        })
        .map(|p| {
            let bytes = fs::read(&p).unwrap();
            fs::remove_file(&p).unwrap();
            (p, bytes)
        })
        .collect();
    assert_eq!(saved.len(), 4);
    let log = PartitionLog::open_with_config(
        &dir,
        "idx",
        0,
        LogConfig {
            index_interval_bytes: 100,
            ..LogConfig::default()
        },
    )
    .expect("open");
    assert_eq!(log.open_report().rebuilt_indexes, 2);
    for (path, bytes) in saved {
        let rebuilt = fs::read(&path).unwrap();
        if path.ends_with("00000000000000000006.timeindex") {
            // Closing entry (80 at offset 8) added by the rebuild.
            assert_eq!(&rebuilt[..bytes.len()], bytes.as_slice());
            assert_eq!(
                &rebuilt[rebuilt.len() - 12..rebuilt.len() - 4],
                &(NOW + 80).to_be_bytes()
            );
        } else {
            assert_eq!(rebuilt, bytes, "{}", path.display());
        }
    }
    check_indexes(&log);
}

#[test]
fn bad_index_files_are_rebuilt() {
    let (_tmp, dir) = tmp();
    let config = LogConfig {
        index_interval_bytes: 0,
        ..LogConfig::default()
    };
    let log = PartitionLog::create_with_config(&dir, "bad", 0, config.clone()).expect("create");
    for i in 0..10 {
        append(&log, &[produced(1 + i % 3, 10, NOW + i as i64)], 0, NOW);
    }
    log.close().expect("close");
    drop(log);
    let index_path = dir.join("bad-0/00000000000000000000.index");
    let time_path = dir.join("bad-0/00000000000000000000.timeindex");
    let good_index = fs::read(&index_path).unwrap();
    let good_time = fs::read(&time_path).unwrap();
    fs::write(dir.join(CLEAN_SHUTDOWN_FILE), b"").unwrap();
    let reopen = || PartitionLog::open_with_config(&dir, "bad", 0, config.clone()).expect("open");
    // Clean and intact: kept.
    assert_eq!(reopen().open_report().rebuilt_indexes, 0);
    let damages: Vec<(PathBuf, Vec<u8>)> = vec![
        (
            index_path.clone(),
            good_index[..good_index.len() - 3].to_vec(),
        ),
        (index_path.clone(), {
            let mut b = good_index.clone();
            b.extend_from_slice(&[0, 0, 0, 99, 0, 0, 1, 0]);
            b
        }),
        (index_path.clone(), {
            let mut b = good_index.clone();
            b.swap(3, 11);
            b
        }),
        (index_path.clone(), {
            let mut b = good_index.clone();
            b[7] += 1;
            b
        }),
        (time_path.clone(), good_time[..good_time.len() - 1].to_vec()),
        (time_path.clone(), {
            let mut b = good_time.clone();
            b[7] = b[7].wrapping_add(100);
            b
        }),
    ];
    // Kafka's `sanityCheck` (size a whole number of entries, last offset at or above the
    // base) and the scan after the last offset entry catch some offset index damages at a
    // clean open; the others (entries out of order inside the file) pass it, as in Kafka.
    // The time index is not read at a clean open at all (Kafka's lazy time index): its
    // damages are caught, like those, by the recovery after an unclean stop (or when the
    // active segment's writer is set up).
    for (i, (path, bytes)) in damages.into_iter().enumerate() {
        let caught_at_clean_open = !matches!(i, 2..=5);
        fs::write(&path, &bytes).unwrap();
        let log = reopen();
        if caught_at_clean_open {
            assert_eq!(
                log.open_report().rebuilt_indexes,
                1,
                "{i}: {}",
                path.display()
            );
        } else {
            assert_eq!(
                log.open_report().rebuilt_indexes,
                0,
                "{i}: {}",
                path.display()
            );
            assert_eq!(log.open_report().indexed_segments, 1, "{i}");
            drop(log);
            fs::remove_file(dir.join(CLEAN_SHUTDOWN_FILE)).unwrap();
            let log = reopen();
            assert_eq!(
                log.open_report().rebuilt_indexes,
                1,
                "{i}: {}",
                path.display()
            );
            drop(log);
            fs::write(dir.join(CLEAN_SHUTDOWN_FILE), b"").unwrap();
        }
        let log = reopen();
        assert_eq!(fs::read(&index_path).unwrap(), good_index);
        assert_eq!(fs::read(&time_path).unwrap(), good_time);
        check_indexes(&log);
    }
    // A missing time index: the clean open does not look; the recovery rebuilds it.
    fs::remove_file(&time_path).unwrap();
    assert_eq!(reopen().open_report().rebuilt_indexes, 0);
    fs::remove_file(dir.join(CLEAN_SHUTDOWN_FILE)).unwrap();
    assert_eq!(reopen().open_report().rebuilt_indexes, 1);
    assert_eq!(fs::read(&time_path).unwrap(), good_time);
}

#[test]
fn rolls_by_size_time_and_full_index() {
    // By size: a segment never goes past segment.bytes (unless one append alone does).
    let (_tmp, dir) = tmp();
    let batch = produced(2, 50, NOW);
    let size = batch.len() as i64;
    let config = LogConfig {
        segment_bytes: size * 3 + 10,
        ..LogConfig::default()
    };
    let log = PartitionLog::create_with_config(&dir, "size", 0, config).expect("create");
    for _ in 0..10 {
        append(&log, std::slice::from_ref(&batch), 0, NOW);
    }
    let sizes: Vec<u64> = log.segments().iter().map(|s| s.size).collect();
    assert_eq!(
        sizes,
        vec![
            3 * size as u64,
            3 * size as u64,
            3 * size as u64,
            size as u64
        ]
    );
    assert_eq!(
        log.segments()
            .iter()
            .map(|s| s.base_offset)
            .collect::<Vec<_>>(),
        vec![0, 6, 12, 18]
    );
    // Two batches in one append go to the same segment.
    append(&log, &[batch.clone(), batch.clone(), batch.clone()], 0, NOW);
    assert_eq!(log.segments().len(), 5);
    assert_eq!(log.segments()[4].size, 3 * size as u64);
    // Sealed segments were synced: the recovery point is at the active segment's base.
    assert_eq!(log.recovery_point(), 20);
    check_indexes(&log);

    // By time: the first batch's timestamp against the new records'.
    let config = LogConfig {
        segment_ms: 1_000,
        ..LogConfig::default()
    };
    let log = PartitionLog::create_with_config(&dir, "time", 0, config).expect("create");
    append(&log, &[produced_at(&[NOW])], 0, NOW);
    append(&log, &[produced_at(&[NOW + 1_000])], 0, NOW);
    assert_eq!(log.segments().len(), 1);
    append(&log, &[produced_at(&[NOW + 1_001])], 0, NOW);
    assert_eq!(log.segments().len(), 2);
    // Old producer timestamps do not roll.
    append(&log, &[produced_at(&[5])], 0, NOW + 10_000);
    assert_eq!(log.segments().len(), 2);
    assert_eq!(log.segments()[1].base_offset, 2);

    // By creation time when the batches have no timestamp.
    let log = PartitionLog::create_with_config(
        &dir,
        "created",
        0,
        LogConfig {
            segment_ms: 1_000,
            ..LogConfig::default()
        },
    )
    .expect("create");
    append(&log, &[produced_at(&[-1])], 0, NOW);
    let created = super::segment::now_ms();
    append(&log, &[produced_at(&[-1])], 0, created + 500);
    assert_eq!(log.segments().len(), 1);
    append(&log, &[produced_at(&[-1])], 0, created + 60_000);
    assert_eq!(log.segments().len(), 2);

    // By full index: 16 bytes hold 2 offset entries and 1 time entry.
    let config = LogConfig {
        index_interval_bytes: 0,
        segment_index_bytes: 16,
        ..LogConfig::default()
    };
    let log = PartitionLog::create_with_config(&dir, "full", 0, config).expect("create");
    for i in 0..6 {
        append(&log, &[produced_at(&[NOW + i])], 0, NOW);
    }
    // Entries at batch 1 (time index now full): batch 2 rolls, and so on.
    assert_eq!(
        log.segments()
            .iter()
            .map(|s| s.batch_count)
            .collect::<Vec<_>>(),
        vec![2, 2, 2]
    );
    check_indexes(&log);
}

#[test]
fn flush_by_message_count_and_time() {
    let (_tmp, dir) = tmp();
    let config = LogConfig {
        flush_messages: 3,
        ..LogConfig::default()
    };
    let log = PartitionLog::create_with_config(&dir, "f", 0, config).expect("create");
    let mut points = Vec::new();
    for _ in 0..7 {
        append(&log, &[produced(1, 1, NOW)], 0, NOW);
        points.push((log.recovery_point(), log.unflushed_messages()));
    }
    assert_eq!(
        points,
        vec![(0, 1), (0, 2), (3, 0), (3, 1), (3, 2), (6, 0), (6, 1)]
    );
    // A batch of 5 records flushes at once.
    append(&log, &[produced(5, 1, NOW)], 0, NOW);
    assert_eq!(log.recovery_point(), 12);

    // flush.ms.
    let config = LogConfig {
        flush_ms: 1_000,
        ..LogConfig::default()
    };
    let log = PartitionLog::create_with_config(&dir, "g", 0, config).expect("create");
    let start = super::segment::now_ms();
    assert!(
        !log.flush_if_due(start + 10_000).expect("flush"),
        "nothing to flush"
    );
    append(&log, &[produced(2, 1, NOW)], 0, NOW);
    assert!(!log.flush_if_due(start - 10).expect("flush"), "not yet due");
    assert_eq!(log.recovery_point(), 0);
    assert!(log.flush_if_due(start + 10_000).expect("flush"));
    assert_eq!(log.recovery_point(), 2);
    // Default: leave it to the page cache.
    let log = PartitionLog::create(&dir, "h", 0).expect("create");
    append(&log, &[produced(2, 1, NOW)], 0, NOW);
    assert!(!log.flush_if_due(i64::MAX).expect("flush"));
    assert_eq!(log.unflushed_messages(), 2);
    log.flush().expect("flush");
    assert_eq!(log.unflushed_messages(), 0);
}

/// Reads a checkpoint file into a map.
fn read_checkpoint(path: &Path) -> HashMap<(String, i32), i64> {
    let text = fs::read_to_string(path).expect("checkpoint");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("0"));
    let count: usize = lines.next().unwrap().parse().unwrap();
    let map: HashMap<(String, i32), i64> = lines
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            assert_eq!(fields.len(), 3, "{line:?}");
            (
                (fields[0].to_owned(), fields[1].parse().unwrap()),
                fields[2].parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(map.len(), count);
    map
}

#[test]
fn clean_shutdown_marker_and_checkpoints() {
    let (_tmp, dir) = tmp();
    let dirs = vec![dir.clone()];
    let manager = LogManager::open(&dirs).expect("open");
    let a = manager.create("alpha", 0).expect("create");
    let b = manager.create("beta-x", 3).expect("create");
    append(&a, &[produced(4, 10, NOW)], 1, NOW);
    append(
        &b,
        &[produced(2, 10, NOW), produced(3, 10, NOW + 1)],
        1,
        NOW,
    );
    assert_eq!(
        manager.delete_records("beta-x", 3, 2).expect("delete"),
        Some(2)
    );
    manager.shutdown().expect("shutdown");
    assert!(matches!(
        a.append_batch(&mut produced(1, 1, NOW).to_vec()),
        Err(StorageError::Closed { .. })
    ));
    let marker = fs::read_to_string(dir.join(CLEAN_SHUTDOWN_FILE)).expect("marker");
    assert_eq!(marker, r#"{"version":0,"brokerEpoch":-1}"#);
    let expected = |alpha: i64, beta: i64| {
        HashMap::from([
            (("alpha".to_owned(), 0), alpha),
            (("beta-x".to_owned(), 3), beta),
        ])
    };
    assert_eq!(
        read_checkpoint(&dir.join(RECOVERY_POINT_CHECKPOINT)),
        expected(4, 5)
    );
    assert_eq!(
        read_checkpoint(&dir.join(REPLICATION_OFFSET_CHECKPOINT)),
        expected(4, 5)
    );
    assert_eq!(
        read_checkpoint(&dir.join(LOG_START_OFFSET_CHECKPOINT)),
        expected(0, 2)
    );
    assert_eq!(
        fs::read_to_string(dir.join(LOG_START_OFFSET_CHECKPOINT)).unwrap(),
        "0\n2\nalpha 0 0\nbeta-x 3 2\n"
    );
    drop((a, b, manager));

    // A corrupt batch that only a full scan finds: trusted after a clean shutdown...
    let segment = dir.join("alpha-0/00000000000000000000.log");
    let mut bytes = fs::read(&segment).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&segment, &bytes).unwrap();
    let manager = LogManager::open(&dirs).expect("open");
    assert!(!dir.join(CLEAN_SHUTDOWN_FILE).exists(), "marker deleted");
    let a = manager.get("alpha", 0).expect("log");
    let b = manager.get("beta-x", 3).expect("log");
    assert!(a.open_report().clean_shutdown);
    assert_eq!(a.open_report().verified_segments, 0);
    assert_eq!(a.log_end_offset(), 4);
    assert_eq!((b.log_start_offset(), b.log_end_offset()), (2, 5));
    assert_eq!(b.recovery_point(), 5);
    drop((a, b, manager));

    // ...found and truncated without the marker (a crash) when it is past the recovery
    // point (what is below it was synced and checkpointed, and is not verified again).
    fs::write(
        dir.join(RECOVERY_POINT_CHECKPOINT),
        "0\n2\nalpha 0 0\nbeta-x 3 5\n",
    )
    .unwrap();
    let manager = LogManager::open(&dirs).expect("open");
    let a = manager.get("alpha", 0).expect("log");
    assert!(!a.open_report().clean_shutdown);
    assert_eq!(a.open_report().verified_segments, 1);
    assert_eq!(a.log_end_offset(), 0);
    assert_eq!(
        a.torn_tail().expect("torn").reason,
        "corrupt batch (CRC mismatch or malformed)"
    );
    assert_eq!(fs::metadata(&segment).unwrap().len(), 0);
    let b = manager.get("beta-x", 3).expect("log");
    assert_eq!(b.log_start_offset(), 2, "from the checkpoint");
    assert_eq!(b.recovery_point(), 5, "from the checkpoint");
    // The recovery point's segment is still recovered, as Kafka does.
    assert_eq!(b.open_report().verified_segments, 1);
}

#[test]
fn recovery_starts_at_the_recovery_point() {
    let (_tmp, dir) = tmp();
    let dirs = vec![dir.clone()];
    let manager = LogManager::open(&dirs).expect("open");
    let log = manager.create("r", 0).expect("create");
    for _ in 0..4 {
        append(&log, &[produced(2, 10, NOW)], 0, NOW);
        log.roll_segment().expect("roll");
    }
    append(&log, &[produced(2, 10, NOW)], 0, NOW);
    // Rolls synced the sealed segments: the recovery point is the active segment's base.
    assert_eq!(log.recovery_point(), 8);
    manager.checkpoint().expect("checkpoint");
    drop((log, manager));
    // Crash: no marker. Only the last segment is scanned.
    let manager = LogManager::open(&dirs).expect("open");
    let log = manager.get("r", 0).expect("log");
    assert_eq!(log.open_report().verified_segments, 1);
    assert_eq!(log.log_end_offset(), 10);
    drop((log, manager));
    // Without checkpoints: everything.
    fs::remove_file(dir.join(RECOVERY_POINT_CHECKPOINT)).unwrap();
    let manager = LogManager::open(&dirs).expect("open");
    let log = manager.get("r", 0).expect("log");
    assert_eq!(log.open_report().verified_segments, 5);
    assert_eq!(log.open_report().rebuilt_indexes, 5);
    check_indexes(&log);
}

/// A small deterministic generator for the randomised recovery test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// One appended batch as it ended up in the log.
#[derive(Clone, Debug)]
struct Stored {
    segment: i64,
    position: u64,
    bytes: Vec<u8>,
}

/// Random appends, then a torn tail or a corrupt byte, then a reopen without the clean
/// shutdown marker: every batch before the damage is served, none after it, the index files
/// match, and appends continue (and survive another reopen).
#[test]
fn random_damage_then_recovery() {
    let cases: u64 = std::env::var("GREGOR_RECOVERY_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    for case in 0..cases {
        let seed = 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(case + 1) | 1;
        random_case(seed);
    }
}

fn random_case(seed: u64) {
    let mut rng = Rng(seed);
    let (_tmp, dir) = tmp();
    let config = LogConfig {
        segment_bytes: 6_000 + rng.below(6_000) as i64,
        index_interval_bytes: rng.below(400) as i32,
        ..LogConfig::default()
    };
    let log = PartitionLog::create_with_config(&dir, "p", 0, config.clone()).expect("create");
    let appends = 1 + rng.below(40);
    for _ in 0..appends {
        let batches: Vec<Bytes> = (0..1 + rng.below(3))
            .map(|_| {
                let count = 1 + rng.below(6) as usize;
                let value_len = rng.below(300) as usize;
                let ts = NOW + rng.below(10_000) as i64 - 5_000;
                if rng.below(4) == 0 {
                    RecordBatchBuilder::new()
                        .compression(Compression::Lz4)
                        .build(&records(count, value_len, ts))
                        .expect("batch")
                } else {
                    produced(count, value_len, ts)
                }
            })
            .collect();
        append(&log, &batches, rng.below(5) as i32, NOW);
    }
    let segments = log.segments();
    let mut stored = Vec::new();
    for segment in &segments {
        let file = fs::read(&segment.path).expect("segment");
        let mut position = 0u64;
        for batch in RecordBatches::new(Bytes::from(file)) {
            let batch = batch.expect("batch");
            stored.push(Stored {
                segment: segment.base_offset,
                position,
                bytes: match batch {
                    gregor_protocol::records::Batch::V2(b) => b.as_bytes().to_vec(),
                    other => panic!("{other:?}"),
                },
            });
            position += stored.last().unwrap().bytes.len() as u64;
        }
    }
    let end_before = log.log_end_offset();
    drop(log);

    // Damage: truncate the last segment, or flip a byte covered by the CRC (or the length)
    // of a random batch in any segment, or append garbage to the last segment.
    let victim = &stored[rng.below(stored.len() as u64) as usize];
    let last_segment = segments.last().unwrap();
    let kept: Vec<&Stored> = match rng.below(3) {
        0 => {
            let len = fs::metadata(&last_segment.path).unwrap().len();
            let cut = rng.below(len + 1);
            let file = fs::OpenOptions::new()
                .write(true)
                .open(&last_segment.path)
                .unwrap();
            file.set_len(cut).unwrap();
            stored
                .iter()
                .filter(|s| {
                    s.segment != last_segment.base_offset
                        || s.position + s.bytes.len() as u64 <= cut
                })
                .collect()
        }
        1 => {
            let candidates: Vec<usize> = (8..12).chain(16..victim.bytes.len()).collect();
            let at = candidates[rng.below(candidates.len() as u64) as usize];
            let path = dir.join("p-0").join(segment_file_name(victim.segment));
            let mut file = fs::read(&path).unwrap();
            file[victim.position as usize + at] ^= 1 << rng.below(8);
            fs::write(&path, &file).unwrap();
            stored
                .iter()
                .take_while(|s| !(s.segment == victim.segment && s.position == victim.position))
                .collect()
        }
        _ => {
            let mut file = fs::read(&last_segment.path).unwrap();
            let garbage: Vec<u8> = (0..rng.below(200)).map(|_| rng.next() as u8).collect();
            file.extend_from_slice(&garbage);
            fs::write(&last_segment.path, &file).unwrap();
            stored.iter().collect()
        }
    };
    let log = PartitionLog::open_with_config(&dir, "p", 0, config.clone()).expect("reopen");
    let expected: Vec<u8> = kept.iter().flat_map(|s| s.bytes.iter().copied()).collect();
    let read = log.read(0, usize::MAX, true).expect("read");
    assert_eq!(read.records.len(), expected.len(), "seed {seed}");
    assert!(read.records.as_ref() == expected.as_slice(), "seed {seed}");
    assert!(log.log_end_offset() <= end_before, "seed {seed}");
    check_indexes(&log);
    // Nothing past the damage is left on disk either.
    let on_disk: u64 = log
        .segments()
        .iter()
        .map(|s| fs::metadata(&s.path).unwrap().len())
        .sum();
    assert_eq!(on_disk, expected.len() as u64, "seed {seed}");

    // Appends continue, and everything survives another (unclean) reopen.
    let end = log.log_end_offset();
    append(&log, &[produced(3, 20, NOW)], 9, NOW);
    drop(log);
    let log = PartitionLog::open_with_config(&dir, "p", 0, config).expect("reopen");
    assert!(log.torn_tail().is_none(), "seed {seed}");
    assert_eq!(log.log_end_offset(), end + 3, "seed {seed}");
    let batches = all_batches(&log);
    assert_eq!(batches.last().unwrap().base_offset(), end, "seed {seed}");
    check_indexes(&log);
}

#[test]
fn retention_by_time_size_and_log_start() {
    let (_tmp, dir) = tmp();
    let config = LogConfig {
        retention_ms: 10_000,
        ..LogConfig::default()
    };
    let log = PartitionLog::create_with_config(&dir, "ret", 0, config).expect("create");
    // Segments with max timestamps NOW, NOW+5000, NOW+20000.
    for ts in [NOW, NOW + 5_000, NOW + 20_000] {
        append(&log, &[produced_at(&[ts - 100, ts])], 0, NOW);
        log.roll_segment().expect("roll");
    }
    append(&log, &[produced_at(&[NOW + 25_000])], 0, NOW);
    assert_eq!(log.segments().len(), 4);
    assert_eq!(log.enforce_retention(NOW + 10_000).expect("retention"), 0);
    assert_eq!(log.enforce_retention(NOW + 10_001).expect("retention"), 1);
    assert_eq!(log.log_start_offset(), 2);
    assert!(!dir.join("ret-0/00000000000000000000.log").exists());
    assert!(!dir.join("ret-0/00000000000000000000.index").exists());
    assert!(!dir.join("ret-0/00000000000000000000.timeindex").exists());
    assert!(matches!(
        log.read(1, 100, true),
        Err(ReadError::OffsetOutOfRange { log_start: 2, .. })
    ));
    assert_eq!(log.enforce_retention(NOW + 30_001).expect("retention"), 2);
    assert_eq!(log.log_start_offset(), 6);
    // Everything expired, the active segment too: rolled first, an empty segment stays.
    assert_eq!(log.enforce_retention(NOW + 40_000).expect("retention"), 1);
    let segments = log.segments();
    assert_eq!(segments.len(), 1);
    assert_eq!((segments[0].base_offset, segments[0].size), (7, 0));
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (7, 7));
    assert_eq!(log.enforce_retention(NOW + 90_000).expect("retention"), 0);
    append(&log, &[produced_at(&[NOW])], 0, NOW);
    assert_eq!(log.log_end_offset(), 8);

    // By size: the oldest segments go while the rest still exceeds retention.bytes.
    let batch = produced(1, 100, NOW);
    let size = batch.len() as i64;
    let config = LogConfig {
        retention_bytes: size * 3,
        segment_bytes: size * 2,
        ..LogConfig::default()
    };
    let log = PartitionLog::create_with_config(&dir, "bytes", 0, config).expect("create");
    for _ in 0..7 {
        append(&log, std::slice::from_ref(&batch), 0, NOW);
    }
    // Segments of 2, 2, 2, 1 batches: 7 * size, so 4 * size must go: two segments.
    assert_eq!(log.segments().len(), 4);
    assert_eq!(log.enforce_retention(NOW).expect("retention"), 2);
    assert_eq!(log.log_start_offset(), 4);
    assert_eq!(log.enforce_retention(NOW).expect("retention"), 0);

    // cleanup.policy=compact only: no time or size retention.
    let config = LogConfig {
        retention_ms: 0,
        retention_bytes: 0,
        cleanup_policy: CleanupPolicy {
            delete: false,
            compact: true,
        },
        ..LogConfig::default()
    };
    let log = PartitionLog::create_with_config(&dir, "compacted", 0, config).expect("create");
    append(&log, &[produced(1, 1, NOW)], 0, NOW);
    log.roll_segment().expect("roll");
    append(&log, &[produced(1, 1, NOW)], 0, NOW);
    assert_eq!(
        log.enforce_retention(NOW + 1_000_000).expect("retention"),
        0
    );
    // But segments below the log start offset always go.
    log.advance_log_start_offset(1).expect("advance");
    assert_eq!(log.segments().len(), 1);
    assert_eq!(log.log_start_offset(), 1);
}

#[test]
fn delete_records_before() {
    let (_tmp, dir) = tmp();
    let dirs = vec![dir.clone()];
    let manager = LogManager::open(&dirs).expect("open");
    let log = manager.create("dr", 1).expect("create");
    for _ in 0..3 {
        append(&log, &[produced(3, 10, NOW)], 0, NOW);
        log.roll_segment().expect("roll");
    }
    append(&log, &[produced(3, 10, NOW)], 0, NOW);
    assert_eq!(log.log_end_offset(), 12);
    // Inside the second segment: the first goes.
    assert_eq!(log.delete_records_before(4).expect("delete"), 4);
    assert_eq!(
        log.segments()
            .iter()
            .map(|s| s.base_offset)
            .collect::<Vec<_>>(),
        vec![3, 6, 9]
    );
    let read = log.read(4, usize::MAX, true).expect("read");
    assert_eq!(
        RecordBatches::new(read.records)
            .next()
            .unwrap()
            .unwrap()
            .last_offset(),
        5
    );
    assert!(matches!(
        log.read(3, 100, true),
        Err(ReadError::OffsetOutOfRange {
            log_start: 4,
            log_end: 12
        })
    ));
    // Lower is a no-op.
    assert_eq!(log.delete_records_before(2).expect("delete"), 4);
    // Persisted.
    assert_eq!(
        read_checkpoint(&dir.join(LOG_START_OFFSET_CHECKPOINT))[&("dr".to_owned(), 1)],
        4
    );
    // Above the high watermark, or negative.
    assert!(matches!(
        log.delete_records_before(13),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    assert!(matches!(
        log.delete_records_before(-2),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    // -1: the high watermark; the active segment stays (empty of served offsets).
    assert_eq!(log.delete_records_before(-1).expect("delete"), 12);
    assert_eq!(log.segments().len(), 1);
    assert!(log.read(12, 100, true).expect("read").records.is_empty());
    drop((log, manager));
    // After a crash the log start offset comes back from the checkpoint.
    let manager = LogManager::open(&dirs).expect("open");
    let log = manager.get("dr", 1).expect("log");
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (12, 12));
    assert_eq!(manager.delete_records("nope", 0, 1).expect("none"), None);
}

#[test]
fn timestamp_lookups() {
    let (_tmp, dir) = tmp();
    let config = LogConfig {
        index_interval_bytes: 0,
        ..LogConfig::default()
    };
    let log = PartitionLog::create_with_config(&dir, "ts", 0, config).expect("create");
    let empty = log.max_timestamp().expect("lookup");
    assert_eq!(empty, None);
    assert_eq!(log.offset_for_timestamp(0).expect("lookup"), None);
    // Offsets 0..: timestamps not in order, across segments and a compressed batch.
    let timestamps: Vec<i64> = vec![100, 300, 200, 250, 300, 50, 400, 390, 400, 10];
    append(&log, &[produced_at(&timestamps[0..3])], 4, NOW);
    log.roll_segment().expect("roll");
    let gzip = RecordBatchBuilder::new()
        .compression(Compression::Gzip)
        .build(
            &timestamps[3..6]
                .iter()
                .map(|&ts| NewRecord::new(ts, None, Some(Bytes::from_static(b"x"))))
                .collect::<Vec<_>>(),
        )
        .expect("batch");
    append(&log, &[gzip], 5, NOW);
    append(&log, &[produced_at(&timestamps[6..8])], 6, NOW);
    log.roll_segment().expect("roll");
    append(&log, &[produced_at(&timestamps[8..10])], 7, NOW);
    let epochs = [4, 4, 4, 5, 5, 5, 6, 6, 7, 7];
    for target in [
        -5, 0, 10, 11, 50, 99, 100, 101, 200, 250, 251, 300, 301, 390, 400, 401,
    ] {
        let expected = timestamps
            .iter()
            .position(|&ts| ts >= target)
            .map(|i| TimestampOffset {
                offset: i as i64,
                timestamp: timestamps[i],
                leader_epoch: epochs[i],
            });
        assert_eq!(
            log.offset_for_timestamp(target).expect("lookup"),
            expected,
            "target {target}"
        );
    }
    assert_eq!(
        log.max_timestamp().expect("lookup"),
        Some(TimestampOffset {
            offset: 6,
            timestamp: 400,
            leader_epoch: 6
        })
    );
    // Below the log start offset nothing is found.
    log.delete_records_before(7).expect("delete");
    assert_eq!(
        log.offset_for_timestamp(0)
            .expect("lookup")
            .map(|t| t.offset),
        Some(7)
    );
    assert_eq!(
        log.max_timestamp().expect("lookup").map(|t| t.offset),
        Some(8)
    );
    // Log append time: every record has the batch's time; the first record is found.
    log.set_config(LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    });
    append(&log, &[produced_at(&[1, 2, 3])], 8, 5_000);
    assert_eq!(
        log.max_timestamp().expect("lookup"),
        Some(TimestampOffset {
            offset: 10,
            timestamp: 5_000,
            leader_epoch: 8
        })
    );
    assert_eq!(
        log.offset_for_timestamp(4_000)
            .expect("lookup")
            .map(|t| t.offset),
        Some(10)
    );
}

#[test]
fn manager_configs_and_background_tasks() {
    let config = crate::config::Config::from_properties([
        ("node.id", "1"),
        ("process.roles", "broker,controller"),
        ("controller.quorum.voters", "1@localhost:9093"),
        ("controller.listener.names", "CONTROLLER"),
        ("listeners", "PLAINTEXT://:9092,CONTROLLER://:9093"),
        ("log.segment.bytes", "2000"),
        ("log.roll.hours", "2"),
        ("log.retention.minutes", "3"),
        ("log.retention.bytes", "5000"),
        ("message.max.bytes", "1234"),
        ("log.message.timestamp.type", "LogAppendTime"),
        ("log.cleanup.policy", "compact,delete"),
        ("log.index.interval.bytes", "77"),
        ("log.index.size.max.bytes", "4096"),
        ("log.flush.interval.messages", "10"),
        ("log.flush.scheduler.interval.ms", "500"),
        ("log.message.timestamp.before.max.ms", "60000"),
        ("producer.id.expiration.ms", "120000"),
        ("compression.type", "zstd"),
        ("compression.gzip.level", "5"),
        ("compression.lz4.level", "4"),
        ("compression.zstd.level", "-7"),
        ("log.message.downconversion.enable", "false"),
    ])
    .expect("config");
    let from_broker = LogConfig::from_broker(&config);
    assert_eq!(
        from_broker,
        LogConfig {
            segment_bytes: 2000,
            segment_ms: 2 * 3_600_000,
            retention_ms: 3 * 60_000,
            retention_bytes: 5000,
            max_message_bytes: 1234,
            timestamp_type: TimestampType::LogAppendTime,
            cleanup_policy: CleanupPolicy {
                delete: true,
                compact: true
            },
            index_interval_bytes: 77,
            segment_index_bytes: 4096,
            flush_messages: 10,
            flush_ms: 500,
            message_timestamp_before_max_ms: 60_000,
            message_timestamp_after_max_ms: 3_600_000,
            producer_id_expiration_ms: 120_000,
            compression_type: Some(Compression::Zstd),
            compression_gzip_level: 5,
            compression_lz4_level: 4,
            compression_zstd_level: -7,
            message_downconversion_enable: false,
            ..LogConfig::default()
        }
    );
    assert_eq!(
        LogConfig::from_broker(&crate::config::Config::embedded_default()),
        LogConfig {
            retention_bytes: -1,
            ..LogConfig::default()
        }
    );
    let schedule = MaintenanceSchedule::from_broker(&config);
    assert_eq!(schedule.flush_check_interval_ms, Some(500));
    assert_eq!(schedule.retention_check_interval_ms, Some(300_000));
    assert_eq!(
        MaintenanceSchedule::from_broker(&crate::config::Config::embedded_default())
            .flush_check_interval_ms,
        None
    );

    let (_tmp, dir) = tmp();
    let topic_config = LogConfig {
        retention_ms: 1,
        ..LogConfig::default()
    };
    let manager = Arc::new(
        LogManager::open_with(
            std::slice::from_ref(&dir),
            LogConfig::default(),
            HashMap::from([("short".to_owned(), topic_config.clone())]),
        )
        .expect("open"),
    );
    let short = manager.create("short", 0).expect("create");
    let long = manager.create("long", 0).expect("create");
    assert_eq!(*short.config(), topic_config);
    assert_eq!(*long.config(), LogConfig::default());
    let segment_ms = LogConfig {
        segment_ms: 5,
        ..LogConfig::default()
    };
    manager.set_default_config(segment_ms.clone());
    assert_eq!(*long.config(), segment_ms);
    assert_eq!(*short.config(), topic_config);
    manager.clear_topic_config("short");
    assert_eq!(*short.config(), segment_ms);
    manager.set_topic_config("short", topic_config.clone());
    assert_eq!(*short.config(), topic_config);
    assert_eq!(manager.config_for("other"), segment_ms);

    // Old records in "short": the retention task deletes them.
    let now = super::segment::now_ms();
    append(&short, &[produced_at(&[1_000])], 0, now);
    append(&long, &[produced_at(&[now])], 0, now);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let task = LogManager::spawn_background_tasks(
            &manager,
            |m| m,
            MaintenanceSchedule {
                flush_check_interval_ms: Some(10),
                retention_check_interval_ms: Some(10),
                checkpoint_interval_ms: Some(10),
                producer_expiration_interval_ms: Some(10),
            },
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while short.log_start_offset() != 1 || !dir.join(RECOVERY_POINT_CHECKPOINT).exists() {
            assert!(tokio::time::Instant::now() < deadline, "retention ran");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        task.abort();
    });
    assert_eq!(long.log_start_offset(), 0);
    assert_eq!(
        read_checkpoint(&dir.join(LOG_START_OFFSET_CHECKPOINT))[&("short".to_owned(), 0)],
        1
    );
}
