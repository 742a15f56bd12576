//! The request-level rules of Kafka's `TransactionCoordinator` (`handleInitProducerId`,
//! `prepareInitProducerIdTransit`, `handleAddPartitionsToTransaction`,
//! `handleVerifyPartitionsInTransaction`, `endTransaction`), as functions of one id's
//! [`TxnMetadata`] (held under its lock by the caller): each returns the transition to
//! write or the error to answer. Nothing here does I/O.

use std::collections::{BTreeMap, BTreeSet};

use gregor_protocol::error_code::*;

use super::state::{
    NO_PRODUCER_EPOCH, NO_PRODUCER_ID, TopicPartition, Transit, TxnMetadata, TxnState,
    is_epoch_exhausted, supports_epoch_bump,
};

/// An impossible transition (Kafka's `IllegalStateException`): logged, answered
/// `UNKNOWN_SERVER_ERROR`.
fn illegal(message: String) -> i16 {
    tracing::error!("transaction coordinator: {message}");
    UNKNOWN_SERVER_ERROR
}

/// What InitProducerId on a known id does.
#[derive(Debug, PartialEq, Eq)]
pub enum InitDecision {
    /// Write this transition (Empty with a bumped epoch or a new producer id), then
    /// answer its producer id and epoch.
    Write(Transit),
    /// An ongoing transaction must be aborted first: the PrepareEpochFence transit; the
    /// abort runs and the client is answered `CONCURRENT_TRANSACTIONS` to retry.
    Fence(Transit),
}

/// InitProducerId with a transactional id on `meta` (Kafka's
/// `prepareInitProducerIdTransit`). `expected` is the request's producer id and epoch
/// (KIP-360), `new_producer_id` allocates one when the epoch is exhausted.
pub fn init_producer_id(
    meta: &mut TxnMetadata,
    timeout_ms: i32,
    expected: Option<(i64, i16)>,
    new_producer_id: &mut dyn FnMut() -> Result<i64, i16>,
    now_ms: i64,
) -> Result<InitDecision, i16> {
    // KIP-360: a given producer id is accepted when the id was just created (no epoch),
    // when it is the current one (the epoch is checked by the bump), or when it is the
    // previous one with an exhausted epoch (a retry of a rotation whose answer was lost).
    let valid_producer_id = |(pid, epoch): (i64, i16)| {
        meta.producer_epoch == NO_PRODUCER_EPOCH
            || pid == meta.producer_id
            || (pid == meta.previous_producer_id && is_epoch_exhausted(epoch))
    };
    if meta.pending_in_progress() {
        return Err(CONCURRENT_TRANSACTIONS);
    }
    if !expected.is_none_or(valid_producer_id) {
        return Err(PRODUCER_FENCED);
    }
    match meta.state {
        TxnState::PrepareAbort | TxnState::PrepareCommit => Err(CONCURRENT_TRANSACTIONS),
        TxnState::CompleteAbort | TxnState::CompleteCommit | TxnState::Empty => {
            if meta.is_epoch_exhausted()
                && expected.is_none_or(|(_, epoch)| epoch == meta.producer_epoch)
            {
                let producer_id = new_producer_id()?;
                meta.prepare_producer_id_rotation(
                    producer_id,
                    timeout_ms,
                    now_ms,
                    expected.is_some(),
                )
                .map(InitDecision::Write)
                .map_err(illegal)
            } else {
                match meta.prepare_increment_epoch(timeout_ms, expected.map(|e| e.1), now_ms) {
                    Ok(Ok(transit)) => Ok(InitDecision::Write(transit)),
                    Ok(Err(code)) => Err(code),
                    Err(message) => Err(illegal(message)),
                }
            }
        }
        // The fenced epoch is never returned: the client retries after the abort and
        // the retry bumps again (a new producer id if that exhausts the epoch).
        TxnState::Ongoing => meta
            .prepare_fence_epoch()
            .map(InitDecision::Fence)
            .map_err(illegal),
        TxnState::Dead | TxnState::PrepareEpochFence => Err(illegal(format!(
            "InitProducerId found {} in state {}",
            meta.transactional_id,
            meta.state.name()
        ))),
    }
}

