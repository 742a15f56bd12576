//! One segment file (`<20-digit base offset>.log`) and the scan that indexes its batches.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use gregor_protocol::records::{
    BatchHeader, LOG_OVERHEAD, LegacyMessage, MAGIC_V2, NO_TIMESTAMP, RECORD_BATCH_OVERHEAD,
    RecordBatch,
};

mod indexed;
mod recover_from;

pub(crate) use indexed::SampledEpoch;
pub(crate) use recover_from::IndexLimits;

/// Largest segment file this module writes or indexes: Kafka's own limit (`segment.bytes`
/// is an `int`, positions in its indexes are 32-bit).
pub const MAX_SEGMENT_BYTES: u64 = i32::MAX as u64;

/// Suffix of segment files.
const LOG_SUFFIX: &str = ".log";
/// Byte position of the magic byte (same in every format).
const MAGIC_AT: usize = 16;
/// Smallest length field of a v2 batch (header minus offset and length).
const MIN_V2_LENGTH: i32 = (RECORD_BATCH_OVERHEAD - LOG_OVERHEAD) as i32;
/// Smallest length field of a legacy magic 0 message.
const MIN_V0_LENGTH: i32 = 14;
/// Smallest length field of a legacy magic 1 message.
const MIN_V1_LENGTH: i32 = 22;
/// Legacy message attributes and timestamp positions.
const LEGACY_ATTRIBUTES_AT: usize = 17;
const LEGACY_TIMESTAMP_AT: usize = 18;
const LEGACY_CODEC_MASK: u8 = 0x07;

/// The file name of the segment starting at `base_offset`: 20 zero-padded digits and `.log`,
/// as Kafka names them.
pub fn segment_file_name(base_offset: i64) -> String {
    format!("{base_offset:020}{LOG_SUFFIX}")
}

/// The base offset a segment file name (exactly 20 digits and `.log`, so that no two names
/// give the same offset) encodes; `None` for any other file (`.index`, `.timeindex`,
/// `.snapshot`, `.log.deleted`, `.log.swap`, checkpoints, ...).
pub(crate) fn parse_segment_file_name(name: &str) -> Option<i64> {
    let digits = name.strip_suffix(LOG_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// One batch of a segment, as indexed in memory when the segment is opened or appended to.
///
/// For a legacy compressed wrapper (magic 0/1) the base offset is not in the header: it is
/// taken as the offset after the previous entry, so the entry covers every offset up to its
/// last one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BatchEntry {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
    /// Byte position of the batch in its segment file.
    pub position: u32,
    /// Size of the whole batch in bytes (length field + 12).
    pub size: u32,
    /// Largest timestamp of the batch ([`NO_TIMESTAMP`] if none), for time lookups.
    pub max_timestamp: i64,
    /// Format of the batch: 2, or 0/1 for a legacy message.
    pub magic: i8,
}

impl BatchEntry {
    /// Byte position just after the batch.
    pub fn end_position(&self) -> u64 {
        u64::from(self.position) + u64::from(self.size)
    }
}

/// Where and why the scan of a segment stopped before the end of its file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ScanStop {
    /// Byte position of the first byte not served.
    pub(crate) position: u64,
    /// What was found there.
    pub(crate) reason: &'static str,
}

/// An open segment: its read handle and the index of its batches.
#[derive(Debug)]
pub(crate) struct Segment {
    /// Offset the file is named after; every batch in it is at or above it.
    pub(crate) base_offset: i64,
    /// The `.log` file.
    pub(crate) path: PathBuf,
    /// Read handle, shared with readers that copied a range out of the index (the file
    /// stays readable for them even if the segment is deleted meanwhile).
    pub(crate) file: Arc<File>,
    /// Batches in file order: positions contiguous from 0, offsets increasing. Appended to
    /// only through [`Segment::push`]. Empty until first needed for a segment opened from
    /// its index files after a clean shutdown ([`Segment::open_indexed`]): then filled by a
    /// scan of the file's headers on first use ([`Segment::batches`]).
    entries: OnceLock<Vec<BatchEntry>>,
    /// The offset after the last batch (the base offset if empty), kept without the
    /// batch list.
    next_offset: i64,
    /// Bytes of whole, indexed batches: where the next append goes.
    pub(crate) valid_len: u64,
    /// Size of the file when it was scanned (above `valid_len` after a torn tail, until an
    /// append truncates it).
    pub(crate) file_len: u64,
    /// Largest batch max timestamp ([`NO_TIMESTAMP`] if none) and the last offset of the
    /// first batch carrying it (the base offset if none). Unset for a segment opened from
    /// its index files until first asked for: then taken from the last `.timeindex` entry
    /// ([`Segment::max_time`]), as Kafka's `LogSegment.readMaxTimestampAndOffsetSoFar`
    /// materializes its lazy time index only on first use.
    max_time: OnceLock<(i64, i64)>,
    /// For a segment opened from its index files: the largest timestamp (and its offset)
    /// of the batches read after the last offset index entry at open, which the time
    /// index's last entry is combined with on first use. Unused once `max_time` is set.
    tail_max_time: (i64, i64),
    /// Wall-clock time (ms) the segment was created or opened: Kafka's `created`, used for
    /// time-based rolls when the batches carry no timestamp.
    pub(crate) created_ms: i64,
    /// The segment's transaction index (`.txnindex`): the aborted transactions whose
    /// marker is in it, in offset order (see [`super::txn_index`]).
    pub(crate) aborted_txns: Vec<super::txn_index::AbortedTxn>,
}

