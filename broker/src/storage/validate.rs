//! Validation of produced records before anything is written: Kafka's
//! `ProduceRequest.validateRecords`, `UnifiedLog.analyzeAndValidateRecords` and
//! `LogValidator` rules, for one partition of a Produce request.
//!
//! Checks, in Kafka's order, with the error code Kafka answers:
//!
//! | problem                                                        | code                      |
//! |----------------------------------------------------------------|---------------------------|
//! | no batch at all                                                | `INVALID_RECORD` (87)     |
//! | length field below 14, unknown magic, partial trailing batch  | `CORRUPT_MESSAGE` (2)     |
//! | magic 0 or 1 (Produce v3+ needs magic 2; v0-v2 up-convert them: `validate_legacy`) | `INVALID_RECORD` (87) |
//! | a v2 length below the 61-byte header                          | `CORRUPT_MESSAGE` (2)     |
//! | base offset not 0                                              | `INVALID_RECORD` (87)     |
//! | batch larger than `max.message.bytes`                          | `MESSAGE_TOO_LARGE` (10)  |
//! | CRC32C mismatch                                                | `CORRUPT_MESSAGE` (2)     |
//! | unknown compression codec (5-7)                                | `UNSUPPORTED_COMPRESSION_TYPE` (76) |
//! | record count not `lastOffsetDelta + 1`, no records, control batch, producer id without a sequence, transactional without a producer id | `INVALID_RECORD` (87) |
//! | log append time set by the producer                            | `INVALID_TIMESTAMP` (32)  |
//! | compressed data that does not decompress                       | `CORRUPT_MESSAGE` (2)     |
//! | more than [`DEFAULT_MAX_DECOMPRESSED_SIZE`] once decompressed  | `MESSAGE_TOO_LARGE` (10)  |
//! | malformed records, count mismatch, offset deltas not 0..n-1    | `INVALID_RECORD` (87)     |
//! | timestamp outside `message.timestamp.before/after.max.ms`      | `INVALID_TIMESTAMP` (32), with record errors |
//! | null key on a compacted topic                                  | `INVALID_RECORD` (87), with record errors |
//! | all batches together larger than `segment.bytes`               | `RECORD_LIST_TOO_LARGE` (18) |
//! | a batch re-compressed for `compression.type` larger than `max.message.bytes` | `MESSAGE_TOO_LARGE` (10) |
//! | all batches re-compressed larger than `segment.bytes`          | `RECORD_LIST_TOO_LARGE` (18) |
//!
//! Differences from Kafka, on purpose:
//!
//! * Several batches per partition are accepted (Kafka's Produce v3+ takes exactly one).
//! * A partial batch at the end is rejected (Kafka silently drops it).
//! * Offset deltas must be exactly 0..n-1 in compressed batches too (Kafka recompresses
//!   such batches from old clients; this broker never renumbers records).
//! * A batch with the log append time bit set is rejected as a whole (Kafka reports each
//!   record).
//! * A transactional batch without a producer id is rejected.
//! * Validation never needs the inflated records: a compressed batch is checked as Kafka
//!   checks one it keeps, record by record off a streaming decompressor with keys and
//!   values skipped (`skipKeyValueIterator`), so it costs its wire size plus the decoder's
//!   state (zstd: the frame's window, at most libzstd's default limit of 128 MiB; ordinary
//!   producers use 2-8 MiB), never its inflated size.
//! * `compression.type` (the topic's, else the broker's) is applied as Kafka's
//!   `LogValidator` applies it: `producer` keeps every batch as it came; any other codec
//!   re-compresses the batches whose codec differs, keeping the header's fields (offset
//!   deltas, timestamps, producer id, epoch and sequence, transactional flag) and the
//!   records byte for byte ([`RecordBatch::recompress`]). Kafka decodes the records into a
//!   list and builds a new batch; here the records section is streamed from the old codec
//!   to the new one, so memory is the output (at most `max.message.bytes` per batch, as
//!   Kafka checks after re-compression) plus the codecs' state. Such a batch is
//!   decompressed twice (once to check it, once to re-compress it), trading CPU for never
//!   holding the inflated records.
//! * Kafka sets no limit on how far a batch inflates; here more than
//!   [`DEFAULT_MAX_DECOMPRESSED_SIZE`] (256 MiB) is `MESSAGE_TOO_LARGE`. Memory no longer
//!   depends on it (see above); it bounds the CPU time a small decompression bomb can take.
//!
//! Producer ids, epochs and sequences are only checked for sanity here; duplicate and
//! out-of-order detection is done by the partition's producer state
//! ([`super::producer_state`]) when [`PartitionLog::append`](super::PartitionLog::append)
//! assigns offsets.

