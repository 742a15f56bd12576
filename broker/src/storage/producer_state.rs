//! Idempotent producers' state, per partition: Kafka's `ProducerStateManager`,
//! `ProducerStateEntry` and `ProducerAppendInfo` (Kafka 4.x) for data batches.
//!
//! For every producer id that wrote to the partition the state keeps its current epoch and
//! the metadata of its last [`NUM_BATCHES_TO_RETAIN`] batches (first and last sequence,
//! first and last offset, max timestamp). A client's batches with a producer id (`>= 0`)
//! are checked against it, in order, before anything is appended:
//!
//! * a batch whose epoch and sequence range equal one of the retained batches of the
//!   producer's stored state is a **duplicate** (a retry after a lost response): nothing of
//!   the request is appended and the first duplicate's metadata answers it
//!   (`ProducerCheck::Duplicate`), as Kafka's `UnifiedLog.analyzeAndValidateProducerState`
//!   does;
//! * an epoch older than the producer's current one: [`ProducerStateError::InvalidEpoch`]
//!   (`INVALID_PRODUCER_EPOCH`, 47);
//! * a newer epoch starts the sequence over: its first sequence must be 0
//!   ([`ProducerStateError::InvalidSequenceForNewEpoch`], `OUT_OF_ORDER_SEQUENCE_NUMBER`,
//!   45), unless the producer had no epoch yet;
//! * the same epoch: the first sequence must follow the last one (`last + 1`, wrapping from
//!   `i32::MAX` to 0), else [`ProducerStateError::OutOfOrderSequence`] (45);
//! * a producer the partition does not know (new, or expired) is accepted at any sequence
//!   (Kafka's rule when the stored epoch is `NO_PRODUCER_EPOCH`).
//!
//! The check (`ProducerStateManager::check`) does not change the state: it returns the
//! updated entries (`ProducerUpdate`), applied (`ProducerStateManager::apply`) once the
//! batches are written. [`PartitionLog`](super::PartitionLog) does both under its writer
//! lock, with the offsets it assigns, so the check, the offsets and the update are atomic
//! with the append.
//!
//! Batches written without client checks (recovery at open, trusted appends) are replayed
//! as Kafka replays replicated batches (`ProducerStateManager::replay`): no checks, the
//! entry simply follows the log. Transactions (the ongoing transaction of each producer,
//! coordinator epochs, markers, KIP-890 verification) are in [`txn`]; the coordinator
//! epoch and the first offset of the ongoing transaction are written to and read from
//! snapshots as Kafka persists them.
//!
//! The state is persisted in Kafka's `<offset>.snapshot` files (see
//! [`super::producer_snapshot`]): at each segment roll (at the new segment's base offset)
//! and at clean shutdown (at the log end offset), as Kafka's `roll` and `close` take them.
//! At open the newest valid snapshot is loaded (producers expired by
//! `producer.id.expiration.ms` dropped) and only the batches after it are replayed, as
//! Kafka's `loadProducerState` does. A snapshot keeps each producer's **last** batch only,
//! so after a restart from a snapshot a retry of that batch is a duplicate but a retry of
//! an earlier one of the five retained is out of order, exactly as in Kafka.
//!
//! Producers expire (`ProducerStateManager::remove_expired`) when their last batch's
//! timestamp is `producer.id.expiration.ms` old and they have no ongoing transaction, as
//! Kafka's periodic check (`producer.id.expiration.check.interval.ms`) does; raising the log
//! start offset (retention, DeleteRecords) does not remove producers, as in Kafka.
//!
//! Differences from Kafka:
//!
//! * A log that has no snapshot at all is replayed from its log start offset even after a
//!   clean shutdown. Kafka then assumes an upgrade from a version without idempotence and
//!   starts with an empty state; logs written before this broker kept snapshots would lose
//!   their producers that way.
//! * Produce v3+ clients send one batch per partition. For several, the batches are
//!   checked in order and, as Kafka's code does, the first duplicate answers the whole
//!   request; one refused batch refuses them all.

use std::collections::{BTreeMap, HashMap, VecDeque};

use gregor_protocol::records::BatchHeader;

use super::producer_snapshot::SnapshotEntry;

/// Batches remembered per producer for duplicate detection (Kafka's
/// `ProducerStateEntry.NUM_BATCHES_TO_RETAIN`; the Java producer keeps at most 5 requests
/// in flight with idempotence for the same reason).
pub const NUM_BATCHES_TO_RETAIN: usize = 5;
pub use gregor_protocol::error_code::{INVALID_PRODUCER_EPOCH, OUT_OF_ORDER_SEQUENCE_NUMBER};
use gregor_protocol::error_code::{INVALID_TXN_STATE, TRANSACTION_COORDINATOR_FENCED};

