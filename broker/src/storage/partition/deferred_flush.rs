//! Appends whose `flush.messages` flush the caller runs itself (issue 14, phase 2), and
//! the index syncs that moved from every flush to the recovery-point checkpoint.
//!
//! A pipelined connection (`connection_pipeline.rs`) starts its next request once a
//! Produce's records are written, not synced: the Produce appends with
//! [`PartitionLog::append_unflushed`] (or [`super::PendingAppend::finish_unflushed`]), lets
//! the connection go on, then calls [`PartitionLog::flush_if_reached`] and is answered only
//! after it. The acknowledgement still follows the sync it confirms; what overlaps is the
//! next request's append with this one's `fdatasync`, which group commit
//! ([`super::group_commit`]) then shares.

use std::sync::Arc;

use super::super::producer_state::TxnVerification;
use super::super::validate::ValidatedRecords;
use super::super::{StorageError, index, unpoison};
use super::{AppendInfo, PartitionLog};

impl PartitionLog {
    /// [`Self::append_with_verification`] without the `flush.messages` flush it may make
    /// due: call [`Self::flush_if_reached`] before acknowledging the append. Blocking file
    /// I/O (it may roll a segment).
    pub fn append_unflushed(
        &self,
        validated: ValidatedRecords,
        leader_epoch: i32,
        now_ms: i64,
        verification: TxnVerification,
    ) -> Result<AppendInfo, StorageError> {
        self.append_client(validated, leader_epoch, now_ms, verification, true)
    }

    /// Flushes when `flush.messages` is reached (what an append does before it returns);
    /// returns whether it flushed. A flush in flight that covers the appends is waited for
    /// instead (group commit). Blocking file I/O.
    pub fn flush_if_reached(&self) -> Result<bool, StorageError> {
        if self.unflushed_messages() < self.config().flush_messages {
            return Ok(false);
        }
        self.flush()?;
        Ok(true)
    }

    /// Syncs the active segment's `.index` and `.timeindex` (`fdatasync`), before the
    /// recovery point is written to `recovery-point-offset-checkpoint`. Flushes leave them
    /// to this: after a crash the active segment's indexes are rebuilt from its batches
    /// anyway (`open.rs` recovers every segment without a successor), as Kafka's
    /// `LogLoader.recoverLog` rebuilds the segments past the recovery point. Blocking file
    /// I/O.
    pub fn sync_active_indexes(&self) -> Result<(), StorageError> {
        let files = {
            let writer = unpoison(self.writer.lock());
            writer.as_ref().map(|active| {
                (
                    Arc::clone(&active.offset_index),
                    Arc::clone(&active.time_index),
                    active.base_offset,
                )
            })
        };
        if let Some((offset_index, time_index, base)) = files {
            offset_index
                .sync_data()
                .map_err(|e| StorageError::io(index::offset_index_path(self.dir(), base), e))?;
            time_index
                .sync_data()
                .map_err(|e| StorageError::io(index::time_index_path(self.dir(), base), e))?;
        }
        Ok(())
    }
}
