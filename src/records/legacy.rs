//! Legacy message sets, magic 0 and 1 (Kafka before 0.11), decoded for reading old logs.
//!
//! Each entry: offset i64, message size i32, then the message: crc u32 (CRC32 over the rest
//! of the message), magic i8, attributes i8 (codec in bits 0-2, timestamp type in bit 3 for
//! magic 1), timestamp i64 (magic 1 only), key (i32 length, -1 = null), value (likewise).
//!
//! A compressed message is a wrapper whose value is a compressed message set. With magic 1
//! the wrapper carries the absolute offset of the last inner message and inner offsets are
//! relative (0..n-1), so an inner message's offset is
//! `wrapper offset - last inner offset + inner offset`; with magic 0 inner offsets are
//! absolute. When a magic 1 wrapper uses log append time, its timestamp applies to every
//! inner message.

use bytes::Bytes;

use super::batch::{LOG_OVERHEAD, MAGIC_AT, NO_TIMESTAMP, be_array};
use super::compression::{Compression, DEFAULT_MAX_DECOMPRESSED_SIZE, decompress};
use super::error::{RecordLocation, RecordsError};
use super::record::TimestampType;

/// Smallest magic 0 message: crc, magic, attributes, key length, value length.
pub const LEGACY_MESSAGE_OVERHEAD_V0: usize = 14;
/// Smallest magic 1 message: the v0 fields plus the timestamp.
pub const LEGACY_MESSAGE_OVERHEAD_V1: usize = 22;

const CRC_AT: usize = 12;
const ATTRIBUTES_AT: usize = 17;
const CODEC_MASK: i8 = 0x07;
const TIMESTAMP_TYPE_BIT: i8 = 0x08;

/// One legacy message (a plain message or a compressed wrapper).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegacyMessage {
    /// Absolute offset (for a wrapper: the offset of its last inner message).
    pub offset: i64,
    /// 0 or 1.
    pub magic: i8,
    /// Codec and timestamp type bits.
    pub attributes: i8,
    /// Stored CRC32 of the message.
    pub crc: u32,
    /// Timestamp; [`NO_TIMESTAMP`] for magic 0.
    pub timestamp: i64,
    /// How the timestamp was assigned ([`TimestampType::NoTimestamp`] for magic 0).
    pub timestamp_type: TimestampType,
    /// The key, `None` when null.
    pub key: Option<Bytes>,
    /// The value, `None` when null (for a wrapper: the compressed inner message set).
    pub value: Option<Bytes>,
    compression: Compression,
    position: usize,
    entry: Bytes,
}

/// A problem found while decoding one entry, before it is placed in the input.
enum Problem {
    Malformed(&'static str),
    BadMagic(i8),
    UnknownCodec(u8),
}

impl LegacyMessage {
    /// Parses a buffer holding exactly one entry (offset, size and message).
    pub fn parse(entry: Bytes) -> Result<LegacyMessage, RecordsError> {
        LegacyMessage::parse_at(entry, 0)
    }

    pub(crate) fn parse_at(entry: Bytes, position: usize) -> Result<LegacyMessage, RecordsError> {
        if entry.len() <= MAGIC_AT {
            return Err(RecordsError::Truncated {
                position,
                needed: MAGIC_AT + 1,
                available: entry.len(),
            });
        }
        LegacyMessage::decode(entry, position).map_err(|problem| match problem {
            Problem::Malformed(reason) => RecordsError::MalformedMessage { position, reason },
            Problem::BadMagic(magic) => RecordsError::BadMagic { position, magic },
            Problem::UnknownCodec(codec) => RecordsError::UnknownCompression { position, codec },
        })
    }

