//! The frame around each KRaft metadata record in `__cluster_metadata`: an unsigned varint
//! frame version (1), the record type and the record version (unsigned varints), then the
//! record body at that version.

use bytes::Bytes;

use crate::MetadataRecord;
use crate::codec;
use crate::error::{DecodeError, DecodeErrorKind, EncodeError};
use crate::write_buf::WriteBuf;

/// The frame version Kafka writes and reads.
pub const FRAME_VERSION: u32 = 1;

/// A metadata record with the version it was (or will be) written at.
#[derive(Clone, Debug, PartialEq)]
pub struct VersionedRecord {
    /// The record version.
    pub version: i16,
    /// The record.
    pub record: MetadataRecord,
}

impl MetadataRecord {
    /// Decodes one framed record that fills `buf` (a record value of the metadata log).
    pub fn decode_framed(buf: &mut Bytes) -> Result<VersionedRecord, DecodeError> {
        let start = buf.len();
        let frame = codec::read_unsigned_varint(buf).map_err(|e| e.at("frame_version"))?;
        if frame != FRAME_VERSION {
            return Err(DecodeError::new(
                DecodeErrorKind::UnsupportedFrameVersion(frame),
                buf.len(),
            )
            .finish(start));
        }
        let record_type = read_small(buf, "record_type").map_err(|e| e.finish(start))?;
        let version = read_small(buf, "record_version").map_err(|e| e.finish(start))?;
        let record = MetadataRecord::decode_body(record_type, version, buf)?;
        if !buf.is_empty() {
            return Err(
                DecodeError::new(DecodeErrorKind::TrailingBytes(buf.len()), buf.len())
                    .finish(start),
            );
        }
        Ok(VersionedRecord { version, record })
    }

    /// Appends the framed record at `version`.
    pub fn encode_framed(&self, buf: &mut impl WriteBuf, version: i16) -> Result<(), EncodeError> {
        codec::write_unsigned_varint(buf, FRAME_VERSION);
        codec::write_unsigned_varint(buf, self.record_type() as u32);
        codec::write_unsigned_varint(buf, version as u32);
        self.encode_body(buf, version)
    }

    /// The size of the framed record at `version`.
    pub fn framed_len(&self, version: i16) -> usize {
        codec::unsigned_varint_len(FRAME_VERSION)
            + codec::unsigned_varint_len(self.record_type() as u32)
            + codec::unsigned_varint_len(version as u32)
            + self.body_len(version)
    }
}

/// Reads an unsigned varint that must fit an int16 (record types and versions).
fn read_small(buf: &mut Bytes, what: &'static str) -> Result<i16, DecodeError> {
    let value = codec::read_unsigned_varint(buf).map_err(|e| e.at(what))?;
    i16::try_from(value)
        .map_err(|_| DecodeError::new(DecodeErrorKind::InvalidVarint, buf.len()).at(what))
}