pub mod txn;
pub use txn::{TxnMarker, TxnVerification, VerificationGuard};
/// Kafka's default `producer.id.expiration.ms` (one day).
pub const DEFAULT_PRODUCER_ID_EXPIRATION_MS: i64 = 86_400_000;
/// Kafka's `RecordBatch.NO_PRODUCER_EPOCH`.
const NO_PRODUCER_EPOCH: i16 = -1;
/// Kafka's `RecordBatch.NO_SEQUENCE`.
const NO_SEQUENCE: i32 = -1;

/// Kafka's `DefaultRecordBatch.incrementSequence`: `sequence + increment`, wrapping from
/// `i32::MAX` to 0 (`increment` is at least 0).
pub(crate) fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    if sequence > i32::MAX - increment {
        increment - (i32::MAX - sequence) - 1
    } else {
        sequence + increment
    }
}

/// Kafka's `DefaultRecordBatch.decrementSequence`: `sequence - decrement`, wrapping from 0
/// to `i32::MAX` (`decrement` is at least 0).
pub(crate) fn decrement_sequence(sequence: i32, decrement: i32) -> i32 {
    if sequence < decrement {
        i32::MAX - (decrement - sequence) + 1
    } else {
        sequence - decrement
    }
}

/// Kafka's `ProducerAppendInfo.inSequence`: `next` follows `last`, wrapping from
/// `i32::MAX` to 0.
fn in_sequence(last: i32, next: i32) -> bool {
    i64::from(next) == i64::from(last) + 1 || (next == 0 && last == i32::MAX)
}

/// What the state keeps about one appended batch (Kafka's `BatchMetadata`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchMetadata {
    /// Sequence of the first record.
    pub first_seq: i32,
    /// Sequence of the last record.
    pub last_seq: i32,
    /// Offset of the first record.
    pub first_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
    /// The batch's max timestamp as written (the log append time on `LogAppendTime`
    /// topics).
    pub max_timestamp: i64,
}

/// The state of one producer in one partition (Kafka's `ProducerStateEntry`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchMetadata>,
    last_timestamp: i64,
    /// Kafka's `coordinatorEpoch`: the epoch of the transaction coordinator that wrote the
    /// producer's last marker (-1 if none).
    coordinator_epoch: i32,
    /// Kafka's `currentTxnFirstOffset`: the first offset of the producer's ongoing
    /// transaction.
    current_txn_first_offset: Option<i64>,
}

impl ProducerEntry {
    /// A producer with no epoch and no batch yet.
    fn empty() -> ProducerEntry {
        ProducerEntry {
            epoch: NO_PRODUCER_EPOCH,
            batches: VecDeque::with_capacity(NUM_BATCHES_TO_RETAIN),
            last_timestamp: -1,
            coordinator_epoch: -1,
            current_txn_first_offset: None,
        }
    }

    /// The entry a snapshot recorded (Kafka's `readSnapshot`): its last batch only (none if
    /// its last offset is negative), the batch's timestamp being the entry's.
    pub(crate) fn from_snapshot(entry: &SnapshotEntry) -> ProducerEntry {
        let mut batches = VecDeque::with_capacity(NUM_BATCHES_TO_RETAIN);
        if entry.last_offset >= 0 {
            let delta = entry.offset_delta.max(0);
            batches.push_back(BatchMetadata {
                first_seq: decrement_sequence(entry.last_sequence, delta),
                last_seq: entry.last_sequence,
                first_offset: entry.last_offset - i64::from(delta),
                last_offset: entry.last_offset,
                max_timestamp: entry.timestamp,
            });
        }
        ProducerEntry {
            epoch: entry.epoch,
            batches,
            last_timestamp: entry.timestamp,
            coordinator_epoch: entry.coordinator_epoch,
            current_txn_first_offset: (entry.current_txn_first_offset >= 0)
                .then_some(entry.current_txn_first_offset),
        }
    }

    /// The snapshot entry of producer `producer_id` (Kafka's `writeSnapshot`): its last
    /// batch only.
    pub(crate) fn to_snapshot(&self, producer_id: i64) -> SnapshotEntry {
        let last = self.batches.back();
        SnapshotEntry {
            producer_id,
            epoch: self.epoch,
            last_sequence: self.last_seq(),
            last_offset: self.last_offset(),
            offset_delta: last.map_or(0, |b| {
                i32::try_from(b.last_offset - b.first_offset).unwrap_or(i32::MAX)
            }),
            timestamp: self.last_timestamp,
            coordinator_epoch: self.coordinator_epoch,
            current_txn_first_offset: self.current_txn_first_offset.unwrap_or(-1),
        }
    }

