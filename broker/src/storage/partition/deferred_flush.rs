//! Appends whose `flush.messages` flush the caller runs itself (issue 14, phase 2), the
//! index syncs that moved from every flush to the recovery-point checkpoint, and the syncs
//! of what the open of a log wrote, moved to the first flush that moves the recovery point.
//!
//! A pipelined connection (`connection_pipeline.rs`) starts its next request once a
//! Produce's records are written, not synced: the Produce appends with
//! [`PartitionLog::append_unflushed`] (or [`super::PendingAppend::finish_unflushed`]), lets
//! the connection go on, then calls [`PartitionLog::flush_if_reached`] and is answered only
//! after it. The acknowledgement still follows the sync it confirms; what overlaps is the
//! next request's append with this one's `fdatasync`, which group commit
//! ([`super::group_commit`]) then shares.

use std::path::PathBuf;
use std::sync::Arc;

use super::super::producer_state::TxnVerification;
use super::super::validate::ValidatedRecords;
use super::super::{StorageError, index, producer_snapshot, unpoison};
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

/// What the open of a log wrote without syncing it (issue 14): the index files a recovery
/// from the offset index rewrote (`segment/recover_from.rs`) and the producer snapshot at
/// the log end offset (`producers.rs`). Both describe offsets at or above the recovery
/// point, which the open does not move: a crash before the next flush recovers the same
/// tail again (and deletes the snapshots above the recovery point), so they are synced only
/// before the recovery point moves ([`PartitionLog::flush`], a roll) or a clean close.
#[derive(Debug, Default)]
pub(super) struct Unsynced {
    /// Index files to `fdatasync`.
    pub(super) files: Vec<PathBuf>,
    /// The offset of the producer snapshot to sync (with its directory).
    pub(super) snapshot: Option<i64>,
}

impl PartitionLog {
    /// Syncs what the open left unsynced ([`Unsynced`]), once; a file deleted since (a
    /// segment removed by retention, a snapshot deleted) needs nothing. On an error the
    /// rest is kept for the next try. Blocking file I/O.
    pub(super) fn sync_unsynced(&self) -> Result<(), StorageError> {
        let mut unsynced = unpoison(self.unsynced.lock());
        while let Some(path) = unsynced.files.last() {
            match std::fs::File::open(path) {
                Ok(file) => file.sync_data().map_err(|e| StorageError::io(path, e))?,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(StorageError::io(path, error)),
            }
            unsynced.files.pop();
        }
        if let Some(offset) = unsynced.snapshot {
            producer_snapshot::sync_snapshot(&self.dir, offset).map_err(|e| {
                StorageError::io(producer_snapshot::snapshot_path(&self.dir, offset), e)
            })?;
            unsynced.snapshot = None;
        }
        Ok(())
    }

    /// How many files the open left unsynced (see [`Unsynced`]), for tests.
    #[cfg(test)]
    pub(crate) fn unsynced_files(&self) -> usize {
        let unsynced = unpoison(self.unsynced.lock());
        unsynced.files.len() + usize::from(unsynced.snapshot.is_some())
    }
}
