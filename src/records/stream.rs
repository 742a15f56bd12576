//! Streaming record iteration: the records of a batch read straight off the decompressor,
//! one at a time, keys, values and header bytes skipped rather than kept.
//!
//! This is Kafka's `DefaultRecordBatch.skipKeyValueIterator` (`PartialDefaultRecord`), the
//! iterator its `LogValidator` uses when a compressed batch is stored as it came: what a
//! batch costs to check is its compressed size plus the decompressor's state and a small
//! read buffer, however far the batch inflates. [`RecordBatch::section`] instead
//! decompresses the whole batch into one buffer, which the records then borrow.
//!
//! Every structural check of [`RecordBatch::section`] iteration is made here too (record
//! count, offset deltas, lengths that match their fields), with the same error variants;
//! positions count bytes of the decompressed stream (or of the input for an uncompressed
//! batch).

use std::io::{self, BufRead, BufReader, Read};

use super::batch::{RECORD_BATCH_OVERHEAD, RecordBatch};
use super::compression::{Compression, snappy_block_into, xerial_blocks};
use super::error::{RecordLocation, RecordsError};
use super::record::{RecordContext, parse_record};
use crate::varint::{decode_varint, decode_varlong};

/// Bytes read from the decompressor at a time.
const READ_BUFFER: usize = 16 * 1024;

/// What a streaming pass learns of one record: its fixed fields and the sizes of the
/// parts it skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordSummary {
    /// Absolute offset (base offset + offset delta).
    pub offset: i64,
    /// Absolute timestamp (base timestamp + delta, or the log append time).
    pub timestamp: i64,
    /// Offset relative to the batch's base offset.
    pub offset_delta: i32,
    /// Timestamp relative to the batch's base timestamp.
    pub timestamp_delta: i64,
    /// Record attributes.
    pub attributes: i8,
    /// Length of the key, `None` when the key is null.
    pub key_len: Option<usize>,
    /// Length of the value, `None` when the value is null.
    pub value_len: Option<usize>,
    /// Number of headers.
    pub header_count: usize,
}

impl RecordSummary {
    /// Whether the record has a (non-null) key, as Kafka's `Record.hasKey`.
    pub fn has_key(&self) -> bool {
        self.key_len.is_some()
    }
}

/// Streaming iterator over a batch's records (see the module documentation), made by
/// [`RecordBatch::skip_key_value_records`]. Stops after the first error.
pub struct SkipKeyValueRecords<'a> {
    input: Input<'a>,
    ctx: RecordContext,
    count: i32,
    index: i32,
    batch_position: usize,
    /// Added to stream positions for error reports (the records' start if uncompressed).
    origin: usize,
    decompressed: bool,
    done: bool,
}

impl std::fmt::Debug for SkipKeyValueRecords<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SkipKeyValueRecords")
            .field("codec", &self.input.codec)
            .field("count", &self.count)
            .field("index", &self.index)
            .field("position", &self.input.pos)
            .finish_non_exhaustive()
    }
}

impl RecordBatch {
    /// Iterates the records without decompressing the batch into memory: each record is
    /// read off the decompressor, its key, value and headers skipped (Kafka's
    /// `skipKeyValueIterator`). At most `max_decompressed` bytes are decompressed; more is
    /// [`RecordsError::DecompressedTooLarge`]. The CRC is not checked here.
    pub fn skip_key_value_records(&self, max_decompressed: usize) -> SkipKeyValueRecords<'_> {
        let header = self.header();
        let ctx = RecordContext::of(header);
        let data: &[u8] = &self.as_bytes()[RECORD_BATCH_OVERHEAD..];
        let codec = self.compression();
        let source: Box<dyn BufRead + '_> = match codec {
            Compression::None => Box::new(data),
            codec => Box::new(BufReader::with_capacity(
                READ_BUFFER,
                Limited {
                    inner: decoder(codec, data, max_decompressed),
                    left: max_decompressed,
                },
            )),
        };
        let decompressed = codec != Compression::None;
        SkipKeyValueRecords {
            input: Input {
                src: source,
                pos: 0,
                codec,
                limit: max_decompressed,
            },
            ctx,
            count: header.record_count,
            index: 0,
            batch_position: self.position(),
            origin: if decompressed {
                0
            } else {
                self.position() + RECORD_BATCH_OVERHEAD
            },
            decompressed,
            done: false,
        }
    }
}

