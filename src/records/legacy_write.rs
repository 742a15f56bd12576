//! Down-conversion: legacy message sets (magic 0 and 1) written from record batches, for
//! the Fetch versions (0-3) whose clients read nothing newer.
//!
//! One message, as Kafka's `LegacyRecord` lays it out:
//!
//! ```text
//! offset i64 | size i32 | crc u32 (CRC32 of magic..end) | magic i8 | attributes i8
//!   | timestamp i64 (magic 1 only) | key (i32 length, -1 = null) | value (likewise)
//! ```
//!
//! The rules are those of Kafka's `RecordsUtil.downConvert` (with `MemoryRecordsBuilder`
//! writing the result) and `LazyDownConversionRecords`/`LazyDownConversionRecordsSend`:
//!
//! * control batches (transaction markers) are dropped: magic 0/1 have no such thing;
//! * record headers are dropped; magic 0 also loses the timestamps, magic 1 keeps each
//!   record's timestamp and the batch's timestamp type (attribute bit 3 for log append time,
//!   with the batch's max timestamp as every record's timestamp);
//! * an uncompressed batch becomes one message per record, and records before the fetch
//!   offset are left out (the fetch may start inside the batch);
//! * a compressed batch becomes one wrapper message whose value is the inner messages
//!   compressed with the batch's codec; with magic 1 the inner offsets are relative to the
//!   first record and the wrapper carries the last record's offset and the batch's max
//!   timestamp (its log append time when it has one); with magic 0 inner offsets are
//!   absolute. An lz4 wrapper of magic 0 gets the frame header checksum that Kafka before
//!   0.10 computed (over the magic bytes too), which magic 0 readers expect;
//! * zstd has no legacy codec: such a batch fails with
//!   [`DownConvertError::UnsupportedCompression`];
//! * entries already at or below the target magic are copied unchanged; a magic 1 entry
//!   converted to magic 0 is rewritten as above.
//!
//! [`down_convert`] answers one partition of a fetch as Kafka's lazy down-conversion sends
//! it: batch by batch (never the whole partition inflated at once), in exactly
//! `max(bytes read, size of the first converted batch)` bytes: converted messages cut at
//! that size (a trailing partial message, which old consumers skip), or, when conversion
//! shrank the data, followed by Kafka's overflow filler (offset -1 and a length past the
//! end, so readers take it for a partial message).

use std::fmt;
use std::io;

use bytes::{BufMut, Bytes, BytesMut};

use super::batch::{LOG_OVERHEAD, NO_TIMESTAMP, RECORD_BATCH_OVERHEAD, RecordBatch};
use super::compression::{Compression, Encoder};
use super::error::RecordsError;
use super::legacy::{LEGACY_MESSAGE_OVERHEAD_V0, LEGACY_MESSAGE_OVERHEAD_V1, xxh32_short};
use super::record::TimestampType;
use super::set::{Batch, RecordBatches};

/// Attribute bit 3 of a magic 1 message: the timestamp is the log append time.
const LOG_APPEND_TIME_BIT: u8 = 0x08;
/// Offset of the crc field in an entry (after offset and size).
const CRC_AT: usize = LOG_OVERHEAD;
/// Offset of the magic byte in an entry (where the CRC starts).
const MAGIC_AT: usize = LOG_OVERHEAD + 4;
/// Bytes the filler of a shrunken conversion has at least (Kafka's
/// `LazyDownConversionRecordsSend.MIN_OVERFLOW_MESSAGE_LENGTH`: an offset and a size).
pub const MIN_OVERFLOW_MESSAGE_LENGTH: usize = LOG_OVERHEAD;
/// Largest piece of filler written at once (Kafka's `MAX_READ_SIZE`, 128 KiB); each piece
/// starts with its own offset and length.
const OVERFLOW_CHUNK: usize = 128 * 1024;
/// Length of the lz4 frame header Kafka writes (magic, FLG, BD, header checksum).
const LZ4_HEADER_CHECKSUM_AT: usize = 6;

/// Why a batch could not be down-converted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownConvertError {
    /// The target magic is not 0 or 1.
    BadTargetMagic(i8),
    /// A zstd-compressed batch: magic 0 and 1 have no zstd codec (Kafka answers
    /// `UNSUPPORTED_COMPRESSION_TYPE`).
    UnsupportedCompression {
        /// Byte position of the batch in its buffer.
        position: usize,
    },
    /// A record timestamp below -1, which a legacy message cannot carry (Kafka's
    /// `LegacyRecord.write` refuses it).
    InvalidTimestamp {
        /// Offset of the record.
        offset: i64,
        /// Its timestamp.
        timestamp: i64,
    },
    /// The batch could not be read or compressed.
    Records(RecordsError),
}

