//! Where the metadata log starts and how its damaged tail is recovered: files written by
//! hand (a log that starts past offset 0, bytes that are not a batch at the end), read
//! with [`load`], then continued by [`MetadataLog::open`] and read again.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use gregor_protocol::MetadataRecord;
use gregor_protocol::messages::feature_level_record::FeatureLevelRecord;
use gregor_protocol::messages::partition_record::PartitionRecord;
use gregor_protocol::messages::topic_record::TopicRecord;
use gregor_protocol::metadata_frame::VersionedRecord;
use gregor_protocol::records::{NewRecord, RecordBatchBuilder};
use uuid::Uuid;

use super::metadata_log::MetadataLogOptions;
use super::replay::{METADATA_PARTITION_DIR, segment_file_name};
use super::*;
use crate::storage::CLEAN_SHUTDOWN_FILE;

const NODE: i32 = 1;
const EPOCH: i32 = 1;

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("gregor-metadata-recovery-")
        .tempdir()
        .unwrap()
}

fn feature() -> MetadataRecord {
    MetadataRecord::FeatureLevel(FeatureLevelRecord {
        name: "metadata.version".into(),
        feature_level: 21,
        ..Default::default()
    })
}

fn topic(name: &str, id: u128) -> MetadataRecord {
    MetadataRecord::Topic(TopicRecord {
        name: name.into(),
        topic_id: Uuid::from_u128(id),
        ..Default::default()
    })
}

fn partition(id: u128, index: i32) -> MetadataRecord {
    MetadataRecord::Partition(PartitionRecord {
        partition_id: index,
        topic_id: Uuid::from_u128(id),
        replicas: vec![NODE],
        isr: vec![NODE],
        leader: NODE,
        ..Default::default()
    })
}

/// One metadata batch at `base_offset` (records framed at version 0).
fn batch(base_offset: i64, records: &[MetadataRecord]) -> Bytes {
    let values: Vec<NewRecord> = records
        .iter()
        .map(|record| {
            let mut value = BytesMut::new();
            record.encode_framed(&mut value, 0).unwrap();
            NewRecord::new(1_700_000_000_000, None, Some(value.freeze()))
        })
        .collect();
    RecordBatchBuilder::new()
        .base_offset(base_offset)
        .partition_leader_epoch(EPOCH)
        .build(&values)
        .unwrap()
}

/// Writes a segment named after `segment_base` holding `batches`; returns its path.
fn write_segment(log_dir: &Path, segment_base: i64, batches: &[Bytes]) -> PathBuf {
    let dir = log_dir.join(METADATA_PARTITION_DIR);
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join(segment_file_name(segment_base));
    fs::write(&path, batches.concat()).unwrap();
    path
}

/// The course's layout: `00000000000000000000.log` whose first batch is at offset 1;
/// two topics (3 and 1 partitions). Returns the segment and the offset after its last
/// batch.
fn course_log(log_dir: &Path) -> (PathBuf, i64) {
    let batches = [
        batch(1, &[feature()]),
        batch(
            2,
            &[
                topic("a", 1),
                partition(1, 0),
                partition(1, 1),
                partition(1, 2),
            ],
        ),
        batch(6, &[topic("b", 2), partition(2, 0)]),
    ];
    (write_segment(log_dir, 0, &batches), 8)
}

/// Offsets of every batch of the segments, in order (whole, valid v2 batches only).
fn batch_offsets(log_dir: &Path) -> Vec<(i64, i64)> {
    let dir = log_dir.join(METADATA_PARTITION_DIR);
    let mut segments: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    segments.sort();
    let mut out = Vec::new();
    for path in segments {
        let mut batches =
            gregor_protocol::records::RecordBatches::new(Bytes::from(fs::read(&path).unwrap()));
        for item in batches.by_ref() {
            let gregor_protocol::records::Batch::V2(batch) = item.unwrap() else {
                panic!("a legacy message");
            };
            batch.validate().unwrap();
            out.push((batch.base_offset(), batch.last_offset()));
        }
        assert!(
            !batches.is_truncated(),
            "{} ends in a partial batch",
            path.display()
        );
    }
    out
}

fn topic_names(loaded: &LoadedMetadata) -> Vec<String> {
    loaded.image.topics().map(|t| t.name.clone()).collect()
}

fn record(record: MetadataRecord) -> VersionedRecord {
    VersionedRecord { version: 0, record }
}

#[test]
fn a_log_whose_first_batch_is_past_offset_zero_loads_and_continues() {
    let dir = tempdir();
    let (segment, end) = course_log(dir.path());
    let loaded = load(dir.path()).unwrap();
    assert_eq!(topic_names(&loaded), ["a", "b"]);
    assert_eq!(loaded.image.topic("a").unwrap().partitions.len(), 3);
    assert_eq!(loaded.next_offset, end);
    assert_eq!(loaded.last_epoch, EPOCH);
    assert_eq!(loaded.truncate_at, None);

    // The appender continues in the same segment, at the offset after the last batch (its
    // batches are years old: no roll by metadata.log.segment.ms here).
    let options = MetadataLogOptions {
        segment_ms: i64::MAX,
        ..MetadataLogOptions::new(NODE)
    };
    let (mut log, report) = MetadataLog::open(dir.path(), &loaded, options).unwrap();
    assert_eq!(report.leader_change_offset, end);
    assert_eq!(report.epoch, EPOCH + 1);
    assert_eq!(log.active_segment(), 0);
    let appended = log.append(&[record(topic("c", 3))]).unwrap();
    assert_eq!(appended.base_offset, end + 1);
    assert_eq!(appended.segment, 0);
    drop(log);
    assert_eq!(
        batch_offsets(dir.path()),
        [(1, 1), (2, 5), (6, 7), (end, end), (end + 1, end + 1)]
    );
    assert!(segment.exists());

    let loaded = load(dir.path()).unwrap();
    assert_eq!(topic_names(&loaded), ["a", "b", "c"]);
    assert_eq!(loaded.next_offset, end + 2);
}

