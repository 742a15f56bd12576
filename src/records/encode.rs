//! Writing v2 batches, and the in-place header updates the broker makes.

use bytes::{BufMut, Bytes, BytesMut};

use super::batch::*;
use super::compression::{Compression, compress};
use super::error::RecordsError;
use super::record::{Header, Record, TimestampType};
use crate::varint::{put_varint, put_varlong, varint_len, varlong_len};

/// A record to encode. The offset delta is assigned by the writer.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct NewRecord {
    /// Create time in milliseconds (or any timestamp; -1 for none).
    pub timestamp: i64,
    /// The key, `None` for null.
    pub key: Option<Bytes>,
    /// The value, `None` for null.
    pub value: Option<Bytes>,
    /// Headers in order.
    pub headers: Vec<Header>,
}

impl NewRecord {
    /// A record with a timestamp, key and value and no headers.
    pub fn new(timestamp: i64, key: Option<Bytes>, value: Option<Bytes>) -> NewRecord {
        NewRecord {
            timestamp,
            key,
            value,
            headers: Vec::new(),
        }
    }
}

impl From<&Record> for NewRecord {
    /// Re-encodes a decoded record (sharing its buffers).
    fn from(record: &Record) -> NewRecord {
        NewRecord {
            timestamp: record.timestamp,
            key: record.key.clone(),
            value: record.value.clone(),
            headers: record.headers.clone(),
        }
    }
}

/// Batch-level settings for encoding a v2 batch; start writing with
/// [`RecordBatchBuilder::writer`] or encode a list with [`RecordBatchBuilder::build`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordBatchBuilder {
    base_offset: i64,
    partition_leader_epoch: i32,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    transactional: bool,
    control: bool,
    timestamp_type: TimestampType,
    log_append_time: Option<i64>,
    delete_horizon: Option<i64>,
    compression: Compression,
}

impl Default for RecordBatchBuilder {
    fn default() -> Self {
        RecordBatchBuilder::new()
    }
}

impl RecordBatchBuilder {
    /// Base offset 0, no producer, no leader epoch, create time, uncompressed.
    pub fn new() -> RecordBatchBuilder {
        RecordBatchBuilder {
            base_offset: 0,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            base_sequence: NO_SEQUENCE,
            transactional: false,
            control: false,
            timestamp_type: TimestampType::CreateTime,
            log_append_time: None,
            delete_horizon: None,
            compression: Compression::None,
        }
    }

    /// Sets the base offset.
    pub fn base_offset(mut self, base_offset: i64) -> Self {
        self.base_offset = base_offset;
        self
    }

    /// Sets the partition leader epoch.
    pub fn partition_leader_epoch(mut self, epoch: i32) -> Self {
        self.partition_leader_epoch = epoch;
        self
    }