    fn decode(entry: Bytes, position: usize) -> Result<LegacyMessage, Problem> {
        let buf = &entry[..];
        let magic = *buf.get(MAGIC_AT).ok_or(Problem::Malformed("truncated"))? as i8;
        let min = match magic {
            0 => LEGACY_MESSAGE_OVERHEAD_V0,
            1 => LEGACY_MESSAGE_OVERHEAD_V1,
            other => return Err(Problem::BadMagic(other)),
        };
        if buf.len() < LOG_OVERHEAD + min {
            return Err(Problem::Malformed("message shorter than its fixed fields"));
        }
        let size = i32::from_be_bytes(be_array(buf, 8));
        if usize::try_from(size).ok() != Some(buf.len() - LOG_OVERHEAD) {
            return Err(Problem::Malformed("message size does not match the entry"));
        }
        let attributes = buf[ATTRIBUTES_AT] as i8;
        let codec = (attributes & CODEC_MASK) as u8;
        let compression = match Compression::from_id(codec) {
            Some(Compression::Zstd) | None => return Err(Problem::UnknownCodec(codec)),
            Some(c) => c,
        };
        let (timestamp, timestamp_type, mut pos) = if magic == 0 {
            (NO_TIMESTAMP, TimestampType::NoTimestamp, ATTRIBUTES_AT + 1)
        } else {
            let timestamp_type = if attributes & TIMESTAMP_TYPE_BIT != 0 {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            };
            let timestamp = i64::from_be_bytes(be_array(buf, ATTRIBUTES_AT + 1));
            (timestamp, timestamp_type, ATTRIBUTES_AT + 9)
        };
        let key = nullable(
            &entry,
            &mut pos,
            ("truncated key length", "invalid key length"),
        )?;
        let value = nullable(
            &entry,
            &mut pos,
            ("truncated value length", "invalid value length"),
        )?;
        if pos != entry.len() {
            return Err(Problem::Malformed("bytes left after the value"));
        }
        Ok(LegacyMessage {
            offset: i64::from_be_bytes(be_array(buf, 0)),
            magic,
            attributes,
            crc: u32::from_be_bytes(be_array(buf, CRC_AT)),
            timestamp,
            timestamp_type,
            key,
            value,
            compression,
            position,
            entry,
        })
    }

    /// The codec of a wrapper's value ([`Compression::None`] for a plain message).
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Whether this is a compressed wrapper.
    pub fn is_compressed(&self) -> bool {
        self.compression != Compression::None
    }

    /// Size of the entry in bytes (offset and size fields included).
    pub fn size(&self) -> usize {
        self.entry.len()
    }

    /// Byte position of the entry in the buffer it was read from.
    pub fn position(&self) -> usize {
        self.position
    }

    /// The CRC32 computed over the message (magic to the end).
    fn computed_crc(&self) -> u32 {
        crc32fast::hash(&self.entry[MAGIC_AT..])
    }

    /// Checks the stored CRC32 (IEEE) against the message.
    pub fn verify_crc(&self) -> Result<(), RecordsError> {
        let computed = self.computed_crc();
        if computed != self.crc {
            return Err(RecordsError::CrcMismatch {
                position: self.position,
                stored: self.crc,
                computed,
            });
        }
        Ok(())
    }

    /// The messages this entry stands for, with absolute offsets: itself if uncompressed,
    /// else the inner messages of the wrapper (decompressed with the default limit; each
    /// inner CRC is checked).
    pub fn messages(&self) -> Result<Vec<LegacyMessage>, RecordsError> {
        self.messages_with_limit(DEFAULT_MAX_DECOMPRESSED_SIZE)
    }

    /// [`LegacyMessage::messages`] with an explicit decompressed size limit.
    pub fn messages_with_limit(
        &self,
        max_decompressed: usize,
    ) -> Result<Vec<LegacyMessage>, RecordsError> {
        if !self.is_compressed() {
            return Ok(vec![self.clone()]);
        }
        let Some(value) = &self.value else {
            return Err(RecordsError::MalformedMessage {
                position: self.position,
                reason: "compressed wrapper has a null value",
            });
        };
        let data = if self.magic == 0 && self.compression == Compression::Lz4 {
            let mut fixed = value.to_vec();
            fix_lz4_header_checksum(&mut fixed);
            decompress(self.compression, &fixed, max_decompressed)?
        } else {
            decompress(self.compression, value, max_decompressed)?
        };
        let mut inner = self.inner_messages(&data)?;
        if self.magic > 0 {
            let last = inner.last().map_or(0, |m| m.offset);
            let base = self.offset.wrapping_sub(last);
            for message in &mut inner {
                message.offset = base.wrapping_add(message.offset);
                if self.timestamp_type == TimestampType::LogAppendTime {
                    message.timestamp = self.timestamp;
                    message.timestamp_type = TimestampType::LogAppendTime;
                }
            }
        }
        Ok(inner)
    }