    /// The epoch of the transaction coordinator that wrote the producer's last transaction
    /// marker (-1 if none).
    pub fn coordinator_epoch(&self) -> i32 {
        self.coordinator_epoch
    }

    /// First offset of the producer's ongoing transaction here (`None` outside one).
    pub fn current_txn_first_offset(&self) -> Option<i64> {
        self.current_txn_first_offset
    }

    /// Kafka's `isProducerExpired`: no ongoing transaction and the last batch's timestamp
    /// at least `expiration_ms` before `now_ms`.
    fn is_expired(&self, now_ms: i64, expiration_ms: i64) -> bool {
        self.current_txn_first_offset.is_none()
            && now_ms.saturating_sub(self.last_timestamp) >= expiration_ms
    }

    /// The producer's current epoch.
    pub fn epoch(&self) -> i16 {
        self.epoch
    }

    /// The retained batches of the current epoch, oldest first (at most
    /// [`NUM_BATCHES_TO_RETAIN`]).
    pub fn batches(&self) -> impl ExactSizeIterator<Item = &BatchMetadata> {
        self.batches.iter()
    }

    /// The sequence of the producer's last record (-1 without batches).
    pub fn last_seq(&self) -> i32 {
        self.batches.back().map_or(NO_SEQUENCE, |b| b.last_seq)
    }

    /// The offset of the producer's last record (-1 without batches).
    pub fn last_offset(&self) -> i64 {
        self.batches.back().map_or(-1, |b| b.last_offset)
    }

    /// The max timestamp of the producer's last batch, from which it expires.
    pub fn last_timestamp(&self) -> i64 {
        self.last_timestamp
    }

    /// Kafka's `findDuplicateBatch`: the retained batch with this epoch and sequence range.
    fn find_duplicate(&self, epoch: i16, first_seq: i32, last_seq: i32) -> Option<BatchMetadata> {
        if epoch != self.epoch {
            return None;
        }
        self.batches
            .iter()
            .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
            .copied()
    }

    /// Kafka's `addBatch`: a new epoch forgets the previous epoch's batches; only the last
    /// [`NUM_BATCHES_TO_RETAIN`] batches are kept.
    fn add_batch(&mut self, epoch: i16, batch: BatchMetadata) {
        if epoch != self.epoch {
            self.batches.clear();
            self.epoch = epoch;
        }
        if self.batches.len() == NUM_BATCHES_TO_RETAIN {
            self.batches.pop_front();
        }
        self.batches.push_back(batch);
        self.last_timestamp = batch.max_timestamp;
    }
}

/// One batch with a producer id, at the offsets it gets (or got) in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProducerBatch {
    /// The producer id (at least 0).
    pub(crate) producer_id: i64,
    /// The producer epoch.
    pub(crate) epoch: i16,
    /// Sequence of the first record.
    pub(crate) base_sequence: i32,
    /// Offset of the first record.
    pub(crate) first_offset: i64,
    /// Offset of the last record.
    pub(crate) last_offset: i64,
    /// The max timestamp as written.
    pub(crate) max_timestamp: i64,
    /// Whether the batch belongs to a transaction.
    pub(crate) transactional: bool,
}

impl ProducerBatch {
    /// The producer facts of a batch header read from a segment, `None` for batches
    /// without a producer id and for control batches.
    pub(crate) fn from_header(header: &BatchHeader) -> Option<ProducerBatch> {
        if header.producer_id < 0 || header.is_control() || header.last_offset_delta < 0 {
            return None;
        }
        Some(ProducerBatch {
            producer_id: header.producer_id,
            epoch: header.producer_epoch,
            base_sequence: header.base_sequence,
            first_offset: header.base_offset,
            last_offset: header
                .base_offset
                .saturating_add(i64::from(header.last_offset_delta)),
            max_timestamp: header.max_timestamp,
            transactional: header.is_transactional(),
        })
    }

    /// Sequence of the last record (Kafka's `lastSequence`).
    pub(crate) fn last_seq(&self) -> i32 {
        let delta = i32::try_from(self.last_offset - self.first_offset).unwrap_or(i32::MAX);
        increment_sequence(self.base_sequence, delta)
    }