impl Segment {
    /// A new empty segment for a file just created.
    pub(crate) fn empty(base_offset: i64, path: PathBuf, file: Arc<File>) -> Segment {
        Segment {
            base_offset,
            path,
            file,
            entries: OnceLock::from(Vec::new()),
            next_offset: base_offset,
            valid_len: 0,
            file_len: 0,
            max_time: OnceLock::from((NO_TIMESTAMP, base_offset)),
            tail_max_time: (NO_TIMESTAMP, base_offset),
            created_ms: now_ms(),
            aborted_txns: Vec::new(),
        }
    }

    /// The offset after the last batch, or the base offset of an empty segment.
    pub(crate) fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// Whether the segment holds no batch.
    pub(crate) fn is_empty(&self) -> bool {
        self.valid_len == 0
    }

    /// Whether the batch list is in memory (always, but for a segment opened from its
    /// index files and not used since).
    #[cfg(test)]
    pub(crate) fn batches_loaded(&self) -> bool {
        self.entries.get().is_some()
    }

    /// The segment's batches in file order; a segment opened from its index files reads
    /// them (headers only) from its file on the first call. A scan that does not end where
    /// the open found the end (the file changed under the broker) is logged and the batches
    /// it found are served.
    pub(crate) fn batches(&self) -> &[BatchEntry] {
        self.entries.get_or_init(|| self.load_batches())
    }

    /// The batch list, read from the file if needed, for changing it.
    fn batches_mut(&mut self) -> &mut Vec<BatchEntry> {
        self.batches();
        self.entries.get_mut().expect("just loaded")
    }

    /// Scans the file's batch headers up to `valid_len` (see [`Segment::batches`]).
    fn load_batches(&self) -> Vec<BatchEntry> {
        let scanned = scan(
            &self.file,
            self.valid_len,
            0,
            self.base_offset,
            None,
            None,
            &mut |_, _, _| {},
        );
        match scanned {
            Ok((batches, end, stop)) => {
                let next = batches
                    .last()
                    .map_or(self.base_offset, |b| b.last_offset + 1);
                if stop.is_some() || end != self.valid_len || next != self.next_offset {
                    tracing::error!(
                        segment = %self.path.display(),
                        scanned_to = end,
                        expected_end = self.valid_len,
                        next_offset = next,
                        expected_next_offset = self.next_offset,
                        reason = stop.map_or("", |s| s.reason),
                        "the segment's batches do not match what its index said at open"
                    );
                }
                batches
            }
            Err(error) => {
                tracing::error!(
                    segment = %self.path.display(),
                    %error,
                    "cannot read the segment's batch headers; serving none"
                );
                Vec::new()
            }
        }
    }

    /// Largest batch max timestamp in the segment ([`NO_TIMESTAMP`] if none).
    pub(crate) fn max_timestamp(&self) -> i64 {
        self.max_time().0
    }

    /// The largest batch max timestamp and the last offset of the first batch carrying it;
    /// a segment opened from its index files reads its time index on the first call
    /// (see `segment/indexed.rs`).
    pub(crate) fn max_time(&self) -> (i64, i64) {
        *self.max_time.get_or_init(|| self.load_max_time())
    }

    /// Whether the largest timestamp is known without reading the time index (always, but
    /// for a segment opened from its index files and not asked since).
    #[cfg(test)]
    pub(crate) fn max_time_loaded(&self) -> bool {
        self.max_time.get().is_some()
    }

