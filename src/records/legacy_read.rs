//! Reading produced legacy message sets (magic 0 and 1) and up-converting them to one record
//! batch v2, as Kafka 3.x's broker did for Produce v0-v2 with `log.message.format.version`
//! 3.0 (`LogValidator` with a magic 2 target).
//!
//! ```text
//! entry:   offset i64 | message size i32 | message
//! message: crc u32 (CRC32 of magic..end) | magic i8 | attributes i8 (codec bits 0-2,
//!          magic 1: bit 3 = log append time) | timestamp i64 (magic 1 only)
//!          | key (i32 length, -1 = null) | value (likewise)
//! ```
//!
//! A compressed message (a *wrapper*) carries a whole message set, compressed, as its value.
//! Kafka's `AbstractLegacyRecordBatch.DeepRecordsIterator` reads it; the rules kept here:
//!
//! * inner messages have the wrapper's magic and are never compressed themselves
//!   (`INVALID_RECORD`); each inner CRC is checked (`CORRUPT_MESSAGE`);
//! * a wrapper with no inner message, or with a null value, is `INVALID_RECORD`;
//! * magic 1 inner offsets are relative (0..n-1, the wrapper holding the absolute offset of
//!   the last); a wrapper offset below the last inner offset is `INVALID_RECORD` unless it
//!   is 0 (some librdkafka versions produce 0). Magic 0 inner offsets are absolute. Either
//!   way the log assigns new offsets on append, so only this check depends on them;
//! * a magic 1 wrapper with log append time gives its timestamp to every inner message;
//! * lz4 wrappers of magic 0 were written by Kafka before 0.10 with a frame descriptor
//!   checksum computed over the wrong bytes: Kafka's `KafkaLZ4BlockInputStream` ignores that
//!   checksum for magic 0, so here it is recomputed before the frame is decoded.
//!
//! Unlike Kafka's iterator, which inflates a wrapper's whole inner set into a list first, the
//! inner set is streamed: one inner message is held at a time, the decompressor is capped
//! (the caller's limit, as [`super::RecordBatch::skip_key_value_records`] caps v2), and an
//! inner message's size is checked against what the cap still allows before anything is
//! allocated for it.
//!
//! The set-level rules of a produced message set ([`check_produced_set`], Kafka's
//! `LogValidator.validateBatch` and `getFirstBatchAndMaybeValidateNoMoreBatches`): every
//! entry has the first entry's magic, and a set containing a compressed wrapper holds only
//! that wrapper. [`Upconverter`] then writes every message as a record of one v2 batch
//! (offset deltas 0..n-1, no producer id: legacy messages are never idempotent), with
//! Kafka's timestamps: magic 0 has none ([`NO_TIMESTAMP`]), magic 1 keeps its create time.

use std::borrow::Cow;
use std::fmt;
use std::io::{self, Read};

use bytes::{Bytes, BytesMut};

use super::batch::{LOG_OVERHEAD, MAGIC_AT, NO_TIMESTAMP};
use super::compression::Compression;
use super::encode::{NewRecord, RecordBatchBuilder, RecordBatchWriter};
use super::error::RecordsError;
use super::legacy::{LEGACY_MESSAGE_OVERHEAD_V0, LegacyMessage, xxh32_short};
use super::record::TimestampType;
use super::stream::{LimitExceeded, Limited, decoder};
use crate::error_code;

/// The lz4 frame magic number, as it starts every frame.
const LZ4_MAGIC: [u8; 4] = [0x04, 0x22, 0x4d, 0x18];