/// What AddPartitionsToTxn does.
#[derive(Debug, PartialEq, Eq)]
pub enum AddDecision {
    /// Every partition is already in the ongoing transaction: nothing to write.
    AlreadyAdded,
    /// Write this transition (Ongoing with the partitions).
    Write(Transit),
}

/// AddPartitionsToTxn / AddOffsetsToTxn on `meta`.
pub fn add_partitions(
    meta: &mut TxnMetadata,
    producer_id: i64,
    epoch: i16,
    partitions: &BTreeSet<TopicPartition>,
    now_ms: i64,
) -> Result<AddDecision, i16> {
    if meta.producer_id != producer_id {
        return Err(INVALID_PRODUCER_ID_MAPPING);
    }
    if meta.producer_epoch != epoch {
        return Err(PRODUCER_FENCED);
    }
    if meta.pending_in_progress()
        || matches!(meta.state, TxnState::PrepareCommit | TxnState::PrepareAbort)
    {
        return Err(CONCURRENT_TRANSACTIONS);
    }
    if meta.state == TxnState::Ongoing && partitions.is_subset(&meta.partitions) {
        return Ok(AddDecision::AlreadyAdded);
    }
    meta.prepare_add_partitions(partitions, now_ms)
        .map(AddDecision::Write)
        .map_err(illegal)
}

/// KIP-890 part 1 verification (AddPartitionsToTxn v4+ with `verify_only`): each
/// partition's error, `TRANSACTION_ABORTABLE` for one not in the transaction.
pub fn verify_partitions(
    meta: &TxnMetadata,
    producer_id: i64,
    epoch: i16,
    partitions: &[TopicPartition],
) -> Result<BTreeMap<TopicPartition, i16>, i16> {
    if meta.producer_id != producer_id {
        return Err(INVALID_PRODUCER_ID_MAPPING);
    }
    if meta.producer_epoch != epoch {
        return Err(PRODUCER_FENCED);
    }
    if matches!(meta.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
        return Err(CONCURRENT_TRANSACTIONS);
    }
    Ok(partitions
        .iter()
        .map(|p| {
            let code = if meta.partitions.contains(p) {
                NONE
            } else {
                TRANSACTION_ABORTABLE
            };
            (p.clone(), code)
        })
        .collect())
}

/// What EndTxn does.
#[derive(Debug, PartialEq, Eq)]
pub enum EndDecision {
    /// Already done (a retry of a completed EndTxn): answer success with these.
    Done {
        /// Producer id to answer.
        producer_id: i64,
        /// Epoch to answer.
        producer_epoch: i16,
    },
    /// Write this PrepareCommit/PrepareAbort, then the markers.
    Write {
        /// The transition.
        transit: Transit,
        /// Whether this completes a fence (PrepareEpochFence turned into PrepareAbort).
        epoch_fence: bool,
    },
}

/// TV2: the stored epoch is one above the request's, and the bump was an EndTxn's.
fn end_txn_epoch_bumped(meta: &TxnMetadata, epoch: i16) -> bool {
    meta.pending != Some(TxnState::PrepareEpochFence)
        && supports_epoch_bump(meta.client_tv)
        && i32::from(meta.producer_epoch) == i32::from(epoch) + 1
}

