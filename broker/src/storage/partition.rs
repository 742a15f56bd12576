//! One partition's log: its segments and their Kafka index files, recovery when opened,
//! reads with Fetch semantics, validated appends with segment rolls and idempotent producer
//! checks, flushes, retention, timestamp lookups, and the end offset watch that wakes
//! long-polling fetches.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use arc_swap::ArcSwap;
use bytes::{Bytes, BytesMut};
use gregor_protocol::records::{
    BatchHeader, DEFAULT_MAX_DECOMPRESSED_SIZE, LOG_OVERHEAD, LegacyMessage, MAGIC_V2,
    NO_TIMESTAMP, RECORD_BATCH_OVERHEAD, RecordBatch, set_base_offset, set_log_append_time,
    set_partition_leader_epoch,
};
use tokio::sync::watch;

use super::checkpoint::{self, LogStartOffsets};
use super::config::{LogConfig, TimestampType};
use super::index::{self, IndexAppend, IndexBuilder};
use super::leader_epoch::{self, EpochEntry, LeaderEpochCache};
use super::producer_state::{
    ProducerBatch, ProducerCheck, ProducerEntry, ProducerStateManager, TxnVerification,
};
use super::segment::{
    BatchEntry, MAX_SEGMENT_BYTES, Segment, now_ms, parse_segment_file_name, segment_file_name,
};
use super::txn_index::AbortedTxn;
use super::validate::{ValidatedBatch, ValidatedRecords, set_max_timestamp};
use super::{ReadError, StorageError, unpoison};

mod compaction;
mod deferred_flush;
mod follower;
mod group_commit;
mod high_watermark;
mod inline;
mod listing;
mod open;
mod producers;
mod retention;
mod transactions;

pub(crate) use self::compaction::CleaningView;
#[cfg(test)]
pub(crate) use self::compaction::CrashPoint;
pub use self::high_watermark::FetchIsolation;
use self::inline::AppendError;
pub use self::inline::{InlineAppend, PendingAppend};
use self::listing::Listing;
use self::open::*;
use self::producers::ProducerLoad;

/// Most segments one [`PartitionLog::read`] spans; a read that would cross more returns the
/// batches of the first ones (the client fetches the rest next). Kafka itself never crosses
/// a segment boundary in one read.
pub const MAX_SEGMENTS_PER_READ: usize = 16;

/// Suffix Kafka (and this module) gives files being deleted; leftovers are removed on open.
const DELETED_SUFFIX: &str = ".deleted";
/// The files of a segment besides the `.log`, removed with it.
const SEGMENT_SIDE_FILES: [&str; 3] = ["index", "timeindex", "txnindex"];

/// The name of a partition's directory: `<topic>-<partition>`.
pub fn partition_dir_name(topic: &str, partition: i32) -> String {
    format!("{topic}-{partition}")
}

/// The result of [`PartitionLog::read`]: whole batches and the partition's offsets, taken
/// together under the log's lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRead {
    /// Whole batches, exactly as stored (v2 batches, or legacy messages from old logs);
    /// empty at the log end or when nothing fits.
    pub records: Bytes,
    /// The high watermark (the log end offset while the log is its partition's only
    /// replica, see [`PartitionLog::high_watermark`]).
    pub high_watermark: i64,
    /// The log start offset.
    pub log_start_offset: i64,
    /// The last stable offset: the first offset of the oldest ongoing transaction, else
    /// the high watermark.
    pub last_stable_offset: i64,
    /// For READ_COMMITTED reads, the aborted transactions overlapping the records read
    /// (Kafka's `collectAbortedTransactions`); `None` for READ_UNCOMMITTED.
    pub aborted_transactions: Option<Vec<AbortedTxn>>,
}

/// What [`PartitionLog::append`] (or [`PartitionLog::append_batch`]) did: the fields of a
/// Produce response partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset assigned to the first record.
    pub base_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
    /// The log end offset after the append.
    pub log_end_offset: i64,
    /// The time stamped on the batches when the topic uses `LogAppendTime`, else -1.
    pub log_append_time: i64,
    /// The log start offset at the time of the append.
    pub log_start_offset: i64,
    /// Whether nothing was appended because a batch was a duplicate of one of its
    /// producer's last batches (a retry): the offsets are the original batch's, and
    /// `log_append_time` is its max timestamp, as Kafka answers duplicates.
    pub duplicate: bool,
}

/// A record found by [`PartitionLog::offset_for_timestamp`] or
/// [`PartitionLog::max_timestamp`], as ListOffsets answers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimestampOffset {
    /// The record's offset.
    pub offset: i64,
    /// The record's timestamp.
    pub timestamp: i64,
    /// The partition leader epoch of its batch (-1 if unknown).
    pub leader_epoch: i32,
}

/// A summary of one segment, from [`PartitionLog::segments`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// The base offset the file is named after.
    pub base_offset: i64,
    /// The offset after its last batch (its base offset if it is empty).
    pub next_offset: i64,
    /// Bytes of whole batches served from it.
    pub size: u64,
    /// Number of batches indexed.
    pub batch_count: usize,
    /// Largest batch max timestamp (-1 if none).
    pub max_timestamp: i64,
    /// The `.log` file.
    pub path: PathBuf,
}

/// Where [`PartitionLog::open`] found the log to end early: a partial batch at the end of a
/// segment (a crash mid-write), bytes that are not a batch chaining on the previous one, or
/// (when recovering) a batch failing its CRC. The segment was truncated at `position` and
/// the later segments removed, as Kafka's recovery does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The segment file.
    pub path: PathBuf,
    /// Its base offset.
    pub segment_base_offset: i64,
    /// Byte position where the data ends (the file's size now).
    pub position: u64,
    /// Size of the file when it was opened.
    pub file_len: u64,
    /// What was found at `position`.
    pub reason: &'static str,
    /// Later segment files that were removed.
    pub dropped_segments: Vec<PathBuf>,
}

/// What [`PartitionLog::open`] did to make the log consistent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Whether the log directory held Kafka's clean shutdown marker (no recovery needed).
    pub clean_shutdown: bool,
    /// Segments whose every batch was read and checked (CRC) because they may hold data
    /// written after the last flush (from the recovery point on, after an unclean
    /// shutdown).
    pub verified_segments: usize,
    /// Segments whose `.index`/`.timeindex` files were missing, did not match the segment
    /// or were rebuilt by the recovery.
    pub rebuilt_indexes: usize,
    /// Bytes cut off the end of the log (torn or corrupt tail and removed segments).
    pub truncated_bytes: u64,
    /// Segments opened from their index files after a clean shutdown, their batches not
    /// read (only those after the last offset index entry, for the next offset).
    pub indexed_segments: usize,
    /// Segments recovered after an unclean shutdown from an offset index entry at or below
    /// the recovery point, the batches before it not read (see `segment/recover_from.rs`).
    pub recovered_from_index: usize,
}

/// How to open a log: its config and what the log directory's files say about it.
#[derive(Clone, Debug, Default)]
pub(crate) struct OpenParams {
    /// The partition's settings.
    pub(crate) config: LogConfig,
    /// Whether the log directory holds the clean shutdown marker.
    pub(crate) clean_shutdown: bool,
    /// The partition's entry in `recovery-point-offset-checkpoint`.
    pub(crate) recovery_point: Option<i64>,
    /// The partition's entry in `log-start-offset-checkpoint`.
    pub(crate) log_start_offset: Option<i64>,
    /// Where the log directory's log start offsets are persisted.
    pub(crate) log_starts: Option<Arc<LogStartOffsets>>,
}

