//! `gregorctl dump-log` on files written here with gregor-protocol in Kafka's formats:
//! segments (every codec, control batches, legacy magic 1 messages, torn tails), offset
//! and time indexes, KRaft snapshots, `__cluster_metadata` and `__consumer_offsets` logs.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use bytes::{BufMut, Bytes, BytesMut};
use gregor_protocol::messages::feature_level_record::FeatureLevelRecord;
use gregor_protocol::messages::group_metadata_key::GroupMetadataKey;
use gregor_protocol::messages::group_metadata_value::GroupMetadataValue;
use gregor_protocol::messages::offset_commit_key::OffsetCommitKey;
use gregor_protocol::messages::offset_commit_value::OffsetCommitValue;
use gregor_protocol::messages::snapshot_footer_record::SnapshotFooterRecord;
use gregor_protocol::messages::snapshot_header_record::SnapshotHeaderRecord;
use gregor_protocol::messages::topic_record::TopicRecord;
use gregor_protocol::messages::{GroupCoordinatorRecordKey, GroupCoordinatorRecordValue};
use gregor_protocol::records::{
    Compression, ControlRecordKey, ControlRecordType, EndTxnMarker, NewRecord, RecordBatchBuilder,
};
use gregor_protocol::{Encodable, MetadataRecord, Uuid};
use serde_json::Value;
use support::{BASE_TIMESTAMP, fixture_record, gregorctl};

fn dump(args: &[&str]) -> support::Run {
    let mut all = vec!["dump-log"];
    all.extend_from_slice(args);
    gregorctl(&all, None)
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A segment of four batches, one per codec after the first, then a commit marker.
fn write_segment(dir: &Path) -> PathBuf {
    let mut log = BytesMut::new();
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    for (b, codec) in codecs.iter().enumerate() {
        let records: Vec<NewRecord> = (b * 4..b * 4 + 4).map(|i| fixture_record(0, i)).collect();
        log.extend_from_slice(
            &RecordBatchBuilder::new()
                .base_offset(100 + b as i64 * 4)
                .compression(*codec)
                .build(&records)
                .unwrap(),
        );
    }
    let marker = NewRecord::new(
        BASE_TIMESTAMP,
        Some(ControlRecordKey::new(ControlRecordType::Commit).encode()),
        Some(
            EndTxnMarker {
                version: 0,
                coordinator_epoch: 3,
            }
            .encode(),
        ),
    );
    log.extend_from_slice(
        &RecordBatchBuilder::new()
            .base_offset(120)
            .producer(9, 0)
            .transactional(true)
            .control(true)
            .build([&marker])
            .unwrap(),
    );
    let path = dir.join("00000000000000000100.log");
    fs::write(&path, &log).unwrap();
    path
}

#[test]
fn segments_as_text_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let segment = write_segment(dir.path());
    let run = dump(&[path_str(&segment)]);
    let text = run.ok();
    assert!(
        text.starts_with(&format!(
            "Dumping {}\nLog starting offset: 100\n",
            segment.display()
        )),
        "{text}"
    );
    assert!(
        text.contains("baseOffset: 100 lastOffset: 103 count: 4 "),
        "{text}"
    );
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        assert!(
            text.contains(&format!("compresscodec: {codec} crcValid: true")),
            "{text}"
        );
    }
    assert!(
        text.contains("isTransactional: true isControl: true"),
        "{text}"
    );
    assert!(
        !text.contains("payload:"),
        "records only with --print-data-log:\n{text}"
    );

    let run = dump(&[path_str(&segment), "--print-data-log"]);
    let text = run.ok();
    assert!(text.contains("| offset: 100 CreateTime: 1735689600000 keySize: 5 valueSize: 9 headerKeys: [seq] key: k-0-0 payload: value-0-0 headers: [seq=0]"), "{text}");
    assert!(text.contains("payload: value-0-19"), "{text}");
    assert!(text.contains("control: Commit"), "{text}");

    let run = dump(&[path_str(&segment), "--print-data-log", "--json"]);
    run.ok();
    let batches = run.json_lines();
    assert_eq!(batches.len(), 6);
    assert_eq!(batches[4]["compression"], "zstd");
    assert_eq!(batches[4]["records"][3]["value"], "value-0-19");
    assert_eq!(batches[4]["records"][3]["offset"], 119);
    assert_eq!(batches[5]["is_control"], true);
    assert_eq!(batches[5]["producer_id"], 9);
    let total: i64 = batches.iter().map(|b| b["count"].as_i64().unwrap()).sum();
    assert_eq!(total, 21);
}

