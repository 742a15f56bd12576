//! Tests of down-conversion: golden bytes of messages as Kafka's `MemoryRecordsBuilder`
//! writes them for magic 0/1 (`LegacyRecord` layout, CRC32 values computed independently),
//! each codec read back with the legacy reader, and the size rules of Kafka's
//! `LazyDownConversionRecords`.

use bytes::{Bytes, BytesMut};

use super::*;
use crate::records::{
    ControlRecordKey, ControlRecordType, EndTxnMarker, Header, LegacyMessage, NewRecord,
    RecordBatchBuilder,
};

const TS: i64 = 1_700_000_000_000; // 0x0000018bcfe56800

/// Decodes a hex literal (whitespace ignored).
fn hex(text: &str) -> Vec<u8> {
    let digits: String = text.split_whitespace().collect();
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}

fn record(ts: i64, key: &str, value: &str) -> NewRecord {
    NewRecord::new(
        ts,
        Some(Bytes::copy_from_slice(key.as_bytes())),
        Some(Bytes::copy_from_slice(value.as_bytes())),
    )
}

fn batch(builder: RecordBatchBuilder, records: &[NewRecord]) -> Bytes {
    builder.build(records).unwrap()
}

/// Three records at offsets `base..base+3`, timestamps TS, TS+5, TS+2.
fn three(base: i64, codec: Compression) -> Bytes {
    let records = [
        record(TS, "k0", "v0"),
        record(TS + 5, "k1", "value-1"),
        NewRecord::new(TS + 2, None, Some(Bytes::from_static(b"v2"))),
    ];
    batch(
        RecordBatchBuilder::new()
            .base_offset(base)
            .compression(codec),
        &records,
    )
}

fn control_batch(offset: i64) -> Bytes {
    let marker = NewRecord::new(
        TS,
        Some(ControlRecordKey::new(ControlRecordType::Commit).encode()),
        Some(
            EndTxnMarker {
                version: 0,
                coordinator_epoch: 0,
            }
            .encode(),
        ),
    );
    batch(
        RecordBatchBuilder::new()
            .base_offset(offset)
            .producer(7, 0)
            .transactional(true)
            .control(true),
        &[marker],
    )
}

fn convert_one(bytes: &Bytes, to_magic: i8, first_offset: i64) -> Result<Bytes, DownConvertError> {
    let mut batches = RecordBatches::new(bytes.clone());
    let batch = batches.next().unwrap().unwrap();
    let mut out = BytesMut::new();
    down_convert_batch(&batch, bytes, to_magic, first_offset, &mut out)?;
    Ok(out.freeze())
}

/// Every message of a legacy buffer (wrappers expanded, CRCs checked) and the top-level
/// entries.
fn read_legacy(buf: &Bytes) -> (Vec<LegacyMessage>, Vec<LegacyMessage>) {
    let mut outer = Vec::new();
    let mut inner = Vec::new();
    for entry in RecordBatches::new(buf.clone()) {
        let Batch::Legacy(message) = entry.unwrap() else {
            panic!("not a legacy message")
        };
        message.verify_crc().unwrap();
        inner.extend(message.messages().unwrap());
        outer.push(message);
    }
    (outer, inner)
}

#[test]
fn magic_1_message_golden_bytes_with_headers_dropped() {
    let mut r = record(TS, "k", "v");
    r.headers = vec![Header::new("h", Some(Bytes::from_static(b"x")))];
    let input = batch(RecordBatchBuilder::new().base_offset(10), &[r]);
    let expected = hex("000000000000000a \
         00000018 \
         39268c33 \
         01 \
         00 \
         0000018bcfe56800 \
         00000001 6b \
         00000001 76");
    // offset 10 | size 24 (22 + key 1 + value 1) | CRC32 of magic..end | magic 1
    // | attributes 0 (no codec, create time) | timestamp | key "k" | value "v"; no headers
    assert_eq!(convert_one(&input, 1, 10).unwrap()[..], expected[..]);
}