impl OpenParams {
    /// Reads the marker and the checkpoints of `log_dir` for one partition (a checkpoint
    /// that cannot be read counts as missing).
    pub(crate) fn from_log_dir(
        log_dir: &Path,
        topic: &str,
        partition: i32,
        config: LogConfig,
    ) -> OpenParams {
        let key = (topic.to_owned(), partition);
        let entry = |name: &str| {
            let path = log_dir.join(name);
            match checkpoint::read_checkpoint(&path) {
                Ok(offsets) => offsets.and_then(|o| o.get(&key).copied()),
                Err(error) => {
                    tracing::warn!(file = %path.display(), %error, "ignoring an unreadable checkpoint");
                    None
                }
            }
        };
        OpenParams {
            config,
            clean_shutdown: checkpoint::has_clean_shutdown(log_dir),
            recovery_point: entry(checkpoint::RECOVERY_POINT_CHECKPOINT),
            log_start_offset: entry(checkpoint::LOG_START_OFFSET_CHECKPOINT),
            log_starts: None,
        }
    }
}

/// One partition's log in Kafka's layout: `<log dir>/<topic>-<partition>/<base>.log` with
/// its `.index` and `.timeindex`.
///
/// Shared as `Arc<PartitionLog>`. The segment list and its batch index sit behind an
/// `RwLock` that readers hold only to look up offsets, never during file I/O; appends (and
/// rolls, retention, DeleteRecords) are serialised by a separate writer lock and take the
/// `RwLock` for writing only to publish batches already written, so they never wait for a
/// read's I/O, and readers never see a batch before it is whole in the file. Each partition
/// has its own locks: partitions never wait on each other.
///
/// Every method doing file I/O is blocking: async code calls them inside
/// `tokio::task::spawn_blocking` (or uses [`Self::read_async`]).
#[derive(Debug)]
pub struct PartitionLog {
    topic: String,
    partition: i32,
    log_dir: PathBuf,
    dir: PathBuf,
    state: RwLock<LogState>,
    writer: Mutex<Option<ActiveWriter>>,
    end_offset: watch::Sender<i64>,
    torn_tail: Option<TornTail>,
    report: OpenReport,
    deleted: AtomicBool,
    closed: AtomicBool,
    config: ArcSwap<LogConfig>,
    /// Offsets below this are synced to disk (Kafka's recovery point).
    recovery_point: AtomicI64,
    /// Wall-clock time of the last flush, for `flush.ms`.
    last_flush_ms: AtomicI64,
    /// The flushes' syncs in flight, shared by concurrent flushes (group commit).
    group_commit: group_commit::GroupCommit,
    log_starts: Option<Arc<LogStartOffsets>>,
    /// Idempotent producers' epochs and last batches. Changed only under the writer lock
    /// (always taken first), so that checks, offsets and updates are atomic with appends.
    producers: Mutex<ProducerStateManager>,
    /// The log that replaced this one when its replica moved to another log directory
    /// (see [`super::move_replica`]): appends that reach this log afterwards go there.
    successor: std::sync::OnceLock<Arc<PartitionLog>>,
    /// The leader epoch cache (see [`super::leader_epoch`]), mirrored in the partition
    /// directory's `leader-epoch-checkpoint`. Changed by appends under the writer lock.
    epochs: Mutex<LeaderEpochCache>,
    /// Files the open wrote without syncing them, synced before the recovery point moves
    /// (see [`deferred_flush::Unsynced`]).
    unsynced: Mutex<deferred_flush::Unsynced>,
}

/// What readers look up.
#[derive(Debug)]
struct LogState {
    /// Sorted by base offset; their offset ranges do not overlap.
    segments: Vec<Segment>,
    log_start_offset: i64,
    log_end_offset: i64,
    /// First offset of the oldest ongoing transaction (Kafka's `firstUnstableOffset`),
    /// published with the batches that change it.
    first_unstable_offset: Option<i64>,
    /// The high watermark as last set (see [`high_watermark`]); kept equal to the log end
    /// offset while `hw_follows_leo`.
    high_watermark: i64,
    /// Whether the high watermark is the log end offset (a partition whose only replica is
    /// this log: the single-node default), rather than set by replication.
    hw_follows_leo: bool,
}

/// The write handles of the active (last) segment and its index files.
#[derive(Debug)]
struct ActiveWriter {
    base_offset: i64,
    file: Arc<File>,
    /// Where the next batch goes.
    position: u64,
    offset_index: Arc<File>,
    time_index: Arc<File>,
    index: IndexBuilder,
}

/// One contiguous byte range of one segment, planned under the lock and read after it.
#[derive(Debug)]
struct ReadRange {
    file: Arc<File>,
    segment_base_offset: i64,
    position: u64,
    len: usize,
}

/// How an append treats the batches.
#[derive(Clone, Copy, Debug)]
struct AppendMode {
    /// Set as the partition leader epoch of every batch.
    leader_epoch: Option<i32>,
    /// Stamped as the log append time of every batch.
    log_append_time: Option<i64>,
    /// Whether batches with a producer id are checked against the producer state (client
    /// and coordinator appends) or only recorded in it (trusted appends).
    check_producers: bool,
    /// KIP-890 verification of transactional batches (client appends).
    verification: TxnVerification,
    /// Whether the batches keep the offsets they carry (a follower's append of what the
    /// leader assigned: Kafka's `appendAsFollower`) instead of getting the next ones.
    keep_offsets: bool,
    /// Leave a due `flush.messages` flush to the caller ([`PartitionLog::flush_if_reached`],
    /// issue 14's pipelined Produce: the next request appends while this one syncs).
    defer_flush: bool,
}

impl PartitionLog {
    /// The partition's settings.
    pub fn config(&self) -> Arc<LogConfig> {
        self.config.load_full()
    }

    /// Replaces the partition's settings (a topic config change); the next append uses
    /// them.
    pub fn set_config(&self, config: LogConfig) {
        self.config.store(Arc::new(config));
    }