    /// Sets the producer id and epoch.
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self
    }

    /// Sets the sequence number of the first record.
    pub fn base_sequence(mut self, base_sequence: i32) -> Self {
        self.base_sequence = base_sequence;
        self
    }

    /// Marks the batch transactional.
    pub fn transactional(mut self, transactional: bool) -> Self {
        self.transactional = transactional;
        self
    }

    /// Marks the batch as holding control records.
    pub fn control(mut self, control: bool) -> Self {
        self.control = control;
        self
    }

    /// Sets the timestamp type; with [`TimestampType::LogAppendTime`] and no
    /// [`Self::log_append_time`], the max timestamp is the largest record timestamp.
    /// [`TimestampType::NoTimestamp`] does not exist in v2 and is written as create time.
    pub fn timestamp_type(mut self, timestamp_type: TimestampType) -> Self {
        self.timestamp_type = timestamp_type;
        self
    }

    /// Uses log append time, with `time` as the batch's max timestamp (what readers report
    /// as every record's timestamp).
    pub fn log_append_time(mut self, time: i64) -> Self {
        self.timestamp_type = TimestampType::LogAppendTime;
        self.log_append_time = Some(time);
        self
    }

    /// Sets the delete horizon (attribute bit 6); it becomes the base timestamp.
    pub fn delete_horizon(mut self, horizon: Option<i64>) -> Self {
        self.delete_horizon = horizon;
        self
    }

    /// Sets the codec for the records section.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Starts a batch at the end of `out`: the header is reserved now and completed by
    /// [`RecordBatchWriter::finish`].
    pub fn writer(self, out: &mut BytesMut) -> RecordBatchWriter<'_> {
        RecordBatchWriter::new(self, out)
    }

    /// Encodes `records` (offset deltas 0, 1, 2, ...) as one batch.
    pub fn build<'r>(
        self,
        records: impl IntoIterator<Item = &'r NewRecord>,
    ) -> Result<Bytes, RecordsError> {
        let mut out = BytesMut::new();
        let mut writer = self.writer(&mut out);
        for record in records {
            writer.append(record)?;
        }
        writer.finish()?;
        Ok(out.freeze())
    }

    fn attributes(&self) -> i16 {
        let mut attributes = i16::from(self.compression.id());
        if self.timestamp_type == TimestampType::LogAppendTime {
            attributes |= TIMESTAMP_TYPE_BIT;
        }
        if self.transactional {
            attributes |= TRANSACTIONAL_BIT;
        }
        if self.control {
            attributes |= CONTROL_BIT;
        }
        if self.delete_horizon.is_some() {
            attributes |= DELETE_HORIZON_BIT;
        }
        attributes
    }
}

/// Appends records to a batch being written into a `BytesMut`.
///
/// Uncompressed records go straight into the output; compressed ones are staged and
/// compressed by [`RecordBatchWriter::finish`], which also back-patches the length, the
/// offsets, timestamps and count, and the CRC. Dropping the writer without finishing removes
/// the partial batch from the output.
#[derive(Debug)]
pub struct RecordBatchWriter<'a> {
    out: &'a mut BytesMut,
    start: usize,
    settings: RecordBatchBuilder,
    /// Uncompressed records of a compressed batch.
    staged: Option<Vec<u8>>,
    count: i32,
    last_offset_delta: Option<i32>,
    base_timestamp: Option<i64>,
    max_timestamp: i64,
    finished: bool,
}