#[test]
fn a_bad_crc_is_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let segment = write_segment(dir.path());
    let mut bytes = fs::read(&segment).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&segment, &bytes).unwrap();
    let run = dump(&[path_str(&segment), "--json"]);
    run.ok();
    let batches = run.json_lines();
    assert_eq!(batches[0]["crc_valid"], true);
    assert_eq!(batches[5]["crc_valid"], false);
}

#[test]
fn torn_tails_and_zero_padding_end_the_dump_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let segment = write_segment(dir.path());
    let bytes = fs::read(&segment).unwrap();
    fs::write(&segment, &bytes[..bytes.len() - 10]).unwrap();
    let run = dump(&[path_str(&segment), "--json"]);
    run.ok();
    assert_eq!(run.json_lines().len(), 5);
    assert!(
        run.stderr.contains("stopped at a partial batch"),
        "{}",
        run.stderr
    );

    let mut padded = bytes.clone();
    padded.extend_from_slice(&[0; 4096]);
    fs::write(&segment, &padded).unwrap();
    let run = dump(&[path_str(&segment), "--json"]);
    run.ok();
    assert_eq!(run.json_lines().len(), 6);
    assert!(run.stderr.contains("zero padding"), "{}", run.stderr);
}

#[test]
fn offset_and_time_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = Vec::new();
    for (rel, pos) in [(0i32, 0i32), (37, 4096), (80, 8200)] {
        index.extend_from_slice(&rel.to_be_bytes());
        index.extend_from_slice(&pos.to_be_bytes());
    }
    index.extend_from_slice(&[0; 64]); // preallocated
    let mut time = Vec::new();
    for (ts, rel) in [(BASE_TIMESTAMP + 5, 3i32), (BASE_TIMESTAMP + 90, 81)] {
        time.extend_from_slice(&ts.to_be_bytes());
        time.extend_from_slice(&rel.to_be_bytes());
    }
    time.extend_from_slice(&[0; 36]);
    let index_path = dir.path().join("00000000000000001000.index");
    let time_path = dir.path().join("00000000000000001000.timeindex");
    fs::write(&index_path, &index).unwrap();
    fs::write(&time_path, &time).unwrap();

    let run = dump(&[path_str(&index_path)]);
    assert_eq!(
        run.ok().lines().skip(1).collect::<Vec<_>>(),
        [
            "offset: 1000 position: 0",
            "offset: 1037 position: 4096",
            "offset: 1080 position: 8200"
        ]
    );
    let run = dump(&[path_str(&time_path), "--json"]);
    run.ok();
    let entries = run.json_lines();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1]["offset"], 1081);
    assert_eq!(entries[1]["timestamp"], BASE_TIMESTAMP + 90);
}

fn framed(record: MetadataRecord, version: i16) -> NewRecord {
    let mut value = BytesMut::new();
    record.encode_framed(&mut value, version).unwrap();
    NewRecord::new(BASE_TIMESTAMP, None, Some(value.freeze()))
}