use bytes::Bytes;
use gregor_protocol::records::{
    BatchHeader, Compression, DEFAULT_MAX_DECOMPRESSED_SIZE, LOG_OVERHEAD, MAGIC_V2,
    RECORD_BATCH_OVERHEAD, RecordBatch, RecordsError, TimestampType as RecordTimestampType,
};

use super::config::{LogConfig, TimestampType};

pub use gregor_protocol::error_code::{
    CORRUPT_MESSAGE, INVALID_RECORD, INVALID_TIMESTAMP, MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE,
    UNSUPPORTED_COMPRESSION_TYPE,
};

/// Smallest length field of any batch format (a magic 0 message), as Kafka checks first.
const MIN_LENGTH_FIELD: i32 = 14;
/// Bytes up to and including the magic byte.
const HEADER_SIZE_UP_TO_MAGIC: usize = 17;
/// Position of the CRC in a v2 batch; it covers everything from the attributes on.
const CRC_AT: usize = 17;
/// Position of the attributes in a v2 batch.
const ATTRIBUTES_AT: usize = 21;
/// Position of the max timestamp in a v2 batch.
const MAX_TIMESTAMP_AT: usize = 35;
/// Record errors shown in the message, as Kafka does.
const SHOWN_RECORD_ERRORS: usize = 3;

/// Why a partition's records were rejected: Kafka's error code, the message for the
/// response's `error_message`, and the per-record errors for `record_errors` (Produce v8+).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} (error code {code})")]
pub struct ValidationError {
    /// Kafka's error code.
    pub code: i16,
    /// What is wrong.
    pub message: String,
    /// The records at fault (empty for batch-level problems).
    pub record_errors: Vec<RecordError>,
}

impl ValidationError {
    pub(super) fn new(code: i16, message: impl Into<String>) -> ValidationError {
        ValidationError {
            code,
            message: message.into(),
            record_errors: Vec::new(),
        }
    }
}

/// One rejected record, as in the Produce response's `record_errors`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordError {
    /// Index of the record inside its batch.
    pub batch_index: i32,
    /// What is wrong with it.
    pub message: String,
}

/// What validation learnt about one batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatedBatch {
    /// Byte position of the batch in [`ValidatedRecords::records`].
    pub position: usize,
    /// Size of the batch in bytes.
    pub size: usize,
    /// Number of records (`lastOffsetDelta + 1`).
    pub record_count: i32,
    /// Largest record timestamp ([`gregor_protocol::records::NO_TIMESTAMP`] if none).
    pub max_timestamp: i64,
    /// Offset delta of the first record with the largest timestamp.
    pub offset_delta_of_max_timestamp: i32,
    /// The codec of the records as stored (the topic's `compression.type`, or the
    /// producer's when that is `producer`).
    pub compression: Compression,
    /// The codec the producer sent the records with.
    pub producer_compression: Compression,
    /// Producer id (-1 without idempotence).
    pub producer_id: i64,
    /// Producer epoch (-1 without idempotence).
    pub producer_epoch: i16,
    /// Sequence of the first record (-1 without idempotence).
    pub base_sequence: i32,
    /// Whether the batch belongs to a transaction.
    pub transactional: bool,
    /// Whether it is a control batch (never from clients: only trusted appends carry them;
    /// the producer state ignores them).
    pub(crate) control: bool,
    /// The max timestamp the header claims (rewritten to `max_timestamp` on append, as
    /// Kafka does, if it differs).
    pub(crate) header_max_timestamp: i64,
}

