//! One transactional id's state and its transitions, as Kafka's `TransactionMetadata`,
//! `TransactionState` and `TxnTransitMetadata`.
//!
//! A change is made in two steps: a `prepare_*` method checks the transition, marks it
//! pending (`pending`) and returns the target as a [`Transit`]; once the target has been
//! written to `__transaction_state`, [`TxnMetadata::complete_transition`] applies it (or
//! [`TxnMetadata::abort_transition`] drops it when the write failed). A transition that
//! Kafka treats as impossible (`IllegalStateException`) is an `Err(String)` here, which
//! the coordinator answers with `UNKNOWN_SERVER_ERROR` rather than a panic.

use std::collections::BTreeSet;

/// Kafka's `RecordBatch.NO_PRODUCER_ID`.
pub const NO_PRODUCER_ID: i64 = -1;
/// Kafka's `RecordBatch.NO_PRODUCER_EPOCH`.
pub const NO_PRODUCER_EPOCH: i16 = -1;

/// A transaction's partition: topic and index.
pub type TopicPartition = (String, i32);

/// Kafka's `TransactionState` (the ids are the `TransactionStatus` of the log records).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxnState {
    /// No transaction in progress (after InitProducerId).
    Empty,
    /// Partitions were added; the transaction runs.
    Ongoing,
    /// EndTxn(commit) was written; markers are being written.
    PrepareCommit,
    /// EndTxn(abort) (or a timeout, or a fence) was written; markers are being written.
    PrepareAbort,
    /// Commit markers are written.
    CompleteCommit,
    /// Abort markers are written.
    CompleteAbort,
    /// The transactional id is being expired.
    Dead,
    /// An ongoing transaction is being aborted because a new producer took the id over
    /// (never written to the log: it turns into PrepareAbort at once).
    PrepareEpochFence,
}

impl TxnState {
    /// Every state, in id order.
    pub const ALL: [TxnState; 8] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::Dead,
        TxnState::PrepareEpochFence,
    ];

    /// The id written in `TransactionStatus`.
    pub fn id(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    /// The state of a `TransactionStatus` id.
    pub fn from_id(id: i8) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|s| s.id() == id)
    }

    /// The name DescribeTransactions and ListTransactions use.
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// The state named `name` (exact, as Kafka's `TransactionState.fromName`).
    pub fn from_name(name: &str) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The states a transition into `self` may start from.
    pub fn valid_previous(self) -> &'static [TxnState] {
        use TxnState::*;
        match self {
            Empty => &[Empty, CompleteCommit, CompleteAbort],
            Ongoing => &[Ongoing, Empty, CompleteCommit, CompleteAbort],
            PrepareCommit => &[Ongoing],
            PrepareAbort => &[Ongoing, PrepareEpochFence],
            CompleteCommit => &[PrepareCommit],
            CompleteAbort => &[PrepareAbort],
            Dead => &[Empty, CompleteAbort, CompleteCommit],
            PrepareEpochFence => &[Ongoing],
        }
    }

    /// Whether an id in this state may expire (`transactional.id.expiration.ms`).
    pub fn expiration_allowed(self) -> bool {
        matches!(
            self,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        )
    }
}

/// Whether `epoch` leaves no room for another bump (Kafka: `>= Short.MAX_VALUE - 1`, so
/// that a fence can still bump once more).
pub fn is_epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

/// Whether a client transaction version bumps the epoch at every EndTxn (KIP-890 part 2).
pub fn supports_epoch_bump(transaction_version: i16) -> bool {
    transaction_version >= 2
}

/// The target of a transition (Kafka's `TxnTransitMetadata`): what is written to the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transit {
    /// Producer id after the transition.
    pub producer_id: i64,
    /// Producer id before it.
    pub prev_producer_id: i64,
    /// The producer id the transaction moves to once complete (TV2 epoch overflow).
    pub next_producer_id: i64,
    /// Epoch after the transition.
    pub producer_epoch: i16,
    /// The epoch before the last bump (a retry of InitProducerId returns it).
    pub last_producer_epoch: i16,
    /// Transaction timeout.
    pub timeout_ms: i32,
    /// Target state.
    pub state: TxnState,
    /// Partitions of the transaction.
    pub partitions: BTreeSet<TopicPartition>,
    /// When the transaction started, -1 if none.
    pub start_ms: i64,
    /// When this transition was made.
    pub last_update_ms: i64,
    /// The client's transaction version (0 or 2).
    pub client_tv: i16,
}

