//! Cleaning one log (Kafka's `Cleaner.doClean`): build the dedupe map over the dirty
//! section, group the segments below its end as Kafka groups them, and write each group,
//! filtered, into one `<base>.log.cleaned` segment that the partition then swaps in.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use gregor_protocol::records::{
    BatchHeader, ControlRecordKey, MAGIC_V2, NO_TIMESTAMP, NewRecord, RECORD_BATCH_OVERHEAD,
    RecordBatch, RecordBatchBuilder, TimestampType,
};

use super::offset_map::OffsetMap;
use super::throttle::Throttler;
use super::txn::{AbortedTxn, TransactionMetadata};
use crate::storage::config::LogConfig;
use crate::storage::index;
use crate::storage::segment::{BatchEntry, MAX_SEGMENT_BYTES, segment_file_name};
use crate::storage::validate::crc32c;

/// Suffix of a segment's files while the cleaner writes them (Kafka's `CleanedFileSuffix`).
pub const CLEANED_SUFFIX: &str = ".cleaned";
/// Suffix of a cleaned segment's files while it replaces the old ones (Kafka's
/// `SwapFileSuffix`).
pub const SWAP_SUFFIX: &str = ".swap";

/// Position of the last offset delta, the CRC and the attributes in a v2 batch header.
const LAST_OFFSET_DELTA_AT: usize = 23;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;

/// A non-active segment as the cleaner sees it: taken from the partition under its lock,
/// then read without it (the file handle stays valid even if the segment is deleted).
#[derive(Clone, Debug)]
pub struct SegmentToClean {
    /// The segment's base offset.
    pub base_offset: i64,
    /// Read handle of its `.log`.
    pub file: Arc<File>,
    /// Its batches.
    pub batches: Vec<BatchEntry>,
    /// Bytes of whole batches.
    pub size: u64,
    /// Size of its `.index` and `.timeindex` files (Kafka's `sizeInBytes` of each).
    pub offset_index_bytes: u64,
    /// See `offset_index_bytes`.
    pub time_index_bytes: u64,
    /// Modification time of its `.log` (ms), Kafka's `lastModified`.
    pub last_modified_ms: i64,
    /// Largest batch timestamp (the modification time without any), Kafka's
    /// `largestTimestamp`.
    pub largest_timestamp: i64,
}

impl SegmentToClean {
    /// Offset after its last batch (its base offset when empty).
    pub fn next_offset(&self) -> i64 {
        self.batches
            .last()
            .map_or(self.base_offset, |b| b.last_offset + 1)
    }
}

/// One cleaning of one log: its non-active segments and the range to clean.
#[derive(Debug)]
pub struct CleanInput<'a> {
    /// Every non-active segment, in offset order.
    pub segments: &'a [SegmentToClean],
    /// Kafka's `firstDirtyOffset`: where the dirty (not yet cleaned) part starts.
    pub first_dirty_offset: i64,
    /// Kafka's `firstUncleanableOffset`: nothing at or above it is mapped or changed.
    pub first_uncleanable_offset: i64,
    /// The topic's settings (segment and index sizes, `delete.retention.ms`).
    pub config: &'a LogConfig,
    /// Aborted transactions overlapping the log (from the aborted-transaction index).
    pub aborted: &'a [AbortedTxn],
    /// Last data offset of each producer with state in the partition: the batch ending
    /// there is kept (empty if need be) so that its sequence survives.
    pub last_offsets_of_active_producers: &'a HashMap<i64, i64>,
    /// Wall-clock time of the cleaning (ms).
    pub now_ms: i64,
}

/// A cleaned group written to `<base>.log.cleaned` (with its `.index.cleaned` and
/// `.timeindex.cleaned`), ready to replace `replaced`.
#[derive(Debug)]
pub struct CleanedSegment {
    /// Base offset: the first replaced segment's.
    pub base_offset: i64,
    /// Base offsets of the segments it replaces, in order.
    pub replaced: Vec<i64>,
    /// Its batches as written.
    pub batches: Vec<BatchEntry>,
    /// The open `.log.cleaned` file.
    pub file: File,
    /// Modification time given to it (the last replaced segment's).
    pub last_modified_ms: i64,
}

