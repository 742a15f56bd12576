//! Tests of reading and up-converting produced legacy message sets.

use bytes::{BufMut, Bytes, BytesMut};

use super::*;
use crate::records::tests::{hex, legacy_entry};
use crate::records::{RecordBatch, compress};

const LIMIT: usize = 1 << 20;

/// A message set of plain messages with the given offsets.
fn plain_set(magic: i8, offsets: &[i64]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, &offset) in offsets.iter().enumerate() {
        out.extend(legacy_entry(
            offset,
            magic,
            0,
            1_600_000_000_000 + i as i64,
            Some(format!("k{i}").as_bytes()),
            Some(format!("value-{i}").as_bytes()),
        ));
    }
    out
}

/// A wrapper of `codec` around `inner`, at `offset`.
fn wrapper(magic: i8, codec: Compression, offset: i64, attributes: i8, inner: &[u8]) -> Vec<u8> {
    let mut packed = BytesMut::new();
    compress(codec, inner, &mut packed).unwrap();
    if codec == Compression::Lz4 && magic == 0 {
        break_lz4_checksum(&mut packed);
    }
    legacy_entry(
        offset,
        magic,
        attributes | codec.id() as i8,
        1_600_000_000_999,
        None,
        Some(&packed),
    )
}

/// Kafka before 0.10 hashed the frame descriptor from the frame magic on (bytes 0..6, not
/// 4..6): write the checksum such a producer wrote.
fn break_lz4_checksum(frame: &mut [u8]) {
    let at = lz4_descriptor_checksum_at(frame).unwrap();
    let broken = (xxh32_short(&frame[..at]) >> 8) as u8;
    let right = (xxh32_short(&frame[4..at]) >> 8) as u8;
    assert_ne!(
        broken, right,
        "the quirk must change the byte for the test to mean anything"
    );
    frame[at] = broken;
}

/// The records of an up-converted batch: (offset delta, timestamp, key, value).
type Row = (i32, i64, Option<Bytes>, Option<Bytes>);

fn rows(batch: &Bytes) -> Vec<Row> {
    let batch = RecordBatch::parse(batch.clone()).unwrap();
    batch.validate().unwrap();
    assert_eq!(
        batch.header().producer_id,
        -1,
        "legacy messages are never idempotent"
    );
    assert_eq!(batch.header().base_offset, 0, "the log assigns offsets");
    batch
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r.offset_delta, r.timestamp, r.key, r.value)
        })
        .collect()
}

fn convert(
    set: &[u8],
    target: Option<Compression>,
) -> Result<(Bytes, UpconvertedBatch), LegacyReadError> {
    upconvert(&Bytes::copy_from_slice(set), target, LIMIT)
}

#[test]
fn golden_magic0_message() {
    // offset 0000000000000007 = 7 (i64) | message size 00000010 = 16 (i32: crc 4 + magic 1
    // + attributes 1 + key length 4 + key 1 + value length 4 + value 1) | crc 1fecd70a =
    // CRC32 (IEEE, not CRC32C) of the 12 bytes from the magic on | magic 00 | attributes 00
    // (codec bits 0-2 = 0: none) | key length 00000001 | key "k" 6b | value length 00000001
    // | value "v" 76. Magic 0 has no timestamp field.
    let bytes = hex("0000000000000007 00000010 1fecd70a 00 00 00000001 6b 00000001 76");
    assert_eq!(crc32fast::hash(&bytes[16..]), 0x1fec_d70a);
    assert_eq!(bytes, legacy_entry(7, 0, 0, 0, Some(b"k"), Some(b"v")));
    let entries = legacy_entries(&Bytes::from(bytes.clone())).unwrap();
    assert_eq!(entries.len(), 1);
    verify_entry_crc(&entries[0]).unwrap();
    assert_eq!(entries[0].magic, 0);
    assert_eq!(legacy_timestamp(&entries[0]), NO_TIMESTAMP);
    let (batch, info) = convert(&bytes, None).unwrap();
    assert_eq!(info.record_count, 1);
    assert_eq!(info.max_timestamp, NO_TIMESTAMP);
    assert_eq!(
        rows(&batch),
        vec![(
            0,
            -1,
            Some(Bytes::from_static(b"k")),
            Some(Bytes::from_static(b"v"))
        )]
    );
}

