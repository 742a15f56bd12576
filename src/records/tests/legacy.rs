//! Legacy message sets (magic 0 and 1).

use bytes::{Bytes, BytesMut};

use super::*;

/// Composed by hand: offset 3, size 20, crc, magic 0, attributes 0, key "k", value "v0val".
/// The CRC was computed independently (zlib's CRC32 over bytes 16..end).
const V0: &str = "0000000000000003 00000014 bad87418 00 00 00000001 6b 00000005 763076616c";
/// Offset 4, size 27, crc, magic 1, attributes 0, timestamp 1_600_000_000_000, null key,
/// value "hello".
const V1: &str =
    "0000000000000004 0000001b 61df48e7 01 00 00000174876e8000 ffffffff 00000005 68656c6c6f";

#[test]
fn golden_v0_and_v1_messages() {
    let v0 = LegacyMessage::parse(Bytes::from(hex(V0))).unwrap();
    v0.verify_crc().unwrap();
    assert_eq!(
        (v0.offset, v0.magic, v0.attributes, v0.crc),
        (3, 0, 0, 0xbad8_7418)
    );
    assert_eq!(
        (v0.timestamp, v0.timestamp_type),
        (NO_TIMESTAMP, TimestampType::NoTimestamp)
    );
    assert_eq!(v0.key.as_deref(), Some(&b"k"[..]));
    assert_eq!(v0.value.as_deref(), Some(&b"v0val"[..]));
    assert!(!v0.is_compressed());
    assert_eq!(v0.messages().unwrap(), vec![v0.clone()]);

    let v1 = LegacyMessage::parse(Bytes::from(hex(V1))).unwrap();
    v1.verify_crc().unwrap();
    assert_eq!((v1.offset, v1.magic, v1.crc), (4, 1, 0x61df_48e7));
    assert_eq!(
        (v1.timestamp, v1.timestamp_type),
        (1_600_000_000_000, TimestampType::CreateTime)
    );
    assert_eq!(v1.key, None);
    assert_eq!(v1.value.as_deref(), Some(&b"hello"[..]));

    // The test encoder agrees with the hand-made bytes.
    assert_eq!(
        legacy_entry(3, 0, 0, 0, Some(b"k"), Some(b"v0val")),
        hex(V0)
    );
    assert_eq!(
        legacy_entry(4, 1, 0, 1_600_000_000_000, None, Some(b"hello")),
        hex(V1)
    );
}

