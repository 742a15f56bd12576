//! The primitive encodings of the Kafka protocol, as the generated code calls them.
//!
//! Readers take `&mut Bytes` and advance it; they check every length against the bytes
//! remaining before allocating or slicing, so malformed input is an error, never a panic or
//! a large allocation. An array count reserves room only for the elements the remaining
//! bytes can hold at their smallest size, and for at most [`MAX_UP_FRONT_RESERVATION`]
//! bytes of them ([`bounded_vec`]). `bytes`, `records` and string values share the input
//! buffer.
//! Writers append to any [`WriteBuf`]; `*_len` functions give the exact encoded sizes.
//!
//! "Compact" encodings (flexible versions) use unsigned varints holding length + 1, with 0
//! for null; the classic ones use int16 (strings) or int32 (bytes, arrays) with -1 for null.

use bytes::{Buf, Bytes};
use bytestring::ByteString;
use uuid::Uuid;

use crate::error::{DecodeError, DecodeErrorKind, EncodeError};
use crate::varint;
use crate::write_buf::WriteBuf;

/// A tagged field that no definition describes, kept as raw bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RawTaggedField {
    /// The tag number.
    pub tag: u32,
    /// The field's encoded value.
    pub data: Bytes,
}

fn truncated(buf: &Bytes, needed: usize) -> DecodeError {
    DecodeError::new(
        DecodeErrorKind::Truncated {
            needed: needed - buf.len(),
        },
        buf.len(),
    )
}

#[inline]
fn ensure(buf: &Bytes, needed: usize) -> Result<(), DecodeError> {
    if buf.len() < needed {
        Err(truncated(buf, needed))
    } else {
        Ok(())
    }
}