/// Figures of one cleaning, as Kafka's `CleanerStats` logs them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CleanerStats {
    /// Bytes read to build the map.
    pub map_bytes_read: u64,
    /// Records read to build the map.
    pub map_messages_read: u64,
    /// Bytes read while copying.
    pub bytes_read: u64,
    /// Bytes written to cleaned segments.
    pub bytes_written: u64,
    /// Records read while copying.
    pub messages_read: u64,
    /// Records kept.
    pub messages_written: u64,
    /// Records without a key (dropped, as Kafka does).
    pub invalid_messages: u64,
    /// Segments replaced.
    pub segments_cleaned: usize,
    /// Cleaned segments written.
    pub groups: usize,
}

/// The outcome of [`Cleaner::clean`].
#[derive(Debug)]
pub struct CleanPlan {
    /// Where the next cleaning starts (Kafka's `endOffset`: the map's latest offset + 1).
    pub end_offset: i64,
    /// Figures.
    pub stats: CleanerStats,
}

/// Why a cleaning stopped.
#[derive(Debug, thiserror::Error)]
pub enum CleanError {
    /// A file could not be read or written.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A stored batch could not be decoded.
    #[error("corrupt batch at offset {offset}: {reason}")]
    Corrupt {
        /// Its base offset.
        offset: i64,
        /// What is wrong.
        reason: String,
    },
    /// The dedupe map is too small to hold the keys of even one segment (Kafka stops
    /// with "dedupe buffer too small" too).
    #[error(
        "the dedupe map ({slots} slots) filled before one segment was mapped: raise \
         log.cleaner.dedupe.buffer.size"
    )]
    MapTooSmall {
        /// Slots of the map.
        slots: usize,
    },
    /// The log changed (deleted, closed, segments removed) or the cleaner is stopping.
    #[error("cleaning aborted")]
    Aborted,
    /// The partition could not swap the segments in.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> CleanError + '_ {
    move |source| CleanError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Whether a batch goes, stays, or stays as an empty header (Kafka's `BatchRetention`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BatchRetention {
    Delete,
    DeleteEmpty,
    RetainEmpty,
}

/// A cleaner thread's reusable state: its dedupe map, buffers and throttle.
#[derive(Debug)]
pub struct Cleaner {
    map: OffsetMap,
    /// Fraction of the map's slots filled before mapping stops.
    load_factor: f64,
    /// Bytes read (and written) at a time.
    io_buffer_size: usize,
    throttler: Arc<Throttler>,
}

impl Cleaner {
    /// A cleaner with a dedupe map of `map_memory` bytes.
    pub fn new(
        map_memory: usize,
        load_factor: f64,
        io_buffer_size: usize,
        throttler: Arc<Throttler>,
    ) -> Cleaner {
        Cleaner {
            map: OffsetMap::new(map_memory),
            load_factor,
            io_buffer_size: io_buffer_size.max(RECORD_BATCH_OVERHEAD),
            throttler,
        }
    }

    /// The dedupe map (for its memory and figures).
    pub fn map(&self) -> &OffsetMap {
        &self.map
    }

    /// Kafka's `doClean` up to the swap: maps the dirty section, then writes the cleaned
    /// groups one by one into `dir`, handing each to `swap` (which replaces the old
    /// segments and returns whether it did). `aborted()` is polled between batches.
    pub fn clean(
        &mut self,
        dir: &Path,
        input: &CleanInput<'_>,
        aborted: &dyn Fn() -> bool,
        swap: &mut dyn FnMut(CleanedSegment) -> Result<bool, CleanError>,
    ) -> Result<CleanPlan, CleanError> {
        let mut stats = CleanerStats::default();
        self.build_offset_map(input, aborted, &mut stats)?;
        let end_offset = self.map.latest_offset() + 1;
        // Kafka's `legacyDeleteHorizonMs` only matters to magic 0/1 batches, which are kept
        // as they are here (see the module documentation of `cleaner`).
        let segments: Vec<&SegmentToClean> = input
            .segments
            .iter()
            .filter(|s| s.base_offset < end_offset)
            .collect();
        let groups = group_segments_by_size(
            &segments,
            input.config.segment_bytes,
            input.config.segment_index_bytes,
            input.first_uncleanable_offset,
        );
        let mut transactions = TransactionMetadata::new(input.aborted);
        for group in groups {
            let cleaned =
                self.clean_group(dir, &group, input, &mut transactions, aborted, &mut stats)?;
            stats.segments_cleaned += group.len();
            stats.groups += 1;
            if !swap(cleaned)? {
                return Err(CleanError::Aborted);
            }
        }
        Ok(CleanPlan { end_offset, stats })
    }

