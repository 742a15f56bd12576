//! Partition logs in Kafka's own on-disk layout and formats.
//!
//! ```text
//! <log.dir>/
//!   recovery-point-offset-checkpoint     synced offset per partition   (Kafka's text format)
//!   log-start-offset-checkpoint          log start offset per partition
//!   replication-offset-checkpoint        high watermark per partition
//!   .kafka_cleanshutdown                 written by a clean shutdown, deleted on start-up
//!   <topic>-<partition>/                 one directory per partition (topic may contain '-')
//!     00000000000000000000.log           segment: record batches, named by base offset
//!     00000000000000000000.index         offset index (8-byte entries)
//!     00000000000000000000.timeindex     time index (12-byte entries)
//!     00000000000000000000.txnindex      aborted transactions (34-byte entries, see [`txn_index`])
//!     00000000000000001234.snapshot      producer state at offset 1234 (Kafka's format)
//!     leader-epoch-checkpoint             leader epoch cache (from it and the batches scanned at open)
//!     partition.metadata                  (ignored)
//!   __cluster_metadata-0/                the KRaft metadata log (handled by `cluster`)
//!   <topic>-<partition>.<uuid>-delete/   being deleted (skipped)
//!   <topic>-<partition>.<uuid>-stray/    stray replica (skipped)
//!   <topic>-<partition>.<uuid>-future/   replica being moved here (see [`move_replica`])
//! ```
//!
//! * [`validate_records`]: Kafka's checks of a Produce request's records for one partition,
//!   with Kafka's error codes ([`ValidationError`]); the result ([`ValidatedRecords`])
//!   shares the request's bytes.
//! * [`validate_legacy_records`]: the same for the magic 0/1 message sets of Produce v0-v2,
//!   up-converted to one v2 batch as Kafka 3.x did, so the log only ever holds v2 batches.
//! * [`PartitionLog`]: one partition. [`PartitionLog::open`] lists the segments; those
//!   that need no recovery are opened from their `.index`/`.timeindex` (Kafka's sanity
//!   check, then the headers after the last offset index entry for the next offset), the
//!   others scanned (one positional 61-byte read per batch), and after an unclean shutdown
//!   the batches from the recovery point on read whole and every CRC checked. A segment's
//!   in-memory batch list (what reads, time lookups and the cleaner use) is read from its
//!   file on first use. A torn or corrupt tail is truncated (later segments removed) and
//!   reported ([`PartitionLog::torn_tail`]); index files that are missing or fail the
//!   checks are rebuilt. [`PartitionLog::read`] serves whole batches with Fetch semantics, one file
//!   read per contiguous range straight into the result buffer. [`PartitionLog::append`]
//!   checks idempotent producers' epochs and sequences (duplicates are answered with the
//!   original offsets, not appended; see [`producer_state`]), assigns offsets, leader epoch
//!   and log append time in place, writes all of a request's
//!   batches in one write, maintains the Kafka index files and rolls segments by size, age
//!   and full index. Flushes follow `flush.messages`/`flush.ms`; retention and
//!   DeleteRecords delete whole segments and raise the log start offset; the leader
//!   epoch cache ([`leader_epoch`]) follows appends and the log start offset and answers
//!   [`PartitionLog::end_offset_for_epoch`];
//!   [`PartitionLog::offset_for_timestamp`] and [`PartitionLog::max_timestamp`] answer
//!   ListOffsets.
//! * [`LogManager`]: every partition of the configured log directories, keyed by topic
//!   name and partition index, with per-topic [`LogConfig`]s; it reads and writes the
//!   checkpoints and the clean shutdown marker, and runs the periodic flush, retention and
//!   checkpoint jobs ([`LogManager::spawn_background_tasks`]).
//!
//! File I/O is blocking: async code calls these methods inside
//! `tokio::task::spawn_blocking` (or uses [`PartitionLog::read_async`]). A [`PartitionLog`]
//! is shared as `Arc<PartitionLog>`; its segment list sits behind its own `RwLock`, held
//! only to look offsets up (never during reads' file I/O), and appends are ordered by its
//! own writer lock, so appends proceed while readers read and partitions never wait on each
//! other. Long-polling fetches wait for the end offset to grow with
//! [`PartitionLog::subscribe`] or [`PartitionLog::changed`].

mod checkpoint;
pub mod cleaner;
mod config;
mod index;
pub mod leader_epoch;
mod legacy_offsets;
mod manager;
pub mod move_replica;
mod partition;
mod positional_read;
pub mod producer_snapshot;
pub mod producer_state;
mod segment;
pub mod txn_index;
mod validate;
mod validate_legacy;

#[cfg(test)]
mod compression_tests;
#[cfg(test)]
mod epoch_tests;
#[cfg(test)]
mod indexed_open_tests;
#[cfg(test)]
mod producer_tests;
#[cfg(test)]
mod recover_from_tests;
#[cfg(test)]
mod replication_tests;
#[cfg(test)]
mod snapshot_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod txn_tests;
#[cfg(test)]
mod write_tests;

use std::io;
use std::path::PathBuf;