/// A KRaft snapshot: header control batch, one data batch, footer control batch.
fn write_snapshot(dir: &Path) -> PathBuf {
    let mut out = BytesMut::new();
    let header = NewRecord::new(
        BASE_TIMESTAMP,
        Some(ControlRecordKey::new(ControlRecordType::SnapshotHeader).encode()),
        Some(
            SnapshotHeaderRecord {
                version: 0,
                last_contained_log_timestamp: BASE_TIMESTAMP,
                ..Default::default()
            }
            .to_bytes(0)
            .unwrap(),
        ),
    );
    out.extend_from_slice(
        &RecordBatchBuilder::new()
            .control(true)
            .build([&header])
            .unwrap(),
    );
    let data = [
        framed(
            MetadataRecord::FeatureLevel(FeatureLevelRecord {
                name: "metadata.version".into(),
                feature_level: 27,
                ..Default::default()
            }),
            0,
        ),
        framed(
            MetadataRecord::Topic(TopicRecord {
                name: "snap".into(),
                topic_id: Uuid::from_u128(99),
                ..Default::default()
            }),
            0,
        ),
    ];
    out.extend_from_slice(
        &RecordBatchBuilder::new()
            .base_offset(1)
            .build(&data)
            .unwrap(),
    );
    let footer = NewRecord::new(
        BASE_TIMESTAMP,
        Some(ControlRecordKey::new(ControlRecordType::SnapshotFooter).encode()),
        Some(SnapshotFooterRecord::default().to_bytes(0).unwrap()),
    );
    out.extend_from_slice(
        &RecordBatchBuilder::new()
            .base_offset(3)
            .control(true)
            .build([&footer])
            .unwrap(),
    );
    let path = dir.join("00000000000000000004-0000000001.checkpoint");
    fs::write(&path, &out).unwrap();
    path
}

#[test]
fn kraft_snapshots_and_metadata_logs_as_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let meta = dir.path().join("__cluster_metadata-0");
    fs::create_dir_all(&meta).unwrap();
    let snapshot = write_snapshot(&meta);
    let run = dump(&[path_str(&snapshot)]);
    run.ok();
    let lines = run.json_lines();
    let kinds: Vec<String> = lines
        .iter()
        .map(|l| {
            l.get("type")
                .or_else(|| l.get("control"))
                .and_then(Value::as_str)
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "SNAPSHOT_HEADER",
            "FEATURE_LEVEL_RECORD",
            "TOPIC_RECORD",
            "SNAPSHOT_FOOTER"
        ]
    );
    assert_eq!(lines[1]["record"]["name"], "metadata.version");
    assert_eq!(lines[1]["record"]["feature_level"], 27);
    assert_eq!(lines[2]["offset"], 2);
    assert_eq!(lines[2]["version"], 0);
    assert_eq!(lines[2]["record"]["name"], "snap");
    assert_eq!(
        lines[0]["record"]["last_contained_log_timestamp"],
        BASE_TIMESTAMP
    );

    // A metadata log outside a `__cluster_metadata` directory needs --cluster-metadata.
    let elsewhere = dir.path().join("00000000000000000000.log");
    let records = [framed(
        MetadataRecord::Topic(TopicRecord {
            name: "t".into(),
            topic_id: Uuid::from_u128(5),
            ..Default::default()
        }),
        0,
    )];
    fs::write(
        &elsewhere,
        RecordBatchBuilder::new().build(&records).unwrap(),
    )
    .unwrap();
    let plain = dump(&[path_str(&elsewhere)]);
    assert!(plain.ok().contains("baseOffset: 0"));
    let run = dump(&[path_str(&elsewhere), "--cluster-metadata"]);
    run.ok();
    let lines = run.json_lines();
    assert_eq!(lines[0]["type"], "TOPIC_RECORD");
    assert_eq!(
        lines[0]["record"]["topic_id"],
        Uuid::from_u128(5).to_string()
    );
}