/// Why a produced legacy message set was refused, in the classes of Kafka's exceptions, each
/// with the error code Kafka answers ([`LegacyReadError::code`]) and a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LegacyReadError {
    /// Kafka's `CorruptRecordException`: CRC mismatch, framing or field lengths that do not
    /// add up, data that does not decompress (`CORRUPT_MESSAGE`).
    Corrupt(String),
    /// Kafka's `InvalidRecordException`: well-formed bytes breaking a rule of the format
    /// (`INVALID_RECORD`).
    Invalid(String),
    /// More than the decompression limit once inflated (`MESSAGE_TOO_LARGE`, as the v2 path
    /// answers).
    TooLarge(String),
    /// A codec id that names no codec (`UNSUPPORTED_COMPRESSION_TYPE`).
    UnsupportedCompression(String),
}

impl LegacyReadError {
    /// The error code Kafka answers for this problem.
    pub fn code(&self) -> i16 {
        match self {
            LegacyReadError::Corrupt(_) => error_code::CORRUPT_MESSAGE,
            LegacyReadError::Invalid(_) => error_code::INVALID_RECORD,
            LegacyReadError::TooLarge(_) => error_code::MESSAGE_TOO_LARGE,
            LegacyReadError::UnsupportedCompression(_) => error_code::UNSUPPORTED_COMPRESSION_TYPE,
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        match self {
            LegacyReadError::Corrupt(m)
            | LegacyReadError::Invalid(m)
            | LegacyReadError::TooLarge(m)
            | LegacyReadError::UnsupportedCompression(m) => m,
        }
    }
}

impl fmt::Display for LegacyReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (error code {})", self.message(), self.code())
    }
}

impl std::error::Error for LegacyReadError {}

/// Maps an error of the shared legacy decoder to Kafka's classes.
fn from_records_error(error: RecordsError) -> LegacyReadError {
    match error {
        // zstd exists, but never for legacy messages: Kafka's DeepRecordsIterator refuses a
        // zstd wrapper with an InvalidRecordException.
        RecordsError::UnknownCompression { codec: 4, .. } => LegacyReadError::Invalid(
            "zstd compression is not allowed with message format v0 or v1".to_owned(),
        ),
        RecordsError::UnknownCompression { codec, .. } => {
            LegacyReadError::UnsupportedCompression(format!("Unknown compression type id: {codec}"))
        }
        RecordsError::DecompressedTooLarge { .. } => LegacyReadError::TooLarge(error.to_string()),
        other => LegacyReadError::Corrupt(other.to_string()),
    }
}

/// Splits a produced message set into its outer entries, each parsed (not CRC-checked: see
/// [`LegacyMessage::verify_crc`]). Framing follows Kafka's `ByteBufferLogInputStream`: a
/// size below 14 or a magic other than 0-2 is `CORRUPT_MESSAGE`, and so is a partial entry at
/// the end (Kafka drops it silently; a producer never sends one). A magic 2 batch among
/// legacy entries is `INVALID_RECORD`, as Kafka's "Batch magic ... is not the same as the
/// first batch's magic byte".
pub fn legacy_entries(records: &Bytes) -> Result<Vec<LegacyMessage>, LegacyReadError> {
    let mut entries = Vec::new();
    let mut pos = 0;
    while pos < records.len() {
        let rest = &records[pos..];
        let partial = || {
            LegacyReadError::Corrupt(format!(
                "Partial message at the end of the message set ({} bytes)",
                rest.len()
            ))
        };
        if rest.len() < LOG_OVERHEAD {
            return Err(partial());
        }
        let size = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
        if size < LEGACY_MESSAGE_OVERHEAD_V0 as i32 {
            return Err(LegacyReadError::Corrupt(format!(
                "Record size {size} is less than the minimum record overhead ({LEGACY_MESSAGE_OVERHEAD_V0})"
            )));
        }
        let len = size as usize + LOG_OVERHEAD;
        if rest.len() < len {
            return Err(partial());
        }
        let magic = rest[MAGIC_AT] as i8;
        if magic == 2 {
            return Err(LegacyReadError::Invalid(format!(
                "Batch magic 2 is not the same as the first batch's magic byte {}",
                entries.first().map_or(2, |e: &LegacyMessage| e.magic)
            )));
        }
        if !(0..2).contains(&magic) {
            return Err(LegacyReadError::Corrupt(format!(
                "Invalid magic found in record: {magic}"
            )));
        }
        let entry = LegacyMessage::parse_at(records.slice(pos..pos + len), pos)
            .map_err(from_records_error)?;
        entries.push(entry);
        pos += len;
    }
    if entries.is_empty() {
        return Err(LegacyReadError::Invalid(
            "Record batch has no batches at all".to_owned(),
        ));
    }
    Ok(entries)
}

