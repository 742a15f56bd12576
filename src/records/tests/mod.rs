//! Tests of the records module; shared helpers live here.

mod compression;
mod errors;
mod golden;
mod legacy;
mod recompress;
mod roundtrip;
mod stream;

use bytes::{BufMut, Bytes, BytesMut};

use super::*;

/// Decodes a hex literal (whitespace and `_` ignored).
pub(super) fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| b.is_ascii_hexdigit())
        .map(|b| (b as char).to_digit(16).unwrap() as u8)
        .collect();
    assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
    digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
}

/// All records of a batch, panicking on errors.
pub(super) fn all_records(batch: &RecordBatch) -> Vec<Record> {
    batch.records().collect::<Result<Vec<_>, _>>().unwrap()
}

/// A simple record with a key, a value and one header.
pub(super) fn sample(i: usize) -> NewRecord {
    NewRecord {
        timestamp: 1_700_000_000_000 + i as i64,
        key: Some(Bytes::from(format!("key-{i}"))),
        value: Some(Bytes::from(format!("value-{i}-{}", "x".repeat(i % 7)))),
        headers: vec![Header::new(
            Bytes::from_static(b"h"),
            Some(Bytes::from(vec![i as u8])),
        )],
    }
}

/// Builds a batch of `n` sample records.
pub(super) fn sample_batch(n: usize, compression: Compression) -> Bytes {
    let records: Vec<NewRecord> = (0..n).map(sample).collect();
    RecordBatchBuilder::new()
        .base_offset(100)
        .compression(compression)
        .build(&records)
        .unwrap()
}

/// Recomputes the CRC32C of a v2 batch after a test edited it.
pub(super) fn fix_crc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// Writes a legacy (magic 0/1) entry, CRC32 included.
pub(super) fn legacy_entry(
    offset: i64,
    magic: i8,
    attributes: i8,
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Vec<u8> {
    let mut body = BytesMut::new();
    body.put_i8(magic);
    body.put_i8(attributes);
    if magic == 1 {
        body.put_i64(timestamp);
    }
    for field in [key, value] {
        match field {
            None => body.put_i32(-1),
            Some(bytes) => {
                body.put_i32(bytes.len() as i32);
                body.put_slice(bytes);
            }
        }
    }
    let mut out = Vec::new();
    out.put_i64(offset);
    out.put_i32(body.len() as i32 + 4);
    out.put_u32(crc32fast::hash(&body));
    out.put_slice(&body);
    out
}

/// Composes a v2 batch by hand around an arbitrary records section (CRC fixed).
pub(super) fn raw_batch(
    attributes: i16,
    count: i32,
    last_offset_delta: i32,
    section: &[u8],
) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i64(0); // base offset
    out.put_i32((49 + section.len()) as i32);
    out.put_i32(-1); // partition leader epoch
    out.put_i8(2);
    out.put_u32(0); // crc
    out.put_i16(attributes);
    out.put_i32(last_offset_delta);
    out.put_i64(1000); // base timestamp
    out.put_i64(1000); // max timestamp
    out.put_i64(-1);
    out.put_i16(-1);
    out.put_i32(-1);
    out.put_i32(count);
    out.put_slice(section);
    fix_crc(&mut out);
    out.freeze()
}