/// A streaming decoder of `codec` over `data`. Their state is small (gzip's 32 KiB
/// window, lz4 blocks of at most 4 MiB, a snappy block) except zstd's window, which the
/// frame header chooses: libzstd's default limit of 128 MiB is kept, as Kafka's zstd-jni
/// keeps it, because Java producers at the highest levels write such frames (2-8 MiB at
/// ordinary levels); its pages are touched only as far as the data inflates.
pub(super) fn decoder<'a>(codec: Compression, data: &'a [u8], limit: usize) -> Box<dyn Read + 'a> {
    match codec {
        Compression::None => Box::new(data),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(data)),
        Compression::Snappy => Box::new(SnappyReader::new(data, limit)),
        Compression::Lz4 => Box::new(lz4_flex::frame::FrameDecoder::new(data)),
        Compression::Zstd => match zstd::stream::read::Decoder::with_buffer(data) {
            Ok(decoder) => Box::new(decoder),
            Err(error) => Box::new(Failing(Some(error))),
        },
    }
}

/// A reader whose first read fails (a decoder that could not be set up).
struct Failing(Option<io::Error>);

impl Read for Failing {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(self
            .0
            .take()
            .unwrap_or_else(|| io::Error::other("no decoder")))
    }
}

/// Marks the error a [`Limited`] reader returns once its limit is passed.
#[derive(Debug)]
pub(super) struct LimitExceeded;

impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("decompressed size limit exceeded")
    }
}

impl std::error::Error for LimitExceeded {}

/// Passes at most `left` bytes through, then fails with [`LimitExceeded`] if the inner
/// reader has more.
pub(super) struct Limited<R> {
    pub(super) inner: R,
    pub(super) left: usize,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other(LimitExceeded)),
            };
        }
        let want = buf.len().min(self.left);
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n;
        Ok(n)
    }
}

/// Snappy, a block at a time: xerial blocks one after another, or the single raw block
/// librdkafka writes (which, having no framing, can only be decompressed whole).
struct SnappyReader<'a> {
    input: &'a [u8],
    /// Position of the next xerial block, `None` for a raw block.
    next: Option<usize>,
    raw_done: bool,
    block: Vec<u8>,
    block_pos: usize,
    limit: usize,
}

impl<'a> SnappyReader<'a> {
    fn new(input: &'a [u8], limit: usize) -> SnappyReader<'a> {
        SnappyReader {
            input,
            next: input
                .starts_with(&super::compression::XERIAL_MAGIC)
                .then_some(0),
            raw_done: false,
            block: Vec::new(),
            block_pos: 0,
            limit,
        }
    }

    /// Decompresses the next block into `self.block`; `false` at the end.
    fn refill(&mut self) -> Result<bool, RecordsError> {
        self.block.clear();
        self.block_pos = 0;
        let block = match &mut self.next {
            Some(pos) => match xerial_blocks(self.input, pos)? {
                Some(block) => block,
                None => return Ok(false),
            },
            None if self.raw_done => return Ok(false),
            None => {
                self.raw_done = true;
                self.input
            }
        };
        snappy_block_into(block, &mut self.block, self.limit)?;
        Ok(true)
    }
}

impl Read for SnappyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.block_pos == self.block.len() {
            match self.refill() {
                Ok(true) => {}
                Ok(false) => return Ok(0),
                Err(RecordsError::DecompressedTooLarge { .. }) => {
                    return Err(io::Error::other(LimitExceeded));
                }
                Err(error) => return Err(io::Error::other(error.to_string())),
            }
        }
        let n = buf.len().min(self.block.len() - self.block_pos);
        buf[..n].copy_from_slice(&self.block[self.block_pos..self.block_pos + n]);
        self.block_pos += n;
        Ok(n)
    }
}

/// The decompressed stream with its position.
struct Input<'a> {
    src: Box<dyn BufRead + 'a>,
    pos: usize,
    codec: Compression,
    limit: usize,
}

impl Input<'_> {
    fn error(&self, error: io::Error) -> RecordsError {
        if error
            .get_ref()
            .is_some_and(|inner| inner.is::<LimitExceeded>())
        {
            return RecordsError::DecompressedTooLarge {
                codec: self.codec,
                limit: self.limit,
            };
        }
        RecordsError::Decompression {
            codec: self.codec,
            reason: error.to_string(),
        }
    }

    /// The next byte, `None` at the end of the stream.
    #[inline]
    fn byte(&mut self) -> Result<Option<u8>, RecordsError> {
        let byte = match self.src.fill_buf() {
            Ok(buf) => buf.first().copied(),
            Err(error) => return Err(self.error(error)),
        };
        if byte.is_some() {
            self.src.consume(1);
            self.pos += 1;
        }
        Ok(byte)
    }

    /// Skips up to `n` bytes; returns how many there were before the end of the stream.
    fn skip(&mut self, n: usize) -> Result<usize, RecordsError> {
        let mut left = n;
        while left > 0 {
            let available = match self.src.fill_buf() {
                Ok(buf) => buf.len(),
                Err(error) => return Err(self.error(error)),
            };
            if available == 0 {
                break;
            }
            let step = available.min(left);
            self.src.consume(step);
            self.pos += step;
            left -= step;
        }
        Ok(n - left)
    }

    /// Reads the rest of the stream (within the limit), returning its length.
    fn drain(&mut self) -> Result<usize, RecordsError> {
        self.skip(usize::MAX)
    }
}

