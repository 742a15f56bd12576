//! [`MetadataLog`]: the appender of `<log.dir>/__cluster_metadata-0/`, writing Kafka's own
//! format, as a single-node KRaft quorum whose only voter is this node.
//!
//! ```text
//! __cluster_metadata-0/
//!   00000000000000000000.log         segments: v2 record batches (magic 2, CRC32C)
//!   00000000000000000000.index       offset index: 8-byte entries (relative offset, position)
//!   00000000000000000000.timeindex   time index: 12-byte entries (timestamp, relative offset)
//!   leader-epoch-checkpoint          the first offset of each leader epoch
//! ```
//!
//! # Opening
//!
//! [`MetadataLog::open`] continues the log [`replay::load`](super::replay::load) read:
//!
//! 1. it truncates the torn tail replay reported ([`LoadedMetadata::truncate_at`]);
//! 2. it picks the active segment: the last one if it ends exactly where replay stopped,
//!    else a new one at [`LoadedMetadata::next_offset`] (after a snapshot, say), and
//!    rebuilds the active segment's `.index` and `.timeindex` from its batches (what Kafka's
//!    recovery does after an unclean shutdown);
//! 3. it starts a new leader epoch (the last epoch + 1, or 1 for a fresh log) with a
//!    `LeaderChangeMessage` control batch naming this node as leader and only voter, as
//!    Kafka's single-node KRaft does each time it becomes leader, and records the epoch in
//!    `leader-epoch-checkpoint`;
//! 4. if replay discarded an unfinished metadata transaction, it appends an
//!    `AbortTransactionRecord` (reason "Controller failover"), as Kafka's controller does
//!    when it becomes active.
//!
//! # Appending
//!
//! [`MetadataLog::append`] writes one batch (several records, atomically: a torn batch
//! fails its CRC and is dropped as a whole at the next start) with base offset
//! [`MetadataLog::next_offset`], partition leader epoch [`MetadataLog::epoch`], null keys
//! and framed metadata records as values, then fsyncs the segment **before** returning:
//! the caller applies the records to the image only once they are durable. A batch is at
//! most [`MAX_BATCH_BYTES`] (Kafka's KRaft limit). The active segment is rolled before a
//! batch that would take it past the segment size (`metadata.log.segment.bytes`).
//!
//! Index entries follow Kafka's `LogSegment.append`: an offset index entry (the batch's
//! last offset, its position) and a time index entry (the largest timestamp so far, when it
//! grew) once more than `index.interval.bytes` (4096) were appended since the last entry.
//! Index files are not preallocated (Kafka resizes them when it opens the segment) and are
//! synced when a segment is rolled; a lost entry only makes a lookup scan longer.
//!
//! A failed write is undone by truncating the segment back; a failed fsync leaves the file
//! in an unknown state, so the log refuses every later append
//! ([`MetadataLogError::Failed`]) until the broker restarts and replays what is on disk.
//!
//! The active segment is also rolled before a batch once its first batch is older than
//! `metadata.log.segment.ms` (Kafka's `LogSegment.shouldRoll` by time).
//!
//! Segments are deleted only below a snapshot ([`MetadataLog::delete_segments_below`],
//! called by the snapshot retention of [`snapshot_retention`](super::snapshot_retention)):
//! a segment goes when the next one starts at or below the new log start offset (Kafka's
//! `UnifiedLog.deleteOldSegments` after `maybeIncrementLogStartOffset`), and the leader
//! epoch cache is truncated from the start as Kafka's `truncateFromStart` does.
//!
//! Not written: `quorum-state` (Kafka rebuilds it from the log's epochs) and
//! `partition.metadata` of the metadata partition. Snapshots are written by
//! [`snapshot`](super::snapshot).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use gregor_protocol::messages::abort_transaction_record::AbortTransactionRecord;
use gregor_protocol::messages::leader_change_message::{LeaderChangeMessage, Voter};
use gregor_protocol::metadata_frame::VersionedRecord;
use gregor_protocol::records::{
    Batch, ControlRecordKey, ControlRecordType, NewRecord, RecordBatchBuilder, RecordBatches,
};
use gregor_protocol::{Encodable, MetadataRecord};