    /// Decodes the inner message set of a wrapper, as stored (offsets not yet adjusted).
    fn inner_messages(&self, data: &Bytes) -> Result<Vec<LegacyMessage>, RecordsError> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < data.len() {
            let location = RecordLocation {
                batch_position: self.position,
                record_index: i32::try_from(out.len()).unwrap_or(i32::MAX),
                position: pos,
                decompressed: true,
            };
            let malformed = |reason| RecordsError::MalformedRecord { location, reason };
            let rest = &data[pos..];
            if rest.len() < LOG_OVERHEAD {
                return Err(malformed("truncated inner message"));
            }
            let size = i32::from_be_bytes(be_array(rest, 8));
            let len = usize::try_from(size)
                .ok()
                .and_then(|s| s.checked_add(LOG_OVERHEAD))
                .filter(|&len| len <= rest.len())
                .ok_or(malformed("inner message size runs past the data"))?;
            let message = LegacyMessage::decode(data.slice(pos..pos + len), self.position)
                .map_err(|problem| match problem {
                    Problem::Malformed(reason) => malformed(reason),
                    Problem::BadMagic(_) => malformed("bad inner message magic"),
                    Problem::UnknownCodec(_) => malformed("unknown inner message codec"),
                })?;
            if message.magic != self.magic {
                return Err(malformed("inner message magic differs from the wrapper's"));
            }
            if message.is_compressed() {
                return Err(malformed("inner message is itself compressed"));
            }
            if message.computed_crc() != message.crc {
                return Err(malformed("inner message CRC mismatch"));
            }
            out.push(message);
            pos += len;
        }
        Ok(out)
    }
}

/// Reads an i32 length (-1 = null) and that many bytes at `pos`.
fn nullable(
    entry: &Bytes,
    pos: &mut usize,
    (truncated, invalid): (&'static str, &'static str),
) -> Result<Option<Bytes>, Problem> {
    let at = *pos;
    let Some(len) = entry.get(at..at + 4) else {
        return Err(Problem::Malformed(truncated));
    };
    let len = i32::from_be_bytes(be_array(len, 0));
    *pos = at + 4;
    if len == -1 {
        return Ok(None);
    }
    let Some(len) = usize::try_from(len)
        .ok()
        .filter(|&l| l <= entry.len() - *pos)
    else {
        return Err(Problem::Malformed(invalid));
    };
    let bytes = entry.slice(*pos..*pos + len);
    *pos += len;
    Ok(Some(bytes))
}

/// Kafka before 0.10 (magic 0) computed the LZ4 frame header checksum over the wrong bytes;
/// recompute it so a conforming decoder accepts the frame.
fn fix_lz4_header_checksum(frame: &mut [u8]) {
    const MAGIC: [u8; 4] = [0x04, 0x22, 0x4d, 0x18];
    if frame.len() < 7 || frame[..4] != MAGIC {
        return;
    }
    let flg = frame[4];
    let mut descriptor_end = 6;
    if flg & 0x08 != 0 {
        descriptor_end += 8; // content size
    }
    if flg & 0x01 != 0 {
        descriptor_end += 4; // dictionary id
    }
    if frame.len() <= descriptor_end {
        return;
    }
    frame[descriptor_end] = (xxh32_short(&frame[4..descriptor_end]) >> 8) as u8;
}

/// XXH32 with seed 0 for inputs shorter than 16 bytes (a frame descriptor is at most 14).
pub(crate) fn xxh32_short(input: &[u8]) -> u32 {
    const P1: u32 = 0x9E37_79B1;
    const P2: u32 = 0x85EB_CA77;
    const P3: u32 = 0xC2B2_AE3D;
    const P4: u32 = 0x27D4_EB2F;
    const P5: u32 = 0x1656_67B1;
    debug_assert!(input.len() < 16);
    let mut h = P5.wrapping_add(input.len() as u32);
    let mut chunks = input.chunks_exact(4);
    for chunk in &mut chunks {
        let word = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        h = h
            .wrapping_add(word.wrapping_mul(P3))
            .rotate_left(17)
            .wrapping_mul(P4);
    }
    for &byte in chunks.remainder() {
        h = h
            .wrapping_add(u32::from(byte).wrapping_mul(P5))
            .rotate_left(11)
            .wrapping_mul(P1);
    }
    h ^= h >> 15;
    h = h.wrapping_mul(P2);
    h ^= h >> 13;
    h = h.wrapping_mul(P3);
    h ^ (h >> 16)
}