impl fmt::Display for DownConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownConvertError::BadTargetMagic(magic) => {
                write!(f, "cannot down-convert to magic {magic} (only 0 and 1)")
            }
            DownConvertError::UnsupportedCompression { position } => write!(
                f,
                "the zstd batch at byte {position} cannot be down-converted to a legacy message"
            ),
            DownConvertError::InvalidTimestamp { offset, timestamp } => write!(
                f,
                "record {offset} has timestamp {timestamp}, which a legacy message cannot carry"
            ),
            DownConvertError::Records(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for DownConvertError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DownConvertError::Records(error) => Some(error),
            _ => None,
        }
    }
}

impl From<RecordsError> for DownConvertError {
    fn from(error: RecordsError) -> Self {
        DownConvertError::Records(error)
    }
}

/// One record to write: offset, timestamp, key, value.
struct Message<'a> {
    offset: i64,
    timestamp: i64,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
}

/// How the messages of one source batch are written.
#[derive(Clone, Copy)]
struct Target {
    magic: i8,
    codec: Compression,
    timestamp_type: TimestampType,
    /// The batch's log append time (its max timestamp) when it uses log append time.
    log_append_time: i64,
}

impl Target {
    /// The attributes of a plain (inner or uncompressed) message: Kafka's
    /// `LegacyRecord.computeAttributes` with no codec.
    fn attributes(&self, codec: Compression) -> u8 {
        let mut attributes = codec.id();
        if self.magic > 0 && self.timestamp_type == TimestampType::LogAppendTime {
            attributes |= LOG_APPEND_TIME_BIT;
        }
        attributes
    }

    fn overhead(&self) -> usize {
        if self.magic == 0 {
            LEGACY_MESSAGE_OVERHEAD_V0
        } else {
            LEGACY_MESSAGE_OVERHEAD_V1
        }
    }
}