#[test]
fn a_first_segment_past_zero_needs_a_snapshot() {
    // Segments below 5 were deleted, but no snapshot holds their records (Kafka:
    // "Inconsistent snapshot state").
    let dir = tempdir();
    let path = write_segment(dir.path(), 5, &[batch(5, &[feature()])]);
    match load(dir.path()) {
        Err(ReplayError::Malformed {
            path: p, reason, ..
        }) => {
            assert_eq!(p, path);
            assert!(reason.contains("no snapshot"), "{reason}");
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn gaps_and_overlaps_between_batches_are_errors_wherever_the_log_starts() {
    for (batches, expected) in [
        (
            vec![batch(1, &[feature()]), batch(3, &[topic("a", 1)])],
            "missing",
        ),
        (
            vec![
                batch(1, &[feature(), topic("a", 1)]),
                batch(2, &[topic("b", 2)]),
            ],
            "overlaps",
        ),
    ] {
        let dir = tempdir();
        write_segment(dir.path(), 0, &batches);
        match load(dir.path()) {
            Err(ReplayError::Malformed { reason, .. }) => {
                assert!(reason.contains(expected), "{reason}")
            }
            other => panic!("expected {expected:?}, got {other:?}"),
        }
    }
}

#[test]
fn a_gap_between_segments_is_an_error() {
    let dir = tempdir();
    write_segment(dir.path(), 0, &[batch(0, &[feature()])]);
    write_segment(dir.path(), 3, &[batch(3, &[topic("a", 1)])]);
    match load(dir.path()) {
        Err(ReplayError::Malformed { reason, .. }) => {
            assert!(reason.contains("missing"), "{reason}")
        }
        other => panic!("expected a gap, got {other:?}"),
    }
}

/// Bytes that an interrupted append can leave after the last whole batch.
fn garbage_tails(next_batch: &Bytes) -> Vec<(&'static str, Vec<u8>)> {
    let mut bad_magic = next_batch[..40].to_vec();
    bad_magic[16] = 0x5a;
    let mut huge_length = next_batch[..40].to_vec();
    huge_length[8..12].copy_from_slice(&0x7fff_0000i32.to_be_bytes());
    let mut both = huge_length.clone();
    both[16] = 0xee;
    let mut bad_crc = next_batch.to_vec();
    let at = bad_crc.len() - 3;
    bad_crc[at] ^= 0x40;
    let noise: Vec<u8> = (0..300u32).map(|i| (i * 151 % 251) as u8 | 1).collect();
    vec![
        ("a header with a wrong magic byte", bad_magic),
        ("a length past the end of the file", huge_length),
        ("a wrong magic byte and a length past the end", both),
        ("a whole batch failing its CRC", bad_crc),
        ("bytes that are not a batch at all", noise),
        ("zeros", vec![0; 4096]),
        ("a partial header", next_batch[..7].to_vec()),
    ]
}

#[test]
fn a_garbage_tail_is_truncated_and_the_log_continues_after_it() {
    for clean_marker in [false, true] {
        let next = batch(8, &[topic("torn", 9)]);
        for (what, tail) in garbage_tails(&next) {
            let dir = tempdir();
            let (segment, end) = course_log(dir.path());
            let good_len = fs::metadata(&segment).unwrap().len();
            let mut bytes = fs::read(&segment).unwrap();
            bytes.extend_from_slice(&tail);
            fs::write(&segment, &bytes).unwrap();
            if clean_marker {
                // Kafka recovers the metadata log at every start, marker or not.
                fs::write(dir.path().join(CLEAN_SHUTDOWN_FILE), b"").unwrap();
            }

            let loaded = load(dir.path()).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(
                loaded.truncate_at,
                Some((segment.clone(), good_len)),
                "{what}"
            );
            assert_eq!(topic_names(&loaded), ["a", "b"], "{what}");
            assert_eq!(loaded.next_offset, end, "{what}");

            let (mut log, report) =
                MetadataLog::open(dir.path(), &loaded, MetadataLogOptions::new(NODE))
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(
                report.truncated,
                Some((segment.clone(), good_len)),
                "{what}"
            );
            assert_eq!(report.leader_change_offset, end, "{what}");
            log.append(&[record(topic("c", 3))]).unwrap();
            drop(log);
            assert_eq!(
                batch_offsets(dir.path()),
                [(1, 1), (2, 5), (6, 7), (end, end), (end + 1, end + 1)],
                "{what}"
            );
            let loaded = load(dir.path()).unwrap();
            assert_eq!(loaded.truncate_at, None, "{what}");
            assert_eq!(topic_names(&loaded), ["a", "b", "c"], "{what}");
        }
    }
}

#[test]
fn damage_followed_by_a_valid_batch_is_an_error() {
    // A garbage header whose length field still leads to the next, valid batch: not an
    // interrupted append (each append is synced before the next), so nothing is dropped.
    let dir = tempdir();
    let second = batch(2, &[topic("a", 1)]);
    let mut damaged = second.to_vec();
    damaged[16] = 0x33;
    let third = batch(3, &[topic("b", 2)]);
    let segment = write_segment(
        dir.path(),
        0,
        &[batch(1, &[feature()]), Bytes::from(damaged), third],
    );
    let position = batch(1, &[feature()]).len() as u64;
    match load(dir.path()) {
        Err(ReplayError::Corrupt {
            path, position: p, ..
        }) => {
            assert_eq!(path, segment);
            assert_eq!(p, position);
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}