#[test]
fn golden_magic1_message() {
    // offset 0 | size 0x18 = 24 (crc 4 + magic 1 + attributes 1 + timestamp 8 + key length 4
    // + value length 4 + value 2) | crc 0xbc2d090d = CRC32 of the 20 bytes from the magic on
    // | magic 01 | attributes 00 (no codec, bit 3 clear: create time) | timestamp
    // 0x00000174876e8000 = 1_600_000_000_000 ms | key length ffffffff (null key)
    // | value length 00000002 | value "hi" 6869.
    let bytes =
        hex("0000000000000000 00000018 bc2d090d 01 00 00000174876e8000 ffffffff 00000002 6869");
    assert_eq!(crc32fast::hash(&bytes[16..]), 0xbc2d_090d);
    assert_eq!(
        bytes,
        legacy_entry(0, 1, 0, 1_600_000_000_000, None, Some(b"hi"))
    );
    let (batch, info) = convert(&bytes, None).unwrap();
    assert_eq!(info.max_timestamp, 1_600_000_000_000);
    assert_eq!(
        rows(&batch),
        vec![(0, 1_600_000_000_000, None, Some(Bytes::from_static(b"hi")))]
    );
    // A flipped value bit fails the CRC.
    let mut bad = bytes.clone();
    *bad.last_mut().unwrap() ^= 1;
    let error = convert(&bad, None).unwrap_err();
    assert_eq!(error.code(), error_code::CORRUPT_MESSAGE);
    assert!(
        error.message().contains("stored crc = 3157068045"),
        "{error}"
    );
}

#[test]
fn plain_sets_of_each_magic() {
    for magic in [0, 1] {
        // Offsets of a produced set mean nothing: the log assigns them.
        let set = plain_set(magic, &[0, 0, 5]);
        let (batch, info) = convert(&set, None).unwrap();
        assert_eq!(info.record_count, 3);
        let got = rows(&batch);
        assert_eq!(got.iter().map(|r| r.0).collect::<Vec<_>>(), [0, 1, 2]);
        let expected_ts: Vec<i64> = if magic == 0 {
            vec![-1; 3]
        } else {
            (0..3).map(|i| 1_600_000_000_000 + i).collect()
        };
        assert_eq!(got.iter().map(|r| r.1).collect::<Vec<_>>(), expected_ts);
        assert_eq!(got[2].3.as_deref(), Some(&b"value-2"[..]));
        assert_eq!(
            RecordBatch::parse(batch).unwrap().compression(),
            Compression::None
        );
    }
}

#[test]
fn each_codec_and_magic() {
    for magic in [0i8, 1] {
        for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4] {
            // Magic 1 inner offsets are relative (0..n-1) with the wrapper at the last one;
            // magic 0 inner offsets are absolute.
            let inner = if magic == 1 {
                plain_set(1, &[0, 1, 2, 3])
            } else {
                plain_set(0, &[40, 41, 42, 43])
            };
            let outer = if magic == 1 { 3 } else { 43 };
            let set = wrapper(magic, codec, outer, 0, &inner);
            // "producer" keeps the source codec.
            let (batch, info) = convert(&set, None).unwrap();
            assert_eq!(info.record_count, 4, "{magic} {codec}");
            assert_eq!(
                RecordBatch::parse(batch.clone()).unwrap().compression(),
                codec
            );
            let got = rows(&batch);
            assert_eq!(got.iter().map(|r| r.0).collect::<Vec<_>>(), [0, 1, 2, 3]);
            assert_eq!(got[1].2.as_deref(), Some(&b"k1"[..]));
            assert_eq!(got[3].3.as_deref(), Some(&b"value-3"[..]));
            let ts = if magic == 0 { -1 } else { 1_600_000_000_001 };
            assert_eq!(got[1].1, ts, "{magic} {codec}");
            // A topic codec re-compresses.
            let (batch, _) = convert(&set, Some(Compression::Zstd)).unwrap();
            assert_eq!(
                RecordBatch::parse(batch.clone()).unwrap().compression(),
                Compression::Zstd
            );
            assert_eq!(rows(&batch).len(), 4);
        }
    }
}

#[test]
fn raw_snappy_wrapper() {
    // librdkafka writes raw snappy blocks, not the xerial framing.
    let inner = plain_set(1, &[0, 1]);
    let packed = snap::raw::Encoder::new().compress_vec(&inner).unwrap();
    let set = legacy_entry(1, 1, 2, 0, None, Some(&packed));
    let (batch, _) = convert(&set, None).unwrap();
    assert_eq!(rows(&batch).len(), 2);
}