/// Checks an entry's CRC32, with Kafka's message for a mismatch (`CORRUPT_MESSAGE`).
pub fn verify_entry_crc(entry: &LegacyMessage) -> Result<(), LegacyReadError> {
    entry.verify_crc().map_err(|error| match error {
        RecordsError::CrcMismatch {
            stored, computed, ..
        } => LegacyReadError::Corrupt(format!(
            "Record is corrupt (stored crc = {stored}, computed crc = {computed})"
        )),
        other => from_records_error(other),
    })
}

/// Kafka's set-level rules for a produced message set: every entry has the first entry's
/// magic, and a compressed wrapper must be the only entry (`INVALID_RECORD`). Returns the
/// source codec (the wrapper's, else [`Compression::None`]).
pub fn check_produced_set(entries: &[LegacyMessage]) -> Result<Compression, LegacyReadError> {
    let Some(first) = entries.first() else {
        return Err(LegacyReadError::Invalid(
            "Record batch has no batches at all".to_owned(),
        ));
    };
    if let Some(other) = entries.iter().find(|e| e.magic != first.magic) {
        return Err(LegacyReadError::Invalid(format!(
            "Batch magic {} is not the same as the first batch's magic byte {}",
            other.magic, first.magic
        )));
    }
    // Kafka's UnifiedLog keeps the codec of the last compressed entry as the source codec,
    // and LogValidator then allows a single entry.
    let source = entries
        .iter()
        .rev()
        .map(LegacyMessage::compression)
        .find(|&c| c != Compression::None)
        .unwrap_or(Compression::None);
    if source != Compression::None && entries.len() > 1 {
        return Err(LegacyReadError::Invalid(
            "Compressed outer record has more than one batch".to_owned(),
        ));
    }
    Ok(source)
}

/// The messages an outer entry stands for: the entry itself (borrowed) when it is a plain
/// message, else its inner messages read off the decompressor one at a time (owned; see the
/// module docs).
pub struct LegacyRecords<'a> {
    inner: Option<InnerMessages<'a>>,
    plain: Option<&'a LegacyMessage>,
}

impl fmt::Debug for LegacyRecords<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LegacyRecords")
            .field("compressed", &self.inner.is_some())
            .finish_non_exhaustive()
    }
}

/// Iterates the records of `entry` (see [`LegacyRecords`]), decompressing at most
/// `max_decompressed` bytes of a wrapper (more is [`LegacyReadError::TooLarge`]). The outer
/// CRC is not checked here ([`verify_entry_crc`]); every inner one is.
pub fn legacy_records(
    entry: &LegacyMessage,
    max_decompressed: usize,
) -> Result<LegacyRecords<'_>, LegacyReadError> {
    if !entry.is_compressed() {
        return Ok(LegacyRecords {
            inner: None,
            plain: Some(entry),
        });
    }
    Ok(LegacyRecords {
        inner: Some(InnerMessages::new(entry, max_decompressed)?),
        plain: None,
    })
}

impl<'a> Iterator for LegacyRecords<'a> {
    type Item = Result<Cow<'a, LegacyMessage>, LegacyReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            Some(inner) => inner.next().map(|r| r.map(Cow::Owned)),
            None => self.plain.take().map(|m| Ok(Cow::Borrowed(m))),
        }
    }
}

