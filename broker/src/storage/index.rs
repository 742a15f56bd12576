//! Kafka's offset index (`<base>.index`) and time index (`<base>.timeindex`) of a segment.
//!
//! ```text
//! .index      entries of 8 bytes:  relative offset i32 | position i32          (big endian)
//! .timeindex  entries of 12 bytes: timestamp i64       | relative offset i32
//! ```
//!
//! Relative offsets count from the segment's base offset. The entries follow Kafka's rules
//! (its `LogSegment.append` and `LogSegment.recover`), batch by batch:
//!
//! * the largest timestamp so far and the last offset of the batch that first reached it
//!   are tracked;
//! * once more than `index.interval.bytes` bytes were appended since the last entry, the
//!   next batch gets an offset index entry (its last offset, its position) and the time
//!   index gets (largest timestamp so far, its offset) if that timestamp is larger than the
//!   last time index entry's;
//! * when a segment stops being the active one (roll, shutdown, recovery) the time index
//!   gets a last entry for the largest timestamp if it is not there yet.
//!
//! Files are written with plain positional writes (no preallocation, no memory map), so
//! their size is always a whole number of entries, as Kafka leaves them after a clean
//! shutdown.
//!
//! The broker opens segments that need no recovery from these files (see
//! `segment/indexed.rs`: their last entries give the segment's end and largest timestamp)
//! and serves reads from the in-memory batch list of each segment, read from the file on
//! first use and finer than these files. Kafka and its tools can use the data directory.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use gregor_protocol::records::NO_TIMESTAMP;

use super::segment::BatchEntry;

/// Size of an offset index entry.
pub(crate) const OFFSET_ENTRY_SIZE: usize = 8;
/// Size of a time index entry.
pub(crate) const TIME_ENTRY_SIZE: usize = 12;

/// The offset index file of the segment starting at `base_offset` in `dir`.
pub(crate) fn offset_index_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{base_offset:020}.index"))
}

/// The time index file of the segment starting at `base_offset` in `dir`.
pub(crate) fn time_index_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{base_offset:020}.timeindex"))
}

/// One entry of an offset index: the batch holding `offset` (or a later one, for indexes
/// written by old Kafka versions) starts at byte `position`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffsetIndexEntry {
    /// Absolute offset.
    pub offset: i64,
    /// Byte position in the segment file.
    pub position: u32,
}

/// One entry of a time index: the largest timestamp up to `offset` is `timestamp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeIndexEntry {
    /// Largest timestamp so far.
    pub timestamp: i64,
    /// Absolute offset (the last offset of the batch that first reached `timestamp`).
    pub offset: i64,
}

/// Decodes an offset index file; `None` if its size is not a whole number of entries.
pub(crate) fn decode_offset_index(bytes: &[u8], base_offset: i64) -> Option<Vec<OffsetIndexEntry>> {
    if bytes.len() % OFFSET_ENTRY_SIZE != 0 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(OFFSET_ENTRY_SIZE)
            .map(|entry| OffsetIndexEntry {
                offset: base_offset
                    + i64::from(i32::from_be_bytes(entry[0..4].try_into().expect("4 bytes"))),
                position: i32::from_be_bytes(entry[4..8].try_into().expect("4 bytes")) as u32,
            })
            .collect(),
    )
}

/// Decodes a time index file; `None` if its size is not a whole number of entries.
pub(crate) fn decode_time_index(bytes: &[u8], base_offset: i64) -> Option<Vec<TimeIndexEntry>> {
    if bytes.len() % TIME_ENTRY_SIZE != 0 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(TIME_ENTRY_SIZE)
            .map(|entry| TimeIndexEntry {
                timestamp: i64::from_be_bytes(entry[0..8].try_into().expect("8 bytes")),
                offset: base_offset
                    + i64::from(i32::from_be_bytes(
                        entry[8..12].try_into().expect("4 bytes"),
                    )),
            })
            .collect(),
    )
}

/// Appends the encoding of an offset index entry to `out`.
fn encode_offset_entry(base_offset: i64, entry: OffsetIndexEntry, out: &mut Vec<u8>) {
    out.extend_from_slice(&relative(base_offset, entry.offset).to_be_bytes());
    out.extend_from_slice(&(entry.position as i32).to_be_bytes());
}

/// Appends the encoding of a time index entry to `out`.
fn encode_time_entry(base_offset: i64, entry: TimeIndexEntry, out: &mut Vec<u8>) {
    out.extend_from_slice(&entry.timestamp.to_be_bytes());
    out.extend_from_slice(&relative(base_offset, entry.offset).to_be_bytes());
}

/// `offset - base_offset` as an i32 (segments are rolled before it would overflow).
fn relative(base_offset: i64, offset: i64) -> i32 {
    i32::try_from(offset - base_offset).unwrap_or(i32::MAX)
}