#[test]
fn magic1_log_append_time_wrapper_gives_its_timestamp() {
    let inner = plain_set(1, &[0, 1]);
    let set = wrapper(1, Compression::Gzip, 1, 0x08, &inner);
    let entries = legacy_entries(&Bytes::from(set)).unwrap();
    let messages: Vec<LegacyMessage> = legacy_records(&entries[0], LIMIT)
        .unwrap()
        .map(|m| m.unwrap().into_owned())
        .collect();
    assert!(
        messages.iter().all(|m| m.timestamp == 1_600_000_000_999
            && m.timestamp_type == TimestampType::LogAppendTime)
    );
}

#[test]
fn magic1_wrapper_offsets() {
    let inner = plain_set(1, &[0, 1, 2]);
    // Wrapper at the last inner offset, or 0 (some librdkafka versions): accepted.
    for outer in [2, 0, 1000] {
        convert(&wrapper(1, Compression::Gzip, outer, 0, &inner), None).unwrap();
    }
    // Below the last inner offset and not 0: refused as Kafka refuses it.
    let error = convert(&wrapper(1, Compression::Gzip, 1, 0, &inner), None).unwrap_err();
    assert_eq!(error.code(), error_code::INVALID_RECORD);
    assert!(error.message().contains("wrapper offset '1'"), "{error}");
    // Magic 0 inner offsets are absolute: any wrapper offset goes.
    let inner0 = plain_set(0, &[100, 101, 102]);
    let (batch, _) = convert(&wrapper(0, Compression::Gzip, 1, 0, &inner0), None).unwrap();
    assert_eq!(
        rows(&batch).iter().map(|r| r.0).collect::<Vec<_>>(),
        [0, 1, 2]
    );
}

#[test]
fn corrupt_crcs() {
    // Outer.
    let mut set = plain_set(0, &[0, 1]);
    let last = set.len() - 1;
    set[last] ^= 0x40;
    let error = convert(&set, None).unwrap_err();
    assert_eq!(error.code(), error_code::CORRUPT_MESSAGE);
    // Inner (the wrapper's own CRC is right).
    let mut inner = plain_set(1, &[0, 1]);
    let last = inner.len() - 1;
    inner[last] ^= 0x40;
    let error = convert(&wrapper(1, Compression::Snappy, 1, 0, &inner), None).unwrap_err();
    assert_eq!(error.code(), error_code::CORRUPT_MESSAGE);
    assert!(error.message().contains("stored crc"), "{error}");
}

#[test]
fn truncated_input() {
    let set = plain_set(1, &[0, 1]);
    for cut in [5, 20, set.len() - 1] {
        let error = convert(&set[..cut], None).unwrap_err();
        assert_eq!(error.code(), error_code::CORRUPT_MESSAGE, "cut at {cut}");
    }
    // An inner set cut short inside a message.
    let inner = plain_set(1, &[0, 1]);
    let error = convert(
        &wrapper(1, Compression::Gzip, 1, 0, &inner[..inner.len() - 3]),
        None,
    )
    .unwrap_err();
    assert_eq!(error.code(), error_code::CORRUPT_MESSAGE);
    assert!(
        error.message().contains("Truncated inner message 1"),
        "{error}"
    );
    // Compressed bytes that do not decompress.
    let error = convert(
        &legacy_entry(0, 1, 1, 0, None, Some(b"not gzip at all")),
        None,
    )
    .unwrap_err();
    assert_eq!(error.code(), error_code::CORRUPT_MESSAGE);
    // A size field below the minimum.
    let mut small = plain_set(0, &[0]);
    small[8..12].copy_from_slice(&13i32.to_be_bytes());
    assert_eq!(
        convert(&small, None).unwrap_err().code(),
        error_code::CORRUPT_MESSAGE
    );
}

#[test]
fn oversize_is_bounded() {
    // A wrapper inflating past the limit.
    let inner: Vec<u8> = (0..64)
        .flat_map(|i| legacy_entry(i, 1, 0, 0, None, Some(&[b'x'; 1024])))
        .collect();
    let set = Bytes::from(wrapper(1, Compression::Gzip, 63, 0, &inner));
    let error = upconvert(&set, None, 16 * 1024).unwrap_err();
    assert_eq!(error.code(), error_code::MESSAGE_TOO_LARGE);
    // An inner size claiming 2 GiB is refused before anything is allocated for it.
    let mut forged = BytesMut::new();
    forged.put_i64(0);
    forged.put_i32(i32::MAX);
    forged.put_slice(&[0u8; 16]);
    let set = wrapper(1, Compression::Lz4, 0, 0, &forged);
    let error = convert(&set, None).unwrap_err();
    assert_eq!(error.code(), error_code::MESSAGE_TOO_LARGE);
    assert!(
        error
            .message()
            .contains("Inner message of 2147483647 bytes"),
        "{error}"
    );
}