impl ValidatedBatch {
    /// Describes a batch from its header alone (no record checks), for appends of batches
    /// that are trusted.
    pub(crate) fn from_header(header: &BatchHeader, position: usize, size: usize) -> Self {
        ValidatedBatch {
            position,
            size,
            record_count: header.last_offset_delta.saturating_add(1),
            max_timestamp: header.max_timestamp,
            offset_delta_of_max_timestamp: header.last_offset_delta,
            compression: header.compression().unwrap_or_default(),
            producer_compression: header.compression().unwrap_or_default(),
            producer_id: header.producer_id,
            producer_epoch: header.producer_epoch,
            base_sequence: header.base_sequence,
            transactional: header.is_transactional(),
            control: header.is_control(),
            header_max_timestamp: header.max_timestamp,
        }
    }
}

/// One partition's records that passed [`validate_records`], ready for
/// [`PartitionLog::append`](super::PartitionLog::append): the request's bytes (shared, not
/// copied) and what was learnt about each batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatedRecords {
    records: Bytes,
    batches: Vec<ValidatedBatch>,
}

impl ValidatedRecords {
    /// The records as received.
    pub fn records(&self) -> &Bytes {
        &self.records
    }

    /// The batches, in order; they cover [`Self::records`] exactly.
    pub fn batches(&self) -> &[ValidatedBatch] {
        &self.batches
    }

    /// Total number of records.
    pub fn record_count(&self) -> i64 {
        self.batches.iter().map(|b| i64::from(b.record_count)).sum()
    }

    /// Size of all batches in bytes.
    pub fn size(&self) -> usize {
        self.records.len()
    }

    /// Largest record timestamp of all batches (-1 if none).
    pub fn max_timestamp(&self) -> i64 {
        self.batches
            .iter()
            .map(|b| b.max_timestamp)
            .max()
            .unwrap_or(gregor_protocol::records::NO_TIMESTAMP)
    }

    /// Whether the producer compressed any batch with zstd (Produce before v7 must not use
    /// zstd: the handler answers `UNSUPPORTED_COMPRESSION_TYPE`). A topic whose
    /// `compression.type` is zstd is fine for old producers: the broker compresses, and
    /// Kafka 4's only check on the target codec is for inter-broker versions before 2.1.
    pub fn uses_zstd(&self) -> bool {
        self.batches
            .iter()
            .any(|b| b.producer_compression == Compression::Zstd)
    }

    /// Joins bytes and the descriptions of the batches they hold (for validation paths in
    /// other files, such as the up-conversion of legacy message sets).
    pub(super) fn from_parts(records: Bytes, batches: Vec<ValidatedBatch>) -> Self {
        ValidatedRecords { records, batches }
    }

    /// Splits into the bytes and the batch descriptions.
    pub(crate) fn into_parts(self) -> (Bytes, Vec<ValidatedBatch>) {
        (self.records, self.batches)
    }
}

/// Validates the records of one partition of a Produce request against the partition's
/// config, at broker time `now_ms` (see the module documentation for the checks and their
/// error codes). On success the bytes are kept as they are (no copy).
///
/// CPU-bound (it decodes every record and streams compressed batches through their
/// decompressor, up to [`DEFAULT_MAX_DECOMPRESSED_SIZE`] each, without keeping what comes
/// out): large requests are best validated off the async executor threads
/// (`spawn_blocking`).
pub fn validate_records(
    records: Bytes,
    config: &LogConfig,
    now_ms: i64,
) -> Result<ValidatedRecords, ValidationError> {
    if records.is_empty() {
        return Err(ValidationError::new(
            INVALID_RECORD,
            "Produce requests must have at least one record batch per partition",
        ));
    }
    let mut batches = Vec::new();
    let mut position = 0;
    while position < records.len() {
        let size = frame(&records[position..])?;
        let batch = records.slice(position..position + size);
        batches.push(validate_batch(batch, position, config, now_ms)?);
        position += size;
    }
    let segment_bytes = u64::try_from(config.segment_bytes).unwrap_or(0);
    if records.len() as u64 > segment_bytes {
        return Err(record_list_too_large(records.len(), segment_bytes));
    }
    let records = if batches
        .iter()
        .any(|b| config.target_compression(b.compression).is_some())
    {
        recompress(&records, &mut batches, config)?
    } else {
        records
    };
    Ok(ValidatedRecords { records, batches })
}

