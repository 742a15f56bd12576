//! The high watermark (Kafka's `UnifiedLog.highWatermark`): the offset below which every
//! record is on all in-sync replicas, separate from the log end offset.
//!
//! A log starts with its high watermark *following* the log end offset: a partition whose
//! only replica is this log commits each append at once, which is the single-node default
//! and keeps it exactly as before replication existed. Replication
//! ([`crate::replication`]) turns that off when the partition has other replicas; the
//! leader then raises the high watermark to the smallest log end offset of its in-sync
//! replicas ([`PartitionLog::maybe_increment_high_watermark`]) and a follower takes the
//! leader's, bounded by its own log end offset ([`PartitionLog::update_follower_high_watermark`]).
//!
//! The high watermark is persisted in the log directory's `replication-offset-checkpoint`
//! by [`crate::storage::LogManager::checkpoint`] and restored when the logs are opened,
//! clamped to the log end offset ([`PartitionLog::restore_high_watermark`]). Consumers read
//! below it ([`FetchIsolation::HighWatermark`]); the last stable offset never passes it;
//! DeleteRecords and retention never delete above it.

use super::*;

/// How far a read may go (Kafka's `FetchIsolation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchIsolation {
    /// Up to the log end offset: a follower replica's fetch.
    LogEnd,
    /// Up to the high watermark: a READ_UNCOMMITTED consumer.
    HighWatermark,
    /// Up to the last stable offset, with the aborted transactions: READ_COMMITTED.
    TxnCommitted,
}

impl LogState {
    /// The high watermark readers see: the log end offset while it follows it, else the
    /// value last set, never above the log end offset.
    pub(super) fn high_watermark(&self) -> i64 {
        if self.hw_follows_leo {
            self.log_end_offset
        } else {
            self.high_watermark.min(self.log_end_offset)
        }
    }

    /// Sets the high watermark within `[log start offset, log end offset]` (Kafka's
    /// `updateHighWatermark` bounds); true if it changed.
    fn set_high_watermark(&mut self, offset: i64) -> bool {
        let bounded = offset.min(self.log_end_offset).max(self.log_start_offset);
        let before = self.high_watermark();
        self.high_watermark = bounded;
        self.high_watermark() != before
    }
}

impl PartitionLog {
    /// Whether the high watermark follows the log end offset (the partition has no other
    /// replica: the default).
    pub fn hw_follows_leo(&self) -> bool {
        unpoison(self.state.read()).hw_follows_leo
    }

    /// Makes the high watermark follow the log end offset (`follows`: this log becomes its
    /// partition's only in-sync replica, so everything it holds is committed, as Kafka's
    /// `maybeIncrementLeaderHW` finds with an ISR of one) or be set by replication from now
    /// on, starting from the last value it had while following (the log end offset of the
    /// last append) or the one [`Self::restore_high_watermark`] gave.
    pub fn set_hw_follows_leo(&self, follows: bool) {
        let changed = {
            let mut state = unpoison(self.state.write());
            let was = state.high_watermark();
            // Leaving it, the last value stays: the log end offset of the last append
            // made while following it, or the one restored from the checkpoint.
            if follows {
                state.high_watermark = state.log_end_offset;
            }
            state.hw_follows_leo = follows;
            state.high_watermark() != was
        };
        if changed {
            self.end_offset.send_modify(|_| {});
        }
    }

    /// The high watermark read from `replication-offset-checkpoint` at start-up, clamped
    /// to the log's offsets. It is what the log answers with once replication stops the
    /// high watermark from following the log end offset (a follower resumes from it).
    pub fn restore_high_watermark(&self, offset: i64) {
        let mut state = unpoison(self.state.write());
        let bounded = offset.min(state.log_end_offset).max(state.log_start_offset);
        state.high_watermark = bounded;
    }

    /// The leader's Kafka `maybeIncrementHighWatermark`: raises the high watermark to
    /// `offset` (bounded by the log end offset) if that is higher, waking fetches waiting
    /// on [`Self::subscribe`]. Returns the new high watermark if it moved. Does nothing
    /// while the high watermark follows the log end offset.
    pub fn maybe_increment_high_watermark(&self, offset: i64) -> Option<i64> {
        let moved = {
            let mut state = unpoison(self.state.write());
            if state.hw_follows_leo || offset <= state.high_watermark() {
                None
            } else {
                state
                    .set_high_watermark(offset)
                    .then(|| state.high_watermark())
            }
        };
        if moved.is_some() {
            self.end_offset.send_modify(|_| {});
        }
        moved
    }

    /// A follower's Kafka `maybeUpdateHighWatermark`: the leader's high watermark bounded
    /// by this log's end offset (it may move back, after a leader change). Returns the high
    /// watermark now.
    pub fn update_follower_high_watermark(&self, leader_high_watermark: i64) -> i64 {
        let (changed, now) = {
            let mut state = unpoison(self.state.write());
            if state.hw_follows_leo {
                (false, state.high_watermark())
            } else {
                let changed = state.set_high_watermark(leader_high_watermark);
                (changed, state.high_watermark())
            }
        };
        if changed {
            self.end_offset.send_modify(|_| {});
        }
        now
    }
}