/// EndTxn on `meta` (Kafka's `endTransaction` up to the log append). `from_client` is
/// false for the coordinator's own aborts (timeouts, fences); `client_tv` is 2 for
/// EndTxn v5+ when the finalized `transaction.version` is 2, else 0 (the coordinator's
/// own aborts use the finalized level).
#[allow(clippy::too_many_arguments)]
pub fn end_txn(
    meta: &mut TxnMetadata,
    producer_id: i64,
    epoch: i16,
    commit: bool,
    from_client: bool,
    client_tv: i16,
    new_producer_id: &mut dyn FnMut() -> Result<i64, i16>,
    now_ms: i64,
) -> Result<EndDecision, i16> {
    let fencing = meta.pending == Some(TxnState::PrepareEpochFence);
    let tv2_meta = !fencing && supports_epoch_bump(meta.client_tv);
    let retry_on_overflow = tv2_meta
        && meta.previous_producer_id == producer_id
        && epoch == i16::MAX - 1
        && meta.producer_epoch == 0;
    let retry_on_bump = end_txn_epoch_bumped(meta, epoch);
    let valid_epoch = if tv2_meta {
        match meta.state {
            TxnState::Ongoing | TxnState::Empty | TxnState::Dead | TxnState::PrepareEpochFence => {
                epoch == meta.producer_epoch
            }
            TxnState::PrepareCommit | TxnState::PrepareAbort => retry_on_bump,
            TxnState::CompleteCommit | TxnState::CompleteAbort => {
                retry_on_bump || retry_on_overflow
            }
        }
    } else {
        (!from_client || epoch == meta.producer_epoch) && epoch >= meta.producer_epoch
    };
    if meta.producer_id != producer_id && !retry_on_overflow {
        return Err(INVALID_PRODUCER_ID_MAPPING);
    }
    if !valid_epoch {
        return Err(PRODUCER_FENCED);
    }
    if meta.pending_in_progress() && !fencing {
        return Err(CONCURRENT_TRANSACTIONS);
    }
    let wrong_state = |meta: &TxnMetadata| {
        tracing::debug!(
            "transactional id {} is {}; EndTxn({}) is not valid",
            meta.transactional_id,
            meta.state.name(),
            if commit { "commit" } else { "abort" }
        );
        Err(INVALID_TXN_STATE)
    };
    match meta.state {
        TxnState::Ongoing => {
            let next = if commit {
                TxnState::PrepareCommit
            } else {
                TxnState::PrepareAbort
            };
            let next_producer_id =
                if supports_epoch_bump(client_tv) && !fencing && meta.is_epoch_exhausted() {
                    new_producer_id()?
                } else {
                    NO_PRODUCER_ID
                };
            let mut epoch_fence = false;
            if next == TxnState::PrepareAbort && fencing {
                // The fence becomes this abort, at the fenced epoch.
                epoch_fence = true;
                meta.pending = None;
                meta.producer_epoch = epoch;
                meta.last_producer_epoch = NO_PRODUCER_EPOCH;
            }
            let transit = meta
                .prepare_abort_or_commit(next, client_tv, next_producer_id, now_ms)
                .map_err(illegal)?;
            Ok(EndDecision::Write {
                transit,
                epoch_fence,
            })
        }
        TxnState::CompleteCommit if commit => Ok(EndDecision::Done {
            producer_id: meta.producer_id,
            producer_epoch: meta.producer_epoch,
        }),
        TxnState::CompleteAbort if !commit => Ok(EndDecision::Done {
            producer_id: meta.producer_id,
            producer_epoch: meta.producer_epoch,
        }),
        TxnState::PrepareCommit if commit => Err(CONCURRENT_TRANSACTIONS),
        TxnState::PrepareAbort if !commit => Err(CONCURRENT_TRANSACTIONS),
        TxnState::CompleteCommit
        | TxnState::CompleteAbort
        | TxnState::PrepareCommit
        | TxnState::PrepareAbort
        | TxnState::Empty => wrong_state(meta),
        TxnState::Dead | TxnState::PrepareEpochFence => Err(illegal(format!(
            "EndTxn found {} in state {}",
            meta.transactional_id,
            meta.state.name()
        ))),
    }
}

/// Whether an ongoing transaction has run past its timeout (Kafka's
/// `timedOutTransactions`: Ongoing, nothing pending, started more than the timeout ago).
pub fn timed_out(meta: &TxnMetadata, now_ms: i64) -> bool {
    meta.state == TxnState::Ongoing
        && !meta.pending_in_progress()
        && meta.start_ms + i64::from(meta.timeout_ms) < now_ms
}

/// Whether an id has been idle long enough to expire (`transactional.id.expiration.ms`).
pub fn expired(meta: &TxnMetadata, expiration_ms: i64, now_ms: i64) -> bool {
    meta.state.expiration_allowed()
        && !meta.pending_in_progress()
        && meta.last_update_ms + expiration_ms <= now_ms
}