pub(super) fn record_list_too_large(size: usize, segment_bytes: u64) -> ValidationError {
    ValidationError::new(
        RECORD_LIST_TOO_LARGE,
        format!(
            "The size of this message set ({size} bytes) exceeds the configured segment size of {segment_bytes}"
        ),
    )
}

/// Re-compresses the batches whose codec is not the topic's `compression.type` (Kafka's
/// `LogValidator.buildRecordsAndAssignOffsets`; batches already in the target codec are
/// kept byte for byte, its in-place path), updating their descriptions.
///
/// Each batch is streamed from its decompressor into the new compressor (the records
/// section is the same bytes under any codec), so besides the output only the codecs'
/// state is held. The output is bounded as Kafka bounds it after re-compression
/// (`UnifiedLog.append`): each new batch by `max.message.bytes` (`MESSAGE_TOO_LARGE`),
/// all of them by `segment.bytes` (`RECORD_LIST_TOO_LARGE`); compression stops as soon
/// as a limit is passed.
fn recompress(
    records: &Bytes,
    batches: &mut [ValidatedBatch],
    config: &LogConfig,
) -> Result<Bytes, ValidationError> {
    let max_message_bytes = usize::try_from(config.max_message_bytes).unwrap_or(0);
    let segment_bytes = usize::try_from(config.segment_bytes).unwrap_or(0);
    let mut out = bytes::BytesMut::with_capacity(records.len());
    for batch in batches.iter_mut() {
        let bytes = records.slice(batch.position..batch.position + batch.size);
        let new_position = out.len();
        let segment_left = segment_bytes.saturating_sub(out.len());
        if let Some((codec, level)) = config.target_compression(batch.compression) {
            let limit = max_message_bytes.min(segment_left);
            let parsed = RecordBatch::parse(bytes)
                .map_err(|error| ValidationError::new(CORRUPT_MESSAGE, error.to_string()))?;
            let rewritten = parsed
                .recompress(codec, level, DEFAULT_MAX_DECOMPRESSED_SIZE, limit)
                .map_err(|error| match error {
                    RecordsError::RecompressedTooLarge { .. } if limit < max_message_bytes => {
                        ValidationError::new(
                            RECORD_LIST_TOO_LARGE,
                            format!(
                                "The records re-compressed with {codec} (the topic's compression.type) exceed the configured segment size of {segment_bytes}"
                            ),
                        )
                    }
                    RecordsError::RecompressedTooLarge { .. } => ValidationError::new(
                        MESSAGE_TOO_LARGE,
                        format!(
                            "The record batch re-compressed with {codec} (the topic's compression.type) exceeds the maximum configured size of {max_message_bytes}."
                        ),
                    ),
                    RecordsError::DecompressedTooLarge { .. } => {
                        ValidationError::new(MESSAGE_TOO_LARGE, error.to_string())
                    }
                    other => ValidationError::new(CORRUPT_MESSAGE, other.to_string()),
                })?;
            out.extend_from_slice(&rewritten);
            batch.size = rewritten.len();
            batch.compression = codec;
        } else {
            if bytes.len() > segment_left {
                return Err(record_list_too_large(
                    out.len() + bytes.len(),
                    segment_bytes as u64,
                ));
            }
            out.extend_from_slice(&bytes);
        }
        batch.position = new_position;
    }
    Ok(out.freeze())
}