    fn metadata(&self) -> BatchMetadata {
        BatchMetadata {
            first_seq: self.base_sequence,
            last_seq: self.last_seq(),
            first_offset: self.first_offset,
            last_offset: self.last_offset,
            max_timestamp: self.max_timestamp,
        }
    }
}

/// A batch refused by the producer state, with Kafka's error code ([`Self::code`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProducerStateError {
    /// The batch's epoch is older than the producer's current epoch (a zombie producer):
    /// `INVALID_PRODUCER_EPOCH`.
    #[error(
        "Epoch of producer {producer_id} at offset {offset} is {epoch}, which is smaller than the last seen epoch {current_epoch}"
    )]
    InvalidEpoch {
        /// The producer id.
        producer_id: i64,
        /// The offset the batch would have got.
        offset: i64,
        /// The batch's epoch.
        epoch: i16,
        /// The producer's current epoch.
        current_epoch: i16,
    },
    /// A batch of a new epoch does not start at sequence 0: `OUT_OF_ORDER_SEQUENCE_NUMBER`.
    #[error(
        "Invalid sequence number for new epoch of producer {producer_id} at offset {offset}: {epoch} (request epoch), {first_seq} (seq. number), {current_epoch} (current producer epoch)"
    )]
    InvalidSequenceForNewEpoch {
        /// The producer id.
        producer_id: i64,
        /// The offset the batch would have got.
        offset: i64,
        /// The batch's epoch.
        epoch: i16,
        /// The batch's first sequence.
        first_seq: i32,
        /// The producer's current epoch.
        current_epoch: i16,
    },
    /// The batch's first sequence does not follow the producer's last one (a gap, or an
    /// old batch that is no longer retained): `OUT_OF_ORDER_SEQUENCE_NUMBER`.
    #[error(
        "Out of order sequence number for producer {producer_id} at offset {offset}: {first_seq} (incoming seq. number), {last_seq} (current end sequence number)"
    )]
    OutOfOrderSequence {
        /// The producer id.
        producer_id: i64,
        /// The offset the batch would have got.
        offset: i64,
        /// The batch's first sequence.
        first_seq: i32,
        /// The producer's last sequence.
        last_seq: i32,
    },
    /// A non-transactional batch from a producer with an ongoing transaction, or a
    /// transactional batch that starts a transaction without the coordinator's
    /// verification (KIP-890): `INVALID_TXN_STATE`.
    #[error("{reason} from producer {producer_id} at offset {offset}")]
    InvalidTxnState {
        /// The producer id.
        producer_id: i64,
        /// The offset the batch would have got.
        offset: i64,
        /// What was wrong.
        reason: &'static str,
    },
    /// A transaction marker from a coordinator older than the one that wrote the
    /// producer's last marker (a zombie coordinator): `TRANSACTION_COORDINATOR_FENCED`.
    #[error(
        "Invalid coordinator epoch for producerId {producer_id} at offset {offset}: {coordinator_epoch} (zombie), {current_coordinator_epoch} (current)"
    )]
    CoordinatorFenced {
        /// The producer id.
        producer_id: i64,
        /// The offset the marker would have got.
        offset: i64,
        /// The marker's coordinator epoch.
        coordinator_epoch: i32,
        /// The coordinator epoch of the producer's last marker.
        current_coordinator_epoch: i32,
    },
}

impl ProducerStateError {
    /// Kafka's error code for the Produce response.
    pub fn code(&self) -> i16 {
        match self {
            ProducerStateError::InvalidEpoch { .. } => INVALID_PRODUCER_EPOCH,
            ProducerStateError::InvalidSequenceForNewEpoch { .. }
            | ProducerStateError::OutOfOrderSequence { .. } => OUT_OF_ORDER_SEQUENCE_NUMBER,
            ProducerStateError::InvalidTxnState { .. } => INVALID_TXN_STATE,
            ProducerStateError::CoordinatorFenced { .. } => TRANSACTION_COORDINATOR_FENCED,
        }
    }
}

/// The outcome of [`ProducerStateManager::check`].
#[derive(Debug)]
pub(crate) enum ProducerCheck {
    /// Append the batches, then apply the update.
    Append(ProducerUpdate),
    /// A batch was already appended: append nothing, answer with its metadata.
    Duplicate(BatchMetadata),
}

/// The entries of the producers a request's batches touch, as they are once the batches
/// are appended.
#[derive(Debug, Default)]
pub(crate) struct ProducerUpdate {
    entries: HashMap<i64, ProducerEntry>,
}

