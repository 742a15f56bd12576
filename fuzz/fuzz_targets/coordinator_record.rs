//! The key and value of a `__consumer_offsets` record, decoded with the generated
//! `GroupCoordinatorRecordKey::decode` and `GroupCoordinatorRecordValue::decode`. Input: a
//! big-endian u16 key length, the key, then the value (empty = tombstone). The value is
//! decoded with the record type of the key, or, when the key does not decode, with the key's
//! first two bytes as record type, so values are fuzzed either way. Must never panic; a
//! decoded key or value must encode again (the same into a `ChunkedBuf`), decode back
//! equal, and re-encode to the same bytes. (The enums have no `encoded_len` to check.)
#![no_main]

use gregor_protocol::bytes::Bytes;
use gregor_protocol::messages::{GroupCoordinatorRecordKey, GroupCoordinatorRecordValue};
use gregor_protocol_fuzz::{round_trip, take_i16};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut data = data;
    let Some(key_len) = take_i16(&mut data) else {
        return;
    };
    let (key, value) = data.split_at((key_len as u16 as usize).min(data.len()));

    let decoded_key = GroupCoordinatorRecordKey::decode(&mut Bytes::copy_from_slice(key));
    let record_type = match &decoded_key {
        Ok(k) => {
            round_trip(
                "GroupCoordinatorRecordKey",
                k,
                |k, out| k.encode(out),
                None,
                GroupCoordinatorRecordKey::decode,
            );
            k.record_type()
        }
        Err(_) => match key {
            [a, b, ..] => i16::from_be_bytes([*a, *b]),
            _ => 0,
        },
    };
    if value.is_empty() {
        return;
    }
    let Ok((decoded, version)) =
        GroupCoordinatorRecordValue::decode(record_type, &mut Bytes::copy_from_slice(value))
    else {
        return;
    };
    assert_eq!(decoded.record_type(), record_type, "value decoded as the wrong record type");
    round_trip(
        &format!("GroupCoordinatorRecordValue type {record_type} v{version}"),
        &(decoded, version),
        |(v, version), out| v.encode(out, *version),
        None,
        |input| GroupCoordinatorRecordValue::decode(record_type, input),
    );
});
