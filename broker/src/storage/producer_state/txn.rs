//! Transactions in a partition's producer state: Kafka's `ProducerAppendInfo` rules for
//! transactional batches and end-transaction markers, `ProducerStateManager`'s ongoing
//! transactions (`ongoingTxns`, `firstUnstableOffset`, `lastStableOffset(CompletedTxn)`)
//! and KIP-890's verification guards.
//!
//! * The first transactional batch of a producer starts its ongoing transaction at the
//!   batch's first offset (`current_txn_first_offset`); a non-transactional batch while
//!   one is ongoing is `INVALID_TXN_STATE`.
//! * A marker (commit or abort, written by the transaction coordinator) with an epoch
//!   older than the producer's is `INVALID_PRODUCER_EPOCH`; with a coordinator epoch older
//!   than the producer's last marker's, `TRANSACTION_COORDINATOR_FENCED`. It ends the
//!   ongoing transaction (a marker without one changes only the epochs, as in Kafka: an
//!   empty transaction does not touch the LSO or the transaction index).
//! * KIP-890 (`transaction.partition.verification.enable`): before a transactional batch
//!   that would start a transaction is appended, the Produce path asks the coordinator
//!   whether the partition is in the producer's transaction. It first takes a
//!   [`VerificationGuard`] from the partition ([`ProducerStateManager::start_verification`],
//!   Kafka's `maybeStartTransactionVerification`), asks, and appends with
//!   [`TxnVerification::Guard`]. The guard is dropped when a transaction starts or a marker
//!   is written, so a verification that raced with an abort no longer matches (Kafka's ABA
//!   argument for unique guards) and the append is `INVALID_TXN_STATE`.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{ProducerBatch, ProducerEntry, ProducerStateError, ProducerStateManager};
use crate::storage::txn_index::AbortedTxn;

/// A commit or abort marker to append for one producer (Kafka's `EndTransactionMarker`
/// with the batch fields that go with it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxnMarker {
    /// The producer id.
    pub producer_id: i64,
    /// The producer epoch the coordinator completes the transaction with.
    pub producer_epoch: i16,
    /// The coordinator's epoch.
    pub coordinator_epoch: i32,
    /// Commit (`true`) or abort.
    pub commit: bool,
    /// The marker's offset.
    pub offset: i64,
    /// The marker record's timestamp.
    pub timestamp: i64,
}

/// A transaction ended by a marker (Kafka's `CompletedTxn`, with the LSO the transaction
/// index records for it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompletedTxn {
    /// The producer id.
    pub producer_id: i64,
    /// First offset of the transaction.
    pub first_offset: i64,
    /// The marker's offset.
    pub last_offset: i64,
    /// Whether it was aborted.
    pub aborted: bool,
    /// Kafka's `lastStableOffset(completedTxn)`: the first offset of the oldest other
    /// ongoing transaction, else the marker's offset + 1.
    pub last_stable_offset: i64,
}

/// A KIP-890 verification in progress (Kafka's `VerificationGuard`): unique per started
/// verification; [`VerificationGuard::SENTINEL`] is no verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VerificationGuard(u64);

impl VerificationGuard {
    /// No verification (Kafka's `VerificationGuard.SENTINEL`): returned when the producer
    /// already has an ongoing transaction in the partition; never verifies anything.
    pub const SENTINEL: VerificationGuard = VerificationGuard(0);