/// Kafka's index-building state of one segment, shared by appends, rebuilds and checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IndexBuilder {
    /// The segment's base offset.
    pub(crate) base_offset: i64,
    /// Entries in the offset index file.
    pub(crate) offset_entries: usize,
    /// Entries in the time index file.
    pub(crate) time_entries: usize,
    /// Bytes appended since the last offset index entry (Kafka's `bytesSinceLastIndexEntry`).
    pub(crate) bytes_since_last_entry: u64,
    /// Timestamp of the last time index entry ([`NO_TIMESTAMP`] if none).
    pub(crate) last_time_entry: i64,
    /// Largest batch max timestamp so far ([`NO_TIMESTAMP`] if none).
    pub(crate) max_timestamp: i64,
    /// Last offset of the first batch that reached `max_timestamp`.
    pub(crate) offset_of_max_timestamp: i64,
}

/// Entries produced by [`IndexBuilder`], encoded, to be appended to the files.
#[derive(Debug, Default)]
pub(crate) struct IndexAppend {
    /// Bytes for the end of the offset index file.
    pub(crate) offset_bytes: Vec<u8>,
    /// Bytes for the end of the time index file.
    pub(crate) time_bytes: Vec<u8>,
}

impl IndexBuilder {
    /// The state of an empty segment.
    pub(crate) fn new(base_offset: i64) -> IndexBuilder {
        IndexBuilder {
            base_offset,
            offset_entries: 0,
            time_entries: 0,
            bytes_since_last_entry: 0,
            last_time_entry: NO_TIMESTAMP,
            max_timestamp: NO_TIMESTAMP,
            offset_of_max_timestamp: base_offset,
        }
    }

    /// The state after loading index files that passed [`check_offset_index`] and
    /// [`check_time_index`] for `batches`.
    pub(crate) fn resume(
        base_offset: i64,
        batches: &[BatchEntry],
        offset_index: &[OffsetIndexEntry],
        time_index: &[TimeIndexEntry],
    ) -> IndexBuilder {
        let mut builder = IndexBuilder::new(base_offset);
        for batch in batches {
            builder.observe(batch);
        }
        let end = batches.last().map_or(0, BatchEntry::end_position);
        builder.offset_entries = offset_index.len();
        builder.time_entries = time_index.len();
        builder.bytes_since_last_entry =
            end - offset_index.last().map_or(0, |e| u64::from(e.position));
        builder.last_time_entry = time_index.last().map_or(NO_TIMESTAMP, |e| e.timestamp);
        builder
    }

    /// Tracks the largest timestamp (Kafka's `maxTimestampAndOffsetSoFar`).
    fn observe(&mut self, batch: &BatchEntry) {
        if batch.max_timestamp > self.max_timestamp {
            self.max_timestamp = batch.max_timestamp;
            self.offset_of_max_timestamp = batch.last_offset;
        }
    }

    /// Adds one batch appended at the end of the segment: updates the state and encodes
    /// the entries it gets into `out`. No entry is added to a full index (the segment is
    /// rolled before that happens on appends).
    pub(crate) fn add(
        &mut self,
        batch: &BatchEntry,
        interval_bytes: u64,
        max_offset_entries: usize,
        max_time_entries: usize,
        out: &mut IndexAppend,
    ) {
        self.observe(batch);
        if self.bytes_since_last_entry > interval_bytes {
            if self.offset_entries < max_offset_entries {
                let entry = OffsetIndexEntry {
                    offset: batch.last_offset,
                    position: batch.position,
                };
                encode_offset_entry(self.base_offset, entry, &mut out.offset_bytes);
                self.offset_entries += 1;
            }
            if self.time_entries < max_time_entries {
                self.maybe_add_time_entry(out);
            }
            self.bytes_since_last_entry = 0;
        }
        self.bytes_since_last_entry += u64::from(batch.size);
    }

    /// Kafka's `timeIndex.maybeAppend(maxTimestampSoFar, offsetOfMaxTimestampSoFar)`: adds
    /// an entry if the largest timestamp grew past the last entry's.
    pub(crate) fn maybe_add_time_entry(&mut self, out: &mut IndexAppend) {
        if self.max_timestamp > self.last_time_entry {
            let entry = TimeIndexEntry {
                timestamp: self.max_timestamp,
                offset: self.offset_of_max_timestamp,
            };
            encode_time_entry(self.base_offset, entry, &mut out.time_bytes);
            self.time_entries += 1;
            self.last_time_entry = self.max_timestamp;
        }
    }

    /// Byte position where the next offset index entry goes.
    pub(crate) fn offset_index_len(&self) -> u64 {
        (self.offset_entries * OFFSET_ENTRY_SIZE) as u64
    }

