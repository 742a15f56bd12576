//! Iterating a records buffer: what a Fetch or Produce `records` field or a log segment holds.

use bytes::Bytes;

use super::batch::{LOG_OVERHEAD, MAGIC_AT, MAGIC_V2, RECORD_BATCH_OVERHEAD, RecordBatch};
use super::error::RecordsError;
use super::legacy::{LEGACY_MESSAGE_OVERHEAD_V0, LegacyMessage};

/// One entry of a records buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Batch {
    /// A record batch (magic 2).
    V2(RecordBatch),
    /// A legacy message (magic 0 or 1), possibly a compressed wrapper.
    Legacy(LegacyMessage),
}

impl Batch {
    /// The magic byte.
    pub fn magic(&self) -> i8 {
        match self {
            Batch::V2(_) => MAGIC_V2,
            Batch::Legacy(message) => message.magic,
        }
    }

    /// Offset of the last record (a legacy wrapper's offset is its last inner offset).
    pub fn last_offset(&self) -> i64 {
        match self {
            Batch::V2(batch) => batch.last_offset(),
            Batch::Legacy(message) => message.offset,
        }
    }

    /// Size of the entry in bytes.
    pub fn size(&self) -> usize {
        match self {
            Batch::V2(batch) => batch.size(),
            Batch::Legacy(message) => message.size(),
        }
    }

    /// Byte position of the entry in the buffer.
    pub fn position(&self) -> usize {
        match self {
            Batch::V2(batch) => batch.position(),
            Batch::Legacy(message) => message.position(),
        }
    }
}

/// Iterator over the batches of a records buffer, sharing it (no copies).
///
/// A partial batch at the end (a fetch response may end with one) stops the iteration
/// without an error; [`RecordBatches::is_truncated`] then reports it. Any other problem is
/// yielded as an error, after which the iterator ends. CRCs are not checked here: see
/// [`RecordBatch::validate`] and [`LegacyMessage::verify_crc`].
#[derive(Clone, Debug)]
pub struct RecordBatches {
    buf: Bytes,
    pos: usize,
    truncated: bool,
    done: bool,
}

impl RecordBatches {
    /// Iterates the batches in `buf`.
    pub fn new(buf: Bytes) -> RecordBatches {
        RecordBatches {
            buf,
            pos: 0,
            truncated: false,
            done: false,
        }
    }

    /// Whether the iteration ended at a trailing partial batch.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// The bytes not consumed yet (after the end: the partial batch, if any).
    pub fn remaining(&self) -> Bytes {
        self.buf.slice(self.pos..)
    }

    /// Byte position of the next entry.
    pub fn position(&self) -> usize {
        self.pos
    }

    fn next_entry(&mut self) -> Result<Option<Batch>, RecordsError> {
        let position = self.pos;
        let rest = &self.buf[position..];
        if rest.is_empty() {
            return Ok(None);
        }
        if rest.len() < LOG_OVERHEAD {
            self.truncated = true;
            return Ok(None);
        }
        let length = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
        if length < LEGACY_MESSAGE_OVERHEAD_V0 as i32 {
            return Err(RecordsError::InvalidBatchLength { position, length });
        }
        if rest.len() <= MAGIC_AT {
            self.truncated = true;
            return Ok(None);
        }
        let magic = rest[MAGIC_AT] as i8;
        if !(0..=MAGIC_V2).contains(&magic) {
            return Err(RecordsError::BadMagic { position, magic });
        }
        if magic == MAGIC_V2 && (length as usize) < RECORD_BATCH_OVERHEAD - LOG_OVERHEAD {
            return Err(RecordsError::InvalidBatchLength { position, length });
        }
        let size = length as usize + LOG_OVERHEAD;
        if rest.len() < size {
            self.truncated = true;
            return Ok(None);
        }
        let entry = self.buf.slice(position..position + size);
        let batch = if magic == MAGIC_V2 {
            Batch::V2(RecordBatch::parse_at(entry, position)?)
        } else {
            Batch::Legacy(LegacyMessage::parse_at(entry, position)?)
        };
        self.pos = position + size;
        Ok(Some(batch))
    }
}

impl Iterator for RecordBatches {
    type Item = Result<Batch, RecordsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_entry() {
            Ok(Some(batch)) => Some(Ok(batch)),
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
}

impl std::iter::FusedIterator for RecordBatches {}