/// The producer state of one partition (Kafka's `ProducerStateManager`; snapshot files in
/// [`super::producer_snapshot`]).
#[derive(Debug, Default)]
pub(crate) struct ProducerStateManager {
    producers: HashMap<i64, ProducerEntry>,
    /// Ongoing transactions: first offset to producer id (Kafka's `ongoingTxns`).
    ongoing: BTreeMap<i64, i64>,
    /// KIP-890 verifications started, by producer id (see [`txn`]).
    verifications: HashMap<i64, txn::VerificationEntry>,
    /// Offset of the newest snapshot taken or loaded (Kafka's `lastSnapOffset`): a snapshot
    /// is only written at a higher offset.
    snapshot_offset: i64,
}

impl ProducerStateManager {
    /// Checks a client's batches, in log order at the offsets they would get, against the
    /// state (see the module documentation); changes nothing.
    #[cfg(test)]
    pub(crate) fn check(
        &self,
        batches: &[ProducerBatch],
    ) -> Result<ProducerCheck, ProducerStateError> {
        self.check_with(batches, TxnVerification::NotRequired)
    }

    /// [`Self::check`] with the KIP-890 verification of the request's transactional
    /// batches (see [`txn`]).
    pub(crate) fn check_with(
        &self,
        batches: &[ProducerBatch],
        verification: TxnVerification,
    ) -> Result<ProducerCheck, ProducerStateError> {
        let mut update = ProducerUpdate::default();
        for batch in batches {
            let current = self.producers.get(&batch.producer_id);
            self.check_verification(batch, current, verification)?;
            let last_seq = batch.last_seq();
            if let Some(duplicate) =
                current.and_then(|e| e.find_duplicate(batch.epoch, batch.base_sequence, last_seq))
            {
                return Ok(ProducerCheck::Duplicate(duplicate));
            }
            let stored_epoch = current.map_or(NO_PRODUCER_EPOCH, ProducerEntry::epoch);
            let updated = update
                .entries
                .entry(batch.producer_id)
                .or_insert_with(|| current.cloned().unwrap_or_else(ProducerEntry::empty));
            if batch.epoch < updated.epoch {
                return Err(ProducerStateError::InvalidEpoch {
                    producer_id: batch.producer_id,
                    offset: batch.first_offset,
                    epoch: batch.epoch,
                    current_epoch: updated.epoch,
                });
            }
            if batch.epoch != updated.epoch {
                if batch.base_sequence != 0 && updated.epoch != NO_PRODUCER_EPOCH {
                    return Err(ProducerStateError::InvalidSequenceForNewEpoch {
                        producer_id: batch.producer_id,
                        offset: batch.first_offset,
                        epoch: batch.epoch,
                        first_seq: batch.base_sequence,
                        current_epoch: updated.epoch,
                    });
                }
            } else if stored_epoch != NO_PRODUCER_EPOCH
                && !in_sequence(updated.last_seq(), batch.base_sequence)
            {
                return Err(ProducerStateError::OutOfOrderSequence {
                    producer_id: batch.producer_id,
                    offset: batch.first_offset,
                    first_seq: batch.base_sequence,
                    last_seq: updated.last_seq(),
                });
            }
            updated.add_batch(batch.epoch, batch.metadata());
            txn::begin_or_check(updated, batch)?;
        }
        Ok(ProducerCheck::Append(update))
    }

    /// Makes the entries of a checked request current (after its batches were written).
    pub(crate) fn apply(&mut self, update: ProducerUpdate) {
        for (producer_id, entry) in update.entries {
            self.track_ongoing(producer_id, entry.current_txn_first_offset);
            self.producers.insert(producer_id, entry);
        }
    }

    /// Records a batch found in (or written to) the log without checks, as Kafka replays
    /// replicated batches and rebuilds its state from the log.
    pub(crate) fn replay(&mut self, batch: &ProducerBatch) {
        let entry = self
            .producers
            .entry(batch.producer_id)
            .or_insert_with(ProducerEntry::empty);
        entry.add_batch(batch.epoch, batch.metadata());
        if let Err(error) = txn::begin_or_check(entry, batch) {
            // Kafka's replication path would fail here; the log is what it is.
            tracing::warn!(%error, "replayed a batch the transaction state refuses");
        }
        let first = entry.current_txn_first_offset;
        self.track_ongoing(batch.producer_id, first);
    }

