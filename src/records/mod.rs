//! Kafka's record formats: record batch v2 (magic 2), as written on the wire and on disk, and
//! the legacy message sets (magic 0 and 1) of old logs.
//!
//! Reading is zero copy: a [`RecordBatch`] is a view over a [`bytes::Bytes`] and the records
//! it yields slice that buffer (or, for a compressed batch, the buffer it was decompressed
//! into once). Nothing is allocated from a length read off the wire without checking it
//! against the data actually present, and decompression is capped
//! ([`DEFAULT_MAX_DECOMPRESSED_SIZE`]), so malformed or hostile input gives a
//! [`RecordsError`], never a panic or an unbounded allocation.
//!
//! ```text
//! batch:  baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 | magic i8 (2)
//!         | crc u32 (CRC32C of attributes..end) | attributes i16 | lastOffsetDelta i32
//!         | baseTimestamp i64 | maxTimestamp i64 | producerId i64 | producerEpoch i16
//!         | baseSequence i32 | recordCount i32 | records (one compressed block if a codec is set)
//! record: length varint | attributes i8 | timestampDelta varlong | offsetDelta varint
//!         | keyLength varint (-1 = null) | key | valueLength varint | value
//!         | headerCount varint | headers (keyLength varint | key | valueLength varint | value)
//! ```
//!
//! * Reading a fetch response or a log segment: [`RecordBatches`] yields each [`Batch`]:
//!   [`RecordBatch`] (magic 2) or [`LegacyMessage`] (magic 0/1), and stops quietly at a
//!   trailing partial batch ([`RecordBatches::is_truncated`]).
//! * Reading records: [`RecordBatch::records`] yields owned [`Record`]s lazily (their
//!   `Bytes` share the buffer); [`RecordBatch::section`] then [`RecordsSection::iter`] yields
//!   borrowed [`RecordRef`]s, faster still (no reference counting, no allocation);
//!   [`RecordBatch::validate`] checks the CRC and every record.
//! * Checking records without holding a decompressed batch:
//!   [`RecordBatch::skip_key_value_records`] reads them off the decompressor one by one
//!   (Kafka's `skipKeyValueIterator`), keeping only their fixed fields and sizes.
//! * Writing: [`RecordBatchBuilder`] sets batch fields, [`RecordBatchWriter`] appends
//!   [`NewRecord`]s into a `BytesMut` and back-patches the header.
//! * Re-compressing a batch with another codec, streamed: [`RecordBatch::recompress`].
//! * In place on encoded batches: [`set_base_offset`], [`set_partition_leader_epoch`],
//!   [`set_log_append_time`].

mod batch;
mod compression;
mod control;
mod encode;
mod error;
mod legacy;
pub mod legacy_read;
pub mod legacy_write;
mod recompress;
mod record;
mod section;
mod set;
mod stream;

#[cfg(test)]
mod tests;

pub use batch::{
    BatchHeader, LOG_OVERHEAD, MAGIC_V2, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID, NO_SEQUENCE, NO_TIMESTAMP, RECORD_BATCH_OVERHEAD, RecordBatch,
};
pub use compression::{Compression, DEFAULT_MAX_DECOMPRESSED_SIZE, compress, decompress};
pub use control::{ControlRecordKey, ControlRecordType, EndTxnMarker};
pub use encode::{
    NewRecord, RecordBatchBuilder, RecordBatchWriter, set_base_offset, set_log_append_time,
    set_partition_leader_epoch,
};
pub use error::{RecordLocation, RecordsError};
pub use legacy::{LEGACY_MESSAGE_OVERHEAD_V0, LEGACY_MESSAGE_OVERHEAD_V1, LegacyMessage};
pub use record::{Header, Record, TimestampType};
pub use section::{HeaderRefs, RecordRef, RecordRefs, Records, RecordsSection};
pub use set::{Batch, RecordBatches};
pub use stream::{RecordSummary, SkipKeyValueRecords};