    /// Kafka's `buildOffsetMap`: every keyed record of the dirty section, segment by
    /// segment, until the map reaches its load factor.
    fn build_offset_map(
        &mut self,
        input: &CleanInput<'_>,
        aborted: &dyn Fn() -> bool,
        stats: &mut CleanerStats,
    ) -> Result<(), CleanError> {
        self.map.clear();
        let start = input.first_dirty_offset;
        let end = input.first_uncleanable_offset;
        let max_entries = ((self.map.slots() as f64) * self.load_factor) as usize;
        let mut transactions = TransactionMetadata::new(input.aborted);
        let dirty = input
            .segments
            .iter()
            .filter(|s| s.next_offset() > start && s.base_offset < end);
        for (mapped_segments, segment) in dirty.enumerate() {
            let mut full = false;
            for_each_batch(
                segment,
                self.io_buffer_size,
                &self.throttler,
                |bytes, entry| {
                    if aborted() {
                        return Err(CleanError::Aborted);
                    }
                    stats.map_bytes_read += bytes.len() as u64;
                    if entry.magic != MAGIC_V2 {
                        return Ok(true);
                    }
                    let batch = parse(bytes, entry)?;
                    let header = *batch.header();
                    if header.is_control() {
                        transactions.on_control_batch(&header, control_type(&batch));
                    } else if !transactions.on_batch(&header) {
                        let section = batch.section().map_err(|e| corrupt(entry, e))?;
                        for record in section.iter() {
                            let record = record.map_err(|e| corrupt(entry, e))?;
                            if let Some(key) = record.key
                                && record.offset >= start
                                && (self.map.len() >= max_entries
                                    || !self.map.put(key, record.offset))
                            {
                                full = true;
                                return Ok(false);
                            }
                            stats.map_messages_read += 1;
                        }
                    }
                    if header.last_offset() >= start {
                        self.map.update_latest_offset(header.last_offset());
                    }
                    Ok(true)
                },
            )?;
            if full {
                if mapped_segments == 0 && self.map.latest_offset() < start {
                    return Err(CleanError::MapTooSmall {
                        slots: self.map.slots(),
                    });
                }
                tracing::debug!(
                    segments = mapped_segments,
                    partial = segment.base_offset,
                    "the dedupe map is full"
                );
                break;
            }
        }
        Ok(())
    }

    /// Kafka's `cleanSegments`: writes the retained batches of `group` into a new
    /// `<first base>.log.cleaned` with its index files.
    fn clean_group(
        &mut self,
        dir: &Path,
        group: &[&SegmentToClean],
        input: &CleanInput<'_>,
        transactions: &mut TransactionMetadata,
        aborted: &dyn Fn() -> bool,
        stats: &mut CleanerStats,
    ) -> Result<CleanedSegment, CleanError> {
        let base_offset = group[0].base_offset;
        let path = cleaned_path(dir, &segment_file_name(base_offset));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(io_error(&path))?;
        let mut out = BytesMut::with_capacity(self.io_buffer_size);
        let mut position: u64 = 0;
        let mut flushed: u64 = 0;
        let mut entries: Vec<BatchEntry> = Vec::new();
        let throttler = Arc::clone(&self.throttler);
        let io_buffer_size = self.io_buffer_size;
        for segment in group {
            for_each_batch(segment, io_buffer_size, &throttler, |bytes, entry| {
                if aborted() {
                    return Err(CleanError::Aborted);
                }
                stats.bytes_read += bytes.len() as u64;
                let start = out.len();
                self.filter_batch(bytes, entry, input, transactions, &mut out, stats)?;
                let written = out.len() - start;
                if written > 0 {
                    if position + written as u64 > MAX_SEGMENT_BYTES {
                        return Err(CleanError::Corrupt {
                            offset: entry.base_offset,
                            reason: "the cleaned segment would exceed 2 GiB".into(),
                        });
                    }
                    let header = &out[start..];
                    let (last_offset, max_timestamp) = if entry.magic == MAGIC_V2 {
                        let h = BatchHeader::decode(header).expect("a written batch");
                        (h.last_offset(), h.max_timestamp)
                    } else {
                        (entry.last_offset, entry.max_timestamp)
                    };
                    entries.push(BatchEntry {
                        base_offset: entry.base_offset,
                        last_offset,
                        position: position as u32,
                        size: written as u32,
                        max_timestamp,
                        magic: entry.magic,
                    });
                    position += written as u64;
                }
                if out.len() >= io_buffer_size {
                    file.write_all_at(&out, flushed).map_err(io_error(&path))?;
                    throttler.maybe_throttle(out.len() as u64);
                    stats.bytes_written += out.len() as u64;
                    flushed += out.len() as u64;
                    out.clear();
                }
                Ok(true)
            })?;
        }
        if !out.is_empty() {
            file.write_all_at(&out, flushed).map_err(io_error(&path))?;
            self.throttler.maybe_throttle(out.len() as u64);
            stats.bytes_written += out.len() as u64;
        }
        file.sync_data().map_err(io_error(&path))?;
        let last_modified_ms = group.last().map_or(0, |s| s.last_modified_ms);
        if let Ok(time) = u64::try_from(last_modified_ms) {
            let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(time);
            // As Kafka's `cleaned.setLastModified`: time-based retention of the cleaned
            // segment goes by its data, not by when it was cleaned.
            let _ = file.set_modified(time);
        }
        let config = input.config;
        let (indexes, _) = index::build_indexes(
            base_offset,
            &entries,
            u64::try_from(config.index_interval_bytes).unwrap_or(0),
            config.max_offset_index_entries(),
            config.max_time_index_entries(),
        );
        for (name, bytes) in [
            (index_file_name(base_offset, "index"), &indexes.offset_bytes),
            (
                index_file_name(base_offset, "timeindex"),
                &indexes.time_bytes,
            ),
        ] {
            let path = cleaned_path(dir, &name);
            index::write_index_file(&path, bytes).map_err(io_error(&path))?;
        }
        Ok(CleanedSegment {
            base_offset,
            replaced: group.iter().map(|s| s.base_offset).collect(),
            batches: entries,
            file,
            last_modified_ms,
        })
    }