    /// The largest timestamp of `batches` as [`Segment::max_time`] gives it.
    fn max_time_of(base_offset: i64, batches: &[BatchEntry]) -> (i64, i64) {
        let mut max = (NO_TIMESTAMP, base_offset);
        for batch in batches {
            if batch.max_timestamp > max.0 {
                max = (batch.max_timestamp, batch.last_offset);
            }
        }
        max
    }

    /// Kafka's `rollingBasedTimestamp`: the first batch's max timestamp.
    pub(crate) fn rolling_timestamp(&self) -> Option<i64> {
        self.batches().first().map(|batch| batch.max_timestamp)
    }

    /// Adds a batch written at the end of the file.
    pub(crate) fn push(&mut self, entry: BatchEntry) {
        let max = self.max_time();
        if entry.max_timestamp > max.0 {
            self.max_time = OnceLock::from((entry.max_timestamp, entry.last_offset));
        }
        self.batches_mut().push(entry);
        self.valid_len = entry.end_position();
        self.file_len = self.file_len.max(self.valid_len);
        self.next_offset = entry.last_offset + 1;
    }

    /// Forgets the batches from index `keep` on (a follower's truncation, Kafka's
    /// `LogSegment.truncateTo`): the valid length ends at the first one dropped and the
    /// largest timestamp is that of the batches kept.
    pub(crate) fn truncate_batches(&mut self, keep: usize) {
        let batches = self.batches_mut();
        let Some(first_dropped) = batches.get(keep) else {
            return;
        };
        let valid_len = u64::from(first_dropped.position);
        batches.truncate(keep);
        self.valid_len = valid_len;
        self.file_len = self.file_len.min(self.valid_len);
        let batches = self.entries.get().expect("loaded above");
        self.next_offset = batches
            .last()
            .map_or(self.base_offset, |b| b.last_offset + 1);
        self.max_time = OnceLock::from(Segment::max_time_of(self.base_offset, batches));
    }

    /// Opens the segment at `path` and indexes its batches by reading each header, and
    /// with `verify_from` each whole batch whose last offset is at or above it to check its
    /// CRC (recovery after an unclean shutdown, from the recovery point: what is below it
    /// was synced and checkpointed).
    ///
    /// Batches must chain: every offset at or above `max(base_offset, min_offset)`, each
    /// batch above the previous one, all below `upper` (the next segment's base offset).
    /// The scan stops at the first batch that is cut short by the end of the file, breaks
    /// these rules or (when verified) is corrupt; nothing from there on is indexed.
    ///
    /// `on_v2_batch` sees the header of every v2 batch indexed, in order, with the file and
    /// the batch's position in it (the producer state is rebuilt from them; transaction
    /// markers are read from the file).
    pub(crate) fn open(
        path: PathBuf,
        base_offset: i64,
        min_offset: i64,
        upper: Option<i64>,
        verify_from: Option<i64>,
        on_v2_batch: &mut dyn FnMut(&BatchHeader, &File, u64),
    ) -> io::Result<(Segment, Option<ScanStop>)> {
        let file = File::open(&path)?;
        let file_len = file.metadata()?.len();
        let (batches, valid_len, stop) = scan(
            &file,
            file_len,
            0,
            base_offset.max(min_offset),
            upper,
            verify_from,
            on_v2_batch,
        )?;
        let mut segment = Segment {
            base_offset,
            path,
            file: Arc::new(file),
            entries: OnceLock::from(Vec::with_capacity(batches.len())),
            next_offset: base_offset,
            valid_len: 0,
            file_len,
            max_time: OnceLock::from((NO_TIMESTAMP, base_offset)),
            tail_max_time: (NO_TIMESTAMP, base_offset),
            created_ms: now_ms(),
            aborted_txns: Vec::new(),
        };
        for batch in batches {
            segment.push(batch);
        }
        debug_assert_eq!(segment.valid_len, valid_len);
        segment.valid_len = valid_len;
        Ok((segment, stop))
    }

    /// The path of the segment of `base_offset` in `dir`.
    pub(crate) fn path_in(dir: &Path, base_offset: i64) -> PathBuf {
        dir.join(segment_file_name(base_offset))
    }
}

