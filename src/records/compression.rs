//! The four Kafka compression codecs, with bounded decompression.
//!
//! * gzip: RFC 1952 members (several concatenated members are accepted).
//! * snappy: Java clients write the xerial framing (a 16-byte header, then blocks each
//!   prefixed by a big-endian i32 length); librdkafka writes one raw snappy block. Both are
//!   read (told apart by the xerial magic); the xerial framing is written, as Java does.
//! * lz4: the LZ4 frame format, 64 KiB independent blocks, no checksums (as Kafka writes).
//! * zstd: zstd frames, decoded as a stream so a frame without a content size works. The
//!   decoder keeps libzstd's default window limit (128 MiB), the one allocation a frame
//!   header can ask for beyond the output limit.
//!
//! Every decompression takes a limit and fails with
//! [`RecordsError::DecompressedTooLarge`] rather than producing more, so a small hostile
//! batch cannot make the reader allocate without bound. To check a batch without holding
//! its inflated records at all, stream it with
//! [`RecordBatch::skip_key_value_records`](super::RecordBatch::skip_key_value_records): the
//! same decoders read incrementally (snappy a block at a time), the limit counted, not
//! allocated.

use std::fmt;
use std::io::{self, Read, Write};

use bytes::{BufMut, Bytes, BytesMut};

use super::error::RecordsError;

/// Default cap on the decompressed size of one batch (or legacy wrapper message): 256 MiB.
///
/// Kafka bounds the *compressed* size of a batch (`message.max.bytes`, 1 MiB by default) and
/// the producer bounds the uncompressed size of what it batches (`batch.size`, and
/// `max.request.size` for a single large record), so real batches decompress to a few MiB at
/// most, and deployments that raise those limits rarely go past 100 MiB. 256 MiB leaves
/// ample head room for those while keeping the worst case of a decompression bomb (a 1 MiB
/// zstd batch can expand to gigabytes) to a fixed, survivable allocation per batch being
/// decoded. Callers who know their limits can pass their own to the `*_with_limit` methods.
pub const DEFAULT_MAX_DECOMPRESSED_SIZE: usize = 256 * 1024 * 1024;

/// The codec of a record batch (attribute bits 0-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// No compression (id 0).
    #[default]
    None,
    /// gzip (id 1).
    Gzip,
    /// snappy (id 2).
    Snappy,
    /// LZ4 frame format (id 3).
    Lz4,
    /// zstd (id 4; record batch v2 only).
    Zstd,
}

impl Compression {
    /// The codec for an attribute id (0-4), or `None` for an unknown id.
    pub fn from_id(id: u8) -> Option<Compression> {
        Some(match id {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            _ => return None,
        })
    }

    /// The codec's id as stored in the attributes.
    pub fn id(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        })
    }
}

/// The 8-byte magic that opens a xerial snappy stream.
pub(crate) const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// Magic, version (i32) and minimum compatible version (i32).
const XERIAL_HEADER_LEN: usize = 16;
/// Uncompressed bytes per xerial block, the xerial library's default.
const XERIAL_BLOCK_SIZE: usize = 32 * 1024;
/// zstd level Kafka uses by default.
const ZSTD_LEVEL: i32 = 3;
/// Upper bound on snappy's expansion ratio (64-byte copies from 3-byte elements), rounded up.
const SNAPPY_MAX_EXPANSION: usize = 32;
/// Never reserve more than this up front from a size the data itself claims.
const MAX_INITIAL_RESERVE: usize = 16 * 1024 * 1024;
/// Nor more than this many times the compressed input: a few bytes claiming megabytes (a
/// forged gzip trailer or zstd content size) reserve little, and data that honestly expands
/// further grows its buffer as it is produced.
const MAX_INITIAL_EXPANSION: usize = 16;

/// Compresses `input` with `codec`, appending the result to `out`.
///
/// [`Compression::None`] appends `input` unchanged.
pub fn compress(codec: Compression, input: &[u8], out: &mut BytesMut) -> Result<(), RecordsError> {
    let io_err = |e: io::Error| RecordsError::Compression {
        codec,
        reason: e.to_string(),
    };
    let mut encoder =
        Encoder::new(codec, None, Some(input.len() as u64), out.writer()).map_err(io_err)?;
    encoder.write_all(input).map_err(io_err)?;
    encoder.finish().map_err(io_err)
}

