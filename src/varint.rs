//! Variable-length integers as Kafka writes them: unsigned LEB128 varints (compact lengths,
//! tag numbers) and zig-zag varints/varlongs (record fields).
//!
//! Decoders work on a byte slice and return the value with the number of bytes it took, so
//! the caller decides how to advance its own cursor.

use bytes::BufMut;

/// Why a varint could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VarintError {
    /// The input ended in the middle of the varint.
    Truncated,
    /// More bytes than the type allows (5 for 32 bits, 10 for 64 bits).
    TooLong,
}

impl std::fmt::Display for VarintError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VarintError::Truncated => f.write_str("varint truncated"),
            VarintError::TooLong => f.write_str("varint longer than its type allows"),
        }
    }
}

impl std::error::Error for VarintError {}

/// Reads an unsigned 64-bit LEB128 value of at most `max_bytes` bytes.
#[inline]
fn decode_unsigned(input: &[u8], max_bytes: usize) -> Result<(u64, usize), VarintError> {
    // Fast path: one byte (lengths and tags under 128, the common case).
    match input.first() {
        None => return Err(VarintError::Truncated),
        Some(&b) if b < 0x80 => return Ok((u64::from(b), 1)),
        Some(_) => {}
    }
    let mut value = 0u64;
    for (i, &byte) in input.iter().enumerate().take(max_bytes) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    if input.len() < max_bytes {
        Err(VarintError::Truncated)
    } else {
        Err(VarintError::TooLong)
    }
}

/// Decodes an unsigned 32-bit varint; returns the value and its encoded length.
#[inline]
pub fn decode_unsigned_varint(input: &[u8]) -> Result<(u32, usize), VarintError> {
    let (value, len) = decode_unsigned(input, 5)?;
    u32::try_from(value)
        .map(|v| (v, len))
        .map_err(|_| VarintError::TooLong)
}

/// Decodes a zig-zag encoded signed 32-bit varint.
#[inline]
pub fn decode_varint(input: &[u8]) -> Result<(i32, usize), VarintError> {
    let (raw, len) = decode_unsigned_varint(input)?;
    Ok((((raw >> 1) as i32) ^ -((raw & 1) as i32), len))
}

/// Decodes a zig-zag encoded signed 64-bit varlong.
#[inline]
pub fn decode_varlong(input: &[u8]) -> Result<(i64, usize), VarintError> {
    let (raw, len) = decode_unsigned(input, 10)?;
    Ok((((raw >> 1) as i64) ^ -((raw & 1) as i64), len))
}

/// Writes an unsigned 32-bit varint.
#[inline]
pub fn put_unsigned_varint(buf: &mut impl BufMut, value: u32) {
    put_unsigned(buf, u64::from(value));
}

/// Writes a zig-zag encoded signed 32-bit varint.
#[inline]
pub fn put_varint(buf: &mut impl BufMut, value: i32) {
    put_unsigned_varint(buf, zigzag32(value));
}

/// Writes a zig-zag encoded signed 64-bit varlong.
#[inline]
pub fn put_varlong(buf: &mut impl BufMut, value: i64) {
    put_unsigned(buf, zigzag64(value));
}

/// Encoded length of an unsigned 32-bit varint.
#[inline]
pub const fn unsigned_varint_len(value: u32) -> usize {
    unsigned_len(value as u64)
}

/// Encoded length of a zig-zag signed 32-bit varint.
#[inline]
pub const fn varint_len(value: i32) -> usize {
    unsigned_len(zigzag32(value) as u64)
}

/// Encoded length of a zig-zag signed 64-bit varlong.
#[inline]
pub const fn varlong_len(value: i64) -> usize {
    unsigned_len(zigzag64(value))
}

#[inline]
const fn zigzag32(value: i32) -> u32 {
    ((value << 1) ^ (value >> 31)) as u32
}

#[inline]
const fn zigzag64(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

#[inline]
const fn unsigned_len(value: u64) -> usize {
    // Each byte carries 7 bits; zero still takes one byte.
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

#[inline]
fn put_unsigned(buf: &mut impl BufMut, mut value: u64) {
    while value >= 0x80 {
        buf.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_encodings() {
        let cases: &[(i32, &[u8])] = &[
            (0, &[0x00]),
            (-1, &[0x01]),
            (1, &[0x02]),
            (-64, &[0x7f]),
            (64, &[0x80, 0x01]),
            (i32::MAX, &[0xfe, 0xff, 0xff, 0xff, 0x0f]),
            (i32::MIN, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
        ];
        for &(value, bytes) in cases {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(out, bytes, "encoding {value}");
            assert_eq!(decode_varint(bytes), Ok((value, bytes.len())));
            assert_eq!(varint_len(value), bytes.len());
        }
    }

    #[test]
    fn unsigned_boundaries() {
        for value in [0u32, 127, 128, 16383, 16384, u32::MAX] {
            let mut out = Vec::new();
            put_unsigned_varint(&mut out, value);
            assert_eq!(out.len(), unsigned_varint_len(value));
            assert_eq!(decode_unsigned_varint(&out), Ok((value, out.len())));
        }
    }

    #[test]
    fn varlong_extremes() {
        for value in [0i64, -1, 1, i64::MAX, i64::MIN, 1 << 40] {
            let mut out = Vec::new();
            put_varlong(&mut out, value);
            assert_eq!(out.len(), varlong_len(value));
            assert_eq!(decode_varlong(&out), Ok((value, out.len())));
        }
    }

    #[test]
    fn malformed_input() {
        assert_eq!(decode_unsigned_varint(&[]), Err(VarintError::Truncated));
        assert_eq!(
            decode_unsigned_varint(&[0x80, 0x80]),
            Err(VarintError::Truncated)
        );
        assert_eq!(
            decode_unsigned_varint(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]),
            Err(VarintError::TooLong)
        );
        // Five bytes whose value does not fit in 32 bits.
        assert_eq!(
            decode_unsigned_varint(&[0xff, 0xff, 0xff, 0xff, 0x7f]),
            Err(VarintError::TooLong)
        );
        assert_eq!(decode_varlong(&[0xff; 11]), Err(VarintError::TooLong));
    }
}