    /// Kafka's `MemoryRecords.filterTo` with the cleaner's `RecordFilter` for one batch:
    /// appends what is kept of it to `out`.
    fn filter_batch(
        &mut self,
        bytes: Bytes,
        entry: &BatchEntry,
        input: &CleanInput<'_>,
        transactions: &mut TransactionMetadata,
        out: &mut BytesMut,
        stats: &mut CleanerStats,
    ) -> Result<(), CleanError> {
        if entry.magic != MAGIC_V2 {
            // Legacy messages are kept as they are (see the `cleaner` module documentation).
            out.extend_from_slice(&bytes);
            return Ok(());
        }
        let batch = parse(bytes, entry)?;
        let header = *batch.header();
        let now = input.now_ms;
        // Kafka's `checkBatchRetention`.
        let can_discard = if header.is_control() {
            transactions.on_control_batch(&header, control_type(&batch))
        } else {
            transactions.on_batch(&header)
        };
        let discard_records = if header.is_control() {
            can_discard && header.delete_horizon().is_some_and(|h| h <= now)
        } else {
            can_discard
        };
        let last_of_producer = header.producer_id >= 0
            && input
                .last_offsets_of_active_producers
                .get(&header.producer_id)
                == Some(&header.last_offset());
        let retention = if last_of_producer {
            BatchRetention::RetainEmpty
        } else if discard_records {
            BatchRetention::Delete
        } else {
            BatchRetention::DeleteEmpty
        };
        let marker_of_empty_txn = can_discard && header.is_control();
        if retention == BatchRetention::Delete {
            stats.messages_read += u64::try_from(header.record_count).unwrap_or(0);
            return Ok(());
        }
        let section = batch.section().map_err(|e| corrupt(entry, e))?;
        let mut retained = Vec::new();
        let mut write_original = true;
        let mut contains_tombstones = false;
        for record in section.clone().into_records() {
            let record = record.map_err(|e| corrupt(entry, e))?;
            stats.messages_read += 1;
            let keep = if discard_records {
                false
            } else if header.is_control() {
                true
            } else {
                self.should_retain_record(&header, &record, now, stats)
            };
            if keep {
                contains_tombstones |= record.value.is_none();
                retained.push(record);
            } else {
                write_original = false;
            }
        }
        stats.messages_written += retained.len() as u64;
        let needs_horizon =
            (contains_tombstones || marker_of_empty_txn) && header.delete_horizon().is_none();
        if write_original && !needs_horizon {
            out.extend_from_slice(batch.as_bytes());
        } else if !retained.is_empty() {
            let horizon = if needs_horizon {
                Some(now.saturating_add(input.config.delete_retention_ms))
            } else {
                header.delete_horizon()
            };
            rebuild(&header, &retained, horizon, out).map_err(|e| corrupt(entry, e))?;
        } else if retention == BatchRetention::RetainEmpty {
            write_empty_header(&header, out);
        }
        Ok(())
    }