/// One transactional id's metadata (Kafka's `TransactionMetadata`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnMetadata {
    /// The transactional id.
    pub transactional_id: String,
    /// Current producer id.
    pub producer_id: i64,
    /// The producer id before the last rotation.
    pub previous_producer_id: i64,
    /// The producer id to move to when the transaction completes (TV2 overflow).
    pub next_producer_id: i64,
    /// Current epoch (-1 before the first InitProducerId completes).
    pub producer_epoch: i16,
    /// The epoch before the last bump.
    pub last_producer_epoch: i16,
    /// Transaction timeout.
    pub timeout_ms: i32,
    /// Current state.
    pub state: TxnState,
    /// Partitions of the current transaction (those still waiting for a marker while
    /// preparing).
    pub partitions: BTreeSet<TopicPartition>,
    /// Start of the current transaction, -1 if none.
    pub start_ms: i64,
    /// Last transition.
    pub last_update_ms: i64,
    /// The client's transaction version.
    pub client_tv: i16,
    /// The transition being written, if any.
    pub pending: Option<TxnState>,
    /// A fence whose write failed: the next fence does not bump again (the bumped epoch
    /// was never returned to anyone).
    pub has_failed_epoch_fence: bool,
}

impl TxnMetadata {
    /// A new id's metadata (Empty, no epoch yet), as InitProducerId creates it.
    pub fn new(transactional_id: &str, producer_id: i64, timeout_ms: i32, now_ms: i64) -> Self {
        TxnMetadata {
            transactional_id: transactional_id.to_string(),
            producer_id,
            previous_producer_id: NO_PRODUCER_ID,
            next_producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now_ms,
            client_tv: 0,
            pending: None,
            has_failed_epoch_fence: false,
        }
    }

    /// Whether a transition is being written.
    pub fn pending_in_progress(&self) -> bool {
        self.pending.is_some()
    }

    /// Whether the epoch is exhausted.
    pub fn is_epoch_exhausted(&self) -> bool {
        is_epoch_exhausted(self.producer_epoch)
    }

    fn has_pending_transaction(&self) -> bool {
        matches!(
            self.state,
            TxnState::Ongoing | TxnState::PrepareAbort | TxnState::PrepareCommit
        )
    }

