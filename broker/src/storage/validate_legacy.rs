//! Produce v0-v2 with legacy message sets (magic 0 and 1): validated and up-converted to one
//! record batch v2, as Kafka 3.x's broker did with `log.message.format.version` 3.0
//! (`UnifiedLog.analyzeAndValidateRecords`, then `LogValidator` with a magic 2 target:
//! `convertAndAssignOffsetsNonCompressed` for plain messages, `buildRecordsAndAssignOffsets`
//! for a compressed wrapper). The result then takes the partition's normal append path, so
//! fetches, indexes, retention and compaction only ever see ordinary v2 batches.
//!
//! Checks, in Kafka's order, with the codes Kafka answers:
//!
//! | problem                                                   | code                      |
//! |-----------------------------------------------------------|---------------------------|
//! | no message at all                                         | `INVALID_RECORD` (87)     |
//! | framing, partial message, field lengths                   | `CORRUPT_MESSAGE` (2)     |
//! | a message larger than `max.message.bytes`                 | `MESSAGE_TOO_LARGE` (10)  |
//! | CRC32 mismatch (outer, or inner of a wrapper)             | `CORRUPT_MESSAGE` (2)     |
//! | mixed magic, a wrapper with other entries, nested compression, empty or null wrapper, bad magic 1 wrapper offset, zstd | `INVALID_RECORD` (87) |
//! | more than 256 MiB once decompressed                       | `MESSAGE_TOO_LARGE` (10)  |
//! | null key on a compacted topic                             | `INVALID_RECORD` (87), with record errors |
//! | create time outside `message.timestamp.before/after.max.ms`, or log append time set by the producer | `INVALID_TIMESTAMP` (32), with record errors |
//! | the converted batch larger than `max.message.bytes`       | `MESSAGE_TOO_LARGE` (10)  |
//! | the set larger than `segment.bytes`                       | `RECORD_LIST_TOO_LARGE` (18) |
//!
//! The batch written: base offset 0 (the log assigns offsets), create time with magic 0
//! messages at [`NO_TIMESTAMP`] and magic 1 messages keeping theirs (a `LogAppendTime`
//! topic's batches are stamped on append, as for any v2 batch), no producer id, the topic's
//! `compression.type`, or the wrapper's codec for `producer`. As in Kafka, record indexes in
//! record errors count within each outer message (each plain message is its own "batch").

use bytes::{Bytes, BytesMut};
use gregor_protocol::records::legacy_read::{
    LegacyReadError, Upconverter, check_produced_set, legacy_entries, legacy_records,
    legacy_timestamp, verify_entry_crc,
};
use gregor_protocol::records::{
    DEFAULT_MAX_DECOMPRESSED_SIZE, LOG_OVERHEAD, MAGIC_V2, NO_TIMESTAMP,
    TimestampType as RecordTimestampType,
};

use super::config::{LogConfig, TimestampType};
use super::validate::{
    INVALID_RECORD, INVALID_TIMESTAMP, MESSAGE_TOO_LARGE, RecordError, ValidatedBatch,
    ValidatedRecords, ValidationError, record_errors_error, record_list_too_large,
    timestamp_out_of_range,
};

/// Whether `records` starts with a legacy message (magic 0 or 1) rather than a v2 batch:
/// such a set takes [`validate_legacy_records`] when the Produce version allows it (v0-v2).
pub fn is_legacy_message_set(records: &[u8]) -> bool {
    records.len() > LOG_OVERHEAD + 4 && (records[LOG_OVERHEAD + 4] as i8) < MAGIC_V2
}

fn refused(error: LegacyReadError) -> ValidationError {
    ValidationError::new(error.code(), error.message())
}