/// Streaming reader of a wrapper's inner message set.
struct InnerMessages<'a> {
    source: Box<dyn Read + 'a>,
    wrapper: &'a LegacyMessage,
    /// Decompressed bytes still allowed.
    left: usize,
    limit: usize,
    count: usize,
    last_offset: i64,
    done: bool,
}

impl<'a> InnerMessages<'a> {
    fn new(wrapper: &'a LegacyMessage, limit: usize) -> Result<Self, LegacyReadError> {
        let Some(value) = wrapper.value.as_ref() else {
            return Err(LegacyReadError::Invalid(format!(
                "Found invalid compressed record set with null value (magic = {})",
                wrapper.magic
            )));
        };
        let codec = wrapper.compression();
        let source: Box<dyn Read + 'a> = if codec == Compression::Lz4 && wrapper.magic == 0 {
            Box::new(Limited {
                inner: lz4_magic0_decoder(value),
                left: limit,
            })
        } else {
            Box::new(Limited {
                inner: decoder(codec, value, limit),
                left: limit,
            })
        };
        Ok(InnerMessages {
            source,
            wrapper,
            left: limit,
            limit,
            count: 0,
            last_offset: -1,
            done: false,
        })
    }

    /// Fills `buf` completely; `Ok(false)` when the stream ended before its first byte.
    fn fill(&mut self, buf: &mut [u8]) -> Result<bool, LegacyReadError> {
        let mut read = 0;
        while read < buf.len() {
            match self.source.read(&mut buf[read..]) {
                Ok(0) if read == 0 => return Ok(false),
                Ok(0) => {
                    return Err(LegacyReadError::Corrupt(format!(
                        "Truncated inner message {} of the compressed wrapper at byte {}",
                        self.count,
                        self.wrapper.position()
                    )));
                }
                Ok(n) => read += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.decompression_error(&e)),
            }
        }
        Ok(true)
    }

    fn decompression_error(&self, error: &io::Error) -> LegacyReadError {
        let codec = self.wrapper.compression();
        if error
            .get_ref()
            .is_some_and(|inner| inner.is::<LimitExceeded>())
        {
            return LegacyReadError::TooLarge(format!(
                "{codec} data decompresses to more than the {} byte limit",
                self.limit
            ));
        }
        LegacyReadError::Corrupt(format!("{codec} decompression failed: {error}"))
    }

    fn read_one(&mut self) -> Result<Option<LegacyMessage>, LegacyReadError> {
        let mut head = [0u8; LOG_OVERHEAD];
        if !self.fill(&mut head)? {
            return self.finish().map(|()| None);
        }
        let size = i32::from_be_bytes([head[8], head[9], head[10], head[11]]);
        if size < LEGACY_MESSAGE_OVERHEAD_V0 as i32 {
            return Err(LegacyReadError::Corrupt(format!(
                "Record size {size} is less than the minimum record overhead ({LEGACY_MESSAGE_OVERHEAD_V0})"
            )));
        }
        let size = size as usize;
        self.left = self.left.saturating_sub(LOG_OVERHEAD);
        // The size is checked against what the decompression limit still allows before
        // anything is allocated for it: a forged size cannot reserve memory.
        if size > self.left {
            return Err(LegacyReadError::TooLarge(format!(
                "Inner message of {size} bytes exceeds the {} byte decompression limit",
                self.limit
            )));
        }
        let mut entry = vec![0u8; LOG_OVERHEAD + size];
        entry[..LOG_OVERHEAD].copy_from_slice(&head);
        self.fill(&mut entry[LOG_OVERHEAD..])?;
        self.left -= size;
        let inner_corrupt = |error: RecordsError| match error {
            RecordsError::UnknownCompression { .. } => {
                LegacyReadError::Invalid("Inner messages must not be compressed".to_owned())
            }
            RecordsError::BadMagic { magic, .. } => LegacyReadError::Invalid(format!(
                "Compressed message magic {magic} does not match wrapper magic {}",
                self.wrapper.magic
            )),
            other => LegacyReadError::Corrupt(format!("Inner message is corrupt: {other}")),
        };
        let mut message = LegacyMessage::parse(Bytes::from(entry)).map_err(inner_corrupt)?;
        if message.magic != self.wrapper.magic {
            return Err(LegacyReadError::Invalid(format!(
                "Compressed message magic {} does not match wrapper magic {}",
                message.magic, self.wrapper.magic
            )));
        }
        if message.is_compressed() {
            // Kafka: DeepRecordsIterator and LogValidator.validateRecordCompression.
            return Err(LegacyReadError::Invalid(
                "Compressed outer record should not have an inner record with a compression attribute set".to_owned(),
            ));
        }
        verify_entry_crc(&message)?;
        if self.wrapper.magic == 1 && self.wrapper.timestamp_type == TimestampType::LogAppendTime {
            message.timestamp = self.wrapper.timestamp;
            message.timestamp_type = TimestampType::LogAppendTime;
        }
        self.count += 1;
        self.last_offset = message.offset;
        Ok(Some(message))
    }

    /// The checks Kafka makes once the inner set is read.
    fn finish(&self) -> Result<(), LegacyReadError> {
        if self.count == 0 {
            return Err(LegacyReadError::Invalid(
                "Found invalid compressed record set with no inner records".to_owned(),
            ));
        }
        let wrapper_offset = self.wrapper.offset;
        if self.wrapper.magic == 1 && wrapper_offset != 0 && wrapper_offset < self.last_offset {
            return Err(LegacyReadError::Invalid(format!(
                "Found invalid wrapper offset in compressed v1 message set, wrapper offset '{wrapper_offset}' is less than the last inner message offset '{}' and it is not zero.",
                self.last_offset
            )));
        }
        Ok(())
    }
}