    /// Kafka's `Cleaner.shouldRetainRecord`: past the map's end everything stays; else a
    /// record stays if it is its key's latest and is a value, or a tombstone whose delete
    /// horizon has not passed (or is not set yet). Records without a key go.
    fn should_retain_record(
        &mut self,
        header: &BatchHeader,
        record: &gregor_protocol::records::Record,
        now: i64,
        stats: &mut CleanerStats,
    ) -> bool {
        if record.offset > self.map.latest_offset() {
            return true;
        }
        let Some(key) = &record.key else {
            stats.invalid_messages += 1;
            return false;
        };
        let latest = record.offset >= self.map.get(key);
        let retain_deletes = header.delete_horizon().is_none_or(|horizon| now < horizon);
        latest && (record.value.is_some() || retain_deletes)
    }
}

/// Kafka's `buildRetainedRecordsInto`: a batch with the original's header fields (base
/// offset, last offset, leader epoch, producer id/epoch/base sequence, transactional and
/// control flags, timestamp type and codec) holding `retained`.
fn rebuild(
    header: &BatchHeader,
    retained: &[gregor_protocol::records::Record],
    horizon: Option<i64>,
    out: &mut BytesMut,
) -> Result<(), gregor_protocol::records::RecordsError> {
    let mut builder = RecordBatchBuilder::new()
        .base_offset(header.base_offset)
        .partition_leader_epoch(header.partition_leader_epoch)
        .producer(header.producer_id, header.producer_epoch)
        .base_sequence(header.base_sequence)
        .transactional(header.is_transactional())
        .control(header.is_control())
        .delete_horizon(horizon)
        .compression(header.compression().unwrap_or_default());
    if header.timestamp_type() == TimestampType::LogAppendTime {
        builder = builder.log_append_time(header.max_timestamp);
    }
    let start = out.len();
    let mut writer = builder.writer(out);
    for record in retained {
        let offset_delta = i32::try_from(record.offset - header.base_offset).map_err(|_| {
            gregor_protocol::records::RecordsError::TooLarge {
                what: "offset delta",
            }
        })?;
        writer.append_with_offset_delta(offset_delta, &NewRecord::from(record))?;
    }
    writer.finish()?;
    // Kafka's `overrideLastOffset`: the batch still ends where the original did, so the
    // producer's last sequence and the next batch's offsets stay consistent.
    let batch = &mut out[start..];
    batch[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4]
        .copy_from_slice(&header.last_offset_delta.to_be_bytes());
    let crc = crc32c(&batch[ATTRIBUTES_AT..]);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// Kafka's `DefaultRecordBatch.writeEmptyHeader`: a batch of no records that keeps the
/// original's offsets, producer fields and max timestamp, uncompressed.
fn write_empty_header(header: &BatchHeader, out: &mut BytesMut) {
    let mut attributes: i16 = 0;
    if header.timestamp_type() == TimestampType::LogAppendTime {
        attributes |= 0x08;
    }
    if header.is_transactional() {
        attributes |= 0x10;
    }
    if header.is_control() {
        attributes |= 0x20;
    }
    let mut batch = [0u8; RECORD_BATCH_OVERHEAD];
    batch[0..8].copy_from_slice(&header.base_offset.to_be_bytes());
    batch[8..12].copy_from_slice(&((RECORD_BATCH_OVERHEAD - 12) as i32).to_be_bytes());
    batch[12..16].copy_from_slice(&header.partition_leader_epoch.to_be_bytes());
    batch[16] = MAGIC_V2 as u8;
    batch[21..23].copy_from_slice(&attributes.to_be_bytes());
    batch[23..27].copy_from_slice(&header.last_offset_delta.to_be_bytes());
    batch[27..35].copy_from_slice(&NO_TIMESTAMP.to_be_bytes());
    batch[35..43].copy_from_slice(&header.max_timestamp.to_be_bytes());
    batch[43..51].copy_from_slice(&header.producer_id.to_be_bytes());
    batch[51..53].copy_from_slice(&header.producer_epoch.to_be_bytes());
    batch[53..57].copy_from_slice(&header.base_sequence.to_be_bytes());
    batch[57..61].copy_from_slice(&0i32.to_be_bytes());
    let crc = crc32c(&batch[ATTRIBUTES_AT..]);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(&batch);
}

/// Kafka's `groupSegmentsBySize`: consecutive segments whose total log size fits in
/// `max_size`, index sizes in `max_index_size`, and whose offsets fit in 32-bit deltas from
/// the group's base offset.
pub(crate) fn group_segments_by_size<'a>(
    segments: &[&'a SegmentToClean],
    max_size: i64,
    max_index_size: i32,
    first_uncleanable_offset: i64,
) -> Vec<Vec<&'a SegmentToClean>> {
    let max_size = u64::try_from(max_size).unwrap_or(0);
    let max_index_size = u64::try_from(max_index_size).unwrap_or(0);
    let mut groups = Vec::new();
    let mut i = 0;
    while i < segments.len() {
        let first = segments[i];
        let mut group = vec![first];
        let (mut log_size, mut index_size, mut time_index_size) =
            (first.size, first.offset_index_bytes, first.time_index_bytes);
        i += 1;
        while i < segments.len() {
            let next = segments[i];
            // The last offset `next` may hold: up to the following segment, or the first
            // uncleanable offset for the last one (Kafka's `lastOffsetForFirstSegment`).
            let last_offset = segments
                .get(i + 1)
                .map_or(first_uncleanable_offset, |s| s.base_offset)
                - 1;
            let fits = log_size + next.size <= max_size
                && index_size + next.offset_index_bytes <= max_index_size
                && time_index_size + next.time_index_bytes <= max_index_size
                && (next.size == 0 || last_offset - first.base_offset <= i64::from(i32::MAX));
            if !fits {
                break;
            }
            log_size += next.size;
            index_size += next.offset_index_bytes;
            time_index_size += next.time_index_bytes;
            group.push(next);
            i += 1;
        }
        groups.push(group);
    }
    groups
}

