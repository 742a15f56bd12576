//! The frames around KRaft metadata records and `__consumer_offsets` records: golden bytes
//! written from the formats' facts, and round trips of every record type.

use bytes::{Bytes, BytesMut};
use gregor_protocol::messages::group_metadata_key::GroupMetadataKey;
use gregor_protocol::messages::offset_commit_key::OffsetCommitKey;
use gregor_protocol::messages::offset_commit_value::OffsetCommitValue;
use gregor_protocol::messages::topic_record::TopicRecord;
use gregor_protocol::messages::{GroupCoordinatorRecordKey, GroupCoordinatorRecordValue};
use gregor_protocol::metadata_frame::VersionedRecord;
use gregor_protocol::{DecodeErrorKind, MetadataRecord, Uuid};

fn h(text: &str) -> Vec<u8> {
    hex::decode(
        text.chars()
            .filter(char::is_ascii_hexdigit)
            .collect::<String>(),
    )
    .unwrap()
}

#[test]
fn topic_record_frame_golden_bytes() {
    let record = MetadataRecord::from(TopicRecord {
        name: "events".into(),
        topic_id: Uuid::from_bytes([7; 16]),
        ..Default::default()
    });
    // frame version 1, record type 2 (TopicRecord), version 0, then the flexible body:
    // compact string "events", the 16-byte id, an empty tag buffer.
    let expected = h("01 02 00 | 07 6576656e7473 | 07070707070707070707070707070707 | 00");
    let mut buf = BytesMut::new();
    record.encode_framed(&mut buf, 0).unwrap();
    assert_eq!(hex::encode(&buf), hex::encode(&expected));
    assert_eq!(record.framed_len(0), expected.len());
    let decoded = MetadataRecord::decode_framed(&mut Bytes::from(expected)).unwrap();
    assert_eq!(decoded, VersionedRecord { version: 0, record });
}

#[test]
fn bad_frames_are_errors() {
    // Frame version 2 does not exist.
    let err = MetadataRecord::decode_framed(&mut Bytes::from(h("02 02 00"))).unwrap_err();
    assert_eq!(err.kind(), &DecodeErrorKind::UnsupportedFrameVersion(2));
    // Record type 999 is not defined.
    let err = MetadataRecord::decode_framed(&mut Bytes::from(h("01 e707 00"))).unwrap_err();
    assert_eq!(err.kind(), &DecodeErrorKind::UnknownRecordType(999));
    // Bytes after the record.
    let mut framed = h("01 02 00 07 6576656e7473 07070707070707070707070707070707 00");
    framed.push(0xff);
    let err = MetadataRecord::decode_framed(&mut Bytes::from(framed)).unwrap_err();
    assert_eq!(err.kind(), &DecodeErrorKind::TrailingBytes(1));
}

#[test]
fn offset_commit_key_and_value_golden_bytes() {
    // Key: int16 record type 1, then group, topic (int16-length strings), partition.
    let key = GroupCoordinatorRecordKey::from_offset_commit("g", "t", 3);
    let expected_key = h("0001 | 0001 67 | 0001 74 | 00000003");
    let mut buf = BytesMut::new();
    key.encode(&mut buf).unwrap();
    assert_eq!(hex::encode(&buf), hex::encode(&expected_key));
    assert_eq!(key.encoded_len(), expected_key.len());
    assert_eq!(
        GroupCoordinatorRecordKey::decode(&mut Bytes::from(expected_key)).unwrap(),
        key
    );

    // Value v3: int16 version, offset, leader epoch, metadata, commit timestamp.
    let value = GroupCoordinatorRecordValue::OffsetCommit(OffsetCommitValue {
        offset: 42,
        leader_epoch: 5,
        metadata: "m".into(),
        commit_timestamp: 1000,
        ..Default::default()
    });
    let expected_value = h("0003 | 000000000000002a | 00000005 | 0001 6d | 00000000000003e8");
    let mut buf = BytesMut::new();
    value.encode(&mut buf, 3).unwrap();
    assert_eq!(hex::encode(&buf), hex::encode(&expected_value));
    assert_eq!(value.encoded_len(3), expected_value.len());
    let (decoded, version) =
        GroupCoordinatorRecordValue::decode(1, &mut Bytes::from(expected_value)).unwrap();
    assert_eq!((decoded, version), (value, 3));
}

#[test]
fn group_metadata_key_uses_record_type_two() {
    let key = GroupCoordinatorRecordKey::GroupMetadata(GroupMetadataKey { group: "g".into() });
    assert_eq!(key.record_type(), 2);
    let mut buf = BytesMut::new();
    key.encode(&mut buf).unwrap();
    assert_eq!(&buf[..], &h("0002 0001 67")[..]);
}

/// Helpers so the tests read naturally.
trait OffsetCommitKeyExt {
    fn from_offset_commit(group: &str, topic: &str, partition: i32) -> Self;
}

impl OffsetCommitKeyExt for GroupCoordinatorRecordKey {
    fn from_offset_commit(group: &str, topic: &str, partition: i32) -> Self {
        GroupCoordinatorRecordKey::OffsetCommit(OffsetCommitKey {
            group: group.into(),
            topic: topic.into(),
            partition,
        })
    }
}