/// A streaming compressor of one codec writing into `W`, the one implementation behind
/// [`compress`] and batch re-compression: gzip at `level` 1-9 (else zlib's default),
/// snappy in the xerial framing Java clients write, lz4 frames of 64 KiB independent
/// blocks, zstd at `level` (Kafka's default 3).
pub(crate) enum Encoder<W: Write> {
    /// No codec: bytes pass through.
    None(W),
    /// gzip.
    Gzip(flate2::write::GzEncoder<W>),
    /// snappy, xerial framing.
    Snappy(Box<XerialWriter<W>>),
    /// lz4 frame.
    Lz4(lz4_flex::frame::FrameEncoder<W>),
    /// zstd frame.
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    /// A compressor for `codec` writing to `out`. `content_size`, when known, goes in the
    /// zstd frame header so readers can size their buffer.
    pub(crate) fn new(
        codec: Compression,
        level: Option<i32>,
        content_size: Option<u64>,
        mut out: W,
    ) -> io::Result<Self> {
        Ok(match codec {
            Compression::None => Encoder::None(out),
            Compression::Gzip => {
                let level = match level {
                    Some(level @ 1..=9) => flate2::Compression::new(level as u32),
                    _ => flate2::Compression::default(),
                };
                Encoder::Gzip(flate2::write::GzEncoder::new(out, level))
            }
            Compression::Snappy => {
                out.write_all(&XERIAL_MAGIC)?;
                out.write_all(&1i32.to_be_bytes())?; // version
                out.write_all(&1i32.to_be_bytes())?; // minimum compatible version
                Encoder::Snappy(Box::new(XerialWriter {
                    out,
                    pending: Vec::with_capacity(XERIAL_BLOCK_SIZE),
                    encoder: snap::raw::Encoder::new(),
                }))
            }
            Compression::Lz4 => {
                let info = lz4_flex::frame::FrameInfo::new()
                    .block_size(lz4_flex::frame::BlockSize::Max64KB)
                    .block_mode(lz4_flex::frame::BlockMode::Independent);
                Encoder::Lz4(lz4_flex::frame::FrameEncoder::with_frame_info(info, out))
            }
            Compression::Zstd => {
                let mut encoder =
                    zstd::stream::write::Encoder::new(out, level.unwrap_or(ZSTD_LEVEL))?;
                if let Some(size) = content_size {
                    encoder.set_pledged_src_size(Some(size))?;
                    encoder.include_contentsize(true)?;
                }
                Encoder::Zstd(encoder)
            }
        })
    }

    /// Compresses all of `data`.
    pub(crate) fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Encoder::None(out) => out.write_all(data),
            Encoder::Gzip(encoder) => encoder.write_all(data),
            Encoder::Snappy(writer) => writer.write_all(data),
            Encoder::Lz4(encoder) => encoder.write_all(data),
            Encoder::Zstd(encoder) => encoder.write_all(data),
        }
    }

    /// Ends the stream (trailers, the last block).
    pub(crate) fn finish(self) -> io::Result<()> {
        match self {
            Encoder::None(_) => Ok(()),
            Encoder::Gzip(encoder) => encoder.finish().map(drop),
            Encoder::Snappy(writer) => writer.finish(),
            Encoder::Lz4(encoder) => encoder.finish().map(drop).map_err(|error| match error {
                lz4_flex::frame::Error::IoError(error) => error,
                other => io::Error::other(other.to_string()),
            }),
            Encoder::Zstd(encoder) => encoder.finish().map(drop),
        }
    }
}

/// Streams the xerial snappy framing: 32 KiB blocks, each compressed on its own and
/// prefixed by its big-endian i32 length.
pub(crate) struct XerialWriter<W: Write> {
    out: W,
    pending: Vec<u8>,
    encoder: snap::raw::Encoder,
}

impl<W: Write> XerialWriter<W> {
    fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let room = XERIAL_BLOCK_SIZE - self.pending.len();
            let take = room.min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() == XERIAL_BLOCK_SIZE {
                self.flush_block()?;
            }
        }
        Ok(())
    }

    fn flush_block(&mut self) -> io::Result<()> {
        let block = self
            .encoder
            .compress_vec(&self.pending)
            .map_err(|error| io::Error::other(error.to_string()))?;
        // A block of at most 32 KiB compresses to far less than 2 GiB.
        self.out.write_all(&(block.len() as i32).to_be_bytes())?;
        self.out.write_all(&block)?;
        self.pending.clear();
        Ok(())
    }

    fn finish(mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            self.flush_block()?;
        }
        Ok(())
    }
}

