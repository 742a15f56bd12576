//! Record batch v2 (magic 2): the parsed view, validation and lazy record iteration.

use bytes::Bytes;

use super::compression::{Compression, DEFAULT_MAX_DECOMPRESSED_SIZE, decompress};
use super::error::RecordsError;
use super::record::{RecordContext, TimestampType};
use super::section::{Records, RecordsSection};
#[cfg(doc)]
use super::{Record, RecordRef};

/// Bytes before the length field's end: base offset (8) and batch length (4).
pub const LOG_OVERHEAD: usize = 12;
/// Size of the fixed record batch v2 header.
pub const RECORD_BATCH_OVERHEAD: usize = 61;
/// The magic byte of record batch v2.
pub const MAGIC_V2: i8 = 2;
/// Producer id of a batch written without idempotence.
pub const NO_PRODUCER_ID: i64 = -1;
/// Producer epoch of a batch written without idempotence.
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// Base sequence of a batch written without idempotence.
pub const NO_SEQUENCE: i32 = -1;
/// Partition leader epoch before the broker sets it.
pub const NO_PARTITION_LEADER_EPOCH: i32 = -1;
/// Timestamp meaning "none" (empty batches, legacy magic 0).
pub const NO_TIMESTAMP: i64 = -1;

// Field positions inside the header.
pub(crate) const BASE_OFFSET_AT: usize = 0;
pub(crate) const LENGTH_AT: usize = 8;
pub(crate) const LEADER_EPOCH_AT: usize = 12;
pub(crate) const MAGIC_AT: usize = 16;
pub(crate) const CRC_AT: usize = 17;
pub(crate) const ATTRIBUTES_AT: usize = 21;
pub(crate) const LAST_OFFSET_DELTA_AT: usize = 23;
pub(crate) const BASE_TIMESTAMP_AT: usize = 27;
pub(crate) const MAX_TIMESTAMP_AT: usize = 35;
pub(crate) const PRODUCER_ID_AT: usize = 43;
pub(crate) const PRODUCER_EPOCH_AT: usize = 51;
pub(crate) const BASE_SEQUENCE_AT: usize = 53;
pub(crate) const RECORD_COUNT_AT: usize = 57;

pub(crate) const CODEC_MASK: i16 = 0x07;
pub(crate) const TIMESTAMP_TYPE_BIT: i16 = 0x08;
pub(crate) const TRANSACTIONAL_BIT: i16 = 0x10;
pub(crate) const CONTROL_BIT: i16 = 0x20;
pub(crate) const DELETE_HORIZON_BIT: i16 = 0x40;

#[inline]
pub(crate) fn be_array<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&buf[at..at + N]);
    out
}

/// The fixed 61-byte header of a v2 batch, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BatchHeader {
    /// Offset of the first record (the base for offset deltas).
    pub base_offset: i64,
    /// Bytes after the length field (the whole batch is `batch_length + 12` bytes).
    pub batch_length: i32,
    /// Epoch of the partition leader that appended the batch (-1 until set).
    pub partition_leader_epoch: i32,
    /// Always 2.
    pub magic: i8,
    /// CRC32C of everything from the attributes to the end of the batch.
    pub crc: u32,
    /// Codec, timestamp type, transactional, control and delete horizon bits.
    pub attributes: i16,
    /// Offset delta of the last record (the batch covers `base_offset..=base_offset + this`).
    pub last_offset_delta: i32,
    /// Timestamp of the first record (or the delete horizon, see [`Self::delete_horizon`]).
    pub base_timestamp: i64,
    /// Largest record timestamp, or the log append time.
    pub max_timestamp: i64,
    /// Idempotent/transactional producer id, -1 if none.
    pub producer_id: i64,
    /// Producer epoch, -1 if none.
    pub producer_epoch: i16,
    /// Sequence number of the first record, -1 if none.
    pub base_sequence: i32,
    /// Number of records in the batch.
    pub record_count: i32,
}