/// The size of the batch at the start of `rest`, with Kafka's framing checks
/// (`ByteBufferLogInputStream.nextBatchSize`), a partial batch being an error.
fn frame(rest: &[u8]) -> Result<usize, ValidationError> {
    let partial = || {
        ValidationError::new(
            CORRUPT_MESSAGE,
            format!(
                "Partial record batch at the end of the records ({} bytes)",
                rest.len()
            ),
        )
    };
    if rest.len() < LOG_OVERHEAD {
        return Err(partial());
    }
    let length = i32::from_be_bytes(rest[8..12].try_into().expect("4 bytes"));
    if length < MIN_LENGTH_FIELD {
        return Err(ValidationError::new(
            CORRUPT_MESSAGE,
            format!(
                "Record size {length} is less than the minimum record overhead ({MIN_LENGTH_FIELD})"
            ),
        ));
    }
    if rest.len() < HEADER_SIZE_UP_TO_MAGIC {
        return Err(partial());
    }
    let magic = rest[16] as i8;
    if !(0..=MAGIC_V2).contains(&magic) {
        return Err(ValidationError::new(
            CORRUPT_MESSAGE,
            format!("Invalid magic found in record: {magic}"),
        ));
    }
    let size = length as usize + LOG_OVERHEAD;
    if size > rest.len() {
        return Err(partial());
    }
    Ok(size)
}

/// Checks one whole batch (`batch` is exactly its bytes).
fn validate_batch(
    batch: Bytes,
    position: usize,
    config: &LogConfig,
    now_ms: i64,
) -> Result<ValidatedBatch, ValidationError> {
    let magic = batch[16] as i8;
    if magic != MAGIC_V2 {
        return Err(ValidationError::new(
            INVALID_RECORD,
            format!(
                "Produce requests are only allowed to contain record batches with magic version 2, found magic {magic}"
            ),
        ));
    }
    if batch.len() < RECORD_BATCH_OVERHEAD {
        return Err(ValidationError::new(
            CORRUPT_MESSAGE,
            format!(
                "Record batch is corrupt (the size {} is smaller than the minimum allowed overhead {RECORD_BATCH_OVERHEAD})",
                batch.len()
            ),
        ));
    }
    let header = BatchHeader::decode(&batch).expect("61 bytes checked");
    if header.base_offset != 0 {
        return Err(ValidationError::new(
            INVALID_RECORD,
            format!(
                "The baseOffset of the record batch should be 0, but it is {}",
                header.base_offset
            ),
        ));
    }
    let max_message_bytes = usize::try_from(config.max_message_bytes).unwrap_or(0);
    if batch.len() > max_message_bytes {
        return Err(ValidationError::new(
            MESSAGE_TOO_LARGE,
            format!(
                "The record batch size is {} bytes which exceeds the maximum configured value of {max_message_bytes}.",
                batch.len()
            ),
        ));
    }
    let parsed = RecordBatch::parse(batch).map_err(|error| match error {
        RecordsError::UnknownCompression { codec, .. } => ValidationError::new(
            UNSUPPORTED_COMPRESSION_TYPE,
            format!("Unknown compression type id: {codec}"),
        ),
        RecordsError::InvalidRecordCount { count, .. } => ValidationError::new(
            INVALID_RECORD,
            format!("Invalid reported count for record batch: {count}"),
        ),
        other => ValidationError::new(CORRUPT_MESSAGE, other.to_string()),
    })?;
    if let Err(error) = parsed.verify_crc() {
        let RecordsError::CrcMismatch { stored, .. } = error else {
            return Err(ValidationError::new(CORRUPT_MESSAGE, error.to_string()));
        };
        return Err(ValidationError::new(
            CORRUPT_MESSAGE,
            format!("Record is corrupt (stored crc = {stored})"),
        ));
    }
    check_batch_fields(&header)?;
    let (max_timestamp, offset_delta_of_max_timestamp) = check_records(&parsed, config, now_ms)?;
    Ok(ValidatedBatch {
        position,
        size: parsed.size(),
        record_count: header.record_count,
        max_timestamp,
        offset_delta_of_max_timestamp,
        compression: parsed.compression(),
        producer_compression: parsed.compression(),
        producer_id: header.producer_id,
        producer_epoch: header.producer_epoch,
        base_sequence: header.base_sequence,
        transactional: header.is_transactional(),
        control: false,
        header_max_timestamp: header.max_timestamp,
    })
}