impl<'a> RecordBatchWriter<'a> {
    fn new(settings: RecordBatchBuilder, out: &'a mut BytesMut) -> RecordBatchWriter<'a> {
        let start = out.len();
        out.reserve(RECORD_BATCH_OVERHEAD);
        out.put_i64(settings.base_offset);
        out.put_i32(0); // batch length, patched
        out.put_i32(settings.partition_leader_epoch);
        out.put_i8(MAGIC_V2);
        out.put_u32(0); // crc, patched
        out.put_i16(settings.attributes());
        out.put_i32(0); // last offset delta, patched
        out.put_i64(NO_TIMESTAMP); // base timestamp, patched
        out.put_i64(NO_TIMESTAMP); // max timestamp, patched
        out.put_i64(settings.producer_id);
        out.put_i16(settings.producer_epoch);
        out.put_i32(settings.base_sequence);
        out.put_i32(0); // record count, patched
        let staged = (settings.compression != Compression::None).then(Vec::new);
        RecordBatchWriter {
            out,
            start,
            settings,
            staged,
            count: 0,
            last_offset_delta: None,
            base_timestamp: settings.delete_horizon,
            max_timestamp: NO_TIMESTAMP,
            finished: false,
        }
    }

    /// Number of records appended so far.
    pub fn record_count(&self) -> i32 {
        self.count
    }

    /// Size the batch would have uncompressed: the 61-byte header plus the records so far
    /// (what a producer compares with its `batch.size`).
    pub fn uncompressed_size(&self) -> usize {
        RECORD_BATCH_OVERHEAD
            + match &self.staged {
                Some(staged) => staged.len(),
                None => self.out.len() - self.start - RECORD_BATCH_OVERHEAD,
            }
    }

    /// Appends a record with the next offset delta (one after the previous record's);
    /// returns the delta used.
    pub fn append(&mut self, record: &NewRecord) -> Result<i32, RecordsError> {
        let offset_delta = match self.last_offset_delta {
            None => 0,
            Some(last) => last.checked_add(1).ok_or(RecordsError::TooLarge {
                what: "offset delta",
            })?,
        };
        self.append_with_offset_delta(offset_delta, record)?;
        Ok(offset_delta)
    }

    /// Appends a record with an explicit offset delta (greater than the previous one), for
    /// batches with gaps such as compacted ones.
    pub fn append_with_offset_delta(
        &mut self,
        offset_delta: i32,
        record: &NewRecord,
    ) -> Result<(), RecordsError> {
        let previous = self.last_offset_delta.unwrap_or(-1);
        if offset_delta <= previous {
            return Err(RecordsError::OffsetDeltaNotIncreasing {
                offset_delta,
                previous,
            });
        }
        if self.count == i32::MAX {
            return Err(RecordsError::TooLarge {
                what: "record count",
            });
        }
        let base_timestamp = self.base_timestamp.unwrap_or(record.timestamp);
        let timestamp_delta = record.timestamp.wrapping_sub(base_timestamp);
        let body_len = body_len(offset_delta, timestamp_delta, record)?;
        let total = body_len as usize + varint_len(body_len);
        // Grow once, then write into a plain slice: much faster than a `BufMut` call per
        // field on the growable buffer.
        let dst = match &mut self.staged {
            Some(staged) => {
                let at = staged.len();
                staged.resize(at + total, 0);
                &mut staged[at..]
            }
            None => {
                let at = self.out.len();
                self.out.resize(at + total, 0);
                &mut self.out[at..]
            }
        };
        let mut cursor = dst;
        write_record(&mut cursor, body_len, offset_delta, timestamp_delta, record);
        debug_assert!(cursor.is_empty(), "record size computed wrongly");
        self.base_timestamp = Some(base_timestamp);
        self.count += 1;
        self.last_offset_delta = Some(offset_delta);
        if record.timestamp > self.max_timestamp {
            self.max_timestamp = record.timestamp;
        }
        Ok(())
    }

    /// Completes the batch; returns its size in bytes (what was added to the output).
    pub fn finish(mut self) -> Result<usize, RecordsError> {
        let result = self.complete();
        if result.is_ok() {
            self.finished = true;
        }
        result
    }

    fn complete(&mut self) -> Result<usize, RecordsError> {
        if let Some(staged) = &self.staged {
            compress(self.settings.compression, staged, self.out)?;
        }
        let start = self.start;
        let size = self.out.len() - start;
        let batch_length =
            i32::try_from(size - LOG_OVERHEAD).map_err(|_| RecordsError::TooLarge {
                what: "batch length",
            })?;
        let max_timestamp = self.settings.log_append_time.unwrap_or(self.max_timestamp);
        let base_timestamp = self.base_timestamp.unwrap_or(NO_TIMESTAMP);
        let batch = &mut self.out[start..];
        batch[LENGTH_AT..LENGTH_AT + 4].copy_from_slice(&batch_length.to_be_bytes());
        let last_offset_delta = self.last_offset_delta.unwrap_or(0);
        batch[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4]
            .copy_from_slice(&last_offset_delta.to_be_bytes());
        batch[BASE_TIMESTAMP_AT..BASE_TIMESTAMP_AT + 8]
            .copy_from_slice(&base_timestamp.to_be_bytes());
        batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&max_timestamp.to_be_bytes());
        batch[RECORD_COUNT_AT..RECORD_COUNT_AT + 4].copy_from_slice(&self.count.to_be_bytes());
        let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
        batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        Ok(size)
    }
}

impl Drop for RecordBatchWriter<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.out.truncate(self.start);
        }
    }
}

fn too_large(what: &'static str) -> RecordsError {
    RecordsError::TooLarge { what }
}

