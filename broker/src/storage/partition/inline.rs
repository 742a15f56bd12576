//! Appends on an async runtime thread (issue 14): [`PartitionLog::try_append_inline`]
//! appends when that can only cost a page-cache write, and hands the append back
//! ([`InlineAppend::WouldBlock`]) for the blocking pool otherwise.
//!
//! An append is inline only if, checked under the partition's writer lock before anything
//! changes:
//!
//! * the writer lock was free (`try_lock`): whoever holds it may be rolling a segment
//!   (`fsync` of the old one, new files, a producer snapshot), running retention or
//!   DeleteRecords, or moving the replica, all with the lock held across file I/O, so a
//!   runtime thread never waits for it;
//! * the active segment is open for writing (else opening it is file I/O);
//! * the append does not roll a segment (`segment.bytes`, `segment.ms`, a full index, the
//!   offset range: Kafka's `LogSegment.shouldRoll`);
//! * it does not reach `flush.messages` (that append syncs before it returns). Only
//!   appends of the writer lock's holder raise the log end offset, and a concurrent flush
//!   only lowers the unflushed count, so the check stays true through the append; `flush.ms`
//!   is the periodic flusher's, never an append's, work;
//! * it does not change the leader epoch cache (whose change rewrites
//!   `leader-epoch-checkpoint`; the cache's lock is taken with `try_lock` too, as
//!   OffsetForLeaderEpoch and retention hold it across that write without the writer lock);
//! * it is no transaction marker (those write the `.txnindex`).
//!
//! The remaining locks (the segment list's `RwLock`, the producer state's `Mutex`) are only
//! ever held across memory work while the writer lock is free: the producer snapshot, the one
//! file write under the producer lock, happens in a roll or a close, with the writer lock.
//! What is left is the `pwrite` of the batches and of the index entries into the page cache:
//! microseconds for a Produce of up to a few MiB, unless the kernel throttles a writer for
//! dirty pages (`balance_dirty_pages`), which Kafka's request handler threads would meet in
//! the same place.

use std::sync::{MutexGuard, TryLockError};

use bytes::BytesMut;

use super::super::config::{LogConfig, TimestampType};
use super::super::producer_state::TxnVerification;
use super::super::validate::{ValidatedBatch, ValidatedRecords};
use super::super::{StorageError, unpoison};
use super::{ActiveWriter, AppendInfo, AppendMode, PartitionLog};

/// Why [`PartitionLog::write_batches`] did not append.
#[derive(Debug)]
pub(super) enum AppendError {
    /// An inline append would block (nothing was changed).
    WouldBlock,
    /// The append failed.
    Failed(StorageError),
}

impl AppendError {
    /// The error of an append that was allowed to block (which never answers
    /// `WouldBlock`; mapped defensively).
    pub(super) fn into_storage(self) -> StorageError {
        match self {
            AppendError::Failed(error) => error,
            AppendError::WouldBlock => StorageError::InvalidBatch("append refused to block"),
        }
    }
}

impl From<StorageError> for AppendError {
    fn from(error: StorageError) -> Self {
        AppendError::Failed(error)
    }
}

impl From<super::super::ProducerStateError> for AppendError {
    fn from(error: super::super::ProducerStateError) -> Self {
        AppendError::Failed(error.into())
    }
}

/// What [`PartitionLog::try_append_inline`] did.
#[derive(Debug)]
pub enum InlineAppend {
    /// The append ran (or failed) on the calling thread.
    Done(Result<AppendInfo, StorageError>),
    /// It may block: finish it with [`PendingAppend::finish`] on the blocking pool.
    WouldBlock(PendingAppend),
}

/// An append handed back by [`PartitionLog::try_append_inline`], unchanged.
#[derive(Debug)]
pub struct PendingAppend {
    buf: BytesMut,
    batches: Vec<ValidatedBatch>,
    leader_epoch: i32,
    now_ms: i64,
    verification: TxnVerification,
}

impl PendingAppend {
    /// Appends as [`PartitionLog::append_with_verification`] does: may roll, flush and
    /// block (call it from `spawn_blocking`).
    pub fn finish(self, log: &PartitionLog) -> Result<AppendInfo, StorageError> {
        self.finish_with(log, false)
    }

    /// [`Self::finish`], leaving a due `flush.messages` flush to
    /// [`PartitionLog::flush_if_reached`] (issue 14's pipelined Produce).
    pub fn finish_unflushed(self, log: &PartitionLog) -> Result<AppendInfo, StorageError> {
        self.finish_with(log, true)
    }