    /// What opening the log did (recovery, rebuilt indexes, truncation).
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// Offsets below this are synced to disk (Kafka's recovery point).
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point.load(Ordering::Acquire)
    }

    /// Messages appended since the last flush (the log end offset minus the recovery
    /// point), which `flush.messages` bounds.
    pub fn unflushed_messages(&self) -> i64 {
        (self.log_end_offset() - self.recovery_point()).max(0)
    }

    /// The topic name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The partition index.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// `<topic>-<partition>`, for messages.
    pub fn name(&self) -> String {
        partition_dir_name(&self.topic, self.partition)
    }

    /// The partition's directory (`<log dir>/<topic>-<partition>`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The log directory holding the partition's directory.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// Where opening stopped early, if it did (see [`TornTail`]).
    pub fn torn_tail(&self) -> Option<&TornTail> {
        self.torn_tail.as_ref()
    }

    /// The first offset served: the base offset of the first segment (0 for a log without
    /// segments), or higher once raised by [`Self::advance_log_start_offset`].
    pub fn log_start_offset(&self) -> i64 {
        unpoison(self.state.read()).log_start_offset
    }

    /// The offset after the last batch (the offset the next append gets).
    pub fn log_end_offset(&self) -> i64 {
        unpoison(self.state.read()).log_end_offset
    }

    /// The high watermark: the offset below which every record is on all in-sync
    /// replicas. The log end offset while the log is its partition's only replica (the
    /// default); set by replication otherwise (see [`high_watermark`]).
    pub fn high_watermark(&self) -> i64 {
        unpoison(self.state.read()).high_watermark()
    }

    /// The last stable offset (Kafka's `UnifiedLog.lastStableOffset`): the first offset of
    /// the oldest ongoing transaction (at least the log start offset), else the high
    /// watermark. READ_COMMITTED consumers read up to it.
    pub fn last_stable_offset(&self) -> i64 {
        unpoison(self.state.read()).last_stable_offset()
    }

    /// The bytes of the log's segments (what DescribeLogDirs reports), without reading
    /// any segment's batch list (unlike [`Self::segments`]).
    pub fn size_bytes(&self) -> u64 {
        let state = unpoison(self.state.read());
        state.segments.iter().map(|s| s.valid_len).sum()
    }

    /// The segments, in offset order. `batch_count` reads the batch list of segments opened
    /// from their index files and not read since.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        unpoison(self.state.read())
            .segments
            .iter()
            .map(|segment| SegmentInfo {
                base_offset: segment.base_offset,
                next_offset: segment.next_offset(),
                size: segment.valid_len,
                batch_count: segment.batches().len(),
                max_timestamp: segment.max_timestamp(),
                path: segment.path.clone(),
            })
            .collect()
    }

    /// What this partition knows of idempotent producer `producer_id`: its epoch and last
    /// batches (`None` if it never wrote here, or expired).
    pub fn producer_state(&self, producer_id: i64) -> Option<ProducerEntry> {
        unpoison(self.producers.lock()).get(producer_id).cloned()
    }

    /// Every idempotent producer this partition knows, by producer id (DescribeProducers'
    /// view).
    pub fn producer_states(&self) -> Vec<(i64, ProducerEntry)> {
        unpoison(self.producers.lock()).entries()
    }

    /// The index entry of the batch holding `offset`, or of the first batch after it if
    /// `offset` falls in a gap; `None` past the last batch.
    pub fn find_batch(&self, offset: i64) -> Option<BatchEntry> {
        let state = unpoison(self.state.read());
        let segments = &state.segments;
        let first = segments.partition_point(|s| s.next_offset() <= offset);
        segments[first..].iter().find_map(|segment| {
            let at = segment
                .batches()
                .partition_point(|b| b.last_offset < offset);
            segment.batches().get(at).copied()
        })
    }

    /// Reads whole batches from `fetch_offset`, with Kafka's Fetch semantics:
    ///
    /// * `fetch_offset` equal to the log end offset: no records.
    /// * below the log start offset or above the log end offset:
    ///   [`ReadError::OffsetOutOfRange`].
    /// * otherwise the batch holding `fetch_offset` (its base offset may be lower: the
    ///   client skips the earlier records) and the batches after it, across segments, while
    ///   the total stays within `max_bytes`. A first batch larger than `max_bytes` is
    ///   returned alone if `min_one_message` (Kafka sets it for the first partition of a
    ///   response), else nothing is.
    ///
    /// The bytes are read once from the file straight into the returned buffer (one
    /// positional read per segment touched, into one allocation of the exact total size).
    ///
    /// Blocking file I/O: async callers use [`Self::read_async`] or wrap the call in
    /// `tokio::task::spawn_blocking`.
    pub fn read(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        min_one_message: bool,
    ) -> Result<LogRead, ReadError> {
        self.read_isolated(fetch_offset, max_bytes, min_one_message, false)
    }

    /// [`Self::read`] at an isolation level: with `read_committed` (Fetch's
    /// `isolation_level` 1) the batches stop at the last stable offset (a fetch offset at
    /// or past it, up to the log end offset, reads nothing) and
    /// [`LogRead::aborted_transactions`] lists the aborted transactions overlapping what
    /// was read, as Kafka's `LocalLog.read` with `FetchIsolation.TXN_COMMITTED` does.
    pub fn read_isolated(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        min_one_message: bool,
        read_committed: bool,
    ) -> Result<LogRead, ReadError> {
        let isolation = if read_committed {
            FetchIsolation::TxnCommitted
        } else {
            FetchIsolation::HighWatermark
        };
        self.read_with_isolation(fetch_offset, max_bytes, min_one_message, isolation)
    }

    /// [`Self::read`] bounded as Kafka's `FetchIsolation` says: consumers read up to the
    /// high watermark (READ_UNCOMMITTED) or the last stable offset (READ_COMMITTED, with
    /// the aborted transactions), followers up to the log end offset.
    pub fn read_with_isolation(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        min_one_message: bool,
        isolation: FetchIsolation,
    ) -> Result<LogRead, ReadError> {
        let read_committed = isolation == FetchIsolation::TxnCommitted;
        let mut ranges: [Option<ReadRange>; MAX_SEGMENTS_PER_READ] =
            [const { None }; MAX_SEGMENTS_PER_READ];
        let (log_start_offset, high_watermark, last_stable_offset, total, aborted) = {
            let state = unpoison(self.state.read());
            let (log_start, log_end) = (state.log_start_offset, state.log_end_offset);
            if fetch_offset < log_start || fetch_offset > log_end {
                return Err(ReadError::OffsetOutOfRange { log_start, log_end });
            }
            let last_stable = state.last_stable_offset();
            let high_watermark = state.high_watermark();
            let max_offset = match isolation {
                FetchIsolation::LogEnd => log_end,
                FetchIsolation::HighWatermark => high_watermark,
                FetchIsolation::TxnCommitted => last_stable,
            };
            let (total, upper) = if fetch_offset < max_offset {
                plan_read(
                    &state.segments,
                    fetch_offset,
                    max_offset,
                    max_bytes,
                    min_one_message,
                    &mut ranges,
                )
            } else {
                (0, fetch_offset)
            };
            let aborted = read_committed.then(|| {
                if total == 0 {
                    Vec::new()
                } else {
                    transactions::collect_aborted_transactions(&state.segments, fetch_offset, upper)
                }
            });
            (log_start, high_watermark, last_stable, total, aborted)
        };
        let records = if total == 0 {
            Bytes::new()
        } else {
            let mut buf = Vec::with_capacity(total);
            for range in ranges.iter().flatten() {
                super::positional_read::read_exact_appending(
                    &range.file,
                    &mut buf,
                    range.len,
                    range.position,
                )
                .map_err(|source| ReadError::Io {
                    segment_base_offset: range.segment_base_offset,
                    source,
                })?;
            }
            Bytes::from(buf)
        };
        Ok(LogRead {
            records,
            high_watermark,
            log_start_offset,
            last_stable_offset,
            aborted_transactions: aborted,
        })
    }

    /// [`Self::read`] on tokio's blocking thread pool (must be called inside a tokio
    /// runtime).
    pub async fn read_async(
        self: &Arc<Self>,
        fetch_offset: i64,
        max_bytes: usize,
        min_one_message: bool,
    ) -> Result<LogRead, ReadError> {
        let log = Arc::clone(self);
        let task =
            tokio::task::spawn_blocking(move || log.read(fetch_offset, max_bytes, min_one_message));
        match task.await {
            Ok(result) => result,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(error) => Err(ReadError::Io {
                segment_base_offset: 0,
                source: io::Error::other(error),
            }),
        }
    }

    /// A receiver of the log end offset: `changed().await` on it returns once the end offset
    /// moved (appends), for fetches waiting on `min_bytes`. The receiver also wakes, with an
    /// error, when the log is dropped.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.end_offset.subscribe()
    }

    /// Waits until the log end offset differs from `seen_end_offset` and returns it
    /// (immediately if it already does).
    pub async fn changed(&self, seen_end_offset: i64) -> i64 {
        let mut receiver = self.subscribe();
        match receiver.wait_for(|&end| end != seen_end_offset).await {
            Ok(end) => *end,
            // The sender lives as long as `self`: unreachable, but harmless.
            Err(_) => self.log_end_offset(),
        }
    }

    /// Appends one partition's validated records (see
    /// [`validate_records`](super::validate_records)) at the log end offset, in one write:
    ///
    /// * each batch gets its base offset (rewritten in place; the CRC does not cover it) and
    ///   `leader_epoch` as its partition leader epoch;
    /// * with `message.timestamp.type=LogAppendTime` each batch is stamped with `now_ms`
    ///   (CRC recomputed); with `CreateTime` a header max timestamp that disagrees with the
    ///   records is corrected, as Kafka does;
    /// * a new segment is rolled first when the active one would exceed `segment.bytes`, is
    ///   older than `segment.ms` (by its first batch's timestamp against the new records',
    ///   or by its creation time without timestamps), or its index is full;
    /// * the `.index` and `.timeindex` entries are written, then the batches are published
    ///   to readers and subscribers woken;
    /// * with `flush.messages` reached, the log is synced before returning.
    ///
    /// Batches with a producer id are first checked against the partition's producer state
    /// (see [`super::producer_state`]), under the writer lock with the offsets they would
    /// get: an older epoch or a sequence out of order is [`StorageError::Producer`] and
    /// nothing is appended; a retried batch (same producer, epoch and sequences as one of
    /// the producer's last 5) is not appended again but answered with the original batch's
    /// offsets ([`AppendInfo::duplicate`]). The state is updated once the batches are
    /// written.
    ///
    /// The records' buffer is reused if nothing else shares it, else copied once. Blocking
    /// file I/O (`spawn_blocking` from async code).
    ///
    /// Transactional batches start or continue their producer's transaction (see
    /// [`Self::append_with_verification`] for KIP-890's verification, not required here).
    pub fn append(
        &self,
        validated: ValidatedRecords,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, StorageError> {
        self.append_with_verification(
            validated,
            leader_epoch,
            now_ms,
            TxnVerification::NotRequired,
        )
    }

    /// Appends one encoded v2 batch as it is, without validating its records: only its base
    /// offset is rewritten (in `batch` itself), not its leader epoch or timestamps, and its
    /// producer id, epoch and sequence are recorded in the producer state without checks
    /// (as Kafka does for replicated batches). For tools and tests; the Produce path uses
    /// [`super::validate_records`] and [`Self::append`].
    /// Rolls and flushes as [`Self::append`] does. Blocking file I/O.
    pub fn append_batch(&self, batch: &mut [u8]) -> Result<AppendInfo, StorageError> {
        let header = check_batch(batch)?;
        let described = [ValidatedBatch::from_header(&header, 0, batch.len())];
        let mode = AppendMode {
            leader_epoch: None,
            log_append_time: None,
            check_producers: false,
            verification: TxnVerification::NotRequired,
            keep_offsets: false,
            defer_flush: false,
        };
        self.append_buffer(batch, &described, mode, now_ms(), &self.config())
    }

    /// The write path shared by [`Self::append`] and [`Self::append_batch`]: `buf` holds
    /// exactly the described batches.
    fn append_buffer(
        &self,
        buf: &mut [u8],
        batches: &[ValidatedBatch],
        mode: AppendMode,
        now_ms: i64,
        config: &LogConfig,
    ) -> Result<AppendInfo, StorageError> {
        self.write_batches(buf, batches, mode, now_ms, config, false)
            .map_err(AppendError::into_storage)
    }

    /// [`Self::append_buffer`]; with `inline`, [`AppendError::WouldBlock`] (before `buf` or
    /// the log changed) instead of anything that may block for long: see [`inline`].
    fn write_batches(
        &self,
        buf: &mut [u8],
        batches: &[ValidatedBatch],
        mode: AppendMode,
        now_ms: i64,
        config: &LogConfig,
        inline: bool,
    ) -> Result<AppendInfo, AppendError> {
        let record_count: i64 = batches.iter().map(|b| i64::from(b.record_count)).sum();
        if batches.is_empty() || record_count <= 0 {
            return Err(StorageError::InvalidBatch("no records").into());
        }
        let size = buf.len() as u64;
        let mut writer = if inline {
            self.try_lock_writer()?
        } else {
            unpoison(self.writer.lock())
        };
        if let Some(next) = self.successor.get() {
            // The replica moved to another log directory while this append waited for the
            // lock: it belongs to the log that replaced this one.
            drop(writer);
            return next.write_batches(buf, batches, mode, now_ms, &next.config(), inline);
        }
        self.check_writable()?;
        // The batches' first offsets: given by the leader (checked to follow the log end
        // and each other), else assigned from the log end on (empty: no allocation).
        let kept = if mode.keep_offsets {
            follower::kept_offsets(buf, batches, self.log_end_offset())?
        } else {
            Vec::new()
        };
        let base_offset = kept.first().copied().unwrap_or(self.log_end_offset());
        if inline {
            self.check_inline(&writer, batches, mode, record_count, size, now_ms, config)?;
        }
        let producer_batches = producer_batches(batches, base_offset, &kept, mode.log_append_time);
        let marker =
            transactions::control_marker(buf, batches, base_offset, &kept, mode.log_append_time);
        if inline && marker.is_some() {
            return Err(AppendError::WouldBlock);
        }
        let marker_update = match &marker {
            Some(marker) => Some(self.marker_update(marker, mode.check_producers)?),
            None => None,
        };
        let producer_update = if mode.check_producers && !producer_batches.is_empty() {
            let checked =
                unpoison(self.producers.lock()).check_with(&producer_batches, mode.verification)?;
            match checked {
                ProducerCheck::Append(update) => Some(update),
                ProducerCheck::Duplicate(original) => {
                    return Ok(AppendInfo {
                        base_offset: original.first_offset,
                        last_offset: original.last_offset,
                        log_end_offset: base_offset,
                        log_append_time: original.max_timestamp,
                        log_start_offset: self.log_start_offset(),
                        duplicate: true,
                    });
                }
            }
        } else {
            None
        };
        self.prepare_writer(&mut writer)?;
        let last_offset = match (kept.last(), batches.last()) {
            (Some(first), Some(batch)) => first.checked_add(i64::from(batch.record_count) - 1),
            _ => base_offset.checked_add(record_count - 1),
        };
        let last_offset = last_offset
            .filter(|last| *last < i64::MAX)
            .ok_or(StorageError::InvalidBatch("offsets overflow"))?;
        let max_timestamp = mode.log_append_time.unwrap_or_else(|| {
            batches
                .iter()
                .map(|b| b.max_timestamp)
                .max()
                .unwrap_or(NO_TIMESTAMP)
        });
        let active = writer.as_ref().expect("the writer is set");
        if self.should_roll(active, config, size, max_timestamp, last_offset, now_ms) {
            self.roll_locked(&mut writer, base_offset)?;
        }
        let active = writer.as_mut().expect("the writer is set");

        let mut entries = Vec::with_capacity(batches.len());
        let mut new_epochs: Vec<EpochEntry> = Vec::new();
        let mut next = base_offset;
        for (i, batch) in batches.iter().enumerate() {
            let bytes = &mut buf[batch.position..batch.position + batch.size];
            let not_v2 = |_| StorageError::InvalidBatch("not a v2 batch");
            match kept.get(i) {
                Some(&given) => next = given,
                None => set_base_offset(bytes, next).map_err(not_v2)?,
            }
            if let Some(epoch) = mode.leader_epoch {
                set_partition_leader_epoch(bytes, epoch).map_err(not_v2)?;
            }
            // The partition leader epoch field follows the base offset and the length.
            let epoch = i32::from_be_bytes(bytes[12..16].try_into().expect("a v2 header"));
            if new_epochs
                .last()
                .is_none_or(|e: &EpochEntry| e.epoch != epoch)
            {
                new_epochs.push(EpochEntry {
                    epoch,
                    start_offset: next,
                });
            }
            let batch_max_timestamp = match mode.log_append_time {
                Some(time) => {
                    set_log_append_time(bytes, time).map_err(not_v2)?;
                    time
                }
                None => {
                    if batch.max_timestamp != batch.header_max_timestamp {
                        set_max_timestamp(bytes, batch.max_timestamp);
                    }
                    batch.max_timestamp
                }
            };
            let last = next + i64::from(batch.record_count) - 1;
            entries.push(BatchEntry {
                base_offset: next,
                last_offset: last,
                position: (active.position + batch.position as u64) as u32,
                size: batch.size as u32,
                max_timestamp: batch_max_timestamp,
                magic: MAGIC_V2,
            });
            next = last + 1;
        }

        let path = self.segment_path(active.base_offset);
        if let Err(error) = active.file.write_all_at(buf, active.position) {
            // Do not leave part of a batch behind; the next append overwrites it anyway.
            let _ = active.file.set_len(active.position);
            return Err(StorageError::io(path, error).into());
        }
        let mut index = active.index.clone();
        let mut index_append = IndexAppend::default();
        let interval = u64::try_from(config.index_interval_bytes).unwrap_or(0);
        let (max_offset_entries, max_time_entries) = (
            config.max_offset_index_entries(),
            config.max_time_index_entries(),
        );
        for entry in &entries {
            index.add(
                entry,
                interval,
                max_offset_entries,
                max_time_entries,
                &mut index_append,
            );
        }
        if let Err(error) = self.write_index_entries(active, &index_append) {
            let _ = active.file.set_len(active.position);
            return Err(error.into());
        }
        let aborted = marker_update.as_ref().and_then(|u| u.aborted_txn());
        if let Some(aborted) = &aborted
            && let Err(error) = self.append_aborted_txn(active.base_offset, aborted)
        {
            let _ = active.file.set_len(active.position);
            return Err(error.into());
        }
        active.index = index;
        active.position += size;
        // Nothing fails from here on: the producer state changes, then readers see the
        // batches (and the LSO they move) at once.
        let first_unstable_offset = {
            let mut producers = unpoison(self.producers.lock());
            match producer_update {
                Some(update) => producers.apply(update),
                None => producer_batches.iter().for_each(|b| producers.replay(b)),
            }
            if let Some(update) = marker_update {
                producers.apply_marker(update);
            }
            producers.first_unstable_offset()
        };
        let log_start_offset = {
            let mut state = unpoison(self.state.write());
            let segment = state.segments.last_mut().expect("the writer's segment");
            for entry in entries {
                segment.push(entry);
            }
            segment.aborted_txns.extend(aborted);
            state.log_end_offset = next;
            if state.hw_follows_leo {
                state.high_watermark = next;
            }
            state.first_unstable_offset = first_unstable_offset;
            state.log_start_offset
        };
        // Inline appends were checked to leave the epoch cache as it is (`check_inline`).
        if !inline {
            self.update_epochs(|cache| {
                new_epochs.iter().fold(false, |changed, e| {
                    cache.assign(e.epoch, e.start_offset) | changed
                })
            });
        }
        drop(writer);
        self.end_offset.send_replace(next);
        // An inline append was checked to stay below `flush.messages`; a later append that
        // reaches it (not inline, then) flushes for both.
        if !inline && !mode.defer_flush && self.unflushed_messages() >= config.flush_messages {
            self.flush()?;
        }
        Ok(AppendInfo {
            base_offset,
            last_offset,
            log_end_offset: next,
            log_append_time: mode.log_append_time.unwrap_or(-1),
            log_start_offset,
            duplicate: false,
        })
    }

    /// Appends encoded index entries at the end of the active segment's index files.
    fn write_index_entries(
        &self,
        active: &ActiveWriter,
        entries: &IndexAppend,
    ) -> Result<(), StorageError> {
        let base = active.base_offset;
        if !entries.offset_bytes.is_empty() {
            active
                .offset_index
                .write_all_at(&entries.offset_bytes, active.index.offset_index_len())
                .map_err(|e| StorageError::io(index::offset_index_path(&self.dir, base), e))?;
        }
        if !entries.time_bytes.is_empty() {
            active
                .time_index
                .write_all_at(&entries.time_bytes, active.index.time_index_len())
                .map_err(|e| StorageError::io(index::time_index_path(&self.dir, base), e))?;
        }
        Ok(())
    }

    /// Kafka's `LogSegment.shouldRoll` for an append of `size` bytes whose largest
    /// timestamp is `max_timestamp` and last offset `last_offset`.
    fn should_roll(
        &self,
        active: &ActiveWriter,
        config: &LogConfig,
        size: u64,
        max_timestamp: i64,
        last_offset: i64,
        now_ms: i64,
    ) -> bool {
        if active.position == 0 {
            return false;
        }
        let segment_bytes = u64::try_from(config.segment_bytes)
            .unwrap_or(0)
            .min(MAX_SEGMENT_BYTES);
        if active.position + size > segment_bytes {
            return true;
        }
        let (rolling_timestamp, created_ms) = {
            let state = unpoison(self.state.read());
            let active_segment = state.segments.last().expect("the writer's segment");
            (
                active_segment.rolling_timestamp(),
                active_segment.created_ms,
            )
        };
        let waited = match rolling_timestamp {
            Some(first) if first >= 0 => max_timestamp.saturating_sub(first),
            _ => now_ms.saturating_sub(created_ms).max(0),
        };
        waited > config.segment_ms
            || active.index.is_full(
                config.max_offset_index_entries(),
                config.max_time_index_entries(),
            )
            || last_offset - active.base_offset > i64::from(i32::MAX)
    }

    /// Starts a new, empty segment at the log end offset (after syncing the previous one to
    /// disk) and returns its base offset; does nothing if the last segment is already empty
    /// and starts there.
    pub fn roll_segment(&self) -> Result<i64, StorageError> {
        let mut writer = unpoison(self.writer.lock());
        self.check_writable()?;
        self.prepare_writer(&mut writer)?;
        let (end, done) = {
            let state = unpoison(self.state.read());
            let end = state.log_end_offset;
            let done = state
                .segments
                .last()
                .is_some_and(|s| s.is_empty() && s.base_offset == end);
            (end, done)
        };
        if !done {
            self.roll_locked(&mut writer, end)?;
        }
        Ok(end)
    }

    /// Rolls under the writer lock: closes the active segment's time index (Kafka's last
    /// entry), syncs every segment not yet synced, creates the new segment at `base_offset`
    /// and moves the recovery point to it.
    fn roll_locked(
        &self,
        writer: &mut Option<ActiveWriter>,
        base_offset: i64,
    ) -> Result<(), StorageError> {
        if let Some(previous) = writer.as_mut() {
            self.finish_segment(previous)?;
        }
        self.sync_segments_from(self.recovery_point())?;
        self.sync_unsynced()?;
        self.new_segment(writer, base_offset)?;
        // Kafka's `roll` snapshots the producer state at the new segment's base offset.
        self.take_producer_snapshot(base_offset);
        self.recovery_point.fetch_max(base_offset, Ordering::AcqRel);
        tracing::debug!(
            topic = %self.topic,
            partition = self.partition,
            base_offset,
            "rolled a new segment"
        );
        Ok(())
    }

    /// Adds the time index's closing entry of the active segment (Kafka's
    /// `onBecomeInactiveSegment`) and syncs its log and index files.
    fn finish_segment(&self, active: &mut ActiveWriter) -> Result<(), StorageError> {
        let mut closing = IndexAppend::default();
        let mut index = active.index.clone();
        index.maybe_add_time_entry(&mut closing);
        self.write_index_entries(active, &closing)?;
        active.index = index;
        let base = active.base_offset;
        active
            .file
            .sync_data()
            .map_err(|e| StorageError::io(self.segment_path(base), e))?;
        active
            .offset_index
            .sync_data()
            .map_err(|e| StorageError::io(index::offset_index_path(&self.dir, base), e))?;
        active
            .time_index
            .sync_data()
            .map_err(|e| StorageError::io(index::time_index_path(&self.dir, base), e))
    }

    /// Syncs the segment files that may hold offsets at or above `from`.
    fn sync_segments_from(&self, from: i64) -> Result<(), StorageError> {
        let files: Vec<(Arc<File>, PathBuf)> = {
            let state = unpoison(self.state.read());
            state
                .segments
                .iter()
                .filter(|s| s.next_offset() > from || s.is_empty())
                .map(|s| (Arc::clone(&s.file), s.path.clone()))
                .collect()
        };
        for (file, path) in files {
            file.sync_data().map_err(|e| StorageError::io(path, e))?;
        }
        Ok(())
    }

    /// Syncs everything appended so far to disk (the segments from the recovery point on:
    /// one `fdatasync` of the active segment) and moves the recovery point to
    /// the log end offset. Appends continue meanwhile. Blocking file I/O.
    ///
    /// Group commit (issue 14, [`group_commit`]): a flush whose appends a sync in flight
    /// already covers waits for it instead of syncing again, so concurrent producers to one
    /// partition with `flush.messages=1` share `fdatasync`s (Kafka's `UnifiedLog.flush`
    /// likewise skips what is below the recovery point).
    pub fn flush(&self) -> Result<(), StorageError> {
        let wanted = self.log_end_offset();
        let turn =
            self.group_commit
                .join(wanted, || self.recovery_point(), || self.log_end_offset());
        if turn == group_commit::Turn::Covered {
            return Ok(());
        }
        let synced = self.sync_to_end();
        self.group_commit
            .finish(synced.is_ok(), self.recovery_point());
        synced
    }

    /// [`Self::flush`]'s syncs.
    fn sync_to_end(&self) -> Result<(), StorageError> {
        let end = {
            let _writer = unpoison(self.writer.lock());
            self.log_end_offset()
        };
        let recovery_point = self.recovery_point();
        if end > recovery_point {
            self.sync_segments_from(recovery_point)?;
            self.sync_unsynced()?;
            // The active segment's `.index` and `.timeindex` are not synced here (issue 14):
            // recovery after a crash always rebuilds the active segment's indexes from its
            // batches (`open.rs`: it has no upper bound, so it is past any recovery point),
            // as Kafka's `LogLoader` recovers every segment from the checkpointed recovery
            // point on. They are synced before the recovery point is checkpointed
            // ([`Self::sync_active_indexes`]) and when the segment is rolled.
            self.recovery_point.fetch_max(end, Ordering::AcqRel);
        }
        self.last_flush_ms.store(now_ms(), Ordering::Release);
        Ok(())
    }

    /// Flushes if `flush.ms` has passed since the last flush and something is unflushed
    /// (Kafka's periodic flusher); returns whether it flushed.
    pub fn flush_if_due(&self, now_ms: i64) -> Result<bool, StorageError> {
        let flush_ms = self.config().flush_ms;
        if flush_ms == i64::MAX || self.unflushed_messages() == 0 {
            return Ok(false);
        }
        let since = now_ms.saturating_sub(self.last_flush_ms.load(Ordering::Acquire));
        if since < flush_ms {
            return Ok(false);
        }
        self.flush()?;
        Ok(true)
    }

    /// Closes the log for shutdown: adds the active segment's closing time index entry,
    /// syncs everything and refuses later appends ([`StorageError::Closed`]); reads keep
    /// working. Blocking file I/O.
    pub fn close(&self) -> Result<(), StorageError> {
        {
            let mut writer = unpoison(self.writer.lock());
            self.closed.store(true, Ordering::Release);
            if let Some(active) = writer.as_mut() {
                self.finish_segment(active)?;
            }
            // Kafka's `close` snapshots the producer state at the log end offset.
            self.take_producer_snapshot(self.log_end_offset());
        }
        // A clean shutdown makes the next open trust every file: those the open left
        // unsynced are synced even when the recovery point does not move.
        self.sync_unsynced()?;
        self.flush()
    }

    /// The earliest record (at or after the log start offset) whose timestamp is at least
    /// `timestamp`, for ListOffsets: the first batch whose max timestamp reaches it (from
    /// the in-memory batch index, finer than the `.timeindex`), then a scan of its records.
    /// `None` if there is none. Blocking file I/O.
    pub fn offset_for_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<TimestampOffset>, ReadError> {
        let mut from = self.log_start_offset();
        loop {
            let candidate = {
                let state = unpoison(self.state.read());
                from = from.max(state.log_start_offset);
                find_batch_from(&state.segments, from, |b| b.max_timestamp >= timestamp)
            };
            let Some((file, segment_base_offset, entry)) = candidate else {
                return Ok(None);
            };
            let found = first_record(&file, segment_base_offset, &entry, |offset, ts| {
                offset >= from && ts >= timestamp
            })?;
            if found.is_some() {
                return Ok(found);
            }
            from = entry.last_offset + 1;
        }
    }

    /// The record with the largest timestamp (the first one carrying it, at or after the
    /// log start offset), for ListOffsets with timestamp -3 (`MAX_TIMESTAMP`); `None` for a
    /// log without timestamps. Blocking file I/O.
    pub fn max_timestamp(&self) -> Result<Option<TimestampOffset>, ReadError> {
        let (max, start) = {
            let state = unpoison(self.state.read());
            let start = state.log_start_offset;
            let max = state
                .segments
                .iter()
                .filter(|s| s.next_offset() > start)
                .map(|s| {
                    if s.base_offset >= start {
                        s.max_timestamp()
                    } else {
                        s.batches()
                            .iter()
                            .filter(|b| b.last_offset >= start)
                            .map(|b| b.max_timestamp)
                            .max()
                            .unwrap_or(NO_TIMESTAMP)
                    }
                })
                .max()
                .unwrap_or(NO_TIMESTAMP);
            (max, start)
        };
        if max < 0 {
            return Ok(None);
        }
        let mut from = start;
        let mut first_candidate = None;
        loop {
            let candidate = {
                let state = unpoison(self.state.read());
                from = from.max(state.log_start_offset);
                find_batch_from(&state.segments, from, |b| b.max_timestamp == max)
            };
            let Some((file, segment_base_offset, entry)) = candidate else {
                // Only records below the log start offset carry it: answer with the batch.
                return Ok(first_candidate.map(|last_offset| TimestampOffset {
                    offset: last_offset,
                    timestamp: max,
                    leader_epoch: -1,
                }));
            };
            first_candidate.get_or_insert(entry.last_offset);
            let found = first_record(&file, segment_base_offset, &entry, |offset, ts| {
                offset >= from && ts == max
            })?;
            if found.is_some() {
                return Ok(found);
            }
            from = entry.last_offset + 1;
        }
    }

    /// The in-memory batch index of the segment starting at `base_offset`.
    #[cfg(test)]
    pub(crate) fn segment_batches(&self, base_offset: i64) -> Vec<BatchEntry> {
        unpoison(self.state.read())
            .segments
            .iter()
            .find(|s| s.base_offset == base_offset)
            .map(|s| s.batches().to_vec())
            .unwrap_or_default()
    }

    /// How many segments hold their batch list in memory (the others were opened from
    /// their index files and not read since).
    #[cfg(test)]
    pub(crate) fn segments_with_batches_loaded(&self) -> usize {
        let state = unpoison(self.state.read());
        state.segments.iter().filter(|s| s.batches_loaded()).count()
    }

    /// How many segments know their largest timestamp (for tests of the lazy time index).
    #[cfg(test)]
    pub(crate) fn segments_with_max_time_loaded(&self) -> usize {
        let state = unpoison(self.state.read());
        state
            .segments
            .iter()
            .filter(|s| s.max_time_loaded())
            .count()
    }

    /// Marks the log deleted: later appends and rolls fail. Taken under the writer lock so
    /// that no append is in flight once it returns.
    pub(crate) fn mark_deleted(&self) {
        let _writer = unpoison(self.writer.lock());
        self.deleted.store(true, Ordering::Release);
    }

    /// Runs `f` holding the writer lock, so no append, roll or retention runs meanwhile
    /// (the log-directory move copies the tail of the log and swaps the replica in `f`).
    /// Fails without calling `f` if the log no longer accepts appends.
    pub(crate) fn with_writer_locked<R>(
        &self,
        f: impl FnOnce() -> Result<R, StorageError>,
    ) -> Result<R, StorageError> {
        let _writer = unpoison(self.writer.lock());
        self.check_writable()?;
        if self.successor.get().is_some() {
            return Err(StorageError::Deleted {
                topic: self.topic.clone(),
                partition: self.partition,
            });
        }
        f()
    }

    /// Hands later appends to `next`, the log that replaced this one in another log
    /// directory; call with [`Self::with_writer_locked`]'s lock held (inside its `f`).
    /// Readers waiting on [`Self::subscribe`] are woken so they look the log up again.
    pub(crate) fn set_successor(&self, next: Arc<PartitionLog>) {
        let _ = self.successor.set(next);
        self.end_offset.send_modify(|_| {});
    }

    /// The leader epoch cache's entries, oldest first.
    pub fn leader_epochs(&self) -> Vec<EpochEntry> {
        unpoison(self.epochs.lock()).entries().to_vec()
    }

    /// OffsetForLeaderEpoch's answer (Kafka's `UnifiedLog.endOffsetForEpoch`): the largest
    /// epoch not above `requested` and its end offset; `(-1, -1)` when unknown (see
    /// [`LeaderEpochCache::end_offset_for`]).
    ///
    /// `current_leader_epoch` is the partition's leader epoch in the metadata: a leader
    /// newer than the cache's latest epoch is recorded as starting at the log end offset,
    /// as Kafka's `Partition.makeLeader` does when the broker becomes leader (before it
    /// writes anything in the new epoch). Blocking when that writes the checkpoint.
    pub fn end_offset_for_epoch(&self, requested: i32, current_leader_epoch: i32) -> (i32, i64) {
        let end = self.log_end_offset();
        self.update_epochs(|cache| {
            current_leader_epoch >= 0
                && cache
                    .latest_epoch()
                    .is_none_or(|e| e < current_leader_epoch)
                && cache.assign(current_leader_epoch, end)
        });
        let end = self.log_end_offset();
        unpoison(self.epochs.lock()).end_offset_for(requested, end)
    }

    /// Kafka's `truncateFromStart` of the epoch cache at the log start offset.
    fn truncate_epochs_to_start(&self) {
        let start = self.log_start_offset();
        self.update_epochs(|cache| cache.truncate_from_start(start));
    }

    /// Changes the epoch cache with `change` and, if it says it changed something, rewrites
    /// `leader-epoch-checkpoint` (not for a deleted log). A failed write is logged and the
    /// old file removed if possible: a stale file would be trusted by the next index-based
    /// open, a missing one makes it rebuild the cache from every batch.
    fn update_epochs(&self, change: impl FnOnce(&mut LeaderEpochCache) -> bool) {
        let mut cache = unpoison(self.epochs.lock());
        if !change(&mut cache) || self.deleted.load(Ordering::Acquire) {
            return;
        }
        tracing::debug!(
            topic = %self.topic,
            partition = self.partition,
            entries = ?cache.entries(),
            "leader epoch cache changed"
        );
        if let Err(error) = leader_epoch::write_checkpoint(&self.dir, cache.entries()) {
            tracing::warn!(
                dir = %self.dir.display(),
                %error,
                "cannot write {}", leader_epoch::LEADER_EPOCH_CHECKPOINT
            );
            let _ = fs::remove_file(self.dir.join(leader_epoch::LEADER_EPOCH_CHECKPOINT));
        }
    }

    fn check_writable(&self) -> Result<(), StorageError> {
        if self.deleted.load(Ordering::Acquire) {
            return Err(StorageError::Deleted {
                topic: self.topic.clone(),
                partition: self.partition,
            });
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(StorageError::Closed {
                topic: self.topic.clone(),
                partition: self.partition,
            });
        }
        Ok(())
    }

    fn segment_path(&self, base_offset: i64) -> PathBuf {
        Segment::path_in(&self.dir, base_offset)
    }

    /// Makes sure `writer` writes at the end of the last segment: creates the first segment
    /// of an empty log, or opens the active segment and its index files for writing after
    /// `open` (truncating anything past the last whole batch).
    fn prepare_writer(&self, writer: &mut Option<ActiveWriter>) -> Result<(), StorageError> {
        let active = {
            let state = unpoison(self.state.read());
            state
                .segments
                .last()
                .map(|last| (last.base_offset, last.valid_len, last.file_len))
        };
        let Some((base_offset, valid_len, file_len)) = active else {
            let base = self.log_end_offset();
            return self.new_segment(writer, base);
        };
        if writer
            .as_ref()
            .is_some_and(|w| w.base_offset == base_offset)
        {
            return Ok(());
        }
        let path = self.segment_path(base_offset);
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| StorageError::io(&path, e))?;
        if file_len > valid_len {
            tracing::info!(
                segment = %path.display(),
                valid_len,
                file_len,
                "truncating bytes past the last whole batch before appending"
            );
            file.set_len(valid_len)
                .map_err(|e| StorageError::io(&path, e))?;
            let mut state = unpoison(self.state.write());
            if let Some(last) = state.segments.last_mut() {
                last.file_len = valid_len;
            }
        }
        let builder = {
            let state = unpoison(self.state.read());
            let segment = state.segments.last().expect("checked above");
            load_or_rebuild_indexes(&self.dir, segment, &self.config(), false)
                .map_err(|e| StorageError::io(index::offset_index_path(&self.dir, base_offset), e))?
                .0
        };
        let (offset_index, time_index) = self.open_index_files(base_offset, false)?;
        *writer = Some(ActiveWriter {
            base_offset,
            file: Arc::new(file),
            position: valid_len,
            offset_index,
            time_index,
            index: builder,
        });
        Ok(())
    }

    /// Opens (creating, and with `truncate` emptying) the index files of a segment.
    fn open_index_files(
        &self,
        base_offset: i64,
        truncate: bool,
    ) -> Result<(Arc<File>, Arc<File>), StorageError> {
        let open = |path: PathBuf| {
            let file =
                index::open_index_for_write(&path).map_err(|e| StorageError::io(&path, e))?;
            if truncate {
                file.set_len(0).map_err(|e| StorageError::io(&path, e))?;
            }
            Ok::<_, StorageError>(Arc::new(file))
        };
        Ok((
            open(index::offset_index_path(&self.dir, base_offset))?,
            open(index::time_index_path(&self.dir, base_offset))?,
        ))
    }

    /// Creates the segment file of `base_offset` (which must not exist) and its empty index
    /// files, publishes it as the last segment and makes it the writer's.
    fn new_segment(
        &self,
        writer: &mut Option<ActiveWriter>,
        base_offset: i64,
    ) -> Result<(), StorageError> {
        let path = self.segment_path(base_offset);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| StorageError::io(&path, e))?;
        let (offset_index, time_index) = self.open_index_files(base_offset, true)?;
        checkpoint::sync_dir(&self.dir).map_err(|e| StorageError::io(&self.dir, e))?;
        let file = Arc::new(file);
        unpoison(self.state.write()).segments.push(Segment::empty(
            base_offset,
            path,
            Arc::clone(&file),
        ));
        *writer = Some(ActiveWriter {
            base_offset,
            file,
            position: 0,
            offset_index,
            time_index,
            index: IndexBuilder::new(base_offset),
        });
        Ok(())
    }
}