use crate::storage::leader_epoch::{self, EpochEntry};

mod quorum_ops;
pub use quorum_ops::BatchLocation;

use super::replay::{
    LoadedMetadata, METADATA_PARTITION_DIR, parse_segment_file_name, segment_file_name,
};

/// Kafka's default `metadata.log.segment.bytes` (1 GiB).
pub const DEFAULT_SEGMENT_BYTES: u64 = 1024 * 1024 * 1024;
/// Kafka's default `metadata.log.segment.ms` (7 days).
pub const DEFAULT_SEGMENT_MS: i64 = 7 * 24 * 60 * 60 * 1000;
/// The largest batch KRaft writes (8 MiB).
pub const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;
/// Kafka's default `index.interval.bytes`, which the metadata log uses.
pub const INDEX_INTERVAL_BYTES: u64 = 4096;
/// Suffix of offset index files.
pub const OFFSET_INDEX_SUFFIX: &str = ".index";
/// Suffix of time index files.
pub const TIME_INDEX_SUFFIX: &str = ".timeindex";
/// The leader epoch cache file of the partition.
pub use crate::storage::leader_epoch::LEADER_EPOCH_CHECKPOINT;
/// The reason Kafka's controller gives when it aborts an unfinished transaction.
pub const ABORT_REASON: &str = "Controller failover";

/// Size of an offset index entry.
const OFFSET_ENTRY: usize = 8;
/// Size of a time index entry.
const TIME_ENTRY: usize = 12;

/// Why the metadata log could not be opened or appended to.
#[derive(Debug, thiserror::Error)]
pub enum MetadataLogError {
    /// A file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A record could not be encoded (a value too large for its field, say).
    #[error("cannot encode a metadata record: {0}")]
    Encode(String),
    /// The batch exceeds [`MAX_BATCH_BYTES`].
    #[error("a metadata batch of {size} bytes exceeds the limit of {max} bytes")]
    BatchTooLarge {
        /// Size of the batch.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The files do not continue the log replay read.
    #[error("{}: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An earlier fsync failed: the log accepts nothing more until the broker restarts.
    #[error("the metadata log is unusable after an earlier failure: {0}")]
    Failed(String),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> MetadataLogError + '_ {
    move |source| MetadataLogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Settings of the metadata log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataLogOptions {
    /// This node's id: the leader and only voter of every epoch.
    pub node_id: i32,
    /// Size at which the active segment is rolled (`metadata.log.segment.bytes`).
    pub segment_bytes: u64,
    /// Bytes between index entries (`index.interval.bytes`).
    pub index_interval_bytes: u64,
    /// Age of the active segment's first batch at which it is rolled
    /// (`metadata.log.segment.ms`).
    pub segment_ms: i64,
}

impl MetadataLogOptions {
    /// Kafka's defaults for node `node_id`.
    pub fn new(node_id: i32) -> MetadataLogOptions {
        MetadataLogOptions {
            node_id,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            index_interval_bytes: INDEX_INTERVAL_BYTES,
            segment_ms: DEFAULT_SEGMENT_MS,
        }
    }
}

/// Where a batch was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendedBatch {
    /// Offset of its first record.
    pub base_offset: i64,
    /// Offset of its last record.
    pub last_offset: i64,
    /// Its partition leader epoch.
    pub epoch: i32,
    /// Base offset of the segment it is in.
    pub segment: i64,
    /// Its byte position in that segment.
    pub position: u64,
    /// Its size in bytes.
    pub size: usize,
}

/// An unfinished transaction that [`MetadataLog::open`] aborted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbortedTransaction {
    /// Offset of its `BeginTransactionRecord`.
    pub begin_offset: i64,
    /// Offset of the `AbortTransactionRecord` written.
    pub abort_offset: i64,
}

/// What [`MetadataLog::open`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenReport {
    /// The torn tail that was cut: the segment and the length it was truncated to.
    pub truncated: Option<(PathBuf, u64)>,
    /// The new epoch.
    pub epoch: i32,
    /// Offset of the `LeaderChangeMessage` that started it.
    pub leader_change_offset: i64,
    /// The unfinished transaction that was aborted, if any.
    pub aborted_transaction: Option<AbortedTransaction>,
}

