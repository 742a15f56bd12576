//! A batch composed by hand from the format, checked field by field, and control records.

use bytes::Bytes;

use super::*;

/// One record, key "key", value "value", header "hk" = "hv"; base offset 5, leader epoch 7,
/// timestamp 1_700_000_000_000 ms, no producer. The CRC was computed with an independent
/// bit-by-bit CRC32C (polynomial 0x82F63B78) over bytes 21..end.
const GOLDEN: &str = "
    0000000000000005  # baseOffset 5
    00000046          # batchLength 70 = 49 + 21
    00000007          # partitionLeaderEpoch 7
    02                # magic
    15dd06f6          # crc
    0000              # attributes
    00000000          # lastOffsetDelta
    0000018bcfe56800  # baseTimestamp
    0000018bcfe56800  # maxTimestamp
    ffffffffffffffff  # producerId -1
    ffff              # producerEpoch -1
    ffffffff          # baseSequence -1
    00000001          # recordCount
    28                # record length 20 (zig-zag)
    00                # attributes
    00                # timestampDelta 0
    00                # offsetDelta 0
    06 6b6579         # key length 3, 'key'
    0a 76616c7565     # value length 5, 'value'
    02                # header count 1
    04 686b           # header key 'hk'
    04 6876           # header value 'hv'
";

pub(super) fn golden() -> Bytes {
    // Each line: hex bytes, then a `#` comment.
    let text: String = GOLDEN
        .lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .collect();
    Bytes::from(hex(&text))
}

#[test]
fn golden_batch_fields() {
    let input = golden();
    assert_eq!(input.len(), 82);
    assert_eq!(crc32c::crc32c(&input[21..]), 0x15dd_06f6);
    let batch = RecordBatch::parse(input.clone()).unwrap();
    let h = *batch.header();
    assert_eq!(h.base_offset, 5);
    assert_eq!(h.batch_length, 70);
    assert_eq!(h.partition_leader_epoch, 7);
    assert_eq!(h.magic, 2);
    assert_eq!(h.crc, 0x15dd_06f6);
    assert_eq!(h.attributes, 0);
    assert_eq!(h.last_offset_delta, 0);
    assert_eq!(h.base_timestamp, 1_700_000_000_000);
    assert_eq!(h.max_timestamp, 1_700_000_000_000);
    assert_eq!(h.producer_id, -1);
    assert_eq!(h.producer_epoch, -1);
    assert_eq!(h.base_sequence, -1);
    assert_eq!(h.record_count, 1);
    assert_eq!(batch.compression(), Compression::None);
    assert_eq!(h.timestamp_type(), TimestampType::CreateTime);
    assert!(!batch.is_control() && !batch.is_transactional());
    assert_eq!(h.delete_horizon(), None);
    assert_eq!(batch.last_offset(), 5);
    assert_eq!(batch.next_offset(), 6);
    batch.verify_crc().unwrap();
    batch.validate().unwrap();

    let records = all_records(&batch);
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r.offset(), 5);
    assert_eq!(r.timestamp(), 1_700_000_000_000);
    assert_eq!((r.offset_delta, r.timestamp_delta, r.attributes), (0, 0, 0));
    assert_eq!(r.key.as_deref(), Some(&b"key"[..]));
    assert_eq!(r.value.as_deref(), Some(&b"value"[..]));
    assert_eq!(
        r.headers,
        vec![Header::new(&b"hk"[..], Some(Bytes::from_static(b"hv")))]
    );
    assert_eq!(r.headers[0].key_str(), Ok("hk"));

    // Zero copy: the key and value point into the input buffer.
    let range = input.as_ptr() as usize..input.as_ptr() as usize + input.len();
    assert!(range.contains(&(r.key.as_ref().unwrap().as_ptr() as usize)));
    assert!(range.contains(&(r.value.as_ref().unwrap().as_ptr() as usize)));
    assert!(range.contains(&(r.headers[0].value.as_ref().unwrap().as_ptr() as usize)));
}

#[test]
fn builder_reproduces_golden_bytes() {
    let record = NewRecord {
        timestamp: 1_700_000_000_000,
        key: Some(Bytes::from_static(b"key")),
        value: Some(Bytes::from_static(b"value")),
        headers: vec![Header::new(&b"hk"[..], Some(Bytes::from_static(b"hv")))],
    };
    let built = RecordBatchBuilder::new()
        .base_offset(5)
        .partition_leader_epoch(7)
        .build([&record])
        .unwrap();
    assert_eq!(built, golden());
}

#[test]
fn golden_through_record_batches() {
    let mut batches = RecordBatches::new(golden());
    let Some(Ok(Batch::V2(batch))) = batches.next() else {
        panic!("expected a v2 batch")
    };
    assert_eq!(batch.position(), 0);
    assert!(batches.next().is_none());
    assert!(!batches.is_truncated());
}

#[test]
fn control_batch_commit_marker() {
    let marker = NewRecord {
        timestamp: 42,
        key: Some(ControlRecordKey::new(ControlRecordType::Commit).encode()),
        value: Some(
            EndTxnMarker {
                version: 0,
                coordinator_epoch: 9,
            }
            .encode(),
        ),
        headers: Vec::new(),
    };
    let bytes = RecordBatchBuilder::new()
        .base_offset(77)
        .producer(1234, 3)
        .transactional(true)
        .control(true)
        .build([&marker])
        .unwrap();
    let batch = RecordBatch::parse(bytes).unwrap();
    batch.validate().unwrap();
    assert!(batch.is_control() && batch.is_transactional());
    assert_eq!(batch.header().attributes, 0x30);
    assert_eq!(
        (batch.header().producer_id, batch.header().producer_epoch),
        (1234, 3)
    );
    let record = all_records(&batch).remove(0);
    let key = record.control_key().unwrap();
    assert_eq!(
        key,
        ControlRecordKey {
            version: 0,
            record_type: ControlRecordType::Commit
        }
    );
    let value = EndTxnMarker::parse(record.value.as_ref().unwrap()).unwrap();
    assert_eq!(value.coordinator_epoch, 9);
}

#[test]
fn control_record_keys() {
    for (wire, kind) in [
        (0, ControlRecordType::Abort),
        (1, ControlRecordType::Commit),
        (2, ControlRecordType::LeaderChange),
        (3, ControlRecordType::SnapshotHeader),
        (4, ControlRecordType::SnapshotFooter),
        (5, ControlRecordType::KRaftVersion),
        (6, ControlRecordType::KRaftVoters),
        (99, ControlRecordType::Unknown(99)),
    ] {
        let key = ControlRecordKey::parse(&[0, 0, 0, wire as u8]).unwrap();
        assert_eq!(key.record_type, kind);
        assert_eq!(kind.as_i16(), wire);
        assert_eq!(
            ControlRecordKey::new(kind).encode().as_ref(),
            &[0, 0, 0, wire as u8]
        );
    }
    // A newer key version with extra bytes still parses.
    assert_eq!(
        ControlRecordKey::parse(&[0, 1, 0, 0, 0xff])
            .unwrap()
            .record_type,
        ControlRecordType::Abort
    );
    assert!(matches!(
        ControlRecordKey::parse(&[0, 0, 0]),
        Err(RecordsError::InvalidControlRecord { .. })
    ));
    assert!(matches!(
        ControlRecordKey::parse(&[0xff, 0xff, 0, 1]),
        Err(RecordsError::InvalidControlRecord { .. })
    ));
    assert!(EndTxnMarker::parse(&[0, 0, 0, 0, 1]).is_err());
}