impl Iterator for InnerMessages<'_> {
    type Item = Result<LegacyMessage, LegacyReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let result = self.read_one().transpose();
        if !matches!(result, Some(Ok(_))) {
            self.done = true;
        }
        result
    }
}

/// An lz4 decoder for a magic 0 wrapper: the frame descriptor's checksum byte is replaced by
/// the right one (Kafka before 0.10 hashed the wrong bytes, and Kafka's reader ignores this
/// checksum for magic 0), the rest of the frame streamed as it is.
fn lz4_magic0_decoder(frame: &[u8]) -> Box<dyn Read + '_> {
    let Some(checksum_at) = lz4_descriptor_checksum_at(frame) else {
        return Box::new(lz4_flex::frame::FrameDecoder::new(frame));
    };
    let mut header = frame[..=checksum_at].to_vec();
    header[checksum_at] = (xxh32_short(&frame[4..checksum_at]) >> 8) as u8;
    let rest = &frame[checksum_at + 1..];
    Box::new(lz4_flex::frame::FrameDecoder::new(
        io::Cursor::new(header).chain(rest),
    ))
}

/// Position of the frame descriptor checksum of an lz4 frame (after FLG, BD and the
/// optional content size and dictionary id), if the frame is long enough to have one.
pub(crate) fn lz4_descriptor_checksum_at(frame: &[u8]) -> Option<usize> {
    if frame.len() < 7 || frame[..4] != LZ4_MAGIC {
        return None;
    }
    let flg = frame[4];
    let mut at = 6;
    if flg & 0x08 != 0 {
        at += 8;
    }
    if flg & 0x01 != 0 {
        at += 4;
    }
    (at < frame.len()).then_some(at)
}

/// The timestamp Kafka's `LegacyRecord.timestamp()` reports: none for magic 0, else the
/// message's own (or, inside a log-append-time wrapper, the wrapper's, already applied by
/// [`legacy_records`]).
pub fn legacy_timestamp(message: &LegacyMessage) -> i64 {
    if message.magic == 0 {
        NO_TIMESTAMP
    } else {
        message.timestamp
    }
}