/// The wall clock in milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Reads the batch headers of `file` from byte `start` (a batch boundary): returns the
/// entries, the position they end at and, if the scan stopped early, why. Batches whose
/// last offset is at or above `verify_from` are read whole and checked. Each v2 batch
/// indexed is shown to `on_v2_batch`.
pub(crate) fn scan(
    file: &File,
    file_len: u64,
    start: u64,
    mut next_offset: i64,
    upper: Option<i64>,
    verify_from: Option<i64>,
    on_v2_batch: &mut dyn FnMut(&BatchHeader, &File, u64),
) -> io::Result<(Vec<BatchEntry>, u64, Option<ScanStop>)> {
    let mut batches = Vec::new();
    let mut position = start;
    let mut header = [0u8; RECORD_BATCH_OVERHEAD];
    let stop = loop {
        let remaining = file_len - position;
        if remaining == 0 {
            break None;
        }
        let stop = |reason| Some(ScanStop { position, reason });
        let available = remaining.min(RECORD_BATCH_OVERHEAD as u64) as usize;
        let buf = &mut header[..available];
        match file.read_exact_at(buf, position) {
            Ok(()) => {}
            // The file shrank since its length was taken.
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                break stop("file shrank while being read");
            }
            Err(error) => return Err(error),
        }
        let buf = &header[..available];
        if available <= MAGIC_AT {
            break stop("partial batch header at the end of the file");
        }
        let offset = i64::from_be_bytes(buf[0..8].try_into().expect("8 bytes"));
        let length = i32::from_be_bytes(buf[8..12].try_into().expect("4 bytes"));
        if buf.iter().all(|&b| b == 0) {
            break stop("zeros (preallocated or unwritten space)");
        }
        let magic = buf[MAGIC_AT] as i8;
        let min_length = match magic {
            MAGIC_V2 => MIN_V2_LENGTH,
            0 => MIN_V0_LENGTH,
            1 => MIN_V1_LENGTH,
            _ => break stop("unknown magic byte"),
        };
        if length < min_length {
            break stop("batch length below the minimum for its format");
        }
        let size = length as u64 + LOG_OVERHEAD as u64;
        if size > remaining {
            break stop("batch cut short by the end of the file");
        }
        if position + size > MAX_SEGMENT_BYTES {
            break stop("segment larger than 2 GiB");
        }
        let (base, last, max_timestamp, v2_header) = if magic == MAGIC_V2 {
            // `size >= 61` and `remaining >= size`, so the whole header was read.
            let header = BatchHeader::decode(buf).expect("61 bytes read");
            if header.last_offset_delta < 0 {
                break stop("negative last offset delta");
            }
            let Some(last) = offset.checked_add(i64::from(header.last_offset_delta)) else {
                break stop("last offset overflows");
            };
            (offset, last, header.max_timestamp, Some(header))
        } else {
            let compressed = buf[LEGACY_ATTRIBUTES_AT] & LEGACY_CODEC_MASK != 0;
            let timestamp = if magic == 1 {
                i64::from_be_bytes(
                    buf[LEGACY_TIMESTAMP_AT..LEGACY_TIMESTAMP_AT + 8]
                        .try_into()
                        .expect("8 bytes"),
                )
            } else {
                NO_TIMESTAMP
            };
            // A compressed wrapper carries the offset of its last inner message.
            let base = if compressed {
                next_offset.min(offset)
            } else {
                offset
            };
            (base, offset, timestamp, None)
        };
        if base < next_offset {
            break stop("offsets do not increase");
        }
        if upper.is_some_and(|upper| last >= upper) {
            break stop("offset at or above the next segment's base offset");
        }
        let Some(next) = last.checked_add(1) else {
            break stop("last offset overflows");
        };
        if verify_from.is_some_and(|from| last >= from) {
            match verify_batch(file, position, size as usize, magic) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::InvalidData => {
                    break stop("corrupt batch (CRC mismatch or malformed)");
                }
                Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                    break stop("file shrank while being read");
                }
                Err(error) => return Err(error),
            }
        }
        if let Some(header) = &v2_header {
            on_v2_batch(header, file, position);
        }
        batches.push(BatchEntry {
            base_offset: base,
            last_offset: last,
            position: position as u32,
            size: size as u32,
            max_timestamp,
            magic,
        });
        next_offset = next;
        position += size;
    };
    Ok((batches, position, stop))
}

/// Reads the whole batch at `position` and checks it as Kafka's recovery does
/// (`ensureValid`: the CRC32C of a v2 batch, the CRC32 of a legacy message); an
/// `InvalidData` error if it is corrupt.
fn verify_batch(file: &File, position: u64, size: usize, magic: i8) -> io::Result<()> {
    let mut buf = vec![0u8; size];
    file.read_exact_at(&mut buf, position)?;
    let buf = Bytes::from(buf);
    let checked = if magic == MAGIC_V2 {
        RecordBatch::parse(buf).and_then(|batch| batch.verify_crc())
    } else {
        LegacyMessage::parse(buf).and_then(|message| message.verify_crc())
    };
    checked.map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))
}
