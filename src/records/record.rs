//! One record of a v2 batch and its headers, and the record decoder.

use bytes::Bytes;

use super::control::ControlRecordKey;
use super::error::{RecordLocation, RecordsError};
use crate::varint::{decode_varint, decode_varlong};

/// How a timestamp was assigned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    /// No timestamp at all (legacy magic 0 messages).
    NoTimestamp,
    /// Set by the producer when the record was created (attribute bit 3 clear).
    #[default]
    CreateTime,
    /// Set by the broker when the batch was appended to the log (attribute bit 3 set).
    LogAppendTime,
}

/// A record header: a UTF-8 key and an optional value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Header {
    /// The key; Kafka requires UTF-8 but the bytes are handed over unchecked
    /// (see [`Header::key_str`]).
    pub key: Bytes,
    /// The value, `None` when null on the wire.
    pub value: Option<Bytes>,
}

impl Header {
    /// A header from a key and an optional value.
    pub fn new(key: impl Into<Bytes>, value: Option<Bytes>) -> Header {
        Header {
            key: key.into(),
            value,
        }
    }

    /// The key as a string, if it is valid UTF-8.
    pub fn key_str(&self) -> Result<&str, std::str::Utf8Error> {
        std::str::from_utf8(&self.key)
    }
}

/// One decoded record. Keys, values and header values share the batch's buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Absolute offset: the batch's base offset plus `offset_delta`.
    pub offset: i64,
    /// Absolute timestamp: the batch's base timestamp plus `timestamp_delta`, or the batch's
    /// max timestamp when the batch uses log append time (as Kafka reports it).
    pub timestamp: i64,
    /// Offset relative to the batch's base offset.
    pub offset_delta: i32,
    /// Timestamp relative to the batch's base timestamp.
    pub timestamp_delta: i64,
    /// Record attributes (unused by Kafka so far, normally 0).
    pub attributes: i8,
    /// The key, `None` when null.
    pub key: Option<Bytes>,
    /// The value, `None` when null.
    pub value: Option<Bytes>,
    /// The headers in wire order (an empty `Vec` does not allocate).
    pub headers: Vec<Header>,
}

impl Record {
    /// The absolute offset (base offset + offset delta).
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// The absolute timestamp (base timestamp + delta, or the log append time).
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// Parses the key of a control record (only meaningful in a control batch).
    pub fn control_key(&self) -> Result<ControlRecordKey, RecordsError> {
        match &self.key {
            Some(key) => ControlRecordKey::parse(key),
            None => Err(RecordsError::InvalidControlRecord {
                reason: "control record has a null key",
            }),
        }
    }
}

/// What a record needs from its batch to compute absolute values.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RecordContext {
    pub base_offset: i64,
    pub base_timestamp: i64,
    /// `Some(max_timestamp)` when the batch uses log append time.
    pub log_append_time: Option<i64>,
    pub last_offset_delta: i32,
}

impl RecordContext {
    /// The context of the records of the batch with this header.
    pub(crate) fn of(header: &super::batch::BatchHeader) -> RecordContext {
        RecordContext {
            base_offset: header.base_offset,
            base_timestamp: header.base_timestamp,
            log_append_time: (header.timestamp_type() == super::TimestampType::LogAppendTime)
                .then_some(header.max_timestamp),
            last_offset_delta: header.last_offset_delta,
        }
    }
}

/// A byte range `start..end` in the records data.
pub(crate) type Span = (usize, usize);

/// The fixed fields of a record and where its variable parts are, as ranges of the data.
pub(crate) struct RawRecord {
    pub attributes: i8,
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<Span>,
    pub value: Option<Span>,
    /// Start of the first header (the headers run to `end`).
    pub headers_start: usize,
    pub header_count: usize,
    /// Position after the record.
    pub end: usize,
}

impl RawRecord {
    /// Absolute offset and timestamp.
    #[inline]
    pub fn absolute(&self, ctx: &RecordContext) -> (i64, i64) {
        let timestamp = match ctx.log_append_time {
            Some(t) => t,
            None => ctx.base_timestamp.wrapping_add(self.timestamp_delta),
        };
        (
            ctx.base_offset.wrapping_add(i64::from(self.offset_delta)),
            timestamp,
        )
    }
}

/// Reads fields inside one record body; errors are static reasons.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    #[inline]
    fn varint(&mut self, what: &'static str) -> Result<i32, &'static str> {
        let (value, len) = decode_varint(&self.buf[self.pos..]).map_err(|_| what)?;
        self.pos += len;
        Ok(value)
    }

    #[inline]
    fn varlong(&mut self, what: &'static str) -> Result<i64, &'static str> {
        let (value, len) = decode_varlong(&self.buf[self.pos..]).map_err(|_| what)?;
        self.pos += len;
        Ok(value)
    }

    /// Skips `len` bytes, returning their range in the body.
    #[inline]
    fn range(&mut self, len: usize, what: &'static str) -> Result<Span, &'static str> {
        let start = self.pos;
        if len > self.buf.len() - start {
            return Err(what);
        }
        self.pos = start + len;
        Ok((start, self.pos))
    }

    /// A varint length (-1 = null) followed by that many bytes.
    #[inline]
    fn nullable(
        &mut self,
        len_err: &'static str,
        neg_err: &'static str,
        short_err: &'static str,
    ) -> Result<Option<Span>, &'static str> {
        let len = self.varint(len_err)?;
        match len {
            -1 => Ok(None),
            len if len < 0 => Err(neg_err),
            len => self.range(len as usize, short_err).map(Some),
        }
    }

    /// One header: key (non-null) and nullable value.
    #[inline]
    fn header(&mut self) -> Result<(Span, Option<Span>), &'static str> {
        let key_len = self.varint("bad header key length")?;
        if key_len < 0 {
            return Err("negative header key length");
        }
        let key = self.range(key_len as usize, "header key runs past the record")?;
        let value = self.nullable(
            "bad header value length",
            "negative header value length",
            "header value runs past the record",
        )?;
        Ok((key, value))
    }
}

