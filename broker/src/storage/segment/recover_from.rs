//! Recovering the segment that holds the recovery point after an unclean shutdown from its
//! offset index instead of from its first byte.
//!
//! Kafka's `LogLoader.recoverSegment` re-reads the whole segment holding the recovery point
//! (`LogSegment.recover`: every batch checked, both indexes rebuilt, the producer state
//! replayed from the segment's base offset). Everything below the recovery point was
//! flushed with its index entries before the recovery point checkpoint named it, so the
//! part of the segment before the last offset index entry at or below the recovery point
//! is taken as it is: the batches are read (and checked) from that entry's position to the
//! end of the file, the first bad one ends the segment, and the two index files keep their
//! entries before the tail and get the tail's entries, computed as a full rebuild would.
//! The batch list of the part before the tail is read only when first needed
//! ([`Segment::batches`]), as for a segment opened from its index files.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use gregor_protocol::records::{BatchHeader, MAGIC_V2, NO_TIMESTAMP, RECORD_BATCH_OVERHEAD};

use super::indexed::{NotIndexed, SampledEpoch, first_v2_header};
use super::{MAGIC_AT, ScanStop, Segment, now_ms, scan};
use crate::storage::index::{
    self, IndexAppend, IndexBuilder, OFFSET_ENTRY_SIZE, TIME_ENTRY_SIZE, offset_index_path,
    time_index_path,
};

/// Where the recovery of a segment starts: found by [`Segment::recovery_start`], read from
/// by [`Segment::recover_from`].
#[derive(Debug)]
pub(crate) struct RecoveryStart {
    path: PathBuf,
    base_offset: i64,
    file: File,
    file_len: u64,
    /// Byte position of the batch the chosen index entry points at.
    position: u64,
    /// That batch's first offset: every batch before it is below it.
    pub(crate) tail_offset: i64,
    /// The offset index file as read, and how many of its entries are kept (those before
    /// the chosen one).
    offset_bytes: Vec<u8>,
    offset_kept: usize,
    /// The time index file as read, and how many of its entries are kept (those whose
    /// offset is below `tail_offset`: a prefix, the offsets never decrease).
    time_bytes: Vec<u8>,
    time_kept: usize,
    /// The leader epochs of the first batch of the file and of the batch at `position`,
    /// for the caller to check against the epoch checkpoint.
    pub(crate) sampled: Vec<SampledEpoch>,
}

/// A segment recovered by [`Segment::recover_from`].
#[derive(Debug)]
pub(crate) struct Recovered {
    /// The segment, its batch list not loaded; `valid_len` ends at the last good batch.
    pub(crate) segment: Segment,
    /// Where and why the tail scan stopped before the end of the file.
    pub(crate) stop: Option<ScanStop>,
    /// Whether either index file was rewritten (it differed from the recomputed one).
    pub(crate) rebuilt_indexes: bool,
    /// The index files rewritten, not yet synced: the log syncs them before its recovery
    /// point moves past this segment's tail (see `partition/deferred_flush.rs`).
    pub(crate) unsynced: Vec<PathBuf>,
}

/// How the index files grow: the segment's `index.interval.bytes` and the entries each
/// index may hold.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IndexLimits {
    /// Bytes between offset index entries.
    pub(crate) interval_bytes: u64,
    /// Entries the offset index may hold.
    pub(crate) max_offset_entries: usize,
    /// Entries the time index may hold.
    pub(crate) max_time_entries: usize,
}