/// Down-converts one entry of a records buffer to `to_magic` (0 or 1), appending the
/// messages to `out`, and returns how many messages it wrote (0 for a control batch, an
/// empty batch, or an uncompressed batch wholly before `first_offset`).
///
/// `entry_bytes` are the entry's own bytes (copied as they are when the entry is already at
/// or below `to_magic`). On error `out` is left as it was.
pub fn down_convert_batch(
    batch: &Batch,
    entry_bytes: &[u8],
    to_magic: i8,
    first_offset: i64,
    out: &mut BytesMut,
) -> Result<usize, DownConvertError> {
    if !(0..=1).contains(&to_magic) {
        return Err(DownConvertError::BadTargetMagic(to_magic));
    }
    let start = out.len();
    let result = match batch {
        Batch::V2(batch) => convert_v2(batch, to_magic, first_offset, out),
        Batch::Legacy(message) if message.magic <= to_magic => {
            out.extend_from_slice(entry_bytes);
            Ok(1)
        }
        Batch::Legacy(message) => {
            // Magic 1 to magic 0: the inner messages (absolute offsets) rewritten.
            let inner = message.messages()?;
            let compressed = message.is_compressed();
            let target = Target {
                magic: to_magic,
                codec: message.compression(),
                timestamp_type: message.timestamp_type,
                log_append_time: message.timestamp,
            };
            let messages = inner
                .iter()
                .filter(|m| compressed || m.offset >= first_offset)
                .map(|m| {
                    Ok(Message {
                        offset: m.offset,
                        timestamp: m.timestamp,
                        key: m.key.as_deref(),
                        value: m.value.as_deref(),
                    })
                });
            write_messages(target, messages, out)
        }
    };
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// A v2 batch as legacy messages (`RecordsUtil.convertRecordBatch`).
fn convert_v2(
    batch: &RecordBatch,
    to_magic: i8,
    first_offset: i64,
    out: &mut BytesMut,
) -> Result<usize, DownConvertError> {
    if batch.is_control() {
        return Ok(0);
    }
    let codec = batch.compression();
    if codec == Compression::Zstd {
        return Err(DownConvertError::UnsupportedCompression {
            position: batch.position(),
        });
    }
    let header = batch.header();
    let timestamp_type = header.timestamp_type();
    let target = Target {
        magic: to_magic,
        codec,
        timestamp_type,
        log_append_time: if timestamp_type == TimestampType::LogAppendTime {
            header.max_timestamp
        } else {
            NO_TIMESTAMP
        },
    };
    let section = batch.section()?;
    let compressed = codec != Compression::None;
    let messages = section.iter().filter_map(|record| match record {
        // Uncompressed legacy messages stand alone, so the records before the fetch
        // offset are dropped (some librdkafka versions rely on it, says Kafka).
        Ok(r) if !compressed && r.offset < first_offset => None,
        Ok(r) => Some(Ok(Message {
            offset: r.offset,
            timestamp: r.timestamp,
            key: r.key,
            value: r.value,
        })),
        Err(error) => Some(Err(DownConvertError::Records(error))),
    });
    write_messages(target, messages, out)
}

/// Writes `messages` as plain messages, or as one compressed wrapper when the target has
/// a codec (`MemoryRecordsBuilder` for magic 0/1).
fn write_messages<'a>(
    target: Target,
    mut messages: impl Iterator<Item = Result<Message<'a>, DownConvertError>>,
    out: &mut BytesMut,
) -> Result<usize, DownConvertError> {
    if target.codec == Compression::None {
        let mut count = 0;
        for message in messages {
            write_plain(&target, &message?, None, out)?;
            count += 1;
        }
        return Ok(count);
    }
    let Some(first) = messages.next() else {
        return Ok(0);
    };
    let first = first?;
    let base_offset = first.offset;
    // The wrapper's header first (patched at the end), then the compressed inner set.
    let wrapper_at = out.len();
    out.put_bytes(0, LOG_OVERHEAD + target.overhead());
    let value_at = out.len();
    let io_err = |e: io::Error| {
        DownConvertError::Records(RecordsError::Compression {
            codec: target.codec,
            reason: e.to_string(),
        })
    };
    let mut encoder =
        Encoder::new(target.codec, None, None, (&mut *out).writer()).map_err(io_err)?;
    let mut scratch = BytesMut::new();
    let mut count = 0usize;
    let mut last_offset = base_offset;
    let mut max_timestamp = NO_TIMESTAMP;
    for message in std::iter::once(Ok(first)).chain(messages) {
        let message = message?;
        // Magic 1 wrappers hold offsets relative to the first record (`toInnerOffset`).
        let inner_offset = if target.magic > 0 {
            message.offset.wrapping_sub(base_offset)
        } else {
            message.offset
        };
        scratch.clear();
        write_plain(&target, &message, Some(inner_offset), &mut scratch)?;
        encoder.write_all(&scratch).map_err(io_err)?;
        count += 1;
        last_offset = message.offset;
        if target.magic > 0 {
            max_timestamp = max_timestamp.max(stamped(&target, message.timestamp));
        }
    }
    encoder.finish().map_err(io_err)?;
    if target.codec == Compression::Lz4 && target.magic == 0 {
        break_lz4_header_checksum(&mut out[value_at..]);
    }
    let value_len = out.len() - value_at;
    let timestamp = if target.timestamp_type == TimestampType::LogAppendTime {
        target.log_append_time
    } else {
        max_timestamp
    };
    let size = target.overhead() + value_len;
    let header = &mut out[wrapper_at..value_at];
    header[..8].copy_from_slice(&last_offset.to_be_bytes());
    header[8..12].copy_from_slice(&size_field(size)?.to_be_bytes());
    header[MAGIC_AT] = target.magic as u8;
    header[MAGIC_AT + 1] = target.attributes(target.codec);
    let mut at = MAGIC_AT + 2;
    if target.magic > 0 {
        check_timestamp(last_offset, timestamp)?;
        header[at..at + 8].copy_from_slice(&timestamp.to_be_bytes());
        at += 8;
    }
    header[at..at + 4].copy_from_slice(&(-1i32).to_be_bytes()); // the wrapper has no key
    header[at + 4..at + 8].copy_from_slice(&size_field(value_len)?.to_be_bytes());
    let crc = crc32fast::hash(&out[wrapper_at + MAGIC_AT..]);
    out[wrapper_at + CRC_AT..wrapper_at + CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(count)
}

/// The timestamp a message of this target carries (log append time replaces the record's).
fn stamped(target: &Target, timestamp: i64) -> i64 {
    if target.timestamp_type == TimestampType::LogAppendTime {
        target.log_append_time
    } else {
        timestamp
    }
}

/// Appends one uncompressed message at `offset` (the record's own by default).
fn write_plain(
    target: &Target,
    message: &Message<'_>,
    offset: Option<i64>,
    out: &mut BytesMut,
) -> Result<(), DownConvertError> {
    let timestamp = stamped(target, message.timestamp);
    // Kafka checks the timestamp for both magics, though magic 0 does not write it.
    check_timestamp(message.offset, timestamp)?;
    let key_len = message.key.map_or(0, <[u8]>::len);
    let value_len = message.value.map_or(0, <[u8]>::len);
    let size = target.overhead() + key_len + value_len;
    let at = out.len();
    out.reserve(LOG_OVERHEAD + size);
    out.put_i64(offset.unwrap_or(message.offset));
    out.put_i32(size_field(size)?);
    out.put_u32(0); // crc, below
    out.put_i8(target.magic);
    out.put_u8(target.attributes(Compression::None));
    if target.magic > 0 {
        out.put_i64(timestamp);
    }
    for field in [message.key, message.value] {
        match field {
            None => out.put_i32(-1),
            Some(bytes) => {
                out.put_i32(size_field(bytes.len())?);
                out.put_slice(bytes);
            }
        }
    }
    let crc = crc32fast::hash(&out[at + MAGIC_AT..]);
    out[at + CRC_AT..at + CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

fn check_timestamp(offset: i64, timestamp: i64) -> Result<(), DownConvertError> {
    if timestamp < 0 && timestamp != NO_TIMESTAMP {
        return Err(DownConvertError::InvalidTimestamp { offset, timestamp });
    }
    Ok(())
}

fn size_field(len: usize) -> Result<i32, DownConvertError> {
    i32::try_from(len).map_err(|_| {
        DownConvertError::Records(RecordsError::MalformedMessage {
            position: 0,
            reason: "down-converted message larger than 2 GiB",
        })
    })
}

/// Kafka writes magic 0 lz4 wrappers with the header checksum of Kafka before 0.10 (xxh32
/// over the magic bytes as well as the descriptor: `KafkaLZ4BlockOutputStream` with
/// `useBrokenFlagDescriptorChecksum`), since readers of magic 0 expect that one.
fn break_lz4_header_checksum(frame: &mut [u8]) {
    if frame.len() > LZ4_HEADER_CHECKSUM_AT {
        frame[LZ4_HEADER_CHECKSUM_AT] = (xxh32_short(&frame[..LZ4_HEADER_CHECKSUM_AT]) >> 8) as u8;
    }
}

/// Appends Kafka's overflow filler up to `size` bytes (`buildOverflowBatch`): pieces of
/// at most 128 KiB, each an offset of -1, a length past the end of the data (at least a
/// batch header's 61 bytes) and zeros, cut at `size`.
fn pad_overflow(out: &mut BytesMut, size: usize) {
    while out.len() < size {
        let remaining = size - out.len();
        let piece = MIN_OVERFLOW_MESSAGE_LENGTH
            .max((remaining + 1).min(OVERFLOW_CHUNK))
            .min(remaining);
        let length = i32::try_from((remaining + 1).max(RECORD_BATCH_OVERHEAD)).unwrap_or(i32::MAX);
        let mut head = [0u8; LOG_OVERHEAD];
        head[..8].copy_from_slice(&(-1i64).to_be_bytes());
        head[8..].copy_from_slice(&length.to_be_bytes());
        let from_head = piece.min(LOG_OVERHEAD);
        out.extend_from_slice(&head[..from_head]);
        out.put_bytes(0, piece - from_head);
    }
}

/// One partition's fetched `records` down-converted to `to_magic`, as Kafka's
/// `LazyDownConversionRecords` sends them (see the module docs for the size rule).
///
/// `first_offset` is the fetch offset. An error is returned only when nothing could be
/// converted before it: [`DownConvertError::UnsupportedCompression`] when the first batch
/// with records is zstd (Kafka answers the partition with `UNSUPPORTED_COMPRESSION_TYPE`).
/// A batch that fails after the first converted one ends the conversion there, and the
/// rest is overflow filler, so the consumer reads what came before and meets the problem
/// again on its next fetch. Data that converts to nothing (only control batches) gives the
/// 12-byte filler, which old consumers take for a message too large for their fetch size,
/// as Kafka sends; no batches at all give an empty buffer.
pub fn down_convert(
    records: &Bytes,
    to_magic: i8,
    first_offset: i64,
) -> Result<Bytes, DownConvertError> {
    if !(0..=1).contains(&to_magic) {
        return Err(DownConvertError::BadTargetMagic(to_magic));
    }
    let mut batches = RecordBatches::new(records.clone());
    let mut out = BytesMut::new();
    let mut saw_batch = false;
    // The first batch that converts to something sets the size: at least that batch is
    // sent whole, so the consumer always progresses (KIP-283).
    while out.is_empty() {
        let Some(batch) = batches.next() else { break };
        let batch = batch?;
        saw_batch = true;
        let bytes = entry(records, &batch);
        down_convert_batch(&batch, bytes, to_magic, first_offset, &mut out)?;
    }
    if out.is_empty() {
        if saw_batch {
            pad_overflow(&mut out, MIN_OVERFLOW_MESSAGE_LENGTH);
        }
        return Ok(out.freeze());
    }
    let size = records.len().max(out.len());
    while out.len() < size {
        let Some(Ok(batch)) = batches.next() else {
            break;
        };
        let bytes = entry(records, &batch);
        if down_convert_batch(&batch, bytes, to_magic, first_offset, &mut out).is_err() {
            break;
        }
    }
    out.truncate(size);
    pad_overflow(&mut out, size);
    Ok(out.freeze())
}

/// The bytes of one entry of `records`.
fn entry<'a>(records: &'a Bytes, batch: &Batch) -> &'a [u8] {
    let start = batch.position();
    &records[start..start + batch.size()]
}

#[cfg(test)]
mod tests;