#[inline]
fn shift(offset: usize, (start, end): Span) -> Span {
    (offset + start, offset + end)
}

/// Parses and checks the record starting at `pos` in `data`, calling `on_header` with the
/// key and value ranges of each header (and, for the first, a safe capacity for all).
///
/// `location` describes `pos` for error reports. Ranges are positions in `data`.
#[inline]
pub(crate) fn parse_record(
    data: &[u8],
    pos: usize,
    ctx: &RecordContext,
    location: RecordLocation,
    mut on_header: impl FnMut(usize, Span, Option<Span>),
) -> Result<RawRecord, RecordsError> {
    let malformed = |reason| RecordsError::MalformedRecord { location, reason };
    let rest = &data[pos..];
    let (body_len, len_len) = decode_varint(rest).map_err(|_| malformed("bad record length"))?;
    if body_len < 0 {
        return Err(malformed("negative record length"));
    }
    let body_len = body_len as usize;
    if body_len > rest.len() - len_len {
        return Err(RecordsError::TruncatedRecord {
            location,
            length: len_len + body_len,
            available: rest.len(),
        });
    }
    let body = pos + len_len;
    let mut cur = Cursor {
        buf: &rest[len_len..len_len + body_len],
        pos: 0,
    };

    let attributes = match cur.buf.first() {
        Some(&b) => b as i8,
        None => return Err(malformed("empty record body")),
    };
    cur.pos = 1;
    let timestamp_delta = cur.varlong("bad timestamp delta").map_err(malformed)?;
    let offset_delta = cur.varint("bad offset delta").map_err(malformed)?;
    if offset_delta < 0 || offset_delta > ctx.last_offset_delta {
        return Err(RecordsError::OffsetDeltaOutOfRange {
            location,
            offset_delta,
            last_offset_delta: ctx.last_offset_delta,
        });
    }
    let key = cur
        .nullable(
            "bad key length",
            "negative key length",
            "key runs past the record",
        )
        .map_err(malformed)?;
    let value = cur
        .nullable(
            "bad value length",
            "negative value length",
            "value runs past the record",
        )
        .map_err(malformed)?;
    let header_count = cur.varint("bad header count").map_err(malformed)?;
    if header_count < 0 {
        return Err(malformed("negative header count"));
    }
    let headers_start = cur.pos;
    // Each header takes at least two bytes: never trust the count for a capacity.
    let capacity = (header_count as usize).min((body_len - headers_start) / 2);
    for _ in 0..header_count {
        let (hkey, hvalue) = cur.header().map_err(malformed)?;
        on_header(
            capacity,
            shift(body, hkey),
            hvalue.map(|span| shift(body, span)),
        );
    }
    if cur.pos != body_len {
        return Err(malformed("record length does not match its fields"));
    }
    Ok(RawRecord {
        attributes,
        timestamp_delta,
        offset_delta,
        key: key.map(|span| shift(body, span)),
        value: value.map(|span| shift(body, span)),
        headers_start: body + headers_start,
        header_count: header_count as usize,
        end: body + body_len,
    })
}

/// Reads one header of an already checked header section; `None` at its end.
#[inline]
pub(crate) fn next_header(section: &[u8], pos: &mut usize) -> Option<(Span, Option<Span>)> {
    let mut cur = Cursor {
        buf: section,
        pos: *pos,
    };
    let header = cur.header().ok()?;
    *pos = cur.pos;
    Some(header)
}

/// Decodes the record starting at `pos` in `data` into an owned [`Record`] that shares
/// `data`; returns it and the position after it.
#[inline]
pub(crate) fn decode_record(
    data: &Bytes,
    pos: usize,
    ctx: &RecordContext,
    location: RecordLocation,
) -> Result<(Record, usize), RecordsError> {
    let mut headers = Vec::new();
    let raw = parse_record(data, pos, ctx, location, |capacity, key, value| {
        if headers.capacity() == 0 {
            // `capacity` is bounded by the bytes left; cap it in memory too, since a
            // header (64 bytes) can take as little as two bytes of input.
            headers.reserve_exact(crate::codec::capped_capacity::<Header>(capacity));
        }
        headers.push(Header {
            key: data.slice(key.0..key.1),
            value: value.map(|(start, end)| data.slice(start..end)),
        });
    })?;
    let (offset, timestamp) = raw.absolute(ctx);
    let record = Record {
        offset,
        timestamp,
        offset_delta: raw.offset_delta,
        timestamp_delta: raw.timestamp_delta,
        attributes: raw.attributes,
        key: raw.key.map(|(start, end)| data.slice(start..end)),
        value: raw.value.map(|(start, end)| data.slice(start..end)),
        headers,
    };
    Ok((record, raw.end))
}