    /// The current state as a transit that changes nothing (what is written when a
    /// loaded transaction is re-stated).
    pub fn as_transit(&self) -> Transit {
        Transit {
            producer_id: self.producer_id,
            prev_producer_id: self.previous_producer_id,
            next_producer_id: self.next_producer_id,
            producer_epoch: self.producer_epoch,
            last_producer_epoch: self.last_producer_epoch,
            timeout_ms: self.timeout_ms,
            state: self.state,
            partitions: self.partitions.clone(),
            start_ms: self.start_ms,
            last_update_ms: self.last_update_ms,
            client_tv: self.client_tv,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn prepare(
        &mut self,
        state: TxnState,
        producer_id: i64,
        next_producer_id: i64,
        epoch: i16,
        last_epoch: i16,
        timeout_ms: i32,
        partitions: BTreeSet<TopicPartition>,
        start_ms: i64,
        now_ms: i64,
        client_tv: i16,
    ) -> Result<Transit, String> {
        if let Some(pending) = self.pending {
            return Err(format!(
                "transition of {} to {} while {} is pending",
                self.transactional_id,
                state.name(),
                pending.name()
            ));
        }
        if producer_id < 0 {
            return Err(format!("illegal new producer id {producer_id}"));
        }
        if state != TxnState::Dead && epoch < 0 {
            return Err(format!("illegal new producer epoch {epoch}"));
        }
        if !state.valid_previous().contains(&self.state) {
            return Err(format!(
                "transition of {} from {} to {} is not valid",
                self.transactional_id,
                self.state.name(),
                state.name()
            ));
        }
        self.pending = Some(state);
        Ok(Transit {
            producer_id,
            prev_producer_id: self.producer_id,
            next_producer_id,
            producer_epoch: epoch,
            last_producer_epoch: last_epoch,
            timeout_ms,
            state,
            partitions,
            start_ms,
            last_update_ms: now_ms,
            client_tv,
        })
    }

    /// Fences the current producer: PrepareEpochFence with the epoch bumped once (not
    /// again after a fence whose write failed).
    pub fn prepare_fence_epoch(&mut self) -> Result<Transit, String> {
        if self.producer_epoch == i16::MAX {
            return Err("cannot fence a producer whose epoch is already the largest".into());
        }
        let epoch = if self.has_failed_epoch_fence {
            self.producer_epoch
        } else {
            self.producer_epoch + 1
        };
        self.prepare(
            TxnState::PrepareEpochFence,
            self.producer_id,
            NO_PRODUCER_ID,
            epoch,
            NO_PRODUCER_EPOCH,
            self.timeout_ms,
            self.partitions.clone(),
            self.start_ms,
            self.last_update_ms,
            0,
        )
    }

    /// InitProducerId on a known id: bumps the epoch (Empty). With the epoch the client
    /// holds (KIP-360): equal to the current one (or no current epoch) bumps and keeps the
    /// old one as the last epoch; equal to the last epoch is a retry of a bump that
    /// succeeded and returns the current epoch unchanged; anything else is
    /// `PRODUCER_FENCED` (`Err(Ok(code))`).
    pub fn prepare_increment_epoch(
        &mut self,
        timeout_ms: i32,
        expected_epoch: Option<i16>,
        now_ms: i64,
    ) -> Result<Result<Transit, i16>, String> {
        if self.is_epoch_exhausted() {
            return Err(format!(
                "no producer epoch left for producer id {}",
                self.producer_id
            ));
        }
        let bumped = self.producer_epoch + 1;
        let (epoch, last) = match expected_epoch {
            None => (bumped, NO_PRODUCER_EPOCH),
            Some(expected)
                if self.producer_epoch == NO_PRODUCER_EPOCH || expected == self.producer_epoch =>
            {
                (bumped, self.producer_epoch)
            }
            Some(expected) if expected == self.last_producer_epoch => {
                (self.producer_epoch, self.last_producer_epoch)
            }
            Some(_) => return Ok(Err(gregor_protocol::error_code::PRODUCER_FENCED)),
        };
        self.prepare(
            TxnState::Empty,
            self.producer_id,
            NO_PRODUCER_ID,
            epoch,
            last,
            timeout_ms,
            BTreeSet::new(),
            -1,
            now_ms,
            0,
        )
        .map(Ok)
    }

    /// InitProducerId when the epoch is exhausted: a new producer id at epoch 0.
    pub fn prepare_producer_id_rotation(
        &mut self,
        new_producer_id: i64,
        timeout_ms: i32,
        now_ms: i64,
        record_last_epoch: bool,
    ) -> Result<Transit, String> {
        if self.has_pending_transaction() {
            return Err("cannot rotate the producer id while a transaction is pending".into());
        }
        let last = if record_last_epoch {
            self.producer_epoch
        } else {
            NO_PRODUCER_EPOCH
        };
        self.prepare(
            TxnState::Empty,
            new_producer_id,
            NO_PRODUCER_ID,
            0,
            last,
            timeout_ms,
            BTreeSet::new(),
            -1,
            now_ms,
            0,
        )
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: Ongoing with `added` joined; a new
    /// transaction starts now.
    pub fn prepare_add_partitions(
        &mut self,
        added: &BTreeSet<TopicPartition>,
        now_ms: i64,
    ) -> Result<Transit, String> {
        let start = match self.state {
            TxnState::Empty | TxnState::CompleteAbort | TxnState::CompleteCommit => now_ms,
            _ => self.start_ms,
        };
        let partitions = self.partitions.union(added).cloned().collect();
        self.prepare(
            TxnState::Ongoing,
            self.producer_id,
            NO_PRODUCER_ID,
            self.producer_epoch,
            self.last_producer_epoch,
            self.timeout_ms,
            partitions,
            start,
            now_ms,
            self.client_tv,
        )
    }

    /// EndTxn: PrepareCommit or PrepareAbort; with TV2 the epoch is bumped (and
    /// `next_producer_id` set when the bump exhausts it).
    pub fn prepare_abort_or_commit(
        &mut self,
        state: TxnState,
        client_tv: i16,
        next_producer_id: i64,
        now_ms: i64,
    ) -> Result<Transit, String> {
        let (epoch, last) = if supports_epoch_bump(client_tv) {
            (self.producer_epoch.saturating_add(1), self.producer_epoch)
        } else {
            (self.producer_epoch, self.last_producer_epoch)
        };
        self.prepare(
            state,
            self.producer_id,
            next_producer_id,
            epoch,
            last,
            self.timeout_ms,
            self.partitions.clone(),
            self.start_ms,
            now_ms,
            client_tv,
        )
    }

    /// After the markers: CompleteCommit or CompleteAbort, partitions cleared; a TV2
    /// transaction that overflowed moves to its next producer id at epoch 0.
    pub fn prepare_complete(&mut self, now_ms: i64) -> Result<Transit, String> {
        let state = if self.state == TxnState::PrepareCommit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        self.has_failed_epoch_fence = false;
        let (producer_id, epoch) =
            if supports_epoch_bump(self.client_tv) && self.next_producer_id != NO_PRODUCER_ID {
                (self.next_producer_id, 0)
            } else {
                (self.producer_id, self.producer_epoch)
            };
        self.prepare(
            state,
            producer_id,
            NO_PRODUCER_ID,
            epoch,
            self.producer_epoch,
            self.timeout_ms,
            BTreeSet::new(),
            self.start_ms,
            now_ms,
            self.client_tv,
        )
    }

    /// Expiration of the id: Dead (written as a tombstone).
    pub fn prepare_dead(&mut self) -> Result<Transit, String> {
        self.prepare(
            TxnState::Dead,
            self.producer_id,
            NO_PRODUCER_ID,
            self.producer_epoch,
            self.last_producer_epoch,
            self.timeout_ms,
            BTreeSet::new(),
            self.start_ms,
            self.last_update_ms,
            self.client_tv,
        )
    }

    /// Drops the pending transition (its write failed).
    pub fn abort_transition(&mut self) {
        self.pending = None;
    }

    fn valid_producer_epoch(&self, t: &Transit) -> bool {
        let tv2 = supports_epoch_bump(t.client_tv);
        let overflow_complete = tv2
            && matches!(t.state, TxnState::CompleteCommit | TxnState::CompleteAbort)
            && t.producer_epoch == 0;
        let epoch = if overflow_complete
            || (tv2 && matches!(t.state, TxnState::PrepareCommit | TxnState::PrepareAbort))
        {
            t.last_producer_epoch
        } else {
            t.producer_epoch
        };
        let producer_id = if overflow_complete {
            t.prev_producer_id
        } else {
            t.producer_id
        };
        epoch == self.producer_epoch && producer_id == self.producer_id
    }

    fn valid_producer_epoch_bump(&self, t: &Transit) -> bool {
        t.producer_epoch == self.producer_epoch.wrapping_add(1)
            || (t.producer_epoch == 0 && t.producer_id != self.producer_id)
    }

    /// Applies a written transition (Kafka's `completeTransitionTo`, with its checks).
    pub fn complete_transition(&mut self, t: &Transit) -> Result<(), String> {
        let Some(to) = self.pending else {
            return Err(format!(
                "{}: completing a transition that is not pending",
                self.transactional_id
            ));
        };
        let fail = |m: &TxnMetadata| {
            Err(format!(
                "{}: unexpected transition from {:?} to {:?}",
                m.transactional_id, m, t
            ))
        };
        if to != t.state {
            return fail(self);
        }
        match to {
            TxnState::Empty => {
                if (self.producer_epoch != t.producer_epoch && !self.valid_producer_epoch_bump(t))
                    || !t.partitions.is_empty()
                    || t.start_ms != -1
                {
                    return fail(self);
                }
                self.timeout_ms = t.timeout_ms;
                self.producer_epoch = t.producer_epoch;
                self.last_producer_epoch = t.last_producer_epoch;
                self.producer_id = t.producer_id;
                self.previous_producer_id = t.prev_producer_id;
            }
            TxnState::Ongoing => {
                if !self.valid_producer_epoch(t)
                    || !self.partitions.is_subset(&t.partitions)
                    || self.timeout_ms != t.timeout_ms
                {
                    return fail(self);
                }
                self.start_ms = t.start_ms;
                self.partitions.extend(t.partitions.iter().cloned());
            }
            TxnState::PrepareAbort | TxnState::PrepareCommit => {
                if !self.valid_producer_epoch(t)
                    || self.partitions != t.partitions
                    || self.timeout_ms != t.timeout_ms
                    || self.start_ms != t.start_ms
                {
                    return fail(self);
                }
                if supports_epoch_bump(t.client_tv) {
                    self.producer_epoch = t.producer_epoch;
                    self.last_producer_epoch = t.last_producer_epoch;
                    self.next_producer_id = t.next_producer_id;
                }
            }
            TxnState::CompleteAbort | TxnState::CompleteCommit => {
                if !self.valid_producer_epoch(t)
                    || self.timeout_ms != t.timeout_ms
                    || t.start_ms == -1
                {
                    return fail(self);
                }
                self.start_ms = t.start_ms;
                self.partitions.clear();
                if supports_epoch_bump(t.client_tv) {
                    self.producer_epoch = t.producer_epoch;
                    self.last_producer_epoch = t.last_producer_epoch;
                    self.previous_producer_id = t.prev_producer_id;
                    self.producer_id = t.producer_id;
                    self.next_producer_id = t.next_producer_id;
                }
            }
            TxnState::PrepareEpochFence | TxnState::Dead => return fail(self),
        }
        self.client_tv = t.client_tv;
        self.last_update_ms = t.last_update_ms;
        self.pending = None;
        self.state = to;
        Ok(())
    }
}
