//! Opening a segment from its `.index` and `.timeindex` after a clean shutdown, without
//! reading its batches: Kafka's `LogSegment.readNextOffset` (the last offset index entry,
//! then the batch headers after it) and `maxTimestampSoFar` (the last time index entry),
//! with the files first passing Kafka's `sanityCheck` (`OffsetIndex`/`TimeIndex`).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use gregor_protocol::records::{BatchHeader, MAGIC_V2, NO_TIMESTAMP, RECORD_BATCH_OVERHEAD};

use super::{MAGIC_AT, Segment, now_ms, scan};
use crate::storage::index::{
    OFFSET_ENTRY_SIZE, TIME_ENTRY_SIZE, offset_index_path, time_index_path,
};

/// Why a segment could not be opened from its index files (the caller scans it instead).
pub(crate) type NotIndexed = &'static str;

/// The leader epoch of a v2 batch whose header an index-based open read (the segment's
/// first batch, those after its last offset index entry): what the epoch checkpoint the
/// open takes the segment's epochs from must say about those offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SampledEpoch {
    /// The batch's first offset.
    pub(crate) base_offset: i64,
    /// The batch's last offset.
    pub(crate) last_offset: i64,
    /// Its partition leader epoch (negative: none, as Kafka's `assign` ignores it).
    pub(crate) epoch: i32,
}

impl SampledEpoch {
    pub(super) fn of(header: &BatchHeader) -> SampledEpoch {
        SampledEpoch {
            base_offset: header.base_offset,
            last_offset: header
                .base_offset
                .saturating_add(i64::from(header.last_offset_delta)),
            epoch: header.partition_leader_epoch,
        }
    }
}

/// The header of the v2 batch at the start of `file`, if it has one (a legacy message
/// carries no epoch).
pub(super) fn first_v2_header(file: &File, file_len: u64) -> io::Result<Option<BatchHeader>> {
    if file_len < RECORD_BATCH_OVERHEAD as u64 {
        return Ok(None);
    }
    let mut buf = [0u8; RECORD_BATCH_OVERHEAD];
    file.read_exact_at(&mut buf, 0)?;
    if buf[MAGIC_AT] as i8 != MAGIC_V2 {
        return Ok(None);
    }
    Ok(BatchHeader::decode(&buf).filter(|h| h.last_offset_delta >= 0))
}

/// The first and last entries of an index file (`None` if it is empty).
type FirstAndLast<const N: usize> = Option<([u8; N], [u8; N])>;

/// An index file opened for reading by position, with its length, under Kafka's
/// `sanityCheck` of its size: `Ok(None)` for an empty file, an error string if it is
/// missing or its size is not a whole number of `N`-byte entries.
fn open_checked<const N: usize>(path: &Path) -> Result<Option<(File, u64)>, NotIndexed> {
    let file = File::open(path).map_err(|_| "index file missing or unreadable")?;
    let len = file.metadata().map_err(|_| "index file unreadable")?.len();
    if len % N as u64 != 0 {
        return Err("index file size not a multiple of its entry size");
    }
    Ok((len > 0).then_some((file, len)))
}

/// The first and last entries of an index file, read by position (the rest of the file
/// is not read), under the checks of [`open_checked`].
fn first_and_last<const N: usize>(path: &Path) -> Result<FirstAndLast<N>, NotIndexed> {
    let Some((file, len)) = open_checked::<N>(path)? else {
        return Ok(None);
    };
    let mut first = [0u8; N];
    let mut last = [0u8; N];
    file.read_exact_at(&mut first, 0)
        .and_then(|()| file.read_exact_at(&mut last, len - N as u64))
        .map_err(|_| "index file unreadable")?;
    Ok(Some((first, last)))
}

/// The last entry of an index file, read by position, under the checks of
/// [`open_checked`].
fn last_entry<const N: usize>(path: &Path) -> Result<Option<[u8; N]>, NotIndexed> {
    let Some((file, len)) = open_checked::<N>(path)? else {
        return Ok(None);
    };
    let mut last = [0u8; N];
    file.read_exact_at(&mut last, len - N as u64)
        .map_err(|_| "index file unreadable")?;
    Ok(Some(last))
}

/// A relative offset of an index entry as an absolute one.
fn absolute(base_offset: i64, relative: [u8; 4]) -> i64 {
    base_offset + i64::from(i32::from_be_bytes(relative))
}

