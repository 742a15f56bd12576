//! Legacy message sets (magic 0 and 1) as old producers wrote them, for the Produce v0-v2
//! tests and the up-conversion bench: plain messages, or one compressed wrapper around an
//! inner set (magic 1 inner offsets relative 0..n-1 with the wrapper at the last, magic 0
//! inner offsets absolute from 0), CRC32 over magic..value.

#![allow(dead_code)]

use bytes::{BufMut, BytesMut};
use gregor_protocol::records::{Compression, compress};

/// One message entry: offset, size, CRC32, magic, attributes, timestamp (magic 1), key, value.
pub fn message(
    offset: i64,
    magic: i8,
    attributes: i8,
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Vec<u8> {
    let mut body = Vec::new();
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
    let mut out = Vec::with_capacity(body.len() + 16);
    out.put_i64(offset);
    out.put_i32(body.len() as i32 + 4);
    out.put_u32(crc32fast::hash(&body));
    out.put_slice(&body);
    out
}

/// A record to write: timestamp (ignored by magic 0), key, value.
pub type Row<'a> = (i64, Option<&'a [u8]>, Option<&'a [u8]>);

/// A produced message set of `rows`: plain messages for [`Compression::None`], else one
/// wrapper of `codec` (its timestamp the largest inner one, create time).
pub fn message_set(magic: i8, codec: Compression, rows: &[Row<'_>]) -> Vec<u8> {
    let inner: Vec<u8> = rows
        .iter()
        .enumerate()
        .flat_map(|(i, (ts, key, value))| message(i as i64, magic, 0, *ts, *key, *value))
        .collect();
    if codec == Compression::None {
        return inner;
    }
    let mut packed = BytesMut::new();
    compress(codec, &inner, &mut packed).expect("compress");
    let last = rows.len() as i64 - 1;
    let max_ts = rows.iter().map(|r| r.0).max().unwrap_or(-1);
    message(last, magic, codec.id() as i8, max_ts, None, Some(&packed))
}