    fn next() -> VerificationGuard {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        VerificationGuard(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// What a client append says about KIP-890 verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnVerification {
    /// Verification is off (`transaction.partition.verification.enable=false`, or trusted
    /// callers): transactional batches start transactions freely.
    NotRequired,
    /// Verification is on: a transactional batch that would start a transaction must come
    /// with the guard the partition handed out for its producer (and the coordinator
    /// confirmed); anything else is `INVALID_TXN_STATE`.
    Guard(VerificationGuard),
}

/// A verification started for a producer without an ongoing transaction (Kafka's
/// `VerificationStateEntry`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct VerificationEntry {
    guard: VerificationGuard,
    /// Lowest sequence seen for the verification (Kafka checks a later first sequence
    /// against it; kept for DescribeProducers-like diagnostics).
    #[allow(dead_code)]
    lowest_sequence: i32,
    /// Highest epoch seen for the verification.
    #[allow(dead_code)]
    epoch: i16,
    /// When it started, for expiry with the producers.
    started_ms: i64,
}

impl VerificationEntry {
    /// Whether it is `expiration_ms` old at `now_ms` (with the producers'
    /// `producer.id.expiration.ms`).
    pub(crate) fn expired(&self, now_ms: i64, expiration_ms: i64) -> bool {
        now_ms.saturating_sub(self.started_ms) >= expiration_ms
    }
}

/// The state a checked marker leaves, applied once the marker is written.
#[derive(Debug)]
pub(crate) struct MarkerUpdate {
    producer_id: i64,
    entry: ProducerEntry,
    /// The ongoing transaction it ends, if any.
    completed: Option<CompletedTxn>,
}

impl MarkerUpdate {
    /// The transaction index entry of the marker: an abort of a non-empty transaction.
    pub(crate) fn aborted_txn(&self) -> Option<AbortedTxn> {
        self.completed.filter(|c| c.aborted).map(|c| AbortedTxn {
            producer_id: c.producer_id,
            first_offset: c.first_offset,
            last_offset: c.last_offset,
            last_stable_offset: c.last_stable_offset,
        })
    }
}

/// Kafka's transaction rule of `ProducerAppendInfo.appendDataBatch`, after the batch was
/// added to `entry`: starts a transaction at a transactional batch, refuses a
/// non-transactional one during a transaction.
pub(super) fn begin_or_check(
    entry: &mut ProducerEntry,
    batch: &ProducerBatch,
) -> Result<(), ProducerStateError> {
    match (entry.current_txn_first_offset, batch.transactional) {
        (Some(_), false) => Err(ProducerStateError::InvalidTxnState {
            producer_id: batch.producer_id,
            offset: batch.first_offset,
            reason: "Expected a transactional write",
        }),
        (None, true) => {
            entry.current_txn_first_offset = Some(batch.first_offset);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Kafka's `ProducerStateEntry.update(producerEpoch, coordinatorEpoch, lastTimestamp)`:
/// a marker ends the transaction and records the epochs.
fn end_transaction(entry: &mut ProducerEntry, marker: &TxnMarker) {
    if entry.epoch != marker.producer_epoch {
        entry.batches.clear();
        entry.epoch = marker.producer_epoch;
    }
    entry.coordinator_epoch = marker.coordinator_epoch;
    entry.current_txn_first_offset = None;
    entry.last_timestamp = marker.timestamp;
}

/// Whether `entry` has an ongoing transaction of producer epoch `epoch` (Kafka 4's
/// `UnifiedLog.hasOngoingTransaction(producerId, producerEpoch)`). The epoch matters under
/// transaction version 2 (KIP-890 part 2), where every EndTxn bumps it: the first batch of
/// the next transaction can arrive before the previous one's marker is written, and must
/// still be verified with the coordinator instead of riding on the old transaction.
fn in_transaction(entry: &ProducerEntry, epoch: i16) -> bool {
    entry.current_txn_first_offset.is_some() && entry.epoch == epoch
}

impl ProducerStateManager {
    /// KIP-890's check (Kafka's `batchMissingRequiredVerification`): a transactional
    /// batch of a producer without an ongoing transaction (in the stored state) needs the
    /// guard of its verification when verification is required.
    pub(super) fn check_verification(
        &self,
        batch: &ProducerBatch,
        current: Option<&ProducerEntry>,
        verification: TxnVerification,
    ) -> Result<(), ProducerStateError> {
        let TxnVerification::Guard(guard) = verification else {
            return Ok(());
        };
        let ongoing = current.is_some_and(|e| in_transaction(e, batch.epoch));
        if !batch.transactional || ongoing {
            return Ok(());
        }
        let verified = guard != VerificationGuard::SENTINEL
            && self
                .verifications
                .get(&batch.producer_id)
                .is_some_and(|v| v.guard == guard);
        if verified {
            Ok(())
        } else {
            Err(ProducerStateError::InvalidTxnState {
                producer_id: batch.producer_id,
                offset: batch.first_offset,
                reason: "Transactional write not verified by the transaction coordinator",
            })
        }
    }

    /// Records an ongoing transaction of `producer_id` starting at `first` (if any): a
    /// transaction that started ends its verification.
    pub(super) fn track_ongoing(&mut self, producer_id: i64, first: Option<i64>) {
        if let Some(first) = first {
            self.ongoing.insert(first, producer_id);
            self.verifications.remove(&producer_id);
        }
    }

    /// Kafka's `maybeStartTransactionVerification`: the sentinel if the producer has an
    /// ongoing transaction here, else the guard of its verification (started now unless
    /// one is already under way).
    pub(crate) fn start_verification(
        &mut self,
        producer_id: i64,
        sequence: i32,
        epoch: i16,
        now_ms: i64,
    ) -> VerificationGuard {
        let ongoing = self
            .producers
            .get(&producer_id)
            .is_some_and(|e| in_transaction(e, epoch));
        if ongoing {
            return VerificationGuard::SENTINEL;
        }
        let entry = self
            .verifications
            .entry(producer_id)
            .or_insert_with(|| VerificationEntry {
                guard: VerificationGuard::next(),
                lowest_sequence: sequence,
                epoch,
                started_ms: now_ms,
            });
        entry.lowest_sequence = entry.lowest_sequence.min(sequence);
        entry.epoch = entry.epoch.max(epoch);
        entry.guard
    }

    /// Kafka's `appendEndTxnMarker` checks for a marker from the coordinator; changes
    /// nothing.
    pub(crate) fn check_marker(
        &self,
        marker: &TxnMarker,
    ) -> Result<MarkerUpdate, ProducerStateError> {
        let entry = self
            .producers
            .get(&marker.producer_id)
            .cloned()
            .unwrap_or_else(ProducerEntry::empty);
        if marker.producer_epoch < entry.epoch {
            return Err(ProducerStateError::InvalidEpoch {
                producer_id: marker.producer_id,
                offset: marker.offset,
                epoch: marker.producer_epoch,
                current_epoch: entry.epoch,
            });
        }
        if entry.coordinator_epoch > marker.coordinator_epoch {
            return Err(ProducerStateError::CoordinatorFenced {
                producer_id: marker.producer_id,
                offset: marker.offset,
                coordinator_epoch: marker.coordinator_epoch,
                current_coordinator_epoch: entry.coordinator_epoch,
            });
        }
        Ok(self.marker_update(entry, marker))
    }

    /// The update a marker makes to `entry` (the producer's current entry), with the
    /// transaction it completes and the LSO recorded for it (Kafka's
    /// `lastStableOffset(completedTxn)`: the oldest ongoing transaction of another
    /// producer, else the offset after the marker).
    fn marker_update(&self, mut entry: ProducerEntry, marker: &TxnMarker) -> MarkerUpdate {
        let producer_id = marker.producer_id;
        let completed = entry.current_txn_first_offset.map(|first| CompletedTxn {
            producer_id,
            first_offset: first,
            last_offset: marker.offset,
            aborted: !marker.commit,
            last_stable_offset: self
                .ongoing
                .iter()
                .find(|(_, id)| **id != producer_id)
                .map_or(marker.offset + 1, |(first, _)| *first),
        });
        end_transaction(&mut entry, marker);
        MarkerUpdate {
            producer_id,
            entry,
            completed,
        }
    }

    /// Applies a checked marker once it is written: the transaction it ends, with the LSO
    /// the transaction index records for it (Kafka's `lastStableOffset(completedTxn)`
    /// then `completeTxn`).
    pub(crate) fn apply_marker(&mut self, update: MarkerUpdate) -> Option<CompletedTxn> {
        let producer_id = update.producer_id;
        let completed = update.completed;
        if let Some(completed) = &completed {
            self.ongoing.remove(&completed.first_offset);
        }
        self.producers.insert(producer_id, update.entry);
        self.verifications.remove(&producer_id);
        completed
    }

    /// A marker found in (or written to) the log without checks (recovery, trusted
    /// appends), as Kafka replays replicated markers: stale epochs are logged, not refused.
    pub(crate) fn replay_marker(&mut self, marker: &TxnMarker) -> Option<CompletedTxn> {
        let update = self.replay_marker_update(marker);
        self.apply_marker(update)
    }

    /// The update of a marker replayed without checks (see [`Self::replay_marker`]).
    pub(crate) fn replay_marker_update(&self, marker: &TxnMarker) -> MarkerUpdate {
        match self.check_marker(marker) {
            Ok(update) => update,
            Err(error) => {
                tracing::info!(%error, "replaying a transaction marker with a stale epoch");
                let entry = self
                    .producers
                    .get(&marker.producer_id)
                    .cloned()
                    .unwrap_or_else(ProducerEntry::empty);
                self.marker_update(entry, marker)
            }
        }
    }

    /// Kafka's `firstUnstableOffset`: the first offset of the oldest ongoing transaction.
    pub(crate) fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.keys().next().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::super::ProducerCheck;
    use super::*;

    fn data(id: i64, epoch: i16, seq: i32, offset: i64, transactional: bool) -> ProducerBatch {
        ProducerBatch {
            producer_id: id,
            epoch,
            base_sequence: seq,
            first_offset: offset,
            last_offset: offset,
            max_timestamp: 1_000,
            transactional,
        }
    }

    fn marker(id: i64, epoch: i16, coordinator_epoch: i32, commit: bool, offset: i64) -> TxnMarker {
        TxnMarker {
            producer_id: id,
            producer_epoch: epoch,
            coordinator_epoch,
            commit,
            offset,
            timestamp: 2_000,
        }
    }

    fn append(
        state: &mut ProducerStateManager,
        batch: ProducerBatch,
    ) -> Result<(), ProducerStateError> {
        match state.check_with(&[batch], TxnVerification::NotRequired)? {
            ProducerCheck::Append(update) => state.apply(update),
            ProducerCheck::Duplicate(d) => panic!("duplicate {d:?}"),
        }
        Ok(())
    }

    fn end(
        state: &mut ProducerStateManager,
        m: TxnMarker,
    ) -> Result<Option<CompletedTxn>, ProducerStateError> {
        let update = state.check_marker(&m)?;
        Ok(state.apply_marker(update))
    }

    #[test]
    fn interleaved_transactions_and_the_first_unstable_offset() {
        let mut state = ProducerStateManager::default();
        append(&mut state, data(1, 0, 0, 0, true)).unwrap();
        append(&mut state, data(2, 0, 0, 1, true)).unwrap();
        append(&mut state, data(1, 0, 1, 2, true)).unwrap();
        assert_eq!(state.first_unstable_offset(), Some(0));
        assert_eq!(state.get(1).unwrap().current_txn_first_offset(), Some(0));
        // A non-transactional write in a transaction.
        let error = append(&mut state, data(1, 0, 2, 3, false)).unwrap_err();
        assert_eq!(error.code(), gregor_protocol::error_code::INVALID_TXN_STATE);
        // Producer 1 aborts at 3: producer 2's transaction (from 1) is the LSO it records.
        let done = end(&mut state, marker(1, 0, 5, false, 3)).unwrap().unwrap();
        assert_eq!(
            done,
            CompletedTxn {
                producer_id: 1,
                first_offset: 0,
                last_offset: 3,
                aborted: true,
                last_stable_offset: 1,
            }
        );
        assert_eq!(state.first_unstable_offset(), Some(1));
        let entry = state.get(1).unwrap();
        assert_eq!(
            (entry.coordinator_epoch(), entry.current_txn_first_offset()),
            (5, None)
        );
        // Producer 2 commits at 4: nothing else ongoing.
        let done = end(&mut state, marker(2, 0, 5, true, 4)).unwrap().unwrap();
        assert_eq!((done.aborted, done.last_stable_offset), (false, 5));
        assert_eq!(state.first_unstable_offset(), None);
        // A marker without a transaction completes nothing but records the epochs.
        assert_eq!(end(&mut state, marker(2, 1, 6, false, 5)).unwrap(), None);
        assert_eq!(state.get(2).unwrap().epoch(), 1);
    }

    #[test]
    fn stale_markers_are_refused_with_kafkas_errors() {
        use gregor_protocol::error_code::{INVALID_PRODUCER_EPOCH, TRANSACTION_COORDINATOR_FENCED};
        let mut state = ProducerStateManager::default();
        append(&mut state, data(1, 3, 0, 0, true)).unwrap();
        let code = |s: &ProducerStateManager, m| {
            s.check_marker(&m).map(|_| 0).unwrap_or_else(|e| e.code())
        };
        assert_eq!(
            code(&state, marker(1, 2, 0, true, 1)),
            INVALID_PRODUCER_EPOCH
        );
        end(&mut state, marker(1, 3, 7, true, 1)).unwrap();
        assert_eq!(
            code(&state, marker(1, 3, 6, true, 2)),
            TRANSACTION_COORDINATOR_FENCED
        );
        assert_eq!(code(&state, marker(1, 3, 7, true, 2)), 0);
        // Replayed (recovery) markers are never refused.
        assert_eq!(state.replay_marker(&marker(1, 2, 1, false, 2)), None);
    }

    #[test]
    fn verification_guards() {
        let mut state = ProducerStateManager::default();
        let check = |s: &ProducerStateManager, b, g| {
            s.check_with(&[b], TxnVerification::Guard(g))
                .err()
                .map(|e| e.code())
        };
        let guard = state.start_verification(1, 0, 0, 0);
        assert_ne!(guard, VerificationGuard::SENTINEL);
        assert_eq!(
            state.start_verification(1, 0, 0, 0),
            guard,
            "one verification at a time"
        );
        // Unverified or wrong guard: refused; non-transactional batches need none.
        let refused = Some(gregor_protocol::error_code::INVALID_TXN_STATE);
        assert_eq!(
            check(&state, data(1, 0, 0, 0, true), VerificationGuard::SENTINEL),
            refused
        );
        assert_eq!(check(&state, data(9, 0, 0, 0, true), guard), refused);
        assert_eq!(
            check(&state, data(9, 0, 0, 0, false), VerificationGuard::SENTINEL),
            None
        );
        assert_eq!(check(&state, data(1, 0, 0, 0, true), guard), None);
        match state
            .check_with(&[data(1, 0, 0, 0, true)], TxnVerification::Guard(guard))
            .unwrap()
        {
            ProducerCheck::Append(u) => state.apply(u),
            ProducerCheck::Duplicate(_) => unreachable!(),
        }
        // In a transaction: the sentinel, and later batches need no guard.
        assert_eq!(
            state.start_verification(1, 1, 0, 0),
            VerificationGuard::SENTINEL
        );
        assert_eq!(
            check(&state, data(1, 0, 1, 1, true), VerificationGuard::SENTINEL),
            None
        );
        // A guard taken before an abort does not verify the next transaction (ABA).
        end(&mut state, marker(1, 0, 0, false, 2)).unwrap();
        assert_eq!(check(&state, data(1, 0, 1, 3, true), guard), refused);
        let again = state.start_verification(1, 1, 0, 0);
        assert_ne!(again, guard);
        assert_eq!(check(&state, data(1, 0, 1, 3, true), again), None);
    }

    #[test]
    fn a_bumped_epoch_is_verified_while_the_previous_transaction_is_open() {
        // Transaction version 2: epoch 0's transaction is still open here (its marker not
        // yet written) when epoch 1's first batch arrives.
        let mut state = ProducerStateManager::default();
        append(&mut state, data(1, 0, 0, 0, true)).unwrap();
        assert_eq!(
            state.start_verification(1, 0, 0, 0),
            VerificationGuard::SENTINEL,
            "the open transaction's own epoch needs no verification"
        );
        let early = state.start_verification(1, 0, 1, 0);
        assert_ne!(
            early,
            VerificationGuard::SENTINEL,
            "a new epoch is verified"
        );
        // The coordinator answers CONCURRENT_TRANSACTIONS until every marker is written,
        // and a marker ends verifications under way (Kafka's `updateProducers`), so the
        // batch is verified again after the marker and then appended.
        end(&mut state, marker(1, 0, 0, true, 1)).unwrap();
        let refused = Some(gregor_protocol::error_code::INVALID_TXN_STATE);
        let check = |s: &ProducerStateManager, g| {
            s.check_with(&[data(1, 1, 0, 2, true)], TxnVerification::Guard(g))
                .err()
                .map(|e| e.code())
        };
        assert_eq!(check(&state, early), refused);
        let verified = state.start_verification(1, 0, 1, 0);
        assert_ne!(verified, VerificationGuard::SENTINEL);
        assert_eq!(check(&state, verified), None);
    }

    #[test]
    fn producers_in_a_transaction_do_not_expire() {
        let mut state = ProducerStateManager::default();
        append(&mut state, data(1, 0, 0, 0, true)).unwrap();
        append(&mut state, data(2, 0, 0, 1, false)).unwrap();
        assert_eq!(state.remove_expired(10_000_000, 10), 1);
        assert!(state.get(1).is_some());
        assert_eq!(state.first_unstable_offset(), Some(0));
    }
}