    /// Byte position where the next time index entry goes.
    pub(crate) fn time_index_len(&self) -> u64 {
        (self.time_entries * TIME_ENTRY_SIZE) as u64
    }

    /// Whether either index is full (Kafka rolls the segment then).
    pub(crate) fn is_full(&self, max_offset_entries: usize, max_time_entries: usize) -> bool {
        self.offset_entries >= max_offset_entries || self.time_entries >= max_time_entries
    }
}

/// Builds both index files of a segment from its batches, as Kafka's recovery does
/// (including the closing time index entry); returns the file contents and the state to
/// keep appending with.
pub(crate) fn build_indexes(
    base_offset: i64,
    batches: &[BatchEntry],
    interval_bytes: u64,
    max_offset_entries: usize,
    max_time_entries: usize,
) -> (IndexAppend, IndexBuilder) {
    let mut builder = IndexBuilder::new(base_offset);
    let mut out = IndexAppend::default();
    for batch in batches {
        builder.add(
            batch,
            interval_bytes,
            max_offset_entries,
            max_time_entries,
            &mut out,
        );
    }
    builder.maybe_add_time_entry(&mut out);
    (out, builder)
}

/// Checks an offset index against the segment's batches: offsets strictly increasing,
/// every position the start of a batch, and every offset at or above that batch's base
/// offset and at most the segment's last offset (so that a lookup never lands past the
/// batch holding an offset).
pub(crate) fn check_offset_index(
    entries: &[OffsetIndexEntry],
    batches: &[BatchEntry],
) -> Result<(), &'static str> {
    let Some(last_batch) = batches.last() else {
        return if entries.is_empty() {
            Ok(())
        } else {
            Err("entries in the index of an empty segment")
        };
    };
    let mut previous: Option<OffsetIndexEntry> = None;
    for entry in entries {
        if previous.is_some_and(|p| entry.offset <= p.offset || entry.position <= p.position) {
            return Err("offset index entries out of order");
        }
        let Ok(at) = batches.binary_search_by_key(&entry.position, |b| b.position) else {
            return Err("offset index entry not at a batch boundary");
        };
        if entry.offset < batches[at].base_offset || entry.offset > last_batch.last_offset {
            return Err("offset index entry with an offset outside its batch");
        }
        previous = Some(*entry);
    }
    Ok(())
}

/// Checks a time index against the segment's batches: timestamps and offsets in order,
/// offsets inside the segment, and for each entry `(t, o)` every batch before the one
/// holding `o` has a max timestamp below `t` while the batches up to it reach `t` (so that
/// a lookup from the entry never skips a batch with a timestamp at or above `t`).
pub(crate) fn check_time_index(
    entries: &[TimeIndexEntry],
    batches: &[BatchEntry],
) -> Result<(), &'static str> {
    let Some(last_batch) = batches.last() else {
        return if entries.is_empty() {
            Ok(())
        } else {
            Err("entries in the time index of an empty segment")
        };
    };
    let mut previous: Option<TimeIndexEntry> = None;
    // Prefix maxima of the batch max timestamps, computed as the entries advance.
    let mut at = 0;
    let mut max_before = NO_TIMESTAMP;
    for entry in entries {
        if previous.is_some_and(|p| entry.timestamp <= p.timestamp || entry.offset < p.offset) {
            return Err("time index entries out of order");
        }
        if entry.offset < batches[0].base_offset || entry.offset > last_batch.last_offset {
            return Err("time index entry with an offset outside the segment");
        }
        while at < batches.len() && batches[at].last_offset < entry.offset {
            max_before = max_before.max(batches[at].max_timestamp);
            at += 1;
        }
        let Some(holder) = batches.get(at) else {
            return Err("time index entry with an offset outside the segment");
        };
        if max_before >= entry.timestamp || max_before.max(holder.max_timestamp) < entry.timestamp {
            return Err("time index entry does not match the batch timestamps");
        }
        previous = Some(*entry);
    }
    Ok(())
}

/// Reads an index file; `Ok(None)` if it does not exist.
pub(crate) fn read_index_file(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

/// Replaces the contents of an index file with `bytes` and syncs it.
pub(crate) fn write_index_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_index_file_unsynced(path, bytes)?.sync_data()
}

/// Replaces the contents of an index file with `bytes` without syncing it (the caller
/// syncs it before anything relies on it surviving a power loss); returns the open file.
pub(crate) fn write_index_file_unsynced(path: &Path, bytes: &[u8]) -> io::Result<File> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    file.write_all(bytes)?;
    Ok(file)
}

/// Opens an index file for appending entries at positional offsets (created if missing).
pub(crate) fn open_index_for_write(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}