/// Why reading a field inside a record body stopped.
enum Stop {
    /// The field does not fit the record body, or does not decode: the static reason.
    Field(&'static str),
    /// The stream ended inside the record body.
    End,
    /// The offset delta is outside `0..=lastOffsetDelta`.
    OffsetDelta(i32),
    /// Any other error.
    Error(RecordsError),
}

impl From<RecordsError> for Stop {
    fn from(error: RecordsError) -> Stop {
        Stop::Error(error)
    }
}

/// Reads fields of one record body of known length off the stream.
struct Body<'i, 'a> {
    input: &'i mut Input<'a>,
    left: usize,
}

impl Body<'_, '_> {
    /// Gathers the bytes of a varint of at most `max` bytes (fewer at the body's end).
    #[inline]
    fn varint_bytes(&mut self, max: usize, out: &mut [u8; 10]) -> Result<usize, Stop> {
        let mut len = 0;
        while len < max && self.left > 0 {
            let byte = self.input.byte()?.ok_or(Stop::End)?;
            self.left -= 1;
            out[len] = byte;
            len += 1;
            if byte < 0x80 {
                break;
            }
        }
        Ok(len)
    }

    fn varint(&mut self, what: &'static str) -> Result<i32, Stop> {
        let mut bytes = [0u8; 10];
        let len = self.varint_bytes(5, &mut bytes)?;
        decode_varint(&bytes[..len])
            .map(|(value, _)| value)
            .map_err(|_| Stop::Field(what))
    }

    fn varlong(&mut self, what: &'static str) -> Result<i64, Stop> {
        let mut bytes = [0u8; 10];
        let len = self.varint_bytes(10, &mut bytes)?;
        decode_varlong(&bytes[..len])
            .map(|(value, _)| value)
            .map_err(|_| Stop::Field(what))
    }

    fn skip(&mut self, len: usize, what: &'static str) -> Result<(), Stop> {
        if len > self.left {
            return Err(Stop::Field(what));
        }
        if self.input.skip(len)? < len {
            return Err(Stop::End);
        }
        self.left -= len;
        Ok(())
    }

    /// A varint length (-1 = null) and that many bytes, skipped.
    fn nullable(
        &mut self,
        len_err: &'static str,
        neg_err: &'static str,
        short_err: &'static str,
    ) -> Result<Option<usize>, Stop> {
        match self.varint(len_err)? {
            -1 => Ok(None),
            len if len < 0 => Err(Stop::Field(neg_err)),
            len => {
                self.skip(len as usize, short_err)?;
                Ok(Some(len as usize))
            }
        }
    }
}

impl SkipKeyValueRecords<'_> {
    /// Records not yet read, per the header's count.
    pub fn remaining(&self) -> usize {
        if self.done {
            0
        } else {
            (self.count - self.index) as usize
        }
    }

    fn location(&self, position: usize) -> RecordLocation {
        RecordLocation {
            batch_position: self.batch_position,
            record_index: self.index,
            position: self.origin + position,
            decompressed: self.decompressed,
        }
    }