impl BatchHeader {
    /// Decodes the header from the first 61 bytes of `buf` (no checks beyond the length).
    pub fn decode(buf: &[u8]) -> Option<BatchHeader> {
        if buf.len() < RECORD_BATCH_OVERHEAD {
            return None;
        }
        Some(BatchHeader {
            base_offset: i64::from_be_bytes(be_array(buf, BASE_OFFSET_AT)),
            batch_length: i32::from_be_bytes(be_array(buf, LENGTH_AT)),
            partition_leader_epoch: i32::from_be_bytes(be_array(buf, LEADER_EPOCH_AT)),
            magic: buf[MAGIC_AT] as i8,
            crc: u32::from_be_bytes(be_array(buf, CRC_AT)),
            attributes: i16::from_be_bytes(be_array(buf, ATTRIBUTES_AT)),
            last_offset_delta: i32::from_be_bytes(be_array(buf, LAST_OFFSET_DELTA_AT)),
            base_timestamp: i64::from_be_bytes(be_array(buf, BASE_TIMESTAMP_AT)),
            max_timestamp: i64::from_be_bytes(be_array(buf, MAX_TIMESTAMP_AT)),
            producer_id: i64::from_be_bytes(be_array(buf, PRODUCER_ID_AT)),
            producer_epoch: i16::from_be_bytes(be_array(buf, PRODUCER_EPOCH_AT)),
            base_sequence: i32::from_be_bytes(be_array(buf, BASE_SEQUENCE_AT)),
            record_count: i32::from_be_bytes(be_array(buf, RECORD_COUNT_AT)),
        })
    }

    /// The compression codec, `None` if the id in the attributes is unknown (5-7).
    pub fn compression(&self) -> Option<Compression> {
        Compression::from_id((self.attributes & CODEC_MASK) as u8)
    }

    /// Create time or log append time (attribute bit 3).
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Whether the batch belongs to a transaction (attribute bit 4).
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    /// Whether the batch holds control records (attribute bit 5).
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    /// The delete horizon set by the log cleaner (attribute bit 6), stored in the base
    /// timestamp field.
    pub fn delete_horizon(&self) -> Option<i64> {
        (self.attributes & DELETE_HORIZON_BIT != 0).then_some(self.base_timestamp)
    }

    /// Offset of the last record: base offset + last offset delta.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .wrapping_add(i64::from(self.last_offset_delta))
    }
}

/// A parsed, zero-copy view of one v2 record batch.
///
/// Parsing checks the magic, the length and the header; the CRC is checked by
/// [`RecordBatch::verify_crc`] and everything (CRC and every record) by
/// [`RecordBatch::validate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordBatch {
    buf: Bytes,
    header: BatchHeader,
    compression: Compression,
    position: usize,
}

impl RecordBatch {
    /// Parses a buffer holding exactly one v2 batch.
    pub fn parse(buf: Bytes) -> Result<RecordBatch, RecordsError> {
        RecordBatch::parse_at(buf, 0)
    }

    /// Parses one batch that sits at byte `position` of a larger buffer (for error reports).
    pub(crate) fn parse_at(buf: Bytes, position: usize) -> Result<RecordBatch, RecordsError> {
        let truncated = |needed| RecordsError::Truncated {
            position,
            needed,
            available: buf.len(),
        };
        if buf.len() <= MAGIC_AT {
            return Err(truncated(MAGIC_AT + 1));
        }
        let magic = buf[MAGIC_AT] as i8;
        if magic != MAGIC_V2 {
            return Err(RecordsError::BadMagic { position, magic });
        }
        let Some(header) = BatchHeader::decode(&buf) else {
            return Err(truncated(RECORD_BATCH_OVERHEAD));
        };
        if (header.batch_length as i64) < (RECORD_BATCH_OVERHEAD - LOG_OVERHEAD) as i64 {
            return Err(RecordsError::InvalidBatchLength {
                position,
                length: header.batch_length,
            });
        }
        let declared = header.batch_length as usize + LOG_OVERHEAD;
        if declared != buf.len() {
            return Err(RecordsError::BatchLengthMismatch {
                position,
                declared,
                available: buf.len(),
            });
        }
        if header.record_count < 0 {
            return Err(RecordsError::InvalidRecordCount {
                position,
                count: header.record_count,
            });
        }
        let Some(compression) = header.compression() else {
            return Err(RecordsError::UnknownCompression {
                position,
                codec: (header.attributes & CODEC_MASK) as u8,
            });
        };
        Ok(RecordBatch {
            buf,
            header,
            compression,
            position,
        })
    }