/// Decompresses `input`, refusing to produce more than `limit` bytes.
///
/// [`Compression::None`] copies `input` (still subject to the limit).
pub fn decompress(codec: Compression, input: &[u8], limit: usize) -> Result<Bytes, RecordsError> {
    let out = match codec {
        Compression::None => {
            if input.len() > limit {
                return Err(RecordsError::DecompressedTooLarge { codec, limit });
            }
            input.to_vec()
        }
        Compression::Gzip => {
            let hint = gzip_size_hint(input);
            let decoder = flate2::read::MultiGzDecoder::new(input);
            read_bounded(codec, decoder, input.len(), hint, limit)?
        }
        Compression::Snappy => {
            if input.starts_with(&XERIAL_MAGIC) {
                snappy_xerial_decompress(input, limit)?
            } else {
                snappy_raw_decompress(input, limit)?
            }
        }
        Compression::Lz4 => read_bounded(
            codec,
            lz4_flex::frame::FrameDecoder::new(input),
            input.len(),
            input.len().saturating_mul(4),
            limit,
        )?,
        Compression::Zstd => {
            let decoder = zstd::stream::read::Decoder::with_buffer(input)
                .map_err(|e| decompression_error(codec, &e))?;
            let hint = match zstd::zstd_safe::get_frame_content_size(input) {
                Ok(Some(size)) => usize::try_from(size).unwrap_or(usize::MAX),
                _ => input.len().saturating_mul(4),
            };
            read_bounded(codec, decoder, input.len(), hint, limit)?
        }
    };
    Ok(Bytes::from(out))
}

fn decompression_error(codec: Compression, e: &dyn fmt::Display) -> RecordsError {
    RecordsError::Decompression {
        codec,
        reason: e.to_string(),
    }
}

/// Reads a decoder to its end, failing once it yields more than `limit` bytes.
///
/// `hint` (what the data claims or a guess) only sizes the first allocation, and is itself
/// capped by the `input_len` compressed bytes, so a lying header cannot force a large
/// reservation.
fn read_bounded(
    codec: Compression,
    reader: impl Read,
    input_len: usize,
    hint: usize,
    limit: usize,
) -> Result<Vec<u8>, RecordsError> {
    let initial = hint
        .min(limit)
        .min(input_len.saturating_mul(MAX_INITIAL_EXPANSION))
        .min(MAX_INITIAL_RESERVE)
        .saturating_add(1);
    let mut out = Vec::with_capacity(initial);
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| decompression_error(codec, &e))?;
    if out.len() > limit {
        return Err(RecordsError::DecompressedTooLarge { codec, limit });
    }
    Ok(out)
}

/// gzip's trailer stores the uncompressed size modulo 2^32 (of the last member only).
fn gzip_size_hint(input: &[u8]) -> usize {
    match input.len().checked_sub(4).map(|at| &input[at..]) {
        Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]) as usize,
        _ => 0,
    }
}

fn snappy_raw_decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, RecordsError> {
    let mut out = Vec::new();
    snappy_block_into(input, &mut out, limit)?;
    Ok(out)
}

/// Decompresses one raw snappy block, appending to `out`, keeping `out` within `limit`.
pub(crate) fn snappy_block_into(
    block: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<(), RecordsError> {
    let codec = Compression::Snappy;
    let len = snap::raw::decompress_len(block).map_err(|e| decompression_error(codec, &e))?;
    // No snappy element expands more than 64/3 times, so a block cannot honestly claim
    // more than ~22 bytes per input byte: refuse before allocating for a lying header.
    if len / SNAPPY_MAX_EXPANSION > block.len() {
        return Err(decompression_error(
            codec,
            &"snappy block claims an impossible decompressed length",
        ));
    }
    if len > limit.saturating_sub(out.len()) {
        return Err(RecordsError::DecompressedTooLarge { codec, limit });
    }
    let start = out.len();
    out.resize(start + len, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|e| decompression_error(codec, &e))?;
    out.truncate(start + written);
    Ok(())
}

fn snappy_xerial_decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, RecordsError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(block) = xerial_blocks(input, &mut pos)? {
        snappy_block_into(block, &mut out, limit)?;
    }
    Ok(out)
}

/// The next compressed block of a xerial stream from `*pos` on (advancing `*pos` past it),
/// `None` at the end of the input.
pub(crate) fn xerial_blocks<'a>(
    input: &'a [u8],
    pos: &mut usize,
) -> Result<Option<&'a [u8]>, RecordsError> {
    let codec = Compression::Snappy;
    while *pos < input.len() {
        let rest = &input[*pos..];
        // A stream may be a concatenation of xerial streams, each with its own header.
        // A block length never starts with 0x82 (it would be negative), so this is exact.
        if rest.starts_with(&XERIAL_MAGIC) {
            if rest.len() < XERIAL_HEADER_LEN {
                return Err(decompression_error(codec, &"truncated xerial header"));
            }
            *pos += XERIAL_HEADER_LEN;
            continue;
        }
        let Some(&[a, b, c, d]) = rest.get(..4) else {
            return Err(decompression_error(codec, &"truncated xerial block length"));
        };
        let len = i32::from_be_bytes([a, b, c, d]);
        let len = usize::try_from(len)
            .map_err(|_| decompression_error(codec, &"negative xerial block length"))?;
        let Some(block) = rest.get(4..4 + len) else {
            return Err(decompression_error(
                codec,
                &"xerial block runs past the end",
            ));
        };
        *pos += 4 + len;
        return Ok(Some(block));
    }
    Ok(None)
}