    /// Removes the producers whose last batch's timestamp is at least `expiration_ms`
    /// before `now_ms` (Kafka's `removeExpiredProducers`); returns how many.
    pub(crate) fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers
            .retain(|_, entry| !entry.is_expired(now_ms, expiration_ms));
        self.verifications
            .retain(|_, v| !v.expired(now_ms, expiration_ms));
        before - self.producers.len()
    }

    /// The state a snapshot at `offset` recorded, without the producers expired at `now_ms`
    /// (Kafka's `loadFromSnapshot`); a producer id found twice keeps its later entry.
    pub(crate) fn from_snapshot(
        offset: i64,
        entries: &[SnapshotEntry],
        now_ms: i64,
        expiration_ms: i64,
    ) -> ProducerStateManager {
        let producers: HashMap<i64, ProducerEntry> = entries
            .iter()
            .map(|e| (e.producer_id, ProducerEntry::from_snapshot(e)))
            .filter(|(_, entry)| !entry.is_expired(now_ms, expiration_ms))
            .collect();
        // Kafka's `loadFromSnapshot`: an entry with a transaction under way is ongoing again.
        let ongoing = producers
            .iter()
            .filter_map(|(id, entry)| entry.current_txn_first_offset.map(|first| (first, *id)))
            .collect();
        ProducerStateManager {
            producers,
            ongoing,
            verifications: HashMap::new(),
            snapshot_offset: offset,
        }
    }

    /// Every producer's snapshot entry, by producer id.
    pub(crate) fn snapshot_entries(&self) -> Vec<SnapshotEntry> {
        let mut entries: Vec<SnapshotEntry> = self
            .producers
            .iter()
            .map(|(id, entry)| entry.to_snapshot(*id))
            .collect();
        entries.sort_unstable_by_key(|e| e.producer_id);
        entries
    }

    /// Offset of the newest snapshot taken or loaded (0 if none).
    pub(crate) fn snapshot_offset(&self) -> i64 {
        self.snapshot_offset
    }

    /// Takes the producers of `other` (the live state of a replica this one replaces),
    /// keeping this state's snapshot bookkeeping.
    pub(crate) fn take_producers_of(&mut self, other: &ProducerStateManager) {
        self.producers.clone_from(&other.producers);
        self.ongoing.clone_from(&other.ongoing);
        self.verifications.clone_from(&other.verifications);
    }

    /// Records that a snapshot was taken at `offset`.
    pub(crate) fn set_snapshot_offset(&mut self, offset: i64) {
        self.snapshot_offset = offset;
    }

    /// The entry of `producer_id`.
    pub(crate) fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// Every producer's entry, by producer id.
    pub(crate) fn entries(&self) -> Vec<(i64, ProducerEntry)> {
        let mut entries: Vec<(i64, ProducerEntry)> = self
            .producers
            .iter()
            .map(|(id, entry)| (*id, entry.clone()))
            .collect();
        entries.sort_unstable_by_key(|(id, _)| *id);
        entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch of `count` records of producer `id` at `offset`.
    fn batch(id: i64, epoch: i16, seq: i32, count: i64, offset: i64) -> ProducerBatch {
        ProducerBatch {
            producer_id: id,
            epoch,
            base_sequence: seq,
            first_offset: offset,
            last_offset: offset + count - 1,
            max_timestamp: 1_000 + offset,
            transactional: false,
        }
    }

    /// Checks and applies, as an append does.
    fn append(
        state: &mut ProducerStateManager,
        batches: &[ProducerBatch],
    ) -> Result<(), ProducerStateError> {
        match state.check(batches)? {
            ProducerCheck::Append(update) => {
                state.apply(update);
                Ok(())
            }
            ProducerCheck::Duplicate(d) => panic!("unexpected duplicate {d:?}"),
        }
    }

    fn duplicate_of(state: &ProducerStateManager, b: ProducerBatch) -> Option<BatchMetadata> {
        match state.check(&[b]).expect("no error") {
            ProducerCheck::Duplicate(d) => Some(d),
            ProducerCheck::Append(_) => None,
        }
    }

    fn code(state: &ProducerStateManager, batches: &[ProducerBatch]) -> i16 {
        state.check(batches).map_or_else(|e| e.code(), |_| 0)
    }

    #[test]
    fn sequences_wrap() {
        assert_eq!(increment_sequence(0, 4), 4);
        assert_eq!(increment_sequence(i32::MAX, 0), i32::MAX);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
        assert!(in_sequence(-1, 0));
        assert!(in_sequence(4, 5));
        assert!(in_sequence(i32::MAX, 0));
        assert!(!in_sequence(4, 4));
        assert!(!in_sequence(4, 6));
    }

    #[test]
    fn each_of_the_last_five_batches_is_a_duplicate() {
        let mut state = ProducerStateManager::default();
        let mut offset = 0;
        let mut sent = Vec::new();
        for i in 0..7 {
            let b = batch(1, 0, i * 3, 3, offset);
            append(&mut state, &[b]).expect("in sequence");
            sent.push(b);
            offset += 3;
        }
        let entry = state.get(1).expect("known");
        assert_eq!(entry.batches().len(), NUM_BATCHES_TO_RETAIN);
        assert_eq!((entry.last_seq(), entry.last_offset()), (20, 20));
        for (i, b) in sent.iter().enumerate() {
            // A retry comes at whatever offset the log end is now.
            let retry = ProducerBatch {
                first_offset: 100,
                last_offset: 102,
                ..*b
            };
            if i < 2 {
                // No longer retained: neither a duplicate nor in sequence.
                assert_eq!(
                    code(&state, &[retry]),
                    OUT_OF_ORDER_SEQUENCE_NUMBER,
                    "batch {i}"
                );
            } else {
                let found = duplicate_of(&state, retry).expect("a duplicate");
                assert_eq!(
                    found,
                    BatchMetadata {
                        first_seq: b.base_sequence,
                        last_seq: b.base_sequence + 2,
                        first_offset: b.first_offset,
                        last_offset: b.last_offset,
                        max_timestamp: b.max_timestamp,
                    }
                );
            }
        }
        // Same first sequence, other length: not a duplicate, out of order.
        assert_eq!(
            code(&state, &[batch(1, 0, 18, 2, 100)]),
            OUT_OF_ORDER_SEQUENCE_NUMBER
        );
        // Same range, other epoch: not a duplicate.
        assert_eq!(duplicate_of(&state, batch(1, 1, 0, 3, 100)), None);
        assert_eq!(
            code(&state, &[batch(1, 1, 18, 3, 100)]),
            OUT_OF_ORDER_SEQUENCE_NUMBER
        );
    }

    #[test]
    fn gaps_and_repeats_are_out_of_order() {
        let mut state = ProducerStateManager::default();
        append(&mut state, &[batch(1, 0, 0, 5, 0)]).expect("first");
        assert_eq!(
            code(&state, &[batch(1, 0, 6, 1, 5)]),
            OUT_OF_ORDER_SEQUENCE_NUMBER
        );
        assert_eq!(
            code(&state, &[batch(1, 0, 4, 1, 5)]),
            OUT_OF_ORDER_SEQUENCE_NUMBER
        );
        assert_eq!(code(&state, &[batch(1, 0, 5, 1, 5)]), 0);
        let error = state.check(&[batch(1, 0, 20, 2, 5)]).unwrap_err();
        assert_eq!(
            error,
            ProducerStateError::OutOfOrderSequence {
                producer_id: 1,
                offset: 5,
                first_seq: 20,
                last_seq: 4,
            }
        );
        // A request's batches chain on each other; one bad batch refuses them all.
        assert_eq!(
            code(&state, &[batch(1, 0, 5, 2, 5), batch(1, 0, 7, 1, 7)]),
            0
        );
        assert_eq!(
            code(&state, &[batch(1, 0, 5, 2, 5), batch(1, 0, 8, 1, 7)]),
            OUT_OF_ORDER_SEQUENCE_NUMBER
        );
        assert_eq!(
            state.get(1).expect("known").last_seq(),
            4,
            "checks change nothing"
        );
        // Another producer is independent.
        append(&mut state, &[batch(2, 0, 0, 1, 5)]).expect("another producer");
        assert_eq!(state.get(1).expect("known").last_seq(), 4);
    }

    #[test]
    fn sequences_wrap_around_to_zero() {
        let mut state = ProducerStateManager::default();
        // Unknown producers are accepted at any sequence.
        append(&mut state, &[batch(1, 3, i32::MAX - 4, 3, 0)]).expect("any sequence");
        let entry = state.get(1).expect("known");
        assert_eq!(entry.last_seq(), i32::MAX - 2);
        // The next batch runs over i32::MAX: MAX - 1, MAX, 0, 1.
        let wrapping = batch(1, 3, i32::MAX - 1, 4, 3);
        assert_eq!(wrapping.last_seq(), 1);
        append(&mut state, &[wrapping]).expect("in sequence across the wrap");
        assert_eq!(state.get(1).expect("known").last_seq(), 1);
        assert_eq!(
            duplicate_of(&state, wrapping).map(|d| (d.first_seq, d.last_seq)),
            Some((i32::MAX - 1, 1))
        );
        append(&mut state, &[batch(1, 3, 2, 1, 7)]).expect("after the wrap");
        // From exactly i32::MAX to 0.
        let mut state = ProducerStateManager::default();
        append(&mut state, &[batch(1, 0, i32::MAX, 1, 0)]).expect("first");
        assert_eq!(
            code(&state, &[batch(1, 0, 1, 1, 1)]),
            OUT_OF_ORDER_SEQUENCE_NUMBER
        );
        append(&mut state, &[batch(1, 0, 0, 1, 1)]).expect("0 follows i32::MAX");
    }

    #[test]
    fn epochs() {
        let mut state = ProducerStateManager::default();
        append(&mut state, &[batch(1, 2, 0, 2, 0), batch(1, 2, 2, 2, 2)]).expect("epoch 2");
        // An older epoch is fenced, whatever its sequence.
        let error = state.check(&[batch(1, 1, 4, 1, 4)]).unwrap_err();
        assert_eq!(error.code(), INVALID_PRODUCER_EPOCH);
        assert_eq!(
            error,
            ProducerStateError::InvalidEpoch {
                producer_id: 1,
                offset: 4,
                epoch: 1,
                current_epoch: 2,
            }
        );
        assert_eq!(
            code(&state, &[batch(1, 1, 0, 2, 4)]),
            INVALID_PRODUCER_EPOCH
        );
        // A newer epoch restarts at 0.
        assert_eq!(
            code(&state, &[batch(1, 3, 4, 1, 4)]),
            OUT_OF_ORDER_SEQUENCE_NUMBER
        );
        assert!(matches!(
            state.check(&[batch(1, 3, 4, 1, 4)]),
            Err(ProducerStateError::InvalidSequenceForNewEpoch {
                current_epoch: 2,
                ..
            })
        ));
        append(&mut state, &[batch(1, 3, 0, 1, 4)]).expect("new epoch at 0");
        let entry = state.get(1).expect("known");
        assert_eq!(
            (entry.epoch(), entry.batches().len(), entry.last_seq()),
            (3, 1, 0)
        );
        // The previous epoch's batches are forgotten, and that epoch is now fenced.
        assert_eq!(
            code(&state, &[batch(1, 2, 2, 2, 5)]),
            INVALID_PRODUCER_EPOCH
        );
        // Within a request: a bump then the old epoch again.
        assert_eq!(
            code(&state, &[batch(1, 4, 0, 1, 5), batch(1, 3, 1, 1, 6)]),
            INVALID_PRODUCER_EPOCH
        );
        // A new epoch of an unknown producer may start anywhere.
        append(&mut state, &[batch(9, 5, 42, 1, 5)]).expect("unknown producer");
    }

    #[test]
    fn duplicates_are_found_before_other_checks() {
        let mut state = ProducerStateManager::default();
        append(&mut state, &[batch(1, 0, 0, 2, 0)]).expect("first");
        // Kafka answers the first duplicate of a request, appending nothing.
        match state
            .check(&[batch(1, 0, 2, 1, 2), batch(1, 0, 0, 2, 3)])
            .expect("no error")
        {
            ProducerCheck::Duplicate(d) => assert_eq!((d.first_offset, d.last_offset), (0, 1)),
            ProducerCheck::Append(_) => panic!("not detected"),
        }
    }

    #[test]
    fn replay_and_expiry() {
        let mut state = ProducerStateManager::default();
        // Replayed batches are not checked: gaps and older epochs follow the log.
        state.replay(&batch(1, 2, 10, 1, 0));
        state.replay(&batch(1, 1, 50, 1, 1));
        state.replay(&batch(2, 0, 0, 1, 2));
        let entry = state.get(1).expect("known");
        assert_eq!(
            (entry.epoch(), entry.last_seq(), entry.last_offset()),
            (1, 50, 1)
        );
        assert_eq!(entry.last_timestamp(), 1_001);
        assert_eq!(
            state
                .entries()
                .iter()
                .map(|(id, _)| *id)
                .collect::<Vec<_>>(),
            [1, 2]
        );
        // Producer 1's last batch has timestamp 1001, producer 2's 1002.
        assert_eq!(state.remove_expired(1_500, 500), 0);
        assert_eq!(state.remove_expired(1_501, 500), 1);
        assert!(state.get(1).is_none());
        assert!(state.get(2).is_some());
        // An expired producer is unknown again: any sequence goes.
        append(&mut state, &[batch(1, 1, 7, 1, 3)]).expect("unknown again");
    }
}