    /// The decoded header.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// The whole batch as it was parsed (header and records).
    pub fn as_bytes(&self) -> &Bytes {
        &self.buf
    }

    /// The records section after the 61-byte header, compressed if the batch is.
    pub fn records_bytes(&self) -> Bytes {
        self.buf.slice(RECORD_BATCH_OVERHEAD..)
    }

    /// Size of the whole batch in bytes.
    pub fn size(&self) -> usize {
        self.buf.len()
    }

    /// Byte position of the batch in the buffer it was read from.
    pub fn position(&self) -> usize {
        self.position
    }

    /// Offset of the first record.
    pub fn base_offset(&self) -> i64 {
        self.header.base_offset
    }

    /// Offset of the last record.
    pub fn last_offset(&self) -> i64 {
        self.header.last_offset()
    }

    /// The offset after the batch (where the next batch starts).
    pub fn next_offset(&self) -> i64 {
        self.header.last_offset().wrapping_add(1)
    }

    /// Number of records the header declares.
    pub fn record_count(&self) -> i32 {
        self.header.record_count
    }

    /// The codec of the records section.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Whether the batch holds control records.
    pub fn is_control(&self) -> bool {
        self.header.is_control()
    }

    /// Whether the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.header.is_transactional()
    }

    /// Checks the stored CRC32C against the bytes from the attributes to the end.
    pub fn verify_crc(&self) -> Result<(), RecordsError> {
        let computed = crc32c::crc32c(&self.buf[ATTRIBUTES_AT..]);
        if computed != self.header.crc {
            return Err(RecordsError::CrcMismatch {
                position: self.position,
                stored: self.header.crc,
                computed,
            });
        }
        Ok(())
    }

    /// Checks the CRC, then decodes every record (decompressing with the default limit),
    /// checking the record count, the offset deltas and each record's structure.
    pub fn validate(&self) -> Result<(), RecordsError> {
        self.validate_with_limit(DEFAULT_MAX_DECOMPRESSED_SIZE)
    }

    /// [`RecordBatch::validate`] with an explicit decompressed size limit.
    pub fn validate_with_limit(&self, max_decompressed: usize) -> Result<(), RecordsError> {
        self.verify_crc()?;
        let section = self.section_with_limit(max_decompressed)?;
        for record in section.iter() {
            record?;
        }
        Ok(())
    }

    /// Iterates the records lazily as owned [`Record`]s sharing the batch's buffer. A
    /// compressed batch is decompressed once, up to [`DEFAULT_MAX_DECOMPRESSED_SIZE`] bytes;
    /// a failure there is the first item.
    pub fn records(&self) -> Records {
        self.records_with_limit(DEFAULT_MAX_DECOMPRESSED_SIZE)
    }

    /// [`RecordBatch::records`] with an explicit decompressed size limit.
    pub fn records_with_limit(&self, max_decompressed: usize) -> Records {
        match self.section_with_limit(max_decompressed) {
            Ok(section) => section.into_records(),
            Err(error) => Records::failed(error),
        }
    }

    /// The records section ready to iterate (decompressed, with the default limit, if the
    /// batch is compressed). Its [`RecordsSection::iter`] yields borrowed [`RecordRef`]s,
    /// the fastest way through a batch: no reference counting, no allocation.
    pub fn section(&self) -> Result<RecordsSection, RecordsError> {
        self.section_with_limit(DEFAULT_MAX_DECOMPRESSED_SIZE)
    }

    /// [`RecordBatch::section`] with an explicit decompressed size limit.
    pub fn section_with_limit(
        &self,
        max_decompressed: usize,
    ) -> Result<RecordsSection, RecordsError> {
        let header = &self.header;
        let ctx = RecordContext::of(header);
        Ok(if self.compression == Compression::None {
            RecordsSection {
                data: self.buf.clone(),
                start: RECORD_BATCH_OVERHEAD,
                origin: self.position,
                count: header.record_count,
                ctx,
                batch_position: self.position,
                decompressed: false,
            }
        } else {
            let records = &self.buf[RECORD_BATCH_OVERHEAD..];
            RecordsSection {
                data: decompress(self.compression, records, max_decompressed)?,
                start: 0,
                origin: 0,
                count: header.record_count,
                ctx,
                batch_position: self.position,
                decompressed: true,
            }
        })
    }
}