    fn finish_with(
        mut self,
        log: &PartitionLog,
        defer_flush: bool,
    ) -> Result<AppendInfo, StorageError> {
        let config = log.config();
        let mut mode = client_mode(&config, self.leader_epoch, self.now_ms, self.verification);
        mode.defer_flush = defer_flush;
        log.append_buffer(&mut self.buf, &self.batches, mode, self.now_ms, &config)
    }
}

/// The append mode of a client's Produce.
pub(super) fn client_mode(
    config: &LogConfig,
    leader_epoch: i32,
    now_ms: i64,
    verification: TxnVerification,
) -> AppendMode {
    AppendMode {
        leader_epoch: Some(leader_epoch),
        log_append_time: (config.timestamp_type == TimestampType::LogAppendTime).then_some(now_ms),
        check_producers: true,
        verification,
        keep_offsets: false,
        defer_flush: false,
    }
}

impl PartitionLog {
    /// [`Self::append_with_verification`] if it can run on an async runtime thread (see
    /// [`self`](super::inline) for the conditions), else the append handed back unchanged
    /// for the blocking pool. Never blocks for longer than page-cache writes.
    pub fn try_append_inline(
        &self,
        validated: ValidatedRecords,
        leader_epoch: i32,
        now_ms: i64,
        verification: TxnVerification,
    ) -> InlineAppend {
        let (records, batches) = validated.into_parts();
        let mut buf = records
            .try_into_mut()
            .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
        let config = self.config();
        let mode = client_mode(&config, leader_epoch, now_ms, verification);
        match self.write_batches(&mut buf, &batches, mode, now_ms, &config, true) {
            Ok(info) => InlineAppend::Done(Ok(info)),
            Err(AppendError::Failed(error)) => InlineAppend::Done(Err(error)),
            Err(AppendError::WouldBlock) => InlineAppend::WouldBlock(PendingAppend {
                buf,
                batches,
                leader_epoch,
                now_ms,
                verification,
            }),
        }
    }

    /// The writer lock if it is free.
    pub(super) fn try_lock_writer(
        &self,
    ) -> Result<MutexGuard<'_, Option<ActiveWriter>>, AppendError> {
        match self.writer.try_lock() {
            Ok(guard) => Ok(guard),
            Err(TryLockError::Poisoned(poisoned)) => Ok(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => Err(AppendError::WouldBlock),
        }
    }

    /// The conditions of an inline append besides the writer lock (see [`self`](super::inline)),
    /// checked under it before anything changes.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn check_inline(
        &self,
        writer: &Option<ActiveWriter>,
        batches: &[ValidatedBatch],
        mode: AppendMode,
        record_count: i64,
        size: u64,
        now_ms: i64,
        config: &LogConfig,
    ) -> Result<(), AppendError> {
        let last_segment = unpoison(self.state.read())
            .segments
            .last()
            .map(|s| s.base_offset);
        let Some(active) = writer
            .as_ref()
            .filter(|w| Some(w.base_offset) == last_segment)
        else {
            return Err(AppendError::WouldBlock);
        };
        if self.unflushed_messages().saturating_add(record_count) >= config.flush_messages {
            return Err(AppendError::WouldBlock);
        }
        let Some(epoch) = mode.leader_epoch else {
            return Err(AppendError::WouldBlock);
        };
        let base_offset = self.log_end_offset();
        let epochs = match self.epochs.try_lock() {
            Ok(cache) => cache,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return Err(AppendError::WouldBlock),
        };
        // `LeaderEpochCache::assign` leaves the cache (and its file) alone for the latest
        // epoch from its start offset on.
        if !epochs
            .latest()
            .is_some_and(|l| l.epoch == epoch && l.start_offset <= base_offset)
        {
            return Err(AppendError::WouldBlock);
        }
        drop(epochs);
        let max_timestamp = mode.log_append_time.unwrap_or_else(|| {
            batches
                .iter()
                .map(|b| b.max_timestamp)
                .max()
                .unwrap_or(gregor_protocol::records::NO_TIMESTAMP)
        });
        let last_offset = base_offset.saturating_add(record_count - 1);
        if self.should_roll(active, config, size, max_timestamp, last_offset, now_ms) {
            return Err(AppendError::WouldBlock);
        }
        Ok(())
    }
}