#[test]
fn magic_0_message_golden_bytes_without_timestamp() {
    let input = batch(
        RecordBatchBuilder::new().base_offset(10),
        &[record(TS, "k", "v")],
    );
    let expected = hex("000000000000000a \
         00000010 \
         1fecd70a \
         00 \
         00 \
         00000001 6b \
         00000001 76");
    // offset 10 | size 16 (14 + 1 + 1) | CRC32 | magic 0 | attributes 0 | key | value
    assert_eq!(convert_one(&input, 0, 10).unwrap()[..], expected[..]);
}

#[test]
fn magic_1_log_append_time_golden_bytes() {
    let input = batch(
        RecordBatchBuilder::new()
            .base_offset(10)
            .timestamp_type(TimestampType::LogAppendTime)
            .log_append_time(TS + 999),
        &[record(TS, "k", "v")],
    );
    let expected = hex("000000000000000a 00000018 \
         4917f562 \
         01 \
         08 \
         0000018bcfe56be7 \
         00000001 6b 00000001 76");
    // attributes bit 3: log append time; the timestamp is the batch's (TS + 999), not the
    // record's
    assert_eq!(convert_one(&input, 1, 10).unwrap()[..], expected[..]);
}

#[test]
fn only_control_batches_give_the_12_byte_overflow_filler() {
    let input = control_batch(4);
    // offset -1 | length 61 (a batch header's size, past the end): a partial message
    let expected = hex("ffffffffffffffff 0000003d");
    assert_eq!(down_convert(&input, 1, 4).unwrap()[..], expected[..]);
    assert_eq!(down_convert(&Bytes::new(), 1, 0).unwrap().len(), 0);
}

#[test]
fn control_batch_is_dropped_between_data() {
    let mut input = BytesMut::new();
    input.extend_from_slice(&three(0, Compression::None));
    input.extend_from_slice(&control_batch(3));
    input.extend_from_slice(&three(4, Compression::None));
    let input = input.freeze();
    let out = down_convert(&input, 1, 0).unwrap();
    // v2 batches are larger than the six messages here: filler follows them.
    let mut entries = RecordBatches::new(out.clone());
    let offsets: Vec<i64> = entries.by_ref().map(|e| e.unwrap().last_offset()).collect();
    assert_eq!(offsets, [0, 1, 2, 4, 5, 6]);
    assert!(entries.is_truncated());
    assert_eq!(out.len(), input.len().max(out.len()));
}

#[test]
fn uncompressed_records_before_the_fetch_offset_are_left_out() {
    let input = three(0, Compression::None);
    for magic in [0, 1] {
        let out = convert_one(&input, magic, 1).unwrap();
        let (outer, _) = read_legacy(&out);
        let offsets: Vec<i64> = outer.iter().map(|m| m.offset).collect();
        assert_eq!(offsets, [1, 2], "magic {magic}");
        assert!(outer.iter().all(|m| m.magic == magic));
    }
}

