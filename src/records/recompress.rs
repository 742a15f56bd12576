//! Re-compressing a record batch with another codec, streamed: what a broker does when a
//! topic's `compression.type` differs from the producer's codec (Kafka's
//! `LogValidator.buildRecordsAndAssignOffsets`).
//!
//! The records section of a v2 batch is the same bytes whatever the codec (the codec only
//! wraps them), so re-compression needs no record decoding: the section is read off the
//! source decompressor a chunk at a time and written straight into the target compressor.
//! The header is kept as it is (offsets, timestamps, producer id, epoch and sequence,
//! transactional and control flags, partition leader epoch) except the codec bits, the
//! length and the CRC. Memory is the decoder's and encoder's state plus the output, which
//! is capped by the caller (a broker passes `max.message.bytes`, the size Kafka checks a
//! re-compressed batch against).

use std::io::{self, Read, Write};

use bytes::Bytes;

use super::batch::{
    ATTRIBUTES_AT, CODEC_MASK, CRC_AT, LENGTH_AT, LOG_OVERHEAD, RECORD_BATCH_OVERHEAD, RecordBatch,
};
use super::compression::{Compression, Encoder};
use super::error::RecordsError;
use super::stream::{LimitExceeded, Limited, decoder};

/// Bytes moved from the decompressor to the compressor at a time.
const CHUNK: usize = 16 * 1024;
/// The output buffer is first sized for at most this many bytes; it grows as data comes.
const MAX_INITIAL_RESERVE: usize = 1024 * 1024;

impl RecordBatch {
    /// This batch with its records compressed with `codec` instead (the same batch, copied,
    /// if it already uses `codec`).
    ///
    /// `level` is Kafka's `compression.<codec>.level` (KIP-390): for gzip 1-9 (anything
    /// else is zlib's default, 6, Kafka's `-1`), for zstd any zstd level; lz4 and snappy
    /// have none here (`lz4_flex` has only LZ4's fast compressor, so Kafka's
    /// `compression.lz4.level` cannot be honoured). At most `max_decompressed` bytes are
    /// read off the source decompressor ([`RecordsError::DecompressedTooLarge`]) and the new
    /// batch may be at most `max_size` bytes ([`RecordsError::RecompressedTooLarge`]). The
    /// records are not checked (validate the batch first); the CRC is recomputed.
    pub fn recompress(
        &self,
        codec: Compression,
        level: Option<i32>,
        max_decompressed: usize,
        max_size: usize,
    ) -> Result<Bytes, RecordsError> {
        let source = self.compression();
        let data: &[u8] = &self.as_bytes()[RECORD_BATCH_OVERHEAD..];
        let mut out = Bounded {
            buf: Vec::with_capacity(
                self.size()
                    .saturating_mul(2)
                    .min(max_size)
                    .min(MAX_INITIAL_RESERVE),
            ),
            limit: max_size,
        };
        out.buf
            .extend_from_slice(&self.as_bytes()[..RECORD_BATCH_OVERHEAD]);
        let mut reader = Limited {
            inner: decoder(source, data, max_decompressed),
            left: max_decompressed,
        };
        let read_error = |error: io::Error| {
            if error
                .get_ref()
                .is_some_and(|inner| inner.is::<LimitExceeded>())
            {
                RecordsError::DecompressedTooLarge {
                    codec: source,
                    limit: max_decompressed,
                }
            } else {
                RecordsError::Decompression {
                    codec: source,
                    reason: error.to_string(),
                }
            }
        };
        let write_error = |error: io::Error| {
            if error
                .get_ref()
                .is_some_and(|inner| inner.is::<OutputLimit>())
            {
                RecordsError::RecompressedTooLarge {
                    codec,
                    limit: max_size,
                }
            } else {
                RecordsError::Compression {
                    codec,
                    reason: error.to_string(),
                }
            }
        };
        let mut encoder = Encoder::new(codec, level, None, &mut out).map_err(write_error)?;
        let mut chunk = vec![0u8; CHUNK];
        loop {
            let n = match reader.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(read_error(error)),
            };
            encoder.write_all(&chunk[..n]).map_err(write_error)?;
        }
        encoder.finish().map_err(write_error)?;
        let mut batch = out.buf;
        let length =
            i32::try_from(batch.len() - LOG_OVERHEAD).map_err(|_| RecordsError::TooLarge {
                what: "batch length",
            })?;
        batch[LENGTH_AT..LENGTH_AT + 4].copy_from_slice(&length.to_be_bytes());
        let attributes = i16::from_be_bytes([batch[ATTRIBUTES_AT], batch[ATTRIBUTES_AT + 1]]);
        let attributes = (attributes & !CODEC_MASK) | i16::from(codec.id());
        batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
        let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
        batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        Ok(Bytes::from(batch))
    }
}

/// Marks the error a [`Bounded`] writer returns once its limit would be passed.
#[derive(Debug)]
struct OutputLimit;

impl std::fmt::Display for OutputLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("re-compressed batch size limit exceeded")
    }
}

impl std::error::Error for OutputLimit {}

/// A growing buffer that refuses to pass `limit` bytes.
struct Bounded {
    buf: Vec<u8>,
    limit: usize,
}

impl Write for Bounded {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.len() > self.limit.saturating_sub(self.buf.len()) {
            return Err(io::Error::other(OutputLimit));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