/// The segment being appended to.
#[derive(Debug)]
struct ActiveSegment {
    base_offset: i64,
    path: PathBuf,
    file: File,
    size: u64,
    offset_index: IndexFile,
    time_index: IndexFile,
    bytes_since_index_entry: u64,
    /// Largest batch max timestamp so far (-1 for none) and the last offset of its batch.
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
    /// Timestamp of the last time index entry (-1 for none).
    last_time_entry: i64,
    /// Max timestamp of the first batch (-1 for an empty segment): what a roll by time
    /// measures from.
    first_timestamp: i64,
}

/// An index file written by appending entries; a failed write disables it (the index is
/// an optimisation that Kafka rebuilds when it finds it inconsistent).
#[derive(Debug)]
struct IndexFile {
    path: PathBuf,
    file: Option<File>,
}

impl IndexFile {
    /// Creates (or empties) the file and writes `entries`.
    fn create(path: PathBuf, entries: &[u8]) -> Result<IndexFile, MetadataLogError> {
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .map_err(io_error(&path))?;
        file.write_all(entries).map_err(io_error(&path))?;
        Ok(IndexFile {
            path,
            file: Some(file),
        })
    }

    fn append(&mut self, entry: &[u8]) {
        if let Some(file) = &mut self.file
            && let Err(e) = file.write_all(entry)
        {
            tracing::warn!(file = %self.path.display(), "cannot write an index entry, no longer indexing: {e}");
            self.file = None;
        }
    }

    fn sync(&self) {
        if let Some(file) = &self.file
            && let Err(e) = file.sync_all()
        {
            tracing::warn!(file = %self.path.display(), "cannot sync an index: {e}");
        }
    }
}

fn offset_entry(relative_offset: i64, position: u64) -> [u8; OFFSET_ENTRY] {
    let mut entry = [0u8; OFFSET_ENTRY];
    entry[..4].copy_from_slice(&(relative_offset as i32).to_be_bytes());
    entry[4..].copy_from_slice(&(position as i32).to_be_bytes());
    entry
}

fn time_entry(timestamp: i64, relative_offset: i64) -> [u8; TIME_ENTRY] {
    let mut entry = [0u8; TIME_ENTRY];
    entry[..8].copy_from_slice(&timestamp.to_be_bytes());
    entry[8..].copy_from_slice(&(relative_offset as i32).to_be_bytes());
    entry
}

/// The header facts of one batch of a segment.
#[derive(Clone, Copy, Debug)]
struct BatchInfo {
    position: u64,
    size: u64,
    last_offset: i64,
    max_timestamp: i64,
}

/// Index bookkeeping of a segment, advanced batch by batch as Kafka's `LogSegment.append`.
#[derive(Clone, Copy, Debug)]
struct IndexState {
    bytes_since_index_entry: u64,
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
    last_time_entry: i64,
}

impl IndexState {
    fn new(base_offset: i64) -> IndexState {
        IndexState {
            bytes_since_index_entry: 0,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            last_time_entry: -1,
        }
    }

    /// Accounts for a batch; returns the offset and time index entries to write (relative
    /// offsets).
    fn add(
        &mut self,
        base_offset: i64,
        batch: BatchInfo,
        interval: u64,
    ) -> (Option<[u8; OFFSET_ENTRY]>, Option<[u8; TIME_ENTRY]>) {
        if batch.max_timestamp > self.max_timestamp {
            self.max_timestamp = batch.max_timestamp;
            self.offset_of_max_timestamp = batch.last_offset;
        }
        let mut entries = (None, None);
        if self.bytes_since_index_entry > interval {
            entries.0 = Some(offset_entry(
                batch.last_offset - base_offset,
                batch.position,
            ));
            entries.1 = self.time_entry(base_offset);
            self.bytes_since_index_entry = 0;
        }
        self.bytes_since_index_entry += batch.size;
        entries
    }

    /// Kafka's `TimeIndex.maybeAppend`: an entry only when the timestamp grew.
    fn time_entry(&mut self, base_offset: i64) -> Option<[u8; TIME_ENTRY]> {
        (self.max_timestamp > self.last_time_entry).then(|| {
            self.last_time_entry = self.max_timestamp;
            time_entry(
                self.max_timestamp,
                self.offset_of_max_timestamp - base_offset,
            )
        })
    }
}