/// What [`Upconverter::finish`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpconvertedBatch {
    /// Size of the v2 batch in bytes.
    pub size: usize,
    /// Records written (offset deltas 0..n-1).
    pub record_count: i32,
    /// Largest record timestamp ([`NO_TIMESTAMP`] if none has one).
    pub max_timestamp: i64,
    /// Offset delta of the first record with the largest timestamp.
    pub offset_delta_of_max_timestamp: i32,
}

/// Writes legacy messages as the records of one v2 batch (Kafka's `MemoryRecordsBuilder`
/// with magic 2, fed by `LogValidator.convertAndAssignOffsetsNonCompressed` or
/// `buildRecordsAndAssignOffsets`): base offset 0 (the log assigns offsets), create time
/// (the log stamps a log-append-time topic's batches as it does any v2 batch), no producer
/// id, epoch or sequence, the given codec.
#[derive(Debug)]
pub struct Upconverter<'a> {
    writer: RecordBatchWriter<'a>,
    max_timestamp: i64,
    offset_delta_of_max_timestamp: i32,
}

impl<'a> Upconverter<'a> {
    /// Starts the batch at the end of `out`, its records to be compressed with `compression`.
    pub fn new(out: &'a mut BytesMut, compression: Compression) -> Upconverter<'a> {
        let writer = RecordBatchBuilder::new()
            .compression(compression)
            .timestamp_type(TimestampType::CreateTime)
            .writer(out);
        Upconverter {
            writer,
            max_timestamp: NO_TIMESTAMP,
            offset_delta_of_max_timestamp: 0,
        }
    }

    /// Appends one (uncompressed) legacy message as the next record; returns its offset
    /// delta.
    pub fn append(&mut self, message: &LegacyMessage) -> Result<i32, LegacyReadError> {
        let timestamp = legacy_timestamp(message);
        let record = NewRecord::new(timestamp, message.key.clone(), message.value.clone());
        let delta = self
            .writer
            .append(&record)
            .map_err(|e| LegacyReadError::Invalid(e.to_string()))?;
        if timestamp > self.max_timestamp {
            self.max_timestamp = timestamp;
            self.offset_delta_of_max_timestamp = delta;
        }
        Ok(delta)
    }

    /// Records appended so far.
    pub fn record_count(&self) -> i32 {
        self.writer.record_count()
    }

    /// Completes the batch (compressing its records if a codec was given).
    pub fn finish(self) -> Result<UpconvertedBatch, LegacyReadError> {
        let record_count = self.writer.record_count();
        let size = self
            .writer
            .finish()
            .map_err(|e| LegacyReadError::Corrupt(e.to_string()))?;
        Ok(UpconvertedBatch {
            size,
            record_count,
            max_timestamp: self.max_timestamp,
            offset_delta_of_max_timestamp: self.offset_delta_of_max_timestamp,
        })
    }
}

/// Up-converts a whole produced legacy message set with every structural check of this module
/// (framing, CRCs, set rules, inner messages) and none of a topic's (sizes, keys,
/// timestamps): one v2 batch in `compression`, or in the producer's codec when `None`
/// (Kafka's `compression.type=producer`).
pub fn upconvert(
    records: &Bytes,
    compression: Option<Compression>,
    max_decompressed: usize,
) -> Result<(Bytes, UpconvertedBatch), LegacyReadError> {
    let entries = legacy_entries(records)?;
    for entry in &entries {
        verify_entry_crc(entry)?;
    }
    let source = check_produced_set(&entries)?;
    let mut out = BytesMut::with_capacity(records.len());
    let mut converter = Upconverter::new(&mut out, compression.unwrap_or(source));
    for entry in &entries {
        for message in legacy_records(entry, max_decompressed)? {
            let message = message?;
            converter.append(&message)?;
        }
    }
    let info = converter.finish()?;
    Ok((out.freeze(), info))
}

#[cfg(test)]
#[path = "legacy_read_tests.rs"]
mod tests;