#[test]
fn each_codec_becomes_a_wrapper_of_both_magics() {
    for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4] {
        for magic in [0i8, 1] {
            let input = three(100, codec);
            // A fetch inside a compressed batch still gets the whole wrapper.
            let out = convert_one(&input, magic, 101).unwrap();
            let (outer, inner) = read_legacy(&out);
            assert_eq!(outer.len(), 1, "{codec:?} magic {magic}");
            let wrapper = &outer[0];
            assert_eq!(wrapper.magic, magic);
            assert_eq!(wrapper.compression(), codec);
            assert_eq!(wrapper.offset, 102, "the wrapper carries the last offset");
            assert!(wrapper.key.is_none());
            let offsets: Vec<i64> = inner.iter().map(|m| m.offset).collect();
            assert_eq!(offsets, [100, 101, 102]);
            let keys: Vec<Option<&[u8]>> = inner.iter().map(|m| m.key.as_deref()).collect();
            assert_eq!(keys, [Some(&b"k0"[..]), Some(b"k1"), None]);
            assert_eq!(inner[1].value.as_deref(), Some(&b"value-1"[..]));
            if magic == 1 {
                assert_eq!(wrapper.timestamp, TS + 5, "the max timestamp");
                let stamps: Vec<i64> = inner.iter().map(|m| m.timestamp).collect();
                assert_eq!(stamps, [TS, TS + 5, TS + 2]);
                // Inner offsets are relative in magic 1: check the raw value.
                let raw = wrapper.value.as_ref().unwrap();
                let plain = crate::records::decompress(codec, raw, 1 << 20).unwrap();
                assert_eq!(plain[..8], 0i64.to_be_bytes());
            } else {
                assert!(inner.iter().all(|m| m.timestamp == NO_TIMESTAMP));
            }
            if codec == Compression::Lz4 {
                // Magic 0 gets Kafka's old header checksum, magic 1 the standard one.
                let frame = wrapper.value.as_ref().unwrap();
                assert_eq!(frame[..6], hex("04224d186040")[..]);
                assert_eq!(frame[6], if magic == 0 { 0x1a } else { 0x82 });
            }
        }
    }
}

#[test]
fn log_append_time_applies_to_wrapper_and_inner_messages() {
    let records = [record(TS, "a", "1"), record(TS + 1, "b", "2")];
    let input = batch(
        RecordBatchBuilder::new()
            .compression(Compression::Gzip)
            .timestamp_type(TimestampType::LogAppendTime)
            .log_append_time(TS + 50),
        &records,
    );
    let out = convert_one(&input, 1, 0).unwrap();
    let (outer, inner) = read_legacy(&out);
    assert_eq!(outer[0].attributes, 0x08 | 1);
    assert_eq!(outer[0].timestamp, TS + 50);
    assert!(inner.iter().all(|m| m.timestamp == TS + 50));
    let raw = outer[0].value.as_ref().unwrap();
    let plain = crate::records::decompress(Compression::Gzip, raw, 1 << 20).unwrap();
    assert_eq!(
        plain[17], 0x08,
        "inner messages are marked log append time too"
    );
}

#[test]
fn zstd_is_refused_first_and_ends_the_data_later() {
    let zstd = three(3, Compression::Zstd);
    assert_eq!(
        down_convert(&zstd, 1, 3),
        Err(DownConvertError::UnsupportedCompression { position: 0 })
    );
    let mut input = BytesMut::new();
    input.extend_from_slice(&three(0, Compression::None));
    input.extend_from_slice(&zstd);
    let input = input.freeze();
    let out = down_convert(&input, 0, 0).unwrap();
    assert_eq!(out.len(), input.len());
    let mut entries = RecordBatches::new(out);
    let offsets: Vec<i64> = entries.by_ref().map(|e| e.unwrap().last_offset()).collect();
    assert_eq!(offsets, [0, 1, 2]);
    assert!(
        entries.is_truncated(),
        "filler after the converted messages"
    );
}

#[test]
fn output_is_cut_at_the_size_of_the_data_read() {
    // Tiny records grow when converted (a v1 message has 34 bytes of overhead).
    let tiny: Vec<NewRecord> = (0..10).map(|_| record(TS, "k", "v")).collect();
    let first = batch(RecordBatchBuilder::new(), &tiny);
    let one = convert_one(&first, 1, 0).unwrap();
    assert!(one.len() > first.len());
    // Alone: the first converted batch is sent whole.
    assert_eq!(down_convert(&first, 1, 0).unwrap(), one);
    // With a large batch after it, the output is cut at the input's size, mid-message.
    let big = batch(
        RecordBatchBuilder::new().base_offset(10),
        &[record(TS, "k", &"x".repeat(1000))],
    );
    let mut input = BytesMut::new();
    input.extend_from_slice(&first);
    input.extend_from_slice(&big);
    let input = input.freeze();
    let out = down_convert(&input, 1, 0).unwrap();
    assert_eq!(out.len(), input.len());
    let mut entries = RecordBatches::new(out.clone());
    assert_eq!(entries.by_ref().count(), 10);
    assert!(entries.is_truncated());
    assert_eq!(out[..one.len()], one[..]);
}

