//! Partition logs in Kafka's own on-disk layout.
//!
//! ```text
//! <log.dir>/
//!   <topic>-<partition>/                 one directory per partition (topic may contain '-')
//!     00000000000000000000.log           segment: record batches, named by base offset
//!     00000000000000000000.index         offset index      (Kafka's; ignored for now)
//!     00000000000000000000.timeindex     time index        (Kafka's; ignored for now)
//!     00000000000000001234.snapshot      producer state    (ignored for now)
//!     leader-epoch-checkpoint, partition.metadata           (ignored for now)
//!   __cluster_metadata-0/                the KRaft metadata log (handled by `cluster`)
//!   <topic>-<partition>.<uuid>-delete/   being deleted (skipped)
//!   <topic>-<partition>.<uuid>-stray/    stray replica (skipped)
//! ```
//!
//! * [`PartitionLog`]: one partition. [`PartitionLog::open`] lists the segments and scans
//!   only the batch headers (one positional 61-byte read per batch) into an in-memory
//!   index; a torn or corrupt tail ends the log there and is reported
//!   ([`PartitionLog::torn_tail`]). [`PartitionLog::read`] serves whole batches with Fetch
//!   semantics, one file read per contiguous range straight into the result buffer.
//! * [`LogManager`]: every partition of the configured log directories, keyed by topic
//!   name and partition index.
//!
//! Reads are blocking file I/O: async code calls [`PartitionLog::read_async`] (or
//! [`PartitionLog::read`] inside `tokio::task::spawn_blocking`). A [`PartitionLog`] is
//! shared as `Arc<PartitionLog>`; its segment list sits behind its own `RwLock`, held only
//! to look offsets up (never during file I/O), so appends proceed while readers read and
//! partitions never wait on each other. Long-polling fetches wait for the end offset to grow
//! with [`PartitionLog::subscribe`] or [`PartitionLog::changed`].

mod checkpoint;
mod config;
mod index;
mod manager;
mod partition;
mod segment;
mod validate;

#[cfg(test)]
mod tests;

use std::io;
use std::path::PathBuf;

pub use config::{CleanupPolicy, LogConfig, TimestampType};
pub use manager::{DirError, LogManager, parse_partition_dir_name};
pub use checkpoint::{
    CLEAN_SHUTDOWN_FILE, LOG_START_OFFSET_CHECKPOINT, RECOVERY_POINT_CHECKPOINT,
    REPLICATION_OFFSET_CHECKPOINT,
};
pub use index::{OffsetIndexEntry, TimeIndexEntry};
pub use partition::{
    AppendInfo, LogRead, MAX_SEGMENTS_PER_READ, OpenReport, PartitionLog, SegmentInfo,
    TimestampOffset, TornTail, partition_dir_name,
};
pub use segment::{BatchEntry, MAX_SEGMENT_BYTES, segment_file_name};
pub use validate::{
    CORRUPT_MESSAGE, INVALID_RECORD, INVALID_TIMESTAMP, MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE,
    RecordError, UNSUPPORTED_COMPRESSION_TYPE, ValidatedBatch, ValidatedRecords, ValidationError,
    validate_records,
};

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
    /// [`LogManager::open`] was given no log directory, or none of them could be used.
    #[error("no usable log directory")]
    NoLogDirs,
}

impl StorageError {
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
