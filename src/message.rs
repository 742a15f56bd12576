//! The traits every generated type implements, and the version range type.

use std::fmt::Debug;

use bytes::{Bytes, BytesMut};

use crate::ApiKey;
use crate::error::{DecodeError, EncodeError};
use crate::write_buf::WriteBuf;

/// An inclusive range of versions; empty when `min > max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VersionRange {
    /// Lowest version.
    pub min: i16,
    /// Highest version.
    pub max: i16,
}

impl VersionRange {
    /// The empty range.
    pub const NONE: VersionRange = VersionRange { min: 0, max: -1 };

    /// True when `version` is in the range.
    pub const fn contains(self, version: i16) -> bool {
        self.min <= version && version <= self.max
    }

    /// True when no version is in the range.
    pub const fn is_empty(self) -> bool {
        self.min > self.max
    }

    /// The versions in both ranges.
    pub const fn intersect(self, other: VersionRange) -> VersionRange {
        let min = if self.min > other.min {
            self.min
        } else {
            other.min
        };
        let max = if self.max < other.max {
            self.max
        } else {
            other.max
        };
        if min > max {
            VersionRange::NONE
        } else {
            VersionRange { min, max }
        }
    }

    /// Every version in the range, lowest first.
    pub fn iter(self) -> impl Iterator<Item = i16> {
        (self.min..=self.max).take_while(move |_| !self.is_empty())
    }
}

/// Writes a value at a version.
pub trait Encodable {
    /// Appends the encoding at `version` to `buf` (a `BytesMut`, or a
    /// [`crate::write_buf::ChunkedBuf`] that shares large records instead of copying).
    ///
    /// Fails for a version the message does not have, a non-default value in a field the
    /// version lacks (unless the field is ignorable), a null where the version forbids it,
    /// or a length that does not fit its prefix.
    fn encode_to<W: WriteBuf>(&self, buf: &mut W, version: i16) -> Result<(), EncodeError>;

    /// [`Encodable::encode_to`] a `BytesMut`.
    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<(), EncodeError> {
        self.encode_to(buf, version)
    }

    /// The exact number of bytes `encode` writes at `version`.
    fn encoded_len(&self, version: i16) -> usize;

    /// Encodes into a new buffer of exactly the right size.
    fn to_bytes(&self, version: i16) -> Result<Bytes, EncodeError> {
        let mut buf = BytesMut::with_capacity(self.encoded_len(version));
        self.encode(&mut buf, version)?;
        Ok(buf.freeze())
    }
}

/// Reads a value at a version.
pub trait Decodable: Sized {
    /// Decodes from the front of `buf`, advancing it. `bytes`, `records` and string fields
    /// share `buf`'s memory.
    fn decode(buf: &mut Bytes, version: i16) -> Result<Self, DecodeError>;
}

/// A top-level definition: a request, response, header, record or data structure.
pub trait Message:
    Encodable + Decodable + Default + Clone + Debug + PartialEq + Send + Sync + 'static
{
    /// The definition's name.
    const NAME: &'static str;
    /// The versions it has.
    const VALID_VERSIONS: VersionRange;
    /// The versions that use compact encodings and tagged fields.
    const FLEXIBLE_VERSIONS: VersionRange;
    /// True when the highest valid version is still unstable upstream.
    const LATEST_VERSION_UNSTABLE: bool;
}

/// A request body, tied to its API key and response type.
pub trait Request: Message {
    /// The API key it is sent with.
    const API_KEY: ApiKey;
    /// The body of the response.
    type Response: Message;
}

/// The codec of one struct, without version checks; generated code calls it for nested
/// structs. Use [`Encodable`] and [`Decodable`] instead.
#[doc(hidden)]
pub trait StructCodec: Sized {
    /// Reads the struct at `version`.
    fn read(buf: &mut Bytes, version: i16) -> Result<Self, DecodeError>;
    /// Writes the struct at `version`.
    fn write<W: WriteBuf>(&self, buf: &mut W, version: i16) -> Result<(), EncodeError>;
    /// The encoded size at `version`.
    fn size(&self, version: i16) -> usize;
    /// The fewest bytes any value takes at `version`; array readers reserve room for no
    /// more elements than the remaining input can hold at this size.
    fn min_size(version: i16) -> usize;
}

#[cfg(test)]
mod tests {
    use super::VersionRange;

    #[test]
    fn ranges() {
        let r = VersionRange { min: 2, max: 4 };
        assert!(r.contains(2) && r.contains(4) && !r.contains(5));
        assert_eq!(r.iter().collect::<Vec<_>>(), vec![2, 3, 4]);
        assert_eq!(VersionRange::NONE.iter().count(), 0);
        assert!(r.intersect(VersionRange { min: 5, max: 9 }).is_empty());
    }
}
