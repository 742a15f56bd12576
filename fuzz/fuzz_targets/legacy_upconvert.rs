//! Produce v0-v2 legacy message sets (magic 0/1) over any bytes, through the streaming reader
//! and up-converter of `records::legacy_read`. Must never panic nor allocate without bound
//! (decompression capped at `LIMIT`). Checks:
//!
//! * whatever `upconvert` accepts is one valid v2 batch (base offset 0, no producer id, offset
//!   deltas 0..n-1) holding, record by record, the keys, values and timestamps of the
//!   messages the non-streaming reader (`LegacyMessage::messages_with_limit`) finds;
//! * every refusal carries one of Kafka's codes for bad records.
#![no_main]

use gregor_protocol::bytes::Bytes;
use gregor_protocol::error_code;
use gregor_protocol::records::legacy_read::{legacy_entries, legacy_timestamp, upconvert};
use gregor_protocol::records::{Compression, RecordBatch};
use libfuzzer_sys::fuzz_target;

/// Decompression cap for the checks (the default, 256 MiB, would make bombs slow).
const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let input = Bytes::copy_from_slice(data);
    let target = match data.first().map(|b| b % 3) {
        Some(1) => Some(Compression::None),
        Some(2) => Some(Compression::Lz4),
        _ => None,
    };
    let (batch, info) = match upconvert(&input, target, LIMIT) {
        Ok(done) => done,
        Err(error) => {
            assert!(
                [
                    error_code::CORRUPT_MESSAGE,
                    error_code::INVALID_RECORD,
                    error_code::MESSAGE_TOO_LARGE,
                    error_code::UNSUPPORTED_COMPRESSION_TYPE,
                ]
                .contains(&error.code()),
                "unexpected code: {error}"
            );
            return;
        }
    };
    assert_eq!(info.size, batch.len());
    let parsed = RecordBatch::parse(batch).expect("the converted batch parses");
    parsed.validate_with_limit(usize::MAX).expect("the converted batch is valid");
    let header = parsed.header();
    assert_eq!((header.base_offset, header.producer_id), (0, -1));
    assert_eq!(header.record_count, info.record_count);
    assert_eq!(header.max_timestamp, info.max_timestamp);
    // The same messages as the reader that inflates a wrapper whole.
    let mut expected = Vec::new();
    for entry in legacy_entries(&input).expect("accepted input splits into entries") {
        let magic = entry.magic;
        for message in entry.messages_with_limit(LIMIT).expect("the whole-set reader agrees") {
            assert_eq!(message.magic, magic);
            expected.push((legacy_timestamp(&message), message.key, message.value));
        }
    }
    let records: Vec<_> = parsed
        .records()
        .map(|r| r.expect("a converted record decodes"))
        .collect();
    assert_eq!(records.len(), expected.len());
    for (i, (record, (timestamp, key, value))) in records.iter().zip(expected).enumerate() {
        assert_eq!(record.offset_delta, i as i32);
        assert_eq!(record.timestamp, timestamp);
        assert_eq!(record.key, key);
        assert_eq!(record.value, value);
    }
});