    fn step(&mut self) -> Result<Option<RecordSummary>, RecordsError> {
        let start = self.input.pos;
        let location = self.location(start);
        if self.index == self.count {
            let extra = self.input.drain()?;
            if extra == 0 {
                return Ok(None);
            }
            return Err(RecordsError::TrailingRecordBytes {
                location,
                declared: self.count,
                extra,
            });
        }
        let ctx = self.ctx;
        // Fast path: the whole record is in the read buffer (always, for an uncompressed
        // batch): parse it there, as the buffered iterator does.
        let buffered = match self.input.src.fill_buf() {
            Ok(buffered) => buffered,
            Err(error) => return Err(self.input.error(error)),
        };
        if let Ok((body_len, len_len)) = decode_varint(buffered)
            && usize::try_from(body_len).is_ok_and(|len| len <= buffered.len() - len_len)
        {
            let raw = parse_record(buffered, 0, &ctx, location, |_, _, _| {})?;
            let span_len = |(start, end): (usize, usize)| end - start;
            let record = summary(
                &ctx,
                raw.attributes,
                raw.timestamp_delta,
                raw.offset_delta,
                raw.key.map(span_len),
                raw.value.map(span_len),
                raw.header_count,
            );
            self.input.src.consume(raw.end);
            self.input.pos += raw.end;
            self.index += 1;
            return Ok(Some(record));
        }
        let malformed = |reason| RecordsError::MalformedRecord { location, reason };
        // The length varint is read from the stream itself.
        let mut bytes = [0u8; 10];
        let mut len_len = 0;
        while len_len < 5 {
            let Some(byte) = self.input.byte()? else {
                break;
            };
            bytes[len_len] = byte;
            len_len += 1;
            if byte < 0x80 {
                break;
            }
        }
        if len_len == 0 {
            return Err(RecordsError::RecordCountMismatch {
                location,
                declared: self.count,
                found: self.index,
            });
        }
        let (body_len, _) =
            decode_varint(&bytes[..len_len]).map_err(|_| malformed("bad record length"))?;
        if body_len < 0 {
            return Err(malformed("negative record length"));
        }
        let body_len = body_len as usize;
        let mut body = Body {
            input: &mut self.input,
            left: body_len,
        };
        let result = read_body(&mut body, &ctx);
        let left = body.left;
        let summary = match result {
            Ok(summary) if left == 0 => summary,
            Ok(_) => return Err(malformed("record length does not match its fields")),
            Err(Stop::Field(reason)) => return Err(malformed(reason)),
            Err(Stop::Error(error)) => return Err(error),
            Err(Stop::OffsetDelta(offset_delta)) => {
                return Err(RecordsError::OffsetDeltaOutOfRange {
                    location,
                    offset_delta,
                    last_offset_delta: ctx.last_offset_delta,
                });
            }
            Err(Stop::End) => {
                return Err(RecordsError::TruncatedRecord {
                    location,
                    length: len_len + body_len,
                    available: self.input.pos - start,
                });
            }
        };
        self.index += 1;
        Ok(Some(summary))
    }
}

/// Reads one record body (everything after its length), skipping its variable parts.
fn read_body(body: &mut Body<'_, '_>, ctx: &RecordContext) -> Result<RecordSummary, Stop> {
    if body.left == 0 {
        return Err(Stop::Field("empty record body"));
    }
    let attributes = body.input.byte()?.ok_or(Stop::End)? as i8;
    body.left -= 1;
    let timestamp_delta = body.varlong("bad timestamp delta")?;
    let offset_delta = body.varint("bad offset delta")?;
    if offset_delta < 0 || offset_delta > ctx.last_offset_delta {
        return Err(Stop::OffsetDelta(offset_delta));
    }
    let key_len = body.nullable(
        "bad key length",
        "negative key length",
        "key runs past the record",
    )?;
    let value_len = body.nullable(
        "bad value length",
        "negative value length",
        "value runs past the record",
    )?;
    let header_count = body.varint("bad header count")?;
    if header_count < 0 {
        return Err(Stop::Field("negative header count"));
    }
    // Each header takes at least two bytes, so the body's length bounds this loop.
    for _ in 0..header_count {
        let key_len = body.varint("bad header key length")?;
        if key_len < 0 {
            return Err(Stop::Field("negative header key length"));
        }
        body.skip(key_len as usize, "header key runs past the record")?;
        body.nullable(
            "bad header value length",
            "negative header value length",
            "header value runs past the record",
        )?;
    }
    Ok(summary(
        ctx,
        attributes,
        timestamp_delta,
        offset_delta,
        key_len,
        value_len,
        header_count as usize,
    ))
}

fn summary(
    ctx: &RecordContext,
    attributes: i8,
    timestamp_delta: i64,
    offset_delta: i32,
    key_len: Option<usize>,
    value_len: Option<usize>,
    header_count: usize,
) -> RecordSummary {
    let timestamp = match ctx.log_append_time {
        Some(t) => t,
        None => ctx.base_timestamp.wrapping_add(timestamp_delta),
    };
    RecordSummary {
        offset: ctx.base_offset.wrapping_add(i64::from(offset_delta)),
        timestamp,
        offset_delta,
        timestamp_delta,
        attributes,
        key_len,
        value_len,
        header_count,
    }
}

impl Iterator for SkipKeyValueRecords<'_> {
    type Item = Result<RecordSummary, RecordsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(summary)) => Some(Ok(summary)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(error) => {
                self.done = true;
                Some(Err(error))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining() + 1))
    }
}

impl std::iter::FusedIterator for SkipKeyValueRecords<'_> {}