#[test]
fn filler_pieces_follow_kafkas_overflow_batches() {
    let mut out = BytesMut::from(&b"abc"[..]);
    pad_overflow(&mut out, 3 + 200_000);
    // First piece: 128 KiB, length field remaining + 1.
    assert_eq!(out[3..11], (-1i64).to_be_bytes());
    assert_eq!(out[11..15], 200_001i32.to_be_bytes());
    let second = 3 + OVERFLOW_CHUNK;
    assert_eq!(out[second..second + 8], (-1i64).to_be_bytes());
    let rest = 200_000 - OVERFLOW_CHUNK;
    assert_eq!(
        out[second + 8..second + 12],
        (rest as i32 + 1).to_be_bytes()
    );
    assert_eq!(out.len(), 200_003);
    // Fewer than 12 bytes: the start of a header.
    let mut short = BytesMut::new();
    pad_overflow(&mut short, 5);
    assert_eq!(short[..], [0xff; 5]);
}

#[test]
fn magic_1_entries_convert_to_magic_0_like_batches() {
    for codec in [Compression::None, Compression::Gzip, Compression::Snappy] {
        let input = three(20, codec);
        let v1 = convert_one(&input, 1, 20).unwrap();
        let direct = down_convert(&input, 0, 20).unwrap();
        let via_v1 = down_convert(&v1, 0, 20).unwrap();
        let (_, a) = read_legacy(&direct);
        let (_, b) = read_legacy(&via_v1[..via_v1.len().min(direct.len())].to_vec().into());
        assert_eq!(a, b, "{codec:?}");
        // Already at or below the target: copied as it is.
        assert_eq!(down_convert(&v1, 1, 20).unwrap(), v1);
    }
}

#[test]
fn bad_input_gives_errors() {
    let input = batch(RecordBatchBuilder::new(), &[record(-5, "k", "v")]);
    assert!(matches!(
        convert_one(&input, 1, 0),
        Err(DownConvertError::InvalidTimestamp { timestamp: -5, .. })
    ));
    assert_eq!(
        down_convert(&input, 2, 0),
        Err(DownConvertError::BadTargetMagic(2))
    );
    let mut corrupt = three(0, Compression::Gzip).to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    corrupt[70] ^= 0xff;
    assert!(down_convert(&Bytes::from(corrupt), 1, 0).is_err());
}

#[test]
fn damaged_input_never_panics() {
    let mut input = BytesMut::new();
    input.extend_from_slice(&three(0, Compression::None));
    input.extend_from_slice(&three(3, Compression::Gzip));
    input.extend_from_slice(&control_batch(6));
    input.extend_from_slice(&convert_one(&three(7, Compression::Snappy), 1, 7).unwrap());
    input.extend_from_slice(&three(i64::MAX - 1, Compression::Lz4));
    let input = input.freeze();
    for at in 0..input.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut damaged = input.to_vec();
            damaged[at] ^= flip;
            let damaged = Bytes::from(damaged);
            for magic in [0, 1] {
                // An error or some answer, never a panic; an answer is never shorter than
                // the batches read, unless none was whole (then empty, or the filler).
                if let Ok(out) = down_convert(&damaged, magic, 1) {
                    assert!(
                        out.len() >= damaged.len() || out.len() <= MIN_OVERFLOW_MESSAGE_LENGTH,
                        "{} bytes from {}",
                        out.len(),
                        damaged.len()
                    );
                }
            }
        }
    }
}