fn index_path(dir: &Path, base_offset: i64, suffix: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}{suffix}"))
}

/// Reads the batch headers of a segment; fails if anything but whole v2 batches follows.
fn scan_segment(path: &Path, data: Bytes) -> Result<Vec<BatchInfo>, MetadataLogError> {
    let len = data.len();
    let mut batches = RecordBatches::new(data);
    let mut out = Vec::new();
    loop {
        let position = batches.position();
        match batches.next() {
            None => break,
            Some(Ok(Batch::V2(batch))) => out.push(BatchInfo {
                position: position as u64,
                size: batch.size() as u64,
                last_offset: batch.last_offset(),
                max_timestamp: batch.header().max_timestamp,
            }),
            Some(Ok(Batch::Legacy(_))) | Some(Err(_)) => {
                return Err(MetadataLogError::Corrupt {
                    path: path.to_path_buf(),
                    reason: format!("unreadable batch at byte {position} of the last segment"),
                });
            }
        }
    }
    if batches.position() != len {
        return Err(MetadataLogError::Corrupt {
            path: path.to_path_buf(),
            reason: format!(
                "partial batch at byte {} of the last segment",
                batches.position()
            ),
        });
    }
    Ok(out)
}

impl ActiveSegment {
    /// Creates an empty segment at `base_offset` (failing if the file exists).
    fn create(dir: &Path, base_offset: i64) -> Result<ActiveSegment, MetadataLogError> {
        let path = dir.join(segment_file_name(base_offset));
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(io_error(&path))?;
        sync_dir(dir);
        Ok(ActiveSegment {
            base_offset,
            path,
            file,
            size: 0,
            offset_index: IndexFile::create(
                index_path(dir, base_offset, OFFSET_INDEX_SUFFIX),
                &[],
            )?,
            time_index: IndexFile::create(index_path(dir, base_offset, TIME_INDEX_SUFFIX), &[])?,
            bytes_since_index_entry: 0,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            last_time_entry: -1,
            first_timestamp: -1,
        })
    }

    /// Opens an existing segment whose batches are `batches`, rebuilding its indexes.
    fn reopen(
        dir: &Path,
        base_offset: i64,
        path: PathBuf,
        batches: &[BatchInfo],
        interval: u64,
    ) -> Result<ActiveSegment, MetadataLogError> {
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_error(&path))?;
        let size = file.metadata().map_err(io_error(&path))?.len();
        let mut state = IndexState::new(base_offset);
        let mut offsets = Vec::new();
        let mut times = Vec::new();
        for batch in batches {
            let (offset, time) = state.add(base_offset, *batch, interval);
            offsets.extend(offset.into_iter().flatten());
            times.extend(time.into_iter().flatten());
        }
        Ok(ActiveSegment {
            base_offset,
            path,
            file,
            size,
            offset_index: IndexFile::create(
                index_path(dir, base_offset, OFFSET_INDEX_SUFFIX),
                &offsets,
            )?,
            time_index: IndexFile::create(index_path(dir, base_offset, TIME_INDEX_SUFFIX), &times)?,
            bytes_since_index_entry: state.bytes_since_index_entry,
            max_timestamp: state.max_timestamp,
            offset_of_max_timestamp: state.offset_of_max_timestamp,
            last_time_entry: state.last_time_entry,
            first_timestamp: batches.first().map_or(-1, |b| b.max_timestamp),
        })
    }

    fn index_state(&self) -> IndexState {
        IndexState {
            bytes_since_index_entry: self.bytes_since_index_entry,
            max_timestamp: self.max_timestamp,
            offset_of_max_timestamp: self.offset_of_max_timestamp,
            last_time_entry: self.last_time_entry,
        }
    }

    fn set_index_state(&mut self, state: IndexState) {
        self.bytes_since_index_entry = state.bytes_since_index_entry;
        self.max_timestamp = state.max_timestamp;
        self.offset_of_max_timestamp = state.offset_of_max_timestamp;
        self.last_time_entry = state.last_time_entry;
    }

    /// What Kafka does when a segment stops being the active one: a last time index entry
    /// for the largest timestamp, and synced indexes.
    fn finish(&mut self) {
        let mut state = self.index_state();
        if let Some(entry) = state.time_entry(self.base_offset) {
            self.time_index.append(&entry);
        }
        self.set_index_state(state);
        self.offset_index.sync();
        self.time_index.sync();
    }
}