macro_rules! fixed_readers {
    ($($(#[$doc:meta])* $name:ident -> $ty:ty = $get:ident, $size:expr;)*) => {$(
        $(#[$doc])*
        #[inline]
        pub fn $name(buf: &mut Bytes) -> Result<$ty, DecodeError> {
            ensure(buf, $size)?;
            Ok(buf.$get())
        }
    )*};
}

fixed_readers! {
    /// Reads an int8.
    read_i8 -> i8 = get_i8, 1;
    /// Reads an int16.
    read_i16 -> i16 = get_i16, 2;
    /// Reads a uint16.
    read_u16 -> u16 = get_u16, 2;
    /// Reads an int32.
    read_i32 -> i32 = get_i32, 4;
    /// Reads a uint32.
    read_u32 -> u32 = get_u32, 4;
    /// Reads an int64.
    read_i64 -> i64 = get_i64, 8;
    /// Reads a float64.
    read_f64 -> f64 = get_f64, 8;
}

/// Reads a boolean (any non-zero byte is true, as Kafka reads it).
#[inline]
pub fn read_bool(buf: &mut Bytes) -> Result<bool, DecodeError> {
    read_i8(buf).map(|b| b != 0)
}

/// Reads a 16-byte UUID.
#[inline]
pub fn read_uuid(buf: &mut Bytes) -> Result<Uuid, DecodeError> {
    ensure(buf, 16)?;
    let mut bytes = [0u8; 16];
    buf.copy_to_slice(&mut bytes);
    Ok(Uuid::from_bytes(bytes))
}

/// Reads an unsigned varint.
#[inline]
pub fn read_unsigned_varint(buf: &mut Bytes) -> Result<u32, DecodeError> {
    match varint::decode_unsigned_varint(buf) {
        Ok((value, len)) => {
            buf.advance(len);
            Ok(value)
        }
        Err(varint::VarintError::Truncated) => Err(truncated(buf, buf.len() + 1)),
        Err(varint::VarintError::TooLong) => {
            Err(DecodeError::new(DecodeErrorKind::InvalidVarint, buf.len()))
        }
    }
}

/// Reads a length prefix; `None` is null. Compact lengths are varints holding length + 1.
#[inline]
fn read_length(
    buf: &mut Bytes,
    compact: bool,
    classic_i16: bool,
) -> Result<Option<usize>, DecodeError> {
    let length: i64 = if compact {
        i64::from(read_unsigned_varint(buf)?) - 1
    } else if classic_i16 {
        i64::from(read_i16(buf)?)
    } else {
        i64::from(read_i32(buf)?)
    };
    match length {
        -1 => Ok(None),
        len if len < 0 => Err(DecodeError::new(
            DecodeErrorKind::NegativeLength(len),
            buf.len(),
        )),
        len => Ok(Some(len as usize)),
    }
}

/// Splits off `length` bytes after checking that they are there.
#[inline]
fn take(buf: &mut Bytes, length: usize) -> Result<Bytes, DecodeError> {
    if length > buf.len() {
        return Err(DecodeError::new(
            DecodeErrorKind::LengthPastEnd {
                length,
                remaining: buf.len(),
            },
            buf.len(),
        ));
    }
    Ok(buf.split_to(length))
}

fn utf8(buf: &Bytes, bytes: Bytes) -> Result<ByteString, DecodeError> {
    ByteString::try_from(bytes)
        .map_err(|_| DecodeError::new(DecodeErrorKind::InvalidUtf8, buf.len()))
}

fn not_null<T>(buf: &Bytes, value: Option<T>) -> Result<T, DecodeError> {
    value.ok_or_else(|| DecodeError::new(DecodeErrorKind::UnexpectedNull, buf.len()))
}

/// Reads a nullable string (int16 or compact length).
#[inline]
pub fn read_nullable_string(
    buf: &mut Bytes,
    compact: bool,
) -> Result<Option<ByteString>, DecodeError> {
    match read_length(buf, compact, true)? {
        None => Ok(None),
        Some(length) => {
            let bytes = take(buf, length)?;
            utf8(buf, bytes).map(Some)
        }
    }
}

/// Reads a string that may not be null.
#[inline]
pub fn read_string(buf: &mut Bytes, compact: bool) -> Result<ByteString, DecodeError> {
    let value = read_nullable_string(buf, compact)?;
    not_null(buf, value)
}

/// Reads nullable bytes (int32 or compact length); shares the input buffer.
#[inline]
pub fn read_nullable_bytes(buf: &mut Bytes, compact: bool) -> Result<Option<Bytes>, DecodeError> {
    match read_length(buf, compact, false)? {
        None => Ok(None),
        Some(length) => take(buf, length).map(Some),
    }
}

/// Reads bytes that may not be null; shares the input buffer.
#[inline]
pub fn read_bytes(buf: &mut Bytes, compact: bool) -> Result<Bytes, DecodeError> {
    let value = read_nullable_bytes(buf, compact)?;
    not_null(buf, value)
}

/// The most memory reserved up front for the elements of one collection (array, record
/// headers) from a count the input declares. Larger collections grow as their elements are
/// actually read, so a count alone never claims more than this; elements that do arrive
/// are backed by input bytes.
pub const MAX_UP_FRONT_RESERVATION: usize = 256 * 1024;

/// `count`, but at most [`MAX_UP_FRONT_RESERVATION`] bytes of elements of `T`.
#[inline]
pub fn capped_capacity<T>(count: usize) -> usize {
    count.min(MAX_UP_FRONT_RESERVATION / std::mem::size_of::<T>().max(1))
}

/// An empty vector for `count` elements about to be read from the `remaining` bytes of the
/// input, each taking at least `min_element_size` bytes: room for no more elements than
/// those bytes can hold, and for at most [`MAX_UP_FRONT_RESERVATION`] bytes of them.
///
/// A count is only refused when it exceeds the bytes remaining (as Kafka's readers do), so
/// an error still names the field where the input runs out; this keeps a count that
/// passes that check from reserving its elements' in-memory size times the input.
#[inline]
pub fn bounded_vec<T>(count: usize, remaining: usize, min_element_size: usize) -> Vec<T> {
    let fit = remaining / min_element_size.max(1);
    Vec::with_capacity(capped_capacity::<T>(count.min(fit)))
}

/// Reads a nullable array length. A length larger than the bytes remaining is rejected
/// before anything is allocated (every element takes at least one byte); reserve with
/// [`bounded_vec`].
#[inline]
pub fn read_nullable_array_len(
    buf: &mut Bytes,
    compact: bool,
) -> Result<Option<usize>, DecodeError> {
    let length = read_length(buf, compact, false)?;
    if let Some(length) = length {
        if length > buf.len() {
            return Err(DecodeError::new(
                DecodeErrorKind::LengthPastEnd {
                    length,
                    remaining: buf.len(),
                },
                buf.len(),
            ));
        }
    }
    Ok(length)
}

/// Reads an array length that may not be null.
#[inline]
pub fn read_array_len(buf: &mut Bytes, compact: bool) -> Result<usize, DecodeError> {
    let value = read_nullable_array_len(buf, compact)?;
    not_null(buf, value)
}

/// The fewest bytes a string can take (an empty one; a null one takes as many).
#[inline]
pub const fn min_string_len(compact: bool) -> usize {
    null_string_len(compact)
}

/// The fewest bytes `bytes`, `records` or an array can take (empty; null takes as many).
#[inline]
pub const fn min_bytes_len(compact: bool) -> usize {
    null_bytes_len(compact)
}

/// Reads the presence marker of a nullable struct (-1 null, otherwise present).
#[inline]
pub fn read_struct_presence(buf: &mut Bytes) -> Result<bool, DecodeError> {
    read_i8(buf).map(|marker| marker >= 0)
}

/// Reads the value of an unknown tagged field.
#[inline]
pub fn read_raw_tagged_field(
    buf: &mut Bytes,
    tag: u32,
    size: usize,
) -> Result<RawTaggedField, DecodeError> {
    take(buf, size).map(|data| RawTaggedField { tag, data })
}

/// Checks that a known tagged field took exactly the size its header declared.
#[inline]
pub fn check_tagged_size(tag: u32, declared: usize, consumed: usize) -> Result<(), DecodeError> {
    if declared == consumed {
        Ok(())
    } else {
        Err(DecodeError::new(
            DecodeErrorKind::TaggedFieldSize {
                tag,
                declared,
                consumed,
            },
            0,
        ))
    }
}

/// Writes a boolean.
#[inline]
pub fn write_bool(buf: &mut impl WriteBuf, value: bool) {
    buf.put_u8(u8::from(value));
}

macro_rules! fixed_writers {
    ($($(#[$doc:meta])* $name:ident($ty:ty);)*) => {$(
        $(#[$doc])*
        #[inline]
        pub fn $name(buf: &mut impl WriteBuf, value: $ty) {
            buf.put_slice(&value.to_be_bytes());
        }
    )*};
}

fixed_writers! {
    /// Writes an int8.
    write_i8(i8);
    /// Writes an int16.
    write_i16(i16);
    /// Writes a uint16.
    write_u16(u16);
    /// Writes an int32.
    write_i32(i32);
    /// Writes a uint32.
    write_u32(u32);
    /// Writes an int64.
    write_i64(i64);
    /// Writes a float64.
    write_f64(f64);
}

/// Writes a UUID.
#[inline]
pub fn write_uuid(buf: &mut impl WriteBuf, value: &Uuid) {
    buf.put_slice(value.as_bytes());
}

/// Writes an unsigned varint.
#[inline]
pub fn write_unsigned_varint(buf: &mut impl WriteBuf, value: u32) {
    if value < 0x80 {
        buf.put_u8(value as u8);
    } else {
        let mut bytes = [0u8; 5];
        let mut slice = &mut bytes[..];
        varint::put_unsigned_varint(&mut slice, value);
        buf.put_slice(&bytes[..unsigned_varint_len(value)]);
    }
}

fn too_long(length: usize) -> EncodeError {
    EncodeError::TooLong { field: "", length }
}

#[inline]
fn write_length(
    buf: &mut impl WriteBuf,
    length: usize,
    compact: bool,
    max: usize,
) -> Result<(), EncodeError> {
    if compact {
        let value = u32::try_from(length + 1).map_err(|_| too_long(length))?;
        write_unsigned_varint(buf, value);
    } else if length > max {
        return Err(too_long(length));
    } else if max == i16::MAX as usize {
        write_i16(buf, length as i16);
    } else {
        write_i32(buf, length as i32);
    }
    Ok(())
}

/// Writes a non-null string.
#[inline]
pub fn write_string(
    buf: &mut impl WriteBuf,
    value: &str,
    compact: bool,
) -> Result<(), EncodeError> {
    write_length(buf, value.len(), compact, i16::MAX as usize)?;
    buf.put_slice(value.as_bytes());
    Ok(())
}

/// Writes a null string.
#[inline]
pub fn write_null_string(buf: &mut impl WriteBuf, compact: bool) {
    if compact {
        buf.put_u8(0)
    } else {
        write_i16(buf, -1)
    }
}

/// Writes non-null bytes (or records), sharing them where the buffer can.
#[inline]
pub fn write_bytes(
    buf: &mut impl WriteBuf,
    value: &Bytes,
    compact: bool,
) -> Result<(), EncodeError> {
    write_length(buf, value.len(), compact, i32::MAX as usize)?;
    buf.put_shared(value);
    Ok(())
}

/// Writes null bytes, records or array (they share the encoding).
#[inline]
pub fn write_null_bytes(buf: &mut impl WriteBuf, compact: bool) {
    if compact {
        buf.put_u8(0)
    } else {
        write_i32(buf, -1)
    }
}

/// Writes an array length.
#[inline]
pub fn write_array_len(
    buf: &mut impl WriteBuf,
    length: usize,
    compact: bool,
) -> Result<(), EncodeError> {
    write_length(buf, length, compact, i32::MAX as usize)
}

/// Writes the presence marker of a nullable struct.
#[inline]
pub fn write_struct_presence(buf: &mut impl WriteBuf, present: bool) {
    write_i8(buf, if present { 1 } else { -1 });
}

/// Writes the unknown tagged fields whose tags come before `tag`, keeping tag order.
#[inline]
pub fn write_unknown_tags_before<'a>(
    buf: &mut impl WriteBuf,
    unknown: &mut std::iter::Peekable<impl Iterator<Item = &'a RawTaggedField>>,
    tag: u32,
) {
    while let Some(field) = unknown.next_if(|field| field.tag < tag || tag == u32::MAX) {
        write_unsigned_varint(buf, field.tag);
        write_unsigned_varint(buf, field.data.len() as u32);
        buf.put_slice(&field.data);
    }
}

/// Encoded size of an unsigned varint.
#[inline]
pub const fn unsigned_varint_len(value: u32) -> usize {
    varint::unsigned_varint_len(value)
}

#[inline]
fn length_len(length: usize, compact: bool, classic: usize) -> usize {
    if compact {
        unsigned_varint_len((length + 1) as u32)
    } else {
        classic
    }
}

/// Encoded size of a non-null string.
#[inline]
pub fn string_len(value: &str, compact: bool) -> usize {
    length_len(value.len(), compact, 2) + value.len()
}

/// Encoded size of a null string.
#[inline]
pub const fn null_string_len(compact: bool) -> usize {
    if compact { 1 } else { 2 }
}

/// Encoded size of non-null bytes of `length`.
#[inline]
pub fn bytes_len(length: usize, compact: bool) -> usize {
    length_len(length, compact, 4) + length
}

/// Encoded size of null bytes, records or array.
#[inline]
pub const fn null_bytes_len(compact: bool) -> usize {
    if compact { 1 } else { 4 }
}

/// Encoded size of an array length prefix.
#[inline]
pub fn array_len_len(length: usize, compact: bool) -> usize {
    length_len(length, compact, 4)
}

/// Encoded size of unknown tagged fields (tags, sizes and data).
#[inline]
pub fn raw_tagged_fields_len(fields: &[RawTaggedField]) -> usize {
    fields
        .iter()
        .map(|f| {
            unsigned_varint_len(f.tag) + unsigned_varint_len(f.data.len() as u32) + f.data.len()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    use bytes::BytesMut;

    #[test]
    fn strings_both_ways() {
        let mut out = BytesMut::new();
        write_string(&mut out, "héllo", false).unwrap();
        write_string(&mut out, "x", true).unwrap();
        write_null_string(&mut out, false);
        write_null_string(&mut out, true);
        assert_eq!(
            out.len(),
            string_len("héllo", false) + string_len("x", true) + 3
        );
        let mut buf = out.freeze();
        assert_eq!(read_string(&mut buf, false).unwrap(), "héllo");
        assert_eq!(read_string(&mut buf, true).unwrap(), "x");
        assert_eq!(read_nullable_string(&mut buf, false).unwrap(), None);
        assert_eq!(read_nullable_string(&mut buf, true).unwrap(), None);
        assert!(buf.is_empty());
    }

    #[test]
    fn malformed_lengths_are_errors() {
        // Negative length other than -1.
        let err =
            read_bytes(&mut Bytes::from_static(&[0xff, 0xff, 0xff, 0xfe]), false).unwrap_err();
        assert_eq!(err.kind(), &DecodeErrorKind::NegativeLength(-2));
        // Length past the end.
        let err = read_bytes(&mut Bytes::from_static(&[0, 0, 0, 9, 1]), false).unwrap_err();
        assert!(matches!(
            err.kind(),
            DecodeErrorKind::LengthPastEnd {
                length: 9,
                remaining: 1
            }
        ));
        // Null where not allowed.
        let err = read_string(&mut Bytes::from_static(&[0xff, 0xff]), false).unwrap_err();
        assert_eq!(err.kind(), &DecodeErrorKind::UnexpectedNull);
        // Invalid UTF-8.
        let err = read_string(&mut Bytes::from_static(&[0, 1, 0xc3]), false).unwrap_err();
        assert_eq!(err.kind(), &DecodeErrorKind::InvalidUtf8);
        // Huge array count with few bytes: rejected before allocating.
        let err =
            read_array_len(&mut Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff]), false).unwrap_err();
        assert!(matches!(err.kind(), DecodeErrorKind::LengthPastEnd { .. }));
        // Truncated fixed-size value.
        let err = read_i32(&mut Bytes::from_static(&[0, 1])).unwrap_err();
        assert_eq!(err.kind(), &DecodeErrorKind::Truncated { needed: 2 });
    }

    #[test]
    fn reservations_are_bounded() {
        // By the elements the remaining bytes can hold...
        assert_eq!(bounded_vec::<u8>(10, 100, 1).capacity(), 10);
        assert_eq!(bounded_vec::<u32>(100, 100, 4).capacity(), 25);
        assert_eq!(bounded_vec::<u32>(100, 100, 0).capacity(), 100);
        // ... and in memory, however small the elements are on the wire.
        assert_eq!(
            capped_capacity::<[u8; 100]>(usize::MAX),
            MAX_UP_FRONT_RESERVATION / 100
        );
        assert_eq!(capped_capacity::<()>(usize::MAX), MAX_UP_FRONT_RESERVATION);
        let vec = bounded_vec::<[u8; 64]>(1 << 30, 1 << 30, 1);
        assert!(vec.capacity() * 64 <= MAX_UP_FRONT_RESERVATION);
    }

    #[test]
    fn strings_longer_than_int16_are_refused() {
        let long = "x".repeat(i16::MAX as usize + 1);
        assert!(matches!(
            write_string(&mut BytesMut::new(), &long, false),
            Err(EncodeError::TooLong { .. })
        ));
        assert!(write_string(&mut BytesMut::new(), &long, true).is_ok());
    }

    #[test]
    fn unknown_tags_keep_order() {
        let fields = [
            RawTaggedField {
                tag: 1,
                data: Bytes::from_static(b"a"),
            },
            RawTaggedField {
                tag: 5,
                data: Bytes::from_static(b"bc"),
            },
        ];
        let mut out = BytesMut::new();
        let mut iter = fields.iter().peekable();
        write_unknown_tags_before(&mut out, &mut iter, 3);
        assert_eq!(&out[..], &[1, 1, b'a']);
        write_unknown_tags_before(&mut out, &mut iter, u32::MAX);
        assert_eq!(&out[3..], &[5, 2, b'b', b'c']);
        assert_eq!(raw_tagged_fields_len(&fields), out.len());
    }
}