/// Kafka's `LogSegment.largestTimestamp`: the largest batch timestamp, or the file's
/// modification time if the segment has none.
fn largest_timestamp(segment: &Segment) -> i64 {
    let max = segment.max_timestamp();
    if max >= 0 {
        return max;
    }
    fs::metadata(&segment.path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The first batch with a record at or after `from` that satisfies `wanted`, with its
/// segment's file and base offset.
fn find_batch_from(
    segments: &[Segment],
    from: i64,
    wanted: impl Fn(&BatchEntry) -> bool,
) -> Option<(Arc<File>, i64, BatchEntry)> {
    let first = segments.partition_point(|s| s.next_offset() <= from);
    segments[first..].iter().find_map(|segment| {
        let start = segment.batches().partition_point(|b| b.last_offset < from);
        segment.batches()[start..]
            .iter()
            .find(|b| wanted(b))
            .map(|b| (Arc::clone(&segment.file), segment.base_offset, *b))
    })
}

/// Reads one batch and returns its first record for which `wanted(offset, timestamp)`.
fn first_record(
    file: &File,
    segment_base_offset: i64,
    entry: &BatchEntry,
    wanted: impl Fn(i64, i64) -> bool,
) -> Result<Option<TimestampOffset>, ReadError> {
    let io_error = |source| ReadError::Io {
        segment_base_offset,
        source,
    };
    let mut buf = vec![0u8; entry.size as usize];
    file.read_exact_at(&mut buf, u64::from(entry.position))
        .map_err(io_error)?;
    let invalid = |error: gregor_protocol::records::RecordsError| {
        io_error(io::Error::new(io::ErrorKind::InvalidData, error))
    };
    let buf = Bytes::from(buf);
    if entry.magic == MAGIC_V2 {
        let batch = RecordBatch::parse(buf).map_err(invalid)?;
        let leader_epoch = batch.header().partition_leader_epoch;
        // Streamed, not inflated: only offsets and timestamps are needed.
        for record in batch.skip_key_value_records(DEFAULT_MAX_DECOMPRESSED_SIZE) {
            let record = record.map_err(invalid)?;
            if wanted(record.offset, record.timestamp) {
                return Ok(Some(TimestampOffset {
                    offset: record.offset,
                    timestamp: record.timestamp,
                    leader_epoch,
                }));
            }
        }
    } else {
        let message = LegacyMessage::parse(buf).map_err(invalid)?;
        for inner in message.messages().map_err(invalid)? {
            if wanted(inner.offset, inner.timestamp) {
                return Ok(Some(TimestampOffset {
                    offset: inner.offset,
                    timestamp: inner.timestamp,
                    leader_epoch: -1,
                }));
            }
        }
    }
    Ok(None)
}

/// The batches with a producer id (control batches aside) of an append at `base_offset`,
/// with the offsets and max timestamps they get; empty (no allocation) without any.
fn producer_batches(
    batches: &[ValidatedBatch],
    base_offset: i64,
    kept: &[i64],
    log_append_time: Option<i64>,
) -> Vec<ProducerBatch> {
    let mut found = Vec::new();
    let mut next = base_offset;
    for (i, batch) in batches.iter().enumerate() {
        let first = kept.get(i).copied().unwrap_or(next);
        next = next.saturating_add(i64::from(batch.record_count));
        if batch.producer_id >= 0 && !batch.control {
            found.push(ProducerBatch {
                producer_id: batch.producer_id,
                epoch: batch.producer_epoch,
                base_sequence: batch.base_sequence,
                first_offset: first,
                last_offset: next - 1,
                max_timestamp: log_append_time.unwrap_or(batch.max_timestamp),
                transactional: batch.transactional,
            });
        }
    }
    found
}

/// Checks that `batch` is exactly one v2 batch and returns its header.
fn check_batch(batch: &[u8]) -> Result<BatchHeader, StorageError> {
    let header = BatchHeader::decode(batch)
        .ok_or(StorageError::InvalidBatch("shorter than a batch header"))?;
    if header.magic != MAGIC_V2 {
        return Err(StorageError::InvalidBatch("magic is not 2"));
    }
    let declared = usize::try_from(header.batch_length)
        .ok()
        .and_then(|length| length.checked_add(LOG_OVERHEAD));
    if declared != Some(batch.len()) || batch.len() < RECORD_BATCH_OVERHEAD {
        return Err(StorageError::InvalidBatch(
            "length field does not match the buffer",
        ));
    }
    if batch.len() as u64 > MAX_SEGMENT_BYTES {
        return Err(StorageError::InvalidBatch("larger than a segment"));
    }
    if header.last_offset_delta < 0 {
        return Err(StorageError::InvalidBatch("negative last offset delta"));
    }
    Ok(header)
}

/// Plans a read: fills `ranges` with the byte ranges to read, segment by segment, and
/// returns their total size (see [`PartitionLog::read`] for the rules).
///
/// Only batches ending below `max_offset` are read (the LSO for READ_COMMITTED). Also
/// returns the offset after the last batch planned (the next batch's base offset, the next
/// segment's, or the log end's): the upper bound of the range whose aborted transactions
/// a READ_COMMITTED read lists (Kafka's `fetchUpperBoundOffset`).
fn plan_read(
    segments: &[Segment],
    fetch_offset: i64,
    max_offset: i64,
    max_bytes: usize,
    min_one_message: bool,
    ranges: &mut [Option<ReadRange>],
) -> (usize, i64) {
    let mut total = 0usize;
    let mut used = 0;
    let mut upper = fetch_offset;
    // Segments' offset ranges are ordered, so `next_offset` is non-decreasing.
    let first = segments.partition_point(|s| s.next_offset() <= fetch_offset);
    for (i, segment) in segments.iter().enumerate().skip(first) {
        if used == ranges.len() {
            break;
        }
        let batches = segment.batches();
        let from = batches.partition_point(|b| b.last_offset < fetch_offset);
        let allowed = batches.partition_point(|b| b.last_offset < max_offset);
        let batches = &batches[..allowed.max(from)];
        let Some(first_batch) = batches.get(from) else {
            if allowed < segment.batches().len() {
                break;
            }
            continue;
        };
        let start = u64::from(first_batch.position);
        let budget = max_bytes.saturating_sub(total) as u64;
        // Batches are contiguous in the file: the bytes up to a batch's end are its end
        // position minus the start.
        let fitting = batches[from..].partition_point(|b| b.end_position() - start <= budget);
        let (count, stop) = if fitting == 0 {
            (usize::from(total == 0 && min_one_message), true)
        } else {
            (fitting, from + fitting < batches.len())
        };
        if count > 0 {
            let last = from + count - 1;
            upper = match segment.batches().get(last + 1) {
                Some(next) => next.base_offset,
                None => segments
                    .get(i + 1)
                    .map_or(batches[last].last_offset + 1, |s| s.base_offset),
            };
            let len = (batches[last].end_position() - start) as usize;
            ranges[used] = Some(ReadRange {
                file: Arc::clone(&segment.file),
                segment_base_offset: segment.base_offset,
                position: start,
                len,
            });
            used += 1;
            total += len;
        }
        if stop || allowed < segment.batches().len() {
            break;
        }
    }
    (total, upper)
}