/// The big-endian `i32` at `at` in `bytes`.
fn be_i32(bytes: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

impl Segment {
    /// Finds where the recovery of the segment at `path` (base offset `base_offset`, in
    /// `dir`) can start: the last offset index entry whose offset is at most `limit` (the
    /// recovery point, lowered to where the producer state stands so that no batch the
    /// state still needs is skipped), in the prefix of the index whose entries increase and
    /// point into the file, at a v2 batch that holds the entry's offset and starts at or
    /// after `min_offset` (the end of the previous segment).
    ///
    /// `Ok(Err(reason))` when there is no such entry (the caller scans the segment from its
    /// first byte, as before).
    pub(crate) fn recovery_start(
        dir: &Path,
        path: PathBuf,
        base_offset: i64,
        min_offset: i64,
        limit: i64,
    ) -> io::Result<Result<RecoveryStart, NotIndexed>> {
        let file = File::open(&path)?;
        let file_len = file.metadata()?.len();
        let offset_bytes =
            index::read_index_file(&offset_index_path(dir, base_offset))?.unwrap_or_default();
        // The entries that increase from the start and point into the file; past them, the
        // index is not trusted (zeros or entries written past a torn tail).
        let mut chosen: Option<(usize, i64, u64)> = None;
        let mut previous: Option<(i64, u64)> = None;
        for (i, entry) in offset_bytes.chunks_exact(OFFSET_ENTRY_SIZE).enumerate() {
            let offset = base_offset + i64::from(be_i32(entry, 0));
            let Ok(position) = u64::try_from(be_i32(entry, 4)) else {
                break;
            };
            if offset < base_offset
                || position >= file_len
                || previous.is_some_and(|(o, p)| offset <= o || position <= p)
                || offset > limit
            {
                break;
            }
            chosen = Some((i, offset, position));
            previous = Some((offset, position));
        }
        let Some((offset_kept, indexed_offset, position)) = chosen else {
            return Ok(Err("no offset index entry at or below the recovery point"));
        };
        let mut buf = [0u8; RECORD_BATCH_OVERHEAD];
        if position + RECORD_BATCH_OVERHEAD as u64 > file_len {
            return Ok(Err("offset index entry too close to the end of the file"));
        }
        file.read_exact_at(&mut buf, position)?;
        if buf[MAGIC_AT] as i8 != MAGIC_V2 {
            return Ok(Err("the offset index entry is not at a v2 batch"));
        }
        let Some(header) = BatchHeader::decode(&buf).filter(|h| h.last_offset_delta >= 0) else {
            return Ok(Err("the offset index entry is not at a batch header"));
        };
        let tail = SampledEpoch::of(&header);
        if indexed_offset < tail.base_offset || indexed_offset > tail.last_offset {
            return Ok(Err("the offset index entry is not at its batch"));
        }
        if tail.base_offset < base_offset.max(min_offset) {
            return Ok(Err("the batch at the offset index entry does not chain"));
        }
        let time_bytes =
            index::read_index_file(&time_index_path(dir, base_offset))?.unwrap_or_default();
        let mut time_kept = 0;
        let mut last_time = None;
        for entry in time_bytes.chunks_exact(TIME_ENTRY_SIZE) {
            let timestamp = i64::from_be_bytes(entry[0..8].try_into().expect("8 bytes"));
            let offset = base_offset + i64::from(be_i32(entry, 8));
            if offset < base_offset
                || offset >= tail.base_offset
                || last_time.is_some_and(|(t, o)| timestamp <= t || offset < o)
            {
                break;
            }
            last_time = Some((timestamp, offset));
            time_kept += 1;
        }
        let mut sampled = Vec::with_capacity(2);
        if position > 0
            && let Some(first) = first_v2_header(&file, file_len)?
        {
            sampled.push(SampledEpoch::of(&first));
        }
        sampled.push(tail);
        Ok(Ok(RecoveryStart {
            path,
            base_offset,
            file,
            file_len,
            position,
            tail_offset: tail.base_offset,
            offset_bytes,
            offset_kept,
            time_bytes,
            time_kept,
            sampled,
        }))
    }

    /// Reads the batches from `start` to the end of the file, checking that they chain
    /// and stay below `upper` (the next segment's base offset) and, from `verify_from` (the
    /// recovery point) on, their CRC, as [`Segment::open`] does: the first one that fails
    /// ends the segment. `on_v2_batch` sees each v2 header, as in [`Segment::open`]. The index files
    /// keep their entries before the tail and get those of the tail batches (with the
    /// closing time index entry), as [`index::build_indexes`] would compute them; each is
    /// rewritten only if that differs from what it holds.
    ///
    /// `Ok(Err(reason))` (nothing written) if the first batch at `start` is bad and the
    /// headers before it do not end exactly there: the caller then opens the log by
    /// scanning every segment.
    pub(crate) fn recover_from(
        start: RecoveryStart,
        upper: Option<i64>,
        verify_from: i64,
        limits: IndexLimits,
        on_v2_batch: &mut dyn FnMut(&BatchHeader, &File, u64),
    ) -> io::Result<Result<Recovered, NotIndexed>> {
        let RecoveryStart {
            path,
            base_offset,
            file,
            file_len,
            position,
            tail_offset,
            offset_bytes,
            offset_kept,
            time_bytes,
            time_kept,
            sampled: _,
        } = start;
        let (tail, valid_len, stop) = scan(
            &file,
            file_len,
            position,
            tail_offset,
            upper,
            Some(verify_from),
            on_v2_batch,
        )?;
        // A bad batch at the start position leaves no tail: the end of the batches before
        // it is only known from their headers (offsets may have gaps after compaction).
        let entries = OnceLock::new();
        let next_offset = match tail.last() {
            Some(batch) => batch.last_offset + 1,
            None => {
                let (before, end, before_stop) = scan(
                    &file,
                    position,
                    0,
                    base_offset,
                    None,
                    None,
                    &mut |_, _, _| {},
                )?;
                if before_stop.is_some() || end != position {
                    return Ok(Err(
                        "the batches before the offset index entry do not end at it",
                    ));
                }
                let next = before
                    .last()
                    .map_or(base_offset, |batch| batch.last_offset + 1);
                entries.set(before).expect("a new cell");
                next
            }
        };
        // The index state where the tail starts: the chosen entry was added because more
        // than the interval had been appended since the one before, so the first tail
        // batch gets it again.
        let time_prefix = &time_bytes[..time_kept * TIME_ENTRY_SIZE];
        let (max_timestamp, offset_of_max_timestamp) =
            match time_prefix.chunks_exact(TIME_ENTRY_SIZE).last() {
                Some(entry) => (
                    i64::from_be_bytes(entry[0..8].try_into().expect("8 bytes")),
                    base_offset + i64::from(be_i32(entry, 8)),
                ),
                None => (NO_TIMESTAMP, base_offset),
            };
        let mut builder = IndexBuilder {
            base_offset,
            offset_entries: offset_kept,
            time_entries: time_kept,
            bytes_since_last_entry: limits.interval_bytes.saturating_add(1),
            last_time_entry: max_timestamp,
            max_timestamp,
            offset_of_max_timestamp,
        };
        let mut out = IndexAppend::default();
        for batch in &tail {
            builder.add(
                batch,
                limits.interval_bytes,
                limits.max_offset_entries,
                limits.max_time_entries,
                &mut out,
            );
        }
        builder.maybe_add_time_entry(&mut out);
        // Written without a sync (issue 14): nothing relies on the tail's entries before the
        // recovery point moves past them, and the log syncs these files before it moves it
        // (its flush, roll or close). A power loss before that leaves each file with its old
        // entries, a prefix of the new ones, or trailing zeros; `recovery_start` uses only
        // entries at or below the recovery point that are at their batches, which the
        // durable part of the segment (below that point) keeps true, and otherwise the next
        // recovery reads the segment from its first byte.
        let mut unsynced = Vec::new();
        let mut offsets = offset_bytes[..offset_kept * OFFSET_ENTRY_SIZE].to_vec();
        offsets.extend_from_slice(&out.offset_bytes);
        if offsets != offset_bytes {
            let offset_path = offset_index_path(path_dir(&path), base_offset);
            index::write_index_file_unsynced(&offset_path, &offsets)?;
            unsynced.push(offset_path);
        }
        let mut times = time_prefix.to_vec();
        times.extend_from_slice(&out.time_bytes);
        if times != time_bytes {
            let time_path = time_index_path(path_dir(&path), base_offset);
            index::write_index_file_unsynced(&time_path, &times)?;
            unsynced.push(time_path);
        }
        let rebuilt = !unsynced.is_empty();
        let segment = Segment {
            base_offset,
            path,
            file: Arc::new(file),
            entries,
            next_offset,
            valid_len,
            file_len,
            max_time: OnceLock::from((builder.max_timestamp, builder.offset_of_max_timestamp)),
            tail_max_time: (NO_TIMESTAMP, base_offset),
            created_ms: now_ms(),
            aborted_txns: Vec::new(),
        };
        Ok(Ok(Recovered {
            segment,
            stop,
            rebuilt_indexes: rebuilt,
            unsynced,
        }))
    }
}

/// The directory of a segment file.
fn path_dir(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}