/// Validates one partition's legacy message set against the partition's config at broker
/// time `now_ms` and up-converts it to one v2 batch (see the module documentation).
///
/// Memory: the input, the output batch and (for a compressed wrapper) one inner message and
/// the decompressor's state at a time; a compressed target stages the uncompressed records
/// (at most [`DEFAULT_MAX_DECOMPRESSED_SIZE`]) before compressing them.
pub fn validate_legacy_records(
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
    let entries = legacy_entries(&records).map_err(refused)?;
    let max_message_bytes = usize::try_from(config.max_message_bytes).unwrap_or(0);
    for entry in &entries {
        // UnifiedLog.analyzeAndValidateRecords: the size of each shallow message, then its CRC.
        if entry.size() > max_message_bytes {
            return Err(ValidationError::new(
                MESSAGE_TOO_LARGE,
                format!(
                    "The record batch size is {} bytes which exceeds the maximum configured value of {max_message_bytes}.",
                    entry.size()
                ),
            ));
        }
        verify_entry_crc(entry).map_err(refused)?;
    }
    let segment_bytes = u64::try_from(config.segment_bytes).unwrap_or(0);
    if records.len() as u64 > segment_bytes {
        return Err(record_list_too_large(records.len(), segment_bytes));
    }
    let source = check_produced_set(&entries).map_err(refused)?;
    let target = config.compression_type.unwrap_or(source);
    let check_timestamps = config.timestamp_type == TimestampType::CreateTime;
    let mut out = BytesMut::with_capacity(records.len());
    let mut converter = Upconverter::new(&mut out, target);
    for entry in &entries {
        let mut errors: Vec<(i16, RecordError)> = Vec::new();
        let messages = legacy_records(entry, DEFAULT_MAX_DECOMPRESSED_SIZE).map_err(refused)?;
        for (index, message) in messages.enumerate() {
            let message = message.map_err(refused)?;
            let index = i32::try_from(index).unwrap_or(i32::MAX);
            let timestamp = legacy_timestamp(&message);
            // LogValidator.validateKey, then validateTimestamp.
            if config.cleanup_policy.compact && message.key.is_none() {
                errors.push((
                    INVALID_RECORD,
                    RecordError {
                        batch_index: index,
                        message: "Compacted topic cannot accept message without key.".to_owned(),
                    },
                ));
            } else if check_timestamps && timestamp != NO_TIMESTAMP {
                if timestamp_out_of_range(timestamp, now_ms, config) {
                    errors.push((
                        INVALID_TIMESTAMP,
                        RecordError {
                            batch_index: index,
                            message: format!(
                                "Timestamp {timestamp} of message with offset {} is out of range. The timestamp should be within [{}, {}]",
                                message.offset,
                                now_ms.saturating_sub(config.message_timestamp_before_max_ms),
                                now_ms.saturating_add(config.message_timestamp_after_max_ms),
                            ),
                        },
                    ));
                }
            } else if entry.timestamp_type == RecordTimestampType::LogAppendTime {
                // Kafka looks at the outer message's timestamp type here, and only when the
                // create time was not checked above.
                errors.push((
                    INVALID_TIMESTAMP,
                    RecordError {
                        batch_index: index,
                        message: "Producer should not set timestamp type to LogAppendTime."
                            .to_owned(),
                    },
                ));
            }
            // Kafka stops appending at the first rejected record and fails the set after the
            // outer message.
            if errors.is_empty() {
                converter.append(&message).map_err(refused)?;
            }
        }
        if !errors.is_empty() {
            return Err(record_errors_error(errors));
        }
    }
    let info = converter.finish().map_err(refused)?;
    // UnifiedLog.append: a converted set is checked again against the size limits.
    if info.size > max_message_bytes {
        return Err(ValidationError::new(
            MESSAGE_TOO_LARGE,
            format!(
                "Message batch size is {} bytes in append to partition, which exceeds the maximum configured size of {max_message_bytes}.",
                info.size
            ),
        ));
    }
    if info.size as u64 > segment_bytes {
        return Err(record_list_too_large(info.size, segment_bytes));
    }
    let batch = ValidatedBatch {
        position: 0,
        size: info.size,
        record_count: info.record_count,
        max_timestamp: info.max_timestamp,
        offset_delta_of_max_timestamp: info.offset_delta_of_max_timestamp,
        compression: target,
        producer_compression: source,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        transactional: false,
        control: false,
        header_max_timestamp: info.max_timestamp,
    };
    Ok(ValidatedRecords::from_parts(out.freeze(), vec![batch]))
}

#[cfg(test)]
#[path = "validate_legacy_tests.rs"]
mod tests;