#[test]
fn consumer_offsets_records_decode() {
    let dir = tempfile::tempdir().unwrap();
    let partition = dir.path().join("__consumer_offsets-7");
    fs::create_dir_all(&partition).unwrap();
    let key = |k: GroupCoordinatorRecordKey| {
        let mut buf = BytesMut::new();
        k.encode(&mut buf).unwrap();
        buf.freeze()
    };
    let value = |v: GroupCoordinatorRecordValue, version: i16| {
        let mut buf = BytesMut::new();
        v.encode(&mut buf, version).unwrap();
        buf.freeze()
    };
    let records = [
        NewRecord::new(
            BASE_TIMESTAMP,
            Some(key(GroupCoordinatorRecordKey::OffsetCommit(
                OffsetCommitKey {
                    group: "g".into(),
                    topic: "events".into(),
                    partition: 2,
                },
            ))),
            Some(value(
                GroupCoordinatorRecordValue::OffsetCommit(OffsetCommitValue {
                    offset: 42,
                    commit_timestamp: BASE_TIMESTAMP,
                    ..Default::default()
                }),
                3,
            )),
        ),
        NewRecord::new(
            BASE_TIMESTAMP,
            Some(key(GroupCoordinatorRecordKey::GroupMetadata(
                GroupMetadataKey { group: "g".into() },
            ))),
            Some(value(
                GroupCoordinatorRecordValue::GroupMetadata(GroupMetadataValue {
                    protocol_type: "consumer".into(),
                    generation: 4,
                    ..Default::default()
                }),
                3,
            )),
        ),
        // A tombstone.
        NewRecord::new(
            BASE_TIMESTAMP,
            Some(key(GroupCoordinatorRecordKey::GroupMetadata(
                GroupMetadataKey {
                    group: "gone".into(),
                },
            ))),
            None,
        ),
    ];
    let segment = partition.join("00000000000000000000.log");
    fs::write(&segment, RecordBatchBuilder::new().build(&records).unwrap()).unwrap();
    let run = dump(&[path_str(&segment)]);
    run.ok();
    let lines = run.json_lines();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["type"], "OffsetCommit");
    assert_eq!(lines[0]["key"]["topic"], "events");
    assert_eq!(lines[0]["value"]["offset"], 42);
    assert_eq!(lines[0]["value_version"], 3);
    assert_eq!(lines[1]["value"]["generation"], 4);
    assert_eq!(lines[2]["key"]["group"], "gone");
    assert_eq!(lines[2]["value"], Value::Null);
}

/// CRC-32 (IEEE), for hand-made legacy messages.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A magic 1 message as Kafka 0.10 wrote it.
fn legacy_message(offset: i64, timestamp: i64, key: &[u8], value: &[u8]) -> Bytes {
    let mut body = BytesMut::new();
    body.put_i8(1); // magic
    body.put_i8(0); // attributes
    body.put_i64(timestamp);
    body.put_i32(key.len() as i32);
    body.put_slice(key);
    body.put_i32(value.len() as i32);
    body.put_slice(value);
    let mut out = BytesMut::new();
    out.put_i64(offset);
    out.put_i32(body.len() as i32 + 4);
    out.put_u32(crc32(&body));
    out.put_slice(&body);
    out.freeze()
}

#[test]
fn legacy_message_sets_from_old_kafka_decode() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = BytesMut::new();
    log.extend_from_slice(&legacy_message(0, BASE_TIMESTAMP, b"k0", b"old-0"));
    log.extend_from_slice(&legacy_message(1, BASE_TIMESTAMP + 1, b"k1", b"old-1"));
    let segment = dir.path().join("00000000000000000000.log");
    fs::write(&segment, &log).unwrap();
    let run = dump(&[path_str(&segment), "--json", "--print-data-log"]);
    run.ok();
    let lines = run.json_lines();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["magic"], 1);
    assert_eq!(lines[0]["crc_valid"], true);
    assert_eq!(lines[1]["records"][0]["value"], "old-1");
    assert_eq!(lines[1]["records"][0]["timestamp"], BASE_TIMESTAMP + 1);
}

#[test]
fn bad_paths_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    dump(&[path_str(&dir.path().join("nope.log"))]).fails_with("cannot read");
    let other = dir.path().join("leader-epoch-checkpoint");
    fs::write(&other, "0\n1\n0 0\n").unwrap();
    dump(&[path_str(&other)]).fails_with("not a .log, .index, .timeindex or .checkpoint file");
    let empty = tempfile::tempdir().unwrap();
    dump(&[path_str(empty.path())]).fails_with("holds no .log");
    let garbage = dir.path().join("00000000000000000000.log");
    let mut bytes = vec![0u8; 8];
    bytes.extend_from_slice(&100i32.to_be_bytes());
    bytes.extend_from_slice(&[0u8; 4]);
    bytes.push(7); // magic 7
    bytes.extend_from_slice(&[0u8; 99]);
    fs::write(&garbage, &bytes).unwrap();
    dump(&[path_str(&garbage)]).fails_with("corrupt batch at position 0");
}