impl Segment {
    /// Opens the segment at `path` from its index files in `dir`, after a clean shutdown:
    /// reads the last offset index entry and the batch headers from its position to the end
    /// of the file (the next offset). The batch list is read only when first needed
    /// ([`Segment::batches`]), and the time index (the largest timestamp: a cleanly closed
    /// segment's time index ends with it) only when that is first asked for
    /// ([`Segment::max_time`]). Also gives the leader epochs of the batch
    /// headers read: those of the tail and, when the tail does not start the file, the
    /// first batch's (one more header read), for the caller to check the epoch checkpoint.
    ///
    /// `Ok(Err(reason))` if the offset index fails Kafka's sanity check (missing, size not a
    /// multiple of the entry size, last offset below the base offset) or the headers after the last entry do not end the file with whole
    /// chaining batches below `upper`: the caller then scans the segment.
    pub(crate) fn open_indexed(
        dir: &Path,
        path: PathBuf,
        base_offset: i64,
        upper: Option<i64>,
    ) -> io::Result<Result<(Segment, Vec<SampledEpoch>), NotIndexed>> {
        let file = File::open(&path)?;
        let file_len = file.metadata()?.len();
        let offsets = match last_entry::<OFFSET_ENTRY_SIZE>(&offset_index_path(dir, base_offset)) {
            Ok(entry) => entry,
            Err(reason) => return Ok(Err(reason)),
        };
        // Where the tail scan starts, and the offset the batch there must hold.
        let (start, indexed_offset) = match offsets {
            None => (0, None),
            Some(last) => {
                let offset = absolute(base_offset, last[0..4].try_into().expect("4 bytes"));
                let position = i32::from_be_bytes(last[4..8].try_into().expect("4 bytes"));
                if offset < base_offset {
                    return Ok(Err("last offset index entry below the base offset"));
                }
                let Ok(position) = u64::try_from(position) else {
                    return Ok(Err("negative position in the offset index"));
                };
                if position >= file_len {
                    return Ok(Err("offset index entry past the end of the segment"));
                }
                (position, Some(offset))
            }
        };
        let mut sampled = Vec::new();
        if start > 0
            && let Some(header) = first_v2_header(&file, file_len)?
        {
            sampled.push(SampledEpoch::of(&header));
        }
        let (tail, end, stop) = scan(
            &file,
            file_len,
            start,
            base_offset,
            upper,
            None,
            &mut |header, _, _| sampled.push(SampledEpoch::of(header)),
        )?;
        if stop.is_some() || end != file_len {
            return Ok(Err(
                "the batches after the last index entry do not end the file",
            ));
        }
        if let Some(offset) = indexed_offset
            && tail
                .first()
                .is_none_or(|b| offset < b.base_offset || offset > b.last_offset)
        {
            return Ok(Err("the last offset index entry is not at its batch"));
        }
        // The tail's largest timestamp, for the time index's last entry to be combined with
        // on first use (a segment closed without its final time entry has a larger one).
        let tail_max_time = Segment::max_time_of(base_offset, &tail);
        let next_offset = tail.last().map_or(base_offset, |b| b.last_offset + 1);
        let segment = Segment {
            base_offset,
            path,
            file: Arc::new(file),
            entries: OnceLock::new(),
            next_offset,
            valid_len: file_len,
            file_len,
            max_time: OnceLock::new(),
            tail_max_time,
            created_ms: now_ms(),
            aborted_txns: Vec::new(),
        };
        Ok(Ok((segment, sampled)))
    }

    /// The largest timestamp of a segment opened from its index files, on first use: the
    /// last `.timeindex` entry (Kafka's lazy time index) combined with the tail read at
    /// open, once the file passes Kafka's sanity check (size a multiple of the entry size,
    /// last entry not older than the first, its offset inside the segment). A file that
    /// fails it is logged and the batches' own timestamps are used (their headers read
    /// from the file; the open rebuilt no index for it).
    pub(super) fn load_max_time(&self) -> (i64, i64) {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let checked = first_and_last::<TIME_ENTRY_SIZE>(&time_index_path(dir, self.base_offset))
            .and_then(|entries| self.check_time_entries(entries));
        match checked {
            Ok(indexed) => {
                if self.tail_max_time.0 > indexed.0 {
                    self.tail_max_time
                } else {
                    indexed
                }
            }
            Err(reason) => {
                tracing::warn!(
                    segment = %self.path.display(),
                    reason,
                    "time index unusable; taking the largest timestamp from the batches"
                );
                Segment::max_time_of(self.base_offset, self.batches())
            }
        }
    }

    /// The last entry of the time index, if its entries pass the sanity check.
    fn check_time_entries(
        &self,
        entries: FirstAndLast<TIME_ENTRY_SIZE>,
    ) -> Result<(i64, i64), NotIndexed> {
        let Some((first, last)) = entries else {
            return Ok((NO_TIMESTAMP, self.base_offset));
        };
        let first_ts = i64::from_be_bytes(first[0..8].try_into().expect("8 bytes"));
        let last_ts = i64::from_be_bytes(last[0..8].try_into().expect("8 bytes"));
        let offset = absolute(self.base_offset, last[8..12].try_into().expect("4 bytes"));
        if offset < self.base_offset {
            return Err("last time index entry below the base offset");
        }
        if last_ts < first_ts {
            return Err("last time index entry older than the first");
        }
        if offset >= self.next_offset {
            return Err("time index entry past the end of the segment");
        }
        Ok((last_ts, offset))
    }
}
