//! The error type of the records module.

use std::fmt;

use super::compression::Compression;

/// Where a record-level problem was found.
///
/// For an uncompressed batch `position` counts bytes from the start of the buffer the batch
/// was parsed from; for a compressed batch (or a legacy compressed wrapper) it counts bytes
/// from the start of the decompressed data, and `decompressed` is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordLocation {
    /// Byte position of the enclosing batch (or legacy wrapper message) in its buffer.
    pub batch_position: usize,
    /// Zero-based index of the record inside its batch.
    pub record_index: i32,
    /// Byte position of the record's first byte (see the type docs for the origin).
    pub position: usize,
    /// Whether `position` counts bytes of the decompressed records rather than the input.
    pub decompressed: bool,
}

impl fmt::Display for RecordLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.decompressed {
            write!(
                f,
                "record {} at byte {} of the decompressed records of the batch at byte {}",
                self.record_index, self.position, self.batch_position
            )
        } else {
            write!(
                f,
                "record {} at byte {} (batch at byte {})",
                self.record_index, self.position, self.batch_position
            )
        }
    }
}

/// Everything that can go wrong reading or writing record batches and legacy message sets.
///
/// Byte positions are counted from the start of the buffer handed to the parser
/// ([`RecordBatches::new`](super::RecordBatches::new), [`RecordBatch::parse`](super::RecordBatch::parse)
/// or [`LegacyMessage::parse`](super::LegacyMessage::parse)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordsError {
    /// The input ended before a complete batch header or entry.
    Truncated {
        /// Byte position of the batch or entry.
        position: usize,
        /// Bytes needed from that position.
        needed: usize,
        /// Bytes available from that position.
        available: usize,
    },
    /// The magic byte is not one this module reads (or not the one an operation requires).
    BadMagic {
        /// Byte position of the batch or entry.
        position: usize,
        /// The magic byte found.
        magic: i8,
    },
    /// The length field of a batch or legacy entry is below the format's minimum.
    InvalidBatchLength {
        /// Byte position of the batch or entry.
        position: usize,
        /// The length field as read.
        length: i32,
    },
    /// The batch length field does not match the size of the buffer holding the batch.
    BatchLengthMismatch {
        /// Byte position of the batch.
        position: usize,
        /// Total size the length field implies (length field + 12 bytes of offset and length).
        declared: usize,
        /// Bytes actually available for the batch.
        available: usize,
    },
    /// The stored checksum does not match the content.
    CrcMismatch {
        /// Byte position of the batch or entry.
        position: usize,
        /// Checksum stored in the header.
        stored: u32,
        /// Checksum computed over the content.
        computed: u32,
    },
    /// The header's record count is negative.
    InvalidRecordCount {
        /// Byte position of the batch.
        position: usize,
        /// The count as read.
        count: i32,
    },
    /// The attributes name a compression codec that does not exist (or not for this magic).
    UnknownCompression {
        /// Byte position of the batch or entry.
        position: usize,
        /// The codec id from the attributes.
        codec: u8,
    },
    /// The records section ended before the number of records the header declares.
    RecordCountMismatch {
        /// Where the missing record should have started.
        location: RecordLocation,
        /// Record count from the batch header.
        declared: i32,
        /// Records actually present.
        found: i32,
    },
    /// Bytes remain in the records section after the declared number of records.
    TrailingRecordBytes {
        /// Where the unexpected bytes start.
        location: RecordLocation,
        /// Record count from the batch header.
        declared: i32,
        /// How many bytes are left over.
        extra: usize,
    },
    /// A record's length runs past the end of the records section.
    TruncatedRecord {
        /// The record.
        location: RecordLocation,
        /// Record length (including its length varint) claimed by the record.
        length: usize,
        /// Bytes left in the records section from the record's start.
        available: usize,
    },
    /// A record's offset delta is negative or beyond the batch's last offset delta.
    OffsetDeltaOutOfRange {
        /// The record.
        location: RecordLocation,
        /// The record's offset delta.
        offset_delta: i32,
        /// The batch's last offset delta.
        last_offset_delta: i32,
    },
    /// A record (or an inner legacy message) is malformed.
    MalformedRecord {
        /// The record.
        location: RecordLocation,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A legacy message (magic 0 or 1) is malformed.
    MalformedMessage {
        /// Byte position of the message entry.
        position: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The compressed data could not be decompressed.
    Decompression {
        /// The codec.
        codec: Compression,
        /// What the decompressor reported.
        reason: String,
    },
    /// Decompressing would produce more than the configured limit.
    DecompressedTooLarge {
        /// The codec.
        codec: Compression,
        /// The limit in bytes.
        limit: usize,
    },
    /// Re-compressing a batch would make it larger than the limit given
    /// ([`RecordBatch::recompress`](super::RecordBatch::recompress)).
    RecompressedTooLarge {
        /// The target codec.
        codec: Compression,
        /// The limit in bytes.
        limit: usize,
    },
    /// Compressing the records failed.
    Compression {
        /// The codec.
        codec: Compression,
        /// What the compressor reported.
        reason: String,
    },
    /// A control record's key or value is malformed.
    InvalidControlRecord {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A record or batch to encode does not fit the format's 32-bit sizes and counts.
    TooLarge {
        /// What overflowed.
        what: &'static str,
    },
    /// An explicit offset delta passed to the encoder is not greater than the previous one.
    OffsetDeltaNotIncreasing {
        /// The offset delta given.
        offset_delta: i32,
        /// The previous record's offset delta.
        previous: i32,
    },
}

impl fmt::Display for RecordsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use RecordsError::*;
        match self {
            Truncated {
                position,
                needed,
                available,
            } => write!(
                f,
                "truncated input at byte {position}: need {needed} bytes, have {available}"
            ),
            BadMagic { position, magic } => {
                write!(f, "unsupported magic {magic} in batch at byte {position}")
            }
            InvalidBatchLength { position, length } => write!(
                f,
                "invalid length {length} (below the format minimum) in batch at byte {position}"
            ),
            BatchLengthMismatch {
                position,
                declared,
                available,
            } => write!(
                f,
                "batch at byte {position} declares {declared} bytes but {available} are available"
            ),
            CrcMismatch {
                position,
                stored,
                computed,
            } => write!(
                f,
                "CRC mismatch in batch at byte {position}: stored {stored:#010x}, computed {computed:#010x}"
            ),
            InvalidRecordCount { position, count } => {
                write!(
                    f,
                    "negative record count {count} in batch at byte {position}"
                )
            }
            UnknownCompression { position, codec } => {
                write!(
                    f,
                    "unknown compression codec {codec} in batch at byte {position}"
                )
            }
            RecordCountMismatch {
                location,
                declared,
                found,
            } => write!(
                f,
                "record count mismatch: header declares {declared} records, data ends after {found} ({location})"
            ),
            TrailingRecordBytes {
                location,
                declared,
                extra,
            } => write!(
                f,
                "record count mismatch: {extra} bytes follow the {declared} declared records ({location})"
            ),
            TruncatedRecord {
                location,
                length,
                available,
            } => write!(
                f,
                "truncated record: {length} bytes claimed, {available} available ({location})"
            ),
            OffsetDeltaOutOfRange {
                location,
                offset_delta,
                last_offset_delta,
            } => write!(
                f,
                "offset delta {offset_delta} outside 0..={last_offset_delta} ({location})"
            ),
            MalformedRecord { location, reason } => {
                write!(f, "malformed record: {reason} ({location})")
            }
            MalformedMessage { position, reason } => {
                write!(f, "malformed legacy message at byte {position}: {reason}")
            }
            Decompression { codec, reason } => write!(f, "{codec} decompression failed: {reason}"),
            DecompressedTooLarge { codec, limit } => write!(
                f,
                "{codec} data decompresses to more than the {limit} byte limit"
            ),
            RecompressedTooLarge { codec, limit } => write!(
                f,
                "the batch re-compressed with {codec} is larger than the {limit} byte limit"
            ),
            Compression { codec, reason } => write!(f, "{codec} compression failed: {reason}"),
            InvalidControlRecord { reason } => write!(f, "invalid control record: {reason}"),
            TooLarge { what } => write!(f, "{what} exceeds the format's 32-bit limit"),
            OffsetDeltaNotIncreasing {
                offset_delta,
                previous,
            } => write!(
                f,
                "offset delta {offset_delta} is not greater than the previous {previous}"
            ),
        }
    }
}

impl std::error::Error for RecordsError {}