/// Length of a nullable byte field (varint length + bytes).
fn nullable_len(field: Option<&Bytes>, what: &'static str) -> Result<usize, RecordsError> {
    Ok(match field {
        None => varint_len(-1),
        Some(bytes) => {
            let len = i32::try_from(bytes.len()).map_err(|_| too_large(what))?;
            varint_len(len) + bytes.len()
        }
    })
}

/// Size of a record's body (everything after its length varint).
fn body_len(
    offset_delta: i32,
    timestamp_delta: i64,
    record: &NewRecord,
) -> Result<i32, RecordsError> {
    let header_count = i32::try_from(record.headers.len()).map_err(|_| too_large("headers"))?;
    let mut len = 1
        + varlong_len(timestamp_delta)
        + varint_len(offset_delta)
        + nullable_len(record.key.as_ref(), "key")?
        + nullable_len(record.value.as_ref(), "value")?
        + varint_len(header_count);
    for header in &record.headers {
        len += nullable_len(Some(&header.key), "header key")?;
        len += nullable_len(header.value.as_ref(), "header value")?;
    }
    i32::try_from(len).map_err(|_| too_large("record"))
}

fn put_nullable(out: &mut impl BufMut, field: Option<&Bytes>) {
    match field {
        None => put_varint(out, -1),
        Some(bytes) => {
            put_varint(out, bytes.len() as i32);
            out.put_slice(bytes);
        }
    }
}

/// Writes one record; sizes were checked by [`body_len`].
fn write_record(
    out: &mut impl BufMut,
    body_len: i32,
    offset_delta: i32,
    timestamp_delta: i64,
    record: &NewRecord,
) {
    put_varint(out, body_len);
    out.put_i8(0); // attributes
    put_varlong(out, timestamp_delta);
    put_varint(out, offset_delta);
    put_nullable(out, record.key.as_ref());
    put_nullable(out, record.value.as_ref());
    put_varint(out, record.headers.len() as i32);
    for header in &record.headers {
        put_nullable(out, Some(&header.key));
        put_nullable(out, header.value.as_ref());
    }
}

/// Checks that `batch` starts with a v2 header and returns it.
fn v2_header(batch: &mut [u8]) -> Result<&mut [u8], RecordsError> {
    if batch.len() < RECORD_BATCH_OVERHEAD {
        return Err(RecordsError::Truncated {
            position: 0,
            needed: RECORD_BATCH_OVERHEAD,
            available: batch.len(),
        });
    }
    let magic = batch[MAGIC_AT] as i8;
    if magic != MAGIC_V2 {
        return Err(RecordsError::BadMagic { position: 0, magic });
    }
    Ok(batch)
}

/// Rewrites the base offset of an encoded v2 batch in place (the CRC does not cover it, so
/// the batch stays valid). Record offsets are deltas, so they all move with it.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) -> Result<(), RecordsError> {
    let batch = v2_header(batch)?;
    batch[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&base_offset.to_be_bytes());
    Ok(())
}

/// Sets the partition leader epoch of an encoded v2 batch in place (not covered by the CRC).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) -> Result<(), RecordsError> {
    let batch = v2_header(batch)?;
    batch[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4].copy_from_slice(&epoch.to_be_bytes());
    Ok(())
}

/// Switches an encoded v2 batch to log append time in place: sets the timestamp type bit and
/// the max timestamp to `time`, then recomputes the CRC. `batch` must be exactly one batch.
pub fn set_log_append_time(batch: &mut [u8], time: i64) -> Result<(), RecordsError> {
    let batch = v2_header(batch)?;
    let length = i32::from_be_bytes(be_array(batch, LENGTH_AT));
    let declared = usize::try_from(length).map_or(usize::MAX, |l| l + LOG_OVERHEAD);
    if declared != batch.len() {
        return Err(RecordsError::BatchLengthMismatch {
            position: 0,
            declared,
            available: batch.len(),
        });
    }
    let attributes = i16::from_be_bytes(be_array(batch, ATTRIBUTES_AT)) | TIMESTAMP_TYPE_BIT;
    batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&time.to_be_bytes());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}