/// Reads the batches of `segment` in chunks of about `buffer` bytes and shows each to `f`
/// (which returns whether to go on).
fn for_each_batch(
    segment: &SegmentToClean,
    buffer: usize,
    throttler: &Throttler,
    mut f: impl FnMut(Bytes, &BatchEntry) -> Result<bool, CleanError>,
) -> Result<(), CleanError> {
    let batches = &segment.batches;
    let mut i = 0;
    while i < batches.len() {
        let start = u64::from(batches[i].position);
        let mut j = i + 1;
        while j < batches.len() && batches[j].end_position() - start <= buffer as u64 {
            j += 1;
        }
        let len = (batches[j - 1].end_position() - start) as usize;
        let mut chunk = vec![0u8; len];
        segment
            .file
            .read_exact_at(&mut chunk, start)
            .map_err(|source| CleanError::Io {
                path: PathBuf::from(segment_file_name(segment.base_offset)),
                source,
            })?;
        throttler.maybe_throttle(len as u64);
        let chunk = Bytes::from(chunk);
        for entry in &batches[i..j] {
            let at = (u64::from(entry.position) - start) as usize;
            if !f(chunk.slice(at..at + entry.size as usize), entry)? {
                return Ok(());
            }
        }
        i = j;
    }
    Ok(())
}

fn parse(bytes: Bytes, entry: &BatchEntry) -> Result<RecordBatch, CleanError> {
    RecordBatch::parse(bytes).map_err(|e| corrupt(entry, e))
}

fn corrupt(entry: &BatchEntry, error: impl std::fmt::Display) -> CleanError {
    CleanError::Corrupt {
        offset: entry.base_offset,
        reason: error.to_string(),
    }
}

/// The type of a control batch's (first) record, `None` if it cannot be read.
fn control_type(batch: &RecordBatch) -> Option<gregor_protocol::records::ControlRecordType> {
    let section = batch.section().ok()?;
    let record = section.iter().next()?.ok()?;
    ControlRecordKey::parse(record.key?)
        .ok()
        .map(|k| k.record_type)
}

/// `<dir>/<name>.cleaned`.
pub(crate) fn cleaned_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}{CLEANED_SUFFIX}"))
}

/// `<20 digits>.<suffix>`.
pub(crate) fn index_file_name(base_offset: i64, suffix: &str) -> String {
    format!("{base_offset:020}.{suffix}")
}