pub use checkpoint::{
    CLEAN_SHUTDOWN_FILE, LOG_START_OFFSET_CHECKPOINT, RECOVERY_POINT_CHECKPOINT,
    REPLICATION_OFFSET_CHECKPOINT,
};
pub use config::{CleanupPolicy, LogConfig, TimestampType};
pub use index::{OffsetIndexEntry, TimeIndexEntry};
pub use legacy_offsets::LegacyOffsetsError;
pub use manager::{DirError, LogManager, MaintenanceSchedule, parse_partition_dir_name};
pub use move_replica::{FutureReplica, MoveError, MoveStart};
pub use partition::{
    AppendInfo, FetchIsolation, InlineAppend, LogRead, MAX_SEGMENTS_PER_READ, OpenReport,
    PartitionLog, PendingAppend, SegmentInfo, TimestampOffset, TornTail, partition_dir_name,
};
pub use producer_state::{
    BatchMetadata, INVALID_PRODUCER_EPOCH, NUM_BATCHES_TO_RETAIN, OUT_OF_ORDER_SEQUENCE_NUMBER,
    ProducerEntry, ProducerStateError, TxnVerification, VerificationGuard,
};
pub use segment::{BatchEntry, MAX_SEGMENT_BYTES, segment_file_name};
pub use txn_index::AbortedTxn;
pub use validate::{
    CORRUPT_MESSAGE, INVALID_RECORD, INVALID_TIMESTAMP, MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE,
    RecordError, UNSUPPORTED_COMPRESSION_TYPE, ValidatedBatch, ValidatedRecords, ValidationError,
    validate_records,
};
pub use validate_legacy::{is_legacy_message_set, validate_legacy_records};

/// Errors opening, creating, appending to or removing partition logs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// A file system operation failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A directory in a log dir is not named `<topic>-<partition>`.
    #[error("{} is not a partition directory (<topic>-<partition>)", path.display())]
    InvalidPartitionDir {
        /// The directory.
        path: PathBuf,
    },
    /// A topic name Kafka would not accept (empty, too long, `.`/`..`, or characters other
    /// than ASCII letters, digits, `.`, `_` and `-`).
    #[error("invalid topic name {0:?}")]
    InvalidTopic(String),
    /// A negative partition index.
    #[error("invalid partition index {0}")]
    InvalidPartition(i32),
    /// The same partition was found in two log directories; the first one is kept.
    #[error("partition {topic}-{partition} is in both {} and {}", kept.display(), duplicate.display())]
    DuplicatePartition {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
        /// The directory that was opened.
        kept: PathBuf,
        /// The directory that was ignored.
        duplicate: PathBuf,
    },
    /// A batch handed to [`PartitionLog::append_batch`] is not one whole v2 record batch.
    #[error("invalid record batch: {0}")]
    InvalidBatch(&'static str),
    /// An offset outside `[log_start, log_end]` (for example a log start offset raised past
    /// the end).
    #[error("offset {offset} is out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        /// The offset asked for.
        offset: i64,
        /// The log start offset.
        log_start: i64,
        /// The log end offset.
        log_end: i64,
    },
    /// The log was removed by [`LogManager::remove`]; it no longer accepts appends.
    #[error("the log of {topic}-{partition} was deleted")]
    Deleted {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
    },
    /// The log was closed by [`PartitionLog::close`] (broker shutdown); it no longer accepts
    /// appends.
    #[error("the log of {topic}-{partition} is closed")]
    Closed {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
    },
    /// After a clean shutdown, a segment that is not the last one holds bytes that are not
    /// a batch. Recovery would truncate there and delete the later segments, which hold
    /// data that was acknowledged; the partition is left unopened (offline) instead.
    /// Kafka does not scan segments after a clean shutdown and would fail reads at the
    /// damage; to let recovery truncate, remove the log directory's `.kafka_cleanshutdown`.
    #[error(
        "{}: not a record batch at position {position} ({reason}) after a clean shutdown, \
         with {later_segments} later segment(s): the partition is not opened, so that no \
         data is deleted (remove .kafka_cleanshutdown from the log directory to truncate \
         it there instead)",
        path.display()
    )]
    DamagedAfterCleanShutdown {
        /// The segment.
        path: PathBuf,
        /// Byte position of the damage.
        position: u64,
        /// What is wrong there.
        reason: String,
        /// How many segments follow it.
        later_segments: usize,
    },
    /// [`LogManager::open`] was given no log directory, or none of them could be used.
    #[error("no usable log directory")]
    NoLogDirs,
    /// An idempotent producer's batch was refused by the partition's producer state (an
    /// old epoch or a sequence out of order); nothing of the request was appended.
    #[error(transparent)]
    Producer(#[from] ProducerStateError),
}

impl StorageError {
    /// The error a coordinator answers when its write to an internal topic failed (Kafka's
    /// coordinators map a closed log to NOT_LEADER_OR_FOLLOWER and a deleted one to
    /// UNKNOWN_TOPIC_OR_PARTITION); anything else is logged as KAFKA_STORAGE_ERROR.
    pub fn coordinator_write_code(&self, log_name: &str) -> i16 {
        use gregor_protocol::error_code;
        match self {
            StorageError::Closed { .. } => error_code::NOT_LEADER_OR_FOLLOWER,
            StorageError::Deleted { .. } => error_code::UNKNOWN_TOPIC_OR_PARTITION,
            err => {
                tracing::error!("writing to {log_name}: {err}");
                error_code::KAFKA_STORAGE_ERROR
            }
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> StorageError {
        StorageError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Errors of [`PartitionLog::read`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The fetch offset is below the log start offset or above the log end offset (Kafka's
    /// `OFFSET_OUT_OF_RANGE`).
    #[error("fetch offset out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        /// The log start offset at the time of the read.
        log_start: i64,
        /// The log end offset at the time of the read.
        log_end: i64,
    },
    /// Reading a segment file failed (Kafka's `KAFKA_STORAGE_ERROR`).
    #[error("I/O error reading the segment with base offset {segment_base_offset}: {source}")]
    Io {
        /// Base offset of the segment being read (0 for a failed blocking task).
        segment_base_offset: i64,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// Recovers the data behind a poisoned lock: the storage code never leaves its state
/// half-updated across a panic point, so the data stays consistent.
pub(crate) fn unpoison<G>(result: Result<G, std::sync::PoisonError<G>>) -> G {
    result.unwrap_or_else(std::sync::PoisonError::into_inner)
}