/// Kafka's `LogValidator.validateBatch` for client batches.
fn check_batch_fields(header: &BatchHeader) -> Result<(), ValidationError> {
    let invalid = |message: String| Err(ValidationError::new(INVALID_RECORD, message));
    let count_from_offsets = i64::from(header.last_offset_delta) + 1;
    if count_from_offsets <= 0 {
        return invalid(format!(
            "Batch has an invalid offset range: [0, {}]",
            header.last_offset_delta
        ));
    }
    if header.record_count <= 0 {
        return invalid(format!(
            "Invalid reported count for record batch: {}",
            header.record_count
        ));
    }
    if count_from_offsets != i64::from(header.record_count) {
        return invalid(format!(
            "Inconsistent batch offset range [0, {}] and count of records {}",
            header.last_offset_delta, header.record_count
        ));
    }
    if header.is_control() {
        return invalid("Clients are not allowed to write control records".to_owned());
    }
    if header.producer_id >= 0 && header.base_sequence < 0 {
        return invalid(format!(
            "Invalid sequence number {} in record batch with producerId {}",
            header.base_sequence, header.producer_id
        ));
    }
    if header.is_transactional() && header.producer_id < 0 {
        return invalid("Transactional record batch without a producer id".to_owned());
    }
    if header.timestamp_type() == RecordTimestampType::LogAppendTime {
        return Err(ValidationError {
            code: INVALID_TIMESTAMP,
            message: "Invalid timestamp type in record batch. Producer should not set timestamp type to LogAppendTime.".to_owned(),
            record_errors: vec![RecordError {
                batch_index: 0,
                message: "Producer should not set timestamp type to LogAppendTime.".to_owned(),
            }],
        });
    }
    Ok(())
}

/// Decodes every record: structure, count, offset deltas 0..n-1, then Kafka's per-record
/// checks (null keys on compacted topics, timestamp range). Returns the largest timestamp
/// and the offset delta of the first record carrying it.
fn check_records(
    batch: &RecordBatch,
    config: &LogConfig,
    now_ms: i64,
) -> Result<(i64, i32), ValidationError> {
    // A compressed batch is read off its decompressor record by record, keys and values
    // skipped (Kafka's `skipKeyValueIterator`): it is stored as it came, so nothing needs
    // the inflated records, and holding them would let a small batch claim hundreds of MiB.
    // An uncompressed batch is walked in place (its records borrow the request's buffer).
    let section;
    let records: Box<dyn Iterator<Item = Result<(i32, i64, bool), RecordsError>> + '_> =
        if batch.compression() == Compression::None {
            section = batch
                .section()
                .map_err(|error| ValidationError::new(CORRUPT_MESSAGE, error.to_string()))?;
            Box::new(
                section
                    .iter()
                    .map(|r| r.map(|r| (r.offset_delta, r.timestamp, r.key.is_some()))),
            )
        } else {
            Box::new(
                batch
                    .skip_key_value_records(DEFAULT_MAX_DECOMPRESSED_SIZE)
                    .map(|r| r.map(|r| (r.offset_delta, r.timestamp, r.has_key()))),
            )
        };
    let check_timestamps = config.timestamp_type == TimestampType::CreateTime;
    let mut max_timestamp = gregor_protocol::records::NO_TIMESTAMP;
    let mut delta_of_max = 0;
    let mut errors: Vec<(i16, RecordError)> = Vec::new();
    for (index, record) in records.enumerate() {
        let (offset_delta, timestamp, has_key) = record.map_err(|error| match error {
            RecordsError::DecompressedTooLarge { .. } => {
                ValidationError::new(MESSAGE_TOO_LARGE, error.to_string())
            }
            RecordsError::Decompression { .. } => {
                ValidationError::new(CORRUPT_MESSAGE, error.to_string())
            }
            other => ValidationError::new(INVALID_RECORD, format!("Found invalid record: {other}")),
        })?;
        let index = i32::try_from(index).unwrap_or(i32::MAX);
        if offset_delta != index {
            return Err(ValidationError::new(
                INVALID_RECORD,
                format!(
                    "Record {index} of the batch has offset delta {offset_delta} (offset deltas must be 0..n-1)"
                ),
            ));
        }
        if timestamp > max_timestamp {
            max_timestamp = timestamp;
            delta_of_max = offset_delta;
        }
        if config.cleanup_policy.compact && !has_key {
            errors.push((
                INVALID_RECORD,
                RecordError {
                    batch_index: index,
                    message: "Compacted topic cannot accept message without key.".to_owned(),
                },
            ));
        } else if check_timestamps
            && timestamp != gregor_protocol::records::NO_TIMESTAMP
            && timestamp_out_of_range(timestamp, now_ms, config)
        {
            errors.push((
                INVALID_TIMESTAMP,
                RecordError {
                    batch_index: index,
                    message: format!(
                        "Timestamp {} of message with offset {} is out of range. The timestamp should be within [{}, {}]",
                        timestamp,
                        offset_delta,
                        now_ms.saturating_sub(config.message_timestamp_before_max_ms),
                        now_ms.saturating_add(config.message_timestamp_after_max_ms),
                    ),
                },
            ));
        }
    }
    if errors.is_empty() {
        return Ok((max_timestamp, delta_of_max));
    }
    Err(record_errors_error(errors))
}