/// Fsyncs a directory so that file creations and renames in it are durable (best effort:
/// not every platform can open directories).
fn sync_dir(dir: &Path) {
    if let Ok(handle) = File::open(dir) {
        let _ = handle.sync_all();
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Reads `leader-epoch-checkpoint` (`0`, the entry count, then `<epoch> <start offset>`
/// lines) with the partition logs' reader ([`leader_epoch::read_checkpoint`]); `None` if
/// the file is missing, unreadable or malformed.
pub fn read_leader_epoch_checkpoint(partition_dir: &Path) -> Option<Vec<(i32, i64)>> {
    let entries = leader_epoch::read_checkpoint(partition_dir).ok()??;
    Some(entries.iter().map(|e| (e.epoch, e.start_offset)).collect())
}

/// Writes `leader-epoch-checkpoint` with the partition logs' writer
/// ([`leader_epoch::write_checkpoint`]: Kafka's `CheckpointFile`, a synced temporary file
/// renamed over the old one).
fn write_leader_epoch_checkpoint(
    partition_dir: &Path,
    entries: &[(i32, i64)],
) -> Result<(), MetadataLogError> {
    let entries: Vec<EpochEntry> = entries
        .iter()
        .map(|&(epoch, start_offset)| EpochEntry {
            epoch,
            start_offset,
        })
        .collect();
    leader_epoch::write_checkpoint(partition_dir, &entries)
        .map_err(io_error(&partition_dir.join(LEADER_EPOCH_CHECKPOINT)))
}

/// The appender of the KRaft metadata log (see the module docs).
#[derive(Debug)]
pub struct MetadataLog {
    dir: PathBuf,
    options: MetadataLogOptions,
    epoch: i32,
    next_offset: i64,
    active: ActiveSegment,
    epochs: Vec<(i32, i64)>,
    failure: Option<String>,
    /// Bytes of batches appended since the log was opened.
    appended_bytes: u64,
    /// Timestamp of the last batch appended (-1 for none since the log was opened).
    last_timestamp: i64,
}

impl MetadataLog {
    /// Opens the metadata log under `log_dir` after `loaded` was read from it: truncates
    /// the torn tail, starts a new epoch with a `LeaderChangeMessage`, and aborts an
    /// unfinished transaction (see the module docs). Blocking file I/O.
    pub fn open(
        log_dir: &Path,
        loaded: &LoadedMetadata,
        options: MetadataLogOptions,
    ) -> Result<(MetadataLog, OpenReport), MetadataLogError> {
        let (mut log, truncated) = Self::open_files(log_dir, loaded, options)?;
        log.epoch = log.epoch.max(0) + 1;
        let leader_change_offset = log.append_leader_change()?;
        let mut aborted_transaction = None;
        if let Some(begin_offset) = loaded.discarded_transaction {
            let abort = MetadataRecord::AbortTransaction(AbortTransactionRecord {
                reason: Some(ABORT_REASON.into()),
                ..Default::default()
            });
            let appended = log.append(&[VersionedRecord {
                version: 0,
                record: abort,
            }])?;
            tracing::warn!(
                begin_offset,
                abort_offset = appended.base_offset,
                "aborted the unfinished metadata transaction"
            );
            aborted_transaction = Some(AbortedTransaction {
                begin_offset,
                abort_offset: appended.base_offset,
            });
        }
        let report = OpenReport {
            truncated,
            epoch: log.epoch,
            leader_change_offset,
            aborted_transaction,
        };
        Ok((log, report))
    }

    /// Steps 1 and 2 of [`MetadataLog::open`]: truncates the torn tail and picks the active
    /// segment; the log's epoch is the last one written (0 for an empty log), and nothing is
    /// appended. Returns the log and the truncation done.
    #[allow(clippy::type_complexity)]
    fn open_files(
        log_dir: &Path,
        loaded: &LoadedMetadata,
        options: MetadataLogOptions,
    ) -> Result<(MetadataLog, Option<(PathBuf, u64)>), MetadataLogError> {
        let dir = log_dir.join(METADATA_PARTITION_DIR);
        fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        let mut truncated = None;
        if let Some((path, position)) = &loaded.truncate_at {
            let file = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(io_error(path))?;
            let file_len = file.metadata().map_err(io_error(path))?.len();
            file.set_len(*position).map_err(io_error(path))?;
            file.sync_all().map_err(io_error(path))?;
            tracing::warn!(
                file = %path.display(),
                position,
                dropped_bytes = file_len.saturating_sub(*position),
                "truncated the damaged tail of the metadata log"
            );
            truncated = Some((path.clone(), *position));
        }
        let active = Self::open_active(&dir, loaded.next_offset, options.index_interval_bytes)?;

        let mut epochs = read_leader_epoch_checkpoint(&dir).unwrap_or_else(|| {
            if dir.join(LEADER_EPOCH_CHECKPOINT).exists() {
                tracing::warn!(dir = %dir.display(), "ignoring a malformed {LEADER_EPOCH_CHECKPOINT}");
            }
            Vec::new()
        });
        // Epochs that start past the end of the log belong to truncated batches.
        epochs.retain(|(_, start)| *start < loaded.next_offset);
        let last_epoch = epochs
            .last()
            .map_or(loaded.last_epoch, |(e, _)| (*e).max(loaded.last_epoch));

        let log = MetadataLog {
            dir,
            options,
            epoch: last_epoch.max(0),
            next_offset: loaded.next_offset,
            active,
            epochs,
            failure: None,
            appended_bytes: 0,
            last_timestamp: -1,
        };
        Ok((log, truncated))
    }

    /// Picks the active segment (see the module docs).
    fn open_active(
        dir: &Path,
        next_offset: i64,
        interval: u64,
    ) -> Result<ActiveSegment, MetadataLogError> {
        let mut segments = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_error(dir))? {
            let entry = entry.map_err(io_error(dir))?;
            if let Some(base) = entry.file_name().to_str().and_then(parse_segment_file_name) {
                segments.push((base, entry.path()));
            }
        }
        segments.sort();
        let Some((base, path)) = segments.pop() else {
            return ActiveSegment::create(dir, next_offset);
        };
        let data = fs::read(&path).map_err(io_error(&path))?;
        let batches = scan_segment(&path, Bytes::from(data))?;
        let end = batches.last().map_or(base, |b| b.last_offset + 1);
        if end == next_offset {
            return ActiveSegment::reopen(dir, base, path, &batches, interval);
        }
        if end > next_offset {
            return Err(MetadataLogError::Corrupt {
                path,
                reason: format!(
                    "the segment ends at offset {end} but the metadata read ends at {next_offset}"
                ),
            });
        }
        if batches.is_empty() {
            // An empty segment that does not start where the log continues: replace it.
            fs::remove_file(&path).map_err(io_error(&path))?;
            for suffix in [OFFSET_INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                let _ = fs::remove_file(index_path(dir, base, suffix));
            }
        }
        // The log continues past this segment (from a snapshot): start a new one.
        ActiveSegment::create(dir, next_offset)
    }

    /// The offset the next record gets.
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// Offset of the last record written (-1 for none).
    pub fn last_offset(&self) -> i64 {
        self.next_offset - 1
    }

    /// The current epoch (the partition leader epoch of the batches written).
    pub fn epoch(&self) -> i32 {
        self.epoch
    }

    /// The partition directory (`<log.dir>/__cluster_metadata-0`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Base offset of the active segment.
    pub fn active_segment(&self) -> i64 {
        self.active.base_offset
    }

    /// Bytes of batches appended since the log was opened (what the snapshot policy
    /// counts).
    pub fn appended_bytes(&self) -> u64 {
        self.appended_bytes
    }

    /// Timestamp of the last batch appended since the log was opened (-1 for none).
    pub fn last_append_timestamp(&self) -> i64 {
        self.last_timestamp
    }

    /// The leader epochs and their start offsets, as in `leader-epoch-checkpoint`.
    pub fn epochs(&self) -> &[(i32, i64)] {
        &self.epochs
    }

    /// Appends `records` as one batch and fsyncs it (see the module docs). On error nothing
    /// was appended.
    pub fn append(
        &mut self,
        records: &[VersionedRecord],
    ) -> Result<AppendedBatch, MetadataLogError> {
        if records.is_empty() {
            return Err(MetadataLogError::Encode("an empty batch".to_string()));
        }
        let timestamp = now_ms();
        let mut values = Vec::with_capacity(records.len());
        for versioned in records {
            let mut buf = BytesMut::with_capacity(versioned.record.framed_len(versioned.version));
            versioned
                .record
                .encode_framed(&mut buf, versioned.version)
                .map_err(|e| MetadataLogError::Encode(e.to_string()))?;
            values.push(NewRecord::new(timestamp, None, Some(buf.freeze())));
        }
        let batch = RecordBatchBuilder::new()
            .base_offset(self.next_offset)
            .partition_leader_epoch(self.epoch)
            .build(&values)
            .map_err(|e| MetadataLogError::Encode(e.to_string()))?;
        self.write_batch(&batch, records.len() as i64, timestamp)
    }

    /// Appends the `LeaderChangeMessage` control batch that starts the current epoch.
    fn append_leader_change(&mut self) -> Result<i64, MetadataLogError> {
        let node = self.options.node_id;
        let voter = || Voter {
            voter_id: node,
            ..Default::default()
        };
        let message = LeaderChangeMessage {
            version: 0,
            leader_id: node,
            voters: vec![voter()],
            granting_voters: vec![voter()],
            ..Default::default()
        };
        let value = message
            .to_bytes(0)
            .map_err(|e| MetadataLogError::Encode(e.to_string()))?;
        let timestamp = now_ms();
        let key = ControlRecordKey::new(ControlRecordType::LeaderChange).encode();
        let batch = RecordBatchBuilder::new()
            .control(true)
            .base_offset(self.next_offset)
            .partition_leader_epoch(self.epoch)
            .build(&[NewRecord::new(timestamp, Some(key), Some(value))])
            .map_err(|e| MetadataLogError::Encode(e.to_string()))?;
        let appended = self.write_batch(&batch, 1, timestamp)?;
        if self.epochs.last().is_none_or(|(e, _)| *e < self.epoch) {
            self.epochs.push((self.epoch, appended.base_offset));
        }
        write_leader_epoch_checkpoint(&self.dir, &self.epochs)?;
        tracing::info!(
            epoch = self.epoch,
            offset = appended.base_offset,
            leader = node,
            "started a new metadata log epoch"
        );
        Ok(appended.base_offset)
    }

    /// Writes an encoded batch at the end of the active segment (rolling first if needed),
    /// fsyncs it and updates the indexes.
    fn write_batch(
        &mut self,
        batch: &[u8],
        count: i64,
        timestamp: i64,
    ) -> Result<AppendedBatch, MetadataLogError> {
        if let Some(failure) = &self.failure {
            return Err(MetadataLogError::Failed(failure.clone()));
        }
        if batch.len() > MAX_BATCH_BYTES {
            return Err(MetadataLogError::BatchTooLarge {
                size: batch.len(),
                max: MAX_BATCH_BYTES,
            });
        }
        let too_old = self.active.first_timestamp >= 0
            && timestamp.saturating_sub(self.active.first_timestamp) > self.options.segment_ms;
        if self.active.size > 0
            && (self.active.size + batch.len() as u64 > self.options.segment_bytes || too_old)
        {
            self.roll()?;
        }
        let position = self.active.size;
        let path = self.active.path.clone();
        if let Err(source) = self.active.file.write_all(batch) {
            // Undo a partial write; if even that fails, the file's end is unknown.
            if let Err(e) = self.active.file.set_len(position) {
                self.failure = Some(format!("{}: {e}", path.display()));
            }
            return Err(MetadataLogError::Io { path, source });
        }
        if let Err(source) = self.active.file.sync_data() {
            self.failure = Some(format!("fsync of {}: {source}", path.display()));
            return Err(MetadataLogError::Io { path, source });
        }
        let base_offset = self.next_offset;
        let info = BatchInfo {
            position,
            size: batch.len() as u64,
            last_offset: base_offset + count - 1,
            max_timestamp: timestamp,
        };
        let mut state = self.active.index_state();
        let (offset_entry, time_entry) = state.add(
            self.active.base_offset,
            info,
            self.options.index_interval_bytes,
        );
        self.active.set_index_state(state);
        if let Some(entry) = offset_entry {
            self.active.offset_index.append(&entry);
        }
        if let Some(entry) = time_entry {
            self.active.time_index.append(&entry);
        }
        self.active.size += batch.len() as u64;
        if self.active.first_timestamp < 0 {
            self.active.first_timestamp = timestamp;
        }
        self.appended_bytes += batch.len() as u64;
        self.last_timestamp = timestamp;
        self.next_offset += count;
        Ok(AppendedBatch {
            base_offset,
            last_offset: base_offset + count - 1,
            epoch: self.epoch,
            segment: self.active.base_offset,
            position,
            size: batch.len(),
        })
    }

    /// The segments on disk, sorted by base offset: base offset, path and size.
    pub fn segments(&self) -> Result<Vec<(i64, PathBuf, u64)>, MetadataLogError> {
        let mut segments = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_error(&self.dir))? {
            let entry = entry.map_err(io_error(&self.dir))?;
            if let Some(base) = entry.file_name().to_str().and_then(parse_segment_file_name) {
                let size = entry.metadata().map_err(io_error(&entry.path()))?.len();
                segments.push((base, entry.path(), size));
            }
        }
        segments.sort();
        Ok(segments)
    }

    /// The log start offset: the base offset of the first segment (Kafka's, for a log
    /// whose start only moves by deleting segments below a snapshot).
    pub fn log_start_offset(&self) -> Result<i64, MetadataLogError> {
        Ok(self
            .segments()?
            .first()
            .map_or(self.active.base_offset, |(base, _, _)| *base))
    }

    /// Deletes every segment whose successor starts at or below `offset` (never the active
    /// one), with its indexes, and truncates the leader epoch cache from the start at the
    /// new log start offset. Returns the base offsets deleted. `offset` must be the end
    /// offset of a snapshot that was written: the records below it are in the snapshot.
    pub fn delete_segments_below(&mut self, offset: i64) -> Result<Vec<i64>, MetadataLogError> {
        let segments = self.segments()?;
        let mut deleted = Vec::new();
        for pair in segments.windows(2) {
            let ((base, path, _), (next_base, _, _)) = (&pair[0], &pair[1]);
            if *next_base > offset || *base == self.active.base_offset {
                break;
            }
            fs::remove_file(path).map_err(io_error(path))?;
            for suffix in [OFFSET_INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                let _ = fs::remove_file(index_path(&self.dir, *base, suffix));
            }
            tracing::info!(segment = %path.display(), log_start_offset = offset, "deleted a metadata log segment below the snapshot");
            deleted.push(*base);
        }
        if !deleted.is_empty() {
            sync_dir(&self.dir);
            let start = self.log_start_offset()?;
            let mut cache = leader_epoch::LeaderEpochCache::from_entries(self.epochs.iter().map(
                |&(epoch, start_offset)| EpochEntry {
                    epoch,
                    start_offset,
                },
            ));
            if cache.truncate_from_start(start) {
                self.epochs = cache
                    .entries()
                    .iter()
                    .map(|e| (e.epoch, e.start_offset))
                    .collect();
                write_leader_epoch_checkpoint(&self.dir, &self.epochs)?;
            }
        }
        Ok(deleted)
    }

    /// Closes the active segment and starts a new one at the next offset.
    fn roll(&mut self) -> Result<(), MetadataLogError> {
        let next = ActiveSegment::create(&self.dir, self.next_offset)?;
        self.active.finish();
        let old = std::mem::replace(&mut self.active, next);
        tracing::info!(
            segment = %old.path.display(),
            next_offset = self.next_offset,
            "rolled the metadata log segment"
        );
        Ok(())
    }
}