#[test]
fn mixed_buffer_of_legacy_and_v2() {
    let mut buf = hex(V0);
    buf.extend_from_slice(&hex(V1));
    let v2 = RecordBatchBuilder::new()
        .base_offset(5)
        .build([&sample(0)])
        .unwrap();
    buf.extend_from_slice(&v2);
    buf.extend_from_slice(&hex(V1)[..20]);
    let mut batches = RecordBatches::new(Bytes::from(buf));
    let items: Vec<Batch> = batches.by_ref().map(Result::unwrap).collect();
    assert_eq!(
        items.iter().map(Batch::magic).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert_eq!(
        items.iter().map(Batch::last_offset).collect::<Vec<_>>(),
        [3, 4, 5]
    );
    assert_eq!(items[1].position(), 32);
    assert_eq!(items[2].position(), 32 + 39);
    assert!(batches.is_truncated());
}

fn inner_set(magic: i8, offsets: &[i64], timestamps: &[i64]) -> Vec<u8> {
    let mut set = Vec::new();
    for (i, (&offset, &ts)) in offsets.iter().zip(timestamps).enumerate() {
        let value = format!("value-{i}");
        set.extend(legacy_entry(
            offset,
            magic,
            0,
            ts,
            Some(b"k"),
            Some(value.as_bytes()),
        ));
    }
    set
}

fn wrapper(
    magic: i8,
    attributes: i8,
    offset: i64,
    timestamp: i64,
    codec: Compression,
    set: &[u8],
) -> Bytes {
    let mut packed = BytesMut::new();
    compress(codec, set, &mut packed).unwrap();
    Bytes::from(legacy_entry(
        offset,
        magic,
        attributes | codec.id() as i8,
        timestamp,
        None,
        Some(&packed),
    ))
}

#[test]
fn gzip_wrapper_v1_relative_offsets() {
    // Inner offsets 0..2 relative; the wrapper holds the absolute offset of the last one.
    let set = inner_set(1, &[0, 1, 2], &[10, 20, 30]);
    let entry = wrapper(1, 0, 102, 30, Compression::Gzip, &set);
    let mut batches = RecordBatches::new(entry);
    let Some(Ok(Batch::Legacy(message))) = batches.next() else {
        panic!("expected legacy")
    };
    message.verify_crc().unwrap();
    assert_eq!(message.compression(), Compression::Gzip);
    let inner = message.messages().unwrap();
    assert_eq!(
        inner.iter().map(|m| m.offset).collect::<Vec<_>>(),
        [100, 101, 102]
    );
    assert_eq!(
        inner.iter().map(|m| m.timestamp).collect::<Vec<_>>(),
        [10, 20, 30]
    );
    assert_eq!(inner[2].value.as_deref(), Some(&b"value-2"[..]));
    assert!(
        inner
            .iter()
            .all(|m| m.timestamp_type == TimestampType::CreateTime)
    );
}

#[test]
fn log_append_time_wrapper_stamps_inner_messages() {
    let set = inner_set(1, &[0, 1], &[10, 20]);
    let entry = wrapper(1, 0x08, 51, 999, Compression::Gzip, &set);
    let inner = LegacyMessage::parse(entry).unwrap().messages().unwrap();
    assert_eq!(inner.iter().map(|m| m.offset).collect::<Vec<_>>(), [50, 51]);
    assert!(
        inner
            .iter()
            .all(|m| m.timestamp == 999 && m.timestamp_type == TimestampType::LogAppendTime)
    );
}

#[test]
fn v0_wrappers_keep_absolute_offsets() {
    for codec in [Compression::Gzip, Compression::Snappy] {
        let set = inner_set(0, &[40, 41, 42], &[0, 0, 0]);
        let entry = wrapper(0, 0, 42, 0, codec, &set);
        let inner = LegacyMessage::parse(entry).unwrap().messages().unwrap();
        assert_eq!(
            inner.iter().map(|m| m.offset).collect::<Vec<_>>(),
            [40, 41, 42],
            "{codec}"
        );
        assert!(inner.iter().all(|m| m.timestamp == NO_TIMESTAMP));
    }
}

#[test]
fn v0_lz4_with_kafka_08_header_checksum() {
    let set = inner_set(0, &[7, 8], &[0, 0]);
    let mut packed = BytesMut::new();
    compress(Compression::Lz4, &set, &mut packed).unwrap();
    packed[6] ^= 0x5a; // the wrong header checksum old brokers wrote
    assert!(decompress(Compression::Lz4, &packed, usize::MAX).is_err());
    let entry = Bytes::from(legacy_entry(8, 0, 3, 0, None, Some(&packed)));
    let inner = LegacyMessage::parse(entry).unwrap().messages().unwrap();
    assert_eq!(inner.iter().map(|m| m.offset).collect::<Vec<_>>(), [7, 8]);
    // Magic 1 LZ4 is checked strictly.
    let set = inner_set(1, &[0, 1], &[0, 0]);
    assert_eq!(
        LegacyMessage::parse(wrapper(1, 0, 1, 0, Compression::Lz4, &set))
            .unwrap()
            .messages()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn legacy_errors() {
    // Bad CRC.
    let mut bad = hex(V1);
    bad[36] ^= 1; // a byte of the value
    let message = LegacyMessage::parse(Bytes::from(bad)).unwrap();
    assert!(matches!(
        message.verify_crc(),
        Err(RecordsError::CrcMismatch {
            stored: 0x61df_48e7,
            ..
        })
    ));
    // Bad magic.
    let mut bad = hex(V1);
    bad[16] = 7;
    assert!(matches!(
        LegacyMessage::parse(Bytes::from(bad.clone())),
        Err(RecordsError::BadMagic { magic: 7, .. })
    ));
    assert!(matches!(
        RecordBatches::new(Bytes::from(bad)).next(),
        Some(Err(RecordsError::BadMagic { .. }))
    ));
    // Size shorter than the fields.
    let mut bad = hex(V0);
    bad[11] = 10;
    assert!(matches!(
        RecordBatches::new(Bytes::from(bad)).next(),
        Some(Err(RecordsError::InvalidBatchLength { length: 10, .. }))
    ));
    // Key length beyond the message.
    let mut bad = hex(V0);
    bad[21] = 9;
    assert!(matches!(
        LegacyMessage::parse(Bytes::from(bad)),
        Err(RecordsError::MalformedMessage { .. })
    ));
    // zstd does not exist for legacy messages.
    let zstd = legacy_entry(0, 1, 4, 0, None, Some(b"x"));
    assert!(matches!(
        LegacyMessage::parse(Bytes::from(zstd)),
        Err(RecordsError::UnknownCompression { codec: 4, .. })
    ));
    // Inner magic differing from the wrapper's.
    let entry = wrapper(1, 0, 0, 0, Compression::Gzip, &inner_set(0, &[0], &[0]));
    assert!(matches!(
        LegacyMessage::parse(entry).unwrap().messages(),
        Err(RecordsError::MalformedRecord { .. })
    ));
    // Nested compression.
    let nested = wrapper(1, 0, 0, 0, Compression::Gzip, &inner_set(1, &[0], &[0]));
    let outer = wrapper(1, 0, 0, 0, Compression::Gzip, &nested);
    let error = LegacyMessage::parse(outer).unwrap().messages().unwrap_err();
    assert!(
        matches!(
            error,
            RecordsError::MalformedRecord {
                reason: "inner message is itself compressed",
                ..
            }
        ),
        "{error}"
    );
    // Corrupt inner CRC.
    let mut set = inner_set(1, &[0, 1], &[0, 0]);
    let last = set.len() - 1;
    set[last] ^= 1;
    let error = LegacyMessage::parse(wrapper(1, 0, 1, 0, Compression::Gzip, &set))
        .unwrap()
        .messages()
        .unwrap_err();
    assert!(
        matches!(error, RecordsError::MalformedRecord { reason: "inner message CRC mismatch", location } if location.record_index == 1),
        "{error}"
    );
    // Truncated inner set.
    let set = inner_set(1, &[0, 1], &[0, 0]);
    let error = LegacyMessage::parse(wrapper(
        1,
        0,
        1,
        0,
        Compression::Gzip,
        &set[..set.len() - 4],
    ))
    .unwrap()
    .messages()
    .unwrap_err();
    assert!(
        matches!(error, RecordsError::MalformedRecord { .. }),
        "{error}"
    );
    // Compressed wrapper with a null value.
    let null = legacy_entry(0, 1, 1, 0, None, None);
    assert!(
        LegacyMessage::parse(Bytes::from(null))
            .unwrap()
            .messages()
            .is_err()
    );
    // Decompression bomb in a wrapper.
    let zeros = vec![0u8; 1 << 20];
    let bomb = wrapper(1, 0, 0, 0, Compression::Gzip, &zeros);
    assert!(matches!(
        LegacyMessage::parse(bomb)
            .unwrap()
            .messages_with_limit(1000),
        Err(RecordsError::DecompressedTooLarge { .. })
    ));
}