/// Kafka's `LogValidator.processRecordErrors`: the error for a batch with rejected records
/// (`INVALID_TIMESTAMP` if any timestamp was at fault, else `INVALID_RECORD` naming the first
/// three).
pub(super) fn record_errors_error(errors: Vec<(i16, RecordError)>) -> ValidationError {
    let timestamp_errors = errors.iter().any(|(code, _)| *code == INVALID_TIMESTAMP);
    let record_errors: Vec<RecordError> = errors.into_iter().map(|(_, error)| error).collect();
    let (code, message) = if timestamp_errors {
        (
            INVALID_TIMESTAMP,
            "One or more records have been rejected due to invalid timestamp".to_owned(),
        )
    } else {
        let shown: Vec<String> = record_errors
            .iter()
            .take(SHOWN_RECORD_ERRORS)
            .map(|e| {
                format!(
                    "RecordError(batchIndex={}, message={})",
                    e.batch_index, e.message
                )
            })
            .collect();
        (
            INVALID_RECORD,
            format!(
                "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}]",
                record_errors.len(),
                shown.join(", ")
            ),
        )
    };
    ValidationError {
        code,
        message,
        record_errors,
    }
}

/// Kafka's `recordHasInvalidTimestamp`: more than `before.max.ms` in the past or
/// `after.max.ms` in the future (computed without overflow).
pub(super) fn timestamp_out_of_range(timestamp: i64, now_ms: i64, config: &LogConfig) -> bool {
    let diff = i128::from(now_ms) - i128::from(timestamp);
    diff > i128::from(config.message_timestamp_before_max_ms)
        || -diff > i128::from(config.message_timestamp_after_max_ms)
}

/// Sets the max timestamp of an encoded v2 batch (create time) and recomputes its CRC, as
/// Kafka's `setMaxTimestamp` does when the producer's header disagrees with its records.
pub(crate) fn set_max_timestamp(batch: &mut [u8], timestamp: i64) {
    batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&timestamp.to_be_bytes());
    let crc = crc32c(&batch[ATTRIBUTES_AT..]);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

/// CRC32C (Castagnoli), bitwise-table implementation for the rare header rewrite above
/// (the protocol library checks CRCs with a hardware-accelerated one).
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut crc = i as u32;
            let mut bit = 0;
            while bit < 8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0x82F6_3B78
                } else {
                    crc >> 1
                };
                bit += 1;
            }
            table[i] = crc;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for &byte in data {
        crc = TABLE[((crc ^ u32::from(byte)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}