#[test]
fn nested_compression_is_refused() {
    let innermost = plain_set(1, &[0]);
    let nested = wrapper(1, Compression::Gzip, 0, 0, &innermost);
    let error = convert(&wrapper(1, Compression::Gzip, 0, 0, &nested), None).unwrap_err();
    assert_eq!(error.code(), error_code::INVALID_RECORD);
    assert!(error.message().contains("compression attribute"), "{error}");
}

#[test]
fn set_rules() {
    // Mixed magic.
    let mut set = plain_set(0, &[0]);
    set.extend(plain_set(1, &[1]));
    let error = convert(&set, None).unwrap_err();
    assert_eq!(error.code(), error_code::INVALID_RECORD);
    assert!(error.message().contains("Batch magic 1"), "{error}");
    // A compressed wrapper with another entry.
    let mut set = wrapper(1, Compression::Gzip, 0, 0, &plain_set(1, &[0]));
    set.extend(plain_set(1, &[1]));
    let error = convert(&set, None).unwrap_err();
    assert_eq!(error.code(), error_code::INVALID_RECORD);
    assert!(error.message().contains("more than one batch"), "{error}");
    // Inner magic differing from the wrapper's.
    let error = convert(
        &wrapper(1, Compression::Gzip, 0, 0, &plain_set(0, &[0])),
        None,
    )
    .unwrap_err();
    assert_eq!(error.code(), error_code::INVALID_RECORD);
    // Null and empty wrappers; zstd, which legacy messages never had.
    for bad in [
        legacy_entry(0, 1, 1, 0, None, None),
        wrapper(1, Compression::Gzip, 0, 0, &[]),
        legacy_entry(0, 1, 4, 0, None, Some(b"x")),
    ] {
        assert_eq!(
            convert(&bad, None).unwrap_err().code(),
            error_code::INVALID_RECORD
        );
    }
    // An unknown codec id.
    assert_eq!(
        convert(&legacy_entry(0, 1, 6, 0, None, Some(b"x")), None)
            .unwrap_err()
            .code(),
        error_code::UNSUPPORTED_COMPRESSION_TYPE
    );
    // Nothing at all.
    assert_eq!(
        convert(&[], None).unwrap_err().code(),
        error_code::INVALID_RECORD
    );
}

/// What the fuzz target `legacy_upconvert` checks, on every single-byte corruption of valid
/// sets of each magic and codec: no panic, Kafka's codes only, and whatever is accepted holds
/// exactly the messages the whole-set reader (`LegacyMessage::messages_with_limit`) finds.
#[test]
fn corrupted_sets_are_refused_or_read_as_the_whole_set_reader_reads_them() {
    let mut sets = Vec::new();
    for magic in [0i8, 1] {
        sets.push(plain_set(magic, &[0, 1]));
        for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4] {
            sets.push(wrapper(magic, codec, 1, 0, &plain_set(magic, &[0, 1])));
        }
    }
    let codes = [
        error_code::CORRUPT_MESSAGE,
        error_code::INVALID_RECORD,
        error_code::MESSAGE_TOO_LARGE,
        error_code::UNSUPPORTED_COMPRESSION_TYPE,
    ];
    let mut accepted = 0;
    for set in &sets {
        for at in 0..set.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = set.clone();
                bad[at] ^= flip;
                let input = Bytes::from(bad);
                let (batch, _) = match upconvert(&input, None, LIMIT) {
                    Ok(done) => done,
                    Err(error) => {
                        assert!(codes.contains(&error.code()), "{error}");
                        continue;
                    }
                };
                accepted += 1;
                let mut expected = Vec::new();
                for entry in legacy_entries(&input).unwrap() {
                    for m in entry.messages_with_limit(LIMIT).unwrap() {
                        expected.push((legacy_timestamp(&m), m.key, m.value));
                    }
                }
                let got: Vec<_> = rows(&batch).into_iter().map(|r| (r.1, r.2, r.3)).collect();
                assert_eq!(got, expected, "byte {at} ^ {flip:#x}");
            }
        }
    }
    // Offsets and the timestamp of magic 0 messages are not covered by any CRC check that
    // matters here, so some corruptions are legitimately accepted.
    assert!(accepted > 0);
}
